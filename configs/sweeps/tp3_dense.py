"""TP3 stage 2: the seven dense networks, one change of depth or width at a time.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_dense.py --workdir=runs/tp3_dense

Each variant is its own config in configs/tp3/ (their docstrings quote the report and give the hidden sizes
read from it). The report's winner: fc_hl_bigvalues (no accuracy given). Ours: docs/results.md.

The latest checkpoint is written every 5 epochs (and at the end, on a stop, and the best one whenever validation
improves), not every epoch: these nets' epochs take seconds, so a checkpoint per epoch is a large share of a run
(benchmarks/README.md, "Fixed costs per run"), while a resume repeats at most 4 epochs. Epochs rather than
seconds, so that the runs of a variant keep checkpoints at the same steps (a vectorized group resumes only from a
step its members share). It changes no result: the key is resume-safe, and a run resumes exactly.
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
  config.overrides.checkpoint_every_epochs = 5
  return config
