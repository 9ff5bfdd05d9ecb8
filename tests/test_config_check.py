"""The names a config's name-valued keys may take, checked without JAX: each list is exactly the table of the module
that implements the names, so that neither can gain a name the other lacks."""

import jax.numpy as jnp
import pytest

from cifar_jax import config_check, config_lib
from cifar_jax.errors import ConfigError, check_choice
from cifar_jax.models import MODELS, layers
from cifar_jax.training import optim


@pytest.mark.parametrize(
    ('names', 'table'),
    [
        (config_check.MODELS, MODELS),
        (config_check.ACTIVATIONS, layers.ACTIVATIONS),
        (config_check.PLAN_KINDS, ('conv', 'res', *layers.POOLS)),  # the blocks upv.py builds, and the pools
        (config_check.OPTIMIZERS, optim.OPTIMIZERS),
        (config_check.SCHEDULES, optim.SCHEDULES),
    ],
    ids=['models', 'activations', 'plan_kinds', 'optimizers', 'schedules'],
)
def test_each_list_of_names_is_exactly_the_table_that_implements_them(names, table):
  assert len(set(names)) == len(names)
  assert set(names) == set(table)


def test_each_dtype_name_is_the_dtype_jax_computes_in():
  """The dtype keys are read with jnp.dtype: each name must name that exact dtype."""
  assert [jnp.dtype(name) for name in config_check.DTYPES] == [jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)]


def test_the_defaults_and_every_implemented_name_pass_the_check():
  config = config_lib.load_config_file(config_lib.DEFAULT_CONFIG)
  config_check.check_config(config)
  for key, names in (('model.name', MODELS), ('optimizer.name', optim.OPTIMIZERS), ('schedule.name', optim.SCHEDULES)):
    group, leaf = key.split('.')
    for name in names:
      changed = config.copy_and_resolve_references()
      changed[group][leaf] = name
      changed.data.val_fraction = 0.1  # the plateau schedule needs a validation split
      config_check.check_config(changed)


@pytest.mark.parametrize(
    ('value', 'hint'),
    [('sgdd', '; did you mean sgd?'), ('adamm', '; did you mean adam or adamw?'), ('lion', '')],
)
def test_an_unknown_name_lists_the_choices_and_the_closest_ones(value, hint):
  with pytest.raises(ConfigError) as error:
    check_choice('optimizer.name', value, optim.OPTIMIZERS)
  choices = ', '.join(sorted(optim.OPTIMIZERS))
  assert str(error.value) == f'optimizer.name={value!r} is not one of: {choices}{hint}'


def test_a_plan_step_of_an_unknown_kind_is_refused_by_the_light_check():
  config = config_lib.load_config_file('configs/upv/cnn.py')
  config.model.plan = (('conv', 8), ('dense', 4))
  with pytest.raises(ConfigError, match=r"model.plan='dense' is not one of: avg, conv, max, res"):
    config_check.check_config(config)
