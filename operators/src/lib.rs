//! Ansatz operators: burn modules for neural surrogates (FNO, DyMixOp, Φ-ROM, INSR, mixture-of-experts
//! hard-constraint layers, deep-conjugate-direction networks) and the bridge that makes native solver operations
//! differentiable inside burn.
//!
//! This crate is filled by the model work; it will depend on burn 0.22.1 (pinned in the workspace).
