//! Conjugate gradients, preconditioned and flexible.

use super::{SolveError, SolveInfo, Start, Tolerance, converged, start};
use crate::linalg::{LinearOperator, cg_update, dot, dot_blocked, norm};
use crate::precond::Preconditioner;

/// Conjugate gradients for a symmetric positive definite `a` (Hestenes & Stiefel 1952).
pub fn cg(a: &dyn LinearOperator, b: &[f64], x: &mut [f64], tol: Tolerance) -> Result<SolveInfo, SolveError> {
    pcg(a, &crate::precond::Identity, b, x, tol)
}

/// Preconditioned CG with a linear symmetric positive definite preconditioner `m` (≈ A⁻¹). Refuses a
/// preconditioner that declares itself nonlinear.
pub fn pcg(
    a: &dyn LinearOperator,
    m: &dyn Preconditioner,
    b: &[f64],
    x: &mut [f64],
    tol: Tolerance,
) -> Result<SolveInfo, SolveError> {
    if !m.is_linear() {
        return Err(SolveError::NonlinearPreconditioner);
    }
    let n = a.nrows();
    let (mut r, bnorm, mut info) = match start(a, b, x, &tol)? {
        Start::Done(info) => return Ok(info),
        Start::Run { r, bnorm, info } => (r, bnorm, info),
    };
    let mut z = vec![0.0; n];
    m.apply(&r, &mut z);
    let mut p = z.clone();
    let mut q = vec![0.0; n];
    let mut rz = dot(&r, &z);
    if rz <= 0.0 {
        return Err(SolveError::IndefinitePreconditioner(info));
    }
    let identity = m.is_identity();
    // block sums of the fused passes on long vectors, reused by every iteration
    let mut blocks = Vec::new();
    // β of the direction update, which the next product performs (None before the first)
    let mut pending = None;
    while info.iterations < tol.max_iter {
        // fused passes: p = z + β p with q = A p and p · q (one pass where the operator can), then x, r and
        // r · r together
        let pq = match pending {
            None => a.apply_dot(&p, &mut q),
            Some(beta) => a.update_apply_dot(&mut p, if identity { &r } else { &z }, beta, &mut q),
        };
        if pq <= 0.0 {
            return Err(SolveError::IndefiniteOperator(info));
        }
        let alpha = rz / pq;
        let rr = cg_update(x, &mut r, &p, &q, alpha, &mut blocks);
        info.iterations += 1;
        let rn = rr.sqrt();
        info.residuals.push(rn);
        if !rn.is_finite() {
            return Err(SolveError::Breakdown { info, what: "non-finite residual" });
        }
        if let Some(reason) = converged(rn, bnorm, &tol) {
            info.reason = Some(reason);
            return Ok(info);
        }
        // without a preconditioner z = r: no copy, and r · z is r · r
        let rz_new = if identity {
            rr
        } else {
            match m.apply_dot(&r, &mut z) {
                Some(rz) => rz,
                None => dot_blocked(&r, &z, &mut blocks),
            }
        };
        if rz_new <= 0.0 {
            return Err(SolveError::IndefinitePreconditioner(info));
        }
        pending = Some(rz_new / rz);
        rz = rz_new;
    }
    Err(SolveError::NotConverged(info))
}

/// Flexible CG (Notay 2000, doi:10.1137/S1064827599362314): each new direction is A-orthogonalised against the
/// last `truncation` directions (≥ 1), so the preconditioner may change from one iteration to the next or be
/// nonlinear (a learned preconditioner). With a fixed linear SPD preconditioner it matches PCG.
pub fn fcg(
    a: &dyn LinearOperator,
    m: &dyn Preconditioner,
    b: &[f64],
    x: &mut [f64],
    tol: Tolerance,
    truncation: usize,
) -> Result<SolveInfo, SolveError> {
    let n = a.nrows();
    let mmax = truncation.max(1);
    let (mut r, bnorm, mut info) = match start(a, b, x, &tol)? {
        Start::Done(info) => return Ok(info),
        Start::Run { r, bnorm, info } => (r, bnorm, info),
    };
    let mut dirs = Directions::new(n, mmax);
    let mut z = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut q = vec![0.0; n];
    while info.iterations < tol.max_iter {
        m.apply(&r, &mut z);
        dirs.orthogonalise(&z, &mut p);
        a.apply(&p, &mut q);
        let pap = dot(&p, &q);
        if pap <= 0.0 || !pap.is_finite() {
            return Err(if pap.is_finite() {
                SolveError::IndefiniteOperator(info)
            } else {
                SolveError::Breakdown { info, what: "non-finite direction from the preconditioner" }
            });
        }
        let alpha = dot(&p, &r) / pap;
        for i in 0..n {
            x[i] += alpha * p[i];
            r[i] -= alpha * q[i];
        }
        info.iterations += 1;
        let rn = norm(&r);
        info.residuals.push(rn);
        if let Some(reason) = converged(rn, bnorm, &tol) {
            info.reason = Some(reason);
            return Ok(info);
        }
        dirs.push(&p, &q, pap);
    }
    Err(SolveError::NotConverged(info))
}

/// The last `k` search directions `p_j` of a flexible method, with `A p_j` and `p_jᵀ A p_j` (a ring buffer,
/// allocated once).
pub(super) struct Directions {
    ps: Vec<Vec<f64>>,
    aps: Vec<Vec<f64>>,
    paps: Vec<f64>,
    stored: usize,
    next: usize,
}

impl Directions {
    pub(super) fn new(n: usize, k: usize) -> Self {
        Self { ps: vec![vec![0.0; n]; k], aps: vec![vec![0.0; n]; k], paps: vec![0.0; k], stored: 0, next: 0 }
    }

    /// `p = z − Σ_j (zᵀ A p_j / p_jᵀ A p_j) p_j` over the stored directions, oldest slot first: classical
    /// Gram–Schmidt in the A inner product, every coefficient from the unmodified `z`.
    pub(super) fn orthogonalise(&self, z: &[f64], p: &mut [f64]) {
        p.copy_from_slice(z);
        for j in 0..self.stored {
            let c = dot(z, &self.aps[j]) / self.paps[j];
            for (pi, pj) in p.iter_mut().zip(&self.ps[j]) {
                *pi -= c * pj;
            }
        }
    }

    /// Stores `p`, `A p` and `pᵀ A p`, replacing the oldest when full.
    pub(super) fn push(&mut self, p: &[f64], ap: &[f64], pap: f64) {
        let k = self.paps.len();
        self.ps[self.next].copy_from_slice(p);
        self.aps[self.next].copy_from_slice(ap);
        self.paps[self.next] = pap;
        self.next = (self.next + 1) % k;
        self.stored = (self.stored + 1).min(k);
    }
}
