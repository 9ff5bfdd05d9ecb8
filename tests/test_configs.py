"""Every config in configs/ loads, passes the training checks and builds its model; the reports' setups hold."""

import pathlib

from flax import nnx
import pytest

from cifar_jax import config_lib
from cifar_jax.study import expansion, sweep
from cifar_jax.training import experiment, trainer
from cifar_jax.errors import ConfigError
from cifar_jax.models import count_params

REPO = pathlib.Path(__file__).resolve().parents[1]
SWEEP_DIR = REPO / 'configs' / 'sweeps'
RUN_CONFIGS = sorted(
    str(p.relative_to(REPO))
    for p in (REPO / 'configs').rglob('*.py')
    if p.name != '__init__.py' and SWEEP_DIR not in p.parents
)
SWEEP_CONFIGS = sorted(
    str(p.relative_to(REPO)) for p in SWEEP_DIR.glob('*.py') if p.name not in ('__init__.py', 'default.py')
)
UPV_PARAMS = {
    'cnn': 1_838_346,
    'da_lra': 1_838_346,
    'resnet': 8_886_538,
    'avgpool': 4_954_378,
    'maxpool': 5_159_146,
    'resnet_final': 5_159_146,
}
UPV_AUGMENT = {
    'cnn': (),
    'da_lra': ('horizontal_flip', 'random_affine'),
    'resnet': ('random_crop', 'horizontal_flip', 'random_affine', 'color_jitter'),
    'avgpool': ('random_crop', 'horizontal_flip', 'random_affine', 'color_jitter'),
    'maxpool': ('random_crop', 'horizontal_flip', 'random_affine', 'color_jitter'),
    'resnet_final': ('random_crop', 'random_resized_crop', 'horizontal_flip', 'random_affine'),
}
TP3_EXPERIMENTS = (
    'MLP',
    'fc_hl_bigvalues',
    'fc_hl_1layers',
    'fc_hl_bigvalues_and_2layers',
    'fc_hl_less_values',
    'fc_hl_1layer_less',
    'fc_hl_1layerless_smallvalues',
    'cnn_lessvalues',
    'CNN_LeNet-5',
    'CNN_ResNet-18',
    'CNN_VGG16',
    'final',
)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
  """Config paths are relative to the repository root."""
  monkeypatch.chdir(REPO)


def _params(config) -> int:
  return count_params(nnx.eval_shape(lambda: experiment.build_model(config)))


def test_every_report_experiment_has_its_config():
  assert {f'configs/tp3/{name}.py' for name in TP3_EXPERIMENTS} <= set(RUN_CONFIGS)
  assert {f'configs/upv/{name}.py' for name in UPV_PARAMS} <= set(RUN_CONFIGS)


@pytest.mark.parametrize('path', RUN_CONFIGS)
def test_run_config_loads_passes_the_checks_and_says_how_to_run_it(path):
  config = config_lib.load_config_file(path)
  trainer.check_config(config)  # builds the model abstractly: name, options, activation
  assert _params(config) > 0
  doc = pathlib.Path(path).read_text()
  if pathlib.Path(path).stem != 'base':  # a shared base is not an experiment
    assert f'python -m cifar_jax.main --config={path}' in doc
  if path.startswith(('configs/tp3/', 'configs/upv/')) and pathlib.Path(path).stem != 'base':
    for words in ('The report', '  "', 'Reading', "Report's figure:", 'Ours:'):  # quotes the report, says its reading
      assert words in doc, words


@pytest.mark.parametrize('name, params', UPV_PARAMS.items())
def test_upv_rows_have_the_report_parameter_counts_and_training(name, params):
  config = config_lib.load_config_file(f'configs/upv/{name}.py')
  assert _params(config) == params
  assert (
      config.optimizer.name,
      config.optimizer.learning_rate,
      config.optimizer.momentum,
      config.optimizer.weight_decay,
  ) == ('sgd', 0.01, 0.9, 1e-6)
  assert (config.batch_size, config.num_epochs, config.data.val_fraction) == (100, 100, 0.1)
  assert config.augment.ops == UPV_AUGMENT[name]
  if name == 'cnn':
    assert config.schedule.name == 'constant'
  else:
    assert (
        config.schedule.name,
        config.schedule.plateau_factor,
        config.schedule.plateau_patience,
        config.schedule.plateau_min_lr,
    ) == ('plateau', 0.1, 10, 1e-6)
  if 'color_jitter' in config.augment.ops:
    assert config.augment.jitter == (0.2, 0.2, 0.2, 0.1)
  assert (
      config.augment.crop_padding,
      config.augment.affine_degrees,
      config.augment.affine_translate,
      config.augment.resized_crop_scale,
  ) == (4, 5.0, (0.2, 0.2), (0.8, 1.0))


def test_tp3_runs_on_an_80_20_split_and_its_final_model_takes_every_winner():
  for name in TP3_EXPERIMENTS:
    assert config_lib.load_config_file(f'configs/tp3/{name}.py').data.val_fraction == 0.2, name
  final = config_lib.load_config_file('configs/tp3/final.py')
  assert (final.model.name, final.model.activation, final.optimizer.name, final.schedule.name) == (
      'resnet18',
      'relu6',
      'sgd',
      'exponential',
  )
  assert (
      final.optimizer.learning_rate,
      final.optimizer.momentum,
      final.num_epochs,
      final.batch_size,
      final.optimizer.weight_decay,
  ) == (0.001, 0.7, 25, 64, 1e-4)
  dense = [config_lib.load_config_file(f'configs/tp3/{name}.py').model.hidden_sizes for name in TP3_EXPERIMENTS[:7]]
  assert len(set(dense)) == 7


@pytest.mark.parametrize('path', SWEEP_CONFIGS)
def test_sweep_config_expands_to_checked_variants(path, tmp_path, cifar10_dir, monkeypatch):
  monkeypatch.setenv('CIFAR10_DIR', str(cifar10_dir))  # check_variants also checks that the data is there
  config = config_lib.load_config_file(path)
  config.num_samples = min(config.num_samples, 4)  # random draws differ only in numbers: four show they hold
  variants = expansion.expand(config)
  sweep.check_variants(variants, tmp_path)
  assert f'python -m cifar_jax.sweep --config={path}' in pathlib.Path(path).read_text()


@pytest.mark.parametrize(
    'path, names',
    [
        ('configs/sweeps/tp3_dense.py', list(TP3_EXPERIMENTS[:7])),
        ('configs/sweeps/tp3_cnn.py', list(TP3_EXPERIMENTS[7:11])),
        (
            'configs/sweeps/tp3_activations.py',
            ['ReLU', 'LeakyReLU', 'ReLU6', 'ELU', 'Tanh', 'SiLU', 'Sigmoid', 'Softmax'],
        ),
        ('configs/sweeps/tp3_optimizers.py', ['SGD', 'Adam', 'Adagrad', 'RMSprop', 'Adadelta']),
        ('configs/sweeps/tp3_schedules.py', ['ExponentialLR', 'MultiStepLR', 'StepLR']),
        ('configs/sweeps/tp3_regularizers.py', ['data_augmentation', 'dropout', 'Ridge', 'Lasso']),
        ('configs/sweeps/upv_progression.py', [f'{i}_{row}' for i, row in enumerate(UPV_PARAMS, 1)]),
    ],
)
def test_sweeps_hold_the_reports_variants_in_order(path, names):
  assert [v.name for v in expansion.expand(config_lib.load_config_file(path))] == names


def test_tp3_studies_change_one_thing_against_the_stage_baseline():
  activations = expansion.expand(config_lib.load_config_file('configs/sweeps/tp3_activations.py'))
  assert {v.config.model.activation for v in activations} == {
      'relu',
      'leaky_relu',
      'relu6',
      'elu',
      'tanh',
      'silu',
      'sigmoid',
      'softmax',
  }
  for study in ('tp3_optimizers', 'tp3_schedules'):
    variants = expansion.expand(config_lib.load_config_file(f'configs/sweeps/{study}.py'))
    assert all(v.config.model.activation == 'relu6' and v.config.model.name == 'resnet18' for v in variants)
  regularizers = {
      v.name: v.config for v in expansion.expand(config_lib.load_config_file('configs/sweeps/tp3_regularizers.py'))
  }
  assert regularizers['data_augmentation'].augment.ops == ('random_crop', 'horizontal_flip', 'random_erasing')
  assert regularizers['dropout'].augment.ops == () and regularizers['dropout'].model.dropout > 0
  assert regularizers['Ridge'].regularization.l2 > 0 and regularizers['Lasso'].regularization.l1 > 0
  drawn = expansion.expand(config_lib.load_config_file('configs/sweeps/tp3_hyperparameters.py'))
  assert len(drawn) == 24 and all(v.config.augment.ops == () for v in drawn)


def test_a_mistyped_key_in_a_config_file_is_refused_naming_the_closest_one(tmp_path):
  config_file = tmp_path / 'typo.py'
  config_file.write_text(
      'from configs import mlp\n\n\ndef get_config():\n  config = mlp.get_config()\n'
      '  config.optimizer.learnig_rate = 0.05\n  return config\n'
  )
  with pytest.raises(
      ConfigError, match=r"unknown config key 'optimizer.learnig_rate'; did you mean optimizer.learning_rate\b"
  ):
    trainer.check_config(config_lib.load_config_file(config_file))
  config = config_lib.load_config_file('configs/mlp.py')
  config.model.anything = 1  # model keys are the model's to check
  config_lib.check_known_keys(config)
