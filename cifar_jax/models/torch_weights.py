"""Loads a PyTorch `state_dict` of the same architecture into one of our models (every family in cifar_jax.models).

The state_dict is a mapping of names to numpy arrays (`{k: v.numpy() for k, v in sd.items()}`), so this module needs
no torch. Layers are matched in order, by kind and shape: the torch module must register its Conv2d, BatchNorm2d
and Linear layers in the order of the forward pass, as the blitz tutorial, kuangliu/pytorch-cifar and the UPV
definitions do (a residual block's shortcut after its two convs). Conversions: conv kernels OIHW -> HWIO, Linear
weights (out, in) -> (in, out), and the first Linear after a flatten of a spatial map gets its inputs reordered
from PyTorch's (c, h, w) flatten to our (h, w, c).
"""

from collections.abc import Iterator, Mapping

import numpy as np
from flax import nnx

from cifar_jax.errors import UserError
from cifar_jax.models import layers

TORCH_BATCHNORM = {'weight': 'scale', 'bias': 'bias', 'running_mean': 'mean', 'running_var': 'var'}


def _our_layers(module: object) -> Iterator[nnx.Module]:
  """Conv, BatchNorm and Linear layers in the order the model builds (and calls) them."""
  if isinstance(module, (nnx.Conv, nnx.BatchNorm, nnx.Linear)):
    yield module
  elif isinstance(module, nnx.List):
    for item in module:
      yield from _our_layers(item)
  elif isinstance(module, nnx.Module):
    for value in vars(module).values():
      yield from _our_layers(value)


def _torch_layers(state_dict: Mapping[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
  """The state_dict grouped by layer prefix, in its order; num_batches_tracked is dropped."""
  grouped: dict[str, dict[str, np.ndarray]] = {}
  for key, value in state_dict.items():
    prefix, _, name = key.rpartition('.')
    if name != 'num_batches_tracked':
      grouped.setdefault(prefix, {})[name] = np.asarray(value, np.float32)
  return list(grouped.items())


def _torch_kind(tensors: dict[str, np.ndarray]) -> type[nnx.Module]:
  if 'running_mean' in tensors:
    return nnx.BatchNorm
  return nnx.Conv if tensors['weight'].ndim == 4 else nnx.Linear


def _chw_to_hwc_rows(weight: np.ndarray, channels: int) -> np.ndarray:
  """Reorders a Linear's (out, c*h*w) torch weight to take our (h, w, c) flatten; h = w."""
  out, features = weight.shape
  size = int(round((features // channels) ** 0.5))
  return weight.reshape(out, channels, size, size).transpose(0, 2, 3, 1).reshape(out, features)


def _assign(variable: nnx.Variable, value: np.ndarray, name: str) -> None:
  if variable[...].shape != value.shape:
    raise UserError(f'{name}: PyTorch shape {value.shape} does not fit ours {variable[...].shape}')
  variable[...] = value.astype(variable[...].dtype)


def load_state_dict(model: nnx.Module, state_dict: Mapping[str, np.ndarray]) -> None:
  """Copies a PyTorch state_dict's parameters and BatchNorm running statistics into `model`, in place.

  Raises UserError naming the torch layer when the layers do not line up (kind, count or shape).
  """
  ours, theirs = list(_our_layers(model)), _torch_layers(state_dict)
  if len(ours) != len(theirs):
    raise UserError(f'the state_dict has {len(theirs)} layers, the model {len(ours)}')
  channels, flattened = layers.IMAGE_CHANNELS, False  # the feature map a first Linear would flatten
  for layer, (prefix, tensors) in zip(ours, theirs):
    kind = _torch_kind(tensors)
    if not isinstance(layer, kind):
      raise UserError(f'{prefix}: a PyTorch {kind.__name__} where the model has a {type(layer).__name__}')
    if kind is nnx.BatchNorm:
      for torch_name, our_name in TORCH_BATCHNORM.items():
        _assign(getattr(layer, our_name), tensors[torch_name], f'{prefix}.{torch_name}')
      continue
    weight = tensors['weight']
    if kind is nnx.Conv:
      channels = weight.shape[0]
      weight = weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    else:
      if not flattened and weight.shape[1] != channels:
        weight = _chw_to_hwc_rows(weight, channels)
      flattened = True
      weight = weight.T
    _assign(layer.kernel, weight, f'{prefix}.weight')
    if ('bias' in tensors) != (layer.bias is not None):
      raise UserError(f'{prefix}: PyTorch and the model disagree on having a bias')
    if 'bias' in tensors:
      _assign(layer.bias, tensors['bias'], f'{prefix}.bias')
