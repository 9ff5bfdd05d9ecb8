"""Sweeps: expansion of variants and grids, strict overrides, skip and resume, failures, the command line."""

import csv
import json
import os
import pathlib
import subprocess
import sys
import types

import ml_collections
from PIL import Image
import pytest

from cifar_jax import sweep as sweep_command
from cifar_jax.study import expansion, report, sweep
from cifar_jax import config_lib
from cifar_jax.training import preemption, probe, run_dir, trainer
from cifar_jax.data import cifar10
from cifar_jax.errors import ConfigError

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
  """Sweep configs name their base configs relative to the repository root."""
  monkeypatch.chdir(REPO)


def _tiny(data_dir, variants, **overrides):
  """The CI smoke sweep (a 32-unit MLP, 256 training images, batch 64) with `variants` instead of its grid."""
  config = config_lib.load_config_file('configs/sweeps/smoke.py')
  config.grid = ml_collections.ConfigDict()
  config.variants = variants
  cli = [f'data.data_dir={data_dir}', *(f'{k}={v}' for k, v in overrides.items())]
  return config, cli


def _sweep(base='configs/tp3/MLP.py', **fields):
  config = config_lib.load_config_file('configs/sweeps/default.py')
  config.base = base
  for key, value in fields.items():
    config[key] = value
  return config


def test_variant_config_is_base_then_shared_overrides_then_its_own_then_set():
  config = _sweep(
      overrides=ml_collections.ConfigDict({'model': {'activation': 'relu6'}, 'num_epochs': 7}),
      variants=[
          {'name': 'tanh', 'overrides': {'model.activation': 'tanh'}},
          {'name': 'shared', 'overrides': {'optimizer': {'learning_rate': 0.5}}},
          {'config': 'configs/tp3/CNN_LeNet-5.py'},
      ],
  )
  tanh, shared, lenet = expansion.expand(config, ['num_epochs=2', 'augment.ops=random_crop,horizontal_flip'])
  assert (tanh.name, tanh.config.model.activation, tanh.config.model.name) == ('tanh', 'tanh', 'mlp')
  assert (shared.config.model.activation, shared.config.optimizer.learning_rate) == ('relu6', 0.5)
  assert (lenet.name, lenet.config.model.name, lenet.source) == ('CNN_LeNet-5', 'lenet5', 'configs/tp3/CNN_LeNet-5.py')
  for variant in (tanh, shared, lenet):
    assert variant.config.num_epochs == 2  # --set wins over everything
    assert variant.config.augment.ops == ('random_crop', 'horizontal_flip')
    assert variant.config.data.val_fraction == 0.2  # the rest comes from the config file


def test_grid_runs_every_point_in_product_order():
  config = _sweep(
      grid=ml_collections.ConfigDict(
          {'optimizer': {'learning_rate': [0.1, 0.2]}, 'model': {'hidden_sizes': [(8,), (16, 8)]}}
      )
  )
  variants = expansion.expand(config)
  assert expansion.grid_size(config) == 4
  assert [v.name for v in variants] == [
      'hidden_sizes=8_learning_rate=0.1',
      'hidden_sizes=8_learning_rate=0.2',
      'hidden_sizes=16-8_learning_rate=0.1',
      'hidden_sizes=16-8_learning_rate=0.2',
  ]
  assert [(v.config.model.hidden_sizes, v.config.optimizer.learning_rate) for v in variants] == [
      ((8,), 0.1),
      ((8,), 0.2),
      ((16, 8), 0.1),
      ((16, 8), 0.2),
  ]
  assert variants[2].overrides == {'model.hidden_sizes': (16, 8), 'optimizer.learning_rate': 0.1}


def test_seeds_run_every_variant_once_per_seed_in_its_own_folder():
  config = _sweep(variants=[{'name': 'a'}, {'name': 'b', 'overrides': {'model.activation': 'tanh'}}], seeds=3)
  runs = expansion.expand(config, ['seed=10'])
  assert [r.name for r in runs] == ['a/seed=10', 'a/seed=11', 'a/seed=12', 'b/seed=10', 'b/seed=11', 'b/seed=12']
  assert [(r.variant, r.seed, r.config.seed) for r in runs[3:]] == [('b', 10, 10), ('b', 11, 11), ('b', 12, 12)]
  assert {r.config.data.split_seed for r in runs} == {0}  # one validation split for every seed and variant
  assert {r.config.model.activation for r in runs[3:]} == {'tanh'}
  config.seeds = 1
  assert [(r.name, r.seed) for r in expansion.expand(config)] == [('a', 0), ('b', 0)]  # one seed: the plain layout
  config.seeds = 0
  with pytest.raises(ConfigError, match='seeds=0 must be a whole number >= 1'):
    expansion.expand(config)


def test_random_draws_from_the_tp3_grid_are_distinct_repeatable_points():
  config = config_lib.load_config_file('configs/sweeps/tp3_hyperparameters.py')
  assert expansion.grid_size(config) == 7 * 7 * 14 * 4 * 7 == 19_208
  grid = expansion.grid_values(config)
  config.num_samples = 10
  drawn = expansion.expand(config)
  assert len({v.name for v in drawn}) == 10
  for variant in drawn:
    assert all(variant.overrides[key] in values for key, values in grid.items())
    assert variant.config.optimizer.learning_rate == variant.overrides['optimizer.learning_rate']
  assert [v.name for v in expansion.expand(config)] == [v.name for v in drawn]
  config.seed = 1
  assert [v.name for v in expansion.expand(config)] != [v.name for v in drawn]
  assert expansion.grid_point(grid, 0) == {key: values[0] for key, values in grid.items()}
  assert expansion.grid_point(grid, 19_207) == {key: values[-1] for key, values in grid.items()}


@pytest.mark.parametrize('where', ['shared', 'variant', 'set'])
def test_an_unknown_key_fails_before_anything_runs_naming_it(where, tmp_path):
  config = _sweep(variants=[{'name': 'a'}])
  cli = []
  if where == 'shared':
    config.overrides = ml_collections.ConfigDict({'optimizer': {'learning_rat': 0.1}})
  elif where == 'variant':
    config.variants = [{'name': 'a', 'overrides': {'optimizer.learning_rat': 0.1}}]
  else:
    cli = ['optimizer.learning_rat=0.1']
  with pytest.raises(ConfigError, match=r"'optimizer.learning_rat'.*did you mean optimizer.learning_rate"):
    sweep.run_sweep(config, tmp_path / 'sweep', cli)
  assert not (tmp_path / 'sweep').exists()


@pytest.mark.parametrize(
    'variants, cli, message',
    [
        ([{'name': 'a'}], ['num_epochs=many'], 'num_epochs=.many. has the wrong type'),
        ([{'name': 'a'}], ['num_epochs'], 'must read key=value'),
        ([{'name': 'a', 'overrides': {'model': 'x'}}], [], 'model is a group of keys'),
        ([{'name': 'a', 'override': {}}], [], r"unknown fields \['override'\]"),
        ([{'name': 'a', 'overrides': {'model.width': 8}}], [], 'model.width is not an option of model .mlp.'),
        (
            [{'name': 'a', 'overrides': {'optimizer.name': 'sgdd'}}],
            [],
            "variant a: optimizer.name='sgdd' is not one of",
        ),
        ([], [], 'exactly one of variants or grid'),
    ],
)
def test_bad_sweeps_fail_before_anything_runs(variants, cli, message, tmp_path):
  with pytest.raises(ConfigError, match=message):
    sweep.run_sweep(_sweep(variants=variants), tmp_path / 'sweep', cli)
  assert not (tmp_path / 'sweep').exists()


def test_names_become_safe_unique_folder_names():
  config = _sweep(
      variants=[
          {'name': '+DA +LRA'},
          {'name': '../up/one'},
          {'name': 'same'},
          {'name': 'same'},
          {'overrides': {'augment.ops': ('random_crop', 'horizontal_flip')}},
          {'name': '...'},
      ]
  )
  assert [v.name for v in expansion.expand(config)] == [
      '+DA_+LRA',
      'up_one',
      'same',
      'same-2',
      'ops=random_crop-horizontal_flip',
      'variant',
  ]


def test_set_values_are_read_by_the_type_of_the_key():
  config = config_lib.load_config_file('configs/tp3/MLP.py')
  assert config_lib.parse_assignment('schedule.name=step', config) == ('schedule.name', 'step')
  assert config_lib.parse_assignment('data.data_dir=123', config) == ('data.data_dir', '123')
  assert config_lib.parse_assignment('optimizer.learning_rate=1e-3', config) == ('optimizer.learning_rate', 1e-3)
  assert config_lib.parse_assignment('model.hidden_sizes=(64, 32)', config) == ('model.hidden_sizes', (64, 32))
  assert config_lib.parse_assignment('augment.ops=', config) == ('augment.ops', ())
  assert config_lib.parse_assignment('data.normalize=False', config) == ('data.normalize', False)


def test_an_interrupted_variant_resumes_and_a_finished_one_is_skipped(tmp_path, cifar10_dir, monkeypatch, capsys):
  config, cli = _tiny(cifar10_dir, [{'name': 'a', 'overrides': {'model.activation': 'tanh'}}], num_epochs=2)
  workdir = tmp_path / 'sweep'
  original_epoch = trainer.Trainer._train_epoch

  def stop_after_one_epoch(self):
    original_epoch(self)
    raise preemption.Stopped('SIGINT received: checkpoint written')  # what Ctrl-C does inside training

  monkeypatch.setattr(trainer.Trainer, '_train_epoch', stop_after_one_epoch)
  with pytest.raises(preemption.Stopped):
    sweep.run_sweep(config, workdir, cli)
  state = json.loads((workdir / run_dir.SWEEP_FILE).read_text())
  assert [v['status'] for v in state['variants']] == ['interrupted']
  assert not (workdir / 'a' / 'summary.json').exists()

  monkeypatch.setattr(trainer.Trainer, '_train_epoch', original_epoch)
  trained = []
  original_train = trainer.train_and_evaluate

  def spy(config, workdir, **kwargs):
    trained.append(workdir.name)
    return original_train(config, workdir, **kwargs)

  monkeypatch.setattr(trainer, 'train_and_evaluate', spy)
  capsys.readouterr()
  assert [r['status'] for r in sweep.run_sweep(config, workdir, cli)] == ['completed']
  out = capsys.readouterr().out
  assert trained == ['a'] and 'Resuming' in out and '[1/1] a: completed' in out
  assert '1 of 1 run completed.' in out  # the count's noun in the singular
  summary = (workdir / 'a' / 'summary.json').read_text()
  assert (json.loads(summary)['epochs'], json.loads(summary)['steps']) == (2, 8)  # 256 images // 64, twice

  assert [r['status'] for r in sweep.run_sweep(config, workdir, cli)] == ['completed']
  assert trained == ['a'] and '[1/1] a: finished earlier, skipped' in capsys.readouterr().out
  assert (workdir / 'a' / 'summary.json').read_text() == summary
  assert (workdir / 'results.md').exists()


def test_a_failing_variant_is_recorded_and_the_sweep_goes_on(tmp_path, cifar10_dir, capsys):
  config, cli = _tiny(
      cifar10_dir,
      [
          {'name': 'diverges', 'overrides': {'optimizer.learning_rate': 1e30}},
          {'name': 'too_big', 'overrides': {'batch_size': 512}},
          {'name': 'fine'},
      ],
  )
  workdir = tmp_path / 'sweep'
  records = sweep.run_sweep(config, workdir, cli)
  assert [r['status'] for r in records] == ['failed', 'failed', 'completed']
  assert 'non-finite' in records[0]['error'] and 'larger than the 256 training images' in records[1]['error']
  out = capsys.readouterr().out
  assert '[1/3] diverges: FAILED' in out and '[3/3] fine: completed' in out
  state = json.loads((workdir / run_dir.SWEEP_FILE).read_text())
  assert state['variants'] == records and state['varied'] == ['optimizer.learning_rate', 'batch_size']
  for name, record in zip(('diverges', 'too_big'), records):
    summary = json.loads((workdir / name / 'summary.json').read_text())
    assert (summary['status'], summary['error']) == ('failed', record['error'])
  rows = (workdir / 'results.csv').read_text().splitlines()
  assert rows[1].startswith('fine,') and len(rows) == 4
  assert f'| failed: {records[1]["error"]} |' in (workdir / 'results.md').read_text()


def test_a_seeded_smoke_sweep_reports_each_variant_over_its_seeds_on_one_validation_split(
    tmp_path, cifar10_dir, monkeypatch, capsys
):
  config = config_lib.load_config_file('configs/sweeps/smoke.py')
  config.seeds = 2
  split_seeds = []
  original_load = cifar10.load

  def spy(*args, **kwargs):
    split_seeds.append(kwargs['seed'])
    return original_load(*args, **kwargs)

  monkeypatch.setattr(cifar10, 'load', spy)
  workdir = tmp_path / 'smoke'
  records = sweep.run_sweep(config, workdir, [f'data.data_dir={cifar10_dir}'])
  names = ['learning_rate=0.01', 'learning_rate=0.05']
  assert [(r['name'], r['seed'], r['status']) for r in records] == [
      (f'{name}/seed={seed}', seed, 'completed') for name in names for seed in (0, 1)
  ]
  assert split_seeds == [0] * 4  # the run seed changes, the validation images do not
  assert 'Sweep of 2 variants x 2 seeds = 4 runs' in capsys.readouterr().out
  seeds = {json.loads((workdir / r['name'] / 'config.json').read_text())['seed'] for r in records}
  assert seeds == {0, 1}
  with (workdir / 'aggregates.csv').open() as f:
    rows = list(csv.DictReader(f))
  assert sorted(row['variant'] for row in rows) == names
  assert {(row['n'], row['val_examples'], row['test_examples']) for row in rows} == {('2', '128', '128')}
  assert len((workdir / 'results.csv').read_text().splitlines()) == 5  # a header and one row per run
  assert 'mean ± std over the n seeds' in (workdir / 'results.md').read_text()

  sweep.run_sweep(config, workdir, [f'data.data_dir={cifar10_dir}'])
  assert 'learning_rate=0.05/seed=1: finished earlier, skipped' in capsys.readouterr().out


def _cli(module, *args):
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  return subprocess.run(
      [sys.executable, '-m', module, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
  )


def test_command_line_sweep_end_to_end_and_the_report_reproduces_its_table(tmp_path, cifar10_dir):
  workdir = tmp_path / 'smoke'
  result = _cli(
      'cifar_jax.sweep',
      '--config=configs/sweeps/smoke.py',
      f'--workdir={workdir}',
      f'--set=data.data_dir={cifar10_dir}',
  )
  assert result.returncode == 0, result.stderr[-3000:]
  names = ['learning_rate=0.01', 'learning_rate=0.05']
  assert '[2/2] learning_rate=0.05: completed' in result.stdout
  tables = {name: (workdir / name).read_text() for name in report.TABLE_FILES}
  assert all(f'| {name} | ' in tables['results.md'] for name in names)
  assert sorted(line.split(',')[0] for line in tables['results.csv'].splitlines()[1:]) == names
  for plot in ('val_accuracy.png', 'accuracy_by_variant.png'):
    with Image.open(workdir / plot) as image:
      assert sorted(json.loads(image.text['Description'])) == names

  for name in (*report.TABLE_FILES, *report.PLOT_FILES):
    (workdir / name).unlink()
  result = _cli('cifar_jax.report', str(workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  assert {name: (workdir / name).read_text() for name in report.TABLE_FILES} == tables
  assert all((workdir / name).exists() for name in report.PLOT_FILES)


def test_command_line_names_an_unknown_key_and_runs_nothing(tmp_path):
  result = _cli(
      'cifar_jax.sweep',
      '--config=configs/sweeps/smoke.py',
      f'--workdir={tmp_path / "x"}',
      '--set=optimizer.momentom=0.5',
  )
  assert result.returncode == 1
  assert "unknown config key 'optimizer.momentom'" in result.stderr and 'Traceback' not in result.stderr
  assert not (tmp_path / 'x').exists()


def test_a_vectorized_sweep_writes_the_folders_and_results_of_a_sequential_one(tmp_path, cifar10_dir, capsys):
  """vectorize=on with max_members=3 on 2 learning rates x 2 seeds: one group of 3 and the 4th alone; every
  folder holds what the sequential sweep's does, with the same numbers to float32 rounding (rel 1e-4)."""
  config = config_lib.load_config_file('configs/sweeps/smoke.py')
  config.seeds = 2
  cli = [f'data.data_dir={cifar10_dir}', 'data.pipeline=device']
  sequential = sweep.run_sweep(config, tmp_path / 'off', cli)
  config.vectorize, config.max_members = 'on', 3
  vectorized = sweep.run_sweep(config, tmp_path / 'auto', cli)
  assert (
      '3 runs as one vectorized group: learning_rate=0.01/seed=0, learning_rate=0.01/seed=1, '
      'learning_rate=0.05/seed=0' in capsys.readouterr().out
  )
  assert vectorized == sequential
  for record in vectorized:
    off, auto = tmp_path / 'off' / record['name'], tmp_path / 'auto' / record['name']
    assert sorted(p.name for p in auto.iterdir()) == sorted(p.name for p in off.iterdir())
    assert run_dir.read_json(auto / 'config.json') == run_dir.read_json(off / 'config.json')
    timing = ('wall_seconds', 'steady_images_per_second')
    want = {k: v for k, v in run_dir.read_json(off / 'summary.json').items() if k not in timing}
    got = {k: v for k, v in run_dir.read_json(auto / 'summary.json').items() if k not in timing}
    assert got.keys() == want.keys()
    for key, value in want.items():
      assert got[key] == (pytest.approx(value, rel=1e-4, abs=1e-6) if isinstance(value, float) else value), key
  assert (tmp_path / 'auto' / 'results.csv').read_text().splitlines()[0] == (
      tmp_path / 'off' / 'results.csv'
  ).read_text().splitlines()[0]
  sweep.run_sweep(config, tmp_path / 'auto', cli)
  assert capsys.readouterr().out.count('finished earlier, skipped') == 4


@pytest.mark.parametrize(('signal_name', 'status'), [('SIGINT', 130), ('SIGTERM', 143)])
def test_a_stopped_sweep_exits_with_the_signal_status_and_no_error_prefix(monkeypatch, capsys, signal_name, status):
  def stopped(*args, **kwargs):
    raise preemption.Stopped(f'{signal_name} received: checkpoint written', signal_name)

  monkeypatch.setattr(sweep, 'run_sweep', stopped)  # the command imports it when it runs
  monkeypatch.setattr(expansion, 'check_configs', lambda *args: None)  # no sweep config to check
  flags = {'config': None, 'workdir': 'unused', 'assignments': [], 'allow_config_change': False}
  cli = types.SimpleNamespace(**{name: types.SimpleNamespace(value=value) for name, value in flags.items()})
  with pytest.raises(SystemExit) as exited:
    sweep_command.main(['sweep'], cli)
  assert exited.value.code == status  # 128 + the signal's number, as the shell reports a process it stopped
  assert capsys.readouterr().err == f'{signal_name} received: checkpoint written\n'


@pytest.mark.parametrize(
    ('group_seconds', 'batches', 'printed'),
    [  # 100 steps left; one member alone 0.25 s per step, 2 members one by one 50 s, nothing to compile either way
        (1.0, [[0, 1], [2, 3]], '= 25.0 s: one group'),
        (3.0, [[0], [1], [2], [3]], '= 75.0 s: one by one'),
    ],
)
def test_vectorize_auto_groups_only_where_the_probe_says_it_pays_off(
    tmp_path, cifar10_dir, monkeypatch, capsys, group_seconds, batches, printed
):
  config = config_lib.load_config_file('configs/sweeps/smoke.py')
  config.seeds, config.vectorize, config.max_members = 2, 'auto', 2
  variants = expansion.expand(config, [f'data.data_dir={cifar10_dir}', 'data.pipeline=device'])
  probed = []

  def fake_probe(configs, start_step):
    probed.append(([c.seed for c in configs], start_step))
    group = probe.Timing(first=group_seconds, call=group_seconds)
    return probe.Probe(len(configs), 4, 100, 0, 0, probe.Timing(first=1.0, call=1.0), group)

  monkeypatch.setattr(probe, 'probe', fake_probe)
  assert sweep._run_groups(config, variants, tmp_path) == batches  # pylint: disable=protected-access
  assert probed == [([0, 1], 0), ([0, 1], 0)]  # each learning rate's two seeds, probed once, from the start
  assert capsys.readouterr().out.count(printed) == 2


def test_vectorize_auto_probes_resumed_runs_for_the_steps_they_have_left(tmp_path, cifar10_dir, monkeypatch):
  config = config_lib.load_config_file('configs/sweeps/smoke.py')
  config.seeds, config.vectorize, config.max_members = 2, 'auto', 2
  variants = expansion.expand(config, [f'data.data_dir={cifar10_dir}', 'data.pipeline=device'])
  for v in variants[:2]:  # the first learning rate's two seeds stopped after a checkpoint at step 2
    (tmp_path / v.name / run_dir.CHECKPOINTS_DIR / 'latest' / '2').mkdir(parents=True)
  probed = []

  def fake_probe(configs, start_step):
    probed.append(([c.seed for c in configs], start_step))
    return probe.Probe(len(configs), 4, 1, 0, 0, probe.Timing(first=1.0, call=1.0))

  monkeypatch.setattr(probe, 'probe', fake_probe)
  assert sweep._run_groups(config, variants, tmp_path) == [[0], [1], [2], [3]]  # pylint: disable=protected-access
  assert probed == [([0, 1], 2), ([0, 1], 0)]
