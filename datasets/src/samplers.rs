//! Initial-condition and parameter samplers. Every draw comes from a [`SampleRng`], so sample `i` depends only on
//! `(seed, i)`.

use ansatz_solvers::spectral::RealFft2;
use num_complex::Complex64 as C;
use std::f64::consts::PI;

use crate::rng::SampleRng;

/// Where the values of a field live: `ny × nx` points (ny = 1 in 1D) on a `lx × ly` box starting at the origin,
/// cell centres (finite volume: the sampler returns exact cell averages) or collocation points `x_i = i h`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleGrid {
    pub nx: usize,
    pub ny: usize,
    pub lx: f64,
    pub ly: f64,
    pub cell_centred: bool,
}

impl SampleGrid {
    fn h(&self) -> (f64, f64) {
        (self.lx / self.nx as f64, self.ly / self.ny as f64)
    }

    /// x coordinate of column i.
    pub fn x(&self, i: usize) -> f64 {
        (i as f64 + if self.cell_centred { 0.5 } else { 0.0 }) * self.h().0
    }

    /// y coordinate of row j.
    pub fn y(&self, j: usize) -> f64 {
        (j as f64 + if self.cell_centred { 0.5 } else { 0.0 }) * self.h().1
    }
}

/// `sin(z)/z`, 1 at 0: the factor that turns a point value of a sine into its cell average.
#[inline]
fn sinc(z: f64) -> f64 {
    if z.abs() < 1e-8 { 1.0 - z * z / 6.0 } else { z.sin() / z }
}

/// A random initial condition for each velocity component.
#[derive(Clone, Debug, PartialEq)]
pub enum InitialCondition {
    /// A sum of `waves` sines `A sin(2π (m_x x / L_x + m_y y / L_y) + φ)` with integer wavenumbers up to
    /// `max_mode` (not both zero), amplitudes A uniform in [0, amplitude) and phases uniform (PDEBench's Burgers
    /// initial conditions in 1D).
    Fourier { max_mode: usize, waves: usize, amplitude: f64 },
    /// A zero-mean Gaussian random field with power spectrum `(4π²|m|² + τ²)^(−α)` (amplitude spectrum
    /// `(4π²|m|² + τ²)^(−α/2)`, m the integer wavenumber), scaled to root-mean-square `amplitude`.
    Grf { alpha: f64, tau: f64, amplitude: f64 },
}

impl InitialCondition {
    /// A one-line description for file metadata.
    pub fn describe(&self) -> String {
        match self {
            InitialCondition::Fourier { max_mode, waves, amplitude } => {
                format!("fourier: {waves} random sines, modes up to {max_mode}, amplitudes uniform in [0, {amplitude})")
            }
            InitialCondition::Grf { alpha, tau, amplitude } => {
                format!(
                    "grf: Gaussian random field, amplitude spectrum (4π²|m|² + τ²)^(-α/2), α = {alpha}, τ = {tau}, rms {amplitude}"
                )
            }
        }
    }

    /// Draws `components` fields on `grid`, layout `(components, ny, nx)`.
    pub fn sample(&self, rng: &mut SampleRng, grid: &SampleGrid, components: usize) -> Vec<f64> {
        let m = grid.nx * grid.ny;
        let mut out = vec![0.0; components * m];
        for c in 0..components {
            let f = &mut out[c * m..(c + 1) * m];
            match *self {
                InitialCondition::Fourier { max_mode, waves, amplitude } => {
                    fourier(rng, grid, f, max_mode, waves, amplitude)
                }
                InitialCondition::Grf { alpha, tau, amplitude } => grf(rng, grid, f, alpha, tau, amplitude),
            }
        }
        out
    }
}

fn fourier(rng: &mut SampleRng, g: &SampleGrid, f: &mut [f64], max_mode: usize, waves: usize, amplitude: f64) {
    let (hx, hy) = g.h();
    let two_d = g.ny > 1;
    let kmax = max_mode.max(1);
    for _ in 0..waves {
        let (mx, my) = loop {
            let mx = rng.int(0, kmax) as f64;
            let my = if two_d { rng.int(0, 2 * kmax) as f64 - kmax as f64 } else { 0.0 };
            if mx != 0.0 || my != 0.0 {
                break (mx, my);
            }
        };
        let a = rng.range(0.0, amplitude);
        let phi = rng.range(0.0, 2.0 * PI);
        let (kx, ky) = (2.0 * PI * mx / g.lx, 2.0 * PI * my / g.ly);
        let avg =
            if g.cell_centred { sinc(0.5 * kx * hx) * if two_d { sinc(0.5 * ky * hy) } else { 1.0 } } else { 1.0 };
        for j in 0..g.ny {
            let y = if two_d { g.y(j) } else { 0.0 };
            for i in 0..g.nx {
                f[j * g.nx + i] += a * avg * (kx * g.x(i) + ky * y + phi).sin();
            }
        }
    }
}

fn grf(rng: &mut SampleRng, g: &SampleGrid, f: &mut [f64], alpha: f64, tau: f64, amplitude: f64) {
    let fft = RealFft2::new(g.nx, g.ny);
    let mut w = fft.work();
    let n = fft.spec_len();
    let mut spec = vec![C::new(0.0, 0.0); n];
    let (hx, hy) = g.h();
    for (idx, s) in spec.iter_mut().enumerate() {
        let (kx, ky) = fft.wavenumbers(idx, g.lx, g.ly);
        let (mx, my) = (kx * g.lx / (2.0 * PI), ky * g.ly / (2.0 * PI));
        // drop the mean and the Nyquist modes (their sines vanish on the grid)
        let nyq_x = g.nx % 2 == 0 && (mx.abs() - (g.nx / 2) as f64).abs() < 0.5;
        let nyq_y = g.ny > 1 && g.ny % 2 == 0 && (my.abs() - (g.ny / 2) as f64).abs() < 0.5;
        if (mx == 0.0 && my == 0.0) || nyq_x || nyq_y {
            continue;
        }
        let amp = (4.0 * PI * PI * (mx * mx + my * my) + tau * tau).powf(-0.5 * alpha);
        let avg = if g.cell_centred { sinc(0.5 * kx * hx) * sinc(0.5 * ky * hy) } else { 1.0 };
        *s = C::new(rng.normal(), rng.normal()) * (amp * avg);
    }
    fft.inverse(&spec, f, &mut w);
    let rms = (f.iter().map(|v| v * v).sum::<f64>() / f.len() as f64).sqrt();
    if rms > 0.0 {
        let s = amplitude / rms;
        f.iter_mut().for_each(|v| *v *= s);
    }
}

/// A scalar parameter per sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Parameter {
    /// The same value for every sample.
    Fixed(f64),
    /// Uniform in [a, b).
    Uniform(f64, f64),
    /// Log-uniform in [a, b), a > 0.
    LogUniform(f64, f64),
}

impl Parameter {
    /// Draws a value.
    pub fn sample(&self, rng: &mut SampleRng) -> f64 {
        match *self {
            Parameter::Fixed(v) => v,
            Parameter::Uniform(a, b) => rng.range(a, b),
            Parameter::LogUniform(a, b) => rng.range(a.ln(), b.ln()).exp(),
        }
    }

    /// A one-line description for file metadata.
    pub fn describe(&self) -> String {
        match self {
            Parameter::Fixed(v) => format!("{v}"),
            Parameter::Uniform(a, b) => format!("uniform in [{a}, {b})"),
            Parameter::LogUniform(a, b) => format!("log-uniform in [{a}, {b})"),
        }
    }

    /// The largest value it can take.
    pub fn max(&self) -> f64 {
        match *self {
            Parameter::Fixed(v) => v,
            Parameter::Uniform(_, b) | Parameter::LogUniform(_, b) => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourier_cell_averages_are_exact() {
        // one wave: the cell average of the sampled field equals the quadrature of the point values
        let ic = InitialCondition::Fourier { max_mode: 3, waves: 1, amplitude: 1.0 };
        let fv = SampleGrid { nx: 16, ny: 1, lx: 1.0, ly: 1.0, cell_centred: true };
        let pts = SampleGrid { nx: 16 * 64, ny: 1, lx: 1.0, ly: 1.0, cell_centred: true };
        let a = ic.sample(&mut SampleRng::new(3, 0), &fv, 1);
        let p = ic.sample(&mut SampleRng::new(3, 0), &pts, 1);
        for i in 0..16 {
            let mean: f64 = p[i * 64..(i + 1) * 64].iter().sum::<f64>() / 64.0;
            assert!((mean - a[i]).abs() < 1e-3, "cell {i}: {mean} vs {}", a[i]);
        }
    }

    #[test]
    fn grf_has_the_requested_rms_and_depends_on_the_seed() {
        let ic = InitialCondition::Grf { alpha: 2.5, tau: 7.0, amplitude: 0.5 };
        let g = SampleGrid { nx: 32, ny: 16, lx: 1.0, ly: 0.5, cell_centred: false };
        let f = ic.sample(&mut SampleRng::new(1, 5), &g, 2);
        let m = 32 * 16;
        for c in 0..2 {
            let s = &f[c * m..(c + 1) * m];
            let rms = (s.iter().map(|v| v * v).sum::<f64>() / m as f64).sqrt();
            let mean = s.iter().sum::<f64>() / m as f64;
            assert!((rms - 0.5).abs() < 1e-12 && mean.abs() < 1e-12);
        }
        assert_eq!(f, ic.sample(&mut SampleRng::new(1, 5), &g, 2));
        assert_ne!(f, ic.sample(&mut SampleRng::new(1, 6), &g, 2));
    }

    #[test]
    fn log_uniform_stays_in_range() {
        let p = Parameter::LogUniform(1e-3, 1e-1);
        let mut r = SampleRng::new(0, 0);
        let v: Vec<f64> = (0..1000).map(|_| p.sample(&mut r)).collect();
        assert!(v.iter().all(|x| (1e-3..1e-1).contains(x)));
        let below = v.iter().filter(|x| **x < 1e-2).count();
        assert!((400..600).contains(&below), "{below} of 1000 below the geometric mean");
    }
}
