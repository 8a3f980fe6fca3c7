//! Ansatz training: experiment configurations, data loading from datasets, the training loop, losses,
//! optimisers, checkpoints, rollout evaluation and metrics, and reports with plots.
//!
//! This crate is filled by the training work.
