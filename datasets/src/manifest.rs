//! Sharded datasets: one file per MPI rank (`NAME.rank-RRRR.nc`, disjoint contiguous sample ranges whose `sample`
//! coordinates are global indices) and `NAME.manifest.json`, written by rank 0 once every shard is complete.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DatasetError, Result};

/// Format tag of manifests written by this version.
pub const MANIFEST_FORMAT: &str = "ansatz-shards-1";

/// One shard of a dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    /// File name relative to the manifest's folder.
    pub file: String,
    pub first_sample: usize,
    pub samples: usize,
    pub bytes: u64,
    pub sha256: String,
}

/// The manifest of a sharded dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub pde: String,
    pub samples: usize,
    pub shards: Vec<ShardEntry>,
}

/// `STEM.rank-RRRR.nc`.
pub fn shard_name(stem: &str, rank: usize) -> String {
    format!("{stem}.rank-{rank:04}.nc")
}

/// `STEM.manifest.json`.
pub fn manifest_name(stem: &str) -> String {
    format!("{stem}.manifest.json")
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DatasetError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes the manifest of the shards `files` (in sample order, in `dir`) of a dataset of `samples` samples.
pub fn write_manifest(path: &Path, pde: &str, samples: usize, files: &[(String, usize, usize)]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let shards = files
        .iter()
        .map(|(file, first, n)| {
            let p = dir.join(file);
            let bytes = std::fs::metadata(&p).map_err(|e| DatasetError::io(&p, e))?.len();
            Ok(ShardEntry { file: file.clone(), first_sample: *first, samples: *n, bytes, sha256: sha256_file(&p)? })
        })
        .collect::<Result<Vec<_>>>()?;
    let m = Manifest { format: MANIFEST_FORMAT.into(), pde: pde.into(), samples, shards };
    let text = serde_json::to_string_pretty(&m).map_err(|e| DatasetError::format(path, e.to_string()))?;
    let tmp = crate::writer::partial_path(path);
    std::fs::write(&tmp, text + "\n").map_err(|e| DatasetError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DatasetError::io(path, e))
}

/// Whether `path` names a manifest (by its content's first byte or its name).
pub fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

/// Reads and validates a manifest: its entries must be plain relative names inside the manifest's folder (no
/// absolute paths, no `..`), every shard must exist with the recorded size and checksum, and the shards must
/// cover `0..samples` contiguously. Returns the manifest and the shard paths.
pub fn read_manifest(path: &Path) -> Result<(Manifest, Vec<PathBuf>)> {
    let (m, paths) = read_manifest_sizes(path)?;
    for (s, p) in m.shards.iter().zip(&paths) {
        verify_checksum(path, s, p)?;
    }
    Ok((m, paths))
}

/// Whether shard `entry` (at `shard`) of the manifest at `manifest` still has its recorded checksum.
pub fn verify_checksum(manifest: &Path, entry: &ShardEntry, shard: &Path) -> Result<()> {
    if sha256_file(shard)? != entry.sha256 {
        return Err(DatasetError::format(
            manifest,
            format!("shard '{}' does not match its checksum (altered or corrupt)", entry.file),
        ));
    }
    Ok(())
}

/// [`read_manifest`] without the checksums (which read every byte of every shard): the entries, the presence
/// and sizes of the shards and their coverage of the samples. For readers that verify the checksums of the
/// shards they read themselves, or split that work between processes.
pub fn read_manifest_sizes(path: &Path) -> Result<(Manifest, Vec<PathBuf>)> {
    let bad = |what: String| DatasetError::format(path, what);
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| bad(format!("not a valid manifest: {e}")))?;
    if m.format != MANIFEST_FORMAT {
        return Err(bad(format!("unknown manifest format '{}'", m.format)));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut next = 0;
    let mut paths = vec![];
    for s in &m.shards {
        let rel = Path::new(&s.file);
        if s.file.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(format!("shard '{}' is not a plain file name relative to the manifest", s.file)));
        }
        if s.first_sample != next {
            return Err(bad(format!("shard '{}' starts at sample {}, expected {next}", s.file, s.first_sample)));
        }
        next += s.samples;
        let p = dir.join(rel);
        let meta = std::fs::metadata(&p).map_err(|_| bad(format!("shard '{}' is missing", s.file)))?;
        if meta.len() != s.bytes {
            return Err(bad(format!("shard '{}' has {} bytes, the manifest says {}", s.file, meta.len(), s.bytes)));
        }
        paths.push(p);
    }
    if next != m.samples {
        return Err(bad(format!("the shards hold {next} samples, the manifest says {}", m.samples)));
    }
    Ok((m, paths))
}

/// Merges the shards of a manifest into one file at `out` (refused if it exists, unless `force`): the data
/// variables are copied value for value, so they equal those of a single-process run. `input` may also be one
/// dataset file, which is copied the same way: that rewrites a file of an earlier schema in the current one. The
/// command line is appended to the `history` attribute.
pub fn merge(input: &Path, out: &Path, force: bool, mut progress: impl FnMut(usize, usize)) -> Result<PathBuf> {
    let (samples, shards) = if is_manifest(input) {
        let (m, shards) = read_manifest(input)?;
        (m.samples, shards)
    } else {
        let ds = crate::reader::Dataset::open(input)?;
        (ds.samples, vec![input.to_path_buf()])
    };
    let first = crate::reader::Dataset::open(shards.first().ok_or_else(|| DatasetError::format(input, "no shards"))?)?;
    let mut layout = first.layout()?;
    layout.samples = samples;
    layout.first_sample = 0;
    drop(first);
    let line = crate::schema::history();
    match layout.text.iter_mut().find(|(k, _)| k == "history") {
        Some((_, h)) => *h = format!("{h}\n{line}"),
        None => layout.text.push(("history".into(), line)),
    }
    let params: Vec<String> = layout.parameters.iter().map(|p| p.name.clone()).collect();
    let mut writer = crate::writer::DatasetWriter::create(out, &layout, force)?;
    let mut k = 0;
    for shard in &shards {
        let ds = crate::reader::Dataset::open(shard)?;
        if ds.samples_complete != ds.samples {
            return Err(DatasetError::format(shard, "the shard is incomplete"));
        }
        for s in 0..ds.samples {
            let (data, values) = ds.sample_data(s, &params)?;
            writer.write_sample(k, &data, &values)?;
            k += 1;
            progress(k, samples);
        }
    }
    writer.finish()
}
