"""The console side of a run (writers.Progress): timing without compilation, when lines are due, epoch lines."""

import pytest

from cifar_jax.training import writers

VALUES = {'loss': 1.5, 'accuracy': 0.25, 'learning_rate': 0.1}


class FakeClock:
  """A clock the test moves by hand."""

  def __init__(self) -> None:
    self.now = 0.0

  def __call__(self) -> float:
    return self.now


def _progress(clock: FakeClock, **kwargs: object) -> writers.Progress:
  """100 steps of batch 10, 10 steps an epoch."""
  return writers.Progress(total_steps=100, steps_per_epoch=10, batch_size=10, clock=clock, **kwargs)


def test_time_left_leaves_out_the_first_step_which_waits_for_compilation(capsys: pytest.CaptureFixture) -> None:
  clock = FakeClock()
  progress = _progress(clock)
  progress.start(0)
  clock.now = 100.0  # step 1 returns after 100 s of compilation
  progress.tick(1)
  for step in range(2, 12):  # then one step a second
    clock.now += 1.0
    progress.tick(step)
  progress.report(11, epoch=2, values=VALUES)
  line = capsys.readouterr().out
  # 10 steps in 10 s after the first: 1 step/s = 10 img/s, 89 steps left = 89 s.
  assert '10 img/s' in line and 'left 0:01:29' in line and 'step 11/100  epoch 2/10' in line


def test_pauses_between_stretches_are_not_training_time(capsys: pytest.CaptureFixture) -> None:
  clock = FakeClock()
  progress = _progress(clock)
  progress.start(0)
  for step in range(1, 6):  # steps 1..5, 2 s apart: 4 timed steps in 8 s
    clock.now += 2.0
    progress.tick(step)
  clock.now += 1000.0  # an evaluation
  progress.start(5)
  for step in range(6, 11):  # steps 6..10, 2 s apart: the first of the stretch is left out again
    clock.now += 2.0
    progress.tick(step)
  assert progress.steps_per_second() == pytest.approx(8 / 16)
  progress.report(10, epoch=1, values=VALUES)
  assert 'left 0:03:00' in capsys.readouterr().out  # 90 steps at 0.5 step/s


def test_log_line_rate_starts_at_the_first_completed_step() -> None:
  clock = FakeClock()
  progress = _progress(clock)
  progress.start(0)
  clock.now = 50.0
  progress.tick(1)
  clock.now = 53.0
  progress.tick(4)
  assert progress.images_per_second(4) == pytest.approx(3 * 10 / 3)  # steps 2..4 in 3 s, not 4 in 53 s
  clock.now = 55.0
  progress.tick(6)
  assert progress.images_per_second(6) == pytest.approx(2 * 10 / 2)


def test_a_line_is_due_after_the_first_step_then_every_interval(capsys: pytest.CaptureFixture) -> None:
  clock = FakeClock()
  progress = _progress(clock, every_seconds=30.0)
  progress.start(0)
  clock.now = 40.0
  progress.tick(1)
  assert progress.due()
  progress.report(1, epoch=1, values=VALUES)
  assert 'first step done' in capsys.readouterr().out  # no rate yet: nothing but compilation was timed
  clock.now = 69.0
  assert not progress.due()
  clock.now = 70.0
  assert progress.due()
  assert not _progress(clock, enabled=False).due()


def test_epoch_line_shows_validation_and_the_best_epoch(capsys: pytest.CaptureFixture) -> None:
  progress = _progress(FakeClock())
  history = [
      {'epoch': 1, 'train_loss': 2.0, 'train_accuracy': 0.3, 'val_loss': 1.9, 'val_accuracy': 0.57},
      {'epoch': 2, 'train_loss': 1.5, 'train_accuracy': 0.5, 'val_loss': 1.23, 'val_accuracy': 0.567},
  ]
  progress.report_epoch(history)
  assert capsys.readouterr().out == (
      'epoch 2/10: train loss 1.5000 acc 50.00%, val loss 1.2300 acc 56.70% ' '(best 57.00% at epoch 1)\n'
  )
  progress.report_epoch([{'epoch': 1, 'train_loss': 2.0, 'train_accuracy': 0.3}])
  assert capsys.readouterr().out == 'epoch 1/10: train loss 2.0000 acc 30.00%\n'
