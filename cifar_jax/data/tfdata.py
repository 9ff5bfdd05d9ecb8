"""tf.data input pipelines: seeded, resumable, per-process training epochs and padded evaluation.

`TfDataPipeline` is the `pipeline.Pipeline` over these functions, with this process's index and count."""

from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from cifar_jax.data import augment_tf, cifar10, normalization, tf_import
from cifar_jax.data.augment_config import Examples
from cifar_jax.data.batch import Batch
from cifar_jax.data.cifar10 import Cifar10, Split
from cifar_jax.data.normalization import Normalization
from cifar_jax.errors import ConfigError

tf = tf_import.import_tensorflow()


def _local_batch_size(batch_size: int, process_count: int) -> int:
  """This process's share of the global batch; ConfigError naming `batch_size` unless it divides."""
  if batch_size <= 0 or batch_size % process_count:
    raise ConfigError(
        f'batch_size={batch_size} must be a positive multiple of the number of processes ' f'({process_count})'
    )
  return batch_size // process_count


def _process_positions(
    num_batches: int, batch_size: int, local_batch_size: int, process_index: int, start_batch: int = 0
) -> np.ndarray:
  """Epoch positions this process reads: its contiguous slice of each global batch from `start_batch`."""
  grid = np.arange(num_batches * batch_size).reshape(num_batches, batch_size)
  begin = process_index * local_batch_size
  return grid[start_batch:, begin : begin + local_batch_size].ravel()


def _to_input(
    image: tf.Tensor, normalize: Normalization | None, augment: Callable[[tf.Tensor], tf.Tensor]
) -> tf.Tensor:
  """uint8 image -> float32 in [0, 1] -> augment -> standardized per channel with `normalize` (None: not)."""
  image = augment(tf.cast(image, tf.float32) / 255)
  return image if normalize is None else augment_tf.normalize(image, normalize)


def _batches(
    tensors: tuple[np.ndarray, ...], preprocess: Callable[..., dict[str, tf.Tensor]], local_batch_size: int
) -> Iterator[Batch]:
  """Maps `preprocess` over the examples in parallel, keeping order, and yields numpy batches."""
  dataset = tf.data.Dataset.from_tensor_slices(tensors)
  dataset = dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset.batch(local_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def train_batches(
    split: Split,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    augment_config: Any,
    normalize: bool = True,
    statistics: Normalization = normalization.DEFAULT,
    start_batch: int = 0,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[Batch]:
  """One shuffled, augmented epoch from global batch `start_batch` on; this process's share of each.

  The order comes from numpy `default_rng([seed, epoch])` and each example's augmentation seed from
  (seed, epoch, its position in that order), so batches do not depend on where the epoch was
  resumed or how it is sharded. Images are standardized with `statistics` when `normalize`; random erasing fills
  with its mean. Yields {'image': float32 [B/P, 32, 32, 3], 'label': int32 [B/P]}.
  """
  local_batch_size = _local_batch_size(batch_size, process_count)
  num_batches = cifar10.steps_per_epoch(len(split), batch_size)
  positions = _process_positions(num_batches, batch_size, local_batch_size, process_index, start_batch)
  augment = augment_tf.build_augment(augment_config, statistics.mean)
  standardize = statistics if normalize else None
  indices = np.random.default_rng([seed, epoch]).permutation(len(split))[positions]
  epoch_seed = tf.constant([seed, epoch], tf.int64)

  def preprocess(image: tf.Tensor, label: tf.Tensor, position: tf.Tensor, index: tf.Tensor) -> dict[str, tf.Tensor]:
    example_seed = tf.random.experimental.stateless_fold_in(epoch_seed, position)
    examples = Examples(seed, epoch, index)
    return {'image': _to_input(image, standardize, lambda x: augment(example_seed, x, examples)), 'label': label}

  return _batches((split.images[indices], split.labels[indices], positions, indices), preprocess, local_batch_size)


def eval_batches(
    split: Split,
    *,
    batch_size: int,
    normalize: bool = True,
    statistics: Normalization = normalization.DEFAULT,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[Batch]:
  """The split in order, this process's share of each global batch, the last padded to full size.

  Yields {'image': float32 [B/P, 32, 32, 3], 'label': int32 [B/P], 'mask': bool [B/P]}, where
  `mask` is False on padding, so every example is counted exactly once across processes. Images are standardized
  with `statistics` when `normalize`.
  """
  local_batch_size = _local_batch_size(batch_size, process_count)
  num_batches = -(-len(split) // batch_size)
  positions = _process_positions(num_batches, batch_size, local_batch_size, process_index)
  mask = positions < len(split)
  indices = np.where(mask, positions, 0)

  def preprocess(image: tf.Tensor, label: tf.Tensor, real: tf.Tensor) -> dict[str, tf.Tensor]:
    return {'image': _to_input(image, statistics if normalize else None, lambda x: x), 'label': label, 'mask': real}

  return _batches((split.images[indices], split.labels[indices], mask), preprocess, local_batch_size)


class TfDataPipeline:
  """`train_batches` and `eval_batches` over the splits of `data`, each yielding this process's share."""

  def __init__(self, data: Cifar10, config: Any) -> None:
    self.splits = {'train': data.train, 'val': data.val, 'test': data.test}
    self.batch_size, self.eval_batch_size = config.batch_size, config.eval_batch_size
    self.seed, self.augment_config, self.normalize = config.seed, config.augment, config.data.normalize
    self.statistics = normalization.statistics(config.data)
    self.process_index, self.process_count = jax.process_index(), jax.process_count()

  def train_batches(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
    """Epoch `epoch` of the training split from global batch `start_batch` on."""
    return train_batches(
        self.splits['train'],
        batch_size=self.batch_size,
        seed=self.seed,
        epoch=epoch,
        augment_config=self.augment_config,
        normalize=self.normalize,
        statistics=self.statistics,
        start_batch=start_batch,
        process_index=self.process_index,
        process_count=self.process_count,
    )

  def eval_batches(self, split: str) -> Iterator[Batch]:
    """The split ('train', 'val' or 'test') in order, padded and masked."""
    if self.splits.get(split) is None:
      raise ValueError(
          f'no {split!r} split here; have: {", ".join(k for k, v in self.splits.items() if v)} '
          f'(a validation split needs data.val_fraction > 0)'
      )
    return eval_batches(
        self.splits[split],
        batch_size=self.eval_batch_size,
        normalize=self.normalize,
        statistics=self.statistics,
        process_index=self.process_index,
        process_count=self.process_count,
    )
