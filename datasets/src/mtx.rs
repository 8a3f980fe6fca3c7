//! MatrixMarket files (coordinate format for matrices, array format for vectors), readable by
//! `scipy.io.mmread`, PETSc's MatrixMarket readers and most sparse tools. Written under a temporary name and
//! renamed when complete.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use ansatz_solvers::linalg::CsrMatrix;

use crate::error::{DatasetError, Result};

fn atomic_write(path: &Path, force: bool, body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    if path.exists() && !force {
        return Err(DatasetError::Exists { path: path.to_path_buf() });
    }
    let tmp = crate::writer::partial_path(path);
    let f = std::fs::File::create(&tmp).map_err(|e| DatasetError::io(&tmp, e))?;
    let mut w = BufWriter::new(f);
    body(&mut w).and_then(|_| w.flush()).map_err(|e| DatasetError::io(&tmp, e))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(|e| DatasetError::io(path, e))
}

/// Writes `a` in coordinate format: `symmetric` (lower triangle) when `a` is symmetric to round-off, `general`
/// otherwise; values with 17 significant digits (exact round trip). `comments` become `%` lines after the banner.
pub fn write_matrix(path: &Path, a: &CsrMatrix, comments: &[String], force: bool) -> Result<()> {
    let (ip, ix, vx) = a.parts();
    let scale = vx.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let symmetric = a.nrows() == a.ncols() && a.asymmetry() <= 1e-14 * scale;
    atomic_write(path, force, |w| {
        writeln!(w, "%%MatrixMarket matrix coordinate real {}", if symmetric { "symmetric" } else { "general" })?;
        for c in comments {
            for line in c.lines() {
                writeln!(w, "% {line}")?;
            }
        }
        let entries: Vec<(usize, usize, f64)> = (0..a.nrows())
            .flat_map(|r| (ip[r]..ip[r + 1]).map(move |k| (r, ix[k] as usize, vx[k])))
            .filter(|&(r, c, _)| !symmetric || c <= r)
            .collect();
        writeln!(w, "{} {} {}", a.nrows(), a.ncols(), entries.len())?;
        for (r, c, v) in entries {
            writeln!(w, "{} {} {v:.17e}", r + 1, c + 1)?;
        }
        Ok(())
    })
}

/// Writes a vector as an `n × 1` array.
pub fn write_vector(path: &Path, v: &[f64], comments: &[String], force: bool) -> Result<()> {
    atomic_write(path, force, |w| {
        writeln!(w, "%%MatrixMarket matrix array real general")?;
        for c in comments {
            for line in c.lines() {
                writeln!(w, "% {line}")?;
            }
        }
        writeln!(w, "{} 1", v.len())?;
        for x in v {
            writeln!(w, "{x:.17e}")?;
        }
        Ok(())
    })
}

/// Reads a coordinate-format real matrix (general or symmetric).
pub fn read_matrix(path: &Path) -> Result<CsrMatrix> {
    let bad = |what: String| DatasetError::format(path, what);
    let f = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut lines = std::io::BufReader::new(f).lines();
    let banner = lines.next().transpose().map_err(|e| DatasetError::io(path, e))?.unwrap_or_default();
    let b: Vec<String> = banner.split_whitespace().map(|s| s.to_lowercase()).collect();
    if b.len() != 5 || b[0] != "%%matrixmarket" || b[1] != "matrix" || b[2] != "coordinate" || b[3] != "real" {
        return Err(bad(format!("not a real coordinate MatrixMarket matrix: {banner:?}")));
    }
    let symmetric = match b[4].as_str() {
        "general" => false,
        "symmetric" => true,
        s => return Err(bad(format!("unsupported symmetry '{s}'"))),
    };
    let mut size: Option<(usize, usize, usize)> = None;
    let mut t = vec![];
    for line in lines {
        let line = line.map_err(|e| DatasetError::io(path, e))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('%') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        match size {
            None => {
                let p = |i: usize| {
                    parts
                        .get(i)
                        .and_then(|s| s.parse::<usize>().ok())
                        .ok_or_else(|| bad(format!("bad size line {line:?}")))
                };
                let s = (p(0)?, p(1)?, p(2)?);
                t.reserve(s.2.min(1 << 24));
                size = Some(s);
            }
            Some((r, c, _)) => {
                let (i, j, v) = match (
                    parts.first().and_then(|s| s.parse::<usize>().ok()),
                    parts.get(1).and_then(|s| s.parse::<usize>().ok()),
                    parts.get(2).and_then(|s| s.parse::<f64>().ok()),
                ) {
                    (Some(i), Some(j), Some(v)) if i >= 1 && j >= 1 && i <= r && j <= c => (i - 1, j - 1, v),
                    _ => return Err(bad(format!("bad entry {line:?}"))),
                };
                t.push((i, j, v));
                if symmetric && i != j {
                    t.push((j, i, v));
                }
            }
        }
    }
    let (r, c, _) = size.ok_or_else(|| bad("missing size line".into()))?;
    CsrMatrix::from_triplets(r, c, &t).map_err(|e| bad(e.to_string()))
}

/// The comment lines (`%`, after the banner) of a MatrixMarket file, without the `%` and one following space.
pub fn read_comments(path: &Path) -> Result<Vec<String>> {
    let f = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut out = vec![];
    for (k, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| DatasetError::io(path, e))?;
        if k == 0 {
            continue;
        }
        match line.strip_prefix('%') {
            Some(c) => out.push(c.strip_prefix(' ').unwrap_or(c).to_string()),
            None if line.trim().is_empty() => continue,
            None => break,
        }
    }
    Ok(out)
}

/// Reads an array-format real vector (`%%MatrixMarket matrix array real general`, size line `n 1`).
pub fn read_vector(path: &Path) -> Result<Vec<f64>> {
    let bad = |what: String| DatasetError::format(path, what);
    let f = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut lines = std::io::BufReader::new(f).lines();
    let banner = lines.next().transpose().map_err(|e| DatasetError::io(path, e))?.unwrap_or_default();
    let b: Vec<String> = banner.split_whitespace().map(|s| s.to_lowercase()).collect();
    if b.len() != 5 || b[0] != "%%matrixmarket" || b[1] != "matrix" || b[2] != "array" || b[3] != "real" {
        return Err(bad(format!("not a real array MatrixMarket vector: {banner:?}")));
    }
    let mut len: Option<usize> = None;
    let mut v = vec![];
    for line in lines {
        let line = line.map_err(|e| DatasetError::io(path, e))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('%') {
            continue;
        }
        match len {
            None => {
                let parts: Vec<&str> = line.split_whitespace().collect();
                match (parts.first().and_then(|s| s.parse::<usize>().ok()), parts.get(1).copied()) {
                    (Some(n), Some("1")) if parts.len() == 2 => {
                        v.reserve(n.min(1 << 24));
                        len = Some(n);
                    }
                    _ => return Err(bad(format!("bad size line {line:?} (a vector is `n 1`)"))),
                }
            }
            Some(n) => {
                if v.len() == n {
                    return Err(bad(format!("more than the {n} values the size line gives")));
                }
                let x: f64 = line.parse().map_err(|_| bad(format!("bad value {line:?}")))?;
                if !x.is_finite() {
                    return Err(bad(format!("value {} is not finite", v.len() + 1)));
                }
                v.push(x);
            }
        }
    }
    let n = len.ok_or_else(|| bad("missing size line".into()))?;
    if v.len() != n {
        return Err(bad(format!("{} values, the size line gives {n}", v.len())));
    }
    Ok(v)
}
