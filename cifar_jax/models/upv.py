"""The UPV CIFAR-10 report's networks, rebuilt from their exact parameter counts.

See shared/spec/upv_architectures.md. Every row is one `UPVNet` with a different `plan`, made of:
- ConvBlock(c): 3x3 conv with bias -> BatchNorm -> activation -> 2x2 max pool;
- ResBlock(c): conv3x3(bias) -> BN -> act -> conv3x3(bias) -> BN, plus a 1x1 conv shortcut with bias
  and no BN, added, then act (`layers.ResidualBlock` with bias and no shortcut norm);
- max or average pooling with window = stride = n;
and the head flatten -> Linear(F -> 512) -> act -> dropout -> Linear(512 -> classes).
"""

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax import config_check
from cifar_jax.errors import check_choice
from cifar_jax.models import layers

HIDDEN_SIZE = 512

# A plan is a sequence of (kind, n): ('conv', c) ConvBlock, ('res', c) ResBlock, both to c channels;
# ('max', n) or ('avg', n) an n x n pool with stride n.
CNN = (('conv', 32), ('conv', 64), ('conv', 128), ('conv', 256), ('conv', 512))
RESNET = CNN[:3] + (('res', 256), ('res', 512))
RESNET_AVGPOOL = RESNET + (('avg', 4),)
RESNET_MAXPOOL = (('res', 32), ('res', 64), ('res', 128), ('max', 4), ('res', 256), ('res', 512), ('avg', 8))
RESNET_FINAL = (('res', 32), ('res', 64), ('res', 128), ('max', 2), ('res', 256), ('max', 2), ('res', 512), ('avg', 8))


class UPVNet(nnx.Module):
  """A body of ConvBlocks, ResBlocks and pools given by `plan`, then the two-Linear head."""

  def __init__(
      self,
      *,
      plan: Sequence[tuple[str, int]],
      num_classes: int = 10,
      activation: str = 'relu',
      dropout: float = 0.0,
      dtype: DTypeLike = jnp.float32,
      rngs: nnx.Rngs,
  ):
    act = layers.activation(activation)
    body, channels, size = [], layers.IMAGE_CHANNELS, layers.IMAGE_SIZE
    for kind, n in plan:
      check_choice('model.plan', kind, config_check.PLAN_KINDS)
      if kind == 'conv':
        body += [layers.ConvNormAct(channels, n, 3, act=act, dtype=dtype, rngs=rngs), layers.Pool('max', 2)]
        channels, size = n, size // 2
      elif kind == 'res':
        body.append(
            layers.ResidualBlock(channels, n, use_bias=True, shortcut_norm=False, act=act, dtype=dtype, rngs=rngs)
        )
        channels = n
      else:
        body.append(layers.Pool(kind, n))
        size //= n
    self.body = nnx.List(body)
    self.head = layers.Head(
        channels * size**2, (HIDDEN_SIZE,), num_classes, act=act, dropout=dropout, dtype=dtype, rngs=rngs
    )

  def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Maps images [N, 32, 32, 3] to logits [N, num_classes]."""
    for layer in self.body:
      x = layer(x, train=train)
    return self.head(x, train=train, rngs=rngs)


upv_cnn = layers.variant(
    UPVNet,
    'Rows 1 and 2, "Baseline CNN" and "+ augmentation + ReduceLROnPlateau": 1,838,346 params.',
    plan=CNN,
)
upv_resnet = layers.variant(
    UPVNet,
    'Row 3, "+ResNet": ConvBlocks 4 and 5 become ResBlocks at 4x4, flatten 8,192: 8,886,538 params.',
    plan=RESNET,
)
upv_resnet_avgpool = layers.variant(
    UPVNet,
    'Row 4, "+AvgPool": row 3 with a 4x4 average pool before the head: 4,954,378 params.',
    plan=RESNET_AVGPOOL,
)
upv_resnet_maxpool = layers.variant(
    UPVNet,
    'Row 5, "+MaxPool": five ResBlocks, a 4x4 max pool, an 8x8 average pool: 5,159,146 params.',
    plan=RESNET_MAXPOOL,
)
upv_resnet_final = layers.variant(
    UPVNet,
    'Row 6, "ResNet Final": row 5 with 2x2 max pools before ResBlocks 4 and 5: 5,159,146 params.',
    plan=RESNET_FINAL,
)
