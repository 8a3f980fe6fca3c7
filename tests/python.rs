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

/// `benches/gpu/gpu_check.py` reads checkpoints and rollout summaries itself (the GPU machine has nothing but
/// Python's standard library): its readers must agree with the formats the binary writes.
/// A tiny FNO trained for 3 steps on 6 generated 1D trajectories (`DIR/b.nc`, run `DIR/run`) and its 3-step
/// rollout without figures or solver baseline (`DIR/report`).
fn tiny_rollout(dir: &std::path::Path) {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["generate", "burgers1d", "--samples", "6", "--out", &p("b.nc"), "--set", "grid.n=32"]);
    std::fs::write(
        p("tiny.toml"),
        "[data]\nhistory = 2\nhorizon = 2\nvalidation = 0.2\ntest = 0.2\n\
         [model]\nkind = \"fno\"\nwidth = 6\nlayers = 1\nmodes = 4\nprojection = 8\n[training]\nsteps = 3\nbatch = 2\n",
    )
    .unwrap();
    run(&["train", &p("tiny.toml"), "--data", &p("b.nc"), "--out", &p("run")]);
    run(&["rollout", "--run", &p("run"), "--out", &p("report"), "--steps", "3", "--no-plots", "--no-baseline"]);
}

#[test]
fn the_gpu_check_reads_our_checkpoints_and_rollout_summaries() {
    let python = std::env::var("ANSATZ_PYTHON").unwrap_or_else(|_| "python3".into());
    if Command::new(&python).arg("--version").output().is_err() {
        eprintln!("no Python interpreter: skipping the gpu_check reader check (make test runs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    tiny_rollout(dir.path());
    let script = "import json, sys\n\
                  sys.path.insert(0, sys.argv[1])\n\
                  import gpu_check as g\n\
                  p = g.checkpoint_params(sys.argv[2])\n\
                  n = g.nrmse_at(json.load(open(sys.argv[3])))\n\
                  print(len(p), repr(sum(p)), json.dumps(n))\n";
    let o = Command::new(&python)
        .args(["-c", script, concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gpu")])
        .args([p("run/checkpoint.ckpt"), p("report/summary.json")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let mut parts = out.trim().splitn(3, ' ');
    let (count, sum) = (parts.next().unwrap(), parts.next().unwrap());
    let nrmse: std::collections::BTreeMap<String, f64> = serde_json::from_str(parts.next().unwrap()).unwrap();
    let ck = ansatz_training::checkpoint::Checkpoint::load(&dir.path().join("run/checkpoint.ckpt")).unwrap();
    assert_eq!(count.parse::<usize>().unwrap(), ck.params.len());
    let expected: f64 = ck.params.iter().map(|&v| v as f64).sum();
    assert_eq!(sum.parse::<f64>().unwrap(), expected, "the parameters read by Python differ");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report/summary.json")).unwrap()).unwrap();
    let first = summary["nrmse_at"][0][1]["median"].as_f64().unwrap();
    assert_eq!(nrmse["1"], first);
    assert!(nrmse.contains_key("3"), "{nrmse:?}");
}

/// Every kind of NetCDF file Ansatz writes passes the IOOS compliance checker (`--test=cf:1.11`) with no error
/// and no warning: each `generate` kind, `solve`, the shards of `mpirun generate` and their `merge`, and the
/// rollout's `predictions.nc` and `metrics.nc` (tests/python/cf_check.py; `make test` installs the checker).
#[test]
fn every_file_we_write_passes_the_cf_checker() {
    let Ok(python) = std::env::var("ANSATZ_PYTHON") else {
        eprintln!("ANSATZ_PYTHON is not set: skipping the CF compliance check (make test runs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let short = ["--set", "time.t_end=0.1", "--set", "time.save_every=0.05"];
    let kinds: [(&str, &str, &[&str]); 8] = [
        ("burgers1d", "2", &["--set", "grid.n=32"]),
        ("burgers1d-shocks", "2", &["--set", "grid.n=32"]),
        ("burgers2d", "2", &["--set", "grid.n=8"]),
        ("poisson2d", "2", &["--set", "grid.n=8"]),
        ("poisson3d", "2", &["--set", "grid.n=4"]),
        ("elasticity2d", "2", &["--set", "grid.n=8"]),
        ("ritz-poisson2d", "8", &["--set", "grid.n=8"]),
        ("ritz-poisson3d", "8", &["--set", "grid.n=4"]),
    ];
    let mut files = vec![];
    for (kind, samples, sets) in kinds {
        let out = p(&format!("{kind}.nc"));
        let time: &[&str] = if kind.starts_with("burgers") { &short } else { &[] };
        run(&[&["generate", kind, "--samples", samples, "--out", &out], sets, time].concat());
        files.push(out);
    }
    // `solve` from initial conditions written by another program (ncgen)
    let xs: Vec<String> = (0..16).map(|i| format!("{}", (i as f64 + 0.5) / 16.0)).collect();
    let us: Vec<String> = (0..32).map(|i| format!("{:.6}", (i as f64 * 0.4).sin())).collect();
    let cdl = format!(
        "netcdf ic {{\ndimensions:\n sample = 2 ;\n x = 16 ;\nvariables:\n double x(x) ;\n double u(sample, x) ;\n\
         data:\n x = {} ;\n u = {} ;\n}}\n",
        xs.join(", "),
        us.join(", ")
    );
    std::fs::write(p("ic.cdl"), cdl).unwrap();
    let o = Command::new("ncgen").args(["-4", "-o", &p("ic.nc"), &p("ic.cdl")]).output().expect("ncgen (netcdf-bin)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run(&[
        "solve",
        "burgers1d",
        "--init",
        &p("ic.nc"),
        "--t-end",
        "0.1",
        "--save-every",
        "0.05",
        "--out",
        &p("solved.nc"),
    ]);
    files.push(p("solved.nc"));
    // the shards of two ranks and their merge
    let o = Command::new("mpirun")
        .args(["--oversubscribe", "-np", "2", env!("CARGO_BIN_EXE_ansatz"), "generate", "burgers1d", "--samples", "3"])
        .args(["--out", &p("sharded.nc"), "--set", "grid.n=32"])
        .args(short)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("mpirun (openmpi-bin) is installed by make test");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run(&["merge", &p("sharded.manifest.json"), "--out", &p("merged.nc")]);
    files.extend([p("sharded.rank-0000.nc"), p("sharded.rank-0001.nc"), p("merged.nc")]);
    // a rollout's predictions and metrics
    tiny_rollout(dir.path());
    files.extend([p("report/predictions.nc"), p("report/metrics.nc")]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/cf_check.py");
    let o = Command::new(&python).arg(script).args(&files).output().expect("run the Python interpreter");
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    assert!(
        o.status.success(),
        "the CF checker found errors or warnings:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out.lines().filter(|l| l.contains(": 0 errors, 0 warnings")).count(), files.len(), "{out}");

    // the check can fail: a file laid out as schema 1 wrote it (a `time` axis T in units "1") has two errors
    let cdl = "netcdf old {\ndimensions:\n time = 2 ;\nvariables:\n double time(time) ;\n  time:units = \"1\" ;\n  \
               time:axis = \"T\" ;\n  time:long_name = \"time\" ;\n float u(time) ;\n  u:units = \"1\" ;\n  \
               u:long_name = \"velocity\" ;\n:Conventions = \"CF-1.11\" ;\n:title = \"t\" ;\n:history = \"h\" ;\n\
               data:\n time = 0, 1 ;\n u = 0, 1 ;\n}\n";
    std::fs::write(p("old.cdl"), cdl).unwrap();
    let o = Command::new("ncgen").args(["-4", "-o", &p("old.nc"), &p("old.cdl")]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(&python).arg(script).arg(p("old.nc")).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("2 errors") && out.contains("time does not have correct time units"), "{out}");
}
