"""PyTorch's documented rules, written out here in numpy float64, against our optimizers, schedules, BatchNorm and L1.

No torch needed: each reference is the formula of the torch.optim, torch.optim.lr_scheduler or torch.nn page, with
PyTorch's default constants typed in, run in float64 (jax_enable_x64 on for these tests only).
"""

import bisect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import helpers

from cifar_jax.training import optim, steps
from cifar_jax.models import layers
from configs import default

STEPS = 30
GAMMA = 0.9  # ExponentialLR stepped every step: the learning rate changes at each of the 30 steps


@pytest.fixture(autouse=True)
def float64():
  with jax.enable_x64(True):
    yield


def _config(**overrides):
  return helpers.override(default.get_config(), **overrides)


def _gradient(p: np.ndarray, t: int) -> np.ndarray:
  """A gradient that depends on the parameters and the step (a quadratic bowl plus a fixed noise sequence)."""
  return 0.5 * p + np.random.default_rng(t).normal(size=p.shape)


def _run_ours(name: str, lr: float, weight_decay: float, **optimizer) -> np.ndarray:
  config = _config(
      **{
          'optimizer.name': name,
          'optimizer.learning_rate': lr,
          'optimizer.weight_decay': weight_decay,
          'schedule.name': 'exponential',
          'schedule.gamma': GAMMA,
          'num_epochs': STEPS,
          **{f'optimizer.{k}': v for k, v in optimizer.items()},
      }
  )
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, steps_per_epoch=1))
  params = {'w': jnp.asarray(np.linspace(-2.0, 2.0, 7))}
  state = tx.init(params)
  for t in range(STEPS):
    grads = {'w': jnp.asarray(_gradient(np.asarray(params['w']), t))}
    updates, state = tx.update(grads, state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  return np.asarray(params['w'])


def _run_reference(step, lr: float) -> np.ndarray:
  """Runs `step(p, g, lr_t, t, state)` (t from 1, as torch counts) with ExponentialLR's lr_t = lr * GAMMA ** t."""
  p, state = np.linspace(-2.0, 2.0, 7), {}
  for t in range(STEPS):
    p = step(p, _gradient(p, t), lr * GAMMA**t, t + 1, state)
  return p


def _torch_sgd(momentum, weight_decay, nesterov):
  def step(p, g, lr, t, s):
    g = g + weight_decay * p
    if momentum:
      s['buf'] = g if t == 1 else momentum * s['buf'] + g  # dampening 0
      g = g + momentum * s['buf'] if nesterov else s['buf']
    return p - lr * g

  return step


def _torch_adam(weight_decay, decoupled):
  beta1, beta2, eps = 0.9, 0.999, 1e-8  # torch.optim.Adam / AdamW defaults

  def step(p, g, lr, t, s):
    if decoupled:
      p = p * (1 - lr * weight_decay)
    else:
      g = g + weight_decay * p
    s['m'] = beta1 * s.get('m', 0) + (1 - beta1) * g
    s['v'] = beta2 * s.get('v', 0) + (1 - beta2) * g * g
    denom = np.sqrt(s['v']) / math.sqrt(1 - beta2**t) + eps
    return p - lr / (1 - beta1**t) * s['m'] / denom

  return step


def _torch_adagrad(weight_decay):
  eps, lr_decay = 1e-10, 0.0  # torch.optim.Adagrad defaults; initial_accumulator_value 0

  def step(p, g, lr, t, s):
    g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s['sum'] = s.get('sum', 0) + g * g
    return p - clr * g / (np.sqrt(s['sum']) + eps)

  return step


def _torch_rmsprop(momentum, weight_decay):
  alpha, eps = 0.99, 1e-8  # torch.optim.RMSprop defaults; centered False

  def step(p, g, lr, t, s):
    g = g + weight_decay * p
    s['v'] = alpha * s.get('v', 0) + (1 - alpha) * g * g
    avg = np.sqrt(s['v']) + eps
    if momentum:
      s['buf'] = momentum * s.get('buf', 0) + g / avg
      return p - lr * s['buf']
    return p - lr * g / avg

  return step


def _torch_adadelta(weight_decay):
  rho, eps = 0.9, 1e-6  # torch.optim.Adadelta defaults

  def step(p, g, lr, t, s):
    g = g + weight_decay * p
    s['v'] = rho * s.get('v', 0) + (1 - rho) * g * g
    delta = np.sqrt(s.get('u', 0) + eps) / np.sqrt(s['v'] + eps) * g
    s['u'] = rho * s.get('u', 0) + (1 - rho) * delta * delta
    return p - lr * delta

  return step


@pytest.mark.parametrize(
    'name, lr, options, reference',
    [
        ('sgd', 0.1, {'momentum': 0.0}, _torch_sgd(0.0, 0.01, False)),
        ('sgd', 0.1, {'momentum': 0.9}, _torch_sgd(0.9, 0.01, False)),
        ('sgd', 0.1, {'momentum': 0.9, 'nesterov': True}, _torch_sgd(0.9, 0.01, True)),
        ('adam', 0.05, {}, _torch_adam(0.01, decoupled=False)),
        ('adamw', 0.05, {}, _torch_adam(0.01, decoupled=True)),
        ('adagrad', 0.1, {}, _torch_adagrad(0.01)),
        ('rmsprop', 0.01, {'momentum': 0.0}, _torch_rmsprop(0.0, 0.01)),
        ('rmsprop', 0.01, {'momentum': 0.9}, _torch_rmsprop(0.9, 0.01)),
        ('adadelta', 1.0, {}, _torch_adadelta(0.01)),
        # muon's non-filter parameters (a 1-D one here) take torch.optim.SGD's Nesterov steps
        ('muon', 0.1, {'momentum': 0.9, 'nesterov': True}, _torch_sgd(0.9, 0.01, True)),
    ],
    ids=[
        'sgd',
        'sgd-momentum',
        'sgd-nesterov',
        'adam',
        'adamw',
        'adagrad',
        'rmsprop',
        'rmsprop-momentum',
        'adadelta',
        'muon-sgd-part',
    ],
)
def test_optimizer_follows_torch_over_30_steps_of_a_changing_rate_with_weight_decay(name, lr, options, reference):
  expected = _run_reference(reference, lr)
  assert not np.allclose(expected, np.linspace(-2.0, 2.0, 7), atol=1e-3)  # it moved
  np.testing.assert_allclose(_run_ours(name, lr, 0.01, **options), expected, rtol=1e-10, atol=1e-12)


def test_adagrad_eps_is_outside_the_square_root():
  """With gradients near 1e-6 eps inside the root (optax.adagrad) would change the step by far more than 1 %."""
  config = _config(
      **{
          'optimizer.name': 'adagrad',
          'optimizer.learning_rate': 1.0,
          'optimizer.weight_decay': 0.0,
          'schedule.name': 'constant',
      }
  )
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 1))
  params = {'w': jnp.zeros(1)}
  updates, _ = tx.update({'w': jnp.array([1e-6])}, tx.init(params), params)
  np.testing.assert_allclose(updates['w'], [-1e-6 / (1e-6 + 1e-10)], rtol=1e-12)


def test_constants_are_torch_defaults():
  assert optim.ADAM_BETAS == (0.9, 0.999) and optim.ADAM_EPS == 1e-8
  assert (optim.ADAGRAD_EPS, optim.RMSPROP_ALPHA, optim.RMSPROP_EPS) == (1e-10, 0.99, 1e-8)
  assert (optim.ADADELTA_RHO, optim.ADADELTA_EPS, optim.CLIP_NORM_EPS) == (0.9, 1e-6, 1e-6)
  assert (optim.ONECYCLE_PCT_START, optim.ONECYCLE_DIV_FACTOR, optim.ONECYCLE_FINAL_DIV_FACTOR) == (0.3, 25, 1e4)
  assert optim.ONECYCLE_MOMENTUM == (0.85, 0.95)


@pytest.mark.parametrize('grad, max_norm', [([30.0, 40.0], 1.0), ([0.3, 0.4], 0.5), ([3e-7, 4e-7], 1e-7)])
def test_gradient_clipping_is_clip_grad_norm(grad, max_norm):
  """torch.nn.utils.clip_grad_norm_: g * min(1, max_norm / (||g|| + 1e-6))."""
  config = _config(
      **{
          'optimizer.momentum': 0.0,
          'optimizer.weight_decay': 0.0,
          'optimizer.grad_clip_norm': max_norm,
          'optimizer.learning_rate': 1.0,
          'schedule.name': 'constant',
      }
  )
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 1))
  params = {'w': jnp.zeros(2)}
  updates, _ = tx.update({'w': jnp.asarray(grad)}, tx.init(params), params)
  g = np.asarray(grad)
  np.testing.assert_allclose(-updates['w'], g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)), rtol=1e-12)


# Schedules: 10 epochs of 3 steps; expected[s] is the rate for step s from the scheduler's closed form.
EPOCHS, EPOCH_STEPS, LR = 10, 3, 0.5
TOTAL = EPOCHS * EPOCH_STEPS


def _cosine_annealing(t: int, t_max: int) -> float:
  return LR * (1 + math.cos(math.pi * t / t_max)) / 2  # eta_min 0


def _one_cycle(step: int, total: int) -> tuple[float, float]:
  """torch.optim.lr_scheduler.OneCycleLR.get_lr with its defaults, for the learning rate and the momentum."""
  initial = LR / 25
  phases = [(0.3 * total - 1, initial, LR, 0.95, 0.85), (total - 1, LR, initial / 1e4, 0.85, 0.95)]
  start = 0
  for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
    if step <= end or i == len(phases) - 1:
      pct = (step - start) / (end - start)
      anneal = lambda a, b: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)  # noqa: E731
      return anneal(lr0, lr1), anneal(m0, m1)
    start = end


def _warmup_cosine(step: int, warmup: int) -> float:
  """As documented: linear from 0 to LR over `warmup` steps, then CosineAnnealingLR over the remaining steps."""
  return LR * step / warmup if step < warmup else _cosine_annealing(step - warmup, TOTAL - warmup)


@pytest.mark.parametrize(
    'name, settings, expected',
    [
        ('constant', {}, lambda s: LR),
        ('step', {'step_epochs': 3}, lambda s: LR * 0.5 ** (s // EPOCH_STEPS // 3)),
        (
            'multistep',
            {'milestones': (2, 5, 5, 8)},
            lambda s: LR * 0.5 ** bisect.bisect_right([2, 5, 5, 8], s // EPOCH_STEPS),
        ),
        ('exponential', {}, lambda s: LR * 0.5 ** (s // EPOCH_STEPS)),
        ('cosine', {}, lambda s: _cosine_annealing(s, TOTAL)),
        ('cosine_epoch', {}, lambda s: _cosine_annealing(s // EPOCH_STEPS, EPOCHS)),
        ('warmup_cosine', {'warmup_epochs': 2.0}, lambda s: _warmup_cosine(s, 2 * EPOCH_STEPS)),
        ('onecycle', {}, lambda s: _one_cycle(s, TOTAL)[0]),
        ('linear', {}, lambda s: LR * (1 - min(s, TOTAL) / TOTAL)),  # LinearLR(1.0, 0.0, total_iters=TOTAL)
    ],
)
def test_schedule_matches_torch_closed_form_at_every_step(name, settings, expected):
  config = _config(
      **{
          'schedule.name': name,
          'optimizer.learning_rate': LR,
          'schedule.gamma': 0.5,
          'num_epochs': EPOCHS,
          **{f'schedule.{k}': v for k, v in settings.items()},
      }
  )
  lr = optim.create_learning_rate_fn(config, EPOCH_STEPS)
  np.testing.assert_allclose(
      [float(lr(s)) for s in range(TOTAL + 1)], [expected(s) for s in range(TOTAL + 1)], rtol=1e-12, atol=1e-15
  )


def test_multistep_applies_a_repeated_milestone_twice():
  config = _config(
      **{
          'schedule.name': 'multistep',
          'schedule.milestones': (2, 2),
          'schedule.gamma': 0.1,
          'optimizer.learning_rate': 1.0,
      }
  )
  lr = optim.create_learning_rate_fn(config, 1)
  assert [float(lr(s)) for s in (1, 2)] == pytest.approx([1.0, 0.01])


@pytest.mark.parametrize('total', [30, 84])
def test_onecycle_cycles_the_momentum_and_ends_at_the_final_rate(total):
  momentum = optim.create_learning_rate_fn(
      _config(**{'schedule.name': 'onecycle', 'optimizer.learning_rate': LR, 'num_epochs': total}), 1
  ).schedule.momentum
  expected = [_one_cycle(s, total)[1] for s in range(total)]
  np.testing.assert_allclose([float(momentum(s)) for s in range(total)], expected, rtol=1e-12)
  assert _one_cycle(total - 1, total)[0] == pytest.approx(LR / 25 / 1e4)


@pytest.mark.parametrize(
    'name, key, reference',
    [
        ('sgd', 'momentum', lambda m: _torch_sgd(m, 0.0, False)),
        ('rmsprop', 'momentum', lambda m: _torch_rmsprop(m, 0.0)),
        ('adam', 'beta1', None),
    ],
)
def test_onecycle_drives_the_optimizer_momentum(name, key, reference):
  """OneCycleLR sets group['momentum'] (sgd, rmsprop) or group['betas'][0] (adam) before every step."""
  total = 12
  config = _config(
      **{
          'optimizer.name': name,
          'optimizer.learning_rate': LR,
          'optimizer.weight_decay': 0.0,
          'schedule.name': 'onecycle',
          'num_epochs': total,
      }
  )
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 1))
  params = {'w': jnp.asarray(np.linspace(-2.0, 2.0, 7))}
  state = tx.init(params)
  p, s = np.linspace(-2.0, 2.0, 7), {}
  for t in range(total):
    lr_t, m_t = _one_cycle(t, total)
    g = _gradient(p, t)
    if name == 'adam':
      s['m'] = m_t * s.get('m', 0) + (1 - m_t) * g
      s['v'] = 0.999 * s.get('v', 0) + 0.001 * g * g
      p = p - lr_t / (1 - m_t ** (t + 1)) * s['m'] / (np.sqrt(s['v']) / math.sqrt(1 - 0.999 ** (t + 1)) + 1e-8)
    else:
      p = reference(m_t)(p, g, lr_t, t + 1, s)
    updates, state = tx.update({'w': jnp.asarray(g)}, state, params)
    params = {'w': params['w'] + updates['w']}
  np.testing.assert_allclose(params['w'], p, rtol=1e-10)


class _TorchPlateau:
  """torch.optim.lr_scheduler.ReduceLROnPlateau.step, mode 'min', threshold_mode 'rel', eps 1e-8."""

  def __init__(self, lr, factor, patience, threshold, cooldown, min_lr):
    self.lr, self.factor, self.patience, self.threshold, self.cooldown, self.min_lr = (
        lr,
        factor,
        patience,
        threshold,
        cooldown,
        min_lr,
    )
    self.best, self.bad_epochs, self.cooldown_counter = math.inf, 0, 0

  def step(self, loss):
    if loss < self.best * (1 - self.threshold):
      self.best, self.bad_epochs = loss, 0
    else:
      self.bad_epochs += 1
    if self.cooldown_counter > 0:
      self.cooldown_counter -= 1
      self.bad_epochs = 0
    if self.bad_epochs > self.patience:
      new_lr = max(self.lr * self.factor, self.min_lr)
      if self.lr - new_lr > 1e-8:
        self.lr = new_lr
      self.cooldown_counter, self.bad_epochs = self.cooldown, 0


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('patience, threshold, cooldown', [(2, 1e-4, 0), (1, 0.05, 2), (3, 0.01, 1)])
def test_plateau_follows_torch_with_threshold_and_cooldown(seed, patience, threshold, cooldown):
  config = _config(
      **{
          'schedule.name': 'plateau',
          'optimizer.learning_rate': 0.1,
          'schedule.plateau_factor': 0.5,
          'schedule.plateau_patience': patience,
          'schedule.plateau_threshold': threshold,
          'schedule.plateau_cooldown': cooldown,
          'schedule.plateau_min_lr': 1e-3,
          'data.val_fraction': 0.1,
      }
  )
  learning_rate = optim.create_learning_rate_fn(config, 1)
  torch_plateau = _TorchPlateau(0.1, 0.5, patience, threshold, cooldown, 1e-3)
  # A noisy, slowing descent: improvements, plateaus and reductions all happen.
  losses = np.exp(-np.linspace(0, 2, 40)) + np.random.default_rng(seed).uniform(0, 0.2, 40)
  state, ours, theirs = optim.init_plateau(), [], []
  for step, loss in enumerate(losses):
    state = learning_rate.after_validation(state, float(loss))
    torch_plateau.step(float(loss))
    ours.append(learning_rate.effective(step, state))
    theirs.append(torch_plateau.lr)
  assert theirs[-1] < 0.1  # it reduced at least once
  np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def _batch_statistics(x: np.ndarray, running_mean, running_var):
  """torch.nn.BatchNorm2d in training mode (momentum 0.1, eps 1e-5): output and updated running statistics."""
  axes = (0, 1, 2)  # NHWC here; N, H, W in torch
  n = x.size // x.shape[-1]
  mean, biased = x.mean(axes), x.var(axes)
  out = (x - mean) / np.sqrt(biased + 1e-5)
  return out, 0.9 * running_mean + 0.1 * mean, 0.9 * running_var + 0.1 * biased * n / (n - 1)


def test_batchnorm_running_statistics_are_torch_batchnorm2d():
  rng = np.random.default_rng(0)
  norm = layers.batch_norm(4, dtype=jnp.float32, rngs=nnx.Rngs(0))  # statistics are float32, as in training
  mean, var = np.zeros(4), np.ones(4)
  for _ in range(3):
    x = rng.normal(2.0, 3.0, size=(2, 3, 3, 4))  # n = 18: the n / (n - 1) correction is 6 %
    out, mean, var = _batch_statistics(x, mean, var)
    np.testing.assert_allclose(norm(jnp.asarray(x, jnp.float32), use_running_average=False), out, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(norm.mean[...], mean, rtol=1e-6)
  np.testing.assert_allclose(norm.var[...], var, rtol=1e-6)
  x = rng.normal(size=(2, 3, 3, 4))
  np.testing.assert_allclose(
      norm(jnp.asarray(x, jnp.float32), use_running_average=True),
      (x - mean) / np.sqrt(var + 1e-5),
      rtol=1e-5,
      atol=1e-5,
  )


def test_batchnorm_under_pmap_counts_the_global_batch():
  """With axis_name set, mean and variance (and n) cover the batch of every device, as SyncBatchNorm's."""
  devices = jax.local_device_count()
  x = np.random.default_rng(1).normal(size=(devices, 2, 2, 2, 3))
  norm = layers.batch_norm(3, dtype=jnp.float32, rngs=nnx.Rngs(0))
  norm.axis_name = 'batch'
  graphdef, state = nnx.split(norm)

  def update(state, x):
    module = nnx.merge(graphdef, state)
    module(x, use_running_average=False)
    return nnx.split(module)[1]

  new_state = jax.pmap(update, axis_name='batch', in_axes=(None, 0))(state, jnp.asarray(x, jnp.float32))
  _, _, expected_var = _batch_statistics(x.reshape(-1, 2, 2, 3), np.zeros(3), np.ones(3))
  np.testing.assert_allclose(new_state['var'][...][0], expected_var, rtol=1e-6)


def test_l1_gradient_at_zero_is_zero():
  """PyTorch: d|w|/dw = sign(w), so weights at exactly 0 (every bias at init) get no L1 push."""
  params = {'w': jnp.array([0.0, 2.0, -3.0])}
  grads = jax.grad(lambda p: steps.weight_penalty(p, 0.5, 0.0))(params)
  np.testing.assert_array_equal(grads['w'], [0.0, 0.5, -0.5])
