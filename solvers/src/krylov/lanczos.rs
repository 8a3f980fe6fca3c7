//! Lanczos tridiagonalisation and the eigenvalues of symmetric tridiagonal matrices.

use super::SolveError;
use crate::linalg::{LinearOperator, dot, norm};

/// `k` steps of Lanczos (with full reorthogonalisation, for reliable extreme eigenvalues) on a symmetric `a` from
/// `start`. Returns the diagonal `α` and off-diagonal `β` of the tridiagonal matrix T (length k and k − 1, fewer if
/// an invariant subspace is found); the eigenvalues of T (the Ritz values, [`tridiagonal_eigenvalues`])
/// approximate those of `a`, the extreme ones first.
pub fn lanczos(a: &dyn LinearOperator, start: &[f64], k: usize) -> Result<(Vec<f64>, Vec<f64>), SolveError> {
    let n = a.nrows();
    super::check_sizes(n, start, start)?;
    let s = norm(start);
    if s == 0.0 {
        return Err(SolveError::Breakdown {
            info: super::SolveInfo { iterations: 0, residuals: vec![], reason: None },
            what: "zero start vector",
        });
    }
    let k = k.min(n).max(1);
    let mut vs: Vec<Vec<f64>> = Vec::with_capacity(k);
    vs.push(start.iter().map(|x| x / s).collect());
    let (mut alpha, mut beta) = (Vec::with_capacity(k), Vec::with_capacity(k));
    let mut w = vec![0.0; n];
    for j in 0..k {
        a.apply(&vs[j], &mut w);
        let aj = dot(&w, &vs[j]);
        alpha.push(aj);
        // full reorthogonalisation (twice is enough)
        for _ in 0..2 {
            for v in &vs {
                let c = dot(&w, v);
                for t in 0..n {
                    w[t] -= c * v[t];
                }
            }
        }
        let b = norm(&w);
        if j + 1 == k || b <= 1e-14 * aj.abs().max(1.0) {
            break;
        }
        beta.push(b);
        vs.push(w.iter().map(|x| x / b).collect());
    }
    Ok((alpha, beta))
}

/// Eigenvalues (ascending) of the symmetric tridiagonal matrix with diagonal `d` and off-diagonal `e`
/// (`e[i]` couples `i` and `i + 1`), by Sturm-sequence bisection to about machine precision of the matrix norm.
pub fn tridiagonal_eigenvalues(d: &[f64], e: &[f64]) -> Vec<f64> {
    let n = d.len();
    if n == 0 {
        return vec![];
    }
    // Gershgorin interval
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..n {
        let r = if i > 0 { e[i - 1].abs() } else { 0.0 } + if i + 1 < n { e[i].abs() } else { 0.0 };
        lo = lo.min(d[i] - r);
        hi = hi.max(d[i] + r);
    }
    let scale = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
    // number of eigenvalues below x
    let count = |x: f64| -> usize {
        let mut c = 0;
        let mut q = 1.0;
        for i in 0..n {
            let off = if i > 0 { e[i - 1] * e[i - 1] } else { 0.0 };
            q = d[i] - x - if i > 0 { off / q } else { 0.0 };
            if q == 0.0 {
                q = -f64::EPSILON * scale;
            }
            if q < 0.0 {
                c += 1;
            }
        }
        c
    };
    (0..n)
        .map(|k| {
            let (mut a, mut b) = (lo, hi);
            for _ in 0..200 {
                let mid = 0.5 * (a + b);
                if count(mid) > k {
                    b = mid;
                } else {
                    a = mid;
                }
                if b - a <= 4.0 * f64::EPSILON * scale {
                    break;
                }
            }
            0.5 * (a + b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_of_the_discrete_laplacian() {
        // tridiag(-1, 2, -1) of size n: 2 − 2 cos(kπ/(n+1))
        let n = 50;
        let ev = tridiagonal_eigenvalues(&vec![2.0; n], &vec![-1.0; n - 1]);
        for (k, v) in ev.iter().enumerate() {
            let exact = 2.0 - 2.0 * ((k + 1) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
            assert!((v - exact).abs() < 1e-13, "{k}: {v} vs {exact}");
        }
    }
}
