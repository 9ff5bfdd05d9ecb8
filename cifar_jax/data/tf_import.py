"""Imports TensorFlow for the input pipeline while keeping it off the GPU, which belongs to JAX."""

import functools
import os
import types


@functools.cache
def import_tensorflow() -> types.ModuleType:
  """Returns the `tensorflow` module with GPUs hidden from it so it never grabs accelerator memory."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TensorFlow's start-up notices are not our run's output
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], 'GPU')
  return tf
