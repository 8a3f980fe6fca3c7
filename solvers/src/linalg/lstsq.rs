//! Small dense least squares `x = argmin ‖J x − f‖₂` (`J` of shape `m × k`, `m ≥ k`, full column rank) by
//! Householder QR, and its exact reverse-mode derivative. Sized for the many tiny problems of a batch (a reduced
//! model's latent velocity: `k` of 4 to 100): one [`LstsqWork`] per thread, no allocation per problem.
//!
//! Derivative: with `r = f − J x` and `z = (JᵀJ)⁻¹ x̄ = R⁻¹ R⁻ᵀ x̄`, the cotangents are
//! `f̄ = J z` and `J̄ = r zᵀ − f̄ xᵀ` (differentiate the normal equations `JᵀJ x = Jᵀ f`).

/// Why a least-squares problem could not be solved.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LstsqError {
    /// `J` is (numerically) rank deficient: `|R_ii| ≤ rtol · max_j |R_jj|` for this column.
    #[error("rank deficient: |R[{column}][{column}]| = {value:.3e} against a largest diagonal {largest:.3e}")]
    RankDeficient { column: usize, value: f64, largest: f64 },
    /// `J` or `f` holds a NaN or an infinity.
    #[error("non-finite values in the matrix or the right-hand side")]
    NonFinite,
    /// Fewer rows than columns, or slices of the wrong length.
    #[error("shape: {0}")]
    Shape(String),
}

/// Scratch space for problems of one shape `m × k`.
#[derive(Clone, Debug)]
pub struct LstsqWork {
    m: usize,
    k: usize,
    /// The Householder vectors below the diagonal and R on and above it (row-major m × k).
    qr: Vec<f64>,
    /// `τ_i` of each reflector `I − τ v vᵀ` (`v_i = 1`).
    tau: Vec<f64>,
    /// `Qᵀ f`, then scratch of length m.
    y: Vec<f64>,
    z: Vec<f64>,
}

impl LstsqWork {
    /// Scratch for `m × k` problems.
    pub fn new(m: usize, k: usize) -> Self {
        Self { m, k, qr: vec![0.0; m * k], tau: vec![0.0; k], y: vec![0.0; m], z: vec![0.0; k] }
    }

    fn check(&self, j: &[f64], f: &[f64]) -> Result<(), LstsqError> {
        let (m, k) = (self.m, self.k);
        if m < k || k == 0 {
            return Err(LstsqError::Shape(format!("{m} × {k}: need at least as many rows as columns, and a column")));
        }
        if j.len() != m * k || f.len() != m {
            return Err(LstsqError::Shape(format!(
                "J has {} values and f {} for a {m} × {k} problem",
                j.len(),
                f.len()
            )));
        }
        if j.iter().chain(f).any(|v| !v.is_finite()) {
            return Err(LstsqError::NonFinite);
        }
        Ok(())
    }

    /// Factorises `J = QR` in place of `self.qr`; fails on a rank-deficient `J` (relative tolerance `rtol`).
    fn factor(&mut self, j: &[f64], rtol: f64) -> Result<(), LstsqError> {
        let (m, k) = (self.m, self.k);
        self.qr.copy_from_slice(j);
        let a = &mut self.qr;
        for c in 0..k {
            // the reflector that zeroes column c below the diagonal
            let norm = (c..m).map(|r| a[r * k + c] * a[r * k + c]).sum::<f64>().sqrt();
            if norm == 0.0 {
                self.tau[c] = 0.0;
                continue;
            }
            let alpha = if a[c * k + c] > 0.0 { -norm } else { norm };
            let v0 = a[c * k + c] - alpha;
            for r in c + 1..m {
                a[r * k + c] /= v0;
            }
            self.tau[c] = -v0 / alpha;
            a[c * k + c] = alpha;
            // apply to the remaining columns: a_j ← a_j − τ v (vᵀ a_j)
            for cc in c + 1..k {
                let mut s = a[c * k + cc];
                for r in c + 1..m {
                    s += a[r * k + c] * a[r * k + cc];
                }
                s *= self.tau[c];
                a[c * k + cc] -= s;
                for r in c + 1..m {
                    a[r * k + cc] -= s * a[r * k + c];
                }
            }
        }
        let largest = (0..k).map(|i| a[i * k + i].abs()).fold(0.0, f64::max);
        for i in 0..k {
            let d = a[i * k + i].abs();
            if d <= rtol * largest || largest == 0.0 {
                return Err(LstsqError::RankDeficient { column: i, value: d, largest });
            }
        }
        Ok(())
    }

    /// `y ← Qᵀ y`.
    fn apply_qt(&mut self) {
        let (m, k) = (self.m, self.k);
        for c in 0..k {
            let mut s = self.y[c];
            for r in c + 1..m {
                s += self.qr[r * k + c] * self.y[r];
            }
            s *= self.tau[c];
            self.y[c] -= s;
            for r in c + 1..m {
                self.y[r] -= s * self.qr[r * k + c];
            }
        }
    }

    /// `x ← R⁻¹ x` (back substitution).
    fn solve_r(&self, x: &mut [f64]) {
        let k = self.k;
        for i in (0..k).rev() {
            let s: f64 = x[i] - (i + 1..k).map(|c| self.qr[i * k + c] * x[c]).sum::<f64>();
            x[i] = s / self.qr[i * k + i];
        }
    }

    /// `x ← R⁻ᵀ x` (forward substitution).
    fn solve_rt(&self, x: &mut [f64]) {
        let k = self.k;
        for i in 0..k {
            let s: f64 = x[i] - (0..i).map(|c| self.qr[c * k + i] * x[c]).sum::<f64>();
            x[i] = s / self.qr[i * k + i];
        }
    }
}

/// Solves `min ‖J x − f‖₂` for `J` (row-major `m × k`, the shape of `w`) into `x` (`k` values). `rtol` is the
/// rank tolerance on the diagonal of R (relative to its largest entry; 1e-12 is a sensible f64 value).
pub fn lstsq(j: &[f64], f: &[f64], x: &mut [f64], rtol: f64, w: &mut LstsqWork) -> Result<(), LstsqError> {
    w.check(j, f)?;
    if x.len() != w.k {
        return Err(LstsqError::Shape(format!("x has {} values for {} columns", x.len(), w.k)));
    }
    w.factor(j, rtol)?;
    w.y.copy_from_slice(f);
    w.apply_qt();
    x.copy_from_slice(&w.y[..w.k]);
    w.solve_r(x);
    Ok(())
}

/// The cotangents of [`lstsq`] at its solution `x`: `f̄ = J z`, `J̄ = r zᵀ − f̄ xᵀ` with `z = (JᵀJ)⁻¹ x̄` and
/// `r = f − J x`, written to `j_bar` (`m × k`) and `f_bar` (`m`). Refactorises `J` (the forward pass keeps only
/// `x`).
#[allow(clippy::too_many_arguments)]
pub fn lstsq_vjp(
    j: &[f64],
    f: &[f64],
    x: &[f64],
    x_bar: &[f64],
    j_bar: &mut [f64],
    f_bar: &mut [f64],
    rtol: f64,
    w: &mut LstsqWork,
) -> Result<(), LstsqError> {
    w.check(j, f)?;
    let (m, k) = (w.m, w.k);
    if x.len() != k || x_bar.len() != k || j_bar.len() != m * k || f_bar.len() != m {
        return Err(LstsqError::Shape("cotangent slices of the wrong length".into()));
    }
    w.factor(j, rtol)?;
    let mut z = std::mem::take(&mut w.z);
    z.copy_from_slice(x_bar);
    w.solve_rt(&mut z);
    w.solve_r(&mut z);
    for r in 0..m {
        let row = &j[r * k..(r + 1) * k];
        let jz: f64 = row.iter().zip(&z).map(|(a, b)| a * b).sum();
        let res = f[r] - row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
        f_bar[r] = jz;
        for c in 0..k {
            j_bar[r * k + c] = res * z[c] - jz * x[c];
        }
    }
    w.z = z;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    /// The solution satisfies the normal equations `Jᵀ (f − J x) = 0`, and a consistent system is solved exactly.
    #[test]
    fn solutions_satisfy_the_normal_equations() {
        let mut rnd = lcg(1);
        for (m, k) in [(1, 1), (5, 3), (25, 4), (40, 16)] {
            let j: Vec<f64> = (0..m * k).map(|_| rnd()).collect();
            let f: Vec<f64> = (0..m).map(|_| rnd()).collect();
            let mut w = LstsqWork::new(m, k);
            let mut x = vec![0.0; k];
            lstsq(&j, &f, &mut x, 1e-12, &mut w).unwrap();
            for c in 0..k {
                let g: f64 =
                    (0..m).map(|r| j[r * k + c] * (f[r] - (0..k).map(|cc| j[r * k + cc] * x[cc]).sum::<f64>())).sum();
                assert!(g.abs() < 1e-12, "{m} × {k}: normal-equation residual {g}");
            }
            let truth: Vec<f64> = (0..k).map(|_| rnd()).collect();
            let fc: Vec<f64> = (0..m).map(|r| (0..k).map(|c| j[r * k + c] * truth[c]).sum()).collect();
            lstsq(&j, &fc, &mut x, 1e-12, &mut w).unwrap();
            let err = x.iter().zip(&truth).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-10, "{m} × {k}: consistent system solved to {err}");
        }
    }

    /// Central differences of `⟨x̄, x(J, f)⟩` in random directions of J and f (f64, relative 1e-7).
    #[test]
    fn the_cotangents_match_finite_differences() {
        let mut rnd = lcg(2);
        for (m, k) in [(6, 3), (25, 4), (30, 16)] {
            let j: Vec<f64> = (0..m * k).map(|_| rnd()).collect();
            let f: Vec<f64> = (0..m).map(|_| rnd()).collect();
            let xb: Vec<f64> = (0..k).map(|_| rnd()).collect();
            let (dj, df): (Vec<f64>, Vec<f64>) = ((0..m * k).map(|_| rnd()).collect(), (0..m).map(|_| rnd()).collect());
            let mut w = LstsqWork::new(m, k);
            let mut x = vec![0.0; k];
            lstsq(&j, &f, &mut x, 1e-12, &mut w).unwrap();
            let (mut jb, mut fb) = (vec![0.0; m * k], vec![0.0; m]);
            lstsq_vjp(&j, &f, &x, &xb, &mut jb, &mut fb, 1e-12, &mut w).unwrap();
            let analytic: f64 = jb.iter().zip(&dj).map(|(a, b)| a * b).sum::<f64>()
                + fb.iter().zip(&df).map(|(a, b)| a * b).sum::<f64>();
            let eps = 1e-6;
            let mut at = |s: f64| {
                let jj: Vec<f64> = j.iter().zip(&dj).map(|(a, b)| a + s * b).collect();
                let ff: Vec<f64> = f.iter().zip(&df).map(|(a, b)| a + s * b).collect();
                let mut xx = vec![0.0; k];
                lstsq(&jj, &ff, &mut xx, 1e-12, &mut w).unwrap();
                xx.iter().zip(&xb).map(|(a, b)| a * b).sum::<f64>()
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!((fd - analytic).abs() <= 1e-7 * analytic.abs().max(1.0), "{m} × {k}: {fd} vs {analytic}");
        }
    }

    #[test]
    fn rank_deficiency_and_bad_input_are_errors() {
        let mut w = LstsqWork::new(3, 2);
        let mut x = [0.0; 2];
        // the second column is twice the first
        let j = [1.0, 2.0, 2.0, 4.0, -1.0, -2.0];
        assert!(matches!(lstsq(&j, &[1.0, 0.0, 1.0], &mut x, 1e-12, &mut w), Err(LstsqError::RankDeficient { .. })));
        let j = [1.0, 0.0, 0.0, 1.0, f64::NAN, 1.0];
        assert_eq!(lstsq(&j, &[1.0, 0.0, 1.0], &mut x, 1e-12, &mut w), Err(LstsqError::NonFinite));
        assert!(matches!(
            lstsq(&[1.0; 4], &[1.0; 2], &mut x, 1e-12, &mut LstsqWork::new(2, 3)),
            Err(LstsqError::Shape(_))
        ));
    }
}
