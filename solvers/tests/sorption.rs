//! Diffusion–sorption: exact tangents and adjoints (state and diffusivity), the exact steady state, second-order
//! convergence of the transient, and argument checks.

mod common;

use ansatz_solvers::prelude::*;
use ansatz_solvers::sorption::{DiffusionSorption1d, SorptionConstants};
use common::*;

fn constants(d: f64) -> SorptionConstants {
    SorptionConstants { diffusivity: d, ..SorptionConstants::pdebench() }
}

#[test]
fn rhs_and_rk4_step_have_exact_adjoints() {
    let mut rng = Lcg::new(21);
    let make = |d| DiffusionSorption1d::new(16, 1.0, 1.0, constants(d)).unwrap();
    // a positive state (the retardation's kink at u = 0 is not differentiable)
    let u: Vec<f64> = (0..16).map(|i| 0.4 + 0.3 * (0.7 * i as f64).sin() + 0.05 * rng.next()).collect();
    check_rhs("diffusion-sorption", make, 0.05, &u, &mut rng);
    let step = |d| ExplicitRk::new(make(d), Tableau::rk4(), 0.01).unwrap();
    check_step("diffusion-sorption, RK4", step, 0.05, &u, &mut rng);
    // at the PDEBench diffusivity too
    check_rhs("diffusion-sorption, D = 5e-4", make, 5e-4, &u, &mut rng);
}

/// `u = u_in (1 − x/(L + D))` satisfies both boundary conditions and `u_xx = 0`: the scheme must hold it to
/// round-off, and march any initial field to it.
#[test]
fn the_linear_steady_state_is_exact_and_reached() {
    let (l, d, inflow) = (2.0, 0.05, 1.0);
    let s = DiffusionSorption1d::new(20, l, inflow, constants(d)).unwrap();
    let steady: Vec<f64> = s.centres().iter().map(|x| inflow * (1.0 - x / (l + d))).collect();
    let mut f = vec![0.0; 20];
    s.rhs(&steady, &mut f, &mut ());
    let worst = f.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(worst < 1e-13, "the steady state is not a fixed point: max |du/dt| = {worst:.2e}");

    let dt = 0.5 * s.rk4_stable_dt();
    let stepper = ExplicitRk::new(s, Tableau::rk4(), dt).unwrap();
    let mut u = vec![0.1; 20];
    let mut w = stepper.work();
    stepper.advance(&mut u, (4000.0 / dt) as usize, &mut w);
    let err = u.iter().zip(&steady).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-6, "not at the steady state after t = 4000: max error {err:.2e}");
}

/// The PDEBench problem (constants, u₀ = 0.1, u_in = 1) at t = 100 on 32, 64, 128 and 256 cells: the difference
/// between successive grids (the fine solution averaged onto the coarse cells) falls at second order.
#[test]
fn the_transient_converges_at_second_order() {
    let solve = |n: usize| {
        let s = DiffusionSorption1d::new(n, 1.0, 1.0, SorptionConstants::pdebench()).unwrap();
        let steps = (100.0 / (0.5 * s.rk4_stable_dt())).ceil() as usize;
        let stepper = ExplicitRk::new(s, Tableau::rk4(), 100.0 / steps as f64).unwrap();
        let mut u = vec![0.1; n];
        let mut w = stepper.work();
        stepper.advance(&mut u, steps, &mut w);
        u
    };
    let sols: Vec<Vec<f64>> = [32, 64, 128, 256].iter().map(|&n| solve(n)).collect();
    let diff = |c: &[f64], f: &[f64]| {
        let e: f64 = c.iter().enumerate().map(|(i, v)| (v - 0.5 * (f[2 * i] + f[2 * i + 1])).powi(2)).sum();
        (e / c.len() as f64).sqrt()
    };
    let e: Vec<f64> = (0..3).map(|k| diff(&sols[k], &sols[k + 1])).collect();
    let (p1, p2) = ((e[0] / e[1]).log2(), (e[1] / e[2]).log2());
    assert!(
        p1 > 1.8 && p2 > 1.8,
        "observed orders {p1:.2}, {p2:.2} (differences {:.2e}, {:.2e}, {:.2e})",
        e[0],
        e[1],
        e[2]
    );
}

#[test]
fn bad_arguments_are_refused() {
    assert!(DiffusionSorption1d::new(1, 1.0, 1.0, SorptionConstants::pdebench()).is_err());
    assert!(DiffusionSorption1d::new(8, 0.0, 1.0, SorptionConstants::pdebench()).is_err());
    assert!(DiffusionSorption1d::new(8, 1.0, f64::NAN, SorptionConstants::pdebench()).is_err());
    let bad = SorptionConstants { porosity: 1.0, ..SorptionConstants::pdebench() };
    assert!(DiffusionSorption1d::new(8, 1.0, 1.0, bad).is_err());
    let bad = SorptionConstants { diffusivity: -1.0, ..SorptionConstants::pdebench() };
    assert!(DiffusionSorption1d::new(8, 1.0, 1.0, bad).is_err());
}
