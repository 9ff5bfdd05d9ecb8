"""What the TensorFlow and JAX augmentations share, in plain Python: the op names, the config check (so bad
values fail before TF is even imported), the arguments each op reads from the config, torchvision's constants."""

import math
import numbers
from collections.abc import Callable
from typing import Any

from cifar_jax.data.cifar10 import CIFAR10_MEAN
from cifar_jax.errors import ConfigError, check_choice

AUGMENTATIONS = ('random_crop', 'horizontal_flip', 'random_erasing', 'random_affine', 'color_jitter',
                 'random_resized_crop')
NUM_TRIES = 10  # Draws of a rectangle before giving up, as in torchvision's erasing and resized crop.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's RGB -> grayscale weights.


def _are_reals(value: Any, count: int) -> bool:
  """Whether `value` is a tuple or list of `count` real numbers."""
  return (isinstance(value, (tuple, list)) and len(value) == count
          and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in value))


def _is_interval(value: Any, low: float, high: float, *, open_low: bool = False) -> bool:
  """Whether `value` is a pair (a, b) with low <= a <= b <= high (low < a when `open_low`)."""
  return (_are_reals(value, 2) and (low < value[0] if open_low else low <= value[0])
          and value[0] <= value[1] <= high)


# (key, predicate, what the value must be) for every augment config key besides `ops`.
_CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ('crop_padding', lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0,
     'an integer >= 0'),
    ('erasing_probability', lambda v: _are_reals((v,), 1) and 0 <= v <= 1, 'a number in [0, 1]'),
    ('erasing_scale', lambda v: _is_interval(v, 0, 1), 'a pair (low, high) with 0 <= low <= high <= 1'),
    ('erasing_ratio', lambda v: _is_interval(v, 0, math.inf, open_low=True),
     'a pair (low, high) with 0 < low <= high'),
    ('affine_degrees', lambda v: _are_reals((v,), 1) and 0 <= v <= 180, 'a number in [0, 180]'),
    ('affine_translate', lambda v: _are_reals(v, 2) and all(0 <= x <= 1 for x in v),
     'a pair of fractions in [0, 1]'),
    ('jitter', lambda v: _are_reals(v, 4) and min(v) >= 0 and v[3] <= 0.5,
     '(brightness, contrast, saturation, hue), all >= 0 and hue <= 0.5'),
    ('resized_crop_scale', lambda v: _is_interval(v, 0, 1, open_low=True),
     'a pair (low, high) with 0 < low <= high <= 1'),
    ('resized_crop_ratio', lambda v: _is_interval(v, 0, math.inf, open_low=True),
     'a pair (low, high) with 0 < low <= high'),
)


def check_augment_config(augment_config: Any) -> None:
  """Raises ConfigError naming `augment.<key>` for an unknown op name or an out-of-range value."""
  ops = augment_config.ops
  if not isinstance(ops, (tuple, list)):
    raise ConfigError(f'augment.ops={ops!r} must be a tuple of names from: {", ".join(AUGMENTATIONS)}')
  for name in ops:
    check_choice('augment.ops', name, AUGMENTATIONS)
  for key, is_valid, what in _CHECKS:
    value = getattr(augment_config, key)
    if not is_valid(value):
      raise ConfigError(f'augment.{key}={value!r} must be {what}')


def op_arguments(name: str, augment_config: Any) -> tuple[Any, ...]:
  """The config values op `name` takes after its image and its randomness, in both backends.

  Random erasing fills with the training mean, so that erasing before normalization equals torchvision's
  erasing to 0 after Normalize.
  """
  c = augment_config
  return {
      'random_crop': (c.crop_padding,),
      'horizontal_flip': (),
      'random_erasing': (c.erasing_probability, tuple(c.erasing_scale), tuple(c.erasing_ratio), CIFAR10_MEAN),
      'random_affine': (c.affine_degrees, tuple(c.affine_translate)),
      'color_jitter': tuple(c.jitter),
      'random_resized_crop': (tuple(c.resized_crop_scale), tuple(c.resized_crop_ratio)),
  }[name]


def center_box(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int, int, int]:
  """torchvision's fallback box (top, left, height, width): the center crop clamped to `ratio`."""
  if width / height < ratio[0]:
    box_width, box_height = width, round(width / ratio[0])
  elif width / height > ratio[1]:
    box_width, box_height = round(height * ratio[1]), height
  else:
    box_width, box_height = width, height
  return (height - box_height) // 2, (width - box_width) // 2, box_height, box_width
