"""Checks the augmentation config in plain Python, so bad values fail before TF is even imported."""

import math
import numbers
from collections.abc import Callable
from typing import Any

from cifar_jax.errors import ConfigError, check_choice

AUGMENTATIONS = ('random_crop', 'horizontal_flip', 'random_erasing', 'random_affine', 'color_jitter',
                 'random_resized_crop')


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
