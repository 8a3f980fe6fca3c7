//! Compressed sparse row matrices.

use rayon::prelude::*;

use super::LinearOperator;
use crate::ConfigError;

/// A sparse matrix in compressed sparse row form with sorted, unique column indices per row. Column indices
/// are 32-bit (as PETSc's default build and most sparse libraries store them): SpMV is bound by memory
/// traffic, and the indices are a third of it. Row pointers stay `usize`, so the number of entries is not
/// bounded by 2³²; the number of columns is.
#[derive(Clone, Debug, PartialEq)]
pub struct CsrMatrix {
    nrows: usize,
    ncols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f64>,
    /// The largest `c − r` over the stored entries `(r, c)` with `c > r` (0 for none): how far ahead of row `r`
    /// a product reads `x`.
    reach: usize,
}

/// Largest number of columns a [`CsrMatrix`] can index.
pub const MAX_COLUMNS: usize = u32::MAX as usize;

/// Rows per parallel task in SpMV.
const ROW_CHUNK: usize = 4096;

impl CsrMatrix {
    /// Builds a matrix from `(row, col, value)` triplets; duplicates are summed.
    pub fn from_triplets(nrows: usize, ncols: usize, triplets: &[(usize, usize, f64)]) -> Result<Self, ConfigError> {
        if ncols > MAX_COLUMNS {
            return Err(ConfigError::Shape {
                what: "matrix columns (32-bit indices)",
                expected: vec![MAX_COLUMNS],
                got: vec![ncols],
            });
        }
        let mut counts = vec![0usize; nrows + 1];
        for &(r, c, _) in triplets {
            if r >= nrows || c >= ncols {
                return Err(ConfigError::Shape {
                    what: "triplet index",
                    expected: vec![nrows, ncols],
                    got: vec![r, c],
                });
            }
            counts[r + 1] += 1;
        }
        for i in 0..nrows {
            counts[i + 1] += counts[i];
        }
        let mut cols = vec![0u32; triplets.len()];
        let mut vals = vec![0.0; triplets.len()];
        let mut fill = counts.clone();
        for &(r, c, v) in triplets {
            cols[fill[r]] = c as u32;
            vals[fill[r]] = v;
            fill[r] += 1;
        }
        // sort each row by column and merge duplicates
        let mut indptr = vec![0usize; nrows + 1];
        let mut indices = Vec::with_capacity(triplets.len());
        let mut values = Vec::with_capacity(triplets.len());
        let mut row: Vec<(u32, f64)> = Vec::new();
        for r in 0..nrows {
            row.clear();
            row.extend((counts[r]..counts[r + 1]).map(|k| (cols[k], vals[k])));
            push_row(&mut row, &mut indices, &mut values);
            indptr[r + 1] = indices.len();
        }
        Ok(Self::from_parts(nrows, ncols, indptr, indices, values))
    }

    fn from_parts(nrows: usize, ncols: usize, indptr: Vec<usize>, indices: Vec<u32>, values: Vec<f64>) -> Self {
        // every entry: the rows of an unsorted product are not in column order
        let reach = (0..nrows)
            .flat_map(|r| indices[indptr[r]..indptr[r + 1]].iter().map(move |&c| (c as usize).saturating_sub(r)))
            .max()
            .unwrap_or(0);
        Self { nrows, ncols, indptr, indices, values, reach }
    }

    /// Rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Row pointers, column indices and values.
    pub fn parts(&self) -> (&[usize], &[u32], &[f64]) {
        (&self.indptr, &self.indices, &self.values)
    }

    /// The diagonal (zero where no entry is stored).
    pub fn diagonal(&self) -> Vec<f64> {
        (0..self.nrows.min(self.ncols)).map(|r| self.get(r, r)).collect()
    }

    /// Entry `(r, c)` (zero if not stored).
    pub fn get(&self, r: usize, c: usize) -> f64 {
        let (s, e) = (self.indptr[r], self.indptr[r + 1]);
        let Ok(c) = u32::try_from(c) else { return 0.0 };
        match self.indices[s..e].binary_search(&c) {
            Ok(k) => self.values[s + k],
            Err(_) => 0.0,
        }
    }

    /// The transpose (a counting sort by column: rows come out sorted, no comparison sort).
    pub fn transpose(&self) -> Self {
        assert!(self.nrows <= MAX_COLUMNS, "the transpose of a matrix with more than 2³² rows has too many columns");
        let mut indptr = vec![0usize; self.ncols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        for c in 0..self.ncols {
            indptr[c + 1] += indptr[c];
        }
        let mut fill = indptr[..self.ncols].to_vec();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0.0; self.nnz()];
        for r in 0..self.nrows {
            for k in self.indptr[r]..self.indptr[r + 1] {
                let c = self.indices[k] as usize;
                indices[fill[c]] = r as u32;
                values[fill[c]] = self.values[k];
                fill[c] += 1;
            }
        }
        Self::from_parts(self.ncols, self.nrows, indptr, indices, values)
    }

    /// Largest `|A − Aᵀ|` entry.
    pub fn asymmetry(&self) -> f64 {
        let t = self.transpose();
        let mut m: f64 = 0.0;
        for r in 0..self.nrows {
            for k in self.indptr[r]..self.indptr[r + 1] {
                m = m.max((self.values[k] - t.get(r, self.indices[k] as usize)).abs());
            }
        }
        m
    }

    /// `y = A x`, rows in parallel for large matrices.
    pub fn matvec(&self, x: &[f64], y: &mut [f64]) {
        let row = |r: usize| self.row_dot(r, x);
        if self.nrows < 2 * ROW_CHUNK {
            for (r, yr) in y.iter_mut().enumerate() {
                *yr = row(r);
            }
        } else {
            y.par_chunks_mut(ROW_CHUNK).enumerate().for_each(|(c, ys)| {
                for (i, yr) in ys.iter_mut().enumerate() {
                    *yr = row(c * ROW_CHUNK + i);
                }
            });
        }
    }

    /// Row `r` of `A x`, its terms summed in storage order. Rows of the lengths of the common stencils (5 and 7
    /// points, 9 in 2D with corners) take an unrolled path: the same sum without the loop's counter and exit
    /// branch.
    #[inline(always)]
    fn row_dot(&self, r: usize, x: &[f64]) -> f64 {
        let (s, e) = (self.indptr[r], self.indptr[r + 1]);
        let (vals, cols) = (&self.values[s..e], &self.indices[s..e]);
        match vals.len() {
            5 => fixed_row::<5>(vals, cols, x),
            7 => fixed_row::<7>(vals, cols, x),
            9 => fixed_row::<9>(vals, cols, x),
            _ => {
                let mut sum = 0.0;
                for (v, &c) in vals.iter().zip(cols) {
                    sum += v * x[c as usize];
                }
                sum
            }
        }
    }

    /// The product `self · other` (sparse × sparse, Gustavson's row-by-row algorithm).
    pub fn matmul(&self, other: &CsrMatrix) -> Result<CsrMatrix, ConfigError> {
        self.product(other, true)
    }

    /// [`Self::matmul`]; with `sorted = false` each row's columns stay in the order they were first reached,
    /// which is enough for a matrix that is only ever the right factor of another product or a matrix-vector
    /// product (sorting is a third of the product's cost). Such a matrix must not leave the crate.
    pub(crate) fn product(&self, other: &CsrMatrix, sorted: bool) -> Result<CsrMatrix, ConfigError> {
        if self.ncols != other.nrows {
            return Err(ConfigError::Shape {
                what: "matrix product",
                expected: vec![self.ncols],
                got: vec![other.nrows],
            });
        }
        // rows in parallel blocks on large products: each row is computed the same way wherever it runs, so the
        // result does not depend on the number of threads
        let threads = rayon::current_num_threads();
        if threads == 1 || self.nrows < 4 * ROW_CHUNK {
            let (lens, indices, values) = self.product_rows(other, 0..self.nrows, sorted);
            return Ok(self.assembled(other.ncols, vec![(lens, indices, values)]));
        }
        let blocks = (2 * threads).min(self.nrows / ROW_CHUNK);
        let size = self.nrows.div_ceil(blocks);
        let parts: Vec<_> = (0..blocks)
            .into_par_iter()
            .map(|b| self.product_rows(other, b * size..((b + 1) * size).min(self.nrows), sorted))
            .collect();
        Ok(self.assembled(other.ncols, parts))
    }

    /// Rows `rows` of `self · other`: their lengths, columns and values.
    fn product_rows(
        &self,
        other: &CsrMatrix,
        rows: std::ops::Range<usize>,
        sorted: bool,
    ) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
        // room for every product term (an upper bound on the result's entries, capped by the dense size):
        // reserved, not touched, so the result grows without copies
        let terms: usize = self.indices[self.indptr[rows.start]..self.indptr[rows.end]]
            .iter()
            .map(|&c| other.indptr[c as usize + 1] - other.indptr[c as usize])
            .sum();
        let bound = terms.min(rows.len().saturating_mul(other.ncols));
        let mut lens = Vec::with_capacity(rows.len());
        let mut indices: Vec<u32> = Vec::with_capacity(bound);
        let mut values = Vec::with_capacity(bound);
        // dense accumulator, each slot with the last row that touched it (one cache line for both)
        let mut acc = vec![(usize::MAX, 0.0f64); other.ncols];
        for r in rows {
            let start = indices.len();
            let (s, e) = (self.indptr[r], self.indptr[r + 1]);
            for (&c, &v) in self.indices[s..e].iter().zip(&self.values[s..e]) {
                let (os, oe) = (other.indptr[c as usize], other.indptr[c as usize + 1]);
                for (&j, &w) in other.indices[os..oe].iter().zip(&other.values[os..oe]) {
                    let slot = &mut acc[j as usize];
                    if slot.0 != r {
                        *slot = (r, v * w);
                        indices.push(j);
                    } else {
                        slot.1 += v * w;
                    }
                }
            }
            if sorted {
                indices[start..].sort_unstable();
            }
            values.extend(indices[start..].iter().map(|&j| acc[j as usize].1));
            lens.push(indices.len() - start);
        }
        (lens, indices, values)
    }

    /// The product from its row blocks, in order (a single block is moved, not copied).
    fn assembled(&self, ncols: usize, mut parts: Vec<(Vec<usize>, Vec<u32>, Vec<f64>)>) -> CsrMatrix {
        let mut indptr = Vec::with_capacity(self.nrows + 1);
        indptr.push(0);
        for (lens, _, _) in &parts {
            for l in lens {
                indptr.push(indptr.last().expect("starts with 0") + l);
            }
        }
        let nnz = *indptr.last().expect("starts with 0");
        let (indices, values) = if parts.len() == 1 {
            let (_, mut i, mut v) = parts.pop().expect("one block");
            i.shrink_to_fit();
            v.shrink_to_fit();
            (i, v)
        } else {
            let mut indices = Vec::with_capacity(nnz);
            let mut values = Vec::with_capacity(nnz);
            for (_, i, v) in &parts {
                indices.extend_from_slice(i);
                values.extend_from_slice(v);
            }
            (indices, values)
        };
        CsrMatrix::from_parts(self.nrows, ncols, indptr, indices, values)
    }

    /// A matrix from its rows, each given as `(column, value)` pairs that are sorted and unique (checked in
    /// debug builds).
    pub(crate) fn from_sorted_rows(
        nrows: usize,
        ncols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f64>,
    ) -> Self {
        debug_assert_eq!(indptr.len(), nrows + 1);
        debug_assert!(ncols <= MAX_COLUMNS && indices.len() == values.len());
        debug_assert!((0..nrows).all(|r| indices[indptr[r]..indptr[r + 1]].windows(2).all(|w| w[0] < w[1])));
        debug_assert!(indices.iter().all(|&c| (c as usize) < ncols));
        Self::from_parts(nrows, ncols, indptr, indices, values)
    }

    /// `c · self + diag(d)` for a square matrix with every diagonal entry stored.
    pub fn scale_add_diagonal(&self, c: f64, d: &[f64]) -> Result<CsrMatrix, ConfigError> {
        if self.nrows != self.ncols || d.len() != self.nrows {
            return Err(ConfigError::Shape { what: "diagonal", expected: vec![self.nrows], got: vec![d.len()] });
        }
        let mut out = self.clone();
        for v in &mut out.values {
            *v *= c;
        }
        for (r, dr) in d.iter().enumerate() {
            let (s, e) = (out.indptr[r], out.indptr[r + 1]);
            match out.indices[s..e].binary_search(&(r as u32)) {
                Ok(k) => out.values[s + k] += dr,
                Err(_) => {
                    return Err(ConfigError::Shape { what: "stored diagonal entry", expected: vec![r], got: vec![] });
                }
            }
        }
        Ok(out)
    }

    /// Dense copy (row-major), for tests and small systems.
    pub fn to_dense(&self) -> Vec<f64> {
        let mut d = vec![0.0; self.nrows * self.ncols];
        for r in 0..self.nrows {
            for k in self.indptr[r]..self.indptr[r + 1] {
                d[r * self.ncols + self.indices[k] as usize] = self.values[k];
            }
        }
        d
    }

    /// The same matrix as a faer sparse column matrix (for direct factorisations).
    pub fn to_faer(&self) -> faer::sparse::SparseColMat<usize, f64> {
        let trip: Vec<faer::sparse::Triplet<usize, usize, f64>> = (0..self.nrows)
            .flat_map(|r| (self.indptr[r]..self.indptr[r + 1]).map(move |k| (r, k)))
            .map(|(r, k)| faer::sparse::Triplet::new(r, self.indices[k] as usize, self.values[k]))
            .collect();
        faer::sparse::SparseColMat::try_new_from_triplets(self.nrows, self.ncols, &trip).expect("valid triplets")
    }
}

/// `Σ_k vals[k] x[cols[k]]` for exactly `N` terms, in order (the loop is unrolled at compile time).
#[inline(always)]
fn fixed_row<const N: usize>(vals: &[f64], cols: &[u32], x: &[f64]) -> f64 {
    let (vals, cols): (&[f64; N], &[u32; N]) =
        (vals.try_into().expect("row length"), cols.try_into().expect("row length"));
    let mut sum = 0.0;
    for k in 0..N {
        sum += vals[k] * x[cols[k] as usize];
    }
    sum
}

/// Appends one row given as unsorted `(column, value)` pairs: sorted by column, duplicates summed.
pub(crate) fn push_row(row: &mut [(u32, f64)], indices: &mut Vec<u32>, values: &mut Vec<f64>) {
    row.sort_unstable_by_key(|e| e.0);
    let start = indices.len();
    for &(c, v) in row.iter() {
        match values.last_mut() {
            Some(last) if indices.len() > start && indices.last() == Some(&c) => *last += v,
            _ => {
                indices.push(c);
                values.push(v);
            }
        }
    }
}

impl LinearOperator for CsrMatrix {
    fn nrows(&self) -> usize {
        self.nrows
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        self.matvec(x, y)
    }
    /// One pass: each row's product and its term of `x · y`. Small matrices sum in [`super::dot`]'s order;
    /// large ones per block of rows in that order, the blocks then in sequence, whatever the thread count (the
    /// block sums take one small allocation, n / 4096 values, per product).
    fn apply_dot(&self, x: &[f64], y: &mut [f64]) -> f64 {
        let row = |r: usize| self.row_dot(r, x);
        let block = |first: usize, ys: &mut [f64]| -> f64 {
            let n = ys.len();
            let mut acc = super::Dot4::default();
            for (i, yr) in ys.iter_mut().enumerate() {
                let v = row(first + i);
                *yr = v;
                acc.add(i, n, x[first + i] * v);
            }
            acc.sum()
        };
        if self.nrows < 2 * ROW_CHUNK {
            block(0, &mut y[..self.nrows])
        } else {
            let parts: Vec<f64> =
                y.par_chunks_mut(ROW_CHUNK).enumerate().map(|(c, ys)| block(c * ROW_CHUNK, ys)).collect();
            parts.iter().sum()
        }
    }
    /// On one thread (or a matrix small enough to take one block) a single pass: `p_j` is updated `reach`
    /// rows ahead of the product's row, just before the first row that reads it. The same operations in the
    /// same order as the two passes, so the same bits; on more threads, the two passes.
    fn update_apply_dot(&self, p: &mut [f64], z: &[f64], beta: f64, y: &mut [f64]) -> f64 {
        let n = self.nrows;
        let serial = n < 2 * ROW_CHUNK || rayon::current_num_threads() == 1;
        if n != self.ncols || !serial || p.len() != n || z.len() != n || y.len() != n {
            super::cg_direction(p, z, beta);
            return self.apply_dot(p, y);
        }
        // p[..done] is updated; row i needs p[..=i + reach]. The update runs in groups of LEAD entries, so that
        // it vectorises and its stores stay clear of the product's loads (a store exactly 4 KiB ahead of a load
        // would alias it in the load/store queue: the 64³ stencil reaches 4096 entries = 32 KiB ahead)
        const LEAD: usize = 64;
        let h = self.reach;
        let mut done = 0;
        let advance = |p: &mut [f64], done: &mut usize, need: usize| {
            while *done < need {
                let end = (*done + LEAD).min(n);
                for (pj, zj) in p[*done..end].iter_mut().zip(&z[*done..end]) {
                    *pj = zj + beta * *pj;
                }
                *done = end;
            }
        };
        let chunk = if n < 2 * ROW_CHUNK { n } else { ROW_CHUNK };
        // the block sums in order, as `Iterator::sum` adds them in `apply_dot`
        let mut total = -0.0;
        for first in (0..n).step_by(chunk) {
            let len = chunk.min(n - first);
            let mut acc = super::Dot4::default();
            for i in first..first + len {
                if done <= i + h {
                    advance(p, &mut done, (i + h + 1).min(n));
                }
                let v = self.row_dot(i, p);
                y[i] = v;
                acc.add(i - first, len, p[i] * v);
            }
            if chunk == n {
                return acc.sum();
            }
            total += acc.sum();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl CsrMatrix {
        /// Rows `rows` as dense rows (column order of storage does not matter).
        fn to_dense_rows(&self, rows: std::ops::Range<usize>) -> Vec<f64> {
            let mut d = vec![0.0; rows.len() * self.ncols];
            for (k, r) in rows.enumerate() {
                for q in self.indptr[r]..self.indptr[r + 1] {
                    d[k * self.ncols + self.indices[q] as usize] = self.values[q];
                }
            }
            d
        }
    }

    /// The 1D Laplacian with a varying diagonal, `n` rows.
    fn tridiagonal(n: usize) -> CsrMatrix {
        let mut t = vec![];
        for i in 0..n {
            t.push((i, i, 2.0 + (i % 5) as f64 * 0.1));
            if i > 0 {
                t.push((i, i - 1, -1.0));
            }
            if i + 1 < n {
                t.push((i, i + 1, -1.0));
            }
        }
        CsrMatrix::from_triplets(n, n, &t).unwrap()
    }

    #[test]
    fn the_direction_update_fused_into_the_product_gives_the_bits_of_two_passes() {
        // a band with a far off-diagonal (reach 300 < n), so the update runs well ahead of the product's row
        for n in [37, 2 * ROW_CHUNK + 5] {
            let far = 300.min(n - 1);
            let mut t = vec![];
            for i in 0..n {
                t.push((i, i, 4.0 + (i % 3) as f64 * 0.1));
                for off in [1, far] {
                    if i >= off {
                        t.push((i, i - off, -1.0 + 0.01 * (i % 7) as f64));
                        t.push((i - off, i, -1.0 + 0.01 * (i % 7) as f64));
                    }
                }
            }
            let a = CsrMatrix::from_triplets(n, n, &t).unwrap();
            assert_eq!(a.reach, far);
            let z: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos()).collect();
            let p0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).sin()).collect();
            let beta = 0.83;
            let mut p2 = p0.clone();
            crate::linalg::cg_direction(&mut p2, &z, beta);
            let mut y2 = vec![0.0; n];
            let d2 = a.apply_dot(&p2, &mut y2);
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let (mut p, mut y) = (p0.clone(), vec![f64::NAN; n]);
                let d = pool.install(|| a.update_apply_dot(&mut p, &z, beta, &mut y));
                assert_eq!(p, p2, "n = {n}, {threads} threads");
                assert_eq!(y, y2, "n = {n}, {threads} threads");
                assert_eq!(d.to_bits(), d2.to_bits(), "n = {n}, {threads} threads");
            }
        }
    }

    #[test]
    fn the_fused_product_and_dot_match_the_separate_passes_on_any_thread_count() {
        for n in [7, 2 * ROW_CHUNK + 5] {
            let a = tridiagonal(n);
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos()).collect();
            let (mut y, mut y2) = (vec![0.0; n], vec![0.0; n]);
            a.matvec(&x, &mut y2);
            let d2 = crate::linalg::dot(&x, &y2);
            let d = a.apply_dot(&x, &mut y);
            assert_eq!(y, y2, "n = {n}");
            if n < 2 * ROW_CHUNK {
                assert_eq!(d.to_bits(), d2.to_bits(), "small systems keep dot's order");
            } else {
                assert!((d - d2).abs() <= 1e-12 * d2.abs(), "n = {n}: {d} vs {d2}");
            }
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let dt = pool.install(|| a.apply_dot(&x, &mut y));
                assert_eq!(dt.to_bits(), d.to_bits(), "n = {n}, {threads} threads");
            }
        }
    }

    #[test]
    fn products_and_transposes_match_dense_arithmetic() {
        // a 7 × 5 times a 5 × 6 pattern with empty rows and columns
        let a = CsrMatrix::from_triplets(
            7,
            5,
            &[(0, 4, 1.5), (0, 1, -2.0), (2, 0, 3.0), (2, 3, 0.5), (3, 4, -1.0), (5, 2, 2.5), (6, 0, 1.0), (6, 4, 4.0)],
        )
        .unwrap();
        let b = CsrMatrix::from_triplets(
            5,
            6,
            &[(0, 5, 2.0), (1, 0, 1.0), (1, 5, -1.0), (2, 2, 3.0), (3, 1, 0.25), (4, 0, -0.5), (4, 5, 1.0)],
        )
        .unwrap();
        let (da, db) = (a.to_dense(), b.to_dense());
        let dense: Vec<f64> =
            (0..7 * 6).map(|k| (0..5).map(|j| da[(k / 6) * 5 + j] * db[j * 6 + k % 6]).sum()).collect();
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.to_dense(), dense);
        let (ip, ix, _) = c.parts();
        assert!((0..7).all(|r| ix[ip[r]..ip[r + 1]].windows(2).all(|w| w[0] < w[1])), "rows sorted");
        // the unsorted product holds the same entries, and is a valid right factor
        let u = a.product(&b, false).unwrap();
        assert_eq!(u.to_dense(), dense);
        let t = a.transpose();
        assert_eq!(t.transpose(), a);
        assert!((0..5 * 7).all(|k| t.to_dense()[k] == da[(k % 7) * 5 + k / 7]));
        assert_eq!(t.matmul(&u).unwrap(), t.matmul(&c).unwrap());
        assert!(a.matmul(&a).is_err(), "shape mismatch is an error");
    }

    #[test]
    fn large_products_are_the_same_on_any_thread_count() {
        let a = tridiagonal(5 * ROW_CHUNK + 17);
        let serial = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| a.matmul(&a).unwrap());
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            assert_eq!(pool.install(|| a.matmul(&a).unwrap()), serial, "{threads} threads");
            let unsorted = pool.install(|| a.product(&a, false).unwrap());
            assert_eq!(unsorted.to_dense_rows(0..50), serial.to_dense_rows(0..50));
        }
        assert_eq!(serial.nnz(), 5 * (5 * ROW_CHUNK + 17) - 6);
    }

    #[test]
    fn triplets_sum_duplicates_and_sort() {
        let m = CsrMatrix::from_triplets(3, 3, &[(0, 2, 1.0), (0, 0, 2.0), (0, 2, 3.0), (2, 1, -1.0), (1, 1, 5.0)])
            .unwrap();
        assert_eq!(m.nnz(), 4);
        assert_eq!(m.get(0, 2), 4.0);
        assert_eq!(m.diagonal(), [2.0, 5.0, 0.0]);
        let mut y = vec![0.0; 3];
        m.matvec(&[1.0, 2.0, 3.0], &mut y);
        assert_eq!(y, [14.0, 10.0, -2.0]);
        assert_eq!(m.transpose().get(2, 0), 4.0);
        assert!(CsrMatrix::from_triplets(2, 2, &[(2, 0, 1.0)]).is_err());
    }

    #[test]
    fn rows_of_every_length_sum_their_terms_in_storage_order() {
        // row r has r + 1 entries (1 to 12: the unrolled 5-, 7- and 9-term paths and the loop)
        let n = 12;
        let mut t = vec![];
        for r in 0..n {
            for k in 0..=r {
                t.push((r, (5 * k + r) % n, 1.0 + ((r * 7 + k * 3) % 11) as f64 / 7.0));
            }
        }
        let a = CsrMatrix::from_triplets(n, n, &t).unwrap();
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).sin()).collect();
        let mut y = vec![0.0; n];
        a.matvec(&x, &mut y);
        let (ip, ix, vx) = a.parts();
        assert!((0..n).all(|r| ip[r + 1] - ip[r] == r + 1), "5 is coprime to 12: no duplicate columns");
        for r in 0..n {
            let mut sum = 0.0;
            for k in ip[r]..ip[r + 1] {
                sum += vx[k] * x[ix[k] as usize];
            }
            assert_eq!(y[r].to_bits(), sum.to_bits(), "row {r} ({} entries)", ip[r + 1] - ip[r]);
        }
    }
}
