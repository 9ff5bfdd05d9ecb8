"""The run book both engines share: a group prints and writes what its sequential runs do; pruning; a finished
run; checkpoints on an interval; metrics.jsonl after a crash; the averages of log lines that do not divide the
epoch; the steady images/s of summary.json across a resume."""

import functools
import json
import re
import shutil

import numpy as np
import pytest

import helpers
from cifar_jax.training import group, run_dir, trainer, writers
from tests.test_group import BASE, MEMBERS

# Both engines end every call at a log point (the group fuses up to an epoch, the sequential runs up to 8 steps),
# so they print the same progress lines; a log interval of 3 does not divide the 8-step epoch.
SAME_CALLS = {**BASE, 'steps_per_call': 8, 'log_every_steps': 3}


def _console(text, *folders):
  """The console lines with the run folders named alike and every decimal number (losses, timings) masked."""
  for folder in folders:
    text = text.replace(str(folder), '<run>')
  text = re.sub(r'left \d+:\d\d:\d\d', 'left #', text)
  return sorted(re.sub(r'\d[\d,]*\.\d+|\d[\d,]* img/s', '#', line) for line in text.splitlines())


def _files(folder):
  """What a run folder holds, numbers aside: metrics.jsonl's kinds, steps and keys, summary.json's fields,
  the checkpoints' steps."""
  metrics = [(r['kind'], r['step'], sorted(r)) for r in run_dir.read_metrics(folder)]
  summary = helpers.summary(folder)
  checkpoints = (helpers.checkpoint_steps(folder), helpers.checkpoint_steps(folder, 'best'))
  return metrics, sorted(summary), summary['status'], summary['steps'], checkpoints, (folder / 'curves.png').exists()


def test_a_group_prints_and_writes_what_its_sequential_runs_do(cifar10_dir, tmp_path, capsys):
  configs = [helpers.tiny_config(cifar10_dir, **SAME_CALLS, **member) for member in MEMBERS[:2]]
  alone = [tmp_path / f'alone/{k}' for k in range(2)]
  together = [tmp_path / f'together/{k}' for k in range(2)]
  capsys.readouterr()
  for config, folder in zip(configs, alone):
    trainer.train_and_evaluate(config, folder)
  sequential = _console(capsys.readouterr().out, *alone)
  group.Group(configs, together).run()
  grouped = _console(capsys.readouterr().out, *together)
  assert grouped == sequential
  assert sum(line.startswith('step ') for line in grouped) == 2 * 7  # steps 3, 6, 8, 9, 12, 15, 16 of each
  assert sum(line.startswith('epoch ') for line in grouped) == 2 * 2
  for a, b in zip(alone, together):
    assert _files(b) == _files(a)
  train = [r for r in run_dir.read_metrics(together[0]) if r['kind'] == 'train']
  assert all(r['images_per_second'] > 0 for r in train)


def test_on_epoch_prunes_a_run_after_its_validation(cifar10_dir, tmp_path):
  calls = []

  def prune_after_two(epoch, val_accuracy):
    calls.append((epoch, val_accuracy))
    return epoch == 2

  summary = trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir), tmp_path / 'run', on_epoch=prune_after_two)
  val = [(r['epoch'], r['accuracy']) for r in run_dir.read_metrics(tmp_path / 'run') if r['kind'] == 'val']
  assert calls == val == [(1, calls[0][1]), (2, calls[1][1])]
  assert summary == helpers.summary(tmp_path / 'run')
  assert (summary['status'], summary['steps'], summary['epochs'], summary['test_accuracy']) == ('pruned', 16, 2, None)
  assert helpers.checkpoint_steps(tmp_path / 'run')[-1] == 16  # resumable where it stopped
  assert not any(r['kind'] == 'test' for r in run_dir.read_metrics(tmp_path / 'run'))


def test_a_pruned_group_member_leaves_like_a_pruned_sequential_run(cifar10_dir, tmp_path):
  configs = [helpers.tiny_config(cifar10_dir, **BASE, **member) for member in MEMBERS[:2]]
  prune_first = [lambda epoch, acc: True, None]
  summaries = group.Group(configs, [tmp_path / 'g0', tmp_path / 'g1'], on_epoch=prune_first).run()
  assert [s['status'] for s in summaries] == ['pruned', 'completed']
  trainer.train_and_evaluate(configs[0], tmp_path / 'alone', on_epoch=prune_first[0])
  assert _files(tmp_path / 'g0') == _files(tmp_path / 'alone')
  assert helpers.checkpoint_steps(tmp_path / 'g1') == [8, 16]


def test_a_finished_run_run_again_says_so_and_changes_nothing(cifar10_dir, tmp_path, capsys, monkeypatch):
  config = helpers.tiny_config(cifar10_dir, num_epochs=1, num_train_steps=4)
  first = trainer.train_and_evaluate(config, tmp_path / 'run')
  files = {p.name: p.read_bytes() for p in (tmp_path / 'run').iterdir() if p.is_file()}
  capsys.readouterr()
  with monkeypatch.context() as patched:
    patched.setattr(trainer, 'load_data', lambda config: pytest.fail('a finished run loaded its data'))
    finished = trainer.Trainer(config, tmp_path / 'run')  # what the class docstring promises of a finished run
    assert (finished.finished, finished.step, finished.workdir) == (first, 4, tmp_path / 'run')
    assert (finished.data, finished.exp, finished.book, finished.state, finished.pending) == (None,) * 5
    again = finished.run()
  out = capsys.readouterr().out
  assert again == first
  assert out == f'{tmp_path / "run"} holds this run finished (4 steps, test accuracy ' + (
      f'{100 * first["test_accuracy"]:.2f}%): nothing to do\n'
  )
  assert {p.name: p.read_bytes() for p in (tmp_path / 'run').iterdir() if p.is_file()} == files
  # The same run without the step cap (num_train_steps may change on a resume) is not finished: it goes on.
  longer = trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir, num_epochs=1), tmp_path / 'run')
  assert longer['steps'] == 8


def test_checkpoints_on_an_interval_keep_the_best_epoch_and_the_end(cifar10_dir, tmp_path):
  config = helpers.tiny_config(cifar10_dir, num_epochs=5, checkpoint_every_epochs=2, checkpoint_keep=5)
  summary = trainer.train_and_evaluate(config, tmp_path / 'run')
  assert helpers.checkpoint_steps(tmp_path / 'run') == [16, 32, 40]  # epochs 2 and 4, and the last step
  val = [r['accuracy'] for r in run_dir.read_metrics(tmp_path / 'run') if r['kind'] == 'val']
  best_epoch = 1 + int(np.argmax(val))  # the first of equal ones
  assert summary['best_epoch'] == best_epoch
  assert helpers.checkpoint_steps(tmp_path / 'run', 'best') == [8 * best_epoch]


class _Crash(Exception):
  pass


@pytest.mark.parametrize('crash_at', [17, 19, 22, 24])  # log points 18, 21, 24 (every 3) and the epoch end 24
def test_a_crash_anywhere_in_an_epoch_leaves_every_step_logged_once_after_the_resume(
    cifar10_dir, tmp_path, monkeypatch, crash_at
):
  """Checkpoints every 2 epochs (the last at step 16 before the crash); the process dies while dispatching step
  `crash_at`, after the lines up to the step before it were written. The resumed run's metrics.jsonl and
  parameters are those of an uninterrupted run."""
  config = helpers.tiny_config(cifar10_dir, log_every_steps=3, checkpoint_every_epochs=2)
  trainer.train_and_evaluate(config, tmp_path / 'whole')
  take_steps, taken = trainer.take_steps, []

  def crash(exp, state, pending, epoch, batch, length, batches):
    if epoch * 8 + batch + 1 == crash_at:
      raise _Crash
    return take_steps(exp, state, pending, epoch, batch, length, batches)

  monkeypatch.setattr(trainer, 'take_steps', crash)
  with pytest.raises(_Crash):
    trainer.train_and_evaluate(config, tmp_path / 'crashed')
  lines = run_dir.read_metrics(tmp_path / 'crashed')
  assert max(r['step'] for r in lines) == max(s for s in (16, 18, 21, 24) if s < crash_at)
  monkeypatch.setattr(trainer, 'take_steps', take_steps)
  trainer.train_and_evaluate(config, tmp_path / 'crashed')
  steps = [(r['kind'], r['step']) for r in run_dir.read_metrics(tmp_path / 'crashed')]
  assert len(steps) == len(set(steps))
  helpers.assert_same_run(tmp_path / 'crashed', tmp_path / 'whole')


def test_a_log_line_averages_exactly_the_steps_since_the_previous_one(cifar10_dir, tmp_path):
  """Log every 3 steps of an 8-step epoch: lines at 3, 6, 8 (the epoch's end: 2 steps), 9 (1 step), 12, ...
  Each line's loss and accuracy are the mean over its own steps, taken from a run that logs every step."""
  every_step = helpers.tiny_config(cifar10_dir, log_every_steps=1)
  every_third = helpers.tiny_config(cifar10_dir, log_every_steps=3)
  trainer.train_and_evaluate(every_step, tmp_path / 'one')
  trainer.train_and_evaluate(every_third, tmp_path / 'three')
  per_step = {r['step']: r for r in run_dir.read_metrics(tmp_path / 'one') if r['kind'] == 'train'}
  lines = [r for r in run_dir.read_metrics(tmp_path / 'three') if r['kind'] == 'train']
  assert [r['step'] for r in lines] == [3, 6, 8, 9, 12, 15, 16, 18, 21, 24]
  previous = 0
  for line in lines:
    window = range(previous + 1, line['step'] + 1)
    for key in ('loss', 'accuracy', 'grad_norm'):
      assert line[key] == pytest.approx(np.mean([per_step[s][key] for s in window]), rel=1e-5), (line['step'], key)
    assert line['epoch'] == -(-line['step'] // 8)
    previous = line['step']
  history = json.loads((tmp_path / 'three' / 'summary.json').read_text())
  assert history['train_loss'] == pytest.approx(np.mean([per_step[s]['loss'] for s in range(17, 25)]), rel=1e-5)


class _FakeClock:
  """The Progress clock, moved only by the fake step calls: step g takes STEP_SECONDS(g), and an engine's first
  call also waits COMPILE_SECONDS."""

  COMPILE_SECONDS = 100.0

  def __init__(self) -> None:
    self.now, self.compiled = 0.0, set()

  def __call__(self) -> float:
    return self.now

  def take(self, engine: object, first_step: int, length: int) -> None:
    if id(engine) not in self.compiled:
      self.compiled.add(id(engine))
      self.now += self.COMPILE_SECONDS
    self.now += sum(_step_seconds(g) for g in range(first_step, first_step + length))


def _step_seconds(g: int) -> float:
  return 1.0 + 0.1 * g  # every step a different duration, so that the wrong steps give a different rate


def _steady(timed_steps, batch_size=32):
  """The expected steady rate: the listed steps' images over their seconds."""
  return len(timed_steps) * batch_size / sum(_step_seconds(g) for g in timed_steps)


@pytest.fixture
def fake_clock(monkeypatch):
  """Every run book's Progress reads the fake clock; each train call (sequential or group) moves it."""
  clock = _FakeClock()
  monkeypatch.setattr(writers, 'Progress', functools.partial(writers.Progress, clock=clock))
  take_steps, train_call = trainer.take_steps, group.Group.train_call

  def timed_take_steps(exp, state, pending, epoch, batch, length, batches):
    result = take_steps(exp, state, pending, epoch, batch, length, batches)
    clock.take(exp, epoch * 8 + batch + 1, length)
    return result

  def timed_train_call(self, epoch, batch, length):
    result = train_call(self, epoch, batch, length)
    clock.take(self, epoch * 8 + batch + 1, length)
    return result

  monkeypatch.setattr(trainer, 'take_steps', timed_take_steps)
  monkeypatch.setattr(group.Group, 'train_call', timed_train_call)
  return clock


def test_the_steady_rate_leaves_out_each_stretchs_first_step_and_counts_every_stretch_of_a_resume(
    cifar10_dir, tmp_path, fake_clock
):
  """8-step epochs, one step a call. Stopped at step 12 and resumed: the stretches are 1-8, 9-12 | 13-16, 17-24;
  the first step of each (compilation, or the pipeline after an evaluation) is not timed."""
  first = trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir, num_train_steps=12), tmp_path / 'run')
  assert first['steady_images_per_second'] == pytest.approx(_steady([*range(2, 9), *range(10, 13)]))
  old = tmp_path / 'old'
  shutil.copytree(tmp_path / 'run', old)
  resumed = trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir), tmp_path / 'run')
  timed = [*range(2, 9), *range(10, 13), *range(14, 17), *range(18, 25)]
  assert resumed['steady_images_per_second'] == pytest.approx(_steady(timed))
  compile_included = 24 * 32 / (2 * _FakeClock.COMPILE_SECONDS + sum(_step_seconds(g) for g in range(1, 25)))
  assert resumed['steady_images_per_second'] > 1.5 * compile_included

  # A checkpoint written before the record kept the timed steps (it kept train_seconds) resumes; only the
  # stretches after it are timed.
  (record_file,) = old.glob('checkpoints/latest/12/record/metadata')
  record = json.loads(record_file.read_text())
  del record['timed_steps'], record['timed_seconds']
  record_file.write_text(json.dumps({**record, 'train_seconds': 3.5}))
  from_old = trainer.train_and_evaluate(helpers.tiny_config(cifar10_dir), old)
  assert from_old['steps'] == 24 and from_old['test_accuracy'] == pytest.approx(resumed['test_accuracy'])
  assert from_old['steady_images_per_second'] == pytest.approx(_steady([*range(14, 17), *range(18, 25)]))


def test_a_group_members_steady_rate_counts_every_stretch_of_a_resume(cifar10_dir, tmp_path, fake_clock):
  """Calls of 4 steps (log every 4), stopped at step 12 and resumed: stretches 1-8, 9-12 | 13-16, 17-24; the
  first call of each is not timed, so steps 5-8 and 21-24 are."""
  configs = [
      helpers.tiny_config(cifar10_dir, **{**BASE, 'num_epochs': 3}, **m, num_train_steps=12) for m in MEMBERS[:2]
  ]
  folders = [tmp_path / 'g0', tmp_path / 'g1']
  group.Group(configs, folders).run()
  summaries = group.Group([helpers.override(c, num_train_steps=-1) for c in configs], folders).run()
  for summary in summaries:
    assert summary['steps'] == 24
    assert summary['steady_images_per_second'] == pytest.approx(_steady([*range(5, 9), *range(21, 25)]))
