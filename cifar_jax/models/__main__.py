"""Prints every registered model with its parameter count and its options: python -m cifar_jax.models.

The options are the `model.<key>` config keys each model accepts, with their defaults; `configs/default.py`
documents `model.name`, `model.activation` and `model.dropout`, and this table documents the rest.
"""

import functools
import inspect

from flax import nnx

from cifar_jax.models import MODELS, count_params, create_model, model_options


def option_defaults(name: str) -> dict[str, object]:
  """Each option of model `name` with its default: bound by the registry's alias, else the constructor's."""
  entry = MODELS[name]
  bound = entry.keywords if isinstance(entry, functools.partial) else {}
  cls = entry.func if isinstance(entry, functools.partial) else entry
  parameters = inspect.signature(cls.__init__).parameters
  return {key: bound.get(key, parameters[key].default) for key in model_options(name)}


def main() -> None:
  """Prints an aligned name / parameter-count / options table, building abstract models (no memory, no compute)."""
  counts = {
      name: count_params(nnx.eval_shape(lambda name=name: create_model(name, rngs=nnx.Rngs(0)))) for name in MODELS
  }
  width = max(map(len, counts))
  print(f'{"model":<{width}}  {"params":>12}  options (model.<key>=default)')
  for name, count in counts.items():
    options = ', '.join(f'{key}={value!r}' for key, value in option_defaults(name).items())
    print(f'{name:<{width}}  {count:>12,}  {options}')


if __name__ == '__main__':
  main()
