"""docs/results.md's tables and plots, generated from the run folders of `python -m cifar_jax.reproduce`.

    python -m cifar_jax.reproduce --write-docs [--workdir=runs/reproduce] [--from tp3_dense=/path/to/sweep]

Only the text between `<!-- generated:NAME begin -->` and `<!-- generated:NAME end -->` is rewritten (NAME is
`upv` or `tp3`); everything else in the page is left as it is. Each row gives the report's figure (from
`plan`, labelled as the report's) and ours with its 95 % interval (aggregate.Variant.interval: Student t over the
seeds that finished, cut to 0-100 %, or Wilson on the evaluation set for one run; the method and n named in each
cell, 'too few to conclude' as the study report flags it), the epochs, the mean wall time of one run, the device
and the command that ran it (from the study's records). A row without a finished run says "not yet measured",
in the tables and in the figures, which lay the variants (or the UPV rows) out as rows.
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
from cifar_jax.study import aggregate, report, stats
from cifar_jax.study.text import format_duration, plural
from cifar_jax.training import run_dir
from cifar_jax.study.aggregate import Variant
from cifar_jax.errors import UserError
from cifar_jax.reproduce.plan import Study

RECORD_FILE = 'reproduce.json'  # in a study's folder: the devices and commands of the invocations that ran it
NOT_MEASURED = 'not yet measured'
TOO_FEW = 'too few to conclude'  # beside an interval over fewer than stats.MIN_RUNS seeds, or one cut at 0 or 100 %


def interval_method(variant: Variant, key: str) -> str:
  """Which interval Variant.interval gives for `key`: 't' over seeds, 'Wilson' for one run on a known evaluation
  set, '' when it gives none."""
  if variant.interval(key) is None:
    return ''
  return 't' if variant.spreads[key].n > 1 else 'Wilson'


def too_few(variant: Variant, key: str) -> bool:
  """Whether the runs are too few to conclude from, as the study report flags it (stats.Spread.too_few, over
  seeds)."""
  spread = variant.spreads[key]
  return spread.n > 1 and spread.too_few


def percent(variant: Variant | None, key: str) -> str:
  """An accuracy over the variant's runs with its 95 % interval, the method and n: `49.06 ± 0.89 % [47.95, 50.17]
  (t, n=5)` (mean ± std), `59.90 % [58.94, 60.86] (Wilson, n=1 on 10,000 images)`; 'not yet measured' without
  runs."""
  if variant is None or key not in variant.spreads:
    return NOT_MEASURED
  spread, interval, method = variant.spreads[key], variant.interval(key), interval_method(variant, key)
  figure = f'{100 * spread.mean:.2f}' + (f' ± {100 * spread.std:.2f}' if spread.n > 1 else '') + ' %'
  bounds = f' [{100 * interval[0]:.2f}, {100 * interval[1]:.2f}]' if interval else ''
  if method == 'Wilson':
    said = f'Wilson, n=1 on {variant.examples[dict(aggregate.METRICS)[key]]:,} images'
  elif method == 't':
    said = f't, n={spread.n}' + (f': {TOO_FEW}' if too_few(variant, key) else '')
  else:
    said = 'n=1, evaluation set size not recorded'
  return f'{figure}{bounds} ({said})'


def runs_per(variants: Sequence[Variant], noun: str) -> str:
  """`n = 1 run per row`, `n = 1, 3 runs per variant`: the runs behind each measured one."""
  n = sorted({v.n for v in variants})
  return f'n = {", ".join(map(str, n))} run{"" if n == [1] else "s"} per {noun}'


def interval_method_note(variants: Sequence[Variant]) -> str:
  """The 95 % intervals `variants` show, named: Student t over seeds, Wilson for one run, or both."""
  n = {v.n for v in variants}
  said = ['Student t over the seeds, cut to 0-100 %'] if max(n) > 1 else []
  return '; '.join(said + (['Wilson on the evaluation set for one run'] if 1 in n else []))


def evaluation_sets(variants: Sequence[Variant]) -> str:
  """`validation 10,000 images, test 10,000 images`: each split's size where the variants agree on it."""
  sizes = [
      f'{label} {found.pop():,} images'
      for split, label in (('val', 'validation'), ('test', 'test'))
      if len(found := {v.examples.get(split) for v in variants} - {None}) == 1
  ]
  return ', '.join(sizes)


def interval_note(variants: Sequence[Variant], noun: str = 'variant') -> str:
  """The sentence under a table that names its intervals and the n behind them: the runs (seeds) per variant and
  the evaluation sets' sizes; '' when nothing is measured."""
  if not variants:
    return ''
  sizes = evaluation_sets(variants)
  return (
      f'Each accuracy: the mean (± std over the runs), then in brackets its 95 % interval '
      f'({interval_method_note(variants)}); {runs_per(variants, noun)}'
      + (f'; evaluation sets: {sizes}' if sizes else '')
      + '. '
      f'{TOO_FEW.capitalize()}: fewer than {stats.MIN_RUNS} runs, or a t interval cut at 0 or 100 %.'
  )


def best_epoch(variant: Variant | None) -> str:
  """The best validation accuracy with its interval (`percent`), and the best epochs of the runs."""
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
  measured = [
      results[row.study].variants[row.variant] for row in plan.UPV_TABLE if row.variant in results[row.study].variants
  ]
  note = interval_note(measured, 'row')
  return '\n'.join(lines) + (f'\n\n{note}' if note else '')


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
  """Every TP3 study: its title, command, device, table, the intervals it shows, conclusion and plot."""
  parts = []
  for study in (s for s in plan.STUDIES if s.report == 'tp3'):
    found = results[study.name]
    _, said = plan.TP3_REPORT.get(study.name, ('', ''))
    conclusion = measured_share(found, names[study.name]) + found.conclusion if found.conclusion else ''
    paragraphs = [
        f'### {study.title}',
        f'Report: {said}. {provenance_sentence(found)}',
        tp3_table(found, names[study.name]),
        interval_note(list(found.variants.values())),
        conclusion or f'Ours: {NOT_MEASURED}.',
        f'![{study.title}]({figures}/{study.name}.png)',
    ]
    parts.append('\n\n'.join(paragraph for paragraph in paragraphs if paragraph))
  return '\n\n'.join(parts)


def _draw_rows(
    axis: Any,
    labels: Sequence[str],
    variants: Sequence[Variant | None],
    series: Sequence[tuple[str, str]],
    shift: float,
) -> list[int]:
  """One row per label, the first on top: each (key, legend label) of `series` as our mean with its 95 % interval
  (Variant.interval), placed `shift` off the row; 'not yet measured' written on the rows without runs and 'too
  few to conclude' beside the intervals that are. Returns each label's row."""
  rows = list(range(len(labels)))[::-1]
  offsets = np.linspace(0.12, -0.12, len(series)) + shift
  for (key, label), offset in zip(series, offsets):
    points = [(row + offset, v, v.interval(key)) for row, v in zip(rows, variants) if v and key in v.spreads]
    if not points:
      continue
    means = [100 * v.spreads[key].mean for _, v, _ in points]
    low = [mean - 100 * interval[0] if interval else 0 for mean, (_, _, interval) in zip(means, points)]
    high = [100 * interval[1] - mean if interval else 0 for mean, (_, _, interval) in zip(means, points)]
    axis.errorbar(means, [y for y, _, _ in points], xerr=[low, high], fmt='o', capsize=3, label=label)
    for y, v, interval in points:
      if too_few(v, key):
        axis.annotate(TOO_FEW, (100 * interval[1], y), (4, 0), textcoords='offset points', va='center', fontsize=7)
  axis.set_yticks(rows, labels, fontsize=8)
  axis.set_ylim(-0.6, len(labels) - 0.4)
  for row, v in zip(rows, variants):
    if v is None:
      axis.text(
          0.01, row + shift, NOT_MEASURED, transform=axis.get_yaxis_transform(), va='center', color='gray', fontsize=8
      )
  axis.grid(alpha=0.3, axis='x')
  return rows


def _measured_title(variants: Sequence[Variant | None], noun: str) -> str:
  """`n = 5 runs per variant; 7 of 7 variants measured`, or `none measured yet`."""
  measured = [v for v in variants if v is not None]
  if not measured:
    return 'none measured yet'
  return f'{runs_per(measured, noun)}; {len(measured)} of {plural(len(variants), noun)} measured'


def _xlabel(variants: Sequence[Variant | None]) -> str:
  """The accuracy axis, naming the interval its bars are (both kinds when nothing is measured yet)."""
  measured = [v for v in variants if v is not None]
  if not measured:
    return 'accuracy % (95 % interval: Student t over the seeds; Wilson on the evaluation set for one run)'
  sizes = evaluation_sets(measured)
  return f'accuracy % (95 % interval: {interval_method_note(measured)}' + (f'; {sizes}' if sizes else '') + ')'


def _legend(axis: Any) -> None:
  """The legend beside the axis, where it hides no row."""
  if axis.get_legend_handles_labels()[0]:
    axis.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1))


def plot_upv(results: Mapping[str, StudyResults], path: pathlib.Path) -> None:
  """The report's accuracy per row of its Table 1 against ours (final test and best validation accuracy, each
  with its 95 % interval), one row per row, the rows not yet measured labelled."""
  rows = plan.UPV_TABLE
  variants = [results[row.study].variants.get(row.variant) for row in rows]
  figure, axis = plt.subplots(figsize=(9, 1.6 + 0.45 * len(rows)))
  series = (('test_accuracy', 'ours: final test acc'), ('best_val_accuracy', 'ours: best val acc'))
  y = _draw_rows(axis, [row.label for row in rows], variants, series, shift=-0.1)
  axis.plot(
      [row.report_accuracy for row in rows],
      [row + 0.25 for row in y],
      's',
      color='gray',
      label='report: best test acc (selected on test)',
  )
  axis.set_xlabel(_xlabel(variants))
  title = f'UPV progression: test accuracy by row, report against ours ({_measured_title(variants, "row")})'
  axis.set_title(title, fontsize=10)
  _legend(axis)
  names = [f'{row.label}: {NOT_MEASURED}' if v is None else row.label for row, v in zip(rows, variants)]
  plotting.save(figure, path, title=title, names=names)


def plot_tp3(study: StudyResults, names: Sequence[str], path: pathlib.Path) -> None:
  """One TP3 study, one row per variant (so that long names and many variants stay readable): validation and test
  accuracy with their 95 % interval, the report's figure or winner, and the variants not yet measured labelled."""
  variants = [study.variants.get(name) for name in names]
  figure, axis = plt.subplots(figsize=(9, 1.6 + 0.32 * len(names)))
  winner, _ = plan.TP3_REPORT.get(study.study.name, ('', ''))
  labels = [f"{name}  (report's winner)" if name == winner else name for name in names]
  series = (('val_accuracy', 'ours: val acc'), ('test_accuracy', 'ours: test acc'))
  _draw_rows(axis, labels, variants, series, shift=0.0)
  if study.study.name == 'tp3_final':
    axis.axvline(plan.TP3_FINAL_ACCURACY, color='gray', linestyle='--', label='report: 83 %')
  elif not study.variants:  # no number to place: the whole range
    axis.set_xlim(0, 100)
  axis.set_xlabel(_xlabel(variants))
  title = f'{study.study.title} ({_measured_title(variants, "variant")})'
  axis.set_title(title, fontsize=10)
  _legend(axis)
  shown = [f'{label}: {NOT_MEASURED}' if v is None else label for label, v in zip(labels, variants)]
  plotting.save(figure, path, title=title, names=shown)


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
