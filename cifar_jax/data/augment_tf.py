"""Per-image augmentations in TensorFlow, each driven by a stateless seed so every run repeats exactly.

Images are float32 [H, W, C] in [0, 1] with a static shape. The semantics follow torchvision's
transforms of the same names, so results are comparable with PyTorch CIFAR-10 recipes. Each random op
is `op(seed, image, *arguments)`, named and given its arguments by the table in `augment_config`.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

from cifar_jax.data import tf_import
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

tf = tf_import.import_tensorflow()

Pair = Sequence[float]


def _uniform(seed: tf.Tensor, low: float, high: float, shape: Sequence[int] = ()) -> tf.Tensor:
  """Float32 draws uniform in [low, high) from a stateless seed."""
  return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def _split_seed(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
  """`count` independent seeds derived from `seed`."""
  return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def crop_at(image: tf.Tensor, padding: int, offset: tf.Tensor, padding_mode: str = 'constant') -> tf.Tensor:
  """Pads each side by `padding` (zeros, or the border mirrored when `padding_mode` is 'reflect'), then crops the
  original size at `offset` (top, left)."""
  padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]], mode=padding_mode.upper())
  return tf.slice(padded, tf.stack([offset[0], offset[1], 0]), image.shape)


def random_crop(seed: tf.Tensor, image: tf.Tensor, padding: int, padding_mode: str = 'constant') -> tf.Tensor:
  """Pads each side by `padding`, then crops the original size at a random offset (RandomCrop, padding_mode)."""
  offset = tf.random.stateless_uniform([2], seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32)
  return crop_at(image, padding, offset, padding_mode)


def flip_if(image: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
  """Mirrors the image left-right when the bool `flip` is true."""
  return tf.where(flip, tf.reverse(image, [1]), image)


def horizontal_flip(seed: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
  """Mirrors the image left-right with probability 0.5 (RandomHorizontalFlip)."""
  return flip_if(image, _uniform(seed, 0, 1) < 0.5)


def alternating_flip(examples: Examples, image: tf.Tensor) -> tf.Tensor:
  """Mirrors the image iff (its epoch-0 coin flip) xor (the epoch is odd) (airbench's alternating flip); the coin
  is a uniform draw < 1/2 from the stateless seed [seed, EXAMPLE_STREAM] folded with the example's index."""
  base = tf.stack([tf.cast(examples.seed, tf.int64), tf.constant(EXAMPLE_STREAM, tf.int64)])
  coin = _uniform(tf.random.experimental.stateless_fold_in(base, tf.cast(examples.index, tf.int64)), 0, 1) < 0.5
  return flip_if(image, tf.math.logical_xor(coin, tf.equal(tf.math.floormod(examples.epoch, 2), 1)))


def _random_sides(seed: tf.Tensor, height: int, width: int, scale: Pair, ratio: Pair) -> tuple[tf.Tensor, tf.Tensor]:
  """NUM_TRIES rounded (sqrt(a * r), sqrt(a / r)), area a ~ U(scale) * H * W, log r ~ U(log ratio)."""
  area_seed, ratio_seed = _split_seed(seed, 2)
  area = height * width * _uniform(area_seed, scale[0], scale[1], [NUM_TRIES])
  aspect = tf.exp(_uniform(ratio_seed, math.log(ratio[0]), math.log(ratio[1]), [NUM_TRIES]))
  return tf.round(tf.sqrt(area * aspect)), tf.round(tf.sqrt(area / aspect))


def _first_valid(valid: tf.Tensor, heights: tf.Tensor, widths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Whether any try is valid, and the height and width of the first valid one (else of try 0)."""
  index = tf.argmax(tf.cast(valid, tf.int32))
  return tf.reduce_any(valid), heights[index], widths[index]


def _random_corner(
    seed: tf.Tensor, height: int, width: int, box_height: tf.Tensor, box_width: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
  """Top-left corner of a box placed uniformly inside the image (integer-valued float32)."""
  room = tf.stack([height - box_height + 1, width - box_width + 1])
  top, left = tf.unstack(tf.floor(_uniform(seed, 0, 1, [2]) * room))
  return top, left


def random_erasing(
    seed: tf.Tensor, image: tf.Tensor, probability: float, scale: Pair, ratio: Pair, value: float | Sequence[float]
) -> tf.Tensor:
  """With `probability`, fills one random rectangle with `value` per channel (RandomErasing)."""
  height, width, _ = image.shape
  apply_seed, sides_seed, corner_seed = _split_seed(seed, 3)
  heights, widths = _random_sides(sides_seed, height, width, scale, ratio)
  found, box_height, box_width = _first_valid((heights < height) & (widths < width), heights, widths)
  top, left = _random_corner(corner_seed, height, width, box_height, box_width)
  rows = tf.range(height, dtype=tf.float32)[:, None, None]
  cols = tf.range(width, dtype=tf.float32)[None, :, None]
  inside = (rows >= top) & (rows < top + box_height) & (cols >= left) & (cols < left + box_width)
  erase = found & (_uniform(apply_seed, 0, 1) < probability)
  return tf.where(inside & erase, tf.constant(value, image.dtype), image)


def _rotate_and_shift(image: tf.Tensor, angle: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
  """Rotates counter-clockwise by `angle` radians about the center, shifts by (dx, dy); fills 0."""
  height, width, _ = image.shape
  center_x, center_y = (width - 1) / 2, (height - 1) / 2
  cos, sin = tf.cos(angle), tf.sin(angle)
  # The transform maps each output pixel back to its input: rotate by -angle about the shifted center.
  new_x, new_y = center_x + shift[0], center_y + shift[1]
  transform = tf.stack(
      [cos, -sin, center_x - cos * new_x + sin * new_y, sin, cos, center_y - sin * new_x - cos * new_y, 0.0, 0.0]
  )
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=image[None],
      transforms=transform[None],
      output_shape=[height, width],
      fill_value=0.0,
      interpolation='NEAREST',
      fill_mode='CONSTANT',
  )[0]


def random_affine(seed: tf.Tensor, image: tf.Tensor, degrees: float, translate: Pair) -> tf.Tensor:
  """Rotates by U(-degrees, degrees), shifts by whole pixels up to translate * size (RandomAffine)."""
  height, width, _ = image.shape
  angle_seed, shift_seed = _split_seed(seed, 2)
  angle = _uniform(angle_seed, -degrees, degrees) * (math.pi / 180)
  max_shift = tf.constant([translate[0] * width, translate[1] * height], tf.float32)
  return _rotate_and_shift(image, angle, tf.round(_uniform(shift_seed, -1, 1, [2]) * max_shift))


def _grayscale(image: tf.Tensor) -> tf.Tensor:
  """Luma [H, W, 1] with torchvision's weights."""
  return tf.reduce_sum(image * GRAY_WEIGHTS, axis=-1, keepdims=True)


def _blend(image: tf.Tensor, other: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
  """factor * image + (1 - factor) * other, clipped to [0, 1] as torchvision does."""
  return tf.clip_by_value(factor * image + (1 - factor) * other, 0.0, 1.0)


def _factor(seed: tf.Tensor, amount: float) -> tf.Tensor:
  """A jitter factor uniform in [max(0, 1 - amount), 1 + amount]."""
  return _uniform(seed, max(0.0, 1 - amount), 1 + amount)


def jitter(image: tf.Tensor, factors: tf.Tensor, order: tf.Tensor) -> tf.Tensor:
  """Applies factors [4] (brightness, contrast, saturation, then a hue shift in turns) in `order` [4] (a row of
  JITTER_ORDERS), as torchvision's ColorJitter applies its drawn permutation."""
  ops = (
      lambda x: _blend(x, tf.zeros_like(x), factors[0]),
      lambda x: _blend(x, tf.reduce_mean(_grayscale(x)), factors[1]),
      lambda x: _blend(x, _grayscale(x), factors[2]),
      lambda x: tf.clip_by_value(tf.image.adjust_hue(x, factors[3]), 0.0, 1.0),
  )
  for k in range(4):
    image = tf.switch_case(order[k], [lambda op=op, x=image: op(x) for op in ops])
  return image


def jitter_params(
    seed: tf.Tensor, brightness: float, contrast: float, saturation: float, hue: float
) -> tuple[tf.Tensor, tf.Tensor]:
  """ColorJitter.get_params: factors [4] (each uniform in [max(0, 1 - amount), 1 + amount], the hue shift in
  [-hue, hue]) and an order [4], uniform over the 24 of JITTER_ORDERS."""
  brightness_seed, contrast_seed, saturation_seed, hue_seed, order_seed = _split_seed(seed, 5)
  factors = tf.stack(
      [
          _factor(brightness_seed, brightness),
          _factor(contrast_seed, contrast),
          _factor(saturation_seed, saturation),
          _uniform(hue_seed, -hue, hue),
      ]
  )
  index = tf.random.stateless_uniform([], order_seed, minval=0, maxval=len(JITTER_ORDERS), dtype=tf.int32)
  return factors, tf.gather(tf.constant(JITTER_ORDERS, tf.int32), index)


def color_jitter(
    seed: tf.Tensor, image: tf.Tensor, brightness: float, contrast: float, saturation: float, hue: float
) -> tf.Tensor:
  """Random brightness, contrast, saturation and hue shift in [-hue, hue], in a random order (ColorJitter)."""
  return jitter(image, *jitter_params(seed, brightness, contrast, saturation, hue))


def random_resized_crop(seed: tf.Tensor, image: tf.Tensor, scale: Pair, ratio: Pair) -> tf.Tensor:
  """Crops a random area fraction `scale`, aspect `ratio`, resizes back bilinearly (RandomResizedCrop)."""
  height, width, channels = image.shape
  sides_seed, corner_seed = _split_seed(seed, 2)
  widths, heights = _random_sides(sides_seed, height, width, scale, ratio)
  valid = (widths > 0) & (widths <= width) & (heights > 0) & (heights <= height)
  found, box_height, box_width = _first_valid(valid, heights, widths)
  top, left = _random_corner(corner_seed, height, width, box_height, box_width)
  box = tf.where(
      found, tf.stack([top, left, box_height, box_width]), tf.constant(center_box(height, width, ratio), tf.float32)
  )
  top, left, box_height, box_width = tf.unstack(tf.cast(box, tf.int32))
  crop = tf.slice(image, [top, left, 0], [box_height, box_width, channels])
  return tf.image.resize(crop, [height, width], method='bilinear')


def normalize(image: tf.Tensor, normalization: Normalization) -> tf.Tensor:
  """Standardizes each channel: (image - mean) / std."""
  return (image - tf.constant(normalization.mean, image.dtype)) / tf.constant(normalization.std, image.dtype)


def build_augment(augment_config: Any, mean: Pair = DEFAULT.mean) -> Callable[..., tf.Tensor]:
  """Returns augment(seed, image, examples=None) applying `augment_config.ops` in order, op i with seed
  fold_in(seed, i) (or `examples`, for alternating_flip); random erasing fills with `mean`, the run's normalization
  mean."""
  return compose(augment_config, globals(), tf.random.experimental.stateless_fold_in, mean)
