"""The checks of a run config that need no JAX, Flax, optax, TensorFlow or Orbax: every name-valued key and every
plain number, so that a command refuses a bad config in well under two seconds (cifar_jax/main.py runs them before
the heavy imports; the sweep command runs them on every variant).

The names live here, importable without JAX; the modules that implement them (the model registry, the activations,
the optimizers and schedules, the compute dtypes) keep their own tables, and tests/test_config_check.py asserts that
each table holds exactly these names. trainer.check_config adds what needs JAX: the model's own options (the model
built abstractly), the batch sizes against the device count and an init_from file.
"""

import ml_collections

from cifar_jax import config_lib
from cifar_jax.data import augment_config, cifar10, normalization
from cifar_jax.errors import ConfigError, check_choice

# cifar_jax/models/__init__.py MODELS
MODELS = (
    'mlp',
    'lenet5',
    'tutorial_cnn',
    'vgg11',
    'vgg13',
    'vgg16',
    'vgg19',
    'resnet18',
    'resnet34',
    'upv_cnn',
    'upv_resnet',
    'upv_resnet_avgpool',
    'upv_resnet_maxpool',
    'upv_resnet_final',
    'speedrun_net',
)
# cifar_jax/models/layers.py ACTIVATIONS
ACTIVATIONS = ('relu', 'leaky_relu', 'relu6', 'elu', 'tanh', 'silu', 'sigmoid', 'softmax', 'gelu')
# The kinds of a UPV net's plan steps (models/upv.py): ConvBlock, ResBlock, and layers.py POOLS
PLAN_KINDS = ('conv', 'res', 'max', 'avg')
# The compute dtype and muon's Newton-Schulz dtype, by the names jnp.dtype takes
DTYPES = ('float32', 'bfloat16')
# training/optim.py OPTIMIZERS and SCHEDULES
OPTIMIZERS = ('sgd', 'adam', 'adamw', 'adagrad', 'rmsprop', 'adadelta', 'muon')
SCHEDULES = (
    'constant',
    'step',
    'multistep',
    'exponential',
    'cosine',
    'cosine_epoch',
    'warmup_cosine',
    'onecycle',
    'linear',
    'plateau',
)
PARALLELISMS = ('jit', 'pmap')  # parallel.py: a sharded mesh, or the per-device pmap model with explicit pmean
PIPELINES = ('tfdata', 'device')  # data/pipeline.py: host tf.data, or the dataset on the accelerators
# Test-time augmentation, airbench's levels (training/steps.py): the weight of each view's logits in their average.
TTA_LEVELS = {
    0: 'none',
    1: 'mirror: 1/2 each of the image and its mirror',
    2: 'mirror + translate: 1/4 each of the image and its mirror, 1/8 each of the image shifted by one pixel '
    'up-left and down-right (reflect padding) and of their mirrors',
}


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses an unknown key, an unknown name or an out-of-range number, naming the key; imports nothing heavy."""
  config_lib.check_values(config)
  check_choice('model.name', config.model.name, MODELS)
  if 'activation' in config.model:
    check_choice('model.activation', config.model.activation, ACTIVATIONS)
  check_dropout(config.model.get('dropout', 0.0))
  for kind, *_ in config.model.get('plan', ()):
    check_choice('model.plan', kind, PLAN_KINDS)
  check_choice('dtype', config.dtype, DTYPES)
  check_choice('parallelism', config.parallelism, PARALLELISMS)
  check_choice('data.source', config.data.source, cifar10.SOURCES)
  check_choice('data.pipeline', config.data.pipeline, PIPELINES)
  check_optim_config(config)
  check_fused_config(config)
  augment_config.check_augment_config(config.augment)
  normalization.statistics(config.data)
  check_choice('eval.tta', str(config.eval.tta), map(str, TTA_LEVELS))


def check_dropout(rate: float) -> None:
  """Raises ConfigError unless 0 <= rate < 1 (a rate of 1 would drop everything)."""
  if not 0.0 <= rate < 1.0:
    raise ConfigError(f'model.dropout={rate!r} is outside [0, 1)')


def _check_muon_config(cfg: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for a muon setting out of range."""
  check_choice('optimizer.muon_dtype', cfg.muon_dtype, DTYPES)
  if not cfg.muon_learning_rate > 0:
    raise ConfigError(f'optimizer.muon_learning_rate={cfg.muon_learning_rate!r} must be > 0')
  if cfg.muon_ns_steps < 1:
    raise ConfigError(f'optimizer.muon_ns_steps={cfg.muon_ns_steps!r} must be >= 1')
  for key in ('muon_momentum', 'head_learning_rate', 'whiten_bias_epochs'):
    if cfg[key] < 0:
      raise ConfigError(f'optimizer.{key}={cfg[key]!r} must be >= 0')


def check_optim_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for an unknown optimizer or schedule or an out-of-range value."""
  check_choice('optimizer.name', config.optimizer.name, OPTIMIZERS)
  check_choice('schedule.name', config.schedule.name, SCHEDULES)
  if not config.optimizer.learning_rate > 0:
    raise ConfigError(f'optimizer.learning_rate={config.optimizer.learning_rate!r} must be > 0')
  for key in ('momentum', 'weight_decay', 'grad_clip_norm'):
    if config.optimizer[key] < 0:
      raise ConfigError(f'optimizer.{key}={config.optimizer[key]!r} must be >= 0')
  if config.optimizer.nesterov and not config.optimizer.momentum > 0:
    raise ConfigError('optimizer.nesterov=True needs optimizer.momentum > 0 (PyTorch refuses Nesterov without it)')
  if not 0 < config.schedule.plateau_threshold < 1:
    raise ConfigError(f'schedule.plateau_threshold={config.schedule.plateau_threshold!r} is outside (0, 1)')
  if config.optimizer.name == 'muon':
    _check_muon_config(config.optimizer)
  if config.schedule.plateau_cooldown < 0:
    raise ConfigError(f'schedule.plateau_cooldown={config.schedule.plateau_cooldown!r} must be >= 0')
  if config.schedule.name == 'plateau' and config.data.val_fraction <= 0:
    raise ConfigError('schedule.name=plateau watches the validation loss: set data.val_fraction > 0')


def check_fused_config(config: ml_collections.ConfigDict) -> None:
  """Fused steps need the on-device pipeline (tf.data batches come from the host, one per step: nothing to
  fuse without stacking K host batches, which costs K times the transfer memory and gains nothing on a
  host-bound pipeline) and the jit mesh (pmap augments each device's slice with the whole batch's key)."""
  k = config.steps_per_call
  if k < 1:
    raise ConfigError(f'steps_per_call={k} must be >= 1')
  if k > 1 and config.data.pipeline != 'device':
    raise ConfigError(
        f'steps_per_call={k} needs data.pipeline=device (got {config.data.pipeline!r}): '
        f'only the on-device pipeline makes its batches inside the fused program'
    )
  if k > 1 and config.parallelism != 'jit':
    raise ConfigError(f'steps_per_call={k} needs parallelism=jit (got {config.parallelism!r})')
