"""A sweep's queue of work is an Optuna study: each unit (a run, or a vectorized group) is a trial that one worker
takes, keeps alive by heartbeat and tells the result of; a trial whose worker died is retried by another.

The storage is a journal file inside the workdir by default (Optuna's JournalFileBackend: no server, file locks
that several processes, and machines sharing the folder, can use), or any database URL Optuna accepts
(`postgresql://...`, `mysql://...`, `sqlite:///...`) through RDBStorage. Both record a heartbeat every
`heartbeat` seconds for each running trial; a running trial silent for GRACE heartbeats is failed and enqueued
again (Optuna's fail_stale_trials and RetryHeartbeatStaleTrialCallback), and the retry resumes the run from its
checkpoint. The journal, which Optuna gives no heartbeat, records it as a trial system attribute.
"""

from collections.abc import Callable, Iterator, Sequence
import contextlib
import pathlib
import time
from typing import Any
import warnings

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages._heartbeat import BaseHeartbeat, get_heartbeat_thread
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from cifar_jax.errors import UserError

JOURNAL_FILE = 'optuna.journal'  # the default storage, inside the workdir
GRACE = 3  # heartbeats missed before a running trial counts as dead
UNIT = 'unit'  # the user attribute naming the trial's unit of work
POINT = 'point'  # the user attribute of a trial a search sampled: its grid point
LIVE = (TrialState.WAITING, TrialState.RUNNING)

optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise
warnings.filterwarnings('ignore', category=optuna.exceptions.ExperimentalWarning)  # heartbeat, enqueue_trial


class _JournalWithHeartbeat(JournalStorage, BaseHeartbeat):
  """Optuna's journal storage with the heartbeat Optuna gives only to RDBStorage: each beat is the time in the
  trial's system attribute 'heartbeat'."""

  def __init__(self, path: pathlib.Path, interval: int, callback: Callable[..., None]) -> None:
    super().__init__(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    self._interval, self._callback = interval, callback

  def record_heartbeat(self, trial_id: int) -> None:
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # told between two beats
      self.set_trial_system_attr(trial_id, 'heartbeat', time.time())

  def _get_stale_trial_ids(self, study_id: int) -> list[int]:
    now = time.time()
    return [
        t._trial_id
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        if now - t.system_attrs.get('heartbeat', now) > GRACE * self._interval
    ]

  def get_heartbeat_interval(self) -> int:
    return self._interval

  def get_heartbeat_stale_trial_callback(self) -> Callable[..., None]:
    return self._callback


def _describe(storage: str, workdir: pathlib.Path) -> str:
  """The storage as the error lines name it, without a password."""
  if not storage:
    return str(workdir / JOURNAL_FILE)
  head, _, tail = storage.rpartition('@')
  return f'{head.split("://")[0]}://...@{tail}' if head else storage


def open_study(
    workdir: pathlib.Path,
    storage: str,
    name: str,
    heartbeat: int,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
  """The sweep's study `name` (created if new), in `storage` ('' for the journal in `workdir`); a storage that
  cannot be reached, read or written is one UserError line."""
  retry = RetryHeartbeatStaleTrialCallback()
  try:
    if storage:
      backend = RDBStorage(storage, heartbeat_interval=heartbeat, grace_period=GRACE * heartbeat,
                           heartbeat_stale_trial_callback=retry)  # fmt: skip
    else:
      backend = _JournalWithHeartbeat(workdir / JOURNAL_FILE, heartbeat, retry)
    return optuna.create_study(
        storage=backend, study_name=name, direction='maximize', load_if_exists=True, sampler=sampler, pruner=pruner
    )
  except Exception as e:  # noqa: BLE001 (drivers raise their own kinds: sqlalchemy, psycopg2, json, unicode)
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(
        f'the sweep queue {_describe(storage, workdir)} cannot be used: {reason} '
        '(check --config.storage, or delete a corrupt journal to start the queue afresh)'
    ) from None


def unit_of(trial: FrozenTrial | optuna.Trial) -> str | None:
  """The unit of work a trial is for."""
  return trial.user_attrs.get(UNIT)


def trials_of(study: optuna.Study, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
  return study.get_trials(deepcopy=False, states=states)


def enqueue_missing(study: optuna.Study, units: Sequence[str]) -> None:
  """Enqueues each unit that no waiting or running trial is for. Two processes that do this at once may both
  enqueue a unit; `is_duplicate` then keeps the second from training it."""
  live = {unit_of(t) for t in trials_of(study, LIVE)}
  for unit in units:
    if unit not in live:
      study.enqueue_trial({}, user_attrs={UNIT: unit}, skip_if_exists=False)


def take(study: optuna.Study) -> optuna.Trial | None:
  """The next waiting trial, now running in this process (Optuna's own pop: the state change that one process
  wins), after failing and re-enqueuing those whose worker went silent; None when none waits. Unlike
  `Study.ask`, never samples a new trial."""
  fail_stale_trials(study)
  storage = study._storage  # noqa: SLF001 (the storage is the queue; Study has no public pop)
  for trial in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,)):  # noqa: SLF001
    try:
      if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):  # noqa: SLF001
        return optuna.Trial(study, trial._trial_id)  # noqa: SLF001
    except optuna.exceptions.UpdateFinishedTrialError:
      continue
  return None


def ask(study: optuna.Study) -> optuna.Trial:
  """A new trial from the study's sampler (a search's next point), kept alive by `alive` as a taken one is."""
  with warnings.catch_warnings():  # Optuna warns that ask() does not beat the heartbeat: `alive` does
    warnings.filterwarnings('ignore', message='Heartbeat of storage is supposed to be used with Study.optimize')
    return study.ask()


def is_duplicate(study: optuna.Study, trial: optuna.Trial) -> bool:
  """Whether an earlier trial for the same unit is running: the unit was enqueued twice, and that one trains it."""
  unit = unit_of(trial)
  return any(t.number < trial.number and unit_of(t) == unit for t in trials_of(study, (TrialState.RUNNING,)))


def sampled(study: optuna.Study, before: int | None = None) -> int:
  """How many points a search sampled (retries of a trial aside), among the trials numbered below `before`."""
  return sum(
      POINT in t.user_attrs and 'retry_of' not in t.user_attrs and 'failed_trial' not in t.system_attrs
      for t in trials_of(study)
      if before is None or t.number < before
  )


def busy(study: optuna.Study) -> bool:
  """Whether any trial runs (in any worker), so that one finishing or dying may leave work behind."""
  return bool(trials_of(study, (TrialState.RUNNING,)))


@contextlib.contextmanager
def alive(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
  """Beats the trial's heartbeat from a thread while the body runs."""
  with get_heartbeat_thread(trial._trial_id, study._storage):  # noqa: SLF001
    yield


def finish(study: optuna.Study, trial: optuna.Trial, state: TrialState, value: float | None, **attrs: Any) -> None:
  """Tells the trial's end (COMPLETE with its value, PRUNED, or FAIL) with `attrs` as user attributes."""
  for key, value_ in attrs.items():
    trial.set_user_attr(key, value_)
  study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
  """Gives back a trial its worker stopped (Ctrl-C, SIGTERM): failed, and its unit waiting for another worker."""
  params, attrs = dict(trial.params), {**trial.user_attrs, 'retry_of': trial.number}
  finish(study, trial, TrialState.FAIL, None, stopped=True)
  study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
