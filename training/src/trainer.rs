//! The training loop: windows of normalised trajectories, autoregressive unrolling over the horizon with
//! back-propagation through every step, global-norm clipping, the optimiser on the flat parameter vector,
//! periodic validation, CSV and JSONL metrics, atomic checkpoints and exact resume, data parallelism over a
//! [`Communicator`], and a guard against non-finite losses.
//!
//! A run directory holds `config.toml` (the resolved experiment), `run.json` (what the data looked like),
//! `normalisation.json`, `checkpoint.ckpt`, `metrics.csv`, `metrics.jsonl` and, once finished, `summary.json`.

use crate::checkpoint::{Checkpoint, Header};
use crate::config::{Experiment, Loss};
use crate::data::{Normalisation, Split, Trajectories, WindowSpec, Windows};
use crate::model::{self, FrameShape, Surrogate};
use crate::optim::{self, OptimiserState};
use crate::schedule::Schedule;
use ansatz_cluster::{Communicator, partition};
use ansatz_operators::flat;
use ansatz_operators::init::Init;
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};
use std::io::Write;
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

fn bad(message: impl Into<String>) -> TrainError {
    TrainError { input: true, message: message.into() }
}

fn failed(message: impl Into<String>) -> TrainError {
    TrainError { input: false, message: message.into() }
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    failed(format!("{}: {e}", path.display()))
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

/// One optimiser step as logged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
    /// Relative L2 over the horizon on validation windows, when scored at this step.
    pub validation: Option<f64>,
    /// The update was skipped (non-finite loss or gradient).
    pub skipped: bool,
    /// Wall-clock seconds of this step (all ranks, before validation).
    pub seconds: f64,
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

/// What the data looked like when the run started; rollouts rebuild the network from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub ansatz_version: String,
    pub data: PathBuf,
    pub pde: String,
    pub fields: Vec<String>,
    /// `[ny, nx]` (ny = 1 in 1D).
    pub grid: [usize; 2],
    pub extent: Vec<f64>,
    /// Time between stored frames.
    pub frame_interval: f64,
    pub samples: usize,
    pub split: Split,
    pub history: usize,
    pub horizon: usize,
    /// Structure-change coefficient of the training data (normalised frames).
    pub tau: f64,
    pub parameters: usize,
    pub model: String,
}

impl RunInfo {
    pub fn shape(&self) -> FrameShape {
        FrameShape { channels: self.fields.len(), ny: self.grid[0], nx: self.grid[1], history: self.history }
    }

    /// Reads `run.json` of a run directory.
    pub fn load(run: &Path) -> Result<Self, TrainError> {
        let p = run.join("run.json");
        let text =
            std::fs::read_to_string(&p).map_err(|e| bad(format!("{}: {e} (is this a run directory?)", p.display())))?;
        serde_json::from_str(&text).map_err(|e| bad(format!("{}: {e}", p.display())))
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub parameters: usize,
    pub final_loss: f64,
    pub validation: Option<f64>,
    pub nonfinite_total: usize,
    pub restores: usize,
    /// Seconds spent in this invocation and the windows per second it achieved (global batch).
    pub seconds: f64,
    pub samples_per_second: f64,
    pub stopped_early: bool,
}

/// A trained network loaded from a run directory, ready for inference on `device`.
pub struct Trained {
    pub config: Experiment,
    pub info: RunInfo,
    pub normalisation: Normalisation,
    pub model: Surrogate,
    pub checkpoint: Header,
}

impl Trained {
    /// Loads the run's configuration, data description, normalisation and latest checkpoint.
    pub fn load(run: &Path, device: &Device) -> Result<Self, TrainError> {
        let cpath = run.join("config.toml");
        let text = std::fs::read_to_string(&cpath).map_err(|e| bad(format!("{}: {e}", cpath.display())))?;
        let config = Experiment::parse(&text, &cpath.display().to_string()).map_err(|e| bad(e.to_string()))?;
        let info = RunInfo::load(run)?;
        let normalisation = Normalisation::load(&run.join("normalisation.json")).map_err(|e| bad(e.to_string()))?;
        let ck = Checkpoint::load(&run.join("checkpoint.ckpt")).map_err(|e| bad(e.to_string()))?;
        let model = model::build(&config.model, info.shape(), info.tau, &mut Init::new(config.seed, device));
        if flat::layout(&model) != ck.header.layout {
            return Err(bad(format!("{}: the checkpoint does not fit the network in config.toml", run.display())));
        }
        let model = flat::unflatten(model, &ck.params);
        Ok(Self { config, info, normalisation, model, checkpoint: ck.header })
    }
}

/// A SplitMix64 stream for the data order.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The order of `n` training windows in `epoch`: a pure function of (seed, epoch), so any step can be resumed
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

/// Appends rows to `metrics.csv` and `metrics.jsonl`.
struct MetricsLog {
    csv: std::fs::File,
    jsonl: std::fs::File,
    dir: PathBuf,
}

const CSV_HEADER: &str = "step,epoch,loss,grad_norm,lr,validation,skipped,seconds";

impl MetricsLog {
    /// Opens the logs, keeping only rows of steps before `first` (rows past a checkpoint are replayed).
    fn open(dir: &Path, first: usize) -> Result<Self, TrainError> {
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
                std::fs::write(path, out).map_err(|e| io(path, e))
            };
        let csv_path = dir.join("metrics.csv");
        let jsonl_path = dir.join("metrics.jsonl");
        keep(&csv_path, Some(CSV_HEADER), &|l| l.split(',').next()?.parse().ok())?;
        keep(&jsonl_path, None, &|l| serde_json::from_str::<StepRecord>(l).ok().map(|r| r.step))?;
        let open = |p: &Path| std::fs::OpenOptions::new().append(true).open(p).map_err(|e| io(p, e));
        Ok(Self { csv: open(&csv_path)?, jsonl: open(&jsonl_path)?, dir: dir.to_path_buf() })
    }

    fn write(&mut self, r: &StepRecord) -> Result<(), TrainError> {
        let v = r.validation.map(|v| format!("{v:e}")).unwrap_or_default();
        writeln!(
            self.csv,
            "{},{},{:e},{:e},{:e},{},{},{:.6}",
            r.step,
            r.epoch,
            r.loss,
            r.grad_norm,
            r.lr,
            v,
            u8::from(r.skipped),
            r.seconds
        )
        .map_err(|e| io(&self.dir.join("metrics.csv"), e))?;
        let line = serde_json::to_string(r).expect("a step record serialises");
        writeln!(self.jsonl, "{line}").map_err(|e| io(&self.dir.join("metrics.jsonl"), e))
    }
}

/// The training data, normalised, with its windows.
struct Prepared {
    traj: Trajectories,
    norm: Normalisation,
    train: Windows,
    validation: Windows,
    info: RunInfo,
}

fn prepare(
    exp: &Experiment,
    opts: &TrainOptions,
    stored: Option<(Normalisation, RunInfo)>,
) -> Result<Prepared, TrainError> {
    let ds = ansatz_datasets::reader::Dataset::open(&opts.data).map_err(|e| bad(e.to_string()))?;
    let layout = ds.layout().map_err(|e| bad(e.to_string()))?;
    if layout.z.is_some() {
        return Err(bad(format!("{}: 3D datasets are not supported by the FNO and DyMixOp yet", opts.data.display())));
    }
    let mut samples = ds.samples_complete;
    drop(ds);
    if exp.data.max_samples > 0 {
        samples = samples.min(exp.data.max_samples);
    }
    let split = Split::by_fraction(samples, exp.data.validation, exp.data.test).map_err(|e| bad(e.to_string()))?;
    let mut traj = Trajectories::load(&opts.data, 0..samples).map_err(|e| bad(e.to_string()))?;
    let norm = match &stored {
        Some((n, _)) => n.clone(),
        None => Normalisation::fit(&traj, split.train.clone()),
    };
    if norm.fields != traj.fields {
        return Err(bad(format!(
            "{}: fields {:?} differ from the run's {:?}",
            opts.data.display(),
            traj.fields,
            norm.fields
        )));
    }
    let n = traj.space_len();
    norm.apply(traj.values_mut(), n);
    let spec = WindowSpec { history: exp.data.history, horizon: exp.data.horizon, stride: exp.data.stride };
    let train = Windows::new(&traj, split.train.clone(), spec).map_err(|e| bad(e.to_string()))?;
    let validation = Windows::new(&traj, split.validation.clone(), spec).map_err(|e| bad(e.to_string()))?;
    if train.len() < exp.training.batch {
        return Err(bad(format!(
            "`training.batch` = {} exceeds the {} training windows of {}",
            exp.training.batch,
            train.len(),
            opts.data.display()
        )));
    }
    let space = traj.space().to_vec();
    let grid = if space.len() == 2 { [space[0], space[1]] } else { [1, space[0]] };
    let tau = model::mean_structure_change(split.train.len(), traj.times(), |s, t| traj.frame(s, t).to_vec());
    let frame_interval = if layout.times.len() > 1 { layout.times[1] - layout.times[0] } else { 0.0 };
    let shape = FrameShape { channels: traj.channels(), ny: grid[0], nx: grid[1], history: exp.data.history };
    let info = RunInfo {
        ansatz_version: env!("CARGO_PKG_VERSION").to_string(),
        // absolute, so that rollouts started from another folder find the data
        data: std::fs::canonicalize(&opts.data).unwrap_or_else(|_| opts.data.clone()),
        pde: layout.pde.clone(),
        fields: traj.fields.clone(),
        grid,
        extent: layout.extent.clone(),
        frame_interval,
        samples,
        split,
        history: exp.data.history,
        horizon: exp.data.horizon,
        tau: stored.as_ref().map(|(_, i)| i.tau).unwrap_or(tau),
        parameters: model::parameters(&exp.model, shape),
        model: exp.model.kind().to_string(),
    };
    Ok(Prepared { traj, norm, train, validation, info })
}

fn tensor4(values: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// The unrolled loss of one batch: `input` `[b, H·C, ny, nx]`, `target` `[b, K·C, ny, nx]`.
pub fn unrolled_loss(
    model: &Surrogate,
    input: Tensor<4>,
    target: Tensor<4>,
    channels: usize,
    residual: bool,
    loss: Loss,
) -> Tensor<1> {
    let [_, kc, ..] = target.dims();
    let horizon = kc / channels;
    let mut x = input;
    let mut total: Option<Tensor<1>> = None;
    for k in 0..horizon {
        let p = model::step(model, x.clone(), channels, residual);
        let y = target.clone().narrow(1, k * channels, channels);
        let err = (p.clone() - y.clone()).powf_scalar(2.0);
        let l = match loss {
            Loss::Mse => err.mean(),
            Loss::RelativeMse => {
                let [b, ..] = err.dims();
                let num = err.reshape([b as i32, -1]).sum_dim(1);
                let den = y.powf_scalar(2.0).reshape([b as i32, -1]).sum_dim(1).add_scalar(1e-12);
                (num / den).mean()
            }
        };
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
        x = model::advance(x, p, channels);
    }
    total.expect("horizon ≥ 1").div_scalar(horizon as f64)
}

/// Relative L2 over the horizon (physical units), averaged over validation windows.
fn validate(model: &Surrogate, prep: &Prepared, exp: &Experiment, device: &Device) -> Option<f64> {
    let n = prep.validation.len();
    if n == 0 {
        return None;
    }
    let limit = if exp.training.validation_windows == 0 { n } else { n.min(exp.training.validation_windows) };
    let c = prep.traj.channels();
    let [ny, nx] = prep.info.grid;
    let (h, k) = (exp.data.history, exp.data.horizon);
    let space = ny * nx;
    let (mut input, mut target) = (vec![], vec![]);
    let mut sum = 0.0;
    let chunk = 32;
    let windows: Vec<usize> = (0..limit).map(|i| i * n / limit).collect();
    for batch in windows.chunks(chunk) {
        prep.validation.gather(&prep.traj, batch, &mut input, &mut target);
        let b = batch.len();
        let mut x = tensor4(&input, [b, h * c, ny, nx], device);
        let mut preds = Vec::with_capacity(b * k * c * space);
        let mut steps = vec![];
        for _ in 0..k {
            let p = model::step(model, x.clone(), c, exp.model.residual());
            steps.push(p.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 prediction"));
            x = model::advance(x, p, c);
        }
        for s in 0..b {
            for st in &steps {
                preds.extend_from_slice(&st[s * c * space..(s + 1) * c * space]);
            }
        }
        prep.norm.invert(&mut preds, space);
        prep.norm.invert(&mut target, space);
        for s in 0..b {
            let r = s * k * c * space..(s + 1) * k * c * space;
            let num: f64 = preds[r.clone()].iter().zip(&target[r.clone()]).map(|(p, y)| ((p - y) as f64).powi(2)).sum();
            let den: f64 = target[r].iter().map(|y| (*y as f64).powi(2)).sum();
            sum += (num / den.max(1e-30)).sqrt();
        }
    }
    Some(sum / limit as f64)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    write_atomically(path, serde_json::to_string_pretty(value).expect("serialisable").as_bytes())
}

/// Writes `PATH.partial`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Describes the first line where two configurations differ.
fn config_difference(a: &str, b: &str) -> String {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("run has `{x}`, the configuration given has `{y}`");
        }
    }
    "the configurations differ in length".into()
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
    let root = comm.rank() == 0;
    let (rank, size) = (comm.rank(), comm.size());
    if exp.training.batch % size != 0 {
        return Err(bad(format!("`training.batch` = {} is not divisible by the {size} ranks", exp.training.batch)));
    }
    let out = &opts.out;
    let ck_path = out.join("checkpoint.ckpt");
    let mut config_text = exp.to_toml();
    // the data path is an option of the invocation, not of the experiment
    let mut stored = None;
    let mut extended_from = None;
    let mut stretched = false;
    if opts.extend && !opts.resume {
        return Err(bad("--extend continues a run: it needs --resume".to_string()));
    }
    if opts.resume {
        if !ck_path.exists() {
            return Err(bad(format!("{}: no checkpoint to resume from", ck_path.display())));
        }
        let old =
            std::fs::read_to_string(out.join("config.toml")).map_err(|e| bad(format!("{}: {e}", out.display())))?;
        let old_exp = Experiment::parse(&old, "config.toml").map_err(|e| bad(e.to_string()))?;
        let mut mine = exp.clone();
        mine.data.path = old_exp.data.path.clone();
        let mut reference = old_exp.clone();
        let (old_steps, new_steps) = (old_exp.training.steps, exp.training.steps);
        if opts.extend {
            if new_steps < old_steps {
                return Err(bad(format!(
                    "{}: --extend can only raise `training.steps` (the run has {old_steps}, the configuration {new_steps})",
                    out.display()
                )));
            }
            reference.training.steps = new_steps;
            // a cosine schedule that ended at the run's last step ends at the new last step
            if let (
                Schedule::WarmupCosine { total_steps: t_old, .. },
                Schedule::WarmupCosine { total_steps: t_new, .. },
            ) = (&mut reference.schedule, &mine.schedule)
                && *t_old == old_steps
                && *t_new == new_steps
                && new_steps != old_steps
            {
                *t_old = new_steps;
                stretched = true;
            }
        }
        if reference != mine {
            let hint = if opts.extend { "" } else { " (--extend allows a larger `training.steps`)" };
            return Err(bad(format!(
                "{}: the configuration differs from the run's: {}{hint}",
                out.display(),
                config_difference(&reference.to_toml(), &mine.to_toml())
            )));
        }
        config_text = reference.to_toml();
        if new_steps != old_steps {
            extended_from = Some(old_steps);
        }
        let norm = Normalisation::load(&out.join("normalisation.json")).map_err(|e| bad(e.to_string()))?;
        stored = Some((norm, RunInfo::load(out)?));
    } else if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        if !opts.force {
            return Err(bad(format!(
                "{} exists and is not empty: pass --resume to continue it or --force to replace it",
                out.display()
            )));
        }
        if root {
            std::fs::remove_dir_all(out).map_err(|e| io(out, e))?;
        }
    }
    comm.barrier();
    let prep = prepare(&exp, opts, stored.clone())?;
    if let (true, Some(old_steps)) = (root, extended_from) {
        // the run is not finished until the longer schedule is
        let summary = out.join("summary.json");
        if summary.exists() {
            std::fs::remove_file(&summary).map_err(|e| io(&summary, e))?;
        }
        write_atomically(&out.join("config.toml"), config_text.as_bytes())?;
        observer.message(&format!(
            "extending the run from {old_steps} to {} steps{}",
            exp.training.steps,
            if stretched {
                "; the cosine schedule now ends at the new last step, so the learning rate rises from here on"
            } else {
                ""
            }
        ));
    }
    if root && !opts.resume {
        std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
        std::fs::write(out.join("config.toml"), &config_text).map_err(|e| io(&out.join("config.toml"), e))?;
        prep.norm.save(&out.join("normalisation.json")).map_err(|e| io(&out.join("normalisation.json"), e))?;
        write_json(&out.join("run.json"), &prep.info)?;
    }
    let device = opts.device.clone();
    let ad = device.clone().autodiff();
    let shape = prep.info.shape();
    let c = shape.channels;
    let [ny, nx] = prep.info.grid;
    let (h, k) = (exp.data.history, exp.data.horizon);
    let residual = exp.model.residual();

    let mut model = model::build(&exp.model, shape, prep.info.tau, &mut Init::new(exp.seed, &ad));
    let eval_template = model::build(&exp.model, shape, prep.info.tau, &mut Init::new(exp.seed, &device));
    let layout = flat::layout(&model);
    let mut params: Vec<f32> = vec![];
    flat::flatten_into(&model, &mut params);
    let np = params.len();
    let mut state = OptimiserState::new(np);
    let mut header = Header {
        step: 0,
        seed: exp.seed,
        nonfinite_run: 0,
        nonfinite_total: 0,
        validation: None,
        layout: layout.clone(),
        updates: 0,
    };
    if opts.resume {
        let ck = Checkpoint::load(&ck_path).map_err(|e| bad(e.to_string()))?;
        if ck.header.layout != layout {
            return Err(bad(format!("{}: the checkpoint does not fit the configured network", ck_path.display())));
        }
        params = ck.params;
        state = ck.optimiser;
        header = ck.header;
        model = flat::unflatten(model, &params);
    } else {
        // identical initial weights on every rank: rank 0's are authoritative
        let mut bytes: Vec<u8> = params.iter().flat_map(|v| v.to_le_bytes()).collect();
        comm.broadcast_bytes(0, &mut bytes);
        params = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        model = flat::unflatten(model, &params);
    }
    let mut last_good = Checkpoint { header: header.clone(), params: params.clone(), optimiser: state.clone() };
    let mut log = if root { Some(MetricsLog::open(out, header.step)?) } else { None };

    let total = exp.training.steps;
    let end = opts.stop_after.map_or(total, |s| s.min(total));
    let per_epoch = prep.train.len() / exp.training.batch;
    let local = partition(exp.training.batch, size, rank);
    let (mut input, mut target) = (vec![], vec![]);
    let mut grads: Vec<f32> = Vec::with_capacity(np);
    let mut order: Option<(usize, Vec<usize>)> = None;
    let mut restores = 0usize;
    let mut restores_in_a_row = 0usize;
    let mut last_loss = f64::NAN;
    let started = Instant::now();
    let first = header.step;
    if root {
        observer.start(first, total);
    }
    let save = |header: &Header, params: &[f32], state: &OptimiserState| -> Result<Checkpoint, TrainError> {
        let ck = Checkpoint { header: header.clone(), params: params.to_vec(), optimiser: state.clone() };
        if root {
            ck.save(&ck_path).map_err(|e| io(&ck_path, e))?;
        }
        Ok(ck)
    };

    for step in first..end {
        if opts.fault == Some((rank, step)) {
            return Err(failed(format!("injected fault at step {step}")));
        }
        let t0 = Instant::now();
        let epoch = step / per_epoch;
        if order.as_ref().map(|(e, _)| *e) != Some(epoch) {
            order = Some((epoch, epoch_order(exp.seed, epoch, prep.train.len())));
        }
        let ord = &order.as_ref().expect("order").1;
        let j = step % per_epoch;
        let batch: Vec<usize> = ord[j * exp.training.batch..(j + 1) * exp.training.batch][local.clone()].to_vec();
        prep.train.gather(&prep.traj, &batch, &mut input, &mut target);
        let b = batch.len();
        let x = tensor4(&input, [b, h * c, ny, nx], &ad);
        let y = tensor4(&target, [b, k * c, ny, nx], &ad);
        let loss = unrolled_loss(&model, x, y, c, residual, exp.training.loss);
        let mut loss_value = [loss.clone().into_data().convert::<f64>().try_into_vec::<f64>().expect("loss")[0]];
        let g = loss.backward();
        flat::flatten_grads_into(&model, &g, &mut grads);
        drop(g);
        if opts.inject_nonfinite.contains(&step) {
            loss_value[0] = f64::NAN;
        }
        if size > 1 {
            ansatz_cluster::all_reduce_sum_f32_bucketed(comm, &mut grads);
            comm.all_reduce_sum_f64(&mut loss_value);
            let inv = 1.0 / size as f32;
            grads.iter_mut().for_each(|v| *v *= inv);
            loss_value[0] /= size as f64;
        }
        if step == first
            && root
            && let Some(path) = &opts.gradient_dump
        {
            let bytes: Vec<u8> = grads.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(path, bytes).map_err(|e| io(path, e))?;
        }
        let lr = exp.schedule.rate(step);
        let finite = loss_value[0].is_finite() && grads.iter().all(|v| v.is_finite());
        let mut record = StepRecord {
            step,
            epoch,
            loss: loss_value[0],
            grad_norm: f64::NAN,
            lr,
            validation: None,
            skipped: !finite,
            seconds: 0.0,
        };
        if finite {
            record.grad_norm = optim::clip(&mut grads, exp.optimiser.clip_norm);
            optim::update(&exp.optimiser, lr, &mut params, &grads, &mut state);
            header.nonfinite_run = 0;
            restores_in_a_row = 0;
            last_loss = loss_value[0];
        } else {
            header.nonfinite_run += 1;
            header.nonfinite_total += 1;
            if root {
                observer.message(&format!("step {step}: non-finite loss or gradient, update skipped"));
            }
            if header.nonfinite_run >= exp.training.max_nonfinite {
                restores += 1;
                restores_in_a_row += 1;
                if restores_in_a_row > 3 {
                    return Err(failed(format!(
                        "training diverged: {} restores of the checkpoint of step {} did not help; lower the \
                         learning rate or the clip norm",
                        restores_in_a_row - 1,
                        last_good.header.step
                    )));
                }
                params.clone_from(&last_good.params);
                state = last_good.optimiser.clone();
                header.nonfinite_run = 0;
                if root {
                    observer.message(&format!(
                        "step {step}: {} non-finite steps in a row, restored the weights and optimiser state of step {}",
                        exp.training.max_nonfinite, last_good.header.step
                    ));
                }
            }
        }
        model = flat::unflatten(model, &params);
        record.seconds = t0.elapsed().as_secs_f64();
        let done = step + 1;
        header.step = done;
        let validate_now =
            (exp.training.validate_every > 0 && done % exp.training.validate_every == 0) || done == total;
        if validate_now && root {
            let eval = flat::unflatten(eval_template.clone(), &params);
            record.validation = validate(&eval, &prep, &exp, &device);
            header.validation = record.validation;
        }
        // weights from a non-finite streak are not trusted: they are written only when the run stops here, and
        // never become the state a later streak falls back to
        if finite && done % exp.training.checkpoint_every == 0 {
            last_good = save(&header, &params, &state)?;
        } else if done == end {
            let ck = save(&header, &params, &state)?;
            if finite {
                last_good = ck;
            }
        }
        if let Some(log) = log.as_mut() {
            log.write(&record)?;
            observer.step(&record);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let steps_run = end.saturating_sub(first);
    let summary = TrainSummary {
        steps: header.step,
        parameters: np,
        final_loss: last_loss,
        validation: header.validation,
        nonfinite_total: header.nonfinite_total,
        restores,
        seconds,
        samples_per_second: (steps_run * exp.training.batch) as f64 / seconds.max(1e-9),
        stopped_early: end < total,
    };
    if root && end == total {
        write_json(&out.join("summary.json"), &summary)?;
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
