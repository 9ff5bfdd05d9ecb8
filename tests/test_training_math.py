"""What a train step computes, against closed forms and PyTorch's documented formulas.

L1/L2 penalties in the gradient, label smoothing in the loss, dropout (its key per step, its rate and
scale, the same masks under jit and pmap), bfloat16 compute, and every activation.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from cifar_jax import parallel
from cifar_jax.training import experiment, steps
from cifar_jax.models import create_model, layers

BATCH = 16
LR = 0.1


def _mlp(**kwargs) -> nnx.Module:
  return create_model('mlp', rngs=nnx.Rngs(params=0), **{'hidden_sizes': (), **kwargs})


def _batch(seed: int = 0, n: int = BATCH) -> dict[str, jax.Array]:
  rng = np.random.default_rng(seed)
  return {
      'image': jnp.asarray(rng.normal(size=(n, 32, 32, 3)), jnp.float32),
      'label': jnp.asarray(rng.integers(0, 10, n), jnp.int32),
  }


def _step(graphdef, state, batch, tx=optax.sgd(LR), **step_config):
  train_step, _ = steps.make_steps(graphdef, tx, steps.StepConfig(**step_config))
  return jax.jit(train_step)(state, batch, 0)


def test_l1_and_l2_penalties_reach_the_gradient_as_their_closed_form():
  """With plain SGD, the penalised step moves each weight w by lr * d/dw (l2 w^2 + l1 |w|) more than the plain one."""
  l1, l2 = 1e-3, 1e-2
  tx = optax.sgd(LR)
  graphdef, state = experiment.create_train_state(_mlp(), tx)
  rng = np.random.default_rng(1)  # nonzero weights of both signs everywhere (biases start at 0)
  params = jax.tree.map(lambda p: jnp.asarray(rng.normal(0, 0.05, p.shape), jnp.float32), state.params)
  state = state.replace(params=params)
  plain, _ = _step(graphdef, state, _batch(), tx)
  penalised, _ = _step(graphdef, state, _batch(), tx, l1=l1, l2=l2)
  for w, a, b in zip(jax.tree.leaves(params), jax.tree.leaves(plain.params), jax.tree.leaves(penalised.params)):
    w = np.asarray(w, np.float64)
    expected = -LR * (2 * l2 * w + l1 * np.sign(w))
    np.testing.assert_allclose(np.asarray(b, np.float64) - np.asarray(a, np.float64), expected, rtol=1e-3, atol=2e-8)


@pytest.mark.parametrize('smoothing', [0.0, 0.1, 0.3])
def test_train_step_loss_is_pytorch_cross_entropy_with_label_smoothing(smoothing):
  """torch.nn.CrossEntropyLoss(label_smoothing=e) = (1 - e) * CE + e * mean over classes of -log p."""
  model = _mlp()
  graphdef, state = experiment.create_train_state(model, optax.sgd(LR))
  batch = _batch()
  x = np.asarray(batch['image'], np.float64).reshape(BATCH, -1)
  logits = x @ np.asarray(model.head.out.kernel[...], np.float64) + np.asarray(model.head.out.bias[...], np.float64)
  log_p = logits - logits.max(1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
  labels = np.asarray(batch['label'])
  expected = ((1 - smoothing) * -log_p[np.arange(BATCH), labels] + smoothing * -log_p.mean(1)).mean()
  _, metrics = _step(graphdef, state, batch, label_smoothing=smoothing)
  assert float(metrics.compute()['loss']) == pytest.approx(expected, rel=1e-5)


def test_dropout_masks_change_from_step_to_step_and_repeat_for_the_same_step():
  """Same parameters and batch at steps 0, 1, 2: only the dropout masks can make the losses differ."""
  batch = _batch()

  def losses(dropout: float, at_steps: tuple[int, ...]) -> list[float]:
    graphdef, state = experiment.create_train_state(_mlp(hidden_sizes=(64,), dropout=dropout), optax.sgd(LR))
    return [
        float(_step(graphdef, state.replace(step=jnp.asarray(step, jnp.int32)), batch)[1].compute()['loss'])
        for step in at_steps
    ]

  with_dropout = losses(0.5, (0, 1, 2, 1))
  assert len(set(with_dropout[:3])) == 3 and with_dropout[3] == with_dropout[1]
  assert len(set(losses(0.0, (0, 1)))) == 1


def test_dropout_zeroes_at_its_rate_and_scales_the_rest_like_pytorch():
  """Inverted dropout: each element is 0 with probability p, else x / (1 - p); 16,384 draws, 5 sigma."""
  rate, shape = 0.3, (256, 64)
  drop = layers.Dropout(rate)
  out = np.asarray(drop(jnp.ones(shape), train=True, rngs=nnx.Rngs(dropout=0)))
  zeros = (out == 0).mean()
  assert abs(zeros - rate) < 5 * math.sqrt(rate * (1 - rate) / out.size)
  np.testing.assert_allclose(out[out != 0], 1 / (1 - rate), rtol=1e-6)
  assert not np.array_equal(out[0] == 0, out[1] == 0)  # each example its own mask
  np.testing.assert_array_equal(drop(jnp.ones(shape), train=False, rngs=None), np.ones(shape))


def _train_with(dp, batches):
  """Three SGD steps of a dropout-0.5 MLP under the parallelism `dp`: the losses and final parameters."""
  model = _mlp(hidden_sizes=(32,), dropout=0.5)
  parallel.set_batch_axis(model, dp.axis_name)
  graphdef, state = experiment.create_train_state(model, optax.sgd(LR))
  train_step, _ = steps.make_steps(graphdef, optax.sgd(LR), steps.StepConfig(axis_name=dp.axis_name))
  train_step, state, seed = dp.compile_train(train_step), dp.put_state(state), dp.put_state(np.int32(0))
  losses = []
  for batch in batches:
    state, metrics = train_step(state, dp.put_batch({k: np.asarray(v) for k, v in batch.items()}), seed)
    losses.append(float(dp.get_state(metrics).compute()['loss']))
  return losses, jax.device_get(dp.get_state(state).params)


def test_pmap_and_jit_draw_the_same_dropout_masks():
  assert jax.device_count() == 4
  batches = [_batch(seed) for seed in range(3)]
  jit_losses, jit_params = _train_with(parallel.JitParallel(), batches)
  pmap_losses, pmap_params = _train_with(parallel.PmapParallel(), batches)
  np.testing.assert_allclose(pmap_losses, jit_losses, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(pmap_params), jax.tree.leaves(jit_params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _matmul_operand_dtypes(jaxpr: jax.extend.core.Jaxpr) -> set[str]:
  """The operand dtypes of every convolution and matrix product in `jaxpr`, nested calls included."""
  found = set()
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ('conv_general_dilated', 'dot_general'):
      found |= {str(v.aval.dtype) for v in eqn.invars}
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else (param,):
        inner = getattr(sub, 'jaxpr', sub)
        if isinstance(inner, jax.extend.core.Jaxpr):
          found |= _matmul_operand_dtypes(inner)
  return found


@pytest.mark.parametrize('dtype, expected', [('bfloat16', {'bfloat16'}), ('float32', {'float32'})])
def test_every_convolution_and_matmul_of_the_step_runs_in_the_compute_dtype(dtype, expected):
  """LeNet has both convolutions and Linear layers; forward and backward must all run in `dtype`."""
  model = create_model('lenet5', rngs=nnx.Rngs(params=0), dtype=jnp.dtype(dtype))
  graphdef, state = experiment.create_train_state(model, optax.sgd(LR))
  train_step, _ = steps.make_steps(graphdef, optax.sgd(LR), steps.StepConfig(dtype=jnp.dtype(dtype)))
  jaxpr = jax.make_jaxpr(train_step)(state, _batch(), 0).jaxpr
  assert _matmul_operand_dtypes(jaxpr) == expected
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state.params))


def _sigmoid(v: float) -> float:
  return 1 / (1 + math.exp(-v))


# torch.nn defaults: LeakyReLU(negative_slope=0.01), ELU(alpha=1.0), GELU(approximate='none').
ELEMENTWISE = {
    'relu': lambda v: max(v, 0.0),
    'leaky_relu': lambda v: v if v > 0 else 0.01 * v,
    'relu6': lambda v: min(max(v, 0.0), 6.0),
    'elu': lambda v: v if v > 0 else math.exp(v) - 1,
    'tanh': math.tanh,
    'silu': lambda v: v * _sigmoid(v),
    'sigmoid': _sigmoid,
    'gelu': lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))),
}


def test_every_activation_has_a_formula_here():
  assert set(layers.ACTIVATIONS) == {*ELEMENTWISE, 'softmax'}


@pytest.mark.parametrize('name', sorted(ELEMENTWISE))
def test_activation_matches_pytorch_formula(name):
  values = [-7.0, -2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 2.2, 5.9, 6.5, 9.0]
  expected = [ELEMENTWISE[name](v) for v in values]
  np.testing.assert_allclose(layers.activation(name)(jnp.asarray(values)), expected, rtol=1e-6, atol=1e-7)


def test_softmax_normalises_over_the_channels_of_nhwc_features():
  """nn.Softmax(dim=1) on PyTorch's NCHW is the channel axis, the last one in our NHWC layout."""
  x = np.random.default_rng(0).normal(0, 3, (2, 3, 3, 5))
  expected = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
  np.testing.assert_allclose(layers.activation('softmax')(jnp.asarray(x, jnp.float32)), expected, rtol=1e-5)
