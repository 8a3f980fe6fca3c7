//! The networks of latent reduced-order models trained as auto-decoders (Φ-ROM, DINo, CROM): a decoder
//! `D(x, α)` evaluated at arbitrary coordinates `x` for a latent `α ∈ R^k`, with its Jacobian `∂D/∂α` by
//! forward-mode tangents ([`crate::jet`]), and a latent dynamics network `Ψ(α, μ)`.
//!
//! Decoders (coordinates are expected scaled to `[−1, 1]`; outputs are normalised values):
//! - [`DecoderKind::Mlp`]: `[x; α] → layers × (affine, sin) → affine`, every affine map initialised uniform in
//!   `±1/√fan_in` (weights and biases);
//! - [`DecoderKind::Hyper`], a multiplicative filter network with latent shift modulation: filters
//!   `g_j(x) = [sin(x Ω_j), cos(x Ω_j)]` (`Ω_j` `[d, w/2]`, He-uniform), `h₀ = (α W⁰_h + b₀) ⊙ g₀(x)`,
//!   `h_j = (h_{j−1} W^j + b_j + α W^j_h) ⊙ g_j(x)`, output `h W_o + b_o`; the latent projections `W_h` carry
//!   no bias.
//!
//! Dynamics `Ψ(α, μ)` (μ normalised by the caller):
//! - [`DynamicsKind::HyperConcat`]: `z = [α; μ A + a]` (μ lifted to `R^k`), then `depth` hidden layers of width
//!   `w` with the learnable swish, then an affine map to `R^k`;
//! - [`DynamicsKind::Mlp`]: `z = [α; μ]`, the same layers.
//!
//! The learnable swish is `x · sigmoid(x · softplus(β)) / 1.1` with one β per hidden layer, initialised to 0.5.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::init::Init;
use crate::jet::Jet;
use crate::siren::Affine;

/// Decoder architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderKind {
    Mlp,
    Hyper,
}

/// The shape of a decoder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecoderConfig {
    pub kind: DecoderKind,
    /// Coordinates per point `d`.
    pub coords: usize,
    /// Latent size `k`.
    pub latent: usize,
    /// Output channels.
    pub outputs: usize,
    /// Hidden width (even for the hyper decoder).
    pub width: usize,
    /// Sine layers (MLP) or filter layers (hyper).
    pub layers: usize,
}

/// The weight `[d_in, d_out]` of an affine map, uniform in `±1/√d_in`.
fn weight(init: &mut Init, d_in: usize, d_out: usize) -> Param<Tensor<2>> {
    let a = 1.0 / (d_in as f64).sqrt();
    Param::from_tensor(init.uniform([d_in, d_out], -a, a))
}

/// An affine map with weight and bias uniform in `±1/√d_in`.
fn dense(init: &mut Init, d_in: usize, d_out: usize) -> Affine {
    let a = 1.0 / (d_in as f64).sqrt();
    let weight = weight(init, d_in, d_out);
    Affine { weight, bias: Param::from_tensor(init.uniform([d_out], -a, a)) }
}

/// The MLP decoder: `[x; α]`, split into its coordinate and latent parts in the first layer.
#[derive(Module, Debug)]
pub struct MlpDecoder {
    /// First layer: `x W_x + α W_α + b`.
    pub first_x: Param<Tensor<2>>,
    pub first_latent: Affine,
    pub hidden: Vec<Affine>,
    pub output: Affine,
}

/// The multiplicative filter decoder with latent shift modulation.
#[derive(Module, Debug)]
pub struct HyperDecoder {
    /// `Ω_j` `[d, w/2]`.
    pub filters: Vec<Param<Tensor<2>>>,
    /// `W_h^j` `[k, w]`, no bias.
    pub latent: Vec<Param<Tensor<2>>>,
    /// `b₀`.
    pub first_bias: Param<Tensor<1>>,
    /// `W^j, b_j` for `j ≥ 1`.
    pub linears: Vec<Affine>,
    pub output: Affine,
}

/// A decoder `D(x, α)`.
#[derive(Module, Debug)]
pub enum Decoder {
    Mlp(MlpDecoder),
    Hyper(HyperDecoder),
}

impl Decoder {
    /// Draws the weights from `init`.
    pub fn new(c: &DecoderConfig, init: &mut Init) -> Self {
        assert!(c.layers >= 1 && c.width >= 2 && c.latent >= 1 && c.coords >= 1 && c.outputs >= 1, "{c:?}");
        match c.kind {
            DecoderKind::Mlp => {
                let fan_in = (c.coords + c.latent) as f64;
                let a = 1.0 / fan_in.sqrt();
                let first_x = Param::from_tensor(init.uniform([c.coords, c.width], -a, a));
                let first_latent = Affine {
                    weight: Param::from_tensor(init.uniform([c.latent, c.width], -a, a)),
                    bias: Param::from_tensor(init.uniform([c.width], -a, a)),
                };
                let hidden = (1..c.layers).map(|_| dense(init, c.width, c.width)).collect();
                let output = dense(init, c.width, c.outputs);
                Decoder::Mlp(MlpDecoder { first_x, first_latent, hidden, output })
            }
            DecoderKind::Hyper => {
                assert!(c.width % 2 == 0, "the hyper decoder's width must be even");
                let he = (6.0 / c.coords as f64).sqrt();
                let filters =
                    (0..c.layers).map(|_| Param::from_tensor(init.uniform([c.coords, c.width / 2], -he, he))).collect();
                let latent = (0..c.layers).map(|_| weight(init, c.latent, c.width)).collect();
                let a = 1.0 / (c.latent as f64).sqrt();
                let first_bias = Param::from_tensor(init.uniform([c.width], -a, a));
                let linears = (1..c.layers).map(|_| dense(init, c.width, c.width)).collect();
                let output = dense(init, c.width, c.outputs);
                Decoder::Hyper(HyperDecoder { filters, latent, first_bias, linears, output })
            }
        }
    }

    /// The decoder on rows: coordinates `x` `[r, d]` (a constant) and latents `alpha` `[r, k]` as a jet (its
    /// tangents give the derivatives with respect to α); `[r, outputs]`.
    pub fn forward_rows(&self, x: Tensor<2>, alpha: &Jet<2>) -> Jet<2> {
        match self {
            Decoder::Mlp(m) => {
                let zx = x.matmul(m.first_x.val());
                let mut h =
                    alpha.linear(&m.first_latent.weight.val(), Some(&m.first_latent.bias.val())).add_constant(&zx);
                h = h.sine(1.0);
                for l in &m.hidden {
                    h = h.linear(&l.weight.val(), Some(&l.bias.val())).sine(1.0);
                }
                h.linear(&m.output.weight.val(), Some(&m.output.bias.val()))
            }
            Decoder::Hyper(m) => {
                let filter = |j: usize| {
                    let z = x.clone().matmul(m.filters[j].val());
                    Tensor::cat(vec![z.clone().sin(), z.cos()], 1)
                };
                let mut h = alpha.linear(&m.latent[0].val(), Some(&m.first_bias.val())).mul_constant(&filter(0));
                for (j, l) in m.linears.iter().enumerate() {
                    let shift = alpha.linear(&m.latent[j + 1].val(), None);
                    h = h.linear(&l.weight.val(), Some(&l.bias.val())).add(&shift).mul_constant(&filter(j + 1));
                }
                h.linear(&m.output.weight.val(), Some(&m.output.bias.val()))
            }
        }
    }

    /// `D(x, α_b)` at the same points for every latent: `x` `[n, d]`, `alpha` `[b, k]` → `[b, n, outputs]`.
    pub fn decode(&self, x: Tensor<2>, alpha: Tensor<2>) -> Tensor<3> {
        let [n, d] = x.dims();
        let b = alpha.dims()[0];
        let xs = x.unsqueeze_dim::<3>(0).repeat_dim(0, b).reshape([b * n, d]);
        self.decode_rows(xs, alpha, n)
    }

    /// `D(x_b, α_b)` at each latent's own points: `x` `[b, m, d]`, `alpha` `[b, k]` → `[b, m, outputs]`.
    pub fn decode_at(&self, x: Tensor<3>, alpha: Tensor<2>) -> Tensor<3> {
        let [b, m, d] = x.dims();
        self.decode_rows(x.reshape([b * m, d]), alpha, m)
    }

    fn decode_rows(&self, xs: Tensor<2>, alpha: Tensor<2>, m: usize) -> Tensor<3> {
        let [b, k] = alpha.dims();
        let rows = alpha.unsqueeze_dim::<3>(1).repeat_dim(1, m).reshape([b * m, k]);
        let y = self.forward_rows(xs, &Jet::constant(rows)).value;
        let c = y.dims()[1];
        y.reshape([b, m, c])
    }

    /// The values and the Jacobian `∂D/∂α` at each latent's own points: `x` `[b, m, d]`, `alpha` `[b, k]` →
    /// (`[b, m, outputs]`, `[b, m, outputs, k]`), exact (forward-mode tangents), differentiable in the weights and
    /// in α by reverse mode.
    pub fn jacobian_at(&self, x: Tensor<3>, alpha: Tensor<2>) -> (Tensor<3>, Tensor<4>) {
        let [b, m, d] = x.dims();
        let k = alpha.dims()[1];
        let rows = alpha.unsqueeze_dim::<3>(1).repeat_dim(1, m).reshape([b * m, k]);
        let jet = Jet::coordinates(rows, false);
        let y = self.forward_rows(x.reshape([b * m, d]), &jet);
        let c = y.value.dims()[1];
        (y.value.clone().reshape([b, m, c]), y.jacobian().reshape([b, m, c, k]))
    }
}

/// Dynamics architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicsKind {
    HyperConcat,
    Mlp,
}

/// The shape of a dynamics network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DynamicsConfig {
    pub kind: DynamicsKind,
    /// Latent size `k`.
    pub latent: usize,
    /// Parameters μ per sample (0 for none).
    pub params: usize,
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
}

/// `Ψ(α, μ) → R^k`.
#[derive(Module, Debug)]
pub struct Dynamics {
    /// μ lifted to `R^k` (hyper-concat only).
    pub embed: Option<Affine>,
    pub hidden: Vec<Affine>,
    /// β of each hidden layer's swish.
    pub beta: Vec<Param<Tensor<1>>>,
    pub output: Affine,
}

impl Dynamics {
    /// Draws the weights from `init`; β = 0.5.
    pub fn new(c: &DynamicsConfig, init: &mut Init) -> Self {
        assert!(c.depth >= 1 && c.width >= 1 && c.latent >= 1, "{c:?}");
        let (embed, input) = match c.kind {
            DynamicsKind::HyperConcat if c.params > 0 => (Some(dense(init, c.params, c.latent)), 2 * c.latent),
            _ => (None, c.latent + c.params),
        };
        let mut sizes = vec![input];
        sizes.extend(std::iter::repeat_n(c.width, c.depth));
        let hidden = sizes.windows(2).map(|w| dense(init, w[0], w[1])).collect();
        let beta = (0..c.depth).map(|_| Param::from_tensor(init.constant([1], 0.5))).collect();
        Self { embed, hidden, beta, output: dense(init, c.width, c.latent) }
    }

    /// `Ψ(α, μ)`: `alpha` `[b, k]`, `mu` `[b, params]` (normalised; ignored when there are no parameters).
    pub fn forward(&self, alpha: Tensor<2>, mu: Option<Tensor<2>>) -> Tensor<2> {
        let mut h = match (&self.embed, mu) {
            (Some(e), Some(mu)) => Tensor::cat(vec![alpha, e.forward(mu)], 1),
            (None, Some(mu)) if mu.dims()[1] > 0 => Tensor::cat(vec![alpha, mu], 1),
            _ => alpha,
        };
        for (l, beta) in self.hidden.iter().zip(&self.beta) {
            let z = l.forward(h);
            // softplus(β) = ln(1 + e^β)
            let s = beta.val().exp().add_scalar(1.0).log().unsqueeze::<2>();
            h = (z.clone() * sigmoid(z * s)).div_scalar(1.1);
        }
        self.output.forward(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_into_vec::<f64>().expect("values")
    }

    /// The Jacobian with respect to α equals central differences of the decoder (f64), for both decoders, and the
    /// shared-point and per-latent evaluations agree.
    #[test]
    fn the_latent_jacobian_matches_central_differences() {
        for kind in [DecoderKind::Mlp, DecoderKind::Hyper] {
            let mut init = Init::new(3, &Device::flex()).with_dtype(DType::F64);
            let c = DecoderConfig { kind, coords: 2, latent: 3, outputs: 2, width: 8, layers: 3 };
            let dec = Decoder::new(&c, &mut init);
            let (b, m) = (2, 4);
            let x = init.uniform([b, m, 2], -1.0, 1.0);
            let alpha = init.uniform([b, 3], -0.5, 0.5);
            let (y, jac) = dec.jacobian_at(x.clone(), alpha.clone());
            assert_eq!(values(y.clone()), values(dec.decode_at(x.clone(), alpha.clone())), "{kind:?}: value");
            let jac = values(jac);
            let a0 = values(alpha.clone());
            let h = 1e-6;
            for i in 0..3 {
                let shifted = |s: f64| {
                    let mut a = a0.clone();
                    for r in 0..b {
                        a[r * 3 + i] += s;
                    }
                    values(dec.decode_at(x.clone(), init.tensor(a, [b, 3])))
                };
                let (p, q) = (shifted(h), shifted(-h));
                for e in 0..b * m * 2 {
                    let fd = (p[e] - q[e]) / (2.0 * h);
                    let j = jac[e * 3 + i];
                    assert!((fd - j).abs() < 1e-7 * (1.0 + j.abs()), "{kind:?}: entry {e}, direction {i}: {j} vs {fd}");
                }
            }
            // shared points: decode equals decode_at with the points repeated per latent
            let pts = init.uniform([5, 2], -1.0, 1.0);
            let shared = values(dec.decode(pts.clone(), alpha.clone()));
            let each = values(dec.decode_at(pts.unsqueeze_dim::<3>(0).repeat_dim(0, b), alpha));
            assert_eq!(shared, each, "{kind:?}");
        }
    }

    #[test]
    fn dynamics_take_the_parameters_and_train_beta() {
        let device = Device::flex().autodiff();
        let mut init = Init::new(4, &device);
        for kind in [DynamicsKind::HyperConcat, DynamicsKind::Mlp] {
            let c = DynamicsConfig { kind, latent: 4, params: 1, width: 16, depth: 3 };
            let psi = Dynamics::new(&c, &mut init);
            let alpha = init.uniform([5, 4], -1.0, 1.0);
            let (mu1, mu2) = (init.constant([5, 1], 0.3), init.constant([5, 1], -0.3));
            let y1 = psi.forward(alpha.clone(), Some(mu1));
            let y2 = psi.forward(alpha, Some(mu2));
            assert_eq!(y1.dims(), [5, 4]);
            let diff = values((y1.clone() - y2).abs().sum())[0];
            assert!(diff > 1e-6, "{kind:?}: μ has no effect");
            let grads = y1.sum().backward();
            assert!(psi.beta[0].val().grad(&grads).is_some(), "{kind:?}: β gets a gradient");
        }
    }
}
