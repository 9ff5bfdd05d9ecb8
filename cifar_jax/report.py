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

import sys
from collections.abc import Sequence

from cifar_jax.errors import UserError
from cifar_jax.study.report import write_report


def main(argv: Sequence[str]) -> int:
  """`python -m cifar_jax.report WORKDIR`: writes the table and plots and says where they are."""
  if len(argv) != 2 or argv[1].startswith('-'):
    print('usage: python -m cifar_jax.report WORKDIR   (a sweep workdir or any folder of run folders)', file=sys.stderr)
    return 2
  try:
    paths = write_report(argv[1])
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'Wrote {", ".join(str(p) for p in paths)}')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
