"""TP3 dense network "fc_hl_less_values": MLP with hidden layers (50, 50, 84), 161,334 params.

    python -m cifar_jax.main --config=configs/tp3/fc_hl_less_values.py --workdir=runs/tp3/fc_hl_less_values

The report (section 2, "Experimentos con Arquitectura Densa"):

  "En este experimento, reducimos drásticamente la cantidad de nodos en las capas densas, lo que simplifica la
  arquitectura. La capa oculta intermedia consta de solo 50 nodos y se mantiene una estructura simple."

  (Far fewer nodes in the dense layers: the intermediate hidden layer has only 50 nodes, the structure stays
  simple.)

Reading chosen: the MLP with both hidden layers cut to 50; the 84-node additional layer kept.
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given (the report gives no accuracy for this network).
Ours: docs/results.md. The seven run together: configs/sweeps/tp3_dense.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the MLP of hidden sizes (50, 50, 84)."""
  config = base.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (50, 50, 84)
  return config
