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


def test_fused_steps_train_like_single_steps(cifar10_dir, tmp_path):
  # Crop, flip and dropout make every step's batch and key matter; 2 calls of 3 and one of 2 per 8-step epoch.
  overrides = {
      'data.pipeline': 'device',
      'augment.ops': ('random_crop', 'horizontal_flip'),
      'model.dropout': 0.3,
      'log_every_steps': 4,
      'num_train_steps': 18,
  }
  for name, k in (('single', 1), ('fused', 3)):
    trainer.train_and_evaluate(tiny_config(cifar10_dir, steps_per_call=k, **overrides), tmp_path / name)
  # Not bit for bit: XLA fuses the scanned step's float32 reductions differently (a last-bit difference in the
  # loss was seen on CPU). Same data, keys and steps, so the runs agree to float32 rounding, 18 steps on.
  fused_lines, single_lines = metric_lines(tmp_path / 'fused'), metric_lines(tmp_path / 'single')
  assert [(line['kind'], line['step']) for line in fused_lines] == [
      (line['kind'], line['step']) for line in single_lines
  ]
  for line, want in zip(fused_lines, single_lines):
    del line['kind'], want['kind']
    assert line == pytest.approx(want, rel=1e-5, abs=1e-6)
  params = [jax.tree.leaves(latest_params(tmp_path / name)) for name in ('fused', 'single')]
  for a, b in zip(*params):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert summary(tmp_path / 'fused')['steps'] == 18


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
