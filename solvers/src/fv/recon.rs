//! Reconstruction of face values from cell averages, with exact derivatives.
//!
//! Every reconstruction reads the 5-point stencil `s = [q_{c-2}, q_{c-1}, q_c, q_{c+1}, q_{c+2}]` of cell c and
//! returns the value at the cell's right edge (`x_{c+1/2}`, the left state of that face) or left edge
//! (`x_{c-1/2}`, the right state of that face). The `_grad` variants also return the gradient with respect to
//! the five stencil entries; at the kinks of limiters and of `|·|` they return the derivative of the branch that
//! the forward evaluation took.

/// Slope limiters for MUSCL reconstruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limiter {
    /// minmod: the most dissipative TVD limiter.
    Minmod,
    /// van Leer's harmonic limiter (van Leer 1974, doi:10.1016/0021-9991(74)90019-9).
    VanLeer,
    /// Monotonised central limiter (van Leer 1977, doi:10.1016/0021-9991(77)90095-X).
    Mc,
}

/// Nonlinear weights of WENO5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WenoWeights {
    /// Jiang & Shu (1996, doi:10.1006/jcph.1996.0130), ε = 1e-6, p = 2.
    JiangShu,
    /// WENO-Z (Borges et al. 2008, doi:10.1016/j.jcp.2007.11.038) with τ5 = |β0 − β2|, p = 2, ε = 1e-40;
    /// keeps fifth order at critical points where Jiang–Shu drops to third.
    Z,
}

/// Reconstruction of face states from cell averages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reconstruction {
    /// Piecewise-linear MUSCL with a slope limiter (second order in smooth regions).
    Muscl(Limiter),
    /// Fifth-order weighted essentially non-oscillatory reconstruction.
    Weno5(WenoWeights),
}

impl Reconstruction {
    /// Formal order of accuracy in smooth regions.
    pub fn order(&self) -> usize {
        match self {
            Reconstruction::Muscl(_) => 2,
            Reconstruction::Weno5(_) => 5,
        }
    }

    /// Both edge values of the cell, `(left edge, right edge)`, sharing the work (limited slope, smoothness
    /// indicators) between them.
    #[inline]
    pub fn edges(&self, s: &[f64; 5]) -> (f64, f64) {
        match *self {
            Reconstruction::Muscl(l) => {
                let half = 0.5 * limit(l, s[2] - s[1], s[3] - s[2]);
                (s[2] - half, s[2] + half)
            }
            Reconstruction::Weno5(w) => weno5_edges(w, s),
        }
    }

    /// Edge values and their tangents for the stencil tangent `ds`: `(left, right, dleft, dright)`.
    #[inline]
    pub fn edges_jvp(&self, s: &[f64; 5], ds: &[f64; 5]) -> (f64, f64, f64, f64) {
        match *self {
            Reconstruction::Muscl(l) => {
                let (v, ga, gb) = limit_grad(l, s[2] - s[1], s[3] - s[2]);
                let dv = ga * (ds[2] - ds[1]) + gb * (ds[3] - ds[2]);
                (s[2] - 0.5 * v, s[2] + 0.5 * v, ds[2] - 0.5 * dv, ds[2] + 0.5 * dv)
            }
            Reconstruction::Weno5(w) => WenoEdges::new(w, s).jvp(ds),
        }
    }

    /// Adjoint of the edge values: the stencil cotangent for cotangents `cl` of the left edge and `cr` of the
    /// right edge.
    #[inline]
    pub fn edges_vjp(&self, s: &[f64; 5], cl: f64, cr: f64) -> [f64; 5] {
        match *self {
            Reconstruction::Muscl(l) => {
                let (_, ga, gb) = limit_grad(l, s[2] - s[1], s[3] - s[2]);
                let vbar = 0.5 * (cr - cl);
                let (abar, bbar) = (vbar * ga, vbar * gb);
                [0.0, -abar, cl + cr + abar - bbar, bbar, 0.0]
            }
            Reconstruction::Weno5(w) => WenoEdges::new(w, s).vjp(cl, cr),
        }
    }
}

/// Limited slope from the backward difference `a` and forward difference `b`.
#[inline]
pub fn limit(l: Limiter, a: f64, b: f64) -> f64 {
    limit_grad(l, a, b).0
}

/// Limited slope and its partial derivatives with respect to `a` and `b` (on the branch taken).
#[inline]
pub fn limit_grad(l: Limiter, a: f64, b: f64) -> (f64, f64, f64) {
    if a * b <= 0.0 {
        return (0.0, 0.0, 0.0);
    }
    match l {
        Limiter::Minmod => {
            if a.abs() <= b.abs() {
                (a, 1.0, 0.0)
            } else {
                (b, 0.0, 1.0)
            }
        }
        Limiter::VanLeer => {
            let s = a + b;
            (2.0 * a * b / s, 2.0 * b * b / (s * s), 2.0 * a * a / (s * s))
        }
        Limiter::Mc => {
            let c = 0.5 * (a + b);
            let (ta, tb) = (2.0 * a, 2.0 * b);
            if c.abs() <= ta.abs() && c.abs() <= tb.abs() {
                (c, 0.5, 0.5)
            } else if ta.abs() <= tb.abs() {
                (ta, 2.0, 0.0)
            } else {
                (tb, 0.0, 2.0)
            }
        }
    }
}

/// Linear weights of the three candidate stencils.
const D: [f64; 3] = [0.1, 0.6, 0.3];
/// Candidate values at the right edge, `p_k = P[k] · q`.
const P: [[f64; 5]; 3] = [
    [2.0 / 6.0, -7.0 / 6.0, 11.0 / 6.0, 0.0, 0.0],
    [0.0, -1.0 / 6.0, 5.0 / 6.0, 2.0 / 6.0, 0.0],
    [0.0, 0.0, 2.0 / 6.0, 5.0 / 6.0, -1.0 / 6.0],
];
/// Linear forms inside the smoothness indicators: β_k = 13/12 (Dk·q)² + 1/4 (Ek·q)².
const DB: [[f64; 5]; 3] = [[1.0, -2.0, 1.0, 0.0, 0.0], [0.0, 1.0, -2.0, 1.0, 0.0], [0.0, 0.0, 1.0, -2.0, 1.0]];
const EB: [[f64; 5]; 3] = [[1.0, -4.0, 3.0, 0.0, 0.0], [0.0, 1.0, 0.0, -1.0, 0.0], [0.0, 0.0, 3.0, -4.0, 1.0]];

#[inline]
fn dot5(a: &[f64; 5], b: &[f64; 5]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3] + a[4] * b[4]
}

#[inline]
fn rev(q: &[f64; 5]) -> [f64; 5] {
    [q[4], q[3], q[2], q[1], q[0]]
}

/// Nonlinear weights α(β) and their partial derivatives: `(α, ∂α_k/∂β_k, ∂α_k/∂τ)` with τ = |β0 − β2|
/// (zero for Jiang–Shu).
#[inline]
fn alphas(w: WenoWeights, b: [f64; 3]) -> ([f64; 3], [f64; 3], [f64; 3]) {
    let (mut a, mut ab, mut at) = ([0.0; 3], [0.0; 3], [0.0; 3]);
    match w {
        WenoWeights::JiangShu => {
            for k in 0..3 {
                let inv = 1.0 / (JS_EPS + b[k]);
                a[k] = D[k] * inv * inv;
                ab[k] = -2.0 * a[k] * inv;
            }
        }
        WenoWeights::Z => {
            let tau = (b[0] - b[2]).abs();
            for k in 0..3 {
                let inv = 1.0 / (b[k] + Z_EPS);
                let r = tau * inv;
                a[k] = D[k] * (1.0 + r * r);
                ab[k] = -2.0 * D[k] * r * r * inv;
                at[k] = 2.0 * D[k] * r * inv;
            }
        }
    }
    (a, ab, at)
}

/// Nonlinear weights α(β) alone.
#[inline]
fn alpha_values(w: WenoWeights, b: [f64; 3]) -> [f64; 3] {
    match w {
        WenoWeights::JiangShu => std::array::from_fn(|k| {
            let inv = 1.0 / (JS_EPS + b[k]);
            D[k] * inv * inv
        }),
        WenoWeights::Z => {
            let tau = (b[0] - b[2]).abs();
            std::array::from_fn(|k| {
                let r = tau / (b[k] + Z_EPS);
                D[k] * (1.0 + r * r)
            })
        }
    }
}

const JS_EPS: f64 = 1e-6;
const Z_EPS: f64 = 1e-40;

/// WENO5 values at both edges of the centre cell, `(left, right)`, without derivative information.
#[inline]
fn weno5_edges(w: WenoWeights, q: &[f64; 5]) -> (f64, f64) {
    let c = 13.0 / 12.0;
    let b: [f64; 3] = std::array::from_fn(|k| {
        let (d, e) = (dot5(&DB[k], q), dot5(&EB[k], q));
        c * d * d + 0.25 * e * e
    });
    let ar = alpha_values(w, b);
    let al = alpha_values(w, [b[2], b[1], b[0]]);
    let qr = rev(q);
    let mut num = [0.0; 2];
    for k in 0..3 {
        num[0] += al[k] * dot5(&P[k], &qr);
        num[1] += ar[k] * dot5(&P[k], q);
    }
    (num[0] / (al[0] + al[1] + al[2]), num[1] / (ar[0] + ar[1] + ar[2]))
}

/// WENO5 reconstruction at both edges of the centre cell of a stencil. The smoothness indicators are shared:
/// those of the mirrored stencil (the left edge) are the same three in reverse order.
struct WenoEdges {
    /// the linear forms inside β_k
    dv: [f64; 3],
    ev: [f64; 3],
    /// right edge: weights, their derivatives, candidates, value, weight sum
    ar: ([f64; 3], [f64; 3], [f64; 3]),
    pr: [f64; 3],
    right: f64,
    sr: f64,
    /// left edge (candidates and weights of the mirrored stencil)
    al: ([f64; 3], [f64; 3], [f64; 3]),
    pl: [f64; 3],
    left: f64,
    sl: f64,
    /// sign of β0 − β2
    sg: f64,
}

impl WenoEdges {
    #[inline]
    fn new(w: WenoWeights, q: &[f64; 5]) -> Self {
        let dv = [dot5(&DB[0], q), dot5(&DB[1], q), dot5(&DB[2], q)];
        let ev = [dot5(&EB[0], q), dot5(&EB[1], q), dot5(&EB[2], q)];
        let c = 13.0 / 12.0;
        let b = [
            c * dv[0] * dv[0] + 0.25 * ev[0] * ev[0],
            c * dv[1] * dv[1] + 0.25 * ev[1] * ev[1],
            c * dv[2] * dv[2] + 0.25 * ev[2] * ev[2],
        ];
        let ar = alphas(w, b);
        let al = alphas(w, [b[2], b[1], b[0]]);
        let qr = rev(q);
        let pr = [dot5(&P[0], q), dot5(&P[1], q), dot5(&P[2], q)];
        let pl = [dot5(&P[0], &qr), dot5(&P[1], &qr), dot5(&P[2], &qr)];
        let sr = ar.0[0] + ar.0[1] + ar.0[2];
        let sl = al.0[0] + al.0[1] + al.0[2];
        let right = (ar.0[0] * pr[0] + ar.0[1] * pr[1] + ar.0[2] * pr[2]) / sr;
        let left = (al.0[0] * pl[0] + al.0[1] * pl[1] + al.0[2] * pl[2]) / sl;
        let sg = if b[0] >= b[2] { 1.0 } else { -1.0 };
        Self { dv, ev, ar, pr, right, sr, al, pl, left, sl, sg }
    }

    #[inline]
    fn jvp(&self, dq: &[f64; 5]) -> (f64, f64, f64, f64) {
        let c2 = 13.0 / 6.0;
        let mut db = [0.0; 3];
        for k in 0..3 {
            db[k] = c2 * self.dv[k] * dot5(&DB[k], dq) + 0.5 * self.ev[k] * dot5(&EB[k], dq);
        }
        let dtau = self.sg * (db[0] - db[2]);
        let dqr = rev(dq);
        let edge = |a: &([f64; 3], [f64; 3], [f64; 3]), p: &[f64; 3], v: f64, s: f64, dbk: [f64; 3], d: &[f64; 5]| {
            let mut num = 0.0;
            let mut ds = 0.0;
            for k in 0..3 {
                let da = a.1[k] * dbk[k] + a.2[k] * dtau;
                num += da * p[k] + a.0[k] * dot5(&P[k], d);
                ds += da;
            }
            (num - v * ds) / s
        };
        let dr = edge(&self.ar, &self.pr, self.right, self.sr, db, dq);
        let dl = edge(&self.al, &self.pl, self.left, self.sl, [db[2], db[1], db[0]], &dqr);
        (self.left, self.right, dl, dr)
    }

    #[inline]
    fn vjp(&self, cl: f64, cr: f64) -> [f64; 5] {
        let mut qbar = [0.0; 5];
        let mut bbar = [0.0; 3];
        let mut tbar = 0.0;
        // right edge
        for k in 0..3 {
            let abar = cr * (self.pr[k] - self.right) / self.sr;
            let pbar = cr * self.ar.0[k] / self.sr;
            bbar[k] += abar * self.ar.1[k];
            tbar += abar * self.ar.2[k];
            for j in 0..5 {
                qbar[j] += pbar * P[k][j];
            }
        }
        // left edge: weights of β_{2−k}, candidates on the mirrored stencil
        for k in 0..3 {
            let abar = cl * (self.pl[k] - self.left) / self.sl;
            let pbar = cl * self.al.0[k] / self.sl;
            bbar[2 - k] += abar * self.al.1[k];
            tbar += abar * self.al.2[k];
            for j in 0..5 {
                qbar[4 - j] += pbar * P[k][j];
            }
        }
        bbar[0] += self.sg * tbar;
        bbar[2] -= self.sg * tbar;
        let c2 = 13.0 / 6.0;
        for k in 0..3 {
            let (dbar, ebar) = (c2 * self.dv[k] * bbar[k], 0.5 * self.ev[k] * bbar[k]);
            for j in 0..5 {
                qbar[j] += dbar * DB[k][j] + ebar * EB[k][j];
            }
        }
        qbar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stencils() -> Vec<[f64; 5]> {
        let mut out = vec![];
        let mut x = 0.37_f64;
        for _ in 0..40 {
            let mut s = [0.0; 5];
            for v in s.iter_mut() {
                x = (x * 9301.0 + 49297.0) % 233280.0 / 233280.0 * 1000.0;
                *v = (x / 1000.0) * 2.0 - 1.0;
            }
            out.push(s);
        }
        // smooth stencils, where weights are near-linear
        for k in 0..10 {
            let t = 0.3 * k as f64;
            out.push([(t).sin(), (t + 0.1).sin(), (t + 0.2).sin(), (t + 0.3).sin(), (t + 0.4).sin()]);
        }
        out
    }

    const ALL: [Reconstruction; 5] = [
        Reconstruction::Muscl(Limiter::Minmod),
        Reconstruction::Muscl(Limiter::VanLeer),
        Reconstruction::Muscl(Limiter::Mc),
        Reconstruction::Weno5(WenoWeights::JiangShu),
        Reconstruction::Weno5(WenoWeights::Z),
    ];

    #[test]
    fn tangents_match_central_differences_and_adjoints_match_tangents() {
        for r in ALL {
            for (i, s) in stencils().iter().enumerate() {
                let ds = stencils()[(i + 7) % 50];
                let (l, rt, dl, dr) = r.edges_jvp(s, &ds);
                let (l0, r0) = r.edges(s);
                assert!((l - l0).abs() < 1e-15 && (rt - r0).abs() < 1e-15);
                let h = 1e-7;
                let shift = |t: f64| -> [f64; 5] { std::array::from_fn(|j| s[j] + t * ds[j]) };
                let (lp, rp) = r.edges(&shift(h));
                let (lm, rm) = r.edges(&shift(-h));
                let (fl, fr) = ((lp - lm) / (2.0 * h), (rp - rm) / (2.0 * h));
                assert!((fl - dl).abs() < 1e-6 * (1.0 + dl.abs()), "{r:?} left: FD {fl} vs {dl}");
                assert!((fr - dr).abs() < 1e-6 * (1.0 + dr.abs()), "{r:?} right: FD {fr} vs {dr}");
                // <(cl, cr), J ds> = <Jᵀ (cl, cr), ds>
                let (cl, cr) = (0.3 + 0.1 * i as f64, -0.7);
                let qb = r.edges_vjp(s, cl, cr);
                let lhs = cl * dl + cr * dr;
                let rhs: f64 = (0..5).map(|j| qb[j] * ds[j]).sum();
                assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "{r:?}: dot-product {lhs} vs {rhs}");
            }
        }
    }

    #[test]
    fn weno_reproduces_quartic_edge_values() {
        // cell averages of x^4 on cells [k-3, k-2] for k=0..5, centre cell [-1,0]: right edge value at x=0 is 0
        let avg = |a: f64, b: f64| (b.powi(5) - a.powi(5)) / 5.0 / (b - a);
        let q = [avg(-3.0, -2.0), avg(-2.0, -1.0), avg(-1.0, 0.0), avg(0.0, 1.0), avg(1.0, 2.0)];
        // smooth data: linear weights give the exact value for polynomials of degree <= 4
        let lin: f64 = (0..3).map(|k| D[k] * dot5(&P[k], &q)).sum();
        assert!(lin.abs() < 1e-12, "linear weights: {lin}");
    }
}
