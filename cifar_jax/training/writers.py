"""What a run writes: metrics.jsonl, TensorBoard events (through clu where TensorFlow is installed, else through the
`tensorboard` package alone), the progress line and curves.png. Only process 0 writes.

The progress line is our own rather than clu's `periodic_actions.ReportProgress`: that one reports only
steps per second, and importing it imports TensorFlow, which a device-pipeline run must not need."""

import datetime
import functools
import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import matplotlib.ticker

from cifar_jax import plotting
from cifar_jax.plotting import plt

from cifar_jax.training import run_dir  # noqa: E402


class _EventFileWriter:
  """Scalars as TensorBoard event files through the `tensorboard` package alone, for machines without TensorFlow
  (its own event writer and protocol buffers; its TensorFlow stub does the file I/O)."""

  def __init__(self, logdir: pathlib.Path) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    self._event, self._summary = event_pb2.Event, summary_pb2.Summary
    self._writer = EventFileWriter(str(logdir))

  def write_scalars(self, step: int, scalars: dict[str, Any]) -> None:
    values = [self._summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items() if v is not None]
    self._writer.add_event(self._event(wall_time=time.time(), step=int(step), summary=self._summary(value=values)))

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


@functools.cache
def _say_tensorboard_off() -> None:
  """Says once per process (not once per run of a sweep) that no event files are written."""
  print(
      'Neither TensorFlow nor tensorboard is installed: TensorBoard files are off '
      '(metrics.jsonl and summary.json are written).',
      file=sys.stderr,
  )


def _tensorboard_writer(workdir: pathlib.Path) -> Any:
  """clu's TensorBoard writer where TensorFlow is installed, else the `tensorboard` package's own event writer;
  None (said once per process) when neither is installed."""
  from cifar_jax.data.tf_import import import_tensorflow

  logdir = workdir / run_dir.TENSORBOARD_DIR
  try:
    import_tensorflow()  # before clu imports it: quiet, and off the GPU
    from clu.metric_writers import SummaryWriter
  except ImportError:
    try:
      return _EventFileWriter(logdir)
    except ImportError:
      _say_tensorboard_off()
      return None
  return SummaryWriter(str(logdir))


class MetricsLog:
  """Appends one JSON line per logged step or evaluation to metrics.jsonl and mirrors scalars to TensorBoard."""

  def __init__(self, workdir: pathlib.Path, *, resume_step: int, enabled: bool = True) -> None:
    self.enabled = enabled
    self.workdir = workdir
    self.path = workdir / run_dir.METRICS_FILE
    self.tensorboard = _tensorboard_writer(workdir) if enabled else None
    if enabled:
      self._drop_lines_after(resume_step)

  def _drop_lines_after(self, step: int) -> None:
    """On resume, forgets lines logged after the checkpoint (those steps run again) and the test result of a
    run that stopped early (it is evaluated again at the end)."""
    kept = [r for r in run_dir.read_metrics(self.workdir) if r['step'] <= step and r['kind'] != 'test']
    self.path.write_text(''.join(json.dumps(record) + '\n' for record in kept))

  def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
    """Records `values` of kind train, val or test at `step`."""
    if not self.enabled:
      return
    record = {'kind': kind, 'step': int(step), **{k: _plain(v) for k, v in values.items()}}
    with self.path.open('a') as f:
      f.write(json.dumps(record) + '\n')
    if self.tensorboard is not None:
      scalars = {f'{kind}/{k}': v for k, v in record.items() if k not in ('kind', 'step', 'epoch')}
      self.tensorboard.write_scalars(step, scalars)

  def close(self) -> None:
    if self.tensorboard is not None:
      self.tensorboard.flush()
      self.tensorboard.close()


def _plain(value: Any) -> Any:
  """A JSON-friendly Python number from a numpy or jax scalar."""
  return value.item() if hasattr(value, 'item') else value


class Progress:
  """The console side of training: a progress line, one line per epoch, and timing that leaves compilation out.

  A line is printed at each log step, right after the run's first step (which waits for compilation)
  and at least every `every_seconds` in between. Images/s and the time left count only the steps after
  the first of each stretch of training (the first waits for compilation, or for the pipeline after an
  evaluation), so the estimate is the steady rate's. That rate, over every stretch of the run (a resumed run's
  earlier ones through `carry`), is the one images/s figure summary.json reports.
  """

  def __init__(
      self,
      total_steps: int,
      steps_per_epoch: int,
      batch_size: int,
      *,
      enabled: bool = True,
      every_seconds: float = 30.0,
      clock: Callable[[], float] = time.perf_counter,
  ) -> None:
    self.total_steps, self.batch_size = total_steps, batch_size
    self.num_epochs = -(-total_steps // steps_per_epoch)  # the epochs this run reaches, not num_epochs
    self.enabled, self.every_seconds, self.clock = enabled, every_seconds, clock
    self._timed_steps, self._timed_seconds = 0, 0.0  # closed stretches, each from its first step to its last
    self._first = self._last = None  # (time, step) of the stretch's first and latest completed steps
    self._mark = (clock(), 0)  # (time, step) of the previous images_per_second call
    self._printed_at = None  # time of the last console line

  def start(self, step: int) -> None:
    """Begins a stretch of training at `step`: the run's start, or after an evaluation, which is not training."""
    self._timed_steps, self._timed_seconds = self.timed()  # closes the stretch before it
    self._first = self._last = None
    self._mark = (self.clock(), step)

  def tick(self, step: int) -> None:
    """Notes that `step` completed (its call returned)."""
    self._last = (self.clock(), step)
    if self._first is None:
      self._first = self._last

  def carry(self, timed_steps: int, timed_seconds: float) -> None:
    """Counts the timed steps and seconds of earlier stretches (a resumed run's, kept in its record)."""
    self._timed_steps += timed_steps
    self._timed_seconds += timed_seconds

  def timed(self) -> tuple[int, float]:
    """The steps after the first of each stretch so far, and their seconds (the open stretch included)."""
    steps, seconds = self._timed_steps, self._timed_seconds
    if self._first is not None:
      steps, seconds = steps + self._last[1] - self._first[1], seconds + self._last[0] - self._first[0]
    return steps, seconds

  def steps_per_second(self) -> float | None:
    """The steady training rate so far, or None before a step past the first of a stretch has completed."""
    steps, seconds = self.timed()
    return steps / seconds if steps and seconds > 0 else None

  def images_per_second(self, step: int) -> float:
    """Throughput since the previous call, from the stretch's first completed step when that came later."""
    now = self.clock()
    then, then_step = self._mark
    if self._first is not None and then_step < self._first[1] < step:
      then, then_step = self._first
    self._mark = (now, step)
    return (step - then_step) * self.batch_size / max(now - then, 1e-9)

  def due(self) -> bool:
    """Whether a line is due between log steps: after the run's first step, then every `every_seconds`."""
    return self.enabled and (self._printed_at is None or self.clock() - self._printed_at >= self.every_seconds)

  def report(self, step: int, epoch: int, values: dict[str, float]) -> None:
    """Prints the line for `step`, with `values` holding loss, accuracy and learning_rate."""
    if not self.enabled:
      return
    self._printed_at = self.clock()
    rate = self.steps_per_second()
    speed = 'first step done (it waited for compilation)'
    if rate:
      speed = (
          f'{rate * self.batch_size:,.0f} img/s  '
          f'left {datetime.timedelta(seconds=round((self.total_steps - step) / rate))}'
      )
    print(
        f'step {step}/{self.total_steps}  epoch {epoch}/{self.num_epochs}  loss {values["loss"]:.4f}  '
        f'acc {100 * values["accuracy"]:.2f}%  lr {values["learning_rate"]:.3g}  {speed}',
        flush=True,
    )

  def report_epoch(self, history: list[dict[str, Any]]) -> None:
    """Prints the last finished epoch of `history`: train, and validation with the best epoch so far."""
    if not self.enabled:
      return
    entry = history[-1]
    line = (
        f'epoch {entry["epoch"]}/{self.num_epochs}: train loss {entry["train_loss"]:.4f} '
        f'acc {100 * entry["train_accuracy"]:.2f}%'
    )
    if 'val_accuracy' in entry:
      best = max((h for h in history if 'val_accuracy' in h), key=lambda h: h['val_accuracy'])
      line += (
          f', val loss {entry["val_loss"]:.4f} acc {100 * entry["val_accuracy"]:.2f}% '
          f'(best {100 * best["val_accuracy"]:.2f}% at epoch {best["epoch"]})'
      )
    print(line, flush=True)


def plot_curves(history: list[dict[str, float]], path: pathlib.Path, title: str) -> None:
  """Loss and accuracy per epoch, train against validation, as two panels of one PNG."""
  epochs = [h['epoch'] for h in history]
  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
  for split in ('train', 'val'):
    if all(f'{split}_loss' in h for h in history):
      ax_loss.plot(epochs, [h[f'{split}_loss'] for h in history], marker='.', label=split)
      ax_acc.plot(epochs, [100 * h[f'{split}_accuracy'] for h in history], marker='.', label=split)
  for ax, label in ((ax_loss, 'loss'), (ax_acc, 'accuracy (%)')):
    ax.set_xlabel('epoch')
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(loc='best')
  fig.suptitle(title)
  plotting.save(fig, path, dpi=100)
