//! The exported learned-preconditioner file: one self-contained, versioned, checksummed file that holds a trained
//! DCDM network and everything needed to apply it, and nothing that is executed.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | the magic `ANSATZPC` |
//! | 4 | u32 format version (1) |
//! | 8 | u64 length `h` of the header |
//! | h | the header, JSON (UTF-8): [`PrecondHeader`] |
//! | 4 · p | the `p` f32 parameters, in the order and shapes of `header.layout` |
//! | 32 | SHA-256 of every byte before it |
//!
//! A file that is not one, is damaged or truncated (the checksum), has another version, a header that does not
//! parse, a network description that is invalid, or a parameter count or layout that does not match the network
//! it describes, is refused with a message naming the file and the reason.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dcdm::{DcdmConfig, DcdmNet};
use crate::init::Init;

/// The first bytes of every file.
pub const MAGIC: &[u8; 8] = b"ANSATZPC";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// The value of `header.format`.
pub const FORMAT: &str = "ansatz-preconditioner";

/// The network of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Space dimensions, 2 or 3.
    pub dims: usize,
    pub channels: usize,
    pub fine_pairs: usize,
    pub coarse_pairs: usize,
    pub post_pairs: usize,
    pub odd: bool,
    /// Coarse levels (0: from the grid); files without the field have one.
    #[serde(default = "one")]
    pub levels: usize,
    /// Residual pairs per intermediate level, each way.
    #[serde(default = "one")]
    pub level_pairs: usize,
    /// The architecture; files without the field hold the residual CNN.
    #[serde(default)]
    pub kind: NetworkKind,
    /// Convolutions per encoder of the multilevel network.
    #[serde(default = "two")]
    pub convs: usize,
}

/// The network architectures of [`crate::dcdm::DcdmNet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// The residual CNN of Kaneda et al.
    #[default]
    Residual,
    /// The symmetric positive definite multilevel network ([`crate::dcdm::Multilevel`]).
    Multilevel,
}

fn one() -> usize {
    1
}

fn two() -> usize {
    2
}

impl NetworkSpec {
    /// Trainable parameters of the network (`None` for a bad dimension or on overflow).
    pub fn parameter_count(&self) -> Option<usize> {
        let taps = match self.dims {
            2 => 9usize,
            3 => 27,
            _ => return None,
        };
        let c = self.channels;
        if self.kind == NetworkKind::Multilevel {
            let square = c.checked_mul(c)?.checked_mul(taps)?.checked_mul(self.convs.saturating_sub(1))?;
            return taps.checked_mul(c)?.checked_add(square)?.checked_mul(2)?.checked_add(2);
        }
        let conv = c.checked_mul(c)?.checked_mul(taps)?.checked_add(c)?;
        let pairs = self.fine_pairs.checked_add(self.coarse_pairs)?.checked_add(self.post_pairs)?;
        let input = c.checked_mul(taps)?.checked_add(c)?;
        let shared =
            if self.levels == 1 { 0 } else { conv.checked_mul(4)?.checked_mul(self.level_pairs)?.checked_add(1)? };
        input.checked_add(conv.checked_mul(2)?.checked_mul(pairs)?)?.checked_add(shared)?.checked_add(c)?.checked_add(1)
    }

    /// The network configuration.
    pub fn config(&self) -> DcdmConfig {
        DcdmConfig::new(self.dims)
            .with_channels(self.channels)
            .with_fine_pairs(self.fine_pairs)
            .with_coarse_pairs(self.coarse_pairs)
            .with_post_pairs(self.post_pairs)
            .with_odd(self.odd)
            .with_levels(self.levels)
            .with_level_pairs(self.level_pairs)
            .with_multilevel(self.kind == NetworkKind::Multilevel)
            .with_convs(self.convs)
    }
}

/// Everything but the parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecondHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// The method: `dcdm`.
    pub method: String,
    pub network: NetworkSpec,
    /// The grid the network was trained on, `[nz, ny, nx]` (`nz = 1` in 2D). The network applies to any grid.
    pub trained_grid: [usize; 3],
    /// How a solver vector maps to the network's grid.
    pub ordering: String,
    /// What the network is applied to and what its output means.
    pub normalisation: String,
    /// Name and shape of each parameter tensor, in order.
    pub layout: Vec<(String, Vec<usize>)>,
    /// The parameters' dtype: `f32`.
    pub dtype: String,
    /// What made the file (program and version) and where from (the run directory, its step, its score).
    pub provenance: String,
}

/// A file in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct PrecondFile {
    pub header: PrecondHeader,
    pub params: Vec<f32>,
}

/// A file that cannot be read, written or used.
#[derive(Debug)]
pub struct PrecondFileError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for PrecondFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for PrecondFileError {}

/// The standard text of `header.ordering`.
pub const ORDERING: &str = "a solver vector holds the unknowns; unknown u sits in cell c(u) of the grid, with cell index \
                            i + nx (j + ny k), x fastest (as `ansatz export-system` numbers them); other cells are zero";
/// The standard text of `header.normalisation`.
pub const NORMALISATION: &str = "z = ‖r‖ f(r / ‖r‖): the residual placed on the grid and scaled to unit 2-norm, \
                                 the output at the unknowns scaled back (DCDM and flexible CG absorb the scale)";

impl PrecondFile {
    /// The file of a trained `net` (its parameters in f32).
    pub fn of_network(net: &DcdmNet, spec: NetworkSpec, trained_grid: [usize; 3], provenance: String) -> Self {
        let mut params = Vec::new();
        crate::flat::flatten_into(net, &mut params);
        let header = PrecondHeader {
            format: FORMAT.into(),
            method: "dcdm".into(),
            network: spec,
            trained_grid,
            ordering: ORDERING.into(),
            normalisation: NORMALISATION.into(),
            layout: crate::flat::layout(net),
            dtype: "f32".into(),
            provenance,
        };
        Self { header, params }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec_pretty(&self.header).expect("a header serialises");
        let mut out = Vec::with_capacity(20 + json.len() + 4 * self.params.len() + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for v in &self.params {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses and checks a file's bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, PrecondFileError> {
        let fail = |m: String| PrecondFileError { path: path.to_path_buf(), message: m };
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(fail("not an Ansatz preconditioner file (no ANSATZPC magic)".into()));
        }
        if bytes.len() < 8 + 4 + 8 + 32 {
            return Err(fail(format!("truncated: {} bytes", bytes.len())));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(fail("checksum mismatch: the file is damaged or truncated".into()));
        }
        let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(fail(format!("format version {version}; this build reads version {VERSION}")));
        }
        let hlen = u64::from_le_bytes(body[12..20].try_into().expect("8 bytes"));
        let hlen = usize::try_from(hlen)
            .ok()
            .filter(|&h| h <= body.len() - 20)
            .ok_or_else(|| fail(format!("header length {hlen} exceeds the file")))?;
        let header: PrecondHeader =
            serde_json::from_slice(&body[20..20 + hlen]).map_err(|e| fail(format!("bad header: {e}")))?;
        if header.format != FORMAT || header.method != "dcdm" || header.dtype != "f32" {
            return Err(fail(format!(
                "unsupported content: format '{}', method '{}', dtype '{}' (this build reads {FORMAT}, dcdm, f32)",
                header.format, header.method, header.dtype
            )));
        }
        let count = header
            .layout
            .iter()
            .try_fold(0usize, |n, (_, s)| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?.checked_add(n))
            .ok_or_else(|| fail("parameter shapes in the header overflow".into()))?;
        let data = &body[20 + hlen..];
        if Some(data.len()) != count.checked_mul(4) {
            return Err(fail(format!("{} bytes of parameters for the {count} the header lists", data.len())));
        }
        let params: Vec<f32> =
            data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        if let Some(i) = params.iter().position(|v| !v.is_finite()) {
            return Err(fail(format!("parameter {i} is not finite")));
        }
        let file = Self { header, params };
        // the network the header describes must have exactly the parameters the file holds (checked before the
        // network is built, so a hostile header cannot make it allocate more than the file's size)
        match file.header.network.parameter_count() {
            Some(c) if c == count && c > 0 => {}
            Some(c) => return Err(fail(format!("the header's network has {c} parameters, the file holds {count}"))),
            None => return Err(fail(format!("bad network in the header: {:?}", file.header.network))),
        }
        // the layout must be the one of the network the header describes
        let expected = file.header.network.config().layout().map_err(|e| fail(format!("bad network: {e}")))?;
        if expected != file.header.layout {
            return Err(fail("the parameter layout does not match the network the header describes".into()));
        }
        Ok(file)
    }

    /// Writes the file atomically (temporary name, then rename); refuses to replace an existing file unless
    /// `force`.
    pub fn save(&self, path: &Path, force: bool) -> Result<(), PrecondFileError> {
        let fail = |m: String| PrecondFileError { path: path.to_path_buf(), message: m };
        if path.exists() && !force {
            return Err(fail("exists; pass --force to replace it".into()));
        }
        let tmp = PathBuf::from(format!("{}.partial", path.display()));
        std::fs::write(&tmp, self.to_bytes()).map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
    }

    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, PrecondFileError> {
        let bytes =
            std::fs::read(path).map_err(|e| PrecondFileError { path: path.to_path_buf(), message: e.to_string() })?;
        Self::from_bytes(&bytes, path)
    }

    /// The network on `device` with the file's parameters (f32). Fails when the header's network cannot be built
    /// or its parameters are not the file's (never for a file [`PrecondFile::load`] accepted).
    pub fn network(&self, device: &Device) -> Result<DcdmNet, String> {
        let net = self.header.network.config().init(&mut Init::new(0, device))?;
        if crate::flat::layout(&net) != self.header.layout
            || self.params.len() != self.header.network.parameter_count().unwrap_or(0)
        {
            return Err("the parameters do not fit the network the header describes".into());
        }
        Ok(crate::flat::unflatten(net, &self.params))
    }
}

impl DcdmConfig {
    /// The parameter layout of the network (names and shapes), without drawing weights that matter.
    pub fn layout(&self) -> Result<Vec<(String, Vec<usize>)>, String> {
        let net = self.init(&mut Init::new(0, &Device::flex()))?;
        Ok(crate::flat::layout(&net))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, TensorData};

    fn spec() -> NetworkSpec {
        NetworkSpec {
            dims: 2,
            channels: 3,
            fine_pairs: 1,
            coarse_pairs: 1,
            post_pairs: 1,
            odd: true,
            levels: 1,
            level_pairs: 1,
            kind: NetworkKind::Residual,
            convs: 2,
        }
    }

    fn file() -> PrecondFile {
        file_of(spec())
    }

    fn file_of(spec: NetworkSpec) -> PrecondFile {
        let net = spec.config().init(&mut Init::new(5, &Device::flex())).unwrap();
        PrecondFile::of_network(&net, spec, [1, 8, 8], "test".into())
    }

    #[test]
    fn the_parameter_count_is_the_network_s() {
        for dims in [2, 3] {
            let s = NetworkSpec { dims, ..spec() };
            assert_eq!(s.parameter_count(), Some(s.config().parameters()));
            for convs in [1, 3] {
                let s = NetworkSpec { dims, kind: NetworkKind::Multilevel, convs, ..spec() };
                assert_eq!(s.parameter_count(), Some(s.config().parameters()));
            }
        }
        assert_eq!(NetworkSpec { channels: usize::MAX, ..spec() }.parameter_count(), None);
        assert_eq!(NetworkSpec { dims: 4, ..spec() }.parameter_count(), None);
    }

    #[test]
    fn a_round_trip_gives_the_same_outputs_bit_for_bit() {
        let dir = std::env::temp_dir().join(format!("ansatz-pc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("net.apc");
        for spec in [spec(), NetworkSpec { kind: NetworkKind::Multilevel, levels: 0, ..spec() }] {
            let f = file_of(spec);
            f.save(&path, true).unwrap();
            assert!(f.save(&path, false).unwrap_err().to_string().contains("--force"));
            let g = PrecondFile::load(&path).unwrap();
            assert_eq!(f, g);
            let device = Device::flex();
            let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.3).sin()).collect();
            let x = Tensor::<5>::from_data(TensorData::new(x, [1, 1, 1, 8, 8]), (&device, DType::F32));
            let (a, b) = (f.network(&device).unwrap().forward(x.clone()), g.network(&device).unwrap().forward(x));
            let bits = |t: Tensor<5>| {
                t.into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(bits(a), bits(b));
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn damaged_truncated_and_foreign_files_are_refused() {
        let bytes = file().to_bytes();
        let p = Path::new("net.apc");
        let err = |b: &[u8]| PrecondFile::from_bytes(b, p).unwrap_err().to_string();
        assert!(err(b"hello").contains("not an Ansatz preconditioner"));
        assert!(err(&bytes[..bytes.len() - 7]).contains("checksum"));
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(err(&flipped).contains("checksum"));
        // a valid checksum over a wrong version, a foreign method or a layout that lies
        let reseal = |mut body: Vec<u8>| {
            body.truncate(body.len() - 32);
            let d = Sha256::digest(&body);
            body.extend_from_slice(&d);
            body
        };
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(err(&reseal(v2)).contains("version 2"));
        let mut f = file();
        f.header.method = "magic".into();
        assert!(err(&f.to_bytes()).contains("unsupported"));
        let mut f = file();
        f.header.network.channels = 4;
        assert!(err(&f.to_bytes()).contains("parameters"));
        let mut f = file();
        f.params.pop();
        assert!(err(&f.to_bytes()).contains("bytes of parameters"));
        let mut f = file();
        f.params[0] = f32::NAN;
        assert!(err(&f.to_bytes()).contains("not finite"));
        let mut f = file();
        f.header.layout.swap(0, 1);
        assert!(err(&f.to_bytes()).contains("layout"));
        // every truncation is refused, none panics
        for cut in 0..bytes.len() {
            assert!(PrecondFile::from_bytes(&bytes[..cut], p).is_err());
        }
    }
}
