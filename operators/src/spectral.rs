//! Spectral convolutions (Li et al. 2021, arXiv:2010.08895): transform to Fourier space, keep the lowest
//! `modes` wavenumbers, multiply by learned complex weights per (input, output) channel pair, transform back.
//! The transforms are truncated DFTs written as matrix products, which are exact in f64, work for any grid size
//! and on every burn backend, and are faster than an FFT while `modes ≪ n`.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::{DType, Distribution, TensorData};

/// The truncated real DFT of length `n` with `modes` wavenumbers as matrices: forward `cos`, `sin` (`[n,
/// modes]`, `X_re = x·cos`, `X_im = −x·sin`) and inverse `icos`, `isin` (`[modes, n]`, `x = X_re·icos −
/// X_im·isin`, with the Hermitian weights 1 for k = 0 and 2 otherwise, and 1/n).
fn dft_matrices(n: usize, modes: usize, device: &Device, dtype: DType) -> [Tensor<2>; 4] {
    let mut m = [vec![0.0f64; n * modes], vec![0.0; n * modes], vec![0.0; modes * n], vec![0.0; modes * n]];
    for x in 0..n {
        for k in 0..modes {
            let a = 2.0 * std::f64::consts::PI * (k * x) as f64 / n as f64;
            let w = if k == 0 || 2 * k == n { 1.0 } else { 2.0 } / n as f64;
            m[0][x * modes + k] = a.cos();
            m[1][x * modes + k] = a.sin();
            m[2][k * n + x] = w * a.cos();
            m[3][k * n + x] = w * a.sin();
        }
    }
    let [a, b, c, d] = m;
    [
        Tensor::from_data(TensorData::new(a, [n, modes]), (device, dtype)),
        Tensor::from_data(TensorData::new(b, [n, modes]), (device, dtype)),
        Tensor::from_data(TensorData::new(c, [modes, n]), (device, dtype)),
        Tensor::from_data(TensorData::new(d, [modes, n]), (device, dtype)),
    ]
}

/// Configuration of [`SpectralConv1d`].
#[derive(Config, Debug)]
pub struct SpectralConv1dConfig {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Fourier modes kept (at most n/2 + 1).
    pub modes: usize,
    /// Grid points.
    pub n: usize,
}

impl SpectralConv1dConfig {
    /// Weights uniform in [0, 1/(c_in c_out)) as in the reference FNO.
    pub fn init(&self, device: &Device) -> SpectralConv1d {
        let scale = 1.0 / (self.channels_in * self.channels_out) as f64;
        let shape = [self.channels_in, self.channels_out, self.modes];
        let w_re = Tensor::random(shape, Distribution::Uniform(0.0, scale), device);
        let w_im = Tensor::random(shape, Distribution::Uniform(0.0, scale), device);
        SpectralConv1d::from_weights(w_re, w_im, self.n)
    }
}

/// 1D spectral convolution: `[batch, c_in, n] → [batch, c_out, n]`.
#[derive(Module, Debug)]
pub struct SpectralConv1d {
    /// Real and imaginary parts of the weights, `[c_in, c_out, modes]`.
    pub w_re: Param<Tensor<3>>,
    pub w_im: Param<Tensor<3>>,
    #[module(skip)]
    dft: [Tensor<2>; 4],
}

impl SpectralConv1d {
    /// A convolution with the given weights (`[c_in, c_out, modes]`) on grids of `n` points; the DFT matrices
    /// take the weights' device and dtype.
    pub fn from_weights(w_re: Tensor<3>, w_im: Tensor<3>, n: usize) -> Self {
        let [_, _, modes] = w_re.dims();
        let dft = dft_matrices(n, modes, &w_re.device(), w_re.dtype());
        Self { w_re: Param::from_tensor(w_re), w_im: Param::from_tensor(w_im), dft }
    }

    /// Applies the convolution to `x` of shape `[batch, c_in, n]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [cos, sin, icos, isin] = self.dft.clone();
        let xr = x.clone().matmul(cos.unsqueeze_dim(0)); // [b, cin, m]
        let xi = x.matmul(sin.unsqueeze_dim(0)).neg();
        let (xr, xi) = (xr.unsqueeze_dim::<4>(2), xi.unsqueeze_dim::<4>(2)); // [b, cin, 1, m]
        let (wr, wi) = (self.w_re.val().unsqueeze_dim::<4>(0), self.w_im.val().unsqueeze_dim::<4>(0)); // [1, cin, cout, m]
        let yr = (xr.clone() * wr.clone() - xi.clone() * wi.clone()).sum_dim(1).squeeze_dim::<3>(1); // [b, cout, m]
        let yi = (xr * wi + xi * wr).sum_dim(1).squeeze_dim::<3>(1);
        yr.matmul(icos.unsqueeze_dim(0)) - yi.matmul(isin.unsqueeze_dim(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn tensor<const D: usize>(v: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().as_slice::<f64>().expect("f64 tensor").to_vec()
    }

    #[test]
    fn matches_a_direct_fourier_evaluation() {
        // one channel, identity-like weight on mode 2 only: the output is the mode-2 component of the input
        let device = Device::flex();
        let (n, m) = (16, 5);
        let mut wr = vec![0.0; m];
        wr[2] = 1.0;
        let conv =
            SpectralConv1d::from_weights(tensor(wr, [1, 1, m], &device), tensor(vec![0.0; m], [1, 1, m], &device), n);
        let x: Vec<f64> = (0..n)
            .map(|i| {
                let t = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
                0.3 + (2.0 * t).cos() + 0.5 * (2.0 * t).sin() + (3.0 * t).cos()
            })
            .collect();
        let y = values(conv.forward(tensor(x, [1, 1, n], &device)));
        for (i, yi) in y.iter().enumerate() {
            let t = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            assert!((yi - ((2.0 * t).cos() + 0.5 * (2.0 * t).sin())).abs() < 1e-12, "{i}: {yi}");
        }
    }

    #[test]
    fn weight_gradients_match_central_differences_in_f64() {
        let device = Device::flex().autodiff();
        let (b, cin, cout, m, n) = (2, 3, 2, 4, 12);
        let wr0 = lcg(1, cin * cout * m);
        let wi0 = lcg(2, cin * cout * m);
        let x = lcg(3, b * cin * n);
        let g = lcg(4, b * cout * n);
        let loss = |wr: &[f64], wi: &[f64]| -> (Tensor<1>, SpectralConv1d) {
            let conv = SpectralConv1d::from_weights(
                tensor(wr.to_vec(), [cin, cout, m], &device),
                tensor(wi.to_vec(), [cin, cout, m], &device),
                n,
            );
            let y = conv.forward(tensor(x.clone(), [b, cin, n], &device));
            ((y * tensor(g.clone(), [b, cout, n], &device)).sum(), conv)
        };
        let (l, conv) = loss(&wr0, &wi0);
        let grads = l.backward();
        let gr = values(conv.w_re.val().grad(&grads).expect("gradient of w_re"));
        let gi = values(conv.w_im.val().grad(&grads).expect("gradient of w_im"));
        let eps = 1e-6;
        for k in [0, 5, 11, 17, 23] {
            for (which, ad) in [(0, gr[k]), (1, gi[k])] {
                let (mut p, mut q) = (wr0.clone(), wi0.clone());
                let (mut pm, mut qm) = (wr0.clone(), wi0.clone());
                if which == 0 {
                    p[k] += eps;
                    pm[k] -= eps;
                } else {
                    q[k] += eps;
                    qm[k] -= eps;
                }
                let fp = values(loss(&p, &q).0)[0];
                let fm = values(loss(&pm, &qm).0)[0];
                let fd = (fp - fm) / (2.0 * eps);
                assert!((fd - ad).abs() < 1e-8 * fd.abs().max(1.0), "entry {k} ({which}): AD {ad} vs FD {fd}");
            }
        }
    }
}
