//! Checks of untrusted NetCDF files before libnetcdf reads them.
//!
//! libnetcdf trusts the sizes declared in a file: a flipped byte in a dimension length or a truncated file can
//! make it allocate absurd buffers, read out of bounds or abort. [`check_bytes`] recognises the format from its
//! magic number and, for classic files (CDF-1, CDF-2, CDF-5), parses the whole header in Rust and verifies every
//! count, name, type, dimension id and data extent against the file size. For NetCDF-4 (HDF5) files it checks the
//! superblock and that the file is not shorter than the end-of-file address it declares; the deeper HDF5
//! structures are left to libnetcdf, which the command line runs in a child process first (`ansatz` probes
//! untrusted files) so that a crash inside the library cannot take the user's process down.

use std::io::Read;
use std::path::Path;

use crate::error::{DatasetError, Result};

/// The container format of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic NetCDF: 1 (CDF-1), 2 (64-bit offsets) or 5 (CDF-5, 64-bit data).
    Classic(u8),
    /// NetCDF-4, stored as HDF5.
    Hdf5,
}

/// Largest header read for the classic-format check.
const MAX_HEADER: u64 = 64 << 20;
/// Longest name libnetcdf accepts.
const MAX_NAME: u64 = 256;
/// Most dimensions of a variable libnetcdf accepts.
const MAX_VAR_DIMS: u64 = 1024;

/// Checks the file at `path`; returns its format or a [`DatasetError::Corrupt`] naming the file and the reason.
pub fn check_file(path: &Path) -> Result<Format> {
    crate::quiet_hdf5();
    let meta = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?;
    if !meta.is_file() {
        return Err(DatasetError::Corrupt { path: path.to_path_buf(), reason: "not a regular file".into() });
    }
    let len = meta.len();
    let mut f = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut buf = Vec::new();
    f.by_ref().take(len.min(MAX_HEADER)).read_to_end(&mut buf).map_err(|e| DatasetError::io(path, e))?;
    check_bytes(&buf, len).map_err(|reason| DatasetError::Corrupt { path: path.to_path_buf(), reason })
}

/// Opens `path` with libnetcdf after [`check_file`] and reads it: every attribute, and every numeric variable
/// completely when the file is at most `full_read_limit` bytes, otherwise the first and last index along each
/// variable's slowest axis. Refuses variables whose declared size the file cannot hold. This is what the command
/// line runs in a child process on untrusted files.
pub fn read_through(path: &Path, full_read_limit: u64) -> Result<()> {
    let nc = |e: netcdf::Error| DatasetError::nc(path, e);
    check_file(path)?;
    let len = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?.len();
    let file = netcdf::open(path).map_err(nc)?;
    for a in file.attributes() {
        a.value().map_err(nc)?;
    }
    for v in file.variables() {
        for a in v.attributes() {
            a.value().map_err(nc)?;
        }
        use netcdf::types::NcVariableType as T;
        if !matches!(v.vartype(), T::Int(_) | T::Float(_)) {
            continue;
        }
        let lens: Vec<usize> = v.dimensions().iter().map(|d| d.len()).collect();
        let elems = lens.iter().try_fold(1u64, |a, &l| a.checked_mul(l as u64)).unwrap_or(u64::MAX);
        if elems == 0 {
            continue;
        }
        if len <= full_read_limit {
            if elems.saturating_mul(8) > 1100 * len + (1 << 20) {
                return Err(DatasetError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("variable '{}' declares {elems} values", v.name()),
                });
            }
            v.get_raw_values(..).map_err(nc)?;
        } else {
            let window: u64 = lens[1..].iter().map(|&l| l as u64).product();
            if window.saturating_mul(8) > 1100 * len + (1 << 20) {
                return Err(DatasetError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("variable '{}' declares windows of {window} values", v.name()),
                });
            }
            for first in [0, lens[0] - 1] {
                let mut start = vec![0; lens.len()];
                let mut count = lens.clone();
                start[0] = first;
                count[0] = 1;
                v.get_raw_values((start.as_slice(), count.as_slice())).map_err(nc)?;
            }
        }
    }
    Ok(())
}

/// Checks the first bytes `head` of a file of `file_len` bytes (pure; never panics on any input).
pub fn check_bytes(head: &[u8], file_len: u64) -> std::result::Result<Format, String> {
    if head.len() < 4 {
        return Err("file too short to be NetCDF".into());
    }
    if head.starts_with(b"\x89HDF\r\n\x1a\n") {
        check_hdf5(head, file_len)?;
        return Ok(Format::Hdf5);
    }
    if &head[..3] == b"CDF" {
        let v = head[3];
        if v != 1 && v != 2 && v != 5 {
            return Err(format!("unknown classic format version {v}"));
        }
        Classic { b: head, pos: 4, v, file_len }.check()?;
        return Ok(Format::Classic(v));
    }
    Err("unrecognised file format (neither classic NetCDF nor NetCDF-4/HDF5)".into())
}

fn check_hdf5(h: &[u8], file_len: u64) -> std::result::Result<(), String> {
    let byte = |i: usize| h.get(i).copied().ok_or_else(|| "truncated HDF5 superblock".to_string());
    let addr = |i: usize, size: usize| -> std::result::Result<u64, String> {
        let s = h.get(i..i + size).ok_or("truncated HDF5 superblock")?;
        Ok(s.iter().rev().fold(0u64, |a, b| (a << 8) | *b as u64))
    };
    let version = byte(8)?;
    let (size_off, eof_at) = match version {
        0 | 1 => {
            let so = byte(13)? as usize;
            let base = if version == 0 { 24 } else { 28 };
            (so, base + 2 * so)
        }
        2 | 3 => {
            let so = byte(9)? as usize;
            (so, 12 + 2 * so)
        }
        v => return Err(format!("unsupported HDF5 superblock version {v}")),
    };
    if ![2, 4, 8].contains(&size_off) {
        return Err(format!("HDF5 superblock declares {size_off}-byte addresses"));
    }
    let eof = addr(eof_at, size_off)?;
    let undefined = if size_off == 8 { u64::MAX } else { (1u64 << (8 * size_off)) - 1 };
    if eof != undefined && eof > file_len {
        return Err(format!("truncated: HDF5 superblock declares {eof} bytes, the file has {file_len}"));
    }
    Ok(())
}

/// Cursor over a classic header.
struct Classic<'a> {
    b: &'a [u8],
    pos: usize,
    v: u8,
    file_len: u64,
}

/// `n` rounded up to a multiple of 4 (header items are padded to 4 bytes), `None` on overflow.
fn pad4(n: u64) -> Option<u64> {
    n.checked_add(3).map(|m| m & !3)
}

const TYPE_SIZES: [u64; 12] = [0, 1, 1, 2, 4, 4, 8, 1, 2, 4, 8, 8];

impl Classic<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], String> {
        let end = self.pos.checked_add(n).ok_or("header offset overflow")?;
        let s = self.b.get(self.pos..end).ok_or_else(|| format!("header truncated at byte {}", self.pos))?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> std::result::Result<u64, String> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64)
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    /// A count (NON_NEG): 4 bytes, 8 in CDF-5.
    fn count(&mut self) -> std::result::Result<u64, String> {
        if self.v == 5 { self.u64() } else { self.u32() }
    }

    fn remaining(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }

    fn name(&mut self) -> std::result::Result<String, String> {
        let n = self.count()?;
        if n == 0 || n > MAX_NAME {
            return Err(format!("name of length {n} at byte {}", self.pos));
        }
        let padded = pad4(n).ok_or("name length overflow")?;
        if padded > self.remaining() {
            return Err("header truncated inside a name".into());
        }
        let s = self.take(padded as usize)?;
        let name = std::str::from_utf8(&s[..n as usize]).map_err(|_| "name is not UTF-8".to_string())?;
        if name.contains('\0') || name.contains('/') {
            return Err(format!("invalid name {name:?}"));
        }
        Ok(name.to_string())
    }

    /// A list header: (tag, count), accepting ABSENT.
    fn list(&mut self, tag: u64, what: &str, min_item: u64) -> std::result::Result<u64, String> {
        let t = self.u32()?;
        let n = self.count()?;
        if t == 0 && n == 0 {
            return Ok(0);
        }
        if t != tag {
            return Err(format!("bad {what} list tag {t:#x}"));
        }
        if n.checked_mul(min_item).is_none_or(|b| b > self.remaining()) {
            return Err(format!("{what} count {n} exceeds the header"));
        }
        Ok(n)
    }

    fn type_size(&self, t: u64) -> std::result::Result<u64, String> {
        let max = if self.v == 5 { 11 } else { 6 };
        if t == 0 || t > max {
            return Err(format!("unknown data type {t}"));
        }
        Ok(TYPE_SIZES[t as usize])
    }

    fn attributes(&mut self) -> std::result::Result<(), String> {
        let n = self.list(0x0C, "attribute", 12)?;
        for _ in 0..n {
            self.name()?;
            let t = self.u32()?;
            let size = self.type_size(t)?;
            let count = self.count()?;
            let bytes = count.checked_mul(size).ok_or("attribute size overflow")?;
            let padded = pad4(bytes).ok_or("attribute size overflow")?;
            if padded > self.remaining() {
                return Err(format!("attribute of {bytes} bytes exceeds the header"));
            }
            self.take(padded as usize)?;
        }
        Ok(())
    }

    fn check(mut self) -> std::result::Result<(), String> {
        let numrecs = self.count()?;
        if (self.v != 5 && numrecs == 0xFFFF_FFFF) || (self.v == 5 && numrecs == u64::MAX) {
            return Err("the record count is the streaming marker (the file was never closed)".into());
        }
        let ndims = self.list(0x0A, "dimension", 8)?;
        let mut dims = Vec::with_capacity(ndims as usize);
        let mut record_dim = None;
        for i in 0..ndims {
            self.name()?;
            let len = self.count()?;
            if len == 0 {
                if record_dim.is_some() {
                    return Err("more than one unlimited dimension".into());
                }
                record_dim = Some(i);
            }
            dims.push(len);
        }
        self.attributes()?;
        let nvars = self.list(0x0B, "variable", 16)?;
        let mut vars = Vec::with_capacity(nvars as usize);
        let mut record_size: u64 = 0;
        for _ in 0..nvars {
            let name = self.name()?;
            let nd = self.count()?;
            if nd > MAX_VAR_DIMS || nd.checked_mul(4).is_none_or(|b| b > self.remaining()) {
                return Err(format!("variable {name:?} declares {nd} dimensions"));
            }
            let mut elems: u64 = 1;
            let mut is_record = false;
            for k in 0..nd {
                let id = self.count()?;
                let len = *dims
                    .get(id as usize)
                    .ok_or_else(|| format!("variable {name:?} uses dimension id {id} of {ndims}"))?;
                if Some(id) == record_dim {
                    if k != 0 {
                        return Err(format!("variable {name:?}: the unlimited dimension is not its first"));
                    }
                    is_record = true;
                } else {
                    elems = elems.checked_mul(len).ok_or_else(|| format!("variable {name:?}: size overflow"))?;
                }
            }
            self.attributes()?;
            let t = self.u32()?;
            let size = self.type_size(t)?;
            let _vsize = self.count()?;
            let begin = if self.v == 1 { self.u32()? } else { self.u64()? };
            let bytes = elems.checked_mul(size).ok_or_else(|| format!("variable {name:?}: size overflow"))?;
            if is_record {
                record_size = pad4(bytes).and_then(|b| record_size.checked_add(b)).ok_or("record size overflow")?;
            }
            vars.push((name, begin, bytes, is_record));
        }
        let header_end = self.pos as u64;
        for (name, begin, bytes, is_record) in &vars {
            if *begin < header_end {
                return Err(format!("variable {name:?} starts at byte {begin}, inside the header"));
            }
            let end = if *is_record {
                if numrecs == 0 {
                    *begin
                } else {
                    (numrecs - 1)
                        .checked_mul(record_size)
                        .and_then(|r| r.checked_add(*begin))
                        .and_then(|r| r.checked_add(*bytes))
                        .ok_or_else(|| format!("variable {name:?}: record extent overflow"))?
                }
            } else {
                begin.checked_add(*bytes).ok_or_else(|| format!("variable {name:?}: extent overflow"))?
            };
            if end > self.file_len {
                return Err(format!(
                    "truncated or inconsistent: variable {name:?} needs bytes up to {end}, the file has {}",
                    self.file_len
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(check_bytes(b"", 0).is_err());
        assert!(check_bytes(b"hello world", 11).is_err());
        assert!(check_bytes(b"CDF\x07\0\0\0\0", 8).is_err());
        // a minimal valid CDF-1 header: no dims, no attributes, no variables
        let mut empty = b"CDF\x01".to_vec();
        empty.extend_from_slice(&[0; 28]);
        assert_eq!(check_bytes(&empty, empty.len() as u64), Ok(Format::Classic(1)));
        // a dimension list whose count exceeds the header
        let mut bad = empty.to_vec();
        bad[8..16].copy_from_slice(&[0, 0, 0, 0x0A, 0x7f, 0xff, 0xff, 0xff]);
        assert!(check_bytes(&bad, bad.len() as u64).is_err());
        // an HDF5 superblock (version 0) that declares more bytes than the file has
        let mut h5 = b"\x89HDF\r\n\x1a\n".to_vec();
        h5.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0, 4, 0, 16, 0, 0, 0, 0, 0]);
        h5.extend_from_slice(&0u64.to_le_bytes()); // base
        h5.extend_from_slice(&u64::MAX.to_le_bytes()); // free space
        h5.extend_from_slice(&5000u64.to_le_bytes()); // end of file
        assert!(check_bytes(&h5, 4000).unwrap_err().contains("truncated"));
        assert_eq!(check_bytes(&h5, 5000), Ok(Format::Hdf5));
        // found by the fuzzer: a CDF-5 attribute with 2^64 − 1 characters must not overflow the padding
        let mut cdf5 = b"CDF\x05".to_vec();
        cdf5.extend_from_slice(&0u64.to_be_bytes()); // numrecs
        cdf5.extend_from_slice(&[0, 0, 0, 0]); // no dimensions
        cdf5.extend_from_slice(&0u64.to_be_bytes());
        cdf5.extend_from_slice(&[0, 0, 0, 0x0C]); // one global attribute
        cdf5.extend_from_slice(&1u64.to_be_bytes());
        cdf5.extend_from_slice(&5u64.to_be_bytes());
        cdf5.extend_from_slice(b"title\0\0\0");
        cdf5.extend_from_slice(&[0, 0, 0, 2]); // char
        cdf5.extend_from_slice(&u64::MAX.to_be_bytes());
        cdf5.extend_from_slice(&[0xff; 64]);
        assert!(check_bytes(&cdf5, cdf5.len() as u64).is_err());
    }
}
