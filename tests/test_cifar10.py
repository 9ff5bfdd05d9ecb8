"""Tests the CIFAR-10 loader: the real files, the lookup, the val split, bad and hostile files, tfds."""

import os
import pathlib
import pickle
import time

import numpy as np
import pytest

import helpers
from cifar_jax.data import cifar10
from cifar_jax.errors import ConfigError, DataError


@pytest.fixture(scope='module')
def real(real_cifar10_dir: pathlib.Path) -> cifar10.Cifar10:
  """The real dataset read once from the official files."""
  return cifar10.load(real_cifar10_dir, source='files')


def test_real_split_sizes_and_first_labels(real: cifar10.Cifar10) -> None:
  assert len(real.train) == 50_000 and len(real.test) == 10_000 and real.val is None
  assert real.train.images.shape == (50_000, 32, 32, 3) and real.train.images.dtype == np.uint8
  assert real.test.labels.dtype == np.int32
  assert real.train.labels[:5].tolist() == [6, 9, 9, 4, 1]
  assert real.test.labels[:5].tolist() == [3, 8, 8, 0, 6]
  assert np.bincount(real.train.labels).tolist() == [5000] * 10


def test_real_channel_statistics_match_constants(real: cifar10.Cifar10) -> None:
  values = np.arange(256) / 255
  pixels = real.train.images.reshape(-1, 3)
  for channel in range(3):  # From a histogram per channel: exact and far cheaper than float arrays.
    counts = np.bincount(pixels[:, channel], minlength=256) / len(pixels)
    mean = counts @ values
    assert mean == pytest.approx(cifar10.CIFAR10_MEAN[channel], abs=1e-5)
    assert np.sqrt(counts @ (values - mean) ** 2) == pytest.approx(cifar10.CIFAR10_STD[channel], abs=1e-5)


def test_finds_folder_or_parent_or_env(cifar10_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
  folder = cifar10_dir / cifar10.BATCHES_DIR_NAME
  assert cifar10.find_batches_dir(cifar10_dir) == folder
  assert cifar10.find_batches_dir(folder) == folder
  monkeypatch.setenv(cifar10.DATA_DIR_ENV, str(cifar10_dir))
  assert cifar10.find_batches_dir(None) == folder


def test_missing_folder_lists_where_it_looked(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
  missing = tmp_path / 'nowhere'
  with pytest.raises(DataError) as error:
    cifar10.load(missing, source='files')
  message = str(error.value)
  assert str(missing) in message and str(missing / cifar10.BATCHES_DIR_NAME) in message
  assert '--config.data.data_dir' in message and 'CIFAR10_DIR' in message
  monkeypatch.delenv(cifar10.DATA_DIR_ENV, raising=False)
  with pytest.raises(DataError, match='CIFAR10_DIR is not set'):
    cifar10.find_batches_dir(None)


def test_empty_folder_names_missing_files(tmp_path: pathlib.Path) -> None:
  (tmp_path / cifar10.BATCHES_DIR_NAME).mkdir()
  with pytest.raises(DataError, match='lacks data_batch_1.*test_batch'):
    cifar10.find_batches_dir(tmp_path)


def test_val_split_is_seeded_disjoint_and_capped(tmp_path: pathlib.Path) -> None:
  folder = helpers.fake_cifar10(tmp_path)  # 100 train, 20 test.
  first = cifar10.load(folder, source='files', val_fraction=0.2, seed=1)
  again = cifar10.load(folder, source='files', val_fraction=0.2, seed=1)
  other = cifar10.load(folder, source='files', val_fraction=0.2, seed=2)
  assert len(first.train) == 80 and len(first.val) == 20
  np.testing.assert_array_equal(first.val.images, again.val.images)
  assert not np.array_equal(first.val.images, other.val.images)
  pixels = lambda split: {image.tobytes() for image in split.images}  # noqa: E731
  assert pixels(first.train).isdisjoint(pixels(first.val))
  assert len(pixels(first.train) | pixels(first.val)) == 100
  capped = cifar10.load(folder, source='files', val_fraction=0.2, seed=1, max_train_examples=7, max_eval_examples=5)
  np.testing.assert_array_equal(capped.train.images, first.train.images[:7])
  assert (len(capped.train), len(capped.val), len(capped.test)) == (7, 5, 5)


@pytest.mark.parametrize(
    'kwargs, key',
    [
        ({'source': 'kaggle'}, 'data.source'),
        ({'val_fraction': 1.0}, 'data.val_fraction'),
        ({'val_fraction': -0.1}, 'data.val_fraction'),
        ({'max_train_examples': 0}, 'data.max_train_examples'),
        ({'max_eval_examples': -2}, 'data.max_eval_examples'),
    ],
)
def test_bad_config_values(kwargs: dict[str, object], key: str) -> None:
  with pytest.raises(ConfigError, match=key):
    cifar10.load(None, **kwargs)


def test_read_batch_converts_planes_to_nhwc(tmp_path: pathlib.Path) -> None:
  planes = np.arange(2 * 3 * 32 * 32).reshape(2, 3, 32, 32).astype(np.uint8)
  helpers.write_batch(tmp_path / 'b', planes.reshape(2, 3072), [0, 9])
  images, labels = cifar10.read_batch(tmp_path / 'b')
  np.testing.assert_array_equal(images, planes.transpose(0, 2, 3, 1))
  assert images.flags.c_contiguous and labels.dtype == np.int32 and labels.tolist() == [0, 9]


@pytest.mark.parametrize(
    'data, labels, expected',
    [
        (np.zeros((2, 3000), np.uint8), [0, 1], r'uint8 array \[N, 3072\], found uint8 \(2, 3000\)'),
        (np.zeros((2, 3072), np.float32), [0, 1], 'found float32'),
        (np.zeros((2, 3072), np.uint8), [0, 10], 'labels must be in 0-9'),
        (np.zeros((2, 3072), np.uint8), [0], '1 labels for 2 images'),
        (np.zeros((2, 3072), np.uint8), [[0], [1, 2]], 'labels must be a list of integers'),
    ],
)
def test_read_batch_rejects_bad_contents(
    tmp_path: pathlib.Path, data: np.ndarray, labels: list[int], expected: str
) -> None:
  helpers.write_batch(tmp_path / 'b', data, labels)
  with pytest.raises(DataError, match=expected) as error:
    cifar10.read_batch(tmp_path / 'b')
  assert str(tmp_path / 'b') in str(error.value)


def test_read_batch_rejects_truncated_and_non_pickles(tmp_path: pathlib.Path) -> None:
  helpers.write_batch(tmp_path / 'whole', np.zeros((2, 3072), np.uint8), [0, 1])
  (tmp_path / 'cut').write_bytes((tmp_path / 'whole').read_bytes()[:5000])
  (tmp_path / 'text').write_bytes(b'not a pickle at all')
  (tmp_path / 'list').write_bytes(pickle.dumps([1, 2], protocol=2))
  for name, expected in (
      ('cut', 'truncated|Ran out'),
      ('text', 'not a readable'),
      ('list', 'expected a dict'),
      ('absent', 'No such file'),
  ):
    with pytest.raises(DataError, match=expected) as error:
      cifar10.read_batch(tmp_path / name)
    assert str(tmp_path / name) in str(error.value)


class _Exploit:
  """Pickles to a call of `function(argument)`, as a hostile batch file would."""

  def __init__(self, function: object, argument: str):
    self.function, self.argument = function, argument

  def __reduce__(self) -> tuple[object, tuple[str]]:
    return self.function, (self.argument,)


@pytest.mark.parametrize(
    'function, command',
    [
        (os.system, 'touch {marker}'),
        (eval, "open({marker!r}, 'w').close()"),
    ],
)
def test_hostile_pickle_is_refused_without_running(tmp_path: pathlib.Path, function: object, command: str) -> None:
  marker = tmp_path / 'pwned'
  helpers.write_batch(tmp_path / 'evil', _Exploit(function, command.format(marker=str(marker))), [0])
  with pytest.raises(DataError, match=r'refusing global (posix|os|builtins)\.(system|eval)') as error:
    cifar10.read_batch(tmp_path / 'evil')
  assert str(tmp_path / 'evil') in str(error.value)
  assert not marker.exists()


def test_tfds_source_with_mock_data(monkeypatch: pytest.MonkeyPatch) -> None:
  tfds = pytest.importorskip('tensorflow_datasets')
  monkeypatch.setattr(cifar10, 'network_reachable', lambda host: True)  # mock_data downloads nothing
  with tfds.testing.mock_data(num_examples=12):
    data = cifar10.load(None, source='tfds', val_fraction=0.25, max_eval_examples=2)
  assert (len(data.train), len(data.val), len(data.test)) == (9, 2, 2)
  assert data.train.images.shape == (9, 32, 32, 3) and data.train.images.dtype == np.uint8
  assert data.test.labels.dtype == np.int32 and data.test.labels.max() < 10


def test_auto_prefers_files_and_falls_back_to_a_prepared_tfds_copy_saying_so(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
  tfds = pytest.importorskip('tensorflow_datasets')
  folder = helpers.fake_cifar10(tmp_path)
  (tmp_path / 'tfds').mkdir()
  monkeypatch.setattr(tfds.core.DatasetBuilder, 'is_prepared', lambda self: True)
  with tfds.testing.mock_data(num_examples=3):
    assert len(cifar10.load(folder).train) == 100
    assert capsys.readouterr().err == ''
    assert len(cifar10.load(tmp_path / 'tfds').train) == 3
  assert f'CIFAR-10 files not found at {tmp_path / "tfds"}; trying' in capsys.readouterr().err


def test_an_explicit_folder_that_does_not_exist_fails_at_once(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
  monkeypatch.setattr(cifar10, '_load_tfds', None)  # any fallback would fail with a TypeError
  started = time.monotonic()
  with pytest.raises(DataError, match=r"data.data_dir='.*nowhere': no such folder"):
    cifar10.load(tmp_path / 'nowhere')
  monkeypatch.setenv(cifar10.DATA_DIR_ENV, str(tmp_path / 'nowhere'))
  with pytest.raises(DataError, match=r"\$CIFAR10_DIR='.*nowhere': no such folder"):
    cifar10.load(None)
  assert time.monotonic() - started < 1


def test_auto_never_downloads_and_tfds_checks_the_network_first(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
  tfds = pytest.importorskip('tensorflow_datasets')
  monkeypatch.setattr(tfds, 'load', None)  # a download attempt would fail with a TypeError
  with pytest.raises(DataError, match='no prepared cifar10 in .*source=tfds to download'):
    cifar10.load(tmp_path)
  monkeypatch.setattr(cifar10, 'network_reachable', lambda host: False)
  with pytest.raises(DataError, match='cannot download it: www.cs.toronto.edu does not answer'):
    cifar10.load(tmp_path, source='tfds')
