#!/usr/bin/env bash
# Streamed training data (docs/benchmarks.md, "Streamed training data"):
#  1. a 1D Burgers dataset whose trajectories take BIG_SAMPLES × 501 × 1024 × 4 bytes in memory (1.23 GB by
#     default), trained on with data.loading = stream and a cache of BUDGET MiB (256: the data are 4.6× the
#     budget) and, for comparison, in memory: peak RSS of the whole process (GNU time) and of the training loop,
#     throughput, blocks and bytes read;
#  2. the demo configuration (FNO on 2D Burgers, 32², as `ansatz demo` trains it): throughput in memory against
#     streamed, REPEATS alternating runs each;
#  3. the big dataset generated on 2 ranks (a manifest of 2 shards) and trained on straight from the manifest
#     under `mpirun -np 2`, data.partition = rank and global: bytes and samples read per rank;
#  4. `ansatz rollout` of the big run on its test split within --memory-budget 64 against 4096: peak RSS.
#
#   benches/experiments/streaming.sh
#   BIG_SAMPLES=200 STEPS=100 OUT=/tmp/streaming benches/experiments/streaming.sh
#
# Results go to $OUT/results.md. Re-running reuses the datasets and skips finished runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
OUT=${OUT:-experiments/streaming}
BIG_SAMPLES=${BIG_SAMPLES:-600}
BUDGET=${BUDGET:-256}
STEPS=${STEPS:-300}
DEMO_STEPS=${DEMO_STEPS:-200}
REPEATS=${REPEATS:-3}
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
[ -x /usr/bin/time ] || { echo "GNU time is needed for peak memory: apt-get install time" >&2; exit 1; }
mkdir -p "$OUT"
R="$OUT/results.md"

big_sets=(--set grid.n=1024 --set scheme.name=spectral --set time.t_end=2.0 --set time.save_every=0.004
  --set output.time_chunk=25 --set parameters.nu=0.01)
BIG="$OUT/big.nc"
[ -f "$BIG" ] || "$ANSATZ" generate burgers1d --samples "$BIG_SAMPLES" --seed 0 "${big_sets[@]}" --out "$BIG"
if [ ! -f "$OUT/shards.manifest.json" ]; then
  mpirun --allow-run-as-root --oversubscribe -np 2 "$ANSATZ" generate burgers1d --samples "$BIG_SAMPLES" --seed 0 \
    "${big_sets[@]}" --out "$OUT/shards.nc"
fi

cat > "$OUT/fno1d.toml" <<EOF
seed = 0
[data]
history = 1
horizon = 1
validation = 0.05
test = 0.05
[model]
kind = "fno"
width = 32
layers = 4
modes = 16
[training]
steps = $STEPS
batch = 16
checkpoint_every = 100
validate_every = 0
validation_windows = 64
EOF

# peak RSS (KiB) of a command, from GNU time
peak() { grep "Maximum resident" "$1" | awk '{print $NF}'; }
# a key of a run's summary.json
key() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1/summary.json" "$2"; }

train() { # name data extra-args...
  local name=$1 data=$2; shift 2
  if [ ! -f "$OUT/$name/summary.json" ]; then
    rm -rf "$OUT/$name"
    /usr/bin/time -v "$ANSATZ" train "$OUT/fno1d.toml" --data "$data" --out "$OUT/$name" "$@" \
      > "$OUT/$name.log" 2> "$OUT/$name.time"
  fi
}

train big-stream "$BIG" --set data.loading=stream --set data.memory_budget="$BUDGET"
train big-memory "$BIG" --set data.loading=memory

{
  echo "# Streamed training data"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB. Command: benches/experiments/streaming.sh"
  echo "(BIG_SAMPLES=$BIG_SAMPLES, BUDGET=$BUDGET MiB, STEPS=$STEPS, DEMO_STEPS=$DEMO_STEPS, REPEATS=$REPEATS)."
  echo
  echo "## 1. A dataset larger than the budget"
  echo
  echo "$(du -h "$BIG" | cut -f1) on disk, $BIG_SAMPLES samples × 501 levels × 1024 points: $((BIG_SAMPLES * 501 * 1024 * 4 / 1048576)) MiB as f32."
  echo
  echo "| loading | process peak RSS (MiB) | loop start / peak RSS (MiB) | windows/s | wall (s) | blocks read | MiB read |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for name in big-stream big-memory; do
    p=$(peak "$OUT/$name.time")
    s=$(key "$OUT/$name" rss_start_mib); l=$(key "$OUT/$name" peak_rss_mib); w=$(key "$OUT/$name" samples_per_second)
    if [ -f "$OUT/$name/stream-rank-0000.json" ]; then
      read -r b m < <(python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stats']; print(s['blocks_read'], round(s['bytes_read']/2**20,1))" "$OUT/$name/stream-rank-0000.json")
    else b=-; m=-; fi
    wall=$(grep "Elapsed (wall clock)" "$OUT/$name.time" | awk '{print $NF}')
    printf "| %s | %.0f | %.0f / %.0f | %.1f | %s | %s | %s |\n" "${name#big-}" "$((p / 1024))" "$s" "$l" "$w" "$wall" "$b" "$m"
  done
  echo
} > "$R"

# 2. the demo configuration: memory against stream, alternating
# the dataset and training settings of `ansatz demo`
DEMO="$OUT/demo-burgers2d.nc"
if [ ! -f "$DEMO" ]; then
  grep -v '^alpha\|^tau' configs/burgers2d.toml > "$OUT/demo-burgers2d.toml"
  "$ANSATZ" generate burgers2d --config "$OUT/demo-burgers2d.toml" --samples 40 --seed 0 --set grid.n=32 \
    --set grid.length=1.0 --set scheme.name=spectral --set time.save_every=0.025 --set time.t_end=5.25 \
    --set time.cfl=0.4 --set initial_condition.kind=fourier --set initial_condition.max_mode=4 \
    --set initial_condition.amplitude=1.0 --set parameters.nu=0.005 --out "$DEMO"
fi
for i in $(seq 1 "$REPEATS"); do
  for mode in memory stream; do
    name="demo-$mode-$i"
    if [ ! -f "$OUT/$name/summary.json" ]; then
      rm -rf "$OUT/$name"
      "$ANSATZ" train fno-burgers2d --data "$DEMO" --out "$OUT/$name" --set training.steps="$DEMO_STEPS" \
        --set data.horizon=5 --set schedule.warmup_steps=20 --set model.residual=true \
        --set training.validate_every=0 --set data.loading="$mode" > "$OUT/$name.log" 2>&1
    fi
  done
done
{
  echo "## 2. Throughput on the demo configuration (FNO, 2D Burgers 32², 40 samples × 211 frames, horizon 5)"
  echo
  echo "| run | in memory (windows/s) | streamed (windows/s) |"
  echo "|---|---:|---:|"
  for i in $(seq 1 "$REPEATS"); do
    printf "| %s | %.1f | %.1f |\n" "$i" "$(key "$OUT/demo-memory-$i" samples_per_second)" "$(key "$OUT/demo-stream-$i" samples_per_second)"
  done
  echo
} >> "$R"

# 3. two ranks straight from the manifest
for part in rank global; do
  name="mpi-$part"
  if [ ! -f "$OUT/$name/summary.json" ]; then
    rm -rf "$OUT/$name"
    mpirun --allow-run-as-root --oversubscribe -np 2 "$ANSATZ" train "$OUT/fno1d.toml" --data "$OUT/shards.manifest.json" \
      --out "$OUT/$name" --set data.loading=stream --set data.memory_budget="$BUDGET" --set data.partition="$part" \
      --set training.steps=$((STEPS / 2)) > "$OUT/$name.log" 2>&1
  fi
done
{
  echo "## 3. Two ranks from the manifest of 2 shards (data.loading = stream, $BUDGET MiB cache per rank, $((STEPS / 2)) steps)"
  echo
  echo "| partition | rank | samples read | MiB read | blocks read |"
  echo "|---|---:|---|---:|---:|"
  for part in rank global; do
    for r in 0 1; do
      python3 - "$OUT/mpi-$part/stream-rank-000$r.json" "$part" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ranges = s["samples_read"]
count = sum(b - a for a, b in (tuple(x.values()) if isinstance(x, dict) else x for x in ranges))
first = ranges[0]; last = ranges[-1]
span = lambda x: (x["start"], x["end"]) if isinstance(x, dict) else tuple(x)
print(f"| {sys.argv[2]} | {s['rank']} | {count} samples in {len(ranges)} ranges ({span(first)[0]}..{span(last)[1]}) "
      f"| {s['stats']['bytes_read'] / 2**20:.1f} | {s['stats']['blocks_read']} |")
PY
    done
  done
  echo
} >> "$R"

# 4. rollout within a small budget
for budget in 64 4096; do
  name="rollout-$budget"
  if [ ! -f "$OUT/$name/summary.json" ]; then
    rm -rf "$OUT/$name"
    /usr/bin/time -v "$ANSATZ" rollout --run "$OUT/big-stream" --out "$OUT/$name" --memory-budget "$budget" \
      --batch 4 --steps 200 --no-baseline --no-plots > "$OUT/$name.log" 2> "$OUT/$name.time"
  fi
done
{
  echo "## 4. Rollout of the streamed run on its $((BIG_SAMPLES / 20)) test samples, 200 steps"
  echo
  echo "| --memory-budget (MiB), --batch 4 | peak RSS (MiB) | mean nRMSE |"
  echo "|---:|---:|---:|"
  for budget in 64 4096; do
    n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['nrmse_mean']['mean'])" "$OUT/rollout-$budget/summary.json")
    printf "| %s | %.0f | %.6g |\n" "$budget" "$(( $(peak "$OUT/rollout-$budget.time") / 1024 ))" "$n"
  done
} >> "$R"
cat "$R"
