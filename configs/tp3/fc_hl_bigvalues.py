"""TP3 dense network "fc_hl_bigvalues": MLP with hidden layers (150, 150, 84), 497,134 params.

    python -m cifar_jax.main --config=configs/tp3/fc_hl_bigvalues.py --workdir=runs/tp3/fc_hl_bigvalues

The report (section 2, "Experimentos con Arquitectura Densa"):

  "En este experimento, aumentamos el número de nodos en algunas de las capas densas, lo que hace que el
  modelo sea más complejo. Específicamente, la capa oculta intermedia la aumentamos de 120 a 150 nodos, y se
  mantienen capas adicionales para procesar los datos antes de la capa de salida. [...] decidimos aumentar la
  complejidad del modelo al agregar una capa oculta con 150 nodos. Esta capa se sitúa entre las capas
  iniciales de procesamiento y la capa oculta intermedia de 150 nodos adicionales."

  (We raise the number of nodes in some dense layers: the intermediate hidden layer goes from 120 to 150
  nodes, and the additional layers before the output stay. [...] a hidden layer of 150 nodes sits between the
  first layers and the intermediate hidden layer of 150.)

Reading chosen: both hidden layers of the MLP widened from 120 to 150, the 84-node additional layer kept.
Training: configs/tp3/base.py (80/20 split, SGD 0.01 momentum 0.9, constant, 25 epochs, batch 64).
Report's figure: none given; the report names it the best of the seven dense networks ("encontramos que el
mejor resultado nos lo daba el experimento fc_hl_bigvalues").
Ours: docs/results.md. The seven run together: configs/sweeps/tp3_dense.py.
"""

import ml_collections

from configs.tp3 import base


def get_config() -> ml_collections.ConfigDict:
  """TP3's setup with the MLP of hidden sizes (150, 150, 84)."""
  config = base.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (150, 150, 84)
  return config
