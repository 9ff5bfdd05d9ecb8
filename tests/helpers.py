"""Shared pieces of the training tests: a fake CIFAR-10 folder, tiny configs, the command line, checkpoint reads."""

import json
import os
import pathlib
import pickle
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp

from cifar_jax.data import cifar10
from configs import mlp

REPO = pathlib.Path(__file__).resolve().parents[1]


def write_batch(path: pathlib.Path, data: object, labels: object) -> None:
  """Writes a batch file laid out like the official ones (byte-string keys).

  Protocol 4, because Python 3 pickles arrays with protocol 2 through `_codecs.encode`, a global
  the official (Python 2) files never use and the loader therefore refuses.
  """
  with path.open('wb') as f:
    pickle.dump({b'data': data, b'labels': labels, b'batch_label': b'fake'}, f, protocol=4)


def fake_cifar10(root: pathlib.Path, num_per_file: int = 20, seed: int = 0) -> pathlib.Path:
  """A complete `cifar-10-batches-py` folder under `root`, official names and format; returns the folder.

  Each image is its class's fixed random pattern plus noise, so that a small model learns it within
  an epoch or two, as it would the real images.
  """
  folder = root / cifar10.BATCHES_DIR_NAME
  folder.mkdir(parents=True)
  rng = np.random.default_rng(seed)
  patterns = rng.normal(0, 50, (10, 3072))
  for name in (*cifar10.TRAIN_FILES, cifar10.TEST_FILE):
    labels = rng.integers(0, 10, num_per_file)
    pixels = 128 + patterns[labels] + rng.normal(0, 40, (num_per_file, 3072))
    write_batch(folder / name, np.clip(pixels, 0, 255).astype(np.uint8), labels.tolist())
  return folder


# A run of seconds: a 32-unit MLP on 256 training images, batch 32 (8 steps an epoch), 3 epochs.
TINY = {
    'model.hidden_sizes': (32,),
    'data.max_train_examples': 256,
    'data.max_eval_examples': 128,
    'data.val_fraction': 0.1,
    'batch_size': 32,
    'eval_batch_size': 64,
    'num_epochs': 3,
    'log_every_steps': 1,
    'optimizer.learning_rate': 0.05,
}


def override(config, **overrides):
  """Sets dotted keys (`optimizer.learning_rate=...` spelled `**{'optimizer.learning_rate': ...}`)."""
  for key, value in overrides.items():
    node = config
    *path, last = key.split('.')
    for part in path:
      node = node[part]
    node[last] = value
  return config


def tiny_config(data_dir, **overrides):
  """The TINY MLP config on the CIFAR-10 folder `data_dir`, with `overrides`."""
  return override(mlp.get_config(), **{'data.data_dir': str(data_dir), **TINY, **overrides})


def tiny_flags(data_dir, **overrides):
  """The same config as command-line flags."""
  values = {'data.data_dir': str(data_dir), **TINY, **overrides}
  return ['--config=configs/mlp.py'] + [f'--config.{k}={v}' for k, v in values.items()]


def cli_env(devices: int = 4) -> dict[str, str]:
  return {**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}


def run_cli(*args, devices: int = 4) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-m', 'cifar_jax.main', *args],
      cwd=REPO,
      env=cli_env(devices),
      capture_output=True,
      text=True,
      timeout=300,
  )


def start_cli(*args) -> subprocess.Popen:
  """The command line started in the background (to be killed or signalled), stderr merged into stdout in order,
  as a terminal shows them."""
  return subprocess.Popen(
      [sys.executable, '-m', 'cifar_jax.main', *args],
      cwd=REPO,
      env=cli_env(),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
  )


def read_until(process: subprocess.Popen, found) -> str:
  """Reads output lines of a `start_cli` process until `found(line)`; returns that line."""
  seen = []
  for line in process.stdout:
    if found(line):
      return line
    seen.append(line)
  raise AssertionError(f'the run ended first: {"".join(seen)[-2000:]}')


def wait_for_step(process: subprocess.Popen, step: int) -> None:
  """Reads the progress lines until `step` has been reported."""
  read_until(process, lambda line: line.startswith('step ') and int(line.split()[1].split('/')[0]) >= step)


def checkpoint_steps(workdir, kept: str = 'latest') -> list[int]:
  """The steps of the checkpoints under checkpoints/`kept` ('latest' or 'best')."""
  manager = ocp.CheckpointManager(pathlib.Path(workdir).absolute() / 'checkpoints' / kept)
  steps = sorted(manager.all_steps())
  manager.close()
  return steps


def latest_params(workdir, step: int | None = None, kept: str = 'latest'):
  """The parameters in the newest checkpoint (or the one at `step`) under checkpoints/`kept`, as numpy arrays
  (onto one device, whatever wrote them)."""
  manager = ocp.CheckpointManager(
      pathlib.Path(workdir).absolute() / 'checkpoints' / kept, item_handlers={'state': ocp.StandardCheckpointHandler()}
  )
  step = manager.latest_step() if step is None else step
  one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one_device), manager.item_metadata(step)['state']
  )
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
  manager.close()
  return jax.tree.map(np.asarray, restored.state['params'])


def assert_same_params(workdir_a, workdir_b):
  a, b = latest_params(workdir_a), latest_params(workdir_b)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def assert_same_run(workdir, reference) -> None:
  """Same parameters, metrics.jsonl (timings aside) and summary numbers as the run in `reference`."""
  assert_same_params(workdir, reference)
  assert metric_lines(workdir) == metric_lines(reference)
  ours, theirs = summary(workdir), summary(reference)
  for key in (
      'steps',
      'epochs',
      'train_loss',
      'train_accuracy',
      'val_loss',
      'val_accuracy',
      'test_loss',
      'test_accuracy',
      'best_val_accuracy',
      'best_epoch',
  ):
    assert ours[key] == theirs[key], key


def assert_same_batches(batches: list[dict], expected: list[dict]) -> None:
  """The two lists of input batches are equal, key by key."""
  assert len(batches) == len(expected)
  for batch, want in zip(batches, expected):
    assert batch.keys() == want.keys()
    for key in batch:
      np.testing.assert_array_equal(batch[key], want[key])


def metric_lines(workdir) -> list[dict]:
  """metrics.jsonl without the timing fields, which differ between any two runs."""
  lines = [json.loads(line) for line in (pathlib.Path(workdir) / 'metrics.jsonl').read_text().splitlines()]
  return [{k: v for k, v in line.items() if k != 'images_per_second'} for line in lines]


def summary(workdir) -> dict:
  return json.loads((pathlib.Path(workdir) / 'summary.json').read_text())
