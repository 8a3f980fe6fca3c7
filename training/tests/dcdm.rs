//! The deep conjugate direction method's training: the line-search losses' gradients (residual and energy, for
//! both networks) through the sparse matrix–vector bridge op against central differences (f64), and learning
//! tests: a small network trained on Ritz right-hand sides of four systems lowers the held-out loss below steepest
//! descent's and, in flexible CG and DCDM, needs fewer iterations than CG on a system it never saw.

use ansatz_datasets::generate::GenerateOptions;
use ansatz_datasets::ritz::{RitzPde, generate_ritz, load};
use ansatz_operators::bridge::BridgeReport;
use ansatz_operators::dcdm::{DcdmConfig, NetworkPreconditioner};
use ansatz_operators::flat;
use ansatz_operators::init::Init;
use ansatz_solvers::krylov::{Tolerance, cg, dcdm, fcg};
use ansatz_solvers::precond::Ic0;
use ansatz_training::methods::dcdm::{DcdmExperiment, LossKind, RitzData, line_search_loss, ritz_problem, train_dcdm};
use ansatz_training::trainer::{Quiet, TrainOptions};
use burn::prelude::*;
use burn::tensor::DType;
use std::path::Path;

fn ritz_file(path: &Path, sets: &[&str]) {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let spec = load(RitzPde::Poisson2d, None, &sets, None, None).unwrap();
    generate_ritz(&spec, path, &GenerateOptions::default(), |_, _| {}).unwrap();
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().as_slice::<f64>().unwrap()[0]
}

#[test]
fn the_line_search_loss_gradient_matches_central_differences() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ritz.nc");
    ritz_file(&path, &["grid.n=8", "samples=6", "systems.count=2", "lanczos.steps=20", "output.precision=\"f64\""]);
    let mut data = RitzData::load(&path).unwrap();
    data.compute_energies().unwrap();
    let residual = DcdmConfig::new(2).with_channels(3).with_fine_pairs(1).with_coarse_pairs(1).with_post_pairs(1);
    let multilevel = DcdmConfig::new(2).with_channels(3).with_levels(0).with_multilevel(true);
    for (config, kind) in [
        (&residual, LossKind::Residual),
        (&residual, LossKind::Energy),
        (&multilevel, LossKind::Residual),
        (&multilevel, LossKind::Energy),
    ] {
        gradient_check(config, &data, kind);
    }
}

fn gradient_check(config: &DcdmConfig, data: &RitzData, kind: LossKind) {
    let ad = Device::flex().autodiff();
    let net = config.init(&mut Init::new(4, &ad).with_dtype(DType::F64)).unwrap();
    let samples = [0, 2, 3, 5]; // both systems
    let report = BridgeReport::new();
    let loss = line_search_loss(&net, data, &samples, (kind, false), &ad, &report).unwrap();
    let grads = loss.backward();
    let g = flat::flatten_grads(&net, &grads);
    assert!(report.failures().is_empty());
    let theta = flat::flatten(&net);
    let plain = Device::flex();
    let template = config.init(&mut Init::new(4, &plain).with_dtype(DType::F64)).unwrap();
    let at = |values: &[f64]| {
        let m = flat::unflatten(template.clone(), values);
        scalar(line_search_loss(&m, data, &samples, (kind, false), &plain, &report).unwrap())
    };
    // three random directions: the directional derivative g · d against the central difference
    let mut state = 7u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    for _ in 0..3 {
        let d: Vec<f64> = theta.iter().map(|_| next()).collect();
        let h = 1e-6;
        let plus: Vec<f64> = theta.iter().zip(&d).map(|(t, d)| t + h * d).collect();
        let minus: Vec<f64> = theta.iter().zip(&d).map(|(t, d)| t - h * d).collect();
        let fd = (at(&plus) - at(&minus)) / (2.0 * h);
        let ad: f64 = g.iter().zip(&d).map(|(g, d)| g * d).sum();
        assert!((ad - fd).abs() <= 1e-6 * fd.abs().max(1e-3), "{kind:?}: autodiff {ad} vs central difference {fd}");
    }
}

/// Iterations to a relative residual of 1e-6 on the held-out system, and whether each converged.
#[derive(Debug)]
struct Solves {
    cg: (usize, bool),
    fcg: (usize, bool),
    dcdm: (usize, bool),
}

#[test]
fn a_trained_network_speeds_up_flexible_cg_on_an_unseen_system() {
    let s = train_and_solve("channels = 8", "", 800);
    assert!(s.fcg.0 * 3 < s.cg.0 * 2, "{s:?}");
    assert!(s.dcdm.0 < s.cg.0, "{s:?}");
}

#[test]
fn the_multilevel_network_with_the_energy_loss_cuts_cg_iterations_by_more_than_half() {
    // measured: 22 iterations for both against CG's 72 (IC(0)-PCG: 15); held-out energy loss 0.175, IC(0)'s 0.235
    let s = train_and_solve("channels = 4\nkind = \"multilevel\"\nlevels = 0", "loss = \"energy\"", 300);
    assert!(s.fcg.0 * 5 <= s.cg.0 * 2, "{s:?}");
    assert!(s.dcdm.0 * 5 <= s.cg.0 * 2, "{s:?}");
}

/// Trains a network (`model` and `training` lines added to a small configuration) for `steps` on the Ritz data of
/// four 16² systems, checks its held-out loss against steepest descent's, and solves on the fifth system.
fn train_and_solve(model: &str, training: &str, steps: usize) -> Solves {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ritz.nc");
    ritz_file(&path, &["grid.n=16", "samples=500", "systems.count=5", "lanczos.steps=100", "mask.max_solids=2"]);
    let text = format!(
        r#"
        seed = 1
        [data]
        validation_systems = 1
        [model]
        {model}
        [schedule]
        kind = "constant"
        rate = 3e-3
        [training]
        steps = {steps}
        batch = 8
        checkpoint_every = {steps}
        validate_every = 0
        validation_samples = 0
        {training}
    "#
    );
    let exp = DcdmExperiment::parse(&text, "test").unwrap();
    let energy = exp.training.loss == LossKind::Energy;
    let out = dir.path().join("run");
    let mut opts = TrainOptions::new(&path, &out);
    opts.device = Device::flex();
    let summary = train_dcdm(&exp, &opts, &ansatz_cluster::SingleProcess, &mut Quiet).unwrap();
    let validation = summary.validation.expect("a validation loss");
    // the baseline: steepest descent's direction q = b on the same held-out samples
    let data = RitzData::load(&path).unwrap();
    let ds = ansatz_datasets::reader::Dataset::open(&path).unwrap();
    let k = ds.read_static("k", 499..500).unwrap();
    let fluid = ds.read_static("fluid", 499..500).unwrap();
    let problem = ritz_problem(data.grid, 2, k.as_slice().unwrap(), fluid.as_slice().unwrap()).unwrap();
    let a = problem.assemble();
    let held = ds.read_static("b", 400..500).unwrap();
    let cells = 16 * 16;
    let ic0 = Ic0::new(&a).unwrap();
    // the loss of one line search along q, in the configured kind
    let score = |b: &[f64], q: &[f64]| {
        let mut aq = vec![0.0; b.len()];
        ansatz_solvers::linalg::LinearOperator::apply(&a, q, &mut aq);
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
        let (qb, qaq) = (dot(q, b), dot(q, &aq));
        if energy {
            let mut e = vec![0.0; b.len()];
            ansatz_solvers::krylov::pcg(&a, &ic0, b, &mut e, Tolerance::relative(1e-12, 1000)).unwrap();
            1.0 - qb * qb / (qaq * dot(b, &e))
        } else {
            b.iter().zip(&aq).map(|(x, y)| (x - qb / qaq * y).powi(2)).sum::<f64>()
        }
    };
    let mut ic_loss = 0.0;
    let mut baseline = 0.0;
    for s in 0..100 {
        let b: Vec<f64> = problem.cells().iter().map(|&c| held.as_slice().unwrap()[s * cells + c]).collect();
        baseline += score(&b, &b) / 100.0;
        let mut q = vec![0.0; b.len()];
        ansatz_solvers::precond::Preconditioner::apply(&ic0, &b, &mut q);
        ic_loss += score(&b, &q) / 100.0;
    }
    eprintln!(
        "held-out loss {validation}, IC(0) {ic_loss}, steepest descent {baseline}, training {}",
        summary.final_loss
    );
    assert!(
        validation < 0.75 * baseline,
        "held-out line-search loss {validation} against steepest descent's {baseline}"
    );
    // the trained network as a preconditioner on the held-out system (the last of the file)
    let trained = ansatz_training::methods::dcdm::load_network(&out, &Device::flex()).unwrap();
    let m =
        NetworkPreconditioner::new(trained, data.grid, problem.cells().to_vec(), Device::flex(), DType::F32).unwrap();
    // a smooth right-hand side, as a pressure solve would see
    let b: Vec<f64> = problem
        .cells()
        .iter()
        .map(|&c| {
            let (x, y) = ((c % 16) as f64 / 16.0, (c / 16) as f64 / 16.0);
            (3.0 * x).sin() * (2.0 * y).cos() + 0.5
        })
        .collect();
    let tol = Tolerance::relative(1e-6, 400);
    let count = |r: Result<ansatz_solvers::krylov::SolveInfo, ansatz_solvers::krylov::SolveError>| match r {
        Ok(i) => (i.iterations, true),
        Err(e) => (e.info().map_or(0, |i| i.iterations), false),
    };
    let solve = |f: &dyn Fn(&mut [f64]) -> (usize, bool)| f(&mut vec![0.0; b.len()]);
    let plain = solve(&|x| count(cg(&a, &b, x, tol)));
    let flexible = solve(&|x| count(fcg(&a, &m, &b, x, tol, 4)));
    let deep = solve(&|x| count(dcdm(&a, &m, &b, x, tol, 2)));
    let ic = solve(&|x| count(ansatz_solvers::krylov::pcg(&a, &Ic0::new(&a).unwrap(), &b, x, tol)));
    eprintln!("iterations (converged): cg {plain:?}, ic0-pcg {ic:?}, fcg+net {flexible:?}, dcdm {deep:?}");
    assert!(plain.1 && flexible.1, "cg {plain:?}, fcg with the network {flexible:?}");
    assert!(deep.1, "dcdm with the network {deep:?}");
    Solves { cg: plain, fcg: flexible, dcdm: deep }
}
