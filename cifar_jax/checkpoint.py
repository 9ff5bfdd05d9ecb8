"""Orbax checkpoints of a run: the last few under `latest/`, the best by validation accuracy under `best/`."""

import pathlib
from typing import Any

import orbax.checkpoint as ocp


class Checkpoints:
  """Saves the train state with a small JSON record of the run's history; restores the newest."""

  def __init__(self, directory: str | pathlib.Path, keep: int = 3) -> None:
    directory = pathlib.Path(directory).absolute()
    self.latest = ocp.CheckpointManager(
        directory / 'latest', options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))
    self.best = ocp.CheckpointManager(
        directory / 'best',
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_fn=lambda m: m['val_accuracy'], best_mode='max'))

  def save(self, step: int, state: Any, record: dict[str, Any], val_accuracy: float | None = None) -> None:
    """Writes `state` and `record` at `step`; also as the best when `val_accuracy` beats the kept one."""
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record))
    self.latest.save(step, args=args)
    if val_accuracy is not None:
      self.best.save(step, args=args, metrics={'val_accuracy': float(val_accuracy)})

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def restore_latest(self, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
    """The newest state (shaped like `abstract_state`) and its record."""
    step = self.latest.latest_step()
    restored = self.latest.restore(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), record=ocp.args.JsonRestore()))
    return restored.state, restored.record

  def close(self) -> None:
    """Waits for pending writes and releases the managers."""
    for manager in (self.latest, self.best):
      manager.wait_until_finished()
      manager.close()
