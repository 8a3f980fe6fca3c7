//! Spectral convolutions (Li et al. 2021, arXiv:2010.08895) in one, two and three dimensions: transform to Fourier
//! space, keep the lowest wavenumbers, multiply by learned complex weights per (input, output) channel pair,
//! transform back. The transforms are truncated DFTs written as matrix products, which are exact in f64, work for
//! any grid size and on every burn backend, and are faster than an FFT while the kept modes are few.
//!
//! Fields are `[batch, channels, ny, nx]`. Along x the real DFT keeps wavenumbers `0..modes_x`; along y (when
//! `ny > 1`) the complex DFT keeps `0..modes_y` and `ny − modes_y..ny` (both signs, as the reference FNO's two
//! weight blocks do). A 1D field is `ny = 1`, where the y transform is the identity and is skipped.
//!
//! A 3D field `[batch, channels, nz, ny, nx]` is passed as `[batch, channels, nz · ny, nx]` with `nz > 1` in the
//! configuration: z and y then form one combined axis whose complex DFT keeps the pairs (kz, ky) of both axes' kept
//! wavenumbers (`e^{−2πi (kz z/nz + ky y/ny)}`, both signs of each), so the same code serves every dimension.

use burn::module::Param;
use burn::prelude::*;

use crate::init::Init;

/// Configuration of [`SpectralConv`].
#[derive(Config, Debug)]
pub struct SpectralConvConfig {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Modes kept along x (clamped to nx/2 + 1).
    pub modes_x: usize,
    /// Modes kept along y for each sign (clamped to ny/2; ignored when ny = 1).
    pub modes_y: usize,
    /// Grid points along x.
    pub nx: usize,
    /// Grid points along y (1 for 1D fields).
    pub ny: usize,
    /// Grid points along z (1 for 1D and 2D fields).
    #[config(default = 1)]
    pub nz: usize,
    /// Modes kept along z for each sign (clamped to nz/2; ignored when nz = 1).
    #[config(default = 1)]
    pub modes_z: usize,
}

impl SpectralConvConfig {
    /// The wavenumbers kept along y.
    pub fn y_modes(&self) -> Vec<usize> {
        if self.ny <= 1 {
            return vec![0];
        }
        let my = self.modes_y.clamp(1, self.ny / 2);
        (0..my).chain(self.ny - my..self.ny).collect()
    }

    /// The wavenumbers kept along z.
    pub fn z_modes(&self) -> Vec<usize> {
        if self.nz <= 1 {
            return vec![0];
        }
        let mz = self.modes_z.clamp(1, self.nz / 2);
        (0..mz).chain(self.nz - mz..self.nz).collect()
    }

    /// The (kz, ky) pairs of the combined (z, y) axis, z outer.
    pub fn zy_modes(&self) -> Vec<(usize, usize)> {
        let ys = self.y_modes();
        self.z_modes().into_iter().flat_map(|kz| ys.iter().map(move |&ky| (kz, ky))).collect()
    }

    /// The number of wavenumbers kept along x.
    pub fn x_modes(&self) -> usize {
        self.modes_x.clamp(1, self.nx / 2 + 1)
    }

    /// Weights uniform in [0, 1/(c_in c_out)) for real and imaginary parts, as in the reference FNO.
    pub fn init(&self, init: &mut Init) -> SpectralConv {
        let scale = 1.0 / (self.channels_in * self.channels_out) as f64;
        let modes = self.zy_modes().len() * self.x_modes();
        let shape = [modes, self.channels_in, self.channels_out];
        let w_re = init.uniform(shape, 0.0, scale);
        let w_im = init.uniform(shape, 0.0, scale);
        SpectralConv::from_weights(w_re, w_im, self, init)
    }

    /// Number of trainable values.
    pub fn parameters(&self) -> usize {
        2 * self.zy_modes().len() * self.x_modes() * self.channels_in * self.channels_out
    }
}

/// The DFT matrices of both axes, shaped for right-multiplication of row-major data.
#[derive(Debug, Clone)]
struct Transforms {
    /// x forward `[nx, mx]` (cos, sin) and inverse `[mx, nx]` (with Hermitian weights and 1/nx).
    fx: [Tensor<2>; 4],
    /// y forward `[ny, K]` and inverse `[K, ny]` (with 1/ny); absent for 1D fields.
    fy: Option<[Tensor<2>; 4]>,
}

fn transforms(config: &SpectralConvConfig, init: &Init) -> Transforms {
    let tau = 2.0 * std::f64::consts::PI;
    let (nx, mx) = (config.nx, config.x_modes());
    let mut m = [vec![0.0f64; nx * mx], vec![0.0; nx * mx], vec![0.0; mx * nx], vec![0.0; mx * nx]];
    for x in 0..nx {
        for k in 0..mx {
            let a = tau * (k * x) as f64 / nx as f64;
            let w = if k == 0 || 2 * k == nx { 1.0 } else { 2.0 } / nx as f64;
            m[0][x * mx + k] = a.cos();
            m[1][x * mx + k] = a.sin();
            m[2][k * nx + x] = w * a.cos();
            m[3][k * nx + x] = w * a.sin();
        }
    }
    let [a, b, c, d] = m;
    let fx = [init.tensor(a, [nx, mx]), init.tensor(b, [nx, mx]), init.tensor(c, [mx, nx]), init.tensor(d, [mx, nx])];
    let fy = (config.ny > 1 || config.nz > 1).then(|| {
        // the combined (z, y) axis, row index z · ny + y
        let (nyy, nz) = (config.ny, config.nz.max(1));
        let ny = nz * nyy;
        let ks = config.zy_modes();
        let kk = ks.len();
        let mut m = [vec![0.0f64; ny * kk], vec![0.0; ny * kk], vec![0.0; kk * ny], vec![0.0; kk * ny]];
        for (r, &(kz, ky)) in ks.iter().enumerate() {
            for y in 0..ny {
                let (zi, yi) = (y / nyy, y % nyy);
                let a = tau * ((kz * zi) as f64 / nz as f64 + (ky * yi) as f64 / nyy as f64);
                m[0][y * kk + r] = a.cos();
                m[1][y * kk + r] = a.sin();
                m[2][r * ny + y] = a.cos() / ny as f64;
                m[3][r * ny + y] = a.sin() / ny as f64;
            }
        }
        let [a, b, c, d] = m;
        [init.tensor(a, [ny, kk]), init.tensor(b, [ny, kk]), init.tensor(c, [kk, ny]), init.tensor(d, [kk, ny])]
    });
    Transforms { fx, fy }
}

/// Spectral convolution `[batch, c_in, ny, nx] → [batch, c_out, ny, nx]`.
#[derive(Module, Debug)]
pub struct SpectralConv {
    /// Real and imaginary parts of the weights, `[K·mx, c_in, c_out]` (mode-major: y modes outer, x inner).
    pub w_re: Param<Tensor<3>>,
    pub w_im: Param<Tensor<3>>,
    #[module(skip)]
    dft: Transforms,
    #[module(skip)]
    shape: [usize; 2],
}

impl SpectralConv {
    /// A convolution with the given weights (`[K·mx, c_in, c_out]`); the DFT matrices take `init`'s device and
    /// dtype.
    pub fn from_weights(w_re: Tensor<3>, w_im: Tensor<3>, config: &SpectralConvConfig, init: &Init) -> Self {
        let dims = w_re.dims();
        assert_eq!(dims[0], config.zy_modes().len() * config.x_modes(), "weights do not match the kept modes");
        let dft = transforms(config, init);
        Self {
            w_re: Param::from_tensor(w_re),
            w_im: Param::from_tensor(w_im),
            dft,
            shape: [config.zy_modes().len(), config.x_modes()],
        }
    }

    /// Applies the convolution. Every transform is one large matrix product on a 2D view of the data.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, cin, ny, nx] = x.dims();
        let [kk, mx] = self.shape;
        let [cx, sx, icx, isx] = self.dft.fx.clone();
        // real DFT along x: rows (b, c, y)
        let rows = x.reshape([b * cin * ny, nx]);
        let xr = rows.clone().matmul(cx);
        let xi = rows.matmul(sx).neg();
        // complex DFT along y: rows (b, c, kx), columns ky; then modes-major [K·mx, b, cin]
        let (xr, xi) = match &self.dft.fy {
            Some([cy, sy, _, _]) => {
                let to_rows = |t: Tensor<2>| t.reshape([b * cin, ny, mx]).swap_dims(1, 2).reshape([b * cin * mx, ny]);
                let (r, i) = (to_rows(xr), to_rows(xi));
                let yr = r.clone().matmul(cy.clone()) + i.clone().matmul(sy.clone());
                let yi = i.matmul(cy.clone()) - r.matmul(sy.clone());
                let to_modes =
                    |t: Tensor<2>| t.reshape([b, cin, mx, kk]).permute([3, 2, 0, 1]).reshape([kk * mx, b, cin]);
                (to_modes(yr), to_modes(yi))
            }
            None => {
                let to_modes = |t: Tensor<2>| t.reshape([b, cin, mx]).permute([2, 0, 1]);
                (to_modes(xr), to_modes(xi))
            }
        };
        // channel mixing per mode: [K·mx, b, cin] × [K·mx, cin, cout]
        let (wr, wi) = (self.w_re.val(), self.w_im.val());
        let cout = wr.dims()[2];
        let or = xr.clone().matmul(wr.clone()) - xi.clone().matmul(wi.clone());
        let oi = xr.matmul(wi) + xi.matmul(wr);
        // inverse along y, then the real inverse along x
        let (zr, zi) = match &self.dft.fy {
            Some([_, _, icy, isy]) => {
                let to_rows =
                    |t: Tensor<3>| t.reshape([kk, mx, b, cout]).permute([2, 3, 1, 0]).reshape([b * cout * mx, kk]);
                let (r, i) = (to_rows(or), to_rows(oi));
                let zr = r.clone().matmul(icy.clone()) - i.clone().matmul(isy.clone());
                let zi = i.matmul(icy.clone()) + r.matmul(isy.clone());
                let to_x = |t: Tensor<2>| t.reshape([b * cout, mx, ny]).swap_dims(1, 2).reshape([b * cout * ny, mx]);
                (to_x(zr), to_x(zi))
            }
            None => {
                let to_x = |t: Tensor<3>| t.permute([1, 2, 0]).reshape([b * cout, mx]);
                (to_x(or), to_x(oi))
            }
        };
        let out = zr.matmul(icx) - zi.matmul(isx);
        out.reshape([b, cout, ny, nx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;
    use std::f64::consts::PI;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().expect("values")
    }

    /// A single-channel convolution whose weight is 1 on one kept mode and 0 elsewhere.
    fn selector(config: &SpectralConvConfig, mode: usize, device: &Device) -> SpectralConv {
        let init = Init::new(0, device).with_dtype(DType::F64);
        let k = config.zy_modes().len() * config.x_modes();
        let mut wr = vec![0.0; k];
        wr[mode] = 1.0;
        SpectralConv::from_weights(init.tensor(wr, [k, 1, 1]), init.tensor(vec![0.0; k], [k, 1, 1]), config, &init)
    }

    #[test]
    fn one_dimensional_mode_selection_matches_a_direct_fourier_evaluation() {
        let device = Device::flex();
        let n = 16;
        let config = SpectralConvConfig::new(1, 1, 5, 1, n, 1);
        let conv = selector(&config, 2, &device);
        let init = Init::new(0, &device).with_dtype(DType::F64);
        let x: Vec<f64> = (0..n)
            .map(|i| {
                let t = 2.0 * PI * i as f64 / n as f64;
                0.3 + (2.0 * t).cos() + 0.5 * (2.0 * t).sin() + (3.0 * t).cos()
            })
            .collect();
        let y = values(conv.forward(init.tensor(x, [1, 1, 1, n])));
        for (i, yi) in y.iter().enumerate() {
            let t = 2.0 * PI * i as f64 / n as f64;
            assert!((yi - ((2.0 * t).cos() + 0.5 * (2.0 * t).sin())).abs() < 1e-12, "{i}: {yi}");
        }
    }

    #[test]
    fn two_dimensional_mode_selection_keeps_both_signs_of_ky() {
        // modes: y in {0, 1, 7, 6} for ny = 8 and my = 2 → K = [0, 1, 6, 7]; x modes 0..3
        let device = Device::flex();
        let (ny, nx) = (8, 10);
        let config = SpectralConvConfig::new(1, 1, 3, 2, nx, ny);
        assert_eq!(config.y_modes(), vec![0, 1, 6, 7]);
        let init = Init::new(0, &device).with_dtype(DType::F64);
        // field with (ky, kx) = (1, 2), (-1, 2) [= (7, 2)], and (3, 1) which is not kept
        let f = |ky: f64, kx: f64, j: usize, i: usize| {
            (2.0 * PI * (ky * j as f64 / ny as f64 + kx * i as f64 / nx as f64)).cos()
        };
        let x: Vec<f64> = (0..ny * nx)
            .map(|p| f(1.0, 2.0, p / nx, p % nx) + 0.7 * f(-1.0, 2.0, p / nx, p % nx) + f(3.0, 1.0, p / nx, p % nx))
            .collect();
        let input = init.tensor(x, [1, 1, ny, nx]);
        // mode index = ky_index * mx + kx: (ky = 1, kx = 2) → 1 * 3 + 2; (ky = 7, kx = 2) → 3 * 3 + 2
        let y1 = values(selector(&config, 5, &device).forward(input.clone()));
        let y2 = values(selector(&config, 11, &device).forward(input));
        for p in 0..ny * nx {
            let (j, i) = (p / nx, p % nx);
            assert!((y1[p] - f(1.0, 2.0, j, i)).abs() < 1e-12, "ky = +1 at {p}: {}", y1[p]);
            assert!((y2[p] - 0.7 * f(-1.0, 2.0, j, i)).abs() < 1e-12, "ky = -1 at {p}: {}", y2[p]);
        }
    }

    #[test]
    fn three_dimensional_mode_selection_keeps_both_signs_of_kz_and_ky() {
        let device = Device::flex();
        let (nz, ny, nx) = (6, 8, 10);
        let config = SpectralConvConfig::new(1, 1, 3, 2, nx, ny).with_nz(nz).with_modes_z(2);
        assert_eq!(config.z_modes(), vec![0, 1, 4, 5]);
        let init = Init::new(0, &device).with_dtype(DType::F64);
        let f = |kz: f64, ky: f64, kx: f64, p: usize| {
            let (k, j, i) = (p / (ny * nx), (p / nx) % ny, p % nx);
            (2.0 * PI * (kz * k as f64 / nz as f64 + ky * j as f64 / ny as f64 + kx * i as f64 / nx as f64)).cos()
        };
        // (kz, ky, kx) = (−1, 1, 2) is kept (kz index 3, ky index 1); (2, 0, 1) is not (|kz| = 2 > 1)
        let x: Vec<f64> = (0..nz * ny * nx).map(|p| 0.8 * f(-1.0, 1.0, 2.0, p) + f(2.0, 0.0, 1.0, p)).collect();
        let input = init.tensor(x, [1, 1, nz * ny, nx]);
        // mode index = (kz_index · K_y + ky_index) · mx + kx = (3 · 4 + 1) · 3 + 2
        let y = values(selector(&config, 41, &device).forward(input));
        for (p, yp) in y.iter().enumerate() {
            assert!((yp - 0.8 * f(-1.0, 1.0, 2.0, p)).abs() < 1e-12, "at {p}: {yp}");
        }
    }

    #[test]
    fn weight_gradients_match_central_differences_in_f64() {
        for (ny, nx, my, mx) in [(1, 12, 1, 4), (6, 8, 2, 3)] {
            let device = Device::flex().autodiff();
            let (b, cin, cout) = (2, 3, 2);
            let config = SpectralConvConfig::new(cin, cout, mx, my, nx, ny);
            let k = config.y_modes().len() * config.x_modes();
            let mut init = Init::new(7, &device).with_dtype(DType::F64);
            let wr0 = values(init.uniform([k, cin, cout], -1.0, 1.0));
            let wi0 = values(init.uniform([k, cin, cout], -1.0, 1.0));
            let x = init.uniform([b, cin, ny, nx], -1.0, 1.0);
            let g = init.uniform([b, cout, ny, nx], -1.0, 1.0);
            let loss = |wr: &[f64], wi: &[f64]| -> (Tensor<1>, SpectralConv) {
                let conv = SpectralConv::from_weights(
                    init.tensor(wr.to_vec(), [k, cin, cout]),
                    init.tensor(wi.to_vec(), [k, cin, cout]),
                    &config,
                    &init,
                );
                ((conv.forward(x.clone()) * g.clone()).sum(), conv)
            };
            let (l, conv) = loss(&wr0, &wi0);
            let grads = l.backward();
            let gr = values(conv.w_re.val().grad(&grads).expect("gradient of w_re"));
            let gi = values(conv.w_im.val().grad(&grads).expect("gradient of w_im"));
            let eps = 1e-6;
            for e in [0, 5, 11, 17, k * cin * cout - 1] {
                for (which, ad) in [(0, gr[e]), (1, gi[e])] {
                    let perturb = |d: f64| {
                        let (mut p, mut q) = (wr0.clone(), wi0.clone());
                        if which == 0 {
                            p[e] += d
                        } else {
                            q[e] += d
                        }
                        values(loss(&p, &q).0)[0]
                    };
                    let fd = (perturb(eps) - perturb(-eps)) / (2.0 * eps);
                    assert!(
                        (fd - ad).abs() < 1e-8 * fd.abs().max(1.0),
                        "{ny}x{nx} entry {e} ({which}): AD {ad} vs FD {fd}"
                    );
                }
            }
        }
    }
}
