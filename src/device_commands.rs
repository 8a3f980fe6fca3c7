//! `ansatz throughput` (training throughput of the benchmark cases on a CPU or a GPU) and `ansatz devices` (what
//! `--device gpu` would run on).

use std::path::PathBuf;

use ansatz_cluster::SingleProcess;
use ansatz_training::throughput::{self, CASES, Measurement, Options};
use anyhow::{Context, Result};
use clap::Args;

use crate::train_commands::{DeviceArg, selected_device, usage};

/// Options of `ansatz throughput`.
#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// Cases to measure: fno1d, fno2d, demo-fno, demo-dymixop, or `all` [default: all].
    pub cases: Vec<String>,
    /// Where to compute: `cpu` (burn Flex, every core) or `gpu` (wgpu; builds with feature `wgpu`).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Untimed steps before the timed ones (on a GPU, kernels are compiled and tuned in these).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed steps; their median is reported.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Skip the second measurement through the training engine.
    #[arg(long)]
    pub no_engine: bool,
    /// After the timed steps, this many steps with the device synchronised between the step's phases (forward +
    /// backward, gradients to the host, optimiser, parameters back): where the time goes.
    #[arg(long, default_value_t = 0)]
    pub phases: usize,
    /// Also write the measurements as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run_throughput(args: &ThroughputArgs) -> Result<()> {
    let names: Vec<String> = if args.cases.is_empty() || args.cases.iter().any(|c| c == "all") {
        CASES.iter().map(|c| c.to_string()).collect()
    } else {
        args.cases.clone()
    };
    if let Some(bad) = names.iter().find(|n| !CASES.contains(&n.as_str())) {
        return Err(usage(format!("unknown case '{bad}': {} or all", CASES.join(", "))));
    }
    if args.steps == 0 {
        return Err(usage("--steps must be at least 1"));
    }
    ansatz_operators::memory::retain_freed_memory();
    let (dev, about) = selected_device(args.device, &SingleProcess)?;
    println!("device: {about}");
    let options = Options { warmup: args.warmup, steps: args.steps, engine: !args.no_engine, phase_steps: args.phases };
    let mut results: Vec<Measurement> = vec![];
    for name in &names {
        let m = throughput::measure(name, &dev, &options).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        println!("{m}");
        results.push(m);
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "device": format!("{:?}", args.device).to_lowercase(),
            "adapter": about,
            "threads": rayon::current_num_threads(),
            "cases": results,
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    }
    Ok(())
}

/// Options of `ansatz devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// The device to open: `gpu` (wgpu, the discrete GPU `--device gpu` takes on this rank) or `cpu`.
    #[arg(long, value_enum, default_value_t = DeviceArg::Gpu)]
    pub device: DeviceArg,
}

/// Opens the device as `train --device` would, runs one small product on it and prints what was selected.
pub fn run_devices(args: &DevicesArgs) -> Result<()> {
    use burn::prelude::*;
    let (dev, about) = selected_device(args.device, &SingleProcess)?;
    println!("selected {about}");
    // one product, read back: the device computes, not only opens
    let n = 64;
    let a = Tensor::<2>::from_data(TensorData::new((0..n * n).map(|i| (i % 7) as f32).collect(), [n, n]), &dev);
    let b = Tensor::<2>::ones([n, n], &dev);
    let sum: f32 = a.matmul(b).sum().into_scalar::<f32>();
    let expected: f32 = (0..n * n).map(|i| (i % 7) as f32).sum::<f32>() * n as f32;
    if (sum - expected).abs() > 1e-6 * expected {
        anyhow::bail!("the device computed {sum} for a product whose sum is {expected}");
    }
    println!("a {n}×{n} product on it sums to {sum} as expected");
    Ok(())
}
