//! The engine with a method other than the autoregressive surrogate: a noisy least-squares regression
//! `y = A x + b` whose method owns an RNG (checkpointed state), a warm-up that masks the bias gradient (a
//! per-method gradient rule) and an extra logged metric. It learns, and a resumed run ends bitwise where an
//! uninterrupted one does, RNG included.

use ansatz_cluster::SingleProcess;
use ansatz_operators::init::Init;
use ansatz_training::checkpoint::Checkpoint;
use ansatz_training::config::{OptimiserConfig, OptimiserKind, TrainingConfig};
use ansatz_training::engine::{
    self, Drills, Method, Quiet, RunDir, RunOptions, Settings, StepContext, StepOutput, TrainError,
};
use ansatz_training::schedule::Schedule;
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;
use std::path::Path;

const DIN: usize = 3;
const DOUT: usize = 2;
const TRUE_A: [[f32; DIN]; DOUT] = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]];
const TRUE_B: [f32; DOUT] = [0.3, -0.2];

#[derive(Module, Debug)]
struct Affine {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 inputs; targets get fresh noise from the method's RNG at every step.
struct Regression {
    x: Vec<[f32; DIN]>,
    rng: u64,
    warmup: usize,
}

impl Regression {
    fn new() -> Self {
        let mut s = 11u64;
        let x = (0..64).map(|_| std::array::from_fn(|_| (2.0 * splitmix(&mut s) - 1.0) as f32)).collect();
        Self { x, rng: 99, warmup: 3 }
    }
}

impl Method for Regression {
    type Model = Affine;

    fn examples(&self) -> usize {
        self.x.len()
    }

    fn build(&self, init: &mut Init) -> Affine {
        Affine {
            weight: Param::from_tensor(init.uniform([DIN, DOUT], -0.5, 0.5)),
            bias: Param::from_tensor(init.uniform([DOUT], -0.5, 0.5)),
        }
    }

    fn metric_names(&self) -> Vec<String> {
        vec!["noise".into()]
    }

    fn step(
        &mut self,
        model: &Affine,
        batch: &[usize],
        ctx: &StepContext,
        grads: &mut Vec<f32>,
    ) -> Result<StepOutput, TrainError> {
        let b = batch.len();
        let mut xs = Vec::with_capacity(b * DIN);
        let mut ys = Vec::with_capacity(b * DOUT);
        let mut noise = 0.0;
        for &i in batch {
            let x = self.x[i];
            xs.extend_from_slice(&x);
            for o in 0..DOUT {
                let e = 0.01 * (2.0 * splitmix(&mut self.rng) - 1.0);
                noise += e * e;
                ys.push(TRUE_B[o] + (0..DIN).map(|k| TRUE_A[o][k] * x[k]).sum::<f32>() + e as f32);
            }
        }
        let x = Tensor::<2>::from_data(TensorData::new(xs, [b, DIN]), &ctx.device);
        let y = Tensor::<2>::from_data(TensorData::new(ys, [b, DOUT]), &ctx.device);
        let p = x.matmul(model.weight.val()) + model.bias.val().unsqueeze_dim(0);
        let loss = (p - y).powf_scalar(2.0).mean();
        let value = engine::backward_into(model, loss, grads);
        if ctx.step < self.warmup {
            // the gradient rule: the bias is frozen during the warm-up (it is the last parameter)
            let n = grads.len();
            grads[n - DOUT..].fill(0.0);
        }
        Ok(StepOutput { loss: value, metrics: vec![noise / (b * DOUT) as f64] })
    }

    fn validate(&mut self, model: &Affine, _device: &Device) -> Result<Option<f64>, TrainError> {
        let w = model.weight.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let err =
            (0..DOUT).flat_map(|o| (0..DIN).map(move |k| (o, k))).map(|(o, k)| (w[k * DOUT + o] - TRUE_A[o][k]).abs());
        Ok(Some(err.fold(0.0f32, f32::max) as f64))
    }

    fn state(&self) -> Vec<u8> {
        self.rng.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| format!("{} bytes of RNG state, 8 expected", state.len()))?;
        self.rng = u64::from_le_bytes(bytes);
        Ok(())
    }
}

fn settings(steps: usize) -> Settings {
    Settings {
        seed: 4,
        training: TrainingConfig { steps, batch: 8, checkpoint_every: 5, validate_every: 50, ..Default::default() },
        optimiser: OptimiserConfig { kind: OptimiserKind::Adam, clip_norm: 0.0, ..Default::default() },
        schedule: Schedule::Constant { rate: 0.05 },
    }
}

fn run(
    out: &Path,
    resume: bool,
    steps: usize,
    stop_after: Option<usize>,
) -> (Regression, Result<engine::TrainSummary, TrainError>) {
    let opts = RunOptions { out: out.to_path_buf(), resume, extend: false, force: false };
    let text = format!("steps = {steps}\n");
    let dir = RunDir::open(
        &opts,
        text.clone(),
        |old| {
            if old == text {
                Ok(engine::Reconciled { config_text: text.clone(), extended_from: None, note: None })
            } else {
                Err(TrainError::input("different configuration"))
            }
        },
        &SingleProcess,
    )
    .unwrap();
    let mut method = Regression::new();
    let drills = Drills { stop_after, ..Default::default() };
    let s = engine::train(&mut method, &dir, &settings(steps), &Device::flex(), &drills, &SingleProcess, &mut Quiet);
    (method, s)
}

#[test]
fn a_second_method_learns_and_resumes_exactly_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let (m_whole, s) = run(&whole, false, 200, None);
    let s = s.unwrap();
    assert!(s.validation.unwrap() < 0.02, "largest weight error {:?}", s.validation);
    assert!(s.final_loss < 1e-3, "final loss {}", s.final_loss);

    let parts = dir.path().join("parts");
    let (_, first) = run(&parts, false, 200, Some(37));
    assert!(first.unwrap().stopped_early);
    let (m_parts, second) = run(&parts, true, 200, None);
    assert_eq!(second.unwrap().steps, 200);
    let ck = |p: &Path| Checkpoint::load(&p.join("checkpoint.ckpt")).unwrap();
    assert_eq!(ck(&whole).params, ck(&parts).params, "resumed parameters differ");
    assert_eq!(ck(&whole).method, ck(&parts).method, "resumed method state differs");
    assert_eq!(m_whole.rng, m_parts.rng);

    // the method's metric is a column of the log
    let csv = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",noise"), "{csv}");
    assert_eq!(csv.lines().count(), 201);
    let noise: f64 = csv.lines().nth(1).unwrap().rsplit(',').next().unwrap().parse().unwrap();
    assert!(noise > 0.0 && noise < 1e-4, "noise column {noise}");
}

#[test]
fn the_gradient_rule_of_a_method_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("warmup");
    let (method, s) = run(&out, false, 10, Some(3));
    assert!(s.unwrap().stopped_early);
    let init = method.build(&mut Init::new(4, &Device::flex()));
    let b0 = init.bias.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    let ck = Checkpoint::load(&out.join("checkpoint.ckpt")).unwrap();
    let n = ck.params.len();
    assert_eq!(&ck.params[n - DOUT..], &b0[..], "the bias moved during the warm-up");
    let w0 = init.weight.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    assert_ne!(&ck.params[..n - DOUT], &w0[..], "the weights did not move");
}

#[test]
fn a_checkpoint_with_foreign_method_state_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run(&out, false, 10, Some(5)).1.unwrap();
    let path = out.join("checkpoint.ckpt");
    let mut ck = Checkpoint::load(&path).unwrap();
    ck.method = vec![1, 2, 3];
    ck.save(&path).unwrap();
    let e = run(&out, true, 10, None).1.unwrap_err();
    assert!(e.input && e.message.contains("checkpoint.ckpt") && e.message.contains("RNG state"), "{e}");
}
