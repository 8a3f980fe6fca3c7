//! The deep conjugate direction method's network, trained without labels on the line-search residual
//! (`docs/methods/dcdm.md`). For a unit right-hand side `b` of system `A` and the network's direction
//! `q = f_θ(b)`:
//!
//! ```text
//! L = ‖b − (qᵀb / qᵀAq) A q‖²
//! ```
//!
//! the residual left by the exact line search along `q`, averaged over the batch. `A q` is the sparse
//! matrix–vector bridge op, so the gradient reaches the network through `Aᵀ = A`. The data are the Ritz-vector
//! right-hand sides of `ansatz generate ritz-poisson2d|ritz-poisson3d`; the last `data.validation_systems`
//! systems of the file are held out and never enter a batch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ansatz_cluster::Communicator;
use ansatz_datasets::reader::Dataset;
use ansatz_operators::bridge::{BridgeReport, SparseOperator, spmv};
use ansatz_operators::dcdm::{DcdmConfig, DcdmNet};
use ansatz_operators::init::Init;
use ansatz_operators::precond_file::{NetworkKind, NetworkSpec, PrecondFile};
use ansatz_solvers::linalg::CsrMatrix;
use ansatz_solvers::poisson::{PoissonBc, PoissonFv};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, OptimiserConfig, OptimiserKind};
use crate::engine::{self, Method, Observer, Reconciled, RunDir, Settings, StepContext, StepOutput};
use crate::engine::{TrainError, TrainSummary, config_difference};
use crate::schedule::Schedule;
use crate::trainer::TrainOptions;

fn bad(m: impl Into<String>) -> TrainError {
    TrainError::input(m)
}

fn cfg_err(m: impl Into<String>) -> ConfigError {
    ConfigError(m.into())
}

/// A DCDM training configuration (`ansatz precond train`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcdmExperiment {
    /// Seeds the initial weights and the order of the training samples.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: DcdmData,
    #[serde(default)]
    pub model: DcdmModel,
    #[serde(default = "default_optimiser")]
    pub optimiser: OptimiserConfig,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    #[serde(default)]
    pub training: DcdmTraining,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DcdmData {
    /// A `ritz-poisson2d` or `ritz-poisson3d` dataset (relative to the configuration file); `--data` overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The last this many systems of the file are the validation set (their samples never enter a batch).
    pub validation_systems: usize,
}

impl Default for DcdmData {
    fn default() -> Self {
        Self { path: None, validation_systems: 1 }
    }
}

/// `[model]`: the network of [`DcdmConfig`] (its dimension comes from the data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DcdmModel {
    pub channels: usize,
    pub fine_pairs: usize,
    pub coarse_pairs: usize,
    pub post_pairs: usize,
    /// Antisymmetrise the network (`f(−x) = −f(x)`, as for `A⁻¹`).
    pub odd: bool,
    /// Coarse levels, each 2× coarser per axis; 0: as many as the grid allows (down to sides of 4 to 7 cells).
    pub levels: usize,
    /// Residual pairs on each intermediate level, each way (shared by all intermediate levels).
    pub level_pairs: usize,
    /// `residual` (the residual CNN of Kaneda et al.) or `multilevel` (a learnt symmetric positive definite
    /// multilevel preconditioner; it uses `channels`, `levels` and `convs` only).
    pub kind: NetworkKind,
    /// Convolutions per encoder of the multilevel network.
    pub convs: usize,
}

impl Default for DcdmModel {
    fn default() -> Self {
        Self {
            channels: 16,
            fine_pairs: 2,
            coarse_pairs: 3,
            post_pairs: 2,
            odd: true,
            levels: 1,
            level_pairs: 1,
            kind: NetworkKind::Residual,
            convs: 2,
        }
    }
}

impl DcdmModel {
    /// The network for `dims` space dimensions, as an exported file describes it.
    pub fn spec(&self, dims: usize) -> NetworkSpec {
        NetworkSpec {
            dims,
            channels: self.channels,
            fine_pairs: self.fine_pairs,
            coarse_pairs: self.coarse_pairs,
            post_pairs: self.post_pairs,
            odd: self.odd,
            levels: self.levels,
            level_pairs: self.level_pairs,
            kind: self.kind,
            convs: self.convs,
        }
    }

    /// The network configuration for `dims` space dimensions.
    pub fn config(&self, dims: usize) -> DcdmConfig {
        self.spec(dims).config()
    }
}

/// `[training]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DcdmTraining {
    /// Optimiser steps.
    pub steps: usize,
    /// Right-hand sides per step (the global batch; under MPI it is divided among the ranks).
    pub batch: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Score the validation samples every this many steps (0: only at the end).
    pub validate_every: usize,
    /// At most this many validation samples are scored (0: all).
    pub validation_samples: usize,
    /// After this many consecutive non-finite steps the last good checkpoint is restored.
    pub max_nonfinite: usize,
    /// Add `max(0, −cos∠(q, b))` to each sample's loss (off by default). The line search flips a direction that
    /// points away from `b` for free, so the plain loss cannot tell `f` from `−f`, and a network may point along
    /// `A⁻¹b` for some modes and against it for others, which stalls DCDM and flexible CG. The term asks for
    /// `bᵀ f(b) > 0` per sample; it has not been shown to cure the stall (docs/methods/dcdm.md).
    pub positive_step: bool,
    /// What one line search along `q = f(b)` is scored by: `residual`, the squared residual it leaves (Kaneda et
    /// al.), or `energy`, the share of the error's energy norm it leaves, `1 − (qᵀb)² / (qᵀAq · bᵀA⁻¹b)`, which
    /// is what a conjugate-direction step reduces (`bᵀA⁻¹b` is computed once per sample when the data load).
    pub loss: LossKind,
}

/// The loss of one exact line search along the network's direction (`training.loss`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// `‖b − (qᵀb / qᵀAq) A q‖²`.
    #[default]
    Residual,
    /// `1 − (qᵀb)² / (qᵀAq · bᵀA⁻¹b)`.
    Energy,
}

impl Default for DcdmTraining {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch: 10,
            checkpoint_every: 100,
            validate_every: 100,
            validation_samples: 200,
            max_nonfinite: 3,
            positive_step: false,
            loss: LossKind::Residual,
        }
    }
}

fn default_optimiser() -> OptimiserConfig {
    OptimiserConfig { kind: OptimiserKind::Adam, weight_decay: 0.0, clip_norm: 0.0, ..OptimiserConfig::default() }
}

fn default_schedule() -> Schedule {
    Schedule::Constant { rate: 1e-4 }
}

impl DcdmExperiment {
    /// Parses and validates a configuration; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let exp: Self = toml::from_str(text).map_err(|e| cfg_err(format!("{origin}: {e}")))?;
        exp.validated().map_err(|e| cfg_err(format!("{origin}: {e}")))
    }

    /// Checks every value; resolves the schedule's length.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        let m = &self.model;
        for (key, v) in [("model.channels", m.channels), ("model.convs", m.convs)] {
            if v == 0 {
                return Err(cfg_err(format!("`{key}` must be at least 1")));
            }
        }
        if m.levels > 16 {
            return Err(cfg_err(format!(
                "`model.levels` must be at most 16 (0 chooses from the grid), got {}",
                m.levels
            )));
        }
        let t = &self.training;
        for (key, v) in [
            ("training.steps", t.steps),
            ("training.batch", t.batch),
            ("training.checkpoint_every", t.checkpoint_every),
            ("training.max_nonfinite", t.max_nonfinite),
        ] {
            if v == 0 {
                return Err(cfg_err(format!("`{key}` must be at least 1")));
            }
        }
        let o = &self.optimiser;
        for (key, v) in [("optimiser.weight_decay", o.weight_decay), ("optimiser.clip_norm", o.clip_norm)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(cfg_err(format!("`{key}` must be finite and ≥ 0, got {v}")));
            }
        }
        for (key, v) in [("optimiser.beta1", o.beta1), ("optimiser.beta2", o.beta2), ("optimiser.momentum", o.momentum)]
        {
            if !(0.0..1.0).contains(&v) {
                return Err(cfg_err(format!("`{key}` must lie in [0, 1), got {v}")));
            }
        }
        if !(o.epsilon.is_finite() && o.epsilon > 0.0) {
            return Err(cfg_err(format!("`optimiser.epsilon` must be positive, got {}", o.epsilon)));
        }
        self.schedule = self.schedule.clone().resolved(t.steps);
        self.schedule.validate().map_err(|e| cfg_err(e.to_string()))?;
        Ok(self)
    }

    /// The configuration as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a DCDM configuration serialises")
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
                validation_windows: t.validation_samples,
                max_nonfinite: t.max_nonfinite,
                ..crate::config::TrainingConfig::default()
            },
            optimiser: self.optimiser.clone(),
            schedule: self.schedule.clone(),
        }
    }
}

/// One system of the data: its matrix on the cell grid (rows and columns of solid cells empty), shared by the
/// bridge op.
struct System {
    op: Arc<SparseOperator>,
    problem: PoissonFv,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System").field("unknowns", &self.problem.cells().len()).finish()
    }
}

/// The right-hand sides of a Ritz dataset, on the cell grid, grouped by system.
#[derive(Debug)]
pub struct RitzData {
    /// `[nz, ny, nx]` (`nz = 1` in 2D).
    pub grid: [usize; 3],
    pub dims: usize,
    /// Sample `s` at `b[s * cells..(s + 1) * cells]`.
    b: Vec<f32>,
    /// The system of each sample.
    system_of: Vec<usize>,
    systems: Vec<System>,
    /// `bᵀA⁻¹b` of each sample, once [`RitzData::compute_energies`] has run.
    energy: Option<Vec<f64>>,
}

/// What the data looked like (`run.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DcdmRunInfo {
    pub dims: usize,
    pub grid: [usize; 3],
    pub systems: usize,
    pub training_samples: usize,
    pub validation_samples: usize,
    pub parameters: usize,
}

/// The matrix of `problem` with its unknowns placed on the cell grid: `P A Pᵀ`, `P` the injection of the
/// unknowns into the grid (rows and columns of solid cells are empty).
pub fn grid_matrix(problem: &PoissonFv) -> Result<CsrMatrix, TrainError> {
    let a = problem.assemble();
    let cells = problem.cells();
    let (ip, ix, vx) = a.parts();
    let mut t = Vec::with_capacity(vx.len());
    for r in 0..a.nrows() {
        for k in ip[r]..ip[r + 1] {
            t.push((cells[r], cells[ix[k] as usize], vx[k]));
        }
    }
    let n = problem.grid_cells();
    CsrMatrix::from_triplets(n, n, &t).map_err(|e| TrainError::failed(format!("grid matrix: {e}")))
}

/// The Poisson problem of a Ritz dataset's system from its stored `k` and `fluid` fields (u = 0 on every
/// side, unit square or cube).
pub fn ritz_problem(grid: [usize; 3], dims: usize, k: &[f64], fluid: &[f64]) -> Result<PoissonFv, String> {
    let mask: Vec<bool> = fluid.iter().map(|v| *v > 0.5).collect();
    let zero = PoissonBc::Dirichlet(0.0);
    let [nz, ny, nx] = grid;
    if dims == 3 {
        PoissonFv::new_3d([nx, ny, nz], [1.0; 3], Some(k.to_vec()), [zero; 6], Some(mask))
    } else {
        PoissonFv::new_2d(nx, ny, [1.0, 1.0], Some(k.to_vec()), [zero; 4], Some(mask))
    }
    .map_err(|e| e.to_string())
}

impl RitzData {
    /// Reads a `ritz-poisson2d|3d` dataset and rebuilds its systems.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let what = |e: ansatz_datasets::DatasetError| bad(format!("{}: {e}", path.display()));
        let ds = Dataset::open(path).map_err(what)?;
        let dims = match ds.pde.as_str() {
            "ritz-poisson2d" => 2,
            "ritz-poisson3d" => 3,
            other => {
                return Err(bad(format!(
                    "{}: a dataset of '{other}', not of Ritz right-hand sides (`ansatz generate ritz-poisson2d` makes one)",
                    path.display()
                )));
            }
        };
        let (nx, ny) = (ds.x.len(), ds.y.as_ref().map_or(1, Vec::len));
        let nz = if dims == 3 { ds.z.as_ref().map_or(1, Vec::len) } else { 1 };
        let grid = [nz, ny, nx];
        let cells = nx * ny * nz;
        let n = ds.samples_complete;
        if n == 0 {
            return Err(bad(format!("{}: no complete samples", path.display())));
        }
        let system_of: Vec<usize> = ds.parameter("system").map_err(what)?.iter().map(|&s| s as usize).collect();
        let b64 = ds.read_static("b", 0..n).map_err(what)?;
        let b64 = b64.as_slice().ok_or_else(|| bad(format!("{}: variable 'b' is not contiguous", path.display())))?;
        if b64.len() != n * cells {
            return Err(bad(format!(
                "{}: variable 'b' has {} values, expected {}",
                path.display(),
                b64.len(),
                n * cells
            )));
        }
        if let Some(i) = b64.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "{}: variable 'b' holds a non-finite value (sample {})",
                path.display(),
                i / cells
            )));
        }
        // one matrix per distinct system, from its first sample's k and fluid mask
        let mut first: BTreeMap<usize, usize> = BTreeMap::new();
        for (s, &sys) in system_of.iter().enumerate().take(n) {
            first.entry(sys).or_insert(s);
        }
        let count = first.keys().next_back().map_or(0, |&m| m + 1);
        if first.len() != count {
            return Err(bad(format!("{}: the systems are not numbered 0..{count}", path.display())));
        }
        let mut systems = Vec::with_capacity(count);
        for (&sys, &s) in &first {
            let k = ds.read_static("k", s..s + 1).map_err(what)?;
            let fluid = ds.read_static("fluid", s..s + 1).map_err(what)?;
            let (k, fluid) = (k.iter().copied().collect::<Vec<f64>>(), fluid.iter().copied().collect::<Vec<f64>>());
            let problem = ritz_problem(grid, dims, &k, &fluid)
                .map_err(|e| bad(format!("{}: system {sys}: {e}", path.display())))?;
            systems.push(System { op: Arc::new(SparseOperator::new(grid_matrix(&problem)?)), problem });
        }
        let b = b64.iter().map(|&v| v as f32).collect();
        Ok(Self { grid, dims, b, system_of: system_of[..n].to_vec(), systems, energy: None })
    }

    /// Computes `bᵀA⁻¹b` of every sample (IC(0)-preconditioned CG to a relative residual of 1e-10, in
    /// parallel), which the energy loss needs. Fails if a solve does not converge.
    pub fn compute_energies(&mut self) -> Result<(), TrainError> {
        use rayon::prelude::*;
        if self.energy.is_some() {
            return Ok(());
        }
        let cells = self.cells();
        let mut energy = vec![0.0; self.samples()];
        for (sys, system) in self.systems.iter().enumerate() {
            let a = system.problem.assemble();
            let ic = ansatz_solvers::precond::Ic0::shifted(&a)
                .map_err(|e| TrainError::failed(format!("system {sys}: IC(0): {e}")))?;
            let ids: Vec<usize> = (0..self.samples()).filter(|&s| self.system_of[s] == sys).collect();
            let values: Vec<Result<f64, String>> = ids
                .par_iter()
                .map(|&s| {
                    let b: Vec<f64> =
                        system.problem.cells().iter().map(|&c| f64::from(self.b[s * cells + c])).collect();
                    let mut x = vec![0.0; b.len()];
                    let tol = ansatz_solvers::krylov::Tolerance::relative(1e-10, 10 * b.len() + 100);
                    ansatz_solvers::krylov::pcg(&a, &ic, &b, &mut x, tol)
                        .map_err(|e| format!("sample {s} (system {sys}): bᵀA⁻¹b: {e}"))?;
                    Ok(b.iter().zip(&x).map(|(p, q)| p * q).sum())
                })
                .collect();
            for (&s, v) in ids.iter().zip(values) {
                energy[s] = v.map_err(TrainError::failed)?;
            }
        }
        self.energy = Some(energy);
        Ok(())
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.system_of.len()
    }

    /// Number of systems.
    pub fn systems(&self) -> usize {
        self.systems.len()
    }

    fn cells(&self) -> usize {
        self.grid.iter().product()
    }
}

/// The line-search loss of `samples`, averaged: with [`LossKind::Residual`] each `L = ‖b − (qᵀb / qᵀAq) A q‖²`,
/// with [`LossKind::Energy`] `L = 1 − (qᵀb)² / (qᵀAq · bᵀA⁻¹b)` (the data need
/// [`RitzData::compute_energies`]). The samples are grouped by system (one bridge op per group). Returns the
/// loss tensor `[1]`.
pub fn line_search_loss(
    model: &DcdmNet,
    data: &RitzData,
    samples: &[usize],
    (kind, positive_step): (LossKind, bool),
    device: &Device,
    report: &BridgeReport,
) -> Result<Tensor<1>, TrainError> {
    let energy = match (kind, &data.energy) {
        (LossKind::Energy, None) => {
            return Err(TrainError::failed("the energy loss needs bᵀA⁻¹b of the data (RitzData::compute_energies)"));
        }
        (LossKind::Energy, Some(e)) => Some(e),
        (LossKind::Residual, _) => None,
    };
    let cells = data.cells();
    let [nz, ny, nx] = data.grid;
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &s in samples {
        groups.entry(data.system_of[s]).or_default().push(s);
    }
    let mut total: Option<Tensor<1>> = None;
    for (sys, ids) in groups {
        let g = ids.len();
        let mut values = Vec::with_capacity(g * cells);
        for &s in &ids {
            values.extend_from_slice(&data.b[s * cells..(s + 1) * cells]);
        }
        let b = Tensor::<2>::from_data(TensorData::new(values, [g, cells]), (device, DType::F32)).cast(model.dtype());
        let q = model.forward(b.clone().reshape([g, 1, nz, ny, nx])).reshape([g, cells]);
        let aq =
            spmv(data.systems[sys].op.clone(), q.clone(), report).map_err(|e| TrainError::failed(e.to_string()))?;
        let qb = (q.clone() * b.clone()).sum_dim(1);
        let qaq = (q.clone() * aq.clone()).sum_dim(1);
        // the loss does not see the sign of q; with `positive_step` a direction pointing away from b (unit norm,
        // so cos = qᵀb / ‖q‖) pays −cos
        let penalty = positive_step
            .then(|| (qb.clone() / (q.clone() * q).sum_dim(1).sqrt().add_scalar(1e-30)).neg().clamp_min(0.0));
        let mut l = match energy {
            Some(e) => {
                let e: Vec<f64> = ids.iter().map(|&s| e[s]).collect();
                let e = Tensor::<2>::from_data(TensorData::new(e, [g, 1]), (device, DType::F64)).cast(model.dtype());
                (qb.clone() * qb / (qaq * e)).neg().add_scalar(1.0)
            }
            None => (b - aq * (qb / qaq)).powf_scalar(2.0).sum_dim(1),
        };
        if let Some(p) = penalty {
            l = l + p;
        }
        let l = l.sum().reshape([1]);
        total = Some(match total {
            None => l,
            Some(t) => t + l,
        });
    }
    let total = total.ok_or_else(|| TrainError::failed("an empty batch"))?;
    Ok(total.div_scalar(samples.len() as f64))
}

/// The DCDM method on loaded data.
pub struct Dcdm {
    exp: DcdmExperiment,
    data: RitzData,
    train: Vec<usize>,
    validation: Vec<usize>,
    report: BridgeReport,
}

impl Dcdm {
    /// Splits `data` by system: the last `data.validation_systems` systems are the validation samples.
    pub fn new(exp: &DcdmExperiment, data: RitzData) -> Result<Self, TrainError> {
        let held = exp.data.validation_systems;
        if held >= data.systems() {
            return Err(bad(format!(
                "`data.validation_systems` = {held} leaves no training system (the data have {})",
                data.systems()
            )));
        }
        let first_held = data.systems() - held;
        let (train, validation): (Vec<usize>, Vec<usize>) =
            (0..data.samples()).partition(|&s| data.system_of[s] < first_held);
        Ok(Self { exp: exp.clone(), data, train, validation, report: BridgeReport::new() })
    }

    fn loss(&self) -> (LossKind, bool) {
        (self.exp.training.loss, self.exp.training.positive_step)
    }

    /// What the data looked like.
    pub fn info(&self) -> DcdmRunInfo {
        DcdmRunInfo {
            dims: self.data.dims,
            grid: self.data.grid,
            systems: self.data.systems(),
            training_samples: self.train.len(),
            validation_samples: self.validation.len(),
            parameters: self.exp.model.config(self.data.dims).parameters(),
        }
    }
}

impl Method for Dcdm {
    type Model = DcdmNet;

    fn examples(&self) -> usize {
        self.train.len()
    }

    fn build(&self, init: &mut Init) -> DcdmNet {
        self.exp.model.config(self.data.dims).init(init).expect("the configuration was validated")
    }

    fn write_setup(&self, out: &Path) -> Result<(), TrainError> {
        engine::write_json(&out.join("run.json"), &self.info())
    }

    fn step(
        &mut self,
        model: &DcdmNet,
        batch: &[usize],
        ctx: &StepContext,
        grads: &mut Vec<f32>,
    ) -> Result<StepOutput, TrainError> {
        let samples: Vec<usize> = batch.iter().map(|&e| self.train[e]).collect();
        let loss = line_search_loss(model, &self.data, &samples, self.loss(), &ctx.device, &self.report)?;
        let loss = engine::backward_into(model, loss, grads);
        if let Some(f) = self.report.take().into_iter().next() {
            return Err(TrainError::failed(format!("the bridge op failed in the backward pass: {f:?}")));
        }
        Ok(StepOutput { loss, metrics: vec![] })
    }

    fn validate(&mut self, model: &DcdmNet, device: &Device) -> Result<Option<f64>, TrainError> {
        if self.validation.is_empty() {
            return Ok(None);
        }
        let limit = match self.exp.training.validation_samples {
            0 => self.validation.len(),
            n => n.min(self.validation.len()),
        };
        // evenly spread over the held-out samples, in chunks of the batch size
        let picked: Vec<usize> = (0..limit).map(|k| self.validation[k * self.validation.len() / limit]).collect();
        let mut sum = 0.0;
        for chunk in picked.chunks(self.exp.training.batch.max(1)) {
            let l = line_search_loss(model, &self.data, chunk, self.loss(), device, &self.report)?;
            let v = l.into_data().convert::<f64>().as_slice::<f64>().map_or(f64::NAN, |v| v[0]);
            sum += v * chunk.len() as f64;
        }
        Ok(Some(sum / limit as f64))
    }
}

/// What a run directory holds: its configuration, its data description and its latest checkpoint.
fn read_run(run: &Path) -> Result<(DcdmExperiment, DcdmRunInfo, crate::checkpoint::Checkpoint), TrainError> {
    let cpath = run.join("config.toml");
    let text = std::fs::read_to_string(&cpath).map_err(|e| bad(format!("{}: {e}", cpath.display())))?;
    let exp = DcdmExperiment::parse(&text, &cpath.display().to_string()).map_err(|e| bad(e.to_string()))?;
    let ipath = run.join("run.json");
    let info: DcdmRunInfo = std::fs::read_to_string(&ipath)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| bad(format!("{}: {e}", ipath.display())))?;
    let ck = crate::checkpoint::Checkpoint::load(&run.join("checkpoint.ckpt")).map_err(|e| bad(e.to_string()))?;
    Ok((exp, info, ck))
}

/// The network of a run's configuration with the checkpoint's weights, on `device`.
fn network_of(
    run: &Path,
    exp: &DcdmExperiment,
    info: &DcdmRunInfo,
    ck: &crate::checkpoint::Checkpoint,
    device: &Device,
) -> Result<DcdmNet, TrainError> {
    let model = exp.model.config(info.dims).init(&mut Init::new(exp.seed, device)).map_err(bad)?;
    if ansatz_operators::flat::layout(&model) != ck.header.layout {
        return Err(bad(format!("{}: the checkpoint does not fit the network in config.toml", run.display())));
    }
    Ok(ansatz_operators::flat::unflatten(model, &ck.params))
}

/// The trained network of a run directory (its `config.toml`, `run.json` and latest checkpoint) on `device`.
pub fn load_network(run: &Path, device: &Device) -> Result<DcdmNet, TrainError> {
    let (exp, info, ck) = read_run(run)?;
    network_of(run, &exp, &info, &ck, device)
}

/// Writes the trained network of the run directory `run` as a preconditioner file (`out`, atomically; an
/// existing file only with `force`). Returns the file written.
pub fn export_run(run: &Path, out: &Path, force: bool) -> Result<PrecondFile, TrainError> {
    let (exp, info, ck) = read_run(run)?;
    let net = network_of(run, &exp, &info, &ck, &Device::flex())?;
    let spec = exp.model.spec(info.dims);
    let score = ck.header.validation.map_or("none".to_string(), |v| format!("{v:.6e}"));
    let provenance = format!(
        "ansatz {} precond export; run {} at step {} (held-out {} line-search loss {score}); {}",
        env!("CARGO_PKG_VERSION"),
        run.display(),
        ck.header.step,
        match exp.training.loss {
            LossKind::Residual => "residual",
            LossKind::Energy => "energy",
        },
        format_args!(
            "trained on {} systems, {} samples",
            info.systems - exp.data.validation_systems.min(info.systems),
            info.training_samples
        )
    );
    let file = PrecondFile::of_network(&net, spec, info.grid, provenance);
    file.save(out, force).map_err(|e| bad(e.to_string()))?;
    Ok(file)
}

/// Whether the stored configuration `old` may be continued by `exp` (only `training.steps` may grow, with
/// `extend`).
fn reconcile(old: &str, exp: &DcdmExperiment, extend: bool, out: &Path) -> Result<Reconciled, TrainError> {
    let old_exp = DcdmExperiment::parse(old, "config.toml").map_err(|e| bad(e.to_string()))?;
    let mut mine = exp.clone();
    mine.data.path = old_exp.data.path.clone();
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
        reference.schedule = old_exp.schedule.clone();
        if let (Schedule::WarmupCosine { total_steps: t_old, .. }, Schedule::WarmupCosine { total_steps: t_new, .. }) =
            (&mut reference.schedule, &mine.schedule)
            && *t_old == old_steps
            && *t_new == new_steps
        {
            *t_old = new_steps;
        }
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

/// Trains a DCDM network for `exp` on the Ritz dataset `opts.data` into the run directory `opts.out`; rank 0
/// writes the run directory (`config.toml`, `run.json`, `checkpoint.ckpt`, metrics, `summary.json`).
pub fn train_dcdm(
    exp: &DcdmExperiment,
    opts: &TrainOptions,
    comm: &dyn Communicator,
    observer: &mut dyn Observer,
) -> Result<TrainSummary, TrainError> {
    ansatz_operators::memory::retain_freed_memory();
    let exp = exp.clone().validated().map_err(|e| bad(e.to_string()))?;
    let dir =
        RunDir::open(&opts.run_options(), exp.to_toml(), |old| reconcile(old, &exp, opts.extend, &opts.out), comm)?;
    let mut data = RitzData::load(&opts.data)?;
    if exp.training.loss == LossKind::Energy {
        data.compute_energies()?;
    }
    let mut method = Dcdm::new(&exp, data)?;
    engine::train(&mut method, &dir, &exp.settings(), &opts.device, &opts.drills(), comm, observer)
}
