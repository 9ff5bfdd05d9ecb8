"""build_experiment: the run's length, and steps that carry every regularization setting of the config."""

import jax
import numpy as np
import pytest
from flax import nnx

from cifar_jax.training import experiment
from cifar_jax.data import cifar10, device
from configs import default

LEARNING_RATE = 0.1


def _data(num_train: int = 100) -> cifar10.Cifar10:
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (num_train, 32, 32, 3), dtype=np.uint8)
  split = cifar10.Split(images, rng.integers(0, 10, num_train).astype(np.int32))
  return cifar10.Cifar10(train=split, val=None, test=split)


def _config(**regularization: float):
  """A small MLP trained by plain SGD (no momentum, no weight decay), batch 16, on the device pipeline."""
  config = default.get_config()
  config.model.name, config.model.hidden_sizes = 'mlp', (8,)
  config.batch_size, config.data.pipeline = 16, 'device'
  config.optimizer.update(learning_rate=LEARNING_RATE, momentum=0.0, weight_decay=0.0)
  config.schedule.name = 'constant'
  config.regularization.update(regularization)
  return config


@pytest.mark.parametrize('epochs, cap, total, reached', [(5, -1, 30, 5), (5, 13, 13, 3), (5, 100, 30, 5)])
def test_run_length_from_epochs_and_the_step_cap(epochs: int, cap: int, total: int, reached: int) -> None:
  config = _config()
  config.num_epochs, config.num_train_steps = epochs, cap
  exp = experiment.build_experiment(config, _data())
  assert exp.steps_per_epoch == 100 // 16 and isinstance(exp.pipeline, device.DevicePipeline)
  assert (exp.total_steps, exp.num_epochs) == (total, reached)
  assert exp.num_params == 3072 * 8 + 8 + 8 * 10 + 10


def _first_step_params(config) -> list[np.ndarray]:
  exp = experiment.build_experiment(config, _data())
  state, _ = exp.train_step(exp.dp.put_state(exp.state), exp.dp.put_batch(next(exp.pipeline.train_batches(0))))
  return [np.asarray(p) for p in jax.tree.leaves(jax.device_get(state.params))]


@pytest.mark.parametrize(
    'key, gradient',
    [
        ('l1', lambda p, c: c * np.sign(p)),  # d/dp c|p| = c sign(p)
        ('l2', lambda p, c: 2 * c * p),  # d/dp c p^2 = 2 c p
    ],
)
def test_train_step_adds_the_configs_weight_penalty(key: str, gradient) -> None:
  """One SGD step from the same start: the penalty's gradient times the learning rate is the only difference."""
  strength = 0.01
  start = [np.asarray(p) for p in jax.tree.leaves(experiment.build_experiment(_config(), _data()).state.params)]
  plain, penalized = _first_step_params(_config()), _first_step_params(_config(**{key: strength}))
  for p0, a, b in zip(start, plain, penalized):
    nonzero = p0 != 0  # the biases start at 0, where jnp.abs's gradient is 1 and torch's is 0: not this test's point
    np.testing.assert_allclose((b - a)[nonzero], -LEARNING_RATE * gradient(p0, strength)[nonzero], atol=1e-6)


def test_train_step_smooths_the_labels() -> None:
  """The step's loss is cross-entropy against (1 - e) one-hot + e / 10, as torch's label_smoothing defines it."""
  smoothing = 0.5
  exp = experiment.build_experiment(_config(label_smoothing=smoothing), _data())
  batch = jax.device_get(next(exp.pipeline.train_batches(0)))
  _, metrics = exp.train_step(exp.dp.put_state(exp.state), exp.dp.put_batch(batch))
  model = nnx.merge(exp.graphdef, exp.state.params, exp.state.model_state)  # an MLP: no dropout, no BatchNorm
  logits = np.asarray(model(batch['image'], train=False), np.float64)
  log_p = logits - logits.max(-1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
  nll = -log_p[np.arange(len(log_p)), batch['label']]
  expected = ((1 - smoothing) * nll - smoothing / 10 * log_p.sum(-1)).mean()
  assert float(metrics.compute()['loss']) == pytest.approx(expected, rel=1e-5)
  assert abs(expected - nll.mean()) > 1e-3  # the smoothing is visible at this tolerance
