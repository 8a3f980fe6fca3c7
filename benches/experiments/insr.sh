#!/usr/bin/env bash
# INSR study (docs/methods/insr.md, docs/results.md):
#  C4  advection of the reference's Gaussian on [−2, 2] (a = 0.25) to ADV_T by INSR (3 × 20 SIREN: 901 values)
#      against first-order upwind and WENO5 on 901 cells (equal stored values), error against the exact translate
#      over the stored levels, per seed;
#      Burgers (ν = 0.01, sin 2πx, 256 cells) by INSR against our spectral solver at the stored levels, per seed;
#  C5  the Taylor–Green vortex by the three-stage fluid integrator, kinetic-energy drift over TG_STEPS steps;
#      wall time and peak memory (GNU time) of every solve.
#
#   benches/experiments/insr.sh                          # defaults below (hours on 2 cores)
#   ADV_T=2 TG_STEPS=0 OUT=/tmp/insr benches/experiments/insr.sh
#
# Needs Python with xarray for the Burgers comparison (ANSATZ_PYTHON, default python3). Results in $OUT/results.md;
# finished solves are skipped on a re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
PY=${ANSATZ_PYTHON:-python3}
OUT=${OUT:-experiments/insr}
SEEDS=${SEEDS:-0 1 2}
ADV_T=${ADV_T:-12}
ADV_ITERS=${ADV_ITERS:-2000}
ADV_SAMPLES=${ADV_SAMPLES:-1000}
TG_STEPS=${TG_STEPS:-10}
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
[ -x /usr/bin/time ] || { echo "GNU time is needed for peak memory: apt-get install time" >&2; exit 1; }
mkdir -p "$OUT"
R="$OUT/results.md"
peak() { grep "Maximum resident" "$1" | awk '{printf "%.0f", $NF / 1024}'; }
wall() { grep "Elapsed (wall clock)" "$1" | awk '{print $NF}'; }
rel() { grep "relative L2" "$1" | sed 's/.*relative L2 //'; }

solve() { # name args...
  local name=$1; shift
  if [ ! -f "$OUT/$name.nc" ]; then
    rm -rf "$OUT/$name.nc.insr"
    /usr/bin/time -v "$ANSATZ" solve "$@" --method insr --out "$OUT/$name.nc" > "$OUT/$name.log" 2> "$OUT/$name.time"
  fi
}

{
  echo "# INSR study"
  echo
  echo "Machine: $(nproc) cores. Command: benches/experiments/insr.sh (SEEDS=\"$SEEDS\", ADV_T=$ADV_T, ADV_ITERS=$ADV_ITERS, ADV_SAMPLES=$ADV_SAMPLES, TG_STEPS=$TG_STEPS)."
  echo
  echo "## C4: advection to t = $ADV_T, 901 stored values"
  echo
  echo "| solver | seed | relative L2 over the stored levels | wall | peak RSS (MiB) |"
  echo "|---|---:|---:|---:|---:|"
} > "$R"
for seed in $SEEDS; do
  solve "adv-$seed" advection1d --t-end "$ADV_T" --save-every 0.5 --set n=901 --set seed="$seed" \
    --set samples="$ADV_SAMPLES" --set max_iters="$ADV_ITERS" --set patience=100 --set lr=1e-3
  echo "| INSR 3 × 20 | $seed | $(rel "$OUT/adv-$seed.log" | awk '{print $1}') | $(wall "$OUT/adv-$seed.time") | $(peak "$OUT/adv-$seed.time") |" >> "$R"
done
cargo run --release -q -p ansatz-benches --example insr_advection -- 901 "$ADV_T" 0.5 | while read -r name n mae rel secs; do
  echo "| $name, $n cells, CFL 0.5 | – | $rel | ${secs} s | – |" >> "$R"
done

# Burgers against the spectral solver from the same initial condition
"$PY" - "$OUT/ic.nc" <<'PY'
import sys, numpy as np, xarray as xr
n = 256
x = (np.arange(n) + 0.5) / n
xr.Dataset({"u": (("x",), np.sin(2 * np.pi * x))}, coords={"x": x}).to_netcdf(sys.argv[1])
PY
[ -f "$OUT/burgers-spectral.nc" ] || "$ANSATZ" solve burgers1d --init "$OUT/ic.nc" --scheme spectral --t-end 0.5 \
  --save-every 0.1 --set nu=0.01 --out "$OUT/burgers-spectral.nc" > /dev/null
{
  echo
  echo "## Burgers (ν = 0.01, sin 2πx) to t = 0.5 against the spectral solver, 256 cells"
  echo
  echo "| seed | relative L2 at t = 0.1, 0.2, 0.3, 0.4, 0.5 | wall | peak RSS (MiB) |"
  echo "|---:|---|---:|---:|"
} >> "$R"
for seed in $SEEDS; do
  solve "burgers-$seed" burgers1d --t-end 0.5 --save-every 0.1 --set n=256 --set seed="$seed" --set samples=1000 \
    --set max_iters=2000 --set patience=100 --set lr=1e-3
  errs=$("$PY" - "$OUT/burgers-$seed.nc" "$OUT/burgers-spectral.nc" <<'PY'
import sys, numpy as np, xarray as xr
a = xr.open_dataset(sys.argv[1])["u"].values[0]
b = xr.open_dataset(sys.argv[2])["u"].values[0]
print(", ".join(f"{np.linalg.norm(a[t] - b[t]) / np.linalg.norm(b[t]):.2e}" for t in range(1, a.shape[0])))
PY
)
  echo "| $seed | $errs | $(wall "$OUT/burgers-$seed.time") | $(peak "$OUT/burgers-$seed.time") |" >> "$R"
done

# elastodynamics: the strip suddenly pulled on its right end, INSR against implicit Euler and Newmark on the
# staggered grid (the same 32 × 8 cells, Δt = 0.1)
{
  echo
  echo "## Elastodynamics: a 1 × 0.25 strip pulled by (0.05, 0) from rest, Δt = 0.1, 10 steps, 32 × 8 cells"
  echo
  echo "Mean x displacement along the last column of cells after each step."
  echo
  echo '```'
  cargo run --release -q -p ansatz-benches --example insr_elasticity -- 32 0.1 10 0.05
} >> "$R"
for seed in $SEEDS; do
  solve "strip-$seed" elasticity2d --t-end 1.0 --save-every 0.1 --set dt=0.1 --set n=32 --set seed="$seed" \
    --set width=24 --set samples=512 --set max_iters=3000 --set patience=500
  line=$("$PY" - "$OUT/strip-$seed.nc" <<'PY'
import sys, xarray as xr
u = xr.open_dataset(sys.argv[1])["u"].values[0]
print(" ".join(f"{u[t, :, -1].mean():.4e}" for t in range(1, u.shape[0])))
PY
)
  echo "insr-seed-$seed $line   ($(wall "$OUT/strip-$seed.time"), $(peak "$OUT/strip-$seed.time") MiB)" >> "$R"
done
echo '```' >> "$R"

if [ "$TG_STEPS" -gt 0 ]; then
  {
    echo
    echo "## C5: Taylor–Green, $TG_STEPS steps of 0.05 (3 × 32 networks, 1024 points, ≤ 3000 iterations per stage)"
    echo
    echo "| seed | relative L2 against the steady solution | kinetic-energy change | wall | peak RSS (MiB) |"
    echo "|---:|---:|---:|---:|---:|"
  } >> "$R"
  for seed in $SEEDS; do
    t_end=$("$PY" -c "print($TG_STEPS * 0.05)")
    solve "tg-$seed" euler2d --t-end "$t_end" --save-every 0.05 --set seed="$seed" --set max_iters=3000 \
      --set patience=200 --set lr=1e-3
    drift=$(grep "kinetic energy" "$OUT/tg-$seed.log" | sed 's/.*change //')
    echo "| $seed | $(rel "$OUT/tg-$seed.log") | $drift | $(wall "$OUT/tg-$seed.time") | $(peak "$OUT/tg-$seed.time") |" >> "$R"
  done
fi
cat "$R"
