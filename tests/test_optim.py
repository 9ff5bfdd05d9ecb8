"""Optimizers, schedules and ReduceLROnPlateau follow PyTorch's semantics."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import helpers

from cifar_jax import optim
from cifar_jax.errors import ConfigError
from configs import default


def _config(**overrides):
  return helpers.override(default.get_config(), num_epochs=10, **overrides)


def _step(tx, params, grads, state=None):
  state = tx.init(params) if state is None else state
  updates, state = tx.update(grads, state, params)
  return optax.apply_updates(params, updates), state


@pytest.mark.parametrize('name', sorted(optim.OPTIMIZERS))
def test_every_optimizer_moves_parameters_against_the_gradient(name):
  config = _config(**{'optimizer.name': name, 'optimizer.learning_rate': 0.1, 'optimizer.weight_decay': 0.0})
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, steps_per_epoch=10))
  params = {'w': jnp.ones(3)}
  new, _ = _step(tx, params, {'w': jnp.full(3, 0.5)})
  assert np.all(np.asarray(new['w']) < 1.0)


def test_sgd_weight_decay_and_momentum_match_pytorch():
  """PyTorch SGD: g += wd * p; buf = m * buf + g; p -= lr * buf."""
  lr, wd, m = 0.1, 0.01, 0.9
  config = _config(**{'optimizer.learning_rate': lr, 'optimizer.weight_decay': wd, 'optimizer.momentum': m,
                      'schedule.name': 'constant'})
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 10))
  p, grad = np.array([1.0, -2.0]), np.array([0.5, 0.25])
  params, state, buf = {'w': jnp.asarray(p)}, None, np.zeros(2)
  for _ in range(3):
    params, state = _step(tx, params, {'w': jnp.asarray(grad)}, state)
    buf = m * buf + grad + wd * p
    p = p - lr * buf
  np.testing.assert_allclose(params['w'], p, rtol=1e-6)


def test_adamw_decay_is_decoupled_from_the_gradient():
  config = _config(**{'optimizer.name': 'adamw', 'optimizer.learning_rate': 0.1, 'optimizer.weight_decay': 0.5})
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 10))
  new, _ = _step(tx, {'w': jnp.array([2.0])}, {'w': jnp.array([0.0])})
  np.testing.assert_allclose(new['w'], 2.0 - 0.1 * 0.5 * 2.0, rtol=1e-6)  # only the decay moves it


def test_gradient_clipping_bounds_the_step():
  config = _config(**{'optimizer.momentum': 0.0, 'optimizer.weight_decay': 0.0, 'optimizer.grad_clip_norm': 1.0,
                      'optimizer.learning_rate': 1.0, 'schedule.name': 'constant'})
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 10))
  new, _ = _step(tx, {'w': jnp.zeros(2)}, {'w': jnp.array([30.0, 40.0])})
  np.testing.assert_allclose(new['w'], [-0.6, -0.8], rtol=1e-6)


@pytest.mark.parametrize('name, step, expected', [
    ('constant', 95, 1.0),
    ('step', 29, 1.0), ('step', 30, 0.5),  # step_epochs 3 at 10 steps per epoch
    ('multistep', 19, 1.0), ('multistep', 20, 0.5), ('multistep', 50, 0.25),  # milestones 2, 5
    ('exponential', 9, 1.0), ('exponential', 10, 0.5), ('exponential', 25, 0.25),  # per epoch
    ('cosine', 0, 1.0), ('cosine', 50, 0.5), ('cosine', 100, 0.0),
    ('warmup_cosine', 0, 0.0), ('warmup_cosine', 10, 0.5), ('warmup_cosine', 20, 1.0),  # 2 warmup epochs
])
def test_schedules_step_like_pytorch(name, step, expected):
  config = _config(**{'schedule.name': name, 'optimizer.learning_rate': 1.0, 'schedule.gamma': 0.5,
                      'schedule.step_epochs': 3, 'schedule.milestones': (2, 5), 'schedule.warmup_epochs': 2.0})
  lr = optim.create_learning_rate_fn(config, steps_per_epoch=10)
  assert float(lr(step)) == pytest.approx(expected, abs=1e-6)


def test_onecycle_rises_to_the_peak_then_falls():
  config = _config(**{'schedule.name': 'onecycle', 'optimizer.learning_rate': 1.0})
  lr = optim.create_learning_rate_fn(config, steps_per_epoch=10)
  values = [float(lr(s)) for s in range(0, 101, 5)]
  peak = int(np.argmax(values))
  assert 0 < peak < len(values) - 1
  assert values[peak] == pytest.approx(1.0, abs=0.01)
  assert values[0] < 0.1 and values[-1] < 0.01


def test_plateau_reduces_after_patience_bad_epochs_and_stops_at_min_lr():
  """PyTorch's ReduceLROnPlateau(factor 0.1, patience 2): reduce on the 3rd epoch without improvement."""
  config = _config(**{'schedule.name': 'plateau', 'schedule.plateau_patience': 2, 'optimizer.learning_rate': 0.1,
                      'schedule.plateau_min_lr': 1e-3, 'data.val_fraction': 0.1})
  plateau = optim.create_plateau(config)
  state = plateau.init(None)
  scales = []
  for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
    state = optim.plateau_update(plateau, state, loss)
    scales.append(float(state.scale))
  assert scales[:4] == [1.0, 1.0, 1.0, 1.0]
  assert scales[4] == pytest.approx(0.1)  # third bad epoch after the best (0.9)
  assert scales[-1] == pytest.approx(0.01)  # 0.1 * 0.01 = the 1e-3 floor


@pytest.mark.parametrize('key, value, message', [
    ('optimizer.name', 'lbfgs', 'optimizer.name'),
    ('schedule.name', 'cyclic', 'schedule.name'),
    ('optimizer.learning_rate', 0.0, 'optimizer.learning_rate'),
    ('optimizer.learning_rate', -1.0, 'optimizer.learning_rate'),
    ('optimizer.momentum', -0.5, 'optimizer.momentum'),
])
def test_bad_optimizer_settings_name_the_key(key, value, message):
  with pytest.raises(ConfigError, match=message):
    optim.check_optim_config(_config(**{key: value}))


def test_unknown_optimizer_lists_the_choices():
  with pytest.raises(ConfigError, match='adadelta, adagrad, adam, adamw, rmsprop, sgd'):
    optim.check_optim_config(_config(**{'optimizer.name': 'lbfgs'}))


def test_plateau_needs_a_validation_split():
  with pytest.raises(ConfigError, match='val_fraction'):
    optim.check_optim_config(_config(**{'schedule.name': 'plateau', 'data.val_fraction': 0.0}))
