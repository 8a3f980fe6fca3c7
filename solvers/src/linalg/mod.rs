//! Sparse matrices and linear operators.
//!
//! [`CsrMatrix`] is the assembled form (compressed sparse rows, parallel SpMV, conversion to faer for direct
//! factorisations); every discretisation also offers a matrix-free [`LinearOperator`]. Krylov methods
//! ([`crate::krylov`]) and preconditioners ([`crate::precond`]) take either.

mod cholesky;
mod csr;

pub use cholesky::{SparseCholesky, SymbolicCholesky};
pub use csr::CsrMatrix;

/// A square linear map `y = A x`, applied without allocating.
pub trait LinearOperator: Sync {
    /// Number of rows (and columns).
    fn nrows(&self) -> usize;
    /// `y = A x`.
    fn apply(&self, x: &[f64], y: &mut [f64]);
}

impl<T: LinearOperator + ?Sized> LinearOperator for &T {
    fn nrows(&self) -> usize {
        (**self).nrows()
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        (**self).apply(x, y)
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

#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    // four accumulators: better rounding and vectorisation than a single running sum
    let mut s = [0.0; 4];
    let chunks = a.len() / 4;
    for i in 0..chunks {
        for k in 0..4 {
            s[k] += a[4 * i + k] * b[4 * i + k];
        }
    }
    let mut t = (s[0] + s[1]) + (s[2] + s[3]);
    for i in 4 * chunks..a.len() {
        t += a[i] * b[i];
    }
    t
}

#[inline]
pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
