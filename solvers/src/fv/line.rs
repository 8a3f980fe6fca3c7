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

    /// Face states of the extended line `q`: `fl[f]` (left state, the right edge of cell f−1) and `fr[f]`
    /// (right state, the left edge of cell f) for faces f = 0..=n, each cell reconstructed once.
    fn face_states(&self, q: &[f64], fl: &mut [f64], fr: &mut [f64]) {
        let n = self.n;
        for c in 0..n + 2 {
            // cell c − 1 (interior numbering) sits at ext index c + G − 1
            let (l, r) = self.recon.edges(&stencil(q, c + G - 1));
            if c >= 1 {
                fr[c - 1] = l;
            }
            if c <= n {
                fl[c] = r;
            }
        }
    }

    /// Face states and their tangents for the tangent `dq` of `q`.
    fn face_states_jvp(&self, q: &[f64], dq: &[f64], fl: &mut [f64], fr: &mut [f64], dfl: &mut [f64], dfr: &mut [f64]) {
        let n = self.n;
        for c in 0..n + 2 {
            let e = c + G - 1;
            let (l, r, dl, dr) = self.recon.edges_jvp(&stencil(q, e), &stencil(dq, e));
            if c >= 1 {
                fr[c - 1] = l;
                dfr[c - 1] = dl;
            }
            if c <= n {
                fl[c] = r;
                dfl[c] = dr;
            }
        }
    }

    /// Adjoint of the face states: `qbar += Σ_f bl[f] ∂fl[f]/∂q + br[f] ∂fr[f]/∂q`.
    fn face_states_vjp(&self, q: &[f64], bl: &[f64], br: &[f64], qbar: &mut [f64]) {
        let n = self.n;
        for c in 0..n + 2 {
            let e = c + G - 1;
            let cl = if c >= 1 { br[c - 1] } else { 0.0 };
            let cr = if c <= n { bl[c] } else { 0.0 };
            let g = self.recon.edges_vjp(&stencil(q, e), cl, cr);
            for (j, gj) in g.iter().enumerate() {
                qbar[e - 2 + j] += gj;
            }
        }
    }

    /// `out[c] += −(F_{c+1/2} − F_{c−1/2}) / h` with F the numerical flux of q²/2.
    pub fn conservative(&self, q: &[f64], out: &mut [f64], f: &mut Faces) {
        let inv_h = 1.0 / self.h;
        self.face_states(q, &mut f.ql, &mut f.qr);
        let mut prev = self.flux.flux(f.ql[0], f.qr[0]);
        for (c, o) in out[..self.n].iter_mut().enumerate() {
            let flux = self.flux.flux(f.ql[c + 1], f.qr[c + 1]);
            *o -= (flux - prev) * inv_h;
            prev = flux;
        }
    }

    /// Tangent of [`conservative`](Self::conservative): `out[c] += ∂/∂q · dq`.
    pub fn conservative_jvp(&self, q: &[f64], dq: &[f64], out: &mut [f64], f: &mut Faces) {
        let inv_h = 1.0 / self.h;
        self.face_states_jvp(q, dq, &mut f.ql, &mut f.qr, &mut f.dql, &mut f.dqr);
        let dflux = |k: usize| {
            let (_, fa, fb) = self.flux.flux_grad(f.ql[k], f.qr[k]);
            fa * f.dql[k] + fb * f.dqr[k]
        };
        let mut prev = dflux(0);
        for (c, o) in out[..self.n].iter_mut().enumerate() {
            let d = dflux(c + 1);
            *o -= (d - prev) * inv_h;
            prev = d;
        }
    }

    /// Adjoint of [`conservative`](Self::conservative): `qbar += (∂/∂q)ᵀ r` (ghost entries included).
    pub fn conservative_vjp(&self, q: &[f64], r: &[f64], qbar: &mut [f64], f: &mut Faces) {
        let inv_h = 1.0 / self.h;
        let n = self.n;
        self.face_states(q, &mut f.ql, &mut f.qr);
        for k in 0..=n {
            let fbar = ((if k < n { r[k] } else { 0.0 }) - (if k > 0 { r[k - 1] } else { 0.0 })) * inv_h;
            let (_, fa, fb) = self.flux.flux_grad(f.ql[k], f.qr[k]);
            f.dql[k] = fbar * fa;
            f.dqr[k] = fbar * fb;
        }
        self.face_states_vjp(q, &f.dql, &f.dqr, qbar);
    }

    /// Weights of the face derivative (times h) and the offset of its first cell from the face's right cell:
    /// two-point for MUSCL, sixth order for WENO5, so that the viscous term keeps the reconstruction's order.
    #[inline]
    fn viscous_stencil(&self) -> (&'static [f64], usize) {
        match self.recon {
            Reconstruction::Muscl(_) => (&[-1.0, 1.0], 1),
            Reconstruction::Weno5(_) => (&VISC6, 3),
        }
    }

    /// `out[c] += scale · (D_{c+1/2} − D_{c−1/2}) / h`, D the central face derivative (see
    /// `viscous_stencil`): diffusion with coefficient `scale`. Linear in q, so it is also its own tangent.
    pub fn diffusion(&self, q: &[f64], scale: f64, out: &mut [f64]) {
        let (w, off) = self.viscous_stencil();
        let k = scale / (self.h * self.h);
        // face f reads q[f + G − off ..], D_f = Σ w_j q[f + G − off + j] / h
        let face = |f: usize| -> f64 { w.iter().zip(&q[f + G - off..]).map(|(a, b)| a * b).sum() };
        let mut prev = face(0);
        for (c, o) in out[..self.n].iter_mut().enumerate() {
            let d = face(c + 1);
            *o += k * (d - prev);
            prev = d;
        }
    }

    /// Adjoint of [`diffusion`](Self::diffusion) with respect to q (into `qbar`); returns
    /// `Σ_c r_c (D_{c+1/2} − D_{c−1/2}) / h`, the derivative with respect to `scale`.
    pub fn diffusion_vjp(&self, q: &[f64], scale: f64, r: &[f64], qbar: &mut [f64]) -> f64 {
        let (w, off) = self.viscous_stencil();
        let n = self.n;
        let inv_h2 = 1.0 / (self.h * self.h);
        let mut dscale = 0.0;
        for f in 0..=n {
            // cotangent of D_f: from cell f − 1 (as its right face, +) and cell f (as its left face, −)
            let rdiff = (if f > 0 { r[f - 1] } else { 0.0 }) - (if f < n { r[f] } else { 0.0 });
            let base = f + G - off;
            let mut d = 0.0;
            for (j, wj) in w.iter().enumerate() {
                d += wj * q[base + j];
                qbar[base + j] += scale * inv_h2 * rdiff * wj;
            }
            dscale += d * rdiff;
        }
        dscale * inv_h2
    }

    /// `out[c] += −(1/h)[A⁺_{c−1/2} Δφ_{c−1/2} + A⁻_{c+1/2} Δφ_{c+1/2} + a_c (φ_{c+1/2}^L − φ_{c−1/2}^R)]`:
    /// the advective term `a φ_x` in fluctuation form (LeVeque's wave-propagation form; Δφ = φ^R − φ^L at a
    /// face, A± from [`NumericalFlux::split`]). Reduces to first-order upwinding for constant states.
    pub fn advective(&self, a: &[f64], phi: &[f64], out: &mut [f64], f: &mut Faces) {
        let inv_h = 1.0 / self.h;
        self.face_states(a, &mut f.ql, &mut f.qr);
        self.face_states(phi, &mut f.pl, &mut f.pr);
        let (mut prev_ap, _) = self.split_at(f, 0);
        for c in 0..self.n {
            let (ap, am) = self.split_at(f, c + 1);
            let (jl, jr) = (f.pr[c] - f.pl[c], f.pr[c + 1] - f.pl[c + 1]);
            out[c] -= inv_h * (prev_ap * jl + am * jr + a[c + G] * (f.pl[c + 1] - f.pr[c]));
            prev_ap = ap;
        }
    }

    #[inline]
    fn split_at(&self, f: &Faces, k: usize) -> (f64, f64) {
        let (ap, am, _) = self.flux.split(f.ql[k], f.qr[k]);
        (ap, am)
    }

    /// Tangent of [`advective`](Self::advective).
    pub fn advective_jvp(&self, a: &[f64], phi: &[f64], da: &[f64], dphi: &[f64], out: &mut [f64], f: &mut Faces) {
        let inv_h = 1.0 / self.h;
        self.face_states_jvp(a, da, &mut f.ql, &mut f.qr, &mut f.dql, &mut f.dqr);
        self.face_states_jvp(phi, dphi, &mut f.pl, &mut f.pr, &mut f.dpl, &mut f.dpr);
        let face = |k: usize| {
            let (ap, am, gs) = self.flux.split(f.ql[k], f.qr[k]);
            let dap = gs[0][0] * f.dql[k] + gs[0][1] * f.dqr[k];
            let dam = gs[1][0] * f.dql[k] + gs[1][1] * f.dqr[k];
            (ap, am, dap, dam, f.pr[k] - f.pl[k], f.dpr[k] - f.dpl[k])
        };
        let mut prev = face(0);
        for c in 0..self.n {
            let cur = face(c + 1);
            let (pap, _, pdap, _, pj, pdj) = prev;
            let (_, am, _, dam, j, dj) = cur;
            out[c] -= inv_h
                * (pdap * pj
                    + pap * pdj
                    + dam * j
                    + am * dj
                    + da[c + G] * (f.pl[c + 1] - f.pr[c])
                    + a[c + G] * (f.dpl[c + 1] - f.dpr[c]));
            prev = cur;
        }
    }

    /// Adjoint of [`advective`](Self::advective): accumulates into `abar` and `phibar`.
    pub fn advective_vjp(
        &self,
        a: &[f64],
        phi: &[f64],
        r: &[f64],
        abar: &mut [f64],
        phibar: &mut [f64],
        f: &mut Faces,
    ) {
        let inv_h = 1.0 / self.h;
        let n = self.n;
        self.face_states(a, &mut f.ql, &mut f.qr);
        self.face_states(phi, &mut f.pl, &mut f.pr);
        for k in 0..=n {
            let (ap, am, gs) = self.flux.split(f.ql[k], f.qr[k]);
            let jump = f.pr[k] - f.pl[k];
            // k_left belongs to the cell left of face k (k−1), k_right to the cell on its right (k)
            let k_left = if k > 0 { -inv_h * r[k - 1] } else { 0.0 };
            let k_right = if k < n { -inv_h * r[k] } else { 0.0 };
            let (apbar, ambar) = (k_right * jump, k_left * jump);
            let jbar = k_right * ap + k_left * am;
            if k > 0 {
                // cell term of cell k−1: a_c (φ^L_{c+1/2} − φ^R_{c−1/2})
                abar[k - 1 + G] += k_left * (f.pl[k] - f.pr[k - 1]);
            }
            // face cotangents: a states into dql/dqr, φ states into dpl/dpr
            f.dql[k] = apbar * gs[0][0] + ambar * gs[1][0];
            f.dqr[k] = apbar * gs[0][1] + ambar * gs[1][1];
            f.dpl[k] = (if k > 0 { k_left * a[k - 1 + G] } else { 0.0 }) - jbar;
            f.dpr[k] = (if k < n { -k_right * a[k + G] } else { 0.0 }) + jbar;
        }
        self.face_states_vjp(a, &f.dql, &f.dqr, abar);
        self.face_states_vjp(phi, &f.dpl, &f.dpr, phibar);
    }
}

/// Face buffers of one line (n + 1 faces): states of the advecting / conserved quantity (`ql`, `qr`) and of the
/// advected one (`pl`, `pr`), and their tangents or cotangents.
pub(crate) struct Faces {
    ql: Vec<f64>,
    qr: Vec<f64>,
    pl: Vec<f64>,
    pr: Vec<f64>,
    dql: Vec<f64>,
    dqr: Vec<f64>,
    dpl: Vec<f64>,
    dpr: Vec<f64>,
}

impl Faces {
    /// Buffers for lines of up to `n` cells.
    pub fn new(n: usize) -> Self {
        let z = || vec![0.0; n + 1];
        Self { ql: z(), qr: z(), pl: z(), pr: z(), dql: z(), dqr: z(), dpl: z(), dpr: z() }
    }
}
