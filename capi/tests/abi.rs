//! The C ABI from Rust: a round trip against the network applied directly, every error path with its code and
//! message, in-place application, and several threads on several handles.

use std::ffi::{CStr, CString, c_int};
use std::path::{Path, PathBuf};
use std::ptr;

use ansatz::*;
use ansatz_operators::dcdm::NetworkPreconditioner;
use ansatz_operators::init::Init;
use ansatz_operators::precond_file::{NetworkKind, NetworkSpec, PrecondFile};
use ansatz_solvers::precond::Preconditioner;
use burn::prelude::Device;
use burn::tensor::DType;

fn spec(kind: NetworkKind) -> NetworkSpec {
    NetworkSpec {
        dims: 2,
        channels: 3,
        fine_pairs: 1,
        coarse_pairs: 1,
        post_pairs: 1,
        odd: true,
        levels: 0,
        level_pairs: 1,
        kind,
        convs: 2,
    }
}

/// An exported file of an untrained network (seed `seed`) trained "on" 8×6.
fn write_file(dir: &Path, name: &str, kind: NetworkKind, seed: u64) -> PathBuf {
    let net = spec(kind).config().init(&mut Init::new(seed, &Device::flex())).unwrap();
    let file = PrecondFile::of_network(&net, spec(kind), [1, 6, 8], "test".into());
    let path = dir.join(name);
    file.save(&path, true).unwrap();
    path
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(ansatz_last_error()) }.to_string_lossy().into_owned()
}

fn open(path: &Path) -> *mut AnsatzPrecond {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut pc = ptr::null_mut();
    assert_eq!(unsafe { ansatz_precond_open(c.as_ptr(), &mut pc) }, ANSATZ_OK, "{}", last_error());
    assert!(!pc.is_null());
    pc
}

fn field(n: usize, k: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + 0.5) * k).sin() + 0.2).collect()
}

#[test]
fn the_abi_gives_the_network_s_output_bit_for_bit_on_any_grid() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [NetworkKind::Residual, NetworkKind::Multilevel] {
        let path = write_file(dir.path(), "net.apc", kind, 3);
        let pc = open(&path);
        let mut n = 0usize;
        assert_eq!(unsafe { ansatz_precond_size(pc, &mut n) }, ANSATZ_OK);
        assert_eq!(n, 48, "the trained grid, every cell an unknown");
        let (mut nx, mut ny, mut nz) = (0, 0, 0);
        assert_eq!(unsafe { ansatz_precond_grid(pc, &mut nx, &mut ny, &mut nz) }, ANSATZ_OK);
        assert_eq!((nx, ny, nz), (8, 6, 1));
        // the multilevel network is linear (plain CG may use it), the residual CNN is not
        let mut linear = -1;
        assert_eq!(unsafe { ansatz_precond_is_linear(pc, &mut linear) }, ANSATZ_OK);
        assert_eq!(linear, i32::from(kind == NetworkKind::Multilevel), "{kind:?}");
        // another grid with solid cells: every third cell is solid
        let cells: Vec<usize> = (0..10 * 7).filter(|c| c % 3 != 0).collect();
        assert_eq!(unsafe { ansatz_precond_set_grid(pc, 10, 7, 1, cells.as_ptr(), cells.len()) }, ANSATZ_OK);
        assert_eq!(unsafe { ansatz_precond_size(pc, &mut n) }, ANSATZ_OK);
        assert_eq!(n, cells.len());
        let r = field(n, 0.37);
        let mut z = vec![0.0; n];
        assert_eq!(unsafe { ansatz_precond_apply(pc, n, r.as_ptr(), z.as_mut_ptr()) }, ANSATZ_OK);
        let file = PrecondFile::load(&path).unwrap();
        let dev = Device::flex();
        let direct =
            NetworkPreconditioner::new(file.network(&dev).unwrap(), [1, 7, 10], cells, dev, DType::F32).unwrap();
        let mut expected = vec![0.0; n];
        direct.apply(&r, &mut expected);
        assert_eq!(z, expected, "{kind:?}");
        // in place: r and z the same array
        let mut inplace = r.clone();
        let p = inplace.as_mut_ptr();
        assert_eq!(unsafe { ansatz_precond_apply(pc, n, p, p) }, ANSATZ_OK);
        assert_eq!(inplace, expected);
        // a zero residual gives a zero direction
        let zero = vec![0.0; n];
        assert_eq!(unsafe { ansatz_precond_apply(pc, n, zero.as_ptr(), z.as_mut_ptr()) }, ANSATZ_OK);
        assert!(z.iter().all(|&v| v == 0.0));
        unsafe { ansatz_precond_close(pc) };
    }
    assert!(!unsafe { CStr::from_ptr(ansatz_version()) }.to_str().unwrap().is_empty());
    assert_eq!(ansatz_file_version(), ansatz_operators::precond_file::VERSION);
}

fn expect(code: c_int, want: c_int, words: &str) {
    let msg = last_error();
    assert_eq!(code, want, "{msg}");
    assert!(msg.contains(words), "'{msg}' should mention '{words}'");
}

#[test]
fn every_error_path_returns_its_code_and_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "net.apc", NetworkKind::Multilevel, 1);
    let mut pc = ptr::null_mut();
    // open: null arguments, a missing file, a damaged one, a truncated one, another version, not UTF-8
    let good = CString::new(path.to_str().unwrap()).unwrap();
    expect(unsafe { ansatz_precond_open(ptr::null(), &mut pc) }, ANSATZ_ERR_NULL, "path");
    assert!(pc.is_null());
    expect(unsafe { ansatz_precond_open(good.as_ptr(), ptr::null_mut()) }, ANSATZ_ERR_NULL, "out");
    let missing = CString::new(dir.path().join("none.apc").to_str().unwrap()).unwrap();
    expect(unsafe { ansatz_precond_open(missing.as_ptr(), &mut pc) }, ANSATZ_ERR_FILE, "none.apc");
    let bytes = std::fs::read(&path).unwrap();
    let mut flipped = bytes.clone();
    let at = bytes.len() - 40;
    flipped[at] ^= 0x10;
    let damaged = dir.path().join("damaged.apc");
    std::fs::write(&damaged, &flipped).unwrap();
    let damaged = CString::new(damaged.to_str().unwrap()).unwrap();
    expect(unsafe { ansatz_precond_open(damaged.as_ptr(), &mut pc) }, ANSATZ_ERR_FILE, "checksum");
    let truncated = dir.path().join("truncated.apc");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let truncated = CString::new(truncated.to_str().unwrap()).unwrap();
    expect(unsafe { ansatz_precond_open(truncated.as_ptr(), &mut pc) }, ANSATZ_ERR_FILE, "truncated.apc");
    let text = dir.path().join("text.apc");
    std::fs::write(&text, b"hello, world").unwrap();
    let text = CString::new(text.to_str().unwrap()).unwrap();
    expect(unsafe { ansatz_precond_open(text.as_ptr(), &mut pc) }, ANSATZ_ERR_FILE, "not an Ansatz preconditioner");
    // another format version, with a valid checksum
    let mut versioned = bytes[..bytes.len() - 32].to_vec();
    versioned[8..12].copy_from_slice(&99u32.to_le_bytes());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&versioned);
    versioned.extend_from_slice(&digest);
    let versioned_path = dir.path().join("v99.apc");
    std::fs::write(&versioned_path, &versioned).unwrap();
    let versioned_path = CString::new(versioned_path.to_str().unwrap()).unwrap();
    expect(unsafe { ansatz_precond_open(versioned_path.as_ptr(), &mut pc) }, ANSATZ_ERR_FILE, "version");
    let latin1 = CString::new(vec![b'n', 0xE9, b't']).unwrap();
    expect(unsafe { ansatz_precond_open(latin1.as_ptr(), &mut pc) }, ANSATZ_ERR_ARGUMENT, "UTF-8");
    assert!(pc.is_null());

    let pc = open(&path);
    let mut n = 0usize;
    expect(unsafe { ansatz_precond_size(pc, ptr::null_mut()) }, ANSATZ_ERR_NULL, "`n`");
    expect(unsafe { ansatz_precond_is_linear(pc, ptr::null_mut()) }, ANSATZ_ERR_NULL, "`linear`");
    expect(unsafe { ansatz_precond_is_linear(ptr::null(), &mut 0) }, ANSATZ_ERR_NULL, "handle");
    expect(unsafe { ansatz_precond_size(ptr::null(), &mut n) }, ANSATZ_ERR_NULL, "handle");
    // a foreign pointer is not dereferenced
    let mut junk = [0u64; 8];
    let foreign = junk.as_mut_ptr() as *mut AnsatzPrecond;
    expect(unsafe { ansatz_precond_size(foreign, &mut n) }, ANSATZ_ERR_HANDLE, "not an open preconditioner");
    // set_grid: zero side, cells outside, repeated cells, a wrong count without cells
    expect(unsafe { ansatz_precond_set_grid(pc, 0, 4, 1, ptr::null(), 0) }, ANSATZ_ERR_SIZE, "zero side");
    let outside = [0usize, 1, 99];
    expect(unsafe { ansatz_precond_set_grid(pc, 4, 4, 1, outside.as_ptr(), 3) }, ANSATZ_ERR_SIZE, "outside");
    let twice = [0usize, 5, 5];
    expect(unsafe { ansatz_precond_set_grid(pc, 4, 4, 1, twice.as_ptr(), 3) }, ANSATZ_ERR_SIZE, "two unknowns");
    expect(unsafe { ansatz_precond_set_grid(pc, 4, 4, 1, ptr::null(), 15) }, ANSATZ_ERR_SIZE, "16");
    expect(unsafe { ansatz_precond_set_grid(pc, 4, 4, 2, ptr::null(), 32) }, ANSATZ_ERR_SIZE, "nz = 1");
    // the failed calls left the trained grid
    assert_eq!(unsafe { ansatz_precond_size(pc, &mut n) }, ANSATZ_OK);
    assert_eq!(n, 48);
    assert_eq!(last_error(), "", "a successful call clears the message");
    // apply: wrong size, null vectors, non-finite input (z untouched)
    let r = field(48, 0.5);
    let mut z = vec![7.0; 48];
    expect(unsafe { ansatz_precond_apply(pc, 47, r.as_ptr(), z.as_mut_ptr()) }, ANSATZ_ERR_SIZE, "48 unknowns");
    expect(unsafe { ansatz_precond_apply(pc, 48, ptr::null(), z.as_mut_ptr()) }, ANSATZ_ERR_NULL, "`r`");
    expect(unsafe { ansatz_precond_apply(pc, 48, r.as_ptr(), ptr::null_mut()) }, ANSATZ_ERR_NULL, "`z`");
    let mut bad = r.clone();
    bad[17] = f64::NAN;
    expect(unsafe { ansatz_precond_apply(pc, 48, bad.as_ptr(), z.as_mut_ptr()) }, ANSATZ_ERR_VALUE, "r[17]");
    bad[17] = f64::INFINITY;
    expect(unsafe { ansatz_precond_apply(pc, 48, bad.as_ptr(), z.as_mut_ptr()) }, ANSATZ_ERR_VALUE, "r[17]");
    assert!(z.iter().all(|&v| v == 7.0), "z is left unchanged on failure");
    // close, then every use of the closed handle is refused, and a second close is recorded, not a crash
    unsafe { ansatz_precond_close(pc) };
    expect(unsafe { ansatz_precond_size(pc, &mut n) }, ANSATZ_ERR_HANDLE, "closed");
    expect(unsafe { ansatz_precond_apply(pc, 48, r.as_ptr(), z.as_mut_ptr()) }, ANSATZ_ERR_HANDLE, "closed");
    unsafe { ansatz_precond_close(pc) };
    assert!(last_error().contains("closed twice"), "{}", last_error());
    unsafe { ansatz_precond_close(ptr::null_mut()) };
}

#[test]
fn threads_use_their_own_handles_at_once_and_get_their_own_messages() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| {
            let kind = if i % 2 == 0 { NetworkKind::Multilevel } else { NetworkKind::Residual };
            write_file(dir.path(), &format!("net{i}.apc"), kind, i as u64)
        })
        .collect();
    // the expected outputs, computed on this thread
    let r = field(48, 0.77);
    let expected: Vec<Vec<f64>> = paths
        .iter()
        .map(|p| {
            let pc = open(p);
            let mut z = vec![0.0; 48];
            assert_eq!(unsafe { ansatz_precond_apply(pc, 48, r.as_ptr(), z.as_mut_ptr()) }, ANSATZ_OK);
            unsafe { ansatz_precond_close(pc) };
            z
        })
        .collect();
    std::thread::scope(|s| {
        for (i, (p, want)) in paths.iter().zip(&expected).enumerate() {
            let r = &r;
            s.spawn(move || {
                let pc = open(p);
                for round in 0..20 {
                    let mut z = vec![0.0; 48];
                    assert_eq!(unsafe { ansatz_precond_apply(pc, 48, r.as_ptr(), z.as_mut_ptr()) }, ANSATZ_OK);
                    assert_eq!(&z, want, "thread {i}, round {round}");
                    // an error on this thread does not leak into the others' messages
                    let code = unsafe { ansatz_precond_apply(pc, 47, r.as_ptr(), z.as_mut_ptr()) };
                    assert_eq!(code, ANSATZ_ERR_SIZE);
                    assert!(last_error().contains("47"), "{}", last_error());
                }
                unsafe { ansatz_precond_close(pc) };
            });
        }
    });
    // one handle shared by two threads is serialised, not corrupted
    let pc = open(&paths[0]);
    let shared = pc as usize;
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (r, want) = (&r, &expected[0]);
            s.spawn(move || {
                for _ in 0..10 {
                    let mut z = vec![0.0; 48];
                    let pc = shared as *mut AnsatzPrecond;
                    assert_eq!(unsafe { ansatz_precond_apply(pc, 48, r.as_ptr(), z.as_mut_ptr()) }, ANSATZ_OK);
                    assert_eq!(&z, want);
                }
            });
        }
    });
    unsafe { ansatz_precond_close(pc) };
}
