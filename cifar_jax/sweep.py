r"""Sweeps: many runs from one base config, each in its own subfolder, then the comparison table and plots.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_dense.py --workdir=runs/tp3_dense
    python -m cifar_jax.sweep --config=configs/sweeps/tp3_dense.py --workdir=runs/tp3_dense_5seeds --config.seeds=5
    python -m cifar_jax.sweep --config=configs/sweeps/tp3_hyperparameters.py --workdir=runs/tp3_hp \
        --config.num_samples=8 --set=num_epochs=2 --set=data.max_train_examples=5000

A sweep config is a file whose `get_config()` returns a ConfigDict with these keys (configs/sweeps/default.py
holds them all, documented; every sweep imports it):

  base         the run config file every variant starts from, relative to the repository root (run from there)
  overrides    the study's fixed baseline: a ConfigDict mirroring the run config (`overrides.model.activation`)
  variants     a list of named variants, dicts {name, config, overrides}: `config` a run config file used instead
               of `base`, `overrides` a dict of {dotted.key: value}; a missing name comes from them
  grid         or a grid: a ConfigDict mirroring the run config whose leaves are lists of values; every point
               of their product is a variant named after its values (`learning_rate=0.01_momentum=0.9`)
  num_samples  grid only: 0 runs every point; N runs N points drawn at random without replacement
  seed         grid only: the seed of those draws
  seeds        how many times each variant runs, with run seeds config.seed, config.seed + 1, ...
  workers      worker processes taking runs from the sweep's Optuna queue, each on its own GPU or share of the
               cores; 'auto' is one per local GPU (cifar_jax/study/workers.py)
  storage      the queue: '' a journal file in the workdir; a database URL for several machines (study/queue.py)
  study        the study's name in the storage ('' is sweep-<workdir folder>); heartbeat: seconds between beats
  search       'fixed' (the variants, the grid or its random draws) or 'tpe' (num_samples grid points chosen by TPE)
  pruner       'none', 'median' or 'hyperband': stops runs that fall behind, recorded as pruned at their epoch

A variant's config is its config file, then `overrides`, then its own overrides, then every `--set=key=value`
of the command line (which therefore can shrink a whole sweep: `--set=num_epochs=1`). A key the run config
does not have (outside `model.`, whose keys the model checks) is an error naming it, and every variant's
config is checked before anything runs. `--set` values are Python literals (`--set=model.hidden_sizes=(64,)`),
or plain text for text keys; a tuple key also takes `a,b`. Variant names become folder names: characters
other than letters, digits and `._=+-` become `_`, and a repeated name gets a suffix.

Each variant runs in `workdir/<name>` through `trainer.train_and_evaluate`; with `seeds` > 1, once per seed in
`workdir/<name>/seed=<K>` (the seed drives initialization, data order, augmentation and dropout; the validation
split comes from `data.split_seed`, so every seed and variant is measured on the same images). A run whose
summary.json says 'completed' for the same config is skipped; any other resumes from its latest checkpoint. A folder that holds
a run of a different config stops the sweep before anything runs, unless `--allow_config_change` (then the
run resumes with the new values, as `cifar_jax.main` does). A run that fails (a non-finite loss, bad
data...) is recorded as failed with its reason, in sweep.json and its summary.json, and the sweep goes on;
Ctrl-C stops the whole sweep (run the same command again to resume it). sweep.json holds the command, one
record per run (its folder, variant, seed, config file, overrides and status) and the varied keys. At the end
`cifar_jax.report` writes results.md, results.csv and the plots. The exit status is 1 on bad input or when a
variant failed, 130 when interrupted by Ctrl-C, 143 by SIGTERM (both checkpointed).
"""

import dataclasses
import functools
import sys

from absl import app, flags
from ml_collections import config_flags

from cifar_jax import cli, config_lib
from cifar_jax.data import cifar10
from cifar_jax.study import expansion
from cifar_jax.config_lib import parse_flags


@dataclasses.dataclass
class _Flags:
  """The command line's flags; defined only when run as a program, so that importing this module defines none."""

  config: flags.FlagHolder
  workdir: flags.FlagHolder
  assignments: flags.FlagHolder
  allow_config_change: flags.FlagHolder

  @classmethod
  def define(cls) -> '_Flags':
    """Defines the flags with absl."""
    holders = cls(
        config_flags.DEFINE_config_file(
            'config', None, 'A sweep config, e.g. configs/sweeps/tp3_dense.py.', lock_config=True
        ),
        flags.DEFINE_string(
            'workdir', None, 'Where the sweep writes: a folder per variant, sweep.json, results.', required=True
        ),
        flags.DEFINE_multi_string('set', [], "key=value set in every variant's run config, last (repeatable)."),
        flags.DEFINE_bool(
            'allow_config_change', False, 'Resume variant folders even though their runs had a different config.'
        ),
    )
    flags.mark_flag_as_required('config')
    return holders


def sweep(cli_flags: _Flags) -> int:
  """Runs the sweep; 1 when a variant failed. The --set lines, a data folder they name, the sweep's own names and
  every run config's keys, names and plain values are checked first, before the sweep library (and JAX) is
  imported."""
  settings = config_lib.check_settings(cli_flags.assignments.value)
  if any(text.startswith('data.data_dir=') for text in cli_flags.assignments.value):
    cifar10.check_named_folder(settings.data.data_dir or None)
  expansion.check_configs(cli_flags.config.value, cli_flags.assignments.value)
  from cifar_jax.study.sweep import run_sweep  # pylint: disable=import-outside-toplevel  # after the flags parsed

  records = run_sweep(
      cli_flags.config.value,
      cli_flags.workdir.value,
      cli_flags.assignments.value,
      command=cli.published_command('cifar_jax.sweep', sys.argv[1:]),
      allow_config_change=cli_flags.allow_config_change.value,
  )
  return 1 if any(r['status'] == 'failed' for r in records) else 0


def main(argv: list[str], cli_flags: _Flags) -> None:
  """Exits 1 on bad input or when a variant failed, 130 on Ctrl-C, 143 on SIGTERM (cifar_jax/cli.py)."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.run(functools.partial(sweep, cli_flags))


if __name__ == '__main__':
  app.run(
      functools.partial(main, cli_flags=_Flags.define()), flags_parser=functools.partial(parse_flags, usage=__doc__)
  )
