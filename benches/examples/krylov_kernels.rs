//! Krylov iterations against their memory traffic: CG and IC(0)-PCG on the 512² and 64³ random Poisson systems
//! (`ansatz export-system poisson2d --n 512 --seed 1` / `poisson3d --n 64 --seed 1`), relative residual 1e-8,
//! time per iteration and in all, on as many threads as rayon is given.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p ansatz-benches --example krylov_kernels`

use std::time::Instant;

use ansatz_datasets::problems::random_poisson;
use ansatz_solvers::krylov::{Tolerance, pcg};
use ansatz_solvers::precond::{Ic0, Identity, Preconditioner};

fn main() {
    println!("rayon threads: {}", rayon::current_num_threads());
    println!("| system | method | iterations | solve (ms) | ms per iteration |");
    println!("|---|---|---|---|---|");
    for (dims, size) in [(2, 512), (3, 64)] {
        let (p, f) = random_poisson(dims, size, 1).unwrap();
        let a = p.assemble();
        let b = p.rhs(&f).unwrap();
        let name = if dims == 2 { format!("{size}²") } else { format!("{size}³") };
        for (label, m) in
            [("CG", Box::new(Identity) as Box<dyn Preconditioner>), ("IC(0)-PCG", Box::new(Ic0::new(&a).unwrap()))]
        {
            // best of three solves
            let mut best = f64::INFINITY;
            let mut iterations = 0;
            for _ in 0..3 {
                let mut x = vec![0.0; a.nrows()];
                let t = Instant::now();
                let info = pcg(&a, m.as_ref(), &b, &mut x, Tolerance::relative(1e-8, 20_000)).unwrap();
                best = best.min(t.elapsed().as_secs_f64());
                iterations = info.iterations;
            }
            println!("| {name} | {label} | {iterations} | {:.0} | {:.3} |", best * 1e3, best * 1e3 / iterations as f64);
        }
    }
}
