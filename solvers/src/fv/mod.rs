//! Finite-volume schemes for viscous Burgers on uniform cell-centred grids.
//!
//! Building blocks: [`Reconstruction`] (MUSCL with [`Limiter`], WENO5 with [`WenoWeights`]), [`NumericalFlux`]
//! (Rusanov, exact Godunov), central viscous fluxes of matching order (two-point for MUSCL, sixth-order for
//! WENO5), and [`Boundary`] conditions imposed by ghost cells. Time stepping is separate: wrap a right-hand side
//! in [`ExplicitRk::ssp_rk3`](crate::rk::ExplicitRk::ssp_rk3) and pick `dt` with [`cfl_time_step`].

mod burgers1d;
mod burgers2d;
mod flux;
pub(crate) mod line;
mod recon;

pub use burgers1d::{FvBurgers1d, FvWork1d};
pub use burgers2d::{FvBurgers2d, FvWork2d};
pub use flux::NumericalFlux;
pub use line::GHOSTS;
pub use recon::{Limiter, Reconstruction, WenoWeights, limit, limit_grad};

use crate::ConfigError;

/// Boundary condition on one side of an axis, imposed through ghost cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// Periodic (both sides of the axis must say so).
    Periodic,
    /// Fixed value at the boundary face (every velocity component takes it); ghosts are odd reflections
    /// `q_ghost = 2g − q_mirror`.
    Dirichlet(f64),
    /// Fixed derivative along the axis (`∂q/∂x` or `∂q/∂y`, in the coordinate direction) at the boundary face;
    /// ghosts are even reflections shifted by the gradient. `Neumann(0.0)` is a zero-gradient outflow.
    Neumann(f64),
}

impl Boundary {
    pub(crate) fn check_pair(lo: Boundary, hi: Boundary, axis: &'static str) -> Result<(), ConfigError> {
        let p = |b: Boundary| matches!(b, Boundary::Periodic);
        if p(lo) != p(hi) {
            return Err(ConfigError::MixedPeriodic { axis });
        }
        for b in [lo, hi] {
            let v = match b {
                Boundary::Periodic => 0.0,
                Boundary::Dirichlet(v) | Boundary::Neumann(v) => v,
            };
            if !v.is_finite() {
                return Err(ConfigError::NotFinite { name: "boundary value", value: v });
            }
        }
        Ok(())
    }
}

/// Spectral radius factor ρ of the discrete second derivative (ρ/h² is its largest eigenvalue magnitude).
pub(crate) fn diffusion_radius(recon: Reconstruction) -> f64 {
    match recon {
        Reconstruction::Muscl(_) => 4.0,
        // the sixth-order face derivative: 2 · Σ|w_j| = 2 · 3.0222…
        Reconstruction::Weno5(_) => 6.0445,
    }
}

/// A stable explicit time step for advection–diffusion on a uniform grid:
/// `dt = cfl / (Σ_d max|a_d| / h_d + ν ρ Σ_d 1 / (2 h_d²))`, where `max_speed[d]` and `h[d]` are the largest
/// advection speed and the cell width along axis d and ρ the spectral-radius factor of the discrete second
/// derivative (4 for the two-point stencil). With `cfl ≤ 1` this is the forward-Euler bound, which SSP-RK3
/// inherits. Returns `f64::INFINITY` for a state at rest without viscosity.
pub fn cfl_time_step(max_speed: &[f64], h: &[f64], nu: f64, rho: f64, cfl: f64) -> f64 {
    let adv: f64 = max_speed.iter().zip(h).map(|(a, h)| a.abs() / h).sum();
    let diff: f64 = h.iter().map(|h| nu * rho / (2.0 * h * h)).sum();
    cfl / (adv + diff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfl_step_is_forward_euler_bound() {
        // pure advection: dt = cfl h / a
        assert!((cfl_time_step(&[2.0], &[0.1], 0.0, 4.0, 0.5) - 0.025).abs() < 1e-15);
        // pure diffusion: dt = cfl h² / (2ν)
        assert!((cfl_time_step(&[0.0], &[0.1], 0.1, 4.0, 1.0) - 0.05).abs() < 1e-15);
        assert!(Boundary::check_pair(Boundary::Periodic, Boundary::Dirichlet(0.0), "x").is_err());
    }
}
