//! DyMixOp: a local–global-mixing neural operator (arXiv:2508.13490). One step maps a window of `frames` input
//! frames (plus the grid coordinates) to the next frame:
//!
//! ```text
//! lift 𝒯: C_in → 2C,  reduce 𝒫: 2C → C,  DyIA stack,  𝒫⁻¹: C → 2C,  𝒯⁻¹: 2C → C_out   (pointwise, no activation)
//! LGM(c) = L(c) + FD(c) + A( G(c) ⊙ L'(c) )
//! DyIA:    F_i = GELU(LGM_i(c_{i−1})),  c_i = c_{i−1} + σ(λ τ) F_i,  out = c_0 + Σ_i a_i F_i + b
//! ```
//!
//! G is a spectral convolution, L and L' periodic convolutions with bias (`kernel` wide, pointwise by default),
//! FD a learned finite difference (a 3-point or 3×3 periodic stencil without bias whose taps sum to zero, so it
//! annihilates constants), A a pointwise map C → 2C → C. λ is one learned scalar initialised to C, and τ is the
//! structure-change coefficient: the mean of 1 − cos∠(u_t, u_{t+1}) over consecutive input frames of each
//! sample, so the residual gate opens where the dynamics change fast. With a single input frame τ is the
//! data-derived constant `tau` the trainer measures on the training split. `docs/design-decisions.md` explains
//! how this differs from the public reference code, whose gate is σ(λ) (reproduced by `reference_gate`).

use crate::jet::Jet;
use crate::kernels::gelu;
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::fno::{coordinates, with_coordinates};
use crate::init::Init;
use crate::layers::{PeriodicConv, Pointwise, periodic_conv};
use crate::spectral::{SpectralConv, SpectralConvConfig};

/// Configuration of [`DyMixOp`].
#[derive(Config, Debug)]
pub struct DyMixOpConfig {
    /// Channels of one frame (e.g. 2 for the velocity of 2D Burgers).
    pub frame_channels: usize,
    /// Input frames stacked along the channel axis (oldest first).
    pub frames: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Hidden channels C.
    pub hidden: usize,
    /// LGM layers in the DyIA stack.
    pub layers: usize,
    /// Fourier modes along x.
    pub modes_x: usize,
    /// Fourier modes along y for each sign (ignored in 1D).
    pub modes_y: usize,
    /// Grid points along x.
    pub nx: usize,
    /// Grid points along y (1 for 1D).
    pub ny: usize,
    /// Kernel width of the local transforms L and L' (odd; 1 is pointwise).
    #[config(default = 1)]
    pub kernel: usize,
    /// The structure-change coefficient used when a single frame is given (measured on the training data).
    #[config(default = 0.1)]
    pub tau: f64,
    /// Use the reference code's gate σ(λ) instead of σ(λ τ).
    #[config(default = false)]
    pub reference_gate: bool,
}

impl DyMixOpConfig {
    /// Spatial dimensions: 1 when `ny = 1`, else 2.
    pub fn dims(&self) -> usize {
        if self.ny > 1 { 2 } else { 1 }
    }

    fn kernel_shape(&self, k: usize) -> [usize; 2] {
        if self.ny > 1 { [k, k] } else { [1, k] }
    }

    fn spectral(&self) -> SpectralConvConfig {
        SpectralConvConfig::new(self.hidden, self.hidden, self.modes_x, self.modes_y, self.nx, self.ny)
    }

    /// Initialises the network from `init`'s stream.
    pub fn init(&self, init: &mut Init) -> DyMixOp {
        let c = self.hidden;
        let c_in = self.frame_channels * self.frames + self.dims();
        let local = self.kernel_shape(self.kernel);
        let layers = (0..self.layers)
            .map(|_| Lgm {
                local: PeriodicConv::new(c, c, local, true, init),
                fd: PeriodicConv::new(c, c, self.kernel_shape(3), false, init),
                global: self.spectral().init(init),
                mix: PeriodicConv::new(c, c, local, true, init),
                corrector_up: Pointwise::new(c, 2 * c, init),
                corrector_down: Pointwise::new(2 * c, c, init),
            })
            .collect();
        let a = 1.0 / (self.layers as f64).sqrt();
        DyMixOp {
            lift: Pointwise::new(c_in, 2 * c, init),
            reduce: Pointwise::new(2 * c, c, init),
            layers,
            lambda: Param::from_tensor(init.constant([1], c as f64)),
            aggregate: Param::from_tensor(init.uniform([self.layers], -a, a)),
            aggregate_bias: Param::from_tensor(init.uniform([1], -a, a)),
            expand: Pointwise::new(c, 2 * c, init),
            project: Pointwise::new(2 * c, self.channels_out, init),
            grid: coordinates(self.nx, self.ny, init),
            frames: self.frames,
            frame_channels: self.frame_channels,
            tau: self.tau,
            reference_gate: self.reference_gate,
        }
    }

    /// Number of trainable values.
    pub fn parameters(&self) -> usize {
        let c = self.hidden;
        let c_in = self.frame_channels * self.frames + self.dims();
        let pw = |i: usize, o: usize| i * o + o;
        let taps = |k: usize| self.kernel_shape(k).iter().product::<usize>();
        let lgm = 2 * (c * c * taps(self.kernel) + c)
            + c * c * taps(3)
            + self.spectral().parameters()
            + pw(c, 2 * c)
            + pw(2 * c, c);
        pw(c_in, 2 * c)
            + pw(2 * c, c)
            + self.layers * lgm
            + 1
            + self.layers
            + 1
            + pw(c, 2 * c)
            + pw(2 * c, self.channels_out)
    }
}

/// One local–global-mixing layer.
#[derive(Module, Debug)]
pub struct Lgm {
    local: PeriodicConv,
    fd: PeriodicConv,
    global: SpectralConv,
    mix: PeriodicConv,
    corrector_up: Pointwise,
    corrector_down: Pointwise,
}

impl Lgm {
    /// The learned finite difference: the stencil minus its tap sum at the centre, so every output stencil
    /// sums to zero.
    fn finite_difference(&self, c: Tensor<4>) -> Tensor<4> {
        periodic_conv(c, self.finite_difference_stencil(), None)
    }

    /// The zero-sum stencil of [`Lgm::finite_difference`].
    fn finite_difference_stencil(&self) -> Tensor<4> {
        let w = self.fd.weight.val();
        let [co, ci, ky, kx] = w.dims();
        let total = w.clone().sum_dim(2).sum_dim(3); // [co, ci, 1, 1]
        let mut centre = vec![0.0; ky * kx];
        centre[(ky / 2) * kx + kx / 2] = 1.0;
        let mask = Tensor::<1>::from_data(burn::tensor::TensorData::new(centre, [ky * kx]), (&w.device(), w.dtype()))
            .reshape([1, 1, ky, kx]);
        w - total.expand([co, ci, ky, kx]) * mask
    }

    /// Applies the layer.
    pub fn forward(&self, c: Tensor<4>) -> Tensor<4> {
        let mixed = self.global.forward(c.clone()) * self.mix.forward(c.clone());
        let corrected = self.corrector_down.forward(self.corrector_up.forward(mixed));
        self.local.forward(c.clone()) + self.finite_difference(c) + corrected
    }

    /// The layer on a jet: the same operations as [`Lgm::forward`], the product `G(c) ⊙ L'(c)` by the product
    /// rule, every linear map applied once to the value and the derivatives stacked along the batch.
    pub fn forward_jet(&self, c: &Jet<4>) -> Jet<4> {
        let mixed = self.global.forward_jet(c).mul(&self.mix.forward_jet(c));
        let corrected = self.corrector_down.forward_jet(&self.corrector_up.forward_jet(&mixed));
        let stencil = self.finite_difference_stencil();
        let fd = c.map_linear_batched(|t| periodic_conv(t, stencil, None));
        self.local.forward_jet(c).add(&fd).add(&corrected)
    }
}

/// DyMixOp: `[batch, frames · frame_channels, ny, nx] → [batch, channels_out, ny, nx]`.
#[derive(Module, Debug)]
pub struct DyMixOp {
    lift: Pointwise,
    reduce: Pointwise,
    layers: Vec<Lgm>,
    /// The gate's scale λ.
    pub lambda: Param<Tensor<1>>,
    /// Aggregation weights over the layer outputs and their bias.
    aggregate: Param<Tensor<1>>,
    aggregate_bias: Param<Tensor<1>>,
    expand: Pointwise,
    project: Pointwise,
    #[module(skip)]
    grid: Tensor<4>,
    #[module(skip)]
    frames: usize,
    #[module(skip)]
    frame_channels: usize,
    #[module(skip)]
    tau: f64,
    #[module(skip)]
    reference_gate: bool,
}

impl DyMixOp {
    /// The structure-change coefficient of each sample: the mean over consecutive input frames of
    /// 1 − cos∠(u_t, u_{t+1}) (`[batch]`, no gradient). With one frame, the configured constant.
    pub fn structure_change(&self, x: &Tensor<4>) -> Tensor<1> {
        let [b, _, ny, nx] = x.dims();
        if self.frames < 2 {
            return Tensor::<1>::ones([b], &x.device()).mul_scalar(self.tau).cast(x.dtype());
        }
        let flat = x.clone().detach().reshape([b, self.frames, self.frame_channels * ny * nx]);
        let prev = flat.clone().narrow(1, 0, self.frames - 1);
        let next = flat.narrow(1, 1, self.frames - 1);
        let dot = (prev.clone() * next.clone()).sum_dim(2);
        let norms = (prev.powf_scalar(2.0).sum_dim(2) * next.powf_scalar(2.0).sum_dim(2)).sqrt();
        let cos = dot / norms.add_scalar(1e-12);
        cos.neg().add_scalar(1.0).mean_dim(1).reshape([b])
    }

    /// Applies one step.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, ..] = x.dims();
        let gate = if self.reference_gate {
            sigmoid(self.lambda.val()).reshape([1, 1, 1, 1])
        } else {
            let tau = self.structure_change(&x);
            sigmoid(self.lambda.val().reshape([1]) * tau).reshape([b, 1, 1, 1])
        };
        let c0 = self.reduce.forward(self.lift.forward(with_coordinates(x, Some(&self.grid))));
        let weights = self.aggregate.val();
        let mut c = c0.clone();
        let mut out = c0 + self.aggregate_bias.val().reshape([1, 1, 1, 1]);
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let f = gelu(layer.forward(c.clone()));
            out = out + f.clone() * weights.clone().narrow(0, i, 1).reshape([1, 1, 1, 1]);
            if i < last {
                c = c + f * gate.clone();
            }
        }
        self.project.forward(self.expand.forward(out))
    }

    /// Forward-mode derivatives of [`DyMixOp::forward`] with respect to its input (tangents `vᵢ`, and second
    /// derivatives along them when the input jet carries them): the same operations, layer by layer. The gate
    /// σ(λτ) is a constant of the step here, as in training, where τ is computed from detached frames: with one
    /// input frame (or the reference gate) it is exact; with several frames the tangents leave out the change of
    /// τ with the frames.
    pub fn forward_jet(&self, x: &Jet<4>) -> Jet<4> {
        let [b, ..] = x.value.dims();
        let gate = if self.reference_gate {
            sigmoid(self.lambda.val()).reshape([1, 1, 1, 1])
        } else {
            let tau = self.structure_change(&x.value);
            sigmoid(self.lambda.val().reshape([1]) * tau).reshape([b, 1, 1, 1])
        };
        let grid = Jet::constant(self.grid.clone().repeat_dim(0, b));
        let c0 = self.reduce.forward_jet(&self.lift.forward_jet(&Jet::cat(vec![x.clone(), grid], 1)));
        let weights = self.aggregate.val();
        let mut c = c0.clone();
        let mut out = c0.add_constant(&self.aggregate_bias.val().reshape([1, 1, 1, 1]));
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let f = layer.forward_jet(&c).gelu();
            out = out.add(&f.mul_constant(&weights.clone().narrow(0, i, 1).reshape([1, 1, 1, 1])));
            if i < last {
                c = c.add(&f.mul_constant(&gate));
            }
        }
        self.project.forward_jet(&self.expand.forward_jet(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::DType;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().expect("values")
    }

    #[test]
    fn parameter_count_matches_the_module() {
        for ny in [1, 8] {
            let config = DyMixOpConfig::new(2, 3, 2, 6, 2, 3, 2, 8, ny).with_kernel(3);
            let model = config.init(&mut Init::new(1, &Device::flex()));
            assert_eq!(model.num_params(), config.parameters(), "ny = {ny}");
        }
    }

    #[test]
    fn learned_finite_difference_annihilates_constants() {
        let device = Device::flex();
        let config = DyMixOpConfig::new(1, 2, 1, 4, 1, 2, 2, 8, 6);
        let model = config.init(&mut Init::new(5, &device).with_dtype(DType::F64));
        let c = Tensor::<4>::ones([2, 4, 6, 8], (&device, DType::F64)).mul_scalar(3.5);
        let d = values(model.layers[0].finite_difference(c));
        assert!(d.iter().all(|v| v.abs() < 1e-12), "max {}", d.iter().fold(0.0f64, |m, v| m.max(v.abs())));
    }

    #[test]
    fn structure_change_is_zero_for_repeated_frames_and_one_for_orthogonal_ones() {
        let device = Device::flex();
        let config = DyMixOpConfig::new(1, 2, 1, 4, 1, 2, 1, 4, 1);
        let model = config.init(&mut Init::new(5, &device).with_dtype(DType::F64));
        let init = Init::new(0, &device).with_dtype(DType::F64);
        // sample 0: the same frame twice; sample 1: orthogonal frames
        let x = init
            .tensor(vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [2, 2, 1, 4]);
        let tau = values(model.structure_change(&x));
        assert!(tau[0].abs() < 1e-12 && (tau[1] - 1.0).abs() < 1e-12, "{tau:?}");
    }

    #[test]
    fn gradients_match_central_differences_in_f64() {
        // loss = Σ g ⊙ model(x); perturb a few entries of several parameter tensors
        for ny in [1, 6] {
            let device = Device::flex().autodiff();
            let config = DyMixOpConfig::new(1, 2, 1, 3, 2, 2, 2, 8, ny).with_kernel(3);
            let mut init = Init::new(11, &device).with_dtype(DType::F64);
            let model = config.init(&mut init);
            let x = init.uniform([2, 2, ny, 8], -1.0, 1.0);
            let g = init.uniform([2, 1, ny, 8], -1.0, 1.0);
            let loss = |m: &DyMixOp| (m.forward(x.clone()) * g.clone()).sum();
            let grads = loss(&model).backward();
            // flatten parameters and gradients in visiting order
            let params = crate::flat::flatten(&model);
            let grad = crate::flat::flatten_grads(&model, &grads);
            let eps = 1e-6;
            let n = params.len();
            for e in [0, n / 7, n / 3, n / 2, 2 * n / 3, n - 3, n - 1] {
                let at = |d: f64| {
                    let mut p = params.clone();
                    p[e] += d;
                    values(loss(&crate::flat::unflatten(model.clone(), &p)))[0]
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * eps);
                assert!(
                    (fd - grad[e]).abs() < 1e-7 * fd.abs().max(1.0),
                    "ny {ny}, entry {e}/{n}: AD {} vs FD {fd}",
                    grad[e]
                );
            }
        }
    }

    /// The Jacobian–vector products of the jet against the full Jacobian of a tiny model assembled row by row by
    /// reverse mode (an independent oracle), and first and second derivatives against central differences.
    #[test]
    fn jets_match_the_reverse_mode_jacobian_and_finite_differences() {
        // (frames, ny, reference gate): one frame (τ constant), and two frames with the reference gate σ(λ)
        for (frames, ny, reference) in [(1, 1, false), (2, 4, true)] {
            let nx = 6;
            let case = format!("frames {frames}, ny {ny}");
            let ad = Device::flex().autodiff();
            let config = DyMixOpConfig::new(1, frames, 1, 3, 2, 2, 1, nx, ny)
                .with_kernel(3)
                .with_tau(0.3)
                .with_reference_gate(reference);
            // the same weights on the autodiff and the plain device (Init streams do not depend on the device)
            let model = config.init(&mut Init::new(17, &ad).with_dtype(DType::F64));
            let plain = config.init(&mut Init::new(17, &Device::flex()).with_dtype(DType::F64));
            let n_in = frames * ny * nx;
            let n_out = ny * nx;
            let mut draw = Init::new(18, &Device::flex()).with_dtype(DType::F64);
            let x0 = values(draw.uniform([1, frames, ny, nx], -1.0, 1.0));
            let v = values(draw.uniform([1, frames, ny, nx], -1.0, 1.0));
            let data = Init::new(0, &ad).with_dtype(DType::F64);
            // rows of J by reverse mode
            let mut jac = vec![0.0; n_out * n_in];
            for r in 0..n_out {
                let x = data.tensor(x0.clone(), [1, frames, ny, nx]).require_grad();
                let mut e = vec![0.0; n_out];
                e[r] = 1.0;
                let y = (model.forward(x.clone()) * data.tensor(e, [1, 1, ny, nx])).sum();
                let g = values(x.grad(&y.backward()).expect("input gradient"));
                jac[r * n_in..(r + 1) * n_in].copy_from_slice(&g);
            }
            let pdata = Init::new(0, &Device::flex()).with_dtype(DType::F64);
            let x = pdata.tensor(x0.clone(), [1, frames, ny, nx]);
            let vt = pdata.tensor(v.clone(), [1, frames, ny, nx]);
            let out = plain.forward_jet(&Jet::seed(x.clone(), vec![vt.clone()]).with_zero_second());
            let jv = values(out.tangents[0].clone());
            let f0 = values(plain.forward(x.clone()));
            for (e, (a, b)) in values(out.value.clone()).iter().zip(&f0).enumerate() {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{case}: value {e}: jet {a} vs forward {b}");
            }
            let f = |eps: f64| values(plain.forward(x.clone() + vt.clone().mul_scalar(eps)));
            let (p2, m2) = (f(1e-4), f(-1e-4));
            let second = values(out.second.as_ref().expect("second derivatives")[0].clone());
            for r in 0..n_out {
                let exact: f64 = (0..n_in).map(|c| jac[r * n_in + c] * v[c]).sum();
                assert!(
                    (jv[r] - exact).abs() <= 1e-10 * exact.abs().max(1.0),
                    "{case}: (J v)[{r}]: jet {} vs reverse-mode Jacobian {exact}",
                    jv[r]
                );
                let fd2 = (p2[r] - 2.0 * f0[r] + m2[r]) / 1e-8;
                assert!(
                    (second[r] - fd2).abs() <= 1e-5 * fd2.abs().max(1.0),
                    "{case}: second derivative [{r}]: jet {} vs FD {fd2}",
                    second[r]
                );
            }
        }
    }
}
