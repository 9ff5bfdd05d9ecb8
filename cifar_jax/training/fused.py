"""Fused steps (`steps_per_call` > 1): K train steps per dispatch under `lax.scan`, the batches made inside.

Each scanned step gathers, augments and normalizes its batch with the device pipeline's own recipe
(`device.train_batch`) and runs the trainer's own `steps.train_step`, so the host sends nothing per step and
the numbers are those of K = 1. The K steps' metrics are merged onto the metrics still pending a log line,
in the order the unfused loop merges them (clu sums), so even the logged sums are the same. A call never
crosses an epoch end, a log point or the last step (`call_length`), so logging, checkpoints, NaN detection,
preemption and resume keep their meaning; one program is compiled per distinct call length (a few).
"""

from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from cifar_jax import parallel
from cifar_jax.training import steps
from cifar_jax.data import device
from cifar_jax.data.batch import Batch

StepFn = Callable[[steps.TrainState, Batch], tuple[steps.TrainState, steps.TrainMetrics]]
SeededStepFn = Callable[[steps.TrainState, Batch, jax.Array], tuple[steps.TrainState, steps.TrainMetrics]]
BatchFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], tuple[Batch, jax.Array]]


def call_length(step: int, steps_per_epoch: int, log_every: int, total_steps: int, steps_per_call: int) -> int:
  """Steps of the next call from `step`: at most `steps_per_call`, ending at the latest on the next log
  point, epoch end or the last step."""
  to_log = log_every - step % log_every
  to_epoch_end = steps_per_epoch - step % steps_per_epoch
  return max(1, min(steps_per_call, to_log, to_epoch_end, total_steps - step))


def scan_steps(
    train_step: StepFn,
    batch_at: BatchFn,
    state: steps.TrainState,
    pending: steps.TrainMetrics,
    images: jax.Array,
    labels: jax.Array,
    order: jax.Array,
    counter: jax.Array,
    length: int,
) -> tuple[steps.TrainState, steps.TrainMetrics]:
  """`length` train steps from the batch position `counter` = (epoch, b); the metrics merged onto `pending`."""

  def body(carry, _):
    state, pending, counter = carry
    batch, counter = batch_at(images, labels, order, counter)
    state, step_metrics = train_step(state, batch)
    return (state, pending.merge(step_metrics), counter), None

  (state, pending, _), _ = jax.lax.scan(body, (state, pending, counter), length=length)
  return state, pending


class FusedSteps:
  """The trainer's train step fused over calls of a few steps, on the data of a DevicePipeline."""

  def __init__(
      self, train_step: SeededStepFn, pipeline: device.DevicePipeline, dp: parallel.JitParallel, seed: jax.Array
  ) -> None:
    self.pipeline = pipeline
    self.seed = jax.device_put(seed, pipeline.replicated)  # onto the Auto-axes mesh the call runs on, once
    # Each step's batch sharded along the 'data' axis, as the unfused loop receives it (an Auto-axes mesh,
    # where a sharding constraint inside the program is allowed).
    self.batch_sharding = NamedSharding(pipeline.replicated.mesh, PartitionSpec(parallel.AXIS))
    self._order_epoch, self._order = None, None
    self._empty = jax.tree.map(np.asarray, steps.TrainMetrics.empty())  # on the host: copied fresh, then donated

    def call(state, pending, seed, order, counter, length):
      def sharded_batch_at(*args):
        batch, counter = pipeline.batch_at(seed, *args)
        return jax.lax.with_sharding_constraint(batch, self.batch_sharding), counter

      def seeded_step(state, batch):
        return train_step(state, batch, seed)

      images, labels = pipeline.splits['train']
      return scan_steps(seeded_step, sharded_batch_at, state, pending, images, labels, order, counter, length)

    self._call = jax.jit(call, static_argnums=5, donate_argnums=(0, 1), out_shardings=(dp.replicated, dp.replicated))

  def __call__(
      self, state: steps.TrainState, pending: steps.TrainMetrics | None, epoch: int, batch: int, length: int
  ) -> tuple[steps.TrainState, steps.TrainMetrics]:
    """`length` steps from batch `batch` of epoch `epoch`; returns the new state and the merged metrics."""
    if self._order_epoch != epoch:
      self._order_epoch, self._order = epoch, self.pipeline.order_table(epoch)
    # Explicit copies (a few bytes per call), so the call runs under jax.transfer_guard('disallow').
    pending = self._empty if pending is None else pending
    counter = np.array([epoch, batch], np.int32)
    auto = self.pipeline.replicated  # the pipeline's Auto-axes mesh, on which the whole call runs
    state, pending, counter = jax.device_put((state, pending, counter), auto)
    return self._call(state, pending, self.seed, self._order, counter, length)
