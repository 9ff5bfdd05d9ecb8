"""Optimizers, learning-rate schedules and ReduceLROnPlateau from the config, with PyTorch's semantics.

Each optimizer follows its torch.optim update rule and defaults; each schedule is its torch.optim.lr_scheduler
closed form (tests/test_parity.py writes them out). Epoch-based schedules (step, multistep, exponential,
cosine_epoch) hold their rate for a whole epoch, as a PyTorch scheduler stepped once per epoch does; cosine,
warmup_cosine and onecycle change it every step. A new optimizer or schedule is one entry in OPTIMIZERS or
SCHEDULES, and its name in cifar_jax/config_check.py (which checks a config's names and values without JAX).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

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
# Muon's quintic Newton-Schulz iteration X <- a X + (b A + c A^2) X, A = X X^T (Jordan, 2024), and airbench's eps.
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
NEWTON_SCHULZ_EPS = 1e-7


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


def newton_schulz(matrix: jax.Array, steps: int) -> jax.Array:
  """Approximately orthogonalises `matrix` [m, n] (U S V^T -> about U V^T) in its own dtype: scaled to Frobenius
  norm 1, then `steps` quintic iterations on the wide orientation (the transpose when m > n, then back)."""
  tall = matrix.shape[0] > matrix.shape[1]
  x = matrix.T if tall else matrix
  x = x / (jnp.linalg.norm(x) + NEWTON_SCHULZ_EPS)
  a, b, c = NEWTON_SCHULZ
  for _ in range(steps):
    gram = x @ x.T
    x = a * x + (b * gram + c * gram @ gram) @ x
  return x.T if tall else x


def _orthogonal_step(lr: optax.Schedule, ns_steps: int, dtype: jnp.dtype) -> optax.GradientTransformation:
  """Muon's step on conv kernels [kh, kw, in, out], after the momentum, as airbench takes it: each kernel is
  rescaled to Frobenius norm sqrt(out), then moved by -lr * newton_schulz(update as [kh * kw * in, out]) (torch's
  [out, in * kh * kw] transposed: the same step). The update returned includes the rescaling and the rate."""

  def update(updates, state, params):
    rate = lr(state.count)

    def kernel_step(u: jax.Array, p: jax.Array) -> jax.Array:
      orthogonal = newton_schulz(u.reshape(-1, u.shape[-1]).astype(dtype), ns_steps).astype(p.dtype)
      rescale = jnp.sqrt(p.shape[-1]) / jnp.linalg.norm(p)
      return p * (rescale - 1) - rate * orthogonal.reshape(p.shape)

    return jax.tree.map(kernel_step, updates, params), _CountedState(state.count + 1, ())

  return optax.GradientTransformation(lambda params: _zeros_state(params, 0), update)


def muon_label(path: tuple[Any, ...], leaf: jax.Array) -> str:
  """The `muon` optimizer's group of a parameter: 'filters' (4-D conv kernels), 'whiten' (under a module named
  whiten), 'head' (under a module named head) or 'other' (biases, BatchNorm, other dense layers)."""
  names = {str(getattr(key, 'key', getattr(key, 'name', key))) for key in path}
  if leaf.ndim == 4:
    return 'filters'
  return 'whiten' if 'whiten' in names else 'head' if 'head' in names else 'other'


def _muon(lr: 'LearningRate', cycled: optax.Schedule | None, cfg: ml_collections.ConfigDict):
  """Muon (orthogonalised momentum) for the conv filters, torch.optim.SGD for the rest, as airbench94_muon.

  The SGD groups take PyTorch's L2 weight decay, momentum and Nesterov from the config; the head's rate is
  `head_learning_rate` and its decay scaled so that rate x decay is the other groups' (airbench's wd / lr); the
  whitening bias trains `whiten_bias_epochs` with a rate decaying linearly to 0 over them. Every rate follows the
  schedule's shape. The filters get no weight decay (their norm is reset every step).
  """
  shape = lambda step: lr(step) / cfg.learning_rate  # the schedule's factor on the peak rate
  head_lr = cfg.head_learning_rate or cfg.learning_rate
  whiten_steps = max(1, round(cfg.whiten_bias_epochs * lr.steps_per_epoch))

  def sgd(peak: float, factor: optax.Schedule, weight_decay: float) -> optax.GradientTransformation:
    decay = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
    return optax.chain(*decay, _sgd(lambda step: peak * factor(step), cycled, cfg))

  groups = {
      'filters': optax.chain(
          _trace(cfg.muon_momentum, nesterov=True),
          _orthogonal_step(
              lambda step: cfg.muon_learning_rate * shape(step), cfg.muon_ns_steps, jnp.dtype(cfg.muon_dtype)
          ),
      ),
      'other': sgd(cfg.learning_rate, shape, cfg.weight_decay),
      'head': sgd(head_lr, shape, cfg.weight_decay * cfg.learning_rate / head_lr),
      'whiten': sgd(
          cfg.learning_rate,
          (lambda step: jnp.maximum(0.0, 1 - step / whiten_steps)) if cfg.whiten_bias_epochs else shape,
          cfg.weight_decay,
      ),
  }
  return optax.multi_transform(groups, lambda params: jax.tree_util.tree_map_with_path(muon_label, params))


# Each takes (the LearningRate, a schedule of the step; OneCycleLR's momentum or None; config.optimizer). Under
# onecycle the cycled momentum replaces optimizer.momentum (sgd, rmsprop) or beta1 (adam, adamw), as OneCycleLR does.
OPTIMIZERS: dict[
    str, Callable[[optax.Schedule, optax.Schedule | None, ml_collections.ConfigDict], optax.GradientTransformation]
] = {
    'sgd': _sgd,
    'adam': _adam(decoupled_decay=False),
    'adamw': _adam(decoupled_decay=True),
    'adagrad': lambda lr, cycled, cfg: optax.chain(_scale_by_adagrad(), optax.scale_by_learning_rate(lr)),
    'rmsprop': _rmsprop,
    'adadelta': lambda lr, cycled, cfg: optax.adadelta(lr, rho=ADADELTA_RHO, eps=ADADELTA_EPS),
    'muon': _muon,
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
    'linear': lambda lr, s, epoch_steps, total: Schedule(  # LinearLR(1, 0, total_iters=total steps), per batch
        lambda step: lr * (1 - jnp.minimum(step, total) / total)
    ),
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
  steps_per_epoch: int = 1  # for optimizers with epoch-long phases (muon's whitening bias)

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
  return LearningRate(schedule, plateau, steps_per_epoch)


def create_optimizer(config: ml_collections.ConfigDict, learning_rate: LearningRate) -> optax.GradientTransformation:
  """Gradient clipping, then PyTorch-style L2 weight decay (decoupled for adamw, per group for muon), then the
  optimizer."""
  cfg = config.optimizer
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(clip_by_global_norm(cfg.grad_clip_norm))
  if cfg.weight_decay > 0 and cfg.name not in ('adamw', 'muon'):
    parts.append(optax.add_decayed_weights(cfg.weight_decay))
  parts.append(OPTIMIZERS[cfg.name](learning_rate, learning_rate.schedule.momentum, cfg))
  return optax.chain(*parts)
