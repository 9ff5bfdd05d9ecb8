"""The run folder: created and proved writable with room for checkpoints, and the config a resume must match."""

import json
import pathlib
import shutil
from typing import Any

import jax
import ml_collections

from cifar_jax.errors import ConfigError, UserError

# Keys that may change between a run and its resume without changing what it computes.
RESUME_SAFE_KEYS = frozenset({'num_train_steps', 'data.data_dir', 'log_every_steps', 'checkpoint_keep',
                              'eval_batch_size'})
CONFIG_FILE = 'config.json'


def prepare(workdir: str | pathlib.Path, needed_bytes: int) -> pathlib.Path:
  """Creates `workdir`, proves it writable and checks it has room for `needed_bytes`, before any training."""
  path = pathlib.Path(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f'.write_probe.{jax.process_index()}'
    probe.write_text('ok')
    probe.unlink()
  except OSError as e:
    raise UserError(f'cannot write to workdir {path}: {e.strerror or e}') from e
  free = shutil.disk_usage(path).free
  if free < needed_bytes:
    raise UserError(f'not enough disk space in {path}: {free / 2**20:,.0f} MiB free, checkpoints need about '
                    f'{needed_bytes / 2**20:,.0f} MiB; free some space or choose another workdir')
  return path


def _flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat |= _flatten(value, f'{prefix}{key}.')
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
  """Dotted keys whose values differ between two configs (as JSON), ignoring the resume-safe ones."""
  old, new = _flatten(saved), _flatten(current)
  keys = sorted(k for k in old.keys() | new.keys() if k not in RESUME_SAFE_KEYS and old.get(k) != new.get(k))
  return [f'{k}: {old.get(k, "(absent)")!r} -> {new.get(k, "(absent)")!r}' for k in keys]


def _as_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
  return json.loads(config.to_json_best_effort())


def check_resumable(path: pathlib.Path, config: ml_collections.ConfigDict, allow_config_change: bool) -> None:
  """Refuses to resume a run of a different config, naming the differing keys, unless explicitly allowed."""
  saved_file = path / CONFIG_FILE
  if allow_config_change or not saved_file.exists():
    return
  differences = config_differences(json.loads(saved_file.read_text()), _as_json(config))
  if differences:
    raise ConfigError(
        f'{path} holds a run of a different config ({"; ".join(differences)}); use a new workdir, '
        f'or pass --allow_config_change to resume it with the new values')


def write_config(path: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as JSON, atomically (process 0 only)."""
  if jax.process_index() == 0:
    write_json(path / CONFIG_FILE, _as_json(config))


def write_json(path: pathlib.Path, payload: dict[str, Any]) -> None:
  """Writes `payload` atomically: a crash leaves the old file or the new one, never half of one."""
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + '\n')
  tmp.replace(path)
