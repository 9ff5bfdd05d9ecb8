"""Smoke-tests benchmarks/vectorized.py --quick: it runs on CPU, with another --config and a timed subset of the
sequential runs, and writes the rows its table promises."""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_quick_run_writes_every_row(cifar10_dir, tmp_path):
  command = [
      sys.executable,
      'benchmarks/vectorized.py',
      '--quick',
      '--out',
      str(tmp_path),
      '--config=configs/tp3/CNN_LeNet-5.py',
      '--sequential=1',
  ]
  done = subprocess.run(
      command,
      cwd=REPO,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu', 'CIFAR10_DIR': str(cifar10_dir)},  # the configs' own lookup
      capture_output=True,
      text=True,
      timeout=600,
      check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((tmp_path / 'vectorized.json').read_text())
  rows = results['rows']
  assert [r['row'] for r in rows] == ['sequential (1 timed, x 2)', 'vectorized', 'single', 'fused', 'scan']
  assert (rows[0]['members'], rows[0]['timed_members']) == (2, 1)
  assert all(r['ratio'] > 0 for r in rows)
  assert results['config'] == 'configs/tp3/CNN_LeNet-5.py'
  table = (tmp_path / 'vectorized.md').read_text().splitlines()
  assert table[0].startswith('configs/tp3/CNN_LeNet-5.py, 1 epoch(s), on ')
  assert len(table) == 4 + len(rows) + 2
  assert results['probe']['members'] == 2 and table[-1].startswith("vectorize='auto' probe: 2 runs of ")


def test_a_sequential_count_below_one_is_refused(tmp_path):
  done = subprocess.run(
      [sys.executable, 'benchmarks/vectorized.py', '--out', str(tmp_path), '--sequential=0'],
      cwd=REPO,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
      capture_output=True,
      text=True,
      timeout=120,
      check=False,
  )
  assert done.returncode == 2 and 'error: --sequential=0 must be at least 1' in done.stderr


def test_missing_data_stops_in_one_error_line(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != 'CIFAR10_DIR'} | {'JAX_PLATFORMS': 'cpu'}
  done = subprocess.run(
      [sys.executable, 'benchmarks/vectorized.py', '--quick', '--out', str(tmp_path), '--sequential=1'],
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      timeout=120,
      check=False,
  )
  assert done.returncode == 1, done.stderr[-3000:]
  lines = done.stderr.strip().splitlines()  # the loader's own notices (its tfds fallback), then the error
  assert 'Traceback' not in done.stderr and [line for line in lines if line.startswith('error: ')] == lines[-1:]
  assert 'CIFAR10_DIR' in lines[-1]
