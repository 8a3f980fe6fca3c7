//! Real 2D FFT (1D when `ny = 1`) with scratch-taking, allocation-free transforms and their exact adjoints.
//!
//! Spectral layout: `nkx = nx/2 + 1` columns of `ny` complex values, `index = kx * ny + ky` (ky in FFT order).
//! Adjoints are with respect to the real inner products `Σ x y` on physical arrays and `Σ Re(conj(a) b)` on
//! spectra.

use std::sync::Arc;

use num_complex::Complex64 as C;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// Plans of a real 2D FFT on an `ny × nx` grid (x fastest).
#[derive(Clone)]
pub struct RealFft2 {
    nx: usize,
    ny: usize,
    nkx: usize,
    r2c: Arc<dyn RealToComplex<f64>>,
    c2r: Arc<dyn ComplexToReal<f64>>,
    fwd_y: Arc<dyn Fft<f64>>,
    inv_y: Arc<dyn Fft<f64>>,
    scratch: usize,
}

impl std::fmt::Debug for RealFft2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RealFft2 {{ nx: {}, ny: {} }}", self.nx, self.ny)
    }
}

/// Scratch space of [`RealFft2`].
pub struct FftWork {
    row: Vec<f64>,
    rowc: Vec<C>,
    buf: Vec<C>,
    scratch: Vec<C>,
}

impl RealFft2 {
    /// Plans for an `ny × nx` grid (`ny = 1` for 1D).
    pub fn new(nx: usize, ny: usize) -> Self {
        let mut rp = RealFftPlanner::<f64>::new();
        let r2c = rp.plan_fft_forward(nx);
        let c2r = rp.plan_fft_inverse(nx);
        let mut cp = FftPlanner::<f64>::new();
        let fwd_y = cp.plan_fft_forward(ny);
        let inv_y = cp.plan_fft_inverse(ny);
        let scratch = r2c
            .get_scratch_len()
            .max(c2r.get_scratch_len())
            .max(fwd_y.get_inplace_scratch_len())
            .max(inv_y.get_inplace_scratch_len());
        Self { nx, ny, nkx: nx / 2 + 1, r2c, c2r, fwd_y, inv_y, scratch }
    }

    /// Number of complex values of a spectrum.
    pub fn spec_len(&self) -> usize {
        self.nkx * self.ny
    }

    /// Number of x wavenumbers (`nx/2 + 1`).
    pub fn nkx(&self) -> usize {
        self.nkx
    }

    /// Scratch space for one thread.
    pub fn work(&self) -> FftWork {
        FftWork {
            row: vec![0.0; self.nx],
            rowc: vec![C::new(0.0, 0.0); self.nkx],
            buf: vec![C::new(0.0, 0.0); self.spec_len()],
            scratch: vec![C::new(0.0, 0.0); self.scratch],
        }
    }

    /// Weight of column kx in the Hermitian sum: 1 for kx = 0 and the x-Nyquist column, 2 otherwise.
    #[inline]
    pub fn hermitian_weight(&self, kx: usize) -> f64 {
        if kx == 0 || (self.nx % 2 == 0 && kx == self.nx / 2) { 1.0 } else { 2.0 }
    }

    /// Unnormalised forward transform `out = R u`.
    pub fn forward(&self, u: &[f64], out: &mut [C], w: &mut FftWork) {
        let (nx, ny) = (self.nx, self.ny);
        for y in 0..ny {
            w.row.copy_from_slice(&u[y * nx..(y + 1) * nx]);
            self.r2c
                .process_with_scratch(&mut w.row, &mut w.rowc, &mut w.scratch)
                .expect("buffer lengths are fixed by the plan");
            for (kx, c) in w.rowc.iter().enumerate() {
                out[kx * ny + y] = *c;
            }
        }
        if ny > 1 {
            self.fwd_y.process_with_scratch(out, &mut w.scratch);
        }
    }

    /// Unnormalised Hermitian synthesis of `w.buf` into `out` (destroys `w.buf`): the imaginary parts that a
    /// real signal cannot carry (kx = 0 and the x-Nyquist column after the y transform) are dropped.
    fn synthesise_buf(&self, out: &mut [f64], w: &mut FftWork) {
        let (nx, ny, nkx) = (self.nx, self.ny, self.nkx);
        if ny > 1 {
            self.inv_y.process_with_scratch(&mut w.buf, &mut w.scratch);
        }
        for y in 0..ny {
            for kx in 0..nkx {
                w.rowc[kx] = w.buf[kx * ny + y];
            }
            w.rowc[0].im = 0.0;
            if nx % 2 == 0 {
                w.rowc[nkx - 1].im = 0.0;
            }
            self.c2r
                .process_with_scratch(&mut w.rowc, &mut out[y * nx..(y + 1) * nx], &mut w.scratch)
                .expect("buffer lengths are fixed by the plan");
        }
    }

    /// Normalised inverse transform `out = I v = R⁻¹ v` (reads only the Hermitian part of `v`).
    pub fn inverse(&self, v: &[C], out: &mut [f64], w: &mut FftWork) {
        w.buf.copy_from_slice(v);
        self.synthesise_buf(out, w);
        let s = 1.0 / (self.nx * self.ny) as f64;
        out.iter_mut().for_each(|x| *x *= s);
    }

    /// Inverse of a spectrum multiplied entrywise by `mult` first: `out = I(mult ⊙ v)`.
    pub fn inverse_scaled(&self, v: &[C], mult: &[C], out: &mut [f64], w: &mut FftWork) {
        for ((b, a), m) in w.buf.iter_mut().zip(v).zip(mult) {
            *b = a * m;
        }
        self.synthesise_buf(out, w);
        let s = 1.0 / (self.nx * self.ny) as f64;
        out.iter_mut().for_each(|x| *x *= s);
    }

    /// Adjoint of [`forward`](Self::forward): `out = Rᵀ g`.
    pub fn forward_adjoint(&self, g: &[C], out: &mut [f64], w: &mut FftWork) {
        let ny = self.ny;
        for kx in 0..self.nkx {
            let s = 1.0 / self.hermitian_weight(kx);
            for y in 0..ny {
                w.buf[kx * ny + y] = g[kx * ny + y] * s;
            }
        }
        self.synthesise_buf(out, w);
    }

    /// Adjoint of [`inverse`](Self::inverse): `out = Iᵀ g`.
    pub fn inverse_adjoint(&self, g: &[f64], out: &mut [C], w: &mut FftWork) {
        self.forward(g, out, w);
        let ny = self.ny;
        let s = 1.0 / (self.nx * self.ny) as f64;
        for kx in 0..self.nkx {
            let f = s * self.hermitian_weight(kx);
            for c in &mut out[kx * ny..(kx + 1) * ny] {
                *c *= f;
            }
        }
    }

    /// Angular wavenumbers `(kx, ky)` of spectral entry `index` on a `lx × ly` periodic box.
    pub fn wavenumbers(&self, index: usize, lx: f64, ly: f64) -> (f64, f64) {
        let (kx, j) = (index / self.ny, index % self.ny);
        let jy = if j <= self.ny / 2 { j as f64 } else { j as f64 - self.ny as f64 };
        (2.0 * std::f64::consts::PI / lx * kx as f64, 2.0 * std::f64::consts::PI / ly * jy)
    }

    /// Whether entry `index` survives the 2/3-rule dealiasing (|k_x| < nx/3 and |k_y| < ny/3 in grid units).
    pub fn keeps(&self, index: usize) -> bool {
        let (kx, j) = (index / self.ny, index % self.ny);
        let jy = if j <= self.ny / 2 { j } else { self.ny - j };
        3 * kx < self.nx && 3 * jy < self.ny
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_vec(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn re_dot(a: &[C], b: &[C]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x.re * y.re + x.im * y.im).sum()
    }

    #[test]
    fn round_trip_and_adjoints() {
        for (nx, ny) in [(16, 1), (15, 1), (8, 6), (12, 5)] {
            let f = RealFft2::new(nx, ny);
            let mut w = f.work();
            let u = rand_vec(nx * ny, 1);
            let mut v = vec![C::new(0.0, 0.0); f.spec_len()];
            f.forward(&u, &mut v, &mut w);
            let mut back = vec![0.0; nx * ny];
            f.inverse(&v, &mut back, &mut w);
            for (a, b) in u.iter().zip(&back) {
                assert!((a - b).abs() < 1e-13);
            }
            // <G, R u> = <Rᵀ G, u> for an arbitrary (non-Hermitian) G
            let gr = rand_vec(2 * f.spec_len(), 2);
            let g: Vec<C> = gr.chunks(2).map(|c| C::new(c[0], c[1])).collect();
            let mut rt = vec![0.0; nx * ny];
            f.forward_adjoint(&g, &mut rt, &mut w);
            let lhs = re_dot(&g, &v);
            let rhs: f64 = rt.iter().zip(&u).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0), "forward adjoint {nx}x{ny}: {lhs} {rhs}");
            // <g, I G> = <Iᵀ g, G>
            let gp = rand_vec(nx * ny, 3);
            let mut ig = vec![0.0; nx * ny];
            f.inverse(&g, &mut ig, &mut w);
            let mut it = vec![C::new(0.0, 0.0); f.spec_len()];
            f.inverse_adjoint(&gp, &mut it, &mut w);
            let lhs: f64 = gp.iter().zip(&ig).map(|(a, b)| a * b).sum();
            let rhs = re_dot(&it, &g);
            assert!((lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0), "inverse adjoint {nx}x{ny}: {lhs} {rhs}");
        }
    }
}
