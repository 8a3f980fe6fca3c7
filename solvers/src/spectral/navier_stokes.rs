//! Incompressible Navier–Stokes on a periodic box in vorticity form, pseudo-spectral:
//! `ω_t + u·∇ω = ν Δω − α ω + f`, with the velocity from the stream function, `Δψ = −ω`, `u = ψ_y`, `v = −ψ_x`
//! (so `û = i k_y ω̂ / |k|²`, `v̂ = −i k_x ω̂ / |k|²`, and the mean of ω carries no velocity).

use num_complex::Complex64 as C;

use super::SpectralPde;
use super::fft::{FftWork, RealFft2};
use crate::{ConfigError, check_non_negative};

const ZERO: C = C::new(0.0, 0.0);

/// 2D incompressible Navier–Stokes in vorticity form on an `ny × nx` periodic grid of size `lx × ly`; state: the
/// vorticity `(ny, nx)`. `N(ω̂) = −M R(u ω_x + v ω_y) − α ω̂ + f̂`: derivatives and the velocity spectral, the
/// product on the grid, `M` the 2/3-rule mask, `α` a linear drag and `f` a steady vorticity source (e.g. the
/// curl of Kolmogorov forcing, [`kolmogorov_forcing`]).
#[derive(Clone, Debug)]
pub struct SpectralNavierStokes2d {
    nx: usize,
    ny: usize,
    length: [f64; 2],
    fft: RealFft2,
    symbol: Vec<f64>,
    /// multipliers from ω̂: u, v, ω_x, ω_y (all masked)
    mult: [Vec<C>; 4],
    neg_mask: Vec<C>,
    drag: f64,
    /// the source's spectrum (masked), zero without forcing
    source: Vec<C>,
}

/// Scratch space of [`SpectralNavierStokes2d`].
pub struct NavierStokes2dWork {
    fft: FftWork,
    /// u, v, ω_x, ω_y on the grid
    f: [Vec<f64>; 4],
    /// tangents or cotangents of the same, and of the product
    d: [Vec<f64>; 5],
    t: Vec<C>,
}

/// The vorticity source of Kolmogorov flow on a `ny × nx` grid of a box of height `ly`: the curl of the body force
/// `(A sin(2π k y / ly), 0)`, that is `f = −A (2π k / ly) cos(2π k y / ly)` at the points `y_j = j ly / ny`.
pub fn kolmogorov_forcing(nx: usize, ny: usize, ly: f64, amplitude: f64, k: usize) -> Vec<f64> {
    let kk = 2.0 * std::f64::consts::PI * k as f64 / ly;
    (0..ny * nx).map(|p| -amplitude * kk * (kk * (p / nx) as f64 * ly / ny as f64).cos()).collect()
}

impl SpectralNavierStokes2d {
    /// The equations on `ny × nx` points (each ≥ 4) of a periodic `length = [lx, ly]` box, without drag or forcing.
    pub fn new(nx: usize, ny: usize, length: [f64; 2]) -> Result<Self, ConfigError> {
        let fft = super::periodic_box(nx, ny, length)?;
        let m = fft.spec_len();
        let mut symbol = vec![0.0; m];
        let mut mult: [Vec<C>; 4] = std::array::from_fn(|_| vec![ZERO; m]);
        let mut neg_mask = vec![ZERO; m];
        for i in 0..m {
            let (kx, ky) = fft.wavenumbers(i, length[0], length[1]);
            let k2 = kx * kx + ky * ky;
            symbol[i] = -k2;
            if fft.keeps(i) {
                neg_mask[i] = C::new(-1.0, 0.0);
                if k2 > 0.0 {
                    mult[0][i] = C::new(0.0, ky / k2);
                    mult[1][i] = C::new(0.0, -kx / k2);
                }
                mult[2][i] = C::new(0.0, kx);
                mult[3][i] = C::new(0.0, ky);
            }
        }
        Ok(Self { nx, ny, length, fft, symbol, mult, neg_mask, drag: 0.0, source: vec![ZERO; m] })
    }

    /// With the linear drag `−α ω` (`α ≥ 0`).
    pub fn with_drag(mut self, alpha: f64) -> Result<Self, ConfigError> {
        check_non_negative("drag", alpha)?;
        self.drag = alpha;
        Ok(self)
    }

    /// With the steady vorticity source `f` on the grid (`ny × nx` values, finite), dealiased like the rest.
    pub fn with_forcing(mut self, f: &[f64]) -> Result<Self, ConfigError> {
        let g = self.nx * self.ny;
        if f.len() != g {
            return Err(ConfigError::Shape {
                what: "vorticity source",
                expected: vec![self.ny, self.nx],
                got: vec![f.len()],
            });
        }
        if let Some(v) = f.iter().find(|v| !v.is_finite()) {
            return Err(ConfigError::NotFinite { name: "vorticity source", value: *v });
        }
        let mut w = self.fft.work();
        self.fft.forward(f, &mut self.source, &mut w);
        for (s, nm) in self.source.iter_mut().zip(&self.neg_mask) {
            *s *= -nm;
        }
        Ok(self)
    }

    /// Grid shape `(ny, nx)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.ny, self.nx)
    }

    /// The box `[lx, ly]`.
    pub fn length(&self) -> [f64; 2] {
        self.length
    }

    /// The velocity `(u, v)` on the grid (`2 × ny × nx`, u first) of the vorticity `omega` on the grid.
    pub fn velocity(&self, omega: &[f64]) -> Vec<f64> {
        let (g, m) = (self.nx * self.ny, self.fft.spec_len());
        let mut w = self.fft.work();
        let mut spec = vec![ZERO; m];
        self.fft.forward(&omega[..g], &mut spec, &mut w);
        let mut out = vec![0.0; 2 * g];
        let (u, v) = out.split_at_mut(g);
        self.fft.inverse_scaled(&spec, &self.mult[0], u, &mut w);
        self.fft.inverse_scaled(&spec, &self.mult[1], v, &mut w);
        out
    }

    fn m(&self) -> usize {
        self.fft.spec_len()
    }

    /// Grid fields u, v, ω_x, ω_y of the spectrum `v` into `f`.
    fn fields(&self, v: &[C], f: &mut [Vec<f64>; 4], w: &mut FftWork) {
        for (field, mult) in f.iter_mut().zip(&self.mult) {
            self.fft.inverse_scaled(v, mult, field, w);
        }
    }

    /// `out = −M R(u ω_x + v ω_y) − α v + f̂` from the grid fields in `w.f`.
    fn products_to_spec(&self, v: &[C], out: &mut [C], w: &mut NavierStokes2dWork) {
        let [u, vv, wx, wy] = &w.f;
        let p = &mut w.d[4];
        for i in 0..u.len() {
            p[i] = u[i] * wx[i] + vv[i] * wy[i];
        }
        self.fft.forward(p, out, &mut w.fft);
        for (((o, nm), vi), s) in out.iter_mut().zip(&self.neg_mask).zip(v).zip(&self.source) {
            *o = *o * nm - vi * self.drag + s;
        }
    }
}

impl SpectralPde for SpectralNavierStokes2d {
    type Work = NavierStokes2dWork;
    /// the grid fields u, v, ω_x, ω_y
    type Lin = [Vec<f64>; 4];

    fn lin(&self) -> [Vec<f64>; 4] {
        std::array::from_fn(|_| vec![0.0; self.nx * self.ny])
    }

    fn n_phys(&self) -> usize {
        self.nx * self.ny
    }

    fn n_spec(&self) -> usize {
        self.m()
    }

    fn symbol(&self) -> &[f64] {
        &self.symbol
    }

    fn work(&self) -> NavierStokes2dWork {
        let g = self.nx * self.ny;
        NavierStokes2dWork {
            fft: self.fft.work(),
            f: std::array::from_fn(|_| vec![0.0; g]),
            d: std::array::from_fn(|_| vec![0.0; g]),
            t: vec![ZERO; self.m()],
        }
    }

    fn to_spec(&self, u: &[f64], v: &mut [C], w: &mut NavierStokes2dWork) {
        self.fft.forward(u, v, &mut w.fft);
    }

    fn to_phys(&self, v: &[C], u: &mut [f64], w: &mut NavierStokes2dWork) {
        self.fft.inverse(v, u, &mut w.fft);
    }

    fn to_spec_adjoint(&self, g: &[C], out: &mut [f64], w: &mut NavierStokes2dWork) {
        self.fft.forward_adjoint(g, out, &mut w.fft);
    }

    fn to_phys_adjoint(&self, g: &[f64], out: &mut [C], w: &mut NavierStokes2dWork) {
        self.fft.inverse_adjoint(g, out, &mut w.fft);
    }

    fn nonlinear(&self, v: &[C], out: &mut [C], w: &mut NavierStokes2dWork) {
        self.fields(v, &mut w.f, &mut w.fft);
        self.products_to_spec(v, out, w);
    }

    fn linearise(&self, v: &[C], out: &mut [C], lin: &mut [Vec<f64>; 4], w: &mut NavierStokes2dWork) {
        self.fields(v, lin, &mut w.fft);
        for (f, l) in w.f.iter_mut().zip(lin.iter()) {
            f.copy_from_slice(l);
        }
        self.products_to_spec(v, out, w);
    }

    fn nonlinear_jvp(&self, lin: &[Vec<f64>; 4], dv: &[C], out: &mut [C], w: &mut NavierStokes2dWork) {
        let [d0, d1, d2, d3, p] = &mut w.d;
        for (field, mult) in [&mut *d0, &mut *d1, &mut *d2, &mut *d3].into_iter().zip(&self.mult) {
            self.fft.inverse_scaled(dv, mult, field, &mut w.fft);
        }
        let [u, vv, wx, wy] = lin;
        for i in 0..u.len() {
            p[i] = d0[i] * wx[i] + u[i] * d2[i] + d1[i] * wy[i] + vv[i] * d3[i];
        }
        self.fft.forward(p, out, &mut w.fft);
        for ((o, nm), di) in out.iter_mut().zip(&self.neg_mask).zip(dv) {
            *o = *o * nm - di * self.drag;
        }
    }

    fn nonlinear_vjp(&self, lin: &[Vec<f64>; 4], g: &[C], out: &mut [C], w: &mut NavierStokes2dWork) {
        // the grid cotangent of the product
        let [b0, b1, b2, b3, p] = &mut w.d;
        for (t, (gi, nm)) in w.t.iter_mut().zip(g.iter().zip(&self.neg_mask)) {
            *t = gi * nm;
        }
        self.fft.forward_adjoint(&w.t, p, &mut w.fft);
        let [u, vv, wx, wy] = lin;
        for i in 0..u.len() {
            b0[i] = p[i] * wx[i];
            b1[i] = p[i] * wy[i];
            b2[i] = p[i] * u[i];
            b3[i] = p[i] * vv[i];
        }
        // ω̄ = Σ_f conj(mult_f) Iᵀ(b_f) − α g
        for (o, gi) in out.iter_mut().zip(g) {
            *o = -gi * self.drag;
        }
        for (b, mult) in [&*b0, &*b1, &*b2, &*b3].into_iter().zip(&self.mult) {
            self.fft.inverse_adjoint(b, &mut w.t, &mut w.fft);
            for ((o, ti), k) in out.iter_mut().zip(&w.t).zip(mult) {
                *o += ti * k.conj();
            }
        }
    }
}
