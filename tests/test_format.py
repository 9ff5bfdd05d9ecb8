"""The tree is formatted by the formatter pinned in pyproject.toml (pyink, Google's Black: 2-space indents)."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_python_file_is_formatted_as_pyproject_says():
  result = subprocess.run(
      [sys.executable, '-m', 'pyink', '--check', 'cifar_jax', 'configs', 'tests', 'benchmarks'],
      cwd=REPO,
      capture_output=True,
      text=True,
  )
  assert result.returncode == 0, f'format with `pyink cifar_jax configs tests benchmarks`:\n{result.stderr}'
