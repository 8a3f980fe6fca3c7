//! The network of the deep conjugate direction method (Kaneda et al., ICML 2023): a fully convolutional residual
//! CNN that maps a residual field to a search direction, meant to act like `A⁻¹` up to a scale.
//!
//! Fields are `[batch, 1, nz, ny, nx]` with `nz = 1` in 2D. With `c` channels, 3×3 (2D) or 3×3×3 (3D)
//! convolutions with zero ("same") padding, and `R(h) = h + relu(C₂ relu(C₁ h))` a residual pair:
//!
//! ```text
//! h = C_in x                                   (linear, 1 → c)
//! h = R_fine^(a)(h),  s = h                   (a pairs on the grid)
//! h = R_coarse^(b)(pool₂ h)                   (b pairs on the grid coarsened 2× per axis, by averaging)
//! h = R_post^(d)(up₂ h + s)                   (nearest-neighbour upsampling, the skip from the fine level)
//! y = w · h + β                               (a per-cell linear map, c → 1)
//! ```
//!
//! With `L > 1` coarse levels (`levels`) the middle line becomes a V: on the way down each of the `L − 1`
//! intermediate grids applies `R_down^(e)` after pooling and keeps a skip `s_l`, the coarsest grid applies
//! `R_coarse^(b)`, and on the way up each intermediate grid applies `R_up^(e)(γ · up₂ h + s_l)`. The
//! intermediate levels share one set of weights (`R_down`, `R_up` and the scalar gain `γ`, which lets the
//! coarse contributions grow geometrically with depth, as the inverse of a Laplacian's smooth modes does), so
//! the depth is free to follow the grid: `levels = 0` coarsens until the next grid would have a side below 4
//! cells, which makes the receptive field cover the whole grid at any size.
//!
//! The reference network for 64³ grids has L = 1, a = 2, b = 3, d = 2 (4, 6 and 4 convolutions) and c = 16. By
//! default the network is antisymmetrised, `f(x) = (y(x) − y(−x)) / 2`, so that it is odd like `A⁻¹`. Nothing
//! depends on the grid size: a network trained on one grid applies to any other (odd sides are padded with
//! zeros before pooling and cropped after upsampling).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::relu;
use burn::tensor::module::{conv_transpose2d, conv_transpose3d, conv2d, conv3d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use crate::init::Init;

/// Configuration of [`DcdmNet`].
#[derive(Config, Debug)]
pub struct DcdmConfig {
    /// Space dimensions, 2 or 3.
    pub dims: usize,
    /// Channels c.
    #[config(default = 16)]
    pub channels: usize,
    /// Residual pairs on the fine grid before the coarse level.
    #[config(default = 2)]
    pub fine_pairs: usize,
    /// Residual pairs on the coarse grid.
    #[config(default = 3)]
    pub coarse_pairs: usize,
    /// Residual pairs on the fine grid after the coarse level.
    #[config(default = 2)]
    pub post_pairs: usize,
    /// Coarse levels L (each 2× coarser per axis); 0 chooses them from the grid (down to sides of 4 to 7 cells).
    #[config(default = 1)]
    pub levels: usize,
    /// Residual pairs on each intermediate level, each way (weights shared by all intermediate levels; used when
    /// L > 1).
    #[config(default = 1)]
    pub level_pairs: usize,
    /// Antisymmetrise: `f(x) = (g(x) − g(−x)) / 2` for the network `g` above, so that `f(−x) = −f(x)` as for
    /// `A⁻¹` (twice the work per application).
    #[config(default = true)]
    pub odd: bool,
    /// The symmetric positive definite multilevel network instead of the residual CNN (see [`Multilevel`]).
    /// It uses `channels`, `levels` and `convs` and ignores the pairs and `odd` (it is linear, hence odd).
    #[config(default = false)]
    pub multilevel: bool,
    /// Convolutions per encoder of the multilevel network (the first 1 → c, the others c → c).
    #[config(default = 2)]
    pub convs: usize,
}

impl DcdmConfig {
    /// Draws the network from `init`; fails on a bad dimension or zero channels.
    pub fn init(&self, init: &mut Init) -> Result<DcdmNet, String> {
        if self.dims != 2 && self.dims != 3 {
            return Err(format!("dims must be 2 or 3, got {}", self.dims));
        }
        if self.channels == 0 {
            return Err("channels must be at least 1".into());
        }
        let c = self.channels;
        if self.multilevel {
            if self.convs == 0 {
                return Err("convs must be at least 1".into());
            }
            let encoder = |init: &mut Init| -> Vec<LinearConv> {
                (0..self.convs).map(|i| LinearConv::new(if i == 0 { 1 } else { c }, c, self.dims, init)).collect()
            };
            let fine = encoder(init);
            let coarse = encoder(init);
            let scalar =
                |v: f64| Param::from_tensor(Tensor::<1>::ones([1], (init.device(), init.dtype())).mul_scalar(v));
            let multilevel = Multilevel {
                fine,
                coarse,
                log_gain: scalar(((1usize << (self.dims + 2)) as f64).ln()),
                log_floor: scalar(1e-2f64.ln()),
            };
            return Ok(DcdmNet {
                input: None,
                fine: vec![],
                coarse: vec![],
                post: vec![],
                levels: None,
                out_weight: None,
                out_bias: None,
                multilevel: Some(multilevel),
                depth: self.levels,
                dims: self.dims,
                odd: false,
            });
        }
        let pairs = |n: usize, init: &mut Init| -> Vec<ResidualPair> {
            (0..n).map(|_| ResidualPair::new(c, self.dims, init)).collect()
        };
        let input = Conv::new(1, c, self.dims, init);
        let fine = pairs(self.fine_pairs, init);
        let coarse = pairs(self.coarse_pairs, init);
        let post = pairs(self.post_pairs, init);
        let levels = if self.levels == 1 {
            None
        } else {
            let down = pairs(self.level_pairs, init);
            let up = pairs(self.level_pairs, init);
            let gain = Param::from_tensor(Tensor::<1>::ones([1], (init.device(), init.dtype())));
            Some(Levels { down, up, gain })
        };
        let a = 1.0 / (c as f64).sqrt();
        Ok(DcdmNet {
            input: Some(input),
            fine,
            coarse,
            post,
            levels,
            depth: self.levels,
            out_weight: Some(Param::from_tensor(init.uniform([c], -a, a))),
            out_bias: Some(Param::from_tensor(init.uniform([1], -a, a))),
            multilevel: None,
            dims: self.dims,
            odd: self.odd,
        })
    }

    /// Trainable parameters.
    pub fn parameters(&self) -> usize {
        let taps = if self.dims == 3 { 27 } else { 9 };
        let c = self.channels;
        if self.multilevel {
            return 2 * (taps * c + self.convs.saturating_sub(1) * taps * c * c) + 2;
        }
        let conv = c * c * taps + c;
        let shared = if self.levels == 1 { 0 } else { 2 * 2 * conv * self.level_pairs + 1 };
        (c * taps + c) + 2 * conv * (self.fine_pairs + self.coarse_pairs + self.post_pairs) + shared + c + 1
    }
}

/// A 3×3 or 3×3×3 convolution with bias and zero padding.
#[derive(Module, Debug)]
pub struct Conv {
    /// `[c_out, c_in, kz, 3, 3]`, `kz = 1` in 2D.
    pub weight: Param<Tensor<5>>,
    /// `[c_out]`.
    pub bias: Param<Tensor<1>>,
}

impl Conv {
    /// Weights and bias uniform in ±1/√(c_in · taps).
    fn new(cin: usize, cout: usize, dims: usize, init: &mut Init) -> Self {
        let LinearConv { weight } = LinearConv::new(cin, cout, dims, init);
        let a = init_bound(cin, dims);
        Self { weight, bias: Param::from_tensor(init.uniform([cout], -a, a)) }
    }

    /// `[b, c_in, nz, ny, nx] → [b, c_out, nz, ny, nx]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        convolve(self.weight.val(), Some(self.bias.val()), x)
    }
}

/// The zero-padded 3×3 (`kz = 1`) or 3×3×3 convolution of `x` `[b, c_in, nz, ny, nx]` with `weight`
/// `[c_out, c_in, kz, 3, 3]`.
fn convolve(weight: Tensor<5>, bias: Option<Tensor<1>>, x: Tensor<5>) -> Tensor<5> {
    let [cout, cin, kz, ky, kx] = weight.dims();
    let [b, _, nz, ny, nx] = x.dims();
    if kz == 1 {
        debug_assert_eq!(nz, 1, "a 2D convolution takes nz = 1");
        let w = weight.reshape([cout, cin, ky, kx]);
        let y = conv2d(x.reshape([b, cin, ny, nx]), w, bias, ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
        y.reshape([b, cout, 1, ny, nx])
    } else {
        conv3d(x, weight, bias, ConvOptions::new([1, 1, 1], [1, 1, 1], [1, 1, 1], 1))
    }
}

/// The adjoint of [`convolve`] without bias: `[b, c_out, nz, ny, nx] → [b, c_in, nz, ny, nx]`.
fn convolve_adjoint(weight: Tensor<5>, y: Tensor<5>) -> Tensor<5> {
    let [cout, cin, kz, ky, kx] = weight.dims();
    let [b, _, _, ny, nx] = y.dims();
    if kz == 1 {
        let w = weight.reshape([cout, cin, ky, kx]);
        let x = conv_transpose2d(
            y.reshape([b, cout, ny, nx]),
            w,
            None,
            ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1),
        );
        x.reshape([b, cin, 1, ny, nx])
    } else {
        conv_transpose3d(y, weight, None, ConvTransposeOptions::new([1, 1, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1], 1))
    }
}

/// The bound `1/√(c_in · taps)` of a convolution's initial weights and bias.
fn init_bound(cin: usize, dims: usize) -> f64 {
    1.0 / ((cin * if dims == 3 { 27 } else { 9 }) as f64).sqrt()
}

/// A bias-free 3×3 or 3×3×3 convolution with zero padding, and its adjoint.
#[derive(Module, Debug)]
pub struct LinearConv {
    /// `[c_out, c_in, kz, 3, 3]`, `kz = 1` in 2D.
    pub weight: Param<Tensor<5>>,
}

impl LinearConv {
    /// Weights uniform in ±1/√(c_in · taps).
    fn new(cin: usize, cout: usize, dims: usize, init: &mut Init) -> Self {
        let (kz, a) = (if dims == 3 { 3 } else { 1 }, init_bound(cin, dims));
        Self { weight: Param::from_tensor(init.uniform([cout, cin, kz, 3, 3], -a, a)) }
    }

    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        convolve(self.weight.val(), None, x)
    }

    fn adjoint(&self, y: Tensor<5>) -> Tensor<5> {
        convolve_adjoint(self.weight.val(), y)
    }
}

/// The symmetric positive definite multilevel network, our alternative to the residual CNN:
///
/// ```text
/// f(x) = ε x + E_fᵀ E_f x + Σ_{l=1}^{L} γ^l P_lᵀ E_cᵀ E_c P_l x
/// ```
///
/// with `E_f` and `E_c` stacks of bias-free convolutions (1 → c, then c → c), `P_l` the full-weighting
/// restriction to level `l` (the fixed smoothing `[1, 2, 1] / 4` per axis, then 2× block averages, per level) and
/// `P_lᵀ` its exact adjoint (linear interpolation divided by 2^d), `ε = e^a` and `γ = e^s` learnt. The coarse
/// levels share `E_c`, so the network applies to any grid and its depth can follow the grid. `f` is linear, symmetric and positive definite, so `rᵀ f(r) > 0` for every residual: a
/// direction from it always descends, whatever the residual looks like, which the residual CNN does not
/// guarantee. It is an additive multilevel preconditioner (BPX-like) whose level operators are learnt.
#[derive(Module, Debug)]
pub struct Multilevel {
    fine: Vec<LinearConv>,
    coarse: Vec<LinearConv>,
    /// `[1]`: `s`, the log of the gain γ per level.
    log_gain: Param<Tensor<1>>,
    /// `[1]`: `a`, the log of the identity's weight ε.
    log_floor: Param<Tensor<1>>,
}

impl Multilevel {
    /// `Eᵀ E x`.
    fn normal(convs: &[LinearConv], x: Tensor<5>) -> Tensor<5> {
        let mut h = x;
        for c in convs {
            h = c.forward(h);
        }
        for c in convs.iter().rev() {
            h = c.adjoint(h);
        }
        h
    }

    fn forward(&self, x: Tensor<5>, levels: usize, dims: usize) -> Tensor<5> {
        let one = [1, 1, 1, 1, 1];
        let floor = self.log_floor.val().exp().reshape(one);
        let gain = self.log_gain.val().exp().reshape(one);
        let fine = x.clone() * floor + Self::normal(&self.fine, x.clone());
        // down: the restricted fields and the shapes they came from
        let mut pooled = Vec::with_capacity(levels);
        let mut h = x;
        for _ in 0..levels {
            let [_, _, nz, ny, nx] = h.dims();
            h = pool2(smooth(h, dims), dims);
            pooled.push(([nz, ny, nx], h.clone()));
        }
        // up: level l's term gathers γ once per level on its way to the fine grid
        let mut acc: Option<Tensor<5>> = None;
        for (shape, p) in pooled.into_iter().rev() {
            let mut t = Self::normal(&self.coarse, p);
            if let Some(a) = acc {
                t = t + a;
            }
            acc = Some(smooth(pool2_adjoint(t * gain.clone(), shape, dims), dims));
        }
        match acc {
            Some(a) => fine + a,
            None => fine,
        }
    }
}

/// `h + relu(C₂ relu(C₁ h))`.
#[derive(Module, Debug)]
pub struct ResidualPair {
    first: Conv,
    second: Conv,
}

impl ResidualPair {
    fn new(c: usize, dims: usize, init: &mut Init) -> Self {
        Self { first: Conv::new(c, c, dims, init), second: Conv::new(c, c, dims, init) }
    }

    fn forward(&self, h: Tensor<5>) -> Tensor<5> {
        let t = relu(self.second.forward(relu(self.first.forward(h.clone()))));
        h + t
    }
}

/// The weights shared by the intermediate levels of a network with more than one coarse level.
#[derive(Module, Debug)]
pub struct Levels {
    down: Vec<ResidualPair>,
    up: Vec<ResidualPair>,
    /// `[1]`: the factor γ on each upsampled coarse contribution.
    gain: Param<Tensor<1>>,
}

/// The DCDM network: `[batch, 1, nz, ny, nx] → [batch, 1, nz, ny, nx]`.
#[derive(Module, Debug)]
pub struct DcdmNet {
    input: Option<Conv>,
    fine: Vec<ResidualPair>,
    coarse: Vec<ResidualPair>,
    post: Vec<ResidualPair>,
    levels: Option<Levels>,
    out_weight: Option<Param<Tensor<1>>>,
    out_bias: Option<Param<Tensor<1>>>,
    /// The multilevel network in place of all of the above.
    multilevel: Option<Multilevel>,
    /// Coarse levels (0: from the grid).
    #[module(skip)]
    depth: usize,
    #[module(skip)]
    dims: usize,
    #[module(skip)]
    odd: bool,
}

impl DcdmNet {
    /// Space dimensions.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The dtype of the parameters.
    pub fn dtype(&self) -> DType {
        match (&self.multilevel, &self.out_bias) {
            (Some(m), _) => m.log_floor.val().dtype(),
            (None, Some(b)) => b.val().dtype(),
            (None, None) => unreachable!("a residual network has an output bias"),
        }
    }

    /// Whether this is the multilevel network (linear, symmetric, positive definite).
    pub fn is_multilevel(&self) -> bool {
        self.multilevel.is_some()
    }

    /// The multilevel network's parameters in f32, for [`crate::dcdm_native`]; `None` for the residual CNN.
    pub fn multilevel_weights(&self) -> Result<Option<crate::dcdm_native::MultilevelWeights>, String> {
        let Some(m) = &self.multilevel else { return Ok(None) };
        let values = |t: Tensor<5>| -> Result<Vec<f32>, String> {
            t.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| format!("network weights: {e:?}"))
        };
        let convs = |list: &[LinearConv]| -> Result<Vec<crate::dcdm_native::ConvWeights>, String> {
            list.iter()
                .map(|c| {
                    let [cout, cin, kz, _, _] = c.weight.dims();
                    Ok(crate::dcdm_native::ConvWeights { cout, cin, kz, w: values(c.weight.val())? })
                })
                .collect()
        };
        let scalar = |p: &Param<Tensor<1>>| -> Result<f32, String> {
            let v = p.val().exp().into_data().convert::<f32>().try_to_vec::<f32>();
            v.ok().and_then(|v| v.first().copied()).ok_or_else(|| "network weights: an empty scalar".to_string())
        };
        Ok(Some(crate::dcdm_native::MultilevelWeights {
            dims: self.dims,
            fine: convs(&m.fine)?,
            coarse: convs(&m.coarse)?,
            gain: scalar(&m.log_gain)?,
            floor: scalar(&m.log_floor)?,
        }))
    }

    /// Applies the network. In 2D `nz` must be 1; any grid size of at least one cell per axis.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        if let Some(m) = &self.multilevel {
            let [_, _, nz, ny, nx] = x.dims();
            return m.forward(x, self.coarse_levels([nz, ny, nx]), self.dims);
        }
        if !self.odd {
            return self.raw(x);
        }
        let b = x.dims()[0];
        let y = self.raw(Tensor::cat(vec![x.clone(), x.neg()], 0));
        (y.clone().narrow(0, 0, b) - y.narrow(0, b, b)).div_scalar(2.0)
    }

    /// The network without the antisymmetrisation.
    fn raw(&self, x: Tensor<5>) -> Tensor<5> {
        let [b, _, nz, ny, nx] = x.dims();
        let (Some(input), Some(out_weight), Some(out_bias)) = (&self.input, &self.out_weight, &self.out_bias) else {
            unreachable!("a residual network has its input and output layers")
        };
        let mut h = input.forward(x);
        for p in &self.fine {
            h = p.forward(h);
        }
        let skip = h.clone();
        let g = self.below(h, 1, self.coarse_levels([nz, ny, nx]));
        let mut h = up2(g, [nz, ny, nx], self.dims) + skip;
        for p in &self.post {
            h = p.forward(h);
        }
        let c = out_weight.dims()[0];
        let w = out_weight.val().reshape([1, 1, c]);
        let y = w.matmul(h.reshape([b, c, nz * ny * nx])) + out_bias.val().reshape([1, 1, 1]);
        y.reshape([b, 1, nz, ny, nx])
    }
}

impl DcdmNet {
    /// The coarse levels used on a `[nz, ny, nx]` grid: the configured number, or with `levels = 0` as many
    /// as keep every pooled side at least 4 (at least one); the multilevel network goes on down to sides of 2
    /// (none on grids with a side below 4).
    pub fn coarse_levels(&self, grid: [usize; 3]) -> usize {
        if self.depth > 0 {
            return self.depth;
        }
        let f = factors(self.dims);
        let mut side = (0..3).filter(|&a| f[a] == 2).map(|a| grid[a]).min().unwrap_or(1);
        if self.multilevel.is_some() {
            let mut levels = 0;
            while side >= 4 {
                side = side.div_ceil(2);
                levels += 1;
            }
            return levels;
        }
        let mut levels = 1;
        while side.div_ceil(2).div_ceil(2) >= 4 {
            side = side.div_ceil(2);
            levels += 1;
        }
        levels
    }

    /// Pools the fine-level field `h` of level `level − 1` and applies levels `level ..= deepest`; returns the
    /// result on level `level`'s grid.
    fn below(&self, h: Tensor<5>, level: usize, deepest: usize) -> Tensor<5> {
        let mut g = pool2(h, self.dims);
        // a network configured with one level has no shared weights and never goes deeper than the first
        let shared = match &self.levels {
            Some(shared) if level < deepest => shared,
            _ => {
                for p in &self.coarse {
                    g = p.forward(g);
                }
                return g;
            }
        };
        for p in &shared.down {
            g = p.forward(g);
        }
        let [_, _, nz, ny, nx] = g.dims();
        let skip = g.clone();
        let c = self.below(g, level + 1, deepest);
        let gain = shared.gain.val().reshape([1, 1, 1, 1, 1]);
        let mut g = up2(c, [nz, ny, nx], self.dims) * gain + skip;
        for p in &shared.up {
            g = p.forward(g);
        }
        g
    }
}

/// The factor of each axis (z, y, x) by which the coarse level is coarser.
fn factors(dims: usize) -> [usize; 3] {
    if dims == 3 { [2, 2, 2] } else { [1, 2, 2] }
}

/// Averages blocks of 2 cells per axis (2×2 in 2D, 2×2×2 in 3D), after padding odd sides with a zero layer.
fn pool2(x: Tensor<5>, dims: usize) -> Tensor<5> {
    let f = factors(dims);
    let mut x = x;
    for (axis, &fa) in f.iter().enumerate() {
        let d = x.dims();
        if fa == 2 && d[2 + axis] % 2 == 1 {
            let mut shape = d;
            shape[2 + axis] = 1;
            let zeros = Tensor::<5>::zeros(shape, (&x.device(), x.dtype()));
            x = Tensor::cat(vec![x, zeros], 2 + axis);
        }
    }
    let [b, c, nz, ny, nx] = x.dims();
    let (mz, my, mx) = (nz / f[0], ny / f[1], nx / f[2]);
    let blocks: Tensor<8> = x.reshape([b, c, mz, f[0], my, f[1], mx, f[2]]);
    let sum = blocks.sum_dim(7).sum_dim(5).sum_dim(3);
    sum.reshape([b, c, mz, my, mx]).div_scalar((f[0] * f[1] * f[2]) as f64)
}

/// The fixed symmetric smoothing `[1, 2, 1] / 4` along each pooled axis, zero outside the grid, on a
/// one-channel field. Copying coarse values to their blocks and then smoothing is bilinear (trilinear)
/// interpolation between cell centres, so `pool2 ∘ smooth` and its adjoint `smooth ∘ pool2ᵀ` are the
/// full-weighting restriction and the linear prolongation (up to the factor 2^d).
fn smooth(x: Tensor<5>, dims: usize) -> Tensor<5> {
    let [b, c, nz, ny, nx] = x.dims();
    let one = [0.25, 0.5, 0.25];
    let (device, dtype) = (x.device(), x.dtype());
    let kz = if dims == 3 { 3 } else { 1 };
    let mut w = Vec::with_capacity(kz * 9);
    for z in 0..kz {
        for y in one {
            for xv in one {
                w.push(if kz == 3 { one[z] } else { 1.0 } * y * xv);
            }
        }
    }
    let w =
        Tensor::<5>::from_data(burn::tensor::TensorData::new(w, [1, 1, kz, 3, 3]), (&device, DType::F64)).cast(dtype);
    convolve(w, None, x.reshape([b * c, 1, nz, ny, nx])).reshape([b, c, nz, ny, nx])
}

/// The adjoint of [`pool2`] from a `shape` (`[nz, ny, nx]`) grid: each coarse value copied to its block,
/// divided by the block's size, the padding dropped.
fn pool2_adjoint(x: Tensor<5>, shape: [usize; 3], dims: usize) -> Tensor<5> {
    let f = factors(dims);
    up2(x, shape, dims).div_scalar((f[0] * f[1] * f[2]) as f64)
}

/// Nearest-neighbour upsampling by 2 per pooled axis, cropped to `shape` (`[nz, ny, nx]`).
fn up2(x: Tensor<5>, shape: [usize; 3], dims: usize) -> Tensor<5> {
    let f = factors(dims);
    let [b, c, mz, my, mx] = x.dims();
    let t: Tensor<8> = x.reshape([b, c, mz, 1, my, 1, mx, 1]);
    let t = t.repeat_dim(3, f[0]).repeat_dim(5, f[1]).repeat_dim(7, f[2]);
    let y = t.reshape([b, c, mz * f[0], my * f[1], mx * f[2]]);
    y.narrow(2, 0, shape[0]).narrow(3, 0, shape[1]).narrow(4, 0, shape[2])
}

/// A network as a nonlinear preconditioner of a solver's vectors. `apply(r, z)` places `r / ‖r‖` on the cell
/// grid (`cells[u]` is the grid cell of unknown `u`; other cells are zero), applies the network in its dtype
/// and returns its values at the unknowns, times `‖r‖` (the scale does not matter to DCDM or flexible CG, whose
/// line searches absorb it). The multilevel network runs natively in f32 ([`crate::dcdm_native`]), with buffers
/// allocated once per grid; the residual CNN goes through burn and allocates its tensors on each application.
pub struct NetworkPreconditioner {
    net: DcdmNet,
    grid: [usize; 3],
    cells: Vec<usize>,
    device: Device,
    dtype: DType,
    /// The multilevel network's native kernel with its grid buffers, built once.
    native: Option<NativeApply>,
}

/// A native kernel and its grid buffers (input and output fields).
struct NativeApply {
    kernel: crate::dcdm_native::MultilevelKernel,
    fields: std::sync::Mutex<(Vec<f32>, Vec<f32>)>,
}

impl NetworkPreconditioner {
    /// The network `net` (on `device`, parameters of `dtype`) on a `[nz, ny, nx]` grid with the unknowns at
    /// `cells`. Fails when a cell lies outside the grid or the grid does not match the network's dimension.
    pub fn new(
        net: DcdmNet,
        grid: [usize; 3],
        cells: Vec<usize>,
        device: Device,
        dtype: DType,
    ) -> Result<Self, String> {
        let n: usize = grid.iter().product();
        if net.dims() == 2 && grid[0] != 1 {
            return Err(format!("a 2D network needs nz = 1, got the grid {grid:?}"));
        }
        if let Some(c) = cells.iter().find(|&&c| c >= n) {
            return Err(format!("unknown at cell {c}, outside the {grid:?} grid"));
        }
        let native = net.multilevel_weights()?.map(|w| {
            let kernel = crate::dcdm_native::MultilevelKernel::new(w, grid, net.coarse_levels(grid));
            NativeApply { kernel, fields: std::sync::Mutex::new((vec![0.0f32; n], vec![0.0f32; n])) }
        });
        Ok(Self { net, grid, cells, device, dtype, native })
    }

    /// The grid, `[nz, ny, nx]`.
    pub fn grid(&self) -> [usize; 3] {
        self.grid
    }

    /// Unknowns.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are no unknowns.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

impl ansatz_solvers::precond::Preconditioner for NetworkPreconditioner {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            z.iter_mut().for_each(|v| *v = if norm == 0.0 { 0.0 } else { f64::NAN });
            return;
        }
        if let Some(NativeApply { kernel, fields }) = &self.native {
            // the multilevel network: native, allocation-free
            let mut guard = fields.lock().unwrap_or_else(|e| e.into_inner());
            let (g, y) = &mut *guard;
            g.fill(0.0);
            for (&c, &v) in self.cells.iter().zip(r) {
                g[c] = (v / norm) as f32;
            }
            kernel.apply(g, y);
            for (zu, &c) in z.iter_mut().zip(&self.cells) {
                *zu = f64::from(y[c]) * norm;
            }
            return;
        }
        let [nz, ny, nx] = self.grid;
        let mut g = vec![0.0f64; nz * ny * nx];
        for (&c, &v) in self.cells.iter().zip(r) {
            g[c] = v / norm;
        }
        let x =
            Tensor::<5>::from_data(burn::tensor::TensorData::new(g, [1, 1, nz, ny, nx]), (&self.device, self.dtype));
        let y = self.net.forward(x).into_data().convert::<f64>();
        match y.as_slice::<f64>() {
            Ok(y) => {
                for (zu, &c) in z.iter_mut().zip(&self.cells) {
                    *zu = y[c] * norm;
                }
            }
            Err(_) => z.fill(f64::NAN),
        }
    }

    /// The multilevel network is a fixed linear, symmetric and positive definite map (up to its f32 round-off,
    /// about 1e-7 of the output), so plain PCG accepts it; the residual CNN is nonlinear.
    fn is_linear(&self) -> bool {
        self.native.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().expect("values")
    }

    fn net(dims: usize, seed: u64, device: &Device) -> DcdmNet {
        DcdmConfig::new(dims).with_channels(4).init(&mut Init::new(seed, device).with_dtype(DType::F64)).unwrap()
    }

    #[test]
    fn any_grid_size_keeps_its_shape_and_the_parameter_count_is_exact() {
        let device = Device::flex();
        for (dims, shapes) in [(2, vec![[1, 8, 8], [1, 7, 5], [1, 1, 3]]), (3, vec![[4, 4, 4], [5, 3, 6]])] {
            let m = net(dims, 1, &device);
            let count: usize = crate::flat::layout(&m).iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
            assert_eq!(count, DcdmConfig::new(dims).with_channels(4).parameters(), "{dims}D");
            for [nz, ny, nx] in shapes {
                let x = Tensor::<5>::ones([2, 1, nz, ny, nx], (&device, DType::F64));
                let y = m.forward(x);
                assert_eq!(y.dims(), [2, 1, nz, ny, nx]);
                assert!(values(y).iter().all(|v| v.is_finite()));
            }
        }
    }

    #[test]
    fn deeper_networks_keep_shapes_and_choose_their_depth_from_the_grid() {
        let device = Device::flex();
        let auto = DcdmConfig::new(2).with_channels(3).with_levels(0);
        let m = auto.init(&mut Init::new(5, &device).with_dtype(DType::F64)).unwrap();
        for (side, levels) in [(4, 1), (8, 1), (15, 2), (16, 2), (32, 3), (33, 3), (64, 4), (256, 6)] {
            assert_eq!(m.coarse_levels([1, side, side]), levels, "{side}");
        }
        let count: usize = crate::flat::layout(&m).iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
        assert_eq!(count, auto.parameters());
        for [nz, ny, nx] in [[1, 32, 32], [1, 21, 37], [1, 3, 3]] {
            let y = m.forward(Tensor::<5>::ones([1, 1, nz, ny, nx], (&device, DType::F64)));
            assert_eq!(y.dims(), [1, 1, nz, ny, nx]);
            assert!(values(y).iter().all(|v| v.is_finite()));
        }
        let fixed = DcdmConfig::new(3).with_channels(2).with_levels(3).with_level_pairs(2);
        let m = fixed.init(&mut Init::new(6, &device).with_dtype(DType::F64)).unwrap();
        assert_eq!(m.coarse_levels([64, 64, 64]), 3);
        let count: usize = crate::flat::layout(&m).iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
        assert_eq!(count, fixed.parameters());
        let y = m.forward(Tensor::<5>::ones([1, 1, 9, 8, 12], (&device, DType::F64)));
        assert_eq!(y.dims(), [1, 1, 9, 8, 12]);
    }

    #[test]
    fn pooling_averages_blocks_and_upsampling_copies_them() {
        let device = Device::flex();
        // 2D: a 1 × 3 × 4 field; the odd side gets a zero row
        let x: Vec<f64> = (0..12).map(|i| i as f64).collect();
        let t = Tensor::<5>::from_data(TensorData::new(x, [1, 1, 1, 3, 4]), (&device, DType::F64));
        let p = pool2(t, 2);
        assert_eq!(p.dims(), [1, 1, 1, 2, 2]);
        // blocks (0,1,4,5), (2,3,6,7), (8,9,0,0), (10,11,0,0)
        assert_eq!(values(p.clone()), vec![2.5, 4.5, 4.25, 5.25]);
        let u = up2(p, [1, 3, 4], 2);
        assert_eq!(values(u), vec![2.5, 2.5, 4.5, 4.5, 2.5, 2.5, 4.5, 4.5, 4.25, 4.25, 5.25, 5.25]);
        // 3D: a constant field pools to itself
        let c = Tensor::<5>::ones([1, 2, 4, 2, 6], (&device, DType::F64)).mul_scalar(3.0);
        let p = pool2(c, 3);
        assert_eq!(p.dims(), [1, 2, 2, 1, 3]);
        assert!(values(p).iter().all(|&v| (v - 3.0).abs() < 1e-15));
    }

    #[test]
    fn the_network_is_local_and_translation_equivariant_away_from_walls() {
        // a point source far from the walls, moved by 2 cells (one coarse cell): the output moves with it
        let device = Device::flex();
        // one pair per level: a receptive field of 1 + 2 + 2 · (2 + 1) + 2 = 11 cells
        let m = DcdmConfig::new(2)
            .with_channels(4)
            .with_fine_pairs(1)
            .with_coarse_pairs(1)
            .with_post_pairs(1)
            .init(&mut Init::new(3, &device).with_dtype(DType::F64))
            .unwrap();
        let n = 40;
        let field = |at: usize| {
            let mut v = vec![0.0; n * n];
            v[at] = 1.0;
            Tensor::<5>::from_data(TensorData::new(v, [1, 1, 1, n, n]), (&device, DType::F64))
        };
        let a = values(m.forward(field(20 * n + 18)));
        let b = values(m.forward(field(20 * n + 20)));
        // compare a window around the sources that stays inside the receptive field and off the walls
        let mut moved = 0.0f64;
        for y in 16..25 {
            for x in 14..23 {
                let (va, vb) = (a[y * n + x], b[y * n + x + 2]);
                assert!((va - vb).abs() < 1e-12, "({y}, {x}): {va} vs {vb}");
                moved = moved.max((va - a[y * n + x + 2]).abs());
            }
        }
        // and the source does change the output there
        assert!(moved > 1e-6, "{moved}");
    }

    #[test]
    fn the_antisymmetrised_network_is_odd() {
        let device = Device::flex();
        let x: Vec<f64> = (0..60).map(|i| (i as f64 * 0.7).sin()).collect();
        let x = Tensor::<5>::from_data(TensorData::new(x, [1, 1, 3, 4, 5]), (&device, DType::F64));
        let (y, z) =
            (values(net(3, 2, &device).forward(x.clone())), values(net(3, 2, &device).forward(x.clone().neg())));
        assert!(y.iter().zip(&z).all(|(a, b)| (a + b).abs() < 1e-14), "{y:?} vs {z:?}");
        // the plain network is not
        let plain = DcdmConfig::new(3).with_channels(4).with_odd(false);
        let plain = plain.init(&mut Init::new(2, &device).with_dtype(DType::F64)).unwrap();
        let (y, z) = (values(plain.forward(x.clone())), values(plain.forward(x.neg())));
        assert!(y.iter().zip(&z).any(|(a, b)| (a + b).abs() > 1e-6));
    }

    fn multilevel(dims: usize, convs: usize, seed: u64, device: &Device) -> (DcdmConfig, DcdmNet) {
        let config = DcdmConfig::new(dims).with_channels(3).with_levels(0).with_multilevel(true).with_convs(convs);
        let net = config.init(&mut Init::new(seed, device).with_dtype(DType::F64)).unwrap();
        (config, net)
    }

    #[test]
    fn the_multilevel_network_is_symmetric_and_positive_definite_on_any_grid() {
        let device = Device::flex();
        for (dims, convs, shape) in
            [(2, 2, [1, 13, 10]), (2, 1, [1, 7, 5]), (2, 3, [1, 3, 3]), (3, 2, [5, 6, 7]), (3, 1, [4, 4, 4])]
        {
            let (config, m) = multilevel(dims, convs, 11, &device);
            let count: usize = crate::flat::layout(&m).iter().map(|(_, s)| s.iter().product::<usize>()).sum();
            assert_eq!(count, config.parameters(), "{dims}D, {convs} convolutions");
            let n: usize = shape.iter().product();
            let field = |k: f64| {
                let v: Vec<f64> = (0..n).map(|i| ((i as f64 + 0.3) * k).sin() + 0.1 * (i % 3) as f64).collect();
                Tensor::<5>::from_data(TensorData::new(v, [1, 1, shape[0], shape[1], shape[2]]), (&device, DType::F64))
            };
            let (x, y) = (field(0.77), field(1.91));
            let (fx, fy) = (values(m.forward(x.clone())), values(m.forward(y.clone())));
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
            let (xv, yv) = (values(x), values(y));
            let (a, b) = (dot(&fx, &yv), dot(&xv, &fy));
            assert!((a - b).abs() <= 1e-12 * a.abs().max(b.abs()), "{dims}D {shape:?}: {a} vs {b}");
            assert!(dot(&fx, &xv) > 0.0 && dot(&fy, &yv) > 0.0);
            // linear: f(2x − y) = 2 f(x) − f(y)
            let combo: Vec<f64> = xv.iter().zip(&yv).map(|(p, q)| 2.0 * p - q).collect();
            let t = Tensor::<5>::from_data(
                TensorData::new(combo, [1, 1, shape[0], shape[1], shape[2]]),
                (&device, DType::F64),
            );
            let fc = values(m.forward(t));
            assert!(fc.iter().zip(fx.iter().zip(&fy)).all(|(c, (p, q))| (c - (2.0 * p - q)).abs() < 1e-10));
        }
        // the depth follows the grid down to sides of 2
        let (_, m) = multilevel(2, 2, 1, &device);
        for (side, levels) in [(2, 0), (3, 0), (4, 1), (7, 2), (8, 2), (32, 4), (256, 7)] {
            assert_eq!(m.coarse_levels([1, side, side]), levels, "{side}");
        }
    }

    #[test]
    fn the_native_multilevel_kernel_matches_the_network() {
        let device = Device::flex();
        for (dims, convs, shape) in
            [(2, 2, [1, 13, 10]), (2, 1, [1, 32, 32]), (2, 3, [1, 3, 5]), (3, 2, [5, 6, 7]), (3, 1, [8, 8, 8])]
        {
            let config = DcdmConfig::new(dims).with_channels(3).with_levels(0).with_multilevel(true).with_convs(convs);
            let m = config.init(&mut Init::new(17, &device).with_dtype(DType::F32)).unwrap();
            let n: usize = shape.iter().product();
            let x: Vec<f32> = (0..n).map(|i| ((i as f32 + 0.3) * 0.77).sin() + 0.1 * (i % 5) as f32).collect();
            let t = Tensor::<5>::from_data(
                TensorData::new(x.clone(), [1, 1, shape[0], shape[1], shape[2]]),
                (&device, DType::F32),
            );
            let reference = values(m.forward(t));
            let kernel = crate::dcdm_native::MultilevelKernel::new(
                m.multilevel_weights().unwrap().unwrap(),
                shape,
                m.coarse_levels(shape),
            );
            let mut y = vec![0.0f32; n];
            kernel.apply(&x, &mut y);
            // twice: the buffers are reused, not accumulated into
            kernel.apply(&x, &mut y);
            let scale = reference.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            let worst = y.iter().zip(&reference).fold(0.0f64, |a, (p, q)| a.max((f64::from(*p) - q).abs()));
            assert!(worst <= 1e-5 * scale, "{dims}D {shape:?}, {convs} convolutions: {worst:e} of {scale:e}");
        }
    }

    #[test]
    fn pooling_and_its_adjoint_are_adjoint() {
        let device = Device::flex();
        for (dims, shape) in [(2, [1, 5, 6]), (3, [3, 4, 5])] {
            let n: usize = shape.iter().product();
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos()).collect();
            let x =
                Tensor::<5>::from_data(TensorData::new(x, [1, 1, shape[0], shape[1], shape[2]]), (&device, DType::F64));
            let px = pool2(x.clone(), dims);
            let m: usize = px.dims().iter().product();
            let y: Vec<f64> = (0..m).map(|i| (i as f64 * 1.3).sin()).collect();
            let y = Tensor::<5>::from_data(TensorData::new(y, px.dims()), (&device, DType::F64));
            let a: f64 = values(px * y.clone()).iter().sum();
            let b: f64 = values(x * pool2_adjoint(y, shape, dims)).iter().sum();
            assert!((a - b).abs() < 1e-13, "{dims}D: {a} vs {b}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_network() {
        let device = Device::flex();
        let x = Tensor::<5>::ones([1, 1, 3, 4, 5], (&device, DType::F64));
        let (a, b, c) = (net(3, 9, &device), net(3, 9, &device), net(3, 10, &device));
        assert_eq!(values(a.forward(x.clone())), values(b.forward(x.clone())));
        assert_ne!(values(a.forward(x.clone())), values(c.forward(x)));
    }
}
