"""What a CPU can prove about a GPU run's fixed costs and speed: programs compiled once and reused from the
persistent cache across seeds, no compilation after the first epoch, no implicit host-device copy per step,
the state's buffers donated, and bfloat16 convolutions and matrix products in the compiled program."""

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
