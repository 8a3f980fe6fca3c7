//! Φ-ROM, DINo and CROM learn a small parametric Burgers problem (64 cells, 8 training μ, 30 training levels)
//! and forecast the 7 interpolation μ over 40 levels, and an interrupted Φ-ROM run resumes exactly.

use std::path::Path;

use ansatz_datasets::generate::GenerateOptions;
use ansatz_datasets::rom::{RomPde, generate_rom, load};
use ansatz_training::checkpoint::Checkpoint;
use ansatz_training::methods::rom::{RomExperiment, RomTrained, Trajectories, frame_error, train_rom};
use ansatz_training::rollout::{RolloutOptions, rollout};
use ansatz_training::trainer::{Quiet, TrainOptions};

fn data(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let write = |set: &str, name: &str| {
        let sets = ["grid.n=64", "time.levels=39", &format!("parameter.set={set}")].map(String::from);
        let spec = load(RomPde::BurgersSource1d, None, &sets, None, None).unwrap();
        let path = dir.join(name);
        generate_rom(&spec, &path, &GenerateOptions::default(), |_, _| {}).unwrap();
        path
    };
    (write("train", "train.nc"), write("interpolation", "interp.nc"))
}

fn experiment(method: &str, batch: usize, peak: f64, steps: usize) -> RomExperiment {
    let text = format!(
        r#"
method = "{method}"
[data]
train_levels = 30
[model]
latent = 4
decoder_width = 16
decoder_layers = 3
dynamics_width = 32
dynamics_depth = 3
[phirom]
warmup_epochs = 150
[inference]
init_steps = 300
[schedule]
kind = "warmup-step"
peak = {peak}
every = 10
factor = 0.985
[training]
steps = {steps}
batch = {batch}
checkpoint_every = 100
validate_every = 0
"#
    );
    RomExperiment::parse(&text, "test").unwrap()
}

/// The error of forecasting every level as the initial field (the trivial forecast a model must beat).
fn persistence_error(path: &Path) -> f64 {
    let v = Trajectories::load(path, 0, 0).unwrap();
    let mut sum = 0.0;
    for s in 0..v.count {
        for t in 0..v.levels {
            sum += frame_error(v.level(s, 0), v.level(s, t), 1);
        }
    }
    sum / (v.count * v.levels) as f64
}

fn train(exp: &RomExperiment, train: &Path, interp: &Path, out: &Path) -> ansatz_training::engine::TrainSummary {
    train_rom(exp, &TrainOptions::new(train, out), Some(interp), &ansatz_cluster::SingleProcess, &mut Quiet).unwrap()
}

#[test]
fn the_three_models_learn_and_forecast_unseen_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, interp) = data(dir.path());
    let trivial = persistence_error(&interp);
    // (CROM with the reference's projection, 20 gradient-descent steps of rate 1e-3, barely beats persistence;
    // with Gauss–Newton it is checked like the others below)
    for (method, batch, peak, bound, margin) in
        [("phirom", 240, 5e-3, 0.2, 0.8), ("dino", 8, 1e-3, 0.1, 0.7), ("crom", 240, 1e-3, 0.3, 1.0)]
    {
        let s = train(&experiment(method, batch, peak, 400), &tr, &interp, &dir.path().join(method));
        let v = s.validation.unwrap();
        eprintln!("{method}: validation relative L2 {v:.4} (persistence {trivial:.4}), {:?}", s.validation_metrics);
        assert!(v < bound && v < margin * trivial, "{method}: validation relative L2 {v} (persistence {trivial})");
        assert_eq!(s.nonfinite_total, 0);
        if method == "dino" {
            continue;
        }
        // `ansatz rollout` gives the run the common report, with the solver's cost on the same samples
        let mut opts =
            RolloutOptions::new(dir.path().join(method), &interp, dir.path().join(format!("{method}-report")));
        opts.plots = false;
        let r = rollout(&opts, &mut |_, _, _| {}).unwrap();
        assert_eq!((r.model.as_str(), r.samples.clone(), r.steps, r.context_frames), (method, 0..7, 39, 1));
        let mean = r.nrmse_mean.mean;
        assert!((mean - v).abs() < 0.05, "{method}: rollout nRMSE {mean} against validation {v}");
        let solver = &r.cost.solver[0];
        assert!(solver.nrmse < 1e-6 && solver.seconds_per_frame > 0.0, "{solver:?}");
        // the forecast's latents decode anywhere: at the grid's cell centres they give the rollout's frames
        let model = RomTrained::load(&dir.path().join(method), &burn::prelude::Device::flex()).unwrap();
        let v = Trajectories::load(&interp, 0, 0).unwrap();
        let latents = model.forecast_latents(v.level(0, 0), v.params_of(0), 1, 3).unwrap();
        let centres: Vec<f64> = (0..64).map(|i| (i as f64 + 0.5) * 100.0 / 64.0).collect();
        let on_grid = model.decode_points(&latents, &centres);
        let mut frames = vec![0.0; 3 * 64];
        use ansatz_training::rollout::TrajectoryModel;
        model.predict_with_parameters(v.level(0, 0), v.params_of(0), 1, 3, &mut frames).unwrap();
        for (a, b) in on_grid[64..].iter().zip(&frames) {
            assert!((*a as f64 - b).abs() < 1e-5 * b.abs().max(1.0), "{a} against {b}");
        }
        let between: Vec<f64> = (0..63).map(|i| (i as f64 + 1.0) * 100.0 / 64.0).collect();
        assert!(model.decode_points(&latents, &between).iter().all(|x| x.is_finite()));
    }
    // CROM with the Gauss–Newton projection
    let mut exp = experiment("crom", 240, 1e-3, 400);
    exp.inference.project = ansatz_training::methods::rom::LatentFit::GaussNewton;
    exp.inference.project_steps = 5;
    let v = train(&exp, &tr, &interp, &dir.path().join("crom-gn")).validation.unwrap();
    eprintln!("crom, Gauss–Newton projection: validation relative L2 {v:.4}");
    assert!(v < 0.3 && v < 0.7 * trivial, "CROM with Gauss–Newton: {v} (persistence {trivial})");
}

#[test]
fn an_interrupted_phirom_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, interp) = data(dir.path());
    // across the end of the warm-up (epoch 150), with a checkpoint at 100
    let exp = experiment("phirom", 240, 5e-3, 200);
    let whole = dir.path().join("whole");
    train(&exp, &tr, &interp, &whole);
    let parts = dir.path().join("parts");
    let mut opts = TrainOptions::new(&tr, &parts);
    opts.stop_after = Some(100);
    train_rom(&exp, &opts, Some(&interp), &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
    opts.stop_after = None;
    opts.resume = true;
    train_rom(&exp, &opts, Some(&interp), &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
    let a = Checkpoint::load(&whole.join("checkpoint.ckpt")).unwrap();
    let b = Checkpoint::load(&parts.join("checkpoint.ckpt")).unwrap();
    assert_eq!(a.header.step, 200);
    assert_eq!(a.params, b.params, "resumed weights differ");
    assert_eq!(a.method, b.method);
}

/// The viscous Burgers equation (our finite-volume and spectral solvers, ν per sample) as the full-order problem:
/// Φ-ROM trains through its right-hand side and CROM forecasts with its stepper.
#[test]
fn phirom_and_crom_take_the_viscous_burgers_solvers() {
    let dir = tempfile::tempdir().unwrap();
    for scheme in ["fv-muscl", "spectral"] {
        let sets = [
            "grid.n=32",
            "time.t_end=0.2",
            "time.save_every=0.02",
            &format!("scheme.name={scheme}"),
            "parameters.nu={ uniform = [0.01, 0.03] }",
        ]
        .map(String::from);
        let spec = ansatz_datasets::config::load("burgers1d", None, &sets, Some(6), Some(2)).unwrap();
        let path = dir.path().join(format!("{scheme}.nc"));
        ansatz_datasets::generate::generate(&spec, &path, &GenerateOptions::default(), |_, _| {}).unwrap();
        for (method, steps) in [("phirom", 60), ("crom", 30)] {
            let mut exp = experiment(method, 30, 5e-3, steps);
            exp.data.train_levels = 6;
            exp.phirom.warmup_epochs = 20;
            exp.phirom.gamma = 0.2;
            let out = dir.path().join(format!("{scheme}-{method}"));
            let s = train_rom(&exp, &TrainOptions::new(&path, &out), None, &ansatz_cluster::SingleProcess, &mut Quiet)
                .unwrap();
            let v = s.validation.unwrap();
            assert!(v.is_finite() && v < 1.0, "{scheme} {method}: validation {v}");
            assert_eq!(s.nonfinite_total, 0, "{scheme} {method}");
        }
    }
}
