"""TP3 stage 3: the four convolutional architectures.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_cnn.py --workdir=runs/tp3_cnn

Each variant is its own config in configs/tp3/. The report's winner: CNN_ResNet-18 (no accuracy given).
Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default

NAMES = ('cnn_lessvalues', 'CNN_LeNet-5', 'CNN_ResNet-18', 'CNN_VGG16')


def get_config() -> ml_collections.ConfigDict:
  """The four CNN configs, in the report's order."""
  config = default.get_config()
  config.base = 'configs/tp3/CNN_ResNet-18.py'
  config.variants = [{'name': name, 'config': f'configs/tp3/{name}.py'} for name in NAMES]
  return config
