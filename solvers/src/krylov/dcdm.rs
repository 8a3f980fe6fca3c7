//! The deep conjugate direction method (Kaneda, Akar, Chen, Kim, Teran, ICML 2023, arXiv:2205.10763).
//!
//! Each iteration asks a map `f` (a trained network, or any preconditioner standing in for one) for a search
//! direction from the normalised residual, A-orthogonalises it against the last few directions, takes the exact
//! line search along it and recomputes the true residual:
//!
//! ```text
//! z = f(r / ‖r‖),   p = z − Σ_j (zᵀ A p_j / p_jᵀ A p_j) p_j   (the last `orthogonalise` directions),
//! α = pᵀ r / pᵀ A p,   x ← x + α p,   r = b − A x.
//! ```
//!
//! The recurrence is not a Krylov one: `p` is A-orthogonal only to the directions it was orthogonalised against,
//! so older directions lose their orthogonality and the recursive residual would drift; recomputing `b − A x`
//! costs one more product per iteration and keeps the reported residual true.

use super::{SolveError, SolveInfo, Start, Tolerance, converged, residual, start};
use crate::linalg::{LinearOperator, dot, norm};
use crate::precond::Preconditioner;

/// Solves `A x = b` by the deep conjugate direction method with the direction map `f` (applied to `r / ‖r‖`),
/// A-orthogonalising each direction against the last `orthogonalise` ones (2 in the method's paper; at least 1).
/// `f` may be nonlinear. Starts from the given `x`.
///
/// Failures are typed: a direction with `pᵀAp ≤ 0` (for a singular `A`, one in its null space) is
/// [`SolveError::DegenerateDirection`]; a non-finite direction is [`SolveError::Breakdown`].
pub fn dcdm(
    a: &dyn LinearOperator,
    f: &dyn Preconditioner,
    b: &[f64],
    x: &mut [f64],
    tol: Tolerance,
    orthogonalise: usize,
) -> Result<SolveInfo, SolveError> {
    let n = a.nrows();
    let k = orthogonalise.max(1);
    let (mut r, bnorm, mut info) = match start(a, b, x, &tol)? {
        Start::Done(info) => return Ok(info),
        Start::Run { r, bnorm, info } => (r, bnorm, info),
    };
    let mut dirs = super::cg::Directions::new(n, k);
    let (mut s, mut z, mut p, mut q) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut rn = info.residual();
    while info.iterations < tol.max_iter {
        let inv = 1.0 / rn;
        for (si, ri) in s.iter_mut().zip(&r) {
            *si = ri * inv;
        }
        f.apply(&s, &mut z);
        if z.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::Breakdown { info, what: "non-finite direction from the direction map" });
        }
        dirs.orthogonalise(&z, &mut p);
        a.apply(&p, &mut q);
        let pap = dot(&p, &q);
        if !pap.is_finite() {
            return Err(SolveError::Breakdown { info, what: "non-finite pᵀAp" });
        }
        if pap <= 0.0 {
            return Err(SolveError::DegenerateDirection { info, pap });
        }
        let alpha = dot(&p, &r) / pap;
        for (xi, pi) in x.iter_mut().zip(&p) {
            *xi += alpha * pi;
        }
        residual(a, b, x, &mut r);
        info.iterations += 1;
        rn = norm(&r);
        info.residuals.push(rn);
        if !rn.is_finite() {
            return Err(SolveError::Breakdown { info, what: "non-finite residual" });
        }
        if let Some(reason) = converged(rn, bnorm, &tol) {
            info.reason = Some(reason);
            return Ok(info);
        }
        dirs.push(&p, &q, pap);
    }
    Err(SolveError::NotConverged(info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::{cg, fcg};
    use crate::linalg::{CsrMatrix, SparseCholesky, SymbolicCholesky};
    use crate::precond::{Ic0, Identity, Shell};

    /// The 5-point Laplacian on an m × m grid with Dirichlet walls, plus `shift` on the diagonal.
    fn laplacian(m: usize, shift: f64) -> CsrMatrix {
        let n = m * m;
        let mut t = Vec::new();
        for i in 0..m {
            for j in 0..m {
                let k = i * m + j;
                t.push((k, k, 4.0 + shift));
                if i > 0 {
                    t.push((k, k - m, -1.0));
                }
                if i + 1 < m {
                    t.push((k, k + m, -1.0));
                }
                if j > 0 {
                    t.push((k, k - 1, -1.0));
                }
                if j + 1 < m {
                    t.push((k, k + 1, -1.0));
                }
            }
        }
        CsrMatrix::from_triplets(n, n, &t).unwrap()
    }

    fn rhs(n: usize) -> Vec<f64> {
        (0..n).map(|i| ((i as f64) * 0.71).sin() + 0.1).collect()
    }

    #[test]
    fn converges_with_an_exact_inverse_in_one_step() {
        // f = A⁻¹ (dense), so the first direction is the solution up to scale
        let a = laplacian(6, 0.0);
        let n = a.nrows();
        let symbolic = SymbolicCholesky::new(&a).unwrap();
        let chol = SparseCholesky::new(&symbolic, &a).unwrap();
        let m = Shell::new(
            move |r: &[f64], z: &mut [f64]| {
                z.copy_from_slice(r);
                chol.solve_in_place(z);
            },
            true,
        );
        let b = rhs(n);
        let mut x = vec![0.0; n];
        let info = dcdm(&a, &m, &b, &mut x, Tolerance::relative(1e-10, 5), 2).unwrap();
        assert_eq!(info.iterations, 1);
        assert!(info.residual() <= 1e-10 * norm(&b));
    }

    #[test]
    fn converges_with_ic0_standing_in_and_reports_the_true_residual() {
        let a = laplacian(24, 0.0);
        let n = a.nrows();
        let b = rhs(n);
        let ic = Ic0::new(&a).unwrap();
        let tol = Tolerance::relative(1e-8, 500);
        let mut x = vec![0.0; n];
        let info = dcdm(&a, &ic, &b, &mut x, tol, 2).unwrap();
        let mut xc = vec![0.0; n];
        let plain = cg(&a, &b, &mut xc, tol).unwrap();
        // IC(0) directions need far fewer steps than CG's
        assert!(info.iterations * 2 < plain.iterations, "dcdm {} vs cg {}", info.iterations, plain.iterations);
        // the reported residual is b − A x itself
        let mut r = vec![0.0; n];
        residual(&a, &b, &x, &mut r);
        assert_eq!(norm(&r), info.residual());
        assert!(info.residual() <= 1e-8 * norm(&b));
        assert_eq!(info.residuals.len(), info.iterations + 1);
    }

    #[test]
    fn more_orthogonalisation_does_not_hurt_a_linear_map() {
        let a = laplacian(20, 0.1);
        let n = a.nrows();
        let b = rhs(n);
        let tol = Tolerance::relative(1e-8, 2000);
        let (mut x1, mut x2) = (vec![0.0; n], vec![0.0; n]);
        let one = dcdm(&a, &Identity, &b, &mut x1, tol, 1).unwrap();
        let eight = dcdm(&a, &Identity, &b, &mut x2, tol, 8).unwrap();
        assert!(eight.iterations <= one.iterations, "{} vs {}", eight.iterations, one.iterations);
        // with the identity and one-term orthogonalisation the first directions are CG's
        let mut x3 = vec![0.0; n];
        let f = fcg(&a, &Identity, &b, &mut x3, tol, 1).unwrap();
        for k in 0..5 {
            let rel = (one.residuals[k] - f.residuals[k]).abs() / f.residuals[k];
            assert!(rel < 1e-10, "iteration {k}: {} vs {}", one.residuals[k], f.residuals[k]);
        }
    }

    #[test]
    fn a_null_space_direction_is_a_typed_failure() {
        // A = diag(1, 0, 2) (singular); the map returns e₂, which lies in the null space
        let a = CsrMatrix::from_triplets(3, 3, &[(0, 0, 1.0), (1, 1, 0.0), (2, 2, 2.0)]).unwrap();
        let m = Shell::new(
            |_: &[f64], z: &mut [f64]| {
                z.copy_from_slice(&[0.0, 1.0, 0.0]);
            },
            false,
        );
        let mut x = vec![0.0; 3];
        let err = dcdm(&a, &m, &[1.0, 0.0, 1.0], &mut x, Tolerance::relative(1e-8, 10), 2).unwrap_err();
        assert!(matches!(err, SolveError::DegenerateDirection { pap, .. } if pap == 0.0), "{err:?}");
        assert_eq!(err.info().unwrap().iterations, 0);
        let nan = Shell::new(|_: &[f64], z: &mut [f64]| z.fill(f64::NAN), false);
        let err = dcdm(&a, &nan, &[1.0, 0.0, 1.0], &mut x, Tolerance::relative(1e-8, 10), 2).unwrap_err();
        assert!(matches!(err, SolveError::Breakdown { .. }), "{err:?}");
    }

    #[test]
    fn the_map_sees_unit_residuals() {
        let a = laplacian(8, 0.0);
        let n = a.nrows();
        let seen = std::sync::Mutex::new(Vec::new());
        let m = Shell::new(
            |r: &[f64], z: &mut [f64]| {
                seen.lock().unwrap().push(norm(r));
                z.copy_from_slice(r);
            },
            false,
        );
        let b: Vec<f64> = rhs(n).iter().map(|v| v * 1e3).collect();
        let mut x = vec![0.0; n];
        let _ = dcdm(&a, &m, &b, &mut x, Tolerance::relative(1e-6, 30), 2);
        let seen = seen.into_inner().unwrap();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|s| (s - 1.0).abs() < 1e-12), "{seen:?}");
    }
}
