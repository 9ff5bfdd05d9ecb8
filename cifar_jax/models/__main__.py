"""Prints every registered model with its parameter count: python -m cifar_jax.models."""

from flax import nnx

from cifar_jax.models import MODELS, count_params, create_model


def main() -> None:
  """Prints an aligned name / parameter-count table, building abstract models (no memory, no compute)."""
  counts = {
      name: count_params(nnx.eval_shape(lambda name=name: create_model(name, rngs=nnx.Rngs(0))))
      for name in MODELS
  }
  width = max(map(len, counts))
  print(f'{"model":<{width}}  {"params":>12}')
  for name, count in counts.items():
    print(f'{name:<{width}}  {count:>12,}')


if __name__ == '__main__':
  main()
