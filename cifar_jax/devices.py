"""What the machine is, in one line: the one description of the devices every console line and record uses.

With `jax[cuda12]` installed and no usable GPU, JAX logs the CUDA plugin's failure as a dozen lines of traceback
and quietly runs on the CPU. `quiet_backend_errors` (called by every command before JAX starts its backends)
keeps those lines back, and `describe` says it in one: `CPU, 2 cores (no usable GPU: <the first line>)`.
Importing this module does not import JAX.
"""

import logging
import os

# The loggers through which JAX reports a backend (a plugin) that failed to start.
BACKEND_LOGGERS = ('jax._src.xla_bridge', 'jax_plugins')


class _BackendErrors(logging.Handler):
  """Keeps the first line of each warning the backend loggers emit, instead of printing its traceback."""

  def __init__(self) -> None:
    super().__init__(logging.WARNING)
    self.messages: list[str] = []

  def emit(self, record: logging.LogRecord) -> None:
    lines = record.getMessage().strip().splitlines()
    if lines and lines[0] not in self.messages:
      self.messages.append(lines[0])


_errors = _BackendErrors()


def quiet_backend_errors() -> None:
  """Routes the backend loggers' warnings to `describe` instead of the console (idempotent)."""
  for name in BACKEND_LOGGERS:
    logger = logging.getLogger(name)
    if _errors not in logger.handlers:
      logger.addHandler(_errors)
      logger.propagate = False


def fallback_note() -> str:
  """Why JAX is not on the accelerator it looked for ('' when nothing failed): the first line it logged."""
  return _errors.messages[0] if _errors.messages else ''


def describe() -> str:
  """The devices this process trains on: `CPU, 2 cores`, or `4 x NVIDIA H100 80GB HBM3 (gpu)`, and the reason
  when a GPU backend failed and JAX fell back to the CPU."""
  import jax  # pylint: disable=import-outside-toplevel  # here, so that a command can refuse bad input first

  devices = jax.devices()
  count = f'{len(devices)} x ' if len(devices) > 1 else ''
  if devices[0].platform != 'cpu':
    return f'{count}{devices[0].device_kind} ({devices[0].platform})'
  note = fallback_note()
  return f'{count}CPU, {os.cpu_count()} cores' + (f' (no usable GPU: {note})' if note else '')


def kind() -> str:
  """The device kind alone (`cpu`, `NVIDIA H100 80GB HBM3`): what a time estimate is valid for."""
  import jax  # pylint: disable=import-outside-toplevel

  device = jax.devices()[0]
  return 'cpu' if device.platform == 'cpu' else device.device_kind
