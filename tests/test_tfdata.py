"""Tests the tf.data pipelines: shapes, seeded order, exact resume, per-process shards, eval padding."""

import ml_collections
import numpy as np
import pytest

import helpers
from cifar_jax.data import cifar10, tfdata
from cifar_jax.errors import ConfigError

NUM_EXAMPLES = 300
BATCH_SIZE = 64
AUGMENT = ml_collections.ConfigDict(
    {
        'ops': ('random_crop', 'horizontal_flip', 'random_erasing'),
        'crop_padding': 4,
        'crop_padding_mode': 'constant',
        'erasing_probability': 0.5,
        'erasing_scale': (0.02, 0.33),
        'erasing_ratio': (0.3, 3.3),
        'affine_degrees': 5.0,
        'affine_translate': (0.2, 0.2),
        'jitter': (0.2, 0.2, 0.2, 0.1),
        'resized_crop_scale': (0.8, 1.0),
        'resized_crop_ratio': (0.75, 1.3333333),
    }
)


@pytest.fixture(scope='module')
def split() -> cifar10.Split:
  """Images with CIFAR-10's channel statistics; each label is the example's index, to track it."""
  rng = np.random.default_rng(0)
  pixels = rng.normal(
      np.multiply(cifar10.CIFAR10_MEAN, 255), np.multiply(cifar10.CIFAR10_STD, 255), (NUM_EXAMPLES, 32, 32, 3)
  )
  return cifar10.Split(np.clip(pixels.round(), 0, 255).astype(np.uint8), np.arange(NUM_EXAMPLES, dtype=np.int32))


def _train(split: cifar10.Split, **kwargs: object) -> list[dict[str, np.ndarray]]:
  """All batches of one training epoch, with test defaults for the arguments not given."""
  kwargs = {'batch_size': BATCH_SIZE, 'seed': 1, 'epoch': 0, 'augment_config': AUGMENT, **kwargs}
  return list(tfdata.train_batches(split, **kwargs))


def test_train_batches_shapes_and_steps(split: cifar10.Split) -> None:
  batches = _train(split)
  assert len(batches) == cifar10.steps_per_epoch(NUM_EXAMPLES, BATCH_SIZE) == 4
  for batch in batches:
    assert batch['image'].shape == (BATCH_SIZE, 32, 32, 3) and batch['image'].dtype == np.float32
    assert batch['label'].shape == (BATCH_SIZE,) and batch['label'].dtype == np.int32
  labels = np.concatenate([batch['label'] for batch in batches])
  assert len(set(labels.tolist())) == len(labels)  # No example twice in an epoch.


def test_train_order_is_seeded_by_seed_and_epoch(split: cifar10.Split) -> None:
  first = _train(split)
  helpers.assert_same_batches(_train(split), first)
  for other in (_train(split, epoch=1), _train(split, seed=2)):
    assert not np.array_equal(other[0]['label'], first[0]['label'])
  expected = np.random.default_rng([1, 0]).permutation(NUM_EXAMPLES)[:BATCH_SIZE]
  np.testing.assert_array_equal(first[0]['label'], expected)


def test_start_batch_resumes_exactly(split: cifar10.Split) -> None:
  helpers.assert_same_batches(_train(split, start_batch=2), _train(split)[2:])


def test_process_shards_concatenate_to_the_global_batch(split: cifar10.Split) -> None:
  whole = _train(split)
  shards = [_train(split, process_index=index, process_count=2) for index in range(2)]
  for step, batch in enumerate(whole):
    for key in ('image', 'label'):
      np.testing.assert_array_equal(np.concatenate([shard[step][key] for shard in shards]), batch[key])


def test_batch_size_must_divide_among_processes(split: cifar10.Split) -> None:
  with pytest.raises(ConfigError, match='batch_size'):
    _train(split, batch_size=63, process_count=2)
  with pytest.raises(ConfigError, match='batch_size'):
    list(tfdata.eval_batches(split, batch_size=0))


@pytest.mark.parametrize('process_count', [1, 2])
def test_eval_pads_and_masks_every_example_once(split: cifar10.Split, process_count: int) -> None:
  shards = [
      list(
          tfdata.eval_batches(
              split, batch_size=BATCH_SIZE, normalize=False, process_index=index, process_count=process_count
          )
      )
      for index in range(process_count)
  ]
  seen = []
  for shard in shards:
    assert len(shard) == 5
    for batch in shard:
      assert batch['mask'].dtype == bool and batch['mask'].shape == (BATCH_SIZE // process_count,)
      assert batch['image'].shape == (BATCH_SIZE // process_count, 32, 32, 3)
      seen.extend(batch['label'][batch['mask']].tolist())
      np.testing.assert_allclose(
          batch['image'][batch['mask']], split.images[batch['label'][batch['mask']]] / 255, atol=1e-7
      )
  assert sorted(seen) == list(range(NUM_EXAMPLES))
  if process_count == 1:
    assert [int(batch['mask'].sum()) for batch in shards[0]] == [64, 64, 64, 64, 44]


def test_normalization_centers_cifar_like_pixels(split: cifar10.Split) -> None:
  images = np.concatenate([batch['image'] for batch in tfdata.eval_batches(split, batch_size=100)])
  np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), 0, atol=0.05)
  np.testing.assert_allclose(images.std(axis=(0, 1, 2)), 1, atol=0.1)
