"""Smoke-tests the benchmarks: throughput.py --quick runs on CPU and writes the table and JSON it promises."""

import importlib.util
import itertools
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
HEADER = (
    '| model | batch | dtype | parallelism | pipeline | img/s | ÷ synthetic | epoch s | input img/s | compile s '
    '| peak GiB | GFLOP/img | % of peak | ours ÷ torch | note |'
)


def _throughput(out: pathlib.Path, *flags: str) -> tuple[dict, list[str]]:
  """Runs benchmarks/throughput.py --quick with `flags` on CPU; its JSON results and Markdown table lines."""
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  command = [sys.executable, 'benchmarks/throughput.py', '--quick', '--out', str(out), *flags]
  done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  table = [line for line in (out / 'throughput.md').read_text().splitlines() if line.startswith('|')]
  return json.loads((out / 'throughput.json').read_text()), table


def test_quick_run_writes_every_row(tmp_path: pathlib.Path) -> None:
  results, table = _throughput(tmp_path)
  assert results['platform'] == 'cpu' and results['device_count'] == 4 and results['quick']
  assert {'jax', 'jaxlib', 'flax'} <= results['versions'].keys()
  rows = results['rows']
  grid = set(itertools.product(('float32', 'bfloat16'), ('jit', 'pmap'), ('synthetic', 'device', 'tfdata')))
  assert {(r['dtype'], r['parallelism'], r['pipeline']) for r in rows} == grid and len(rows) == len(grid)
  for row in rows:
    if row['note'].startswith('skipped'):  # tfdata where TensorFlow is not installed.
      assert row['pipeline'] == 'tfdata'
      continue
    assert row['model'] == 'resnet18(width=8, stage_sizes=[1])' and row['batch_size'] == 16  # the toy, labelled so
    assert row['images_per_s'] > 0 and row['epoch_s'] > 0 and row['compile_s'] > 0
    assert row['vs_synthetic'] == pytest.approx(
        row['images_per_s']
        / next(
            r['images_per_s']
            for r in rows
            if r['pipeline'] == 'synthetic' and (r['dtype'], r['parallelism']) == (row['dtype'], row['parallelism'])
        )
    )
    assert (row['input_images_per_s'] is None) == (row['pipeline'] == 'synthetic')
    assert row['note'].startswith('pipeline start') == (row['pipeline'] != 'synthetic')
    assert row['peak_memory_gib'] is None  # The CPU keeps no memory statistics.
    assert row['gflops_per_image'] > 0 and row['peak_fraction'] is None  # no peak known for a CPU
  assert table[0] == HEADER and len(table) == 2 + len(rows)
  assert all(line.count('|') == HEADER.count('|') for line in table)
  assert all('| n/a |' in line for line in table[2:])


@pytest.mark.skipif(importlib.util.find_spec('torch') is None, reason='PyTorch is not installed')
def test_quick_run_with_the_torch_reference(tmp_path: pathlib.Path) -> None:
  results, table = _throughput(tmp_path, '--torch', '--dtypes=bfloat16', '--parallelism=jit', '--pipelines=synthetic')
  ours, theirs = results['rows']
  assert (ours['parallelism'], theirs['parallelism']) == ('jit', 'torch eager')
  assert theirs['images_per_s'] > 0 and 'torch' in results['versions']
  assert theirs['ours_vs_torch'] == pytest.approx(ours['images_per_s'] / theirs['images_per_s'])
  assert len(table) == 4 and '| torch eager | synthetic |' in table[3]


def test_a_grid_cut_short_leaves_every_row_it_measured(tmp_path: pathlib.Path) -> None:
  """Killed right after its first row is printed, the script has already written that row to both outputs."""
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  command = [sys.executable, 'benchmarks/throughput.py', '--quick', '--out', str(tmp_path), '--pipelines=synthetic']
  process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  try:
    first = next(line for line in process.stdout if line.startswith('| resnet18'))
    (row,) = json.loads((tmp_path / 'throughput.json').read_text())['rows']
    assert row['images_per_s'] > 0 and first.strip() in (tmp_path / 'throughput.md').read_text()
  finally:
    process.kill()
    process.wait()


def test_the_benchmarks_share_one_markdown_table_helper() -> None:
  """benchmarks/bench_tables.py: the header every benchmark writes, and rows with a missing value's own text."""
  spec = importlib.util.spec_from_file_location('bench_tables', REPO / 'benchmarks' / 'bench_tables.py')
  tables = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tables)
  env = {'device_count': 2, 'device': 'cpu', 'platform': 'cpu', 'command': 'x.py --quick', 'versions': {'jax': '0.1'}}
  assert tables.header('Speed', env, 'note.') == [
      '# Speed on 2 x cpu (cpu)',
      '',
      '`x.py --quick`',
      '',
      'jax 0.1; note.',
      '',
  ]
  columns = (('a', 'A', '{:.2f}', 'n/a'), ('b', 'B', '{}', ''))
  rows = [{'a': 1.234, 'b': 'x'}, {'a': None}]
  assert tables.table(columns, rows) == ['| A | B |', '|---|---|', '| 1.23 | x |', '| n/a |  |']
