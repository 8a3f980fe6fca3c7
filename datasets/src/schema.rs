//! The dataset format: names, attributes and the layout a writer declares. `docs/dataset-format.md` is the
//! normative description.

/// Version of the format written by this crate (global attribute `ansatz_schema`). Version 2 names the time
/// dimension and coordinate `t` and drops the CF `axis` attributes; readers accept version 1 files (`time`).
pub const SCHEMA_VERSION: i32 = 2;
/// The time dimension and coordinate variable of this version's files.
pub const TIME: &str = "t";

/// The time dimension and coordinate variable of files written with schema version `schema`.
pub fn time_name(schema: i64) -> &'static str {
    if schema >= 2 { TIME } else { "time" }
}
/// CF conventions version (global attribute `Conventions`).
pub const CONVENTIONS: &str = "CF-1.11";
/// Suffix of a file being written; it is renamed to its final name when complete.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Storage precision of field variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

/// Where grid values live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridType {
    /// Finite-volume cell averages at cell centres `x_i = x_0 + (i + 1/2) h`.
    CellCentered,
    /// Spectral collocation points `x_i = x_0 + i h`, right endpoint excluded.
    SpectralCollocation,
}

impl GridType {
    /// The value of the `grid_type` attribute.
    pub fn name(self) -> &'static str {
        match self {
            GridType::CellCentered => "cell_centered",
            GridType::SpectralCollocation => "spectral_collocation",
        }
    }
}

/// A field variable (one velocity component).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub long_name: String,
}

/// A per-sample scalar: a simulation parameter (listed in `simulation_parameters`) or solver information
/// (such as the internal time step).
#[derive(Clone, Debug, PartialEq)]
pub struct ParameterInfo {
    pub name: String,
    pub long_name: String,
    /// Whether it is a parameter of the simulated problem (listed in `simulation_parameters`).
    pub simulation: bool,
}

/// Everything a writer declares before the first sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// `pde` attribute, e.g. `burgers1d`.
    pub pde: String,
    pub fields: Vec<Field>,
    pub parameters: Vec<ParameterInfo>,
    /// Number of samples in the file.
    pub samples: usize,
    /// Index of the first sample in the whole dataset (the `sample` coordinate starts here).
    pub first_sample: u64,
    /// Saved time levels, the initial condition first; empty for a static problem (no `time` dimension).
    pub times: Vec<f64>,
    pub x: Vec<f64>,
    /// `None` in 1D.
    pub y: Option<Vec<f64>>,
    /// `None` in 1D and 2D.
    pub z: Option<Vec<f64>>,
    pub grid_type: GridType,
    /// Domain size per axis (x first).
    pub extent: Vec<f64>,
    /// Boundary condition name per axis (x first): periodic, dirichlet, neumann.
    pub bc: Vec<String>,
    pub precision: Precision,
    /// zlib level 0–9 (0: no compression).
    pub compression: i32,
    /// Time levels per chunk (the chunk is `(1, time_chunk, full space)`).
    pub time_chunk: usize,
    /// Free-form global text attributes: title, source, history, initial_condition, generation_config, …
    pub text: Vec<(String, String)>,
    pub seed: Option<u64>,
    /// Frames a model receives as context (metrics exclude them).
    pub context_frames: i32,
}

impl Layout {
    /// Values per sample and time level across all fields.
    pub fn frame_len(&self) -> usize {
        self.fields.len() * self.space_len()
    }

    /// Grid values of one field at one time.
    pub fn space_len(&self) -> usize {
        self.x.len() * self.y.as_ref().map_or(1, Vec::len) * self.z.as_ref().map_or(1, Vec::len)
    }

    /// Spatial axes `(name, coordinates)`, slowest first.
    pub fn space_axes(&self) -> Vec<(&'static str, &Vec<f64>)> {
        let mut a = vec![];
        if let Some(z) = &self.z {
            a.push(("z", z));
        }
        if let Some(y) = &self.y {
            a.push(("y", y));
        }
        a.push(("x", &self.x));
        a
    }

    /// Spatial dimensions of a field variable, slowest first.
    pub fn space_dims(&self) -> Vec<&'static str> {
        self.space_axes().into_iter().map(|(n, _)| n).collect()
    }

    /// Time levels per sample (1 for a static problem).
    pub fn levels(&self) -> usize {
        self.times.len().max(1)
    }
}

/// The `history` line of a file written now: UTC time and the command line.
pub fn history() -> String {
    let args: Vec<String> = std::env::args().collect();
    format!("{}: {}", iso_now(), args.join(" "))
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, Hinnant).
pub fn iso_now() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
