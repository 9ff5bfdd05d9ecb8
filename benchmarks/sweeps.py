r"""Sweeps on CPU, side by side in one run: the same sweep by 1 and by 2 workers, and TP3's hyperparameter grid
searched at random against TPE with the median pruner.

    python benchmarks/sweeps.py --data-dir=../shared/data/cifar10                  # both parts
    python benchmarks/sweeps.py --data-dir=../shared/data/cifar10 --part=workers --runs=8
    python benchmarks/sweeps.py --data-dir=../shared/data/cifar10 --part=search --samples=12

workers: configs/sweeps/smoke.py's two learning rates x runs/2 seeds (small MLPs), once by one worker pinned to
one core (`taskset -c 0`), once by two workers (`--config.workers=2`, each pinned to one core by the sweep);
wall time of each command, from start to its report, and their ratio.
search: configs/sweeps/tp3_hyperparameters.py (random draws) against tp3_hyperparameters_tpe.py (TPE, median
pruner), each with `samples` points of the same grid, on `--base` (default the TP3 MLP; the report's ResNet-18
is far too slow on a CPU) and a slice of the data; per search the runs, how many were pruned, the epochs
trained in all, and the best validation accuracy reached.
Prints a Markdown table and writes it to `--out`/sweeps.md.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def _sweep(workdir: pathlib.Path, config: str, *flags: str, prefix: tuple[str, ...] = ()) -> float:
  """Runs `python -m cifar_jax.sweep` to its end; its wall time in seconds."""
  command = [*prefix, sys.executable, '-m', 'cifar_jax.sweep', f'--config={config}', f'--workdir={workdir}', *flags]
  started = time.perf_counter()
  done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
  if done.returncode:
    raise SystemExit(f'{" ".join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}')
  return time.perf_counter() - started


def workers_rows(data_dir: str, runs: int, scratch: pathlib.Path) -> list[str]:
  """1 worker on one core against 2 workers on one core each: the same `runs` MLP runs."""
  flags = (
      f'--set=data.data_dir={data_dir}',
      f'--config.seeds={runs // 2}',
      '--set=data.max_train_examples=2048',
      '--set=num_epochs=2',
  )
  one = _sweep(scratch / 'one', 'configs/sweeps/smoke.py', *flags, prefix=('taskset', '-c', '0'))
  two = _sweep(scratch / 'two', 'configs/sweeps/smoke.py', *flags, '--config.workers=2')
  same = _results(scratch / 'one') == _results(scratch / 'two')
  return [
      '| sweep | runs | 1 worker, 1 core (s) | 2 workers, 1 core each (s) | 2 ÷ 1 | same results.csv |',
      '|---|---|---|---|---|---|',
      f'| smoke MLP (32 units), 2,048 images, 2 epochs | {runs} | {one:.1f} | {two:.1f} | {two / one:.2f} | {same} |',
  ]


def _results(workdir: pathlib.Path) -> list[list[str]]:
  """results.csv without its timing columns (wall time and images/s differ from one sweep to the next)."""
  rows = [line.split(',') for line in (workdir / 'results.csv').read_text().splitlines()]
  keep = [i for i, name in enumerate(rows[0]) if name not in ('wall_seconds', 'steady_images_per_second')]
  return [[row[i] for i in keep] for row in rows]


def search_rows(data_dir: str, samples: int, base: str, scratch: pathlib.Path) -> list[str]:
  """Random draws against TPE with median pruning, `samples` points each, by two workers."""
  flags = (
      f'--set=data.data_dir={data_dir}',
      f'--config.base={base}',
      f'--config.num_samples={samples}',
      '--set=data.max_train_examples=512',
      '--set=data.max_eval_examples=256',
      '--config.workers=2',
  )
  rows = [
      f'| search ({samples} points, 2 workers) | runs | pruned | epochs trained | best val acc % | wall (s) |',
      '|---|---|---|---|---|---|',
  ]
  for name, config in (('random', 'tp3_hyperparameters'), ('TPE + median pruner', 'tp3_hyperparameters_tpe')):
    workdir = scratch / config
    seconds = _sweep(workdir, f'configs/sweeps/{config}.py', *flags)
    records = json.loads((workdir / 'sweep.json').read_text())['variants']
    summaries = [json.loads((workdir / r['name'] / 'summary.json').read_text()) for r in records]
    epochs = sum(s.get('epochs') or 0 for s in summaries)
    best = max(s.get('best_val_accuracy') or 0 for s in summaries)
    pruned = sum(s['status'] == 'pruned' for s in summaries)
    rows.append(f'| {name} | {len(summaries)} | {pruned} | {epochs:g} | {100 * best:.2f} | {seconds:.0f} |')
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data-dir', required=True, help='the CIFAR-10 folder (cifar-10-batches-py or its parent)')
  parser.add_argument('--part', choices=('workers', 'search', 'both'), default='both')
  parser.add_argument('--runs', type=int, default=8, help='workers: runs in the sweep (an even number)')
  parser.add_argument('--samples', type=int, default=12, help='search: points each search trains')
  parser.add_argument('--base', default='configs/tp3/MLP.py', help='search: the run config the grid varies')
  parser.add_argument('--out', default='benchmarks/results', help='folder for sweeps.md')
  args = parser.parse_args()
  data_dir = str(pathlib.Path(args.data_dir).resolve())
  scratch = pathlib.Path(tempfile.mkdtemp(prefix='sweeps-'))
  lines = [f'CPU cores: {len(os.sched_getaffinity(0))}', '']
  try:
    if args.part in ('workers', 'both'):
      lines += [*workers_rows(data_dir, args.runs, scratch), '']
    if args.part in ('search', 'both'):
      lines += [*search_rows(data_dir, args.samples, args.base, scratch), '']
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  out = REPO / args.out
  out.mkdir(parents=True, exist_ok=True)
  (out / 'sweeps.md').write_text('\n'.join(lines))
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
