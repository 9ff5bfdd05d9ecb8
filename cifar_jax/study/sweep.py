"""Sweeps as a library: trains the runs of a sweep config (cifar_jax/study/expansion.py reads them) one by one or as
groups, and records them.

The sweep config keys and what a sweep writes are documented in the command, `cifar_jax/sweep.py`.
"""

from collections.abc import Callable, Iterator, Sequence
import contextlib
import dataclasses
import pathlib
import sys
import time
from typing import Any

import ml_collections
import optuna
from optuna.storages.journal import JournalFileOpenLock
from optuna.trial import TrialState

from cifar_jax import config_lib
from cifar_jax.study import expansion, queue, report, workers
from cifar_jax.study.text import format_duration, plural
from cifar_jax.training import group, hyper, preemption, probe, run_book, run_dir, trainer
from cifar_jax.data import cifar10
from cifar_jax.errors import UserError
from cifar_jax.study.expansion import SweepRun, expand, grid_size, grid_values, sampled_run


def check_variants(variants: Sequence[SweepRun], workdir: pathlib.Path, allow_config_change: bool = False) -> None:
  """Checks every variant's config, that a folder already there holds a run of the same config, and, once per
  data setting, that the data is there: a bad input stops the sweep before any run."""
  for variant in variants:
    with expansion.naming_variant(variant.name):
      trainer.check_config(variant.config)
    if (workdir / variant.name).is_dir():  # ConfigChanged names the folder, and the command words its own way out
      run_dir.check_resumable(workdir / variant.name, variant.config, allow_config_change)
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
    run_book.write_failure(folder, error)


def _varied(variants: Sequence[SweepRun]) -> list[str]:
  """The keys the variants change, then any other key whose value differs between them."""
  first = [key for v in variants for key in v.overrides]
  return config_lib.varied_keys([config_lib.flatten(v.config.to_dict()) for v in variants], first=first)


def _run_groups(
    sweep: ml_collections.ConfigDict, variants: Sequence[SweepRun], workdir: pathlib.Path
) -> list[list[int]]:
  """The runs' indices in the order they train: with vectorize='on', the runs not finished yet that share a
  `hyper.group_key` and their latest checkpoint step train as groups of at most `max_members`; others alone.
  With 'auto', such a group is kept only where `probe.probe` estimates that it pays off on this machine for the
  steps the runs have left."""
  if sweep.vectorize == 'off':
    return [[i] for i in range(len(variants))]
  batches, unfinished = [], {}
  for i, v in enumerate(variants):
    if _finished(workdir / v.name, v.config):
      batches.append([i])
    else:
      unfinished.setdefault(run_dir.checkpoint_step(workdir / v.name), []).append(i)
  for start_step, indices in unfinished.items():
    groups = hyper.group_variants([variants[i].config for i in indices], sweep.max_members)
    for members in groups:
      batch = [indices[k] for k in members]
      grouped = _worth_grouping(sweep, [variants[i] for i in batch], start_step or 0)
      batches += [batch] if grouped else [[i] for i in batch]
  return sorted(batches)


def _worth_grouping(sweep: ml_collections.ConfigDict, variants: Sequence[SweepRun], start_step: int) -> bool:
  """Whether `variants` (one possible group, resuming at `start_step`) train as one: always with vectorize='on';
  with 'auto', where the probe estimates the group finishes them sooner than one by one."""
  if len(variants) == 1 or sweep.vectorize == 'on':
    return True
  measured = probe.probe([v.config for v in variants], start_step)
  print(f'Probe of {", ".join(v.name for v in variants)}: {measured}', flush=True)
  return measured.pays_off


@dataclasses.dataclass
class _Sweep:
  """What every worker of one sweep shares: the sweep config, its workdir, its runs and how they are resumed."""

  sweep: ml_collections.ConfigDict
  workdir: pathlib.Path
  cli_overrides: list[str]
  allow_config_change: bool
  variants: list[SweepRun]

  @property
  def sweep_file(self) -> pathlib.Path:
    return self.workdir / run_dir.SWEEP_FILE

  def update(self, indices: Sequence[int], **fields: Any) -> None:
    """Sets `fields` in the sweep.json records of runs `indices`, under a lock that every worker takes."""
    names = {self.variants[i].name for i in indices}
    with self._locked() as state:
      for record in state['variants']:
        if record['name'] in names:
          if 'status' in fields:  # a new status replaces the last one's details
            record.pop('error', None)
            record.pop('pruned_at_epoch', None)
          record.update(fields)

  @contextlib.contextmanager
  def _locked(self) -> Iterator[dict[str, Any]]:
    """sweep.json's content to change, written back when the body ends, under a lock every worker takes."""
    lock = JournalFileOpenLock(str(self.sweep_file))
    lock.acquire()
    try:
      state = run_dir.read_json(self.sweep_file)
      yield state
      run_dir.write_json(self.sweep_file, state)
    finally:
      lock.release()

  def add(self, variant: SweepRun) -> None:
    """Adds a sampled run's record to sweep.json (under the lock), unless another worker did."""
    with self._locked() as state:
      if variant.name not in {r['name'] for r in state['variants']}:
        state['variants'].append(_record_of(variant))


def _finished(folder: pathlib.Path, config: ml_collections.ConfigDict) -> bool:
  """Whether `folder` holds a finished run of `config`: completed, or pruned (a pruner stopped it)."""
  if run_dir.holds_completed_run(folder, config):
    return True
  summary, saved = run_dir.read_json(folder / run_dir.SUMMARY_FILE), run_dir.read_json(folder / run_dir.CONFIG_FILE)
  return bool(
      summary
      and summary.get('status') == 'pruned'
      and saved is not None
      and not run_dir.config_differences(saved, config_lib.config_as_json(config))
  )


def _record(run: _Sweep, i: int, summary: dict[str, Any], prefix: str) -> None:
  """Records how run `i` ended (`summary`) in sweep.json and says it in one line."""
  status = summary['status']
  if status == 'failed':
    print(f'{prefix}: FAILED: {summary["error"]}', flush=True)
    run.update([i], status='failed', error=summary['error'])
  elif status == 'pruned':
    print(f'{prefix}: pruned, {_headline(summary)}', flush=True)
    run.update([i], status='pruned', pruned_at_epoch=summary.get('epochs'))
  else:
    print(f'{prefix}: completed, {_headline(summary)}', flush=True)
    run.update([i], status='completed')


@contextlib.contextmanager
def _interruptible(run: _Sweep, indices: Sequence[int]) -> Iterator[None]:
  """Marks runs `indices` running in sweep.json for the body, and interrupted if it leaves by an exception
  (Ctrl-C, SIGTERM, a crash): the next run of the sweep, or another worker, resumes them."""
  run.update(indices, status='running')
  try:
    yield
  except BaseException:
    run.update(indices, status='interrupted')
    raise


def _train_one(run: _Sweep, i: int, on_epoch: Callable[[int, float | None], bool] | None) -> dict[str, Any]:
  """Trains run `i` unless it is finished (then says so), records it in sweep.json; returns its summary."""
  variant = run.variants[i]
  folder = run.workdir / variant.name
  prefix = f'[{i + 1}/{len(run.variants)}] {variant.name}'
  if _finished(folder, variant.config):
    summary = run_dir.read_json(folder / run_dir.SUMMARY_FILE)
    print(f'{prefix}: finished earlier, skipped ({_headline(summary)})', flush=True)
    run.update([i], status=summary['status'])
    return summary
  hook = {'on_epoch': on_epoch} if on_epoch else {}
  with _interruptible(run, [i]):
    try:
      summary = trainer.train_and_evaluate(variant.config, folder, allow_config_change=run.allow_config_change, **hook)
    except preemption.Stopped:  # Ctrl-C or SIGTERM during training (checkpointed) stops the sweep, not just the variant
      raise
    except UserError as e:
      _record_failure(folder, variant.config, str(e))
      summary = {'status': 'failed', 'error': str(e)}
  _record(run, i, summary, prefix)
  return summary


def _train_group(run: _Sweep, indices: Sequence[int]) -> list[dict[str, Any]]:
  """Trains runs `indices` as one vectorized group (cifar_jax/training/group.py), each in its own folder as a
  sequential run writes it, and records each member; a stop request stops the sweep, as for one run."""
  variants = [run.variants[i] for i in indices]
  print(f'{len(variants)} runs as one vectorized group: {", ".join(v.name for v in variants)}', flush=True)
  with _interruptible(run, indices):
    try:
      summaries = group.Group(
          [v.config for v in variants], [run.workdir / v.name for v in variants], run.allow_config_change
      ).run()
    except preemption.Stopped:
      raise
    except UserError as e:  # the group could not start or stopped as a whole: every member failed with it
      summaries = [{'status': 'failed', 'error': str(e)}] * len(variants)
      for v in variants:
        _record_failure(run.workdir / v.name, v.config, str(e))
  for i, variant, summary in zip(indices, variants, summaries):
    _record(run, i, summary, variant.name)
  return summaries


def _unit_key(run: _Sweep, indices: Sequence[int]) -> str:
  """A unit of work's name in the queue: its runs' folders."""
  return ','.join(run.variants[i].name for i in indices)


def _value(summaries: Sequence[dict[str, Any]]) -> float | None:
  """A trial's value: the mean final validation accuracy (test accuracy without a split) of its completed runs."""
  values = [
      s['val_accuracy'] if s.get('val_accuracy') is not None else s.get('test_accuracy')
      for s in summaries
      if s['status'] == 'completed'
  ]
  values = [v for v in values if v is not None]
  return sum(values) / len(values) if values else None


def _record_of(variant: SweepRun) -> dict[str, Any]:
  """A run's sweep.json record before it ran."""
  return {
      'name': variant.name,
      'variant': variant.variant,
      'seed': variant.seed,
      'config': variant.source,
      'overrides': variant.overrides,
      'status': 'pending',
  }


def _sample(run: _Sweep, study: optuna.Study) -> optuna.Trial | None:
  """A new trial at a grid point the sampler (TPE) chooses, while the search has fewer than num_samples points;
  its run joins the sweep. None when the budget is spent (points sampled at once by two workers beyond it fail)."""
  if run.sweep.search != 'tpe' or queue.sampled(study) >= run.sweep.num_samples:
    return None
  trial = queue.ask(study)
  if queue.sampled(study, before=trial.number) >= run.sweep.num_samples:
    queue.finish(study, trial, TrialState.FAIL, None, skipped='over the search budget')
    return None
  point = {key: trial.suggest_categorical(key, list(values)) for key, values in grid_values(run.sweep).items()}
  variant = sampled_run(run.sweep, point, run.cli_overrides)
  trial.set_user_attr(queue.UNIT, variant.name)
  trial.set_user_attr(queue.POINT, point)
  return trial


def _indices(run: _Sweep, units: dict[str, list[int]], trial: optuna.Trial) -> list[int] | None:
  """The runs of the trial's unit: an enqueued unit's, or the sampled point's (added to the sweep if new)."""
  point = trial.user_attrs.get(queue.POINT)
  if point is None:
    return units.get(queue.unit_of(trial))
  variant = sampled_run(run.sweep, point, run.cli_overrides)
  names = [v.name for v in run.variants]
  if variant.name not in names:
    run.variants.append(variant)
    run.add(variant)
    names.append(variant.name)
  return [names.index(variant.name)]


def _pruning_hook(run: _Sweep, study: optuna.Study, trial: optuna.Trial) -> Callable[[int, float | None], bool] | None:
  """Reports each epoch's validation accuracy to the trial; True when the study's pruner stops the run."""
  if run.sweep.pruner == 'none':
    return None

  def on_epoch(epoch: int, val_accuracy: float | None) -> bool:
    if val_accuracy is None:
      return False
    trial.report(val_accuracy, epoch)
    return trial.should_prune()

  return on_epoch


def _work(run: _Sweep, study: optuna.Study, units: dict[str, list[int]]) -> None:
  """One worker: takes the next waiting unit of the queue (or samples a point, for a search) and trains it, until
  none waits and none runs (a unit another worker holds may come back to the queue if that worker dies)."""
  poll = min(1.0, run.sweep.heartbeat)
  while True:
    trial = queue.take(study) or _sample(run, study)
    if trial is None:
      if not queue.busy(study):
        return
      time.sleep(poll)
      continue
    indices = _indices(run, units, trial)
    if indices is None or queue.is_duplicate(study, trial):  # another config's unit, or enqueued twice
      queue.finish(study, trial, TrialState.FAIL, None, skipped='duplicate' if indices else 'not in this sweep')
      continue
    with queue.alive(study, trial):
      try:
        if len(indices) > 1:
          summaries = _train_group(run, indices)
        else:
          summaries = [_train_one(run, indices[0], _pruning_hook(run, study, trial))]
      except (preemption.Stopped, KeyboardInterrupt):
        queue.requeue(study, trial)
        raise
    value = _value(summaries)
    state = TrialState.COMPLETE if value is not None else TrialState.FAIL
    if len(summaries) == 1 and summaries[0]['status'] == 'pruned':
      state = TrialState.PRUNED
    queue.finish(study, trial, state, value)


def _study_name(sweep: ml_collections.ConfigDict, workdir: pathlib.Path) -> str:
  """The Optuna study of the sweep: `study` when set, else the workdir's name."""
  return sweep.study or f'sweep-{workdir.resolve().name}'


def _open(run: _Sweep, worker: int = 0) -> optuna.Study:
  """The sweep's study with its sampler (TPE seeded by the sweep's seed and the worker) and pruner."""
  sweep = run.sweep
  sampler = optuna.samplers.TPESampler(seed=sweep.seed + worker) if sweep.search == 'tpe' else None
  pruner = {
      'none': optuna.pruners.NopPruner,
      'median': lambda: optuna.pruners.MedianPruner(n_startup_trials=sweep.pruner_startup_trials),
      'hyperband': lambda: optuna.pruners.HyperbandPruner(min_resource=1),
  }[sweep.pruner]()
  return queue.open_study(run.workdir, sweep.storage, _study_name(sweep, run.workdir), sweep.heartbeat, sampler, pruner)


def _runs(sweep: ml_collections.ConfigDict, cli_overrides: Sequence[str], workdir: pathlib.Path) -> list[SweepRun]:
  """The sweep's runs: expanded, or for a search those it sampled so far (sweep.json lists them)."""
  if sweep.search != 'tpe':
    return expand(sweep, cli_overrides)
  earlier = (run_dir.read_json(workdir / run_dir.SWEEP_FILE) or {}).get('variants', [])
  return [sampled_run(sweep, r['overrides'], cli_overrides) for r in earlier]


def worker_main(
    sweep: dict[str, Any],
    workdir: str,
    cli_overrides: list[str],
    allow_config_change: bool,
    units: dict[str, list[int]],
    index: int,
) -> int:
  """A worker process of `run_sweep` (cifar_jax/study/workers.py starts it): trains units until the queue is
  empty; returns its exit status (0, or 130 / 143 when stopped by Ctrl-C / SIGTERM)."""
  config = ml_collections.ConfigDict(sweep)
  path = pathlib.Path(workdir)
  run = _Sweep(config, path, cli_overrides, allow_config_change, _runs(config, cli_overrides, path))
  try:
    _work(run, _open(run, index), units)
  except preemption.Stopped as e:
    print(f'worker {index}: {e}', file=sys.stderr, flush=True)
    return e.exit_status
  except KeyboardInterrupt:
    return 130
  return 0


def _start_records(run: _Sweep, command: str | None) -> None:
  """Writes sweep.json: the command, the sweep, and a record per run, keeping the status another worker of the
  same sweep already recorded (finished runs say so from their folders)."""
  earlier = {r['name']: r for r in (run_dir.read_json(run.sweep_file) or {}).get('variants', [])}
  records = []
  for v in run.variants:
    record = _record_of(v)
    before = earlier.get(v.name, {})
    if before.get('config') == v.source and before.get('overrides') == v.overrides:
      record |= {k: before[k] for k in ('status', 'error', 'pruned_at_epoch') if k in before}
    records.append(record)
  state = {
      'command': command,
      'sweep': config_lib.config_as_json(run.sweep),
      'set': list(run.cli_overrides),
      'varied': list(grid_values(run.sweep)) if run.sweep.search == 'tpe' else _varied(run.variants),
      'variants': records,
  }
  run_dir.write_json(run.sweep_file, state)


def _announce(run: _Sweep, count: int) -> None:
  """Says what the sweep runs, in one line."""
  sweep, variants = run.sweep, run.variants
  size = grid_size(sweep) if sweep.grid else 0
  by = f' by {count} workers' if count > 1 else ''
  if sweep.search == 'tpe':
    pruned = f', pruned by the {sweep.pruner} pruner' if sweep.pruner != 'none' else ''
    print(f'TPE search of {sweep.num_samples} points of a grid of {size:,}{pruned}{by} in {run.workdir}', flush=True)
    return
  names = list(dict.fromkeys(v.variant for v in variants))
  drawn = f', drawn at random from a grid of {size:,} points' if len(names) < size else ''
  seeds = f' x {sweep.seeds} seeds = {len(variants)} runs' if sweep.seeds > 1 else ''
  pruned = f', pruned by the {sweep.pruner} pruner' if sweep.pruner != 'none' else ''
  print(
      f'Sweep of {plural(len(names), "variant")}{drawn}{seeds}{pruned}{by} in {run.workdir}: {", ".join(names)}',
      flush=True,
  )


def run_sweep(
    sweep: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    cli_overrides: Sequence[str] = (),
    *,
    command: str | None = None,
    allow_config_change: bool = False,
) -> list[dict[str, Any]]:
  """Runs every variant not finished yet with `workers` processes taking units from the sweep's Optuna queue
  (or sampling points, for a search), records each status in sweep.json, writes the report; returns the records."""
  count = workers.worker_count(sweep.workers)
  check_variants(expansion.runs_to_check(sweep, cli_overrides), pathlib.Path(workdir), allow_config_change)
  if sweep.storage:  # a database: refused before the workdir is made
    queue.open_study(pathlib.Path(workdir), sweep.storage, _study_name(sweep, pathlib.Path(workdir)), sweep.heartbeat)
  workdir = run_dir.prepare(workdir, needed_bytes=0)
  run = _Sweep(sweep, workdir, list(cli_overrides), allow_config_change, _runs(sweep, cli_overrides, workdir))
  study = _open(run)
  _start_records(run, command)
  _announce(run, count)
  units = {}
  if sweep.search != 'tpe':
    units = {_unit_key(run, batch): batch for batch in _run_groups(sweep, run.variants, workdir)}
    queue.enqueue_missing(study, list(units))
  if count == 1:
    _work(run, study, units)
  else:
    args = (sweep.to_dict(), str(workdir), list(cli_overrides), allow_config_change, units)
    codes = workers.run(count, worker_main, args)
    stopped = [code for code in codes if code in (130, 143)]
    if stopped:
      name = 'SIGINT' if 130 in stopped else 'SIGTERM'
      raise preemption.Stopped(f'{name} received: the workers checkpointed; run the same command again to resume', name)
    for index, code in enumerate(codes):
      if code:
        print(f'worker {index} exited with status {code}; its unit went back to the queue', flush=True)
  records = run_dir.read_json(run.sweep_file)['variants']
  paths = report.write_report(workdir)
  failed = [r['name'] for r in records if r['status'] == 'failed']
  pruned = [r['name'] for r in records if r['status'] == 'pruned']
  print(
      f'{len(records) - len(failed) - len(pruned)} of {plural(len(records), "run")} completed'
      + (f', {len(pruned)} pruned' if pruned else '')
      + (f'; failed: {", ".join(failed)}' if failed else '')
      + f'. Table: {paths[0]}',
      flush=True,
  )
  return records
