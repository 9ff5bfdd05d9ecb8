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
import optax
from flax import nnx

from cifar_jax import checkpoint, fused, optim, parallel, preemption, run_dir, steps, writers
from cifar_jax.data import cifar10, device
from cifar_jax.data.augment_config import check_augment_config
from cifar_jax.errors import ConfigError, UserError, check_choice
from cifar_jax.models import count_params, create_model

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
PIPELINES = ('tfdata', 'device')


def _tfdata():
  """The tf.data pipeline, imported on first use so that TensorFlow loads only when it is needed."""
  from cifar_jax.data import tfdata  # pylint: disable=import-outside-toplevel
  return tfdata


class TrainingDiverged(UserError):
  """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


class Stopped(UserError):
  """SIGTERM or Ctrl-C: a checkpoint was written at the current step and the run can be resumed."""


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses unknown names and out-of-range values, naming the key, before anything is loaded or compiled."""
  check_choice('dtype', config.dtype, DTYPES)
  nnx.eval_shape(lambda: build_model(config))  # model name, its keys, activation, dropout; no memory spent
  check_choice('parallelism', config.parallelism, parallel.PARALLELISMS)
  check_choice('data.pipeline', config.data.pipeline, PIPELINES)
  optim.check_optim_config(config)
  fused.check_fused_config(config)
  check_augment_config(config.augment)
  parallel.check_batch_size('batch_size', config.batch_size)
  parallel.check_batch_size('eval_batch_size', config.eval_batch_size)
  if config.num_epochs < 0:
    raise ConfigError(f'num_epochs={config.num_epochs} must be >= 0')
  if config.num_train_steps < -1:
    raise ConfigError(f'num_train_steps={config.num_train_steps} must be -1 (from num_epochs) or >= 0')
  if not 0 <= config.data.val_fraction < 1:
    raise ConfigError(f'data.val_fraction={config.data.val_fraction} must be in [0, 1)')
  if not 0 <= config.regularization.label_smoothing < 1:
    raise ConfigError(f'regularization.label_smoothing={config.regularization.label_smoothing} must be in [0, 1)')
  for key in ('l1', 'l2'):
    if config.regularization[key] < 0:
      raise ConfigError(f'regularization.{key}={config.regularization[key]} must be >= 0')
  if config.log_every_steps < 1:
    raise ConfigError(f'log_every_steps={config.log_every_steps} must be >= 1')


def build_model(config: ml_collections.ConfigDict) -> nnx.Module:
  """The configured model, initialised from `config.seed`."""
  kwargs = {k: v for k, v in config.model.to_dict().items() if k != 'name'}
  return create_model(config.model.name, rngs=nnx.Rngs(params=config.seed), dtype=DTYPES[config.dtype], **kwargs)


def create_train_state(
    config: ml_collections.ConfigDict, model: nnx.Module, tx: optax.GradientTransformation
) -> tuple[nnx.GraphDef, steps.TrainState]:
  """Splits the model into its static graph and a fresh TrainState at step 0."""
  graphdef, params, model_state = steps.split_model(model)
  state = steps.TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      model_state=model_state,
      opt_state=tx.init(params),
      plateau=optim.create_plateau(config).init(params),
  )
  return graphdef, state


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
    self.epoch_sums = {'loss': self.epoch_sums['loss'] + values['loss'] * num_steps,
                       'accuracy': self.epoch_sums['accuracy'] + values['accuracy'] * num_steps,
                       'steps': self.epoch_sums['steps'] + num_steps}

  def close_epoch(self, epoch: int, step: int, val: dict[str, float] | None) -> None:
    """Appends the finished epoch's train (and validation) metrics to the history."""
    n = max(self.epoch_sums['steps'], 1)
    entry = {'epoch': epoch, 'step': step, 'train_loss': self.epoch_sums['loss'] / n,
             'train_accuracy': self.epoch_sums['accuracy'] / n}
    if val is not None:
      entry |= {'val_loss': val['loss'], 'val_accuracy': val['accuracy']}
    self.history.append(entry)
    self.epoch_sums = dict(_EMPTY_EPOCH)


_EMPTY_EPOCH = {'loss': 0.0, 'accuracy': 0.0, 'steps': 0}


def _metrics_to_json(collection: steps.TrainMetrics | None) -> dict[str, Any] | None:
  """clu metric sums as JSON numbers (float32 and int32 survive the round trip exactly)."""
  if collection is None:
    return None
  return jax.tree.map(lambda x: np.asarray(x).item(), flax.serialization.to_state_dict(collection))


def _metrics_from_json(saved: dict[str, Any] | None) -> steps.TrainMetrics | None:
  if saved is None:
    return None
  template = steps.TrainMetrics.empty()
  arrays = jax.tree.map(lambda t, v: jnp.asarray(v, jnp.asarray(t).dtype),
                        flax.serialization.to_state_dict(template), saved)
  return flax.serialization.from_state_dict(template, arrays)


class Trainer:
  """One run in one workdir: built from the config, resumed from the latest checkpoint, trained epoch by epoch."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
               allow_config_change: bool = False) -> None:
    check_config(config)
    self.config = config
    abstract_params = count_params(nnx.eval_shape(lambda: build_model(config)))
    # A checkpoint holds the parameters and up to two optimizer moments in float32, kept keep + 1 times.
    self.workdir = run_dir.prepare(workdir, needed_bytes=3 * 4 * abstract_params * (config.checkpoint_keep + 1))
    self.is_main = jax.process_index() == 0
    self.data = cifar10.load(config.data.data_dir or None, source=config.data.source,
                             val_fraction=config.data.val_fraction, seed=config.seed,
                             max_train_examples=config.data.max_train_examples,
                             max_eval_examples=config.data.max_eval_examples)
    self.steps_per_epoch = cifar10.steps_per_epoch(len(self.data.train), config.batch_size)
    self.total_steps = config.num_epochs * self.steps_per_epoch
    if config.num_train_steps >= 0:
      self.total_steps = min(self.total_steps, config.num_train_steps)

    self.dp = parallel.create_parallel(config.parallelism)
    self.on_device = None  # the device pipeline, when chosen; otherwise batches come from tf.data
    if config.data.pipeline == 'device':
      self.on_device = device.DevicePipeline(self.data, config, self.dp.mesh)
    model = nnx.jit(lambda: build_model(config))()  # one compiled initialisation instead of one per layer
    parallel.set_batchnorm_axis(model, self.dp.axis_name)
    self.num_params = count_params(model)
    self.learning_rate_fn = optim.create_learning_rate_fn(config, self.steps_per_epoch)
    tx = optim.create_optimizer(config, self.learning_rate_fn)
    graphdef, state = create_train_state(config, model, tx)
    self.plateau = optim.create_plateau(config)

    self.checkpoints = checkpoint.Checkpoints(self.workdir / run_dir.CHECKPOINTS_DIR, keep=config.checkpoint_keep)
    self.record = RunRecord()
    if self.checkpoints.latest_step() is not None:
      run_dir.check_resumable(self.workdir, config, allow_config_change)
      state, saved = self.checkpoints.restore_latest(state)
      self.record = RunRecord(**saved)
      print(f'Resuming {self.workdir} from step {int(state.step)}.', flush=True)
    self.step = int(state.step)
    self.pending = _metrics_from_json(self.record.pending)
    self.pending_start = self.step - (int(self.pending.loss.count) if self.pending is not None else 0)

    run_dir.write_config(self.workdir, config)
    self.log = writers.MetricsLog(self.workdir, resume_step=self.step, enabled=self.is_main)
    self.progress = writers.Progress(self.total_steps, self.step, config.batch_size, enabled=self.is_main)
    step_cfg = steps.StepConfig(
        seed=config.seed, l1=config.regularization.l1, l2=config.regularization.l2,
        label_smoothing=config.regularization.label_smoothing, dtype=DTYPES[config.dtype],
        axis_name=self.dp.axis_name)
    train_step, eval_step = steps.make_steps(graphdef, tx, step_cfg)
    self.train_step, self.eval_step = self.dp.compile_train(train_step), self.dp.compile_eval(eval_step)
    # steps_per_call > 1: several steps per dispatch, the batches made inside (cifar_jax/fused.py).
    self.fused = fused.FusedSteps(train_step, self.on_device, self.dp) if config.steps_per_call > 1 else None
    self.state = self.dp.put_state(state)
    self.started = time.perf_counter()

  def run(self) -> dict[str, Any]:
    """Trains to the end (or the step cap), evaluates on the test set, writes summary.json and curves.png."""
    try:
      with preemption.StopRequest() as self.stop:
        while self.step < self.total_steps:
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
    summary = self._summary(test)
    if self.is_main:
      run_dir.write_json(self.workdir / run_dir.SUMMARY_FILE, summary)
      if self.record.history:
        writers.plot_curves(self.record.history, self.workdir / run_dir.CURVES_FILE,
                            title=f'{self.config.model.name} on CIFAR-10')
      print(f'Done: test accuracy {100 * test["accuracy"]:.2f}% after {self.step} steps; results in {self.workdir}',
            flush=True)
    return summary

  def _train_epoch(self) -> None:
    """Trains from the current step to the end of its epoch (or the cap), then evaluates and checkpoints."""
    config, epoch = self.config, self.step // self.steps_per_epoch
    segment_start = time.perf_counter()
    self.progress.restart(self.step)
    batches = None if self.fused else self._train_batches(epoch, start_batch=self.step - epoch * self.steps_per_epoch)
    while True:
      if self.fused is not None:
        n = fused.call_length(self.step, self.steps_per_epoch, config.log_every_steps, self.total_steps,
                              config.steps_per_call)
        self.state, self.pending = self.fused(self.state, self.pending, epoch, self.step % self.steps_per_epoch, n)
      else:
        n = 1
        self.state, step_metrics = self.train_step(self.state, self.dp.put_batch(next(batches)))
        self.pending = step_metrics if self.pending is None else self.pending.merge(step_metrics)
      self.step += n
      epoch_done = self.step % self.steps_per_epoch == 0
      if self.step % config.log_every_steps == 0 or epoch_done:
        self._log_pending(epoch + 1)
      if epoch_done or self.step >= self.total_steps:
        break
      self._stop_if_requested()
    self.record.train_seconds += time.perf_counter() - segment_start

    val = None
    if self.step % self.steps_per_epoch == 0:
      if self.data.val is not None:
        val = self._evaluate('val')
        self.log.write('val', self.step, {'epoch': epoch + 1, **val})
        if config.schedule.name == 'plateau':
          new_plateau = optim.plateau_update(self.plateau, self.state.plateau, val['loss'])
          self.state = self.state.replace(plateau=new_plateau)
      self.record.close_epoch(epoch + 1, self.step, val)
    self._save(val['accuracy'] if val else None)

  def _train_batches(self, epoch: int, start_batch: int) -> Iterator[dict[str, Any]]:
    """Epoch `epoch` from batch `start_batch` on, from the configured pipeline."""
    if self.on_device is not None:
      return self.on_device.train_batches(epoch, start_batch=start_batch)
    return _tfdata().train_batches(
        self.data.train, batch_size=self.config.batch_size, seed=self.config.seed, epoch=epoch,
        augment_config=self.config.augment, normalize=self.config.data.normalize, start_batch=start_batch,
        process_index=jax.process_index(), process_count=jax.process_count())

  def _evaluate(self, split: str) -> dict[str, float]:
    """Loss and accuracy on the 'val' or 'test' split."""
    if self.on_device is not None:
      batches = self.on_device.eval_batches(split)
    else:
      batches = _tfdata().eval_batches(
          getattr(self.data, split), batch_size=self.config.eval_batch_size, normalize=self.config.data.normalize,
          process_index=jax.process_index(), process_count=jax.process_count())
    total = None
    for batch in batches:
      batch_metrics = self.dp.get_state(self.eval_step(self.state, self.dp.put_batch(batch)))
      total = batch_metrics if total is None else total.merge(batch_metrics)
    return {k: float(v) for k, v in total.compute().items()}

  def _stop_if_requested(self) -> None:
    """After SIGTERM or Ctrl-C: checkpoints the current step and stops with a message on how to resume."""
    if self.stop.received:
      self._save(None)
      raise Stopped(f'{self.stop.received} received: checkpoint written at step {self.step}; '
                    f'run the same command again to resume')

  def _log_pending(self, epoch: int) -> None:
    """Writes the metrics of the steps since the last log line; stops the run on a non-finite loss."""
    values = {k: float(v) for k, v in self.dp.get_state(self.pending).compute().items()}
    if not (math.isfinite(values['loss']) and math.isfinite(values['grad_norm'])):
      last = self.checkpoints.latest_step()
      kept = f'the last good checkpoint (step {last}) is kept' if last is not None else 'no checkpoint was written yet'
      raise TrainingDiverged(
          f'the training loss ({values["loss"]}) or gradient norm ({values["grad_norm"]}) became non-finite '
          f'between steps {self.pending_start} and {self.step}; stopped, {kept}')
    self.record.add_interval(values, self.step - self.pending_start)
    values['learning_rate'] = float(self.learning_rate_fn(self.step)) * float(
        self.dp.get_state(self.state).plateau.scale)
    values['images_per_second'] = self.progress.images_per_second(self.step)
    self.log.write('train', self.step, {'epoch': epoch, **values})
    self.progress.report(self.step, epoch, self.config.num_epochs, values)
    self.pending, self.pending_start = None, self.step

  def _save(self, val_accuracy: float | None) -> None:
    self.record.pending = _metrics_to_json(self.dp.get_state(self.pending) if self.pending is not None else None)
    self.record.wall_seconds += time.perf_counter() - self.started
    self.started = time.perf_counter()
    self.checkpoints.save(self.step, self.dp.get_state(self.state), dataclasses.asdict(self.record), val_accuracy)

  def _summary(self, test: dict[str, float]) -> dict[str, Any]:
    wall_seconds = self.record.wall_seconds + time.perf_counter() - self.started
    return run_summary(self.config, self.record, self.num_params, self.step, test, wall_seconds)


def run_summary(config: ml_collections.ConfigDict, record: RunRecord, num_params: int, step: int,
                test: dict[str, float], wall_seconds: float) -> dict[str, Any]:
  """A run's headline numbers for summary.json (a Trainer's, or a member's of a vectorized group)."""
  history = record.history
  last = history[-1] if history else {}
  val_accuracies = [h['val_accuracy'] for h in history if 'val_accuracy' in h]
  train_seconds = record.train_seconds
  return {
      'status': 'completed',
      'model': config.model.name,
      'params': num_params,
      'steps': step,
      'epochs': len(history),
      'train_loss': last.get('train_loss'),
      'train_accuracy': last.get('train_accuracy'),
      'val_loss': last.get('val_loss'),
      'val_accuracy': last.get('val_accuracy'),
      'best_val_accuracy': max(val_accuracies) if val_accuracies else None,
      'best_epoch': 1 + int(np.argmax(val_accuracies)) if val_accuracies else None,
      'test_loss': test['loss'],
      'test_accuracy': test['accuracy'],
      'wall_seconds': wall_seconds,
      'images_per_second': step * config.batch_size / train_seconds if train_seconds else None,
  }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
                       allow_config_change: bool = False) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint), evaluates, returns the summary.

  Resuming a workdir whose run had a different config is refused unless `allow_config_change`.
  """
  return Trainer(config, workdir, allow_config_change).run()
