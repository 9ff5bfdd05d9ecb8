"""TP3 stage 4: the eight hidden activations on CNN_ResNet-18.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_activations.py --workdir=runs/tp3_activations

The report (section 4): "probamos varias diferentes funciones de activación en la arquitectura
"CNN_ResNet-18" [...] vimos que la mejor precisión y pérdida la traía la función de activación Relu6."
(We tried several activations on CNN_ResNet-18; ReLU6 gave the best accuracy and loss.)

The activation replaces ReLU everywhere in the net. Readings: LeakyReLU with PyTorch's slope 0.01; Softmax
over the channels of each position (PyTorch's nn.Softmax(dim=1) on NCHW maps). Everything else as
configs/tp3/CNN_ResNet-18.py. The report's winner: ReLU6 (no accuracy given). Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default

ACTIVATIONS = {
    'ReLU': 'relu',
    'LeakyReLU': 'leaky_relu',
    'ReLU6': 'relu6',
    'ELU': 'elu',
    'Tanh': 'tanh',
    'SiLU': 'silu',
    'Sigmoid': 'sigmoid',
    'Softmax': 'softmax',
}


def get_config() -> ml_collections.ConfigDict:
  """ResNet-18 once per activation, named as the report names them."""
  config = default.get_config()
  config.base = 'configs/tp3/CNN_ResNet-18.py'
  config.variants = [
      {'name': name, 'overrides': {'model.activation': activation}} for name, activation in ACTIVATIONS.items()
  ]
  return config
