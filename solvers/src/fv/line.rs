//! One-dimensional kernels along a grid line: ghost cells, inviscid flux divergence, advective fluctuations and
//! central diffusion, each with its exact tangent and adjoint. The 1D and 2D schemes are sums of these.

use super::{Boundary, NumericalFlux, Reconstruction};

/// Ghost cells on each side of a line (enough for WENO5 and the sixth-order viscous stencil).
pub const GHOSTS: usize = 3;
const G: usize = GHOSTS;

/// Weights of the sixth-order face derivative from the six cell averages around a face.
const VISC6: [f64; 6] = [-1.0 / 90.0, 5.0 / 36.0, -49.0 / 36.0, 49.0 / 36.0, -5.0 / 36.0, 1.0 / 90.0];

/// The operators along one line of `n` cells of width `h`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    pub n: usize,
    pub h: f64,
    pub lo: Boundary,
    pub hi: Boundary,
    pub recon: Reconstruction,
    pub flux: NumericalFlux,
}

#[inline]
fn stencil(ext: &[f64], c: usize) -> [f64; 5] {
    // cell c (interior index, may be -1 via wrapping arithmetic below) lives at ext[c + G]
    [ext[c - 2], ext[c - 1], ext[c], ext[c + 1], ext[c + 2]]
}

#[inline]
fn scatter(bar: &mut [f64], c: usize, coef: f64, g: &[f64; 5]) {
    for j in 0..5 {
        bar[c - 2 + j] += coef * g[j];
    }
}

impl Line {
    /// Length of the extended (ghosted) line.
    pub fn ext_len(&self) -> usize {
        self.n + 2 * G
    }

    /// Fills the ghost cells of `ext` from its interior. `homogeneous` drops the boundary values (tangents).
    pub fn fill_ghosts(&self, ext: &mut [f64], homogeneous: bool) {
        let n = self.n;
        for k in 0..G {
            let lo_mirror = ext[G + k];
            ext[G - 1 - k] = match self.lo {
                Boundary::Periodic => ext[G + n - 1 - k],
                Boundary::Dirichlet(v) => (if homogeneous { 0.0 } else { 2.0 * v }) - lo_mirror,
                Boundary::Neumann(g) => lo_mirror - if homogeneous { 0.0 } else { (2 * k + 1) as f64 * self.h * g },
            };
            let hi_mirror = ext[G + n - 1 - k];
            ext[G + n + k] = match self.hi {
                Boundary::Periodic => ext[G + k],
                Boundary::Dirichlet(v) => (if homogeneous { 0.0 } else { 2.0 * v }) - hi_mirror,
                Boundary::Neumann(g) => hi_mirror + if homogeneous { 0.0 } else { (2 * k + 1) as f64 * self.h * g },
            };
        }
    }

    /// Adjoint of [`fill_ghosts`](Self::fill_ghosts): folds the cotangents of the ghost cells into the interior
    /// and zeroes them.
    pub fn fold_ghosts(&self, bar: &mut [f64]) {
        let n = self.n;
        for k in 0..G {
            let gl = std::mem::take(&mut bar[G - 1 - k]);
            match self.lo {
                Boundary::Periodic => bar[G + n - 1 - k] += gl,
                Boundary::Dirichlet(_) => bar[G + k] -= gl,
                Boundary::Neumann(_) => bar[G + k] += gl,
            }
            let gh = std::mem::take(&mut bar[G + n + k]);
            match self.hi {
                Boundary::Periodic => bar[G + k] += gh,
                Boundary::Dirichlet(_) => bar[G + n - 1 - k] -= gh,
                Boundary::Neumann(_) => bar[G + n - 1 - k] += gh,
            }
        }
    }

    /// `out[c] += −(F_{c+1/2} − F_{c−1/2}) / h` with F the numerical flux of q²/2.
    pub fn conservative(&self, q: &[f64], out: &mut [f64]) {
        let inv_h = 1.0 / self.h;
        let mut prev = 0.0;
        for f in 0..=self.n {
            let a = self.recon.right_edge(&stencil(q, f + G - 1));
            let b = self.recon.left_edge(&stencil(q, f + G));
            let flux = self.flux.flux(a, b);
            if f > 0 {
                out[f - 1] -= (flux - prev) * inv_h;
            }
            prev = flux;
        }
    }

    /// Tangent of [`conservative`](Self::conservative): `out[c] += ∂/∂q · dq`.
    pub fn conservative_jvp(&self, q: &[f64], dq: &[f64], out: &mut [f64]) {
        let inv_h = 1.0 / self.h;
        let mut prev = 0.0;
        for f in 0..=self.n {
            let (cl, cr) = (f + G - 1, f + G);
            let (a, ga) = self.recon.right_edge_grad(&stencil(q, cl));
            let (b, gb) = self.recon.left_edge_grad(&stencil(q, cr));
            let (_, fa, fb) = self.flux.flux_grad(a, b);
            let da: f64 = (0..5).map(|j| ga[j] * dq[cl - 2 + j]).sum();
            let db: f64 = (0..5).map(|j| gb[j] * dq[cr - 2 + j]).sum();
            let dflux = fa * da + fb * db;
            if f > 0 {
                out[f - 1] -= (dflux - prev) * inv_h;
            }
            prev = dflux;
        }
    }

    /// Adjoint of [`conservative`](Self::conservative): `qbar += (∂/∂q)ᵀ r` (ghost entries included).
    pub fn conservative_vjp(&self, q: &[f64], r: &[f64], qbar: &mut [f64]) {
        let inv_h = 1.0 / self.h;
        let n = self.n;
        for f in 0..=n {
            let fbar = ((if f < n { r[f] } else { 0.0 }) - (if f > 0 { r[f - 1] } else { 0.0 })) * inv_h;
            if fbar == 0.0 {
                continue;
            }
            let (cl, cr) = (f + G - 1, f + G);
            let (a, ga) = self.recon.right_edge_grad(&stencil(q, cl));
            let (b, gb) = self.recon.left_edge_grad(&stencil(q, cr));
            let (_, fa, fb) = self.flux.flux_grad(a, b);
            scatter(qbar, cl, fbar * fa, &ga);
            scatter(qbar, cr, fbar * fb, &gb);
        }
    }

    /// Face derivative `(∂q/∂x)_{f}` at face f (between cells f−1 and f), of the order matching the
    /// reconstruction: two-point for MUSCL, sixth order for WENO5. `q` is an extended line.
    #[inline]
    fn face_derivative(&self, q: &[f64], f: usize) -> f64 {
        let c = f + G; // ext index of cell f
        match self.recon {
            Reconstruction::Muscl(_) => (q[c] - q[c - 1]) / self.h,
            Reconstruction::Weno5(_) => {
                let s = &q[c - 3..c + 3];
                (VISC6[0] * s[0]
                    + VISC6[1] * s[1]
                    + VISC6[2] * s[2]
                    + VISC6[3] * s[3]
                    + VISC6[4] * s[4]
                    + VISC6[5] * s[5])
                    / self.h
            }
        }
    }

    #[inline]
    fn face_derivative_adjoint(&self, bar: &mut [f64], f: usize, coef: f64) {
        let c = f + G;
        match self.recon {
            Reconstruction::Muscl(_) => {
                bar[c] += coef / self.h;
                bar[c - 1] -= coef / self.h;
            }
            Reconstruction::Weno5(_) => {
                for (j, w) in VISC6.iter().enumerate() {
                    bar[c - 3 + j] += coef * w / self.h;
                }
            }
        }
    }

    /// `out[c] += scale · (D_{c+1/2} − D_{c−1/2}) / h`, D the face derivative: central diffusion with
    /// coefficient `scale`. Linear in q, so it is also its own tangent.
    pub fn diffusion(&self, q: &[f64], scale: f64, out: &mut [f64]) {
        let k = scale / self.h;
        let mut prev = self.face_derivative(q, 0);
        for f in 1..=self.n {
            let d = self.face_derivative(q, f);
            out[f - 1] += k * (d - prev);
            prev = d;
        }
    }

    /// Adjoint of [`diffusion`](Self::diffusion) with respect to q (into `qbar`); returns
    /// `Σ_c r_c (D_{c+1/2} − D_{c−1/2}) / h`, the derivative with respect to `scale`.
    pub fn diffusion_vjp(&self, q: &[f64], scale: f64, r: &[f64], qbar: &mut [f64]) -> f64 {
        let n = self.n;
        let k = scale / self.h;
        let mut dscale = 0.0;
        let mut prev = self.face_derivative(q, 0);
        for f in 0..=n {
            if f > 0 {
                let d = self.face_derivative(q, f);
                dscale += r[f - 1] * (d - prev) / self.h;
                prev = d;
            }
            let dbar = k * ((if f > 0 { r[f - 1] } else { 0.0 }) - (if f < n { r[f] } else { 0.0 }));
            if dbar != 0.0 {
                self.face_derivative_adjoint(qbar, f, dbar);
            }
        }
        dscale
    }

    /// `out[c] += −(1/h)[A⁺_{c−1/2} Δφ_{c−1/2} + A⁻_{c+1/2} Δφ_{c+1/2} + a_c (φ_{c+1/2}^L − φ_{c−1/2}^R)]`:
    /// the advective term `a φ_x` in fluctuation form (LeVeque's wave-propagation form; Δφ = φ^R − φ^L at a
    /// face, A± from [`NumericalFlux::split`]). Reduces to first-order upwinding for constant states.
    pub fn advective(&self, a: &[f64], phi: &[f64], out: &mut [f64]) {
        let inv_h = 1.0 / self.h;
        let (mut prev_ap, mut prev_jump, mut prev_phir) = (0.0, 0.0, 0.0);
        for f in 0..=self.n {
            let (cl, cr) = (f + G - 1, f + G);
            let al = self.recon.right_edge(&stencil(a, cl));
            let ar = self.recon.left_edge(&stencil(a, cr));
            let pl = self.recon.right_edge(&stencil(phi, cl));
            let pr = self.recon.left_edge(&stencil(phi, cr));
            let (ap, am, _) = self.flux.split(al, ar);
            let jump = pr - pl;
            if f > 0 {
                let c = f - 1;
                out[c] -= inv_h * (prev_ap * prev_jump + am * jump + a[c + G] * (pl - prev_phir));
            }
            prev_ap = ap;
            prev_jump = jump;
            prev_phir = pr;
        }
    }

    /// Tangent of [`advective`](Self::advective).
    pub fn advective_jvp(&self, a: &[f64], phi: &[f64], da: &[f64], dphi: &[f64], out: &mut [f64]) {
        let inv_h = 1.0 / self.h;
        let dot = |g: &[f64; 5], d: &[f64], c: usize| -> f64 { (0..5).map(|j| g[j] * d[c - 2 + j]).sum() };
        let mut prev = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0); // ap, dap, jump, djump, phir, dphir
        for f in 0..=self.n {
            let (cl, cr) = (f + G - 1, f + G);
            let (al, gal) = self.recon.right_edge_grad(&stencil(a, cl));
            let (ar, gar) = self.recon.left_edge_grad(&stencil(a, cr));
            let (pl, gpl) = self.recon.right_edge_grad(&stencil(phi, cl));
            let (pr, gpr) = self.recon.left_edge_grad(&stencil(phi, cr));
            let (dal, dar) = (dot(&gal, da, cl), dot(&gar, da, cr));
            let (dpl, dpr) = (dot(&gpl, dphi, cl), dot(&gpr, dphi, cr));
            let (ap, am, gs) = self.flux.split(al, ar);
            let dap = gs[0][0] * dal + gs[0][1] * dar;
            let dam = gs[1][0] * dal + gs[1][1] * dar;
            let (jump, djump) = (pr - pl, dpr - dpl);
            if f > 0 {
                let c = f - 1;
                let (pap, pdap, pjump, pdjump, pphir, pdphir) = prev;
                out[c] -= inv_h
                    * (pdap * pjump
                        + pap * pdjump
                        + dam * jump
                        + am * djump
                        + da[c + G] * (pl - pphir)
                        + a[c + G] * (dpl - pdphir));
            }
            prev = (ap, dap, jump, djump, pr, dpr);
        }
    }

    /// Adjoint of [`advective`](Self::advective): accumulates into `abar` and `phibar`.
    pub fn advective_vjp(&self, a: &[f64], phi: &[f64], r: &[f64], abar: &mut [f64], phibar: &mut [f64]) {
        let inv_h = 1.0 / self.h;
        let n = self.n;
        let mut prev_phir = 0.0;
        for f in 0..=n {
            let (cl, cr) = (f + G - 1, f + G);
            let (al, gal) = self.recon.right_edge_grad(&stencil(a, cl));
            let (ar, gar) = self.recon.left_edge_grad(&stencil(a, cr));
            let (pl, gpl) = self.recon.right_edge_grad(&stencil(phi, cl));
            let (pr, gpr) = self.recon.left_edge_grad(&stencil(phi, cr));
            let (ap, am, gs) = self.flux.split(al, ar);
            let jump = pr - pl;
            // k_left belongs to the cell on the left of face f (f-1), k_right to the cell on its right (f)
            let k_left = if f > 0 { -inv_h * r[f - 1] } else { 0.0 };
            let k_right = if f < n { -inv_h * r[f] } else { 0.0 };
            let apbar = k_right * jump;
            let ambar = k_left * jump;
            let jbar = k_right * ap + k_left * am;
            let a_left = a[cl];
            let a_right = a[cr];
            let plbar = k_left * a_left - jbar;
            let prbar = -k_right * a_right + jbar;
            if f > 0 {
                // cell term of cell f-1: a_c (φ^L_{c+1/2} − φ^R_{c−1/2})
                abar[cl] += k_left * (pl - prev_phir);
            }
            prev_phir = pr;
            let albar = apbar * gs[0][0] + ambar * gs[1][0];
            let arbar = apbar * gs[0][1] + ambar * gs[1][1];
            scatter(abar, cl, albar, &gal);
            scatter(abar, cr, arbar, &gar);
            scatter(phibar, cl, plbar, &gpl);
            scatter(phibar, cr, prbar, &gpr);
        }
    }
}
