//! `mpirun -np 2 ansatz generate`: one shard per rank and a manifest; the merged data are bitwise identical to a
//! single-process run; readers reject tampered manifests; a failing rank stops the whole job. Needs `mpirun`
//! (Open MPI; `make test` installs it); runs as root with the variables Open MPI asks for.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ansatz_datasets::reader::Dataset;

fn mpirun(np: usize, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-np", &np.to_string()]);
    for (k, v) in env {
        c.args(["-x", &format!("{k}={v}")]);
    }
    c.arg(env!("CARGO_BIN_EXE_ansatz")).args(args);
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c.output().expect("mpirun (openmpi-bin) is installed by make test")
}

fn ansatz(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args).output().unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const SMALL: [&str; 8] = ["--samples", "7", "--seed", "9", "--set", "grid.n=64", "--set", "time.t_end=0.2"];

#[test]
fn two_ranks_generate_shards_that_merge_to_the_single_process_dataset() {
    let dir = tempfile::tempdir().unwrap();
    for pde in ["burgers1d", "poisson2d"] {
        let extra: &[&str] =
            if pde == "burgers1d" { &SMALL } else { &["--samples", "5", "--seed", "9", "--set", "grid.n=16"] };
        let sharded = dir.path().join(format!("{pde}-mpi.nc"));
        let o = mpirun(2, &[], &[&["generate", pde, "--out", p(&sharded)], extra].concat());
        assert!(o.status.success(), "{pde}: {}", String::from_utf8_lossy(&o.stderr));
        let manifest = dir.path().join(format!("{pde}-mpi.manifest.json"));
        assert!(manifest.exists() && dir.path().join(format!("{pde}-mpi.rank-0001.nc")).exists());
        let single = dir.path().join(format!("{pde}-single.nc"));
        assert!(ansatz(&[&["generate", pde, "--out", p(&single)], extra].concat()).status.success());
        let merged = dir.path().join(format!("{pde}-merged.nc"));
        let o = ansatz(&["merge", p(&manifest), "--out", p(&merged)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (a, b) = (Dataset::open(&single).unwrap(), Dataset::open(&merged).unwrap());
        assert_eq!(a.samples, b.samples);
        for f in &a.fields {
            let (x, y) = if a.is_static() {
                (a.read_static(f, 0..a.samples).unwrap(), b.read_static(f, 0..b.samples).unwrap())
            } else {
                (a.read(f, 0..a.samples, 0..a.times.len()).unwrap(), b.read(f, 0..b.samples, 0..b.times.len()).unwrap())
            };
            assert!(x.iter().zip(y.iter()).all(|(u, v)| u.to_bits() == v.to_bits()), "{pde}: field {f} differs");
        }
        let o = ansatz(&["info", p(&manifest)]);
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("2 shards"));
    }
}

#[test]
fn tampered_manifests_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.nc");
    let o = mpirun(2, &[], &[&["generate", "burgers1d", "--out", p(&out)], &SMALL[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest = dir.path().join("b.manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let bad = |name: &str, content: String, needle: &str| {
        let m = dir.path().join(name);
        std::fs::write(&m, content).unwrap();
        let o = ansatz(&["info", p(&m)]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(err.contains(needle), "{name}: {err}");
    };
    bad("abs.manifest.json", text.replace("\"b.rank-0000.nc\"", "\"/etc/passwd\""), "plain file name");
    bad("up.manifest.json", text.replace("\"b.rank-0000.nc\"", "\"../b.rank-0000.nc\""), "plain file name");
    bad("gone.manifest.json", text.replace("b.rank-0001.nc", "b.rank-0009.nc"), "missing");
    // an altered shard (same size, one byte changed)
    let shard = dir.path().join("b.rank-0001.nc");
    let mut bytes = std::fs::read(&shard).unwrap();
    let k = bytes.len() - 100;
    bytes[k] ^= 1;
    std::fs::write(&shard, &bytes).unwrap();
    let o = ansatz(&["info", p(&manifest)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("checksum"));
}

#[test]
fn an_error_on_one_rank_stops_the_whole_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.nc");
    let t = Instant::now();
    let o = mpirun(
        2,
        &[("ANSATZ_FAULT_RANK", "1")],
        &["generate", "burgers1d", "--samples", "200", "--set", "grid.n=1024", "--out", p(&out)],
    );
    assert!(!o.status.success());
    assert!(t.elapsed() < Duration::from_secs(10), "the job took {:?} to stop", t.elapsed());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("error on rank 1 of 2") && err.contains("injected fault"), "{err}");
    assert!(!dir.path().join("f.manifest.json").exists());
}

#[test]
fn an_interrupted_sharded_run_resumes_per_shard() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        [
            "generate",
            "burgers1d",
            "--samples",
            "160",
            "--seed",
            "5",
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
    let t = Instant::now();
    let o = mpirun(2, &[], &args(&full).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole = t.elapsed();
    // interrupt a second run about halfway (mpirun forwards the kill to both ranks), then resume it
    let cut = dir.path().join("cut.nc");
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-np", "2", env!("CARGO_BIN_EXE_ansatz")]).args(args(&cut));
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    // wait until both ranks are writing, then a little longer
    let t = Instant::now();
    while !(0..2).all(|r| dir.path().join(format!("cut.rank-000{r}.nc.partial")).exists()) && t.elapsed() < whole * 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SIGTERM: mpirun forwards it to the ranks (a SIGKILL of mpirun would leave them running)
    // SAFETY: sending a signal to our own child process
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(500));
    let interrupted = (0..2).any(|r| dir.path().join(format!("cut.rank-000{r}.nc.partial")).exists());
    assert!(interrupted, "the run was not interrupted mid-way");
    assert!(!dir.path().join("cut.manifest.json").exists(), "no manifest before every shard is complete");
    let o = mpirun(2, &[], &args(&cut).iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = ("full", "cut");
    let ma = dir.path().join(format!("{a}.merged.nc"));
    let mb = dir.path().join(format!("{b}.merged.nc"));
    assert!(ansatz(&["merge", p(&dir.path().join(format!("{a}.manifest.json"))), "--out", p(&ma)]).status.success());
    assert!(ansatz(&["merge", p(&dir.path().join(format!("{b}.manifest.json"))), "--out", p(&mb)]).status.success());
    let (x, y) = (Dataset::open(&ma).unwrap(), Dataset::open(&mb).unwrap());
    let (u, v) = (x.read("u", 0..160, 0..11).unwrap(), y.read("u", 0..160, 0..11).unwrap());
    assert!(u.iter().zip(v.iter()).all(|(s, t)| s.to_bits() == t.to_bits()), "resumed shards differ");
}

// ---- data-parallel training ----

/// A tiny 1D Burgers dataset and an FNO experiment with plain SGD (constant rate): global batch 8.
fn training_setup(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("b1.nc");
    let o = ansatz(&[&["generate", "burgers1d", "--out", p(&data)], &SMALL[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = dir.join("sgd.toml");
    std::fs::write(
        &config,
        "seed = 4\n[data]\nhistory = 2\nhorizon = 2\nvalidation = 0.15\ntest = 0.0\n\
         [model]\nkind = \"fno\"\nwidth = 8\nlayers = 2\nmodes = 4\nprojection = 16\n\
         [optimiser]\nkind = \"sgd\"\nclip_norm = 0.0\n[schedule]\nkind = \"constant\"\nrate = 0.05\n\
         [training]\nsteps = 20\nbatch = 8\ncheckpoint_every = 5\nvalidate_every = 10\n",
    )
    .unwrap();
    (data, config)
}

fn floats(path: &Path) -> Vec<f64> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect()
}

fn params(run: &Path) -> Vec<f64> {
    ansatz_training::checkpoint::Checkpoint::load(&run.join("checkpoint.ckpt"))
        .unwrap()
        .params
        .iter()
        .map(|v| *v as f64)
        .collect()
}

fn relative(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

#[test]
fn two_ranks_train_like_one_rank_with_the_same_global_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = training_setup(dir.path());
    let train = |np: usize, run: &Path, env: &[(&str, &str)], extra: &[&str]| {
        let args = [&["train", p(&config), "--data", p(&data), "--out", p(run)], extra].concat();
        let o = if np == 1 {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ansatz"));
            c.args(&args).envs(env.iter().copied());
            c.output().unwrap()
        } else {
            mpirun(np, env, &args)
        };
        assert!(o.status.success(), "np {np}: {}", String::from_utf8_lossy(&o.stderr));
        o
    };
    // the averaged first gradient of 2 ranks × 4 windows equals the 1-rank gradient of the same 8
    let (g1, g2) = (dir.path().join("g1.bin"), dir.path().join("g2.bin"));
    let one = dir.path().join("one");
    train(1, &one, &[("ANSATZ_DUMP_GRADIENT", p(&g1))], &[]);
    let two = dir.path().join("two");
    let o = train(2, &two, &[("ANSATZ_DUMP_GRADIENT", p(&g2))], &[]);
    let (a, b) = (floats(&g2), floats(&g1));
    let rel = relative(&a, &b);
    eprintln!("first gradient, 2 ranks vs 1: {rel:e} relative");
    assert!(rel < 1e-6, "gradient differs by {rel:e} (relative)");
    // plain SGD: the parameters after 20 steps agree
    let rel = relative(&params(&two), &params(&one));
    eprintln!("parameters after 20 SGD steps, 2 ranks vs 1: {rel:e} relative");
    assert!(rel < 1e-5, "parameters after 20 SGD steps differ by {rel:e}");
    // rank 0 alone reports and logs
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("run directory").count(), 1, "{out}");
    assert_eq!(std::fs::read_to_string(two.join("metrics.csv")).unwrap().lines().count(), 21);
    // streamed loading on 2 ranks: each rank reads its windows from the file; the same parameters bit for bit
    let streamed = dir.path().join("two-streamed");
    train(2, &streamed, &[], &["--set", "data.loading=stream", "--set", "data.memory_budget=1"]);
    assert_eq!(params(&streamed), params(&two), "2 ranks, streamed against in memory");
    // interrupted on 2 ranks, resumed on 1: the same parameters
    let mixed = dir.path().join("mixed");
    train(2, &mixed, &[("ANSATZ_STOP_AFTER", "7")], &[]);
    train(1, &mixed, &[], &["--resume"]);
    let rel = relative(&params(&mixed), &params(&one));
    eprintln!("2 ranks resumed on 1 vs 1 rank: {rel:e} relative");
    assert!(rel < 1e-5, "2-rank run resumed on 1 rank differs by {rel:e}");
}

/// Training straight from a manifest of shards, each rank drawing from its own samples
/// (`data.partition = "rank"`): streamed and in-memory loading give the same parameters bit for bit, and the
/// ranks' streamed reads touch disjoint samples that together cover the data.
#[test]
fn ranks_train_from_a_manifest_reading_disjoint_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = training_setup(dir.path());
    let sharded = dir.path().join("b1-mpi.nc");
    let o = mpirun(2, &[], &[&["generate", "burgers1d", "--out", p(&sharded)], &SMALL[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest = dir.path().join("b1-mpi.manifest.json");
    let train = |np: usize, data: &Path, run: &Path, extra: &[&str]| {
        let args = [&["train", p(&config), "--data", p(data), "--out", p(run)], extra].concat();
        let o = if np == 1 { ansatz(&args) } else { mpirun(np, &[], &args) };
        assert!(o.status.success(), "np {np}: {}", String::from_utf8_lossy(&o.stderr));
    };
    // one rank: the manifest trains like the single file it equals
    let (file_run, manifest_run) = (dir.path().join("file"), dir.path().join("manifest"));
    train(1, &data, &file_run, &[]);
    train(1, &manifest, &manifest_run, &[]);
    assert_eq!(params(&manifest_run), params(&file_run), "the manifest against the file");
    // two ranks, each on its own samples
    let rank = ["--set", "data.partition=rank"];
    let (memory, streamed) = (dir.path().join("rank-memory"), dir.path().join("rank-streamed"));
    train(2, &manifest, &memory, &rank);
    train(
        2,
        &manifest,
        &streamed,
        &[&rank[..], &["--set", "data.loading=stream", "--set", "data.memory_budget=1"]].concat(),
    );
    assert_eq!(params(&streamed), params(&memory), "2 ranks by rank, streamed against in memory");
    let report = |r: usize| -> ansatz_training::stream::StreamReport {
        let text = std::fs::read_to_string(streamed.join(format!("stream-rank-{r:04}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (a, b) = (report(0), report(1));
    let set = |r: &ansatz_training::stream::StreamReport| -> Vec<usize> {
        r.samples_read.iter().flat_map(|x| x.clone()).collect()
    };
    let (sa, sb) = (set(&a), set(&b));
    eprintln!(
        "rank 0 read samples {sa:?} ({} bytes), rank 1 {sb:?} ({} bytes)",
        a.stats.bytes_read, b.stats.bytes_read
    );
    assert!(sa.iter().all(|s| !sb.contains(s)), "ranks read the same samples: {sa:?} and {sb:?}");
    let mut all: Vec<usize> = sa.iter().chain(&sb).copied().collect();
    all.sort();
    assert_eq!(all, (0..7).collect::<Vec<_>>(), "6 training samples split 3 + 3, the validation sample on rank 0");
    assert!(a.stats.peak_cached_bytes <= 1 << 20 && b.stats.peak_cached_bytes <= 1 << 20);
}

#[test]
fn a_failing_or_killed_training_rank_ends_the_job_and_leaves_a_valid_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = training_setup(dir.path());
    // an error on rank 1 at step 6 (after the checkpoint of step 5) aborts both ranks quickly
    let run = dir.path().join("fault");
    let t = Instant::now();
    let o = mpirun(
        2,
        &[("ANSATZ_FAULT_RANK", "1"), ("ANSATZ_FAULT_STEP", "6")],
        &["train", p(&config), "--data", p(&data), "--out", p(&run)],
    );
    assert!(!o.status.success());
    assert!(t.elapsed() < Duration::from_secs(60), "took {:?}", t.elapsed());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rank 1") && err.contains("injected fault"), "{err}");
    let ck = ansatz_training::checkpoint::Checkpoint::load(&run.join("checkpoint.ckpt")).unwrap();
    assert_eq!(ck.header.step, 5);
    // a killed rank: mpirun exits non-zero, the last checkpoint still loads and resumes
    let run = dir.path().join("killed");
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-np", "2"])
        .arg(env!("CARGO_BIN_EXE_ansatz"))
        .args(["train", p(&config), "--data", p(&data), "--out", p(&run), "--set", "training.steps=100000"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.join("checkpoint.ckpt").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(run.join("checkpoint.ckpt").exists(), "no checkpoint within 120 s");
    let pids = Command::new("pgrep").args(["-f", "--", &format!("--out {}", p(&run))]).output().unwrap();
    let victim = String::from_utf8_lossy(&pids.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .rfind(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(env!("CARGO_BIN_EXE_ansatz")))
        })
        .expect("a training rank");
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert!(!status.success());
    let ck = ansatz_training::checkpoint::Checkpoint::load(&run.join("checkpoint.ckpt")).unwrap();
    assert!(ck.header.step >= 5 && ck.header.step % 5 == 0, "{}", ck.header.step);
}

#[test]
fn the_jacobian_penalty_averages_over_ranks_like_one_rank() {
    // probes are drawn per window, so 2 ranks × 4 windows see the probes 1 rank sees for the same 8
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = training_setup(dir.path());
    let jaws = [
        "--set",
        "regularisation.kind=jaws",
        "--set",
        "model.variance_head=true",
        "--set",
        "training.loss=gaussian-nll",
        "--set",
        "training.steps=4",
    ];
    let (g1, g2) = (dir.path().join("g1.bin"), dir.path().join("g2.bin"));
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let args = |run: &Path| -> Vec<String> {
        [&["train", p(&config), "--data", p(&data), "--out", p(run)][..], &jaws[..]]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let a1 = args(&one);
    let o = Command::new(env!("CARGO_BIN_EXE_ansatz")).args(&a1).env("ANSATZ_DUMP_GRADIENT", p(&g1)).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a2 = args(&two);
    let a2: Vec<&str> = a2.iter().map(|s| s.as_str()).collect();
    let o = mpirun(2, &[("ANSATZ_DUMP_GRADIENT", p(&g2))], &a2);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rel = relative(&floats(&g2), &floats(&g1));
    eprintln!("first gradient with the JAWS penalty, 2 ranks vs 1: {rel:e} relative");
    assert!(rel < 1e-5, "gradient differs by {rel:e} (relative)");
    let column = |run: &Path| -> Vec<f64> {
        let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let i = text.lines().next().unwrap().split(',').position(|h| h == "penalty").expect("a penalty column");
        text.lines().skip(1).map(|l| l.split(',').nth(i).unwrap().parse().unwrap()).collect()
    };
    let (p1, p2) = (column(&one), column(&two));
    assert!((p1[0] - p2[0]).abs() <= 1e-5 * p1[0].abs().max(1e-12), "first penalty: {} vs {}", p1[0], p2[0]);
}

/// The mixture of experts under `mpirun -np 2`: each rank solves the experts of its share of the batch (the same
/// sampled points on every rank); the averaged first gradient equals the 1-rank gradient, and plain SGD keeps the
/// parameters together. The experts use a ridge of 1e-2: an untrained basis is nearly collinear, and with the
/// default 1e-4 the f32 round-off of the two reductions (4 samples on one rank, 2 + 2 on two) is amplified to
/// 8e-6 in the first gradient (1.6e-6 here, and 1.5e-8 in the parameters after 6 steps).
#[test]
fn two_ranks_train_the_mixture_of_experts_like_one_rank() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ds.nc");
    let o = ansatz(&[
        "generate",
        "diffusion-sorption",
        "--samples",
        "6",
        "--set",
        "grid.n=24",
        "--set",
        "time.levels=8",
        "--set",
        "time.steps_per_level=100",
        "--out",
        p(&data),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sets = [
        "--set",
        "model.width=6",
        "--set",
        "model.modes_x=3",
        "--set",
        "model.modes_t=3",
        "--set",
        "model.layers=2",
        "--set",
        "model.projection=8",
        "--set",
        "model.basis=4",
        "--set",
        "constraint.points=40",
        "--set",
        "constraint.experts=[1, 2]",
        "--set",
        "data.validation_samples=2",
        "--set",
        "training.steps=6",
        "--set",
        "training.batch=4",
        "--set",
        "training.validate_every=0",
        "--set",
        "optimiser.kind=sgd",
        "--set",
        "schedule.rate=0.01",
        "--set",
        "constraint.ridge=1e-2",
    ];
    let train = |np: usize, run: &Path, dump: &Path, shard: &str| {
        let shard = format!("constraint.shard={shard}");
        let args =
            [&["train", "moe-diffusion-sorption", "--data", p(&data), "--out", p(run), "--set", &shard], &sets[..]]
                .concat();
        let env = [("ANSATZ_DUMP_GRADIENT", p(dump))];
        let o = if np == 1 {
            Command::new(env!("CARGO_BIN_EXE_ansatz")).args(&args).envs(env).output().unwrap()
        } else {
            mpirun(np, &env, &args)
        };
        assert!(o.status.success(), "np {np}: {}", String::from_utf8_lossy(&o.stderr));
    };
    // the batch's samples split between the ranks, then the experts of the whole batch split between them
    for shard in ["samples", "experts"] {
        let (one, two) = (dir.path().join(format!("one-{shard}")), dir.path().join(format!("two-{shard}")));
        let (g1, g2) = (dir.path().join(format!("g1-{shard}.bin")), dir.path().join(format!("g2-{shard}.bin")));
        train(1, &one, &g1, shard);
        train(2, &two, &g2, shard);
        let rel = relative(&floats(&g2), &floats(&g1));
        eprintln!("mixture of experts ({shard} shared), first gradient, 2 ranks vs 1: {rel:e} relative");
        assert!(rel < 1e-5, "{shard}: gradient differs by {rel:e} (relative)");
        let rel = relative(&params(&two), &params(&one));
        eprintln!("mixture of experts ({shard} shared), parameters after 6 SGD steps, 2 ranks vs 1: {rel:e} relative");
        assert!(rel < 1e-5, "{shard}: parameters differ by {rel:e}");
    }
}

/// The DCDM network under `mpirun -np 2` (`ansatz precond train`, energy loss, multilevel network): the batch's
/// right-hand sides split between the ranks, each rank's samples grouped by system; the averaged first gradient
/// equals the 1-rank gradient, plain SGD keeps the parameters together, and rank 0 alone writes the run.
#[test]
fn two_ranks_train_the_dcdm_network_like_one_rank() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ritz.nc");
    let o = ansatz(&[
        "generate",
        "ritz-poisson2d",
        "--samples",
        "48",
        "--set",
        "grid.n=8",
        "--set",
        "systems.count=3",
        "--set",
        "lanczos.steps=20",
        "--out",
        p(&data),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = dir.path().join("dcdm.toml");
    std::fs::write(
        &config,
        "seed = 2\n[model]\nkind = \"multilevel\"\nchannels = 3\nlevels = 0\n[optimiser]\nkind = \"sgd\"\n\
         [schedule]\nkind = \"constant\"\nrate = 0.01\n\
         [training]\nsteps = 6\nbatch = 8\nvalidate_every = 0\ncheckpoint_every = 3\nloss = \"energy\"\n",
    )
    .unwrap();
    let train = |np: usize, run: &Path, dump: &Path| {
        let args = ["precond", "train", p(&config), "--data", p(&data), "--out", p(run)];
        let env = [("ANSATZ_DUMP_GRADIENT", p(dump))];
        let o = if np == 1 {
            Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args).envs(env).output().unwrap()
        } else {
            mpirun(np, &env, &args)
        };
        assert!(o.status.success(), "np {np}: {}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let (g1, g2) = (dir.path().join("g1.bin"), dir.path().join("g2.bin"));
    train(1, &one, &g1);
    let o = train(2, &two, &g2);
    let rel = relative(&floats(&g2), &floats(&g1));
    eprintln!("DCDM, first gradient, 2 ranks vs 1: {rel:e} relative");
    assert!(rel < 1e-5, "gradient differs by {rel:e} (relative)");
    let rel = relative(&params(&two), &params(&one));
    eprintln!("DCDM, parameters after 6 SGD steps, 2 ranks vs 1: {rel:e} relative");
    assert!(rel < 1e-5, "parameters differ by {rel:e}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("run directory").count(), 1, "{out}");
    assert_eq!(std::fs::read_to_string(two.join("metrics.csv")).unwrap().lines().count(), 7);
}
