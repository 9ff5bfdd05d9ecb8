"""TP3 stage 2: the seven dense networks, one change of depth or width at a time.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_dense.py --workdir=runs/tp3_dense

Each variant is its own config in configs/tp3/ (their docstrings quote the report and give the hidden sizes
read from it). The report's winner: fc_hl_bigvalues (no accuracy given). Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default

NAMES = (
    'MLP',
    'fc_hl_bigvalues',
    'fc_hl_1layers',
    'fc_hl_bigvalues_and_2layers',
    'fc_hl_less_values',
    'fc_hl_1layer_less',
    'fc_hl_1layerless_smallvalues',
)


def get_config() -> ml_collections.ConfigDict:
  """The seven dense configs, in the report's order."""
  config = default.get_config()
  config.base = 'configs/tp3/MLP.py'
  config.variants = [{'name': name, 'config': f'configs/tp3/{name}.py'} for name in NAMES]
  return config
