"""vectorize='auto': the probe's estimate of each way (compilations and steps for the steps the runs have left)
against hand computations, the compilations each way has to do, the bound that skips probing a group, and one
real probe of a tiny model."""

import tempfile

import pytest

from cifar_jax.training import probe
from tests.helpers import tiny_config

ALONE = probe.Timing(first=1.008, call=0.008)  # 4 steps per call: 2 ms per step, 1.0 s to compile
TOGETHER = probe.Timing(first=2.05, call=0.05)  # 12.5 ms per step (6.25 x one alone), 2.0 s to compile


@pytest.mark.parametrize(
    ('run_steps', 'sequential_compiles', 'group_compiles', 'sequential', 'grouped', 'pays_off'),
    [
        # 8 members, 3,000 steps: 1 x 1.0 + 8 x 3000 x 0.002 = 49.0 s against 2 x 2.0 + 3000 x 0.0125 = 41.5 s
        (3000, 1, 2, 49.0, 41.5, True),
        # the case, 384 steps: 1 + 8 x 384 x 0.002 = 7.144 s against 4 + 384 x 0.0125 = 8.8 s
        (384, 1, 2, 7.144, 8.8, False),
        # the same without the cache, every run compiling its own: 8 + 6.144 = 14.144 s against 8.8 s
        (384, 8, 2, 14.144, 8.8, True),
        # 50 steps, the group's programs read from the cache: 1 + 0.8 = 1.8 s against 0 + 0.625 s
        (50, 1, 0, 1.8, 0.625, True),
    ],
)
def test_the_estimate_weighs_each_way_s_compilations_and_steps(
    run_steps, sequential_compiles, group_compiles, sequential, grouped, pays_off
):
  measured = probe.Probe(8, 4, run_steps, sequential_compiles, group_compiles, ALONE, TOGETHER)
  assert measured.sequential_seconds == pytest.approx(sequential)
  assert measured.group_seconds == pytest.approx(grouped)
  assert measured.pays_off is pays_off
  assert str(measured).endswith(': one group' if pays_off else ': one by one')
  assert f'= {sequential:.1f} s' in str(measured) and f'= {grouped:.1f} s' in str(measured)


@pytest.mark.parametrize(
    ('run_steps', 'best', 'sequential', 'probed'),
    [
        # 3 seeds sharing one program (cache on: nothing left to compile one by one; the group 1 program):
        # at least (1 + 1) x 1.0 + (4 x 4 + 100) x 0.002 = 2.232 s against 3 x 100 x 0.002 = 0.6 s
        (100, 2.232, 0.6, False),
        # 1,000 steps: 2 + 1016 x 0.002 = 4.032 s against 6.0 s, so the group is worth probing
        (1000, 4.032, 6.0, True),
    ],
)
def test_runs_too_short_to_pay_off_even_at_the_group_s_best_are_not_probed(run_steps, best, sequential, probed):
  measured = probe.Probe(3, 4, run_steps, 0, 1, ALONE)
  assert measured.best_group_seconds == pytest.approx(best)
  assert measured.sequential_seconds == pytest.approx(sequential)
  assert measured.group_may_pay_off is probed
  assert not measured.pays_off and measured.group_seconds is None  # unprobed: one by one
  assert str(measured).endswith(f'at least {best:.1f} s: one by one (not probed)')


@pytest.mark.parametrize(
    ('start', 'per_call', 'lengths'),
    [
        (0, 1, {1}),  # one step per dispatch: one program
        (0, 3, {3, 1}),  # log points at 4, 8, ...: calls of 3 then 1 step
        (0, 8, {4}),  # a group (a whole epoch per call at most): cut at each log point
        (5, 8, {3, 4}),  # resumed at step 5: 3 steps to the log point at 8, then 4 at a time
    ],
)
def test_call_lengths(start, per_call, lengths):
  # 8 steps an epoch, 16 in all, a log line every 4 steps
  assert probe.call_lengths(start, 8, 16, 4, per_call) == lengths


@pytest.mark.parametrize(
    ('cached', 'sequential', 'grouped'),
    [
        # two learning rates x two seeds, one step per dispatch, log every 4, probed with 4-step calls: one by one
        # 2 programs (the learning rates), the probe's (the first's) read back; the group's 4-step calls, too
        (True, 1, 0),
        # without the cache: every run compiles its train step, the group its 4-step program
        (False, 4, 1),
    ],
)
def test_compiles_counts_the_programs_each_way_still_has_to_compile(cifar10_dir, cached, sequential, grouped):
  configs = [
      tiny_config(cifar10_dir, seed=seed, log_every_steps=4, **{'optimizer.learning_rate': lr})
      for lr in (0.05, 0.1)
      for seed in (0, 1)
  ]
  assert len({probe.program_key(c) for c in configs}) == 2  # the seeds share a program
  assert probe.compiles(configs, 0, 8, 16, 4, cached) == (sequential, grouped)


def test_fused_runs_compile_one_program_per_call_length(cifar10_dir):
  configs = [tiny_config(cifar10_dir, seed=seed, log_every_steps=4, steps_per_call=3) for seed in (0, 1, 2)]
  # every run's calls: 3 and 1 steps (two programs, the seeds share them); the probe compiled its 4-step call
  assert probe.compiles(configs, 0, 8, 16, 4, cached=True) == (2, 0)
  assert probe.compiles(configs, 0, 8, 16, 4, cached=False) == (6, 1)


@pytest.mark.parametrize('short', [True, False])
def test_a_real_probe_of_a_tiny_group(cifar10_dir, tmp_path, monkeypatch, short):
  """With the cache off (as in the tests): the last step alone is too short for the group (its best, 2 compiles
  and 17 steps, against 2 compiles and 2 steps one by one); 1,000 epochs are long enough to probe it."""
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
  configs = [
      tiny_config(cifar10_dir, seed=k, num_epochs=1000, log_every_steps=4, **{'data.pipeline': 'device'})
      for k in range(2)
  ]
  total = 1000 * 8  # 256 training images (validation drawn apart), in batches of 32: 8 steps an epoch
  measured = probe.probe(configs, start_step=total - 1 if short else 0)
  assert measured.run_steps == (1 if short else total) and measured.sequential_compiles == 2
  assert measured.single.call > 0 and measured.single.first > measured.single.call
  if short:
    assert measured.group is None and str(measured).endswith('(not probed)')
  else:
    assert measured.group.call > 0 and str(measured).startswith(f'2 runs of {total:,} steps left;')
  assert list(tmp_path.iterdir()) == []  # the throwaway folders are gone
