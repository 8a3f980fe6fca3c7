//! `ansatz generate`, `ansatz solve` and `ansatz info`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ansatz_datasets::config::{self, Pde, Scheme};
use ansatz_datasets::generate::{GenerateOptions, Setup, generate, layout, trajectory, write_in_parallel};
use ansatz_datasets::reader::{describe, read_initial_condition};
use ansatz_datasets::schema::{GridType, Precision, history};
use ansatz_datasets::writer::DatasetWriter;
use ansatz_datasets::{DatasetError, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::probe::probe;

fn bar(total: usize, what: &str) -> ProgressBar {
    ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template(&format!(
            "  {what} [{{bar:40}}] {{pos}}/{{len}} samples, {{per_sec}}, ETA {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
}

/// Options of `ansatz generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// PDE: burgers1d, burgers2d, navier-stokes2d (trajectories; Navier–Stokes in vorticity form, Kolmogorov flow by
    /// default), poisson2d, poisson3d or elasticity2d (static problems);
    /// ritz-poisson2d or ritz-poisson3d (Ritz-vector right-hand sides of Poisson matrices, for training learned
    /// preconditioners); burgers1d-source or diffusion2d (the parametric reduced-order benchmarks: Burgers with
    /// an exponential source, one trajectory per μ of `parameter.set` = train, interpolation, extrapolation or
    /// uniform; diffusion from random Gaussians); diffusion-sorption (PDEBench's diffusion with Freundlich
    /// sorption, a constant initial value per sample); or a preset: burgers1d-shocks (256 points, small ν, 600
    /// levels: the data of the JAWS study), burgers2d-moe (periodic 2D Burgers on 32 × 32 cells, 21 levels:
    /// the data of the 2D hard-constrained models) or kolmogorov-re1000 (Kolmogorov flow at Re = 1000 on 256²
    /// after a spin-up of 40 time units, 151 levels: the reference of the hybrid benchmark).
    pub pde: String,
    /// A TOML config replacing the embedded default (`configs/<pde>.toml` shows every key).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of samples (overrides the config).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Seed (overrides the config); sample i depends only on (seed, i).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output file, or a directory to write `<pde>.nc` into.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue an interrupted run from its partial file.
    #[arg(long)]
    pub resume: bool,
    /// Overwrite an existing output or partial file.
    #[arg(long)]
    pub force: bool,
    /// Override a config value: `--set section.key=value` (`--set nu=0.01` sets parameters.nu). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// What `generate` makes.
enum Job {
    Trajectories(ansatz_datasets::config::Spec),
    Static(ansatz_datasets::statics::StaticSpec),
    Ritz(ansatz_datasets::ritz::RitzSpec),
    Rom(ansatz_datasets::rom::RomSpec),
}

pub fn run_generate(a: &GenerateArgs, comm: &dyn ansatz_cluster::Communicator) -> Result<()> {
    use ansatz_datasets::manifest::{manifest_name, shard_name, write_manifest};
    let file_text = match &a.config {
        Some(p) => Some((
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(|e| DatasetError::Io { path: p.clone(), err: e })?,
        )),
        None => None,
    };
    let file = file_text.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
    let kinds =
        (ansatz_datasets::ritz::RitzPde::from_name(&a.pde), ansatz_datasets::statics::StaticPde::from_name(&a.pde));
    let rom = ansatz_datasets::rom::RomPde::from_name(&a.pde);
    let (job, total, banner) = match (rom, kinds) {
        (Some(rom), _) => {
            let spec = ansatz_datasets::rom::load(rom, file, &a.sets, a.samples, a.seed)?;
            let grid = if spec.pde == ansatz_datasets::rom::RomPde::Diffusion2d {
                format!("{n} × {n}", n = spec.n)
            } else {
                spec.n.to_string()
            };
            let banner = format!(
                "{} samples, grid {grid}, {} levels, {} dt = {}",
                spec.samples,
                spec.levels + 1,
                if spec.tableau().stages() == 1 { "forward Euler" } else { "RK4" },
                spec.dt
            );
            (Job::Rom(spec.clone()), spec.samples, banner)
        }
        (None, (Some(rp), _)) => {
            let spec = ansatz_datasets::ritz::load(rp, file, &a.sets, a.samples, a.seed)?;
            let banner = format!(
                "{} right-hand sides from {} systems, {} cells per axis, {} Lanczos steps per system",
                spec.samples, spec.systems, spec.n, spec.steps
            );
            (Job::Ritz(spec.clone()), spec.samples, banner)
        }
        (None, (None, Some(sp))) => {
            let spec = ansatz_datasets::statics::load(sp, file, &a.sets, a.samples, a.seed)?;
            let banner =
                format!("{} samples, {} cells per axis, relative residual {:e}", spec.samples, spec.n, spec.rtol);
            (Job::Static(spec.clone()), spec.samples, banner)
        }
        (None, (None, None)) => {
            let spec = config::load(&a.pde, file, &a.sets, a.samples, a.seed)?;
            let grid = if spec.pde.two_d() { format!("{n} × {n}", n = spec.n) } else { format!("{}", spec.n) };
            let f = spec.forcing;
            let forcing = if f.amplitude != 0.0 || f.drag != 0.0 {
                format!(", Kolmogorov forcing A = {} at k = {}, drag {}", f.amplitude, f.wavenumber, f.drag)
            } else {
                String::new()
            };
            let banner = format!(
                "{} samples, grid {grid}, {} levels to t = {}, {}, ν {}{forcing}",
                spec.samples,
                spec.frames + 1,
                spec.t_end,
                spec.scheme.describe(),
                spec.nu.describe()
            );
            (Job::Trajectories(spec.clone()), spec.samples, banner)
        }
    };
    let out = output_path(&a.out, &a.pde);
    let (rank, size) = (comm.rank(), comm.size());
    // with several ranks: one shard per rank and a manifest
    let (target, range, sharded) = if size > 1 {
        let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| a.pde.clone());
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let manifest = dir.join(manifest_name(&stem));
        if manifest.exists() && !a.force && !a.resume {
            return Err(DatasetError::Exists { path: manifest });
        }
        (dir.join(shard_name(&stem, rank)), Some(ansatz_cluster::partition(total, size, rank)), Some((manifest, stem)))
    } else {
        (out, None, None)
    };
    if size > 1 && std::env::var("ANSATZ_FAULT_RANK").ok().and_then(|r| r.parse::<usize>().ok()) == Some(rank) {
        // a fault on one rank, for testing that the whole job stops
        std::thread::sleep(std::time::Duration::from_millis(300));
        return Err(DatasetError::Config { origin: "ANSATZ_FAULT_RANK".into(), message: "injected fault".into() });
    }
    if rank == 0 {
        let ranks = if size > 1 { format!(" on {size} ranks") } else { String::new() };
        eprintln!("ansatz generate {}: {banner}{ranks}", a.pde);
    }
    let pb =
        if rank == 0 { bar(range.as_ref().map_or(total, |r| r.len()), "generating") } else { ProgressBar::hidden() };
    let t0 = Instant::now();
    let opts = GenerateOptions { resume: a.resume, force: a.force, history: history(), range: range.clone() };
    let progress = |done: usize, n: usize| {
        pb.set_length(n as u64);
        pb.set_position(done as u64);
    };
    let report = match &job {
        Job::Trajectories(spec) => generate(spec, &target, &opts, progress),
        Job::Static(spec) => ansatz_datasets::statics::generate_static(spec, &target, &opts, progress),
        Job::Ritz(spec) => ansatz_datasets::ritz::generate_ritz(spec, &target, &opts, progress),
        Job::Rom(spec) => ansatz_datasets::rom::generate_rom(spec, &target, &opts, progress),
    };
    pb.finish_and_clear();
    let report = report?;
    let secs = t0.elapsed().as_secs_f64();
    let resumed = if report.resumed_from > 0 {
        format!(" (resumed after {} samples)", report.resumed_from)
    } else {
        String::new()
    };
    match sharded {
        None => println!(
            "{}: {} samples{resumed}, {} solved in {secs:.1} s ({:.2} samples/s)",
            report.path.display(),
            total,
            report.solved,
            report.solved as f64 / secs
        ),
        Some((manifest, stem)) => {
            comm.barrier();
            if rank == 0 {
                let files: Vec<(String, usize, usize)> = (0..size)
                    .map(|r| {
                        let p = ansatz_cluster::partition(total, size, r);
                        (shard_name(&stem, r), p.start, p.len())
                    })
                    .collect();
                write_manifest(&manifest, &a.pde, total, &files)?;
                println!(
                    "{}: {total} samples in {size} shards, {secs:.1} s ({:.2} samples/s)",
                    manifest.display(),
                    total as f64 / secs
                );
            }
        }
    }
    Ok(())
}

fn output_path(out: &Path, pde: &str) -> PathBuf {
    if out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') {
        out.join(format!("{pde}.nc"))
    } else {
        out.to_path_buf()
    }
}

/// Options of `ansatz merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The manifest of a sharded dataset (`NAME.manifest.json`), or one dataset file: it is copied value for value
    /// in the current dataset schema (how a file of an earlier version is brought up to date).
    pub manifest: PathBuf,
    /// The merged file.
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

pub fn run_merge(a: &MergeArgs) -> Result<()> {
    let (samples, shards) = if ansatz_datasets::manifest::is_manifest(&a.manifest) {
        let (m, shards) = ansatz_datasets::manifest::read_manifest(&a.manifest)?;
        (m.samples, shards)
    } else {
        probe(&a.manifest)?;
        (ansatz_datasets::reader::Dataset::open(&a.manifest)?.samples, vec![a.manifest.clone()])
    };
    for s in &shards {
        probe(s)?;
    }
    let pb = bar(samples, "merging");
    let out = ansatz_datasets::manifest::merge(&a.manifest, &a.out, a.force, |d, _| pb.set_position(d as u64));
    pb.finish_and_clear();
    let what = if ansatz_datasets::manifest::is_manifest(&a.manifest) {
        format!("{} shards", shards.len())
    } else {
        "one file, rewritten in the current schema".to_string()
    };
    println!("{}: {samples} samples from {what}", out?.display());
    Ok(())
}

/// Options of `ansatz coarsen`.
#[derive(Debug, Args)]
pub struct CoarsenArgs {
    /// The dataset file (trajectories on a 1D or 2D grid).
    pub data: PathBuf,
    /// Restriction factor per axis (2, 4, 8, …): every restricted axis must be divisible by it.
    #[arg(long)]
    pub factor: usize,
    /// The coarsened file.
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

pub fn run_coarsen(a: &CoarsenArgs) -> Result<()> {
    probe(&a.data)?;
    let samples = ansatz_datasets::reader::Dataset::open(&a.data)?.samples;
    let pb = bar(samples, "coarsening");
    let out = ansatz_datasets::coarsen::coarsen(&a.data, &a.out, a.factor, a.force, |d, _| pb.set_position(d as u64));
    pb.finish_and_clear();
    println!("{}: {samples} samples restricted by {} per axis", out?.display(), a.factor);
    Ok(())
}

/// Options of `ansatz solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    /// PDE: burgers1d or burgers2d on a grid; advection1d, burgers1d, euler2d or elasticity2d with `--method insr`.
    pub pde: String,
    /// `grid` (finite volume or spectral, `--scheme`) or `insr` (a SIREN whose weights are optimised at every
    /// time step; settings by --set: width, hidden, omega, lr, samples, max_iters, patience, lr_factor,
    /// lr_floor, boundary_weight, seed, dt, n (output cells); advection1d: a, lower, upper, center, ic_width;
    /// burgers1d: nu, length, amplitude; elasticity2d (a cantilever): lx, ly, lambda, mu, rho, tx, ty, bx, by,
    /// clamp_weight; euler2d: the Taylor–Green vortex in [−1, 1]², backtrace = midpoint or euler).
    #[arg(long, default_value = "grid")]
    pub method: String,
    /// Initial condition: NetCDF with variable `u` (and `v` in 2D) on (x) or (y, x), optionally with a leading
    /// `sample` dimension; coordinate variables, if present, define the grid (uniform spacing). Required on a
    /// grid; INSR starts from the PDE's own initial condition.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Final time.
    #[arg(long)]
    pub t_end: f64,
    /// Time between saved levels (must divide --t-end).
    #[arg(long)]
    pub save_every: f64,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// fv-muscl, fv-weno5 or spectral.
    #[arg(long, default_value = "fv-weno5")]
    pub scheme: String,
    /// Settings: nu (default 0.01), length and length_y (without coordinates), cfl (0.4), dt, limiter, weno,
    /// flux, bc_x and bc_y (periodic|dirichlet|neumann), bc_x_lower, bc_x_upper, bc_y_lower, bc_y_upper,
    /// precision (f32|f64); navier-stokes2d: forcing.amplitude, forcing.wavenumber (4), forcing.drag (Kolmogorov
    /// forcing and linear drag, none by default). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
    /// INSR: continue an interrupted solve from the weights of its last completed step (`OUT.insr/`).
    #[arg(long)]
    pub resume: bool,
}

struct SolveSettings {
    nu: f64,
    length: Option<f64>,
    length_y: Option<f64>,
    cfl: f64,
    dt: Option<f64>,
    limiter: String,
    weno: String,
    flux: String,
    bc: [String; 2],
    bc_values: [[f64; 2]; 2],
    precision: Precision,
    /// Navier–Stokes only: Kolmogorov forcing and drag (none by default: decaying turbulence).
    forcing: ansatz_datasets::config::Forcing,
    /// Whether a `forcing.*` key was given (refused for the other PDEs).
    forced: bool,
}

fn parse_settings(sets: &[String]) -> Result<SolveSettings> {
    let mut s = SolveSettings {
        nu: 0.01,
        length: None,
        length_y: None,
        cfl: 0.4,
        dt: None,
        limiter: "van-leer".into(),
        weno: "z".into(),
        flux: "rusanov".into(),
        bc: ["periodic".into(), "periodic".into()],
        bc_values: [[0.0; 2]; 2],
        precision: Precision::F32,
        forcing: ansatz_datasets::config::Forcing { amplitude: 0.0, wavenumber: 4, drag: 0.0 },
        forced: false,
    };
    for item in sets {
        let err = |m: String| DatasetError::Config { origin: format!("--set {item}"), message: m };
        let (k, v) = item.split_once('=').ok_or_else(|| err("expected key=value".into()))?;
        let (k, v) = (k.trim(), v.trim());
        let num = || -> Result<f64> {
            v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| err(format!("'{v}' is not a finite number")))
        };
        let positive =
            || -> Result<f64> { num().and_then(|x| if x > 0.0 { Ok(x) } else { Err(err("must be positive".into())) }) };
        match k {
            "nu" => {
                s.nu = num().and_then(|x| if x >= 0.0 { Ok(x) } else { Err(err("must be non-negative".into())) })?
            }
            "length" => s.length = Some(positive()?),
            "length_y" => s.length_y = Some(positive()?),
            "cfl" => s.cfl = positive()?,
            "dt" => s.dt = Some(positive()?),
            "limiter" => s.limiter = v.into(),
            "weno" => s.weno = v.into(),
            "flux" => s.flux = v.into(),
            "bc_x" => s.bc[0] = v.into(),
            "bc_y" => s.bc[1] = v.into(),
            "bc_x_lower" => s.bc_values[0][0] = num()?,
            "bc_x_upper" => s.bc_values[0][1] = num()?,
            "bc_y_lower" => s.bc_values[1][0] = num()?,
            "bc_y_upper" => s.bc_values[1][1] = num()?,
            "forcing.amplitude" => (s.forcing.amplitude, s.forced) = (num()?, true),
            "forcing.wavenumber" => {
                s.forcing.wavenumber =
                    v.parse::<usize>().ok().filter(|&k| k >= 1).ok_or_else(|| err("must be an integer ≥ 1".into()))?;
                s.forced = true;
            }
            "forcing.drag" => {
                s.forcing.drag =
                    num().and_then(|x| if x >= 0.0 { Ok(x) } else { Err(err("must be non-negative".into())) })?;
                s.forced = true;
            }
            "precision" => {
                s.precision = match v {
                    "f32" => Precision::F32,
                    "f64" => Precision::F64,
                    _ => return Err(err("allowed: f32, f64".into())),
                }
            }
            _ => {
                return Err(err(format!(
                    "unknown key '{k}' (known: nu, length, length_y, cfl, dt, limiter, weno, flux, bc_x, bc_y, bc_x_lower, bc_x_upper, bc_y_lower, bc_y_upper, precision, forcing.amplitude, forcing.wavenumber, forcing.drag)"
                )));
            }
        }
    }
    Ok(s)
}

/// Spacing and length of a uniform coordinate axis; errors name the file and the coordinate.
fn axis_from_coords(path: &Path, name: &str, c: &[f64]) -> Result<f64> {
    if c.len() < 2 {
        return Err(DatasetError::Format {
            path: path.into(),
            what: format!("coordinate '{name}' needs at least 2 points"),
        });
    }
    let h = c[1] - c[0];
    let tol = 1e-6 * h.abs().max(f64::MIN_POSITIVE);
    if h <= 0.0 || c.windows(2).any(|w| ((w[1] - w[0]) - h).abs() > tol) {
        return Err(DatasetError::Format {
            path: path.into(),
            what: format!("coordinate '{name}' is not uniformly increasing"),
        });
    }
    Ok(h * c.len() as f64)
}

pub fn run_solve(a: &SolveArgs) -> Result<()> {
    let init = match (&a.init, a.method.as_str()) {
        (Some(i), "grid") => i,
        (None, "grid") => {
            return Err(DatasetError::Config {
                origin: "--init".into(),
                message: "required with --method grid".into(),
            });
        }
        (_, m) => {
            return Err(DatasetError::Config {
                origin: "--method".into(),
                message: format!("unknown method '{m}' (grid or insr)"),
            });
        }
    };
    if a.resume {
        return Err(DatasetError::Config {
            origin: "--resume".into(),
            message: "grid solves are not resumable (a solve writes its output once); --resume is for --method insr"
                .into(),
        });
    }
    let pde = Pde::from_name(&a.pde)?;
    let s = parse_settings(&a.sets)?;
    if s.forced && pde != Pde::NavierStokes2d {
        return Err(DatasetError::Config {
            origin: "--set forcing.*".into(),
            message: format!("only navier-stokes2d is forced, not {}", pde.name()),
        });
    }
    for (name, v) in [("--t-end", a.t_end), ("--save-every", a.save_every)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(DatasetError::Config { origin: name.into(), message: format!("must be positive, got {v}") });
        }
    }
    let ratio = a.t_end / a.save_every;
    let frames = ratio.round() as usize;
    if frames == 0 || (ratio - frames as f64).abs() > 1e-9 * ratio.max(1.0) {
        return Err(DatasetError::Config {
            origin: "--save-every".into(),
            message: format!("must divide --t-end = {} into whole intervals", a.t_end),
        });
    }
    let scheme = Scheme::from_names(&a.scheme, &s.limiter, &s.weno, &s.flux)?;
    let bc_x = [
        config::boundary(&s.bc[0], s.bc_values[0][0], "bc_x")?,
        config::boundary(&s.bc[0], s.bc_values[0][1], "bc_x")?,
    ];
    let bc_y = [
        config::boundary(&s.bc[1], s.bc_values[1][0], "bc_y")?,
        config::boundary(&s.bc[1], s.bc_values[1][1], "bc_y")?,
    ];
    if scheme == Scheme::Spectral && (s.bc[0] != "periodic" || (pde.two_d() && s.bc[1] != "periodic")) {
        return Err(DatasetError::Config {
            origin: "--scheme".into(),
            message: "the spectral scheme needs periodic boundaries".into(),
        });
    }
    if !a.force && a.out.exists() {
        return Err(DatasetError::Exists { path: a.out.clone() });
    }
    probe(init)?;
    let ic = read_initial_condition(init, pde.components(), pde.two_d())?;
    let (ny, nx) = ic.shape;
    let lx = match (&ic.x, s.length) {
        (Some(c), _) => axis_from_coords(init, "x", c)?,
        (None, Some(l)) => l,
        (None, None) => {
            return Err(DatasetError::Format {
                path: init.clone(),
                what: "no coordinate variable 'x': give the domain length with --set length=L".into(),
            });
        }
    };
    let ly = if pde.two_d() {
        match (&ic.y, s.length_y.or(s.length)) {
            (Some(c), _) => axis_from_coords(init, "y", c)?,
            (None, Some(l)) => l,
            (None, None) => {
                return Err(DatasetError::Format {
                    path: init.clone(),
                    what: "no coordinate variable 'y': give the domain length with --set length_y=L".into(),
                });
            }
        }
    } else {
        1.0
    };
    // Navier–Stokes: Kolmogorov forcing and drag when `forcing.*` is given, else decaying turbulence
    let forcing = if pde == Pde::NavierStokes2d { s.forcing } else { Default::default() };
    let setup = Setup {
        pde,
        nx,
        ny,
        lx,
        ly,
        scheme,
        bc: [bc_x, bc_y],
        save_every: a.save_every,
        frames,
        cfl: s.cfl,
        dt: s.dt,
        spin_up: 0.0,
        forcing,
    };
    let offset = if setup.grid_type() == GridType::CellCentered { 0.5 } else { 0.0 };
    let x = ic.x.clone().unwrap_or_else(|| (0..nx).map(|i| (i as f64 + offset) * lx / nx as f64).collect());
    let y = pde
        .two_d()
        .then(|| ic.y.clone().unwrap_or_else(|| (0..ny).map(|j| (j as f64 + offset) * ly / ny as f64).collect()));
    let samples = ic.values.nrows();
    let mut bc_names = vec![s.bc[0].clone()];
    if pde.two_d() {
        bc_names.push(s.bc[1].clone());
    }
    let text = vec![
        ("title".to_string(), format!("{} trajectories solved by Ansatz from {}", pde.name(), init.display())),
        (
            "source".to_string(),
            format!(
                "ansatz-solvers {}: {}; internal dt per sample in variable solver_dt",
                env!("CARGO_PKG_VERSION"),
                scheme.describe()
            ),
        ),
        ("history".to_string(), history()),
        ("initial_condition".to_string(), format!("from {}", init.display())),
    ];
    let lay = layout(&setup, samples, x, y, bc_names, s.precision, 4, frames + 1, text, None);
    let mut writer = DatasetWriter::create(&a.out, &lay, a.force)?;
    eprintln!(
        "ansatz solve {}: {samples} sample(s) from {}, grid {}, {}, ν = {}, to t = {}",
        pde.name(),
        init.display(),
        if pde.two_d() { format!("{ny} × {nx}") } else { format!("{nx}") },
        scheme.describe(),
        s.nu,
        a.t_end
    );
    let pb = bar(samples, "solving");
    let t0 = Instant::now();
    let res = write_in_parallel(
        &mut writer,
        0,
        samples,
        |k| {
            let row = ic.values.row(k);
            let t = trajectory(&setup, row.as_slice().unwrap_or(&row.to_vec()), s.nu, k)?;
            Ok((t.data, vec![s.nu, t.dt]))
        },
        &mut |d, _| pb.set_position(d as u64),
    );
    pb.finish_and_clear();
    if let Err(e) = res {
        let partial = writer.partial().to_path_buf();
        drop(writer);
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let out = writer.finish()?;
    println!(
        "{}: {samples} sample(s), {} levels, solved in {:.2} s",
        out.display(),
        frames + 1,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `ansatz info FILE|MANIFEST`.
pub fn run_info(path: &Path) -> Result<()> {
    if ansatz_datasets::manifest::is_manifest(path) {
        let (m, shards) = ansatz_datasets::manifest::read_manifest(path)?;
        println!(
            "{}: sharded {} dataset, {} samples in {} shards (sizes and checksums verified)",
            path.display(),
            m.pde,
            m.samples,
            shards.len()
        );
        for (e, p) in m.shards.iter().zip(&shards) {
            println!("  {}: samples {}..{}, {} bytes", e.file, e.first_sample, e.first_sample + e.samples, e.bytes);
            probe(p)?;
        }
        print!("{}", describe(&shards[0])?);
        return Ok(());
    }
    probe(path)?;
    print!("{}", describe(path)?);
    Ok(())
}

/// Options of `ansatz export-system`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// System: poisson2d, poisson3d, elasticity2d (the benchmark systems), or ritz-poisson2d, ritz-poisson3d (a
    /// system of a Ritz dataset, the kind a learned preconditioner is trained on).
    pub system: String,
    /// Cells per axis (default 64 in 2D, 32 in 3D; for a dataset's system, the config's `grid.n`).
    #[arg(long)]
    pub n: Option<usize>,
    /// Seed: of the benchmark system's coefficient and source, or of the dataset whose system is exported [default:
    /// 0, or the config's].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Export the system of one sample of `ansatz generate poisson2d|poisson3d` with this config instead of the
    /// benchmark system (for ritz-poisson2d|3d: the dataset's config).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a value of the dataset's config, as for `ansatz generate` (`--set mask.max_solids=3`,
    /// `--set coefficient.log_contrast=2`). For poisson2d|3d this exports the dataset's system. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// The sample of a poisson2d|3d dataset whose system is exported (implies the dataset's system).
    #[arg(long)]
    pub sample: Option<usize>,
    /// The system of a ritz-poisson2d|3d dataset (0 ..= systems.count − 1); its right-hand side is that system's
    /// first training sample.
    #[arg(long = "system", default_value_t = 0)]
    pub ritz_system: usize,
    /// Matrix file (MatrixMarket); the right-hand side goes next to it as `<stem>.rhs.mtx` and, for Poisson
    /// systems, the grid cell of each unknown as `<stem>.cells.mtx`.
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// A Poisson system on a grid as `ansatz export-system` writes it.
struct GridSystem {
    matrix: ansatz_solvers::linalg::CsrMatrix,
    rhs: Vec<f64>,
    cells: Vec<usize>,
    n: usize,
    dims: usize,
    /// What the coefficient, solids and right-hand side are (comment lines).
    about: Vec<String>,
}

fn poisson_comments(a: &ExportArgs, g: &GridSystem) -> Vec<String> {
    let n = g.n;
    let shape = if g.dims == 2 { format!("{n} x {n}") } else { format!("{n} x {n} x {n}") };
    let ordering = if g.dims == 2 { "index = i + nx*j" } else { "index = i + nx*(j + ny*k)" };
    let total = n.pow(g.dims as u32);
    let mut comments = vec![
        format!(
            "Ansatz {} export-system {}: -div(k grad u) = f on the unit {}",
            env!("CARGO_PKG_VERSION"),
            a.system,
            if g.dims == 2 { "square" } else { "cube" }
        ),
        format!("cell-centred finite volume, grid {shape} cells, u = 0 on every side (Dirichlet)"),
    ];
    if g.cells.len() == total {
        comments.push(format!(
            "vector ordering: {ordering}, x fastest (i along x, j along y, k along z), 0-based cell indices"
        ));
    } else {
        comments.push(format!(
            "solid cells (zero-flux walls) are not unknowns: {} of {total} cells are; unknown u sits in the cell \
             written at row u of <stem>.cells.mtx, cell {ordering}, x fastest, 0-based",
            g.cells.len()
        ));
    }
    comments.extend(g.about.iter().cloned());
    comments.push(
        "rows are scaled by the inverse cell volume: A u = f cell by cell; A is symmetric positive definite".into(),
    );
    comments.push(format!("ansatz-grid: {}", if g.dims == 2 { format!("{n} {n}") } else { format!("{n} {n} {n}") }));
    comments
}

/// The config file of `--config` as `(name, text)`.
fn config_file(a: &ExportArgs) -> Result<Option<(String, String)>> {
    match &a.config {
        Some(p) => Ok(Some((
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(|e| DatasetError::Io { path: p.clone(), err: e })?,
        ))),
        None => Ok(None),
    }
}

/// `--set`s with `--n` as `grid.n`.
fn dataset_sets(a: &ExportArgs) -> Vec<String> {
    let mut sets = a.sets.clone();
    if let Some(n) = a.n {
        sets.push(format!("grid.n={n}"));
    }
    sets
}

/// The system of sample `--sample` of a poisson2d|3d dataset.
fn dataset_poisson(a: &ExportArgs, pde: ansatz_datasets::statics::StaticPde) -> Result<GridSystem> {
    let text = config_file(a)?;
    let file = text.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
    let spec = ansatz_datasets::statics::load(pde, file, &dataset_sets(a), None, a.seed)?;
    let i = a.sample.unwrap_or(0);
    let s = ansatz_datasets::statics::poisson_sample(&spec, i)?;
    let err = |e: String| DatasetError::Config { origin: format!("sample {i}"), message: e };
    let rhs = s.problem.rhs(&s.f).map_err(|e| err(e.to_string()))?;
    let about = vec![format!(
        "the system of sample {i} of `ansatz generate {}` with seed {} (config below): k = exp({} g), g a smooth \
         random field, up to {} solid boxes, f = {} g' smooth random",
        pde.name(),
        spec.seed,
        spec.log_contrast,
        spec.max_solids,
        spec.amplitude
    )]
    .into_iter()
    .chain(spec.config_text.lines().map(|l| format!("config: {l}")))
    .collect();
    Ok(GridSystem {
        matrix: s.problem.assemble(),
        rhs,
        cells: s.problem.cells().to_vec(),
        n: spec.n,
        dims: pde.dims(),
        about,
    })
}

/// System `--system` of a ritz-poisson2d|3d dataset, with its first sample as the right-hand side.
fn dataset_ritz(a: &ExportArgs, pde: ansatz_datasets::ritz::RitzPde) -> Result<GridSystem> {
    use ansatz_datasets::ritz;
    if a.sample.is_some() {
        return Err(DatasetError::Config {
            origin: "--sample".into(),
            message: format!("{} exports a system: pass --system K", pde.name()),
        });
    }
    let text = config_file(a)?;
    let file = text.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
    let spec = ritz::load(pde, file, &dataset_sets(a), None, a.seed)?;
    let k = a.ritz_system;
    if k >= spec.systems {
        return Err(DatasetError::Config {
            origin: "--system".into(),
            message: format!("the dataset has systems 0..={}, got {k}", spec.systems - 1),
        });
    }
    let first = (0..spec.samples).find(|&i| ritz::system_of(&spec, i) == k).ok_or_else(|| DatasetError::Config {
        origin: "--system".into(),
        message: format!("system {k} has no samples"),
    })?;
    eprintln!("building system {k}: {} Lanczos steps…", spec.steps);
    let system = ritz::build_system(&spec, k)?;
    let rhs = ritz::sample_rhs(&spec, &system, first);
    let about = vec![format!(
        "system {k} of `ansatz generate {}` with seed {} (config below): k = exp({} g), up to {} solid boxes; the \
         right-hand side is its sample {first} (unit norm, Ritz vectors weighted toward the low modes)",
        pde.name(),
        spec.seed,
        spec.log_contrast,
        spec.max_solids
    )]
    .into_iter()
    .chain(spec.config_text.lines().map(|l| format!("config: {l}")))
    .collect();
    Ok(GridSystem {
        matrix: system.problem.assemble(),
        rhs,
        cells: system.problem.cells().to_vec(),
        n: spec.n,
        dims: pde.dims(),
        about,
    })
}

pub fn run_export(a: &ExportArgs) -> Result<()> {
    use ansatz_datasets::{ritz::RitzPde, statics::StaticPde};
    let known = "known: poisson2d, poisson3d, elasticity2d, ritz-poisson2d, ritz-poisson3d";
    let unknown = || DatasetError::Config {
        origin: "export-system".into(),
        message: format!("unknown system '{}' ({known})", a.system),
    };
    let elasticity = a.system == "elasticity2d";
    let dataset = a.config.is_some() || !a.sets.is_empty() || a.sample.is_some();
    if elasticity && dataset {
        return Err(DatasetError::Config {
            origin: "export-system elasticity2d".into(),
            message: "takes no --config, --set or --sample (only --n and --seed)".into(),
        });
    }
    let ritz = RitzPde::from_name(&a.system);
    if ritz.is_none() && a.ritz_system != 0 {
        return Err(DatasetError::Config {
            origin: "--system".into(),
            message: format!("only for ritz-poisson2d|3d, not {}", a.system),
        });
    }
    if let Some(n) = a.n
        && n < 3
    {
        return Err(DatasetError::Config { origin: "--n".into(), message: "must be at least 3".into() });
    }
    let err = |e: String| DatasetError::Config { origin: "export-system".into(), message: e };
    let seed = a.seed.unwrap_or(0);
    let (matrix, rhs, comments, cells) = if elasticity {
        let n = a.n.unwrap_or(64);
        let (p, rhs) = ansatz_datasets::problems::random_elasticity(n, seed).map_err(|e| err(e.to_string()))?;
        let shape = format!("{n} x {n}");
        let comments = vec![
            format!("Ansatz {} export-system elasticity2d: -div sigma(u) = b, plane strain, on the unit square", env!("CARGO_PKG_VERSION")),
            format!("staggered grid of {shape} cells: x displacement at vertical faces (i h, (j+1/2) h), y displacement at horizontal faces ((i+1/2) h, j h)"),
            "left side clamped (those x and y displacements are not unknowns), other sides traction-free".into(),
            "vector ordering: first the x displacements of faces i = 1..n, j = 0..n-1 (index i-1 + n*j), then the y displacements of faces i = 0..n-1, j = 0..n (index n*n + i + n*j)".into(),
            format!("mu = 0.5 exp(g1), lambda = exp(g2), g smooth random fields, smooth random body force; seed {seed}"),
            "assembled from the discrete strain energy: symmetric positive definite".into(),
        ];
        (p.assemble(), rhs, comments, None)
    } else {
        let g = match (ritz, StaticPde::from_name(&a.system)) {
            (Some(rp), _) => dataset_ritz(a, rp)?,
            (None, Some(sp)) if dataset => dataset_poisson(a, sp)?,
            (None, Some(sp)) => {
                let dims = sp.dims();
                let n = a.n.unwrap_or(if dims == 2 { 64 } else { 32 });
                let (p, f) =
                    ansatz_datasets::problems::random_poisson(dims, n, seed).map_err(|e| err(e.to_string()))?;
                let about = vec![format!("k = exp(1.5 g), g a smooth random field, f smooth random; seed {seed}")];
                let rhs = p.rhs(&f).map_err(|e| err(e.to_string()))?;
                GridSystem { matrix: p.assemble(), rhs, cells: p.cells().to_vec(), n, dims, about }
            }
            (None, None) => return Err(unknown()),
        };
        let comments = poisson_comments(a, &g);
        (g.matrix, g.rhs, comments, Some(g.cells))
    };
    let name = a.out.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".mtx").unwrap_or(&name).to_string();
    let rhs_path = a.out.with_file_name(format!("{stem}.rhs.mtx"));
    let cells_path = a.out.with_file_name(format!("{stem}.cells.mtx"));
    if !a.force {
        for path in [&a.out, &rhs_path].into_iter().chain(cells.as_ref().map(|_| &cells_path)) {
            if path.exists() {
                return Err(DatasetError::Exists { path: path.clone() });
            }
        }
    }
    ansatz_datasets::mtx::write_matrix(&a.out, &matrix, &comments, a.force)?;
    ansatz_datasets::mtx::write_vector(&rhs_path, &rhs, &comments, a.force)?;
    if let Some(cells) = &cells {
        let note = vec![
            format!("the grid cell (0-based, x fastest) of each unknown of {}", a.out.display()),
            comments.last().cloned().unwrap_or_default(),
        ];
        let v: Vec<f64> = cells.iter().map(|&c| c as f64).collect();
        ansatz_datasets::mtx::write_vector(&cells_path, &v, &note, a.force)?;
    }
    println!(
        "{}: {} x {} matrix, {} nonzeros; {}: right-hand side{}",
        a.out.display(),
        matrix.nrows(),
        matrix.ncols(),
        matrix.nnz(),
        rhs_path.display(),
        if cells.is_some() { format!("; {}: the cell of each unknown", cells_path.display()) } else { String::new() }
    );
    Ok(())
}
