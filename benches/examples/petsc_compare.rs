//! Our Krylov solvers against PETSc on the same systems, in one run.
//!
//! Writes the random Poisson systems of `ansatz export-system poisson2d --n 512 --seed 1` and
//! `poisson3d --n 64 --seed 1` (MatrixMarket) under `target/petsc-compare/`, solves each to relative residual
//! 1e-8 with CG and PCG (SSOR(1.5), IC(0), geometric multigrid), and then, when PETSc is installed
//! (`pkg-config PETSc` and `mpicc`; Debian's `petsc-dev`, `make bench-petsc` installs it), builds
//! `benches/petsc/krylov.c` and runs KSPCG (unpreconditioned norm) with PCNONE, PCSOR (symmetric, ω = 1.5),
//! PCICC (zero fill) and PCGAMG on the same files. Both sides solve from x = 0; each setup and solve is the best
//! of `--reps`. Prints one table per system with the ratios (PETSc time / ours: above 1 means we are faster).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p ansatz-benches --example petsc_compare -- [--reps 3] [--n2 512]
//! [--n3 64] [--ours-only] [--only none,sor,icc,gamg]`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ansatz_datasets::problems::random_poisson;
use ansatz_solvers::krylov::{Tolerance, pcg};
use ansatz_solvers::precond::{Ic0, Identity, Multigrid, Preconditioner, Ssor};

const RTOL: f64 = 1e-8;

/// Builds one of our preconditioners (timed as the setup).
type Maker<'a> = Box<dyn Fn() -> Result<Box<dyn Preconditioner>, String> + 'a>;

/// The preconditioner names of `--only` (PETSc's).
const PCS: [&str; 4] = ["none", "sor", "icc", "gamg"];

/// One solver's result: iterations, best setup and best solve (seconds).
#[derive(Clone, Copy, Debug)]
struct Timing {
    iterations: usize,
    setup: f64,
    solve: f64,
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("{name} needs a positive integer");
            std::process::exit(2)
        }),
        None => default,
    }
}

/// Builds the PETSc driver (once per source change); `None` with the reason when PETSc is not installed.
fn petsc_driver(dir: &Path) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("petsc/krylov.c");
    let exe = dir.join("krylov");
    let fresh = |e: &Path| -> bool {
        let (Ok(a), Ok(b)) = (std::fs::metadata(e), std::fs::metadata(&src)) else { return false };
        matches!((a.modified(), b.modified()), (Ok(x), Ok(y)) if x >= y)
    };
    if fresh(&exe) {
        return Ok(exe);
    }
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "PETSc"])
        .output()
        .map_err(|e| format!("pkg-config: {e}"))?;
    if !flags.status.success() {
        return Err("pkg-config finds no PETSc (install petsc-dev, or run `make bench-petsc`)".into());
    }
    let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
    let out = Command::new("mpicc")
        .arg("-O2")
        .arg(&src)
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(&exe)
        .output()
        .map_err(|e| format!("mpicc: {e}"))?;
    if !out.status.success() {
        return Err(format!("building {} failed:\n{}", src.display(), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(exe)
}

/// Runs the PETSc driver; one timing per preconditioner name.
fn run_petsc(exe: &Path, a: &Path, b: &Path, reps: usize, pcs: &[&str]) -> Result<Vec<Timing>, String> {
    let out = Command::new(exe)
        .arg(a)
        .arg(b)
        .arg(format!("{RTOL:e}"))
        .arg(reps.to_string())
        .args(pcs)
        // Open MPI refuses root without these; the driver runs as a singleton on one process
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{} failed:\n{text}{}", exe.display(), String::from_utf8_lossy(&out.stderr)));
    }
    pcs.iter()
        .map(|pc| {
            let line = text
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(*pc) && l.starts_with("result "))
                .ok_or_else(|| format!("no result line for {pc} in:\n{text}"))?;
            let f: Vec<&str> = line.split_whitespace().collect();
            let parse = |k: usize| f.get(k).and_then(|v| v.parse::<f64>().ok()).ok_or(format!("bad line: {line}"));
            Ok(Timing { iterations: parse(2)? as usize, setup: parse(3)?, solve: parse(4)? })
        })
        .collect()
}

fn ours(
    a: &ansatz_solvers::linalg::CsrMatrix,
    b: &[f64],
    reps: usize,
    make: &dyn Fn() -> Result<Box<dyn Preconditioner>, String>,
) -> Result<Timing, String> {
    let mut t = Timing { iterations: 0, setup: f64::INFINITY, solve: f64::INFINITY };
    for _ in 0..reps {
        let t0 = Instant::now();
        let m = make()?;
        t.setup = t.setup.min(t0.elapsed().as_secs_f64());
        let mut x = vec![0.0; a.nrows()];
        let t1 = Instant::now();
        let info = pcg(a, m.as_ref(), b, &mut x, Tolerance::relative(RTOL, 100_000)).map_err(|e| e.to_string())?;
        t.solve = t.solve.min(t1.elapsed().as_secs_f64());
        t.iterations = info.iterations;
    }
    Ok(t)
}

fn main() -> Result<(), String> {
    let reps = arg("--reps", 3).max(1);
    let (n2, n3) = (arg("--n2", 512), arg("--n3", 64));
    let args: Vec<String> = std::env::args().collect();
    let only: Vec<String> = match args.iter().position(|a| a == "--only") {
        Some(i) => {
            let list = args.get(i + 1).ok_or("--only needs a list such as none,icc")?;
            let keys: Vec<String> = list.split(',').map(str::to_string).collect();
            if let Some(k) = keys.iter().find(|k| !PCS.contains(&k.as_str())) {
                return Err(format!("--only: unknown preconditioner '{k}' (known: {})", PCS.join(", ")));
            }
            keys
        }
        None => PCS.iter().map(|k| k.to_string()).collect(),
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/petsc-compare");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let driver =
        if std::env::args().any(|a| a == "--ours-only") { Err("--ours-only".to_string()) } else { petsc_driver(&dir) };
    if let Err(why) = &driver {
        println!("PETSc side skipped: {why}");
    }
    println!("rayon threads: {}, best of {reps}, relative residual {RTOL:e}", rayon::current_num_threads());
    for (dims, n) in [(2, n2), (3, n3)] {
        let name = if dims == 2 { format!("poisson2d --n {n}") } else { format!("poisson3d --n {n}") };
        let (p, f) = random_poisson(dims, n, 1).map_err(|e| e.to_string())?;
        let a = p.assemble();
        let b = p.rhs(&f).map_err(|e| e.to_string())?;
        let grid = p.box_grid();
        let stem = if dims == 2 { format!("poisson2d-{n}") } else { format!("poisson3d-{n}") };
        let (am, bm) = (dir.join(format!("{stem}.mtx")), dir.join(format!("{stem}.rhs.mtx")));
        let comment = vec![format!("random Poisson system, seed 1 ({name})")];
        ansatz_datasets::mtx::write_matrix(&am, &a, &comment, true).map_err(|e| e.to_string())?;
        ansatz_datasets::mtx::write_vector(&bm, &b, &comment, true).map_err(|e| e.to_string())?;

        let rows: [(&str, &str, Maker); 4] = [
            ("CG", "none", Box::new(|| Ok(Box::new(Identity)))),
            ("SSOR(1.5)-PCG", "sor", Box::new(|| Ok(Box::new(Ssor::new(&a, 1.5).map_err(|e| e.to_string())?)))),
            ("IC(0)-PCG", "icc", Box::new(|| Ok(Box::new(Ic0::new(&a).map_err(|e| e.to_string())?)))),
            (
                "multigrid-PCG / GAMG",
                "gamg",
                Box::new(|| Ok(Box::new(Multigrid::new(&a, &grid, 2, 64).map_err(|e| e.to_string())?))),
            ),
        ];
        let rows: Vec<_> = rows.into_iter().filter(|r| only.iter().any(|k| k == r.1)).collect();
        let mine = rows.iter().map(|(_, _, make)| ours(&a, &b, reps, make.as_ref())).collect::<Result<Vec<_>, _>>()?;
        let pcs: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let theirs = match &driver {
            Ok(exe) => match run_petsc(exe, &am, &bm, reps, &pcs) {
                Ok(t) => Some(t),
                Err(e) => {
                    println!("PETSc run failed: {e}");
                    None
                }
            },
            Err(_) => None,
        };
        println!("\n{name} (n = {}, nnz = {})\n", a.nrows(), a.nnz());
        println!("| method | ours: it, setup + solve | ms/it | PETSc: it, setup + solve | ms/it | per it | in all |");
        println!("|---|---|---|---|---|---|---|");
        for (k, (label, _, _)) in rows.iter().enumerate() {
            let m = mine[k];
            let per = |t: Timing| 1e3 * t.solve / t.iterations.max(1) as f64;
            let cell = |t: Timing| format!("{} it, {:.0} + {:.0} ms", t.iterations, 1e3 * t.setup, 1e3 * t.solve);
            match theirs.as_ref().map(|t| t[k]) {
                Some(t) => println!(
                    "| {label} | {} | {:.3} | {} | {:.3} | {:.2} | {:.2} |",
                    cell(m),
                    per(m),
                    cell(t),
                    per(t),
                    per(t) / per(m),
                    (t.setup + t.solve) / (m.setup + m.solve)
                ),
                None => println!("| {label} | {} | {:.3} | – | – | – | – |", cell(m), per(m)),
            }
        }
    }
    Ok(())
}
