//! Ansatz datasets: the NetCDF-4 dataset format, its writer and streaming reader, initial-condition and
//! parameter samplers, and the generation of trajectories with `ansatz-solvers`.
//!
//! The format is specified in `docs/dataset-format.md` (normative). In short: one root group, dimensions
//! `(sample, t, [z,] [y,] x)` (`t` the nondimensional time), one variable per field component (`u`, `v`), coordinate variables with CF
//! attributes and cell bounds for finite-volume grids, per-sample parameters as variables on `sample`, and global
//! attributes for provenance and resumption (`samples_complete`).
//!
//! Files are written under a temporary name (`NAME.partial`) and renamed when complete; an interrupted generation
//! resumes from `samples_complete` and produces data bitwise identical to an uninterrupted run, because sample
//! `i` depends only on `(seed, i)`.
//!
//! Untrusted files are checked before libnetcdf reads them ([`check`]): the magic number, the whole header of
//! classic-format files, and the declared sizes of every variable against the file size.

pub mod assess;
pub mod check;
pub mod coarsen;
pub mod config;
mod error;
pub mod generate;
pub mod manifest;
pub mod mtx;
pub mod problems;
pub mod reader;
pub mod ritz;
pub mod rng;
pub mod rom;
pub mod samplers;
pub mod schema;
pub mod statics;
pub mod writer;

pub use error::{DatasetError, Result};

/// Turns off HDF5's automatic error printing for the calling thread (under the library lock): libnetcdf 4.9 probes optional attributes
/// through HDF5, and the failed probes would print diagnostic stacks to stderr although nothing is wrong (errors
/// still reach us as return codes). The setting is per thread in thread-safe HDF5 builds, so every entry point
/// that opens or creates a file calls this. HDF5 is loaded with libnetcdf; its symbol is looked up at run time.
pub fn quiet_hdf5() {
    type SetAuto = extern "C" fn(i64, *const libc::c_void, *mut libc::c_void) -> i32;
    static SET_AUTO: std::sync::OnceLock<Option<SetAuto>> = std::sync::OnceLock::new();
    thread_local!(static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if DONE.with(|d| d.replace(true)) {
        return;
    }
    let f = SET_AUTO.get_or_init(|| {
        // SAFETY: dlsym on the global scope; the symbol, if present, has the documented C signature
        // herr_t H5Eset_auto2(hid_t estack_id, H5E_auto2_t func, void *client_data).
        unsafe {
            let p = libc::dlsym(libc::RTLD_DEFAULT, c"H5Eset_auto2".as_ptr());
            (!p.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, SetAuto>(p))
        }
    });
    if let Some(set) = f {
        // HDF5 may be built without thread safety: call it under the lock the netcdf crate holds for every
        // library call. H5E_DEFAULT is 0: the calling thread's default error stack.
        let _guard = netcdf_sys::libnetcdf_lock.lock();
        set(0, std::ptr::null(), std::ptr::null_mut());
    }
}
