//! Discrete tangents and adjoints of every scheme: dot-product tests `|<w, J v> − <Jᵀ w, v>| ≤ 1e-10 ‖w‖ ‖J v‖`
//! and central finite differences (relative 1e-6), for right-hand sides and steps, with respect to the state
//! and ν, in f64.

mod common;

use ansatz_solvers::fv::{Boundary, FvBurgers1d, FvBurgers2d, Limiter, NumericalFlux, Reconstruction, WenoWeights};
use ansatz_solvers::prelude::*;
use ansatz_solvers::spectral::kolmogorov_forcing;
use common::*;

const RECONS: [Reconstruction; 5] = [
    Reconstruction::Muscl(Limiter::Minmod),
    Reconstruction::Muscl(Limiter::VanLeer),
    Reconstruction::Muscl(Limiter::Mc),
    Reconstruction::Weno5(WenoWeights::JiangShu),
    Reconstruction::Weno5(WenoWeights::Z),
];
const FLUXES: [NumericalFlux; 2] = [NumericalFlux::Rusanov, NumericalFlux::Godunov];

fn bcs() -> Vec<(&'static str, [Boundary; 2])> {
    vec![
        ("periodic", [Boundary::Periodic, Boundary::Periodic]),
        ("dirichlet", [Boundary::Dirichlet(0.3), Boundary::Dirichlet(-0.2)]),
        ("neumann", [Boundary::Neumann(0.1), Boundary::Neumann(0.0)]),
        ("mixed", [Boundary::Dirichlet(1.0), Boundary::Neumann(0.0)]),
    ]
}

#[test]
fn fv_1d_rhs_and_step() {
    let mut rng = Lcg::new(1);
    for recon in RECONS {
        for flux in FLUXES {
            for (bname, bc) in bcs() {
                let name = format!("fv1d {recon:?} {flux:?} {bname}");
                let make = |nu| FvBurgers1d::new(24, 2.0, nu, bc, recon, flux).unwrap();
                let mut u = smooth_state(24, 1, &mut rng);
                u[5] -= 1.5; // a sign change so both upwind directions are exercised
                check_rhs(&name, make, 0.05, &u, &mut rng);
                check_step(&name, |nu| ExplicitRk::ssp_rk3(make(nu), 0.01).unwrap(), 0.05, &u, &mut rng);
            }
        }
    }
}

#[test]
fn fv_2d_rhs_and_step() {
    let mut rng = Lcg::new(2);
    let bcs2 = [
        ("periodic", [Boundary::Periodic; 2], [Boundary::Periodic; 2]),
        (
            "walls",
            [Boundary::Dirichlet(0.0), Boundary::Neumann(0.2)],
            [Boundary::Neumann(0.0), Boundary::Dirichlet(0.5)],
        ),
    ];
    for recon in RECONS {
        for flux in FLUXES {
            for (bname, bx, by) in bcs2 {
                let name = format!("fv2d {recon:?} {flux:?} {bname}");
                let make = |nu| FvBurgers2d::new(9, 7, [1.0, 0.8], nu, bx, by, recon, flux).unwrap();
                let mut u = smooth_state(2 * 63, 14, &mut rng);
                u[10] -= 1.6;
                u[70] -= 1.6;
                check_rhs(&name, make, 0.03, &u, &mut rng);
                check_step(&name, |nu| ExplicitRk::ssp_rk3(make(nu), 0.005).unwrap(), 0.03, &u, &mut rng);
            }
        }
    }
}

#[test]
fn spectral_1d_rhs_rk4_and_etdrk4() {
    let mut rng = Lcg::new(3);
    for n in [16, 15] {
        let pde = SpectralBurgers1d::new(n, 2.0 * std::f64::consts::PI).unwrap();
        let u = smooth_state(n, 1, &mut rng);
        let name = format!("spectral1d n={n}");
        check_rhs(&name, |nu| SpectralRhs::new(pde.clone(), nu).unwrap(), 0.1, &u, &mut rng);
        check_step(
            &name,
            |nu| ExplicitRk::rk4(SpectralRhs::new(pde.clone(), nu).unwrap(), 0.01).unwrap(),
            0.1,
            &u,
            &mut rng,
        );
        check_step(&name, |nu| Etdrk4::new(pde.clone(), nu, 0.05).unwrap(), 0.1, &u, &mut rng);
    }
}

#[test]
fn spectral_2d_rhs_rk4_and_etdrk4() {
    let mut rng = Lcg::new(4);
    for (nx, ny) in [(8, 8), (10, 6), (9, 7)] {
        let pde = SpectralBurgers2d::new(nx, ny, [1.0, 1.3]).unwrap();
        let u = smooth_state(2 * nx * ny, 2 * ny, &mut rng);
        let name = format!("spectral2d {nx}x{ny}");
        check_rhs(&name, |nu| SpectralRhs::new(pde.clone(), nu).unwrap(), 0.02, &u, &mut rng);
        check_step(
            &name,
            |nu| ExplicitRk::rk4(SpectralRhs::new(pde.clone(), nu).unwrap(), 0.002).unwrap(),
            0.02,
            &u,
            &mut rng,
        );
        check_step(&name, |nu| Etdrk4::new(pde.clone(), nu, 0.01).unwrap(), 0.02, &u, &mut rng);
    }
}

#[test]
fn spectral_navier_stokes_2d_rhs_rk4_and_etdrk4() {
    let mut rng = Lcg::new(6);
    for (nx, ny) in [(8, 8), (10, 6), (9, 7)] {
        let source = kolmogorov_forcing(nx, ny, 1.3, 0.7, 1);
        let pde = SpectralNavierStokes2d::new(nx, ny, [1.0, 1.3])
            .and_then(|p| p.with_drag(0.3))
            .and_then(|p| p.with_forcing(&source))
            .unwrap();
        let u = smooth_state(nx * ny, ny, &mut rng);
        let name = format!("spectral navier-stokes 2d {nx}x{ny}");
        check_rhs(&name, |nu| SpectralRhs::new(pde.clone(), nu).unwrap(), 0.02, &u, &mut rng);
        check_step(
            &name,
            |nu| ExplicitRk::rk4(SpectralRhs::new(pde.clone(), nu).unwrap(), 0.002).unwrap(),
            0.02,
            &u,
            &mut rng,
        );
        check_step(&name, |nu| Etdrk4::new(pde.clone(), nu, 0.01).unwrap(), 0.02, &u, &mut rng);
    }
}
