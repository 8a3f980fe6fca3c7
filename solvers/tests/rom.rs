//! The reduced-order-model benchmark problems: tangents and adjoints (dot products, central differences, with
//! respect to the state and the parameter), and the order of accuracy of each right-hand side against the exact
//! time derivative of a smooth field.

mod common;

use ansatz_solvers::prelude::*;
use ansatz_solvers::rom::{BurgersSource1d, Diffusion2d};
use common::*;

#[test]
fn burgers_source_rhs_and_euler_step_have_exact_adjoints() {
    let mut rng = Lcg::new(11);
    let make = |mu| BurgersSource1d::new(24, 100.0, 0.02, mu).unwrap();
    let mut u = smooth_state(24, 1, &mut rng);
    check_rhs("burgers source, positive", make, 0.02, &u, &mut rng);
    u[7] -= 1.9; // a sign change: both branches of the Godunov flux
    u[15] -= 1.7;
    check_rhs("burgers source, sign change", make, 0.025, &u, &mut rng);
    let step = |mu| ExplicitRk::new(make(mu), Tableau::euler(), 0.07).unwrap();
    check_step("burgers source, Euler", step, 0.02, &u, &mut rng);
}

#[test]
fn diffusion_rhs_and_euler_step_have_exact_adjoints() {
    let mut rng = Lcg::new(12);
    let make = |d| Diffusion2d::new(7, 1.0, d).unwrap();
    let u = smooth_state(49, 7, &mut rng);
    check_rhs("diffusion", make, 2.0, &u, &mut rng);
    check_step("diffusion, Euler", |d| ExplicitRk::new(make(d), Tableau::euler(), 0.1).unwrap(), 2.0, &u, &mut rng);
}

/// The upwind right-hand side against `−u u_x + a e^{μx}` for a smooth positive `u` (away from the held inflow
/// cell): first order.
#[test]
fn burgers_source_rhs_is_first_order() {
    let (a, mu, l) = (0.02, 0.02, 100.0);
    let field = |x: f64| 2.0 + 0.5 * (2.0 * std::f64::consts::PI * x / l).sin();
    let slope = |x: f64| 0.5 * 2.0 * std::f64::consts::PI / l * (2.0 * std::f64::consts::PI * x / l).cos();
    let err = |n: usize| {
        let s = BurgersSource1d::new(n, l, a, mu).unwrap();
        let u: Vec<f64> = s.centres().iter().map(|&x| field(x)).collect();
        let mut f = vec![0.0; n];
        s.rhs(&u, &mut f, &mut ());
        assert_eq!(f[0], 0.0, "the inflow cell is held");
        s.centres()
            .iter()
            .zip(&f)
            .skip(1)
            .map(|(&x, fj)| (fj - (-field(x) * slope(x) + a * (mu * x).exp())).abs())
            .fold(0.0, f64::max)
    };
    let (e1, e2, e3) = (err(64), err(128), err(256));
    let (p1, p2) = ((e1 / e2).log2(), (e2 / e3).log2());
    assert!(p1 > 0.9 && p2 > 0.9, "orders {p1:.2}, {p2:.2} (errors {e1:.2e}, {e2:.2e}, {e3:.2e})");
}

/// The five-point Laplacian against `D Δu` for a field vanishing one spacing outside the grid: second order.
#[test]
fn diffusion_rhs_is_second_order() {
    let (d, l) = (2.0, 41.0);
    let pi = std::f64::consts::PI;
    let err = |n: usize| {
        let h = l / (n + 1) as f64;
        let s = Diffusion2d::new(n, h, d).unwrap();
        let pt = |k: usize| (k as f64 + 1.0) * h;
        let field = |x: f64, y: f64| (pi * x / l).sin() * (2.0 * pi * y / l).sin() * (1.0 + 0.1 * (x / l));
        let lap = |x: f64, y: f64| {
            // Δ of sin(πx/l) sin(2πy/l) (1 + 0.1 x/l)
            let (sx, cx, sy) = ((pi * x / l).sin(), (pi * x / l).cos(), (2.0 * pi * y / l).sin());
            let g = 1.0 + 0.1 * x / l;
            sy * (-(pi / l).powi(2) * sx * g + 2.0 * (pi / l) * cx * 0.1 / l) - (2.0 * pi / l).powi(2) * sx * sy * g
        };
        let u: Vec<f64> = (0..n * n).map(|k| field(pt(k % n), pt(k / n))).collect();
        let mut f = vec![0.0; n * n];
        s.rhs(&u, &mut f, &mut s.work());
        (0..n * n).map(|k| (f[k] - d * lap(pt(k % n), pt(k / n))).abs()).fold(0.0, f64::max)
    };
    let (e1, e2, e3) = (err(20), err(41), err(83));
    let (p1, p2) = ((e1 / e2).log2(), (e2 / e3).log2());
    assert!(p1 > 1.8 && p2 > 1.8, "orders {p1:.2}, {p2:.2} (errors {e1:.2e}, {e2:.2e}, {e3:.2e})");
}

#[test]
fn bad_arguments_are_errors() {
    assert!(BurgersSource1d::new(1, 100.0, 0.02, 0.02).is_err());
    assert!(BurgersSource1d::new(16, -1.0, 0.02, 0.02).is_err());
    assert!(BurgersSource1d::new(16, 100.0, f64::NAN, 0.02).is_err());
    assert!(Diffusion2d::new(0, 1.0, 2.0).is_err());
    assert!(Diffusion2d::new(4, 1.0, -2.0).is_err());
}

/// `RomRhs` passes every variant's tangents and adjoints through (and builds its own scratch from any other).
#[test]
fn the_enum_of_right_hand_sides_keeps_exact_adjoints() {
    use ansatz_solvers::fv::{Boundary, FvBurgers1d, NumericalFlux, Reconstruction, WenoWeights};
    use ansatz_solvers::rom::{RomRhs, RomWork};
    let mut rng = Lcg::new(13);
    let u = smooth_state(16, 1, &mut rng);
    let fv = |nu| {
        let r = Reconstruction::Weno5(WenoWeights::JiangShu);
        RomRhs::Viscous1d(FvBurgers1d::new(16, 1.0, nu, [Boundary::Periodic; 2], r, NumericalFlux::Rusanov).unwrap())
    };
    check_rhs("RomRhs fv", fv, 0.02, &u, &mut rng);
    let spectral = |nu| RomRhs::Spectral1d(SpectralRhs::new(SpectralBurgers1d::new(16, 1.0).unwrap(), nu).unwrap());
    check_rhs("RomRhs spectral", spectral, 0.02, &u, &mut rng);
    let source = |mu| RomRhs::BurgersSource(BurgersSource1d::new(16, 100.0, 0.02, mu).unwrap());
    check_rhs("RomRhs source", source, 0.02, &u, &mut rng);
    // a scratch made for another variant is replaced, not misused
    let (a, b) = (fv(0.02), spectral(0.02));
    let mut w: RomWork = a.work();
    let (mut fa, mut fb) = (vec![0.0; 16], vec![0.0; 16]);
    b.rhs(&u, &mut fa, &mut w);
    b.rhs(&u, &mut fb, &mut b.work());
    assert_eq!(fa, fb);
}
