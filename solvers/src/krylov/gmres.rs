//! Restarted flexible GMRES.

use super::{SolveError, SolveInfo, Start, Tolerance, converged, residual, start};
use crate::linalg::{LinearOperator, dot, norm};
use crate::precond::Preconditioner;

/// Restarted GMRES(`restart`) with right preconditioning in its flexible form (Saad 1993,
/// doi:10.1137/0914028): the preconditioned vectors are kept, so `m` may be nonlinear or vary; with a linear `m`
/// it is ordinary right-preconditioned GMRES. For nonsymmetric `a`. The residual history holds the true residual
/// at each restart and the least-squares estimate in between.
pub fn gmres(
    a: &dyn LinearOperator,
    m: &dyn Preconditioner,
    b: &[f64],
    x: &mut [f64],
    tol: Tolerance,
    restart: usize,
) -> Result<SolveInfo, SolveError> {
    let n = a.nrows();
    let k = restart.max(1);
    let (mut r, bnorm, mut info) = match start(a, b, x, &tol)? {
        Start::Done(info) => return Ok(info),
        Start::Run { r, bnorm, info } => (r, bnorm, info),
    };
    let mut first = true;
    let mut v = vec![vec![0.0; n]; k + 1];
    let mut zs = vec![vec![0.0; n]; k];
    let mut h = vec![vec![0.0; k]; k + 1]; // h[i][j]
    let (mut cs, mut sn, mut g) = (vec![0.0; k], vec![0.0; k], vec![0.0; k + 1]);
    let mut w = vec![0.0; n];
    let mut y = vec![0.0; k];
    loop {
        // the initial residual comes from `start`; later ones are recomputed at each restart
        if !first {
            residual(a, b, x, &mut r);
            info.residuals.push(norm(&r));
        }
        first = false;
        let beta = norm(&r);
        if let Some(reason) = converged(beta, bnorm, &tol) {
            info.reason = Some(reason);
            return Ok(info);
        }
        if info.iterations >= tol.max_iter {
            return Err(SolveError::NotConverged(info));
        }
        for (vi, ri) in v[0].iter_mut().zip(&r) {
            *vi = ri / beta;
        }
        g.fill(0.0);
        g[0] = beta;
        let mut j_used = 0;
        for j in 0..k {
            m.apply(&v[j], &mut zs[j]);
            a.apply(&zs[j], &mut w);
            // modified Gram–Schmidt
            for i in 0..=j {
                let hij = dot(&w, &v[i]);
                h[i][j] = hij;
                for t in 0..n {
                    w[t] -= hij * v[i][t];
                }
            }
            let hn = norm(&w);
            h[j + 1][j] = hn;
            if !hn.is_finite() {
                return Err(SolveError::Breakdown { info, what: "non-finite Arnoldi vector" });
            }
            if hn > 0.0 {
                for t in 0..n {
                    v[j + 1][t] = w[t] / hn;
                }
            }
            // apply the previous rotations, then a new one to zero h[j+1][j]
            for i in 0..j {
                let tmp = cs[i] * h[i][j] + sn[i] * h[i + 1][j];
                h[i + 1][j] = -sn[i] * h[i][j] + cs[i] * h[i + 1][j];
                h[i][j] = tmp;
            }
            let d = (h[j][j] * h[j][j] + h[j + 1][j] * h[j + 1][j]).sqrt();
            if d == 0.0 {
                return Err(SolveError::Breakdown { info, what: "singular Hessenberg matrix" });
            }
            cs[j] = h[j][j] / d;
            sn[j] = h[j + 1][j] / d;
            h[j][j] = d;
            h[j + 1][j] = 0.0;
            g[j + 1] = -sn[j] * g[j];
            g[j] *= cs[j];
            info.iterations += 1;
            j_used = j + 1;
            let est = g[j + 1].abs();
            if converged(est, bnorm, &tol).is_some() || hn == 0.0 || info.iterations >= tol.max_iter {
                break;
            }
            info.residuals.push(est);
        }
        // x += Z y with H y = g (upper triangular)
        for i in (0..j_used).rev() {
            let mut s = g[i];
            for t in i + 1..j_used {
                s -= h[i][t] * y[t];
            }
            y[i] = s / h[i][i];
        }
        for (j, yj) in y[..j_used].iter().enumerate() {
            for t in 0..n {
                x[t] += yj * zs[j][t];
            }
        }
    }
}
