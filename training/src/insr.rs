//! INSR: implicit neural spatial representations as the spatial discretisation of a time-dependent PDE (Chen,
//! Wu, Li, Wang, Xu and Zheng, ICLR 2023). The field at step n is a SIREN `f(x; θ_n)`; a time step is the
//! optimisation
//!
//! ```text
//! θ_{n+1} = argmin_θ  mean_{x ∈ M} ℓ(θ; θ_n)²  +  w_b · (boundary penalty),
//! ```
//!
//! warm-started from `θ_n`, over points `M` drawn afresh at every iteration. Spatial derivatives come from
//! [`ansatz_operators::jet`] (exact, no finite differences in x), the previous network is a frozen copy evaluated
//! at the same points, Adam is re-created at every step with a plateau schedule, and a step stops when the
//! learning rate falls to its floor or at the iteration cap. Everything random is a function of
//! `(seed, step, iteration)`, so a solve is reproducible and `--resume` continues it exactly. `docs/methods/insr.md`
//! has the equations.
//!
//! A solve writes the field sampled on a grid in the dataset format, and the weights of every time step in
//! `OUT.insr/` (`setup.json`, `step-NNNNNN.f32`), from which the field can be sampled anywhere and an interrupted
//! solve resumes.

use std::path::{Path, PathBuf};

use ansatz_datasets::schema::{Field, GridType, Layout, ParameterInfo, Precision};
use ansatz_datasets::writer::DatasetWriter;
use ansatz_operators::flat;
use ansatz_operators::init::Init;
use ansatz_operators::jet::Jet;
use ansatz_operators::siren::{Siren, SirenConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{OptimiserConfig, OptimiserKind};
use crate::engine::{TrainError, backward_into, splitmix, write_atomically};
use crate::optim::{self, OptimiserState};

/// The network and the optimisation of every time step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsrSettings {
    /// SIREN width, sine layers after the first, and ω₀.
    pub width: usize,
    pub hidden: usize,
    pub omega: f64,
    /// Adam's learning rate at the start of every step.
    pub lr: f64,
    /// Points drawn per iteration.
    pub samples: usize,
    /// Iteration cap per time step (and for the initial fit).
    pub max_iters: usize,
    /// Iterations without a relative improvement of 1e-4 before the learning rate is multiplied by `lr_factor`.
    pub patience: usize,
    pub lr_factor: f64,
    /// A step ends once the learning rate falls to this value.
    pub lr_floor: f64,
    /// Weight of the boundary penalty.
    pub boundary_weight: f64,
    /// Seeds the weights and every point set.
    pub seed: u64,
}

impl Default for InsrSettings {
    /// The reference's 1D advection setup (2 × 20 SIREN, 5000 points, lr 1e-4, plateau 500, cap 20 000).
    fn default() -> Self {
        Self {
            width: 20,
            hidden: 2,
            omega: 30.0,
            lr: 1e-4,
            samples: 5000,
            max_iters: 20_000,
            patience: 500,
            lr_factor: 0.1,
            lr_floor: 1.1e-8,
            boundary_weight: 1.0,
            seed: 0,
        }
    }
}

/// A PDE INSR integrates, with its domain and initial condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "pde", rename_all = "lowercase")]
pub enum InsrPde {
    /// `u_t + a u_x = 0` on `[lower, upper]`, `u = 0` at both ends (penalty), from the Gaussian
    /// `exp(−(x − center)² / (2 width²))`; the midpoint rule in time.
    Advection1d { speed: f64, lower: f64, upper: f64, center: f64, width: f64 },
    /// `u_t + u u_x = ν u_xx` on the periodic `[0, length)` (penalty on the values and slopes at the two ends), from
    /// `amplitude · sin(2π x / length)`; the midpoint rule in time.
    Burgers1d { nu: f64, length: f64, amplitude: f64 },
}

impl InsrPde {
    /// The name of the PDE (the dataset's `pde` attribute).
    pub fn name(&self) -> &'static str {
        match self {
            InsrPde::Advection1d { .. } => "advection1d",
            InsrPde::Burgers1d { .. } => "burgers1d",
        }
    }

    /// `[lower, upper]` of x.
    pub fn domain(&self) -> (f64, f64) {
        match self {
            InsrPde::Advection1d { lower, upper, .. } => (*lower, *upper),
            InsrPde::Burgers1d { length, .. } => (0.0, *length),
        }
    }

    /// The initial condition at `x`.
    pub fn initial(&self, x: f64) -> f64 {
        match self {
            InsrPde::Advection1d { center, width, .. } => (-(x - center).powi(2) / (2.0 * width * width)).exp(),
            InsrPde::Burgers1d { length, amplitude, .. } => amplitude * (2.0 * std::f64::consts::PI * x / length).sin(),
        }
    }

    /// The exact solution at `(x, t)` where one is known (advection: the translate of the initial condition).
    pub fn exact(&self, x: f64, t: f64) -> Option<f64> {
        match self {
            InsrPde::Advection1d { speed, .. } => Some(self.initial(x - speed * t)),
            InsrPde::Burgers1d { .. } => None,
        }
    }

    fn check(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::input(m));
        let (lo, hi) = self.domain();
        if !(lo.is_finite() && hi.is_finite() && hi > lo) {
            return bad(format!("the domain [{lo}, {hi}] is empty or not finite"));
        }
        match self {
            InsrPde::Advection1d { speed, center, width, .. } => {
                if !(speed.is_finite() && center.is_finite() && width.is_finite() && *width > 0.0) {
                    return bad("advection1d: `a`, `center` must be finite and `width` positive".into());
                }
            }
            InsrPde::Burgers1d { nu, amplitude, .. } => {
                if !(nu.is_finite() && *nu >= 0.0 && amplitude.is_finite()) {
                    return bad("burgers1d: `nu` must be finite and non-negative, `amplitude` finite".into());
                }
            }
        }
        Ok(())
    }
}

/// What a solve needs besides the PDE and the settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InsrRun {
    pub pde: InsrPde,
    pub settings: InsrSettings,
    /// Time step of the integrator, final time and the interval between stored levels (a multiple of `dt`).
    pub dt: f64,
    pub t_end: f64,
    pub save_every: f64,
    /// Cells of the output grid (cell centres).
    pub grid: usize,
}

/// One finished optimisation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Time step (0: the fit of the initial condition).
    pub step: usize,
    pub iterations: usize,
    /// The last iteration's loss and learning rate.
    pub loss: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// Progress of a solve.
pub enum Progress<'a> {
    /// Starting step `step` of `steps` (0: the initial fit).
    Step {
        step: usize,
        steps: usize,
    },
    /// Iteration `iteration` of the current step, with its loss.
    Iteration {
        iteration: usize,
        cap: usize,
        loss: f64,
    },
    Done(&'a StepReport),
    Message(&'a str),
}

/// What a solve did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InsrSummary {
    pub steps: Vec<StepReport>,
    pub parameters: usize,
    /// Mean absolute and relative L2 error against the exact solution over the stored levels (where known).
    pub exact_mae: Option<f64>,
    pub exact_rel_l2: Option<f64>,
    /// Steps resumed from `OUT.insr/` rather than solved.
    pub resumed: usize,
    pub output: PathBuf,
}

const FILE_VERSION: u32 = 1;

/// `OUT.insr/`, next to the output.
pub fn weights_dir(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.insr", out.display()))
}

fn step_file(dir: &Path, step: usize) -> PathBuf {
    dir.join(format!("step-{step:06}.f32"))
}

#[derive(Serialize, Deserialize, PartialEq)]
struct Setup {
    version: u32,
    ansatz_version: String,
    run: InsrRun,
    layout: Vec<(String, Vec<usize>)>,
}

impl InsrRun {
    /// Steps of the integrator and the stride between stored ones.
    fn schedule(&self) -> Result<(usize, usize), TrainError> {
        let whole = |a: f64, b: f64, what: &str| -> Result<usize, TrainError> {
            let r = a / b;
            let n = r.round();
            if !(a.is_finite() && b.is_finite() && b > 0.0 && n >= 1.0 && (r - n).abs() <= 1e-9 * r.max(1.0)) {
                return Err(TrainError::input(format!("{what}: {a} is not a whole multiple of {b}")));
            }
            Ok(n as usize)
        };
        let steps = whole(self.t_end, self.dt, "--t-end and dt")?;
        let stride = whole(self.save_every, self.dt, "--save-every and dt")?;
        if steps % stride != 0 {
            return Err(TrainError::input(format!(
                "--save-every {} does not divide --t-end {}",
                self.save_every, self.t_end
            )));
        }
        Ok((steps, stride))
    }

    fn check(&self) -> Result<(), TrainError> {
        self.pde.check()?;
        let s = &self.settings;
        if s.width == 0 || s.samples < 2 || s.max_iters == 0 || self.grid < 2 {
            return Err(TrainError::input("`width`, `max_iters` must be positive, `samples` and `n` at least 2"));
        }
        if !(s.lr > 0.0 && s.lr_floor > 0.0 && s.lr_factor > 0.0 && s.lr_factor < 1.0 && s.omega > 0.0) {
            return Err(TrainError::input("`lr`, `lr_floor` and `omega` must be positive, `lr_factor` in (0, 1)"));
        }
        if !(s.boundary_weight >= 0.0 && s.boundary_weight.is_finite()) {
            return Err(TrainError::input("`boundary_weight` must be finite and non-negative"));
        }
        self.schedule().map(|_| ())
    }

    fn siren(&self) -> SirenConfig {
        let s = &self.settings;
        SirenConfig { inputs: 1, outputs: 1, width: s.width, hidden: s.hidden, omega: s.omega }
    }
}

/// Uniform points in `[lo, hi)` for `(seed, step, iteration)`, with `boundary` points within 1e-4 of each end.
fn points(seed: u64, step: usize, iteration: usize, n: usize, boundary: usize, (lo, hi): (f64, f64)) -> Vec<f32> {
    let mut state = seed
        ^ (step as u64).wrapping_mul(0xA24B_AED4_963E_E407)
        ^ (iteration as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25);
    let mut unit = || (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    let mut x: Vec<f32> = (0..n).map(|_| (lo + (hi - lo) * unit()) as f32).collect();
    for i in 0..boundary {
        let d = 1e-4 * unit();
        x.push(if i % 2 == 0 { lo + d } else { hi - d } as f32);
    }
    x
}

/// Values, slopes and second derivatives of a network at points, as plain vectors.
struct Sampled {
    value: Vec<f32>,
    dx: Vec<f32>,
    dxx: Vec<f32>,
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

fn sample(net: &Siren, x: &[f32], device: &Device) -> Sampled {
    let xs = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [x.len(), 1]), device);
    let jet = net.forward_jet(&Jet::coordinates(xs, true));
    let second = jet.second.clone().unwrap_or_default();
    Sampled {
        value: to_vec(jet.value),
        dx: jet.tangents.first().cloned().map(to_vec).unwrap_or_default(),
        dxx: second.first().cloned().map(to_vec).unwrap_or_default(),
    }
}

fn column(v: &[f32], device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v.to_vec(), [v.len(), 1]), device)
}

/// The solver: the network on the autodiff device for the losses and a plain copy for the frozen previous field
/// and the output.
struct Integrator<'a> {
    run: &'a InsrRun,
    plain: Device,
    ad: Device,
    template_ad: Siren,
    template_plain: Siren,
    adam: OptimiserConfig,
}

impl<'a> Integrator<'a> {
    fn new(run: &'a InsrRun) -> Self {
        let plain = Device::flex();
        let ad = plain.clone().autodiff();
        let cfg = run.siren();
        let template_ad = Siren::new(&cfg, &mut Init::new(run.settings.seed, &ad));
        let template_plain = Siren::new(&cfg, &mut Init::new(run.settings.seed, &plain));
        let adam =
            OptimiserConfig { kind: OptimiserKind::Adam, weight_decay: 0.0, clip_norm: 0.0, ..Default::default() };
        Self { run, plain, ad, template_ad, template_plain, adam }
    }

    fn initial_params(&self) -> Vec<f32> {
        flat::flatten(&self.template_plain).iter().map(|v| *v as f32).collect()
    }

    fn plain_net(&self, params: &[f32]) -> Siren {
        flat::unflatten(self.template_plain.clone(), params)
    }

    /// The loss of the network `net` at step `step` (0: the initial fit) on the points `x` (the last `nb` of them
    /// at the boundaries), given the previous field sampled there.
    fn loss(&self, net: &Siren, step: usize, x: &[f32], nb: usize, prev: Option<&Sampled>) -> Tensor<1> {
        let dt = self.run.dt as f32;
        let n = x.len() - nb;
        let xs = column(x, &self.ad);
        let needs_second = matches!(self.run.pde, InsrPde::Burgers1d { .. }) && step > 0;
        let jet = net.forward_jet(&Jet::coordinates(xs, needs_second));
        let interior = |t: Tensor<2>| t.narrow(0, 0, n);
        let wb = self.run.settings.boundary_weight;
        let Some(prev) = prev else {
            // the initial fit: least squares on the initial condition everywhere
            let target: Vec<f32> = x.iter().map(|&v| self.run.pde.initial(v as f64) as f32).collect();
            return (jet.value - column(&target, &self.ad)).square().mean();
        };
        let c = |v: &[f32]| column(&v[..n], &self.ad);
        let (f, fx) = (interior(jet.value.clone()), interior(jet.tangents[0].clone()));
        match &self.run.pde {
            InsrPde::Advection1d { speed, .. } => {
                let a = *speed as f32;
                let r = (f - c(&prev.value)).div_scalar(dt) + (fx + c(&prev.dx)).mul_scalar(a / 2.0);
                let mut loss = r.square().mean();
                if nb > 0 && wb > 0.0 {
                    loss = loss + jet.value.narrow(0, n, nb).square().mean().mul_scalar(wb);
                }
                loss
            }
            InsrPde::Burgers1d { nu, length, .. } => {
                let nu = *nu as f32;
                let second = jet.second.clone().unwrap_or_default();
                let fxx = interior(second[0].clone());
                let (pv, pdx, pdxx) = (c(&prev.value), c(&prev.dx), c(&prev.dxx));
                let advect = f.clone() * fx + pv.clone() * pdx;
                let r = (f - pv).div_scalar(dt) + advect.mul_scalar(0.5) - (fxx + pdxx).mul_scalar(nu / 2.0);
                let mut loss = r.square().mean();
                if nb > 0 && wb > 0.0 {
                    // periodicity: the value and slope at the boundary points equal those one period away
                    let b: Vec<f32> = x[n..]
                        .iter()
                        .map(|&v| if (v as f64) < length / 2.0 { v + *length as f32 } else { v - *length as f32 })
                        .collect();
                    let shifted = net.forward_jet(&Jet::coordinates(column(&b, &self.ad), false));
                    let dv = jet.value.narrow(0, n, nb) - shifted.value;
                    let ds = jet.tangents[0].clone().narrow(0, n, nb) - shifted.tangents[0].clone();
                    loss = loss + (dv.square().mean() + ds.square().mean()).mul_scalar(wb);
                }
                loss
            }
        }
    }

    /// One optimisation from `params` (step 0: the initial fit), with Adam re-created and the plateau schedule.
    fn optimise(
        &self,
        params: &mut Vec<f32>,
        step: usize,
        prev: Option<&[f32]>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<StepReport, TrainError> {
        let started = std::time::Instant::now();
        let s = &self.run.settings;
        let nb = if prev.is_some() && s.boundary_weight > 0.0 { (s.samples / 100).max(10) } else { 0 };
        let prev_net = prev.map(|p| self.plain_net(p));
        let mut state = OptimiserState::new(params.len());
        let mut grads = Vec::with_capacity(params.len());
        let mut model = self.template_ad.clone();
        let (mut lr, mut best, mut since) = (s.lr, f64::INFINITY, 0usize);
        let mut report = StepReport { step, iterations: 0, loss: f64::NAN, lr, seconds: 0.0 };
        for it in 0..s.max_iters {
            let x = points(s.seed, step, it, s.samples, nb, self.run.pde.domain());
            let prev_sampled = prev_net.as_ref().map(|p| sample(p, &x, &self.plain));
            model = flat::unflatten(model, params.as_slice());
            let loss = self.loss(&model, step, &x, nb, prev_sampled.as_ref());
            let value = backward_into(&model, loss, &mut grads);
            if !value.is_finite() || grads.iter().any(|g| !g.is_finite()) {
                return Err(TrainError::failed(format!(
                    "step {step}: the loss became non-finite at iteration {it} (lower `lr` or `dt`)"
                )));
            }
            optim::update(&self.adam, lr, params, &grads, &mut state);
            report.iterations = it + 1;
            report.loss = value;
            if value < best * (1.0 - 1e-4) {
                best = value;
                since = 0;
            } else {
                since += 1;
                if since > s.patience {
                    lr *= s.lr_factor;
                    since = 0;
                }
            }
            report.lr = lr;
            if it % 50 == 0 {
                progress(Progress::Iteration { iteration: it, cap: s.max_iters, loss: value });
            }
            if lr <= s.lr_floor {
                break;
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The field of `params` at the output grid's cell centres.
    fn on_grid(&self, params: &[f32]) -> Vec<f64> {
        let net = self.plain_net(params);
        let x: Vec<f32> = grid(self.run).iter().map(|v| *v as f32).collect();
        to_vec(net.forward(column(&x, &self.plain))).iter().map(|v| *v as f64).collect()
    }
}

/// Cell centres of the output grid.
fn grid(run: &InsrRun) -> Vec<f64> {
    let (lo, hi) = run.pde.domain();
    let h = (hi - lo) / run.grid as f64;
    (0..run.grid).map(|i| lo + (i as f64 + 0.5) * h).collect()
}

fn read_params(path: &Path, n: usize) -> Result<Vec<f32>, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    if bytes.len() != 4 * n {
        return Err(TrainError::input(format!(
            "{}: {} bytes, a network of {n} parameters needs {}",
            path.display(),
            bytes.len(),
            4 * n
        )));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Solves `run` and writes the field on the grid to `out` (refused if it exists, unless `force`) with the weights
/// of every step in `OUT.insr/`. With `resume`, the steps already in `OUT.insr/` (written by the same setup) are
/// kept and the solve continues after the last one.
pub fn solve(
    run: &InsrRun,
    out: &Path,
    resume: bool,
    force: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<InsrSummary, TrainError> {
    run.check()?;
    let (steps, stride) = run.schedule()?;
    if out.exists() && !force {
        return Err(TrainError::input(format!("{} exists: pass --force to replace it", out.display())));
    }
    let integ = Integrator::new(run);
    let mut params = integ.initial_params();
    let n = params.len();
    let dir = weights_dir(out);
    let setup = Setup {
        version: FILE_VERSION,
        ansatz_version: env!("CARGO_PKG_VERSION").into(),
        run: run.clone(),
        layout: flat::layout(&integ.template_plain),
    };
    let setup_text = serde_json::to_string_pretty(&setup).map_err(|e| TrainError::failed(e.to_string()))?;
    let mut first = 0;
    if dir.exists() {
        if !resume && !force {
            return Err(TrainError::input(format!(
                "{} exists (an earlier solve's weights): pass --resume to continue it or --force to start over",
                dir.display()
            )));
        }
        if resume {
            let found = std::fs::read_to_string(dir.join("setup.json")).map_err(|e| TrainError::io(&dir, e))?;
            let old: Setup = serde_json::from_str(&found)
                .map_err(|e| TrainError::input(format!("{}: {e}", dir.join("setup.json").display())))?;
            if old != setup {
                return Err(TrainError::input(format!(
                    "{}: written by another setup (PDE, settings, time step or grid differ); --force starts over",
                    dir.display()
                )));
            }
            while step_file(&dir, first).exists() && first <= steps {
                first += 1;
            }
        } else {
            std::fs::remove_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    write_atomically(&dir.join("setup.json"), setup_text.as_bytes())?;

    let mut stored: Vec<Vec<f64>> = vec![];
    let mut reports = vec![];
    let mut prev: Option<Vec<f32>> = None;
    for step in 0..=steps {
        let path = step_file(&dir, step);
        if step < first {
            params = read_params(&path, n)?;
        } else {
            progress(Progress::Step { step, steps });
            let report = integ.optimise(&mut params, step, prev.as_deref(), progress)?;
            let bytes: Vec<u8> = params.iter().flat_map(|v| v.to_le_bytes()).collect();
            write_atomically(&path, &bytes)?;
            progress(Progress::Done(&report));
            reports.push(report);
        }
        if step % stride == 0 {
            stored.push(integ.on_grid(&params));
        }
        prev = Some(params.clone());
    }
    if first > 0 {
        progress(Progress::Message(&format!("resumed after step {}", first - 1)));
    }

    // errors against the exact solution, where there is one
    let xs = grid(run);
    let times: Vec<f64> = (0..stored.len()).map(|i| i as f64 * run.save_every).collect();
    let (mut abs, mut count, mut num, mut den, mut known) = (0.0, 0usize, 0.0, 0.0, true);
    for (values, &t) in stored.iter().zip(&times) {
        for (v, &x) in values.iter().zip(&xs) {
            match run.pde.exact(x, t) {
                Some(e) => {
                    abs += (v - e).abs();
                    num += (v - e) * (v - e);
                    den += e * e;
                    count += 1;
                }
                None => known = false,
            }
        }
    }
    let (exact_mae, exact_rel_l2) = if known && count > 0 {
        (Some(abs / count as f64), Some((num / den.max(1e-300)).sqrt()))
    } else {
        (None, None)
    };

    write_output(run, out, force, &xs, &times, &stored)?;
    Ok(InsrSummary {
        steps: reports,
        parameters: n,
        exact_mae,
        exact_rel_l2,
        resumed: first,
        output: out.to_path_buf(),
    })
}

/// The field on the grid in the dataset format: one sample, the stored levels.
fn write_output(
    run: &InsrRun,
    out: &Path,
    force: bool,
    xs: &[f64],
    times: &[f64],
    stored: &[Vec<f64>],
) -> Result<(), TrainError> {
    let (lo, hi) = run.pde.domain();
    let bc = match run.pde {
        InsrPde::Advection1d { .. } => "dirichlet",
        InsrPde::Burgers1d { .. } => "periodic",
    };
    let (param_name, param_long, param_value) = match run.pde {
        InsrPde::Advection1d { speed, .. } => ("a", "advection speed", speed),
        InsrPde::Burgers1d { nu, .. } => ("nu", "viscosity", nu),
    };
    let setup = serde_json::to_string(run).map_err(|e| TrainError::failed(e.to_string()))?;
    let layout = Layout {
        pde: run.pde.name().into(),
        fields: vec![Field { name: "u".into(), long_name: "solution".into() }],
        parameters: vec![ParameterInfo { name: param_name.into(), long_name: param_long.into(), simulation: true }],
        samples: 1,
        first_sample: 0,
        times: times.to_vec(),
        x: xs.to_vec(),
        y: None,
        z: None,
        grid_type: GridType::CellCentered,
        extent: vec![hi - lo],
        bc: vec![bc.into()],
        precision: Precision::F64,
        compression: 4,
        time_chunk: 0,
        text: vec![
            (
                "title".into(),
                format!(
                    "INSR solve of {} (SIREN {} × {})",
                    run.pde.name(),
                    run.settings.hidden + 1,
                    run.settings.width
                ),
            ),
            (
                "source".into(),
                "Ansatz INSR: the field is a SIREN whose weights are optimised at every time step".into(),
            ),
            ("history".into(), ansatz_datasets::schema::history()),
            ("insr_setup".into(), setup),
            ("insr_weights".into(), weights_dir(out).display().to_string()),
        ],
        seed: Some(run.settings.seed),
        context_frames: 1,
    };
    let mut w = DatasetWriter::create(out, &layout, force).map_err(|e| TrainError::failed(e.to_string()))?;
    let data: Vec<f64> = stored.iter().flatten().copied().collect();
    w.write_sample(0, &data, &[param_value]).map_err(|e| TrainError::failed(e.to_string()))?;
    w.finish().map_err(|e| TrainError::failed(e.to_string()))?;
    Ok(())
}
