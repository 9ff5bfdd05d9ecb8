"""Vectorized groups: variants that differ only in the seed and numeric hyperparameters train as one program.

Members share the graph and every shape (which runs may: cifar_jax/training/hyper.py); their parameters,
BatchNorm statistics and optimizer states are stacked on a leading member axis and one `jax.vmap`-ed, fused
(`lax.scan`) program trains them all, each member's optimizer and step settings built from its traced numbers.
The seed drives the member's initialization, data order, augmentation and dropout keys, as in a sequential run.
Whether a group pays off on the machine at hand: cifar_jax/training/probe.py.

Members share one train split (drawn from `data.split_seed`), each with its own data order. Each member keeps
and writes what its sequential run does through its own run book (cifar_jax/training/run_book.py): console
lines, config.json, metrics.jsonl, summary.json, curves.png and Orbax checkpoints at the same steps, so a member
can be resumed by a sequential run and a group resumes from its members' latest common checkpoint. A member
whose loss or gradient becomes non-finite is recorded failed (its last good checkpoint kept) and one that
`on_epoch` prunes is recorded pruned; either is left out from then on while the others go on.
"""

import functools
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from cifar_jax import parallel
from cifar_jax.training import experiment, fused, hyper, optim, preemption, run_book, steps, trainer
from cifar_jax.data import cifar10, device
from cifar_jax.errors import ConfigError, UserError


class Group:
  """Members (configs with one `hyper.group_key`) trained together, each in its own run folder, as its
  sequential run would be; `on_epoch` holds each member's pruning callback (run_book.OnEpoch) or None; `data`, the
  members' split when it is loaded already (the probe's), spares loading it again."""

  def __init__(
      self,
      configs: Sequence[ml_collections.ConfigDict],
      workdirs: Sequence[str | pathlib.Path],
      allow_config_change: bool = False,
      on_epoch: Sequence[run_book.OnEpoch | None] | None = None,
      data: cifar10.Cifar10 | None = None,
  ) -> None:
    for config in configs:
      trainer.check_config(config)
    if len({hyper.group_key(c) for c in configs}) != 1 or hyper.group_key(configs[0]) is None:
      raise ConfigError('these configs cannot train as one group (see cifar_jax/training/hyper.py)')
    self.configs, self.template = list(configs), configs[0]
    # one split for every member: they share data.split_seed (`data`: that split, loaded already)
    self.data = data if data is not None else trainer.load_data(self.template)
    self.pipeline = device.DevicePipeline(self.data, self.template, parallel.create_parallel('jit').mesh)
    self.exps = [experiment.build_experiment(c, self.data, self.pipeline) for c in configs]
    self.steps_per_epoch, self.total_steps = self.exps[0].steps_per_epoch, self.exps[0].total_steps
    on_epoch = on_epoch or [None] * len(configs)
    self.books = [
        run_book.RunBook(c, run_book.prepare_workdir(w, c, e.num_params), e, self.data, hook)
        for c, w, e, hook in zip(configs, workdirs, self.exps, on_epoch)
    ]
    states, pending = self._resume(allow_config_change)
    self.step = int(states[0].step)
    self.pending = None if pending[0] is None else _stack(pending)
    # Every member on every device, each epoch's order sharded along the batch ('data'), on the pipeline's
    # Auto-axes mesh where XLA places the vmapped program; members are not spread over devices yet.
    self.state = jax.device_put(_stack(states), self.pipeline.replicated)
    self.values = hyper.vector_values(configs)
    self.hyper = {k: jnp.asarray(v, jnp.int32 if k == 'seed' else jnp.float32) for k, v in self.values.items()}
    member_order = NamedSharding(self.pipeline.replicated.mesh, PartitionSpec(None, None, parallel.AXIS))
    self._order_epoch, self._order, self._order_sharding = None, None, member_order
    self._call = jax.jit(
        jax.vmap(self._member_steps, in_axes=(0, 0, 0, None, None, 0, None, None)),
        static_argnums=7,
        donate_argnums=(0, 1),
    )
    self.stop = preemption.StopRequest()

  def _resume(self, allow_config_change: bool) -> tuple[list[steps.TrainState], list[steps.TrainMetrics | None]]:
    """Each member's state and pending metrics at the members' latest common checkpoint (fresh ones without
    any), each folder checked as a sequential resume checks it. Checkpoints a member holds after that step are
    dropped: the group computes them again, identically."""
    held = [book.checkpoint_steps() for book in self.books]
    if not any(held):
      return [e.state for e in self.exps], [None] * len(self.exps)
    common = set.intersection(*held)
    if not common:
      raise UserError(
          f'the members {", ".join(str(b.workdir) for b in self.books)} have no checkpoint at a common step; '
          f'resume them one by one'
      )
    restored = [b.resume(e.state, allow_config_change, at=max(common)) for b, e in zip(self.books, self.exps)]
    if len({int(state.step) for state, _ in restored}) != 1:  # a damaged one was moved aside: its run fell back
      raise UserError(
          'a damaged checkpoint left the members at different steps; run again to resume them from '
          'their new common step'
      )
    return [state for state, _ in restored], [pending for _, pending in restored]

  def _member_steps(self, state, pending, traced, images, labels, order, counter, length):
    """One member's `length` fused steps, its optimizer and step settings built from its traced numbers."""
    config = hyper.member_config(self.template, traced, self.values)
    tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, self.steps_per_epoch))
    step_config = experiment.step_config(config)
    train_step = functools.partial(steps.train_step, self.exps[0].graphdef, tx, step_config, seed=traced['seed'])
    batch_at = functools.partial(device.train_batch, self.pipeline.augment, self.pipeline.normalize, traced['seed'])
    return fused.scan_steps(train_step, batch_at, state, pending, images, labels, order, counter, length)

  def _order_table(self, epoch: int) -> jax.Array:
    """Every member's example order of `epoch` [members, steps, B], each from its own seed."""
    if self._order_epoch != epoch:
      tables = [device.epoch_order(c.seed, epoch, self.pipeline.num_train, c.batch_size) for c in self.configs]
      self._order_epoch, self._order = epoch, jax.device_put(np.stack(tables), self._order_sharding)
    return self._order

  def train_call(self, epoch: int, batch: int, length: int) -> steps.TrainMetrics:
    """`length` steps of every member from batch `batch` of `epoch`, merged onto the pending metrics; returns
    them once the call has finished (so no more than one call is ever in flight)."""
    if self.pending is None:
      self.pending = _stack([steps.TrainMetrics.empty()] * len(self.configs))
    counter = jnp.array([epoch, batch], jnp.int32)
    self.state, self.pending = self._call(
        self.state, self.pending, self.hyper, *self.pipeline.splits['train'], self._order_table(epoch), counter, length
    )
    return jax.block_until_ready(self.pending)

  def run(self) -> list[dict[str, Any]]:
    """Trains every member to the end, evaluates each, writes each folder; returns the summaries."""
    for book in self.books:
      book.open(self.step)
    with self.stop:  # also while the last checkpoints are written: a second signal then stops at once
      try:
        while self.step < self.total_steps and self._training():
          self._stop_if_requested()
          self._train_epoch()
        return [self._finish(m) for m in range(len(self.configs))]
      finally:
        self.close()

  def close(self) -> None:
    """Waits for the members' checkpoints being written and closes their files."""
    for book in self.books:
      book.close()

  def _training(self) -> list[int]:
    """The members still training (neither failed nor pruned)."""
    return [m for m, book in enumerate(self.books) if book.status is None]

  def _train_epoch(self) -> None:
    """Trains every member to the end of the epoch (or the cap), then validates and checkpoints each."""
    epoch = self.step // self.steps_per_epoch
    for book in self.books:
      book.progress.start(self.step)
    while True:
      n = fused.call_length(
          self.step, self.steps_per_epoch, self.template.log_every_steps, self.total_steps, self.steps_per_epoch
      )
      self.train_call(epoch, self.step % self.steps_per_epoch, n)
      self.step += n
      for book in self.books:
        book.progress.tick(self.step)
      if self.books[0].is_log_point(self.step):
        self._log_pending()
      elif any(self.books[m].progress.due() for m in self._training()):
        for m, values in self._pending_values().items():
          self.books[m].report_progress(self.step, values)
      if self.step % self.steps_per_epoch == 0 or self.step >= self.total_steps:
        break
      self._stop_if_requested()

    saving, val_accuracy = self._training(), {}
    if not saving:
      return
    if self.step % self.steps_per_epoch == 0:
      for m in saving:
        val = self._evaluate(m, 'val') if self.data.val is not None else None
        val_accuracy[m] = val['accuracy'] if val is not None else None
        self.books[m].end_epoch(self.step, val)
    pruned = [m for m in saving if self.books[m].status == 'pruned']
    # Every member saves at the same steps (a group resumes from a common one); the decision is one member's.
    self._save(saving, self.books[saving[0]].checkpoint_due(self.step) or bool(pruned), val_accuracy)
    for m in pruned:
      self.books[m].finish(self.step, None)

  def _pending_values(self) -> dict[int, dict[str, float]]:
    """Each training member's loss, accuracy and gradient norm since the last log line, and its learning rate."""
    values = {}
    members = _unstack(self.pending)
    for m in self._training():
      values[m] = {k: float(v) for k, v in members[m].compute().items()}
      values[m]['learning_rate'] = self.exps[m].learning_rate_fn.effective(self.step, self._member_state(m).plateau)
    return values

  def _log_pending(self) -> None:
    """Each member's line for the steps since the last one; a member with a non-finite loss is marked failed."""
    for m, values in self._pending_values().items():
      book = self.books[m]
      error = book.divergence(self.step, values)
      if error is None:
        book.log_train(self.step, values)
      else:
        book.fail(self.step, error)
    self.pending = None

  def _stop_if_requested(self) -> None:
    """After SIGTERM or Ctrl-C: checkpoints every member at the current step, waits until they are on disk,
    and stops."""
    if self.stop.received:
      self._save(self._training(), latest=True, wait=True)
      raise preemption.Stopped(
          f'{self.stop.received} received: checkpoints written at step {self.step}; '
          f'run the same command again to resume',
          self.stop.received,
      )

  def _save(
      self, members: Sequence[int], latest: bool, val_accuracy: dict[int, float | None] | None = None, wait=False
  ) -> None:
    """Checkpoints `members` at the current step through their books, as their sequential runs would."""
    pending = _unstack(self.pending) if self.pending is not None else [None] * len(self.configs)
    for m in members:
      self.books[m].save(
          self.step,
          functools.partial(self._member_state, m),
          pending[m],
          latest=latest,
          val_accuracy=(val_accuracy or {}).get(m),
          wait=wait,
      )

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
    """Member `m`'s test evaluation, summary.json and curves.png; the summary it left with if it failed or was
    pruned."""
    book = self.books[m]
    return book.outcome if book.outcome is not None else book.finish(self.step, self._evaluate(m, 'test'))


def _stack(trees: Sequence[Any]) -> Any:
  """Trees of one structure stacked on a leading member axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree: Any) -> list[Any]:
  """The members of a stacked tree."""
  size = jax.tree.leaves(tree)[0].shape[0]
  return [jax.tree.map(lambda x, m=m: x[m], tree) for m in range(size)]
