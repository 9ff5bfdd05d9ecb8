"""The UPV report's progression: its table's six rows, in order, each a config in configs/upv/.

    python -m cifar_jax.sweep --config=configs/sweeps/upv_progression.py --workdir=runs/upv_progression

The report's figures (best test accuracy over 100 epochs): 82.11, 87.5, 88.86, 89.65, 91.74, 92.64 %. Ours:
docs/results.md. The names carry the row number, as the table sorts by validation accuracy; every row holds
out a 10 % validation split (see configs/upv/cnn.py for that reading).
"""

import ml_collections

from configs.sweeps import default

ROWS = ('cnn', 'da_lra', 'resnet', 'avgpool', 'maxpool', 'resnet_final')


def get_config() -> ml_collections.ConfigDict:
  """The six UPV rows, in the report's order."""
  config = default.get_config()
  config.base = 'configs/upv/cnn.py'
  config.variants = [{'name': f'{i}_{row}', 'config': f'configs/upv/{row}.py'} for i, row in enumerate(ROWS, 1)]
  return config
