#!/usr/bin/env python3
"""`make gpu-check`: the GPU path of ansatz, run from the bundle that `make gpu-bundle` builds.

Runs on a machine that has none of our libraries and no package registry (Python 3.8+ standard library only;
PyTorch, when present, for the anchor). Unpacks the bundle's payload (the wgpu build of `ansatz`, its shared
libraries, Open MPI and its plugins, the Vulkan loader and the small datasets), then:

  adapter     `ansatz devices`: the adapter wgpu selected (the run stops here when there is none)
  throughput  (a) `ansatz throughput` of fno1d and fno2d on the device, with the step's synchronised phases
  pytorch     the anchor: benches/pytorch/fno_throughput.py, the same FNOs in PyTorch on the same device
  curves      (b) 20 steps of `fno-burgers2d` and `dymixop-burgers2d` on the device against the CPU: per-step loss
  rollout     (c) `ansatz rollout --device` of the device-trained FNO, against its rollout on the CPU
  hybrid      the 64² Kolmogorov hybrid rolled out with its network on the device and on the CPU (same predictions,
              cost per frame), and `ansatz hybrid-cost` at 64²–512² with the network on each
  mpi         (d) `mpirun -np 2 ansatz train --device` sharing one device against 1 rank at the same global batch
  profile     (GPU only) kernel launches and GPU-busy time per step of fno1d/fno2d from CubeCL's timestamps
  throughput-more  (a) the demo FNO and DyMixOp on the device, and fno1d/fno2d on this machine's CPU

Each check records its numbers, a verdict and its commands in results.json and results.md (rewritten after
every check, so a run cut short still leaves its results); the exit status is 1 when any check failed, 2 when
the bundle is unusable. `--cpu` runs the same script on the CPU backend (the pipeline test on a machine without
a GPU: "device" is then the CPU and the comparisons must agree exactly or nearly).

    python3 target/gpu-bundle/gpu_check.py --out gpu-results          # on the GPU machine
    python3 target/gpu-bundle/gpu_check.py --cpu --out cpu-results    # here
"""

import argparse
import glob
import json
import math
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import time

# Tolerances, f32 throughout. The first loss is computed from identical parameters and data, so it differs only
# by the order of the sums (GPU reductions are trees, the CPU's are blocked loops). Later losses follow
# parameters that Adam moved by slightly different gradients; Adam's normalised step turns a tiny gradient
# difference on a near-zero gradient entry into a full-size step, so the tolerance widens with the steps.
FIRST_LOSS_RTOL = 1e-4
CURVE_STEPS = 10
CURVE_RTOL = 1e-3
# data-parallel equality (same device, same global batch): one all-reduce of two half-batch gradients
MPI_GRAD_RTOL = 1e-5
MPI_PARAM_RTOL = 1e-4
# rollout of the same network on device and CPU: relative difference of the median nRMSE at the first step
ROLLOUT_RTOL = 1e-3


class Check:
    def __init__(self, name, title):
        self.name, self.title = name, title
        self.ok = None  # None: not run / skipped
        self.note = ""
        self.data = {}
        self.commands = []
        self.seconds = 0.0


class Runner:
    def __init__(self, args):
        self.args = args
        self.device = "cpu" if args.cpu else "gpu"
        self.bundle = os.path.abspath(args.bundle)
        self.out = os.path.abspath(args.out)
        self.work = os.path.abspath(args.work)
        self.root = os.path.join(self.work, "root")
        self.start = time.time()
        self.checks = []
        self.info = {}
        self.env = dict(os.environ)
        self.log = None

    # ---- plumbing ----
    def say(self, msg):
        line = f"[{time.time() - self.start:6.1f} s] {msg}"
        print(line, flush=True)
        if self.log:
            self.log.write(line + "\n")
            self.log.flush()

    def left(self):
        return self.args.budget - (time.time() - self.start)

    def run(self, check, cmd, timeout, env=None, cwd=None):
        """Runs a command, records it, returns (rc, stdout+stderr). rc None: timed out."""
        if check is not None:
            check.commands.append(" ".join(cmd))
        self.say("$ " + " ".join(cmd))
        timeout = max(5, min(timeout, self.left()))
        t = time.time()
        try:
            p = subprocess.run(
                cmd,
                env=env or self.env,
                cwd=cwd or self.work,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            text, rc = p.stdout.decode("utf-8", "replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            text, rc = (e.stdout or b"").decode("utf-8", "replace") + f"\n[timed out after {timeout:.0f} s]", None
        dt = time.time() - t
        if self.log:
            self.log.write(text + ("" if text.endswith("\n") else "\n"))
            self.log.flush()
        tail = "\n".join(text.strip().splitlines()[-6:])
        self.say(f"  rc {rc} in {dt:.1f} s" + (("\n    " + tail.replace("\n", "\n    ")) if tail else ""))
        return rc, text

    def ansatz(self, check, args, timeout, env=None):
        return self.run(check, [self.exe] + args, timeout, env=env)

    # ---- setup ----
    def unpack(self):
        payload = os.path.join(self.bundle, "payload.tar.xz")
        if not os.path.exists(payload):
            raise SystemExit(f"gpu_check: {payload} is missing: run `make gpu-bundle` first")
        stamp = os.path.join(self.root, ".unpacked")
        if not (os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(payload)):
            shutil.rmtree(self.root, ignore_errors=True)
            os.makedirs(self.root)
            t = time.time()
            with tarfile.open(payload, "r:xz") as tar:
                tar.extractall(self.root)
            open(stamp, "w").close()
            self.say(f"payload unpacked in {time.time() - t:.1f} s into {self.root}")
        self.exe = os.path.join(self.root, "bin", self.args.binary)
        if not os.path.exists(self.exe):
            raise SystemExit(f"gpu_check: the payload has no bin/{self.args.binary}")
        with open(os.path.join(self.root, "MANIFEST.json")) as f:
            self.manifest = json.load(f)

    def environment(self):
        r = self.root
        env = self.env
        lib = os.path.join(r, "lib")
        paths = [lib]
        # the C++ runtime and libgcc only where the system lacks them (a newer system one must win)
        fallback = os.path.join(r, "lib", "fallback")
        if os.path.isdir(fallback):
            known = subprocess.run(["/sbin/ldconfig", "-p"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            cache = known.stdout.decode("utf-8", "replace") if known.returncode == 0 else ""
            missing = [f for f in os.listdir(fallback) if f not in cache]
            if missing:
                paths.append(fallback)
                self.info["fallback libraries used"] = missing
        # the GPU driver's own libraries (the Vulkan ICD's libGLX_nvidia) where the loader cache may not list them
        driver = [d for d in ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib") if os.path.isdir(d)]
        rest = [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p and p not in driver]
        env["LD_LIBRARY_PATH"] = ":".join(paths + rest + driver)
        mpi = os.path.join(r, "mpi")
        env["PATH"] = os.path.join(mpi, "bin") + ":" + env.get("PATH", "/usr/bin:/bin")
        env["OPAL_PREFIX"] = mpi
        # PMIx: point it at our plugins and our parameter file. Where the system has its own PMIx at the path our
        # libpmix was built for, libpmix still reads that system's parameter file and also loads its plugins
        # (seen on the H200 machine: one fails to load, PMIx warns and goes on); the warning is silenced below
        plugins = os.path.join(r, "pmix", "lib", "pmix")
        params = os.path.join(r, "pmix", "share", "pmix-mca-params.conf")
        with open(params, "w") as f:
            f.write(f"mca_base_component_path = {plugins}\n")
        env["PMIX_MCA_mca_base_param_files"] = params
        env["PMIX_MCA_mca_base_component_path"] = plugins
        env["PMIX_MCA_pcompress_base_silence_warning"] = "1"
        env["PMIX_INSTALL_PREFIX"] = os.path.join(r, "pmix")
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        # one node: launch without ssh/rsh (a bare machine has neither), shared memory and loopback only
        env["OMPI_MCA_plm"] = "isolated"
        env["OMPI_MCA_btl"] = "self,vader,tcp"
        env["OMPI_MCA_pml"] = "ob1"
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        env["OMPI_MCA_btl_tcp_if_include"] = "lo"
        env["OMPI_MCA_oob_tcp_if_include"] = "lo"
        # the NVIDIA Vulkan driver where the system's loader search does not find it
        icds = [
            p
            for d in ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")
            for p in glob.glob(os.path.join(d, "*.json"))
        ]
        nv = "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
        if not any("nvidia" in os.path.basename(p) for p in icds) and os.path.exists(nv):
            env.setdefault("VK_DRIVER_FILES", nv)
            env.setdefault("VK_ICD_FILENAMES", nv)
        egl = "/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json"
        if os.path.exists(egl):
            env.setdefault("__EGL_VENDOR_LIBRARY_FILENAMES", egl)
        env.setdefault("RUST_BACKTRACE", "1")
        self.info["vulkan icd files"] = icds + ([env["VK_DRIVER_FILES"]] if "VK_DRIVER_FILES" in env else [])

    def machine(self):
        i = self.info
        i["host"] = platform.node()
        i["kernel"] = platform.release()
        i["glibc"] = "-".join(platform.libc_ver())
        i["cpus"] = os.cpu_count()
        i["python"] = platform.python_version()
        i["bundle"] = {k: self.manifest.get(k) for k in ("built", "commit", "features", "glibc_required")}
        if shutil.which("nvidia-smi"):
            p = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            i["nvidia-smi"] = p.stdout.decode().strip()
        need = self.manifest.get("glibc_required")
        have = platform.libc_ver()[1]
        if need and have and tuple(map(int, have.split("."))) < tuple(map(int, need.split("."))):
            raise SystemExit(f"gpu_check: this system's glibc {have} is older than the bundle's {need}")

    # ---- reporting ----
    def write(self):
        os.makedirs(self.out, exist_ok=True)
        failed = [c.name for c in self.checks if c.ok is False]
        report = {
            "mode": self.device,
            "seconds": round(time.time() - self.start, 1),
            "passed": not failed and all(c.ok is not None for c in self.checks),
            "failed": failed,
            "machine": self.info,
            "tolerances": {
                "first_loss_rtol": FIRST_LOSS_RTOL,
                "curve_steps": CURVE_STEPS,
                "curve_rtol": CURVE_RTOL,
                "mpi_gradient_rtol": MPI_GRAD_RTOL,
                "mpi_parameter_rtol": MPI_PARAM_RTOL,
                "rollout_rtol": ROLLOUT_RTOL,
            },
            "checks": [
                {
                    "name": c.name,
                    "title": c.title,
                    "ok": c.ok,
                    "note": c.note,
                    "seconds": round(c.seconds, 1),
                    "data": c.data,
                    "commands": c.commands,
                }
                for c in self.checks
            ],
        }
        tmp = os.path.join(self.out, "results.json.tmp")
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, os.path.join(self.out, "results.json"))
        md = [f"# ansatz gpu-check ({self.device})", ""]
        for k, v in self.info.items():
            md.append(f"- {k}: {v}")
        md.append("")
        md.append("| check | verdict | seconds | note |")
        md.append("|---|---|---|---|")
        for c in self.checks:
            verdict = {True: "pass", False: "**FAIL**", None: "not run"}[c.ok]
            md.append(f"| {c.name}: {c.title} | {verdict} | {c.seconds:.0f} | {c.note} |")
        for c in self.checks:
            tables = c.data.get("table")
            if tables:
                md += ["", f"## {c.name}", ""] + tables
        md.append("")
        tmp = os.path.join(self.out, "results.md.tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(md))
        os.replace(tmp, os.path.join(self.out, "results.md"))

    def check(self, name, title, fn, need=30):
        c = Check(name, title)
        self.checks.append(c)
        if self.args.only and name not in self.args.only:
            c.note = "not selected"
            self.write()
            return c
        if self.left() < need:
            c.note = f"skipped: {self.left():.0f} s of the budget left, {need} s needed"
            self.say(f"== {name}: {c.note}")
            self.write()
            return c
        self.say(f"== {name}: {title}")
        t = time.time()
        try:
            fn(c)
        except Exception as e:  # a check's own error is its failure, the others still run
            c.ok = False
            c.note = f"error: {type(e).__name__}: {e}"
        c.seconds = time.time() - t
        self.say(f"== {name}: {'pass' if c.ok else 'FAIL' if c.ok is False else 'not run'} {c.note}")
        self.write()
        return c

    # ---- the checks ----
    def adapter(self, c):
        """`ansatz devices`; when it finds no adapter, retries with the driver's ICD file named explicitly and
        then with wgpu's own preference, and keeps the first environment that works for the other checks."""
        variants = [("as found", {})]
        if self.device == "gpu":
            nv = "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
            if os.path.exists(nv) and self.env.get("VK_DRIVER_FILES") != nv:
                variants.append(("VK_DRIVER_FILES=" + nv, {"VK_DRIVER_FILES": nv, "VK_ICD_FILENAMES": nv}))
            variants.append(("ANSATZ_WGPU_ADAPTER=default", {"ANSATZ_WGPU_ADAPTER": "default"}))
        c.data["attempts"] = []
        for label, extra in variants:
            env = dict(self.env, **extra)
            rc, text = self.ansatz(c, ["devices", "--device", self.device], 120, env=env)
            c.data["attempts"].append({"variant": label, "rc": rc, "output": text.strip().splitlines()[-12:]})
            if rc == 0:
                self.env = env
                c.ok = True
                c.note = next((l.strip() for l in text.splitlines() if l.strip().startswith("selected")), "")
                if extra:
                    c.note += f" (with {label})"
                self.info["adapter"] = c.note
                return
        c.ok = False
        c.note = "no usable adapter: " + " | ".join(text.strip().splitlines()[-3:])
        self.info["adapter"] = c.note

    def throughput(self, c, runs=None):
        rows, failed = [], []
        if runs is None:
            runs = [(self.device, case, 90) for case in ("fno1d", "fno2d")]
        for dev, case, limit in runs:
            path = os.path.join(self.work, f"throughput-{dev}-{case}.json")
            args = ["throughput", case, "--device", dev, "--json", path]
            if dev == "cpu" and self.device == "gpu":
                args += ["--warmup", "2", "--steps", "10"]
            else:
                args += ["--phases", "10"]
            rc, text = self.ansatz(c, args, limit)
            if rc != 0:
                failed.append(f"{dev}/{case}: rc {rc}")
                continue
            with open(path) as f:
                m = json.load(f)["cases"][0]
            m["device"] = dev
            rows.append(m)
        c.data["cases"] = rows
        t = ["| device | case | parameters | batch × steps | ms/step (min–max) | first step ms | windows/s | engine ms/step |"]
        t.append("|---|---|---|---|---|---|---|---|")
        for m in rows:
            eng = m.get("engine_ms_per_step")
            t.append(
                f"| {m['device']} | {m['case']} | {m['parameters']} | {m['batch']} × {m['horizon']} | "
                f"{m['ms_per_step']:.2f} ({m['ms_min']:.2f}–{m['ms_max']:.2f}) | {m['first_step_ms']:.0f} | "
                f"{m['windows_per_s']:.0f} | {'' if eng is None else f'{eng:.2f}'} |"
            )
        t += ["", "Synchronised phases of a step (medians, ms):", ""]
        t.append("| device | case | forward + backward | gradients to host | optimiser (host) | parameters to device | step |")
        t.append("|---|---|---|---|---|---|---|")
        for m in rows:
            p = m.get("phases")
            if p:
                t.append(
                    f"| {m['device']} | {m['case']} | {p['forward_backward_ms']:.2f} | {p['gradients_to_host_ms']:.2f} | "
                    f"{p['optimiser_ms']:.2f} | {p['parameters_to_device_ms']:.2f} | {p['total_ms']:.2f} |"
                )
        c.data["table"] = t
        c.ok = not failed
        c.note = "; ".join(failed)

    def throughput_more(self, c):
        runs = [(self.device, case, 120) for case in ("demo-fno", "demo-dymixop")]
        if self.device == "gpu":
            runs += [("cpu", "fno1d", 60), ("cpu", "fno2d", 60)]
        self.throughput(c, runs)

    def profile(self, c):
        """Per-kernel GPU times from CubeCL's profiling log (GPU timestamps; each kernel in its own pass)."""
        import re

        line = re.compile(r"^\| (\d+(?:\.\d+)?)(ns|µs|ms|s) *\| (.+)$")
        scale = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}
        rows = []
        for case in self.args.profile_cases:
            d = os.path.join(self.work, f"profile-{case}")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            log = os.path.join(d, "cubecl.log")
            with open(os.path.join(d, "cubecl.toml"), "w") as f:
                f.write(f'[profiling.logger]\nlevel = "basic"\nfile = "{log}"\n')
            steps = 3 + 5
            args = ["throughput", case, "--device", self.device, "--warmup", "3", "--steps", "5", "--no-engine"]
            rc, text = self.run(c, [self.exe] + args, 120, cwd=d)
            if rc != 0 or not os.path.exists(log):
                c.ok, c.note = False, f"{case}: rc {rc}, log {'present' if os.path.exists(log) else 'missing'}"
                return
            kernels = {}
            with open(log, encoding="utf-8", errors="replace") as f:
                for l in f:
                    m = line.match(l.strip())
                    if m:
                        name = re.sub(r"_[0-9a-f]{8}$", "", m.group(3).strip())
                        k = kernels.setdefault(name, [0, 0.0])
                        k[0] += 1
                        k[1] += float(m.group(1)) * scale[m.group(2)]
            launches = sum(k[0] for k in kernels.values())
            gpu_ms = sum(k[1] for k in kernels.values())
            top = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:12]
            c.data[case] = {
                "steps": steps,
                "launches": launches,
                "launches_per_step": launches / steps,
                "gpu_ms_per_step": gpu_ms / steps,
                "kernels": {n: {"launches": k[0], "ms": k[1]} for n, k in kernels.items()},
            }
            short = lambda n: n.split(" | ")[0] + ("/" + n.split(" | ")[1] if " | " in n else "")
            rows.append(f"| {case} | {launches / steps:.0f} | {gpu_ms / steps:.2f} | " + "; ".join(
                f"{short(n)[:40]} {k[1] / steps:.2f} ms ({k[0] / steps:.0f}×)" for n, k in top[:6]) + " |")
        c.data["table"] = [
            "Per step (warm-up steps included), from GPU timestamps with each kernel in its own pass:",
            "",
            "| case | kernel launches | GPU busy ms | largest kernels (ms per step, launches per step) |",
            "|---|---|---|---|",
        ] + rows
        c.ok = True

    def pytorch(self, c):
        script = os.path.join(self.bundle, "fno_throughput.py")
        python = shutil.which("python3") or sys.executable
        probe = subprocess.run([python, "-c", "import torch"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if probe.returncode != 0:
            c.note = "PyTorch is not installed here: anchor not measured"
            return
        path = os.path.join(self.work, "torch.json")
        dev = "cpu" if self.device == "cpu" else "cuda"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        rc, text = self.run(c, [python, script, "--device", dev, "--json", path], 240, env=env)
        if rc != 0:
            c.ok, c.note = False, f"rc {rc}: " + " | ".join(text.strip().splitlines()[-2:])
            return
        with open(path) as f:
            r = json.load(f)
        c.data.update(r)
        t = ["| case | PyTorch | parameters | ms/step (min–max) | first step ms | windows/s |", "|---|---|---|---|---|---|"]
        for m in r["cases"]:
            t.append(
                f"| {m['case']} | {r['torch']} on {r['device']} | {m['parameters']} | {m['ms_per_step']:.2f} "
                f"({m['ms_min']:.2f}–{m['ms_max']:.2f}) | {m['first_step_ms']:.0f} | {m['windows_per_s']:.0f} |"
            )
        c.data["table"] = t
        c.ok = True

    def losses(self, run):
        steps = []
        with open(os.path.join(run, "metrics.jsonl")) as f:
            for line in f:
                if line.strip():
                    steps.append(json.loads(line))
        return [s["loss"] for s in steps]

    def curves(self, c):
        data = os.path.join(self.root, "data", "burgers2d.nc")
        sets = [
            "training.steps=20",
            "training.checkpoint_every=20",
            "training.validate_every=20",
            "training.validation_windows=16",
            "schedule.warmup_steps=5",
        ]
        table = ["| model | step 1 loss, CPU | step 1 loss, device | first-step rel. diff | max rel. diff, steps 1–10 | max rel. diff, steps 1–20 | device s/step | CPU s/step |"]
        table.append("|---|---|---|---|---|---|---|---|")
        fails = []
        for model in ("fno-burgers2d", "dymixop-burgers2d"):
            curves, secs = {}, {}
            for label, dev in (("device", self.device), ("reference", "cpu")):
                run = os.path.join(self.work, "runs", f"{model}-{self.device}" if label == "device" else f"{model}-cpu-ref")
                args = ["train", model, "--data", data, "--out", run, "--force", "--device", dev]
                args += [x for s in sets for x in ("--set", s)]
                t = time.time()
                rc, text = self.ansatz(c, args, 240)
                secs[label] = (time.time() - t) / 20
                if rc != 0:
                    fails.append(f"{model} on {dev}: rc {rc}")
                    break
                curves[label] = self.losses(run)
            if len(curves) < 2:
                continue
            a, b = curves["device"], curves["reference"]
            rel = [abs(x - y) / max(abs(y), 1e-30) for x, y in zip(a, b)]
            c.data[model] = {"device_loss": a, "cpu_loss": b, "relative_difference": rel}
            ok = len(a) == len(b) == 20 and rel[0] <= FIRST_LOSS_RTOL and max(rel[:CURVE_STEPS]) <= CURVE_RTOL
            ok = ok and all(math.isfinite(x) for x in a)
            if not ok:
                fails.append(f"{model}: first {rel[0]:.1e}, max over {CURVE_STEPS} steps {max(rel[:CURVE_STEPS]):.1e}")
            table.append(
                f"| {model} | {b[0]:.6g} | {a[0]:.6g} | {rel[0]:.1e} | {max(rel[:CURVE_STEPS]):.1e} | {max(rel):.1e} | "
                f"{secs.get('device', float('nan')):.2f} | {secs.get('reference', float('nan')):.2f} |"
            )
        c.data["table"] = table
        c.ok = not fails
        c.note = "; ".join(fails)

    def rollout_pair(self, c, run, name, limit, baseline_on_device):
        """20 rollout steps of `run` on the device and on the CPU (the CPU's without the solver baseline; the
        device's too unless `baseline_on_device`): their summaries by "device" and "reference", or None (with
        the check failed) when one does not run."""
        summaries = {}
        for label, dev in (("device", self.device), ("reference", "cpu")):
            out = os.path.join(self.work, "reports", f"{name}-{label}")
            args = ["rollout", "--run", run, "--out", out, "--force", "--steps", "20", "--device", dev, "--no-plots"]
            if label == "reference" or not baseline_on_device:
                args.append("--no-baseline")
            rc, text = self.ansatz(c, args, limit)
            if rc != 0:
                c.ok, c.note = False, f"{name} on {dev}: rc {rc}: " + " | ".join(text.strip().splitlines()[-2:])
                return None
            with open(os.path.join(out, "summary.json")) as f:
                summaries[label] = json.load(f)
        return summaries

    def rollout(self, c):
        run = os.path.join(self.work, "runs", f"fno-burgers2d-{self.device}")
        if not os.path.exists(os.path.join(run, "checkpoint.ckpt")):
            c.note = "no trained run (the curves check did not finish)"
            c.ok = False
            return
        summaries = self.rollout_pair(c, run, "rollout", 180, baseline_on_device=True)
        if summaries is None:
            return
        a, b = summaries["device"], summaries["reference"]
        na, nb = nrmse_at(a), nrmse_at(b)
        rows, rels = [], {}
        for step in sorted(na):
            if step in nb:
                rels[step] = abs(na[step] - nb[step]) / max(abs(nb[step]), 1e-30)
                rows.append(f"| {step} | {na[step]:.6g} | {nb[step]:.6g} | {rels[step]:.1e} |")
        c.data.update({"device_nrmse_at": na, "cpu_nrmse_at": nb, "relative_difference": rels})
        c.data["device_summary"] = {k: a.get(k) for k in ("model", "samples", "steps", "nrmse_mean", "correlation_time_08")}
        c.data["table"] = ["| step | median nRMSE, device | median nRMSE, CPU | rel. diff |", "|---|---|---|---|"] + rows
        first = rels.get(1)
        c.ok = first is not None and first <= ROLLOUT_RTOL and all(math.isfinite(x) for x in na.values())
        if not c.ok:
            c.note = f"step-1 nRMSE differs by {first:.1e}" if first is not None else "no step-1 nRMSE in the summary"

    def hybrid(self, c):
        """The solver-in-the-loop hybrid with its network on the device and its solver on the CPU's cores:
        a hybrid trained briefly on the CPU (64² Kolmogorov flow) rolled out on the device and on the CPU (the
        same predictions, their costs per frame), then `ansatz hybrid-cost` at 64²–512² with the network on
        each (the solver's and the network's cost per frame, and the grid at which the plain solver costs as much
        as the hybrid)."""
        data = os.path.join(self.root, "data", "kolmogorov64.nc")
        run = os.path.join(self.work, "runs", "hybrid-fno-kolmogorov")
        sets = ["training.steps=20", "training.batch=4", "training.checkpoint_every=20", "training.validate_every=20",
                "training.validation_windows=8", "schedule.warmup_steps=5", "data.horizon=2"]
        args = ["train", "hybrid-fno-kolmogorov", "--data", data, "--out", run, "--force"]
        rc, text = self.ansatz(c, args + [x for s in sets for x in ("--set", s)], 150)
        if rc != 0:
            c.ok, c.note = False, f"training on the CPU: rc {rc}: " + " | ".join(text.strip().splitlines()[-2:])
            return
        summaries = self.rollout_pair(c, run, "hybrid", 120, baseline_on_device=False)
        if summaries is None:
            return
        na, nb = nrmse_at(summaries["device"]), nrmse_at(summaries["reference"])
        rels = {k: abs(na[k] - nb[k]) / max(abs(nb[k]), 1e-30) for k in na if k in nb}
        cost = {k: summaries[k]["cost"]["model_seconds_per_step"] for k in summaries}
        c.data["rollout"] = {"device_nrmse_at": na, "cpu_nrmse_at": nb, "relative_difference": rels,
                             "seconds_per_frame": cost}
        table = ["Rollout of the 64² hybrid (20 frames, the solver on the CPU in both):", "",
                 "| step | median nRMSE, network on the device | on the CPU | rel. diff |", "|---|---|---|---|"]
        table += [f"| {k} | {na[k]:.6g} | {nb[k]:.6g} | {rels[k]:.1e} |" for k in sorted(rels) if k in (1, 5, 10, 20)]
        table += ["", f"Seconds per frame and sample: {cost['device']:.3g} with the network on the device, "
                  f"{cost['reference']:.3g} on the CPU.", ""]
        fails = []
        first = rels.get(1)
        if first is None or first > ROLLOUT_RTOL or not all(math.isfinite(x) for x in na.values()):
            fails.append(f"step-1 nRMSE differs by {first:.1e}" if first is not None else "no step-1 nRMSE")
        grids = ["--grids", self.args.hybrid_grids or ("64,128,256,512" if self.device == "gpu" else "32,64")]
        runs = [(self.device, 150)] + ([("cpu", 150)] if self.device == "gpu" else [])
        costs = {}
        for dev, limit in runs:
            path = os.path.join(self.work, f"hybrid-cost-{dev}.json")
            rc, text = self.ansatz(c, ["hybrid-cost", "--device", dev, "--json", path] + grids, limit)
            if rc != 0:
                fails.append(f"hybrid-cost on {dev}: rc {rc}")
                continue
            with open(path) as f:
                costs[dev] = json.load(f)
        c.data["cost"] = costs
        table += ["Cost per frame and sample (`ansatz hybrid-cost`, 8 samples; the solver on the CPU's cores):", "",
                  "| network on | grid | solver steps | solver ms | network ms | network ÷ solver | plain solver at the hybrid's cost |",
                  "|---|---|---|---|---|---|---|"]
        for dev, r in costs.items():
            for g in r["grids"]:
                be = g.get("breakeven_grid")
                be = "beyond" if be is None else f"{be:.0f}²" + (" (extrapolated)" if g.get("extrapolated") else "")
                table.append(f"| {dev} | {g['n']}² | {g['substeps']} | {g['solver'] * 1e3:.3f} | "
                             f"{g['network'] * 1e3:.3f} | {g['ratio']:.2f} | {be} |")
        c.data["table"] = table
        c.ok = not fails
        c.note = "; ".join(fails)

    def mpi(self, c):
        data = os.path.join(self.root, "data", "burgers1d.nc")
        config = os.path.join(self.root, "configs", "sgd-fno-burgers1d.toml")
        env = dict(self.env, ANSATZ_GPUS="1")
        res = {}
        for np_ in (1, 2):
            run = os.path.join(self.work, "runs", f"mpi-{np_}")
            dump = os.path.join(self.work, f"gradient-{np_}.bin")
            args = ["train", config, "--data", data, "--out", run, "--force", "--device", self.device]
            e = dict(env, ANSATZ_DUMP_GRADIENT=dump)
            if np_ == 1:
                rc, text = self.ansatz(c, args, 120, env=e)
            else:
                cmd = ["mpirun", "--oversubscribe", "-np", "2", "-x", "LD_LIBRARY_PATH", "-x", "ANSATZ_GPUS"]
                cmd += ["-x", "ANSATZ_DUMP_GRADIENT", "-x", "PATH"]
                for k in ("VK_DRIVER_FILES", "VK_ICD_FILENAMES", "__EGL_VENDOR_LIBRARY_FILENAMES", "ANSATZ_WGPU_ADAPTER"):
                    if k in e:
                        cmd += ["-x", k]
                rc, text = self.run(c, cmd + [self.exe] + args, 180, env=e)
            if rc != 0:
                c.ok, c.note = False, f"{np_} rank(s): rc {rc}: " + " | ".join(text.strip().splitlines()[-3:])
                return
            res[np_] = (read_f32(dump), checkpoint_params(os.path.join(run, "checkpoint.ckpt")), self.losses(run))
        g = relative(res[2][0], res[1][0])
        p = relative(res[2][1], res[1][1])
        lrel = max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(res[2][2], res[1][2]))
        c.data.update(
            {"first_gradient_rel": g, "parameters_rel_after_20_sgd_steps": p, "max_loss_rel": lrel, "parameters": len(res[1][1])}
        )
        c.data["table"] = [
            "| quantity | 2 ranks vs 1 (relative) | tolerance |",
            "|---|---|---|",
            f"| first gradient (all-reduced) | {g:.1e} | {MPI_GRAD_RTOL:.0e} |",
            f"| parameters after 20 SGD steps | {p:.1e} | {MPI_PARAM_RTOL:.0e} |",
            f"| largest per-step loss difference | {lrel:.1e} | – |",
        ]
        c.ok = g <= MPI_GRAD_RTOL and p <= MPI_PARAM_RTOL
        if not c.ok:
            c.note = f"gradient {g:.1e}, parameters {p:.1e}"


def nrmse_at(summary):
    """{step: median nRMSE} from a rollout summary.json (`nrmse_at` holds [step, statistics] pairs)."""
    return {int(step): float(stat["median"]) for step, stat in summary["nrmse_at"]}


def read_f32(path):
    with open(path, "rb") as f:
        b = f.read()
    return struct.unpack(f"<{len(b) // 4}f", b)


def checkpoint_params(path):
    """The parameters of a checkpoint: magic, u32 version, u64 header length, JSON header, f32 parameters, ..."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"ANSATZCK":
        raise ValueError(f"{path}: not a checkpoint")
    (n,) = struct.unpack("<Q", b[12:20])
    header = json.loads(b[20 : 20 + n])
    count = sum(math.prod(shape) for _, shape in header["layout"])
    return struct.unpack(f"<{count}f", b[20 + n : 20 + n + 4 * count])


def relative(a, b):
    if len(a) != len(b):
        raise ValueError(f"lengths differ: {len(a)} and {len(b)}")
    d = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    return d / max(math.sqrt(sum(y * y for y in b)), 1e-30)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="run every check on the CPU backend (no GPU needed)")
    ap.add_argument("--bundle", default=here, help="the bundle folder [default: this script's folder]")
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-results", help="results folder [default: $OUT or ./gpu-check-results]")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ansatz-gpu-check"), help="scratch folder")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds after which remaining checks are skipped [420]")
    ap.add_argument("--only", nargs="*", help="run only these checks (adapter always runs)")
    ap.add_argument("--binary", default="ansatz", help="the payload's binary to check: bin/NAME [ansatz]")
    ap.add_argument("--profile-cases", nargs="+", default=["fno1d", "fno2d"], help="cases the profile check runs")
    ap.add_argument("--hybrid-grids", help="grids of the hybrid check's `ansatz hybrid-cost` [64,128,256,512 on a GPU, 32,64 with --cpu]")
    args = ap.parse_args()
    r = Runner(args)
    os.makedirs(r.out, exist_ok=True)
    os.makedirs(r.work, exist_ok=True)
    r.log = open(os.path.join(r.out, "gpu-check.log"), "w")
    r.unpack()
    r.environment()
    r.machine()
    r.info["binary"] = args.binary
    r.say("machine: " + json.dumps(r.info))
    rc, text = r.ansatz(None, ["--version"], 30)
    if rc != 0:
        r.say("the bundled ansatz does not start: " + text.strip()[-400:])
        r.info["startup"] = text.strip()[-400:]
        r.write()
        return 2
    if args.only is not None:
        args.only = set(args.only) | {"adapter"}
    a = r.check("adapter", "the adapter wgpu selected", r.adapter, need=0)
    if a.ok is False:
        r.write()
        return 1
    # the correctness checks and the FNO numbers first, the longer cases last
    r.check("throughput", "(a) training throughput: fno1d and fno2d", r.throughput, need=60)
    r.check("pytorch", "anchor: the same FNOs in PyTorch", r.pytorch, need=40)
    r.check("curves", "(b) loss curves on the device against the CPU", r.curves, need=60)
    r.check("rollout", "(c) rollout on the device", r.rollout, need=30)
    r.check("hybrid", "the solver-in-the-loop hybrid with its network on the device", r.hybrid, need=90)
    r.check("mpi", "(d) mpirun -np 2 sharing the device against 1 rank", r.mpi, need=40)
    if r.device == "gpu":
        r.check("profile", "kernel launches and GPU time per step (CubeCL timestamps)", r.profile, need=40)
    r.check("throughput-more", "(a) the demo cases on the device, the FNOs on this CPU", r.throughput_more, need=60)
    r.write()
    failed = [c.name for c in r.checks if c.ok is False]
    r.say("failed: " + ", ".join(failed) if failed else "all checks that ran passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
