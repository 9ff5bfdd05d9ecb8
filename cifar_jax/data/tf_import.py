"""Imports TensorFlow for the input pipeline while keeping it off the GPU, which belongs to JAX.

Every TensorFlow import of cifar_jax goes through here (clu's TensorBoard writer included), so that the first
one is quiet: its start-up notices are not our run's output."""

import functools
import os
import types


@functools.cache
def import_tensorflow() -> types.ModuleType:
  """Returns the `tensorflow` module with GPUs hidden from it so it never grabs accelerator memory."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # C++ info and warning lines
  os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')  # the oneDNN notice, which the level above no longer hides
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], 'GPU')
  return tf
