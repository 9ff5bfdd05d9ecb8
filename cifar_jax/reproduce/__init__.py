"""`python -m cifar_jax.reproduce`: both reports in one resumable, time-boxed chain (see __main__.py)."""
