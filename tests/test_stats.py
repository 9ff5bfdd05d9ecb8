"""The statistics against hand computations, closed forms and published tables (stated in each test)."""

import math

import pytest

from cifar_jax.study import stats


@pytest.mark.parametrize('df, critical', [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)])
def test_t_quantile_matches_the_printed_table(df, critical):
  # Two-sided 95 % critical values of Student's t, as printed in every statistics table (3 decimals).
  assert stats.t_quantile(0.95, df) == pytest.approx(critical, abs=5e-4)


def test_spread_is_mean_sample_std_and_t_interval_by_hand():
  # 1..5: mean 3, sample variance (4+1+0+1+4)/4 = 2.5, half-width 2.776 * sqrt(2.5 / 5) = 1.9629 (table rounding).
  spread = stats.spread([1.0, 2.0, 3.0, 4.0, 5.0])
  assert (spread.n, spread.mean) == (5, 3.0)
  assert spread.std == pytest.approx(math.sqrt(2.5))
  assert (spread.low, spread.high) == pytest.approx((3 - 1.9629, 3 + 1.9629), abs=5e-4)


def test_one_value_has_no_spread():
  spread = stats.spread([0.4])
  assert (spread.n, spread.mean) == (1, 0.4) and all(math.isnan(x) for x in (spread.std, spread.low, spread.high))


def test_welch_with_two_degrees_of_freedom_against_the_closed_form():
  # [0, 2] vs [3, 5]: each variance 2, so se = sqrt(2/2 + 2/2) = sqrt(2), t = -3/sqrt(2) = -2.1213, and the
  # Welch-Satterthwaite df = (1 + 1)^2 / (1/1 + 1/1) = 2, where P(|T| > t) = 1 - t / sqrt(t^2 + 2) = 0.16795.
  result = stats.welch_test([0.0, 2.0], [3.0, 5.0])
  assert result.difference == -3.0 and result.statistic == pytest.approx(-3 / math.sqrt(2))
  assert result.p_value == pytest.approx(1 - 2.1213203 / math.sqrt(4.5 + 2), abs=1e-6)
  assert result.half_width == pytest.approx(4.303 * math.sqrt(2), abs=1e-3)  # t(0.975, 2) = 4.303 from the table
  assert not result.significant()


def test_welch_on_the_textbook_example_with_unequal_sizes():
  # Wikipedia, "Welch's t-test", example 2 (10 against 20 values): t = -1.57, df = 9.9, p = 0.149.
  first = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8]
  second = [
      21.5,
      22.8,
      21.0,
      23.0,
      21.6,
      23.6,
      22.5,
      20.7,
      23.4,
      21.8,
      20.7,
      21.7,
      21.5,
      22.5,
      23.6,
      21.5,
      22.5,
      23.5,
      21.5,
      21.8,
  ]
  result = stats.welch_test(first, second)
  assert result.statistic == pytest.approx(-1.57, abs=0.005)
  assert result.p_value == pytest.approx(0.149, abs=0.0005)


def test_welch_sees_a_clear_difference_and_its_sign():
  # Five seeds around 50 % against five around 45 %: best minus other is +5 points, far beyond the noise.
  best = [0.50, 0.51, 0.49, 0.505, 0.495]
  worse = [0.45, 0.46, 0.44, 0.455, 0.445]
  result = stats.welch_test(best, worse)
  assert result.difference == pytest.approx(0.05) and result.statistic > 0 and result.significant()
  # Equal spreads of 5 values each: df = 8, half-width t(0.975, 8) = 2.306 times se = sqrt(2 * var / 5).
  var = sum((x - 0.5) ** 2 for x in best) / 4
  assert result.half_width == pytest.approx(2.306 * math.sqrt(2 * var / 5), rel=1e-3)


def test_welch_of_constant_groups_and_of_too_few_values():
  assert stats.welch_test([0.5, 0.5], [0.5, 0.5]).p_value == 1.0
  assert stats.welch_test([0.6, 0.6], [0.5, 0.5]).p_value == 0.0
  with pytest.raises(ValueError, match='at least two values per group'):
    stats.welch_test([0.5], [0.4, 0.6])


def test_binomial_standard_error_by_hand():
  assert stats.binomial_se(0.5, 1000) == pytest.approx(0.0158114, abs=1e-7)  # sqrt(0.25 / 1000)
  assert stats.binomial_se(0.4, 10_000) == pytest.approx(0.0048990, abs=1e-7)  # sqrt(0.24 / 10000)
  with pytest.raises(ValueError):
    stats.binomial_se(0.5, 0)


def test_two_proportion_z_test_by_hand():
  # 50 % against 45 % on 1,000 images each: pooled p = 0.475, se = sqrt(0.249375 * 0.002) = 0.0223327,
  # z = 0.05 / 0.0223327 = 2.2389; two-sided p = 2 * (1 - Phi(2.2389)) = 0.02516 (normal table: Phi(2.24) = 0.98745).
  result = stats.two_proportion_z_test(0.50, 1000, 0.45, 1000)
  assert result.statistic == pytest.approx(2.2389, abs=1e-4)
  assert result.p_value == pytest.approx(0.02516, abs=2e-4)
  assert result.significant() and result.difference == pytest.approx(0.05)
  # Wald interval: 1.96 * sqrt(0.25 / 1000 + 0.2475 / 1000) = 0.043723.
  assert result.half_width == pytest.approx(0.043723, abs=1e-5)
  assert stats.two_proportion_z_test(0.45, 1000, 0.50, 1000).statistic == pytest.approx(-2.2389, abs=1e-4)


def test_one_point_on_a_thousand_images_is_noise():
  # The case: 39.8 % against 38.8 % on 1,000 validation images is well within the noise.
  assert not stats.two_proportion_z_test(0.398, 1000, 0.388, 1000).significant()
