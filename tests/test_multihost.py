"""Several hosts: two processes of two CPU devices each, joined by jax.distributed, train as one of four."""

import json
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import helpers
from cifar_jax.training import trainer


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.mark.parametrize('pipeline', ['tfdata', 'device'])
def test_two_processes_train_like_one_process_with_four_devices(tmp_path, cifar10_dir, pipeline):
  config_flags = helpers.tiny_flags(cifar10_dir, num_epochs=2, **{'data.pipeline': pipeline})
  port = _free_port()
  processes = [
      subprocess.Popen(
          [
              sys.executable,
              '-m',
              'cifar_jax.main',
              *config_flags,
              f'--workdir={tmp_path / "two"}',
              '--num_processes=2',
              f'--process_id={i}',
              f'--coordinator_address=localhost:{port}',
          ],
          cwd=helpers.REPO,
          env=helpers.cli_env(devices=2),
          stdout=subprocess.PIPE,
          stderr=subprocess.PIPE,
          text=True,
      )
      for i in range(2)
  ]
  outputs = [p.communicate(timeout=300) for p in processes]
  for p, (_, err) in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]
  # Only process 0 reports and writes logs.
  assert 'Done: test accuracy' in outputs[0][0] and 'step ' not in outputs[1][0]

  single = trainer.train_and_evaluate(
      helpers.tiny_config(cifar10_dir, num_epochs=2, **{'data.pipeline': pipeline}), tmp_path / 'one'
  )
  two = helpers.summary(tmp_path / 'two')
  for key in ('steps', 'epochs', 'test_accuracy', 'val_accuracy', 'train_accuracy'):
    assert two[key] == single[key], key
  for key in ('test_loss', 'val_loss', 'train_loss'):
    assert two[key] == pytest.approx(single[key], rel=1e-5), key
  lines_two, lines_one = helpers.metric_lines(tmp_path / 'two'), helpers.metric_lines(tmp_path / 'one')
  assert [(l['kind'], l['step']) for l in lines_two] == [(l['kind'], l['step']) for l in lines_one]  # no duplicates
  for a, b in zip(
      jax.tree.leaves(helpers.latest_params(tmp_path / 'two')), jax.tree.leaves(helpers.latest_params(tmp_path / 'one'))
  ):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert json.loads((tmp_path / 'two' / 'config.json').read_text())['batch_size'] == 32
