//! Preconditioners: an expensive setup (the constructor) and a cheap, allocation-free `apply` (z ≈ A⁻¹ r).
//!
//! [`Identity`], [`Jacobi`], incomplete Cholesky [`Ic0`], [`Ssor`], geometric [`Multigrid`], and [`Shell`] for a closure (a learned or
//! otherwise nonlinear map says so with `linear = false`; only flexible Krylov methods accept it).

mod ichol;
mod multigrid;
mod ssor;
mod triangular;

pub use ichol::Ic0;
pub use multigrid::{BoxGrid, Multigrid};
pub use ssor::Ssor;

use crate::linalg::CsrMatrix;

/// `z ≈ A⁻¹ r`.
pub trait Preconditioner: Sync {
    /// Applies the preconditioner; must not allocate.
    fn apply(&self, r: &[f64], z: &mut [f64]);
    /// `z = M r`, and `Some(r · z)` when the preconditioner sums it in the same pass (what PCG needs of each
    /// application; it takes the dot product itself on `None`). The sum must not depend on the number of
    /// threads.
    fn apply_dot(&self, r: &[f64], z: &mut [f64]) -> Option<f64> {
        self.apply(r, z);
        None
    }
    /// Whether `apply` is a fixed linear map (required by PCG; flexible methods accept any).
    fn is_linear(&self) -> bool {
        true
    }
    /// Whether `apply` is the identity (`z = r`), so that Krylov methods may skip it and its copy.
    fn is_identity(&self) -> bool {
        false
    }
}

/// No preconditioning.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Preconditioner for Identity {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        z.copy_from_slice(r);
    }
    fn is_identity(&self) -> bool {
        true
    }
}

/// Diagonal scaling `z = r / diag(A)`.
#[derive(Clone, Debug)]
pub struct Jacobi {
    inv_diag: Vec<f64>,
}

impl Jacobi {
    /// From the diagonal of `a`; fails if an entry is not positive.
    pub fn new(a: &CsrMatrix) -> Result<Self, crate::ConfigError> {
        Self::from_diagonal(&a.diagonal())
    }

    /// From a diagonal.
    pub fn from_diagonal(d: &[f64]) -> Result<Self, crate::ConfigError> {
        let inv_diag = d
            .iter()
            .map(|&v| {
                if v > 0.0 && v.is_finite() {
                    Ok(1.0 / v)
                } else {
                    Err(crate::ConfigError::NotPositive { name: "diagonal entry", value: v })
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { inv_diag })
    }
}

impl Preconditioner for Jacobi {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        for ((zi, ri), di) in z.iter_mut().zip(r).zip(&self.inv_diag) {
            *zi = ri * di;
        }
    }
}

/// A preconditioner from a closure `f(r, z)`; `linear` says whether it is a fixed linear map.
pub struct Shell<F> {
    f: F,
    linear: bool,
}

impl<F: Fn(&[f64], &mut [f64]) + Sync> Shell<F> {
    /// Wraps `f`; `linear = false` for learned or iterative (nonlinear) preconditioners.
    pub fn new(f: F, linear: bool) -> Self {
        Self { f, linear }
    }
}

impl<F: Fn(&[f64], &mut [f64]) + Sync> Preconditioner for Shell<F> {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        (self.f)(r, z)
    }
    fn is_linear(&self) -> bool {
        self.linear
    }
}
