"""What a run writes: metrics.jsonl, TensorBoard events (through clu, when TensorFlow is present), the
progress line and curves.png. Only process 0 writes.

The progress line is our own rather than clu's `periodic_actions.ReportProgress`: that one reports only
steps per second, and importing it imports TensorFlow, which a device-pipeline run must not need."""

import datetime
import json
import pathlib
import sys
import time
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from cifar_jax import run_dir  # noqa: E402


def _tensorboard_writer(workdir: pathlib.Path) -> Any:
  """clu's TensorBoard writer, or None (said once) when TensorFlow is not installed."""
  from cifar_jax.data.tf_import import import_tensorflow
  try:
    import_tensorflow()  # before clu imports it: quiet, and off the GPU
    from clu.metric_writers import SummaryWriter
  except ImportError:
    print('TensorFlow is not installed: TensorBoard files are off (metrics.jsonl and summary.json are written).',
          file=sys.stderr)
    return None
  return SummaryWriter(str(workdir / run_dir.TENSORBOARD_DIR))


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
  """A one-line progress report: step of total, epoch, loss, accuracy, learning rate, images/s, time left."""

  def __init__(self, total_steps: int, first_step: int, batch_size: int, enabled: bool = True) -> None:
    self.total_steps = total_steps
    self.batch_size = batch_size
    self.enabled = enabled
    self.restart(first_step)

  def restart(self, step: int) -> None:
    """Starts timing afresh from `step` (after evaluation or a pipeline restart, which are not training)."""
    self._mark = (time.perf_counter(), step)

  def images_per_second(self, step: int) -> float:
    """Throughput since the previous call, and restarts the clock."""
    now = time.perf_counter()
    then, then_step = self._mark
    self._mark = (now, step)
    return (step - then_step) * self.batch_size / max(now - then, 1e-9)

  def report(self, step: int, epoch: int, num_epochs: int, values: dict[str, float]) -> None:
    """Prints the line for `step`, with `values` holding loss, accuracy, learning_rate and images_per_second."""
    if not self.enabled:
      return
    rate = values['images_per_second'] / self.batch_size
    left = datetime.timedelta(seconds=round((self.total_steps - step) / rate)) if rate > 0 else '?'
    print(f'step {step}/{self.total_steps}  epoch {epoch}/{num_epochs}  loss {values["loss"]:.4f}  '
          f'acc {100 * values["accuracy"]:.2f}%  lr {values["learning_rate"]:.3g}  '
          f'{values["images_per_second"]:,.0f} img/s  left {left}', flush=True)


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
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
