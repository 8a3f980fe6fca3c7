//! 1D viscous Burgers `u_t + (u²/2)_x = ν u_xx`, finite volume.

use super::line::{Faces, GHOSTS, Line};
use super::{Boundary, NumericalFlux, Reconstruction, cfl_time_step, diffusion_radius};
use crate::scheme::SemiDiscrete;
use crate::{ConfigError, check_non_negative, check_positive};

/// Semi-discrete finite-volume 1D viscous Burgers on `n` cells of width `h = length / n`
/// (cell centres `x_i = (i + 1/2) h`). State: the `n` cell averages.
///
/// `F_i = −(F̂_{i+1/2} − F̂_{i−1/2}) / h + ν (D_{i+1/2} − D_{i−1/2}) / h` with F̂ the numerical flux of the
/// reconstructed face states and D the central face derivative (two-point for MUSCL, sixth order for WENO5, so
/// that the viscous term does not cap the order of accuracy).
#[derive(Clone, Debug)]
pub struct FvBurgers1d {
    line: Line,
    nu: f64,
}

/// Scratch space of [`FvBurgers1d`].
pub struct FvWork1d {
    ext: Vec<f64>,
    aux: Vec<f64>,
    faces: Faces,
}

impl FvBurgers1d {
    /// A scheme on `n` cells of a domain of `length`, with viscosity `nu ≥ 0` and boundaries `[left, right]`.
    pub fn new(
        n: usize,
        length: f64,
        nu: f64,
        bc: [Boundary; 2],
        recon: Reconstruction,
        flux: NumericalFlux,
    ) -> Result<Self, ConfigError> {
        if n < 2 * GHOSTS {
            return Err(ConfigError::GridTooSmall { axis: "x", n, min: 2 * GHOSTS });
        }
        check_positive("length", length)?;
        check_non_negative("nu", nu)?;
        Boundary::check_pair(bc[0], bc[1], "x")?;
        Ok(Self { line: Line { n, h: length / n as f64, lo: bc[0], hi: bc[1], recon, flux }, nu })
    }

    /// The same scheme with another viscosity.
    pub fn with_nu(&self, nu: f64) -> Result<Self, ConfigError> {
        check_non_negative("nu", nu)?;
        Ok(Self { line: self.line, nu })
    }

    /// Number of cells.
    pub fn n(&self) -> usize {
        self.line.n
    }

    /// Cell width.
    pub fn h(&self) -> f64 {
        self.line.h
    }

    /// Cell centres.
    pub fn centres(&self) -> Vec<f64> {
        (0..self.line.n).map(|i| (i as f64 + 0.5) * self.line.h).collect()
    }

    /// A stable SSP-RK3 time step for the state `u` (see [`cfl_time_step`]).
    pub fn stable_dt(&self, u: &[f64], cfl: f64) -> f64 {
        let a = u.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        cfl_time_step(&[a], &[self.line.h], self.nu, diffusion_radius(self.line.recon), cfl)
    }

    fn load(&self, u: &[f64], ext: &mut [f64], homogeneous: bool) {
        ext[GHOSTS..GHOSTS + self.line.n].copy_from_slice(u);
        self.line.fill_ghosts(ext, homogeneous);
    }
}

impl SemiDiscrete for FvBurgers1d {
    type Work = FvWork1d;

    fn state_len(&self) -> usize {
        self.line.n
    }

    fn nu(&self) -> f64 {
        self.nu
    }

    fn work(&self) -> FvWork1d {
        FvWork1d {
            ext: vec![0.0; self.line.ext_len()],
            aux: vec![0.0; self.line.ext_len()],
            faces: Faces::new(self.line.n),
        }
    }

    fn rhs(&self, u: &[f64], out: &mut [f64], w: &mut FvWork1d) {
        self.load(u, &mut w.ext, false);
        out.fill(0.0);
        self.line.conservative(&w.ext, out, &mut w.faces);
        self.line.diffusion(&w.ext, self.nu, out);
    }

    fn rhs_jvp(&self, u: &[f64], du: &[f64], dnu: f64, out: &mut [f64], w: &mut FvWork1d) {
        self.load(u, &mut w.ext, false);
        self.load(du, &mut w.aux, true);
        out.fill(0.0);
        self.line.conservative_jvp(&w.ext, &w.aux, out, &mut w.faces);
        self.line.diffusion(&w.aux, self.nu, out);
        if dnu != 0.0 {
            self.line.diffusion(&w.ext, dnu, out);
        }
    }

    fn rhs_vjp(&self, u: &[f64], g: &[f64], out: &mut [f64], w: &mut FvWork1d) -> f64 {
        self.load(u, &mut w.ext, false);
        w.aux.fill(0.0);
        self.line.conservative_vjp(&w.ext, g, &mut w.aux, &mut w.faces);
        let dnu = self.line.diffusion_vjp(&w.ext, self.nu, g, &mut w.aux);
        self.line.fold_ghosts(&mut w.aux);
        out.copy_from_slice(&w.aux[GHOSTS..GHOSTS + self.line.n]);
        dnu
    }
}
