//! The statistics a rollout gate needs, with no dependency: the normal distribution, Wilson's interval for a pass
//! rate, Fisher's exact test and the two-proportion z test for pass rates, and the Mann-Whitney U test (normal
//! approximation with tie and continuity correction) for latencies. Each one-sided test asks whether the *first*
//! sample (the canary) is worse than the second (the baseline).
//!
//! The unit tests compare each function with the value scipy computes for the same input (the call is written
//! next to each recorded number).

/// Natural log of the gamma function (Lanczos, g = 7, 9 terms: about 15 significant digits for `x > 0`).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized upper incomplete gamma function Q(a, x) (series below `a + 1`, continued fraction above).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * front
    } else {
        // Lentz's method.
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < 1e-16 {
                break;
            }
        }
        front * h
    }
}

/// P(Z > z) for a standard normal Z.
pub(crate) fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    // erfc(t) = Q(1/2, t²) for t ≥ 0.
    let upper = 0.5 * gamma_q(0.5, z * z / 2.0);
    if z >= 0.0 {
        upper
    } else {
        1.0 - upper
    }
}

/// P(Z ≤ z) for a standard normal Z.
pub(crate) fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

/// The z with P(Z ≤ z) = `p` (bisection to machine precision; `p` outside (0, 1) gives ±∞).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let (mut low, mut high) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if normal_cdf(middle) < p {
            low = middle;
        } else {
            high = middle;
        }
        if high - low < 1e-15 {
            break;
        }
    }
    0.5 * (low + high)
}

/// Wilson's score interval for a proportion: `successes` of `n` at `confidence` (e.g. 0.95). `None` when `n` is 0.
pub(crate) fn wilson_interval(successes: u64, n: u64, confidence: f64) -> Option<(f64, f64)> {
    if n == 0 || successes > n {
        return None;
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// ln C(n, k).
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// Fisher's exact test, one-sided: the p-value that the first sample's pass rate is this much lower than the
/// second's or lower, by chance. `passed_1` of `n_1` against `passed_2` of `n_2`; 1 when either is empty.
///
/// With the table `[[passed_1, failed_1], [passed_2, failed_2]]` it is scipy's
/// `fisher_exact(table, alternative='less')`: the hypergeometric P(X ≤ passed_1).
pub(crate) fn fisher_exact_lower(passed_1: u64, n_1: u64, passed_2: u64, n_2: u64) -> f64 {
    if n_1 == 0 || n_2 == 0 || passed_1 > n_1 || passed_2 > n_2 {
        return 1.0;
    }
    let (total, passed) = (n_1 + n_2, passed_1 + passed_2);
    let lowest = passed.saturating_sub(n_2);
    let ln_denominator = ln_choose(total, n_1);
    let mut p = 0.0;
    for k in lowest..=passed_1.min(passed) {
        p += (ln_choose(passed, k) + ln_choose(total - passed, n_1 - k) - ln_denominator).exp();
    }
    p.min(1.0)
}

/// The two-proportion z test (pooled), one-sided: `(z, p)` where p is the chance of a first pass rate this much
/// lower than the second's or lower. `z` is 0 and `p` 1 when either sample is empty or every execution of both
/// passed (or failed).
pub(crate) fn two_proportion_lower(passed_1: u64, n_1: u64, passed_2: u64, n_2: u64) -> (f64, f64) {
    if n_1 == 0 || n_2 == 0 {
        return (0.0, 1.0);
    }
    let (n1, n2) = (n_1 as f64, n_2 as f64);
    let pooled = (passed_1 + passed_2) as f64 / (n1 + n2);
    let spread = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if spread == 0.0 {
        return (0.0, 1.0);
    }
    let z = (passed_1 as f64 / n1 - passed_2 as f64 / n2) / spread;
    (z, normal_cdf(z))
}

/// The Mann-Whitney U test, one-sided, by its normal approximation with tie and continuity correction: `(u, p)`
/// where `u` is the first sample's U and p the chance that values of the first sample are this much larger than
/// the second's or larger. As scipy's `mannwhitneyu(first, second, alternative='greater', method='asymptotic')`.
/// `p` is 1 when either sample is empty or every value is the same.
pub(crate) fn mann_whitney_greater(first: &[f64], second: &[f64]) -> (f64, f64) {
    let (n1, n2) = (first.len(), second.len());
    if n1 == 0 || n2 == 0 {
        return (0.0, 1.0);
    }
    let mut all: Vec<(f64, bool)> =
        first.iter().map(|v| (*v, true)).chain(second.iter().map(|v| (*v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let (mut rank_sum, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let rank = (i + 1 + j) as f64 / 2.0;
        let t = (j - i) as f64;
        ties += t * t * t - t;
        rank_sum += rank * all[i..j].iter().filter(|(_, is_first)| *is_first).count() as f64;
        i = j;
    }
    let (a, b, total) = (n1 as f64, n2 as f64, n as f64);
    let u = rank_sum - a * (a + 1.0) / 2.0;
    let mean = a * b / 2.0;
    let variance = a * b / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if variance <= 0.0 || !variance.is_finite() {
        return (u, 1.0);
    }
    let z = (u - mean - 0.5) / variance.sqrt();
    (u, normal_sf(z))
}

/// The `q` quantile (0 ≤ q ≤ 1) of `sorted` values, linearly interpolated (numpy's default); `None` when empty.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let (below, fraction) = (position.floor() as usize, position.fract());
    let above = (below + 1).min(last);
    Some(sorted[below] + (sorted[above] - sorted[below]) * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal to within `relative` of `expected` (or 1e-15 absolute near 0).
    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        (actual - expected).abs() <= relative * expected.abs() + 1e-15
    }

    macro_rules! assert_close {
        ($actual:expr, $expected:expr, $relative:expr) => {{
            let (actual, expected) = ($actual, $expected);
            assert!(close(actual, expected, $relative), "{} = {actual}, scipy {expected}", stringify!($actual));
        }};
    }

    #[test]
    fn ln_gamma_matches_scipy() {
        // scipy.special.gammaln(0.5), gammaln(10.0), gammaln(1000.5)
        assert_close!(ln_gamma(0.5), 0.5723649429247, 1e-12);
        assert_close!(ln_gamma(10.0), 12.801827480081469, 1e-13);
        assert_close!(ln_gamma(1000.5), 5908.674175848678, 1e-13);
    }

    #[test]
    fn the_normal_distribution_matches_scipy() {
        // scipy.stats.norm.sf(z)
        assert_close!(normal_sf(0.0), 0.5, 1e-14);
        assert_close!(normal_sf(1.0), 0.15865525393145707, 1e-12);
        assert_close!(normal_sf(-1.5), 0.9331927987311419, 1e-12);
        assert_close!(normal_sf(3.7), 0.00010779973347738823, 1e-10);
        assert_close!(normal_sf(8.0), 6.22096057427174e-16, 1e-8);
        // scipy.stats.norm.ppf(p)
        assert_close!(normal_quantile(0.975), 1.959963984540054, 1e-12);
        assert_close!(normal_quantile(0.001), -3.090232306167813, 1e-12);
        assert!(normal_quantile(0.5).abs() < 1e-14);
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_sf(f64::NAN).is_nan());
    }

    #[test]
    fn wilson_intervals_match_scipy() {
        // scipy.stats.binomtest(k, n).proportion_ci(0.95, method='wilson')
        let cases = [
            (95, 100, 0.8882495307680809, 0.978456320845632),
            (0, 10, 0.0, 0.27753279986288926),
            (10, 10, 0.7224672001371109, 1.0),
            (17, 40, 0.28509392559950375, 0.5780493145800892),
        ];
        for (k, n, low, high) in cases {
            let (l, h) = wilson_interval(k, n, 0.95).unwrap();
            assert_close!(l, low, 1e-11);
            assert_close!(h, high, 1e-11);
        }
        assert_eq!(wilson_interval(0, 0, 0.95), None);
        assert_eq!(wilson_interval(3, 2, 0.95), None);
    }

    #[test]
    fn fisher_exact_matches_scipy() {
        // scipy.stats.fisher_exact([[p1, n1 - p1], [p2, n2 - p2]], alternative='less').pvalue
        assert_close!(fisher_exact_lower(90, 100, 100, 100), 0.0007710260627178504, 1e-10);
        assert_close!(fisher_exact_lower(3, 4, 1, 4), 0.9857142857142858, 1e-12);
        assert_close!(fisher_exact_lower(950, 1000, 998, 1000), 1.7146022686009217e-13, 1e-8);
        assert_close!(fisher_exact_lower(45, 50, 50, 50), 0.028142247214412164, 1e-10);
        assert_close!(fisher_exact_lower(10, 10, 10, 10), 1.0, 1e-12);
        assert_eq!(fisher_exact_lower(0, 0, 5, 5), 1.0);
    }

    #[test]
    fn the_two_proportion_z_test_matches_scipy() {
        // z pooled, p = scipy.stats.norm.cdf(z)
        let (z, p) = two_proportion_lower(90, 100, 100, 100);
        assert_close!(z, -3.2444284226152487, 1e-12);
        assert_close!(p, 0.0005884329553123741, 1e-10);
        let (z, p) = two_proportion_lower(950, 1000, 998, 1000);
        assert_close!(z, -6.744660395285549, 1e-12);
        assert_close!(p, 7.669268082858212e-12, 1e-8);
        let (z, p) = two_proportion_lower(480, 500, 490, 500);
        assert_close!(z, -1.8537599944001626, 1e-12);
        assert_close!(p, 0.03188675213519521, 1e-10);
        assert_eq!(two_proportion_lower(10, 10, 10, 10), (0.0, 1.0));
    }

    #[test]
    fn mann_whitney_u_matches_scipy_with_and_without_ties() {
        // scipy.stats.mannwhitneyu(x, y, alternative='greater', method='asymptotic')
        let x = [1.2, 3.4, 2.2, 5.0, 5.0, 0.7, 3.3];
        let y = [1.1, 0.9, 2.2, 0.4, 1.5, 2.0];
        let (u, p) = mann_whitney_greater(&x, &y);
        assert_close!(u, 33.5, 1e-14);
        assert_close!(p, 0.04280583969305701, 1e-10);
        let (u, p) = mann_whitney_greater(&y, &x);
        assert_close!(u, 8.5, 1e-14);
        assert_close!(p, 0.9687171986595956, 1e-10);
        // Many ties.
        let a = [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0];
        let b = [1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 5.0];
        let (u, p) = mann_whitney_greater(&a, &b);
        assert_close!(u, 33.5, 1e-14);
        assert_close!(p, 0.9437742947694658, 1e-10);
        let (u, p) = mann_whitney_greater(&b, &a);
        assert_close!(u, 76.5, 1e-14);
        assert_close!(p, 0.06487078480713745, 1e-10);
        assert_eq!(mann_whitney_greater(&[], &a), (0.0, 1.0));
        assert_eq!(mann_whitney_greater(&[2.0, 2.0], &[2.0]).1, 1.0);
    }

    #[test]
    fn quantiles_interpolate_as_numpy() {
        // numpy.quantile([1.0, 2.0, 4.0, 8.0], q)
        assert_eq!(quantile(&[1.0, 2.0, 4.0, 8.0], 0.5), Some(3.0));
        assert_close!(quantile(&[1.0, 2.0, 4.0, 8.0], 0.9).unwrap(), 6.800000000000001, 1e-14);
        assert_eq!(quantile(&[], 0.5), None);
    }
}
