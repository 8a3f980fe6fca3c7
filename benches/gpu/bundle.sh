#!/usr/bin/env bash
# `make gpu-bundle`: everything `make gpu-check` needs on a bare GPU machine (no package registry, none of our
# system libraries), in one folder under 64 MiB:
#
#   gpu_check.py           the check script (Python standard library only)
#   fno_throughput.py      the PyTorch anchor
#   payload.tar.xz         bin/ansatz (the wgpu build, stripped), lib/ (every shared library it and Open MPI link,
#                          from this machine's Debian packages, except glibc; libstdc++ and libgcc_s in
#                          lib/fallback/ for systems without them), the Vulkan loader and glvnd (from the Debian
#                          packages, unpacked with dpkg -x), mpi/ (Open MPI's launcher, daemon, plugins and help
#                          files, relocatable through OPAL_PREFIX), pmix/ (PMIx plugins), data/ (the small
#                          datasets the checks train on), configs/, MANIFEST.json
#
# The binary's libraries are verified with ldd against the unpacked payload alone (nothing may resolve outside
# it but glibc), and the bundled binary must start with LD_LIBRARY_PATH pointing into it.
#
# Usage: benches/gpu/bundle.sh [OUT]  (default target/gpu-bundle); ANSATZ_BIN overrides the binary.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/target/gpu-bundle}
bin=${ANSATZ_BIN:-$root/target/release/ansatz}
limit=$((64 * 1024 * 1024))
multiarch=/usr/lib/x86_64-linux-gnu

say() { printf 'gpu-bundle: %s\n' "$*"; }
die() { printf 'gpu-bundle: error: %s\n' "$*" >&2; exit 1; }

[ -x "$bin" ] || die "$bin is missing: cargo build --release --features wgpu --bin ansatz"
"$bin" devices --help >/dev/null || die "$bin has no 'devices' command: rebuild it"
if "$bin" devices --device gpu 2>&1 | grep -q "needs a build with the \`wgpu\` feature"; then
    die "$bin was built without the wgpu feature: cargo build --release --features wgpu --bin ansatz"
fi
for tool in ldd objcopy xz dpkg apt-get; do command -v $tool >/dev/null || die "$tool is needed"; done
[ -x /usr/bin/orterun ] || die "Open MPI (openmpi-bin) is needed"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
p=$stage/payload
mkdir -p "$p"/{bin,lib/fallback,data,configs} "$p/mpi/bin" "$p/mpi/lib/x86_64-linux-gnu/openmpi/lib" \
    "$p/mpi/share" "$p/pmix/lib" "$p/pmix/share"

say "binary: $bin ($(du -h "$bin" | cut -f1))"
objcopy --strip-all "$bin" "$p/bin/ansatz"
# optionally a second build to compare with (gpu_check.py --binary ansatz-tuned), e.g. the `wgpu-tuned` feature
if [ -n "${ANSATZ_TUNED_BIN:-}" ]; then
    [ -x "$ANSATZ_TUNED_BIN" ] || die "ANSATZ_TUNED_BIN=$ANSATZ_TUNED_BIN is not an executable"
    say "second binary: $ANSATZ_TUNED_BIN"
    objcopy --strip-all "$ANSATZ_TUNED_BIN" "$p/bin/ansatz-tuned"
fi

# Open MPI: launcher, daemon, plugins (without the fabric ones a single node does not use), help files
cp -L /usr/bin/orterun /usr/bin/orted "$p/mpi/bin/"
ln -s orterun "$p/mpi/bin/mpirun"
ln -s orterun "$p/mpi/bin/mpiexec"
plugins=$p/mpi/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
mkdir -p "$plugins"
for f in "$multiarch"/openmpi/lib/openmpi3/*.so; do
    case $(basename "$f") in
        *ucx* | *ofi* | *openib* | *psm* | *verbs*) continue ;;
    esac
    cp -L "$f" "$plugins/"
done
cp -rL /usr/share/openmpi "$p/mpi/share/"
# PMIx: its plugins and help files; the parameter file without Debian's absolute plugin path
cp -rL "$multiarch/pmix2/lib/pmix" "$p/pmix/lib/"
cp -rL "$multiarch/pmix2/share/pmix" "$p/pmix/share/"
: >"$p/pmix/share/pmix-mca-params.conf"

# the Vulkan loader and glvnd from the Debian packages (wgpu opens libvulkan.so.1 at run time)
debs=$stage/debs
mkdir -p "$debs"
(cd "$debs" && apt-get download -q libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2 >/dev/null) ||
    die "apt-get download of the Vulkan loader and glvnd failed"
for d in "$debs"/*.deb; do dpkg -x "$d" "$debs/root"; done
cp -a "$debs/root$multiarch"/*.so.* "$p/lib/"

# every library the binaries and plugins need, except glibc
glibc='^(linux-vdso|ld-linux-x86-64|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl)\.so'
{
    ldd "$p"/bin/* "$p/mpi/bin/orterun" "$p/mpi/bin/orted" "$plugins"/*.so "$p/pmix/lib/pmix"/*.so \
        "$p"/lib/*.so.* 2>/dev/null || true
} | awk '/=> \// {print $1, $3}' | sort -u >"$stage/libs"
while read -r name path; do
    if [[ $name =~ $glibc ]]; then continue; fi
    case $name in
        libstdc++.so.* | libgcc_s.so.*) cp -L "$path" "$p/lib/fallback/$name" ;;
        *) [ -e "$p/lib/$name" ] || cp -L "$path" "$p/lib/$name" ;;
    esac
done <"$stage/libs"
missing=$(ldd "$p/bin/ansatz" | grep "not found" || true)
[ -z "$missing" ] || die "unresolved libraries: $missing"

# the data and configurations the checks use
say "generating the check datasets"
run() { LD_LIBRARY_PATH=$p/lib:$p/lib/fallback "$p/bin/ansatz" "$@" >/dev/null; }
run generate burgers2d --out "$p/data/burgers2d.nc" --samples 12 --seed 1 \
    --set grid.n=32 --set time.t_end=0.8 --set time.save_every=0.02 --set parameters.nu=0.005 --force
run generate burgers1d --out "$p/data/burgers1d.nc" --samples 7 --seed 9 --set grid.n=64 --set time.t_end=0.2 --force
# the hybrid check's data: Kolmogorov flow at Re = 1000 spun up on 64² (the coarse grid of the hybrid benchmark)
run generate kolmogorov-re1000 --out "$p/data/kolmogorov64.nc" --samples 8 --seed 3 --set grid.n=64 \
    --set time.dt=0.008 --set time.t_end=2.4 --force
cat >"$p/configs/sgd-fno-burgers1d.toml" <<'EOF'
# data-parallel equality: a small FNO with plain SGD at a constant rate, global batch 8 (4 per rank on 2 ranks)
seed = 4
[data]
history = 2
horizon = 2
validation = 0.15
test = 0.0
[model]
kind = "fno"
width = 8
layers = 2
modes = 4
projection = 16
[optimiser]
kind = "sgd"
clip_norm = 0.0
[schedule]
kind = "constant"
rate = 0.05
[training]
steps = 20
batch = 8
checkpoint_every = 5
validate_every = 10
EOF

glibc_required=$(objdump -T "$p/bin/ansatz" "$p/mpi/bin/orterun" "$p"/lib/*.so* 2>/dev/null |
    grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+changes" || true)
cat >"$p/MANIFEST.json" <<EOF
{
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$commit$dirty",
  "features": "wgpu",
  "glibc_required": "$glibc_required",
  "builder": "$(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
}
EOF

# the payload must work alone: every library resolves inside it (or to glibc) and the binary starts
check=$stage/check
mkdir -p "$check"
cp -a "$p/." "$check/"
outside=$(LD_LIBRARY_PATH=$check/lib:$check/lib/fallback ldd "$check/bin/ansatz" "$check/mpi/bin/orterun" |
    awk '/=> \// {print $1, $3}' | grep -v " $check/" | grep -Ev "$glibc" || true)
[ -z "$outside" ] || die "libraries resolved outside the payload: $outside"
LD_LIBRARY_PATH=$check/lib:$check/lib/fallback "$check/bin/ansatz" --version >/dev/null ||
    die "the bundled binary does not start"

say "compressing the payload"
rm -rf "$out"
mkdir -p "$out"
tar -C "$p" -cf - . | xz -9 -T2 >"$out/payload.tar.xz"
cp "$root/benches/gpu/gpu_check.py" "$root/benches/pytorch/fno_throughput.py" "$out/"
size=$(du -sb "$out" | cut -f1)
unpacked=$(du -sb "$p" | cut -f1)
say "bundle $out: $((size / 1024 / 1024)) MiB ($((unpacked / 1024 / 1024)) MiB unpacked), glibc ≥ $glibc_required"
[ "$size" -lt "$limit" ] || die "the bundle is $size bytes, over the 64 MiB limit"
