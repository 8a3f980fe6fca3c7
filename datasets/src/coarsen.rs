//! Restriction of trajectories to a coarser grid: the data a coarse solver or a surrogate on that grid is
//! trained and scored against.
//!
//! - **Collocation grids** (pseudo-spectral data) are restricted by Fourier truncation: the modes the coarse
//!   grid represents, `|k_x| < n_x / 2r` and `|k_y| < n_y / 2r`, keep their amplitudes and the rest are dropped
//!   (the coarse Nyquist mode too, so that the coarse field is real and its own spectral interpolant). Taking
//!   every r-th point instead would fold the fine modes onto the coarse ones (aliasing).
//! - **Cell-centred grids** (finite-volume data) are restricted by means over r × r blocks, the cell averages
//!   of the coarse cells.
//!
//! A coarsened dataset keeps every time level, parameter and attribute; its `generation_config` is rewritten to
//! the coarse grid (`grid.n = n / r` and a fixed `time.dt` multiplied by r, the same CFL number), so that the
//! data's own solver, rebuilt from it, runs at the coarse resolution, and `coarsened_from` names the source.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

use crate::error::{DatasetError, Result};
use crate::reader::Dataset;
use crate::schema::{GridType, Layout};
use crate::writer::DatasetWriter;

fn cfg(message: impl Into<String>) -> DatasetError {
    DatasetError::Config { origin: "--factor".into(), message: message.into() }
}

/// Restricts frames `(component, ny, nx)` by a factor `r` per axis (ny = 1 in 1D), with FFT plans built once.
pub struct Restrictor {
    grid: [usize; 2],
    r: usize,
    grid_type: GridType,
    /// Forward plans `[x, y]` on the fine grid and inverse plans on the coarse grid.
    fine: [Arc<dyn Fft<f64>>; 2],
    coarse: [Arc<dyn Fft<f64>>; 2],
    buf: Vec<Complex64>,
    small: Vec<Complex64>,
    column: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

impl Restrictor {
    /// A restrictor from `grid = [ny, nx]` to `[ny / r, nx / r]` (`[1, nx / r]` in 1D). Each restricted axis must
    /// be divisible by `r` and keep at least 4 points.
    pub fn new(grid: [usize; 2], r: usize, grid_type: GridType) -> Result<Self> {
        let [ny, nx] = grid;
        if r < 1 {
            return Err(cfg("the factor must be at least 1"));
        }
        for (axis, n) in [("x", nx), ("y", ny)] {
            if (axis == "x" || n > 1) && (n % r != 0 || n / r < 4) {
                return Err(cfg(format!(
                    "{n} points along {axis} are not divisible by {r} into at least 4 coarse points"
                )));
            }
        }
        let ry = if ny > 1 { r } else { 1 };
        let (cy, cx) = (ny / ry, nx / r);
        let mut planner = FftPlanner::new();
        let fine = [planner.plan_fft_forward(nx), planner.plan_fft_forward(ny)];
        let coarse = [planner.plan_fft_inverse(cx), planner.plan_fft_inverse(cy)];
        let len = fine.iter().chain(&coarse).map(|p| p.get_inplace_scratch_len()).max().unwrap_or(0);
        Ok(Self {
            grid,
            r,
            grid_type,
            fine,
            coarse,
            buf: vec![Complex64::default(); nx * ny],
            small: vec![Complex64::default(); cx * cy],
            column: vec![Complex64::default(); ny.max(1)],
            scratch: vec![Complex64::default(); len],
        })
    }

    /// `[ny, nx]` of the restricted grid.
    pub fn coarse_grid(&self) -> [usize; 2] {
        let [ny, nx] = self.grid;
        [if ny > 1 { ny / self.r } else { 1 }, nx / self.r]
    }

    /// Restricts `frame` (`comps` components of the fine grid) into `out` (`comps` components of the coarse one).
    pub fn apply(&mut self, frame: &[f64], comps: usize, out: &mut [f64]) {
        let [ny, nx] = self.grid;
        let [cy, cx] = self.coarse_grid();
        for c in 0..comps {
            let f = &frame[c * nx * ny..(c + 1) * nx * ny];
            let o = &mut out[c * cx * cy..(c + 1) * cx * cy];
            match self.grid_type {
                GridType::CellCentered => {
                    let ry = ny / cy;
                    for j in 0..cy {
                        for i in 0..cx {
                            let mut s = 0.0;
                            for a in 0..ry {
                                s += f[(j * ry + a) * nx + i * self.r..][..self.r].iter().sum::<f64>();
                            }
                            o[j * cx + i] = s / (ry * self.r) as f64;
                        }
                    }
                }
                GridType::SpectralCollocation => self.truncate(f, o),
            }
        }
    }

    /// Fourier truncation of one component.
    fn truncate(&mut self, f: &[f64], o: &mut [f64]) {
        let [ny, nx] = self.grid;
        let [cy, cx] = self.coarse_grid();
        for (b, v) in self.buf.iter_mut().zip(f) {
            *b = Complex64::new(*v, 0.0);
        }
        for row in self.buf.chunks_mut(nx) {
            self.fine[0].process_with_scratch(row, &mut self.scratch);
        }
        // the coarse grid's modes: |k| < n_c / 2 (its Nyquist mode dropped)
        let keep = |k: usize, n: usize, nc: usize| -> Option<usize> {
            let signed = if k <= n / 2 { k as i64 } else { k as i64 - n as i64 };
            (2 * signed.unsigned_abs() < nc as u64)
                .then(|| if signed >= 0 { signed as usize } else { (signed + nc as i64) as usize })
        };
        self.small.iter_mut().for_each(|s| *s = Complex64::default());
        if ny > 1 {
            for i in 0..nx {
                let Some(ci) = keep(i, nx, cx) else { continue };
                for j in 0..ny {
                    self.column[j] = self.buf[j * nx + i];
                }
                self.fine[1].process_with_scratch(&mut self.column, &mut self.scratch);
                for j in 0..ny {
                    if let Some(cj) = keep(j, ny, cy) {
                        self.small[cj * cx + ci] = self.column[j];
                    }
                }
            }
            for i in 0..cx {
                for j in 0..cy {
                    self.column[j] = self.small[j * cx + i];
                }
                self.coarse[1].process_with_scratch(&mut self.column[..cy], &mut self.scratch);
                for j in 0..cy {
                    self.small[j * cx + i] = self.column[j];
                }
            }
        } else {
            for i in 0..nx {
                if let Some(ci) = keep(i, nx, cx) {
                    self.small[ci] = self.buf[i];
                }
            }
        }
        for row in self.small.chunks_mut(cx) {
            self.coarse[0].process_with_scratch(row, &mut self.scratch);
        }
        let scale = 1.0 / (nx * ny) as f64;
        for (v, s) in o.iter_mut().zip(&self.small) {
            *v = s.re * scale;
        }
    }
}

/// Prolongs frames `(component, cy, cx)` by a factor `r` per axis (cy = 1 in 1D) onto the grid [`Restrictor`]
/// restricts from: how a solution on a coarse grid is compared with data on the fine one.
///
/// - **Collocation grids**: Fourier zero padding, the coarse field's trigonometric interpolant sampled on the fine
///   points. The coarse Nyquist mode is dropped, as the restriction drops it, so restricting a prolonged field
///   gives it back and prolonging a restricted one keeps exactly the modes the coarse grid holds.
/// - **Cell-centred grids**: linear interpolation between coarse cell centres along each axis, periodic where
///   the axis is and held constant beyond the outermost centres otherwise (second order for smooth fields).
pub struct Prolongator {
    coarse: [usize; 2],
    r: usize,
    grid_type: GridType,
    /// Per axis `[x, y]`, for each fine point: the two coarse neighbours and the weight of the second.
    stencil: [Vec<(usize, usize, f64)>; 2],
    /// Forward plans `[x, y]` on the coarse grid and inverse plans on the fine grid.
    forward: [Arc<dyn Fft<f64>>; 2],
    inverse: [Arc<dyn Fft<f64>>; 2],
    small: Vec<Complex64>,
    buf: Vec<Complex64>,
    column: Vec<Complex64>,
    scratch: Vec<Complex64>,
    rows: Vec<f64>,
}

impl Prolongator {
    /// A prolongator from `coarse = [cy, cx]` to `[cy · r, cx · r]` (`[1, cx · r]` in 1D); `periodic = [x, y]`
    /// matters only on cell-centred grids (collocation grids are periodic).
    pub fn new(coarse: [usize; 2], r: usize, grid_type: GridType, periodic: [bool; 2]) -> Result<Self> {
        let [cy, cx] = coarse;
        if r < 1 {
            return Err(cfg("the factor must be at least 1"));
        }
        if cx < 2 || cy < 1 {
            return Err(cfg(format!("a coarse grid of {cy} × {cx} points cannot be prolonged")));
        }
        let ry = if cy > 1 { r } else { 1 };
        let (ny, nx) = (cy * ry, cx * r);
        let axis = |nc: usize, rr: usize, periodic: bool| -> Vec<(usize, usize, f64)> {
            (0..nc * rr)
                .map(|i| {
                    // the fine centre in units of coarse cells, measured from the first coarse centre
                    let s = (i as f64 + 0.5) / rr as f64 - 0.5;
                    let i0 = s.floor();
                    let w = s - i0;
                    let i0 = i0 as i64;
                    if periodic {
                        let wrap = |k: i64| k.rem_euclid(nc as i64) as usize;
                        (wrap(i0), wrap(i0 + 1), w)
                    } else {
                        let clamp = |k: i64| k.clamp(0, nc as i64 - 1) as usize;
                        (clamp(i0), clamp(i0 + 1), w)
                    }
                })
                .collect()
        };
        let stencil = [axis(cx, r, periodic[0]), axis(cy, ry, periodic[1])];
        let mut planner = FftPlanner::new();
        let forward = [planner.plan_fft_forward(cx), planner.plan_fft_forward(cy)];
        let inverse = [planner.plan_fft_inverse(nx), planner.plan_fft_inverse(ny)];
        let len = forward.iter().chain(&inverse).map(|p| p.get_inplace_scratch_len()).max().unwrap_or(0);
        Ok(Self {
            coarse,
            r,
            grid_type,
            stencil,
            forward,
            inverse,
            small: vec![Complex64::default(); cx * cy],
            buf: vec![Complex64::default(); nx * ny],
            column: vec![Complex64::default(); ny],
            scratch: vec![Complex64::default(); len],
            rows: vec![0.0; nx * cy],
        })
    }

    /// `[ny, nx]` of the fine grid.
    pub fn fine_grid(&self) -> [usize; 2] {
        let [cy, cx] = self.coarse;
        [if cy > 1 { cy * self.r } else { 1 }, cx * self.r]
    }

    /// Prolongs `frame` (`comps` components of the coarse grid) into `out` (`comps` components of the fine one).
    pub fn apply(&mut self, frame: &[f64], comps: usize, out: &mut [f64]) {
        let [cy, cx] = self.coarse;
        let [ny, nx] = self.fine_grid();
        for c in 0..comps {
            let f = &frame[c * cx * cy..(c + 1) * cx * cy];
            let o = &mut out[c * nx * ny..(c + 1) * nx * ny];
            match self.grid_type {
                GridType::CellCentered => self.interpolate(f, o),
                GridType::SpectralCollocation => self.pad(f, o),
            }
        }
    }

    /// Linear interpolation of one component, along x into `rows`, then along y.
    fn interpolate(&mut self, f: &[f64], o: &mut [f64]) {
        let [cy, cx] = self.coarse;
        let [ny, nx] = self.fine_grid();
        for j in 0..cy {
            let row = &f[j * cx..(j + 1) * cx];
            for (v, &(a, b, w)) in self.rows[j * nx..(j + 1) * nx].iter_mut().zip(&self.stencil[0]) {
                *v = (1.0 - w) * row[a] + w * row[b];
            }
        }
        if ny == 1 {
            o.copy_from_slice(&self.rows[..nx]);
            return;
        }
        for (j, &(a, b, w)) in self.stencil[1].iter().enumerate() {
            let (ra, rb) = (&self.rows[a * nx..(a + 1) * nx], &self.rows[b * nx..(b + 1) * nx]);
            for ((v, x0), x1) in o[j * nx..(j + 1) * nx].iter_mut().zip(ra).zip(rb) {
                *v = (1.0 - w) * x0 + w * x1;
            }
        }
    }

    /// Fourier zero padding of one component.
    fn pad(&mut self, f: &[f64], o: &mut [f64]) {
        let [cy, cx] = self.coarse;
        let [ny, nx] = self.fine_grid();
        for (s, v) in self.small.iter_mut().zip(f) {
            *s = Complex64::new(*v, 0.0);
        }
        for row in self.small.chunks_mut(cx) {
            self.forward[0].process_with_scratch(row, &mut self.scratch);
        }
        if cy > 1 {
            for i in 0..cx {
                for j in 0..cy {
                    self.column[j] = self.small[j * cx + i];
                }
                self.forward[1].process_with_scratch(&mut self.column[..cy], &mut self.scratch);
                for j in 0..cy {
                    self.small[j * cx + i] = self.column[j];
                }
            }
        }
        // coarse mode k (|k| < n_c / 2, its Nyquist mode dropped) → the fine index of the same wavenumber
        let place = |k: usize, nc: usize, n: usize| -> Option<usize> {
            let signed = if k <= nc / 2 { k as i64 } else { k as i64 - nc as i64 };
            (2 * signed.unsigned_abs() < nc as u64).then(|| signed.rem_euclid(n as i64) as usize)
        };
        self.buf.iter_mut().for_each(|b| *b = Complex64::default());
        for cj in 0..cy {
            let Some(j) = (if cy > 1 { place(cj, cy, ny) } else { Some(0) }) else { continue };
            for ci in 0..cx {
                if let Some(i) = place(ci, cx, nx) {
                    self.buf[j * nx + i] = self.small[cj * cx + ci];
                }
            }
        }
        if ny > 1 {
            for i in 0..nx {
                for j in 0..ny {
                    self.column[j] = self.buf[j * nx + i];
                }
                self.inverse[1].process_with_scratch(&mut self.column, &mut self.scratch);
                for j in 0..ny {
                    self.buf[j * nx + i] = self.column[j];
                }
            }
        }
        for row in self.buf.chunks_mut(nx) {
            self.inverse[0].process_with_scratch(row, &mut self.scratch);
        }
        let scale = 1.0 / (cx * cy) as f64;
        for (v, b) in o.iter_mut().zip(&self.buf) {
            *v = b.re * scale;
        }
    }
}

/// Coarse coordinates: every r-th collocation point, or the centres of r consecutive cells.
fn coarse_axis(x: &[f64], r: usize, grid_type: GridType) -> Vec<f64> {
    match grid_type {
        GridType::SpectralCollocation => x.iter().step_by(r).copied().collect(),
        GridType::CellCentered => x.chunks(r).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect(),
    }
}

/// `generation_config` rewritten to the coarse grid: `grid.n / r`, and a fixed `time.dt` times r.
fn coarse_config(text: &str, r: usize) -> Result<String> {
    let bad = |m: String| DatasetError::Config { origin: "generation_config".into(), message: m };
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| bad(e.to_string()))?;
    let grid = table.get_mut("grid").and_then(|g| g.as_table_mut()).ok_or_else(|| bad("no [grid] table".into()))?;
    let n = grid.get("n").and_then(|n| n.as_integer()).ok_or_else(|| bad("no integer `grid.n`".into()))?;
    grid.insert("n".into(), toml::Value::Integer(n / r as i64));
    if let Some(time) = table.get_mut("time").and_then(|t| t.as_table_mut())
        && let Some(dt) = time.get("dt").and_then(|d| d.as_float())
    {
        time.insert("dt".into(), toml::Value::Float(dt * r as f64));
    }
    Ok(toml::to_string(&table).expect("a TOML table serialises"))
}

/// Writes `input` restricted by `r` per axis to `out` (a temporary name renamed when complete; an existing `out`
/// only with `force`), calling `progress(done, total)` after each sample. Returns the path written.
pub fn coarsen(
    input: &Path,
    out: &Path,
    r: usize,
    force: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<PathBuf> {
    let ds = Dataset::open(input)?;
    let layout = ds.layout()?;
    if layout.z.is_some() {
        return Err(cfg(format!("{}: 3D data cannot be coarsened yet", input.display())));
    }
    if layout.times.is_empty() {
        return Err(cfg(format!("{}: static data (no time levels) cannot be coarsened", input.display())));
    }
    let grid = [layout.y.as_ref().map_or(1, |y| y.len()), layout.x.len()];
    let mut restrictor =
        Restrictor::new(grid, r, layout.grid_type).map_err(|e| cfg(format!("{}: {e}", input.display())))?;
    let mut coarse: Layout = layout.clone();
    coarse.x = coarse_axis(&layout.x, r, layout.grid_type);
    coarse.y = layout.y.as_ref().map(|y| coarse_axis(y, r, layout.grid_type));
    for (key, value) in &mut coarse.text {
        if key == "generation_config" {
            *value = coarse_config(value, r)?;
        }
    }
    coarse.text.retain(|(k, _)| k != "coarsened_from");
    coarse.text.push((
        "coarsened_from".into(),
        format!(
            "{} ({}, restricted by {r} per axis: {})",
            input.file_name().map_or_else(|| input.display().to_string(), |f| f.to_string_lossy().into_owned()),
            grid.iter().filter(|&&n| n > 1).map(|n| n.to_string()).collect::<Vec<_>>().join("x"),
            match layout.grid_type {
                GridType::SpectralCollocation => "Fourier truncation",
                GridType::CellCentered => "cell averages",
            }
        ),
    ));
    let params: Vec<String> = layout.parameters.iter().map(|p| p.name.clone()).collect();
    let (comps, levels) = (layout.fields.len(), layout.times.len());
    let (fine_frame, coarse_frame) = (layout.frame_len(), coarse.frame_len());
    let mut writer = DatasetWriter::create(out, &coarse, force)?;
    let mut data = vec![0.0; levels * coarse_frame];
    for s in 0..layout.samples {
        let (fine, values) = ds.sample_data(s, &params)?;
        for t in 0..levels {
            restrictor.apply(
                &fine[t * fine_frame..(t + 1) * fine_frame],
                comps,
                &mut data[t * coarse_frame..(t + 1) * coarse_frame],
            );
        }
        writer.write_sample(s, &data, &values)?;
        progress(s + 1, layout.samples);
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zero padding interpolates a band-limited field exactly, and undoes the restriction of one; linear
    /// interpolation of cell averages is exact for linear fields inside the domain, holds constants, and converges
    /// at second order on a periodic sine.
    #[test]
    fn prolongation_inverts_restriction_and_interpolates() {
        let tau = std::f64::consts::TAU;
        let field =
            |x: f64, y: f64| 1.0 + (tau * x).sin() + 0.5 * (tau * (2.0 * x - y)).cos() - 0.2 * (tau * 3.0 * y).sin();
        for (cy, cx, r) in [(16, 16, 2), (8, 16, 4), (1, 16, 4)] {
            let point = |i: usize, n: usize| i as f64 / n as f64;
            let coarse: Vec<f64> =
                (0..cy).flat_map(|j| (0..cx).map(move |i| field(point(i, cx), point(j, cy.max(1))))).collect();
            let mut p = Prolongator::new([cy, cx], r, GridType::SpectralCollocation, [true, true]).unwrap();
            let [ny, nx] = p.fine_grid();
            assert_eq!([ny, nx], [if cy > 1 { cy * r } else { 1 }, cx * r]);
            let mut fine = vec![0.0; nx * ny];
            p.apply(&coarse, 1, &mut fine);
            for j in 0..ny {
                for i in 0..nx {
                    let want = field(point(i, nx), point(j, ny));
                    assert!((fine[j * nx + i] - want).abs() < 1e-12, "{cy}×{cx}, r {r}: ({j}, {i})");
                }
            }
            let mut back = vec![0.0; cx * cy];
            Restrictor::new([ny, nx], r, GridType::SpectralCollocation).unwrap().apply(&fine, 1, &mut back);
            assert!(back.iter().zip(&coarse).all(|(a, b)| (a - b).abs() < 1e-12));
        }

        // cell centres of n cells on [0, 1)
        let centre = |i: usize, n: usize| (i as f64 + 0.5) / n as f64;
        let (cy, cx, r) = (6, 8, 2);
        let linear = |x: f64, y: f64| 2.0 - 3.0 * x + 0.5 * y;
        let coarse: Vec<f64> =
            (0..cy).flat_map(|j| (0..cx).map(move |i| linear(centre(i, cx), centre(j, cy)))).collect();
        let mut p = Prolongator::new([cy, cx], r, GridType::CellCentered, [false, false]).unwrap();
        let [ny, nx] = p.fine_grid();
        let mut fine = vec![0.0; nx * ny];
        p.apply(&coarse, 1, &mut fine);
        // inside the outermost coarse centres the interpolant is the linear field itself
        for j in 1..ny - 1 {
            for i in 1..nx - 1 {
                let want = linear(centre(i, nx), centre(j, ny));
                assert!((fine[j * nx + i] - want).abs() < 1e-12, "({j}, {i}): {} vs {want}", fine[j * nx + i]);
            }
        }
        // beyond them it is held: the first fine cell of a row takes the first coarse centre's value along x
        for j in 1..ny - 1 {
            assert!((fine[j * nx] - linear(centre(0, cx), centre(j, ny))).abs() < 1e-12, "row {j}");
        }
        let constant = vec![1.5; 2 * cx * cy];
        let mut out = vec![0.0; 2 * nx * ny];
        p.apply(&constant, 2, &mut out);
        assert!(out.iter().all(|v| (v - 1.5).abs() < 1e-14));
        // periodic sine: the error falls by about 4 per halving of the coarse cells
        let err = |c: usize| {
            let coarse: Vec<f64> = (0..c)
                .flat_map(|j| (0..c).map(move |i| (tau * centre(i, c)).sin() * (tau * centre(j, c)).cos()))
                .collect();
            let mut p = Prolongator::new([c, c], 2, GridType::CellCentered, [true, true]).unwrap();
            let mut fine = vec![0.0; 4 * c * c];
            p.apply(&coarse, 1, &mut fine);
            let n = 2 * c;
            (0..n)
                .flat_map(|j| (0..n).map(move |i| (j, i)))
                .map(|(j, i)| (fine[j * n + i] - (tau * centre(i, n)).sin() * (tau * centre(j, n)).cos()).abs())
                .fold(0.0, f64::max)
        };
        let order = (err(16) / err(32)).log2();
        assert!((order - 2.0).abs() < 0.1, "order {order}");
        assert!(Prolongator::new([4, 1], 2, GridType::CellCentered, [true, true]).is_err());
    }

    /// A band-limited field is restricted exactly (its values at the coarse points), a mode the coarse grid cannot
    /// hold is removed, and block means are cell averages.
    #[test]
    fn truncation_keeps_resolved_modes_and_drops_the_rest() {
        let (nx, ny, r) = (32, 16, 4);
        let tau = std::f64::consts::TAU;
        let field = |x: f64, y: f64, fine_mode: f64| {
            1.0 + (tau * x).sin() + 0.5 * (tau * (x + y)).cos() + fine_mode * (tau * 7.0 * x).cos()
        };
        let point = |i: usize, n: usize| i as f64 / n as f64;
        let frame: Vec<f64> =
            (0..ny).flat_map(|j| (0..nx).map(move |i| field(point(i, nx), point(j, ny), 0.3))).collect();
        let mut rs = Restrictor::new([ny, nx], r, GridType::SpectralCollocation).unwrap();
        let [cy, cx] = rs.coarse_grid();
        let mut out = vec![0.0; cx * cy];
        rs.apply(&frame, 1, &mut out);
        for j in 0..cy {
            for i in 0..cx {
                let want = field(point(i, cx), point(j, cy), 0.0);
                assert!((out[j * cx + i] - want).abs() < 1e-12, "({j}, {i}): {} vs {want}", out[j * cx + i]);
            }
        }
        let mut avg = Restrictor::new([ny, nx], r, GridType::CellCentered).unwrap();
        avg.apply(&frame, 1, &mut out);
        let f = &frame;
        let block: f64 = (0..r).flat_map(|a| (0..r).map(move |b| f[a * nx + b])).sum::<f64>() / (r * r) as f64;
        assert!((out[0] - block).abs() < 1e-14);
        assert!(Restrictor::new([ny, nx], 3, GridType::CellCentered).is_err());
        assert!(Restrictor::new([1, 16], 8, GridType::CellCentered).is_err());
    }

    #[test]
    fn one_dimensional_truncation() {
        let (nx, r) = (64, 2);
        let tau = std::f64::consts::TAU;
        let frame: Vec<f64> = (0..nx).map(|i| (tau * 3.0 * i as f64 / nx as f64).sin()).collect();
        let mut rs = Restrictor::new([1, nx], r, GridType::SpectralCollocation).unwrap();
        let mut out = vec![0.0; nx / r];
        rs.apply(&frame, 1, &mut out);
        for (i, v) in out.iter().enumerate() {
            assert!((v - frame[i * r]).abs() < 1e-12);
        }
    }

    #[test]
    fn the_coarse_config_has_the_coarse_grid_and_step() {
        let text = "pde = \"navier-stokes2d\"\n[grid]\nn = 256\nlength = 6.0\n[time]\nt_end = 1.0\nsave_every = 0.5\ndt = 0.0025\n";
        let t: toml::Table = coarse_config(text, 4).unwrap().parse().unwrap();
        assert_eq!(t["grid"]["n"].as_integer(), Some(64));
        assert_eq!(t["time"]["dt"].as_float(), Some(0.01));
    }
}
