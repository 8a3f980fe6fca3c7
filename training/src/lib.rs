//! Ansatz training: experiment configurations, data loading from datasets, the training loop, losses,
//! optimisers, checkpoints, rollout evaluation and metrics, and reports with plots.
//!
//! - [`engine`]: the one training loop; a method plugs in through [`engine::Method`];
//! - [`methods`]: the training methods, one file each ([`methods::autoregressive`] for FNO and DyMixOp);
//! - [`trainer`]: `ansatz train`: an experiment configuration trained by the autoregressive method;
//! - [`insr`]: INSR, a SIREN as the spatial discretisation, each time step an optimisation of its weights;
//! - [`rollout`]: long rollouts of any [`rollout::TrajectoryModel`] scored against the data and the solver;
//! - [`throughput`]: training throughput of fixed benchmark cases on any device (`ansatz throughput`);
//! - [`metrics`], [`data`], [`schedule`], [`optim`], [`checkpoint`], [`config`], [`figures`]: the pieces they share.

pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod data;
pub mod engine;
pub mod figures;
pub mod insr;
pub mod methods;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod report;
pub mod rollout;
pub mod schedule;
pub mod stream;
pub mod throughput;
pub mod trainer;
