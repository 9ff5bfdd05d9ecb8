"""Config files and their dotted keys: loading a file, refusing keys the defaults lack, setting a key from
the command line, and the `-h` help of the programs that take a config."""

import ast
import difflib
import functools
import importlib.util
import json
import pathlib
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from absl import flags
import ml_collections

from cifar_jax.errors import ConfigError

# Every key a run reads, documented; found beside the package so that it works from any folder of a checkout.
DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'default.py'
MODEL_GROUP = 'model'  # its keys depend on the model: the model registry checks them (python -m cifar_jax.models)
HELP_FLAGS = ('-h', '--help', '-help')


def load_config_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The ConfigDict that `get_config()` of the config file at `path` returns (relative to the current folder)."""
  file = pathlib.Path(path)
  if not file.is_file():
    raise ConfigError(f'config file {path} not found (paths are relative to the repository root: run from there)')
  spec = importlib.util.spec_from_file_location('cifar_jax_config_' + re.sub(r'\W', '_', file.stem), file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """Nested mappings as one level of dotted keys; lists become tuples so that values compare and hash."""
  flat = {}
  for key, value in tree.items():
    if hasattr(value, 'items'):
      flat |= flatten(value, f'{prefix}{key}.')
    else:
      flat[f'{prefix}{key}'] = tuple(value) if isinstance(value, list) else value
  return flat


def varied_keys(configs: Sequence[Mapping[str, Any]], first: Iterable[str] = ()) -> list[str]:
  """`first`, then every other dotted key whose value differs between the flat `configs`, in order of appearance."""
  keys = list(dict.fromkeys(first))
  for config in configs:
    for key in config:
      if key not in keys and len({repr(c.get(key)) for c in configs}) > 1:
        keys.append(key)
  return keys


def config_as_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as the plain JSON object config.json holds (tuples become lists)."""
  return json.loads(config.to_json_best_effort())


def flat_keys(config: ml_collections.ConfigDict) -> list[str]:
  """The dotted names of every value of `config`, in its order (`optimizer.learning_rate`)."""
  return list(flatten(config.to_dict()))


@functools.cache
def default_keys() -> tuple[str, ...]:
  """The dotted keys of configs/default.py."""
  return tuple(flat_keys(load_config_file(DEFAULT_CONFIG)))


def unknown_key_error(key: str, known: list[str] | tuple[str, ...]) -> ConfigError:
  """The error for dotted `key` missing from `known`: the closest keys of its group (or of all, for a mistyped
  group), those that look alike or else the three nearest."""
  group = key.rpartition('.')[0]
  siblings = {k.rpartition('.')[2]: k for k in known if k.rpartition('.')[0] == group}
  word, candidates = (key.rpartition('.')[2], siblings) if siblings else (key, {k: k for k in known})
  close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.5) or difflib.get_close_matches(
      word, candidates, n=3, cutoff=0
  )
  hint = f'; did you mean {" or ".join(candidates[c] for c in close)}?' if close else ''
  return ConfigError(f'unknown config key {key!r}{hint} (every key is documented in configs/default.py)')


def check_known_keys(config: ml_collections.ConfigDict) -> None:
  """Refuses a key configs/default.py does not have (a typo would otherwise be kept silently), outside `model.`."""
  known = default_keys()
  for key in flat_keys(config):
    if key not in known and not key.startswith(MODEL_GROUP + '.'):
      raise unknown_key_error(key, known)


def check_values(config: ml_collections.ConfigDict) -> None:
  """The checks that need no JAX, run before it is imported: unknown keys, and the ranges of plain numbers."""
  check_known_keys(config)
  if config.num_epochs < 0:
    raise ConfigError(f'num_epochs={config.num_epochs} must be >= 0')
  if config.num_train_steps < -1:
    raise ConfigError(f'num_train_steps={config.num_train_steps} must be -1 (from num_epochs) or >= 0')
  if not 0 <= config.data.val_fraction < 1:
    raise ConfigError(f'data.val_fraction={config.data.val_fraction} must be in [0, 1)')
  if not 0 <= config.regularization.label_smoothing < 1:
    raise ConfigError(f'regularization.label_smoothing={config.regularization.label_smoothing} must be in [0, 1)')
  for key in ('l1', 'l2'):
    if config.regularization[key] < 0:
      raise ConfigError(f'regularization.{key}={config.regularization[key]} must be >= 0')
  if config.log_every_steps < 1:
    raise ConfigError(f'log_every_steps={config.log_every_steps} must be >= 1')
  for key in ('checkpoint_every_epochs', 'checkpoint_every_seconds'):
    if config[key] < 0:
      raise ConfigError(f'{key}={config[key]} must be >= 0 (0: off)')


def check_settings(texts: Sequence[str]) -> ml_collections.ConfigDict:
  """`--set=KEY=VALUE` lines tried on configs/default.py, before anything heavy is imported, so that a mistyped
  key costs well under two seconds; returns the default config with them set."""
  config = load_config_file(DEFAULT_CONFIG)
  for text in texts:
    key, value = parse_assignment(text, config)
    try:
      set_key(config, key, value)
    except ConfigError as e:
      raise ConfigError(f'--set={text}: {e}') from e
  return config


def _parent(config: ml_collections.ConfigDict, key: str) -> tuple[ml_collections.ConfigDict | None, str]:
  """The group that holds dotted `key` (None where the config has no such group) and the key's last part."""
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
  return (node if isinstance(node, ml_collections.ConfigDict) else None), leaf


def set_key(config: ml_collections.ConfigDict, key: str, value: Any) -> None:
  """Sets dotted `key` of `config`; a key it lacks (besides model options) or a value of the wrong type raises."""
  node, leaf = _parent(config, key)
  if node is None or (leaf not in node and node is not config.get(MODEL_GROUP)):  # the model registry checks options
    raise unknown_key_error(key, flat_keys(config))
  if isinstance(node.get(leaf), ml_collections.ConfigDict):
    raise ConfigError(f'{key} is a group of keys, not a value: set its keys one by one')
  try:
    node[leaf] = value
  except TypeError as e:
    raise ConfigError(f'{key}={value!r} has the wrong type: {key} holds {type(node[leaf]).__name__} values') from e


def parse_assignment(text: str, config: ml_collections.ConfigDict) -> tuple[str, Any]:
  """`key=value` from the command line, the value read as a Python literal unless the key holds text."""
  key, sep, raw = text.partition('=')
  if not sep or not key:
    raise ConfigError(f'--set={text!r} must read key=value, e.g. --set=num_epochs=1')
  node, leaf = _parent(config, key)
  current = node.get(leaf) if node is not None else None
  if isinstance(current, str):
    return key, raw
  try:
    return key, ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    return key, tuple(filter(None, raw.split(','))) if isinstance(current, tuple) else raw


def help_text(usage: str) -> str:
  """`usage`, then the program's flags, then the run config's keys by group and where they are documented."""
  lines = [usage.strip(), '', 'Flags:']
  for flag in flags.FLAGS.get_key_flags_for_module(sys.argv[0]):
    default = '' if flag.default is None else f' (default: {flag.default})'
    lines.append(f'  --{flag.name}: {flag.help}{default}')
  lines += [
      '  -h, --help: this help',
      '',
      'Run config keys (cifar_jax.main: --config.KEY=VALUE, e.g. --config.optimizer.learning_rate=0.05; '
      'cifar_jax.sweep: --set=KEY=VALUE):',
  ]
  groups: dict[str, list[str]] = {}
  for key in default_keys():
    group, _, leaf = key.rpartition('.')
    groups.setdefault(group, []).append(leaf)
  groups[MODEL_GROUP].append("and the model's own options")
  for group in sorted(groups):
    lines += textwrap.wrap(
        ', '.join(groups[group]), 118, initial_indent=f'  {group or "top level"}: ', subsequent_indent='      '
    )
  documented = DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])
  lines += [
      '',
      f'Every key is documented, with its default, in {documented}; '
      'the models and their options: python -m cifar_jax.models',
  ]
  return '\n'.join(lines)


def parse_flags(argv: list[str], usage: str) -> list[str]:
  """absl's flag parsing for a program taking `--config`: `-h` prints `help_text(usage)` and exits 0; a flag error,
  a missing or broken config file or an override of a key the config lacks exits 1 with one line."""
  if set(argv[1:]) & set(HELP_FLAGS):
    print(help_text(usage))
    sys.exit(0)
  try:
    remaining = flags.FLAGS(argv)
    flags.FLAGS['config'].value.get('seed')  # a config file that failed to load raises only when first used
  except flags.Error as e:
    _fail(f'{e}\nPass --help to see the flags and the config keys.')
  except OSError as e:  # missing or unreadable config file: its last line names the file and the reason
    _fail(f'could not load the config: {str(e).strip().splitlines()[-1].strip()}')
  except (AttributeError, KeyError) as e:
    message = _innermost_message(e)
    key = _missing_override(message, argv)
    if key is None:
      _fail(f'could not load the config ({type(e).__name__}): {" ".join(message.split())}')
    hint = re.search(r'Did you mean "([\w.]+)"', message)
    _fail(f'unknown config key {key!r}' + (f' (did you mean {hint[1]}?)' if hint else '') + '; see --help')
  except (SyntaxError, TypeError, ValueError) as e:
    _fail(f'could not load the config ({type(e).__name__}): {" ".join(str(e).split())}')
  return remaining


def _innermost_message(error: BaseException) -> str:
  """The text of ml_collections' missing-field error, which it wraps in a KeyError in an AttributeError."""
  while error.args and isinstance(error.args[0], BaseException):
    error = error.args[0]
  return str(error.args[0]) if error.args else str(error)


def _missing_override(message: str, argv: list[str]) -> str | None:
  """The dotted key of the `--config.KEY=VALUE` override naming the field `message` says is missing."""
  missing = re.search(r"'(\w+)'", message)
  for arg in argv:
    override = re.match(r'--?config\.([\w.]+)', arg)
    if missing and override and missing[1] in override[1].split('.'):
      return override[1]
  return None


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)
