//! Training data from Ansatz datasets: whole trajectories held in memory as f32, a split by sample, windows of
//! `history` input frames followed by `horizon` target frames, and per-channel normalisation statistics fitted on
//! the training samples only (stored in the run so that rollouts undo exactly the same transform).

use ansatz_datasets::DatasetError;
use ansatz_datasets::reader::Dataset;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// An error while preparing training data.
#[derive(Debug)]
pub enum DataError {
    /// The dataset could not be read.
    Dataset(DatasetError),
    /// The data do not fit the request (too few samples or time levels, non-finite values, ...).
    Invalid { origin: String, message: String },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Dataset(e) => write!(f, "{e}"),
            DataError::Invalid { origin, message } => write!(f, "{origin}: {message}"),
        }
    }
}

impl std::error::Error for DataError {}

impl From<DatasetError> for DataError {
    fn from(e: DatasetError) -> Self {
        DataError::Dataset(e)
    }
}

fn invalid(origin: &str, message: impl Into<String>) -> DataError {
    DataError::Invalid { origin: origin.to_string(), message: message.into() }
}

/// The size and modification time of a file when it was opened: a read that finds them changed refuses to go on
/// (the file was rewritten, truncated or replaced under the reader).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> Result<Self, DataError> {
        let meta = std::fs::metadata(path).map_err(|e| invalid(&path.display().to_string(), e.to_string()))?;
        Ok(Stamp { len: meta.len(), modified: meta.modified().ok() })
    }
}

/// One file of a dataset: a whole dataset file, or a shard holding samples `first..first + samples`.
pub struct Shard {
    pub ds: Dataset,
    pub first: usize,
    pub samples: usize,
    stamp: Stamp,
}

/// A dataset as training and rollouts read it: one file, or the shards of a manifest (`NAME.manifest.json`,
/// written by `mpirun … ansatz generate`) read in place. Samples are numbered globally; every shard must agree
/// with the first on fields, time levels and grid.
pub struct DataFiles {
    pub shards: Vec<Shard>,
    /// The path given (file or manifest), for messages.
    pub origin: String,
    /// Complete samples in all.
    pub samples: usize,
    manifest: Option<(PathBuf, ansatz_datasets::manifest::Manifest)>,
}

impl DataFiles {
    /// Opens the dataset file or manifest at `path`. Shards are checked for presence, size and agreement, not
    /// for their checksums (see [`DataFiles::verify_checksums`]). Refuses static datasets.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let origin = path.display().to_string();
        let (shards, manifest) = if ansatz_datasets::manifest::is_manifest(path) {
            let (m, paths) = ansatz_datasets::manifest::read_manifest_sizes(path)?;
            let mut shards = vec![];
            for (entry, p) in m.shards.iter().zip(&paths) {
                let ds = Dataset::open(p)?;
                if ds.samples_complete != entry.samples {
                    return Err(invalid(
                        &p.display().to_string(),
                        format!(
                            "{} complete samples, the manifest {} says {}",
                            ds.samples_complete, origin, entry.samples
                        ),
                    ));
                }
                let stamp = Stamp::of(p)?;
                shards.push(Shard { ds, first: entry.first_sample, samples: entry.samples, stamp });
            }
            (shards, Some((path.to_path_buf(), m)))
        } else {
            let ds = Dataset::open(path)?;
            let stamp = Stamp::of(path)?;
            let samples = ds.samples_complete;
            (vec![Shard { ds, first: 0, samples, stamp }], None)
        };
        let Some(head) = shards.first() else {
            return Err(invalid(&origin, "the manifest lists no shards"));
        };
        if head.ds.is_static() {
            return Err(invalid(&origin, "a static dataset has no trajectories to train a time stepper on"));
        }
        for s in &shards[1..] {
            let (a, b) = (&head.ds, &s.ds);
            if a.fields != b.fields || a.times != b.times || a.x != b.x || a.y != b.y || a.z != b.z || a.pde != b.pde {
                return Err(invalid(
                    &b.path().display().to_string(),
                    format!("its fields, time levels or grid differ from those of {}", a.path().display()),
                ));
            }
        }
        let samples = shards.iter().map(|s| s.samples).sum();
        Ok(DataFiles { shards, origin, samples, manifest })
    }

    /// The first file (fields, time levels, grid and attributes are those of every shard).
    pub fn head(&self) -> &Dataset {
        &self.shards[0].ds
    }

    /// The per-sample variable `name` of every complete sample, shards in order.
    pub fn parameter(&self, name: &str) -> Result<Vec<f64>, ansatz_datasets::DatasetError> {
        let mut all = Vec::with_capacity(self.samples);
        for shard in &self.shards {
            all.extend(shard.ds.parameter(name)?.into_iter().take(shard.samples));
        }
        Ok(all)
    }

    /// Grid sizes, slowest axis first.
    pub fn space(&self) -> Vec<usize> {
        let ds = self.head();
        [ds.z.as_ref().map(Vec::len), ds.y.as_ref().map(Vec::len), Some(ds.x.len())].into_iter().flatten().collect()
    }

    /// Refuses `samples` beyond the complete ones.
    pub fn check_samples(&self, samples: &Range<usize>) -> Result<(), DataError> {
        if samples.is_empty() || samples.end > self.samples {
            return Err(invalid(
                &self.origin,
                format!("samples {samples:?} requested, the dataset holds {} complete samples", self.samples),
            ));
        }
        Ok(())
    }

    /// Verifies the checksums of the manifest's shards (nothing for a single file): the shards are split between
    /// the ranks of `comm`, each reading only its share, and a mismatch anywhere ends every rank.
    pub fn verify_checksums(&self, comm: &dyn ansatz_cluster::Communicator) -> Result<(), DataError> {
        let Some((path, m)) = &self.manifest else { return Ok(()) };
        let mut failure = None;
        for i in ansatz_cluster::partition(self.shards.len(), comm.size(), comm.rank()) {
            if let Err(e) = ansatz_datasets::manifest::verify_checksum(path, &m.shards[i], self.shards[i].ds.path()) {
                failure = Some(e);
                break;
            }
        }
        let mut flag = [if failure.is_some() { 1.0 } else { 0.0 }];
        comm.all_reduce_sum_f64(&mut flag);
        match failure {
            Some(e) => Err(e.into()),
            None if flag[0] > 0.0 => {
                Err(invalid(&self.origin, "a shard does not match its checksum (another rank's message names it)"))
            }
            None => Ok(()),
        }
    }

    /// The shard holding global sample `s`, and `s` within it.
    fn locate(&self, s: usize) -> Option<(&Shard, usize)> {
        let i = self.shards.partition_point(|sh| sh.first + sh.samples <= s);
        self.shards.get(i).filter(|sh| s >= sh.first && s < sh.first + sh.samples).map(|sh| (sh, s - sh.first))
    }

    /// Whether the file holding global sample `s` is still as it was when opened (size and modification time);
    /// an error names the file and the sample otherwise.
    pub fn unchanged(&self, s: usize) -> Result<(), DataError> {
        let (shard, _) = self.shard_of(s)?;
        Self::check(shard, &format!("sample {s}"))
    }

    fn shard_of(&self, s: usize) -> Result<(&Shard, usize), DataError> {
        self.locate(s).ok_or_else(|| invalid(&self.origin, format!("sample {s} beyond the {} samples", self.samples)))
    }

    fn check(shard: &Shard, where_: &str) -> Result<(), DataError> {
        let path = shard.ds.path();
        let name = path.display().to_string();
        match Stamp::of(path) {
            Ok(now) if now == shard.stamp => Ok(()),
            Ok(_) => Err(invalid(
                &name,
                format!(
                    "the file changed while it was being read (its size or modification time differs from when it \
                     was opened), at {where_}; restore it and resume"
                ),
            )),
            Err(e) => Err(invalid(&name, format!("{e}, at {where_}"))),
        }
    }

    /// `field` of global sample `s` at time levels `times`, shape `(1, times, space...)`. A file that changed
    /// since it was opened, or a read that fails, is reported with the file, the variable and the sample.
    pub fn read(&self, field: &str, s: usize, times: Range<usize>) -> Result<ndarray::ArrayD<f64>, DataError> {
        let mut buf = vec![];
        self.read_into(field, s, times.clone(), &mut buf)?;
        let mut shape = vec![1, times.len()];
        shape.extend(self.space());
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), buf).map_err(|e| invalid(&self.origin, e.to_string()))
    }

    /// [`DataFiles::read`] into `buf` (resized; layout `(times, space...)`), reusing its memory.
    pub fn read_into(&self, field: &str, s: usize, times: Range<usize>, buf: &mut Vec<f64>) -> Result<(), DataError> {
        let (shard, local) = self.shard_of(s)?;
        let name = shard.ds.path().display().to_string();
        let where_ = format!("variable '{field}', sample {s}, time levels {}..{}", times.start, times.end);
        Self::check(shard, &where_)?;
        shard.ds.read_into(field, local..local + 1, times, buf).map_err(|e| invalid(&name, format!("{where_}: {e}")))
    }
}

/// The error for a non-finite value of `field` at `(sample, time)`.
pub(crate) fn not_finite(origin: &str, field: &str, sample: usize, time: usize) -> DataError {
    invalid(
        origin,
        format!("variable '{field}' is not finite (or overflows f32) at sample {sample}, time level {time}"),
    )
}

/// Trajectories in memory, layout `(sample, time, channel, space...)`, one channel per field variable.
#[derive(Clone, Debug)]
pub struct Trajectories {
    data: Vec<f32>,
    samples: usize,
    times: usize,
    channels: usize,
    space: Vec<usize>,
    /// Field names, one per channel.
    pub fields: Vec<String>,
    /// Where the data came from (a file path, or "memory").
    pub origin: String,
}

impl Trajectories {
    /// Wraps values of shape `(samples, times, channels, space...)` given flat in that order. Refuses non-finite
    /// values, naming the sample, time level and channel.
    pub fn from_values(
        values: Vec<f32>,
        samples: usize,
        times: usize,
        fields: Vec<String>,
        space: Vec<usize>,
    ) -> Result<Self, DataError> {
        let channels = fields.len();
        let frame = channels * space.iter().product::<usize>();
        if channels == 0 || frame == 0 || values.len() != samples * times * frame {
            return Err(invalid(
                "memory",
                format!(
                    "{} values do not fill {samples} samples × {times} times × {channels} channels × {space:?}",
                    values.len()
                ),
            ));
        }
        let t = Trajectories { data: values, samples, times, channels, space, fields, origin: "memory".into() };
        t.check_finite()?;
        Ok(t)
    }

    /// Reads every field of `samples` from the dataset file or manifest at `path` (all time levels).
    pub fn load(path: &Path, samples: Range<usize>) -> Result<Self, DataError> {
        Self::load_from(&DataFiles::open(path)?, samples)
    }

    /// Reads every field of `samples` (global indices) from open dataset files.
    pub fn load_from(files: &DataFiles, samples: Range<usize>) -> Result<Self, DataError> {
        files.check_samples(&samples)?;
        let ds = files.head();
        let space = files.space();
        let (ns, nt, nc) = (samples.len(), ds.times.len(), ds.fields.len());
        let n = space.iter().product::<usize>();
        let mut data = vec![0f32; ns * nt * nc * n];
        for (c, field) in ds.fields.iter().enumerate() {
            for (i, s) in samples.clone().enumerate() {
                let block = files.read(field, s, 0..nt)?;
                let flat = block.as_slice().ok_or_else(|| invalid(&files.origin, "non-contiguous read"))?;
                for t in 0..nt {
                    let dst = ((i * nt + t) * nc + c) * n;
                    for (d, &v) in data[dst..dst + n].iter_mut().zip(&flat[t * n..(t + 1) * n]) {
                        *d = v as f32;
                    }
                }
            }
        }
        let t = Trajectories {
            data,
            samples: ns,
            times: nt,
            channels: nc,
            space,
            fields: ds.fields.clone(),
            origin: files.origin.clone(),
        };
        t.check_finite()?;
        Ok(t)
    }

    fn check_finite(&self) -> Result<(), DataError> {
        let n = self.space_len();
        if let Some(i) = self.data.iter().position(|v| !v.is_finite()) {
            let frame = i / n;
            let (c, st) = (frame % self.channels, frame / self.channels);
            return Err(not_finite(&self.origin, &self.fields[c], st / self.times, st % self.times));
        }
        Ok(())
    }

    pub fn samples(&self) -> usize {
        self.samples
    }
    pub fn times(&self) -> usize {
        self.times
    }
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Grid sizes, slowest axis first.
    /// All values, layout `(sample, time, channel, space...)`.
    pub fn values(&self) -> &[f32] {
        &self.data
    }
    /// All values, mutable (e.g. to normalise in place).
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn space(&self) -> &[usize] {
        &self.space
    }
    pub fn space_len(&self) -> usize {
        self.space.iter().product()
    }
    /// Values of one time level across channels, layout `(channel, space...)`.
    pub fn frame(&self, sample: usize, time: usize) -> &[f32] {
        let f = self.channels * self.space_len();
        let start = (sample * self.times + time) * f;
        &self.data[start..start + f]
    }
}

/// Train, validation and test samples as contiguous ranges. Samples of a dataset are independent draws (sample i
/// depends only on the seed and i), so contiguous ranges are an unbiased split and stay the same when a file grows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Range<usize>,
    pub validation: Range<usize>,
    pub test: Range<usize>,
}

impl Split {
    /// Splits `samples` by the given fractions of validation and test samples (each rounded, at least one when
    /// the fraction is positive); the rest are training samples, and there must be at least one.
    pub fn by_fraction(samples: usize, validation: f64, test: f64) -> Result<Self, DataError> {
        let count = |f: f64, key: &str| -> Result<usize, DataError> {
            if !(0.0..1.0).contains(&f) {
                return Err(invalid("[data]", format!("`{key}` must lie in [0, 1), got {f}")));
            }
            Ok(if f > 0.0 { ((f * samples as f64).round() as usize).max(1) } else { 0 })
        };
        let (nv, nt) = (count(validation, "validation")?, count(test, "test")?);
        if nv + nt >= samples {
            return Err(invalid(
                "[data]",
                format!("{samples} samples leave none for training after {nv} validation and {nt} test samples"),
            ));
        }
        let train = 0..samples - nv - nt;
        let validation = train.end..train.end + nv;
        let test = validation.end..samples;
        Ok(Split { train, validation, test })
    }
}

/// How training pairs are cut from trajectories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Input frames H.
    pub history: usize,
    /// Target frames K (the unrolled steps of autoregressive training).
    pub horizon: usize,
    /// Offset between successive window starts.
    pub stride: usize,
}

/// Every window `(sample, first time level)` of a set of samples.
#[derive(Clone, Debug)]
pub struct Windows {
    spec: WindowSpec,
    index: Vec<(usize, usize)>,
}

impl Windows {
    /// The windows of `samples` (indices into `traj`).
    pub fn new(traj: &Trajectories, samples: Range<usize>, spec: WindowSpec) -> Result<Self, DataError> {
        Self::build(traj.times(), traj.samples(), samples, spec, &traj.origin)
    }

    /// The windows of `samples` of trajectories with `times` levels, `loaded` samples in all, from `origin`.
    pub fn with_times(
        times: usize,
        loaded: usize,
        samples: Range<usize>,
        spec: WindowSpec,
        origin: &Path,
    ) -> Result<Self, DataError> {
        Self::build(times, loaded, samples, spec, &origin.display().to_string())
    }

    fn build(
        times: usize,
        loaded: usize,
        samples: Range<usize>,
        spec: WindowSpec,
        origin: &str,
    ) -> Result<Self, DataError> {
        if spec.history == 0 || spec.horizon == 0 || spec.stride == 0 {
            return Err(invalid("[data]", "`history`, `horizon` and `stride` must all be at least 1"));
        }
        let span = spec.history + spec.horizon;
        if span > times {
            return Err(invalid(
                origin,
                format!(
                    "a window of {} + {} frames needs more than the {} time levels",
                    spec.history, spec.horizon, times
                ),
            ));
        }
        if samples.end > loaded {
            return Err(invalid(origin, format!("samples {samples:?} beyond the {} loaded", loaded)));
        }
        let index = samples.flat_map(|s| (0..=times - span).step_by(spec.stride).map(move |t| (s, t))).collect();
        Ok(Windows { spec, index })
    }

    /// Only the first window of each sample: the one starting at its first frame, the context a rollout starts
    /// from.
    pub fn first_frames(mut self) -> Self {
        self.index.retain(|&(_, t)| t == 0);
        self
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    /// `(sample, first time level)` of window `i`.
    pub fn origin(&self, i: usize) -> (usize, usize) {
        self.index[i]
    }

    /// Copies the windows `batch` into `input` (layout `(batch, history·channel, space...)`) and `target`
    /// (layout `(batch, horizon, channel, space...)`), resizing the buffers only when the batch size changes.
    pub fn gather(&self, traj: &Trajectories, batch: &[usize], input: &mut Vec<f32>, target: &mut Vec<f32>) {
        let f = traj.channels() * traj.space_len();
        let copied: Result<(), std::convert::Infallible> = self.gather_with(f, batch, input, target, |s, t, dst| {
            dst.copy_from_slice(traj.frame(s, t));
            Ok(())
        });
        let Ok(()) = copied;
    }

    /// [`Windows::gather`] with frames of `frame_len` values from `frame_into(sample, time, dst)`.
    pub fn gather_with<E>(
        &self,
        frame_len: usize,
        batch: &[usize],
        input: &mut Vec<f32>,
        target: &mut Vec<f32>,
        mut frame_into: impl FnMut(usize, usize, &mut [f32]) -> Result<(), E>,
    ) -> Result<(), E> {
        let (f, h, k) = (frame_len, self.spec.history, self.spec.horizon);
        input.resize(batch.len() * h * f, 0.0);
        target.resize(batch.len() * k * f, 0.0);
        for (b, &w) in batch.iter().enumerate() {
            let (s, t0) = self.index[w];
            for j in 0..h {
                frame_into(s, t0 + j, &mut input[(b * h + j) * f..(b * h + j + 1) * f])?;
            }
            for j in 0..k {
                frame_into(s, t0 + h + j, &mut target[(b * k + j) * f..(b * k + j + 1) * f])?;
            }
        }
        Ok(())
    }
}

/// Per-channel affine normalisation `(x - mean) / scale`, fitted on training samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub fields: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Normalisation {
    /// Mean and standard deviation of each channel over `samples` (all time levels and grid points). A channel
    /// with (near) zero spread keeps scale 1 so that constant fields pass through unchanged. The sums are formed
    /// per sample and combined in sample order, as [`crate::stream::statistics`] does.
    pub fn fit(traj: &Trajectories, samples: Range<usize>) -> Self {
        match crate::stream::fit(&mut &*traj, samples) {
            Ok(n) => n,
            Err(e) => unreachable!("an in-memory source cannot fail: {e}"),
        }
    }

    /// The statistics from per-channel sums of values and of squares over `count` values per channel.
    pub fn from_sums(fields: Vec<String>, sum: &[f64], sq: &[f64], count: f64) -> Self {
        let mean: Vec<f64> = sum.iter().map(|s| s / count.max(1.0)).collect();
        let scale = (0..sum.len())
            .map(|c| {
                let var = (sq[c] / count.max(1.0) - mean[c] * mean[c]).max(0.0);
                let sd = var.sqrt();
                if sd > 1e-12 * (1.0 + mean[c].abs()) { sd } else { 1.0 }
            })
            .collect();
        Normalisation { fields, mean, scale }
    }

    /// Normalises frames in place; `values` is a sequence of `(channel, space)` frames with `space_len` points.
    pub fn apply(&self, values: &mut [f32], space_len: usize) {
        self.map(values, space_len, |v, m, s| ((v as f64 - m) / s) as f32);
    }

    /// Undoes [`Normalisation::apply`].
    pub fn invert(&self, values: &mut [f32], space_len: usize) {
        self.map(values, space_len, |v, m, s| (v as f64 * s + m) as f32);
    }

    fn map(&self, values: &mut [f32], space_len: usize, f: impl Fn(f32, f64, f64) -> f32) {
        let nc = self.mean.len();
        for (i, chunk) in values.chunks_mut(space_len).enumerate() {
            let c = i % nc;
            for v in chunk {
                *v = f(*v, self.mean[c], self.scale[c]);
            }
        }
    }

    /// Writes the statistics as JSON (to a temporary name, then renamed).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = PathBuf::from(format!("{}.partial", path.display()));
        std::fs::write(&tmp, serde_json::to_string_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }

    /// Reads statistics written by [`Normalisation::save`].
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| invalid(&origin, e.to_string()))?;
        let n: Normalisation = serde_json::from_str(&text).map_err(|e| invalid(&origin, e.to_string()))?;
        if n.mean.len() != n.fields.len() || n.scale.len() != n.fields.len() {
            return Err(invalid(&origin, "`mean` and `scale` need one value per field"));
        }
        if n.mean.iter().chain(&n.scale).any(|v| !v.is_finite()) || n.scale.iter().any(|&s| s <= 0.0) {
            return Err(invalid(&origin, "statistics must be finite with positive `scale`"));
        }
        Ok(n)
    }
}
