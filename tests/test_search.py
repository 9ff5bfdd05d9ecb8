"""Searches on the sweep's Optuna study: TPE samples points of the grid; a pruner stops runs recorded as pruned."""

import csv
import json
import pathlib

import ml_collections
import optuna
import pytest
from PIL import Image
from optuna.trial import TrialState

from cifar_jax import config_lib
from cifar_jax.study import expansion, queue, sweep
from cifar_jax.errors import ConfigError

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
  monkeypatch.chdir(REPO)


def _smoke(grid, **fields):
  config = config_lib.load_config_file('configs/sweeps/smoke.py')
  config.grid = ml_collections.ConfigDict(grid)
  for key, value in fields.items():
    config[key] = value
  return config


def _study(workdir: pathlib.Path) -> optuna.Study:
  storage = optuna.storages.JournalStorage(
      optuna.storages.journal.JournalFileBackend(str(workdir / queue.JOURNAL_FILE))
  )
  return optuna.load_study(study_name=f'sweep-{workdir.name}', storage=storage)


def test_tpe_samples_num_samples_points_of_the_grid_and_stops(tmp_path, cifar10_dir, capsys):
  grid = {'optimizer': {'learning_rate': [0.001, 0.01, 0.05, 0.1], 'momentum': [0.0, 0.9]}}
  config = _smoke(grid, search='tpe', num_samples=3, seed=4)
  workdir = tmp_path / 'tpe'
  records = sweep.run_sweep(config, workdir, [f'data.data_dir={cifar10_dir}'])
  assert 'TPE search of 3 points of a grid of 8' in capsys.readouterr().out
  assert len(records) == 3 and {r['status'] for r in records} == {'completed'}
  trials = _study(workdir).trials
  assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
  for record, trial in zip(records, trials):  # each run is the point its trial sampled, valued by its accuracy
    assert record['overrides'] == trial.params == trial.user_attrs[queue.POINT]
    assert record['name'] == expansion.name_from_values(trial.params)
    summary = json.loads((workdir / record['name'] / 'summary.json').read_text())
    assert trial.value == summary['val_accuracy']
  assert len((workdir / 'results.csv').read_text().splitlines()) == 4

  assert sweep.run_sweep(config, workdir, [f'data.data_dir={cifar10_dir}']) == records  # the budget is spent
  assert len(_study(workdir).trials) == 3


@pytest.mark.parametrize(
    'fields, message',
    [
        ({'search': 'bayes'}, "search='bayes'"),
        ({'pruner': 'asha'}, "pruner='asha'"),
        ({'search': 'tpe', 'num_samples': 0}, 'samples num_samples >= 1 points of a grid'),
        ({'search': 'tpe', 'num_samples': 2, 'seeds': 2}, 'seeds=2 must be 1'),
        ({'pruner': 'median', 'vectorize': 'on'}, "vectorize='on' must be 'off'"),
    ],
)
def test_a_search_the_sweep_cannot_have_is_refused(fields, message):
  config = _smoke({'optimizer': {'learning_rate': [0.01, 0.05]}}, **fields)
  with pytest.raises(ConfigError, match=message):
    expansion.expand(config)


def test_tpe_needs_numbers_or_text_in_the_grid():
  config = _smoke({'model': {'hidden_sizes': [(8,), (16,)]}}, search='tpe', num_samples=2)
  with pytest.raises(ConfigError, match='grid.model.hidden_sizes'):
    expansion.expand(config)


def test_a_pruned_run_is_pruned_in_every_output(tmp_path, cifar10_dir):
  # The first run learns (learning rate 0.05, 1,024 images, two epochs); the second cannot (learning rate 1e-6), so
  # after its first epoch the median pruner, which compares it with the first from the start, stops it.
  grid = {'optimizer': {'learning_rate': [0.05, 1e-6]}}
  config = _smoke(grid, pruner='median', pruner_startup_trials=1)
  workdir = tmp_path / 'pruned'
  cli = [f'data.data_dir={cifar10_dir}', 'num_epochs=2', 'data.max_train_examples=1024']
  records = sweep.run_sweep(config, workdir, cli)
  good, bad = 'learning_rate=0.05', 'learning_rate=1e-06'
  assert [(r['name'], r['status']) for r in records] == [(good, 'completed'), (bad, 'pruned')]
  assert records[1]['pruned_at_epoch'] == 1 and 'error' not in records[1]
  summary = json.loads((workdir / bad / 'summary.json').read_text())
  assert (summary['status'], summary['epochs'], summary['test_accuracy']) == ('pruned', 1, None)
  with (workdir / 'results.csv').open() as f:
    assert {row['name']: row['status'] for row in csv.DictReader(f)} == {good: 'completed', bad: 'pruned'}
  markdown = (workdir / 'results.md').read_text()
  assert f'| {bad} |' in markdown and '| pruned at epoch 1 |' in markdown and 'failed' not in markdown
  with Image.open(workdir / 'val_accuracy.png') as image:
    assert bad in json.loads(image.text['Description']) and 'x: pruned there' in image.text['Title']
  assert [t.state for t in _study(workdir).trials] == [TrialState.COMPLETE, TrialState.PRUNED]
  assert _study(workdir).trials[1].intermediate_values.keys() == {1}

  again = sweep.run_sweep(config, workdir, cli)  # a pruned run is finished: skipped, not resumed
  assert [r['status'] for r in again] == ['completed', 'pruned']
  assert json.loads((workdir / bad / 'summary.json').read_text()) == summary
