"""Confusion matrix and per-class accuracy of a finished run, restored from its checkpoint."""

import jax.numpy as jnp
import numpy as np
import pytest

from cifar_jax.data import augment_jax, normalization
from cifar_jax.study import analysis
from cifar_jax.training import experiment, trainer
from tests import helpers


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
  labels = np.array([0, 0, 0, 1, 1, 2])
  predictions = np.array([0, 1, 0, 1, 1, 0])
  expected = np.array([[2, 1, 0], [0, 2, 0], [1, 0, 0]])
  counts = analysis.confusion_matrix(labels, predictions, 3)
  np.testing.assert_array_equal(counts, expected)
  np.testing.assert_allclose(analysis.per_class_accuracy(counts), [2 / 3, 1.0, 0.0])


def test_per_class_table_names_each_class_and_its_commonest_mistake():
  counts = np.eye(10, dtype=np.int64) * 9
  counts[3, 5] = 1  # one cat taken for a dog
  table = analysis.per_class_table(counts)
  assert '| cat | 90.00 | 10 | dog (1) |' in table
  assert '| airplane | 100.00 | 9 | – |' in table
  assert f'| **all** | {100 * 90 / 91:.2f} | 91 | |' in table


def test_confusion_of_a_trained_run_matches_its_test_accuracy(tmp_path, cifar10_dir):
  config = helpers.tiny_config(cifar10_dir, num_epochs=2)
  summary = trainer.train_and_evaluate(config, tmp_path / 'run')
  png, table = analysis.confusion(tmp_path / 'run')
  assert png.stat().st_size > 0
  total = table.read_text().splitlines()[-1]
  # The trainer measured the test accuracy through its own pipeline; the restored model must agree.
  assert total == f'| **all** | {100 * summary["test_accuracy"]:.2f} | 128 | |'
  assert f'at step {summary["steps"]}, test accuracy' in table.read_text()  # the step it evaluated, named


def test_an_unfinished_run_is_analysed_at_its_latest_checkpoint_and_says_so(tmp_path, cifar10_dir, capsys):
  config = helpers.tiny_config(cifar10_dir, num_epochs=2)
  trainer.train_and_evaluate(config, tmp_path / 'run')
  (tmp_path / 'run' / 'summary.json').unlink()  # as a run stopped before its end leaves it
  _, table = analysis.confusion(tmp_path / 'run')
  said = capsys.readouterr().out
  assert 'an unfinished run: its latest checkpoint' in said and 'an unfinished run' in table.read_text()


def test_confusion_refuses_a_folder_without_a_run(tmp_path):
  with pytest.raises(Exception, match='holds no run'):
    analysis.confusion(tmp_path)


def test_runs_of_one_architecture_share_the_prediction_program(cifar10_dir):
  """The parameters are arguments of the compiled program, so a second run's weights compile nothing new, and
  its predictions are its own model's (its forward pass called directly)."""
  images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
  analysis._classes.clear_cache()  # pylint: disable=protected-access
  for seed in (0, 1):
    config = helpers.tiny_config(cifar10_dir, seed=seed, eval_batch_size=16)
    model = experiment.build_model(config)
    inputs = augment_jax.normalize(jnp.asarray(images, jnp.float32) / 255, normalization.DEFAULT)
    expected = np.asarray(model(inputs, train=False)).argmax(-1)
    np.testing.assert_array_equal(analysis.predict(model, images, config), expected)
  assert analysis._classes._cache_size() == 1  # pylint: disable=protected-access
