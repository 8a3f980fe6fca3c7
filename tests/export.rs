//! `ansatz export-system`: MatrixMarket files that read back to the last digit and that scipy reads and solves.

use std::process::Command;

use ansatz_datasets::mtx::read_matrix;

#[test]
fn exported_systems_read_back() {
    let dir = tempfile::tempdir().unwrap();
    for (system, n) in [("poisson2d", "12"), ("poisson3d", "6"), ("elasticity2d", "8")] {
        let out = dir.path().join(format!("{system}.mtx"));
        let o = Command::new(env!("CARGO_BIN_EXE_ansatz"))
            .args(["export-system", system, "--n", n, "--seed", "3", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a = read_matrix(&out).unwrap();
        let (matrix, rhs) = if system == "elasticity2d" {
            let (p, rhs) = ansatz_datasets::problems::random_elasticity(n.parse().unwrap(), 3).unwrap();
            (p.assemble(), rhs)
        } else {
            let dims = if system == "poisson2d" { 2 } else { 3 };
            let (p, f) = ansatz_datasets::problems::random_poisson(dims, n.parse().unwrap(), 3).unwrap();
            (p.assemble(), p.rhs(&f).unwrap())
        };
        // values are written with 17 digits; the upper triangle of a symmetric file is the mirrored lower one, so
        // entries whose sum of contributions was rounded differently on either side may differ in the last bit
        assert_eq!(a.nnz(), matrix.nnz(), "{system}");
        let scale = matrix.to_dense().iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let d = a.to_dense().iter().zip(matrix.to_dense()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(d <= 1e-15 * scale, "{system}: matrix differs by {d} after the round trip");
        let text = std::fs::read_to_string(dir.path().join(format!("{system}.rhs.mtx"))).unwrap();
        let vals: Vec<f64> =
            text.lines().filter(|l| !l.starts_with('%')).skip(1).map(|l| l.trim().parse().unwrap()).collect();
        assert_eq!(vals, rhs, "{system}: right-hand side");
        let rhs_path = dir.path().join(format!("{system}.rhs.mtx"));
        assert_eq!(ansatz_datasets::mtx::read_vector(&rhs_path).unwrap(), rhs, "{system}: read_vector");
        if system != "elasticity2d" {
            // the grid, machine-readable, for `ansatz precond solve`
            let grid = if system == "poisson2d" { format!("{n} {n}") } else { format!("{n} {n} {n}") };
            let comments = ansatz_datasets::mtx::read_comments(&out).unwrap();
            assert!(comments.iter().any(|c| *c == format!("ansatz-grid: {grid}")), "{comments:?}");
        }
        let header = std::fs::read_to_string(&out).unwrap();
        assert!(header.contains("ordering"), "the header names the ordering");
        // no overwrite without --force
        let again = Command::new(env!("CARGO_BIN_EXE_ansatz"))
            .args(["export-system", system, "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(2));
        // damaged vectors are refused with the file's name
        let bad = dir.path().join("bad.rhs.mtx");
        for body in [
            "%%MatrixMarket matrix array real general\n3 1\n1\n2\n",
            "%%MatrixMarket matrix array real general\n2 1\n1\nx\n",
            "hello\n",
            "%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n",
        ] {
            std::fs::write(&bad, body).unwrap();
            let e = ansatz_datasets::mtx::read_vector(&bad).unwrap_err().to_string();
            assert!(e.contains("bad.rhs.mtx"), "{e}");
        }
        if let Ok(python) = std::env::var("ANSATZ_PYTHON") {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/read_system.py");
            let rhs = dir.path().join(format!("{system}.rhs.mtx"));
            let o = Command::new(&python).arg(script).arg(&out).arg(&rhs).output().unwrap();
            assert!(
                o.status.success(),
                "scipy check failed:\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

fn export(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ansatz")).current_dir(dir).arg("export-system").args(args).output().unwrap()
}

#[test]
fn a_dataset_system_is_exported_with_its_solids_and_cells() {
    use ansatz_datasets::{ritz, statics};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // poisson2d: the system of sample i of `ansatz generate poisson2d` with the same settings
    let sets = ["mask.max_solids=3", "coefficient.log_contrast=2"];
    let spec = statics::load(
        statics::StaticPde::Poisson2d,
        None,
        &[sets[0].to_string(), sets[1].to_string(), "grid.n=12".to_string()],
        None,
        Some(5),
    )
    .unwrap();
    // a sample with solids, so that the cells file matters
    let i = (0..50).find(|&i| statics::poisson_sample(&spec, i).unwrap().problem.unknowns() < 144).expect("solids");
    let sample = i.to_string();
    let o = export(
        d,
        &[
            "poisson2d",
            "--n",
            "12",
            "--seed",
            "5",
            "--set",
            sets[0],
            "--set",
            sets[1],
            "--sample",
            &sample,
            "--out",
            "P.mtx",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = statics::poisson_sample(&spec, i).unwrap();
    let a = read_matrix(&d.join("P.mtx")).unwrap();
    let m = s.problem.assemble();
    assert_eq!((a.nrows(), a.nnz()), (m.nrows(), m.nnz()));
    let diff = a.to_dense().iter().zip(m.to_dense()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(diff <= 1e-15 * m.to_dense().iter().fold(0.0_f64, |t, v| t.max(v.abs())), "{diff}");
    let rhs = ansatz_datasets::mtx::read_vector(&d.join("P.rhs.mtx")).unwrap();
    assert_eq!(rhs, s.problem.rhs(&s.f).unwrap());
    let cells = ansatz_datasets::mtx::read_vector(&d.join("P.cells.mtx")).unwrap();
    assert_eq!(cells, s.problem.cells().iter().map(|&c| c as f64).collect::<Vec<_>>());
    let comments = ansatz_datasets::mtx::read_comments(&d.join("P.mtx")).unwrap();
    assert!(comments.iter().any(|c| c == "ansatz-grid: 12 12"), "{comments:?}");
    assert!(comments.iter().any(|c| c.contains("max_solids = 3")), "the config is recorded: {comments:?}");

    // ritz-poisson2d: system K of the dataset, its first sample as the right-hand side
    let rsets: Vec<String> =
        ["grid.n=10", "samples=12", "systems.count=3", "lanczos.steps=30"].iter().map(|s| s.to_string()).collect();
    let mut args = vec!["ritz-poisson2d", "--seed", "2", "--system", "2", "--out", "R.mtx"];
    for s in &rsets {
        args.extend(["--set", s.as_str()]);
    }
    let o = export(d, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spec = ritz::load(ritz::RitzPde::Poisson2d, None, &rsets, None, Some(2)).unwrap();
    let system = ritz::build_system(&spec, 2).unwrap();
    let first = (0..spec.samples).find(|&i| ritz::system_of(&spec, i) == 2).unwrap();
    let a = read_matrix(&d.join("R.mtx")).unwrap();
    assert_eq!(a.nrows(), system.problem.unknowns());
    assert_eq!(
        ansatz_datasets::mtx::read_vector(&d.join("R.rhs.mtx")).unwrap(),
        ritz::sample_rhs(&spec, &system, first)
    );
    let cells = ansatz_datasets::mtx::read_vector(&d.join("R.cells.mtx")).unwrap();
    assert_eq!(cells.len(), a.nrows());

    // bad requests: exit 2 with the reason
    for (args, needle) in [
        (vec!["ritz-poisson2d", "--set", "systems.count=3", "--system", "3", "--out", "X.mtx"], "--system"),
        (vec!["ritz-poisson2d", "--sample", "1", "--out", "X.mtx"], "--system K"),
        (vec!["elasticity2d", "--set", "mask.max_solids=1", "--out", "X.mtx"], "elasticity2d"),
        (vec!["poisson2d", "--set", "mask.solids=1", "--out", "X.mtx"], "solids"),
        (vec!["poisson2d", "--system", "1", "--out", "X.mtx"], "--system"),
        (vec!["heat2d", "--out", "X.mtx"], "unknown system"),
    ] {
        let o = export(d, &args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!d.join("X.mtx").exists());
    }
    // nothing is overwritten without --force, the cells file included
    std::fs::remove_file(d.join("P.mtx")).unwrap();
    let o = export(d, &["poisson2d", "--n", "12", "--sample", "0", "--out", "P.mtx"]);
    assert_eq!(o.status.code(), Some(2), "P.rhs.mtx and P.cells.mtx exist");
    assert!(!d.join("P.mtx").exists());
}
