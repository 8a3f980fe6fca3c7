//! Diffusion with nonlinear (Freundlich) sorption in one dimension, the groundwater-transport benchmark of PDEBench
//! (Takamoto et al. 2022) and of physics-constrained learning (PI-HC-MoE):
//!
//! ```text
//! R(u) u_t = D u_xx on (0, L),   u(t, 0) = u_in,   u(t, L) = −D u_x(t, L),
//! R(u) = 1 + k (max(u, 0) + ε)^{n_f − 1},   k = (1 − φ)/φ · ρ_s k_f n_f,   ε = 10⁻⁶,
//! ```
//!
//! with porosity φ, bulk density ρ_s and the Freundlich parameters k_f, n_f. The right boundary is an outflow whose
//! flux `−D u_x` equals the concentration there; this is the condition PDEBench's solver imposes through its ghost
//! value `D (u_{n−2} − u_{n−1})/Δx` (some later papers write the residual with the opposite sign).
//!
//! [`DiffusionSorption1d`] is the cell-centred finite-volume semi-discretisation, second order in space: two-point
//! fluxes between cells, the inflow value imposed on the left face (`F = −2D (u₀ − u_in)/Δx`), and on the right face
//! the value `u_f = 2D u_{n−1}/(Δx + 2D)` that satisfies `u_f = −D (u_f − u_{n−1})/(Δx/2)`, whose outflow flux is
//! `u_f`. Each cell's `du_i/dt` is its flux balance divided by `Δx R(u_i)`. A linear profile is reproduced exactly,
//! so the steady state `u = u_in (1 − x/(L + D))` is a fixed point of the scheme. Tangents and adjoints cover the
//! state and `D` ([`SemiDiscrete::nu`]).

use crate::scheme::SemiDiscrete;
use crate::{ConfigError, check_non_negative, check_positive};

/// The regularisation ε of the Freundlich term (PDEBench's).
pub const SORPTION_EPSILON: f64 = 1e-6;

/// The physical constants of [`DiffusionSorption1d`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SorptionConstants {
    /// Diffusivity D.
    pub diffusivity: f64,
    /// Porosity φ in (0, 1).
    pub porosity: f64,
    /// Bulk density ρ_s.
    pub density: f64,
    /// Freundlich coefficient k_f.
    pub freundlich_k: f64,
    /// Freundlich exponent n_f.
    pub freundlich_n: f64,
}

impl SorptionConstants {
    /// PDEBench's constants: D = 5·10⁻⁴, φ = 0.29, ρ_s = 2880, k_f = 3.5·10⁻⁴, n_f = 0.874.
    pub fn pdebench() -> Self {
        Self { diffusivity: 5e-4, porosity: 0.29, density: 2880.0, freundlich_k: 3.5e-4, freundlich_n: 0.874 }
    }

    /// `k = (1 − φ)/φ · ρ_s k_f n_f`.
    pub fn sorption_factor(&self) -> f64 {
        (1.0 - self.porosity) / self.porosity * self.density * self.freundlich_k * self.freundlich_n
    }

    /// The retardation factor `R(u)` and its derivative `R'(u)`.
    #[inline]
    pub fn retardation(&self, u: f64) -> (f64, f64) {
        retardation(self.sorption_factor(), self.freundlich_n, u)
    }
}

#[inline]
fn retardation(k: f64, nf: f64, u: f64) -> (f64, f64) {
    let c = u.max(0.0) + SORPTION_EPSILON;
    let p = c.powf(nf - 1.0);
    let dr = if u > 0.0 { k * (nf - 1.0) * p / c } else { 0.0 };
    (1.0 + k * p, dr)
}

/// The finite-volume right-hand side of the diffusion–sorption equation (module documentation) on `n` cells of
/// `[0, L]`, centres `(j + ½) L/n`.
#[derive(Clone, Debug)]
pub struct DiffusionSorption1d {
    n: usize,
    dx: f64,
    inflow: f64,
    constants: SorptionConstants,
    k: f64,
}

impl DiffusionSorption1d {
    /// `n ≥ 2` cells on `[0, length]`, the inflow value `u_in` and the constants (D ≥ 0, 0 < φ < 1, ρ_s, k_f ≥ 0,
    /// n_f > 0).
    pub fn new(n: usize, length: f64, inflow: f64, constants: SorptionConstants) -> Result<Self, ConfigError> {
        if n < 2 {
            return Err(ConfigError::GridTooSmall { axis: "x", n, min: 2 });
        }
        check_positive("length", length)?;
        check_non_negative("diffusivity", constants.diffusivity)?;
        check_positive("porosity", constants.porosity)?;
        if constants.porosity >= 1.0 {
            return Err(ConfigError::NotPositive { name: "1 − porosity", value: 1.0 - constants.porosity });
        }
        check_non_negative("bulk density", constants.density)?;
        check_non_negative("Freundlich k_f", constants.freundlich_k)?;
        check_positive("Freundlich n_f", constants.freundlich_n)?;
        if !inflow.is_finite() {
            return Err(ConfigError::NotFinite { name: "inflow value", value: inflow });
        }
        Ok(Self { n, dx: length / n as f64, inflow, constants, k: constants.sorption_factor() })
    }

    /// The cell centres.
    pub fn centres(&self) -> Vec<f64> {
        (0..self.n).map(|j| (j as f64 + 0.5) * self.dx).collect()
    }

    /// The cell width.
    pub fn dx(&self) -> f64 {
        self.dx
    }

    /// The constants.
    pub fn constants(&self) -> SorptionConstants {
        self.constants
    }

    /// The largest step for which classical RK4 is stable on this problem: the spectral radius of the diffusion
    /// operator is at most `4D/Δx²` (R ≥ 1), and RK4's real stability interval reaches 2.78.
    pub fn rk4_stable_dt(&self) -> f64 {
        2.78 * self.dx * self.dx / (4.0 * self.constants.diffusivity.max(f64::MIN_POSITIVE))
    }

    /// The right face's outflow coefficient `c = 2D/(Δx + 2D)` (the flux is `c u_{n−1}`) and `dc/dD`.
    #[inline]
    fn outflow(&self) -> (f64, f64) {
        let d = self.constants.diffusivity;
        let s = self.dx + 2.0 * d;
        (2.0 * d / s, 2.0 * self.dx / (s * s))
    }

    /// The face fluxes `F_{j−½}`, `j = 0..=n`, of `u` for diffusivity `d` (the outflow coefficient `c`).
    #[inline]
    fn flux(&self, u: &[f64], j: usize, d: f64, c: f64) -> f64 {
        if j == 0 {
            -2.0 * d * (u[0] - self.inflow) / self.dx
        } else if j == self.n {
            c * u[self.n - 1]
        } else {
            -d * (u[j] - u[j - 1]) / self.dx
        }
    }
}

impl SemiDiscrete for DiffusionSorption1d {
    type Work = ();
    fn state_len(&self) -> usize {
        self.n
    }
    fn nu(&self) -> f64 {
        self.constants.diffusivity
    }
    fn work(&self) {}
    fn rhs(&self, u: &[f64], out: &mut [f64], _: &mut ()) {
        let d = self.constants.diffusivity;
        let (c, _) = self.outflow();
        let mut left = self.flux(u, 0, d, c);
        for j in 0..self.n {
            let right = self.flux(u, j + 1, d, c);
            let (r, _) = retardation(self.k, self.constants.freundlich_n, u[j]);
            out[j] = (left - right) / (self.dx * r);
            left = right;
        }
    }
    fn rhs_jvp(&self, u: &[f64], du: &[f64], dd: f64, out: &mut [f64], _: &mut ()) {
        let d = self.constants.diffusivity;
        let (c, dc) = self.outflow();
        let mut left = self.flux(u, 0, d, c);
        let mut dleft = -2.0 * (d * du[0] + dd * (u[0] - self.inflow)) / self.dx;
        for j in 0..self.n {
            let right = self.flux(u, j + 1, d, c);
            let dright = if j + 1 == self.n {
                c * du[j] + dc * dd * u[j]
            } else {
                -d * (du[j + 1] - du[j]) / self.dx - dd * (u[j + 1] - u[j]) / self.dx
            };
            let (r, dr) = retardation(self.k, self.constants.freundlich_n, u[j]);
            let s = (left - right) / self.dx;
            out[j] = (dleft - dright) / (self.dx * r) - s * dr * du[j] / (r * r);
            left = right;
            dleft = dright;
        }
    }
    fn rhs_vjp(&self, u: &[f64], g: &[f64], out: &mut [f64], _: &mut ()) -> f64 {
        let d = self.constants.diffusivity;
        let (c, dc) = self.outflow();
        out.fill(0.0);
        let mut gd = 0.0;
        let mut left = self.flux(u, 0, d, c);
        for j in 0..self.n {
            let right = self.flux(u, j + 1, d, c);
            let (r, dr) = retardation(self.k, self.constants.freundlich_n, u[j]);
            let s = (left - right) / self.dx;
            out[j] -= g[j] * s * dr / (r * r);
            // cotangent of the flux balance: +a on the left face, −a on the right face
            let a = g[j] / (self.dx * r);
            // left face F_{j−½}
            if j == 0 {
                out[0] += a * (-2.0 * d / self.dx);
                gd += a * (-2.0 * (u[0] - self.inflow) / self.dx);
            } else {
                out[j] += a * (-d / self.dx);
                out[j - 1] += a * (d / self.dx);
                gd += a * (-(u[j] - u[j - 1]) / self.dx);
            }
            // right face F_{j+½}
            if j + 1 == self.n {
                out[j] -= a * c;
                gd -= a * dc * u[j];
            } else {
                out[j + 1] -= a * (-d / self.dx);
                out[j] -= a * (d / self.dx);
                gd -= a * (-(u[j + 1] - u[j]) / self.dx);
            }
            left = right;
        }
        gd
    }
}
