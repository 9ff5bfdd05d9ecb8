"""data.normalization: the presets are the recipes' published numbers, both pipelines standardise with the one
named (and erase with its mean), and bad values are refused naming the key."""

import jax
import numpy as np
import pytest

from cifar_jax import parallel
from cifar_jax.data import cifar10, device, normalization, tfdata
from cifar_jax.errors import ConfigError
from cifar_jax.training import trainer
from configs import default

# The numbers as the recipes print them: kuangliu/pytorch-cifar main.py's transforms.Normalize, PyTorch's CIFAR-10
# tutorial's, torchvision's ImageNet models', and SOURCE.md's training-set statistics in 0-255 units.
PUBLISHED = {
    'kuangliu': ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    'tutorial': ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    'imagenet': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    'cifar_jax': (np.divide((125.307, 122.950, 113.865), 255), np.divide((62.993, 62.089, 66.705), 255)),
}
PIPELINES = ('device', 'tfdata')


def _config(pipeline: str, **data: object):
  config = default.get_config()
  config.batch_size, config.eval_batch_size = 8, 8
  config.data.pipeline = pipeline
  config.data.update(data)
  return config


@pytest.fixture(scope='module')
def data() -> cifar10.Cifar10:
  images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
  split = cifar10.Split(images, np.arange(16, dtype=np.int32))
  return cifar10.Cifar10(train=split, val=None, test=split)


def _pipeline(name: str, data: cifar10.Cifar10, config):
  if name == 'device':
    return device.DevicePipeline(data, config, parallel.JitParallel().mesh)
  return tfdata.TfDataPipeline(data, config)


def test_presets_are_the_published_numbers() -> None:
  assert set(normalization.PRESETS) == set(PUBLISHED)
  for name, (mean, std) in PUBLISHED.items():
    np.testing.assert_allclose(normalization.PRESETS[name].mean, mean, rtol=1e-6)
    np.testing.assert_allclose(normalization.PRESETS[name].std, std, rtol=1e-6)


@pytest.mark.parametrize('pipeline', PIPELINES)
@pytest.mark.parametrize(
    'keys, mean, std',
    [
        ({'normalization': 'kuangliu'}, *PUBLISHED['kuangliu']),
        (
            {'normalization': 'custom', 'mean': (0.1, 0.2, 0.3), 'std': (0.5, 0.25, 2.0)},
            (0.1, 0.2, 0.3),
            (0.5, 0.25, 2),
        ),
    ],
)
def test_both_pipelines_standardise_with_the_statistics_named(pipeline, keys, mean, std, data) -> None:
  batch = jax.device_get(next(iter(_pipeline(pipeline, data, _config(pipeline, **keys)).eval_batches('test'))))
  expected = (data.test.images[:8] / 255 - np.array(mean)) / np.array(std)  # torchvision: ToTensor, Normalize
  np.testing.assert_allclose(batch['image'], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('pipeline', PIPELINES)
def test_erasing_fills_with_the_mean_named(pipeline, data) -> None:
  """torchvision erases with 0 after Normalize, which is the normalization's mean before it."""
  mean = (0.1, 0.3, 0.7)  # none is k / 255, so an erased pixel cannot be an image's own
  config = _config(pipeline, normalization='custom', mean=mean, std=(1.0, 1.0, 1.0), normalize=False)
  config.augment.ops, config.augment.erasing_probability = ('random_erasing',), 1.0
  batch = jax.device_get(next(iter(_pipeline(pipeline, data, config).train_batches(0))))
  erased = np.all(np.abs(batch['image'] - np.float32(mean)) < 1e-6, axis=-1)
  assert erased.any(axis=(1, 2)).all()
  assert not np.any(np.abs(batch['image'][~erased] * 255 - np.round(batch['image'][~erased] * 255)) > 1e-3)


@pytest.mark.parametrize(
    'keys, message',
    [
        (
            {'normalization': 'torchvision'},
            "data.normalization='torchvision' is not one of: cifar_jax, custom, imagenet, kuangliu, tutorial",
        ),
        ({'normalization': 'kuangliu', 'std': (0.2, 0.2, 0.2)}, 'data.mean and data.std are read only with'),
        ({'normalization': 'custom', 'mean': (0.5, 0.5, 0.5), 'std': (0.2, 0.0, 0.2)}, r'data.std=.*each > 0'),
        ({'normalization': 'custom', 'mean': (0.5, 0.5), 'std': (0.2, 0.2, 0.2)}, r'data.mean=\(0.5, 0.5\)'),
        ({'normalization': 'custom'}, r'data.mean=\(\) must be three numbers'),
    ],
)
def test_bad_values_are_refused_by_the_config_check_naming_the_key(keys, message) -> None:
  config = _config('device', **keys)
  with pytest.raises(ConfigError, match=message):
    trainer.check_config(config)


def test_the_banner_phrase_names_the_preset_and_its_numbers() -> None:
  assert normalization.describe(_config('device', normalization='kuangliu').data) == (
      "inputs standardised with data.normalization='kuangliu' (mean 0.4914, 0.4822, 0.4465; std 0.2023, 0.1994, 0.2010)"
  )
  assert 'not standardised' in normalization.describe(_config('device', normalize=False).data)
