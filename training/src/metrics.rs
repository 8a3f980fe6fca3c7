//! Rollout metrics (definitions in the project's design notes, "Rollout metrics"): computed per sample, per
//! channel and per step on flattened fields, with context frames excluded by the caller, then reduced over
//! samples with [`Summary`].

use ansatz_solvers::spectral::RealFft2;
use num_complex::Complex64 as C;

/// ε in the VRMSE denominator (The Well's convention).
pub const VRMSE_EPS: f64 = 1e-7;

/// Field errors of one step of one channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepErrors {
    /// ‖û − u‖₂ / ‖u‖₂ (cell volumes cancel).
    pub nrmse: f64,
    /// sqrt(mean (û − u)² / (var u + ε)): 1 for predicting the mean.
    pub vrmse: f64,
    /// sqrt(mean (û − u)²).
    pub rmse: f64,
    /// max |û − u|.
    pub linf: f64,
    /// Pearson correlation (mean-centred).
    pub pearson: f64,
    /// Uncentred cosine similarity (Exponax's "correlation").
    pub cosine: f64,
}

/// The errors of prediction `p` against reference `u` (same length, flattened space).
pub fn step_errors(p: &[f64], u: &[f64]) -> StepErrors {
    let n = u.len().max(1) as f64;
    let (mut se, mut su2, mut linf) = (0.0, 0.0, 0.0_f64);
    let (mut mp, mut mu) = (0.0, 0.0);
    for (a, b) in p.iter().zip(u) {
        let d = a - b;
        se += d * d;
        su2 += b * b;
        linf = linf.max(d.abs());
        mp += a;
        mu += b;
    }
    mp /= n;
    mu /= n;
    let (mut cov, mut vp, mut vu, mut dot, mut pp) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (a, b) in p.iter().zip(u) {
        cov += (a - mp) * (b - mu);
        vp += (a - mp) * (a - mp);
        vu += (b - mu) * (b - mu);
        dot += a * b;
        pp += a * a;
    }
    let nan_if_zero = |num: f64, den: f64| if den > 0.0 { num / den } else { f64::NAN };
    StepErrors {
        nrmse: nan_if_zero(se.sqrt(), su2.sqrt()),
        vrmse: (se / n / (vu / n + VRMSE_EPS)).sqrt(),
        rmse: (se / n).sqrt(),
        linf,
        pearson: nan_if_zero(cov, (vp * vu).sqrt()),
        cosine: nan_if_zero(dot, (pp * su2).sqrt()),
    }
}

/// Geometric mean (of positive values; non-positive or non-finite values give NaN).
pub fn geometric_mean(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return f64::NAN;
    }
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

/// The first step (1-based) whose value is below `threshold` (correlation time τ_ρ for a correlation curve);
/// `None` if it never drops below.
pub fn first_below(curve: &[f64], threshold: f64) -> Option<usize> {
    curve.iter().position(|v| *v < threshold || v.is_nan()).map(|i| i + 1)
}

/// The first step (1-based) whose value exceeds `threshold` (valid-prediction time for an nRMSE curve).
pub fn first_above(curve: &[f64], threshold: f64) -> Option<usize> {
    curve.iter().position(|v| *v > threshold || v.is_nan()).map(|i| i + 1)
}

/// The first step (1-based) at which the prediction blows up: a non-finite value, or an L2 norm above `factor`
/// (10 by convention) times the reference's. `pred` and `truth` are `steps` consecutive fields of `m` values.
pub fn blow_up_step(pred: &[f64], truth: &[f64], m: usize, factor: f64) -> Option<usize> {
    pred.chunks(m)
        .zip(truth.chunks(m))
        .position(|(p, u)| {
            let np = p.iter().map(|v| v * v).sum::<f64>();
            let nu = u.iter().map(|v| v * v).sum::<f64>();
            !np.is_finite() || np.sqrt() > factor * nu.sqrt()
        })
        .map(|i| i + 1)
}

/// Relative drift of a conserved quantity: `|Σ q(û) − Σ q(u)| / Σ |q(u₀)|` with q applied pointwise. For a
/// sign-definite q (energy, density) the denominator is `|Σ q(u₀)|`, the usual normalisation; for a signed q
/// whose integral is near zero (the momentum of a zero-mean flow) it stays the size of the field instead of
/// dividing by round-off.
pub fn conserved_drift(pred: &[f64], truth: &[f64], initial: &[f64], q: impl Fn(f64) -> f64) -> f64 {
    let s = |v: &[f64]| v.iter().map(|x| q(*x)).sum::<f64>();
    let scale = initial.iter().map(|x| q(*x).abs()).sum::<f64>();
    (s(pred) - s(truth)).abs() / scale
}

/// Isotropic shell spectrum of a periodic field on an `ny × nx` grid (`ny = 1` in 1D): `E(k)` for integer
/// shells `k = round(|m|)`, `m` the integer wavenumber, summing `|f̂|²` with the Hermitian weights of a real field.
pub fn shell_spectrum(field: &[f64], nx: usize, ny: usize) -> Vec<f64> {
    let fft = RealFft2::new(nx, ny);
    let mut w = fft.work();
    let mut spec = vec![C::new(0.0, 0.0); fft.spec_len()];
    fft.forward(field, &mut spec, &mut w);
    let kmax = ((nx / 2) as f64).hypot(if ny > 1 { (ny / 2) as f64 } else { 0.0 }).ceil() as usize + 1;
    let mut e = vec![0.0; kmax];
    let norm = 1.0 / (nx * ny) as f64;
    for (i, c) in spec.iter().enumerate() {
        let kx = i / ny;
        let j = i % ny;
        let jy = if j <= ny / 2 { j as f64 } else { j as f64 - ny as f64 };
        let shell = (kx as f64).hypot(jy).round() as usize;
        e[shell] += fft.hermitian_weight(kx) * c.norm_sqr() * norm * norm;
    }
    e
}

/// `f(E_pred, E_ref)` of the energy in each band `[edges[i], edges[i+1])` (shell indices); NaN for a band whose
/// reference energy is below 1e-14 of the total (an empty band has no relative measure).
fn per_band(pred: &[f64], truth: &[f64], edges: &[usize], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let total: f64 = truth.iter().sum();
    edges
        .windows(2)
        .map(|b| {
            let (lo, hi) = (b[0].min(truth.len()), b[1].min(truth.len()));
            let ep: f64 = pred[lo.min(pred.len())..hi.min(pred.len())].iter().sum();
            let et: f64 = truth[lo..hi].iter().sum();
            if et <= 1e-14 * total { f64::NAN } else { f(ep, et) }
        })
        .collect()
}

/// Relative error of the energy in each band `[edges[i], edges[i+1])` (shell indices); NaN for a band whose
/// reference energy is below 1e-14 of the total (an empty band has no relative error).
pub fn band_errors(pred: &[f64], truth: &[f64], edges: &[usize]) -> Vec<f64> {
    per_band(pred, truth, edges, |ep, et| (ep - et).abs() / et)
}

/// The predicted over the reference energy in each band `[edges[i], edges[i+1])` (shell indices): below 1 where the
/// prediction has lost energy (a dissipated spectrum), above 1 where it has gained some; NaN for a band whose
/// reference energy is below 1e-14 of the total.
pub fn band_ratios(pred: &[f64], truth: &[f64], edges: &[usize]) -> Vec<f64> {
    per_band(pred, truth, edges, |ep, et| ep / et)
}

/// `mean_k |log E_p(k) − log E_t(k)|` over the shells where the reference holds more than 1e-14 of its total
/// energy and the prediction is positive (round-off shells say nothing).
pub fn log_spectrum_error(pred: &[f64], truth: &[f64]) -> f64 {
    let floor = 1e-14 * truth.iter().sum::<f64>();
    let terms: Vec<f64> = pred
        .iter()
        .zip(truth)
        .filter(|(a, b)| **a > 0.0 && **b > floor)
        .map(|(a, b)| (a.ln() - b.ln()).abs())
        .collect();
    if terms.is_empty() { f64::NAN } else { terms.iter().sum::<f64>() / terms.len() as f64 }
}

/// nRMSE of the gradient (central differences on a periodic `ny × nx` grid with spacings `hx`, `hy`).
pub fn h1_nrmse(pred: &[f64], truth: &[f64], nx: usize, ny: usize, hx: f64, hy: f64) -> f64 {
    let grad = |f: &[f64]| -> Vec<f64> {
        let mut g = Vec::with_capacity(2 * f.len());
        for j in 0..ny {
            for i in 0..nx {
                let at = |i: usize, j: usize| f[j * nx + i];
                g.push((at((i + 1) % nx, j) - at((i + nx - 1) % nx, j)) / (2.0 * hx));
                if ny > 1 {
                    g.push((at(i, (j + 1) % ny) - at(i, (j + ny - 1) % ny)) / (2.0 * hy));
                }
            }
        }
        g
    };
    step_errors(&grad(pred), &grad(truth)).nrmse
}

/// Mean, median and 5/95 percentiles (linear interpolation) of the finite values; `count` of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub median: f64,
    pub p5: f64,
    pub p95: f64,
    pub count: usize,
}

impl Summary {
    /// Summarises `values`, ignoring non-finite ones.
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| -> f64 {
            if v.is_empty() {
                return f64::NAN;
            }
            let x = p * (v.len() - 1) as f64;
            let (i, f) = (x.floor() as usize, x - x.floor());
            if i + 1 < v.len() { v[i] * (1.0 - f) + v[i + 1] * f } else { v[i] }
        };
        let mean = if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
        Self { mean, median: q(0.5), p5: q(0.05), p95: q(0.95), count: v.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_against_hand_computed_values() {
        let u = [1.0, 2.0, 3.0, 4.0];
        let p = [1.0, 2.0, 3.0, 5.0];
        let e = step_errors(&p, &u);
        assert!((e.nrmse - 1.0 / 30f64.sqrt()).abs() < 1e-15);
        assert!((e.rmse - 0.5).abs() < 1e-15);
        assert_eq!(e.linf, 1.0);
        // var(u) = 1.25, mean squared error 0.25
        assert!((e.vrmse - (0.25 / (1.25 + VRMSE_EPS)).sqrt()).abs() < 1e-15);
        // predicting the mean scores VRMSE 1
        let m = [2.5; 4];
        assert!((step_errors(&m, &u).vrmse - 1.0).abs() < 1e-7);
        // Pearson: affine maps correlate perfectly, negation anti-correlates; cosine is uncentred
        let lin: Vec<f64> = u.iter().map(|x| 2.0 * x + 1.0).collect();
        assert!((step_errors(&lin, &u).pearson - 1.0).abs() < 1e-15);
        let neg: Vec<f64> = u.iter().map(|x| -x).collect();
        assert!((step_errors(&neg, &u).pearson + 1.0).abs() < 1e-15);
        let c = step_errors(&lin, &u).cosine;
        let expect = (2.0 * 30.0 + 10.0) / ((lin.iter().map(|x| x * x).sum::<f64>()).sqrt() * 30f64.sqrt());
        assert!((c - expect).abs() < 1e-15 && c < 1.0);
    }

    #[test]
    fn curve_summaries() {
        assert!((geometric_mean(&[1.0, 4.0, 16.0]) - 4.0).abs() < 1e-12);
        assert!(geometric_mean(&[1.0, 0.0]).is_nan());
        let rho = [0.95, 0.85, 0.79, 0.5, 0.3];
        assert_eq!(first_below(&rho, 0.8), Some(3));
        assert_eq!(first_below(&rho, 0.9), Some(2));
        assert_eq!(first_below(&rho, 0.5), Some(5));
        assert_eq!(first_below(&rho, 0.1), None);
        let nrmse = [0.1, 0.3, 0.6, 0.2];
        assert_eq!(first_above(&nrmse, 0.5), Some(3));
        // blow-up: step 2 has a NaN, step 3 (if reached) 20× the reference
        let truth = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(blow_up_step(&[1.0, 1.0, f64::NAN, 1.0, 1.0, 1.0], &truth, 2, 10.0), Some(2));
        assert_eq!(blow_up_step(&[1.0, 1.0, 1.0, 1.0, 20.0, 20.0], &truth, 2, 10.0), Some(3));
        assert_eq!(blow_up_step(&truth, &truth, 2, 10.0), None);
        assert!((conserved_drift(&[1.0, 2.0], &[1.0, 1.5], &[2.0, 2.0], |x| x) - 0.125).abs() < 1e-15);
        // a zero-mean initial field: the drift is relative to the field's size, not to its vanishing integral
        assert!((conserved_drift(&[1.0, -0.5], &[1.0, -1.0], &[1.0, -1.0], |x| x) - 0.25).abs() < 1e-15);
        assert!((conserved_drift(&[2.0, 0.0], &[1.0, 1.0], &[1.0, -1.0], |x| x * x) - 1.0).abs() < 1e-15);
        let s = Summary::of(&[3.0, 1.0, f64::NAN, 2.0, 4.0, 5.0]);
        assert_eq!((s.count, s.mean, s.median), (5, 3.0, 3.0));
        assert!((s.p5 - 1.2).abs() < 1e-12 && (s.p95 - 4.8).abs() < 1e-12);
    }

    #[test]
    fn spectra_and_bands() {
        // sin(3x) on 32 points: all energy in shell 3, Parseval: mean of the square = 1/2
        let n = 32;
        let f: Vec<f64> = (0..n).map(|i| (3.0 * 2.0 * std::f64::consts::PI * i as f64 / n as f64).sin()).collect();
        let e = shell_spectrum(&f, n, 1);
        assert!((e[3] - 0.5).abs() < 1e-12 && e.iter().enumerate().all(|(k, v)| k == 3 || v.abs() < 1e-20));
        let g: Vec<f64> = f.iter().map(|x| 1.1 * x).collect();
        let bands = band_errors(&shell_spectrum(&g, n, 1), &e, &[0, 4, 12, 17]);
        let ratios = band_ratios(&shell_spectrum(&g, n, 1), &e, &[0, 4, 12, 17]);
        for (b, r) in bands.iter().zip(&ratios) {
            assert!(b.is_nan() && r.is_nan() || ((r - 1.0).abs() - b).abs() < 1e-12, "{bands:?} vs {ratios:?}");
        }
        assert!((bands[0] - 0.21).abs() < 1e-12 && bands[1].is_nan());
        assert!((ratios[0] - 1.21).abs() < 1e-12, "energy scales with the square of the amplitude: {ratios:?}");
        assert!((log_spectrum_error(&shell_spectrum(&g, n, 1), &e) - 2.0 * 1.1f64.ln()).abs() < 1e-12);
        // 2D: cos(2πx) cos(2π·2y) sits in shell round(√5) = 2
        let (nx, ny) = (16, 16);
        let h: Vec<f64> = (0..nx * ny)
            .map(|c| {
                let (x, y) = ((c % nx) as f64 / nx as f64, (c / nx) as f64 / ny as f64);
                (2.0 * std::f64::consts::PI * x).cos() * (4.0 * std::f64::consts::PI * y).cos()
            })
            .collect();
        let e2 = shell_spectrum(&h, nx, ny);
        assert!((e2.iter().sum::<f64>() - 0.25).abs() < 1e-12 && (e2[2] - 0.25).abs() < 1e-12);
        // gradient error: a shifted sine on a periodic grid
        let shifted: Vec<f64> =
            (0..n).map(|i| (3.0 * 2.0 * std::f64::consts::PI * (i as f64 + 0.1) / n as f64).sin()).collect();
        let h1 = h1_nrmse(&shifted, &f, n, 1, 1.0 / n as f64, 1.0);
        assert!(h1 > 0.0 && (h1 - step_errors(&shifted, &f).nrmse).abs() < 0.02, "h1 {h1}");
    }
}
