//! Trajectories read from the dataset file (or the shards of a manifest) on demand through a bounded cache, for
//! data that do not fit in memory. A cache entry is one sample's block of time levels aligned with the file's chunks along time (the
//! writer chunks fields as `(1, time_chunk, full space)`), so every read from disk is whole chunks; the least
//! recently used blocks are dropped once the cache exceeds its byte budget.
//!
//! [`FrameSource`] is what windows are gathered from: the in-memory [`Trajectories`] and [`StreamedTrajectories`]
//! give the same values for the same `(sample, time level)` (both convert the file's values to f32 the same way),
//! so windows, normalisation statistics and therefore losses are bitwise identical whichever one is used.
//! [`statistics`] forms every sum per sample and combines them in sample order, so the statistics are also the
//! same bits however the samples are split between ranks. [`Prefetcher`] runs a streamed source on a thread of
//! its own, gathering the next batch while the current one is computed.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use ansatz_cluster::{Communicator, SingleProcess, partition};

use crate::data::{DataError, DataFiles, Normalisation, Trajectories, Windows, not_finite};

/// Frames by `(sample, time level)`, sample counted from the first loaded one.
pub trait FrameSource {
    fn samples(&self) -> usize;
    fn times(&self) -> usize;
    fn channels(&self) -> usize;
    fn space_len(&self) -> usize;
    fn fields(&self) -> &[String];
    /// Copies frame `(sample, time)`, layout `(channel, space...)`, into `dst`.
    fn frame_into(&mut self, sample: usize, time: usize, dst: &mut [f32]) -> Result<(), DataError>;
    /// Refuses to go on when the file behind `sample` changed since it was opened (nothing to check in memory).
    fn unchanged(&self, _sample: usize) -> Result<(), DataError> {
        Ok(())
    }
}

/// Trajectories in memory, borrowed.
impl FrameSource for &Trajectories {
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamStats {
    /// Blocks read from the file.
    pub blocks_read: usize,
    /// Values read from the file (all fields), and their bytes at the file's precision (before decompression
    /// this is what the reads delivered).
    pub values_read: usize,
    pub bytes_read: u64,
    /// Bytes of the blocks held now, and at most so far.
    pub cached_bytes: usize,
    pub peak_cached_bytes: usize,
    /// Frames served from the cache without a read.
    pub hits: usize,
}

/// Trajectories of a dataset file, read block by block as frames are asked for. The cache is one slab of
/// equal slots, each holding a block, allocated once (its pages become resident as they are first filled): reads
/// allocate nothing, and the memory held is the budget, however long the run.
pub struct StreamedTrajectories {
    files: DataFiles,
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
    /// Slots of the slab, and values per slot (a whole block).
    slots: usize,
    slot_len: usize,
    slab: Vec<f32>,
    free: Vec<usize>,
    /// `(sample, block)` → (last use, slot, values held).
    cache: HashMap<(usize, usize), (u64, usize, usize)>,
    /// The cached blocks by last use, oldest first.
    recency: std::collections::BTreeMap<u64, (usize, usize)>,
    clock: u64,
    stats: StreamStats,
    /// Bytes per stored value.
    value_bytes: u64,
    /// Which samples have been read from.
    touched: Vec<bool>,
    /// The file's values of the block being read.
    scratch: Vec<f64>,
}

impl StreamedTrajectories {
    /// Opens `samples` of the dataset file or manifest at `path` with a cache of at most `budget_bytes` (at least
    /// one block is always held).
    pub fn open(path: &Path, samples: Range<usize>, budget_bytes: usize) -> Result<Self, DataError> {
        Self::from_files(DataFiles::open(path)?, samples, budget_bytes)
    }

    /// [`StreamedTrajectories::open`] on files already open.
    pub fn from_files(files: DataFiles, samples: Range<usize>, budget_bytes: usize) -> Result<Self, DataError> {
        files.check_samples(&samples)?;
        let ds = files.head();
        let layout = ds.layout()?;
        let times = ds.times.len();
        let block = layout.time_chunk.clamp(1, times);
        let value_bytes = match layout.precision {
            ansatz_datasets::schema::Precision::F32 => 4,
            ansatz_datasets::schema::Precision::F64 => 8,
        };
        let slot_len = block * ds.fields.len() * ds.space_len();
        // never more slots than blocks in the data
        let slots = (budget_bytes / (slot_len * 4).max(1)).clamp(1, samples.len() * times.div_ceil(block));
        Ok(Self {
            value_bytes,
            touched: vec![false; samples.len()],
            scratch: vec![],
            origin: files.origin.clone(),
            first: samples.start,
            samples: samples.len(),
            times,
            channels: ds.fields.len(),
            space_len: ds.space_len(),
            space: files.space(),
            fields: ds.fields.clone(),
            block,
            budget: budget_bytes,
            slots,
            slot_len,
            slab: vec![],
            free: vec![],
            cache: HashMap::new(),
            recency: Default::default(),
            clock: 0,
            stats: StreamStats::default(),
            files,
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

    /// The samples read from so far (global indices), as ranges.
    pub fn samples_read(&self) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = vec![];
        for (i, _) in self.touched.iter().enumerate().filter(|(_, t)| **t) {
            let s = self.first + i;
            match out.last_mut() {
                Some(r) if r.end == s => r.end = s + 1,
                _ => out.push(s..s + 1),
            }
        }
        out
    }

    /// Reads block `b` of `sample` (local index), time levels `b·block ..`, into `slot` with layout `(time,
    /// channel, space)`, refusing non-finite values as the in-memory loader does. Returns the values written.
    fn read_block(&mut self, sample: usize, b: usize, slot: usize) -> Result<usize, DataError> {
        let t0 = b * self.block;
        let t1 = (t0 + self.block).min(self.times);
        let (nt, nc, n) = (t1 - t0, self.channels, self.space_len);
        let len = nt * nc * n;
        let out = &mut self.slab[slot * self.slot_len..slot * self.slot_len + len];
        let s = self.first + sample;
        for (c, field) in self.fields.iter().enumerate() {
            self.files.read_into(field, s, t0..t1, &mut self.scratch)?;
            for t in 0..nt {
                let dst = &mut out[(t * nc + c) * n..(t * nc + c + 1) * n];
                for (d, &v) in dst.iter_mut().zip(&self.scratch[t * n..(t + 1) * n]) {
                    *d = v as f32;
                }
            }
        }
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            let frame = i / n;
            return Err(not_finite(&self.origin, &self.fields[frame % nc], s, t0 + frame / nc));
        }
        self.stats.blocks_read += 1;
        self.stats.values_read += len;
        self.stats.bytes_read += len as u64 * self.value_bytes;
        self.touched[sample] = true;
        Ok(len)
    }

    /// A slot for a new block: a free one, or the least recently used block's.
    fn take_slot(&mut self) -> usize {
        if self.slab.is_empty() {
            // zeroed memory from the kernel: pages count as resident only once written
            self.slab = vec![0f32; self.slots * self.slot_len];
            self.free = (0..self.slots).rev().collect();
        }
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        let (_, key) = self.recency.pop_first().expect("a full cache holds a block");
        let (_, slot, len) = self.cache.remove(&key).expect("recency and cache agree");
        self.stats.cached_bytes -= len * 4;
        slot
    }

    /// Drops every cached block and the slab's memory (before the source moves to another thread, which then
    /// allocates its own).
    pub fn clear_cache(&mut self) {
        self.cache = HashMap::new();
        self.recency.clear();
        self.slab = vec![];
        self.free = vec![];
        self.stats.cached_bytes = 0;
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

    fn unchanged(&self, sample: usize) -> Result<(), DataError> {
        self.files.unchanged(self.first + sample)
    }

    fn frame_into(&mut self, sample: usize, time: usize, dst: &mut [f32]) -> Result<(), DataError> {
        if sample >= self.samples || time >= self.times {
            return Err(invalid(&self.origin, format!("frame ({sample}, {time}) outside the loaded samples")));
        }
        let key = (sample, time / self.block);
        self.clock += 1;
        let clock = self.clock;
        let slot = if let Some((used, slot, _)) = self.cache.get_mut(&key) {
            self.recency.remove(used);
            self.recency.insert(clock, key);
            *used = clock;
            self.stats.hits += 1;
            *slot
        } else {
            let slot = self.take_slot();
            let len = match self.read_block(key.0, key.1, slot) {
                Ok(len) => len,
                Err(e) => {
                    self.free.push(slot);
                    return Err(e);
                }
            };
            self.stats.cached_bytes += len * 4;
            self.stats.peak_cached_bytes = self.stats.peak_cached_bytes.max(self.stats.cached_bytes);
            self.cache.insert(key, (clock, slot, len));
            self.recency.insert(clock, key);
            slot
        };
        let f = self.channels * self.space_len;
        let at = slot * self.slot_len + (time % self.block) * f;
        dst.copy_from_slice(&self.slab[at..at + f]);
        Ok(())
    }
}

/// Copies the windows `batch` of `windows` from `source` into `input` (layout `(batch, history·channel,
/// space...)`) and `target` (layout `(batch, horizon, channel, space...)`), as [`Windows::gather`] does from
/// memory. The files behind the windows' samples are checked first: a file changed since it was opened stops
/// the gather even when its blocks are cached.
pub fn gather(
    windows: &Windows,
    source: &mut dyn FrameSource,
    batch: &[usize],
    input: &mut Vec<f32>,
    target: &mut Vec<f32>,
) -> Result<(), DataError> {
    for &w in batch {
        source.unchanged(windows.origin(w).0)?;
    }
    let f = source.channels() * source.space_len();
    windows.gather_with(f, batch, input, target, |s, t, dst| source.frame_into(s, t, dst))
}

/// One sample's share of the statistics: per-channel sums of values and of squares over all its time levels and
/// grid points.
fn sample_sums(source: &mut dyn FrameSource, s: usize, frame: &mut [f32], out: &mut [f64]) -> Result<(), DataError> {
    let (nc, n) = (source.channels(), source.space_len());
    for t in 0..source.times() {
        source.frame_into(s, t, frame)?;
        for c in 0..nc {
            for &v in &frame[c * n..(c + 1) * n] {
                out[c] += v as f64;
                out[nc + c] += (v as f64) * (v as f64);
            }
        }
    }
    Ok(())
}

/// One sample's share of the structure-change coefficient: `Σ_t 1 − cos(u_t, u_{t+1})` over its normalised
/// frames.
fn sample_change(
    source: &mut dyn FrameSource,
    norm: &Normalisation,
    s: usize,
    frames: &mut [Vec<f32>; 2],
) -> Result<f64, DataError> {
    let n = source.space_len();
    let mut sum = 0.0;
    for t in 0..source.times() {
        let [prev, cur] = frames;
        std::mem::swap(prev, cur);
        source.frame_into(s, t, cur)?;
        norm.apply(cur, n);
        if t > 0 {
            sum += crate::model::structure_change(prev, cur);
        }
    }
    Ok(sum)
}

/// Runs `per_sample` for this rank's share of `samples` (each sample's `width` values written to its own slot),
/// and gives every rank every sample's values: a sum over ranks in which each slot has one contributor, so the
/// values are exact. An error on any rank ends every rank (the others say where to look).
fn per_sample(
    comm: &dyn Communicator,
    samples: &Range<usize>,
    width: usize,
    mut per_sample: impl FnMut(usize, &mut [f64]) -> Result<(), DataError>,
) -> Result<Vec<f64>, DataError> {
    let mut buf = vec![0f64; samples.len() * width + 1];
    let mut failure = None;
    for i in partition(samples.len(), comm.size(), comm.rank()) {
        if let Err(e) = per_sample(samples.start + i, &mut buf[i * width..(i + 1) * width]) {
            failure = Some(e);
            break;
        }
    }
    let flag = buf.len() - 1;
    buf[flag] = if failure.is_some() { 1.0 } else { 0.0 };
    comm.all_reduce_sum_f64(&mut buf);
    match failure {
        Some(e) => Err(e),
        None if buf[flag] > 0.0 => Err(DataError::Invalid {
            origin: "[data]".into(),
            message: "another rank could not read its training samples (its message says which)".into(),
        }),
        None => {
            buf.pop();
            Ok(buf)
        }
    }
}

/// The normalisation statistics of `samples`, split between the ranks of `comm` by sample; per-sample sums
/// combined in sample order.
fn fit_on(
    source: &mut dyn FrameSource,
    samples: &Range<usize>,
    comm: &dyn Communicator,
) -> Result<Normalisation, DataError> {
    let (nc, n, nt) = (source.channels(), source.space_len(), source.times());
    let mut frame = vec![0f32; nc * n];
    let sums = per_sample(comm, samples, 2 * nc, |s, out| sample_sums(source, s, &mut frame, out))?;
    let (mut sum, mut sq) = (vec![0f64; nc], vec![0f64; nc]);
    for chunk in sums.chunks(2 * nc) {
        for c in 0..nc {
            sum[c] += chunk[c];
            sq[c] += chunk[nc + c];
        }
    }
    Ok(Normalisation::from_sums(source.fields().to_vec(), &sum, &sq, (samples.len() * nt * n) as f64))
}

/// The normalisation statistics of `samples` (all time levels and grid points), in one pass over the source.
pub fn fit(source: &mut dyn FrameSource, samples: Range<usize>) -> Result<Normalisation, DataError> {
    fit_on(source, &samples, &SingleProcess)
}

/// The normalisation statistics of the training samples `train` and the mean structure change of their
/// normalised trajectories, in one pass each over the source. The work is split between the ranks of `comm` by
/// sample (each reads only its share) and every sum is formed per sample, then combined in sample order, so the
/// result is the same bits for any number of ranks and for in-memory or streamed sources.
pub fn statistics(
    source: &mut dyn FrameSource,
    train: Range<usize>,
    comm: &dyn Communicator,
) -> Result<(Normalisation, f64), DataError> {
    let norm = fit_on(source, &train, comm)?;
    let (nc, n, nt) = (source.channels(), source.space_len(), source.times());
    let mut frames = [vec![0f32; nc * n], vec![0f32; nc * n]];
    let changes = per_sample(comm, &train, 1, |s, out| {
        out[0] = sample_change(source, &norm, s, &mut frames)?;
        Ok(())
    })?;
    let pairs = train.len() * nt.saturating_sub(1);
    let tau = if pairs == 0 { 0.0 } else { changes.iter().sum::<f64>() / pairs as f64 };
    Ok((norm, tau))
}

/// A batch asked of the reading thread: which window set, which windows, and buffers to fill (recycled).
struct Request {
    set: usize,
    batch: Vec<usize>,
    input: Vec<f32>,
    target: Vec<f32>,
}

type Reply = Result<(Vec<f32>, Vec<f32>), DataError>;

/// A [`StreamedTrajectories`] on its own thread, which gathers (and normalises) the windows of a batch while the
/// caller is busy with the previous one. Requests are answered in order; [`Prefetcher::request`] announces a
/// batch, [`Prefetcher::gather`] takes it (or asks for it now when it was not announced), so the values are
/// those a direct [`gather`] gives, whatever was announced. Buffers travel back and forth, so a steady run of
/// batches allocates nothing.
pub struct Prefetcher {
    requests: Option<std::sync::mpsc::Sender<Request>>,
    replies: std::sync::mpsc::Receiver<Reply>,
    /// Batches asked for and not yet taken, oldest first.
    pending: std::collections::VecDeque<(usize, Vec<usize>)>,
    /// Batches received while waiting for another one.
    stash: Vec<((usize, Vec<usize>), Reply)>,
    spare: Vec<Vec<f32>>,
    stats: std::sync::Arc<std::sync::Mutex<StreamStats>>,
    worker: Option<std::thread::JoinHandle<StreamedTrajectories>>,
    channels: usize,
    space_len: usize,
}

impl Prefetcher {
    /// Moves `source` to a reading thread serving windows of `sets` (by index), normalised by `norm` if given.
    pub fn start(
        mut source: StreamedTrajectories,
        sets: Vec<std::sync::Arc<Windows>>,
        norm: Option<Normalisation>,
    ) -> Result<Self, DataError> {
        let (channels, space_len) = (source.channels(), source.space_len());
        let (req_tx, req_rx) = std::sync::mpsc::channel::<Request>();
        let (rep_tx, rep_rx) = std::sync::mpsc::channel::<Reply>();
        let stats = std::sync::Arc::new(std::sync::Mutex::new(source.stats()));
        let shared = stats.clone();
        let worker = std::thread::Builder::new()
            .name("ansatz-prefetch".into())
            .spawn(move || {
                for mut r in req_rx {
                    let reply = match gather(&sets[r.set], &mut source, &r.batch, &mut r.input, &mut r.target) {
                        Ok(()) => {
                            if let Some(norm) = &norm {
                                norm.apply(&mut r.input, space_len);
                                norm.apply(&mut r.target, space_len);
                            }
                            Ok((r.input, r.target))
                        }
                        Err(e) => Err(e),
                    };
                    if let Ok(mut s) = shared.lock() {
                        *s = source.stats();
                    }
                    if rep_tx.send(reply).is_err() {
                        break;
                    }
                }
                source
            })
            .map_err(|e| invalid("[data]", format!("cannot start the reading thread: {e}")))?;
        Ok(Self {
            requests: Some(req_tx),
            replies: rep_rx,
            pending: Default::default(),
            stash: vec![],
            spare: vec![],
            stats,
            worker: Some(worker),
            channels,
            space_len,
        })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }
    pub fn space_len(&self) -> usize {
        self.space_len
    }

    /// What the reading thread has read and cached so far.
    pub fn stats(&self) -> StreamStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    fn stopped() -> DataError {
        invalid("[data]", "the reading thread stopped")
    }

    /// Announces the windows `batch` of set `set`: the thread starts reading them now.
    pub fn request(&mut self, set: usize, batch: &[usize]) -> Result<(), DataError> {
        let input = self.spare.pop().unwrap_or_default();
        let target = self.spare.pop().unwrap_or_default();
        let sender = self.requests.as_ref().ok_or_else(Self::stopped)?;
        sender.send(Request { set, batch: batch.to_vec(), input, target }).map_err(|_| Self::stopped())?;
        self.pending.push_back((set, batch.to_vec()));
        Ok(())
    }

    /// The windows `batch` of set `set` into `input` and `target` (their old buffers are kept for reuse).
    /// Batches announced before it and not taken yet are kept for later (a few at most).
    pub fn gather(
        &mut self,
        set: usize,
        batch: &[usize],
        input: &mut Vec<f32>,
        target: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        let wanted = |k: &(usize, Vec<usize>)| k.0 == set && k.1 == batch;
        if let Some(i) = self.stash.iter().position(|(k, _)| wanted(k)) {
            let (_, reply) = self.stash.remove(i);
            return self.take(reply, input, target);
        }
        if !self.pending.iter().any(wanted) {
            self.request(set, batch)?;
        }
        loop {
            let k = self.pending.pop_front().ok_or_else(Self::stopped)?;
            let reply = self.replies.recv().map_err(|_| Self::stopped())?;
            if wanted(&k) {
                return self.take(reply, input, target);
            }
            self.stash.push((k, reply));
            if self.stash.len() > STASH {
                if let (_, Ok((i, t))) = self.stash.remove(0) {
                    self.spare.extend([i, t]);
                }
            }
        }
    }

    fn take(&mut self, reply: Reply, input: &mut Vec<f32>, target: &mut Vec<f32>) -> Result<(), DataError> {
        let (i, t) = reply?;
        self.spare.push(std::mem::replace(input, i));
        self.spare.push(std::mem::replace(target, t));
        Ok(())
    }
}

/// Batches a [`Prefetcher`] keeps that were announced but taken out of order.
const STASH: usize = 4;

impl Prefetcher {
    /// Stops the reading thread once it has answered what was asked, and gives the source back (`None` if the
    /// thread was already stopped).
    pub fn finish(&mut self) -> Option<StreamedTrajectories> {
        self.requests = None;
        self.worker.take().and_then(|w| w.join().ok())
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What one rank's streamed loading did over a whole run (`stream-rank-RRRR.json` in the run directory).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamReport {
    pub rank: usize,
    pub stats: StreamStats,
    /// The samples this rank read from (global indices).
    pub samples_read: Vec<Range<usize>>,
    /// The cache's budget in bytes.
    pub budget: usize,
}

impl StreamedTrajectories {
    /// This rank's report.
    pub fn report(&self, rank: usize) -> StreamReport {
        StreamReport { rank, stats: self.stats, samples_read: self.samples_read(), budget: self.budget }
    }
}
