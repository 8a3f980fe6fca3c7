//! The training engine: one loop for every method.
//!
//! A method (the autoregressive surrogate, Φ-ROM, a DCDM preconditioner, ...) implements [`Method`]: what its
//! network is, how many training examples it has, the loss and gradient of a batch of them, validation, the state
//! it checkpoints besides the weights, and what it writes at the end. The engine alone owns
//! - the run directory: `config.toml`, `--resume`, `--extend` and `--force` ([`RunDir::open`]);
//! - atomic, self-checking checkpoints of the weights, the optimiser state, the method's state and the step
//!   (the data order is a pure function of the seed and the epoch, so the step is the RNG's whole state);
//! - the learning-rate schedule, the optimiser on the flat parameter vector, global-norm clipping;
//! - the non-finite guard (skip the update, restore the last good checkpoint after `max_nonfinite` in a row);
//! - `metrics.csv` and `metrics.jsonl`, cut back to the checkpoint on resume, progress through an [`Observer`];
//! - the validation cadence;
//! - data parallelism over a [`Communicator`]: each rank computes the gradient of its share of the global batch,
//!   the engine averages gradients, losses and metrics (bucketed all-reduce) and every rank applies the same
//!   update, so one rank and N ranks give the same model up to round-off.
//!
//! `docs/extending.md` shows a method in one page; `training/tests/engine.rs` trains a least-squares regression
//! through the engine, with exact resume.

use crate::checkpoint::{Checkpoint, Header};
use crate::config::{OptimiserConfig, TrainingConfig};
use crate::optim::{self, OptimiserState};
use crate::schedule::Schedule;
use ansatz_cluster::{Communicator, partition};
use ansatz_operators::flat;
use ansatz_operators::init::Init;
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a run failed; `input` errors are the user's to fix (exit code 2), the others happened while running.
#[derive(Debug)]
pub struct TrainError {
    pub input: bool,
    pub message: String,
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TrainError {}

impl TrainError {
    /// The user's input is wrong (exit code 2).
    pub fn input(message: impl Into<String>) -> Self {
        TrainError { input: true, message: message.into() }
    }

    /// Something failed while running (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        TrainError { input: false, message: message.into() }
    }

    /// An I/O failure on `path`.
    pub fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::failed(format!("{}: {e}", path.display()))
    }
}

/// One optimiser step as logged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
    /// The method's validation score, when scored at this step.
    pub validation: Option<f64>,
    /// The update was skipped (non-finite loss or gradient).
    pub skipped: bool,
    /// Wall-clock seconds of this step (all ranks, before validation).
    pub seconds: f64,
    /// The method's own metrics of this step (averaged over ranks), in the order of [`Method::metric_names`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// Receives progress (rank 0 only).
pub trait Observer {
    /// Training runs steps `first..total`.
    fn start(&mut self, _first: usize, _total: usize) {}
    fn step(&mut self, _record: &StepRecord) {}
    /// Something the user must know (a skipped update, a restored checkpoint).
    fn message(&mut self, _text: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The outcome of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub parameters: usize,
    pub final_loss: f64,
    pub validation: Option<f64>,
    /// The extra validation scores of the last validation in this invocation ([`Method::validation_metrics`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub validation_metrics: BTreeMap<String, f64>,
    pub nonfinite_total: usize,
    pub restores: usize,
    /// Seconds spent in this invocation and the examples per second it achieved (global batch).
    pub seconds: f64,
    pub samples_per_second: f64,
    pub stopped_early: bool,
    /// Resident memory of rank 0 when its training loop started (the data, the network and the optimiser's
    /// state in place) and its peak during the loop, MiB (Linux; absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_start_mib: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mib: Option<f64>,
}

/// The engine's part of an experiment: the seed, the `[training]`, `[optimiser]` and `[schedule]` tables.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Seeds the initial weights and the order of the training examples.
    pub seed: u64,
    pub training: TrainingConfig,
    pub optimiser: OptimiserConfig,
    pub schedule: Schedule,
}

/// What the loss of one batch reports besides its gradient.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// The loss of this rank's share of the batch (the engine averages it over ranks).
    pub loss: f64,
    /// Values of [`Method::metric_names`], in that order (averaged over ranks).
    pub metrics: Vec<f64>,
}

/// Where the loop is when it asks the method for a gradient.
#[derive(Clone, Debug)]
pub struct StepContext {
    /// The optimiser step being computed (0-based).
    pub step: usize,
    pub epoch: usize,
    /// The device with autodiff on which the trainable network lives.
    pub device: Device,
    pub rank: usize,
    pub ranks: usize,
}

/// A way of training a network, plugged into [`train`].
///
/// The engine orders the method's training examples `0..examples()` with [`epoch_order`], cuts the order into
/// global batches of `training.batch`, and hands each rank its share. Everything random inside the method must
/// be a pure function of (seed, step, example) or live in [`Method::state`], or resume stops being exact.
pub trait Method {
    /// The trainable network (a burn module with a deterministic initialisation).
    type Model: Module + Clone;

    /// Number of training examples (windows, snapshots, systems, ...).
    fn examples(&self) -> usize;

    /// Draws the network from `init` (the engine calls it once on the autodiff device, once on the plain one).
    fn build(&self, init: &mut Init) -> Self::Model;

    /// Learning-rate multipliers per parameter, in the layout of [`flat::layout`] (parts of the network with their
    /// own learning rates, as separate optimisers with proportional schedules would have); `None`: 1 for all.
    fn lr_scales(&self, _model: &Self::Model) -> Option<Vec<f32>> {
        None
    }

    /// Names of the extra per-step metrics [`Method::step`] reports (columns of `metrics.csv`).
    fn metric_names(&self) -> Vec<String> {
        vec![]
    }

    /// Writes the files that describe a new run (rank 0, after `config.toml`).
    fn write_setup(&self, _out: &Path) -> Result<(), TrainError> {
        Ok(())
    }

    /// The loss on the examples `batch` (this rank's share of the global batch) and its gradient with respect to
    /// the parameters of `model`, written to `grads` in the layout of [`flat::layout`]. Most methods compute one
    /// loss and call [`backward_into`]; a method with its own gradient rule (combined or masked losses) edits
    /// `grads` before it returns. Non-finite values are allowed: the engine's guard handles them.
    fn step(
        &mut self,
        model: &Self::Model,
        batch: &[usize],
        ctx: &StepContext,
        grads: &mut Vec<f32>,
    ) -> Result<StepOutput, TrainError>;

    /// The validation score of `model` (on the plain device; rank 0 only), `None` without validation data.
    fn validate(&mut self, model: &Self::Model, device: &Device) -> Result<Option<f64>, TrainError>;

    /// Names of extra scores a validation reports besides its main score (columns of `metrics.csv`, filled at
    /// validation steps only).
    fn validation_metric_names(&self) -> Vec<String> {
        vec![]
    }

    /// The extra scores of the last [`Method::validate`] call, named as in [`Method::validation_metric_names`].
    fn validation_metrics(&mut self) -> Vec<(String, f64)> {
        vec![]
    }

    /// The method's state besides the weights and the optimiser (a latent table, running statistics, an RNG),
    /// stored in every checkpoint.
    fn state(&self) -> Vec<u8> {
        vec![]
    }

    /// Restores [`Method::state`] from a checkpoint (on resume and when the guard restores the last good one).
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if state.is_empty() { Ok(()) } else { Err(format!("{} bytes of method state, none expected", state.len())) }
    }

    /// The examples each rank draws its share of every global batch from, when the method's data are split
    /// between ranks (`data.partition = "rank"`): one contiguous range per rank, covering `0..examples()`. `None`
    /// (the default) shuffles all examples globally and cuts every global batch into the ranks' shares.
    fn rank_examples(&self, _ranks: usize) -> Option<Vec<Range<usize>>> {
        None
    }

    /// The examples of this rank's next step, announced before the current step is computed so that a method
    /// reading its data from disk can fetch them meanwhile. Only a hint: [`Method::step`] may be called with
    /// anything.
    fn prefetch(&mut self, _next: &[usize]) {}

    /// Called once the last step is done (every rank; write files on rank 0 only).
    fn finish(&mut self, _model: &Self::Model, _out: &Path, _rank: usize) -> Result<(), TrainError> {
        Ok(())
    }
}

/// Backpropagates `loss` and writes the gradient of `model`'s parameters to `grads`; returns the loss value.
pub fn backward_into<M: Module>(model: &M, loss: Tensor<1>, grads: &mut Vec<f32>) -> f64 {
    let value = loss.clone().into_data().convert::<f64>().try_into_vec::<f64>().map(|v| v[0]).unwrap_or(f64::NAN);
    let g = loss.backward();
    flat::flatten_grads_into(model, &g, grads);
    value
}

/// A SplitMix64 stream (the data order, the probes of Jacobian penalties).
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The order of `n` training examples in `epoch`: a pure function of (seed, epoch), so any step can be resumed
/// and every rank agrees on the global batch without communication.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut state = seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0xA076_1D64_78BD_642F;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Which examples this rank computes at every step: a pure function of (seed, step), so a run resumes exactly.
/// Globally, the examples are shuffled each epoch and every global batch is cut into the ranks' shares; per
/// rank, each rank shuffles its own range of examples and draws its share of every global batch from it (rank 0
/// of one rank draws exactly the global order).
#[derive(Clone, Debug)]
struct BatchPlan {
    seed: u64,
    /// The global batch.
    batch: usize,
    /// This rank's share of the global batch.
    local: Range<usize>,
    /// The examples this rank draws from, and the seed offset of its order; `None`: all, shuffled globally.
    own: Option<(Range<usize>, u64)>,
    examples: usize,
    per_epoch: usize,
    order: Option<(usize, Vec<usize>)>,
}

impl BatchPlan {
    fn new(
        seed: u64,
        batch: usize,
        examples: usize,
        comm: &dyn Communicator,
        ranks: Option<Vec<Range<usize>>>,
    ) -> Self {
        let (rank, size) = (comm.rank(), comm.size());
        let local = partition(batch, size, rank);
        let (own, per_epoch) = match ranks {
            Some(r) if r.len() == size => {
                let per_epoch =
                    r.iter().enumerate().map(|(k, e)| e.len() / partition(batch, size, k).len().max(1)).min();
                let offset = (rank as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25);
                (Some((r[rank].clone(), offset)), per_epoch.unwrap_or(0))
            }
            _ => (None, examples / batch.max(1)),
        };
        Self { seed, batch, local, own, examples, per_epoch, order: None }
    }

    /// This rank's examples at `step`.
    fn at(&mut self, step: usize) -> Vec<usize> {
        let (epoch, j) = (step / self.per_epoch, step % self.per_epoch);
        let (n, seed) = match &self.own {
            None => (self.examples, self.seed),
            Some((own, offset)) => (own.len(), self.seed ^ offset),
        };
        if self.order.as_ref().is_some_and(|(e, _)| *e != epoch) {
            self.order = None;
        }
        let (_, ord) = self.order.get_or_insert_with(|| (epoch, epoch_order(seed, epoch, n)));
        match &self.own {
            None => ord[j * self.batch..(j + 1) * self.batch][self.local.clone()].to_vec(),
            Some((own, _)) => {
                let b = self.local.len();
                ord[j * b..(j + 1) * b].iter().map(|i| own.start + i).collect()
            }
        }
    }
}

/// Writes `PATH.partial`, then renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    std::fs::write(&tmp, bytes).map_err(|e| TrainError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    write_atomically(path, serde_json::to_string_pretty(value).expect("serialisable").as_bytes())
}

/// How a run directory is opened.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Run directory.
    pub out: PathBuf,
    /// Continue from the run directory's checkpoint.
    pub resume: bool,
    /// With `resume`: the configuration may differ as [`RunDir::open`]'s `reconcile` allows (a larger
    /// `training.steps`), so a finished run trains on.
    pub extend: bool,
    /// Replace an existing run directory.
    pub force: bool,
}

/// The configuration to store when a run continues, as decided by the method's front end.
#[derive(Clone, Debug)]
pub struct Reconciled {
    /// The configuration text to store (and to compare against next time).
    pub config_text: String,
    /// The run had this many steps and now has more.
    pub extended_from: Option<usize>,
    /// What the user is told about the extension (appended to "extending the run from A to B steps").
    pub note: Option<String>,
}

/// An opened run directory: fresh, or continuing from its checkpoint.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub out: PathBuf,
    pub resume: bool,
    pub config_text: String,
    pub extended_from: Option<usize>,
    pub note: Option<String>,
}

impl RunDir {
    /// Checks `opts` against what is on disk. A fresh run needs an empty or missing directory (or `force`,
    /// which makes rank 0 delete it); a resumed run needs a checkpoint, and `reconcile(stored_config)` decides
    /// whether `config_text` may continue it. Every rank calls this; it ends with a barrier.
    pub fn open(
        opts: &RunOptions,
        config_text: String,
        reconcile: impl FnOnce(&str) -> Result<Reconciled, TrainError>,
        comm: &dyn Communicator,
    ) -> Result<Self, TrainError> {
        let out = &opts.out;
        let mut dir = RunDir { out: out.clone(), resume: opts.resume, config_text, extended_from: None, note: None };
        if opts.extend && !opts.resume {
            return Err(TrainError::input("--extend continues a run: it needs --resume"));
        }
        if opts.resume {
            let ck_path = dir.checkpoint_path();
            if !ck_path.exists() {
                return Err(TrainError::input(format!("{}: no checkpoint to resume from", ck_path.display())));
            }
            let old = std::fs::read_to_string(out.join("config.toml"))
                .map_err(|e| TrainError::input(format!("{}: {e}", out.display())))?;
            let r = reconcile(&old)?;
            dir.config_text = r.config_text;
            dir.extended_from = r.extended_from;
            dir.note = r.note;
        } else if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
            if !opts.force {
                return Err(TrainError::input(format!(
                    "{} exists and is not empty: pass --resume to continue it or --force to replace it",
                    out.display()
                )));
            }
            if comm.rank() == 0 {
                std::fs::remove_dir_all(out).map_err(|e| TrainError::io(out, e))?;
            }
        }
        comm.barrier();
        Ok(dir)
    }

    /// `checkpoint.ckpt` of the run.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.out.join("checkpoint.ckpt")
    }
}

/// Describes the first line where two configurations differ.
pub fn config_difference(a: &str, b: &str) -> String {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("run has `{x}`, the configuration given has `{y}`");
        }
    }
    "the configurations differ in length".into()
}

/// Appends rows to `metrics.csv` and `metrics.jsonl`.
struct MetricsLog {
    csv: std::fs::File,
    jsonl: std::fs::File,
    dir: PathBuf,
    names: Vec<String>,
}

const CSV_HEADER: &str = "step,epoch,loss,grad_norm,lr,validation,skipped,seconds";

impl MetricsLog {
    /// Opens the logs, keeping only rows of steps before `first` (rows past a checkpoint are replayed).
    fn open(dir: &Path, first: usize, names: Vec<String>) -> Result<Self, TrainError> {
        let keep =
            |path: &Path, header: Option<&str>, step_of: &dyn Fn(&str) -> Option<usize>| -> Result<(), TrainError> {
                let old = std::fs::read_to_string(path).unwrap_or_default();
                let mut out = String::new();
                if let Some(h) = header {
                    out.push_str(h);
                    out.push('\n');
                }
                for line in old.lines() {
                    if let Some(s) = step_of(line)
                        && s < first
                    {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                std::fs::write(path, out).map_err(|e| TrainError::io(path, e))
            };
        let csv_path = dir.join("metrics.csv");
        let jsonl_path = dir.join("metrics.jsonl");
        let header: String =
            std::iter::once(CSV_HEADER.to_string()).chain(names.iter().cloned()).collect::<Vec<_>>().join(",");
        keep(&csv_path, Some(&header), &|l| l.split(',').next()?.parse().ok())?;
        keep(&jsonl_path, None, &|l| serde_json::from_str::<StepRecord>(l).ok().map(|r| r.step))?;
        let open = |p: &Path| std::fs::OpenOptions::new().append(true).open(p).map_err(|e| TrainError::io(p, e));
        Ok(Self { csv: open(&csv_path)?, jsonl: open(&jsonl_path)?, dir: dir.to_path_buf(), names })
    }

    fn write(&mut self, r: &StepRecord) -> Result<(), TrainError> {
        let v = r.validation.map(|v| format!("{v:e}")).unwrap_or_default();
        let mut line = format!(
            "{},{},{:e},{:e},{:e},{},{},{:.6}",
            r.step,
            r.epoch,
            r.loss,
            r.grad_norm,
            r.lr,
            v,
            u8::from(r.skipped),
            r.seconds
        );
        for n in &self.names {
            line.push_str(&r.metrics.get(n).map(|v| format!(",{v:e}")).unwrap_or_else(|| ",".into()));
        }
        writeln!(self.csv, "{line}").map_err(|e| TrainError::io(&self.dir.join("metrics.csv"), e))?;
        let json = serde_json::to_string(r).expect("a step record serialises");
        writeln!(self.jsonl, "{json}").map_err(|e| TrainError::io(&self.dir.join("metrics.jsonl"), e))
    }
}

/// What only the tests and fault drills ask of the loop.
#[derive(Clone, Debug, Default)]
pub struct Drills {
    /// Stop (after writing a checkpoint) once this many steps are done, as an interrupted run would.
    pub stop_after: Option<usize>,
    /// Steps whose loss is replaced by NaN (exercises the non-finite guard).
    pub inject_nonfinite: Vec<usize>,
    /// Rank 0 writes the averaged gradient of the first step here (f32 little-endian), for equivalence tests.
    pub gradient_dump: Option<PathBuf>,
    /// `(rank, step)`: that rank fails at that step (exercises whole-job aborts).
    pub fault: Option<(usize, usize)>,
}

/// What a checkpoint holds while the loop runs, and the non-finite guard's fallback.
struct LoopState {
    header: Header,
    params: Vec<f32>,
    optimiser: OptimiserState,
    /// The last checkpoint written after a finite step: where a non-finite streak falls back to.
    last_good: Checkpoint,
    restores: usize,
    restores_in_a_row: usize,
}

impl LoopState {
    fn snapshot<M: Method>(&self, method: &M) -> Checkpoint {
        Checkpoint {
            header: self.header.clone(),
            params: self.params.clone(),
            optimiser: self.optimiser.clone(),
            method: method.state(),
        }
    }

    /// A non-finite step: skip the update; after `max_nonfinite` in a row restore the last good checkpoint
    /// (weights, optimiser, method state), and give up after three restores that did not help.
    fn reject<M: Method>(
        &mut self,
        step: usize,
        max_nonfinite: usize,
        method: &mut M,
        mut observer: Option<&mut dyn Observer>,
    ) -> Result<(), TrainError> {
        self.header.nonfinite_run += 1;
        self.header.nonfinite_total += 1;
        if let Some(o) = observer.as_deref_mut() {
            o.message(&format!("step {step}: non-finite loss or gradient, update skipped"));
        }
        if self.header.nonfinite_run >= max_nonfinite {
            self.restores += 1;
            self.restores_in_a_row += 1;
            if self.restores_in_a_row > 3 {
                return Err(TrainError::failed(format!(
                    "training diverged: {} restores of the checkpoint of step {} did not help; lower the \
                     learning rate or the clip norm",
                    self.restores_in_a_row - 1,
                    self.last_good.header.step
                )));
            }
            self.params.clone_from(&self.last_good.params);
            self.optimiser = self.last_good.optimiser.clone();
            method.restore(&self.last_good.method).map_err(TrainError::failed)?;
            self.header.nonfinite_run = 0;
            if let Some(o) = observer {
                o.message(&format!(
                    "step {step}: {max_nonfinite} non-finite steps in a row, restored the weights and optimiser \
                     state of step {}",
                    self.last_good.header.step
                ));
            }
        }
        Ok(())
    }
}

/// Rank 0's files at the start: an extended run's new configuration (and no summary until it finishes), a fresh
/// run's configuration and the method's description of it.
fn write_start<M: Method>(
    method: &M,
    dir: &RunDir,
    steps: usize,
    observer: &mut dyn Observer,
) -> Result<(), TrainError> {
    let out = &dir.out;
    if let Some(old_steps) = dir.extended_from {
        let summary = out.join("summary.json");
        if summary.exists() {
            std::fs::remove_file(&summary).map_err(|e| TrainError::io(&summary, e))?;
        }
        write_atomically(&out.join("config.toml"), dir.config_text.as_bytes())?;
        observer.message(&format!(
            "extending the run from {old_steps} to {steps} steps{}",
            dir.note.as_deref().unwrap_or("")
        ));
    }
    if !dir.resume {
        std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
        std::fs::write(out.join("config.toml"), &dir.config_text)
            .map_err(|e| TrainError::io(&out.join("config.toml"), e))?;
        method.write_setup(out)?;
    }
    Ok(())
}

/// The state the loop starts from: the checkpoint of a resumed run, or the initial weights of `m` (rank 0's,
/// broadcast, so every rank starts identically); returns it with the network holding those parameters.
fn start_state<M: Method>(
    method: &mut M,
    dir: &RunDir,
    seed: u64,
    m: M::Model,
    comm: &dyn Communicator,
) -> Result<(LoopState, M::Model), TrainError> {
    let layout = flat::layout(&m);
    let mut params: Vec<f32> = vec![];
    flat::flatten_into(&m, &mut params);
    let (mut header, mut optimiser) = (
        Header {
            step: 0,
            seed,
            nonfinite_run: 0,
            nonfinite_total: 0,
            validation: None,
            layout: layout.clone(),
            updates: 0,
        },
        OptimiserState::new(params.len()),
    );
    if dir.resume {
        let ck_path = dir.checkpoint_path();
        let ck = Checkpoint::load(&ck_path).map_err(|e| TrainError::input(e.to_string()))?;
        if ck.header.layout != layout {
            return Err(TrainError::input(format!(
                "{}: the checkpoint does not fit the configured network",
                ck_path.display()
            )));
        }
        method.restore(&ck.method).map_err(|e| TrainError::input(format!("{}: {e}", ck_path.display())))?;
        (params, optimiser, header) = (ck.params, ck.optimiser, ck.header);
    } else {
        let mut bytes: Vec<u8> = params.iter().flat_map(|v| v.to_le_bytes()).collect();
        comm.broadcast_bytes(0, &mut bytes);
        params = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
    }
    let model = flat::unflatten(m, &params);
    let last_good = Checkpoint {
        header: header.clone(),
        params: params.clone(),
        optimiser: optimiser.clone(),
        method: method.state(),
    };
    Ok((LoopState { header, params, optimiser, last_good, restores: 0, restores_in_a_row: 0 }, model))
}

/// Averages this rank's gradient and values (the loss, then the metrics) over the ranks.
fn average(comm: &dyn Communicator, grads: &mut [f32], values: &mut [f64]) {
    let size = comm.size();
    if size > 1 {
        ansatz_cluster::all_reduce_sum_f32_bucketed(comm, grads);
        comm.all_reduce_sum_f64(values);
        let inv = 1.0 / size as f32;
        grads.iter_mut().for_each(|v| *v *= inv);
        values.iter_mut().for_each(|v| *v /= size as f64);
    }
}

/// Trains `method` in the opened run directory `dir` on `device` (its autodiff twin computes gradients); rank 0
/// writes the run directory and talks to `observer`.
pub fn train<M: Method>(
    method: &mut M,
    dir: &RunDir,
    settings: &Settings,
    device: &Device,
    drills: &Drills,
    comm: &dyn Communicator,
    observer: &mut dyn Observer,
) -> Result<TrainSummary, TrainError> {
    let root = comm.rank() == 0;
    let (rank, size) = (comm.rank(), comm.size());
    let tr = &settings.training;
    if tr.batch == 0 || tr.batch % size != 0 {
        return Err(TrainError::input(format!("`training.batch` = {} is not divisible by the {size} ranks", tr.batch)));
    }
    if method.examples() < tr.batch {
        return Err(TrainError::input(format!(
            "`training.batch` = {} exceeds the {} training examples",
            tr.batch,
            method.examples()
        )));
    }
    if root {
        write_start(method, dir, tr.steps, observer)?;
    }
    let ad = device.clone().autodiff();
    let built = method.build(&mut Init::new(settings.seed, &ad));
    let eval_template = method.build(&mut Init::new(settings.seed, device));
    let (mut st, mut model) = start_state(method, dir, settings.seed, built, comm)?;
    let np = st.params.len();
    let scales = method.lr_scales(&model);
    if scales.as_ref().is_some_and(|s| s.len() != np) {
        return Err(TrainError::failed(format!("the method gave learning-rate scales for other than {np} parameters")));
    }
    let names = method.metric_names();
    // the loop's peak memory, without what data loading freed
    ansatz_operators::memory::release_free_memory();
    let rss_start = ansatz_operators::memory::reset_peak_rss().then(ansatz_operators::memory::peak_rss).flatten();
    let mut last_validation_metrics: BTreeMap<String, f64> = BTreeMap::new();
    let columns: Vec<String> = names.iter().cloned().chain(method.validation_metric_names()).collect();
    let mut log = if root { Some(MetricsLog::open(&dir.out, st.header.step, columns)?) } else { None };
    let ck_path = dir.checkpoint_path();
    let save = |ck: Checkpoint| -> Result<Checkpoint, TrainError> {
        if root {
            ck.save(&ck_path).map_err(|e| TrainError::io(&ck_path, e))?;
        }
        Ok(ck)
    };

    let total = tr.steps;
    let end = drills.stop_after.map_or(total, |s| s.min(total));
    let mut plan = BatchPlan::new(settings.seed, tr.batch, method.examples(), comm, method.rank_examples(size));
    if plan.per_epoch == 0 {
        return Err(TrainError::input(format!(
            "`training.batch` = {} leaves a rank without a whole share of its examples (split between {size} ranks)",
            tr.batch
        )));
    }
    let mut grads: Vec<f32> = Vec::with_capacity(np);
    let mut next: Option<Vec<usize>> = None;
    let mut last_loss = f64::NAN;
    let started = Instant::now();
    let first = st.header.step;
    if root {
        observer.start(first, total);
    }
    for step in first..end {
        if drills.fault == Some((rank, step)) {
            return Err(TrainError::failed(format!("injected fault at step {step}")));
        }
        let t0 = Instant::now();
        let epoch = step / plan.per_epoch;
        let batch = match next.take() {
            Some(b) => b,
            None => {
                let b = plan.at(step);
                method.prefetch(&b);
                b
            }
        };
        if step + 1 < end {
            let upcoming = plan.at(step + 1);
            method.prefetch(&upcoming);
            next = Some(upcoming);
        }
        let ctx = StepContext { step, epoch, device: ad.clone(), rank, ranks: size };
        let output = method.step(&model, &batch, &ctx, &mut grads)?;
        if grads.len() != np {
            return Err(TrainError::failed(format!(
                "the method wrote {} gradient values for {np} parameters",
                grads.len()
            )));
        }
        let mut values: Vec<f64> = std::iter::once(output.loss).chain(output.metrics.iter().copied()).collect();
        values.resize(1 + names.len(), f64::NAN);
        if drills.inject_nonfinite.contains(&step) {
            values[0] = f64::NAN;
        }
        average(comm, &mut grads, &mut values);
        if step == first
            && root
            && let Some(path) = &drills.gradient_dump
        {
            let bytes: Vec<u8> = grads.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(path, bytes).map_err(|e| TrainError::io(path, e))?;
        }
        let lr = settings.schedule.rate(step);
        let finite = values[0].is_finite() && grads.iter().all(|v| v.is_finite());
        let mut record = StepRecord {
            step,
            epoch,
            loss: values[0],
            grad_norm: f64::NAN,
            lr,
            validation: None,
            skipped: !finite,
            seconds: 0.0,
            metrics: names.iter().cloned().zip(values[1..].iter().copied()).collect(),
        };
        if finite {
            record.grad_norm = optim::clip(&mut grads, settings.optimiser.clip_norm);
            optim::update_scaled(&settings.optimiser, lr, scales.as_deref(), &mut st.params, &grads, &mut st.optimiser);
            st.header.nonfinite_run = 0;
            st.restores_in_a_row = 0;
            last_loss = values[0];
        } else {
            let o: Option<&mut dyn Observer> = if root { Some(&mut *observer) } else { None };
            st.reject(step, tr.max_nonfinite, method, o)?;
        }
        model = flat::unflatten(model, &st.params);
        record.seconds = t0.elapsed().as_secs_f64();
        let done = step + 1;
        st.header.step = done;
        let validate_now = (tr.validate_every > 0 && done % tr.validate_every == 0) || done == total;
        if validate_now && root {
            let eval = flat::unflatten(eval_template.clone(), &st.params);
            record.validation = method.validate(&eval, device)?;
            let extra: Vec<(String, f64)> =
                method.validation_metrics().into_iter().filter(|(_, v)| v.is_finite()).collect();
            last_validation_metrics = extra.iter().cloned().collect();
            record.metrics.extend(extra);
            st.header.validation = record.validation;
        }
        // weights from a non-finite streak are not trusted: they are written only when the run stops here, and
        // never become the state a later streak falls back to
        if finite && done % tr.checkpoint_every == 0 {
            st.last_good = save(st.snapshot(method))?;
        } else if done == end {
            let ck = save(st.snapshot(method))?;
            if finite {
                st.last_good = ck;
            }
        }
        if let Some(log) = log.as_mut() {
            log.write(&record)?;
            observer.step(&record);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let steps_run = end.saturating_sub(first);
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let peak = rss_start.and(ansatz_operators::memory::peak_rss());
    let summary = TrainSummary {
        steps: st.header.step,
        parameters: np,
        final_loss: last_loss,
        validation: st.header.validation,
        validation_metrics: last_validation_metrics,
        nonfinite_total: st.header.nonfinite_total,
        restores: st.restores,
        seconds,
        samples_per_second: (steps_run * tr.batch) as f64 / seconds.max(1e-9),
        stopped_early: end < total,
        rss_start_mib: rss_start.map(|(now, _)| mib(now)),
        peak_rss_mib: peak.map(|(_, p)| mib(p)),
    };
    if end == total {
        method.finish(&model, &dir.out, rank)?;
        if root {
            write_json(&dir.out.join("summary.json"), &summary)?;
        }
    }
    comm.barrier();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_that_differ_between_epochs() {
        let a = epoch_order(1, 0, 50);
        let b = epoch_order(1, 1, 50);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        assert_ne!(a, b);
        assert_eq!(a, epoch_order(1, 0, 50));
    }
}
