//! Fourier neural operator (Li et al. 2021, arXiv:2010.08895) in one, two or three dimensions (a 3D field
//! `[batch, c, nz, ny, nx]` passed as `[batch, c, nz · ny, nx]`, see [`crate::spectral`]): the input channels and
//! the grid coordinates are lifted pointwise to `width` channels, pass through layers of spectral convolution
//! plus a pointwise linear map with GELU between them, and are projected pointwise through a hidden layer.

use crate::kernels::gelu;
use burn::prelude::*;

use crate::init::Init;
use crate::jet::Jet;
use crate::layers::Pointwise;
use crate::spectral::{SpectralConv, SpectralConvConfig};

/// Configuration of [`Fno`].
#[derive(Config, Debug)]
pub struct FnoConfig {
    /// Input channels (stacked input frames), not counting the coordinates.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Hidden channels.
    pub width: usize,
    /// Fourier modes along x.
    pub modes_x: usize,
    /// Fourier modes along y for each sign (ignored in 1D).
    pub modes_y: usize,
    /// Fourier layers.
    pub layers: usize,
    /// Grid points along x.
    pub nx: usize,
    /// Grid points along y (1 for 1D).
    pub ny: usize,
    /// Width of the projection's hidden layer.
    #[config(default = 128)]
    pub projection: usize,
    /// Append the cell coordinates in [0, 1) as input channels.
    #[config(default = true)]
    pub coordinates: bool,
    /// Grid points along z (1 for 1D and 2D).
    #[config(default = 1)]
    pub nz: usize,
    /// Fourier modes along z for each sign (ignored when nz = 1).
    #[config(default = 1)]
    pub modes_z: usize,
}

impl FnoConfig {
    fn spectral(&self) -> SpectralConvConfig {
        SpectralConvConfig::new(self.width, self.width, self.modes_x, self.modes_y, self.nx, self.ny)
            .with_nz(self.nz)
            .with_modes_z(self.modes_z)
    }

    /// Dimensions: 3 when `nz > 1`, else 2 when `ny > 1`, else 1.
    pub fn dims(&self) -> usize {
        if self.nz > 1 {
            3
        } else if self.ny > 1 {
            2
        } else {
            1
        }
    }

    /// Initialises the network from `init`'s stream.
    pub fn init(&self, init: &mut Init) -> Fno {
        let extra = if self.coordinates { self.dims() } else { 0 };
        let lift = Pointwise::new(self.channels_in + extra, self.width, init);
        let mut spectral = Vec::with_capacity(self.layers);
        let mut pointwise = Vec::with_capacity(self.layers);
        for _ in 0..self.layers {
            spectral.push(self.spectral().init(init));
            pointwise.push(Pointwise::new(self.width, self.width, init));
        }
        Fno {
            lift,
            spectral,
            pointwise,
            proj1: Pointwise::new(self.width, self.projection, init),
            proj2: Pointwise::new(self.projection, self.channels_out, init),
            grid: self.coordinates.then(|| {
                if self.nz > 1 {
                    coordinates3(self.nx, self.ny, self.nz, init)
                } else {
                    coordinates(self.nx, self.ny, init)
                }
            }),
        }
    }

    /// Number of trainable values.
    pub fn parameters(&self) -> usize {
        let extra = if self.coordinates { self.dims() } else { 0 };
        let pw = |i: usize, o: usize| i * o + o;
        pw(self.channels_in + extra, self.width)
            + self.layers * (self.spectral().parameters() + pw(self.width, self.width))
            + pw(self.width, self.projection)
            + pw(self.projection, self.channels_out)
    }
}

/// Cell-centred coordinates in [0, 1): `[1, d, ny, nx]` (x first, then y in 2D).
pub fn coordinates(nx: usize, ny: usize, init: &Init) -> Tensor<4> {
    let mut v: Vec<f64> = (0..ny * nx).map(|p| ((p % nx) as f64 + 0.5) / nx as f64).collect();
    if ny > 1 {
        v.extend((0..ny * nx).map(|p| ((p / nx) as f64 + 0.5) / ny as f64));
        init.tensor(v, [1, 2, ny, nx])
    } else {
        init.tensor(v, [1, 1, ny, nx])
    }
}

/// Cell-centred coordinates in [0, 1) of a 3D grid: `[1, 3, nz · ny, nx]` (x, y, z).
pub fn coordinates3(nx: usize, ny: usize, nz: usize, init: &Init) -> Tensor<4> {
    let n = nz * ny * nx;
    let mut v: Vec<f64> = (0..n).map(|p| ((p % nx) as f64 + 0.5) / nx as f64).collect();
    v.extend((0..n).map(|p| (((p / nx) % ny) as f64 + 0.5) / ny as f64));
    v.extend((0..n).map(|p| ((p / (nx * ny)) as f64 + 0.5) / nz as f64));
    init.tensor(v, [1, 3, nz * ny, nx])
}

/// Appends the coordinate channels to `x`.
pub fn with_coordinates(x: Tensor<4>, grid: Option<&Tensor<4>>) -> Tensor<4> {
    match grid {
        Some(g) => {
            let b = x.dims()[0];
            Tensor::cat(vec![x, g.clone().repeat_dim(0, b)], 1)
        }
        None => x,
    }
}

/// FNO: `[batch, c_in, ny, nx] → [batch, c_out, ny, nx]`.
#[derive(Module, Debug)]
pub struct Fno {
    lift: Pointwise,
    spectral: Vec<SpectralConv>,
    pointwise: Vec<Pointwise>,
    proj1: Pointwise,
    proj2: Pointwise,
    #[module(skip)]
    grid: Option<Tensor<4>>,
}

impl Fno {
    /// The float type of the weights.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.lift.weight.val().dtype()
    }

    /// Applies the network.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = self.lift.forward(with_coordinates(x, self.grid.as_ref()));
        let last = self.spectral.len().saturating_sub(1);
        for (l, (s, p)) in self.spectral.iter().zip(&self.pointwise).enumerate() {
            let y = s.forward(h.clone()) + p.forward(h);
            h = if l < last { gelu(y) } else { y };
        }
        self.proj2.forward(gelu(self.proj1.forward(h)))
    }

    /// Forward-mode derivatives of [`Fno::forward`] with respect to its input: for an input jet with tangents
    /// `vᵢ` (`[batch, c_in, ny, nx]` each), the output tangents are the Jacobian–vector products `J vᵢ` and, when
    /// the input carries second derivatives, the output's `d²F/dsᵢ²` along the same directions. The value is
    /// computed by the same operations as [`Fno::forward`]; the coordinate channels are constants (zero
    /// tangents). Each layer's spectral and pointwise maps take the value and all derivatives in one stacked pass.
    pub fn forward_jet(&self, x: &Jet<4>) -> Jet<4> {
        let x = match &self.grid {
            Some(g) => {
                let b = x.value.dims()[0];
                Jet::cat(vec![x.clone(), Jet::constant(g.clone().repeat_dim(0, b))], 1)
            }
            None => x.clone(),
        };
        let mut h = self.lift.forward_jet(&x);
        let last = self.spectral.len().saturating_sub(1);
        for (l, (s, p)) in self.spectral.iter().zip(&self.pointwise).enumerate() {
            let (k, second) = (h.k(), h.has_second());
            let stacked = h.stack();
            let global = Jet::unstack(s.forward(stacked.clone()), k, second);
            let mut local = Jet::unstack(p.forward_without_bias(stacked), k, second);
            local.value = p.add_bias(local.value);
            let y = global.add(&local);
            h = if l < last { y.gelu() } else { y };
        }
        self.proj2.forward_jet(&self.proj1.forward_jet(&h).gelu())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::TensorData;

    /// Random smooth fields (4 Fourier modes) and their images under the heat semigroup e^{−0.05 k²}: a linear
    /// operator diagonal in Fourier space, which one spectral layer represents exactly.
    fn batch(seed: u64, b: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut init = Init::new(seed, &Device::flex());
        let (mut x, mut y) = (vec![], vec![]);
        for _ in 0..b {
            let coef: Vec<(f64, f64)> =
                (1..=4).map(|_| (2.0 * init.next_unit() - 1.0, 2.0 * init.next_unit() - 1.0)).collect();
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
    fn a_three_dimensional_fno_maps_fields_of_its_grid_and_counts_its_parameters() {
        let device = Device::flex();
        let config = FnoConfig::new(2, 3, 8, 3, 2, 2, 10, 6).with_nz(5).with_modes_z(2).with_projection(16);
        assert_eq!(config.dims(), 3);
        let mut init = Init::new(1, &device);
        let fno = config.init(&mut init);
        assert_eq!(fno.num_params(), config.parameters());
        let y = fno.forward(init.uniform([2, 2, 5 * 6, 10], -1.0, 1.0));
        assert_eq!(y.dims(), [2, 3, 30, 10]);
        // the z coordinate channel increases along z and is constant within a z-slice
        let g = coordinates3(10, 6, 5, &init).into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
        let z = &g[2 * 300..3 * 300];
        assert!(z[0] == z[59] && z[60] > z[59] && (z[299] - 0.9).abs() < 1e-6);
    }

    #[test]
    fn parameter_count_matches_the_module() {
        let config = FnoConfig::new(3, 2, 8, 4, 3, 2, 16, 12).with_projection(10);
        let model = config.init(&mut Init::new(1, &Device::flex()));
        assert_eq!(model.num_params(), config.parameters());
    }

    #[test]
    fn learns_a_fourier_multiplier() {
        let device = Device::flex().autodiff();
        let n = 32;
        let config = FnoConfig::new(1, 1, 8, 8, 1, 2, n, 1).with_projection(16);
        let mut model = config.init(&mut Init::new(3, &device));
        let mut optim = AdamConfig::new().init();
        let to = |v: Vec<f32>, b: usize| Tensor::<4>::from_data(TensorData::new(v, [b, 1, 1, n]), &device);
        let rel = |model: &Fno, seed: u64| -> f64 {
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
