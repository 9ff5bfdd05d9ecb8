r"""TP3 stage 6 searched instead of drawn: the same grid and budget as tp3_hyperparameters.py (24 points), chosen
by Optuna's TPE sampler, with the median pruner stopping runs that fall behind.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_hyperparameters_tpe.py --workdir=runs/tp3_hp_tpe
    python -m cifar_jax.sweep --config=configs/sweeps/tp3_hyperparameters_tpe.py --workdir=runs/tp3_hp_tpe \
        --config.workers=auto    # one worker per GPU

The report's random search trains 24 draws of up to 75 epochs to the end, the most expensive part of reproducing
it. Here the first `pruner_startup_trials` runs train to the end; every later run reports its validation
accuracy after each epoch and is stopped (recorded as pruned at that epoch) once it falls below the median of
the earlier runs at the same epoch; TPE then samples the next point where the finished and pruned ones suggest
it pays off. benchmarks/README.md compares the two on a small slice: best validation accuracy against the
epochs trained.
"""

import ml_collections

from configs.sweeps import tp3_hyperparameters


def get_config() -> ml_collections.ConfigDict:
  """tp3_hyperparameters.py's grid and 24-point budget, TPE-sampled and median-pruned."""
  config = tp3_hyperparameters.get_config()
  config.search = 'tpe'
  config.pruner = 'median'
  config.pruner_startup_trials = 5
  return config
