//! The Ansatz C ABI: a learned preconditioner (a file written by `ansatz precond export`) called from a
//! conjugate-gradient code in C, Fortran or PETSc. Built as `libansatz.so` and `libansatz.a`; the header
//! `include/ansatz.h` is generated from this file by cbindgen (`capi/cbindgen.toml`).
//!
//! Every function returns 0 on success and a negative `ANSATZ_ERR_*` code on failure, with a message from
//! [`ansatz_last_error`] (per thread). Nothing panics across the boundary: a panic inside is caught and reported
//! as [`ANSATZ_ERR_INTERNAL`]. Handles are checked against a registry of open handles, so a closed, foreign or
//! null handle is refused rather than dereferenced (an address reused by a later `open` cannot be told apart).
//! Each handle has its own lock: several threads may use different handles at once, and concurrent calls on one
//! handle are serialised.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ansatz_operators::dcdm::NetworkPreconditioner;
use ansatz_operators::precond_file::PrecondFile;
use ansatz_solvers::precond::Preconditioner;
use burn::prelude::Device;
use burn::tensor::DType;

/// Success.
pub const ANSATZ_OK: c_int = 0;
/// A required pointer argument is null.
pub const ANSATZ_ERR_NULL: c_int = -1;
/// The handle is not an open preconditioner (closed, never opened, or not one of ours).
pub const ANSATZ_ERR_HANDLE: c_int = -2;
/// The file cannot be read, is not a preconditioner file, is damaged or truncated, or has another version.
pub const ANSATZ_ERR_FILE: c_int = -3;
/// A size or grid does not match (vector length, grid shape, cell indices).
pub const ANSATZ_ERR_SIZE: c_int = -4;
/// An input vector holds a NaN or an infinity, or the preconditioner produced one.
pub const ANSATZ_ERR_VALUE: c_int = -5;
/// An argument is invalid in another way (for example a path that is not UTF-8).
pub const ANSATZ_ERR_ARGUMENT: c_int = -6;
/// An internal error (a caught panic); the handle should be closed.
pub const ANSATZ_ERR_INTERNAL: c_int = -7;

/// A loaded preconditioner: the network of an exported file placed on a grid.
pub struct AnsatzPrecond {
    inner: Mutex<Loaded>,
}

struct Loaded {
    file: PrecondFile,
    device: Device,
    apply: NetworkPreconditioner,
    /// A copy of the input when it overlaps the output.
    scratch: Vec<f64>,
    /// The result before it is copied out.
    result: Vec<f64>,
}

/// The file's network on a `[nz, ny, nx]` grid with the unknowns at `cells`; a grid that does not fit is
/// reported with `misfit` (the trained grid of a file: `ANSATZ_ERR_FILE`; a caller's grid: `ANSATZ_ERR_SIZE`).
fn placed(
    file: &PrecondFile,
    device: &Device,
    grid: [usize; 3],
    cells: Vec<usize>,
    misfit: c_int,
) -> Result<NetworkPreconditioner, (c_int, String)> {
    let net = file.network(device).map_err(|e| (ANSATZ_ERR_FILE, e))?;
    NetworkPreconditioner::new(net, grid, cells, device.clone(), DType::F32).map_err(|e| (misfit, e))
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Addresses of the open handles.
fn registry() -> &'static Mutex<HashSet<usize>> {
    static OPEN: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashSet::new()))
}

fn set_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// Runs `body`, turning an error or a panic into its code and the thread's last error message.
fn guarded(what: &str, body: impl FnOnce() -> Result<(), (c_int, String)>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_error("");
            ANSATZ_OK
        }
        Ok(Err((code, message))) => {
            set_error(&format!("{what}: {message}"));
            code
        }
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(&format!("{what}: internal error: {detail}"));
            ANSATZ_ERR_INTERNAL
        }
    }
}

/// The handle behind `pc`, if it is open.
fn handle<'a>(pc: *const AnsatzPrecond) -> Result<&'a AnsatzPrecond, (c_int, String)> {
    if pc.is_null() {
        return Err((ANSATZ_ERR_NULL, "the handle is null".into()));
    }
    let open = registry().lock().map_err(|_| (ANSATZ_ERR_INTERNAL, "the handle registry is poisoned".into()))?;
    if !open.contains(&(pc as usize)) {
        return Err((ANSATZ_ERR_HANDLE, "not an open preconditioner (closed, or never opened)".into()));
    }
    // SAFETY: the address is registered, so it came from `Box::into_raw` in `ansatz_precond_open` and has not
    // been freed (closing removes it from the registry before freeing it).
    Ok(unsafe { &*pc })
}

fn lock(pc: &AnsatzPrecond) -> Result<std::sync::MutexGuard<'_, Loaded>, (c_int, String)> {
    pc.inner.lock().map_err(|_| (ANSATZ_ERR_INTERNAL, "the handle was left inconsistent by an earlier failure".into()))
}

/// Loads the preconditioner file at `path` (written by `ansatz precond export`) and stores a new handle in
/// `*out`. The handle starts on the grid the network was trained on, with every cell an unknown; call
/// `ansatz_precond_set_grid` for another grid or for solid cells. Returns 0, or `ANSATZ_ERR_NULL`,
/// `ANSATZ_ERR_ARGUMENT` (a path that is not UTF-8) or `ANSATZ_ERR_FILE` (unreadable, not a preconditioner file,
/// damaged, truncated, or another format version); on failure `*out` is set to NULL.
///
/// # Safety
/// `path` must be a NUL-terminated string and `out` a valid pointer to writable storage for a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ansatz_precond_open(path: *const c_char, out: *mut *mut AnsatzPrecond) -> c_int {
    guarded("ansatz_precond_open", || {
        if out.is_null() {
            return Err((ANSATZ_ERR_NULL, "`out` is null".into()));
        }
        // SAFETY: `out` is non-null and, by contract, writable.
        unsafe { *out = std::ptr::null_mut() };
        if path.is_null() {
            return Err((ANSATZ_ERR_NULL, "`path` is null".into()));
        }
        // SAFETY: `path` is non-null and, by contract, NUL-terminated.
        let path = unsafe { CStr::from_ptr(path) }
            .to_str()
            .map_err(|_| (ANSATZ_ERR_ARGUMENT, "the path is not UTF-8".into()))?;
        let file = PrecondFile::load(Path::new(path)).map_err(|e| (ANSATZ_ERR_FILE, e.to_string()))?;
        let device = Device::flex();
        let grid = file.header.trained_grid;
        let cells: Vec<usize> = (0..grid.iter().product()).collect();
        let apply =
            placed(&file, &device, grid, cells, ANSATZ_ERR_FILE).map_err(|(code, e)| (code, format!("{path}: {e}")))?;
        let loaded = Loaded { file, device, apply, scratch: vec![], result: vec![] };
        let ptr = Box::into_raw(Box::new(AnsatzPrecond { inner: Mutex::new(loaded) }));
        match registry().lock() {
            Ok(mut open) => {
                open.insert(ptr as usize);
            }
            Err(_) => {
                // SAFETY: `ptr` was created just above and never shared.
                drop(unsafe { Box::from_raw(ptr) });
                return Err((ANSATZ_ERR_INTERNAL, "the handle registry is poisoned".into()));
            }
        }
        // SAFETY: as above.
        unsafe { *out = ptr };
        Ok(())
    })
}

/// Places the preconditioner on an `nx × ny × nz` grid of cells (`nz = 1` for a 2D network), cell
/// `i + nx (j + ny k)`, x fastest, as `ansatz export-system` numbers them. Unknown `u` of the vectors passed to
/// `ansatz_precond_apply` sits in cell `cells[u]`, for `u < ncells`; other cells (solids) are zero. With `cells`
/// NULL every cell is an unknown, in order (then `ncells` must be `nx ny nz`). The network applies to any grid
/// size. Returns 0, or `ANSATZ_ERR_NULL`, `ANSATZ_ERR_HANDLE` or `ANSATZ_ERR_SIZE` (a zero side, a 2D network
/// with `nz ≠ 1`, a cell outside the grid, a repeated cell, or `ncells` not `nx ny nz` without `cells`); on
/// failure the handle keeps its previous grid.
///
/// # Safety
/// `pc` must be NULL or a handle from `ansatz_precond_open` (a closed one is detected); `cells`, when not NULL,
/// must point to `ncells` readable values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ansatz_precond_set_grid(
    pc: *mut AnsatzPrecond,
    nx: usize,
    ny: usize,
    nz: usize,
    cells: *const usize,
    ncells: usize,
) -> c_int {
    guarded("ansatz_precond_set_grid", || {
        let h = handle(pc)?;
        if nx == 0 || ny == 0 || nz == 0 {
            return Err((ANSATZ_ERR_SIZE, format!("the grid {nx} × {ny} × {nz} has a zero side")));
        }
        let total = nx
            .checked_mul(ny)
            .and_then(|v| v.checked_mul(nz))
            .ok_or((ANSATZ_ERR_SIZE, format!("the grid {nx} × {ny} × {nz} is too large")))?;
        let list: Vec<usize> = if cells.is_null() {
            if ncells != total {
                return Err((
                    ANSATZ_ERR_SIZE,
                    format!("without `cells`, `ncells` must be nx ny nz = {total}, got {ncells}"),
                ));
            }
            (0..total).collect()
        } else {
            if ncells > total {
                return Err((ANSATZ_ERR_SIZE, format!("{ncells} unknowns on a grid of {total} cells")));
            }
            // SAFETY: non-null and, by contract, `ncells` readable values.
            let given = unsafe { std::slice::from_raw_parts(cells, ncells) };
            let mut seen = vec![false; total];
            for (u, &c) in given.iter().enumerate() {
                if c >= total {
                    return Err((ANSATZ_ERR_SIZE, format!("unknown {u} at cell {c}, outside the {total} cells")));
                }
                if std::mem::replace(&mut seen[c], true) {
                    return Err((ANSATZ_ERR_SIZE, format!("cell {c} holds two unknowns (unknown {u} repeats it)")));
                }
            }
            given.to_vec()
        };
        let mut l = lock(h)?;
        l.apply = placed(&l.file, &l.device, [nz, ny, nx], list, ANSATZ_ERR_SIZE)?;
        Ok(())
    })
}

/// Stores in `*n` the length of the vectors `ansatz_precond_apply` takes (the unknowns of the current grid).
/// Returns 0, or `ANSATZ_ERR_NULL` or `ANSATZ_ERR_HANDLE`.
///
/// # Safety
/// `pc` must be NULL or a handle from `ansatz_precond_open`; `n` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ansatz_precond_size(pc: *const AnsatzPrecond, n: *mut usize) -> c_int {
    guarded("ansatz_precond_size", || {
        let h = handle(pc)?;
        if n.is_null() {
            return Err((ANSATZ_ERR_NULL, "`n` is null".into()));
        }
        let l = lock(h)?;
        // SAFETY: non-null and, by contract, writable.
        unsafe { *n = l.apply.len() };
        Ok(())
    })
}

/// Stores the current grid in `*nx`, `*ny`, `*nz` (any of them may be NULL). Returns 0, or `ANSATZ_ERR_NULL` or
/// `ANSATZ_ERR_HANDLE`.
///
/// # Safety
/// `pc` must be NULL or a handle from `ansatz_precond_open`; each pointer must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ansatz_precond_grid(
    pc: *const AnsatzPrecond,
    nx: *mut usize,
    ny: *mut usize,
    nz: *mut usize,
) -> c_int {
    guarded("ansatz_precond_grid", || {
        let h = handle(pc)?;
        let [z, y, x] = lock(h)?.apply.grid();
        for (p, v) in [(nx, x), (ny, y), (nz, z)] {
            if !p.is_null() {
                // SAFETY: non-null and, by contract, writable.
                unsafe { *p = v };
            }
        }
        Ok(())
    })
}

/// Stores in `*linear` 1 when the preconditioner is a fixed linear, symmetric and positive definite map (a
/// multilevel network: plain preconditioned CG, such as PETSc's KSPCG, may use it), 0 when it is nonlinear (the
/// residual CNN: use a flexible method). Returns 0, or `ANSATZ_ERR_NULL` or `ANSATZ_ERR_HANDLE`.
///
/// # Safety
/// `pc` must be NULL or a handle from `ansatz_precond_open`; `linear` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ansatz_precond_is_linear(pc: *const AnsatzPrecond, linear: *mut c_int) -> c_int {
    guarded("ansatz_precond_is_linear", || {
        let h = handle(pc)?;
        if linear.is_null() {
            return Err((ANSATZ_ERR_NULL, "`linear` is null".into()));
        }
        let value = c_int::from(lock(h)?.apply.is_linear());
        // SAFETY: non-null and, by contract, writable.
        unsafe { *linear = value };
        Ok(())
    })
}

/// Applies the preconditioner: `z ≈ c A⁻¹ r` for a scale `c > 0` that a flexible method's line search absorbs.
/// `r` and `z` hold `n` values in the ordering of the grid set by `ansatz_precond_set_grid` (or the trained grid);
/// they may be the same array. The preconditioner is in general nonlinear: use it inside a flexible method
/// (flexible CG, PETSc's KSPFCG or KSPGCR), or in plain CG where `ansatz_precond_is_linear` says it is linear. A zero `r` gives a zero `z`. Returns 0, or `ANSATZ_ERR_NULL`,
/// `ANSATZ_ERR_HANDLE`, `ANSATZ_ERR_SIZE` (`n` is not the handle's size) or `ANSATZ_ERR_VALUE` (`r` holds a NaN
/// or an infinity; `z` is then left unchanged).
///
/// # Safety
/// `pc` must be NULL or a handle from `ansatz_precond_open`; `r` must point to `n` readable and `z` to `n`
/// writable values (or be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ansatz_precond_apply(pc: *mut AnsatzPrecond, n: usize, r: *const f64, z: *mut f64) -> c_int {
    guarded("ansatz_precond_apply", || {
        let h = handle(pc)?;
        if r.is_null() || z.is_null() {
            return Err((ANSATZ_ERR_NULL, format!("`{}` is null", if r.is_null() { "r" } else { "z" })));
        }
        let mut l = lock(h)?;
        let size = l.apply.len();
        if n != size {
            return Err((
                ANSATZ_ERR_SIZE,
                format!("vectors of {n} values, the preconditioner's grid has {size} unknowns"),
            ));
        }
        let loaded = &mut *l;
        let bytes = n * std::mem::size_of::<f64>();
        let overlap = (r as usize) < (z as usize) + bytes && (z as usize) < (r as usize) + bytes;
        let input: &[f64] = if overlap {
            // SAFETY: `r` points to `n` readable values; the copy ends before `z` is written.
            let src = unsafe { std::slice::from_raw_parts(r, n) };
            loaded.scratch.clear();
            loaded.scratch.extend_from_slice(src);
            &loaded.scratch
        } else {
            // SAFETY: `r` points to `n` readable values that `z` does not overlap.
            unsafe { std::slice::from_raw_parts(r, n) }
        };
        if let Some(i) = input.iter().position(|v| !v.is_finite()) {
            return Err((ANSATZ_ERR_VALUE, format!("r[{i}] = {} is not finite", input[i])));
        }
        let out = &mut loaded.result;
        out.resize(n, 0.0);
        loaded.apply.apply(input, out);
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err((ANSATZ_ERR_VALUE, format!("the preconditioner produced a non-finite value at {i}")));
        }
        // SAFETY: `z` points to `n` writable values; `input` is no longer used.
        unsafe { std::slice::from_raw_parts_mut(z, n) }.copy_from_slice(out);
        Ok(())
    })
}

/// Frees a handle. NULL is ignored; a handle that is not open (closed twice, or foreign) is left alone and
/// recorded in `ansatz_last_error`.
///
/// # Safety
/// `pc` must be NULL or a value `ansatz_precond_open` stored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ansatz_precond_close(pc: *mut AnsatzPrecond) {
    if pc.is_null() {
        return;
    }
    let _ = guarded("ansatz_precond_close", || {
        let mut open =
            registry().lock().map_err(|_| (ANSATZ_ERR_INTERNAL, "the handle registry is poisoned".to_string()))?;
        if !open.remove(&(pc as usize)) {
            return Err((ANSATZ_ERR_HANDLE, "not an open preconditioner (closed twice, or never opened)".into()));
        }
        drop(open);
        // SAFETY: the address was registered, so it came from `Box::into_raw` and is freed only here.
        drop(unsafe { Box::from_raw(pc) });
        Ok(())
    });
}

/// The message of the last failed call on this thread ("" after a successful one). The text stays valid until the
/// next call into the library on the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn ansatz_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library's version, e.g. "0.1.0" (a static string).
#[unsafe(no_mangle)]
pub extern "C" fn ansatz_version() -> *const c_char {
    static VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// The preconditioner file format version this library reads (files from `ansatz precond export`).
#[unsafe(no_mangle)]
pub extern "C" fn ansatz_file_version() -> u32 {
    ansatz_operators::precond_file::VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> String {
        // SAFETY: the pointer is the thread's current message, valid until the next call.
        unsafe { CStr::from_ptr(ansatz_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_inside_becomes_an_internal_error_with_its_message() {
        let code = guarded("ansatz_test", || panic!("a broken invariant"));
        assert_eq!(code, ANSATZ_ERR_INTERNAL);
        assert_eq!(message(), "ansatz_test: internal error: a broken invariant");
        let code = guarded("ansatz_test", || panic!("{} formatted", 2));
        assert_eq!(code, ANSATZ_ERR_INTERNAL);
        assert!(message().contains("2 formatted"));
        assert_eq!(guarded("ansatz_test", || Ok(())), ANSATZ_OK);
        assert_eq!(message(), "");
        assert_eq!(guarded("ansatz_test", || Err((ANSATZ_ERR_SIZE, "nul \0 inside".into()))), ANSATZ_ERR_SIZE);
        assert_eq!(message(), "ansatz_test: nul   inside");
    }
}
