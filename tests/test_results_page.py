"""The results page's accuracies and the UPV figure: a 95 % interval inside [0, 100] with its method and n, 'too
few to conclude' where the runs are, and the rows not yet measured labelled as such."""

import json

import numpy as np
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from cifar_jax import plotting
from cifar_jax.reproduce import plan, records, results_page
from cifar_jax.study import aggregate


def _runs(variant, accuracies, examples=10_000):
  """Completed runs of `variant`, one per accuracy (seed = position), measured on `examples` test images."""
  return [
      records.RecordedRun(
          f'{variant}/seed={seed}',
          {'seed': seed, 'num_epochs': 100},
          {'test_accuracy': a, 'best_val_accuracy': a, 'best_epoch': 50, 'epochs': 100, 'wall_seconds': 60.0}
          | {'test_examples': examples, 'val_examples': examples // 2},
      )
      for seed, a in enumerate(accuracies)
  ]


def _variant(accuracies, examples=10_000):
  (variant,) = aggregate.aggregate(_runs('v', accuracies, examples), 'test_accuracy')
  return variant


def _bounds(cell):
  """The [low, high] of a cell, in %."""
  low, high = cell.split('[')[1].split(']')[0].split(', ')
  return float(low), float(high)


def test_one_run_has_the_wilson_interval_of_its_evaluation_set():
  cell = results_page.percent(_variant([0.599]), 'test_accuracy')
  wilson = scipy_stats.binomtest(5990, 10_000).proportion_ci(0.95, method='wilson')
  assert _bounds(cell) == (round(100 * wilson.low, 2), round(100 * wilson.high, 2)) == (58.94, 60.86)
  assert cell.startswith('59.90 % [') and cell.endswith('(Wilson, n=1 on 10,000 images)')


def test_seeds_have_the_t_interval_with_their_n():
  values = [0.4906, 0.4812, 0.5003, 0.4851, 0.4977]
  cell = results_page.percent(_variant(values), 'test_accuracy')
  low, high = scipy_stats.t.interval(0.95, 4, loc=np.mean(values), scale=scipy_stats.sem(values))
  assert _bounds(cell) == (round(100 * low, 2), round(100 * high, 2))
  assert cell.endswith('(t, n=5)') and f'± {100 * np.std(values, ddof=1):.2f} %' in cell


def test_an_interval_that_reaches_past_100_is_cut_there_and_too_few_to_conclude():
  values = [0.99, 0.60]
  raw = scipy_stats.t.interval(0.95, 1, loc=np.mean(values), scale=scipy_stats.sem(values))
  assert raw[0] < 0 and raw[1] > 1  # t(0.975, 1) = 12.71: the interval of two runs spans more than [0, 1]
  cell = results_page.percent(_variant(values), 'test_accuracy')
  assert _bounds(cell) == (0.0, 100.0)
  assert cell.endswith(f'(t, n=2: {results_page.TOO_FEW})')


def test_without_runs_a_cell_says_not_yet_measured():
  assert results_page.percent(None, 'test_accuracy') == results_page.NOT_MEASURED


def test_the_note_names_the_intervals_the_n_and_the_evaluation_sets_in_the_right_number():
  note = results_page.interval_note([_variant([0.6]), _variant([0.6, 0.62, 0.61])], 'row')
  assert 'Student t over the seeds, cut to 0-100 %; Wilson on the evaluation set for one run' in note
  assert 'n = 1, 3 runs per row' in note and 'validation 5,000 images, test 10,000 images' in note
  assert 'n = 1 run per variant;' in results_page.interval_note([_variant([0.6])])


def _upv_results(measured):
  """The UPV studies' results with `measured` ({variant: accuracies}) recorded, the other rows without runs."""
  found = {}
  for study in plan.find('upv'):
    entries = {
        name: records.Entry(_runs(name, accuracies), 'cmd', 'CPU', 'here')
        for name, accuracies in measured.items()
        if name in study.variants
    }
    found[study.name] = results_page.study_results(study, entries)
  return found


@pytest.fixture
def drawn(monkeypatch):
  """The figures plotting.save is given, in order (saved as usual; their artists stay readable after)."""
  figures, save = [], plotting.save

  def keep(figure, path, **kwargs):
    figures.append(figure)
    return save(figure, path, **kwargs)

  monkeypatch.setattr(results_page.plotting, 'save', keep)
  return figures


def test_upv_figure_labels_each_unmeasured_row_and_keeps_every_bar_inside_0_100(drawn, tmp_path):
  # Row 1 one run (Wilson), row 2 two seeds (t cut at 100 %: too few to conclude), ResNet Final three seeds.
  measured = {'1_cnn': [0.82], '2_da_lra': [0.99, 0.60], '6_resnet_final': [0.921, 0.925, 0.93]}
  path = tmp_path / 'upv.png'
  results_page.plot_upv(_upv_results(measured), path)
  (figure,) = drawn
  axis = figure.axes[0]
  labels = {round(y): tick.get_text() for y, tick in zip(axis.get_yticks(), axis.get_yticklabels())}
  unmeasured = {row.label for row in plan.UPV_TABLE if row.variant not in measured}
  texts = [(t.get_text(), labels[round(t.get_position()[1])]) for t in axis.texts]
  assert sorted(label for text, label in texts if text == results_page.NOT_MEASURED) == sorted(unmeasured)
  assert sum(text == results_page.TOO_FEW for text, _ in texts) == 2  # row 2's test and best val
  x = [
      x
      for container in axis.containers
      for collection in container.lines[2]
      for segment in collection.get_segments()
      for x, _ in segment
  ]
  assert min(x) >= 0 and max(x) == pytest.approx(100)  # row 2's bars end at 100 %, none beyond
  legend = [t.get_text() for t in axis.get_legend().get_texts()]
  assert legend == ['report: best test acc (selected on test)', 'ours: final test acc', 'ours: best val acc']
  assert 'n = 1, 2, 3 runs per row; 3 of 6 rows measured' in axis.get_title()
  assert 'Student t over the seeds' in axis.get_xlabel() and 'Wilson' in axis.get_xlabel()
  with Image.open(path) as image:
    names = json.loads(image.text['Description'])
  assert f'+ResNet: {results_page.NOT_MEASURED}' in names and 'CNN' in names


def test_upv_figure_with_nothing_measured_says_so_on_every_row(drawn, tmp_path):
  results_page.plot_upv(_upv_results({}), tmp_path / 'upv.png')
  axis = drawn[0].axes[0]
  assert [t.get_text() for t in axis.texts] == [results_page.NOT_MEASURED] * len(plan.UPV_TABLE)
  assert 'none measured yet' in axis.get_title()
