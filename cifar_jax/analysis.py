"""A finished run's confusion matrix and per-class accuracy on the test set: confusion.png and per_class.md.

    python -m cifar_jax.analysis runs/upv/resnet_final [--data_dir=PATH]

The model is rebuilt from the run's config.json and its final state restored from the newest intact
checkpoint (checkpoints/latest, digest checked), then evaluated on the test split the run used (the same
data settings: `data.max_eval_examples` and normalization), with BatchNorm's running statistics.
"""

import argparse
import pathlib

from cifar_jax import cli
from cifar_jax.training import run_dir


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m cifar_jax.analysis', description=__doc__.splitlines()[0])
  parser.add_argument('run_folder', nargs='+', help='finished run folders (with config.json and checkpoints/)')
  parser.add_argument('--data_dir', '--data-dir', default=None, help="CIFAR-10 folder, instead of the run's own")
  args = parser.parse_args(argv)

  def analyse() -> None:
    for folder in args.run_folder:  # every folder refused before the heavy imports
      run_dir.saved_config(pathlib.Path(folder))
    from cifar_jax.study.analysis import confusion  # pylint: disable=import-outside-toplevel  # after the flags

    for folder in args.run_folder:
      for path in confusion(folder, args.data_dir):
        print(f'wrote {path}')

  cli.run(analyse)


if __name__ == '__main__':
  main()
