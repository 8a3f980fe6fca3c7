//! Periodic 2D elasticity in Fourier space (Navier–Cauchy).

use num_complex::Complex64 as C;

use crate::ConfigError;
use crate::spectral::RealFft2;

/// `−∇·σ(u) = b` with constant λ, μ on a periodic `lx × ly` box of `ny × nx` collocation points: per wavenumber
/// `(μ|k|² I + (λ + μ) k kᵀ) û = b̂`, solved exactly (2 × 2 inverse). The mean displacement is set to zero and the
/// mean body force must vanish. Exact to round-off for band-limited data. Plane stress: pass λ* = 2λμ/(λ + 2μ).
#[derive(Debug)]
pub struct SpectralElasticity2d {
    nx: usize,
    ny: usize,
    lx: f64,
    ly: f64,
    lambda: f64,
    mu: f64,
    fft: RealFft2,
}

impl SpectralElasticity2d {
    /// Plans for an `ny × nx` grid.
    pub fn new(nx: usize, ny: usize, length: [f64; 2], lambda: f64, mu: f64) -> Result<Self, ConfigError> {
        if nx < 2 || ny < 2 {
            return Err(ConfigError::GridTooSmall { axis: "x or y", n: nx.min(ny), min: 2 });
        }
        crate::check_positive("length x", length[0])?;
        crate::check_positive("length y", length[1])?;
        crate::check_positive("mu", mu)?;
        crate::check_non_negative("lambda", lambda)?;
        Ok(Self { nx, ny, lx: length[0], ly: length[1], lambda, mu, fft: RealFft2::new(nx, ny) })
    }

    /// Solves for the displacement `(u, v)` (each `ny × nx`, x fastest) from the body force `(bx, by)`.
    pub fn solve(&self, bx: &[f64], by: &[f64], u: &mut [f64], v: &mut [f64]) -> Result<(), ConfigError> {
        let n = self.nx * self.ny;
        for s in [bx, by, &*u, &*v] {
            if s.len() != n {
                return Err(ConfigError::Shape {
                    what: "spectral elasticity field",
                    expected: vec![n],
                    got: vec![s.len()],
                });
            }
        }
        for b in [bx, by] {
            let mean = b.iter().sum::<f64>() / n as f64;
            let scale = b.iter().fold(0.0_f64, |m, x| m.max(x.abs())).max(f64::MIN_POSITIVE);
            if mean.abs() > 1e-10 * scale {
                return Err(ConfigError::Incompatible { what: "mean of the periodic body force", value: mean });
            }
        }
        let mut w = self.fft.work();
        let m = self.fft.spec_len();
        let (mut bxh, mut byh) = (vec![C::new(0.0, 0.0); m], vec![C::new(0.0, 0.0); m]);
        self.fft.forward(bx, &mut bxh, &mut w);
        self.fft.forward(by, &mut byh, &mut w);
        let (l, mu) = (self.lambda, self.mu);
        for i in 0..m {
            let (kx, ky) = self.fft.wavenumbers(i, self.lx, self.ly);
            let k2 = kx * kx + ky * ky;
            if k2 == 0.0 {
                bxh[i] = C::new(0.0, 0.0);
                byh[i] = C::new(0.0, 0.0);
                continue;
            }
            let det = mu * (l + 2.0 * mu) * k2 * k2;
            let (a11, a12, a22) = (mu * k2 + (l + mu) * ky * ky, -(l + mu) * kx * ky, mu * k2 + (l + mu) * kx * kx);
            let (p, q) = (bxh[i], byh[i]);
            bxh[i] = (p * a11 + q * a12) / det;
            byh[i] = (p * a12 + q * a22) / det;
        }
        self.fft.inverse(&bxh, u, &mut w);
        self.fft.inverse(&byh, v, &mut w);
        Ok(())
    }
}
