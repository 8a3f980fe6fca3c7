//! Ansatz training: experiment configurations, data loading from datasets, the training loop, losses,
//! optimisers, checkpoints, rollout evaluation and metrics, and reports with plots.
//!
//! Available now: the rollout metrics ([`metrics`]), which score any prediction against a reference trajectory,
//! training windows with splits and normalisation ([`data`]), and learning-rate schedules ([`schedule`]).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod rollout;
pub mod schedule;
pub mod trainer;
