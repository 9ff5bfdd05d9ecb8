"""The training loop end to end on a small slice of CIFAR-10: outputs, resume, pmap, bad input."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

import helpers
from cifar_jax.training import run_book, trainer
from cifar_jax.errors import ConfigError, DataError, UserError
from configs import default


def _tiny_resnet(data_dir, **overrides):
  """A width-4 ResNet with one block a stage (it has BatchNorm, unlike the MLP), 2 epochs of 8 steps."""
  config = helpers.override(
      default.get_config(),
      **{
          'data.data_dir': str(data_dir),
          'data.max_train_examples': 512,
          'data.max_eval_examples': 256,
          'data.val_fraction': 0.1,
          'batch_size': 64,
          'eval_batch_size': 128,
          'num_epochs': 2,
          'log_every_steps': 4,
          'model.width': 4,
          'model.stage_sizes': (1, 1, 1, 1),
      },
  )
  return helpers.override(config, **overrides)


def test_command_line_run_writes_every_output(tmp_path, cifar10_dir):
  workdir = tmp_path / 'run'
  result = helpers.run_cli(
      '--config=configs/mlp.py',
      f'--workdir={workdir}',
      f'--config.data.data_dir={cifar10_dir}',
      '--config.data.max_train_examples=512',
      '--config.data.max_eval_examples=256',
      '--config.data.val_fraction=0.1',
      '--config.num_epochs=2',
      '--config.batch_size=64',
      '--config.log_every_steps=2',
      '--config.optimizer.learning_rate=0.05',
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'step 2/16' in result.stdout and 'img/s' in result.stdout and 'left' in result.stdout
  summary = json.loads((workdir / 'summary.json').read_text())
  for key in (
      'params',
      'steps',
      'epochs',
      'train_accuracy',
      'val_accuracy',
      'best_val_accuracy',
      'test_accuracy',
      'test_loss',
      'wall_seconds',
      'steady_images_per_second',
  ):
    assert summary[key] is not None, key
  assert summary['steps'] == 16 and summary['epochs'] == 2  # 512 training images // 64, twice
  assert (summary['val_examples'], summary['test_examples']) == (256, 256)  # both capped by max_eval_examples
  assert summary['params'] == 3072 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10
  assert summary['test_accuracy'] > 0.1  # better than chance after two epochs
  config = json.loads((workdir / 'config.json').read_text())
  assert config['model']['name'] == 'mlp' and config['optimizer']['learning_rate'] == 0.05
  lines = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  kinds = [line['kind'] for line in lines]
  assert kinds.count('val') == 2 and kinds.count('test') == 1
  train_line = next(line for line in lines if line['kind'] == 'train')
  assert {'epoch', 'step', 'loss', 'accuracy', 'learning_rate', 'images_per_second'} <= set(train_line)
  assert (workdir / 'curves.png').stat().st_size > 1000
  assert any((workdir / 'tensorboard').iterdir())
  assert sorted(p.name for p in (workdir / 'checkpoints' / 'latest').iterdir() if p.name.isdigit()) == ['16', '8']
  assert any(p.name.isdigit() for p in (workdir / 'checkpoints' / 'best').iterdir())


def test_resumed_run_ends_with_exactly_the_uninterrupted_parameters(tmp_path, cifar10_dir):
  whole = trainer.train_and_evaluate(_tiny_resnet(cifar10_dir), tmp_path / 'whole')
  # Interrupted mid-epoch (step 3 of 8), then the same command again.
  trainer.train_and_evaluate(_tiny_resnet(cifar10_dir, num_train_steps=3), tmp_path / 'resumed')
  assert helpers.checkpoint_steps(tmp_path / 'resumed') == [3]
  resumed = trainer.train_and_evaluate(_tiny_resnet(cifar10_dir), tmp_path / 'resumed')
  helpers.assert_same_params(tmp_path / 'whole', tmp_path / 'resumed')
  assert helpers.metric_lines(tmp_path / 'whole') == helpers.metric_lines(tmp_path / 'resumed')
  for key in ('steps', 'epochs', 'test_accuracy', 'test_loss', 'val_accuracy', 'train_loss', 'train_accuracy'):
    assert resumed[key] == whole[key], key


def test_pmap_run_matches_jit_run(tmp_path, cifar10_dir):
  jit = trainer.train_and_evaluate(_tiny_resnet(cifar10_dir, num_epochs=1), tmp_path / 'jit')
  pmap = trainer.train_and_evaluate(_tiny_resnet(cifar10_dir, num_epochs=1, parallelism='pmap'), tmp_path / 'pmap')
  assert pmap['test_loss'] == pytest.approx(jit['test_loss'], rel=1e-4)
  assert pmap['train_loss'] == pytest.approx(jit['train_loss'], rel=1e-4)


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, cifar10_dir):
  """A StepLR whose second epoch multiplies the learning rate by 1e38: epoch 1 is fine, epoch 2 explodes."""
  workdir = tmp_path / 'run'
  config = helpers.tiny_config(
      cifar10_dir, log_every_steps=4, **{'schedule.name': 'step', 'schedule.step_epochs': 1, 'schedule.gamma': 1e38}
  )
  with pytest.raises(run_book.TrainingDiverged, match='between steps 8 and 12'):
    trainer.train_and_evaluate(config, workdir)
  assert helpers.checkpoint_steps(workdir) == [8]  # the end of the good first epoch
  assert all(np.isfinite(p).all() for p in jax.tree.leaves(helpers.latest_params(workdir)))
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['status'] == 'failed' and 'step 8' in summary['error']


@pytest.mark.parametrize(
    'key, value, message',
    [
        ('model.name', 'resnet50', 'model.name'),
        ('model.activation', 'swish2', 'model.activation'),
        ('optimizer.name', 'lion', 'optimizer.name'),
        ('schedule.name', 'cyclic', 'schedule.name'),
        ('augment.ops', ('random_crop', 'mixup'), 'augment.ops'),
        ('data.pipeline', 'dali', 'data.pipeline'),
        ('parallelism', 'fsdp', 'parallelism'),
        ('dtype', 'float16', 'dtype'),
        ('batch_size', 66, 'batch_size'),
        ('data.val_fraction', 1.0, 'data.val_fraction'),
        ('batch_size', 0, 'batch_size'),
        ('optimizer.learning_rate', 0.0, 'optimizer.learning_rate'),
        ('model.dropout', 1.0, 'model.dropout'),
        ('data.val_fraction', -0.1, 'data.val_fraction'),
        ('num_epochs', -1, 'num_epochs'),
    ],
)
def test_bad_config_values_are_refused_before_anything_runs(tmp_path, key, value, message):
  config = helpers.tiny_config(tmp_path / 'nowhere', **{key: value})
  with pytest.raises(ConfigError, match=message):
    trainer.train_and_evaluate(config, tmp_path / 'run')
  assert not (tmp_path / 'run' / 'checkpoints').exists()


def test_missing_data_folder_says_where_it_looked(tmp_path):
  config = helpers.tiny_config(tmp_path / 'no_such_folder', **{'data.source': 'files'})
  with pytest.raises(DataError, match='no_such_folder'):
    trainer.train_and_evaluate(config, tmp_path / 'run')


def test_unwritable_workdir_is_refused(tmp_path, cifar10_dir):
  blocker = tmp_path / 'file'
  blocker.write_text('not a folder')
  with pytest.raises(UserError, match='cannot write to workdir'):
    trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir), blocker / 'run')


def test_command_line_reports_user_errors_in_one_line_without_traceback(tmp_path):
  result = helpers.run_cli('--config=configs/mlp.py', f'--workdir={tmp_path / "run"}', '--config.optimizer.name=lion')
  assert result.returncode == 1
  assert 'error: optimizer.name=' in result.stderr and 'sgd' in result.stderr
  assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('pipeline, parallelism', [('device', 'jit'), ('device', 'pmap'), ('tfdata', 'jit')])
def test_nothing_compiles_after_the_first_epoch(tmp_path, cifar10_dir, pipeline, parallelism):
  """Steps compile once per shape: every XLA compilation of a 3-epoch run happens in its first epoch."""
  config = helpers.tiny_config(
      cifar10_dir,
      parallelism=parallelism,
      log_every_steps=4,
      **{'data.pipeline': pipeline, 'augment.ops': ('random_crop', 'horizontal_flip', 'random_erasing')},
  )
  run = trainer.Trainer(config, tmp_path / 'run')
  compiled_at_step = []

  def on_event(event: str, duration: float, **kwargs) -> None:
    del duration, kwargs
    if event == '/jax/core/compile/backend_compile_duration':
      compiled_at_step.append(run.step)

  jax.monitoring.register_event_duration_secs_listener(on_event)
  try:
    summary = run.run()
  finally:
    jax.monitoring.unregister_event_duration_listener(on_event)
  assert summary['steps'] == 24 and np.isfinite(summary['test_loss'])
  assert compiled_at_step and max(compiled_at_step) <= run.exp.steps_per_epoch, compiled_at_step


def test_device_pipeline_resumes_mid_epoch_exactly(tmp_path, cifar10_dir):
  device = {'data.pipeline': 'device', 'log_every_steps': 4}
  trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir, num_epochs=2, **device), tmp_path / 'whole')
  trainer.train_and_evaluate(
      helpers.tiny_config(cifar10_dir, num_epochs=2, num_train_steps=5, **device), tmp_path / 'resumed'
  )
  trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir, num_epochs=2, **device), tmp_path / 'resumed')
  helpers.assert_same_params(tmp_path / 'whole', tmp_path / 'resumed')
  assert helpers.metric_lines(tmp_path / 'whole') == helpers.metric_lines(tmp_path / 'resumed')


def _run_without(modules, tmp_path, cifar10_dir, runs=1):
  """Trains `runs` runs one after another in one fresh interpreter where importing `modules` fails (as where they
  are not installed), with the device pipeline; the run folders and the interpreter's stderr."""
  workdirs = [tmp_path / f'run{k}' for k in range(runs)]
  code = (
      f'import sys; sys.modules.update(dict.fromkeys({modules!r})); '
      'from cifar_jax.training import trainer; from tests import helpers; '
      f'config = helpers.tiny_config({str(cifar10_dir)!r}, num_epochs=1, **{{"data.pipeline": "device"}}); '
      '[trainer.train_and_evaluate(config, workdir) for workdir in sys.argv[1:]]'
  )
  result = subprocess.run(
      [sys.executable, '-c', code, *map(str, workdirs)],
      cwd=helpers.REPO,
      env=helpers.cli_env(),
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  for workdir in workdirs:
    assert helpers.summary(workdir)['status'] == 'completed' and (workdir / 'metrics.jsonl').exists()
  return workdirs, result.stderr


def test_device_pipeline_writes_tensorboard_events_where_tensorflow_is_not_installed(tmp_path, cifar10_dir):
  """The GPU image's case: the tensorboard package without TensorFlow. The events hold what metrics.jsonl holds."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=import-outside-toplevel

  (workdir,), stderr = _run_without(['tensorflow'], tmp_path, cifar10_dir)
  assert 'TensorBoard files are off' not in stderr
  events = event_accumulator.EventAccumulator(str(workdir / 'tensorboard'))
  events.Reload()
  lines = [line for line in helpers.metric_lines(workdir) if line['kind'] == 'train']
  written = events.Scalars('train/loss')
  assert [(e.step, e.value) for e in written] == [(line['step'], pytest.approx(line['loss'])) for line in lines]
  assert {'train/accuracy', 'val/accuracy', 'test/accuracy', 'test/loss'} <= set(events.Tags()['scalars'])


def test_without_tensorflow_and_tensorboard_the_event_files_are_off_said_once_per_process(tmp_path, cifar10_dir):
  workdirs, stderr = _run_without(['tensorflow', 'tensorboard'], tmp_path, cifar10_dir, runs=2)
  assert stderr.count('TensorBoard files are off') == 1
  assert not any((w / 'tensorboard').exists() for w in workdirs)


def test_console_says_what_the_run_is_and_how_it_goes(tmp_path, cifar10_dir, capsys):
  """A run capped at 13 steps of 8 an epoch: the banner, a line right after the first (compiling) step, the real
  epoch total, one validation line per finished epoch, and the fractional epochs in summary.json."""
  config = helpers.tiny_config(cifar10_dir, log_every_steps=4, num_train_steps=13)
  summary = trainer.train_and_evaluate(config, tmp_path / 'run')
  out = capsys.readouterr().out
  banner = [
      'model mlp: 98,666 parameters',  # 3072 * 32 + 32 + 32 * 10 + 10
      'data: 256 train / 128 val / 128 test images; tfdata pipeline',
      'batch 32: 8 steps per epoch, 2 epochs, 13 steps in total',
      'compiling the train step',
  ]
  assert f'{jax.device_count()} x ' in out and all(line in out for line in banner), out
  lines = out.splitlines()
  progress = [line for line in lines if line.startswith('step ')]
  assert [line.split()[1] for line in progress] == ['1/13', '4/13', '8/13', '12/13']
  assert 'first step done' in progress[0] and all('epoch 1/2' in line for line in progress[:3])
  assert all('left ' in line for line in progress[1:])
  epochs = [line for line in lines if line.startswith('epoch ')]
  assert len(epochs) == 1 and epochs[0].startswith('epoch 1/2: train loss ') and '(best ' in epochs[0]
  assert f'val loss {summary["val_loss"]:.4f} acc {100 * summary["val_accuracy"]:.2f}%' in epochs[0]
  assert summary['epochs'] == pytest.approx(13 / 8, abs=0.005) and summary['best_note'] is None


def test_without_a_validation_split_the_run_says_why_best_is_empty(tmp_path, cifar10_dir, capsys):
  workdir = tmp_path / 'run'
  summary = trainer.train_and_evaluate(
      helpers.tiny_config(cifar10_dir, num_epochs=1, **{'data.val_fraction': 0.0}), workdir
  )
  out = capsys.readouterr().out
  assert out.count('no validation split (data.val_fraction=0)') == 1
  assert summary['best_val_accuracy'] is None and 'data.val_fraction' in summary['best_note']
  assert helpers.summary(workdir)['best_note'] == summary['best_note']
  assert not any(p.name.isdigit() for p in (workdir / 'checkpoints' / 'best').iterdir())
  assert summary['epochs'] == 1
