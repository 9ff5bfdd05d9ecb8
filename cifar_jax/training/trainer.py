"""The training loop of one run: check the config, load data, build the state, resume, train, evaluate; what the
run keeps and writes is its run book's."""

import pathlib
from collections.abc import Iterator
from typing import Any

import jax
import ml_collections
from flax import nnx

from cifar_jax import config_check, parallel
from cifar_jax.training import experiment, fused, preemption, run_book, run_dir, steps
from cifar_jax.data import cifar10
from cifar_jax.models import count_params
from cifar_jax.training.preemption import Stopped
from cifar_jax.training.run_book import TrainingDiverged


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses unknown names and out-of-range values, naming the key, before anything is loaded or compiled: first
  what needs no JAX (cifar_jax/config_check.py, which the commands run before the heavy imports), then the model's
  own options (built abstractly), an init_from file and the batch sizes against the device count."""
  config_check.check_config(config)
  nnx.eval_shape(lambda: experiment.build_model(config))  # the model's options; no memory spent
  experiment.check_inputs(config)
  parallel.check_batch_size('batch_size', config.batch_size)
  parallel.check_batch_size('eval_batch_size', config.eval_batch_size)


class Trainer:
  """One run in one workdir: built from the config, resumed from the latest checkpoint, trained epoch by epoch;
  what it keeps and writes is its run book's (cifar_jax/training/run_book.py).

  A workdir that holds this run finished builds nothing: `finished` is its summary, `step` its last step, `data`,
  `exp`, `book`, `state` and `pending` are None, and `run` only says so. Otherwise `finished` is None."""

  def __init__(
      self,
      config: ml_collections.ConfigDict,
      workdir: str | pathlib.Path,
      allow_config_change: bool = False,
      on_epoch: run_book.OnEpoch | None = None,
  ) -> None:
    check_config(config)
    self.config = config
    self.stop = preemption.StopRequest()
    # A finished run is said so, before any data is loaded or anything compiled (see `run`).
    self.finished = run_book.finished_summary(pathlib.Path(workdir), config)
    if self.finished is not None:
      self.workdir, self.step = pathlib.Path(workdir), self.finished['steps']
      self.data = self.exp = self.book = self.state = self.pending = None
      return
    if run_dir.checkpoint_step(pathlib.Path(workdir)) is not None:  # refused before the data is loaded
      run_dir.check_resumable(pathlib.Path(workdir), config, allow_config_change)
    self.data = load_data(config)  # before the workdir is made: missing data leaves no empty folder behind
    abstract_params = count_params(nnx.eval_shape(lambda: experiment.build_model(config)))
    self.workdir = run_book.prepare_workdir(workdir, config, abstract_params)
    self.exp = experiment.build_experiment(config, self.data)
    self.book = run_book.RunBook(config, self.workdir, self.exp, self.data, on_epoch)
    state, self.pending = self.book.resume(self.exp.state, allow_config_change)
    self.step = int(state.step)
    self.state = self.exp.dp.put_state(state)
    if self.pending is not None:  # restored on the host: placed like the steps' metrics, explicitly (transfer guard)
      self.pending = self.exp.dp.put_state(self.pending)

  def run(self) -> dict[str, Any]:
    """Trains to the end (or the step cap, or until `on_epoch` prunes it), evaluates on the test set, writes
    summary.json and curves.png; returns the summary. A finished run is only said to be finished."""
    if self.finished is not None:
      if jax.process_index() == 0:
        print(
            f'{self.workdir} holds this run finished ({self.finished["steps"]} steps, test accuracy '
            f'{100 * self.finished["test_accuracy"]:.2f}%): nothing to do',
            flush=True,
        )
      return self.finished
    book = self.book
    book.open(self.step)
    with self.stop:  # also while the last checkpoints are written: a second signal then stops at once
      try:
        while self.step < self.exp.total_steps and book.status is None:
          self._stop_if_requested()
          self._train_epoch()
        return book.finish(self.step, None if book.status == 'pruned' else self._evaluate('test'))
      except TrainingDiverged as e:
        book.fail(self.step, str(e))
        raise
      finally:
        book.close()

  def _train_epoch(self) -> None:
    """Trains from the current step to the end of its epoch (or the cap), then evaluates and checkpoints."""
    config, exp, book = self.config, self.exp, self.book
    epoch = self.step // exp.steps_per_epoch
    book.progress.start(self.step)
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
      book.progress.tick(self.step)
      if book.is_log_point(self.step):
        self._log_pending()
      elif book.progress.due():
        book.report_progress(self.step, self._pending_values())
      if self.step % exp.steps_per_epoch == 0 or self.step >= exp.total_steps:
        break
      self._stop_if_requested()

    val, pruned = None, False
    if self.step % exp.steps_per_epoch == 0:
      if self.data.val is not None:
        val = self._evaluate('val')
        self.state = self.state.replace(
            plateau=self.exp.learning_rate_fn.after_validation(self.state.plateau, val['loss'])
        )
      pruned = book.end_epoch(self.step, val)
    book.save(
        self.step,
        self._host_state,
        self._host_pending(),
        latest=pruned or book.checkpoint_due(self.step),
        val_accuracy=val['accuracy'] if val else None,
    )

  def _evaluate(self, split: str) -> dict[str, float]:
    """Loss and accuracy on the 'val' or 'test' split."""
    exp, total = self.exp, None
    for batch in exp.pipeline.eval_batches(split):
      batch_metrics = exp.dp.get_state(exp.eval_step(self.state, exp.dp.put_batch(batch)))
      total = batch_metrics if total is None else total.merge(batch_metrics)
    return {k: float(v) for k, v in total.compute().items()}

  def _stop_if_requested(self) -> None:
    """After SIGTERM or Ctrl-C: checkpoints the current step, waits until it is on disk, and stops with a message
    on how to resume."""
    if self.stop.received:
      self.book.save(self.step, self._host_state, self._host_pending(), latest=True, wait=True)
      raise Stopped(
          f'{self.stop.received} received: checkpoint written at step {self.step}; '
          f'run the same command again to resume',
          self.stop.received,
      )

  def _log_pending(self) -> None:
    """Writes the metrics of the steps since the last log line; stops the run on a non-finite loss."""
    values = self._pending_values()
    error = self.book.divergence(self.step, values)
    if error is not None:
      raise TrainingDiverged(error)
    self.book.log_train(self.step, values)
    self.pending = None

  def _pending_values(self) -> dict[str, float]:
    """Mean loss, accuracy and gradient norm of the steps since the last log line, and the learning rate now."""
    exp = self.exp
    values = {k: float(v) for k, v in exp.dp.get_state(self.pending).compute().items()}
    values['learning_rate'] = exp.learning_rate_fn.effective(self.step, exp.dp.get_state(self.state).plateau)
    return values

  def _host_state(self) -> steps.TrainState:
    return self.exp.dp.get_state(self.state)

  def _host_pending(self) -> steps.TrainMetrics | None:
    return self.exp.dp.get_state(self.pending) if self.pending is not None else None


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
  `pending`.

  What is in flight is bounded: a step is dispatched only once the one before the previous has finished (a fused
  call, once the previous call has), so a signal, its acknowledgement and the progress line come within about a
  step however slow the steps are, while the device always has the next step queued."""
  with jax.transfer_guard('disallow'):  # no implicit host-device copy per step (tests/test_gpu_readiness.py)
    if exp.fused is not None:
      state, pending = exp.fused(state, pending, epoch, batch, length)
      return state, jax.block_until_ready(pending)
    for _ in range(length):
      state, step_metrics = exp.train_step(state, exp.dp.put_batch(next(batches)))
      previous, pending = pending, step_metrics if pending is None else pending.merge(step_metrics)
      jax.block_until_ready(previous)  # one step queued behind the running one, no more (see the docstring)
    return state, pending


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    allow_config_change: bool = False,
    on_epoch: run_book.OnEpoch | None = None,
) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint), evaluates, returns the summary.

  Resuming a workdir whose run had a different config is refused unless `allow_config_change`. `on_epoch(epoch,
  val_accuracy)`, called after each epoch's validation, stops the run as 'pruned' when it returns True.
  """
  return Trainer(config, workdir, allow_config_change, on_epoch).run()
