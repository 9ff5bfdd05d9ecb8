"""Batched augmentations in pure JAX, for jit-compiled input pipelines on the accelerator.

The same ops, config keys and semantics as `augment_tf` (torchvision's transforms of the same names),
without TensorFlow. Images are float32 [B, H, W, C] in [0, 1]. Each random op draws every example's
parameters from one `jax.random` key (arrays with a leading batch axis, so examples are independent)
and hands them to an explicit-parameter op (`crop`, `flip`, `erase`, `affine`, `jitter`,
`resized_crop`): deterministic functions that the tests compare with TensorFlow. Each random op is
`op(key, images, *arguments)`, named and given its arguments by the table in `augment_config`.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from cifar_jax.data.augment_config import (
    EXAMPLE_STREAM,
    GRAY_WEIGHTS,
    JITTER_ORDERS,
    NUM_TRIES,
    Examples,
    center_box,
    compose,
)
from cifar_jax.data.normalization import DEFAULT, Normalization

Pair = Sequence[float]
Augment = Callable[..., jax.Array]  # (key, images, examples=None) -> images


def _uniform(key: jax.Array, shape: Sequence[int], low: float, high: float) -> jax.Array:
  """Float32 draws uniform in [low, high)."""
  return jax.random.uniform(key, shape, jnp.float32, low, high)


def _per_example(values: jax.Array) -> jax.Array:
  """[B] -> [B, 1, 1, 1], to broadcast one value per example over its pixels."""
  return values[:, None, None, None]


def crop(images: jax.Array, padding: int, offsets: jax.Array, padding_mode: str = 'constant') -> jax.Array:
  """Pads each side by `padding` (zeros, or the border mirrored when `padding_mode` is 'reflect') and cuts the
  original size at `offsets` [B, 2] (top, left)."""
  _, height, width, channels = images.shape
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode=padding_mode)
  window = lambda image, offset: jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))
  return jax.vmap(window)(padded, offsets)


def random_crop(key: jax.Array, images: jax.Array, padding: int, padding_mode: str = 'constant') -> jax.Array:
  """Crops each example at a uniform offset of its padded self (RandomCrop with padding and padding_mode)."""
  return crop(images, padding, jax.random.randint(key, (images.shape[0], 2), 0, 2 * padding + 1), padding_mode)


def flip(images: jax.Array, flags: jax.Array) -> jax.Array:
  """Mirrors left-right the examples whose bool flag [B] is set."""
  return jnp.where(_per_example(flags), images[:, :, ::-1], images)


def horizontal_flip(key: jax.Array, images: jax.Array) -> jax.Array:
  """Mirrors each example left-right with probability 0.5 (RandomHorizontalFlip)."""
  return flip(images, jax.random.bernoulli(key, 0.5, (images.shape[0],)))


def alternating_flip(examples: Examples, images: jax.Array) -> jax.Array:
  """Mirrors example i of the batch iff (its epoch-0 coin flip) xor (the epoch is odd) (airbench's alternating
  flip); the coin is Bernoulli(1/2) from fold_in(fold_in(key(seed), EXAMPLE_STREAM), the example's index)."""
  base = jax.random.fold_in(jax.random.key(examples.seed), EXAMPLE_STREAM)
  coins = jax.vmap(lambda index: jax.random.bernoulli(jax.random.fold_in(base, index)))(examples.index)
  return flip(images, coins ^ (examples.epoch % 2 == 1))


def _random_sides(
    key: jax.Array, batch: int, height: int, width: int, scale: Pair, ratio: Pair
) -> tuple[jax.Array, jax.Array]:
  """[B, NUM_TRIES] rounded (sqrt(a * r), sqrt(a / r)), area a ~ U(scale) * H * W, log r ~ U(log ratio)."""
  area_key, ratio_key = jax.random.split(key)
  area = height * width * _uniform(area_key, (batch, NUM_TRIES), scale[0], scale[1])
  aspect = jnp.exp(_uniform(ratio_key, (batch, NUM_TRIES), math.log(ratio[0]), math.log(ratio[1])))
  return jnp.round(jnp.sqrt(area * aspect)), jnp.round(jnp.sqrt(area / aspect))


def _first_valid(valid: jax.Array, heights: jax.Array, widths: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Per example: whether any try is valid, and the height and width of the first valid one (else of try 0)."""
  index = jnp.argmax(valid, axis=-1)[:, None]
  take = lambda values: jnp.take_along_axis(values, index, axis=-1)[:, 0]
  return valid.any(axis=-1), take(heights), take(widths)


def _random_corner(
    key: jax.Array, height: int, width: int, box_heights: jax.Array, box_widths: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Top-left corners [B] of boxes placed uniformly inside the image (integer-valued float32)."""
  room = jnp.stack([height - box_heights + 1, width - box_widths + 1], axis=-1)
  corner = jnp.floor(_uniform(key, room.shape, 0, 1) * room)
  return corner[:, 0], corner[:, 1]


def erase(images: jax.Array, boxes: jax.Array, value: float | Sequence[float]) -> jax.Array:
  """Fills each example's box [B, 4] (top, left, height, width) with `value` per channel; empty boxes erase nothing."""
  _, height, width, _ = images.shape
  top, left, box_height, box_width = (_per_example(boxes[:, i]) for i in range(4))
  rows = jnp.arange(height)[None, :, None, None]
  cols = jnp.arange(width)[None, None, :, None]
  inside = (rows >= top) & (rows < top + box_height) & (cols >= left) & (cols < left + box_width)
  return jnp.where(inside, jnp.asarray(value, images.dtype), images)


def random_erasing(
    key: jax.Array, images: jax.Array, probability: float, scale: Pair, ratio: Pair, value: float | Sequence[float]
) -> jax.Array:
  """With `probability`, fills one random rectangle of each example with `value` per channel (RandomErasing)."""
  batch, height, width, _ = images.shape
  apply_key, sides_key, corner_key = jax.random.split(key, 3)
  heights, widths = _random_sides(sides_key, batch, height, width, scale, ratio)
  found, box_heights, box_widths = _first_valid((heights < height) & (widths < width), heights, widths)
  top, left = _random_corner(corner_key, height, width, box_heights, box_widths)
  apply = found & (_uniform(apply_key, (batch,), 0, 1) < probability)
  boxes = jnp.where(apply[:, None], jnp.stack([top, left, box_heights, box_widths], axis=-1), 0)
  return erase(images, boxes, value)


def _round_half_away(x: jax.Array) -> jax.Array:
  """Rounds halves away from zero, as C's `round` (and so TensorFlow's nearest-neighbour sampling) does."""
  return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def _sample_nearest(images: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
  """Each example's pixels at the nearest of the source coordinates [B, H, W]; 0 outside the image."""
  _, height, width, _ = images.shape
  rows, cols = _round_half_away(rows).astype(jnp.int32), _round_half_away(cols).astype(jnp.int32)
  inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
  pick = lambda image, r, c: image[jnp.clip(r, 0, height - 1), jnp.clip(c, 0, width - 1)]
  return jnp.where(inside[..., None], jax.vmap(pick)(images, rows, cols), 0)


def affine(images: jax.Array, angles: jax.Array, shifts: jax.Array) -> jax.Array:
  """Rotates each example counter-clockwise by `angles` [B] radians about the center, shifts by (dx, dy) [B, 2].

  Nearest-neighbour sampling, 0 outside: the transform of `augment_tf._rotate_and_shift`, computed in
  the same order so that the same source pixels are picked.
  """
  _, height, width, _ = images.shape
  center_x, center_y = (width - 1) / 2, (height - 1) / 2
  cos, sin = (values[:, None, None] for values in (jnp.cos(angles), jnp.sin(angles)))
  new_x, new_y = center_x + shifts[:, 0, None, None], center_y + shifts[:, 1, None, None]
  y, x = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32), indexing='ij')
  source_x = cos * x + -sin * y + (center_x - cos * new_x + sin * new_y)
  source_y = sin * x + cos * y + (center_y - sin * new_x - cos * new_y)
  return _sample_nearest(images, source_y, source_x)


def random_affine(key: jax.Array, images: jax.Array, degrees: float, translate: Pair) -> jax.Array:
  """Rotates by U(-degrees, degrees), shifts by whole pixels up to translate * size (RandomAffine)."""
  batch, height, width, _ = images.shape
  angle_key, shift_key = jax.random.split(key)
  angles = _uniform(angle_key, (batch,), -degrees, degrees) * (math.pi / 180)
  max_shift = jnp.array([translate[0] * width, translate[1] * height], jnp.float32)
  return affine(images, angles, jnp.round(_uniform(shift_key, (batch, 2), -1, 1) * max_shift))


def _grayscale(images: jax.Array) -> jax.Array:
  """Luma [B, H, W, 1] with torchvision's weights."""
  return jnp.sum(images * jnp.array(GRAY_WEIGHTS, images.dtype), axis=-1, keepdims=True)


def _blend(images: jax.Array, other: jax.Array | float, factors: jax.Array) -> jax.Array:
  """factor * images + (1 - factor) * other per example, clipped to [0, 1] as torchvision does."""
  factors = _per_example(factors)
  return jnp.clip(factors * images + (1 - factors) * other, 0.0, 1.0)


def _rgb_to_hsv(images: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Hue in [0, 1), saturation and value, each [..., H, W]."""
  red, green, blue = images[..., 0], images[..., 1], images[..., 2]
  value = images.max(axis=-1)
  chroma = value - images.min(axis=-1)
  saturation = jnp.where(value > 0, chroma / jnp.where(value > 0, value, 1), 0)
  safe_chroma = jnp.where(chroma > 0, chroma, 1)
  hue = jnp.where(
      value == red,
      (green - blue) / safe_chroma,
      jnp.where(value == green, (blue - red) / safe_chroma + 2, (red - green) / safe_chroma + 4),
  )
  return jnp.where(chroma > 0, jnp.mod(hue / 6, 1.0), 0), saturation, value


def _hsv_to_rgb(hue: jax.Array, saturation: jax.Array, value: jax.Array) -> jax.Array:
  """The inverse of `_rgb_to_hsv`: channel n is v - v s clip(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6."""
  sector = jnp.mod(jnp.array([5, 3, 1], hue.dtype) + 6 * hue[..., None], 6)
  weight = jnp.clip(jnp.minimum(sector, 4 - sector), 0, 1)
  return value[..., None] * (1 - saturation[..., None] * weight)


def adjust_hue(images: jax.Array, deltas: jax.Array) -> jax.Array:
  """Rotates each example's hue by `deltas` [B] turns in HSV space (tf.image.adjust_hue, batched)."""
  hue, saturation, value = _rgb_to_hsv(images)
  return _hsv_to_rgb(jnp.mod(hue + deltas[:, None, None], 1.0), saturation, value)


def _blend_step(images: jax.Array, ops: jax.Array, factors: jax.Array) -> jax.Array:
  """Each example's op [B] of 0 brightness (blend with black), 1 contrast (with its mean gray), 2 saturation (with
  its gray), with its factor from `factors` [B, 4]; op 3 leaves the example as it is (a blend with factor 1)."""
  gray = _grayscale(images)
  other = jnp.where(
      _per_example(ops == 0), 0.0, jnp.where(_per_example(ops == 1), gray.mean(axis=(1, 2, 3), keepdims=True), gray)
  )
  factor = jnp.take_along_axis(factors, jnp.minimum(ops, 2)[:, None], axis=1)[:, 0]
  return _blend(images, other, jnp.where(ops < 3, factor, 1.0))


def jitter(images: jax.Array, factors: jax.Array, orders: jax.Array) -> jax.Array:
  """Applies per-example factors [B, 4] (brightness, contrast, saturation, then a hue shift in turns) in each
  example's order [B, 4] (a row of JITTER_ORDERS), as torchvision's ColorJitter applies its drawn permutation.

  The hue shift, the one costly op, runs once: the blends ordered before it, then it, then the blends after.
  """
  hue_at = jnp.argmax(orders == 3, axis=1)
  for k in range(3):
    images = _blend_step(images, jnp.where(k < hue_at, orders[:, k], 3), factors)
  images = jnp.clip(adjust_hue(images, factors[:, 3]), 0.0, 1.0)
  for k in range(1, 4):
    images = _blend_step(images, jnp.where(k > hue_at, orders[:, k], 3), factors)
  return images


def jitter_params(
    key: jax.Array, batch: int, brightness: float, contrast: float, saturation: float, hue: float
) -> tuple[jax.Array, jax.Array]:
  """ColorJitter.get_params per example: factors [B, 4] (uniform in [max(0, 1 - amount), 1 + amount], the hue
  shift in [-hue, hue]) and orders [B, 4], uniform over the 24 of JITTER_ORDERS."""
  keys = jax.random.split(key, 5)
  factors = [
      _uniform(k, (batch,), max(0.0, 1 - amount), 1 + amount)
      for k, amount in zip(keys, (brightness, contrast, saturation))
  ]
  orders = jnp.array(JITTER_ORDERS, jnp.int32)[jax.random.randint(keys[4], (batch,), 0, len(JITTER_ORDERS))]
  return jnp.stack([*factors, _uniform(keys[3], (batch,), -hue, hue)], axis=-1), orders


def color_jitter(
    key: jax.Array, images: jax.Array, brightness: float, contrast: float, saturation: float, hue: float
) -> jax.Array:
  """Random brightness, contrast, saturation and hue shift in [-hue, hue], in a random order (ColorJitter)."""
  return jitter(images, *jitter_params(key, images.shape[0], brightness, contrast, saturation, hue))


def _bilinear_weights(starts: jax.Array, sizes: jax.Array, size: int) -> jax.Array:
  """[B, size, size] weights resizing each window [start, start + size) of an axis to `size` pixels.

  TensorFlow's bilinear resize with half-pixel centers (tf.image.resize): the source coordinate of
  output i is (i + 0.5) * window / size - 0.5, its two neighbours clamped to the window.
  """
  starts, sizes = starts[:, None], sizes[:, None]
  position = (jnp.arange(size, dtype=jnp.float32) + 0.5) * (sizes / size) - 0.5
  below = jnp.floor(position)
  lower, upper = jnp.maximum(below, 0), jnp.minimum(jnp.ceil(position), sizes - 1)
  lerp = (position - below)[..., None]
  one_hot = lambda index: jax.nn.one_hot((starts + index).astype(jnp.int32), size, dtype=jnp.float32)
  return one_hot(lower) * (1 - lerp) + one_hot(upper) * lerp


def resized_crop(images: jax.Array, boxes: jax.Array) -> jax.Array:
  """Cuts each example's box [B, 4] (top, left, height, width) and resizes it bilinearly to the full size."""
  _, height, width, _ = images.shape
  row_weights = _bilinear_weights(boxes[:, 0], boxes[:, 2], height)
  col_weights = _bilinear_weights(boxes[:, 1], boxes[:, 3], width)
  exact = jax.lax.Precision.HIGHEST  # No reduced-precision (TF32) matmuls: these are pixel values.
  rows = jnp.einsum('bik,bkwc->biwc', row_weights, images, precision=exact)
  return jnp.einsum('bjl,bilc->bijc', col_weights, rows, precision=exact)


def random_resized_crop(key: jax.Array, images: jax.Array, scale: Pair, ratio: Pair) -> jax.Array:
  """Crops a random area fraction `scale`, aspect `ratio`, resizes back bilinearly (RandomResizedCrop)."""
  batch, height, width, _ = images.shape
  sides_key, corner_key = jax.random.split(key)
  widths, heights = _random_sides(sides_key, batch, height, width, scale, ratio)
  valid = (widths > 0) & (widths <= width) & (heights > 0) & (heights <= height)
  found, box_heights, box_widths = _first_valid(valid, heights, widths)
  top, left = _random_corner(corner_key, height, width, box_heights, box_widths)
  boxes = jnp.where(
      found[:, None],
      jnp.stack([top, left, box_heights, box_widths], axis=-1),
      jnp.array(center_box(height, width, ratio), jnp.float32),
  )
  return resized_crop(images, boxes)


def normalize(images: jax.Array, normalization: Normalization) -> jax.Array:
  """Standardizes each channel: (images - mean) / std."""
  return (images - jnp.array(normalization.mean, images.dtype)) / jnp.array(normalization.std, images.dtype)


def build_augment(augment_config: Any, mean: Pair = DEFAULT.mean) -> Augment:
  """Returns augment(key, images, examples=None) applying `augment_config.ops` in order, op i with key
  fold_in(key, i) (or `examples`, for alternating_flip); random erasing fills with `mean`, the run's normalization
  mean."""
  return compose(augment_config, globals(), jax.random.fold_in, mean)
