# Two commands on a fresh Debian 12 machine (as root): `make demo` and `make test`.
# Both install what is missing first and skip the install when everything is present.

SHELL := /bin/bash
APT_PACKAGES := build-essential pkg-config curl ca-certificates libclang-dev \
                libnetcdf-dev netcdf-bin libopenmpi-dev openmpi-bin python3-venv
CARGO ?= $(shell command -v cargo 2>/dev/null || echo $(HOME)/.cargo/bin/cargo)
# Python environment for the xarray client test (examples/python/open_dataset.py) and the CF compliance check
# (tests/python/cf_check.py; the checker's version is pinned so that its rules cannot change under the tests)
PYENV := target/pyenv
PYSTAMP := $(PYENV)/.installed-3

.PHONY: demo test test-deps c-abi capi header install bench-capi check-wgpu gpu-bundle gpu-check lint bench bench-petsc deps system-deps petsc-deps rust fuzz hostile

demo: deps
	$(CARGO) build --release --bin ansatz
	./target/release/ansatz demo

test: deps test-deps $(PYSTAMP)
	ANSATZ_PYTHON=$(CURDIR)/$(PYENV)/bin/python $(CARGO) test --workspace
	$(MAKE) c-abi
	$(MAKE) check-wgpu

# What only the tests need: valgrind, gfortran and PETSc for the C ABI's checks.
test-deps:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="valgrind gfortran petsc-dev"

# The C ABI from C, Fortran and PETSc (capi/tests/c/check.sh): every error path and the plain-C flexible CG under
# valgrind, the same solve in Fortran, the PETSc example, and an installation used through pkg-config.
c-abi: deps test-deps
	$(CARGO) build -p ansatz-capi
	$(CARGO) build --bin ansatz
	capi/tests/c/check.sh target/debug

# libansatz (capi/): `make install PREFIX=/opt/ansatz` installs lib/libansatz.so, lib/libansatz.a,
# include/ansatz.h, lib/pkgconfig/ansatz.pc and ansatz-static.pc (PREFIX defaults to /usr/local; DESTDIR is
# honoured). Then `pkg-config --cflags --libs ansatz` builds a C program against the shared library (`--static`
# adds the system libraries the archive needs) and `pkg-config --cflags --libs ansatz-static` against the archive.
# PROFILE=debug installs the debug build instead (the tests do).
PREFIX ?= /usr/local
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
capi: deps
	$(CARGO) build $(if $(filter release,$(PROFILE)),--release) -p ansatz-capi

install: capi
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 target/$(PROFILE)/libansatz.so $(DESTDIR)$(PREFIX)/lib/libansatz.so
	install -m 644 target/$(PROFILE)/libansatz.a $(DESTDIR)$(PREFIX)/lib/libansatz.a
	install -m 644 capi/include/ansatz.h $(DESTDIR)$(PREFIX)/include/ansatz.h
	for pc in ansatz ansatz-static; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' capi/$$pc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc; \
	done
	@echo "installed libansatz $(VERSION) under $(DESTDIR)$(PREFIX); PKG_CONFIG_PATH=$(DESTDIR)$(PREFIX)/lib/pkgconfig if it is not searched"

# The cost of one ansatz_precond_apply from C against the same application from Rust (release builds), on the
# 128² grid by default: BENCH_MODEL=net.apc (an `ansatz precond export` file) is required.
BENCH_GRID ?= 128 128
bench-capi: deps
	@test -n "$(BENCH_MODEL)" || { echo "BENCH_MODEL=net.apc is required"; exit 2; }
	$(CARGO) build --release -p ansatz-capi
	$(CARGO) build --release -p ansatz-benches --example precond_apply
	cc -O2 -Wall -Werror -std=c11 -I capi/include capi/benches/apply.c -L target/release -lansatz \
	  -Wl,-rpath,$(CURDIR)/target/release -lm -o target/release/apply_c
	for k in 1 2 3; do \
	  RAYON_NUM_THREADS=$${RAYON_NUM_THREADS:-2} ./target/release/examples/precond_apply $(BENCH_MODEL) $(BENCH_GRID); \
	  RAYON_NUM_THREADS=$${RAYON_NUM_THREADS:-2} ./target/release/apply_c $(BENCH_MODEL) $(BENCH_GRID); \
	done

# Regenerates capi/include/ansatz.h from capi/src/lib.rs (a test fails while the checked-in header is stale).
header: deps
	ANSATZ_BLESS=1 $(CARGO) test -p ansatz-capi --test header

# The GPU path (burn's wgpu backend) must compile; CI machines have no GPU to run it (see docs/benchmarks.md).
check-wgpu: deps
	$(CARGO) check --features wgpu --bin ansatz

# The GPU run. `make gpu-bundle` (here) builds the wgpu binary and collects into target/gpu-bundle (< 64 MiB)
# everything a bare GPU machine lacks; `make gpu-check` (there, from the bundle alone: no registry, no cargo)
# runs the checks of benches/gpu/gpu_check.py and writes results.json and results.md to $$OUT or
# gpu-check-results/. GPU_CHECK_ARGS=--cpu runs the same checks on the CPU backend (see docs/benchmarks.md).
GPU_BUNDLE ?= target/gpu-bundle
gpu-bundle: deps
	$(CARGO) build --release --features wgpu --bin ansatz
	benches/gpu/bundle.sh $(GPU_BUNDLE)

gpu-check:
	python3 $(GPU_BUNDLE)/gpu_check.py $(GPU_CHECK_ARGS)

$(PYSTAMP):
	python3 -m venv $(PYENV)
	$(PYENV)/bin/pip install --quiet --disable-pip-version-check netCDF4 xarray scipy compliance-checker==6.1.0
	touch $@

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps
	$(CARGO) bench -p ansatz-benches

# Our CG, SSOR-, IC(0)- and multigrid-PCG against PETSc's KSPCG (PCNONE, PCSOR, PCICC, PCGAMG) on the same
# exported systems, one thread, ratios printed (benches/examples/petsc_compare.rs, docs/benchmarks.md).
bench-petsc: deps petsc-deps
	$(CARGO) build --release -p ansatz-benches --example petsc_compare
	RAYON_NUM_THREADS=1 ./target/release/examples/petsc_compare

# Longer robustness runs: 1500 mutated files per format through `ansatz info`, then the fuzz target for 10 minutes
# (cargo-fuzz on the stable toolchain: RUSTC_BOOTSTRAP enables the flags it needs; no sanitizer).
hostile: deps
	ANSATZ_MUTANTS=1500 $(CARGO) test --release --test datasets hostile -- --nocapture

fuzz: deps
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none netcdf_file -- -max_total_time=600 -max_len=8192

deps: system-deps rust

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "Missing system packages:$$missing"; \
	  echo "Install them as root, then run make again:"; \
	  echo "  apt-get update && apt-get install -y$$missing"; \
	  exit 1; \
	fi; \
	echo "Installing system packages:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q --no-install-recommends$$missing

# PETSc (Debian's petsc-dev, with its MPI compiler wrapper) for the PETSc comparison.
petsc-deps:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="petsc-dev"

rust:
	@if [ -x "$(CARGO)" ]; then exit 0; fi; \
	echo "cargo not found: installing the stable Rust toolchain with rustup into $(HOME)/.cargo"; \
	curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy \
	  || { echo "Could not install Rust; install Rust >= 1.85 (https://rustup.rs) and run make again"; exit 1; }
