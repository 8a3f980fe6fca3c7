//! Ansatz training: experiment configurations, data loading from datasets, the training loop, losses,
//! optimisers, checkpoints, rollout evaluation and metrics, and reports with plots.
//!
//! Available now: the rollout metrics ([`metrics`]), which score any prediction against a reference trajectory,
//! and learning-rate schedules ([`schedule`]).

pub mod metrics;
pub mod schedule;
