//! Training throughput of fixed benchmark cases on any device: one optimiser step is the forward pass over the
//! unrolled horizon, the MSE, the backward pass, the gradients into the flat vector, Adam, and the parameters
//! back into the network (the training loop's hot path). Inputs are random (throughput does not depend on the
//! values); the reported time is the median over the timed steps after the warm-up steps. Every step reads the
//! gradients back into host memory, so on an asynchronous device (a GPU) each timed step includes the device's
//! work and the transfers.
//!
//! The same case can then run through the training engine ([`crate::engine::train`], with a method whose batch
//! is the same fixed tensors): the difference of the two medians is the engine's own cost.
//!
//! Used by `ansatz throughput` and `benches/examples/training_throughput.rs`.

use std::time::Instant;

use ansatz_cluster::SingleProcess;
use ansatz_operators::dymixop::DyMixOpConfig;
use ansatz_operators::flat;
use ansatz_operators::fno::FnoConfig;
use ansatz_operators::init::Init;
use burn::prelude::*;
use serde::Serialize;

use crate::config::{OptimiserConfig, OptimiserKind, TrainingConfig};
use crate::engine::{self, Drills, Method, Observer, RunDir, RunOptions, Settings, StepContext};
use crate::engine::{StepOutput, StepRecord, TrainError};
use crate::model::{self, Surrogate};
use crate::optim::{self, OptimiserState};
use crate::schedule::Schedule;

/// The benchmark cases, in the order of docs/benchmarks.md.
pub const CASES: [&str; 4] = ["fno1d", "fno2d", "demo-fno", "demo-dymixop"];

/// One benchmark case: a network and the shapes of its fixed batch.
struct Case {
    description: &'static str,
    model: Surrogate,
    batch: usize,
    channels: usize,
    history: usize,
    horizon: usize,
    grid: [usize; 2],
}

fn case(name: &str, init: &mut Init) -> Option<Case> {
    Some(match name {
        "fno1d" => Case {
            description: "FNO 1D: N = 256, 1 field + x, width 64, 16 modes, 4 layers, projection 128, batch 64",
            model: Surrogate::Fno(FnoConfig::new(1, 1, 64, 16, 1, 4, 256, 1).with_projection(128).init(init)),
            batch: 64,
            channels: 1,
            history: 1,
            horizon: 1,
            grid: [1, 256],
        },
        "fno2d" => Case {
            description: "FNO 2D: 32², 10 frames + x, y, width 32, 8 modes, 4 layers, projection 128, batch 16",
            model: Surrogate::Fno(FnoConfig::new(10, 1, 32, 8, 8, 4, 32, 32).with_projection(128).init(init)),
            batch: 16,
            channels: 1,
            history: 10,
            horizon: 1,
            grid: [32, 32],
        },
        "demo-fno" => Case {
            description: "the demo FNO: 32², 2 fields × 10 frames, width 32, 8 modes, batch 16, 5-step unroll",
            model: Surrogate::Fno(FnoConfig::new(20, 2, 32, 8, 8, 4, 32, 32).with_projection(128).init(init)),
            batch: 16,
            channels: 2,
            history: 10,
            horizon: 5,
            grid: [32, 32],
        },
        "demo-dymixop" => Case {
            description: "the demo DyMixOp: 32², 2 fields × 10 frames, width 32, batch 16, 5-step unroll",
            model: Surrogate::DyMixOp(DyMixOpConfig::new(2, 10, 2, 32, 4, 8, 8, 32, 32).init(init)),
            batch: 16,
            channels: 2,
            history: 10,
            horizon: 5,
            grid: [32, 32],
        },
        _ => return None,
    })
}

/// How to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Untimed steps first (shader compilation and autotuning happen here on a GPU).
    pub warmup: usize,
    /// Timed steps (the median is reported).
    pub steps: usize,
    /// Also run the same steps through the training engine.
    pub engine: bool,
    /// After the timed steps, this many more steps with the device synchronised between the phases of the step
    /// (forward + backward, gradients to the host, optimiser, parameters back), whose medians are reported.
    pub phase_steps: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { warmup: 3, steps: 20, engine: true, phase_steps: 0 }
    }
}

/// Where the time of a step goes: medians over [`Options::phase_steps`] steps, each phase ended by a device
/// synchronisation (on the CPU backend the synchronisations cost nothing).
#[derive(Debug, Clone, Serialize)]
pub struct Phases {
    /// Building the graph, the forward pass and the backward pass, until the device is idle.
    pub forward_backward_ms: f64,
    /// Reading every gradient into the flat host vector.
    pub gradients_to_host_ms: f64,
    /// The optimiser update on the host.
    pub optimiser_ms: f64,
    /// The parameters back into the network on the device, until the device is idle.
    pub parameters_to_device_ms: f64,
    /// The sum of the four medians, and the median of the synchronised steps' totals (medians do not add up
    /// exactly).
    pub sum_ms: f64,
    pub total_ms: f64,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub case: String,
    pub description: String,
    pub parameters: usize,
    pub batch: usize,
    pub horizon: usize,
    /// Wall time of the first step (on a GPU: includes compiling its kernels).
    pub first_step_ms: f64,
    /// Median of the timed steps of the hand-written loop.
    pub ms_per_step: f64,
    /// Fastest and slowest timed step.
    pub ms_min: f64,
    pub ms_max: f64,
    pub windows_per_s: f64,
    pub sample_steps_per_s: f64,
    /// Median step time through the training engine, when measured.
    pub engine_ms_per_step: Option<f64>,
    /// Where the time goes, when measured.
    pub phases: Option<Phases>,
    /// Peak resident memory of the process so far (VmHWM), MiB.
    pub peak_rss_mib: f64,
    pub warmup: usize,
    pub steps: usize,
}

/// The benchmark step as a training method: the same fixed batch at every step.
struct Fixed {
    name: String,
    input: Tensor<4>,
    target: Tensor<4>,
    channels: usize,
    horizon: usize,
    batch: usize,
}

impl Method for Fixed {
    type Model = Surrogate;
    fn examples(&self) -> usize {
        self.batch
    }
    fn build(&self, init: &mut Init) -> Surrogate {
        // `measure` built this case before it made the method
        case(&self.name, init).expect("a case that measure() has built").model
    }
    fn step(
        &mut self,
        model: &Surrogate,
        _batch: &[usize],
        _ctx: &StepContext,
        grads: &mut Vec<f32>,
    ) -> Result<StepOutput, TrainError> {
        let loss = unrolled(model, &self.input, &self.target, self.channels, self.horizon);
        Ok(StepOutput { loss: engine::backward_into(model, loss, grads), metrics: vec![] })
    }
    fn validate(&mut self, _model: &Surrogate, _device: &Device) -> Result<Option<f64>, TrainError> {
        Ok(None)
    }
}

struct Seconds(Vec<f64>);
impl Observer for Seconds {
    fn step(&mut self, r: &StepRecord) {
        self.0.push(r.seconds);
    }
}

/// MSE over the unrolled horizon.
fn unrolled(model: &Surrogate, input: &Tensor<4>, target: &Tensor<4>, channels: usize, horizon: usize) -> Tensor<1> {
    let step_loss = |x: &Tensor<4>, k: usize| {
        let p = model::step(model, x.clone(), channels, false);
        let l = (p.clone() - target.clone().narrow(1, k * channels, channels)).powf_scalar(2.0).mean();
        (p, l)
    };
    let (p, mut loss) = step_loss(input, 0);
    let mut x = model::advance(input.clone(), p, channels);
    for k in 1..horizon {
        let (p, l) = step_loss(&x, k);
        loss = loss + l;
        x = model::advance(x, p, channels);
    }
    loss
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Peak resident memory of this process (VmHWM) in MiB; NaN where /proc is not readable.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Measures one case on `device` (without autodiff; it is added here).
pub fn measure(name: &str, device: &Device, options: &Options) -> Result<Measurement, String> {
    if options.steps == 0 {
        return Err("at least one timed step is needed".into());
    }
    let ad = device.clone().autodiff();
    let Some(Case { description, mut model, batch, channels, history, horizon, grid }) =
        case(name, &mut Init::new(1, &ad))
    else {
        return Err(format!("unknown case '{name}': {}", CASES.join(", ")));
    };
    let [ny, nx] = grid;
    let mut init = Init::new(2, &ad);
    let input = init.uniform([batch, history * channels, ny, nx], -1.0, 1.0);
    let target = init.uniform([batch, horizon * channels, ny, nx], -1.0, 1.0);
    let config = OptimiserConfig { kind: OptimiserKind::Adam, ..Default::default() };
    let mut params: Vec<f32> = vec![];
    flat::flatten_into(&model, &mut params);
    let mut state = OptimiserState::new(params.len());
    let mut grads: Vec<f32> = vec![];
    let mut times = vec![];
    let mut first = f64::NAN;
    for step in 0..options.warmup + options.steps {
        let t = Instant::now();
        let g = unrolled(&model, &input, &target, channels, horizon).backward();
        flat::flatten_grads_into(&model, &g, &mut grads);
        optim::update(&config, 1e-4, &mut params, &grads, &mut state);
        model = flat::unflatten(model, &params);
        let s = t.elapsed().as_secs_f64();
        if step == 0 {
            first = s;
        }
        if step >= options.warmup {
            times.push(s);
        }
    }
    let phases = if options.phase_steps > 0 {
        let sync = || {
            // a failed synchronisation surfaces at the next read of the device
            let _ = ad.sync();
        };
        let mut p: [Vec<f64>; 5] = Default::default();
        for _ in 0..options.phase_steps {
            sync();
            let t0 = Instant::now();
            let g = unrolled(&model, &input, &target, channels, horizon).backward();
            sync();
            let t1 = Instant::now();
            flat::flatten_grads_into(&model, &g, &mut grads);
            let t2 = Instant::now();
            optim::update(&config, 1e-4, &mut params, &grads, &mut state);
            let t3 = Instant::now();
            model = flat::unflatten(model, &params);
            sync();
            let t4 = Instant::now();
            for (v, d) in p.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0]) {
                v.push(d.as_secs_f64() * 1e3);
            }
        }
        let [a, b, c, d, e] = p.map(median);
        Some(Phases {
            forward_backward_ms: a,
            gradients_to_host_ms: b,
            optimiser_ms: c,
            parameters_to_device_ms: d,
            sum_ms: a + b + c + d,
            total_ms: e,
        })
    } else {
        None
    };
    let (lo, hi) = times.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
    let loop_median = median(times);

    let engine_ms_per_step = if options.engine {
        // the same steps through the engine, in a scratch run directory
        let out = std::env::temp_dir().join(format!("ansatz-throughput-{}-{name}", std::process::id()));
        let opts = RunOptions { out: out.clone(), resume: false, extend: false, force: true };
        let dir = RunDir::open(&opts, String::new(), |_| unreachable!("a fresh run"), &SingleProcess)
            .map_err(|e| e.message)?;
        let total = options.warmup + options.steps;
        let settings = Settings {
            seed: 1,
            training: TrainingConfig {
                steps: total,
                batch,
                checkpoint_every: total + 1,
                validate_every: 0,
                ..Default::default()
            },
            optimiser: OptimiserConfig { clip_norm: 0.0, ..config },
            schedule: Schedule::Constant { rate: 1e-4 },
        };
        let mut method = Fixed { name: name.to_string(), input, target, channels, horizon, batch };
        let mut seen = Seconds(vec![]);
        let result = engine::train(&mut method, &dir, &settings, device, &Drills::default(), &SingleProcess, &mut seen);
        let _ = std::fs::remove_dir_all(&out);
        result.map_err(|e| e.message)?;
        (seen.0.len() > options.warmup).then(|| median(seen.0[options.warmup..].to_vec()) * 1e3)
    } else {
        None
    };
    Ok(Measurement {
        case: name.to_string(),
        description: description.to_string(),
        parameters: params.len(),
        batch,
        horizon,
        first_step_ms: first * 1e3,
        ms_per_step: loop_median * 1e3,
        ms_min: lo * 1e3,
        ms_max: hi * 1e3,
        windows_per_s: batch as f64 / loop_median,
        sample_steps_per_s: (batch * horizon) as f64 / loop_median,
        engine_ms_per_step,
        phases,
        peak_rss_mib: peak_rss_mib(),
        warmup: options.warmup,
        steps: options.steps,
    })
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} parameters, batch {}, horizon {}: {:.2} ms/step (min {:.2}, max {:.2}; first step {:.0} ms), \
             {:.0} windows/s ({:.0} sample-steps/s), peak RSS {:.0} MiB",
            self.case,
            self.parameters,
            self.batch,
            self.horizon,
            self.ms_per_step,
            self.ms_min,
            self.ms_max,
            self.first_step_ms,
            self.windows_per_s,
            self.sample_steps_per_s,
            self.peak_rss_mib
        )?;
        if let Some(p) = &self.phases {
            write!(
                f,
                "; synchronised phases: forward + backward {:.2} ms, gradients to host {:.2} ms, optimiser {:.2} ms, \
                 parameters to device {:.2} ms (step {:.2} ms)",
                p.forward_backward_ms, p.gradients_to_host_ms, p.optimiser_ms, p.parameters_to_device_ms, p.total_ms
            )?;
        }
        if let Some(e) = self.engine_ms_per_step {
            write!(f, "; through the engine {e:.2} ms/step ({:+.1}%)", 100.0 * (e / self.ms_per_step - 1.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_measures_and_reports_its_size() {
        let options = Options { warmup: 1, steps: 2, engine: true, phase_steps: 2 };
        let m = measure("fno1d", &Device::flex(), &options).unwrap();
        assert_eq!(m.parameters, 549_569);
        assert_eq!((m.batch, m.horizon, m.steps), (64, 1, 2));
        assert!(m.ms_per_step > 0.0 && m.ms_min <= m.ms_per_step && m.ms_per_step <= m.ms_max);
        assert!(m.engine_ms_per_step.is_some_and(|e| e > 0.0));
        let p = m.phases.as_ref().unwrap();
        assert!(p.forward_backward_ms > 0.0 && p.optimiser_ms > 0.0 && p.total_ms >= p.forward_backward_ms, "{p:?}");
        assert!((m.windows_per_s - 64.0 / (m.ms_per_step / 1e3)).abs() < 1e-6 * m.windows_per_s);
    }

    #[test]
    fn unknown_cases_and_empty_runs_are_refused() {
        let e = measure("fno3d", &Device::flex(), &Options::default()).unwrap_err();
        assert!(e.contains("fno3d") && e.contains("demo-dymixop"), "{e}");
        let e = measure("fno1d", &Device::flex(), &Options { steps: 0, ..Options::default() }).unwrap_err();
        assert!(e.contains("timed step"), "{e}");
    }
}
