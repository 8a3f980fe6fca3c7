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
[constraint]
variant = "{variant}"
experts = [{}, {}]
points = 400
[schedule]
kind = "constant"
rate = 1e-2
[training]
steps = {steps}
batch = 2
checkpoint_every = 10
validate_every = 0
"#,
        experts[0], experts[1]
    );
    MoeExperiment::parse(&text, "test").unwrap()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()[0]
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

#[test]
fn each_variant_lowers_the_physics_loss_and_an_interrupted_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    for (variant, experts) in [("soft", [1, 1]), ("hard", [1, 1]), ("moe", [1, 2])] {
        let exp = experiment(variant, experts, 80);
        let out = dir.path().join(variant);
        let opts = TrainOptions::new(&path, &out);
        train_constrained(&exp, &opts, &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
        let text = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        let losses: Vec<f64> = text.lines().skip(1).filter_map(|l| l.split(',').nth(2)?.parse().ok()).collect();
        let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
        let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
        eprintln!("{variant}: physics loss {first:.4e} → {last:.4e}; {}", text.lines().last().unwrap());
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
