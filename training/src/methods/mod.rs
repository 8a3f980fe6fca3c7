//! Training methods: each implements [`crate::engine::Method`] and lives in one file here, with its networks in
//! `ansatz_operators` and its equations in `docs/methods/`.
//!
//! - [`autoregressive`]: one-step surrogates (FNO, DyMixOp) unrolled over a horizon, the method of
//!   `ansatz train` and `ansatz demo`;
//! - [`dcdm`]: the deep conjugate direction method's network, trained on the line-search residual of Ritz-vector
//!   right-hand sides through the sparse matrix–vector bridge op;
//! - [`jaws`]: Jacobian penalties for one-step surrogates (Hutchinson row norms from forward-mode tangents, the
//!   global and the variance-weighted contraction penalty);
//! - [`rom`]: latent reduced-order models trained as auto-decoders: Φ-ROM (the latent dynamics fitted to the
//!   solver's projected time derivative through the right-hand-side and least-squares bridge ops), DINo and CROM.

pub mod autoregressive;
pub mod dcdm;
pub mod jaws;
pub mod rom;
