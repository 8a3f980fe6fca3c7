//! Deterministic parameter initialisation: every weight is drawn from a SplitMix64 stream owned by the caller,
//! so a network is a pure function of (config, seed) whatever the backend, thread count or test order (burn's
//! own generator is global to the process).

use burn::prelude::*;
use burn::tensor::{DType, TensorData};

/// A source of initial weights on one device and dtype.
#[derive(Debug, Clone)]
pub struct Init {
    state: u64,
    device: Device,
    dtype: DType,
}

impl Init {
    /// A stream seeded by `seed` producing f32 tensors on `device`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self { state: seed ^ 0x5DEE_CE66_D1CE_4E5B, device: device.clone(), dtype: DType::F32 }
    }

    /// The same stream producing tensors of `dtype` (f64 for gradient checks).
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// The device tensors are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype tensors are created with.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The next uniform number in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A tensor with entries uniform in [lo, hi).
    pub fn uniform<const D: usize>(&mut self, shape: [usize; D], lo: f64, hi: f64) -> Tensor<D> {
        let n = shape.iter().product();
        let values: Vec<f64> = (0..n).map(|_| lo + (hi - lo) * self.next_unit()).collect();
        self.tensor(values, shape)
    }

    /// A tensor filled with `value`.
    pub fn constant<const D: usize>(&self, shape: [usize; D], value: f64) -> Tensor<D> {
        self.tensor(vec![value; shape.iter().product()], shape)
    }

    /// A tensor from values in row-major order.
    pub fn tensor<const D: usize>(&self, values: Vec<f64>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), (&self.device, self.dtype))
    }
}
