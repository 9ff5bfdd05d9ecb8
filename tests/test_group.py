"""Vectorized groups: member k trains like the sequential run of its config; the grouping rules; a diverging member;
a group stopped and resumed."""

import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cifar_jax.training import group, hyper, preemption, run_book, trainer
from cifar_jax.errors import ConfigError, UserError
from tests.helpers import assert_same_params, checkpoint_steps, latest_params, metric_lines, summary, tiny_config

# The device pipeline with crop, flip and dropout, so every member's data order, augmentation and dropout keys
# matter; 8 steps an epoch, 2 epochs.
BASE = {
    'data.pipeline': 'device',
    'augment.ops': ('random_crop', 'horizontal_flip'),
    'model.dropout': 0.3,
    'num_epochs': 2,
    'log_every_steps': 4,
}
# Every number a member may vary, varied (each non-zero in every member: the same structure).
MEMBERS = [
    {
        'seed': 0,
        'optimizer.momentum': 0.9,
        'optimizer.weight_decay': 1e-3,
        'regularization.l2': 1e-4,
        'regularization.l1': 1e-5,
        'regularization.label_smoothing': 0.1,
    },
    {
        'seed': 1,
        'optimizer.learning_rate': 0.02,
        'optimizer.momentum': 0.5,
        'optimizer.weight_decay': 5e-4,
        'regularization.l2': 3e-4,
        'regularization.l1': 2e-5,
        'regularization.label_smoothing': 0.2,
    },
    {
        'seed': 2,
        'optimizer.momentum': 0.8,
        'optimizer.weight_decay': 2e-3,
        'regularization.l2': 1e-5,
        'regularization.l1': 1e-6,
        'regularization.label_smoothing': 0.05,
    },
]


def _close(lines, expected):
  """Same records in the same order, numbers equal to float32 rounding after a few steps."""
  assert [(r['kind'], r['step']) for r in lines] == [(r['kind'], r['step']) for r in expected]
  for line, want in zip(lines, expected):
    assert {k: v for k, v in line.items() if k != 'kind'} == pytest.approx(
        {k: v for k, v in want.items() if k != 'kind'}, rel=1e-4, abs=1e-5
    )


def _untimed(summary_json):
  return {k: v for k, v in summary_json.items() if k not in ('wall_seconds', 'steady_images_per_second')}


def test_each_member_ends_like_its_sequential_run(cifar10_dir, tmp_path):
  # A log line every 3 steps of an 8-step epoch (at 3, 6, 8, 9, 12, 15, 16): log points and epoch ends fall apart.
  configs = [tiny_config(cifar10_dir, **{**BASE, 'log_every_steps': 3}, **member) for member in MEMBERS]
  group.Group(configs, [tmp_path / f'group/{k}' for k in range(3)]).run()
  for k, config in enumerate(configs):
    trainer.train_and_evaluate(config, tmp_path / f'alone/{k}')
    _close(metric_lines(tmp_path / f'group/{k}'), metric_lines(tmp_path / f'alone/{k}'))
    assert summary(tmp_path / f'group/{k}')['status'] == 'completed'
    assert summary(tmp_path / f'group/{k}')['test_accuracy'] == pytest.approx(
        summary(tmp_path / f'alone/{k}')['test_accuracy'], abs=1e-6
    )


def test_a_diverging_member_is_recorded_failed_while_the_others_finish(cifar10_dir, tmp_path):
  configs = [
      tiny_config(cifar10_dir, **BASE, seed=s, **{'optimizer.learning_rate': lr}) for s, lr in ((0, 0.05), (1, 1e30))
  ]
  summaries = group.Group(configs, [tmp_path / 'ok', tmp_path / 'diverged']).run()
  assert [s['status'] for s in summaries] == ['completed', 'failed']
  assert 'non-finite' in summary(tmp_path / 'diverged')['error']
  assert summary(tmp_path / 'ok')['epochs'] == 2


def test_grouping_rules(cifar10_dir):
  def config(**overrides):
    return tiny_config(cifar10_dir, **{'data.pipeline': 'device', **overrides})

  configs = [
      config(seed=0),  # 0
      config(seed=1, **{'optimizer.learning_rate': 0.3}),  # 1: numbers only -> with 0
      config(**{'model.hidden_sizes': (16,)}),  # 2: another shape -> alone
      config(**{'optimizer.momentum': 0.0}),  # 3: momentum switched off -> another structure
      config(**{'schedule.name': 'plateau'}),  # 4: ReduceLROnPlateau is never grouped
      config(seed=5, log_every_steps=7),  # 5: its own log points (a group logs at its first member's) -> alone
      config(**{'data.pipeline': 'tfdata'}),  # 6: host pipeline -> alone
      config(seed=7, **{'model.dropout': 0.5}),  # 7: dropout rate is structure -> alone
      config(seed=8, checkpoint_keep=7, steps_per_call=4, eval_batch_size=32),  # 8: same numbers, same loop -> with 0
      config(seed=9, num_train_steps=5),  # 9: its own step cap (a group stops at its first member's) -> alone
  ]
  assert hyper.group_variants(configs, max_members=8) == [[0, 1, 8], [2], [3], [4], [5], [6], [7], [9]]
  assert hyper.group_variants(configs, max_members=2) == [[0, 1], [8], [2], [3], [4], [5], [6], [7], [9]]
  with pytest.raises(ConfigError, match='max_members=0'):
    hyper.group_variants(configs, max_members=0)


def test_members_that_differ_in_structure_are_refused(cifar10_dir, tmp_path):
  configs = [tiny_config(cifar10_dir, **BASE), tiny_config(cifar10_dir, **BASE, **{'optimizer.momentum': 0.0})]
  with pytest.raises(ConfigError, match='cannot train as one group'):
    group.Group(configs, [tmp_path / 'a', tmp_path / 'b'])


def test_a_stopped_group_resumes_to_the_numbers_of_an_uninterrupted_one(cifar10_dir, tmp_path):
  """SIGTERM after the third call (step 12 of 16, mid-epoch): every member is checkpointed there. One member's
  step-12 checkpoint is then deleted, so the group resumes from the common step 8 and recomputes step 12 for
  the other; it ends bit-identical (CPU) to the uninterrupted group, and a member resumed by a sequential
  run ends like its group member (float32 rounding, as above)."""
  configs = [tiny_config(cifar10_dir, **BASE, **member) for member in MEMBERS[:2]]
  group.Group(configs, [tmp_path / f'whole/{k}' for k in range(2)]).run()

  stopped = group.Group(configs, [tmp_path / f'stopped/{k}' for k in range(2)])
  call, calls = stopped._call, []

  def call_then_signal(*args):
    calls.append(args[-1])
    if len(calls) == 3:
      os.kill(os.getpid(), signal.SIGTERM)
    return call(*args)

  stopped._call = call_then_signal
  with pytest.raises(preemption.Stopped, match='step 12') as raised:
    stopped.run()
  assert raised.value.exit_status == 143
  assert [checkpoint_steps(tmp_path / f'stopped/{k}') for k in range(2)] == [[8, 12], [8, 12]]

  shutil.copytree(tmp_path / 'stopped/0', tmp_path / 'sequential')
  shutil.rmtree(tmp_path / 'stopped/1/checkpoints/latest/12')
  group.Group(configs, [tmp_path / f'stopped/{k}' for k in range(2)]).run()
  for k in range(2):
    assert metric_lines(tmp_path / f'stopped/{k}') == metric_lines(tmp_path / f'whole/{k}')
    assert_same_params(tmp_path / f'stopped/{k}', tmp_path / f'whole/{k}')
    assert _untimed(summary(tmp_path / f'stopped/{k}')) == _untimed(summary(tmp_path / f'whole/{k}'))

  trainer.train_and_evaluate(configs[0], tmp_path / 'sequential')
  _close(metric_lines(tmp_path / 'sequential'), metric_lines(tmp_path / 'whole/0'))


# The group engine's rules (which runs may share a group, which checkpoint step they share, what a diverged member
# leaves, what a resume checks), each against what a sequential run does.


@pytest.mark.parametrize('key', hyper._ZERO_MATTERS)  # pylint: disable=protected-access
def test_a_number_whose_zero_drops_a_term_is_structure(cifar10_dir, key):
  """Two non-zero values may share a group; zero and non-zero may not (the builders add the term only when it is
  non-zero, so they are two programs), and the traced value refuses to answer for members that differ."""

  def config(value):
    return tiny_config(cifar10_dir, **{'data.pipeline': 'device', key: value})

  assert hyper.group_key(config(0.1)) == hyper.group_key(config(0.2))
  assert hyper.group_key(config(0.0)) != hyper.group_key(config(0.1))
  with pytest.raises(ConfigError, match=f'differ in the structure of {key}'):
    bool(hyper.Hyper(key, jnp.zeros(()), (0.0, 0.1)))


def test_momentum_zero_is_another_optimizer_state():
  """Why zero is structure: with momentum 0 optax's SGD keeps no trace, so the state trees differ (as
  torch.optim.SGD keeps no momentum buffer then)."""
  params = {'w': jnp.ones(3)}
  with_momentum = optax.sgd(0.1, momentum=0.9).init(params)
  without = optax.sgd(0.1, momentum=None).init(params)
  assert jax.tree.structure(with_momentum) != jax.tree.structure(without)


def test_members_without_a_common_checkpoint_step_are_refused(cifar10_dir, tmp_path):
  configs = [tiny_config(cifar10_dir, **BASE, **member) for member in MEMBERS[:2]]
  trainer.train_and_evaluate(tiny_config(cifar10_dir, **BASE, **MEMBERS[0], num_train_steps=4), tmp_path / 'a')
  trainer.train_and_evaluate(tiny_config(cifar10_dir, **BASE, **MEMBERS[1], num_train_steps=8), tmp_path / 'b')
  assert (checkpoint_steps(tmp_path / 'a'), checkpoint_steps(tmp_path / 'b')) == ([4], [8])
  with pytest.raises(UserError, match='no checkpoint at a common step'):
    group.Group(configs, [tmp_path / 'a', tmp_path / 'b'])


def test_a_diverged_member_leaves_what_its_sequential_run_leaves(cifar10_dir, tmp_path):
  """Member 1's learning rate is multiplied by 1e38 after epoch 1: it diverges between steps 8 and 12. Its folder
  keeps the finite step-8 checkpoint and nothing after, as the sequential run's does, with the same summary."""
  diverging = {'schedule.name': 'step', 'schedule.step_epochs': 1}
  configs = [
      tiny_config(cifar10_dir, **BASE, **diverging, seed=s, **{'schedule.gamma': g}) for s, g in ((0, 0.5), (1, 1e38))
  ]
  summaries = group.Group(configs, [tmp_path / 'ok', tmp_path / 'diverged']).run()
  assert [s['status'] for s in summaries] == ['completed', 'failed']
  with pytest.raises(run_book.TrainingDiverged):
    trainer.train_and_evaluate(configs[1], tmp_path / 'alone')
  assert summary(tmp_path / 'diverged') == summary(tmp_path / 'alone') == summaries[1]
  assert 'between steps 8 and 12' in summaries[1]['error'] and summaries[1]['steps'] == 12
  assert checkpoint_steps(tmp_path / 'diverged') == checkpoint_steps(tmp_path / 'alone') == [8]
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(latest_params(tmp_path / 'diverged')))
  assert checkpoint_steps(tmp_path / 'ok') == [8, 16]


def test_a_group_resume_checks_each_member_folder_as_a_sequential_resume_does(cifar10_dir, tmp_path):
  configs = [tiny_config(cifar10_dir, **BASE, **member, num_train_steps=8) for member in MEMBERS[:2]]
  group.Group(configs, [tmp_path / 'a', tmp_path / 'b']).run()
  changed = [tiny_config(cifar10_dir, **BASE, **member) for member in MEMBERS[:2]]
  changed[1].optimizer.learning_rate = 0.03  # a number members may differ in, but not a run and its resume
  with pytest.raises(ConfigError) as sequential:
    trainer.train_and_evaluate(changed[1], tmp_path / 'b')
  with pytest.raises(ConfigError) as grouped:
    group.Group(changed, [tmp_path / 'a', tmp_path / 'b'])
  assert str(grouped.value) == str(sequential.value)
  assert 'optimizer.learning_rate: 0.02 -> 0.03' in str(grouped.value)
