//! The networks a run can train, built from the `[model]` table and the data's shape.

use crate::config::{Gate, ModelConfig};
use ansatz_operators::dymixop::{DyMixOp, DyMixOpConfig};
use ansatz_operators::fno::{Fno, FnoConfig};
use ansatz_operators::init::Init;
use burn::prelude::*;

/// What the network sees: frames of `channels` fields on an `ny × nx` grid (`ny = 1` in 1D), `history` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameShape {
    pub channels: usize,
    pub ny: usize,
    pub nx: usize,
    pub history: usize,
}

/// A trained or trainable surrogate: one autoregressive step `[b, history·channels, ny, nx] → [b, channels, ny, nx]`.
// one network per run: the size difference between variants does not matter
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Surrogate {
    Fno(Fno),
    DyMixOp(DyMixOp),
}

impl Surrogate {
    /// The network's raw output for one step.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Surrogate::Fno(m) => m.forward(x),
            Surrogate::DyMixOp(m) => m.forward(x),
        }
    }
}

/// Builds the network of `config` for `shape`; `tau` is the structure-change coefficient measured on the
/// training data (used by DyMixOp with a single input frame).
pub fn build(config: &ModelConfig, shape: FrameShape, tau: f64, init: &mut Init) -> Surrogate {
    let FrameShape { channels, ny, nx, history } = shape;
    match *config {
        ModelConfig::Fno { width, layers, modes, projection, .. } => Surrogate::Fno(
            FnoConfig::new(channels * history, channels, width, modes, modes, layers, nx, ny)
                .with_projection(projection)
                .init(init),
        ),
        ModelConfig::Dymixop { width, layers, modes, kernel, gate, .. } => Surrogate::DyMixOp(
            DyMixOpConfig::new(channels, history, channels, width, layers, modes, modes, nx, ny)
                .with_kernel(kernel)
                .with_tau(tau)
                .with_reference_gate(gate == Gate::Reference)
                .init(init),
        ),
    }
}

/// Number of trainable values of the network of `config` for `shape`.
pub fn parameters(config: &ModelConfig, shape: FrameShape) -> usize {
    let FrameShape { channels, ny, nx, history } = shape;
    match *config {
        ModelConfig::Fno { width, layers, modes, projection, .. } => {
            FnoConfig::new(channels * history, channels, width, modes, modes, layers, nx, ny)
                .with_projection(projection)
                .parameters()
        }
        ModelConfig::Dymixop { width, layers, modes, kernel, .. } => {
            DyMixOpConfig::new(channels, history, channels, width, layers, modes, modes, nx, ny)
                .with_kernel(kernel)
                .parameters()
        }
    }
}

/// One step of the surrogate on normalised frames `x` (`[b, history·channels, ny, nx]`): the network's output,
/// plus the last input frame when the model is residual.
pub fn step(model: &Surrogate, x: Tensor<4>, channels: usize, residual: bool) -> Tensor<4> {
    let [_, hc, ..] = x.dims();
    if residual {
        let last = x.clone().narrow(1, hc - channels, channels);
        model.forward(x) + last
    } else {
        model.forward(x)
    }
}

/// The next input window: drop the oldest frame, append `y`.
pub fn advance(x: Tensor<4>, y: Tensor<4>, channels: usize) -> Tensor<4> {
    let [_, hc, ..] = x.dims();
    if hc == channels { y } else { Tensor::cat(vec![x.narrow(1, channels, hc - channels), y], 1) }
}

/// The mean structure change 1 − cos∠(u_t, u_{t+1}) over consecutive frames of some trajectories
/// (`frames(s, t)` gives a frame of all channels), the DyMixOp τ for single-frame inputs.
pub fn mean_structure_change(samples: usize, times: usize, frame: impl Fn(usize, usize) -> Vec<f32>) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for s in 0..samples {
        for t in 0..times.saturating_sub(1) {
            let (a, b) = (frame(s, t), frame(s, t + 1));
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
            let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
            sum += 1.0 - dot / ((na * nb).sqrt() + 1e-12);
            count += 1;
        }
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}
