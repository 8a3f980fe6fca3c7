//! Forward + backward time of each layer type at the demo size (batch 16, 32 channels, 32²) and at the 1D FNO
//! benchmark's size (batch 64, 64 channels, N = 256).
//! `cargo run --release -p ansatz-operators --example layer_timing`

use ansatz_operators::init::Init;
use ansatz_operators::layers::{PeriodicConv, Pointwise};
use ansatz_operators::spectral::SpectralConvConfig;
use burn::prelude::*;
use std::time::Instant;

fn time(name: &str, f: impl Fn() -> f64) {
    f();
    let t = Instant::now();
    let mut s = 0.0;
    for _ in 0..10 {
        s += f();
    }
    println!("{name:>28}: {:8.2} ms  ({s:.1e})", t.elapsed().as_secs_f64() * 100.0);
}

/// Back-propagates the sum of `t` and reduces the gradient of `x` to a number (so nothing is optimised away).
fn input_gradient_sum(x: &Tensor<4>, t: Tensor<4>) -> f64 {
    let g = t.sum().backward();
    x.grad(&g).map(|g| g.sum().into_scalar::<f64>()).unwrap_or(0.0)
}

fn main() {
    ansatz_operators::memory::retain_freed_memory();
    let device = Device::flex().autodiff();
    let (b, c, n) = (16, 32, 32);
    let mut init = Init::new(1, &device);
    let x = init.uniform([b, c, n, n], -1.0, 1.0).require_grad();
    let spec = SpectralConvConfig::new(c, c, 8, 8, n, n).init(&mut init);
    let pw = Pointwise::new(c, c, &mut init);
    let k1 = PeriodicConv::new(c, c, [1, 1], true, &mut init);
    let k3 = PeriodicConv::new(c, c, [3, 3], false, &mut init);
    let scalar = |t: Tensor<4>| input_gradient_sum(&x, t);
    time("spectral conv", || scalar(spec.forward(x.clone())));
    time("pointwise", || scalar(pw.forward(x.clone())));
    time("periodic conv 1x1", || scalar(k1.forward(x.clone())));
    time("periodic conv 3x3", || scalar(k3.forward(x.clone())));
    time("gelu (kernels::gelu)", || scalar(ansatz_operators::kernels::gelu(x.clone())));
    time("gelu (burn)", || scalar(burn::tensor::activation::gelu(x.clone())));
    time("gelu (tanh)", || scalar(burn::tensor::activation::gelu_approximate(x.clone())));
    time("x sigmoid(1.702 x)", || scalar(x.clone() * burn::tensor::activation::sigmoid(x.clone().mul_scalar(1.702))));
    time("product", || scalar(x.clone() * x.clone()));

    // the 1D FNO benchmark's sizes: batch 64, width 64, N = 256, 16 modes
    let x1 = init.uniform([64, 64, 1, 256], -1.0, 1.0).require_grad();
    let spec1 = SpectralConvConfig::new(64, 64, 16, 1, 256, 1).init(&mut init);
    let pw1 = Pointwise::new(64, 64, &mut init);
    let proj = Pointwise::new(64, 128, &mut init);
    let scalar1 = |t: Tensor<4>| input_gradient_sum(&x1, t);
    time("1D spectral conv", || scalar1(spec1.forward(x1.clone())));
    time("1D pointwise 64->64", || scalar1(pw1.forward(x1.clone())));
    time("1D pointwise 64->128", || scalar1(proj.forward(x1.clone())));
    time("1D gelu (burn)", || scalar1(burn::tensor::activation::gelu(x1.clone())));
    time("1D gelu (kernels::gelu)", || scalar1(ansatz_operators::kernels::gelu(x1.clone())));
}
