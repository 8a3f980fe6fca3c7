//! Checkpoints: the parameters, the optimiser state (moments and update count), the position in the data order
//! (the training RNG is a pure function of the seed and the step, so the step is its whole state) and the
//! counters of the non-finite guard, in one self-checking file.
//!
//! Layout: the magic `ANSATZCK`, a little-endian u32 format version, a u64 header length, the JSON header, the
//! f32 arrays (parameters, first moments, second moments; little-endian), the training method's own state (any
//! bytes after the arrays, empty for methods without one), and the SHA-256 of everything before it. A file is
//! written to `NAME.partial`, synced and renamed, so a crash leaves either the old checkpoint or
//! the new one, never half of one.

use crate::optim::OptimiserState;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"ANSATZCK";
const VERSION: u32 = 1;

/// Everything but the arrays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Optimiser steps completed (the next step to run).
    pub step: usize,
    /// Seed of the data order and initial weights.
    pub seed: u64,
    /// Non-finite steps in a row when the checkpoint was written.
    pub nonfinite_run: usize,
    /// Non-finite steps in total.
    pub nonfinite_total: usize,
    /// Last validation score (relative L2 over the horizon), if any.
    pub validation: Option<f64>,
    /// Name and shape of each parameter tensor, in order.
    pub layout: Vec<(String, Vec<usize>)>,
    /// Optimiser updates applied.
    pub updates: u64,
}

/// A checkpoint in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub header: Header,
    pub params: Vec<f32>,
    pub optimiser: OptimiserState,
    /// The training method's state besides the weights (see `engine::Method::state`); empty for most methods.
    pub method: Vec<u8>,
}

/// A checkpoint that cannot be read or does not fit the run.
#[derive(Debug)]
pub struct CheckpointError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for CheckpointError {}

fn bytes_of(values: &[f32], out: &mut Vec<u8>) {
    out.reserve(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

impl Checkpoint {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = self.header.clone();
        header.updates = self.optimiser.updates;
        let json = serde_json::to_vec(&header).expect("a checkpoint header serialises");
        let mut out = Vec::with_capacity(64 + json.len() + 12 * self.params.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        bytes_of(&self.params, &mut out);
        bytes_of(&self.optimiser.m, &mut out);
        bytes_of(&self.optimiser.v, &mut out);
        out.extend_from_slice(&self.method);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses a file's bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let fail = |m: &str| CheckpointError { path: path.to_path_buf(), message: m.to_string() };
        if bytes.len() < 8 + 4 + 8 + 32 || &bytes[..8] != MAGIC {
            return Err(fail("not an Ansatz checkpoint"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(fail("checksum mismatch: the file is damaged or truncated"));
        }
        let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(fail(&format!("format version {version}, this build reads {VERSION}")));
        }
        let hlen = u64::from_le_bytes(body[12..20].try_into().expect("8 bytes"));
        let hlen =
            usize::try_from(hlen).ok().filter(|&h| h <= body.len() - 20).ok_or_else(|| fail("bad header length"))?;
        let header: Header =
            serde_json::from_slice(&body[20..20 + hlen]).map_err(|e| fail(&format!("bad header: {e}")))?;
        let n = header
            .layout
            .iter()
            .try_fold(0usize, |n, (_, s)| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?.checked_add(n))
            .filter(|n| n.checked_mul(12).is_some())
            .ok_or_else(|| fail("parameter shapes in the header overflow"))?;
        let arrays = &body[20 + hlen..];
        if arrays.len() < 12 * n {
            return Err(fail(&format!("{} bytes of arrays for {n} parameters", arrays.len())));
        }
        let read = |k: usize| -> Vec<f32> {
            arrays[4 * n * k..4 * n * (k + 1)]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let optimiser = OptimiserState { updates: header.updates, m: read(1), v: read(2) };
        let method = arrays[12 * n..].to_vec();
        Ok(Checkpoint { params: read(0), optimiser, header, method })
    }

    /// Writes the checkpoint atomically (temporary name, fsync, rename, fsync of the folder).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = PathBuf::from(format!("{}.partial", path.display()));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.to_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads and verifies a checkpoint file.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes =
            std::fs::read(path).map_err(|e| CheckpointError { path: path.to_path_buf(), message: e.to_string() })?;
        Self::from_bytes(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            header: Header {
                step: 7,
                seed: 3,
                nonfinite_run: 0,
                nonfinite_total: 1,
                validation: Some(0.25),
                layout: vec![("a".into(), vec![2, 2]), ("b".into(), vec![1])],
                updates: 6,
            },
            params: vec![1.0, -2.0, 3.5, f32::MIN_POSITIVE, 0.1],
            optimiser: OptimiserState { updates: 6, m: vec![0.1; 5], v: vec![0.2; 5] },
            method: vec![],
        }
    }

    #[test]
    fn round_trips_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.ckpt");
        sample().save(&p).unwrap();
        assert_eq!(Checkpoint::load(&p).unwrap(), sample());
        assert!(!dir.path().join("c.ckpt.partial").exists());
    }

    #[test]
    fn method_state_round_trips() {
        let mut ck = sample();
        ck.method = vec![1, 2, 3, 250];
        let back = Checkpoint::from_bytes(&ck.to_bytes(), Path::new("m.ckpt")).unwrap();
        assert_eq!(back, ck);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = sample().to_bytes();
        let p = Path::new("x.ckpt");
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(Checkpoint::from_bytes(&bytes[..cut], p).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        let e = Checkpoint::from_bytes(&flipped, p).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
    }
}
