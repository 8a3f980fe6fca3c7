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
use ansatz_solvers::constrained::{Closure, ExpertOptions, SorptionClosure, SorptionRow};
use ansatz_solvers::sorption::SorptionConstants;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
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
    /// A `diffusion-sorption` dataset (relative to the configuration file); `--data` overrides.
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

/// `[model]`: the basis network, an FNO over the (t, x) grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoeModel {
    /// Basis functions N (ignored by `soft`, whose network has one output).
    pub basis: usize,
    pub width: usize,
    pub modes_x: usize,
    pub modes_t: usize,
    pub layers: usize,
    pub projection: usize,
    /// GELU on the basis functions (the reference's `activate_last_layer`).
    pub activate_last: bool,
}

impl Default for MoeModel {
    fn default() -> Self {
        Self { basis: 8, width: 32, modes_x: 8, modes_t: 8, layers: 4, projection: 64, activate_last: true }
    }
}

/// `[constraint]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Constraint {
    pub variant: Variant,
    /// Subdomains along t and x (`moe`; `hard` and `soft` ignore it: one domain).
    pub experts: [usize; 2],
    /// PDE points each expert samples per step (all of them when its subdomain has fewer).
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
    /// The first level with PDE rows (≥ 1). The incompatible initial and inflow values make the solution singular
    /// at the corner (t, x) = (0, 0): finite differences of the exact solution leave residuals of order 1 at the
    /// first levels near the inflow, which dominate the physics loss.
    pub pde_from_level: usize,
}

impl Default for Constraint {
    fn default() -> Self {
        Self {
            variant: Variant::Moe,
            experts: [1, 4],
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
        }
    }
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
            ("model.modes_t", m.modes_t),
            ("model.layers", m.layers),
            ("model.projection", m.projection),
            ("constraint.experts[0]", c.experts[0]),
            ("constraint.experts[1]", c.experts[1]),
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

    /// The subdomains `[E_t, E_x]` in use.
    pub fn experts(&self) -> [usize; 2] {
        match self.constraint.variant {
            Variant::Moe => self.constraint.experts,
            _ => [1, 1],
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

/// The basis network: an FNO over the `(t, x)` grid from the initial field (broadcast in t) and the coordinates.
#[derive(Module, Debug)]
pub struct BasisNet {
    fno: Fno,
    activate: bool,
}

impl BasisNet {
    /// `[S, 1, T, X]` initial fields → `[S, N, T, X]` basis functions.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.fno.forward(x);
        if self.activate { gelu(y) } else { y }
    }

    fn dtype(&self) -> DType {
        self.fno.dtype()
    }
}

// --- residual rows -------------------------------------------------------------------------------------------------

/// One feature of one row: up to three grid points (flat `t · X + x`) with stencil coefficients.
type Taps = [(usize, f64); 3];

/// The residual rows of one expert (shared by the samples of a batch; the targets differ per sample).
#[derive(Clone, Debug, Default)]
struct Rows {
    kinds: Vec<SorptionRow>,
    /// Per row, its three features `(u, u_τ or u_x, u_xx)`.
    taps: Vec<[Taps; 3]>,
    weights: Vec<f64>,
    /// The grid column of an initial-condition row (its target is the sample's initial value there).
    column: Vec<usize>,
}

impl Rows {
    fn push(&mut self, kind: SorptionRow, taps: [Taps; 3], column: usize) {
        self.kinds.push(kind);
        self.taps.push(taps);
        self.weights.push(1.0);
        self.column.push(column);
    }

    /// Weights `λ_kind / √count_kind`, with the counts over all experts' rows: the sum of squares over every
    /// expert is then `Σ_kind λ² ×` the kind's mean square over the whole domain, whatever the number of experts.
    fn weigh(all: &mut [Rows], c: &Constraint) {
        let lambda = |k: SorptionRow| match k {
            SorptionRow::Pde => c.pde_weight,
            SorptionRow::Initial => c.initial_weight,
            SorptionRow::Inflow | SorptionRow::Outflow => c.boundary_weight,
        };
        let group = |k: SorptionRow| match k {
            SorptionRow::Pde => 0,
            SorptionRow::Initial => 1,
            SorptionRow::Inflow | SorptionRow::Outflow => 2,
        };
        let mut counts = [0usize; 3];
        for r in all.iter() {
            for (k, w) in r.kinds.iter().zip(&r.weights) {
                if *w != 0.0 {
                    counts[group(*k)] += 1;
                }
            }
        }
        for r in all.iter_mut() {
            for (k, w) in r.kinds.iter().zip(r.weights.iter_mut()) {
                if *w != 0.0 {
                    *w = lambda(*k) / (counts[group(*k)].max(1) as f64).sqrt();
                }
            }
        }
    }

    /// Pads with rows of zero weight to `len` rows.
    fn pad(&mut self, len: usize) {
        while self.kinds.len() < len {
            self.push(SorptionRow::Initial, [[(0, 0.0); 3]; 3], 0);
            *self.weights.last_mut().expect("a row") = 0.0;
        }
    }

    fn len(&self) -> usize {
        self.kinds.len()
    }
}

/// The grid and the problem, for building rows.
#[derive(Clone, Debug)]
struct Grid {
    /// Levels and cells.
    t: usize,
    x: usize,
    dx: f64,
    /// The level spacing in τ = t / T.
    dtau: f64,
    constants: SorptionConstants,
    inflow: f64,
    time_scale: f64,
}

impl Grid {
    fn at(&self, t: usize, x: usize) -> usize {
        t * self.x + x
    }

    fn pde(&self, t: usize, x: usize) -> [Taps; 3] {
        let h = 0.5 / self.dtau;
        let ut = if t + 1 < self.t {
            [(self.at(t + 1, x), h), (self.at(t - 1, x), -h), (0, 0.0)]
        } else {
            [(self.at(t, x), 3.0 * h), (self.at(t - 1, x), -4.0 * h), (self.at(t - 2, x), h)]
        };
        let c = 1.0 / (self.dx * self.dx);
        let uxx = [(self.at(t, x + 1), c), (self.at(t, x), -2.0 * c), (self.at(t, x - 1), c)];
        [[(self.at(t, x), 1.0), (0, 0.0), (0, 0.0)], ut, uxx]
    }

    /// The value at the face x = 0 from the first three cells (third order).
    fn inflow_row(&self, t: usize) -> [Taps; 3] {
        let u = [(self.at(t, 0), 15.0 / 8.0), (self.at(t, 1), -10.0 / 8.0), (self.at(t, 2), 3.0 / 8.0)];
        [u, [(0, 0.0); 3], [(0, 0.0); 3]]
    }

    /// The value and the slope at the face x = L from the last three cells.
    fn outflow_row(&self, t: usize) -> [Taps; 3] {
        let n = self.x;
        let u = [(self.at(t, n - 1), 15.0 / 8.0), (self.at(t, n - 2), -10.0 / 8.0), (self.at(t, n - 3), 3.0 / 8.0)];
        let c = 1.0 / self.dx;
        let ux = [(self.at(t, n - 1), 2.0 * c), (self.at(t, n - 2), -3.0 * c), (self.at(t, n - 3), c)];
        [u, ux, [(0, 0.0); 3]]
    }

    /// The subdomain `(t range, x range)` of expert `e` of `[E_t, E_x]`.
    fn region(&self, e: usize, experts: [usize; 2]) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (et, ex) = (e / experts[1], e % experts[1]);
        let split = |n: usize, parts: usize, i: usize| (i * n / parts)..((i + 1) * n / parts);
        (split(self.t, experts[0], et), split(self.x, experts[1], ex))
    }

    /// The rows of expert `e`: its PDE points (all of them, or `sample` of them drawn from `state`), the initial
    /// points and the boundary points of its subdomain.
    fn rows(&self, e: usize, experts: [usize; 2], sample: Option<(usize, &mut u64)>, c: &Constraint) -> Rows {
        let (tr, xr) = self.region(e, experts);
        let mut rows = Rows::default();
        let mut pde: Vec<(usize, usize)> = Vec::new();
        for t in tr.start.max(c.pde_from_level.max(1))..tr.end {
            for x in xr.start.max(1)..xr.end.min(self.x - 1) {
                pde.push((t, x));
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
        for (t, x) in pde {
            rows.push(SorptionRow::Pde, self.pde(t, x), 0);
        }
        if tr.start == 0 {
            for x in xr.clone() {
                rows.push(
                    SorptionRow::Initial,
                    [[(self.at(0, x), 1.0), (0, 0.0), (0, 0.0)], [(0, 0.0); 3], [(0, 0.0); 3]],
                    x,
                );
            }
        }
        for t in tr.start.max(1)..tr.end {
            if xr.start == 0 {
                rows.push(SorptionRow::Inflow, self.inflow_row(t), 0);
            }
            if xr.end == self.x {
                rows.push(SorptionRow::Outflow, self.outflow_row(t), 0);
            }
        }
        rows
    }

    /// One closure per (sample, expert): the rows with the samples' initial fields as targets.
    fn closures(&self, rows: &[Rows], initial: &[Vec<f32>]) -> Vec<Arc<dyn Closure + Send + Sync>> {
        let mut out: Vec<Arc<dyn Closure + Send + Sync>> = Vec::with_capacity(initial.len() * rows.len());
        for u0 in initial {
            for r in rows {
                let targets = r
                    .kinds
                    .iter()
                    .zip(&r.column)
                    .map(|(k, &col)| match k {
                        SorptionRow::Initial => u0[col] as f64,
                        SorptionRow::Inflow => self.inflow,
                        _ => 0.0,
                    })
                    .collect();
                out.push(Arc::new(SorptionClosure {
                    constants: self.constants,
                    time_scale: self.time_scale,
                    kinds: r.kinds.clone(),
                    weights: r.weights.clone(),
                    targets,
                }));
            }
        }
        out
    }
}

/// The features `F` of every (sample, expert) from the basis `b` (`[S, N, T, X]`): `[S · E, P · 3 · N]`, rows of
/// each expert padded to `P`.
fn features(b: Tensor<4>, rows: &[Rows]) -> Tensor<2> {
    let [s, n, t, x] = b.dims();
    let (e, p) = (rows.len(), rows[0].len());
    let device = b.device();
    let dtype = b.dtype();
    let flat = b.reshape([s, n, t * x]);
    let r = e * p;
    let mut feats = Vec::with_capacity(3);
    for k in 0..3 {
        let mut acc: Option<Tensor<3>> = None;
        for j in 0..3 {
            let mut idx = Vec::with_capacity(r);
            let mut coef = Vec::with_capacity(r);
            for rw in rows {
                for taps in &rw.taps {
                    idx.push(taps[k][j].0 as i64);
                    coef.push(taps[k][j].1);
                }
            }
            if coef.iter().all(|c| *c == 0.0) {
                continue;
            }
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [r]), &device);
            let coef = Tensor::<1>::from_data(TensorData::new(coef, [r]), (&device, DType::F64)).cast(dtype);
            let g = flat.clone().select(2, idx) * coef.reshape([1, 1, r]);
            acc = Some(match acc {
                Some(a) => a + g,
                None => g,
            });
        }
        feats.push(acc.unwrap_or_else(|| Tensor::<3>::zeros([s, n, r], (&device, dtype))));
    }
    Tensor::stack::<4>(feats, 3).reshape([s, n, e, p, 3]).permute([0, 2, 3, 4, 1]).reshape([s * e, p * 3 * n])
}

// --- the method ----------------------------------------------------------------------------------------------------

/// What the validation and the predictions of a model give for a set of samples.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Predicted fields `(sample, level, cell)`.
    pub u: Vec<f32>,
    /// Mean over samples of the relative L2 error over the space–time grid.
    pub relative_l2: f64,
    /// Mean square of the weighted residual rows (all points).
    pub residual: f64,
    /// Experts that stopped without meeting their tolerance, of `experts` solved.
    pub unconverged: usize,
    pub experts: usize,
}

/// The problem a constrained model solves: the configuration, the grid and constants, and the loss rows. Built from
/// the data's generation configuration, so a trained run can predict without its training data.
pub struct Problem {
    pub exp: MoeExperiment,
    grid: Grid,
    /// Rows at every point of the whole domain, for the loss on the stitched solution (one row set).
    loss_rows: Vec<Rows>,
    /// The expert owning each grid point (flat `t · X + x`).
    owner: Vec<i64>,
    report: BridgeReport,
    log: ExpertLog,
}

impl Problem {
    /// `exp` on the grid of `levels` levels `level_dt` apart and the cell centres `x` of a dataset `name` of PDE
    /// `pde` generated with `generation_config`.
    pub fn new(
        exp: &MoeExperiment,
        name: &str,
        pde: &str,
        generation_config: &str,
        levels: usize,
        level_dt: f64,
        x: &[f64],
    ) -> Result<Self, TrainError> {
        let wrong = || {
            bad(format!(
                "{name}: '{pde}' data; the constrained models solve diffusion-sorption (`ansatz generate \
                 diffusion-sorption`)"
            ))
        };
        let spec = ansatz_datasets::rom::RomSpec::from_dataset(pde, generation_config).map_err(|_| wrong())?;
        let RomProblem::Sorption { constants, inflow, .. } = spec.problem else { return Err(wrong()) };
        let (t, nx) = (levels, x.len());
        let [et, ex] = exp.experts();
        if t < 3 || nx < 4 || et > t || ex * 3 > nx {
            return Err(bad(format!(
                "{name}: {t} levels × {nx} cells is too small for {et} × {ex} experts (3 levels, and 3 cells per \
                 expert along x, at least)"
            )));
        }
        let time_scale = match exp.constraint.time_scale {
            0.0 => level_dt * (t - 1) as f64,
            v => v,
        };
        let dx = x[1] - x[0];
        let grid = Grid { t, x: nx, dx, dtau: level_dt / time_scale, constants, inflow, time_scale };
        let mut loss_rows = vec![grid.rows(0, [1, 1], None, &exp.constraint)];
        Rows::weigh(&mut loss_rows, &exp.constraint);
        let mut owner = vec![0i64; t * nx];
        for e in 0..et * ex {
            let (tr, xr) = grid.region(e, [et, ex]);
            for ti in tr {
                for xi in xr.clone() {
                    owner[ti * nx + xi] = e as i64;
                }
            }
        }
        Ok(Self { exp: exp.clone(), grid, loss_rows, owner, report: BridgeReport::new(), log: ExpertLog::new() })
    }

    /// Levels and cells of the grid.
    pub fn shape(&self) -> [usize; 2] {
        [self.grid.t, self.grid.x]
    }

    /// The basis network (untrained, from `init`).
    pub fn build(&self, init: &mut Init) -> BasisNet {
        let m = &self.exp.model;
        let config =
            FnoConfig::new(1, self.exp.basis(), m.width, m.modes_x, m.modes_t, m.layers, self.grid.x, self.grid.t)
                .with_projection(m.projection);
        BasisNet { fno: config.init(init), activate: m.activate_last && self.exp.constraint.variant != Variant::Soft }
    }

    fn options(&self) -> ExpertOptions {
        let c = &self.exp.constraint;
        ExpertOptions { gtol: c.tol, ftol: 1e-10, max_iter: c.max_iter, ridge: c.ridge }
    }

    /// The network's input `[S, 1, T, X]`: each initial field broadcast in t.
    fn input(&self, initial: &[Vec<f32>], device: &Device, dtype: DType) -> Tensor<4> {
        let (t, x) = (self.grid.t, self.grid.x);
        let mut v = Vec::with_capacity(initial.len() * t * x);
        for u0 in initial {
            for _ in 0..t {
                v.extend_from_slice(u0);
            }
        }
        Tensor::<4>::from_data(TensorData::new(v, [initial.len(), 1, t, x]), (device, DType::F32)).cast(dtype)
    }

    /// The experts' rows for a solve: `points` PDE points drawn from `seed`, padded alike.
    fn solve_rows(&self, seed: u64) -> Vec<Rows> {
        let experts = self.exp.experts();
        let mut state = seed;
        let mut rows: Vec<Rows> = (0..experts[0] * experts[1])
            .map(|e| self.grid.rows(e, experts, Some((self.exp.constraint.points, &mut state)), &self.exp.constraint))
            .collect();
        Rows::weigh(&mut rows, &self.exp.constraint);
        let p = rows.iter().map(Rows::len).max().unwrap_or(0);
        rows.iter_mut().for_each(|r| r.pad(p));
        rows
    }

    /// The basis of the initial fields `[S, N, T, X]`, the basis weights of every (sample, expert) `[S · E, N]`
    /// (ones for `soft`) and the count of unconverged solves.
    fn weights(
        &self,
        model: &BasisNet,
        initial: &[Vec<f32>],
        seed: u64,
        device: &Device,
    ) -> Result<(Tensor<4>, Tensor<2>, usize), TrainError> {
        let b = model.forward(self.input(initial, device, model.dtype()));
        let [s, n, _, _] = b.dims();
        if self.exp.constraint.variant == Variant::Soft {
            let ones = Tensor::<2>::ones([s, 1], (&b.device(), b.dtype()));
            return Ok((b, ones, 0));
        }
        let rows = self.solve_rows(seed);
        let f = features(b.clone(), &rows);
        let closures = self.grid.closures(&rows, initial);
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

    /// The stitched solution `[S, 1, T, X]`: at every point, the basis times the weights of the expert owning it
    /// (`omega` is `[S · E, N]`).
    fn stitch(&self, b: Tensor<4>, omega: Tensor<2>) -> Tensor<4> {
        let [s, n, t, x] = b.dims();
        let e = omega.dims()[0] / s.max(1);
        let owner = Tensor::<1, Int>::from_data(TensorData::new(self.owner.clone(), [t * x]), &b.device());
        let w = omega.reshape([s, e, n]).select(1, owner); // [S, T·X, N]
        let basis = b.reshape([s, n, t * x]).swap_dims(1, 2); // [S, T·X, N]
        (basis * w).sum_dim(2).reshape([s, 1, t, x])
    }

    /// The weighted residual rows of the whole domain `[S, P]` for a solution `u` (`[S, 1, T, X]`).
    fn residual_rows(&self, u: Tensor<4>, initial: &[Vec<f32>]) -> Result<Tensor<2>, TrainError> {
        let s = u.dims()[0];
        let ones = Tensor::<2>::ones([s, 1], (&u.device(), u.dtype()));
        let f = features(u, &self.loss_rows);
        let closures = self.grid.closures(&self.loss_rows, initial);
        bridge::residuals(closures, 1, Tensor::cat(vec![f, ones], 1), &self.report)
            .map_err(|err| TrainError::failed(format!("the residual rows: {err}")))
    }

    /// The physics loss from the initial fields (the weighted sum of squares over every expert's rows, averaged
    /// over the samples) and the count of unconverged solves.
    pub fn loss(
        &self,
        model: &BasisNet,
        initial: &[Vec<f32>],
        seed: u64,
        device: &Device,
    ) -> Result<(Tensor<1>, usize), TrainError> {
        let (b, omega, unconverged) = self.weights(model, initial, seed, device)?;
        let r = self.residual_rows(self.stitch(b, omega), initial)?;
        Ok((r.powi_scalar(2).sum().div_scalar(initial.len() as f64), unconverged))
    }

    /// The stitched solutions `(sample, level, cell)` from the initial fields, their physics residual (averaged
    /// over the samples) and the count of unconverged solves. The experts sample their PDE points with a fixed
    /// seed, so a prediction is deterministic.
    pub fn predict(
        &self,
        model: &BasisNet,
        initial: &[Vec<f32>],
        device: &Device,
    ) -> Result<(Vec<f32>, f64, usize), TrainError> {
        let seed = self.exp.seed ^ 0x5EED_F00D;
        let (b, omega, unconverged) = self.weights(model, initial, seed, device)?;
        let u = self.stitch(b, omega);
        let r = self.residual_rows(u.clone(), initial)?;
        let residual = host(r.powi_scalar(2).sum()).first().copied().unwrap_or(f64::NAN) / initial.len() as f64;
        let u = host(u.reshape([-1])).into_iter().map(|v| v as f32).collect();
        Ok((u, residual, unconverged))
    }

    /// The mean weighted residual of given solutions `(sample, level, cell)` (as one basis function with weight
    /// 1): for the reference solution, the floor the physics loss can reach with these stencils on this grid.
    pub fn residual_of(&self, fields: &[f32], initial: &[Vec<f32>], device: &Device) -> Result<f64, TrainError> {
        let (t, x, s) = (self.grid.t, self.grid.x, initial.len());
        let u = Tensor::<4>::from_data(TensorData::new(fields.to_vec(), [s, 1, t, x]), (device, DType::F32))
            .cast(DType::F64);
        let r = self.residual_rows(u, initial)?;
        Ok(host(r.powi_scalar(2).sum()).first().copied().unwrap_or(f64::NAN) / s.max(1) as f64)
    }
}

/// Training state of the constrained models.
pub struct Constrained {
    pub problem: Problem,
    data: Trajectories,
    validation: Trajectories,
    unconverged: u64,
    last_validation: Vec<(String, f64)>,
    /// The validation data's own residual (once computed).
    floor: Option<f64>,
}

impl Constrained {
    pub fn new(exp: &MoeExperiment, data: Trajectories, validation: Trajectories) -> Result<Self, TrainError> {
        let name = data.path.display().to_string();
        let Physics::Rom(spec) = &data.physics else {
            return Err(bad(format!(
                "{name}: not a diffusion-sorption dataset (`ansatz generate diffusion-sorption`)"
            )));
        };
        if data.dims != 1 || data.fields.len() != 1 {
            return Err(bad(format!("{name}: one field on a 1D grid expected")));
        }
        if validation.levels != data.levels || validation.grid != data.grid {
            return Err(bad(format!(
                "{}: a grid of {} levels × {} cells, the training data's is {} × {}",
                validation.path.display(),
                validation.levels,
                validation.grid[1],
                data.levels,
                data.grid[1]
            )));
        }
        let x: Vec<f64> = data.coords.clone();
        let problem = Problem::new(exp, &name, &data.pde, &spec.config_text, data.levels, data.level_dt, &x)?;
        Ok(Self { problem, data, validation, unconverged: 0, last_validation: vec![], floor: None })
    }

    fn initial(set: &Trajectories, ids: &[usize]) -> Vec<Vec<f32>> {
        ids.iter().map(|&s| set.level(s, 0).to_vec()).collect()
    }

    /// The physics loss of training samples `ids` and the count of unconverged solves.
    pub fn loss(
        &self,
        model: &BasisNet,
        ids: &[usize],
        seed: u64,
        device: &Device,
    ) -> Result<(Tensor<1>, usize), TrainError> {
        self.problem.loss(model, &Self::initial(&self.data, ids), seed, device)
    }

    /// Predictions, errors and residuals of `model` on samples `ids` of `set`.
    pub fn evaluate(
        &self,
        model: &BasisNet,
        set: &Trajectories,
        ids: &[usize],
        device: &Device,
    ) -> Result<Evaluation, TrainError> {
        let initial = Self::initial(set, ids);
        let (u, residual, unconverged) = self.problem.predict(model, &initial, device)?;
        let [t, x] = self.problem.shape();
        let mut err = 0.0;
        for (si, &id) in ids.iter().enumerate() {
            let (mut num, mut den) = (0.0, 0.0);
            for ti in 0..t {
                let truth = set.level(id, ti);
                for xi in 0..x {
                    let d = u[(si * t + ti) * x + xi] as f64 - truth[xi] as f64;
                    num += d * d;
                    den += (truth[xi] as f64).powi(2);
                }
            }
            err += (num / den.max(1e-300)).sqrt();
        }
        let experts = self.problem.exp.experts();
        let e = experts[0] * experts[1];
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
        let [t, _] = self.problem.shape();
        let fields: Vec<f32> =
            ids.iter().flat_map(|&s| (0..t).flat_map(move |l| set.level(s, l).iter().copied())).collect();
        self.problem.residual_of(&fields, &Self::initial(set, ids), device)
    }

    /// The validation samples.
    pub fn validation(&self) -> &Trajectories {
        &self.validation
    }
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap_or_default()
}

impl Method for Constrained {
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
    let mut method = Constrained::new(&exp, data, validation)?;
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
    /// Levels and cells of the space–time grid.
    pub levels: usize,
    pub cells: usize,
    pub level_dt: f64,
    pub x: Vec<f64>,
    /// Training samples, and the held-out samples of the training file (none with a separate validation file).
    pub train_samples: usize,
    pub test: std::ops::Range<usize>,
    pub generation_config: String,
    pub parameters: usize,
}

impl Constrained {
    fn info(&self, parameters: usize) -> ConstrainedRunInfo {
        let d = &self.data;
        let separate = self.problem.exp.data.validation.is_some();
        let (train, v) = (d.count, self.validation.count);
        let config = match &d.physics {
            Physics::Rom(spec) => spec.config_text.clone(),
            _ => String::new(),
        };
        ConstrainedRunInfo {
            data: std::fs::canonicalize(&d.path).unwrap_or_else(|_| d.path.clone()),
            pde: d.pde.clone(),
            fields: d.fields.clone(),
            levels: d.levels,
            cells: d.grid[1],
            level_dt: d.level_dt,
            x: d.coords.clone(),
            train_samples: train,
            test: if separate { 0..0 } else { train..train + v },
            generation_config: config,
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
        let problem = Problem::new(
            &exp,
            &ipath.display().to_string(),
            &info.pde,
            &info.generation_config,
            info.levels,
            info.level_dt,
            &info.x,
        )?;
        let ck = crate::checkpoint::Checkpoint::load(&run.join("checkpoint.ckpt")).map_err(|e| bad(e.to_string()))?;
        let net = problem.build(&mut Init::new(exp.seed, device));
        if ansatz_operators::flat::layout(&net) != ck.header.layout {
            return Err(bad(format!("{}: the checkpoint does not fit the network in config.toml", run.display())));
        }
        let net = ansatz_operators::flat::unflatten(net, &ck.params);
        let name = match exp.constraint.variant {
            Variant::Soft => "pi-sc".to_string(),
            Variant::Hard => "pi-hc".to_string(),
            Variant::Moe => format!("pi-hc-moe{}", exp.experts()[0] * exp.experts()[1]),
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
        [1, self.info.cells]
    }
    fn context_frames(&self) -> usize {
        1
    }
    fn frame_interval(&self) -> f64 {
        self.info.level_dt
    }
    fn predict(&self, context: &[f32], batch: usize, steps: usize, out: &mut [f64]) -> Result<(), TrainError> {
        let [t, x] = self.problem.shape();
        if steps >= t {
            return Err(bad(format!(
                "the model predicts the {} levels after t = 0 of its training grid, not {steps} (pass --steps {})",
                t - 1,
                t - 1
            )));
        }
        let initial: Vec<Vec<f32>> = context.chunks(x).take(batch).map(<[f32]>::to_vec).collect();
        let (u, _, _) = self.problem.predict(&self.net, &initial, &self.device)?;
        for s in 0..batch {
            for level in 1..=steps {
                let src = &u[(s * t + level) * x..(s * t + level + 1) * x];
                for (o, v) in out[(s * steps + level - 1) * x..(s * steps + level) * x].iter_mut().zip(src) {
                    *o = *v as f64;
                }
            }
        }
        Ok(())
    }
}
