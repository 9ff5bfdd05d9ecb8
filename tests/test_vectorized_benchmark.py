"""Smoke-tests benchmarks/vectorized.py --quick: it runs on CPU and writes the rows its table promises."""

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
      f'--data_dir={cifar10_dir}',
  ]
  done = subprocess.run(
      command,
      cwd=REPO,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
      capture_output=True,
      text=True,
      timeout=600,
      check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((tmp_path / 'vectorized.json').read_text())
  assert [r['row'] for r in results['rows']] == ['sequential', 'vectorized', 'single', 'fused', 'scan']
  assert all(r['ratio'] > 0 for r in results['rows'])
  table = (tmp_path / 'vectorized.md').read_text().splitlines()
  assert len(table) == 2 + len(results['rows'])
