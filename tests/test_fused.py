"""Fused steps (`steps_per_call` > 1) train exactly like one step per dispatch, and refuse what they cannot fuse."""

import jax
import numpy as np
import pytest

from cifar_jax.training import fused, trainer
from cifar_jax.errors import ConfigError
from tests.helpers import latest_params, metric_lines, summary, tiny_config


@pytest.mark.parametrize(
    'step, expected',
    [
        (0, 3),  # a whole call
        (3, 1),  # the log point at 4 cuts the call
        (6, 2),  # the epoch ends at 8 (the log point too)
        (16, 2),  # the run ends at 18
        (17, 1),
    ],
)
def test_a_call_stops_at_the_next_log_point_epoch_end_or_last_step(step, expected):
  # 8 steps an epoch, a log line every 4 steps, 18 steps in all, 3 steps a call.
  assert fused.call_length(step, steps_per_epoch=8, log_every=4, total_steps=18, steps_per_call=3) == expected


# Crop, flip and dropout make every step's batch and key matter. A log line every 5 steps of an 8-step epoch,
# so that log points and epoch ends fall apart (logs at 5, 8, 10, 15, 16, 20) and calls of 3 are cut by both:
# 0-3 3-5 5-8 8-10 10-13 13-15 15-16 16-19 19-20.
FUSED = {
    'data.pipeline': 'device',
    'augment.ops': ('random_crop', 'horizontal_flip'),
    'model.dropout': 0.3,
    'log_every_steps': 5,
    'num_train_steps': 20,
}


def _same_run(path, reference):
  """Same log lines (steps and kinds) and final parameters as `reference`, to float32 rounding.

  Not bit for bit: XLA fuses the scanned step's float32 reductions differently (a last-bit difference in the
  loss was seen on CPU). Same data, keys and steps, so the runs agree to float32 rounding, 20 steps on."""
  lines, want_lines = metric_lines(path), metric_lines(reference)
  assert [(line['kind'], line['step']) for line in lines] == [(line['kind'], line['step']) for line in want_lines]
  for line, want in zip(lines, want_lines):
    del line['kind'], want['kind']
    assert line == pytest.approx(want, rel=1e-5, abs=1e-6)
  for a, b in zip(*(jax.tree.leaves(latest_params(p)) for p in (path, reference))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_steps_train_like_single_steps(cifar10_dir, tmp_path):
  for name, k in (('single', 1), ('fused', 3)):
    trainer.train_and_evaluate(tiny_config(cifar10_dir, steps_per_call=k, **FUSED), tmp_path / name)
  _same_run(tmp_path / 'fused', tmp_path / 'single')
  assert [line['step'] for line in metric_lines(tmp_path / 'fused') if line['kind'] == 'train'] == [
      5,
      8,
      10,
      15,
      16,
      20,
  ]
  assert summary(tmp_path / 'fused')['steps'] == 20


def test_a_run_of_single_steps_resumes_with_fused_steps_like_an_uninterrupted_fused_run(cifar10_dir, tmp_path):
  """A CPU run (one step per call) stopped mid-epoch and mid-log-interval at step 11, resumed on a GPU with
  fused steps: steps_per_call is resume-safe, and the pending metrics of steps 10-11 reach the line at 15."""
  trainer.train_and_evaluate(tiny_config(cifar10_dir, steps_per_call=3, **FUSED), tmp_path / 'whole')
  stopped = tiny_config(cifar10_dir, steps_per_call=1, **{**FUSED, 'num_train_steps': 11})
  trainer.train_and_evaluate(stopped, tmp_path / 'resumed')
  trainer.train_and_evaluate(tiny_config(cifar10_dir, steps_per_call=3, **FUSED), tmp_path / 'resumed')
  _same_run(tmp_path / 'resumed', tmp_path / 'whole')


@pytest.mark.parametrize(
    'overrides, message',
    [
        ({'steps_per_call': 0}, 'steps_per_call=0 must be >= 1'),
        ({'steps_per_call': 4, 'data.pipeline': 'tfdata'}, 'needs data.pipeline=device'),
        ({'steps_per_call': 4, 'data.pipeline': 'device', 'parallelism': 'pmap'}, 'needs parallelism=jit'),
    ],
)
def test_what_cannot_be_fused_is_refused_by_name(cifar10_dir, overrides, message):
  with pytest.raises(ConfigError, match=message):
    trainer.check_config(tiny_config(cifar10_dir, **overrides))
