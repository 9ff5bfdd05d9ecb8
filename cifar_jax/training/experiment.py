"""One experiment built from its config: the model, its train state, the compiled steps and the input pipeline.

`build_experiment` is the one place this sequence is written; the trainer, the throughput benchmark and
any other engine that trains a config take it from here, so they cannot drift apart.
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from jax.typing import ArrayLike
import optax
from flax import nnx

from cifar_jax import parallel
from cifar_jax.training import fused, optim, steps
from cifar_jax.data import augment_jax, cifar10, normalization
from cifar_jax.data.batch import Batch
from cifar_jax.data.pipeline import Pipeline, create_pipeline
from cifar_jax.models import count_params, create_model, torch_weights


def build_model(config: ml_collections.ConfigDict, seed: jax.Array | int | None = None) -> nnx.Module:
  """The configured model, initialised from `seed` (by default `config.seed`; traced inside `init_model`)."""
  kwargs = {k: v for k, v in config.model.to_dict().items() if k != 'name'}
  rngs = nnx.Rngs(params=jax.random.key(config.seed if seed is None else seed))  # what Rngs(params=int) makes
  return create_model(config.model.name, rngs=rngs, dtype=jnp.dtype(config.dtype), **kwargs)


def init_model(config: ml_collections.ConfigDict) -> nnx.Module:
  """The configured model from one compiled initialisation (not one per layer), the seed an argument of it, so
  that runs that differ only in their seed share the program."""
  return nnx.jit(lambda seed: build_model(config, seed))(jnp.asarray(config.seed, jnp.int32))


def init_from_data(model: nnx.Module, train_images: ArrayLike, normalize: normalization.Normalization | None) -> None:
  """The data-dependent init step: a model with `init_from_data(images)` (the speedrun net's patch whitening) gets
  the first `model.init_examples` of `train_images` (uint8 [N, 32, 32, 3], on the host or already on the device),
  scaled and normalised as every batch is, in one compiled call; other models are left as they are."""
  if hasattr(model, 'init_from_data'):
    _init_from_data(model, train_images[: model.init_examples], normalize)


@functools.partial(nnx.jit, static_argnums=2)
def _init_from_data(model: nnx.Module, images: jax.Array, normalize: normalization.Normalization | None) -> None:
  images = images.astype(jnp.float32) / 255
  model.init_from_data(images if normalize is None else augment_jax.normalize(images, normalize))


def check_inputs(config: ml_collections.ConfigDict) -> None:
  """Refuses a bad data.normalization (data.mean, data.std) and an init_from file that cannot be read here (a missing
  file, another suffix, a .pth without torch), naming the key or the file, before anything is loaded or compiled."""
  normalization.statistics(config.data)
  if config.init_from:
    torch_weights.check_file(config.init_from)


def load_initial_weights(model: nnx.Module, config: ml_collections.ConfigDict) -> str | None:
  """Copies the PyTorch weights of `config.init_from` (a .pth / .pt, or an .npz of its state_dict) into `model`, in
  place; returns the banner's line on them, or None when the run starts from `config.seed`'s initialisation."""
  if not config.init_from:
    return None
  state_dict = torch_weights.read_state_dict(config.init_from)
  torch_weights.load_state_dict(model, state_dict)
  return (
      f'initial weights: the {len(state_dict)} PyTorch tensors of {config.init_from}, trained (data.normalization '
      f'says) on inputs standardised as {config.data.normalization!r}'
  )


def create_train_state(model: nnx.Module, tx: optax.GradientTransformation) -> tuple[nnx.GraphDef, steps.TrainState]:
  """Splits the model into its static graph and a fresh TrainState at step 0."""
  graphdef, params, model_state = steps.split_model(model)
  state = steps.TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      model_state=model_state,
      opt_state=tx.init(params),
      plateau=optim.init_plateau(),
  )
  return graphdef, state


def step_config(config: ml_collections.ConfigDict, axis_name: str | None = None) -> steps.StepConfig:
  """The settings a step closes over, read from `config`: the one place (the trainer, the vectorized group, the
  benchmarks), so that none drops a penalty. The seed is not one: the steps take it as an argument."""
  reg = config.regularization
  return steps.StepConfig(
      l1=reg.l1,
      l2=reg.l2,
      label_smoothing=reg.label_smoothing,
      dtype=jnp.dtype(config.dtype),
      axis_name=axis_name,
      tta=config.eval.tta,
  )


def initial_state(
    config: ml_collections.ConfigDict, steps_per_epoch: int, model: nnx.Module | None = None
) -> tuple[nnx.GraphDef, optim.LearningRate, optax.GradientTransformation, steps.TrainState]:
  """The schedule (over `steps_per_epoch`) and optimizer of `config`, and the train state at step 0 of `model`
  (default: built from the config): what a run of this config trains, and what its checkpoints restore into."""
  model = build_model(config) if model is None else model
  learning_rate_fn = optim.create_learning_rate_fn(config, steps_per_epoch)
  tx = optim.create_optimizer(config, learning_rate_fn)
  graphdef, state = create_train_state(model, tx)
  return graphdef, learning_rate_fn, tx, state


@dataclasses.dataclass(frozen=True)
class Experiment:
  """Everything a training engine needs for one config; the state is the host copy at step 0."""

  dp: parallel.DataParallel
  graphdef: nnx.GraphDef
  state: steps.TrainState  # on the host: restore a checkpoint into it, then `dp.put_state`
  seed: jax.Array  # config.seed on the devices: an argument of the compiled steps, not a constant in them
  step_program: Callable[[steps.TrainState, Batch, jax.Array], tuple[steps.TrainState, steps.TrainMetrics]]
  eval_step: Callable[[steps.TrainState, Batch], steps.EvalMetrics]
  learning_rate_fn: optim.LearningRate  # the schedule, and the plateau's update after each validation
  pipeline: Pipeline
  fused: fused.FusedSteps | None  # steps_per_call > 1: that many train steps per dispatch (device pipeline only)
  steps_per_epoch: int
  total_steps: int  # num_epochs of steps, capped by num_train_steps when that is set
  num_params: int
  inputs: tuple[str, ...]  # for the banner: how inputs are standardised, and the initial weights when not random

  def train_step(self, state: steps.TrainState, batch: Batch) -> tuple[steps.TrainState, steps.TrainMetrics]:
    """One compiled train step of this run (its seed given); the state is donated."""
    return self.step_program(state, batch, self.seed)

  @property
  def num_epochs(self) -> int:
    """The epochs the run reaches (the last possibly partial): fewer than `num_epochs` under a step cap."""
    return -(-self.total_steps // self.steps_per_epoch)


def build_experiment(
    config: ml_collections.ConfigDict, data: cifar10.Cifar10, pipeline: Pipeline | None = None
) -> Experiment:
  """The experiment of a config that `train.check_config` accepted, over `data`.

  `pipeline` replaces the configured one (the benchmark feeds one compiled step from several it builds once).
  """
  steps_per_epoch = cifar10.steps_per_epoch(len(data.train), config.batch_size)
  total_steps = config.num_epochs * steps_per_epoch
  if config.num_train_steps >= 0:
    total_steps = min(total_steps, config.num_train_steps)
  dp = parallel.create_parallel(config.parallelism)
  model = init_model(config)
  parallel.set_batch_axis(model, dp.axis_name)
  init_from_data(model, data.train.images, normalization.of_inputs(config.data))
  initial_weights = load_initial_weights(model, config)  # replaces the initialisation, the data-dependent one too
  graphdef, learning_rate_fn, tx, state = initial_state(config, steps_per_epoch, model)
  train_step, eval_step = steps.make_steps(graphdef, tx, step_config(config, dp.axis_name))
  pipeline = pipeline if pipeline is not None else create_pipeline(data, config, dp.mesh)
  seed = dp.put_state(jnp.asarray(config.seed, jnp.int32))
  return Experiment(
      dp=dp,
      graphdef=graphdef,
      state=state,
      seed=seed,
      step_program=dp.compile_train(train_step),
      eval_step=dp.compile_eval(eval_step),
      learning_rate_fn=learning_rate_fn,
      pipeline=pipeline,
      fused=fused.FusedSteps(train_step, pipeline, dp, seed) if config.steps_per_call > 1 else None,
      steps_per_epoch=steps_per_epoch,
      total_steps=total_steps,
      num_params=count_params(model),
      inputs=(normalization.describe(config.data),) + ((initial_weights,) if initial_weights else ()),
  )
