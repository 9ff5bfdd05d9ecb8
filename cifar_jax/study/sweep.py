"""Sweeps as a library: expands a sweep config into runs, trains them (one by one or as groups), records them.

The sweep config keys and what a sweep writes are documented in the command, `cifar_jax/sweep.py`.
"""

from collections.abc import Callable, Mapping, Sequence
import copy
import dataclasses
import math
import pathlib
import random
import re
from typing import Any

import ml_collections

from cifar_jax import config_lib
from cifar_jax.study import report
from cifar_jax.study.text import format_duration, plural
from cifar_jax.training import group, run_dir, trainer
from cifar_jax.data import cifar10
from cifar_jax.config_lib import load_config_file, parse_assignment, set_key
from cifar_jax.errors import ConfigError, UserError, check_choice

VARIANT_KEYS = ('name', 'config', 'overrides')
VECTORIZE = ('off', 'on', 'auto')  # the sweep key vectorize: never group, always group, group where it pays off


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
  a bad key or value raises ConfigError."""
  if not isinstance(sweep.seeds, int) or sweep.seeds < 1:
    raise ConfigError(f'seeds={sweep.seeds!r} must be a whole number >= 1 (runs per variant)')
  shared = config_lib.flatten(sweep.overrides.to_dict())
  loaded, variants, seen = {}, [], set()
  for name, source, overrides in _specs(sweep):
    name = base_name = safe_name(name)
    suffix = 1
    while name in seen:
      suffix += 1
      name = f'{base_name}-{suffix}'
    seen.add(name)
    if source not in loaded:
      loaded[source] = load_config_file(source)
    config = copy.deepcopy(loaded[source])
    _apply(config, shared, 'sweep overrides')
    _apply(config, overrides, f'variant {name}')
    for text in cli_overrides:
      _apply(config, dict([parse_assignment(text, config)]), f'--set={text}')
    for seed in range(config.seed, config.seed + sweep.seeds):
      seeded = copy.deepcopy(config)
      seeded.seed = seed
      variants.append(SweepRun(seed_folder(name, seed, sweep.seeds), source, overrides, seeded, name, seed))
  return variants


def check_variants(variants: Sequence[SweepRun], workdir: pathlib.Path, allow_config_change: bool = False) -> None:
  """Checks every variant's config, that a folder already there holds a run of the same config, and, once per
  data setting, that the data is there: a bad input stops the sweep before any run."""
  for variant in variants:
    try:
      trainer.check_config(variant.config)
      if (workdir / variant.name).is_dir():
        run_dir.check_resumable(workdir / variant.name, variant.config, allow_config_change)
    except ConfigError as e:
      raise ConfigError(f'variant {variant.name}: {e}') from e
  for data_dir, source in dict.fromkeys((v.config.data.data_dir or None, v.config.data.source) for v in variants):
    cifar10.check_available(data_dir, source)


def _headline(summary: dict[str, Any]) -> str:
  """The result of a run in a few words: its accuracies, epochs and time."""
  parts = [
      f'{label} {100 * summary[key]:.2f}%'
      for key, label in (('val_accuracy', 'val'), ('test_accuracy', 'test'))
      if summary.get(key) is not None
  ]
  epochs, seconds = summary.get('epochs'), summary.get('wall_seconds') or 0
  parts.append(f'{plural(epochs or 0, "epoch")} in {format_duration(seconds)}')
  return ', '.join(parts)


def _record_failure(folder: pathlib.Path, config: ml_collections.ConfigDict, error: str) -> None:
  """Makes the variant's summary.json say failed with `error` and keeps its config.json, whatever training wrote."""
  folder.mkdir(parents=True, exist_ok=True)
  if not (folder / run_dir.CONFIG_FILE).exists():  # training failed before writing it
    run_dir.write_config(folder, config)
  summary = run_dir.read_json(folder / run_dir.SUMMARY_FILE) or {}
  if summary.get('status') != 'failed' or summary.get('error') != error:
    run_dir.write_json(folder / run_dir.SUMMARY_FILE, {'status': 'failed', 'error': error})


def _varied(variants: Sequence[SweepRun]) -> list[str]:
  """The keys the variants change, then any other key whose value differs between them."""
  first = [key for v in variants for key in v.overrides]
  return config_lib.varied_keys([config_lib.flatten(v.config.to_dict()) for v in variants], first=first)


def _run_groups(
    sweep: ml_collections.ConfigDict, variants: Sequence[SweepRun], workdir: pathlib.Path
) -> list[list[int]]:
  """The runs' indices in the order they train: with vectorize='on', the runs not finished yet that share a
  `group.group_key` and their latest checkpoint step train as groups of at most `max_members`; others alone.
  With 'auto', such a group is kept only where `group.probe` measures that it pays off on this machine."""
  check_choice('vectorize', sweep.vectorize, VECTORIZE)
  if sweep.vectorize == 'off':
    return [[i] for i in range(len(variants))]
  batches, unfinished = [], {}
  for i, v in enumerate(variants):
    if run_dir.holds_completed_run(workdir / v.name, v.config):
      batches.append([i])
    else:
      unfinished.setdefault(run_dir.checkpoint_step(workdir / v.name), []).append(i)
  for indices in unfinished.values():
    groups = group.group_variants([variants[i].config for i in indices], sweep.max_members)
    for members in groups:
      batch = [indices[k] for k in members]
      batches += [batch] if _worth_grouping(sweep, [variants[i] for i in batch]) else [[i] for i in batch]
  return sorted(batches)


def _worth_grouping(sweep: ml_collections.ConfigDict, variants: Sequence[SweepRun]) -> bool:
  """Whether `variants` (one possible group) train as one: always with vectorize='on', measured with 'auto'."""
  if len(variants) == 1 or sweep.vectorize == 'on':
    return True
  measured = group.probe([v.config for v in variants])
  print(f'Probe of {", ".join(v.name for v in variants)}: {measured}', flush=True)
  return measured.pays_off


def _train_group(
    variants: Sequence[SweepRun],
    records: Sequence[dict[str, Any]],
    workdir: pathlib.Path,
    allow_config_change: bool,
    save: Callable[[], None],
) -> None:
  """Trains `variants` as one vectorized group (cifar_jax/training/group.py), each in its own folder as a sequential run
  writes it, and records each member's status; a stop request stops the sweep, as for one run."""
  names = ', '.join(v.name for v in variants)
  print(f'{len(variants)} runs as one vectorized group: {names}', flush=True)
  for record in records:
    record['status'] = 'running'
  save()
  try:
    try:
      summaries = group.Group(
          [v.config for v in variants], [workdir / v.name for v in variants], allow_config_change
      ).run()
    except trainer.Stopped:
      raise
    except UserError as e:  # the group could not start or stopped as a whole: every member failed with it
      summaries = [{'status': 'failed', 'error': str(e)}] * len(variants)
      for v in variants:
        _record_failure(workdir / v.name, v.config, str(e))
    for variant, record, summary in zip(variants, records, summaries):
      if summary['status'] == 'completed':
        record['status'] = 'completed'
        print(f'{variant.name}: completed, {_headline(summary)}', flush=True)
      else:
        record.update(status='failed', error=summary['error'])
        print(f'{variant.name}: FAILED: {summary["error"]}', flush=True)
  finally:
    for record in records:
      if record['status'] == 'running':  # stopped, Ctrl-C or a crash: resumed by the next run of the sweep
        record['status'] = 'interrupted'
    save()


def run_sweep(
    sweep: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    cli_overrides: Sequence[str] = (),
    *,
    command: str | None = None,
    allow_config_change: bool = False,
) -> list[dict[str, Any]]:
  """Runs every variant not finished yet, records each status in sweep.json, writes the report; returns the records."""
  variants = expand(sweep, cli_overrides)
  check_variants(variants, pathlib.Path(workdir), allow_config_change)
  workdir = run_dir.prepare(workdir, needed_bytes=0)
  records = [
      {
          'name': v.name,
          'variant': v.variant,
          'seed': v.seed,
          'config': v.source,
          'overrides': v.overrides,
          'status': 'pending',
      }
      for v in variants
  ]
  state = {
      'command': command,
      'sweep': config_lib.config_as_json(sweep),
      'set': list(cli_overrides),
      'varied': _varied(variants),
      'variants': records,
  }
  sweep_file = workdir / run_dir.SWEEP_FILE
  run_dir.write_json(sweep_file, state)
  size = grid_size(sweep) if sweep.grid else 0
  names = list(dict.fromkeys(v.variant for v in variants))
  drawn = f', drawn at random from a grid of {size:,} points' if len(names) < size else ''
  seeds = f' x {sweep.seeds} seeds = {len(variants)} runs' if sweep.seeds > 1 else ''
  print(f'Sweep of {len(names)} variants{drawn}{seeds} in {workdir}: {", ".join(names)}', flush=True)
  for batch in _run_groups(sweep, variants, workdir):
    if len(batch) > 1:
      _train_group(
          [variants[i] for i in batch],
          [records[i] for i in batch],
          workdir,
          allow_config_change,
          lambda: run_dir.write_json(sweep_file, state),
      )
      continue
    i = batch[0]
    variant, record = variants[i], records[i]
    folder = workdir / variant.name
    prefix = f'[{i + 1}/{len(variants)}] {variant.name}'
    if run_dir.holds_completed_run(folder, variant.config):
      record['status'] = 'completed'
      summary = run_dir.read_json(folder / run_dir.SUMMARY_FILE)
      print(f'{prefix}: finished earlier, skipped ({_headline(summary)})', flush=True)
      continue
    record['status'] = 'running'
    run_dir.write_json(sweep_file, state)
    try:
      summary = trainer.train_and_evaluate(variant.config, folder, allow_config_change=allow_config_change)
    except trainer.Stopped:  # Ctrl-C or SIGTERM during training (checkpointed) stops the sweep, not just the variant
      raise
    except UserError as e:
      record.update(status='failed', error=str(e))
      _record_failure(folder, variant.config, str(e))
      print(f'{prefix}: FAILED: {e}', flush=True)
    else:
      record['status'] = 'completed'
      print(f'{prefix}: completed, {_headline(summary)}', flush=True)
    finally:
      if record['status'] == 'running':  # stopped, Ctrl-C or a crash: resumed by the next run of the sweep
        record['status'] = 'interrupted'
      run_dir.write_json(sweep_file, state)
  paths = report.write_report(workdir)
  failed = [r['name'] for r in records if r['status'] == 'failed']
  print(
      f'{len(records) - len(failed)} of {len(records)} runs completed'
      + (f'; failed: {", ".join(failed)}' if failed else '')
      + f'. Table: {paths[0]}',
      flush=True,
  )
  return records
