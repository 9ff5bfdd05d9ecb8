"""docs/results.md's tables and plots, generated from the run folders of `python -m cifar_jax.reproduce`.

    python -m cifar_jax.reproduce --write-docs [--workdir=runs/reproduce] [--from tp3_dense=/path/to/sweep]

Only the text between `<!-- generated:NAME begin -->` and `<!-- generated:NAME end -->` is rewritten (NAME is
`upv` or `tp3`); everything else in the page is left as it is. Each row gives the report's figure (from
`plan`, labelled as the report's) and ours as mean ± std over the seeds that finished, with n, the
epochs, the mean wall time of one run, the device and the command that ran it (from the study's
reproduce.json and sweep.json). A row without a finished run says "not yet measured".
"""

from collections.abc import Mapping, Sequence
import dataclasses
import pathlib
import statistics
from typing import Any

import numpy as np

from cifar_jax import plotting
from cifar_jax.plotting import plt
from cifar_jax.reproduce import plan, records
from cifar_jax.study import aggregate, report
from cifar_jax.study.text import format_duration, plural
from cifar_jax.training import run_dir
from cifar_jax.study.aggregate import Variant
from cifar_jax.errors import UserError
from cifar_jax.reproduce.plan import Study

RECORD_FILE = 'reproduce.json'  # in a study's folder: the devices and commands of the invocations that ran it
NOT_MEASURED = 'not yet measured'


def percent(variant: Variant | None, key: str) -> str:
  """`mean ± std %` of an accuracy over the variant's runs, with n; 'not yet measured' without runs."""
  if variant is None or key not in variant.spreads:
    return NOT_MEASURED
  spread = variant.spreads[key]
  std = f' ± {100 * spread.std:.2f}' if spread.n > 1 else ''
  return f'{100 * spread.mean:.2f}{std} % (n={spread.n})'


def best_epoch(variant: Variant | None) -> str:
  """The best validation accuracy as mean ± std, and the best epochs of the runs."""
  if variant is None or 'best_val_accuracy' not in variant.spreads:
    return NOT_MEASURED
  epochs = ', '.join(str(e) for e in variant.values('best_epoch'))
  return f'{percent(variant, "best_val_accuracy")}, epoch {epochs}'


def epochs_and_time(variant: Variant | None) -> tuple[str, str]:
  """The runs' epochs and the mean wall time of one run, as table cells."""
  if variant is None:
    return '–', '–'
  epochs = sorted(set(variant.values('epochs')))
  wall = variant.values('wall_seconds')
  return ', '.join(map(str, epochs)), format_duration(statistics.fmean(wall) if wall else 0)


@dataclasses.dataclass
class StudyResults:
  """What the page says about one study: the recorded entry of each measured variant, the variants aggregated
  over their runs, and the conclusion the data support."""

  study: Study
  entries: dict[str, records.Entry]
  variants: dict[str, Variant]
  conclusion: str  # from aggregate.conclusion, '' when nothing is measured

  def provenance(self) -> list[tuple[str, str, list[str]]]:
    """(command, device, its variants) of each distinct command and device that measured the study's rows."""
    found: dict[tuple[str, str], list[str]] = {}
    for name, entry in self.entries.items():
      found.setdefault((entry.command, entry.device), []).append(name)
    return [(command, device, names) for (command, device), names in found.items()]


def study_results(study: Study, entries: Mapping[str, records.Entry]) -> StudyResults:
  """The page's view of a study from its recorded entries."""
  runs = [run for entry in entries.values() for run in entry.runs]
  variants = aggregate.aggregate(runs)
  conclusion = aggregate.conclusion(variants, aggregate.ranking_metric(runs)) if variants else ''
  return StudyResults(study, dict(entries), {v.name: v for v in variants}, conclusion)


def measured_entries(study: Study, folder: pathlib.Path, source: str) -> dict[str, records.Entry]:
  """The completed runs of `study` in its run folder, an entry per variant, with the device and command that
  ran them (from the study's reproduce.json, else the sweep's own command)."""
  if not folder.is_dir():
    return {}
  record = run_dir.read_json(folder / RECORD_FILE) or {}
  sweep_record = run_dir.read_json(folder / run_dir.SWEEP_FILE) or {}
  devices = ', '.join(record.get('devices', [])) or 'not recorded'
  command = (record.get('commands') or [sweep_record.get('command')])[-1] or default_command(study)
  return records.entries_from_runs(report.load_runs(folder), command, devices, source)


def default_command(study: Study) -> str:
  return f'python -m cifar_jax.reproduce --only={study.name}'


def measured_share(study: StudyResults, names: Sequence[str]) -> str:
  """`2 of 4 variants measured. ` when some variant of the study has no run, else ''."""
  total = len(set(names) | set(study.variants))
  if len(study.variants) >= total:
    return ''
  return f'{len(study.variants)} of {plural(total, "variant")} measured. '


def _code(text: str) -> str:
  return f'`{text}`'


def upv_table(results: Mapping[str, StudyResults]) -> str:
  """The UPV progression, one row per row of the report's Table 1."""
  lines = [
      '| row | config | params | report: best test acc (epoch) | ours: final test acc | ours: best val acc '
      '(epochs) | epochs | wall time per run | device | command |',
      '|' + '---|' * 10,
  ]
  for row in plan.UPV_TABLE:
    study = results[row.study]
    variant, entry = study.variants.get(row.variant), study.entries.get(row.variant)
    epochs, wall = epochs_and_time(variant)
    lines.append(
        f'| {row.label} | {_code(row.config)} | {row.params:,} | {row.report_accuracy} % ({row.report_epoch}) '
        f'| {percent(variant, "test_accuracy")} | {best_epoch(variant)} | {epochs} | {wall} '
        f'| {entry.device if entry else "–"} | {_code(entry.command if entry else default_command(study.study))} |'
    )
  return '\n'.join(lines)


def tp3_table(study: StudyResults, names: Sequence[str]) -> str:
  """One TP3 study, one row per variant (`names`: the sweep's variants in order, then any other found)."""
  winner, said = plan.TP3_REPORT.get(study.study.name, ('', ''))
  lines = [
      '| variant | report | ours: val acc | ours: test acc | ours: best val acc (epochs) | epochs '
      '| wall time per run |',
      '|' + '---|' * 7,
  ]
  for name in list(names) + [n for n in study.variants if n not in names]:
    variant = study.variants.get(name)
    epochs, wall = epochs_and_time(variant)
    lines.append(
        f'| {name} | {said if name == winner else ""} | {percent(variant, "val_accuracy")} '
        f'| {percent(variant, "test_accuracy")} | {best_epoch(variant)} | {epochs} | {wall} |'
    )
  return '\n'.join(lines)


def provenance_sentence(study: StudyResults) -> str:
  """Who measured the study's rows: the command and device (each, with its variants, when several), and the
  runs per variant that finished; what would measure it when nothing is yet."""
  found = study.provenance()
  if not found:
    return (
        f'Command: {_code(default_command(study.study))}; {NOT_MEASURED} '
        f'(planned: {plural(study.study.seeds, "seed")} per variant).'
    )
  n = sorted({v.n for v in study.variants.values()})
  runs = f'runs per variant: {", ".join(map(str, n))}'
  if len(found) == 1:
    command, device, _ = found[0]
    return f'Command: {_code(command)}; device: {device}; {runs}.'
  said = '; '.join(f'{_code(command)} on {device} ({", ".join(names)})' for command, device, names in found)
  return f'Commands: {said}; {runs}.'


def tp3_section(results: Mapping[str, StudyResults], names: Mapping[str, Sequence[str]], figures: str) -> str:
  """Every TP3 study: its title, command, device, table, conclusion and plot."""
  parts = []
  for study in (s for s in plan.STUDIES if s.report == 'tp3'):
    found = results[study.name]
    _, said = plan.TP3_REPORT.get(study.name, ('', ''))
    conclusion = measured_share(found, names[study.name]) + found.conclusion if found.conclusion else ''
    parts.append(
        f'### {study.title}\n\n'
        f'Report: {said}. {provenance_sentence(found)}\n\n'
        f'{tp3_table(found, names[study.name])}\n\n{conclusion or "Ours: " + NOT_MEASURED + "."}\n\n'
        f'![{study.title}]({figures}/{study.name}.png)'
    )
  return '\n\n'.join(parts)


def _errorbar_points(axis: Any, variants: Sequence[Variant | None], key: str, label: str, offset: float) -> None:
  """Ours: the mean of `key` with a bar of ± one std over seeds, at each label that has runs."""
  points = [
      (i + offset, 100 * v.spreads[key].mean, 100 * np.nan_to_num(v.spreads[key].std))
      for i, v in enumerate(variants)
      if v is not None and key in v.spreads
  ]
  if points:
    x, y, err = zip(*points)
    axis.errorbar(x, y, yerr=err, fmt='o', capsize=4, label=label)


def plot_upv(results: Mapping[str, StudyResults], path: pathlib.Path) -> None:
  """The report's accuracy per row against ours (mean ± std over seeds) on one axis."""
  rows = plan.UPV_TABLE
  variants = [results[row.study].variants.get(row.variant) for row in rows]
  figure, axis = plt.subplots(figsize=(8, 4.5))
  axis.plot(
      range(len(rows)),
      [row.report_accuracy for row in rows],
      's--',
      color='gray',
      label='report: best test acc (selected on test)',
  )
  _errorbar_points(axis, variants, 'test_accuracy', 'ours: final test acc', 0.05)
  _errorbar_points(axis, variants, 'best_val_accuracy', 'ours: best val acc', -0.05)
  _finish(
      axis,
      [r.label for r in rows],
      'UPV progression: test accuracy by row (ours: mean ± std over seeds)',
      measured=any(variants),
  )
  plotting.save(figure, path)


def plot_tp3(study: StudyResults, names: Sequence[str], path: pathlib.Path) -> None:
  """One TP3 study, one row per variant (so that long names and many variants stay readable): validation and test
  accuracy with their 95 % interval (t over seeds; Wilson on the evaluation set for one run), the report's
  figure or winner, and the variants not yet measured labelled as such."""
  variants = [study.variants.get(name) for name in names]
  figure, axis = plt.subplots(figsize=(9, 1.6 + 0.32 * len(names)))
  rows = range(len(names))[::-1]  # the first variant on top
  for key, label, offset in (('val_accuracy', 'ours: val acc', 0.12), ('test_accuracy', 'ours: test acc', -0.12)):
    points = [(row + offset, v, v.interval(key)) for row, v in zip(rows, variants) if v and key in v.spreads]
    if points:
      y = [p[0] for p in points]
      x = [100 * p[1].spreads[key].mean for p in points]
      low = [100 * (p[1].spreads[key].mean - p[2][0]) if p[2] else 0 for p in points]
      high = [100 * (p[2][1] - p[1].spreads[key].mean) if p[2] else 0 for p in points]
      axis.errorbar(x, y, xerr=[low, high], fmt='o', capsize=3, label=label)
  winner, _ = plan.TP3_REPORT.get(study.study.name, ('', ''))
  if study.study.name == 'tp3_final':
    axis.axvline(plan.TP3_FINAL_ACCURACY, color='gray', linestyle='--', label='report: 83 %')
  labels = [f"{name}  (report's winner)" if name == winner else name for name in names]
  axis.set_yticks(list(rows), labels, fontsize=8)
  axis.set_ylim(-0.6, len(names) - 0.4)
  measured = [v for v in variants if v is not None]
  if measured:
    for row, v in zip(rows, variants):
      if v is None:
        axis.text(0.01, row, NOT_MEASURED, transform=axis.get_yaxis_transform(), va='center', color='gray', fontsize=8)
  else:
    axis.text(0.5, 0.5, f'ours: {NOT_MEASURED}', transform=axis.transAxes, ha='center', color='gray')
  n = sorted({v.n for v in measured})
  said = 'none measured yet'
  if n:
    runs = f'n = {", ".join(map(str, n))} run{"" if n == [1] else "s"} per variant'
    said = f'{runs}; {len(measured)} of {plural(len(names), "variant")} measured'
  axis.set_xlabel('accuracy % (95 % interval: t over seeds; Wilson on the evaluation set for one run)')
  axis.set_title(f'{study.study.title} ({said})', fontsize=10)
  axis.grid(alpha=0.3, axis='x')
  if axis.get_legend_handles_labels()[0]:
    axis.legend(fontsize=8, loc='best')
  plotting.save(figure, path)


def _finish(axis: Any, labels: Sequence[str], title: str, measured: bool) -> None:
  """Labels, title and a note when nothing of ours is measured yet; the y axis is left zoomed to the data."""
  axis.set_xticks(range(len(labels)), labels, rotation=30, ha='right')
  axis.set_xlim(-0.5, len(labels) - 0.5)
  axis.set_ylabel('accuracy %')
  axis.set_title(title, fontsize=10)
  if not measured:
    axis.text(0.5, 0.5, f'ours: {NOT_MEASURED}', transform=axis.transAxes, ha='center', color='gray')
  if axis.get_legend_handles_labels()[0]:
    axis.legend(fontsize=8)
  axis.grid(alpha=0.3)


def replace_generated(text: str, name: str, body: str) -> str:
  """`text` with what lies between the `generated:name` markers replaced by `body`; the rest untouched."""
  begin, end = f'<!-- generated:{name} begin -->', f'<!-- generated:{name} end -->'
  if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
    raise UserError(f'the page must hold exactly one {begin} followed by one {end}')
  head, rest = text.split(begin)
  _, tail = rest.split(end)
  return f'{head}{begin}\n{body}\n{end}{tail}'


def write_page(
    page: pathlib.Path, results: Mapping[str, StudyResults], names: Mapping[str, Sequence[str]]
) -> list[pathlib.Path]:
  """Rewrites the generated blocks of `page` and draws the plots into `<page's folder>/results/figures`."""
  figures = page.parent / 'results' / 'figures'
  relative = figures.relative_to(page.parent).as_posix()
  plot_upv(results, figures / 'upv_progression.png')
  written = [figures / 'upv_progression.png']
  for study in (s for s in plan.STUDIES if s.report == 'tp3'):
    plot_tp3(results[study.name], names[study.name], figures / f'{study.name}.png')
    written.append(figures / f'{study.name}.png')
  upv = f'{upv_table(results)}\n\n![UPV progression, report against ours]({relative}/upv_progression.png)'
  text = replace_generated(page.read_text(), 'upv', upv)
  text = replace_generated(text, 'tp3', tp3_section(results, names, relative))
  page.write_text(text)
  return [page, *written]
