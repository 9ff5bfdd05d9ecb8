"""Loads CIFAR-10 into numpy from the official python batches (read safely) or tensorflow-datasets."""

import dataclasses
import os
import pathlib
import pickle
import socket
import sys

import numpy as np

from cifar_jax.data import tf_import
from cifar_jax.errors import ConfigError, DataError, check_choice

try:
  from numpy._core.multiarray import _reconstruct  # numpy >= 2
except ImportError:
  from numpy.core.multiarray import _reconstruct  # numpy < 2

# Per-channel mean and std of the 50,000 training images (SOURCE.md, 0-255 units), in [0, 1] units.
CIFAR10_MEAN = tuple(value / 255 for value in (125.307, 122.950, 113.865))
CIFAR10_STD = tuple(value / 255 for value in (62.993, 62.089, 66.705))

NUM_CLASSES = 10
CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
TRAIN_IMAGES = 50_000  # the official training set, before the validation split
IMAGE_SHAPE = (32, 32, 3)
SOURCES = ('auto', 'files', 'tfds')
BATCHES_DIR_NAME = 'cifar-10-batches-py'
TRAIN_FILES = tuple(f'data_batch_{i}' for i in range(1, 6))
TEST_FILE = 'test_batch'
DATA_DIR_ENV = 'CIFAR10_DIR'
TFDS_DOWNLOAD_HOST = 'www.cs.toronto.edu'  # where tensorflow-datasets downloads cifar10 from
TFDS_READ_BATCH_SIZE = 10_000  # Not -1: tfds turns -1 into sys.maxsize when split sizes are unknown.

# The only globals the official batches reference (numpy 2 renamed numpy.core to numpy._core).
_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


@dataclasses.dataclass(frozen=True)
class Split:
  """One split held in memory: uint8 NHWC images [N, 32, 32, 3] and int32 labels [N]."""

  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    """Number of examples."""
    return len(self.labels)


@dataclasses.dataclass(frozen=True)
class Cifar10:
  """The splits a run uses; `val` is None when no validation split was carved out of train."""

  train: Split
  val: Split | None
  test: Split


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Unpickler that resolves only the numpy array globals, so a hostile file cannot run code."""

  def find_class(self, module: str, name: str) -> object:
    """Returns an allowed numpy global; refuses any other before anything is imported or called."""
    try:
      return _ALLOWED_GLOBALS[(module, name)]
    except KeyError:
      raise pickle.UnpicklingError(f'refusing global {module}.{name}: only numpy arrays may be unpickled') from None


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full global batches in an epoch (the remainder is dropped); ConfigError when there is not even one."""
  steps = num_examples // batch_size
  if steps == 0:
    raise ConfigError(f'batch_size={batch_size} is larger than the {num_examples} training images')
  return steps


def train_size(val_fraction: float, max_train_examples: int) -> int:
  """How many training images a run keeps: the official set less its validation split, then the cap (-1: none)."""
  images = TRAIN_IMAGES - round(val_fraction * TRAIN_IMAGES)
  return min(images, max_train_examples) if max_train_examples > 0 else images


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
  """Reads one official batch file into uint8 NHWC images and int32 labels, checking everything."""
  path = pathlib.Path(path)
  try:
    with path.open('rb') as f:
      batch = _NumpyOnlyUnpickler(f, encoding='bytes').load()
  except Exception as e:  # Whatever a corrupt or hostile file makes unpickling raise, the data is bad.
    raise DataError(f'{path}: not a readable CIFAR-10 batch: {type(e).__name__}: {e}') from e
  if not isinstance(batch, dict) or not {b'data', b'labels'} <= batch.keys():
    found = list(batch) if isinstance(batch, dict) else type(batch).__name__
    raise DataError(f"{path}: expected a dict with keys b'data' and b'labels', found {found}")
  data, labels = batch[b'data'], batch[b'labels']
  row_size = int(np.prod(IMAGE_SHAPE))
  if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != row_size:
    found = f'{data.dtype} {data.shape}' if isinstance(data, np.ndarray) else type(data).__name__
    raise DataError(f'{path}: data must be a uint8 array [N, {row_size}], found {found}')
  if not isinstance(labels, (list, np.ndarray)) or not all(isinstance(x, (int, np.integer)) for x in labels):
    raise DataError(f'{path}: labels must be a list of integers, found {type(labels).__name__} {labels!r:.80}')
  labels = np.asarray(labels)
  if len(labels) != len(data):
    raise DataError(f'{path}: {len(labels)} labels for {len(data)} images')
  if len(labels) and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
    raise DataError(f'{path}: labels must be in 0-{NUM_CLASSES - 1}, found {labels.min()}-{labels.max()}')
  height, width, channels = IMAGE_SHAPE
  # Each row holds the red, then green, then blue plane, each row-major.
  images = data.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), labels.astype(np.int32)


# How each command takes the data folder, for the messages that ask for it (one wording for every command).
WHERE_TO_POINT = (
    'data.data_dir: main --config.data.data_dir=PATH, sweep --set=data.data_dir=PATH, the others --data_dir=PATH'
)


def find_batches_dir(data_dir: str | os.PathLike[str] | None) -> pathlib.Path:
  """Returns the `cifar-10-batches-py` folder, given it or its parent (default: `$CIFAR10_DIR`)."""
  data_dir = os.environ.get(DATA_DIR_ENV) if data_dir is None else data_dir
  candidates = [] if data_dir is None else [pathlib.Path(data_dir).expanduser()]
  candidates += [folder / BATCHES_DIR_NAME for folder in candidates]
  looked = []
  for folder in candidates:
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]
    if not missing:
      return folder
    looked.append(f'{folder} (lacks {", ".join(missing)})' if folder.is_dir() else f'{folder} (no such folder)')
  where = '; '.join(looked) or f'nowhere: no data_dir given and ${DATA_DIR_ENV} is not set'
  raise DataError(
      f'CIFAR-10 batches not found. Looked in: {where}. Point at the {BATCHES_DIR_NAME} folder or its '
      f'parent with {WHERE_TO_POINT} or the environment variable {DATA_DIR_ENV}.'
  )


def load(
    data_dir: str | os.PathLike[str] | None,
    *,
    source: str = 'auto',
    val_fraction: float = 0.0,
    seed: int = 0,
    max_train_examples: int = -1,
    max_eval_examples: int = -1,
) -> Cifar10:
  """Loads train/val/test; val is a seeded random `val_fraction` of train, each part in file order."""
  check_choice('data.source', source, SOURCES)
  if not 0 <= val_fraction < 1:
    raise ConfigError(f'data.val_fraction={val_fraction!r} must be in [0, 1)')
  for key, value in (('data.max_train_examples', max_train_examples), ('data.max_eval_examples', max_eval_examples)):
    if value == 0 or value < -1:
      raise ConfigError(f'{key}={value!r} must be -1 (all) or a positive count')
  train, test = _load_train_test(data_dir, source)
  train, val = _split_off_val(train, val_fraction, seed)
  return Cifar10(
      train=_head(train, max_train_examples),
      val=None if val is None else _head(val, max_eval_examples),
      test=_head(test, max_eval_examples),
  )


def check_available(data_dir: str | os.PathLike[str] | None, source: str = 'auto') -> None:
  """Raises the DataError `load` would raise for data that is not there, without reading the images where the
  official files are found (a sweep checks this once, before any run). `tfds` is left to `load`, which may
  download."""
  check_choice('data.source', source, SOURCES)
  if source == 'tfds':
    return
  try:
    find_batches_dir(data_dir)
  except DataError:
    if source == 'files':
      raise
    _load_train_test(data_dir, source)  # an explicit folder that does not exist, else the tfds copy: as `load`


def check_named_folder(data_dir: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
  """The folder named by `data_dir` (or $CIFAR10_DIR), None when none is; a named folder that does not exist is
  a mistake, refused at once (a stat, no import: commands call it before the heavy ones)."""
  named = os.environ.get(DATA_DIR_ENV) if data_dir is None else data_dir
  if named is not None and not pathlib.Path(named).expanduser().exists():
    where = f'${DATA_DIR_ENV}' if data_dir is None else 'data.data_dir'
    raise DataError(
        f'{where}={os.fspath(named)!r}: no such folder. Point it at the {BATCHES_DIR_NAME} folder or '
        f'its parent ({WHERE_TO_POINT}).'
    )
  return named


def _load_train_test(data_dir: str | os.PathLike[str] | None, source: str) -> tuple[Split, Split]:
  """Reads the full train and test splits from the chosen source.

  'auto' reads the files; where they are not found it falls back, saying so, to a copy of cifar10 that
  tensorflow-datasets has already prepared, and never downloads (only 'tfds' does). An explicit folder that
  does not exist is a mistake, reported at once.
  """
  if source == 'files':
    return _load_files(find_batches_dir(data_dir))
  if source == 'tfds':
    return _load_tfds(data_dir, download=True)
  named = check_named_folder(data_dir)
  try:
    batches_dir = find_batches_dir(data_dir)
  except DataError as files_error:
    print(
        f'CIFAR-10 files not found {f"at {os.fspath(named)}" if named else "(no data_dir given)"}; trying a copy '
        f'tensorflow-datasets has already prepared ...',
        file=sys.stderr,
        flush=True,
    )
    try:
      return _load_tfds(data_dir, download=False)
    except DataError as tfds_error:
      raise DataError(f'{files_error} The tfds fallback failed too: {tfds_error}') from tfds_error
  return _load_files(batches_dir)


def _load_files(batches_dir: pathlib.Path) -> tuple[Split, Split]:
  """Reads the five training batches and the test batch of the official release."""
  images, labels = zip(*(read_batch(batches_dir / name) for name in TRAIN_FILES))
  return Split(np.concatenate(images), np.concatenate(labels)), Split(*read_batch(batches_dir / TEST_FILE))


def network_reachable(host: str, timeout: float = 3.0) -> bool:
  """Whether a connection to `host` on port 443 opens within `timeout` seconds."""
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
  except OSError:
    return False
  return True


def _load_tfds(data_dir: str | os.PathLike[str] | None, download: bool) -> tuple[Split, Split]:
  """Reads train and test of tensorflow-datasets' `cifar10`; when it is not prepared yet, downloads it if
  `download` and its source answers, and otherwise fails at once (tfds would retry for minutes offline)."""
  tf_import.import_tensorflow()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  tfds_dir = None if data_dir is None else os.fspath(data_dir)
  builder = tfds.builder('cifar10', data_dir=tfds_dir)
  if not builder.is_prepared():
    if not download:
      raise DataError(
          f'tensorflow-datasets has no prepared cifar10 in {builder.data_dir}; set '
          f'--config.data.source=tfds to download it there (about 170 MB)'
      )
    if not network_reachable(TFDS_DOWNLOAD_HOST):
      raise DataError(
          f'tensorflow-datasets has no prepared cifar10 in {builder.data_dir} and cannot download it: '
          f'{TFDS_DOWNLOAD_HOST} does not answer (no network?)'
      )

  def read(split: str) -> Split:
    try:
      dataset = tfds.load(
          'cifar10',
          split=split,
          data_dir=tfds_dir,
          batch_size=TFDS_READ_BATCH_SIZE,
          as_supervised=True,
          download=download,
      )
      images, labels = zip(*tfds.as_numpy(dataset))
    except Exception as e:  # tfds reports a missing or undownloadable dataset in many ways.
      raise DataError(
          f'tensorflow-datasets could not load cifar10 {split} (data_dir={data_dir}): ' f'{type(e).__name__}: {e}'
      ) from e
    return Split(np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int32))

  return read('train'), read('test')


def _split_off_val(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split | None]:
  """Moves the last round(val_fraction * N) of a seeded permutation of train into val."""
  num_val = round(val_fraction * len(train))
  if num_val == 0:
    return train, None
  order = np.random.default_rng(seed).permutation(len(train))
  return _take(train, np.sort(order[:-num_val])), _take(train, np.sort(order[-num_val:]))


def _take(split: Split, indices: np.ndarray | slice) -> Split:
  """The examples of `split` at `indices`."""
  return Split(split.images[indices], split.labels[indices])


def _head(split: Split, max_examples: int) -> Split:
  """The first `max_examples` of `split` (all when -1)."""
  return split if max_examples == -1 else _take(split, slice(max_examples))
