//! Lanczos tridiagonalisation, the eigenvalues of symmetric tridiagonal matrices, and Ritz pairs.

use super::SolveError;
use crate::linalg::{LinearOperator, dot, norm};

/// Ritz pairs of a symmetric operator from a Lanczos run: `values` ascending, `vectors[j]` (unit 2-norm) the Ritz
/// vector of `values[j]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RitzPairs {
    pub values: Vec<f64>,
    pub vectors: Vec<Vec<f64>>,
}

/// The Ritz pairs of `k` Lanczos steps (full reorthogonalisation) on a symmetric `a` from `start`: the
/// eigenpairs `(θ_j, w_j)` of the tridiagonal `T` give `θ_j` and `Q w_j`, with `Q` the Lanczos basis. Fewer than
/// `k` pairs when an invariant subspace is found. The extreme pairs converge first; the inner ones span the rest of
/// the Krylov space. Memory: the `k` basis vectors and the `k` Ritz vectors.
pub fn ritz_pairs(a: &dyn LinearOperator, start: &[f64], k: usize) -> Result<RitzPairs, SolveError> {
    let (alpha, beta, basis) = lanczos_basis(a, start, k)?;
    let m = alpha.len();
    let t = faer::Mat::<f64>::from_fn(m, m, |i, j| {
        if i == j {
            alpha[i]
        } else if i == j + 1 || j == i + 1 {
            beta[i.min(j)]
        } else {
            0.0
        }
    });
    let evd = t.self_adjoint_eigen(faer::Side::Lower).map_err(|_| SolveError::Breakdown {
        info: super::SolveInfo { iterations: m, residuals: vec![], reason: None },
        what: "the eigendecomposition of the Lanczos tridiagonal matrix did not converge",
    })?;
    let (w, theta) = (evd.U(), evd.S().column_vector());
    let n = a.nrows();
    let mut vectors = vec![vec![0.0; n]; m];
    for (j, v) in vectors.iter_mut().enumerate() {
        for (i, q) in basis.iter().enumerate() {
            let c = w[(i, j)];
            for (vt, qt) in v.iter_mut().zip(q) {
                *vt += c * qt;
            }
        }
        let s = norm(v);
        v.iter_mut().for_each(|x| *x /= s);
    }
    Ok(RitzPairs { values: (0..m).map(|j| theta[j]).collect(), vectors })
}

/// `k` steps of Lanczos (with full reorthogonalisation, for reliable extreme eigenvalues) on a symmetric `a` from
/// `start`. Returns the diagonal `α` and off-diagonal `β` of the tridiagonal matrix T (length k and k − 1, fewer if
/// an invariant subspace is found); the eigenvalues of T (the Ritz values, [`tridiagonal_eigenvalues`])
/// approximate those of `a`, the extreme ones first.
pub fn lanczos(a: &dyn LinearOperator, start: &[f64], k: usize) -> Result<(Vec<f64>, Vec<f64>), SolveError> {
    lanczos_basis(a, start, k).map(|(alpha, beta, _)| (alpha, beta))
}

/// [`lanczos`], with the orthonormal basis it built.
#[allow(clippy::type_complexity)]
fn lanczos_basis(
    a: &dyn LinearOperator,
    start: &[f64],
    k: usize,
) -> Result<(Vec<f64>, Vec<f64>, Vec<Vec<f64>>), SolveError> {
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
    vs.truncate(alpha.len());
    Ok((alpha, beta, vs))
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

    #[test]
    fn ritz_pairs_of_a_full_run_are_the_eigenpairs() {
        // tridiag(-1, 2 + i/n, -1): k = n steps reproduce every eigenpair; check A v = θ v and orthonormality
        let n = 30;
        let mut t = vec![];
        for i in 0..n {
            t.push((i, i, 2.0 + i as f64 / n as f64));
            if i > 0 {
                t.push((i, i - 1, -1.0));
                t.push((i - 1, i, -1.0));
            }
        }
        let a = crate::linalg::CsrMatrix::from_triplets(n, n, &t).unwrap();
        let start: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64 * 0.7).sin()).collect();
        let ritz = ritz_pairs(&a, &start, n).unwrap();
        assert_eq!(ritz.values.len(), n);
        assert!(ritz.values.windows(2).all(|w| w[0] <= w[1]));
        let mut av = vec![0.0; n];
        for (j, (theta, v)) in ritz.values.iter().zip(&ritz.vectors).enumerate() {
            a.apply(v, &mut av);
            let res: f64 = av.iter().zip(v).map(|(x, y)| (x - theta * y).powi(2)).sum::<f64>().sqrt();
            assert!(res < 1e-9, "pair {j}: residual {res}");
            for w in &ritz.vectors[..j] {
                assert!(dot(v, w).abs() < 1e-9);
            }
        }
        // a short run: orthonormal vectors, Ritz values inside the spectrum, the top one closer to λ_max than the
        // next eigenvalue down is (Cauchy interlacing and the extremes converging first)
        let short = ritz_pairs(&a, &start, 12).unwrap();
        let (lo, hi) = (ritz.values[0], ritz.values[n - 1]);
        assert!(short.values.iter().all(|&t| t >= lo - 1e-12 && t <= hi + 1e-12));
        assert!(hi - short.values[11] < hi - ritz.values[n - 2], "{} vs {:?}", short.values[11], &ritz.values[n - 2..]);
        for (j, v) in short.vectors.iter().enumerate() {
            assert!((dot(v, v) - 1.0).abs() < 1e-12);
            for w in &short.vectors[..j] {
                assert!(dot(v, w).abs() < 1e-9);
            }
        }
    }
}
