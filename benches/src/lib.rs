//! Benchmarks of Ansatz: criterion benches in `benches/`, one-shot studies in `examples/`.
//! The measured figures, with the machine and the commands, are in `docs/benchmarks.md`.
//!
//! This library holds the problem set-ups the benches and studies share.

use ansatz_solvers::fv::{Boundary, FvBurgers1d, FvBurgers2d, NumericalFlux, Reconstruction};
use ansatz_solvers::prelude::*;
use ndarray::Array2;
use std::f64::consts::PI;

/// A smooth batch of 1D states `(batch, n)` on `[0, 2π)`.
pub fn states_1d(batch: usize, n: usize) -> Array2<f64> {
    Array2::from_shape_fn((batch, n), |(b, i)| {
        let x = 2.0 * PI * (i as f64 + 0.5) / n as f64;
        (x + 0.1 * b as f64).sin() + 0.3 * (3.0 * x).cos()
    })
}

/// A smooth batch of 2D states `(batch, 2·n·n)` (u then v) on `[0, 2π)²`.
pub fn states_2d(batch: usize, n: usize) -> Array2<f64> {
    let m = n * n;
    Array2::from_shape_fn((batch, 2 * m), |(b, k)| {
        let (c, j, i) = (k / m, (k % m) / n, k % n);
        let (x, y) = (2.0 * PI * (i as f64 + 0.5) / n as f64, 2.0 * PI * (j as f64 + 0.5) / n as f64);
        if c == 0 { (x + 0.1 * b as f64).sin() * y.cos() } else { 0.5 * (y + x).sin() }
    })
}

/// 1D finite-volume SSP-RK3 stepper on `[0, 2π)`, periodic, ν = 0.01, dt = 0.4 h.
pub fn fv_1d(n: usize, recon: Reconstruction) -> ExplicitRk<FvBurgers1d> {
    let rhs = FvBurgers1d::new(n, 2.0 * PI, 0.01, [Boundary::Periodic; 2], recon, NumericalFlux::Rusanov).unwrap();
    let dt = 0.4 * rhs.h();
    ExplicitRk::ssp_rk3(rhs, dt).unwrap()
}

/// 2D finite-volume SSP-RK3 stepper on `[0, 2π)²`, periodic, ν = 0.01, dt = 0.2 h.
pub fn fv_2d(n: usize, recon: Reconstruction) -> ExplicitRk<FvBurgers2d> {
    let rhs = FvBurgers2d::new(
        n,
        n,
        [2.0 * PI; 2],
        0.01,
        [Boundary::Periodic; 2],
        [Boundary::Periodic; 2],
        recon,
        NumericalFlux::Rusanov,
    )
    .unwrap();
    let dt = 0.2 * rhs.h().0;
    ExplicitRk::ssp_rk3(rhs, dt).unwrap()
}

/// 1D spectral ETDRK4 on `[0, 2π)`, ν = 0.01, dt = 1e-3.
pub fn etdrk4_1d(n: usize) -> Etdrk4<SpectralBurgers1d> {
    Etdrk4::new(SpectralBurgers1d::new(n, 2.0 * PI).unwrap(), 0.01, 1e-3).unwrap()
}

/// 2D spectral ETDRK4 on `[0, 2π)²`, ν = 0.01, dt = 1e-3.
pub fn etdrk4_2d(n: usize) -> Etdrk4<SpectralBurgers2d> {
    Etdrk4::new(SpectralBurgers2d::new(n, n, [2.0 * PI; 2]).unwrap(), 0.01, 1e-3).unwrap()
}
