//! `ansatz precond`: learned preconditioners for conjugate gradients.

use std::path::{Path, PathBuf};

use ansatz_cluster::Communicator;
use ansatz_training::methods::dcdm::{DcdmExperiment, train_dcdm};
use ansatz_training::trainer::{Observer, TrainOptions};
use anyhow::Result;
use clap::{Args, Subcommand};

use crate::train_commands::{Bar, DeviceArg, apply_set, device, train_error, usage};

/// Embedded preconditioner training configurations, by name.
pub const EMBEDDED: [(&str, &str); 2] = [
    ("dcdm-poisson2d", include_str!("../configs/precond-dcdm-poisson2d.toml")),
    ("dcdm-poisson3d", include_str!("../configs/precond-dcdm-poisson3d.toml")),
];

/// `ansatz precond` commands.
#[derive(Debug, Subcommand)]
pub enum PrecondCommand {
    /// Train the deep conjugate direction method's network on Ritz right-hand sides (`ansatz generate
    /// ritz-poisson2d|ritz-poisson3d` makes them), without labels, on the error left by one line search along the
    /// network's direction (energy norm by default, or the reference's residual: `training.loss`); the
    /// multilevel network by default, or the reference's residual CNN (`model.kind`); data parallel under
    /// mpirun. Writes a run directory with the configuration, checkpoints and CSV/JSONL metrics.
    Train(PrecondTrainArgs),
    /// Write the trained network of a run directory as one self-contained, versioned, checksummed file (weights,
    /// network description, vector ordering, normalisation; data only, never code).
    Export(PrecondExportArgs),
    /// Solve a MatrixMarket system (`ansatz export-system` writes one) with an exported network, by DCDM or
    /// flexible CG; report iterations, residual history, times and why it stopped (`--json` for a machine).
    Solve(crate::precond_solve::PrecondSolveArgs),
}

/// Options of `ansatz precond export`.
#[derive(Debug, Args)]
pub struct PrecondExportArgs {
    /// The run directory of `ansatz precond train`.
    #[arg(long)]
    pub run: PathBuf,
    /// The preconditioner file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// Options of `ansatz precond train`.
#[derive(Debug, Args)]
pub struct PrecondTrainArgs {
    /// Training configuration: a TOML file, or an embedded one (dcdm-poisson2d, dcdm-poisson3d).
    pub config: String,
    /// Dataset of Ritz right-hand sides (overrides `data.path` of the configuration).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run directory [default: runs/<config name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint (the configuration must be the same).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: train a run on to a larger `training.steps`; everything else must match.
    #[arg(long, requires = "resume")]
    pub extend: bool,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    /// Override a configuration value: `--set training.steps=500`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Where to compute: `cpu` (burn Flex) or `gpu` (wgpu; builds with feature `wgpu`).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

/// The configuration named by `config` (a file or an embedded name) with `sets` applied; returns it and its name.
pub fn load_config(config: &str, sets: &[String]) -> Result<(DcdmExperiment, String)> {
    let path = Path::new(config);
    let (text, origin, name, dir) = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{config}: {e}")))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().trim_start_matches("precond-").to_string());
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
    let text = toml::to_string(&table).expect("a TOML table serialises");
    let mut exp = DcdmExperiment::parse(&text, &origin).map_err(|e| usage(e.0))?;
    if let (Some(p), Some(dir)) = (&exp.data.path, dir)
        && p.is_relative()
    {
        exp.data.path = Some(dir.join(p));
    }
    Ok((exp, name))
}

/// Runs an `ansatz precond` command.
pub fn run(command: &PrecondCommand, comm: &dyn Communicator) -> Result<()> {
    match command {
        PrecondCommand::Train(a) => run_train(a, comm),
        PrecondCommand::Solve(a) => crate::precond_solve::run(a),
        PrecondCommand::Export(a) => {
            let f = ansatz_training::methods::dcdm::export_run(&a.run, &a.out, a.force).map_err(train_error)?;
            let n = &f.header.network;
            println!(
                "{}: DCDM network, {}D, {} channels, {} parameters ({} bytes); {}",
                a.out.display(),
                n.dims,
                n.channels,
                f.params.len(),
                std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0),
                f.header.provenance
            );
            Ok(())
        }
    }
}

fn run_train(a: &PrecondTrainArgs, comm: &dyn Communicator) -> Result<()> {
    let (exp, name) = load_config(&a.config, &a.sets)?;
    let data = a.data.clone().or_else(|| exp.data.path.clone()).ok_or_else(|| {
        usage("no dataset: pass --data PATH or set `data.path` (`ansatz generate ritz-poisson2d` makes one)")
    })?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&name));
    let mut opts = TrainOptions::new(&data, &out);
    opts.resume = a.resume;
    opts.extend = a.extend;
    opts.force = a.force;
    opts.device = device(a.device, comm)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    opts.stop_after = env("ANSATZ_STOP_AFTER").and_then(|v| v.parse().ok());
    opts.gradient_dump = env("ANSATZ_DUMP_GRADIENT").map(PathBuf::from);
    let root = comm.rank() == 0;
    if root {
        println!(
            "training the DCDM network on {} ({} rank{}) into {}",
            data.display(),
            comm.size(),
            if comm.size() == 1 { "" } else { "s" },
            out.display()
        );
    }
    let mut bar = Bar::with_validation("dcdm", "held-out loss");
    let mut quiet = ansatz_training::trainer::Quiet;
    let observer: &mut dyn Observer = if root { &mut bar } else { &mut quiet };
    let s = train_dcdm(&exp, &opts, comm, observer).map_err(train_error)?;
    drop(bar);
    if root {
        println!(
            "  {} steps, {} parameters, final loss {:.4e}, held-out line-search loss {}, {:.1} s{}",
            s.steps,
            s.parameters,
            s.final_loss,
            s.validation.map_or("n/a".into(), |v| format!("{v:.4e}")),
            s.seconds,
            if s.nonfinite_total > 0 {
                format!(", {} non-finite steps skipped", s.nonfinite_total)
            } else {
                String::new()
            }
        );
        println!("  run directory: {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_configuration_is_valid() {
        for (name, _) in EMBEDDED {
            load_config(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let e = load_config("dcdm-poisson2d", &["model.chanels=3".into()]).unwrap_err().to_string();
        assert!(e.contains("chanels"), "{e}");
    }
}
