"""Study tables and plots from a folder of runs: results.md, results.csv, aggregates.csv and three PNGs.

The command, its usage and what it writes: `cifar_jax/report.py`.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
import csv
import dataclasses
import json
import math
import pathlib
from typing import Any

import matplotlib.ticker
import numpy as np

from cifar_jax import config_lib, plotting
from cifar_jax.plotting import plt
from cifar_jax.study import aggregate, stats
from cifar_jax.study.text import format_duration, plural
from cifar_jax.training import run_dir
from cifar_jax.errors import UserError

TABLE_FILES = ('results.md', 'results.csv', 'aggregates.csv')
PLOT_FILES = ('accuracy_by_variant.png', 'val_accuracy.png', 'best_variant_loss.png')


def _percent(value: float) -> str:
  return f'{100 * value:.2f}'


# (summary key, Markdown header, Markdown format) of the result columns, in table order.
METRICS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ('val_accuracy', 'val acc %', _percent),
    ('train_accuracy', 'train acc %', _percent),
    ('test_accuracy', 'test acc %', _percent),
    ('val_loss', 'val loss', '{:.4f}'.format),
    ('train_loss', 'train loss', '{:.4f}'.format),
    ('test_loss', 'test loss', '{:.4f}'.format),
    ('best_val_accuracy', 'best val acc %', _percent),
    ('best_epoch', 'best epoch', str),
    ('params', 'params', '{:,}'.format),
    ('epochs', 'epochs', str),
    ('wall_seconds', 'wall time', format_duration),
    ('steady_images_per_second', 'steady img/s (compilation left out)', '{:,.0f}'.format),
)
_HEADERS = {key: header for key, header, _ in METRICS}
# What the steady img/s column counts (summary.json's steady_images_per_second; runs written before it was
# defined have none and show an empty cell).
STEADY_NOTE = (
    'steady img/s counts the training steps after the first of each stretch of training (the first waits for '
    'compilation), over their time, every stretch of a resumed run included.'
)


def format_value(value: Any) -> str:
  """A config value as a table cell: tuples in parentheses, numbers in their shortest form."""
  if isinstance(value, (tuple, list)):
    return '(' + ', '.join(map(format_value, value)) + ')'
  if isinstance(value, float):
    return f'{value:g}'
  return '' if value is None else str(value)


@dataclasses.dataclass
class Run:
  """One run folder: its name, flat config, results (summary.json, or the latest metrics while unfinished)."""

  name: str
  config: dict[str, Any]
  results: dict[str, Any]
  records: list[dict[str, Any]]

  @property
  def status(self) -> str:
    """completed, pruned (a sweep's pruner stopped it early) or failed, from summary.json; incomplete while it
    has none."""
    return self.results.get('status', 'incomplete')

  def curve(self, kind: str, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of `key`: each epoch's step-weighted mean for train, per epoch for val, the end for test."""
    if kind != 'train':
      end = max((r.get('epoch', 0) for r in self.records), default=0)
      points = [(r.get('epoch', end), r[key]) for r in self.records if r['kind'] == kind]
      return [epoch for epoch, _ in points], [value for _, value in points]
    sums, last_step = {}, 0
    for record in (r for r in self.records if r['kind'] == 'train'):
      steps = record['step'] - last_step
      total, count = sums.get(record['epoch'], (0.0, 0))
      sums[record['epoch']] = (total + record[key] * steps, count + steps)
      last_step = record['step']
    return list(sums), [total / max(count, 1) for total, count in sums.values()]


def _latest(records: list[dict[str, Any]]) -> dict[str, Any]:
  """The newest train and validation numbers of a run that has no summary yet."""
  latest = {}
  for record in records:
    if record['kind'] in ('train', 'val'):
      latest |= {f'{record["kind"]}_{k}': record[k] for k in ('loss', 'accuracy')}
      if record['kind'] == 'val':
        latest['epochs'] = record['epoch']
  return latest


def _load_run(folder: pathlib.Path, name: str) -> Run | None:
  """The run in `folder`, or None when it holds neither a config.json nor a summary.json."""
  config, summary = run_dir.read_json(folder / run_dir.CONFIG_FILE), run_dir.read_json(folder / run_dir.SUMMARY_FILE)
  if config is None and summary is None:
    return None
  records = run_dir.read_metrics(folder)
  return Run(name, config_lib.flatten(config or {}), summary or _latest(records), records)


def load_runs(workdir: pathlib.Path) -> list[Run]:
  """The runs of `workdir`: those its sweep.json lists (the sweep that ran there last), else every run folder
  by name: its subfolders, and their subfolders (a sweep's `variant/seed=K`).

  The list keeps runs of an earlier, different sweep out of the study: a single-seed run in `variant/` is not
  counted again beside the `variant/seed=K` runs of a seeded sweep of the same folder."""
  listed = (run_dir.read_json(workdir / run_dir.SWEEP_FILE) or {}).get('variants')
  if listed:
    return [run for run in (_load_run(workdir / r['name'], r['name']) for r in listed) if run is not None]
  runs = []
  for folder in sorted(p for p in workdir.iterdir() if p.is_dir()):
    nested = [_load_run(sub, f'{folder.name}/{sub.name}') for sub in sorted(folder.iterdir()) if sub.is_dir()]
    runs += [run for run in (_load_run(folder, folder.name), *nested) if run is not None]
  return runs


def sort_runs(runs: Sequence[Run]) -> list[Run]:
  """Completed runs best first, then unfinished ones, then failed ones."""
  metric = aggregate.ranking_metric(runs)
  group = {'completed': 0, 'pruned': 1, 'incomplete': 2}

  def key(run: Run) -> tuple[Any, ...]:
    value = run.results.get(metric)
    return group.get(run.status, 2), value is None, -(value or 0.0), run.name

  return sorted(runs, key=key)


def _status_cell(run: Run) -> str:
  error = run.results.get('error')
  if run.status == 'pruned':
    return f'pruned at epoch {run.results.get("epochs")}'
  return f'{run.status}: {error}' if error else run.status


def _measured_share(runs: Sequence[Run], variants: Sequence[aggregate.Variant]) -> str:
  """`2 of 4 variants have a completed run; the others are not part of this conclusion. ` when some have none."""
  total = len({aggregate.variant_of(run.name) for run in runs})
  if len(variants) >= total:
    return ''
  return f'{len(variants)} of {plural(total, "variant")} have a completed run; the others are not part of this conclusion. '


def _variant_cell(variant: aggregate.Variant, key: str) -> str:
  """mean ± std [95 % t interval] († too few runs) (bootstrap interval) over seeds; with one run its value, ± its
  binomial SE for an accuracy."""
  spread = variant.spreads.get(key)
  if spread is None:
    return ''
  scale, digits = (100, 2) if key in aggregate.ACCURACY_METRICS else (1, 4)
  number = lambda value: f'{scale * value:.{digits}f}'  # noqa: E731
  if spread.n > 1:
    flag = ' †' if spread.too_few else ''
    return (
        f'{number(spread.mean)} ± {number(spread.std)} [{number(spread.low)}, {number(spread.high)}]{flag} '
        f'(bootstrap [{number(spread.boot_low)}, {number(spread.boot_high)}])'
    )
  se = variant.binomial_se(key)
  return number(spread.mean) + (f' ± {number(se)}' if se is not None else '')


def _tests_used(variants: Sequence[aggregate.Variant], metric: str) -> str:
  """The sentence that names the tests behind the 'vs best' column."""
  tests = {v.versus_best.test for v in variants if v.versus_best is not None}
  split = 'validation' if metric == 'val_accuracy' else 'test'
  said = []
  if 'paired t' in tests:
    said.append('the paired t-test over the seeds both ran (same seed: same initialization and data order)')
  if 'Welch t' in tests:
    said.append("Welch's t-test over seeds")
  if 'two-proportion z' in tests:
    said.append(
        f'the two-proportion z-test on the {split} images (it treats the two accuracies as independent; '
        'measured on the same images they are correlated, so it is conservative)'
    )
  if not said:
    return ''
  tested = sum(v.versus_best is not None for v in variants)
  return (
      f"'vs best': {' and '.join(said)} on the {aggregate.METRIC_LABELS[metric]}, two-sided, "
      f"α = {stats.ALPHA:g} after Holm's correction across the {plural(tested, 'variant')} tested against the best "
      '(Holm p); a difference is the best minus the variant ± the half-width of its 95 % interval. '
      'P(best > it) is the chance that a run of the best beats a run of the variant (over every pair of their '
      'runs, ties half); where a difference is not significant, the seeds per variant that would detect it with '
      f'probability {stats.POWER:g} at α = {stats.ALPHA:g} given the measured spread (t-test power, noncentral t).'
  )


def _examples_sentence(runs: Sequence[Run], variants: Sequence[aggregate.Variant]) -> str:
  """The evaluation set sizes, and whether every run saw the same validation images."""
  sizes = {split: {v.examples[split] for v in variants} for split in aggregate.EXAMPLES_KEYS}
  if any(None in values or len(values) != 1 for values in sizes.values()):
    return 'Evaluation set sizes: not recorded by every run (summary.json predates them), or not the same.'
  val, test = (sizes[split].pop() for split in ('val', 'test'))
  sentence = (
      f'Evaluation sets: {val:,} validation images, {test:,} test images.'
      if val
      else (f'Evaluation set: {test:,} test images (no validation split).')
  )
  split_seeds = {r.config.get('data.split_seed') for r in runs}
  if val and len(split_seeds) == 1 and None not in split_seeds:
    sentence += (
        f' Every run is measured on the same validation images (data.split_seed={split_seeds.pop()}, '
        'apart from the run seed).'
    )
  return sentence


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
  """A Markdown table's lines, with `|` in cells escaped."""
  return [
      '| ' + ' | '.join(header) + ' |',
      '|' + '---|' * len(header),
      *('| ' + ' | '.join(cell.replace('|', '\\|') for cell in row) + ' |' for row in rows),
  ]


def _variant_table(variants: Sequence[aggregate.Variant], keys: Sequence[str]) -> list[str]:
  """The per-variant Markdown table: config keys, n, each metric's cell, and the verdict against the best."""
  metrics = [key for key, _ in aggregate.METRICS if any(key in v.spreads for v in variants)]
  header = ['variant', *keys, 'n', *(_HEADERS[key] for key in metrics), 'vs best']
  return _table(
      header,
      (
          [
              variant.name,
              *(format_value(variant.config.get(k)) for k in keys),
              str(variant.n),
              *(_variant_cell(variant, key) for key in metrics),
              aggregate.verdict(variant),
          ]
          for variant in variants
      ),
  )


def _run_table(runs: Sequence[Run], keys: Sequence[str]) -> list[str]:
  """The per-run Markdown table: every metric of every run, failed ones with their reason."""
  metrics = [m for m in METRICS if any(run.results.get(m[0]) is not None for run in runs)]  # no empty columns
  header = ['name', *keys, *(h for _, h, _ in metrics), 'status']
  return _table(
      header,
      (
          [
              run.name,
              *(format_value(run.config.get(k)) for k in keys),
              *('' if run.results.get(k) is None else fmt(run.results[k]) for k, _, fmt in metrics),
              _status_cell(run),
          ]
          for run in runs
      ),
  )


def _markdown(
    study: str, runs: list[Run], variants: list[aggregate.Variant], keys: list[str], sweep: dict[str, Any] | None
) -> str:
  """The Markdown page: how it was made, the per-variant table and conclusion, the per-run table, the plots."""
  metric = aggregate.ranking_metric(runs)
  counts = [v.n for v in variants]
  seeds = (
      f' ({plural(len(variants), "variant")}, n = {_span(counts)} completed run{"s" if max(counts) > 1 else ""} each)'
      if counts
      else ''
  )
  made = [f'Made by `python -m cifar_jax.report` from the {len(runs)} run folders beside this file{seeds}.']
  if sweep and sweep.get('command'):
    made.append(f'The runs come from `{sweep["command"]}`.')
  made.append(_examples_sentence(runs, variants))
  multi = any(v.n > 1 for v in variants)
  cells = (
      'each cell is the mean ± std over the n seeds, with the 95 % Student t interval of the mean in brackets '
      '(cut to 0–100 % for accuracies) and the 95 % percentile bootstrap interval of the mean beside it; '
      f'† marks too few runs to conclude from (n < {stats.MIN_RUNS}, or a t interval that reached past 0 or 100 %)'
      if multi
      else 'with one run per variant, each accuracy is shown ± its binomial standard error '
      'sqrt(p(1-p)/n) on the evaluation set'
  )
  keys = [k for k in keys if k != 'seed']
  lines = [
      f'# Results: {study}',
      '',
      ' '.join(made),
      '',
      '## Variants',
      '',
      f'Sorted by mean {aggregate.METRIC_LABELS[metric]}; accuracies in %, losses are mean cross-entropy; '
      f'{cells}. {_tests_used(variants, metric)}',
      '',
      *_variant_table(variants, keys),
      '',
      f'**Conclusion.** {_measured_share(runs, variants)}{aggregate.conclusion(variants, metric)}',
      '',
      '## Runs',
      '',
      f'One row per run, sorted by {aggregate.METRIC_LABELS[metric]}; wall time is h:mm:ss, compilation and '
      f'evaluations included; {STEADY_NOTE}',
      '',
      *_run_table(runs, [*keys, 'seed'] if multi else keys),
      '',
      f'![{_TITLES[0]}](accuracy_by_variant.png)',
      '',
      f'![{_TITLES[1]}](val_accuracy.png)',
      '',
      f'![{_TITLES[2]}](best_variant_loss.png)',
      '',
  ]
  return '\n'.join(lines)


_TITLES = ('Final accuracy by variant', 'Validation accuracy per epoch', 'Loss of the best variant')


def _write_csv(path: pathlib.Path, runs: list[Run], keys: list[str]) -> None:
  """One row per run with raw numbers (accuracies as fractions, wall time in seconds) for other tools."""
  keys = [*keys, *(['seed'] if 'seed' not in keys else [])]
  with path.open('w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(
        ['name', 'variant', *keys, *(k for k, _, _ in METRICS), *aggregate.EXAMPLES_KEYS.values(), 'status', 'error']
    )
    for run in runs:
      writer.writerow(
          [
              run.name,
              aggregate.variant_of(run.name),
              *(format_value(run.config.get(k)) for k in keys),
              *('' if run.results.get(k) is None else run.results[k] for k, _, _ in METRICS),
              *(run.results.get(k, '') for k in aggregate.EXAMPLES_KEYS.values()),
              run.status,
              run.results.get('error', ''),
          ]
      )


def _blank_nan(value: float | None) -> float | str:
  """A number for the CSV, empty where it is undefined."""
  return '' if value is None or math.isnan(value) else value


def write_aggregates(path: pathlib.Path, variants: Sequence[aggregate.Variant], keys: Sequence[str]) -> None:
  """One row per variant: n, each metric's mean, std and 95 % interval (and an accuracy's binomial SE), the
  evaluation set sizes and the comparison with the best."""
  keys = [k for k in keys if k != 'seed']
  columns = []
  parts = ('mean', 'std', 'ci95_low', 'ci95_high', 'ci95_clipped', 'bootstrap95_low', 'bootstrap95_high')
  for key, split in aggregate.METRICS:
    columns += [f'{key}_{part}' for part in parts]
    columns += [f'{key}_binomial_se'] if split else []
  comparison = [
      'vs_best_test',
      'vs_best_difference',
      'vs_best_ci95_half_width',
      'vs_best_statistic',
      'vs_best_p_value',
      'vs_best_p_holm',
      'vs_best_significant',
      'vs_best_p_superiority',
      'vs_best_seeds_to_detect',
      'vs_best',
  ]
  with path.open('w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['variant', *keys, 'n', *columns, *aggregate.EXAMPLES_KEYS.values(), *comparison])
    for variant in variants:
      row = [variant.name, *(format_value(variant.config.get(k)) for k in keys), variant.n]
      for key, split in aggregate.METRICS:
        spread = variant.spreads.get(key)
        numbers = dataclasses.astuple(spread)[1:] if spread else ()  # mean, std, low, high, clipped, bootstrap
        row += [_blank_nan(x) for x in numbers] if spread else [''] * len(parts)
        row += [_blank_nan(variant.binomial_se(key))] if split else []
      row += [_blank_nan(variant.examples.get(split)) for split in aggregate.EXAMPLES_KEYS]
      d = variant.versus_best
      row += (
          [d.test, d.difference, d.half_width, d.statistic, d.p_value, d.p_adjusted, d.significant()] if d else [''] * 7
      )
      row += [_blank_nan(variant.superiority), _blank_nan(variant.seeds_to_detect)]
      writer.writerow([*row, aggregate.verdict(variant)])


def _style(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)


def _epoch_axis(ax: plt.Axes) -> None:
  """Epochs from 0 with whole-number ticks."""
  ax.set_xlim(left=0)
  ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def _legend_outside(ax: plt.Axes, title: str | None = None) -> None:
  """A legend to the right of the axes, so it never covers a curve."""
  ax.legend(
      loc='upper left',
      bbox_to_anchor=(1.02, 1.0),
      borderaxespad=0.0,
      fontsize='small',
      frameon=False,
      title=title,
      title_fontsize='small',
      alignment='left',
  )


def _span(counts: Sequence[int]) -> str:
  """'5' when every variant has 5 runs, '3–5' when they have 3 to 5."""
  low, high = min(counts), max(counts)
  return str(low) if low == high else f'{low}–{high}'


def _n_label(counts: Sequence[int]) -> str:
  """'n=5 seeds per variant', 'n=3–5 seeds per variant' or 'one run per variant' for the titles."""
  return f'n={_span(counts)} seeds per variant' if counts and max(counts) > 1 else 'one run per variant'


def _mean_curve(runs: Sequence[Run], kind: str, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
  """(epochs, mean, std over runs (nan where one run), most runs at an epoch) of `key` per epoch."""
  by_epoch: dict[int, list[float]] = {}
  for run in runs:
    for epoch, value in zip(*run.curve(kind, key)):
      by_epoch.setdefault(epoch, []).append(value)
  epochs = np.array(sorted(by_epoch))
  values = [np.array(by_epoch[e]) for e in epochs]
  mean = np.array([v.mean() for v in values])
  std = np.array([v.std(ddof=1) if len(v) > 1 else np.nan for v in values])
  return epochs, mean, std, max((len(v) for v in values), default=0)


def _pruned_note(runs: Sequence[Run]) -> str:
  """' (pruned at epoch 3)' for a variant whose runs a sweep's pruner stopped, '' otherwise."""
  epochs = sorted({str(r.results.get('epochs')) for r in runs if r.status == 'pruned'})
  return f' (pruned at epoch {", ".join(epochs)})' if epochs else ''


def _plot_accuracy_curves(path: pathlib.Path, study: str, groups: Mapping[str, Sequence[Run]]) -> None:
  """Validation accuracy per epoch of every variant, its mean with a ± std band over seeds (training accuracy
  when no run has a validation split)."""
  kind = 'val' if any(r.curve('val', 'accuracy')[0] for runs in groups.values() for r in runs) else 'train'
  fig, ax = plt.subplots(figsize=(8, 4.8))
  colors = plt.get_cmap('tab10').colors
  plotted, counts = [], []
  for i, (name, runs) in enumerate(groups.items()):
    epochs, mean, std, n = _mean_curve(runs, kind, 'accuracy')
    if not len(epochs):
      continue
    color = colors[i % len(colors)]
    ax.plot(
        epochs,
        100 * mean,
        color=color,
        linestyle=('-', '--', ':', '-.')[i // len(colors) % 4],
        marker='.' if len(epochs) <= 30 else None,
        label=(name if n == 1 else f'{name} (n={n})') + _pruned_note(runs),
    )
    if _pruned_note(runs):  # where the pruner stopped it
      ax.plot(epochs[-1:], 100 * mean[-1:], 'x', color=color, markersize=9)
    if n > 1:
      ax.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), color=color, alpha=0.15, linewidth=0)
    plotted.append(name)
    counts.append(n)
  band = ', mean ± std' if max(counts, default=1) > 1 else ''
  what = 'validation accuracy' if kind == 'val' else 'training accuracy (no run has a validation split)'
  pruned = any(r.status == 'pruned' for runs in groups.values() for r in runs)
  title = f'{study}: {what} per epoch{band}\n{_n_label(counts)}' + (', x: pruned there' if pruned else '')
  _style(ax, title, 'epoch', 'accuracy (%)')
  _epoch_axis(ax)
  if plotted:
    _legend_outside(ax, 'variants, best first')
  plotting.save(fig, path, title=title, names=plotted)


def _plot_best_variant_loss(path: pathlib.Path, study: str, name: str | None, runs: Sequence[Run]) -> None:
  """Training against validation loss per epoch of the best variant (mean ± std over seeds) and its test loss."""
  fig, ax = plt.subplots(figsize=(8, 4.8))
  n = 0
  for kind, label, style in (('train', 'training', 'o-'), ('val', 'validation', 'o-'), ('test', 'test (final)', 's')):
    epochs, mean, std, count = _mean_curve(runs, kind, 'loss')
    n = max(n, count)
    if len(epochs):
      (line,) = ax.plot(epochs, mean, style, markersize=4, label=label)
      if count > 1:
        ax.errorbar(epochs, mean, yerr=std, fmt='none', color=line.get_color(), capsize=3) if kind == 'test' else (
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15, linewidth=0)
        )
  spread = ', mean ± std' if n > 1 else ''
  title = (
      f'{study}: training and validation loss of the best variant{spread}\n{name}, {_n_label([n])}'
      if name
      else f'{study}: no finished run to plot'
  )
  _style(ax, title, 'epoch', 'cross-entropy loss')
  _epoch_axis(ax)
  if name:
    _legend_outside(ax)
  plotting.save(fig, path, title=title, names=[name] if name else [])


def _plot_accuracy_by_variant(path: pathlib.Path, study: str, variants: Sequence[aggregate.Variant]) -> None:
  """Final validation and test accuracy per variant, best at the top: each run as a dot, the mean as a point
  with its 95 % interval (aggregate.Variant.interval: t over seeds, or Wilson with one run), on an axis zoomed
  to the data."""
  shown = [
      (key, label)
      for key, label in (('val_accuracy', 'validation'), ('test_accuracy', 'test'))
      if any(key in v.spreads for v in variants)
  ]
  fig, ax = plt.subplots(figsize=(8, 1.4 + 0.5 * max(len(variants), 1)))
  offset = 0.36 / max(len(shown), 1)
  for j, (key, label) in enumerate(shown):
    color = plt.get_cmap('tab10').colors[j]
    for i, variant in enumerate(variants):
      spread, y = variant.spreads.get(key), i + offset * (j - (len(shown) - 1) / 2)
      if spread is None:
        continue
      ax.plot([100 * x for x in variant.values(key)], [y] * spread.n, '.', color=color, alpha=0.35, markersize=5)
      low, high = variant.interval(key) or (spread.mean, spread.mean)
      ax.errorbar(
          100 * spread.mean,
          y,
          xerr=[[100 * (spread.mean - low)], [100 * (high - spread.mean)]],
          fmt='o',
          color=color,
          capsize=4,
          label=label if i == 0 else None,
      )
  ax.set_yticks(range(len(variants)), [v.name for v in variants])
  ax.set_ylim(len(variants) - 0.5, -0.5)  # best at the top
  counts = [v.n for v in variants]
  interval = 'each run with its 95 % Wilson interval'
  if max(counts, default=1) > 1:
    interval = 'mean and 95 % t interval over seeds' + (' (Wilson interval for one run)' if min(counts) == 1 else '')
  title = f'{study}: final accuracy by variant\n{interval}, {_n_label(counts)}'
  _style(ax, title, 'accuracy (%)', '')
  if variants:
    _legend_outside(ax)
  plotting.save(fig, path, title=title, names=[v.name for v in variants])


def study_name(workdir: pathlib.Path) -> str:
  """The study's name in titles: its folder's name."""
  return workdir.resolve().name


def write_report(workdir: str | pathlib.Path) -> list[pathlib.Path]:
  """Writes results.md, results.csv, aggregates.csv and the three PNGs into `workdir` from its run folders;
  returns their paths."""
  workdir = run_dir.existing_folder(workdir)
  runs = sort_runs(load_runs(workdir))
  if not runs:
    raise UserError(f'{workdir} holds no run folders (subfolders with a config.json or summary.json)')
  sweep = run_dir.read_json(workdir / run_dir.SWEEP_FILE)
  keys = config_lib.varied_keys([r.config for r in runs if r.config], first=sweep.get('varied', ()) if sweep else ())
  variants = aggregate.aggregate(runs, aggregate.ranking_metric(runs))
  study = study_name(workdir)
  paths = [workdir / name for name in (*TABLE_FILES, *PLOT_FILES)]
  paths[0].write_text(_markdown(study, runs, variants, keys, sweep))
  _write_csv(paths[1], runs, keys)
  write_aggregates(paths[2], variants, keys)
  _plot_accuracy_by_variant(paths[3], study, variants)
  finished: dict[str, list[Run]] = {v.name: [] for v in variants}  # best first, then unfinished ones
  for run in runs:
    if run.status != 'failed':
      finished.setdefault(aggregate.variant_of(run.name), []).append(run)
  _plot_accuracy_curves(paths[4], study, finished)
  best = variants[0] if variants else None
  _plot_best_variant_loss(paths[5], study, best and best.name, best.runs if best else [])
  return paths
