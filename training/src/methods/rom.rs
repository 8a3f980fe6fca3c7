//! Latent reduced-order models trained as auto-decoders (`docs/methods/phirom.md`): Φ-ROM (the latent dynamics
//! fitted to the solver's time derivative projected onto the decoder's tangent space), and in the same code the
//! baselines DINo (dynamics fitted to the latent trajectories, data only) and CROM (no dynamics network: the
//! full-order solver steps the decoded field and the result is projected back).
//!
//! Every training snapshot `(trajectory i, level n)` owns a latent `α_{i,n}` in a table trained with the networks.
//! Φ-ROM's step, for a batch of snapshots:
//!
//! ```text
//! û = D(X, α)                                   the decoded field (physical units)
//! F = F(û; μ)                                   the solver's right-hand side on the full grid (bridge op)
//! J = ∂D/∂α at ⌊γN⌋ random points               forward-mode tangents
//! α̇* = argmin ‖J a − F_S‖                       Householder QR per sample (bridge op, exact backward)
//! L_rec = mean ‖û − u‖/‖u‖,  L_dyn = mean ‖Ψ(α, μ) − α̇*‖/‖sg(α̇*)‖
//! gradient of λ L_rec + (1 − λ) L_dyn           α̇* and Ψ's α detached during the warm-up epochs
//! ```
//!
//! Samples whose α̇* is not finite (a rank-deficient J) or has a vanishing norm are counted and left out of
//! L_dyn, never silently zeroed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ansatz_cluster::Communicator;
use ansatz_datasets::reader::Dataset;
use ansatz_datasets::rom::RomSpec;
use ansatz_operators::bridge::{self, BridgeReport};
use ansatz_operators::init::Init;
use ansatz_operators::phirom::{Decoder, DecoderConfig, DecoderKind, Dynamics, DynamicsConfig, DynamicsKind};
use ansatz_solvers::rom::RomRhs;
use ansatz_solvers::scheme::SemiDiscrete;
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, OptimiserConfig, OptimiserKind};
use crate::engine::{self, Method, Observer, Reconciled, RunDir, Settings, StepContext, StepOutput};
use crate::engine::{TrainError, TrainSummary, config_difference, splitmix};
use crate::schedule::Schedule;
use crate::trainer::TrainOptions;

fn bad(m: impl Into<String>) -> TrainError {
    TrainError::input(m)
}

fn cfg_err(m: impl Into<String>) -> ConfigError {
    ConfigError(m.into())
}

// --- configuration -------------------------------------------------------------------------------------------------

/// Which model of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RomMethod {
    /// Dynamics fitted to the solver's projected time derivative.
    Phirom,
    /// Dynamics fitted to the latent trajectories (data only).
    Dino,
    /// No dynamics network: solver steps on the decoded field, re-projected each step.
    Crom,
}

impl RomMethod {
    /// The name in configurations and reports.
    pub fn name(self) -> &'static str {
        match self {
            RomMethod::Phirom => "phirom",
            RomMethod::Dino => "dino",
            RomMethod::Crom => "crom",
        }
    }
}

/// A reduced-order-model training configuration (`ansatz train` with `method = "phirom" | "dino" | "crom"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RomExperiment {
    pub method: RomMethod,
    /// Seeds the initial weights, the order of the snapshots and the Jacobian's points.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: RomData,
    #[serde(default)]
    pub model: RomModel,
    #[serde(default)]
    pub phirom: PhiromSettings,
    #[serde(default)]
    pub dino: DinoSettings,
    #[serde(default)]
    pub inference: InferenceSettings,
    #[serde(default = "default_optimiser")]
    pub optimiser: OptimiserConfig,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    #[serde(default)]
    pub training: RomTraining,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RomData {
    /// A `burgers1d-source` or `diffusion2d` dataset (relative to the configuration file); `--data` overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Training uses the first this many levels of every trajectory (0: all).
    pub train_levels: usize,
    /// Trajectories validated by rolling out (relative to the configuration file); none: the training
    /// trajectories, over all their levels (beyond `train_levels` is forecasting in time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<PathBuf>,
    /// Levels of each validation trajectory scored (0: all).
    pub validation_levels: usize,
    /// Use at most this many trajectories of the training file (0: all).
    pub max_trajectories: usize,
    /// Without a validation file: validate on this many trajectories of the training file that follow the
    /// training ones (0: on the training trajectories themselves).
    pub validation_trajectories: usize,
}

impl Default for RomData {
    fn default() -> Self {
        Self {
            path: None,
            train_levels: 100,
            validation: None,
            validation_levels: 0,
            max_trajectories: 0,
            validation_trajectories: 0,
        }
    }
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RomModel {
    /// Latent size k.
    pub latent: usize,
    /// `mlp` (sine MLP on `[x; α]`) or `hyper` (multiplicative filters with latent shifts).
    pub decoder: DecoderChoice,
    pub decoder_width: usize,
    pub decoder_layers: usize,
    /// `hyper-concat` (μ lifted to R^k and concatenated) or `mlp` (`[α; μ]`).
    pub dynamics: DynamicsChoice,
    pub dynamics_width: usize,
    pub dynamics_depth: usize,
}

impl Default for RomModel {
    fn default() -> Self {
        Self {
            latent: 4,
            decoder: DecoderChoice::Mlp,
            decoder_width: 32,
            decoder_layers: 4,
            dynamics: DynamicsChoice::HyperConcat,
            dynamics_width: 64,
            dynamics_depth: 4,
        }
    }
}

/// `model.decoder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderChoice {
    Mlp,
    Hyper,
}

/// `model.dynamics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DynamicsChoice {
    HyperConcat,
    Mlp,
}

/// `inference.init` and `inference.project`: how a latent is fitted to a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatentFit {
    /// Adam (the initial latent) on the mean squared error.
    Adam,
    /// Plain gradient descent (CROM's projection) on the sum of squares.
    GradientDescent,
    /// Levenberg–Marquardt.
    GaussNewton,
}

/// `[phirom]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhiromSettings {
    /// λ: the gradient is λ ∇L_rec + (1 − λ) ∇L_dyn.
    pub lambda: f64,
    /// γ: the fraction of grid points at which the decoder Jacobian is formed.
    pub gamma: f64,
    /// Epochs during which L_dyn trains Ψ only (its target and Ψ's latent input detached).
    pub warmup_epochs: usize,
}

impl Default for PhiromSettings {
    fn default() -> Self {
        Self { lambda: 0.5, gamma: 0.1, warmup_epochs: 1000 }
    }
}

/// `[dino]`: the data-only baseline's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DinoSettings {
    /// Learning-rate multipliers of the decoder and of the latent table against the schedule (the dynamics
    /// network has 1): the reference's decoder 1e-2, Ψ 1e-3, latents 1e-3 with a 1e-3 schedule are 10 and 1.
    pub decoder_lr_scale: f64,
    pub latent_lr_scale: f64,
    /// Teacher forcing: each step of the latent rollout restarts from the stored latent with this probability,
    /// multiplied by `teacher_decay` every `teacher_every` epochs and set to 0 below 1e-3.
    pub teacher: f64,
    pub teacher_decay: f64,
    pub teacher_every: usize,
}

impl Default for DinoSettings {
    fn default() -> Self {
        Self { decoder_lr_scale: 10.0, latent_lr_scale: 1.0, teacher: 0.99, teacher_decay: 0.99, teacher_every: 20 }
    }
}

/// `[inference]`: how a trained model forecasts from an initial field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceSettings {
    /// `bosh3` or `rk4`, one step per stored level.
    pub integrator: Integrator,
    /// The initial latent, from zero, the best iterate kept: `adam` (the reference: `init_steps` Adam steps of
    /// rate `init_lr` on the reconstruction error of the initial field) or `gauss-newton` (`init_steps`
    /// Levenberg–Marquardt iterations on the same error, each a k × k least-squares solve: a few dozen suffice).
    pub init: LatentFit,
    pub init_steps: usize,
    pub init_lr: f64,
    /// CROM's re-projection after each solver step, from the previous latent: `gradient-descent` (the reference:
    /// `project_steps` steps of rate `project_lr` on the sum of squared differences) or `gauss-newton`
    /// (`project_steps` Levenberg–Marquardt iterations).
    pub project: LatentFit,
    pub project_steps: usize,
    pub project_lr: f64,
}

impl Default for InferenceSettings {
    fn default() -> Self {
        Self {
            integrator: Integrator::Bosh3,
            init: LatentFit::Adam,
            init_steps: 1000,
            init_lr: 0.1,
            project: LatentFit::GradientDescent,
            project_steps: 20,
            project_lr: 1e-3,
        }
    }
}

/// `[training]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RomTraining {
    /// Optimiser steps.
    pub steps: usize,
    /// Snapshots per step (trajectories for DINo).
    pub batch: usize,
    pub checkpoint_every: usize,
    /// Roll the validation trajectories out every this many steps (0: only at the end).
    pub validate_every: usize,
    pub max_nonfinite: usize,
}

impl Default for RomTraining {
    fn default() -> Self {
        Self { steps: 2000, batch: 800, checkpoint_every: 500, validate_every: 500, max_nonfinite: 3 }
    }
}

fn default_optimiser() -> OptimiserConfig {
    OptimiserConfig { kind: OptimiserKind::Adamw, weight_decay: 1e-4, clip_norm: 0.0, ..OptimiserConfig::default() }
}

fn default_schedule() -> Schedule {
    Schedule::WarmupStep { peak: 5e-3, warmup_steps: 0, every: 50, factor: 0.985, floor: 1e-6 }
}

impl RomExperiment {
    /// Parses and validates a configuration; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let exp: Self = toml::from_str(text).map_err(|e| cfg_err(format!("{origin}: {e}")))?;
        exp.validated().map_err(|e| cfg_err(format!("{origin}: {e}")))
    }

    /// Checks every value; resolves the schedule's length.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        let m = &self.model;
        for (key, v) in [
            ("model.latent", m.latent),
            ("model.decoder_width", m.decoder_width),
            ("model.decoder_layers", m.decoder_layers),
            ("model.dynamics_width", m.dynamics_width),
            ("model.dynamics_depth", m.dynamics_depth),
            ("training.steps", self.training.steps),
            ("training.batch", self.training.batch),
            ("training.checkpoint_every", self.training.checkpoint_every),
            ("training.max_nonfinite", self.training.max_nonfinite),
            ("dino.teacher_every", self.dino.teacher_every),
        ] {
            if v == 0 {
                return Err(cfg_err(format!("`{key}` must be at least 1")));
            }
        }
        if m.decoder == DecoderChoice::Hyper && m.decoder_width % 2 == 1 {
            return Err(cfg_err(format!(
                "`model.decoder_width` must be even for the hyper decoder, got {}",
                m.decoder_width
            )));
        }
        let p = &self.phirom;
        if !(0.0..=1.0).contains(&p.lambda) {
            return Err(cfg_err(format!("`phirom.lambda` must lie in [0, 1], got {}", p.lambda)));
        }
        if !(p.gamma > 0.0 && p.gamma <= 1.0) {
            return Err(cfg_err(format!("`phirom.gamma` must lie in (0, 1], got {}", p.gamma)));
        }
        let d = &self.dino;
        for (key, v) in [
            ("dino.decoder_lr_scale", d.decoder_lr_scale),
            ("dino.latent_lr_scale", d.latent_lr_scale),
            ("inference.init_lr", self.inference.init_lr),
            ("inference.project_lr", self.inference.project_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(cfg_err(format!("`{key}` must be positive, got {v}")));
            }
        }
        if !(0.0..=1.0).contains(&d.teacher) || !(0.0..=1.0).contains(&d.teacher_decay) {
            return Err(cfg_err("`dino.teacher` and `dino.teacher_decay` must lie in [0, 1]"));
        }
        if self.inference.init == LatentFit::GradientDescent || self.inference.project == LatentFit::Adam {
            return Err(cfg_err(
                "`inference.init` is adam or gauss-newton, `inference.project` gradient-descent or gauss-newton",
            ));
        }
        let o = &self.optimiser;
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0 && o.clip_norm.is_finite() && o.clip_norm >= 0.0) {
            return Err(cfg_err("`optimiser.weight_decay` and `optimiser.clip_norm` must be finite and ≥ 0"));
        }
        self.schedule = self.schedule.clone().resolved(self.training.steps);
        self.schedule.validate().map_err(|e| cfg_err(e.to_string()))?;
        Ok(self)
    }

    /// The configuration as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a reduced-order configuration serialises")
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

/// Time integrators of the latent ODE (`inference.integrator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Integrator {
    /// Bogacki–Shampine, third order (its embedded error estimate unused).
    Bosh3,
    Rk4,
}

// --- data ------------------------------------------------------------------------------------------------------------

/// Trajectories of a reduced-order benchmark, in memory (these problems are small).
#[derive(Clone, Debug)]
pub struct Trajectories {
    pub path: PathBuf,
    pub pde: String,
    pub fields: Vec<String>,
    /// `[ny, nx]` (ny = 1 in 1D).
    pub grid: [usize; 2],
    /// Space dimensions (1 or 2).
    pub dims: usize,
    /// Physical coordinates of the grid points, `points × dims`, in frame order (x fastest).
    pub coords: Vec<f64>,
    /// Time between stored levels.
    pub level_dt: f64,
    /// Levels held per trajectory.
    pub levels: usize,
    pub count: usize,
    /// Frames `(trajectory, level, channel, point)`.
    pub u: Vec<f32>,
    /// Names of the simulation parameters and their values `(trajectory, parameter)`.
    pub param_names: Vec<String>,
    pub params: Vec<f64>,
    /// The full-order problem, from the file.
    pub physics: Physics,
}

impl Trajectories {
    /// Reads the first `levels` levels (0: all) of the first `max` trajectories (0: all) of a reduced-order
    /// benchmark file.
    pub fn load(path: &Path, levels: usize, max: usize) -> Result<Self, TrainError> {
        let name = path.display().to_string();
        let ds = Dataset::open(path).map_err(|e| bad(e.to_string()))?;
        let config = ds.text_attribute("generation_config").ok_or_else(|| {
            bad(format!("{name}: no `generation_config` attribute (make the data with `ansatz generate burgers1d-source|diffusion2d`)"))
        })?;
        let physics = Physics::from_dataset(&ds.pde, &config).map_err(|e| bad(format!("{name}: {e}")))?;
        if ds.times.len() < 2 {
            return Err(bad(format!("{name}: {} time levels, at least 2 needed", ds.times.len())));
        }
        let levels = if levels == 0 { ds.times.len() } else { levels };
        if levels > ds.times.len() {
            return Err(bad(format!("{name}: {levels} levels asked for, the file has {}", ds.times.len())));
        }
        let count = if max == 0 { ds.samples_complete } else { max.min(ds.samples_complete) };
        if count == 0 {
            return Err(bad(format!("{name}: no complete samples")));
        }
        let (nx, ny) = (ds.x.len(), ds.y.as_ref().map_or(1, Vec::len));
        let dims = if ds.y.is_some() { 2 } else { 1 };
        let mut coords = Vec::with_capacity(nx * ny * dims);
        for j in 0..ny {
            for i in 0..nx {
                coords.push(ds.x[i]);
                if let Some(y) = &ds.y {
                    coords.push(y[j]);
                }
            }
        }
        let frame = ds.fields.len() * nx * ny;
        let mut u = vec![0.0f32; count * levels * frame];
        for (c, field) in ds.fields.iter().enumerate() {
            let a = ds.read(field, 0..count, 0..levels).map_err(|e| bad(e.to_string()))?;
            for (k, v) in a.iter().enumerate() {
                let (s, rest) = (k / (levels * nx * ny), k % (levels * nx * ny));
                let (t, p) = (rest / (nx * ny), rest % (nx * ny));
                if !v.is_finite() {
                    return Err(bad(format!("{name}: non-finite `{field}` in sample {s}, level {t}")));
                }
                u[(s * levels + t) * frame + c * nx * ny + p] = *v as f32;
            }
        }
        let param_names = ds.parameters.clone();
        let mut params = vec![0.0; count * param_names.len()];
        for (j, p) in param_names.iter().enumerate() {
            let v = ds.parameter(p).map_err(|e| bad(e.to_string()))?;
            for s in 0..count {
                params[s * param_names.len() + j] = v[s];
            }
        }
        let level_dt = ds.times[1] - ds.times[0];
        Ok(Self {
            path: path.to_path_buf(),
            pde: ds.pde.clone(),
            fields: ds.fields.clone(),
            grid: [ny, nx],
            dims,
            coords,
            level_dt,
            levels,
            count,
            u,
            param_names,
            params,
            physics,
        })
    }

    /// The first `train` trajectories, and the `validation` after them.
    pub fn split(self, train: usize, validation: usize) -> (Self, Self) {
        let (f, p) = (self.levels * self.frame(), self.param_names.len());
        let mut a = self.clone();
        a.count = train;
        a.u.truncate(train * f);
        a.params.truncate(train * p);
        let mut b = self;
        b.u = b.u[train * f..(train + validation) * f].to_vec();
        b.params = b.params[train * p..(train + validation) * p].to_vec();
        b.count = validation;
        (a, b)
    }

    /// Grid points per frame.
    pub fn points(&self) -> usize {
        self.grid[0] * self.grid[1]
    }

    /// Values per frame.
    pub fn frame(&self) -> usize {
        self.fields.len() * self.points()
    }

    /// Frame `level` of trajectory `s`.
    pub fn level(&self, s: usize, level: usize) -> &[f32] {
        let f = self.frame();
        &self.u[(s * self.levels + level) * f..(s * self.levels + level + 1) * f]
    }

    /// The simulation parameters of trajectory `s`.
    pub fn params_of(&self, s: usize) -> &[f64] {
        let p = self.param_names.len();
        &self.params[s * p..(s + 1) * p]
    }
}

const NO_RHS_2D: &str = "burgers2d has no reduced-order right-hand side here (the reduced-order models take burgers1d-source, diffusion2d \
     or burgers1d data)";

/// The full-order problem behind a dataset, rebuilt from its `pde` and `generation_config` attributes: a
/// reduced-order benchmark (`burgers1d-source`, `diffusion2d`) or the viscous Burgers equation in 1D (finite
/// volume or spectral, ν per sample). 2D Burgers data is read too (the constrained models train on it), but has no
/// right-hand side here.
#[derive(Clone, Debug)]
pub enum Physics {
    Rom(RomSpec),
    Burgers(Box<ansatz_datasets::config::Spec>),
    Burgers2d(Box<ansatz_datasets::config::Spec>),
}

impl Physics {
    /// The problem of a dataset.
    pub fn from_dataset(pde: &str, config: &str) -> Result<Self, String> {
        if ansatz_datasets::rom::RomPde::from_name(pde).is_some() {
            return RomSpec::from_dataset(pde, config).map(Physics::Rom).map_err(|e| e.to_string());
        }
        if pde == "burgers1d" || pde == "burgers2d" {
            let spec = ansatz_datasets::config::load(pde, Some(("generation_config", config)), &[], None, None)
                .map_err(|e| e.to_string())?;
            return Ok(if pde == "burgers1d" {
                Physics::Burgers(Box::new(spec))
            } else {
                Physics::Burgers2d(Box::new(spec))
            });
        }
        Err(format!("'{pde}' has no full-order right-hand side here (burgers1d-source, diffusion2d, burgers1d)"))
    }

    /// The generation config it was rebuilt from.
    pub fn config_text(&self) -> &str {
        match self {
            Physics::Rom(spec) => &spec.config_text,
            Physics::Burgers(spec) | Physics::Burgers2d(spec) => &spec.config_text,
        }
    }

    /// The right-hand side of a sample whose simulation parameters `names` have the values `params`.
    pub fn rhs(&self, names: &[String], params: &[f64]) -> Result<RomRhs, String> {
        use ansatz_datasets::config::Scheme;
        use ansatz_solvers::fv::FvBurgers1d;
        use ansatz_solvers::spectral::{SpectralBurgers1d, SpectralRhs};
        match self {
            Physics::Rom(spec) => spec.rhs(params).map_err(|e| e.to_string()),
            Physics::Burgers(spec) => {
                let nu =
                    names.iter().position(|n| n == "nu").map(|i| params[i]).ok_or("burgers1d needs the sample's nu")?;
                let rhs = match spec.scheme {
                    Scheme::FiniteVolume(r, f) => {
                        FvBurgers1d::new(spec.n, spec.length, nu, spec.bc[0], r, f).map(RomRhs::Viscous1d)
                    }
                    Scheme::Spectral => SpectralBurgers1d::new(spec.n, spec.length)
                        .and_then(|p| SpectralRhs::new(p, nu))
                        .map(RomRhs::Spectral1d),
                };
                rhs.map_err(|e| e.to_string())
            }
            Physics::Burgers2d(_) => Err(NO_RHS_2D.into()),
        }
    }

    /// Advances one sample's frame `u` by one stored level with the data's own solver (forward Euler for the
    /// benchmarks; the generation's scheme and its stable step from `u` for Burgers).
    pub fn step_level(&self, names: &[String], params: &[f64], u: &mut [f64]) -> Result<(), String> {
        match self {
            Physics::Rom(spec) => {
                use ansatz_solvers::prelude::{ExplicitRk, Stepper};
                let rhs = spec.rhs(params).map_err(|e| e.to_string())?;
                let stepper = ExplicitRk::new(rhs, spec.tableau(), spec.dt).map_err(|e| e.to_string())?;
                let mut w = stepper.work();
                stepper.advance(u, spec.steps_per_level, &mut w);
                Ok(())
            }
            Physics::Burgers(spec) => {
                let nu =
                    names.iter().position(|n| n == "nu").map(|i| params[i]).ok_or("burgers1d needs the sample's nu")?;
                let mut setup = ansatz_datasets::generate::Setup::of(spec);
                setup.frames = 1;
                let t = ansatz_datasets::generate::trajectory(&setup, u, nu, 0).map_err(|e| e.to_string())?;
                let n = u.len();
                u.copy_from_slice(&t.data[n..2 * n]);
                Ok(())
            }
            Physics::Burgers2d(_) => Err(NO_RHS_2D.into()),
        }
    }
}

/// The scales a trained model needs besides its weights: coordinates to `[−1, 1]`, outputs per channel, μ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RomScales {
    pub coord_lo: Vec<f64>,
    pub coord_hi: Vec<f64>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub mu_mean: Vec<f64>,
    pub mu_std: Vec<f64>,
}

impl RomScales {
    /// From the training trajectories (unbiased standard deviations, as the reference).
    pub fn of(data: &Trajectories, train_levels: usize) -> Self {
        let (d, n, c) = (data.dims, data.points(), data.fields.len());
        let coord_lo = (0..d).map(|a| (0..n).map(|p| data.coords[p * d + a]).fold(f64::INFINITY, f64::min)).collect();
        let coord_hi =
            (0..d).map(|a| (0..n).map(|p| data.coords[p * d + a]).fold(f64::NEG_INFINITY, f64::max)).collect();
        let mut mean = vec![0.0; c];
        let mut std = vec![0.0; c];
        for ch in 0..c {
            let vals = (0..data.count)
                .flat_map(|s| (0..train_levels).map(move |t| (s, t)))
                .flat_map(|(s, t)| data.level(s, t)[ch * n..(ch + 1) * n].iter().map(|v| *v as f64));
            let (sum, sq, cnt) = vals.fold((0.0, 0.0, 0.0), |(a, b, k), v| (a + v, b + v * v, k + 1.0));
            mean[ch] = sum / cnt;
            std[ch] = ((sq - sum * sum / cnt) / (cnt - 1.0).max(1.0)).max(0.0).sqrt().max(1e-12);
        }
        let p = data.param_names.len();
        let mut mu_mean = vec![0.0; p];
        let mut mu_std = vec![0.0; p];
        for j in 0..p {
            let v: Vec<f64> = (0..data.count).map(|s| data.params_of(s)[j]).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0);
            mu_mean[j] = m;
            mu_std[j] = var.sqrt();
        }
        Self { coord_lo, coord_hi, mean, std, mu_mean, mu_std }
    }

    /// The grid coordinates scaled to `[−1, 1]` (`points × dims`).
    pub fn scaled_coords(&self, coords: &[f64]) -> Vec<f32> {
        let d = self.coord_lo.len();
        coords
            .iter()
            .enumerate()
            .map(|(k, x)| {
                let a = k % d;
                let span = (self.coord_hi[a] - self.coord_lo[a]).max(1e-300);
                (2.0 * (x - self.coord_lo[a]) / span - 1.0) as f32
            })
            .collect()
    }

    /// Normalised parameters `(μ − mean)/(std + 1e-8)` of `count` samples.
    pub fn normalised_params(&self, params: &[f64]) -> Vec<f32> {
        let p = self.mu_mean.len();
        params
            .iter()
            .enumerate()
            .map(|(k, v)| ((v - self.mu_mean[k % p]) / (self.mu_std[k % p] + 1e-8)) as f32)
            .collect()
    }
}

// --- the model -----------------------------------------------------------------------------------------------------

/// The trainable model: decoder, dynamics (absent for CROM) and the latent table (one row per training snapshot).
#[derive(Module, Debug)]
pub struct RomNet {
    pub decoder: Decoder,
    pub dynamics: Option<Dynamics>,
    pub latents: Param<Tensor<2>>,
}

/// What a run directory records about its data (`run.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RomRunInfo {
    pub method: RomMethod,
    pub data: PathBuf,
    pub pde: String,
    pub fields: Vec<String>,
    pub grid: [usize; 2],
    pub dims: usize,
    pub level_dt: f64,
    pub trajectories: usize,
    pub train_levels: usize,
    pub param_names: Vec<String>,
    pub scales: RomScales,
    pub parameters: usize,
    /// The data's generation config (CROM rebuilds the solver from it).
    pub generation_config: String,
    /// The grid's coordinates.
    #[serde(default)]
    pub x: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<Vec<f64>>,
}

fn decoder_config(exp: &RomExperiment, dims: usize, channels: usize) -> DecoderConfig {
    DecoderConfig {
        kind: match exp.model.decoder {
            DecoderChoice::Mlp => DecoderKind::Mlp,
            DecoderChoice::Hyper => DecoderKind::Hyper,
        },
        coords: dims,
        latent: exp.model.latent,
        outputs: channels,
        width: exp.model.decoder_width,
        layers: exp.model.decoder_layers,
    }
}

fn dynamics_config(exp: &RomExperiment, params: usize) -> DynamicsConfig {
    DynamicsConfig {
        kind: match exp.model.dynamics {
            DynamicsChoice::HyperConcat => DynamicsKind::HyperConcat,
            DynamicsChoice::Mlp => DynamicsKind::Mlp,
        },
        latent: exp.model.latent,
        params,
        width: exp.model.dynamics_width,
        depth: exp.model.dynamics_depth,
    }
}

/// Builds the network: zero latents, as the reference.
pub fn build_net(
    exp: &RomExperiment,
    dims: usize,
    channels: usize,
    params: usize,
    snapshots: usize,
    init: &mut Init,
) -> RomNet {
    let decoder = Decoder::new(&decoder_config(exp, dims, channels), init);
    let dynamics = (exp.method != RomMethod::Crom).then(|| Dynamics::new(&dynamics_config(exp, params), init));
    let latents = Param::from_tensor(init.constant([snapshots, exp.model.latent], 0.0));
    RomNet { decoder, dynamics, latents }
}

fn tensor2(v: Vec<f32>, shape: [usize; 2], on: On) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v, shape), (on.0, DType::F32)).cast(on.1)
}

fn tensor3(v: Vec<f32>, shape: [usize; 3], on: On) -> Tensor<3> {
    Tensor::<3>::from_data(TensorData::new(v, shape), (on.0, DType::F32)).cast(on.1)
}

/// Where new tensors go: the device and the model's float type.
type On<'a> = (&'a Device, DType);

/// The float type of a decoder's weights.
fn dtype_of(decoder: &Decoder) -> DType {
    match decoder {
        Decoder::Mlp(m) => m.first_x.val().dtype(),
        Decoder::Hyper(m) => m.first_bias.val().dtype(),
    }
}

fn ints<const D: usize>(v: Vec<i64>, shape: [usize; D], device: &Device) -> Tensor<D, Int> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().try_into_vec::<f64>().map_or(f64::NAN, |v| v[0])
}

/// A `[1, 1, c]` (or `[1, c]`) tensor of per-channel constants.
fn channel_row(v: &[f64], on: On) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, v.len()]), (on.0, DType::F64)).cast(on.1)
}

/// Decoded fields in physical units, frame layout `[b, c·n]` (channel, then point), from normalised decoder
/// outputs `[b, n, c]`.
fn physical(y: Tensor<3>, scales: &RomScales) -> Tensor<2> {
    let [b, n, c] = y.dims();
    let on = (&y.device(), y.dtype());
    let std = channel_row(&scales.std, on).unsqueeze_dim::<3>(0); // [1, 1, c]
    let mean = channel_row(&scales.mean, on).unsqueeze_dim::<3>(0);
    (y * std + mean).swap_dims(1, 2).reshape([b, c * n])
}

/// Mean over samples and channels of `‖p − u‖ / ‖u‖` over space (`[b, c·n]` both).
fn relative_l2(p: Tensor<2>, u: Tensor<2>, c: usize) -> Tensor<1> {
    let [b, cn] = p.dims();
    let n = cn / c;
    let num = (p - u.clone()).reshape([b, c, n]).square().sum_dim(2).sqrt();
    let den = u.reshape([b, c, n]).square().sum_dim(2).sqrt().add_scalar(1e-30);
    (num / den).mean()
}

// --- the method ----------------------------------------------------------------------------------------------------

/// Φ-ROM, DINo or CROM on loaded trajectories.
pub struct Rom {
    exp: RomExperiment,
    data: Trajectories,
    validation: Trajectories,
    /// Training levels per trajectory.
    t_train: usize,
    scales: RomScales,
    x_scaled: Vec<f32>,
    mu_norm: Vec<f32>,
    schemes: Vec<Arc<RomRhs>>,
    report: BridgeReport,
    /// Samples left out of L_dyn so far (non-finite or vanishing α̇*).
    left_out: u64,
    last_validation: Vec<(String, f64)>,
}

impl Rom {
    /// Prepares the method on `data` (and `validation`, or the training trajectories over all their levels).
    pub fn new(exp: &RomExperiment, data: Trajectories, validation: Option<Trajectories>) -> Result<Self, TrainError> {
        let t_train = match exp.data.train_levels {
            0 => data.levels,
            t => t.min(data.levels),
        };
        if t_train < 2 && exp.method == RomMethod::Dino {
            return Err(bad("DINo needs at least 2 training levels per trajectory"));
        }
        let validation = match validation {
            Some(v) => {
                if v.pde != data.pde
                    || v.fields != data.fields
                    || v.grid != data.grid
                    || v.param_names != data.param_names
                {
                    return Err(bad(format!(
                        "{}: not the problem of the training data {} (pde, fields, grid or parameters differ)",
                        v.path.display(),
                        data.path.display()
                    )));
                }
                v
            }
            None => data.clone(),
        };
        let scales = RomScales::of(&data, t_train);
        let x_scaled = scales.scaled_coords(&data.coords);
        let mu_norm = scales.normalised_params(&data.params);
        let schemes = (0..data.count)
            .map(|s| {
                data.physics
                    .rhs(&data.param_names, data.params_of(s))
                    .map(Arc::new)
                    .map_err(|e| bad(format!("{}: {e}", data.path.display())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if schemes.first().map(|s| s.state_len()) != Some(data.frame()) {
            return Err(bad(format!("{}: the solver's state does not match the stored frame", data.path.display())));
        }
        Ok(Self {
            exp: exp.clone(),
            data,
            validation,
            t_train,
            scales,
            x_scaled,
            mu_norm,
            schemes,
            report: BridgeReport::new(),
            left_out: 0,
            last_validation: vec![],
        })
    }

    /// What the run records about its data.
    pub fn info(&self, parameters: usize) -> RomRunInfo {
        RomRunInfo {
            method: self.exp.method,
            data: self.data.path.clone(),
            pde: self.data.pde.clone(),
            fields: self.data.fields.clone(),
            grid: self.data.grid,
            dims: self.data.dims,
            level_dt: self.data.level_dt,
            trajectories: self.data.count,
            train_levels: self.t_train,
            param_names: self.data.param_names.clone(),
            scales: self.scales.clone(),
            parameters,
            generation_config: self.data.physics.config_text().to_string(),
            x: self.data.coords.iter().step_by(self.data.dims).take(self.data.grid[1]).copied().collect(),
            y: (self.data.dims == 2)
                .then(|| (0..self.data.grid[0]).map(|j| self.data.coords[j * self.data.grid[1] * 2 + 1]).collect()),
        }
    }

    fn snapshots(&self) -> usize {
        self.data.count * self.t_train
    }

    /// The frames `[b, c·n]` of snapshots `ids`.
    fn frames(&self, ids: &[usize], on: On) -> Tensor<2> {
        let f = self.data.frame();
        let mut v = Vec::with_capacity(ids.len() * f);
        for &id in ids {
            v.extend_from_slice(self.data.level(id / self.t_train, id % self.t_train));
        }
        tensor2(v, [ids.len(), f], on)
    }

    fn mu_of(&self, trajectories: impl Iterator<Item = usize>, on: On) -> Option<Tensor<2>> {
        let p = self.data.param_names.len();
        if p == 0 {
            return None;
        }
        let v: Vec<f32> = trajectories.flat_map(|s| self.mu_norm[s * p..(s + 1) * p].iter().copied()).collect();
        let b = v.len() / p;
        Some(tensor2(v, [b, p], on))
    }

    fn grid(&self, on: On) -> Tensor<2> {
        tensor2(self.x_scaled.clone(), [self.data.points(), self.data.dims], on)
    }

    /// Φ-ROM's loss on snapshots `ids`: (λ L_rec + (1 − λ) L_dyn, L_rec, L_dyn, samples left out).
    fn phirom_loss(
        &mut self,
        model: &RomNet,
        ids: &[usize],
        ctx: &StepContext,
    ) -> Result<(Tensor<1>, f64, f64, usize), TrainError> {
        let parts = self.phirom_parts(model, ids, ctx)?;
        let lam = self.exp.phirom.lambda;
        let rec = scalar(parts.l_rec.clone());
        if parts.psi.dims()[0] == 0 {
            return Ok((parts.l_rec.mul_scalar(lam), rec, f64::NAN, parts.left_out));
        }
        let num = (parts.psi - parts.adot.clone()).square().sum_dim(1).sqrt();
        let den = parts.adot.detach().square().sum_dim(1).sqrt();
        let l_dyn = (num / den).mean();
        let dynamics = scalar(l_dyn.clone());
        Ok((parts.l_rec.mul_scalar(lam) + l_dyn.mul_scalar(1.0 - lam), rec, dynamics, parts.left_out))
    }

    /// The pieces of Φ-ROM's loss on snapshots `ids`: L_rec, and Ψ(α, μ) and α̇* on the samples kept.
    fn phirom_parts(&mut self, model: &RomNet, ids: &[usize], ctx: &StepContext) -> Result<PhiromParts, TrainError> {
        let device = &ctx.device;
        let on = (device, dtype_of(&model.decoder));
        let (n, c, d, k) = (self.data.points(), self.data.fields.len(), self.data.dims, self.exp.model.latent);
        let b = ids.len();
        let idx = ints(ids.iter().map(|&i| i as i64).collect(), [b], device);
        let alpha = model.latents.val().select(0, idx);
        let u_hat = physical(model.decoder.decode(self.grid(on), alpha.clone()), &self.scales);
        let l_rec = relative_l2(u_hat.clone(), self.frames(ids, on), c);
        let warm = ctx.epoch < self.exp.phirom.warmup_epochs;
        // the solver's time derivative of the decoded field
        let schemes: Vec<Arc<RomRhs>> = ids.iter().map(|&i| self.schemes[i / self.t_train].clone()).collect();
        let f = bridge::rhs_each(schemes, if warm { u_hat.detach() } else { u_hat }, &self.report)
            .map_err(|e| TrainError::failed(e.to_string()))?;
        // ⌊γN⌋ points per sample (at least enough rows for k unknowns), drawn from (seed, step, example)
        let m = ((self.exp.phirom.gamma * n as f64).floor() as usize).max(k.div_ceil(c)).min(n);
        let mut points = Vec::with_capacity(b * m * d);
        let mut rows = Vec::with_capacity(b * m * c);
        let mut pick: Vec<usize> = (0..n).collect();
        for &id in ids {
            // each sample's points depend on (seed, step, snapshot) only, not on the rest of the batch, so any
            // split of a batch between ranks draws the same points
            pick.iter_mut().enumerate().for_each(|(i, p)| *p = i);
            let mut state = self.exp.seed ^ (ctx.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (id as u64) << 32;
            for j in 0..m {
                let r = j + (splitmix(&mut state) % (n - j) as u64) as usize;
                pick.swap(j, r);
            }
            for &p in &pick[..m] {
                points.extend_from_slice(&self.x_scaled[p * d..(p + 1) * d]);
                for ch in 0..c {
                    rows.push((ch * n + p) as i64);
                }
            }
        }
        let xs = tensor3(points, [b, m, d], on);
        let fs = f.gather(1, ints(rows, [b, m * c], device));
        let alpha_j = if warm { alpha.clone().detach() } else { alpha.clone() };
        let (_, jac) = model.decoder.jacobian_at(xs, alpha_j);
        // physical units: ∂û/∂α = std_c ∂y/∂α
        let std = channel_row(&self.scales.std, on).reshape([1, 1, c, 1]);
        let jac = (jac * std).reshape([b, m * c * k]);
        let adot = bridge::lstsq(Tensor::cat(vec![jac, fs], 1), m * c, k, &self.report)
            .map_err(|e| TrainError::failed(e.to_string()))?;
        let adot = if warm { adot.detach() } else { adot };
        // samples whose target is not finite or vanishes are left out (and counted)
        let values = host(adot.clone());
        let keep: Vec<i64> = (0..b)
            .filter(|&s| {
                let row = &values[s * k..(s + 1) * k];
                row.iter().all(|v| v.is_finite()) && row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() > 1e-24
            })
            .map(|s| s as i64)
            .collect();
        let left_out = b - keep.len();
        let psi_in = if warm { alpha.detach() } else { alpha };
        let mu = self.mu_of(ids.iter().map(|&i| i / self.t_train), on);
        let dynamics =
            model.dynamics.as_ref().ok_or_else(|| TrainError::failed("Φ-ROM's model has no dynamics network"))?;
        let psi = dynamics.forward(psi_in, mu);
        let kk = keep.len();
        let sel = ints(keep, [kk], device);
        Ok(PhiromParts { l_rec, psi: psi.select(0, sel.clone()), adot: adot.select(0, sel), left_out })
    }

    /// CROM's loss on snapshots `ids`: the mean squared reconstruction error (physical units).
    fn crom_loss(&self, model: &RomNet, ids: &[usize], device: &Device) -> (Tensor<1>, f64) {
        let b = ids.len();
        let on = (device, dtype_of(&model.decoder));
        let alpha = model.latents.val().select(0, ints(ids.iter().map(|&i| i as i64).collect(), [b], device));
        let u_hat = physical(model.decoder.decode(self.grid(on), alpha), &self.scales);
        let l = (u_hat - self.frames(ids, on)).square().mean();
        let v = scalar(l.clone());
        (l, v)
    }

    /// DINo's loss on trajectories `traj`: the mean squared reconstruction error of all their training levels
    /// plus the latent rollout's squared error against the stored (detached) latents, one integrator step per
    /// level with teacher forcing.
    fn dino_loss(
        &self,
        model: &RomNet,
        traj: &[usize],
        ctx: &StepContext,
    ) -> Result<(Tensor<1>, f64, f64), TrainError> {
        let device = &ctx.device;
        let (t, k) = (self.t_train, self.exp.model.latent);
        let ids: Vec<usize> = traj.iter().flat_map(|&s| (0..t).map(move |n| s * t + n)).collect();
        let (l_rec, rec) = self.crom_loss(model, &ids, device);
        let b = traj.len();
        let stored = model
            .latents
            .val()
            .select(0, ints(ids.iter().map(|&i| i as i64).collect(), [b * t], device))
            .detach()
            .reshape([b, t, k]);
        let mu = self.mu_of(traj.iter().copied(), (device, dtype_of(&model.decoder)));
        let dynamics =
            model.dynamics.as_ref().ok_or_else(|| TrainError::failed("DINo's model has no dynamics network"))?;
        let f = |a: Tensor<2>| dynamics.forward(a, mu.clone());
        let d = &self.exp.dino;
        let epoch = ctx.epoch;
        let mut teacher = d.teacher * d.teacher_decay.powi((epoch / d.teacher_every).min(i32::MAX as usize) as i32);
        if teacher < 1e-3 {
            teacher = 0.0;
        }
        let mut state = self.exp.seed ^ 0xD1B0 ^ (ctx.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let at = |n: usize| stored.clone().narrow(1, n, 1).reshape([b, k]);
        let mut a = at(0);
        let mut err = (a.clone() - at(0)).square().sum();
        let h = self.data.level_dt;
        for n in 1..t {
            a = integrate(&f, a, h, Integrator::Bosh3);
            err = err + (a.clone() - at(n)).square().sum();
            let u = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            if u < teacher {
                a = at(n);
            }
        }
        let l_node = err.div_scalar((b * t * k) as f64);
        let node = scalar(l_node.clone());
        Ok((l_rec + l_node, rec, node))
    }
}

/// Φ-ROM's loss terms before they are combined.
struct PhiromParts {
    l_rec: Tensor<1>,
    /// Ψ(α, μ) and α̇* `[kept, k]`.
    psi: Tensor<2>,
    adot: Tensor<2>,
    left_out: usize,
}

/// The norm of column `i` of a row-major matrix with `k` columns (scales the damping per latent direction).
fn j_norm(j: &[f64], k: usize, i: usize) -> f64 {
    j.iter().skip(i).step_by(k).map(|v| v * v).sum::<f64>().sqrt()
}

/// One step of `α̇ = f(α)` of size `h`.
fn integrate(f: &dyn Fn(Tensor<2>) -> Tensor<2>, a: Tensor<2>, h: f64, method: Integrator) -> Tensor<2> {
    match method {
        Integrator::Bosh3 => {
            let k1 = f(a.clone());
            let k2 = f(a.clone() + k1.clone().mul_scalar(h / 2.0));
            let k3 = f(a.clone() + k2.clone().mul_scalar(3.0 * h / 4.0));
            a + (k1.mul_scalar(2.0 / 9.0) + k2.mul_scalar(1.0 / 3.0) + k3.mul_scalar(4.0 / 9.0)).mul_scalar(h)
        }
        Integrator::Rk4 => {
            let k1 = f(a.clone());
            let k2 = f(a.clone() + k1.clone().mul_scalar(h / 2.0));
            let k3 = f(a.clone() + k2.clone().mul_scalar(h / 2.0));
            let k4 = f(a.clone() + k3.clone().mul_scalar(h));
            a + (k1 + k2.mul_scalar(2.0) + k3.mul_scalar(2.0) + k4).mul_scalar(h / 6.0)
        }
    }
}

impl Method for Rom {
    type Model = RomNet;

    fn examples(&self) -> usize {
        match self.exp.method {
            RomMethod::Dino => self.data.count,
            _ => self.snapshots(),
        }
    }

    fn build(&self, init: &mut Init) -> RomNet {
        build_net(
            &self.exp,
            self.data.dims,
            self.data.fields.len(),
            self.data.param_names.len(),
            self.snapshots(),
            init,
        )
    }

    fn lr_scales(&self, model: &RomNet) -> Option<Vec<f32>> {
        if self.exp.method != RomMethod::Dino {
            return None;
        }
        let d = &self.exp.dino;
        let mut s = Vec::new();
        for (path, shape) in ansatz_operators::flat::layout(model) {
            let scale = if path.starts_with("decoder") {
                d.decoder_lr_scale
            } else if path.starts_with("latents") {
                d.latent_lr_scale
            } else {
                1.0
            };
            s.extend(std::iter::repeat_n(scale as f32, shape.iter().product()));
        }
        Some(s)
    }

    fn metric_names(&self) -> Vec<String> {
        match self.exp.method {
            RomMethod::Phirom => vec!["rec".into(), "dyn".into(), "left_out".into()],
            RomMethod::Dino => vec!["rec".into(), "node".into()],
            RomMethod::Crom => vec![],
        }
    }

    fn write_setup(&self, out: &Path) -> Result<(), TrainError> {
        let net = self.build(&mut Init::new(self.exp.seed, &Device::flex()));
        engine::write_json(
            &out.join("run.json"),
            &self.info(net.num_params() - self.snapshots() * self.exp.model.latent),
        )
    }

    fn step(
        &mut self,
        model: &RomNet,
        batch: &[usize],
        ctx: &StepContext,
        grads: &mut Vec<f32>,
    ) -> Result<StepOutput, TrainError> {
        let (loss, metrics) = match self.exp.method {
            RomMethod::Phirom => {
                let (loss, rec, dynamics, left) = self.phirom_loss(model, batch, ctx)?;
                self.left_out += left as u64;
                (loss, vec![rec, dynamics, self.left_out as f64])
            }
            RomMethod::Dino => {
                let (loss, rec, node) = self.dino_loss(model, batch, ctx)?;
                (loss, vec![rec, node])
            }
            RomMethod::Crom => (self.crom_loss(model, batch, &ctx.device).0, vec![]),
        };
        let loss = engine::backward_into(model, loss, grads);
        if let Some(f) = self.report.take().into_iter().next() {
            return Err(TrainError::failed(format!("a bridge op failed in the backward pass: {f:?}")));
        }
        Ok(StepOutput { loss, metrics })
    }

    fn validate(&mut self, model: &RomNet, device: &Device) -> Result<Option<f64>, TrainError> {
        let v = &self.validation;
        let levels = match self.exp.data.validation_levels {
            0 => v.levels,
            l => l.min(v.levels),
        };
        let forecaster = Forecaster {
            exp: &self.exp,
            decoder: &model.decoder,
            dynamics: model.dynamics.as_ref(),
            scales: &self.scales,
            coords: &self.x_scaled,
            dims: self.data.dims,
            channels: self.data.fields.len(),
            level_dt: self.data.level_dt,
            physics: &self.data.physics,
            param_names: &self.data.param_names,
        };
        let initial: Vec<f32> = (0..v.count).flat_map(|s| v.level(s, 0).iter().copied()).collect();
        let pred = forecaster.forecast(&initial, &v.params, v.count, levels - 1, device)?;
        let f = v.frame();
        let (mut early, mut late) = ((0.0, 0usize), (0.0, 0usize));
        for s in 0..v.count {
            for t in 0..levels {
                let p = &pred[(s * levels + t) * f..(s * levels + t + 1) * f];
                let e = frame_error(p, v.level(s, t), v.fields.len());
                let acc = if t < self.t_train { &mut early } else { &mut late };
                acc.0 += e;
                acc.1 += 1;
            }
        }
        let mean = |a: (f64, usize)| if a.1 > 0 { a.0 / a.1 as f64 } else { f64::NAN };
        self.last_validation = vec![("val_interp".into(), mean(early)), ("val_extrap".into(), mean(late))];
        Ok(Some((early.0 + late.0) / (early.1 + late.1) as f64))
    }

    fn validation_metric_names(&self) -> Vec<String> {
        vec!["val_interp".into(), "val_extrap".into()]
    }

    fn validation_metrics(&mut self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.last_validation)
    }

    fn state(&self) -> Vec<u8> {
        self.left_out.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] =
            state.try_into().map_err(|_| format!("{} bytes of method state, 8 expected", state.len()))?;
        self.left_out = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// The relative L2 error of one frame, averaged over channels.
pub fn frame_error(p: &[f32], u: &[f32], channels: usize) -> f64 {
    let n = u.len() / channels;
    (0..channels)
        .map(|c| {
            let (mut num, mut den) = (0.0, 0.0);
            for i in c * n..(c + 1) * n {
                num += (p[i] as f64 - u[i] as f64).powi(2);
                den += (u[i] as f64).powi(2);
            }
            (num / den.max(1e-300)).sqrt()
        })
        .sum::<f64>()
        / channels as f64
}

// --- inference -----------------------------------------------------------------------------------------------------

/// Forecasts trajectories from initial fields with a trained model (on any device, without autodiff).
pub struct Forecaster<'a> {
    pub exp: &'a RomExperiment,
    pub decoder: &'a Decoder,
    pub dynamics: Option<&'a Dynamics>,
    pub scales: &'a RomScales,
    /// Scaled grid coordinates (`points × dims`).
    pub coords: &'a [f32],
    pub dims: usize,
    pub channels: usize,
    pub level_dt: f64,
    pub physics: &'a Physics,
    /// Names of the simulation parameters the forecasts receive.
    pub param_names: &'a [String],
}

impl Forecaster<'_> {
    fn points(&self) -> usize {
        self.coords.len() / self.dims
    }

    /// The latents `[b, k]` whose decoded fields best fit `targets` (`b × frame`, physical): Adam on the mean
    /// squared error, or with `adam = false` plain gradient descent on the sum of squares, from `start`, with
    /// gradients from the exact Jacobian; keeps each sample's best iterate.
    fn fit(&self, targets: &[f32], start: Vec<f32>, steps: usize, lr: f64, adam: bool, device: &Device) -> Vec<f32> {
        let (n, c, d, k) = (self.points(), self.channels, self.dims, self.exp.model.latent);
        let b = start.len() / k;
        let xs: Vec<f32> = (0..b).flat_map(|_| self.coords.iter().copied()).collect();
        let on = (device, dtype_of(self.decoder));
        let xs = tensor3(xs, [b, n, d], on);
        let (mut a, mut best, mut best_loss) = (start.clone(), start, vec![f64::INFINITY; b]);
        let (mut m1, mut m2) = (vec![0.0f64; b * k], vec![0.0f64; b * k]);
        for it in 0..=steps {
            let (y, jac) = self.decoder.jacobian_at(xs.clone(), tensor2(a.clone(), [b, k], on));
            let (y, jac) = (host(y), host(jac));
            let mut g = vec![0.0f64; b * k];
            for s in 0..b {
                let mut loss = 0.0;
                for p in 0..n {
                    for ch in 0..c {
                        let std = self.scales.std[ch];
                        let val = self.scales.mean[ch] + std * y[(s * n + p) * c + ch] as f64;
                        let r = val - targets[s * c * n + ch * n + p] as f64;
                        loss += r * r;
                        for i in 0..k {
                            // d(mean r²)/dα = 2 r std ∂y/∂α / (n c)
                            g[s * k + i] += 2.0 * r * std * jac[((s * n + p) * c + ch) * k + i] as f64;
                        }
                    }
                }
                let loss = loss / (n * c) as f64;
                if loss < best_loss[s] {
                    best_loss[s] = loss;
                    best[s * k..(s + 1) * k].copy_from_slice(&a[s * k..(s + 1) * k]);
                }
            }
            if it == steps {
                break;
            }
            let t = (it + 1) as i32;
            for (j, gj) in g.iter().enumerate() {
                // Adam on the mean squared error; gradient descent on the sum of squares (the reference's
                // least-squares objective, whose scale sets the step of a fixed rate)
                let gj = if adam { gj / (n * c) as f64 } else { *gj };
                if adam {
                    m1[j] = 0.9 * m1[j] + 0.1 * gj;
                    m2[j] = 0.999 * m2[j] + 0.001 * gj * gj;
                    let mh = m1[j] / (1.0 - 0.9f64.powi(t));
                    let vh = m2[j] / (1.0 - 0.999f64.powi(t));
                    a[j] -= (lr * mh / (vh.sqrt() + 1e-8)) as f32;
                } else {
                    a[j] -= (lr * gj) as f32;
                }
            }
        }
        best
    }

    /// The residuals `D(X, α) − u` (`b × frame`, physical, frame layout), the Jacobian `∂D/∂α` (`b × frame × k`,
    /// physical) and each sample's mean squared residual.
    fn residuals(&self, targets: &[f32], a: &[f32], device: &Device) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (n, c, d, k) = (self.points(), self.channels, self.dims, self.exp.model.latent);
        let b = a.len() / k;
        let on = (device, dtype_of(self.decoder));
        let xs: Vec<f32> = (0..b).flat_map(|_| self.coords.iter().copied()).collect();
        let (y, jac) = self.decoder.jacobian_at(tensor3(xs, [b, n, d], on), tensor2(a.to_vec(), [b, k], on));
        let (y, jac) = (host(y), host(jac));
        let (mut r, mut j, mut loss) = (vec![0.0; b * c * n], vec![0.0; b * c * n * k], vec![0.0; b]);
        for s in 0..b {
            for p in 0..n {
                for ch in 0..c {
                    let std = self.scales.std[ch];
                    let row = s * c * n + ch * n + p;
                    r[row] = self.scales.mean[ch] + std * y[(s * n + p) * c + ch] as f64 - targets[row] as f64;
                    loss[s] += r[row] * r[row] / (n * c) as f64;
                    for i in 0..k {
                        j[row * k + i] = std * jac[((s * n + p) * c + ch) * k + i] as f64;
                    }
                }
            }
        }
        (r, j, loss)
    }

    /// The latents `[b, k]` whose decoded fields best fit `targets`: Levenberg–Marquardt from `start`, each
    /// iteration `min_δ ‖J δ + r‖² + λ‖δ‖²` per sample (QR of the stacked `[J; √λ I]`), a step kept when it
    /// lowers the error (λ / 3) and refused otherwise (λ × 4).
    fn fit_gauss_newton(&self, targets: &[f32], start: Vec<f32>, steps: usize, device: &Device) -> Vec<f32> {
        let k = self.exp.model.latent;
        let b = start.len() / k;
        let m = targets.len() / b.max(1);
        let mut a = start;
        let (mut r, mut j, mut loss) = self.residuals(targets, &a, device);
        let mut lambda = vec![1e-3f64; b];
        let mut work = ansatz_solvers::linalg::LstsqWork::new(m + k, k);
        let (mut aug, mut rhs, mut delta) = (vec![0.0; (m + k) * k], vec![0.0; m + k], vec![0.0; k]);
        for _ in 0..steps {
            let mut trial = a.clone();
            for s in 0..b {
                aug[..m * k].copy_from_slice(&j[s * m * k..(s + 1) * m * k]);
                aug[m * k..].fill(0.0);
                for i in 0..k {
                    aug[(m + i) * k + i] = lambda[s].sqrt() * (1.0 + j_norm(&j[s * m * k..(s + 1) * m * k], k, i));
                }
                rhs[..m].iter_mut().zip(&r[s * m..(s + 1) * m]).for_each(|(o, v)| *o = -v);
                rhs[m..].fill(0.0);
                if ansatz_solvers::linalg::lstsq(&aug, &rhs, &mut delta, 1e-14, &mut work).is_ok() {
                    for i in 0..k {
                        trial[s * k + i] += delta[i] as f32;
                    }
                }
            }
            let (rt, jt, lt) = self.residuals(targets, &trial, device);
            for s in 0..b {
                if lt[s] < loss[s] {
                    a[s * k..(s + 1) * k].copy_from_slice(&trial[s * k..(s + 1) * k]);
                    r[s * m..(s + 1) * m].copy_from_slice(&rt[s * m..(s + 1) * m]);
                    j[s * m * k..(s + 1) * m * k].copy_from_slice(&jt[s * m * k..(s + 1) * m * k]);
                    loss[s] = lt[s];
                    lambda[s] = (lambda[s] / 3.0).max(1e-12);
                } else {
                    lambda[s] = (lambda[s] * 4.0).min(1e12);
                }
            }
        }
        a
    }

    /// Decodes latents `[b, k]` to physical frames (`b × frame`, frame layout).
    fn decode(&self, a: &[f32], device: &Device) -> Vec<f32> {
        let (n, d, k) = (self.points(), self.dims, self.exp.model.latent);
        let on = (device, dtype_of(self.decoder));
        let x = tensor2(self.coords.to_vec(), [n, d], on);
        // at most about 2^18 decoded points at once
        let chunk = ((1usize << 18) / n.max(1)).max(1);
        let mut out = Vec::with_capacity(a.len() / k * n * self.channels);
        for part in a.chunks(chunk * k) {
            let b = part.len() / k;
            out.extend(host(physical(self.decoder.decode(x.clone(), tensor2(part.to_vec(), [b, k], on)), self.scales)));
        }
        out
    }

    /// `b` trajectories of `steps + 1` levels (the fitted initial level first) from the initial fields `initial`
    /// (`b × frame`) with simulation parameters `params` (`b × p`, raw); `(trajectory, level, frame)`.
    pub fn forecast(
        &self,
        initial: &[f32],
        params: &[f64],
        b: usize,
        steps: usize,
        device: &Device,
    ) -> Result<Vec<f32>, TrainError> {
        let latents = self.forecast_latents(initial, params, b, steps, device)?;
        Ok(self.decode(&latents, device))
    }

    /// The latents of [`Forecaster::forecast`]: `(trajectory, level, k)`.
    pub fn forecast_latents(
        &self,
        initial: &[f32],
        params: &[f64],
        b: usize,
        steps: usize,
        device: &Device,
    ) -> Result<Vec<f32>, TrainError> {
        let k = self.exp.model.latent;
        let inf = &self.exp.inference;
        let frame = initial.len() / b.max(1);
        let mut a = if inf.init == LatentFit::GaussNewton {
            self.fit_gauss_newton(initial, vec![0.0; b * k], inf.init_steps, device)
        } else {
            self.fit(initial, vec![0.0; b * k], inf.init_steps, inf.init_lr, true, device)
        };
        let mut out = vec![0.0f32; b * (steps + 1) * k];
        let mut put = |level: usize, a: &[f32]| {
            for s in 0..b {
                out[(s * (steps + 1) + level) * k..(s * (steps + 1) + level + 1) * k]
                    .copy_from_slice(&a[s * k..(s + 1) * k]);
            }
        };
        put(0, &a);
        match self.exp.method {
            RomMethod::Crom => {
                // the solver's step on the decoded field, then the latent that decodes closest to it
                let p = params.len() / b.max(1);
                let mut u = self.decode(&a, device);
                for level in 1..=steps {
                    for s in 0..b {
                        let mut v: Vec<f64> = u[s * frame..(s + 1) * frame].iter().map(|x| *x as f64).collect();
                        self.physics
                            .step_level(self.param_names, &params[s * p..(s + 1) * p], &mut v)
                            .map_err(|e| TrainError::failed(format!("the solver step of sample {s}: {e}")))?;
                        u[s * frame..(s + 1) * frame].iter_mut().zip(&v).for_each(|(x, y)| *x = *y as f32);
                    }
                    a = if inf.project == LatentFit::GaussNewton {
                        self.fit_gauss_newton(&u, a, inf.project_steps, device)
                    } else {
                        self.fit(&u, a, inf.project_steps, inf.project_lr, false, device)
                    };
                    u = self.decode(&a, device);
                    put(level, &a);
                }
            }
            _ => {
                let dynamics = self.dynamics.ok_or_else(|| bad("the model has no dynamics network"))?;
                let integrator = inf.integrator;
                let mu = (!self.scales.mu_mean.is_empty()).then(|| {
                    let p = self.scales.mu_mean.len();
                    tensor2(self.scales.normalised_params(params), [b, p], (device, dtype_of(self.decoder)))
                });
                let f = |x: Tensor<2>| dynamics.forward(x, mu.clone());
                let mut at = tensor2(a, [b, k], (device, dtype_of(self.decoder)));
                for level in 1..=steps {
                    at = integrate(&f, at, self.level_dt, integrator);
                    put(level, &host(at.clone()));
                }
            }
        }
        Ok(out)
    }

    /// The decoded fields of `latents` (`count × k`) at any physical `points` (`m × dims`): `(count, channel,
    /// point)`, physical units.
    pub fn decode_points(&self, latents: &[f32], points: &[f64], device: &Device) -> Vec<f32> {
        let (d, k) = (self.dims, self.exp.model.latent);
        let (count, m) = (latents.len() / k, points.len() / d);
        let on = (device, dtype_of(self.decoder));
        let x = tensor2(self.scales.scaled_coords(points), [m, d], on);
        host(physical(self.decoder.decode(x, tensor2(latents.to_vec(), [count, k], on)), self.scales))
    }
}

// --- a trained run as a trajectory model ----------------------------------------------------------------------------

/// Whether the run directory `run` holds a reduced-order model (its `config.toml` names a `method`).
pub fn is_rom_run(run: &Path) -> bool {
    std::fs::read_to_string(run.join("config.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.get("method").and_then(|m| m.as_str()).is_some_and(|m| m != "constrained"))
}

/// A trained Φ-ROM, DINo or CROM run, loaded for forecasting ([`crate::rollout::TrajectoryModel`]).
pub struct RomTrained {
    pub exp: RomExperiment,
    pub info: RomRunInfo,
    pub net: RomNet,
    physics: Physics,
    coords: Vec<f32>,
    device: Device,
}

impl RomTrained {
    /// Loads the run directory `run` (its `config.toml`, `run.json` and latest checkpoint) on `device`.
    pub fn load(run: &Path, device: &Device) -> Result<Self, TrainError> {
        let cpath = run.join("config.toml");
        let text = std::fs::read_to_string(&cpath).map_err(|e| bad(format!("{}: {e}", cpath.display())))?;
        let exp = RomExperiment::parse(&text, &cpath.display().to_string()).map_err(|e| bad(e.to_string()))?;
        let ipath = run.join("run.json");
        let info: RomRunInfo = std::fs::read_to_string(&ipath)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| bad(format!("{}: {e}", ipath.display())))?;
        let ck = crate::checkpoint::Checkpoint::load(&run.join("checkpoint.ckpt")).map_err(|e| bad(e.to_string()))?;
        let snapshots = match ck.header.layout.last() {
            Some((name, shape)) if name == "latents" && shape.len() == 2 => shape[0],
            _ => return Err(bad(format!("{}: the checkpoint holds no latent table", run.display()))),
        };
        let channels = info.fields.len();
        let net =
            build_net(&exp, info.dims, channels, info.param_names.len(), snapshots, &mut Init::new(exp.seed, device));
        if ansatz_operators::flat::layout(&net) != ck.header.layout {
            return Err(bad(format!("{}: the checkpoint does not fit the network in config.toml", run.display())));
        }
        let net = ansatz_operators::flat::unflatten(net, &ck.params);
        let physics = Physics::from_dataset(&info.pde, &info.generation_config).map_err(bad)?;
        // the grid's coordinates, as the training data had them
        let [ny, nx] = info.grid;
        let x = match (&physics, info.x.is_empty()) {
            (Physics::Rom(spec), true) => spec.axis(),
            _ => info.x.clone(),
        };
        let y = info.y.clone().unwrap_or_else(|| x.clone());
        if x.len() != nx || (info.dims == 2 && y.len() != ny) {
            return Err(bad(format!("{}: run.json's coordinates do not match its grid", run.display())));
        }
        let mut raw = Vec::with_capacity(nx * ny * info.dims);
        for yj in y.iter().take(ny) {
            for xi in &x {
                raw.push(*xi);
                if info.dims == 2 {
                    raw.push(*yj);
                }
            }
        }
        let coords = info.scales.scaled_coords(&raw);
        Ok(Self { exp, info, net, physics, coords, device: device.clone() })
    }

    /// Where the training data came from: the whole training file may be rolled out (beyond the training levels
    /// it is a forecast in time).
    pub fn provenance(&self) -> crate::rollout::Provenance {
        crate::rollout::Provenance {
            data: std::fs::canonicalize(&self.info.data).unwrap_or_else(|_| self.info.data.clone()),
            test: 0..self.info.trajectories,
            train_samples: self.info.trajectories,
        }
    }

    /// The latents of `batch` forecasts of `steps` levels from initial fields (`batch × frame`) with their
    /// simulation parameters (`batch × p`): `(trajectory, level, k)`, the fitted initial latent first.
    pub fn forecast_latents(
        &self,
        initial: &[f32],
        params: &[f64],
        batch: usize,
        steps: usize,
    ) -> Result<Vec<f32>, TrainError> {
        self.forecaster().forecast_latents(initial, params, batch, steps, &self.device)
    }

    /// The fields of `latents` (`count × k`) at any physical `points` (`m × dims`): `(count, channel, point)`.
    pub fn decode_points(&self, latents: &[f32], points: &[f64]) -> Vec<f32> {
        self.forecaster().decode_points(latents, points, &self.device)
    }

    fn forecaster(&self) -> Forecaster<'_> {
        Forecaster {
            exp: &self.exp,
            decoder: &self.net.decoder,
            dynamics: self.net.dynamics.as_ref(),
            scales: &self.info.scales,
            coords: &self.coords,
            dims: self.info.dims,
            channels: self.info.fields.len(),
            level_dt: self.info.level_dt,
            physics: &self.physics,
            param_names: &self.info.param_names,
        }
    }
}

impl crate::rollout::TrajectoryModel for RomTrained {
    fn name(&self) -> String {
        self.exp.method.name().into()
    }
    fn parameters(&self) -> usize {
        self.info.parameters
    }
    fn fields(&self) -> &[String] {
        &self.info.fields
    }
    fn grid(&self) -> [usize; 2] {
        self.info.grid
    }
    fn context_frames(&self) -> usize {
        1
    }
    fn frame_interval(&self) -> f64 {
        self.info.level_dt
    }
    fn parameter_names(&self) -> Vec<String> {
        self.info.param_names.clone()
    }
    fn predict(&self, context: &[f32], batch: usize, steps: usize, out: &mut [f64]) -> Result<(), TrainError> {
        if !self.info.param_names.is_empty() {
            return Err(bad(format!("the model needs the samples' {}", self.info.param_names.join(", "))));
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
        let frame = context.len() / batch.max(1);
        let pred = self.forecaster().forecast(context, params, batch, steps, &self.device)?;
        for s in 0..batch {
            for t in 0..steps {
                let src = &pred[(s * (steps + 1) + t + 1) * frame..(s * (steps + 1) + t + 2) * frame];
                for (o, v) in out[(s * steps + t) * frame..(s * steps + t + 1) * frame].iter_mut().zip(src) {
                    *o = *v as f64;
                }
            }
        }
        Ok(())
    }
}

// --- runs ----------------------------------------------------------------------------------------------------------

/// Whether the stored configuration `old` may be continued by `exp` (only `training.steps` may grow, with
/// `extend`).
fn reconcile(old: &str, exp: &RomExperiment, extend: bool, out: &Path) -> Result<Reconciled, TrainError> {
    let old_exp = RomExperiment::parse(old, "config.toml").map_err(|e| bad(e.to_string()))?;
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

/// Trains Φ-ROM, DINo or CROM for `exp` on `opts.data` into the run directory `opts.out` (`config.toml`,
/// `run.json`, `checkpoint.ckpt`, metrics, `summary.json`); `validation` is the validation file, if any.
pub fn train_rom(
    exp: &RomExperiment,
    opts: &TrainOptions,
    validation: Option<&Path>,
    comm: &dyn Communicator,
    observer: &mut dyn Observer,
) -> Result<TrainSummary, TrainError> {
    ansatz_operators::memory::retain_freed_memory();
    let exp = exp.clone().validated().map_err(|e| bad(e.to_string()))?;
    let dir =
        RunDir::open(&opts.run_options(), exp.to_toml(), |old| reconcile(old, &exp, opts.extend, &opts.out), comm)?;
    let d = &exp.data;
    let (data, val) = match validation {
        Some(p) => (Trajectories::load(&opts.data, 0, d.max_trajectories)?, Some(Trajectories::load(p, 0, 0)?)),
        None if d.validation_trajectories > 0 => {
            let all = Trajectories::load(&opts.data, 0, 0)?;
            let train = if d.max_trajectories == 0 { all.count } else { d.max_trajectories.min(all.count) };
            if train + d.validation_trajectories > all.count {
                return Err(bad(format!(
                    "{}: {} trajectories, fewer than {train} for training and {} for validation",
                    opts.data.display(),
                    all.count,
                    d.validation_trajectories
                )));
            }
            let (t, v) = all.split(train, d.validation_trajectories);
            (t, Some(v))
        }
        None => (Trajectories::load(&opts.data, 0, d.max_trajectories)?, None),
    };
    let mut method = Rom::new(&exp, data, val)?;
    engine::train(&mut method, &dir, &exp.settings(), &opts.device, &opts.drills(), comm, observer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ansatz_datasets::generate::GenerateOptions;
    use ansatz_datasets::rom::{RomPde, generate_rom, load};
    use ansatz_operators::flat;

    /// Three Burgers trajectories (random μ) of 5 levels on 24 cells.
    fn small_data(dir: &Path) -> Trajectories {
        let sets = ["grid.n=24", "time.levels=4", "parameter.set=uniform"].map(String::from);
        let spec = load(RomPde::BurgersSource1d, None, &sets, Some(3), Some(1)).unwrap();
        let path = dir.join("b.nc");
        generate_rom(&spec, &path, &GenerateOptions::default(), |_, _| {}).unwrap();
        Trajectories::load(&path, 0, 0).unwrap()
    }

    fn small_exp(lambda: f64, warmup_epochs: usize) -> RomExperiment {
        let mut e = RomExperiment::parse("method = \"phirom\"", "test").unwrap();
        e.model = RomModel {
            latent: 3,
            decoder_width: 8,
            decoder_layers: 2,
            dynamics_width: 8,
            dynamics_depth: 2,
            ..RomModel::default()
        };
        e.phirom = PhiromSettings { lambda, gamma: 0.5, warmup_epochs };
        e.data.train_levels = 4;
        e
    }

    /// A model in f64 with random latents.
    fn f64_model(method: &Rom, device: &Device) -> RomNet {
        let net = method.build(&mut Init::new(2, device).with_dtype(DType::F64));
        let mut p = flat::flatten(&net);
        let layout = flat::layout(&net);
        let latents: usize = layout.last().map(|(_, s)| s.iter().product()).unwrap();
        let n = p.len();
        for (i, v) in p[n - latents..].iter_mut().enumerate() {
            *v = 0.3 * ((i as f64 * 1.7).sin());
        }
        flat::unflatten(net, &p)
    }

    fn ctx(epoch: usize, device: &Device) -> StepContext {
        StepContext { step: 3, epoch, device: device.clone(), rank: 0, ranks: 1 }
    }

    /// Check C3: the gradient through Φ-ROM's loss terms (the decoder, the solver's right-hand side, the Jacobian
    /// tangents and the QR least squares, Ψ) with respect to latents, decoder and dynamics weights equals central
    /// differences, in f64, to 1e-5. The loss checked is `0.3 L_rec + Σ w ⊙ (Ψ − α̇*)` with fixed random `w`:
    /// the training loss itself holds a stop-gradient (its normaliser), which differences cannot see.
    #[test]
    fn the_phirom_gradient_matches_finite_differences() {
        let dir = tempfile::tempdir().unwrap();
        let mut method = Rom::new(&small_exp(0.5, 0), small_data(dir.path()), None).unwrap();
        let ad = Device::flex().autodiff();
        let plain = Device::flex();
        let model = f64_model(&method, &ad);
        let ids = [0, 5, 9];
        let w: Vec<f32> = (0..9).map(|i| ((i as f32) * 0.7).cos()).collect();
        let loss = |m: &RomNet, device: &Device, method: &mut Rom| {
            let parts = method.phirom_parts(m, &ids, &ctx(1, device)).unwrap();
            assert_eq!(parts.left_out, 0);
            let w = tensor2(w.clone(), [3, 3], (device, DType::F64));
            parts.l_rec.mul_scalar(0.3) + ((parts.psi - parts.adot) * w).sum()
        };
        let g = flat::flatten_grads(&model, &loss(&model, &ad, &mut method).backward());
        let params = flat::flatten(&model);
        let layout = flat::layout(&model);
        let start = |name: &str| {
            let mut off = 0;
            for (path, shape) in &layout {
                if path.starts_with(name) {
                    return off;
                }
                off += shape.iter().product::<usize>();
            }
            panic!("{name}")
        };
        // entries of each part: decoder weights, a dynamics weight, a latent of the batch
        let checks = [
            ("decoder", start("decoder") + 2),
            ("decoder", start("decoder") + 40),
            ("dynamics", start("dynamics") + 4),
            ("latent", start("latents") + 5 * 3 + 1),
        ];
        for (what, i) in checks {
            let h = 1e-6;
            let (mut p, mut q) = (params.clone(), params.clone());
            p[i] += h;
            q[i] -= h;
            let mp = flat::unflatten(f64_model(&method, &plain), &p);
            let mq = flat::unflatten(f64_model(&method, &plain), &q);
            let fd = (scalar(loss(&mp, &plain, &mut method)) - scalar(loss(&mq, &plain, &mut method))) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() <= 1e-5 * g[i].abs().max(1e-2),
                "{what} ({i}): autodiff {} vs central difference {fd}",
                g[i]
            );
        }
    }

    /// During the warm-up the dynamics loss trains Ψ only: with λ = 0 the decoder and the latents get no gradient;
    /// afterwards they do.
    #[test]
    fn the_warm_up_keeps_the_dynamics_loss_off_the_decoder_and_latents() {
        let dir = tempfile::tempdir().unwrap();
        let mut method = Rom::new(&small_exp(0.0, 10), small_data(dir.path()), None).unwrap();
        let ad = Device::flex().autodiff();
        let model = f64_model(&method, &ad);
        let layout = flat::layout(&model);
        let norms = |epoch: usize, method: &mut Rom| {
            let (loss, ..) = method.phirom_loss(&model, &[1, 2, 7], &ctx(epoch, &ad)).unwrap();
            let g = flat::flatten_grads(&model, &loss.backward());
            let mut off = 0;
            let mut out = std::collections::BTreeMap::new();
            for (path, shape) in &layout {
                let n: usize = shape.iter().product();
                let part = path.split('.').next().unwrap().to_string();
                *out.entry(part).or_insert(0.0) += g[off..off + n].iter().map(|v| v * v).sum::<f64>();
                off += n;
            }
            out
        };
        let warm = norms(3, &mut method);
        assert_eq!((warm["decoder"], warm["latents"]), (0.0, 0.0), "{warm:?}");
        assert!(warm["dynamics"] > 0.0);
        let after = norms(10, &mut method);
        assert!(after["decoder"] > 0.0 && after["latents"] > 0.0 && after["dynamics"] > 0.0, "{after:?}");
    }

    /// The initial latent of a decoded field is found again from zero: Levenberg–Marquardt in 30 iterations, and
    /// the reference's Adam in 1000 steps, both to a small fraction of the field.
    #[test]
    fn initial_latents_are_recovered_from_decoded_fields() {
        let device = Device::flex();
        let mut init = Init::new(9, &device).with_dtype(DType::F64);
        let mut exp = small_exp(0.5, 0);
        exp.model.latent = 3;
        let c = DecoderConfig { kind: DecoderKind::Mlp, coords: 1, latent: 3, outputs: 1, width: 16, layers: 3 };
        let decoder = Decoder::new(&c, &mut init);
        let scales = RomScales {
            coord_lo: vec![-1.0],
            coord_hi: vec![1.0],
            mean: vec![0.0],
            std: vec![1.0],
            mu_mean: vec![],
            mu_std: vec![],
        };
        let coords: Vec<f32> = (0..40).map(|i| -1.0 + 2.0 * i as f32 / 39.0).collect();
        let spec = load(RomPde::BurgersSource1d, None, &[], None, None).unwrap();
        let physics = Physics::Rom(spec);
        let f = Forecaster {
            exp: &exp,
            decoder: &decoder,
            dynamics: None,
            scales: &scales,
            coords: &coords,
            dims: 1,
            channels: 1,
            level_dt: 0.1,
            physics: &physics,
            param_names: &[],
        };
        let truth = vec![0.4f32, -0.3, 0.2, -0.5, 0.1, 0.35];
        let target = f.decode(&truth, &device);
        let norm = target.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let err = |a: &[f32]| {
            let d = f.decode(a, &device);
            d.iter().zip(&target).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt() / norm
        };
        let gn = f.fit_gauss_newton(&target, vec![0.0; 6], 30, &device);
        let adam = f.fit(&target, vec![0.0; 6], 1000, 0.1, true, &device);
        let (e_gn, e_adam) = (err(&gn), err(&adam));
        eprintln!("relative errors: Gauss–Newton {e_gn:e}, Adam {e_adam:e}");
        assert!(e_gn < 1e-3 && e_adam < 5e-2, "relative errors: Gauss–Newton {e_gn:e}, Adam {e_adam:e}");
    }

    /// Check C3's projection: for the decoded trajectory `D(α₀ + t v)`, the least-squares latent velocity of its
    /// time derivative (central differences of the decoded fields) is `v`.
    #[test]
    fn the_projected_velocity_of_a_decoded_trajectory_is_its_latent_velocity() {
        let device = Device::flex();
        let mut init = Init::new(5, &device).with_dtype(DType::F64);
        for kind in [DecoderKind::Mlp, DecoderKind::Hyper] {
            let c = DecoderConfig { kind, coords: 2, latent: 4, outputs: 1, width: 16, layers: 3 };
            let dec = Decoder::new(&c, &mut init);
            let (b, m) = (2, 30);
            let x = init.uniform([b, m, 2], -1.0, 1.0);
            let a0 = init.uniform([b, 4], -0.5, 0.5);
            let v = init.uniform([b, 4], -1.0, 1.0);
            let h = 1e-5;
            let up = dec.decode_at(x.clone(), a0.clone() + v.clone().mul_scalar(h)).reshape([b, m]);
            let down = dec.decode_at(x.clone(), a0.clone() - v.clone().mul_scalar(h)).reshape([b, m]);
            let dudt = (up - down).div_scalar(2.0 * h);
            let (_, jac) = dec.jacobian_at(x, a0);
            let jf = Tensor::cat(vec![jac.reshape([b, m * 4]), dudt], 1);
            let adot = bridge::lstsq(jf, m, 4, &BridgeReport::new()).unwrap();
            let err = scalar((adot - v.clone()).abs().max().reshape([1])) / scalar(v.abs().max().reshape([1]));
            assert!(err < 1e-6, "{kind:?}: relative error {err:e}");
        }
    }
}
