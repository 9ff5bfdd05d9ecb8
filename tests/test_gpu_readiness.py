"""What a CPU can prove about a GPU run's fixed costs and speed: programs compiled once and reused from the
persistent cache across seeds, no compilation after the first epoch, no implicit host-device copy per step,
the state's buffers donated, and bfloat16 convolutions and matrix products in the compiled program."""

import dataclasses
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cifar_jax.training import experiment, trainer
from tests import helpers

# Run in a fresh process (JAX decides once per process whether the cache is on): the sweep command, with a
# counter of the programs XLA really compiled (a compilation request less those the persistent cache answered)
# during each run.
_COUNTING_SWEEP = """
import atexit, collections, json, runpy, sys
from jax import monitoring
from cifar_jax.training import trainer
events = collections.Counter()
monitoring.register_event_listener(lambda name, **_: events.update([name]))
monitoring.register_event_duration_secs_listener(lambda name, _, **__: events.update([name]))
compiled = lambda: events['/jax/core/compile/backend_compile_duration'] - events['/jax/compilation_cache/cache_hits']
per_run, train = [], trainer.train_and_evaluate
def counted(*args, **kwargs):
  before = compiled()
  try:
    return train(*args, **kwargs)
  finally:
    per_run.append(compiled() - before)
trainer.train_and_evaluate = counted
atexit.register(lambda: print('COMPILED', json.dumps(per_run)))
sys.argv = ['cifar_jax.sweep', *sys.argv[1:]]
runpy.run_module('cifar_jax.sweep', run_name='__main__')
"""

_SEED_SWEEP = """
from configs.sweeps import default

def get_config():
  config = default.get_config()
  config.base = 'configs/mlp.py'
  config.variants = [{'name': 'mlp'}]
  config.seeds = 3
  return config
"""


@pytest.mark.parametrize('steps_per_call', [1, 4])
def test_the_seeds_of_a_sweep_after_the_first_compile_nothing(tmp_path, cifar10_dir, steps_per_call):
  (tmp_path / 'seeds.py').write_text(_SEED_SWEEP)
  tiny = {**helpers.TINY, 'num_epochs': 2, 'data.pipeline': 'device', 'steps_per_call': steps_per_call}
  sets = [f'--set={k}={v}' for k, v in {'data.data_dir': cifar10_dir, **tiny}.items()]
  env = {**helpers.cli_env(), 'CIFAR_JAX_CACHE': str(tmp_path / 'cache')}
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  command = [sys.executable, '-c', _COUNTING_SWEEP, f'--config={tmp_path / "seeds.py"}', f'--workdir={tmp_path / "w"}']
  done = subprocess.run(command + sets, cwd=helpers.REPO, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  first, *others = json.loads(done.stdout.split('COMPILED ')[-1])
  assert first > 3 and others == [0, 0]  # the first seed compiles its steps, the next two read them back
  assert any((tmp_path / 'cache').iterdir())


def _throughput_module():
  """benchmarks/throughput.py as a module (benchmarks/ is no package)."""
  spec = importlib.util.spec_from_file_location('throughput', helpers.REPO / 'benchmarks' / 'throughput.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_flops_per_image_of_an_mlp_step_are_the_textbook_count(cifar10_dir):
  """A dense layer costs a multiply and an add per weight and image in each of its matrix products: forward, the
  weights' gradient and (past the first layer, whose input needs none) the input's gradient; so 4 FLOPs per weight
  of the first layer, 6 of the others. XLA's count of the compiled step, per image, must say so (the optimizer's
  per-weight work, spread over a batch of 128, adds a few per cent)."""
  throughput = _throughput_module()
  config = helpers.tiny_config(cifar10_dir, batch_size=128, **{'model.hidden_sizes': (256, 128)})
  exp = experiment.build_experiment(config, trainer.load_data(config))
  state, batch = exp.dp.put_state(exp.state), exp.dp.put_batch(next(exp.pipeline.train_batches(0)))
  compiled = exp.step_program.lower(state, batch, exp.seed).compile()
  expected = 4 * 3072 * 256 + 6 * (256 * 128 + 128 * 10)
  assert throughput._flops_per_image(compiled, config) == pytest.approx(expected, rel=0.08)


def test_the_peak_comes_from_the_device_kind_and_dtype_or_the_flag():
  throughput = _throughput_module()
  assert throughput.peak_tflops('NVIDIA H100 80GB HBM3', 'bfloat16') == 989.4
  assert throughput.peak_tflops('NVIDIA H100 PCIe', 'bfloat16') == 756.0
  assert throughput.peak_tflops('NVIDIA H200', 'float32') == 494.7
  assert throughput.peak_tflops('cpu', 'bfloat16') is None
  assert throughput.peak_tflops('cpu', 'bfloat16', override=2.0) == 2.0


@pytest.mark.parametrize(
    'pipeline, parallelism, steps_per_call', [('device', 'jit', 1), ('device', 'jit', 3), ('tfdata', 'pmap', 1)]
)
def test_the_training_loop_copies_nothing_implicitly(tmp_path, cifar10_dir, pipeline, parallelism, steps_per_call):
  """The loop's steps run under jax.transfer_guard('disallow'): a run that completes made no implicit host-device
  copy in them (the metrics are fetched at log points only). That nothing compiles after the first epoch is
  counted by tests/test_train.py."""
  config = helpers.tiny_config(
      cifar10_dir,
      parallelism=parallelism,
      steps_per_call=steps_per_call,
      log_every_steps=3,  # not a divisor of the 8-step epoch
      **{'data.pipeline': pipeline, 'augment.ops': ('random_crop', 'horizontal_flip'), 'model.dropout': 0.2},
  )
  summary = trainer.train_and_evaluate(config, tmp_path / 'run')
  assert summary['steps'] == 24 and np.isfinite(summary['test_loss'])


def test_an_implicit_copy_in_a_step_is_refused(tmp_path, cifar10_dir):
  """The guard is on: a step given its batch as host arrays (an implicit copy to the devices) stops the run."""
  run = trainer.Trainer(helpers.tiny_config(cifar10_dir, **{'data.pipeline': 'device'}), tmp_path / 'run')
  program = run.exp.step_program
  on_host = lambda state, batch, seed: program(state, {k: np.asarray(v) for k, v in batch.items()}, seed)
  run.exp = dataclasses.replace(run.exp, step_program=on_host)
  with pytest.raises(jax.errors.JaxRuntimeError, match='Disallowed host-to-device transfer'):
    run.run()


def test_the_state_buffers_are_donated_to_the_step(cifar10_dir):
  """The step updates the state in place: its input buffers are deleted (donated), under jit, pmap and fused."""
  for overrides in ({}, {'parallelism': 'pmap'}, {'steps_per_call': 2}):
    config = helpers.tiny_config(cifar10_dir, **{'data.pipeline': 'device', **overrides})
    exp = experiment.build_experiment(config, trainer.load_data(config))
    state = exp.dp.put_state(exp.state)
    new = trainer.take_steps(exp, state, None, 0, 0, 2, iter(exp.pipeline.train_batches(0)))[0]
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(state)), overrides
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(new))


def _matmul_types(lowered_text: str) -> dict[str, set[str]]:
  """The element types of the operands and results of every convolution and dot in a lowered (StableHLO) program."""
  found = {'convolution': set(), 'dot_general': set()}
  for line in lowered_text.splitlines():
    op = re.search(r'stablehlo\.(convolution|dot_general)\b', line)
    if op:
      signature = line.rsplit(' : ', 1)[1]
      found[op.group(1)] |= set(re.findall(r'x(bf16|f32|f16|f64)>', signature))
  return found


@pytest.mark.parametrize('dtype, element', [('bfloat16', 'bf16'), ('float32', 'f32')])
def test_the_compiled_step_convolves_and_multiplies_in_the_compute_dtype(cifar10_dir, dtype, element):
  """Read from the program the step lowers to (not the config): LeNet-5's convolutions and dense layers, forward
  and backward, take and give `dtype`."""
  config = helpers.tiny_config(cifar10_dir, dtype=dtype, **{'model.name': 'lenet5', 'data.pipeline': 'device'})
  del config.model.hidden_sizes
  exp = experiment.build_experiment(config, trainer.load_data(config))
  state, batch = exp.dp.put_state(exp.state), next(exp.pipeline.train_batches(0))
  found = _matmul_types(exp.step_program.lower(state, batch, exp.seed).as_text())
  assert found == {'convolution': {element}, 'dot_general': {element}}
