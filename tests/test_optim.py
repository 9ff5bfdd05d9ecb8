"""Optimizers, schedules and ReduceLROnPlateau follow PyTorch's semantics."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import helpers

from cifar_jax import config_check
from cifar_jax.training import optim
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


def test_adamw_decay_is_decoupled_from_the_gradient():
  config = _config(**{'optimizer.name': 'adamw', 'optimizer.learning_rate': 0.1, 'optimizer.weight_decay': 0.5})
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 10))
  new, _ = _step(tx, {'w': jnp.array([2.0])}, {'w': jnp.array([0.0])})
  np.testing.assert_allclose(new['w'], 2.0 - 0.1 * 0.5 * 2.0, rtol=1e-6)  # only the decay moves it


def test_plateau_reduces_after_patience_bad_epochs_and_stops_at_min_lr():
  """PyTorch's ReduceLROnPlateau(factor 0.1, patience 2): reduce on the 3rd epoch without improvement."""
  config = _config(
      **{
          'schedule.name': 'plateau',
          'schedule.plateau_patience': 2,
          'optimizer.learning_rate': 0.1,
          'schedule.plateau_min_lr': 1e-3,
          'data.val_fraction': 0.1,
      }
  )
  learning_rate = optim.create_learning_rate_fn(config, steps_per_epoch=10)
  state, rates = optim.init_plateau(), []
  for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
    state = learning_rate.after_validation(state, loss)
    rates.append(learning_rate.effective(0, state))
  assert rates[:4] == pytest.approx([0.1] * 4)
  assert rates[4] == pytest.approx(0.01)  # third bad epoch after the best (0.9)
  assert rates[-1] == pytest.approx(1e-3)  # the floor


def test_only_the_plateau_schedule_watches_validation():
  learning_rate = optim.create_learning_rate_fn(_config(**{'schedule.name': 'constant'}), steps_per_epoch=10)
  state = optim.init_plateau()
  for _ in range(20):
    state = learning_rate.after_validation(state, 1.0)
  assert float(state.scale) == 1.0


def test_plateau_scale_multiplies_every_update():
  updates = optim.scale_updates({'w': jnp.array([2.0, -4.0])}, optim.init_plateau()._replace(scale=jnp.array(0.25)))
  np.testing.assert_allclose(updates['w'], [0.5, -1.0])


@pytest.mark.parametrize(
    'key, value, message',
    [
        ('optimizer.name', 'lbfgs', 'optimizer.name'),
        ('schedule.name', 'cyclic', 'schedule.name'),
        ('optimizer.learning_rate', 0.0, 'optimizer.learning_rate'),
        ('optimizer.learning_rate', -1.0, 'optimizer.learning_rate'),
        ('optimizer.momentum', -0.5, 'optimizer.momentum'),
        ('schedule.plateau_threshold', 0.0, 'schedule.plateau_threshold'),
        ('schedule.plateau_cooldown', -1, 'schedule.plateau_cooldown'),
    ],
)
def test_bad_optimizer_settings_name_the_key(key, value, message):
  with pytest.raises(ConfigError, match=message):
    config_check.check_optim_config(_config(**{key: value}))


def test_unknown_optimizer_lists_the_choices():
  with pytest.raises(ConfigError, match='adadelta, adagrad, adam, adamw, muon, rmsprop, sgd'):
    config_check.check_optim_config(_config(**{'optimizer.name': 'lbfgs'}))


def test_plateau_needs_a_validation_split():
  with pytest.raises(ConfigError, match='val_fraction'):
    config_check.check_optim_config(_config(**{'schedule.name': 'plateau', 'data.val_fraction': 0.0}))


def test_nesterov_without_momentum_is_refused_like_pytorch():
  with pytest.raises(ConfigError, match='optimizer.nesterov.*optimizer.momentum'):
    config_check.check_optim_config(_config(**{'optimizer.nesterov': True, 'optimizer.momentum': 0.0}))
