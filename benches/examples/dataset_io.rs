//! Resident memory when reading one sample window of a multi-gigabyte dataset.
//!
//! `cargo run --release -p ansatz-benches --example dataset_io -- write PATH [samples]` writes a synthetic 1D
//! dataset (x = 4096, 1001 time levels, f32, uncompressed: 16.4 MB per sample; 128 samples = 2.1 GB);
//! `... -- read PATH` reads the window of one sample (all times) in a fresh process and reports its peak RSS.

use std::time::Instant;

use ansatz_datasets::reader::Dataset;
use ansatz_datasets::schema::{Field, GridType, Layout, ParameterInfo, Precision};
use ansatz_datasets::writer::DatasetWriter;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(args.get(2).expect("usage: dataset_io write|read PATH [samples]"));
    match args[1].as_str() {
        "write" => {
            let samples: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(128);
            let (nx, nt) = (4096, 1001);
            let layout = Layout {
                pde: "burgers1d".into(),
                fields: vec![Field { name: "u".into(), long_name: "velocity".into() }],
                parameters: vec![ParameterInfo {
                    name: "nu".into(),
                    long_name: "kinematic viscosity".into(),
                    simulation: true,
                }],
                samples,
                first_sample: 0,
                times: (0..nt).map(|t| t as f64 * 1e-3).collect(),
                x: (0..nx).map(|i| (i as f64 + 0.5) / nx as f64).collect(),
                y: None,
                z: None,
                grid_type: GridType::CellCentered,
                extent: vec![1.0],
                bc: vec!["periodic".into()],
                precision: Precision::F32,
                compression: 0,
                time_chunk: 100,
                text: vec![("title".into(), "synthetic I/O benchmark".into())],
                seed: None,
                context_frames: 1,
            };
            let mut w = DatasetWriter::create(&path, &layout, true).unwrap();
            let t = Instant::now();
            let mut data = vec![0.0; nt * nx];
            for s in 0..samples {
                for (k, v) in data.iter_mut().enumerate() {
                    *v = ((k + s) as f64 * 1e-4).sin();
                }
                w.write_sample(s, &data, &[0.01]).unwrap();
            }
            w.finish().unwrap();
            let size = std::fs::metadata(&path).unwrap().len();
            println!("wrote {} ({:.2} GB) in {:.1} s", path.display(), size as f64 / 1e9, t.elapsed().as_secs_f64());
        }
        "read" => {
            let t = Instant::now();
            let ds = Dataset::open(&path).unwrap();
            let mid = ds.samples_complete / 2;
            let w = ds.read("u", mid..mid + 1, 0..ds.times.len()).unwrap();
            let checksum: f64 = w.iter().sum();
            println!(
                "read sample {mid} ({} values, {:.1} MB as f64) of a {:.2} GB file in {:.3} s; peak RSS {:.1} MiB (checksum {checksum:.3})",
                w.len(),
                w.len() as f64 * 8.0 / 1e6,
                std::fs::metadata(&path).unwrap().len() as f64 / 1e9,
                t.elapsed().as_secs_f64(),
                peak_rss_mib()
            );
        }
        other => panic!("unknown mode {other}"),
    }
}
