//! Numerical fluxes for the Burgers flux f(q) = q²/2, and the matching fluctuation splitting for the
//! advective terms of coupled Burgers.

/// Numerical flux at a face from its left state `a` and right state `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumericalFlux {
    /// Local Lax–Friedrichs (Rusanov 1961): `½(f(a) + f(b)) − ½ max(|a|, |b|)(b − a)`.
    Rusanov,
    /// Exact Godunov flux for the convex flux q²/2 (the exact Riemann solution sampled at the face).
    Godunov,
}

impl NumericalFlux {
    /// Flux value.
    #[inline]
    pub fn flux(&self, a: f64, b: f64) -> f64 {
        self.flux_grad(a, b).0
    }

    /// Flux value and its partial derivatives with respect to `a` and `b` (on the branch taken).
    #[inline]
    pub fn flux_grad(&self, a: f64, b: f64) -> (f64, f64, f64) {
        match self {
            NumericalFlux::Rusanov => {
                let (alpha, da, db) =
                    if a.abs() >= b.abs() { (a.abs(), sign(a), 0.0) } else { (b.abs(), 0.0, sign(b)) };
                let v = 0.25 * (a * a + b * b) - 0.5 * alpha * (b - a);
                (v, 0.5 * a + 0.5 * alpha - 0.5 * da * (b - a), 0.5 * b - 0.5 * alpha - 0.5 * db * (b - a))
            }
            NumericalFlux::Godunov => {
                if a <= b {
                    // rarefaction or contact: the minimum of f over [a, b]
                    if a > 0.0 {
                        (0.5 * a * a, a, 0.0)
                    } else if b < 0.0 {
                        (0.5 * b * b, 0.0, b)
                    } else {
                        (0.0, 0.0, 0.0)
                    }
                } else if a * a >= b * b {
                    // shock: the maximum of f over [b, a]
                    (0.5 * a * a, a, 0.0)
                } else {
                    (0.5 * b * b, 0.0, b)
                }
            }
        }
    }

    /// Fluctuation splitting for the advective term `a φ_x`: from the left and right states of the advecting
    /// velocity at a face, the coefficients `(A⁺, A⁻)` that carry the jump of φ into the right and left cell,
    /// with their partial derivatives `[[∂A⁺/∂aL, ∂A⁺/∂aR], [∂A⁻/∂aL, ∂A⁻/∂aR]]`.
    /// Rusanov: `A± = ½(s ± max(|aL|, |aR|))`, s the mean; Godunov: upwind, `A⁺ = max(s, 0)`, `A⁻ = min(s, 0)`.
    #[inline]
    pub fn split(&self, al: f64, ar: f64) -> (f64, f64, [[f64; 2]; 2]) {
        let s = 0.5 * (al + ar);
        match self {
            NumericalFlux::Rusanov => {
                let (alpha, da, db) =
                    if al.abs() >= ar.abs() { (al.abs(), sign(al), 0.0) } else { (ar.abs(), 0.0, sign(ar)) };
                (
                    0.5 * (s + alpha),
                    0.5 * (s - alpha),
                    [[0.25 + 0.5 * da, 0.25 + 0.5 * db], [0.25 - 0.5 * da, 0.25 - 0.5 * db]],
                )
            }
            NumericalFlux::Godunov => {
                if s > 0.0 {
                    (s, 0.0, [[0.5, 0.5], [0.0, 0.0]])
                } else {
                    (0.0, s, [[0.0, 0.0], [0.5, 0.5]])
                }
            }
        }
    }
}

#[inline]
fn sign(x: f64) -> f64 {
    if x >= 0.0 { 1.0 } else { -1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistent_and_differentiable() {
        for f in [NumericalFlux::Rusanov, NumericalFlux::Godunov] {
            for &q in &[-1.3, -0.2, 0.0, 0.7, 2.0] {
                assert!((f.flux(q, q) - 0.5 * q * q).abs() < 1e-15, "{f:?} not consistent at {q}");
            }
            for &(a, b) in &[(1.0, 0.3), (-0.4, 0.8), (0.5, 1.5), (-1.5, -0.5), (1.2, -0.7), (0.3, -1.1)] {
                let (_, ga, gb) = f.flux_grad(a, b);
                let h = 1e-7;
                let fa = (f.flux(a + h, b) - f.flux(a - h, b)) / (2.0 * h);
                let fb = (f.flux(a, b + h) - f.flux(a, b - h)) / (2.0 * h);
                assert!((fa - ga).abs() < 1e-7 && (fb - gb).abs() < 1e-7, "{f:?} at ({a},{b})");
                let (p, m, g) = f.split(a, b);
                let pa = (f.split(a + h, b).0 - f.split(a - h, b).0) / (2.0 * h);
                let mb = (f.split(a, b + h).1 - f.split(a, b - h).1) / (2.0 * h);
                assert!((pa - g[0][0]).abs() < 1e-7 && (mb - g[1][1]).abs() < 1e-7, "{f:?} split at ({a},{b})");
                assert!((p + m - 0.5 * (a + b)).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn godunov_is_the_exact_riemann_flux() {
        let g = NumericalFlux::Godunov;
        assert_eq!(g.flux(-1.0, 1.0), 0.0); // transonic rarefaction
        assert_eq!(g.flux(1.0, -1.0), 0.5); // stationary shock
        assert_eq!(g.flux(2.0, 1.0), 2.0); // right-moving shock
        assert_eq!(g.flux(-2.0, -1.0), 0.5); // left-moving rarefaction: f(b)
    }
}
