//! Building blocks shared by the operators: pointwise (1×1) channel maps and periodic (circularly padded)
//! stencils. Fields are `[batch, channels, ny, nx]`; a 1D field has `ny = 1`.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use crate::init::Init;

/// A pointwise linear map of channels with bias (a 1×1 convolution): `[b, c_in, ny, nx] → [b, c_out, ny, nx]`.
#[derive(Module, Debug)]
pub struct Pointwise {
    /// `[c_out, c_in]`.
    pub weight: Param<Tensor<2>>,
    /// `[c_out]`.
    pub bias: Param<Tensor<1>>,
}

impl Pointwise {
    /// Weights and bias uniform in ±1/√c_in (the usual default for linear layers).
    pub fn new(channels_in: usize, channels_out: usize, init: &mut Init) -> Self {
        let a = 1.0 / (channels_in as f64).sqrt();
        Self {
            weight: Param::from_tensor(init.uniform([channels_out, channels_in], -a, a)),
            bias: Param::from_tensor(init.uniform([channels_out], -a, a)),
        }
    }

    /// Applies the map.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, ny, nx] = x.dims();
        let [cout, _] = self.weight.dims();
        let y = self.weight.val().unsqueeze_dim::<3>(0).matmul(x.reshape([b, c, ny * nx]));
        let y = y + self.bias.val().reshape([1, cout, 1]);
        y.reshape([b, cout, ny, nx])
    }
}

/// Pads `[b, c, ny, nx]` periodically by `py` rows and `px` columns on each side.
pub fn circular_pad(x: Tensor<4>, py: usize, px: usize) -> Tensor<4> {
    let [_, _, ny, nx] = x.dims();
    let x =
        if px > 0 { Tensor::cat(vec![x.clone().narrow(3, nx - px, px), x.clone(), x.narrow(3, 0, px)], 3) } else { x };
    if py > 0 { Tensor::cat(vec![x.clone().narrow(2, ny - py, py), x.clone(), x.narrow(2, 0, py)], 2) } else { x }
}

/// A periodic convolution with an odd `ky × kx` kernel, optionally with bias.
#[derive(Module, Debug)]
pub struct PeriodicConv {
    /// `[c_out, c_in, ky, kx]`.
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl PeriodicConv {
    /// Weights (and bias) uniform in ±1/√(c_in ky kx). Kernel sides must be odd.
    pub fn new(channels_in: usize, channels_out: usize, kernel: [usize; 2], bias: bool, init: &mut Init) -> Self {
        assert!(kernel[0] % 2 == 1 && kernel[1] % 2 == 1, "kernel sides must be odd, got {kernel:?}");
        let a = 1.0 / ((channels_in * kernel[0] * kernel[1]) as f64).sqrt();
        let weight = Param::from_tensor(init.uniform([channels_out, channels_in, kernel[0], kernel[1]], -a, a));
        let bias = bias.then(|| Param::from_tensor(init.uniform([channels_out], -a, a)));
        Self { weight, bias }
    }

    /// Applies the convolution with the module's weights (a 1×1 kernel is a matrix product, no padding).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [cout, cin, ky, kx] = self.weight.dims();
        if ky == 1 && kx == 1 {
            let [b, _, ny, nx] = x.dims();
            let w = self.weight.val().reshape([1, cout, cin]);
            let mut y = w.matmul(x.reshape([b, cin, ny * nx]));
            if let Some(bias) = &self.bias {
                y = y + bias.val().reshape([1, cout, 1]);
            }
            return y.reshape([b, cout, ny, nx]);
        }
        periodic_conv(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// A periodic convolution of `x` with `weight` (`[c_out, c_in, ky, kx]`, odd sides).
pub fn periodic_conv(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let [_, _, ky, kx] = weight.dims();
    let x = circular_pad(x, ky / 2, kx / 2);
    conv2d(x, weight, bias, ConvOptions::new([1, 1], [0, 0], [1, 1], 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, TensorData};

    #[test]
    fn periodic_conv_wraps_around_both_axes() {
        let device = Device::flex();
        let (ny, nx) = (3, 4);
        let x: Vec<f64> = (0..ny * nx).map(|i| i as f64).collect();
        let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 1, ny, nx]), (&device, DType::F64));
        // kernel picking the left neighbour (x - 1) and the upper neighbour (y - 1)
        let mut k = vec![0.0; 9];
        k[3] = 1.0; // (row 1, col 0): x - 1
        k[1] = 10.0; // (row 0, col 1): y - 1
        let w = Tensor::<4>::from_data(TensorData::new(k, [1, 1, 3, 3]), (&device, DType::F64));
        let y = periodic_conv(x, w, None).into_data();
        let y = y.as_slice::<f64>().unwrap();
        for j in 0..ny {
            for i in 0..nx {
                let left = (j * nx + (i + nx - 1) % nx) as f64;
                let up = (((j + ny - 1) % ny) * nx + i) as f64;
                assert_eq!(y[j * nx + i], left + 10.0 * up, "({j}, {i})");
            }
        }
    }
}
