//! Ansatz C ABI: learned preconditioners for foreign conjugate-gradient codes (`ansatz_precond_open`, `_apply`,
//! `_size`, `_close`, `ansatz_last_error`), built as a shared and a static library with a generated header.
//!
//! This crate is filled by the preconditioner work.
