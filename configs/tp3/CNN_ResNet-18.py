"""TP3 CNN "CNN_ResNet-18": the CIFAR ResNet-18 (BasicBlocks, average pooling, one dense layer), the CNN winner.

    python -m cifar_jax.main --config=configs/tp3/CNN_ResNet-18.py --workdir=runs/tp3/CNN_ResNet-18

The report (section 3, "Experimentos con Arquitectura CNN"):

  "Aca exploramos la arquitectura ResNet-18, que es conocida por su profundidad y conexiones residuales. La
  red utilizó bloques básicos y una estructura más profunda. [...] La capa de convolución inicial conv1 toma
  imágenes de 3 canales de color y las convierte en 64 características. Cada BasicBlock realiza las
  siguientes operaciones: Convolución (con un kernel de 3x3 [...]), normalización [...], función de
  activación ReLU [...] y vuelve a aplicar convolución y normalización. [...] se utiliza una capa de Average
  Pooling [...] Luego se aplanan y se conectan a una capa fully connected"

  (ResNet-18 of BasicBlocks: conv1 maps the 3 colour channels to 64 features; each block is 3x3 conv,
  normalization, ReLU, conv, normalization; then average pooling, flatten and one fully connected layer.)

Reading chosen: model `resnet18`, the CIFAR variant the report's Kaggle references use (3x3 stem, no max
pool, stages [2, 2, 2, 2] of widths 64-512, BatchNorm; 11,173,962 parameters).
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64). The
activation, optimizer and schedule studies start from this config (configs/sweeps/tp3_activations.py...).
Report's figure: none given; the report names it the best of the four CNNs ("vimos que la CNN_ResNet-18
[...] logró obtener los mejores resultados"). Ours: docs/results.md.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the CIFAR ResNet-18."""
  config = base.get_config()
  config.model.name = 'resnet18'
  return config
