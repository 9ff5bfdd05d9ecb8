"""Tests the JAX augmentations: exact agreement with TensorFlow given the same parameters, shapes,
ranges, per-key determinism and per-example variation, statistics beside the TF versions, op order."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cifar_jax.data import augment_jax, augment_tf, cifar10, normalization
from cifar_jax.data.augment_config import AUGMENTATIONS, Examples
from cifar_jax.errors import ConfigError
from configs import default

tf = augment_tf.tf
BATCH = 8
KEYS = [jax.random.key(seed) for seed in range(4)]

# Each random op with the default config's arguments, erasing always on so it shows: (JAX, TF).
OPS = {
    'random_crop': (
        lambda key, x: augment_jax.random_crop(key, x, 4),
        lambda seed, x: augment_tf.random_crop(seed, x, 4),
    ),
    'horizontal_flip': (augment_jax.horizontal_flip, augment_tf.horizontal_flip),
    'random_erasing': (
        lambda key, x: augment_jax.random_erasing(key, x, 1.0, (0.02, 0.33), (0.3, 3.3), cifar10.CIFAR10_MEAN),
        lambda seed, x: augment_tf.random_erasing(seed, x, 1.0, (0.02, 0.33), (0.3, 3.3), cifar10.CIFAR10_MEAN),
    ),
    'random_affine': (
        lambda key, x: augment_jax.random_affine(key, x, 5.0, (0.2, 0.2)),
        lambda seed, x: augment_tf.random_affine(seed, x, 5.0, (0.2, 0.2)),
    ),
    'color_jitter': (
        lambda key, x: augment_jax.color_jitter(key, x, 0.2, 0.2, 0.2, 0.1),
        lambda seed, x: augment_tf.color_jitter(seed, x, 0.2, 0.2, 0.2, 0.1),
    ),
    'random_resized_crop': (
        lambda key, x: augment_jax.random_resized_crop(key, x, (0.8, 1.0), (0.75, 4 / 3)),
        lambda seed, x: augment_tf.random_resized_crop(seed, x, (0.8, 1.0), (0.75, 4 / 3)),
    ),
}


def _config(**overrides: object) -> ml_collections.ConfigDict:
  """The default run config's augment section with `overrides`."""
  config = default.get_config().augment
  config.update(overrides)
  return config


def _images(count: int = BATCH, seed: int = 0) -> np.ndarray:
  """Smooth random float32 images in [0.1, 1] (zero fill stays visible), like photos at low resolution."""
  coarse = np.random.default_rng(seed).uniform(0.1, 1, (count, 8, 8, 3)).astype(np.float32)
  return np.asarray(jax.image.resize(coarse, (count, 32, 32, 3), 'linear'))


def _tf_each(fn, images: np.ndarray, *params: np.ndarray) -> np.ndarray:
  """`fn(image, *params)` in TensorFlow for each example, stacked."""
  return np.stack(
      [fn(tf.constant(image), *(tf.constant(p[i]) for p in params)).numpy() for i, image in enumerate(images)]
  )


def test_crop_equals_tf_pixel_for_pixel() -> None:
  images = _images()
  offsets = np.random.default_rng(1).integers(0, 9, (BATCH, 2)).astype(np.int32)
  offsets[:2] = [[0, 0], [8, 8]]  # The extreme corners.
  expected = _tf_each(lambda image, offset: augment_tf.crop_at(image, 4, offset), images, offsets)
  np.testing.assert_array_equal(np.asarray(augment_jax.crop(images, 4, offsets)), expected)


def test_flip_equals_tf_pixel_for_pixel() -> None:
  images = _images()
  flags = np.arange(BATCH) % 3 == 0
  np.testing.assert_array_equal(
      np.asarray(augment_jax.flip(images, flags)), _tf_each(augment_tf.flip_if, images, flags)
  )


def test_affine_equals_tf_pixel_for_pixel() -> None:
  images = _images()
  rng = np.random.default_rng(2)
  angles = rng.uniform(-0.6, 0.6, BATCH).astype(np.float32)
  angles[:2] = [0.0, np.pi / 2]
  shifts = rng.integers(-6, 7, (BATCH, 2)).astype(np.float32)
  rotate = augment_tf._rotate_and_shift  # pylint: disable=protected-access
  np.testing.assert_array_equal(
      np.asarray(augment_jax.affine(images, angles, shifts)), _tf_each(rotate, images, angles, shifts)
  )


def test_hue_and_resized_crop_equal_tf() -> None:
  images = _images()
  deltas = np.linspace(-0.5, 0.5, BATCH).astype(np.float32)
  np.testing.assert_allclose(
      np.asarray(augment_jax.adjust_hue(images, deltas)), _tf_each(tf.image.adjust_hue, images, deltas), atol=1e-5
  )
  boxes = np.array(
      [
          [0, 0, 32, 32],
          [3, 5, 20, 25],
          [10, 2, 14, 30],
          [0, 0, 1, 1],
          [31, 31, 1, 1],
          [4, 4, 28, 28],
          [1, 7, 26, 24],
          [0, 9, 32, 23],
      ],
      np.int32,
  )
  resize = lambda image, box: tf.image.resize(tf.slice(image, [box[0], box[1], 0], [box[2], box[3], 3]), [32, 32])
  np.testing.assert_allclose(
      np.asarray(augment_jax.resized_crop(images, boxes.astype(np.float32))), _tf_each(resize, images, boxes), atol=1e-6
  )


def test_erase_fills_the_box_only() -> None:
  images = _images()
  boxes = np.zeros((BATCH, 4), np.float32)
  boxes[0] = [2, 3, 5, 7]
  output = np.array(augment_jax.erase(images, boxes, (-1.0, -2.0, -3.0)))
  np.testing.assert_array_equal(output[0, 2:7, 3:10], np.broadcast_to([-1.0, -2.0, -3.0], (5, 7, 3)))
  output[0, 2:7, 3:10] = images[0, 2:7, 3:10]
  np.testing.assert_array_equal(output, images)  # Nothing else changed; empty boxes erase nothing.


@pytest.mark.parametrize('name', sorted(OPS))
def test_shape_range_determinism_and_variation(name: str) -> None:
  augment = jax.jit(OPS[name][0])
  same = np.repeat(_images(1), BATCH, axis=0)  # One image B times: examples must still differ.
  outputs = [np.asarray(augment(key, same)) for key in KEYS]
  for output in outputs:
    assert output.shape == same.shape and output.dtype == np.float32
    assert output.min() >= 0 and output.max() <= 1
    assert len({example.tobytes() for example in output}) > 1
  np.testing.assert_array_equal(np.asarray(augment(KEYS[0], same)), outputs[0])
  assert len({output.tobytes() for output in outputs}) == len(KEYS)


@pytest.mark.parametrize('name', ['random_erasing', 'random_affine', 'color_jitter', 'random_resized_crop'])
def test_statistics_match_tf(name: str) -> None:
  """Over a batch, JAX and TF change pixels alike: same share changed, same mean and spread of change."""
  jax_op, tf_op = OPS[name]
  images = _images(64, seed=3)
  ours = np.asarray(jax.jit(jax_op)(KEYS[1], images))
  seeds = np.stack([np.arange(len(images)), np.full(len(images), 9)], axis=-1).astype(np.int64)
  theirs = _tf_each(lambda image, seed: tf_op(seed, image), images, seeds)
  for output in (ours, theirs):
    assert output.min() >= 0 and output.max() <= 1
  changes = [output - images for output in (ours, theirs)]
  changed = [np.mean(np.abs(change) > 1e-6) for change in changes]
  assert abs(changed[0] - changed[1]) < 0.1, changed
  np.testing.assert_allclose(*[np.mean(np.abs(change)) for change in changes], rtol=0.25, atol=0.005)
  np.testing.assert_allclose(*[np.std(change) for change in changes], rtol=0.25, atol=0.005)
  np.testing.assert_allclose(*[output.mean() for output in (ours, theirs)], atol=0.02)


def test_build_augment_applies_ops_in_order() -> None:
  images, key = _images(), KEYS[2]
  fold_in = jax.random.fold_in
  crop_then_flip = augment_jax.build_augment(_config(ops=('random_crop', 'horizontal_flip')))
  expected = augment_jax.horizontal_flip(fold_in(key, 1), augment_jax.random_crop(fold_in(key, 0), images, 4))
  np.testing.assert_array_equal(np.asarray(crop_then_flip(key, images)), np.asarray(expected))
  flip_then_crop = augment_jax.build_augment(_config(ops=('horizontal_flip', 'random_crop')))
  expected = augment_jax.random_crop(fold_in(key, 1), augment_jax.horizontal_flip(fold_in(key, 0), images), 4)
  np.testing.assert_array_equal(np.asarray(flip_then_crop(key, images)), np.asarray(expected))
  np.testing.assert_array_equal(np.asarray(augment_jax.build_augment(_config(ops=()))(key, images)), images)


def test_build_augment_with_every_op_compiles_and_matches_eager() -> None:
  augment = augment_jax.build_augment(_config(ops=AUGMENTATIONS, erasing_probability=1.0))
  images = _images()
  examples = Examples(0, 1, jnp.arange(BATCH))  # for alternating_flip
  eager = np.asarray(augment(KEYS[3], images, examples))
  np.testing.assert_allclose(np.asarray(jax.jit(augment)(KEYS[3], images, examples)), eager, atol=1e-5)


@pytest.mark.parametrize(
    'overrides, key',
    [
        ({'ops': ('random_crop', 'cutmix')}, 'augment.ops'),
        ({'crop_padding': -1}, 'augment.crop_padding'),
        ({'jitter': (0.2, 0.2, 0.2, 0.6)}, 'augment.jitter'),
    ],
)
def test_build_augment_refuses_bad_config(overrides: dict[str, object], key: str) -> None:
  config = _config()
  with config.unlocked(), config.ignore_type():
    config.update(overrides)
  with pytest.raises(ConfigError, match=key):
    augment_jax.build_augment(config)


def test_normalize_is_torchvision_normalize_with_the_statistics_given() -> None:
  images = _images(2)
  kuangliu = normalization.PRESETS['kuangliu']
  expected = (images - np.array([0.4914, 0.4822, 0.4465])) / np.array([0.2023, 0.1994, 0.2010])  # kuangliu's main.py
  np.testing.assert_allclose(np.asarray(augment_jax.normalize(images, kuangliu)), expected, rtol=1e-5, atol=1e-5)
