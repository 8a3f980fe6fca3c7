//! Learning test on 1D Burgers: the output interval is long enough that persistence (predicting no change)
//! scores relative L2 ≥ 0.3, and the FNO and DyMixOp must each reach < 0.05 on held-out samples within a
//! CI-sized budget.

use ansatz_operators::dymixop::{DyMixOp, DyMixOpConfig};
use ansatz_operators::fno::{Fno, FnoConfig};
use ansatz_operators::init::Init;
use ansatz_solvers::prelude::*;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::Array2;
use std::f64::consts::PI;

const N: usize = 64;

/// Pairs (u(0), u(Δt)) of 1D Burgers (ν = 0.05, Δt = 0.5) from random smooth initial conditions.
fn pairs(seed: u64, count: usize) -> (Vec<f32>, Vec<f32>) {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let coef: Vec<Vec<(f64, f64)>> = (0..count).map(|_| (1..=3).map(|_| (next(), next())).collect()).collect();
    let u0 = Array2::from_shape_fn((count, N), |(b, i)| {
        let x = 2.0 * PI * i as f64 / N as f64;
        coef[b]
            .iter()
            .enumerate()
            .map(|(k, (a, c))| (a * ((k + 1) as f64 * x).cos() + c * ((k + 1) as f64 * x).sin()) / (k + 1) as f64)
            .sum()
    });
    let s = Etdrk4::new(SpectralBurgers1d::new(N, 2.0 * PI).unwrap(), 0.05, 0.005).unwrap();
    let traj = integrate(&s, u0.view(), 100, 100).unwrap();
    let x = traj.slice(ndarray::s![.., 0, ..]).iter().map(|v| *v as f32).collect();
    let y = traj.slice(ndarray::s![.., 1, ..]).iter().map(|v| *v as f32).collect();
    (x, y)
}

fn rel_l2(p: &[f32], y: &[f32]) -> f64 {
    let num: f64 = p.iter().zip(y).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
    let den: f64 = y.iter().map(|b| (*b as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// Trains `forward`'s network for 1500 Adam steps (batch 32, cosine decay from `peak`) and returns the held-out
/// relative L2 and the persistence score.
fn fit<M: burn::module::Module>(mut model: M, forward: impl Fn(&M, Tensor<4>) -> Tensor<4>, peak: f64) -> (f64, f64) {
    let device = Device::flex().autodiff();
    let (xtr, ytr) = pairs(1, 256);
    let (xte, yte) = pairs(2, 64);
    let persistence = rel_l2(&xte, &yte);
    let to = |v: &[f32], b: usize| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [b, 1, 1, N]), &device);
    let mut optim = AdamConfig::new().init();
    let (batch, steps) = (32, 1500);
    for step in 0..steps {
        let k = (step * batch) % 256;
        let (xb, yb) = (&xtr[k * N..(k + batch) * N], &ytr[k * N..(k + batch) * N]);
        let loss = (forward(&model, to(xb, batch)) - to(yb, batch)).powf_scalar(2.0).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = 0.5 * peak * (1.0 + (PI * step as f64 / steps as f64).cos());
        model = optim.step(lr, model, grads);
    }
    let pred = forward(&model, to(&xte, 64)).into_data();
    (rel_l2(pred.as_slice::<f32>().unwrap(), &yte), persistence)
}

#[test]
fn fno_learns_a_burgers_step_that_persistence_cannot() {
    let device = Device::flex().autodiff();
    let model: Fno = FnoConfig::new(1, 1, 24, 12, 1, 4, N, 1).with_projection(64).init(&mut Init::new(1, &device));
    let (err, persistence) = fit(model, |m, x| m.forward(x), 3e-3);
    eprintln!("held-out relative L2: FNO {err:.4}, persistence {persistence:.4}");
    assert!(persistence >= 0.3, "persistence scores {persistence}: the task is too easy");
    assert!(err < 0.05, "FNO relative L2 {err}");
}

#[test]
fn dymixop_learns_a_burgers_step_that_persistence_cannot() {
    let device = Device::flex().autodiff();
    let model: DyMixOp = DyMixOpConfig::new(1, 1, 1, 16, 3, 12, 1, N, 1).init(&mut Init::new(1, &device));
    let (err, persistence) = fit(model, |m, x| m.forward(x), 3e-3);
    eprintln!("held-out relative L2: DyMixOp {err:.4}, persistence {persistence:.4}");
    assert!(persistence >= 0.3, "persistence scores {persistence}: the task is too easy");
    assert!(err < 0.05, "DyMixOp relative L2 {err}");
}
