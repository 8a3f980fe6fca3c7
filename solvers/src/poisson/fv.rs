//! Cell-centred finite-volume Poisson on boxes with variable coefficient, Dirichlet or Neumann sides and solid
//! cells.

use std::collections::VecDeque;

use crate::ConfigError;
use crate::krylov::{SolveError, SolveInfo, Tolerance, pcg};
use crate::linalg::{CsrMatrix, LinearOperator};
use crate::precond::Preconditioner;

/// Boundary condition on one side of the box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoissonBc {
    /// `u = g` on the side (imposed at the face through a ghost value, second order).
    Dirichlet(f64),
    /// Outward normal flux `k ∂u/∂n = g` (the normal derivative when k = 1 at the side).
    Neumann(f64),
}

/// Errors of a Poisson setup or solve.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PoissonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A region without Dirichlet boundary has a source that does not balance its boundary fluxes.
    #[error(
        "incompatible pure-Neumann data: the sources of a region without Dirichlet boundary sum to {imbalance:.3e} (relative {relative:.3e}), which must be zero"
    )]
    Incompatible { imbalance: f64, relative: f64 },
    #[error(transparent)]
    Solve(#[from] SolveError),
}

/// `−∇·(k ∇u) = f` on an `nx × ny (× nz)` box of cells, x fastest. Faces between two cells use the harmonic mean
/// of their coefficients; faces to solid cells are walls (zero flux). Each row of the operator is scaled by the
/// cell volume's reciprocal, so `A u ≈ f` cell by cell; `A` is symmetric (positive semi-definite; singular exactly
/// on regions without Dirichlet boundary, where the solution is fixed to zero mean).
#[derive(Clone, Debug)]
pub struct PoissonFv {
    n: [usize; 3],
    h: [f64; 3],
    dims: usize,
    k: Vec<f64>,
    /// sides: [x−, x+, y−, y+, z−, z+]
    bc: [PoissonBc; 6],
    /// unknown index of each cell (`usize::MAX` for solid cells)
    index: Vec<usize>,
    /// cell of each unknown
    cells: Vec<usize>,
    /// connected regions without a Dirichlet face: their unknowns
    floating: Vec<Vec<usize>>,
}

const SOLID: usize = usize::MAX;

impl PoissonFv {
    /// A 2D problem on `nx × ny` cells of a `lx × ly` box. `k` (per cell, default 1) must be positive; `bc` is
    /// `[x−, x+, y−, y+]`; `fluid` (per cell, default all) marks the cells that are unknowns.
    pub fn new_2d(
        nx: usize,
        ny: usize,
        length: [f64; 2],
        k: Option<Vec<f64>>,
        bc: [PoissonBc; 4],
        fluid: Option<Vec<bool>>,
    ) -> Result<Self, ConfigError> {
        let d = PoissonBc::Neumann(0.0);
        Self::new([nx, ny, 1], [length[0], length[1], 1.0], 2, k, [bc[0], bc[1], bc[2], bc[3], d, d], fluid)
    }

    /// A 3D problem on `nx × ny × nz` cells; `bc` is `[x−, x+, y−, y+, z−, z+]`.
    pub fn new_3d(
        n: [usize; 3],
        length: [f64; 3],
        k: Option<Vec<f64>>,
        bc: [PoissonBc; 6],
        fluid: Option<Vec<bool>>,
    ) -> Result<Self, ConfigError> {
        Self::new(n, length, 3, k, bc, fluid)
    }

    fn new(
        n: [usize; 3],
        length: [f64; 3],
        dims: usize,
        k: Option<Vec<f64>>,
        bc: [PoissonBc; 6],
        fluid: Option<Vec<bool>>,
    ) -> Result<Self, ConfigError> {
        for (a, &m) in ["x", "y", "z"].iter().zip(&n[..dims]) {
            if m < 2 {
                return Err(ConfigError::GridTooSmall { axis: a, n: m, min: 2 });
            }
        }
        for &l in &length[..dims] {
            crate::check_positive("box length", l)?;
        }
        let cells = n[0] * n[1] * n[2];
        let k = k.unwrap_or_else(|| vec![1.0; cells]);
        if k.len() != cells {
            return Err(ConfigError::Shape { what: "coefficient k", expected: vec![cells], got: vec![k.len()] });
        }
        if let Some(&v) = k.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(ConfigError::NotPositive { name: "coefficient k", value: v });
        }
        for b in bc {
            let (PoissonBc::Dirichlet(v) | PoissonBc::Neumann(v)) = b;
            if !v.is_finite() {
                return Err(ConfigError::NotFinite { name: "boundary value", value: v });
            }
        }
        let fluid = fluid.unwrap_or_else(|| vec![true; cells]);
        if fluid.len() != cells {
            return Err(ConfigError::Shape { what: "fluid mask", expected: vec![cells], got: vec![fluid.len()] });
        }
        let mut index = vec![SOLID; cells];
        let mut list = Vec::new();
        for (c, f) in fluid.iter().enumerate() {
            if *f {
                index[c] = list.len();
                list.push(c);
            }
        }
        let h = [length[0] / n[0] as f64, length[1] / n[1] as f64, length[2] / n[2] as f64];
        let mut p = Self { n, h, dims, k, bc, index, cells: list, floating: vec![] };
        p.floating = p.floating_regions();
        Ok(p)
    }

    /// Number of unknowns (fluid cells).
    pub fn unknowns(&self) -> usize {
        self.cells.len()
    }

    /// Grid cells `nx · ny · nz`.
    pub fn grid_cells(&self) -> usize {
        self.n[0] * self.n[1] * self.n[2]
    }

    /// Cell centre of cell `c`.
    pub fn centre(&self, c: usize) -> [f64; 3] {
        let (i, j, l) = (c % self.n[0], (c / self.n[0]) % self.n[1], c / (self.n[0] * self.n[1]));
        [(i as f64 + 0.5) * self.h[0], (j as f64 + 0.5) * self.h[1], (l as f64 + 0.5) * self.h[2]]
    }

    /// Cell widths.
    pub fn h(&self) -> [f64; 3] {
        self.h
    }

    fn strides(&self) -> [usize; 3] {
        [1, self.n[0], self.n[0] * self.n[1]]
    }

    fn coord(&self, c: usize, axis: usize) -> usize {
        (c / self.strides()[axis]) % self.n[axis]
    }

    /// Calls `f(side, neighbour)` for the 2·dims faces of cell `c`: `neighbour` is `Some(cell)` inside the box,
    /// `None` on the box boundary (side = 2·axis + (0 lower | 1 upper)).
    #[inline]
    fn faces(&self, c: usize, mut f: impl FnMut(usize, Option<usize>)) {
        for (axis, stride) in self.strides().into_iter().enumerate().take(self.dims) {
            let i = self.coord(c, axis);
            f(2 * axis, if i > 0 { Some(c - stride) } else { None });
            f(2 * axis + 1, if i + 1 < self.n[axis] { Some(c + stride) } else { None });
        }
    }

    /// Coefficient of the face between cells `a` and `b` along `axis`, divided by h².
    #[inline]
    fn transmissibility(&self, a: usize, b: usize, axis: usize) -> f64 {
        let (ka, kb) = (self.k[a], self.k[b]);
        2.0 * ka * kb / (ka + kb) / (self.h[axis] * self.h[axis])
    }

    fn floating_regions(&self) -> Vec<Vec<usize>> {
        let m = self.unknowns();
        let mut seen = vec![false; m];
        let mut out = vec![];
        for start in 0..m {
            if seen[start] {
                continue;
            }
            let mut region = vec![];
            let mut dirichlet = false;
            let mut queue = VecDeque::from([start]);
            seen[start] = true;
            while let Some(u) = queue.pop_front() {
                region.push(u);
                self.faces(self.cells[u], |side, nb| match nb {
                    Some(c) if self.index[c] != SOLID => {
                        let v = self.index[c];
                        if !seen[v] {
                            seen[v] = true;
                            queue.push_back(v);
                        }
                    }
                    Some(_) => {}
                    None => dirichlet |= matches!(self.bc[side], PoissonBc::Dirichlet(_)),
                });
            }
            if !dirichlet {
                out.push(region);
            }
        }
        out
    }

    /// The grid layout of the unknowns (for [`Multigrid`](crate::precond::Multigrid)).
    pub fn box_grid(&self) -> crate::precond::BoxGrid {
        crate::precond::BoxGrid { n: self.n, dims: self.dims, cells: self.cells.clone() }
    }

    /// Whether some region has no Dirichlet boundary (the operator is singular there).
    pub fn is_singular(&self) -> bool {
        !self.floating.is_empty()
    }

    /// The assembled matrix over the unknowns.
    pub fn assemble(&self) -> CsrMatrix {
        let mut t = Vec::with_capacity(self.unknowns() * (1 + 2 * self.dims));
        for (u, &c) in self.cells.iter().enumerate() {
            let mut diag = 0.0;
            self.faces(c, |side, nb| match nb {
                Some(nc) if self.index[nc] != SOLID => {
                    let tr = self.transmissibility(c, nc, side / 2);
                    diag += tr;
                    t.push((u, self.index[nc], -tr));
                }
                Some(_) => {}
                None => {
                    if let PoissonBc::Dirichlet(_) = self.bc[side] {
                        let hh = self.h[side / 2];
                        diag += 2.0 * self.k[c] / (hh * hh);
                    }
                }
            });
            t.push((u, u, diag));
        }
        CsrMatrix::from_triplets(self.unknowns(), self.unknowns(), &t).expect("indices are in range")
    }

    /// The right-hand side over the unknowns for the source `f` (one value per grid cell, x fastest), with the
    /// boundary values folded in. On regions without Dirichlet boundary the data must balance (within `1e-8`
    /// relative); the small remainder is removed so the system is consistent.
    pub fn rhs(&self, f: &[f64]) -> Result<Vec<f64>, PoissonError> {
        if f.len() != self.grid_cells() {
            return Err(
                ConfigError::Shape { what: "source f", expected: vec![self.grid_cells()], got: vec![f.len()] }.into()
            );
        }
        if let Some(&v) = f.iter().find(|v| !v.is_finite()) {
            return Err(ConfigError::NotFinite { name: "source f", value: v }.into());
        }
        let mut b: Vec<f64> = self.cells.iter().map(|&c| f[c]).collect();
        for (u, &c) in self.cells.iter().enumerate() {
            self.faces(c, |side, nb| {
                if nb.is_none() {
                    let hh = self.h[side / 2];
                    b[u] += match self.bc[side] {
                        PoissonBc::Dirichlet(g) => 2.0 * self.k[c] / (hh * hh) * g,
                        PoissonBc::Neumann(g) => g / hh,
                    };
                }
            });
        }
        for region in &self.floating {
            let sum: f64 = region.iter().map(|&u| b[u]).sum();
            let scale: f64 = region.iter().map(|&u| b[u].abs()).sum::<f64>().max(f64::MIN_POSITIVE);
            if sum.abs() > 1e-8 * scale {
                let vol: f64 = self.h[..self.dims].iter().product();
                return Err(PoissonError::Incompatible { imbalance: sum * vol, relative: sum / scale });
            }
            let mean = sum / region.len() as f64;
            for &u in region {
                b[u] -= mean;
            }
        }
        Ok(b)
    }

    /// Removes the mean of each region without Dirichlet boundary (the zero-mean solution there).
    pub fn fix_nullspace(&self, x: &mut [f64]) {
        for region in &self.floating {
            let mean: f64 = region.iter().map(|&u| x[u]).sum::<f64>() / region.len() as f64;
            for &u in region {
                x[u] -= mean;
            }
        }
    }

    /// Unknowns to a grid array (solid cells get `solid_value`).
    pub fn to_grid(&self, x: &[f64], solid_value: f64) -> Vec<f64> {
        self.index.iter().map(|&u| if u == SOLID { solid_value } else { x[u] }).collect()
    }

    /// `∂(A(k) u − b(k))/∂k · t`: the derivative of the residual with respect to the coefficient field (grid
    /// values) in the direction `t`, at the unknowns `u`; written to `out` (one value per unknown).
    pub fn dk_apply(&self, u: &[f64], t: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for (iu, &c) in self.cells.iter().enumerate() {
            self.faces(c, |side, nb| match nb {
                Some(nc) if self.index[nc] != SOLID => {
                    let (dtc, dtn) = self.dtransmissibility(c, nc, side / 2);
                    out[iu] += (dtc * t[c] + dtn * t[nc]) * (u[iu] - u[self.index[nc]]);
                }
                Some(_) => {}
                None => {
                    if let PoissonBc::Dirichlet(g) = self.bc[side] {
                        let hh = self.h[side / 2];
                        out[iu] += 2.0 / (hh * hh) * (u[iu] - g) * t[c];
                    }
                }
            });
        }
    }

    /// Transpose of [`dk_apply`](Self::dk_apply): `out = (∂(A u − b)/∂k)ᵀ w`, one value per grid cell.
    pub fn dk_apply_t(&self, u: &[f64], w: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for (iu, &c) in self.cells.iter().enumerate() {
            self.faces(c, |side, nb| match nb {
                Some(nc) if self.index[nc] != SOLID => {
                    let (dtc, dtn) = self.dtransmissibility(c, nc, side / 2);
                    let d = w[iu] * (u[iu] - u[self.index[nc]]);
                    out[c] += dtc * d;
                    out[nc] += dtn * d;
                }
                Some(_) => {}
                None => {
                    if let PoissonBc::Dirichlet(g) = self.bc[side] {
                        let hh = self.h[side / 2];
                        out[c] += 2.0 / (hh * hh) * (u[iu] - g) * w[iu];
                    }
                }
            });
        }
    }

    /// Partial derivatives of the face coefficient between `a` and `b` with respect to `k_a` and `k_b`.
    #[inline]
    fn dtransmissibility(&self, a: usize, b: usize, axis: usize) -> (f64, f64) {
        let (ka, kb) = (self.k[a], self.k[b]);
        let s = (ka + kb) * (ka + kb) * self.h[axis] * self.h[axis];
        (2.0 * kb * kb / s, 2.0 * ka * ka / s)
    }

    /// Grid cell of each unknown.
    pub fn cells(&self) -> &[usize] {
        &self.cells
    }

    /// The same problem with another coefficient field.
    pub fn with_k(&self, k: Vec<f64>) -> Result<Self, ConfigError> {
        if k.len() != self.grid_cells() {
            return Err(ConfigError::Shape {
                what: "coefficient k",
                expected: vec![self.grid_cells()],
                got: vec![k.len()],
            });
        }
        if let Some(&v) = k.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(ConfigError::NotPositive { name: "coefficient k", value: v });
        }
        Ok(Self { k, ..self.clone() })
    }

    /// Solves with PCG and the given preconditioner; returns the solution on the grid (solid cells 0).
    pub fn solve(
        &self,
        f: &[f64],
        m: &dyn Preconditioner,
        tol: Tolerance,
    ) -> Result<(Vec<f64>, SolveInfo), PoissonError> {
        let b = self.rhs(f)?;
        let mut x = vec![0.0; self.unknowns()];
        let info = pcg(self, m, &b, &mut x, tol)?;
        self.fix_nullspace(&mut x);
        Ok((self.to_grid(&x, 0.0), info))
    }
}

/// Which inputs of a Poisson solve are differentiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoissonParameter {
    /// The source f (one value per grid cell).
    Source,
    /// The coefficient field k (one value per grid cell).
    Coefficient,
}

/// The optimality condition `F(u; f, k) = A(k) u − b(f, k) = 0` of a Poisson solve at its solution `u`
/// (unknowns), for [`implicit_vjp`](crate::implicit::implicit_vjp) and
/// [`implicit_jvp`](crate::implicit::implicit_jvp) with respect to f or k. A is symmetric positive definite
/// (use CG) unless the problem is pure Neumann.
pub struct PoissonRoot<'a> {
    pub problem: &'a PoissonFv,
    pub u: &'a [f64],
    pub wrt: PoissonParameter,
}

impl crate::implicit::RootProblem for PoissonRoot<'_> {
    fn n(&self) -> usize {
        self.problem.unknowns()
    }
    fn p(&self) -> usize {
        self.problem.grid_cells()
    }
    fn jac_x(&self, v: &[f64], out: &mut [f64]) {
        self.problem.apply(v, out);
    }
    fn jac_x_t(&self, v: &[f64], out: &mut [f64]) {
        self.problem.apply(v, out);
    }
    fn jac_theta(&self, t: &[f64], out: &mut [f64]) {
        match self.wrt {
            PoissonParameter::Source => {
                for (o, &c) in out.iter_mut().zip(&self.problem.cells) {
                    *o = -t[c];
                }
            }
            PoissonParameter::Coefficient => self.problem.dk_apply(self.u, t, out),
        }
    }
    fn jac_theta_t(&self, w: &[f64], out: &mut [f64]) {
        match self.wrt {
            PoissonParameter::Source => {
                out.fill(0.0);
                for (wi, &c) in w.iter().zip(&self.problem.cells) {
                    out[c] = -wi;
                }
            }
            PoissonParameter::Coefficient => self.problem.dk_apply_t(self.u, w, out),
        }
    }
}

/// The matrix-free operator over the unknowns (equal to [`PoissonFv::assemble`]).
impl LinearOperator for PoissonFv {
    fn nrows(&self) -> usize {
        self.unknowns()
    }

    fn apply(&self, x: &[f64], y: &mut [f64]) {
        for (u, &c) in self.cells.iter().enumerate() {
            let mut acc = 0.0;
            let xu = x[u];
            self.faces(c, |side, nb| match nb {
                Some(nc) if self.index[nc] != SOLID => {
                    acc += self.transmissibility(c, nc, side / 2) * (xu - x[self.index[nc]]);
                }
                Some(_) => {}
                None => {
                    if let PoissonBc::Dirichlet(_) = self.bc[side] {
                        let hh = self.h[side / 2];
                        acc += 2.0 * self.k[c] / (hh * hh) * xu;
                    }
                }
            });
            y[u] = acc;
        }
    }
}
