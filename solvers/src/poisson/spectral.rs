//! Periodic Poisson by FFT.

use num_complex::Complex64 as C;

use crate::ConfigError;
use crate::spectral::RealFft2;

/// `−Δu = f` on a periodic `lx × ly` box of `ny × nx` collocation points, solved exactly in Fourier space
/// (`û = f̂ / |k|²`, zero mean). Exact to round-off for band-limited data; `f` must have zero mean.
#[derive(Debug)]
pub struct SpectralPoisson {
    nx: usize,
    ny: usize,
    fft: RealFft2,
    inv_k2: Vec<f64>,
}

impl SpectralPoisson {
    /// Plans for an `ny × nx` grid of a `lx × ly` box.
    pub fn new(nx: usize, ny: usize, length: [f64; 2]) -> Result<Self, ConfigError> {
        if nx < 2 || ny < 1 {
            return Err(ConfigError::GridTooSmall { axis: "x", n: nx, min: 2 });
        }
        crate::check_positive("length x", length[0])?;
        crate::check_positive("length y", length[1])?;
        let fft = RealFft2::new(nx, ny);
        let inv_k2 = (0..fft.spec_len())
            .map(|i| {
                let (kx, ky) = fft.wavenumbers(i, length[0], length[1]);
                let k2 = kx * kx + ky * ky;
                if k2 == 0.0 { 0.0 } else { 1.0 / k2 }
            })
            .collect();
        Ok(Self { nx, ny, fft, inv_k2 })
    }

    /// Solves for `u` (zero mean); fails if `f` has the wrong length or a mean beyond round-off.
    pub fn solve(&self, f: &[f64], u: &mut [f64]) -> Result<(), ConfigError> {
        let n = self.nx * self.ny;
        if f.len() != n || u.len() != n {
            return Err(ConfigError::Shape {
                what: "spectral Poisson field",
                expected: vec![n],
                got: vec![f.len(), u.len()],
            });
        }
        let mean = f.iter().sum::<f64>() / n as f64;
        let scale = f.iter().map(|v| v.abs()).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
        if mean.abs() > 1e-10 * scale {
            return Err(ConfigError::Incompatible { what: "mean of the periodic source", value: mean });
        }
        let mut w = self.fft.work();
        let mut spec = vec![C::new(0.0, 0.0); self.fft.spec_len()];
        self.fft.forward(f, &mut spec, &mut w);
        for (s, k) in spec.iter_mut().zip(&self.inv_k2) {
            *s *= k;
        }
        self.fft.inverse(&spec, u, &mut w);
        Ok(())
    }
}
