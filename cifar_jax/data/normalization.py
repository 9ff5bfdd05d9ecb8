"""The per-channel statistics that inputs are standardised with (`data.normalization`), by name or given outright.

A model sees the inputs it was trained on only under the same statistics, so a PyTorch checkpoint imported with
`init_from` needs its recipe's preset (kuangliu's std is about 0.8 of the true one: scaled inputs cost a
ResNet-18 a quarter of its agreement with PyTorch).

    cifar_jax  the 50,000 training images' exact mean and std (this project's default; SOURCE.md)
    kuangliu   kuangliu/pytorch-cifar and the many recipes copied from it: std (0.2023, 0.1994, 0.2010)
    tutorial   PyTorch's CIFAR-10 tutorial (the 60-minute blitz): 0.5 for every mean and std
    imagenet   torchvision's ImageNet-pretrained models
    custom     data.mean and data.std, three numbers each in [0, 1] units
"""

import dataclasses
import numbers
from typing import Any

from cifar_jax.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD
from cifar_jax.errors import ConfigError, check_choice

Triple = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Normalization:
  """Per-channel mean and std in [0, 1] units: an input is (image - mean) / std, as torchvision's Normalize."""

  mean: Triple
  std: Triple

  def __str__(self) -> str:
    return f'mean {", ".join(f"{v:.4f}" for v in self.mean)}; std {", ".join(f"{v:.4f}" for v in self.std)}'


PRESETS: dict[str, Normalization] = {
    'cifar_jax': Normalization(CIFAR10_MEAN, CIFAR10_STD),
    'kuangliu': Normalization((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    'tutorial': Normalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    'imagenet': Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
DEFAULT = PRESETS['cifar_jax']
CUSTOM = 'custom'


def _triple(key: str, value: Any, positive: bool) -> Triple:
  """`value` as three floats (each > 0 if `positive`); ConfigError naming `key` otherwise."""
  if not (
      isinstance(value, (tuple, list))
      and len(value) == 3
      and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and (v > 0 or not positive) for v in value)
  ):
    raise ConfigError(f'{key}={value!r} must be three numbers (red, green, blue){", each > 0" if positive else ""}')
  return tuple(float(v) for v in value)


def statistics(data_config: Any) -> Normalization:
  """The statistics `data.normalization` names (custom: data.mean and data.std), checked; ConfigError names the key.

  Random erasing fills with this mean even when `data.normalize` is off.
  """
  name = data_config.normalization
  check_choice('data.normalization', name, (*PRESETS, CUSTOM))
  if name != CUSTOM:
    if data_config.mean or data_config.std:
      raise ConfigError(
          f'data.mean and data.std are read only with data.normalization={CUSTOM!r}; '
          f'data.normalization={name!r} has its own ({PRESETS[name]})'
      )
    return PRESETS[name]
  return Normalization(_triple('data.mean', data_config.mean, False), _triple('data.std', data_config.std, True))


def of_inputs(data_config: Any) -> Normalization | None:
  """What the pipelines standardise with: `statistics`, or None when `data.normalize` is off."""
  stats = statistics(data_config)
  return stats if data_config.normalize else None


def describe(data_config: Any) -> str:
  """One phrase for the run's banner: the preset's name and its numbers, or that inputs stay in [0, 1]."""
  if not data_config.normalize:
    return 'inputs in [0, 1], not standardised (data.normalize=False)'
  return f'inputs standardised with data.normalization={data_config.normalization!r} ({statistics(data_config)})'
