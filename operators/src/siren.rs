//! SIREN coordinate networks (Sitzmann, Martel, Bergman, Lindell and Wetzstein, "Implicit neural representations
//! with periodic activation functions", NeurIPS 2020): a field `f(x)` given by
//!
//! ```text
//! h₁ = sin(ω₀ (x W₁ + b₁)),   h_{l+1} = sin(ω₀ (h_l W_{l+1} + b_{l+1})),   f(x) = h_L W_out + b_out
//! ```
//!
//! with the initialisation that keeps the activations' distribution the same through depth: first-layer
//! weights uniform in ±1/fan_in, later ones in ±√(6/fan_in)/ω₀, biases in ±1/√fan_in. [`Siren::forward_jet`]
//! propagates exact spatial derivatives (gradients, and second derivatives along the axes for Laplacians)
//! through the same weights with [`crate::jet`], as ordinary tensor operations, so a loss built from them is
//! differentiated with respect to the weights by burn's reverse mode. INSR (the network as the spatial
//! discretisation of a time-dependent PDE) is built on it.

use burn::module::{Module, Param};
use burn::prelude::*;

use crate::init::Init;
use crate::jet::Jet;

/// One affine map `x W + b` (`W` `[d_in, d_out]`).
#[derive(Module, Debug)]
pub struct Affine {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Affine {
    /// `x W + b`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze::<2>()
    }

    /// `x W + b` on a jet.
    pub fn forward_jet(&self, x: &Jet<2>) -> Jet<2> {
        x.linear(&self.weight.val(), Some(&self.bias.val()))
    }
}

/// The shape of a SIREN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SirenConfig {
    /// Input coordinates (1, 2 or 3).
    pub inputs: usize,
    /// Output components.
    pub outputs: usize,
    /// Width of the sine layers.
    pub width: usize,
    /// Sine layers after the first one (the reference's "hidden layers").
    pub hidden: usize,
    /// ω₀ (30 in the paper).
    pub omega: f64,
}

/// A SIREN: `hidden + 1` sine layers and a linear output.
#[derive(Module, Debug)]
pub struct Siren {
    pub layers: Vec<Affine>,
    pub output: Affine,
    #[module(skip)]
    omega: f64,
}

impl Siren {
    /// Draws the weights from `init` (the paper's initialisation).
    pub fn new(config: &SirenConfig, init: &mut Init) -> Self {
        let mut sizes = vec![config.inputs];
        sizes.extend(std::iter::repeat_n(config.width, config.hidden + 1));
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let fan_in = w[0] as f64;
                let a = if l == 0 { 1.0 / fan_in } else { (6.0 / fan_in).sqrt() / config.omega };
                let c = 1.0 / fan_in.sqrt();
                Affine {
                    weight: Param::from_tensor(init.uniform([w[0], w[1]], -a, a)),
                    bias: Param::from_tensor(init.uniform([w[1]], -c, c)),
                }
            })
            .collect();
        let fan_in = config.width as f64;
        let a = (6.0 / fan_in).sqrt() / config.omega;
        let c = 1.0 / fan_in.sqrt();
        let output = Affine {
            weight: Param::from_tensor(init.uniform([config.width, config.outputs], -a, a)),
            bias: Param::from_tensor(init.uniform([config.outputs], -c, c)),
        };
        Self { layers, output, omega: config.omega }
    }

    /// ω₀.
    pub fn omega(&self) -> f64 {
        self.omega
    }

    /// The field at points `x` `[n, inputs]`: `[n, outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = x;
        for layer in &self.layers {
            h = layer.forward(h).mul_scalar(self.omega).sin();
        }
        self.output.forward(h)
    }

    /// The field with its derivatives along the input's directions (for [`Jet::coordinates`] inputs: `∂f/∂xᵢ`
    /// and, with second derivatives, `∂²f/∂xᵢ²`).
    pub fn forward_jet(&self, x: &Jet<2>) -> Jet<2> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = layer.forward_jet(&h).sine(self.omega);
        }
        self.output.forward_jet(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    fn values(t: Tensor<2>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_into_vec::<f64>().expect("values")
    }

    fn f64_init(seed: u64) -> Init {
        Init::new(seed, &Device::flex()).with_dtype(DType::F64)
    }

    /// Gradients and axis second derivatives of 1D and 2D SIRENs against central differences in f64.
    #[test]
    fn spatial_derivatives_match_central_differences() {
        let mut init = f64_init(11);
        for dims in [1, 2] {
            let cfg = SirenConfig { inputs: dims, outputs: 2, width: 24, hidden: 2, omega: 30.0 };
            let net = Siren::new(&cfg, &mut init);
            let pts: Vec<f64> = [0.13, -0.4, -0.77, 0.25, 0.5, 0.91][..3 * dims].to_vec();
            let n = 3;
            let x = init.tensor(pts.clone(), [n, dims]);
            let jet = net.forward_jet(&Jet::coordinates(x.clone(), true));
            assert_eq!(values(jet.value.clone()), values(net.forward(x)), "the jet's value is the forward pass");
            let h = 1e-5;
            for axis in 0..dims {
                let at = |d: f64| {
                    let mut p = pts.clone();
                    p.iter_mut().skip(axis).step_by(dims).for_each(|v| *v += d);
                    values(net.forward(init.tensor(p, [n, dims])))
                };
                let (c, p, m) = (at(0.0), at(h), at(-h));
                let grad = values(jet.tangents[axis].clone());
                let second = values(jet.second.as_ref().expect("second")[axis].clone());
                let scale_g = grad.iter().fold(0.0f64, |s, v| s.max(v.abs()));
                let scale_s = second.iter().fold(0.0f64, |s, v| s.max(v.abs()));
                for i in 0..c.len() {
                    let g = (p[i] - m[i]) / (2.0 * h);
                    let s = (p[i] - 2.0 * c[i] + m[i]) / (h * h);
                    assert!(
                        (grad[i] - g).abs() <= 1e-6 * scale_g,
                        "{dims}D axis {axis}, value {i}: {} vs {g}",
                        grad[i]
                    );
                    assert!(
                        (second[i] - s).abs() <= 1e-3 * scale_s,
                        "{dims}D axis {axis}, value {i}: {} vs {s}",
                        second[i]
                    );
                }
            }
        }
    }

    /// The initialisation of the paper: first-layer weights within ±1/fan_in, later ones within ±√(6/fan_in)/ω₀.
    #[test]
    fn initialisation_follows_the_paper() {
        let cfg = SirenConfig { inputs: 1, outputs: 1, width: 20, hidden: 2, omega: 30.0 };
        let net = Siren::new(&cfg, &mut f64_init(2));
        let max = |t: Tensor<2>| values(t).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let first = max(net.layers[0].weight.val());
        assert!(first <= 1.0 && first > 0.5, "{first}");
        let bound = (6.0f64 / 20.0).sqrt() / 30.0;
        let later = max(net.layers[1].weight.val());
        assert!(later <= bound && later > 0.5 * bound, "{later} against {bound}");
        assert_eq!(net.layers.len(), 3);
    }
}
