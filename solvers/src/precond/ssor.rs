//! Symmetric successive over-relaxation.

use super::Preconditioner;
use crate::ConfigError;
use crate::linalg::CsrMatrix;

/// SSOR(ω), `M = ω/(2−ω) · (D/ω + L) (D/ω)⁻¹ (D/ω + Lᵀ)` for symmetric `A = L + D + Lᵀ`, 0 < ω < 2: a forward and
/// a backward Gauss–Seidel sweep.
#[derive(Clone, Debug)]
pub struct Ssor {
    a: CsrMatrix,
    diag: Vec<f64>,
    omega: f64,
}

impl Ssor {
    /// Builds the preconditioner (keeps a copy of `a`).
    pub fn new(a: &CsrMatrix, omega: f64) -> Result<Self, ConfigError> {
        if !(omega > 0.0 && omega < 2.0) {
            return Err(ConfigError::NotPositive { name: "SSOR omega in (0, 2)", value: omega });
        }
        let diag = a.diagonal();
        if let Some(&d) = diag.iter().find(|d| d.is_nan() || **d <= 0.0) {
            return Err(ConfigError::NotPositive { name: "diagonal entry", value: d });
        }
        Ok(Self { a: a.clone(), diag, omega })
    }
}

impl Preconditioner for Ssor {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        let (ip, ix, vx) = self.a.parts();
        let w = self.omega;
        let n = self.diag.len();
        // (D/ω + L) y = r
        for i in 0..n {
            let mut v = r[i];
            for k in ip[i]..ip[i + 1] {
                if ix[k] < i {
                    v -= vx[k] * z[ix[k]];
                }
            }
            z[i] = v * w / self.diag[i];
        }
        // y ← (D/ω) y
        for (zi, di) in z.iter_mut().zip(&self.diag) {
            *zi *= di / w;
        }
        // (D/ω + Lᵀ) z = y: row i of the upper part is row i of A above the diagonal (A symmetric)
        for i in (0..n).rev() {
            let mut v = z[i];
            for k in ip[i]..ip[i + 1] {
                if ix[k] > i {
                    v -= vx[k] * z[ix[k]];
                }
            }
            z[i] = v * w / self.diag[i];
        }
        let s = (2.0 - w) / w;
        for zi in z.iter_mut() {
            *zi *= s;
        }
    }
}
