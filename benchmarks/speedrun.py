"""The CIFAR-10 speedrun (configs/speedrun.py), N seeds in one process, timed by airbench's rule.

    python benchmarks/speedrun.py --runs=50                 # on a GPU: the figures the README quotes
    python benchmarks/speedrun.py --quick                   # tiny net and data, 1 run, seconds on CPU (CI)

Timing rule (airbench's and the hiverge record's): per run, the clock starts before the parameters are
initialised and stops when the test accuracy after test-time augmentation is on the host, so it includes the
whitening initialisation, every training epoch and the final TTA evaluation; it excludes compilation (a warm-up
run compiles every program first, with seed 0), per-epoch evaluation (none is done) and the load of the data
onto the device (the pipeline is built once, before). Runs differ only in the seed, a traced argument, so the
programs compile once: the init, the whitening, one epoch of fused steps (`fused.scan_steps` over the library's
own train step and on-device batches) and the evaluation step.

Cold wall time: from this process's start to the warm-up run's test accuracy (imports, data load, compilation
included), with JAX's persistent compilation cache off (`--cache-dir` unset) or on. `--cold-starts` also runs
that measurement in fresh child processes: cache off, then cache on twice (the first fills it, the second hits).

Rows go to OUT/speedrun.md and OUT/speedrun.json as soon as each run is measured.
"""

import time

PROCESS_START = time.perf_counter()  # before the imports: the cold wall time counts them

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # configs/ is beside the package, not in it.
sys.path.insert(0, str(REPO / 'benchmarks'))  # bench_tables.py beside this file, however it was loaded

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import bench_tables  # noqa: E402  (beside this file)
import throughput  # noqa: E402  (beside this file)
from cifar_jax.data import cifar10, device, normalization  # noqa: E402
from cifar_jax.models import create_model  # noqa: E402
from cifar_jax.study import stats  # noqa: E402
from cifar_jax.training import experiment, fused, optim, steps, trainer  # noqa: E402
from configs import speedrun as speedrun_config  # noqa: E402

TARGET = 0.94
# --quick: the recipe on a tiny net and slice (2 epochs of 4 steps) in float32, for CI.
QUICK = {
    'model.widths': (8, 16, 16),
    'model.whiten_examples': 256,
    'data.max_train_examples': 512,
    'data.max_eval_examples': 256,
    'batch_size': 128,
    'eval_batch_size': 128,
    'steps_per_call': 4,
    'log_every_steps': 4,
    'num_epochs': 2,
    'dtype': 'float32',  # bfloat16 convolutions are emulated, and slow, on XLA's CPU backend
    'optimizer.muon_dtype': 'float32',
}
COLUMNS = (  # bench_tables.Column: (JSON key, Markdown header, format, text when the value is missing)
    ('run', 'run', '{}', ''),
    ('seed', 'seed', '{}', ''),
    ('test_accuracy', 'test acc %', '{:.2%}', ''),
    ('seconds', 'time s (airbench rule)', '{:.3f}', ''),
    ('cold_wall_s', 'cold wall s', '{:.1f}', ''),
    ('note', 'note', '{}', ''),
)


class Speedrun:
  """The recipe's programs, compiled once for every seed: a run is init, whitening, epochs, TTA evaluation."""

  def __init__(self, config: ml_collections.ConfigDict, data: cifar10.Cifar10) -> None:
    self.config = config
    self.exp = experiment.build_experiment(config, data)  # the library's pipeline, optimizer, eval step (TTA)
    self.pipeline = self.exp.pipeline
    if not isinstance(self.pipeline, device.DevicePipeline):
      raise SystemExit('the speedrun benchmark needs data.pipeline=device')
    tx = optim.create_optimizer(config, self.exp.learning_rate_fn)
    self.tx, self.num_train = tx, len(data.train)
    self._init = jax.jit(self._init_state)
    self._epoch = jax.jit(self._train_epoch, donate_argnums=0)

  def _init_state(self, seed: jax.Array, train_images: jax.Array) -> steps.TrainState:
    """A fresh state from `seed`, the whitening set from the training images already on the device."""
    config = self.config
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != 'name'}
    model = create_model(
        config.model.name, rngs=nnx.Rngs(params=jax.random.key(seed)), dtype=jnp.dtype(config.dtype), **kwargs
    )
    experiment.init_from_data(model, train_images, normalization.of_inputs(config.data))
    return experiment.create_train_state(model, self.tx)[1]

  def _train_epoch(self, state, seed, images, labels, order, epoch):
    """One epoch of fused steps of the library's train step, batches made on the device from `seed`."""
    step_config = experiment.step_config(self.config)
    train_step = functools.partial(steps.train_step, self.exp.graphdef, self.tx, step_config, seed=seed)
    batch_at = functools.partial(device.train_batch, self.pipeline.augment, self.pipeline.normalize, seed)
    counter = jnp.stack([epoch, jnp.zeros_like(epoch)])
    state, _ = fused.scan_steps(
        train_step,
        batch_at,
        state,
        steps.TrainMetrics.empty(),
        images,
        labels,
        order,
        counter,
        self.exp.steps_per_epoch,
    )
    return state

  def run(self, seed: int) -> float:
    """One run from `seed`; returns its test accuracy (with the configured TTA)."""
    train = self.pipeline.splits['train']
    state = self._init(jnp.int32(seed), train[0])
    for epoch in range(self.exp.num_epochs):
      state = self._epoch(state, jnp.int32(seed), *train, self._order(seed, epoch), jnp.int32(epoch))
    total, dp = None, self.exp.dp
    state = dp.put_state(state)
    for batch in self.pipeline.eval_batches('test'):
      metrics = self.exp.eval_step(state, dp.put_batch(batch))
      total = metrics if total is None else total.merge(metrics)
    return float(total.compute()['accuracy'])

  def _order(self, seed: int, epoch: int) -> jax.Array:
    """Epoch `epoch`'s example order for `seed` (the pipeline's own is for the config's seed), on the devices."""
    table = device.epoch_order(seed, epoch, self.num_train, self.config.batch_size)
    return jax.device_put(table, self.pipeline.per_step)


def _config(args: argparse.Namespace) -> ml_collections.ConfigDict:
  config = speedrun_config.get_config()
  if args.quick:
    for key, value in QUICK.items():
      section, _, name = key.rpartition('.')
      (config[section] if section else config)[name] = value
  if args.epochs:
    config.num_epochs = args.epochs
  if args.data_dir:
    config.data.data_dir = args.data_dir
  trainer.check_config(config)
  return config


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
  """Mean accuracy with its 95 % interval, the share of runs at or above 94 %, and the mean time of the runs."""
  timed = [r for r in rows if 'seconds' in r]  # not the warm-up nor the cold starts
  if not timed:
    return {}
  accuracies = [r['test_accuracy'] for r in timed]
  interval = stats.spread(accuracies, bounds=(0.0, 1.0))  # the t interval of the mean, within [0, 1]
  return {
      'runs': len(accuracies),
      'mean_accuracy': interval.mean,
      'interval95': None if interval.n < 2 else [interval.low, interval.high],
      'share_at_target': sum(a >= TARGET for a in accuracies) / len(accuracies),
      'mean_seconds': statistics.fmean(r['seconds'] for r in timed),
  }


def _markdown(env: dict[str, Any], rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
  """The header (device, versions, command), the summary line and the table, one line per row."""
  lines = bench_tables.header('Speedrun', env, env['note'])
  if result:
    interval = result['interval95']
    interval = f'95 % interval {interval[0]:.2%} to {interval[1]:.2%}' if interval else 'no interval from one run'
    lines += [
        f'n = {result["runs"]}: mean test accuracy {result["mean_accuracy"]:.2%} ({interval}), '
        f'{result["share_at_target"]:.0%} of runs >= {TARGET:.0%}, mean time {result["mean_seconds"]:.3f} s',
        '',
    ]
  return '\n'.join(lines + bench_tables.table(COLUMNS, rows)) + '\n'


def _write(out: pathlib.Path, env: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
  """Writes both outputs with every row so far; returns the results."""
  result = summary(rows)
  results = {**env, 'summary': result, 'rows': rows}
  (out / 'speedrun.json').write_text(json.dumps(results, indent=2) + '\n')
  (out / 'speedrun.md').write_text(_markdown(env, rows, result))
  return results


def _cold_start(args: argparse.Namespace, cache_dir: str | None) -> float:
  """The cold wall time of a fresh process (one warm-up run, no timed runs) with the cache off or in `cache_dir`."""
  with tempfile.TemporaryDirectory() as out:
    command = [sys.executable, __file__, '--runs=0', f'--out={out}', *(['--quick'] if args.quick else [])]
    command += [f'--cache-dir={cache_dir}'] if cache_dir else []
    command += [f'--data-dir={args.data_dir}'] if args.data_dir else []
    command += [f'--epochs={args.epochs}'] if args.epochs else []
    subprocess.run(command, check=True, cwd=REPO)
    return json.loads((pathlib.Path(out) / 'speedrun.json').read_text())['rows'][0]['cold_wall_s']


def _parse_args(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--runs', type=int, default=None, help='timed runs, seeds 0..N-1 (default 50; --quick: 1)')
  parser.add_argument('--epochs', type=int, default=0, help="override the config's num_epochs (0: keep it)")
  parser.add_argument('--data-dir', default='', help='the cifar-10-batches-py folder or its parent')
  parser.add_argument('--cache-dir', default='', help='JAX persistent compilation cache folder (default: off)')
  parser.add_argument('--cold-starts', action='store_true', help='also time fresh processes, cache off and on')
  parser.add_argument('--out', default=str(REPO / 'benchmarks' / 'results'), help='folder for the outputs')
  parser.add_argument('--quick', action='store_true', help='tiny net and data, 1 run: seconds on CPU')
  args = parser.parse_args(argv)
  if args.runs is None:
    args.runs = 1 if args.quick else 50
  return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
  """Runs the warm-up and the timed runs, writing the table after each; returns the results."""
  argv = sys.argv[1:] if argv is None else argv
  args = _parse_args(argv)
  if args.cache_dir:
    jax.config.update('jax_compilation_cache_dir', args.cache_dir)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
    jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  config = _config(args)
  data = trainer.load_data(config)
  header = argparse.Namespace(quick=args.quick, num_examples=len(data.train), reps=args.runs, data_dir=args.data_dir)
  env = throughput._environment(header, argv)  # pylint: disable=protected-access  (the same header fields)
  env |= {
      'command': shlex.join(['python', 'benchmarks/speedrun.py', *argv]),
      'note': f'{config.num_epochs} epochs of batch {config.batch_size}, tta {config.eval.tta}, {config.dtype}; '
      f'persistent compilation cache {"on" if args.cache_dir else "off"}',
  }
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  bench = Speedrun(config, data)
  accuracy = bench.run(0)  # compiles every program
  rows = [
      {
          'run': 'warm-up',
          'seed': 0,
          'test_accuracy': accuracy,
          'cold_wall_s': time.perf_counter() - PROCESS_START,
          'note': 'compiles; not in the summary',
      }
  ]
  results = _write(out, env, rows)
  for seed in range(args.runs):
    start = time.perf_counter()
    accuracy = bench.run(seed)
    rows.append({'run': seed + 1, 'seed': seed, 'test_accuracy': accuracy, 'seconds': time.perf_counter() - start})
    results = _write(out, env, rows)
  if args.cold_starts:
    with tempfile.TemporaryDirectory() as cache:
      for note, cache_dir in (('cache off', None), ('cache on, filling', cache), ('cache on, hit', cache)):
        rows.append({'run': 'cold start', 'cold_wall_s': _cold_start(args, cache_dir), 'note': note})
        results = _write(out, env, rows)
  print((out / 'speedrun.md').read_text(), flush=True)
  return results


if __name__ == '__main__':
  main()
