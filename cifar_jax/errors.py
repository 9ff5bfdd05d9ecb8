"""User-facing errors: bad config values, bad data. Every command prints them as one line, no traceback
(cifar_jax/cli.py)."""

import difflib
from collections.abc import Iterable


class UserError(Exception):
  """A mistake in what the user asked for or pointed at; reported without a traceback."""


class ConfigError(UserError):
  """A config key holds a value that is unknown or out of range."""


class DataError(UserError):
  """The data folder is missing, incomplete or holds files that are not CIFAR-10."""


def check_choice(key: str, value: object, choices: Iterable[str]) -> None:
  """Raises ConfigError naming `key`, listing `choices` and the closest ones unless `value` is one of them."""
  choices = sorted(choices)
  if value not in choices:
    close = difflib.get_close_matches(str(value), choices, n=2)
    hint = f'; did you mean {" or ".join(close)}?' if close else ''
    raise ConfigError(f'{key}={value!r} is not one of: {", ".join(choices)}{hint}')
