"""The statistics against hand computations, closed forms and published tables (stated in each test)."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cifar_jax.study import aggregate, stats


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
  # The issue's case: 39.8 % against 38.8 % on 1,000 validation images is well within the noise.
  assert not stats.two_proportion_z_test(0.398, 1000, 0.388, 1000).significant()


def test_welch_and_the_paired_test_match_scipy():
  first, second = [0.52, 0.50, 0.55, 0.49, 0.51, 0.53], [0.50, 0.49, 0.52, 0.49, 0.48, 0.50]
  welch, reference = stats.welch_test(first, second), scipy_stats.ttest_ind(first, second, equal_var=False)
  assert (welch.statistic, welch.p_value) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-9)
  paired, reference = stats.paired_t_test(first, second), scipy_stats.ttest_rel(first, second)
  assert (paired.statistic, paired.p_value) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-9)
  low, high = reference.confidence_interval(0.95)
  assert (paired.difference - paired.half_width, paired.difference + paired.half_width) == pytest.approx((low, high))
  assert paired.test == 'paired t' and paired.significant()  # the same seeds remove the shared noise
  assert not welch.significant()  # which Welch's test, blind to the pairing, leaves in


def test_paired_test_of_constant_differences_and_of_one_pair():
  assert stats.paired_t_test([0.6, 0.7], [0.5, 0.6]).p_value == 0.0
  assert stats.paired_t_test([0.6, 0.7], [0.6, 0.7]).p_value == 1.0
  with pytest.raises(ValueError, match='at least two pairs'):
    stats.paired_t_test([0.5], [0.4])


def test_holm_on_the_textbook_example():
  # Wikipedia, "Holm-Bonferroni method": p = 0.01, 0.04, 0.03, 0.005 at α = 0.05. Sorted, 0.005 < 0.05/4 and
  # 0.01 < 0.05/3 are rejected, 0.03 > 0.05/2 stops. Adjusted: 4 * 0.005 = 0.02, 3 * 0.01 = 0.03,
  # 2 * 0.03 = 0.06, max(1 * 0.04, 0.06) = 0.06.
  adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
  assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
  assert [p < 0.05 for p in adjusted] == [True, False, False, True]
  assert stats.holm([0.5, 0.9]) == [1.0, 1.0] and stats.holm([]) == []  # capped at 1


def test_the_issue_interval_with_two_runs_stays_within_0_and_100_percent_and_says_too_few():
  # Two runs at 4.6875 % and 14.0625 %: mean 9.375 %, std 6.629 %, t(0.975, 1) = 12.706, so the t interval is
  # 9.375 ± 59.56 = [-50.19, 68.94] % (the issue's figures); cut to [0, 68.94] and flagged.
  result = stats.spread([0.046875, 0.140625], bounds=(0.0, 1.0))
  assert result.low == 0.0 and result.high == pytest.approx(0.6894, abs=1e-4)
  assert result.clipped and result.too_few
  # Two values bootstrap to three means (both first, one of each, both second: 1/4, 1/2, 1/4), so the 2.5 % and
  # 97.5 % percentiles are the two values themselves.
  assert (result.boot_low, result.boot_high) == (0.046875, 0.140625)
  assert not stats.spread([0.50, 0.51, 0.49], bounds=(0.0, 1.0)).too_few


def test_bootstrap_interval_approaches_the_normal_interval():
  # With 400 values from N(0, 1) the percentile bootstrap of the mean is close to mean ± 1.96 * sd_hat / sqrt(n)
  # (sd_hat with ddof=0, the bootstrap's plug-in); the Monte Carlo error of 9,999 resamples is well under 5 %.
  x = np.random.default_rng(1).normal(size=400)
  low, high = stats.bootstrap_interval(x)
  half = 1.959964 * x.std() / math.sqrt(x.size)
  assert low == pytest.approx(x.mean() - half, abs=0.05 * half) and high == pytest.approx(
      x.mean() + half, abs=0.05 * half
  )
  assert stats.bootstrap_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_probability_of_superiority_is_mann_whitney_u_over_the_pairs():
  first, second = [0.50, 0.52, 0.49, 0.51], [0.49, 0.50, 0.47]  # ties count half
  u = scipy_stats.mannwhitneyu(first, second, alternative='two-sided').statistic
  assert stats.probability_of_superiority(first, second) == pytest.approx(u / (4 * 3))
  assert stats.probability_of_superiority([1.0, 2.0], [0.0, 0.5]) == 1.0
  assert stats.probability_of_superiority([0.5], [0.5]) == 0.5


@pytest.mark.parametrize(
    'effect, paired, seeds',
    # Cohen (1988), and G*Power: two-sided α = 0.05, power 0.8; two samples d = 0.5 -> 64, d = 0.8 -> 26 per group,
    # paired (one sample of differences) dz = 0.5 -> 34, dz = 0.8 -> 15.
    [(0.5, False, 64), (0.8, False, 26), (0.5, True, 34), (0.8, True, 15)],
)
def test_seeds_to_detect_matches_the_published_sample_sizes(effect, paired, seeds):
  assert stats.seeds_to_detect(0.01 * effect, 0.01, paired) == seeds
  assert stats.power(seeds, effect, paired) >= 0.8 > stats.power(seeds - 1, effect, paired)


def test_seeds_to_detect_gives_up_on_nothing_or_too_much():
  assert stats.seeds_to_detect(0.0, 0.01, False) is None
  assert stats.seeds_to_detect(0.01, 0.0, False) is None
  assert stats.seeds_to_detect(0.0001, 0.01, False) is None  # d = 0.01 needs about 157,000 seeds


def test_power_at_the_published_point():
  # G*Power: two-sample t, d = 0.5, n = 64 per group, two-sided α = 0.05: power 0.8015.
  assert stats.power(64, 0.5, paired=False) == pytest.approx(0.8015, abs=5e-4)


@pytest.mark.parametrize('k, n', [(52, 100), (0, 40), (40, 40), (3, 10), (5123, 10_000)])
def test_wilson_interval_matches_scipy(k, n):
  reference = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method='wilson')
  assert stats.wilson_interval(k / n, n) == pytest.approx((reference.low, reference.high), abs=1e-9)


def test_the_two_proportion_z_test_squared_is_pearson_chi_square():
  # The pooled z-test of two proportions is Pearson's chi-square test (no continuity correction) on the 2 x 2
  # table of right and wrong answers: z^2 = chi^2 and the same p.
  result = stats.two_proportion_z_test(0.52, 1000, 0.48, 2000)
  table = [[520, 480], [960, 1040]]
  chi2, p, _, _ = scipy_stats.chi2_contingency(table, correction=False)
  assert result.statistic**2 == pytest.approx(chi2) and result.p_value == pytest.approx(p)


@dataclasses.dataclass
class _Run:
  name: str
  config: dict
  results: dict
  status: str = 'completed'


def _runs(name, accuracies, first_seed=0, examples=1000):
  return [
      _Run(f'{name}/seed={seed}', {'seed': seed}, {'val_accuracy': acc, 'val_examples': examples})
      for seed, acc in enumerate(accuracies, start=first_seed)
  ]


def test_aggregate_corrects_every_comparison_with_the_best_by_holm_and_sizes_the_undetected_ones():
  runs = [
      *_runs('best', [0.60, 0.62, 0.61]),
      *_runs('close', [0.595, 0.60, 0.615], first_seed=10),  # other seeds: Welch
      *_runs('paired', [0.55, 0.58, 0.56]),  # the best's seeds: paired
  ]
  best, close, paired = aggregate.aggregate(runs)
  assert (best.name, close.name, paired.name) == ('best', 'close', 'paired')
  welch = scipy_stats.ttest_ind([0.60, 0.62, 0.61], [0.595, 0.60, 0.615], equal_var=False).pvalue
  pair = scipy_stats.ttest_rel([0.60, 0.62, 0.61], [0.55, 0.58, 0.56]).pvalue
  assert close.versus_best.test == 'Welch t' and paired.versus_best.test == 'paired t'
  assert [close.versus_best.p_adjusted, paired.versus_best.p_adjusted] == pytest.approx(
      [max(welch, min(1, 2 * pair)), min(1, 2 * pair)] if pair < welch else [2 * welch, max(pair, 2 * welch)]
  )
  assert paired.versus_best.significant() and not close.versus_best.significant()
  # The undetected difference: pooled std sqrt((0.01^2 + std(close)^2) / 2), n from the t-test's power.
  pooled = math.sqrt((np.var([0.60, 0.62, 0.61], ddof=1) + np.var([0.595, 0.60, 0.615], ddof=1)) / 2)
  d = close.versus_best.difference / pooled
  assert close.seeds_to_detect == next(n for n in range(2, 1000) if stats.power(n, d, False) >= 0.8)
  assert close.superiority == pytest.approx(
      scipy_stats.mannwhitneyu([0.60, 0.62, 0.61], [0.595, 0.60, 0.615]).statistic / 9
  )
  assert 'seeds each would detect' in aggregate.verdict(close) and paired.seeds_to_detect is None


def test_the_plotted_intervals_are_the_t_interval_cut_to_0_1_and_wilson_for_one_run():
  runs = [
      *_runs('a', [0.60, 0.62, 0.61]),
      *_runs('b', [0.01, 0.05]),
      _Run('c', {}, {'val_accuracy': 0.3, 'val_examples': 200}),
  ]
  variants = {v.name: v for v in aggregate.aggregate(runs)}
  low, high = scipy_stats.t.interval(0.95, 2, loc=0.61, scale=0.01 / math.sqrt(3))
  assert variants['a'].interval('val_accuracy') == pytest.approx((low, high))
  low, high = scipy_stats.t.interval(0.95, 1, loc=0.03, scale=np.std([0.01, 0.05], ddof=1) / math.sqrt(2))
  assert low < 0 and variants['b'].interval('val_accuracy') == pytest.approx((0.0, high))
  wilson = scipy_stats.binomtest(60, 200).proportion_ci(method='wilson')
  assert variants['c'].interval('val_accuracy') == pytest.approx((wilson.low, wilson.high))
  sentence = aggregate.conclusion(list(variants.values()), 'val_accuracy')
  assert 'Too few runs to conclude on `b` alone' in sentence
