"""The published results survive a fresh clone: docs/results.md is regenerated from the committed records, a row is
replaced only by runs at least as complete, and --quick never reaches the published page."""

import pathlib
import shutil

import pytest

from cifar_jax.errors import UserError
from cifar_jax.reproduce import chain, plan, records
from cifar_jax.training import run_dir

import helpers

DOCS = helpers.REPO / 'docs'


def _published_copy(tmp_path: pathlib.Path) -> pathlib.Path:
  """docs/results.md and its records, as a fresh clone has them, in `tmp_path` (no run folder anywhere)."""
  page = tmp_path / 'docs' / 'results.md'
  page.parent.mkdir()
  shutil.copy(DOCS / 'results.md', page)
  for record in DOCS.glob(f'results/*/{records.RECORD_FILE}'):
    (page.parent / 'results' / record.parent.name).mkdir(parents=True)
    shutil.copy(record, page.parent / 'results' / record.parent.name / records.RECORD_FILE)
  return page


def _generated(text: str) -> list[str]:
  """The lines between the generated markers."""
  return [line for block in text.split('<!-- generated:')[1:] for line in block.split('end -->')[0].splitlines()]


def test_a_fresh_clone_regenerates_the_published_page_with_every_measured_row(tmp_path, capsys):
  page = _published_copy(tmp_path)
  chain.write_docs(page, plan.Options(tmp_path / 'no_runs'), {})
  assert _generated(page.read_text()) == _generated((DOCS / 'results.md').read_text())
  out = capsys.readouterr().out
  assert 'tp3_dense: 7 of 7 variants measured before, 7 after' in out
  assert 'tp3_cnn: 2 of 4 variants measured before, 2 after' in out
  # The published rows come from the records (the 5-seed dense study and the two small CNNs), not from runs here.
  rows = [line for line in page.read_text().splitlines() if line.startswith(('| MLP |', '| CNN_LeNet-5 |'))]
  # Each accuracy with its 95 % interval: t over the 5 seeds (MLP: 49.06 ± 2.776 * 0.89 / sqrt(5)), Wilson on the
  # 10,000 validation or test images for one run (tests/test_results_page.py checks both against scipy).
  assert rows == [
      '| MLP |  | 49.06 ± 0.89 % [47.95, 50.17] (t, n=5) | 48.79 ± 0.60 % [48.05, 49.53] (t, n=5) '
      '| 50.95 ± 0.25 % [50.63, 51.26] (t, n=5), epoch 8, 8, 9, 15, 9 | 25 | 0:00:46 |',
      '| CNN_LeNet-5 |  | 59.90 % [58.94, 60.86] (Wilson, n=1 on 10,000 images) '
      '| 59.80 % [58.84, 60.76] (Wilson, n=1 on 10,000 images) '
      '| 62.48 % [61.53, 63.42] (Wilson, n=1 on 10,000 images), epoch 12 | 25 | 0:08:14 |',
  ]
  assert '/work/' not in page.read_text()  # no machine path in a published command


def test_quick_runs_never_go_into_the_published_page(monkeypatch, tmp_path):
  page = _published_copy(tmp_path)
  monkeypatch.chdir(tmp_path)
  before = page.read_text()
  with pytest.raises(UserError, match='--quick runs mean nothing'):
    chain.write_docs(pathlib.Path('docs/results.md'), plan.Options(tmp_path / 'runs', quick=True), {})
  assert page.read_text() == before


def _run(name, epochs, accuracy, max_train=-1, seed=0):
  config = {'seed': seed, 'num_epochs': epochs, 'data.max_train_examples': max_train, 'data.max_eval_examples': -1}
  results = {'val_accuracy': accuracy, 'epochs': epochs, 'wall_seconds': 1.0, 'val_examples': 100}
  return records.RecordedRun(name, config, results)


def _entry(*runs, source='here'):
  return records.Entry(list(runs), 'cmd', 'CPU, 2 cores', source)


@pytest.mark.parametrize(
    ('measured', 'replaced'),
    [
        (_entry(_run('a/seed=0', 25, 0.6), _run('a/seed=1', 25, 0.6, seed=1)), True),  # as many runs: newer wins
        (_entry(_run('a/seed=0', 25, 0.6), _run('a/seed=1', 25, 0.6, seed=1), _run('a/seed=2', 25, 0.6)), True),
        (_entry(_run('a/seed=0', 25, 0.6)), False),  # fewer runs
        (_entry(_run('a/seed=0', 1, 0.6), _run('a/seed=1', 1, 0.6, seed=1)), False),  # fewer epochs
        (_entry(_run('a/seed=0', 25, 0.6, 256), _run('a/seed=1', 25, 0.6, 256, seed=1)), False),  # a data slice
    ],
)
def test_a_recorded_variant_is_replaced_only_by_runs_at_least_as_complete(measured, replaced):
  recorded = {'a': _entry(_run('a/seed=0', 25, 0.5), _run('a/seed=1', 25, 0.5, seed=1), source='record')}
  merged, changes = records.merge(recorded, {'a': measured}, ['a'])
  assert merged['a'] is (measured if replaced else recorded['a'])
  assert len(changes) == 1 and ('kept' in changes[0]) != replaced


def test_runs_on_this_machine_fill_an_unmeasured_row_and_the_change_is_printed(tmp_path, capsys):
  page = _published_copy(tmp_path)
  study = tmp_path / 'runs' / 'tp3_cnn' / 'CNN_VGG16'
  study.mkdir(parents=True)
  run_dir.write_json(study / run_dir.CONFIG_FILE, {'seed': 0, 'num_epochs': 25, 'data': {'max_train_examples': -1}})
  summary = {'status': 'completed', 'val_accuracy': 0.8, 'test_accuracy': 0.79, 'epochs': 25, 'wall_seconds': 60.0}
  run_dir.write_json(study / run_dir.SUMMARY_FILE, {**summary, 'val_examples': 10000, 'test_examples': 10000})
  chain.write_docs(page, plan.Options(tmp_path / 'runs'), {})
  out = capsys.readouterr().out
  assert 'tp3_cnn: 2 of 4 variants measured before, 3 after' in out
  assert 'CNN_VGG16: not measured -> n=1, 25 epochs' in out
  row = next(line for line in page.read_text().splitlines() if line.startswith('| CNN_VGG16 |'))
  assert '| 80.00 % [' in row and '(Wilson, n=1 on 10,000 images)' in row
  assert '| CNN_LeNet-5 |  | 59.90 % [' in page.read_text()  # the recorded rows stay
  assert set(records.load(page.parent / 'results' / 'tp3_cnn')) == {'cnn_lessvalues', 'CNN_LeNet-5', 'CNN_VGG16'}
  assert '3 of 4 variants measured.' in page.read_text()
