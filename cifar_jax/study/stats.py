"""The statistics of a study: spread over seeds, intervals, and tests of whether two variants differ.

Over seeds (several runs per variant): the sample mean and standard deviation (ddof=1), a Student t interval
for the mean, and Welch's unequal-variance t-test (Welch-Satterthwaite degrees of freedom) between two
variants. From one run: an accuracy p measured on n images has the binomial standard error sqrt(p(1-p)/n),
and two accuracies are compared with the pooled two-proportion z-test. All tests are two-sided.
"""

from collections.abc import Sequence
import dataclasses
import math

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95  # the level of every interval the report gives
ALPHA = 0.05  # the significance level of every test the report makes


@dataclasses.dataclass(frozen=True)
class Spread:
  """n values as mean, sample standard deviation and a t interval for the mean (std and interval nan when n < 2)."""

  n: int
  mean: float
  std: float
  low: float
  high: float


@dataclasses.dataclass(frozen=True)
class Difference:
  """`difference` = first minus second, `half_width` of its interval at CONFIDENCE, the test's statistic and p."""

  difference: float
  half_width: float
  statistic: float
  p_value: float
  test: str

  def significant(self, alpha: float = ALPHA) -> bool:
    """Whether the test rejects 'no difference' at level `alpha`."""
    return self.p_value < alpha


def t_quantile(confidence: float, df: float) -> float:
  """The two-sided Student t critical value: P(|T| <= q) = confidence with `df` degrees of freedom."""
  return float(scipy_stats.t.ppf(0.5 + confidence / 2, df))


def spread(values: Sequence[float], confidence: float = CONFIDENCE) -> Spread:
  """Mean, sample std (ddof=1) and the t interval mean +- t(df=n-1) * std / sqrt(n) of `values`."""
  x = np.asarray(values, dtype=np.float64)
  if x.size == 0:
    raise ValueError('spread of no values')
  mean = float(x.mean())
  if x.size < 2:
    return Spread(1, mean, math.nan, math.nan, math.nan)
  std = float(x.std(ddof=1))
  half = t_quantile(confidence, x.size - 1) * std / math.sqrt(x.size)
  return Spread(int(x.size), mean, std, mean - half, mean + half)


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
