"""A study's runs grouped into variants: each metric's spread over seeds, and which variants differ from the best.

A run named `variant/seed=K` (a sweep with several seeds) belongs to `variant`; any other run is a variant of
its own. Only completed runs count. The variants are ranked by the mean of the ranking metric (final validation
accuracy, or test accuracy when no run has a validation split), and every other variant is tested against the
best at level stats.ALPHA: Welch's t-test over seeds when both have at least two runs, the two-proportion z-test
on the evaluation set when both have one. The report writes these; other tools (results pages) import them.
"""

from collections.abc import Mapping, Sequence
import dataclasses
from typing import Any, Protocol

from cifar_jax.study import stats

# (summary key, the evaluation set it is measured on, for its binomial standard error; None for training numbers)
METRICS: tuple[tuple[str, str | None], ...] = (
    ('val_accuracy', 'val'),
    ('best_val_accuracy', 'val'),
    ('test_accuracy', 'test'),
    ('train_accuracy', None),
    ('val_loss', None),
    ('test_loss', None),
    ('train_loss', None),
)
ACCURACY_METRICS = frozenset(key for key, _ in METRICS if key.endswith('accuracy'))  # shown in %
METRIC_LABELS: Mapping[str, str] = {
    'val_accuracy': 'final validation accuracy',
    'best_val_accuracy': 'best validation accuracy',
    'test_accuracy': 'test accuracy',
    'train_accuracy': 'training accuracy',
    'val_loss': 'final validation loss',
    'test_loss': 'test loss',
    'train_loss': 'training loss',
}
EXAMPLES_KEYS = {'val': 'val_examples', 'test': 'test_examples'}  # summary.json's evaluation set sizes


class RunLike(Protocol):
  """What aggregation reads of a run (report.Run has it): its folder name, flat config, summary and status."""

  name: str
  config: dict[str, Any]
  results: dict[str, Any]

  @property
  def status(self) -> str:
    ...


@dataclasses.dataclass
class Variant:
  """The completed runs of one variant, each metric's spread over them, and its comparison with the best."""

  name: str
  runs: list[RunLike]
  spreads: dict[str, stats.Spread]
  examples: dict[str, int | None]  # evaluation set size by split ('val', 'test'); None when not recorded
  versus_best: stats.Difference | None = None  # best minus this variant, on the ranking metric
  untested: str = ''  # why there is no comparison, for a variant other than the best

  @property
  def n(self) -> int:
    """How many completed runs (seeds) the variant has."""
    return len(self.runs)

  @property
  def config(self) -> dict[str, Any]:
    """The flat config of its first run (its runs differ only in the seed)."""
    return self.runs[0].config

  def values(self, key: str) -> list[float]:
    """`key` of each of its runs that recorded it."""
    return [run.results[key] for run in self.runs if run.results.get(key) is not None]

  def binomial_se(self, key: str) -> float | None:
    """The binomial standard error of accuracy `key`'s mean on its evaluation set, None when the size is unknown."""
    split = dict(METRICS).get(key)
    if key not in self.spreads or not split or not self.examples.get(split):
      return None
    return stats.binomial_se(self.spreads[key].mean, self.examples[split])


def variant_of(run_name: str) -> str:
  """The variant a run belongs to: `a` for `a/seed=3`, the run's own name otherwise."""
  return run_name.split('/', 1)[0]


def ranking_metric(runs: Sequence[RunLike]) -> str:
  """The accuracy variants are ranked and tested by: validation when any run has a split, test otherwise."""
  return 'val_accuracy' if any(r.results.get('val_accuracy') is not None for r in runs) else 'test_accuracy'


def _examples(runs: Sequence[RunLike]) -> dict[str, int | None]:
  """Each split's evaluation set size as the runs' summaries record it (None when absent or not the same)."""
  sizes = {}
  for split, key in EXAMPLES_KEYS.items():
    recorded = {run.results.get(key) for run in runs}
    sizes[split] = recorded.pop() if len(recorded) == 1 else None
  return sizes


def compare(best: Variant, other: Variant, metric: str) -> tuple[stats.Difference | None, str]:
  """best minus `other` on `metric` by the test their run counts allow, or None and the reason there is none."""
  a, b = best.values(metric), other.values(metric)
  if len(a) >= 2 and len(b) >= 2:
    return stats.welch_test(a, b), ''
  if len(a) == 1 and len(b) == 1:
    split = dict(METRICS)[metric]
    n_best, n_other = best.examples.get(split), other.examples.get(split)
    if not (n_best and n_other):
      return None, 'evaluation set size not recorded'
    return stats.two_proportion_z_test(a[0], n_best, b[0], n_other), ''
  return None, f'n={len(b)} against n={len(a)} (a test needs n >= 2 on both sides, or one run each)'


def aggregate(runs: Sequence[RunLike], metric: str | None = None) -> list[Variant]:
  """The variants of the completed `runs`, best first by mean `metric` (default: ranking_metric), each compared
  with the best."""
  metric = metric or ranking_metric(runs)
  groups: dict[str, list[RunLike]] = {}
  for run in runs:
    if run.status == 'completed':
      groups.setdefault(variant_of(run.name), []).append(run)
  variants = []
  for name, members in groups.items():
    variant = Variant(name, members, {}, _examples(members))
    variant.spreads = {key: stats.spread(variant.values(key)) for key, _ in METRICS if variant.values(key)}
    variants.append(variant)
  variants.sort(key=lambda v: (metric not in v.spreads, -v.spreads[metric].mean if metric in v.spreads else 0, v.name))
  for other in variants[1:]:
    other.versus_best, other.untested = compare(variants[0], other, metric)
  return variants


def points(value: float) -> str:
  """A difference of accuracies in percentage points."""
  return f'{100 * value:.2f}'


def verdict(variant: Variant, alpha: float = stats.ALPHA) -> str:
  """This variant against the best in a few words: best, indistinguishable, or worse by how much."""
  difference = variant.versus_best
  if difference is None:
    return f'not tested: {variant.untested}' if variant.untested else 'best'
  p = f'{difference.test} p={difference.p_value:.2g}'
  if not difference.significant(alpha):
    return f'indistinguishable ({p})'
  return f'worse by {points(difference.difference)} ± {points(difference.half_width)} points ({p})'


def _names(variants: Sequence[Variant]) -> str:
  """`a`, `a and b`, `a, b and c`."""
  names = [f'`{v.name}`' for v in variants]
  return names[0] if len(names) == 1 else f'{", ".join(names[:-1])} and {names[-1]}'


def conclusion(variants: Sequence[Variant], metric: str, alpha: float = stats.ALPHA) -> str:
  """What the data support, in sentences: which variants are indistinguishable from the best, which are worse."""
  if not variants:
    return 'No variant has a completed run.'
  best = variants[0]
  label = METRIC_LABELS[metric]
  spread = best.spreads[metric]
  figure = (
      f'{points(spread.mean)} ± {points(spread.std)} % (mean ± std, n={spread.n})'
      if spread.n > 1
      else f'{points(spread.mean)} % (one run)'
  )
  lines = [f'Best by {label}: `{best.name}`, {figure}.']
  tied = [v for v in variants[1:] if v.versus_best is not None and not v.versus_best.significant(alpha)]
  worse = [v for v in variants[1:] if v.versus_best is not None and v.versus_best.significant(alpha)]
  untested = [v for v in variants[1:] if v.versus_best is None]
  if tied:
    lines.append(f'{_names([best, *tied])} are indistinguishable at α = {alpha:g}.')
  for variant in worse:
    lines.append(
        f'`{variant.name}` is worse than `{best.name}` by {points(variant.versus_best.difference)} ± '
        f'{points(variant.versus_best.half_width)} points ({variant.versus_best.test} '
        f'p={variant.versus_best.p_value:.2g}).'
    )
  if untested:
    lines.append(f'Not tested: {_names(untested)} ({untested[0].untested}).')
  return ' '.join(lines)
