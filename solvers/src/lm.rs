//! Levenberg–Marquardt for nonlinear least squares `min_x ½ |r(x, θ)|²` (f64), with the implicit adjoint of the
//! solution with respect to θ.

use crate::implicit::{Implicit, LinearSolver, RootProblem, implicit_vjp};
use crate::krylov::{SolveError, Tolerance, cg};
use crate::linalg::{FnOperator, dot, norm};

/// A least-squares problem: residuals `r(x, θ) ∈ Rᵐ` of unknowns `x ∈ Rⁿ` and parameters `θ ∈ Rᵖ`, with
/// Jacobian products.
pub trait LeastSquares: Sync {
    fn m(&self) -> usize;
    fn n(&self) -> usize;
    fn p(&self) -> usize;
    /// `r = r(x, θ)`.
    fn residual(&self, x: &[f64], theta: &[f64], r: &mut [f64]);
    /// `out = (∂r/∂x) v` (length m).
    fn jx(&self, x: &[f64], theta: &[f64], v: &[f64], out: &mut [f64]);
    /// `out = (∂r/∂x)ᵀ w` (length n).
    fn jx_t(&self, x: &[f64], theta: &[f64], w: &[f64], out: &mut [f64]);
    /// `out = (∂r/∂θ) t` (length m).
    fn jtheta(&self, x: &[f64], theta: &[f64], t: &[f64], out: &mut [f64]);
    /// `out = (∂r/∂θ)ᵀ w` (length p).
    fn jtheta_t(&self, x: &[f64], theta: &[f64], w: &[f64], out: &mut [f64]);
}

/// Options of [`levenberg_marquardt`]; no defaults for the tolerances.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmOptions {
    /// Stop when `|Jᵀ r| ≤ gtol`.
    pub gtol: f64,
    /// Stop when the relative cost decrease of an accepted step is below `ftol`.
    pub ftol: f64,
    pub max_iter: usize,
    /// Initial damping.
    pub lambda0: f64,
}

/// Why LM stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LmReason {
    Gradient,
    CostStalled,
}

/// What LM did.
#[derive(Clone, Debug, PartialEq)]
pub struct LmReport {
    pub iterations: usize,
    /// Cost ½|r|² after each accepted step, the initial cost first.
    pub costs: Vec<f64>,
    pub reason: LmReason,
}

/// LM failures.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LmError {
    #[error("Levenberg–Marquardt did not converge in {} iterations (cost {:.3e})", .0.iterations, .0.costs.last().copied().unwrap_or(f64::NAN))]
    NotConverged(LmReport),
    #[error("the damping grew without an acceptable step after {} iterations", .0.iterations)]
    Stuck(LmReport),
    #[error("non-finite residual")]
    NonFinite,
    #[error(transparent)]
    Solve(#[from] SolveError),
}

/// Minimises `½ |r(x, θ)|²` over x from `x` (updated in place): damped Gauss–Newton steps
/// `(JᵀJ + λ I) δ = −Jᵀ r` solved matrix-free by CG, λ divided by 3 after an accepted step and doubled after a
/// rejected one (Marquardt 1963, doi:10.1137/0111030).
pub fn levenberg_marquardt(
    problem: &dyn LeastSquares,
    x: &mut [f64],
    theta: &[f64],
    opts: LmOptions,
) -> Result<LmReport, LmError> {
    let (m, n) = (problem.m(), problem.n());
    let mut r = vec![0.0; m];
    let mut g = vec![0.0; n];
    let mut trial = vec![0.0; n];
    let mut rt = vec![0.0; m];
    problem.residual(x, theta, &mut r);
    if r.iter().any(|v| !v.is_finite()) {
        return Err(LmError::NonFinite);
    }
    let mut cost = 0.5 * dot(&r, &r);
    let mut report = LmReport { iterations: 0, costs: vec![cost], reason: LmReason::Gradient };
    let mut lambda = opts.lambda0.max(1e-12);
    let scratch = std::sync::Mutex::new(vec![0.0; m]);
    let mut delta = vec![0.0; n];
    let mut neg = vec![0.0; n];
    while report.iterations < opts.max_iter {
        problem.jx_t(x, theta, &r, &mut g);
        if norm(&g) <= opts.gtol {
            report.reason = LmReason::Gradient;
            return Ok(report);
        }
        report.iterations += 1;
        let mut accepted = false;
        for _ in 0..40 {
            let xs: &[f64] = x;
            let op = FnOperator::new(n, |v: &[f64], out: &mut [f64]| {
                let mut tmp = scratch.lock().unwrap_or_else(|e| e.into_inner());
                problem.jx(xs, theta, v, &mut tmp);
                problem.jx_t(xs, theta, &tmp, out);
                for (o, vi) in out.iter_mut().zip(v) {
                    *o += lambda * vi;
                }
            });
            for (ni, gi) in neg.iter_mut().zip(&g) {
                *ni = -gi;
            }
            delta.fill(0.0);
            cg(&op, &neg, &mut delta, Tolerance::relative(1e-10, 10 * n + 100))?;
            for i in 0..n {
                trial[i] = x[i] + delta[i];
            }
            problem.residual(&trial, theta, &mut rt);
            let new_cost = 0.5 * dot(&rt, &rt);
            if new_cost.is_finite() && new_cost < cost {
                x.copy_from_slice(&trial);
                r.copy_from_slice(&rt);
                let decrease = (cost - new_cost) / cost.max(f64::MIN_POSITIVE);
                cost = new_cost;
                report.costs.push(cost);
                lambda = (lambda / 3.0).max(1e-12);
                accepted = true;
                if decrease < opts.ftol {
                    report.reason = LmReason::CostStalled;
                    return Ok(report);
                }
                break;
            }
            lambda *= 2.0;
        }
        if !accepted {
            return Err(LmError::Stuck(report));
        }
    }
    Err(LmError::NotConverged(report))
}

/// The optimality condition `Jᵀ r = 0` of a least-squares solution in Gauss–Newton form: `A = JᵀJ`,
/// `B = Jᵀ ∂r/∂θ`. Exact when the residual vanishes at the solution (the second-order terms carry a factor r);
/// an approximation otherwise.
pub struct LeastSquaresRoot<'a> {
    pub problem: &'a dyn LeastSquares,
    pub x: &'a [f64],
    pub theta: &'a [f64],
}

impl RootProblem for LeastSquaresRoot<'_> {
    fn n(&self) -> usize {
        self.problem.n()
    }
    fn p(&self) -> usize {
        self.problem.p()
    }
    fn jac_x(&self, v: &[f64], out: &mut [f64]) {
        let mut t = vec![0.0; self.problem.m()];
        self.problem.jx(self.x, self.theta, v, &mut t);
        self.problem.jx_t(self.x, self.theta, &t, out);
    }
    fn jac_x_t(&self, v: &[f64], out: &mut [f64]) {
        self.jac_x(v, out)
    }
    fn jac_theta(&self, t: &[f64], out: &mut [f64]) {
        let mut s = vec![0.0; self.problem.m()];
        self.problem.jtheta(self.x, self.theta, t, &mut s);
        self.problem.jx_t(self.x, self.theta, &s, out);
    }
    fn jac_theta_t(&self, u: &[f64], out: &mut [f64]) {
        let mut s = vec![0.0; self.problem.m()];
        self.problem.jx(self.x, self.theta, u, &mut s);
        self.problem.jtheta_t(self.x, self.theta, &s, out);
    }
}

/// The cotangent of θ for the cotangent `v` of the least-squares solution `x(θ)` (Gauss–Newton implicit adjoint,
/// CG on `JᵀJ`).
pub fn least_squares_vjp(
    problem: &dyn LeastSquares,
    x: &[f64],
    theta: &[f64],
    v: &[f64],
    tol: Tolerance,
) -> Result<Implicit, SolveError> {
    implicit_vjp(&LeastSquaresRoot { problem, x, theta }, v, LinearSolver::Cg, tol)
}
