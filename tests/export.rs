//! `ansatz export-system`: MatrixMarket files that read back exactly and that scipy reads and solves.

use std::process::Command;

use ansatz_datasets::mtx::read_matrix;

#[test]
fn exported_systems_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (system, n) in [("poisson2d", "12"), ("poisson3d", "6")] {
        let out = dir.path().join(format!("{system}.mtx"));
        let o = Command::new(env!("CARGO_BIN_EXE_ansatz"))
            .args(["export-system", system, "--n", n, "--seed", "3", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a = read_matrix(&out).unwrap();
        let dims = if system == "poisson2d" { 2 } else { 3 };
        let (p, f) = ansatz_datasets::problems::random_poisson(dims, n.parse().unwrap(), 3).unwrap();
        assert_eq!(a, p.assemble(), "{system}: matrix differs after the round trip");
        let text = std::fs::read_to_string(dir.path().join(format!("{system}.rhs.mtx"))).unwrap();
        let vals: Vec<f64> =
            text.lines().filter(|l| !l.starts_with('%')).skip(1).map(|l| l.trim().parse().unwrap()).collect();
        assert_eq!(vals, p.rhs(&f).unwrap());
        assert!(text.contains("x fastest"), "the header names the ordering");
        // no overwrite without --force
        let again = Command::new(env!("CARGO_BIN_EXE_ansatz"))
            .args(["export-system", system, "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(2));
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
