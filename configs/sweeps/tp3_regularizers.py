"""TP3 stage 7: the four regularizers, one at a time, on the tuned ResNet-18.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_regularizers.py --workdir=runs/tp3_regularizers

The report (section 7): "implementamos Data Augmentation, Dropout, Ridge, Lasso para determinar cuál
producía el mejor rendimiento". Data augmentation: "el relleno (padding) de las imágenes con píxeles,
recortes aleatorios, volteos horizontales, normalización de valores de píxeles y la posibilidad de eliminar
regiones aleatorias en las imágenes" (padding, random crops, horizontal flips, normalization, random
erasing); Ridge: an L2 penalty on the weights; Lasso: an L1 penalty.

Base: configs/tp3/final.py without augmentation (the hyperparameter winners: lr 0.001, momentum 0.7, 25
epochs, batch 64, weight decay 1e-4, ExponentialLR, ReLU6). Readings chosen (the report gives no
strengths): augmentation = random_crop (padding 4) + horizontal_flip + random_erasing (p 0.5, scale
0.02-0.33), normalization being always on; dropout 0.5 (PyTorch's default) before ResNet-18's dense layer;
Ridge 1e-4 * sum(w^2) and Lasso 1e-5 * sum(|w|) added to the loss. The report names no winner.
Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default


def get_config() -> ml_collections.ConfigDict:
  """The tuned ResNet-18 once per regularizer."""
  config = default.get_config()
  config.base = 'configs/tp3/final.py'
  config.overrides = ml_collections.ConfigDict({'augment': {'ops': ()}})
  config.variants = [
      {'name': 'data_augmentation', 'overrides': {'augment.ops': ('random_crop', 'horizontal_flip', 'random_erasing')}},
      {'name': 'dropout', 'overrides': {'model.dropout': 0.5}},
      {'name': 'Ridge', 'overrides': {'regularization.l2': 1e-4}},
      {'name': 'Lasso', 'overrides': {'regularization.l1': 1e-5}},
  ]
  return config
