"""The statistics of a study: spread over seeds, intervals, and tests of whether two variants differ.

Over seeds (several runs per variant): the sample mean and standard deviation (ddof=1), a Student t interval
for the mean (clipped to the metric's range, an accuracy's [0, 1], and flagged when it had to be) beside a
percentile bootstrap interval, and between two variants Welch's unequal-variance t-test (Welch-Satterthwaite
degrees of freedom), or the paired t-test where their runs share seeds. The probability that one variant beats
another is P(X_a > X_b) + P(X_a = X_b) / 2 over every pair of their runs; for a difference the test does not
see, `seeds_to_detect` is the number of seeds that would see it with probability POWER at the measured spread.
Several variants tested against one best are corrected with Holm's step-down method. From one run: an accuracy
p measured on n images has the binomial standard error sqrt(p(1-p)/n) and the Wilson score interval, and two
accuracies are compared with the pooled two-proportion z-test. All tests are two-sided.
"""

from collections.abc import Sequence
import dataclasses
import math

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95  # the level of every interval the report gives
ALPHA = 0.05  # the significance level of every test the report makes
POWER = 0.8  # the probability of detecting a difference that seeds_to_detect aims for
MIN_RUNS = 3  # fewer runs give no usable interval: t(0.975, 1) = 12.7, and 2 values bootstrap to 3 means
BOOTSTRAP_RESAMPLES = 9999
MAX_SEEDS = 1000  # seeds_to_detect gives up above this


@dataclasses.dataclass(frozen=True)
class Spread:
  """n values as mean, sample standard deviation, the t interval for the mean (within the metric's bounds:
  `clipped` when it reached past them) and the percentile bootstrap interval; std and intervals nan when n < 2."""

  n: int
  mean: float
  std: float
  low: float
  high: float
  clipped: bool = False
  boot_low: float = math.nan
  boot_high: float = math.nan

  @property
  def too_few(self) -> bool:
    """Whether the runs are too few to conclude from: n < MIN_RUNS, or a t interval wider than the metric's range."""
    return self.n < MIN_RUNS or self.clipped


@dataclasses.dataclass(frozen=True)
class Difference:
  """`difference` = first minus second, `half_width` of its interval at CONFIDENCE, the test's statistic and p."""

  difference: float
  half_width: float
  statistic: float
  p_value: float
  test: str
  p_adjusted: float | None = None  # after Holm's correction across the comparisons it was made with

  def significant(self, alpha: float = ALPHA) -> bool:
    """Whether the test rejects 'no difference' at level `alpha`, after the correction where one was made."""
    return (self.p_value if self.p_adjusted is None else self.p_adjusted) < alpha


def t_quantile(confidence: float, df: float) -> float:
  """The two-sided Student t critical value: P(|T| <= q) = confidence with `df` degrees of freedom."""
  return float(scipy_stats.t.ppf(0.5 + confidence / 2, df))


def spread(
    values: Sequence[float], confidence: float = CONFIDENCE, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> Spread:
  """Mean, sample std (ddof=1), the t interval mean +- t(df=n-1) * std / sqrt(n) of `values` cut to `bounds`, and
  the percentile bootstrap interval of the mean."""
  x = np.asarray(values, dtype=np.float64)
  if x.size == 0:
    raise ValueError('spread of no values')
  mean = float(x.mean())
  if x.size < 2:
    return Spread(1, mean, math.nan, math.nan, math.nan)
  std = float(x.std(ddof=1))
  half = t_quantile(confidence, x.size - 1) * std / math.sqrt(x.size)
  low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])
  clipped = (low, high) != (mean - half, mean + half)
  return Spread(int(x.size), mean, std, low, high, clipped, *bootstrap_interval(x, confidence))


def bootstrap_interval(
    values: Sequence[float], confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
  """The percentile bootstrap interval of the mean (scipy.stats.bootstrap, a fixed seed so reports repeat); it
  stays within the values' range, so inside [0, 1] for accuracies."""
  x = np.asarray(values, dtype=np.float64)
  if np.ptp(x) == 0:  # every resample has the same mean
    return float(x[0]), float(x[0])
  result = scipy_stats.bootstrap(
      (x,),
      np.mean,
      confidence_level=confidence,
      n_resamples=resamples,
      method='percentile',
      rng=np.random.default_rng(0),
  )
  return float(result.confidence_interval.low), float(result.confidence_interval.high)


def welch_test(first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
  """Welch's t-test of mean(first) = mean(second), each with at least two values, and the difference's interval."""
  a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
  if a.size < 2 or b.size < 2:
    raise ValueError(f"Welch's t-test needs at least two values per group, got {a.size} and {b.size}")
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  difference, se = float(a.mean() - b.mean()), math.sqrt(va + vb)
  if se == 0:  # both groups constant: the difference is exact
    return Difference(
        difference,
        0.0,
        math.copysign(math.inf, difference) if difference else 0.0,
        0.0 if difference else 1.0,
        'Welch t',
    )
  df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))  # Welch-Satterthwaite
  t = difference / se
  p = float(2 * scipy_stats.t.sf(abs(t), df))
  return Difference(difference, t_quantile(confidence, df) * se, t, p, 'Welch t')


def paired_t_test(first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
  """The paired t-test of mean(first - second) = 0 over runs matched by position (the same seed), at least two
  pairs, and the mean difference's t interval."""
  d = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
  if d.size < 2:
    raise ValueError(f'the paired t-test needs at least two pairs, got {d.size}')
  difference, se = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(d.size)
  if se == 0:  # every pair differs by the same amount: the difference is exact
    exact = math.copysign(math.inf, difference) if difference else 0.0
    return Difference(difference, 0.0, exact, 0.0 if difference else 1.0, 'paired t')
  t = difference / se
  p = float(2 * scipy_stats.t.sf(abs(t), d.size - 1))
  return Difference(difference, t_quantile(confidence, d.size - 1) * se, t, p, 'paired t')


def holm(p_values: Sequence[float]) -> list[float]:
  """Holm's step-down adjusted p-values, in the order given: sorted ascending, the i-th smallest (from 1) becomes
  max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where it is below α controls the family-wise error."""
  order = sorted(range(len(p_values)), key=lambda i: p_values[i])
  adjusted, running = [0.0] * len(p_values), 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
    adjusted[i] = running
  return adjusted


def probability_of_superiority(first: Sequence[float], second: Sequence[float]) -> float:
  """P(X_first > X_second) + P(X_first = X_second) / 2, estimated over every pair of one run of each (the common
  language effect size, the Mann-Whitney U divided by n_first * n_second)."""
  a, b = np.asarray(first, dtype=np.float64)[:, None], np.asarray(second, dtype=np.float64)[None, :]
  return float(((a > b) + 0.5 * (a == b)).mean())


def power(n: int, effect: float, paired: bool, alpha: float = ALPHA) -> float:
  """The two-sided t-test's probability of rejecting at level `alpha` with n seeds per variant, when the true
  difference is `effect` standard deviations (of one run for two samples, of the difference for pairs)."""
  df, ncp = (n - 1, effect * math.sqrt(n)) if paired else (2 * n - 2, effect * math.sqrt(n / 2))
  critical = scipy_stats.t.ppf(1 - alpha / 2, df)
  return float(scipy_stats.nct.sf(critical, df, ncp) + scipy_stats.nct.cdf(-critical, df, ncp))


def seeds_to_detect(
    difference: float, std: float, paired: bool, alpha: float = ALPHA, target: float = POWER
) -> int | None:
  """The fewest seeds per variant for which the t-test detects `difference` with probability `target`, when runs
  spread by `std` (two samples: the pooled std of one run; paired: the std of the differences); None when no
  difference was measured, no spread, or it takes more than MAX_SEEDS."""
  if not difference or not std or not math.isfinite(std):
    return None
  effect = abs(difference) / std
  return next((n for n in range(2, MAX_SEEDS + 1) if power(n, effect, paired, alpha) >= target), None)


def wilson_interval(accuracy: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
  """The Wilson score interval of an accuracy measured on n examples: inside [0, 1], unlike p +- z SE."""
  z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
  centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
  half = z / (1 + z * z / n) * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
  return max(0.0, centre - half), min(1.0, centre + half)


def binomial_se(accuracy: float, n: int) -> float:
  """The standard error sqrt(p(1-p)/n) of an accuracy p measured on n examples."""
  if n < 1:
    raise ValueError(f'an accuracy needs at least one example, got n={n}')
  return math.sqrt(accuracy * (1 - accuracy) / n)


def two_proportion_z_test(
    first: float, n_first: int, second: float, n_second: int, confidence: float = CONFIDENCE
) -> Difference:
  """The pooled two-proportion z-test of accuracy `first` (on n_first examples) = `second` (on n_second).

  The interval of the difference uses the unpooled standard error (the Wald interval). The test treats the two
  accuracies as independent; measured on the same images they are positively correlated, so it is conservative.
  """
  pooled = (first * n_first + second * n_second) / (n_first + n_second)
  se = math.sqrt(pooled * (1 - pooled) * (1 / n_first + 1 / n_second))
  difference = first - second
  z = difference / se if se else (math.copysign(math.inf, difference) if difference else 0.0)
  p = float(2 * scipy_stats.norm.sf(abs(z)))
  wald = math.sqrt(binomial_se(first, n_first) ** 2 + binomial_se(second, n_second) ** 2)
  return Difference(difference, float(scipy_stats.norm.ppf(0.5 + confidence / 2)) * wald, z, p, 'two-proportion z')
