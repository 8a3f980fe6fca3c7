//! The networks a run can train, built from the `[model]` table and the data's shape.

use crate::config::{Gate, ModelConfig};
use ansatz_operators::dymixop::{DyMixOp, DyMixOpConfig};
use ansatz_operators::fno::{Fno, FnoConfig};
use ansatz_operators::init::Init;
use ansatz_operators::jet::Jet;
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

    /// Forward-mode derivatives of [`Surrogate::forward`] with respect to its input.
    pub fn forward_jet(&self, x: &Jet<4>) -> Jet<4> {
        match self {
            Surrogate::Fno(m) => m.forward_jet(x),
            Surrogate::DyMixOp(m) => m.forward_jet(x),
        }
    }
}

/// Output channels of the network: the frame's channels, twice over with a variance head (mean, then log σ²).
fn outputs(config: &ModelConfig, channels: usize) -> usize {
    if config.variance_head() { 2 * channels } else { channels }
}

/// Builds the network of `config` for `shape`; `tau` is the structure-change coefficient measured on the
/// training data (used by DyMixOp with a single input frame).
pub fn build(config: &ModelConfig, shape: FrameShape, tau: f64, init: &mut Init) -> Surrogate {
    let FrameShape { channels, ny, nx, history } = shape;
    let out = outputs(config, channels);
    match *config {
        ModelConfig::Fno { width, layers, modes, projection, .. } => Surrogate::Fno(
            FnoConfig::new(channels * history, out, width, modes, modes, layers, nx, ny)
                .with_projection(projection)
                .init(init),
        ),
        ModelConfig::Dymixop { width, layers, modes, kernel, gate, .. } => Surrogate::DyMixOp(
            DyMixOpConfig::new(channels, history, out, width, layers, modes, modes, nx, ny)
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
    let out = outputs(config, channels);
    match *config {
        ModelConfig::Fno { width, layers, modes, projection, .. } => {
            FnoConfig::new(channels * history, out, width, modes, modes, layers, nx, ny)
                .with_projection(projection)
                .parameters()
        }
        ModelConfig::Dymixop { width, layers, modes, kernel, .. } => {
            DyMixOpConfig::new(channels, history, out, width, layers, modes, modes, nx, ny)
                .with_kernel(kernel)
                .parameters()
        }
    }
}

/// One step of the surrogate on normalised frames `x` (`[b, history·channels, ny, nx]`): the network's output,
/// plus the last input frame when the model is residual. A variance head's channels are left out.
pub fn step(model: &Surrogate, x: Tensor<4>, channels: usize, residual: bool) -> Tensor<4> {
    step_with_variance(model, x, channels, residual).0
}

/// One step and, for a network with a variance head, its raw log-variance channels (`[b, channels, ny, nx]`,
/// unbounded: [`crate::methods::jaws::bounded_log_var`] maps them into the configured range).
pub fn step_with_variance(
    model: &Surrogate,
    x: Tensor<4>,
    channels: usize,
    residual: bool,
) -> (Tensor<4>, Option<Tensor<4>>) {
    let [_, hc, ..] = x.dims();
    let last = residual.then(|| x.clone().narrow(1, hc - channels, channels));
    let out = model.forward(x);
    let produced = out.dims()[1];
    let (mean, log_var) = if produced == 2 * channels {
        (out.clone().narrow(1, 0, channels), Some(out.narrow(1, channels, channels)))
    } else {
        (out, None)
    };
    (
        match last {
            Some(l) => mean + l,
            None => mean,
        },
        log_var,
    )
}

/// [`step_with_variance`] with forward-mode tangents: the step's value and its Jacobian–vector products `J vᵢ`
/// with respect to the input window for the directions `vᵢ` (each shaped like `x`), the residual connection
/// included; the log-variance channels (raw) without tangents.
pub fn step_jet(
    model: &Surrogate,
    x: Tensor<4>,
    directions: Vec<Tensor<4>>,
    channels: usize,
    residual: bool,
) -> (Jet<4>, Option<Tensor<4>>) {
    let [_, hc, ..] = x.dims();
    let input = Jet::seed(x, directions);
    let out = model.forward_jet(&input);
    let produced = out.value.dims()[1];
    let log_var = (produced == 2 * channels).then(|| out.value.clone().narrow(1, channels, channels));
    let mean = if produced == 2 * channels { out.map_linear(|t| t.narrow(1, 0, channels)) } else { out };
    let mean = if residual { mean.add(&input.map_linear(|t| t.narrow(1, hc - channels, channels))) } else { mean };
    (mean, log_var)
}

/// The next input window: drop the oldest frame, append `y`.
pub fn advance(x: Tensor<4>, y: Tensor<4>, channels: usize) -> Tensor<4> {
    let [_, hc, ..] = x.dims();
    if hc == channels { y } else { Tensor::cat(vec![x.narrow(1, channels, hc - channels), y], 1) }
}

/// `1 − cos(a, b)` of two frames: how much of the field's structure changes in one step (0 for a frame that is
/// only rescaled). Its mean over consecutive normalised training frames is DyMixOp's τ for single-frame inputs.
pub fn structure_change(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
    1.0 - dot / ((na * nb).sqrt() + 1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_into_vec::<f64>().expect("values")
    }

    /// The Jacobian–vector products of a whole step (the residual connection and the split-off variance head
    /// included) against the full Jacobian of a tiny network assembled row by row by reverse mode.
    #[test]
    fn step_tangents_equal_the_full_jacobian_applied_to_the_directions() {
        let fno =
            ModelConfig::Fno { width: 4, layers: 2, modes: 3, projection: 6, residual: true, variance_head: true };
        let dymixop = ModelConfig::Dymixop {
            width: 3,
            layers: 2,
            modes: 3,
            kernel: 3,
            gate: Gate::Reference,
            residual: true,
            variance_head: true,
        };
        for (config, history) in [(fno, 2), (dymixop, 1)] {
            let shape = FrameShape { channels: 2, ny: 1, nx: 8, history };
            let (c, n_in, n_out) = (shape.channels, history * shape.channels * shape.nx, shape.channels * shape.nx);
            let dims = [1, history * c, 1, shape.nx];
            let ad = Device::flex().autodiff();
            let model = build(&config, shape, 0.2, &mut Init::new(5, &ad).with_dtype(DType::F64));
            let plain = build(&config, shape, 0.2, &mut Init::new(5, &Device::flex()).with_dtype(DType::F64));
            let mut draw = Init::new(6, &Device::flex()).with_dtype(DType::F64);
            let x0 = values(draw.uniform(dims, -1.0, 1.0));
            let vs: Vec<Vec<f64>> = (0..2).map(|_| values(draw.uniform(dims, -1.0, 1.0))).collect();
            let data = Init::new(0, &ad).with_dtype(DType::F64);
            let mut jac = vec![0.0; n_out * n_in];
            for r in 0..n_out {
                let x = data.tensor(x0.clone(), dims).require_grad();
                let mut e = vec![0.0; n_out];
                e[r] = 1.0;
                let y = (step(&model, x.clone(), c, true) * data.tensor(e, [1, c, 1, shape.nx])).sum();
                let g = values(x.grad(&y.backward()).expect("input gradient"));
                jac[r * n_in..(r + 1) * n_in].copy_from_slice(&g);
            }
            let pdata = Init::new(0, &Device::flex()).with_dtype(DType::F64);
            let dirs = vs.iter().map(|v| pdata.tensor(v.clone(), dims)).collect();
            let (jet, log_var) = step_jet(&plain, pdata.tensor(x0.clone(), dims), dirs, c, true);
            assert_eq!(log_var.expect("a variance head").dims(), [1, c, 1, shape.nx]);
            let (mean, _) = step_with_variance(&plain, pdata.tensor(x0.clone(), dims), c, true);
            for (a, b) in values(jet.value.clone()).iter().zip(values(mean)) {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{}: value {a} vs step {b}", config.kind());
            }
            for (v, t) in vs.iter().zip(&jet.tangents) {
                let jv = values(t.clone());
                for r in 0..n_out {
                    let exact: f64 = (0..n_in).map(|k| jac[r * n_in + k] * v[k]).sum();
                    assert!(
                        (jv[r] - exact).abs() <= 1e-10 * exact.abs().max(1.0),
                        "{}: (J v)[{r}]: jet {} vs reverse-mode Jacobian {exact}",
                        config.kind(),
                        jv[r]
                    );
                }
            }
        }
    }
}
