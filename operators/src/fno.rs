//! Fourier neural operator in 1D (Li et al. 2021, arXiv:2010.08895): pointwise lift, layers of spectral
//! convolution plus pointwise linear map with GELU between them, pointwise projection through a hidden layer.

use burn::nn::{Gelu, Linear, LinearConfig};
use burn::prelude::*;

use crate::spectral::{SpectralConv1d, SpectralConv1dConfig};

/// Configuration of [`Fno1d`].
#[derive(Config, Debug)]
pub struct Fno1dConfig {
    /// Input channels (e.g. stacked input frames).
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Hidden channels.
    pub width: usize,
    /// Fourier modes per spectral convolution.
    pub modes: usize,
    /// Number of Fourier layers.
    pub layers: usize,
    /// Grid points.
    pub n: usize,
    /// Width of the projection's hidden layer.
    #[config(default = 128)]
    pub projection: usize,
}

impl Fno1dConfig {
    /// Initialises the network.
    pub fn init(&self, device: &Device) -> Fno1d {
        let spectral = (0..self.layers)
            .map(|_| SpectralConv1dConfig::new(self.width, self.width, self.modes, self.n).init(device))
            .collect();
        let pointwise = (0..self.layers).map(|_| LinearConfig::new(self.width, self.width).init(device)).collect();
        Fno1d {
            lift: LinearConfig::new(self.channels_in, self.width).init(device),
            spectral,
            pointwise,
            proj1: LinearConfig::new(self.width, self.projection).init(device),
            proj2: LinearConfig::new(self.projection, self.channels_out).init(device),
            activation: Gelu::new(),
        }
    }
}

/// 1D FNO: `[batch, c_in, n] → [batch, c_out, n]`.
#[derive(Module, Debug)]
pub struct Fno1d {
    lift: Linear,
    spectral: Vec<SpectralConv1d>,
    pointwise: Vec<Linear>,
    proj1: Linear,
    proj2: Linear,
    activation: Gelu,
}

impl Fno1d {
    /// Applies the network.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        // channels last for the pointwise maps
        let mut h = self.lift.forward(x.swap_dims(1, 2)).swap_dims(1, 2);
        let last = self.spectral.len().saturating_sub(1);
        for (l, (s, p)) in self.spectral.iter().zip(&self.pointwise).enumerate() {
            let y = s.forward(h.clone()) + p.forward(h.swap_dims(1, 2)).swap_dims(1, 2);
            h = if l < last { self.activation.forward(y) } else { y };
        }
        let z = self.activation.forward(self.proj1.forward(h.swap_dims(1, 2)));
        self.proj2.forward(z).swap_dims(1, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::TensorData;

    /// Random smooth fields (4 Fourier modes) and their images under the heat semigroup e^{−0.05 k²}: a linear
    /// operator diagonal in Fourier space, which one spectral layer represents exactly.
    fn batch(seed: u64, b: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let (mut x, mut y) = (vec![], vec![]);
        for _ in 0..b {
            let coef: Vec<(f64, f64)> = (1..=4).map(|_| (next(), next())).collect();
            for i in 0..n {
                let t = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
                let (mut u, mut v) = (0.0, 0.0);
                for (k, (a, c)) in coef.iter().enumerate() {
                    let k = (k + 1) as f64;
                    let damp = (-0.05 * k * k).exp();
                    u += a * (k * t).cos() + c * (k * t).sin();
                    v += damp * (a * (k * t).cos() + c * (k * t).sin());
                }
                x.push(u as f32);
                y.push(v as f32);
            }
        }
        (x, y)
    }

    #[test]
    fn learns_a_fourier_multiplier() {
        let device = Device::flex().autodiff();
        let n = 32;
        let config = Fno1dConfig::new(1, 1, 8, 8, 2, n).with_projection(16);
        let mut model = config.init(&device);
        let mut optim = AdamConfig::new().init();
        let to = |v: Vec<f32>, b: usize| Tensor::<3>::from_data(TensorData::new(v, [b, 1, n]), &device);
        let rel = |model: &Fno1d, seed: u64| -> f64 {
            let (x, y) = batch(seed, 32, n);
            let p = model.forward(to(x, 32)).into_data();
            let p = p.as_slice::<f32>().expect("f32");
            let num: f64 = p.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            let den: f64 = y.iter().map(|b| (*b as f64).powi(2)).sum();
            (num / den).sqrt()
        };
        let before = rel(&model, 999);
        for step in 0..400 {
            let (x, y) = batch(step, 16, n);
            let pred = model.forward(to(x, 16));
            let loss = (pred - to(y, 16)).powf_scalar(2.0).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(if step < 300 { 1e-2 } else { 2e-3 }, model, grads);
        }
        let after = rel(&model, 999);
        eprintln!("relative L2 on held-out samples: {before:.4} -> {after:.4}");
        assert!(after < 0.03 && after < 0.1 * before, "relative L2 on held-out samples: {before} -> {after}");
    }
}
