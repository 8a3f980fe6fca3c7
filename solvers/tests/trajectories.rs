//! Gradients through many steps: reverse mode (checkpointed and store-all) against forward mode and finite
//! differences; memory of the checkpointing schedule; recovery of ν from an observed trajectory.

mod common;

use ansatz_solvers::fv::{Boundary, FvBurgers1d, FvBurgers2d, Limiter, NumericalFlux, Reconstruction};
use ansatz_solvers::integrate::{Gradient, TrajectoryLoss};
use ansatz_solvers::prelude::*;
use common::*;
use ndarray::{Array2, ArrayView2};

/// L = Σ_t ½ ‖u_t − target_t‖² over the observation steps.
struct Misfit {
    every: usize,
    target: Vec<Vec<Vec<f64>>>, // [sample][observation][value]
}

impl TrajectoryLoss for Misfit {
    fn term(&self, sample: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64 {
        if step == 0 || step % self.every != 0 {
            return 0.0;
        }
        let t = &self.target[sample][step / self.every - 1];
        let mut l = 0.0;
        for i in 0..u.len() {
            let r = u[i] - t[i];
            l += 0.5 * r * r;
            grad[i] += r;
        }
        l
    }
}

/// Σ_i weights_i u_T,i: the directional derivative of this loss is <weights, du_T>.
struct Linear {
    steps: usize,
    weights: Vec<f64>,
}

impl TrajectoryLoss for Linear {
    fn term(&self, _: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64 {
        if step != self.steps {
            return 0.0;
        }
        for (g, w) in grad.iter_mut().zip(&self.weights) {
            *g += w;
        }
        dot(u, &self.weights)
    }
}

fn reverse_matches_forward<S: Stepper>(name: &str, s: &S, u0: ArrayView2<f64>, steps: usize, rng: &mut Lcg) {
    let n = s.state_len();
    let weights = rng.vec(n);
    let du0 = Array2::from_shape_vec(u0.raw_dim(), rng.vec(u0.len())).unwrap();
    let dnu = 0.3;
    let (_, du_t) = tangent(s, u0, du0.view(), dnu, steps).unwrap();
    let loss = Linear { steps, weights: weights.clone() };
    let grads: Vec<Gradient> = [&Checkpointed::sqrt() as &dyn AdjointStrategy, &StoreAll, &Checkpointed::every(3)]
        .iter()
        .map(|a| gradient(s, u0, steps, &loss, *a).unwrap())
        .collect();
    for b in 0..u0.nrows() {
        let fwd = dot(du_t.row(b).as_slice().unwrap(), &weights);
        for g in &grads {
            let rev = dot(g.du0.row(b).as_slice().unwrap(), du0.row(b).as_slice().unwrap()) + g.dnu[b] * dnu;
            assert!((fwd - rev).abs() <= 1e-10 * fwd.abs().max(1.0), "{name}: forward {fwd} vs reverse {rev}");
        }
    }
    // all strategies give the same numbers up to round-off
    let d = (&grads[0].du0 - &grads[1].du0).mapv(f64::abs).fold(0.0_f64, |a, &b| a.max(b));
    assert!(d < 1e-12, "{name}: checkpointed and store-all differ by {d}");
    assert_eq!(grads[1].forward_steps, steps, "{name}: store-all recomputes nothing");
}

#[test]
fn reverse_equals_forward_for_every_scheme_family() {
    let mut rng = Lcg::new(11);
    let fv = FvBurgers1d::new(
        32,
        2.0,
        0.05,
        [Boundary::Periodic; 2],
        Reconstruction::Muscl(Limiter::VanLeer),
        NumericalFlux::Godunov,
    )
    .unwrap();
    let u0 = Array2::from_shape_fn((3, 32), |(b, i)| (0.2 * (i as f64) + b as f64).sin());
    reverse_matches_forward("fv1d", &ExplicitRk::ssp_rk3(fv, 0.01).unwrap(), u0.view(), 37, &mut rng);
    let sp = Etdrk4::new(SpectralBurgers1d::new(32, 6.0).unwrap(), 0.05, 0.02).unwrap();
    reverse_matches_forward("etdrk4 1d", &sp, u0.view(), 29, &mut rng);
    let fv2 = FvBurgers2d::new(
        8,
        8,
        [1.0, 1.0],
        0.02,
        [Boundary::Periodic; 2],
        [Boundary::Periodic; 2],
        Reconstruction::Weno5(ansatz_solvers::fv::WenoWeights::Z),
        NumericalFlux::Rusanov,
    )
    .unwrap();
    let u2 = Array2::from_shape_fn((2, 128), |(b, i)| 0.5 * ((0.3 * i as f64) + b as f64).cos());
    reverse_matches_forward("fv2d", &ExplicitRk::ssp_rk3(fv2, 0.005).unwrap(), u2.view(), 12, &mut rng);
    let sp2 = Etdrk4::new(SpectralBurgers2d::new(8, 8, [1.0, 1.0]).unwrap(), 0.02, 0.005).unwrap();
    reverse_matches_forward("etdrk4 2d", &sp2, u2.view(), 12, &mut rng);
}

#[test]
fn trajectory_gradient_matches_finite_differences() {
    let make = |nu| {
        let fv = FvBurgers1d::new(
            24,
            1.0,
            nu,
            [Boundary::Dirichlet(0.0), Boundary::Neumann(0.0)],
            Reconstruction::Weno5(ansatz_solvers::fv::WenoWeights::JiangShu),
            NumericalFlux::Rusanov,
        )
        .unwrap();
        ExplicitRk::ssp_rk3(fv, 0.004).unwrap()
    };
    let u0 = Array2::from_shape_fn((1, 24), |(_, i)| (std::f64::consts::PI * (i as f64 + 0.5) / 24.0).sin());
    let mut rng = Lcg::new(5);
    let target = vec![vec![rng.vec(24), rng.vec(24)]];
    let loss = Misfit { every: 20, target };
    let g = gradient(&make(0.02), u0.view(), 40, &loss, &Checkpointed::sqrt()).unwrap();
    let eps = 1e-6;
    let lp = gradient(&make(0.02 + eps), u0.view(), 40, &loss, &StoreAll).unwrap().loss[0];
    let lm = gradient(&make(0.02 - eps), u0.view(), 40, &loss, &StoreAll).unwrap().loss[0];
    let fd = (lp - lm) / (2.0 * eps);
    assert!((fd - g.dnu[0]).abs() <= 1e-6 * fd.abs(), "dL/dν: adjoint {} vs FD {fd}", g.dnu[0]);
    let dir = rng.vec(24);
    let shift = |s: f64| u0.clone() + &Array2::from_shape_vec((1, 24), dir.iter().map(|d| s * d).collect()).unwrap();
    let lp = gradient(&make(0.02), shift(eps).view(), 40, &loss, &StoreAll).unwrap().loss[0];
    let lm = gradient(&make(0.02), shift(-eps).view(), 40, &loss, &StoreAll).unwrap().loss[0];
    let fd = (lp - lm) / (2.0 * eps);
    let ad = dot(g.du0.row(0).as_slice().unwrap(), &dir);
    assert!((fd - ad).abs() <= 1e-6 * fd.abs(), "dL/du0: adjoint {ad} vs FD {fd}");
}

#[test]
fn checkpointing_holds_about_two_sqrt_t_states() {
    // 2D Burgers, 1000 steps: ⌈√1000⌉ = 32 → 32 checkpoints + 31 recomputed states
    let sp = Etdrk4::new(SpectralBurgers2d::new(8, 8, [1.0, 1.0]).unwrap(), 0.01, 1e-3).unwrap();
    let u0 = Array2::from_shape_fn((1, 128), |(_, i)| 0.3 * (0.1 * i as f64).sin());
    let loss = Linear { steps: 1000, weights: vec![1.0; 128] };
    let g = gradient(&sp, u0.view(), 1000, &loss, &Checkpointed::sqrt()).unwrap();
    assert!(g.peak_states <= 64, "held {} states", g.peak_states);
    assert!(g.forward_steps <= 2000, "took {} steps", g.forward_steps);
    let all = gradient(&sp, u0.view(), 1000, &loss, &StoreAll).unwrap();
    assert_eq!(all.peak_states, 1000);
    let d = (&g.du0 - &all.du0).mapv(f64::abs).fold(0.0_f64, |a, &b| a.max(b));
    assert!(d < 1e-12);
}

#[test]
fn recovers_viscosity_from_an_observed_trajectory() {
    // observe 200 steps of 1D Burgers at ν = 0.07, start the fit at ν = 0.02, descend on log ν with a
    // Gauss–Newton-like scaled step and backtracking
    let n = 64;
    let length = 2.0 * std::f64::consts::PI;
    let pde = SpectralBurgers1d::new(n, length).unwrap();
    let dt = 0.01;
    let steps = 200;
    let u0 = Array2::from_shape_fn((2, n), |(b, i)| {
        let x = length * i as f64 / n as f64;
        (x + b as f64).sin() + 0.5 * (2.0 * x).cos()
    });
    let truth = Etdrk4::new(pde.clone(), 0.07, dt).unwrap();
    let traj = integrate(&truth, u0.view(), steps, 20).unwrap();
    let target: Vec<Vec<Vec<f64>>> =
        (0..2).map(|b| (1..traj.shape()[1]).map(|f| traj.slice(ndarray::s![b, f, ..]).to_vec()).collect()).collect();
    let loss = Misfit { every: 20, target };
    let eval = |nu: f64| {
        let g = gradient(&Etdrk4::new(pde.clone(), nu, dt).unwrap(), u0.view(), steps, &loss, &Checkpointed::sqrt())
            .unwrap();
        (g.loss.sum(), g.dnu.sum())
    };
    let mut log_nu = 0.02_f64.ln();
    let mut lr = 0.5;
    let (mut l, mut g) = eval(log_nu.exp());
    for _ in 0..60 {
        // gradient with respect to log ν, normalised step
        let gl = g * log_nu.exp();
        let step = -lr * gl.signum() * (gl.abs() / l.max(1e-300)).min(1.0);
        let trial = log_nu + step;
        let (lt, gt) = eval(trial.exp());
        if lt < l {
            log_nu = trial;
            l = lt;
            g = gt;
            lr = (lr * 1.5).min(1.0);
        } else {
            lr *= 0.5;
        }
        if l < 1e-14 {
            break;
        }
    }
    let nu = log_nu.exp();
    assert!((nu - 0.07).abs() / 0.07 < 0.01, "recovered ν = {nu}, loss {l}");
}
