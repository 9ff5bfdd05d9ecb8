"""init_from: a run starts from a PyTorch state_dict (an .npz without torch, kuangliu's .pth with it), evaluates it
with num_epochs=0 to the image, and `cifar_jax.analysis` finds the same predictions."""

import sys

import jax
import ml_collections
import numpy as np
import pytest

import numpy_torch
from cifar_jax.data import cifar10
from cifar_jax.errors import UserError
from cifar_jax.study import analysis
from cifar_jax.training import experiment, run_dir, trainer
from configs import default

TEST_IMAGES = 200
KUANGLIU = (np.array([0.4914, 0.4822, 0.4465]), np.array([0.2023, 0.1994, 0.2010]))  # main.py's Normalize


def _config(data_dir, init_from, width=4):
  """Our ResNet in kuangliu's layout (one block per stage) at `width`, evaluating `init_from` on the test images."""
  config = default.get_config()
  config.model.width, config.model.stage_sizes = width, (1, 1, 1, 1)
  config.init_from = str(init_from)
  config.data.normalization = 'kuangliu'
  config.data.data_dir, config.data.pipeline = str(data_dir), 'device'
  config.data.max_train_examples, config.data.max_eval_examples = 256, TEST_IMAGES
  config.num_epochs, config.batch_size, config.eval_batch_size = 0, 64, 100
  return config


def _check_run(workdir, config, expected, capsys, plots=False):
  """Runs `config` in `workdir`; its test accuracy, banner and analysis's predictions match `expected` (with
  `plots`, python -m cifar_jax.analysis's files too)."""
  summary = trainer.train_and_evaluate(config, workdir)
  labels = cifar10.load(config.data.data_dir, max_train_examples=1, max_eval_examples=TEST_IMAGES).test.labels
  assert summary['steps'] == 0 and summary['test_examples'] == TEST_IMAGES
  assert round(summary['test_accuracy'] * TEST_IMAGES) == (expected == labels).sum()
  banner = capsys.readouterr().out
  assert "inputs standardised with data.normalization='kuangliu' (mean 0.4914, 0.4822, 0.4465;" in banner
  assert f'PyTorch tensors of {config.init_from}' in banner
  if plots:
    analysis.confusion(workdir)  # what python -m cifar_jax.analysis runs
    title = f'test accuracy {100 * (expected == labels).mean():.2f} % on {TEST_IMAGES}'
    assert title in (workdir / 'per_class.md').read_text()
  saved = ml_collections.ConfigDict(run_dir.read_json(workdir / run_dir.CONFIG_FILE))
  images = cifar10.load(config.data.data_dir, max_train_examples=1, max_eval_examples=TEST_IMAGES).test.images
  np.testing.assert_array_equal(analysis.predict(analysis.restore_model(workdir, saved)[0], images, saved), expected)


def test_an_npz_state_dict_is_evaluated_to_the_image_without_torch(cifar10_dir, tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, 'torch', None)  # import torch raises ImportError
  sd = numpy_torch.random_state_dict(numpy_torch.kuangliu_shapes(), seed=5)
  np.savez(tmp_path / 'net.npz', **{f'module.{k}': v for k, v in sd.items()})
  images = cifar10.load(str(cifar10_dir), max_train_examples=1, max_eval_examples=TEST_IMAGES).test.images
  inputs = (images.transpose(0, 3, 1, 2) / 255 - KUANGLIU[0][:, None, None]) / KUANGLIU[1][:, None, None]
  expected = numpy_torch.kuangliu_forward(sd, inputs).argmax(1)  # torch's eval forward, in numpy
  _check_run(tmp_path / 'run', _config(cifar10_dir, tmp_path / 'net.npz'), expected, capsys)


def test_a_fine_tune_starts_from_the_files_weights(cifar10_dir, tmp_path):
  sd = numpy_torch.random_state_dict(numpy_torch.kuangliu_shapes(), seed=6)
  np.savez(tmp_path / 'net.npz', **sd)
  config = _config(cifar10_dir, tmp_path / 'net.npz')
  config.num_epochs = 1
  state = experiment.build_experiment(config, trainer.load_data(config)).state
  stem = jax.tree.leaves(state.params['stem'])  # conv kernel (HWIO), then BatchNorm bias and scale
  np.testing.assert_allclose(stem[0], sd['conv1.weight'].transpose(2, 3, 1, 0), rtol=1e-6)
  np.testing.assert_allclose(jax.tree.leaves(state.model_state['stem'])[0], sd['bn1.running_mean'], rtol=1e-6)


@pytest.mark.parametrize(
    'init_from, message',
    [('missing.pth', 'missing.pth: no such file'), ('weights.h5', r'must end in \.pth, \.pt, \.npz')],
)
def test_a_bad_init_from_is_refused_before_anything_is_loaded(tmp_path, init_from, message):
  config = _config(tmp_path / 'no_data', tmp_path / init_from)
  if init_from.endswith('.h5'):
    (tmp_path / init_from).write_bytes(b'')
  with pytest.raises(UserError, match=message):
    trainer.check_config(config)


def _kuangliu():
  try:
    import kuangliu  # noqa: PLC0415 (needs torch)
  except ImportError:
    return None
  return kuangliu


@pytest.mark.skipif(_kuangliu() is None, reason="torch is not installed (pip install -e '.[torch]')")
def test_a_kuangliu_checkpoint_trained_in_pytorch_gives_the_same_test_accuracy(cifar10_dir, tmp_path, capsys):
  """kuangliu's ResNet trained in PyTorch, saved as its main.py saves it (DataParallel keys), evaluated here."""
  out = tmp_path / 'checkpoint' / 'ckpt.pth'
  correct, total, predicted = _kuangliu().train_and_save(
      out, str(cifar10_dir), steps=30, width=8, batch_size=64, test_examples=TEST_IMAGES
  )
  assert total == TEST_IMAGES and 0 < correct < total
  _check_run(tmp_path / 'run', _config(cifar10_dir, out, width=8), predicted, capsys, plots=True)
