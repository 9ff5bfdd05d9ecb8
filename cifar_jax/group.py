"""Vectorized groups: variants that differ only in the seed and numeric hyperparameters train as one program.

Members share the graph and every shape; their parameters, BatchNorm statistics and optimizer states are
stacked on a leading member axis and one `jax.vmap`-ed, fused (`lax.scan`) program trains them all. Each
member's optimizer, schedule and step settings come from the library's own builders (`optim.*`,
`steps.StepConfig`), called inside the vmapped function with the member's numbers as traced scalars
(`Hyper`), so a member's state tree is exactly a sequential run's. The seed drives the member's
initialization, data order, augmentation and dropout keys, as in a sequential run.

Grouping (`group_key`, `group_variants`): everything but VECTOR_KEYS must be equal, and of those keys whether
each is zero (momentum, weight decay, L1, L2, label smoothing: the builders add a term only when it is
non-zero). `model.dropout` is part of the key (nnx.Dropout's rate is a Python float). ReduceLROnPlateau
(`schedule.name=plateau`) and `max_members=1` leave a variant alone.
"""

import functools
import math
import operator
import pathlib
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import AxisType

from cifar_jax import fused, optim, parallel, run_dir, steps, train, writers
from cifar_jax.data import cifar10, device
from cifar_jax.errors import ConfigError
from cifar_jax.models import count_params

VECTOR_KEYS = ('seed', 'optimizer.learning_rate', 'optimizer.momentum', 'optimizer.weight_decay',
               'regularization.l1', 'regularization.l2', 'regularization.label_smoothing', 'schedule.gamma')
_ZERO_MATTERS = ('optimizer.momentum', 'optimizer.weight_decay', 'regularization.l1', 'regularization.l2',
                 'regularization.label_smoothing')
# Keys that change neither the computation nor its shapes (a group may mix them).
_FREE_KEYS = run_dir.RESUME_SAFE_KEYS | {'steps_per_call'}


def group_key(config: ml_collections.ConfigDict) -> tuple[Any, ...] | None:
  """What members of one group must share; None for a config that never joins a group."""
  if config.schedule.name == 'plateau' or config.data.pipeline != 'device':
    return None
  flat = run_dir.flatten(run_dir.config_as_json(config))
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
  return [members[i:i + max_members] for members in buckets.values() for i in range(0, len(members), max_members)]


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


for _name, _op in (('lt', operator.lt), ('le', operator.le), ('gt', operator.gt), ('ge', operator.ge),
                   ('eq', operator.eq), ('ne', operator.ne)):
  setattr(Hyper, f'__{_name}__', _compare(_op))
for _name, _op in (('add', operator.add), ('sub', operator.sub), ('mul', operator.mul),
                   ('truediv', operator.truediv), ('pow', operator.pow)):
  setattr(Hyper, f'__{_name}__', _arith(_op))
  setattr(Hyper, f'__r{_name}__', _arith(_op, reflected=True))
Hyper.__neg__ = lambda self: -self.traced
Hyper.__hash__ = None


def _get(config: ml_collections.ConfigDict, key: str) -> Any:
  return functools.reduce(lambda node, part: node[part], key.split('.'), config)


def _member_config(template: ml_collections.ConfigDict, hyper: dict[str, jax.Array],
                   values: dict[str, tuple[float, ...]]) -> ml_collections.ConfigDict:
  """The group's config with each varied key set to the member's traced value (a `Hyper`)."""
  config = ml_collections.ConfigDict(template.to_dict(), type_safe=False)
  for key, traced in hyper.items():
    *path, last = key.split('.')
    node = functools.reduce(lambda n, part: n[part], path, config)
    node[last] = Hyper(key, traced, values[key])
  return config


class Group:
  """Members (configs with one `group_key`) trained together, each writing its own run folder:
  config.json, metrics.jsonl, summary.json, curves.png. A member whose loss or gradient becomes non-finite
  is recorded as failed (summary.json) and left out of the logs while the others go on."""

  def __init__(self, configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str | pathlib.Path]) -> None:
    for config in configs:
      train.check_config(config)
    if len({group_key(c) for c in configs}) != 1 or group_key(configs[0]) is None:
      raise ConfigError('these configs cannot train as one group (see cifar_jax.group.group_key)')
    self.configs, self.template = list(configs), configs[0]
    self.workdirs = [run_dir.prepare(w, needed_bytes=0) for w in workdirs]
    self.started = time.perf_counter()
    # Auto axes: XLA places the vmapped program's batch ops (members are not sharded over devices yet).
    mesh = jax.make_mesh((jax.device_count(),), (parallel.AXIS,), axis_types=(AxisType.Auto,))
    self.pipelines = [device.DevicePipeline(_load(c), c, mesh) for c in configs]
    self.steps_per_epoch = self.pipelines[0].steps_per_epoch
    self.total_steps = self.template.num_epochs * self.steps_per_epoch
    if self.template.num_train_steps >= 0:
      self.total_steps = min(self.total_steps, self.template.num_train_steps)
    models = [train.build_model(c) for c in configs]
    self.num_params = count_params(models[0])
    states = []
    for config, model in zip(configs, models):
      lr_fn = optim.create_learning_rate_fn(config, self.steps_per_epoch)
      self.graphdef, state = train.create_train_state(config, model, optim.create_optimizer(config, lr_fn))
      states.append(state)
    self.state = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    self.values = {k: tuple(_get(c, k) for c in configs) for k in VECTOR_KEYS}
    self.hyper = {k: jnp.asarray(v, jnp.int32 if k == 'seed' else jnp.float32) for k, v in self.values.items()}
    shared_split = len(set(self.values['seed'])) == 1 or self.template.data.val_fraction == 0
    self.train_axis = None if shared_split else 0
    train_sets = [p.splits['train'] for p in self.pipelines]
    self.train_data = train_sets[0] if shared_split else jax.tree.map(lambda *xs: jnp.stack(xs), *train_sets)
    self.lr_fns = [optim.create_learning_rate_fn(c, self.steps_per_epoch) for c in configs]
    self._call = jax.jit(jax.vmap(self._member_steps, in_axes=(0, 0, 0, self.train_axis, self.train_axis, 0, None, None)),
                         static_argnums=7, donate_argnums=(0, 1))
    self._eval = jax.jit(functools.partial(steps.eval_step, self.graphdef, self._step_config(self.template)))

  def _step_config(self, config: ml_collections.ConfigDict, seed: Any = None) -> steps.StepConfig:
    reg = config.regularization
    return steps.StepConfig(seed=config.seed if seed is None else seed, l1=reg.l1, l2=reg.l2,
                            label_smoothing=reg.label_smoothing, dtype=train.DTYPES[config.dtype])

  def _member_steps(self, state, pending, hyper, images, labels, order, counter, length):
    """One member's `length` fused steps, its optimizer and step settings built from its traced numbers."""
    config = _member_config(self.template, hyper, self.values)
    tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, self.steps_per_epoch))
    train_step = functools.partial(steps.train_step, self.graphdef, tx, self._step_config(config, hyper['seed']))
    pipeline = self.pipelines[0]
    batch_at = functools.partial(device.train_batch, pipeline.augment, pipeline.normalize, hyper['seed'])
    return fused.scan_steps(train_step, batch_at, state, pending, images, labels, order, counter, length)

  def run(self) -> list[dict[str, Any]]:
    """Trains every member to the end, evaluates each, writes each folder; returns the summaries."""
    members = range(len(self.configs))
    logs = [writers.MetricsLog(w, resume_step=0) for w in self.workdirs]
    for config, workdir in zip(self.configs, self.workdirs):
      run_dir.write_config(workdir, config)
    records = [train.RunRecord() for _ in members]
    failed: dict[int, str] = {}
    step, pending, pending_start = 0, None, 0
    template = self.template
    while step < self.total_steps:
      epoch = step // self.steps_per_epoch
      order = jnp.stack([p.order_table(epoch) for p in self.pipelines])
      while True:
        n = fused.call_length(step, self.steps_per_epoch, template.log_every_steps, self.total_steps,
                              self.steps_per_epoch)
        if pending is None:
          pending = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(members), *x.shape)), steps.TrainMetrics.empty())
        counter = jnp.array([epoch, step % self.steps_per_epoch], jnp.int32)
        self.state, pending = self._call(self.state, pending, self.hyper, *self.train_data, order, counter, n)
        step += n
        epoch_done = step % self.steps_per_epoch == 0
        if step % template.log_every_steps == 0 or epoch_done:
          for m in members:
            values = {k: float(v) for k, v in jax.tree.map(lambda x: x[m], pending).compute().items()}
            if m in failed:
              continue
            if not (math.isfinite(values['loss']) and math.isfinite(values['grad_norm'])):
              failed[m] = (f'the training loss ({values["loss"]}) or gradient norm ({values["grad_norm"]}) became '
                           f'non-finite between steps {pending_start} and {step}; this member stopped, the group went on')
              continue
            records[m].add_interval(values, step - pending_start)
            values['learning_rate'] = float(self.lr_fns[m](step))
            logs[m].write('train', step, {'epoch': epoch + 1, **values})
          pending, pending_start = None, step
        if epoch_done or step >= self.total_steps:
          break
      if step % self.steps_per_epoch == 0:
        for m in members:
          val = self._evaluate(m, 'val') if 'val' in self.pipelines[m].splits and m not in failed else None
          if val is not None:
            logs[m].write('val', step, {'epoch': epoch + 1, **val})
          records[m].close_epoch(epoch + 1, step, val)
    return [self._finish(m, records[m], logs[m], failed.get(m), step) for m in members]

  def _member_state(self, m: int) -> steps.TrainState:
    return jax.tree.map(lambda x: x[m], self.state)

  def _evaluate(self, m: int, split: str) -> dict[str, float]:
    """Member `m`'s loss and accuracy on its 'val' or 'test' split."""
    state, total = self._member_state(m), None
    for batch in self.pipelines[m].eval_batches(split):
      batch_metrics = self._eval(state, batch)
      total = batch_metrics if total is None else total.merge(batch_metrics)
    return {k: float(v) for k, v in total.compute().items()}

  def _finish(self, m: int, record: train.RunRecord, log: writers.MetricsLog, error: str | None,
              step: int) -> dict[str, Any]:
    """Member `m`'s test evaluation, summary.json and curves.png (or its failure record)."""
    workdir, config = self.workdirs[m], self.configs[m]
    if error is not None:
      summary = {'status': 'failed', 'error': error, 'steps': step}
    else:
      test = self._evaluate(m, 'test')
      log.write('test', step, test)
      record.wall_seconds = record.train_seconds = time.perf_counter() - self.started
      summary = train.run_summary(config, record, self.num_params, step, test, record.wall_seconds)
      if record.history:
        writers.plot_curves(record.history, workdir / run_dir.CURVES_FILE, title=f'{config.model.name} on CIFAR-10')
    log.close()
    run_dir.write_json(workdir / run_dir.SUMMARY_FILE, summary)
    return summary


def _load(config: ml_collections.ConfigDict) -> cifar10.Cifar10:
  """The member's splits, as its sequential run loads them (the validation split follows its seed)."""
  return cifar10.load(config.data.data_dir or None, source=config.data.source, val_fraction=config.data.val_fraction,
                      seed=config.seed, max_train_examples=config.data.max_train_examples,
                      max_eval_examples=config.data.max_eval_examples)
