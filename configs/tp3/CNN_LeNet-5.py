"""TP3 CNN "CNN_LeNet-5": LeNet-5 on 32 x 32 x 3 images (3 convolutions, 2 poolings, 2 dense layers).

    python -m cifar_jax.main --config=configs/tp3/CNN_LeNet-5.py --workdir=runs/tp3/CNN_LeNet-5

The report (section 3, "Experimentos con Arquitectura CNN"):

  "Esta variante se basó en la arquitectura LeNet-5, una red neuronal convolucional clásica conocida. Esta
  está compuesta de 7 capas internas diferentes, 3 de convolución, 2 de agrupación y otras 2 que están
  densamente conectadas con su capa anterior."

  (Based on the classic LeNet-5: 7 inner layers, 3 convolutions, 2 poolings and 2 fully connected layers.)

Reading chosen: model `lenet5` (C1 conv 3->6 5x5, S2 max pool, C3 conv 6->16 5x5, S4 max pool, C5 conv
16->120 5x5, F6 dense 120->84, output 84->10; 62,006 parameters) with ReLU and max pooling, the report's
baseline activation, rather than the 1998 paper's scaled tanh and average pooling.
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given. Ours: docs/results.md. The four CNNs together: configs/sweeps/tp3_cnn.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with LeNet-5."""
  config = base.get_config()
  config.model.name = 'lenet5'
  return config
