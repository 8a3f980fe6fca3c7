//! Streamed trajectories give the windows and normalisation statistics of the in-memory loader bit for bit,
//! read the file in whole time chunks, keep their cache within its byte budget, and refuse bad data by name.

use std::path::Path;

use ansatz_cluster::SingleProcess;
use ansatz_datasets::schema::{Field, GridType, Layout, ParameterInfo, Precision};
use ansatz_datasets::writer::DatasetWriter;
use ansatz_training::data::{DataFiles, Normalisation, Trajectories, WindowSpec, Windows};
use ansatz_training::stream::{self, FrameSource, Prefetcher, StreamedTrajectories};
use std::sync::Arc;

const NT: usize = 10;
const NX: usize = 6;
const NY: usize = 4;
const CHUNK: usize = 3;

/// Two fields stored as f32 (so both loaders convert the same values), time chunks of 3 levels.
fn write(path: &Path, samples: usize, poison: Option<(usize, usize)>) {
    write_part(path, 0..samples, poison);
}

/// Samples `samples` (global indices; a shard when they do not start at 0).
fn write_part(path: &Path, part: std::ops::Range<usize>, poison: Option<(usize, usize)>) {
    let samples = part.len();
    let layout = Layout {
        pde: "burgers2d".into(),
        fields: vec![
            Field { name: "u".into(), long_name: "velocity, x component".into() },
            Field { name: "v".into(), long_name: "velocity, y component".into() },
        ],
        parameters: vec![ParameterInfo { name: "nu".into(), long_name: "viscosity".into(), simulation: true }],
        samples,
        first_sample: part.start as u64,
        times: (0..NT).map(|t| t as f64 * 0.1).collect(),
        x: (0..NX).map(|i| (i as f64 + 0.5) / NX as f64).collect(),
        y: Some((0..NY).map(|j| (j as f64 + 0.5) / NY as f64).collect()),
        z: None,
        grid_type: GridType::CellCentered,
        extent: vec![1.0, 1.0],
        bc: vec!["periodic".into(), "periodic".into()],
        precision: Precision::F32,
        compression: 1,
        time_chunk: CHUNK,
        text: vec![],
        seed: Some(1),
        context_frames: 1,
    };
    let mut w = DatasetWriter::create(path, &layout, false).unwrap();
    let n = NX * NY;
    for (local, s) in part.enumerate() {
        let mut data: Vec<f64> =
            (0..NT * 2 * n).map(|i| ((s * 7919 + i) as f64 * 0.37).sin() * (1.0 + s as f64)).collect();
        if let Some((ps, pt)) = poison
            && ps == s
        {
            data[pt * 2 * n + n + 4] = f64::NAN;
        }
        w.write_sample(local, &data, &[0.01]).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn streamed_windows_and_statistics_equal_the_in_memory_ones_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.nc");
    write(&path, 7, None);
    let samples = 1..7;
    let memory = Trajectories::load(&path, samples.clone()).unwrap();
    let frame_bytes = 2 * NX * NY * 4;
    let block_bytes = CHUNK * frame_bytes;
    // room for two blocks of the 6 × 4 in the file: most windows evict
    let mut streamed = StreamedTrajectories::open(&path, samples.clone(), 2 * block_bytes).unwrap();
    assert_eq!((streamed.samples(), streamed.times(), streamed.channels()), (6, NT, 2));

    let a = Normalisation::fit(&memory, 0..4);
    let b = stream::fit(&mut streamed, 0..4).unwrap();
    assert_eq!(a, b, "the statistics of one streamed pass");

    let spec = WindowSpec { history: 2, horizon: 3, stride: 1 };
    let windows = Windows::new(&memory, 0..6, spec).unwrap();
    // a shuffled order, in batches of 5
    let order: Vec<usize> = (0..windows.len()).map(|i| (i * 17 + 3) % windows.len()).collect();
    let (mut mi, mut mt, mut si, mut st) = (vec![], vec![], vec![], vec![]);
    for batch in order.chunks(5) {
        windows.gather(&memory, batch, &mut mi, &mut mt);
        stream::gather(&windows, &mut streamed, batch, &mut si, &mut st).unwrap();
        assert!(mi.iter().zip(&si).all(|(x, y)| x.to_bits() == y.to_bits()) && mi.len() == si.len());
        assert!(mt.iter().zip(&st).all(|(x, y)| x.to_bits() == y.to_bits()) && mt.len() == st.len());
        // the in-memory source through the same trait gives the same too
        let (mut ti, mut tt) = (vec![], vec![]);
        stream::gather(&windows, &mut &memory, batch, &mut ti, &mut tt).unwrap();
        assert_eq!((ti, tt), (mi.clone(), mt.clone()));
    }
    let s = streamed.stats();
    assert!(s.peak_cached_bytes <= 2 * block_bytes, "{s:?}");
    assert_eq!(s.values_read % (2 * NX * NY), 0);
    assert!(s.blocks_read > 6 * NT.div_ceil(CHUNK), "a small budget re-reads evicted blocks: {s:?}");

    // with room for everything each block is read once
    let mut roomy = StreamedTrajectories::open(&path, samples, usize::MAX).unwrap();
    for batch in order.chunks(5) {
        stream::gather(&windows, &mut roomy, batch, &mut si, &mut st).unwrap();
    }
    let s = roomy.stats();
    assert_eq!(s.blocks_read, 6 * NT.div_ceil(CHUNK), "{s:?}");
    assert!(s.hits > 0);
}

#[test]
fn bad_data_and_requests_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.nc");
    write(&path, 3, Some((2, 4)));
    let mut s = StreamedTrajectories::open(&path, 0..3, 1 << 20).unwrap();
    let mut frame = vec![0f32; 2 * NX * NY];
    assert!(s.frame_into(1, 4, &mut frame).is_ok(), "clean samples stream");
    let err = s.frame_into(2, 5, &mut frame).unwrap_err().to_string();
    assert!(err.contains("nan.nc") && err.contains("'v'") && err.contains("sample 2, time level 4"), "{err}");
    assert!(s.frame_into(3, 0, &mut frame).unwrap_err().to_string().contains("outside"));
    let err = StreamedTrajectories::open(&path, 0..9, 1 << 20).err().unwrap().to_string();
    assert!(err.contains("3 complete samples"), "{err}");
    let err = StreamedTrajectories::open(&dir.path().join("absent.nc"), 0..1, 1).err().unwrap().to_string();
    assert!(err.contains("absent.nc"), "{err}");
}

/// Two shards and their manifest, holding the samples of `write(…, 7, None)`.
fn write_sharded(dir: &Path) -> std::path::PathBuf {
    write_part(&dir.join("d.rank-0000.nc"), 0..3, None);
    write_part(&dir.join("d.rank-0001.nc"), 3..7, None);
    let manifest = dir.join("d.manifest.json");
    let files = [("d.rank-0000.nc".to_string(), 0, 3), ("d.rank-0001.nc".to_string(), 3, 4)];
    ansatz_datasets::manifest::write_manifest(&manifest, "burgers2d", 7, &files).unwrap();
    manifest
}

#[test]
fn a_manifest_of_shards_reads_like_the_merged_file() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single.nc");
    write(&single, 7, None);
    let manifest = write_sharded(dir.path());
    let a = Trajectories::load(&single, 0..7).unwrap();
    let b = Trajectories::load(&manifest, 0..7).unwrap();
    assert_eq!(a.values().len(), b.values().len());
    assert!(a.values().iter().zip(b.values()).all(|(x, y)| x.to_bits() == y.to_bits()));
    // a window of samples across the shard boundary, streamed with a small cache
    let mut st = StreamedTrajectories::open(&manifest, 2..6, 2 * CHUNK * 2 * NX * NY * 4).unwrap();
    let mut frame = vec![0f32; 2 * NX * NY];
    for s in 0..4 {
        for t in 0..NT {
            st.frame_into(s, t, &mut frame).unwrap();
            assert_eq!(frame.as_slice(), a.frame(s + 2, t), "sample {}, time {t}", s + 2);
        }
    }
    let (n1, tau1) = stream::statistics(&mut &a, 0..5, &SingleProcess).unwrap();
    let mut whole = StreamedTrajectories::open(&manifest, 0..7, 1 << 20).unwrap();
    let (n2, tau2) = stream::statistics(&mut whole, 0..5, &SingleProcess).unwrap();
    assert_eq!((n1, tau1.to_bits()), (n2, tau2.to_bits()));

    // checksums: verified on request, a changed shard named
    let files = DataFiles::open(&manifest).unwrap();
    files.verify_checksums(&SingleProcess).unwrap();
    let shard = dir.path().join("d.rank-0001.nc");
    let mut bytes = std::fs::read(&shard).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    std::fs::write(&shard, &bytes).unwrap();
    let err = files.verify_checksums(&SingleProcess).unwrap_err().to_string();
    assert!(err.contains("d.rank-0001.nc") && err.contains("checksum"), "{err}");
    // a missing shard
    std::fs::remove_file(dir.path().join("d.rank-0000.nc")).unwrap();
    let err = DataFiles::open(&manifest).err().unwrap().to_string();
    assert!(err.contains("d.rank-0000.nc") && err.contains("missing"), "{err}");

    // a shard removed under a reader: the next read from it names the shard and the sample
    let again = tempfile::tempdir().unwrap();
    let manifest = write_sharded(again.path());
    let mut st = StreamedTrajectories::open(&manifest, 0..7, 1 << 20).unwrap();
    st.frame_into(5, 0, &mut frame).unwrap();
    std::fs::remove_file(again.path().join("d.rank-0000.nc")).unwrap();
    st.frame_into(5, 1, &mut frame).expect("the other shard reads on");
    let err = st.frame_into(1, 0, &mut frame).unwrap_err().to_string();
    assert!(err.contains("d.rank-0000.nc") && err.contains("sample 1"), "{err}");
}

#[test]
fn a_file_changed_while_streaming_is_refused_with_the_file_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.nc");
    write(&path, 4, None);
    let block = CHUNK * 2 * NX * NY * 4;
    let mut st = StreamedTrajectories::open(&path, 0..4, block).unwrap();
    let mut frame = vec![0f32; 2 * NX * NY];
    st.frame_into(0, 0, &mut frame).unwrap();
    // truncated under the reader
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    st.frame_into(0, 1, &mut frame).expect("a cached block needs no read");
    let err = st.frame_into(2, 7, &mut frame).unwrap_err().to_string();
    assert!(err.contains("d.nc") && err.contains("changed") && err.contains("sample 2"), "{err}");
    // restored (a new modification time): a fresh reader goes on
    std::fs::write(&path, &bytes).unwrap();
    let mut again = StreamedTrajectories::open(&path, 0..4, block).unwrap();
    again.frame_into(2, 7, &mut frame).unwrap();
}

#[test]
fn the_prefetching_thread_serves_what_a_direct_gather_does_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.nc");
    write(&path, 5, Some((4, 6)));
    let memory = Trajectories::load(&path, 0..4).unwrap();
    let spec = WindowSpec { history: 2, horizon: 2, stride: 1 };
    let train = Arc::new(Windows::new(&memory, 0..4, spec).unwrap());
    let poisoned = Arc::new(Windows::with_times(NT, 5, 4..5, spec, &path).unwrap());
    let norm = Normalisation::fit(&memory, 0..4);
    let st = StreamedTrajectories::open(&path, 0..5, 2 * CHUNK * 2 * NX * NY * 4).unwrap();
    let mut pf = Prefetcher::start(st, vec![train.clone(), poisoned], Some(norm.clone())).unwrap();
    let mut normalised = memory.clone();
    norm.apply(normalised.values_mut(), NX * NY);
    let batches: Vec<Vec<usize>> = (0..12).map(|i| (0..3).map(|j| (i * 5 + j * 7) % train.len()).collect()).collect();
    let (mut i, mut t, mut ri, mut rt) = (vec![], vec![], vec![], vec![]);
    for (k, b) in batches.iter().enumerate() {
        match k % 3 {
            0 => {}                                              // not announced
            1 => pf.request(0, b).unwrap(),                      // announced just before
            _ => pf.request(0, &batches[(k + 1) % 12]).unwrap(), // the next announced, this one not
        }
        pf.gather(0, b, &mut i, &mut t).unwrap();
        train.gather(&normalised, b, &mut ri, &mut rt);
        assert!(i.iter().zip(&ri).all(|(x, y)| x.to_bits() == y.to_bits()) && i.len() == ri.len(), "batch {k}");
        assert!(t.iter().zip(&rt).all(|(x, y)| x.to_bits() == y.to_bits()) && t.len() == rt.len(), "batch {k}");
    }
    // an error reaches the batch it belongs to, not an announced one after it
    pf.request(1, &[4]).unwrap();
    pf.request(0, &batches[0]).unwrap();
    let err = pf.gather(1, &[4], &mut i, &mut t).unwrap_err().to_string();
    assert!(err.contains("sample 4, time level 6"), "{err}");
    pf.gather(0, &batches[0], &mut i, &mut t).unwrap();
    assert!(pf.stats().blocks_read > 0);
}
