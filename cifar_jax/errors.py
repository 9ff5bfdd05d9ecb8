"""User-facing errors: bad config values, bad data. The CLI prints them as one line, no traceback."""

import contextlib
import sys
from collections.abc import Iterable, Iterator


class UserError(Exception):
  """A mistake in what the user asked for or pointed at; reported without a traceback."""


class ConfigError(UserError):
  """A config key holds a value that is unknown or out of range."""


class DataError(UserError):
  """The data folder is missing, incomplete or holds files that are not CIFAR-10."""


def check_choice(key: str, value: object, choices: Iterable[str]) -> None:
  """Raises ConfigError naming `key` and listing `choices` unless `value` is one of them."""
  choices = sorted(choices)
  if value not in choices:
    raise ConfigError(f'{key}={value!r} is not one of: {", ".join(choices)}')


@contextlib.contextmanager
def reported_in_one_line() -> Iterator[None]:
  """For a command's main: a UserError becomes `error: <message>` on stderr and exit status 1, no traceback."""
  try:
    yield
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
