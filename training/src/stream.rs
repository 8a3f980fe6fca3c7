//! Trajectories read from the dataset file on demand through a bounded cache, for data that do not fit in
//! memory. A cache entry is one sample's block of time levels aligned with the file's chunks along time (the
//! writer chunks fields as `(1, time_chunk, full space)`), so every read from disk is whole chunks; the least
//! recently used blocks are dropped once the cache exceeds its byte budget.
//!
//! [`FrameSource`] is what windows are gathered from: the in-memory [`Trajectories`] and [`StreamedTrajectories`]
//! give the same values for the same `(sample, time level)` (both convert the file's values to f32 the same way),
//! so windows, normalisation statistics and therefore losses are bitwise identical whichever one is used.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use ansatz_datasets::reader::Dataset;

use crate::data::{DataError, Normalisation, Trajectories, Windows, not_finite, open_trajectories};

/// Frames by `(sample, time level)`, sample counted from the first loaded one.
pub trait FrameSource {
    fn samples(&self) -> usize;
    fn times(&self) -> usize;
    fn channels(&self) -> usize;
    fn space_len(&self) -> usize;
    fn fields(&self) -> &[String];
    /// Copies frame `(sample, time)`, layout `(channel, space...)`, into `dst`.
    fn frame_into(&mut self, sample: usize, time: usize, dst: &mut [f32]) -> Result<(), DataError>;
}

impl FrameSource for Trajectories {
    fn samples(&self) -> usize {
        Trajectories::samples(self)
    }
    fn times(&self) -> usize {
        Trajectories::times(self)
    }
    fn channels(&self) -> usize {
        Trajectories::channels(self)
    }
    fn space_len(&self) -> usize {
        Trajectories::space_len(self)
    }
    fn fields(&self) -> &[String] {
        &self.fields
    }
    fn frame_into(&mut self, sample: usize, time: usize, dst: &mut [f32]) -> Result<(), DataError> {
        dst.copy_from_slice(self.frame(sample, time));
        Ok(())
    }
}

fn invalid(origin: &str, message: impl Into<String>) -> DataError {
    DataError::Invalid { origin: origin.to_string(), message: message.into() }
}

/// What a streamed source has done, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Blocks read from the file.
    pub blocks_read: usize,
    /// Values read from the file (all fields).
    pub values_read: usize,
    /// Bytes of the blocks held now, and at most so far.
    pub cached_bytes: usize,
    pub peak_cached_bytes: usize,
    /// Frames served from the cache without a read.
    pub hits: usize,
}

/// Trajectories of a dataset file, read block by block as frames are asked for.
pub struct StreamedTrajectories {
    ds: Dataset,
    origin: String,
    first: usize,
    samples: usize,
    times: usize,
    channels: usize,
    space_len: usize,
    space: Vec<usize>,
    fields: Vec<String>,
    /// Time levels per block (the file's chunk along time).
    block: usize,
    budget: usize,
    cache: HashMap<(usize, usize), (u64, Vec<f32>)>,
    clock: u64,
    stats: StreamStats,
}

impl StreamedTrajectories {
    /// Opens `samples` of the dataset at `path` with a cache of at most `budget_bytes` (at least one block is
    /// always held).
    pub fn open(path: &Path, samples: Range<usize>, budget_bytes: usize) -> Result<Self, DataError> {
        let (ds, origin, space) = open_trajectories(path, &samples)?;
        let block = ds.layout()?.time_chunk.clamp(1, ds.times.len());
        Ok(Self {
            origin,
            first: samples.start,
            samples: samples.len(),
            times: ds.times.len(),
            channels: ds.fields.len(),
            space_len: ds.space_len(),
            space,
            fields: ds.fields.clone(),
            block,
            budget: budget_bytes,
            cache: HashMap::new(),
            clock: 0,
            stats: StreamStats::default(),
            ds,
        })
    }

    /// Grid sizes, slowest axis first.
    pub fn space(&self) -> &[usize] {
        &self.space
    }

    /// What has been read and cached so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Reads block `b` of `sample` (local index): time levels `b·block ..`, layout `(time, channel, space)`,
    /// refusing non-finite values as the in-memory loader does.
    fn read_block(&mut self, sample: usize, b: usize) -> Result<Vec<f32>, DataError> {
        let t0 = b * self.block;
        let t1 = (t0 + self.block).min(self.times);
        let (nt, nc, n) = (t1 - t0, self.channels, self.space_len);
        let mut out = vec![0f32; nt * nc * n];
        let s = self.first + sample;
        for (c, field) in self.fields.iter().enumerate() {
            let w = self.ds.read(field, s..s + 1, t0..t1)?;
            let flat = w.as_slice().ok_or_else(|| invalid(&self.origin, "non-contiguous read"))?;
            for t in 0..nt {
                let dst = &mut out[(t * nc + c) * n..(t * nc + c + 1) * n];
                for (d, &v) in dst.iter_mut().zip(&flat[t * n..(t + 1) * n]) {
                    *d = v as f32;
                }
            }
        }
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            let frame = i / n;
            return Err(not_finite(&self.origin, &self.fields[frame % nc], sample, t0 + frame / nc));
        }
        self.stats.blocks_read += 1;
        self.stats.values_read += out.len();
        Ok(out)
    }

    fn evict_to(&mut self, room: usize) {
        while self.stats.cached_bytes + room > self.budget && !self.cache.is_empty() {
            let oldest = self.cache.iter().min_by_key(|(_, (used, _))| *used).map(|(k, _)| *k);
            if let Some(k) = oldest
                && let Some((_, v)) = self.cache.remove(&k)
            {
                self.stats.cached_bytes -= v.len() * 4;
            }
        }
    }
}

impl FrameSource for StreamedTrajectories {
    fn samples(&self) -> usize {
        self.samples
    }
    fn times(&self) -> usize {
        self.times
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn space_len(&self) -> usize {
        self.space_len
    }
    fn fields(&self) -> &[String] {
        &self.fields
    }

    fn frame_into(&mut self, sample: usize, time: usize, dst: &mut [f32]) -> Result<(), DataError> {
        if sample >= self.samples || time >= self.times {
            return Err(invalid(&self.origin, format!("frame ({sample}, {time}) outside the loaded samples")));
        }
        let key = (sample, time / self.block);
        self.clock += 1;
        let clock = self.clock;
        if let Some((used, _)) = self.cache.get_mut(&key) {
            *used = clock;
            self.stats.hits += 1;
        } else {
            let block = self.read_block(key.0, key.1)?;
            self.evict_to(block.len() * 4);
            self.stats.cached_bytes += block.len() * 4;
            self.stats.peak_cached_bytes = self.stats.peak_cached_bytes.max(self.stats.cached_bytes);
            self.cache.insert(key, (clock, block));
        }
        let f = self.channels * self.space_len;
        let at = (time % self.block) * f;
        let (_, block) = &self.cache[&key];
        dst.copy_from_slice(&block[at..at + f]);
        Ok(())
    }
}

/// Copies the windows `batch` of `windows` from `source` into `input` (layout `(batch, history·channel,
/// space...)`) and `target` (layout `(batch, horizon, channel, space...)`), as [`Windows::gather`] does from
/// memory.
pub fn gather(
    windows: &Windows,
    source: &mut dyn FrameSource,
    batch: &[usize],
    input: &mut Vec<f32>,
    target: &mut Vec<f32>,
) -> Result<(), DataError> {
    let f = source.channels() * source.space_len();
    windows.gather_with(f, batch, input, target, |s, t, dst| source.frame_into(s, t, dst))
}

/// [`Normalisation::fit`] in one pass over a source: the same sums in the same order, so the same statistics.
pub fn fit(source: &mut dyn FrameSource, samples: Range<usize>) -> Result<Normalisation, DataError> {
    let (nc, n) = (source.channels(), source.space_len());
    let mut frame = vec![0f32; nc * n];
    let mut sum = vec![0f64; nc];
    let mut sq = vec![0f64; nc];
    let mut count = 0f64;
    for s in samples {
        for t in 0..source.times() {
            source.frame_into(s, t, &mut frame)?;
            for c in 0..nc {
                for &v in &frame[c * n..(c + 1) * n] {
                    sum[c] += v as f64;
                    sq[c] += (v as f64) * (v as f64);
                }
            }
            count += n as f64;
        }
    }
    Ok(Normalisation::from_sums(source.fields().to_vec(), &sum, &sq, count))
}
