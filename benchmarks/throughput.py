"""Train-step throughput of cifar_jax: models x batch sizes x dtypes x parallelism x input pipelines.

    python3 benchmarks/throughput.py --batch-sizes=128,512,1024 --dtypes=bfloat16 --torch --out=benchmarks/results
    python3 benchmarks/throughput.py --quick        # a tiny grid in seconds on CPU: the smoke test CI runs

Every row trains the package's own step, built by `experiment.build_experiment` as a training run
builds it, fed by one input pipeline: `synthetic` (one batch made on the device once: the ceiling),
`device` (gather + augment + normalize on the device) or `tfdata` (the host tf.data pipeline), the
last two from `pipeline.create_pipeline`. The step is compiled ahead of time once per (model, batch
size, dtype, parallelism), its compile time reported apart. After a warm-up epoch, each repetition times one
epoch of steps to `block_until_ready`; the table shows the median. `--torch` first runs the same
networks in PyTorch (benchmarks/torch_reference.py) in this process, so ours/torch is measured.
Each row is printed as it is measured and OUT/throughput.md and OUT/throughput.json are rewritten after each, so a
grid cut short (a time slice that ends) leaves every row it measured. The fraction of the device's arithmetic peak
is the step's FLOPs per image (XLA's cost analysis of the compiled step) times img/s over the peak of the device
kind (PEAK_TFLOPS, a datasheet table; `--peak-tflops` overrides it).
"""

import argparse
import dataclasses
import importlib.metadata
import itertools
import json
import pathlib
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # configs/ is beside the package, not in it.
sys.path.insert(0, str(REPO / 'benchmarks'))  # bench_tables.py beside this file, however it was loaded

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

from cifar_jax import config_check, parallel  # noqa: E402
from cifar_jax.training import experiment, trainer  # noqa: E402
from cifar_jax.data import augment_jax, cifar10, normalization, pipeline, tf_import  # noqa: E402
from cifar_jax.data.batch import Batch  # noqa: E402
from configs import default  # noqa: E402
import bench_tables  # noqa: E402  (beside this file)

PIPELINES = ('synthetic', 'device', 'tfdata')
FULL_DATASET = 50_000
QUICK = {
    'models': 'resnet18',
    'model_kwargs': '{"width": 8, "stage_sizes": [1]}',
    'batch_sizes': '16',
    'num_examples': 64,
    'reps': 2,
    'torch_modes': 'eager',
}
DEFAULTS = {
    'models': 'resnet18',
    'model_kwargs': '{}',
    'batch_sizes': '128,512,1024',
    'num_examples': FULL_DATASET,
    'reps': 5,
    'torch_modes': 'eager,compile',
}
VERSIONED = {
    'jax': ('jax',),
    'jaxlib': ('jaxlib',),
    'flax': ('flax',),
    'optax': ('optax',),
    'numpy': ('numpy',),
    'tensorflow': ('tensorflow-cpu', 'tensorflow'),
    'torch': ('torch',),
}  # name: its distributions
COLUMNS = (  # (JSON key, Markdown header, format, text when the value is missing)
    ('model', 'model', '{}', ''),
    ('batch_size', 'batch', '{}', ''),
    ('dtype', 'dtype', '{}', ''),
    ('parallelism', 'parallelism', '{}', ''),
    ('pipeline', 'pipeline', '{}', ''),
    ('images_per_s', 'img/s', '{:,.0f}', '—'),
    ('vs_synthetic', '÷ synthetic', '{:.2f}', ''),
    ('epoch_s', 'epoch s', '{:.3f}', '—'),
    ('input_images_per_s', 'input img/s', '{:,.0f}', ''),
    ('compile_s', 'compile s', '{:.1f}', '—'),
    ('peak_memory_gib', 'peak GiB', '{:.2f}', 'n/a'),
    ('gflops_per_image', 'GFLOP/img', '{:.3f}', ''),
    ('peak_fraction', '% of peak', '{:.1%}', 'n/a'),
    ('ours_vs_torch', 'ours ÷ torch', '{:.2f}', ''),
    ('note', 'note', '{}', ''),
)

# Dense (no sparsity) peak TFLOP/s by device kind and compute dtype, from NVIDIA's H100 and H200 datasheets (the
# sparse figures halved). float32: TF32 tensor cores, which XLA uses for float32 convolutions and matrix products on
# these GPUs at JAX's default precision. First match of the device kind wins, so 'H100 PCIe' comes before 'H100'.
PEAK_TFLOPS = (
    ('H100 PCIe', {'bfloat16': 756.0, 'float32': 378.0}),
    ('H100', {'bfloat16': 989.4, 'float32': 494.7}),  # SXM5
    ('H200', {'bfloat16': 989.4, 'float32': 494.7}),  # SXM
)


def synthetic_batch(mesh: Mesh, batch_size: int, seed: int = 0) -> dict[str, jax.Array]:
  """Random uint8 images and labels made on the devices, normalized like the pipelines', sharded over 'data'."""

  def make() -> dict[str, jax.Array]:
    image_key, label_key = jax.random.split(jax.random.key(seed))
    images = jax.random.randint(image_key, (batch_size, *cifar10.IMAGE_SHAPE), 0, 256).astype(jnp.uint8)
    return {
        'image': augment_jax.normalize(images.astype(jnp.float32) / 255, normalization.DEFAULT),
        'label': jax.random.randint(label_key, (batch_size,), 0, cifar10.NUM_CLASSES, jnp.int32),
    }

  return jax.jit(make, out_shardings=NamedSharding(mesh, PartitionSpec(parallel.AXIS)))()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
  """The grid from the command line; --quick swaps in a tiny model and dataset for the unset options."""
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--models', help=f'comma-separated model names (default {DEFAULTS["models"]})')
  parser.add_argument('--model-kwargs', help='JSON keyword arguments for every model, e.g. {"width": 8}')
  parser.add_argument('--batch-sizes', help=f'comma-separated global batch sizes (default {DEFAULTS["batch_sizes"]})')
  parser.add_argument('--dtypes', default=','.join(config_check.DTYPES), help='comma-separated compute dtypes')
  parser.add_argument('--parallelism', default=','.join(config_check.PARALLELISMS), help='comma-separated: jit, pmap')
  parser.add_argument('--pipelines', default=','.join(PIPELINES), help='comma-separated: ' + ', '.join(PIPELINES))
  parser.add_argument('--num-examples', type=int, help='training images per epoch (default: all 50,000)')
  parser.add_argument(
      '--data-dir',
      help='real CIFAR-10 (the cifar-10-batches-py folder or its parent); '
      'default: random images, which train at the same speed',
  )
  parser.add_argument('--reps', type=int, help=f'timed epochs per row, after one warm-up (default {DEFAULTS["reps"]})')
  parser.add_argument('--torch', action='store_true', help='also time the PyTorch reference, in this process')
  parser.add_argument('--torch-modes', help='comma-separated: eager, compile (default both; --quick: eager)')
  parser.add_argument('--out', default=str(REPO / 'benchmarks' / 'results'), help='folder for the outputs')
  parser.add_argument('--quick', action='store_true', help='tiny ResNet, 64 images, 2 repetitions: seconds on CPU')
  parser.add_argument(
      '--peak-tflops',
      type=float,
      help="the device's arithmetic peak for every row, in TFLOP/s (default: PEAK_TFLOPS by device kind and dtype; "
      'n/a for a device not in it, such as a CPU)',
  )
  args = parser.parse_args(argv)
  for key, value in (QUICK if args.quick else DEFAULTS).items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  for key in ('models', 'batch_sizes', 'dtypes', 'parallelism', 'pipelines', 'torch_modes'):
    setattr(args, key, getattr(args, key).split(','))
  args.batch_sizes = [int(size) for size in args.batch_sizes]
  args.model_kwargs = json.loads(args.model_kwargs)
  if max(args.batch_sizes) > args.num_examples:
    parser.error(f'--num-examples={args.num_examples} must be at least the largest batch size')
  return args


def _config(
    args: argparse.Namespace, model: str, batch_size: int, dtype: str, parallelism: str
) -> ml_collections.ConfigDict:
  """The default config with this row's model, batch size, dtype and parallelism, checked like a run's."""
  config = default.get_config()
  config.model.name = model
  config.model.update(args.model_kwargs)
  config.batch_size = config.eval_batch_size = batch_size
  config.dtype, config.parallelism = dtype, parallelism
  trainer.check_config(config)
  return config


def _dataset(args: argparse.Namespace) -> cifar10.Cifar10:
  """`--num-examples` training images: real ones from `--data-dir`, else uniform random ones."""
  if args.data_dir:
    size = -1 if args.num_examples >= FULL_DATASET else args.num_examples
    return cifar10.load(args.data_dir, source='files', max_train_examples=size, max_eval_examples=1000)
  rng = np.random.default_rng(0)

  def split(count: int) -> cifar10.Split:
    images = rng.integers(0, 256, (count, *cifar10.IMAGE_SHAPE), dtype=np.uint8)
    return cifar10.Split(images, rng.integers(0, cifar10.NUM_CLASSES, count, dtype=np.int32))

  return cifar10.Cifar10(train=split(args.num_examples), val=None, test=split(1000))


def model_label(model: str, model_kwargs: dict[str, Any]) -> str:
  """The model as the rows name it: its registry name with the options that change it (a toy is no resnet18)."""
  options = ', '.join(f'{key}={value}' for key, value in model_kwargs.items())
  return f'{model}({options})' if options else model


class SyntheticPipeline:
  """The ceiling as a `pipeline.Pipeline`: one random batch made on the devices, reused by every step."""

  def __init__(self, mesh: Mesh, batch_size: int, steps_per_epoch: int, seed: int) -> None:
    self.batch, self.steps_per_epoch = synthetic_batch(mesh, batch_size, seed), steps_per_epoch

  def train_batches(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
    del epoch  # every epoch is the same batch
    return itertools.repeat(self.batch, self.steps_per_epoch - start_batch)

  def eval_batches(self, split: str) -> Iterator[Batch]:
    raise NotImplementedError(f'the synthetic pipeline only trains; no {split!r} split')


@dataclasses.dataclass
class Step:
  """A train step compiled once for one (model, batch size, dtype, parallelism), and its state."""

  compiled: Callable[[Any, Batch], Any]
  state: Any
  compile_s: float
  flops_per_image: float | None  # XLA's cost analysis of the compiled step, over the batch

  def train(self, batches: Iterable[Batch]) -> Any:
    """Trains on every batch; returns the state (still being computed: block on it to wait)."""
    for batch in batches:
      self.state, _ = self.compiled(self.state, batch)
    return self.state


def _median_seconds(run: Callable[[int], Any], reps: int) -> float:
  """Median seconds of run(epoch) for epochs 1..reps, each to block_until_ready, after epoch 0 as warm-up."""
  jax.block_until_ready(run(0))
  times = []
  for epoch in range(1, reps + 1):
    start = time.perf_counter()
    jax.block_until_ready(run(epoch))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _last(batches: Iterable[Batch]) -> Batch | None:
  """Drains an input pipeline; its last batch (block on it to wait for all)."""
  batch = None
  for batch in batches:
    pass
  return batch


class Pipelines:
  """Epochs of each input pipeline for one batch size and parallelism, built once and shared by the rows."""

  def __init__(self, data: cifar10.Cifar10, config: ml_collections.ConfigDict, dp: parallel.DataParallel):
    self.data, self.config, self.dp = data, config, dp
    self.steps_per_epoch = cifar10.steps_per_epoch(len(data.train), config.batch_size)
    self.pipelines = {'synthetic': SyntheticPipeline(dp.mesh, config.batch_size, self.steps_per_epoch, config.seed)}
    self.notes = {}
    self.input_rates = {}

  def epoch(self, name: str, epoch: int) -> Iterator[Batch]:
    """The batches of epoch `epoch` of pipeline `name` as it yields them."""
    return self._pipeline(name).train_batches(epoch)

  def train_input(self, name: str, epoch: int) -> Iterator[Batch]:
    """The batches of epoch `epoch` of pipeline `name`, laid out for the compiled step."""
    return map(self.dp.put_batch, self.epoch(name, epoch))

  def _pipeline(self, name: str) -> pipeline.Pipeline:
    """Pipeline `name`, built by the package's factory on first use; its start-up time goes into the rows' notes."""
    if name not in self.pipelines:
      config = self.config.copy_and_resolve_references()
      config.data.pipeline = name
      self.pipelines[name] = pipeline.create_pipeline(self.data, config, self.dp.mesh)
      start = time.perf_counter()
      jax.block_until_ready(next(self.pipelines[name].train_batches(0)))
      self.notes[name] = f'pipeline start {time.perf_counter() - start:.1f} s'
    return self.pipelines[name]

  def input_rate(self, name: str, reps: int) -> float | None:
    """Images/s of the pipeline alone, no training (None for synthetic); measured once per pipeline."""
    if name != 'synthetic' and name not in self.input_rates:
      seconds = _median_seconds(lambda epoch: _last(self.epoch(name, epoch)), reps)
      self.input_rates[name] = self.steps_per_epoch * self.config.batch_size / seconds
    return self.input_rates.get(name)


def _build_step(config: ml_collections.ConfigDict, inputs: Pipelines) -> Step:
  """The train step a run of `config` would train with, compiled ahead of time for the rows' batches."""
  exp = experiment.build_experiment(config, inputs.data, pipeline=inputs.pipelines['synthetic'])
  state = exp.dp.put_state(exp.state)
  example = exp.dp.put_batch(inputs.pipelines['synthetic'].batch)
  start = time.perf_counter()
  compiled = exp.step_program.lower(state, example, exp.seed).compile()
  compile_s = time.perf_counter() - start
  return Step(
      lambda state, batch: compiled(state, batch, exp.seed), state, compile_s, _flops_per_image(compiled, config)
  )


def _flops_per_image(compiled: Any, config: ml_collections.ConfigDict) -> float | None:
  """The compiled step's FLOPs per training image: XLA's count for the program one device runs, times the devices
  (each runs it on its share of the batch), over the global batch; None where the backend does not count."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # a list of one dict on older jax versions
  flops = (cost or {}).get('flops')
  return flops * jax.device_count() / config.batch_size if flops and flops > 0 else None


def peak_tflops(device_kind: str, dtype: str, override: float | None = None) -> float | None:
  """The arithmetic peak of one device of `device_kind` at `dtype` (PEAK_TFLOPS), or `override`; None if unknown."""
  if override:
    return override
  return next((peaks.get(dtype) for kind, peaks in PEAK_TFLOPS if kind.lower() in device_kind.lower()), None)


def _epoch_seconds(step: Step, inputs: Pipelines, name: str, reps: int) -> float:
  """Median seconds per epoch of training `step` on pipeline `name`."""
  return _median_seconds(lambda epoch: step.train(inputs.train_input(name, epoch)), reps)


def _peak_memory_gib() -> float | None:
  """The largest peak bytes in use over the local devices (a process high-water mark), or None where unknown."""
  stats = [d.memory_stats() for d in jax.local_devices()]
  if not all(s and 'peak_bytes_in_use' in s for s in stats):
    return None
  return max(s['peak_bytes_in_use'] for s in stats) / 2**30


def _tensorflow_missing() -> str | None:
  """Why the tfdata rows cannot run, or None when TensorFlow imports (kept off the accelerators)."""
  try:
    tf_import.import_tensorflow()
  except ImportError as e:
    return f'skipped: tensorflow not installed ({e.name})'
  return None


def _jax_rows(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
  """One row per (model, batch size, dtype, parallelism, pipeline), each as it is measured; each step compiled
  once for all pipelines."""
  data = _dataset(args)
  skip = {'tfdata': _tensorflow_missing()} if 'tfdata' in args.pipelines else {}
  pipelines = {}
  device_kind = jax.devices()[0].device_kind
  for model, batch_size, dtype, parallelism in itertools.product(
      args.models, args.batch_sizes, args.dtypes, args.parallelism
  ):
    config = _config(args, model, batch_size, dtype, parallelism)
    dp = parallel.create_parallel(parallelism)
    if (batch_size, parallelism) not in pipelines:
      pipelines[batch_size, parallelism] = Pipelines(data, config, dp)
    inputs = pipelines[batch_size, parallelism]
    step = _build_step(config, inputs)
    label = model_label(model, args.model_kwargs)
    for name in args.pipelines:
      row = {'model': label, 'batch_size': batch_size, 'dtype': dtype, 'parallelism': parallelism, 'pipeline': name}
      if skip.get(name):
        yield row | {'note': skip[name]}
        continue
      epoch_s = _epoch_seconds(step, inputs, name, args.reps)
      images_per_s = inputs.steps_per_epoch * batch_size / epoch_s
      peak = peak_tflops(device_kind, dtype, args.peak_tflops)
      flops = step.flops_per_image
      yield row | {
          'images_per_s': images_per_s,
          'epoch_s': epoch_s,
          'input_images_per_s': inputs.input_rate(name, args.reps),
          'compile_s': step.compile_s,
          'peak_memory_gib': _peak_memory_gib(),
          'gflops_per_image': flops / 1e9 if flops else None,
          'peak_fraction': flops * images_per_s / (peak * 1e12 * jax.device_count()) if flops and peak else None,
          'note': inputs.notes.get(name, ''),
      }
    del step  # Frees the state before the next row builds its own.


def _add_ratios(rows: list[dict[str, Any]]) -> None:
  """Fills `vs_synthetic` (this row / the same step on synthetic data) and, on torch rows, ours / torch."""
  ours = {
      (r['model'], r['batch_size'], r['dtype'], r['parallelism']): r.get('images_per_s')
      for r in rows
      if r['pipeline'] == 'synthetic'
  }
  for row in rows:
    rate = row.get('images_per_s')
    if row['parallelism'].startswith('torch'):
      mine = ours.get((row['model'], row['batch_size'], row['dtype'], 'jit'))
      row['ours_vs_torch'] = mine / rate if mine and rate else None
    else:
      ceiling = ours.get((row['model'], row['batch_size'], row['dtype'], row['parallelism']))
      row['vs_synthetic'] = rate / ceiling if rate and ceiling else None


def _version(distribution: str) -> str | None:
  """The installed version of `distribution`, or None."""
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def _environment(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
  """The machine, the library versions and the command, for the header of both outputs."""
  devices = jax.devices()
  versions = {'python': platform.python_version()}
  for name, distributions in VERSIONED.items():
    installed = [_version(d) for d in distributions if _version(d)]
    if installed:
      versions[name] = installed[0]
  return {
      'device': devices[0].device_kind,
      'platform': devices[0].platform,
      'device_count': len(devices),
      'host': f'{platform.machine()}, {platform.processor() or "cpu"}',
      'versions': versions,
      'command': shlex.join(['python3', 'benchmarks/throughput.py', *argv]),
      'quick': args.quick,
      'num_examples': args.num_examples,
      'reps': args.reps,
      'data': args.data_dir or 'random images',
  }


def _markdown(env: dict[str, Any], rows: list[dict[str, Any]]) -> str:
  """The header and the table, one line per row."""
  note = f'{env["num_examples"]} training images ({env["data"]}) per epoch; median of {env["reps"]} epochs after one '
  note += 'warm-up.'
  return '\n'.join(bench_tables.header('Throughput', env, note) + bench_tables.table(COLUMNS, rows)) + '\n'


def _torch_rows(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
  """The PyTorch reference's rows, each as it is measured (first: before JAX claims most of the accelerator)."""
  import torch_reference  # pylint: disable=import-outside-toplevel

  steps_per_rep = {size: args.num_examples // size for size in args.batch_sizes}
  for model, size, dtype, mode in itertools.product(args.models, args.batch_sizes, args.dtypes, args.torch_modes):
    if model in torch_reference.MODELS:
      row = torch_reference.benchmark(
          model,
          size,
          dtype=dtype,
          mode=mode,
          steps=steps_per_rep[size],
          reps=args.reps,
          model_kwargs=args.model_kwargs,
      )
      yield row | {'model': model_label(model, args.model_kwargs)}
  torch_reference.torch.cuda.empty_cache()


def _write(out: pathlib.Path, env: dict[str, Any], rows: list[dict[str, Any]]) -> str:
  """Rewrites OUT/throughput.md and OUT/throughput.json with the rows so far (ours first, then PyTorch's, whatever
  order they were measured in); returns the Markdown."""
  ordered = sorted(rows, key=lambda row: row['parallelism'].startswith('torch'))
  _add_ratios(ordered)
  markdown = _markdown(env, ordered)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'throughput.md').write_text(markdown)
  (out / 'throughput.json').write_text(json.dumps({**env, 'rows': ordered}, indent=2) + '\n')
  return markdown


def main(argv: list[str] | None = None) -> dict[str, Any]:
  """Runs the grid, printing each row as it is measured and rewriting OUT/throughput.md and OUT/throughput.json
  after each; prints the whole table at the end and returns the results."""
  argv = sys.argv[1:] if argv is None else argv
  args = _parse_args(argv)
  env, out, rows = _environment(args, argv), pathlib.Path(args.out), []
  print(_markdown(env, []), end='', flush=True)  # the header: each row follows as it is measured
  measured = itertools.chain(_torch_rows(args) if args.torch else (), _jax_rows(args))
  for row in measured:
    rows.append(row)
    markdown = _write(out, env, rows)
    print(bench_tables.table_row(COLUMNS, row), flush=True)
  print(f'\n{markdown}', flush=True)
  return {**env, 'rows': json.loads((out / 'throughput.json').read_text())['rows']}


if __name__ == '__main__':
  main()
