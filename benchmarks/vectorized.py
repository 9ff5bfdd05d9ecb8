r"""Sequential runs against one vectorized group, and single against fused steps, side by side in one run.

    python3 benchmarks/vectorized.py --out=runs/bench_vectorized [--members=8] [--quick]
    python3 benchmarks/vectorized.py --out=runs/bench_r18 --config=configs/tp3/CNN_ResNet-18.py --epochs=1

Rows (--config, by default TP3's MLP, configs/tp3/MLP.py: batch 64; the device pipeline, no validation):
  sequential   --members runs one after another through the trainer (steps_per_call=1), compile included;
               with --sequential=S < members, only the first S run and their wall time is scaled by
               members / S (marked in the table: sequential runs of one config take the same time each)
  vectorized   the same runs as one group (cifar_jax/training/group.py), compile included
  single       one run of 1 + --reps epochs, steps_per_call=1: the median of its compiled epochs' train images/s
  fused        the same with steps_per_call=steps per epoch
  scan         a plain jax.jit(lax.scan) epoch of the same step and batch recipe, no trainer around it: the
               median of --reps epochs after a compiling one
and, under the table, what the sweep's vectorize='auto' probe (training.probe.probe) decides on this machine.
Writes vectorized.md and vectorized.json under --out. --quick (2 members, 1 epoch of 256 images) only checks
that every row runs, in seconds; its ratios mean nothing.
"""

import argparse
import dataclasses
import functools
import json
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # bench_tables.py, however it was loaded

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from cifar_jax.training import experiment, fused, group, probe, run_dir, steps, trainer  # noqa: E402
from cifar_jax.data import cifar10, device  # noqa: E402
from cifar_jax.config_lib import load_config_file  # noqa: E402
from cifar_jax.errors import UserError  # noqa: E402
import bench_tables  # noqa: E402  (beside this file)

QUICK_EXAMPLES = 256
COLUMNS = (  # bench_tables.Column: (JSON key, Markdown header, format, text when the value is missing)
    ('row', 'row', '{}', ''),
    ('members', 'members', '{}', ''),
    ('wall_s', 'wall s', '{:.1f}', ''),
    ('images_per_s', 'img/s', '{:,.0f}', ''),
    ('ratio', 'ratio', '{:.2f}', ''),
    ('of', 'ratio of', '{}', ''),
)


def _config(args: argparse.Namespace, seed: int, steps_per_call: int = 1, epochs: int | None = None):
  config = load_config_file(args.config)
  config.data.pipeline, config.data.val_fraction = 'device', 0.0
  if args.data_dir:  # else the config's own lookup: its data.data_dir, or $CIFAR10_DIR
    config.data.data_dir = args.data_dir
  config.seed, config.steps_per_call, config.num_epochs = seed, steps_per_call, epochs or args.epochs
  config.log_every_steps = 10**9  # one log line per epoch: the trainer's own cost, not the logging's
  if args.quick:
    config.data.max_train_examples, config.data.max_eval_examples = QUICK_EXAMPLES, 128
  return config


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _epoch_images_per_s(workdir: pathlib.Path) -> float:
  """Median training images/s of the epochs after the first (which compiles), from the trainer's own clock
  (metrics.jsonl: one line per epoch); the only epoch's when there is one."""
  lines = [r for r in run_dir.read_metrics(workdir) if r['kind'] == 'train']
  return statistics.median(r['images_per_second'] for r in lines[1:] or lines)


def _scan_epoch(config, reps: int) -> float:
  """Images/s of a bare jit(lax.scan) over one epoch of the trainer's step and batch recipe: the median of
  `reps` epochs after one that compiles."""
  data = trainer.load_data(config)
  mesh = jax.make_mesh((jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
  pipeline = device.DevicePipeline(data, config, mesh)
  graphdef, _, tx, state = experiment.initial_state(config, pipeline.steps_per_epoch)
  step = functools.partial(steps.train_step, graphdef, tx, experiment.step_config(config), seed=config.seed)
  batch_at = functools.partial(pipeline.batch_at, config.seed)
  epoch = jax.jit(functools.partial(fused.scan_steps, step, batch_at), static_argnums=6)
  n = pipeline.steps_per_epoch
  args = (*pipeline.splits['train'], pipeline.order_table(0), jnp.zeros(2, jnp.int32), n)
  jax.block_until_ready(epoch(state, steps.TrainMetrics.empty(), *args))
  seconds = statistics.median(
      _timed(lambda: jax.block_until_ready(epoch(state, steps.TrainMetrics.empty(), *args))) for _ in range(reps)
  )
  return n * config.batch_size / seconds


def main() -> None:
  """Runs the rows; bad input (a missing data folder, a bad config) stops in one line, `error: ...`, exit 1."""
  try:
    _main()
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


def _main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out', required=True)
  parser.add_argument('--data_dir', '--data-dir', help="CIFAR-10's folder (default: the config's, i.e. $CIFAR10_DIR)")
  parser.add_argument('--config', default='configs/tp3/MLP.py', help='the run config every member trains')
  parser.add_argument('--members', type=int, default=8)
  parser.add_argument('--sequential', type=int, help='time only this many sequential runs, scaled (default all)')
  parser.add_argument('--epochs', type=int, default=2, help='epochs of each sequential and vectorized run')
  parser.add_argument('--reps', type=int, default=3, help='timed epochs of the single, fused and scan rows')
  parser.add_argument('--quick', action='store_true')
  args = parser.parse_args()
  if args.sequential is not None and args.sequential < 1:
    parser.error(f'--sequential={args.sequential} must be at least 1')
  if args.quick:
    args.members, args.epochs, args.reps = 2, 1, 1
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    configs = [_config(args, seed) for seed in range(args.members)]
    timed = min(args.sequential or args.members, args.members)
    sequential = _timed(lambda: [trainer.train_and_evaluate(c, tmp / f'seq{k}') for k, c in enumerate(configs[:timed])])
    sequential *= args.members / timed
    vectorized = _timed(lambda: group.Group(configs, [tmp / f'vec{k}' for k in range(args.members)]).run())
    label = 'sequential' if timed == args.members else f'sequential ({timed} timed, x {args.members / timed:g})'
    rows.append({'row': label, 'members': args.members, 'timed_members': timed, 'wall_s': sequential, 'ratio': 1.0})
    rows.append({'row': 'vectorized', 'members': args.members, 'wall_s': vectorized, 'ratio': vectorized / sequential})
    measured = probe.probe(configs)  # what vectorize='auto' would decide here, beside what was measured
    scan = _scan_epoch(configs[0], args.reps)
    steps_per_epoch = cifar10.steps_per_epoch(QUICK_EXAMPLES if args.quick else 50_000, configs[0].batch_size)
    for name, k in (('single', 1), ('fused', steps_per_epoch)):
      trainer.train_and_evaluate(_config(args, 0, k, epochs=1 + args.reps), tmp / name)
      ips = _epoch_images_per_s(tmp / name)
      rows.append({'row': name, 'members': 1, 'images_per_s': ips, 'ratio': ips / scan})
    rows.append({'row': 'scan', 'members': 1, 'images_per_s': scan, 'ratio': 1.0})
  result = {
      'platform': jax.default_backend(),
      'device': jax.devices()[0].device_kind,
      'config': args.config,
      'device_count': jax.device_count(),
      'quick': args.quick,
      'epochs': args.epochs,
      'reps': args.reps,
      'jax': jax.__version__,
      'rows': rows,
      'probe': dataclasses.asdict(measured)
      | {k: getattr(measured, k) for k in ('sequential_seconds', 'group_seconds', 'best_group_seconds', 'pays_off')},
  }
  (out / 'vectorized.json').write_text(json.dumps(result, indent=2) + '\n')
  lines = [
      f'{args.config}, {args.epochs} epoch(s), on {result["device_count"]} x {result["device"]}, jax {jax.__version__};'
      f' img/s rows: median of {args.reps} epoch(s)',
      '',
  ]
  lines += bench_tables.table(
      COLUMNS, [r | {'of': 'sequential wall time' if 'wall_s' in r else 'scan img/s'} for r in rows]
  )
  lines += ['', f"vectorize='auto' probe: {measured}"]
  (out / 'vectorized.md').write_text('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
