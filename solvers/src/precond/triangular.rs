//! The kernel IC(0) and SSOR share: `z = L⁻ᵀ Δ L⁻¹ r` for a unit lower-triangular `L` and a diagonal `Δ`.
//!
//! Both preconditioners are of this form once their diagonals are split off (IC(0): `L = L̂ diag(L̂)⁻¹`,
//! `Δ = diag(L̂)⁻²`; SSOR(ω): `L = I + ω E D⁻¹` for the strictly lower part `E` of `A`, `Δ = (2 − ω) D⁻¹`), so
//! each sweep's recurrence is a single fused multiply-add chain per row, with no division, and the diagonal is
//! read once per application. The strictly lower part is stored twice, by rows and by columns, so that both
//! sweeps gather (`z_i = … − Σ_j c_ij z_j`) instead of scattering into `z`; column indices are 32-bit. The
//! sums run over each row's entries from the farthest column to the nearest (increasing columns forward,
//! decreasing backward): the result does not depend on anything but the inputs.
//!
//! The sweeps are sequential on every thread count. Level scheduling (rows grouped by their depth in the
//! dependency graph, one barrier per level) was measured slower on the 512² and 64³ Poisson factors than this
//! sequential sweep even on two threads, with the rows in natural order and with the factor and vectors permuted
//! into level order (docs/benchmarks.md, "Krylov kernels"): a level's rows are far apart in memory.

use crate::ConfigError;

/// Strictly lower and strictly upper parts of a unit triangular pair, and the middle diagonal.
#[derive(Clone, Debug)]
pub(crate) struct Sweeps {
    lower: Part,
    upper: Part,
    delta: Vec<f64>,
}

/// Rows of a strictly triangular matrix (32-bit row pointers as well: the sweeps are bound by memory traffic).
#[derive(Clone, Debug, Default)]
struct Part {
    ptr: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<f64>,
}

impl Sweeps {
    /// From the rows of the strictly lower part of the unit lower factor (`(row, col, value)`, sorted by row
    /// then column, `col < row`) and the middle diagonal `delta`. Fails when the lower part has more than 2³²
    /// entries.
    pub(crate) fn new(n: usize, lower_rows: &[(u32, u32, f64)], delta: Vec<f64>) -> Result<Self, ConfigError> {
        debug_assert_eq!(delta.len(), n);
        if lower_rows.len() > u32::MAX as usize {
            return Err(ConfigError::Shape {
                what: "triangular factor entries (32-bit row pointers)",
                expected: vec![u32::MAX as usize],
                got: vec![lower_rows.len()],
            });
        }
        let mut lower = Part {
            ptr: vec![0; n + 1],
            idx: Vec::with_capacity(lower_rows.len()),
            val: Vec::with_capacity(lower_rows.len()),
        };
        let mut upper_count = vec![0u32; n + 1];
        for &(r, c, v) in lower_rows {
            lower.ptr[r as usize + 1] += 1;
            lower.idx.push(c);
            lower.val.push(v);
            upper_count[c as usize + 1] += 1;
        }
        for i in 0..n {
            lower.ptr[i + 1] += lower.ptr[i];
            upper_count[i + 1] += upper_count[i];
        }
        // the transpose by a counting sort: row c of the upper part lists the rows r > c in increasing order
        let m = lower_rows.len();
        let mut upper = Part { ptr: upper_count.clone(), idx: vec![0; m], val: vec![0.0; m] };
        for &(r, c, v) in lower_rows {
            let slot = &mut upper_count[c as usize];
            upper.idx[*slot as usize] = r;
            upper.val[*slot as usize] = v;
            *slot += 1;
        }
        Ok(Self { lower, upper, delta })
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
        // L w = r, rows in order. Each row's terms in increasing column order, so the term of row i − 1 (when
        // present) comes last and is taken from a register: the recurrence from one row to the next is then one
        // multiply-subtract instead of a store and a reload, which is what bounds a sequential sweep.
        let (lp, li, lv) = (&self.lower.ptr[..n + 1], &self.lower.idx, &self.lower.val);
        let mut prev = 0.0;
        for i in 0..n {
            let (s, e) = (lp[i] as usize, lp[i + 1] as usize);
            let (vals, cols) = (&lv[s..e], &li[s..e]);
            let mut v = r[i];
            match cols.split_last() {
                Some((&last, rest)) if last as usize + 1 == i => {
                    for (c, &j) in vals.iter().zip(rest) {
                        v -= c * z[j as usize];
                    }
                    v -= vals[rest.len()] * prev;
                }
                _ => {
                    for (c, &j) in vals.iter().zip(cols) {
                        v -= c * z[j as usize];
                    }
                }
            }
            z[i] = v;
            prev = v;
        }
        // Lᵀ z = Δ w, rows from the last; each row's terms in decreasing column order, the term of row i + 1
        // last (from a register, as above)
        let (up, ui, uv) = (&self.upper.ptr[..n + 1], &self.upper.idx, &self.upper.val);
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
}
