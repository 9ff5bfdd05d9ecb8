"""The run book: what one run keeps and writes, shared by the Trainer (one run) and the Group (one per member).

A run's folder (config.json, metrics.jsonl, summary.json, curves.png, its checkpoints) and its console lines
(banner, progress, one line per epoch, the last line) are kept here and nowhere else, so a member of a
vectorized group writes and prints exactly what its sequential run would. The engine owns the device state and
the step calls; it hands the book host values: the pending window's metrics, the state to checkpoint, the
validation result. Only process 0 prints and writes files; every process takes part in the checkpoints.
"""

import dataclasses
import math
import pathlib
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cifar_jax import devices
from cifar_jax.data import cifar10
from cifar_jax.errors import UserError
from cifar_jax.training import checkpoint, experiment, run_dir, steps, writers

NO_VALIDATION = (
    'no validation split (data.val_fraction=0): no validation line per epoch, best_val_accuracy '
    'stays null and checkpoints/best/ stays empty; set data.val_fraction to keep the best epoch'
)

# Called after each finished epoch with its number and validation accuracy (None without a validation split);
# True stops the run there as 'pruned' (checkpointed, summary.json says so; not a failure).
OnEpoch = Callable[[int, float | None], bool]


class TrainingDiverged(UserError):
  """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class RunRecord:
  """What a checkpoint keeps beside the state so that a resumed run logs exactly what an uninterrupted one would."""

  history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # one entry per finished epoch
  epoch_sums: dict[str, float] = dataclasses.field(default_factory=lambda: dict(_EMPTY_EPOCH))  # logged so far
  pending: dict[str, Any] | None = None  # train metrics of steps not yet logged (clu sums, exact)
  wall_seconds: float = 0.0
  # The steady rate's steps (those after the first of each stretch of training) and their seconds, so far.
  timed_steps: int = 0
  timed_seconds: float = 0.0

  @classmethod
  def from_saved(cls, saved: dict[str, Any]) -> 'RunRecord':
    """The record a checkpoint holds; fields an older checkpoint lacks take their defaults, and fields this version
    no longer keeps (train_seconds, which counted compilation) are dropped."""
    return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved})

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

  def best_val_accuracy(self) -> float | None:
    """The best validation accuracy of the finished epochs, None before any."""
    return max((h['val_accuracy'] for h in self.history if 'val_accuracy' in h), default=None)


_EMPTY_EPOCH = {'loss': 0.0, 'accuracy': 0.0, 'steps': 0}


def metrics_to_json(collection: steps.TrainMetrics | None) -> dict[str, Any] | None:
  """clu metric sums as JSON numbers (float32 and int32 survive the round trip exactly)."""
  if collection is None:
    return None
  return jax.tree.map(lambda x: np.asarray(x).item(), flax.serialization.to_state_dict(collection))


def metrics_from_json(saved: dict[str, Any] | None) -> steps.TrainMetrics | None:
  """The inverse of `metrics_to_json`: host arrays of the dtypes an empty TrainMetrics has."""
  if saved is None:
    return None
  template = steps.TrainMetrics.empty()
  arrays = jax.tree.map(
      lambda t, v: jnp.asarray(v, jnp.asarray(t).dtype), flax.serialization.to_state_dict(template), saved
  )
  return flax.serialization.from_state_dict(template, arrays)


def planned_steps(config: ml_collections.ConfigDict) -> int:
  """The steps a run of `config` takes (num_epochs, capped by num_train_steps), without loading the data."""
  size = cifar10.train_size(config.data.val_fraction, config.data.max_train_examples)
  total = config.num_epochs * cifar10.steps_per_epoch(size, config.batch_size)
  return min(total, config.num_train_steps) if config.num_train_steps >= 0 else total


def finished_summary(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> dict[str, Any] | None:
  """The summary of a run of `config` that `workdir` holds finished to its last step, else None."""
  if not run_dir.holds_completed_run(workdir, config):
    return None
  summary = run_dir.read_json(workdir / run_dir.SUMMARY_FILE)
  return summary if summary.get('steps') == planned_steps(config) else None


def write_failure(workdir: pathlib.Path, error: str, step: int | None = None) -> dict[str, Any]:
  """Writes (process 0) and returns the summary of a run that failed: its status, the reason and, when known,
  the step it reached. The one form of a failure, whoever records it (a run, a group member, a sweep)."""
  failure = {'status': 'failed', 'error': error} | ({'steps': step} if step is not None else {})
  if jax.process_index() == 0:
    run_dir.write_json(workdir / run_dir.SUMMARY_FILE, failure)
  return failure


def prepare_workdir(workdir: str | pathlib.Path, config: ml_collections.ConfigDict, num_params: int) -> pathlib.Path:
  """The run folder, created and checked writable with room for the checkpoints: the parameters and up to two
  optimizer moments in float32, kept `checkpoint_keep` + 1 times."""
  return run_dir.prepare(workdir, needed_bytes=3 * 4 * num_params * (config.checkpoint_keep + 1))


def _epochs(step: int, steps_per_epoch: int) -> int | float:
  """Epochs trained: a whole number when the run ended on an epoch's end, else to two decimals (4.7)."""
  epochs = step / steps_per_epoch
  return int(epochs) if epochs.is_integer() else round(epochs, 2)


class RunBook:
  """One run's folder and console: its checkpoints, record, metrics log and progress lines, from its resume to
  its summary. `step` is the engine's; `pending_start` is the first step of the window not yet logged."""

  def __init__(
      self,
      config: ml_collections.ConfigDict,
      workdir: pathlib.Path,
      exp: experiment.Experiment,
      data: cifar10.Cifar10,
      on_epoch: OnEpoch | None = None,
  ) -> None:
    self.config, self.workdir, self.exp, self.data, self.on_epoch = config, workdir, exp, data, on_epoch
    self.is_main = jax.process_index() == 0
    self.checkpoints = checkpoint.Checkpoints(workdir / run_dir.CHECKPOINTS_DIR, keep=config.checkpoint_keep)
    self.record = RunRecord()
    self.pending_start = 0
    self.status: str | None = None  # 'failed' or 'pruned' once the run left before its end
    self.outcome: dict[str, Any] | None = None  # its summary, once written
    self.log: writers.MetricsLog | None = None
    self.progress = writers.Progress(exp.total_steps, exp.steps_per_epoch, config.batch_size, enabled=self.is_main)
    self.started = self.saved_at = time.perf_counter()

  def checkpoint_steps(self) -> set[int]:
    return set(self.checkpoints.latest.all_steps())

  def resume(
      self, template: steps.TrainState, allow_config_change: bool, at: int | None = None
  ) -> tuple[steps.TrainState, steps.TrainMetrics | None]:
    """The host state and pending metrics of the latest checkpoint (or the one at step `at`), after checking
    the folder holds a run of this config; the fresh state at step 0 when there is no checkpoint.

    Checkpoints after the resumed step (`at`, or a best one written after the latest) are dropped: the run
    computes them again, identically."""
    if not self.checkpoint_steps():
      return template, None
    run_dir.check_resumable(self.workdir, self.config, allow_config_change)
    if at is not None:
      self.checkpoints.drop_after(at)
    state, saved = self.checkpoints.restore_latest(template)
    self.checkpoints.drop_after(int(state.step))
    self.record = RunRecord.from_saved(saved)
    self.progress.carry(self.record.timed_steps, self.record.timed_seconds)
    pending = metrics_from_json(self.record.pending)
    self.pending_start = int(state.step) - (int(pending.loss.count) if pending is not None else 0)
    return state, pending

  def open(self, step: int) -> None:
    """Writes config.json, opens metrics.jsonl at `step` (forgetting lines after it) and prints the banner."""
    run_dir.write_config(self.workdir, self.config)
    self.log = writers.MetricsLog(self.workdir, resume_step=step, enabled=self.is_main)
    if self.is_main:
      print(self._banner(step), flush=True)

  def _banner(self, step: int) -> str:
    """What the run is: devices, model, data, pipeline, steps; said before the first step waits for compilation."""
    config, exp, data = self.config, self.exp, self.data
    sizes = ' / '.join(
        f'{len(split):,} {name}'
        for name, split in (('train', data.train), ('val', data.val), ('test', data.test))
        if split is not None
    )
    lines = [
        f'{devices.describe()}, {jax.process_count()} process(es); parallelism {config.parallelism}, {config.dtype}',
        f'model {config.model.name}: {exp.num_params:,} parameters',
        f'data: {sizes} images; {config.data.pipeline} pipeline',
        *exp.inputs,
        f'batch {config.batch_size}: {exp.steps_per_epoch:,} steps per epoch, {exp.num_epochs} '
        f'epoch{"" if exp.num_epochs == 1 else "s"}, {exp.total_steps:,} steps in total',
    ]
    if data.val is None:
      lines.append(NO_VALIDATION)
    if step:
      lines.append(f'Resuming {self.workdir} from step {step}.')
    if step < exp.total_steps:
      lines.append('compiling the train step (the first step waits for it)...')
    return '\n'.join(lines)

  def is_log_point(self, step: int) -> bool:
    """Whether the pending window is logged at `step`: every log_every_steps and at each epoch's end."""
    return step % self.config.log_every_steps == 0 or step % self.exp.steps_per_epoch == 0

  def divergence(self, step: int, values: dict[str, float]) -> str | None:
    """Why the window ending at `step` cannot be logged (a non-finite loss or gradient norm), None if it can."""
    if math.isfinite(values['loss']) and math.isfinite(values['grad_norm']):
      return None
    last = self.checkpoints.latest_step()
    kept = f'the last good checkpoint (step {last}) is kept' if last is not None else 'no checkpoint was written yet'
    return (
        f'the training loss ({values["loss"]}) or gradient norm ({values["grad_norm"]}) became non-finite '
        f'between steps {self.pending_start} and {step}; stopped, {kept}'
    )

  def log_train(self, step: int, values: dict[str, float]) -> None:
    """Logs the window ending at `step` (finite `values`: loss, accuracy, grad_norm, learning_rate)."""
    epoch = -(-step // self.exp.steps_per_epoch)
    self.record.add_interval(values, step - self.pending_start)
    values = {**values, 'images_per_second': self.progress.images_per_second(step)}
    self.log.write('train', step, {'epoch': epoch, **values})
    self.progress.report(step, epoch, values)
    self.pending_start = step

  def report_progress(self, step: int, values: dict[str, float]) -> None:
    """The progress line between log points (`values` of the window so far)."""
    self.progress.report(step, -(-step // self.exp.steps_per_epoch), values)

  def end_epoch(self, step: int, val: dict[str, float] | None) -> bool:
    """Records the epoch that ended at `step` with its validation result; True when `on_epoch` prunes the run."""
    epoch = step // self.exp.steps_per_epoch
    if val is not None:
      self.log.write('val', step, {'epoch': epoch, **val})
    self.record.close_epoch(epoch, step, val)
    self.progress.report_epoch(self.record.history)
    if self.on_epoch is not None and self.on_epoch(epoch, val['accuracy'] if val is not None else None):
      self.status = 'pruned'
    return self.status == 'pruned'

  def checkpoint_due(self, step: int) -> bool:
    """Whether the latest checkpoint is written at `step` (an epoch's end or the last step): at the last step,
    every `checkpoint_every_epochs` epochs, and when `checkpoint_every_seconds` have passed since the last save."""
    every_epochs, every_seconds = self.config.checkpoint_every_epochs, self.config.checkpoint_every_seconds
    epoch, at_epoch_end = divmod(step, self.exp.steps_per_epoch)
    return (
        step >= self.exp.total_steps
        or (at_epoch_end == 0 and every_epochs > 0 and epoch % every_epochs == 0)
        or (every_seconds > 0 and time.perf_counter() - self.saved_at >= every_seconds)
    )

  def save(
      self,
      step: int,
      state: Callable[[], steps.TrainState],
      pending: steps.TrainMetrics | None,
      *,
      latest: bool,
      val_accuracy: float | None = None,
      wait: bool = False,
  ) -> None:
    """Checkpoints the host `state()` and the record at `step`: as the latest when `latest`, as the best when
    `val_accuracy` beats every earlier epoch's (the first of equal ones stays best). Nothing when neither;
    `wait` returns only once the files are complete."""
    now = time.perf_counter()
    self.record.wall_seconds += now - self.started
    self.started = now
    earlier = [h['val_accuracy'] for h in self.record.history[:-1] if 'val_accuracy' in h]
    best = val_accuracy is not None and all(val_accuracy > a for a in earlier)
    if latest or best:
      self.record.pending = metrics_to_json(pending)
      self.record.timed_steps, self.record.timed_seconds = self.progress.timed()
      self.checkpoints.save(step, state(), dataclasses.asdict(self.record), val_accuracy if best else None, latest)
      self.saved_at = time.perf_counter()
    if wait:
      self.checkpoints.wait()

  def fail(self, step: int, error: str) -> None:
    """Records the run as failed at `step` (its last good checkpoint stays)."""
    self.status = 'failed'
    self.outcome = write_failure(self.workdir, error, step)

  def summary(self, step: int, test: dict[str, float] | None) -> dict[str, Any]:
    """The run's headline numbers for summary.json: completed (with `test`) or pruned (without)."""
    config, data, exp, history = self.config, self.data, self.exp, self.record.history
    last = history[-1] if history else {}
    val_accuracies = [h['val_accuracy'] for h in history if 'val_accuracy' in h]
    steady = self.progress.steps_per_second()
    return {
        'status': 'completed' if test is not None else 'pruned',
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
        'test_loss': test['loss'] if test is not None else None,
        'test_accuracy': test['accuracy'] if test is not None else None,
        'val_examples': len(data.val) if data.val is not None else 0,
        'test_examples': len(data.test),
        'wall_seconds': self.record.wall_seconds + time.perf_counter() - self.started,
        'device': devices.describe(),  # what the wall time was measured on (the reproduce chain's estimate per device)
        # Training images per second after the first step (or fused call) of each stretch of training, over
        # every stretch since step 0 (writers.Progress): compilation and evaluations left out.
        'steady_images_per_second': steady * config.batch_size if steady else None,
    }

  def finish(self, step: int, test: dict[str, float] | None) -> dict[str, Any]:
    """Writes the test line, summary.json and curves.png and prints the last line; `test` None: pruned."""
    if test is not None:
      self.log.write('test', step, test)
    summary = self.summary(step, test)
    if self.is_main:
      run_dir.write_json(self.workdir / run_dir.SUMMARY_FILE, summary)
      if self.record.history:
        title = f'{self.config.model.name} on CIFAR-10'
        writers.plot_curves(self.record.history, self.workdir / run_dir.CURVES_FILE, title=title)
      if test is None:
        epoch = self.record.history[-1]['epoch']
        print(f'Pruned after epoch {epoch} (step {step}); results in {self.workdir}', flush=True)
      else:
        print(
            f'Done: test accuracy {100 * test["accuracy"]:.2f}% after {step} steps; results in {self.workdir}',
            flush=True,
        )
    self.outcome = summary
    return summary

  def close(self) -> None:
    """Waits for the checkpoints being written and closes the files."""
    self.checkpoints.close()
    if self.log is not None:
      self.log.close()
