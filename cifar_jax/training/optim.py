"""Optimizers, learning-rate schedules and ReduceLROnPlateau from the config, with PyTorch's semantics.

Each optimizer follows its torch.optim update rule and defaults; each schedule is its torch.optim.lr_scheduler
closed form (tests/test_parity.py writes them out). Epoch-based schedules (step, multistep, exponential,
cosine_epoch) hold their rate for a whole epoch, as a PyTorch scheduler stepped once per epoch does; cosine,
warmup_cosine and onecycle change it every step. A new optimizer or schedule is one entry in OPTIMIZERS or
SCHEDULES.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from cifar_jax.errors import ConfigError, check_choice

PlateauState = optax.contrib.ReduceLROnPlateauState
Hyper = float | optax.Schedule  # a constant, or a function of the step (OneCycleLR cycles the momentum)

# torch.optim's defaults.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
ADAGRAD_EPS = 1e-10
RMSPROP_ALPHA = 0.99
RMSPROP_EPS = 1e-8
ADADELTA_RHO = 0.9
ADADELTA_EPS = 1e-6
CLIP_NORM_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by total_norm + 1e-6
# OneCycleLR's defaults (anneal_strategy 'cos', three_phase False).
ONECYCLE_PCT_START = 0.3
ONECYCLE_DIV_FACTOR = 25.0
ONECYCLE_FINAL_DIV_FACTOR = 1e4
ONECYCLE_MOMENTUM = (0.85, 0.95)  # base_momentum, max_momentum


def _value(hyper: Hyper, count: jax.Array) -> jax.Array:
  return hyper(count) if callable(hyper) else jnp.asarray(hyper)


class _CountedState(NamedTuple):
  count: jax.Array  # steps taken, for step-dependent hyperparameters
  moments: tuple[optax.Updates, ...]


def _zeros_state(params: optax.Params, num_moments: int) -> _CountedState:
  return _CountedState(jnp.zeros((), jnp.int32), tuple(optax.tree.zeros_like(params) for _ in range(num_moments)))


def _trace(momentum: Hyper, nesterov: bool) -> optax.GradientTransformation:
  """torch.optim's momentum buffer: buf = m * buf + g (g at the first step); Nesterov steps along g + m * buf."""

  def update(updates, state, params=None):
    del params
    m = _value(momentum, state.count)
    buf = jax.tree.map(lambda g, b: m * b + g, updates, state.moments[0])
    out = jax.tree.map(lambda g, b: g + m * b, updates, buf) if nesterov else buf
    return out, _CountedState(state.count + 1, (buf,))

  return optax.GradientTransformation(lambda params: _zeros_state(params, 1), update)


def _scale_by_adam(beta1: Hyper) -> optax.GradientTransformation:
  """torch.optim.Adam's bias-corrected moments, with the current beta1 in the correction (OneCycleLR cycles it)."""
  beta2 = ADAM_BETAS[1]

  def update(updates, state, params=None):
    del params
    b1, count = _value(beta1, state.count), state.count + 1
    mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, updates, state.moments[0])
    nu = jax.tree.map(lambda g, v: beta2 * v + (1 - beta2) * g * g, updates, state.moments[1])
    c1, c2 = 1 - b1**count, 1 - beta2**count
    out = jax.tree.map(lambda m, v: (m / c1) / (jnp.sqrt(v / c2) + ADAM_EPS), mu, nu)
    return out, _CountedState(count, (mu, nu))

  return optax.GradientTransformation(lambda params: _zeros_state(params, 2), update)


def _scale_by_adagrad() -> optax.GradientTransformation:
  """torch.optim.Adagrad (lr_decay 0): g / (sqrt(sum of g^2) + eps), eps outside the root (optax puts it inside)."""

  def update(updates, state, params=None):
    del params
    total = jax.tree.map(lambda g, s: s + g * g, updates, state.moments[0])
    out = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + ADAGRAD_EPS), updates, total)
    return out, _CountedState(state.count + 1, (total,))

  return optax.GradientTransformation(lambda params: _zeros_state(params, 1), update)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
  """torch.nn.utils.clip_grad_norm_: scales by max_norm / (norm + 1e-6) when that is below 1."""

  def clip(updates, params=None):
    del params
    factor = jnp.minimum(1.0, max_norm / (optax.tree.norm(updates) + CLIP_NORM_EPS))
    return jax.tree.map(lambda g: g * factor, updates)

  return optax.stateless(clip)


def _sgd(lr: optax.Schedule, cycled: optax.Schedule | None, cfg: ml_collections.ConfigDict):
  momentum = cycled or cfg.momentum
  if not momentum:
    return optax.sgd(lr)
  return optax.chain(_trace(momentum, cfg.nesterov), optax.scale_by_learning_rate(lr))


def _rmsprop(lr: optax.Schedule, cycled: optax.Schedule | None, cfg: ml_collections.ConfigDict):
  # The rate multiplies the whole momentum buffer, as in PyTorch (optax.rmsprop applies it before the trace).
  momentum = cycled or cfg.momentum
  rms = optax.scale_by_rms(decay=RMSPROP_ALPHA, eps=RMSPROP_EPS, eps_in_sqrt=False)
  parts = [rms, _trace(momentum, nesterov=False)] if momentum else [rms]
  return optax.chain(*parts, optax.scale_by_learning_rate(lr))


def _adam(decoupled_decay: bool):
  def build(lr: optax.Schedule, cycled: optax.Schedule | None, cfg: ml_collections.ConfigDict):
    decay = [optax.add_decayed_weights(cfg.weight_decay)] if decoupled_decay else []
    return optax.chain(_scale_by_adam(cycled or ADAM_BETAS[0]), *decay, optax.scale_by_learning_rate(lr))

  return build


# Each takes (learning-rate schedule, OneCycleLR's momentum or None, config.optimizer). Under onecycle the cycled
# momentum replaces optimizer.momentum (sgd, rmsprop) or beta1 (adam, adamw), as OneCycleLR does.
OPTIMIZERS: dict[
    str, Callable[[optax.Schedule, optax.Schedule | None, ml_collections.ConfigDict], optax.GradientTransformation]
] = {
    'sgd': _sgd,
    'adam': _adam(decoupled_decay=False),
    'adamw': _adam(decoupled_decay=True),
    'adagrad': lambda lr, cycled, cfg: optax.chain(_scale_by_adagrad(), optax.scale_by_learning_rate(lr)),
    'rmsprop': _rmsprop,
    'adadelta': lambda lr, cycled, cfg: optax.adadelta(lr, rho=ADADELTA_RHO, eps=ADADELTA_EPS),
}


class Schedule(NamedTuple):
  """A schedule's learning rate and, for OneCycleLR, the momentum it cycles, both functions of the step."""

  learning_rate: optax.Schedule
  momentum: optax.Schedule | None = None


def _per_epoch(rate: Callable[[jax.Array], jax.Array], steps_per_epoch: int) -> Schedule:
  return Schedule(lambda step: rate(jnp.asarray(step) // steps_per_epoch))


def _cosine(peak: float, position: jax.Array, length: int) -> jax.Array:
  """CosineAnnealingLR's closed form with eta_min 0."""
  return peak * (1 + jnp.cos(jnp.pi * position / length)) / 2


def _onecycle(lr: float, total_steps: int) -> Schedule:
  """OneCycleLR(max_lr=lr, total_steps) with its defaults: cosine from lr/25 up to lr over 30 % of the steps, then
  down to lr/25/1e4 at the last step; the momentum moves the other way between 0.95 and 0.85."""
  up_end = ONECYCLE_PCT_START * total_steps - 1
  down_end = total_steps - 1
  initial = lr / ONECYCLE_DIV_FACTOR
  base_m, max_m = ONECYCLE_MOMENTUM

  def anneal(start: float, end: float, pct: jax.Array) -> jax.Array:
    return end + (start - end) / 2 * (jnp.cos(jnp.pi * pct) + 1)

  def cycle(low: float, high: float, final: float) -> optax.Schedule:
    def at(step):
      step = jnp.asarray(step, jnp.result_type(float))
      up = anneal(low, high, step / up_end)
      down = anneal(high, final, (step - up_end) / (down_end - up_end))
      return jnp.where(step <= up_end, up, down)

    return at

  return Schedule(cycle(initial, lr, initial / ONECYCLE_FINAL_DIV_FACTOR), cycle(max_m, base_m, max_m))


# Each takes (peak learning rate, config.schedule, steps_per_epoch, total_steps).
SCHEDULES: dict[str, Callable[[float, ml_collections.ConfigDict, int, int], Schedule]] = {
    'constant': lambda lr, s, epoch_steps, total: Schedule(optax.constant_schedule(lr)),
    'step': lambda lr, s, epoch_steps, total: _per_epoch(  # StepLR
        lambda epoch: lr * s.gamma ** (epoch // s.step_epochs), epoch_steps
    ),
    'multistep': lambda lr, s, epoch_steps, total: _per_epoch(  # MultiStepLR: a repeated milestone applies twice
        lambda epoch: lr * s.gamma ** jnp.sum(epoch >= jnp.asarray(s.milestones, jnp.int32)), epoch_steps
    ),
    'exponential': lambda lr, s, epoch_steps, total: _per_epoch(  # ExponentialLR
        lambda epoch: lr * s.gamma**epoch, epoch_steps
    ),
    'cosine': lambda lr, s, epoch_steps, total: Schedule(  # CosineAnnealingLR(T_max=total steps), stepped per batch
        lambda step: _cosine(lr, jnp.minimum(step, total), total)
    ),
    'cosine_epoch': lambda lr, s, epoch_steps, total: _per_epoch(  # CosineAnnealingLR(T_max=num_epochs), per epoch
        lambda epoch: _cosine(lr, epoch, total // epoch_steps), epoch_steps
    ),
    'warmup_cosine': lambda lr, s, epoch_steps, total: Schedule(  # linear from 0 over warmup_epochs, then cosine to 0
        optax.warmup_cosine_decay_schedule(
            0.0, lr, int(s.warmup_epochs * epoch_steps), max(total, int(s.warmup_epochs * epoch_steps) + 1)
        )
    ),
    'onecycle': lambda lr, s, epoch_steps, total: _onecycle(lr, total),
    'plateau': lambda lr, s, epoch_steps, total: Schedule(optax.constant_schedule(lr)),  # see LearningRate.plateau
}


def init_plateau() -> PlateauState:
  """A ReduceLROnPlateau state at scale 1; every run carries one so that its TrainState has one structure."""
  return optax.contrib.reduce_on_plateau().init(jnp.zeros((), jnp.float32))


def scale_updates(updates: optax.Updates, plateau: PlateauState) -> optax.Updates:
  """Applies the plateau's share of the learning rate: every optimizer here multiplies its update by the rate last."""
  return jax.tree.map(lambda u: u * plateau.scale, updates)


PlateauUpdate = Callable[[PlateauState, jax.Array], PlateauState]  # (state, validation loss) -> new state


@dataclasses.dataclass(frozen=True)
class LearningRate:
  """The effective learning rate: the schedule's rate at a step times the ReduceLROnPlateau scale.

  Called with a step it is the scheduled rate, which the optimizer applies inside the step. The plateau scale
  lives in `TrainState.plateau`, changes only in `after_validation`, and multiplies the update
  (`scale_updates`), as lowering the lr of a PyTorch param group does.
  """

  schedule: Schedule
  plateau_update: PlateauUpdate | None  # None: the rate does not watch the validation loss

  def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
    return self.schedule.learning_rate(step)

  def effective(self, step: int, plateau: PlateauState) -> float:
    """The rate the update of `step` is taken with."""
    return float(self(step)) * float(plateau.scale)

  def after_validation(self, plateau: PlateauState, val_loss: Any) -> PlateauState:
    """Feeds one epoch's validation loss to ReduceLROnPlateau (mode min); unchanged for other schedules."""
    if self.plateau_update is None:
      return plateau
    return self.plateau_update(plateau, jnp.asarray(val_loss, jnp.float32))


def _reduce_on_plateau(config: ml_collections.ConfigDict) -> PlateauUpdate:
  """ReduceLROnPlateau(mode='min', threshold_mode='rel') with the config's factor, patience, threshold, cooldown.

  PyTorch reduces once more than `patience` epochs went without improvement, optax once `patience` did: hence
  patience + 1. min_lr becomes a floor on the scale.
  """
  sched = config.schedule
  tracker = optax.contrib.reduce_on_plateau(
      factor=sched.plateau_factor,
      patience=sched.plateau_patience + 1,
      rtol=sched.plateau_threshold,
      cooldown=sched.plateau_cooldown,
      min_scale=sched.plateau_min_lr / config.optimizer.learning_rate,
  )
  return jax.jit(lambda state, loss: tracker.update(jnp.zeros(()), state, value=loss)[1])


def create_learning_rate_fn(config: ml_collections.ConfigDict, steps_per_epoch: int) -> LearningRate:
  """The configured learning rate over `config.num_epochs` epochs of `steps_per_epoch` steps."""
  total_steps = max(1, config.num_epochs * steps_per_epoch)
  schedule = SCHEDULES[config.schedule.name](
      config.optimizer.learning_rate, config.schedule, steps_per_epoch, total_steps
  )
  plateau = _reduce_on_plateau(config) if config.schedule.name == 'plateau' else None
  return LearningRate(schedule, plateau)


def create_optimizer(config: ml_collections.ConfigDict, learning_rate: LearningRate) -> optax.GradientTransformation:
  """Gradient clipping, then PyTorch-style L2 weight decay (decoupled for adamw), then the optimizer."""
  cfg = config.optimizer
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(clip_by_global_norm(cfg.grad_clip_norm))
  if cfg.weight_decay > 0 and cfg.name != 'adamw':
    parts.append(optax.add_decayed_weights(cfg.weight_decay))
  parts.append(OPTIMIZERS[cfg.name](learning_rate.schedule.learning_rate, learning_rate.schedule.momentum, cfg))
  return optax.chain(*parts)


def check_optim_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for an unknown optimizer or schedule or an out-of-range value."""
  check_choice('optimizer.name', config.optimizer.name, OPTIMIZERS)
  check_choice('schedule.name', config.schedule.name, SCHEDULES)
  if not config.optimizer.learning_rate > 0:
    raise ConfigError(f'optimizer.learning_rate={config.optimizer.learning_rate!r} must be > 0')
  for key in ('momentum', 'weight_decay', 'grad_clip_norm'):
    if config.optimizer[key] < 0:
      raise ConfigError(f'optimizer.{key}={config.optimizer[key]!r} must be >= 0')
  if config.optimizer.nesterov and not config.optimizer.momentum > 0:
    raise ConfigError('optimizer.nesterov=True needs optimizer.momentum > 0 (PyTorch refuses Nesterov without it)')
  if not 0 < config.schedule.plateau_threshold < 1:
    raise ConfigError(f'schedule.plateau_threshold={config.schedule.plateau_threshold!r} is outside (0, 1)')
  if config.schedule.plateau_cooldown < 0:
    raise ConfigError(f'schedule.plateau_cooldown={config.schedule.plateau_cooldown!r} must be >= 0')
  if config.schedule.name == 'plateau' and config.data.val_fraction <= 0:
    raise ConfigError('schedule.name=plateau watches the validation loss: set data.val_fraction > 0')
