"""TP3's final model as a sweep of one variant, so that it runs with seeds like the studies.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_final.py --workdir=runs/tp3_final

The variant is configs/tp3/final.py (ResNet-18, ReLU6, SGD 0.001 momentum 0.7, ExponentialLR, data
augmentation, 25 epochs of batch 64). The report's figure: 83 %. Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default


def get_config() -> ml_collections.ConfigDict:
  """configs/tp3/final.py, alone."""
  config = default.get_config()
  config.base = 'configs/tp3/final.py'
  config.variants = [{'name': 'final', 'config': 'configs/tp3/final.py'}]
  return config
