"""Command line: `python -m cifar_jax.main --config=configs/resnet18.py --workdir=runs/r18 [--config.a.b=v]`."""

import sys

import jax
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cifar_jax import train
from cifar_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'A config file, e.g. configs/resnet18.py.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the run writes; the same workdir again resumes it.')
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    'allow_config_change', False, 'Resume a workdir even though its run had a different config.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Several hosts: host:port of process 0, for jax.distributed.initialize.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'Several hosts: how many processes in all.')
_PROCESS_ID = flags.DEFINE_integer('process_id', 0, 'Several hosts: this process, from 0.')
flags.mark_flags_as_required(['config', 'workdir'])


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a missing or broken config file or a mistyped key reported in one line."""
  try:
    remaining = flags.FLAGS(argv)
    _CONFIG.value.get('seed')  # a config file that failed to load raises only when first used
  except flags.Error as e:
    _fail(f'{e}\nPass --helpshort to see the flags.')
  except OSError as e:  # missing or unreadable config file: its last line names the file and the reason
    _fail(f'could not load the config: {str(e).strip().splitlines()[-1].strip()}')
  except AttributeError as e:  # a mistyped key in a --config.a.b override
    _fail(f'no such config key: {str(e).strip(chr(39)).replace(chr(92) + "n", " ").replace(chr(92), "")}')
  except (SyntaxError, KeyError, TypeError, ValueError) as e:
    _fail(f'could not load the config ({type(e).__name__}): {" ".join(str(e).split())}')
  return remaining


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax logs every checkpoint step at INFO
  if _NUM_PROCESSES.value > 1:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU runs only; GPUs use NCCL
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CONFIG_CHANGE.value)
  except UserError as e:
    _fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
