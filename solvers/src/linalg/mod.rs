//! Sparse matrices and linear operators.
//!
//! [`CsrMatrix`] is the assembled form (compressed sparse rows, parallel SpMV, conversion to faer for direct
//! factorisations); every discretisation also offers a matrix-free [`LinearOperator`]. Krylov methods
//! ([`crate::krylov`]) and preconditioners ([`crate::precond`]) take either. [`lstsq`] solves the small dense
//! least-squares problems of reduced models, with their exact derivative.

mod cholesky;
mod csr;
mod lstsq;

pub use cholesky::{SparseCholesky, SymbolicCholesky};
pub(crate) use csr::push_row;
pub use csr::{CsrMatrix, MAX_COLUMNS};
pub use lstsq::{LstsqError, LstsqWork, lstsq, lstsq_vjp};

/// A square linear map `y = A x`, applied without allocating.
pub trait LinearOperator: Sync {
    /// Number of rows (and columns).
    fn nrows(&self) -> usize;
    /// `y = A x`.
    fn apply(&self, x: &[f64], y: &mut [f64]);
    /// `y = A x` and returns `x · y` (what CG needs of each product). Operators that can fuse the two passes
    /// override it; the result must not depend on the number of threads.
    fn apply_dot(&self, x: &[f64], y: &mut [f64]) -> f64 {
        self.apply(x, y);
        dot(x, y)
    }
    /// `p ← z + β p`, then `y = A p`, returning `p · y`: CG's new direction and its product. Equal, bit for bit,
    /// to the update `p_i = z_i + β p_i` of every entry followed by [`LinearOperator::apply_dot`]; operators that
    /// can do both in one pass override it.
    fn update_apply_dot(&self, p: &mut [f64], z: &[f64], beta: f64, y: &mut [f64]) -> f64 {
        cg_direction(p, z, beta);
        self.apply_dot(p, y)
    }
}

impl<T: LinearOperator + ?Sized> LinearOperator for &T {
    fn nrows(&self) -> usize {
        (**self).nrows()
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        (**self).apply(x, y)
    }
    fn apply_dot(&self, x: &[f64], y: &mut [f64]) -> f64 {
        (**self).apply_dot(x, y)
    }
    fn update_apply_dot(&self, p: &mut [f64], z: &[f64], beta: f64, y: &mut [f64]) -> f64 {
        (**self).update_apply_dot(p, z, beta, y)
    }
}

/// A linear operator from a closure `f(x, y)` writing `y = A x`.
pub struct FnOperator<F> {
    n: usize,
    f: F,
}

impl<F: Fn(&[f64], &mut [f64]) + Sync> FnOperator<F> {
    /// The operator of size `n`.
    pub fn new(n: usize, f: F) -> Self {
        Self { n, f }
    }
}

impl<F: Fn(&[f64], &mut [f64]) + Sync> LinearOperator for FnOperator<F> {
    fn nrows(&self) -> usize {
        self.n
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        (self.f)(x, y)
    }
}

/// The dense matrix of a linear operator (row-major, `n × n`), column by column from `apply` on unit vectors:
/// for small systems and tests.
pub fn dense_matrix(op: &dyn LinearOperator) -> Vec<f64> {
    let n = op.nrows();
    let mut a = vec![0.0; n * n];
    let (mut e, mut col) = (vec![0.0; n], vec![0.0; n]);
    for j in 0..n {
        e.fill(0.0);
        e[j] = 1.0;
        op.apply(&e, &mut col);
        for i in 0..n {
            a[i * n + j] = col[i];
        }
    }
    a
}

#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    // four accumulators: better rounding and vectorisation than a single running sum
    let n = a.len().min(b.len());
    let split = n & !3;
    let mut s = [0.0; 4];
    for (ac, bc) in a[..split].chunks_exact(4).zip(b[..split].chunks_exact(4)) {
        for k in 0..4 {
            s[k] += ac[k] * bc[k];
        }
    }
    let mut t = (s[0] + s[1]) + (s[2] + s[3]);
    for i in split..n {
        t += a[i] * b[i];
    }
    t
}

/// Four running sums over the indices ≡ 0, 1, 2, 3 (mod 4) of the leading multiple of 4, then the tail in order:
/// the summation order of [`dot`], for loops that produce their terms as they go.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Dot4 {
    s: [f64; 4],
    tail: Option<f64>,
}

impl Dot4 {
    /// Adds term `i` of `n` (in order of `i`).
    #[inline(always)]
    pub(crate) fn add(&mut self, i: usize, n: usize, term: f64) {
        if i < n & !3 {
            self.s[i & 3] += term;
        } else {
            let t = self.tail.get_or_insert((self.s[0] + self.s[1]) + (self.s[2] + self.s[3]));
            *t += term;
        }
    }

    /// The sum.
    pub(crate) fn sum(&self) -> f64 {
        self.tail.unwrap_or((self.s[0] + self.s[1]) + (self.s[2] + self.s[3]))
    }
}

/// Vector length from which the fused CG passes run in blocks on the rayon pool.
const PAR_BLOCK: usize = 4096;

/// `x += α p`, `r −= α q` in one pass, returning `r · r`: in [`dot`]'s order below `2 · PAR_BLOCK` entries,
/// per block (in parallel) above, the block sums (kept in `blocks`, reused between calls) then in order.
pub(crate) fn cg_update(x: &mut [f64], r: &mut [f64], p: &[f64], q: &[f64], alpha: f64, blocks: &mut Vec<f64>) -> f64 {
    let n = r.len();
    let block = |x: &mut [f64], r: &mut [f64], p: &[f64], q: &[f64]| -> f64 {
        // groups of four (vectorised), one running sum per lane, then the tail in order: dot's order
        let m = r.len();
        let split = m & !3;
        let (x, p, q) = (&mut x[..m], &p[..m], &q[..m]);
        let mut s = [0.0; 4];
        let (xh, xt) = x.split_at_mut(split);
        let (rh, rt) = r.split_at_mut(split);
        for (((xc, rc), pc), qc) in
            xh.chunks_exact_mut(4).zip(rh.chunks_exact_mut(4)).zip(p.chunks_exact(4)).zip(q.chunks_exact(4))
        {
            for k in 0..4 {
                xc[k] += alpha * pc[k];
                let ri = rc[k] - alpha * qc[k];
                rc[k] = ri;
                s[k] += ri * ri;
            }
        }
        let mut t = (s[0] + s[1]) + (s[2] + s[3]);
        for (k, (xi, ri)) in xt.iter_mut().zip(rt.iter_mut()).enumerate() {
            *xi += alpha * p[split + k];
            *ri -= alpha * q[split + k];
            t += *ri * *ri;
        }
        t
    };
    if n < 2 * PAR_BLOCK {
        return block(x, r, p, q);
    }
    use rayon::prelude::*;
    x[..n]
        .par_chunks_mut(PAR_BLOCK)
        .zip(r.par_chunks_mut(PAR_BLOCK))
        .zip(p[..n].par_chunks(PAR_BLOCK).zip(q[..n].par_chunks(PAR_BLOCK)))
        .map(|((x, r), (p, q))| block(x, r, p, q))
        .collect_into_vec(blocks);
    blocks.iter().sum()
}

/// `p = z + β p` (in parallel blocks on long vectors; elementwise, so the same on any thread count).
pub(crate) fn cg_direction(p: &mut [f64], z: &[f64], beta: f64) {
    let n = p.len();
    let block = |p: &mut [f64], z: &[f64]| {
        for (pi, zi) in p.iter_mut().zip(z) {
            *pi = zi + beta * *pi;
        }
    };
    if n < 2 * PAR_BLOCK {
        block(p, z);
    } else {
        use rayon::prelude::*;
        p.par_chunks_mut(PAR_BLOCK).zip(z[..n].par_chunks(PAR_BLOCK)).for_each(|(p, z)| block(p, z));
    }
}

/// `a · b` in parallel blocks on long vectors (the block sums in `blocks`, then in order: the same on any thread
/// count), [`dot`] on short ones.
pub(crate) fn dot_blocked(a: &[f64], b: &[f64], blocks: &mut Vec<f64>) -> f64 {
    let n = a.len();
    if n < 2 * PAR_BLOCK {
        return dot(a, b);
    }
    use rayon::prelude::*;
    a[..n].par_chunks(PAR_BLOCK).zip(b[..n].par_chunks(PAR_BLOCK)).map(|(a, b)| dot(a, b)).collect_into_vec(blocks);
    blocks.iter().sum()
}

#[inline]
pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + seed) * 0.7316).sin() * (1.0 + (i % 7) as f64)).collect()
    }

    #[test]
    fn fused_sums_keep_the_order_of_dot_bit_for_bit() {
        for n in [0, 1, 3, 4, 5, 8, 13, 1000, 1027] {
            let (a, b) = (values(n, 0.3), values(n, 1.9));
            let mut acc = Dot4::default();
            for i in 0..n {
                acc.add(i, n, a[i] * b[i]);
            }
            assert_eq!(acc.sum().to_bits(), dot(&a, &b).to_bits(), "n = {n}");
            // x += α p, r −= α q and r · r in one pass equal the three passes
            let (mut x, mut r, p, q) = (values(n, 2.0), values(n, 3.0), values(n, 4.0), values(n, 5.0));
            let (mut x2, mut r2) = (x.clone(), r.clone());
            let rr = cg_update(&mut x, &mut r, &p, &q, 0.37, &mut vec![]);
            for i in 0..n {
                x2[i] += 0.37 * p[i];
                r2[i] -= 0.37 * q[i];
            }
            assert_eq!((x, r), (x2, r2.clone()), "n = {n}");
            assert_eq!(rr.to_bits(), dot(&r2, &r2).to_bits(), "n = {n}");
        }
    }
}
