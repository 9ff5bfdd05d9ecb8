"""LeNet-5 and the PyTorch 60-minute-blitz CNN: two 62,006-parameter nets differing only in layer C5."""

import functools

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax.models import layers


class LeNet(nnx.Module):
  """Conv 3->6 5x5, pool, conv 6->16 5x5, pool (valid convs, activation after each), then C5 and the head.

  C5 is either a 16->120 5x5 conv to a 1x1 map (LeNet-5: head 120->84->classes) or a flatten of the
  16x5x5 map (the blitz Net: head 400->120->84->classes). Both have 62,006 parameters.
  """

  def __init__(
      self,
      *,
      c5_conv: bool,
      num_classes: int = 10,
      activation: str = 'relu',
      dropout: float = 0.0,
      dtype: DTypeLike = jnp.float32,
      rngs: nnx.Rngs,
  ):
    act = layers.activation(activation)
    conv = functools.partial(layers.ConvNormAct, padding=0, norm=False, act=act, dtype=dtype, rngs=rngs)
    features = [
        conv(layers.IMAGE_CHANNELS, 6, 5),
        layers.Pool('max', 2),
        conv(6, 16, 5),
        layers.Pool('max', 2),
    ]
    if c5_conv:
      features.append(conv(16, 120, 5))
    self.features = nnx.List(features)
    in_features, hidden_sizes = (120, (84,)) if c5_conv else (16 * 5 * 5, (120, 84))
    self.head = layers.Head(in_features, hidden_sizes, num_classes, act=act, dropout=dropout, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Maps images [N, 32, 32, 3] to logits [N, num_classes]."""
    for layer in self.features:
      x = layer(x, train=train)
    return self.head(x, train=train, rngs=rngs)


lenet5 = layers.variant(LeNet, 'LeNet-5 (LeCun et al., 1998) on 3-channel input: C5 is a 5x5 conv.', c5_conv=True)
tutorial_cnn = layers.variant(
    LeNet, 'The PyTorch 60-minute-blitz Net (the report\'s "cnn_lessvalues"): C5 is a Linear.', c5_conv=False
)
