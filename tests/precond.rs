//! `ansatz precond train`: a DCDM network trained on a Ritz dataset from the command line, an interrupted run
//! resumed to the same weights as an uninterrupted one, and bad input refused with exit code 2.

use std::path::Path;
use std::process::{Command, Output};

fn ansatz(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ansatz"));
    c.current_dir(dir).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

const SETS: [&str; 10] = [
    "--set",
    "training.steps=12",
    "--set",
    "model.channels=3",
    "--set",
    "training.checkpoint_every=4",
    "--set",
    "schedule.warmup_steps=2",
    "--set",
    "training.validate_every=6",
];

#[test]
fn precond_train_writes_a_run_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = ansatz(
        d,
        &["generate", "ritz-poisson2d", "--out", "r.nc", "--samples", "40", "--set", "grid.n=10"]
            .iter()
            .chain(&["--set", "systems.count=2", "--set", "lanczos.steps=25"])
            .copied()
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let train = |out: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["precond", "train", "dcdm-poisson2d", "--data", "r.nc", "--out", out];
        args.extend(SETS);
        args.extend(extra);
        ansatz(d, &args, env)
    };
    let o = train("whole", &[], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("12 steps") && stdout.contains("held-out line-search loss"), "{stdout}");
    for f in ["config.toml", "run.json", "checkpoint.ckpt", "metrics.csv", "summary.json"] {
        assert!(d.join("whole").join(f).exists(), "{f}");
    }
    // interrupted after 4 steps, resumed: the same checkpoint bytes as the run that was not interrupted
    let o = train("parts", &[], &[("ANSATZ_STOP_AFTER", "4")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = train("parts", &["--resume"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |run: &str| std::fs::read(d.join(run).join("checkpoint.ckpt")).unwrap();
    assert_eq!(read("whole"), read("parts"), "resumed weights differ");
    // export: a file whose network gives the run's outputs bit for bit; a second export needs --force
    let o = ansatz(d, &["precond", "export", "--run", "whole", "--out", "net.apc"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = ansatz_operators::precond_file::PrecondFile::load(&d.join("net.apc")).unwrap();
    let device = burn::prelude::Device::flex();
    let from_run = ansatz_training::methods::dcdm::load_network(&d.join("whole"), &device).unwrap();
    let x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.41).cos()).collect();
    let x = burn::prelude::Tensor::<5>::from_data(burn::tensor::TensorData::new(x, [1, 1, 1, 10, 10]), &device);
    let bits = |t: burn::prelude::Tensor<5>| {
        t.into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(bits(file.network(&device).unwrap().forward(x.clone())), bits(from_run.forward(x)));
    let o = ansatz(d, &["precond", "export", "--run", "whole", "--out", "net.apc"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    // a damaged file is refused by name
    let mut bytes = std::fs::read(d.join("net.apc")).unwrap();
    let k = bytes.len() / 2;
    bytes[k] ^= 0x40;
    std::fs::write(d.join("bad.apc"), &bytes).unwrap();
    let e = ansatz_operators::precond_file::PrecondFile::load(&d.join("bad.apc")).unwrap_err().to_string();
    assert!(e.contains("bad.apc") && e.contains("checksum"), "{e}");
    // solve an exported system: full orthogonalisation on 16 unknowns converges whatever the directions
    let o = ansatz(d, &["export-system", "poisson2d", "--n", "4", "--out", "A.mtx"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ansatz(
        d,
        &["precond", "solve", "--model", "net.apc", "--system", "A.mtx", "--method", "fcg", "--orthogonalise", "20"]
            .iter()
            .chain(&["--tol", "1e-8", "--max-iter", "60", "--json", "--plot", "history"])
            .copied()
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["converged"], true, "{report}");
    assert_eq!(report["unknowns"], 16);
    assert!(report["relative_residual"].as_f64().unwrap() <= 1e-8);
    let its = report["iterations"].as_u64().unwrap();
    assert!((1..=20).contains(&its), "{report}");
    assert_eq!(report["residuals"].as_array().unwrap().len() as u64, its + 1);
    // plain PCG with the multilevel network, which is linear and symmetric positive definite
    let o = ansatz(
        d,
        &["precond", "solve", "--model", "net.apc", "--system", "A.mtx", "--method", "pcg", "--tol", "1e-8"]
            .iter()
            .chain(&["--max-iter", "60", "--json"])
            .copied()
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pcg: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pcg["converged"], true, "{pcg}");
    assert!(pcg["relative_residual"].as_f64().unwrap() <= 1e-8, "{pcg}");
    // in exact arithmetic PCG and flexible CG take the same iterations; the network's f32 round-off costs PCG a
    // few more here, on a system small enough for fully orthogonalised flexible CG to end in at most 16
    let pcg_its = pcg["iterations"].as_u64().unwrap();
    assert!((its..=its + 4).contains(&pcg_its), "PCG {pcg_its} against flexible CG {its}");
    // the residual history as a figure, beside unpreconditioned CG
    let svg = std::fs::read_to_string(d.join("history.svg")).unwrap();
    assert!(svg.contains("flexible CG with the network") && svg.contains("CG, no preconditioner"), "{svg}");
    assert_eq!(&std::fs::read(d.join("history.png")).unwrap()[..4], b"\x89PNG");
    // the solution: written on request, A x = b to the tolerance, not overwritten without --force
    let solve = |extra: &[&str]| {
        let args: Vec<&str> = ["precond", "solve", "--model", "net.apc", "--system", "A.mtx", "--method", "fcg"]
            .iter()
            .chain(&["--orthogonalise", "20", "--tol", "1e-10", "--solution", "x.mtx"])
            .chain(extra)
            .copied()
            .collect();
        ansatz(d, &args, &[])
    };
    let o = solve(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = ansatz_datasets::mtx::read_vector(&d.join("x.mtx")).unwrap();
    let a = ansatz_datasets::mtx::read_matrix(&d.join("A.mtx")).unwrap();
    let b = ansatz_datasets::mtx::read_vector(&d.join("A.rhs.mtx")).unwrap();
    let mut ax = vec![0.0; b.len()];
    ansatz_solvers::linalg::LinearOperator::apply(&a, &x, &mut ax);
    let (res, bn): (f64, f64) = (ax.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum(), b.iter().map(|q| q * q).sum());
    assert!((res / bn).sqrt() <= 1e-10, "relative residual of the written solution {}", (res / bn).sqrt());
    let o = solve(&[]);
    assert_eq!(o.status.code(), Some(2), "an existing --solution file is refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(solve(&["--force"]).status.success());
    // DCDM on the same system runs and reports, converged or not (exit 0 or 1, never a crash)
    let o = ansatz(d, &["precond", "solve", "--model", "net.apc", "--system", "A.mtx", "--max-iter", "5"], &[]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("16 unknowns"));
    // bad input: a 3D system for a 2D network, a grid that does not fit, a damaged model, a missing rhs
    let o = ansatz(d, &["export-system", "poisson3d", "--n", "3", "--out", "B.mtx"], &[]);
    assert!(o.status.success());
    std::fs::copy(d.join("A.mtx"), d.join("C.mtx")).unwrap();
    for (args, needle) in [
        (vec!["--system", "B.mtx", "--model", "net.apc"], "2D network for a 3D grid"),
        (vec!["--system", "A.mtx", "--model", "net.apc", "--grid", "5,5"], "the grid in use is [1, 5, 5]"),
        (vec!["--system", "A.mtx", "--model", "bad.apc"], "checksum"),
        (vec!["--system", "C.mtx", "--model", "net.apc"], "C.rhs.mtx"),
        (vec!["--system", "A.mtx", "--model", "net.apc", "--tol", "2"], "--tol"),
    ] {
        let mut all = vec!["precond", "solve"];
        all.extend(args.iter());
        let o = ansatz(d, &all, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // the residual CNN is nonlinear: PCG refuses it and names the way out
    let o = train("res", &["--set", "model.kind=residual"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ansatz(d, &["precond", "export", "--run", "res", "--out", "res.apc"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ansatz(d, &["precond", "solve", "--model", "res.apc", "--system", "A.mtx", "--method", "pcg"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("residual CNN") && err.contains("--method fcg"), "{err}");
    // an existing run is not overwritten without --force
    let o = train("whole", &[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
}

#[test]
fn precond_train_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = ansatz(d, &["generate", "poisson2d", "--out", "p.nc", "--samples", "2", "--set", "grid.n=8"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (args, needle) in [
        (vec!["precond", "train", "dcdm-poisson2d", "--data", "p.nc", "--out", "a"], "not of Ritz right-hand sides"),
        (vec!["precond", "train", "dcdm-poisson2d", "--data", "missing.nc", "--out", "b"], "missing.nc"),
        (vec!["precond", "train", "nonesuch", "--data", "p.nc"], "not an embedded configuration"),
        (vec!["precond", "train", "dcdm-poisson2d", "--data", "p.nc", "--set", "model.chanels=2"], "chanels"),
        (vec!["precond", "train", "dcdm-poisson2d", "--out", "c"], "no dataset"),
    ] {
        let o = ansatz(d, &args, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
