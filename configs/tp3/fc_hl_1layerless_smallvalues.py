r"""TP3 dense network "fc_hl_1layerless_smallvalues": MLP with hidden layers (50,), 154,160 params.

    python -m cifar_jax.main --config=configs/tp3/fc_hl_1layerless_smallvalues.py \
        --workdir=runs/tp3/fc_hl_1layerless_smallvalues

The report (section 2, "Experimentos con Arquitectura Densa"):

  "En este último experimento, disminuimos significativamente la complejidad al utilizar una sola capa oculta
  con 50 nodos y reducir aún más el número de nodos en las capas densas."

  (The least complex: a single hidden layer of 50 nodes, fewer nodes in the dense layers still.)

Reading chosen: one hidden layer of 50 and nothing else.
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given (the report gives no accuracy for this network).
Ours: docs/results.md. The seven run together: configs/sweeps/tp3_dense.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the MLP of hidden sizes (50,)."""
  config = base.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (50,)
  return config
