"""TP3 CNN "CNN_VGG16": the VGG-16 convolutions with BatchNorm and a single dense layer.

    python -m cifar_jax.main --config=configs/tp3/CNN_VGG16.py --workdir=runs/tp3/CNN_VGG16

The report (section 3, "Experimentos con Arquitectura CNN"):

  "Inspirada en la arquitectura VGG-16, esta variante utilizó múltiples capas convolucionales y una capa
  completamente conectada. Su complejidad se basa en la gran cantidad de capas y parámetros, lo que puede
  requerir una potencia computacional significativa."

  (Inspired by VGG-16: many convolutional layers and one fully connected layer; complex, with many layers
  and parameters.)

Reading chosen: model `vgg16`, the thirteen 3x3 convolutions of VGG-16 (64-512 channels, five max pools)
each with BatchNorm, as in the "Writing VGG from Scratch in PyTorch" reference the report cites, then one
dense layer 512->10 (14,728,266 parameters).
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given. Ours: docs/results.md. The four CNNs together: configs/sweeps/tp3_cnn.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with VGG-16."""
  config = base.get_config()
  config.model.name = 'vgg16'
  return config
