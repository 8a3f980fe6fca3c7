//! The kernel IC(0) and SSOR share: `z = L⁻ᵀ Δ L⁻¹ r` for a unit lower-triangular `L` and a diagonal `Δ`.
//!
//! Both preconditioners are of this form once their diagonals are split off (IC(0): `L = L̂ diag(L̂)⁻¹`,
//! `Δ = diag(L̂)⁻²`; SSOR(ω): `L = I + ω E D⁻¹` for the strictly lower part `E` of `A`, `Δ = (2 − ω) D⁻¹`), so
//! each sweep's recurrence is a single fused multiply-add chain per row, with no division, and the diagonal is
//! read once per application. The strictly triangular part is stored once, as the rows of `Lᵀ` (32-bit column
//! indices and row pointers): the backward sweep gathers along them (`z_i = … − Σ_j c_ij z_j`) and the forward
//! sweep scatters along them (column `i` of `L`), copying `r` into `z` a fixed distance ahead of the row it
//! finalises. In both sweeps the term of the neighbouring row is carried in a register instead of stored and
//! reloaded. Each unknown's terms are subtracted from the farthest row to the nearest (increasing columns
//! forward, decreasing backward): the result depends on nothing but the inputs.
//!
//! The sweeps are sequential on every thread count. Level scheduling (rows grouped by their depth in the
//! dependency graph, one barrier per level) was measured slower on the 512² and 64³ Poisson factors than this
//! sequential sweep even on two threads, with the rows in natural order and with the factor and vectors permuted
//! into level order (docs/benchmarks.md, "Krylov kernels"): a level's rows are far apart in memory.

use crate::ConfigError;

/// The strictly upper part `Lᵀ − I` of a unit triangular pair, by rows, and the middle diagonal.
#[derive(Clone, Debug)]
pub(crate) struct Sweeps {
    upper: Part,
    delta: Vec<f64>,
    /// The largest `i − j` over the entries `(i, j)` of `L`: how far ahead of row `j` the forward sweep scatters.
    reach: usize,
}

/// Rows of a strictly triangular matrix (32-bit row pointers as well: the sweeps are bound by memory traffic).
#[derive(Clone, Debug, Default)]
struct Part {
    ptr: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<f64>,
}

impl Sweeps {
    /// From the entries of the strictly lower part of the unit lower factor (`(row, col, value)`, `col < row`,
    /// sorted by row, then column) and the middle diagonal `delta`. Fails when the lower part has
    /// more than 2³² entries.
    pub(crate) fn new(n: usize, lower_rows: &[(u32, u32, f64)], delta: Vec<f64>) -> Result<Self, ConfigError> {
        debug_assert_eq!(delta.len(), n);
        if lower_rows.len() > u32::MAX as usize {
            return Err(ConfigError::Shape {
                what: "triangular factor entries (32-bit row pointers)",
                expected: vec![u32::MAX as usize],
                got: vec![lower_rows.len()],
            });
        }
        let mut count = vec![0u32; n + 1];
        let mut reach = 0;
        for &(r, c, _) in lower_rows {
            debug_assert!(c < r);
            count[c as usize + 1] += 1;
            reach = reach.max((r - c) as usize);
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        // the transpose by a counting sort: row c of the upper part lists the rows r > c in increasing order
        // (the input is sorted by row)
        let m = lower_rows.len();
        let mut upper = Part { ptr: count.clone(), idx: vec![0; m], val: vec![0.0; m] };
        for &(r, c, v) in lower_rows {
            let slot = &mut count[c as usize];
            upper.idx[*slot as usize] = r;
            upper.val[*slot as usize] = v;
            *slot += 1;
        }
        Ok(Self { upper, delta, reach })
    }

    /// `z = L⁻ᵀ Δ L⁻¹ r` (`z` may hold anything on entry).
    pub(crate) fn apply(&self, r: &[f64], z: &mut [f64]) {
        self.sweep::<false>(r, z);
    }

    /// [`Self::apply`], returning `r · z` summed during the backward sweep (four running sums by row index
    /// mod 4, rows from the last, then `(s₀ + s₁) + (s₂ + s₃)`).
    pub(crate) fn apply_dot(&self, r: &[f64], z: &mut [f64]) -> f64 {
        self.sweep::<true>(r, z)
    }

    #[inline(always)]
    fn sweep<const DOT: bool>(&self, r: &[f64], z: &mut [f64]) -> f64 {
        let n = self.delta.len();
        let (r, z) = (&r[..n], &mut z[..n]);
        let (up, ui, uv) = (&self.upper.ptr[..n + 1], &self.upper.idx, &self.upper.val);
        // L w = r, rows in order, by columns of L: once w_i is final, w_j −= l_ji w_i for the rows j > i that
        // hold column i. Every scatter of row i lands at most `reach` rows ahead, so r is copied into z that far
        // ahead of row i. Each w_j then takes its terms in increasing column order; the term of row j − 1 (when
        // present) comes last and from a register, so that the recurrence from one row to the next is one
        // multiply-subtract instead of a store and a reload, which is what bounds a sequential sweep.
        // The copy runs in groups of LEAD entries, so that its stores stay clear of the sweep's loads (a store
        // exactly 4 KiB ahead of a load, as the 64³ stencil's 4096 entries = 32 KiB would be, aliases it in the
        // load/store queue).
        const LEAD: usize = 64;
        let h = self.reach;
        let mut copied = 0;
        let mut prev = 0.0;
        let mut carry = None;
        for i in 0..n {
            if copied <= i + h {
                let end = (copied + LEAD).max(i + h + 1).min(n);
                z[copied..end].copy_from_slice(&r[copied..end]);
                copied = end;
            }
            let mut v = z[i];
            if let Some(c) = carry {
                v -= c * prev;
            }
            z[i] = v;
            prev = v;
            let (s, e) = (up[i] as usize, up[i + 1] as usize);
            let (vals, cols) = (&uv[s..e], &ui[s..e]);
            match cols.split_first() {
                Some((&first, rest)) if first as usize == i + 1 => {
                    carry = Some(vals[0]);
                    for (c, &j) in vals[1..].iter().zip(rest) {
                        z[j as usize] -= c * v;
                    }
                }
                _ => {
                    carry = None;
                    for (c, &j) in vals.iter().zip(cols) {
                        z[j as usize] -= c * v;
                    }
                }
            }
        }
        // Lᵀ z = Δ w, rows from the last, gathering along the rows of Lᵀ; each row's terms in decreasing column
        // order, the term of row i + 1 last (from a register, as above)
        let delta = &self.delta[..n];
        let mut acc = [0.0; 4];
        for i in (0..n).rev() {
            let (s, e) = (up[i] as usize, up[i + 1] as usize);
            let (vals, cols) = (&uv[s..e], &ui[s..e]);
            let mut v = delta[i] * z[i];
            match cols.split_first() {
                Some((&first, rest)) if first as usize == i + 1 => {
                    for (c, &j) in vals[1..].iter().zip(rest).rev() {
                        v -= c * z[j as usize];
                    }
                    v -= vals[0] * prev;
                }
                _ => {
                    for (c, &j) in vals.iter().zip(cols).rev() {
                        v -= c * z[j as usize];
                    }
                }
            }
            z[i] = v;
            prev = v;
            if DOT {
                acc[i & 3] += r[i] * v;
            }
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeps_invert_the_factors() {
        // L = I + strictly lower entries, Δ diagonal: check L Δ⁻¹ Lᵀ z = r against dense products
        let n = 6;
        let entries = [(1u32, 0u32, 0.5), (2, 0, -0.25), (3, 2, 0.3), (4, 1, -0.7), (4, 3, 0.1), (5, 4, 0.2)];
        let delta: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + i as f64)).collect();
        let s = Sweeps::new(n, &entries, delta.clone()).unwrap();
        let r: Vec<f64> = (0..n).map(|i| (i as f64 * 0.9).sin() + 0.3).collect();
        let mut z = vec![f64::NAN; n];
        let rz = s.apply_dot(&r, &mut z);
        let mut z2 = vec![0.0; n];
        s.apply(&r, &mut z2);
        assert_eq!(z, z2);
        let direct: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
        assert!((rz - direct).abs() < 1e-14 * direct.abs());
        let mut l = vec![0.0; n * n];
        for i in 0..n {
            l[i * n + i] = 1.0;
        }
        for &(i, j, v) in &entries {
            l[i as usize * n + j as usize] = v;
        }
        // y = Lᵀ z, y ← Δ⁻¹ y, back = L y
        let y: Vec<f64> = (0..n).map(|i| (0..n).map(|k| l[k * n + i] * z[k]).sum::<f64>() / delta[i]).collect();
        for i in 0..n {
            let back: f64 = (0..n).map(|k| l[i * n + k] * y[k]).sum();
            assert!((back - r[i]).abs() < 1e-13, "row {i}: {back} vs {}", r[i]);
        }
    }

    /// The forward sweep by gathers along the rows of `L`, in the order the scatters must reproduce: each row's
    /// terms by increasing column.
    fn forward_by_rows(n: usize, entries: &[(u32, u32, f64)], r: &[f64]) -> Vec<f64> {
        let mut w = r.to_vec();
        for i in 0..n {
            let mut v = r[i];
            for &(_, j, c) in entries.iter().filter(|e| e.0 as usize == i) {
                v -= c * w[j as usize];
            }
            w[i] = v;
        }
        w
    }

    #[test]
    fn scattering_by_columns_gives_the_bits_of_gathering_by_rows() {
        // a banded pattern with gaps, rows without entries, a far entry and neighbours both present and absent
        let n = 40;
        let mut entries = Vec::new();
        for i in 0..n as u32 {
            for (off, scale) in [(17u32, 0.11), (6, -0.23), (5, 0.07), (1, 0.31)] {
                if i >= off && (i * 7 + off) % 5 != 0 {
                    entries.push((i, i - off, scale * (1.0 + (i as f64 * 0.37).sin())));
                }
            }
        }
        entries.sort_by_key(|e| (e.0, e.1));
        let delta: Vec<f64> = (0..n).map(|i| 0.5 + (i as f64 * 0.13).cos().abs()).collect();
        let s = Sweeps::new(n, &entries, delta.clone()).unwrap();
        assert_eq!(s.reach, 17);
        let r: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).sin() - 0.2).collect();
        let w = forward_by_rows(n, &entries, &r);
        // the backward sweep by gathers along the rows of Lᵀ, terms by decreasing column
        let mut z = vec![0.0; n];
        for i in (0..n).rev() {
            let mut v = delta[i] * w[i];
            let mut terms: Vec<_> = entries.iter().filter(|e| e.1 as usize == i).collect();
            terms.sort_by_key(|e| std::cmp::Reverse(e.0));
            for &&(k, _, c) in &terms {
                v -= c * z[k as usize];
            }
            z[i] = v;
        }
        let mut got = vec![f64::NAN; n];
        s.apply(&r, &mut got);
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            z.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
