"""Trains one run:

    python -m cifar_jax.main --config=configs/resnet18.py --workdir=runs/r18 [--config.GROUP.KEY=VALUE ...]

The same command with the same workdir resumes the run. Exit status: 0 when done, 1 on bad input (one line,
`error: ...`), 130 after Ctrl-C and 143 after SIGTERM (the run's checkpoint is written first; see
cifar_jax/training/preemption.py).
"""

import functools

from absl import app, flags
from ml_collections import config_flags

from cifar_jax import cli, config_check, config_lib
from cifar_jax.data import cifar10

# Unlocked and open to new keys, so that a mistyped override reaches check_config, which names the closest keys.
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'A config file, e.g. configs/resnet18.py.', lock_config=False, accept_new_attributes=True
)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the run writes; the same workdir again resumes it.')
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    'allow_config_change', False, 'Resume a workdir even though its run had a different config.'
)
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Several hosts: host:port of process 0, for jax.distributed.initialize.'
)
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'Several hosts: how many processes in all.')
_PROCESS_ID = flags.DEFINE_integer('process_id', 0, 'Several hosts: this process, from 0.')
flags.mark_flags_as_required(['config', 'workdir'])


def train() -> None:
  """Checks the config's keys, names, plain values and named data folder (before JAX, Flax and Orbax are imported,
  so that a typo or an unknown name is refused in well under two seconds), then trains."""
  config_check.check_config(_CONFIG.value)
  if _CONFIG.value.data.source != 'tfds':
    cifar10.check_named_folder(_CONFIG.value.data.data_dir or None)
  import jax  # pylint: disable=import-outside-toplevel
  from cifar_jax.training import trainer  # pylint: disable=import-outside-toplevel

  if _NUM_PROCESSES.value > 1:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU runs only; GPUs use NCCL
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CONFIG_CHANGE.value)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.run(train)


if __name__ == '__main__':
  app.run(main, flags_parser=functools.partial(config_lib.parse_flags, usage=__doc__))
