//! A native application of the multilevel DCDM network ([`crate::dcdm::Multilevel`]) on one grid: the same
//! `f(x) = ε x + E_fᵀE_f x + Σ γ^l P_lᵀ E_cᵀE_c P_l x` as the burn network, in f32, with every buffer allocated
//! once when the grid is set. Multi-channel fields are row-interleaved (`[z][y][channel][x]`), so a convolution
//! computes all output channels of a spatial row from one pass over the input rows that reach it: the rows and
//! weights are gathered once, then blocks of 8 to 32 points accumulate every row's three shifted values for up to 8
//! output channels in registers. The kernel is compiled twice, portable and for AVX2 + FMA, chosen at run time
//! (no closures on its hot path: a closure is compiled without the caller's target features, where `mul_add`
//! becomes a libm call). Spatial rows are spread over rayon's threads in tasks of about 4096 values, so that
//! scheduling stays small on the coarse levels' short rows. It agrees with the burn network to f32 round-off
//! (summation order differs) and is what [`crate::dcdm::NetworkPreconditioner`] applies for a multilevel network.

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
/// adjoint (`true`: `c_out → c_in`). Multi-channel fields are stored row-interleaved, `[z][y][channel][x]`: the
/// rows of every channel at one (z, y) lie together, so one task computes all output channels of a spatial row
/// from a single pass over the input rows that reach it (for one channel the layout is the plain `[z][y][x]`).
/// With AVX2 and FMA (detected at run time) the rows are computed by the same kernel compiled for them; the
/// results differ from the portable path by round-off (fused multiply–adds).
fn conv(c: &ConvWeights, input: &[f32], output: &mut [f32], shape: [usize; 3], transpose: bool) {
    conv_with(c, input, output, shape, transpose, simd_available());
}

/// Whether this CPU runs the AVX2 + FMA kernels.
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`conv`] with the kernel chosen by `simd` (which must only be true where [`simd_available`] is).
fn conv_with(c: &ConvWeights, input: &[f32], output: &mut [f32], shape: [usize; 3], transpose: bool, simd: bool) {
    let [nz, ny, nx] = shape;
    let (ins, outs) = if transpose { (c.cout, c.cin) } else { (c.cin, c.cout) };
    debug_assert_eq!(input.len(), ins * nz * ny * nx);
    debug_assert_eq!(output.len(), outs * nz * ny * nx);
    let rows = rows_per_task(outs * nx);
    output.par_chunks_mut(outs * nx).enumerate().with_min_len(rows).for_each(|(row, out)| {
        let task = RowTask { c, input, shape, transpose, z: row / ny, y: row % ny };
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only where the CPU reports AVX2 and FMA (`simd_available`)
            unsafe { spatial_row_avx2(&task, out) };
            return;
        }
        let _ = simd;
        spatial_row::<false>(&task, out);
    });
}

/// Rows of `len` values per parallel task: about 4096 values, so that rayon's scheduling (a fraction of a
/// microsecond per task) stays small against the work on the coarse levels' short rows.
fn rows_per_task(len: usize) -> usize {
    (4096 / len.max(1)).max(1)
}

/// One spatial row (plane `z`, row `y`) of a convolution, every output channel.
struct RowTask<'a> {
    c: &'a ConvWeights,
    input: &'a [f32],
    shape: [usize; 3],
    transpose: bool,
    z: usize,
    y: usize,
}

impl RowTask<'_> {
    /// Input channels: `c_in`, or `c_out` for the adjoint.
    #[inline(always)]
    fn ins(&self) -> usize {
        if self.transpose { self.c.cout } else { self.c.cin }
    }

    /// The input row that reaches this spatial row at the kernel offsets `dz`, `dy` (channel 0; channel `i` starts
    /// `i · nx` later), or `None` where it lies outside the grid.
    #[inline(always)]
    fn source(&self, dz: usize, dy: usize) -> Option<usize> {
        let [nz, ny, nx] = self.shape;
        let h = self.c.kz / 2;
        // forward reads z + dz − h, y + dy − 1; the adjoint z − dz + h, y − dy + 1 (h = 1 in 3D, 0 in 2D)
        let (sz, sy) = if self.transpose {
            (self.z as isize - dz as isize + h as isize, self.y as isize - dy as isize + 1)
        } else {
            (self.z as isize + dz as isize - h as isize, self.y as isize + dy as isize - 1)
        };
        (sz >= 0 && sz < nz as isize && sy >= 0 && sy < ny as isize)
            .then(|| (sz as usize * ny + sy as usize) * self.ins() * nx)
    }

    /// `[w₋₁, w₀, w₊₁]` of output channel `o` for input channel `i` at `dz`, `dy`, where
    /// `out[x] += w₋₁ src[x − 1] + w₀ src[x] + w₊₁ src[x + 1]`.
    #[inline(always)]
    fn weights(&self, o: usize, i: usize, dz: usize, dy: usize) -> [f32; 3] {
        let c = self.c;
        // forward: out[x] += w[dx] src[x + dx − 1]; adjoint: out[x] += w[dx] src[x + 1 − dx]
        if self.transpose {
            [c.at(i, o, dz, dy, 2), c.at(i, o, dz, dy, 1), c.at(i, o, dz, dy, 0)]
        } else {
            [c.at(o, i, dz, dy, 0), c.at(o, i, dz, dy, 1), c.at(o, i, dz, dy, 2)]
        }
    }
}

/// Input rows gathered per pass over a spatial row (more are applied in several passes).
const MAX_TAPS: usize = 96;

/// All output channels of one spatial row (`out`: `outs` rows of `nx`), in groups of 8 channels (then 4, 2, 1).
#[inline(always)]
fn spatial_row<const FMA: bool>(task: &RowTask, out: &mut [f32]) {
    let nx = task.shape[2];
    let outs = out.len() / nx;
    let mut o = 0;
    while o < outs {
        let left = outs - o;
        let group = &mut out[o * nx..];
        if left >= 8 {
            channel_group::<8, FMA>(task, o, &mut group[..8 * nx]);
            o += 8;
        } else if left >= 4 {
            channel_group::<4, FMA>(task, o, &mut group[..4 * nx]);
            o += 4;
        } else if left >= 2 {
            channel_group::<2, FMA>(task, o, &mut group[..2 * nx]);
            o += 2;
        } else {
            channel_group::<1, FMA>(task, o, &mut group[..nx]);
            o += 1;
        }
    }
}

/// Output channels `o0 … o0 + G − 1` of a spatial row: the input rows and the group's weights are gathered (up to
/// [`MAX_TAPS`] rows per pass), then each block of interior points accumulates every row's three shifted values
/// for all `G` channels in registers.
#[inline(always)]
fn channel_group<const G: usize, const FMA: bool>(task: &RowTask, o0: usize, out: &mut [f32]) {
    // plain loops, no closures: everything here is compiled with the caller's target features
    let nx = task.shape[2];
    let mut offsets = [0usize; MAX_TAPS];
    let mut weights = [[[0.0f32; 3]; G]; MAX_TAPS];
    let (mut count, mut first) = (0, true);
    for dz in 0..task.c.kz {
        for dy in 0..3 {
            let Some(base) = task.source(dz, dy) else { continue };
            for i in 0..task.ins() {
                offsets[count] = base + i * nx;
                for (g, w) in weights[count].iter_mut().enumerate() {
                    *w = task.weights(o0 + g, i, dz, dy);
                }
                count += 1;
                if count == MAX_TAPS {
                    group_pass::<G, FMA>(task.input, &offsets, &weights, out, first);
                    (count, first) = (0, false);
                }
            }
        }
    }
    if count > 0 || first {
        group_pass::<G, FMA>(task.input, &offsets[..count], &weights[..count], out, first);
    }
}

#[inline(always)]
fn madd<const FMA: bool>(acc: f32, w: f32, v: f32) -> f32 {
    if FMA { w.mul_add(v, acc) } else { acc + w * v }
}

/// One pass of the gathered rows over `G` output rows: `out = Σ` (`first`) or `out += Σ`.
#[inline(always)]
fn group_pass<const G: usize, const FMA: bool>(
    input: &[f32],
    offsets: &[usize],
    weights: &[[[f32; 3]; G]],
    out: &mut [f32],
    first: bool,
) {
    let nx = out.len() / G;
    // a single point with bounds checks: the ends, and every point of rows too short for a block. Unfused: a
    // closure is compiled without the caller's target features, where `mul_add` would be a libm call.
    let single = |x: usize, out: &mut [f32]| {
        let mut acc = [0.0f32; G];
        for (&offset, w) in offsets.iter().zip(weights) {
            let src = &input[offset..offset + nx];
            let (l, m, r) = (if x > 0 { src[x - 1] } else { 0.0 }, src[x], if x + 1 < nx { src[x + 1] } else { 0.0 });
            for g in 0..G {
                acc[g] += w[g][0] * l + w[g][1] * m + w[g][2] * r;
            }
        }
        for (g, v) in acc.into_iter().enumerate() {
            let o = &mut out[g * nx + x];
            *o = if first { v } else { *o + v };
        }
    };
    single(0, out);
    if nx > 1 {
        single(nx - 1, out);
    }
    // wide blocks while the row allows them: 8 · 8 accumulated values for 8 channels, 4 · 16 for 4, 2 · 32 for 2
    // and 1 · 32 for 1; then 8-point blocks; then single points
    let wide = if G >= 8 {
        8
    } else if G >= 4 {
        16
    } else {
        32
    };
    if nx >= wide + 2 {
        match wide {
            8 => blocks::<G, 8, FMA>(input, offsets, weights, out, first),
            16 => blocks::<G, 16, FMA>(input, offsets, weights, out, first),
            _ => blocks::<G, 32, FMA>(input, offsets, weights, out, first),
        }
    } else if nx >= 8 + 2 {
        blocks::<G, 8, FMA>(input, offsets, weights, out, first);
    } else {
        for x in 1..nx.saturating_sub(1) {
            single(x, out);
        }
    }
}

/// The interior points `1 … nx − 2` of `G` output rows in blocks of `B` (the last block ends at `nx − 2` and stores
/// only what the others left), each accumulated in registers over every gathered input row. Needs `nx ≥ B + 2`.
#[inline(always)]
fn blocks<const G: usize, const B: usize, const FMA: bool>(
    input: &[f32],
    offsets: &[usize],
    weights: &[[[f32; 3]; G]],
    out: &mut [f32],
    first: bool,
) {
    let nx = out.len() / G;
    let end = nx - 1;
    let mut done = 1;
    while done < end {
        let x0 = done.min(end - B);
        let mut block = [[0.0f32; B]; G];
        for (&offset, w) in offsets.iter().zip(weights) {
            let l: &[f32; B] = input[offset + x0 - 1..offset + x0 - 1 + B].try_into().expect("a block");
            let m: &[f32; B] = input[offset + x0..offset + x0 + B].try_into().expect("a block");
            let r: &[f32; B] = input[offset + x0 + 1..offset + x0 + 1 + B].try_into().expect("a block");
            for g in 0..G {
                for j in 0..B {
                    let a = madd::<FMA>(block[g][j], w[g][0], l[j]);
                    let a = madd::<FMA>(a, w[g][1], m[j]);
                    block[g][j] = madd::<FMA>(a, w[g][2], r[j]);
                }
            }
        }
        for (g, b) in block.iter().enumerate() {
            for (o, v) in out[g * nx + done..g * nx + x0 + B].iter_mut().zip(&b[done - x0..]) {
                *o = if first { *v } else { *o + v };
            }
        }
        done = x0 + B;
    }
}

/// [`spatial_row`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn spatial_row_avx2(task: &RowTask, out: &mut [f32]) {
    spatial_row::<true>(task, out)
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
    out.par_chunks_mut(nx).enumerate().with_min_len(rows_per_task(nx)).for_each(|(row, o)| {
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
    out.par_chunks_mut(mx).enumerate().with_min_len(rows_per_task(mx)).for_each(|(row, o)| {
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
    out.par_chunks_mut(nx).enumerate().with_min_len(rows_per_task(nx)).for_each(|(row, o)| {
        let (z, y) = (row / ny, row % ny);
        let src = &x[((z / fz) * my + y / 2) * mx..][..mx];
        for (xx, v) in o.iter_mut().enumerate() {
            *v = src[xx / 2] * scale;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible value in [−1, 1).
    fn noise(i: usize, seed: u64) -> f32 {
        let mut h = (i as u64 ^ seed.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 31;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 29;
        (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// The convolution or its adjoint summed directly in f64 (zero padding), fields row-interleaved
    /// (`[z][y][channel][x]`).
    fn direct(c: &ConvWeights, input: &[f32], shape: [usize; 3], transpose: bool) -> Vec<f64> {
        let [nz, ny, nx] = shape;
        let (ins, outs) = if transpose { (c.cout, c.cin) } else { (c.cin, c.cout) };
        let h = (c.kz / 2) as isize;
        let mut out = vec![0.0f64; outs * nz * ny * nx];
        for o in 0..outs {
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        let mut s = 0.0f64;
                        for i in 0..ins {
                            for dz in 0..c.kz {
                                for dy in 0..3 {
                                    for dx in 0..3 {
                                        let (d, e, f) = (dz as isize - h, dy as isize - 1, dx as isize - 1);
                                        let (sz, sy, sx) = if transpose {
                                            (z as isize - d, y as isize - e, x as isize - f)
                                        } else {
                                            (z as isize + d, y as isize + e, x as isize + f)
                                        };
                                        if sz < 0 || sy < 0 || sx < 0 {
                                            continue;
                                        }
                                        let (sz, sy, sx) = (sz as usize, sy as usize, sx as usize);
                                        if sz >= nz || sy >= ny || sx >= nx {
                                            continue;
                                        }
                                        let w = if transpose { c.at(i, o, dz, dy, dx) } else { c.at(o, i, dz, dy, dx) };
                                        s += w as f64 * input[((sz * ny + sy) * ins + i) * nx + sx] as f64;
                                    }
                                }
                            }
                        }
                        out[((z * ny + y) * outs + o) * nx + x] = s;
                    }
                }
            }
        }
        out
    }

    /// Both row kernels (the portable one, and the AVX2 + FMA one where this CPU has it) against the direct sum, on
    /// rows too short for a block, fitting blocks of 8 or 16 exactly or not, forward and adjoint, in 2D and 3D.
    #[test]
    fn row_kernels_match_the_direct_convolution() {
        let kernels = if simd_available() { vec![false, true] } else { vec![false] };
        for (shape, kz, cin, cout) in [
            ([1, 5, 1], 1, 2, 3),
            ([1, 4, 2], 1, 3, 2),
            ([1, 6, 17], 1, 2, 4),
            ([1, 3, 18], 1, 1, 1),
            ([1, 5, 41], 1, 4, 3),
            ([3, 4, 35], 3, 2, 2),
            ([2, 3, 16], 3, 3, 1),
            // more input rows (12 · 3 · 3 = 108) than one pass gathers
            ([3, 3, 20], 3, 12, 2),
            // output channels in groups of 8, 4, 2 and 1
            ([1, 4, 12], 1, 3, 15),
            ([2, 3, 9], 3, 2, 11),
        ] {
            let c = ConvWeights { cout, cin, kz, w: (0..cout * cin * kz * 9).map(|i| noise(i, 7)).collect() };
            for transpose in [false, true] {
                let (ins, outs) = if transpose { (cout, cin) } else { (cin, cout) };
                let input: Vec<f32> = (0..ins * cells(shape)).map(|i| noise(i, 3)).collect();
                let want = direct(&c, &input, shape, transpose);
                let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
                for &simd in &kernels {
                    let mut got = vec![f32::NAN; outs * cells(shape)];
                    conv_with(&c, &input, &mut got, shape, transpose, simd);
                    let err = got.iter().zip(&want).fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
                    assert!(err <= 1e-6 * scale, "{shape:?} transpose {transpose} simd {simd}: {err:e} of {scale}");
                }
            }
        }
    }
}
