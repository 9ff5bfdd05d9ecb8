"""TP3 dense network "fc_hl_1layer_less": MLP with hidden layers (120,), 369,970 params.

    python -m cifar_jax.main --config=configs/tp3/fc_hl_1layer_less.py --workdir=runs/tp3/fc_hl_1layer_less

The report (section 2, "Experimentos con Arquitectura Densa"):

  "Este experimento lo implementamos teniendo solo una capa oculta con 120 nodos, lo que simplifica aún más la
  arquitectura al eliminar una de las capas intermedias."

  (Only one hidden layer of 120 nodes, simpler still: one of the intermediate layers is removed.)

Reading chosen: one hidden layer of 120 and the 84-node intermediate layer removed too.
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given (the report gives no accuracy for this network).
Ours: docs/results.md. The seven run together: configs/sweeps/tp3_dense.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the MLP of hidden sizes (120,)."""
  config = base.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (120,)
  return config
