//! ETDRK4: fourth-order exponential time differencing Runge–Kutta (Cox & Matthews 2002,
//! doi:10.1006/jcph.2002.6995) with the φ-function coefficients evaluated by contour means (Kassam & Trefethen
//! 2005, doi:10.1137/S1064827502410633), and its exact tangent and adjoint, including the derivative with respect
//! to ν through the coefficients.

use num_complex::Complex64 as C;

use super::SpectralPde;
use crate::scheme::Stepper;
use crate::{ConfigError, check_non_negative, check_positive};

/// Points on the upper half of the contour circle (Kassam–Trefethen use 32).
const CONTOUR_POINTS: usize = 32;

/// Complex dual number `v + d ε`, for the coefficients and their derivatives in one contour mean.
#[derive(Clone, Copy)]
struct Dual {
    v: C,
    d: C,
}

impl Dual {
    fn exp(self) -> Self {
        let e = self.v.exp();
        Dual { v: e, d: e * self.d }
    }
    fn add(self, o: Dual) -> Dual {
        Dual { v: self.v + o.v, d: self.d + o.d }
    }
    fn mul(self, o: Dual) -> Dual {
        Dual { v: self.v * o.v, d: self.d * o.v + self.v * o.d }
    }
    fn div(self, o: Dual) -> Dual {
        Dual { v: self.v / o.v, d: (self.d * o.v - self.v * o.d) / (o.v * o.v) }
    }
    fn scale(self, s: f64) -> Dual {
        Dual { v: self.v * s, d: self.d * s }
    }
    fn plus(self, s: f64) -> Dual {
        Dual { v: self.v + s, d: self.d }
    }
}

/// ETDRK4 stepper for a [`SpectralPde`] with viscosity ν and time step dt; the coefficients (and their
/// ν-derivatives) are computed once in [`new`](Etdrk4::new).
#[derive(Clone, Debug)]
pub struct Etdrk4<P> {
    pde: P,
    nu: f64,
    dt: f64,
    /// e^{hL}, e^{hL/2}, Q, f1, f2, f3 (per spectral entry), and the same differentiated with respect to ν.
    c: [Vec<f64>; 6],
    dc: [Vec<f64>; 6],
}

const E: usize = 0;
const E2: usize = 1;
const Q: usize = 2;
const F1: usize = 3;
const F2: usize = 4;
const F3: usize = 5;

/// Scratch space of [`Etdrk4`].
pub struct Etdrk4Work<W, L> {
    pde: W,
    /// linearisation points of the four stages (filled by the tangent and adjoint passes)
    lin: [L; 4],
    /// stage states v, a, b, c and their nonlinear terms
    s: [Vec<C>; 4],
    n: [Vec<C>; 4],
    /// tangents / cotangents of the same
    ds: [Vec<C>; 4],
    dn: [Vec<C>; 4],
    t: Vec<C>,
}

impl<P: SpectralPde> Etdrk4<P> {
    /// Builds the stepper for viscosity `nu ≥ 0` and time step `dt > 0`.
    pub fn new(pde: P, nu: f64, dt: f64) -> Result<Self, ConfigError> {
        check_non_negative("nu", nu)?;
        check_positive("dt", dt)?;
        let n = pde.n_spec();
        let mut c: [Vec<f64>; 6] = std::array::from_fn(|_| vec![0.0; n]);
        let mut dc: [Vec<f64>; 6] = std::array::from_fn(|_| vec![0.0; n]);
        let h = dt;
        let roots: Vec<C> = (0..CONTOUR_POINTS)
            .map(|j| C::from_polar(1.0, std::f64::consts::PI * (j as f64 + 0.5) / CONTOUR_POINTS as f64))
            .collect();
        for (i, &s) in pde.symbol().iter().enumerate() {
            let z = h * nu * s;
            let dz = h * s;
            c[E][i] = z.exp();
            dc[E][i] = dz * z.exp();
            c[E2][i] = (0.5 * z).exp();
            dc[E2][i] = 0.5 * dz * (0.5 * z).exp();
            let mut acc = [C::new(0.0, 0.0); 8];
            for r in &roots {
                let w = Dual { v: C::new(z, 0.0) + r, d: C::new(dz, 0.0) };
                let ew = w.exp();
                let w3 = w.mul(w).mul(w);
                let q = w.scale(0.5).exp().plus(-1.0).div(w);
                // (−4 − w + e^w (4 − 3w + w²)) / w³
                let f1 = w.scale(-1.0).plus(-4.0).add(ew.mul(w.mul(w).add(w.scale(-3.0)).plus(4.0))).div(w3);
                // (2 + w + e^w (w − 2)) / w³
                let f2 = w.plus(2.0).add(ew.mul(w.plus(-2.0))).div(w3);
                // (−4 − 3w − w² + e^w (4 − w)) / w³
                let f3 =
                    w.mul(w).scale(-1.0).add(w.scale(-3.0)).plus(-4.0).add(ew.mul(w.scale(-1.0).plus(4.0))).div(w3);
                for (k, d) in [q, f1, f2, f3].iter().enumerate() {
                    acc[2 * k] += d.v;
                    acc[2 * k + 1] += d.d;
                }
            }
            let m = CONTOUR_POINTS as f64;
            for (k, slot) in [Q, F1, F2, F3].iter().enumerate() {
                c[*slot][i] = h * acc[2 * k].re / m;
                dc[*slot][i] = h * acc[2 * k + 1].re / m;
            }
        }
        Ok(Self { pde, nu, dt, c, dc })
    }

    /// The PDE.
    pub fn pde(&self) -> &P {
        &self.pde
    }

    /// The viscosity.
    pub fn nu(&self) -> f64 {
        self.nu
    }

    /// One step in Fourier space: `w.s[0]` holds v on entry; returns with the stage values and nonlinear terms
    /// in `w.s`, `w.n` and the new spectrum in `w.t`.
    /// With `keep`, the linearisation points of the stages are kept in `w.lin`.
    fn spectral_step(&self, w: &mut Etdrk4Work<P::Work, P::Lin>, keep: bool) {
        let c = &self.c;
        let [sv, sa, sb, sc] = &mut w.s;
        let [nv, na, nb, nc] = &mut w.n;
        let [lv, la, lb, lc] = &mut w.lin;
        let pde = &self.pde;
        let nonlinear = |v: &[C], out: &mut [C], lin: &mut P::Lin, pw: &mut P::Work| {
            if keep { pde.linearise(v, out, lin, pw) } else { pde.nonlinear(v, out, pw) }
        };
        nonlinear(sv, nv, lv, &mut w.pde);
        for i in 0..sv.len() {
            sa[i] = sv[i] * c[E2][i] + nv[i] * c[Q][i];
        }
        nonlinear(sa, na, la, &mut w.pde);
        for i in 0..sv.len() {
            sb[i] = sv[i] * c[E2][i] + na[i] * c[Q][i];
        }
        nonlinear(sb, nb, lb, &mut w.pde);
        for i in 0..sv.len() {
            sc[i] = sa[i] * c[E2][i] + (nb[i] * 2.0 - nv[i]) * c[Q][i];
        }
        nonlinear(sc, nc, lc, &mut w.pde);
        for i in 0..sv.len() {
            w.t[i] = sv[i] * c[E][i] + nv[i] * c[F1][i] + (na[i] + nb[i]) * (2.0 * c[F2][i]) + nc[i] * c[F3][i];
        }
    }
}

impl<P: SpectralPde> Stepper for Etdrk4<P> {
    type Work = Etdrk4Work<P::Work, P::Lin>;

    fn state_len(&self) -> usize {
        self.pde.n_phys()
    }

    fn dt(&self) -> f64 {
        self.dt
    }

    fn order(&self) -> usize {
        4
    }

    fn work(&self) -> Self::Work {
        let z = || vec![C::new(0.0, 0.0); self.pde.n_spec()];
        Etdrk4Work {
            pde: self.pde.work(),
            lin: std::array::from_fn(|_| self.pde.lin()),
            s: std::array::from_fn(|_| z()),
            n: std::array::from_fn(|_| z()),
            ds: std::array::from_fn(|_| z()),
            dn: std::array::from_fn(|_| z()),
            t: z(),
        }
    }

    fn step(&self, u: &mut [f64], w: &mut Self::Work) {
        self.advance(u, 1, w);
    }

    fn advance(&self, u: &mut [f64], n: usize, w: &mut Self::Work) {
        if n == 0 {
            return;
        }
        self.pde.to_spec(u, &mut w.s[0], &mut w.pde);
        for _ in 0..n {
            self.spectral_step(w, false);
            std::mem::swap(&mut w.s[0], &mut w.t);
        }
        self.pde.to_phys(&w.s[0], u, &mut w.pde);
    }

    fn step_jvp(&self, u: &[f64], du: &mut [f64], dnu: f64, w: &mut Self::Work) {
        let (c, dc) = (&self.c, &self.dc);
        self.pde.to_spec(u, &mut w.s[0], &mut w.pde);
        self.spectral_step(w, true);
        self.pde.to_spec(du, &mut w.ds[0], &mut w.pde);
        let [sv, sa, _, _] = &w.s;
        let [nv, na, nb, nc] = &w.n;
        let [lv, la, lb, lc] = &w.lin;
        let [dsv, dsa, dsb, dsc] = &mut w.ds;
        let [dnv, dna, dnb, dnc] = &mut w.dn;
        self.pde.nonlinear_jvp(lv, dsv, dnv, &mut w.pde);
        for i in 0..sv.len() {
            dsa[i] = dsv[i] * c[E2][i] + dnv[i] * c[Q][i] + (sv[i] * dc[E2][i] + nv[i] * dc[Q][i]) * dnu;
        }
        self.pde.nonlinear_jvp(la, dsa, dna, &mut w.pde);
        for i in 0..sv.len() {
            dsb[i] = dsv[i] * c[E2][i] + dna[i] * c[Q][i] + (sv[i] * dc[E2][i] + na[i] * dc[Q][i]) * dnu;
        }
        self.pde.nonlinear_jvp(lb, dsb, dnb, &mut w.pde);
        for i in 0..sv.len() {
            dsc[i] = dsa[i] * c[E2][i]
                + (dnb[i] * 2.0 - dnv[i]) * c[Q][i]
                + (sa[i] * dc[E2][i] + (nb[i] * 2.0 - nv[i]) * dc[Q][i]) * dnu;
        }
        self.pde.nonlinear_jvp(lc, dsc, dnc, &mut w.pde);
        for i in 0..sv.len() {
            w.t[i] = dsv[i] * c[E][i]
                + dnv[i] * c[F1][i]
                + (dna[i] + dnb[i]) * (2.0 * c[F2][i])
                + dnc[i] * c[F3][i]
                + (sv[i] * dc[E][i] + nv[i] * dc[F1][i] + (na[i] + nb[i]) * (2.0 * dc[F2][i]) + nc[i] * dc[F3][i])
                    * dnu;
        }
        self.pde.to_phys(&w.t, du, &mut w.pde);
    }

    fn step_vjp(&self, u: &[f64], g: &mut [f64], w: &mut Self::Work) -> f64 {
        let (c, dc) = (&self.c, &self.dc);
        self.pde.to_spec(u, &mut w.s[0], &mut w.pde);
        self.spectral_step(w, true);
        // cotangent of the new spectrum
        self.pde.to_phys_adjoint(g, &mut w.t, &mut w.pde);
        let [sv, sa, _, _] = &w.s;
        let [nv, na, nb, nc] = &w.n;
        let [lv, la, lb, lc] = &w.lin;
        let [bv, ba, bb, bc] = &mut w.ds;
        let [bnv, bna, bnb, bnc] = &mut w.dn;
        let gt = &w.t;
        let mut dnu = 0.0;
        let n = sv.len();
        for i in 0..n {
            let gi = gt[i];
            let dnew = sv[i] * dc[E][i] + nv[i] * dc[F1][i] + (na[i] + nb[i]) * (2.0 * dc[F2][i]) + nc[i] * dc[F3][i];
            dnu += gi.re * dnew.re + gi.im * dnew.im;
            bv[i] = gi * c[E][i];
            bnv[i] = gi * c[F1][i];
            bna[i] = gi * (2.0 * c[F2][i]);
            bnb[i] = gi * (2.0 * c[F2][i]);
            // bnc doubles as the cotangent of N(c) here; c̄ goes to bc below
            bnc[i] = gi * c[F3][i];
        }
        // c = E2 a + Q (2 N(b) − N(v))
        self.pde.nonlinear_vjp(lc, bnc, bc, &mut w.pde);
        for i in 0..n {
            let ci = bc[i];
            let d = sa[i] * dc[E2][i] + (nb[i] * 2.0 - nv[i]) * dc[Q][i];
            dnu += ci.re * d.re + ci.im * d.im;
            ba[i] = ci * c[E2][i];
            bnb[i] += ci * (2.0 * c[Q][i]);
            bnv[i] -= ci * c[Q][i];
        }
        // b = E2 v + Q N(a)
        self.pde.nonlinear_vjp(lb, bnb, bb, &mut w.pde);
        for i in 0..n {
            let bi = bb[i];
            let d = sv[i] * dc[E2][i] + na[i] * dc[Q][i];
            dnu += bi.re * d.re + bi.im * d.im;
            bv[i] += bi * c[E2][i];
            bna[i] += bi * c[Q][i];
        }
        // a = E2 v + Q N(v); ā gets N(a)ᵀ contributions first
        self.pde.nonlinear_vjp(la, bna, bnc, &mut w.pde);
        for i in 0..n {
            let ai = ba[i] + bnc[i];
            let d = sv[i] * dc[E2][i] + nv[i] * dc[Q][i];
            dnu += ai.re * d.re + ai.im * d.im;
            bv[i] += ai * c[E2][i];
            bnv[i] += ai * c[Q][i];
        }
        self.pde.nonlinear_vjp(lv, bnv, bnc, &mut w.pde);
        for i in 0..n {
            bv[i] += bnc[i];
        }
        self.pde.to_spec_adjoint(bv, g, &mut w.pde);
        dnu
    }
}
