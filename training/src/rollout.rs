//! Long-horizon rollout evaluation: a trained network rolls itself out from the context frames of held-out
//! trajectories and is scored against the reference at every step, and the reference solver is run on the same
//! initial frames at the data resolution and at 1/2 and 1/4 of it, for the error-matched speed-up and the
//! breakeven count.
//!
//! A report directory holds `metrics.nc` (per-sample, per-step metrics), `predictions.nc` (the rollouts in the
//! dataset format, context frames included, so xarray users compare them directly with the reference),
//! `summary.json`, `summary.md`, figures (SVG and PNG) and `report.html`.

use crate::data::{DataFiles, Trajectories};
use crate::figures;
use crate::metrics::{self, Summary};
use crate::model;
use crate::trainer::{TrainError, Trained};
use ansatz_datasets::coarsen::{Prolongator, Restrictor};
use ansatz_datasets::generate::{Setup, trajectory};
use ansatz_datasets::schema::Layout;
use ansatz_datasets::writer::DatasetWriter;
use ansatz_solvers::fv::Boundary;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;
use serde::Serialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn bad(message: impl Into<String>) -> TrainError {
    TrainError::input(message)
}

fn failed(message: impl Into<String>) -> TrainError {
    TrainError::failed(message)
}

/// Any model that produces trajectories: context frames in, N frames out, in physical units. The
/// autoregressive surrogates ([`Trained`]) implement it; so does every method whose model predicts
/// trajectories, and [`rollout_model`] then gives it the same report.
pub trait TrajectoryModel {
    /// The name reports use (`fno`, `dymixop`, ...).
    fn name(&self) -> String;
    /// Trainable values.
    fn parameters(&self) -> usize;
    /// The fields it predicts, in the data's order.
    fn fields(&self) -> &[String];
    /// `[ny, nx]` (ny = 1 in 1D).
    fn grid(&self) -> [usize; 2];
    /// Frames it needs before the first prediction.
    fn context_frames(&self) -> usize;
    /// Time between frames.
    fn frame_interval(&self) -> f64;
    /// Rolls `batch` samples out for `steps` frames. `context` holds `batch × context_frames × frame` values
    /// (sample-major, then time, then the fields in order, each `ny × nx`), `out` receives `batch × steps ×
    /// frame` values in the same layout.
    fn predict(&self, context: &[f32], batch: usize, steps: usize, out: &mut [f64]) -> Result<(), TrainError>;
    /// The per-sample simulation parameters the model needs (variables of the data, e.g. `mu`), in order.
    fn parameter_names(&self) -> Vec<String> {
        vec![]
    }
    /// [`TrajectoryModel::predict`] for models that take the samples' simulation parameters: `params` holds
    /// `batch × parameter_names().len()` values.
    fn predict_with_parameters(
        &self,
        context: &[f32],
        params: &[f64],
        batch: usize,
        steps: usize,
        out: &mut [f64],
    ) -> Result<(), TrainError> {
        let _ = params;
        self.predict(context, batch, steps, out)
    }
    /// Whether [`TrajectoryModel::predict_with_sigma`] gives a predicted standard deviation.
    fn predicts_sigma(&self) -> bool {
        false
    }
    /// [`TrajectoryModel::predict`], and the predicted standard deviation σ of every value (physical units, laid
    /// out like `out`) into `sigma`, for models that predict one ([`TrajectoryModel::predicts_sigma`]).
    fn predict_with_sigma(
        &self,
        context: &[f32],
        batch: usize,
        steps: usize,
        out: &mut [f64],
        sigma: &mut [f64],
    ) -> Result<(), TrainError> {
        let _ = sigma;
        self.predict(context, batch, steps, out)
    }
}

/// Where a model's training data came from: rollouts on the same file use its held-out samples, and the
/// breakeven count charges the data and the training.
#[derive(Clone, Debug)]
pub struct Provenance {
    /// The training data (absolute).
    pub data: PathBuf,
    /// The held-out test samples of that file.
    pub test: Range<usize>,
    /// Trajectories the model was trained on.
    pub train_samples: usize,
}

impl Trained {
    /// Where the run's data came from.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            data: self.info.data.clone(),
            test: self.info.split.test.clone(),
            train_samples: self.info.split.train.len(),
        }
    }
}

impl TrajectoryModel for Trained {
    fn name(&self) -> String {
        self.info.model.clone()
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
        self.info.history
    }
    fn frame_interval(&self) -> f64 {
        self.info.frame_interval
    }
    fn predict(&self, context: &[f32], b: usize, steps: usize, out: &mut [f64]) -> Result<(), TrainError> {
        if self.solver.is_some() {
            return Err(bad("a hybrid rolls out with each sample's ν (predict_with_parameters)"));
        }
        self.roll(context, b, steps, out, None, &[])
    }
    fn parameter_names(&self) -> Vec<String> {
        if self.solver.is_some() { vec!["nu".to_string()] } else { vec![] }
    }
    fn predict_with_parameters(
        &self,
        context: &[f32],
        params: &[f64],
        b: usize,
        steps: usize,
        out: &mut [f64],
    ) -> Result<(), TrainError> {
        self.roll(context, b, steps, out, None, params)
    }
    fn predicts_sigma(&self) -> bool {
        self.config.model.variance_head()
    }
    fn predict_with_sigma(
        &self,
        context: &[f32],
        b: usize,
        steps: usize,
        out: &mut [f64],
        sigma: &mut [f64],
    ) -> Result<(), TrainError> {
        if self.solver.is_some() {
            return Err(bad("σ of a hybrid's rollout is not available"));
        }
        self.roll(context, b, steps, out, Some(sigma), &[])
    }
}

impl Trained {
    /// The autoregressive rollout behind [`TrajectoryModel::predict`], with σ from the variance head when asked;
    /// a hybrid's solver advances each frame first, sample `s` with viscosity `nu[s]`.
    fn roll(
        &self,
        context: &[f32],
        b: usize,
        steps: usize,
        out: &mut [f64],
        sigma: Option<&mut [f64]>,
        nu: &[f64],
    ) -> Result<(), TrainError> {
        let report = ansatz_operators::bridge::BridgeReport::new();
        let (h, nc) = (self.info.history, self.info.fields.len());
        let [ny, nx] = self.info.grid;
        let (space, frame) = (nx * ny, nc * nx * ny);
        let mut input = context.to_vec();
        self.normalisation.apply(&mut input, space);
        let residual = self.config.model.residual();
        let reg = &self.config.regularisation;
        let mut x = Tensor::<4>::from_data(TensorData::new(input, [b, h * nc, ny, nx]), &self.device);
        let values =
            |t: Tensor<4>| t.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| failed(format!("{e:?}")));
        let mut outs = Vec::with_capacity(steps);
        let mut sigmas = Vec::with_capacity(if sigma.is_some() { steps } else { 0 });
        for _ in 0..steps {
            if let Some(solver) = &self.solver {
                x = solver.advance(x, nu, &report)?;
            }
            let (p, raw) = model::step_with_variance(&self.model, x.clone(), nc, residual);
            outs.push(values(p.clone())?);
            if let (Some(_), Some(raw)) = (&sigma, raw) {
                sigmas.push(values(crate::methods::jaws::bounded_log_var(raw, reg).mul_scalar(0.5).exp())?);
            }
            x = model::advance(x, p, nc);
        }
        for (t, mut o) in outs.into_iter().enumerate() {
            self.normalisation.invert(&mut o, space);
            for s in 0..b {
                let dst = (s * steps + t) * frame;
                for (d, v) in out[dst..dst + frame].iter_mut().zip(&o[s * frame..(s + 1) * frame]) {
                    *d = *v as f64;
                }
            }
        }
        if let Some(dst) = sigma {
            for (t, sd) in sigmas.iter().enumerate() {
                for s in 0..b {
                    for (i, v) in sd[s * frame..(s + 1) * frame].iter().enumerate() {
                        // σ scales with the field's normalisation scale
                        dst[(s * steps + t) * frame + i] = *v as f64 * self.normalisation.scale[i / space];
                    }
                }
            }
        }
        Ok(())
    }
}

/// What to roll out and where to write the report.
#[derive(Clone, Debug)]
pub struct RolloutOptions {
    pub run: PathBuf,
    pub data: PathBuf,
    /// Steps after the context frames (default: as many as the data hold).
    pub steps: Option<usize>,
    pub out: PathBuf,
    pub force: bool,
    /// At most this many held-out samples (default: all).
    pub samples: Option<usize>,
    /// Samples rolled out together.
    pub batch: usize,
    /// MiB for the held-out trajectories, predictions and references in memory at once: the samples are read,
    /// rolled out, scored and written chunk by chunk within it (at least one batch at a time).
    pub memory_budget: usize,
    /// Run the reference solver at 1, 1/2 and 1/4 of the data resolution.
    pub baseline: bool,
    /// The finer dataset the data were restricted from (`ansatz coarsen`): the solver baseline then also runs at
    /// 2×, 4×, … the data resolution up to the reference's grid, each started from the reference's initial frame
    /// and scored on the data's grid against the same truth as the network.
    pub reference: Option<PathBuf>,
    pub plots: bool,
    pub device: Device,
}

impl RolloutOptions {
    pub fn new(run: impl Into<PathBuf>, data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            run: run.into(),
            data: data.into(),
            steps: None,
            out: out.into(),
            force: false,
            samples: None,
            batch: 16,
            memory_budget: 1024,
            baseline: true,
            reference: None,
            plots: true,
            device: Device::flex(),
        }
    }
}

/// Mean, median and 5/95 percentiles over samples.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub median: f64,
    pub p5: f64,
    pub p95: f64,
    /// Samples with a finite value.
    pub count: usize,
}

impl From<Summary> for Stat {
    fn from(s: Summary) -> Self {
        Stat { mean: s.mean, median: s.median, p5: s.p5, p95: s.p95, count: s.count }
    }
}

fn stat(values: &[f64]) -> Stat {
    Summary::of(values).into()
}

/// The reference solver at one resolution.
#[derive(Clone, Debug, Serialize)]
pub struct SolverCost {
    /// Fraction of the data resolution (1, 1/2, 1/4).
    pub fraction: f64,
    pub n: usize,
    /// Wall seconds per sample and stored frame (all samples solved in parallel on every core).
    pub seconds_per_frame: f64,
    /// nRMSE on the data's grid (a coarser solution prolonged to it, a finer one restricted), mean over samples
    /// and steps.
    pub nrmse: f64,
    /// Steps until the correlation with the reference falls below 0.9 (the horizon if it never does), mean over
    /// samples.
    pub correlation_time_09: f64,
    /// nRMSE at every step (the first entry is step 1), median over samples, as the network's `nrmse_at`.
    pub nrmse_by_step: Vec<f64>,
}

/// nRMSE and Pearson correlation of one predicted frame.
fn nrmse_and_correlation(p: &[f64], reference: &[f64]) -> (f64, f64) {
    let e = metrics::step_errors(p, reference);
    (e.nrmse, e.pearson)
}

/// Cost and the honest speed-up.
#[derive(Clone, Debug, Serialize)]
pub struct Cost {
    /// Wall seconds per sample and step of the network (batched, every core).
    pub model_seconds_per_step: f64,
    pub batch: usize,
    pub solver: Vec<SolverCost>,
    /// The cheapest solver resolution at least as accurate as the network (mean nRMSE), if any ran.
    pub matched_fraction: Option<f64>,
    /// Its cost per frame over the network's cost per step. With rungs a factor of 2 apart this is an upper bound:
    /// a solver between two rungs may match the network's error for less.
    pub error_matched_speedup: Option<f64>,
    /// The cost of a solver with exactly the network's error, interpolated log–log between the two rungs that
    /// bracket it (linearly in the error when the accurate rung is exact), over the network's cost per step; none
    /// when no two rungs bracket the network's error.
    pub interpolated_speedup: Option<f64>,
    /// Solver cost of the training data plus training time, in seconds.
    pub upfront_seconds: Option<f64>,
    /// Rollouts of this length before the network has paid for its data and training (none if it never does).
    pub breakeven_rollouts: Option<f64>,
}

/// The headline numbers of a rollout.
#[derive(Clone, Debug, Serialize)]
pub struct RolloutSummary {
    pub run: PathBuf,
    pub data: PathBuf,
    pub model: String,
    pub parameters: usize,
    pub fields: Vec<String>,
    pub grid: [usize; 2],
    pub samples: Range<usize>,
    pub context_frames: usize,
    pub steps: usize,
    pub frame_interval: f64,
    /// nRMSE (all fields) at steps 1, 10, 100 and the last, where the rollout reaches them.
    pub nrmse_at: Vec<(usize, Stat)>,
    pub nrmse_mean: Stat,
    /// Geometric mean of nRMSE over the first min(100, steps) steps.
    pub gmean_nrmse_100: Stat,
    /// Mean VRMSE over steps 6–12 and 13–30 (where reached).
    pub vrmse_6_12: Option<Stat>,
    pub vrmse_13_30: Option<Stat>,
    /// First step with Pearson ρ below 0.8, 0.9 and 0.5 (rollouts that never drop count as `steps`).
    pub correlation_time_08: Stat,
    pub correlation_time_09: Stat,
    pub correlation_time_05: Stat,
    /// First step with nRMSE above 0.5 (same censoring), in steps.
    pub valid_prediction_steps: Stat,
    /// Fraction of rollouts that became non-finite or exceeded 10× the reference norm, and the median step.
    pub blow_up_rate: f64,
    pub blow_up_median_step: Option<f64>,
    /// Largest relative drift of ∫u per field and of ∫|u|², per sample.
    pub mass_drift_max: Vec<(String, Stat)>,
    pub energy_drift_max: Stat,
    pub h1_nrmse_last: Stat,
    /// Spectral band errors (k < 4, 4–12, ≥ 12) and the log-spectrum error at the last step, first field.
    pub band_errors_last: Vec<Stat>,
    pub log_spectrum_error_last: Stat,
    /// Predicted over reference energy in the highest band (k ≥ 12) at the last step, first field: below 1 where
    /// the rollout has dissipated the small scales.
    pub high_k_energy_ratio_last: Stat,
    /// The predicted σ against the error, for networks with a variance head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<Uncertainty>,
    pub cost: Cost,
}

/// How the predicted standard deviation σ compares with the true error at chosen steps (all fields, physical
/// units).
#[derive(Clone, Debug, Serialize)]
pub struct Uncertainty {
    pub steps: Vec<usize>,
    /// Mean σ over samples and locations (finite values only, as the two rows below).
    pub sigma_mean: Vec<f64>,
    /// Root mean square error over samples and locations.
    pub rmse: Vec<f64>,
    /// Pearson correlation over locations between σ and |error|, over samples.
    pub correlation: Vec<Stat>,
    /// Fraction of values with |error| ≤ 2σ (0.954 for a calibrated Gaussian).
    pub coverage_2sigma: Vec<f64>,
}

/// Per-sample, per-step metrics (all fields together unless named).
struct Curves {
    samples: usize,
    steps: usize,
    fields: Vec<String>,
    combined: Vec<metrics::StepErrors>,
    per_field: Vec<Vec<metrics::StepErrors>>,
    h1: Vec<f64>,
    mass_drift: Vec<Vec<f64>>,
    energy_drift: Vec<f64>,
    blow_up: Vec<Option<usize>>,
    /// Spectra at chosen steps: `[spectrum step][field]` → mean over samples (prediction, reference).
    spectrum_steps: Vec<usize>,
    spectra: Vec<Vec<(Vec<f64>, Vec<f64>)>>,
    /// `[sample][spectrum step][field]` band errors and log-spectrum error.
    bands: Vec<Vec<Vec<Vec<f64>>>>,
    log_spec: Vec<Vec<Vec<f64>>>,
    /// `[sample][spectrum step][field]` predicted over reference energy per band.
    ratios: Vec<Vec<Vec<Vec<f64>>>>,
    /// RMS over locations and fields of the predicted σ, `[sample × step]`, for models that predict one.
    sigma_rms: Option<Vec<f64>>,
}

const BAND_EDGES: [usize; 4] = [0, 4, 12, usize::MAX];

/// The curves of `samples` rollouts; the mean spectra are divided by `total`, the number of samples of the whole
/// rollout, so that the curves of its chunks add up with [`Curves::append`].
#[allow(clippy::too_many_arguments)]
fn curves(
    pred: &[f64],
    truth: &[f64],
    initial: &[f64],
    samples: usize,
    total: usize,
    steps: usize,
    fields: &[String],
    grid: [usize; 2],
    spacing: [f64; 2],
) -> Curves {
    let [ny, nx] = grid;
    let space = nx * ny;
    let nc = fields.len();
    let frame = nc * space;
    let mut spectrum_steps: Vec<usize> = [1, steps / 4, steps / 2, steps].into_iter().filter(|&s| s >= 1).collect();
    spectrum_steps.dedup();
    let per_sample: Vec<_> = (0..samples)
        .into_par_iter()
        .map(|s| {
            let base = s * steps * frame;
            let init = &initial[s * frame..(s + 1) * frame];
            let mut combined = Vec::with_capacity(steps);
            let mut per_field = vec![Vec::with_capacity(steps); nc];
            let mut h1 = Vec::with_capacity(steps);
            let mut mass = vec![Vec::with_capacity(steps); nc];
            let mut energy = Vec::with_capacity(steps);
            for t in 0..steps {
                let p = &pred[base + t * frame..base + (t + 1) * frame];
                let u = &truth[base + t * frame..base + (t + 1) * frame];
                combined.push(metrics::step_errors(p, u));
                let mut h = 0.0;
                for c in 0..nc {
                    let r = c * space..(c + 1) * space;
                    per_field[c].push(metrics::step_errors(&p[r.clone()], &u[r.clone()]));
                    h += metrics::h1_nrmse(&p[r.clone()], &u[r.clone()], nx, ny, spacing[1], spacing[0]) / nc as f64;
                    mass[c].push(metrics::conserved_drift(&p[r.clone()], &u[r.clone()], &init[r], |x| x));
                }
                h1.push(h);
                energy.push(metrics::conserved_drift(p, u, init, |x| x * x));
            }
            let blow = metrics::blow_up_step(
                &pred[base..base + steps * frame],
                &truth[base..base + steps * frame],
                frame,
                10.0,
            );
            let mut spectra = vec![];
            let mut bands = vec![];
            let mut logs = vec![];
            let mut ratios = vec![];
            for &st in &spectrum_steps {
                let t = st - 1;
                let mut sp = vec![];
                let mut bd = vec![];
                let mut lg = vec![];
                let mut rt = vec![];
                for c in 0..nc {
                    let r = base + t * frame + c * space..base + t * frame + (c + 1) * space;
                    let ep = metrics::shell_spectrum(&pred[r.clone()], nx, ny);
                    let eu = metrics::shell_spectrum(&truth[r], nx, ny);
                    let edges: Vec<usize> = BAND_EDGES.iter().map(|&e| e.min(eu.len())).collect();
                    bd.push(metrics::band_errors(&ep, &eu, &edges));
                    rt.push(metrics::band_ratios(&ep, &eu, &edges));
                    lg.push(metrics::log_spectrum_error(&ep, &eu));
                    sp.push((ep, eu));
                }
                spectra.push(sp);
                bands.push(bd);
                logs.push(lg);
                ratios.push(rt);
            }
            (combined, per_field, h1, mass, energy, blow, spectra, bands, logs, ratios)
        })
        .collect();
    let mut out = Curves {
        samples,
        steps,
        fields: fields.to_vec(),
        combined: vec![],
        per_field: vec![vec![]; nc],
        h1: vec![],
        mass_drift: vec![vec![]; nc],
        energy_drift: vec![],
        blow_up: vec![],
        spectra: vec![],
        bands: vec![],
        log_spec: vec![],
        ratios: vec![],
        sigma_rms: None,
        spectrum_steps: spectrum_steps.clone(),
    };
    let mut mean_spectra: Vec<Vec<(Vec<f64>, Vec<f64>)>> = vec![];
    for (combined, per_field, h1, mass, energy, blow, spectra, bands, logs, ratios) in per_sample {
        out.combined.extend(combined);
        for c in 0..nc {
            out.per_field[c].extend(per_field[c].iter().copied());
            out.mass_drift[c].extend(mass[c].iter().copied());
        }
        out.h1.extend(h1);
        out.energy_drift.extend(energy);
        out.blow_up.push(blow);
        if mean_spectra.is_empty() {
            mean_spectra = spectra
                .iter()
                .map(|sp| sp.iter().map(|(a, b)| (vec![0.0; a.len()], vec![0.0; b.len()])).collect())
                .collect();
        }
        for (acc, sp) in mean_spectra.iter_mut().zip(&spectra) {
            for ((ap, au), (ep, eu)) in acc.iter_mut().zip(sp) {
                for (a, e) in ap.iter_mut().zip(ep) {
                    *a += e / total as f64;
                }
                for (a, e) in au.iter_mut().zip(eu) {
                    *a += e / total as f64;
                }
            }
        }
        out.bands.push(bands);
        out.log_spec.push(logs);
        out.ratios.push(ratios);
    }
    out.spectra = mean_spectra;
    out
}

impl Curves {
    /// The curves of more samples after these (same steps and fields).
    fn append(&mut self, mut next: Curves) {
        if self.samples == 0 {
            *self = next;
            return;
        }
        self.samples += next.samples;
        self.combined.append(&mut next.combined);
        for (a, b) in self.per_field.iter_mut().zip(&mut next.per_field) {
            a.append(b);
        }
        self.h1.append(&mut next.h1);
        for (a, b) in self.mass_drift.iter_mut().zip(&mut next.mass_drift) {
            a.append(b);
        }
        self.energy_drift.append(&mut next.energy_drift);
        self.blow_up.append(&mut next.blow_up);
        for (acc, sp) in self.spectra.iter_mut().zip(&next.spectra) {
            for ((ap, au), (ep, eu)) in acc.iter_mut().zip(sp) {
                for (a, e) in ap.iter_mut().zip(ep) {
                    *a += e;
                }
                for (a, e) in au.iter_mut().zip(eu) {
                    *a += e;
                }
            }
        }
        self.bands.append(&mut next.bands);
        self.log_spec.append(&mut next.log_spec);
        self.ratios.append(&mut next.ratios);
        match (&mut self.sigma_rms, next.sigma_rms) {
            (Some(a), Some(mut b)) => a.append(&mut b),
            (a, _) => *a = None,
        }
    }

    fn at(&self, s: usize, t: usize) -> &metrics::StepErrors {
        &self.combined[s * self.steps + t]
    }

    fn column(&self, f: impl Fn(&metrics::StepErrors) -> f64, t: usize) -> Vec<f64> {
        (0..self.samples).map(|s| f(self.at(s, t))).collect()
    }

    fn curve(&self, s: usize, f: impl Fn(&metrics::StepErrors) -> f64) -> Vec<f64> {
        (0..self.steps).map(|t| f(self.at(s, t))).collect()
    }

    /// Mean over samples of a metric at each step.
    fn mean_curve(&self, f: impl Fn(&metrics::StepErrors) -> f64 + Copy) -> Vec<f64> {
        (0..self.steps).map(|t| Summary::of(&self.column(f, t)).mean).collect()
    }
}

/// Solves every start with `setup` (samples in parallel; only the solves are timed, with `what` naming the rung
/// in errors) and scores each stored frame: `score(s, t, frame)` for sample `s` at step `t + 1`. Returns the wall
/// seconds and the (nRMSE, Pearson correlation) of every sample and step.
#[allow(clippy::too_many_arguments)]
fn solve_and_score(
    setup: &Setup,
    starts: &[Vec<f64>],
    nu: &[f64],
    first: usize,
    steps: usize,
    what: &str,
    mut score: impl FnMut(usize, usize, &[f64]) -> (f64, f64),
) -> Result<(f64, Vec<(f64, f64)>), TrainError> {
    let started = Instant::now();
    let solved: Vec<Result<Vec<f64>, String>> = (0..starts.len())
        .into_par_iter()
        .map(|s| trajectory(setup, &starts[s], nu[s], first + s).map(|t| t.data).map_err(|e| e.to_string()))
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    let mut errs = vec![];
    for (s, traj) in solved.into_iter().enumerate() {
        let traj = traj.map_err(|e| failed(format!("solver baseline at {what} resolution: {e}")))?;
        let cf = traj.len() / (steps + 1);
        for t in 0..steps {
            errs.push(score(s, t, &traj[(t + 1) * cf..(t + 2) * cf]));
        }
    }
    Ok((seconds, errs))
}

/// The reference solver at `1/r` of the resolution on samples started from `initial` restricted to its grid, its
/// output prolonged to the data's grid and scored there against `truth`, as the network is: the wall seconds of
/// the solves and the (nRMSE, correlation) of every sample and step (the report averages them over all chunks).
#[allow(clippy::too_many_arguments)]
fn solver_chunk(
    setup: &Setup,
    r: usize,
    initial: &[f64],
    truth: &[f64],
    nu: &[f64],
    first: usize,
    steps: usize,
    comps: usize,
    grid: [usize; 2],
) -> Result<(f64, Vec<(f64, f64)>), TrainError> {
    let [ny, nx] = grid;
    let frame = comps * nx * ny;
    let mut coarse = *setup;
    coarse.nx = nx / r;
    coarse.ny = if ny > 1 { ny / r } else { 1 };
    coarse.frames = steps;
    // the initial frames are already spun up, and a coarser grid takes a proportionally longer fixed step (the
    // same CFL number)
    coarse.spin_up = 0.0;
    coarse.dt = setup.dt.map(|dt| dt * r as f64);
    let what = format!("1/{r}");
    // Fourier truncation on collocation grids, r×r block means on cell-centred ones
    let mut rs = Restrictor::new(grid, r, setup.grid_type())
        .map_err(|e| failed(format!("solver baseline at {what} resolution: {e}")))?;
    let [cy, cx] = rs.coarse_grid();
    let mut restricted = vec![0.0; comps * cy * cx];
    let starts: Vec<Vec<f64>> = initial
        .chunks(frame)
        .map(|f| {
            rs.apply(f, comps, &mut restricted);
            restricted.clone()
        })
        .collect();
    // back to the data's grid: Fourier zero padding on collocation grids, linear interpolation between cell
    // centres on cell-centred ones (periodic where the axis is)
    let periodic = setup.bc.map(|axis| axis.iter().all(|b| matches!(b, Boundary::Periodic)));
    let mut pr = Prolongator::new([cy, cx], r, setup.grid_type(), periodic)
        .map_err(|e| failed(format!("solver baseline at {what} resolution: {e}")))?;
    let mut prolonged = vec![0.0; frame];
    solve_and_score(&coarse, &starts, nu, first, steps, &what, |s, t, p| {
        pr.apply(p, comps, &mut prolonged);
        nrmse_and_correlation(&prolonged, &truth[(s * steps + t) * frame..(s * steps + t + 1) * frame])
    })
}

/// The reference solver at `f` times the data resolution, started from `fine_initial` (the held-out samples'
/// initial frames on the finer reference's grid, `big` times the data's) restricted to its grid, and scored on
/// the data's grid (its output restricted by `f`) against `truth`.
#[allow(clippy::too_many_arguments)]
fn finer_chunk(
    setup: &Setup,
    f: usize,
    fine_initial: &[f64],
    big: usize,
    truth: &[f64],
    nu: &[f64],
    first: usize,
    steps: usize,
    comps: usize,
    grid: [usize; 2],
) -> Result<(f64, Vec<(f64, f64)>), TrainError> {
    let [ny, nx] = grid;
    let frame = comps * nx * ny;
    let fine_grid = [if ny > 1 { ny * big } else { 1 }, nx * big];
    let run_grid = [if ny > 1 { ny * f } else { 1 }, nx * f];
    let mut fine = *setup;
    fine.nx = run_grid[1];
    fine.ny = run_grid[0];
    fine.frames = steps;
    fine.spin_up = 0.0;
    fine.dt = setup.dt.map(|dt| dt / f as f64);
    let what = format!("{f}×");
    let err = |e: &dyn std::fmt::Display| failed(format!("solver baseline at {what} resolution: {e}"));
    let mut to_run = Restrictor::new(fine_grid, big / f, setup.grid_type()).map_err(|e| err(&e))?;
    let mut to_data = Restrictor::new(run_grid, f, setup.grid_type()).map_err(|e| err(&e))?;
    let starts: Vec<Vec<f64>> = fine_initial
        .chunks(comps * fine_grid[0] * fine_grid[1])
        .map(|u| {
            let mut start = vec![0.0; comps * run_grid[0] * run_grid[1]];
            to_run.apply(u, comps, &mut start);
            start
        })
        .collect();
    let mut p = vec![0.0; frame];
    solve_and_score(&fine, &starts, nu, first, steps, &what, |s, t, out| {
        to_data.apply(out, comps, &mut p);
        nrmse_and_correlation(&p, &truth[(s * steps + t) * frame..(s * steps + t + 1) * frame])
    })
}

/// The initial frames `(field, space)` of `samples` of the finer reference, one after another.
fn reference_initial(ds: &ansatz_datasets::reader::Dataset, samples: Range<usize>) -> Result<Vec<f64>, TrainError> {
    let mut u = vec![];
    for s in samples {
        for field in &ds.fields {
            let w = ds.read(field, s..s + 1, 0..1).map_err(|e| failed(format!("--reference: {e}")))?;
            u.extend(w.iter().copied());
        }
    }
    Ok(u)
}

/// The data's own solver on a reduced-order benchmark (`burgers1d-source`, `diffusion2d`) from the initial
/// frames, at the data's resolution: its cost, and its error against the data (zero up to storage rounding).
fn rom_chunk(
    spec: &ansatz_datasets::rom::RomSpec,
    params: &[f64],
    initial: &[f64],
    truth: &[f64],
    steps: usize,
    frame: usize,
) -> Result<(f64, Vec<(f64, f64)>), TrainError> {
    use ansatz_solvers::prelude::{ExplicitRk, Stepper};
    let samples = initial.len() / frame;
    let np = params.len() / samples.max(1);
    let started = Instant::now();
    let solved: Vec<Result<Vec<f64>, String>> = (0..samples)
        .into_par_iter()
        .map(|s| {
            let rhs = spec.rhs(&params[s * np..(s + 1) * np]).map_err(|e| e.to_string())?;
            let stepper = ExplicitRk::new(rhs, spec.tableau(), spec.dt).map_err(|e| e.to_string())?;
            let mut w = stepper.work();
            let mut u = initial[s * frame..(s + 1) * frame].to_vec();
            let mut out = Vec::with_capacity(steps * frame);
            for _ in 0..steps {
                stepper.advance(&mut u, spec.steps_per_level, &mut w);
                out.extend_from_slice(&u);
            }
            Ok(out)
        })
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    let mut errs = vec![];
    for (s, traj) in solved.into_iter().enumerate() {
        let traj = traj.map_err(|e| failed(format!("solver baseline: {e}")))?;
        for t in 0..steps {
            let reference = &truth[(s * steps + t) * frame..(s * steps + t + 1) * frame];
            errs.push(nrmse_and_correlation(&traj[t * frame..(t + 1) * frame], reference));
        }
    }
    Ok((seconds, errs))
}

/// Which solver the baselines run.
enum BaselineKind {
    /// The generation setup of a Burgers dataset, run at the data's resolution and coarser.
    Burgers { setup: Setup, nu: Vec<f64> },
    /// A reduced-order benchmark's own solver at the data's resolution, with the held-out samples' parameters.
    Rom { spec: Box<ansatz_datasets::rom::RomSpec>, params: Vec<f64> },
}

/// One resolution of the solver ladder: its factor, wall seconds so far, and per-sample-step (nRMSE, Pearson
/// correlation).
type Rung = (usize, f64, Vec<(f64, f64)>);

/// The solver baselines accumulated over the chunks of a rollout.
struct Baselines {
    kind: BaselineKind,
    /// Per resolution divisor `r`: seconds and per-sample-step (nRMSE, Pearson correlation) so far.
    runs: Vec<Rung>,
    /// The finer reference the data were restricted from (its grid is `.1` times the data's), and per resolution
    /// multiplier `f`: seconds and per-sample-step nRMSE so far.
    reference: Option<(ansatz_datasets::reader::Dataset, usize)>,
    finer: Vec<Rung>,
}

impl Baselines {
    /// The baselines the data allow (a generation configuration and ν per sample), or a note why none.
    fn new(held: &HeldOut, opts: &RolloutOptions) -> Result<Result<Self, &'static str>, TrainError> {
        if !opts.baseline {
            return Ok(Err(""));
        }
        if ansatz_datasets::rom::RomPde::from_name(&held.layout.pde).is_some() {
            let Some(text) = &held.generation else {
                return Ok(Err("no generation_config in the data: solver baseline skipped"));
            };
            let spec = ansatz_datasets::rom::RomSpec::from_dataset(&held.layout.pde, text)
                .map_err(|e| bad(format!("{}: generation_config: {e}", opts.data.display())))?;
            let params = held.params_of(0..held.samples());
            if spec.rhs(&params[..params.len() / held.samples().max(1)]).is_err() {
                return Ok(Err("the data's parameters do not build its solver: solver baseline skipped"));
            }
            let kind = BaselineKind::Rom { spec: Box::new(spec), params };
            if opts.reference.is_some() {
                return Err(bad("--reference: the reduced-order benchmarks have no finer solver baseline"));
            }
            return Ok(Ok(Self { kind, runs: vec![(1, 0.0, vec![])], reference: None, finer: vec![] }));
        }
        let (Some(text), Some(nu)) = (&held.generation, &held.nu) else {
            return Ok(Err("no generation_config or nu in the data: solver baseline skipped"));
        };
        let spec = ansatz_datasets::config::load(&held.layout.pde, Some(("generation_config", text)), &[], None, None)
            .map_err(|e| bad(format!("{}: generation_config: {e}", opts.data.display())))?;
        let [ny, nx] = [held.layout.y.as_ref().map_or(1, |y| y.len()), held.layout.x.len()];
        let runs = [1usize, 2, 4]
            .into_iter()
            .filter(|&r| !(nx % r != 0 || (ny > 1 && ny % r != 0) || nx / r < 8))
            .map(|r| (r, 0.0, vec![]))
            .collect();
        let (reference, finer) = match &opts.reference {
            Some(path) => {
                let (ds, big) = open_reference(path, held, [ny, nx])?;
                let finer = std::iter::successors(Some(2usize), |f| Some(f * 2))
                    .take_while(|f| *f <= big)
                    .map(|f| (f, 0.0, vec![]))
                    .collect();
                (Some((ds, big)), finer)
            }
            None => (None, vec![]),
        };
        let kind = BaselineKind::Burgers { setup: Setup::of(&spec), nu: nu[held.range.clone()].to_vec() };
        Ok(Ok(Self { kind, runs, reference, finer }))
    }

    /// Runs every resolution on held-out samples `chunk` (offsets into the held-out range).
    fn run(
        &mut self,
        held: &HeldOut,
        chunk: Range<usize>,
        initial: &[f64],
        truth: &[f64],
        progress: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<(), TrainError> {
        let grid = [held.layout.y.as_ref().map_or(1, |y| y.len()), held.layout.x.len()];
        let first = held.range.start + chunk.start;
        for (r, seconds, errs) in &mut self.runs {
            progress(chunk.start, held.samples(), &format!("solver at 1/{r} resolution"));
            let (t, e) = match &self.kind {
                BaselineKind::Burgers { setup, nu } => {
                    solver_chunk(setup, *r, initial, truth, &nu[chunk.clone()], first, held.steps, held.channels, grid)?
                }
                BaselineKind::Rom { spec, params } => {
                    let np = params.len() / held.samples().max(1);
                    let p = &params[chunk.start * np..chunk.end * np];
                    rom_chunk(spec, p, initial, truth, held.steps, held.frame())?
                }
            };
            *seconds += t;
            errs.extend(e);
        }
        if let (Some((ds, big)), BaselineKind::Burgers { setup, nu }) = (&self.reference, &self.kind) {
            // read once for every finer rung
            let fine_initial = reference_initial(ds, first..first + chunk.len())?;
            for (f, seconds, errs) in &mut self.finer {
                progress(chunk.start, held.samples(), &format!("solver at {f}× resolution"));
                let (t, e) = finer_chunk(
                    setup,
                    *f,
                    &fine_initial,
                    *big,
                    truth,
                    &nu[chunk.clone()],
                    first,
                    held.steps,
                    held.channels,
                    grid,
                )?;
                *seconds += t;
                errs.extend(e);
            }
        }
        Ok(())
    }

    fn costs(&self, held: &HeldOut) -> Vec<SolverCost> {
        let nx = held.layout.x.len();
        let steps = held.steps;
        let cost = |fraction: f64, n: usize, seconds: f64, errs: &[(f64, f64)]| {
            let nrmse: Vec<f64> = errs.iter().map(|e| e.0).collect();
            // per sample: the first step whose correlation falls below 0.9 (the horizon if none does)
            let corr: Vec<f64> = errs
                .chunks(steps.max(1))
                .map(|c| {
                    let rho: Vec<f64> = c.iter().map(|e| e.1).collect();
                    first_or_horizon(metrics::first_below(&rho, 0.9), steps)
                })
                .collect();
            let nrmse_by_step = (0..steps)
                .map(|t| Summary::of(&errs.chunks(steps).map(|c| c[t].0).collect::<Vec<_>>()).median)
                .collect();
            SolverCost {
                fraction,
                n,
                seconds_per_frame: seconds / (held.samples() * steps) as f64,
                nrmse: Summary::of(&nrmse).mean,
                correlation_time_09: Summary::of(&corr).mean,
                nrmse_by_step,
            }
        };
        let finer = self.finer.iter().rev().map(|(f, seconds, errs)| cost(*f as f64, nx * f, *seconds, errs));
        finer.chain(self.runs.iter().map(|(r, seconds, errs)| cost(1.0 / *r as f64, nx / r, *seconds, errs))).collect()
    }
}

/// Opens the finer reference of `held` and checks that the data were restricted from it: the same PDE, fields,
/// samples and time levels, and a grid a power of two times the data's. Returns it with that factor.
fn open_reference(
    path: &Path,
    held: &HeldOut,
    grid: [usize; 2],
) -> Result<(ansatz_datasets::reader::Dataset, usize), TrainError> {
    let e = |m: String| bad(format!("--reference {}: {m}", path.display()));
    ansatz_datasets::check::check_file(path).map_err(|er| e(er.to_string()))?;
    let ds = ansatz_datasets::reader::Dataset::open(path).map_err(|er| e(er.to_string()))?;
    let layout = ds.layout().map_err(|er| e(er.to_string()))?;
    if layout.pde != held.layout.pde || ds.fields != held.fields {
        return Err(e(format!(
            "{} with fields {:?}, the data are {} with {:?}",
            layout.pde, ds.fields, held.layout.pde, held.fields
        )));
    }
    if ds.samples < held.range.end || ds.times.len() < held.times {
        return Err(e(format!(
            "{} samples and {} time levels, the data need {} and {}",
            ds.samples,
            ds.times.len(),
            held.range.end,
            held.times
        )));
    }
    let fine = [layout.y.as_ref().map_or(1, |y| y.len()), layout.x.len()];
    let big = fine[1] / grid[1].max(1);
    let fits = big >= 2
        && big.is_power_of_two()
        && fine[1] == grid[1] * big
        && (grid[0] == 1 && fine[0] == 1 || fine[0] == grid[0] * big);
    if !fits {
        return Err(e(format!(
            "grid {fine:?} is not a power of two (at least 2) times the data's {grid:?} along every axis"
        )));
    }
    Ok((ds, big))
}

fn nc<T>(path: &Path, r: Result<T, netcdf::Error>) -> Result<T, TrainError> {
    r.map_err(|e| failed(format!("{}: {e}", path.display())))
}

fn write_metrics_nc(
    path: &Path,
    c: &Curves,
    first_sample: usize,
    frame_interval: f64,
    summary: &RolloutSummary,
) -> Result<(), TrainError> {
    ansatz_datasets::quiet_hdf5();
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut f = nc(&tmp, netcdf::create_with(&tmp, netcdf::Options::NETCDF4))?;
        let (ns, nt) = (c.samples, c.steps);
        nc(&tmp, f.add_dimension("sample", ns))?;
        nc(&tmp, f.add_dimension("step", nt))?;
        nc(&tmp, f.add_dimension("spectrum_step", c.spectrum_steps.len()))?;
        nc(&tmp, f.add_dimension("band", BAND_EDGES.len() - 1))?;
        let kmax = c.spectra.first().and_then(|s| s.first()).map_or(1, |(a, _)| a.len());
        nc(&tmp, f.add_dimension("wavenumber", kmax))?;
        nc(&tmp, f.add_attribute("Conventions", "CF-1.11"))?;
        nc(&tmp, f.add_attribute("title", "Ansatz rollout metrics"))?;
        nc(&tmp, f.add_attribute("history", ansatz_datasets::schema::history().as_str()))?;
        nc(&tmp, f.add_attribute("model", summary.model.as_str()))?;
        nc(&tmp, f.add_attribute("run", summary.run.display().to_string().as_str()))?;
        nc(&tmp, f.add_attribute("data", summary.data.display().to_string().as_str()))?;
        nc(&tmp, f.add_attribute("context_frames", summary.context_frames as i32))?;
        nc(&tmp, f.add_attribute("fields", c.fields.join(" ").as_str()))?;
        nc(&tmp, f.add_attribute("band_edges", "k < 4, 4 <= k < 12, k >= 12 (shell wavenumber)"))?;
        nc(&tmp, f.add_attribute("model_seconds_per_step", summary.cost.model_seconds_per_step))?;
        nc(&tmp, f.add_attribute("ansatz_version", env!("CARGO_PKG_VERSION")))?;
        {
            let mut v = nc(&tmp, f.add_variable::<i64>("sample", &["sample"]))?;
            nc(&tmp, v.put_attribute("long_name", "sample index in the dataset"))?;
            let idx: Vec<i64> = (0..ns).map(|s| (first_sample + s) as i64).collect();
            nc(&tmp, v.put_values(&idx, ..))?;
        }
        {
            let mut v = nc(&tmp, f.add_variable::<i32>("step", &["step"]))?;
            nc(&tmp, v.put_attribute("long_name", "rollout step after the context frames"))?;
            let idx: Vec<i32> = (1..=nt as i32).collect();
            nc(&tmp, v.put_values(&idx, ..))?;
        }
        {
            let mut v = nc(&tmp, f.add_variable::<f64>("lead_time", &["step"]))?;
            nc(&tmp, v.put_attribute("long_name", "time after the last context frame"))?;
            nc(&tmp, v.put_attribute("units", "1"))?;
            let t: Vec<f64> = (1..=nt).map(|s| s as f64 * frame_interval).collect();
            nc(&tmp, v.put_values(&t, ..))?;
        }
        let put = |f: &mut netcdf::FileMut,
                   name: &str,
                   long: &str,
                   values: Vec<f64>,
                   dims: &[&str]|
         -> Result<(), TrainError> {
            let mut v = nc(&tmp, f.add_variable::<f64>(name, dims))?;
            nc(&tmp, v.put_attribute("long_name", long))?;
            nc(&tmp, v.put_values(&values, ..))
        };
        type Get = fn(&metrics::StepErrors) -> f64;
        let metrics_list: [(&str, &str, Get); 6] = [
            ("nrmse", "normalised RMSE ||p - u|| / ||u||", |e| e.nrmse),
            ("vrmse", "variance-scaled RMSE (eps 1e-7)", |e| e.vrmse),
            ("rmse", "RMSE in physical units", |e| e.rmse),
            ("linf", "maximum absolute error", |e| e.linf),
            ("pearson", "Pearson correlation (mean-centred)", |e| e.pearson),
            ("cosine", "uncentred cosine correlation", |e| e.cosine),
        ];
        for (name, long, get) in metrics_list {
            put(
                &mut f,
                name,
                &format!("{long}, all fields"),
                c.combined.iter().map(get).collect(),
                &["sample", "step"],
            )?;
            for (k, field) in c.fields.iter().enumerate() {
                put(
                    &mut f,
                    &format!("{name}_{field}"),
                    &format!("{long}, field {field}"),
                    c.per_field[k].iter().map(get).collect(),
                    &["sample", "step"],
                )?;
            }
        }
        put(
            &mut f,
            "h1_nrmse",
            "nRMSE of the gradient (central differences), mean over fields",
            c.h1.clone(),
            &["sample", "step"],
        )?;
        for (k, field) in c.fields.iter().enumerate() {
            put(
                &mut f,
                &format!("mass_drift_{field}"),
                &format!("relative drift of the integral of {field}"),
                c.mass_drift[k].clone(),
                &["sample", "step"],
            )?;
        }
        put(
            &mut f,
            "energy_drift",
            "relative drift of the integral of the squared fields",
            c.energy_drift.clone(),
            &["sample", "step"],
        )?;
        if let Some(sd) = &c.sigma_rms {
            put(
                &mut f,
                "sigma_rms",
                "RMS of the predicted standard deviation, all fields",
                sd.clone(),
                &["sample", "step"],
            )?;
        }
        {
            let blow: Vec<i32> = c.blow_up.iter().map(|b| b.map_or(-1, |s| s as i32)).collect();
            let mut v = nc(&tmp, f.add_variable::<i32>("blow_up_step", &["sample"]))?;
            nc(
                &tmp,
                v.put_attribute("long_name", "first step non-finite or above 10x the reference norm (-1: never)"),
            )?;
            nc(&tmp, v.put_values(&blow, ..))?;
        }
        {
            let st: Vec<i32> = c.spectrum_steps.iter().map(|&s| s as i32).collect();
            let mut v = nc(&tmp, f.add_variable::<i32>("spectrum_step", &["spectrum_step"]))?;
            nc(&tmp, v.put_attribute("long_name", "rollout steps at which spectra are computed"))?;
            nc(&tmp, v.put_values(&st, ..))?;
        }
        for (k, field) in c.fields.iter().enumerate() {
            let pad = |v: &Vec<f64>| {
                let mut w = v.clone();
                w.resize(kmax, f64::NAN);
                w
            };
            let pred: Vec<f64> = c.spectra.iter().flat_map(|sp| pad(&sp[k].0)).collect();
            let refr: Vec<f64> = c.spectra.iter().flat_map(|sp| pad(&sp[k].1)).collect();
            put(
                &mut f,
                &format!("spectrum_pred_{field}"),
                &format!("shell energy spectrum of the prediction, {field}, mean over samples"),
                pred,
                &["spectrum_step", "wavenumber"],
            )?;
            put(
                &mut f,
                &format!("spectrum_ref_{field}"),
                &format!("shell energy spectrum of the reference, {field}, mean over samples"),
                refr,
                &["spectrum_step", "wavenumber"],
            )?;
            let bands: Vec<f64> = c.bands.iter().flat_map(|s| s.iter().flat_map(move |b| b[k].clone())).collect();
            put(
                &mut f,
                &format!("band_error_{field}"),
                &format!("relative spectral energy error per band, {field}"),
                bands,
                &["sample", "spectrum_step", "band"],
            )?;
            let logs: Vec<f64> = c.log_spec.iter().flat_map(|s| s.iter().map(move |l| l[k])).collect();
            put(
                &mut f,
                &format!("log_spectrum_error_{field}"),
                &format!("mean |log E_pred - log E_ref| over shells, {field}"),
                logs,
                &["sample", "spectrum_step"],
            )?;
        }
    }
    std::fs::rename(&tmp, path).map_err(|e| failed(format!("{}: {e}", path.display())))
}

fn markdown(s: &RolloutSummary) -> String {
    let f = |x: f64| if x.is_finite() { format!("{x:.4}") } else { "n/a".into() };
    let st = |x: &Stat| format!("{} | {} | {} | {}", f(x.mean), f(x.median), f(x.p5), f(x.p95));
    let mut m = String::new();
    m.push_str(&format!("# Rollout of {} ({} parameters)\n\n", s.model, s.parameters));
    m.push_str(&format!(
        "Data `{}`, samples {}..{} ({}), grid {}×{}, {} context frames, {} steps of {}.\n\n",
        s.data.display(),
        s.samples.start,
        s.samples.end,
        s.samples.len(),
        s.grid[0],
        s.grid[1],
        s.context_frames,
        s.steps,
        s.frame_interval
    ));
    m.push_str("| metric | mean | median | p5 | p95 |\n|---|---|---|---|---|\n");
    for (t, x) in &s.nrmse_at {
        m.push_str(&format!("| nRMSE at step {t} | {} |\n", st(x)));
    }
    m.push_str(&format!("| nRMSE, mean over steps | {} |\n", st(&s.nrmse_mean)));
    m.push_str(&format!("| geometric mean nRMSE, first 100 steps | {} |\n", st(&s.gmean_nrmse_100)));
    if let Some(x) = &s.vrmse_6_12 {
        m.push_str(&format!("| VRMSE, steps 6–12 | {} |\n", st(x)));
    }
    if let Some(x) = &s.vrmse_13_30 {
        m.push_str(&format!("| VRMSE, steps 13–30 | {} |\n", st(x)));
    }
    m.push_str(&format!("| correlation time ρ < 0.9 (steps) | {} |\n", st(&s.correlation_time_09)));
    m.push_str(&format!("| correlation time ρ < 0.8 (steps) | {} |\n", st(&s.correlation_time_08)));
    m.push_str(&format!("| correlation time ρ < 0.5 (steps) | {} |\n", st(&s.correlation_time_05)));
    m.push_str(&format!("| valid-prediction time nRMSE > 0.5 (steps) | {} |\n", st(&s.valid_prediction_steps)));
    for (field, x) in &s.mass_drift_max {
        m.push_str(&format!("| max drift of ∫{field} | {} |\n", st(x)));
    }
    m.push_str(&format!("| max drift of ∫\\|u\\|² | {} |\n", st(&s.energy_drift_max)));
    m.push_str(&format!("| H1 nRMSE at the last step | {} |\n", st(&s.h1_nrmse_last)));
    for (b, x) in ["k < 4", "4 ≤ k < 12", "k ≥ 12"].iter().zip(&s.band_errors_last) {
        m.push_str(&format!("| spectral band error {b}, last step | {} |\n", st(x)));
    }
    m.push_str(&format!("| log-spectrum error, last step | {} |\n", st(&s.log_spectrum_error_last)));
    m.push_str(&format!(
        "| energy ratio k ≥ 12 (prediction / reference), last step | {} |\n",
        st(&s.high_k_energy_ratio_last)
    ));
    if let Some(u) = &s.uncertainty {
        for (i, t) in u.steps.iter().enumerate() {
            m.push_str(&format!("| Pearson ρ(σ, \\|error\\|) at step {t} | {} |\n", st(&u.correlation[i])));
        }
    }
    m.push_str(&format!(
        "\nCorrelation and valid-prediction times of rollouts that never cross the threshold count as {} steps.\n",
        s.steps
    ));
    m.push_str(&format!(
        "Blow-up rate {:.3}{}.\n\n",
        s.blow_up_rate,
        s.blow_up_median_step.map(|v| format!(" (median step {v})")).unwrap_or_default()
    ));
    if let Some(u) = &s.uncertainty {
        m.push_str("## Predicted uncertainty\n\n| step | mean σ | RMSE | ρ(σ, \\|error\\|) | fraction with \\|error\\| ≤ 2σ |\n|---|---|---|---|---|\n");
        for (i, t) in u.steps.iter().enumerate() {
            m.push_str(&format!(
                "| {t} | {} | {} | {} | {} |\n",
                f(u.sigma_mean[i]),
                f(u.rmse[i]),
                f(u.correlation[i].mean),
                f(u.coverage_2sigma[i])
            ));
        }
        m.push_str("\nA calibrated Gaussian σ covers 0.954 of the values within 2σ.\n\n");
    }
    m.push_str("## Cost\n\n");
    m.push_str(&format!(
        "Network: {:.3e} s per sample and step (batches of {}).\n\n",
        s.cost.model_seconds_per_step, s.cost.batch
    ));
    if !s.cost.solver.is_empty() {
        m.push_str(
            "| solver resolution | n | s per sample and frame | nRMSE vs reference | correlation time ρ < 0.9 (steps) |\n\
             |---|---|---|---|---|\n",
        );
        for c in &s.cost.solver {
            m.push_str(&format!(
                "| {} | {} | {:.3e} | {} | {:.1} |\n",
                c.fraction,
                c.n,
                c.seconds_per_frame,
                f(c.nrmse),
                c.correlation_time_09
            ));
        }
        match (s.cost.matched_fraction, s.cost.error_matched_speedup) {
            (Some(fr), Some(sp)) => m.push_str(&format!(
                "\nError-matched speed-up: {sp:.2}× against the solver at {fr} of the data resolution (the cheapest rung at least as accurate as the network; an upper bound when the rungs are far apart).\n"
            )),
            _ => m.push_str("\nNo solver resolution tried is as inaccurate as the network: no error-matched speed-up.\n"),
        }
        if let Some(sp) = s.cost.interpolated_speedup {
            m.push_str(&format!(
                "Interpolated between the rungs that bracket the network's error (log–log): {sp:.2}×.\n"
            ));
        }
        match s.cost.breakeven_rollouts {
            Some(b) => m.push_str(&format!(
                "Breakeven: {b:.0} rollouts of {} steps repay the {:.0} s of data generation and training.\n",
                s.steps,
                s.cost.upfront_seconds.unwrap_or(f64::NAN)
            )),
            None => {
                m.push_str("Breakeven: never (the network saves no time per rollout against the matched solver).\n")
            }
        }
    }
    m
}

fn first_or_horizon(v: Option<usize>, steps: usize) -> f64 {
    v.map_or(steps as f64, |s| s as f64)
}

/// Training seconds recorded in a run's `metrics.csv` (all invocations, resumes included).
fn training_seconds(run: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).ok()?;
    Some(text.lines().skip(1).filter_map(|l| l.split(',').nth(7)?.parse::<f64>().ok()).sum())
}

/// Rolls the run's network out on held-out samples and writes the report; `progress(done, total, what)`. Freed
/// buffers are kept in the process for reuse ([`ansatz_operators::memory::retain_freed_memory`]).
pub fn rollout(
    opts: &RolloutOptions,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<RolloutSummary, TrainError> {
    ansatz_operators::memory::retain_freed_memory();
    clear_output(opts)?;
    if crate::methods::rom::is_rom_run(&opts.run) {
        let trained = crate::methods::rom::RomTrained::load(&opts.run, &opts.device)?;
        return rollout_model(&trained, &trained.provenance(), opts, progress);
    }
    if crate::methods::moe::is_constrained_run(&opts.run) {
        let trained = crate::methods::moe::ConstrainedTrained::load(&opts.run, &opts.device)?;
        return rollout_model(&trained, &trained.provenance(), opts, progress);
    }
    let trained = Trained::load(&opts.run, &opts.device)?;
    rollout_model(&trained, &trained.provenance(), opts, progress)
}

/// The data a run was trained on (its `run.json`), for `ansatz rollout` without `--data`.
pub fn run_data(run: &Path) -> Result<PathBuf, TrainError> {
    if crate::methods::rom::is_rom_run(run) {
        let ipath = run.join("run.json");
        let info: crate::methods::rom::RomRunInfo = std::fs::read_to_string(&ipath)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| bad(format!("{}: {e}", ipath.display())))?;
        return Ok(info.data);
    }
    if crate::methods::moe::is_constrained_run(run) {
        let ipath = run.join("run.json");
        let info: crate::methods::moe::ConstrainedRunInfo = std::fs::read_to_string(&ipath)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| bad(format!("{}: {e}", ipath.display())))?;
        return Ok(info.data);
    }
    Ok(crate::trainer::RunInfo::load(run)?.data)
}

/// Refuses a non-empty report directory unless `force`, which empties it.
fn clear_output(opts: &RolloutOptions) -> Result<(), TrainError> {
    let out = &opts.out;
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        if !opts.force {
            return Err(bad(format!("{} exists and is not empty: pass --force to replace it", out.display())));
        }
        std::fs::remove_dir_all(out).map_err(|e| failed(format!("{}: {e}", out.display())))?;
    }
    Ok(())
}

/// The held-out trajectories a rollout is scored on, read chunk by chunk.
struct HeldOut {
    layout: Layout,
    range: Range<usize>,
    steps: usize,
    nu: Option<Vec<f64>>,
    /// Every sample's values of the model's [`TrajectoryModel::parameter_names`] (`sample × names`).
    params: Vec<f64>,
    generation: Option<String>,
    files: DataFiles,
    fields: Vec<String>,
    times: usize,
    channels: usize,
    space_len: usize,
}

impl HeldOut {
    /// Opens `opts.data` (a file or a manifest of shards) and checks it against what `model` was trained on.
    fn open(model: &dyn TrajectoryModel, prov: &Provenance, opts: &RolloutOptions) -> Result<Self, TrainError> {
        let files = DataFiles::open(&opts.data).map_err(|e| bad(e.to_string()))?;
        files.verify_checksums(&ansatz_cluster::SingleProcess).map_err(|e| bad(e.to_string()))?;
        let ds = files.head();
        let layout: Layout = ds.layout().map_err(|e| bad(e.to_string()))?;
        if ds.fields != model.fields() {
            return Err(bad(format!(
                "{}: fields {:?}, the network was trained on {:?}",
                opts.data.display(),
                ds.fields,
                model.fields()
            )));
        }
        if layout.z.is_some() {
            return Err(bad(format!(
                "{}: 3D data, the network was trained on {:?}",
                opts.data.display(),
                model.grid()
            )));
        }
        let grid = [layout.y.as_ref().map_or(1, |y| y.len()), layout.x.len()];
        if grid != model.grid() {
            return Err(bad(format!(
                "{}: grid {:?}, the network was trained on {:?}",
                opts.data.display(),
                grid,
                model.grid()
            )));
        }
        let same = std::fs::canonicalize(&opts.data).ok() == std::fs::canonicalize(&prov.data).ok();
        let mut range = if same { prov.test.clone() } else { 0..files.samples };
        if range.is_empty() {
            return Err(bad(format!("{}: no held-out samples (the run's test split is empty)", opts.data.display())));
        }
        files.check_samples(&range).map_err(|e| bad(e.to_string()))?;
        if let Some(n) = opts.samples {
            range.end = range.end.min(range.start + n.max(1));
        }
        let h = model.context_frames();
        let available = ds.times.len().saturating_sub(h);
        let steps = opts.steps.unwrap_or(available);
        if steps == 0 || steps > available {
            return Err(bad(format!(
                "{}: {} time levels leave {available} steps after {h} context frames; --steps {steps} asked",
                opts.data.display(),
                ds.times.len()
            )));
        }
        let nu = files.parameter("nu").ok();
        let names = model.parameter_names();
        let mut columns = vec![];
        for name in &names {
            columns.push(
                files.parameter(name).map_err(|_| {
                    bad(format!("{}: no per-sample `{name}`, which the model needs", opts.data.display()))
                })?,
            );
        }
        let params = (0..files.samples).flat_map(|s| columns.iter().map(move |c| c[s])).collect();
        let generation = ds.text_attribute("generation_config");
        let (fields, times, channels, space_len) = (ds.fields.clone(), ds.times.len(), ds.fields.len(), ds.space_len());
        Ok(Self { layout, range, steps, nu, params, generation, files, fields, times, channels, space_len })
    }

    fn samples(&self) -> usize {
        self.range.len()
    }

    /// The model's parameters of held-out samples `chunk` (offsets into the held-out range).
    fn params_of(&self, chunk: Range<usize>) -> Vec<f64> {
        let np = self.params.len().checked_div(self.files.samples).unwrap_or(0);
        let r = self.range.start + chunk.start..self.range.start + chunk.end;
        self.params[r.start * np..r.end * np].to_vec()
    }

    fn frame(&self) -> usize {
        self.channels * self.space_len
    }

    /// Bytes in memory per held-out sample while its chunk is processed: the trajectory (f32), the predictions,
    /// the references and σ (f64).
    fn bytes_per_sample(&self) -> usize {
        self.frame() * (self.times * 4 + 3 * self.steps * 8)
    }

    /// Reads held-out samples `chunk` (offsets into the held-out range).
    fn load(&self, chunk: Range<usize>) -> Result<Trajectories, TrainError> {
        let r = self.range.start + chunk.start..self.range.start + chunk.end;
        Trajectories::load_from(&self.files, r).map_err(|e| bad(e.to_string()))
    }
}

/// The reference frames after the context of `traj`, `samples × steps × frame`, and the last context frame of
/// each sample.
fn reference(traj: &Trajectories, h: usize, steps: usize) -> (Vec<f64>, Vec<f64>) {
    let (ns, frame) = (traj.samples(), traj.channels() * traj.space_len());
    let mut truth = vec![0f64; ns * steps * frame];
    let mut initial = vec![0f64; ns * frame];
    for s in 0..ns {
        for t in 0..steps {
            let dst = (s * steps + t) * frame;
            for (d, v) in truth[dst..dst + frame].iter_mut().zip(traj.frame(s, h + t)) {
                *d = *v as f64;
            }
        }
        for (d, v) in initial[s * frame..(s + 1) * frame].iter_mut().zip(traj.frame(s, h - 1)) {
            *d = *v as f64;
        }
    }
    (truth, initial)
}

/// Predictions, the predicted σ (if any) and the model's seconds.
type Rolled = (Vec<f64>, Option<Vec<f64>>, f64);

/// Rolls `model` out on the trajectories `traj` in batches; returns the predictions (`samples × steps ×
/// frame`), the predicted σ in the same layout for models that predict one, and the model's wall seconds in all.
/// `progress(done)` is called with the samples done after each batch.
fn predict(
    model: &dyn TrajectoryModel,
    traj: &Trajectories,
    params: &[f64],
    steps: usize,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Rolled, TrainError> {
    let np = model.parameter_names().len();
    let (ns, frame, h) = (traj.samples(), traj.channels() * traj.space_len(), model.context_frames());
    let mut pred = vec![0f64; ns * steps * frame];
    let mut sigma = model.predicts_sigma().then(|| vec![f64::NAN; ns * steps * frame]);
    let mut model_seconds = 0.0;
    let mut context = Vec::with_capacity(batch * h * frame);
    for b0 in (0..ns).step_by(batch) {
        let b = batch.min(ns - b0);
        context.clear();
        for s in b0..b0 + b {
            for t in 0..h {
                context.extend_from_slice(traj.frame(s, t));
            }
        }
        let started = Instant::now();
        let r = b0 * steps * frame..(b0 + b) * steps * frame;
        match &mut sigma {
            Some(sd) => model.predict_with_sigma(&context, b, steps, &mut pred[r.clone()], &mut sd[r])?,
            None if np > 0 => {
                model.predict_with_parameters(&context, &params[b0 * np..(b0 + b) * np], b, steps, &mut pred[r])?
            }
            None => model.predict(&context, b, steps, &mut pred[r])?,
        }
        model_seconds += started.elapsed().as_secs_f64();
        progress(b0 + b);
    }
    Ok((pred, sigma, model_seconds))
}

/// σ against the error at chosen steps, accumulated over the chunks of a rollout.
struct Calibration {
    steps: Vec<usize>,
    sum_sigma: Vec<f64>,
    sum_e2: Vec<f64>,
    covered: Vec<usize>,
    n: Vec<usize>,
    correlation: Vec<Vec<f64>>,
}

impl Calibration {
    /// At `steps` (1-based).
    fn new(steps: &[usize]) -> Self {
        let k = steps.len();
        Self {
            steps: steps.to_vec(),
            sum_sigma: vec![0.0; k],
            sum_e2: vec![0.0; k],
            covered: vec![0; k],
            n: vec![0; k],
            correlation: vec![vec![]; k],
        }
    }

    /// Adds `samples` rollouts of `total` steps.
    fn add(&mut self, pred: &[f64], truth: &[f64], sigma: &[f64], samples: usize, total: usize, frame: usize) {
        for (i, &st) in self.steps.iter().enumerate() {
            for s in 0..samples {
                let r = (s * total + st - 1) * frame..(s * total + st) * frame;
                let err: Vec<f64> = pred[r.clone()].iter().zip(&truth[r.clone()]).map(|(p, y)| (p - y).abs()).collect();
                let sd = &sigma[r];
                // values of rollouts that blew up say nothing about calibration
                for (e, d) in err.iter().zip(sd).filter(|(e, d)| e.is_finite() && d.is_finite()) {
                    self.sum_sigma[i] += d;
                    self.sum_e2[i] += e * e;
                    self.covered[i] += (*e <= 2.0 * d) as usize;
                    self.n[i] += 1;
                }
                self.correlation[i].push(metrics::step_errors(&err, sd).pearson);
            }
        }
    }

    fn finish(&self) -> Uncertainty {
        let n = |i: usize| self.n[i].max(1) as f64;
        let k = 0..self.steps.len();
        Uncertainty {
            steps: self.steps.clone(),
            sigma_mean: k.clone().map(|i| self.sum_sigma[i] / n(i)).collect(),
            rmse: k.clone().map(|i| (self.sum_e2[i] / n(i)).sqrt()).collect(),
            correlation: self.correlation.iter().map(|c| stat(c)).collect(),
            coverage_2sigma: k.map(|i| self.covered[i] as f64 / n(i)).collect(),
        }
    }
}

/// The reference solver at 1, 1/2 and 1/4 of the resolution against the model's cost and error: the
/// error-matched speed-up and the breakeven count.
fn costs(
    held: &HeldOut,
    prov: &Provenance,
    opts: &RolloutOptions,
    c: &Curves,
    solver: Vec<SolverCost>,
    model_seconds_per_step: f64,
) -> Cost {
    let steps = held.steps;
    let model_err = Summary::of(&c.combined.iter().map(|e| e.nrmse).collect::<Vec<_>>()).mean;
    let matched = solver
        .iter()
        .filter(|s| s.nrmse <= model_err || s.fraction == 1.0 && !model_err.is_finite())
        .min_by(|a, b| a.seconds_per_frame.total_cmp(&b.seconds_per_frame))
        .filter(|_| model_err.is_finite());
    // the data were generated at the finest rung: the reference's resolution when one was given
    let full = solver.iter().max_by(|a, b| a.fraction.total_cmp(&b.fraction));
    let upfront = full.and_then(|f| {
        let train_frames = (prov.train_samples * (held.times - 1)) as f64;
        training_seconds(&opts.run).map(|t| t + f.seconds_per_frame * train_frames)
    });
    // the time saved per rollout against a solver of the network's error: interpolated between rungs where two
    // bracket it, else the matched rung
    let interpolated = interpolated_cost(&solver, model_err);
    let saving =
        interpolated.or(matched.map(|m| m.seconds_per_frame)).map(|c| (c - model_seconds_per_step) * steps as f64);
    Cost {
        model_seconds_per_step,
        batch: opts.batch.max(1),
        matched_fraction: matched.map(|m| m.fraction),
        error_matched_speedup: matched.map(|m| m.seconds_per_frame / model_seconds_per_step),
        interpolated_speedup: interpolated.map(|c| c / model_seconds_per_step),
        upfront_seconds: upfront,
        breakeven_rollouts: match (upfront, saving) {
            (Some(u), Some(s)) if s > 0.0 => Some(u / s),
            _ => None,
        },
        solver,
    }
}

/// The cost per frame of a solver with error `err`, interpolated between the cheapest rung at least as accurate
/// and the most accurate rung less accurate than it: log–log, or linear in the error when the accurate rung's
/// error is zero.
fn interpolated_cost(solver: &[SolverCost], err: f64) -> Option<f64> {
    if !err.is_finite() {
        return None;
    }
    let better =
        solver.iter().filter(|s| s.nrmse <= err).min_by(|a, b| a.seconds_per_frame.total_cmp(&b.seconds_per_frame))?;
    let worse = solver.iter().filter(|s| s.nrmse > err).min_by(|a, b| a.nrmse.total_cmp(&b.nrmse))?;
    if worse.seconds_per_frame >= better.seconds_per_frame {
        return Some(better.seconds_per_frame);
    }
    let (ca, cb) = (worse.seconds_per_frame.ln(), better.seconds_per_frame.ln());
    let t = if better.nrmse > 0.0 {
        (worse.nrmse.ln() - err.ln()) / (worse.nrmse.ln() - better.nrmse.ln())
    } else {
        (worse.nrmse - err) / worse.nrmse
    };
    Some((ca + t.clamp(0.0, 1.0) * (cb - ca)).exp())
}

/// The headline numbers from the per-step curves.
fn summarise(
    model: &dyn TrajectoryModel,
    held: &HeldOut,
    opts: &RolloutOptions,
    c: &Curves,
    cost: Cost,
) -> RolloutSummary {
    let (ns, steps) = (held.samples(), held.steps);
    let nrmse_at: Vec<(usize, Stat)> = [1usize, 10, 100, steps]
        .into_iter()
        .filter(|&t| t <= steps)
        .fold(vec![], |mut v: Vec<usize>, t| {
            if !v.contains(&t) {
                v.push(t);
            }
            v
        })
        .into_iter()
        .map(|t| (t, stat(&c.column(|e| e.nrmse, t - 1))))
        .collect();
    let per_sample = |f: &dyn Fn(usize) -> f64| -> Stat { stat(&(0..ns).map(f).collect::<Vec<_>>()) };
    let window = |lo: usize, hi: usize| -> Option<Stat> {
        (steps >= lo).then(|| {
            per_sample(&|s| {
                let v = c.curve(s, |e| e.vrmse);
                let hi = hi.min(steps);
                v[lo - 1..hi].iter().sum::<f64>() / (hi - lo + 1) as f64
            })
        })
    };
    let blown: Vec<usize> = c.blow_up.iter().flatten().copied().collect();
    let last = steps - 1;
    let fields = &held.fields;
    RolloutSummary {
        run: opts.run.clone(),
        data: opts.data.clone(),
        model: model.name(),
        parameters: model.parameters(),
        fields: fields.clone(),
        grid: model.grid(),
        samples: held.range.clone(),
        context_frames: model.context_frames(),
        steps,
        frame_interval: model.frame_interval(),
        nrmse_at,
        nrmse_mean: per_sample(&|s| c.curve(s, |e| e.nrmse).iter().sum::<f64>() / steps as f64),
        gmean_nrmse_100: per_sample(&|s| metrics::geometric_mean(&c.curve(s, |e| e.nrmse)[..steps.min(100)])),
        vrmse_6_12: window(6, 12),
        vrmse_13_30: window(13, 30),
        correlation_time_08: per_sample(&|s| {
            first_or_horizon(metrics::first_below(&c.curve(s, |e| e.pearson), 0.8), steps)
        }),
        correlation_time_09: per_sample(&|s| {
            first_or_horizon(metrics::first_below(&c.curve(s, |e| e.pearson), 0.9), steps)
        }),
        correlation_time_05: per_sample(&|s| {
            first_or_horizon(metrics::first_below(&c.curve(s, |e| e.pearson), 0.5), steps)
        }),
        valid_prediction_steps: per_sample(&|s| {
            first_or_horizon(metrics::first_above(&c.curve(s, |e| e.nrmse), 0.5), steps)
        }),
        blow_up_rate: blown.len() as f64 / ns as f64,
        blow_up_median_step: (!blown.is_empty())
            .then(|| Summary::of(&blown.iter().map(|&b| b as f64).collect::<Vec<_>>()).median),
        mass_drift_max: fields
            .iter()
            .enumerate()
            .map(|(k, f)| {
                (
                    f.clone(),
                    per_sample(&|s| {
                        c.mass_drift[k][s * steps..(s + 1) * steps].iter().fold(0.0, |m: f64, v| m.max(*v))
                    }),
                )
            })
            .collect(),
        energy_drift_max: per_sample(&|s| {
            c.energy_drift[s * steps..(s + 1) * steps].iter().fold(0.0, |m: f64, v| m.max(*v))
        }),
        h1_nrmse_last: per_sample(&|s| c.h1[s * steps + last]),
        band_errors_last: (0..BAND_EDGES.len() - 1)
            .map(|b| per_sample(&|s| c.bands[s].last().map_or(f64::NAN, |x| x[0].get(b).copied().unwrap_or(f64::NAN))))
            .collect(),
        log_spectrum_error_last: per_sample(&|s| c.log_spec[s].last().map_or(f64::NAN, |x| x[0])),
        high_k_energy_ratio_last: per_sample(&|s| {
            c.ratios[s].last().and_then(|x| x[0].last().copied()).unwrap_or(f64::NAN)
        }),
        uncertainty: None,
        cost,
    }
}

/// `predictions.nc`: the rollouts in the dataset format, context frames included, written chunk by chunk.
struct Predictions {
    writer: DatasetWriter,
    /// The values of every per-sample variable, by held-out sample.
    parameters: Vec<Vec<f64>>,
    context: usize,
    steps: usize,
}

impl Predictions {
    fn create(model: &dyn TrajectoryModel, held: &HeldOut, opts: &RolloutOptions) -> Result<Self, TrainError> {
        let (ns, steps, h) = (held.samples(), held.steps, model.context_frames());
        let layout = &held.layout;
        let mut pl = layout.clone();
        pl.samples = ns;
        pl.first_sample = held.range.start as u64;
        pl.times = layout.times[..h + steps].to_vec();
        pl.context_frames = h as i32;
        pl.text.retain(|(k, _)| k != "history" && k != "title");
        pl.text.push(("title".into(), format!("{} rollout of {} ({} context frames)", model.name(), layout.pde, h)));
        pl.text.push(("history".into(), ansatz_datasets::schema::history()));
        let parameters = pl
            .parameters
            .iter()
            .map(|p| {
                let mut all = vec![];
                for shard in &held.files.shards {
                    all.extend(shard.ds.parameter(&p.name).unwrap_or_else(|_| vec![f64::NAN; shard.samples]));
                }
                all.get(held.range.clone()).map(<[f64]>::to_vec).unwrap_or_else(|| vec![f64::NAN; ns])
            })
            .collect();
        std::fs::create_dir_all(&opts.out).map_err(|e| failed(format!("{}: {e}", opts.out.display())))?;
        let writer =
            DatasetWriter::create(&opts.out.join("predictions.nc"), &pl, true).map_err(|e| failed(e.to_string()))?;
        Ok(Self { writer, parameters, context: h, steps })
    }

    /// Held-out samples `first..` (offsets into the held-out range): the context frames of `traj` and `pred`.
    fn write(&mut self, first: usize, traj: &Trajectories, pred: &[f64]) -> Result<(), TrainError> {
        let frame = traj.channels() * traj.space_len();
        let (h, steps) = (self.context, self.steps);
        let mut data = Vec::with_capacity((h + steps) * frame);
        for s in 0..traj.samples() {
            data.clear();
            for t in 0..h {
                data.extend(traj.frame(s, t).iter().map(|v| *v as f64));
            }
            data.extend_from_slice(&pred[s * steps * frame..(s + 1) * steps * frame]);
            let params: Vec<f64> = self.parameters.iter().map(|p| p[first + s]).collect();
            self.writer.write_sample(first + s, &data, &params).map_err(|e| failed(e.to_string()))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), TrainError> {
        self.writer.finish().map(|_| ()).map_err(|e| failed(e.to_string()))
    }
}

/// Error, correlation, spectra and snapshot figures, each as SVG and PNG (`figures`).
fn write_plots(
    model: &dyn TrajectoryModel,
    held: &HeldOut,
    out: &Path,
    c: &Curves,
    pred: &[f64],
    truth: &[f64],
) -> Result<(), TrainError> {
    use figures::{LineChart, Series};
    let (ns, steps, frame) = (held.samples(), held.steps, held.frame());
    let [ny, nx] = model.grid();
    let space = nx * ny;
    let name = model.name();
    let saved = |r: std::io::Result<[PathBuf; 2]>| -> Result<(), TrainError> {
        r.map(|_| ()).map_err(|e| failed(format!("{}: {e}", out.display())))
    };
    let step_label = format!("rollout step (Δt = {})", figures::tick_label(model.frame_interval()));
    let steps_axis: Vec<f64> = (1..=steps).map(|t| t as f64).collect();
    let curve = |f: fn(&metrics::StepErrors) -> f64| {
        c.mean_curve(f).into_iter().zip(&steps_axis).map(|(v, t)| (*t, v)).collect::<Vec<_>>()
    };
    saved(
        LineChart::new(
            &format!("{name}: error against step, mean over {ns} samples"),
            &step_label,
            "relative error (1)",
        )
        .log_y()
        .with(Series::new("nRMSE", curve(|e| e.nrmse)))
        .with(Series::new("VRMSE", curve(|e| e.vrmse)).dashed())
        .save(out, "error"),
    )?;
    saved(
        LineChart::new(&format!("{name}: correlation against step"), &step_label, "correlation (1)")
            .with(Series::new("Pearson", curve(|e| e.pearson)))
            .with(Series::new("cosine", curve(|e| e.cosine)).dashed())
            .save(out, "correlation"),
    )?;
    let fields = &held.fields;
    let mut spectra =
        LineChart::new(&format!("energy spectrum of {}, mean over samples", fields[0]), "wavenumber k", "E(k) (1)")
            .log_x()
            .log_y();
    for (i, st) in c.spectrum_steps.iter().enumerate() {
        let (p, u) = &c.spectra[i][0];
        let pts = |e: &Vec<f64>| e.iter().enumerate().skip(1).map(|(k, v)| (k as f64, *v)).collect::<Vec<_>>();
        spectra = spectra
            .with(Series::new(&format!("reference, step {st}"), pts(u)).colour(i))
            .with(Series::new(&format!("prediction, step {st}"), pts(p)).dashed().colour(i));
    }
    saved(spectra.save(out, "spectra"))?;
    let at = |t: usize, src: &[f64]| src[(t - 1) * frame..(t - 1) * frame + space].to_vec();
    let sample = held.range.start;
    let title = format!("{} of sample {sample}: prediction, reference and error at chosen steps", fields[0]);
    let rows = c
        .spectrum_steps
        .iter()
        .map(|&t| snapshot_row(held, fields[0].as_str(), t, &at(t, pred), &at(t, truth), [ny, nx]))
        .collect();
    saved(figures::Figure::new(&title, rows).save(out, "snapshots"))
}

/// One row of the snapshot figure: in 2D the prediction and the reference on one colour scale and their
/// difference on a diverging one; in 1D the two profiles along x and the difference.
fn snapshot_row(held: &HeldOut, field: &str, t: usize, p: &[f64], u: &[f64], grid: [usize; 2]) -> Vec<figures::Panel> {
    use figures::{FieldPanel, LineChart, Panel, Scale, Series};
    let [ny, nx] = grid;
    let lx = held.layout.extent[0];
    let ly = held.layout.extent.get(1).copied().unwrap_or(1.0);
    let err: Vec<f64> = p.iter().zip(u).map(|(a, b)| a - b).collect();
    if ny == 1 {
        let x = |i: usize| (i as f64 + 0.5) * lx / nx as f64;
        let line = |v: &[f64]| v.iter().enumerate().map(|(i, v)| (x(i), *v)).collect::<Vec<_>>();
        return vec![
            Panel::Line(Box::new(
                LineChart::new(&format!("step {t}"), "x (1)", &format!("{field} (1)"))
                    .with(Series::new("reference", line(u)))
                    .with(Series::new("prediction", line(p)).dashed()),
            )),
            Panel::Line(Box::new(
                LineChart::new(&format!("error, step {t}"), "x (1)", "prediction − reference (1)")
                    .with(Series::new("error", line(&err)).colour(3)),
            )),
        ];
    }
    let shared = Scale::for_values([p, u], false);
    let panel = |title: String, values: Vec<f64>, scale: Scale, label: &str| {
        Panel::Field(Box::new(FieldPanel { title, nx, ny, values, extent: (lx, ly), scale, label: label.into() }))
    };
    let err_scale = Scale::for_values([&err[..]], true);
    vec![
        panel(format!("prediction, step {t}"), p.to_vec(), shared, &format!("{field} (1)")),
        panel(format!("reference, step {t}"), u.to_vec(), shared, &format!("{field} (1)")),
        panel(format!("error, step {t}"), err, err_scale, "prediction − reference (1)"),
    ]
}

/// `sigma`: predicted σ against the true |error| per location of the first sample at the chosen steps (log–log,
/// with the line σ = |error|); in 1D also `sigma_profile` along x, in 2D `sigma_map` (|error| beside σ on one
/// scale at each chosen step).
fn write_sigma_plots(
    model: &dyn TrajectoryModel,
    held: &HeldOut,
    out: &Path,
    c: &Curves,
    pred: &[f64],
    truth: &[f64],
    sigma: &[f64],
) -> Result<(), TrainError> {
    use figures::{FieldPanel, Figure, LineChart, Panel, Scale, Series};
    let frame = held.frame();
    let [ny, nx] = model.grid();
    let space = nx * ny;
    let saved = |r: std::io::Result<[PathBuf; 2]>| -> Result<(), TrainError> {
        r.map(|_| ()).map_err(|e| failed(format!("{}: {e}", out.display())))
    };
    let at = |t: usize| (t - 1) * frame..(t - 1) * frame + frame;
    let sample = held.range.start;
    let mut scatter = LineChart::new(
        &format!("predicted σ against |error|, sample {sample}, all fields"),
        "|prediction − reference| (1)",
        "predicted σ (1)",
    )
    .log_x()
    .log_y();
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for (i, &t) in c.spectrum_steps.iter().enumerate() {
        let r = at(t);
        let pts: Vec<(f64, f64)> = pred[r.clone()]
            .iter()
            .zip(&truth[r.clone()])
            .zip(&sigma[r])
            .map(|((p, y), s)| ((p - y).abs(), *s))
            .filter(|(e, s)| *e > 0.0 && *s > 0.0)
            .collect();
        for (e, s) in &pts {
            lo = lo.min(e.min(*s));
            hi = hi.max(e.max(*s));
        }
        scatter = scatter.with(Series::new(&format!("step {t}"), pts).markers().colour(i));
    }
    if lo < hi {
        scatter = scatter.with(Series::new("σ = |error|", vec![(lo, lo), (hi, hi)]).colour(6).dashed());
    }
    saved(scatter.save(out, "sigma"))?;
    let fields = &held.fields;
    if ny == 1 {
        let dx = held.layout.extent[0] / nx as f64;
        let mut profile = LineChart::new(
            &format!("{}: |error| and predicted σ along x, sample {sample}", fields[0]),
            "x (1)",
            &format!("{} (1)", fields[0]),
        )
        .log_y();
        for (i, &t) in c.spectrum_steps.iter().enumerate() {
            let r = (t - 1) * frame..(t - 1) * frame + space;
            let err = pred[r.clone()].iter().zip(&truth[r.clone()]).enumerate();
            profile = profile
                .with(
                    Series::new(
                        &format!("|error|, step {t}"),
                        err.map(|(k, (p, y))| ((k as f64 + 0.5) * dx, (p - y).abs())).collect(),
                    )
                    .colour(i),
                )
                .with(
                    Series::new(
                        &format!("σ, step {t}"),
                        sigma[r].iter().enumerate().map(|(k, s)| ((k as f64 + 0.5) * dx, *s)).collect(),
                    )
                    .dashed()
                    .colour(i),
                );
        }
        saved(profile.save(out, "sigma_profile"))?;
    } else {
        let (lx, ly) = (held.layout.extent[0], held.layout.extent.get(1).copied().unwrap_or(1.0));
        let rows = c
            .spectrum_steps
            .iter()
            .map(|&t| {
                let r = (t - 1) * frame..(t - 1) * frame + space;
                let err: Vec<f64> = pred[r.clone()].iter().zip(&truth[r.clone()]).map(|(p, y)| (p - y).abs()).collect();
                let sd = sigma[r].to_vec();
                let scale = Scale::for_values([&err[..], &sd[..]], false);
                let panel = |title: String, values: Vec<f64>| {
                    Panel::Field(Box::new(FieldPanel {
                        title,
                        nx,
                        ny,
                        values,
                        extent: (lx, ly),
                        scale,
                        label: format!("{} (1)", fields[0]),
                    }))
                };
                vec![panel(format!("|error|, step {t}"), err), panel(format!("predicted σ, step {t}"), sd)]
            })
            .collect();
        saved(
            Figure::new(&format!("{}: |error| and predicted σ, sample {sample}", fields[0]), rows)
                .save(out, "sigma_map"),
        )?;
    }
    Ok(())
}

/// `report.html`: the summary, the figures inline, the data's provenance and the run's configuration.
fn write_html(
    out: &Path,
    opts: &RolloutOptions,
    held: &HeldOut,
    summary: &RolloutSummary,
    plots: bool,
) -> Result<(), TrainError> {
    let l = &held.layout;
    let mut data = vec![
        ("file".to_string(), opts.data.display().to_string()),
        ("pde".to_string(), l.pde.clone()),
        ("grid".to_string(), format!("{} × {} ({})", summary.grid[0], summary.grid[1], l.grid_type.name())),
        ("domain extent".to_string(), format!("{:?}", l.extent)),
        ("boundary conditions".to_string(), l.bc.join(", ")),
        ("held-out samples".to_string(), format!("{}..{}", held.range.start, held.range.end)),
    ];
    if let Some(seed) = l.seed {
        data.push(("seed".into(), seed.to_string()));
    }
    let mut texts = vec![];
    for (k, v) in &l.text {
        if k == "generation_config" {
            texts.push(("Data generation configuration".to_string(), v.clone()));
        } else {
            data.push((k.clone(), v.clone()));
        }
    }
    if let Ok(config) = std::fs::read_to_string(opts.run.join("config.toml")) {
        texts.insert(0, (format!("Configuration of the run {}", opts.run.display()), config));
    }
    let mut figures = vec![];
    if plots {
        let named = [
            ("error", "nRMSE and VRMSE against rollout step, mean over the held-out samples."),
            ("correlation", "Pearson and uncentred cosine correlation against step."),
            ("spectra", "Energy spectra of the first field at the chosen steps: reference solid, prediction dashed."),
            ("snapshots", "The first held-out sample at the chosen steps: prediction, reference and their difference."),
            ("sigma", "Predicted σ against the true |error| per location (log–log); the dashed line is σ = |error|."),
            ("sigma_profile", "|error| and predicted σ along x at the chosen steps."),
            ("sigma_map", "|error| beside the predicted σ on one colour scale at the chosen steps."),
        ];
        for (stem, caption) in named {
            if out.join(format!("{stem}.svg")).exists() {
                figures.push((stem.to_string(), caption.to_string()));
            }
        }
    }
    let title = format!("Rollout of {} on {}", summary.model, l.pde);
    let page = crate::report::Page {
        title: &title,
        summary_markdown: &markdown(summary),
        texts,
        tables: vec![("Data provenance".to_string(), data)],
        figures,
        links: vec![],
    };
    crate::report::write(out, &page).map(|_| ()).map_err(|e| failed(format!("{}: {e}", out.display())))
}

/// Rolls any trajectory model out on the held-out samples of `opts.data` and writes the report to `opts.out`
/// (which must be empty or missing, or `opts.force`); `prov` says where the model's training data came from.
pub fn rollout_model(
    model: &dyn TrajectoryModel,
    prov: &Provenance,
    opts: &RolloutOptions,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<RolloutSummary, TrainError> {
    clear_output(opts)?;
    let held = HeldOut::open(model, prov, opts)?;
    let (ns, steps, frame, h) = (held.samples(), held.steps, held.frame(), model.context_frames());
    let batch = opts.batch.max(1);
    // samples in memory at once: within the budget, at least one batch
    let chunk = (opts.memory_budget.saturating_mul(1 << 20) / held.bytes_per_sample().max(1)).max(batch).min(ns);
    let layout = &held.layout;
    let [ny, nx] = model.grid();
    let spacing = [layout.extent.get(1).copied().unwrap_or(1.0) / ny as f64, layout.extent[0] / nx as f64];
    let mut baselines = match Baselines::new(&held, opts)? {
        Ok(b) => Some(b),
        Err(note) => {
            if !note.is_empty() {
                progress(0, 1, note);
            }
            None
        }
    };
    let mut predictions = Predictions::create(model, &held, opts)?;
    let mut c = curves(&[], &[], &[], 0, ns, steps, &held.fields, model.grid(), spacing);
    let mut calibration = model.predicts_sigma().then(|| Calibration::new(&c.spectrum_steps));
    let mut model_seconds = 0.0;
    // the first sample's rollout (prediction, reference, σ), for the figures
    type Sample = (Vec<f64>, Vec<f64>, Option<Vec<f64>>);
    let mut first: Option<Sample> = None;
    for c0 in (0..ns).step_by(chunk) {
        let part = c0..(c0 + chunk).min(ns);
        let traj = held.load(part.clone())?;
        let (pred, sigma, seconds) = predict(model, &traj, &held.params_of(part.clone()), steps, batch, &mut |done| {
            progress(c0 + done, ns, "rollout")
        })?;
        model_seconds += seconds;
        let (truth, initial) = reference(&traj, h, steps);
        let mut cc = curves(&pred, &truth, &initial, part.len(), ns, steps, &held.fields, model.grid(), spacing);
        cc.sigma_rms = sigma.as_ref().map(|sd| {
            sd.chunks(frame).map(|f| (f.iter().map(|v| v * v).sum::<f64>() / f.len() as f64).sqrt()).collect()
        });
        c.append(cc);
        if let (Some(cal), Some(sd)) = (calibration.as_mut(), &sigma) {
            cal.add(&pred, &truth, sd, part.len(), steps, frame);
        }
        if let Some(b) = baselines.as_mut() {
            b.run(&held, part.clone(), &initial, &truth, progress)?;
        }
        predictions.write(part.start, &traj, &pred)?;
        if first.is_none() {
            let one = 0..steps * frame;
            first = Some((pred[one.clone()].to_vec(), truth[one.clone()].to_vec(), sigma.map(|sd| sd[one].to_vec())));
        }
    }
    predictions.finish()?;
    progress(0, 1, "metrics");
    let solver = baselines.map(|b| b.costs(&held)).unwrap_or_default();
    let cost = costs(&held, prov, opts, &c, solver, model_seconds / (ns * steps) as f64);
    let mut summary = summarise(model, &held, opts, &c, cost);
    summary.uncertainty = calibration.map(|cal| cal.finish());
    let (pred, truth, sigma) = first.ok_or_else(|| bad("no held-out samples"))?;

    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| failed(format!("{}: {e}", out.display())))?;
    progress(0, 1, "writing the report");
    write_metrics_nc(&out.join("metrics.nc"), &c, held.range.start, model.frame_interval(), &summary)?;
    let json = serde_json::to_string_pretty(&summary).expect("a summary serialises");
    std::fs::write(out.join("summary.json"), json).map_err(|e| failed(format!("{}: {e}", out.display())))?;
    std::fs::write(out.join("summary.md"), markdown(&summary))
        .map_err(|e| failed(format!("{}: {e}", out.display())))?;
    if opts.plots {
        progress(0, 1, "plots");
        write_plots(model, &held, out, &c, &pred, &truth)?;
        if let Some(sd) = &sigma {
            write_sigma_plots(model, &held, out, &c, &pred, &truth, sd)?;
        }
    }
    write_html(out, opts, &held, &summary, opts.plots)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(n: usize, seconds: f64, nrmse: f64) -> SolverCost {
        SolverCost {
            fraction: n as f64 / 64.0,
            n,
            seconds_per_frame: seconds,
            nrmse,
            correlation_time_09: 0.0,
            nrmse_by_step: vec![],
        }
    }

    /// Log–log between the bracketing rungs, linear in the error next to an exact rung, none outside the ladder.
    #[test]
    fn the_interpolated_cost_lies_between_the_bracketing_rungs() {
        let ladder = [rung(256, 1.0, 0.0), rung(128, 0.1, 0.2), rung(64, 0.01, 0.8), rung(32, 0.001, 1.2)];
        // half-way in log error between 0.8 and 0.2 is 0.4: half-way in log cost is 0.0316
        let c = interpolated_cost(&ladder, 0.4).unwrap();
        assert!((c - 0.1_f64.sqrt() * 0.1).abs() < 1e-12, "{c}");
        assert!((interpolated_cost(&ladder, 0.8).unwrap() - 0.01).abs() < 1e-15);
        // between the exact rung and 0.2: linear in the error
        let c = interpolated_cost(&ladder, 0.1).unwrap();
        assert!((c - (0.5 * (0.1_f64.ln() + 1.0_f64.ln())).exp()).abs() < 1e-12, "{c}");
        assert_eq!(interpolated_cost(&ladder, 2.0), None);
        assert_eq!(interpolated_cost(&ladder, f64::NAN), None);
        assert_eq!(interpolated_cost(&ladder[1..], 0.1), None);
    }
}
