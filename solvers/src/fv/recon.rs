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

    /// Value at the right edge of the cell (left state of the face `c + 1/2`).
    #[inline]
    pub fn right_edge(&self, s: &[f64; 5]) -> f64 {
        match *self {
            Reconstruction::Muscl(l) => s[2] + 0.5 * limit(l, s[2] - s[1], s[3] - s[2]),
            Reconstruction::Weno5(w) => weno5(w, s),
        }
    }

    /// Value at the left edge of the cell (right state of the face `c − 1/2`).
    #[inline]
    pub fn left_edge(&self, s: &[f64; 5]) -> f64 {
        match *self {
            Reconstruction::Muscl(l) => s[2] - 0.5 * limit(l, s[2] - s[1], s[3] - s[2]),
            Reconstruction::Weno5(w) => weno5(w, &[s[4], s[3], s[2], s[1], s[0]]),
        }
    }

    /// [`right_edge`](Self::right_edge) and its gradient with respect to the stencil.
    #[inline]
    pub fn right_edge_grad(&self, s: &[f64; 5]) -> (f64, [f64; 5]) {
        match *self {
            Reconstruction::Muscl(l) => {
                let (v, ga, gb) = limit_grad(l, s[2] - s[1], s[3] - s[2]);
                (s[2] + 0.5 * v, [0.0, -0.5 * ga, 1.0 + 0.5 * (ga - gb), 0.5 * gb, 0.0])
            }
            Reconstruction::Weno5(w) => weno5_grad(w, s),
        }
    }

    /// [`left_edge`](Self::left_edge) and its gradient with respect to the stencil.
    #[inline]
    pub fn left_edge_grad(&self, s: &[f64; 5]) -> (f64, [f64; 5]) {
        match *self {
            Reconstruction::Muscl(l) => {
                let (v, ga, gb) = limit_grad(l, s[2] - s[1], s[3] - s[2]);
                (s[2] - 0.5 * v, [0.0, 0.5 * ga, 1.0 - 0.5 * (ga - gb), -0.5 * gb, 0.0])
            }
            Reconstruction::Weno5(w) => {
                let (v, g) = weno5_grad(w, &[s[4], s[3], s[2], s[1], s[0]]);
                (v, [g[4], g[3], g[2], g[1], g[0]])
            }
        }
    }
}

/// Limited slope from the backward difference `a` and forward difference `b`.
#[inline]
pub fn limit(l: Limiter, a: f64, b: f64) -> f64 {
    limit_grad(l, a, b).0
}

/// Limited slope and its partial derivatives with respect to `a` and `b`.
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

const D: [f64; 3] = [0.1, 0.6, 0.3];
const P: [[f64; 5]; 3] = [
    [2.0 / 6.0, -7.0 / 6.0, 11.0 / 6.0, 0.0, 0.0],
    [0.0, -1.0 / 6.0, 5.0 / 6.0, 2.0 / 6.0, 0.0],
    [0.0, 0.0, 2.0 / 6.0, 5.0 / 6.0, -1.0 / 6.0],
];

#[inline]
fn dot5(a: &[f64; 5], b: &[f64; 5]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3] + a[4] * b[4]
}

#[inline]
fn betas(q: &[f64; 5]) -> [f64; 3] {
    let d0 = q[0] - 2.0 * q[1] + q[2];
    let e0 = q[0] - 4.0 * q[1] + 3.0 * q[2];
    let d1 = q[1] - 2.0 * q[2] + q[3];
    let e1 = q[1] - q[3];
    let d2 = q[2] - 2.0 * q[3] + q[4];
    let e2 = 3.0 * q[2] - 4.0 * q[3] + q[4];
    let c = 13.0 / 12.0;
    [c * d0 * d0 + 0.25 * e0 * e0, c * d1 * d1 + 0.25 * e1 * e1, c * d2 * d2 + 0.25 * e2 * e2]
}

/// WENO5 value at the right edge of the centre cell of `q`.
#[inline]
pub fn weno5(w: WenoWeights, q: &[f64; 5]) -> f64 {
    let b = betas(q);
    let alpha = match w {
        WenoWeights::JiangShu => {
            let eps = 1e-6;
            [
                D[0] / ((eps + b[0]) * (eps + b[0])),
                D[1] / ((eps + b[1]) * (eps + b[1])),
                D[2] / ((eps + b[2]) * (eps + b[2])),
            ]
        }
        WenoWeights::Z => {
            let eps = 1e-40;
            let tau = (b[0] - b[2]).abs();
            let r = [tau / (b[0] + eps), tau / (b[1] + eps), tau / (b[2] + eps)];
            [D[0] * (1.0 + r[0] * r[0]), D[1] * (1.0 + r[1] * r[1]), D[2] * (1.0 + r[2] * r[2])]
        }
    };
    let s = alpha[0] + alpha[1] + alpha[2];
    (alpha[0] * dot5(&P[0], q) + alpha[1] * dot5(&P[1], q) + alpha[2] * dot5(&P[2], q)) / s
}

/// WENO5 value and its gradient with respect to the stencil.
pub fn weno5_grad(w: WenoWeights, q: &[f64; 5]) -> (f64, [f64; 5]) {
    let d0 = q[0] - 2.0 * q[1] + q[2];
    let e0 = q[0] - 4.0 * q[1] + 3.0 * q[2];
    let d1 = q[1] - 2.0 * q[2] + q[3];
    let e1 = q[1] - q[3];
    let d2 = q[2] - 2.0 * q[3] + q[4];
    let e2 = 3.0 * q[2] - 4.0 * q[3] + q[4];
    let c = 13.0 / 12.0;
    let b = [c * d0 * d0 + 0.25 * e0 * e0, c * d1 * d1 + 0.25 * e1 * e1, c * d2 * d2 + 0.25 * e2 * e2];
    let c2 = 13.0 / 6.0;
    let gb = [
        [c2 * d0 + 0.5 * e0, -2.0 * c2 * d0 - 2.0 * e0, c2 * d0 + 1.5 * e0, 0.0, 0.0],
        [0.0, c2 * d1 + 0.5 * e1, -2.0 * c2 * d1, c2 * d1 - 0.5 * e1, 0.0],
        [0.0, 0.0, c2 * d2 + 1.5 * e2, -2.0 * c2 * d2 - 2.0 * e2, c2 * d2 + 0.5 * e2],
    ];
    let mut alpha = [0.0; 3];
    let mut galpha = [[0.0; 5]; 3];
    match w {
        WenoWeights::JiangShu => {
            let eps = 1e-6;
            for k in 0..3 {
                let den = eps + b[k];
                alpha[k] = D[k] / (den * den);
                let da = -2.0 * D[k] / (den * den * den);
                for j in 0..5 {
                    galpha[k][j] = da * gb[k][j];
                }
            }
        }
        WenoWeights::Z => {
            let eps = 1e-40;
            let diff = b[0] - b[2];
            let tau = diff.abs();
            let sg = if diff >= 0.0 { 1.0 } else { -1.0 };
            for k in 0..3 {
                let den = b[k] + eps;
                let r = tau / den;
                alpha[k] = D[k] * (1.0 + r * r);
                for j in 0..5 {
                    let gtau = sg * (gb[0][j] - gb[2][j]);
                    let gr = gtau / den - tau * gb[k][j] / (den * den);
                    galpha[k][j] = D[k] * 2.0 * r * gr;
                }
            }
        }
    }
    let s = alpha[0] + alpha[1] + alpha[2];
    let p = [dot5(&P[0], q), dot5(&P[1], q), dot5(&P[2], q)];
    let value = (alpha[0] * p[0] + alpha[1] * p[1] + alpha[2] * p[2]) / s;
    let mut g = [0.0; 5];
    for (j, gj) in g.iter_mut().enumerate() {
        let mut num = 0.0;
        let mut gs = 0.0;
        for k in 0..3 {
            num += galpha[k][j] * p[k] + alpha[k] * P[k][j];
            gs += galpha[k][j];
        }
        *gj = (num - value * gs) / s;
    }
    (value, g)
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

    #[test]
    fn gradients_match_central_differences() {
        let recs = [
            Reconstruction::Muscl(Limiter::Minmod),
            Reconstruction::Muscl(Limiter::VanLeer),
            Reconstruction::Muscl(Limiter::Mc),
            Reconstruction::Weno5(WenoWeights::JiangShu),
            Reconstruction::Weno5(WenoWeights::Z),
        ];
        for r in recs {
            for s in stencils() {
                for right in [true, false] {
                    let (v, g) = if right { r.right_edge_grad(&s) } else { r.left_edge_grad(&s) };
                    let f = |s: &[f64; 5]| if right { r.right_edge(s) } else { r.left_edge(s) };
                    assert!((v - f(&s)).abs() < 1e-14);
                    for j in 0..5 {
                        let h = 1e-7;
                        let (mut a, mut b) = (s, s);
                        a[j] += h;
                        b[j] -= h;
                        let fd = (f(&a) - f(&b)) / (2.0 * h);
                        assert!(
                            (fd - g[j]).abs() < 1e-6 * (1.0 + g[j].abs()),
                            "{r:?} right={right} j={j}: {fd} vs {}",
                            g[j]
                        );
                    }
                }
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
