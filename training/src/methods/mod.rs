//! Training methods: each implements [`crate::engine::Method`] and lives in one file here, with its networks in
//! `ansatz_operators` and its equations in `docs/methods/`.
//!
//! - [`autoregressive`]: one-step surrogates (FNO, DyMixOp) unrolled over a horizon, the method of
//!   `ansatz train` and `ansatz demo`;
//! - [`dcdm`]: the deep conjugate direction method's network, trained on the line-search residual of Ritz-vector
//!   right-hand sides through the sparse matrix–vector bridge op;
//! - [`jaws`]: Jacobian penalties for one-step surrogates (Hutchinson row norms from forward-mode tangents, the
//!   global and the variance-weighted contraction penalty);
//! - [`moe`]: hard constraints by PDE-constrained least squares over a learned basis (PI-HC-MoE, with its
//!   one-expert and soft-constraint baselines), through the experts and residual bridge ops;
//! - [`rom`]: latent reduced-order models trained as auto-decoders: Φ-ROM (the latent dynamics fitted to the
//!   solver's projected time derivative through the right-hand-side and least-squares bridge ops), DINo and CROM.

pub mod autoregressive;
pub mod dcdm;
pub mod hybrid;
pub mod jaws;
pub mod moe;
pub mod rom;
