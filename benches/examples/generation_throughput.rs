//! Samples per second of dataset generation against the bare solver on the same samples.
//!
//! `cargo run --release -p ansatz-benches --example generation_throughput -- [samples_1d] [samples_2d]`
//!
//! "bare" solves the samples with the same parallel loop and discards them; "generate" is the full
//! `ansatz generate` path (solving in parallel while the main thread compresses and writes). Both use the embedded
//! default configs (burgers1d: N = 1024, 100 saved levels after t = 0, WENO5; burgers2d: 128², 50 saved levels,
//! MUSCL).

use std::time::Instant;

use ansatz_datasets::config::load;
use ansatz_datasets::generate::{GenerateOptions, generate, solve_sample};
use rayon::prelude::*;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = [args.first().copied().unwrap_or(16), args.get(1).copied().unwrap_or(8)];
    let dir = std::env::temp_dir().join(format!("ansatz-gen-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (pde, samples) in ["burgers1d", "burgers2d"].into_iter().zip(counts) {
        let spec = load(pde, None, &[], Some(samples), Some(1)).unwrap();
        let t = Instant::now();
        let solved: usize = (0..samples).into_par_iter().map(|i| solve_sample(&spec, i).unwrap().0.data.len()).sum();
        let bare = t.elapsed().as_secs_f64();
        let out = dir.join(format!("{pde}.nc"));
        let t = Instant::now();
        generate(&spec, &out, &GenerateOptions { force: true, ..Default::default() }, |_, _| {}).unwrap();
        let generated = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        println!(
            "{pde}: {samples} samples ({:.1} MB of f64 trajectories, file {:.1} MB): bare solver {:.3} samples/s, generate {:.3} samples/s, generate/bare = {:.3}",
            solved as f64 * 8.0 / 1e6,
            size as f64 / 1e6,
            samples as f64 / bare,
            samples as f64 / generated,
            bare / generated
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
