//! `ansatz precond solve`: a linear system from MatrixMarket files solved with an exported learned
//! preconditioner, by the deep conjugate direction method or flexible CG.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ansatz_operators::dcdm::NetworkPreconditioner;
use ansatz_operators::precond_file::PrecondFile;
use ansatz_solvers::krylov::{SolveInfo, Tolerance, dcdm, fcg, pcg};
use ansatz_solvers::precond::Preconditioner;
use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::train_commands::usage;

/// Methods of `ansatz precond solve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SolveMethod {
    /// The deep conjugate direction method (two-term A-orthogonalisation, true residual).
    Dcdm,
    /// Flexible CG with the network as a nonlinear preconditioner.
    Fcg,
    /// Preconditioned CG: for the multilevel network, which is linear, symmetric and positive definite (to f32
    /// round-off); refused for the residual CNN, which is nonlinear.
    Pcg,
}

/// Options of `ansatz precond solve`.
#[derive(Debug, Args)]
pub struct PrecondSolveArgs {
    /// The exported preconditioner (`ansatz precond export`).
    #[arg(long)]
    pub model: PathBuf,
    /// The matrix (MatrixMarket coordinate; `ansatz export-system` writes one).
    #[arg(long)]
    pub system: PathBuf,
    /// The right-hand side (MatrixMarket array) [default: `<stem>.rhs.mtx` next to the matrix].
    #[arg(long)]
    pub rhs: Option<PathBuf>,
    /// The grid cell of each unknown (MatrixMarket array of 0-based cell indices) [default: `<stem>.cells.mtx`
    /// next to the matrix if it exists, else every cell is an unknown].
    #[arg(long)]
    pub cells: Option<PathBuf>,
    /// The grid `NX,NY` or `NX,NY,NZ` [default: the `ansatz-grid:` comment of the matrix file].
    #[arg(long, value_delimiter = ',')]
    pub grid: Option<Vec<usize>>,
    /// Method.
    #[arg(long, value_enum, default_value_t = SolveMethod::Dcdm)]
    pub method: SolveMethod,
    /// Relative tolerance on the residual 2-norm.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Iteration cap.
    #[arg(long, default_value_t = 1000)]
    pub max_iter: usize,
    /// Directions each new one is A-orthogonalised against (DCDM: 2 in the method's paper; FCG: the truncation).
    #[arg(long, default_value_t = 2)]
    pub orthogonalise: usize,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also draw the residual history, beside that of unpreconditioned CG on the same system, to `PLOT.svg` and
    /// `PLOT.png` (relative residual against iteration, logarithmic axis).
    #[arg(long, value_name = "PLOT")]
    pub plot: Option<PathBuf>,
    /// Also write the final iterate `x` (MatrixMarket array, the matrix's ordering), converged or not.
    #[arg(long, value_name = "FILE")]
    pub solution: Option<PathBuf>,
    /// Overwrite an existing `--solution` file.
    #[arg(long)]
    pub force: bool,
}

/// The report of a solve.
#[derive(Debug, Serialize)]
struct Report {
    method: SolveMethod,
    unknowns: usize,
    grid: [usize; 3],
    iterations: usize,
    converged: bool,
    reason: String,
    relative_residual: f64,
    residuals: Vec<f64>,
    setup_seconds: f64,
    solve_seconds: f64,
}

/// `<stem><suffix>` next to `path` (`A.mtx` → `A.rhs.mtx`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".mtx").unwrap_or(&name);
    path.with_file_name(format!("{stem}{suffix}"))
}

/// `[nz, ny, nx]` from `NX,NY[,NZ]`.
fn grid_of(v: &[usize], origin: &str) -> Result<[usize; 3]> {
    match v {
        [nx, ny] if *nx > 0 && *ny > 0 => Ok([1, *ny, *nx]),
        [nx, ny, nz] if *nx > 0 && *ny > 0 && *nz > 0 => Ok([*nz, *ny, *nx]),
        _ => Err(usage(format!("{origin}: a grid is NX,NY or NX,NY,NZ of positive sizes, got {v:?}"))),
    }
}

/// The grid of a file's `% ansatz-grid: NX NY [NZ]` comment, if it has one.
fn comment_grid(path: &Path) -> Result<Option<[usize; 3]>> {
    let comments = ansatz_datasets::mtx::read_comments(path)?;
    let Some(line) = comments.iter().find_map(|c| c.trim().strip_prefix("ansatz-grid:")) else {
        return Ok(None);
    };
    let v: Vec<usize> = line
        .split_whitespace()
        .map(|s| s.parse().map_err(|_| usage(format!("{}: bad ansatz-grid comment {line:?}", path.display()))))
        .collect::<Result<_>>()?;
    grid_of(&v, &path.display().to_string()).map(Some)
}

pub fn run(a: &PrecondSolveArgs) -> Result<()> {
    if !(a.tol > 0.0 && a.tol < 1.0) {
        return Err(usage(format!("--tol must lie in (0, 1), got {}", a.tol)));
    }
    let t0 = Instant::now();
    let file = PrecondFile::load(&a.model).map_err(usage)?;
    let matrix = ansatz_datasets::mtx::read_matrix(&a.system)?;
    let n = matrix.nrows();
    if matrix.ncols() != n {
        return Err(usage(format!("{}: the matrix is {n} × {}, not square", a.system.display(), matrix.ncols())));
    }
    let rhs_path = a.rhs.clone().unwrap_or_else(|| sibling(&a.system, ".rhs.mtx"));
    let b = ansatz_datasets::mtx::read_vector(&rhs_path)?;
    if b.len() != n {
        return Err(usage(format!("{}: {} values for a matrix of {n} rows", rhs_path.display(), b.len())));
    }
    let grid = match &a.grid {
        Some(g) => grid_of(g, "--grid")?,
        None => comment_grid(&a.system)?.ok_or_else(|| {
            usage(format!(
                "{}: no `ansatz-grid:` comment; pass --grid NX,NY[,NZ] (the network needs the grid of the unknowns)",
                a.system.display()
            ))
        })?,
    };
    let dims = if grid[0] > 1 { 3 } else { 2 };
    if dims != file.header.network.dims {
        return Err(usage(format!(
            "{}: a {}D network for a {dims}D grid {grid:?}",
            a.model.display(),
            file.header.network.dims
        )));
    }
    let total: usize = grid.iter().product();
    let cells_path = a.cells.clone().or_else(|| Some(sibling(&a.system, ".cells.mtx")).filter(|p| p.exists()));
    let cells: Vec<usize> = match &cells_path {
        Some(p) => {
            // a cells file names the grid its indices refer to; another grid would place the unknowns wrongly
            if let Some(own) = comment_grid(p)?
                && own != grid
            {
                return Err(usage(format!(
                    "{}: the cells of a {own:?} grid, but the grid in use is {grid:?} ([nz, ny, nx])",
                    p.display()
                )));
            }
            let v = ansatz_datasets::mtx::read_vector(p)?;
            let mut out = Vec::with_capacity(v.len());
            for (u, &c) in v.iter().enumerate() {
                if !(c >= 0.0 && c.fract() == 0.0 && (c as usize) < total) {
                    return Err(usage(format!("{}: entry {u} ({c}) is not a cell of the {grid:?} grid", p.display())));
                }
                out.push(c as usize);
            }
            out
        }
        None => (0..total).collect(),
    };
    if cells.len() != n {
        return Err(usage(format!(
            "{n} unknowns but {} cells{}",
            cells.len(),
            cells_path.map_or(" in the grid (pass --cells for a system with solid cells)".into(), |p| format!(
                " in {}",
                p.display()
            ))
        )));
    }
    let device = burn::prelude::Device::flex();
    let net = file.network(&device).map_err(|e| usage(format!("{}: {e}", a.model.display())))?;
    let m = NetworkPreconditioner::new(net, grid, cells, device, burn::tensor::DType::F32).map_err(usage)?;
    if a.method == SolveMethod::Pcg && !m.is_linear() {
        return Err(usage(format!(
            "--method pcg needs a linear preconditioner, and {} holds the residual CNN, which is nonlinear: use \
             --method fcg or dcdm",
            a.model.display()
        )));
    }
    let setup = t0.elapsed().as_secs_f64();
    let tol = Tolerance::relative(a.tol, a.max_iter);
    let mut x = vec![0.0; n];
    let t1 = Instant::now();
    let result = match a.method {
        SolveMethod::Dcdm => dcdm(&matrix, &m, &b, &mut x, tol, a.orthogonalise),
        SolveMethod::Fcg => fcg(&matrix, &m, &b, &mut x, tol, a.orthogonalise),
        SolveMethod::Pcg => pcg(&matrix, &m, &b, &mut x, tol),
    };
    let solve = t1.elapsed().as_secs_f64();
    let (info, converged, reason): (SolveInfo, bool, String) = match result {
        Ok(i) => {
            let r = format!("{:?}", i.reason);
            (i, true, r)
        }
        Err(e) => match e.info().cloned() {
            Some(i) => (i, false, e.to_string()),
            None => return Err(anyhow::anyhow!("{e}")),
        },
    };
    let b0 = info.residuals.first().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let report = Report {
        method: a.method,
        unknowns: n,
        grid,
        iterations: info.iterations,
        converged,
        reason,
        relative_residual: info.residual() / b0,
        residuals: info.residuals.clone(),
        setup_seconds: setup,
        solve_seconds: solve,
    };
    if let Some(stem) = &a.plot {
        plot_history(stem, a, &matrix, &b, &report)?;
    }
    if let Some(path) = &a.solution {
        let note = format!(
            "the final iterate of `ansatz precond solve --method {}` ({} iterations, relative residual {:e})",
            match a.method {
                SolveMethod::Dcdm => "dcdm",
                SolveMethod::Fcg => "fcg",
                SolveMethod::Pcg => "pcg",
            },
            report.iterations,
            report.relative_residual
        );
        ansatz_datasets::mtx::write_vector(path, &x, &[note], a.force)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
    } else {
        println!(
            "{:?} with {}: {} unknowns, {} iterations, relative residual {:.3e}, {}; setup {:.3} s, solve {:.3} s",
            a.method,
            a.model.display(),
            n,
            report.iterations,
            report.relative_residual,
            if converged { "converged".to_string() } else { format!("not converged: {}", report.reason) },
            setup,
            solve
        );
    }
    if converged { Ok(()) } else { Err(anyhow::anyhow!("the solve did not converge: {}", report.reason)) }
}

/// The residual history of the solve and of unpreconditioned CG on the same system, as `<stem>.svg|png`.
fn plot_history(
    stem: &Path,
    a: &PrecondSolveArgs,
    matrix: &dyn ansatz_solvers::linalg::LinearOperator,
    b: &[f64],
    report: &Report,
) -> Result<()> {
    use ansatz_training::figures::{LineChart, Series};
    let relative = |r: &[f64]| {
        let r0 = r.first().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
        r.iter().enumerate().map(|(k, v)| (k as f64, v / r0)).collect::<Vec<_>>()
    };
    let mut x = vec![0.0; b.len()];
    let cg = match ansatz_solvers::krylov::cg(
        matrix,
        b,
        &mut x,
        Tolerance::relative(a.tol, a.max_iter.max(10 * b.len().min(10_000))),
    ) {
        Ok(i) => i.residuals,
        Err(e) => e.info().map(|i| i.residuals.clone()).unwrap_or_default(),
    };
    let name = match a.method {
        SolveMethod::Dcdm => "DCDM with the network",
        SolveMethod::Fcg => "flexible CG with the network",
        SolveMethod::Pcg => "PCG with the network",
    };
    let chart = LineChart::new(
        &format!("residual history, {} unknowns, tolerance {:e}", report.unknowns, a.tol),
        "iteration",
        "‖b − A x‖ / ‖b − A x₀‖ (1)",
    )
    .log_y()
    .with(Series::new(name, relative(&report.residuals)))
    .with(Series::new("CG, no preconditioner", relative(&cg)).dashed());
    let dir = stem.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file = stem.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "residuals".into());
    chart.save(dir, &file).map_err(|e| anyhow::anyhow!("{}: {e}", stem.display()))?;
    Ok(())
}
