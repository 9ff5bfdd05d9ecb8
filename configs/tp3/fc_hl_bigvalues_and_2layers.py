r"""TP3 dense network "fc_hl_bigvalues_and_2layers": MLP with hidden layers (200, 200, 84), 672,534 params.

    python -m cifar_jax.main --config=configs/tp3/fc_hl_bigvalues_and_2layers.py \
        --workdir=runs/tp3/fc_hl_bigvalues_and_2layers

The report (section 2, "Experimentos con Arquitectura Densa"):

  "Este experimento incorpora dos capas ocultas con 200 nodos cada una, lo que agrega una mayor profundidad a
  la red. Además, mantenemos la estructura de capas adicionales entre las capas ocultas y la capa de salida."

  (Two hidden layers of 200 nodes each, and the additional layers between the hidden layers and the output
  kept.)

Reading chosen: two hidden layers of 200, then the 84-node additional layer.
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given (the report gives no accuracy for this network).
Ours: docs/results.md. The seven run together: configs/sweeps/tp3_dense.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the MLP of hidden sizes (200, 200, 84)."""
  config = base.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (200, 200, 84)
  return config
