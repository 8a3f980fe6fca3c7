//! `ansatz generate`, `solve` and `info` end to end: files readable by our reader and by ncdump, resume after a
//! kill, bad input with exit code 2 and a message naming the file, variable or key, hostile files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ansatz_datasets::reader::Dataset;

/// Serialises process creation with the files this test process writes through libnetcdf: a child forked while
/// another thread has an HDF5 file open inherits its descriptor and file lock, and would keep the file locked
/// after this process closes it.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawn(cmd: &mut Command) -> std::process::Child {
    let _guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("run ansatz")
}

fn ansatz(args: &[&str]) -> Output {
    spawn(Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args)).wait_with_output().expect("run ansatz")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const SMALL_1D: [&str; 6] = ["--set", "grid.n=64", "--set", "time.t_end=0.2", "--set", "time.save_every=0.05"];

/// A user file with variable u on the given dims (values from f), optional coordinate x, in NetCDF-4 or classic.
fn user_file(
    path: &Path,
    dims: &[(&str, usize)],
    vars: &[(&str, &[&str])],
    classic: bool,
    value: impl Fn(usize) -> f64,
) {
    ansatz_datasets::quiet_hdf5();
    let _guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let opts = if classic { netcdf::Options::empty() } else { netcdf::Options::NETCDF4 };
    let mut f = netcdf::create_with(path, opts).unwrap();
    for (name, len) in dims {
        f.add_dimension(name, *len).unwrap();
    }
    for (name, vdims) in vars {
        f.add_variable::<f64>(name, vdims).unwrap();
    }
    if classic {
        f.enddef().unwrap();
    }
    for (name, vdims) in vars {
        let n: usize = vdims.iter().map(|d| dims.iter().find(|(k, _)| k == d).unwrap().1).product();
        let vals: Vec<f64> = (0..n).map(&value).collect();
        f.variable_mut(name).unwrap().put_values(&vals, ..).unwrap();
    }
}

#[test]
fn generate_writes_a_valid_dataset_that_ncdump_and_our_reader_accept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b1.nc");
    let o = ansatz(
        &[&["generate", "burgers1d", "--samples", "3", "--seed", "5", "--out", p(&out)], &SMALL_1D[..]].concat(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!dir.path().join("b1.nc.partial").exists());
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(
        (ds.pde.as_str(), ds.samples, ds.samples_complete, ds.times.len(), ds.x.len()),
        ("burgers1d", 3, 3, 5, 64)
    );
    assert_eq!(ds.grid_type, "cell_centered");
    let u = ds.read("u", 1..3, 0..5).unwrap();
    assert_eq!(u.shape(), &[2, 5, 64]);
    assert!(u.iter().all(|v| v.is_finite()));
    let nu = ds.parameter("nu").unwrap();
    assert!(nu.iter().all(|v| (1e-3..1e-1).contains(v)));
    // a real client: ncdump reads the header
    let d = spawn(Command::new("ncdump").arg("-h").arg(&out))
        .wait_with_output()
        .expect("ncdump (netcdf-bin) is installed by make");
    assert!(d.status.success());
    let h = String::from_utf8_lossy(&d.stdout);
    for needle in [
        "float u(sample, t, x)",
        "double x_bnds(x, nv)",
        ":Conventions = \"CF-1.11\"",
        ":samples_complete = 3LL",
        "x:units = \"1\"",
    ] {
        assert!(h.contains(needle), "ncdump -h lacks {needle}:\n{h}");
    }
    // the same seed gives the same data; existing output needs --force
    let o = ansatz(
        &[&["generate", "burgers1d", "--samples", "3", "--seed", "5", "--out", p(&out)], &SMALL_1D[..]].concat(),
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let again = dir.path().join("again.nc");
    let o = ansatz(
        &[&["generate", "burgers1d", "--samples", "3", "--seed", "5", "--out", p(&again)], &SMALL_1D[..]].concat(),
    );
    assert_eq!(code(&o), 0);
    assert_eq!(Dataset::open(&again).unwrap().read("u", 0..3, 0..5).unwrap(), ds.read("u", 0..3, 0..5).unwrap());
}

#[test]
fn generate_2d_into_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let o = ansatz(&[
        "generate",
        "burgers2d",
        "--samples",
        "2",
        "--out",
        &format!("{}/", dir.path().display()),
        "--set",
        "grid.n=16",
        "--set",
        "time.t_end=0.1",
        "--set",
        "time.save_every=0.05",
        "--set",
        "scheme.name=spectral",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ds = Dataset::open(&dir.path().join("burgers2d.nc")).unwrap();
    assert_eq!(ds.fields, ["u", "v"]);
    assert_eq!(ds.grid_type, "spectral_collocation");
    assert_eq!(ds.read("v", 0..2, 0..3).unwrap().shape(), &[2, 3, 16, 16]);
}

#[test]
fn resume_after_a_kill_is_bitwise_identical() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        [
            "generate",
            "burgers1d",
            "--samples",
            "24",
            "--seed",
            "11",
            "--out",
            p(out),
            "--set",
            "grid.n=256",
            "--set",
            "nu=0.004",
            "--set",
            "time.t_end=0.5",
            "--set",
            "time.save_every=0.05",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let full = dir.path().join("full.nc");
    let t0 = Instant::now();
    let o = spawn(Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args(&full))).wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let whole = t0.elapsed();
    // interrupt a second run about halfway, then resume it
    let cut = dir.path().join("cut.nc");
    let mut child = spawn(Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args(&cut)));
    std::thread::sleep(whole / 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = dir.path().join("cut.nc.partial");
    assert!(!cut.exists(), "a killed run must not leave a complete-looking file");
    assert!(partial.exists(), "the killed run left no partial file");
    let o = ansatz(&args(&cut).iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    let resumed: usize = said
        .split("resumed after ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the run did not resume mid-way: {said}"));
    assert!(resumed > 0 && resumed < 24, "{said}");
    assert!(cut.exists() && !partial.exists());
    let (a, b) = (Dataset::open(&full).unwrap(), Dataset::open(&cut).unwrap());
    let ua = a.read("u", 0..24, 0..11).unwrap();
    let ub = b.read("u", 0..24, 0..11).unwrap();
    assert!(ua.iter().zip(ub.iter()).all(|(x, y)| x.to_bits() == y.to_bits()), "resumed data differ");
    assert_eq!(a.parameter("nu").unwrap(), b.parameter("nu").unwrap());
    assert_eq!(a.parameter("solver_dt").unwrap(), b.parameter("solver_dt").unwrap());
    // resume with a different config is refused
    let o = ansatz(&["generate", "burgers1d", "--resume", "--out", p(&dir.path().join("none.nc"))]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("partial"), "{}", stderr(&o));
}

#[test]
fn solve_reads_initial_conditions_from_any_producer() {
    let dir = tempfile::tempdir().unwrap();
    let n = 32;
    let h = 2.0 * std::f64::consts::PI / n as f64;
    for classic in [false, true] {
        let ic = dir.path().join(format!("ic-{classic}.nc"));
        {
            let _guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let opts = if classic { netcdf::Options::empty() } else { netcdf::Options::NETCDF4 };
            let mut f = netcdf::create_with(&ic, opts).unwrap();
            f.add_dimension("sample", 2).unwrap();
            f.add_dimension("x", n).unwrap();
            f.add_variable::<f64>("x", &["x"]).unwrap();
            f.add_variable::<f32>("u", &["sample", "x"]).unwrap();
            if classic {
                f.enddef().unwrap();
            }
            let xs: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) * h).collect();
            f.variable_mut("x").unwrap().put_values(&xs, ..).unwrap();
            let u: Vec<f32> = (0..2 * n).map(|k| ((k % n) as f64 * h + (k / n) as f64).sin() as f32).collect();
            f.variable_mut("u").unwrap().put_values(&u, ..).unwrap();
        }
        let out = dir.path().join(format!("out-{classic}.nc"));
        let o = ansatz(&[
            "solve",
            "burgers1d",
            "--init",
            p(&ic),
            "--t-end",
            "0.5",
            "--save-every",
            "0.1",
            "--out",
            p(&out),
            "--set",
            "nu=0.02",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let ds = Dataset::open(&out).unwrap();
        assert_eq!((ds.samples, ds.times.len()), (2, 6));
        assert!((ds.extent[0] - 2.0 * std::f64::consts::PI).abs() < 1e-12);
        assert!((ds.x[3] - 3.5 * h).abs() < 1e-12, "output keeps the input coordinates");
        assert_eq!(ds.parameter("nu").unwrap(), [0.02, 0.02]);
        let u = ds.read("u", 0..1, 0..1).unwrap();
        assert!((u[[0, 0, 5]] - (5.0 * h).sin()).abs() < 1e-6);
    }
    // without coordinates the length must be given
    let bare = dir.path().join("bare.nc");
    user_file(&bare, &[("x", 16)], &[("u", &["x"])], false, |i| (i as f64 * 0.4).sin());
    let out = dir.path().join("bare-out.nc");
    let o =
        ansatz(&["solve", "burgers1d", "--init", p(&bare), "--t-end", "0.1", "--save-every", "0.1", "--out", p(&out)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("length"), "{}", stderr(&o));
    let o = ansatz(&[
        "solve",
        "burgers1d",
        "--init",
        p(&bare),
        "--t-end",
        "0.1",
        "--save-every",
        "0.1",
        "--out",
        p(&out),
        "--set",
        "length=1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn expect_bad(args: &[&str], needles: &[&str]) {
    let o = ansatz(args);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{args:?}: expected exit 2, got {}: {err}", code(&o));
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("ansatz: error: "), "{args:?}: the error must be the last line:\n{err}");
    assert!(!err.contains("panicked") && !err.contains("HDF5-DIAG"), "{args:?}: {err}");
    for n in needles {
        assert!(last.contains(n), "{args:?}: message lacks '{n}': {last}");
    }
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| -> PathBuf { dir.path().join(name) };
    let solve = |ic: &Path| -> Vec<String> {
        [
            "solve",
            "burgers1d",
            "--init",
            p(ic),
            "--t-end",
            "0.1",
            "--save-every",
            "0.05",
            "--out",
            p(&dir.path().join("o.nc")),
            "--set",
            "length=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run =
        |args: Vec<String>, needles: &[&str]| expect_bad(&args.iter().map(String::as_str).collect::<Vec<_>>(), needles);
    // missing or misnamed variable
    user_file(&d("misnamed.nc"), &[("x", 16)], &[("velocity", &["x"])], false, |i| i as f64);
    run(solve(&d("misnamed.nc")), &["misnamed.nc", "'u'", "velocity"]);
    // wrong dimension order
    user_file(&d("order.nc"), &[("x", 16), ("sample", 2)], &[("u", &["x", "sample"])], false, |i| i as f64 * 0.01);
    run(solve(&d("order.nc")), &["order.nc", "'u'", "(x, sample)"]);
    // wrong sizes between components (2D)
    user_file(
        &d("sizes.nc"),
        &[("y", 8), ("x", 8), ("x2", 9)],
        &[("u", &["y", "x"]), ("v", &["y", "x2"])],
        false,
        |_| 0.1,
    );
    let mut a = solve(&d("sizes.nc"));
    a[1] = "burgers2d".into();
    run(a, &["sizes.nc", "'v'"]);
    // non-finite values, in a classic file
    user_file(&d("nan.nc"), &[("x", 16)], &[("u", &["x"])], true, |i| if i == 7 { f64::NAN } else { 0.5 });
    run(solve(&d("nan.nc")), &["nan.nc", "'u'", "x=7"]);
    // unknown PDE, unknown config key, unknown --set key
    expect_bad(&["generate", "burgers3d", "--out", p(&d("x.nc"))], &["burgers3d"]);
    expect_bad(&["generate", "burgers1d", "--out", p(&d("x.nc")), "--set", "grid.size=8"], &["size"]);
    std::fs::write(d("bad.toml"), "pde = \"burgers1d\"\nsamples = 2\nseed = 0\ncolour = 3\n").unwrap();
    expect_bad(
        &["generate", "burgers1d", "--config", p(&d("bad.toml")), "--out", p(&d("x.nc"))],
        &["bad.toml", "colour"],
    );
    let mut a = solve(&d("misnamed.nc"));
    a.extend(["--set".into(), "viscosity=1".into()]);
    run(a, &["viscosity"]);
    // unwritable output path
    expect_bad(&["generate", "burgers1d", "--samples", "1", "--out", "/nonexistent-dir/x.nc"], &["/nonexistent-dir"]);
    // truncated and corrupt files
    let good = d("good.nc");
    let o = ansatz(&[&["generate", "burgers1d", "--samples", "2", "--out", p(&good)], &SMALL_1D[..]].concat());
    assert_eq!(code(&o), 0);
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(d("trunc.nc"), &bytes[..bytes.len() / 2]).unwrap();
    expect_bad(&["info", p(&d("trunc.nc"))], &["trunc.nc"]);
    std::fs::write(d("noise.nc"), b"this is not a netcdf file at all").unwrap();
    expect_bad(&["info", p(&d("noise.nc"))], &["noise.nc", "format"]);
    expect_bad(&["info", p(&d("missing.nc"))], &["missing.nc"]);
}

#[test]
fn a_blow_up_exits_1_and_leaves_no_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("boom.nc");
    let o = ansatz(&[
        "generate",
        "burgers1d",
        "--samples",
        "2",
        "--out",
        p(&out),
        "--set",
        "grid.n=64",
        "--set",
        "time.cfl=10",
        "--set",
        "time.save_every=0.5",
        "--set",
        "nu=0",
        "--set",
        "scheme.name=fv-muscl",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("sample 0") && err.contains("step") && err.contains("t = "), "{err}");
    assert!(!out.exists());
}

/// Deterministic mutants of a file: byte flips, byte runs and truncations.
fn mutants(bytes: &[u8], count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    (0..count)
        .map(|k| {
            let mut m = bytes.to_vec();
            match k % 4 {
                0 | 1 => {
                    // flip bytes, concentrated in the header where sizes live
                    for _ in 0..1 + next() % 4 {
                        let limit = if next() % 2 == 0 { m.len().min(2048) } else { m.len() };
                        let i = next() % limit;
                        m[i] ^= 1 << (next() % 8);
                    }
                }
                2 => {
                    let i = next() % m.len().min(4096);
                    let v = [0x00, 0xff, 0x7f, 0x80][next() % 4];
                    for b in m.iter_mut().skip(i).take(1 + next() % 8) {
                        *b = v;
                    }
                }
                _ => {
                    let keep = next() % m.len();
                    m.truncate(keep);
                }
            }
            m
        })
        .collect()
}

#[test]
fn hostile_files_end_in_exit_0_or_2_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let nc4 = dir.path().join("v4.nc");
    let o = ansatz(&[&["generate", "burgers1d", "--samples", "2", "--out", p(&nc4)], &SMALL_1D[..]].concat());
    assert_eq!(code(&o), 0);
    let classic = dir.path().join("classic.nc");
    user_file(&classic, &[("sample", 2), ("x", 16)], &[("x", &["x"]), ("u", &["sample", "x"])], true, |i| {
        (i as f64).sin()
    });
    // ANSATZ_MUTANTS raises the count per format for a longer run (default 60)
    let count: usize = std::env::var("ANSATZ_MUTANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let budget = Instant::now();
    let mut stats = [0usize; 2];
    let (mut crashed, mut hung) = (0, 0);
    for file in [&nc4, &classic] {
        let bytes = std::fs::read(file).unwrap();
        for (k, m) in mutants(&bytes, count, 7 + count as u64).into_iter().enumerate() {
            let path = dir.path().join(format!("m{k}.nc"));
            std::fs::write(&path, &m).unwrap();
            let o = ansatz(&["info", p(&path)]);
            let c = code(&o);
            assert!(c == 0 || c == 2, "mutant {k} of {}: exit {:?}, stderr {}", file.display(), o.status, stderr(&o));
            if c == 2 {
                let err = stderr(&o);
                assert!(err.contains(&format!("m{k}.nc")), "message must name the file: {err}");
                crashed += err.contains("crashed") as usize;
                hung += err.contains("did not finish") as usize;
            }
            stats[(c == 2) as usize] += 1;
        }
    }
    eprintln!(
        "{} mutants: {} opened, {} refused with exit 2 (libnetcdf crashed in the probe on {crashed}, hung on {hung})",
        stats[0] + stats[1],
        stats[0],
        stats[1]
    );
    assert!(stats[1] > 0, "no mutant was rejected: {stats:?}");
    assert!(budget.elapsed() < Duration::from_secs(60 + count as u64));
}

/// A dataset in the layout of schema 1 (time dimension `time`), as earlier versions wrote it.
fn schema1_file(path: &Path) {
    ansatz_datasets::quiet_hdf5();
    let _guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut f = netcdf::create_with(path, netcdf::Options::NETCDF4).unwrap();
    f.add_dimension("sample", 2).unwrap();
    f.add_dimension("time", 3).unwrap();
    f.add_dimension("x", 8).unwrap();
    for (k, v) in [("Conventions", "CF-1.11"), ("pde", "burgers1d"), ("fields", "u"), ("history", "first line")] {
        f.add_attribute(k, v).unwrap();
    }
    f.add_attribute("grid_type", "cell_centered").unwrap();
    f.add_attribute("domain_extent", 1.0f64).unwrap();
    f.add_attribute("ansatz_schema", 1i32).unwrap();
    f.add_attribute("samples_complete", 2i64).unwrap();
    f.add_variable::<i64>("sample", &["sample"]).unwrap().put_values(&[0i64, 1], ..).unwrap();
    let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
    t.put_attribute("axis", "T").unwrap();
    t.put_values(&[0.0, 0.1, 0.2], ..).unwrap();
    let x: Vec<f64> = (0..8).map(|i| (i as f64 + 0.5) / 8.0).collect();
    f.add_variable::<f64>("x", &["x"]).unwrap().put_values(&x, ..).unwrap();
    let u: Vec<f32> = (0..48).map(|i| (i as f32 * 0.3).sin()).collect();
    f.add_variable::<f32>("u", &["sample", "time", "x"]).unwrap().put_values(&u, ..).unwrap();
    f.add_variable::<f64>("nu", &["sample"]).unwrap().put_values(&[0.01, 0.02], ..).unwrap();
}

#[test]
fn info_names_the_convention_and_what_a_foreign_file_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.nc");
    let o = ansatz(&[&["generate", "burgers1d", "--samples", "2", "--out", p(&ours)], &SMALL_1D[..]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = ansatz(&["info", p(&ours)]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("conventions: the file claims CF-1.11") && out.contains("Ansatz dataset: pde burgers1d"),
        "{out}"
    );
    assert!(!out.contains("missing:") && !out.contains("schema 1"), "{out}");

    // initial conditions from another program: no time, no coordinate, no pde, but `solve` takes them
    let ic = dir.path().join("ic.nc");
    user_file(&ic, &[("sample", 2), ("x", 16)], &[("u", &["sample", "x"])], false, |i| (i as f64).sin());
    let o = ansatz(&["info", p(&ic)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "conventions: none claimed (no global attribute 'Conventions')",
        "not an Ansatz dataset",
        "found:   a dimension 'sample'",
        "missing: a time coordinate t(t) holding the saved times (first 0): no time dimension found",
        "missing: a coordinate variable x(x)",
        "found:   field variable u(sample, x)",
        "missing: global attribute 'pde'",
        "`ansatz solve burgers1d --init` accepts it (2 samples)",
    ] {
        assert!(out.contains(needle), "info lacks {needle:?}:\n{out}");
    }

    // a trajectory file with its time dimension named `time` and the wrong order
    let traj = dir.path().join("traj.nc");
    user_file(
        &traj,
        &[("time", 3), ("sample", 2), ("x", 4)],
        &[("time", &["time"]), ("x", &["x"]), ("u", &["time", "sample", "x"])],
        true,
        |i| i as f64,
    );
    let out = String::from_utf8_lossy(&ansatz(&["info", p(&traj)]).stdout).into_owned();
    assert!(out.contains("found the time dimension 'time' instead; rename it"), "{out}");
    assert!(
        out.contains("found (time, sample, x); reorder with xarray's transpose(\"sample\", \"t\", \"x\")"),
        "{out}"
    );
    assert!(out.contains("does not accept it") && out.contains("traj.nc"), "{out}");
    // x = 0, 1, 2, 3 is uniform; a stretched grid is named
    user_file(&traj, &[("x", 4)], &[("x", &["x"])], false, |i| (i * i) as f64);
    let out = String::from_utf8_lossy(&ansatz(&["info", p(&traj)]).stdout).into_owned();
    assert!(out.contains("uniform, increasing values: the spacing changes at index 1"), "{out}");
}

#[test]
fn a_schema_1_file_is_read_and_merge_rewrites_it_in_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.nc");
    schema1_file(&old);
    let o = ansatz(&["info", p(&old)]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("dataset schema 1, an earlier layout") && out.contains("3 time levels"), "{out}");
    let new = dir.path().join("new.nc");
    let o = ansatz(&["merge", p(&old), "--out", p(&new)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("rewritten in the current schema"));
    let (a, b) = (Dataset::open(&old).unwrap(), Dataset::open(&new).unwrap());
    assert_eq!(a.times, b.times);
    assert_eq!(a.read("u", 0..2, 0..3).unwrap(), b.read("u", 0..2, 0..3).unwrap());
    assert_eq!(b.parameter("nu").unwrap(), [0.01, 0.02]);
    let history = b.text_attribute("history").unwrap();
    assert!(history.starts_with("first line\n") && history.contains("merge"), "{history}");
    drop((a, b));
    let out = String::from_utf8_lossy(&ansatz(&["info", p(&new)]).stdout).into_owned();
    assert!(out.contains("ansatz_schema = 2") && !out.contains("earlier layout"), "{out}");
    // the output exists now: no overwrite without --force
    assert_eq!(code(&ansatz(&["merge", p(&old), "--out", p(&new)])), 2);
}

/// `ansatz solve navier-stokes2d` from the first frame of a generated Kolmogorov-flow dataset, with the same ν, time
/// step and forcing, reproduces the dataset's later frames; without the forcing it does not; a forcing key for
/// another PDE is refused.
#[test]
fn solve_reproduces_a_forced_navier_stokes_dataset_from_its_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ns.nc");
    let o = ansatz(&[
        "generate",
        "navier-stokes2d",
        "--samples",
        "2",
        "--set",
        "grid.n=16",
        "--set",
        "time.t_end=0.5",
        "--set",
        "time.save_every=0.25",
        "--set",
        "output.precision=\"f64\"",
        "--set",
        "parameters.nu=0.005",
        "--out",
        p(&data),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ds = Dataset::open(&data).unwrap();
    let frames = ds.read("omega", 0..2, 0..3).unwrap(); // [sample, t, y, x]
    let n = 16;
    // the first frame with the dataset's coordinates as an initial-condition file
    let ic = dir.path().join("ic.nc");
    {
        let mut f = netcdf::create(&ic).unwrap();
        f.add_dimension("sample", 2).unwrap();
        f.add_dimension("y", n).unwrap();
        f.add_dimension("x", n).unwrap();
        f.add_variable::<f64>("x", &["x"]).unwrap().put_values(&ds.x, ..).unwrap();
        f.add_variable::<f64>("y", &["y"]).unwrap().put_values(ds.y.as_ref().unwrap(), ..).unwrap();
        let first: Vec<f64> =
            (0..2).flat_map(|s| (0..n * n).map(move |c| (s, c))).map(|(s, c)| frames[[s, 0, c / n, c % n]]).collect();
        f.add_variable::<f64>("omega", &["sample", "y", "x"]).unwrap().put_values(&first, ..).unwrap();
    }
    let solve = |out: &Path, forced: bool| {
        let mut args = vec![
            "solve",
            "navier-stokes2d",
            "--init",
            p(&ic),
            "--t-end",
            "0.5",
            "--save-every",
            "0.25",
            "--scheme",
            "spectral",
            "--set",
            "nu=0.005",
            "--set",
            "dt=0.01",
            "--set",
            "precision=f64",
            "--out",
            p(out),
        ];
        if forced {
            args.extend(["--set", "forcing.amplitude=1", "--set", "forcing.wavenumber=4", "--set", "forcing.drag=0.1"]);
        }
        let o = ansatz(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        Dataset::open(out).unwrap().read("omega", 0..2, 0..3).unwrap()
    };
    let scale = frames.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff =
        |a: &ndarray::ArrayD<f64>| a.iter().zip(frames.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale;
    let forced = solve(&dir.path().join("forced.nc"), true);
    assert!(diff(&forced) < 1e-10, "forced solve against the dataset: {:e} (relative max)", diff(&forced));
    let free = solve(&dir.path().join("free.nc"), false);
    assert!(diff(&free) > 1e-3, "without forcing the flow must differ: {:e}", diff(&free));
    // forcing is for Navier–Stokes only
    let o = ansatz(&[
        "solve",
        "burgers2d",
        "--init",
        p(&ic),
        "--t-end",
        "0.5",
        "--save-every",
        "0.25",
        "--set",
        "forcing.drag=0.1",
        "--out",
        p(&dir.path().join("b.nc")),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("only navier-stokes2d is forced"), "{}", stderr(&o));
}
