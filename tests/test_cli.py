"""The command line as a user meets it: help, a mistyped key, and no TensorFlow noise."""

import signal
import subprocess
import sys

import pytest

import helpers

GROUPS = ('model', 'optimizer', 'schedule', 'regularization', 'data', 'augment', 'top level')


def _run(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  return _python('-m', module, *args, env=env)


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, *args],
      cwd=helpers.REPO,
      env=env or helpers.cli_env(),
      capture_output=True,
      text=True,
      timeout=300,
  )


@pytest.mark.parametrize('flag', ['-h', '--help'])
@pytest.mark.parametrize('module', ['cifar_jax.main', 'cifar_jax.sweep'])
def test_help_shows_the_flags_the_config_groups_and_where_keys_are_documented(module, flag):
  result = _run(module, flag)
  assert result.returncode == 0, result.stderr[-2000:]
  for words in (
      '--config',
      '--workdir',
      *(f'  {group}: ' for group in GROUPS),
      'learning_rate',
      'configs/default.py',
      'python -m cifar_jax.models',
  ):
    assert words in result.stdout, words


@pytest.mark.parametrize(
    'override, message',
    [
        ('optimizer.lr=0.1', "unknown config key 'optimizer.lr'; did you mean optimizer.learning_rate"),
        (
            'optimizer.learnig_rate=0.1',
            "unknown config key 'optimizer.learnig_rate'; did you mean optimizer.learning_rate",  # closest first
        ),
        ('num_epoch=2', "unknown config key 'num_epoch'; did you mean num_epochs"),
        ('optimzer.learning_rate=0.1', "unknown config key 'optimzer.learning_rate' (did you mean optimizer?)"),
    ],
)
def test_a_mistyped_override_names_the_full_key_and_the_closest_ones_in_one_line(tmp_path, override, message):
  result = helpers.run_cli('--config=configs/mlp.py', f'--config.{override}', f'--workdir={tmp_path / "run"}')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [f'error: {result.stderr.split("error: ")[1].strip()}']
  assert message in result.stderr
  assert not (tmp_path / 'run').exists()


def test_a_run_prints_no_tensorflow_lines(tmp_path, cifar10_dir):
  env = {k: v for k, v in helpers.cli_env().items() if not k.startswith('TF_')}  # conftest quiets TF for pytest
  result = _run(
      'cifar_jax.main', *helpers.tiny_flags(cifar10_dir, num_epochs=1), f'--workdir={tmp_path / "run"}', env=env
  )
  assert result.returncode == 0, result.stderr[-2000:]
  output = result.stdout + result.stderr
  for noise in ('absl::InitializeLog', 'oneDNN', 'TF_ENABLE_ONEDNN_OPTS', 'tensorflow/'):
    assert noise not in output, output[-2000:]


# Bad input to every command: (module, arguments, words of the one error line). `{run}` is a workdir or output
# folder that must not be created, `{missing}` a folder that does not exist.
BAD_INPUTS = [
    ('cifar_jax.main', ['--config=configs/mlp.py', '--config.optimizer.lr=0.1', '--workdir={run}'], "'optimizer.lr'"),
    ('cifar_jax.main', ['--config=configs/mlp.py', '--config.num_epochs=-1', '--workdir={run}'], 'num_epochs=-1'),
    ('cifar_jax.main', ['--config=configs/mlp.py', '--config.optimizer.name=lion', '--workdir={run}'], "'lion'"),
    ('cifar_jax.main', ['--config=configs/nope.py', '--workdir={run}'], 'nope.py'),
    ('cifar_jax.main', ['--config=configs/mlp.py', '--config.data.data_dir={missing}', '--workdir={run}'], 'no such'),
    (
        'cifar_jax.sweep',
        ['--config=configs/sweeps/smoke.py', '--set=data.data_dir={missing}', '--workdir={run}'],
        'no such',
    ),
    (
        'cifar_jax.sweep',
        ['--config=configs/sweeps/smoke.py', '--set=optimizer.lr=1', '--workdir={run}'],
        "'optimizer.lr'",
    ),
    ('cifar_jax.reproduce', ['--only=tp4', '--status', '--workdir={run}'], 'neither a report'),
    ('cifar_jax.report', ['{missing}'], 'is not a folder'),
    ('cifar_jax.analysis', ['{missing}'], 'holds no run'),
    ('cifar_jax.figures', ['--config=configs/nope.py', '--out={run}'], 'nope.py'),
]


@pytest.mark.parametrize(
    ('module', 'args', 'words'), BAD_INPUTS, ids=[f'{m}:{a[0]}:{a[1] if len(a) > 1 else ""}' for m, a, _ in BAD_INPUTS]
)
def test_every_command_refuses_bad_input_in_one_line_and_leaves_no_folder(tmp_path, module, args, words):
  run, missing = tmp_path / 'run', tmp_path / 'missing'
  result = _run(module, *(a.format(run=run, missing=missing) for a in args))
  assert result.returncode == 1, result.stderr[-2000:]
  assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith('error: '), result.stderr
  assert words in result.stderr
  assert not run.exists()  # a refused run leaves no empty workdir behind


def test_resuming_a_folder_of_another_config_is_refused_before_the_data_is_read(tmp_path):
  run = tmp_path / 'run'
  (run / 'checkpoints' / 'latest' / '5').mkdir(parents=True)  # a checkpoint at step 5
  (run / 'config.json').write_text('{"batch_size": 3}')
  (tmp_path / 'no_batches').mkdir()  # a data folder without CIFAR-10 in it: reading it would fail
  result = helpers.run_cli(
      '--config=configs/mlp.py', f'--config.data.data_dir={tmp_path / "no_batches"}', f'--workdir={run}'
  )
  assert result.returncode == 1
  assert 'holds a run of a different config (' in result.stderr and 'batch_size: 3 -> ' in result.stderr
  assert 'not found' not in result.stderr  # the data folder is not read


WRAPPED = """
import sys, time
from cifar_jax import cli
from cifar_jax.errors import UserError
from cifar_jax.training.preemption import Stopped

def body():
  print('started', flush=True)
  what = sys.argv[1]
  if what == 'bad':
    raise UserError('a bad input')
  if what == 'stopped':
    raise Stopped('SIGTERM received: checkpoint written at step 3', 'SIGTERM')
  if what == 'ctrl-c':
    raise KeyboardInterrupt
  time.sleep(60)  # 'wait': a SIGTERM arrives while no run is training

cli.run(body)
"""


@pytest.mark.parametrize(
    ('what', 'status', 'said'),
    [
        ('bad', 1, 'error: a bad input'),
        ('stopped', 143, 'SIGTERM received: checkpoint written at step 3'),
        ('ctrl-c', 130, 'Ctrl-C: stopped at once'),
        ('wait', 143, 'SIGTERM: stopped at once'),
    ],
)
def test_the_one_wrapper_exits_1_on_bad_input_and_128_plus_the_signal_on_a_stop(what, status, said):
  process = subprocess.Popen(
      [sys.executable, '-c', WRAPPED, what],
      cwd=helpers.REPO,
      env=helpers.cli_env(),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )
  assert process.stdout.readline() == 'started\n'
  if what == 'wait':
    process.send_signal(signal.SIGTERM)
  _, err = process.communicate(timeout=60)
  assert process.returncode == status
  assert len(err.strip().splitlines()) == 1 and err.startswith(said), err


# Runs the command named by argv[1] (its arguments after it) with every heavy library refused at import: an import
# of one raises an exception no `except ImportError` catches, so the command can only give its one error line if it
# refused its input before importing any of them.
WITHOUT_HEAVY_IMPORTS = """
import runpy, sys

HEAVY = ('jax', 'jaxlib', 'flax', 'optax', 'orbax', 'tensorflow', 'tensorflow_datasets', 'clu', 'optuna', 'matplotlib',
         'scipy')

class HeavyImport(BaseException):
  pass

class Refuse:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in HEAVY:
      raise HeavyImport(name)

sys.meta_path.insert(0, Refuse())
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
"""

SWEEP_OF_AN_UNKNOWN_OPTIMIZER = """
from configs.sweeps import default

def get_config():
  config = default.get_config()
  config.base = 'configs/mlp.py'
  config.variants = [{'name': 'fine', 'overrides': {}}, {'name': 'lion', 'overrides': {'optimizer.name': 'lion'}}]
  return config
"""


@pytest.mark.parametrize(
    ('module', 'args', 'said'),
    [
        ('cifar_jax.main', ['--config=configs/mlp.py', '--config.model.name=resnet99'], "model.name='resnet99' is not"),
        ('cifar_jax.main', ['--config=configs/mlp.py', '--config.optimizer.name=lion'], "optimizer.name='lion' is not"),
        ('cifar_jax.main', ['--config=configs/mlp.py', '--config.schedule.name=cyclic'], "schedule.name='cyclic' is"),
        ('cifar_jax.main', ['--config=configs/mlp.py', '--config.dtype=float16'], "dtype='float16' is not one of"),
        ('cifar_jax.sweep', ['--config={sweep}'], "variant lion: optimizer.name='lion' is not one of"),
        ('cifar_jax.sweep', ['--config={sweep}', '--set=data.pipeline=dali'], "data.pipeline='dali' is not one of"),
        ('cifar_jax.reproduce', ['--only=tp3_dense', '--quick', '--set=optimizer.name=lion'], 'tp3_dense: variant'),
        ('cifar_jax.reproduce', ['--set=schedule.name=cyclic'], "schedule.name='cyclic' is not one of"),
    ],
)
def test_an_unknown_name_is_refused_before_jax_flax_tensorflow_orbax_or_optuna_are_imported(
    tmp_path, module, args, said
):
  sweep = tmp_path / 'sweep_config.py'
  sweep.write_text(SWEEP_OF_AN_UNKNOWN_OPTIMIZER)
  _refused_without_heavy_imports(tmp_path, module, *(a.format(sweep=sweep) for a in args), said=said)


@pytest.mark.parametrize(
    ('module', 'said'), [('cifar_jax.report', 'is not a folder'), ('cifar_jax.analysis', 'holds no run')]
)
def test_a_missing_run_folder_is_refused_before_the_heavy_imports(tmp_path, module, said):
  _refused_without_heavy_imports(tmp_path, module, str(tmp_path / 'missing'), said=said, workdir=False)


def _refused_without_heavy_imports(tmp_path, module: str, *args: str, said: str, workdir: bool = True) -> None:
  run = tmp_path / 'run'
  result = _python('-c', WITHOUT_HEAVY_IMPORTS, module, *args, *([f'--workdir={run}'] if workdir else []))
  assert result.returncode == 1, result.stderr[-2000:]
  assert result.stderr.startswith('error: ') and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
  assert said in result.stderr
  assert not run.exists()
