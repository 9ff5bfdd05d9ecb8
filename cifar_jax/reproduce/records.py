"""The committed record of a study's published rows, `docs/results/<study>/rows.json`, from which the page is made.

A results page must never lose a measured row because the runs behind it are not on this machine (a fresh
clone has no `runs/reproduce`). So each study keeps, next to the page, one entry per measured variant: the
numbers of each of its completed runs and their provenance (the command, the device, where the numbers were
read). `merge` replaces an entry only by runs at least as complete (as many runs, at least as many epochs, the
full data where the entry had it), and says what it changed.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import json
import pathlib
from typing import Any

from cifar_jax.study import aggregate
from cifar_jax.study.text import plural

RECORD_FILE = 'rows.json'
# What the page reads of each run: the metrics, the evaluation set sizes, epochs and wall time.
RESULT_KEYS = (
    *(key for key, _ in aggregate.METRICS),
    'best_epoch',
    'epochs',
    'wall_seconds',
    'params',
    *aggregate.EXAMPLES_KEYS.values(),
)
# What decides how complete a run is, besides its epochs: the seed and the data it trained on.
CONFIG_KEYS = ('seed', 'num_epochs', 'data.max_train_examples', 'data.max_eval_examples')
FULL_DATA = -1  # data.max_*_examples of a run on every image


@dataclasses.dataclass
class RecordedRun:
  """One completed run as the record keeps it (aggregate.RunLike): `variant/seed=K` or the variant's name."""

  name: str
  config: dict[str, Any]
  results: dict[str, Any]

  @property
  def status(self) -> str:
    return 'completed'


@dataclasses.dataclass
class Entry:
  """One variant's published runs and where they come from."""

  runs: list[RecordedRun]
  command: str
  device: str
  source: str  # where the numbers were read: a run folder, or a file of the repository

  @property
  def n(self) -> int:
    return len(self.runs)

  @property
  def epochs(self) -> float:
    """The epochs of its shortest run."""
    return min((run.results.get('epochs') or 0 for run in self.runs), default=0)

  @property
  def full_data(self) -> bool:
    """Whether every run trained and was evaluated on all the images."""
    return all(
        run.config.get(key, FULL_DATA) == FULL_DATA
        for run in self.runs
        for key in ('data.max_train_examples', 'data.max_eval_examples')
    )

  def at_least_as_complete_as(self, other: 'Entry') -> bool:
    return self.n >= other.n and self.epochs >= other.epochs and (self.full_data or not other.full_data)

  def describe(self) -> str:
    """`n=5, 25 epochs` (and `reduced data` when it is), for the lines that say what changed."""
    return f'n={self.n}, {plural(self.epochs, "epoch")}' + ('' if self.full_data else ', reduced data')

  def to_json(self) -> dict[str, Any]:
    return {
        'command': self.command,
        'device': self.device,
        'source': self.source,
        'runs': [dataclasses.asdict(run) for run in self.runs],
    }

  @classmethod
  def from_json(cls, payload: Mapping[str, Any]) -> 'Entry':
    runs = [RecordedRun(**run) for run in payload['runs']]
    return cls(runs, payload['command'], payload['device'], payload['source'])


def load(folder: pathlib.Path) -> dict[str, Entry]:
  """The entries recorded in `folder` (a study's folder beside the page), by variant; none without a record."""
  path = folder / RECORD_FILE
  if not path.is_file():
    return {}
  return {name: Entry.from_json(entry) for name, entry in json.loads(path.read_text())['variants'].items()}


def save(folder: pathlib.Path, study: str, entries: Mapping[str, Entry]) -> pathlib.Path:
  """Writes the record of `study` (variants in the order given): indented JSON with one line per run, so that
  a change of the record reads as a change of its rows."""
  folder.mkdir(parents=True, exist_ok=True)
  variants = []
  for name, entry in entries.items():
    payload = entry.to_json()
    head = ', '.join(f'{json.dumps(key)}: {json.dumps(payload[key])}' for key in ('command', 'device', 'source'))
    runs = ',\n'.join(f'   {json.dumps(run)}' for run in payload['runs'])
    variants.append(f'  {json.dumps(name)}: {{{head}, "runs": [\n{runs}\n  ]}}')
  path = folder / RECORD_FILE
  path.write_text(f'{{"study": {json.dumps(study)}, "variants": {{\n' + ',\n'.join(variants) + '\n}}\n')
  return path


def recorded_run(run: aggregate.RunLike) -> RecordedRun:
  """What the record keeps of one completed run."""
  config = {key: run.config[key] for key in CONFIG_KEYS if key in run.config}
  results = {key: run.results[key] for key in RESULT_KEYS if run.results.get(key) is not None}
  return RecordedRun(run.name, config, results)


def entries_from_runs(runs: Sequence[aggregate.RunLike], command: str, device: str, source: str) -> dict[str, Entry]:
  """An entry per variant of the completed `runs` (the runs of a study folder)."""
  entries: dict[str, Entry] = {}
  for run in (r for r in runs if r.status == 'completed'):
    entry = entries.setdefault(aggregate.variant_of(run.name), Entry([], command, device, source))
    entry.runs.append(recorded_run(run))
  return entries


def merge(
    recorded: Mapping[str, Entry], measured: Mapping[str, Entry], order: Sequence[str]
) -> tuple[dict[str, Entry], list[str]]:
  """The entries to publish, variant by variant: the measured one where it is at least as complete as the
  recorded one, else the recorded one; and a line for each variant whose entry changed or was kept over
  less complete runs. Variants come in `order`, then any other."""
  merged, changes = {}, []
  for name in [*order, *(n for n in [*recorded, *measured] if n not in order)]:
    old, new = recorded.get(name), measured.get(name)
    if name in merged or (old is None and new is None):
      continue
    if new is None:
      merged[name] = old
    elif old is None:
      merged[name] = new
      changes.append(f'{name}: not measured -> {new.describe()} ({new.source})')
    elif new.at_least_as_complete_as(old):
      merged[name] = new
      if new.to_json()['runs'] != old.to_json()['runs']:
        changes.append(f'{name}: {old.describe()} -> {new.describe()} ({new.source})')
    else:
      merged[name] = old
      changes.append(f'{name}: kept {old.describe()} ({old.source}); {new.source} has {new.describe()}, less complete')
  return merged, changes
