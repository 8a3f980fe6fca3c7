//! Krylov methods: conjugate gradients ([`cg`], [`pcg`]), flexible CG ([`fcg`], accepts nonlinear
//! preconditioners), restarted flexible GMRES ([`gmres`]), the deep conjugate direction method ([`dcdm`], search
//! directions from a learned or classical map) and Lanczos ([`lanczos`]) with a symmetric tridiagonal
//! eigensolver ([`tridiagonal_eigenvalues`]).
//!
//! Every solver takes its [`Tolerance`] as a required argument, starts from the `x` it is given and returns a
//! [`SolveInfo`] (iterations, residual history, reason) or a typed [`SolveError`] that carries the same report.

mod cg;
mod dcdm;
mod gmres;
mod lanczos;

pub use cg::{cg, fcg, pcg};
pub use dcdm::dcdm;
pub use gmres::gmres;
pub use lanczos::{RitzPairs, lanczos, ritz_pairs, tridiagonal_eigenvalues};

use crate::linalg::{LinearOperator, norm};

/// When to stop: `‖r‖ ≤ max(rtol ‖b‖, atol)`, at most `max_iter` iterations. No defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
    pub max_iter: usize,
}

impl Tolerance {
    /// A relative tolerance with `atol = 0`.
    pub fn relative(rtol: f64, max_iter: usize) -> Self {
        Self { rtol, atol: 0.0, max_iter }
    }
}

/// Why a solve stopped successfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `‖r‖ ≤ rtol ‖b‖`.
    ConvergedRelative,
    /// `‖r‖ ≤ atol`.
    ConvergedAbsolute,
    /// The right-hand side is zero; the solution is zero.
    ZeroRhs,
}

/// What a solve did.
#[derive(Clone, Debug, PartialEq)]
pub struct SolveInfo {
    pub iterations: usize,
    /// Residual 2-norms, the initial one first.
    pub residuals: Vec<f64>,
    pub reason: Option<Reason>,
}

impl SolveInfo {
    /// The last residual norm.
    pub fn residual(&self) -> f64 {
        self.residuals.last().copied().unwrap_or(f64::NAN)
    }
}

/// Why a solve failed; each variant carries the report so far.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SolveError {
    #[error("not converged after {} iterations (residual {:.3e})", .0.iterations, .0.residual())]
    NotConverged(SolveInfo),
    #[error("breakdown after {} iterations: {what}", .info.iterations)]
    Breakdown { info: SolveInfo, what: &'static str },
    #[error("the operator is not positive definite (pᵀAp ≤ 0 after {} iterations)", .0.iterations)]
    IndefiniteOperator(SolveInfo),
    #[error("the preconditioner is not positive definite (rᵀz ≤ 0 after {} iterations)", .0.iterations)]
    IndefinitePreconditioner(SolveInfo),
    #[error("degenerate search direction after {} iterations (pᵀAp = {pap:e} ≤ 0: in the null space of a singular operator, or the operator is indefinite)", .info.iterations)]
    DegenerateDirection { info: SolveInfo, pap: f64 },
    #[error("the preconditioner is nonlinear; use a flexible method (fcg, gmres)")]
    NonlinearPreconditioner,
    #[error("size mismatch: operator {n}, vector {len}")]
    Size { n: usize, len: usize },
    #[error("non-finite values in the right-hand side or the initial guess")]
    NonFinite,
}

impl SolveError {
    /// The report of the failed solve, if it got that far.
    pub fn info(&self) -> Option<&SolveInfo> {
        match self {
            SolveError::NotConverged(i)
            | SolveError::IndefiniteOperator(i)
            | SolveError::IndefinitePreconditioner(i) => Some(i),
            SolveError::Breakdown { info, .. } | SolveError::DegenerateDirection { info, .. } => Some(info),
            _ => None,
        }
    }
}

pub(crate) fn check_sizes(n: usize, b: &[f64], x: &[f64]) -> Result<(), SolveError> {
    for len in [b.len(), x.len()] {
        if len != n {
            return Err(SolveError::Size { n, len });
        }
    }
    if b.iter().chain(x.iter()).any(|v| !v.is_finite()) {
        return Err(SolveError::NonFinite);
    }
    Ok(())
}

/// How a solve starts: either finished already (zero right-hand side, or converged at the initial guess) or with
/// the initial residual `r = b − A x` and `‖b‖`.
pub(crate) enum Start {
    Done(SolveInfo),
    Run { r: Vec<f64>, bnorm: f64, info: SolveInfo },
}

/// Checks sizes and values, handles a zero right-hand side and computes the initial residual.
pub(crate) fn start(a: &dyn LinearOperator, b: &[f64], x: &mut [f64], tol: &Tolerance) -> Result<Start, SolveError> {
    let n = a.nrows();
    check_sizes(n, b, x)?;
    let bnorm = norm(b);
    let mut info = SolveInfo { iterations: 0, residuals: vec![], reason: None };
    if bnorm == 0.0 {
        x.fill(0.0);
        info.residuals.push(0.0);
        info.reason = Some(Reason::ZeroRhs);
        return Ok(Start::Done(info));
    }
    let mut r = vec![0.0; n];
    residual(a, b, x, &mut r);
    let rn = norm(&r);
    info.residuals.push(rn);
    if let Some(reason) = converged(rn, bnorm, tol) {
        info.reason = Some(reason);
        return Ok(Start::Done(info));
    }
    Ok(Start::Run { r, bnorm, info })
}

/// `r = b − A x`.
pub(crate) fn residual(a: &dyn LinearOperator, b: &[f64], x: &[f64], r: &mut [f64]) {
    a.apply(x, r);
    for (ri, bi) in r.iter_mut().zip(b) {
        *ri = bi - *ri;
    }
}

/// Converged?
pub(crate) fn converged(rnorm: f64, bnorm: f64, tol: &Tolerance) -> Option<Reason> {
    if rnorm <= tol.rtol * bnorm {
        Some(Reason::ConvergedRelative)
    } else if rnorm <= tol.atol {
        Some(Reason::ConvergedAbsolute)
    } else {
        None
    }
}
