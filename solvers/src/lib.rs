//! Differentiable PDE solvers for Ansatz.
//!
//! Every discretisation exposes its semi-discrete right-hand side `F(u; ν)` ([`SemiDiscrete`]) and a time step
//! `S(u; ν, dt)` ([`Stepper`]), each with a Jacobian-vector product (`jvp`, tangent in, tangent out) and a
//! vector-Jacobian product (`vjp`, cotangent in, cotangents for the state and for ν out). The discrete adjoints
//! are exact: they are the transposes of the discrete tangent maps, not discretisations of a continuous adjoint.
//!
//! Conventions (shared by the whole workspace):
//! - all arithmetic is f64; fields are batch-first `ndarray` arrays `(batch, x)`, `(batch, y, x)`, and vector
//!   fields add a component axis after the batch axis, `(batch, 2, y, x)` for `(u, v)`;
//! - a scheme works on one sample at a time, as a flat slice in that layout; [`integrate`] runs samples of a
//!   batch in parallel with rayon;
//! - finite-volume grids are cell-centred (`x_i = (i + 1/2) h`), spectral grids are collocation points without
//!   the right endpoint (`x_i = i h`);
//! - plans (FFT plans, ETDRK coefficients) are built when a scheme is constructed; per-sample scratch space is an
//!   explicit `Work` value, so stepping allocates nothing.
//!
//! ```
//! use ansatz_solvers::fv::{Boundary, FvBurgers1d, Limiter, NumericalFlux, Reconstruction};
//! use ansatz_solvers::integrate::TrajectoryLoss;
//! use ansatz_solvers::prelude::*;
//! use ndarray::Array2;
//!
//! // L = ½ Σ u_T² for one sample of 1D Burgers with a wall on the left and an outflow on the right
//! struct FinalEnergy(usize);
//! impl TrajectoryLoss for FinalEnergy {
//!     fn term(&self, _sample: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64 {
//!         if step != self.0 { return 0.0; }
//!         grad.iter_mut().zip(u).for_each(|(g, x)| *g += x);
//!         0.5 * u.iter().map(|x| x * x).sum::<f64>()
//!     }
//! }
//!
//! let rhs = FvBurgers1d::new(
//!     64, 1.0, 0.01,
//!     [Boundary::Dirichlet(1.0), Boundary::Neumann(0.0)],
//!     Reconstruction::Muscl(Limiter::VanLeer),
//!     NumericalFlux::Godunov,
//! )?;
//! let dt = rhs.stable_dt(&[1.0], 0.5);
//! let stepper = ExplicitRk::ssp_rk3(rhs, dt)?;
//! let u0 = Array2::from_shape_fn((1, 64), |(_, i)| 1.0 - (i as f64 + 0.5) / 64.0);
//! let frames = integrate(&stepper, u0.view(), 100, 10)?; // (batch, 11 frames, 64)
//! assert_eq!(frames.shape(), &[1, 11, 64]);
//! let g = gradient(&stepper, u0.view(), 100, &FinalEnergy(100), &Checkpointed::sqrt())?;
//! assert!(g.dnu[0].is_finite() && g.peak_states <= 20);
//! # Ok::<(), ansatz_solvers::ConfigError>(())
//! ```
//!
//! Modules:
//! - [`fv`]: finite-volume Burgers in 1D and 2D (MUSCL, WENO5, Rusanov and exact Godunov fluxes, periodic,
//!   Dirichlet and Neumann boundaries);
//! - [`spectral`]: pseudo-spectral periodic Burgers in 1D and 2D (2/3 dealiasing, ETDRK4, RK4);
//! - [`rk`]: explicit Runge–Kutta steppers over any [`SemiDiscrete`] right-hand side (SSP-RK3, RK4);
//! - [`integrate`]: trajectories, tangents and gradients through many steps, with the adjoint strategy as a value;
//! - [`exact`]: reference solutions (Cole–Hopf for viscous Burgers).

pub mod constrained;
pub mod elasticity;
pub mod exact;
pub mod fv;
pub mod implicit;
pub mod integrate;
pub mod krylov;
pub mod linalg;
pub mod lm;
pub mod poisson;
pub mod precond;
pub mod rk;
pub mod rom;
pub mod scheme;
pub mod sorption;
pub mod spectral;

pub use integrate::{Checkpointed, StoreAll};
pub use scheme::{SemiDiscrete, Stepper};

/// The items most programs need.
pub mod prelude {
    pub use crate::fv::{Boundary, FvBurgers1d, FvBurgers2d, Limiter, NumericalFlux, Reconstruction, WenoWeights};
    pub use crate::integrate::{
        AdjointStrategy, Checkpointed, StoreAll, TrajectoryLoss, advance, gradient, integrate, tangent,
    };
    pub use crate::rk::{ExplicitRk, Tableau};
    pub use crate::scheme::{SemiDiscrete, Stepper};
    pub use crate::spectral::{Etdrk4, SpectralBurgers1d, SpectralBurgers2d, SpectralNavierStokes2d, SpectralRhs};
}

/// Errors raised when a scheme is configured with impossible arguments.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A grid needs at least `min` points along `axis`.
    #[error("grid too small along {axis}: {n} points, at least {min} needed")]
    GridTooSmall { axis: &'static str, n: usize, min: usize },
    /// A positive, finite value was required.
    #[error("{name} must be positive and finite, got {value}")]
    NotPositive { name: &'static str, value: f64 },
    /// A non-negative, finite value was required.
    #[error("{name} must be non-negative and finite, got {value}")]
    Negative { name: &'static str, value: f64 },
    /// A finite value was required.
    #[error("{name} must be finite, got {value}")]
    NotFinite { name: &'static str, value: f64 },
    /// Data violate a solvability condition (e.g. a periodic source with non-zero mean).
    #[error("{what}: {value:.3e} (must be zero)")]
    Incompatible { what: &'static str, value: f64 },
    /// Periodic boundaries must be periodic on both sides of an axis.
    #[error("boundary along {axis}: periodic must be used on both sides or neither")]
    MixedPeriodic { axis: &'static str },
    /// An array had the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape { what: &'static str, expected: Vec<usize>, got: Vec<usize> },
}

pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 { Ok(()) } else { Err(ConfigError::NotPositive { name, value }) }
}

pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 { Ok(()) } else { Err(ConfigError::Negative { name, value }) }
}
