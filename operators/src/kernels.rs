//! Hand-written CPU kernels for the elementwise work that dominates small operators.
//!
//! The exact GELU, `x Φ(x)`, costs a scalar `erff` (and an `expf` in the backward pass) per element when it goes
//! through the generic backend, on one thread. [`gelu`] computes the same function with a branch-free erf that the
//! compiler vectorises (AVX2 + FMA when the CPU has them, chosen at run time), on all rayon threads, and registers
//! its own backward step with burn's autodiff. It applies to `float32` tensors on the Flex backend, with or without
//! autodiff; any other tensor (other dtypes, GPU backends) takes burn's own `gelu`, so models stay backend-generic.
//!
//! The erf is Abramowitz and Stegun's formula 7.1.26 (absolute error below 1.5·10⁻⁷, about one `float32` ulp at
//! 1), whose exponential is shared with the Gaussian density of the derivative. Results do not depend on the number of
//! threads or on the instruction set: every element is computed by the same sequence of IEEE operations (no fused
//! multiply-adds are requested), so runs stay bitwise reproducible across machines of the same architecture.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation;
use rayon::prelude::*;

/// Elements per parallel task: large enough to amortise scheduling, small enough to split a layer's activations.
const CHUNK: usize = 1 << 15;

/// The exact GELU, `x Φ(x)` with Φ the standard normal distribution function, fast on the CPU backend.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() != DType::F32 {
        return activation::gelu(x);
    }
    if let Ok(t) = x.clone().try_into_primitive::<Autodiff<Flex>>() {
        return Tensor::from_primitive::<Autodiff<Flex>>(gelu_autodiff(t));
    }
    if let Ok(t) = x.clone().try_into_primitive::<Flex>() {
        return Tensor::from_primitive::<Flex>(gelu_forward(&t));
    }
    activation::gelu(x)
}

/// The backward step: the state is the input.
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |g| gelu_backward(&x, &g));
    }
}

type AutodiffFlexTensor = <Autodiff<Flex> as burn::backend::BackendTypes>::FloatTensorPrimitive;

fn gelu_autodiff(t: AutodiffFlexTensor) -> AutodiffFlexTensor {
    let node = t.node();
    let input = t.primitive().clone();
    match GeluBackward.prepare::<NoCheckpointing>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let out = gelu_forward(&input);
            prep.finish(input, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(gelu_forward(&input)),
    }
}

fn gelu_forward(x: &FlexTensor) -> FlexTensor {
    let x = x.to_contiguous();
    let mut out = FlexTensor::empty(x.layout().shape().clone(), DType::F32);
    let src = contiguous_f32(&x);
    let dst: &mut [f32] = out.storage_mut();
    dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| gelu_slice(s, d));
    out
}

fn gelu_backward(x: &FlexTensor, g: &FlexTensor) -> FlexTensor {
    let x = x.to_contiguous();
    let g = g.to_contiguous();
    let mut out = FlexTensor::empty(x.layout().shape().clone(), DType::F32);
    let (xs, gs) = (contiguous_f32(&x), contiguous_f32(&g));
    assert_eq!(xs.len(), gs.len(), "GELU gradient shape differs from its input");
    let dst: &mut [f32] = out.storage_mut();
    dst.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .zip(gs.par_chunks(CHUNK))
        .for_each(|((d, x), g)| gelu_grad_slice(x, g, d));
    out
}

/// The elements of a contiguous `float32` tensor, in order.
fn contiguous_f32(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous float32 tensor")
}

// --- the elementwise arithmetic ------------------------------------------------------------------------------------

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// e^y for y ≤ 0, flushed to zero below e^−87 (no subnormal results, which would slow later arithmetic): range
/// reduction y = n ln 2 + r with |r| ≤ ln 2 / 2, then a degree-7 Taylor polynomial (relative error below 6·10⁻⁹
/// before rounding) scaled by 2ⁿ built from its exponent bits.
#[inline(always)]
fn exp_nonpositive(y: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // adding 1.5·2²³ rounds to the nearest integer in the default rounding mode
    const ROUND: f32 = 12_582_912.0;
    let tiny = y < -87.0;
    let y = y.max(-87.0);
    let t = y * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // the low mantissa bits of t hold n (two's complement relative to ROUND): 2ⁿ without a float → int conversion
    let scale = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    if tiny { 0.0 } else { p * scale }
}

/// Φ(x) and the density φ(x) = e^{−x²/2}/√(2π) together (they share the exponential).
#[inline(always)]
fn normal_cdf_pdf(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152, 1.061_405_4];
    let z = x.abs() * FRAC_1_SQRT_2;
    let e = exp_nonpositive(-(z * z));
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    // erf(z) = 1 − poly e^{−z²} for z ≥ 0; Φ(±|x|) = ½ (1 ± erf(|x|/√2))
    let half_erfc = 0.5 * poly * e;
    let cdf = if x >= 0.0 { 1.0 - half_erfc } else { half_erfc };
    (cdf, FRAC_1_SQRT_2PI * e)
}

#[inline(always)]
fn gelu_scalar(x: f32) -> f32 {
    x * normal_cdf_pdf(x).0
}

#[inline(always)]
fn gelu_grad_scalar(x: f32, g: f32) -> f32 {
    let (cdf, pdf) = normal_cdf_pdf(x);
    g * (cdf + x * pdf)
}

#[inline(always)]
fn gelu_generic(src: &[f32], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = gelu_scalar(s);
    }
}

#[inline(always)]
fn gelu_grad_generic(x: &[f32], g: &[f32], dst: &mut [f32]) {
    for ((d, &x), &g) in dst.iter_mut().zip(x).zip(g) {
        *d = gelu_grad_scalar(x, g);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_avx2(src: &[f32], dst: &mut [f32]) {
    gelu_generic(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_grad_avx2(x: &[f32], g: &[f32], dst: &mut [f32]) {
    gelu_grad_generic(x, g, dst)
}

/// Whether the AVX2 + FMA versions can run (the detection is cached by the standard library).
#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

fn gelu_slice(src: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { gelu_avx2(src, dst) };
    }
    gelu_generic(src, dst)
}

fn gelu_grad_slice(x: &[f32], g: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { gelu_grad_avx2(x, g, dst) };
    }
    gelu_grad_generic(x, g, dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;

    /// Φ in f64 from a continued-fraction-free series (erf by its Taylor series for |x| ≤ 3, complement by
    /// asymptotics beyond): independent of the kernel's formula.
    fn phi64(x: f64) -> f64 {
        let z = x / std::f64::consts::SQRT_2;
        let erf = if z.abs() <= 3.0 {
            // erf z = 2/√π Σ (−1)ⁿ z^{2n+1} / (n! (2n+1))
            let mut term = z;
            let mut sum = z;
            for n in 1..200 {
                term *= -z * z / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc z ≈ e^{−z²}/(z√π) (1 − 1/(2z²) + 3/(4z⁴) − 15/(8z⁶))
            let a = z.abs();
            let c = (-a * a).exp() / (a * std::f64::consts::PI.sqrt())
                * (1.0 - 0.5 / (a * a) + 0.75 / a.powi(4) - 1.875 / a.powi(6));
            z.signum() * (1.0 - c)
        };
        0.5 * (1.0 + erf)
    }

    #[test]
    fn exponential_is_accurate_to_float32_rounding() {
        assert_eq!(exp_nonpositive(-87.5), 0.0);
        for i in 0..=20_000 {
            let y = -(i as f32) * 0.00435;
            let exact = (y as f64).exp();
            let got = exp_nonpositive(y) as f64;
            assert!((got - exact).abs() <= 2.5e-7 * exact, "e^{y}: {got} vs {exact}");
        }
    }

    #[test]
    fn gelu_and_its_derivative_match_double_precision() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -12_000..=12_000 {
            let x = i as f32 * 1e-3;
            let xd = x as f64;
            let phi = phi64(xd);
            let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let e0 = (gelu_scalar(x) as f64 - xd * phi).abs();
            let e1 = (gelu_grad_scalar(x, 1.0) as f64 - (phi + xd * pdf)).abs();
            worst = (worst.0.max(e0 / xd.abs().max(1.0)), worst.1.max(e1));
        }
        assert!(worst.0 < 4e-7, "GELU error {:e}", worst.0);
        assert!(worst.1 < 4e-7, "GELU derivative error {:e}", worst.1);
        // far tails: exactly x for large x, exactly 0 for very negative x, no NaN
        assert_eq!(gelu_scalar(30.0), 30.0);
        assert_eq!(gelu_scalar(-30.0), 0.0);
        assert_eq!(gelu_grad_scalar(30.0, 1.0), 1.0);
        assert!(gelu_grad_scalar(-30.0, 1.0).abs() < 1e-30);
    }

    #[test]
    fn vectorised_and_scalar_paths_give_identical_bits() {
        let x: Vec<f32> = (0..40_001).map(|i| (i as f32 - 20_000.0) * 7.3e-4).collect();
        let g: Vec<f32> = x.iter().map(|v| 1.0 - 0.3 * v).collect();
        let (mut a, mut b) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        gelu_slice(&x, &mut a);
        gelu_generic(&x, &mut b);
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "forward differs between paths");
        gelu_grad_slice(&x, &g, &mut a);
        gelu_grad_generic(&x, &g, &mut b);
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "backward differs between paths");
    }

    #[test]
    fn kernel_agrees_with_burn_and_its_gradient_with_the_closed_form() {
        let device = Device::flex().autodiff();
        let mut init = Init::new(3, &device);
        // not a multiple of the chunk, so the last task is partial
        let x = init.uniform([3, 5, 7, 1000], -6.0, 6.0).require_grad();
        let w = init.uniform([3, 5, 7, 1000], -1.0, 1.0);
        let ours = gelu(x.clone());
        let theirs = activation::gelu(x.clone().detach());
        let diff = (ours.clone().detach() - theirs).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "forward differs from burn's gelu by {diff}");
        let grads = (ours * w.clone()).sum().backward();
        let g = x.grad(&grads).expect("gradient of x");
        let x = x.detach();
        let xd = x.clone().into_data().try_to_vec::<f32>().unwrap();
        let wd = w.into_data().try_to_vec::<f32>().unwrap();
        let gd = g.into_data().try_to_vec::<f32>().unwrap();
        let mut expected = vec![0.0f32; xd.len()];
        gelu_grad_slice(&xd, &wd, &mut expected);
        assert!(gd.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "the backward kernel did not run");
        for ((&x, &w), &g) in xd.iter().zip(&wd).zip(&gd) {
            let xx = x as f64;
            let exact = w as f64 * (phi64(xx) + xx * (-0.5 * xx * xx).exp() / (2.0 * std::f64::consts::PI).sqrt());
            assert!((g as f64 - exact).abs() < 1e-6, "gradient at {x}: {g} vs {exact}");
        }
    }

    #[test]
    fn flex_tensors_take_the_kernel_with_and_without_autodiff() {
        // bitwise equality with the slice kernel shows the fast path ran (burn's erff differs in low bits)
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Init::new(9, &device).uniform([4, 1000], -5.0, 5.0);
            let xs = x.clone().into_data().try_to_vec::<f32>().unwrap();
            let mut expected = vec![0.0f32; xs.len()];
            gelu_slice(&xs, &mut expected);
            let got = gelu(x.clone()).into_data().try_to_vec::<f32>().unwrap();
            assert!(got.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "{device:?}");
            let burn = activation::gelu(x).into_data().try_to_vec::<f32>().unwrap();
            assert!(burn.iter().zip(&expected).any(|(a, b)| a.to_bits() != b.to_bits()), "cannot tell the paths apart");
        }
    }

    #[test]
    fn without_autodiff_and_in_double_precision_the_same_function_is_applied() {
        let device = Device::flex();
        let x = Init::new(4, &device).uniform([2, 3, 50], -4.0, 4.0);
        let diff = (gelu(x.clone()) - activation::gelu(x)).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "{diff}");
        let x64 = Init::new(4, &device).with_dtype(DType::F64).uniform([2, 3, 50], -4.0, 4.0);
        let same = (gelu(x64.clone()) - activation::gelu(x64)).abs().max().into_scalar::<f64>();
        assert_eq!(same, 0.0);
    }
}
