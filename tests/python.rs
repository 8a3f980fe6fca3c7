//! A real client reads our files: `examples/python/open_dataset.py` opens generated 1D and 2D datasets with
//! xarray and netCDF4 and checks dimensions, coordinates and attributes. `make test` creates the Python
//! environment under `target/pyenv` and sets `ANSATZ_PYTHON`; without it the test says so and does nothing.

use std::process::Command;

#[test]
fn xarray_opens_generated_datasets() {
    let Ok(python) = std::env::var("ANSATZ_PYTHON") else {
        eprintln!("ANSATZ_PYTHON is not set: skipping the xarray check (make test runs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("b1.nc");
    let two = dir.path().join("b2.nc");
    for (pde, out, n) in [("burgers1d", &one, "64"), ("burgers2d", &two, "16")] {
        let o = Command::new(env!("CARGO_BIN_EXE_ansatz"))
            .args(["generate", pde, "--samples", "2", "--out", out.to_str().unwrap(), "--set", &format!("grid.n={n}")])
            .args(["--set", "time.t_end=0.1", "--set", "time.save_every=0.05"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/open_dataset.py");
    let o = Command::new(&python).arg(script).arg(&one).arg(&two).output().expect("run the Python interpreter");
    assert!(
        o.status.success(),
        "xarray check failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
