"""Tests the TF augmentations: shapes, determinism, exact pixels, config checks, op order (their ranges and
rates: test_augment_ranges.py)."""

import inspect
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from cifar_jax.data import augment_jax, augment_tf, cifar10, normalization, tfdata
from cifar_jax.data.augment_config import AUGMENTATIONS, OPS, Examples, check_augment_config, describe
from cifar_jax.errors import ConfigError
from configs import default

tf = augment_tf.tf
SEEDS = [tf.constant([seed, 7], tf.int64) for seed in range(12)]

# Each augmentation with the default config's arguments, erasing always on so it shows.
AUGMENT_FNS = {
    'random_crop': lambda seed, image: augment_tf.random_crop(seed, image, 4),
    'horizontal_flip': augment_tf.horizontal_flip,
    'random_erasing': lambda seed, image: augment_tf.random_erasing(
        seed, image, 1.0, (0.02, 0.33), (0.3, 3.3), cifar10.CIFAR10_MEAN
    ),
    'random_affine': lambda seed, image: augment_tf.random_affine(seed, image, 5.0, (0.2, 0.2)),
    'color_jitter': lambda seed, image: augment_tf.color_jitter(seed, image, 0.2, 0.2, 0.2, 0.1),
    'random_resized_crop': lambda seed, image: augment_tf.random_resized_crop(seed, image, (0.8, 1.0), (0.75, 4 / 3)),
    # takes the example's identity instead of a seed: here the seed's first number as its index
    'alternating_flip': lambda seed, image: augment_tf.alternating_flip(Examples(0, 0, seed[0]), image),
}


def _config(**overrides: object) -> ml_collections.ConfigDict:
  """The default run config's augment section with `overrides`."""
  config = default.get_config().augment
  config.update(overrides)
  return config


@pytest.fixture(scope='module')
def image() -> tf.Tensor:
  """A random float32 image in [0, 1], away from 0 so zero fill is visible."""
  return tf.constant(np.random.default_rng(0).uniform(0.1, 1, (32, 32, 3)).astype(np.float32))


def _arange_image() -> np.ndarray:
  """A float32 image whose pixels are all different, for exact position checks."""
  return (np.arange(32 * 32 * 3, dtype=np.float32) / (32 * 32 * 3)).reshape(32, 32, 3)


@pytest.mark.parametrize('name', sorted(AUGMENT_FNS))
def test_shape_range_determinism_and_variation(name: str, image: tf.Tensor) -> None:
  outputs = [AUGMENT_FNS[name](seed, image).numpy() for seed in SEEDS]
  for output in outputs:
    assert output.shape == (32, 32, 3) and output.dtype == np.float32
    assert output.min() >= 0 and output.max() <= 1
  np.testing.assert_array_equal(AUGMENT_FNS[name](SEEDS[0], image).numpy(), outputs[0])
  assert len({output.tobytes() for output in outputs}) > 1


def test_every_op_of_the_table_has_a_function_in_both_backends_taking_randomness_first() -> None:
  assert set(AUGMENTATIONS) == set(AUGMENT_FNS)
  for backend, first_two in ((augment_tf, ['seed', 'image']), (augment_jax, ['key', 'images'])):
    for op in OPS:
      expected = ['examples', first_two[1]] if op.by_example else first_two
      assert list(inspect.signature(getattr(backend, op.name)).parameters)[:2] == expected, (backend, op.name)


def test_crop_is_a_window_of_the_padded_image() -> None:
  image = _arange_image()
  padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
  windows = [padded[top : top + 32, left : left + 32] for top in range(9) for left in range(9)]
  for seed in SEEDS:
    output = augment_tf.random_crop(seed, tf.constant(image), 4).numpy()
    assert any(np.array_equal(output, window) for window in windows)
  np.testing.assert_array_equal(augment_tf.random_crop(SEEDS[0], tf.constant(image), 0).numpy(), image)


def test_erasing_fills_one_rectangle_with_value() -> None:
  image = _arange_image() + 1  # No pixel equals the fill value.
  for seed in SEEDS:
    output = augment_tf.random_erasing(
        seed, tf.constant(image), 1.0, (0.02, 0.33), (0.3, 3.3), (-1.0, -2.0, -3.0)
    ).numpy()
    erased = output[..., 0] == -1
    assert 0 < erased.sum() < erased.size
    rows, cols = np.nonzero(erased)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    assert erased[box].all() and erased.sum() == erased[box].size
    np.testing.assert_array_equal(output[box], np.broadcast_to([-1.0, -2.0, -3.0], output[box].shape))
    np.testing.assert_array_equal(output[~erased], image[~erased])
  unchanged = augment_tf.random_erasing(SEEDS[0], tf.constant(image), 0.0, (0.02, 0.33), (0.3, 3.3), 0.0)
  np.testing.assert_array_equal(unchanged.numpy(), image)


def test_affine_without_rotation_is_a_whole_pixel_shift() -> None:
  image = _arange_image() + 1
  for seed in SEEDS:
    output = augment_tf.random_affine(seed, tf.constant(image), 0.0, (0.25, 0.125)).numpy()
    matches = [
        (dx, dy) for dx in range(-8, 9) for dy in range(-4, 5) if np.array_equal(output, _shifted(image, dx, dy))
    ]
    assert len(matches) == 1


def _shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
  """`image` moved right by dx and down by dy, zero-filled."""
  out = np.zeros_like(image)
  out[max(dy, 0) : 32 + min(dy, 0), max(dx, 0) : 32 + min(dx, 0)] = image[
      max(-dy, 0) : 32 - max(dy, 0), max(-dx, 0) : 32 - max(dx, 0)
  ]
  return out


def test_rotation_is_counter_clockwise_about_the_center() -> None:
  image = _arange_image()
  rotate = augment_tf._rotate_and_shift  # pylint: disable=protected-access
  quarter = rotate(tf.constant(image), tf.constant(np.pi / 2, tf.float32), tf.constant([0.0, 0.0]))
  np.testing.assert_array_equal(quarter.numpy(), np.rot90(image))


def test_jitter_and_resized_crop_without_range_are_identity(image: tf.Tensor) -> None:
  jittered = augment_tf.color_jitter(SEEDS[0], image, 0.0, 0.0, 0.0, 0.0)
  np.testing.assert_allclose(jittered.numpy(), image.numpy(), atol=1e-5)
  cropped = augment_tf.random_resized_crop(SEEDS[0], image, (1.0, 1.0), (1.0, 1.0))
  np.testing.assert_allclose(cropped.numpy(), image.numpy(), atol=1e-6)


def test_jitter_keeps_a_gray_image_flat_and_gray() -> None:
  gray = tf.fill([32, 32, 3], 0.4)
  for seed in SEEDS[:4]:
    output = augment_tf.color_jitter(seed, gray, 0.5, 0.5, 0.5, 0.5).numpy()
    np.testing.assert_allclose(output, output[0, 0, 0], atol=1e-5)


def test_resized_crop_zooms_in() -> None:
  image = _arange_image()
  output = augment_tf.random_resized_crop(SEEDS[0], tf.constant(image), (0.25, 0.25), (1.0, 1.0)).numpy()
  assert output.min() >= image.min() and output.max() <= image.max()
  assert np.ptp(output[..., 0]) < 0.6 * np.ptp(image[..., 0])  # A 16x16 window spans less.


def test_normalize_is_torchvision_normalize_with_the_statistics_given(image: tf.Tensor) -> None:
  kuangliu = normalization.PRESETS['kuangliu']
  expected = (image.numpy() - np.array([0.4914, 0.4822, 0.4465])) / np.array([0.2023, 0.1994, 0.2010])  # main.py's
  np.testing.assert_allclose(augment_tf.normalize(image, kuangliu).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_build_augment_applies_ops_in_order(image: tf.Tensor) -> None:
  fold_in = tf.random.experimental.stateless_fold_in
  seed = SEEDS[3]
  crop_then_flip = augment_tf.build_augment(_config(ops=('random_crop', 'horizontal_flip')))
  expected = augment_tf.horizontal_flip(fold_in(seed, 1), augment_tf.random_crop(fold_in(seed, 0), image, 4))
  np.testing.assert_array_equal(crop_then_flip(seed, image).numpy(), expected.numpy())
  flip_then_crop = augment_tf.build_augment(_config(ops=('horizontal_flip', 'random_crop')))
  expected = augment_tf.random_crop(fold_in(seed, 1), augment_tf.horizontal_flip(fold_in(seed, 0), image), 4)
  np.testing.assert_array_equal(flip_then_crop(seed, image).numpy(), expected.numpy())
  nothing = augment_tf.build_augment(_config(ops=()))
  np.testing.assert_array_equal(nothing(seed, image).numpy(), image.numpy())


@pytest.mark.parametrize(
    'overrides, key',
    [
        ({'ops': ('random_crop', 'cutmix')}, 'augment.ops'),
        ({'ops': 'random_crop'}, 'augment.ops'),
        ({'crop_padding': -1}, 'augment.crop_padding'),
        ({'crop_padding': 2.5}, 'augment.crop_padding'),
        ({'erasing_probability': 1.5}, 'augment.erasing_probability'),
        ({'erasing_scale': (0.5, 0.2)}, 'augment.erasing_scale'),
        ({'erasing_ratio': (0.0, 3.3)}, 'augment.erasing_ratio'),
        ({'affine_degrees': -5.0}, 'augment.affine_degrees'),
        ({'affine_translate': (0.2, 1.5)}, 'augment.affine_translate'),
        ({'jitter': (0.2, 0.2, 0.2)}, 'augment.jitter'),
        ({'jitter': (0.2, 0.2, 0.2, 0.6)}, 'augment.jitter'),
        ({'resized_crop_scale': (0.0, 1.0)}, 'augment.resized_crop_scale'),
        ({'resized_crop_ratio': (1.3, 0.75)}, 'augment.resized_crop_ratio'),
    ],
)
def test_check_augment_config_names_the_key(overrides: dict[str, object], key: str) -> None:
  config = _config()
  with config.unlocked(), config.ignore_type():
    config.update(overrides)
  with pytest.raises(ConfigError, match=key):
    check_augment_config(config)


def test_check_augment_config_lists_choices_and_accepts_defaults() -> None:
  check_augment_config(_config(ops=AUGMENTATIONS))
  with pytest.raises(ConfigError, match='random_resized_crop'):
    check_augment_config(_config(ops=('cutout',)))


def test_default_config_holds_every_table_key_and_the_listing_explains_each() -> None:
  keys = [key for op in OPS for key in op.keys]
  assert set(_config().keys()) == {'ops', *(key.name for key in keys)}
  ops, *listing = describe().splitlines()
  assert ops.startswith('augment.ops: ') and all(op.name in ops for op in OPS)  # the key every run reads first
  assert len(listing) == len(keys)
  for key, line in zip(keys, listing):
    assert line.startswith(f'augment.{key.name} = ') and line.endswith(key.meaning)


def test_loader_and_config_check_do_not_import_tensorflow() -> None:
  code = 'import sys, cifar_jax.data.cifar10, cifar_jax.data.augment_config; ' 'sys.exit("tensorflow" in sys.modules)'
  assert subprocess.run([sys.executable, '-c', code], check=False).returncode == 0


def test_augmentations_inside_the_pipeline_match_eager() -> None:
  rng = np.random.default_rng(1)
  split = cifar10.Split(rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8), np.arange(12, dtype=np.int32))
  config = _config(ops=AUGMENTATIONS, erasing_probability=1.0)
  batch = next(tfdata.train_batches(split, batch_size=4, seed=5, epoch=2, augment_config=config, normalize=False))
  assert batch['image'].shape == (4, 32, 32, 3) and batch['image'].dtype == np.float32
  assert batch['image'].min() >= 0 and batch['image'].max() <= 1
  augment = augment_tf.build_augment(config)
  for position, label in enumerate(batch['label']):
    seed = tf.random.experimental.stateless_fold_in(tf.constant([5, 2], tf.int64), tf.constant(position, tf.int64))
    examples = Examples(5, 2, tf.constant(label))  # the labels are the example indices
    expected = augment(seed, tf.constant(split.images[label], tf.float32) / 255, examples).numpy()
    np.testing.assert_allclose(batch['image'][position], expected, atol=1e-5)
