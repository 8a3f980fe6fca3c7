//! The training loop end to end on a tiny 1D Burgers dataset: an interrupted and resumed run ends with the same
//! parameters as an uninterrupted one, the non-finite guard skips and restores, logs and refusals.

use ansatz_cluster::SingleProcess;
use ansatz_datasets::config::load;
use ansatz_datasets::generate::{GenerateOptions, generate};
use ansatz_training::checkpoint::Checkpoint;
use ansatz_training::config::Experiment;
use ansatz_training::trainer::{Quiet, TrainOptions, Trained, train};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// 12 spectral 1D Burgers trajectories on 32 points, 13 frames each (shared by the tests).
fn dataset() -> &'static Path {
    static DATA: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DATA
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("b1.nc");
            let sets: Vec<String> = [
                "grid.n=32",
                "scheme.name=spectral",
                "time.t_end=0.6",
                "time.save_every=0.05",
                "time.dt=0.005",
                "parameters.nu=0.01",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let spec = load("burgers1d", None, &sets, Some(12), Some(3)).unwrap();
            let opts = GenerateOptions { resume: false, force: false, history: "test".into(), range: None };
            generate(&spec, &path, &opts, |_, _| {}).unwrap();
            (dir, path)
        })
        .1
}

fn experiment(kind: &str) -> Experiment {
    Experiment::parse(
        &format!(
            "seed = 5
            [data]
            history = 2
            horizon = 3
            validation = 0.2
            test = 0.2
            [model]
            kind = \"{kind}\"
            width = 8
            layers = 2
            modes = 4
            [training]
            steps = 12
            batch = 4
            checkpoint_every = 3
            validate_every = 6"
        ),
        "test config",
    )
    .unwrap()
}

fn params(run: &Path) -> Vec<f32> {
    Checkpoint::load(&run.join("checkpoint.ckpt")).unwrap().params
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    for kind in ["fno", "dymixop"] {
        let dir = tempfile::tempdir().unwrap();
        let exp = experiment(kind);
        let whole = dir.path().join("whole");
        let s = train(&exp, &TrainOptions::new(dataset(), &whole), &SingleProcess, &mut Quiet).unwrap();
        assert_eq!(s.steps, 12);
        assert!(s.final_loss.is_finite() && s.validation.is_some_and(f64::is_finite), "{s:?}");

        let parts = dir.path().join("parts");
        let mut opts = TrainOptions::new(dataset(), &parts);
        opts.stop_after = Some(7); // not a checkpoint multiple: the stop itself writes one
        let first = train(&exp, &opts, &SingleProcess, &mut Quiet).unwrap();
        assert!(first.stopped_early && first.steps == 7);
        assert!(!parts.join("summary.json").exists());
        let midway = params(&parts);
        let mut opts = TrainOptions::new(dataset(), &parts);
        opts.resume = true;
        train(&exp, &opts, &SingleProcess, &mut Quiet).unwrap();
        assert_eq!(params(&whole), params(&parts), "{kind}: resumed parameters differ");
        assert_ne!(midway, params(&parts), "{kind}: the last five steps changed nothing");

        // the logs hold each step once, in order, and agree with the uninterrupted run
        let rows = |run: &Path| std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let (a, b) = (rows(&whole), rows(&parts));
        assert_eq!(a.lines().count(), 13, "{a}");
        let loss = |t: &str| t.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(loss(&a), loss(&b));
        assert_eq!(std::fs::read_to_string(parts.join("metrics.jsonl")).unwrap().lines().count(), 12);

        // a trained run loads for inference
        let t = Trained::load(&whole, &burn::prelude::Device::flex()).unwrap();
        assert_eq!(t.info.model, kind);
        assert_eq!(t.checkpoint.step, 12);
    }
}

#[test]
fn non_finite_steps_are_skipped_then_the_last_checkpoint_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let exp = experiment("fno");
    let run = dir.path().join("nan");
    let mut opts = TrainOptions::new(dataset(), &run);
    opts.inject_nonfinite = vec![4, 5, 6];
    struct Collect(Vec<String>);
    impl ansatz_training::trainer::Observer for Collect {
        fn message(&mut self, text: &str) {
            self.0.push(text.to_string());
        }
    }
    let mut seen = Collect(vec![]);
    let s = train(&exp, &opts, &SingleProcess, &mut seen).unwrap();
    assert_eq!(s.nonfinite_total, 3);
    assert_eq!(s.restores, 1);
    assert!(seen.0.iter().filter(|m| m.contains("update skipped")).count() == 3, "{:?}", seen.0);
    assert!(seen.0.iter().any(|m| m.contains("restored") && m.contains("step 3")), "{:?}", seen.0);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let skipped: Vec<&str> = csv.lines().filter(|l| l.split(',').nth(6) == Some("1")).collect();
    assert_eq!(skipped.len(), 3, "{csv}");
    assert!(params(&run).iter().all(|v| v.is_finite()));
}

#[test]
fn existing_runs_are_not_overwritten_and_mismatched_resumes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut exp = experiment("fno");
    exp.training.steps = 3;
    let run = dir.path().join("r");
    train(&exp, &TrainOptions::new(dataset(), &run), &SingleProcess, &mut Quiet).unwrap();
    let e = train(&exp, &TrainOptions::new(dataset(), &run), &SingleProcess, &mut Quiet).unwrap_err();
    assert!(e.input && e.message.contains("--resume") && e.message.contains("--force"), "{e}");
    let mut opts = TrainOptions::new(dataset(), &run);
    opts.force = true;
    train(&exp, &opts, &SingleProcess, &mut Quiet).unwrap();
    let mut other = exp.clone();
    other.optimiser.clip_norm = 0.5;
    let mut opts = TrainOptions::new(dataset(), &run);
    opts.resume = true;
    let e = train(&other, &opts, &SingleProcess, &mut Quiet).unwrap_err();
    assert!(e.input && e.message.contains("clip_norm"), "{e}");
    let mut big = exp.clone();
    big.training.batch = 1000;
    let e = train(&big, &TrainOptions::new(dataset(), dir.path().join("big")), &SingleProcess, &mut Quiet).unwrap_err();
    assert!(e.input && e.message.contains("training.batch"), "{e}");
}

#[test]
fn a_finished_run_extended_to_more_steps_matches_a_longer_run() {
    use ansatz_training::schedule::Schedule;
    let dir = tempfile::tempdir().unwrap();
    // with a constant rate the extension is exact: the data order and the updates depend only on the step
    let mut long = experiment("fno");
    long.schedule = Schedule::Constant { rate: 1e-3 };
    let whole = dir.path().join("whole");
    train(&long, &TrainOptions::new(dataset(), &whole), &SingleProcess, &mut Quiet).unwrap();

    let mut short = long.clone();
    short.training.steps = 6;
    let run = dir.path().join("run");
    train(&short, &TrainOptions::new(dataset(), &run), &SingleProcess, &mut Quiet).unwrap();
    assert!(run.join("summary.json").exists());

    struct Collect(Vec<String>);
    impl ansatz_training::trainer::Observer for Collect {
        fn message(&mut self, text: &str) {
            self.0.push(text.to_string());
        }
    }
    let mut opts = TrainOptions::new(dataset(), &run);
    opts.resume = true;
    // without --extend the larger step count is a different configuration
    let e = train(&long, &opts, &SingleProcess, &mut Quiet).unwrap_err();
    assert!(e.input && e.message.contains("steps") && e.message.contains("--extend"), "{e}");
    opts.extend = true;
    // other differences are still refused, and so is a smaller step count
    let mut other = long.clone();
    other.optimiser.clip_norm = 0.5;
    let e = train(&other, &opts, &SingleProcess, &mut Quiet).unwrap_err();
    assert!(e.input && e.message.contains("clip_norm"), "{e}");
    let mut fewer = long.clone();
    fewer.training.steps = 4;
    let e = train(&fewer, &opts, &SingleProcess, &mut Quiet).unwrap_err();
    assert!(e.input && e.message.contains("can only raise"), "{e}");
    assert_eq!(params(&run), Checkpoint::load(&run.join("checkpoint.ckpt")).unwrap().params, "refusals change nothing");

    let mut seen = Collect(vec![]);
    let s = train(&long, &opts, &SingleProcess, &mut seen).unwrap();
    assert_eq!(s.steps, 12);
    assert!(seen.0.iter().any(|m| m.contains("from 6 to 12 steps")), "{:?}", seen.0);
    assert!(!seen.0.iter().any(|m| m.contains("cosine")), "a constant rate is not stretched: {:?}", seen.0);
    assert_eq!(params(&whole), params(&run), "the extended run differs from the uninterrupted longer one");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("steps = 12"), "{config}");
    assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count(), 13);
    // the stored configuration now matches, so a plain resume of the finished run is accepted
    let mut again = TrainOptions::new(dataset(), &run);
    again.resume = true;
    train(&long, &again, &SingleProcess, &mut Quiet).unwrap();

    // a cosine schedule that follows training.steps is stretched, and the user is told
    let cosine = dir.path().join("cosine");
    let mut short = experiment("fno");
    short.training.steps = 6;
    // as parsing a configuration with `steps = 6` would resolve it
    short.schedule = Schedule::WarmupCosine { peak: 1e-3, warmup_steps: 2, total_steps: 6, final_fraction: 0.01 };
    train(&short, &TrainOptions::new(dataset(), &cosine), &SingleProcess, &mut Quiet).unwrap();
    let mut long = experiment("fno");
    long.schedule = Schedule::WarmupCosine { peak: 1e-3, warmup_steps: 2, total_steps: 12, final_fraction: 0.01 };
    let mut opts = TrainOptions::new(dataset(), &cosine);
    opts.resume = true;
    opts.extend = true;
    let mut seen = Collect(vec![]);
    train(&long, &opts, &SingleProcess, &mut seen).unwrap();
    assert!(seen.0.iter().any(|m| m.contains("cosine schedule")), "{:?}", seen.0);
    let stored = Experiment::parse(&std::fs::read_to_string(cosine.join("config.toml")).unwrap(), "stored").unwrap();
    assert_eq!(stored.schedule, long.schedule);
}

#[test]
fn rollout_writes_metrics_predictions_summary_and_plots() {
    use ansatz_datasets::reader::Dataset;
    use ansatz_training::rollout::{RolloutOptions, rollout};
    let dir = tempfile::tempdir().unwrap();
    let exp = experiment("dymixop");
    let run = dir.path().join("run");
    train(&exp, &TrainOptions::new(dataset(), &run), &SingleProcess, &mut Quiet).unwrap();
    let report = dir.path().join("report");
    let mut opts = RolloutOptions::new(&run, dataset(), &report);
    opts.steps = Some(10);
    let s = rollout(&opts, &mut |_, _, _| {}).unwrap();
    // test split: the last 20% of 12 samples
    assert_eq!(s.samples, 10..12);
    assert_eq!(s.steps, 10);
    for f in [
        "metrics.nc",
        "predictions.nc",
        "summary.json",
        "summary.md",
        "error.png",
        "correlation.png",
        "spectra.png",
        "snapshots.png",
    ] {
        assert!(report.join(f).is_file(), "{f} missing");
    }
    assert!(s.nrmse_mean.mean.is_finite() && s.nrmse_mean.count == 2, "{s:?}");
    // the solver at the data resolution reproduces the reference; coarser ones are less accurate
    let full = s.cost.solver.iter().find(|c| c.fraction == 1.0).expect("full-resolution solver");
    assert!(full.nrmse < 1e-4, "{:?}", s.cost.solver);
    assert_eq!(s.cost.solver.len(), 3, "{:?}", s.cost.solver);
    // scored on the data's grid (prolonged), each halving of the grid loses accuracy
    let at = |f: f64| s.cost.solver.iter().find(|c| c.fraction == f).expect("solver rung").nrmse;
    assert!(at(0.25) > at(0.5) && at(0.5) > 10.0 * full.nrmse, "{:?}", s.cost.solver);
    // per step: the median over the 2 samples, which is their mean, so the steps average to the overall mean
    for c in &s.cost.solver {
        assert_eq!(c.nrmse_by_step.len(), 10);
        let mean = c.nrmse_by_step.iter().sum::<f64>() / 10.0;
        assert!((mean - c.nrmse).abs() <= 1e-12 * c.nrmse.max(1e-300), "{c:?}");
    }
    // predictions are a dataset whose context frames are the reference's
    let p = Dataset::open(&report.join("predictions.nc")).unwrap();
    let r = Dataset::open(dataset()).unwrap();
    assert_eq!(p.samples_complete, 2);
    assert_eq!(p.times.len(), 2 + 10);
    let pc = p.read("u", 0..2, 0..2).unwrap();
    let rc = r.read("u", 10..12, 0..2).unwrap();
    assert_eq!(pc, rc);
    // per-sample, per-step metrics
    let m = netcdf::open(report.join("metrics.nc")).unwrap();
    let v = m.variable("nrmse").unwrap();
    assert_eq!(v.dimensions().iter().map(|d| d.len()).collect::<Vec<_>>(), vec![2, 10]);
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("Error-matched speed-up") || md.contains("No solver resolution"), "{md}");
    // refuses to overwrite
    let e = rollout(&opts, &mut |_, _, _| {}).unwrap_err();
    assert!(e.input && e.message.contains("--force"), "{e}");
}

/// `val_rollout_nrmse` is the rollout's number: on a dataset whose test samples are copies of its validation
/// samples, the score logged at the last validation equals the mean over the first `horizon` rollout steps of the
/// report's per-step nRMSE, averaged over samples. Without `validate_rollout` the column is absent.
#[test]
fn the_rollout_start_validation_score_is_the_rollouts_nrmse_over_the_horizon() {
    use ansatz_datasets::reader::Dataset;
    use ansatz_datasets::writer::DatasetWriter;
    use ansatz_training::methods::autoregressive::VAL_ROLLOUT;
    use ansatz_training::rollout::{RolloutOptions, rollout};
    let dir = tempfile::tempdir().unwrap();
    // 12 samples: train 0..8, validation 8..10, test 10..12 = copies of 8 and 9
    let src = Dataset::open(dataset()).unwrap();
    let layout = src.layout().unwrap();
    let params: Vec<String> = layout.parameters.iter().map(|p| p.name.clone()).collect();
    let data = dir.path().join("mirrored.nc");
    let mut w = DatasetWriter::create(&data, &layout, false).unwrap();
    for (k, s) in (0..10).chain(8..10).enumerate() {
        let (values, ps) = src.sample_data(s, &params).unwrap();
        w.write_sample(k, &values, &ps).unwrap();
    }
    w.finish().unwrap();
    drop(src);
    let exp = experiment("fno");
    let run = dir.path().join("run");
    let s = train(&exp, &TrainOptions::new(&data, &run), &SingleProcess, &mut Quiet).unwrap();
    let score = s.validation_metrics[VAL_ROLLOUT];
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(VAL_ROLLOUT), "{csv}");
    let logged: Vec<&str> =
        csv.lines().skip(1).filter_map(|l| l.split(',').next_back()).filter(|v| !v.is_empty()).collect();
    assert_eq!(logged.len(), 2, "validations at steps 6 and 12: {csv}");
    let report = dir.path().join("report");
    let mut opts = RolloutOptions::new(&run, &data, &report);
    opts.steps = Some(exp.data.horizon);
    opts.baseline = false;
    opts.plots = false;
    let r = rollout(&opts, &mut |_, _, _| {}).unwrap();
    assert_eq!(r.samples, 10..12);
    let f = netcdf::open(report.join("metrics.nc")).unwrap();
    let nrmse: Vec<f64> = f.variable("nrmse").unwrap().get_values(..).unwrap();
    assert_eq!(nrmse.len(), 2 * exp.data.horizon);
    let expected = nrmse.iter().sum::<f64>() / nrmse.len() as f64;
    assert!((score - expected).abs() <= 1e-4 * expected, "validation {score} against the rollout's {expected}");
    // and off
    let mut off = experiment("fno");
    off.training.validate_rollout = false;
    off.training.steps = 6;
    let run = dir.path().join("off");
    let s = train(&off, &TrainOptions::new(&data, &run), &SingleProcess, &mut Quiet).unwrap();
    assert!(s.validation_metrics.is_empty());
    assert!(!std::fs::read_to_string(run.join("metrics.csv")).unwrap().contains(VAL_ROLLOUT));
}

/// `data.loading = "stream"` reads windows from the file through the cache: a short run has the same losses,
/// validation scores and final parameters, bit for bit, as with the trajectories in memory.
#[test]
fn streamed_loading_trains_bit_for_bit_like_memory() {
    use ansatz_training::config::Loading;
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![];
    for loading in [Loading::Memory, Loading::Stream] {
        let mut exp = experiment("fno");
        exp.data.loading = loading;
        exp.data.memory_budget = 1;
        let run = dir.path().join(format!("{loading:?}"));
        let s = train(&exp, &TrainOptions::new(dataset(), &run), &SingleProcess, &mut Quiet).unwrap();
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        // every column but the wall-clock seconds
        let rows: Vec<String> = csv
            .lines()
            .map(|l| l.split(',').enumerate().filter(|(i, _)| *i != 7).map(|(_, v)| v).collect::<Vec<_>>().join(","))
            .collect();
        runs.push((rows, params(&run), s.validation, std::fs::read_to_string(run.join("run.json")).unwrap()));
    }
    assert_eq!(runs[0].0, runs[1].0, "losses, gradient norms and validation scores");
    assert!(runs[0].1.iter().zip(&runs[1].1).all(|(a, b)| a.to_bits() == b.to_bits()), "final parameters");
    assert_eq!(runs[0].2, runs[1].2);
    let tau = |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap()["tau"].as_f64().unwrap();
    assert_eq!(tau(&runs[0].3), tau(&runs[1].3), "the structure-change coefficient from the streamed pass");
}

/// A dataset file changed under a streamed run stops it with the file and the sample named; the last checkpoint
/// is the one written before the change, and resuming once the file is restored ends where an uninterrupted run
/// does, bit for bit.
#[test]
fn a_file_changed_mid_training_stops_the_run_and_a_resume_after_restoring_it_is_exact() {
    use ansatz_training::config::Loading;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("b1.nc");
    std::fs::copy(dataset(), &data).unwrap();
    let original = std::fs::read(&data).unwrap();
    let mut exp = experiment("fno");
    exp.data.loading = Loading::Stream;
    exp.data.memory_budget = 1;
    exp.training.checkpoint_every = 2;
    let whole = dir.path().join("whole");
    train(&exp, &TrainOptions::new(&data, &whole), &SingleProcess, &mut Quiet).unwrap();

    // after step 4 is done (checkpoint 4 written) the file is truncated
    struct Truncate {
        data: PathBuf,
        run: PathBuf,
        saved: Option<Vec<u8>>,
    }
    impl ansatz_training::trainer::Observer for Truncate {
        fn step(&mut self, record: &ansatz_training::engine::StepRecord) {
            if record.step == 3 {
                self.saved = Some(std::fs::read(self.run.join("checkpoint.ckpt")).unwrap());
                let bytes = std::fs::read(&self.data).unwrap();
                std::fs::write(&self.data, &bytes[..bytes.len() / 2]).unwrap();
            }
        }
    }
    let cut = dir.path().join("cut");
    let mut obs = Truncate { data: data.clone(), run: cut.clone(), saved: None };
    let err = train(&exp, &TrainOptions::new(&data, &cut), &SingleProcess, &mut obs).unwrap_err().to_string();
    assert!(err.contains("b1.nc") && err.contains("changed") && err.contains("sample"), "{err}");
    let ck = std::fs::read(cut.join("checkpoint.ckpt")).unwrap();
    assert_eq!(Some(ck), obs.saved, "the checkpoint written before the change is intact");
    assert_eq!(Checkpoint::load(&cut.join("checkpoint.ckpt")).unwrap().header.step, 4);

    // resuming on the truncated file is refused by name; restored, the resume is exact
    let mut resume = TrainOptions::new(&data, &cut);
    resume.resume = true;
    let err = train(&exp, &resume, &SingleProcess, &mut Quiet).unwrap_err().to_string();
    assert!(err.contains("b1.nc"), "{err}");
    std::fs::write(&data, &original).unwrap();
    train(&exp, &resume, &SingleProcess, &mut Quiet).unwrap();
    assert!(params(&cut).iter().zip(&params(&whole)).all(|(a, b)| a.to_bits() == b.to_bits()));
}
