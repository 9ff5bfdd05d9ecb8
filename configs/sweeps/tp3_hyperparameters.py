r"""TP3 stage 6: the hyperparameter grid (19,208 points), explored by 24 random draws.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_hyperparameters.py --workdir=runs/tp3_hyperparameters
    python -m cifar_jax.sweep --config=configs/sweeps/tp3_hyperparameters.py --workdir=runs/tp3_hp_all \
        --config.num_samples=0    # every point: 19,208 runs

The report (section 6), its ranges verbatim:

  "Learning rate: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]; Momentum: [0.6, 0.65, 0.7, 0.75, 0.8, 0.85,
  0.9]; Epochs: list(range(10, 80, 5)); Weight Decay: [1e-2, 1e-3, 1e-4, 1e-5]; Batch size: [8, 16, 32, 64,
  128, 256, 512]"

and its choice: "Learning rate: 0.001, Momentum: 0.7, Epochs: 25, Batch size: 64, weight_decay = 0.0001".
Its table of runs (ResNet-18, ReLU6, SGD) tops at 85.13 % validation accuracy (lr 0.05, batch 64, momentum
0.6, 25 epochs); the nine rows are in docs/results.md.

7 x 7 x 14 x 4 x 7 = 19,208 points: far too many to run, so random search, the sensible way to explore such
a grid, draws `num_samples` points without replacement (seed `seed`). Base: configs/tp3/final.py without
augmentation (this stage came before regularization): ResNet-18, ReLU6, SGD, ExponentialLR (gamma 0.95).
Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default


def get_config() -> ml_collections.ConfigDict:
  """The report's five ranges as a grid, 24 random draws."""
  config = default.get_config()
  config.base = 'configs/tp3/final.py'
  config.overrides = ml_collections.ConfigDict({'augment': {'ops': ()}})
  config.grid = ml_collections.ConfigDict(
      {
          'optimizer': {
              'learning_rate': [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
              'momentum': [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9],
              'weight_decay': [1e-2, 1e-3, 1e-4, 1e-5],
          },
          'num_epochs': list(range(10, 80, 5)),
          'batch_size': [8, 16, 32, 64, 128, 256, 512],
      }
  )
  config.num_samples = 24
  config.seed = 0
  return config
