//! Ansatz datasets: the NetCDF-4 dataset format (root group, dimensions `(sample, time, [z,] y, x)`, CF-1.11
//! coordinates and attributes), its readers and writers, initial-condition and parameter samplers, and the
//! generation of trajectories with `ansatz-solvers`.
//!
//! This crate is filled by the dataset work; the format itself is specified in the workspace's design document
//! and, once written, in `docs/dataset-format.md`.
