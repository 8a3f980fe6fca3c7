//! Experiment configuration: one TOML file names the data, the model, the optimiser, the learning-rate schedule,
//! the loss and the training budget. Every key has a default (the embedded `configs/train-*.toml` files spell
//! them out), and unknown keys are refused with their name, so a typo never silently trains the wrong thing.
//!
//! ```toml
//! seed = 0
//! [data]
//! path = "burgers2d.nc"   # relative to the configuration file; `ansatz train --data` overrides it
//! history = 10            # input frames H
//! horizon = 10            # frames K predicted autoregressively (and back-propagated through) per window
//! [model]
//! kind = "dymixop"        # dymixop | fno
//! width = 32
//! [optimiser]
//! kind = "adamw"
//! [schedule]
//! kind = "warmup-cosine"
//! peak = 1e-3
//! [training]
//! steps = 2000
//! batch = 16
//! ```

pub use crate::methods::jaws::RegularisationConfig;
use crate::methods::jaws::Regulariser;
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration that cannot be used, with the key (or file) at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Seeds the initial weights and the order of training windows.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub optimiser: OptimiserConfig,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    #[serde(default)]
    pub training: TrainingConfig,
    /// `[regularisation]`: the Jacobian penalty (left out of stored configurations when it is the default).
    #[serde(default, skip_serializing_if = "RegularisationConfig::is_default")]
    pub regularisation: RegularisationConfig,
    /// `[hybrid]`: a solver in the loop (left out of stored configurations when it is the default, none).
    #[serde(default, skip_serializing_if = "HybridConfig::is_default")]
    pub hybrid: HybridConfig,
}

/// `[hybrid]`: whether the data's own solver advances each frame before the network (`docs/methods/hybrid.md`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HybridConfig {
    /// `none`: the network alone predicts the next frame; `data`: the data's solver (rebuilt from the dataset's
    /// `generation_config` at the data's grid, with each sample's ν) advances the frame and the network corrects
    /// it, `u' = S^m(u) + N(S^m(u))`, trained through the solver's adjoint.
    pub solver: HybridSolver,
    /// Solver steps per stored frame (0: the generation configuration's fixed `time.dt`).
    pub substeps: usize,
}

impl HybridConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a solver is in the loop.
    pub fn enabled(&self) -> bool {
        self.solver != HybridSolver::None
    }
}

/// `hybrid.solver`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HybridSolver {
    #[default]
    None,
    Data,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn default_schedule() -> Schedule {
    Schedule::WarmupCosine { peak: 1e-3, warmup_steps: 0, total_steps: 0, final_fraction: 0.01 }
}

/// `[data]`: where trajectories come from and how windows are cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Dataset file or manifest of shards (relative paths are taken from the configuration file's folder).
    pub path: Option<PathBuf>,
    /// Input frames H.
    pub history: usize,
    /// Frames K predicted autoregressively per training window (back-propagated through all of them).
    pub horizon: usize,
    /// Offset between successive window starts.
    pub stride: usize,
    /// Fractions of samples held out for validation and test (contiguous, at the end of the file).
    pub validation: f64,
    pub test: f64,
    /// Use only the first `max_samples` samples (0: all).
    pub max_samples: usize,
    /// Where trajectories are held during training: `memory` (the whole file, normalised, on every rank),
    /// `stream` (read from the file on demand through a cache of `memory_budget`; each rank reads only the
    /// samples of its windows) or `auto` (memory when the loaded trajectories fit in `memory_budget`).
    pub loading: Loading,
    /// MiB for the trajectories: the limit of `auto` for loading into memory, and the size of the streaming cache.
    pub memory_budget: usize,
    /// How training windows are dealt to ranks under `mpirun`: `global` (every global batch drawn from all
    /// windows, the same order as one rank) or `rank` (rank r draws its share of every global batch from the
    /// windows of its own contiguous share of the training samples, so ranks read disjoint parts of the file).
    pub partition: Partition,
}

/// `data.partition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    Global,
    Rank,
}

/// `data.loading`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loading {
    Auto,
    Memory,
    Stream,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: None,
            history: 1,
            horizon: 1,
            stride: 1,
            validation: 0.1,
            test: 0.2,
            max_samples: 0,
            loading: Loading::Auto,
            memory_budget: 4096,
            partition: Partition::Global,
        }
    }
}

/// `[model]`: the network, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelConfig {
    /// Fourier neural operator.
    Fno {
        #[serde(default = "d_width")]
        width: usize,
        #[serde(default = "d_layers")]
        layers: usize,
        #[serde(default = "d_modes")]
        modes: usize,
        #[serde(default = "d_projection")]
        projection: usize,
        /// Predict the change from the last input frame instead of the frame itself.
        #[serde(default)]
        residual: bool,
        /// Also predict log σ² per location and channel (needs `training.loss = "gaussian-nll"`).
        #[serde(default, skip_serializing_if = "is_false")]
        variance_head: bool,
    },
    /// Local–global-mixing operator.
    Dymixop {
        #[serde(default = "d_width")]
        width: usize,
        #[serde(default = "d_layers")]
        layers: usize,
        #[serde(default = "d_modes")]
        modes: usize,
        /// Width of the local convolutions (odd).
        #[serde(default = "d_kernel")]
        kernel: usize,
        /// `structure-change` (σ(λτ), τ measured on the input frames) or `reference` (σ(λ), as the public code).
        #[serde(default)]
        gate: Gate,
        #[serde(default)]
        residual: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        variance_head: bool,
    },
}

fn d_width() -> usize {
    32
}
fn d_layers() -> usize {
    4
}
fn d_modes() -> usize {
    8
}
fn d_projection() -> usize {
    128
}
fn d_kernel() -> usize {
    1
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Dymixop {
            width: d_width(),
            layers: d_layers(),
            modes: d_modes(),
            kernel: d_kernel(),
            gate: Gate::default(),
            residual: false,
            variance_head: false,
        }
    }
}

impl ModelConfig {
    /// `fno` or `dymixop`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Fno { .. } => "fno",
            ModelConfig::Dymixop { .. } => "dymixop",
        }
    }

    /// Whether the network predicts the change from the last input frame.
    pub fn residual(&self) -> bool {
        match self {
            ModelConfig::Fno { residual, .. } | ModelConfig::Dymixop { residual, .. } => *residual,
        }
    }

    /// Whether the network also predicts log σ² per location and channel.
    pub fn variance_head(&self) -> bool {
        match self {
            ModelConfig::Fno { variance_head, .. } | ModelConfig::Dymixop { variance_head, .. } => *variance_head,
        }
    }
}

/// The DyMixOp residual gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    #[default]
    StructureChange,
    Reference,
}

/// `[optimiser]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimiserConfig {
    pub kind: OptimiserKind,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// Decoupled weight decay (AdamW); ignored by Adam and SGD.
    pub weight_decay: f64,
    /// Momentum (SGD only).
    pub momentum: f64,
    /// Clip the global gradient norm to this value (0: no clipping).
    pub clip_norm: f64,
}

impl Default for OptimiserConfig {
    fn default() -> Self {
        Self {
            kind: OptimiserKind::Adamw,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1e-4,
            momentum: 0.0,
            clip_norm: 1.0,
        }
    }
}

/// Optimisers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimiserKind {
    Adamw,
    Adam,
    Sgd,
}

/// Training losses over the unrolled horizon (in normalised units).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Mean over samples and steps of Σ(p − y)² / Σy² (per sample and step).
    RelativeMse,
    /// Mean squared error.
    Mse,
    /// The heteroscedastic Gaussian negative log-likelihood mean (p − y)²/(2σ²) + ½ log σ², with σ from the
    /// variance head (`model.variance_head = true`).
    GaussianNll,
}

/// `[training]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Windows per step (the global batch; under MPI it is divided among the ranks).
    pub batch: usize,
    pub loss: Loss,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Score the validation windows every this many steps (0: only at the end).
    pub validate_every: usize,
    /// At most this many validation windows are scored (0: all).
    pub validation_windows: usize,
    /// Also score windows that start at the first frame of each validation trajectory, as `ansatz rollout` does,
    /// and log their nRMSE per step averaged over the horizon (`val_rollout_nrmse` in the metrics).
    pub validate_rollout: bool,
    /// After this many consecutive non-finite steps the last good checkpoint is restored.
    pub max_nonfinite: usize,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch: 16,
            loss: Loss::RelativeMse,
            checkpoint_every: 100,
            validate_every: 100,
            validation_windows: 256,
            validate_rollout: true,
            max_nonfinite: 3,
        }
    }
}

impl Experiment {
    /// Parses a configuration; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let exp: Experiment = toml::from_str(text).map_err(|e| err(format!("{origin}: {e}")))?;
        exp.validated().map_err(|e| err(format!("{origin}: {e}")))
    }

    /// Reads a configuration file; a relative `data.path` is resolved against the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let mut exp = Self::parse(&text, &path.display().to_string())?;
        if let Some(p) = &exp.data.path
            && p.is_relative()
        {
            exp.data.path = Some(path.parent().unwrap_or(Path::new(".")).join(p));
        }
        Ok(exp)
    }

    /// Checks every value and resolves the schedule's length.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        let d = &self.data;
        for (key, v) in [
            ("data.history", d.history),
            ("data.horizon", d.horizon),
            ("data.stride", d.stride),
            ("data.memory_budget", d.memory_budget),
        ] {
            if v == 0 {
                return Err(err(format!("`{key}` must be at least 1")));
            }
        }
        for (key, v) in [("data.validation", d.validation), ("data.test", d.test)] {
            if !(0.0..1.0).contains(&v) {
                return Err(err(format!("`{key}` must lie in [0, 1), got {v}")));
            }
        }
        if self.hybrid.enabled() {
            if d.history != 1 {
                return Err(err(format!(
                    "`hybrid.solver = \"data\"` advances one frame at a time: set `data.history = 1` (got {})",
                    d.history
                )));
            }
            if !self.model.residual() {
                return Err(err(
                    "`hybrid.solver = \"data\"`: the network corrects the solver's frame, set `model.residual = true`",
                ));
            }
        }
        let (width, layers, modes) = match &self.model {
            ModelConfig::Fno { width, layers, modes, projection, .. } => {
                if *projection == 0 {
                    return Err(err("`model.projection` must be at least 1"));
                }
                (*width, *layers, *modes)
            }
            ModelConfig::Dymixop { width, layers, modes, kernel, .. } => {
                if kernel % 2 == 0 {
                    return Err(err(format!("`model.kernel` must be odd, got {kernel}")));
                }
                (*width, *layers, *modes)
            }
        };
        for (key, v) in [("model.width", width), ("model.layers", layers), ("model.modes", modes)] {
            if v == 0 {
                return Err(err(format!("`{key}` must be at least 1")));
            }
        }
        let o = &self.optimiser;
        let finite_nonneg = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(err(format!("`{key}` must be finite and ≥ 0, got {v}")))
            }
        };
        finite_nonneg("optimiser.weight_decay", o.weight_decay)?;
        finite_nonneg("optimiser.clip_norm", o.clip_norm)?;
        for (key, v) in [("optimiser.beta1", o.beta1), ("optimiser.beta2", o.beta2), ("optimiser.momentum", o.momentum)]
        {
            if !(0.0..1.0).contains(&v) {
                return Err(err(format!("`{key}` must lie in [0, 1), got {v}")));
            }
        }
        if !(o.epsilon.is_finite() && o.epsilon > 0.0) {
            return Err(err(format!("`optimiser.epsilon` must be positive, got {}", o.epsilon)));
        }
        let t = &self.training;
        for (key, v) in [
            ("training.steps", t.steps),
            ("training.batch", t.batch),
            ("training.checkpoint_every", t.checkpoint_every),
            ("training.max_nonfinite", t.max_nonfinite),
        ] {
            if v == 0 {
                return Err(err(format!("`{key}` must be at least 1")));
            }
        }
        let heads = self.model.variance_head();
        if heads != (t.loss == Loss::GaussianNll) {
            return Err(err(if heads {
                "`model.variance_head = true` needs `training.loss = \"gaussian-nll\"` (the likelihood trains σ)"
            } else {
                "`training.loss = \"gaussian-nll\"` needs `model.variance_head = true`"
            }));
        }
        let r = &self.regularisation;
        r.validate().map_err(err)?;
        if r.kind == Regulariser::Jaws && !heads {
            return Err(err(
                "`regularisation.kind = \"jaws\"` weights the penalty by σ: set `model.variance_head = true`",
            ));
        }
        self.schedule = self.schedule.clone().resolved(t.steps);
        self.schedule.validate().map_err(|e| err(e.to_string()))?;
        Ok(self)
    }

    /// The configuration as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("an experiment configuration serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_an_empty_file() {
        let e = Experiment::parse("", "test").unwrap();
        assert_eq!(e.model.kind(), "dymixop");
        assert_eq!(e.training.steps, 1000);
        assert!(matches!(e.schedule, Schedule::WarmupCosine { total_steps: 1000, .. }));
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("[data]\nhistroy = 3", "histroy"),
            ("[model]\nkind = \"fno\"\nkernel = 3", "kernel"),
            ("[training]\nbatch_size = 3", "batch_size"),
            ("sed = 1", "sed"),
        ] {
            let e = Experiment::parse(text, "cfg.toml").unwrap_err();
            assert!(e.0.contains(key) && e.0.contains("cfg.toml"), "{text}: {e}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("[data]\nhistory = 0", "data.history"),
            ("[model]\nkind = \"dymixop\"\nkernel = 2", "model.kernel"),
            ("[optimiser]\nbeta1 = 1.5", "optimiser.beta1"),
            ("[training]\nsteps = 0", "training.steps"),
            ("[schedule]\nkind = \"constant\"\nrate = -1.0", "rate"),
        ] {
            let e = Experiment::parse(text, "cfg.toml").unwrap_err();
            assert!(e.0.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let e = Experiment::parse("[model]\nkind = \"fno\"\nwidth = 20\n[training]\nsteps = 7", "t").unwrap();
        assert_eq!(Experiment::parse(&e.to_toml(), "again").unwrap(), e);
    }
}
