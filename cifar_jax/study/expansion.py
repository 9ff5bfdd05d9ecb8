"""A sweep config read into its runs, without JAX: the variants (listed, or a grid and its random draws), each once
per seed, with their resolved configs and folder names; and the checks of the sweep's own names and of every run
config's keys, names and plain values, which the sweep command makes before the heavy imports. The sweep config
keys are documented in the command, `cifar_jax/sweep.py`.
"""

from collections.abc import Iterator, Mapping, Sequence
import contextlib
import copy
import dataclasses
import math
import pathlib
import random
import re
from typing import Any

import ml_collections

from cifar_jax import config_check, config_lib
from cifar_jax.config_lib import load_config_file, parse_assignment, set_key
from cifar_jax.errors import ConfigError, check_choice

VARIANT_KEYS = ('name', 'config', 'overrides')
VECTORIZE = ('off', 'on', 'auto')  # the sweep key vectorize: never group, always group, group where it pays off
SEARCHES = ('fixed', 'tpe')  # the listed variants, the grid or its random draws; or points Optuna's TPE samples
PRUNERS = ('none', 'median', 'hyperband')  # Optuna's pruner that stops runs by their validation accuracy per epoch


@dataclasses.dataclass
class SweepRun:
  """One run of a sweep: its folder (relative to the workdir), the config file it starts from, its variant's own
  changes, its resolved config, and the variant it belongs to (the variant's folder name) with its seed."""

  name: str
  source: str
  overrides: dict[str, Any]
  config: ml_collections.ConfigDict
  variant: str = ''
  seed: int = 0


def _apply(config: ml_collections.ConfigDict, items: dict[str, Any], where: str) -> None:
  """Sets every dotted key of `items`, naming `where` they come from in any error."""
  for key, value in items.items():
    try:
      set_key(config, key, value)
    except ConfigError as e:
      raise ConfigError(f'{where}: {e}') from e


def _short(value: Any) -> str:
  """A value as part of a folder name."""
  if isinstance(value, (tuple, list)):
    return '-'.join(map(_short, value)) or 'none'
  return f'{value:g}' if isinstance(value, float) else str(value)


def name_from_values(values: dict[str, Any]) -> str:
  """`learning_rate=0.01_momentum=0.9`: each key by its last part, or whole where two keys share it."""
  leaves = [key.rsplit('.', 1)[-1] for key in values]
  return '_'.join(
      f'{leaf if leaves.count(leaf) == 1 else key}={_short(value)}'
      for leaf, (key, value) in zip(leaves, values.items())
  )


def safe_name(name: str) -> str:
  """`name` made safe as a folder name on every common file system."""
  return re.sub(r'[^A-Za-z0-9._=+-]+', '_', name).strip('._-') or 'variant'


def grid_values(sweep: ml_collections.ConfigDict) -> dict[str, tuple[Any, ...]]:
  """The grid as {dotted.key: values}, each a non-empty list."""
  grid = config_lib.flatten(sweep.grid.to_dict())
  for key, values in grid.items():
    if not isinstance(values, tuple) or not values:
      raise ConfigError(f'grid.{key}={values!r} must be a non-empty list of values')
  return grid


def grid_size(sweep: ml_collections.ConfigDict) -> int:
  """How many points the grid has (the product of its value counts)."""
  return math.prod(len(values) for values in grid_values(sweep).values())


def grid_point(grid: dict[str, tuple[Any, ...]], index: int) -> dict[str, Any]:
  """Point `index` of the grid's product, in itertools.product order (the last key varies fastest)."""
  point = {}
  for key, values in reversed(grid.items()):
    index, i = divmod(index, len(values))
    point[key] = values[i]
  return {key: point[key] for key in grid}


def _specs(sweep: ml_collections.ConfigDict) -> list[tuple[str, str, dict[str, Any]]]:
  """(name, config file, overrides) of each variant, from the list or from the grid."""
  if bool(sweep.variants) == bool(sweep.grid):
    raise ConfigError('a sweep config sets exactly one of variants or grid')
  if sweep.num_samples < 0:
    raise ConfigError(f'num_samples={sweep.num_samples} must be >= 0')
  if sweep.grid:
    grid = grid_values(sweep)
    size = grid_size(sweep)
    indices = range(size)
    if 0 < sweep.num_samples < size:
      indices = sorted(random.Random(sweep.seed).sample(range(size), sweep.num_samples))
    return [(name_from_values(point), sweep.base, point) for point in (grid_point(grid, i) for i in indices)]
  specs = []
  for entry in sweep.variants:
    unknown = sorted(set(entry) - set(VARIANT_KEYS))
    if unknown:
      raise ConfigError(
          f'variant {entry.get("name", entry)!r} has unknown fields {unknown}; a variant has '
          f'{", ".join(VARIANT_KEYS)}'
      )
    specs.append((entry_name(entry), entry.get('config', sweep.base), config_lib.flatten(entry.get('overrides', {}))))
  return specs


def entry_name(entry: Mapping[str, Any]) -> str:
  """A listed variant's folder name (before a repeated one gets a suffix): its own name, else its config file's
  stem, else its values; the one place it is derived."""
  overrides = config_lib.flatten(entry.get('overrides', {}))
  default = pathlib.Path(entry['config']).stem if 'config' in entry else name_from_values(overrides)
  return safe_name(entry.get('name') or default)


def seed_folder(variant: str, seed: int, seeds: int) -> str:
  """The folder of one run of `variant`: the variant's own folder with one seed, `variant/seed=K` with several."""
  return variant if seeds == 1 else f'{variant}/seed={seed}'


def expand(sweep: ml_collections.ConfigDict, cli_overrides: Sequence[str] = ()) -> list[SweepRun]:
  """Every run of the sweep (each variant once per seed) with resolved configs and unique safe folder names;
  a bad key or value raises ConfigError. A TPE search has none before it samples them (`sampled_run`)."""
  if not isinstance(sweep.seeds, int) or sweep.seeds < 1:
    raise ConfigError(f'seeds={sweep.seeds!r} must be a whole number >= 1 (runs per variant)')
  check_search(sweep)
  if sweep.search == 'tpe':
    return []
  loaded, variants, seen = {}, [], set()
  for name, source, overrides in _specs(sweep):
    name = base_name = safe_name(name)
    suffix = 1
    while name in seen:
      suffix += 1
      name = f'{base_name}-{suffix}'
    seen.add(name)
    variants += _runs_of(sweep, name, source, overrides, cli_overrides, loaded)
  return variants


def _runs_of(
    sweep: ml_collections.ConfigDict,
    name: str,
    source: str,
    overrides: dict[str, Any],
    cli_overrides: Sequence[str],
    loaded: dict[str, ml_collections.ConfigDict],
) -> list[SweepRun]:
  """The runs of variant `name` (one per seed): its config file (cached in `loaded`), then the sweep's shared
  overrides, then its own, then the command line's."""
  if source not in loaded:
    loaded[source] = load_config_file(source)
  config = copy.deepcopy(loaded[source])
  _apply(config, config_lib.flatten(sweep.overrides.to_dict()), 'sweep overrides')
  _apply(config, overrides, f'variant {name}')
  for text in cli_overrides:
    _apply(config, dict([parse_assignment(text, config)]), f'--set={text}')
  runs = []
  for seed in range(config.seed, config.seed + sweep.seeds):
    seeded = copy.deepcopy(config)
    seeded.seed = seed
    runs.append(SweepRun(seed_folder(name, seed, sweep.seeds), source, overrides, seeded, name, seed))
  return runs


def sampled_run(sweep: ml_collections.ConfigDict, point: dict[str, Any], cli_overrides: Sequence[str]) -> SweepRun:
  """The run of a grid point a search sampled, named after its values as a grid's variant is."""
  return _runs_of(sweep, safe_name(name_from_values(point)), sweep.base, point, cli_overrides, {})[0]


def check_search(sweep: ml_collections.ConfigDict) -> None:
  """Refuses a search, pruner or vectorize setting the sweep cannot have, naming the key."""
  check_choice('search', sweep.search, SEARCHES)
  check_choice('pruner', sweep.pruner, PRUNERS)
  check_choice('vectorize', sweep.vectorize, VECTORIZE)
  if sweep.search == 'tpe':
    if not sweep.grid or sweep.num_samples < 1:
      raise ConfigError("search='tpe' samples num_samples >= 1 points of a grid: set grid and num_samples")
    if sweep.seeds != 1:
      raise ConfigError(f"search='tpe' runs each sampled point once: seeds={sweep.seeds} must be 1")
    for key, values in grid_values(sweep).items():
      if not all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
        raise ConfigError(f"search='tpe' samples numbers or text: grid.{key}={values!r} holds other values")
  if sweep.pruner != 'none' and sweep.vectorize != 'off':
    raise ConfigError(f"pruner={sweep.pruner!r} stops runs one by one: vectorize={sweep.vectorize!r} must be 'off'")


def runs_to_check(sweep: ml_collections.ConfigDict, cli_overrides: Sequence[str] = ()) -> list[SweepRun]:
  """The runs whose configs a sweep checks before any run trains: all of them, or for a TPE search (which has none
  before it samples) points of its grid that take each value of every key once."""
  runs = expand(sweep, cli_overrides)
  if sweep.search != 'tpe':
    return runs
  grid = grid_values(sweep)
  points = [{key: values[j % len(values)] for key, values in grid.items()} for j in range(max(map(len, grid.values())))]
  return [sampled_run(sweep, point, cli_overrides) for point in points]


@contextlib.contextmanager
def naming_variant(name: str) -> Iterator[None]:
  """Prefixes a ConfigError raised inside with `variant NAME: `."""
  try:
    yield
  except ConfigError as e:
    raise ConfigError(f'variant {name}: {e}') from e


def check_configs(sweep: ml_collections.ConfigDict, cli_overrides: Sequence[str] = ()) -> None:
  """Refuses a sweep whose keys or names are bad or one of whose run configs has a bad key, name or plain value
  (cifar_jax/config_check.py), naming the variant: what the sweep command checks before the heavy imports."""
  for run in runs_to_check(sweep, cli_overrides):
    with naming_variant(run.name):
      config_check.check_config(run.config)
