//! Solver-in-the-loop hybrids on small Kolmogorov flows: the unrolled loss's gradient through the network and
//! K frames of the pseudo-spectral Navier–Stokes solver matches central differences in f64, and a short run on
//! data restricted from a finer grid lowers its loss, rolls out, and resumes exactly.

use std::path::{Path, PathBuf};

use ansatz_cluster::SingleProcess;
use ansatz_datasets::config::load;
use ansatz_datasets::generate::{GenerateOptions, generate, solve_sample};
use ansatz_operators::bridge::BridgeReport;
use ansatz_operators::flat;
use ansatz_operators::init::Init;
use ansatz_training::checkpoint::Checkpoint;
use ansatz_training::config::{Experiment, HybridConfig, HybridSolver, Loss};
use ansatz_training::data::Normalisation;
use ansatz_training::methods::autoregressive::{Objective, objective};
use ansatz_training::methods::hybrid::CoarseSolver;
use ansatz_training::methods::jaws::RegularisationConfig;
use ansatz_training::model::{self, FrameShape};
use ansatz_training::rollout::{RolloutOptions, rollout};
use ansatz_training::trainer::{Quiet, TrainOptions, train};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

/// A forced flow on `n`², ν = 0.01, frames every 0.1 up to `t_end`, a fixed step of 0.025 (at `n` = 16).
fn sets(n: usize, t_end: f64) -> Vec<String> {
    [
        format!("grid.n={n}"),
        format!("time.t_end={t_end}"),
        "time.save_every=0.1".into(),
        format!("time.dt={}", 0.025 * 16.0 / n as f64),
        "parameters.nu=0.01".into(),
        "initial_condition.amplitude=2.0".into(),
    ]
    .to_vec()
}

fn experiment(kind: &str, horizon: usize, steps: usize, extra: &str) -> Experiment {
    let (width, layers) = if steps > 1 { (12, 2) } else { (6, 1) };
    Experiment::parse(
        &format!(
            "seed = 2
            [data]
            history = 1
            horizon = {horizon}
            validation = 0.2
            test = 0.2
            [model]
            kind = \"{kind}\"
            width = {width}
            layers = {layers}
            modes = 4
            residual = true
            [schedule]
            kind = \"constant\"
            rate = 3e-3
            [training]
            steps = {steps}
            batch = 2
            checkpoint_every = 4
            validate_every = 0
            [hybrid]
            solver = \"data\"
            {extra}"
        ),
        "test config",
    )
    .unwrap()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()[0]
}

/// The data loss over K = 3 frames (2 solver steps each) of a fresh f64 FNO correction, against central
/// differences at five weights.
#[test]
fn the_unrolled_gradient_through_the_solver_matches_central_differences() {
    let n = 16;
    let spec = load("navier-stokes2d", None, &sets(n, 0.3), Some(2), Some(4)).unwrap();
    let frame = n * n;
    let (mut x, mut y) = (vec![], vec![]);
    for s in 0..2 {
        let (traj, _) = solve_sample(&spec, s).unwrap();
        x.extend_from_slice(&traj.data[..frame]);
        y.extend_from_slice(&traj.data[frame..4 * frame]);
    }
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
    let norm = Normalisation { fields: vec!["omega".into()], mean: vec![0.1], scale: vec![rms] };
    let config = HybridConfig { solver: HybridSolver::Data, substeps: 2 };
    let solver = CoarseSolver::new("navier-stokes2d", Some(&spec.config_text), [n, n], 0.1, &norm, &config).unwrap();
    assert_eq!((solver.substeps(), solver.dt()), (2, 0.05));
    let normalise = |v: &[f64]| v.iter().map(|a| (a - 0.1) / rms).collect::<Vec<f64>>();
    let exp = experiment("fno", 3, 1, "substeps = 2");
    let shape = FrameShape { channels: 1, ny: n, nx: n, history: 1 };
    let build =
        |device: &Device| model::build(&exp.model, shape, 0.1, &mut Init::new(7, device).with_dtype(DType::F64));
    let reg = RegularisationConfig::default();
    let loss_on = |m: &model::Surrogate, device: &Device| {
        let input = Tensor::<4>::from_data(TensorData::new(normalise(&x), [2, 1, n, n]), (device, DType::F64));
        let target = Tensor::<4>::from_data(TensorData::new(normalise(&y), [2, 3, n, n]), (device, DType::F64));
        let report = BridgeReport::new();
        let o = Objective {
            channels: 1,
            residual: true,
            loss: Loss::Mse,
            regularisation: &reg,
            probes: vec![],
            solver: Some((&solver, vec![0.01, 0.01], &report)),
        };
        let loss = objective(m, input, target, &o).unwrap().total;
        assert!(report.is_empty());
        loss
    };
    let ad = Device::flex().autodiff();
    let net = build(&ad);
    let g = flat::flatten_grads(&net, &loss_on(&net, &ad).backward());
    let params = flat::flatten(&net);
    let plain = Device::flex();
    let at = |p: &[f64]| scalar(loss_on(&flat::unflatten(build(&plain), p), &plain));
    let scale = g.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(scale > 1e-6, "a gradient to test: {scale:e}");
    let count = params.len();
    for i in [1, count / 3, count / 2, count - 7, count - 1] {
        let h = 1e-6;
        let (mut p, mut q) = (params.clone(), params.clone());
        p[i] += h;
        q[i] -= h;
        let fd = (at(&p) - at(&q)) / (2.0 * h);
        assert!(
            (fd - g[i]).abs() <= 1e-6 * scale.max(fd.abs()),
            "weight {i}: autodiff {} vs central difference {fd}",
            g[i]
        );
    }
}

/// 10 trajectories on 32², restricted to 16² by Fourier truncation.
fn coarse_data(dir: &Path) -> PathBuf {
    let spec = load("navier-stokes2d", None, &sets(32, 1.2), Some(10), Some(1)).unwrap();
    let fine = dir.join("fine.nc");
    let opts = GenerateOptions { resume: false, force: false, history: "test".into(), range: None };
    generate(&spec, &fine, &opts, |_, _| {}).unwrap();
    let coarse = dir.join("coarse.nc");
    ansatz_datasets::coarsen::coarsen(&fine, &coarse, 2, false, |_, _| {}).unwrap();
    coarse
}

fn losses(run: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines().skip(1).filter_map(|l| l.split(',').nth(2)?.parse().ok()).collect()
}

#[test]
fn a_short_hybrid_run_learns_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = coarse_data(dir.path());
    let exp = experiment("fno", 2, 300, "");
    let whole = dir.path().join("whole");
    let s = train(&exp, &TrainOptions::new(&data, &whole), &SingleProcess, &mut Quiet).unwrap();
    assert_eq!(s.steps, 300);
    let l = losses(&whole);
    let (first, last) = (l[..5].iter().sum::<f64>() / 5.0, l[l.len() - 5..].iter().sum::<f64>() / 5.0);
    // the coarse solver alone on the same windows (the loss of a zero correction)
    let trained = ansatz_training::trainer::Trained::load(&whole, &Device::flex()).unwrap();
    let solver = trained.solver.as_ref().expect("a hybrid's solver");
    // the solver came from the coarse data's generation_config (16², the step doubled): 4 steps per frame
    assert_eq!(solver.substeps(), 4);
    let alone = solver_alone_loss(&data, solver, &trained.normalisation, trained.info.split.train.clone());
    println!("hybrid loss: first 5 steps {first:.4e}, last 5 {last:.4e}; the solver alone {alone:.4e}");
    assert!(last < 0.7 * first, "the loss fell from {first:e} to {last:e} only");
    assert!(last < 0.8 * alone, "the hybrid ({last:e}) does not beat its solver alone ({alone:e})");

    let parts = dir.path().join("parts");
    let mut opts = TrainOptions::new(&data, &parts);
    opts.stop_after = Some(13);
    train(&exp, &opts, &SingleProcess, &mut Quiet).unwrap();
    let mut opts = TrainOptions::new(&data, &parts);
    opts.resume = true;
    train(&exp, &opts, &SingleProcess, &mut Quiet).unwrap();
    let params = |run: &Path| Checkpoint::load(&run.join("checkpoint.ckpt")).unwrap().params;
    assert_eq!(params(&whole), params(&parts), "the resumed run ends elsewhere");

    // a rollout with each sample's ν, and the solver ladder from the finer reference down to 1/2 of the data
    let mut opts = RolloutOptions::new(&whole, &data, dir.path().join("report"));
    opts.reference = Some(dir.path().join("fine.nc"));
    opts.plots = false;
    let r = rollout(&opts, &mut |_, _, _| {}).unwrap();
    let ladder: Vec<(usize, f64)> = r.cost.solver.iter().map(|c| (c.n, c.nrmse)).collect();
    println!("hybrid rollout nRMSE {:.4}; solvers (n, nRMSE): {ladder:?}", r.nrmse_mean.mean);
    assert_eq!(ladder.iter().map(|c| c.0).collect::<Vec<_>>(), [32, 16, 8]);
    // the reference's own solver from its own initial frames reproduces it (up to the f32 storage)
    assert!(ladder[0].1 < 1e-5, "{ladder:?}");
    assert!(ladder[1].1 > ladder[0].1 && ladder[2].1 > ladder[1].1, "{ladder:?}");
    assert!(r.nrmse_mean.mean.is_finite() && r.nrmse_mean.mean < ladder[2].1, "{}", r.nrmse_mean.mean);
}

/// The mean squared error (normalised units) of the solver alone over two frames from every start of `samples`.
fn solver_alone_loss(data: &Path, solver: &CoarseSolver, norm: &Normalisation, samples: std::ops::Range<usize>) -> f64 {
    let ds = ansatz_datasets::reader::Dataset::open(data).unwrap();
    let w = ds.read("omega", samples.clone(), 0..ds.times.len()).unwrap();
    let (nt, frame) = (ds.times.len(), ds.space_len());
    let v: Vec<f64> = w.iter().map(|a| (a - norm.mean[0]) / norm.scale[0]).collect();
    let device = Device::flex();
    let (mut sum, mut count) = (0.0, 0);
    for s in 0..samples.len() {
        for t in 0..nt - 2 {
            let at = |k: usize| &v[(s * nt + t + k) * frame..(s * nt + t + k + 1) * frame];
            let mut x = Tensor::<4>::from_data(TensorData::new(at(0).to_vec(), [1, 1, 16, 16]), (&device, DType::F64));
            for k in 1..=2 {
                x = solver.advance(x, &[0.01], &BridgeReport::new()).unwrap();
                let p = x.clone().into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
                sum += p.iter().zip(at(k)).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / frame as f64;
                count += 1;
            }
        }
    }
    sum / count as f64
}

#[test]
fn hybrids_refuse_what_they_cannot_run() {
    let bad = |extra: &str, history: usize| {
        let text = format!(
            "[data]\nhistory = {history}\n[model]\nkind = \"fno\"\nresidual = true\n{extra}\n[hybrid]\nsolver = \"data\""
        );
        Experiment::parse(&text, "t").unwrap_err().to_string()
    };
    assert!(bad("", 2).contains("data.history = 1"), "{}", bad("", 2));
    let e =
        Experiment::parse("[model]\nkind = \"fno\"\nresidual = false\n[hybrid]\nsolver = \"data\"", "t").unwrap_err();
    assert!(e.to_string().contains("model.residual = true"), "{e}");
    let e = Experiment::parse("[hybrid]\nsolver = \"coarse\"", "t").unwrap_err();
    assert!(e.to_string().contains("hybrid.solver") || e.to_string().contains("unknown variant"), "{e}");
    let norm = Normalisation { fields: vec!["u".into()], mean: vec![0.0], scale: vec![1.0] };
    let config = HybridConfig { solver: HybridSolver::Data, substeps: 0 };
    let e = CoarseSolver::new("burgers1d", None, [1, 32], 0.1, &norm, &config).err().unwrap();
    assert!(e.to_string().contains("generation_config"), "{e}");
}
