"""cifar_jax: CIFAR-10 training research in JAX and Flax NNX."""
