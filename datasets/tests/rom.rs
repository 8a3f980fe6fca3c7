//! The parametric trajectory datasets (reduced-order benchmarks, diffusion–sorption): the reference parameter
//! sets, trajectories equal to the solver's own steps, the spec rebuilt from a file, and configuration errors naming the key.

use ansatz_datasets::generate::GenerateOptions;
use ansatz_datasets::reader::Dataset;
use ansatz_datasets::rom::{RomPde, RomSpec, generate_rom, load};
use ansatz_solvers::prelude::*;

fn set(name: &str) -> Vec<String> {
    vec![format!("parameter.set={name}")]
}

#[test]
fn the_parameter_sets_are_the_references() {
    let s = 0.015 / 7.0;
    let mus = |name: &str| {
        let spec = load(RomPde::BurgersSource1d, None, &set(name), None, None).unwrap();
        (0..spec.samples).map(|i| spec.mu(i).unwrap()).collect::<Vec<_>>()
    };
    let close = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15);
    let train: Vec<f64> = (0..8).map(|i| 0.015 + s * i as f64).collect();
    assert!(close(&mus("train"), &train), "{:?}", mus("train"));
    let mid: Vec<f64> = (0..7).map(|i| 0.015 + s * (i as f64 + 0.5)).collect();
    assert!(close(&mus("interpolation"), &mid));
    assert!(close(&mus("extrapolation"), &[0.015 - 0.015 / 7.0, 0.03 + 0.015 / 7.0]));
    let uniform = load(RomPde::BurgersSource1d, None, &set("uniform"), Some(5), Some(3)).unwrap();
    assert_eq!(uniform.samples, 5);
    assert!((0..5).all(|i| (0.015..0.03).contains(&uniform.mu(i).unwrap())));
}

#[test]
fn burgers_trajectories_are_euler_steps_of_the_solver_with_the_inflow_held() {
    let dir = tempfile::tempdir().unwrap();
    let sets = [set("interpolation"), vec!["time.levels=20".into()]].concat();
    let spec = load(RomPde::BurgersSource1d, None, &sets, None, None).unwrap();
    let out = dir.path().join("b.nc");
    let report = generate_rom(&spec, &out, &GenerateOptions::default(), |_, _| {}).unwrap();
    assert_eq!(report.solved, 7);
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.parameter("mu").unwrap().len(), 7);
    let u = ds.read("u", 3..4, 0..21).unwrap();
    let u: Vec<f64> = u.iter().copied().collect();
    let mu = spec.mu(3).unwrap();
    let stepper = ExplicitRk::new(spec.burgers(mu).unwrap(), Tableau::euler(), 0.07).unwrap();
    let mut w = stepper.work();
    let (mut v, _) = spec.initial(3);
    let left = v[0];
    for level in 1..=20 {
        stepper.step(&mut v, &mut w);
        let stored = &u[level * 256..(level + 1) * 256];
        let err = stored.iter().zip(&v).map(|(a, b)| (a - b).abs() / b.abs()).fold(0.0, f64::max);
        assert!(err < 1e-6, "level {level}: relative difference {err} (f32 storage)");
        assert_eq!(stored[0], left as f32 as f64, "the inflow cell is held");
    }
    // the profile: a left state, a sharp drop near x = 10, a slow rise
    let (u0, _) = spec.initial(0);
    let x = spec.axis();
    let at = |p: f64| u0[x.iter().position(|&c| c >= p).unwrap()];
    assert!((at(2.0) - 4.25).abs() < 1e-3 && (at(14.0) - 1.09).abs() < 0.05 && (u0[255] - 1.63).abs() < 0.01);
    // the rebuilt spec equals the generating one
    let rebuilt = RomSpec::from_dataset("burgers1d-source", &ds.text_attribute("generation_config").unwrap()).unwrap();
    assert_eq!(rebuilt, spec);
}

#[test]
fn diffusion_samples_are_reproducible_gaussians_that_decay() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(RomPde::Diffusion2d, None, &["time.levels=30".into()], Some(3), Some(7)).unwrap();
    let out = dir.path().join("d.nc");
    generate_rom(&spec, &out, &GenerateOptions::default(), |_, _| {}).unwrap();
    let ds = Dataset::open(&out).unwrap();
    let x = ds.x.clone();
    assert_eq!((x.len(), x[0], x[39]), (40, -19.5, 19.5));
    let (amp, cx) = (ds.parameter("ic_amplitude").unwrap(), ds.parameter("ic_centre_x").unwrap());
    for s in 0..3 {
        assert!((0.5..2.0).contains(&amp[s]) && cx[s].fract() == 0.0 && (-12.0..=11.0).contains(&cx[s]));
        let u = ds.read("u", s..s + 1, 0..31).unwrap();
        let u: Vec<f64> = u.iter().copied().collect();
        let max = |t: usize| u[t * 1600..(t + 1) * 1600].iter().fold(0.0_f64, |m, v| m.max(*v));
        assert!((max(0) - amp[s]).abs() < 0.05 * amp[s], "the Gaussian's peak is near its amplitude");
        assert!(max(30) < max(0), "diffusion lowers the peak");
    }
    // the same (seed, sample) gives the same initial field
    assert_eq!(spec.initial(2), load(RomPde::Diffusion2d, None, &[], Some(9), Some(7)).unwrap().initial(2));
}

#[test]
fn diffusion_sorption_trajectories_are_rk4_steps_from_a_constant_initial_value() {
    let dir = tempfile::tempdir().unwrap();
    let sets = ["grid.n=32".to_string(), "time.levels=5".into(), "time.steps_per_level=20".into()];
    let spec = load(RomPde::DiffusionSorption1d, None, &sets, Some(3), Some(4)).unwrap();
    let out = dir.path().join("s.nc");
    generate_rom(&spec, &out, &GenerateOptions::default(), |_, _| {}).unwrap();
    let ds = Dataset::open(&out).unwrap();
    let u0 = ds.parameter("u0").unwrap();
    let stepper = ExplicitRk::new(spec.sorption().unwrap(), Tableau::rk4(), spec.dt).unwrap();
    let mut w = stepper.work();
    for (s, &c) in u0.iter().enumerate() {
        assert!((0.0..0.2).contains(&c), "u0 = {c} outside [0, 0.2]");
        let u: Vec<f64> = ds.read("u", s..s + 1, 0..6).unwrap().iter().copied().collect();
        assert!(u[..32].iter().all(|&v| v == c as f32 as f64), "a constant initial value");
        let mut v = vec![c; 32];
        for level in 1..=5 {
            stepper.advance(&mut v, 20, &mut w);
            let stored = &u[level * 32..(level + 1) * 32];
            let err = stored.iter().zip(&v).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-6, "sample {s}, level {level}: difference {err} (f32 storage)");
        }
        // the inflow raises the first cell towards 1
        assert!(u[5 * 32] > 0.5 && u[5 * 32] < 1.0, "first cell {} at t = 5", u[5 * 32]);
    }
    let rebuilt =
        RomSpec::from_dataset("diffusion-sorption", &ds.text_attribute("generation_config").unwrap()).unwrap();
    assert_eq!(rebuilt, spec);
}

#[test]
fn configuration_errors_name_the_key() {
    let msg = |r: Result<RomSpec, ansatz_datasets::DatasetError>| r.unwrap_err().to_string();
    let e = msg(load(RomPde::BurgersSource1d, None, &set("interpolation"), Some(8), None));
    assert!(e.contains("samples") && e.contains("7 values"), "{e}");
    let e = msg(load(RomPde::BurgersSource1d, None, &set("sideways"), None, None));
    assert!(e.contains("parameter.set"), "{e}");
    let e = msg(load(RomPde::BurgersSource1d, None, &["grid.spacing=1".into()], None, None));
    assert!(e.contains("grid.spacing"), "{e}");
    let e = msg(load(RomPde::Diffusion2d, None, &["time.dt=0.2".into()], None, None));
    assert!(e.contains("time.dt") && e.contains("stability"), "{e}");
    let e = msg(load(RomPde::Diffusion2d, None, &["gaussian.colour=1".into()], None, None));
    assert!(e.contains("colour"), "{e}");
    let e = msg(load(RomPde::BurgersSource1d, None, &set("uniform"), None, None));
    assert!(e.contains("samples"), "{e}");
    let e = msg(load(RomPde::DiffusionSorption1d, None, &["sorption.porosity=1.5".into()], None, None));
    assert!(e.contains("sorption.porosity"), "{e}");
    let e = msg(load(RomPde::DiffusionSorption1d, None, &["time.dt=0.5".into()], None, None));
    assert!(e.contains("time.dt") && e.contains("stability"), "{e}");
    let e = msg(load(RomPde::DiffusionSorption1d, None, &["sorption.initial=[0.3, 0.1]".into()], None, None));
    assert!(e.contains("sorption.initial"), "{e}");
    let e = msg(load(RomPde::DiffusionSorption1d, None, &["gaussian.width=[1.0, 2.0]".into()], None, None));
    assert!(e.contains("gaussian"), "{e}");
}
