//! Viscous Burgers on periodic boxes, pseudo-spectral: 1D `u_t + (u²/2)_x = ν u_xx` and 2D coupled
//! `u_t + u u_x + v u_y = ν Δu`, `v_t + u v_x + v v_y = ν Δv`.

use num_complex::Complex64 as C;

use super::SpectralPde;
use super::fft::{FftWork, RealFft2};
use crate::{ConfigError, check_positive};

const ZERO: C = C::new(0.0, 0.0);

/// 1D viscous Burgers on `n` collocation points `x_i = i L / n` of a periodic domain of length L:
/// `N(v) = −(i k / 2) · M · R((I M v)²)` with M the 2/3-rule mask.
#[derive(Clone, Debug)]
pub struct SpectralBurgers1d {
    n: usize,
    length: f64,
    fft: RealFft2,
    symbol: Vec<f64>,
    /// −(i k / 2) on kept modes, 0 elsewhere
    half_ik: Vec<C>,
    /// mask as a complex multiplier
    mask: Vec<C>,
}

/// Scratch space of [`SpectralBurgers1d`].
pub struct Burgers1dWork {
    fft: FftWork,
    u: Vec<f64>,
    p: Vec<f64>,
    t: Vec<C>,
}

impl SpectralBurgers1d {
    /// The PDE on `n ≥ 4` points of a periodic domain of `length`.
    pub fn new(n: usize, length: f64) -> Result<Self, ConfigError> {
        if n < 4 {
            return Err(ConfigError::GridTooSmall { axis: "x", n, min: 4 });
        }
        check_positive("length", length)?;
        let fft = RealFft2::new(n, 1);
        let m = fft.spec_len();
        let mut symbol = vec![0.0; m];
        let mut half_ik = vec![ZERO; m];
        let mut mask = vec![ZERO; m];
        for i in 0..m {
            let (k, _) = fft.wavenumbers(i, length, 1.0);
            symbol[i] = -k * k;
            if fft.keeps(i) {
                mask[i] = C::new(1.0, 0.0);
                half_ik[i] = C::new(0.0, -0.5 * k);
            }
        }
        Ok(Self { n, length, fft, symbol, half_ik, mask })
    }

    /// Number of points.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Collocation points.
    pub fn points(&self) -> Vec<f64> {
        (0..self.n).map(|i| i as f64 * self.length / self.n as f64).collect()
    }
}

impl SpectralPde for SpectralBurgers1d {
    type Work = Burgers1dWork;
    /// the grid field u
    type Lin = Vec<f64>;

    fn lin(&self) -> Vec<f64> {
        vec![0.0; self.n]
    }

    fn n_phys(&self) -> usize {
        self.n
    }

    fn n_spec(&self) -> usize {
        self.fft.spec_len()
    }

    fn symbol(&self) -> &[f64] {
        &self.symbol
    }

    fn work(&self) -> Burgers1dWork {
        Burgers1dWork {
            fft: self.fft.work(),
            u: vec![0.0; self.n],
            p: vec![0.0; self.n],
            t: vec![ZERO; self.fft.spec_len()],
        }
    }

    fn to_spec(&self, u: &[f64], v: &mut [C], w: &mut Burgers1dWork) {
        self.fft.forward(u, v, &mut w.fft);
    }

    fn to_phys(&self, v: &[C], u: &mut [f64], w: &mut Burgers1dWork) {
        self.fft.inverse(v, u, &mut w.fft);
    }

    fn to_spec_adjoint(&self, g: &[C], out: &mut [f64], w: &mut Burgers1dWork) {
        self.fft.forward_adjoint(g, out, &mut w.fft);
    }

    fn to_phys_adjoint(&self, g: &[f64], out: &mut [C], w: &mut Burgers1dWork) {
        self.fft.inverse_adjoint(g, out, &mut w.fft);
    }

    fn nonlinear(&self, v: &[C], out: &mut [C], w: &mut Burgers1dWork) {
        self.fft.inverse_scaled(v, &self.mask, &mut w.u, &mut w.fft);
        self.square_to_spec(out, w);
    }

    fn linearise(&self, v: &[C], out: &mut [C], lin: &mut Vec<f64>, w: &mut Burgers1dWork) {
        self.fft.inverse_scaled(v, &self.mask, &mut w.u, &mut w.fft);
        lin.copy_from_slice(&w.u);
        self.square_to_spec(out, w);
    }

    fn nonlinear_jvp(&self, u: &Vec<f64>, dv: &[C], out: &mut [C], w: &mut Burgers1dWork) {
        self.fft.inverse_scaled(dv, &self.mask, &mut w.p, &mut w.fft);
        for (p, u) in w.p.iter_mut().zip(u) {
            *p *= 2.0 * u;
        }
        self.fft.forward(&w.p, out, &mut w.fft);
        for (o, m) in out.iter_mut().zip(&self.half_ik) {
            *o *= m;
        }
    }

    fn nonlinear_vjp(&self, u: &Vec<f64>, g: &[C], out: &mut [C], w: &mut Burgers1dWork) {
        for ((t, g), m) in w.t.iter_mut().zip(g).zip(&self.half_ik) {
            *t = g * m.conj();
        }
        self.fft.forward_adjoint(&w.t, &mut w.p, &mut w.fft);
        for (p, u) in w.p.iter_mut().zip(u) {
            *p *= 2.0 * u;
        }
        self.fft.inverse_adjoint(&w.p, out, &mut w.fft);
        for (o, m) in out.iter_mut().zip(&self.mask) {
            *o *= m;
        }
    }
}

impl SpectralBurgers1d {
    /// `out = −(i k / 2) M R(u²)` for the grid field in `w.u` (overwritten).
    fn square_to_spec(&self, out: &mut [C], w: &mut Burgers1dWork) {
        for x in w.u.iter_mut() {
            *x *= *x;
        }
        self.fft.forward(&w.u, out, &mut w.fft);
        for (o, m) in out.iter_mut().zip(&self.half_ik) {
            *o *= m;
        }
    }
}

/// 2D coupled viscous Burgers on an `ny × nx` periodic grid of size `lx × ly`; state layout `(2, ny, nx)`.
/// `N_u = −M R(u u_x + v u_y)`, `N_v = −M R(u v_x + v v_y)`, derivatives spectral, products on the grid,
/// M the 2/3-rule mask.
#[derive(Clone, Debug)]
pub struct SpectralBurgers2d {
    nx: usize,
    ny: usize,
    fft: RealFft2,
    symbol: Vec<f64>,
    /// multipliers for one component: M, i kx M, i ky M, −M
    mask: Vec<C>,
    ikx: Vec<C>,
    iky: Vec<C>,
    neg_mask: Vec<C>,
}

/// Scratch space of [`SpectralBurgers2d`].
pub struct Burgers2dWork {
    fft: FftWork,
    /// u, v, u_x, u_y, v_x, v_y on the grid
    f: [Vec<f64>; 6],
    /// tangents or cotangents of the same
    d: [Vec<f64>; 6],
    t: Vec<C>,
}

impl SpectralBurgers2d {
    /// The PDE on `ny × nx` points (each ≥ 4) of a periodic `length = [lx, ly]` box.
    pub fn new(nx: usize, ny: usize, length: [f64; 2]) -> Result<Self, ConfigError> {
        let fft = super::periodic_box(nx, ny, length)?;
        let m = fft.spec_len();
        let mut symbol = vec![0.0; 2 * m];
        let (mut mask, mut ikx, mut iky, mut neg_mask) = (vec![ZERO; m], vec![ZERO; m], vec![ZERO; m], vec![ZERO; m]);
        for i in 0..m {
            let (kx, ky) = fft.wavenumbers(i, length[0], length[1]);
            symbol[i] = -(kx * kx + ky * ky);
            symbol[m + i] = symbol[i];
            if fft.keeps(i) {
                mask[i] = C::new(1.0, 0.0);
                neg_mask[i] = C::new(-1.0, 0.0);
                ikx[i] = C::new(0.0, kx);
                iky[i] = C::new(0.0, ky);
            }
        }
        Ok(Self { nx, ny, fft, symbol, mask, ikx, iky, neg_mask })
    }

    /// Grid shape `(ny, nx)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.ny, self.nx)
    }

    fn m(&self) -> usize {
        self.fft.spec_len()
    }

    /// Grid fields u, v, u_x, u_y, v_x, v_y of the spectrum `v` into `f`.
    fn fields(&self, v: &[C], f: &mut [Vec<f64>; 6], w: &mut FftWork) {
        let m = self.m();
        let (vu, vv) = v.split_at(m);
        let mults = [&self.mask, &self.mask, &self.ikx, &self.iky, &self.ikx, &self.iky];
        for (k, (field, mult)) in f.iter_mut().zip(mults).enumerate() {
            let src = if k == 0 || k == 2 || k == 3 { vu } else { vv };
            self.fft.inverse_scaled(src, mult, field, w);
        }
    }
}

impl SpectralPde for SpectralBurgers2d {
    type Work = Burgers2dWork;
    /// the grid fields u, v, u_x, u_y, v_x, v_y
    type Lin = [Vec<f64>; 6];

    fn lin(&self) -> [Vec<f64>; 6] {
        std::array::from_fn(|_| vec![0.0; self.nx * self.ny])
    }

    fn n_phys(&self) -> usize {
        2 * self.nx * self.ny
    }

    fn n_spec(&self) -> usize {
        2 * self.m()
    }

    fn symbol(&self) -> &[f64] {
        &self.symbol
    }

    fn work(&self) -> Burgers2dWork {
        let g = self.nx * self.ny;
        Burgers2dWork {
            fft: self.fft.work(),
            f: std::array::from_fn(|_| vec![0.0; g]),
            d: std::array::from_fn(|_| vec![0.0; g]),
            t: vec![ZERO; self.m()],
        }
    }

    fn to_spec(&self, u: &[f64], v: &mut [C], w: &mut Burgers2dWork) {
        let (g, m) = (self.nx * self.ny, self.m());
        self.fft.forward(&u[..g], &mut v[..m], &mut w.fft);
        self.fft.forward(&u[g..], &mut v[m..], &mut w.fft);
    }

    fn to_phys(&self, v: &[C], u: &mut [f64], w: &mut Burgers2dWork) {
        let (g, m) = (self.nx * self.ny, self.m());
        self.fft.inverse(&v[..m], &mut u[..g], &mut w.fft);
        self.fft.inverse(&v[m..], &mut u[g..], &mut w.fft);
    }

    fn to_spec_adjoint(&self, gs: &[C], out: &mut [f64], w: &mut Burgers2dWork) {
        let (g, m) = (self.nx * self.ny, self.m());
        self.fft.forward_adjoint(&gs[..m], &mut out[..g], &mut w.fft);
        self.fft.forward_adjoint(&gs[m..], &mut out[g..], &mut w.fft);
    }

    fn to_phys_adjoint(&self, gp: &[f64], out: &mut [C], w: &mut Burgers2dWork) {
        let (g, m) = (self.nx * self.ny, self.m());
        self.fft.inverse_adjoint(&gp[..g], &mut out[..m], &mut w.fft);
        self.fft.inverse_adjoint(&gp[g..], &mut out[m..], &mut w.fft);
    }

    fn nonlinear(&self, v: &[C], out: &mut [C], w: &mut Burgers2dWork) {
        self.fields(v, &mut w.f, &mut w.fft);
        self.products_to_spec(out, w);
    }

    fn linearise(&self, v: &[C], out: &mut [C], lin: &mut [Vec<f64>; 6], w: &mut Burgers2dWork) {
        self.fields(v, lin, &mut w.fft);
        for (f, l) in w.f.iter_mut().zip(lin.iter()) {
            f.copy_from_slice(l);
        }
        self.products_to_spec(out, w);
    }

    fn nonlinear_jvp(&self, lin: &[Vec<f64>; 6], dv: &[C], out: &mut [C], w: &mut Burgers2dWork) {
        let m = self.m();
        self.fields(dv, &mut w.d, &mut w.fft);
        let [u, vv, ux, uy, vx, vy] = lin;
        let [du, dvv, dux, duy, dvx, dvy] = &mut w.d;
        for i in 0..u.len() {
            let pu = du[i] * ux[i] + u[i] * dux[i] + dvv[i] * uy[i] + vv[i] * duy[i];
            let pv = du[i] * vx[i] + u[i] * dvx[i] + dvv[i] * vy[i] + vv[i] * dvy[i];
            du[i] = pu;
            dvv[i] = pv;
        }
        let (ou, ov) = out.split_at_mut(m);
        self.fft.forward(du, ou, &mut w.fft);
        self.fft.forward(dvv, ov, &mut w.fft);
        for ((a, b), nm) in ou.iter_mut().zip(ov.iter_mut()).zip(&self.neg_mask) {
            *a *= nm;
            *b *= nm;
        }
    }

    fn nonlinear_vjp(&self, lin: &[Vec<f64>; 6], g: &[C], out: &mut [C], w: &mut Burgers2dWork) {
        let m = self.m();
        // grid cotangents of the two products
        let [pu, pv, bu, bv, b4, _] = &mut w.d;
        for (t, (gi, nm)) in w.t.iter_mut().zip(g[..m].iter().zip(&self.neg_mask)) {
            *t = gi * nm;
        }
        self.fft.forward_adjoint(&w.t, pu, &mut w.fft);
        for (t, (gi, nm)) in w.t.iter_mut().zip(g[m..].iter().zip(&self.neg_mask)) {
            *t = gi * nm;
        }
        self.fft.forward_adjoint(&w.t, pv, &mut w.fft);
        let [u, vv, ux, uy, vx, vy] = lin;
        for i in 0..u.len() {
            bu[i] = pu[i] * ux[i] + pv[i] * vx[i];
            bv[i] = pu[i] * uy[i] + pv[i] * vy[i];
        }
        let (ou, ov) = out.split_at_mut(m);
        // ū = M Iᵀ(bu) + conj(i kx M) Iᵀ(pu u) + conj(i ky M) Iᵀ(pu v); likewise for v with pv
        self.fft.inverse_adjoint(bu, ou, &mut w.fft);
        self.fft.inverse_adjoint(bv, ov, &mut w.fft);
        for (o, mk) in ou.iter_mut().zip(&self.mask) {
            *o *= mk;
        }
        for (o, mk) in ov.iter_mut().zip(&self.mask) {
            *o *= mk;
        }
        for (p, o) in [(&*pu, &mut *ou), (&*pv, &mut *ov)] {
            for (dir, mult) in [(&self.ikx, u), (&self.iky, vv)] {
                for i in 0..u.len() {
                    b4[i] = p[i] * mult[i];
                }
                self.fft.inverse_adjoint(b4, &mut w.t, &mut w.fft);
                for ((oi, ti), ki) in o.iter_mut().zip(&w.t).zip(dir) {
                    *oi += ti * ki.conj();
                }
            }
        }
    }
}

impl SpectralBurgers2d {
    /// `out = −M R(u u_x + v u_y), −M R(u v_x + v v_y)` from the grid fields in `w.f`.
    fn products_to_spec(&self, out: &mut [C], w: &mut Burgers2dWork) {
        let m = self.m();
        let [u, vv, ux, uy, vx, vy] = &w.f;
        let [pu, pv, ..] = &mut w.d;
        for i in 0..u.len() {
            pu[i] = u[i] * ux[i] + vv[i] * uy[i];
            pv[i] = u[i] * vx[i] + vv[i] * vy[i];
        }
        let (ou, ov) = out.split_at_mut(m);
        self.fft.forward(pu, ou, &mut w.fft);
        self.fft.forward(pv, ov, &mut w.fft);
        for ((a, b), nm) in ou.iter_mut().zip(ov.iter_mut()).zip(&self.neg_mask) {
            *a *= nm;
            *b *= nm;
        }
    }
}
