//! Forward-mode derivatives as ordinary tensor operations ("jets"), so that burn's first-order reverse mode can
//! differentiate them with respect to the weights.
//!
//! burn has reverse mode only, and no second-order autodiff. A [`Jet`] carries, next to a primal tensor `y`, its
//! directional derivatives along `k` input directions and, optionally, the pure second derivatives along the same
//! directions. Every rule below is built from burn tensor operations, so a loss written in terms of tangents (a
//! PDE residual with a Laplacian, `‖J v‖²`, a decoder Jacobian) is itself a tracked graph and `loss.backward()`
//! gives its gradient with respect to the parameters. Users:
//! - INSR and PINN-style losses: spatial gradients and Laplacians of a coordinate network ([`Jet::coordinates`],
//!   [`Jet::laplacian`]);
//! - Φ-ROM: the decoder Jacobian with respect to a latent ([`Jet::seed`] with unit directions, [`Jet::jacobian`]);
//! - JAWS: Jacobian–vector products of an FNO with respect to its input state ([`crate::fno::Fno::forward_jet`]).
//!
//! # What a jet holds
//!
//! For an input curve `x(s)` through `x₀` with velocity `vᵢ` along direction `i`, and any network `y = f(x)`:
//!
//! ```text
//! value        y          = f(x₀)
//! tangents[i]  ẏᵢ         = d/dsᵢ f(x(s)) at s = 0            = J vᵢ
//! second[i]    ÿᵢ         = d²/dsᵢ² f(x(s)) at s = 0          = vᵢᵀ H vᵢ + J ẍᵢ
//! ```
//!
//! An input seeded along straight lines (`x(s) = x₀ + s vᵢ`) has `ẍᵢ = 0`, so `second[i]` is the diagonal of the
//! Hessian in the directions `vᵢ`; for the coordinate axes ([`Jet::coordinates`]) it is `∂²y/∂xᵢ²`, and
//! [`Jet::laplacian`] sums them. Mixed second derivatives are not carried (seed `vᵢ + vⱼ` to get them by
//! polarisation if needed).
//!
//! # Rules
//!
//! ```text
//! linear map L (no bias):   y = L x         ẏ = L ẋ                      ÿ = L ẍ
//! affine  y = x W + b:      y = x W + b     ẏ = ẋ W                      ÿ = ẍ W          (the bias only on y)
//! elementwise σ:            y = σ(x)        ẏ = σ'(x) ẋ                  ÿ = σ'(x) ẍ + σ''(x) ẋ²
//! product y = a b:          y = a b         ẏ = a ḃ + ȧ b                ÿ = a b̈ + 2 ȧ ḃ + ä b
//! sum     y = a + b:        y = a + b       ẏ = ȧ + ḃ                    ÿ = ä + b̈
//! ```
//!
//! All products are elementwise (with burn's broadcasting). A jet without tangents is a constant: in sums and
//! products it contributes zero tangents, so constants (coordinates appended to an FNO input, a frozen field)
//! combine with any jet.
//!
//! # Efficiency
//!
//! Linear maps that treat every index of the batch dimension (dim 0) independently — matrix products over the last
//! dimension, [`Pointwise`] maps, [`SpectralConv`] — are applied once to the value and all tangents stacked along
//! dim 0 ([`Jet::stack`], [`Jet::map_linear_batched`]), so a layer runs one large matrix product instead of
//! `1 + k` (or `1 + 2k`) small ones. Biases are added to the value only.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::linear as affine;

use crate::kernels;
use crate::layers::{PeriodicConv, Pointwise, periodic_conv};
use crate::spectral::SpectralConv;

/// 1/√(2π), the normalisation of the standard normal density.
const FRAC_1_SQRT_2PI: f64 = std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2 * 0.5;

/// A tensor with its directional derivatives: the primal `value`, `k` first-order `tangents` (each the shape of
/// `value`) and optionally the `k` pure second derivatives along the same directions (see the [module
/// documentation](crate::jet) for the definitions and rules).
///
/// A jet with `k = 0` is a constant. `second` is either absent or holds exactly `k` tensors.
#[derive(Debug, Clone)]
pub struct Jet<const D: usize> {
    /// The primal value `y`.
    pub value: Tensor<D>,
    /// `ẏᵢ = d y / d sᵢ`, one per direction, each shaped like `value`.
    pub tangents: Vec<Tensor<D>>,
    /// `ÿᵢ = d² y / d sᵢ²`, one per direction, each shaped like `value`; `None` when not propagated.
    pub second: Option<Vec<Tensor<D>>>,
}

/// The sum of the terms that are present (at least one must be).
fn sum_present<const D: usize>(terms: impl IntoIterator<Item = Option<Tensor<D>>>) -> Tensor<D> {
    terms.into_iter().flatten().reduce(|a, b| a + b).expect("a jet rule with no terms")
}

impl<const D: usize> Jet<D> {
    /// A constant: no tangents (zero derivative in every direction).
    pub fn constant(value: Tensor<D>) -> Self {
        Self { value, tangents: vec![], second: None }
    }

    /// An input with the given tangent directions `vᵢ` (each shaped like `value`), first order only. Chain
    /// [`Jet::with_zero_second`] to propagate second derivatives along the straight lines `x₀ + sᵢ vᵢ`.
    pub fn seed(value: Tensor<D>, tangents: Vec<Tensor<D>>) -> Self {
        let dims = value.dims();
        for (i, t) in tangents.iter().enumerate() {
            assert_eq!(t.dims(), dims, "tangent {i} is not shaped like the value");
        }
        Self { value, tangents, second: None }
    }

    /// The same jet with zero second derivatives (`ẍᵢ = 0`: the input moves along straight lines), so that the
    /// layers downstream propagate second derivatives.
    pub fn with_zero_second(mut self) -> Self {
        self.second = Some(self.tangents.iter().map(|t| t.zeros_like()).collect());
        self
    }

    /// The same jet without its second derivatives.
    pub fn without_second(mut self) -> Self {
        self.second = None;
        self
    }

    /// The number of directions `k`.
    pub fn k(&self) -> usize {
        self.tangents.len()
    }

    /// Whether second derivatives are propagated.
    pub fn has_second(&self) -> bool {
        self.second.is_some()
    }

    /// Whether this jet can take part in a second-order rule: constants (zero second derivatives) always can.
    fn second_ready(&self) -> bool {
        self.k() == 0 || self.second.is_some()
    }

    fn tangent(&self, i: usize) -> Option<Tensor<D>> {
        self.tangents.get(i).cloned()
    }

    fn second_at(&self, i: usize) -> Option<Tensor<D>> {
        self.second.as_ref().and_then(|s| s.get(i).cloned())
    }

    /// The directions shared by two operands (a constant adopts the other's) and whether second derivatives
    /// propagate (when every non-constant operand carries them).
    fn joint(a: &Self, b: &Self) -> (usize, bool) {
        let k = match (a.k(), b.k()) {
            (ka, kb) if ka == kb => ka,
            (0, kb) => kb,
            (ka, 0) => ka,
            (ka, kb) => panic!("jets with different numbers of directions: {ka} and {kb}"),
        };
        (k, k > 0 && a.second_ready() && b.second_ready())
    }

    /// Applies a linear map `L` (no bias, no constant term) to the value, every tangent and every second
    /// derivative, one tensor at a time: `y = L x`, `ẏ = L ẋ`, `ÿ = L ẍ`. Reshapes, permutations, slices, sums
    /// and products with constant tensors are such maps.
    pub fn map_linear<const E: usize>(&self, f: impl Fn(Tensor<D>) -> Tensor<E>) -> Jet<E> {
        Jet {
            value: f(self.value.clone()),
            tangents: self.tangents.iter().map(|t| f(t.clone())).collect(),
            second: self.second.as_ref().map(|s| s.iter().map(|t| f(t.clone())).collect()),
        }
    }

    /// The value, the tangents and the second derivatives (if any) concatenated along dim 0, in that order:
    /// `[(1 + k + k₂) n, …]` for a value `[n, …]`, with `k₂ = k` when second derivatives are carried, else 0.
    pub fn stack(&self) -> Tensor<D> {
        if self.k() == 0 {
            return self.value.clone();
        }
        let mut parts = Vec::with_capacity(1 + 2 * self.k());
        parts.push(self.value.clone());
        parts.extend(self.tangents.iter().cloned());
        if let Some(s) = &self.second {
            parts.extend(s.iter().cloned());
        }
        Tensor::cat(parts, 0)
    }

    /// The inverse of [`Jet::stack`]: splits dim 0 of `stacked` into the value, `k` tangents and (when
    /// `with_second`) `k` second derivatives, as views.
    pub fn unstack(stacked: Tensor<D>, k: usize, with_second: bool) -> Self {
        let parts = 1 + k + if with_second { k } else { 0 };
        let rows = stacked.dims()[0];
        assert!(rows % parts == 0, "{rows} stacked rows do not split into {parts} equal parts");
        let n = rows / parts;
        let part = |i: usize| stacked.clone().narrow(0, i * n, n);
        Self {
            value: part(0),
            tangents: (1..=k).map(&part).collect(),
            second: with_second.then(|| (k + 1..=2 * k).map(&part).collect()),
        }
    }

    /// Applies a linear map once to the value and all derivatives stacked along dim 0 ([`Jet::stack`]). `f` must
    /// treat every index of dim 0 independently and keep its size (a matrix product over the last dimension, a
    /// [`Pointwise`] map, a [`SpectralConv`], a reshape that keeps dim 0) and must not add a constant.
    pub fn map_linear_batched<const E: usize>(&self, f: impl FnOnce(Tensor<D>) -> Tensor<E>) -> Jet<E> {
        if self.k() == 0 {
            return Jet::constant(f(self.value.clone()));
        }
        Jet::unstack(f(self.stack()), self.k(), self.second.is_some())
    }

    /// The affine map `y = x W + b` over the last dimension, with `weight` `[d_in, d_out]` and `bias` `[d_out]` (the
    /// layout of burn's `Linear`): `ẏ = ẋ W`, `ÿ = ẍ W`, the bias on the value only. For `D ≥ 2` the value and
    /// all derivatives go through one matrix product.
    pub fn linear(&self, weight: &Tensor<2>, bias: Option<&Tensor<1>>) -> Self {
        let mut out = if D >= 2 {
            self.map_linear_batched(|t| affine(t, weight.clone(), None))
        } else {
            self.map_linear(|t| affine(t, weight.clone(), None))
        };
        if let Some(b) = bias {
            out.value = out.value + b.clone().unsqueeze::<D>();
        }
        out
    }

    /// An elementwise function from its value `σ(x)` and derivatives at the primal: `first = σ'(x)` and
    /// `curvature() = σ''(x)` (evaluated only when second derivatives are carried):
    /// `ẏ = σ'(x) ẋ`, `ÿ = σ'(x) ẍ + σ''(x) ẋ²`.
    pub fn elementwise(&self, value: Tensor<D>, first: Tensor<D>, curvature: impl FnOnce() -> Tensor<D>) -> Self {
        let tangents = self.tangents.iter().map(|t| first.clone() * t.clone()).collect();
        let second = self.second.as_ref().map(|s| {
            let curvature = curvature();
            s.iter()
                .zip(&self.tangents)
                .map(|(s, t)| first.clone() * s.clone() + curvature.clone() * t.clone().square())
                .collect()
        });
        Self { value, tangents, second }
    }

    /// The SIREN activation `y = sin(ω x)` (Sitzmann et al. 2020; ω = ω₀, or 1 for a plain sine):
    /// `σ' = ω cos(ω x)`, `σ'' = −ω² sin(ω x)`.
    pub fn sine(&self, omega: f64) -> Self {
        let z = self.value.clone().mul_scalar(omega);
        let y = z.clone().sin();
        let first = z.cos().mul_scalar(omega);
        let curvature = y.clone();
        self.elementwise(y, first, move || curvature.mul_scalar(-omega * omega))
    }

    /// `y = tanh x`: `σ' = 1 − y²`, `σ'' = −2 y σ'`.
    pub fn tanh(&self) -> Self {
        let y = self.value.clone().tanh();
        let first = y.clone().square().neg().add_scalar(1.0);
        let (value, slope) = (y.clone(), first.clone());
        self.elementwise(value, slope, move || y.mul_scalar(-2.0) * first)
    }

    /// The exact GELU `y = x Φ(x)` with Φ the standard normal distribution function and φ its density:
    /// `σ' = Φ(x) + x φ(x)`, `σ'' = φ(x) (2 − x²)`.
    ///
    /// The value is [`kernels::gelu`], the function the crate's networks apply. Φ is computed with burn's `erf`.
    /// In f64 (and on non-CPU backends) both are burn's exact GELU; on the Flex backend in f32 the value comes
    /// from the kernel's erf, which differs from burn's by at most 1.5·10⁻⁷, so value and derivatives agree to
    /// that level.
    pub fn gelu(&self) -> Self {
        let x = self.value.clone();
        let y = kernels::gelu(x.clone());
        let pdf = x.clone().square().mul_scalar(-0.5).exp().mul_scalar(FRAC_1_SQRT_2PI);
        let cdf = x.clone().mul_scalar(std::f64::consts::FRAC_1_SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5);
        let first = cdf + x.clone() * pdf.clone();
        self.elementwise(y, first, move || pdf * x.square().neg().add_scalar(2.0))
    }

    /// Swish `y = x sigmoid(β x)` (SiLU when `beta` is `None`, i.e. β = 1). `beta` is a tensor broadcastable to
    /// the value (e.g. `[1, features]` for a learnable β per feature); derivatives are in x, with s = sigmoid(β x):
    /// `σ' = s + β x s (1 − s)`, `σ'' = β s (1 − s) (2 + β x (1 − 2 s))`. Gradients reach a tracked β.
    pub fn swish(&self, beta: Option<&Tensor<D>>) -> Self {
        let x = self.value.clone();
        let bx = match beta {
            Some(b) => x.clone() * b.clone(),
            None => x.clone(),
        };
        let s = sigmoid(bx.clone());
        let y = x * s.clone();
        let ss = s.clone() * s.clone().neg().add_scalar(1.0);
        let first = s.clone() + bx.clone() * ss.clone();
        let beta = beta.cloned();
        self.elementwise(y, first, move || {
            let curvature = ss * (bx * s.mul_scalar(-2.0).add_scalar(1.0)).add_scalar(2.0);
            match beta {
                Some(b) => curvature * b,
                None => curvature,
            }
        })
    }

    /// The sum `a + b`: `ẏ = ȧ + ḃ`, `ÿ = ä + b̈`. A constant operand (`k = 0`) contributes no derivatives; two
    /// non-constant operands must have the same `k`. Second derivatives propagate when every non-constant
    /// operand carries them.
    #[allow(clippy::should_implement_trait)]
    pub fn add(&self, other: &Self) -> Self {
        let (k, second) = Self::joint(self, other);
        Self {
            value: self.value.clone() + other.value.clone(),
            tangents: (0..k).map(|i| sum_present([self.tangent(i), other.tangent(i)])).collect(),
            second: second.then(|| (0..k).map(|i| sum_present([self.second_at(i), other.second_at(i)])).collect()),
        }
    }

    /// The difference `a − b` (as [`Jet::add`] of `−b`).
    #[allow(clippy::should_implement_trait)]
    pub fn sub(&self, other: &Self) -> Self {
        self.add(&other.scale(-1.0))
    }

    /// The elementwise product `a b` (multiplicative filter networks, gates): `ẏ = a ḃ + ȧ b`,
    /// `ÿ = a b̈ + 2 ȧ ḃ + ä b`. Constants and second derivatives as in [`Jet::add`].
    #[allow(clippy::should_implement_trait)]
    pub fn mul(&self, other: &Self) -> Self {
        let (k, second) = Self::joint(self, other);
        let (a, b) = (&self.value, &other.value);
        let tangents = (0..k)
            .map(|i| {
                let a_db = other.tangent(i).map(|tb| a.clone() * tb);
                let da_b = self.tangent(i).map(|ta| ta * b.clone());
                sum_present([a_db, da_b])
            })
            .collect();
        let second = second.then(|| {
            (0..k)
                .map(|i| {
                    let cross = match (self.tangent(i), other.tangent(i)) {
                        (Some(ta), Some(tb)) => Some((ta * tb).mul_scalar(2.0)),
                        _ => None,
                    };
                    sum_present([
                        other.second_at(i).map(|sb| a.clone() * sb),
                        cross,
                        self.second_at(i).map(|sa| sa * b.clone()),
                    ])
                })
                .collect()
        });
        Self { value: a.clone() * b.clone(), tangents, second }
    }

    /// `c y` for a scalar `c` (value and all derivatives scaled).
    pub fn scale(&self, c: f64) -> Self {
        self.map_linear(|t| t.mul_scalar(c))
    }

    /// `y + c` for a constant tensor `c` broadcastable to the value: derivatives unchanged.
    pub fn add_constant(&self, c: &Tensor<D>) -> Self {
        Self { value: self.value.clone() + c.clone(), ..self.clone() }
    }

    /// `y ⊙ c` for a constant tensor `c` broadcastable to the value (a linear map of the jet).
    pub fn mul_constant(&self, c: &Tensor<D>) -> Self {
        self.map_linear(|t| t * c.clone())
    }

    /// Concatenation along `dim`; constant parts (`k = 0`) get zero derivatives. Non-constant parts must share
    /// `k`; second derivatives propagate when every non-constant part carries them.
    pub fn cat(parts: Vec<Self>, dim: usize) -> Self {
        assert!(!parts.is_empty(), "concatenation of no jets");
        let k = parts.iter().map(Self::k).max().unwrap_or(0);
        for p in &parts {
            assert!(p.k() == 0 || p.k() == k, "jets with different numbers of directions: {} and {k}", p.k());
        }
        let second = k > 0 && parts.iter().all(Self::second_ready);
        let value = Tensor::cat(parts.iter().map(|p| p.value.clone()).collect(), dim);
        // tangent (or second derivative) i of every part, zeros for the constants
        let gather = |i: usize, of_second: bool| {
            let pieces: Vec<Tensor<D>> = parts
                .iter()
                .map(|p| {
                    let t = if of_second { p.second_at(i) } else { p.tangent(i) };
                    t.unwrap_or_else(|| p.value.zeros_like())
                })
                .collect();
            Tensor::cat(pieces, dim)
        };
        let tangents = (0..k).map(|i| gather(i, false)).collect();
        let second = second.then(|| (0..k).map(|i| gather(i, true)).collect());
        Self { value, tangents, second }
    }

    /// `Σᵢ ÿᵢ`: for [`Jet::coordinates`] inputs, the Laplacian `Σᵢ ∂²y/∂xᵢ²`. Panics without second derivatives.
    pub fn laplacian(&self) -> Tensor<D> {
        let second = self.second.as_ref().expect("the Laplacian needs a jet with second derivatives");
        second.iter().cloned().reduce(|a, b| a + b).expect("the Laplacian needs at least one direction")
    }
}

impl Jet<2> {
    /// Points `x` `[n, d]` seeded along the `d` coordinate axes: tangent `i` is the unit vector `eᵢ` at every
    /// point (`[n, d]`), and with `with_second` the second derivatives start at zero, so downstream
    /// `tangents[i] = ∂y/∂xᵢ` and `second[i] = ∂²y/∂xᵢ²`.
    pub fn coordinates(x: Tensor<2>, with_second: bool) -> Self {
        let [n, d] = x.dims();
        let (device, dtype) = (x.device(), x.dtype());
        let tangents = (0..d)
            .map(|i| {
                let mut row = vec![0.0f64; d];
                row[i] = 1.0;
                Tensor::<2>::from_data(TensorData::new(row, [1, d]), (&device, dtype)).repeat_dim(0, n)
            })
            .collect();
        let jet = Self::seed(x, tangents);
        if with_second { jet.with_zero_second() } else { jet }
    }

    /// The Jacobian `[n, m, k]` of a value `[n, m]`: entry `(p, j, i)` is `ẏᵢ` of output `j` at row `p` (for
    /// [`Jet::coordinates`] inputs, `∂y_j/∂x_i`).
    pub fn jacobian(&self) -> Tensor<3> {
        assert!(self.k() > 0, "the Jacobian of a constant jet has no columns");
        Tensor::cat(self.tangents.iter().map(|t| t.clone().unsqueeze_dim::<3>(2)).collect(), 2)
    }
}

/// burn's dense layer on a jet over the last dimension: `y = x W + b` with the layer's weight `[d_in, d_out]`
/// (also for its column layout, whose value is stored transposed but read back as `[d_in, d_out]`) and optional
/// bias; `ẏ = ẋ W`, `ÿ = ẍ W`. See [`Jet::linear`].
pub fn linear_jet<const D: usize>(layer: &Linear, x: &Jet<D>) -> Jet<D> {
    let bias = layer.bias.as_ref().map(|b| b.val());
    x.linear(&layer.weight.val(), bias.as_ref())
}

impl Pointwise {
    /// The map without its bias, `W x` per pixel (`[b, c_in, ny, nx] → [b, c_out, ny, nx]`): the linear part that
    /// tangents go through. Same operations as [`Pointwise::forward`] before its bias.
    pub fn forward_without_bias(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, ny, nx] = x.dims();
        let [cout, _] = self.weight.dims();
        let y = self.weight.val().unsqueeze_dim::<3>(0).matmul(x.reshape([b, c, ny * nx]));
        y.reshape([b, cout, ny, nx])
    }

    /// Adds the bias to `[b, c_out, ny, nx]`.
    pub fn add_bias(&self, y: Tensor<4>) -> Tensor<4> {
        let [cout, _] = self.weight.dims();
        y + self.bias.val().reshape([1, cout, 1, 1])
    }

    /// The map on a jet: `y = W x + b`, `ẏ = W ẋ`, `ÿ = W ẍ`, value and derivatives in one stacked product.
    pub fn forward_jet(&self, x: &Jet<4>) -> Jet<4> {
        let mut y = x.map_linear_batched(|t| self.forward_without_bias(t));
        y.value = self.add_bias(y.value);
        y
    }
}

impl PeriodicConv {
    /// The convolution on a jet: `y = w ∗ x + b`, `ẏ = w ∗ ẋ`, `ÿ = w ∗ ẍ`, value and derivatives stacked along
    /// the batch through one convolution, the bias on the value only.
    pub fn forward_jet(&self, x: &Jet<4>) -> Jet<4> {
        let [cout, cin, ky, kx] = self.weight.dims();
        let mut y = x.map_linear_batched(|t| {
            if ky == 1 && kx == 1 {
                let [b, _, ny, nx] = t.dims();
                self.weight
                    .val()
                    .reshape([1, cout, cin])
                    .matmul(t.reshape([b, cin, ny * nx]))
                    .reshape([b, cout, ny, nx])
            } else {
                periodic_conv(t, self.weight.val(), None)
            }
        });
        if let Some(bias) = &self.bias {
            y.value = y.value + bias.val().reshape([1, cout, 1, 1]);
        }
        y
    }
}

impl SpectralConv {
    /// The convolution on a jet. It is linear in its input with no bias, so value, tangents and second
    /// derivatives go through [`SpectralConv::forward`] once, stacked along the batch.
    pub fn forward_jet(&self, x: &Jet<4>) -> Jet<4> {
        x.map_linear_batched(|t| self.forward(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fno::FnoConfig;
    use crate::init::Init;
    use burn::module::Param;
    use burn::tensor::activation::gelu as burn_gelu;
    use burn::tensor::{DType, Gradients};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().expect("values")
    }

    fn f64_init(seed: u64, device: &Device) -> Init {
        Init::new(seed, device).with_dtype(DType::F64)
    }

    fn affine_plain(x: Tensor<2>, w: &Tensor<2>, b: &Tensor<1>) -> Tensor<2> {
        x.matmul(w.clone()) + b.clone().unsqueeze::<2>()
    }

    /// Five points in [−1, 1]², row-major `[5, 2]`.
    const POINTS: [f64; 10] = [0.31, -0.72, -0.45, 0.18, 0.87, 0.55, -0.13, -0.94, 0.02, 0.04];

    #[derive(Clone, Copy, Debug)]
    enum Act {
        Tanh,
        Sine(f64),
        Gelu,
        Swish,
        /// Swish with a β per hidden unit.
        SwishLearned,
    }

    const ACTS: [Act; 5] = [Act::Tanh, Act::Sine(2.0), Act::Gelu, Act::Swish, Act::SwishLearned];

    /// A dense network with the activation between layers and a linear output.
    struct Mlp {
        weights: Vec<Tensor<2>>,
        biases: Vec<Tensor<1>>,
        /// `[1, width]` per hidden layer (used by `SwishLearned`).
        betas: Vec<Tensor<2>>,
        act: Act,
    }

    impl Mlp {
        /// Glorot-uniform weights, biases in ±0.5, β in [0.5, 2).
        fn new(sizes: &[usize], act: Act, init: &mut Init) -> Self {
            let (mut weights, mut biases, mut betas) = (vec![], vec![], vec![]);
            for w in sizes.windows(2) {
                let a = (6.0 / (w[0] + w[1]) as f64).sqrt();
                weights.push(init.uniform([w[0], w[1]], -a, a));
                biases.push(init.uniform([w[1]], -0.5, 0.5));
            }
            for &o in &sizes[1..sizes.len() - 1] {
                betas.push(init.uniform([1, o], 0.5, 2.0));
            }
            Self { weights, biases, betas, act }
        }

        /// The parameters as host vectors: weights and biases layer by layer, then the βs.
        fn host(&self) -> Vec<Vec<f64>> {
            let mut out = vec![];
            for (w, b) in self.weights.iter().zip(&self.biases) {
                out.push(values(w.clone()));
                out.push(values(b.clone()));
            }
            out.extend(self.betas.iter().map(|b| values(b.clone())));
            out
        }

        /// The network from host parameters (order of [`Mlp::host`]), as gradient-tracked leaves if `grad`.
        fn from_host(sizes: &[usize], act: Act, host: &[Vec<f64>], device: &Device, grad: bool) -> Self {
            let init = f64_init(0, device);
            let t2 = |v: &[f64], shape: [usize; 2]| {
                let t = init.tensor(v.to_vec(), shape);
                if grad { t.require_grad() } else { t }
            };
            let t1 = |v: &[f64], shape: [usize; 1]| {
                let t = init.tensor(v.to_vec(), shape);
                if grad { t.require_grad() } else { t }
            };
            let layers = sizes.len() - 1;
            let (mut weights, mut biases, mut betas) = (vec![], vec![], vec![]);
            for (l, w) in sizes.windows(2).enumerate() {
                weights.push(t2(&host[2 * l], [w[0], w[1]]));
                biases.push(t1(&host[2 * l + 1], [w[1]]));
            }
            for (l, &o) in sizes[1..sizes.len() - 1].iter().enumerate() {
                betas.push(t2(&host[2 * layers + l], [1, o]));
            }
            Self { weights, biases, betas, act }
        }

        /// Gradients in the order of [`Mlp::host`]; parameters outside the loss's graph get zeros.
        fn grads(&self, grads: &Gradients) -> Vec<Vec<f64>> {
            fn one<const D: usize>(t: &Tensor<D>, grads: &Gradients) -> Vec<f64> {
                t.grad(grads).map(values).unwrap_or_else(|| vec![0.0; t.shape().num_elements()])
            }
            let mut out = vec![];
            for (w, b) in self.weights.iter().zip(&self.biases) {
                out.push(one(w, grads));
                out.push(one(b, grads));
            }
            out.extend(self.betas.iter().map(|b| one(b, grads)));
            out
        }

        fn activate(&self, x: Tensor<2>, l: usize) -> Tensor<2> {
            match self.act {
                Act::Tanh => x.tanh(),
                Act::Sine(w) => x.mul_scalar(w).sin(),
                Act::Gelu => burn_gelu(x),
                Act::Swish => x.clone() * burn::tensor::activation::sigmoid(x),
                Act::SwishLearned => x.clone() * burn::tensor::activation::sigmoid(x * self.betas[l].clone()),
            }
        }

        fn activate_jet(&self, x: &Jet<2>, l: usize) -> Jet<2> {
            match self.act {
                Act::Tanh => x.tanh(),
                Act::Sine(w) => x.sine(w),
                Act::Gelu => x.gelu(),
                Act::Swish => x.swish(None),
                Act::SwishLearned => x.swish(Some(&self.betas[l])),
            }
        }

        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            let last = self.weights.len() - 1;
            let mut h = x;
            for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
                h = affine_plain(h, w, b);
                if l < last {
                    h = self.activate(h, l);
                }
            }
            h
        }

        fn jet(&self, x: &Jet<2>) -> Jet<2> {
            let last = self.weights.len() - 1;
            let mut h = x.clone();
            for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
                h = h.linear(w, Some(b));
                if l < last {
                    h = self.activate_jet(&h, l);
                }
            }
            h
        }
    }

    /// A SIREN (Sitzmann et al. 2020): `sin(ω₀ (x W + b))` layers and a linear output. First layer weights
    /// uniform in ±1/fan_in, later ones in ±√(6/fan_in)/ω₀, biases in ±1/√fan_in.
    struct Siren {
        layers: Vec<(Tensor<2>, Tensor<1>)>,
        omega: f64,
    }

    impl Siren {
        fn new(sizes: &[usize], omega: f64, init: &mut Init) -> Self {
            let layers = sizes
                .windows(2)
                .enumerate()
                .map(|(l, w)| {
                    let fan_in = w[0] as f64;
                    let a = if l == 0 { 1.0 / fan_in } else { (6.0 / fan_in).sqrt() / omega };
                    let c = 1.0 / fan_in.sqrt();
                    (init.uniform([w[0], w[1]], -a, a), init.uniform([w[1]], -c, c))
                })
                .collect();
            Self { layers, omega }
        }

        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            let last = self.layers.len() - 1;
            let mut h = x;
            for (l, (w, b)) in self.layers.iter().enumerate() {
                h = affine_plain(h, w, b);
                if l < last {
                    h = h.mul_scalar(self.omega).sin();
                }
            }
            h
        }

        fn jet(&self, x: &Jet<2>) -> Jet<2> {
            let last = self.layers.len() - 1;
            let mut h = x.clone();
            for (l, (w, b)) in self.layers.iter().enumerate() {
                h = h.linear(w, Some(b));
                if l < last {
                    h = h.sine(self.omega);
                }
            }
            h
        }
    }

    /// A multiplicative filter network with Fourier filters (FourierNet, Fathony et al. 2021):
    /// `z₁ = sin(x Ω₁ + φ₁)`, `z_{l+1} = (z_l W_l + b_l) ⊙ sin(x Ω_{l+1} + φ_{l+1})`, `y = z_L W + b`.
    struct Mfn {
        filters: Vec<(Tensor<2>, Tensor<1>)>,
        hidden: Vec<(Tensor<2>, Tensor<1>)>,
        out: (Tensor<2>, Tensor<1>),
    }

    impl Mfn {
        fn new(d_in: usize, width: usize, filters: usize, d_out: usize, init: &mut Init) -> Self {
            let pi = std::f64::consts::PI;
            let filters: Vec<_> = (0..filters)
                .map(|_| (init.uniform([d_in, width], -1.5, 1.5), init.uniform([width], -pi, pi)))
                .collect();
            let a = (6.0 / width as f64).sqrt();
            let c = 1.0 / (width as f64).sqrt();
            let hidden = (1..filters.len())
                .map(|_| (init.uniform([width, width], -a, a), init.uniform([width], -c, c)))
                .collect();
            let out = (init.uniform([width, d_out], -a, a), init.uniform([d_out], -c, c));
            Self { filters, hidden, out }
        }

        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            let filter = |l: usize| {
                let (w, b) = &self.filters[l];
                affine_plain(x.clone(), w, b).sin()
            };
            let mut z = filter(0);
            for (l, (w, b)) in self.hidden.iter().enumerate() {
                z = affine_plain(z, w, b) * filter(l + 1);
            }
            affine_plain(z, &self.out.0, &self.out.1)
        }

        fn jet(&self, x: &Jet<2>) -> Jet<2> {
            let filter = |l: usize| {
                let (w, b) = &self.filters[l];
                x.linear(w, Some(b)).sine(1.0)
            };
            let mut z = filter(0);
            for (l, (w, b)) in self.hidden.iter().enumerate() {
                z = z.linear(w, Some(b)).mul(&filter(l + 1));
            }
            z.linear(&self.out.0, Some(&self.out.1))
        }
    }

    /// Checks the jet's value against the plain forward pass and its derivatives of `order` 1 (tangents, central
    /// differences with h = 1e-5, tolerance 1e-7 · max(1, |FD|)) or 2 (pure second derivatives, central second
    /// differences with h = 1e-4, tolerance 1e-5 · max(1, |FD|)) along each coordinate axis, at every point and
    /// output, in f64.
    fn check_axes(
        name: &str,
        order: usize,
        points: &[f64],
        d: usize,
        plain: &dyn Fn(Tensor<2>) -> Tensor<2>,
        jet: &dyn Fn(&Jet<2>) -> Jet<2>,
    ) {
        let device = Device::flex();
        let init = f64_init(0, &device);
        let n = points.len() / d;
        let x = init.tensor(points.to_vec(), [n, d]);
        let out = jet(&Jet::coordinates(x.clone(), order == 2));
        let m = out.value.dims()[1];
        let f0 = values(plain(x));
        for (e, (a, b)) in values(out.value.clone()).iter().zip(&f0).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{name}: value at point {}, output {}: jet {a} vs forward {b}",
                e / m,
                e % m
            );
        }
        let shifted = |i: usize, h: f64| {
            let mut p = points.to_vec();
            p.iter_mut().skip(i).step_by(d).for_each(|v| *v += h);
            values(plain(init.tensor(p, [n, d])))
        };
        let (h, tol) = if order == 1 { (1e-5, 1e-7) } else { (1e-4, 1e-5) };
        for i in 0..d {
            let (fp, fm) = (shifted(i, h), shifted(i, -h));
            let got = if order == 1 {
                values(out.tangents[i].clone())
            } else {
                values(out.second.as_ref().expect("second derivatives")[i].clone())
            };
            for (e, g) in got.iter().enumerate() {
                let fd = if order == 1 { (fp[e] - fm[e]) / (2.0 * h) } else { (fp[e] - 2.0 * f0[e] + fm[e]) / (h * h) };
                let p = e / m;
                assert!(
                    (g - fd).abs() <= tol * fd.abs().max(1.0),
                    "{name}: order-{order} derivative along x{i} at point {p} {:?}, output {}: jet {g} vs FD {fd}",
                    &points[p * d..(p + 1) * d],
                    e % m
                );
            }
        }
    }

    #[test]
    fn first_derivatives_of_mlps_match_central_differences() {
        for act in ACTS {
            let mlp = Mlp::new(&[2, 16, 16, 1], act, &mut f64_init(1, &Device::flex()));
            check_axes(&format!("{act:?} MLP"), 1, &POINTS, 2, &|x| mlp.forward(x), &|j| mlp.jet(j));
        }
    }

    #[test]
    fn second_derivatives_of_mlps_match_central_second_differences() {
        for act in ACTS {
            let mlp = Mlp::new(&[2, 16, 16, 1], act, &mut f64_init(2, &Device::flex()));
            check_axes(&format!("{act:?} MLP"), 2, &POINTS, 2, &|x| mlp.forward(x), &|j| mlp.jet(j));
        }
    }

    #[test]
    fn siren_laplacian_matches_a_five_point_stencil() {
        // ω₀ = 30 makes the field oscillate with wavenumbers of tens, so the Laplacian is of order 10²–10³. The
        // 5-point stencil with h = 1e-4 has truncation error h²/12 (∂⁴ₓ + ∂⁴ᵧ) f ≈ 1e-9 k⁴ (relative ≈ 1e-9 k² <
        // 1e-5 for k < 100) and rounding error ≈ 8 ε |f| / h² ≈ 1e-7; tolerance 1e-4 of the largest |Δf|.
        let device = Device::flex();
        let mut init = f64_init(3, &device);
        let siren = Siren::new(&[2, 32, 32, 1], 30.0, &mut init);
        let n = POINTS.len() / 2;
        let x = init.tensor(POINTS.to_vec(), [n, 2]);
        let lap = values(siren.jet(&Jet::coordinates(x, true)).laplacian());
        let h = 1e-4;
        let at = |dx: f64, dy: f64| {
            let mut p = POINTS.to_vec();
            for c in p.chunks_mut(2) {
                c[0] += dx;
                c[1] += dy;
            }
            values(siren.forward(init.tensor(p, [n, 2])))
        };
        let (c, xp, xm, yp, ym) = (at(0.0, 0.0), at(h, 0.0), at(-h, 0.0), at(0.0, h), at(0.0, -h));
        let fd: Vec<f64> = (0..n).map(|p| (xp[p] + xm[p] + yp[p] + ym[p] - 4.0 * c[p]) / (h * h)).collect();
        let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 10.0, "a SIREN with ω₀ = 30 should have a large Laplacian, got at most {scale}");
        for (p, (a, b)) in lap.iter().zip(&fd).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "SIREN Laplacian at point {p}: jet {a} vs 5-point FD {b}");
        }
    }

    #[test]
    fn multiplicative_filter_network_derivatives_match_finite_differences() {
        let mfn = Mfn::new(2, 16, 3, 2, &mut f64_init(4, &Device::flex()));
        for order in [1, 2] {
            check_axes("Fourier MFN", order, &POINTS, 2, &|x| mfn.forward(x), &|j| mfn.jet(j));
        }
    }

    #[test]
    fn linear_jet_agrees_with_burn_linear() {
        let device = Device::flex();
        let mut init = f64_init(8, &device);
        let w = init.uniform([3, 4], -1.0, 1.0);
        let b = init.uniform([4], -1.0, 1.0);
        let layer = Linear { weight: Param::from_tensor(w.clone()), bias: Some(Param::from_tensor(b)) };
        let x = init.uniform([5, 3], -1.0, 1.0);
        let v = init.uniform([5, 3], -1.0, 1.0);
        let out = linear_jet(&layer, &Jet::seed(x.clone(), vec![v.clone()]).with_zero_second());
        let close = |a: Vec<f64>, b: Vec<f64>, what: &str| {
            for (e, (p, q)) in a.iter().zip(&b).enumerate() {
                assert!((p - q).abs() < 1e-13, "{what} entry {e}: {p} vs {q}");
            }
        };
        close(values(out.value.clone()), values(layer.forward(x)), "value");
        close(values(out.tangents[0].clone()), values(v.matmul(w)), "tangent");
        close(values(out.second.as_ref().expect("second")[0].clone()), vec![0.0; 20], "second derivative");
    }

    #[test]
    fn fno_jacobian_vector_products_match_central_differences() {
        // first order: (F(x + εv) − F(x − εv)) / 2ε with ε = 1e-6, tolerance 1e-7 · max(1, |FD|);
        // second order: (F(x + εv) − 2F(x) + F(x − εv)) / ε² with ε = 1e-4, tolerance 1e-5 · max(1, |FD|)
        let device = Device::flex();
        for (ny, nx) in [(1, 12), (6, 8)] {
            let config = FnoConfig::new(2, 2, 6, 3, 2, 2, nx, ny).with_projection(8);
            let mut init = f64_init(21, &device);
            let model = config.init(&mut init);
            let x = init.uniform([2, 2, ny, nx], -1.0, 1.0);
            let v = vec![init.uniform([2, 2, ny, nx], -1.0, 1.0), init.uniform([2, 2, ny, nx], -1.0, 1.0)];
            let out = model.forward_jet(&Jet::seed(x.clone(), v.clone()).with_zero_second());
            let f = |e: f64, vi: &Tensor<4>| values(model.forward(x.clone() + vi.clone().mul_scalar(e)));
            let f0 = values(model.forward(x.clone()));
            for (e, (a, b)) in values(out.value.clone()).iter().zip(&f0).enumerate() {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "FNO {ny}x{nx}: value {e}: jet {a} vs forward {b}");
            }
            for (i, vi) in v.iter().enumerate() {
                let (eps, eps2) = (1e-6, 1e-4);
                let (p1, m1) = (f(eps, vi), f(-eps, vi));
                let (p2, m2) = (f(eps2, vi), f(-eps2, vi));
                let t = values(out.tangents[i].clone());
                let s = values(out.second.as_ref().expect("second derivatives")[i].clone());
                for (e, (ti, si)) in t.iter().zip(&s).enumerate() {
                    let fd1 = (p1[e] - m1[e]) / (2.0 * eps);
                    let fd2 = (p2[e] - 2.0 * f0[e] + m2[e]) / (eps2 * eps2);
                    assert!(
                        (ti - fd1).abs() <= 1e-7 * fd1.abs().max(1.0),
                        "FNO {ny}x{nx}: JVP along direction {i}, entry {e}: jet {ti} vs FD {fd1}"
                    );
                    assert!(
                        (si - fd2).abs() <= 1e-5 * fd2.abs().max(1.0),
                        "FNO {ny}x{nx}: second derivative along direction {i}, entry {e}: jet {si} vs FD {fd2}"
                    );
                }
            }
        }
    }

    #[test]
    fn weight_gradients_through_tangents_match_central_differences() {
        // loss = ‖J v‖² + ‖d²f/ds²‖² along a random direction v at five points; AD through the jet against
        // central differences of the same loss in the weights (ε = 1e-6, tolerance 1e-6 · max(1, |FD|))
        let (plain, ad) = (Device::flex(), Device::flex().autodiff());
        let sizes = [2, 8, 8, 1];
        let mut data = f64_init(9, &plain);
        let xs = values(data.uniform([5, 2], -1.0, 1.0));
        let vs = values(data.uniform([5, 2], -1.0, 1.0));
        for act in [Act::Tanh, Act::Sine(2.0), Act::Gelu, Act::SwishLearned] {
            let host = Mlp::new(&sizes, act, &mut f64_init(5, &plain)).host();
            let loss = |device: &Device, host: &[Vec<f64>], grad: bool| -> (Tensor<1>, Mlp) {
                let mlp = Mlp::from_host(&sizes, act, host, device, grad);
                let init = f64_init(0, device);
                let x = init.tensor(xs.clone(), [5, 2]);
                let v = init.tensor(vs.clone(), [5, 2]);
                let out = mlp.jet(&Jet::seed(x, vec![v]).with_zero_second());
                let s = out.second.as_ref().expect("second derivatives")[0].clone();
                (out.tangents[0].clone().square().sum() + s.square().sum(), mlp)
            };
            let (l, mlp) = loss(&ad, &host, true);
            let grads = l.backward();
            let g = mlp.grads(&grads);
            // (tensor, entry) in the order of Mlp::host: w0 [2, 8], b0, w1 [8, 8], b1, w2 [8, 1], b2 (no
            // influence on derivatives: gradient 0), then β0, β1
            let mut entries = vec![(0, 0), (0, 11), (1, 3), (2, 10), (2, 63), (3, 5), (4, 2), (5, 0)];
            if matches!(act, Act::SwishLearned) {
                entries.extend([(6, 1), (7, 4)]);
            }
            let eps = 1e-6;
            for (tensor, entry) in entries {
                let at = |d: f64| {
                    let mut h = host.clone();
                    h[tensor][entry] += d;
                    values(loss(&plain, &h, false).0)[0]
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * eps);
                let got = g[tensor][entry];
                assert!(
                    (got - fd).abs() <= 1e-6 * fd.abs().max(1.0),
                    "{act:?}: gradient of parameter tensor {tensor}, entry {entry}: AD {got} vs FD {fd}"
                );
            }
        }
    }
}
