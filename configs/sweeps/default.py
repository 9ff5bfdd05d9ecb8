"""Every key of a sweep config, with its default; each sweep in configs/sweeps/ imports this and sets a few.

    python -m cifar_jax.sweep --config=configs/sweeps/<name>.py --workdir=runs/<name> [--set=key=value ...]

A sweep runs one training run per variant, each in its own subfolder of the workdir, then writes the comparison
table (results.md, results.csv) and plots. See cifar_jax/sweep.py for how a variant's config is resolved.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """The empty sweep: every key a sweep reads, each with a one-line comment."""
  config = ml_collections.ConfigDict()
  config.base = 'configs/default.py'  # the run config every variant starts from, relative to the repository root
  config.overrides = ml_collections.ConfigDict()  # the study's fixed baseline, keys mirroring the run config
  config.variants = []  # named variants: dicts {name, config (a run config file instead of base), overrides}
  config.grid = ml_collections.ConfigDict()  # or a grid, keys mirroring the run config, each leaf a list of values
  config.num_samples = 0  # grid only: 0 runs every point, N runs N points drawn at random without replacement
  config.seed = 0  # grid only: the seed of those random draws
  config.seeds = 1  # runs per variant, with run seeds seed, seed + 1, ... (each in variant/seed=K when > 1)
  # 'on': unfinished runs that share training.hyper.group_key train as one vmapped group; 'auto': only where
  # training.probe.probe estimates, compilations included, that the group finishes them sooner on this machine
  config.vectorize = 'off'
  config.max_members = 8  # vectorize='on' or 'auto': at most this many runs in one group
  # Workers and the queue (cifar_jax/study/queue.py, workers.py): every run (or vectorized group) is a trial of
  # one Optuna study that worker processes take in turn
  config.workers = (
      '1'  # worker processes on this machine, each on its own GPU or share of the cores; 'auto': one per GPU
  )
  config.storage = (
      ''  # the queue: '' a journal file in the workdir; a database URL (postgresql://...) for several machines
  )
  config.study = ''  # the Optuna study's name in the storage; '' is sweep-<workdir's folder name>
  config.heartbeat = 10  # seconds between a worker's heartbeats; a run silent for 3 of them is taken over by another
  # Search and pruning: 'fixed' runs the variants, the grid or its num_samples random draws; 'tpe' samples
  # num_samples points of the grid with Optuna's TPE sampler (seeded by seed), each run once
  config.search = 'fixed'
  # 'median' or 'hyperband': Optuna's pruner gets each epoch's validation accuracy and stops a run that cannot catch
  # up; it is recorded as pruned at that epoch (not failed). 'none' trains every run to its end
  config.pruner = 'none'
  config.pruner_startup_trials = 5  # median: runs that finish before any is pruned
  return config
