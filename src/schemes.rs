//! Names of schemes, limiters and fluxes on the command line, mapped to the solver types.

use ansatz_solvers::fv::{Limiter, NumericalFlux, Reconstruction, WenoWeights};
use clap::ValueEnum;

/// Spatial discretisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scheme {
    /// Finite volume, MUSCL reconstruction, SSP-RK3.
    FvMuscl,
    /// Finite volume, WENO5 reconstruction, SSP-RK3.
    FvWeno5,
    /// Pseudo-spectral (periodic only), 2/3 dealiasing, ETDRK4.
    Spectral,
}

/// MUSCL slope limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LimiterArg {
    Minmod,
    VanLeer,
    Mc,
}

/// WENO5 nonlinear weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WenoArg {
    /// Jiang–Shu.
    Js,
    /// WENO-Z (keeps fifth order at critical points).
    Z,
}

/// Numerical flux of the finite-volume schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FluxArg {
    Rusanov,
    Godunov,
}

impl Scheme {
    /// The reconstruction of a finite-volume scheme (`None` for spectral).
    pub fn reconstruction(self, limiter: LimiterArg, weno: WenoArg) -> Option<Reconstruction> {
        match self {
            Scheme::FvMuscl => Some(Reconstruction::Muscl(match limiter {
                LimiterArg::Minmod => Limiter::Minmod,
                LimiterArg::VanLeer => Limiter::VanLeer,
                LimiterArg::Mc => Limiter::Mc,
            })),
            Scheme::FvWeno5 => Some(Reconstruction::Weno5(match weno {
                WenoArg::Js => WenoWeights::JiangShu,
                WenoArg::Z => WenoWeights::Z,
            })),
            Scheme::Spectral => None,
        }
    }

    /// Name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::FvMuscl => "fv-muscl",
            Scheme::FvWeno5 => "fv-weno5",
            Scheme::Spectral => "spectral",
        }
    }
}

impl FluxArg {
    /// The solver type.
    pub fn flux(self) -> NumericalFlux {
        match self {
            FluxArg::Rusanov => NumericalFlux::Rusanov,
            FluxArg::Godunov => NumericalFlux::Godunov,
        }
    }
}
