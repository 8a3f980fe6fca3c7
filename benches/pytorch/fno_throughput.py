#!/usr/bin/env python3
"""PyTorch anchor for `ansatz throughput`: the same FNO cases (sizes, batch, Adam step) in PyTorch.

One step = forward, MSE against a fixed random target, backward, Adam; the median of the timed steps after the
warm-up steps (each step synchronised on a GPU). The networks match ansatz's FNO layer for layer and parameter for
parameter (the parameter count is printed and checked): pointwise lifting of the fields plus the cell
coordinates, Fourier layers (spectral convolution with both signs of the y modes, plus a pointwise linear map,
GELU between layers), and a pointwise projection through a hidden layer of 128.

    python3 benches/pytorch/fno_throughput.py --device cuda --json torch.json
    python3 benches/pytorch/fno_throughput.py --device cpu fno1d

The spectral convolution uses torch.fft (as the reference FNO does); ansatz's uses truncated DFT matrices.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (dims, channels in, channels out, width, modes x, modes y, layers, nx, ny, batch, expected parameters,
# unrolled steps): the input window holds channels-in / channels-out frames; an unrolled case feeds each
# prediction back (the oldest frame dropped) and sums the steps' MSEs, as `ansatz throughput` does
CASES = {
    "fno1d": (1, 1, 1, 64, 16, 0, 4, 256, 1, 64, 549_569, 1),
    "fno2d": (2, 10, 1, 32, 8, 8, 4, 32, 32, 16, 1_057_569, 1),
    "demo-fno": (2, 20, 2, 32, 8, 8, 4, 32, 32, 16, 1_058_018, 5),
}


class Spectral1d(nn.Module):
    def __init__(self, cin, cout, modes):
        super().__init__()
        self.modes = modes
        scale = 1.0 / (cin * cout)
        self.w = nn.Parameter(scale * torch.rand(cin, cout, modes, dtype=torch.cfloat))

    def forward(self, x):
        b, _, n = x.shape
        xf = torch.fft.rfft(x)
        out = torch.zeros(b, self.w.shape[1], n // 2 + 1, dtype=torch.cfloat, device=x.device)
        out[:, :, : self.modes] = torch.einsum("bix,iox->box", xf[:, :, : self.modes], self.w)
        return torch.fft.irfft(out, n=n)


class Spectral2d(nn.Module):
    def __init__(self, cin, cout, mx, my):
        super().__init__()
        self.mx, self.my = mx, my
        scale = 1.0 / (cin * cout)
        self.w1 = nn.Parameter(scale * torch.rand(cin, cout, my, mx, dtype=torch.cfloat))
        self.w2 = nn.Parameter(scale * torch.rand(cin, cout, my, mx, dtype=torch.cfloat))

    def forward(self, x):
        b, _, ny, nx = x.shape
        xf = torch.fft.rfft2(x)
        out = torch.zeros(b, self.w1.shape[1], ny, nx // 2 + 1, dtype=torch.cfloat, device=x.device)
        mx, my = self.mx, self.my
        out[:, :, :my, :mx] = torch.einsum("bixy,ioxy->boxy", xf[:, :, :my, :mx], self.w1)
        out[:, :, -my:, :mx] = torch.einsum("bixy,ioxy->boxy", xf[:, :, -my:, :mx], self.w2)
        return torch.fft.irfft2(out, s=(ny, nx))


class Fno(nn.Module):
    def __init__(self, dims, cin, cout, width, mx, my, layers, nx, ny, projection=128):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.dims = dims
        self.lift = conv(cin + dims, width, 1)
        self.spectral = nn.ModuleList(
            [Spectral1d(width, width, mx) if dims == 1 else Spectral2d(width, width, mx, my) for _ in range(layers)]
        )
        self.pointwise = nn.ModuleList([conv(width, width, 1) for _ in range(layers)])
        self.proj1 = conv(width, projection, 1)
        self.proj2 = conv(projection, cout, 1)
        xs = (torch.arange(nx) + 0.5) / nx
        if dims == 1:
            grid = xs.view(1, 1, nx)
        else:
            ys = (torch.arange(ny) + 0.5) / ny
            grid = torch.stack([xs.view(1, nx).expand(ny, nx), ys.view(ny, 1).expand(ny, nx)]).unsqueeze(0)
        self.register_buffer("grid", grid)

    def forward(self, x):
        g = self.grid.expand(x.shape[0], *self.grid.shape[1:])
        h = self.lift(torch.cat([x, g], dim=1))
        last = len(self.spectral) - 1
        for i, (s, p) in enumerate(zip(self.spectral, self.pointwise)):
            y = s(h) + p(h)
            h = F.gelu(y) if i < last else y
        return self.proj2(F.gelu(self.proj1(h)))


def parameters(model):
    # a complex parameter holds two trainable values
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def measure(name, device, warmup, steps):
    dims, cin, cout, width, mx, my, layers, nx, ny, batch, expected, horizon = CASES[name]
    torch.manual_seed(1)
    model = Fno(dims, cin, cout, width, mx, my, layers, nx, ny).to(device)
    count = parameters(model)
    if count != expected:
        raise SystemExit(f"{name}: {count} parameters, expected {expected} (the network no longer matches ansatz's)")
    shape_in = (batch, cin, nx) if dims == 1 else (batch, cin, ny, nx)
    shape_out = (batch, cout * horizon, nx) if dims == 1 else (batch, cout * horizon, ny, nx)
    x = (2 * torch.rand(shape_in) - 1).to(device)
    y = (2 * torch.rand(shape_out) - 1).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    first = None
    for step in range(warmup + steps):
        sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        window, loss = x, 0.0
        for k in range(horizon):
            p = model(window)
            loss = loss + F.mse_loss(p, y[:, k * cout : (k + 1) * cout])
            window = torch.cat([window[:, cout:], p], dim=1)
        loss.backward()
        opt.step()
        sync()
        s = time.perf_counter() - t
        if step == 0:
            first = s
        if step >= warmup:
            times.append(s)
    med = statistics.median(times)
    return {
        "case": name,
        "parameters": count,
        "batch": batch,
        "horizon": horizon,
        "first_step_ms": first * 1e3,
        "ms_per_step": med * 1e3,
        "ms_min": min(times) * 1e3,
        "ms_max": max(times) * 1e3,
        "windows_per_s": batch / med,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", default=list(CASES), help=f"cases: {', '.join(CASES)} [default: all]")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda or cpu")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", help="also write the results as JSON to this file")
    a = ap.parse_args()
    bad = [c for c in a.cases if c not in CASES]
    if bad:
        ap.error(f"unknown case {bad[0]!r}: {', '.join(CASES)}")
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("fno_throughput: CUDA is not available to PyTorch")
    results = []
    for name in a.cases:
        r = measure(name, device, a.warmup, a.steps)
        results.append(r)
        print(
            f"{name}: {r['parameters']} parameters, batch {r['batch']} × {r['horizon']}: {r['ms_per_step']:.2f} ms/step "
            f"(min {r['ms_min']:.2f}, max {r['ms_max']:.2f}; first step {r['first_step_ms']:.0f} ms), "
            f"{r['windows_per_s']:.0f} windows/s",
            flush=True,
        )
    report = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "cases": results,
    }
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(report, f, indent=2)
        import os

        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
