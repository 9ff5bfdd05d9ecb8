"""A finished run's confusion matrix and per-class accuracy on the test set: confusion.png and per_class.md.

The command, its usage and what it writes: `cifar_jax/analysis.py`.
"""

import functools
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from cifar_jax import plotting
from cifar_jax.plotting import plt
from cifar_jax.training import checkpoint, experiment, run_dir
from cifar_jax.data import augment_jax, cifar10, normalization
from cifar_jax.errors import UserError

PROGRESS_SECONDS = 30.0  # a progress line at least this often while the test set is evaluated
CONFUSION_FILE = 'confusion.png'
PER_CLASS_FILE = 'per_class.md'


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """counts[i, j]: how many examples of true class i were predicted as class j."""
  counts = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(counts, (labels, predictions), 1)
  return counts


def per_class_accuracy(counts: np.ndarray) -> np.ndarray:
  """The share of each true class predicted correctly (the diagonal over the row sums)."""
  return np.diag(counts) / np.maximum(counts.sum(axis=1), 1)


def restore_model(folder: pathlib.Path, config: ml_collections.ConfigDict) -> tuple[nnx.Module, int]:
  """The run's model with its final parameters and BatchNorm statistics, from its newest intact checkpoint, and
  that checkpoint's step.

  The checkpoint holds the whole TrainState, so its shape is built as the trainer builds it (the optimizer's
  state has the same structure whatever the schedule's steps per epoch, hence 1). A finished run that trained no
  step (num_epochs=0: an evaluation of its initial weights, init_from's) writes no checkpoint: its model is those.
  """
  model = experiment.build_model(config)
  if (run_dir.read_json(folder / run_dir.SUMMARY_FILE) or {}).get('steps') == 0:
    experiment.load_initial_weights(model, config)
    return model, 0
  *_, state = experiment.initial_state(config, steps_per_epoch=1, model=model)
  checkpoints = checkpoint.Checkpoints(folder / run_dir.CHECKPOINTS_DIR, keep=config.checkpoint_keep)
  try:
    restored = checkpoints.restore_latest(state)
  finally:
    checkpoints.close()
  if restored is None:
    raise UserError(f'{folder} has no checkpoint to evaluate')
  state, _ = restored
  nnx.update(model, state.params, state.model_state)
  return model, int(state.step)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _classes(
    graphdef: nnx.GraphDef,
    normalize: normalization.Normalization | None,
    dtype: Any,
    state: nnx.State,
    batch: jax.Array,
) -> jax.Array:
  """The predicted classes of a uint8 batch. The parameters are an argument, not constants baked into the program:
  every run of one architecture shares one compiled program (and the persistent cache's copy of it)."""
  inputs = batch.astype(jnp.float32) / 255
  if normalize is not None:
    inputs = augment_jax.normalize(inputs, normalize)
  logits = nnx.merge(graphdef, state)(inputs.astype(dtype), train=False)
  return logits.argmax(-1)


def predict(model: nnx.Module, images: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
  """The predicted class of each uint8 image, in batches of the run's eval_batch_size, as the trainer evaluates."""
  graphdef, state = nnx.split(model)
  classes = functools.partial(_classes, graphdef, normalization.of_inputs(config.data), jnp.dtype(config.dtype), state)
  size = config.eval_batch_size
  padded = np.concatenate([images, np.zeros((-len(images) % size, *images.shape[1:]), images.dtype)])
  predicted, said = [], time.perf_counter()
  for i in range(0, len(padded), size):
    predicted.append(np.asarray(classes(padded[i : i + size])))
    if time.perf_counter() - said > PROGRESS_SECONDS:
      print(f'  {min(i + size, len(images)):,} of {len(images):,} test images evaluated', flush=True)
      said = time.perf_counter()
  return np.concatenate(predicted)[: len(images)]


def plot_confusion(counts: np.ndarray, title: str, path: pathlib.Path) -> None:
  """The matrix as a heat map of row shares, each cell labelled with its count."""
  shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  figure, axis = plt.subplots(figsize=(7.5, 6.5))
  image = axis.imshow(shares, cmap='Blues', vmin=0, vmax=1)
  for (i, j), count in np.ndenumerate(counts):
    axis.text(j, i, str(count), ha='center', va='center', fontsize=7, color='white' if shares[i, j] > 0.5 else 'black')
  axis.set_xticks(range(len(cifar10.CLASS_NAMES)), cifar10.CLASS_NAMES, rotation=45, ha='right')
  axis.set_yticks(range(len(cifar10.CLASS_NAMES)), cifar10.CLASS_NAMES)
  axis.set_xlabel('predicted class')
  axis.set_ylabel('true class')
  axis.set_title(title, fontsize=10)
  figure.colorbar(image, label='share of the true class')
  plotting.save(figure, path)


def per_class_table(counts: np.ndarray) -> str:
  """Markdown: each class's test accuracy, its count, and the class it is most often mistaken for."""
  accuracy = per_class_accuracy(counts)
  lines = ['| class | test acc % | images | most often predicted instead |', '|---|---|---|---|']
  for i, name in enumerate(cifar10.CLASS_NAMES):
    wrong = counts[i].copy()
    wrong[i] = 0
    instead = f'{cifar10.CLASS_NAMES[wrong.argmax()]} ({wrong.max()})' if wrong.any() else '–'
    lines.append(f'| {name} | {100 * accuracy[i]:.2f} | {counts[i].sum()} | {instead} |')
  total = np.trace(counts) / max(counts.sum(), 1)
  lines.append(f'| **all** | {100 * total:.2f} | {counts.sum()} | |')
  return '\n'.join(lines)


def confusion(folder: str | pathlib.Path, data_dir: str | None = None) -> tuple[pathlib.Path, pathlib.Path]:
  """Evaluates the finished run in `folder` on its test split; writes confusion.png and per_class.md there.

  `data_dir` replaces the config's data.data_dir (a run's relative path may not hold from here).
  """
  folder = pathlib.Path(folder)
  saved = run_dir.saved_config(folder)
  config = ml_collections.ConfigDict(saved)
  if data_dir is not None:
    config.data.data_dir = data_dir
  test = cifar10.load(
      config.data.data_dir or None,
      source=config.data.source,
      max_train_examples=1,
      max_eval_examples=config.data.max_eval_examples,
  ).test  # the split does not touch test
  model, step = restore_model(folder, config)
  summary = run_dir.read_json(folder / run_dir.SUMMARY_FILE) or {}
  finished = summary.get('status') == 'completed' and summary.get('steps') == step
  state = f'step {step:,}' + ('' if finished else ', an unfinished run: its latest checkpoint')
  print(f'{folder}: evaluating {config.model.name} at {state} on {len(test.images):,} test images', flush=True)
  counts = confusion_matrix(test.labels, predict(model, test.images, config), cifar10.NUM_CLASSES)
  accuracy = np.trace(counts) / counts.sum()
  title = (
      f'{folder.name}: {config.model.name} at {state}, test accuracy {100 * accuracy:.2f} % on {counts.sum():,} images'
  )
  plot_confusion(counts, title, folder / CONFUSION_FILE)
  (folder / PER_CLASS_FILE).write_text(
      f'# Per-class test accuracy: {folder.name}\n\n{title}. Rows of '
      f'{CONFUSION_FILE}: true class; columns: predicted.\n\n'
      f'{per_class_table(counts)}\n'
  )
  return folder / CONFUSION_FILE, folder / PER_CLASS_FILE
