"""Whether a vectorized group pays off on this machine, for the runs at hand, measured rather than guessed.

A vmapped step does the members' work at once, which is much faster than one member after another when a step
leaves the device idle (small models, the dispatch of every step) and can be much slower when it does not
(vmapped convolutions become grouped ones, and a conv step under `lax.scan` runs several times slower on XLA's
CPU backend: benchmarks/README.md). And a group compiles programs of its own: for short runs the compilations,
not the steps, decide. The sweep's `vectorize='auto'` therefore times a few steps (PROBE_STEPS, or a group's
call where it is shorter) of its first member alone, taken as its sequential run takes them
(`trainer.take_steps`), then, only where the group could still pay off, the same steps of the whole group (one
fused call); each program's first call (its compilation, or its read from the persistent compilation cache) is
timed apart from the steady calls after it.

`Probe` weighs, for the steps the runs have left, the rest of each way from here:
  one by one: the compilations still to come x one member's compile, plus members x steps x one member's step.
    A run compiles its train step, or with fused steps one program per distinct call length (a scan's length is
    static); seeds of a variant share these programs (the seed is an argument), and with the persistent cache
    on each distinct one is compiled once, the one the probe compiled not again; with it off, every run
    compiles its own (each run jits afresh).
  as one group: its compilations (one per distinct call length of its epochs and log points, less the probe's
    where the cache keeps it) x the group's compile, plus steps x the group's step.
The probe's own time is spent either way once measured, so it is left out of both. Before the group is probed,
`group_may_pay_off` bounds the group's way from below by its best case (a group step no slower than one
member's, a group compile no faster: the group's program holds the member's step) plus the group half of the
probe itself; where even that is no faster than one by one (short runs of seeds that share a program) the group
is not probed. Both halves of that best case are assumptions, not proofs: a group's call is fused where a member
without fused steps dispatches each step (for TP3's MLP on CPU, 0.90 x against 0.80 x the speed of a bare scan),
and a member's first call then also compiles its batch program (the loaded CPU once measured 3.42 s for it
against 2.55 s for the group's). Where they fail, the bound leans to one by one, which is what vectorize='off'
does.

Only the train steps are weighed: the evaluation, initialisation and pipeline programs that both ways compile
are left out, a program read back from the cache counts as free, and so are the costs every run pays
once and a group shares (loading and placing the data, building the pipeline): for runs of a few hundred steps
those decide, and the estimate then leans to one by one (measured: benchmarks/README.md).

The probe runs in the sweep's own process, which therefore holds the data once for both halves and, while it
probes the group, the group's states and program: about what the group's own run needs, on the device the runs
use. The group is built only where it is probed.
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

from cifar_jax import config_lib
from cifar_jax.training import experiment, fused, group, trainer

PROBE_STEPS = 4  # steps per timed call (fewer where an epoch or the log interval is shorter)
PROBE_REPEATS = 3  # timed calls of each program, after one that compiles and warms it; the median counts
# Keys that enter no compiled program: runs that differ only in these share their sequential run's program.
PROGRAM_FREE_KEYS = frozenset(
    {
        'seed',
        'data.data_dir',
        'log_every_steps',
        'checkpoint_keep',
        'checkpoint_every_epochs',
        'checkpoint_every_seconds',
    }
)


@dataclasses.dataclass(frozen=True)
class Timing:
  """One program's calls of the probe's steps: the first (compilation or cache read, then the steps) and the
  median of the steady ones after it, in seconds."""

  first: float
  call: float

  @property
  def compile(self) -> float:
    """Seconds the first call took beyond a steady one: the compilation (or the read from the cache)."""
    return max(0.0, self.first - self.call)


@dataclasses.dataclass(frozen=True)
class Probe:
  """What `probe` measured for `members` runs with `run_steps` steps left each (`steps` per timed call), the
  compilations each way has still to do, and the estimates they give; `group` is None where the group was not
  worth probing."""

  members: int
  steps: int
  run_steps: int
  sequential_compiles: int
  group_compiles: int
  single: Timing
  group: Timing | None = None

  def _per_step(self, timing: Timing) -> float:
    """Steady seconds per step of `timing`'s program."""
    return timing.call / self.steps

  @property
  def sequential_seconds(self) -> float:
    """The runs one by one from here: their compilations still to come and every member's steps."""
    return self.sequential_compiles * self.single.compile + self.members * self.run_steps * self._per_step(self.single)

  @property
  def best_group_seconds(self) -> float:
    """The group's way at its best, estimated before the group is probed: the group half of the probe (one
    compile, 1 + PROBE_REPEATS calls) and the group's run, a step no slower and a compile no faster than one
    member's (assumptions: see the module docstring)."""
    steps = (1 + PROBE_REPEATS) * self.steps + self.run_steps
    return (1 + self.group_compiles) * self.single.compile + steps * self._per_step(self.single)

  @property
  def group_may_pay_off(self) -> bool:
    """Whether the group's best case beats the runs one by one, so that probing it may pay off."""
    return self.best_group_seconds < self.sequential_seconds

  @property
  def group_seconds(self) -> float | None:
    """The group's way from here once probed: its compilations and its steps; None where it was not probed."""
    if self.group is None:
      return None
    return self.group_compiles * self.group.compile + self.run_steps * self._per_step(self.group)

  @property
  def pays_off(self) -> bool:
    """Whether the group finishes the runs no later than running them one after another."""
    return self.group_seconds is not None and self.group_seconds <= self.sequential_seconds

  def __str__(self) -> str:
    single, verdict = self.single, 'one group' if self.pays_off else 'one by one'
    alone = (
        f'{self.members} runs of {self.run_steps:,} steps left; one by one: {self._per_step(single) * 1e3:.2f} ms per '
        f'step, {_compiles(self.sequential_compiles, single)} = {self.sequential_seconds:.1f} s'
    )
    if self.group is None:
      return f'{alone}; one group, its probe included, at least {self.best_group_seconds:.1f} s: {verdict} (not probed)'
    return (
        f'{alone}; one group: {self._per_step(self.group) * 1e3:.2f} ms per step ({self.group.call / single.call:.2f} '
        f'x), {_compiles(self.group_compiles, self.group)} = {self.group_seconds:.1f} s: {verdict}'
    )


def _compiles(count: int, timing: Timing) -> str:
  """'N compiles of S s', for the printed line."""
  return f'{count} compile{"" if count == 1 else "s"} of {timing.compile:.2f} s'


def program_key(config: ml_collections.ConfigDict) -> tuple[tuple[str, str], ...]:
  """What a run's compiled programs depend on: its config but PROGRAM_FREE_KEYS (runs of equal keys share them)."""
  flat = config_lib.flatten(config_lib.config_as_json(config))
  return tuple(sorted((k, repr(v)) for k, v in flat.items() if k not in PROGRAM_FREE_KEYS))


def call_lengths(start_step: int, steps_per_epoch: int, total_steps: int, log_every: int, per_call: int) -> set[int]:
  """The distinct lengths of the calls a run (or group) makes from `start_step` with `per_call` steps at most
  per call (`fused.call_length`): one compiled program each."""
  if per_call == 1:
    return {1}
  lengths, step = set(), start_step
  while step < total_steps:
    length = fused.call_length(step, steps_per_epoch, log_every, total_steps, per_call)
    lengths.add(length)
    step += length
  return lengths


def cache_keeps_programs() -> bool:
  """Whether this process writes its compiled programs to JAX's persistent cache, however fast they compile (as
  cifar_jax.compile_cache sets it up; a longer minimum compile time keeps few CPU programs: counted as off)."""
  return bool(jax.config.jax_compilation_cache_dir) and jax.config.jax_persistent_cache_min_compile_time_secs <= 0


def compiles(
    configs: Sequence[ml_collections.ConfigDict],
    start_step: int,
    steps_per_epoch: int,
    total_steps: int,
    probed: int,
    cached: bool,
) -> tuple[int, int]:
  """The compilations still to come after a probe of `probed` steps per call, run one by one and as one group
  (see the module docstring): a program is (`program_key`, call length)."""
  runs = [
      {
          (program_key(c), n)
          for n in call_lengths(start_step, steps_per_epoch, total_steps, c.log_every_steps, c.steps_per_call)
      }
      for c in configs
  ]
  group_lengths = call_lengths(start_step, steps_per_epoch, total_steps, configs[0].log_every_steps, steps_per_epoch)
  if not cached:
    return sum(len(programs) for programs in runs), len(group_lengths)
  first = (program_key(configs[0]), 1 if configs[0].steps_per_call == 1 else probed)
  return len(set().union(*runs) - {first}), len(group_lengths - {probed})


def probe(configs: Sequence[ml_collections.ConfigDict], start_step: int = 0) -> Probe:
  """Times one member of `configs` alone and, where it may pay off, the whole group, for runs that resume at
  `start_step` (see the module docstring), in throwaway folders, from fresh states."""
  data = trainer.load_data(configs[0])  # one split for every member: they share data.split_seed
  alone = experiment.build_experiment(configs[0], data)  # with its own pipeline, as its run builds it
  # calls no longer than the group's own, which end at each epoch's end and log point
  length = min(PROBE_STEPS, alone.steps_per_epoch, configs[0].log_every_steps)
  sequential, grouped = compiles(
      configs, start_step, alone.steps_per_epoch, alone.total_steps, length, cache_keeps_programs()
  )
  measured = Probe(
      members=len(configs),
      steps=length,
      run_steps=alone.total_steps - start_step,
      sequential_compiles=sequential,
      group_compiles=grouped,
      single=_alone_timing(alone, length),
  )
  del alone  # its state and programs, before the group's are built
  if not measured.group_may_pay_off:
    return measured  # the group is never built
  with tempfile.TemporaryDirectory(prefix='cifar_jax_probe_') as tmp:
    trial = group.Group(configs, [pathlib.Path(tmp) / str(k) for k in range(len(configs))], data=data)
    try:
      return dataclasses.replace(measured, group=_group_timing(trial, length))
    finally:
      trial.close()


def _group_timing(trial: group.Group, length: int) -> Timing:
  """Calls of `length` steps of every member. They train the group's state without logging or saving anything:
  for a probe, then discarded."""
  return _timing(lambda: trial.train_call(0, 0, length))


def _alone_timing(exp: experiment.Experiment, length: int) -> Timing:
  """Calls of `length` steps of the first member alone (`exp`), taken as its sequential run takes them
  (`trainer.take_steps`), from its fresh state, then discarded."""
  state, batches = exp.dp.put_state(exp.state), None
  if exp.fused is None:  # the batches of epoch 0, 1, ...: the warm-up and the timed calls may need more than one
    batches = itertools.chain.from_iterable(exp.pipeline.train_batches(e, 0) for e in itertools.count())

  def call():
    nonlocal state
    state, _ = trainer.take_steps(exp, state, None, 0, 0, length, batches)
    return state

  return _timing(call)


def _timing(call: Callable[[], Any]) -> Timing:
  """The first call of `call` (compiling and warming) and the median of PROBE_REPEATS after it, each timed to
  the device finishing what it returns."""
  seconds = []
  for _ in range(1 + PROBE_REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(call())
    seconds.append(time.perf_counter() - start)
  return Timing(first=seconds[0], call=statistics.median(seconds[1:]))
