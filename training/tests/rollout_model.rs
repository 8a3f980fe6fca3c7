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
}
