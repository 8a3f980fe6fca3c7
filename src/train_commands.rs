//! `ansatz train` and `ansatz rollout`.

use std::path::{Path, PathBuf};

use ansatz_cluster::Communicator;
use ansatz_training::config::Experiment;
use ansatz_training::methods::moe::{MoeExperiment, train_constrained};
use ansatz_training::methods::rom::{RomExperiment, train_rom};
use ansatz_training::rollout::{RolloutOptions, RolloutSummary, rollout};
use ansatz_training::trainer::{Observer, StepRecord, TrainError, TrainOptions, TrainSummary, train};
use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

/// Embedded experiment configurations, by name.
pub const EMBEDDED: [(&str, &str); 12] = [
    ("dymixop-burgers2d", include_str!("../configs/train-dymixop-burgers2d.toml")),
    ("fno-burgers2d", include_str!("../configs/train-fno-burgers2d.toml")),
    ("jaws-fno-burgers1d", include_str!("../configs/train-jaws-fno-burgers1d.toml")),
    ("jaws-dymixop-burgers1d", include_str!("../configs/train-jaws-dymixop-burgers1d.toml")),
    ("phirom-burgers1d", include_str!("../configs/train-phirom-burgers1d.toml")),
    ("phirom-diffusion2d", include_str!("../configs/train-phirom-diffusion2d.toml")),
    ("dino-burgers1d", include_str!("../configs/train-dino-burgers1d.toml")),
    ("crom-burgers1d", include_str!("../configs/train-crom-burgers1d.toml")),
    ("moe-diffusion-sorption", include_str!("../configs/train-moe-diffusion-sorption.toml")),
    ("moe-burgers2d", include_str!("../configs/train-moe-burgers2d.toml")),
    ("hybrid-fno-kolmogorov", include_str!("../configs/train-hybrid-fno-kolmogorov.toml")),
    ("hybrid-dymixop-kolmogorov", include_str!("../configs/train-hybrid-dymixop-kolmogorov.toml")),
];

/// Options of `ansatz train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Experiment configuration: a TOML file, or an embedded one (dymixop-burgers2d, fno-burgers2d,
    /// jaws-fno-burgers1d, jaws-dymixop-burgers1d; the reduced-order models phirom-burgers1d, phirom-diffusion2d,
    /// dino-burgers1d, crom-burgers1d; hard constraints with a mixture of experts, moe-diffusion-sorption).
    pub config: String,
    /// Dataset file (overrides `data.path` of the configuration).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run directory [default: runs/<config name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint (the configuration must be the same).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: train a run on to a larger `training.steps` (`--set training.steps=N`); everything else must
    /// match. A cosine schedule that ends at `training.steps` is stretched to the new end from the resumed step.
    #[arg(long, requires = "resume")]
    pub extend: bool,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    /// Override a configuration value: `--set training.steps=500`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Where to compute: `cpu` (burn Flex, every core) or `gpu` (wgpu; builds with feature `wgpu`). Under MPI
    /// each rank takes the node's GPU number local_rank mod ANSATZ_GPUS (default: the /dev/nvidia* count, or 1).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

/// Compute devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Gpu,
}

/// GPUs on this node: `ANSATZ_GPUS`, else the number of /dev/nvidiaN devices, else 1.
#[cfg_attr(not(feature = "wgpu"), allow(dead_code))]
fn gpus_on_node() -> usize {
    if let Some(n) = std::env::var("ANSATZ_GPUS").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    let n = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_prefix("nvidia").is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
                })
                .count()
        })
        .unwrap_or(0);
    n.max(1)
}

/// The burn device for `arg` on this rank.
pub fn device(arg: DeviceArg, comm: &dyn Communicator) -> Result<burn::prelude::Device> {
    selected_device(arg, comm).map(|(device, _)| device)
}

/// The burn device for `arg` on this rank and, for a GPU, the adapter wgpu selected (name, graphics API,
/// driver, device type), in words. A GPU that cannot be used is a clear error, not a panic at the first tensor.
pub fn selected_device(arg: DeviceArg, comm: &dyn Communicator) -> Result<(burn::prelude::Device, String)> {
    match arg {
        DeviceArg::Cpu => {
            let threads = rayon::current_num_threads();
            Ok((burn::prelude::Device::flex(), format!("cpu: burn Flex on {threads} threads")))
        }
        #[cfg(feature = "wgpu")]
        DeviceArg::Gpu => {
            use burn::tensor::DeviceKind;
            use burn::tensor::wgpu::WgpuInitError;
            let index = ansatz_cluster::device_index(comm, gpus_on_node());
            // ANSATZ_WGPU_ADAPTER picks another kind of adapter: integrated, virtual, cpu (a software Vulkan
            // such as lavapipe, to exercise the GPU path without a GPU) or default (wgpu's preference)
            let kind = match std::env::var("ANSATZ_WGPU_ADAPTER").as_deref() {
                Err(_) | Ok("") | Ok("discrete") => DeviceKind::DiscreteGpu(index),
                Ok("integrated") => DeviceKind::IntegratedGpu(index),
                Ok("virtual") => DeviceKind::VirtualGpu(index),
                Ok("cpu") => DeviceKind::Cpu,
                Ok("default") => DeviceKind::DefaultDevice,
                Ok(other) => {
                    return Err(usage(format!(
                        "ANSATZ_WGPU_ADAPTER={other}: expected discrete, integrated, virtual, cpu or default"
                    )));
                }
            };
            match burn::prelude::Device::wgpu_options().device_kind(kind.clone()).init_with_setup() {
                Ok((device, setup)) => {
                    let i = setup.adapter.get_info();
                    let driver = [i.driver.as_str(), i.driver_info.as_str()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                    let text = format!(
                        "gpu {index} ({kind:?}): {} ({:?}, {:?}, driver {driver}, vendor {:#06x} device {:#06x})",
                        i.name, i.backend, i.device_type, i.vendor, i.device
                    );
                    Ok((device, text))
                }
                // already initialised in this process: the registered runtime is reused
                Err(WgpuInitError::Registration { .. }) => {
                    Ok((burn::prelude::Device::wgpu(kind), format!("gpu {index} (initialised earlier)")))
                }
                Err(e) => Err(anyhow::anyhow!(
                    "no usable GPU for --device gpu ({kind:?}): {e}. wgpu needs a Vulkan loader \
                     (libvulkan.so.1) and the vendor's Vulkan driver (an ICD file; VK_DRIVER_FILES names one \
                     explicitly)"
                )),
            }
        }
        #[cfg(not(feature = "wgpu"))]
        DeviceArg::Gpu => {
            let _ = comm;
            Err(usage("--device gpu needs a build with the `wgpu` feature: cargo build --release --features wgpu"))
        }
    }
}

/// Options of `ansatz compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Rollout report directories (each written by `ansatz rollout`: summary.json and metrics.nc).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Where leaderboard.md, leaderboard.json, leaderboard.csv, error_curves.svg|png and report.html go.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an earlier leaderboard in --out.
    #[arg(long)]
    pub force: bool,
}

pub fn run_compare(a: &CompareArgs) -> Result<()> {
    let board = ansatz_training::compare::compare(&a.reports, &a.out, a.force).map_err(train_error)?;
    println!("{}", board.markdown());
    println!("leaderboard: {} (report.html, leaderboard.md, .json, .csv)", a.out.display());
    Ok(())
}

/// Options of `ansatz rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// Run directory written by `ansatz train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Dataset to roll out on [default: the run's data; its test split is used when it is the training file].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Steps after the context frames [default: as many as the data hold].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Report directory.
    #[arg(long)]
    pub out: PathBuf,
    /// At most this many held-out samples.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Samples rolled out together.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// MiB for held-out samples in memory at once: they are read, rolled out, scored and written to
    /// predictions.nc chunk by chunk, so a test set of any size fits (at least one batch at a time).
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub memory_budget: usize,
    /// Skip the reference solver at 1, 1/2 and 1/4 resolution (no speed-up or breakeven).
    #[arg(long)]
    pub no_baseline: bool,
    /// The finer dataset the data were restricted from (`ansatz coarsen`): the solver baseline then also runs at
    /// 2×, 4×, … the data resolution up to its grid, started from its initial frames and scored on the data's grid
    /// against the same truth as the network, so the error-matched speed-up can find a finer solver.
    #[arg(long, value_name = "FINE.nc")]
    pub reference: Option<PathBuf>,
    /// Skip the figures (SVG and PNG); report.html then holds the summary and provenance only.
    #[arg(long)]
    pub no_plots: bool,
    /// Replace an existing report directory.
    #[arg(long)]
    pub force: bool,
    /// Where to compute: `cpu` or `gpu` (feature `wgpu`).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

pub(crate) fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(crate::UsageError(e.to_string()))
}

pub(crate) fn train_error(e: TrainError) -> anyhow::Error {
    if e.input { usage(e.message) } else { anyhow::anyhow!(e.message) }
}

/// Applies `key=value` (the value parsed as TOML, else taken as a string) to a table.
pub(crate) fn apply_set(table: &mut toml::Table, item: &str) -> Result<()> {
    let (key, raw) = item.split_once('=').ok_or_else(|| usage(format!("--set '{item}' is not key=value")))?;
    ansatz_datasets::config::set_dotted(table, key.trim(), raw).map_err(|m| usage(format!("--set: {m}")))
}

/// A configuration's text (a file or an embedded name) with `sets` applied: the TOML table, where it came from, the
/// run's default name and the directory relative paths are resolved against.
fn config_table(config: &str, sets: &[String]) -> Result<(toml::Table, String, String, Option<PathBuf>)> {
    let path = Path::new(config);
    let (text, origin, name, dir) = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{config}: {e}")))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().trim_start_matches("train-").to_string());
        (text, config.to_string(), name.unwrap_or_else(|| "run".into()), path.parent().map(Path::to_path_buf))
    } else if let Some((n, t)) = EMBEDDED.iter().find(|(n, _)| *n == config) {
        (t.to_string(), format!("embedded config '{n}'"), n.to_string(), None)
    } else {
        let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
        return Err(usage(format!("{config}: no such file, and not an embedded configuration ({})", names.join(", "))));
    };
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| usage(format!("{origin}: {e}")))?;
    for s in sets {
        apply_set(&mut table, s)?;
    }
    Ok((table, origin, name, dir))
}

fn resolve(p: &mut Option<PathBuf>, dir: &Option<PathBuf>) {
    if let (Some(path), Some(dir)) = (p.as_ref(), dir)
        && path.is_relative()
    {
        *p = Some(dir.join(path));
    }
}

/// The experiment named by `config` (a file or an embedded name) with `sets` applied; returns it and its name.
pub fn load_experiment(config: &str, sets: &[String]) -> Result<(Experiment, String)> {
    let (table, origin, name, dir) = config_table(config, sets)?;
    let text = toml::to_string(&table).expect("a TOML table serialises");
    let mut exp = Experiment::parse(&text, &origin).map_err(usage)?;
    resolve(&mut exp.data.path, &dir);
    Ok((exp, name))
}

/// What `ansatz train` trains: an autoregressive surrogate, or a latent reduced-order model (a configuration with
/// a top-level `method = "phirom" | "dino" | "crom"`).
pub enum AnyExperiment {
    Surrogate(Box<Experiment>),
    Rom(Box<RomExperiment>),
    Constrained(Box<MoeExperiment>),
}

/// [`load_experiment`] for either kind of configuration.
pub fn load_any(config: &str, sets: &[String]) -> Result<(AnyExperiment, String)> {
    let (table, origin, name, dir) = config_table(config, sets)?;
    if table.get("method").and_then(|m| m.as_str()) == Some("constrained") {
        let text = toml::to_string(&table).expect("a TOML table serialises");
        let mut exp = MoeExperiment::parse(&text, &origin).map_err(usage)?;
        resolve(&mut exp.data.path, &dir);
        resolve(&mut exp.data.validation, &dir);
        return Ok((AnyExperiment::Constrained(Box::new(exp)), name));
    }
    if table.contains_key("method") {
        let text = toml::to_string(&table).expect("a TOML table serialises");
        let mut exp = RomExperiment::parse(&text, &origin).map_err(usage)?;
        resolve(&mut exp.data.path, &dir);
        resolve(&mut exp.data.validation, &dir);
        return Ok((AnyExperiment::Rom(Box::new(exp)), name));
    }
    let (exp, name) = load_experiment(config, sets)?;
    Ok((AnyExperiment::Surrogate(Box::new(exp)), name))
}

/// Progress bar and messages of a training run.
pub struct Bar {
    bar: Option<ProgressBar>,
    label: String,
    last_validation: Option<f64>,
    validation: String,
}

impl Bar {
    pub fn new(label: &str) -> Self {
        Self::with_validation(label, "validation rel. L2")
    }

    /// A bar whose validation score is shown as `validation`.
    pub fn with_validation(label: &str, validation: &str) -> Self {
        Self { bar: None, label: label.to_string(), last_validation: None, validation: validation.to_string() }
    }
}

impl Observer for Bar {
    fn start(&mut self, first: usize, total: usize) {
        let bar = ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template(&format!(
                "  {} [{{bar:30}}] {{pos}}/{{len}} steps, {{per_sec}}, ETA {{eta}}  {{msg}}",
                self.label
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_position(first as u64);
        bar.reset_eta();
        self.bar = Some(bar);
    }
    fn step(&mut self, r: &StepRecord) {
        if let Some(v) = r.validation {
            self.last_validation = Some(v);
        }
        if let Some(b) = &self.bar {
            b.set_position(r.step as u64 + 1);
            let val = self.last_validation.map(|v| format!(", {} {v:.4}", self.validation)).unwrap_or_default();
            b.set_message(format!("loss {:.4e}{val}", r.loss));
        }
    }
    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(b) => b.println(format!("  warning: {text}")),
            None => eprintln!("  warning: {text}"),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Trains on `comm`'s ranks; prints a summary on rank 0.
pub fn run_train(a: &TrainArgs, comm: &dyn Communicator) -> Result<()> {
    let (exp, name) = match load_any(&a.config, &a.sets)? {
        (AnyExperiment::Rom(exp), name) => return run_train_rom(a, &exp, &name, comm),
        (AnyExperiment::Constrained(exp), name) => return run_train_constrained(a, &exp, &name, comm),
        (AnyExperiment::Surrogate(exp), name) => (*exp, name),
    };
    let data = a.data.clone().or_else(|| exp.data.path.clone()).ok_or_else(|| {
        usage("no dataset: pass --data PATH or set `data.path` in the configuration (`ansatz generate` makes one)")
    })?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&name));
    let mut opts = TrainOptions::new(&data, &out);
    opts.resume = a.resume;
    opts.extend = a.extend;
    opts.force = a.force;
    if a.device == DeviceArg::Gpu && exp.hybrid.solver == ansatz_training::config::HybridSolver::Data {
        return Err(usage(
            "a hybrid trains on the CPU (its gradient goes through the solver's adjoint, which is host code); \
             a trained hybrid rolls out with `ansatz rollout --device gpu` (the network on the GPU, the solver on \
             the CPU)",
        ));
    }
    let (dev, about) = selected_device(a.device, comm)?;
    opts.device = dev;
    // test hooks: stop early as an interrupted run would, dump the first averaged gradient, fail on one rank
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    opts.stop_after = env("ANSATZ_STOP_AFTER").and_then(|v| v.parse().ok());
    opts.gradient_dump = env("ANSATZ_DUMP_GRADIENT").map(PathBuf::from);
    if let Some(r) = env("ANSATZ_FAULT_RANK").and_then(|v| v.parse().ok()) {
        opts.fault = Some((r, env("ANSATZ_FAULT_STEP").and_then(|v| v.parse().ok()).unwrap_or(0)));
    }
    let root = comm.rank() == 0;
    if root {
        println!(
            "training {} on {} ({} rank{}) into {}",
            exp.model.kind(),
            data.display(),
            comm.size(),
            if comm.size() == 1 { "" } else { "s" },
            out.display()
        );
        if a.device == DeviceArg::Gpu {
            println!("  device: {about}");
        }
    }
    let mut bar = Bar::new(exp.model.kind());
    let mut quiet = ansatz_training::trainer::Quiet;
    let observer: &mut dyn Observer = if root { &mut bar } else { &mut quiet };
    let s = train(&exp, &opts, comm, observer).map_err(train_error)?;
    drop(bar);
    if root {
        print_train_summary(&s, &out);
    }
    Ok(())
}

/// Trains Φ-ROM, DINo or CROM; prints a summary on rank 0.
fn run_train_rom(a: &TrainArgs, exp: &RomExperiment, name: &str, comm: &dyn Communicator) -> Result<()> {
    let data = a.data.clone().or_else(|| exp.data.path.clone()).ok_or_else(|| {
        usage("no dataset: pass --data PATH or set `data.path` (`ansatz generate burgers1d-source|diffusion2d`)")
    })?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(name));
    let mut opts = TrainOptions::new(&data, &out);
    opts.resume = a.resume;
    opts.extend = a.extend;
    opts.force = a.force;
    if a.device == DeviceArg::Gpu {
        return Err(usage(
            "the reduced-order models train on the CPU (their solver and least-squares ops are host code)",
        ));
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    opts.stop_after = env("ANSATZ_STOP_AFTER").and_then(|v| v.parse().ok());
    let root = comm.rank() == 0;
    let method = exp.method.name();
    if root {
        println!("training {method} on {} into {}", data.display(), out.display());
    }
    let mut bar = Bar::with_validation(method, "validation rel. L2");
    let mut quiet = ansatz_training::trainer::Quiet;
    let observer: &mut dyn Observer = if root { &mut bar } else { &mut quiet };
    let s = train_rom(exp, &opts, exp.data.validation.as_deref(), comm, observer).map_err(train_error)?;
    drop(bar);
    if root {
        let m = |k: &str| s.validation_metrics.get(k).map_or("n/a".into(), |v| format!("{v:.4}"));
        println!(
            "  {} steps, {} parameters, final loss {:.4e}, validation relative L2 {} (training levels {}, beyond {}), {:.1} s{}",
            s.steps,
            s.parameters,
            s.final_loss,
            s.validation.map_or("n/a".into(), |v| format!("{v:.4}")),
            m("val_interp"),
            m("val_extrap"),
            s.seconds,
            if s.nonfinite_total > 0 {
                format!(", {} non-finite steps skipped", s.nonfinite_total)
            } else {
                String::new()
            }
        );
        if let Some(left) = last_metric(&out.join("metrics.csv"), "left_out").filter(|v| *v > 0.0) {
            println!(
                "  {left:.0} samples left out of the dynamics loss in all (a rank-deficient decoder Jacobian or a \
                 vanishing latent velocity; `left_out` in metrics.csv)"
            );
        }
        println!("  run directory: {}", out.display());
    }
    Ok(())
}

/// Trains a hard- or soft-constrained model; prints a summary on rank 0.
fn run_train_constrained(a: &TrainArgs, exp: &MoeExperiment, name: &str, comm: &dyn Communicator) -> Result<()> {
    let data = a.data.clone().or_else(|| exp.data.path.clone()).ok_or_else(|| {
        usage("no dataset: pass --data PATH or set `data.path` (`ansatz generate diffusion-sorption`)")
    })?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(name));
    let mut opts = TrainOptions::new(&data, &out);
    opts.resume = a.resume;
    opts.extend = a.extend;
    opts.force = a.force;
    if a.device == DeviceArg::Gpu {
        return Err(usage("the constrained models train on the CPU (their experts' solves are host code)"));
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    opts.stop_after = env("ANSATZ_STOP_AFTER").and_then(|v| v.parse().ok());
    opts.gradient_dump = env("ANSATZ_DUMP_GRADIENT").map(PathBuf::from);
    let root = comm.rank() == 0;
    let variant = format!("{:?}", exp.constraint.variant).to_lowercase();
    if root {
        println!("training the {variant}-constrained model on {} into {}", data.display(), out.display());
    }
    let mut bar = Bar::with_validation(&variant, "validation rel. L2");
    let mut quiet = ansatz_training::trainer::Quiet;
    let observer: &mut dyn Observer = if root { &mut bar } else { &mut quiet };
    let s = train_constrained(exp, &opts, comm, observer).map_err(train_error)?;
    drop(bar);
    if root {
        let m = |k: &str| s.validation_metrics.get(k).map_or("n/a".into(), |v| format!("{v:.4e}"));
        println!(
            "  {} steps, {} parameters, final physics loss {:.4e}, validation relative L2 {} (residual {}), {:.1} s{}",
            s.steps,
            s.parameters,
            s.final_loss,
            s.validation.map_or("n/a".into(), |v| format!("{v:.4}")),
            m("val_residual"),
            s.seconds,
            if s.nonfinite_total > 0 {
                format!(", {} non-finite steps skipped", s.nonfinite_total)
            } else {
                String::new()
            }
        );
        if let Some(n) = last_metric(&out.join("metrics.csv"), "unconverged").filter(|v| *v > 0.0) {
            println!(
                "  {n:.0} expert solves stopped before their tolerance in all (`unconverged` in metrics.csv; their \
                 last iterate was used)"
            );
        }
        println!("  run directory: {}", out.display());
    }
    Ok(())
}

/// The last value of column `name` of a metrics CSV file.
fn last_metric(path: &Path, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let col = lines.next()?.split(',').position(|c| c == name)?;
    lines.rev().find_map(|l| l.split(',').nth(col)?.parse::<f64>().ok())
}

pub fn print_train_summary(s: &TrainSummary, out: &Path) {
    println!(
        "  {} steps, {} parameters, final loss {:.4e}, validation relative L2 {}{}, {:.1} s ({:.1} windows/s){}",
        s.steps,
        s.parameters,
        s.final_loss,
        s.validation.map_or("n/a".into(), |v| format!("{v:.4}")),
        s.validation_metrics
            .get(ansatz_training::methods::autoregressive::VAL_ROLLOUT)
            .map_or(String::new(), |v| format!(", nRMSE from the first frame over the horizon {v:.4}")),
        s.seconds,
        s.samples_per_second,
        if s.nonfinite_total > 0 { format!(", {} non-finite steps skipped", s.nonfinite_total) } else { String::new() }
    );
    if let (Some(start), Some(peak)) = (s.rss_start_mib, s.peak_rss_mib) {
        println!("  resident memory: {start:.0} MiB when the loop started, {peak:.0} MiB at its peak");
    }
    println!("  run directory: {}", out.display());
}

/// Rolls a trained network out and writes the report.
pub fn run_rollout(a: &RolloutArgs) -> Result<()> {
    let data = match &a.data {
        Some(d) => d.clone(),
        None => ansatz_training::rollout::run_data(&a.run).map_err(train_error)?,
    };
    let mut opts = RolloutOptions::new(&a.run, &data, &a.out);
    opts.steps = a.steps;
    opts.samples = a.samples;
    opts.batch = a.batch;
    opts.memory_budget = a.memory_budget;
    opts.baseline = !a.no_baseline;
    if let Some(r) = &a.reference {
        crate::probe::probe(r)?;
        if a.no_baseline {
            return Err(usage("--reference runs finer solver baselines: it cannot be combined with --no-baseline"));
        }
    }
    opts.reference = a.reference.clone();
    opts.plots = !a.no_plots;
    opts.force = a.force;
    let (dev, about) = selected_device(a.device, &ansatz_cluster::SingleProcess)?;
    opts.device = dev;
    if a.device == DeviceArg::Gpu {
        println!("device: {about}");
    }
    let s = rollout_with_progress(&opts)?;
    print_rollout_summary(&s, &a.out);
    Ok(())
}

pub fn rollout_with_progress(opts: &RolloutOptions) -> Result<RolloutSummary> {
    let bar = ProgressBar::new(1).with_style(
        ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let s = rollout(opts, &mut |done, total, what| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(what.to_string());
    });
    bar.finish_and_clear();
    s.map_err(train_error)
}

/// A number of steps (a median may be a half-integer), or `n/a`.
pub fn fmt_steps(x: f64) -> String {
    if x.is_finite() { format!("{x:.1}") } else { "n/a".into() }
}

pub fn print_rollout_summary(s: &RolloutSummary, out: &Path) {
    let f = |x: f64| if x.is_finite() { format!("{x:.4}") } else { "n/a".into() };
    println!(
        "  {} rollout, {} samples × {} steps: nRMSE at step 1 {}, at step {} {}; correlation time (ρ < 0.8) median {} steps; blow-up rate {:.2}",
        s.model,
        s.samples.len(),
        s.steps,
        f(s.nrmse_at.first().map_or(f64::NAN, |x| x.1.median)),
        s.steps,
        f(s.nrmse_at.last().map_or(f64::NAN, |x| x.1.median)),
        fmt_steps(s.correlation_time_08.median),
        s.blow_up_rate
    );
    if let Some(sp) = s.cost.error_matched_speedup {
        println!(
            "  error-matched speed-up {sp:.3}× against the solver at {} resolution; breakeven after {}",
            s.cost.matched_fraction.map_or("?".into(), |f| f.to_string()),
            s.cost.breakeven_rollouts.map_or("never".into(), |b| format!("{b:.0} rollouts"))
        );
    }
    println!("  report: {}", out.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_configuration_is_valid() {
        for (name, text) in EMBEDDED {
            if text.lines().any(|l| l.starts_with("method = \"constrained\"")) {
                MoeExperiment::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
                continue;
            }
            if text.lines().any(|l| l.starts_with("method =")) {
                RomExperiment::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
                continue;
            }
            let e = Experiment::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.starts_with("jaws-") {
                assert!(e.model.variance_head() && e.regularisation.kind != Default::default(), "{name}");
            }
        }
    }
}
