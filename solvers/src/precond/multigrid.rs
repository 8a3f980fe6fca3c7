//! Geometric multigrid V-cycle for cell-centred problems on boxes.

use std::sync::Mutex;

use super::Preconditioner;
use crate::ConfigError;
use crate::linalg::{CsrMatrix, push_row};

/// Where the unknowns of a cell-centred box problem live: `n` cells per axis (x fastest; `n[2] = 1` in 2D) and
/// the grid cell of each unknown (solid cells have none).
#[derive(Clone, Debug, PartialEq)]
pub struct BoxGrid {
    pub n: [usize; 3],
    pub dims: usize,
    pub cells: Vec<usize>,
}

struct Level {
    /// the level's operator without its diagonal (the smoother and the residual read it once per sweep)
    off: OffDiagonal,
    /// prolongation from the next coarser level (None on the coarsest)
    p: Option<CsrMatrix>,
    pt: Option<CsrMatrix>,
}

/// A square matrix split into its diagonal (and its inverse) and the off-diagonal rows, 32-bit columns.
struct OffDiagonal {
    ptr: Vec<usize>,
    idx: Vec<u32>,
    val: Vec<f64>,
    diag: Vec<f64>,
    inv_diag: Vec<f64>,
}

impl OffDiagonal {
    fn new(a: &CsrMatrix) -> Result<Self, ConfigError> {
        let n = a.nrows();
        let (ip, ix, vx) = a.parts();
        let mut ptr = Vec::with_capacity(n + 1);
        ptr.push(0);
        let mut idx = Vec::with_capacity(a.nnz().saturating_sub(n));
        let mut val = Vec::with_capacity(a.nnz().saturating_sub(n));
        let mut diag = vec![0.0; n];
        for i in 0..n {
            for k in ip[i]..ip[i + 1] {
                if ix[k] as usize == i {
                    diag[i] = vx[k];
                } else {
                    idx.push(ix[k]);
                    val.push(vx[k]);
                }
            }
            ptr.push(idx.len());
        }
        if let Some(&d) = diag.iter().find(|d| d.is_nan() || **d <= 0.0 || d.is_infinite()) {
            return Err(ConfigError::NotPositive { name: "multigrid diagonal entry", value: d });
        }
        let inv_diag = diag.iter().map(|d| 1.0 / d).collect();
        Ok(Self { ptr, idx, val, diag, inv_diag })
    }

    fn n(&self) -> usize {
        self.diag.len()
    }

    /// `b_i − Σ_{j≠i} a_ij x_j`.
    #[inline(always)]
    fn row(&self, i: usize, b: &[f64], x: &[f64]) -> f64 {
        let (s, e) = (self.ptr[i], self.ptr[i + 1]);
        let mut v = b[i];
        for (c, &j) in self.val[s..e].iter().zip(&self.idx[s..e]) {
            v -= c * x[j as usize];
        }
        v
    }

    /// One Gauss–Seidel sweep for `A x = b`, forward or backward.
    fn gauss_seidel(&self, b: &[f64], x: &mut [f64], forward: bool) {
        let n = self.n();
        let (b, x) = (&b[..n], &mut x[..n]);
        if forward {
            for i in 0..n {
                x[i] = self.row(i, b, x) * self.inv_diag[i];
            }
        } else {
            for i in (0..n).rev() {
                x[i] = self.row(i, b, x) * self.inv_diag[i];
            }
        }
    }

    /// `r = b − A x`.
    fn residual(&self, b: &[f64], x: &[f64], r: &mut [f64]) {
        let n = self.n();
        for (i, ri) in r[..n].iter_mut().enumerate() {
            *ri = self.row(i, b, x) - self.diag[i] * x[i];
        }
    }
}

struct Work {
    x: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    r: Vec<Vec<f64>>,
}

/// A V(ν, ν)-cycle with symmetric Gauss–Seidel smoothing (forward before, backward after the coarse
/// correction), cell-centred (tri)linear prolongation P, restriction Pᵀ and Galerkin coarse operators `Pᵀ A P`
/// down to a grid of at most `coarsest` unknowns, which is smoothed 50 times. Symmetric and linear, so PCG
/// accepts it; iteration counts stay nearly flat under refinement. Solid cells are handled by the Galerkin
/// products (coarse cells without fluid children are dropped).
pub struct Multigrid {
    levels: Vec<Level>,
    sweeps: usize,
    work: Mutex<Work>,
}

impl Multigrid {
    /// Builds the hierarchy for the matrix `a` of a problem on `grid`.
    pub fn new(a: &CsrMatrix, grid: &BoxGrid, sweeps: usize, coarsest: usize) -> Result<Self, ConfigError> {
        if grid.cells.len() != a.nrows() {
            return Err(ConfigError::Shape {
                what: "multigrid grid",
                expected: vec![a.nrows()],
                got: vec![grid.cells.len()],
            });
        }
        let mut levels = vec![];
        let mut a = std::borrow::Cow::Borrowed(a);
        let mut g = grid.clone();
        loop {
            let can = g.cells.len() > coarsest.max(1) && (0..g.dims).all(|d| g.n[d] % 2 == 0 && g.n[d] >= 4);
            if !can {
                levels.push(Level { off: OffDiagonal::new(&a)?, p: None, pt: None });
                break;
            }
            let (p, coarse) = prolongation(&g);
            let pt = p.transpose();
            // Galerkin operator Pᵀ (A P); A P is only a right factor, so its rows need no sorting
            let ac = pt.matmul(&a.product(&p, false)?)?;
            levels.push(Level { off: OffDiagonal::new(&a)?, p: Some(p), pt: Some(pt) });
            a = std::borrow::Cow::Owned(ac);
            g = coarse;
        }
        let sizes: Vec<usize> = levels.iter().map(|l| l.off.n()).collect();
        let work = Work {
            x: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            b: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            r: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        };
        Ok(Self { levels, sweeps: sweeps.max(1), work: Mutex::new(work) })
    }

    /// Unknowns per level, finest first.
    pub fn level_sizes(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.off.n()).collect()
    }

    fn cycle(&self, l: usize, w: &mut Work) {
        let lev = &self.levels[l];
        w.x[l].fill(0.0);
        if lev.p.is_none() {
            for _ in 0..50 {
                lev.off.gauss_seidel(&w.b[l], &mut w.x[l], true);
                lev.off.gauss_seidel(&w.b[l], &mut w.x[l], false);
            }
            return;
        }
        for _ in 0..self.sweeps {
            lev.off.gauss_seidel(&w.b[l], &mut w.x[l], true);
        }
        lev.off.residual(&w.b[l], &w.x[l], &mut w.r[l]);
        let pt = lev.pt.as_ref().expect("not the coarsest level");
        pt.matvec(&w.r[l], &mut w.b[l + 1]);
        self.cycle(l + 1, w);
        let p = lev.p.as_ref().expect("not the coarsest level");
        {
            let (xs, rest) = w.x.split_at_mut(l + 1);
            p.matvec(&rest[0], &mut w.r[l]);
            for (xi, ci) in xs[l].iter_mut().zip(&w.r[l]) {
                *xi += ci;
            }
        }
        for _ in 0..self.sweeps {
            lev.off.gauss_seidel(&w.b[l], &mut w.x[l], false);
        }
    }
}

impl Preconditioner for Multigrid {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        let mut w = self.work.lock().unwrap_or_else(|e| e.into_inner());
        w.b[0].copy_from_slice(r);
        self.cycle(0, &mut w);
        z.copy_from_slice(&w.x[0]);
    }
}

/// Cell-centred (tri)linear prolongation from the grid coarsened by 2 per axis: a fine cell takes 3/4 of its
/// parent and 1/4 of the parent's neighbour on its side, per axis (product weights); a missing neighbour (box
/// boundary or no fluid) gives its weight to the parent.
fn prolongation(g: &BoxGrid) -> (CsrMatrix, BoxGrid) {
    let nc = [g.n[0] / 2, if g.dims >= 2 { g.n[1] / 2 } else { 1 }, if g.dims >= 3 { g.n[2] / 2 } else { 1 }];
    let ncell = nc[0] * nc[1] * nc[2];
    let coarse_of = |c: usize| -> [usize; 3] {
        let (i, j, k) = (c % g.n[0], (c / g.n[0]) % g.n[1], c / (g.n[0] * g.n[1]));
        [i / 2, if g.dims >= 2 { j / 2 } else { 0 }, if g.dims >= 3 { k / 2 } else { 0 }]
    };
    let lin = |ci: [usize; 3]| ci[0] + nc[0] * (ci[1] + nc[1] * ci[2]);
    // coarse unknowns: coarse cells with at least one fluid child
    let mut has = vec![false; ncell];
    for &c in &g.cells {
        has[lin(coarse_of(c))] = true;
    }
    let mut cidx = vec![usize::MAX; ncell];
    let mut cells = vec![];
    for (c, h) in has.iter().enumerate() {
        if *h {
            cidx[c] = cells.len();
            cells.push(c);
        }
    }
    // rows built directly: each fine cell's 2^dims (coarse unknown, weight) pairs
    let rows = g.cells.len();
    let mut indptr = Vec::with_capacity(rows + 1);
    indptr.push(0);
    let mut indices: Vec<u32> = Vec::with_capacity(rows << g.dims);
    let mut values = Vec::with_capacity(rows << g.dims);
    let mut row: Vec<(u32, f64)> = Vec::with_capacity(8);
    for &c in &g.cells {
        let fine = [c % g.n[0], (c / g.n[0]) % g.n[1], c / (g.n[0] * g.n[1])];
        let parent = coarse_of(c);
        row.clear();
        for corner in 0..(1usize << g.dims) {
            let mut w = 1.0;
            let mut ci = parent;
            let mut ok = true;
            for d in 0..g.dims {
                if corner >> d & 1 == 1 {
                    w *= 0.25;
                    let up = fine[d] % 2 == 1;
                    if up && ci[d] + 1 < nc[d] {
                        ci[d] += 1;
                    } else if !up && ci[d] > 0 {
                        ci[d] -= 1;
                    } else {
                        ok = false;
                    }
                } else {
                    w *= 0.75;
                }
            }
            let target = if ok && cidx[lin(ci)] != usize::MAX { cidx[lin(ci)] } else { cidx[lin(parent)] };
            row.push((target as u32, w));
        }
        push_row(&mut row, &mut indices, &mut values);
        indptr.push(indices.len());
    }
    let p = CsrMatrix::from_sorted_rows(rows, cells.len(), indptr, indices, values);
    (p, BoxGrid { n: nc, dims: g.dims, cells })
}
