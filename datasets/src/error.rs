use std::path::PathBuf;

/// Errors of the dataset layer. Every variant names the file, variable or key concerned.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file could not be read, created or renamed.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// libnetcdf reported an error.
    #[error("{path}: {message}")]
    NetCdf { path: PathBuf, message: String },
    /// The file is not a readable NetCDF file or its header is inconsistent.
    #[error("{path}: not a valid NetCDF file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A variable, dimension or attribute the format requires is missing or has the wrong type.
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },
    /// A variable has the wrong dimensions or sizes.
    #[error("{path}: variable '{var}': expected {expected}, found {found}")]
    Shape { path: PathBuf, var: String, expected: String, found: String },
    /// Data that must be finite is not.
    #[error("{path}: variable '{var}' has a non-finite value at {at}")]
    NonFinite { path: PathBuf, var: String, at: String },
    /// A configuration key is unknown or has a bad value.
    #[error("{origin}: {message}")]
    Config { origin: String, message: String },
    /// The output exists and `--force` was not given.
    #[error("{path} exists; pass --force to overwrite it")]
    Exists { path: PathBuf },
    /// `--resume` cannot continue this partial file.
    #[error("cannot resume {path}: {reason}")]
    NotResumable { path: PathBuf, reason: String },
    /// The solver produced a non-finite state.
    #[error(
        "sample {sample}: the solution became non-finite at step {step} (t = {time:.6}); the time step is too large for this initial condition (lower the CFL number) or the grid is too coarse"
    )]
    Blowup { sample: usize, step: usize, time: f64 },
}

impl DatasetError {
    /// Whether the error is the user's input (exit code 2) rather than a failure while running (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, DatasetError::Blowup { .. })
    }

    pub(crate) fn nc(path: &std::path::Path, e: netcdf::Error) -> Self {
        DatasetError::NetCdf { path: path.to_path_buf(), message: e.to_string() }
    }

    pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        DatasetError::Io { path: path.to_path_buf(), err: e }
    }

    pub(crate) fn format(path: &std::path::Path, what: impl Into<String>) -> Self {
        DatasetError::Format { path: path.to_path_buf(), what: what.into() }
    }
}

/// Result of the dataset layer.
pub type Result<T> = std::result::Result<T, DatasetError>;
