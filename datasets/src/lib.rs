//! Ansatz datasets: the NetCDF-4 dataset format, its writer and streaming reader, initial-condition and
//! parameter samplers, and the generation of trajectories with `ansatz-solvers`.
//!
//! The format is specified in `docs/dataset-format.md` (normative). In short: one root group, dimensions
//! `(sample, time, [y,] x)`, one variable per field component (`u`, `v`), coordinate variables with CF
//! attributes and cell bounds for finite-volume grids, per-sample parameters as variables on `sample`, and global
//! attributes for provenance and resumption (`samples_complete`).
//!
//! Files are written under a temporary name (`NAME.partial`) and renamed when complete; an interrupted generation
//! resumes from `samples_complete` and produces data bitwise identical to an uninterrupted run, because sample
//! `i` depends only on `(seed, i)`.
//!
//! Untrusted files are checked before libnetcdf reads them ([`check`]): the magic number, the whole header of
//! classic-format files, and the declared sizes of every variable against the file size.

pub mod check;
pub mod config;
mod error;
pub mod generate;
pub mod reader;
pub mod rng;
pub mod samplers;
pub mod schema;
pub mod writer;

pub use error::{DatasetError, Result};
