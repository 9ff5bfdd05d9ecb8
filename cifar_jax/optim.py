"""Optimizer, learning-rate schedule and ReduceLROnPlateau from the config, with PyTorch's semantics."""

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import ml_collections
import optax

from cifar_jax.errors import ConfigError, check_choice

PlateauState = optax.contrib.ReduceLROnPlateauState


def _sgd(lr: optax.ScalarOrSchedule, cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  return optax.sgd(lr, momentum=cfg.momentum or None, nesterov=cfg.nesterov)


def _rmsprop(lr: optax.ScalarOrSchedule, cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  # PyTorch's RMSprop: alpha 0.99, eps added outside the square root.
  return optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False, momentum=cfg.momentum or None)


def _adagrad(lr: optax.ScalarOrSchedule, cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  del cfg  # PyTorch's Adagrad starts its accumulator at 0 with eps 1e-10.
  return optax.adagrad(lr, initial_accumulator_value=0.0, eps=1e-10)


OPTIMIZERS: dict[str, Callable[[optax.ScalarOrSchedule, ml_collections.ConfigDict], optax.GradientTransformation]] = {
    'sgd': _sgd,
    'adam': lambda lr, cfg: optax.adam(lr),
    'adamw': lambda lr, cfg: optax.adamw(lr, weight_decay=cfg.weight_decay),
    'adagrad': _adagrad,
    'rmsprop': _rmsprop,
    'adadelta': lambda lr, cfg: optax.adadelta(lr, rho=0.9, eps=1e-6),
}

SCHEDULES = ('constant', 'step', 'multistep', 'exponential', 'cosine', 'warmup_cosine', 'onecycle', 'plateau')


def check_optim_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for an unknown optimizer or schedule or an out-of-range value."""
  check_choice('optimizer.name', config.optimizer.name, OPTIMIZERS)
  check_choice('schedule.name', config.schedule.name, SCHEDULES)
  if not config.optimizer.learning_rate > 0:
    raise ConfigError(f'optimizer.learning_rate={config.optimizer.learning_rate!r} must be > 0')
  for key in ('momentum', 'weight_decay', 'grad_clip_norm'):
    if config.optimizer[key] < 0:
      raise ConfigError(f'optimizer.{key}={config.optimizer[key]!r} must be >= 0')
  if config.schedule.name == 'plateau' and config.data.val_fraction <= 0:
    raise ConfigError('schedule.name=plateau watches the validation loss: set data.val_fraction > 0')


def create_learning_rate_fn(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """The learning rate as a function of the step; epoch-based schedules step once per epoch like PyTorch's."""
  lr = config.optimizer.learning_rate
  sched = config.schedule
  total_steps = max(1, config.num_epochs * steps_per_epoch)
  if sched.name in ('constant', 'plateau'):
    return optax.constant_schedule(lr)
  if sched.name == 'step':
    return optax.exponential_decay(lr, sched.step_epochs * steps_per_epoch, sched.gamma, staircase=True)
  if sched.name == 'multistep':
    return optax.piecewise_constant_schedule(lr, {int(m * steps_per_epoch): sched.gamma for m in sched.milestones})
  if sched.name == 'exponential':
    return optax.exponential_decay(lr, steps_per_epoch, sched.gamma, staircase=True)
  if sched.name == 'cosine':
    return optax.cosine_decay_schedule(lr, total_steps)
  if sched.name == 'warmup_cosine':
    warmup = int(sched.warmup_epochs * steps_per_epoch)
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
  if sched.name == 'onecycle':
    return optax.cosine_onecycle_schedule(total_steps, lr)
  raise ConfigError(f'schedule.name={sched.name!r} is not one of: {", ".join(SCHEDULES)}')


def create_optimizer(config: ml_collections.ConfigDict,
                     learning_rate_fn: optax.Schedule) -> optax.GradientTransformation:
  """Gradient clipping, then PyTorch-style L2 weight decay (decoupled for adamw), then the optimizer."""
  cfg = config.optimizer
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  if cfg.weight_decay > 0 and cfg.name != 'adamw':
    parts.append(optax.add_decayed_weights(cfg.weight_decay))
  parts.append(OPTIMIZERS[cfg.name](learning_rate_fn, cfg))
  return optax.chain(*parts)


def create_plateau(config: ml_collections.ConfigDict) -> optax.GradientTransformationExtraArgs:
  """ReduceLROnPlateau on the validation loss (mode min, threshold 1e-4 relative, like PyTorch's defaults).

  PyTorch reduces once more than `patience` epochs went without improvement, optax once `patience`
  did: hence patience + 1.
  """
  sched = config.schedule
  return optax.contrib.reduce_on_plateau(
      factor=sched.plateau_factor,
      patience=sched.plateau_patience + 1,
      rtol=1e-4,
      min_scale=sched.plateau_min_lr / config.optimizer.learning_rate,
  )


def plateau_update(plateau: optax.GradientTransformationExtraArgs, state: PlateauState, val_loss: Any) -> PlateauState:
  """Feeds one epoch's validation loss to the plateau tracker and returns its new state (scale = lr factor)."""
  _, new_state = plateau.update(jnp.zeros(()), state, value=jnp.asarray(val_loss, jnp.float32))
  return new_state
