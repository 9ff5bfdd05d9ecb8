"""A study's runs grouped into variants: each metric's spread over seeds, and which variants differ from the best.

A run named `variant/seed=K` (a sweep with several seeds) belongs to `variant`; any other run is a variant of
its own. Only completed runs count. The variants are ranked by the mean of the ranking metric (final validation
accuracy, or test accuracy when no run has a validation split), and every other variant is tested against the
best: the paired t-test over the seeds both ran when their runs have the same seeds (same initialization and data
order for the same seed, and the same validation images), else Welch's t-test over seeds when both have at least
two runs, the two-proportion z-test on the evaluation set when both have one. The p-values of all these tests are
corrected together with Holm's method, and a difference is significant when the corrected p is below
stats.ALPHA. Beside each: the probability that the best beats the variant, and for a difference not found
significant, the seeds per variant that would detect it (stats.POWER) at the measured spread. The report writes
these; other tools (results pages) import them.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import math
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
  superiority: float | None = None  # P(a run of the best > a run of this variant), with >= 2 runs on each side
  seeds_to_detect: int | None = None  # seeds per variant that would detect a non-significant difference

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

  def by_seed(self, key: str) -> dict[Any, float]:
    """`key` of each run by its seed (config `seed`)."""
    return {run.config.get('seed'): run.results[key] for run in self.runs if run.results.get(key) is not None}

  def interval(self, key: str) -> tuple[float, float] | None:
    """The 95 % interval of `key` the table and plot show: the t interval over seeds (within [0, 1] for an
    accuracy), or with one run an accuracy's Wilson interval on its evaluation set; None without one."""
    spread = self.spreads.get(key)
    if spread is None:
      return None
    if spread.n > 1:
      return spread.low, spread.high
    split = dict(METRICS).get(key)
    size = self.examples.get(split) if split else None
    return stats.wilson_interval(spread.mean, size) if size else None

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
  """best minus `other` on `metric` by the test their runs allow (paired when they ran the same seeds), or None
  and the reason there is none."""
  a, b = best.values(metric), other.values(metric)
  seeds_a, seeds_b = best.by_seed(metric), other.by_seed(metric)
  if len(a) >= 2 and len(seeds_a) == len(a) and seeds_a.keys() == seeds_b.keys() and None not in seeds_a:
    return stats.paired_t_test([seeds_a[s] for s in seeds_a], [seeds_b[s] for s in seeds_a]), ''
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
    variant.spreads = {
        key: stats.spread(variant.values(key), bounds=(0.0, 1.0) if key in ACCURACY_METRICS else (-math.inf, math.inf))
        for key, _ in METRICS
        if variant.values(key)
    }
    variants.append(variant)
  variants.sort(key=lambda v: (metric not in v.spreads, -v.spreads[metric].mean if metric in v.spreads else 0, v.name))
  for other in variants[1:]:
    other.versus_best, other.untested = compare(variants[0], other, metric)
  tested = [v for v in variants[1:] if v.versus_best is not None]
  for variant, p in zip(tested, stats.holm([v.versus_best.p_value for v in tested])):
    variant.versus_best = dataclasses.replace(variant.versus_best, p_adjusted=p)
    _beside_the_test(variants[0], variant, metric)
  return variants


def _beside_the_test(best: Variant, other: Variant, metric: str) -> None:
  """Sets `other`'s probability of being beaten by the best and, for a difference not found, the seeds that
  would find it at the measured spread (the differences' std when paired, the two variants' pooled std else)."""
  a, b = best.values(metric), other.values(metric)
  if len(a) < 2 or len(b) < 2:
    return
  other.superiority = stats.probability_of_superiority(a, b)
  difference = other.versus_best
  if difference.significant():
    return
  if difference.test == 'paired t':
    seeds = best.by_seed(metric)
    std = stats.spread([seeds[s] - v for s, v in other.by_seed(metric).items()]).std
  else:
    std = math.sqrt((best.spreads[metric].std ** 2 + other.spreads[metric].std ** 2) / 2)
  other.seeds_to_detect = stats.seeds_to_detect(difference.difference, std, difference.test == 'paired t')


def points(value: float) -> str:
  """A difference of accuracies in percentage points."""
  return f'{100 * value:.2f}'


def verdict(variant: Variant, alpha: float = stats.ALPHA) -> str:
  """This variant against the best in a few words: best, indistinguishable, or worse by how much."""
  difference = variant.versus_best
  if difference is None:
    return f'not tested: {variant.untested}' if variant.untested else 'best'
  p = f'{difference.test} p={difference.p_value:.2g}'
  if difference.p_adjusted is not None:
    p += f', Holm p={difference.p_adjusted:.2g}'
  if variant.superiority is not None:
    p += f'; P(best > it)={variant.superiority:.2f}'
  if not difference.significant(alpha):
    return f'indistinguishable ({p}{_seeds_needed(variant)})'
  return f'worse by {points(difference.difference)} ± {points(difference.half_width)} points ({p})'


def _seeds_needed(variant: Variant) -> str:
  """'; 12 seeds each would detect 0.40 points' for a difference not found significant over seeds."""
  difference = variant.versus_best
  if variant.superiority is None or not difference.difference:
    return ''
  if variant.seeds_to_detect is None:
    return f'; over {stats.MAX_SEEDS:,} seeds each to detect {points(abs(difference.difference))} points'
  return f'; {variant.seeds_to_detect} seeds each would detect {points(abs(difference.difference))} points'


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
    lines.append(f'{_names([best, *tied])} are indistinguishable at α = {alpha:g} (Holm-corrected).')
  for variant in worse:
    lines.append(
        f'`{variant.name}` is worse than `{best.name}` by {points(variant.versus_best.difference)} ± '
        f'{points(variant.versus_best.half_width)} points ({variant.versus_best.test} '
        f'p={variant.versus_best.p_value:.2g}, Holm p={variant.versus_best.p_adjusted:.2g}).'
    )
  if untested:
    lines.append(f'Not tested: {_names(untested)} ({untested[0].untested}).')
  few = [v for v in variants if metric in v.spreads and v.spreads[metric].n > 1 and v.spreads[metric].too_few]
  if few:
    lines.append(
        f'Too few runs to conclude on {_names(few)} alone: n < {stats.MIN_RUNS}, or a t interval that reached '
        'past 0 or 100 % (cut there).'
    )
  return ' '.join(lines)
