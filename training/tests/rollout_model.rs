//! `rollout_model` scores any `TrajectoryModel`, not only trained networks: persistence (the last context frame
//! repeated) gets a report whose per-step errors equal the ones computed by hand from the data.

use ansatz_datasets::config::load;
use ansatz_datasets::generate::{GenerateOptions, generate};
use ansatz_training::data::Trajectories;
use ansatz_training::metrics::step_errors;
use ansatz_training::rollout::{Provenance, RolloutOptions, TrajectoryModel, rollout_model};
use ansatz_training::trainer::TrainError;

struct Persistence {
    fields: Vec<String>,
    n: usize,
}

impl TrajectoryModel for Persistence {
    fn name(&self) -> String {
        "persistence".into()
    }
    fn parameters(&self) -> usize {
        0
    }
    fn fields(&self) -> &[String] {
        &self.fields
    }
    fn grid(&self) -> [usize; 2] {
        [1, self.n]
    }
    fn context_frames(&self) -> usize {
        2
    }
    fn frame_interval(&self) -> f64 {
        0.05
    }
    fn predict(&self, context: &[f32], batch: usize, steps: usize, out: &mut [f64]) -> Result<(), TrainError> {
        let frame = self.n;
        for s in 0..batch {
            let last = &context[(s * 2 + 1) * frame..(s * 2 + 2) * frame];
            for t in 0..steps {
                let dst = &mut out[(s * steps + t) * frame..(s * steps + t + 1) * frame];
                dst.iter_mut().zip(last).for_each(|(d, v)| *d = *v as f64);
            }
        }
        Ok(())
    }
}

#[test]
fn any_trajectory_model_gets_the_report_and_its_errors_are_the_hand_computed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("b.nc");
    let sets: Vec<String> =
        ["grid.n=32", "scheme.name=spectral", "time.t_end=0.4", "time.save_every=0.05", "time.dt=0.005"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let spec = load("burgers1d", None, &sets, Some(4), Some(8)).unwrap();
    let opts = GenerateOptions { resume: false, force: false, history: "test".into(), range: None };
    generate(&spec, &data, &opts, |_, _| {}).unwrap();

    let model = Persistence { fields: vec!["u".into()], n: 32 };
    let prov = Provenance { data: std::fs::canonicalize(&data).unwrap(), test: 2..4, train_samples: 2 };
    let mut ro = RolloutOptions::new(dir.path().join("no-run"), &data, dir.path().join("report"));
    ro.steps = Some(5);
    ro.plots = false;
    let s = rollout_model(&model, &prov, &ro, &mut |_, _, _| {}).unwrap();
    assert_eq!((s.samples.clone(), s.steps, s.model.as_str()), (2..4, 5, "persistence"));

    let traj = Trajectories::load(&data, 2..4).unwrap();
    let f64s = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<_>>();
    let by_hand: Vec<f64> =
        (0..2).map(|s| step_errors(&f64s(traj.frame(s, 1)), &f64s(traj.frame(s, 2))).nrmse).collect();
    let mean = by_hand.iter().sum::<f64>() / 2.0;
    let step1 = &s.nrmse_at.iter().find(|(t, _)| *t == 1).unwrap().1;
    assert!((step1.mean - mean).abs() <= 1e-12 * mean.max(1.0), "report {} by hand {mean}", step1.mean);
    assert!(dir.path().join("report/predictions.nc").is_file() && dir.path().join("report/summary.md").is_file());

    // chunk by chunk (one sample in memory at a time) the report is the same
    let prov = Provenance { data: std::fs::canonicalize(&data).unwrap(), test: 1..4, train_samples: 1 };
    let whole = rollout_model(&model, &prov, &ro_with(&ro, "whole", 16, 1024), &mut |_, _, _| {}).unwrap();
    let chunked = rollout_model(&model, &prov, &ro_with(&ro, "chunked", 1, 0), &mut |_, _, _| {}).unwrap();
    let (a, b) = (serde_json::to_value(&whole).unwrap(), serde_json::to_value(&chunked).unwrap());
    let mut compared = 0;
    same_numbers(&a, &b, "", &mut compared);
    assert!(compared > 50, "{compared} numbers compared");
    let read = |r: &str| {
        let ds = ansatz_datasets::reader::Dataset::open(&dir.path().join(r).join("predictions.nc")).unwrap();
        ds.read("u", 0..3, 0..7).unwrap()
    };
    assert_eq!(read("whole"), read("chunked"), "predictions.nc");
}

fn ro_with(ro: &RolloutOptions, out: &str, batch: usize, budget: usize) -> RolloutOptions {
    let mut r = ro.clone();
    r.out = r.out.parent().unwrap().join(out);
    r.batch = batch;
    r.memory_budget = budget;
    r
}

/// Every number of two summaries agrees to round-off, timings aside.
fn same_numbers(a: &serde_json::Value, b: &serde_json::Value, at: &str, compared: &mut usize) {
    use serde_json::Value;
    if at.contains("seconds") || at.contains("speedup") || at.contains("breakeven") || at.ends_with("batch") {
        return;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1e-300) || x == y, "{at}: {x} against {y}");
            *compared += 1;
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                same_numbers(u, v, &format!("{at}[{i}]"), compared);
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            for (k, u) in x {
                same_numbers(u, &y[k], &format!("{at}.{k}"), compared);
            }
        }
        _ if at.ends_with(".run") || at.ends_with(".data") => {}
        _ => assert_eq!(a, b, "{at}"),
    }
}
