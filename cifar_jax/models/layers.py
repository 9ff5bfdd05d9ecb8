"""Shared model parts: activations, conv units, pooling, residual block and classifier head.

Initializers: conv kernels use He normal with fan-out (`variance_scaling(2, 'fan_out', 'normal')`, the
torchvision ResNet choice, suited to the ReLU family); Linear kernels keep Flax's LeCun normal; biases
start at zero; BatchNorm starts at scale 1, offset 0. Parameters are always float32; `dtype` is the
compute dtype.
"""

from collections.abc import Callable, Sequence
import functools

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax.config_check import check_dropout
from cifar_jax.errors import check_choice

IMAGE_SIZE = 32
IMAGE_CHANNELS = 3
CONV_INIT = nnx.initializers.variance_scaling(2.0, 'fan_out', 'normal')

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
    'relu': nnx.relu,
    'leaky_relu': functools.partial(nnx.leaky_relu, negative_slope=0.01),
    'relu6': nnx.relu6,
    'elu': nnx.elu,
    'tanh': nnx.tanh,
    'silu': nnx.silu,
    'sigmoid': nnx.sigmoid,
    'softmax': functools.partial(nnx.softmax, axis=-1),
    'gelu': functools.partial(nnx.gelu, approximate=False),
}

POOLS = {'max': nnx.max_pool, 'avg': nnx.avg_pool}


def activation(name: str) -> Activation:
  """Returns the activation called `name` (PyTorch semantics: exact GELU, leaky slope 0.01)."""
  check_choice('model.activation', name, ACTIVATIONS)
  return ACTIVATIONS[name]


def variant(cls: type[nnx.Module], doc: str, **kwargs) -> functools.partial:
  """Binds `kwargs` of `cls` as a registry entry (e.g. one depth) with its own docstring."""
  entry = functools.partial(cls, **kwargs)
  entry.__doc__ = doc
  return entry


class BatchNorm(nnx.BatchNorm):
  """nnx.BatchNorm whose running variance takes the unbiased batch variance (n / (n - 1)), as torch.nn.BatchNorm2d.

  The batch is still normalized with the biased variance, as in both libraries. n counts every reduced element,
  over all devices of `axis_name` when set (pmap).
  """

  def __call__(self, x: jax.Array, use_running_average: bool | None = None) -> jax.Array:
    """Normalizes `x`; when training, also updates the running statistics."""
    if use_running_average is None:
      use_running_average = self.use_running_average
    previous_var = self.var[...]
    y = super().__call__(x, use_running_average)
    if not use_running_average:
      n = x.size // x.shape[-1]
      if self.axis_name is not None:
        n *= jax.lax.psum(1, self.axis_name)
      # nnx set var = m * previous + (1 - m) * biased; adding (1 - m) * biased / (n - 1) makes it the unbiased one.
      self.var[...] = self.var[...] + (self.var[...] - self.momentum * previous_var) / (n - 1)
    return y


def batch_norm(num_features: int, *, dtype: DTypeLike, rngs: nnx.Rngs) -> BatchNorm:
  """A BatchNorm with PyTorch's defaults (momentum 0.1 there is 0.9 here, epsilon 1e-5, unbiased running var)."""
  return BatchNorm(num_features, momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)


class ConvNormAct(nnx.Module):
  """Conv, then optional BatchNorm, then optional activation: the unit every conv net here stacks."""

  def __init__(
      self,
      in_features: int,
      out_features: int,
      kernel_size: int,
      *,
      strides: int = 1,
      padding: int | None = None,
      use_bias: bool = True,
      norm: bool = True,
      act: Activation | None = None,
      dtype: DTypeLike,
      rngs: nnx.Rngs,
  ):
    """Zero padding is `padding` pixels per side (PyTorch semantics); None keeps the size at stride 1."""
    self.conv = nnx.Conv(
        in_features,
        out_features,
        (kernel_size, kernel_size),
        strides=strides,
        padding=kernel_size // 2 if padding is None else padding,
        use_bias=use_bias,
        kernel_init=CONV_INIT,
        dtype=dtype,
        param_dtype=jnp.float32,
        rngs=rngs,
    )
    self.norm = batch_norm(out_features, dtype=dtype, rngs=rngs) if norm else None
    self.act = act

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Applies conv, norm (batch statistics when training) and activation."""
    x = self.conv(x)
    if self.norm is not None:
      x = self.norm(x, use_running_average=not train)
    return x if self.act is None else self.act(x)


class Pool(nnx.Module):
  """Max or average pooling over `size` x `size` windows with stride `size`, as a stackable layer."""

  def __init__(self, kind: str, size: int):
    self.pool = POOLS[kind]
    self.size = size

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Pools; `train` is accepted so that bodies can call every layer alike."""
    window = (self.size, self.size)
    return self.pool(x, window, strides=window)


class ResidualBlock(nnx.Module):
  """Two 3x3 conv units and a shortcut, added then activated (He et al., 2016, basic block).

  The shortcut is the identity when shape is kept, else a 1x1 projection with the same bias choice
  as the 3x3 convs, followed by BatchNorm if `shortcut_norm`.
  """

  def __init__(
      self,
      in_features: int,
      out_features: int,
      *,
      strides: int = 1,
      use_bias: bool,
      shortcut_norm: bool,
      act: Activation,
      dtype: DTypeLike,
      rngs: nnx.Rngs,
  ):
    unit = functools.partial(ConvNormAct, use_bias=use_bias, dtype=dtype, rngs=rngs)
    self.conv1 = unit(in_features, out_features, 3, strides=strides, act=act)
    self.conv2 = unit(out_features, out_features, 3)
    project = strides != 1 or in_features != out_features
    self.shortcut = unit(in_features, out_features, 1, strides=strides, norm=shortcut_norm) if project else None
    self.act = act

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Returns act(main(x) + shortcut(x))."""
    y = self.conv2(self.conv1(x, train=train), train=train)
    shortcut = x if self.shortcut is None else self.shortcut(x, train=train)
    return self.act(y + shortcut)


class Dropout(nnx.Module):
  """Inverted dropout (PyTorch's: zero with probability `rate`, scale the rest by 1 / (1 - rate)).

  Each example's mask comes from its own key, `fold_in(key, global example index)`, so a batch split
  over devices draws the masks the whole batch would on one device: under pmap `axis_name` is set (as
  BatchNorm's is) and a device's examples are numbered from `axis_index * local batch size`.
  """

  def __init__(self, rate: float):
    check_dropout(rate)
    self.rate = rate
    self.axis_name: str | None = None

  def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
    """Drops elements of `x` [N, ...] when training with `rate` > 0, drawing one key from `rngs.dropout`."""
    if not train or self.rate == 0:
      return x
    key, batch_size, sharding = rngs.dropout(), x.shape[0], jax.typeof(x).sharding
    first = 0 if self.axis_name is None else jax.lax.axis_index(self.axis_name) * batch_size
    index = first + jnp.arange(batch_size, out_sharding=sharding.update(spec=sharding.spec[:1]))  # sharded as x
    example_keys = jax.vmap(functools.partial(jax.random.fold_in, key))(index)
    keep = jax.vmap(lambda k: jax.random.bernoulli(k, 1 - self.rate, x.shape[1:]))(example_keys)
    return jnp.where(keep, x / (1 - self.rate), jnp.zeros_like(x))


class Head(nnx.Module):
  """Classifier: flatten, hidden Linear layers each with activation and dropout, then the logits layer.

  Dropout follows every hidden layer; `drop_input` also applies it to the flattened features (for
  heads that are a single Linear). A rate of 0 is a no-op that needs no rngs.
  """

  def __init__(
      self,
      in_features: int,
      hidden_sizes: Sequence[int],
      num_classes: int,
      *,
      act: Activation,
      dropout: float,
      drop_input: bool = False,
      dtype: DTypeLike,
      rngs: nnx.Rngs,
  ):
    linear = functools.partial(nnx.Linear, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
    sizes = (in_features, *hidden_sizes)
    self.hidden = nnx.List(linear(a, b) for a, b in zip(sizes, sizes[1:]))
    self.out = linear(sizes[-1], num_classes)
    self.drop = Dropout(dropout)
    self.drop_input = drop_input
    self.act = act

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Maps features [N, ...] to logits [N, num_classes]; dropout draws from `rngs` when training."""
    drop = functools.partial(self.drop, train=train, rngs=rngs)
    x = x.reshape(x.shape[0], -1)
    if self.drop_input:
      x = drop(x)
    for layer in self.hidden:
      x = drop(self.act(layer(x)))
    return self.out(x)
