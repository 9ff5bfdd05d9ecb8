"""Sweeps on Optuna's queue: several workers, a worker killed mid-run, duplicate and stale trials, bad storage."""

import csv
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import ml_collections
import optuna
import pytest
from optuna.trial import TrialState

from cifar_jax import config_lib
from cifar_jax.study import queue, sweep, workers
from cifar_jax.errors import ConfigError, UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMING = {
    'wall_seconds',
    'steady_images_per_second',
}  # the only columns that differ between two sweeps of the same runs


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
  monkeypatch.chdir(REPO)


def _smoke(rates=(0.01, 0.02, 0.05), **fields):
  config = config_lib.load_config_file('configs/sweeps/smoke.py')
  config.grid = ml_collections.ConfigDict({'optimizer': {'learning_rate': list(rates)}})
  for key, value in fields.items():
    config[key] = value
  return config


def _rows(workdir: pathlib.Path) -> dict[str, dict[str, str]]:
  with (workdir / 'results.csv').open() as f:
    return {row['name']: {k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)}


def _trials(workdir: pathlib.Path) -> list[optuna.trial.FrozenTrial]:
  storage = optuna.storages.JournalStorage(
      optuna.storages.journal.JournalFileBackend(str(workdir / queue.JOURNAL_FILE))
  )
  return optuna.load_study(study_name=f'sweep-{workdir.name}', storage=storage).get_trials()


def test_two_workers_train_every_run_once_and_write_what_one_worker_writes(tmp_path, cifar10_dir, capfd):
  cli = [f'data.data_dir={cifar10_dir}']
  sweep.run_sweep(_smoke(), tmp_path / 'one', cli)
  capfd.readouterr()
  records = sweep.run_sweep(_smoke(workers='2'), tmp_path / 'two', cli)
  out = capfd.readouterr().out
  assert 'by 2 workers' in out
  assert [r['status'] for r in records] == ['completed'] * 3
  for record in records:  # each run trained by exactly one of the two processes
    assert out.count(f'{record["name"]}: completed') == 1, out
  assert _rows(tmp_path / 'two') == _rows(tmp_path / 'one')
  trials = _trials(tmp_path / 'two')
  assert sorted(queue.unit_of(t) for t in trials) == sorted(r['name'] for r in records)
  assert {t.state for t in trials} == {TrialState.COMPLETE}


def _command(workdir, cifar10_dir, *extra):
  return [
      sys.executable,
      '-m',
      'cifar_jax.sweep',
      '--config=configs/sweeps/smoke.py',
      f'--workdir={workdir}',
      '--config.heartbeat=1',
      f'--set=data.data_dir={cifar10_dir}',
      *extra,
  ]


def test_a_worker_killed_mid_run_leaves_its_run_to_another_that_resumes_it(tmp_path, cifar10_dir):
  workdir = tmp_path / 'sweep'
  command = _command(workdir, cifar10_dir, '--set=num_epochs=20')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  latest = workdir / 'learning_rate=0.01' / 'checkpoints' / 'latest'
  deadline = time.monotonic() + 240
  while not (latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir())):
    assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()[-3000:]
    time.sleep(0.05)
  first.send_signal(signal.SIGKILL)  # a lost machine: no handler runs, its trial stays 'running'
  first.wait()
  assert not (workdir / 'learning_rate=0.01' / 'summary.json').exists()  # killed mid-run

  second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
  assert 'Resuming' in second.stdout and '[1/2] learning_rate=0.01: completed' in second.stdout
  assert second.stdout.count(': completed') == 2  # each run trained (to its end) once
  trials = _trials(workdir)
  killed = [t for t in trials if t.state == TrialState.FAIL]
  assert [queue.unit_of(t) for t in killed] == ['learning_rate=0.01']
  retry = [t for t in trials if t.system_attrs.get('failed_trial') == killed[0].number]
  assert [t.state for t in retry] == [TrialState.COMPLETE]
  summaries = [(workdir / n / 'summary.json').read_text() for n in ('learning_rate=0.01', 'learning_rate=0.05')]
  assert all('"status": "completed"' in s and '"epochs": 20' in s for s in summaries)


POSTGRES = os.environ.get('CIFAR_JAX_TEST_POSTGRES', '')  # a database URL: the queue tests run against it too


@pytest.fixture(params=['journal', 'postgresql'])
def study(tmp_path, request):
  """A fresh queue in the workdir's journal, or in the PostgreSQL database CIFAR_JAX_TEST_POSTGRES names (not in
  CI: README 'Workers, and several machines' says how to start one; benchmarks/README.md how it was run)."""
  if request.param == 'postgresql' and not POSTGRES:
    pytest.skip('set CIFAR_JAX_TEST_POSTGRES=postgresql://... to run the queue tests against PostgreSQL')
  return queue.open_study(tmp_path, POSTGRES if request.param == 'postgresql' else '', uuid.uuid4().hex, heartbeat=1)


def test_a_unit_enqueued_twice_is_trained_by_the_first_trial_only(study):
  queue.enqueue_missing(study, ['a', 'b'])
  queue.enqueue_missing(study, ['a', 'b'])  # nothing new: both wait
  study.enqueue_trial({}, user_attrs={queue.UNIT: 'a'})  # as a second machine enqueuing at the same moment would
  first, second, third = queue.take(study), queue.take(study), queue.take(study)
  assert [queue.unit_of(t) for t in (first, second, third)] == ['a', 'b', 'a']
  assert not queue.is_duplicate(study, first) and not queue.is_duplicate(study, second)
  assert queue.is_duplicate(study, third)
  assert queue.take(study) is None and queue.busy(study)


def test_a_silent_trial_is_failed_and_enqueued_again_with_its_unit(study):
  queue.enqueue_missing(study, ['a'])
  trial = queue.take(study)
  with queue.alive(study, trial):  # one heartbeat, then silence: the worker died
    pass
  assert queue.take(study) is None
  time.sleep(queue.GRACE * 1 + 1.5)
  retry = queue.take(study)
  assert retry is not None and queue.unit_of(retry) == 'a'
  assert study.trials[trial.number].state == TrialState.FAIL
  assert study.trials[retry.number].system_attrs['failed_trial'] == trial.number


def test_a_stopped_trial_goes_back_to_the_queue(study):
  queue.enqueue_missing(study, ['a'])
  trial = queue.take(study)
  queue.requeue(study, trial)
  again = queue.take(study)
  assert queue.unit_of(again) == 'a' and study.trials[trial.number].user_attrs['stopped']


def test_a_corrupt_journal_is_one_clear_error(tmp_path):
  (tmp_path / queue.JOURNAL_FILE).write_bytes(b'garbage\xff{{\n')
  with pytest.raises(UserError, match=r'^the sweep queue .*optuna.journal cannot be used: .*delete a corrupt journal'):
    queue.open_study(tmp_path, '', 'test', heartbeat=1)


@pytest.mark.parametrize(
    'storage, reason',
    [
        ('sqlite:////nonexistent/folder/queue.db', 'unable to open database file'),
        ('postgresql://user:secret@127.0.0.1:9/sweeps', ''),  # no server there (or no driver installed)
    ],
)
def test_an_unreachable_storage_is_one_line_from_the_command(tmp_path, cifar10_dir, storage, reason):
  result = subprocess.run(
      _command(tmp_path / 'sweep', cifar10_dir, f'--config.storage={storage}'),
      cwd=REPO,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 1
  lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(lines) == 1 and 'the sweep queue' in lines[0] and reason in lines[0], result.stderr[-2000:]
  assert 'Traceback' not in result.stderr and 'secret' not in result.stderr


def test_worker_devices_one_gpu_each_or_a_share_of_the_cores():
  assert workers.assignment(0, 2, [], [0, 1, 2, 3]) == ({}, {0, 1})
  assert workers.assignment(1, 2, [], [0, 1, 2, 3]) == ({}, {2, 3})
  assert workers.assignment(2, 3, [], [0, 1, 2, 3, 4, 5, 6]) == ({}, {4, 5, 6})  # the last takes the rest
  assert workers.assignment(3, 4, [], [0, 1]) == ({}, {1})  # more workers than cores: one core each, in turn
  assert workers.assignment(1, 2, ['0', '1'], [0, 1]) == ({'CUDA_VISIBLE_DEVICES': '1'}, {0, 1})
  env, _ = workers.assignment(3, 4, ['0', '1'], [0, 1])  # two workers on each GPU, each with half of 90 %
  assert env == {'CUDA_VISIBLE_DEVICES': '1', 'XLA_PYTHON_CLIENT_MEM_FRACTION': '0.450'}


def test_worker_counts(monkeypatch):
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0,1,2')
  assert workers.worker_count('auto') == 3 and workers.worker_count('4') == 4 and workers.worker_count(2) == 2
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
  assert workers.worker_count('auto') == 1  # no GPU: one worker with every core
  for bad in ('0', 'two', '1.5', -1):
    with pytest.raises(ConfigError, match="must be a whole number >= 1 or 'auto'"):
      workers.worker_count(bad)
