//! Jacobian regularisation of one-step surrogates: the `[regularisation]` table, Hutchinson estimates of the
//! Jacobian's per-location row norms from forward-mode tangents, and the uniform (`global`) and spatially weighted
//! (`jaws`) contraction penalties. `docs/methods/jaws.md` has the equations and every choice.
//!
//! For a one-step map `G` (the network plus the residual connection) at a window `u`, with `J = ∂G/∂u`:
//!
//! ```text
//! R̂ⱼ = (1/P) Σₚ ((J vₚ)ⱼ)²                  Hutchinson estimate of ‖J_{j,:}‖² (E[v vᵀ] = I)
//! penalty = β · mean_j wⱼ · max(0, R̂ⱼ − ρ²)  ρ: the contraction target (1: non-expansive rows)
//! wⱼ = 1 (global),  wⱼ = exp(s_min − sⱼ) with sⱼ = clamp(log σⱼ², s_min, s_max) (jaws)
//! ```
//!
//! so a row that is already contractive costs nothing, and the weight falls from 1 where the predicted variance is
//! smallest to `exp(s_min − s_max)` where it is largest (shocks stay free).

use crate::engine::splitmix;
use ansatz_operators::jet::Jet;
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

/// Which penalty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regulariser {
    /// No Jacobian penalty.
    #[default]
    None,
    /// The same penalty at every location.
    Global,
    /// The penalty weighted per location by the predicted variance.
    Jaws,
}

/// The distribution of the probe vectors (both have E[v vᵀ] = I).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// ±1 with equal probability (the lower-variance Hutchinson estimator).
    #[default]
    Rademacher,
    /// Standard normal.
    Gaussian,
}

/// `[regularisation]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegularisationConfig {
    pub kind: Regulariser,
    /// Weight β of the penalty in the loss.
    pub beta: f64,
    /// Probe vectors per window P.
    pub probes: usize,
    pub probe: Probe,
    /// Rows with ‖J_{j,:}‖ ≤ ρ are not penalised.
    pub contraction: f64,
    /// Clamp of the predicted log-variance (also bounds the weight to [exp(s_min − s_max), 1]).
    pub log_var_min: f64,
    pub log_var_max: f64,
    /// Take the weight from a detached σ, so the penalty cannot push σ up to escape it.
    pub detach_sigma: bool,
}

impl Default for RegularisationConfig {
    fn default() -> Self {
        Self {
            kind: Regulariser::None,
            beta: 0.1,
            probes: 2,
            probe: Probe::Rademacher,
            contraction: 1.0,
            log_var_min: -10.0,
            log_var_max: 2.0,
            detach_sigma: true,
        }
    }
}

impl RegularisationConfig {
    /// Whether this is the default (no penalty); such a table is left out of stored configurations.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the values, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(format!("`regularisation.beta` must be finite and ≥ 0, got {}", self.beta));
        }
        if self.kind != Regulariser::None && self.probes == 0 {
            return Err("`regularisation.probes` must be at least 1".into());
        }
        if !(self.contraction.is_finite() && self.contraction >= 0.0) {
            return Err(format!("`regularisation.contraction` must be finite and ≥ 0, got {}", self.contraction));
        }
        if !(self.log_var_min.is_finite() && self.log_var_max.is_finite() && self.log_var_min < self.log_var_max) {
            return Err(format!(
                "`regularisation.log_var_min` ({}) must be below `regularisation.log_var_max` ({}), both finite",
                self.log_var_min, self.log_var_max
            ));
        }
        Ok(())
    }
}

/// `n` probe values from the SplitMix stream `state`.
fn probe_values(kind: Probe, state: &mut u64, n: usize) -> impl Iterator<Item = f64> + '_ {
    let unit = |s: &mut u64| (splitmix(s) >> 11) as f64 / (1u64 << 53) as f64;
    (0..n).map(move |_| match kind {
        Probe::Rademacher => {
            if splitmix(state) >> 63 == 0 {
                1.0
            } else {
                -1.0
            }
        }
        Probe::Gaussian => {
            // Box–Muller; 1 − u keeps the logarithm finite
            let (a, b) = (1.0 - unit(state), unit(state));
            (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
        }
    })
}

fn stream(seed: u64, step: usize, salt: u64) -> u64 {
    seed ^ (step as u64).wrapping_mul(0xA24B_AED4_963E_E407)
        ^ salt.wrapping_mul(0x9FB2_1C65_1E98_DF25)
        ^ 0x5851_F42D_4C95_7F2D
}

/// `count` probe vectors of `shape` (dtype and device of `like`), a pure function of `(seed, step, count)` so
/// resumed runs draw the same probes.
pub fn probes<const D: usize>(
    kind: Probe,
    seed: u64,
    step: usize,
    count: usize,
    shape: [usize; D],
    like: &Tensor<D>,
) -> Vec<Tensor<D>> {
    let mut state = stream(seed, step, 0);
    let n: usize = shape.iter().product();
    (0..count)
        .map(|_| {
            let values: Vec<f64> = probe_values(kind, &mut state, n).collect();
            Tensor::from_data(TensorData::new(values, shape), (&like.device(), like.dtype()))
        })
        .collect()
}

/// `count` probe vectors for a batch of training windows `[b, …frame]`: the slice of window `i` is drawn from a
/// stream of `(seed, step, examples[i])`, so the probes of a window do not depend on how the batch is split
/// among ranks, and a resumed run draws the same ones.
pub fn batch_probes(
    kind: Probe,
    seed: u64,
    step: usize,
    examples: &[usize],
    count: usize,
    frame: [usize; 3],
    like: &Tensor<4>,
) -> Vec<Tensor<4>> {
    let n: usize = frame.iter().product();
    let mut values = vec![Vec::with_capacity(examples.len() * n); count];
    for &e in examples {
        let mut state = stream(seed, step, e as u64 + 1);
        for v in values.iter_mut() {
            v.extend(probe_values(kind, &mut state, n));
        }
    }
    let shape = [examples.len(), frame[0], frame[1], frame[2]];
    values.into_iter().map(|v| Tensor::from_data(TensorData::new(v, shape), (&like.device(), like.dtype()))).collect()
}

/// The variance head's raw output mapped smoothly into `[s_min, s_max]`: `s = s_min + (s_max − s_min)·sigmoid(r)`
/// (the guard against σ → ∞ on hard regions and σ → 0 on easy ones, with a gradient everywhere).
pub fn bounded_log_var<const D: usize>(raw: Tensor<D>, cfg: &RegularisationConfig) -> Tensor<D> {
    burn::tensor::activation::sigmoid(raw).mul_scalar(cfg.log_var_max - cfg.log_var_min).add_scalar(cfg.log_var_min)
}

/// The heteroscedastic Gaussian negative log-likelihood `mean_j (pⱼ − yⱼ)² / (2σⱼ²) + ½ log σⱼ²` (the constant
/// ½ log 2π left out) for a bounded log-variance `s = log σ²`.
pub fn gaussian_nll<const D: usize>(prediction: Tensor<D>, target: Tensor<D>, log_var: Tensor<D>) -> Tensor<1> {
    let misfit = (prediction - target).powf_scalar(2.0) * log_var.clone().neg().exp();
    (misfit + log_var).mean().mul_scalar(0.5)
}

/// The Hutchinson estimate of the squared row norms `‖J_{j,:}‖²` from the tangents `J vₚ` of a jet seeded with
/// the probes: the mean over probes of their squares, shaped like the output.
pub fn row_norms<const D: usize>(output: &Jet<D>) -> Tensor<D> {
    let p = output.tangents.len();
    assert!(p > 0, "row norms need at least one probe tangent");
    let sum = output.tangents.iter().map(|t| t.clone().powf_scalar(2.0)).reduce(|a, b| a + b).expect("a probe");
    sum.div_scalar(p as f64)
}

/// The per-location weight `exp(s_min − clamp(s, s_min, s_max))` of a log-variance `s`: 1 where σ is smallest,
/// decreasing as σ grows. Detached when the configuration says so.
pub fn weight<const D: usize>(log_var: Tensor<D>, cfg: &RegularisationConfig) -> Tensor<D> {
    let s = if cfg.detach_sigma { log_var.detach() } else { log_var };
    s.clamp(cfg.log_var_min, cfg.log_var_max).neg().add_scalar(cfg.log_var_min).exp()
}

/// `β · mean_j wⱼ · max(0, R̂ⱼ − ρ²)`; `weight = None` is the global penalty (wⱼ = 1).
pub fn penalty<const D: usize>(rows: Tensor<D>, weight: Option<Tensor<D>>, cfg: &RegularisationConfig) -> Tensor<1> {
    let excess = rows.sub_scalar(cfg.contraction * cfg.contraction).clamp_min(0.0);
    let weighted = match weight {
        Some(w) => excess * w,
        None => excess,
    };
    weighted.mean().mul_scalar(cfg.beta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_into_vec::<f64>().expect("values")
    }

    fn tensor(v: Vec<f64>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), (&Device::flex(), DType::F64))
    }

    /// A linear map `y = x Aᵀ` on `[1, n]` rows as a jet: tangents `v Aᵀ`.
    fn linear_jet(a: &[f64], n: usize, x: Tensor<2>, v: Vec<Tensor<2>>) -> Jet<2> {
        let at = tensor((0..n * n).map(|i| a[(i % n) * n + i / n]).collect(), [n, n]);
        Jet::seed(x, v).linear(&at, None)
    }

    #[test]
    fn the_penalty_vanishes_for_a_contraction_and_grows_with_the_jacobian() {
        let n = 6;
        let cfg = RegularisationConfig { kind: Regulariser::Global, beta: 1.0, probes: 8, ..Default::default() };
        let x = tensor(vec![0.3; n], [1, n]);
        let p = probes(Probe::Rademacher, 1, 0, cfg.probes, [1, n], &x);
        let mut last = -1.0;
        for scale in [0.5, 0.9, 1.5, 2.0, 3.0] {
            // diagonal map: (J v)ⱼ² = aⱼ² exactly for ±1 probes, so R̂ is the exact row norm
            let a: Vec<f64> = (0..n * n).map(|i| if i % (n + 1) == 0 { scale } else { 0.0 }).collect();
            let rows = row_norms(&linear_jet(&a, n, x.clone(), p.clone()));
            for r in values(rows.clone()) {
                assert!((r - scale * scale).abs() < 1e-12, "scale {scale}: row norm {r}");
            }
            let pen = values(penalty(rows, None, &cfg))[0];
            if scale < 1.0 {
                assert_eq!(pen, 0.0, "a contraction with factor {scale} is penalised");
            } else {
                assert!((pen - (scale * scale - 1.0)).abs() < 1e-12 && pen > last, "scale {scale}: penalty {pen}");
            }
            last = pen;
        }
    }

    #[test]
    fn hutchinson_estimates_row_norms_of_a_dense_jacobian() {
        let n = 5;
        let a: Vec<f64> = (0..n * n).map(|i| ((i * 7 % 11) as f64 - 5.0) / 4.0).collect();
        let exact: Vec<f64> = (0..n).map(|j| (0..n).map(|k| a[j * n + k].powi(2)).sum()).collect();
        let x = tensor(vec![0.0; n], [1, n]);
        for kind in [Probe::Rademacher, Probe::Gaussian] {
            let p = probes(kind, 3, 7, 4000, [1, n], &x);
            let est = values(row_norms(&linear_jet(&a, n, x.clone(), p)));
            for j in 0..n {
                assert!((est[j] - exact[j]).abs() < 0.1 * exact[j], "{kind:?}, row {j}: {} vs {}", est[j], exact[j]);
            }
        }
    }

    #[test]
    fn probes_are_a_pure_function_of_seed_and_step() {
        let x = tensor(vec![0.0; 8], [2, 4]);
        let a = values(probes(Probe::Gaussian, 5, 3, 2, [2, 4], &x)[1].clone());
        let b = values(probes(Probe::Gaussian, 5, 3, 2, [2, 4], &x)[1].clone());
        let c = values(probes(Probe::Gaussian, 5, 4, 2, [2, 4], &x)[1].clone());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let r = values(probes(Probe::Rademacher, 5, 3, 1, [2, 4], &x)[0].clone());
        assert!(r.iter().all(|v| v.abs() == 1.0) && r.iter().any(|v| *v > 0.0) && r.iter().any(|v| *v < 0.0));
    }

    #[test]
    fn the_weight_decreases_as_sigma_grows_and_is_clamped() {
        let cfg = RegularisationConfig { log_var_min: -4.0, log_var_max: 1.0, ..Default::default() };
        let s = tensor(vec![-9.0, -4.0, -2.0, 0.0, 1.0, 5.0], [1, 6]);
        let w = values(weight(s, &cfg));
        assert!((w[0] - 1.0).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12, "{w:?}");
        // strictly decreasing inside the clamp (entries 1..=4), constant beyond it
        for i in 1..4 {
            assert!(w[i + 1] < w[i], "weight does not fall from {} to {}: {w:?}", i, i + 1);
        }
        assert!((w[5] - (-5.0f64).exp()).abs() < 1e-12 && (w[4] - w[5]).abs() < 1e-15, "{w:?}");
    }

    #[test]
    fn bad_values_are_named() {
        for (cfg, key) in [
            (RegularisationConfig { beta: -1.0, ..Default::default() }, "beta"),
            (RegularisationConfig { kind: Regulariser::Jaws, probes: 0, ..Default::default() }, "probes"),
            (RegularisationConfig { log_var_min: 3.0, ..Default::default() }, "log_var_min"),
        ] {
            let e = cfg.validate().unwrap_err();
            assert!(e.contains(key), "{e}");
        }
        let e = toml::from_str::<RegularisationConfig>("kind = \"jaws\"\nprobez = 3").unwrap_err();
        assert!(e.to_string().contains("probez"), "{e}");
    }
}
