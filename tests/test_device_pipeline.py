"""Tests the on-device pipeline: sharded batches, seeded order, exact resume, eval padding, one compile."""

import re
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import helpers
from cifar_jax import parallel
from cifar_jax.data import augment_jax, cifar10, device, normalization
from cifar_jax.errors import ConfigError
from configs import default

NUM_TRAIN, NUM_TEST = 100, 50
BATCH_SIZE, EVAL_BATCH_SIZE = 16, 24
SEED = 3


def _split(count: int, seed: int) -> cifar10.Split:
  """Random uint8 images; each label is the example's index, to track it."""
  images = np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
  return cifar10.Split(images, np.arange(count, dtype=np.int32))


@pytest.fixture(scope='module')
def data() -> cifar10.Cifar10:
  return cifar10.Cifar10(train=_split(NUM_TRAIN, 0), val=None, test=_split(NUM_TEST, 1))


def _config(**augment: object):
  """The default config at test sizes, with crop, flip and erasing unless `augment` overrides."""
  config = default.get_config()
  config.seed, config.batch_size, config.eval_batch_size = SEED, BATCH_SIZE, EVAL_BATCH_SIZE
  config.augment.ops = ('random_crop', 'horizontal_flip', 'random_erasing')
  config.augment.update(augment)
  return config


@pytest.fixture(scope='module')
def mesh() -> jax.sharding.Mesh:
  return parallel.JitParallel().mesh


@pytest.fixture(scope='module')
def pipeline(data: cifar10.Cifar10, mesh: jax.sharding.Mesh) -> device.DevicePipeline:
  return device.DevicePipeline(data, _config(), mesh)


def _epoch(pipeline: device.DevicePipeline, epoch: int, start_batch: int = 0) -> list[dict[str, np.ndarray]]:
  """The batches of one epoch, fetched to the host."""
  return [jax.device_get(batch) for batch in pipeline.train_batches(epoch, start_batch)]


def test_batches_are_sharded_over_every_device(pipeline: device.DevicePipeline, mesh: jax.sharding.Mesh) -> None:
  batches = list(pipeline.train_batches(0))
  assert len(batches) == pipeline.steps_per_epoch == NUM_TRAIN // BATCH_SIZE
  for batch in batches:
    assert batch['image'].shape == (BATCH_SIZE, 32, 32, 3) and batch['image'].dtype == np.float32
    assert batch['label'].shape == (BATCH_SIZE,) and batch['label'].dtype == np.int32
    for array in batch.values():
      assert array.sharding == NamedSharding(mesh, PartitionSpec('data'))
      assert {shard.data.shape[0] for shard in array.addressable_shards} == {BATCH_SIZE // 4}
      assert len(array.addressable_shards) == 4


def test_order_is_seeded_and_covers_each_example_once(pipeline: device.DevicePipeline) -> None:
  first = _epoch(pipeline, 0)
  helpers.assert_same_batches(_epoch(pipeline, 0), first)
  second = _epoch(pipeline, 1)
  assert not np.array_equal(second[0]['label'], first[0]['label'])
  assert not np.array_equal(second[0]['image'], first[0]['image'])
  for epoch, batches in enumerate((first, second)):
    labels = np.concatenate([batch['label'] for batch in batches])
    assert len(set(labels.tolist())) == len(labels) == pipeline.steps_per_epoch * BATCH_SIZE
    expected = np.random.default_rng([SEED, epoch]).permutation(NUM_TRAIN)[: len(labels)]
    np.testing.assert_array_equal(labels, expected)  # The tf.data pipeline's order.


def test_start_batch_resumes_exactly(pipeline: device.DevicePipeline) -> None:
  helpers.assert_same_batches(_epoch(pipeline, 2, start_batch=4), _epoch(pipeline, 2)[4:])
  assert not list(pipeline.train_batches(2, start_batch=pipeline.steps_per_epoch))
  with pytest.raises(ValueError, match='start_batch'):
    pipeline.train_batches(2, start_batch=-1)


def test_batch_is_the_augmented_normalized_examples(data: cifar10.Cifar10, mesh: jax.sharding.Mesh) -> None:
  config = _config()
  batches = _epoch(device.DevicePipeline(data, config, mesh), epoch=1)
  augment = augment_jax.build_augment(config.augment)
  for step in (0, 3):
    raw = data.train.images[batches[step]['label']].astype(np.float32) / 255
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(SEED), 1), step)
    expected = augment_jax.normalize(augment(key, raw), normalization.DEFAULT)
    np.testing.assert_allclose(batches[step]['image'], np.asarray(expected), atol=1e-5)
  config = _config(ops=())
  config.data.normalize = False
  plain = _epoch(device.DevicePipeline(data, config, mesh), epoch=0)[0]
  np.testing.assert_allclose(plain['image'], data.train.images[plain['label']] / np.float32(255), atol=1e-7)


def test_eval_batches_pad_and_mask_each_example_once(pipeline: device.DevicePipeline, data: cifar10.Cifar10) -> None:
  batches = [jax.device_get(batch) for batch in pipeline.eval_batches('test')]
  assert len(batches) == -(-NUM_TEST // EVAL_BATCH_SIZE)
  for batch in batches:
    assert batch['image'].shape == (EVAL_BATCH_SIZE, 32, 32, 3) and batch['mask'].dtype == bool
  mask = np.concatenate([batch['mask'] for batch in batches])
  labels = np.concatenate([batch['label'] for batch in batches])
  np.testing.assert_array_equal(labels[mask], np.arange(NUM_TEST))
  assert mask.sum() == NUM_TEST and not mask[NUM_TEST:].any()
  expected = augment_jax.normalize(data.test.images[:EVAL_BATCH_SIZE].astype(np.float32) / 255, normalization.DEFAULT)
  np.testing.assert_allclose(batches[0]['image'], np.asarray(expected), atol=1e-6)
  with pytest.raises(ValueError, match='val_fraction'):
    list(pipeline.eval_batches('val'))


def test_compiles_once_and_needs_no_transfer_per_step(data: cifar10.Cifar10, mesh: jax.sharding.Mesh) -> None:
  pipeline = device.DevicePipeline(data, _config(), mesh)
  with jax.transfer_guard('disallow'):
    for epoch in range(2):
      list(pipeline.train_batches(epoch))
    list(pipeline.train_batches(2, start_batch=3))
    list(pipeline.eval_batches('test'))
    list(pipeline.eval_batches('test'))
  assert pipeline._train_batch._cache_size() == 1  # pylint: disable=protected-access
  assert pipeline._eval_batch._cache_size() == 1  # pylint: disable=protected-access


def test_gather_needs_no_cross_device_traffic(pipeline: device.DevicePipeline) -> None:
  order = jax.device_put(np.zeros((2, BATCH_SIZE), np.int32), pipeline.per_step)
  counter = jax.device_put(np.zeros(2, np.int32), pipeline.replicated)
  train_batch = pipeline._train_batch  # pylint: disable=protected-access
  hlo = train_batch.lower(pipeline.seed_array, *pipeline.splits['train'], order, counter).compile().as_text()
  assert not re.findall(r'all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter', hlo)


def test_batches_feed_pmap(data: cifar10.Cifar10) -> None:
  dp = parallel.PmapParallel()
  pipeline = device.DevicePipeline(data, _config(ops=()), dp.stacked.mesh)
  batch = dp.put_batch(next(pipeline.train_batches(0)))
  assert batch['image'].shape == (4, BATCH_SIZE // 4, 32, 32, 3)
  counts = jax.pmap(lambda labels: jax.lax.psum(labels.shape[0], 'data'), axis_name='data')(batch['label'])
  np.testing.assert_array_equal(np.asarray(counts), BATCH_SIZE)


def test_bad_batch_sizes_name_the_key(data: cifar10.Cifar10, mesh: jax.sharding.Mesh) -> None:
  config = _config()
  config.batch_size = 18
  with pytest.raises(ConfigError, match='batch_size=18'):
    device.DevicePipeline(data, config, mesh)
  config.batch_size = 128
  with pytest.raises(ConfigError, match='batch_size=128 is larger'):
    device.DevicePipeline(data, config, mesh)


def test_importing_does_not_load_tensorflow() -> None:
  code = 'import sys, cifar_jax.data.device, cifar_jax.data.augment_jax; ' 'sys.exit("tensorflow" in sys.modules)'
  assert subprocess.run([sys.executable, '-c', code], check=False).returncode == 0
