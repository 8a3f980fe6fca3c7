//! Training throughput (windows per second) and peak memory of one configuration per process.
//!
//! ```text
//! cargo run --release -p ansatz-benches --example training_throughput -- fno1d      # N = 256, batch 64, width 64, 16 modes
//! cargo run --release -p ansatz-benches --example training_throughput -- fno2d      # 32², batch 16, 10 frames, width 32, 8 modes
//! cargo run --release -p ansatz-benches --example training_throughput -- demo-fno   # the demo: 2 fields, 10 frames, 5-step unroll
//! cargo run --release -p ansatz-benches --example training_throughput -- demo-dymixop
//! ```
//!
//! The cases and the measurement are `ansatz_training::throughput` (also `ansatz throughput`, which runs them on
//! a GPU too): the median of 20 timed steps after 3 warm-up steps, then the same steps through the training
//! engine, whose own cost is the difference.

use ansatz_training::throughput::{self, Options};
use burn::prelude::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_else(|| "fno2d".into());
    // as `ansatz train` does; ANSATZ_DEFAULT_MALLOC=1 measures glibc's defaults instead
    if std::env::var_os("ANSATZ_DEFAULT_MALLOC").is_none() {
        ansatz_operators::memory::retain_freed_memory();
    }
    match throughput::measure(&name, &Device::flex(), &Options::default()) {
        Ok(m) => {
            println!("{m}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("training_throughput: {e}");
            ExitCode::from(2)
        }
    }
}
