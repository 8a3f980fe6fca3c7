//! `ansatz hybrid-cost`: what one frame of a solver-in-the-loop hybrid costs at several grids, split into the coarse
//! solver's steps and the network's correction, on this machine's CPU or GPU, and from those costs the grid at
//! which the plain solver costs as much as the hybrid (the accuracy the hybrid must reach to pay).

use std::path::PathBuf;
use std::time::Instant;

use ansatz_cluster::SingleProcess;
use ansatz_datasets::generate::Setup;
use ansatz_datasets::rng::SampleRng;
use ansatz_operators::bridge::BridgeReport;
use ansatz_operators::init::Init;
use ansatz_training::config::{HybridConfig, HybridSolver, ModelConfig};
use ansatz_training::data::Normalisation;
use ansatz_training::methods::hybrid::CoarseSolver;
use ansatz_training::model::{self, FrameShape};
use anyhow::{Context, Result, anyhow};
use burn::prelude::*;
use burn::tensor::TensorData;
use clap::Args;
use serde::Serialize;

use crate::train_commands::{DeviceArg, load_experiment, selected_device, usage};

/// Options of `ansatz hybrid-cost`.
#[derive(Debug, Args)]
pub struct HybridCostArgs {
    /// The hybrid's experiment configuration whose network is timed: a TOML file or an embedded name
    /// (hybrid-fno-kolmogorov, hybrid-dymixop-kolmogorov). `model.modes` is capped at a third of the grid.
    #[arg(default_value = "hybrid-fno-kolmogorov")]
    pub config: String,
    /// The flow: a generation preset or PDE with a fixed step `time.dt` (kolmogorov-re1000, navier-stokes2d,
    /// burgers2d with `--problem-set time.dt=…`). At a grid of N points per axis the solver steps at
    /// dt · n / N, the Courant number of the configuration's own grid n, and a frame is `time.save_every`.
    #[arg(long, default_value = "kolmogorov-re1000")]
    pub problem: String,
    /// Override a value of the problem's configuration: `--problem-set parameters.nu=0.002`. Repeatable.
    #[arg(long = "problem-set", value_name = "KEY=VALUE")]
    pub problem_sets: Vec<String>,
    /// Override a value of the experiment configuration: `--set model.width=12`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Grids to measure, points per axis, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "64,128,256,512")]
    pub grids: Vec<usize>,
    /// Samples advanced together (the batch of the rollout); costs are reported per sample.
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    /// Timed frames per grid; their median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Untimed frames per grid before the timed ones (on a GPU, kernels are compiled and tuned in these).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Where the network computes: `cpu` (burn Flex, every core) or `gpu` (wgpu; builds with feature `wgpu`).
    /// The solver always runs on the CPU's cores; on a GPU the network's time includes the frames' transfers.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Also write the measurements as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The costs at one grid.
#[derive(Debug, Clone, Serialize)]
pub struct GridCost {
    /// Points per axis.
    pub n: usize,
    /// Solver steps per frame and their step.
    pub substeps: usize,
    pub dt: f64,
    /// Median seconds per frame and sample: the solver's steps, the network's correction (with the transfers
    /// to and from its device), and their ratio.
    pub solver: f64,
    pub network: f64,
    pub ratio: f64,
    /// The grid (points per axis) at which the plain solver costs what the hybrid does, `solver + network`:
    /// log–log interpolation of the measured solver costs; `None` beyond the measured grids.
    pub breakeven_grid: Option<f64>,
    /// Whether the break-even grid lies beyond the largest measured grid (extrapolated with the last slope).
    pub extrapolated: bool,
}

pub fn run(args: &HybridCostArgs) -> Result<()> {
    if args.grids.is_empty() || args.grids.iter().any(|&n| n < 8) {
        return Err(usage("--grids: at least one grid, each of at least 8 points per axis"));
    }
    if args.samples == 0 || args.repeats == 0 {
        return Err(usage("--samples and --repeats must be at least 1"));
    }
    let mut grids = args.grids.clone();
    grids.sort_unstable();
    grids.dedup();
    let (exp, _) = load_experiment(&args.config, &args.sets)?;
    if exp.hybrid.solver != HybridSolver::Data {
        return Err(usage(format!(
            "{}: not a hybrid (`hybrid.solver = \"data\"`); the cost of a pure surrogate is its network alone",
            args.config
        )));
    }
    let base = ansatz_datasets::config::load(&args.problem, None, &args.problem_sets, Some(args.samples), Some(0))
        .map_err(|e| usage(format!("--problem {}: {e}", args.problem)))?;
    if !base.pde.two_d() {
        return Err(usage(format!("--problem {}: the hybrids' networks are two-dimensional", args.problem)));
    }
    let dt0 = base.dt.ok_or_else(|| {
        usage(format!(
            "--problem {}: a fixed `time.dt` is needed to scale the step with the grid (--problem-set time.dt=…)",
            args.problem
        ))
    })?;
    ansatz_operators::memory::retain_freed_memory();
    let (dev, about) = selected_device(args.device, &SingleProcess)?;
    println!(
        "hybrid frame: {} network on {about}; {} solver ({}) on {} CPU threads; {} samples, median of {} frames",
        exp.model.kind(),
        args.problem,
        base.pde.name(),
        rayon::current_num_threads(),
        args.samples,
        args.repeats
    );
    println!("{:>6} {:>9} {:>14} {:>14} {:>8}", "grid", "substeps", "solver ms", "network ms", "ratio");
    let mut costs = Vec::with_capacity(grids.len());
    for &n in &grids {
        let c = measure(args, &exp, &base, dt0, n, &dev).with_context(|| format!("at {n}²"))?;
        println!("{:>5}² {:>9} {:>14.3} {:>14.3} {:>8.2}", n, c.substeps, c.solver * 1e3, c.network * 1e3, c.ratio);
        costs.push(c);
    }
    breakeven(&mut costs);
    println!("per frame and sample; the plain solver costs what the hybrid does at:");
    for c in &costs {
        match c.breakeven_grid {
            Some(g) => println!(
                "  {}²: {g:.0}²{} — the hybrid pays if it is more accurate than the plain solver there",
                c.n,
                if c.extrapolated { " (extrapolated beyond the measured grids)" } else { "" }
            ),
            None => println!("  {}²: beyond the measured grids (measure more than one grid to extrapolate)", c.n),
        }
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "config": args.config,
            "model": exp.model.kind(),
            "problem": args.problem,
            "device": format!("{:?}", args.device).to_lowercase(),
            "adapter": about,
            "threads": rayon::current_num_threads(),
            "samples": args.samples,
            "repeats": args.repeats,
            "frame_interval": base.save_every,
            "grids": costs,
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    }
    Ok(())
}

/// Times `args.repeats` frames of the solver and of the network at `n` points per axis.
fn measure(
    args: &HybridCostArgs,
    exp: &ansatz_training::config::Experiment,
    base: &ansatz_datasets::config::Spec,
    dt0: f64,
    n: usize,
    dev: &Device,
) -> Result<GridCost> {
    let dt = dt0 * base.n as f64 / n as f64;
    let mut sets = args.problem_sets.clone();
    sets.extend([format!("grid.n={n}"), format!("time.dt={dt:e}"), "time.spin_up=0".to_string()]);
    let spec = ansatz_datasets::config::load(&args.problem, None, &sets, Some(args.samples), Some(0))
        .map_err(|e| usage(format!("--problem {}: {e}", args.problem)))?;
    let setup = Setup::of(&spec);
    let channels = spec.pde.components().len();
    let b = args.samples;
    let mut frames = Vec::with_capacity(b * channels * n * n);
    let mut nu = Vec::with_capacity(b);
    for s in 0..b {
        let mut rng = SampleRng::new(spec.seed, s as u64);
        nu.push(spec.nu.sample(&mut rng));
        frames.extend(spec.ic.sample(&mut rng, &setup.sample_grid(), channels));
    }
    let rms = (frames.iter().map(|v| v * v).sum::<f64>() / frames.len() as f64).sqrt();
    let fields = spec.pde.components().iter().map(|s| s.to_string()).collect();
    let norm =
        Normalisation { fields, mean: vec![0.0; channels], scale: vec![if rms > 0.0 { rms } else { 1.0 }; channels] };
    let config = HybridConfig { solver: HybridSolver::Data, substeps: 0 };
    let solver = CoarseSolver::new(spec.pde.name(), Some(&spec.config_text), [n, n], spec.save_every, &norm, &config)
        .map_err(|e| anyhow!("{e}"))?;
    let normalised: Vec<f32> = frames.iter().map(|v| (v / norm.scale[0]) as f32).collect();

    // the grid's Fourier modes: at most a third of the points per axis
    let mut model_config = exp.model.clone();
    let (ModelConfig::Fno { modes, .. } | ModelConfig::Dymixop { modes, .. }) = &mut model_config;
    *modes = (*modes).min(n / 3).max(1);
    let shape = FrameShape { channels, ny: n, nx: n, history: 1 };
    let net = model::build(&model_config, shape, spec.save_every, &mut Init::new(0, dev));
    let residual = model_config.residual();
    let cpu = Device::flex();
    let report = BridgeReport::new();
    let host = |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [b, channels, n, n]), &cpu);
    let read = |t: Tensor<4>| -> Result<Vec<f32>> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| anyhow!("reading a frame back: {e:?}"))
    };

    let (mut solver_times, mut network_times) = (vec![], vec![]);
    let mut state = normalised;
    for r in 0..args.warmup + args.repeats {
        let t = Instant::now();
        let advanced = read(solver.advance(host(&state), &nu, &report).map_err(|e| anyhow!("{e}"))?)?;
        let ts = t.elapsed().as_secs_f64();
        let upload = advanced.clone();
        let t = Instant::now();
        let x = Tensor::<4>::from_data(TensorData::new(upload, [b, channels, n, n]), dev);
        let corrected = read(model::step(&net, x, channels, residual))?;
        let tn = t.elapsed().as_secs_f64();
        if corrected.iter().any(|v| !v.is_finite()) {
            return Err(anyhow!("the corrected frame has non-finite values"));
        }
        // the next frame starts from the solver's output: an untrained correction would drive the flow away
        state = advanced;
        if r >= args.warmup {
            solver_times.push(ts / b as f64);
            network_times.push(tn / b as f64);
        }
    }
    let (s, m) = (median(&mut solver_times), median(&mut network_times));
    Ok(GridCost {
        n,
        substeps: solver.substeps(),
        dt: solver.dt(),
        solver: s,
        network: m,
        ratio: m / s,
        breakeven_grid: None,
        extrapolated: false,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let k = v.len();
    if k % 2 == 1 { v[k / 2] } else { 0.5 * (v[k / 2 - 1] + v[k / 2]) }
}

/// The grid at which the plain solver costs what the hybrid does at each measured grid: log–log interpolation of
/// the solver's measured costs against the grid, extrapolated with the slope of the last two grids beyond them.
pub fn breakeven(costs: &mut [GridCost]) {
    let points: Vec<(f64, f64)> = costs.iter().map(|c| ((c.n as f64).ln(), c.solver.ln())).collect();
    for c in costs.iter_mut() {
        let target = (c.solver + c.network).ln();
        c.breakeven_grid = None;
        c.extrapolated = false;
        if points.len() < 2 {
            continue;
        }
        let segment = points.windows(2).find(|w| target >= w[0].1 && target <= w[1].1);
        let (w, extrapolated) = match segment {
            Some(w) => (w, false),
            None if target > points[points.len() - 1].1 => (&points[points.len() - 2..], true),
            None => continue,
        };
        let slope = (w[1].1 - w[0].1) / (w[1].0 - w[0].0);
        if !(slope.is_finite() && slope > 0.0) {
            continue;
        }
        c.breakeven_grid = Some((w[0].0 + (target - w[0].1) / slope).exp());
        c.extrapolated = extrapolated;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(n: usize, solver: f64, network: f64) -> GridCost {
        GridCost {
            n,
            substeps: 1,
            dt: 0.1,
            solver,
            network,
            ratio: network / solver,
            breakeven_grid: None,
            extrapolated: false,
        }
    }

    #[test]
    fn breakeven_interpolates_and_extrapolates_on_a_cubic_cost() {
        // solver cost ∝ N³: the hybrid at 64 costing 7× its solver costs what the solver does at 128
        let mut c = vec![cost(64, 1.0, 7.0), cost(128, 8.0, 8.0), cost(256, 64.0, 0.0)];
        breakeven(&mut c);
        assert!((c[0].breakeven_grid.unwrap() - 128.0).abs() < 1e-9);
        assert!(!c[0].extrapolated);
        // 16 = 8·2 → 128·2^{1/3}
        assert!((c[1].breakeven_grid.unwrap() - 128.0 * 2f64.cbrt()).abs() < 1e-9);
        assert!((c[2].breakeven_grid.unwrap() - 256.0).abs() < 1e-9);
        // beyond the last grid: the last slope
        let mut c = vec![cost(64, 1.0, 0.0), cost(128, 8.0, 504.0)];
        breakeven(&mut c);
        assert!((c[1].breakeven_grid.unwrap() - 512.0).abs() < 1e-6);
        assert!(c[1].extrapolated);
        let mut one = vec![cost(64, 1.0, 1.0)];
        breakeven(&mut one);
        assert_eq!(one[0].breakeven_grid, None);
    }
}
