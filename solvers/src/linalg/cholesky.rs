//! Sparse Cholesky through faer: the symbolic analysis once per sparsity pattern, the numeric factorisation per
//! matrix.

use faer::Side;
use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::{Llt, SymbolicLlt};

use super::CsrMatrix;
use crate::ConfigError;

/// The symbolic analysis (fill-reducing ordering and elimination tree) of a symmetric sparsity pattern.
#[derive(Clone, Debug)]
pub struct SymbolicCholesky {
    inner: SymbolicLlt<usize>,
    n: usize,
    nnz: usize,
}

/// A numeric sparse Cholesky factorisation `A = L Lᵀ` of a symmetric positive definite matrix.
#[derive(Clone, Debug)]
pub struct SparseCholesky {
    llt: Llt<usize, f64>,
    n: usize,
}

impl SymbolicCholesky {
    /// Analyses the pattern of the symmetric matrix `a` (its lower triangle is used).
    pub fn new(a: &CsrMatrix) -> Result<Self, ConfigError> {
        let m = a.to_faer();
        let inner = SymbolicLlt::try_new(m.symbolic(), Side::Lower).map_err(|_| ConfigError::Shape {
            what: "symbolic Cholesky (out of memory)",
            expected: vec![],
            got: vec![a.nrows()],
        })?;
        Ok(Self { inner, n: a.nrows(), nnz: a.nnz() })
    }
}

impl SparseCholesky {
    /// Factorises `a`, which must have the pattern `symbolic` was built from; fails if `a` is not positive
    /// definite.
    pub fn new(symbolic: &SymbolicCholesky, a: &CsrMatrix) -> Result<Self, ConfigError> {
        if a.nrows() != symbolic.n || a.nnz() != symbolic.nnz {
            return Err(ConfigError::Shape {
                what: "matrix for this symbolic Cholesky",
                expected: vec![symbolic.n, symbolic.nnz],
                got: vec![a.nrows(), a.nnz()],
            });
        }
        let m = a.to_faer();
        let llt = Llt::try_new_with_symbolic(symbolic.inner.clone(), m.as_ref(), Side::Lower).map_err(|_| {
            ConfigError::NotPositive { name: "Cholesky pivot (matrix not positive definite)", value: 0.0 }
        })?;
        Ok(Self { llt, n: a.nrows() })
    }

    /// Solves `A x = b` in place (`x` holds b on entry).
    pub fn solve_in_place(&self, x: &mut [f64]) {
        let mat = faer::MatMut::from_column_major_slice_mut(x, self.n, 1);
        self.llt.solve_in_place(mat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_refactor_and_solve() {
        let n = 30;
        let tri = |shift: f64| {
            let mut t = vec![];
            for i in 0..n {
                t.push((i, i, 2.0 + shift));
                if i > 0 {
                    t.push((i, i - 1, -1.0));
                    t.push((i - 1, i, -1.0));
                }
            }
            CsrMatrix::from_triplets(n, n, &t).unwrap()
        };
        let sym = SymbolicCholesky::new(&tri(0.0)).unwrap();
        for shift in [0.0, 0.5] {
            let a = tri(shift);
            let ch = SparseCholesky::new(&sym, &a).unwrap();
            let b: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 - 1.0).collect();
            let mut x = b.clone();
            ch.solve_in_place(&mut x);
            let mut r = vec![0.0; n];
            a.matvec(&x, &mut r);
            let err = r.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(err < 1e-12, "shift {shift}: residual {err}");
        }
        assert!(SparseCholesky::new(&sym, &tri(-3.0)).is_err());
    }
}
