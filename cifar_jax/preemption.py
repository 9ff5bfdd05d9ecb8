"""Turns SIGTERM and Ctrl-C into a request to checkpoint and stop at the end of the current step."""

import signal
import threading
import types
from typing import Self


class StopRequest:
  """While active, the first SIGTERM or SIGINT is recorded (a second one acts as usual)."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self) -> None:
    self.received: str | None = None
    self._previous: dict[int, object] = {}

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del frame
    self.received = signal.Signals(signum).name
    for sig, handler in self._previous.items():  # a second signal stops at once
      signal.signal(sig, handler)

  def __enter__(self) -> Self:
    if threading.current_thread() is threading.main_thread():  # handlers can only be set there
      self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
    return self

  def __exit__(self, *exc_info: object) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
