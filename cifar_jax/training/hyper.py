"""Which runs may train as one vectorized group, and their differing numbers as traced values inside it.

Members of a group share one program: the graph, every shape and every branch the builders take. They may
differ only in VECTOR_KEYS, and of those not in whether each is zero: the builders add a term (momentum, weight
decay, L1, L2, label smoothing) only when its number is non-zero, so zero and non-zero are two programs
(`group_key`). `model.dropout` is part of the key (nnx.Dropout's rate is a Python float). ReduceLROnPlateau
(`schedule.name=plateau`), the tf.data pipeline and `parallelism=pmap` leave a variant alone.

Inside the vmapped step, each member's optimizer, schedule and step settings come from the library's own
builders (`optim.*`, `experiment.step_config`) called with the member's numbers as `Hyper` values: arithmetic on the
traced scalar, while the builders' structural branches (truth, comparisons) are answered from every member's
concrete value, and refused when the members disagree. So a member's state tree is exactly a sequential run's.
"""

import functools
import operator
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections

from cifar_jax import config_lib
from cifar_jax.errors import ConfigError
from cifar_jax.training import run_dir

VECTOR_KEYS = (
    'seed',
    'optimizer.learning_rate',
    'optimizer.momentum',
    'optimizer.weight_decay',
    'regularization.l1',
    'regularization.l2',
    'regularization.label_smoothing',
    'schedule.gamma',
)
_ZERO_MATTERS = (
    'optimizer.momentum',
    'optimizer.weight_decay',
    'regularization.l1',
    'regularization.l2',
    'regularization.label_smoothing',
)

# Keys a group may mix: those a resume may change (run_dir.RESUME_SAFE_KEYS: the numbers stay), except the loop's
# schedule, which a group takes from its first member (its step cap, log points and checkpoint times).
_LOOP_KEYS = frozenset({'num_train_steps', 'log_every_steps', 'checkpoint_every_epochs', 'checkpoint_every_seconds'})
_FREE_KEYS = run_dir.RESUME_SAFE_KEYS - _LOOP_KEYS


def group_key(config: ml_collections.ConfigDict) -> tuple[Any, ...] | None:
  """What members of one group must share; None for a config that never joins a group."""
  if config.schedule.name == 'plateau' or config.data.pipeline != 'device' or config.parallelism != 'jit':
    return None
  flat = config_lib.flatten(config_lib.config_as_json(config))
  shared = tuple(sorted((k, v) for k, v in flat.items() if k not in VECTOR_KEYS and k not in _FREE_KEYS))
  return shared + tuple((k, flat[k] != 0) for k in _ZERO_MATTERS)


def group_variants(configs: Sequence[ml_collections.ConfigDict], max_members: int) -> list[list[int]]:
  """Indices of `configs` in groups of at most `max_members` that share a `group_key`, in first-seen order;
  a config without a key is a group of its own."""
  if max_members < 1:
    raise ConfigError(f'max_members={max_members} must be >= 1')
  buckets: dict[Any, list[int]] = {}
  for index, config in enumerate(configs):
    key = group_key(config)
    buckets.setdefault(('alone', index) if key is None else key, []).append(index)
  return [members[i : i + max_members] for members in buckets.values() for i in range(0, len(members), max_members)]


class Hyper:
  """One member's value of a varied key inside the vmapped function: arithmetic on the traced scalar, while
  truth and comparisons (the builders' structural branches) are answered from every member's concrete
  value, and refused when the members disagree (which `group_key` prevents)."""

  def __init__(self, key: str, traced: jax.Array, values: Sequence[float]) -> None:
    self.key, self.traced, self.values = key, traced, tuple(values)

  def _same(self, answers: set[bool]) -> bool:
    if len(answers) != 1:
      raise ConfigError(f'the members of a group differ in the structure of {self.key} ({self.values})')
    return answers.pop()

  def __bool__(self) -> bool:
    return self._same({bool(v) for v in self.values})

  def __jax_array__(self) -> jax.Array:
    return self.traced


def _compare(op):
  return lambda self, other: self._same({op(v, other) for v in self.values})


def _arith(op, reflected=False):
  def method(self, other):
    other = other.traced if isinstance(other, Hyper) else other
    return op(other, self.traced) if reflected else op(self.traced, other)

  return method


for _name in ('lt', 'le', 'gt', 'ge', 'eq', 'ne'):
  setattr(Hyper, f'__{_name}__', _compare(getattr(operator, _name)))
for _name in ('add', 'sub', 'mul', 'truediv', 'pow'):
  setattr(Hyper, f'__{_name}__', _arith(getattr(operator, _name)))
  setattr(Hyper, f'__r{_name}__', _arith(getattr(operator, _name), reflected=True))
Hyper.__neg__ = lambda self: -self.traced
Hyper.__hash__ = None


def vector_values(configs: Sequence[ml_collections.ConfigDict]) -> dict[str, tuple[Any, ...]]:
  """Every member's value of each of VECTOR_KEYS, in member order."""
  return {key: tuple(_get(c, key) for c in configs) for key in VECTOR_KEYS}


def _get(config: ml_collections.ConfigDict, key: str) -> Any:
  return functools.reduce(lambda node, part: node[part], key.split('.'), config)


def member_config(
    template: ml_collections.ConfigDict, hyper: dict[str, jax.Array], values: dict[str, tuple[float, ...]]
) -> ml_collections.ConfigDict:
  """The group's config with each varied key set to the member's traced value (a `Hyper`)."""
  config = ml_collections.ConfigDict(template.to_dict(), type_safe=False)
  for key, traced in hyper.items():
    *path, last = key.split('.')
    node = functools.reduce(lambda n, part: n[part], path, config)
    node[last] = Hyper(key, traced, values[key])
  return config
