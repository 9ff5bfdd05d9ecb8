"""Sweep configs for `python -m cifar_jax.sweep`: one per study of the two reports."""
