//! Physics-informed hard constraints with a mixture of experts (PI-HC-MoE, Chalapathi et al. 2024,
//! arXiv:2402.13412; `docs/methods/moe.md`), with its two baselines under one key, `constraint.variant`:
//!
//! - `soft` (PI-SC): the network gives the solution on the space–time grid and is trained on the physics loss;
//! - `hard` (PI-HC): the network gives `N` basis functions `b(t, x)`; one expert over the whole domain solves the
//!   PDE-constrained least squares `ω* = argmin ½ Σ_p ψ_p(F_p ω)² + ½ρ²|ω|²` at sampled points, and the solution
//!   is `u = b · ω*`;
//! - `moe` (PI-HC-MoE): the domain is split into a fixed grid of `E = E_t × E_x` subdomains, each with its own
//!   expert and weights `ω*_e`, solved in parallel; `u = b · ω*_e` on subdomain `e`.
//!
//! The experts' solves and their implicit backward are the bridge's [`experts`] op (Levenberg–Marquardt in f64,
//! exact implicit adjoint with the full Hessian). The training loss is the physics loss alone, on the stitched
//! solution (each grid point takes the weights of the expert owning it) over the whole domain, evaluated by the
//! bridge's [`residuals`] op: the PDE, the initial and the boundary residuals, each kind's rows weighted by
//! `λ / √count` so that each kind contributes `λ ×` its mean square. Stencils that straddle an interface read two
//! experts' solutions, so the experts couple only through this loss. The derivative fields are finite differences
//! on the grid, linear in the field, formed once per step as gathers with stencil coefficients.
//!
//! The problem is the diffusion–sorption equation of [`ansatz_solvers::sorption`] on a dataset of
//! `ansatz generate diffusion-sorption` (its constants and inflow value are read from the file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ansatz_cluster::Communicator;
use ansatz_datasets::rom::RomProblem;
use ansatz_operators::bridge::{self, BridgeReport, ExpertLog};
use ansatz_operators::fno::{Fno, FnoConfig};
use ansatz_operators::init::Init;
use ansatz_operators::kernels::gelu;
use ansatz_solvers::constrained::{
    Burgers2dClosure, Burgers2dRow, Closure, ExpertOptions, SorptionClosure, SorptionRow, expert_vjp, solve_expert,
};
use ansatz_solvers::sorption::SorptionConstants;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, OptimiserConfig, OptimiserKind};
use crate::engine::{self, Method, Observer, Reconciled, RunDir, Settings, StepContext, StepOutput};
use crate::engine::{TrainError, TrainSummary, config_difference, splitmix};
use crate::methods::rom::{Physics, Trajectories};
use crate::schedule::Schedule;
use crate::trainer::TrainOptions;

fn bad(m: impl Into<String>) -> TrainError {
    TrainError::input(m)
}

fn cfg_err(m: impl Into<String>) -> ConfigError {
    ConfigError(m.into())
}

// --- configuration -------------------------------------------------------------------------------------------------

/// `constraint.variant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// PI-SC: the network is the solution; physics loss only.
    Soft,
    /// PI-HC: one expert over the whole domain.
    Hard,
    /// PI-HC-MoE: `constraint.experts` subdomains.
    Moe,
}

/// The top-level `method` of a hard-constraint configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoeMethod {
    Constrained,
}

/// A hard-constraint training configuration (`ansatz train` with `method = "constrained"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeExperiment {
    pub method: MoeMethod,
    /// Seeds the initial weights, the sample order and the experts' sampled points.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: MoeData,
    #[serde(default)]
    pub model: MoeModel,
    #[serde(default)]
    pub constraint: Constraint,
    #[serde(default = "default_optimiser")]
    pub optimiser: OptimiserConfig,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    #[serde(default)]
    pub training: MoeTraining,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoeData {
    /// A `diffusion-sorption` or periodic `burgers2d` dataset (relative to the configuration file); `--data` overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A separate validation file; without one, the last `validation_samples` samples of the training file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<PathBuf>,
    pub validation_samples: usize,
}

impl Default for MoeData {
    fn default() -> Self {
        Self { path: None, validation: None, validation_samples: 8 }
    }
}

/// `[model]`: the basis network, an FNO over the (t, x) grid (1D problems) or the (t, y, x) grid (2D problems).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoeModel {
    /// Basis functions N (ignored by `soft`, whose network has one output).
    pub basis: usize,
    pub width: usize,
    pub modes_x: usize,
    /// Fourier modes along y for each sign (2D problems).
    pub modes_y: usize,
    pub modes_t: usize,
    pub layers: usize,
    pub projection: usize,
    /// GELU on the basis functions (the reference's `activate_last_layer`).
    pub activate_last: bool,
}

impl Default for MoeModel {
    fn default() -> Self {
        Self { basis: 8, width: 32, modes_x: 8, modes_y: 8, modes_t: 8, layers: 4, projection: 64, activate_last: true }
    }
}

/// `[constraint]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Constraint {
    pub variant: Variant,
    /// Subdomains `[E_t, E_x]` (1D problems) or `[E_t, E_y, E_x]` (2D problems) (`moe`; `hard` and `soft`
    /// ignore it: one domain).
    pub experts: Vec<usize>,
    /// PDE points each expert samples per step (all of them when its subdomain has fewer; a 2D Burgers point
    /// gives a row for each velocity component).
    pub points: usize,
    /// λ of the PDE, initial and boundary rows (in the experts' problems and in the loss).
    pub pde_weight: f64,
    pub initial_weight: f64,
    pub boundary_weight: f64,
    /// The ridge ρ, the relative gradient tolerance and the iteration cap of Levenberg–Marquardt.
    pub ridge: f64,
    pub tol: f64,
    pub max_iter: usize,
    /// The initial basis weights (every entry).
    pub init: f64,
    /// The time scale T of the PDE rows (`u_τ`, τ = t/T); 0: the data's final time.
    pub time_scale: f64,
    /// How the ranks of a run under `mpirun` share a step (one rank: no difference).
    pub shard: Shard,
    /// The first level with PDE rows (≥ 1). The incompatible initial and inflow values make the solution singular
    /// at the corner (t, x) = (0, 0): finite differences of the exact solution leave residuals of order 1 at the
    /// first levels near the inflow, which dominate the physics loss.
    pub pde_from_level: usize,
}

impl Default for Constraint {
    fn default() -> Self {
        Self {
            variant: Variant::Moe,
            experts: vec![1, 4],
            points: 2000,
            pde_weight: 1.0,
            initial_weight: 1.0,
            boundary_weight: 1.0,
            ridge: 1e-4,
            tol: 1e-4,
            max_iter: 100,
            init: 1.0,
            time_scale: 0.0,
            pde_from_level: 1,
            shard: Shard::Samples,
        }
    }
}

/// `constraint.shard`: how the ranks of a run share a step's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shard {
    /// Each rank takes its share of the batch's samples, with all their experts (data parallelism).
    Samples,
    /// Every rank takes the whole batch; the `S · E` experts' solves and implicit backward passes are split
    /// between the ranks (expert `j` on rank `j mod R`); their weights and feature cotangents are gathered.
    Experts,
}

/// `[training]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoeTraining {
    pub steps: usize,
    pub batch: usize,
    pub checkpoint_every: usize,
    pub validate_every: usize,
    pub max_nonfinite: usize,
}

impl Default for MoeTraining {
    fn default() -> Self {
        Self { steps: 500, batch: 4, checkpoint_every: 100, validate_every: 100, max_nonfinite: 3 }
    }
}

fn default_optimiser() -> OptimiserConfig {
    OptimiserConfig { kind: OptimiserKind::Adam, weight_decay: 0.0, clip_norm: 0.0, ..OptimiserConfig::default() }
}

fn default_schedule() -> Schedule {
    Schedule::Constant { rate: 1e-3 }
}

impl MoeExperiment {
    /// Parses and validates a configuration (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let exp: Self = toml::from_str(text).map_err(|e| cfg_err(format!("{origin}: {e}")))?;
        exp.validated().map_err(|e| cfg_err(format!("{origin}: {e}")))
    }

    /// Checks every value; resolves the schedule's length.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        let m = &self.model;
        let c = &self.constraint;
        for (key, v) in [
            ("model.basis", m.basis),
            ("model.width", m.width),
            ("model.modes_x", m.modes_x),
            ("model.modes_y", m.modes_y),
            ("model.modes_t", m.modes_t),
            ("model.layers", m.layers),
            ("model.projection", m.projection),
            ("constraint.points", c.points),
            ("constraint.max_iter", c.max_iter),
            ("constraint.pde_from_level", c.pde_from_level),
            ("training.steps", self.training.steps),
            ("training.batch", self.training.batch),
            ("training.checkpoint_every", self.training.checkpoint_every),
            ("training.max_nonfinite", self.training.max_nonfinite),
        ] {
            if v == 0 {
                return Err(cfg_err(format!("`{key}` must be at least 1")));
            }
        }
        for (key, v) in [
            ("constraint.pde_weight", c.pde_weight),
            ("constraint.initial_weight", c.initial_weight),
            ("constraint.boundary_weight", c.boundary_weight),
            ("constraint.ridge", c.ridge),
            ("constraint.time_scale", c.time_scale),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(cfg_err(format!("`{key}` must be finite and ≥ 0, got {v}")));
            }
        }
        if !(2..=3).contains(&c.experts.len()) || c.experts.contains(&0) {
            return Err(cfg_err(format!(
                "`constraint.experts` must be [E_t, E_x] or [E_t, E_y, E_x] with every entry at least 1, got {:?}",
                c.experts
            )));
        }
        if !(c.tol.is_finite() && c.tol > 0.0 && c.init.is_finite()) {
            return Err(cfg_err("`constraint.tol` must be positive and `constraint.init` finite"));
        }
        self.schedule = self.schedule.clone().resolved(self.training.steps);
        self.schedule.validate().map_err(|e| cfg_err(e.to_string()))?;
        Ok(self)
    }

    /// The configuration as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a constrained configuration serialises")
    }

    /// The number of experts in use.
    pub fn expert_count(&self) -> usize {
        match self.constraint.variant {
            Variant::Moe => self.constraint.experts.iter().product(),
            _ => 1,
        }
    }

    /// Basis functions of the network (1 for `soft`).
    pub fn basis(&self) -> usize {
        if self.constraint.variant == Variant::Soft { 1 } else { self.model.basis }
    }

    fn settings(&self) -> Settings {
        let t = &self.training;
        Settings {
            seed: self.seed,
            training: crate::config::TrainingConfig {
                steps: t.steps,
                batch: t.batch,
                checkpoint_every: t.checkpoint_every,
                validate_every: t.validate_every,
                max_nonfinite: t.max_nonfinite,
                ..crate::config::TrainingConfig::default()
            },
            optimiser: self.optimiser.clone(),
            schedule: self.schedule.clone(),
        }
    }
}

// --- the network ---------------------------------------------------------------------------------------------------

/// The basis network: an FNO over the `(t, x)` or `(t, y, x)` grid from the initial fields (broadcast in t) and the
/// coordinates.
#[derive(Module, Debug)]
pub struct BasisNet {
    fno: Fno,
    activate: bool,
}

impl BasisNet {
    /// `[S, C, T · Y, X]` initial fields → `[S, N · C, T · Y, X]` basis functions (the `C` components of basis
    /// function `n` are outputs `n · C + c`).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.fno.forward(x);
        if self.activate { gelu(y) } else { y }
    }

    fn dtype(&self) -> DType {
        self.fno.dtype()
    }
}

// --- residual rows -------------------------------------------------------------------------------------------------

/// One feature of one row: up to five entries of the flattened field (`((c · T + t) · Y + y) · X + x` for channel
/// `c`, level `t` and cell `(y, x)`) with stencil coefficients.
type Taps = [(usize, f64); 5];

const NO_TAPS: Taps = [(0, 0.0); 5];

/// Features per row at most (the 2D Burgers rows).
const MAX_FEATURES: usize = 6;

fn taps(entries: &[(usize, f64)]) -> Taps {
    let mut t = NO_TAPS;
    t[..entries.len()].copy_from_slice(entries);
    t
}

/// The kind of a residual row.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sorption(SorptionRow),
    Burgers(Burgers2dRow),
}

impl Kind {
    /// The group whose rows share one weight: 0 the PDE, 1 the initial condition, 2 the boundary conditions.
    fn group(self) -> usize {
        match self {
            Kind::Sorption(SorptionRow::Pde) | Kind::Burgers(Burgers2dRow::MomentumX | Burgers2dRow::MomentumY) => 0,
            Kind::Sorption(SorptionRow::Initial) | Kind::Burgers(Burgers2dRow::Initial) => 1,
            Kind::Sorption(SorptionRow::Inflow | SorptionRow::Outflow) => 2,
        }
    }
}

/// The residual rows of one expert (shared by the samples of a batch; the targets differ per sample).
#[derive(Clone, Debug, Default)]
struct Rows {
    /// Features per row.
    k: usize,
    kinds: Vec<Kind>,
    /// Per row, its `k` features.
    taps: Vec<Taps>,
    weights: Vec<f64>,
    /// The entry of the sample's initial field (`c · Y · X + y · X + x`) an initial-condition row targets.
    column: Vec<usize>,
}

impl Rows {
    fn new(k: usize) -> Self {
        Self { k, ..Self::default() }
    }

    fn push(&mut self, kind: Kind, taps: &[Taps], column: usize) {
        debug_assert_eq!(taps.len(), self.k);
        self.kinds.push(kind);
        self.taps.extend_from_slice(taps);
        self.weights.push(1.0);
        self.column.push(column);
    }

    /// Weights `λ_kind / √count_kind`, with the counts over all experts' rows: the sum of squares over every
    /// expert is then `Σ_kind λ² ×` the kind's mean square over the whole domain, whatever the number of experts.
    fn weigh(all: &mut [Rows], c: &Constraint) {
        let lambda = [c.pde_weight, c.initial_weight, c.boundary_weight];
        let mut counts = [0usize; 3];
        for r in all.iter() {
            for (k, w) in r.kinds.iter().zip(&r.weights) {
                if *w != 0.0 {
                    counts[k.group()] += 1;
                }
            }
        }
        for r in all.iter_mut() {
            for (k, w) in r.kinds.iter().zip(r.weights.iter_mut()) {
                if *w != 0.0 {
                    *w = lambda[k.group()] / (counts[k.group()].max(1) as f64).sqrt();
                }
            }
        }
    }

    /// Pads with rows of kind `kind`, no features and zero weight to `len` rows.
    fn pad(&mut self, len: usize, kind: Kind) {
        let extra = len.saturating_sub(self.len());
        self.kinds.extend(std::iter::repeat_n(kind, extra));
        self.taps.extend(std::iter::repeat_n(NO_TAPS, extra * self.k));
        self.weights.extend(std::iter::repeat_n(0.0, extra));
        self.column.extend(std::iter::repeat_n(0, extra));
    }

    fn len(&self) -> usize {
        self.kinds.len()
    }
}

/// The equation of the problem, from the data.
#[derive(Clone, Debug)]
enum Equation {
    /// 1D diffusion–sorption ([`ansatz_solvers::sorption`]): one field, inflow and outflow boundaries.
    Sorption { constants: SorptionConstants, inflow: f64 },
    /// 2D viscous Burgers on a doubly periodic square: two fields `(u, v)`, ν per sample.
    Burgers2d,
}

/// The grid and the problem, for building rows.
#[derive(Clone, Debug)]
struct Grid {
    /// Levels, cells along y (1 in 1D) and x, and channels (fields).
    t: usize,
    y: usize,
    x: usize,
    c: usize,
    dx: f64,
    dy: f64,
    /// The level spacing in τ = t / T.
    dtau: f64,
    time_scale: f64,
    equation: Equation,
}

impl Grid {
    fn at(&self, c: usize, t: usize, y: usize, x: usize) -> usize {
        ((c * self.t + t) * self.y + y) * self.x + x
    }

    /// Entries of the flattened field: channels × levels × cells.
    fn len(&self) -> usize {
        self.c * self.t * self.y * self.x
    }

    /// Features per row.
    fn features(&self) -> usize {
        match self.equation {
            Equation::Sorption { .. } => 3,
            Equation::Burgers2d => 6,
        }
    }

    /// The kind of the initial-condition rows (padding rows take it too).
    fn initial_kind(&self) -> Kind {
        match self.equation {
            Equation::Sorption { .. } => Kind::Sorption(SorptionRow::Initial),
            Equation::Burgers2d => Kind::Burgers(Burgers2dRow::Initial),
        }
    }

    /// `f_τ` of channel `c` at level `t ≥ 1`: central, or second-order backward at the last level.
    fn time_derivative(&self, c: usize, t: usize, y: usize, x: usize) -> Taps {
        let h = 0.5 / self.dtau;
        if t + 1 < self.t {
            taps(&[(self.at(c, t + 1, y, x), h), (self.at(c, t - 1, y, x), -h)])
        } else {
            taps(&[(self.at(c, t, y, x), 3.0 * h), (self.at(c, t - 1, y, x), -4.0 * h), (self.at(c, t - 2, y, x), h)])
        }
    }

    fn sorption_pde(&self, t: usize, x: usize) -> [Taps; 3] {
        let c = 1.0 / (self.dx * self.dx);
        let uxx = taps(&[(self.at(0, t, 0, x + 1), c), (self.at(0, t, 0, x), -2.0 * c), (self.at(0, t, 0, x - 1), c)]);
        [taps(&[(self.at(0, t, 0, x), 1.0)]), self.time_derivative(0, t, 0, x), uxx]
    }

    /// The value at the face x = 0 from the first three cells (third order).
    fn inflow_row(&self, t: usize) -> [Taps; 3] {
        let u = taps(&[
            (self.at(0, t, 0, 0), 15.0 / 8.0),
            (self.at(0, t, 0, 1), -10.0 / 8.0),
            (self.at(0, t, 0, 2), 3.0 / 8.0),
        ]);
        [u, NO_TAPS, NO_TAPS]
    }

    /// The value and the slope at the face x = L from the last three cells.
    fn outflow_row(&self, t: usize) -> [Taps; 3] {
        let n = self.x;
        let at = |x: usize| self.at(0, t, 0, x);
        let u = taps(&[(at(n - 1), 15.0 / 8.0), (at(n - 2), -10.0 / 8.0), (at(n - 3), 3.0 / 8.0)]);
        let c = 1.0 / self.dx;
        let ux = taps(&[(at(n - 1), 2.0 * c), (at(n - 2), -3.0 * c), (at(n - 3), c)]);
        [u, ux, NO_TAPS]
    }

    /// The momentum row of component `c` (0: u, 1: v) at `(t, y, x)`: features `(u, v, f_τ, f_x, f_y, Δf)` of
    /// `f` = component `c`, by central differences on the periodic grid.
    fn burgers_pde(&self, c: usize, t: usize, y: usize, x: usize) -> [Taps; 6] {
        let (nx, ny) = (self.x, self.y);
        let (xp, xm) = ((x + 1) % nx, (x + nx - 1) % nx);
        let (yp, ym) = ((y + 1) % ny, (y + ny - 1) % ny);
        let (hx, hy) = (0.5 / self.dx, 0.5 / self.dy);
        let (cx, cy) = (1.0 / (self.dx * self.dx), 1.0 / (self.dy * self.dy));
        let at = |yy: usize, xx: usize| self.at(c, t, yy, xx);
        [
            taps(&[(self.at(0, t, y, x), 1.0)]),
            taps(&[(self.at(1, t, y, x), 1.0)]),
            self.time_derivative(c, t, y, x),
            taps(&[(at(y, xp), hx), (at(y, xm), -hx)]),
            taps(&[(at(yp, x), hy), (at(ym, x), -hy)]),
            taps(&[(at(y, xp), cx), (at(y, xm), cx), (at(yp, x), cy), (at(ym, x), cy), (at(y, x), -2.0 * (cx + cy))]),
        ]
    }

    /// The subdomain `(t, y, x ranges)` of expert `e` of `[E_t, E_y, E_x]`.
    fn region(&self, e: usize, experts: [usize; 3]) -> [std::ops::Range<usize>; 3] {
        let (et, ey, ex) = (e / (experts[1] * experts[2]), (e / experts[2]) % experts[1], e % experts[2]);
        let split = |n: usize, parts: usize, i: usize| (i * n / parts)..((i + 1) * n / parts);
        [split(self.t, experts[0], et), split(self.y, experts[1], ey), split(self.x, experts[2], ex)]
    }

    /// The rows of expert `e`: its PDE points (all of them, or `sample` of them drawn from `state`), the initial
    /// points and the boundary points of its subdomain. A 2D Burgers point gives two rows (both components).
    fn rows(&self, e: usize, experts: [usize; 3], sample: Option<(usize, &mut u64)>, c: &Constraint) -> Rows {
        let [tr, yr, xr] = self.region(e, experts);
        let mut rows = Rows::new(self.features());
        let interior = match self.equation {
            Equation::Sorption { .. } => xr.start.max(1)..xr.end.min(self.x - 1),
            Equation::Burgers2d => xr.clone(),
        };
        let mut pde: Vec<(usize, usize, usize)> = Vec::new();
        for t in tr.start.max(c.pde_from_level.max(1))..tr.end {
            for y in yr.clone() {
                for x in interior.clone() {
                    pde.push((t, y, x));
                }
            }
        }
        if let Some((m, state)) = sample
            && m < pde.len()
        {
            for j in 0..m {
                let r = j + (splitmix(state) % (pde.len() - j) as u64) as usize;
                pde.swap(j, r);
            }
            pde.truncate(m);
        }
        let channels = self.c;
        match self.equation {
            Equation::Sorption { .. } => {
                for &(t, _, x) in &pde {
                    rows.push(Kind::Sorption(SorptionRow::Pde), &self.sorption_pde(t, x), 0);
                }
            }
            Equation::Burgers2d => {
                for &(t, y, x) in &pde {
                    rows.push(Kind::Burgers(Burgers2dRow::MomentumX), &self.burgers_pde(0, t, y, x), 0);
                    rows.push(Kind::Burgers(Burgers2dRow::MomentumY), &self.burgers_pde(1, t, y, x), 0);
                }
            }
        }
        if tr.start == 0 {
            let kind = self.initial_kind();
            for ch in 0..channels {
                for y in yr.clone() {
                    for x in xr.clone() {
                        let mut f = [NO_TAPS; MAX_FEATURES];
                        f[0] = taps(&[(self.at(ch, 0, y, x), 1.0)]);
                        rows.push(kind, &f[..self.features()], (ch * self.y + y) * self.x + x);
                    }
                }
            }
        }
        if let Equation::Sorption { .. } = self.equation {
            for t in tr.start.max(1)..tr.end {
                if xr.start == 0 {
                    rows.push(Kind::Sorption(SorptionRow::Inflow), &self.inflow_row(t), 0);
                }
                if xr.end == self.x {
                    rows.push(Kind::Sorption(SorptionRow::Outflow), &self.outflow_row(t), 0);
                }
            }
        }
        rows
    }

    /// One closure per (sample, expert): the rows with the sample's initial field (and ν) as targets.
    fn closures(&self, rows: &[Rows], cases: &[Case]) -> Vec<Arc<dyn Closure + Send + Sync>> {
        let mut out: Vec<Arc<dyn Closure + Send + Sync>> = Vec::with_capacity(cases.len() * rows.len());
        for case in cases {
            for r in rows {
                let targets = r
                    .kinds
                    .iter()
                    .zip(&r.column)
                    .map(|(k, &col)| match (k, &self.equation) {
                        (Kind::Sorption(SorptionRow::Initial) | Kind::Burgers(Burgers2dRow::Initial), _) => {
                            case.initial[col] as f64
                        }
                        (Kind::Sorption(SorptionRow::Inflow), Equation::Sorption { inflow, .. }) => *inflow,
                        _ => 0.0,
                    })
                    .collect();
                match &self.equation {
                    Equation::Sorption { constants, .. } => out.push(Arc::new(SorptionClosure {
                        constants: *constants,
                        time_scale: self.time_scale,
                        kinds: r
                            .kinds
                            .iter()
                            .filter_map(|k| if let Kind::Sorption(s) = k { Some(*s) } else { None })
                            .collect(),
                        weights: r.weights.clone(),
                        targets,
                    })),
                    Equation::Burgers2d => out.push(Arc::new(Burgers2dClosure {
                        nu: case.nu,
                        time_scale: self.time_scale,
                        kinds: r
                            .kinds
                            .iter()
                            .filter_map(|k| if let Kind::Burgers(b) = k { Some(*b) } else { None })
                            .collect(),
                        weights: r.weights.clone(),
                        targets,
                    })),
                }
            }
        }
        out
    }
}

/// The features `F` of every (sample, expert) from the flattened basis `b` (`[S, N, C · T · Y · X]`):
/// `[S · E, P · K · N]`, rows of each expert padded to `P`.
fn features(b: Tensor<3>, rows: &[Rows]) -> Tensor<2> {
    let [s, n, _] = b.dims();
    let (e, p, kf) = (rows.len(), rows[0].len(), rows[0].k);
    let device = b.device();
    let dtype = b.dtype();
    let r = e * p;
    let mut feats = Vec::with_capacity(kf);
    for k in 0..kf {
        let mut acc: Option<Tensor<3>> = None;
        for j in 0..5 {
            let mut idx = Vec::with_capacity(r);
            let mut coef = Vec::with_capacity(r);
            for rw in rows {
                for row in 0..rw.len() {
                    let (i, c) = rw.taps[row * kf + k][j];
                    idx.push(i as i64);
                    coef.push(c);
                }
            }
            if coef.iter().all(|c| *c == 0.0) {
                continue;
            }
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [r]), &device);
            let coef = Tensor::<1>::from_data(TensorData::new(coef, [r]), (&device, DType::F64)).cast(dtype);
            let g = b.clone().select(2, idx) * coef.reshape([1, 1, r]);
            acc = Some(match acc {
                Some(a) => a + g,
                None => g,
            });
        }
        feats.push(acc.unwrap_or_else(|| Tensor::<3>::zeros([s, n, r], (&device, dtype))));
    }
    Tensor::stack::<4>(feats, 3).reshape([s, n, e, p, kf]).permute([0, 2, 3, 4, 1]).reshape([s * e, p * kf * n])
}

// --- the method ----------------------------------------------------------------------------------------------------

/// One sample's inputs: its initial field (`channel, y, x`) and, for 2D Burgers, its viscosity ν.
#[derive(Clone, Debug)]
pub struct Case {
    pub initial: Vec<f32>,
    pub nu: f64,
}

/// The space–time grid of a dataset: levels `level_dt` apart and the cell centres along x and y (none in 1D).
#[derive(Clone, Debug)]
pub struct Geometry {
    pub levels: usize,
    pub level_dt: f64,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// What the validation and the predictions of a model give for a set of samples.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Predicted fields `(sample, channel, level, y, x)`.
    pub u: Vec<f32>,
    /// Mean over samples of the relative L2 error over the space–time grid (all fields together).
    pub relative_l2: f64,
    /// Mean square of the weighted residual rows (all points).
    pub residual: f64,
    /// Experts that stopped without meeting their tolerance, of `experts` solved.
    pub unconverged: usize,
    pub experts: usize,
}

/// The problem a constrained model solves: the configuration, the grid and the equation, and the loss rows. Built
/// from the data's generation configuration, so a trained run can predict without its training data.
pub struct Problem {
    pub exp: MoeExperiment,
    grid: Grid,
    /// The subdomains `[E_t, E_y, E_x]` (E_y = 1 in 1D).
    experts: [usize; 3],
    /// Rows at every point of the whole domain, for the loss on the stitched solution (one row set).
    loss_rows: Vec<Rows>,
    /// The expert owning each entry of the flattened field.
    owner: Vec<i64>,
    report: BridgeReport,
    log: ExpertLog,
}

impl Problem {
    /// `exp` on the grid `geometry` of a dataset `name` of PDE `pde` generated with `generation_config`:
    /// `diffusion-sorption` (1D) or `burgers2d` (doubly periodic).
    pub fn new(
        exp: &MoeExperiment,
        name: &str,
        pde: &str,
        generation_config: &str,
        geometry: &Geometry,
    ) -> Result<Self, TrainError> {
        let (t, nx, ny) = (geometry.levels, geometry.x.len(), geometry.y.len().max(1));
        let equation = match pde {
            "diffusion-sorption" => {
                let spec = ansatz_datasets::rom::RomSpec::from_dataset(pde, generation_config)
                    .map_err(|e| bad(format!("{name}: {e}")))?;
                let RomProblem::Sorption { constants, inflow, .. } = spec.problem else {
                    return Err(bad(format!("{name}: not a diffusion-sorption configuration")));
                };
                if !geometry.y.is_empty() {
                    return Err(bad(format!("{name}: diffusion-sorption data on a 2D grid")));
                }
                Equation::Sorption { constants, inflow }
            }
            "burgers2d" => {
                let spec =
                    ansatz_datasets::config::load(pde, Some(("generation_config", generation_config)), &[], None, None)
                        .map_err(|e| bad(format!("{name}: {e}")))?;
                if !spec.bc.iter().flatten().all(|b| matches!(b, ansatz_solvers::fv::Boundary::Periodic)) {
                    return Err(bad(format!(
                        "{name}: the constrained models take periodic 2D Burgers data (boundary.x = boundary.y = \
                         \"periodic\")"
                    )));
                }
                if geometry.y.len() < 2 {
                    return Err(bad(format!("{name}: burgers2d data without a y axis")));
                }
                Equation::Burgers2d
            }
            other => {
                return Err(bad(format!(
                    "{name}: '{other}' data; the constrained models solve diffusion-sorption or burgers2d (`ansatz \
                     generate diffusion-sorption|burgers2d`)"
                )));
            }
        };
        let two_d = matches!(equation, Equation::Burgers2d);
        let e = exp.constraint.experts.as_slice();
        let experts = match (exp.constraint.variant, two_d, e.len()) {
            (Variant::Soft | Variant::Hard, _, _) => [1, 1, 1],
            (Variant::Moe, false, 2) => [e[0], 1, e[1]],
            (Variant::Moe, true, 3) => [e[0], e[1], e[2]],
            (Variant::Moe, _, n) => {
                return Err(bad(format!(
                    "{name}: `constraint.experts` has {n} entries; a {} problem takes {}",
                    if two_d { "2D" } else { "1D" },
                    if two_d { "[E_t, E_y, E_x]" } else { "[E_t, E_x]" }
                )));
            }
        };
        let too_small = if two_d {
            t < 3 || nx < 3 || ny < 3 || experts[0] > t || experts[1] > ny || experts[2] > nx
        } else {
            t < 3 || nx < 4 || experts[0] > t || experts[2] * 3 > nx
        };
        if too_small {
            return Err(bad(format!(
                "{name}: {t} levels × {ny} × {nx} cells is too small for {experts:?} experts (3 levels and 3 cells \
                 per axis at least; in 1D, 3 cells per expert along x)"
            )));
        }
        let time_scale = match exp.constraint.time_scale {
            0.0 => geometry.level_dt * (t - 1) as f64,
            v => v,
        };
        let spacing = |v: &[f64]| if v.len() > 1 { v[1] - v[0] } else { 1.0 };
        let grid = Grid {
            t,
            y: ny,
            x: nx,
            c: if two_d { 2 } else { 1 },
            dx: spacing(&geometry.x),
            dy: spacing(&geometry.y),
            dtau: geometry.level_dt / time_scale,
            time_scale,
            equation,
        };
        let mut loss_rows = vec![grid.rows(0, [1, 1, 1], None, &exp.constraint)];
        Rows::weigh(&mut loss_rows, &exp.constraint);
        let mut owner = vec![0i64; grid.len()];
        for e in 0..experts.iter().product() {
            let [tr, yr, xr] = grid.region(e, experts);
            for c in 0..grid.c {
                for ti in tr.clone() {
                    for yi in yr.clone() {
                        for xi in xr.clone() {
                            owner[grid.at(c, ti, yi, xi)] = e as i64;
                        }
                    }
                }
            }
        }
        Ok(Self {
            exp: exp.clone(),
            grid,
            experts,
            loss_rows,
            owner,
            report: BridgeReport::new(),
            log: ExpertLog::new(),
        })
    }

    /// Levels, cells along y (1 in 1D) and x, and fields.
    pub fn shape(&self) -> [usize; 4] {
        [self.grid.t, self.grid.y, self.grid.x, self.grid.c]
    }

    /// The subdomains `[E_t, E_y, E_x]`.
    pub fn experts(&self) -> [usize; 3] {
        self.experts
    }

    /// Whether the samples need their viscosity ν (2D Burgers).
    pub fn needs_nu(&self) -> bool {
        matches!(self.grid.equation, Equation::Burgers2d)
    }

    /// The basis network (untrained, from `init`): an FNO over (t, x) in 1D, over (t, y, x) in 2D, with `N · C`
    /// outputs (`C` fields).
    pub fn build(&self, init: &mut Init) -> BasisNet {
        let m = &self.exp.model;
        let g = &self.grid;
        let out = self.exp.basis() * g.c;
        let config = if g.c == 1 {
            FnoConfig::new(1, out, m.width, m.modes_x, m.modes_t, m.layers, g.x, g.t)
        } else {
            FnoConfig::new(g.c, out, m.width, m.modes_x, m.modes_y, m.layers, g.x, g.y)
                .with_nz(g.t)
                .with_modes_z(m.modes_t)
        };
        let fno = config.with_projection(m.projection).init(init);
        BasisNet { fno, activate: m.activate_last && self.exp.constraint.variant != Variant::Soft }
    }

    fn options(&self) -> ExpertOptions {
        let c = &self.exp.constraint;
        ExpertOptions { gtol: c.tol, ftol: 1e-10, max_iter: c.max_iter, ridge: c.ridge }
    }

    /// The network's input `[S, C, T · Y, X]`: each initial field broadcast in t.
    fn input(&self, cases: &[Case], device: &Device, dtype: DType) -> Tensor<4> {
        let g = &self.grid;
        let frame = g.y * g.x;
        let mut v = Vec::with_capacity(cases.len() * g.c * g.t * frame);
        for case in cases {
            for c in 0..g.c {
                for _ in 0..g.t {
                    v.extend_from_slice(&case.initial[c * frame..(c + 1) * frame]);
                }
            }
        }
        Tensor::<4>::from_data(TensorData::new(v, [cases.len(), g.c, g.t * g.y, g.x]), (device, DType::F32)).cast(dtype)
    }

    /// Checks the cases' initial fields (one frame each) and viscosities.
    fn check(&self, cases: &[Case]) -> Result<(), TrainError> {
        let g = &self.grid;
        let frame = g.c * g.y * g.x;
        for (i, case) in cases.iter().enumerate() {
            if case.initial.len() != frame {
                return Err(bad(format!(
                    "sample {i}: an initial field of {} values, {frame} expected",
                    case.initial.len()
                )));
            }
            if self.needs_nu() && !(case.nu.is_finite() && case.nu > 0.0) {
                return Err(bad(format!("sample {i}: the viscosity ν must be positive, got {}", case.nu)));
            }
        }
        Ok(())
    }

    /// The experts' rows for a solve: `points` PDE points drawn from `seed`, padded alike.
    fn solve_rows(&self, seed: u64) -> Vec<Rows> {
        let experts = self.experts;
        let mut state = seed;
        let mut rows: Vec<Rows> = (0..experts.iter().product())
            .map(|e| self.grid.rows(e, experts, Some((self.exp.constraint.points, &mut state)), &self.exp.constraint))
            .collect();
        Rows::weigh(&mut rows, &self.exp.constraint);
        let p = rows.iter().map(Rows::len).max().unwrap_or(0);
        rows.iter_mut().for_each(|r| r.pad(p, self.grid.initial_kind()));
        rows
    }

    /// The flattened basis of the initial fields `[S, N, C · T · Y · X]`, the basis weights of every
    /// (sample, expert) `[S · E, N]` (ones for `soft`) and the count of unconverged solves.
    fn weights(
        &self,
        model: &BasisNet,
        cases: &[Case],
        seed: u64,
        device: &Device,
    ) -> Result<(Tensor<3>, Tensor<2>, usize), TrainError> {
        self.check(cases)?;
        let s = cases.len();
        let b = model.forward(self.input(cases, device, model.dtype())).reshape([s, self.exp.basis(), self.grid.len()]);
        let n = b.dims()[1];
        if self.exp.constraint.variant == Variant::Soft {
            let ones = Tensor::<2>::ones([s, 1], (&b.device(), b.dtype()));
            return Ok((b, ones, 0));
        }
        let rows = self.solve_rows(seed);
        let f = features(b.clone(), &rows);
        let closures = self.grid.closures(&rows, cases);
        let omega = bridge::experts(
            closures,
            n,
            f,
            &vec![self.exp.constraint.init; n],
            self.options(),
            &self.log,
            &self.report,
        )
        .map_err(|err| TrainError::failed(format!("the experts' solves: {err}")))?;
        let unconverged = self.log.take().iter().filter(|r| !r.converged).count();
        Ok((b, omega, unconverged))
    }

    /// The stitched solution `[S, 1, C · T · Y · X]`: at every entry, the basis times the weights of the expert
    /// owning it (`omega` is `[S · E, N]`).
    fn stitch(&self, b: Tensor<3>, omega: Tensor<2>) -> Tensor<3> {
        let [s, n, p] = b.dims();
        let e = omega.dims()[0] / s.max(1);
        let owner = Tensor::<1, Int>::from_data(TensorData::new(self.owner.clone(), [p]), &b.device());
        let w = omega.reshape([s, e, n]).select(1, owner); // [S, P, N]
        (b.swap_dims(1, 2) * w).sum_dim(2).reshape([s, 1, p])
    }

    /// The weighted residual rows of the whole domain `[S, P]` for a solution `u` (`[S, 1, C · T · Y · X]`).
    fn residual_rows(&self, u: Tensor<3>, cases: &[Case]) -> Result<Tensor<2>, TrainError> {
        let s = u.dims()[0];
        let ones = Tensor::<2>::ones([s, 1], (&u.device(), u.dtype()));
        let f = features(u, &self.loss_rows);
        let closures = self.grid.closures(&self.loss_rows, cases);
        bridge::residuals(closures, 1, Tensor::cat(vec![f, ones], 1), &self.report)
            .map_err(|err| TrainError::failed(format!("the residual rows: {err}")))
    }

    /// The physics loss of the stitched solutions (the weighted sum of squares over the whole domain, averaged
    /// over the samples) and the count of unconverged solves.
    pub fn loss(
        &self,
        model: &BasisNet,
        cases: &[Case],
        seed: u64,
        device: &Device,
    ) -> Result<(Tensor<1>, usize), TrainError> {
        let (b, omega, unconverged) = self.weights(model, cases, seed, device)?;
        let r = self.residual_rows(self.stitch(b, omega), cases)?;
        Ok((r.powi_scalar(2).sum().div_scalar(cases.len() as f64), unconverged))
    }

    /// The stitched solutions `(sample, channel, level, y, x)`, their physics residual (averaged over the samples)
    /// and the count of unconverged solves. The experts sample their PDE points with a fixed seed, so a prediction
    /// is deterministic.
    pub fn predict(
        &self,
        model: &BasisNet,
        cases: &[Case],
        device: &Device,
    ) -> Result<(Vec<f32>, f64, usize), TrainError> {
        let seed = self.exp.seed ^ 0x5EED_F00D;
        let (b, omega, unconverged) = self.weights(model, cases, seed, device)?;
        let u = self.stitch(b, omega);
        let r = self.residual_rows(u.clone(), cases)?;
        let residual = host(r.powi_scalar(2).sum()).first().copied().unwrap_or(f64::NAN) / cases.len() as f64;
        let u = host(u.reshape([-1])).into_iter().map(|v| v as f32).collect();
        Ok((u, residual, unconverged))
    }

    /// The mean weighted residual of given solutions `(sample, channel, level, y, x)` (as one basis function with
    /// weight 1): for the reference solution, the floor the physics loss can reach with these stencils on this
    /// grid.
    pub fn residual_of(&self, fields: &[f32], cases: &[Case], device: &Device) -> Result<f64, TrainError> {
        let s = cases.len();
        let u = Tensor::<3>::from_data(TensorData::new(fields.to_vec(), [s, 1, self.grid.len()]), (device, DType::F32))
            .cast(DType::F64);
        let r = self.residual_rows(u, cases)?;
        Ok(host(r.powi_scalar(2).sum()).first().copied().unwrap_or(f64::NAN) / s.max(1) as f64)
    }
}

/// Training state of the constrained models.
pub struct Constrained<'c> {
    pub problem: Problem,
    /// The ranks, for `constraint.shard = "experts"`.
    comm: Option<&'c dyn Communicator>,
    data: Trajectories,
    validation: Trajectories,
    unconverged: u64,
    last_validation: Vec<(String, f64)>,
    /// The validation data's own residual (once computed).
    floor: Option<f64>,
}

impl<'c> Constrained<'c> {
    pub fn new(exp: &MoeExperiment, data: Trajectories, validation: Trajectories) -> Result<Self, TrainError> {
        let name = data.path.display().to_string();
        let config = match &data.physics {
            Physics::Rom(spec) => spec.config_text.clone(),
            Physics::Burgers2d(spec) => spec.config_text.clone(),
            Physics::Burgers(_) => String::new(),
        };
        if validation.levels != data.levels || validation.grid != data.grid || validation.fields != data.fields {
            return Err(bad(format!(
                "{}: {} levels of {:?} on a {:?} grid, the training data has {} levels of {:?} on {:?}",
                validation.path.display(),
                validation.levels,
                validation.fields,
                validation.grid,
                data.levels,
                data.fields,
                data.grid
            )));
        }
        let problem = Problem::new(exp, &name, &data.pde, &config, &geometry(&data))?;
        let [_, _, _, c] = problem.shape();
        if data.fields.len() != c {
            return Err(bad(format!("{name}: {} fields, {c} expected", data.fields.len())));
        }
        if problem.needs_nu() && !data.param_names.iter().any(|p| p == "nu") {
            return Err(bad(format!("{name}: no per-sample `nu`")));
        }
        Ok(Self { problem, comm: None, data, validation, unconverged: 0, last_validation: vec![], floor: None })
    }

    /// Shares the experts of every step with the ranks of `comm` (`constraint.shard = "experts"`).
    pub fn with_comm(mut self, comm: &'c dyn Communicator) -> Self {
        self.comm = Some(comm);
        self
    }

    /// One step with the experts split between the ranks: the physics loss of samples `ids` (the whole batch, on
    /// every rank) and its gradient in `grads`, identical on every rank up to round-off; the count of unconverged
    /// solves (all ranks). Every rank solves and differentiates its experts; the weights `ω*` and the cotangents
    /// of the features `F̄` are gathered by sums over the ranks. The basis cotangent is the loss's own (through
    /// the stitched solution) plus the features' adjoint applied to `F̄`, and one backward pass through the network
    /// follows.
    pub fn step_sharded(
        &self,
        model: &BasisNet,
        ids: &[usize],
        seed: u64,
        device: &Device,
        comm: &dyn Communicator,
        grads: &mut Vec<f32>,
    ) -> Result<(f64, usize), TrainError> {
        let p = &self.problem;
        let cases = Self::cases(&self.data, ids);
        p.check(&cases)?;
        let s = cases.len();
        let b = model.forward(p.input(&cases, device, model.dtype())).reshape([s, p.exp.basis(), p.grid.len()]);
        let (n, dtype) = (b.dims()[1], b.dtype());
        let leaf = || b.clone().detach().require_grad();
        let bd = leaf();
        let soft = p.exp.constraint.variant == Variant::Soft;
        let (rows, closures, fh) = if soft {
            (vec![], vec![], vec![])
        } else {
            let rows = p.solve_rows(seed);
            let fh = host(features(bd.clone().detach(), &rows));
            let closures = p.grid.closures(&rows, &cases);
            (rows, closures, fh)
        };
        let m = closures.len();
        let width = fh.len() / m.max(1);
        let (rank, size) = (comm.rank(), comm.size());
        let own: Vec<usize> = (0..m).filter(|j| j % size == rank).collect();
        let opts = p.options();
        let solved: Vec<_> = own
            .par_iter()
            .map(|&j| {
                let mut w = vec![p.exp.constraint.init; n];
                solve_expert(closures[j].as_ref(), &fh[j * width..(j + 1) * width], n, &mut w, opts).map(|r| (w, r))
            })
            .collect();
        // [unconverged, failed] over all ranks: a failure on any rank stops every rank
        let mut omega = if soft { vec![1.0; s] } else { vec![0.0; m * n] };
        let mut status = [0.0, 0.0];
        for (&j, r) in own.iter().zip(solved) {
            match r {
                Ok((w, report)) => {
                    omega[j * n..(j + 1) * n].copy_from_slice(&w);
                    status[0] += f64::from(u8::from(!report.converged));
                }
                Err(_) => status[1] += 1.0,
            }
        }
        if !soft {
            comm.all_reduce_sum_f64(&mut omega);
        }
        comm.all_reduce_sum_f64(&mut status);
        if status[1] > 0.0 {
            return Err(TrainError::failed(format!(
                "the experts' solves: {} failed (non-finite residuals)",
                status[1]
            )));
        }
        let shape = if soft { [s, 1] } else { [m, n] };
        let wt = Tensor::<2>::from_data(TensorData::new(omega.clone(), shape), (device, DType::F64))
            .cast(dtype)
            .require_grad();
        let r = p.residual_rows(p.stitch(bd.clone(), wt.clone()), &cases)?;
        let loss = r.powi_scalar(2).sum().div_scalar(s as f64);
        let value = host(loss.clone()).first().copied().unwrap_or(f64::NAN);
        let g = loss.backward();
        let missing = || TrainError::failed("no gradient for the basis or the weights");
        let mut b_bar = bd.grad(&g).ok_or_else(missing)?;
        if !soft {
            let omega_bar = host(wt.grad(&g).ok_or_else(missing)?);
            let parts: Vec<_> = own
                .par_iter()
                .map(|&j| {
                    let mut out = vec![0.0; width];
                    let f = &fh[j * width..(j + 1) * width];
                    let w = &omega[j * n..(j + 1) * n];
                    expert_vjp(closures[j].as_ref(), f, n, w, opts.ridge, &omega_bar[j * n..(j + 1) * n], &mut out)
                        .map(|()| out)
                })
                .collect();
            let mut f_bar = vec![0.0; m * width];
            let mut failed = [0.0];
            for (&j, part) in own.iter().zip(parts) {
                match part {
                    Ok(v) => f_bar[j * width..(j + 1) * width].copy_from_slice(&v),
                    Err(_) => failed[0] += 1.0,
                }
            }
            comm.all_reduce_sum_f64(&mut f_bar);
            comm.all_reduce_sum_f64(&mut failed);
            if failed[0] > 0.0 {
                return Err(TrainError::failed("the experts' implicit backward failed"));
            }
            let fb = Tensor::<2>::from_data(TensorData::new(f_bar, [m, width]), (device, DType::F64)).cast(dtype);
            let b2 = leaf();
            let g2 = (features(b2.clone(), &rows) * fb).sum().backward();
            b_bar = b_bar + b2.grad(&g2).ok_or_else(missing)?;
        }
        let b_bar = Tensor::<3>::from_data(b_bar.into_data(), (device, dtype));
        engine::backward_into(model, (b * b_bar).sum(), grads);
        Ok((value, status[0] as usize))
    }

    /// The cases of samples `ids` of `set`: their first levels and viscosities.
    fn cases(set: &Trajectories, ids: &[usize]) -> Vec<Case> {
        let nu = set.param_names.iter().position(|p| p == "nu");
        ids.iter()
            .map(|&s| Case { initial: set.level(s, 0).to_vec(), nu: nu.map_or(f64::NAN, |j| set.params_of(s)[j]) })
            .collect()
    }

    /// The physics loss of training samples `ids` and the count of unconverged solves.
    pub fn loss(
        &self,
        model: &BasisNet,
        ids: &[usize],
        seed: u64,
        device: &Device,
    ) -> Result<(Tensor<1>, usize), TrainError> {
        self.problem.loss(model, &Self::cases(&self.data, ids), seed, device)
    }

    /// Predictions, errors and residuals of `model` on samples `ids` of `set`.
    pub fn evaluate(
        &self,
        model: &BasisNet,
        set: &Trajectories,
        ids: &[usize],
        device: &Device,
    ) -> Result<Evaluation, TrainError> {
        let (u, residual, unconverged) = self.problem.predict(model, &Self::cases(set, ids), device)?;
        let truth = space_time(set, ids, &self.problem);
        let per = truth.len() / ids.len().max(1);
        let mut err = 0.0;
        for (p, q) in u.chunks(per).zip(truth.chunks(per)) {
            let (mut num, mut den) = (0.0, 0.0);
            for (a, b) in p.iter().zip(q) {
                num += (*a as f64 - *b as f64).powi(2);
                den += (*b as f64).powi(2);
            }
            err += (num / den.max(1e-300)).sqrt();
        }
        let e = self.problem.experts().iter().product::<usize>();
        Ok(Evaluation {
            u,
            relative_l2: err / ids.len().max(1) as f64,
            residual,
            unconverged,
            experts: if self.problem.exp.constraint.variant == Variant::Soft { 0 } else { ids.len() * e },
        })
    }

    /// The mean weighted residual of the reference solution itself on samples `ids` of `set`.
    pub fn reference_residual(&self, set: &Trajectories, ids: &[usize], device: &Device) -> Result<f64, TrainError> {
        self.problem.residual_of(&space_time(set, ids, &self.problem), &Self::cases(set, ids), device)
    }

    /// The validation samples.
    pub fn validation(&self) -> &Trajectories {
        &self.validation
    }
}

/// The global batch from every rank's share, in rank order (sums over the ranks of zero-padded buffers).
fn gather_batch(comm: &dyn Communicator, share: &[usize]) -> Vec<usize> {
    let (rank, size) = (comm.rank(), comm.size());
    let mut counts = vec![0.0; size];
    counts[rank] = share.len() as f64;
    comm.all_reduce_sum_f64(&mut counts);
    let offset = counts[..rank].iter().sum::<f64>() as usize;
    let mut ids = vec![0.0; counts.iter().sum::<f64>() as usize];
    for (k, &i) in share.iter().enumerate() {
        ids[offset + k] = i as f64;
    }
    comm.all_reduce_sum_f64(&mut ids);
    ids.into_iter().map(|v| v as usize).collect()
}

/// The grid of a dataset.
fn geometry(d: &Trajectories) -> Geometry {
    let [ny, nx] = d.grid;
    let x = (0..nx).map(|i| d.coords[i * d.dims]).collect();
    let y = if d.dims == 2 { (0..ny).map(|j| d.coords[j * nx * 2 + 1]).collect() } else { vec![] };
    Geometry { levels: d.levels, level_dt: d.level_dt, x, y }
}

/// Samples `ids` of `set` as `(sample, channel, level, y, x)`, the layout of the predictions.
fn space_time(set: &Trajectories, ids: &[usize], problem: &Problem) -> Vec<f32> {
    let [t, ny, nx, c] = problem.shape();
    let frame = ny * nx;
    let mut out = Vec::with_capacity(ids.len() * c * t * frame);
    for &s in ids {
        for ch in 0..c {
            for l in 0..t {
                out.extend_from_slice(&set.level(s, l)[ch * frame..(ch + 1) * frame]);
            }
        }
    }
    out
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap_or_default()
}

impl Method for Constrained<'_> {
    type Model = BasisNet;

    fn examples(&self) -> usize {
        self.data.count
    }

    fn build(&self, init: &mut Init) -> BasisNet {
        self.problem.build(init)
    }

    fn metric_names(&self) -> Vec<String> {
        vec!["unconverged".into()]
    }

    fn write_setup(&self, out: &Path) -> Result<(), TrainError> {
        let net = self.build(&mut Init::new(self.problem.exp.seed, &Device::flex()));
        engine::write_json(&out.join("run.json"), &self.info(net.num_params()))
    }

    fn step(
        &mut self,
        model: &BasisNet,
        batch: &[usize],
        ctx: &StepContext,
        grads: &mut Vec<f32>,
    ) -> Result<StepOutput, TrainError> {
        // the experts' points depend on (seed, step) only, so every rank of a data-parallel run draws the same
        // points and N ranks compute the 1-rank gradient up to round-off
        let mut seed = self.problem.exp.seed ^ (ctx.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let seed = splitmix(&mut seed);
        if let (Shard::Experts, Some(comm)) = (self.problem.exp.constraint.shard, self.comm) {
            let ids = gather_batch(comm, batch);
            let (loss, unconverged) = self.step_sharded(model, &ids, seed, &ctx.device, comm, grads)?;
            self.unconverged += unconverged as u64;
            return Ok(StepOutput { loss, metrics: vec![self.unconverged as f64] });
        }
        let (loss, unconverged) = self.loss(model, batch, seed, &ctx.device)?;
        self.unconverged += unconverged as u64;
        let loss = engine::backward_into(model, loss, grads);
        if let Some(f) = self.problem.report.take().into_iter().next() {
            return Err(TrainError::failed(format!("a bridge op failed in the backward pass: {f:?}")));
        }
        Ok(StepOutput { loss, metrics: vec![self.unconverged as f64] })
    }

    fn validate(&mut self, model: &BasisNet, device: &Device) -> Result<Option<f64>, TrainError> {
        let ids: Vec<usize> = (0..self.validation.count).collect();
        let mut total = Evaluation::default();
        let started = std::time::Instant::now();
        for chunk in ids.chunks(self.problem.exp.training.batch.max(1)) {
            let e = self.evaluate(model, &self.validation, chunk, device)?;
            total.relative_l2 += e.relative_l2 * chunk.len() as f64;
            total.residual += e.residual * chunk.len() as f64;
            total.unconverged += e.unconverged;
            total.experts += e.experts;
        }
        let k = ids.len().max(1) as f64;
        let per_sample = started.elapsed().as_secs_f64() / k;
        if self.floor.is_none() {
            self.floor = Some(self.reference_residual(&self.validation, &ids, device)?);
        }
        self.last_validation = vec![
            ("val_residual".into(), total.residual / k),
            ("val_reference_residual".into(), self.floor.unwrap_or(f64::NAN)),
            ("val_unconverged".into(), total.unconverged as f64),
            ("val_seconds_per_sample".into(), per_sample),
        ];
        Ok(Some(total.relative_l2 / k))
    }

    fn validation_metric_names(&self) -> Vec<String> {
        vec![
            "val_residual".into(),
            "val_reference_residual".into(),
            "val_unconverged".into(),
            "val_seconds_per_sample".into(),
        ]
    }

    fn validation_metrics(&mut self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.last_validation)
    }

    fn state(&self) -> Vec<u8> {
        self.unconverged.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] =
            state.try_into().map_err(|_| format!("{} bytes of method state, 8 expected", state.len()))?;
        self.unconverged = u64::from_le_bytes(bytes);
        Ok(())
    }
}

// --- runs ----------------------------------------------------------------------------------------------------------

fn reconcile(old: &str, exp: &MoeExperiment, extend: bool, out: &Path) -> Result<Reconciled, TrainError> {
    let old_exp = MoeExperiment::parse(old, "config.toml").map_err(|e| bad(e.to_string()))?;
    let mut mine = exp.clone();
    mine.data.path = old_exp.data.path.clone();
    mine.data.validation = old_exp.data.validation.clone();
    let mut reference = old_exp.clone();
    let (old_steps, new_steps) = (old_exp.training.steps, exp.training.steps);
    if extend {
        if new_steps < old_steps {
            return Err(bad(format!(
                "{}: --extend can only raise `training.steps` (the run has {old_steps}, the configuration {new_steps})",
                out.display()
            )));
        }
        reference.training.steps = new_steps;
        reference.schedule = reference.schedule.clone().resolved(new_steps);
    }
    if reference != mine {
        return Err(bad(format!(
            "{}: the configuration differs from the run's: {}",
            out.display(),
            config_difference(&reference.to_toml(), &mine.to_toml())
        )));
    }
    Ok(Reconciled {
        config_text: reference.to_toml(),
        extended_from: (new_steps != old_steps).then_some(old_steps),
        note: None,
    })
}

/// Loads the training and validation samples of `exp` from `data` (and the validation file, if any).
pub fn load_data(exp: &MoeExperiment, data: &Path) -> Result<(Trajectories, Trajectories), TrainError> {
    match &exp.data.validation {
        Some(p) => Ok((Trajectories::load(data, 0, 0)?, Trajectories::load(p, 0, 0)?)),
        None => {
            let all = Trajectories::load(data, 0, 0)?;
            let v = exp.data.validation_samples;
            if v == 0 || v >= all.count {
                return Err(bad(format!(
                    "{}: {} samples, not enough for {v} validation samples and some training ones (set \
                     `data.validation_samples`, or `data.validation` to another file)",
                    data.display(),
                    all.count
                )));
            }
            let train = all.count - v;
            Ok(all.split(train, v))
        }
    }
}

/// Trains a constrained model for `exp` on `opts.data` into the run directory `opts.out`.
pub fn train_constrained(
    exp: &MoeExperiment,
    opts: &TrainOptions,
    comm: &dyn Communicator,
    observer: &mut dyn Observer,
) -> Result<TrainSummary, TrainError> {
    let exp = exp.clone().validated().map_err(|e| bad(e.to_string()))?;
    let dir =
        RunDir::open(&opts.run_options(), exp.to_toml(), |old| reconcile(old, &exp, opts.extend, &opts.out), comm)?;
    let (data, validation) = load_data(&exp, &opts.data)?;
    let mut method = Constrained::new(&exp, data, validation)?.with_comm(comm);
    engine::train(&mut method, &dir, &exp.settings(), &opts.device, &opts.drills(), comm, observer)
}

// --- trained runs --------------------------------------------------------------------------------------------------

/// What `run.json` of a constrained run records: the data, the grid and the data's generation configuration (from
/// which a trained run rebuilds its problem).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstrainedRunInfo {
    pub data: PathBuf,
    pub pde: String,
    pub fields: Vec<String>,
    /// Levels and cells along x of the space–time grid.
    pub levels: usize,
    pub cells: usize,
    pub level_dt: f64,
    /// Cell centres along x, and along y for 2D data.
    pub x: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub y: Vec<f64>,
    /// Training samples, and the held-out samples of the training file (none with a separate validation file).
    pub train_samples: usize,
    pub test: std::ops::Range<usize>,
    pub generation_config: String,
    pub parameters: usize,
}

impl Constrained<'_> {
    fn info(&self, parameters: usize) -> ConstrainedRunInfo {
        let d = &self.data;
        let separate = self.problem.exp.data.validation.is_some();
        let (train, v) = (d.count, self.validation.count);
        let g = geometry(d);
        ConstrainedRunInfo {
            data: std::fs::canonicalize(&d.path).unwrap_or_else(|_| d.path.clone()),
            pde: d.pde.clone(),
            fields: d.fields.clone(),
            levels: d.levels,
            cells: d.grid[1],
            level_dt: d.level_dt,
            x: g.x,
            y: g.y,
            train_samples: train,
            test: if separate { 0..0 } else { train..train + v },
            generation_config: d.physics.config_text().to_string(),
            parameters,
        }
    }
}

/// Whether `run` is a constrained run (its `config.toml` has `method = "constrained"`).
pub fn is_constrained_run(run: &Path) -> bool {
    std::fs::read_to_string(run.join("config.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.get("method").and_then(|m| m.as_str()) == Some("constrained"))
}

/// A trained constrained run, loaded for prediction ([`crate::rollout::TrajectoryModel`]): from an initial field it
/// gives the whole space–time solution on its training grid.
pub struct ConstrainedTrained {
    pub info: ConstrainedRunInfo,
    pub problem: Problem,
    pub net: BasisNet,
    device: Device,
    name: String,
}

impl ConstrainedTrained {
    pub fn load(run: &Path, device: &Device) -> Result<Self, TrainError> {
        let cpath = run.join("config.toml");
        let text = std::fs::read_to_string(&cpath).map_err(|e| bad(format!("{}: {e}", cpath.display())))?;
        let exp = MoeExperiment::parse(&text, &cpath.display().to_string()).map_err(|e| bad(e.to_string()))?;
        let ipath = run.join("run.json");
        let info: ConstrainedRunInfo = std::fs::read_to_string(&ipath)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| bad(format!("{}: {e}", ipath.display())))?;
        if info.x.len() != info.cells {
            return Err(bad(format!("{}: run.json's coordinates do not match its grid", ipath.display())));
        }
        let geometry = Geometry { levels: info.levels, level_dt: info.level_dt, x: info.x.clone(), y: info.y.clone() };
        let problem = Problem::new(&exp, &ipath.display().to_string(), &info.pde, &info.generation_config, &geometry)?;
        let ck = crate::checkpoint::Checkpoint::load(&run.join("checkpoint.ckpt")).map_err(|e| bad(e.to_string()))?;
        let net = problem.build(&mut Init::new(exp.seed, device));
        if ansatz_operators::flat::layout(&net) != ck.header.layout {
            return Err(bad(format!("{}: the checkpoint does not fit the network in config.toml", run.display())));
        }
        let net = ansatz_operators::flat::unflatten(net, &ck.params);
        let name = match exp.constraint.variant {
            Variant::Soft => "pi-sc".to_string(),
            Variant::Hard => "pi-hc".to_string(),
            Variant::Moe => format!("pi-hc-moe{}", exp.expert_count()),
        };
        Ok(Self { info, problem, net, device: device.clone(), name })
    }

    /// Where the training data came from and which of its samples were held out.
    pub fn provenance(&self) -> crate::rollout::Provenance {
        crate::rollout::Provenance {
            data: self.info.data.clone(),
            test: self.info.test.clone(),
            train_samples: self.info.train_samples,
        }
    }
}

impl crate::rollout::TrajectoryModel for ConstrainedTrained {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn parameters(&self) -> usize {
        self.info.parameters
    }
    fn fields(&self) -> &[String] {
        &self.info.fields
    }
    fn grid(&self) -> [usize; 2] {
        [self.info.y.len().max(1), self.info.cells]
    }
    fn context_frames(&self) -> usize {
        1
    }
    fn frame_interval(&self) -> f64 {
        self.info.level_dt
    }
    fn parameter_names(&self) -> Vec<String> {
        if self.problem.needs_nu() { vec!["nu".into()] } else { vec![] }
    }
    fn predict(&self, context: &[f32], batch: usize, steps: usize, out: &mut [f64]) -> Result<(), TrainError> {
        if self.problem.needs_nu() {
            return Err(bad("the model needs each sample's viscosity `nu`"));
        }
        self.predict_with_parameters(context, &[], batch, steps, out)
    }
    fn predict_with_parameters(
        &self,
        context: &[f32],
        params: &[f64],
        batch: usize,
        steps: usize,
        out: &mut [f64],
    ) -> Result<(), TrainError> {
        let [t, ny, nx, c] = self.problem.shape();
        if steps >= t {
            return Err(bad(format!(
                "the model predicts the {} levels after t = 0 of its training grid, not {steps} (pass --steps {})",
                t - 1,
                t - 1
            )));
        }
        let (plane, frame) = (ny * nx, c * ny * nx);
        if context.len() < batch * frame || (self.problem.needs_nu() && params.len() < batch) {
            return Err(bad(format!("{batch} samples need {} context values and {batch} viscosities", batch * frame)));
        }
        let cases: Vec<Case> = (0..batch)
            .map(|s| Case {
                initial: context[s * frame..(s + 1) * frame].to_vec(),
                nu: if self.problem.needs_nu() { params[s] } else { f64::NAN },
            })
            .collect();
        let (u, _, _) = self.problem.predict(&self.net, &cases, &self.device)?;
        for s in 0..batch {
            for level in 1..=steps {
                for ch in 0..c {
                    let src = &u[((s * c + ch) * t + level) * plane..((s * c + ch) * t + level + 1) * plane];
                    let at = ((s * steps + level - 1) * c + ch) * plane;
                    for (o, v) in out[at..at + plane].iter_mut().zip(src) {
                        *o = *v as f64;
                    }
                }
            }
        }
        Ok(())
    }
}
