"""TP3 dense network "MLP": MLP with hidden layers (120, 120, 84), 394,294 params.

    python -m cifar_jax.main --config=configs/tp3/MLP.py --workdir=runs/tp3/MLP

The report (section 2, "Experimentos con Arquitectura Densa"):

  "Comenzamos con un modelo base MLP que consta de múltiples capas densas, cada una con una cantidad
  'moderada' de nodos. El modelo se encarga de la clasificación de imágenes y termina con 10 nodos de salida,
  correspondientes a las 10 clases de objetos en nuestro conjunto de datos."

  (We start from a base MLP made of several dense layers, each with a "moderate" number of nodes, ending in 10
  output nodes, one per class.)

Reading chosen: the class's dense net, whose layers end in an "additional" layer of 84 nodes before the 10
outputs (the PyTorch tutorial's 120 -> 84 -> 10); two hidden layers of 120 ("moderate") before it. The other
six dense experiments change the hidden layers ("hl") and keep the 84-node layer unless they say they remove
it.
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given (the report gives no accuracy for this network).
Ours: docs/results.md. The seven run together: configs/sweeps/tp3_dense.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the MLP of hidden sizes (120, 120, 84)."""
  config = base.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (120, 120, 84)
  return config
