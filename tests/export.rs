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
