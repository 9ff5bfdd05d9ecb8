"""TP3 stage 5a: the five optimizers on ResNet-18 with ReLU6.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_optimizers.py --workdir=runs/tp3_optimizers

The report (section 5): "comparamos el rendimiento de los siguientes optimizadores: SGD, Adam, Adagrad [...]
el optimizador SGD con un learning rate constante de 0.01 y un valor de momentum de 0.9 nos dio el mejor
equilibrio [...] Otros optimizadores que investigamos fueron RMSprop y Adadelata". (SGD, Adam and Adagrad
compared, SGD with a constant 0.01 and momentum 0.9 the best; RMSprop and Adadelta tried too.)

Base: configs/tp3/CNN_ResNet-18.py with the activation winner, ReLU6. Reading chosen: the report gives only
SGD's learning rate; the others run at PyTorch's default learning rate (Adam 0.001, Adagrad 0.01, RMSprop
0.01 without momentum, Adadelta 1.0), constant, no weight decay. The report's winner: SGD (no accuracy
given). Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default


def get_config() -> ml_collections.ConfigDict:
  """ResNet-18 + ReLU6 once per optimizer."""
  config = default.get_config()
  config.base = 'configs/tp3/CNN_ResNet-18.py'
  config.overrides = ml_collections.ConfigDict({'model': {'activation': 'relu6'}})
  config.variants = [
      {
          'name': 'SGD',
          'overrides': {'optimizer.name': 'sgd', 'optimizer.learning_rate': 0.01, 'optimizer.momentum': 0.9},
      },
      {'name': 'Adam', 'overrides': {'optimizer.name': 'adam', 'optimizer.learning_rate': 0.001}},
      {'name': 'Adagrad', 'overrides': {'optimizer.name': 'adagrad', 'optimizer.learning_rate': 0.01}},
      {
          'name': 'RMSprop',
          'overrides': {'optimizer.name': 'rmsprop', 'optimizer.learning_rate': 0.01, 'optimizer.momentum': 0.0},
      },
      {'name': 'Adadelta', 'overrides': {'optimizer.name': 'adadelta', 'optimizer.learning_rate': 1.0}},
  ]
  return config
