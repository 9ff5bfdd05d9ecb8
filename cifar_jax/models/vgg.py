"""VGG for CIFAR-10 (kuangliu/pytorch-cifar style): 3x3 conv + BatchNorm stages, one Linear classifier."""

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax.models import layers

# Conv widths of each stage; every stage ends in a 2x2 max pool (32x32 -> 1x1 after five).
VGG11 = ((64,), (128,), (256, 256), (512, 512), (512, 512))
VGG13 = ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512))
VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG19 = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


class VGG(nnx.Module):
  """Stages of 3x3 convs (with bias) + BatchNorm + activation, each then 2x2 max pooled; flatten, Linear."""

  def __init__(
      self,
      *,
      stages: Sequence[Sequence[int]],
      num_classes: int = 10,
      activation: str = 'relu',
      dropout: float = 0.0,
      dtype: DTypeLike = jnp.float32,
      rngs: nnx.Rngs,
  ):
    act = layers.activation(activation)
    body, channels = [], layers.IMAGE_CHANNELS
    for widths in stages:
      for width in widths:
        body.append(layers.ConvNormAct(channels, width, 3, act=act, dtype=dtype, rngs=rngs))
        channels = width
      body.append(layers.Pool('max', 2))
    self.body = nnx.List(body)
    size = layers.IMAGE_SIZE // 2 ** len(stages)
    self.head = layers.Head(
        channels * size**2, (), num_classes, act=act, dropout=dropout, drop_input=True, dtype=dtype, rngs=rngs
    )

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Maps images [N, 32, 32, 3] to logits [N, num_classes]."""
    for layer in self.body:
      x = layer(x, train=train)
    return self.head(x, train=train, rngs=rngs)


vgg11 = layers.variant(VGG, 'VGG-11 (configuration A of Simonyan & Zisserman, 2015) with BatchNorm.', stages=VGG11)
vgg13 = layers.variant(VGG, 'VGG-13 (configuration B) with BatchNorm.', stages=VGG13)
vgg16 = layers.variant(VGG, 'VGG-16 (configuration D) with BatchNorm: 14,728,266 parameters.', stages=VGG16)
vgg19 = layers.variant(VGG, 'VGG-19 (configuration E) with BatchNorm.', stages=VGG19)
