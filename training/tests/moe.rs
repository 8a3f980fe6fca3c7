//! Hard-constrained learning on a small diffusion–sorption problem (32 cells, 11 levels): the mixture with one
//! expert is the single hard constraint, the gradient of the physics loss through the experts' implicit backward
//! matches central differences in f64, a short run of each variant lowers the physics loss, and an interrupted run
//! resumes exactly.

use std::path::{Path, PathBuf};

use ansatz_datasets::generate::GenerateOptions;
use ansatz_datasets::rom::{RomPde, generate_rom, load};
use ansatz_operators::flat;
use ansatz_operators::init::Init;
use ansatz_training::checkpoint::Checkpoint;
use ansatz_training::engine::Method;
use ansatz_training::methods::moe::{Constrained, MoeExperiment, load_data, train_constrained};
use ansatz_training::trainer::{Quiet, TrainOptions};
use burn::prelude::*;
use burn::tensor::DType;

fn data(dir: &Path) -> PathBuf {
    let sets = ["grid.n=32", "time.dt=0.5", "time.steps_per_level=100", "time.levels=10"].map(String::from);
    let spec = load(RomPde::DiffusionSorption1d, None, &sets, Some(6), Some(1)).unwrap();
    let path = dir.join("ds.nc");
    generate_rom(&spec, &path, &GenerateOptions::default(), |_, _| {}).unwrap();
    path
}

fn experiment(variant: &str, experts: [usize; 2], steps: usize) -> MoeExperiment {
    experiment_on(variant, &format!("[{}, {}]", experts[0], experts[1]), steps, "")
}

/// A configuration with `experts` as written in TOML and `extra` lines in `[model]`.
fn experiment_on(variant: &str, experts: &str, steps: usize, extra: &str) -> MoeExperiment {
    let text = format!(
        r#"
method = "constrained"
seed = 3
[data]
validation_samples = 2
[model]
basis = 12
width = 8
modes_x = 4
modes_t = 3
layers = 2
projection = 16
{extra}
[constraint]
variant = "{variant}"
experts = {experts}
points = 400
[schedule]
kind = "constant"
rate = 3e-3
[training]
steps = {steps}
batch = 2
checkpoint_every = 10
validate_every = 0
"#
    );
    MoeExperiment::parse(&text, "test").unwrap()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()[0]
}

/// The physics loss's gradient of a fresh f64 network (samples 0 and 2, points seed 9) against central differences
/// at five weights, to 1e-6 of the largest gradient entry.
fn assert_gradient_matches_central_differences(method: &Constrained) {
    let ad = Device::flex().autodiff();
    let plain = Device::flex();
    let model = method.build(&mut Init::new(5, &ad).with_dtype(DType::F64));
    let (loss, unconverged) = method.loss(&model, &[0, 2], 9, &ad).unwrap();
    assert_eq!(unconverged, 0);
    let g = flat::flatten_grads(&model, &loss.backward());
    let params = flat::flatten(&model);
    let at = |p: &[f64]| {
        let m = flat::unflatten(method.build(&mut Init::new(5, &plain).with_dtype(DType::F64)), p);
        scalar(method.loss(&m, &[0, 2], 9, &plain).unwrap().0)
    };
    let scale = g.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(scale > 1e-6, "a gradient to test: {scale:e}");
    let n = params.len();
    for i in [3, n / 3, n / 2, n - 5, n - 1] {
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

/// The mean physics loss of a run's first and last 5 steps (`metrics.csv`), printed with `label`.
fn first_and_last_losses(out: &Path, label: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let losses: Vec<f64> = text.lines().skip(1).filter_map(|l| l.split(',').nth(2)?.parse().ok()).collect();
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    eprintln!("{label}: physics loss {first:.4e} → {last:.4e}; {}", text.lines().last().unwrap());
    (first, last)
}

#[test]
fn one_expert_of_the_mixture_is_the_single_hard_constraint() {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    let device = Device::flex();
    let mut losses = vec![];
    for (variant, experts) in [("hard", [1, 1]), ("moe", [1, 1])] {
        let exp = experiment(variant, experts, 1);
        let (train, val) = load_data(&exp, &path).unwrap();
        let method = Constrained::new(&exp, train, val).unwrap();
        let model = method.build(&mut Init::new(7, &device));
        let (loss, _) = method.loss(&model, &[0, 1], 11, &device).unwrap();
        losses.push(scalar(loss));
    }
    assert_eq!(losses[0], losses[1]);
    assert!(losses[0].is_finite() && losses[0] > 0.0);
}

/// The loss through the basis network, the stencils, the experts (implicit backward) and the residual rows, in f64,
/// for the mixture of two experts: autodiff against central differences at a few weights of the network.
#[test]
fn the_physics_gradient_through_the_experts_matches_central_differences() {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    let mut exp = experiment("moe", [1, 2], 1);
    exp.constraint.tol = 1e-12;
    exp.constraint.max_iter = 300;
    let (train, val) = load_data(&exp, &path).unwrap();
    let method = Constrained::new(&exp, train, val).unwrap();
    assert_gradient_matches_central_differences(&method);
}

#[test]
fn each_variant_lowers_the_physics_loss_and_an_interrupted_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    for (variant, experts) in [("soft", [1, 1]), ("hard", [1, 1]), ("moe", [1, 2])] {
        let exp = experiment(variant, experts, 80);
        let out = dir.path().join(variant);
        let opts = TrainOptions::new(&path, &out);
        train_constrained(&exp, &opts, &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
        let (first, last) = first_and_last_losses(&out, variant);
        assert!(last < 0.7 * first, "{variant}: the physics loss went from {first:.4e} to {last:.4e}");
    }
    let exp = experiment("moe", [1, 2], 20);
    let whole = dir.path().join("whole");
    train_constrained(&exp, &TrainOptions::new(&path, &whole), &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
    let parts = dir.path().join("parts");
    let mut opts = TrainOptions::new(&path, &parts);
    opts.stop_after = Some(10);
    train_constrained(&exp, &opts, &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
    opts.stop_after = None;
    opts.resume = true;
    train_constrained(&exp, &opts, &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
    let a = Checkpoint::load(&whole.join("checkpoint.ckpt")).unwrap();
    let b = Checkpoint::load(&parts.join("checkpoint.ckpt")).unwrap();
    assert_eq!(a.header.step, 20);
    assert_eq!(a.params, b.params, "resumed weights differ");
    assert_eq!(a.method, b.method);
}

/// A small periodic 2D Burgers dataset (`n` × `n` cells, 5 levels, 6 samples).
fn data2d(dir: &Path, n: usize) -> PathBuf {
    let sets = [format!("grid.n={n}"), "time.t_end=0.1".into(), "time.save_every=0.025".into()];
    let spec = ansatz_datasets::config::load("burgers2d-moe", None, &sets, Some(6), Some(2)).unwrap();
    let path = dir.join("bg.nc");
    ansatz_datasets::generate::generate(&spec, &path, &GenerateOptions::default(), |_, _| {}).unwrap();
    path
}

/// The stencils of the 2D rows agree with the data's physics: the finite-volume solution's weighted residual is
/// far below that of the initial field held still (whose time derivative is zero, so that its residual is the
/// advection and diffusion terms alone). A wrong sign, axis or time scale in the stencils breaks this.
#[test]
fn the_2d_rows_see_the_finite_volume_solution_as_nearly_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = data2d(dir.path(), 16);
    let exp = experiment_on("moe", "[1, 2, 2]", 1, "modes_y = 2");
    let (train, val) = load_data(&exp, &path).unwrap();
    let method = Constrained::new(&exp, train, val).unwrap();
    let device = Device::flex();
    let set = method.validation();
    let ids = [0, 1];
    let reference = method.reference_residual(set, &ids, &device).unwrap();
    let [t, ny, nx, c] = method.problem.shape();
    assert_eq!([t, ny, nx, c], [5, 16, 16, 2]);
    let still: Vec<f32> = ids
        .iter()
        .flat_map(|&s| {
            let u0 = set.level(s, 0).to_vec();
            (0..c).flat_map(move |ch| {
                let plane = u0[ch * ny * nx..(ch + 1) * ny * nx].to_vec();
                (0..t).flat_map(move |_| plane.clone())
            })
        })
        .collect();
    let held = method.problem.residual_of(&still, &initial_cases(set, &ids), &device).unwrap();
    eprintln!("2D residuals: reference {reference:.3e}, held still {held:.3e}");
    assert!(reference < 0.05 * held, "reference {reference:.3e} against held still {held:.3e}");
}

fn initial_cases(
    set: &ansatz_training::methods::rom::Trajectories,
    ids: &[usize],
) -> Vec<ansatz_training::methods::moe::Case> {
    let j = set.param_names.iter().position(|p| p == "nu").unwrap();
    ids.iter()
        .map(|&s| ansatz_training::methods::moe::Case { initial: set.level(s, 0).to_vec(), nu: set.params_of(s)[j] })
        .collect()
}

/// The 2D loss (a 3D FNO basis of velocity fields, 2 × 2 experts on the periodic grid) against central
/// differences in f64, and a short run of the 2D mixture lowers its physics loss.
#[test]
fn the_2d_mixture_has_exact_gradients_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    let path = data2d(dir.path(), 8);
    let mut exp = experiment_on("moe", "[1, 2, 2]", 1, "modes_y = 2");
    exp.model.modes_x = 2;
    exp.constraint.points = 20;
    exp.constraint.tol = 1e-12;
    exp.constraint.max_iter = 300;
    exp.constraint.ridge = 1e-3;
    let (train, val) = load_data(&exp, &path).unwrap();
    let method = Constrained::new(&exp, train, val).unwrap();
    assert_gradient_matches_central_differences(&method);

    let mut exp = experiment_on("moe", "[1, 2, 2]", 40, "modes_y = 2");
    exp.constraint.points = 60;
    let out = dir.path().join("run2d");
    train_constrained(&exp, &TrainOptions::new(&path, &out), &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
    let (first, last) = first_and_last_losses(&out, "2D mixture");
    assert!(last < 0.7 * first, "the 2D physics loss went from {first:.4e} to {last:.4e}");
}

/// The step with the experts split between ranks (here one rank, where it is a different computation of the same
/// gradient: gathered weights, the loss's own basis cotangent plus the features' adjoint of the experts'
/// cotangents, one backward pass through the network) gives the loss and gradient of the plain autodiff path.
#[test]
fn the_expert_sharded_step_gives_the_plain_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    let mut exp = experiment("moe", [1, 2], 1);
    exp.constraint.tol = 1e-12;
    exp.constraint.max_iter = 300;
    let (train, val) = load_data(&exp, &path).unwrap();
    let method = Constrained::new(&exp, train, val).unwrap();
    let ad = Device::flex().autodiff();
    let model = method.build(&mut Init::new(5, &ad).with_dtype(DType::F64));
    let (loss, _) = method.loss(&model, &[0, 2], 9, &ad).unwrap();
    let value = scalar(loss.clone());
    let g = flat::flatten_grads(&model, &loss.backward());
    let mut sharded = vec![];
    let (v, unconverged) =
        method.step_sharded(&model, &[0, 2], 9, &ad, &ansatz_cluster::SingleProcess, &mut sharded).unwrap();
    assert_eq!(unconverged, 0);
    assert!((v - value).abs() <= 1e-12 * value.abs(), "loss {v} against {value}");
    let scale = g.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let worst = g.iter().zip(&sharded).fold(0.0_f64, |m, (a, b)| m.max((a - *b as f64).abs()));
    eprintln!("sharded step: loss {v:.6e}, largest gradient difference {worst:.2e} of {scale:.2e}");
    assert!(worst <= 1e-5 * scale, "the gradients differ by {worst:e} (largest entry {scale:e})");
}
