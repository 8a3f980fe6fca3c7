//! The cost of the Jacobian penalty: one training step (objective and backward) of the 1D FNO of the JAWS study
//! (256 points, width 24, batch 8, residual, variance head) without a penalty, with the global one and with the
//! JAWS one (P = 2 Rademacher probes), at unroll horizons K = 1 and 4.
//!
//! `cargo bench -p ansatz-benches --bench jaws` (figures in docs/benchmarks.md).

use ansatz_operators::init::Init;
use ansatz_training::config::{Loss, ModelConfig};
use ansatz_training::methods::autoregressive::{Objective, objective};
use ansatz_training::methods::jaws::{self, Probe, RegularisationConfig, Regulariser};
use ansatz_training::model::{self, FrameShape};
use burn::prelude::*;
use burn::tensor::TensorData;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn penalty_cost(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let (n, batch) = (256, 8);
    let config =
        ModelConfig::Fno { width: 24, layers: 4, modes: 16, projection: 64, residual: true, variance_head: true };
    let shape = FrameShape { channels: 1, ny: 1, nx: n, history: 1 };
    let net = model::build(&config, shape, 0.0, &mut Init::new(0, &device));
    let field = |k: usize, phase: f64| -> Vec<f32> {
        (0..batch * k * n)
            .map(|i| ((i % n) as f64 * std::f64::consts::TAU / n as f64 + phase * (i / n) as f64).sin() as f32)
            .collect()
    };
    for k in [1usize, 4] {
        let x = Tensor::<4>::from_data(TensorData::new(field(1, 0.1), [batch, 1, 1, n]), &device);
        let y = Tensor::<4>::from_data(TensorData::new(field(k, 0.13), [batch, k, 1, n]), &device);
        for kind in [Regulariser::None, Regulariser::Global, Regulariser::Jaws] {
            let reg = RegularisationConfig { kind, beta: 1.0, contraction: 0.7, ..Default::default() };
            let examples: Vec<usize> = (0..batch).collect();
            c.bench_function(&format!("FNO 1D step, K={k}, penalty {kind:?}"), |b| {
                b.iter(|| {
                    let probes = if kind == Regulariser::None {
                        vec![]
                    } else {
                        jaws::batch_probes(Probe::Rademacher, 0, 0, &examples, reg.probes, [1, 1, n], &x)
                    };
                    let o = Objective {
                        channels: 1,
                        residual: true,
                        loss: Loss::GaussianNll,
                        regularisation: &reg,
                        probes,
                        solver: None,
                    };
                    let terms = objective(&net, x.clone(), y.clone(), &o).expect("a consistent objective");
                    black_box(terms.total.backward())
                })
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = penalty_cost
}
criterion_main!(benches);
