"""Command line: `python -m cifar_jax.main --config=configs/resnet18.py --workdir=runs/r18 [--config.a.b=v]`."""

import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cifar_jax import train
from cifar_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'A config file, e.g. configs/resnet18.py.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the run writes; the same workdir again resumes it.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax logs every checkpoint step at INFO
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
