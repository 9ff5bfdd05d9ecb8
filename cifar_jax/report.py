"""Comparison tables and plots from a folder of runs: results.md, results.csv and three PNGs.

    python -m cifar_jax.report runs/tp3_dense

Every subfolder that holds a run (its config.json, summary.json and metrics.jsonl, as `cifar_jax.main` and
`cifar_jax.sweep` write them) becomes one row. The columns are the run's name, the config keys that differ
between the runs (a sweep's sweep.json names them first), then validation, training and test accuracy and
loss, best epoch, parameters, epochs, wall time and images per second. Rows are sorted by final validation
accuracy, or by test accuracy when no run has a validation split; failed runs come last with their reason,
unfinished ones just before them with their latest logged numbers. The plots: validation accuracy per epoch
of every run, training against validation loss of the best run, and final accuracy by run.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
import csv
import dataclasses
import json
import pathlib
import sys
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from cifar_jax import run_dir  # noqa: E402
from cifar_jax.errors import UserError  # noqa: E402
TABLE_FILES = ('results.md', 'results.csv')
PLOT_FILES = ('val_accuracy.png', 'best_run_loss.png', 'accuracy_by_variant.png')


def _percent(value: float) -> str:
  return f'{100 * value:.2f}'


def format_duration(seconds: float) -> str:
  """Seconds as h:mm:ss, the table's wall-time format."""
  minutes, secs = divmod(round(seconds), 60)
  return f'{minutes // 60}:{minutes % 60:02d}:{secs:02d}'


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
    ('images_per_second', 'img/s', '{:,.0f}'.format),
)


def varied_keys(configs: Sequence[Mapping[str, Any]], first: Iterable[str] = ()) -> list[str]:
  """`first`, then every other dotted key whose value differs between the flat `configs`, in order of appearance."""
  keys = list(dict.fromkeys(first))
  for config in configs:
    for key in config:
      if key not in keys and len({repr(c.get(key)) for c in configs}) > 1:
        keys.append(key)
  return keys


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
    """completed or failed (from summary.json), incomplete while it has none."""
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
  return Run(name, run_dir.flatten(config or {}), summary or _latest(records), records)


def load_runs(workdir: pathlib.Path) -> list[Run]:
  """Every run folder of `workdir`, by name: its subfolders, and their subfolders (a sweep's `variant/seed=K`)."""
  runs = []
  for folder in sorted(p for p in workdir.iterdir() if p.is_dir()):
    nested = [_load_run(sub, f'{folder.name}/{sub.name}') for sub in sorted(folder.iterdir()) if sub.is_dir()]
    runs += [run for run in (_load_run(folder, folder.name), *nested) if run is not None]
  return runs


def sort_metric(runs: Sequence[Run]) -> str:
  """The accuracy the table sorts by: validation when any run has a split, test otherwise."""
  return 'val_accuracy' if any(r.results.get('val_accuracy') is not None for r in runs) else 'test_accuracy'


def sort_runs(runs: Sequence[Run]) -> list[Run]:
  """Completed runs best first, then unfinished ones, then failed ones."""
  metric = sort_metric(runs)
  group = {'completed': 0, 'incomplete': 1}

  def key(run: Run) -> tuple[Any, ...]:
    value = run.results.get(metric)
    return group.get(run.status, 2), value is None, -(value or 0.0), run.name

  return sorted(runs, key=key)


def _status_cell(run: Run) -> str:
  error = run.results.get('error')
  return f'{run.status}: {error}' if error else run.status


def _markdown(workdir: pathlib.Path, runs: list[Run], keys: list[str], sweep: dict[str, Any] | None) -> str:
  """The Markdown page: how it was made, the table, the plots."""
  metric = 'final validation accuracy' if sort_metric(runs) == 'val_accuracy' else 'test accuracy (no validation split)'
  made = [f'Made by `python -m cifar_jax.report` from the {len(runs)} run folders beside this file.']
  if sweep and sweep.get('command'):
    made.append(f'The runs come from `{sweep["command"]}`.')
  made.append(f'Sorted by {metric}; accuracies in %, losses are mean cross-entropy, wall time is h:mm:ss.')
  metrics = [m for m in METRICS if any(run.results.get(m[0]) is not None for run in runs)]  # no empty columns
  header = ['name', *keys, *(h for _, h, _ in metrics), 'status']
  lines = [f'# Results: {workdir.resolve().name}', '', ' '.join(made), '',
           '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for run in runs:
    cells = [run.name, *(format_value(run.config.get(k)) for k in keys),
             *('' if run.results.get(k) is None else fmt(run.results[k]) for k, _, fmt in metrics),
             _status_cell(run)]
    lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
  lines += ['', '![Validation accuracy per epoch](val_accuracy.png)', '',
            '![Training and validation loss of the best run](best_run_loss.png)', '',
            '![Final accuracy by run](accuracy_by_variant.png)', '']
  return '\n'.join(lines)


def _write_csv(path: pathlib.Path, runs: list[Run], keys: list[str]) -> None:
  """The table with raw numbers (accuracies as fractions, wall time in seconds) for other tools."""
  with path.open('w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['name', *keys, *(k for k, _, _ in METRICS), 'status', 'error'])
    for run in runs:
      writer.writerow([run.name, *(format_value(run.config.get(k)) for k in keys),
                       *('' if run.results.get(k) is None else run.results[k] for k, _, _ in METRICS),
                       run.status, run.results.get('error', '')])


def _save(fig: plt.Figure, path: pathlib.Path, title: str, names: Sequence[str]) -> None:
  """Saves `fig` with the plotted run names in the PNG's metadata (so that tests and tools can read them)."""
  fig.savefig(path, dpi=110, bbox_inches='tight', metadata={'Title': title, 'Description': json.dumps(list(names))})
  plt.close(fig)


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
  ax.legend(loc='upper left', bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize='small', frameon=False,
            title=title, title_fontsize='small', alignment='left')


def _plot_accuracy_curves(path: pathlib.Path, runs: list[Run]) -> None:
  """Validation accuracy per epoch of every run on one chart (training accuracy when none has a split)."""
  kind = 'val' if any(r.curve('val', 'accuracy')[0] for r in runs) else 'train'
  fig, ax = plt.subplots(figsize=(8, 4.8))
  colors = plt.get_cmap('tab10').colors
  curves = [(run.name, *run.curve(kind, 'accuracy')) for run in runs]
  curves = [curve for curve in curves if curve[1]]
  marker = '.' if max((len(epochs) for _, epochs, _ in curves), default=0) <= 30 else None
  for i, (name, epochs, accuracy) in enumerate(curves):
    ax.plot(epochs, [100 * a for a in accuracy], color=colors[i % len(colors)],
            linestyle=('-', '--', ':', '-.')[i // len(colors) % 4], marker=marker, label=name)
  plotted = [name for name, _, _ in curves]
  title = ('Validation accuracy per epoch' if kind == 'val'
           else 'Training accuracy per epoch (no run has a validation split)')
  _style(ax, title, 'epoch', 'accuracy (%)')
  _epoch_axis(ax)
  if plotted:
    _legend_outside(ax, 'runs, best first')
  _save(fig, path, title, plotted)


def _plot_best_run_loss(path: pathlib.Path, best: Run | None) -> None:
  """Training against validation loss per epoch of the best run, and its final test loss."""
  fig, ax = plt.subplots(figsize=(8, 4.8))
  for kind, label, style in (('train', 'training', 'o-'), ('val', 'validation', 'o-'), ('test', 'test (final)', 's')):
    epochs, loss = best.curve(kind, 'loss') if best else ([], [])
    if epochs:
      ax.plot(epochs, loss, style, markersize=4, label=label)
  title = f'Training and validation loss of the best run\n{best.name}' if best else 'No finished run to plot'
  _style(ax, title, 'epoch', 'cross-entropy loss')
  _epoch_axis(ax)
  if best:
    _legend_outside(ax)
  _save(fig, path, title, [best.name] if best else [])


def _plot_accuracy_by_variant(path: pathlib.Path, runs: list[Run]) -> None:
  """Horizontal bars of final validation and test accuracy per run, best at the top, values written on them."""
  bars = [(key, label) for key, label in (('val_accuracy', 'validation'), ('test_accuracy', 'test'))
          if any(run.results.get(key) is not None for run in runs)]
  fig, ax = plt.subplots(figsize=(8, 1.2 + 0.55 * max(len(runs), 1)))
  height = 0.8 / max(len(bars), 1)
  for j, (key, label) in enumerate(bars):
    values = [100 * (run.results.get(key) or 0.0) for run in runs]
    positions = [i - 0.4 + height * (j + 0.5) for i in range(len(runs))]
    drawn = ax.barh(positions, values, height=height, label=label)
    ax.bar_label(drawn, labels=[f'{v:.1f}' if run.results.get(key) is not None else '' for v, run in
                                zip(values, runs)], padding=2, fontsize='small')
  ax.set_yticks(range(len(runs)), [run.name for run in runs])
  ax.invert_yaxis()
  ax.set_xlim(0, 105)
  title = 'Final accuracy by run'
  _style(ax, title, 'accuracy (%)', '')
  if runs:
    _legend_outside(ax)
  _save(fig, path, title, [run.name for run in runs])


def write_report(workdir: str | pathlib.Path) -> list[pathlib.Path]:
  """Writes results.md, results.csv and the three PNGs into `workdir` from its run subfolders; returns their paths."""
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise UserError(f'{workdir} is not a folder')
  runs = sort_runs(load_runs(workdir))
  if not runs:
    raise UserError(f'{workdir} holds no run folders (subfolders with a config.json or summary.json)')
  sweep = run_dir.read_json(workdir / run_dir.SWEEP_FILE)
  keys = varied_keys([r.config for r in runs if r.config], first=sweep.get('varied', ()) if sweep else ())
  paths = [workdir / name for name in (*TABLE_FILES, *PLOT_FILES)]
  paths[0].write_text(_markdown(workdir, runs, keys, sweep))
  _write_csv(paths[1], runs, keys)
  finished = [r for r in runs if r.status != 'failed']
  _plot_accuracy_curves(paths[2], finished)
  _plot_best_run_loss(paths[3], finished[0] if finished else None)
  _plot_accuracy_by_variant(paths[4], [r for r in finished if r.status == 'completed'])
  return paths


def main(argv: Sequence[str]) -> int:
  """`python -m cifar_jax.report WORKDIR`: writes the table and plots and says where they are."""
  if len(argv) != 2 or argv[1].startswith('-'):
    print('usage: python -m cifar_jax.report WORKDIR   (a sweep workdir or any folder of run folders)',
          file=sys.stderr)
    return 2
  try:
    paths = write_report(argv[1])
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'Wrote {", ".join(str(p) for p in paths)}')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
