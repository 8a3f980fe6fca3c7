//! A native application of the multilevel DCDM network ([`crate::dcdm::Multilevel`]) on one grid: the same
//! `f(x) = ε x + E_fᵀE_f x + Σ γ^l P_lᵀ E_cᵀE_c P_l x` as the burn network, in f32, with every buffer allocated
//! once when the grid is set. Convolutions are row kernels (for each output row, shifted multiply–adds over the
//! contiguous x axis, which the compiler vectorises), parallel over the rows of all output channels. It agrees
//! with the burn network to f32 round-off (summation order differs) and is what [`crate::dcdm::NetworkPreconditioner`]
//! applies for a multilevel network.

use std::sync::Mutex;

use rayon::prelude::*;

/// One bias-free 3×3 (`kz = 1`) or 3×3×3 convolution: `[c_out, c_in, kz, 3, 3]`, row-major.
#[derive(Clone, Debug)]
pub struct ConvWeights {
    pub cout: usize,
    pub cin: usize,
    pub kz: usize,
    pub w: Vec<f32>,
}

impl ConvWeights {
    #[inline]
    fn at(&self, co: usize, ci: usize, dz: usize, dy: usize, dx: usize) -> f32 {
        self.w[(((co * self.cin + ci) * self.kz + dz) * 3 + dy) * 3 + dx]
    }
}

/// The parameters of a multilevel network.
#[derive(Clone, Debug)]
pub struct MultilevelWeights {
    pub dims: usize,
    pub fine: Vec<ConvWeights>,
    pub coarse: Vec<ConvWeights>,
    /// γ and ε.
    pub gain: f32,
    pub floor: f32,
}

/// Work space of one application.
struct Buffers {
    /// The restricted input of each coarse level (one channel).
    pooled: Vec<Vec<f32>>,
    /// Ping-pong channel buffers, as large as the fine grid times the channels.
    a: Vec<f32>,
    b: Vec<f32>,
    /// A smoothed or transferred field (fine-grid size).
    smooth: Vec<f32>,
    /// The coarse levels' sum transferred to level k, on level k's grid (k < levels).
    acc: Vec<Vec<f32>>,
    /// A level's term (fine-grid size).
    out: Vec<f32>,
}

/// The network on one grid, with its buffers.
pub struct MultilevelKernel {
    weights: MultilevelWeights,
    /// `[nz, ny, nx]` of the fine grid (level 0) and of each coarse level.
    shapes: Vec<[usize; 3]>,
    buffers: Mutex<Buffers>,
}

fn cells(s: [usize; 3]) -> usize {
    s[0] * s[1] * s[2]
}

impl MultilevelKernel {
    /// The network on the `[nz, ny, nx]` grid with `levels` coarse levels.
    pub fn new(weights: MultilevelWeights, grid: [usize; 3], levels: usize) -> Self {
        let three = weights.dims == 3;
        let mut shapes = vec![grid];
        let [mut z, mut y, mut x] = grid;
        for _ in 0..levels {
            (z, y, x) = (if three { z.div_ceil(2) } else { z }, y.div_ceil(2), x.div_ceil(2));
            shapes.push([z, y, x]);
        }
        let width = weights.fine.iter().chain(&weights.coarse).map(|c| c.cout.max(c.cin)).max().unwrap_or(1);
        let n = cells(grid);
        let buffers = Buffers {
            pooled: shapes[1..].iter().map(|&s| vec![0.0; cells(s)]).collect(),
            a: vec![0.0; width * n],
            b: vec![0.0; width * n],
            smooth: vec![0.0; n],
            acc: shapes[..levels].iter().map(|&s| vec![0.0; cells(s)]).collect(),
            out: vec![0.0; n],
        };
        Self { weights, shapes, buffers: Mutex::new(buffers) }
    }

    /// Cells of the fine grid.
    pub fn len(&self) -> usize {
        cells(self.shapes[0])
    }

    /// Whether the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `y = f(x)` on the fine grid (`x` and `y` of `nz ny nx` values, x fastest).
    pub fn apply(&self, x: &[f32], y: &mut [f32]) {
        let mut guard = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let buf = &mut *guard;
        let w = &self.weights;
        let dims = w.dims;
        let levels = self.shapes.len() - 1;
        // down: the restricted input of every coarse level (smooth, then average blocks)
        for l in 0..levels {
            let (fine, coarse) = (self.shapes[l], self.shapes[l + 1]);
            let n = cells(fine);
            let (done, rest) = buf.pooled.split_at_mut(l);
            let src: &[f32] = if l == 0 { x } else { &done[l - 1] };
            smooth(src, &mut buf.smooth[..n], fine, dims);
            pool(&buf.smooth[..n], &mut rest[0], fine, coarse, dims);
        }
        // up: level l's term plus what came from below, times γ, then the adjoint transfer to level l − 1;
        // acc[k] lives on level k's grid
        for l in (1..=levels).rev() {
            let (shape, up) = (self.shapes[l], self.shapes[l - 1]);
            let (n, m) = (cells(shape), cells(up));
            normal(&w.coarse, &buf.pooled[l - 1], &mut buf.out[..n], &mut buf.a, &mut buf.b, shape);
            if l < levels {
                buf.out[..n].iter_mut().zip(&buf.acc[l]).for_each(|(o, a)| *o += a);
            }
            buf.out[..n].iter_mut().for_each(|o| *o *= w.gain);
            pool_adjoint(&buf.out[..n], &mut buf.smooth[..m], shape, up, dims);
            smooth(&buf.smooth[..m], &mut buf.acc[l - 1], up, dims);
        }
        // the fine term, ε x and the coarse sum
        let n = self.len();
        normal(&w.fine, x, &mut y[..n], &mut buf.a, &mut buf.b, self.shapes[0]);
        if levels > 0 {
            for ((yi, &xi), &ci) in y.iter_mut().zip(x).zip(&buf.acc[0]) {
                *yi += w.floor * xi + ci;
            }
        } else {
            y.iter_mut().zip(x).for_each(|(yi, &xi)| *yi += w.floor * xi);
        }
    }
}

/// `out = Eᵀ E x` for the stack `convs` (one channel in and out), through the ping-pong buffers.
fn normal(convs: &[ConvWeights], x: &[f32], out: &mut [f32], a: &mut [f32], b: &mut [f32], shape: [usize; 3]) {
    let n = cells(shape);
    if convs.is_empty() {
        out.copy_from_slice(x);
        return;
    }
    // forward: x → a → b → a ...
    let (mut cur, mut other) = (a, b);
    conv(&convs[0], x, &mut cur[..convs[0].cout * n], shape, false);
    for c in &convs[1..] {
        conv(c, &cur[..c.cin * n], &mut other[..c.cout * n], shape, false);
        std::mem::swap(&mut cur, &mut other);
    }
    // adjoint: back through the stack; the last one lands in `out`
    for (k, c) in convs.iter().enumerate().rev() {
        if k == 0 {
            conv(c, &cur[..c.cout * n], out, shape, true);
        } else {
            conv(c, &cur[..c.cout * n], &mut other[..c.cin * n], shape, true);
            std::mem::swap(&mut cur, &mut other);
        }
    }
}

/// The zero-padded convolution (`transpose = false`: `c_in → c_out`, cross-correlation as burn's `conv`) or its
/// adjoint (`true`: `c_out → c_in`), one output row per task.
fn conv(c: &ConvWeights, input: &[f32], output: &mut [f32], shape: [usize; 3], transpose: bool) {
    let [nz, ny, nx] = shape;
    let (ins, outs) = if transpose { (c.cout, c.cin) } else { (c.cin, c.cout) };
    let plane = nz * ny * nx;
    debug_assert_eq!(input.len(), ins * plane);
    debug_assert_eq!(output.len(), outs * plane);
    let kz = c.kz;
    output.par_chunks_mut(nx).enumerate().for_each(|(row, out)| {
        let o = row / (nz * ny);
        let z = (row / ny) % nz;
        let y = row % ny;
        out.fill(0.0);
        for i in 0..ins {
            for dz in 0..kz {
                // forward reads z + dz − h, the adjoint z − dz + h (h = 1 in 3D, 0 in 2D)
                let h = kz / 2;
                let sz = if transpose {
                    z as isize - dz as isize + h as isize
                } else {
                    z as isize + dz as isize - h as isize
                };
                if sz < 0 || sz >= nz as isize {
                    continue;
                }
                for dy in 0..3 {
                    let sy = if transpose { y as isize - dy as isize + 1 } else { y as isize + dy as isize - 1 };
                    if sy < 0 || sy >= ny as isize {
                        continue;
                    }
                    let src = &input[((i * nz + sz as usize) * ny + sy as usize) * nx..][..nx];
                    for dx in 0..3 {
                        let wv = if transpose { c.at(i, o, dz, dy, dx) } else { c.at(o, i, dz, dy, dx) };
                        // out[x] += w · src[x + s], s = dx − 1 (forward) or 1 − dx (adjoint)
                        let s = if transpose { 1 - dx as isize } else { dx as isize - 1 };
                        shifted_axpy(out, src, wv, s);
                    }
                }
            }
        }
    });
}

/// `out[x] += w · src[x + s]` where `0 ≤ x + s < n`.
#[inline]
fn shifted_axpy(out: &mut [f32], src: &[f32], w: f32, s: isize) {
    let n = out.len();
    match s {
        0 => out.iter_mut().zip(src).for_each(|(o, v)| *o += w * v),
        1 if n > 1 => out[..n - 1].iter_mut().zip(&src[1..]).for_each(|(o, v)| *o += w * v),
        -1 if n > 1 => out[1..].iter_mut().zip(&src[..n - 1]).for_each(|(o, v)| *o += w * v),
        _ => {}
    }
}

/// The fixed smoothing `[1, 2, 1] / 4` along each pooled axis, zero outside the grid (one channel).
fn smooth(x: &[f32], out: &mut [f32], shape: [usize; 3], dims: usize) {
    let [nz, ny, nx] = shape;
    let k = [0.25f32, 0.5, 0.25];
    let kzs: &[(isize, f32)] = if dims == 3 { &[(-1, 0.25), (0, 0.5), (1, 0.25)] } else { &[(0, 1.0)] };
    out.par_chunks_mut(nx).enumerate().for_each(|(row, o)| {
        let (z, y) = (row / ny, row % ny);
        o.fill(0.0);
        for &(dz, wz) in kzs {
            let sz = z as isize + dz;
            if sz < 0 || sz >= nz as isize {
                continue;
            }
            for (dy, &wy) in k.iter().enumerate() {
                let sy = y as isize + dy as isize - 1;
                if sy < 0 || sy >= ny as isize {
                    continue;
                }
                let src = &x[(sz as usize * ny + sy as usize) * nx..][..nx];
                for (dx, &wx) in k.iter().enumerate() {
                    shifted_axpy(o, src, wz * wy * wx, dx as isize - 1);
                }
            }
        }
    });
}

/// Averages of 2×2 (2×2×2) blocks; odd sides padded with zeros.
fn pool(x: &[f32], out: &mut [f32], fine: [usize; 3], coarse: [usize; 3], dims: usize) {
    let [nz, ny, nx] = fine;
    let [_, my, mx] = coarse;
    let fz = if dims == 3 { 2 } else { 1 };
    let scale = 1.0 / (fz * 4) as f32;
    out.par_chunks_mut(mx).enumerate().for_each(|(row, o)| {
        let (cz, cy) = (row / my, row % my);
        for (cx, v) in o.iter_mut().enumerate() {
            let mut s = 0.0f32;
            for z in cz * fz..(cz * fz + fz).min(nz) {
                for y in cy * 2..(cy * 2 + 2).min(ny) {
                    for xx in cx * 2..(cx * 2 + 2).min(nx) {
                        s += x[(z * ny + y) * nx + xx];
                    }
                }
            }
            *v = s * scale;
        }
    });
}

/// The adjoint of [`pool`]: each coarse value copied to its block, divided by the block's size.
fn pool_adjoint(x: &[f32], out: &mut [f32], coarse: [usize; 3], fine: [usize; 3], dims: usize) {
    let [_, my, mx] = coarse;
    let [_, ny, nx] = fine;
    let fz = if dims == 3 { 2 } else { 1 };
    let scale = 1.0 / (fz * 4) as f32;
    out.par_chunks_mut(nx).enumerate().for_each(|(row, o)| {
        let (z, y) = (row / ny, row % ny);
        let src = &x[((z / fz) * my + y / 2) * mx..][..mx];
        for (xx, v) in o.iter_mut().enumerate() {
            *v = src[xx / 2] * scale;
        }
    });
}
