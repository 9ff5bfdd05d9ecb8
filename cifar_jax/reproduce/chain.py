"""The reproduce chain: the studies as sweeps, their progress and time estimate, the time box, the docs.

The command and its options: `cifar_jax/reproduce/__main__.py`.
"""

import dataclasses
import pathlib
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections

from cifar_jax import config_lib, devices
from cifar_jax.reproduce import plan, records, results_page
from cifar_jax.study import analysis, expansion, sweep
from cifar_jax.study.text import format_duration, plural
from cifar_jax.training import preemption, run_dir
from cifar_jax.data import cifar10
from cifar_jax.errors import UserError
from cifar_jax.models import MODELS, model_options
from cifar_jax.training.preemption import Stopped
from cifar_jax.reproduce.plan import Options, Study

# A run folder of another config, in reproduce's flags (it has no --allow_config_change: its runs are the plan's).
REPRODUCE_ADVICE = (
    'use another --workdir, or repeat the --quick, --pipeline and --set flags that started it '
    '(--set=steps_per_call and --set=log_every_steps may change)'
)
QUICK_VARIANTS = 2
QUICK_SEEDS = 2
TINY_WIDTH = 4  # the big models' channels in --quick


# ---- The studies as sweeps.


def tiny_model(name: str) -> dict[str, Any]:
  """Model overrides that keep a model's structure at a few channels: what --quick trains."""
  options, defaults = model_options(name), getattr(MODELS[name], 'keywords', {})
  if 'width' in options:  # ResNets: every stage, one block each
    return {'model.width': TINY_WIDTH, 'model.stage_sizes': (1,) * len(defaults['stage_sizes'])}
  if 'stages' in options:  # VGGs: every stage, one conv each
    return {'model.stages': tuple((TINY_WIDTH,) for _ in defaults['stages'])}
  if 'plan' in options:  # UPV nets: every block and pool, a few channels
    return {'model.plan': tuple((kind, n if kind in ('max', 'avg') else TINY_WIDTH) for kind, n in defaults['plan'])}
  return {}  # the MLPs and LeNets are small already


def study_sweep(study: Study, quick: bool = False, vectorize: bool = False) -> ml_collections.ConfigDict:
  """The sweep config that runs `study`: its sweep file, the study's variants and seeds, shrunk for --quick,
  with `vectorize='auto'` when asked (runs that differ only in seed or numbers train as one group)."""
  config = study.sweep_config(vectorize)
  if quick:
    _shrink(config)
    config.seeds = min(study.seeds, QUICK_SEEDS)
  return config


def _shrink(config: ml_collections.ConfigDict) -> None:
  """Keeps the first QUICK_VARIANTS variants of `config`, each with its model at a tiny width."""
  if config.grid:
    config.num_samples = QUICK_VARIANTS
    for key, value in tiny_model(config_lib.load_config_file(config.base).model.name).items():
      group, leaf = key.split('.')  # sweep overrides mirror the run config's groups
      config.overrides[group] = config.overrides.get(group) or ml_collections.ConfigDict()
      config.overrides[group][leaf] = value
    return
  entries = [dict(e) for e in config.variants[:QUICK_VARIANTS]]
  for entry in entries:
    model = config_lib.load_config_file(entry.get('config', config.base)).model.name
    entry['overrides'] = {**config_lib.flatten(entry.get('overrides', {})), **tiny_model(model)}
  config.variants = entries


def expand_study(study: Study, options: Options) -> list[Any]:
  """Every run of `study` (each variant once per seed) with its resolved config."""
  return expansion.expand(study_sweep(study, options.quick, options.vectorize), options.settings())


# ---- Progress and the estimate of the time left.


def expected_steps(config: ml_collections.ConfigDict) -> int:
  """How many train steps a run of `config` takes, from its data size, batch size and epochs."""
  images = cifar10.train_size(config.data.val_fraction, config.data.max_train_examples)
  steps = config.num_epochs * cifar10.steps_per_epoch(images, config.batch_size)
  return steps if config.num_train_steps < 0 else min(steps, config.num_train_steps)


def seconds_per_image(folder: pathlib.Path) -> tuple[str, float] | None:
  """A finished run's device (as its summary names it) and wall time per training image, compilation and evaluation
  included: what a remaining run costs (summary.json's steady_images_per_second leaves them out and would
  underestimate it)."""
  summary, config = run_dir.read_json(folder / run_dir.SUMMARY_FILE), run_dir.read_json(folder / run_dir.CONFIG_FILE)
  if not summary or summary.get('status') != 'completed' or not summary.get('steps') or not config:
    return None
  return summary.get('device') or 'device not recorded', summary['wall_seconds'] / (
      summary['steps'] * config['batch_size']
  )


@dataclasses.dataclass
class StudyProgress:
  """A study's runs: how many finished, how many remain, and the estimated seconds for those it can estimate."""

  study: Study
  total: int
  done: int
  seconds_left: float = 0.0
  unknown: int = 0  # remaining runs with no finished run of their kind to time them by
  basis: int = 0  # finished runs the estimate comes from

  def describe(self) -> str:
    left = self.total - self.done
    if left == 0:
      return 'done'
    parts = []
    if left > self.unknown:
      parts.append(
          f'about {format_duration(self.seconds_left)} for {left - self.unknown} '
          f'(timed by {plural(self.basis, "finished run")})'
      )
    if self.unknown:
      parts.append(f'{self.unknown} unknown until one run of their kind finishes')
    return '; '.join(parts)


def study_progress(study: Study, runs: Sequence[Any], folder: pathlib.Path, device: str | None = None) -> StudyProgress:
  """Done and remaining runs of a study; each remaining run's time from the finished runs of the same variant
  (other seeds), else of the same model in the study, scaled by the images it still has to train on. With
  `device`, only the runs timed on that device count."""
  rates: dict[tuple[str, str], list[float]] = {}
  finished = [run for run in runs if run_dir.holds_completed_run(folder / run.name, run.config)]
  basis = 0
  for run in finished:
    timed = seconds_per_image(folder / run.name)
    if timed is not None and device in (None, timed[0]):
      basis += 1
      rates.setdefault(('variant', run.variant), []).append(timed[1])
      rates.setdefault(('model', run.config.model.name), []).append(timed[1])
  progress = StudyProgress(study, len(runs), len(finished), basis=basis)
  for run in (r for r in runs if r not in finished):
    known = rates.get(('variant', run.variant)) or rates.get(('model', run.config.model.name))
    if not known:
      progress.unknown += 1
      continue
    steps = max(expected_steps(run.config) - (run_dir.checkpoint_step(folder / run.name) or 0), 0)
    progress.seconds_left += statistics.fmean(known) * steps * run.config.batch_size
  return progress


def timed_devices(studies: Sequence[Study], options: Options) -> list[str]:
  """The devices that finished runs of `studies`, as their summaries name them."""
  found = []
  for study in studies:
    for summary in (options.workdir / study.name).rglob(run_dir.SUMMARY_FILE):
      timed = seconds_per_image(summary.parent)
      if timed is not None and timed[0] not in found:
        found.append(timed[0])
  return found


def print_progress(studies: Sequence[Study], options: Options, per_device: bool = False) -> list[StudyProgress]:
  """One line per study, then the totals; with `per_device`, the time left as timed on each device that
  finished runs (an estimate holds only for the device kind that timed it)."""
  expanded = {s.name: expand_study(s, options) for s in studies}
  progress = [study_progress(s, expanded[s.name], options.workdir / s.name) for s in studies]
  width = max(len(s.name) for s in studies)
  print(f'\nProgress in {options.workdir} (this machine: {devices.describe()}):')
  for p in progress:
    print(f'  {p.study.name:<{width}}  {p.done:>3}/{p.total:<3} runs  {p.describe()}')
  done, total = sum(p.done for p in progress), sum(p.total for p in progress)
  unknown, seconds = sum(p.unknown for p in progress), sum(p.seconds_left for p in progress)
  estimate = (
      f'about {format_duration(seconds)} for {total - done - unknown} of them, timed on the devices that ran them'
  )
  print(
      f'Done {done} of {plural(total, "run")}; {total - done} left: {estimate}'
      + (f'; {unknown} not estimated yet (no finished run of their kind)' if unknown else '')
      + '.',
      flush=True,
  )
  if per_device:
    timed = timed_devices(studies, options)
    print(
        'Time left by device (each estimate from the runs that device finished):'
        if timed
        else 'Time left by device: no finished run has timed any device yet.'
    )
    for device in timed:
      mine = [study_progress(s, expanded[s.name], options.workdir / s.name, device) for s in studies]
      left = sum(p.total - p.done - p.unknown for p in mine)
      unknown = sum(p.unknown for p in mine)
      print(
          f'  {device}: about {format_duration(sum(p.seconds_left for p in mine))} for {plural(left, "run")}'
          + (f'; {unknown} not estimated on it' if unknown else '')
      )
  return progress


def record_invocation(folder: pathlib.Path, command: str) -> None:
  """Adds this machine's device and this command to the study's reproduce.json (each once)."""
  folder.mkdir(parents=True, exist_ok=True)
  record = run_dir.read_json(folder / results_page.RECORD_FILE) or {'devices': [], 'commands': []}
  for key, value in (('devices', devices.describe()), ('commands', command)):
    if value not in record[key]:
      record[key].append(value)
  run_dir.write_json(folder / results_page.RECORD_FILE, record)


# ---- The time box.


def deadline_seconds(max_minutes: float | None, margin_seconds: float) -> float | None:
  """Seconds until the stop request: M minutes less the margin, the margin at most a quarter of the box."""
  if max_minutes is None:
    return None
  if max_minutes <= 0:
    raise UserError(f'--max-minutes={max_minutes} must be > 0')
  return 60 * max_minutes - min(margin_seconds, 15 * max_minutes)


# ---- The chain.


def analyse_finished(folder: pathlib.Path, runs: Sequence[Any], data_dir: str | None, box: preemption.TimeBox) -> None:
  """Writes the confusion matrix of every finished run of a study that has none yet, until a stop request."""
  for run in runs:
    if box.requested:
      return
    if (
        run_dir.holds_completed_run(folder / run.name, run.config)
        and not (folder / run.name / analysis.CONFUSION_FILE).exists()
    ):
      try:
        analysis.confusion(folder / run.name, data_dir)
      except UserError as e:  # a damaged checkpoint spoils the analysis, not the chain
        print(f'warning: no confusion matrix for {folder / run.name}: {e}', file=sys.stderr)


def run_chain(studies: Sequence[Study], options: Options) -> preemption.TimeBox:
  """Checks every run config of every study (keys, names, plain numbers), then runs the studies in order until done
  or stopped; returns the time box, which says why it ended."""
  # before any study runs or a folder is made
  plan.check_sweeps([(s.name, study_sweep(s, options.quick, options.vectorize)) for s in studies], options.settings())
  with preemption.TimeBox(deadline_seconds(options.max_minutes, options.margin_seconds)) as box:
    for study in studies:
      if box.requested:
        break
      folder = options.workdir / study.name
      sweep_config = study_sweep(study, options.quick, options.vectorize)
      print(f'\n=== {study.name}: {study.title}', flush=True)
      record_invocation(folder, options.command)
      runs = expansion.expand(sweep_config, options.settings())
      analyse_finished(folder, runs, options.data_dir, box)  # runs finished by a slice that stopped mid-study
      try:
        sweep.run_sweep(sweep_config, folder, options.settings(), command=options.command)
      except run_dir.ConfigChanged as e:
        raise e.advising(REPRODUCE_ADVICE) from e
      except Stopped:
        box.requested = True
        break
      analyse_finished(folder, runs, options.data_dir, box)
  return box


PUBLISHED_PAGE = pathlib.Path('docs/results.md')


def variant_names(study: Study) -> list[str]:
  """The study's variants in the plan's order (the full plan's, whatever --quick or --set say)."""
  return list(dict.fromkeys(run.variant for run in expansion.expand(study_sweep(study))))


def write_docs(page: pathlib.Path, options: Options, sources: dict[str, pathlib.Path]) -> None:
  """Regenerates the page's tables and plots from each study's committed record (`<page folder>/results/<study>/
  rows.json`), after merging into it the runs of its study folder (`sources` replaces some) where they are at
  least as complete; prints what changed. --quick runs never reach the published page."""
  if options.quick and page.resolve() == PUBLISHED_PAGE.resolve():
    raise UserError(f'--quick runs mean nothing and never go into {PUBLISHED_PAGE}: pass --docs=OTHER_PAGE to see them')
  results, names = {}, {}
  for study in plan.STUDIES:
    folder = sources.get(study.name, options.workdir / study.name)
    names[study.name] = variant_names(study)
    record_folder = page.parent / 'results' / study.name
    recorded = records.load(record_folder)
    measured = results_page.measured_entries(study, folder, f'run folders of {portable_path(folder)}')
    entries, changes = records.merge(recorded, measured, names[study.name])
    if entries != recorded:
      records.save(record_folder, study.name, entries)
    total = len(set(names[study.name]) | set(entries))
    print(f'{study.name}: {len(recorded)} of {plural(total, "variant")} measured before, {len(entries)} after')
    for change in changes:
      print(f'  {change}')
    results[study.name] = results_page.study_results(study, entries)
  for path in results_page.write_page(page, results, names):
    print(f'wrote {path}')


def chain_order() -> list[Study]:
  """The studies in the order this machine runs them (`plan.order_for` its platform), those the published
  records already hold in full (measured elsewhere) last."""
  measured = [
      study.name
      for study in plan.STUDIES
      if set(variant_names(study)) <= set(records.load(PUBLISHED_PAGE.parent / 'results' / study.name))
  ]
  return plan.order_for(jax.devices()[0].platform, measured)


def portable_path(path: pathlib.Path) -> str:
  """`path` as it can be published: relative to the current folder where it lies under it, else its last two
  parts (never the absolute path of this machine)."""
  absolute = path.resolve()
  try:
    return absolute.relative_to(pathlib.Path.cwd().resolve()).as_posix()
  except ValueError:
    return '/'.join(absolute.parts[-2:])


def parse_sources(items: Sequence[str]) -> dict[str, pathlib.Path]:
  """`study=folder` pairs of --from, each study checked against the plan."""
  sources = {}
  known = [s.name for s in plan.STUDIES]
  for item in items:
    name, sep, folder = item.partition('=')
    if not sep or name not in known:
      raise UserError(f'--from={item!r} must read STUDY=FOLDER with STUDY one of {", ".join(known)}')
    if not pathlib.Path(folder).is_dir():
      raise UserError(f'--from={item!r}: no such folder {folder}')
    sources[name] = pathlib.Path(folder)
  return sources
