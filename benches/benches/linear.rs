//! Linear algebra: copy bandwidth, SpMV, ten CG iterations, IC(0) and SSOR applications, the multigrid setup and
//! a multigrid-preconditioned solve.
//!
//! `cargo bench -p ansatz-benches --bench linear`; the one-shot study with every preconditioner and size is
//! `cargo run --release -p ansatz-benches --example linear_study` (figures in docs/benchmarks.md).

use ansatz_datasets::problems::random_poisson;
use ansatz_solvers::krylov::{Tolerance, cg, pcg};
use ansatz_solvers::precond::{Ic0, Multigrid, Preconditioner, Ssor};
use criterion::{Criterion, criterion_group, criterion_main};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Duration;

fn linear(c: &mut Criterion) {
    let n = 8 << 20;
    let src = vec![1.0f64; n];
    let mut dst = vec![0.0f64; n];
    c.bench_function("stream copy 2 x 64 MB", |b| {
        b.iter(|| dst.par_chunks_mut(1 << 16).zip(src.par_chunks(1 << 16)).for_each(|(d, s)| d.copy_from_slice(s)))
    });
    for (dims, size, name) in [(2, 512, "512^2"), (3, 64, "64^3")] {
        let (p, f) = random_poisson(dims, size, 1).unwrap();
        let a = p.assemble();
        let x = vec![1.0; a.nrows()];
        let mut y = vec![0.0; a.nrows()];
        c.bench_function(&format!("spmv {name}"), |b| b.iter(|| a.matvec(black_box(&x), &mut y)));
        let rhs = p.rhs(&f).unwrap();
        c.bench_function(&format!("cg 10 iterations {name}"), |b| {
            b.iter(|| {
                let mut u = vec![0.0; a.nrows()];
                let _ = cg(&a, &rhs, &mut u, Tolerance::relative(1e-30, 10));
                black_box(u)
            })
        });
        let mut z = vec![0.0; a.nrows()];
        let ic = Ic0::new(&a).unwrap();
        c.bench_function(&format!("ic0 apply {name}"), |b| b.iter(|| ic.apply(black_box(&rhs), &mut z)));
        let ssor = Ssor::new(&a, 1.5).unwrap();
        c.bench_function(&format!("ssor apply {name}"), |b| b.iter(|| ssor.apply(black_box(&rhs), &mut z)));
        c.bench_function(&format!("multigrid setup {name}"), |b| {
            b.iter(|| black_box(Multigrid::new(&a, &p.box_grid(), 2, 64).unwrap()))
        });
        let mg = Multigrid::new(&a, &p.box_grid(), 2, 64).unwrap();
        c.bench_function(&format!("multigrid-pcg to 1e-8 {name}"), |b| {
            b.iter(|| {
                let mut u = vec![0.0; a.nrows()];
                pcg(&a, &mg, &rhs, &mut u, Tolerance::relative(1e-8, 100)).unwrap();
                black_box(u)
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(10);
    targets = linear
}
criterion_main!(benches);
