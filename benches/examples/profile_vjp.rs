//! Runs many vector-Jacobian products of one scheme, for profiling (`perf record`).
//! `cargo run --release -p ansatz-benches --example profile_vjp -- weno|muscl|etdrk4 [iterations]`

use ansatz_benches::*;
use ansatz_solvers::fv::{Limiter, Reconstruction, WenoWeights};
use ansatz_solvers::prelude::*;

fn run<S: Stepper>(s: &S, iters: usize) {
    let u = states_1d(1, 1024);
    let u = u.as_slice().unwrap();
    let mut w = s.work();
    let mut g = u.to_vec();
    let mut acc = 0.0;
    for _ in 0..iters {
        acc += s.step_vjp(u, &mut g, &mut w);
        g.copy_from_slice(u);
    }
    println!("{acc}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iters = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    match args.get(1).map(String::as_str) {
        Some("muscl") => run(&fv_1d(1024, Reconstruction::Muscl(Limiter::VanLeer)), iters),
        Some("etdrk4") => run(&etdrk4_1d(1024), iters),
        _ => run(&fv_1d(1024, Reconstruction::Weno5(WenoWeights::JiangShu)), iters),
    }
}
