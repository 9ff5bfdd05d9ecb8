"""Worker processes of a sweep, each owning its own devices: one GPU each (several workers share a GPU when they
outnumber them, each with its share of the GPU's memory), or on a CPU-only machine its share of the cores.

The devices are chosen through the environment and CPU affinity that a worker has before JAX starts in it
(CUDA_VISIBLE_DEVICES, XLA_PYTHON_CLIENT_MEM_FRACTION, sched_setaffinity), so this module never imports JAX.
"""

from collections.abc import Callable, Sequence
import math
import multiprocessing
import os
import shutil
import subprocess
from typing import Any

from cifar_jax.errors import ConfigError

GPU_MEMORY = 0.9  # the fraction of a GPU's memory that the workers sharing it split between them


def local_gpus() -> list[str]:
  """The GPUs this process may use: CUDA_VISIBLE_DEVICES where it is set, else those `nvidia-smi -L` lists."""
  visible = os.environ.get('CUDA_VISIBLE_DEVICES')
  if visible is not None:
    return [d for d in visible.split(',') if d.strip() and d.strip() != '-1']
  if not shutil.which('nvidia-smi'):
    return []
  listed = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, check=False).stdout
  return [str(i) for i, line in enumerate(listed.splitlines()) if line.startswith('GPU ')]


def worker_count(setting: int | str) -> int:
  """`workers` as a number: 'auto' is one per local GPU, and one on a CPU-only machine (every core)."""
  if setting == 'auto':
    return max(1, len(local_gpus()))
  try:
    count = int(setting)
  except (TypeError, ValueError):
    count = 0
  if count < 1 or str(count) != str(setting).strip():
    raise ConfigError(f"workers={setting!r} must be a whole number >= 1 or 'auto' (one per local GPU)")
  return count


def assignment(index: int, count: int, gpus: Sequence[str], cores: Sequence[int]) -> tuple[dict[str, str], set[int]]:
  """Worker `index` of `count`: its environment and its CPU cores. On GPUs, GPU index mod len(gpus), and when
  workers share a GPU each gets GPU_MEMORY / (workers on it) of its memory; on a CPU, contiguous equal shares
  of `cores` (every core for one worker; a core each, round robin, for more workers than cores)."""
  if gpus:
    sharing = math.ceil(count / len(gpus))
    env = {'CUDA_VISIBLE_DEVICES': gpus[index % len(gpus)]}
    if sharing > 1:
      env |= {'XLA_PYTHON_CLIENT_MEM_FRACTION': f'{GPU_MEMORY / sharing:.3f}'}
    return env, set(cores)
  if count >= len(cores):
    return {}, {cores[index % len(cores)]}
  share = len(cores) // count
  return {}, set(cores[index * share : (index + 1) * share if index < count - 1 else len(cores)])


def _start(target: Callable[..., int], args: tuple[Any, ...], cores: set[int]) -> None:
  """The worker process: pinned to `cores` before anything in it starts JAX, then `target(*args)`."""
  if hasattr(os, 'sched_setaffinity'):  # Linux; elsewhere the workers share every core
    os.sched_setaffinity(0, cores)
  raise SystemExit(target(*args))


def run(count: int, target: Callable[..., int], args: tuple[Any, ...]) -> list[int]:
  """Runs `target(*args, index)` in `count` spawned processes, each with its devices, and returns their exit
  codes; Ctrl-C (which the terminal sends to every worker too) waits for them to checkpoint and stop."""
  cores = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else list(range(os.cpu_count() or 1))
  gpus = local_gpus()
  context = multiprocessing.get_context('spawn')  # a fresh interpreter: JAX starts there, on its own devices
  processes = []
  for index in range(count):
    env, pinned = assignment(index, count, gpus, cores)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # a spawned process takes the environment as it is when it starts
    try:
      process = context.Process(target=_start, args=(target, (*args, index), pinned), name=f'sweep-worker-{index}')
      process.start()
    finally:
      for key, value in saved.items():
        os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    processes.append(process)
  interrupted = False
  for process in processes:
    while True:
      try:
        process.join()
        break
      except KeyboardInterrupt:
        interrupted = True  # the workers got it as well: let them checkpoint
  if interrupted:
    raise KeyboardInterrupt
  return [process.exitcode for process in processes]
