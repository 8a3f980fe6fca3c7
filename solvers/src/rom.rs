//! The parametric benchmark problems of the reduced-order-model literature (Φ-ROM, CROM, DINo), as semi-discrete
//! right-hand sides with exact tangents and adjoints; stepped by [`Tableau::euler`](crate::rk::Tableau::euler) as
//! in the references.
//!
//! - [`BurgersSource1d`]: the inviscid Burgers equation with an exponential source (Rewienski's problem),
//!   `u_t + (u²/2)_x = a e^{μx}` on `[0, L]`, first-order upwind finite volume, the inflow cell held fixed.
//! - [`Diffusion2d`]: `u_t = D Δu` on a square grid with the five-point Laplacian and zero values one spacing
//!   outside the grid.
//!
//! The scalar parameter of each (μ, D) plays the role of [`SemiDiscrete::nu`]: tangents and adjoints include it.

use crate::fv::FvBurgers1d;
use crate::scheme::SemiDiscrete;
use crate::sorption::DiffusionSorption1d;
use crate::spectral::{SpectralBurgers1d, SpectralRhs};
use crate::{ConfigError, check_non_negative, check_positive};

/// `u_t + (u²/2)_x = a e^{μ x}` on `[0, L]` with `n` cells (centres `x_j = (j + ½) L/n`), the Godunov flux (the
/// backward difference `−(u_j² − u_{j−1}²)/(2Δx)` where `u > 0`, as in the reference), the source at the cell
/// centres and `F_0 = 0`: the inflow cell keeps its initial value. The right end is an outflow (the backward
/// difference needs no value beyond it).
#[derive(Clone, Debug)]
pub struct BurgersSource1d {
    n: usize,
    dx: f64,
    mu: f64,
    amplitude: f64,
    x: Vec<f64>,
}

impl BurgersSource1d {
    /// `n ≥ 2` cells on `[0, length]`, source amplitude `a` and rate `μ` (all finite, `length > 0`).
    pub fn new(n: usize, length: f64, amplitude: f64, mu: f64) -> Result<Self, ConfigError> {
        if n < 2 {
            return Err(ConfigError::GridTooSmall { axis: "x", n, min: 2 });
        }
        check_positive("length", length)?;
        for (name, value) in [("source amplitude", amplitude), ("mu", mu)] {
            if !value.is_finite() {
                return Err(ConfigError::NotFinite { name, value });
            }
        }
        let dx = length / n as f64;
        Ok(Self { n, dx, mu, amplitude, x: (0..n).map(|j| (j as f64 + 0.5) * dx).collect() })
    }

    /// The cell centres.
    pub fn centres(&self) -> &[f64] {
        &self.x
    }

    /// The cell width.
    pub fn dx(&self) -> f64 {
        self.dx
    }

    /// A stable explicit-Euler step for the state `u`: `cfl · Δx / max |u|`.
    pub fn stable_dt(&self, u: &[f64], cfl: f64) -> f64 {
        cfl * self.dx / u.iter().fold(1e-12_f64, |m, v| m.max(v.abs()))
    }
}

/// The Godunov flux of `u²/2` and its partial derivatives in the left and right states.
#[inline]
fn godunov(l: f64, r: f64) -> (f64, f64, f64) {
    // max(f(max(l, 0)), f(min(r, 0))) for the convex f(u) = u²/2
    let (a, b) = (l.max(0.0), r.min(0.0));
    if a * a >= b * b { (0.5 * a * a, a, 0.0) } else { (0.5 * b * b, 0.0, b) }
}

impl SemiDiscrete for BurgersSource1d {
    type Work = ();
    fn state_len(&self) -> usize {
        self.n
    }
    fn nu(&self) -> f64 {
        self.mu
    }
    fn work(&self) {}
    fn rhs(&self, u: &[f64], out: &mut [f64], _: &mut ()) {
        out[0] = 0.0;
        for j in 1..self.n {
            let (fl, _, _) = godunov(u[j - 1], u[j]);
            // the face beyond the last cell: outflow, the upwind state
            let (fr, _, _) = if j + 1 < self.n { godunov(u[j], u[j + 1]) } else { godunov(u[j], u[j]) };
            out[j] = -(fr - fl) / self.dx + self.amplitude * (self.mu * self.x[j]).exp();
        }
    }
    fn rhs_jvp(&self, u: &[f64], du: &[f64], dmu: f64, out: &mut [f64], _: &mut ()) {
        out[0] = 0.0;
        for j in 1..self.n {
            let (_, al, bl) = godunov(u[j - 1], u[j]);
            let dfl = al * du[j - 1] + bl * du[j];
            let dfr = if j + 1 < self.n {
                let (_, a, b) = godunov(u[j], u[j + 1]);
                a * du[j] + b * du[j + 1]
            } else {
                let (_, a, b) = godunov(u[j], u[j]);
                (a + b) * du[j]
            };
            let x = self.x[j];
            out[j] = -(dfr - dfl) / self.dx + self.amplitude * x * (self.mu * x).exp() * dmu;
        }
    }
    fn rhs_vjp(&self, u: &[f64], g: &[f64], out: &mut [f64], _: &mut ()) -> f64 {
        out.fill(0.0);
        let mut gmu = 0.0;
        for j in 1..self.n {
            let c = g[j] / self.dx;
            let (_, al, bl) = godunov(u[j - 1], u[j]);
            out[j - 1] += c * al;
            out[j] += c * bl;
            if j + 1 < self.n {
                let (_, a, b) = godunov(u[j], u[j + 1]);
                out[j] -= c * a;
                out[j + 1] -= c * b;
            } else {
                let (_, a, b) = godunov(u[j], u[j]);
                out[j] -= c * (a + b);
            }
            let x = self.x[j];
            gmu += g[j] * self.amplitude * x * (self.mu * x).exp();
        }
        gmu
    }
}

/// `u_t = D Δu` on an `n × n` grid of spacing `h` (state `u[j n + i]`, x fastest), the five-point Laplacian, and
/// `u = 0` one spacing outside the grid on every side.
#[derive(Clone, Debug)]
pub struct Diffusion2d {
    n: usize,
    h: f64,
    d: f64,
}

impl Diffusion2d {
    /// `n ≥ 1` points per axis at spacing `h > 0`, diffusivity `D ≥ 0`.
    pub fn new(n: usize, h: f64, d: f64) -> Result<Self, ConfigError> {
        if n == 0 {
            return Err(ConfigError::GridTooSmall { axis: "x", n, min: 1 });
        }
        check_positive("spacing", h)?;
        check_non_negative("diffusivity", d)?;
        Ok(Self { n, h, d })
    }

    /// The largest stable explicit-Euler step, `h²/(4D)`.
    pub fn stable_dt(&self) -> f64 {
        self.h * self.h / (4.0 * self.d.max(1e-300))
    }

    /// `out = Δ_h u` (without the factor D).
    fn laplacian(&self, u: &[f64], out: &mut [f64]) {
        let (n, s) = (self.n, 1.0 / (self.h * self.h));
        for j in 0..n {
            for i in 0..n {
                let k = j * n + i;
                let w = if i > 0 { u[k - 1] } else { 0.0 };
                let e = if i + 1 < n { u[k + 1] } else { 0.0 };
                let so = if j > 0 { u[k - n] } else { 0.0 };
                let no = if j + 1 < n { u[k + n] } else { 0.0 };
                out[k] = (w + e + so + no - 4.0 * u[k]) * s;
            }
        }
    }
}

impl SemiDiscrete for Diffusion2d {
    /// `Δ_h u` for the parameter derivative.
    type Work = Vec<f64>;
    fn state_len(&self) -> usize {
        self.n * self.n
    }
    fn nu(&self) -> f64 {
        self.d
    }
    fn work(&self) -> Vec<f64> {
        vec![0.0; self.n * self.n]
    }
    fn rhs(&self, u: &[f64], out: &mut [f64], _: &mut Vec<f64>) {
        self.laplacian(u, out);
        out.iter_mut().for_each(|v| *v *= self.d);
    }
    fn rhs_jvp(&self, u: &[f64], du: &[f64], dd: f64, out: &mut [f64], w: &mut Vec<f64>) {
        // F = D Δ_h u is linear in u and in D
        self.rhs(du, out, w);
        if dd != 0.0 {
            self.laplacian(u, w);
            crate::scheme::axpy(out, dd, w);
        }
    }
    fn rhs_vjp(&self, u: &[f64], g: &[f64], out: &mut [f64], w: &mut Vec<f64>) -> f64 {
        // Δ_h is symmetric: (D Δ_h)ᵀ g = D Δ_h g; ∂F/∂D = Δ_h u
        self.laplacian(u, w);
        self.rhs(g, out, &mut Vec::new());
        g.iter().zip(w.iter()).map(|(a, b)| a * b).sum()
    }
}

/// The right-hand side of a reduced-order model's full-order problem, one value per sample: either benchmark of
/// this module, the viscous Burgers equation in 1D (finite volume or spectral), or diffusion–sorption.
#[derive(Clone, Debug)]
pub enum RomRhs {
    BurgersSource(BurgersSource1d),
    Diffusion(Diffusion2d),
    Viscous1d(FvBurgers1d),
    Spectral1d(SpectralRhs<SpectralBurgers1d>),
    Sorption(DiffusionSorption1d),
}

/// Scratch space of [`RomRhs`] (the variant of its right-hand side).
pub enum RomWork {
    Plain(Vec<f64>),
    Fv(<FvBurgers1d as SemiDiscrete>::Work),
    Spectral(<SpectralRhs<SpectralBurgers1d> as SemiDiscrete>::Work),
}

impl Default for RomWork {
    fn default() -> Self {
        RomWork::Plain(Vec::new())
    }
}

impl RomRhs {
    /// `w` made the scratch of this right-hand side (it is, unless it was made for another one).
    fn ready<'a>(&self, w: &'a mut RomWork) -> &'a mut RomWork {
        let fits = matches!(
            (self, &*w),
            (RomRhs::BurgersSource(_) | RomRhs::Diffusion(_) | RomRhs::Sorption(_), RomWork::Plain(_))
                | (RomRhs::Viscous1d(_), RomWork::Fv(_))
                | (RomRhs::Spectral1d(_), RomWork::Spectral(_))
        );
        if !fits {
            *w = self.work();
        }
        w
    }
}

macro_rules! dispatch {
    ($self:ident, $w:ident, $s:ident, $work:ident => $e:expr) => {
        match ($self, $self.ready($w)) {
            (RomRhs::BurgersSource($s), RomWork::Plain(_)) => {
                let $work = &mut ();
                $e
            }
            (RomRhs::Diffusion($s), RomWork::Plain($work)) => $e,
            (RomRhs::Sorption($s), RomWork::Plain(_)) => {
                let $work = &mut ();
                $e
            }
            (RomRhs::Viscous1d($s), RomWork::Fv($work)) => $e,
            (RomRhs::Spectral1d($s), RomWork::Spectral($work)) => $e,
            _ => unreachable!("RomRhs::ready matches the scratch to the right-hand side"),
        }
    };
}

impl SemiDiscrete for RomRhs {
    type Work = RomWork;
    fn state_len(&self) -> usize {
        match self {
            RomRhs::BurgersSource(s) => s.state_len(),
            RomRhs::Diffusion(s) => s.state_len(),
            RomRhs::Viscous1d(s) => s.state_len(),
            RomRhs::Spectral1d(s) => s.state_len(),
            RomRhs::Sorption(s) => s.state_len(),
        }
    }
    fn nu(&self) -> f64 {
        match self {
            RomRhs::BurgersSource(s) => s.nu(),
            RomRhs::Diffusion(s) => s.nu(),
            RomRhs::Viscous1d(s) => s.nu(),
            RomRhs::Spectral1d(s) => s.nu(),
            RomRhs::Sorption(s) => s.nu(),
        }
    }
    fn work(&self) -> RomWork {
        match self {
            RomRhs::BurgersSource(_) | RomRhs::Sorption(_) => RomWork::Plain(Vec::new()),
            RomRhs::Diffusion(s) => RomWork::Plain(s.work()),
            RomRhs::Viscous1d(s) => RomWork::Fv(s.work()),
            RomRhs::Spectral1d(s) => RomWork::Spectral(s.work()),
        }
    }
    fn rhs(&self, u: &[f64], out: &mut [f64], w: &mut RomWork) {
        dispatch!(self, w, s, work => s.rhs(u, out, work))
    }
    fn rhs_jvp(&self, u: &[f64], du: &[f64], dp: f64, out: &mut [f64], w: &mut RomWork) {
        dispatch!(self, w, s, work => s.rhs_jvp(u, du, dp, out, work))
    }
    fn rhs_vjp(&self, u: &[f64], g: &[f64], out: &mut [f64], w: &mut RomWork) -> f64 {
        dispatch!(self, w, s, work => s.rhs_vjp(u, g, out, work))
    }
}
