//! Streamed trajectories give the windows and normalisation statistics of the in-memory loader bit for bit,
//! read the file in whole time chunks, keep their cache within its byte budget, and refuse bad data by name.

use std::path::Path;

use ansatz_datasets::schema::{Field, GridType, Layout, ParameterInfo, Precision};
use ansatz_datasets::writer::DatasetWriter;
use ansatz_training::data::{Normalisation, Trajectories, WindowSpec, Windows};
use ansatz_training::stream::{self, FrameSource, StreamedTrajectories};

const NT: usize = 10;
const NX: usize = 6;
const NY: usize = 4;
const CHUNK: usize = 3;

/// Two fields stored as f32 (so both loaders convert the same values), time chunks of 3 levels.
fn write(path: &Path, samples: usize, poison: Option<(usize, usize)>) {
    let layout = Layout {
        pde: "burgers2d".into(),
        fields: vec![
            Field { name: "u".into(), long_name: "velocity, x component".into() },
            Field { name: "v".into(), long_name: "velocity, y component".into() },
        ],
        parameters: vec![ParameterInfo { name: "nu".into(), long_name: "viscosity".into(), simulation: true }],
        samples,
        first_sample: 0,
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
    for s in 0..samples {
        let mut data: Vec<f64> =
            (0..NT * 2 * n).map(|i| ((s * 7919 + i) as f64 * 0.37).sin() * (1.0 + s as f64)).collect();
        if let Some((ps, pt)) = poison
            && ps == s
        {
            data[pt * 2 * n + n + 4] = f64::NAN;
        }
        w.write_sample(s, &data, &[0.01]).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn streamed_windows_and_statistics_equal_the_in_memory_ones_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.nc");
    write(&path, 7, None);
    let samples = 1..7;
    let mut memory = Trajectories::load(&path, samples.clone()).unwrap();
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
        stream::gather(&windows, &mut memory, batch, &mut ti, &mut tt).unwrap();
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
