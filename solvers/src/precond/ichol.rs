//! Incomplete Cholesky with zero fill.

use super::Preconditioner;
use super::triangular::Sweeps;
use crate::ConfigError;
use crate::linalg::CsrMatrix;

/// IC(0): `A ≈ L̂ L̂ᵀ` with L̂ on the lower-triangular pattern of a symmetric positive definite `A`
/// (Meijerink & van der Vorst 1977, doi:10.1090/S0025-5718-1977-0438681-4). The factor is kept as
/// `L̂ = L D` with `L` unit lower triangular and `D = diag(L̂)`, so `apply` is `z = L⁻ᵀ D⁻² L⁻¹ r`: a forward
/// and a backward sweep without divisions (see [`Sweeps`]).
///
/// IC(0) exists for M-matrices (the Poisson matrices) but can break down on other SPD matrices, such as those of
/// linear elasticity; [`Ic0::shifted`] then factorises `A + α diag(A)` instead (Manteuffel 1980,
/// doi:10.1090/S0025-5718-1980-0572855-7), which is still a symmetric positive definite preconditioner for `A`.
#[derive(Clone, Debug)]
pub struct Ic0 {
    sweeps: Sweeps,
    shift: f64,
}

/// The error name of a row without a diagonal entry (no shift helps).
const MISSING_DIAGONAL: &str = "diagonal entry (missing)";

/// Diagonal shifts [`Ic0::shifted`] tries, in order.
const SHIFTS: [f64; 9] = [0.0, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0];

impl Ic0 {
    /// Factorises `A`; fails when a pivot is not positive (IC(0) broke down: try [`Ic0::shifted`]).
    pub fn new(a: &CsrMatrix) -> Result<Self, ConfigError> {
        Self::with_shift(a, 0.0)
    }

    /// IC(0) of `A` or, if it breaks down, of `A + α diag(A)` for the smallest α of 10⁻³, 3·10⁻³, 10⁻², …, 3
    /// that succeeds; the error of the last attempt if none does.
    pub fn shifted(a: &CsrMatrix) -> Result<Self, ConfigError> {
        let mut last = None;
        for alpha in SHIFTS {
            match Self::with_shift(a, alpha) {
                Ok(f) => return Ok(f),
                // a missing diagonal entry does not depend on the shift
                Err(e @ ConfigError::NotPositive { name: MISSING_DIAGONAL, .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one shift was tried"))
    }

    /// The α of `A + α diag(A)` that was factorised (0 for plain IC(0)).
    pub fn shift(&self) -> f64 {
        self.shift
    }

    fn with_shift(a: &CsrMatrix, alpha: f64) -> Result<Self, ConfigError> {
        let n = a.nrows();
        let (ip, ix, vx) = a.parts();
        let mut indptr = vec![0usize; n + 1];
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for i in 0..n {
            for k in ip[i]..ip[i + 1] {
                if ix[k] as usize <= i {
                    indices.push(ix[k] as usize);
                    values.push(if ix[k] as usize == i { vx[k] * (1.0 + alpha) } else { vx[k] });
                }
            }
            indptr[i + 1] = indices.len();
            if indices.last() != Some(&i) {
                return Err(ConfigError::NotPositive { name: MISSING_DIAGONAL, value: 0.0 });
            }
        }
        // row-wise factorisation restricted to the pattern
        for i in 0..n {
            let (s, e) = (indptr[i], indptr[i + 1]);
            for p in s..e {
                let k = indices[p];
                // sum over j < k present in rows i and k
                let (mut a1, mut a2) = (s, indptr[k]);
                let (e1, e2) = (p, indptr[k + 1] - 1);
                let mut sum = 0.0;
                while a1 < e1 && a2 < e2 {
                    match indices[a1].cmp(&indices[a2]) {
                        std::cmp::Ordering::Less => a1 += 1,
                        std::cmp::Ordering::Greater => a2 += 1,
                        std::cmp::Ordering::Equal => {
                            sum += values[a1] * values[a2];
                            a1 += 1;
                            a2 += 1;
                        }
                    }
                }
                if k < i {
                    let lkk = values[indptr[k + 1] - 1];
                    values[p] = (values[p] - sum) / lkk;
                } else {
                    let piv = values[p] - sum;
                    if piv <= 0.0 || !piv.is_finite() {
                        return Err(ConfigError::NotPositive { name: "IC(0) pivot", value: piv });
                    }
                    values[p] = piv.sqrt();
                }
            }
        }
        // split off the diagonal: L_ij = L̂_ij / L̂_jj below it, Δ_i = 1 / L̂_ii²
        let diag: Vec<f64> = (0..n).map(|i| values[indptr[i + 1] - 1]).collect();
        let mut lower = Vec::with_capacity(indices.len() - n);
        for i in 0..n {
            for p in indptr[i]..indptr[i + 1] - 1 {
                lower.push((i as u32, indices[p] as u32, values[p] / diag[indices[p]]));
            }
        }
        let delta = diag.iter().map(|d| 1.0 / (d * d)).collect();
        Ok(Self { sweeps: Sweeps::new(n, &lower, delta)?, shift: alpha })
    }
}

impl Preconditioner for Ic0 {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        self.sweeps.apply(r, z)
    }
    fn apply_dot(&self, r: &[f64], z: &mut [f64]) -> Option<f64> {
        Some(self.sweeps.apply_dot(r, z))
    }
}
