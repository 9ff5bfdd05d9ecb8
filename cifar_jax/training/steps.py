"""Pure train and eval steps over an explicit state: loss, accuracy, L1/L2 penalties, metrics.

The model's graph definition is split off once (`nnx.split`), so each step is a pure function of
arrays that jit compiles once; `axis_name` is set when the step runs under `jax.pmap`, where gradients,
batch statistics and metrics are averaged across devices explicitly. The seed is an argument (traced), not a
setting, so runs that differ only in their seed compile the same program (the persistent cache then reuses it).
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from clu import metrics
from flax import nnx

from cifar_jax.data.batch import Batch
from cifar_jax.training import optim


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training; the model's structure lives in the graphdef beside it."""

  step: jax.Array
  params: nnx.State
  model_state: nnx.State  # BatchNorm running statistics
  opt_state: optax.OptState
  plateau: optim.PlateauState  # ReduceLROnPlateau; its scale multiplies the learning rate (1 when unused)


@flax.struct.dataclass
class TrainMetrics(metrics.Collection):
  """Per-step training loss (without penalties), accuracy and gradient norm, averaged over steps."""

  loss: metrics.Average.from_output('loss')
  accuracy: metrics.Average.from_output('accuracy')
  grad_norm: metrics.Average.from_output('grad_norm')


@flax.struct.dataclass
class EvalMetrics(metrics.Collection):
  """Loss and accuracy over every real (unpadded) example of an evaluation."""

  loss: metrics.Average.from_output('loss')
  accuracy: metrics.Average.from_output('accuracy')


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """The static settings a step closes over (hashable, so steps compile once); the seed is not one of them."""

  l1: float = 0.0
  l2: float = 0.0
  label_smoothing: float = 0.0
  dtype: Any = jnp.float32
  axis_name: str | None = None  # set under pmap
  tta: int = 0  # test-time augmentation of evaluations: a level of config_check.TTA_LEVELS


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
  """The model's static graph, its parameters, and everything else it holds (BatchNorm statistics)."""
  return nnx.split(model, nnx.Param, ...)


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """Per-example softmax cross-entropy in float32, with optional label smoothing."""
  logits = logits.astype(jnp.float32)
  targets = jax.nn.one_hot(labels, logits.shape[-1])
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def weight_penalty(params: nnx.State, l1: float, l2: float) -> jax.Array:
  """L1 (Lasso) and L2 (Ridge) penalties over every parameter, as the report's regularization study adds them.

  The L1 gradient is sign(w), 0 at w = 0 as in PyTorch (jnp.abs's gradient at 0 is 1).
  """
  leaves = jax.tree.leaves(params)
  penalty = jnp.zeros((), jnp.float32)
  if l1:
    penalty += l1 * sum((p * jax.lax.stop_gradient(jnp.sign(p))).sum() for p in leaves)
  if l2:
    penalty += l2 * sum(jnp.square(p).sum() for p in leaves)
  return penalty


def _pmean(tree: Any, axis_name: str | None) -> Any:
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    cfg: StepConfig,
    state: TrainState,
    batch: Batch,
    seed: jax.Array | int,
) -> tuple[TrainState, TrainMetrics]:
  """One optimizer step (`tx`: SGD, Adam, ...) on a batch: forward in `cfg.dtype`, loss and penalties in float32,
  update, new batch statistics. `seed` (the run's, an int32 array) makes the dropout keys."""
  key = jax.random.fold_in(jax.random.key(seed), state.step)  # the same on every device: dropout numbers examples
  images = batch['image'].astype(cfg.dtype)

  def loss_fn(params: nnx.State, model_state: nnx.State) -> tuple[jax.Array, tuple[jax.Array, jax.Array, nnx.State]]:
    model = nnx.merge(graphdef, params, model_state, copy=True)
    logits = model(images, train=True, rngs=nnx.Rngs(dropout=key))
    data_loss = cross_entropy(logits, batch['label'], cfg.label_smoothing).mean()
    loss = data_loss + weight_penalty(params, cfg.l1, cfg.l2)
    return loss, (data_loss, logits, split_model(model)[2])

  grads, (data_loss, logits, model_state) = jax.grad(loss_fn, has_aux=True)(state.params, state.model_state)
  grads = _pmean(grads, cfg.axis_name)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  updates = optim.scale_updates(updates, state.plateau)
  params = optax.apply_updates(state.params, updates)
  accuracy = (logits.argmax(-1) == batch['label']).mean()
  loss, accuracy = _pmean((data_loss, accuracy), cfg.axis_name)
  new_state = state.replace(step=state.step + 1, params=params, model_state=model_state, opt_state=opt_state)
  step_metrics = TrainMetrics.single_from_model_output(loss=loss, accuracy=accuracy, grad_norm=optax.tree.norm(grads))
  return new_state, step_metrics


def tta_logits(model: Callable[[jax.Array], jax.Array], images: jax.Array, level: int) -> jax.Array:
  """The float32 logits of `model` on `images` [N, H, W, C] averaged over the views of TTA level `level`."""
  logits = lambda x: model(x).astype(jnp.float32)
  mirrored = lambda x: (logits(x) + logits(x[:, :, ::-1])) / 2
  if level == 0:
    return logits(images)
  if level == 1:
    return mirrored(images)
  height, width = images.shape[1:3]
  padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
  shifted = (mirrored(padded[:, :height, :width]) + mirrored(padded[:, 2:, 2:])) / 2
  return (mirrored(images) + shifted) / 2


def eval_step(graphdef: nnx.GraphDef, cfg: StepConfig, state: TrainState, batch: Batch) -> EvalMetrics:
  """Loss and accuracy over the real examples of a (possibly padded) batch, with running statistics, on the views
  of test-time augmentation level `cfg.tta`."""
  model = nnx.merge(graphdef, state.params, state.model_state)
  logits = tta_logits(functools.partial(model, train=False), batch['image'].astype(cfg.dtype), cfg.tta)
  outputs = {
      'loss': cross_entropy(logits, batch['label']),
      'accuracy': (logits.argmax(-1) == batch['label']).astype(jnp.float32),
      'mask': batch['mask'],
  }
  if cfg.axis_name is None:
    return EvalMetrics.single_from_model_output(**outputs)
  return EvalMetrics.gather_from_model_output(axis_name=cfg.axis_name, **outputs)


def make_steps(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, cfg: StepConfig) -> tuple[
    Callable[[TrainState, Batch, jax.Array], tuple[TrainState, TrainMetrics]],
    Callable[[TrainState, Batch], EvalMetrics],
]:
  """The train step (state, batch, seed) and the eval step (state, batch) with their static arguments bound, ready
  for jit or pmap."""
  return (
      functools.partial(train_step, graphdef, tx, cfg),
      functools.partial(eval_step, graphdef, cfg),
  )
