//! Linear-solver study: memory bandwidth (stream copy), SpMV throughput, PCG iterations and times per
//! preconditioner, sparse Cholesky factor and solve times.
//!
//! `cargo run --release -p ansatz-benches --example linear_study`

use std::time::Instant;

use ansatz_datasets::problems::random_poisson;
use ansatz_solvers::krylov::{Tolerance, pcg};
use ansatz_solvers::linalg::{CsrMatrix, SparseCholesky, SymbolicCholesky};
use ansatz_solvers::precond::{Ic0, Identity, Jacobi, Multigrid, Preconditioner, Ssor};

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn spmv_bytes(a: &CsrMatrix) -> f64 {
    // values (8 B) and 32-bit column indices (4 B) once, x gathered (≥ once), y written, row pointers
    (a.nnz() * (8 + 4) + a.nrows() * (8 + 8 + 8)) as f64
}

fn main() {
    // stream copy, 2 × 128 MB, both cores (as SpMV runs)
    let n = 16 << 20;
    let src = vec![1.0f64; n];
    let mut dst = vec![0.0f64; n];
    use rayon::prelude::*;
    let t = best_of(10, || {
        dst.par_chunks_mut(1 << 16).zip(src.par_chunks(1 << 16)).for_each(|(d, s)| d.copy_from_slice(s))
    });
    let stream = 2.0 * 8.0 * n as f64 / t / 1e9;
    println!("stream copy (2 threads): {stream:.1} GB/s");

    for (dims, size) in [(2, 512), (3, 64)] {
        let (p, _) = random_poisson(dims, size, 1).unwrap();
        let a = p.assemble();
        let x = vec![1.0; a.nrows()];
        let mut y = vec![0.0; a.nrows()];
        let t = best_of(20, || a.matvec(&x, &mut y));
        let gbs = spmv_bytes(&a) / t / 1e9;
        println!(
            "SpMV {}: n = {}, nnz = {}: {:.3} ms, {gbs:.1} GB/s ({:.0}% of stream copy)",
            if dims == 2 { format!("{size}²") } else { format!("{size}³") },
            a.nrows(),
            a.nnz(),
            t * 1e3,
            100.0 * gbs / stream
        );
    }

    println!("\nPCG to relative residual 1e-8 (k log-normal, Dirichlet), iterations and time (setup + solve):");
    println!("| grid | none | Jacobi | SSOR(1.5) | IC(0) | multigrid |");
    println!("|---|---|---|---|---|---|");
    for (dims, size) in [(2, 128), (2, 256), (2, 512), (3, 32), (3, 64)] {
        let (p, f) = random_poisson(dims, size, 1).unwrap();
        let a = p.assemble();
        let b = p.rhs(&f).unwrap();
        let mut row = format!("| {} |", if dims == 2 { format!("{size}²") } else { format!("{size}³") });
        for kind in 0..5 {
            let t0 = Instant::now();
            let m: Box<dyn Preconditioner> = match kind {
                0 => Box::new(Identity),
                1 => Box::new(Jacobi::new(&a).unwrap()),
                2 => Box::new(Ssor::new(&a, 1.5).unwrap()),
                3 => Box::new(Ic0::new(&a).unwrap()),
                _ => Box::new(Multigrid::new(&a, &p.box_grid(), 2, 64).unwrap()),
            };
            let setup = t0.elapsed().as_secs_f64();
            let mut x = vec![0.0; a.nrows()];
            let t1 = Instant::now();
            let info = pcg(&a, m.as_ref(), &b, &mut x, Tolerance::relative(1e-8, 20_000)).unwrap();
            let solve = t1.elapsed().as_secs_f64();
            row += &format!(" {} it, {:.0} + {:.0} ms |", info.iterations, setup * 1e3, solve * 1e3);
        }
        println!("{row}");
    }

    let (p, f) = random_poisson(2, 512, 1).unwrap();
    let a = p.assemble();
    let b = p.rhs(&f).unwrap();
    let t = Instant::now();
    let sym = SymbolicCholesky::new(&a).unwrap();
    let ts = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ch = SparseCholesky::new(&sym, &a).unwrap();
    let tn = t.elapsed().as_secs_f64();
    let mut x = b.clone();
    let t = Instant::now();
    ch.solve_in_place(&mut x);
    let tsol = t.elapsed().as_secs_f64();
    let mut r = vec![0.0; b.len()];
    a.matvec(&x, &mut r);
    let res = r.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt()
        / b.iter().map(|v| v * v).sum::<f64>().sqrt();
    println!(
        "\nsparse Cholesky 512² (n = {}): symbolic {:.0} ms, numeric {:.0} ms, solve {:.0} ms, relative residual {res:.1e}",
        a.nrows(),
        ts * 1e3,
        tn * 1e3,
        tsol * 1e3
    );
    // time per CG iteration (no preconditioner) for comparison with scipy on the same matrix
    let mut x = vec![0.0; a.nrows()];
    let t = Instant::now();
    let info = pcg(&a, &Identity, &b, &mut x, Tolerance::relative(1e-30, 200)).err().and_then(|e| e.info().cloned());
    let it = info.map_or(200, |i| i.iterations);
    println!("CG on 512²: {:.3} ms per iteration ({it} iterations)", t.elapsed().as_secs_f64() * 1e3 / it as f64);
}
