//! The `ansatz` command line.

mod data_commands;
mod demo;
mod device_commands;
mod hybrid_cost;
mod insr_commands;
mod precond_commands;
mod precond_solve;
mod probe;
mod schemes;
mod solver_demo;
mod train_commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An error in the user's input: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Ansatz: differentiable PDE solvers, datasets and neural surrogates.
///
/// Exit codes: 0 success, 1 failure while running, 2 bad input or usage.
#[derive(Debug, Parser)]
#[command(name = "ansatz", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the main job on embedded defaults: generate a small 2D Burgers dataset, train DyMixOp and an FNO on
    /// it, roll both out for 200 steps against the reference solver and write a report directory (about 10
    /// minutes on 2 cores). Re-running continues an interrupted demo.
    Demo(demo::DemoArgs),
    /// Solve 2D coupled viscous Burgers for a small batch, differentiate the final energy through the whole
    /// trajectory, check the gradient against a finite difference, and print timings.
    SolverDemo(solver_demo::SolverDemoArgs),
    /// Generate a dataset of trajectories (NetCDF-4) from an embedded or given config, with a progress bar;
    /// `--resume` continues an interrupted run.
    Generate(data_commands::GenerateArgs),
    /// Train a surrogate (DyMixOp or FNO) from an experiment configuration; data parallel under mpirun.
    /// Writes a run directory with the configuration, normalisation, checkpoints and CSV/JSONL metrics.
    Train(train_commands::TrainArgs),
    /// Roll a trained surrogate out on held-out trajectories and score it against the reference at every step
    /// and against the reference solver on coarser grids: metrics (NetCDF), predictions (dataset format),
    /// summary (JSON, markdown), figures (SVG and PNG) and report.html.
    Rollout(train_commands::RolloutArgs),
    /// One leaderboard across rollout reports: models × metrics (medians with 5–95% ranges), runs that differ
    /// only in seed grouped into one row (median and range over seeds), as markdown, JSON, CSV and HTML with the
    /// error curves overlaid.
    Compare(train_commands::CompareArgs),
    /// Solve a PDE and write the trajectories in the dataset format: on a grid from initial conditions in a
    /// NetCDF file, or by INSR (`--method insr`: a SIREN whose weights are optimised at every time step).
    Solve(data_commands::SolveArgs),
    /// Show what a NetCDF file holds (dimensions, variables, attributes; for Ansatz datasets also samples,
    /// times, grid and parameter ranges).
    Info {
        /// The file.
        file: std::path::PathBuf,
    },
    /// Write a discretised linear system (random coefficient field and source) in MatrixMarket form:
    /// the matrix to --out and the right-hand side to <stem>.rhs.mtx, grid and ordering in the header comments.
    ExportSystem(data_commands::ExportArgs),
    /// Merge the shards of a dataset generated on several ranks into one file (or copy one dataset file into the
    /// current dataset schema).
    Merge(data_commands::MergeArgs),
    /// Restrict a dataset to a grid coarser by a factor per axis: Fourier truncation for pseudo-spectral data,
    /// cell averages for finite-volume data. Its `generation_config` is rewritten to the coarse grid (and a fixed
    /// step times the factor), so solver baselines and hybrids rebuild the data's solver at the coarse resolution.
    Coarsen(data_commands::CoarsenArgs),
    /// Learned preconditioners for conjugate gradients (the deep conjugate direction method): train, export, solve.
    Precond {
        #[command(subcommand)]
        command: precond_commands::PrecondCommand,
    },
    /// Measure training throughput (windows per second) of fixed benchmark cases on this machine's CPU or GPU:
    /// the median optimiser step of the hand-written loop and of the training engine, with peak memory.
    Throughput(device_commands::ThroughputArgs),
    /// Measure what one frame of a solver-in-the-loop hybrid costs at several grids: the coarse solver's steps
    /// (CPU) and the network's correction (CPU or GPU), per sample, and the grid at which the plain solver costs
    /// as much as the hybrid, which is the accuracy the hybrid must reach to pay.
    HybridCost(hybrid_cost::HybridCostArgs),
    /// Open the compute device as `train --device` would and show what was selected (for a GPU: the adapter,
    /// graphics API and driver wgpu chose), after checking one small product on it.
    Devices(device_commands::DevicesArgs),
    /// Internal: open a file with libnetcdf in a child process (used to screen untrusted files).
    #[command(name = "__probe", hide = true)]
    Probe { file: std::path::PathBuf },
}

/// Exit code of an error: 2 for bad input, 1 otherwise.
fn exit_code(e: &anyhow::Error) -> u8 {
    let usage = e.downcast_ref::<UsageError>().is_some()
        || e.downcast_ref::<ansatz_solvers::ConfigError>().is_some()
        || e.downcast_ref::<ansatz_datasets::DatasetError>().is_some_and(|d| d.is_bad_input());
    if usage { 2 } else { 1 }
}

/// A command on one process or on every MPI rank: an error on any rank ends the whole job.
fn on_ranks(run: impl FnOnce(&dyn ansatz_cluster::Communicator) -> anyhow::Result<()>) -> ExitCode {
    let comm = match ansatz_cluster::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ansatz: error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(comm.as_ref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            if comm.size() > 1 {
                eprintln!("ansatz: error on rank {} of {}: {e:#}", comm.rank(), comm.size());
                comm.abort(code as i32);
            }
            eprintln!("ansatz: error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(a) => demo::run(a),
        Command::SolverDemo(a) => solver_demo::run(a),
        Command::Train(a) => return on_ranks(|comm| train_commands::run_train(a, comm)),
        Command::Precond { command } => return on_ranks(|comm| precond_commands::run(command, comm)),
        Command::Rollout(a) => train_commands::run_rollout(a),
        Command::Compare(a) => train_commands::run_compare(a),
        Command::Generate(a) => {
            return on_ranks(|comm| data_commands::run_generate(a, comm).map_err(anyhow::Error::from));
        }
        Command::Solve(a) if a.method == "insr" => insr_commands::run(a),
        Command::Solve(a) => data_commands::run_solve(a).map_err(anyhow::Error::from),
        Command::Info { file } => data_commands::run_info(file).map_err(anyhow::Error::from),
        Command::Merge(a) => data_commands::run_merge(a).map_err(anyhow::Error::from),
        Command::Coarsen(a) => data_commands::run_coarsen(a).map_err(anyhow::Error::from),
        Command::ExportSystem(a) => data_commands::run_export(a).map_err(anyhow::Error::from),
        Command::Throughput(a) => device_commands::run_throughput(a),
        Command::HybridCost(a) => hybrid_cost::run(a),
        Command::Devices(a) => device_commands::run_devices(a),
        Command::Probe { file } => probe::run_probe(file).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ansatz: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
