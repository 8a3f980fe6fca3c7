//! Fuzz target: any byte string as a NetCDF file.
//!
//! The Rust-side checks (`check_bytes`) must never panic. Classic-format inputs they accept are then opened and
//! read completely by libnetcdf in this process: the checks must have excluded everything that makes libnetcdf
//! misbehave on classic files. NetCDF-4 (HDF5) inputs stop after the checks; the command line opens those in a
//! child process (`ansatz __probe`), which tests/datasets.rs exercises with mutated files.
#![no_main]

use ansatz_datasets::check::{Format, check_bytes, read_through};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Format::Classic(_)) = check_bytes(data, data.len() as u64) else { return };
    let path = std::env::temp_dir().join(format!("ansatz-fuzz-{}.nc", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    // the same reads as the command line's probe, in this process
    let _ = read_through(&path, u64::MAX);
    let _ = std::fs::remove_file(&path);
});
