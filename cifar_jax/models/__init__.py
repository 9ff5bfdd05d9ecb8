"""Model zoo: a name -> constructor registry, a validating factory and PyTorch-style parameter counts."""

from collections.abc import Callable
import functools
import inspect
import math

from flax import nnx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cifar_jax import config_check
from cifar_jax.errors import ConfigError, check_choice
from cifar_jax.models import lenet, resnet, speedrun, upv, vgg
from cifar_jax.models.mlp import MLP

MODELS: dict[str, Callable[..., nnx.Module]] = {
    'mlp': MLP,
    'lenet5': lenet.lenet5,
    'tutorial_cnn': lenet.tutorial_cnn,
    'vgg11': vgg.vgg11,
    'vgg13': vgg.vgg13,
    'vgg16': vgg.vgg16,
    'vgg19': vgg.vgg19,
    'resnet18': resnet.resnet18,
    'resnet34': resnet.resnet34,
    'upv_cnn': upv.upv_cnn,
    'upv_resnet': upv.upv_resnet,
    'upv_resnet_avgpool': upv.upv_resnet_avgpool,
    'upv_resnet_maxpool': upv.upv_resnet_maxpool,
    'upv_resnet_final': upv.upv_resnet_final,
    'speedrun_net': speedrun.speedrun_net,
}


def model_options(name: str) -> list[str]:
  """The config keys (model.<key>) that model `name` accepts, besides name, dtype and rngs."""
  entry = MODELS[name]
  cls = entry.func if isinstance(entry, functools.partial) else entry
  params = inspect.signature(cls.__init__).parameters  # the class's own reads nnx's (*args, **kwargs)
  return sorted(set(params) - {'self', 'dtype', 'rngs'})


def create_model(name: str, *, rngs: nnx.Rngs, dtype: DTypeLike = jnp.float32, **kwargs) -> nnx.Module:
  """Builds model `name`; an unknown name or option, or a bad dropout, raises ConfigError before building."""
  check_choice('model.name', name, MODELS)
  options = model_options(name)
  for key in kwargs:
    if key not in options:
      raise ConfigError(f'model.{key} is not an option of model {name!r}; it accepts: {", ".join(options)}')
  config_check.check_dropout(kwargs.get('dropout', 0.0))
  return MODELS[name](rngs=rngs, dtype=dtype, **kwargs)


def count_params(model: nnx.Module) -> int:
  """Number of scalars in nnx.Param variables, as PyTorch counts (BatchNorm statistics excluded)."""
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
