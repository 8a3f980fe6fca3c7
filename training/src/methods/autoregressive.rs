//! The autoregressive surrogate (FNO, DyMixOp) as a training method: windows of normalised trajectories,
//! unrolled over the horizon with back-propagation through every step, scored on validation windows by the
//! relative L2 error over the horizon in physical units.
//!
//! Its run directory holds, besides the engine's files, `run.json` (what the data looked like, see [`RunInfo`])
//! and `normalisation.json`; [`Trained::load`] rebuilds the network from them for rollouts.

use crate::checkpoint::{Checkpoint, Header};

use crate::config::{Experiment, Loss};
use crate::config::{Loading, Partition};
use crate::data::{DataFiles, Normalisation, Split, Trajectories, WindowSpec, Windows};
use crate::engine::{self, Method, StepContext, StepOutput, TrainError, write_json};
use crate::methods::hybrid::CoarseSolver;
use crate::methods::jaws::{self, RegularisationConfig, Regulariser};
use crate::model::{self, FrameShape, Surrogate};
use crate::stream::{self, FrameSource, Prefetcher, StreamedTrajectories};
use ansatz_datasets::reader::Dataset;
use ansatz_operators::bridge::BridgeReport;
use ansatz_operators::flat;
use ansatz_operators::init::Init;
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn bad(message: impl Into<String>) -> TrainError {
    TrainError::input(message)
}

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

/// A trained network loaded from a run directory, ready for inference on `device`.
pub struct Trained {
    pub config: Experiment,
    pub info: RunInfo,
    pub normalisation: Normalisation,
    pub model: Surrogate,
    pub checkpoint: Header,
    /// The device the network lives on.
    pub device: Device,
    /// A hybrid's solver (rebuilt from the training data's `generation_config`).
    pub solver: Option<CoarseSolver>,
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
        let solver = if config.hybrid.enabled() {
            let ds = Dataset::open(&info.data).map_err(|e| {
                bad(format!("the hybrid's solver is rebuilt from its training data: {}: {e}", info.data.display()))
            })?;
            let text = ds.text_attribute("generation_config");
            let interval = info.frame_interval;
            Some(CoarseSolver::new(&info.pde, text.as_deref(), info.grid, interval, &normalisation, &config.hybrid)?)
        } else {
            None
        };
        Ok(Self { config, info, normalisation, model, checkpoint: ck.header, device: device.clone(), solver })
    }
}

/// The training data, normalised, with its windows.
struct Prepared {
    source: Source,
    norm: Normalisation,
    train: Arc<Windows>,
    validation: Arc<Windows>,
    /// One window per validation trajectory, from its first frame (as the rollout starts).
    validation_start: Arc<Windows>,
    info: RunInfo,
    /// The solver in the loop of a hybrid, with ν of every loaded sample.
    hybrid: Option<Hybrid>,
}

/// A hybrid's solver and the viscosity of every loaded sample.
pub struct Hybrid {
    pub solver: CoarseSolver,
    pub nu: Vec<f64>,
}

impl Hybrid {
    /// ν of the samples of `windows` `ids`.
    fn nu_of(&self, windows: &Windows, ids: &[usize]) -> Vec<f64> {
        ids.iter().map(|&i| self.nu[windows.origin(i).0]).collect()
    }
}

/// The window sets, as the reading thread knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    Train = 0,
    Validation = 1,
    ValidationStart = 2,
}

/// Where windows come from: the whole file in memory, already normalised, or the file itself through a cache
/// read by a thread of its own.
enum Source {
    Memory(Trajectories),
    Stream(Prefetcher),
}

impl Source {
    fn channels(&self) -> usize {
        match self {
            Source::Memory(t) => t.channels(),
            Source::Stream(s) => s.channels(),
        }
    }
}

impl Prepared {
    /// The normalised windows `batch` of `set`, as [`Windows::gather`] lays them out. The streamed values are
    /// normalised per window by the same function the in-memory path applies to the whole array, so both give
    /// the same bits.
    fn gather(
        &mut self,
        set: Set,
        batch: &[usize],
        input: &mut Vec<f32>,
        target: &mut Vec<f32>,
    ) -> Result<(), TrainError> {
        match &mut self.source {
            Source::Memory(t) => {
                let windows = match set {
                    Set::Train => &self.train,
                    Set::Validation => &self.validation,
                    Set::ValidationStart => &self.validation_start,
                };
                windows.gather(t, batch, input, target);
            }
            Source::Stream(s) => s.gather(set as usize, batch, input, target).map_err(|e| bad(e.to_string()))?,
        }
        Ok(())
    }
}

/// Bytes of `samples` trajectories as f32 in memory.
fn loaded_bytes(ds: &Dataset, samples: usize) -> usize {
    samples * ds.times.len() * ds.fields.len() * ds.space_len() * 4
}

fn prepare(
    exp: &Experiment,
    data: &Path,
    stored: Option<(Normalisation, RunInfo)>,
    comm: &dyn ansatz_cluster::Communicator,
) -> Result<Prepared, TrainError> {
    let e = |e: crate::data::DataError| bad(e.to_string());
    let files = DataFiles::open(data).map_err(e)?;
    files.verify_checksums(comm).map_err(e)?;
    let ds = files.head();
    let layout = ds.layout().map_err(|e| bad(e.to_string()))?;
    if layout.z.is_some() {
        return Err(bad(format!("{}: 3D datasets are not supported by the FNO and DyMixOp yet", data.display())));
    }
    let mut samples = files.samples;
    if exp.data.max_samples > 0 {
        samples = samples.min(exp.data.max_samples);
    }
    let budget = exp.data.memory_budget.saturating_mul(1 << 20);
    let streamed = match exp.data.loading {
        Loading::Memory => false,
        Loading::Stream => true,
        Loading::Auto => loaded_bytes(ds, samples) > budget,
    };
    let (fields, times, space) = (ds.fields.clone(), ds.times.len(), files.space());
    let generation_config = ds.text_attribute("generation_config");
    let nu = if exp.hybrid.enabled() {
        files.parameter("nu").map_err(|e| bad(format!("a hybrid needs ν per sample: {e}")))?
    } else {
        vec![]
    };
    let split = Split::by_fraction(samples, exp.data.validation, exp.data.test).map_err(|e| bad(e.to_string()))?;
    let spec = WindowSpec { history: exp.data.history, horizon: exp.data.horizon, stride: exp.data.stride };
    let train = Windows::with_times(times, samples, split.train.clone(), spec, data).map_err(e)?;
    let validation = Windows::with_times(times, samples, split.validation.clone(), spec, data).map_err(e)?;
    let validation_start = validation.clone().first_frames();
    if train.len() < exp.training.batch {
        return Err(bad(format!(
            "`training.batch` = {} exceeds the {} training windows of {}",
            exp.training.batch,
            train.len(),
            data.display()
        )));
    }
    let stats = |source: &mut dyn FrameSource| match &stored {
        Some((n, info)) => Ok((n.clone(), info.tau)),
        None => stream::statistics(source, split.train.clone(), comm).map_err(e),
    };
    let n: usize = space.iter().product();
    let (train, validation, validation_start) = (Arc::new(train), Arc::new(validation), Arc::new(validation_start));
    let (source, norm, tau) = if streamed {
        let mut st = StreamedTrajectories::from_files(files, 0..samples, budget).map_err(e)?;
        let (norm, tau) = stats(&mut st)?;
        st.clear_cache();
        let sets = vec![train.clone(), validation.clone(), validation_start.clone()];
        (Source::Stream(Prefetcher::start(st, sets, Some(norm.clone())).map_err(e)?), norm, tau)
    } else {
        let mut t = Trajectories::load_from(&files, 0..samples).map_err(e)?;
        drop(files);
        let (norm, tau) = stats(&mut &t)?;
        if norm.fields == fields {
            norm.apply(t.values_mut(), n);
        }
        (Source::Memory(t), norm, tau)
    };
    if norm.fields != fields {
        return Err(bad(format!("{}: fields {:?} differ from the run's {:?}", data.display(), fields, norm.fields)));
    }
    let grid = if space.len() == 2 { [space[0], space[1]] } else { [1, space[0]] };
    let frame_interval = if layout.times.len() > 1 { layout.times[1] - layout.times[0] } else { 0.0 };
    let shape = FrameShape { channels: source.channels(), ny: grid[0], nx: grid[1], history: exp.data.history };
    let info = RunInfo {
        ansatz_version: env!("CARGO_PKG_VERSION").to_string(),
        // absolute, so that rollouts started from another folder find the data
        data: std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf()),
        pde: layout.pde.clone(),
        fields,
        grid,
        extent: layout.extent.clone(),
        frame_interval,
        samples,
        split,
        history: exp.data.history,
        horizon: exp.data.horizon,
        tau,
        parameters: model::parameters(&exp.model, shape),
        model: exp.model.kind().to_string(),
    };
    let hybrid = if exp.hybrid.enabled() {
        let solver =
            CoarseSolver::new(&layout.pde, generation_config.as_deref(), grid, frame_interval, &norm, &exp.hybrid)?;
        Some(Hybrid { solver, nu })
    } else {
        None
    };
    Ok(Prepared { source, norm, train, validation, validation_start, info, hybrid })
}

fn tensor4(values: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// What a batch's objective is made of, besides the network.
pub struct Objective<'a> {
    pub channels: usize,
    pub residual: bool,
    pub loss: Loss,
    pub regularisation: &'a RegularisationConfig,
    /// The probe directions of the Jacobian penalty at the first window (shaped like it); needed unless
    /// `regularisation.kind` is `none`.
    pub probes: Vec<Tensor<4>>,
    /// A hybrid's solver, ν of each sample of the batch, and the report of its backward failures.
    pub solver: Option<(&'a CoarseSolver, Vec<f64>, &'a BridgeReport)>,
}

/// The terms of a batch's objective (each a `[1]` tensor on the autodiff device).
pub struct Terms {
    /// What is back-propagated: `fit + penalty`.
    pub total: Tensor<1>,
    /// The data term averaged over the horizon.
    pub fit: Tensor<1>,
    /// The Jacobian penalty (zero without one).
    pub penalty: Tensor<1>,
    /// The mean bounded log σ² at the first step, with a variance head.
    pub log_var: Option<Tensor<1>>,
}

/// The objective of one batch: `input` `[b, H·C, ny, nx]`, `target` `[b, K·C, ny, nx]`; the data term over the K
/// unrolled steps (back-propagated through all of them) plus, at the first window, the Jacobian penalty of
/// `docs/methods/jaws.md` from forward-mode tangents along `objective.probes`.
/// A likelihood or a `jaws` penalty asked of a network without a variance head is an input error.
pub fn objective(model: &Surrogate, input: Tensor<4>, target: Tensor<4>, o: &Objective) -> Result<Terms, TrainError> {
    let (channels, reg) = (o.channels, o.regularisation);
    let [_, kc, ..] = target.dims();
    let horizon = kc / channels;
    let mut x = input;
    let mut total: Option<Tensor<1>> = None;
    let mut first: Option<(Tensor<4>, Option<Tensor<4>>)> = None;
    let mut log_var_mean = None;
    for k in 0..horizon {
        if let Some((solver, nu, report)) = &o.solver {
            x = solver.advance(x, nu, report)?;
        }
        let (p, raw) = if k == 0 && reg.kind != Regulariser::None {
            let (jet, raw) = model::step_jet(model, x.clone(), o.probes.clone(), channels, o.residual);
            first = Some((jaws::row_norms(&jet), raw.clone()));
            (jet.value, raw)
        } else {
            model::step_with_variance(model, x.clone(), channels, o.residual)
        };
        let y = target.clone().narrow(1, k * channels, channels);
        let l = match o.loss {
            Loss::Mse => (p.clone() - y).powf_scalar(2.0).mean(),
            Loss::RelativeMse => {
                let err = (p.clone() - y.clone()).powf_scalar(2.0);
                let [b, ..] = err.dims();
                let num = err.reshape([b as i32, -1]).sum_dim(1);
                let den = y.powf_scalar(2.0).reshape([b as i32, -1]).sum_dim(1).add_scalar(1e-12);
                (num / den).mean()
            }
            Loss::GaussianNll => {
                let raw =
                    raw.ok_or_else(|| bad("`training.loss = \"gaussian-nll\"` needs `model.variance_head = true`"))?;
                let s = jaws::bounded_log_var(raw, reg);
                if k == 0 {
                    log_var_mean = Some(s.clone().detach().mean());
                }
                jaws::gaussian_nll(p.clone(), y, s)
            }
        };
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
        x = model::advance(x, p, channels);
    }
    let fit = total.expect("horizon ≥ 1").div_scalar(horizon as f64);
    let penalty = match (reg.kind, first) {
        (Regulariser::Global, Some((rows, _))) => jaws::penalty(rows, None, reg),
        (Regulariser::Jaws, Some((rows, Some(raw)))) => {
            let w = jaws::weight(jaws::bounded_log_var(raw, reg), reg);
            jaws::penalty(rows, Some(w), reg)
        }
        (Regulariser::Jaws, Some((_, None))) => {
            return Err(bad(
                "`regularisation.kind = \"jaws\"` weights the penalty by σ: set `model.variance_head = true`",
            ));
        }
        _ => fit.zeros_like(),
    };
    Ok(Terms { total: fit.clone() + penalty.clone(), fit, penalty, log_var: log_var_mean })
}

/// The unrolled loss of one batch without regularisation: `input` `[b, H·C, ny, nx]`, `target` `[b, K·C, ny, nx]`.
pub fn unrolled_loss(
    model: &Surrogate,
    input: Tensor<4>,
    target: Tensor<4>,
    channels: usize,
    residual: bool,
    loss: Loss,
) -> Result<Tensor<1>, TrainError> {
    let reg = RegularisationConfig::default();
    let o = Objective { channels, residual, loss, regularisation: &reg, probes: vec![], solver: None };
    objective(model, input, target, &o).map(|t| t.total)
}

/// Scores of the windows `ids` of `windows` (physical units): per window, the relative L2 over the whole horizon
/// and the nRMSE of each horizon step over all fields (`‖p − u‖ / ‖u‖` of that frame, as the rollout reports).
fn window_errors(
    model: &Surrogate,
    prep: &mut Prepared,
    exp: &Experiment,
    from_start: bool,
    ids: &[usize],
    device: &Device,
) -> Result<Vec<(f64, Vec<f64>)>, TrainError> {
    let set = if from_start { Set::ValidationStart } else { Set::Validation };
    let c = prep.source.channels();
    let [ny, nx] = prep.info.grid;
    let (h, k) = (exp.data.history, exp.data.horizon);
    let space = ny * nx;
    let frame = c * space;
    let (mut input, mut target) = (vec![], vec![]);
    let mut out = Vec::with_capacity(ids.len());
    for batch in ids.chunks(32) {
        prep.gather(set, batch, &mut input, &mut target)?;
        let b = batch.len();
        let mut x = tensor4(&input, [b, h * c, ny, nx], device);
        let mut preds = Vec::with_capacity(b * k * frame);
        let mut steps = vec![];
        let report = BridgeReport::new();
        let nu = match &prep.hybrid {
            Some(h) => {
                let windows = if from_start { &prep.validation_start } else { &prep.validation };
                h.nu_of(windows, batch)
            }
            None => vec![],
        };
        for _ in 0..k {
            if let Some(h) = &prep.hybrid {
                x = h.solver.advance(x, &nu, &report)?;
            }
            let p = model::step(model, x.clone(), c, exp.model.residual());
            steps.push(p.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 prediction"));
            x = model::advance(x, p, c);
        }
        for s in 0..b {
            for st in &steps {
                preds.extend_from_slice(&st[s * frame..(s + 1) * frame]);
            }
        }
        prep.norm.invert(&mut preds, space);
        prep.norm.invert(&mut target, space);
        let sq = |r: std::ops::Range<usize>| -> (f64, f64) {
            let num = preds[r.clone()].iter().zip(&target[r.clone()]).map(|(p, y)| ((p - y) as f64).powi(2)).sum();
            let den = target[r].iter().map(|y| (*y as f64).powi(2)).sum();
            (num, den)
        };
        for s in 0..b {
            let (num, den) = sq(s * k * frame..(s + 1) * k * frame);
            let per_step = (0..k)
                .map(|t| {
                    let (n, d) = sq((s * k + t) * frame..(s * k + t + 1) * frame);
                    (n / d.max(1e-30)).sqrt()
                })
                .collect();
            out.push(((num / den.max(1e-30)).sqrt(), per_step));
        }
    }
    Ok(out)
}

/// Relative L2 over the horizon (physical units), averaged over validation windows.
fn validate(
    model: &Surrogate,
    prep: &mut Prepared,
    exp: &Experiment,
    device: &Device,
) -> Result<Option<f64>, TrainError> {
    let n = prep.validation.len();
    if n == 0 {
        return Ok(None);
    }
    let limit = if exp.training.validation_windows == 0 { n } else { n.min(exp.training.validation_windows) };
    let windows: Vec<usize> = (0..limit).map(|i| i * n / limit).collect();
    let errs = window_errors(model, prep, exp, false, &windows, device)?;
    Ok(Some(errs.iter().map(|e| e.0).sum::<f64>() / limit as f64))
}

/// The rollout's nRMSE over the horizon from the first frame of each validation trajectory: per-step nRMSE
/// averaged over the horizon, then over trajectories.
fn validate_rollout(
    model: &Surrogate,
    prep: &mut Prepared,
    exp: &Experiment,
    device: &Device,
) -> Result<Option<f64>, TrainError> {
    let n = prep.validation_start.len();
    if n == 0 {
        return Ok(None);
    }
    let ids: Vec<usize> = (0..n).collect();
    let errs = window_errors(model, prep, exp, true, &ids, device)?;
    let per: Vec<f64> = errs.iter().map(|(_, s)| s.iter().sum::<f64>() / s.len().max(1) as f64).collect();
    Ok(Some(per.iter().sum::<f64>() / n as f64))
}

/// The autoregressive method on prepared data.
pub struct Autoregressive {
    exp: Experiment,
    prep: Prepared,
    input: Vec<f32>,
    target: Vec<f32>,
    /// The rollout-start score of the last validation, reported with its step's metrics.
    rollout_score: Option<f64>,
}

/// The metric name of the rollout-start validation score.
pub const VAL_ROLLOUT: &str = "val_rollout_nrmse";

impl Autoregressive {
    /// Loads and normalises the trajectories of `data` for `exp`; `stored` are the normalisation and data
    /// description of the run being resumed (the statistics are then not refitted).
    /// With streamed loading on several ranks, rank 0 alone makes the passes over the training samples for the
    /// statistics and sends them to the others, so that each rank reads only the samples of its own windows.
    pub fn prepare(
        exp: &Experiment,
        data: &Path,
        stored: Option<(Normalisation, RunInfo)>,
        comm: &dyn ansatz_cluster::Communicator,
    ) -> Result<Self, TrainError> {
        let prep = prepare(exp, data, stored, comm)?;
        Ok(Self { exp: exp.clone(), prep, input: vec![], target: vec![], rollout_score: None })
    }

    /// What the data looked like.
    pub fn info(&self) -> &RunInfo {
        &self.prep.info
    }
}

impl Method for Autoregressive {
    type Model = Surrogate;

    fn examples(&self) -> usize {
        self.prep.train.len()
    }

    fn metric_names(&self) -> Vec<String> {
        let mut names = vec![];
        if self.exp.regularisation.kind != Regulariser::None {
            names.extend(["fit".to_string(), "penalty".to_string()]);
        }
        if self.exp.model.variance_head() {
            names.push("log_var".to_string());
        }
        names
    }

    fn build(&self, init: &mut Init) -> Surrogate {
        model::build(&self.exp.model, self.prep.info.shape(), self.prep.info.tau, init)
    }

    fn write_setup(&self, out: &Path) -> Result<(), TrainError> {
        let p = out.join("normalisation.json");
        self.prep.norm.save(&p).map_err(|e| TrainError::io(&p, e))?;
        write_json(&out.join("run.json"), &self.prep.info)
    }

    fn step(
        &mut self,
        model: &Surrogate,
        batch: &[usize],
        ctx: &StepContext,
        grads: &mut Vec<f32>,
    ) -> Result<StepOutput, TrainError> {
        let shape = self.prep.info.shape();
        let (c, [ny, nx]) = (shape.channels, self.prep.info.grid);
        let (h, k) = (self.exp.data.history, self.exp.data.horizon);
        self.prep.gather(Set::Train, batch, &mut self.input, &mut self.target)?;
        let b = batch.len();
        let x = tensor4(&self.input, [b, h * c, ny, nx], &ctx.device);
        let y = tensor4(&self.target, [b, k * c, ny, nx], &ctx.device);
        let reg = &self.exp.regularisation;
        let probes = if reg.kind == Regulariser::None {
            vec![]
        } else {
            jaws::batch_probes(reg.probe, self.exp.seed, ctx.step, batch, reg.probes, [h * c, ny, nx], &x)
        };
        let report = BridgeReport::new();
        let solver = self.prep.hybrid.as_ref().map(|h| (&h.solver, h.nu_of(&self.prep.train, batch), &report));
        let o = Objective {
            channels: c,
            residual: self.exp.model.residual(),
            loss: self.exp.training.loss,
            regularisation: reg,
            probes,
            solver,
        };
        let terms = objective(model, x, y, &o)?;
        let scalar = |t: Tensor<1>| t.into_data().convert::<f64>().as_slice::<f64>().map_or(f64::NAN, |v| v[0]);
        let mut metrics = vec![];
        if reg.kind != Regulariser::None {
            metrics.push(scalar(terms.fit.clone().detach()));
            metrics.push(scalar(terms.penalty.clone().detach()));
        }
        if let Some(s) = terms.log_var {
            metrics.push(scalar(s));
        }
        let loss = engine::backward_into(model, terms.total, grads);
        // a failed solver adjoint left NaN cotangents in its samples: the engine's non-finite guard skips the step
        Ok(StepOutput { loss, metrics })
    }

    fn finish(&mut self, _model: &Surrogate, out: &Path, rank: usize) -> Result<(), TrainError> {
        if let Source::Stream(s) = &mut self.prep.source
            && let Some(st) = s.finish()
        {
            write_json(&out.join(format!("stream-rank-{rank:04}.json")), &st.report(rank))?;
        }
        Ok(())
    }

    fn rank_examples(&self, ranks: usize) -> Option<Vec<std::ops::Range<usize>>> {
        if self.exp.data.partition != Partition::Rank {
            return None;
        }
        // windows are numbered sample by sample, the same number per sample
        let samples = self.prep.info.split.train.len();
        let per = self.prep.train.len() / samples.max(1);
        Some(
            (0..ranks)
                .map(|r| {
                    let s = ansatz_cluster::partition(samples, ranks, r);
                    s.start * per..s.end * per
                })
                .collect(),
        )
    }

    fn prefetch(&mut self, next: &[usize]) {
        if let Source::Stream(s) = &mut self.prep.source {
            // a failed request shows again, with its message, when the batch is gathered
            let _ = s.request(Set::Train as usize, next);
        }
    }

    fn validate(&mut self, model: &Surrogate, device: &Device) -> Result<Option<f64>, TrainError> {
        self.rollout_score = if self.exp.training.validate_rollout {
            validate_rollout(model, &mut self.prep, &self.exp, device)?
        } else {
            None
        };
        validate(model, &mut self.prep, &self.exp, device)
    }

    fn validation_metric_names(&self) -> Vec<String> {
        if self.exp.training.validate_rollout { vec![VAL_ROLLOUT.to_string()] } else { vec![] }
    }

    fn validation_metrics(&mut self) -> Vec<(String, f64)> {
        self.rollout_score.take().map(|v| vec![(VAL_ROLLOUT.to_string(), v)]).unwrap_or_default()
    }
}
