"""TP3 dense network "fc_hl_1layers": MLP with hidden layers (120, 84), 379,774 params.

    python -m cifar_jax.main --config=configs/tp3/fc_hl_1layers.py --workdir=runs/tp3/fc_hl_1layers

The report (section 2, "Experimentos con Arquitectura Densa"):

  "En este caso, decidimos experimentar al tener una sola capa oculta con 120 nodos. Esto reduce la
  complejidad del modelo en comparación con "fc_hl_bigvalues" y nos permitió evaluar si un enfoque más simple
  sigue siendo efectivo."

  (A single hidden layer of 120 nodes: less complex than fc_hl_bigvalues, to see whether a simpler net still
  works.)

Reading chosen: one hidden layer of 120 instead of two; the 84-node additional layer kept (what sets it apart
from fc_hl_1layer_less, which the report describes in nearly the same words).
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given (the report gives no accuracy for this network).
Ours: docs/results.md. The seven run together: configs/sweeps/tp3_dense.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the MLP of hidden sizes (120, 84)."""
  config = base.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (120, 84)
  return config
