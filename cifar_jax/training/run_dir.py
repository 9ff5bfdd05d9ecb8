"""The run folder: its layout, its JSON files, and the checks made before a run writes into it.

Every module that reads or writes a run folder (training, writers, sweeps, reports) takes the file
names and the JSON helpers from here, so the layout is defined once:

    config.json     the resolved config          summary.json   the run's headline numbers and status
    metrics.jsonl   one line per log or eval     curves.png     loss and accuracy per epoch
    checkpoints/    Orbax: latest/, best/        tensorboard/   event files (when TensorFlow is present)
"""

import json
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

import ml_collections

from cifar_jax import config_lib
from cifar_jax.errors import ConfigError, UserError

CONFIG_FILE = 'config.json'
SUMMARY_FILE = 'summary.json'
METRICS_FILE = 'metrics.jsonl'
CURVES_FILE = 'curves.png'
CHECKPOINTS_DIR = 'checkpoints'
TENSORBOARD_DIR = 'tensorboard'
SWEEP_FILE = 'sweep.json'  # in a sweep's folder, beside one run folder per variant

# Keys that may change between a run and its resume without changing what it computes (steps_per_call: the
# speed, the numbers only within float rounding, so a CPU run resumes on a GPU with fused steps).
RESUME_SAFE_KEYS = frozenset(
    {
        'num_train_steps',
        'data.data_dir',
        'log_every_steps',
        'checkpoint_keep',
        'checkpoint_every_epochs',
        'checkpoint_every_seconds',
        'eval_batch_size',
        'steps_per_call',
    }
)
# How to go on, in the flags of `cifar_jax.main` and `cifar_jax.sweep`; another command words its own.
ALLOW_CHANGE_ADVICE = 'use a new --workdir, or pass --allow_config_change to resume it with the new values'


class ConfigChanged(ConfigError):
  """A folder holds a run of a different config; `advice` says how to go on, in the flags of the command."""

  def __init__(self, path: pathlib.Path, differences: list[str], advice: str = ALLOW_CHANGE_ADVICE) -> None:
    self.path, self.differences = path, differences
    super().__init__(f'{path} holds a run of a different config ({"; ".join(differences)}); {advice}')

  def advising(self, advice: str) -> 'ConfigChanged':
    """The same refusal with another command's way out."""
    return ConfigChanged(self.path, self.differences, advice)


def _process_index() -> int:
  """This process's index among the hosts; JAX is imported here only, so that the commands can read a run folder
  (`existing_folder`, `saved_config`) before the heavy imports."""
  import jax  # pylint: disable=import-outside-toplevel

  return jax.process_index()


def existing_folder(path: str | pathlib.Path) -> pathlib.Path:
  """`path`, refused with a UserError unless it is a folder."""
  path = pathlib.Path(path)
  if not path.is_dir():
    raise UserError(f'{path} is not a folder')
  return path


def saved_config(folder: pathlib.Path) -> dict[str, Any]:
  """The config.json of the run in `folder`, refused with a UserError when it has none."""
  saved = read_json(folder / CONFIG_FILE)
  if saved is None:
    raise UserError(f'{folder} holds no run: it has no {CONFIG_FILE}')
  return saved


def prepare(workdir: str | pathlib.Path, needed_bytes: int) -> pathlib.Path:
  """Creates `workdir`, proves it writable and checks it has room for `needed_bytes`, before any training."""
  path = pathlib.Path(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f'.write_probe.{_process_index()}'
    probe.write_text('ok')
    probe.unlink()
  except OSError as e:
    raise UserError(f'cannot write to workdir {path}: {e.strerror or e}') from e
  free = shutil.disk_usage(path).free
  if free < needed_bytes:
    raise UserError(
        f'not enough disk space in {path}: {free / 2**20:,.0f} MiB free, checkpoints need about '
        f'{needed_bytes / 2**20:,.0f} MiB; free some space or choose another workdir'
    )
  return path


def checkpoint_step(path: pathlib.Path) -> int | None:
  """The step of the newest checkpoint in run folder `path` (Orbax names each step's folder after it; a half-written
  one is a temporary folder), None without one: the one place the step on disk is read without Orbax."""
  latest = path / CHECKPOINTS_DIR / 'latest'
  return max((int(p.name) for p in latest.glob('*') if p.name.isdigit()), default=None)


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
  """Dotted keys whose values differ between two configs (as JSON), ignoring the resume-safe ones."""
  old, new = config_lib.flatten(saved), config_lib.flatten(current)
  keys = sorted(k for k in old.keys() | new.keys() if k not in RESUME_SAFE_KEYS and old.get(k) != new.get(k))
  return [f'{k}: {old.get(k, "(absent)")!r} -> {new.get(k, "(absent)")!r}' for k in keys]


def check_resumable(path: pathlib.Path, config: ml_collections.ConfigDict, allow_config_change: bool) -> None:
  """Refuses to resume a run of a different config, naming the differing keys, unless explicitly allowed."""
  saved = read_json(path / CONFIG_FILE)
  if allow_config_change or saved is None:
    return
  differences = config_differences(saved, config_lib.config_as_json(config))
  if differences:
    raise ConfigChanged(path, differences)


def holds_completed_run(path: pathlib.Path, config: ml_collections.ConfigDict) -> bool:
  """Whether `path` holds a completed run of `config` (keys that cannot change the result aside)."""
  summary, saved = read_json(path / SUMMARY_FILE), read_json(path / CONFIG_FILE)
  return (
      summary is not None
      and summary.get('status') == 'completed'
      and saved is not None
      and not config_differences(saved, config_lib.config_as_json(config))
  )


def write_config(path: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as JSON, atomically (process 0 only)."""
  if _process_index() == 0:
    write_json(path / CONFIG_FILE, config_lib.config_as_json(config))


def read_json(path: pathlib.Path) -> Any:
  """The JSON file at `path`, or None when there is none."""
  return json.loads(path.read_text()) if path.exists() else None


def write_json(path: pathlib.Path, payload: Mapping[str, Any]) -> None:
  """Writes `payload` atomically: a crash leaves the old file or the new one, never half of one."""
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + '\n')
  tmp.replace(path)


def read_metrics(path: pathlib.Path) -> list[dict[str, Any]]:
  """The records of `path`/metrics.jsonl in order, skipping a last line torn by a kill mid-write."""
  file = path / METRICS_FILE
  records = []
  for line in file.read_text().splitlines() if file.exists() else []:
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return records
