"""Test setup: CPU only, four fake devices (set before jax is imported anywhere), and the CIFAR-10 folder.

End-to-end tests take `cifar10_dir`: the real CIFAR-10 beside the repository (../shared/data/cifar10)
when it is there, otherwise a small fake folder with the official file names and format, built once
per session, so that a clone without the data still runs every test. Under CI (`CI=true`) a missing
real folder is an error instead: CI must not pass on fake data by accident. Set
`CIFAR_JAX_TEST_FAKE_DATA=1` to use the fake folder even where the real one exists (to check that
the tests pass without it). The few tests of the real files themselves take `real_cifar10_dir`.
"""

import os
import pathlib

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('CIFAR_JAX_CACHE', 'off')  # commands the tests start compile afresh and write nothing to ~/.cache

import pytest  # noqa: E402

import helpers  # noqa: E402

REAL_DATA = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10'
FAKE_DATA_ENV = 'CIFAR_JAX_TEST_FAKE_DATA'
FAKE_IMAGES_PER_FILE = 600  # 3000 training images: a 10% val split still fills the tiny configs' 256 eval images


def _real_data_present() -> bool:
  return (REAL_DATA / 'cifar-10-batches-py').is_dir()


def _missing_under_ci() -> None:
  """Fails the test when CI runs without the real data, which it must have."""
  if os.environ.get('CI', '').lower() == 'true':
    pytest.fail(
        f'CI=true but the real CIFAR-10 is not at {REAL_DATA}: CI must run on the real data '
        f'(place cifar-10-batches-py there)',
        pytrace=False,
    )


@pytest.fixture(scope='session')
def real_cifar10_dir() -> pathlib.Path:
  """The official CIFAR-10 batches beside the repository; skipped elsewhere (failed under CI)."""
  if os.environ.get(FAKE_DATA_ENV) == '1':
    pytest.skip(f'{FAKE_DATA_ENV}=1: the real CIFAR-10 is not used')
  if not _real_data_present():
    _missing_under_ci()
    pytest.skip(f'real CIFAR-10 not found at {REAL_DATA}')
  return REAL_DATA


@pytest.fixture(scope='session')
def cifar10_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
  """A CIFAR-10 folder: the real one when present (and not overridden), else a fake one built once."""
  if os.environ.get(FAKE_DATA_ENV) != '1':
    if _real_data_present():
      return REAL_DATA
    _missing_under_ci()
  root = tmp_path_factory.mktemp('fake_cifar10')
  helpers.fake_cifar10(root, num_per_file=FAKE_IMAGES_PER_FILE)
  return root
