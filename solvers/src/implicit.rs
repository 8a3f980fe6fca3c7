//! Implicit differentiation of solutions of `F(x, θ) = 0` (the `custom_root` pattern of JAXopt, Blondel et al.
//! 2022, arXiv:2105.15183): with `A = ∂F/∂x` and `B = ∂F/∂θ` at the solution,
//! - vector-Jacobian product: solve `Aᵀ u = −v`, return `Bᵀ u`;
//! - Jacobian-vector product: solve `A ẋ = −B θ̇`.
//!
//! Only the solution and θ are needed, never the forward iterations. The backward solve uses CG when `A` is
//! symmetric positive definite, GMRES otherwise, or dense LU for small systems, and its convergence report is
//! returned with the result (a failed backward solve is an error, never a silent wrong gradient).

use crate::krylov::{SolveError, SolveInfo, Tolerance, cg, gmres};
use crate::linalg::{FnOperator, LinearOperator, dense_matrix};
use crate::precond::Identity;

/// The Jacobians of an optimality or equilibrium condition `F(x, θ) = 0`, evaluated at `(x, θ)` fixed by the
/// implementor (usually the solution).
pub trait RootProblem: Sync {
    /// Dimension of x (and of F).
    fn n(&self) -> usize;
    /// Dimension of θ.
    fn p(&self) -> usize;
    /// `out = A v`.
    fn jac_x(&self, v: &[f64], out: &mut [f64]);
    /// `out = Aᵀ v`.
    fn jac_x_t(&self, v: &[f64], out: &mut [f64]);
    /// `out = B t` (length n).
    fn jac_theta(&self, t: &[f64], out: &mut [f64]);
    /// `out = Bᵀ u` (length p).
    fn jac_theta_t(&self, u: &[f64], out: &mut [f64]);
}

/// How the backward (and tangent) linear systems are solved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinearSolver {
    /// Conjugate gradients: `A` symmetric positive definite.
    Cg,
    /// Restarted GMRES: general `A`.
    Gmres { restart: usize },
    /// Dense LU with partial pivoting, building `A` column by column (n ≲ 1000).
    DenseLu,
}

/// Result of an implicit product: the vector and the report of its linear solve (`None` for dense LU).
#[derive(Clone, Debug)]
pub struct Implicit {
    pub value: Vec<f64>,
    pub info: Option<SolveInfo>,
}

/// Solves `op x = rhs` from `x = 0` with `solver` to `tol`: the dispatch the implicit products use, for callers
/// that solve the forward system the same way (`DenseLu` assembles `op` column by column).
pub fn solve(
    op: &dyn LinearOperator,
    rhs: &[f64],
    solver: LinearSolver,
    tol: Tolerance,
) -> Result<(Vec<f64>, Option<SolveInfo>), SolveError> {
    let n = op.nrows();
    let mut x = vec![0.0; n];
    match solver {
        LinearSolver::Cg => cg(op, rhs, &mut x, tol).map(|i| (x, Some(i))),
        LinearSolver::Gmres { restart } => gmres(op, &Identity, rhs, &mut x, tol, restart).map(|i| (x, Some(i))),
        LinearSolver::DenseLu => dense_lu_solve(&mut dense_matrix(op), rhs, n).map(|x| (x, None)),
    }
}

/// Solves `a x = b` (row-major `a`, overwritten) by LU with partial pivoting.
pub fn dense_lu_solve(a: &mut [f64], b: &[f64], n: usize) -> Result<Vec<f64>, SolveError> {
    let mut x = b.to_vec();
    let scale = a.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs())).unwrap_or(c);
        if a[p * n + c].abs() <= 1e-14 * scale {
            return Err(SolveError::Breakdown {
                info: SolveInfo { iterations: c, residuals: vec![], reason: None },
                what: "singular matrix in dense LU",
            });
        }
        if p != c {
            for k in 0..n {
                a.swap(c * n + k, p * n + k);
            }
            x.swap(c, p);
        }
        for r in c + 1..n {
            let f = a[r * n + c] / a[c * n + c];
            if f != 0.0 {
                for k in c..n {
                    a[r * n + k] -= f * a[c * n + k];
                }
                x[r] -= f * x[c];
            }
        }
    }
    for r in (0..n).rev() {
        let mut s = x[r];
        for k in r + 1..n {
            s -= a[r * n + k] * x[k];
        }
        x[r] = s / a[r * n + r];
    }
    Ok(x)
}

/// `θ̄ = Bᵀ u` with `Aᵀ u = −v`: the cotangent of θ for the cotangent `v` of the solution x(θ).
pub fn implicit_vjp(
    problem: &dyn RootProblem,
    v: &[f64],
    solver: LinearSolver,
    tol: Tolerance,
) -> Result<Implicit, SolveError> {
    let n = problem.n();
    if v.len() != n {
        return Err(SolveError::Size { n, len: v.len() });
    }
    let op = FnOperator::new(n, |x: &[f64], y: &mut [f64]| problem.jac_x_t(x, y));
    let neg: Vec<f64> = v.iter().map(|x| -x).collect();
    let (u, info) = solve(&op, &neg, solver, tol)?;
    let mut out = vec![0.0; problem.p()];
    problem.jac_theta_t(&u, &mut out);
    Ok(Implicit { value: out, info })
}

/// `ẋ` with `A ẋ = −B θ̇`: the tangent of the solution x(θ) in the direction θ̇.
pub fn implicit_jvp(
    problem: &dyn RootProblem,
    theta_dot: &[f64],
    solver: LinearSolver,
    tol: Tolerance,
) -> Result<Implicit, SolveError> {
    let (n, p) = (problem.n(), problem.p());
    if theta_dot.len() != p {
        return Err(SolveError::Size { n: p, len: theta_dot.len() });
    }
    let mut bt = vec![0.0; n];
    problem.jac_theta(theta_dot, &mut bt);
    bt.iter_mut().for_each(|x| *x = -*x);
    let op = FnOperator::new(n, |x: &[f64], y: &mut [f64]| problem.jac_x(x, y));
    let (xd, info) = solve(&op, &bt, solver, tol)?;
    Ok(Implicit { value: xd, info })
}
