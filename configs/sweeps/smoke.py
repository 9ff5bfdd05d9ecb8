r"""The CI smoke sweep: two learning rates of a small MLP on a small slice of CIFAR-10, a few steps each.

    python -m cifar_jax.sweep --config=configs/sweeps/smoke.py --workdir=runs/smoke \
        --set=data.data_dir=../shared/data/cifar10

Proves the sweep, the report and the plots end to end on CPU in seconds: 256 training images, 128 for
validation and for test, one epoch of batch 64. Its accuracies mean nothing.
"""

import ml_collections

from configs.sweeps import default


def get_config() -> ml_collections.ConfigDict:
  """configs/tp3/MLP.py cut down to seconds, at two learning rates."""
  config = default.get_config()
  config.base = 'configs/tp3/MLP.py'
  config.overrides = ml_collections.ConfigDict(
      {
          'model': {'hidden_sizes': (32,)},
          'num_epochs': 1,
          'batch_size': 64,
          'eval_batch_size': 128,
          'log_every_steps': 2,
          'data': {'max_train_examples': 256, 'max_eval_examples': 128},
      }
  )
  config.grid = ml_collections.ConfigDict({'optimizer': {'learning_rate': [0.01, 0.05]}})
  return config
