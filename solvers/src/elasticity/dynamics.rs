//! Elastodynamics `ρ ü = ∇·σ + b` in time: Newmark's average-acceleration method.

use crate::ConfigError;
use crate::linalg::{CsrMatrix, SparseCholesky, SymbolicCholesky};

/// Newmark's average-acceleration scheme (β = 1/4, γ = 1/2; Newmark 1959) for `M ü + K u = f`: unconditionally
/// stable, second order, and it conserves the energy `½ u̇ᵀ M u̇ + ½ uᵀ K u` exactly without forcing. The
/// effective matrix `M + dt²/4 K` is factorised once (sparse Cholesky); a step is one solve.
pub struct Newmark {
    k: CsrMatrix,
    m: Vec<f64>,
    dt: f64,
    chol: SparseCholesky,
    rhs: Vec<f64>,
    pred: Vec<f64>,
}

impl Newmark {
    /// The scheme for stiffness `k` (symmetric positive definite), lumped mass `m` (positive) and step `dt`.
    pub fn new(k: CsrMatrix, m: Vec<f64>, dt: f64) -> Result<Self, ConfigError> {
        crate::check_positive("dt", dt)?;
        if m.len() != k.nrows() {
            return Err(ConfigError::Shape { what: "lumped mass", expected: vec![k.nrows()], got: vec![m.len()] });
        }
        if let Some(&v) = m.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(ConfigError::NotPositive { name: "lumped mass", value: v });
        }
        let c = 0.25 * dt * dt;
        let eff = k.scale_add_diagonal(c, &m)?;
        let sym = SymbolicCholesky::new(&eff)?;
        let chol = SparseCholesky::new(&sym, &eff)?;
        let n = m.len();
        Ok(Self { k, m, dt, chol, rhs: vec![0.0; n], pred: vec![0.0; n] })
    }

    /// The initial acceleration `a = M⁻¹ (f − K u)` (consistent with the equation of motion).
    pub fn initial_acceleration(&self, u: &[f64], f: &[f64], a: &mut [f64]) {
        self.k.matvec(u, a);
        for ((ai, fi), mi) in a.iter_mut().zip(f).zip(&self.m) {
            *ai = (fi - *ai) / mi;
        }
    }

    /// One step: `(u, v, a)` at t to t + dt under the load `f_next` at t + dt.
    pub fn step(&mut self, u: &mut [f64], v: &mut [f64], a: &mut [f64], f_next: &[f64]) {
        let dt = self.dt;
        for i in 0..u.len() {
            self.pred[i] = u[i] + dt * v[i] + 0.25 * dt * dt * a[i];
        }
        // (M + dt²/4 K) a' = f − K pred
        self.k.matvec(&self.pred, &mut self.rhs);
        for (r, f) in self.rhs.iter_mut().zip(f_next) {
            *r = f - *r;
        }
        self.chol.solve_in_place(&mut self.rhs);
        for i in 0..u.len() {
            let an = self.rhs[i];
            u[i] = self.pred[i] + 0.25 * dt * dt * an;
            v[i] += 0.5 * dt * (a[i] + an);
            a[i] = an;
        }
    }

    /// `½ vᵀ M v + ½ uᵀ K u`.
    pub fn energy(&self, u: &[f64], v: &[f64]) -> f64 {
        let mut ku = vec![0.0; u.len()];
        self.k.matvec(u, &mut ku);
        0.5 * v.iter().zip(&self.m).map(|(vi, mi)| mi * vi * vi).sum::<f64>() + 0.5 * crate::linalg::dot(u, &ku)
    }
}
