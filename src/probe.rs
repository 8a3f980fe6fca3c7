//! Untrusted NetCDF files are first opened in a child process (`ansatz __probe FILE`), so that a crash or hang
//! inside libnetcdf on a damaged file ends as a clear error with exit code 2 instead of taking this process down.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ansatz_datasets::DatasetError;

/// How long libnetcdf may take over a file in the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// Files up to this size are read completely by the probe (every chunk decompressed once).
const FULL_READ_LIMIT: u64 = 256 << 20;

/// Checks `path` in Rust, then lets a child process open it with libnetcdf and read it (completely when it is
/// small, a window of every variable otherwise).
pub fn probe(path: &Path) -> Result<(), DatasetError> {
    ansatz_datasets::check::check_file(path)?;
    let exe = std::env::current_exe().map_err(|e| DatasetError::Io { path: "ansatz executable".into(), err: e })?;
    let mut cmd = Command::new(exe);
    cmd.arg("__probe").arg(path).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; no core files from a crash inside libnetcdf
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| DatasetError::Io { path: "ansatz __probe".into(), err: e })?;
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if t0.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DatasetError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("libnetcdf did not finish reading it within {} s", PROBE_TIMEOUT.as_secs()),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(DatasetError::Io { path: "ansatz __probe".into(), err: e }),
        }
    };
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let reason = match status.signal() {
        Some(sig) => format!("libnetcdf crashed reading it (signal {sig}); the file is damaged"),
        None => {
            let msg = err.lines().last().unwrap_or("").trim_start_matches("ansatz: error: ").to_string();
            let prefix = format!("{}: ", path.display());
            let msg = msg.strip_prefix(&prefix).unwrap_or(&msg).to_string();
            if msg.is_empty() { "libnetcdf could not read it".to_string() } else { msg }
        }
    };
    Err(DatasetError::Corrupt { path: path.to_path_buf(), reason })
}

/// The child side: open and read the file with libnetcdf; exit 0 if that worked.
pub fn run_probe(path: &Path) -> Result<(), DatasetError> {
    ansatz_datasets::check::read_through(path, FULL_READ_LIMIT)
}
