"""The on-device input pipeline (`data.pipeline='device'`): CIFAR-10 lives on the accelerators.

Each batch is gathered, augmented (`augment_jax`) and normalized by one jit-compiled function, so the
host only dispatches; no TensorFlow is involved.
"""

import functools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from cifar_jax import parallel
from cifar_jax.data import augment_jax, cifar10, normalization
from cifar_jax.data.augment_config import Examples
from cifar_jax.data.batch import Batch
from cifar_jax.data.cifar10 import Cifar10, Split
from cifar_jax.data.normalization import Normalization


def _put(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A global array from a host array that every process holds whole (works under `jax.distributed`).

  A deliberate transfer (once per run or epoch), so allowed even under `jax.transfer_guard('disallow')`.
  """
  with jax.transfer_guard('allow'):
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _auto(mesh: Mesh) -> Mesh:
  """The mesh with every axis in Auto mode, where XLA's sharding propagation places the batch ops.

  (`jax.make_mesh` makes Explicit axes, under which a gather with sharded indices must be annotated.)
  """
  return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def _to_input(
    images: jax.Array,
    normalize: Normalization | None,
    augment: Callable[[jax.Array], jax.Array] = lambda images: images,
) -> jax.Array:
  """uint8 -> float32 in [0, 1] -> augment -> standardized per channel with `normalize` (None: not)."""
  images = augment(images.astype(jnp.float32) / 255)
  return images if normalize is None else augment_jax.normalize(images, normalize)


def epoch_order(seed: int, epoch: int, num_train: int, batch_size: int) -> np.ndarray:
  """The example indices [steps, B] of epoch `epoch`: numpy's `default_rng([seed, epoch]).permutation`."""
  steps = cifar10.steps_per_epoch(num_train, batch_size)
  permutation = np.random.default_rng([seed, epoch]).permutation(num_train)
  return permutation[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def train_batch(
    augment: Callable[[jax.Array, jax.Array], jax.Array],
    normalize: Normalization | None,
    seed: int | jax.Array,
    images: jax.Array,
    labels: jax.Array,
    order: jax.Array,
    counter: jax.Array,
) -> tuple[Batch, jax.Array]:
  """Batch counter = (epoch, b) of the epoch's order [steps, B], augmented with key
  fold_in(fold_in(key(seed), epoch), b), and the next counter. Pure, so fused and vectorized steps call it
  inside their compiled loops (with a traced `seed` for a member of a group)."""
  epoch, step = counter[0], counter[1]
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), epoch), step)
  indices = order[step]
  examples = Examples(seed, epoch, indices)
  batch = {
      'image': _to_input(images[indices], normalize, lambda x: augment(key, x, examples)),
      'label': labels[indices],
  }
  return batch, counter + jnp.array([0, 1], counter.dtype)


class DevicePipeline:
  """Train, validation and test splits held on the devices of `mesh`; batches sharded over its 'data' axis.

  Every device holds a whole copy of each split (uint8: 150 MB for the 50,000 training images), not
  a shard: the indices of a global batch are sharded along the batch, so each device gathers its own
  examples from its local copy and no bytes cross between devices. Sharding the examples instead
  would save memory but turn every gather into an all-to-all exchange.

  An epoch's order is numpy's `default_rng([seed, epoch]).permutation`, the order of the tf.data
  pipeline, and batch b of epoch e is augmented with key fold_in(fold_in(key(seed), e), b), so an
  epoch resumed at any batch continues exactly as it would have. The iteration counter lives on the
  device and is advanced by the compiled function itself: the host sends nothing per step.
  """

  def __init__(self, data: Cifar10, config: ml_collections.ConfigDict, mesh: Mesh) -> None:
    parallel.check_batch_size('batch_size', config.batch_size)
    parallel.check_batch_size('eval_batch_size', config.eval_batch_size)
    self.batch_size, self.eval_batch_size = config.batch_size, config.eval_batch_size
    self.steps_per_epoch = cifar10.steps_per_epoch(len(data.train), config.batch_size)
    self.seed = config.seed
    self.sharding = NamedSharding(mesh, PartitionSpec(parallel.AXIS))  # of every batch array
    self.replicated = NamedSharding(_auto(mesh), PartitionSpec())
    self.per_step = NamedSharding(_auto(mesh), PartitionSpec(None, parallel.AXIS))  # [steps, B] index tables
    splits = {'train': data.train, 'val': data.val, 'test': data.test}
    self.splits = {name: self._place(split) for name, split in splits.items() if split is not None}
    self.num_train = len(data.train)
    self._eval_tables = {}
    self.augment = augment = augment_jax.build_augment(config.augment, normalization.statistics(config.data).mean)
    self.normalize = normalize = normalization.of_inputs(config.data)  # a Normalization, or None

    def eval_batch(
        images: jax.Array, labels: jax.Array, table: tuple[jax.Array, jax.Array], step: jax.Array
    ) -> tuple[Batch, jax.Array]:
      """Batch `step` of an evaluation index table, with its mask, and the next step."""
      indices, mask = table[0][step], table[1][step]
      return {'image': _to_input(images[indices], normalize), 'label': labels[indices], 'mask': mask}, step + 1

    # An argument of the batch program, not a constant in it: runs that differ only in the seed share one program.
    self.seed_array = _put(np.array(config.seed, np.int32), self.replicated)
    self.batch_at = functools.partial(train_batch, augment, normalize)  # (seed, images, labels, order, counter)
    self._train_batch = jax.jit(self.batch_at, out_shardings=(self.sharding, self.replicated))
    self._eval_batch = jax.jit(eval_batch, out_shardings=(self.sharding, self.replicated))

  def _place(self, split: Split) -> tuple[jax.Array, jax.Array]:
    """uint8 images and int32 labels, a whole copy on every device."""
    return _put(split.images, self.replicated), _put(split.labels.astype(np.int32), self.replicated)

  def train_batches(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
    """Epoch `epoch` from batch `start_batch` on: {'image': float32 [B, 32, 32, 3], 'label': int32 [B]}."""
    if not 0 <= start_batch <= self.steps_per_epoch:
      raise ValueError(f'start_batch={start_batch} must be in [0, {self.steps_per_epoch}]')
    order = self.order_table(epoch)
    counter = _put(np.array([epoch, start_batch], np.int32), self.replicated)
    return self._train_epoch(order, counter, self.steps_per_epoch - start_batch)

  def order_table(self, epoch: int) -> jax.Array:
    """Epoch `epoch`'s example indices [steps, B] on the devices, sharded along the batch."""
    return _put(epoch_order(self.seed, epoch, self.num_train, self.batch_size), self.per_step)

  def _train_epoch(self, order: jax.Array, counter: jax.Array, num_batches: int) -> Iterator[Batch]:
    """`num_batches` batches from the position in `counter`, each call advancing it on the device."""
    for _ in range(num_batches):
      batch, counter = self._train_batch(self.seed_array, *self.splits['train'], order, counter)
      yield batch

  def eval_batches(self, split: str) -> Iterator[Batch]:
    """The split ('train', 'val' or 'test') in order, the last batch padded; 'mask' is False on padding."""
    if split not in self.splits:
      raise ValueError(
          f'no {split!r} split here; have: {", ".join(self.splits)} '
          f'(a validation split needs data.val_fraction > 0)'
      )
    table = self._eval_table(split)
    step = _put(np.array(0, np.int32), self.replicated)
    for _ in range(table[0].shape[0]):
      batch, step = self._eval_batch(*self.splits[split], table, step)
      yield batch

  def _eval_table(self, split: str) -> tuple[jax.Array, jax.Array]:
    """Indices [steps, B] of the split in order, padding pointing at example 0, and the mask of real ones."""
    if split not in self._eval_tables:
      size = self.splits[split][1].shape[0]
      positions = np.arange(-(-size // self.eval_batch_size) * self.eval_batch_size).reshape(-1, self.eval_batch_size)
      mask = positions < size
      self._eval_tables[split] = (
          _put(np.where(mask, positions, 0).astype(np.int32), self.per_step),
          _put(mask, self.per_step),
      )
    return self._eval_tables[split]
