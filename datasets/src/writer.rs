//! Writing datasets: a file under a temporary name, one sample at a time, renamed when complete.

use std::path::{Path, PathBuf};

use crate::error::{DatasetError, Result};
use crate::schema::{CONVENTIONS, GridType, Layout, PARTIAL_SUFFIX, Precision, SCHEMA_VERSION, TIME};

/// The temporary name of an output while it is written.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(PARTIAL_SUFFIX);
    out.with_file_name(name)
}

/// Writes one dataset file. Samples are written in order; after each one the global attribute
/// `samples_complete` is updated and the file is flushed, so an interrupted run can resume.
pub struct DatasetWriter {
    file: netcdf::FileMut,
    partial: PathBuf,
    out: PathBuf,
    layout: Layout,
    complete: usize,
    buf32: Vec<f32>,
    buf64: Vec<f64>,
}

fn nc<T>(path: &Path, r: std::result::Result<T, netcdf::Error>) -> Result<T> {
    r.map_err(|e| DatasetError::nc(path, e))
}

impl DatasetWriter {
    /// Creates `OUT.partial` for `layout`. Fails if `out` or the partial file exists, unless `force`.
    pub fn create(out: &Path, layout: &Layout, force: bool) -> Result<Self> {
        crate::quiet_hdf5();
        let partial = partial_path(out);
        if !force {
            if out.exists() {
                return Err(DatasetError::Exists { path: out.to_path_buf() });
            }
            if partial.exists() {
                return Err(DatasetError::NotResumable {
                    path: partial.clone(),
                    reason: "an interrupted run left this partial file; pass --resume to continue it or --force to start over".into(),
                });
            }
        }
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(DatasetError::io(
                    dir,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "output directory does not exist"),
                ));
            }
        }
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(|e| DatasetError::io(&partial, e))?;
        }
        // probe writability with a plain file first, for a clear I/O error instead of an HDF5 one
        std::fs::File::create(&partial).map_err(|e| DatasetError::io(&partial, e))?;
        std::fs::remove_file(&partial).map_err(|e| DatasetError::io(&partial, e))?;
        let file = nc(&partial, netcdf::create_with(&partial, netcdf::Options::NETCDF4))?;
        let mut w = Self {
            file,
            partial,
            out: out.to_path_buf(),
            layout: layout.clone(),
            complete: 0,
            buf32: vec![],
            buf64: vec![],
        };
        w.define()?;
        Ok(w)
    }

    /// Reopens `OUT.partial` left by an interrupted run with the same layout and continues after its
    /// `samples_complete`.
    pub fn resume(out: &Path, layout: &Layout) -> Result<Self> {
        let partial = partial_path(out);
        if !partial.exists() {
            return Err(DatasetError::NotResumable { path: partial, reason: "no partial file to resume".into() });
        }
        crate::check::check_file(&partial)?;
        let file = netcdf::append(&partial).map_err(|e| DatasetError::NotResumable {
            path: partial.clone(),
            reason: format!("the partial file cannot be opened ({e}); start over with --force"),
        })?;
        let text = |name: &str| -> Option<String> {
            match file.attribute(name)?.value().ok()? {
                netcdf::AttributeValue::Str(s) => Some(s),
                _ => None,
            }
        };
        if !matches!(file.attribute("ansatz_schema").and_then(|a| a.value().ok()),
            Some(netcdf::AttributeValue::Int(v)) if v == SCHEMA_VERSION)
        {
            return Err(DatasetError::NotResumable {
                path: partial.clone(),
                reason: format!(
                    "it was written by another version of Ansatz (not dataset schema {SCHEMA_VERSION}); start over with --force"
                ),
            });
        }
        for (k, v) in &layout.text {
            if k == "generation_config" && text(k).as_deref() != Some(v.as_str()) {
                return Err(DatasetError::NotResumable {
                    path: partial.clone(),
                    reason: "it was started with a different configuration, seed or sample count".into(),
                });
            }
        }
        let complete = match file.attribute("samples_complete").and_then(|a| a.value().ok()) {
            Some(netcdf::AttributeValue::Longlong(n)) if n >= 0 && (n as usize) <= layout.samples => n as usize,
            _ => {
                return Err(DatasetError::NotResumable {
                    path: partial.clone(),
                    reason: "attribute samples_complete is missing or out of range".into(),
                });
            }
        };
        if file.dimension_len("sample") != Some(layout.samples)
            || file.dimension_len(TIME).unwrap_or(0) != layout.times.len()
        {
            return Err(DatasetError::NotResumable {
                path: partial,
                reason: "its dimensions differ from this run".into(),
            });
        }
        Ok(Self {
            file,
            partial,
            out: out.to_path_buf(),
            layout: layout.clone(),
            complete,
            buf32: vec![],
            buf64: vec![],
        })
    }

    /// Samples written so far.
    pub fn samples_complete(&self) -> usize {
        self.complete
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Path of the file being written.
    pub fn partial(&self) -> &Path {
        &self.partial
    }

    fn define(&mut self) -> Result<()> {
        let p = self.partial.clone();
        let l = self.layout.clone();
        let f = &mut self.file;
        let fv = l.grid_type == GridType::CellCentered;
        nc(&p, f.add_dimension("sample", l.samples))?;
        if !l.times.is_empty() {
            nc(&p, f.add_dimension(TIME, l.times.len()))?;
        }
        for (name, c) in l.space_axes() {
            nc(&p, f.add_dimension(name, c.len()))?;
        }
        if fv {
            nc(&p, f.add_dimension("nv", 2))?;
        }
        // global attributes
        nc(&p, f.add_attribute("Conventions", CONVENTIONS))?;
        for (k, v) in &l.text {
            nc(&p, f.add_attribute(k, v.as_str()))?;
        }
        nc(&p, f.add_attribute("pde", l.pde.as_str()))?;
        nc(&p, f.add_attribute("n_spatial_dims", l.extent.len() as i32))?;
        nc(&p, f.add_attribute("domain_extent", l.extent.clone()))?;
        let names: Vec<&str> = l.fields.iter().map(|f| f.name.as_str()).collect();
        nc(&p, f.add_attribute("fields", names.join(" ").as_str()))?;
        for (axis, bc) in ["x", "y", "z"].iter().zip(&l.bc) {
            nc(&p, f.add_attribute(&format!("bc_{axis}"), bc.as_str()))?;
        }
        nc(&p, f.add_attribute("grid_type", l.grid_type.name()))?;
        let params: Vec<&str> = l.parameters.iter().filter(|p| p.simulation).map(|p| p.name.as_str()).collect();
        nc(&p, f.add_attribute("simulation_parameters", params.join(" ").as_str()))?;
        if let Some(seed) = l.seed {
            nc(&p, f.add_attribute("seed", seed as i64))?;
        }
        nc(&p, f.add_attribute("ansatz_version", env!("CARGO_PKG_VERSION")))?;
        nc(&p, f.add_attribute("ansatz_schema", SCHEMA_VERSION))?;
        nc(&p, f.add_attribute("context_frames", l.context_frames))?;
        nc(&p, f.add_attribute("samples_complete", 0i64))?;
        // coordinates
        {
            let mut v = nc(&p, f.add_variable::<i64>("sample", &["sample"]))?;
            nc(&p, v.put_attribute("long_name", "sample index in the dataset"))?;
            nc(&p, v.put_attribute("units", "1"))?;
            let idx: Vec<i64> = (0..l.samples as i64).map(|i| i + l.first_sample as i64).collect();
            nc(&p, v.put_values(&idx, ..))?;
        }
        if !l.times.is_empty() {
            // no `axis` and no `standard_name`: CF reserves both for calendar time (see docs/dataset-format.md)
            let mut v = nc(&p, f.add_variable::<f64>(TIME, &[TIME]))?;
            nc(&p, v.put_attribute("long_name", "time (nondimensional)"))?;
            nc(&p, v.put_attribute("units", "1"))?;
            nc(&p, v.put_values(&l.times, ..))?;
        }
        let axes: Vec<(&str, &Vec<f64>, f64)> = ["x", "y", "z"]
            .into_iter()
            .zip(&l.extent)
            .filter_map(|(n, e)| l.space_axes().into_iter().find(|(m, _)| *m == n).map(|(_, c)| (n, c, *e)))
            .collect();
        for (name, coords, extent) in axes {
            let h = extent / coords.len() as f64;
            let mut v = nc(&p, f.add_variable::<f64>(name, &[name]))?;
            // no `axis`: CF's X, Y and Z mean longitude, latitude and height (see docs/dataset-format.md)
            nc(&p, v.put_attribute("long_name", format!("{name} coordinate (nondimensional)").as_str()))?;
            nc(&p, v.put_attribute("units", "1"))?;
            if fv {
                nc(&p, v.put_attribute("bounds", format!("{name}_bnds").as_str()))?;
            }
            nc(&p, v.put_values(coords, ..))?;
            if fv {
                let bnds: Vec<f64> = coords.iter().flat_map(|c| [c - 0.5 * h, c + 0.5 * h]).collect();
                let bname = format!("{name}_bnds");
                let mut b = nc(&p, f.add_variable::<f64>(&bname, &[name, "nv"]))?;
                nc(&p, b.put_values(&bnds, ..))?;
            }
        }
        // fields
        let mut dims = vec!["sample"];
        let mut chunk = vec![1];
        if !l.times.is_empty() {
            dims.push(TIME);
            chunk.push(l.time_chunk.clamp(1, l.times.len()));
        }
        dims.extend(l.space_dims());
        chunk.extend(l.space_axes().iter().map(|(_, c)| c.len()));
        for field in &l.fields {
            let mut v = match l.precision {
                Precision::F32 => nc(&p, f.add_variable::<f32>(&field.name, &dims))?,
                Precision::F64 => nc(&p, f.add_variable::<f64>(&field.name, &dims))?,
            };
            nc(&p, v.set_chunking(&chunk))?;
            if l.compression > 0 {
                nc(&p, v.set_compression(l.compression.min(9), true))?;
            }
            // dense data: no fill values (SAFETY: every element of a complete file is written)
            nc(&p, unsafe { v.set_nofill() })?;
            nc(&p, v.put_attribute("long_name", field.long_name.as_str()))?;
            nc(&p, v.put_attribute("units", "1"))?;
        }
        for par in &l.parameters {
            let mut v = nc(&p, f.add_variable::<f64>(&par.name, &["sample"]))?;
            nc(&p, v.put_attribute("long_name", par.long_name.as_str()))?;
            nc(&p, v.put_attribute("units", "1"))?;
        }
        nc(&p, f.sync())?;
        Ok(())
    }

    /// Writes sample `index` (local to this file, equal to [`samples_complete`](Self::samples_complete)):
    /// `data` holds every time level, field and grid value, layout `(time, field, space)` (`(field, space)` for a
    /// static problem); `params` one value
    /// per parameter.
    pub fn write_sample(&mut self, index: usize, data: &[f64], params: &[f64]) -> Result<()> {
        let p = self.partial.clone();
        let l = &self.layout;
        if index != self.complete || index >= l.samples {
            return Err(DatasetError::format(
                &p,
                format!("sample {index} written out of order (next is {})", self.complete),
            ));
        }
        let (nt, nf, ns) = (l.levels(), l.fields.len(), l.space_len());
        if data.len() != nt * nf * ns || params.len() != l.parameters.len() {
            return Err(DatasetError::format(&p, "sample data of the wrong size"));
        }
        for (k, field) in l.fields.iter().enumerate() {
            let gather = |dst: &mut Vec<f64>| {
                dst.clear();
                for t in 0..nt {
                    dst.extend_from_slice(&data[(t * nf + k) * ns..(t * nf + k + 1) * ns]);
                }
            };
            let mut var = self
                .file
                .variable_mut(&field.name)
                .ok_or_else(|| DatasetError::format(&p, "field variable vanished"))?;
            let mut count = vec![1];
            if !l.times.is_empty() {
                count.push(nt);
            }
            count.extend(l.space_axes().iter().map(|(_, c)| c.len()));
            let mut start = vec![0; count.len()];
            start[0] = index;
            let extent = (start.as_slice(), count.as_slice());
            match l.precision {
                Precision::F32 => {
                    gather(&mut self.buf64);
                    self.buf32.clear();
                    self.buf32.extend(self.buf64.iter().map(|v| *v as f32));
                    nc(&p, var.put_values(&self.buf32, extent))?;
                }
                Precision::F64 => {
                    gather(&mut self.buf64);
                    nc(&p, var.put_values(&self.buf64, extent))?;
                }
            }
        }
        for (par, v) in l.parameters.iter().zip(params) {
            let mut var =
                self.file.variable_mut(&par.name).ok_or_else(|| DatasetError::format(&p, "parameter vanished"))?;
            nc(&p, var.put_value(*v, [index]))?;
        }
        self.complete += 1;
        nc(&p, self.file.add_attribute("samples_complete", self.complete as i64))?;
        nc(&p, self.file.sync())?;
        Ok(())
    }

    /// Closes the file and gives it its final name (replacing an existing file only if the writer was created
    /// with `force`; `create` refused otherwise). Fails if samples are missing.
    pub fn finish(self) -> Result<PathBuf> {
        if self.complete != self.layout.samples {
            return Err(DatasetError::format(
                &self.partial,
                format!("only {} of {} samples written", self.complete, self.layout.samples),
            ));
        }
        let (partial, out) = (self.partial.clone(), self.out.clone());
        self.file.close().map_err(|e| DatasetError::nc(&partial, e))?;
        std::fs::rename(&partial, &out).map_err(|e| DatasetError::io(&out, e))?;
        Ok(out)
    }
}
