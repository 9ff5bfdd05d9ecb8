"""Tests for cifar_jax.models: exact parameter counts, forward passes, dtypes, modes and config errors."""

import functools

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cifar_jax.errors import ConfigError
from cifar_jax.models import MODELS, count_params, create_model, layers, resnet, upv, vgg
from cifar_jax.models.__main__ import main


def mlp_params(sizes: tuple[int, ...]) -> int:
  """PyTorch count of a stack of Linear layers with these feature sizes."""
  return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


EXPECTED_PARAMS = {
    'mlp': mlp_params((32 * 32 * 3, 512, 256, 10)),
    'lenet5': 62_006,
    'tutorial_cnn': 62_006,
    'vgg11': 9_231_114,
    'vgg13': 9_416_010,
    'vgg16': 14_728_266,
    'vgg19': 20_040_522,
    'resnet18': 11_173_962,
    'resnet34': 21_282_122,
    'upv_cnn': 1_838_346,
    'upv_resnet': 8_886_538,
    'upv_resnet_avgpool': 4_954_378,
    'upv_resnet_maxpool': 5_159_146,
    'upv_resnet_final': 5_159_146,
    # 3x3 convs without bias, BatchNorm biases (scales frozen), the whitening bias (its kernel frozen), the head
    'speedrun_net': 9 * (24 * 64 + 64 * 64 + 64 * 256 + 3 * 256 * 256) + 2 * (64 + 256 + 256) + 24 + 256 * 10,
}


# Real forward passes on CPU: small models, and tiny variants covering every layer kind of the big ones
# (every registered model is checked abstractly).
SMALL = {
    'mlp': MODELS['mlp'],
    'lenet5': MODELS['lenet5'],
    'tutorial_cnn': MODELS['tutorial_cnn'],
    'vgg_tiny': functools.partial(vgg.VGG, stages=((8,), (16, 16))),
    'resnet_tiny': functools.partial(resnet.ResNet, stage_sizes=(1, 1), width=8),  # identity and projection
    'upv_tiny': functools.partial(upv.UPVNet, plan=(('conv', 4), ('res', 8), ('max', 2), ('res', 16), ('avg', 8))),
}


def build(name: str, **kwargs) -> nnx.Module:
  """SMALL[name] with RBG keys: its random init compiles much faster on CPU than threefry's."""
  return SMALL[name](rngs=nnx.Rngs(jax.random.key(0, impl='rbg')), **kwargs)


@functools.partial(nnx.jit, static_argnames='train')
def apply(model: nnx.Module, x: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
  """The model's forward pass, compiled once instead of op by op."""
  return model(x, train=train, rngs=rngs)


def images(n: int = 2) -> jax.Array:
  """A batch of normalized-looking NHWC images."""
  return jax.random.normal(jax.random.key(0), (n, 32, 32, 3))


def batch_stats(model: nnx.Module) -> np.ndarray:
  """All BatchNorm running statistics of `model`, as one flat copy."""
  return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.BatchStat))])


def test_every_model_has_an_expected_count():
  """Every registered model is in the table of expected counts."""
  assert set(EXPECTED_PARAMS) == set(MODELS)


@pytest.mark.parametrize('name', MODELS)
def test_param_count(name):
  """Parameter counts match the PyTorch definitions exactly (abstract build: no memory)."""
  model = nnx.eval_shape(lambda: create_model(name, rngs=nnx.Rngs(0)))
  assert count_params(model) == EXPECTED_PARAMS[name]


def test_param_count_follows_options():
  """Options reach the model: hidden sizes, classes, stage sizes and width change the count."""
  mlp = nnx.eval_shape(lambda: create_model('mlp', hidden_sizes=(64,), num_classes=7, rngs=nnx.Rngs(0)))
  assert count_params(mlp) == mlp_params((32 * 32 * 3, 64, 7))
  tiny = nnx.eval_shape(lambda: create_model('resnet18', stage_sizes=(1, 1, 1, 1), width=8, rngs=nnx.Rngs(0)))
  convs = 27 * 8 + 9 * (8 * 8 * 2 + 8 * 16 + 16 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64)
  shortcuts = 8 * 16 + 16 * 32 + 32 * 64
  norms = 2 * (8 + 2 * (8 + 16 + 32 + 64) + 16 + 32 + 64)
  assert count_params(tiny) == convs + shortcuts + norms + 64 * 10 + 10


@pytest.mark.parametrize('name', MODELS)
def test_abstract_forward(name):
  """Every registered model maps [2, 32, 32, 3] to [2, 10] float32 logits in both modes (traced only)."""

  def forward():
    model = create_model(name, rngs=nnx.Rngs(0))
    return [model(jnp.zeros((2, 32, 32, 3)), train=train) for train in (False, True)]

  for logits in jax.eval_shape(forward):
    assert logits.shape == (2, 10) and logits.dtype == jnp.float32


@pytest.mark.parametrize('name', MODELS)
def test_abstract_bfloat16(name):
  """bfloat16 compute gives bfloat16 logits while parameters and statistics stay float32."""

  def forward():
    model = create_model(name, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    return model(jnp.zeros((2, 32, 32, 3))), nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))

  logits, variables = jax.eval_shape(forward)
  assert logits.dtype == jnp.bfloat16
  assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize('name', SMALL)
def test_forward(name):
  """Real forward passes give finite [2, 10] logits; the model holds only params and batch stats."""
  model = build(name)
  for train in (False, True):
    logits = apply(model, images(), train=train)
    assert logits.shape == (2, 10)
    assert np.isfinite(logits).all()
  _, params, _ = nnx.split(model, nnx.Param, nnx.BatchStat)  # raises if anything else (RNG state) is held
  assert jax.tree.leaves(params)


def test_bfloat16_forward():
  """A real bfloat16 forward pass is finite in both modes."""
  model = build('resnet_tiny', dtype=jnp.bfloat16)
  for train in (False, True):
    logits = apply(model, images(), train=train)
    assert logits.dtype == jnp.bfloat16 and np.isfinite(logits.astype(jnp.float32)).all()


def test_batch_norm_updates_only_in_train_mode():
  """Running statistics move in train mode and stay put in eval mode."""
  model = build('resnet_tiny')
  before = batch_stats(model)
  apply(model, images(), train=False)
  np.testing.assert_array_equal(batch_stats(model), before)
  apply(model, images(), train=True)
  assert not np.allclose(batch_stats(model), before)


@pytest.mark.parametrize('name', ['mlp', 'resnet_tiny'])  # dropout after hidden layers; on the input
def test_dropout(name):
  """Train-mode dropout depends on the key only; eval mode ignores it."""
  model = build(name, dropout=0.5)
  x = images()
  train = [apply(model, x, train=True, rngs=nnx.Rngs(dropout=seed)) for seed in (1, 1, 2)]
  np.testing.assert_array_equal(train[0], train[1])
  assert not np.allclose(train[0], train[2])
  np.testing.assert_array_equal(apply(model, x), apply(model, x, rngs=nnx.Rngs(dropout=3)))


def test_zero_dropout_is_a_no_op_without_rngs():
  """With rate 0, train mode needs no rngs and equals eval mode."""
  model = build('mlp', hidden_sizes=(32,))
  np.testing.assert_array_equal(apply(model, images(), train=True), apply(model, images()))


@pytest.mark.parametrize('name', layers.ACTIVATIONS)
def test_activation(name):
  """Every activation works alone and inside a model (its values: test_training_math's PyTorch formulas)."""
  x = jnp.linspace(-3.0, 3.0, 12).reshape(2, 6)
  y = layers.activation(name)(x)
  assert y.shape == x.shape and np.isfinite(y).all()
  model = build('mlp', hidden_sizes=(32,), activation=name)
  assert np.isfinite(apply(model, images())).all()


def test_unknown_activation():
  """An unknown activation is a ConfigError on model.activation listing the choices."""
  with pytest.raises(ConfigError, match='model.activation') as error:
    create_model('lenet5', activation='swish', rngs=nnx.Rngs(0))
  assert all(name in str(error.value) for name in layers.ACTIVATIONS)


def test_unknown_model():
  """An unknown model name is a ConfigError on model.name listing the models."""
  with pytest.raises(ConfigError, match='model.name') as error:
    create_model('resnet9000', rngs=nnx.Rngs(0))
  assert all(name in str(error.value) for name in MODELS)


def test_unknown_option_is_rejected_before_building():
  """An option the model lacks is a ConfigError listing the model's options."""
  with pytest.raises(ConfigError, match='model.hidden_sizes') as error:
    create_model('resnet18', hidden_sizes=(10,), rngs=None)  # building would fail on rngs=None
  for option in ('activation', 'dropout', 'num_classes', 'stage_sizes', 'width'):
    assert option in str(error.value)


@pytest.mark.parametrize('rate', [-0.1, 1.0, 1.5])
def test_dropout_out_of_range(rate):
  """Dropout outside [0, 1) is a ConfigError on model.dropout, from create_model or a constructor."""
  with pytest.raises(ConfigError, match='model.dropout'):
    create_model('resnet18', dropout=rate, rngs=None)  # checked before building
  with pytest.raises(ConfigError, match='model.dropout'):
    build('mlp', dropout=rate)


def test_unknown_upv_plan_kind():
  """A UPV plan step of unknown kind is a ConfigError on model.plan."""
  with pytest.raises(ConfigError, match='model.plan'):
    upv.UPVNet(plan=(('dense', 8),), rngs=nnx.Rngs(0))


def test_main_lists_every_model_with_its_count_and_options(capsys):
  """`python -m cifar_jax.models` prints every model with its count and its options with their defaults."""
  main()
  header, *rows = capsys.readouterr().out.splitlines()
  assert header.split()[:2] == ['model', 'params']
  assert {row.split()[0]: row.split()[1] for row in rows} == {
      name: f'{count:,}' for name, count in EXPECTED_PARAMS.items()
  }
  options = {row.split()[0]: row.split(maxsplit=2)[2] for row in rows}
  assert 'hidden_sizes=(512, 256)' in options['mlp'] and 'dropout=0.0' in options['mlp']
  assert 'stage_sizes=(2, 2, 2, 2)' in options['resnet18'] and 'width=64' in options['resnet18']
