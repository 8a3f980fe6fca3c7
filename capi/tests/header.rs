//! The checked-in header `capi/include/ansatz.h` must equal a fresh cbindgen generation from `src/lib.rs`.
//! `make header` (or `ANSATZ_BLESS=1 cargo test -p ansatz-capi --test header`) rewrites it.

use std::path::Path;

#[test]
fn the_checked_in_header_matches_a_fresh_generation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("capi/cbindgen.toml");
    let bindings =
        cbindgen::Builder::new().with_crate(dir).with_config(config).generate().expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = dir.join("include").join("ansatz.h");
    if std::env::var_os("ANSATZ_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write capi/include/ansatz.h");
        return;
    }
    let stored = std::fs::read(&path).unwrap_or_default();
    assert!(
        stored == fresh,
        "capi/include/ansatz.h differs from a fresh generation from capi/src/lib.rs; run `make header` and commit it"
    );
}
