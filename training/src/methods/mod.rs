//! Training methods: each implements [`crate::engine::Method`] and lives in one file here, with its networks in
//! `ansatz_operators` and its equations in `docs/methods/`.
//!
//! - [`autoregressive`]: one-step surrogates (FNO, DyMixOp) unrolled over a horizon, the method of
//!   `ansatz train` and `ansatz demo`.

pub mod autoregressive;
