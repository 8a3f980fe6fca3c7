//! The `ansatz` binary: help, version, exit codes, and a small demo run end to end.

use std::process::Command;

fn ansatz(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args).output().expect("run ansatz");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, _) = ansatz(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("solver-demo") && out.contains("Exit codes"), "{out}");
    let (code, out, _) = ansatz(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("ansatz {}", env!("CARGO_PKG_VERSION")));
    let (code, out, _) = ansatz(&["solver-demo", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--scheme") && out.contains("fv-weno5"), "{out}");
}

#[test]
fn bad_usage_exits_with_2_and_names_the_problem() {
    let (code, _, err) = ansatz(&["solver-demo", "--scheme", "finite-element"]);
    assert_eq!(code, 2);
    assert!(err.contains("finite-element"), "{err}");
    let (code, _, err) = ansatz(&["solver-demo", "--n", "4"]);
    assert_eq!(code, 2);
    assert!(err.contains("--n"), "{err}");
    let (code, _, err) = ansatz(&["solver-demo", "--nu=-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("nu"), "{err}");
    let (code, _, _) = ansatz(&["no-such-command"]);
    assert_eq!(code, 2);
}

#[test]
fn blow_up_exits_with_1_and_says_where() {
    // an inviscid finite-volume run at CFL 5 cannot stay finite
    let (code, _, err) =
        ansatz(&["solver-demo", "--scheme", "fv-muscl", "--n", "16", "--nu", "0", "--cfl", "5", "--t-end", "50"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("non-finite") && err.contains("sample"), "{err}");
}

#[test]
fn small_demo_runs_and_checks_its_gradient() {
    for scheme in ["spectral", "fv-muscl", "fv-weno5"] {
        let (code, out, err) =
            ansatz(&["solver-demo", "--scheme", scheme, "--n", "16", "--batch", "2", "--t-end", "0.2"]);
        assert_eq!(code, 0, "{scheme}: {err}");
        assert!(out.contains("sample 1: kinetic energy"), "{out}");
        let line = out.lines().find(|l| l.contains("central difference")).expect("gradient check line");
        let rel: f64 = line.split("to ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
        assert!(rel < 1e-4, "{scheme}: {line}");
    }
}

#[test]
fn train_and_rollout_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (code, _, err) = ansatz(&[
        "generate",
        "burgers1d",
        "--samples",
        "6",
        "--out",
        &d("b.nc"),
        "--set",
        "grid.n=32",
        "--set",
        "scheme.name=spectral",
        "--set",
        "time.t_end=0.3",
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        d("tiny.toml"),
        "[data]\npath = \"b.nc\"\nhistory = 2\nhorizon = 2\nvalidation = 0.2\ntest = 0.2\n\
         [model]\nkind = \"fno\"\nwidth = 6\nlayers = 1\nmodes = 4\nprojection = 8\n[training]\nsteps = 4\nbatch = 2\n",
    )
    .unwrap();
    // the data path comes from the configuration, relative to its folder
    let (code, out, err) = ansatz(&["train", &d("tiny.toml"), "--out", &d("run")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 steps") && out.contains("run directory"), "{out}");
    let (code, _, err) = ansatz(&["train", &d("tiny.toml"), "--out", &d("run")]);
    assert_eq!(code, 2);
    assert!(err.contains("--resume") && err.contains("--force"), "{err}");
    let (code, _, err) = ansatz(&["train", &d("tiny.toml"), "--out", &d("run2"), "--set", "training.nope=1"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope"), "{err}");
    let (code, _, err) = ansatz(&["train", "no-such-config", "--data", &d("b.nc")]);
    assert_eq!(code, 2);
    assert!(err.contains("dymixop-burgers2d"), "{err}");
    let (code, _, err) = ansatz(&["train", &d("tiny.toml"), "--data", &d("missing.nc"), "--out", &d("run3")]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.nc"), "{err}");
    #[cfg(not(feature = "wgpu"))]
    {
        let (code, _, err) = ansatz(&["train", &d("tiny.toml"), "--out", &d("run4"), "--device", "gpu"]);
        assert_eq!(code, 2);
        assert!(err.contains("wgpu"), "{err}");
    }
    let (code, out, err) = ansatz(&["rollout", "--run", &d("run"), "--out", &d("report"), "--steps", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("report"), "{out}");
    for f in ["metrics.nc", "predictions.nc", "summary.json", "summary.md", "error.png"] {
        assert!(dir.path().join("report").join(f).exists(), "{f}");
    }
    let (code, _, err) = ansatz(&["rollout", "--run", &d("nowhere"), "--out", &d("r2")]);
    assert_eq!(code, 2);
    assert!(err.contains("nowhere"), "{err}");
    let (code, _, err) = ansatz(&["rollout", "--run", &d("run"), "--out", &d("r3"), "--steps", "1000"]);
    assert_eq!(code, 2);
    assert!(err.contains("1000"), "{err}");
    // a finished run trains on to more steps with --resume --extend (and --extend alone is a usage error)
    let (code, _, err) = ansatz(&["train", &d("tiny.toml"), "--out", &d("run"), "--extend"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--resume"), "{err}");
    let (code, _, err) =
        ansatz(&["train", &d("tiny.toml"), "--out", &d("run"), "--resume", "--set", "training.steps=6"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--extend"), "{err}");
    let extend = ["train", &d("tiny.toml"), "--out", &d("run"), "--resume", "--extend", "--set", "training.steps=6"];
    let (code, out, err) = ansatz(&extend);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("6 steps"), "{out}");
    assert!(format!("{out}{err}").contains("from 4 to 6 steps"), "{out}{err}");
    // a damaged checkpoint is refused by name, for resuming and for rollouts
    let ck = dir.path().join("run").join("checkpoint.ckpt");
    let mut bytes = std::fs::read(&ck).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&ck, bytes).unwrap();
    let (code, _, err) =
        ansatz(&["train", &d("tiny.toml"), "--out", &d("run"), "--resume", "--set", "training.steps=6"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("checkpoint.ckpt") && err.contains("checksum"), "{err}");
    let (code, _, err) = ansatz(&["rollout", "--run", &d("run"), "--out", &d("r4")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("checkpoint.ckpt"), "{err}");
    let (code, _, err) = ansatz(&["demo", "--n", "4"]);
    assert_eq!(code, 2);
    assert!(err.contains("--n"), "{err}");
}

#[test]
fn devices_and_throughput_on_the_cpu() {
    let (code, out, err) = ansatz(&["devices", "--device", "cpu"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("selected cpu") && out.contains("as expected"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.json");
    let (code, out, err) = ansatz(&[
        "throughput",
        "fno1d",
        "--warmup",
        "1",
        "--steps",
        "2",
        "--phases",
        "1",
        "--no-engine",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("fno1d: 549569 parameters") && out.contains("synchronised phases"), "{out}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let case = &report["cases"][0];
    assert_eq!(case["parameters"], 549_569);
    assert!(case["ms_per_step"].as_f64().unwrap() > 0.0 && case["engine_ms_per_step"].is_null(), "{case}");
    // unknown cases and empty runs are usage errors
    let (code, _, err) = ansatz(&["throughput", "fno3d"]);
    assert_eq!(code, 2);
    assert!(err.contains("fno3d") && err.contains("demo-dymixop"), "{err}");
    let (code, _, err) = ansatz(&["throughput", "fno1d", "--steps", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--steps"), "{err}");
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn gpu_without_the_wgpu_feature_is_a_usage_error() {
    for args in [&["devices"][..], &["throughput", "fno1d", "--device", "gpu"]] {
        let (code, _, err) = ansatz(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains("wgpu") && err.contains("--features wgpu"), "{err}");
    }
}

/// `ansatz solve --method insr`: a tiny advection solve writes the dataset and the weights, reports its error
/// against the exact solution, resumes, and refuses what it cannot do by name.
#[test]
fn insr_solves_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("adv.nc");
    let p = out.to_str().unwrap();
    let tiny =
        ["--set", "width=8", "--set", "hidden=1", "--set", "samples=128", "--set", "max_iters=60", "--set", "n=64"];
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["solve", "advection1d", "--method", "insr", "--t-end", "0.1", "--save-every", "0.05"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(["--out".to_string(), p.to_string()]);
        v.extend(tiny.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&'static str]| {
        let a = args(extra);
        ansatz(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (code, stdout, err) = run(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("step    2") && stdout.contains("relative L2"), "{stdout}");
    assert!(out.exists() && dir.path().join("adv.nc.insr/step-000002.f32").exists());
    let (code, stdout, _) = ansatz(&["info", p]);
    assert_eq!(code, 0);
    assert!(stdout.contains("advection1d") && stdout.contains("t = 3"), "{stdout}");
    // an existing output, then a resume with nothing left to solve
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists"), "{err}");
    std::fs::remove_file(&out).unwrap();
    let (code, stdout, err) = run(&["--resume"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("3 resumed"), "{stdout}");
    // refusals
    for (extra, needle) in [
        (&["--set", "colour=red"][..], "colour"),
        (&["--set", "lr=fast"][..], "lr"),
        (&["--init", "x.nc"][..], "--init"),
        (&["--set", "dt=0.03"][..], "multiple"),
    ] {
        let (code, _, err) = run(&[&["--force"][..], extra].concat());
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    let (code, _, err) =
        ansatz(&["solve", "heat3d", "--method", "insr", "--t-end", "1", "--save-every", "1", "--out", p]);
    assert_eq!(code, 2);
    assert!(err.contains("heat3d") && err.contains("elasticity2d"), "{err}");
    let (code, _, err) = ansatz(&["solve", "burgers1d", "--t-end", "1", "--save-every", "1", "--out", p]);
    assert_eq!(code, 2);
    assert!(err.contains("--init"), "{err}");
}

#[test]
fn reduced_order_models_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let small = ["--set", "grid.n=32", "--set", "time.levels=12"];
    let generate = |set: &str, out: &str| {
        let mut a = vec!["generate", "burgers1d-source", "--set"];
        let s = format!("parameter.set={set}");
        a.push(&s);
        a.extend(small);
        let o = d(out);
        a.extend(["--out", o.as_str()]);
        ansatz(&a)
    };
    let (code, _, err) = generate("train", "train.nc");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = generate("interpolation", "interp.nc");
    assert_eq!(code, 0, "{err}");
    // a wrong sample count for a fixed parameter set names the key
    let (code, _, err) = ansatz(&["generate", "burgers1d-source", "--samples", "5", "--out", &d("x.nc")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("samples"), "{err}");
    let (train, interp, run) = (d("train.nc"), d("interp.nc"), d("run"));
    let validation = format!("data.validation={interp}");
    let common = [
        "--set",
        "data.train_levels=8",
        "--set",
        "training.steps=6",
        "--set",
        "training.batch=16",
        "--set",
        "training.validate_every=0",
        "--set",
        "model.decoder_width=8",
        "--set",
        "model.dynamics_width=8",
        "--set",
        "inference.init_steps=20",
        "--set",
        "phirom.warmup_epochs=2",
    ];
    let mut a = vec!["train", "phirom-burgers1d", "--data", &train, "--out", &run, "--set", &validation];
    a.extend(common);
    let (code, stdout, err) = ansatz(&a);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("training phirom") && stdout.contains("beyond"), "{stdout}");
    let report = d("report");
    let (code, stdout, err) = ansatz(&["rollout", "--run", &run, "--data", &interp, "--out", &report, "--no-plots"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("phirom rollout, 7 samples × 12 steps"), "{stdout}");
    // an unknown key of the method's configuration is a usage error naming it
    let (code, _, err) = ansatz(&["train", "phirom-burgers1d", "--data", &train, "--set", "phirom.lamda=0.5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lamda"), "{err}");
}

#[test]
fn constrained_models_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let data = d("ds.nc");
    let small = ["--set", "grid.n=24", "--set", "time.levels=8", "--set", "time.steps_per_level=100"];
    let mut a = vec!["generate", "diffusion-sorption", "--samples", "5", "--out", &data];
    a.extend(small);
    let (code, stdout, err) = ansatz(&a);
    assert_eq!(code, 0, "{err}");
    assert!(format!("{stdout}{err}").contains("RK4"), "{stdout}{err}");
    let run = d("run");
    let tiny = [
        "--set",
        "model.width=4",
        "--set",
        "model.modes_x=3",
        "--set",
        "model.modes_t=3",
        "--set",
        "model.layers=1",
        "--set",
        "model.projection=8",
        "--set",
        "model.basis=3",
        "--set",
        "constraint.points=30",
        "--set",
        "training.steps=3",
        "--set",
        "training.batch=2",
        "--set",
        "data.validation_samples=2",
    ];
    let mut a = vec!["train", "moe-diffusion-sorption", "--data", &data, "--out", &run];
    a.extend(tiny);
    let (code, stdout, err) = ansatz(&a);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("moe-constrained") && stdout.contains("validation relative L2"), "{stdout}");
    // the common rollout report, on the held-out samples of the training file, with the solver's cost
    let report = d("report");
    let (code, stdout, err) = ansatz(&["rollout", "--run", &run, "--out", &report, "--no-plots"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("pi-hc-moe4 rollout, 2 samples × 8 steps"), "{stdout}");
    assert!(std::path::Path::new(&report).join("metrics.nc").exists());
    let (code, _, err) = ansatz(&["rollout", "--run", &run, "--out", &d("r3"), "--steps", "9", "--no-plots"]);
    assert_ne!(code, 0);
    assert!(err.contains("--steps 9"), "{err}");
    // an existing run is not overwritten without --force; an unknown key and a wrong dataset are named
    let (code, _, err) = ansatz(&a);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("--force") || err.contains("--resume"), "{err}");
    let (code, _, err) =
        ansatz(&["train", "moe-diffusion-sorption", "--data", &data, "--set", "constraint.expert=[1,2]"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expert"), "{err}");
    let other = d("b.nc");
    let (code, _, err) =
        ansatz(&["generate", "burgers1d-source", "--set", "grid.n=16", "--set", "time.levels=4", "--out", &other]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ansatz(&[
        "train",
        "moe-diffusion-sorption",
        "--data",
        &other,
        "--out",
        &d("r2"),
        "--set",
        "data.validation_samples=2",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("diffusion-sorption"), "{err}");
    // the 2D problem: the preset, a run of the 2 × 2 mixture, its report, and experts that do not fit 2D data
    let bg = d("bg.nc");
    let (code, _, err) = ansatz(&[
        "generate",
        "burgers2d-moe",
        "--samples",
        "5",
        "--set",
        "grid.n=8",
        "--set",
        "time.t_end=0.1",
        "--set",
        "time.save_every=0.025",
        "--out",
        &bg,
    ]);
    assert_eq!(code, 0, "{err}");
    let run2 = d("run2d");
    let mut a = vec!["train", "moe-burgers2d", "--data", &bg, "--out", &run2, "--set", "model.modes_y=2"];
    a.extend(tiny);
    let (code, stdout, err) = ansatz(&a);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("validation relative L2"), "{stdout}");
    let (code, stdout, err) = ansatz(&["rollout", "--run", &run2, "--out", &d("report2d"), "--no-plots"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("pi-hc-moe4 rollout, 2 samples × 4 steps"), "{stdout}");
    let r4 = d("r4");
    let mut a = vec!["train", "moe-burgers2d", "--data", &bg, "--out", &r4, "--set", "constraint.experts=[1, 2]"];
    a.extend(tiny);
    let (code, _, err) = ansatz(&a);
    assert_ne!(code, 0);
    assert!(err.contains("[E_t, E_y, E_x]"), "{err}");
}

#[test]
fn navier_stokes_data_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ns.nc");
    let out = out.to_str().unwrap();
    let sets = ["--set", "grid.n=16", "--set", "time.t_end=0.5", "--set", "time.save_every=0.25"];
    let mut a = vec!["generate", "navier-stokes2d", "--samples", "2", "--out", out];
    a.extend(sets);
    let (code, stdout, err) = ansatz(&a);
    assert_eq!(code, 0, "{err}");
    assert!(format!("{stdout}{err}").contains("Kolmogorov forcing A = 1 at k = 4, drag 0.1"), "{stdout}{err}");
    let (code, stdout, err) = ansatz(&["info", out]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("omega(sample, t, y, x)") && stdout.contains("vorticity"), "{stdout}");
    let (code, _, err) =
        ansatz(&["generate", "navier-stokes2d", "--set", "scheme.name=fv-weno5", "--out", &format!("{out}.2")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spectral"), "{err}");
}

/// `ansatz coarsen`, a hybrid trained on the coarse data, and its rollout with the solver ladder from the fine
/// reference; refusals name what is wrong.
#[test]
fn coarsen_then_train_and_roll_out_a_hybrid() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (fine, coarse, run, report) = (p("fine.nc"), p("coarse.nc"), p("run"), p("report"));
    let sets =
        ["--set", "grid.n=32", "--set", "time.t_end=0.6", "--set", "time.save_every=0.1", "--set", "time.dt=0.0125"];
    let mut a = vec!["generate", "navier-stokes2d", "--samples", "6", "--out", &fine];
    a.extend(sets);
    let (code, _, err) = ansatz(&a);
    assert_eq!(code, 0, "{err}");
    let (code, stdout, err) = ansatz(&["coarsen", &fine, "--factor", "2", "--out", &coarse]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("restricted by 2"), "{stdout}");
    let (code, _, err) = ansatz(&["coarsen", &fine, "--factor", "3", "--out", &p("c3.nc")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("divisible"), "{err}");
    let (code, _, err) = ansatz(&["coarsen", &fine, "--factor", "2", "--out", &coarse]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists"), "{err}");

    let train = [
        "train",
        "hybrid-fno-kolmogorov",
        "--data",
        &coarse,
        "--out",
        &run,
        "--set",
        "training.steps=6",
        "--set",
        "schedule.warmup_steps=1",
        "--set",
        "training.batch=2",
        "--set",
        "model.width=4",
        "--set",
        "model.modes=3",
        "--set",
        "model.layers=1",
        "--set",
        "data.horizon=2",
    ];
    let (code, _, err) = ansatz(&train);
    assert_eq!(code, 0, "{err}");
    let (code, stdout, err) =
        ansatz(&["rollout", "--run", &run, "--reference", &fine, "--out", &report, "--no-plots", "--steps", "4"]);
    assert_eq!(code, 0, "{err}");
    let summary = std::fs::read_to_string(dir.path().join("report/summary.json")).unwrap();
    assert!(summary.contains("\"n\": 32") && summary.contains("\"n\": 8"), "{stdout}\n{summary}");
    let (code, _, err) = ansatz(&["rollout", "--run", &run, "--reference", &coarse, "--out", &p("r2"), "--no-plots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--reference") && err.contains("power of two"), "{err}");
}

/// `ansatz hybrid-cost`: the solver's steps scale with the grid at the configuration's Courant number, both costs
/// are measured at every grid, and bad input is refused with exit code 2 and the option named.
#[test]
fn hybrid_cost_measures_every_grid_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("cost.json");
    let (code, stdout, err) = ansatz(&[
        "hybrid-cost",
        "--grids",
        "32,16",
        "--samples",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("16²") && stdout.contains("32²"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let grids = r["grids"].as_array().unwrap();
    // kolmogorov-re1000 steps at 0.002 on 256²: 0.032 on 16² (4 steps per frame of 0.1), 0.016 on 32² (7)
    let steps: Vec<u64> = grids.iter().map(|g| g["substeps"].as_u64().unwrap()).collect();
    assert_eq!(steps, [4, 7]);
    for g in grids {
        let (s, n) = (g["solver"].as_f64().unwrap(), g["network"].as_f64().unwrap());
        assert!(s > 0.0 && n > 0.0 && (g["ratio"].as_f64().unwrap() - n / s).abs() < 1e-9 * n / s, "{g}");
    }
    // the hybrid costs more than the 16² solver alone: it breaks even with a finer plain solver
    assert!(grids[0]["breakeven_grid"].as_f64().unwrap() > 16.0, "{r}");

    for (args, needle) in [
        (vec!["--grids", "4"], "--grids"),
        (vec!["--samples", "0"], "--samples"),
        (vec!["fno-burgers2d"], "not a hybrid"),
        (vec!["--problem", "no-such-flow"], "--problem"),
        (vec!["--problem", "burgers2d"], "time.dt"),
        (vec!["--set", "model.no_such_key=1"], "no_such_key"),
    ] {
        let mut a = vec!["hybrid-cost", "--grids", "16", "--repeats", "1"];
        a.extend(args.iter());
        let (code, _, err) = ansatz(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // a hybrid trains on the CPU: its gradient goes through the solver's host-code adjoint
    let (code, _, err) = ansatz(&["train", "hybrid-fno-kolmogorov", "--data", "x.nc", "--device", "gpu"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("trains on the CPU") && err.contains("rollout --device gpu"), "{err}");
}
