"""Loads a PyTorch `state_dict` of the same architecture into one of our models (every family in cifar_jax.models).

The state_dict is a mapping of names to numpy arrays (`{k: v.numpy() for k, v in sd.items()}`, or an .npz file of
them), so this module needs no torch; torch reads .pth/.pt files when it is installed. A whole training checkpoint
is unwrapped: kuangliu/pytorch-cifar's `{'net': ..., 'acc': ..., 'epoch': ...}`, the common 'state_dict', 'model'
and 'model_state_dict' wrappers, and DataParallel's 'module.' prefixes.

Layers are matched in order, by kind and shape: the torch module must register its Conv2d, BatchNorm2d and Linear
layers in the order of the forward pass, as the blitz tutorial, kuangliu/pytorch-cifar and the UPV definitions do
(a residual block's shortcut after its two convs). Ours are taken in the order the forward pass applies them, read
from the traced computation, since nnx transforms (`nnx.jit`, `nnx.split` + `nnx.merge`) re-sort a module's
attributes by name. Conversions: conv kernels OIHW -> HWIO, Linear weights (out, in) -> (in, out), and the first
Linear after a flatten of a spatial map gets its inputs reordered from PyTorch's (c, h, w) flatten to our (h, w, c).

    python -c "import torch, numpy as np; np.savez('w.npz', **{k: v.numpy() for k, v in
               torch.load('ckpt.pth', weights_only=True)['net'].items()})"    # a torch-free copy of kuangliu's file
"""

import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.extend.core import Literal

from cifar_jax.errors import UserError
from cifar_jax.models import layers

TORCH_BATCHNORM = {'weight': 'scale', 'bias': 'bias', 'running_mean': 'mean', 'running_var': 'var'}
LAYER_KINDS = (nnx.Conv, nnx.BatchNorm, nnx.Linear)
# Where training scripts keep the state_dict inside the checkpoint they save, in the order they are looked for.
WRAPPER_KEYS = ('state_dict', 'model_state_dict', 'net', 'model')
DATA_PARALLEL_PREFIX = 'module.'
TORCH_SUFFIXES, NUMPY_SUFFIXES = ('.pth', '.pt'), ('.npz',)


def _path_key(entry: Any) -> Any:
  """A jax tree path entry (DictKey, SequenceKey, GetAttrKey) as the plain key nnx.iter_graph uses."""
  for field in ('key', 'idx', 'name'):
    if hasattr(entry, field):
      return getattr(entry, field)
  return entry


def _forward_order(model: nnx.Module) -> list[nnx.Module]:
  """The model's Conv, BatchNorm and Linear layers in the order its forward pass first applies each to the input.

  Traced on one abstract image in eval mode: a value computed from one layer's parameters alone (a cast kernel,
  BatchNorm's scale / sqrt(var + eps)) is that layer's, and the first operation that meets it with the input's
  descendants is where the layer is applied. This is the order of the code, not of the attributes.
  """
  found = [(path, node) for path, node in nnx.iter_graph(model) if isinstance(node, LAYER_KINDS)]
  index = {tuple(path): i for i, (path, _) in enumerate(found)}
  graphdef, state = nnx.split(model)
  with_paths, treedef = jax.tree_util.tree_flatten_with_path(state)

  def owner(path: tuple[Any, ...]) -> frozenset[int]:
    keys = tuple(_path_key(entry) for entry in path)
    return frozenset(index[keys[:n]] for n in range(len(keys)) if keys[:n] in index)

  def forward(leaves: list[jax.Array], images: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))(images, train=False)

  images = jax.ShapeDtypeStruct((1, layers.IMAGE_SIZE, layers.IMAGE_SIZE, layers.IMAGE_CHANNELS), jnp.float32)
  jaxpr = jax.make_jaxpr(forward)([leaf for _, leaf in with_paths], images).jaxpr
  input_var = jaxpr.invars[-1]
  origin: dict[Any, frozenset[int] | None] = {var: owner(path) for var, (path, _) in zip(jaxpr.invars, with_paths)}
  origin[input_var] = None  # None: computed from the input
  first: dict[int, int] = {}
  for eqn in jaxpr.eqns:
    sources = [origin.get(var, frozenset()) for var in eqn.invars if not isinstance(var, Literal)]
    if None in sources:
      for layer in sorted(set().union(*(s for s in sources if s is not None))):
        first.setdefault(layer, len(first))
    merged = None if None in sources else frozenset().union(*sources)
    origin.update((var, merged) for var in eqn.outvars)
  order = sorted(range(len(found)), key=lambda i: first.get(i, len(found) + i))  # unused layers last
  return [found[i][1] for i in order]


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


def _is_tensor(value: Any) -> bool:
  """A numpy array or a torch tensor (anything with a shape that numpy can read)."""
  return hasattr(value, 'shape') and (hasattr(value, '__array__') or hasattr(value, 'detach'))


def _to_numpy(value: Any) -> np.ndarray:
  """A torch tensor (any dtype, bfloat16 included) or an array as a numpy array."""
  if hasattr(value, 'detach'):  # torch: numpy cannot read bfloat16
    value = value.detach().cpu().float()
  return np.asarray(value)


def _describe(checkpoint: Any) -> str:
  """What was passed, in a few words, for the error that says it holds no state_dict."""
  if isinstance(checkpoint, Mapping):
    keys = ', '.join(repr(k) for k in list(checkpoint)[:8]) + (', ...' if len(checkpoint) > 8 else '')
    return f'a {type(checkpoint).__name__} with keys {keys}' if checkpoint else 'an empty mapping'
  return f'a {type(checkpoint).__module__}.{type(checkpoint).__name__}'


def extract_state_dict(checkpoint: Any) -> dict[str, np.ndarray]:
  """The state_dict in `checkpoint` as numpy arrays, in its order: the checkpoint itself when all its values are
  tensors, else the mapping under the first of WRAPPER_KEYS it has (kuangliu's main.py saves {'net': ...,
  'acc': ..., 'epoch': ...}); DataParallel's 'module.' prefixes are dropped. UserError says what was passed when
  none is found (`torch.save(model)` pickles the module itself: save `model.state_dict()` instead)."""
  if isinstance(checkpoint, Mapping) and checkpoint:
    if all(isinstance(k, str) and _is_tensor(v) for k, v in checkpoint.items()):
      return {k.removeprefix(DATA_PARALLEL_PREFIX): _to_numpy(v) for k, v in checkpoint.items()}
    for key in WRAPPER_KEYS:
      if isinstance(checkpoint.get(key), Mapping):
        return extract_state_dict(checkpoint[key])
  raise UserError(
      f'expected a PyTorch state_dict (names -> tensors) or a checkpoint holding one under '
      f'{", ".join(map(repr, WRAPPER_KEYS))}; got {_describe(checkpoint)}'
  )


def _import_torch(path: pathlib.Path) -> Any:
  """torch, or UserError saying how to read `path` without it."""
  try:
    import torch  # pylint: disable=import-outside-toplevel  (optional: pip install -e '.[torch]')
  except ImportError as e:
    raise UserError(
        f"{path}: reading a PyTorch file needs torch (pip install -e '.[torch]'), or save its state_dict as .npz "
        f'where torch is: np.savez(path, **{{k: v.numpy() for k, v in state_dict.items()}})'
    ) from e
  return torch


def check_file(path: str | pathlib.Path) -> pathlib.Path:
  """`path` if it can be read here (a .pth / .pt with torch installed, or an .npz); UserError naming it otherwise."""
  path = pathlib.Path(path)
  if path.suffix not in TORCH_SUFFIXES + NUMPY_SUFFIXES:
    raise UserError(f'{path}: a PyTorch checkpoint must end in {", ".join(TORCH_SUFFIXES + NUMPY_SUFFIXES)}')
  if not path.is_file():
    raise UserError(f'{path}: no such file')
  if path.suffix in TORCH_SUFFIXES:
    _import_torch(path)
  return path


def read_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """The state_dict in a .pth / .pt file (read by torch.load with weights_only=True; needs torch) or in an .npz file
  of its arrays (numpy only), unwrapped by `extract_state_dict`. UserError names the file and what went wrong."""
  path = check_file(path)
  if path.suffix in NUMPY_SUFFIXES:
    try:
      with np.load(path, allow_pickle=False) as arrays:
        return extract_state_dict(dict(arrays))
    except (OSError, ValueError) as e:
      raise UserError(f'{path}: not a readable .npz of arrays ({" ".join(str(e).split())})') from e
  torch = _import_torch(path)
  try:
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # torch raises several kinds (UnpicklingError, RuntimeError, EOFError) for a bad file
    raise UserError(f'{path}: torch.load(weights_only=True) failed: {" ".join(str(e).split())[:300]}') from e
  return extract_state_dict(checkpoint)


def load_state_dict(model: nnx.Module, checkpoint: Mapping[str, Any]) -> None:
  """Copies a PyTorch state_dict's parameters and BatchNorm running statistics into `model`, in place.

  `checkpoint` is a state_dict or a training checkpoint holding one (see `extract_state_dict`). Raises UserError
  naming the torch layer when the layers do not line up (kind, count or shape).
  """
  ours, theirs = _forward_order(model), _torch_layers(extract_state_dict(checkpoint))
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
