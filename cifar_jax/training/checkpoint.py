"""Orbax checkpoints of a run: the last few under `latest/`, the best by validation accuracy under `best/`.

Each checkpoint carries a SHA-256 of the state's bytes, so a file damaged on disk is detected on restore
rather than resumed from; the newest usable checkpoint wins and damaged ones are moved to `corrupt/`.
"""

import hashlib
import pathlib
import shutil
import sys
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from cifar_jax.errors import UserError


def state_digest(state: Any) -> str:
  """SHA-256 over every array of `state` (this process's copy), in tree order."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(state):
    array = np.asarray(leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf)
    digest.update(str((array.dtype, array.shape)).encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


class Checkpoints:
  """Saves the train state with a JSON record of the run's history; restores the newest intact one."""

  def __init__(self, directory: str | pathlib.Path, keep: int = 3) -> None:
    self.directory = pathlib.Path(directory).absolute()
    self.latest = self._manager('latest', max_to_keep=keep)
    self.best = self._manager('best', max_to_keep=1, best_fn=lambda m: m['val_accuracy'], best_mode='max')

  def _manager(self, name: str, **options: Any) -> ocp.CheckpointManager:
    """A manager under `name/`; its own barrier prefix keeps two managers saving one step from colliding
    across processes, and half-written steps left by a kill are cleaned up on start."""
    return ocp.CheckpointManager(
        self.directory / name,
        options=ocp.CheckpointManagerOptions(
            create=True,
            cleanup_tmp_directories=True,
            multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name),
            **options,
        ),
    )

  def save(
      self, step: int, state: Any, record: dict[str, Any], val_accuracy: float | None = None, latest: bool = True
  ) -> None:
    """Writes `state` and `record` at `step` as the latest (when `latest`) and as the best (when `val_accuracy` is
    given and beats the kept one), both from one digest of the state. Orbax finishes writing in the background."""
    record = {**record, 'state_sha256': state_digest(state)}
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record))
    if latest:
      self.latest.save(step, args=args)
    if val_accuracy is not None:
      self.best.save(step, args=args, metrics={'val_accuracy': float(val_accuracy)})

  def drop_after(self, step: int) -> None:
    """Deletes the checkpoints after `step` (a group resuming from its members' common step writes them again)."""
    for manager in (self.latest, self.best):
      for later in [s for s in manager.all_steps() if s > step]:
        manager.delete(later)

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def restore_latest(self, abstract_state: Any) -> tuple[Any, dict[str, Any]] | None:
    """The newest intact state (shaped like `abstract_state`) and its record; None when there is none at all.

    A checkpoint that cannot be read or whose digest does not match is moved to `corrupt/` with a warning
    and the previous one is tried; if none is usable, a UserError says so instead of starting afresh.
    """
    steps = sorted(self.latest.all_steps(), reverse=True)
    if not steps:
      return None
    for step in steps:
      try:
        restored = self.latest.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), record=ocp.args.JsonRestore())
        )
        record = dict(restored.record)
        if record.pop('state_sha256', None) != state_digest(restored.state):
          raise ValueError('its contents do not match the digest written with it')
        return restored.state, record
      except Exception as e:  # Whatever a damaged checkpoint makes Orbax raise, it is unusable.
        self._quarantine(step, e)
    raise UserError(
        f'no usable checkpoint in {self.directory}: every one was damaged (moved to {self.directory / "corrupt"}). '
        f'Refusing to start afresh over an existing run: use a new workdir, or delete {self.directory} to restart.'
    )

  def _quarantine(self, step: int, error: Exception) -> None:
    """Moves a damaged checkpoint out of the way (nothing is deleted) and warns, naming it."""
    source = self.directory / 'latest' / str(step)
    target = self.directory / 'corrupt' / f'latest-{step}'
    print(
        f'warning: checkpoint {source} is damaged ({type(error).__name__}: {str(error)[:200]}); '
        f'moved to {target}, falling back to the previous one',
        file=sys.stderr,
        flush=True,
    )
    if jax.process_index() == 0:
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.move(str(source), str(target))
    self.latest.reload()

  def wait(self) -> None:
    """Returns once every checkpoint being written is complete on disk."""
    for manager in (self.latest, self.best):
      manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending writes and releases the managers."""
    for manager in (self.latest, self.best):
      manager.wait_until_finished()
      manager.close()
