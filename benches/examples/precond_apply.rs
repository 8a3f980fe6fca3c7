//! The cost of one application of an exported preconditioner from Rust (`NetworkPreconditioner::apply`), with the
//! statistic of the C side (`capi/benches/apply.c`): on an NX × NY (× NZ) grid, every cell an unknown, r a smooth
//! field, BATCHES batches of CALLS applications after a warm-up; the median and the minimum time per application.
//! `make bench-capi` runs both and prints the ABI's overhead.
//!
//! `cargo run --release -p ansatz-benches --example precond_apply -- MODEL.apc NX NY [NZ] [BATCHES] [CALLS]`

use std::time::Instant;

use ansatz_operators::dcdm::NetworkPreconditioner;
use ansatz_operators::precond_file::PrecondFile;
use ansatz_solvers::precond::Preconditioner;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: precond_apply MODEL.apc NX NY [NZ] [BATCHES] [CALLS]".into());
    }
    let num = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |s| s.parse().map_err(|_| format!("'{s}' is not a number")))
    };
    let (nx, ny, nz) = (num(2, 0)?, num(3, 0)?, num(4, 1)?);
    let (batches, calls) = (num(5, 15)?.max(1), num(6, 20)?.max(1));
    let file = PrecondFile::load(std::path::Path::new(&args[1])).map_err(|e| e.to_string())?;
    let device = burn::prelude::Device::flex();
    let n = nx * ny * nz;
    let m = NetworkPreconditioner::new(
        file.network(&device)?,
        [nz, ny, nx],
        (0..n).collect(),
        device,
        burn::tensor::DType::F32,
    )?;
    let r: Vec<f64> = (0..n).map(|i| (0.37 * i as f64).sin() + 0.2).collect();
    let mut z = vec![0.0; n];
    for _ in 0..5 {
        m.apply(&r, &mut z);
    }
    let mut per: Vec<f64> = (0..batches)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..calls {
                m.apply(&r, &mut z);
            }
            t0.elapsed().as_secs_f64() / calls as f64 * 1e6
        })
        .collect();
    per.sort_by(f64::total_cmp);
    println!(
        "Rust {nx}x{ny}x{nz}: median {:.1} us, min {:.1} us per apply ({batches} x {calls} calls)",
        per[batches / 2],
        per[0]
    );
    Ok(())
}
