"""Turns SIGTERM and Ctrl-C into a request to checkpoint and stop at the end of the current step.

The first signal is acknowledged at once and recorded (by a watcher thread, even while the main thread waits on
the device); the training loop then writes a checkpoint, waits until it is on disk, and raises `Stopped`, whose
exit status is 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), the shell's convention for a
program ended by a signal. A second signal ends the process at once with that status, without a checkpoint,
whatever the main thread is doing (even writing a checkpoint): Orbax writes a checkpoint into a temporary folder
and renames it when complete, so one cut short is never taken for a checkpoint and the previous one stays
usable (tests/test_faults.py checks both).

A time box inside the process (`TimeBox`, used by `cifar_jax.reproduce`) asks for the same checkpoint-and-stop
with `request_stop`, without a signal, so that asking again can never count as the second, hard one.
"""

import os
import select
import signal
import sys
import threading
import types
from typing import Any, NoReturn, Self

from cifar_jax.errors import UserError


def exit_status(signal_name: str) -> int:
  """128 + the signal's number: what a shell reports for a program a signal ended."""
  return 128 + signal.Signals[signal_name]


def _spoken(signal_name: str) -> str:
  return 'Ctrl-C' if signal_name == 'SIGINT' else signal_name


class Stopped(UserError):
  """SIGTERM or Ctrl-C: a checkpoint was written at the current step and the run can be resumed."""

  def __init__(self, message: str, signal_name: str = 'SIGINT') -> None:
    super().__init__(message)
    self.exit_status = exit_status(signal_name)


_requested_in_process: str | None = None  # see request_stop


def request_stop(signal_name: str | None = 'SIGTERM') -> None:
  """Makes the StopRequest in force, and any entered later, report `signal_name` as if that signal had come
  once (None withdraws the request): the run checkpoints at its current step and stops."""
  global _requested_in_process
  _requested_in_process = signal_name


class StopRequest:
  """While active, the first SIGTERM or SIGINT is acknowledged at once and recorded; a second one ends the
  process at once, whatever the main thread is doing.

  Python runs signal handlers only in the main thread between bytecodes, so a main thread waiting on a long
  device call would hear nothing until it returns. Python's C-level handler writes each signal's number to a
  wakeup pipe (`signal.set_wakeup_fd`) the moment it arrives, though: a watcher thread reads it, acknowledges
  the first signal and ends the process on the second; the handlers set in the main thread do nothing."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self) -> None:
    self._received: str | None = None
    self._previous: dict[int, object] = {}
    self._previous_fd = -1
    self._pipe: tuple[int, int] | None = None
    self._watcher: threading.Thread | None = None
    self._lock = threading.Lock()

  @property
  def received(self) -> str | None:
    """The signal to stop for: the first one received, or the one `request_stop` named; None to go on."""
    if self._pipe is not None:
      self._read_signals()  # a signal that came just now counts now, not once the watcher has run
    return self._received or _requested_in_process

  def _handle(self, signum: int) -> None:
    name = signal.Signals(signum).name
    if self._received is None:
      self._received = name
      _say(
          f'{_spoken(name)}: finishing the current step and writing a checkpoint; '
          f'press Ctrl-C again to stop at once without one'
      )
      return
    stop_now(name)

  def _read_signals(self) -> bool:
    """Handles the signal numbers waiting in the wakeup pipe, each once whichever thread reads it; False once
    the pipe is closed."""
    with self._lock:
      try:
        data = os.read(self._pipe[0], 64)
      except BlockingIOError:
        return True
      for signum in data:
        if signum in self.SIGNALS:
          self._handle(signum)
      return bool(data)

  def _watch(self, read_fd: int) -> None:
    """Waits for signal numbers in the wakeup pipe and handles them, until the pipe is closed."""
    while True:
      select.select([read_fd], [], [])
      if not self._read_signals():
        return

  def __enter__(self) -> Self:
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
      return self
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # the C handler must never block
    os.set_blocking(read_fd, False)
    self._pipe = (read_fd, write_fd)
    self._watcher = threading.Thread(target=self._watch, args=(read_fd,), name='stop-request', daemon=True)
    self._watcher.start()
    self._previous = {sig: signal.signal(sig, _heard_by_the_watcher) for sig in self.SIGNALS}
    self._previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    return self

  def __exit__(self, *exc_info: object) -> None:
    if self._pipe is None:
      return
    signal.set_wakeup_fd(self._previous_fd)
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    read_fd, write_fd = self._pipe
    os.close(write_fd)  # the watcher reads the end of the pipe and returns
    self._watcher.join()
    self._pipe = None
    os.close(read_fd)


def _heard_by_the_watcher(signum: int, frame: types.FrameType | None) -> None:
  """The main thread's handler: nothing to do, the watcher thread has heard the signal through the pipe."""
  del signum, frame


def stop_now(signal_name: str) -> NoReturn:
  """Ends the process at once with the signal's exit status, skipping clean-up (which could block or raise)."""
  _say(f'{_spoken(signal_name)}: stopped at once, without a checkpoint; the same command resumes from the last one')
  os._exit(exit_status(signal_name))  # pylint: disable=protected-access


def _say(message: str) -> None:
  """Prints `message` on stderr at once, flushing stdout first so that the two stay in order."""
  sys.stdout.flush()
  print(message, file=sys.stderr, flush=True)


class TimeBox:
  """A stop source of its own: turns a deadline (and a SIGTERM from outside, between runs) into the stop request
  a run sees (`request_stop`); the reproduce chain's time box.

  When the deadline passes, a watcher thread calls `preemption.request_stop`: the run in progress sees it at
  its next step (after its compilation, if it is compiling), checkpoints and stops, and a run started later
  stops at once. No signal is sent, so the request can never count as the second, hard one. A SIGTERM from
  outside while a run trains is that run's to handle; between runs this box's handler records it.
  """

  def __init__(self, seconds: float | None) -> None:
    self.seconds = seconds
    self.expired = False  # the deadline passed
    self.requested = False  # any stop request: the deadline's or one from outside
    self._wake, self._closed = threading.Event(), threading.Event()
    self._previous: Any = None
    self._watcher = threading.Thread(target=self._watch, daemon=True)

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del signum, frame
    self.requested = True
    request_stop()
    self._wake.set()

  def _watch(self) -> None:
    if self._wake.wait(self.seconds) or self._closed.is_set():
      return
    self.expired = self.requested = True
    print('time box reached: the run in progress checkpoints at its next step and stops', file=sys.stderr, flush=True)
    request_stop()

  def __enter__(self) -> Self:
    self._previous = signal.signal(signal.SIGTERM, self._handle)
    self._watcher.start()
    return self

  def __exit__(self, *exc_info: object) -> None:
    self._closed.set()
    self._wake.set()
    self._watcher.join()
    signal.signal(signal.SIGTERM, self._previous)
    request_stop(None)
