"""The ranges and rates of the random augmentations, in both backends, against torchvision's documented semantics.

Each test draws an op many times on an image whose pixels say where they came from, reads back the drawn
parameter (offset, flip, box, shift, angle, factor) and checks it against the range torchvision documents:
nothing outside, both ends reached, and counts within 4 binomial standard deviations of the expected rate.
"""

import colorsys

import jax
import numpy as np
import pytest

from cifar_jax.data import augment_jax, augment_tf

tf = augment_tf.tf
BACKENDS = ('jax', 'tf')
SIZE = 32
CENTER = (SIZE - 1) / 2


def _draws(backend: str, name: str, image: np.ndarray, count: int, *arguments: object) -> np.ndarray:
  """`count` independent draws [count, H, W, C] of op `name` on one image, from the backend's own randomness."""
  if backend == 'jax':
    draw = jax.jit(lambda key, images: getattr(augment_jax, name)(key, images, *arguments))
    return np.asarray(draw(jax.random.key(1), np.broadcast_to(image, (count, *image.shape))))
  op, image = getattr(augment_tf, name), tf.constant(image)
  seeds = tf.stack([tf.range(count, dtype=tf.int64), tf.fill([count], tf.constant(11, tf.int64))], axis=-1)
  each = lambda seed: op(seed, image, *arguments)
  return tf.function(lambda s: tf.map_fn(each, s, fn_output_signature=tf.float32))(seeds).numpy()


def _coordinates() -> np.ndarray:
  """An image whose pixel (row, col) is ((row + 1) / 64, (col + 1) / 64, 1): never 0, so fill shows."""
  rows, cols = np.mgrid[:SIZE, :SIZE].astype(np.float32)
  return np.stack([(rows + 1) / 64, (cols + 1) / 64, np.ones_like(rows)], axis=-1)


def _source(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The input row and column that each output pixel of `_coordinates()` shows (-1 where filled)."""
  return np.rint(outputs[..., 0] * 64).astype(int) - 1, np.rint(outputs[..., 1] * 64).astype(int) - 1


def _assert_binomial(count: int | np.ndarray, trials: int, probability: float | np.ndarray) -> None:
  """Each count is within 4 standard deviations of trials * probability."""
  sigma = np.sqrt(trials * probability * (1 - probability))
  assert np.all(np.abs(count - trials * probability) <= 4 * sigma), (count, trials * probability, sigma)


def _assert_uniform(values: np.ndarray, low: float, high: float, tolerance: float = 1e-4) -> None:
  """Nothing outside [low, high], both ends reached within 3 % of the width, each fifth holds a fifth."""
  width = high - low
  assert low - tolerance <= values.min() < low + 0.03 * width, (values.min(), low)
  assert high - 0.03 * width < values.max() <= high + tolerance, (values.max(), high)
  counts = np.histogram(values, bins=5, range=(low - tolerance, high + tolerance))[0]
  _assert_binomial(counts, len(values), 0.2)


@pytest.mark.parametrize('backend', BACKENDS)
def test_crop_offsets_are_uniform_over_0_to_twice_the_padding(backend: str) -> None:
  """RandomCrop(32, padding=4): top and left each uniform over 0..8, both ends included."""
  count, padding = 900, 4
  rows, cols = _source(_draws(backend, 'random_crop', _coordinates(), count, padding))
  # Output (16, 16) shows padded (16 + top, 16 + left), that is input (16 + top - padding, ...).
  for offsets in (rows[:, 16, 16] - 16 + padding, cols[:, 16, 16] - 16 + padding):
    assert set(offsets) == set(range(2 * padding + 1))
    _assert_binomial(np.bincount(offsets), count, 1 / (2 * padding + 1))


@pytest.mark.parametrize('backend', BACKENDS)
def test_flip_mirrors_half_of_the_images(backend: str) -> None:
  """RandomHorizontalFlip(p=0.5): each output is the image or its mirror, mirrors at rate 0.5."""
  count, image = 2000, _coordinates()
  outputs = _draws(backend, 'horizontal_flip', image, count)
  flipped = np.all(outputs == image[:, ::-1], axis=(1, 2, 3))
  assert np.all(flipped | np.all(outputs == image, axis=(1, 2, 3)))
  _assert_binomial(flipped.sum(), count, 0.5)


@pytest.mark.parametrize('backend', BACKENDS)
def test_erasing_rate_and_box_follow_probability_scale_and_ratio(backend: str) -> None:
  """RandomErasing(p, scale, ratio): erases with rate p one h x w box, h = round(sqrt(a r)), w = round(sqrt(a / r)),
  a / (H W) uniform in scale, log r uniform in log ratio, h < H and w < W."""
  count, probability, scale, ratio = 1000, 0.3, (0.02, 0.33), (0.3, 3.3)
  outputs = _draws(backend, 'random_erasing', _coordinates(), count, probability, scale, ratio, -1.0)
  erased = outputs[..., 2] == -1
  applied = erased.any(axis=(1, 2))
  _assert_binomial(applied.sum(), count, probability)
  heights, widths = erased.any(axis=2).sum(axis=1)[applied], erased.any(axis=1).sum(axis=1)[applied]
  np.testing.assert_array_equal(erased[applied].sum(axis=(1, 2)), heights * widths)  # One solid box each.
  assert heights.max() < SIZE and widths.max() < SIZE
  # Some area in scale and some ratio in `ratio` round to (h, w): the intervals that round to them overlap.
  area = SIZE * SIZE
  assert np.all((heights - 0.5) * (widths - 0.5) <= scale[1] * area)
  assert np.all((heights + 0.5) * (widths + 0.5) >= scale[0] * area)
  assert np.all((heights - 0.5) / (widths + 0.5) <= ratio[1]) and np.all((heights + 0.5) / (widths - 0.5) >= ratio[0])
  # Both ends of scale and ratio reached (a ratio below 0.4, say, has chance log(0.4 / 0.3) / log(11) = 12 %).
  fractions, aspects = heights * widths / area, heights / widths
  assert fractions.min() < scale[0] + 0.02 and fractions.max() > scale[1] - 0.05
  assert aspects.min() < 0.4 and aspects.max() > 2.5


@pytest.mark.parametrize('backend', BACKENDS)
def test_affine_shifts_are_rounded_uniform_within_translate_times_size(backend: str) -> None:
  """RandomAffine(0, translate=(tx, ty)): dx = round(U(-tx W, tx W)), dy = round(U(-ty H, ty H)), so whole
  pixels |dx| <= tx W with the two ends half as likely as the others."""
  count, translate = 1000, (0.25, 0.125)
  rows, cols = _source(_draws(backend, 'random_affine', _coordinates(), count, 0.0, translate))
  for shifts, limit in ((16 - cols[:, 16, 16], translate[0] * SIZE), (16 - rows[:, 16, 16], translate[1] * SIZE)):
    values = np.arange(-limit, limit + 1)
    assert set(shifts) == set(values)
    expected = np.where(np.abs(values) == limit, 0.5, 1.0) / (2 * limit)
    _assert_binomial(np.bincount(shifts - int(values[0])), count, expected)


def _rotation_degrees(outputs: np.ndarray) -> np.ndarray:
  """Per output of `_coordinates()`, the mean angle (degrees, counter-clockwise) from each input pixel to where it
  is shown, over the ring 8 to 15 pixels from the center (where nearest-pixel rounding moves angles least)."""
  rows, cols = np.mgrid[:SIZE, :SIZE]
  source_rows, source_cols = _source(outputs)
  turn = np.arctan2(CENTER - rows, cols - CENTER) - np.arctan2(CENTER - source_rows, source_cols - CENTER)
  radius = np.hypot(rows - CENTER, cols - CENTER)
  ring = (outputs[..., 2] > 0) & (radius >= 8) & (radius <= 15)
  return np.degrees((np.angle(np.exp(1j * turn)) * ring).sum(axis=(1, 2)) / ring.sum(axis=(1, 2)))


@pytest.mark.parametrize('backend', BACKENDS)
def test_affine_angles_are_uniform_within_degrees(backend: str) -> None:
  """RandomAffine(degrees=30): angle uniform in [-30, 30]."""
  degrees = 30.0
  angles = _rotation_degrees(_draws(backend, 'random_affine', _coordinates(), 500, degrees, (0.0, 0.0)))
  _assert_uniform(angles, -degrees, degrees, tolerance=1.0)


def _hue_shift(outputs: np.ndarray, color: tuple[float, float, float]) -> np.ndarray:
  """Each output's hue minus the hue of `color`, in turns in [-0.5, 0.5), from Python's colorsys."""
  hue = colorsys.rgb_to_hsv(*color)[0]
  return np.array([(colorsys.rgb_to_hsv(*map(float, pixel))[0] - hue + 0.5) % 1 - 0.5 for pixel in outputs[:, 0, 0]])


BROWN = (0.6, 0.4, 0.2)
HALF_DARK = np.concatenate([np.full((16, SIZE, 3), 0.2), np.full((16, SIZE, 3), 0.6)]).astype(np.float32)
# ColorJitter with one amount set: (amounts, image, the drawn factor read back from outputs, its range).
# Brightness b: factor f in [max(0, 1 - b), 1 + b] multiplies the image. Contrast: f blends with the mean gray,
# so the difference of two gray levels scales by f. Saturation: f blends with the pixel's gray, so red - blue
# scales by f. Hue h: a shift in [-h, h] turns.
JITTERS = {
    'brightness': (
        (1.5, 0, 0, 0),
        np.full((SIZE, SIZE, 3), 0.3, np.float32),
        lambda out: out[:, 0, 0, 0] / 0.3,
        (0.0, 2.5),
    ),
    'contrast': ((0, 0.5, 0, 0), HALF_DARK, lambda out: (out[:, -1, 0, 0] - out[:, 0, 0, 0]) / 0.4, (0.5, 1.5)),
    'saturation': (
        (0, 0, 0.8, 0),
        np.full((SIZE, SIZE, 3), BROWN, np.float32),
        lambda out: (out[:, 0, 0, 0] - out[:, 0, 0, 2]) / 0.4,
        (0.2, 1.8),
    ),
    'hue': (
        (0, 0, 0, 0.4),
        np.full((SIZE, SIZE, 3), BROWN, np.float32),
        lambda out: _hue_shift(out, BROWN),
        (-0.4, 0.4),
    ),
}


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('part', sorted(JITTERS))
def test_jitter_factors_are_uniform_in_torchvision_ranges(backend: str, part: str) -> None:
  amounts, image, factor, (low, high) = JITTERS[part]
  _assert_uniform(factor(_draws(backend, 'color_jitter', image, 400, *amounts)), low, high, tolerance=1e-3)
