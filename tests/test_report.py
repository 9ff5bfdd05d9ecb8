"""The report tool on hand-made run folders: table order and columns, failed and unfinished runs, plots, CLI."""

import csv
import json
import pathlib

from PIL import Image
import pytest

from cifar_jax import config_lib
from cifar_jax import report as report_command
from cifar_jax.study import report, text
from cifar_jax.training import run_dir

STEPS_PER_EPOCH = 4


def _write_run(
    folder: pathlib.Path,
    *,
    lr: float = 0.1,
    activation: str = 'relu',
    final: float | None = 0.5,
    epochs: int = 5,
    val: bool = True,
    status: str | None = 'completed',
    error: str | None = None,
    seed: int = 0,
    examples: int | None = None,
) -> None:
  """A run folder as train.py writes it: config.json, metrics.jsonl and (unless unfinished) summary.json;
  `examples` is the size of its validation set, twice that of its test set; unrecorded when None (as in old runs)."""
  folder.mkdir(parents=True, exist_ok=True)
  config = {
      'model': {'name': 'mlp', 'activation': activation, 'hidden_sizes': [32]},
      'optimizer': {'learning_rate': lr},
      'seed': seed,
      'data': {'split_seed': 0},
  }
  (folder / 'config.json').write_text(json.dumps(config))
  records = []
  for epoch in range(1, epochs + 1):
    accuracy = (final or 0.1) * epoch / epochs
    for half in (1, 2):
      step = (epoch - 1) * STEPS_PER_EPOCH + half * STEPS_PER_EPOCH // 2
      records.append(
          {'kind': 'train', 'step': step, 'epoch': epoch, 'loss': 2.5 - 2 * accuracy, 'accuracy': accuracy + 0.05}
      )
    if val:
      records.append(
          {
              'kind': 'val',
              'step': epoch * STEPS_PER_EPOCH,
              'epoch': epoch,
              'loss': 2.4 - 2 * accuracy,
              'accuracy': accuracy,
          }
      )
  if status == 'completed':
    records.append({'kind': 'test', 'step': epochs * STEPS_PER_EPOCH, 'loss': 2.4 - 2 * final, 'accuracy': final})
  (folder / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
  if status == 'completed':
    summary = {
        'status': 'completed',
        'model': 'mlp',
        'params': 98_666,
        'steps': epochs * STEPS_PER_EPOCH,
        'epochs': epochs,
        'train_loss': 2.0,
        'train_accuracy': final + 0.05,
        'val_loss': 2.4 - 2 * final if val else None,
        'val_accuracy': final if val else None,
        'best_val_accuracy': final if val else None,
        'best_epoch': epochs if val else None,
        'test_loss': 2.4 - 2 * final,
        'test_accuracy': final,
        'wall_seconds': 3725.0,
        'steady_images_per_second': 1234.5,
    }
    if examples is not None:
      summary |= {'val_examples': examples if val else 0, 'test_examples': 2 * examples}
    (folder / 'summary.json').write_text(json.dumps(summary))
  elif status == 'failed':
    (folder / 'summary.json').write_text(json.dumps({'status': 'failed', 'error': error, 'steps': 3}))


def _csv_rows(workdir: pathlib.Path) -> list[dict[str, str]]:
  with (workdir / 'results.csv').open() as f:
    return list(csv.DictReader(f))


def _plotted(path: pathlib.Path) -> list[str]:
  """The run names a plot holds, from its PNG metadata."""
  with Image.open(path) as image:
    return json.loads(image.text['Description'])


@pytest.fixture
def mixed_runs(tmp_path):
  """Three finished runs, one that diverged and one still running."""
  _write_run(tmp_path / 'lr_0.1', lr=0.1, final=0.60)
  _write_run(tmp_path / 'lr_0.01', lr=0.01, final=0.45)
  _write_run(tmp_path / 'lr_0.05', lr=0.05, final=0.72)
  _write_run(tmp_path / 'lr_10', lr=10.0, epochs=1, status='failed', error='the training loss became nan')
  _write_run(tmp_path / 'lr_0.02', lr=0.02, final=0.3, epochs=2, status=None)
  (tmp_path / 'not_a_run').mkdir()
  return tmp_path


def test_table_is_sorted_by_validation_accuracy_with_failed_and_unfinished_runs_last(mixed_runs):
  paths = report.write_report(mixed_runs)
  assert [p.name for p in paths] == [*report.TABLE_FILES, *report.PLOT_FILES]
  rows = _csv_rows(mixed_runs)
  assert [r['name'] for r in rows] == ['lr_0.05', 'lr_0.1', 'lr_0.01', 'lr_0.02', 'lr_10']
  assert [r['status'] for r in rows] == ['completed'] * 3 + ['incomplete', 'failed']
  assert rows[-1]['error'] == 'the training loss became nan' and rows[-1]['val_accuracy'] == ''
  assert float(rows[3]['val_accuracy']) == pytest.approx(0.3)  # the unfinished run shows its latest numbers
  assert list(rows[0])[:4] == ['name', 'variant', 'optimizer.learning_rate', 'seed']  # the key that differs, the seed
  assert float(rows[0]['test_accuracy']) == pytest.approx(0.72) and rows[0]['params'] == '98666'

  markdown = (mixed_runs / 'results.md').read_text()
  assert 'Sorted by mean final validation accuracy' in markdown
  assert '| lr_0.05 | 0.05 | 72.00 | 77.00 | 72.00 |' in markdown
  assert '98,666 | 5 | 1:02:05 | 1,234 | completed |' in markdown
  assert '| wall time | steady img/s (compilation left out) | status |' in markdown and report.STEADY_NOTE in markdown
  assert '| failed: the training loss became nan |' in markdown
  # The conclusion covers 3 of the 5 variants (one diverged, one is still running) and says so.
  assert '**Conclusion.** 3 of 5 variants have a completed run; the others are not part of this conclusion.' in markdown
  for name in report.PLOT_FILES:
    assert f']({name})' in markdown


def test_plots_hold_the_runs_that_did_not_fail(mixed_runs):
  report.write_report(mixed_runs)
  assert _plotted(mixed_runs / 'val_accuracy.png') == ['lr_0.05', 'lr_0.1', 'lr_0.01', 'lr_0.02']
  assert _plotted(mixed_runs / 'best_variant_loss.png') == ['lr_0.05']
  assert _plotted(mixed_runs / 'accuracy_by_variant.png') == ['lr_0.05', 'lr_0.1', 'lr_0.01']
  with Image.open(mixed_runs / 'val_accuracy.png') as image:
    assert image.width > 600 and image.height > 300


def test_without_a_validation_split_the_table_sorts_by_test_accuracy(tmp_path):
  _write_run(tmp_path / 'a', activation='relu', final=0.4, val=False)
  _write_run(tmp_path / 'b', activation='tanh', final=0.5, val=False)
  report.write_report(tmp_path)
  assert [r['name'] for r in _csv_rows(tmp_path)] == ['b', 'a']
  assert 'Sorted by mean test accuracy' in (tmp_path / 'results.md').read_text()
  assert _plotted(tmp_path / 'val_accuracy.png') == ['b', 'a']  # training accuracy is plotted instead


def test_sweep_json_names_the_columns_and_the_command(tmp_path):
  _write_run(tmp_path / 'a', lr=0.1, final=0.4)
  _write_run(tmp_path / 'b', lr=0.2, final=0.5)
  command = 'python -m cifar_jax.sweep --config=configs/sweeps/x.py --workdir=runs/x'
  (tmp_path / run_dir.SWEEP_FILE).write_text(json.dumps({'command': command, 'varied': ['model.activation']}))
  report.write_report(tmp_path)
  assert list(_csv_rows(tmp_path)[0])[:4] == ['name', 'variant', 'model.activation', 'optimizer.learning_rate']
  assert f'The runs come from `{command}`.' in (tmp_path / 'results.md').read_text()


def test_report_is_reproducible(mixed_runs):
  report.write_report(mixed_runs)
  first = {name: (mixed_runs / name).read_text() for name in report.TABLE_FILES}
  report.write_report(mixed_runs)
  assert {name: (mixed_runs / name).read_text() for name in report.TABLE_FILES} == first


def _exit_status(argv):
  with pytest.raises(SystemExit) as stopped:
    report_command.main(argv)
  return stopped.value.code


def test_command_line(mixed_runs, tmp_path, capsys):
  assert _exit_status([str(mixed_runs)]) == 0
  assert 'results.md' in capsys.readouterr().out
  assert _exit_status([str(tmp_path / 'missing')]) == 1
  assert 'is not a folder' in capsys.readouterr().err
  empty = tmp_path / 'empty'
  empty.mkdir()
  assert _exit_status([str(empty)]) == 1
  assert 'holds no run folders' in capsys.readouterr().err
  assert _exit_status([]) == 2


def test_flatten_and_varied_keys():
  assert config_lib.flatten({'a': {'b': [1, 2], 'c': 'x'}, 'd': 1.0}) == {'a.b': (1, 2), 'a.c': 'x', 'd': 1.0}
  configs = [{'a': 1, 'b': 2, 'c': 3}, {'a': 1, 'b': 5}]
  assert config_lib.varied_keys(configs, first=['z']) == ['z', 'b', 'c']
  assert report.format_value((150, 150, 84)) == '(150, 150, 84)' and report.format_value(1e-05) == '1e-05'
  assert text.format_duration(3725.4) == '1:02:05'


def _aggregates(workdir: pathlib.Path) -> dict[str, dict[str, str]]:
  with (workdir / 'aggregates.csv').open() as f:
    return {row['variant']: row for row in csv.DictReader(f)}


# Final validation accuracies of five seeds per variant: b is a within the noise (seed by seed a - b is .002,
# -.002, .005, .002, -.002), c five points lower. a and b ran seeds 0-4 (paired), c seeds 10-14 (Welch).
SEEDED = {
    'a': (0.50, 0.51, 0.49, 0.505, 0.495),
    'b': (0.498, 0.512, 0.485, 0.503, 0.497),
    'c': (0.45, 0.46, 0.44, 0.455, 0.445),
}
FIRST_SEED = {'a': 0, 'b': 0, 'c': 10}


@pytest.fixture
def seeded_runs(tmp_path):
  """Three variants of five seeds each, in a sweep's variant/seed=K folders, on 10,000 validation images."""
  for i, (name, finals) in enumerate(SEEDED.items()):
    for seed, final in enumerate(finals, start=FIRST_SEED[name]):
      _write_run(tmp_path / name / f'seed={seed}', lr=0.1 * (i + 1), final=final, seed=seed, examples=10_000)
  return tmp_path


def test_seeds_are_aggregated_per_variant_with_t_intervals(seeded_runs):
  report.write_report(seeded_runs)
  rows = _aggregates(seeded_runs)
  assert list(rows) == ['a', 'b', 'c'] and {r['n'] for r in rows.values()} == {'5'}
  a = rows['a']
  # By hand: deviations 0, .01, -.01, .005, -.005 from 0.5; variance 0.00025 / 4; std 0.0079057;
  # 95 % half-width t(0.975, 4) * std / sqrt(5) = 2.776 * 0.0035355 = 0.009815.
  assert float(a['val_accuracy_mean']) == pytest.approx(0.5)
  assert float(a['val_accuracy_std']) == pytest.approx(0.0079057, abs=1e-7)
  assert (float(a['val_accuracy_ci95_low']), float(a['val_accuracy_ci95_high'])) == pytest.approx(
      (0.5 - 0.009815, 0.5 + 0.009815), abs=2e-6
  )
  assert float(a['val_accuracy_binomial_se']) == pytest.approx(0.005)  # sqrt(0.25 / 10000)
  assert (a['val_examples'], a['test_examples'], a['vs_best']) == ('10000', '20000', 'best')
  b = rows['b']  # paired: differences mean 0.001, std 0.003, t = 0.74536 with df 4, p = 0.49747 (scipy ttest_rel)
  assert b['vs_best_test'] == 'paired t' and b['vs_best_significant'] == 'False'
  assert float(b['vs_best_statistic']) == pytest.approx(0.74536, abs=1e-5)
  assert float(b['vs_best_p_value']) == pytest.approx(0.49747, abs=1e-5)
  assert b['vs_best'].startswith('indistinguishable (paired t p=0.5, Holm p=0.5; P(best > it)=0.')
  # a against c: difference 0.05, se sqrt(2 * 0.0000625 / 5) = 0.005, df 8, half-width 2.306 * 0.005 = 0.01153.
  c = rows['c']
  assert c['vs_best_test'] == 'Welch t' and c['vs_best_significant'] == 'True'
  assert float(c['vs_best_difference']) == pytest.approx(0.05)
  assert float(c['vs_best_ci95_half_width']) == pytest.approx(0.01153, abs=1e-5)

  runs = _csv_rows(seeded_runs)
  assert len(runs) == 15 and runs[0]['variant'] == 'b' and runs[0]['name'] == 'b/seed=1'  # 51.2 %, the best run
  assert sorted(r['seed'] for r in runs if r['variant'] == 'c') == ['10', '11', '12', '13', '14']


def test_one_variant_tested_against_the_best_is_said_in_the_singular(tmp_path):
  _write_run(tmp_path / 'a', lr=0.1, final=0.6, examples=1000)
  _write_run(tmp_path / 'b', lr=0.01, final=0.5, examples=1000)  # one run each: the two-proportion z-test
  report.write_report(tmp_path)
  assert "Holm's correction across the 1 variant tested against the best" in (tmp_path / 'results.md').read_text()


def test_the_table_and_conclusion_say_which_differences_are_real(seeded_runs):
  report.write_report(seeded_runs)
  markdown = (seeded_runs / 'results.md').read_text()
  assert '3 variants, n = 5 completed runs each' in markdown
  assert 'Evaluation sets: 10,000 validation images, 20,000 test images.' in markdown
  assert 'same validation images (data.split_seed=0' in markdown
  assert "Welch's t-test over seeds" in markdown and 'the paired t-test' in markdown and 'α = 0.05' in markdown
  assert "Holm's correction across the 2 variants" in markdown
  assert '| a | 0.1 | 5 | 50.00 ± 0.79 [49.02, 50.98] (bootstrap [49.' in markdown
  assert '`a` and `b` are indistinguishable at α = 0.05 (Holm-corrected).' in markdown
  assert '`c` is worse than `a` by 5.00 ± 1.15 points (Welch t p=' in markdown
  assert '| a/seed=1 | 0.1 | 1 | 51.00 |' in markdown  # the per-run table names each run's seed


def test_plots_show_variants_on_a_zoomed_axis_with_titles_naming_study_metric_and_n(seeded_runs):
  report.write_report(seeded_runs)
  for name in report.PLOT_FILES:
    with Image.open(seeded_runs / name) as image:
      title = image.text['Title']
    assert seeded_runs.name in title and 'n=5 seeds' in title, title
  assert 'validation accuracy per epoch, mean ± std' in _title(seeded_runs / 'val_accuracy.png')
  assert '95 % t interval' in _title(seeded_runs / 'accuracy_by_variant.png')
  assert _plotted(seeded_runs / 'accuracy_by_variant.png') == ['a', 'b', 'c']
  assert _plotted(seeded_runs / 'best_variant_loss.png') == ['a']


def _title(path: pathlib.Path) -> str:
  with Image.open(path) as image:
    return image.text['Title']


def test_one_seed_gives_binomial_errors_and_a_z_test(tmp_path):
  # 50 % against 45 % on 1,000 validation images: SE sqrt(0.25 / 1000) = 1.58 points (on the 2,000 test images
  # sqrt(0.25 / 2000) = 1.12); the pooled z-test gives z = 2.2389, p = 0.025, and the Wald half-width
  # 1.96 * sqrt((0.25 + 0.2475) / 1000) = 4.37 points.
  _write_run(tmp_path / 'a', lr=0.1, final=0.50, examples=1000)
  _write_run(tmp_path / 'b', lr=0.2, final=0.45, examples=1000)
  _write_run(tmp_path / 'c', lr=0.3, final=0.49, examples=1000)
  report.write_report(tmp_path)
  markdown = (tmp_path / 'results.md').read_text()
  assert (
      '| a | 0.1 | 1 | 50.00 ± 1.58 | 50.00 ± 1.58 | 50.00 ± 1.12 |' in markdown
      and 'binomial standard error' in markdown
  )
  # Holm over the two tests: b's p = 0.02516 is the smaller, adjusted to 2 * 0.02516 = 0.0503, not below 0.05.
  assert '| indistinguishable (two-proportion z p=0.025, Holm p=0.05) |' in markdown
  assert '`a`, `c` and `b` are indistinguishable' in markdown and 'two-proportion z-test' in markdown
  assert 'one run per variant' in _title(tmp_path / 'accuracy_by_variant.png')


def test_unequal_seed_counts_and_unrecorded_set_sizes_are_said_not_tested(tmp_path):
  _write_run(tmp_path / 'a' / 'seed=0', final=0.5, examples=1000)
  _write_run(tmp_path / 'a' / 'seed=1', final=0.52, seed=1, examples=1000)
  _write_run(tmp_path / 'b', lr=0.2, final=0.4, examples=1000)
  _write_run(tmp_path / 'c', lr=0.3, final=0.3)
  report.write_report(tmp_path)
  rows = _aggregates(tmp_path)
  assert rows['b']['vs_best'] == 'not tested: n=1 against n=2 (a test needs n >= 2 on both sides, or one run each)'
  assert rows['c']['val_accuracy_binomial_se'] == '' and rows['c']['vs_best'].startswith('not tested')
  assert 'not recorded by every run' in (tmp_path / 'results.md').read_text()


def test_a_seeded_sweep_over_an_old_single_seed_run_counts_only_its_own_runs(seeded_runs):
  _write_run(seeded_runs / 'old_single', lr=0.9, final=0.9)  # a run of an earlier sweep, not listed below
  for name in SEEDED:  # the seeded sweep ran into folders that already held a single-seed run each
    _write_run(seeded_runs / name, lr=0.1, final=0.99)
  listed = [{'name': f'{name}/seed={FIRST_SEED[name] + k}'} for name in SEEDED for k in range(len(SEEDED[name]))]
  (seeded_runs / run_dir.SWEEP_FILE).write_text(json.dumps({'variants': listed}))
  report.write_report(seeded_runs)
  runs = _csv_rows(seeded_runs)
  assert sorted(r['name'] for r in runs) == sorted(r['name'] for r in listed)
  assert {r['n'] for r in _aggregates(seeded_runs).values()} == {'5'}


def test_a_summary_from_before_the_steady_rate_has_no_steady_cell(tmp_path):
  """summary.json's old images_per_second counted the first step's compilation: never shown as the steady rate."""
  _write_run(tmp_path / 'a', lr=0.1, final=0.4)
  summary = json.loads((tmp_path / 'a' / 'summary.json').read_text())
  summary['images_per_second'] = summary.pop('steady_images_per_second')
  (tmp_path / 'a' / 'summary.json').write_text(json.dumps(summary))
  report.write_report(tmp_path)
  assert _csv_rows(tmp_path)[0]['steady_images_per_second'] == ''
  markdown = (tmp_path / 'results.md').read_text()  # a column no run has is left out
  assert '| 1:02:05 | completed |' in markdown and 'steady img/s (' not in markdown and '1,234' not in markdown
