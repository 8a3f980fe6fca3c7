//! Training windows read from a dataset file: values, order, split, normalisation and refusals.

use ansatz_datasets::schema::{Field, GridType, Layout, ParameterInfo, Precision};
use ansatz_datasets::writer::DatasetWriter;
use ansatz_training::data::{Normalisation, Split, Trajectories, WindowSpec, Windows};
use std::path::Path;

const NX: usize = 5;
const NY: usize = 3;
const NT: usize = 6;

fn value(s: usize, t: usize, c: usize, k: usize) -> f64 {
    100.0 * s as f64 + 10.0 * t as f64 + c as f64 * 0.5 + k as f64 * 0.01
}

fn write(path: &Path, samples: usize, poison: Option<(usize, usize)>) {
    let layout = Layout {
        pde: "burgers2d".into(),
        fields: vec![
            Field { name: "u".into(), long_name: "velocity, x component".into() },
            Field { name: "v".into(), long_name: "velocity, y component".into() },
        ],
        parameters: vec![ParameterInfo { name: "nu".into(), long_name: "viscosity".into(), simulation: true }],
        samples,
        first_sample: 0,
        times: (0..NT).map(|t| t as f64 * 0.25).collect(),
        x: (0..NX).map(|i| (i as f64 + 0.5) / NX as f64).collect(),
        y: Some((0..NY).map(|j| (j as f64 + 0.5) / NY as f64).collect()),
        z: None,
        grid_type: GridType::CellCentered,
        extent: vec![1.0, 1.0],
        bc: vec!["periodic".into(), "periodic".into()],
        precision: Precision::F64,
        compression: 0,
        time_chunk: 1,
        text: vec![],
        seed: Some(1),
        context_frames: 1,
    };
    let mut w = DatasetWriter::create(path, &layout, false).unwrap();
    let n = NX * NY;
    for s in 0..samples {
        let mut data = Vec::with_capacity(NT * 2 * n);
        for t in 0..NT {
            for c in 0..2 {
                for k in 0..n {
                    data.push(value(s, t, c, k));
                }
            }
        }
        if let Some((ps, pt)) = poison {
            if ps == s {
                data[pt * 2 * n + n + 4] = f64::NAN;
            }
        }
        w.write_sample(s, &data, &[0.01]).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn windows_hold_the_right_frames_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.nc");
    write(&path, 4, None);
    let traj = Trajectories::load(&path, 1..4).unwrap();
    assert_eq!((traj.samples(), traj.times(), traj.channels()), (3, NT, 2));
    assert_eq!(traj.space(), &[NY, NX]);
    assert_eq!(traj.fields, ["u", "v"]);
    let n = NX * NY;
    // loaded sample 0 is file sample 1
    assert_eq!(traj.frame(0, 2)[n + 7], value(1, 2, 1, 7) as f32);

    let split = Split::by_fraction(traj.samples(), 0.34, 0.0).unwrap();
    assert_eq!((split.train, split.validation, split.test), (0..2, 2..3, 3..3));

    let spec = WindowSpec { history: 2, horizon: 3, stride: 1 };
    let w = Windows::new(&traj, 0..2, spec).unwrap();
    assert_eq!(w.len(), 2 * (NT - 5 + 1));
    assert_eq!(w.origin(3), (1, 1));
    let (mut input, mut target) = (Vec::new(), Vec::new());
    w.gather(&traj, &[3, 0], &mut input, &mut target);
    assert_eq!(input.len(), 2 * 2 * 2 * n);
    assert_eq!(target.len(), 2 * 3 * 2 * n);
    // batch 0 = window 3 = (loaded sample 1 = file sample 2, t0 = 1): input frames t = 1, 2; targets t = 3, 4, 5
    assert_eq!(input[0], value(2, 1, 0, 0) as f32);
    assert_eq!(input[(2 + 1) * n + 6], value(2, 2, 1, 6) as f32);
    assert_eq!(target[(2 * 2 + 1) * n + 9], value(2, 5, 1, 9) as f32);
    // batch 1 = window 0 = (file sample 1, t0 = 0)
    assert_eq!(input[2 * 2 * n], value(1, 0, 0, 0) as f32);
    assert_eq!(target[(3 * 2) * n + 3 * 2 * n - 1], value(1, 4, 1, n - 1) as f32);

    let strided = Windows::new(&traj, 0..3, WindowSpec { history: 1, horizon: 1, stride: 2 }).unwrap();
    assert_eq!(strided.len(), 3 * 3);
    assert_eq!(strided.origin(2), (0, 4));
}

#[test]
fn normalisation_uses_training_samples_and_inverts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.nc");
    write(&path, 3, None);
    let traj = Trajectories::load(&path, 0..3).unwrap();
    let norm = Normalisation::fit(&traj, 0..1);
    // channel c of sample 0: 10 t + 0.5 c + 0.01 k over t < NT, k < n, all equally weighted
    let n = NX * NY;
    let vals: Vec<f64> = (0..NT).flat_map(|t| (0..n).map(move |k| value(0, t, 1, k))).collect();
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
    assert!((norm.mean[1] - mean).abs() < 1e-6 && (norm.scale[1] - sd).abs() < 1e-6, "{norm:?}"); // f32 storage

    let mut frame = traj.frame(2, 3).to_vec();
    let orig = frame.clone();
    norm.apply(&mut frame, n);
    assert!((frame[n] as f64 - (value(2, 3, 1, 0) - mean) / sd).abs() < 1e-4);
    norm.invert(&mut frame, n);
    for (a, b) in frame.iter().zip(&orig) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0));
    }

    let stats = dir.path().join("normalisation.json");
    norm.save(&stats).unwrap();
    assert_eq!(Normalisation::load(&stats).unwrap(), norm);
    std::fs::write(&stats, r#"{"fields":["u"],"mean":[0.0],"scale":[0.0]}"#).unwrap();
    assert!(Normalisation::load(&stats).unwrap_err().to_string().contains("scale"));
}

#[test]
fn bad_requests_and_bad_data_are_refused_with_their_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.nc");
    write(&path, 3, Some((2, 4)));
    let err = Trajectories::load(&path, 0..3).unwrap_err().to_string();
    assert!(err.contains("nan.nc") && err.contains("'v'") && err.contains("sample 2, time level 4"), "{err}");
    assert!(Trajectories::load(&path, 0..2).is_ok(), "clean samples load");
    let err = Trajectories::load(&path, 0..9).unwrap_err().to_string();
    assert!(err.contains("3 complete samples"), "{err}");
    let err = Trajectories::load(&dir.path().join("absent.nc"), 0..1).unwrap_err().to_string();
    assert!(err.contains("absent.nc"), "{err}");

    let traj = Trajectories::load(&path, 0..2).unwrap();
    let err = Windows::new(&traj, 0..2, WindowSpec { history: 4, horizon: 3, stride: 1 }).unwrap_err().to_string();
    assert!(err.contains("6 time levels"), "{err}");
    assert!(Windows::new(&traj, 0..2, WindowSpec { history: 1, horizon: 0, stride: 1 }).is_err());
    assert!(Split::by_fraction(3, 0.5, 0.5).is_err());
    assert!(Split::by_fraction(3, 1.5, 0.0).unwrap_err().to_string().contains("validation"));
    assert!(Trajectories::from_values(vec![0.0; 7], 1, 1, vec!["u".into()], vec![8]).is_err());
}
