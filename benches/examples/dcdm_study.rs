//! The DCDM study's solves: an exported network against CG, Jacobi-, IC(0)- and multigrid-PCG on Poisson systems
//! it was not trained on (new solid masks and coefficient fields: the Ritz generator's systems under another
//! seed), at several sizes, to two tolerances. Prints a markdown table and one JSON line per solve.
//!
//! `cargo run --release -p ansatz-benches --example dcdm_study -- --model net.apc [--sizes 64,128,256]
//! [--dims 2] [--systems 2] [--seed 1000] [--tols 1e-6,1e-8] [--max-iter 20000] [--solids 3]`
//!
//! Each system: `ansatz generate ritz-poisson2d|3d`'s system `s` for `--seed` (its k and solids), with the
//! right-hand side `b = f` on the unknowns, `f` a smooth random field from the same stream. Every method starts
//! from `x = 0`; times are wall-clock on the rayon pool (`RAYON_NUM_THREADS` sets it), setup and solve apart.

use std::time::Instant;

use ansatz_datasets::problems::SmoothField;
use ansatz_datasets::ritz::{RitzPde, build_system, load};
use ansatz_datasets::rng::SampleRng;
use ansatz_operators::dcdm::NetworkPreconditioner;
use ansatz_operators::precond_file::PrecondFile;
use ansatz_solvers::krylov::{SolveError, SolveInfo, Tolerance, dcdm, fcg, pcg};
use ansatz_solvers::precond::{Ic0, Identity, Jacobi, Multigrid};

/// The comma-separated values of option `name`, `None` when it is absent.
fn arg<T: std::str::FromStr>(name: &str) -> Result<Option<Vec<T>>, String> {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == name) else { return Ok(None) };
    let v = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
    v.split(',').map(|s| s.parse().map_err(|_| format!("{name}: bad value '{s}'"))).collect::<Result<_, _>>().map(Some)
}

/// Iterations (or `None` if the solve failed) and the stop reason.
fn outcome(r: Result<SolveInfo, SolveError>) -> (Option<usize>, String) {
    match r {
        Ok(i) => (Some(i.iterations), "converged".into()),
        Err(e) => (None, e.to_string()),
    }
}

fn main() -> Result<(), String> {
    let model = arg::<String>("--model")?
        .and_then(|v| v.into_iter().next())
        .ok_or("--model FILE (an `ansatz precond export` file) is required")?;
    let file = PrecondFile::load(std::path::Path::new(&model)).map_err(|e| e.to_string())?;
    let dims = arg::<usize>("--dims")?.map_or(file.header.network.dims, |v| v[0]);
    let sizes = arg::<usize>("--sizes")?.unwrap_or(if dims == 2 { vec![64, 128, 256] } else { vec![32, 64] });
    let systems = arg::<usize>("--systems")?.map_or(2, |v| v[0]);
    let seed = arg::<u64>("--seed")?.map_or(1000, |v| v[0]);
    let tols = arg::<f64>("--tols")?.unwrap_or(vec![1e-6, 1e-8]);
    let max_iter = arg::<usize>("--max-iter")?.map_or(20_000, |v| v[0]);
    let solids = arg::<usize>("--solids")?.map_or(3, |v| v[0]);
    let pde = if dims == 3 { RitzPde::Poisson3d } else { RitzPde::Poisson2d };
    println!(
        "model {model} ({}D, {} channels; {}), test systems of seed {seed}, {} rayon threads",
        file.header.network.dims,
        file.header.network.channels,
        file.header.provenance,
        rayon::current_num_threads()
    );
    println!();
    println!("| grid | system | tol | method | iterations | setup (s) | solve (s) | stop |");
    println!("|---|---|---|---|---|---|---|---|");
    for &n in &sizes {
        for s in 0..systems {
            let sets: Vec<String> = [
                format!("grid.n={n}"),
                format!("systems.count={systems}"),
                format!("samples={systems}"),
                "lanczos.steps=2".to_string(),
                format!("mask.max_solids={solids}"),
            ]
            .into();
            let spec = load(pde, None, &sets, None, Some(seed)).map_err(|e| e.to_string())?;
            let sys = build_system(&spec, s).map_err(|e| e.to_string())?;
            let (problem, a) = (&sys.problem, sys.problem.assemble());
            let pts: Vec<[f64; 3]> = (0..problem.grid_cells()).map(|c| problem.centre(c)).collect();
            let mut rng = SampleRng::new(seed, (1 << 62) | s as u64);
            let f = SmoothField::draw(&mut rng, &pts, dims, 12).sample(&pts);
            let b: Vec<f64> = problem.cells().iter().map(|&c| f[c]).collect();
            let grid = if dims == 3 { [n, n, n] } else { [1, n, n] };
            for &tol in &tols {
                let t = Tolerance::relative(tol, max_iter);
                let row =
                    |method: &str, setup: f64, solve: &mut dyn FnMut(&mut [f64]) -> Result<SolveInfo, SolveError>| {
                        let mut x = vec![0.0; a.nrows()];
                        let t0 = Instant::now();
                        let (its, stop) = outcome(solve(&mut x));
                        let secs = t0.elapsed().as_secs_f64();
                        let its_s = its.map_or("–".to_string(), |i| i.to_string());
                        println!(
                            "| {n}^{dims} | {s} | {tol:e} | {method} | {its_s} | {setup:.3} | {secs:.3} | {stop} |"
                        );
                        eprintln!(
                            "{{\"n\":{n},\"dims\":{dims},\"system\":{s},\"tol\":{tol:e},\"method\":\"{method}\",\"iterations\":{},\"setup\":{setup},\"solve\":{secs}}}",
                            its.map_or("null".to_string(), |i| i.to_string())
                        );
                    };
                row("CG", 0.0, &mut |x| pcg(&a, &Identity, &b, x, t));
                let t0 = Instant::now();
                let jac = Jacobi::new(&a).map_err(|e| e.to_string())?;
                row("Jacobi-PCG", t0.elapsed().as_secs_f64(), &mut |x| pcg(&a, &jac, &b, x, t));
                let t0 = Instant::now();
                let ic = Ic0::shifted(&a).map_err(|e| e.to_string())?;
                row("IC(0)-PCG", t0.elapsed().as_secs_f64(), &mut |x| pcg(&a, &ic, &b, x, t));
                let t0 = Instant::now();
                match Multigrid::new(&a, &problem.box_grid(), 2, 64) {
                    Ok(mg) => {
                        let ts = t0.elapsed().as_secs_f64();
                        row("multigrid-PCG", ts, &mut |x| pcg(&a, &mg, &b, x, t));
                    }
                    Err(e) => {
                        println!("| {n}^{dims} | {s} | {tol:e} | multigrid-PCG | – | – | – | setup failed: {e} |")
                    }
                }
                let t0 = Instant::now();
                let device = burn::prelude::Device::flex();
                let net = NetworkPreconditioner::new(
                    file.network(&device)?,
                    grid,
                    problem.cells().to_vec(),
                    device,
                    burn::tensor::DType::F32,
                )?;
                let ts = t0.elapsed().as_secs_f64();
                row("DCDM", ts, &mut |x| dcdm(&a, &net, &b, x, t, 2));
                row("FCG + network", ts, &mut |x| fcg(&a, &net, &b, x, t, 2));
            }
        }
    }
    Ok(())
}
