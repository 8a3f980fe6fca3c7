//! Incomplete Cholesky with zero fill.

use super::Preconditioner;
use crate::ConfigError;
use crate::linalg::CsrMatrix;

/// IC(0): `A ≈ L Lᵀ` with L on the lower-triangular pattern of a symmetric positive definite `A`
/// (Meijerink & van der Vorst 1977, doi:10.1090/S0025-5718-1977-0438681-4). `apply` is a forward and a
/// backward triangular solve.
#[derive(Clone, Debug)]
pub struct Ic0 {
    n: usize,
    /// rows of L, lower triangle including the diagonal (last entry of each row)
    indptr: Vec<usize>,
    indices: Vec<usize>,
    values: Vec<f64>,
}

impl Ic0 {
    /// Factorises; fails with the row where a pivot is not positive (A not SPD enough for IC(0)).
    pub fn new(a: &CsrMatrix) -> Result<Self, ConfigError> {
        let n = a.nrows();
        let (ip, ix, vx) = a.parts();
        let mut indptr = vec![0usize; n + 1];
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for i in 0..n {
            for k in ip[i]..ip[i + 1] {
                if ix[k] <= i {
                    indices.push(ix[k]);
                    values.push(vx[k]);
                }
            }
            indptr[i + 1] = indices.len();
            if indices.last() != Some(&i) {
                return Err(ConfigError::NotPositive { name: "diagonal entry (missing)", value: 0.0 });
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
        Ok(Self { n, indptr, indices, values })
    }
}

impl Preconditioner for Ic0 {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        // L y = r
        for i in 0..self.n {
            let (s, e) = (self.indptr[i], self.indptr[i + 1] - 1);
            let mut v = r[i];
            for p in s..e {
                v -= self.values[p] * z[self.indices[p]];
            }
            z[i] = v / self.values[e];
        }
        // Lᵀ z = y, column sweep from the bottom
        for i in (0..self.n).rev() {
            let (s, e) = (self.indptr[i], self.indptr[i + 1] - 1);
            z[i] /= self.values[e];
            let zi = z[i];
            for p in s..e {
                z[self.indices[p]] -= self.values[p] * zi;
            }
        }
    }
}
