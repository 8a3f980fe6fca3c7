//! Every variable and attribute the writer declares comes back through the reader and through libnetcdf.

use ansatz_datasets::reader::Dataset;
use ansatz_datasets::schema::{Field, GridType, Layout, ParameterInfo, Precision};
use ansatz_datasets::writer::{DatasetWriter, partial_path};

fn layout(precision: Precision, two_d: bool) -> Layout {
    let nx = 6;
    Layout {
        pde: if two_d { "burgers2d" } else { "burgers1d" }.into(),
        fields: if two_d {
            vec![
                Field { name: "u".into(), long_name: "velocity, x component".into() },
                Field { name: "v".into(), long_name: "velocity, y component".into() },
            ]
        } else {
            vec![Field { name: "u".into(), long_name: "velocity".into() }]
        },
        parameters: vec![
            ParameterInfo { name: "nu".into(), long_name: "kinematic viscosity".into(), simulation: true },
            ParameterInfo {
                name: "solver_dt".into(),
                long_name: "internal time step of the solver".into(),
                simulation: false,
            },
        ],
        samples: 3,
        first_sample: 10,
        times: vec![0.0, 0.5, 1.0, 1.5],
        x: (0..nx).map(|i| (i as f64 + 0.5) / nx as f64).collect(),
        y: two_d.then(|| (0..4).map(|j| (j as f64 + 0.5) * 0.5).collect()),
        z: None,
        grid_type: GridType::CellCentered,
        extent: if two_d { vec![1.0, 2.0] } else { vec![1.0] },
        bc: if two_d { vec!["periodic".into(), "dirichlet".into()] } else { vec!["neumann".into()] },
        precision,
        compression: 4,
        time_chunk: 2,
        text: vec![("title".into(), "round trip".into()), ("history".into(), "test".into())],
        seed: Some(42),
        context_frames: 1,
    }
}

fn value(s: usize, t: usize, k: usize) -> f64 {
    (s as f64 + 1.0) * 0.1 + t as f64 + k as f64 * 1e-3 + 1.0 / 3.0
}

#[test]
fn round_trip_of_every_variable_and_attribute() {
    let dir = tempfile::tempdir().unwrap();
    for precision in [Precision::F32, Precision::F64] {
        for two_d in [false, true] {
            let l = layout(precision, two_d);
            let out = dir.path().join(format!("rt-{precision:?}-{two_d}.nc"));
            let mut w = DatasetWriter::create(&out, &l, false).unwrap();
            assert!(partial_path(&out).exists() && !out.exists());
            let (nt, fl) = (l.times.len(), l.frame_len());
            for s in 0..l.samples {
                let data: Vec<f64> = (0..nt * fl).map(|i| value(s, i / fl, i % fl)).collect();
                w.write_sample(s, &data, &[0.01 * (s + 1) as f64, 1e-3]).unwrap();
            }
            assert!(w.write_sample(3, &vec![0.0; nt * fl], &[0.0, 0.0]).is_err(), "a fourth sample must be refused");
            w.finish().unwrap();
            assert!(out.exists() && !partial_path(&out).exists());

            let ds = Dataset::open(&out).unwrap();
            assert_eq!(ds.pde, l.pde);
            assert_eq!((ds.samples, ds.samples_complete), (3, 3));
            assert_eq!(ds.times, l.times);
            assert_eq!(ds.x, l.x);
            assert_eq!(ds.y, l.y);
            assert_eq!(ds.extent, l.extent);
            assert_eq!(ds.grid_type, "cell_centered");
            assert_eq!(ds.parameters, ["nu"]);
            assert_eq!(ds.parameter("nu").unwrap(), [0.01, 0.02, 0.03]);
            assert_eq!(ds.parameter("solver_dt").unwrap(), [1e-3; 3]);
            let ns = l.space_len();
            for (k, f) in l.fields.iter().enumerate() {
                let arr = ds.read(&f.name, 0..3, 0..nt).unwrap();
                for s in 0..3 {
                    for t in 0..nt {
                        for i in 0..ns {
                            let got = arr.as_slice().unwrap()[(s * nt + t) * ns + i];
                            let want = value(s, t, k * ns + i);
                            let want = if precision == Precision::F32 { want as f32 as f64 } else { want };
                            assert_eq!(got, want, "{} s={s} t={t} i={i}", f.name);
                        }
                    }
                }
                // a window
                let win = ds.read(&f.name, 1..2, 2..4).unwrap();
                assert_eq!(win.shape()[..2], [1, 2]);
                assert_eq!(win.as_slice().unwrap()[0], arr.as_slice().unwrap()[(nt + 2) * ns]);
            }
            assert!(ds.read("u", 0..4, 0..1).is_err());
            assert!(ds.read("w", 0..1, 0..1).is_err());
            assert_eq!(ds.text_attribute("title").as_deref(), Some("round trip"));
            drop(ds);

            // attributes and coordinate metadata through libnetcdf directly
            let f = netcdf::open(&out).unwrap();
            let attr = |name: &str| f.attribute(name).unwrap().value().unwrap();
            use netcdf::AttributeValue as A;
            assert_eq!(attr("Conventions"), A::Str("CF-1.11".into()));
            assert_eq!(attr("samples_complete"), A::Longlong(3));
            assert_eq!(attr("seed"), A::Longlong(42));
            assert_eq!(attr("ansatz_schema"), A::Int(2));
            assert_eq!(attr("context_frames"), A::Int(1));
            assert_eq!(attr("n_spatial_dims"), A::Int(if two_d { 2 } else { 1 }));
            assert_eq!(attr("grid_type"), A::Str("cell_centered".into()));
            assert_eq!(attr("simulation_parameters"), A::Str("nu".into()));
            assert_eq!(attr("bc_x"), A::Str(l.bc[0].clone()));
            if two_d {
                assert_eq!(attr("bc_y"), A::Str("dirichlet".into()));
            }
            let sample: Vec<i64> = f.variable("sample").unwrap().get_values(..).unwrap();
            assert_eq!(sample, [10, 11, 12]);
            let x = f.variable("x").unwrap();
            assert!(x.attribute("axis").is_none(), "CF's axis X means longitude");
            assert_eq!(x.attribute_value("units").unwrap().unwrap(), A::Str("1".into()));
            let t = f.variable("t").unwrap();
            assert_eq!(t.dimensions().iter().map(|d| d.name()).collect::<Vec<_>>(), ["t"]);
            assert_eq!(t.attribute_value("units").unwrap().unwrap(), A::Str("1".into()));
            assert!(t.attribute("axis").is_none() && t.attribute("standard_name").is_none());
            assert!(f.dimension("time").is_none());
            assert_eq!(x.attribute_value("bounds").unwrap().unwrap(), A::Str("x_bnds".into()));
            let bnds: Vec<f64> = f.variable("x_bnds").unwrap().get_values(..).unwrap();
            assert!((bnds[0] - 0.0).abs() < 1e-15 && (bnds[1] - 1.0 / 6.0).abs() < 1e-15);
            let u = f.variable("u").unwrap();
            let mut chunk = vec![1, 2];
            if two_d {
                chunk.push(4);
            }
            chunk.push(6);
            assert_eq!(u.chunking().unwrap(), Some(chunk));
            assert_eq!(u.fill_value::<f64>().ok().flatten(), None, "dense data carry no _FillValue");
        }
    }
}

/// A file of dataset schema 1 as earlier versions wrote it: the time dimension and coordinate named `time`.
fn write_schema1(path: &std::path::Path, schema: i32) {
    let mut f = netcdf::create(path).unwrap();
    f.add_dimension("sample", 2).unwrap();
    f.add_dimension("time", 3).unwrap();
    f.add_dimension("x", 4).unwrap();
    f.add_attribute("Conventions", "CF-1.11").unwrap();
    f.add_attribute("pde", "burgers1d").unwrap();
    f.add_attribute("fields", "u").unwrap();
    f.add_attribute("grid_type", "cell_centered").unwrap();
    f.add_attribute("domain_extent", 1.0f64).unwrap();
    f.add_attribute("ansatz_schema", schema).unwrap();
    f.add_attribute("samples_complete", 2i64).unwrap();
    let mut v = f.add_variable::<i64>("sample", &["sample"]).unwrap();
    v.put_values(&[0i64, 1], ..).unwrap();
    let mut v = f.add_variable::<f64>("time", &["time"]).unwrap();
    v.put_attribute("axis", "T").unwrap();
    v.put_values(&[0.0, 0.5, 1.0], ..).unwrap();
    let mut v = f.add_variable::<f64>("x", &["x"]).unwrap();
    v.put_values(&[0.125, 0.375, 0.625, 0.875], ..).unwrap();
    let mut v = f.add_variable::<f32>("u", &["sample", "time", "x"]).unwrap();
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    v.put_values(&data, ..).unwrap();
}

#[test]
fn files_of_schema_1_are_still_read_and_newer_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.nc");
    write_schema1(&old, 1);
    let ds = Dataset::open(&old).unwrap();
    assert_eq!(ds.times, [0.0, 0.5, 1.0]);
    let u = ds.read("u", 1..2, 1..3).unwrap();
    assert_eq!(u.as_slice().unwrap(), [16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0]);
    // copying it (as `ansatz merge` does) writes the current schema
    let layout = ds.layout().unwrap();
    let copy = dir.path().join("copy.nc");
    let mut w = DatasetWriter::create(&copy, &layout, false).unwrap();
    for s in 0..2 {
        let (data, params) = ds.sample_data(s, &[]).unwrap();
        w.write_sample(s, &data, &params).unwrap();
    }
    w.finish().unwrap();
    let c = Dataset::open(&copy).unwrap();
    assert_eq!(c.times, ds.times);
    assert_eq!(c.read("u", 0..2, 0..3).unwrap(), ds.read("u", 0..2, 0..3).unwrap());
    assert!(netcdf::open(&copy).unwrap().dimension("t").is_some());

    let new = dir.path().join("new.nc");
    write_schema1(&new, 7);
    let err = Dataset::open(&new).err().expect("a newer schema is refused").to_string();
    assert!(err.contains("new.nc") && err.contains("schema 7") && err.contains("1 to 2"), "{err}");
}
