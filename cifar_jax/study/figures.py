"""The UPV report's three data figures, for any config: examples per class, class distribution, augmentation.

The command, its usage and what it writes: `cifar_jax/figures.py`.
"""

import pathlib

import jax
import ml_collections
import numpy as np

from cifar_jax import plotting
from cifar_jax.plotting import plt
from cifar_jax.data import augment_jax, cifar10

EXAMPLES_PER_CLASS = 8
AUGMENTED_IMAGES = 6
AUGMENT_KEYS = 7


def class_examples(split: cifar10.Split, per_class: int) -> np.ndarray:
  """[classes, per_class] indices: the first `per_class` images of each class, in file order."""
  return np.stack([np.flatnonzero(split.labels == c)[:per_class] for c in range(cifar10.NUM_CLASSES)])


def class_counts(split: cifar10.Split | None) -> np.ndarray:
  """Images per class (zeros for a missing split)."""
  if split is None:
    return np.zeros(cifar10.NUM_CLASSES, np.int64)
  return np.bincount(split.labels, minlength=cifar10.NUM_CLASSES)


def augmented(images: np.ndarray, augment_config: ml_collections.ConfigDict, seed: int, keys: int) -> np.ndarray:
  """[keys, N, 32, 32, 3] float images in [0, 1]: the batch augmented once per key fold_in(key(seed), k)."""
  augment = jax.jit(augment_jax.build_augment(augment_config))
  batch = images.astype(np.float32) / 255
  return np.stack([np.asarray(augment(jax.random.fold_in(jax.random.key(seed), k), batch)) for k in range(keys)])


def _grid(rows: int, cols: int, scale: float = 1.0):
  figure, axes = plt.subplots(rows, cols, figsize=(scale * cols, scale * rows), squeeze=False)
  for axis in axes.flat:
    axis.set_xticks([])
    axis.set_yticks([])
  return figure, axes


def plot_examples(split: cifar10.Split, path: pathlib.Path) -> pathlib.Path:
  """One row per class of its first training images."""
  indices = class_examples(split, EXAMPLES_PER_CLASS)
  figure, axes = _grid(cifar10.NUM_CLASSES, EXAMPLES_PER_CLASS, 0.9)
  for c, row in enumerate(indices):
    axes[c, 0].set_ylabel(cifar10.CLASS_NAMES[c], rotation=0, ha='right', va='center', fontsize=9)
    for j, index in enumerate(row):
      axes[c, j].imshow(split.images[index])
  figure.suptitle('CIFAR-10: training images per class')
  return plotting.save(figure, path, dpi=100)


def plot_distribution(data: cifar10.Cifar10, path: pathlib.Path) -> pathlib.Path:
  """Grouped bars: images per class in each partition, with the partition sizes in the legend."""
  figure, axis = plt.subplots(figsize=(9, 4))
  parts = [
      (name, split)
      for name, split in (('train', data.train), ('validation', data.val), ('test', data.test))
      if split is not None
  ]
  width = 0.8 / len(parts)
  for i, (name, split) in enumerate(parts):
    counts = class_counts(split)
    axis.bar(
        np.arange(cifar10.NUM_CLASSES) + (i - (len(parts) - 1) / 2) * width,
        counts,
        width,
        label=f'{name} ({len(split):,} images)',
    )
  axis.set_xticks(range(cifar10.NUM_CLASSES), cifar10.CLASS_NAMES, rotation=30, ha='right')
  axis.set_ylabel('images')
  axis.set_title('CIFAR-10: images per class in each partition')
  axis.set_ylim(0, axis.get_ylim()[1] * 1.3)  # room above the bars, so that the legend hides none of them
  axis.legend(loc='upper center', ncols=len(parts), fontsize=8)
  return plotting.save(figure, path, dpi=100)


def plot_augmentation(
    split: cifar10.Split, config: ml_collections.ConfigDict, title: str, path: pathlib.Path
) -> pathlib.Path:
  """Each row: an original training image, then the config's augmentation of it under several keys."""
  images = split.images[class_examples(split, 1)[:AUGMENTED_IMAGES, 0]]
  views = augmented(images, config.augment, config.seed, AUGMENT_KEYS)
  figure, axes = _grid(len(images), AUGMENT_KEYS + 1, 1.1)
  for i, image in enumerate(images):
    axes[i, 0].imshow(image)
    for k in range(AUGMENT_KEYS):
      axes[i, k + 1].imshow(np.clip(views[k, i], 0, 1))
  axes[0, 0].set_title('original', fontsize=8)
  for k in range(AUGMENT_KEYS):
    axes[0, k + 1].set_title(f'key {k}', fontsize=8)
  ops = ', '.join(config.augment.ops) or 'no augmentation'
  figure.suptitle(f'{title}: {ops}', fontsize=9)
  return plotting.save(figure, path, dpi=100)


def make_figures(config: ml_collections.ConfigDict, title: str, out: pathlib.Path) -> list[pathlib.Path]:
  """The three figures for `config` into `out`."""
  out.mkdir(parents=True, exist_ok=True)
  data = cifar10.load(
      config.data.data_dir or None,
      source=config.data.source,
      val_fraction=config.data.val_fraction,
      seed=config.seed,
      max_train_examples=config.data.max_train_examples,
      max_eval_examples=config.data.max_eval_examples,
  )
  return [
      plot_examples(data.train, out / 'examples.png'),
      plot_distribution(data, out / 'class_distribution.png'),
      plot_augmentation(data.train, config, title, out / 'augmentation.png'),
  ]
