//! The `ansatz` command line.

mod demo;
mod schemes;

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
    /// Run the main job on embedded defaults: solve 2D coupled viscous Burgers for a small batch, differentiate
    /// the final energy through the whole trajectory, and print a summary with timings.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(a) => demo::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ansatz: error: {e:#}");
            let usage =
                e.downcast_ref::<UsageError>().is_some() || e.downcast_ref::<ansatz_solvers::ConfigError>().is_some();
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
