//! The cost of one frame of a solver-in-the-loop hybrid on 64² Kolmogorov flow (frames every 0.1, 13 ETDRK4 steps
//! of the pseudo-spectral Navier–Stokes solver per frame, 8 samples): the solver alone (bare and bridged), the
//! FNO correction alone, the hybrid frame, and the hybrid frame with its backward pass through network and solver.
//!
//! `cargo bench -p ansatz-benches --bench hybrid` (figures in docs/benchmarks.md).

use ansatz_datasets::config::load;
use ansatz_datasets::generate::{Setup, solve_sample, stepper};
use ansatz_operators::bridge::BridgeReport;
use ansatz_operators::init::Init;
use ansatz_solvers::prelude::*;
use ansatz_training::config::{Experiment, HybridConfig, HybridSolver};
use ansatz_training::data::Normalisation;
use ansatz_training::methods::hybrid::CoarseSolver;
use ansatz_training::model::{self, FrameShape};
use burn::prelude::*;
use burn::tensor::TensorData;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn hybrid(c: &mut Criterion) {
    let (n, batch, dt) = (64, 8, 0.1 / 13.0);
    let sets: Vec<String> =
        ["grid.n=64", "time.t_end=0.1", "time.save_every=0.1", "time.dt=0.0076923076923076927", "parameters.nu=0.001"]
            .map(String::from)
            .to_vec();
    let spec = load("navier-stokes2d", None, &sets, Some(batch), Some(1)).unwrap();
    let frames: Vec<f32> =
        (0..batch).flat_map(|s| solve_sample(&spec, s).unwrap().0.data[..n * n].to_vec()).map(|v| v as f32).collect();
    let rms = (frames.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / frames.len() as f64).sqrt();
    let norm = Normalisation { fields: vec!["omega".into()], mean: vec![0.0], scale: vec![rms] };
    let config = HybridConfig { solver: HybridSolver::Data, substeps: 13 };
    let solver = CoarseSolver::new("navier-stokes2d", Some(&spec.config_text), [n, n], 0.1, &norm, &config).unwrap();
    let nu = vec![1e-3; batch];
    let exp = Experiment::parse(
        include_str!("../../configs/train-hybrid-fno-kolmogorov.toml"),
        "configs/train-hybrid-fno-kolmogorov.toml",
    )
    .unwrap();
    let shape = FrameShape { channels: 1, ny: n, nx: n, history: 1 };
    let (plain, ad) = (Device::flex(), Device::flex().autodiff());
    let net = model::build(&exp.model, shape, 0.1, &mut Init::new(0, &plain));
    let net_ad = model::build(&exp.model, shape, 0.1, &mut Init::new(0, &ad));
    let normalised: Vec<f32> = frames.iter().map(|v| (*v as f64 / rms) as f32).collect();
    let x = |device: &Device| Tensor::<4>::from_data(TensorData::new(normalised.clone(), [batch, 1, n, n]), device);

    let bare = stepper(&Setup::of(&spec), 1e-3, dt).unwrap();
    let starts: Vec<Vec<f64>> = frames.chunks(n * n).map(|f| f.iter().map(|v| *v as f64).collect()).collect();
    let mut group = c.benchmark_group("hybrid frame, 64² Kolmogorov, 8 samples");
    group.measurement_time(Duration::from_secs(10)).sample_size(10);
    group.bench_function("solver alone (13 ETDRK4 steps, bare, one core)", |b| {
        let mut w = bare.work();
        b.iter(|| {
            for s in &starts {
                let mut u = s.clone();
                bare.advance(&mut u, 13, &mut w);
                black_box(u);
            }
        })
    });
    let report = BridgeReport::new();
    group.bench_function("solver alone (bridged, parallel)", |b| {
        b.iter(|| black_box(solver.advance(x(&plain), &nu, &report).unwrap()))
    });
    group.bench_function("FNO correction alone", |b| b.iter(|| black_box(model::step(&net, x(&plain), 1, true))));
    group.bench_function("hybrid frame (solver + FNO)", |b| {
        b.iter(|| black_box(model::step(&net, solver.advance(x(&plain), &nu, &report).unwrap(), 1, true)))
    });
    group.bench_function("hybrid frame with backward", |b| {
        b.iter(|| {
            let p = model::step(&net_ad, solver.advance(x(&ad), &nu, &report).unwrap(), 1, true);
            black_box(p.powf_scalar(2.0).mean().backward())
        })
    });
    group.finish();
}

criterion_group!(benches, hybrid);
criterion_main!(benches);
