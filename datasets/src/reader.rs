//! Reading datasets by windows (a range of samples and time levels) without loading the file, and reading
//! initial conditions from files of any producer.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, IxDyn};

use crate::check::{Format, check_file};
use crate::error::{DatasetError, Result};
use crate::schema::{SCHEMA_VERSION, time_name};

/// zlib cannot compress better than about 1032:1; a window larger than this many times the file (plus 1 MiB)
/// cannot have been written and comes from a corrupt header.
const MAX_EXPANSION: u64 = 1100;

fn nc<T>(path: &Path, r: std::result::Result<T, netcdf::Error>) -> Result<T> {
    r.map_err(|e| DatasetError::nc(path, e))
}

fn text_attr(file: &netcdf::File, name: &str) -> Option<String> {
    match file.attribute(name)?.value().ok()? {
        netcdf::AttributeValue::Str(s) => Some(s),
        _ => None,
    }
}

fn int_attr(file: &netcdf::File, name: &str) -> Option<i64> {
    match file.attribute(name)?.value().ok()? {
        netcdf::AttributeValue::Longlong(v) => Some(v),
        netcdf::AttributeValue::Int(v) => Some(v as i64),
        netcdf::AttributeValue::Short(v) => Some(v as i64),
        netcdf::AttributeValue::Ulonglong(v) => i64::try_from(v).ok(),
        netcdf::AttributeValue::Uint(v) => Some(v as i64),
        _ => None,
    }
}

/// An open Ansatz dataset (see `docs/dataset-format.md`).
pub struct Dataset {
    path: PathBuf,
    file: netcdf::File,
    file_len: u64,
    /// The format of the container.
    pub format: Format,
    /// `pde` attribute.
    pub pde: String,
    /// Field variables (`u`, `v`), in file order of the format.
    pub fields: Vec<String>,
    /// Samples declared by the `sample` dimension.
    pub samples: usize,
    /// Samples actually written (`samples_complete`); reading beyond is refused.
    pub samples_complete: usize,
    /// Saved time levels; empty for a static problem (no `time` dimension).
    pub times: Vec<f64>,
    pub x: Vec<f64>,
    pub y: Option<Vec<f64>>,
    pub z: Option<Vec<f64>>,
    /// Names of per-sample parameters (`simulation_parameters`).
    pub parameters: Vec<String>,
    /// `grid_type` attribute.
    pub grid_type: String,
    /// `domain_extent` attribute.
    pub extent: Vec<f64>,
}

impl Dataset {
    /// Opens and validates an Ansatz dataset: the header check of [`check_file`], then every dimension,
    /// coordinate and field variable the format requires.
    pub fn open(path: &Path) -> Result<Self> {
        let format = check_file(path)?;
        let file_len = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?.len();
        let file = nc(path, netcdf::open(path))?;
        let fmt = |what: String| DatasetError::format(path, what);
        let Some(schema) = int_attr(&file, "ansatz_schema") else {
            return Err(fmt(
                "not an Ansatz dataset (no global attribute 'ansatz_schema'); `ansatz info` lists what it holds and \
                 what it lacks"
                    .into(),
            ));
        };
        if !(1..=SCHEMA_VERSION as i64).contains(&schema) {
            return Err(fmt(format!(
                "dataset schema {schema} (global attribute 'ansatz_schema'); this version of Ansatz reads schemas 1 to \
                 {SCHEMA_VERSION}"
            )));
        }
        let time = time_name(schema);
        let pde = text_attr(&file, "pde").ok_or_else(|| fmt("missing global attribute 'pde'".into()))?;
        let dim = |name: &str| -> Result<usize> {
            let n = file.dimension_len(name).ok_or_else(|| fmt(format!("missing dimension '{name}'")))?;
            if n as u64 > MAX_EXPANSION * file_len + (1 << 20) {
                return Err(DatasetError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("dimension '{name}' declares {n} entries"),
                });
            }
            Ok(n)
        };
        let samples = dim("sample")?;
        let nt = if file.dimension(time).is_some() { Some(dim(time)?) } else { None };
        let nx = dim("x")?;
        let ny = if file.dimension("y").is_some() { Some(dim("y")?) } else { None };
        let nz = if file.dimension("z").is_some() { Some(dim("z")?) } else { None };
        let coord = |name: &str, n: usize| -> Result<Vec<f64>> {
            coordinate(&file, path, name, n)?.ok_or_else(|| fmt(format!("missing coordinate variable '{name}'")))
        };
        let times = match nt {
            Some(n) => coord(time, n)?,
            None => vec![],
        };
        let x = coord("x", nx)?;
        let y = match ny {
            Some(n) => Some(coord("y", n)?),
            None => None,
        };
        let z = match nz {
            Some(n) => Some(coord("z", n)?),
            None => None,
        };
        let mut expected = vec!["sample".to_string()];
        if nt.is_some() {
            expected.push(time.into());
        }
        if z.is_some() {
            expected.push("z".into());
        }
        if y.is_some() {
            expected.push("y".into());
        }
        expected.push("x".into());
        let fields: Vec<String> = match text_attr(&file, "fields") {
            Some(list) => list.split_whitespace().map(String::from).collect(),
            None => ["u", "v"].iter().filter(|n| file.variable(n).is_some()).map(|s| s.to_string()).collect(),
        };
        if fields.is_empty() {
            return Err(fmt("no field variable".into()));
        }
        for f in &fields {
            let v = file.variable(f).ok_or_else(|| fmt(format!("missing field variable '{f}'")))?;
            let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
            if dims != expected {
                return Err(DatasetError::Shape {
                    path: path.to_path_buf(),
                    var: f.clone(),
                    expected: format!("dimensions ({})", expected.join(", ")),
                    found: format!("({})", dims.join(", ")),
                });
            }
        }
        let parameters: Vec<String> = text_attr(&file, "simulation_parameters")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        for p in &parameters {
            let v = file
                .variable(p)
                .ok_or_else(|| fmt(format!("parameter variable '{p}' listed in simulation_parameters is missing")))?;
            let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
            if dims != ["sample"] {
                return Err(DatasetError::Shape {
                    path: path.to_path_buf(),
                    var: p.clone(),
                    expected: "dimensions (sample)".into(),
                    found: format!("({})", dims.join(", ")),
                });
            }
        }
        let samples_complete = match int_attr(&file, "samples_complete") {
            Some(n) if n >= 0 && n as usize <= samples => n as usize,
            Some(n) => return Err(fmt(format!("samples_complete = {n} but the file declares {samples} samples"))),
            None => samples,
        };
        let grid_type = text_attr(&file, "grid_type").unwrap_or_default();
        let extent = match file.attribute("domain_extent").and_then(|a| a.value().ok()) {
            Some(netcdf::AttributeValue::Doubles(v)) => v,
            Some(netcdf::AttributeValue::Double(v)) => vec![v],
            _ => vec![],
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            file_len,
            format,
            pde,
            fields,
            samples,
            samples_complete,
            times,
            x,
            y,
            z,
            parameters,
            grid_type,
            extent,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Grid values per field and time level.
    pub fn space_len(&self) -> usize {
        self.x.len() * self.y.as_ref().map_or(1, Vec::len) * self.z.as_ref().map_or(1, Vec::len)
    }

    /// Whether the dataset is static (no time dimension).
    pub fn is_static(&self) -> bool {
        self.times.is_empty()
    }

    fn space_counts(&self) -> Vec<usize> {
        let mut c = vec![];
        if let Some(z) = &self.z {
            c.push(z.len());
        }
        if let Some(y) = &self.y {
            c.push(y.len());
        }
        c.push(self.x.len());
        c
    }

    /// Reads `field` of a static dataset for a window of samples, shape `(samples, [z,] [y,] x)`.
    pub fn read_static(&self, field: &str, samples: Range<usize>) -> Result<ArrayD<f64>> {
        if !self.is_static() {
            return Err(DatasetError::format(
                &self.path,
                "the dataset has a time dimension: use read(field, samples, times)",
            ));
        }
        let mut count = vec![samples.len()];
        count.extend(self.space_counts());
        self.window(field, samples, None, count)
    }

    /// Reads `field` for a window of samples and time levels, shape `(samples, times, [y,] x)`, converted to
    /// f64. Only the chunks of the window are read.
    pub fn read(&self, field: &str, samples: Range<usize>, times: Range<usize>) -> Result<ArrayD<f64>> {
        if self.is_static() {
            return Err(DatasetError::format(&self.path, "a static dataset has no time dimension: use read_static"));
        }
        let mut count = vec![samples.len(), times.len()];
        count.extend(self.space_counts());
        self.window(field, samples, Some(times), count)
    }

    /// [`Dataset::read`] into `buf` (resized to the window), for readers that reuse one buffer.
    pub fn read_into(&self, field: &str, samples: Range<usize>, times: Range<usize>, buf: &mut Vec<f64>) -> Result<()> {
        if self.is_static() {
            return Err(DatasetError::format(&self.path, "a static dataset has no time dimension: use read_static"));
        }
        let mut count = vec![samples.len(), times.len()];
        count.extend(self.space_counts());
        self.window_into(field, samples, Some(times), &count, buf)
    }

    fn window(
        &self,
        field: &str,
        samples: Range<usize>,
        times: Option<Range<usize>>,
        count: Vec<usize>,
    ) -> Result<ArrayD<f64>> {
        let mut vals = vec![];
        self.window_into(field, samples, times, &count, &mut vals)?;
        ArrayD::from_shape_vec(IxDyn(&count), vals).map_err(|e| DatasetError::format(&self.path, e.to_string()))
    }

    fn window_into(
        &self,
        field: &str,
        samples: Range<usize>,
        times: Option<Range<usize>>,
        count: &[usize],
        buf: &mut Vec<f64>,
    ) -> Result<()> {
        let p = &self.path;
        if !self.fields.iter().any(|f| f == field) {
            return Err(DatasetError::format(
                p,
                format!("no field variable '{field}' (fields: {})", self.fields.join(", ")),
            ));
        }
        if samples.start >= samples.end || samples.end > self.samples_complete {
            return Err(DatasetError::format(
                p,
                format!("sample window {samples:?} outside the {} complete samples", self.samples_complete),
            ));
        }
        if let Some(times) = &times {
            if times.start >= times.end || times.end > self.times.len() {
                return Err(DatasetError::format(
                    p,
                    format!("time window {times:?} outside the {} time levels", self.times.len()),
                ));
            }
        }
        let elems: u64 = count.iter().map(|&c| c as u64).product();
        if elems.saturating_mul(8) > MAX_EXPANSION * self.file_len + (1 << 20) {
            return Err(DatasetError::Corrupt {
                path: p.clone(),
                reason: format!("a window of {elems} values cannot fit in a file of {} bytes", self.file_len),
            });
        }
        let mut start = vec![0; count.len()];
        start[0] = samples.start;
        if let Some(times) = &times {
            start[1] = times.start;
        }
        let v =
            self.file.variable(field).ok_or_else(|| DatasetError::format(p, format!("missing variable '{field}'")))?;
        buf.resize(elems as usize, 0.0);
        nc(p, v.get_values_into(buf.as_mut_slice(), (start.as_slice(), count)))
    }

    /// Values of a per-sample variable (a simulation parameter such as `nu`, or solver information such as
    /// `solver_dt`) for the complete samples.
    pub fn parameter(&self, name: &str) -> Result<Vec<f64>> {
        let p = &self.path;
        let v = self.file.variable(name).ok_or_else(|| DatasetError::format(p, format!("no variable '{name}'")))?;
        let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
        if dims != ["sample"] {
            return Err(DatasetError::Shape {
                path: p.clone(),
                var: name.into(),
                expected: "dimensions (sample)".into(),
                found: format!("({})", dims.join(", ")),
            });
        }
        let mut vals: Vec<f64> = nc(p, v.get_values(..))?;
        vals.truncate(self.samples_complete);
        Ok(vals)
    }

    /// A global text attribute.
    pub fn text_attribute(&self, name: &str) -> Option<String> {
        text_attr(&self.file, name)
    }

    /// The layout this file was written with (for copying or merging it), with `samples` and `first_sample` of
    /// this file.
    pub fn layout(&self) -> Result<crate::schema::Layout> {
        use crate::schema::{Field, GridType, Layout, ParameterInfo, Precision};
        let p = &self.path;
        let long_name = |v: &netcdf::Variable| match v.attribute_value("long_name") {
            Some(Ok(netcdf::AttributeValue::Str(s))) => s,
            _ => String::new(),
        };
        let mut fields = vec![];
        let mut precision = Precision::F32;
        let mut time_chunk = 1;
        for name in &self.fields {
            let v = self
                .file
                .variable(name)
                .ok_or_else(|| DatasetError::format(p, format!("missing variable '{name}'")))?;
            if matches!(v.vartype(), netcdf::types::NcVariableType::Float(netcdf::types::FloatType::F64)) {
                precision = Precision::F64;
            }
            if let (false, Ok(Some(c))) = (self.is_static(), v.chunking()) {
                time_chunk = c.get(1).copied().unwrap_or(1);
            }
            fields.push(Field { name: name.clone(), long_name: long_name(&v) });
        }
        let mut parameters = vec![];
        for v in self.file.variables() {
            let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
            let name = v.name();
            if dims == ["sample"] && name != "sample" {
                parameters.push(ParameterInfo {
                    long_name: long_name(&v),
                    simulation: self.parameters.contains(&name),
                    name,
                });
            }
        }
        let fixed = [
            "Conventions",
            "pde",
            "grid_type",
            "simulation_parameters",
            "ansatz_version",
            "fields",
            "bc_x",
            "bc_y",
            "bc_z",
        ];
        let text = self
            .file
            .attributes()
            .filter(|a| !fixed.contains(&a.name()))
            .filter_map(|a| match a.value() {
                Ok(netcdf::AttributeValue::Str(s)) => Some((a.name().to_string(), s)),
                _ => None,
            })
            .collect();
        let bc = ["bc_x", "bc_y", "bc_z"].iter().filter_map(|k| text_attr(&self.file, k)).collect();
        let sample0: Vec<i64> = nc(
            p,
            self.file
                .variable("sample")
                .ok_or_else(|| DatasetError::format(p, "missing variable 'sample'"))?
                .get_values(..),
        )?;
        Ok(Layout {
            pde: self.pde.clone(),
            fields,
            parameters,
            samples: self.samples,
            first_sample: sample0.first().copied().unwrap_or(0).max(0) as u64,
            times: self.times.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            z: self.z.clone(),
            grid_type: if self.grid_type == "spectral_collocation" {
                GridType::SpectralCollocation
            } else {
                GridType::CellCentered
            },
            extent: self.extent.clone(),
            bc,
            precision,
            compression: 4,
            time_chunk,
            text,
            seed: int_attr(&self.file, "seed").map(|s| s as u64),
            context_frames: int_attr(&self.file, "context_frames").unwrap_or(1) as i32,
        })
    }

    /// Sample `s` (local index) as written: every time level, field and grid value, layout `(time, field,
    /// space)`, and the values of the per-sample variables `params`.
    pub fn sample_data(&self, s: usize, params: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
        let ns = self.space_len();
        let nt = self.times.len().max(1);
        let nf = self.fields.len();
        let mut data = vec![0.0; nt * nf * ns];
        for (k, f) in self.fields.iter().enumerate() {
            let w = if self.is_static() { self.read_static(f, s..s + 1)? } else { self.read(f, s..s + 1, 0..nt)? };
            let w = w.as_slice().ok_or_else(|| DatasetError::format(&self.path, "non-contiguous window"))?;
            for t in 0..nt {
                data[(t * nf + k) * ns..(t * nf + k + 1) * ns].copy_from_slice(&w[t * ns..(t + 1) * ns]);
            }
        }
        let values = params
            .iter()
            .map(|p| {
                self.parameter(p).and_then(|v| {
                    v.get(s)
                        .copied()
                        .ok_or_else(|| DatasetError::format(&self.path, format!("'{p}' has no value for sample {s}")))
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok((data, values))
    }
}

/// A summary of any NetCDF file: dimensions, variables and global attributes (for `ansatz info`), after the
/// header check.
pub fn describe(path: &Path) -> Result<String> {
    let format = check_file(path)?;
    let file = nc(path, netcdf::open(path))?;
    let mut s = String::new();
    let fmt_name = match format {
        Format::Classic(1) => "classic NetCDF (CDF-1)".to_string(),
        Format::Classic(2) => "classic NetCDF, 64-bit offsets (CDF-2)".to_string(),
        Format::Classic(v) => format!("classic NetCDF (CDF-{v})"),
        Format::Hdf5 => "NetCDF-4 (HDF5)".to_string(),
    };
    let _ = writeln!(s, "{}: {fmt_name}", path.display());
    let _ = writeln!(s, "dimensions:");
    for d in file.dimensions() {
        let _ = writeln!(s, "  {} = {}{}", d.name(), d.len(), if d.is_unlimited() { " (unlimited)" } else { "" });
    }
    let _ = writeln!(s, "variables:");
    for v in file.variables() {
        let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
        let long = match v.attribute_value("long_name") {
            Some(Ok(netcdf::AttributeValue::Str(l))) => format!("  ({l})"),
            _ => String::new(),
        };
        let _ = writeln!(s, "  {:?} {}({}){long}", v.vartype(), v.name(), dims.join(", "));
    }
    let _ = writeln!(s, "global attributes:");
    for a in file.attributes() {
        let val = match a.value() {
            Ok(netcdf::AttributeValue::Str(t)) => {
                let one = t.lines().next().unwrap_or("").to_string();
                if t.lines().count() > 1 {
                    format!("{one:?} … ({} lines)", t.lines().count())
                } else {
                    format!("{one:?}")
                }
            }
            Ok(v) => plain(&v),
            Err(e) => format!("<unreadable: {e}>"),
        };
        let _ = writeln!(s, "  {} = {val}", a.name());
    }
    let _ = writeln!(s, "{}", crate::assess::convention_line(&file));
    let Some(schema) = int_attr(&file, "ansatz_schema") else {
        s.push_str(&crate::assess::foreign_report(path, &file));
        return Ok(s);
    };
    drop(file);
    let ds = match Dataset::open(path) {
        Ok(ds) => ds,
        Err(e) => {
            let _ = writeln!(s, "an Ansatz dataset (schema {schema}) that cannot be read: {e}");
            return Ok(s);
        }
    };
    if schema < SCHEMA_VERSION as i64 {
        let _ = writeln!(
            s,
            "dataset schema {schema}, an earlier layout (time dimension 'time'): read as it is, but it does not pass \
             the CF checker; `ansatz merge {} --out NEW.nc` rewrites it in schema {SCHEMA_VERSION}",
            path.display()
        );
    }
    {
        let _ = writeln!(
            s,
            "Ansatz dataset: pde {}, fields {}, {} of {} samples complete",
            ds.pde,
            ds.fields.join(", "),
            ds.samples_complete,
            ds.samples
        );
        match (ds.times.first(), ds.times.last()) {
            (Some(t0), Some(t1)) => {
                let _ = writeln!(s, "  {} time levels, t = {t0} … {t1}", ds.times.len());
            }
            _ => {
                let _ = writeln!(s, "  static problem (no time dimension)");
            }
        }
        let mut axes: Vec<String> = vec![];
        if let Some(z) = &ds.z {
            axes.push(z.len().to_string());
        }
        if let Some(y) = &ds.y {
            axes.push(y.len().to_string());
        }
        axes.push(ds.x.len().to_string());
        let shape = axes.join(" × ");
        let _ = writeln!(s, "  grid {shape} ({}), domain extent {:?}", ds.grid_type, ds.extent);
        for p in &ds.parameters {
            if let Ok(v) = ds.parameter(p) {
                if !v.is_empty() {
                    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
                    let _ = writeln!(s, "  parameter {p}: {lo:.4e} … {hi:.4e}");
                }
            }
        }
    }
    Ok(s)
}

/// The coordinate variable `name` of a dimension of `n` points, if the file has one: it must lie on its own
/// dimension, have `n` values and be finite.
fn coordinate(file: &netcdf::File, path: &Path, name: &str, n: usize) -> Result<Option<Vec<f64>>> {
    let Some(v) = file.variable(name) else { return Ok(None) };
    let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
    if dims != [name] {
        return Err(DatasetError::Shape {
            path: path.to_path_buf(),
            var: name.into(),
            expected: format!("dimensions ({name})"),
            found: format!("({})", dims.join(", ")),
        });
    }
    let vals: Vec<f64> = nc(path, v.get_values(..))?;
    if vals.len() != n {
        return Err(DatasetError::format(
            path,
            format!("coordinate '{name}' has {} values for {n} points", vals.len()),
        ));
    }
    if vals.iter().any(|x| !x.is_finite()) {
        return Err(DatasetError::NonFinite { path: path.to_path_buf(), var: name.into(), at: "a coordinate".into() });
    }
    Ok(Some(vals))
}

/// An attribute value without its type wrapper.
fn plain(v: &netcdf::AttributeValue) -> String {
    use netcdf::AttributeValue as A;
    fn list<T: std::fmt::Display>(v: &[T]) -> String {
        let items: Vec<String> = v.iter().take(16).map(|x| x.to_string()).collect();
        format!("[{}{}]", items.join(", "), if v.len() > 16 { ", …" } else { "" })
    }
    match v {
        A::Uchar(x) => x.to_string(),
        A::Schar(x) => x.to_string(),
        A::Ushort(x) => x.to_string(),
        A::Short(x) => x.to_string(),
        A::Uint(x) => x.to_string(),
        A::Int(x) => x.to_string(),
        A::Ulonglong(x) => x.to_string(),
        A::Longlong(x) => x.to_string(),
        A::Float(x) => x.to_string(),
        A::Double(x) => x.to_string(),
        A::Uchars(x) => list(x),
        A::Schars(x) => list(x),
        A::Ushorts(x) => list(x),
        A::Shorts(x) => list(x),
        A::Uints(x) => list(x),
        A::Ints(x) => list(x),
        A::Ulonglongs(x) => list(x),
        A::Longlongs(x) => list(x),
        A::Floats(x) => list(x),
        A::Doubles(x) => list(x),
        A::Str(x) => format!("{x:?}"),
        A::Strs(x) => format!("{x:?}"),
    }
}

/// An initial condition read from a file of any producer.
#[derive(Clone, Debug)]
pub struct InitialData {
    /// Values, shape `(samples, components · space)`, components in the order asked for.
    pub values: Array2<f64>,
    /// Coordinates, when the file has coordinate variables.
    pub x: Option<Vec<f64>>,
    pub y: Option<Vec<f64>>,
    /// Grid shape `(ny, nx)` (ny = 1 in 1D).
    pub shape: (usize, usize),
    /// Whether the file had a leading `sample` dimension.
    pub had_sample_dim: bool,
}

/// Reads the variables `components` (e.g. `["u"]` or `["u", "v"]`) on `(x)` (1D) or `(y, x)` (2D), optionally
/// with a leading `sample` dimension, with their coordinate variables if present. Names the file and the variable
/// in every error: missing or misnamed variables, wrong dimension order or sizes, non-finite values.
pub fn read_initial_condition(path: &Path, components: &[&str], two_d: bool) -> Result<InitialData> {
    check_file(path)?;
    let file_len = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?.len();
    let file = nc(path, netcdf::open(path))?;
    let space: Vec<&str> = if two_d { vec!["y", "x"] } else { vec!["x"] };
    let mut shape: Option<(Vec<String>, Vec<usize>)> = None;
    let mut values: Vec<Vec<f64>> = vec![];
    for name in components {
        let Some(v) = file.variable(name) else {
            let names: Vec<String> = file.variables().map(|v| v.name()).collect();
            return Err(DatasetError::format(
                path,
                format!(
                    "missing variable '{name}' (the file has: {})",
                    if names.is_empty() { "no variables".into() } else { names.join(", ") }
                ),
            ));
        };
        let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
        let lens: Vec<usize> = v.dimensions().iter().map(|d| d.len()).collect();
        let ok = (dims.len() == space.len() && dims.iter().zip(&space).all(|(a, b)| a == b))
            || (dims.len() == space.len() + 1
                && dims[0] == "sample"
                && dims[1..].iter().zip(&space).all(|(a, b)| a == b));
        if !ok {
            return Err(DatasetError::Shape {
                path: path.to_path_buf(),
                var: name.to_string(),
                expected: format!("dimensions ({}) or (sample, {})", space.join(", "), space.join(", ")),
                found: format!("({})", dims.join(", ")),
            });
        }
        if let Some((d0, l0)) = &shape {
            if *d0 != dims || *l0 != lens {
                return Err(DatasetError::Shape {
                    path: path.to_path_buf(),
                    var: name.to_string(),
                    expected: format!("the shape of '{}' {l0:?}", components[0]),
                    found: format!("{lens:?}"),
                });
            }
        }
        let elems: u64 = lens.iter().map(|&l| l as u64).product();
        if elems == 0 || elems.saturating_mul(8) > MAX_EXPANSION * file_len + (1 << 20) {
            return Err(DatasetError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("variable '{name}' declares {elems} values"),
            });
        }
        let vals: Vec<f64> = nc(path, v.get_values(..))?;
        if let Some(i) = vals.iter().position(|x| !x.is_finite()) {
            let mut idx = vec![0; lens.len()];
            let mut r = i;
            for k in (0..lens.len()).rev() {
                idx[k] = r % lens[k];
                r /= lens[k];
            }
            let at: Vec<String> = dims.iter().zip(&idx).map(|(d, i)| format!("{d}={i}")).collect();
            return Err(DatasetError::NonFinite { path: path.to_path_buf(), var: name.to_string(), at: at.join(", ") });
        }
        values.push(vals);
        shape = Some((dims, lens));
    }
    let (dims, lens) = shape.ok_or_else(|| DatasetError::format(path, "no components requested"))?;
    let had_sample_dim = dims[0] == "sample";
    let samples = if had_sample_dim { lens[0] } else { 1 };
    let nx = *lens.last().unwrap_or(&0);
    let ny = if two_d { lens[lens.len() - 2] } else { 1 };
    let m = nx * ny;
    let mut arr = Array2::zeros((samples, components.len() * m));
    for (c, vals) in values.iter().enumerate() {
        for s in 0..samples {
            arr.row_mut(s).as_slice_mut().expect("contiguous")[c * m..(c + 1) * m]
                .copy_from_slice(&vals[s * m..(s + 1) * m]);
        }
    }
    let coord = |name: &str, n: usize| coordinate(&file, path, name, n);
    let x = coord("x", nx)?;
    let y = if two_d { coord("y", ny)? } else { None };
    Ok(InitialData { values: arr, x, y, shape: (ny, nx), had_sample_dim })
}
