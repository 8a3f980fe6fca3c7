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
    /// The incompressible inviscid fluid (ρ = 1) in the box `[−1, 1]²` with no-penetration walls, by three
    /// optimisations per step: semi-Lagrangian advection, the pressure Poisson equation `Δp = ∇·u*` with
    /// `∂p/∂n = 0`, and the projection `u = u* − ∇p`. From the Taylor–Green vortex
    /// `u = sin(π(x+1)) cos(π(y+1)) / π`, `v = −cos(π(x+1)) sin(π(y+1)) / π`, a steady solution. The advection
    /// traces each point back along the previous velocity by `backtrace`.
    Euler2d { backtrace: Backtrace },
    /// Linear elastodynamics (plane strain) of the box `[0, lx] × [0, ly]`, clamped on the left (`u = 0`, a
    /// penalty of weight `clamp_weight`), loaded by the traction `traction` on the right and the body force `body`,
    /// free above and below; by implicit Euler as the minimisation of the incremental potential
    /// `∫ ρ/(2Δt²) |u − 2u_n + u_{n−1}|² + ½λ (tr ε)² + μ ε:ε − b·u  −  ∫_right t·u`. With `rho = 0` a step is the
    /// static equilibrium. From rest, undeformed.
    Elasticity2d {
        lx: f64,
        ly: f64,
        lambda: f64,
        mu: f64,
        rho: f64,
        traction: [f64; 2],
        body: [f64; 2],
        clamp_weight: f64,
    },
}

/// How the semi-Lagrangian advection finds the departure point `x_d` of the point `x`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backtrace {
    /// `x_d = x − Δt u_n(x − Δt/2 u_n(x))`: second order, the default.
    #[default]
    Midpoint,
    /// `x_d = x − Δt u_n(x)`, the reference's: first order, so the departure point of a rotating flow drifts
    /// outwards by `r (ωΔt)²/2` per step.
    Euler,
}

impl InsrPde {
    /// The name of the PDE (the dataset's `pde` attribute).
    pub fn name(&self) -> &'static str {
        match self {
            InsrPde::Advection1d { .. } => "advection1d",
            InsrPde::Burgers1d { .. } => "burgers1d",
            InsrPde::Euler2d { .. } => "euler2d",
            InsrPde::Elasticity2d { .. } => "elasticity2d",
        }
    }

    /// Space dimensions.
    pub fn dims(&self) -> usize {
        self.bounds().len()
    }

    /// `[lower, upper]` per axis.
    pub fn bounds(&self) -> Vec<(f64, f64)> {
        match self {
            InsrPde::Euler2d { .. } => vec![(-1.0, 1.0); 2],
            InsrPde::Elasticity2d { lx, ly, .. } => vec![(0.0, *lx), (0.0, *ly)],
            _ => vec![self.domain()],
        }
    }

    /// The fields written, and the networks' output components for them: one network for the 1D equations,
    /// a velocity network (u, v) and a pressure network (p) for the fluid.
    pub fn fields(&self) -> Vec<&'static str> {
        match self {
            InsrPde::Euler2d { .. } => vec!["u", "v", "p"],
            InsrPde::Elasticity2d { .. } => vec!["u", "v"],
            _ => vec!["u"],
        }
    }

    fn networks(&self) -> Vec<usize> {
        match self {
            InsrPde::Euler2d { .. } => vec![2, 1],
            InsrPde::Elasticity2d { .. } => vec![2],
            _ => vec![1],
        }
    }

    /// `[lower, upper]` of x.
    pub fn domain(&self) -> (f64, f64) {
        match self {
            InsrPde::Advection1d { lower, upper, .. } => (*lower, *upper),
            InsrPde::Burgers1d { length, .. } => (0.0, *length),
            InsrPde::Euler2d { .. } => (-1.0, 1.0),
            InsrPde::Elasticity2d { lx, .. } => (0.0, *lx),
        }
    }

    /// The initial condition of the first network's components at the point `x` (`dims` coordinates).
    pub fn initial(&self, x: &[f64]) -> Vec<f64> {
        let pi = std::f64::consts::PI;
        match self {
            InsrPde::Advection1d { center, width, .. } => {
                vec![(-(x[0] - center).powi(2) / (2.0 * width * width)).exp()]
            }
            InsrPde::Burgers1d { length, amplitude, .. } => vec![amplitude * (2.0 * pi * x[0] / length).sin()],
            InsrPde::Euler2d { .. } => {
                let (a, b) = (pi * (x[0] + 1.0), pi * (x[1] + 1.0));
                vec![a.sin() * b.cos() / pi, -a.cos() * b.sin() / pi]
            }
            InsrPde::Elasticity2d { .. } => vec![0.0, 0.0],
        }
    }

    /// The exact solution of the first network's components at `(x, t)` where one is known (advection: the
    /// translate of the initial condition; the Taylor–Green vortex: steady).
    pub fn exact(&self, x: &[f64], t: f64) -> Option<Vec<f64>> {
        match self {
            InsrPde::Advection1d { speed, .. } => Some(self.initial(&[x[0] - speed * t])),
            InsrPde::Burgers1d { .. } => None,
            InsrPde::Euler2d { .. } => Some(self.initial(x)),
            InsrPde::Elasticity2d { .. } => None,
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
            InsrPde::Euler2d { .. } => {}
            InsrPde::Elasticity2d { lx, ly, lambda, mu, rho, traction, body, clamp_weight } => {
                let finite = [*lx, *ly, *lambda, *mu, *rho, *clamp_weight]
                    .iter()
                    .chain(traction)
                    .chain(body)
                    .all(|v| v.is_finite());
                if !(finite
                    && *lx > 0.0
                    && *ly > 0.0
                    && *mu > 0.0
                    && *lambda >= 0.0
                    && *rho >= 0.0
                    && *clamp_weight > 0.0)
                {
                    return bad("elasticity2d: lengths, `mu` and `clamp_weight` must be positive, `lambda` and `rho` \
                                non-negative, all finite"
                        .into());
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Time step (0: the fit of the initial condition).
    pub step: usize,
    pub iterations: usize,
    /// The last iteration's loss and learning rate (of the last stage).
    pub loss: f64,
    pub lr: f64,
    /// The final loss of every stage (the fluid has three per step).
    pub stage_losses: Vec<f64>,
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
    /// The fluid: the largest relative change of the kinetic energy on the grid from the first stored level.
    pub energy_drift: Option<f64>,
    /// Steps resumed from `OUT.insr/` rather than solved.
    pub resumed: usize,
    pub output: PathBuf,
}

const FILE_VERSION: u32 = 2;

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

    /// One SIREN per network of the PDE.
    fn sirens(&self) -> Vec<SirenConfig> {
        let s = &self.settings;
        let d = self.pde.dims();
        self.pde
            .networks()
            .into_iter()
            .map(|m| SirenConfig { inputs: d, outputs: m, width: s.width, hidden: s.hidden, omega: s.omega })
            .collect()
    }
}

/// The points of one iteration: `n` interior points and, on every wall, `nb` points within 1e-4 of it.
struct Points {
    interior: Vec<f32>,
    /// `(axis, points)` per wall, lower side first.
    walls: Vec<(usize, Vec<f32>)>,
}

/// Uniform points for `(seed, step, stage, iteration)` in the PDE's box.
fn points(seed: u64, key: [usize; 3], n: usize, nb: usize, pde: &InsrPde) -> Points {
    let mut state = seed
        ^ (key[0] as u64).wrapping_mul(0xA24B_AED4_963E_E407)
        ^ (key[1] as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (key[2] as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25);
    let mut unit = || (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    let b = pde.bounds();
    let d = b.len();
    let interior = (0..n * d).map(|i| (b[i % d].0 + (b[i % d].1 - b[i % d].0) * unit()) as f32).collect();
    let mut walls = vec![];
    if nb > 0 {
        for (axis, &(lo, hi)) in b.iter().enumerate() {
            for upper in [false, true] {
                let mut pts = Vec::with_capacity(nb * d);
                for _ in 0..nb {
                    for (k, &(l, h)) in b.iter().enumerate() {
                        let v = if k == axis {
                            let e = 1e-4 * unit();
                            if upper { hi - e } else { lo + e }
                        } else {
                            l + (h - l) * unit()
                        };
                        pts.push(v as f32);
                    }
                }
                walls.push((axis, pts));
            }
        }
    }
    Points { interior, walls }
}

/// A network's values and derivatives at points as plain vectors: `value` `[n, m]`, and per axis the first
/// and (when asked) second derivatives, each `[n, m]`.
struct Sampled {
    value: Vec<f32>,
    grad: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

fn matrix(v: &[f32], cols: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v.to_vec(), [v.len() / cols, cols]), device)
}

fn sample(net: &Siren, x: &[f32], d: usize, second: bool, device: &Device) -> Sampled {
    let jet = net.forward_jet(&Jet::coordinates(matrix(x, d, device), second));
    Sampled {
        value: to_vec(jet.value),
        grad: jet.tangents.into_iter().map(to_vec).collect(),
        second: jet.second.unwrap_or_default().into_iter().map(to_vec).collect(),
    }
}

/// The mean of the squares of a tensor.
fn ms(t: Tensor<2>) -> Tensor<1> {
    t.square().mean()
}

/// The plateau schedule of a step: after more than `patience` losses in a row without an improvement of
/// `1e-4 |best|` on the best so far, the learning rate is multiplied by `factor`. The improvement is measured
/// against `|best|` because the incremental potentials of elasticity are negative at equilibrium, and the first
/// loss always counts as one.
#[derive(Clone, Debug)]
struct Plateau {
    lr: f64,
    best: f64,
    since: usize,
    patience: usize,
    factor: f64,
}

impl Plateau {
    fn new(s: &InsrSettings) -> Self {
        Self { lr: s.lr, best: f64::INFINITY, since: 0, patience: s.patience, factor: s.lr_factor }
    }

    fn observe(&mut self, value: f64) {
        if !self.best.is_finite() || value < self.best - 1e-4 * self.best.abs() {
            self.best = value;
            self.since = 0;
        } else {
            self.since += 1;
            if self.since > self.patience {
                self.lr *= self.factor;
                self.since = 0;
            }
        }
    }
}

/// The solver: every network on the autodiff device for the losses and a plain copy for the frozen fields and
/// the output. The state is the networks' parameters one after the other.
struct Integrator<'a> {
    run: &'a InsrRun,
    plain: Device,
    ad: Device,
    templates_ad: Vec<Siren>,
    templates_plain: Vec<Siren>,
    /// Each network's range of the state.
    ranges: Vec<std::ops::Range<usize>>,
    adam: OptimiserConfig,
}

impl<'a> Integrator<'a> {
    fn new(run: &'a InsrRun) -> Self {
        let plain = Device::flex();
        let ad = plain.clone().autodiff();
        let mut templates_ad = vec![];
        let mut templates_plain = vec![];
        let mut ranges = vec![];
        let mut at = 0;
        for (k, cfg) in run.sirens().iter().enumerate() {
            let seed = run.settings.seed.wrapping_add(k as u64);
            templates_ad.push(Siren::new(cfg, &mut Init::new(seed, &ad)));
            let net = Siren::new(cfg, &mut Init::new(seed, &plain));
            let n = flat::flatten(&net).len();
            ranges.push(at..at + n);
            at += n;
            templates_plain.push(net);
        }
        let adam =
            OptimiserConfig { kind: OptimiserKind::Adam, weight_decay: 0.0, clip_norm: 0.0, ..Default::default() };
        Self { run, plain, ad, templates_ad, templates_plain, ranges, adam }
    }

    fn initial_state(&self) -> Vec<f32> {
        self.templates_plain.iter().flat_map(|t| flat::flatten(t).into_iter().map(|v| v as f32)).collect()
    }

    /// Network `k` of `state` on the plain device.
    fn plain_net(&self, state: &[f32], k: usize) -> Siren {
        flat::unflatten(self.templates_plain[k].clone(), &state[self.ranges[k].clone()])
    }

    fn d(&self) -> usize {
        self.run.pde.dims()
    }

    /// Points with `nb` per wall when the stage has boundary terms.
    fn nb(&self, walls: bool) -> usize {
        let s = &self.run.settings;
        if walls && s.boundary_weight > 0.0 { (s.samples / 100).max(10) } else { 0 }
    }

    /// One optimisation of network `k` of `state` (warm-started from its current weights), with Adam re-created
    /// and the plateau schedule; `loss(net, points)` on the autodiff device.
    fn optimise(
        &self,
        state: &mut [f32],
        k: usize,
        key: [usize; 2],
        walls: bool,
        loss: &dyn Fn(&Siren, &Points) -> Tensor<1>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(usize, f64, f64), TrainError> {
        let s = &self.run.settings;
        let params = &mut state[self.ranges[k].clone()];
        let mut adam = OptimiserState::new(params.len());
        let mut grads = Vec::with_capacity(params.len());
        let mut model = self.templates_ad[k].clone();
        let mut plateau = Plateau::new(s);
        let (mut iterations, mut last) = (0, f64::NAN);
        let nb = self.nb(walls);
        for it in 0..s.max_iters {
            let pts = points(s.seed, [key[0], key[1], it], s.samples, nb, &self.run.pde);
            model = flat::unflatten(model, &*params);
            let value = backward_into(&model, loss(&model, &pts), &mut grads);
            if !value.is_finite() || grads.iter().any(|g| !g.is_finite()) {
                return Err(TrainError::failed(format!(
                    "step {}: the loss became non-finite at iteration {it} of stage {} (lower `lr` or `dt`)",
                    key[0], key[1]
                )));
            }
            optim::update(&self.adam, plateau.lr, params, &grads, &mut adam);
            iterations = it + 1;
            last = value;
            plateau.observe(value);
            if it % 50 == 0 {
                progress(Progress::Iteration { iteration: it, cap: s.max_iters, loss: value });
            }
            if plateau.lr <= s.lr_floor {
                break;
            }
        }
        Ok((iterations, last, plateau.lr))
    }

    /// Time step `step` from `prev` (step 0: the fit of the initial condition), in place on `state`.
    fn step(
        &self,
        state: &mut [f32],
        step: usize,
        prev: Option<&[f32]>,
        prev2: Option<&[f32]>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<StepReport, TrainError> {
        let started = std::time::Instant::now();
        let d = self.d();
        let (ad, plain) = (&self.ad, &self.plain);
        let dt = self.run.dt as f32;
        let wb = self.run.settings.boundary_weight as f32;
        let mut stages = vec![];
        let Some(prev) = prev else {
            // the initial fit: least squares on the initial condition
            let fit = |net: &Siren, p: &Points| {
                let target: Vec<f32> = p
                    .interior
                    .chunks(d)
                    .flat_map(|x| {
                        let x: Vec<f64> = x.iter().map(|v| *v as f64).collect();
                        self.run.pde.initial(&x).into_iter().map(|v| v as f32)
                    })
                    .collect();
                let m = target.len() * d / p.interior.len();
                ms(net.forward(matrix(&p.interior, d, ad)) - matrix(&target, m, ad))
            };
            stages.push(self.optimise(state, 0, [0, 0], false, &fit, progress)?);
            return Ok(report(step, &stages, started));
        };
        match &self.run.pde {
            InsrPde::Advection1d { speed, .. } => {
                let prev_net = self.plain_net(prev, 0);
                let a = *speed as f32;
                let loss = |net: &Siren, p: &Points| {
                    let pn = sample(&prev_net, &p.interior, 1, false, plain);
                    let jet = net.forward_jet(&Jet::coordinates(matrix(&p.interior, 1, ad), false));
                    let r = (jet.value - matrix(&pn.value, 1, ad)).div_scalar(dt)
                        + (jet.tangents[0].clone() + matrix(&pn.grad[0], 1, ad)).mul_scalar(a / 2.0);
                    let mut l = ms(r);
                    for (_, w) in &p.walls {
                        l = l + ms(net.forward(matrix(w, 1, ad))).mul_scalar(wb / 2.0);
                    }
                    l
                };
                stages.push(self.optimise(state, 0, [step, 0], true, &loss, progress)?);
            }
            InsrPde::Burgers1d { nu, length, .. } => {
                let prev_net = self.plain_net(prev, 0);
                let (nu, length) = (*nu as f32, *length as f32);
                let loss = |net: &Siren, p: &Points| {
                    let pn = sample(&prev_net, &p.interior, 1, true, plain);
                    let jet = net.forward_jet(&Jet::coordinates(matrix(&p.interior, 1, ad), true));
                    let second = jet.second.clone().unwrap_or_default();
                    let (f, fx, fxx) = (jet.value.clone(), jet.tangents[0].clone(), second[0].clone());
                    let (pv, pdx, pdxx) =
                        (matrix(&pn.value, 1, ad), matrix(&pn.grad[0], 1, ad), matrix(&pn.second[0], 1, ad));
                    let advect = f.clone() * fx + pv.clone() * pdx;
                    let r = (f - pv).div_scalar(dt) + advect.mul_scalar(0.5) - (fxx + pdxx).mul_scalar(nu / 2.0);
                    let mut l = ms(r);
                    // periodicity: values and slopes at the wall points equal those one period away
                    for (_, w) in &p.walls {
                        let b: Vec<f32> =
                            w.iter().map(|&v| if v < length / 2.0 { v + length } else { v - length }).collect();
                        let here = net.forward_jet(&Jet::coordinates(matrix(w, 1, ad), false));
                        let there = net.forward_jet(&Jet::coordinates(matrix(&b, 1, ad), false));
                        let dv = here.value - there.value;
                        let ds = here.tangents[0].clone() - there.tangents[0].clone();
                        l = l + (ms(dv) + ms(ds)).mul_scalar(wb / 2.0);
                    }
                    l
                };
                stages.push(self.optimise(state, 0, [step, 0], true, &loss, progress)?);
            }
            InsrPde::Euler2d { backtrace } => {
                // the no-penetration penalty: the normal velocity component on each wall
                let walls = |net: &Siren, p: &Points| {
                    let mut l: Option<Tensor<1>> = None;
                    for (axis, w) in &p.walls {
                        let normal = net.forward(matrix(w, 2, ad)).narrow(1, *axis, 1);
                        let t = ms(normal).mul_scalar(wb / 4.0);
                        l = Some(match l {
                            Some(a) => a + t,
                            None => t,
                        });
                    }
                    l
                };
                let add = |l: Tensor<1>, w: Option<Tensor<1>>| match w {
                    Some(w) => l + w,
                    None => l,
                };
                // 1. semi-Lagrangian advection, from the previous velocity
                let u_n = self.plain_net(prev, 0);
                let advect = |net: &Siren, p: &Points| {
                    let trace = |h: f32, from: &[f32]| {
                        let u = to_vec(u_n.forward(matrix(from, 2, plain)));
                        p.interior.iter().zip(&u).map(|(x, u)| (x - h * u).clamp(-1.0, 1.0)).collect::<Vec<f32>>()
                    };
                    let back = match backtrace {
                        Backtrace::Euler => trace(dt, &p.interior),
                        Backtrace::Midpoint => trace(dt, &trace(dt / 2.0, &p.interior)),
                    };
                    let target = to_vec(u_n.forward(matrix(&back, 2, plain)));
                    add(ms(net.forward(matrix(&p.interior, 2, ad)) - matrix(&target, 2, ad)), walls(net, p))
                };
                stages.push(self.optimise(state, 0, [step, 0], true, &advect, progress)?);
                // 2. pressure: Δp = ∇·u*, ∂p/∂n = 0
                let u_star = self.plain_net(state, 0);
                let pressure = |net: &Siren, p: &Points| {
                    let us = sample(&u_star, &p.interior, 2, false, plain);
                    // ∂u/∂x is component 0 of the x-tangent, ∂v/∂y component 1 of the y-tangent
                    let div: Vec<f32> =
                        us.grad[0].chunks(2).zip(us.grad[1].chunks(2)).map(|(gx, gy)| gx[0] + gy[1]).collect();
                    let jet = net.forward_jet(&Jet::coordinates(matrix(&p.interior, 2, ad), true));
                    let mut l = ms(jet.laplacian() - matrix(&div, 1, ad));
                    for (axis, w) in &p.walls {
                        let g = net.forward_jet(&Jet::coordinates(matrix(w, 2, ad), false));
                        l = l + ms(g.tangents[*axis].clone()).mul_scalar(wb / 4.0);
                    }
                    l
                };
                stages.push(self.optimise(state, 1, [step, 1], true, &pressure, progress)?);
                // 3. projection: u = u* − ∇p
                let p_net = self.plain_net(state, 1);
                let project = |net: &Siren, p: &Points| {
                    let us = to_vec(u_star.forward(matrix(&p.interior, 2, plain)));
                    let gp = sample(&p_net, &p.interior, 2, false, plain);
                    let target: Vec<f32> = us
                        .chunks(2)
                        .enumerate()
                        .flat_map(|(i, u)| [u[0] - gp.grad[0][i], u[1] - gp.grad[1][i]])
                        .collect();
                    add(ms(net.forward(matrix(&p.interior, 2, ad)) - matrix(&target, 2, ad)), walls(net, p))
                };
                stages.push(self.optimise(state, 0, [step, 2], true, &project, progress)?);
            }
            InsrPde::Elasticity2d { lx, ly, lambda, mu, rho, traction, body, clamp_weight } => {
                // u_{n−1} = u_n at the first step: the body starts at rest
                let (u_n, u_nm1) = (self.plain_net(prev, 0), self.plain_net(prev2.unwrap_or(prev), 0));
                let (lam, mu) = (*lambda as f32, *mu as f32);
                let inertia = (*rho / (2.0 * self.run.dt * self.run.dt)) as f32;
                let (area, ly) = ((lx * ly) as f32, *ly as f32);
                let (t, b) = ([traction[0] as f32, traction[1] as f32], [body[0] as f32, body[1] as f32]);
                let wc = *clamp_weight as f32;
                let potential = |net: &Siren, p: &Points| {
                    let x = matrix(&p.interior, 2, ad);
                    let jet = net.forward_jet(&Jet::coordinates(x, false));
                    let (gx, gy) = (jet.tangents[0].clone(), jet.tangents[1].clone());
                    let exx = gx.clone().narrow(1, 0, 1);
                    let eyy = gy.clone().narrow(1, 1, 1);
                    let exy = (gy.narrow(1, 0, 1) + gx.narrow(1, 1, 1)).mul_scalar(0.5);
                    let strain = (exx.clone() + eyy.clone()).square().mul_scalar(lam / 2.0)
                        + (exx.square() + eyy.square() + exy.square().mul_scalar(2.0)).mul_scalar(mu);
                    let u = jet.value;
                    let bu = u.clone().narrow(1, 0, 1).mul_scalar(b[0]) + u.clone().narrow(1, 1, 1).mul_scalar(b[1]);
                    let mut density = strain - bu;
                    if inertia > 0.0 {
                        let un = to_vec(u_n.forward(matrix(&p.interior, 2, plain)));
                        let unm1 = to_vec(u_nm1.forward(matrix(&p.interior, 2, plain)));
                        let pred: Vec<f32> = un.iter().zip(&unm1).map(|(a, c)| 2.0 * a - c).collect();
                        let acc = (u - matrix(&pred, 2, ad)).square().sum_dim(1);
                        density = density + acc.mul_scalar(inertia);
                    }
                    let mut e = density.mean().mul_scalar(area);
                    // walls: [left, right, bottom, top]
                    let clamp = net.forward(matrix(&p.walls[0].1, 2, ad));
                    e = e + clamp.square().sum_dim(1).mean().mul_scalar(wc * ly);
                    let right = net.forward(matrix(&p.walls[1].1, 2, ad));
                    let work = right.clone().narrow(1, 0, 1).mul_scalar(t[0]) + right.narrow(1, 1, 1).mul_scalar(t[1]);
                    e - work.mean().mul_scalar(ly)
                };
                stages.push(self.optimise(state, 0, [step, 0], true, &potential, progress)?);
            }
        }
        Ok(report(step, &stages, started))
    }

    /// The fields of `state` at the output grid's cell centres, layout `(field, space)` (y slowest in 2D).
    fn on_grid(&self, state: &[f32]) -> Vec<f64> {
        let x = grid_points(self.run);
        let xs: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let npts = xs.len() / self.d();
        let mut out = vec![];
        for k in 0..self.ranges.len() {
            let v = to_vec(self.plain_net(state, k).forward(matrix(&xs, self.d(), &self.plain)));
            let m = v.len() / npts;
            for c in 0..m {
                out.extend((0..npts).map(|i| v[i * m + c] as f64));
            }
        }
        out
    }
}

fn report(step: usize, stages: &[(usize, f64, f64)], started: std::time::Instant) -> StepReport {
    StepReport {
        step,
        iterations: stages.iter().map(|s| s.0).sum(),
        loss: stages.last().map_or(f64::NAN, |s| s.1),
        lr: stages.last().map_or(f64::NAN, |s| s.2),
        stage_losses: stages.iter().map(|s| s.1).collect(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Cells of the output grid per axis: `n` along x, in proportion along y.
fn cells(run: &InsrRun) -> Vec<usize> {
    let b = run.pde.bounds();
    let lx = b[0].1 - b[0].0;
    b.iter().map(|(lo, hi)| (((hi - lo) / lx * run.grid as f64).round() as usize).max(2)).collect()
}

/// Cell centres along each axis of the output grid.
fn axes(run: &InsrRun) -> Vec<Vec<f64>> {
    run.pde
        .bounds()
        .iter()
        .zip(cells(run))
        .map(|(&(lo, hi), n)| {
            let h = (hi - lo) / n as f64;
            (0..n).map(|i| lo + (i as f64 + 0.5) * h).collect()
        })
        .collect()
}

/// The output grid's points, flat `[points, dims]` (x fastest).
fn grid_points(run: &InsrRun) -> Vec<f64> {
    let a = axes(run);
    if a.len() == 1 {
        return a[0].clone();
    }
    let mut out = Vec::with_capacity(2 * a[0].len() * a[1].len());
    for &y in &a[1] {
        for &x in &a[0] {
            out.extend([x, y]);
        }
    }
    out
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
    let mut state = integ.initial_state();
    let n = state.len();
    let dir = weights_dir(out);
    let setup = Setup {
        version: FILE_VERSION,
        ansatz_version: env!("CARGO_PKG_VERSION").into(),
        run: run.clone(),
        layout: integ.templates_plain.iter().flat_map(flat::layout).collect(),
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
            while first <= steps && step_file(&dir, first).exists() {
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
    let mut prev2: Option<Vec<f32>> = None;
    if first > 0 {
        progress(Progress::Message(&format!("resuming after step {}", first - 1)));
    }
    for step in 0..=steps {
        let path = step_file(&dir, step);
        if step < first {
            state = read_params(&path, n)?;
        } else {
            progress(Progress::Step { step, steps });
            let report = integ.step(&mut state, step, prev.as_deref(), prev2.as_deref(), progress)?;
            let bytes: Vec<u8> = state.iter().flat_map(|v| v.to_le_bytes()).collect();
            write_atomically(&path, &bytes)?;
            progress(Progress::Done(&report));
            reports.push(report);
        }
        if step % stride == 0 {
            stored.push(integ.on_grid(&state));
        }
        prev2 = prev.take();
        prev = Some(state.clone());
    }

    let times: Vec<f64> = (0..stored.len()).map(|i| i as f64 * run.save_every).collect();
    let (exact_mae, exact_rel_l2) = exact_errors(run, &times, &stored);
    let energy_drift = matches!(run.pde, InsrPde::Euler2d { .. }).then(|| {
        let npts = cells(run).iter().product::<usize>();
        let ke: Vec<f64> = stored.iter().map(|v| v[..2 * npts].iter().map(|u| u * u).sum::<f64>()).collect();
        ke.iter().map(|k| (k / ke[0] - 1.0).abs()).fold(0.0, f64::max)
    });
    write_output(run, out, force, &times, &stored)?;
    Ok(InsrSummary {
        steps: reports,
        parameters: n,
        exact_mae,
        exact_rel_l2,
        energy_drift,
        resumed: first,
        output: out.to_path_buf(),
    })
}

/// Mean absolute and relative L2 errors of the first network's components against the exact solution over the
/// stored levels, when there is one.
fn exact_errors(run: &InsrRun, times: &[f64], stored: &[Vec<f64>]) -> (Option<f64>, Option<f64>) {
    let d = run.pde.dims();
    let pts = grid_points(run);
    let npts = pts.len() / d;
    let (mut abs, mut count, mut num, mut den) = (0.0, 0usize, 0.0, 0.0);
    for (values, &t) in stored.iter().zip(times) {
        for (i, x) in pts.chunks(d).enumerate() {
            let Some(e) = run.pde.exact(x, t) else { return (None, None) };
            for (c, e) in e.iter().enumerate() {
                let v = values[c * npts + i];
                abs += (v - e).abs();
                num += (v - e) * (v - e);
                den += e * e;
                count += 1;
            }
        }
    }
    if count == 0 {
        return (None, None);
    }
    (Some(abs / count as f64), Some((num / den.max(1e-300)).sqrt()))
}

/// The fields on the grid in the dataset format: one sample, the stored levels.
fn write_output(run: &InsrRun, out: &Path, force: bool, times: &[f64], stored: &[Vec<f64>]) -> Result<(), TrainError> {
    let a = axes(run);
    let two_d = run.pde.dims() == 2;
    let bc = match run.pde {
        InsrPde::Advection1d { .. } => "dirichlet",
        InsrPde::Burgers1d { .. } => "periodic",
        InsrPde::Euler2d { .. } => "wall",
        InsrPde::Elasticity2d { .. } => "clamped left, traction right, free top and bottom",
    };
    let (param_name, param_long, param_value) = match run.pde {
        InsrPde::Advection1d { speed, .. } => ("a", "advection speed", speed),
        InsrPde::Burgers1d { nu, .. } => ("nu", "viscosity", nu),
        InsrPde::Euler2d { .. } => ("nu", "viscosity", 0.0),
        InsrPde::Elasticity2d { mu, .. } => ("mu", "shear modulus", mu),
    };
    let elastic = matches!(run.pde, InsrPde::Elasticity2d { .. });
    let long = |f: &str| match f {
        "u" if elastic => "displacement, x component",
        "v" if elastic => "displacement, y component",
        "u" if two_d => "velocity, x component",
        "v" => "velocity, y component",
        "p" => "pressure (absorbing the time step; defined up to a constant)",
        _ => "solution",
    };
    let setup = serde_json::to_string(run).map_err(|e| TrainError::failed(e.to_string()))?;
    let layout = Layout {
        pde: run.pde.name().into(),
        fields: run.pde.fields().iter().map(|f| Field { name: f.to_string(), long_name: long(f).into() }).collect(),
        parameters: vec![ParameterInfo { name: param_name.into(), long_name: param_long.into(), simulation: true }],
        samples: 1,
        first_sample: 0,
        times: times.to_vec(),
        x: a[0].clone(),
        y: a.get(1).cloned(),
        z: None,
        grid_type: GridType::CellCentered,
        extent: run.pde.bounds().iter().map(|(lo, hi)| hi - lo).collect(),
        bc: vec![bc.into(); run.pde.dims()],
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
                "Ansatz INSR: the fields are SIRENs whose weights are optimised at every time step".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plateau(patience: usize) -> Plateau {
        Plateau::new(&InsrSettings { lr: 1.0, patience, lr_factor: 0.1, ..Default::default() })
    }

    #[test]
    fn the_plateau_rule_lowers_the_rate_only_after_patience_losses_without_progress() {
        // improving losses, positive or negative, keep the rate
        let mut p = plateau(2);
        for v in [1.0, 0.5, 0.1, -0.1, -0.5, -2.0] {
            p.observe(v);
        }
        assert_eq!((p.lr, p.since), (1.0, 0));
        // a worse negative value is no progress (a relative factor on a negative best would count it)
        p.observe(-1.9);
        assert_eq!(p.since, 1);
        // three losses without progress with patience 2: one reduction
        p.observe(-2.0);
        p.observe(-1.0);
        assert_eq!(p.lr, 0.1);
        assert_eq!(p.since, 0);
        // the first loss always counts, even when it is infinite or huge
        let mut q = plateau(0);
        q.observe(1e300);
        assert_eq!((q.lr, q.best), (1.0, 1e300));
        q.observe(1e300);
        assert_eq!(q.lr, 0.1);
    }
}
