"""The training loop: check the config, load data, build the state, resume, train, evaluate, write results."""

import dataclasses
import math
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from cifar_jax import config_lib, devices, parallel
from cifar_jax.training import checkpoint, experiment, fused, optim, preemption, run_dir, steps, writers
from cifar_jax.data import cifar10
from cifar_jax.data.augment_config import check_augment_config
from cifar_jax.data.pipeline import PIPELINES
from cifar_jax.errors import UserError, check_choice
from cifar_jax.models import count_params
from cifar_jax.training.preemption import Stopped

NO_VALIDATION = (
    'no validation split (data.val_fraction=0): no validation line per epoch, best_val_accuracy '
    'stays null and checkpoints/best/ stays empty; set data.val_fraction to keep the best epoch'
)


class TrainingDiverged(UserError):
  """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses unknown names and out-of-range values, naming the key, before anything is loaded or compiled."""
  config_lib.check_values(config)
  check_choice('dtype', config.dtype, experiment.DTYPES)
  nnx.eval_shape(lambda: experiment.build_model(config))  # model name, its keys, activation, dropout; no memory spent
  check_choice('parallelism', config.parallelism, parallel.PARALLELISMS)
  check_choice('data.pipeline', config.data.pipeline, PIPELINES)
  optim.check_optim_config(config)
  fused.check_fused_config(config)
  check_augment_config(config.augment)
  check_choice('eval.tta', str(config.eval.tta), map(str, steps.TTA_LEVELS))
  parallel.check_batch_size('batch_size', config.batch_size)
  parallel.check_batch_size('eval_batch_size', config.eval_batch_size)


@dataclasses.dataclass
class RunRecord:
  """What a checkpoint keeps beside the state so that a resumed run logs exactly what an uninterrupted one would."""

  history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # one entry per finished epoch
  epoch_sums: dict[str, float] = dataclasses.field(default_factory=lambda: dict(_EMPTY_EPOCH))  # logged so far
  pending: dict[str, Any] | None = None  # train metrics of steps not yet logged (clu sums, exact)
  train_seconds: float = 0.0
  wall_seconds: float = 0.0

  def add_interval(self, values: dict[str, float], num_steps: int) -> None:
    """Folds one logged interval's mean loss and accuracy into the epoch's running sums."""
    self.epoch_sums = {
        'loss': self.epoch_sums['loss'] + values['loss'] * num_steps,
        'accuracy': self.epoch_sums['accuracy'] + values['accuracy'] * num_steps,
        'steps': self.epoch_sums['steps'] + num_steps,
    }

  def close_epoch(self, epoch: int, step: int, val: dict[str, float] | None) -> None:
    """Appends the finished epoch's train (and validation) metrics to the history."""
    n = max(self.epoch_sums['steps'], 1)
    entry = {
        'epoch': epoch,
        'step': step,
        'train_loss': self.epoch_sums['loss'] / n,
        'train_accuracy': self.epoch_sums['accuracy'] / n,
    }
    if val is not None:
      entry |= {'val_loss': val['loss'], 'val_accuracy': val['accuracy']}
    self.history.append(entry)
    self.epoch_sums = dict(_EMPTY_EPOCH)


_EMPTY_EPOCH = {'loss': 0.0, 'accuracy': 0.0, 'steps': 0}


def metrics_to_json(collection: steps.TrainMetrics | None) -> dict[str, Any] | None:
  """clu metric sums as JSON numbers (float32 and int32 survive the round trip exactly)."""
  if collection is None:
    return None
  return jax.tree.map(lambda x: np.asarray(x).item(), flax.serialization.to_state_dict(collection))


def metrics_from_json(saved: dict[str, Any] | None) -> steps.TrainMetrics | None:
  if saved is None:
    return None
  template = steps.TrainMetrics.empty()
  arrays = jax.tree.map(
      lambda t, v: jnp.asarray(v, jnp.asarray(t).dtype), flax.serialization.to_state_dict(template), saved
  )
  return flax.serialization.from_state_dict(template, arrays)


class Trainer:
  """One run in one workdir: built from the config, resumed from the latest checkpoint, trained epoch by epoch."""

  def __init__(
      self, config: ml_collections.ConfigDict, workdir: str | pathlib.Path, allow_config_change: bool = False
  ) -> None:
    check_config(config)
    self.config = config
    if run_dir.checkpoint_step(pathlib.Path(workdir)) is not None:  # refused before the data is loaded
      run_dir.check_resumable(pathlib.Path(workdir), config, allow_config_change)
    self.data = load_data(config)  # before the workdir is made: missing data leaves no empty folder behind
    abstract_params = count_params(nnx.eval_shape(lambda: experiment.build_model(config)))
    # A checkpoint holds the parameters and up to two optimizer moments in float32, kept keep + 1 times.
    self.workdir = run_dir.prepare(workdir, needed_bytes=3 * 4 * abstract_params * (config.checkpoint_keep + 1))
    self.is_main = jax.process_index() == 0
    self.exp = experiment.build_experiment(config, self.data)

    self.checkpoints = checkpoint.Checkpoints(self.workdir / run_dir.CHECKPOINTS_DIR, keep=config.checkpoint_keep)
    self.record = RunRecord()
    state = self.exp.state
    if self.checkpoints.latest_step() is not None:
      state, saved = self.checkpoints.restore_latest(state)
      self.record = RunRecord(**saved)
    self.step = int(state.step)
    self.pending = metrics_from_json(self.record.pending)
    self.pending_start = self.step - (int(self.pending.loss.count) if self.pending is not None else 0)

    run_dir.write_config(self.workdir, config)
    self.log = writers.MetricsLog(self.workdir, resume_step=self.step, enabled=self.is_main)
    self.progress = writers.Progress(
        self.exp.total_steps, self.exp.steps_per_epoch, config.batch_size, enabled=self.is_main
    )
    self.state = self.exp.dp.put_state(state)
    self.started = time.perf_counter()

  def run(self) -> dict[str, Any]:
    """Trains to the end (or the step cap), evaluates on the test set, writes summary.json and curves.png."""
    if self.is_main:
      print(self._banner(), flush=True)
    try:
      with preemption.StopRequest() as self.stop:
        while self.step < self.exp.total_steps:
          self._stop_if_requested()
          self._train_epoch()
      test = self._evaluate('test')
      self.log.write('test', self.step, test)
    except TrainingDiverged as e:
      if self.is_main:
        failure = {'status': 'failed', 'error': str(e), 'steps': self.step}
        run_dir.write_json(self.workdir / run_dir.SUMMARY_FILE, failure)
      raise
    finally:
      self.checkpoints.close()
      self.log.close()
    wall_seconds = self.record.wall_seconds + time.perf_counter() - self.started
    summary = run_summary(self.config, self.data, self.exp, self.record, self.step, test, wall_seconds)
    if self.is_main:
      write_results(self.workdir, self.config, self.record, summary)
      print(
          f'Done: test accuracy {100 * test["accuracy"]:.2f}% after {self.step} steps; results in {self.workdir}',
          flush=True,
      )
    return summary

  def _banner(self) -> str:
    """What the run is: devices, model, data, pipeline, steps; said before the first step waits for compilation."""
    config, exp, data = self.config, self.exp, self.data
    sizes = ' / '.join(
        f'{len(split):,} {name}'
        for name, split in (('train', data.train), ('val', data.val), ('test', data.test))
        if split is not None
    )
    lines = [
        f'{devices.describe()}, {jax.process_count()} process(es); '
        f'parallelism {config.parallelism}, {config.dtype}',
        f'model {config.model.name}: {exp.num_params:,} parameters',
        f'data: {sizes} images; {config.data.pipeline} pipeline',
        f'batch {config.batch_size}: {exp.steps_per_epoch:,} steps per epoch, {exp.num_epochs} epoch{"" if exp.num_epochs == 1 else "s"}, '
        f'{exp.total_steps:,} steps in total',
    ]
    if data.val is None:
      lines.append(NO_VALIDATION)
    if self.step:
      lines.append(f'Resuming {self.workdir} from step {self.step}.')
    if self.step < exp.total_steps:
      lines.append('compiling the train step (the first step waits for it)...')
    return '\n'.join(lines)

  def _train_epoch(self) -> None:
    """Trains from the current step to the end of its epoch (or the cap), then evaluates and checkpoints."""
    config, exp = self.config, self.exp
    epoch = self.step // exp.steps_per_epoch
    segment_start = time.perf_counter()
    self.progress.start(self.step)
    batches = None if exp.fused else iter(exp.pipeline.train_batches(epoch, self.step - epoch * exp.steps_per_epoch))
    while True:
      n = 1
      if exp.fused is not None:  # steps_per_call > 1: several steps per dispatch, batches made on the device
        n = fused.call_length(
            self.step, exp.steps_per_epoch, config.log_every_steps, exp.total_steps, config.steps_per_call
        )
      self.state, self.pending = take_steps(
          exp, self.state, self.pending, epoch, self.step % exp.steps_per_epoch, n, batches
      )
      self.step += n
      self.progress.tick(self.step)
      epoch_done = self.step % exp.steps_per_epoch == 0
      if self.step % config.log_every_steps == 0 or epoch_done:
        self._log_pending(epoch + 1)
      elif self.progress.due():
        self.progress.report(self.step, epoch + 1, self._pending_values())
      if epoch_done or self.step >= exp.total_steps:
        break
      self._stop_if_requested()
    self.record.train_seconds += time.perf_counter() - segment_start

    val = None
    if self.step % exp.steps_per_epoch == 0:
      if self.data.val is not None:
        val = self._evaluate('val')
        self.log.write('val', self.step, {'epoch': epoch + 1, **val})
        self.state = self.state.replace(
            plateau=self.exp.learning_rate_fn.after_validation(self.state.plateau, val['loss'])
        )
      self.record.close_epoch(epoch + 1, self.step, val)
      self.progress.report_epoch(self.record.history)
    self._save(val['accuracy'] if val else None)

  def _evaluate(self, split: str) -> dict[str, float]:
    """Loss and accuracy on the 'val' or 'test' split."""
    exp, total = self.exp, None
    for batch in exp.pipeline.eval_batches(split):
      batch_metrics = exp.dp.get_state(exp.eval_step(self.state, exp.dp.put_batch(batch)))
      total = batch_metrics if total is None else total.merge(batch_metrics)
    return {k: float(v) for k, v in total.compute().items()}

  def _stop_if_requested(self) -> None:
    """After SIGTERM or Ctrl-C: checkpoints the current step and stops with a message on how to resume."""
    if self.stop.received:
      self._save(None)
      raise Stopped(
          f'{self.stop.received} received: checkpoint written at step {self.step}; '
          f'run the same command again to resume',
          self.stop.received,
      )

  def _log_pending(self, epoch: int) -> None:
    """Writes the metrics of the steps since the last log line; stops the run on a non-finite loss."""
    values = self._pending_values()
    if not (math.isfinite(values['loss']) and math.isfinite(values['grad_norm'])):
      last = self.checkpoints.latest_step()
      kept = f'the last good checkpoint (step {last}) is kept' if last is not None else 'no checkpoint was written yet'
      raise TrainingDiverged(
          f'the training loss ({values["loss"]}) or gradient norm ({values["grad_norm"]}) became non-finite '
          f'between steps {self.pending_start} and {self.step}; stopped, {kept}'
      )
    self.record.add_interval(values, self.step - self.pending_start)
    values['images_per_second'] = self.progress.images_per_second(self.step)
    self.log.write('train', self.step, {'epoch': epoch, **values})
    self.progress.report(self.step, epoch, values)
    self.pending, self.pending_start = None, self.step

  def _pending_values(self) -> dict[str, float]:
    """Mean loss, accuracy and gradient norm of the steps since the last log line, and the learning rate now."""
    exp = self.exp
    values = {k: float(v) for k, v in exp.dp.get_state(self.pending).compute().items()}
    values['learning_rate'] = exp.learning_rate_fn.effective(self.step, exp.dp.get_state(self.state).plateau)
    return values

  def _save(self, val_accuracy: float | None) -> None:
    dp = self.exp.dp
    self.record.pending = metrics_to_json(dp.get_state(self.pending) if self.pending is not None else None)
    self.record.wall_seconds += time.perf_counter() - self.started
    self.started = time.perf_counter()
    self.checkpoints.save(self.step, dp.get_state(self.state), dataclasses.asdict(self.record), val_accuracy)


def _epochs(step: int, steps_per_epoch: int) -> int | float:
  """Epochs trained: a whole number when the run ended on an epoch's end, else to two decimals (4.7)."""
  epochs = step / steps_per_epoch
  return int(epochs) if epochs.is_integer() else round(epochs, 2)


def load_data(config: ml_collections.ConfigDict) -> cifar10.Cifar10:
  """The run's splits; the validation split is drawn from `data.split_seed`, so every seed sees the same one."""
  return cifar10.load(
      config.data.data_dir or None,
      source=config.data.source,
      val_fraction=config.data.val_fraction,
      seed=config.data.split_seed,
      max_train_examples=config.data.max_train_examples,
      max_eval_examples=config.data.max_eval_examples,
  )


def run_summary(
    config: ml_collections.ConfigDict,
    data: cifar10.Cifar10,
    exp: experiment.Experiment,
    record: RunRecord,
    step: int,
    test: dict[str, float],
    wall_seconds: float,
) -> dict[str, Any]:
  """A finished run's headline numbers for summary.json: one function for the trainer and the members of a
  vectorized group (cifar_jax/training/group.py), so that their fields cannot drift apart."""
  history = record.history
  last = history[-1] if history else {}
  val_accuracies = [h['val_accuracy'] for h in history if 'val_accuracy' in h]
  train_seconds = record.train_seconds
  return {
      'status': 'completed',
      'model': config.model.name,
      'params': exp.num_params,
      'steps': step,
      'epochs': _epochs(step, exp.steps_per_epoch),
      'train_loss': last.get('train_loss'),
      'train_accuracy': last.get('train_accuracy'),
      'val_loss': last.get('val_loss'),
      'val_accuracy': last.get('val_accuracy'),
      'best_val_accuracy': max(val_accuracies) if val_accuracies else None,
      'best_epoch': 1 + int(np.argmax(val_accuracies)) if val_accuracies else None,
      'best_note': None if data.val is not None else NO_VALIDATION,
      'test_loss': test['loss'],
      'test_accuracy': test['accuracy'],
      'val_examples': len(data.val) if data.val is not None else 0,
      'test_examples': len(data.test),
      'wall_seconds': wall_seconds,
      'device': devices.describe(),  # what the wall time was measured on (the reproduce chain's estimate per device)
      'images_per_second': step * config.batch_size / train_seconds if train_seconds else None,
  }


def write_results(
    workdir: pathlib.Path, config: ml_collections.ConfigDict, record: RunRecord, summary: dict[str, Any]
) -> None:
  """summary.json and, after at least one epoch, curves.png."""
  run_dir.write_json(workdir / run_dir.SUMMARY_FILE, summary)
  if record.history:
    writers.plot_curves(record.history, workdir / run_dir.CURVES_FILE, title=f'{config.model.name} on CIFAR-10')


def take_steps(
    exp: experiment.Experiment,
    state: steps.TrainState,
    pending: steps.TrainMetrics | None,
    epoch: int,
    batch: int,
    length: int,
    batches: Iterator[Any] | None,
) -> tuple[steps.TrainState, steps.TrainMetrics]:
  """`length` train steps from batch `batch` of `epoch`, as a run takes them: one fused call (steps_per_call > 1,
  batches made on the device) or one dispatch per step of what `batches` yields; the metrics merged onto
  `pending`."""
  with jax.transfer_guard('disallow'):  # no implicit host-device copy per step (tests/test_gpu_readiness.py)
    if exp.fused is not None:
      return exp.fused(state, pending, epoch, batch, length)
    for _ in range(length):
      state, step_metrics = exp.train_step(state, exp.dp.put_batch(next(batches)))
      pending = step_metrics if pending is None else pending.merge(step_metrics)
    return state, pending


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | pathlib.Path, allow_config_change: bool = False
) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint), evaluates, returns the summary.

  Resuming a workdir whose run had a different config is refused unless `allow_config_change`.
  """
  return Trainer(config, workdir, allow_config_change).run()
