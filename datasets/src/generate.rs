//! Trajectories from the solvers, and dataset generation with writing overlapped with solving.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use ansatz_solvers::fv::{Boundary, FvBurgers1d, FvBurgers2d};
use ansatz_solvers::prelude::*;

use crate::config::{Forcing, Pde, Scheme, Spec};
use crate::error::{DatasetError, Result};
use crate::rng::SampleRng;
use crate::samplers::SampleGrid;
use crate::schema::{Field, GridType, Layout, ParameterInfo};
use crate::writer::DatasetWriter;

/// What a solve needs besides the initial condition and ν.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setup {
    pub pde: Pde,
    /// Points per axis `(nx, ny)` (ny = 1 in 1D).
    pub nx: usize,
    pub ny: usize,
    /// Domain size per axis.
    pub lx: f64,
    pub ly: f64,
    pub scheme: Scheme,
    /// `[x, y]` boundaries, each `[lower, upper]`.
    pub bc: [[Boundary; 2]; 2],
    /// Time between saved levels and how many are saved after t = 0.
    pub save_every: f64,
    pub frames: usize,
    pub cfl: f64,
    /// A fixed internal step (rounded down to divide `save_every`), or `None` for the CFL step of each
    /// initial condition.
    pub dt: Option<f64>,
    /// Time integrated from the initial condition before level 0 is saved (0: none).
    pub spin_up: f64,
    /// Navier–Stokes forcing and drag (zero otherwise).
    pub forcing: Forcing,
}

impl Setup {
    /// The setup of a generation spec.
    pub fn of(spec: &Spec) -> Self {
        let two_d = spec.pde.two_d();
        Setup {
            pde: spec.pde,
            nx: spec.n,
            ny: if two_d { spec.n } else { 1 },
            lx: spec.length,
            ly: if two_d { spec.length } else { 1.0 },
            scheme: spec.scheme,
            bc: spec.bc,
            save_every: spec.save_every,
            frames: spec.frames,
            cfl: spec.cfl,
            dt: spec.dt,
            spin_up: spec.spin_up,
            forcing: spec.forcing,
        }
    }

    /// The grid initial conditions are sampled on.
    pub fn sample_grid(&self) -> SampleGrid {
        SampleGrid {
            nx: self.nx,
            ny: self.ny,
            lx: self.lx,
            ly: self.ly,
            cell_centred: self.grid_type() == GridType::CellCentered,
        }
    }

    /// Cell centres or collocation points.
    pub fn grid_type(&self) -> GridType {
        match self.scheme {
            Scheme::FiniteVolume(..) => GridType::CellCentered,
            Scheme::Spectral => GridType::SpectralCollocation,
        }
    }

    /// Values per sample and time level.
    pub fn frame_len(&self) -> usize {
        self.pde.components().len() * self.nx * self.ny
    }
}

/// A solved trajectory.
#[derive(Clone, Debug)]
pub struct Trajectory {
    /// Every saved level, layout `(time, component, space)`, the initial condition first.
    pub data: Vec<f64>,
    /// The internal time step used.
    pub dt: f64,
}

fn run<S: Stepper>(s: &S, u0: &[f64], setup: &Setup, per_frame: usize, sample: usize) -> Result<Vec<f64>> {
    let n = u0.len();
    let mut data = Vec::with_capacity(n * (setup.frames + 1));
    data.extend_from_slice(u0);
    let mut u = u0.to_vec();
    let mut w = s.work();
    for f in 1..=setup.frames {
        s.advance(&mut u, per_frame, &mut w);
        if u.iter().any(|x| !x.is_finite()) {
            // find the first bad step of this frame for the message
            let mut v = data[(f - 1) * n..f * n].to_vec();
            let mut step = (f - 1) * per_frame;
            for _ in 0..per_frame {
                s.step(&mut v, &mut w);
                step += 1;
                if v.iter().any(|x| !x.is_finite()) {
                    break;
                }
            }
            return Err(DatasetError::Blowup { sample, step, time: step as f64 * s.dt() });
        }
        data.extend_from_slice(&u);
    }
    Ok(data)
}

/// The time stepper of a dataset's setup, for any PDE and scheme the generator supports: what
/// [`trajectory`] integrates with, and what a solver-in-the-loop model steps through.
pub enum AnyStepper {
    Burgers1dFv(ExplicitRk<FvBurgers1d>),
    Burgers2dFv(ExplicitRk<FvBurgers2d>),
    Burgers1dSpectral(Etdrk4<SpectralBurgers1d>),
    Burgers2dSpectral(Etdrk4<SpectralBurgers2d>),
    NavierStokes2d(Etdrk4<SpectralNavierStokes2d>),
}

/// The scratch space of an [`AnyStepper`] (made once per sample and solve, so its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum AnyStepperWork {
    Burgers1dFv(<ExplicitRk<FvBurgers1d> as Stepper>::Work),
    Burgers2dFv(<ExplicitRk<FvBurgers2d> as Stepper>::Work),
    Burgers1dSpectral(<Etdrk4<SpectralBurgers1d> as Stepper>::Work),
    Burgers2dSpectral(<Etdrk4<SpectralBurgers2d> as Stepper>::Work),
    NavierStokes2d(<Etdrk4<SpectralNavierStokes2d> as Stepper>::Work),
}

/// Runs `$body` with `$s` bound to the stepper inside `$self` (and `$w` to its work when given).
macro_rules! each_stepper {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            AnyStepper::Burgers1dFv($s) => $body,
            AnyStepper::Burgers2dFv($s) => $body,
            AnyStepper::Burgers1dSpectral($s) => $body,
            AnyStepper::Burgers2dSpectral($s) => $body,
            AnyStepper::NavierStokes2d($s) => $body,
        }
    };
    ($self:expr, $w:expr, $s:ident, $wk:ident => $body:expr) => {
        match ($self, $w) {
            (AnyStepper::Burgers1dFv($s), AnyStepperWork::Burgers1dFv($wk)) => $body,
            (AnyStepper::Burgers2dFv($s), AnyStepperWork::Burgers2dFv($wk)) => $body,
            (AnyStepper::Burgers1dSpectral($s), AnyStepperWork::Burgers1dSpectral($wk)) => $body,
            (AnyStepper::Burgers2dSpectral($s), AnyStepperWork::Burgers2dSpectral($wk)) => $body,
            (AnyStepper::NavierStokes2d($s), AnyStepperWork::NavierStokes2d($wk)) => $body,
            _ => unreachable!("a stepper's work comes from the same stepper"),
        }
    };
}

impl Stepper for AnyStepper {
    type Work = AnyStepperWork;

    fn state_len(&self) -> usize {
        each_stepper!(self, s => s.state_len())
    }
    fn dt(&self) -> f64 {
        each_stepper!(self, s => s.dt())
    }
    fn order(&self) -> usize {
        each_stepper!(self, s => s.order())
    }
    fn work(&self) -> AnyStepperWork {
        match self {
            AnyStepper::Burgers1dFv(s) => AnyStepperWork::Burgers1dFv(s.work()),
            AnyStepper::Burgers2dFv(s) => AnyStepperWork::Burgers2dFv(s.work()),
            AnyStepper::Burgers1dSpectral(s) => AnyStepperWork::Burgers1dSpectral(s.work()),
            AnyStepper::Burgers2dSpectral(s) => AnyStepperWork::Burgers2dSpectral(s.work()),
            AnyStepper::NavierStokes2d(s) => AnyStepperWork::NavierStokes2d(s.work()),
        }
    }
    fn step(&self, u: &mut [f64], w: &mut AnyStepperWork) {
        each_stepper!(self, w, s, wk => s.step(u, wk))
    }
    fn advance(&self, u: &mut [f64], n: usize, w: &mut AnyStepperWork) {
        each_stepper!(self, w, s, wk => s.advance(u, n, wk))
    }
    fn step_jvp(&self, u: &[f64], du: &mut [f64], dnu: f64, w: &mut AnyStepperWork) {
        each_stepper!(self, w, s, wk => s.step_jvp(u, du, dnu, wk))
    }
    fn step_vjp(&self, u: &[f64], g: &mut [f64], w: &mut AnyStepperWork) -> f64 {
        each_stepper!(self, w, s, wk => s.step_vjp(u, g, wk))
    }
}

fn solver_err(e: ansatz_solvers::ConfigError) -> DatasetError {
    DatasetError::Config { origin: "solver".into(), message: e.to_string() }
}

fn navier_stokes(setup: &Setup) -> Result<SpectralNavierStokes2d> {
    let f = &setup.forcing;
    let source = ansatz_solvers::spectral::kolmogorov_forcing(setup.nx, setup.ny, setup.ly, f.amplitude, f.wavenumber);
    SpectralNavierStokes2d::new(setup.nx, setup.ny, [setup.lx, setup.ly])
        .and_then(|p| p.with_drag(f.drag))
        .and_then(|p| p.with_forcing(&source))
        .map_err(solver_err)
}

/// The stepper of `setup` with viscosity `nu` and time step `dt` (SSP-RK3 for finite volumes, ETDRK4 for the
/// pseudo-spectral schemes).
pub fn stepper(setup: &Setup, nu: f64, dt: f64) -> Result<AnyStepper> {
    let e = solver_err;
    Ok(match (setup.pde, setup.scheme) {
        (Pde::Burgers1d, Scheme::FiniteVolume(r, f)) => {
            let rhs = FvBurgers1d::new(setup.nx, setup.lx, nu, setup.bc[0], r, f).map_err(e)?;
            AnyStepper::Burgers1dFv(ExplicitRk::ssp_rk3(rhs, dt).map_err(e)?)
        }
        (Pde::Burgers2d, Scheme::FiniteVolume(r, f)) => {
            let rhs = FvBurgers2d::new(setup.nx, setup.ny, [setup.lx, setup.ly], nu, setup.bc[0], setup.bc[1], r, f)
                .map_err(e)?;
            AnyStepper::Burgers2dFv(ExplicitRk::ssp_rk3(rhs, dt).map_err(e)?)
        }
        (Pde::Burgers1d, Scheme::Spectral) => AnyStepper::Burgers1dSpectral(
            Etdrk4::new(SpectralBurgers1d::new(setup.nx, setup.lx).map_err(e)?, nu, dt).map_err(e)?,
        ),
        (Pde::Burgers2d, Scheme::Spectral) => {
            let pde = SpectralBurgers2d::new(setup.nx, setup.ny, [setup.lx, setup.ly]).map_err(e)?;
            AnyStepper::Burgers2dSpectral(Etdrk4::new(pde, nu, dt).map_err(e)?)
        }
        (Pde::NavierStokes2d, Scheme::Spectral) => {
            AnyStepper::NavierStokes2d(Etdrk4::new(navier_stokes(setup)?, nu, dt).map_err(e)?)
        }
        (Pde::NavierStokes2d, Scheme::FiniteVolume(..)) => {
            return Err(DatasetError::Config {
                origin: "scheme.name".into(),
                message: "navier-stokes2d is pseudo-spectral only (\"spectral\")".into(),
            });
        }
    })
}

/// The largest stable step of `setup` from the initial state `u0` (the CFL condition of the initial speed;
/// ETDRK4 treats diffusion exactly, so advection limits its step).
fn stable_step(setup: &Setup, u0: &[f64], nu: f64) -> Result<f64> {
    let umax = u0.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    let h2 = (setup.lx / setup.nx as f64).min(setup.ly / setup.ny as f64);
    Ok(match (setup.pde, setup.scheme) {
        (Pde::Burgers1d, Scheme::FiniteVolume(r, f)) => {
            FvBurgers1d::new(setup.nx, setup.lx, nu, setup.bc[0], r, f).map_err(solver_err)?.stable_dt(u0, setup.cfl)
        }
        (Pde::Burgers2d, Scheme::FiniteVolume(r, f)) => {
            FvBurgers2d::new(setup.nx, setup.ny, [setup.lx, setup.ly], nu, setup.bc[0], setup.bc[1], r, f)
                .map_err(solver_err)?
                .stable_dt(u0, setup.cfl)
        }
        (Pde::Burgers1d, Scheme::Spectral) => setup.cfl * (setup.lx / setup.nx as f64) / umax.max(1e-12),
        (Pde::Burgers2d, Scheme::Spectral) => 0.5 * setup.cfl * h2 / umax.max(1e-12),
        (Pde::NavierStokes2d, Scheme::Spectral) => {
            // from the initial velocity (a forced flow speeds up: its configs fix `time.dt`)
            let speed = navier_stokes(setup)?.velocity(u0).iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            0.5 * setup.cfl * h2 / speed.max(1e-12)
        }
        (Pde::NavierStokes2d, Scheme::FiniteVolume(..)) => {
            return Err(DatasetError::Config {
                origin: "scheme.name".into(),
                message: "navier-stokes2d is pseudo-spectral only (\"spectral\")".into(),
            });
        }
    })
}

/// The fewest steps of at most `target` that divide `interval`, and the step itself.
pub fn steps_per_interval(interval: f64, target: f64) -> (usize, f64) {
    let k = (interval / target * (1.0 - 1e-12)).ceil().max(1.0) as usize;
    (k, interval / k as f64)
}

/// Solves one trajectory from `u0` (layout `(component, space)`) with viscosity `nu`. `sample` only labels
/// errors.
pub fn trajectory(setup: &Setup, u0: &[f64], nu: f64, sample: usize) -> Result<Trajectory> {
    // the setup's fixed step, or the stable step of the initial state
    let target = match setup.dt {
        Some(dt) => dt,
        None => stable_step(setup, u0, nu)?,
    };
    let (k, dt) = steps_per_interval(setup.save_every, target);
    let s = stepper(setup, nu, dt)?;
    let mut u = u0.to_vec();
    if setup.spin_up > 0.0 {
        let steps = (setup.spin_up / dt * (1.0 - 1e-12)).ceil() as usize;
        s.advance(&mut u, steps, &mut s.work());
        if u.iter().any(|x| !x.is_finite()) {
            return Err(DatasetError::Blowup { sample, step: steps, time: steps as f64 * dt });
        }
    }
    Ok(Trajectory { data: run(&s, &u, setup, k, sample)?, dt })
}

/// Sample `i` of a spec: its ν, its initial condition, its trajectory. Depends only on `(spec.seed, i)`.
pub fn solve_sample(spec: &Spec, i: usize) -> Result<(Trajectory, f64)> {
    let setup = Setup::of(spec);
    let mut rng = SampleRng::new(spec.seed, i as u64);
    let nu = spec.nu.sample(&mut rng);
    let u0 = spec.ic.sample(&mut rng, &setup.sample_grid(), spec.pde.components().len());
    Ok((trajectory(&setup, &u0, nu, i)?, nu))
}

/// The file layout of a setup (shared by `generate` and `solve`).
#[allow(clippy::too_many_arguments)]
pub fn layout(
    setup: &Setup,
    samples: usize,
    x: Vec<f64>,
    y: Option<Vec<f64>>,
    bc_names: Vec<String>,
    precision: crate::schema::Precision,
    compression: i32,
    time_chunk: usize,
    text: Vec<(String, String)>,
    seed: Option<u64>,
) -> Layout {
    let fields = match setup.pde {
        Pde::Burgers1d => vec![Field { name: "u".into(), long_name: "velocity".into() }],
        Pde::Burgers2d => vec![
            Field { name: "u".into(), long_name: "velocity, x component".into() },
            Field { name: "v".into(), long_name: "velocity, y component".into() },
        ],
        Pde::NavierStokes2d => vec![Field { name: "omega".into(), long_name: "vorticity".into() }],
    };
    let mut extent = vec![setup.lx];
    if setup.pde.two_d() {
        extent.push(setup.ly);
    }
    Layout {
        pde: setup.pde.name().into(),
        fields,
        parameters: vec![
            ParameterInfo { name: "nu".into(), long_name: "kinematic viscosity".into(), simulation: true },
            ParameterInfo {
                name: "solver_dt".into(),
                long_name: "internal time step of the solver".into(),
                simulation: false,
            },
        ],
        samples,
        first_sample: 0,
        times: (0..=setup.frames).map(|f| f as f64 * setup.save_every).collect(),
        x,
        y,
        z: None,
        grid_type: setup.grid_type(),
        extent,
        bc: bc_names,
        precision,
        compression,
        time_chunk: time_chunk.max(1),
        text,
        seed,
        context_frames: 1,
    }
}

/// Solves samples `start..total` on all cores while the calling thread writes the finished ones in order;
/// `solve(k)` returns sample k's data `(time, component, space)` and its parameter values. Workers claim samples
/// in index order and stay at most a few samples ahead of the writer, so memory stays bounded however unequal the
/// samples' costs are. Stops at the first error, leaving the samples before it written.
pub fn write_in_parallel<F>(
    writer: &mut DatasetWriter,
    start: usize,
    total: usize,
    solve: F,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<()>
where
    F: Fn(usize) -> Result<(Vec<f64>, Vec<f64>)> + Sync,
{
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    progress(start, total);
    let workers = rayon::current_num_threads().max(1);
    let window = 4 * workers;
    let next = AtomicUsize::new(start);
    let abort = AtomicBool::new(false);
    // samples written so far, and a condition variable to wait for the writer to advance
    let written = (Mutex::new(start), Condvar::new());
    let (tx, rx) = sync_channel::<(usize, Result<(Vec<f64>, Vec<f64>)>)>(window);
    let mut failure = None;
    let (solve, next, abort, written) = (&solve, &next, &abort, &written);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            scope.spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= total || abort.load(Ordering::Relaxed) {
                        return;
                    }
                    {
                        let mut w = written.0.lock().unwrap_or_else(|e| e.into_inner());
                        while k >= *w + window && !abort.load(Ordering::Relaxed) {
                            w = written.1.wait(w).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    if abort.load(Ordering::Relaxed) || tx.send((k, solve(k))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut expect = start;
        'receive: for (k, r) in rx.iter() {
            pending.insert(k, r);
            while let Some(r) = pending.remove(&expect) {
                match r.and_then(|(d, p)| writer.write_sample(expect, &d, &p)) {
                    Ok(()) => {
                        expect += 1;
                        progress(expect, total);
                        *written.0.lock().unwrap_or_else(|e| e.into_inner()) = expect;
                        written.1.notify_all();
                    }
                    Err(e) => {
                        failure = Some(e);
                        break 'receive;
                    }
                }
            }
        }
        abort.store(true, Ordering::Relaxed);
        written.1.notify_all();
        drop(rx);
    });
    failure.map_or(Ok(()), Err)
}

/// Options of [`generate`].
#[derive(Clone, Debug, Default)]
pub struct GenerateOptions {
    pub resume: bool,
    pub force: bool,
    /// The command line, for the `history` attribute.
    pub history: String,
    /// Only these samples of the dataset (one shard of a distributed run); all of them when `None`.
    pub range: Option<std::ops::Range<usize>>,
}

/// Writes samples of a dataset with `layout` (whose `samples` is the dataset's total) into `out`: all of them,
/// or the shard `opts.range`, creating or resuming the file; `solve(k)` receives global sample indices.
pub fn write_dataset<F>(
    mut layout: Layout,
    out: &Path,
    opts: &GenerateOptions,
    solve: F,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GenerateReport>
where
    F: Fn(usize) -> Result<(Vec<f64>, Vec<f64>)> + Sync,
{
    let range = opts.range.clone().unwrap_or(0..layout.samples);
    if range.end > layout.samples {
        return Err(DatasetError::Config {
            origin: "sample range".into(),
            message: format!("{range:?} exceeds {} samples", layout.samples),
        });
    }
    layout.samples = range.len();
    layout.first_sample = range.start as u64;
    if opts.resume && !opts.force && !crate::writer::partial_path(out).exists() && out.exists() {
        // nothing left to do if the file is already complete with the same configuration
        let ds = crate::reader::Dataset::open(out)?;
        let config = |l: &Layout| l.text.iter().find(|(k, _)| k == "generation_config").map(|(_, v)| v.clone());
        if ds.samples_complete == layout.samples && ds.text_attribute("generation_config") == config(&layout) {
            return Ok(GenerateReport { path: out.to_path_buf(), solved: 0, resumed_from: layout.samples });
        }
        return Err(DatasetError::NotResumable {
            path: out.to_path_buf(),
            reason: "it is complete but was made with a different configuration; pass --force to replace it".into(),
        });
    }
    let mut writer = if opts.resume && !opts.force {
        DatasetWriter::resume(out, &layout)?
    } else {
        DatasetWriter::create(out, &layout, opts.force)?
    };
    let start = writer.samples_complete();
    write_in_parallel(&mut writer, start, range.len(), |k| solve(range.start + k), progress)?;
    let path = writer.finish()?;
    Ok(GenerateReport { path, solved: range.len() - start, resumed_from: start })
}

/// Result of [`generate`].
#[derive(Clone, Debug)]
pub struct GenerateReport {
    pub path: PathBuf,
    /// Samples solved by this run (fewer than the total after `--resume`).
    pub solved: usize,
    pub resumed_from: usize,
}

/// Generates the dataset of `spec` into `out`: samples are solved in parallel (rayon) while the calling thread
/// writes finished ones in order; `progress(done, total)` is called after each written sample.
pub fn generate(
    spec: &Spec,
    out: &Path,
    opts: &GenerateOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<GenerateReport> {
    let setup = Setup::of(spec);
    let g = setup.sample_grid();
    let x: Vec<f64> = (0..g.nx).map(|i| g.x(i)).collect();
    let y = spec.pde.two_d().then(|| (0..g.ny).map(|j| g.y(j)).collect());
    let text = vec![
        ("title".to_string(), format!("{} trajectories generated by Ansatz", spec.pde.name())),
        (
            "source".to_string(),
            format!(
                "ansatz-solvers {}: {}; internal dt per sample in variable solver_dt ({})",
                env!("CARGO_PKG_VERSION"),
                spec.scheme.describe(),
                match spec.dt {
                    Some(dt) => format!("fixed {dt}, rounded to divide save_every"),
                    None => format!("CFL {} on the initial condition", spec.cfl),
                }
            ),
        ),
        ("history".to_string(), opts.history.clone()),
        ("initial_condition".to_string(), spec.ic.describe()),
        ("nu_distribution".to_string(), spec.nu.describe()),
        ("generation_config".to_string(), spec.config_text.clone()),
    ];
    let layout = layout(
        &setup,
        spec.samples,
        x,
        y,
        spec.bc_names.clone(),
        spec.precision,
        spec.compression,
        spec.time_chunk,
        text,
        Some(spec.seed),
    );
    write_dataset(layout, out, opts, |k| solve_sample(spec, k).map(|(t, nu)| (t.data, vec![nu, t.dt])), &mut progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    #[test]
    fn samples_depend_only_on_seed_and_index() {
        let spec = load(
            "burgers1d",
            None,
            &["grid.n=32".into(), "time.t_end=0.1".into(), "time.save_every=0.05".into()],
            Some(4),
            Some(3),
        )
        .unwrap();
        let (a, nu_a) = solve_sample(&spec, 2).unwrap();
        let more = load(
            "burgers1d",
            None,
            &["grid.n=32".into(), "time.t_end=0.1".into(), "time.save_every=0.05".into()],
            Some(40),
            Some(3),
        )
        .unwrap();
        let (b, nu_b) = solve_sample(&more, 2).unwrap();
        assert_eq!((a.data.clone(), nu_a), (b.data, nu_b));
        let (c, _) = solve_sample(&spec, 3).unwrap();
        assert_ne!(a.data, c.data);
        assert_eq!(a.data.len(), 3 * 32);
    }
}
