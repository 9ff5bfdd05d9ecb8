"""Study tables and plots from a folder of runs: results.md, results.csv, aggregates.csv and three PNGs.

    python -m cifar_jax.report runs/tp3_dense

Every subfolder that holds a run (its config.json, summary.json and metrics.jsonl, as `cifar_jax.main` and
`cifar_jax.sweep` write them), or a sweep's `variant/seed=K` folder, is one run; the runs of one variant are
grouped (cifar_jax/study/aggregate.py). results.md gives, per variant, n and each metric's mean ± std with a 95 % t
interval over seeds (cut to 0–100 % for accuracies) and a bootstrap interval (with one seed: the accuracy ± its
binomial standard error on the evaluation set), the evaluation set sizes, and which variants a stated test at
α = 0.05, Holm-corrected, tells apart from the best, then a conclusion, then one row per run. results.csv holds one row per run (with its seed), aggregates.csv one row per variant.
The plots: accuracy by variant as points with error bars, validation accuracy per epoch as the mean with a ± std
band over seeds, and the best variant's training and validation loss.
"""

import argparse

from cifar_jax import cli
from cifar_jax.training import run_dir


def main(argv: list[str] | None = None) -> None:
  """`python -m cifar_jax.report WORKDIR`: writes the table and plots and says where they are."""
  parser = argparse.ArgumentParser(prog='python -m cifar_jax.report', description=__doc__.splitlines()[0])
  parser.add_argument('workdir', help='a sweep workdir or any folder of run folders')
  args = parser.parse_args(argv)

  def report() -> None:
    run_dir.existing_folder(args.workdir)  # refused before the heavy imports
    from cifar_jax.study.report import write_report  # pylint: disable=import-outside-toplevel  # after the flags

    print(f'Wrote {", ".join(str(p) for p in write_report(args.workdir))}')

  cli.run(report)


if __name__ == '__main__':
  main()
