"""What the machine is, in one line: a GPU backend that fails to start is said once, not as a traceback.

No test here has a CUDA install; the failure is simulated as JAX reports it: a warning with a traceback on the
backend loggers (jax._src.xla_bridge, jax_plugins) while the CPU backend starts.
"""

import logging

from cifar_jax import devices


def test_a_failed_gpu_backend_is_one_clause_of_the_device_line_not_a_traceback(capfd):
  devices.quiet_backend_errors()
  try:
    raise RuntimeError('cuInit failed: CUDA_ERROR_NO_DEVICE\n  (11 more lines of the plugin)')
  except RuntimeError:
    logging.getLogger('jax_plugins.xla_cuda12').warning(
        'Jax plugin configuration error: Exception when calling jax_plugins.xla_cuda12.initialize()', exc_info=True
    )
  logging.getLogger('jax._src.xla_bridge').warning('An NVIDIA GPU may be present on this machine, but ...')
  assert capfd.readouterr().err == ''  # nothing printed: no traceback
  line = devices.describe()
  assert line.startswith(('CPU, ', '4 x CPU, ')), line
  assert line.endswith(
      '(no usable GPU: Jax plugin configuration error: Exception when calling jax_plugins.xla_cuda12.initialize())'
  )
  assert '\n' not in line


def test_a_healthy_cpu_says_cores_and_nothing_else():
  devices._errors.messages.clear()  # pylint: disable=protected-access
  assert 'no usable GPU' not in devices.describe()
