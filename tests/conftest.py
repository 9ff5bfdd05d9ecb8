"""Test setup: CPU only, four fake devices, set before jax is imported anywhere."""

import os
import pathlib

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import pytest  # noqa: E402

REAL_DATA = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10'


@pytest.fixture(scope='session')
def real_data_dir() -> pathlib.Path:
  """The official CIFAR-10 batches beside the repository (../shared/data/cifar10)."""
  if not (REAL_DATA / 'cifar-10-batches-py').is_dir():
    pytest.skip(f'real CIFAR-10 not found at {REAL_DATA}')
  return REAL_DATA
