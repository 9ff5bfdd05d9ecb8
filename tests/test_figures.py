"""The data figures: examples per class, class distribution, augmentation preview."""

import numpy as np

from cifar_jax import config_lib
from cifar_jax.study import figures
from cifar_jax.data import cifar10


def _split(labels):
  return cifar10.Split(np.zeros((len(labels), 32, 32, 3), np.uint8), np.array(labels, np.int32))


def test_class_examples_are_the_first_images_of_each_class():
  labels = list(range(9, -1, -1)) * 2  # 9, 8, ..., 0, 9, 8, ..., 0
  indices = figures.class_examples(_split(labels), per_class=2)
  np.testing.assert_array_equal(indices, [[9 - c, 19 - c] for c in range(10)])


def test_class_counts_count_each_class_and_nothing_for_a_missing_split():
  np.testing.assert_array_equal(figures.class_counts(_split([3, 1, 3, 0, 1, 3])), [1, 2, 0, 3, 0, 0, 0, 0, 0, 0])
  assert figures.class_counts(None).sum() == 0


def test_augmentation_preview_without_ops_is_the_image_and_flip_only_mirrors():
  images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  config = config_lib.load_config_file('configs/mlp.py')
  config.augment.ops = ()
  views = figures.augmented(images, config.augment, seed=0, keys=3)
  np.testing.assert_allclose(views, np.broadcast_to(images / 255, views.shape), atol=1e-7)
  config.augment.ops = ('horizontal_flip',)
  views = figures.augmented(images, config.augment, seed=0, keys=8)
  for k in range(8):
    for i in range(4):
      same, mirrored = np.allclose(views[k, i], images[i] / 255), np.allclose(views[k, i], images[i, :, ::-1] / 255)
      assert same or mirrored


def test_make_figures_writes_the_three_pngs(tmp_path, cifar10_dir):
  config = config_lib.load_config_file('configs/upv/resnet_final.py')
  config.data.data_dir = str(cifar10_dir)
  paths = figures.make_figures(config, 'resnet_final', tmp_path)
  assert [p.name for p in paths] == ['examples.png', 'class_distribution.png', 'augmentation.png']
  assert all(p.stat().st_size > 10_000 for p in paths)
