//! Steps per second of the Burgers schemes (1D N = 1024 × batch 64, 2D 256² × batch 4) and the cost of one
//! vector-Jacobian product relative to one step.
//!
//! `cargo bench -p ansatz-benches --bench burgers`; each measured iteration advances the whole batch by one
//! step (samples in parallel), so steps/s = 1 / time. `etdrk4 ×10` advances ten steps per iteration without
//! leaving Fourier space between them (divide by 10).

use ansatz_benches::*;
use ansatz_solvers::fv::{Limiter, Reconstruction, WenoWeights};
use ansatz_solvers::integrate::works;
use ansatz_solvers::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array2, Axis};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Duration;

const MUSCL: Reconstruction = Reconstruction::Muscl(Limiter::VanLeer);
const WENO: Reconstruction = Reconstruction::Weno5(WenoWeights::JiangShu);

fn bench_stepper<S: Stepper>(c: &mut Criterion, name: &str, s: &S, u0: &Array2<f64>) {
    let mut ws = works(s, u0.nrows());
    let mut u = u0.clone();
    c.bench_function(&format!("{name} step"), |b| {
        b.iter(|| {
            advance(s, u.view_mut(), 1, &mut ws).unwrap();
            black_box(&u);
        })
    });
    let mut g = u0.clone();
    c.bench_function(&format!("{name} vjp"), |b| {
        b.iter(|| {
            g.axis_iter_mut(Axis(0)).into_par_iter().zip(u0.axis_iter(Axis(0))).zip(ws.par_iter_mut()).for_each(
                |((mut gr, ur), w)| {
                    s.step_vjp(ur.as_slice().unwrap(), gr.as_slice_mut().unwrap(), w);
                },
            );
            g.assign(u0);
            black_box(&g);
        })
    });
}

fn burgers_1d(c: &mut Criterion) {
    let u0 = states_1d(64, 1024);
    bench_stepper(c, "1d N=1024 x64 fv-muscl", &fv_1d(1024, MUSCL), &u0);
    bench_stepper(c, "1d N=1024 x64 fv-weno5", &fv_1d(1024, WENO), &u0);
    let sp = etdrk4_1d(1024);
    bench_stepper(c, "1d N=1024 x64 etdrk4", &sp, &u0);
    let mut ws = works(&sp, 64);
    let mut u = u0.clone();
    c.bench_function("1d N=1024 x64 etdrk4 x10", |b| {
        b.iter(|| {
            advance(&sp, u.view_mut(), 10, &mut ws).unwrap();
            black_box(&u);
        })
    });
}

fn burgers_2d(c: &mut Criterion) {
    let u0 = states_2d(4, 256);
    bench_stepper(c, "2d 256^2 x4 fv-muscl", &fv_2d(256, MUSCL), &u0);
    bench_stepper(c, "2d 256^2 x4 fv-weno5", &fv_2d(256, WENO), &u0);
    bench_stepper(c, "2d 256^2 x4 etdrk4", &etdrk4_2d(256), &u0);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(20);
    targets = burgers_1d, burgers_2d
}
criterion_main!(benches);
