//! Symmetric successive over-relaxation.

use super::Preconditioner;
use super::triangular::Sweeps;
use crate::ConfigError;
use crate::linalg::CsrMatrix;

/// SSOR(ω), `M = ω/(2−ω) · (D/ω + E) (D/ω)⁻¹ (D/ω + Eᵀ)` for symmetric `A = E + D + Eᵀ`, 0 < ω < 2: a forward and
/// a backward Gauss–Seidel sweep. Kept as `M = L D Lᵀ / (2 − ω)` with the unit lower triangular
/// `L = I + ω E D⁻¹`, so `apply` is `z = L⁻ᵀ ((2 − ω) D⁻¹) L⁻¹ r`, two sweeps without divisions (see [`Sweeps`]);
/// only the strictly lower part of `A` is read.
#[derive(Clone, Debug)]
pub struct Ssor {
    sweeps: Sweeps,
}

impl Ssor {
    /// Builds the preconditioner from the diagonal and the strictly lower part of `a`.
    pub fn new(a: &CsrMatrix, omega: f64) -> Result<Self, ConfigError> {
        if !(omega > 0.0 && omega < 2.0) {
            return Err(ConfigError::NotPositive { name: "SSOR omega in (0, 2)", value: omega });
        }
        let diag = a.diagonal();
        if let Some(&d) = diag.iter().find(|d| d.is_nan() || **d <= 0.0) {
            return Err(ConfigError::NotPositive { name: "diagonal entry", value: d });
        }
        let (ip, ix, vx) = a.parts();
        let mut lower = Vec::with_capacity(a.nnz().saturating_sub(diag.len()) / 2);
        for i in 0..diag.len() {
            for k in ip[i]..ip[i + 1] {
                let j = ix[k] as usize;
                if j < i {
                    lower.push((i as u32, j as u32, omega * vx[k] / diag[j]));
                }
            }
        }
        let delta = diag.iter().map(|d| (2.0 - omega) / d).collect();
        Ok(Self { sweeps: Sweeps::new(diag.len(), &lower, delta)? })
    }
}

impl Preconditioner for Ssor {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        self.sweeps.apply(r, z)
    }
    fn apply_dot(&self, r: &[f64], z: &mut [f64]) -> Option<f64> {
        Some(self.sweeps.apply_dot(r, z))
    }
}
