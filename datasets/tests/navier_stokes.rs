//! `navier-stokes2d` generation: the embedded config is Kolmogorov flow, the data hold a finite vorticity with
//! the spectral solver's zero mean, a laminar run settles on the exact steady state, and configurations the
//! solver cannot run are refused with the key named.

use ansatz_datasets::config::{Pde, load};
use ansatz_datasets::generate::{GenerateOptions, generate};
use ansatz_datasets::reader::Dataset;

#[test]
fn the_default_is_kolmogorov_flow_and_generation_writes_the_vorticity() {
    let spec = load("navier-stokes2d", None, &[], None, None).unwrap();
    assert_eq!((spec.pde, spec.n, spec.frames), (Pde::NavierStokes2d, 64, 40));
    assert_eq!((spec.forcing.amplitude, spec.forcing.wavenumber, spec.forcing.drag), (1.0, 4, 0.1));
    let sets = ["grid.n=16", "time.t_end=0.5", "time.save_every=0.25", "time.dt=0.05"].map(String::from);
    let spec = load("navier-stokes2d", None, &sets, Some(2), Some(3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ns.nc");
    generate(&spec, &path, &GenerateOptions::default(), |_, _| {}).unwrap();
    let ds = Dataset::open(&path).unwrap();
    assert_eq!(ds.fields, vec!["omega".to_string()]);
    let w = ds.read("omega", 0..2, 0..3).unwrap();
    assert_eq!(w.shape(), &[2, 3, 16, 16]);
    assert!(w.iter().all(|v| v.is_finite()));
    // the mean vorticity carries no velocity and is conserved (the forcing and the drag keep a zero mean at zero)
    let mean0: f64 = w.iter().take(256).sum::<f64>() / 256.0;
    let mean2: f64 = w.iter().skip(512).take(256).sum::<f64>() / 256.0;
    assert!((mean2 - mean0 * (-0.1 * 0.5_f64).exp()).abs() < 1e-5, "means {mean0} then {mean2}");
}

#[test]
fn a_laminar_kolmogorov_run_reaches_its_steady_state() {
    // no initial vorticity, ν = 0.5, k = 1, A = 0.4, no drag: ω → −(A / (ν k²)) k cos(k y) = −0.8 cos y
    let sets = [
        "grid.n=16",
        "time.t_end=30",
        "time.save_every=30",
        "time.dt=0.1",
        "initial_condition.amplitude=1e-9",
        "forcing.amplitude=0.4",
        "forcing.wavenumber=1",
        "forcing.drag=0",
        "parameters.nu=0.5",
    ]
    .map(String::from);
    let spec = load("navier-stokes2d", None, &sets, Some(1), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("laminar.nc");
    generate(&spec, &path, &GenerateOptions::default(), |_, _| {}).unwrap();
    let ds = Dataset::open(&path).unwrap();
    let w = ds.read("omega", 0..1, 1..2).unwrap();
    let y = ds.y.clone().unwrap();
    let err = w.iter().enumerate().fold(0.0_f64, |m, (p, v)| m.max((v + 0.8 * y[p / 16].cos()).abs()));
    assert!(err < 1e-5, "largest difference from −0.8 cos y: {err:e}");
}

#[test]
fn unrunnable_configurations_are_refused() {
    let err = |pde: &str, sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load(pde, None, &sets, None, None).unwrap_err().to_string()
    };
    let m = err("navier-stokes2d", &["scheme.name=fv-muscl"]);
    assert!(m.contains("scheme.name") && m.contains("spectral"), "{m}");
    let m = err("burgers2d", &["forcing.amplitude=1.0"]);
    assert!(m.contains("forcing"), "{m}");
    let m = err("navier-stokes2d", &["forcing.drag=-1"]);
    assert!(m.contains("forcing"), "{m}");
    let m = err("navier-stokes2d", &["forcing.strength=1"]);
    assert!(m.contains("strength"), "{m}");
}

/// A spin-up of T starts the saved levels where a run without one is at T, and a coarsened file holds the
/// restricted levels with the coarse grid and step in its generation_config.
#[test]
fn spin_up_skips_the_transient_and_coarsening_restricts_it() {
    use ansatz_datasets::generate::solve_sample;
    let base = ["grid.n=16", "time.save_every=0.1", "time.dt=0.025", "parameters.nu=0.01"].map(String::from);
    let with = |extra: &[&str]| {
        let mut sets = base.to_vec();
        sets.extend(extra.iter().map(|s| s.to_string()));
        load("navier-stokes2d", None, &sets, Some(1), Some(2)).unwrap()
    };
    let plain = solve_sample(&with(&["time.t_end=0.4"]), 0).unwrap().0.data;
    let spun = solve_sample(&with(&["time.t_end=0.2", "time.spin_up=0.2"]), 0).unwrap().0.data;
    let frame = 256;
    let diff = spun[..frame].iter().zip(&plain[2 * frame..3 * frame]).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff < 1e-10, "level 0 after a spin-up of 0.2 differs from t = 0.2 by {diff:e}");
    assert!(spun[..frame].iter().zip(&plain[..frame]).any(|(a, b)| (a - b).abs() > 1e-3));

    let dir = tempfile::tempdir().unwrap();
    let (fine, coarse) = (dir.path().join("fine.nc"), dir.path().join("coarse.nc"));
    generate(&with(&["time.t_end=0.2"]), &fine, &GenerateOptions::default(), |_, _| {}).unwrap();
    ansatz_datasets::coarsen::coarsen(&fine, &coarse, 2, false, |_, _| {}).unwrap();
    let ds = Dataset::open(&coarse).unwrap();
    assert_eq!(ds.read("omega", 0..1, 0..3).unwrap().shape(), &[1, 3, 8, 8]);
    let config = ds.text_attribute("generation_config").unwrap();
    let spec = load("navier-stokes2d", Some(("generation_config", &config)), &[], None, None).unwrap();
    assert_eq!((spec.n, spec.dt), (8, Some(0.05)));
    assert!(ds.text_attribute("coarsened_from").is_some_and(|t| t.contains("Fourier truncation")));
    let again = ansatz_datasets::coarsen::coarsen(&fine, &coarse, 2, false, |_, _| {}).unwrap_err().to_string();
    assert!(again.contains("exists"), "{again}");
    let odd = ansatz_datasets::coarsen::coarsen(&fine, &dir.path().join("c3.nc"), 3, false, |_, _| {}).unwrap_err();
    assert!(odd.to_string().contains("divisible"), "{odd}");
}
