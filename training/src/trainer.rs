//! Training a surrogate from an experiment configuration: the autoregressive method
//! ([`crate::methods::autoregressive`]) on the engine ([`crate::engine`]).
//!
//! A run directory holds `config.toml` (the resolved experiment), `run.json` (what the data looked like),
//! `normalisation.json`, `checkpoint.ckpt`, `metrics.csv`, `metrics.jsonl` and, once finished, `summary.json`.

use crate::config::Experiment;
use crate::data::Normalisation;
use crate::engine::{self, Drills, Reconciled, RunDir, RunOptions, Settings, config_difference};
use crate::methods::autoregressive::Autoregressive;
use crate::schedule::Schedule;
use ansatz_cluster::Communicator;
use burn::prelude::*;
use std::path::PathBuf;

pub use crate::engine::{Observer, Quiet, StepRecord, TrainError, TrainSummary, epoch_order};
pub use crate::methods::autoregressive::{RunInfo, Trained, unrolled_loss};

fn bad(message: impl Into<String>) -> TrainError {
    TrainError::input(message)
}

/// What a run needs besides its configuration.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Dataset file.
    pub data: PathBuf,
    /// Run directory.
    pub out: PathBuf,
    /// Continue from the run directory's checkpoint.
    pub resume: bool,
    /// With `resume`: the configuration may raise `training.steps` (everything else must match), so a finished
    /// run trains on. With a cosine schedule whose `total_steps` follows `training.steps`, the learning rate
    /// follows the longer schedule from the resumed step on.
    pub extend: bool,
    /// Replace an existing run directory.
    pub force: bool,
    /// The device to train on (its autodiff twin is used for gradients).
    pub device: Device,
    /// Stop (after writing a checkpoint) once this many steps are done, as an interrupted run would.
    pub stop_after: Option<usize>,
    /// Steps whose loss is replaced by NaN (exercises the non-finite guard in tests).
    pub inject_nonfinite: Vec<usize>,
    /// Rank 0 writes the averaged gradient of the first step here (f32 little-endian), for equivalence tests.
    pub gradient_dump: Option<PathBuf>,
    /// `(rank, step)`: that rank fails at that step (exercises whole-job aborts in tests).
    pub fault: Option<(usize, usize)>,
}

impl TrainOptions {
    pub fn new(data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            out: out.into(),
            resume: false,
            extend: false,
            force: false,
            device: Device::flex(),
            stop_after: None,
            inject_nonfinite: vec![],
            gradient_dump: None,
            fault: None,
        }
    }
}

impl TrainOptions {
    pub(crate) fn run_options(&self) -> RunOptions {
        RunOptions { out: self.out.clone(), resume: self.resume, extend: self.extend, force: self.force }
    }

    pub(crate) fn drills(&self) -> Drills {
        Drills {
            stop_after: self.stop_after,
            inject_nonfinite: self.inject_nonfinite.clone(),
            gradient_dump: self.gradient_dump.clone(),
            fault: self.fault,
        }
    }
}

/// Whether the stored configuration `old` may be continued by `exp` (only `training.steps` may grow, with
/// `extend`); the configuration text to store.
fn reconcile(old: &str, exp: &Experiment, extend: bool, out: &std::path::Path) -> Result<Reconciled, TrainError> {
    let old_exp = Experiment::parse(old, "config.toml").map_err(|e| bad(e.to_string()))?;
    // the data path is an option of the invocation, not of the experiment
    let mut mine = exp.clone();
    mine.data.path = old_exp.data.path.clone();
    let mut reference = old_exp.clone();
    let (old_steps, new_steps) = (old_exp.training.steps, exp.training.steps);
    let mut stretched = false;
    if extend {
        if new_steps < old_steps {
            return Err(bad(format!(
                "{}: --extend can only raise `training.steps` (the run has {old_steps}, the configuration {new_steps})",
                out.display()
            )));
        }
        reference.training.steps = new_steps;
        // a cosine schedule that ended at the run's last step ends at the new last step
        if let (Schedule::WarmupCosine { total_steps: t_old, .. }, Schedule::WarmupCosine { total_steps: t_new, .. }) =
            (&mut reference.schedule, &mine.schedule)
            && *t_old == old_steps
            && *t_new == new_steps
            && new_steps != old_steps
        {
            *t_old = new_steps;
            stretched = true;
        }
    }
    if reference != mine {
        let hint = if extend { "" } else { " (--extend allows a larger `training.steps`)" };
        return Err(bad(format!(
            "{}: the configuration differs from the run's: {}{hint}",
            out.display(),
            config_difference(&reference.to_toml(), &mine.to_toml())
        )));
    }
    Ok(Reconciled {
        config_text: reference.to_toml(),
        extended_from: (new_steps != old_steps).then_some(old_steps),
        note: stretched.then(|| {
            "; the cosine schedule now ends at the new last step, so the learning rate rises from here on".into()
        }),
    })
}

/// Trains the experiment `exp` with `opts`; rank 0 writes the run directory and talks to `observer`. Freed
/// buffers are kept in the process for reuse ([`ansatz_operators::memory::retain_freed_memory`]).
pub fn train(
    exp: &Experiment,
    opts: &TrainOptions,
    comm: &dyn Communicator,
    observer: &mut dyn Observer,
) -> Result<TrainSummary, TrainError> {
    ansatz_operators::memory::retain_freed_memory();
    let exp = exp.clone().validated().map_err(|e| bad(e.to_string()))?;
    let size = comm.size();
    if exp.training.batch % size != 0 {
        return Err(bad(format!("`training.batch` = {} is not divisible by the {size} ranks", exp.training.batch)));
    }
    let dir =
        RunDir::open(&opts.run_options(), exp.to_toml(), |old| reconcile(old, &exp, opts.extend, &opts.out), comm)?;
    let stored = if dir.resume {
        let norm = Normalisation::load(&opts.out.join("normalisation.json")).map_err(|e| bad(e.to_string()))?;
        Some((norm, RunInfo::load(&opts.out)?))
    } else {
        None
    };
    let mut method = Autoregressive::prepare(&exp, &opts.data, stored, comm)?;
    let settings = Settings {
        seed: exp.seed,
        training: exp.training.clone(),
        optimiser: exp.optimiser.clone(),
        schedule: exp.schedule.clone(),
    };
    engine::train(&mut method, &dir, &settings, &opts.device, &opts.drills(), comm, observer)
}
