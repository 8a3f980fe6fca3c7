#!/usr/bin/env bash
# The C ABI from C (run by `make test` after `cargo build -p ansatz-capi`):
#  1. capi/tests/c/abi_errors.c: every error path, and threads, under valgrind (memcheck: no errors, no definite
#     leaks);
#  2. examples/c/fcg.c: flexible CG in plain C with a trained network on an exported system with solid cells,
#     under valgrind; its iterations equal `ansatz precond solve --method fcg` on the same system and its solution
#     agrees to 1e-10 (relative);
#  3. examples/fortran/fcg.f90 (gfortran, ISO_C_BINDING): the same solve, the same iterations;
#  4. examples/petsc/pcshell.c: the network as a PCSHELL in KSPFCG, KSPGCR and KSPCG beside KSPCG with PCICC, PCGAMG
#     and no preconditioner (PETSc from Debian's petsc-dev); every solve must converge;
#  5. `make install` into a temporary prefix, then fcg.c built through `pkg-config ansatz` (shared) and
#     `pkg-config ansatz-static` (the archive: the program must not need libansatz.so), both giving the same
#     iterations.
# Usage: capi/tests/c/check.sh [PROFILE_DIR]   (default target/debug: libansatz.so and the ansatz binary)
set -euo pipefail
cd "$(dirname "$0")/../../.."
LIBDIR=${1:-target/debug}
ANSATZ=${ANSATZ:-$LIBDIR/ansatz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VALGRIND=(valgrind --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite)

# a small trained network and a system it has not seen (another seed, other solids and coefficients, a larger grid)
"$ANSATZ" generate ritz-poisson2d --samples 240 --set grid.n=16 --set systems.count=4 --set lanczos.steps=60 \
  --out "$work/ritz.nc" > /dev/null
"$ANSATZ" precond train dcdm-poisson2d --data "$work/ritz.nc" --out "$work/run" --set model.channels=4 \
  --set training.steps=150 --set training.validate_every=0 > /dev/null
"$ANSATZ" precond export --run "$work/run" --out "$work/net.apc" > /dev/null
"$ANSATZ" export-system ritz-poisson2d --seed 5 --set grid.n=24 --set mask.max_solids=2 --set lanczos.steps=20 \
  --system 1 --out "$work/A.mtx" > /dev/null

CFLAGS=(-O2 -g -Wall -Wextra -Werror -std=c11 -I capi/include)
LIBS=(-L "$LIBDIR" -lansatz -Wl,-rpath,"$(cd "$LIBDIR" && pwd)" -lm -lpthread)

# 1. error paths
cp "$work/net.apc" "$work/damaged.apc"
size=$(stat -c %s "$work/net.apc")
printf '\x55' | dd of="$work/damaged.apc" bs=1 seek=$((size - 40)) conv=notrunc status=none
head -c $((size / 2)) "$work/net.apc" > "$work/truncated.apc"
cc "${CFLAGS[@]}" -D_POSIX_C_SOURCE=200809L capi/tests/c/abi_errors.c "${LIBS[@]}" -o "$work/abi_errors"
"${VALGRIND[@]}" "$work/abi_errors" "$work/net.apc" "$work/damaged.apc" "$work/truncated.apc"

# 2. flexible CG in C against the command line
cc "${CFLAGS[@]}" examples/c/fcg.c "${LIBS[@]}" -o "$work/fcg"
"${VALGRIND[@]}" "$work/fcg" "$work/net.apc" "$work/A.mtx" --tol 1e-8 --solution "$work/x_c.mtx" | tee "$work/c.txt"
"$ANSATZ" precond solve --model "$work/net.apc" --system "$work/A.mtx" --method fcg --tol 1e-8 --json \
  --solution "$work/x_rust.mtx" > "$work/rust.json"
c_its=$(awk '/^iterations/ {print $2}' "$work/c.txt")
rust_its=$(sed -n 's/.*"iterations": \([0-9]*\).*/\1/p' "$work/rust.json")
[ -n "$c_its" ] && [ "$c_its" = "$rust_its" ] || { echo "C: $c_its iterations, ansatz precond solve: $rust_its"; exit 1; }
compare() { # relative 2-norm difference of two MatrixMarket vectors
  awk 'FNR == 1 {file++; k = 0} /^%/ || NF != 1 {next} {k++} file == 1 {a[k] = $1}
       file == 2 {d += ($1 - a[k])^2; n += $1^2} END {printf "%.3e\n", sqrt(d / n)}' "$1" "$2"
}
rel=$(compare "$work/x_c.mtx" "$work/x_rust.mtx")
awk -v r="$rel" 'BEGIN {exit !(r < 1e-10)}' || { echo "C and Rust solutions differ by $rel"; exit 1; }
echo "C flexible CG: $c_its iterations (ansatz precond solve: $rust_its), solutions agree to $rel"

# 3. Fortran
if command -v gfortran > /dev/null; then
  gfortran -O2 -g -Wall -Werror -std=f2008 -fcheck=all examples/fortran/ansatz.f90 examples/fortran/fcg.f90 \
    "${LIBS[@]}" -o "$work/fcg_f" -J "$work"
  "${VALGRIND[@]}" "$work/fcg_f" "$work/net.apc" "$work/A.mtx" 1e-8 | tee "$work/f.txt"
  f_its=$(awk '/^iterations/ {print $2}' "$work/f.txt")
  [ "$f_its" = "$rust_its" ] || { echo "Fortran: $f_its iterations, ansatz precond solve: $rust_its"; exit 1; }
  echo "Fortran flexible CG: $f_its iterations"
else
  echo "gfortran not found: the Fortran example was not built (make test installs it)"; exit 1
fi

# 4. PETSc
pkg-config --exists PETSc || { echo "PETSc not found (Debian's petsc-dev; make test installs it)"; exit 1; }
mpicc -O2 -Wall -Wextra -Werror examples/petsc/pcshell.c $(pkg-config --cflags --libs PETSc) -I capi/include \
  "${LIBS[@]}" -o "$work/pcshell"
"$work/pcshell" "$work/net.apc" "$work/A.mtx" 1e-8 | tee "$work/petsc.txt"
# the check's network is multilevel, hence linear: plain KSPCG runs with it as well
if grep -q "not converged" "$work/petsc.txt" || [ "$(grep -c '^result' "$work/petsc.txt")" != 6 ]; then
  echo "a PETSc solve failed"; exit 1
fi

# 5. an installation used through pkg-config
profile=$(basename "$LIBDIR")
make --no-print-directory install PREFIX="$work/prefix" PROFILE="$profile" > /dev/null
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
for pc in ansatz ansatz-static; do
  # shellcheck disable=SC2046
  cc -O2 -Wall -Werror examples/c/fcg.c $(pkg-config --cflags --libs "$pc") -lm -o "$work/fcg-$pc"
  its=$("$work/fcg-$pc" "$work/net.apc" "$work/A.mtx" --tol 1e-8 | awk '/^iterations/ {print $2}')
  [ "$its" = "$rust_its" ] || { echo "fcg through pkg-config $pc: $its iterations, expected $rust_its"; exit 1; }
done
pkg-config --static --libs ansatz | grep -q -- -lpthread || { echo "pkg-config --static ansatz lacks the private libraries"; exit 1; }
if ldd "$work/fcg-ansatz-static" | grep -q libansatz; then echo "the static build needs libansatz.so"; exit 1; fi
ldd "$work/fcg-ansatz" | grep -q "$work/prefix/lib/libansatz.so" || { echo "the shared build does not find the installed library"; exit 1; }
echo "installed libansatz used through pkg-config (shared and static): $rust_its iterations"
echo "C ABI checks passed"
