//! JAWS end to end on a tiny 1D Burgers dataset: a run with the variance head, the heteroscedastic likelihood
//! and the spatially weighted Jacobian penalty trains without non-finite losses, logs its terms, resumes
//! bitwise, and its rollout reports the predicted σ against the error.

use ansatz_cluster::SingleProcess;
use ansatz_datasets::config::load;
use ansatz_datasets::generate::{GenerateOptions, generate};
use ansatz_training::checkpoint::Checkpoint;
use ansatz_training::config::Experiment;
use ansatz_training::rollout::{RolloutOptions, rollout};
use ansatz_training::trainer::{Quiet, TrainOptions, train};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// 12 finite-volume 1D Burgers trajectories on 32 points with steep fronts, 17 frames each.
fn dataset() -> &'static Path {
    static DATA: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DATA
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("shocks.nc");
            let sets: Vec<String> = ["grid.n=32", "time.t_end=0.8", "time.save_every=0.05", "parameters.nu=0.002"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let spec = load("burgers1d-shocks", None, &sets, Some(12), Some(4)).unwrap();
            let opts = GenerateOptions { resume: false, force: false, history: "test".into(), range: None };
            generate(&spec, &path, &opts, |_, _| {}).unwrap();
            (dir, path)
        })
        .1
}

fn experiment(kind: &str, regulariser: &str, steps: usize) -> Experiment {
    Experiment::parse(
        &format!(
            "seed = 3
            [data]
            history = 1
            horizon = 2
            validation = 0.2
            test = 0.2
            [model]
            kind = \"{kind}\"
            width = 8
            layers = 2
            modes = 6
            residual = true
            variance_head = true
            [schedule]
            kind = \"constant\"
            rate = 3e-3
            [training]
            steps = {steps}
            batch = 4
            loss = \"gaussian-nll\"
            checkpoint_every = 4
            validate_every = 6
            [regularisation]
            kind = \"{regulariser}\"
            beta = 1.0
            probes = 2"
        ),
        "test config",
    )
    .unwrap()
}

fn params(run: &Path) -> Vec<f32> {
    Checkpoint::load(&run.join("checkpoint.ckpt")).unwrap().params
}

/// The named columns of `metrics.csv`, one vector per row.
fn columns(run: &Path, names: &[&str]) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let idx: Vec<usize> = names
        .iter()
        .map(|n| header.iter().position(|h| h == n).unwrap_or_else(|| panic!("no column {n} in {header:?}")))
        .collect();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            idx.iter().map(|&i| f[i].parse::<f64>().unwrap()).collect()
        })
        .collect()
}

#[test]
fn a_jaws_run_trains_logs_its_terms_and_resumes_exactly() {
    for kind in ["fno", "dymixop"] {
        let dir = tempfile::tempdir().unwrap();
        let exp = experiment(kind, "jaws", 10);
        let whole = dir.path().join("whole");
        let s = train(&exp, &TrainOptions::new(dataset(), &whole), &SingleProcess, &mut Quiet).unwrap();
        assert_eq!((s.steps, s.nonfinite_total), (10, 0), "{kind}: {s:?}");
        assert!(s.final_loss.is_finite() && s.validation.is_some_and(f64::is_finite), "{kind}: {s:?}");
        let rows = columns(&whole, &["loss", "fit", "penalty", "log_var"]);
        assert_eq!(rows.len(), 10);
        for r in &rows {
            assert!(r.iter().all(|v| v.is_finite()), "{kind}: {r:?}");
            // the loss is the data term plus the penalty; the penalty is never negative; s is inside its bounds
            assert!((r[0] - r[1] - r[2]).abs() <= 1e-4 * r[0].abs().max(1.0), "{kind}: {r:?}");
            assert!(r[2] >= 0.0 && (-10.0..=2.0).contains(&r[3]), "{kind}: {r:?}");
        }

        let parts = dir.path().join("parts");
        let mut opts = TrainOptions::new(dataset(), &parts);
        opts.stop_after = Some(5);
        train(&exp, &opts, &SingleProcess, &mut Quiet).unwrap();
        let mut opts = TrainOptions::new(dataset(), &parts);
        opts.resume = true;
        train(&exp, &opts, &SingleProcess, &mut Quiet).unwrap();
        assert_eq!(params(&whole), params(&parts), "{kind}: resumed parameters differ");
        assert_eq!(columns(&whole, &["penalty"]), columns(&parts, &["penalty"]), "{kind}: penalties differ");
    }
}

#[test]
fn a_jaws_run_learns_and_the_penalty_acts() {
    // the same run with and without the penalty: both learn (the likelihood falls), and the penalised one ends
    // with a smaller penalty than the unpenalised network would pay
    let dir = tempfile::tempdir().unwrap();
    let jaws = dir.path().join("jaws");
    train(&experiment("fno", "jaws", 60), &TrainOptions::new(dataset(), &jaws), &SingleProcess, &mut Quiet).unwrap();
    let fit = columns(&jaws, &["fit"]).into_iter().map(|r| r[0]).collect::<Vec<_>>();
    let (head, tail) = (fit[..5].iter().sum::<f64>() / 5.0, fit[fit.len() - 5..].iter().sum::<f64>() / 5.0);
    assert!(tail < head - 0.5, "the likelihood does not fall: {head} -> {tail}");
    let pen = columns(&jaws, &["penalty"]).into_iter().map(|r| r[0]).collect::<Vec<_>>();
    assert!(pen.iter().all(|p| p.is_finite() && *p >= 0.0));

    // the rollout reports σ against the error
    let report = dir.path().join("report");
    let mut opts = RolloutOptions::new(&jaws, dataset(), &report);
    opts.steps = Some(12);
    opts.baseline = false;
    let s = rollout(&opts, &mut |_, _, _| {}).unwrap();
    let u = s.uncertainty.as_ref().expect("a variance head gives an uncertainty report");
    assert_eq!(u.steps, vec![1, 3, 6, 12]);
    for i in 0..u.steps.len() {
        assert!(u.sigma_mean[i] > 0.0 && u.rmse[i] > 0.0, "{u:?}");
        assert!((0.0..=1.0).contains(&u.coverage_2sigma[i]), "{u:?}");
    }
    assert!(s.high_k_energy_ratio_last.mean.is_finite() && s.high_k_energy_ratio_last.mean > 0.0, "{s:?}");
    for f in ["sigma.png", "sigma_profile.png"] {
        assert!(report.join(f).is_file(), "{f} missing");
    }
    let m = netcdf::open(report.join("metrics.nc")).unwrap();
    let v = m.variable("sigma_rms").expect("σ per sample and step in metrics.nc");
    assert_eq!(v.dimensions().iter().map(|d| d.len()).collect::<Vec<_>>(), vec![s.samples.len(), 12]);
    let sd: Vec<f64> = v.get_values(..).unwrap();
    assert!(sd.iter().all(|x| x.is_finite() && *x > 0.0), "{sd:?}");
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("Predicted uncertainty") && md.contains("2σ"), "{md}");
}

#[test]
fn a_global_penalty_runs_without_a_variance_head() {
    let exp = Experiment::parse(
        "[data]\nhistory = 1\nhorizon = 2\n[model]\nkind = \"fno\"\nwidth = 8\nlayers = 2\nmodes = 6\n\
         [training]\nsteps = 4\nbatch = 4\nloss = \"mse\"\n[regularisation]\nkind = \"global\"",
        "global",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let s = train(&exp, &TrainOptions::new(dataset(), &run), &SingleProcess, &mut Quiet).unwrap();
    assert_eq!(s.nonfinite_total, 0);
    assert!(columns(&run, &["penalty"]).iter().all(|r| r[0].is_finite() && r[0] >= 0.0));
    let stored = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(stored.contains("[regularisation]") && !stored.contains("variance_head"), "{stored}");
}

#[test]
fn inconsistent_tables_are_refused_with_their_keys() {
    for (text, key) in [
        ("[model]\nkind = \"fno\"\nvariance_head = true", "training.loss"),
        ("[training]\nloss = \"gaussian-nll\"", "model.variance_head"),
        ("[regularisation]\nkind = \"jaws\"", "model.variance_head"),
        ("[regularisation]\nkind = \"global\"\nprobes = 0", "regularisation.probes"),
        ("[regularisation]\nkind = \"jaws\"\nbeta = -1.0", "regularisation.beta"),
    ] {
        let e = Experiment::parse(text, "cfg.toml").unwrap_err();
        assert!(e.0.contains(key), "{text}: {e}");
    }
}
