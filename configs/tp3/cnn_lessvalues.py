"""TP3 CNN "cnn_lessvalues": the PyTorch-tutorial convolutional net (two 5x5 convolutions, three dense layers).

    python -m cifar_jax.main --config=configs/tp3/cnn_lessvalues.py --workdir=runs/tp3/cnn_lessvalues

The report (section 3, "Experimentos con Arquitectura CNN"):

  "Este experimento se basó en una arquitectura de red con capas convolucionales, seguida de capas
  completamente conectadas. Las capas convolucionales consistían en dos convoluciones con capas ocultas. A
  pesar de usar menos parámetros que algunas de las variantes, produjo resultados notables."

  (Convolutional layers followed by fully connected ones: two convolutions, then hidden layers. Fewer
  parameters than some variants, yet notable results.)

Reading chosen: the PyTorch 60-minute-blitz Net the class starts from (model `tutorial_cnn`: conv 3->6 5x5,
max pool, conv 6->16 5x5, max pool, dense 400->120->84->10, ReLU; 62,006 parameters).
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given. Ours: docs/results.md. The four CNNs together: configs/sweeps/tp3_cnn.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the tutorial CNN."""
  config = base.get_config()
  config.model.name = 'tutorial_cnn'
  return config
