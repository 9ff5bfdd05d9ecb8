"""Vectorized groups: variants that differ only in the seed and numeric hyperparameters train as one program.

Members share the graph and every shape; their parameters, BatchNorm statistics and optimizer states are
stacked on a leading member axis and one `jax.vmap`-ed, fused (`lax.scan`) program trains them all. Each
member's optimizer, schedule and step settings come from the library's own builders (`optim.*`,
`experiment.step_config`), called inside the vmapped function with the member's numbers as traced scalars
(`Hyper`), so a member's state tree is exactly a sequential run's. The seed drives the member's
initialization, data order, augmentation and dropout keys, as in a sequential run.

Members share one train split (drawn from `data.split_seed`), each with its own data order. Each member writes
what its sequential run writes, through the trainer's own functions (`trainer.run_summary`, `trainer.write_results`):
config.json, metrics.jsonl, summary.json, curves.png and Orbax checkpoints at every epoch end (and on SIGTERM or
Ctrl-C, between calls), so a member can be resumed by a sequential run and a group resumes from its members'
latest common checkpoint.

Grouping (`group_key`, `group_variants`): everything but VECTOR_KEYS must be equal, and of those keys whether
each is zero (momentum, weight decay, L1, L2, label smoothing: the builders add a term only when it is
non-zero). `model.dropout` is part of the key (nnx.Dropout's rate is a Python float). ReduceLROnPlateau
(`schedule.name=plateau`), the tf.data pipeline, `parallelism=pmap` and `max_members=1` leave a variant alone.

Whether a group pays off (`probe`): a vmapped step does the members' work at once, which is much faster than
one member after another when a step leaves the device idle (small models, the dispatch of every step) and can
be much slower when it does not (vmapped convolutions become grouped ones, and a conv step under `lax.scan`
runs several times slower on XLA's CPU backend: benchmarks/README.md). The sweep's `vectorize='auto'` therefore
measures it on the machine at hand: PROBE_STEPS steps of the group (one fused call) against the same steps of
its first member alone, taken as its sequential run takes them (`trainer.take_steps`: fused or one dispatch per
step, as its `steps_per_call` says), each compiled and warmed first; it groups only when the group's call takes
at most `members` times the single one. The compilations a group saves are left out, which favours running
one by one.
"""

import dataclasses
import functools
import itertools
import math
import operator
import pathlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from cifar_jax import parallel
from cifar_jax import config_lib
from cifar_jax.training import checkpoint, experiment, fused, optim, preemption, run_dir, steps, trainer, writers
from cifar_jax.data import device
from cifar_jax.errors import ConfigError, UserError

VECTOR_KEYS = (
    'seed',
    'optimizer.learning_rate',
    'optimizer.momentum',
    'optimizer.weight_decay',
    'regularization.l1',
    'regularization.l2',
    'regularization.label_smoothing',
    'schedule.gamma',
)
_ZERO_MATTERS = (
    'optimizer.momentum',
    'optimizer.weight_decay',
    'regularization.l1',
    'regularization.l2',
    'regularization.label_smoothing',
)
# Keys that change neither the computation nor its shapes (a group may mix them).
_FREE_KEYS = run_dir.RESUME_SAFE_KEYS | {'steps_per_call'}
PROBE_STEPS = 4  # steps per timed call of `probe`
PROBE_REPEATS = 3  # timed calls of each program, after one that compiles and warms it; the median counts


def group_key(config: ml_collections.ConfigDict) -> tuple[Any, ...] | None:
  """What members of one group must share; None for a config that never joins a group."""
  if config.schedule.name == 'plateau' or config.data.pipeline != 'device' or config.parallelism != 'jit':
    return None
  flat = config_lib.flatten(config_lib.config_as_json(config))
  shared = tuple(sorted((k, v) for k, v in flat.items() if k not in VECTOR_KEYS and k not in _FREE_KEYS))
  return shared + tuple((k, flat[k] != 0) for k in _ZERO_MATTERS)


def group_variants(configs: Sequence[ml_collections.ConfigDict], max_members: int) -> list[list[int]]:
  """Indices of `configs` in groups of at most `max_members` that share a `group_key`, in first-seen order;
  a config without a key is a group of its own."""
  if max_members < 1:
    raise ConfigError(f'max_members={max_members} must be >= 1')
  buckets: dict[Any, list[int]] = {}
  for index, config in enumerate(configs):
    key = group_key(config)
    buckets.setdefault(('alone', index) if key is None else key, []).append(index)
  return [members[i : i + max_members] for members in buckets.values() for i in range(0, len(members), max_members)]


class Hyper:
  """One member's value of a varied key inside the vmapped function: arithmetic on the traced scalar, while
  truth and comparisons (the builders' structural branches) are answered from every member's concrete
  value, and refused when the members disagree (which `group_key` prevents)."""

  def __init__(self, key: str, traced: jax.Array, values: Sequence[float]) -> None:
    self.key, self.traced, self.values = key, traced, tuple(values)

  def _same(self, answers: set[bool]) -> bool:
    if len(answers) != 1:
      raise ConfigError(f'the members of a group differ in the structure of {self.key} ({self.values})')
    return answers.pop()

  def __bool__(self) -> bool:
    return self._same({bool(v) for v in self.values})

  def __jax_array__(self) -> jax.Array:
    return self.traced


def _compare(op):
  return lambda self, other: self._same({op(v, other) for v in self.values})


def _arith(op, reflected=False):
  def method(self, other):
    other = other.traced if isinstance(other, Hyper) else other
    return op(other, self.traced) if reflected else op(self.traced, other)

  return method


for _name, _op in (
    ('lt', operator.lt),
    ('le', operator.le),
    ('gt', operator.gt),
    ('ge', operator.ge),
    ('eq', operator.eq),
    ('ne', operator.ne),
):
  setattr(Hyper, f'__{_name}__', _compare(_op))
for _name, _op in (
    ('add', operator.add),
    ('sub', operator.sub),
    ('mul', operator.mul),
    ('truediv', operator.truediv),
    ('pow', operator.pow),
):
  setattr(Hyper, f'__{_name}__', _arith(_op))
  setattr(Hyper, f'__r{_name}__', _arith(_op, reflected=True))
Hyper.__neg__ = lambda self: -self.traced
Hyper.__hash__ = None


def _get(config: ml_collections.ConfigDict, key: str) -> Any:
  return functools.reduce(lambda node, part: node[part], key.split('.'), config)


def _member_config(
    template: ml_collections.ConfigDict, hyper: dict[str, jax.Array], values: dict[str, tuple[float, ...]]
) -> ml_collections.ConfigDict:
  """The group's config with each varied key set to the member's traced value (a `Hyper`)."""
  config = ml_collections.ConfigDict(template.to_dict(), type_safe=False)
  for key, traced in hyper.items():
    *path, last = key.split('.')
    node = functools.reduce(lambda n, part: n[part], path, config)
    node[last] = Hyper(key, traced, values[key])
  return config


class Group:
  """Members (configs with one `group_key`) trained together, each in its own run folder, as its sequential run
  would be. A member whose loss or gradient becomes non-finite is recorded as failed (summary.json, its last
  good checkpoint kept) and left out of the logs and checkpoints while the others go on."""

  def __init__(
      self,
      configs: Sequence[ml_collections.ConfigDict],
      workdirs: Sequence[str | pathlib.Path],
      allow_config_change: bool = False,
  ) -> None:
    for config in configs:
      trainer.check_config(config)
    if len({group_key(c) for c in configs}) != 1 or group_key(configs[0]) is None:
      raise ConfigError('these configs cannot train as one group (see training.group.group_key)')
    self.configs, self.template = list(configs), configs[0]
    self.workdirs = [run_dir.prepare(w, needed_bytes=0) for w in workdirs]
    self.data = trainer.load_data(self.template)  # one split for every member: they share data.split_seed
    self.pipeline = device.DevicePipeline(self.data, self.template, parallel.create_parallel('jit').mesh)
    self.exps = [experiment.build_experiment(c, self.data, self.pipeline) for c in configs]
    self.steps_per_epoch, self.total_steps = self.exps[0].steps_per_epoch, self.exps[0].total_steps
    self.checkpoints = [
        checkpoint.Checkpoints(w / run_dir.CHECKPOINTS_DIR, keep=c.checkpoint_keep)
        for c, w in zip(configs, self.workdirs)
    ]
    states, self.records = self._resume(allow_config_change)
    self.step = int(states[0].step)
    pending = [trainer.metrics_from_json(r.pending) for r in self.records]
    self.pending = None if pending[0] is None else _stack(pending)
    self.pending_start = self.step - (int(pending[0].loss.count) if pending[0] is not None else 0)
    # Every member on every device, each epoch's order sharded along the batch ('data'), on the pipeline's
    # Auto-axes mesh where XLA places the vmapped program; members are not spread over devices yet.
    self.state = jax.device_put(_stack(states), self.pipeline.replicated)
    self.values = {k: tuple(_get(c, k) for c in configs) for k in VECTOR_KEYS}
    self.hyper = {k: jnp.asarray(v, jnp.int32 if k == 'seed' else jnp.float32) for k, v in self.values.items()}
    member_order = NamedSharding(self.pipeline.replicated.mesh, PartitionSpec(None, None, parallel.AXIS))
    self._order_epoch, self._order, self._order_sharding = None, None, member_order
    self._call = jax.jit(
        jax.vmap(self._member_steps, in_axes=(0, 0, 0, None, None, 0, None, None)),
        static_argnums=7,
        donate_argnums=(0, 1),
    )
    self.started = time.perf_counter()

  def _resume(self, allow_config_change: bool) -> tuple[list[steps.TrainState], list[trainer.RunRecord]]:
    """Each member's state and record at the members' latest common checkpoint (fresh ones without any).

    Checkpoints a member holds after that step are dropped: the group computes them again, identically."""
    held = [set(c.latest.all_steps()) for c in self.checkpoints]
    if not any(held):
      return [e.state for e in self.exps], [trainer.RunRecord() for _ in self.exps]
    common = set.intersection(*held)
    if not common:
      raise UserError(
          f'the members {", ".join(map(str, self.workdirs))} have no checkpoint at a common step; '
          f'resume them one by one'
      )
    for config, workdir, c in zip(self.configs, self.workdirs, self.checkpoints):
      run_dir.check_resumable(workdir, config, allow_config_change)
      c.drop_after(max(common))
    restored = [c.restore_latest(e.state) for c, e in zip(self.checkpoints, self.exps)]
    if len({int(state.step) for state, _ in restored}) != 1:  # a damaged one was moved aside: its run fell back
      raise UserError(
          'a damaged checkpoint left the members at different steps; run again to resume them from '
          'their new common step'
      )
    return [state for state, _ in restored], [trainer.RunRecord(**saved) for _, saved in restored]

  def _member_steps(self, state, pending, hyper, images, labels, order, counter, length):
    """One member's `length` fused steps, its optimizer and step settings built from its traced numbers."""
    config = _member_config(self.template, hyper, self.values)
    tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, self.steps_per_epoch))
    step_config = experiment.step_config(config)
    train_step = functools.partial(steps.train_step, self.exps[0].graphdef, tx, step_config, seed=hyper['seed'])
    batch_at = functools.partial(device.train_batch, self.pipeline.augment, self.pipeline.normalize, hyper['seed'])
    return fused.scan_steps(train_step, batch_at, state, pending, images, labels, order, counter, length)

  def _order_table(self, epoch: int) -> jax.Array:
    """Every member's example order of `epoch` [members, steps, B], each from its own seed."""
    if self._order_epoch != epoch:
      tables = [device.epoch_order(c.seed, epoch, self.pipeline.num_train, c.batch_size) for c in self.configs]
      self._order_epoch, self._order = epoch, jax.device_put(np.stack(tables), self._order_sharding)
    return self._order

  def run(self) -> list[dict[str, Any]]:
    """Trains every member to the end, evaluates each, writes each folder; returns the summaries."""
    self.logs = [writers.MetricsLog(w, resume_step=self.step) for w in self.workdirs]
    for config, workdir in zip(self.configs, self.workdirs):
      run_dir.write_config(workdir, config)
    self.failed: dict[int, str] = {}
    try:
      with preemption.StopRequest() as self.stop:
        while self.step < self.total_steps:
          self._train_epoch()
      return [self._finish(m) for m in range(len(self.configs))]
    finally:
      self.close()
      for log in self.logs:
        log.close()

  def close(self) -> None:
    """Waits for the members' checkpoints being written and releases their managers."""
    for c in self.checkpoints:
      c.close()

  def seconds_per_call(self, length: int = PROBE_STEPS) -> float:
    """Median seconds of one call of `length` steps of every member, after a call that compiles and warms the
    program. It trains the group's state without logging or saving anything: for a probe, then discarded."""
    order, counter = self._order_table(0), jnp.zeros(2, jnp.int32)
    self.pending = _stack([steps.TrainMetrics.empty()] * len(self.configs))

    def call():
      self.state, self.pending = self._call(
          self.state, self.pending, self.hyper, *self.pipeline.splits['train'], order, counter, length
      )
      return self.state

    return _median_seconds(call)

  def seconds_alone(self, length: int = PROBE_STEPS) -> float:
    """Median seconds of `length` steps of the first member alone, taken as its sequential run takes them
    (`trainer.take_steps`), after a first round that compiles and warms; from its fresh state, then discarded."""
    exp = experiment.build_experiment(self.configs[0], self.data)  # with its own pipeline, as a run builds it
    state, batches = exp.dp.put_state(exp.state), None
    if exp.fused is None:  # the batches of epoch 0, 1, ...: the warm-up and the timed calls may need more than one
      batches = itertools.chain.from_iterable(exp.pipeline.train_batches(e, 0) for e in itertools.count())

    def call():
      nonlocal state
      state, _ = trainer.take_steps(exp, state, None, 0, 0, length, batches)
      return state

    return _median_seconds(call)

  def _train_epoch(self) -> None:
    """Trains every member to the end of the epoch (or the cap), then validates and checkpoints each."""
    epoch = self.step // self.steps_per_epoch
    segment_start = time.perf_counter()
    while True:
      self._stop_if_requested()
      n = fused.call_length(
          self.step, self.steps_per_epoch, self.template.log_every_steps, self.total_steps, self.steps_per_epoch
      )
      if self.pending is None:
        self.pending = _stack([steps.TrainMetrics.empty()] * len(self.configs))
      counter = jnp.array([epoch, self.step % self.steps_per_epoch], jnp.int32)
      self.state, self.pending = self._call(
          self.state, self.pending, self.hyper, *self.pipeline.splits['train'], self._order_table(epoch), counter, n
      )
      self.step += n
      epoch_done = self.step % self.steps_per_epoch == 0
      if self.step % self.template.log_every_steps == 0 or epoch_done:
        self._log_pending(epoch + 1)
      if epoch_done or self.step >= self.total_steps:
        break
    for record in self.records:
      record.train_seconds += time.perf_counter() - segment_start
    val_accuracy = {}
    if epoch_done:
      for m, record in enumerate(self.records):
        val = self._evaluate(m, 'val') if self.data.val is not None and m not in self.failed else None
        if val is not None:
          self.logs[m].write('val', self.step, {'epoch': epoch + 1, **val})
          val_accuracy[m] = val['accuracy']
        record.close_epoch(epoch + 1, self.step, val)
    self._save(val_accuracy)

  def _log_pending(self, epoch: int) -> None:
    """Each member's line for the steps since the last one; a member with a non-finite loss is marked failed."""
    for m, values in enumerate(_unstack(self.pending)):
      values = {k: float(v) for k, v in values.compute().items()}
      if m in self.failed:
        continue
      if not (math.isfinite(values['loss']) and math.isfinite(values['grad_norm'])):
        self._fail(
            m,
            f'the training loss ({values["loss"]}) or gradient norm ({values["grad_norm"]}) became '
            f'non-finite between steps {self.pending_start} and {self.step}; this member stopped, '
            f'the group went on',
        )
        continue
      self.records[m].add_interval(values, self.step - self.pending_start)
      values['learning_rate'] = self.exps[m].learning_rate_fn.effective(self.step, self._member_state(m).plateau)
      self.logs[m].write('train', self.step, {'epoch': epoch, **values})
    self.pending, self.pending_start = None, self.step

  def _fail(self, m: int, error: str) -> None:
    """Records member `m` as failed, as a sequential run that diverged would; its last good checkpoint stays."""
    self.failed[m] = error
    run_dir.write_json(
        self.workdirs[m] / run_dir.SUMMARY_FILE, {'status': 'failed', 'error': error, 'steps': self.step}
    )

  def _stop_if_requested(self) -> None:
    """After SIGTERM or Ctrl-C: checkpoints every member at the current step and stops."""
    if self.stop.received:
      self._save({})
      raise preemption.Stopped(
          f'{self.stop.received} received: checkpoints written at step {self.step}; '
          f'run the same command again to resume',
          self.stop.received,
      )

  def _save(self, val_accuracy: dict[int, float]) -> None:
    """Checkpoints every member that has not failed: its state and record, as its sequential run would."""
    wall = time.perf_counter() - self.started
    self.started = time.perf_counter()
    pending = _unstack(self.pending) if self.pending is not None else [None] * len(self.configs)
    for m, record in enumerate(self.records):
      record.wall_seconds += wall
      if m not in self.failed:
        record.pending = trainer.metrics_to_json(pending[m])
        self.checkpoints[m].save(self.step, self._member_state(m), dataclasses.asdict(record), val_accuracy.get(m))

  def _member_state(self, m: int) -> steps.TrainState:
    return jax.tree.map(lambda x: x[m], self.state)

  def _evaluate(self, m: int, split: str) -> dict[str, float]:
    """Member `m`'s loss and accuracy on the 'val' or 'test' split."""
    exp, total = self.exps[0], None
    state = exp.dp.put_state(self._member_state(m))  # from the group's Auto-axes mesh onto the step's own
    for batch in self.pipeline.eval_batches(split):
      batch_metrics = exp.eval_step(state, batch)
      total = batch_metrics if total is None else total.merge(batch_metrics)
    return {k: float(v) for k, v in total.compute().items()}

  def _finish(self, m: int) -> dict[str, Any]:
    """Member `m`'s test evaluation, summary.json and curves.png (or its failure record)."""
    if m in self.failed:
      return run_dir.read_json(self.workdirs[m] / run_dir.SUMMARY_FILE)
    test = self._evaluate(m, 'test')
    self.logs[m].write('test', self.step, test)
    record = self.records[m]
    summary = trainer.run_summary(
        self.configs[m],
        self.data,
        self.exps[m],
        record,
        self.step,
        test,
        record.wall_seconds + time.perf_counter() - self.started,
    )
    trainer.write_results(self.workdirs[m], self.configs[m], record, summary)
    return summary


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
    trial = Group(configs, [pathlib.Path(tmp) / str(k) for k in range(len(configs))])
    try:
      length = min(PROBE_STEPS, trial.steps_per_epoch)  # a fused call never crosses an epoch's end
      return Probe(len(configs), length, trial.seconds_per_call(length), trial.seconds_alone(length))
    finally:
      trial.close()


def _median_seconds(call: Callable[[], Any]) -> float:
  """Median wall seconds of PROBE_REPEATS calls of `call` to the device finishing what it returns, after one
  call that compiles and warms."""
  seconds = []
  for _ in range(1 + PROBE_REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(call())
    seconds.append(time.perf_counter() - start)
  return statistics.median(seconds[1:])


def _stack(trees: Sequence[Any]) -> Any:
  """Trees of one structure stacked on a leading member axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree: Any) -> list[Any]:
  """The members of a stacked tree."""
  size = jax.tree.leaves(tree)[0].shape[0]
  return [jax.tree.map(lambda x, m=m: x[m], tree) for m in range(size)]
