"""The airbench-style speedrun net: a frozen 2x2 patch-whitening conv, then three conv-pool-BN-GELU-conv-BN-GELU
blocks (widths 64/256/256, airbench94's), a 3x3 max pool and a bias-free Linear head whose logits are scaled by 1/9.

The design follows Keller Jordan's airbench94 (figures and techniques only; the code is written here):
- `whiten`: a 2x2 valid conv (32x32 -> 31x31) whose 24 filters are the 12 eigenvectors of the training images'
  2x2 patch second-moment matrix, each scaled by 1 / sqrt(eigenvalue + eps), and their negatives. Its kernel is
  a `Frozen` variable set by `init_from_data` (the data-dependent init step the experiment runs before training);
  its bias is an ordinary parameter (the `muon` optimizer trains it for `optimizer.whiten_bias_epochs` only).
- 3x3 convs without bias, initialised as torch's `Conv2d` (uniform +-1/sqrt(fan_in)) with the first `in` filters
  set to the identity (`torch.nn.init.dirac_`), so each block starts close to passing its input through.
- BatchNorm with its scale frozen at 1 (only the bias is trained), statistics and normalisation in float32,
  eps 1e-12, and running averages `running = 0.6 * running + 0.4 * batch`: flax's momentum 0.6, which is
  PyTorch's momentum 0.4 (airbench writes momentum 0.6 and passes 1 - 0.6 to torch). The running variance is
  the unbiased one, as PyTorch keeps it (`layers.BatchNorm`).
"""

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax.models import layers

WIDTHS = (64, 256, 256)
PATCH = 2  # the whitening conv's kernel size
WHITEN_EPS = 5e-4  # added to the eigenvalues before 1 / sqrt (airbench's)
WHITEN_EXAMPLES = 5000  # training images the patch statistics are taken from (airbench's)
BN_MOMENTUM = 0.6  # flax convention (running = m * running + (1 - m) * batch); PyTorch's momentum 0.4
BN_EPS = 1e-12
HEAD_SCALE = 1 / 9
TORCH_CONV_INIT = nnx.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')  # U(+-1/sqrt(fan_in)), as torch


class Frozen(nnx.Variable):
  """A weight that no optimizer updates (not an nnx.Param): it keeps its initial or data-initialised value."""


def dirac_conv_init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
  """torch's default conv init with its first min(in, out) filters replaced by the identity (`dirac_`).

  `shape` is flax's (height, width, in, out); the identity filter i is 1 at the centre tap of input channel i.
  """
  kernel = TORCH_CONV_INIT(key, shape, dtype)
  height, width, fan_in, fan_out = shape
  n = min(fan_in, fan_out)
  identity = jnp.zeros((height, width, fan_in, n), dtype)
  identity = identity.at[height // 2, width // 2, jnp.arange(n), jnp.arange(n)].set(1)
  return kernel.at[..., :n].set(identity)


def frozen_scale_batch_norm(num_features: int, *, rngs: nnx.Rngs) -> layers.BatchNorm:
  """BatchNorm in float32 with momentum 0.6 (flax's convention), eps 1e-12 and its scale frozen at 1."""
  norm = layers.BatchNorm(
      num_features, momentum=BN_MOMENTUM, epsilon=BN_EPS, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs
  )
  norm.scale = Frozen(norm.scale[...])
  return norm


class ConvBlock(nnx.Module):
  """conv 3x3 -> max pool 2 -> BN -> act -> conv 3x3 -> BN -> act (airbench's ConvGroup)."""

  def __init__(self, in_features: int, out_features: int, *, act: layers.Activation, dtype: DTypeLike, rngs: nnx.Rngs):
    def conv(a: int, b: int) -> nnx.Conv:
      return nnx.Conv(
          a,
          b,
          (3, 3),
          padding=1,
          use_bias=False,
          kernel_init=dirac_conv_init,
          dtype=dtype,
          param_dtype=jnp.float32,
          rngs=rngs,
      )

    self.conv1 = conv(in_features, out_features)
    self.norm1 = frozen_scale_batch_norm(out_features, rngs=rngs)
    self.conv2 = conv(out_features, out_features)
    self.norm2 = frozen_scale_batch_norm(out_features, rngs=rngs)
    self.act = act

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    x = nnx.max_pool(self.conv1(x), (2, 2), strides=(2, 2))
    x = self.act(self.norm1(x, use_running_average=not train))
    return self.act(self.norm2(self.conv2(x), use_running_average=not train))


def whitening_filters(images: jax.Array, eps: float = WHITEN_EPS) -> jax.Array:
  """The 2x2 patch-whitening kernel [2, 2, C, 4C] of `images` [N, H, W, C] (float, as the net sees them).

  With M the second-moment matrix of the flattened 2x2 patches and M = V diag(l) V^T, filter k is the
  eigenvector v_k / sqrt(l_k + eps) (largest eigenvalue first), then the same filters negated: the first
  2x2xC outputs of the patches then have second moments diag(l / (l + eps)), the identity as eps -> 0.
  """
  images = images.astype(jnp.float32)
  n, height, width, channels = images.shape
  patches = jnp.stack(
      [images[:, i : height - PATCH + 1 + i, j : width - PATCH + 1 + j] for i in range(PATCH) for j in range(PATCH)],
      axis=-2,
  ).reshape(
      -1, PATCH * PATCH * channels
  )  # each row (tap (i, j) major, channel minor) = flax's kernel order
  moments = jnp.matmul(patches.T, patches, precision=jax.lax.Precision.HIGHEST) / patches.shape[0]
  eigenvalues, eigenvectors = jnp.linalg.eigh(moments)
  eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
  filters = (eigenvectors / jnp.sqrt(eigenvalues + eps)).reshape(PATCH, PATCH, channels, -1)
  return jnp.concatenate([filters, -filters], axis=-1)


class SpeedrunNet(nnx.Module):
  """whiten (frozen 2x2 conv + bias) -> act -> 3 ConvBlocks -> max pool 3 -> Linear (no bias) -> x head_scale."""

  def __init__(
      self,
      *,
      widths: Sequence[int] = WIDTHS,
      num_classes: int = 10,
      activation: str = 'gelu',
      dropout: float = 0.0,
      head_scale: float = HEAD_SCALE,
      whiten_examples: int = WHITEN_EXAMPLES,
      dtype: DTypeLike = jnp.float32,
      rngs: nnx.Rngs,
  ):
    act = layers.activation(activation)
    channels = layers.IMAGE_CHANNELS
    whiten_width = 2 * PATCH * PATCH * channels
    self.whiten = nnx.Conv(
        channels, whiten_width, (PATCH, PATCH), padding='VALID', dtype=dtype, param_dtype=jnp.float32, rngs=rngs
    )
    self.whiten.kernel = Frozen(jnp.zeros((PATCH, PATCH, channels, whiten_width), jnp.float32))
    widths = (whiten_width, *widths)
    self.blocks = nnx.List(ConvBlock(a, b, act=act, dtype=dtype, rngs=rngs) for a, b in zip(widths, widths[1:]))
    self.drop = layers.Dropout(dropout)
    self.head = nnx.Linear(
        widths[-1],
        num_classes,
        use_bias=False,
        kernel_init=TORCH_CONV_INIT,
        dtype=dtype,
        param_dtype=jnp.float32,
        rngs=rngs,
    )
    self.head_scale = head_scale
    self.act = act
    self.init_examples = whiten_examples

  def init_from_data(self, images: jax.Array) -> None:
    """Sets the whitening kernel from `images` [N, 32, 32, 3] as the net sees them (the experiment passes the
    first `init_examples` (= whiten_examples) training images, scaled and normalised like every batch)."""
    self.whiten.kernel[...] = whitening_filters(images)

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Maps images [N, 32, 32, 3] to logits [N, num_classes]."""
    x = self.act(self.whiten(x))
    for block in self.blocks:
      x = block(x, train=train)
    x = nnx.max_pool(x, x.shape[1:3], strides=x.shape[1:3])  # 3x3 after three halvings of 31: one value per map
    x = self.drop(x.reshape(x.shape[0], -1), train=train, rngs=rngs)
    return self.head(x) * self.head_scale


speedrun_net = layers.variant(SpeedrunNet, 'airbench94-style speedrun net (widths 64/256/256).', widths=WIDTHS)
