"""The one wrapper every command runs through (`python -m cifar_jax.main|sweep|report|analysis|figures|reproduce`):
what each does first, and one policy for errors and signals.

- Bad input (a `UserError`): one line, `error: <message>`, exit status 1, no traceback.
- SIGTERM or Ctrl-C while a run trains: the run checkpoints and stops (training/preemption.py); the command
  prints how to resume and exits 128 + the signal's number (143, 130).
- SIGTERM or Ctrl-C anywhere else (loading, compiling, between runs, writing a report): there is nothing in
  progress to checkpoint; the command stops at once with the same status, and the same command resumes.

`prepare` runs before anything heavy is imported, so that a command that refuses its input does so in well under
two seconds: keep it light.
"""

from collections.abc import Callable, Sequence
import shlex
import signal
import sys
import types
from typing import NoReturn

from absl import logging as absl_logging

from cifar_jax import compile_cache, devices
from cifar_jax.errors import UserError
from cifar_jax.training.preemption import Stopped, stop_now

# Flags that say where things are on the machine that ran a command, not what ran: left out of the command a
# record or a page publishes (an absolute path of one machine means nothing on another).
MACHINE_FLAGS = ('--workdir', '--data_dir', '--data-dir', '--margin-seconds', '--margin_seconds')
MACHINE_SETTINGS = ('data.data_dir',)


class _Terminated(BaseException):
  """SIGTERM outside a run's own handler: raised in the main thread, as Ctrl-C raises KeyboardInterrupt."""


def _terminate(signum: int, frame: types.FrameType | None) -> None:
  del signum, frame
  raise _Terminated


def prepare() -> None:
  """What every command does first: Orbax's per-checkpoint INFO lines off, a failed GPU backend reported in one
  line (cifar_jax/devices.py), JAX's persistent compilation cache on (cifar_jax/compile_cache.py)."""
  absl_logging.set_verbosity(absl_logging.WARNING)
  devices.quiet_backend_errors()
  compile_cache.enable_compilation_cache()


def run(body: Callable[[], int | None]) -> NoReturn:
  """Prepares, runs a command's `body` and exits with its status (None: 0) under the policy above."""
  prepare()
  previous = signal.signal(signal.SIGTERM, _terminate)  # a run's own handler takes over while it trains
  try:
    status = body()
  except Stopped as e:  # not an error: checkpointed as asked; the same command resumes
    print(e, file=sys.stderr, flush=True)
    sys.exit(e.exit_status)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(1)
  except KeyboardInterrupt:
    stop_now('SIGINT')
  except _Terminated:
    stop_now('SIGTERM')
  finally:
    signal.signal(signal.SIGTERM, previous)
  sys.exit(status or 0)


def published_command(module: str, argv: Sequence[str]) -> str:
  """`python -m MODULE ARGS` as a record publishes it: without the flags and settings that name places of this
  machine (MACHINE_FLAGS, `--set=data.data_dir=...`)."""
  kept, skip = [], False
  for arg in argv:
    name, has_value, value = arg.partition('=')
    if skip:
      skip = False
    elif name in MACHINE_FLAGS:
      skip = not has_value
    elif name == '--set' and value.partition('=')[0] in MACHINE_SETTINGS:
      continue
    else:
      kept.append(arg)
  return shlex.join(['python', '-m', module, *kept])
