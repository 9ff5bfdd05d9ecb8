r"""The UPV report's three data figures, for any config: examples per class, class distribution, augmentation.

    python -m cifar_jax.figures --config=configs/upv/resnet_final.py --out=docs/results/figures \
        [--data_dir=../shared/data/cifar10]

No training. Writes `examples.png` (the first few training images of each class: the report's Fig. 1),
`class_distribution.png` (images per class in the train, validation and test partitions the config's data
settings make: Fig. 2) and `augmentation.png` (a few training images, then each augmented with several keys
by the config's `augment` ops through `augment_jax.build_augment`, the function the device pipeline applies:
Fig. 3). Augmentations are drawn on [0, 1] images, before normalization, as the pipeline does.
"""

import argparse
import pathlib

from cifar_jax import cli, config_lib


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m cifar_jax.figures', description=__doc__.splitlines()[0])
  parser.add_argument('--config', required=True, help='a run config file, e.g. configs/upv/resnet_final.py')
  parser.add_argument('--out', required=True, help='the folder the three PNGs go to')
  parser.add_argument('--data_dir', '--data-dir', default=None, help="CIFAR-10's folder instead of the config's")
  args = parser.parse_args(argv)

  def figures() -> None:
    config = config_lib.load_config_file(args.config)
    config_lib.check_values(config)
    if args.data_dir:
      config.data.data_dir = args.data_dir
    from cifar_jax.study.figures import make_figures  # pylint: disable=import-outside-toplevel  # after the checks

    for path in make_figures(config, args.config, pathlib.Path(args.out)):
      print(f'wrote {path}')

  cli.run(figures)


if __name__ == '__main__':
  main()
