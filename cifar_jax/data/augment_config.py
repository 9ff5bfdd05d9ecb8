"""The one table of augmentations that both backends read, in plain Python (so bad values fail before TF is
even imported): each op's name, its config keys with their defaults, meanings and checks, and the arguments
its function takes; the config check and the composition of ops; torchvision's constants.

Adding an augmentation: one `Op` row here, a function of that name in `augment_tf` and in `augment_jax`,
and their tests. Every op function takes its randomness first, then its images, then the row's arguments:
`op(seed, image, *arguments)` in TensorFlow (one image), `op(key, images, *arguments)` in JAX (a batch). An op
marked `by_example` (alternating_flip) takes the batch's `Examples` (seed, epoch, indices) in place of the key.

    python -m cifar_jax.data.augment_config   # lists every augment.* key with its default and meaning
"""

import dataclasses
import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from cifar_jax.errors import ConfigError, check_choice

NUM_TRIES = 10  # Draws of a rectangle before giving up, as in torchvision's erasing and resized crop.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's RGB -> grayscale weights.
EXAMPLE_STREAM = 0x5EED  # folded into a run's seed for per-example draws, apart from its epoch keys (small numbers)
PADDING_MODES = ('constant', 'reflect')  # torchvision RandomCrop's padding_mode values offered here
# The 24 orders of color jitter's ops (0 brightness, 1 contrast, 2 saturation, 3 hue): torchvision's ColorJitter
# draws one per image (get_params: torch.randperm(4)); both backends draw an index into this table.
JITTER_ORDERS = tuple(itertools.permutations(range(4)))


def _are_reals(value: Any, count: int) -> bool:
  """Whether `value` is a tuple or list of `count` real numbers."""
  return (
      isinstance(value, (tuple, list))
      and len(value) == count
      and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in value)
  )


def _is_interval(value: Any, low: float, high: float, *, open_low: bool = False) -> bool:
  """Whether `value` is a pair (a, b) with low <= a <= b <= high (low < a when `open_low`)."""
  return _are_reals(value, 2) and (low < value[0] if open_low else low <= value[0]) and value[0] <= value[1] <= high


@dataclasses.dataclass(frozen=True)
class Key:
  """One `augment.<name>` config key: its default, what it means (one line), and the check its value must pass."""

  name: str
  default: Any
  meaning: str
  is_valid: Callable[[Any], bool]
  requirement: str  # What a valid value is, for the error message.


@dataclasses.dataclass(frozen=True)
class Op:
  """An augmentation: its name (also its function's name in each backend), the config keys it reads, and
  `arguments(augment_config)`, the values its function takes after its randomness and its images. An op whose
  draw must follow each example across epochs (`by_example`) takes the batch's `Examples` as its randomness."""

  name: str
  keys: tuple[Key, ...]
  arguments: Callable[[Any], tuple[Any, ...]]
  by_example: bool = False
  fills_with_mean: bool = False  # the run's normalization mean (per channel) is its last argument


class Examples(NamedTuple):
  """Which training examples a batch holds and when: the run's seed, the epoch, and each example's index in the
  training split (an array [B] in JAX; a scalar for TensorFlow's one image)."""

  seed: Any
  epoch: Any
  index: Any


# Every augmentation, in the order of torchvision's transforms of the same names. Random erasing fills with the
# run's normalization mean, so that erasing before normalization equals torchvision's erasing to 0 after Normalize.
OPS: tuple[Op, ...] = (
    Op(
        'random_crop',
        (
            Key(
                'crop_padding',
                4,
                'zero padding on each side before the 32 x 32 crop',
                lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0,
                'an integer >= 0',
            ),
            Key(
                'crop_padding_mode',
                'constant',
                "constant (zeros) or reflect (the border mirrored, not repeated: airbench's translate)",
                lambda v: v in PADDING_MODES,
                'constant or reflect',
            ),
        ),
        lambda c: (c.crop_padding, c.crop_padding_mode),
    ),
    Op('horizontal_flip', (), lambda c: ()),
    # airbench's alternating flip: each example mirrored at random in epoch 0 (from the seed and its index),
    # then on every other epoch exactly the other way; no key.
    Op('alternating_flip', (), lambda c: (), by_example=True),
    Op(
        'random_erasing',
        (
            Key(
                'erasing_probability',
                0.5,
                'chance of erasing one rectangle',
                lambda v: _are_reals((v,), 1) and 0 <= v <= 1,
                'a number in [0, 1]',
            ),
            Key(
                'erasing_scale',
                (0.02, 0.33),
                'area fraction range',
                lambda v: _is_interval(v, 0, 1),
                'a pair (low, high) with 0 <= low <= high <= 1',
            ),
            Key(
                'erasing_ratio',
                (0.3, 3.3),
                'aspect ratio range',
                lambda v: _is_interval(v, 0, math.inf, open_low=True),
                'a pair (low, high) with 0 < low <= high',
            ),
        ),
        lambda c: (c.erasing_probability, tuple(c.erasing_scale), tuple(c.erasing_ratio)),
        fills_with_mean=True,
    ),
    Op(
        'random_affine',
        (
            Key(
                'affine_degrees',
                5.0,
                'rotation angle drawn from [-degrees, degrees]',
                lambda v: _are_reals((v,), 1) and 0 <= v <= 180,
                'a number in [0, 180]',
            ),
            Key(
                'affine_translate',
                (0.2, 0.2),
                'largest shift as a fraction of width, height',
                lambda v: _are_reals(v, 2) and all(0 <= x <= 1 for x in v),
                'a pair of fractions in [0, 1]',
            ),
        ),
        lambda c: (c.affine_degrees, tuple(c.affine_translate)),
    ),
    Op(
        'color_jitter',
        (
            Key(
                'jitter',
                (0.2, 0.2, 0.2, 0.1),
                'brightness, contrast, saturation, hue amounts',
                lambda v: _are_reals(v, 4) and min(v) >= 0 and v[3] <= 0.5,
                '(brightness, contrast, saturation, hue), all >= 0 and hue <= 0.5',
            ),
        ),
        lambda c: tuple(c.jitter),
    ),
    Op(
        'random_resized_crop',
        (
            Key(
                'resized_crop_scale',
                (0.8, 1.0),
                'area fraction range',
                lambda v: _is_interval(v, 0, 1, open_low=True),
                'a pair (low, high) with 0 < low <= high <= 1',
            ),
            Key(
                'resized_crop_ratio',
                (0.75, 4 / 3),
                'aspect ratio range',
                lambda v: _is_interval(v, 0, math.inf, open_low=True),
                'a pair (low, high) with 0 < low <= high',
            ),
        ),
        lambda c: (tuple(c.resized_crop_scale), tuple(c.resized_crop_ratio)),
    ),
)
AUGMENTATIONS = tuple(op.name for op in OPS)
_OPS_BY_NAME = {op.name: op for op in OPS}


def default_values() -> dict[str, Any]:
  """Every augment key but `ops`, with its default, in table order (configs/default.py starts from these)."""
  return {key.name: key.default for op in OPS for key in op.keys}


def describe() -> str:
  """One line per augment key: `ops` (its choices), then each op's keys with their default and, as a comment, the
  op that reads it and what it means."""
  ops = (
      f'augment.ops: the ops applied, in this order, to the training images only (default in configs/default.py); '
      f'any of: {", ".join(AUGMENTATIONS)}'
  )
  return '\n'.join(
      [ops, *(f'augment.{key.name} = {key.default!r}  # {op.name}: {key.meaning}' for op in OPS for key in op.keys)]
  )


def check_augment_config(augment_config: Any) -> None:
  """Raises ConfigError naming `augment.<key>` for an unknown op name or an out-of-range value."""
  ops = augment_config.ops
  if not isinstance(ops, (tuple, list)):
    raise ConfigError(f'augment.ops={ops!r} must be a tuple of names from: {", ".join(AUGMENTATIONS)}')
  for name in ops:
    check_choice('augment.ops', name, AUGMENTATIONS)
  for key in (key for op in OPS for key in op.keys):
    value = getattr(augment_config, key.name)
    if not key.is_valid(value):
      raise ConfigError(f'augment.{key.name}={value!r} must be {key.requirement}')


def _arguments(op: Op, augment_config: Any, mean: Sequence[float]) -> tuple[Any, ...]:
  """The values op's function takes after its randomness and images: its row's, then `mean` if it fills with it."""
  return op.arguments(augment_config) + ((tuple(mean),) if op.fills_with_mean else ())


def compose(
    augment_config: Any,
    functions: Mapping[str, Callable[..., Any]],
    fold_in: Callable[[Any, int], Any],
    mean: Sequence[float],
) -> Callable[..., Any]:
  """Checks the config; returns augment(randomness, images, examples=None) applying `augment_config.ops` in order.

  Op i is `functions[name](fold_in(randomness, i), images, *arguments)`, the arguments from its row of OPS (and
  `mean`, the run's normalization mean, for the ops that fill with it): a backend passes its module's functions
  (named after the ops) and its way of deriving independent randomness. A `by_example` op takes `examples` (an
  `Examples`) instead of randomness; without them it raises ValueError.
  """
  check_augment_config(augment_config)
  steps = [(_OPS_BY_NAME[name], functions[name]) for name in augment_config.ops]
  steps = [(op.by_example, function, _arguments(op, augment_config, mean)) for op, function in steps]

  def augment(randomness: Any, images: Any, examples: Examples | None = None) -> Any:
    for index, (by_example, function, arguments) in enumerate(steps):
      if by_example and examples is None:
        raise ValueError(f"{function.__name__} needs the examples' seed, epoch and indices: a training batch")
      images = function(examples if by_example else fold_in(randomness, index), images, *arguments)
    return images

  return augment


def center_box(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int, int, int]:
  """torchvision's fallback box (top, left, height, width): the center crop clamped to `ratio`."""
  if width / height < ratio[0]:
    box_width, box_height = width, round(width / ratio[0])
  elif width / height > ratio[1]:
    box_width, box_height = round(height * ratio[1]), height
  else:
    box_width, box_height = width, height
  return (height - box_height) // 2, (width - box_width) // 2, box_height, box_width


if __name__ == '__main__':
  print(describe())
