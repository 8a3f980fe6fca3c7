//! 2D coupled viscous Burgers `u_t + u u_x + v u_y = ν Δu`, `v_t + u v_x + v v_y = ν Δv`, finite volume.

use super::line::{Faces, GHOSTS, Line};
use super::{Boundary, NumericalFlux, Reconstruction, cfl_time_step, diffusion_radius};
use crate::scheme::SemiDiscrete;
use crate::{ConfigError, check_non_negative, check_positive};

/// Semi-discrete finite-volume 2D coupled viscous Burgers on `ny × nx` cells. State layout `(2, ny, nx)`:
/// all of u, then all of v, row-major with x fastest.
///
/// Dimension by dimension: along x, the self-advection `u u_x = (u²/2)_x` is in flux form with the chosen
/// numerical flux, and the cross term `u v_x` in fluctuation form (see `Line::advective`); along y the roles of
/// u and v swap. Diffusion is central per axis, of the order matching the reconstruction.
#[derive(Clone, Debug)]
pub struct FvBurgers2d {
    nx: usize,
    ny: usize,
    lx: Line,
    ly: Line,
    nu: f64,
}

/// Scratch space of [`FvBurgers2d`].
pub struct FvWork2d {
    /// extended lines: advecting velocity, advected component, their tangents or cotangents
    a: Vec<f64>,
    p: Vec<f64>,
    da: Vec<f64>,
    dp: Vec<f64>,
    /// line outputs / line cotangents
    ra: Vec<f64>,
    rp: Vec<f64>,
    faces: Faces,
}

impl FvBurgers2d {
    /// A scheme on `ny × nx` cells of a `length = [lx, ly]` box with viscosity `nu ≥ 0`, boundaries
    /// `bc_x = [left, right]` and `bc_y = [bottom, top]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        nx: usize,
        ny: usize,
        length: [f64; 2],
        nu: f64,
        bc_x: [Boundary; 2],
        bc_y: [Boundary; 2],
        recon: Reconstruction,
        flux: NumericalFlux,
    ) -> Result<Self, ConfigError> {
        for (axis, n) in [("x", nx), ("y", ny)] {
            if n < 2 * GHOSTS {
                return Err(ConfigError::GridTooSmall { axis, n, min: 2 * GHOSTS });
            }
        }
        check_positive("length x", length[0])?;
        check_positive("length y", length[1])?;
        check_non_negative("nu", nu)?;
        Boundary::check_pair(bc_x[0], bc_x[1], "x")?;
        Boundary::check_pair(bc_y[0], bc_y[1], "y")?;
        let lx = Line { n: nx, h: length[0] / nx as f64, lo: bc_x[0], hi: bc_x[1], recon, flux };
        let ly = Line { n: ny, h: length[1] / ny as f64, lo: bc_y[0], hi: bc_y[1], recon, flux };
        Ok(Self { nx, ny, lx, ly, nu })
    }

    /// The same scheme with another viscosity.
    pub fn with_nu(&self, nu: f64) -> Result<Self, ConfigError> {
        check_non_negative("nu", nu)?;
        Ok(Self { nu, ..self.clone() })
    }

    /// Grid shape `(ny, nx)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.ny, self.nx)
    }

    /// Cell widths `(hx, hy)`.
    pub fn h(&self) -> (f64, f64) {
        (self.lx.h, self.ly.h)
    }

    /// A stable SSP-RK3 time step for the state `uv` (see [`cfl_time_step`]).
    pub fn stable_dt(&self, uv: &[f64], cfl: f64) -> f64 {
        let m = self.nx * self.ny;
        let amax = |s: &[f64]| s.iter().fold(0.0_f64, |a, x| a.max(x.abs()));
        cfl_time_step(
            &[amax(&uv[..m]), amax(&uv[m..])],
            &[self.lx.h, self.ly.h],
            self.nu,
            diffusion_radius(self.lx.recon),
            cfl,
        )
    }

    fn m(&self) -> usize {
        self.nx * self.ny
    }
}

/// Copies a strided line of `src` (start, stride, n values) into the interior of an extended line.
#[inline]
fn gather(src: &[f64], start: usize, stride: usize, n: usize, ext: &mut [f64]) {
    for (k, e) in ext[GHOSTS..GHOSTS + n].iter_mut().enumerate() {
        *e = src[start + k * stride];
    }
}

#[inline]
fn scatter_add(dst: &mut [f64], start: usize, stride: usize, line: &[f64]) {
    for (k, v) in line.iter().enumerate() {
        dst[start + k * stride] += v;
    }
}

impl FvBurgers2d {
    /// Calls `f(line, self_advected_start, cross_start, stride)` for every x-line then every y-line: the
    /// self-advected component is the one whose velocity advects along that axis (u along x, v along y).
    fn sweeps(&self, mut f: impl FnMut(&Line, usize, usize, usize)) {
        let (nx, ny, m) = (self.nx, self.ny, self.m());
        for j in 0..ny {
            f(&self.lx, j * nx, m + j * nx, 1);
        }
        for i in 0..nx {
            f(&self.ly, m + i, i, nx);
        }
    }
}

impl SemiDiscrete for FvBurgers2d {
    type Work = FvWork2d;

    fn state_len(&self) -> usize {
        2 * self.m()
    }

    fn nu(&self) -> f64 {
        self.nu
    }

    fn work(&self) -> FvWork2d {
        let e = self.nx.max(self.ny) + 2 * GHOSTS;
        let l = self.nx.max(self.ny);
        FvWork2d {
            a: vec![0.0; e],
            p: vec![0.0; e],
            da: vec![0.0; e],
            dp: vec![0.0; e],
            ra: vec![0.0; l],
            rp: vec![0.0; l],
            faces: Faces::new(l),
        }
    }

    fn rhs(&self, uv: &[f64], out: &mut [f64], w: &mut FvWork2d) {
        out.fill(0.0);
        self.sweeps(|line, sa, sp, stride| {
            let n = line.n;
            gather(uv, sa, stride, n, &mut w.a);
            gather(uv, sp, stride, n, &mut w.p);
            line.fill_ghosts(&mut w.a[..n + 2 * GHOSTS], false);
            line.fill_ghosts(&mut w.p[..n + 2 * GHOSTS], false);
            let (ra, rp) = (&mut w.ra[..n], &mut w.rp[..n]);
            ra.fill(0.0);
            rp.fill(0.0);
            line.conservative(&w.a, ra, &mut w.faces);
            line.diffusion(&w.a, self.nu, ra);
            line.advective(&w.a, &w.p, rp, &mut w.faces);
            line.diffusion(&w.p, self.nu, rp);
            scatter_add(out, sa, stride, ra);
            scatter_add(out, sp, stride, rp);
        });
    }

    fn rhs_jvp(&self, uv: &[f64], duv: &[f64], dnu: f64, out: &mut [f64], w: &mut FvWork2d) {
        out.fill(0.0);
        self.sweeps(|line, sa, sp, stride| {
            let n = line.n;
            let e = n + 2 * GHOSTS;
            gather(uv, sa, stride, n, &mut w.a);
            gather(uv, sp, stride, n, &mut w.p);
            gather(duv, sa, stride, n, &mut w.da);
            gather(duv, sp, stride, n, &mut w.dp);
            line.fill_ghosts(&mut w.a[..e], false);
            line.fill_ghosts(&mut w.p[..e], false);
            line.fill_ghosts(&mut w.da[..e], true);
            line.fill_ghosts(&mut w.dp[..e], true);
            let (ra, rp) = (&mut w.ra[..n], &mut w.rp[..n]);
            ra.fill(0.0);
            rp.fill(0.0);
            line.conservative_jvp(&w.a, &w.da, ra, &mut w.faces);
            line.diffusion(&w.da, self.nu, ra);
            line.advective_jvp(&w.a, &w.p, &w.da, &w.dp, rp, &mut w.faces);
            line.diffusion(&w.dp, self.nu, rp);
            if dnu != 0.0 {
                line.diffusion(&w.a, dnu, ra);
                line.diffusion(&w.p, dnu, rp);
            }
            scatter_add(out, sa, stride, ra);
            scatter_add(out, sp, stride, rp);
        });
    }

    fn rhs_vjp(&self, uv: &[f64], g: &[f64], out: &mut [f64], w: &mut FvWork2d) -> f64 {
        out.fill(0.0);
        let mut dnu = 0.0;
        self.sweeps(|line, sa, sp, stride| {
            let n = line.n;
            let e = n + 2 * GHOSTS;
            gather(uv, sa, stride, n, &mut w.a);
            gather(uv, sp, stride, n, &mut w.p);
            line.fill_ghosts(&mut w.a[..e], false);
            line.fill_ghosts(&mut w.p[..e], false);
            let (ga, gp) = (&mut w.ra[..n], &mut w.rp[..n]);
            for k in 0..n {
                ga[k] = g[sa + k * stride];
                gp[k] = g[sp + k * stride];
            }
            w.da[..e].fill(0.0);
            w.dp[..e].fill(0.0);
            line.conservative_vjp(&w.a, ga, &mut w.da, &mut w.faces);
            dnu += line.diffusion_vjp(&w.a, self.nu, ga, &mut w.da);
            line.advective_vjp(&w.a, &w.p, gp, &mut w.da, &mut w.dp, &mut w.faces);
            dnu += line.diffusion_vjp(&w.p, self.nu, gp, &mut w.dp);
            line.fold_ghosts(&mut w.da[..e]);
            line.fold_ghosts(&mut w.dp[..e]);
            scatter_add(out, sa, stride, &w.da[GHOSTS..GHOSTS + n]);
            scatter_add(out, sp, stride, &w.dp[GHOSTS..GHOSTS + n]);
        });
        dnu
    }
}
