"""One interface for both input pipelines: the factory, the same order from both, TensorFlow only for tf.data."""

import subprocess
import sys

import jax
import numpy as np
import pytest

import helpers
from cifar_jax import parallel
from cifar_jax.data import cifar10, device, pipeline
from cifar_jax.errors import ConfigError
from configs import default

NUM_TRAIN, NUM_TEST, BATCH_SIZE = 96, 40, 16


def _split(count: int, seed: int) -> cifar10.Split:
  """Random uint8 images; each label is the example's index, to track it."""
  images = np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
  return cifar10.Split(images, np.arange(count, dtype=np.int32))


DATA = cifar10.Cifar10(train=_split(NUM_TRAIN, 0), val=None, test=_split(NUM_TEST, 1))


def _config(name: str):
  config = default.get_config()
  config.data.pipeline, config.batch_size, config.eval_batch_size, config.seed = name, BATCH_SIZE, BATCH_SIZE, 7
  return config


def _labels(batches) -> list[np.ndarray]:
  return [np.asarray(jax.device_get(batch['label'])) for batch in batches]


def test_factory_builds_the_named_pipeline_and_refuses_others() -> None:
  mesh = parallel.JitParallel().mesh
  assert isinstance(pipeline.create_pipeline(DATA, _config('device'), mesh), device.DevicePipeline)
  with pytest.raises(ConfigError, match="data.pipeline='dali' is not one of: device, tfdata"):
    pipeline.create_pipeline(DATA, _config('dali'), mesh)


def test_both_pipelines_give_the_same_examples_through_one_interface() -> None:
  pytest.importorskip('tensorflow')
  mesh = parallel.JitParallel().mesh
  tfdata, on_device = (pipeline.create_pipeline(DATA, _config(name), mesh) for name in ('tfdata', 'device'))
  # The same seeded order (numpy default_rng([seed, epoch])), resumed at the same batch.
  expected = np.random.default_rng([7, 2]).permutation(NUM_TRAIN)[2 * BATCH_SIZE : 6 * BATCH_SIZE].reshape(4, -1)
  for source in (tfdata, on_device):
    np.testing.assert_array_equal(_labels(source.train_batches(2, start_batch=2)), expected)
    test = [jax.device_get(batch) for batch in source.eval_batches('test')]
    labels = np.concatenate([batch['label'][batch['mask']] for batch in test])
    np.testing.assert_array_equal(labels, np.arange(NUM_TEST))  # every test example once, in order
    with pytest.raises(ValueError, match="no 'val' split.*val_fraction"):
      list(source.eval_batches('val'))


@pytest.mark.parametrize('name, imports_tensorflow', [('device', False), ('tfdata', True)])
def test_tensorflow_is_imported_only_for_the_tfdata_pipeline(name: str, imports_tensorflow: bool) -> None:
  """In a fresh interpreter: build the experiment (model, steps, pipeline) and train one step."""
  pytest.importorskip('tensorflow')
  code = f"""
import sys
import numpy as np
from cifar_jax.training import experiment
from cifar_jax.data import cifar10
from configs import default
rng = np.random.default_rng(0)
split = cifar10.Split(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 64).astype(np.int32))
config = default.get_config()
config.model.name, config.model.hidden_sizes, config.batch_size, config.data.pipeline = 'mlp', (8,), 16, {name!r}
exp = experiment.build_experiment(config, cifar10.Cifar10(train=split, val=None, test=split))
state, _ = exp.train_step(exp.dp.put_state(exp.state), exp.dp.put_batch(next(exp.pipeline.train_batches(0))))
print('tensorflow' in sys.modules)
"""
  done = subprocess.run(
      [sys.executable, '-c', code],
      cwd=helpers.REPO,
      env=helpers.cli_env(),
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.split()[-1] == str(imports_tensorflow)
