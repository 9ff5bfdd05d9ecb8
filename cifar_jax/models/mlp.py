"""A multilayer perceptron on the flattened image: the simplest baseline."""

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax.models import layers


class MLP(nnx.Module):
  """Flatten the 32x32x3 image, then hidden Linear layers with activation and dropout, then logits."""

  def __init__(
      self,
      *,
      hidden_sizes: Sequence[int] = (512, 256),
      num_classes: int = 10,
      activation: str = 'relu',
      dropout: float = 0.0,
      dtype: DTypeLike = jnp.float32,
      rngs: nnx.Rngs,
  ):
    self.head = layers.Head(
        layers.IMAGE_SIZE**2 * layers.IMAGE_CHANNELS,
        hidden_sizes,
        num_classes,
        act=layers.activation(activation),
        dropout=dropout,
        dtype=dtype,
        rngs=rngs,
    )

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Maps images [N, 32, 32, 3] to logits [N, num_classes]."""
    return self.head(x, train=train, rngs=rngs)
