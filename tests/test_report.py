"""The report tool on hand-made run folders: table order and columns, failed and unfinished runs, plots, CLI."""

import csv
import json
import pathlib

from PIL import Image
import pytest

from cifar_jax import report, run_dir

STEPS_PER_EPOCH = 4


def _write_run(folder: pathlib.Path, *, lr: float = 0.1, activation: str = 'relu', final: float | None = 0.5,
               epochs: int = 5, val: bool = True, status: str | None = 'completed', error: str | None = None) -> None:
  """A run folder as train.py writes it: config.json, metrics.jsonl and (unless unfinished) summary.json."""
  folder.mkdir(parents=True)
  config = {'model': {'name': 'mlp', 'activation': activation, 'hidden_sizes': [32]},
            'optimizer': {'learning_rate': lr}, 'seed': 0}
  (folder / 'config.json').write_text(json.dumps(config))
  records = []
  for epoch in range(1, epochs + 1):
    accuracy = (final or 0.1) * epoch / epochs
    for half in (1, 2):
      step = (epoch - 1) * STEPS_PER_EPOCH + half * STEPS_PER_EPOCH // 2
      records.append({'kind': 'train', 'step': step, 'epoch': epoch, 'loss': 2.5 - 2 * accuracy,
                      'accuracy': accuracy + 0.05})
    if val:
      records.append({'kind': 'val', 'step': epoch * STEPS_PER_EPOCH, 'epoch': epoch, 'loss': 2.4 - 2 * accuracy,
                      'accuracy': accuracy})
  if status == 'completed':
    records.append({'kind': 'test', 'step': epochs * STEPS_PER_EPOCH, 'loss': 2.4 - 2 * final, 'accuracy': final})
  (folder / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
  if status == 'completed':
    summary = {'status': 'completed', 'model': 'mlp', 'params': 98_666, 'steps': epochs * STEPS_PER_EPOCH,
               'epochs': epochs, 'train_loss': 2.0, 'train_accuracy': final + 0.05,
               'val_loss': 2.4 - 2 * final if val else None, 'val_accuracy': final if val else None,
               'best_val_accuracy': final if val else None, 'best_epoch': epochs if val else None,
               'test_loss': 2.4 - 2 * final, 'test_accuracy': final, 'wall_seconds': 3725.0,
               'images_per_second': 1234.5}
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
  assert list(rows[0])[:2] == ['name', 'optimizer.learning_rate']  # the one key that differs between runs
  assert float(rows[0]['test_accuracy']) == pytest.approx(0.72) and rows[0]['params'] == '98666'

  markdown = (mixed_runs / 'results.md').read_text()
  assert 'Sorted by final validation accuracy' in markdown
  assert '| lr_0.05 | 0.05 | 72.00 | 77.00 | 72.00 |' in markdown
  assert '98,666 | 5 | 1:02:05 | 1,234 | completed |' in markdown
  assert '| failed: the training loss became nan |' in markdown
  for name in report.PLOT_FILES:
    assert f']({name})' in markdown


def test_plots_hold_the_runs_that_did_not_fail(mixed_runs):
  report.write_report(mixed_runs)
  assert _plotted(mixed_runs / 'val_accuracy.png') == ['lr_0.05', 'lr_0.1', 'lr_0.01', 'lr_0.02']
  assert _plotted(mixed_runs / 'best_run_loss.png') == ['lr_0.05']
  assert _plotted(mixed_runs / 'accuracy_by_variant.png') == ['lr_0.05', 'lr_0.1', 'lr_0.01']
  with Image.open(mixed_runs / 'val_accuracy.png') as image:
    assert image.width > 600 and image.height > 300


def test_without_a_validation_split_the_table_sorts_by_test_accuracy(tmp_path):
  _write_run(tmp_path / 'a', activation='relu', final=0.4, val=False)
  _write_run(tmp_path / 'b', activation='tanh', final=0.5, val=False)
  report.write_report(tmp_path)
  assert [r['name'] for r in _csv_rows(tmp_path)] == ['b', 'a']
  assert 'Sorted by test accuracy' in (tmp_path / 'results.md').read_text()
  assert _plotted(tmp_path / 'val_accuracy.png') == ['b', 'a']  # training accuracy is plotted instead


def test_sweep_json_names_the_columns_and_the_command(tmp_path):
  _write_run(tmp_path / 'a', lr=0.1, final=0.4)
  _write_run(tmp_path / 'b', lr=0.2, final=0.5)
  command = 'python -m cifar_jax.sweep --config=configs/sweeps/x.py --workdir=runs/x'
  (tmp_path / run_dir.SWEEP_FILE).write_text(json.dumps({'command': command, 'varied': ['model.activation']}))
  report.write_report(tmp_path)
  assert list(_csv_rows(tmp_path)[0])[:3] == ['name', 'model.activation', 'optimizer.learning_rate']
  assert f'The runs come from `{command}`.' in (tmp_path / 'results.md').read_text()


def test_report_is_reproducible(mixed_runs):
  report.write_report(mixed_runs)
  first = {name: (mixed_runs / name).read_text() for name in report.TABLE_FILES}
  report.write_report(mixed_runs)
  assert {name: (mixed_runs / name).read_text() for name in report.TABLE_FILES} == first


def test_command_line(mixed_runs, tmp_path, capsys):
  assert report.main(['report', str(mixed_runs)]) == 0
  assert 'results.md' in capsys.readouterr().out
  assert report.main(['report', str(tmp_path / 'missing')]) == 1
  assert 'is not a folder' in capsys.readouterr().err
  empty = tmp_path / 'empty'
  empty.mkdir()
  assert report.main(['report', str(empty)]) == 1
  assert 'holds no run folders' in capsys.readouterr().err
  assert report.main(['report']) == 2


def test_flatten_and_varied_keys():
  assert run_dir.flatten({'a': {'b': [1, 2], 'c': 'x'}, 'd': 1.0}) == {'a.b': (1, 2), 'a.c': 'x', 'd': 1.0}
  configs = [{'a': 1, 'b': 2, 'c': 3}, {'a': 1, 'b': 5}]
  assert report.varied_keys(configs, first=['z']) == ['z', 'b', 'c']
  assert report.format_value((150, 150, 84)) == '(150, 150, 84)' and report.format_value(1e-05) == '1e-05'
  assert report.format_duration(3725.4) == '1:02:05'
