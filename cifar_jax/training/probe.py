"""Whether a vectorized group pays off on this machine, measured rather than guessed.

A vmapped step does the members' work at once, which is much faster than one member after another when a step
leaves the device idle (small models, the dispatch of every step) and can be much slower when it does not
(vmapped convolutions become grouped ones, and a conv step under `lax.scan` runs several times slower on XLA's
CPU backend: benchmarks/README.md). The sweep's `vectorize='auto'` therefore times PROBE_STEPS steps of the
group (one fused call) against the same steps of its first member alone, taken as its sequential run takes them
(`trainer.take_steps`: fused or one dispatch per step, as its `steps_per_call` says), each compiled and warmed
first; it groups only when the group's call takes at most `members` times the single one. The compilations a
group saves are left out, which favours running one by one.
"""

import dataclasses
import itertools
import pathlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

from cifar_jax.training import experiment, group, trainer

PROBE_STEPS = 4  # steps per timed call
PROBE_REPEATS = 3  # timed calls of each program, after one that compiles and warms it; the median counts


@dataclasses.dataclass(frozen=True)
class Probe:
  """What `probe` measured: seconds per call of `steps` steps for the whole group and for one member alone."""

  members: int
  steps: int
  group_seconds: float
  single_seconds: float

  @property
  def pays_off(self) -> bool:
    """Whether the group trains its members at least as fast as running them one after another."""
    return self.group_seconds <= self.members * self.single_seconds

  def __str__(self) -> str:
    verdict = 'one group' if self.pays_off else 'one by one'
    return (
        f'{self.members} runs together take {self.group_seconds / self.steps * 1e3:.2f} ms per step, one alone '
        f'{self.single_seconds / self.steps * 1e3:.2f} ms ({self.group_seconds / self.single_seconds:.2f} x): '
        f'{verdict}'
    )


def probe(configs: Sequence[ml_collections.ConfigDict]) -> Probe:
  """Times the group of `configs` against its first member alone on this machine (see the module docstring),
  in throwaway folders, from fresh states."""
  with tempfile.TemporaryDirectory(prefix='cifar_jax_probe_') as tmp:
    trial = group.Group(configs, [pathlib.Path(tmp) / str(k) for k in range(len(configs))])
    try:
      length = min(PROBE_STEPS, trial.steps_per_epoch)  # a fused call never crosses an epoch's end
      return Probe(len(configs), length, _group_seconds(trial, length), _alone_seconds(trial, length))
    finally:
      trial.close()


def _group_seconds(trial: group.Group, length: int) -> float:
  """Median seconds of one call of `length` steps of every member. It trains the group's state without logging
  or saving anything: for a probe, then discarded."""
  return _median_seconds(lambda: trial.train_call(0, 0, length))


def _alone_seconds(trial: group.Group, length: int) -> float:
  """Median seconds of `length` steps of the group's first member alone, taken as its sequential run takes them
  (`trainer.take_steps`), from its fresh state, then discarded."""
  exp = experiment.build_experiment(trial.configs[0], trial.data)  # with its own pipeline, as a run builds it
  state, batches = exp.dp.put_state(exp.state), None
  if exp.fused is None:  # the batches of epoch 0, 1, ...: the warm-up and the timed calls may need more than one
    batches = itertools.chain.from_iterable(exp.pipeline.train_batches(e, 0) for e in itertools.count())

  def call():
    nonlocal state
    state, _ = trainer.take_steps(exp, state, None, 0, 0, length, batches)
    return state

  return _median_seconds(call)


def _median_seconds(call: Callable[[], Any]) -> float:
  """Median wall seconds of PROBE_REPEATS calls of `call` to the device finishing what it returns, after one
  call that compiles and warms."""
  seconds = []
  for _ in range(1 + PROBE_REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(call())
    seconds.append(time.perf_counter() - start)
  return statistics.median(seconds[1:])
