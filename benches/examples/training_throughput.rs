//! Training throughput (windows per second) and peak memory of one configuration per process.
//!
//! ```text
//! cargo run --release -p ansatz-benches --example training_throughput -- fno1d      # N = 256, batch 64, width 64, 16 modes
//! cargo run --release -p ansatz-benches --example training_throughput -- fno2d      # 32², batch 16, 10 frames, width 32, 8 modes
//! cargo run --release -p ansatz-benches --example training_throughput -- demo-fno   # the demo: 2 fields, 10 frames, 5-step unroll
//! cargo run --release -p ansatz-benches --example training_throughput -- demo-dymixop
//! ```
//!
//! One step = forward over the unrolled horizon, MSE loss, backward, gradients into the flat vector, Adam update,
//! parameters back into the network: the training loop's hot path. Inputs are random (throughput does not
//! depend on the values). Reports the median of 20 timed steps after 3 warm-up steps, and the peak resident
//! memory of the process.
//!
//! The same case then runs through the training engine (`ansatz_training::engine::train`, with a method whose
//! batch is the same fixed tensors), and its median step time is printed next to the hand-written loop's: the
//! engine's own cost is the difference.

use ansatz_cluster::SingleProcess;
use ansatz_operators::dymixop::DyMixOpConfig;
use ansatz_operators::flat;
use ansatz_operators::fno::FnoConfig;
use ansatz_operators::init::Init;
use ansatz_training::config::{OptimiserConfig, OptimiserKind, TrainingConfig};
use ansatz_training::engine::{self, Drills, Method, Observer, RunDir, RunOptions, Settings, StepContext};
use ansatz_training::engine::{StepOutput, StepRecord, TrainError};
use ansatz_training::model::{self, Surrogate};
use ansatz_training::optim::{self, OptimiserState};
use ansatz_training::schedule::Schedule;
use burn::prelude::*;
use std::time::Instant;

struct Case {
    model: Surrogate,
    batch: usize,
    channels: usize,
    history: usize,
    horizon: usize,
    grid: [usize; 2],
}

fn case(name: &str, init: &mut Init) -> Case {
    match name {
        "fno1d" => Case {
            model: Surrogate::Fno(FnoConfig::new(1, 1, 64, 16, 1, 4, 256, 1).with_projection(128).init(init)),
            batch: 64,
            channels: 1,
            history: 1,
            horizon: 1,
            grid: [1, 256],
        },
        "fno2d" => Case {
            model: Surrogate::Fno(FnoConfig::new(10, 1, 32, 8, 8, 4, 32, 32).with_projection(128).init(init)),
            batch: 16,
            channels: 1,
            history: 10,
            horizon: 1,
            grid: [32, 32],
        },
        "demo-fno" => Case {
            model: Surrogate::Fno(FnoConfig::new(20, 2, 32, 8, 8, 4, 32, 32).with_projection(128).init(init)),
            batch: 16,
            channels: 2,
            history: 10,
            horizon: 5,
            grid: [32, 32],
        },
        "demo-dymixop" => Case {
            model: Surrogate::DyMixOp(DyMixOpConfig::new(2, 10, 2, 32, 4, 8, 8, 32, 32).init(init)),
            batch: 16,
            channels: 2,
            history: 10,
            horizon: 5,
            grid: [32, 32],
        },
        other => panic!("unknown case '{other}': fno1d, fno2d, demo-fno, demo-dymixop"),
    }
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
        case(&self.name, init).model
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
    let mut x = input.clone();
    let mut loss: Option<Tensor<1>> = None;
    for k in 0..horizon {
        let p = model::step(model, x.clone(), channels, false);
        let l = (p.clone() - target.clone().narrow(1, k * channels, channels)).powf_scalar(2.0).mean();
        loss = Some(match loss {
            Some(a) => a + l,
            None => l,
        });
        x = model::advance(x, p, channels);
    }
    loss.expect("horizon ≥ 1")
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "fno2d".into());
    // as `ansatz train` does; ANSATZ_DEFAULT_MALLOC=1 measures glibc's defaults instead
    if std::env::var_os("ANSATZ_DEFAULT_MALLOC").is_none() {
        ansatz_operators::memory::retain_freed_memory();
    }
    let device = Device::flex().autodiff();
    let Case { mut model, batch, channels, history, horizon, grid } = case(&name, &mut Init::new(1, &device));
    let [ny, nx] = grid;
    let mut init = Init::new(2, &device);
    let input = init.uniform([batch, history * channels, ny, nx], -1.0, 1.0);
    let target = init.uniform([batch, horizon * channels, ny, nx], -1.0, 1.0);
    let config = OptimiserConfig { kind: OptimiserKind::Adam, ..Default::default() };
    let mut params: Vec<f32> = vec![];
    flat::flatten_into(&model, &mut params);
    let mut state = OptimiserState::new(params.len());
    let mut grads: Vec<f32> = vec![];
    let mut times = vec![];
    for step in 0..23 {
        let t = Instant::now();
        let g = unrolled(&model, &input, &target, channels, horizon).backward();
        flat::flatten_grads_into(&model, &g, &mut grads);
        optim::update(&config, 1e-4, &mut params, &grads, &mut state);
        model = flat::unflatten(model, &params);
        if step >= 3 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let loop_median = median(times);
    println!(
        "{name}: {} parameters, batch {batch}, horizon {horizon}: {:.1} ms/step, {:.0} windows/s ({:.0} sample-steps/s), peak RSS {:.0} MiB",
        params.len(),
        loop_median * 1e3,
        batch as f64 / loop_median,
        (batch * horizon) as f64 / loop_median,
        peak_rss_mib()
    );

    // the same steps through the engine
    let out = std::env::temp_dir().join(format!("ansatz-throughput-{}", std::process::id()));
    let opts = RunOptions { out: out.clone(), resume: false, extend: false, force: true };
    let dir = RunDir::open(&opts, String::new(), |_| unreachable!("a fresh run"), &SingleProcess).expect("run dir");
    let settings = Settings {
        seed: 1,
        training: TrainingConfig { steps: 23, batch, checkpoint_every: 1000, validate_every: 0, ..Default::default() },
        optimiser: OptimiserConfig { clip_norm: 0.0, ..config },
        schedule: Schedule::Constant { rate: 1e-4 },
    };
    let mut method = Fixed { name: name.clone(), input, target, channels, horizon, batch };
    let mut seen = Seconds(vec![]);
    engine::train(&mut method, &dir, &settings, &Device::flex(), &Drills::default(), &SingleProcess, &mut seen)
        .expect("engine run");
    let _ = std::fs::remove_dir_all(&out);
    let engine_median = median(seen.0[3..].to_vec());
    println!(
        "{name} through the engine: {:.1} ms/step ({:+.1}% against the loop above)",
        engine_median * 1e3,
        100.0 * (engine_median / loop_median - 1.0)
    );
}
