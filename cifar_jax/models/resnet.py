"""ResNet for CIFAR-10 (He et al., 2016; kuangliu/pytorch-cifar layout): 3x3 stem, no max pool."""

from collections.abc import Sequence
import functools

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax.models import layers


class ResNet(nnx.Module):
  """3x3 stem conv + BN, stages of basic blocks (widths width * 2**i, stride 2 from stage 2), GAP, Linear.

  Convs have no bias and use He normal fan-out init (as torchvision); projections are 1x1 conv + BN,
  used only where the shape changes; the Linear uses LeCun normal.
  """

  def __init__(
      self,
      *,
      stage_sizes: Sequence[int],
      width: int = 64,
      num_classes: int = 10,
      activation: str = 'relu',
      dropout: float = 0.0,
      dtype: DTypeLike = jnp.float32,
      rngs: nnx.Rngs,
  ):
    act = layers.activation(activation)
    self.stem = layers.ConvNormAct(layers.IMAGE_CHANNELS, width, 3, use_bias=False, act=act, dtype=dtype, rngs=rngs)
    residual = functools.partial(
        layers.ResidualBlock, use_bias=False, shortcut_norm=True, act=act, dtype=dtype, rngs=rngs
    )
    blocks, channels = [], width
    for stage, num_blocks in enumerate(stage_sizes):
      out = width * 2**stage
      for block in range(num_blocks):
        blocks.append(residual(channels, out, strides=2 if stage > 0 and block == 0 else 1))
        channels = out
    self.blocks = nnx.List(blocks)
    self.head = layers.Head(
        channels, (), num_classes, act=act, dropout=dropout, drop_input=True, dtype=dtype, rngs=rngs
    )

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Maps images [N, 32, 32, 3] to logits [N, num_classes]."""
    x = self.stem(x, train=train)
    for block in self.blocks:
      x = block(x, train=train)
    return self.head(x.mean(axis=(1, 2)), train=train, rngs=rngs)


resnet18 = layers.variant(ResNet, 'ResNet-18 for CIFAR: 11,173,962 parameters.', stage_sizes=(2, 2, 2, 2))
resnet34 = layers.variant(ResNet, 'ResNet-34 for CIFAR.', stage_sizes=(3, 4, 6, 3))
