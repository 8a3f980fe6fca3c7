//! Trajectories, tangents and gradients through many time steps of any [`Stepper`], batched over samples.
//!
//! The adjoint strategy is a value passed to [`gradient`] (after diffrax's `adjoint=` argument):
//! [`Checkpointed`] keeps every k-th state and recomputes the others segment by segment (k = ⌈√T⌉ by default,
//! so about 2√T states are held), [`StoreAll`] keeps all T + 1 states and recomputes nothing.

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::ConfigError;
use crate::scheme::Stepper;

/// How a gradient through `T` steps trades memory for recomputation.
pub trait AdjointStrategy: Sync {
    /// The checkpoint interval k for `steps` steps: every k-th state is kept in the forward pass, the states in
    /// between are recomputed in the reverse pass. k = 1 stores every state.
    fn interval(&self, steps: usize) -> usize;
}

/// Keep every state of the forward pass (memory T + 1 states, no recomputation).
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreAll;

impl AdjointStrategy for StoreAll {
    fn interval(&self, _steps: usize) -> usize {
        1
    }
}

/// Checkpointing: keep every k-th state, recompute the segments between them in the reverse pass
/// (memory ⌈T/k⌉ + k − 1 states, one extra forward pass).
#[derive(Clone, Copy, Debug, Default)]
pub struct Checkpointed {
    every: Option<usize>,
}

impl Checkpointed {
    /// k = ⌈√T⌉, which minimises the number of stored states (about 2√T).
    pub fn sqrt() -> Self {
        Self { every: None }
    }

    /// A fixed interval k ≥ 1.
    pub fn every(k: usize) -> Self {
        Self { every: Some(k.max(1)) }
    }
}

impl AdjointStrategy for Checkpointed {
    fn interval(&self, steps: usize) -> usize {
        match self.every {
            Some(k) => k,
            None => ((steps as f64).sqrt().ceil() as usize).max(1),
        }
    }
}

/// A loss that is a sum of terms over the states of a trajectory: `L = Σ_t ℓ(sample, t, u_t)`, t = 0..=T.
pub trait TrajectoryLoss: Sync {
    /// Returns `ℓ(sample, step, u)` and adds `∂ℓ/∂u` into `grad`. Return 0 and leave `grad` alone for steps
    /// without a term.
    fn term(&self, sample: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64;
}

/// Result of [`gradient`].
#[derive(Clone, Debug)]
pub struct Gradient {
    /// Loss of each sample.
    pub loss: Array1<f64>,
    /// `∂L/∂u0`, shape `(batch, len)`.
    pub du0: Array2<f64>,
    /// `∂L/∂ν` of each sample.
    pub dnu: Array1<f64>,
    /// Most states one sample held at once (checkpoints plus the recomputed segment).
    pub peak_states: usize,
    /// Steps taken per sample, counting the recomputation.
    pub forward_steps: usize,
}

fn check_rows(stepper_len: usize, rows: usize, cols: usize, what: &'static str) -> Result<(), ConfigError> {
    if cols != stepper_len {
        return Err(ConfigError::Shape { what, expected: vec![rows, stepper_len], got: vec![rows, cols] });
    }
    Ok(())
}

/// Advances every sample of `u` (shape `(batch, len)`, standard layout) by `steps` steps in place, samples in
/// parallel. `works` must hold at least one scratch value per sample (see [`works`]).
pub fn advance<S: Stepper>(
    stepper: &S,
    mut u: ArrayViewMut2<f64>,
    steps: usize,
    works: &mut [S::Work],
) -> Result<(), ConfigError> {
    check_rows(stepper.state_len(), u.nrows(), u.ncols(), "advance: state")?;
    if works.len() < u.nrows() {
        return Err(ConfigError::Shape { what: "advance: works", expected: vec![u.nrows()], got: vec![works.len()] });
    }
    u.axis_iter_mut(Axis(0)).into_par_iter().zip(works.par_iter_mut()).for_each(|(mut row, w)| {
        let row = row.as_slice_mut().expect("rows of a standard-layout array are contiguous");
        stepper.advance(row, steps, w);
    });
    Ok(())
}

/// One scratch value per sample.
pub fn works<S: Stepper>(stepper: &S, batch: usize) -> Vec<S::Work> {
    (0..batch).map(|_| stepper.work()).collect()
}

/// Integrates `steps` steps from `u0` (shape `(batch, len)`) and returns the states at steps
/// `0, save_every, 2·save_every, …` (those ≤ `steps`), shape `(batch, frames, len)`.
pub fn integrate<S: Stepper>(
    stepper: &S,
    u0: ArrayView2<f64>,
    steps: usize,
    save_every: usize,
) -> Result<Array3<f64>, ConfigError> {
    check_rows(stepper.state_len(), u0.nrows(), u0.ncols(), "integrate: initial state")?;
    let save_every = save_every.max(1);
    let frames = steps / save_every + 1;
    let mut out = Array3::zeros((u0.nrows(), frames, u0.ncols()));
    out.axis_iter_mut(Axis(0)).into_par_iter().zip(u0.axis_iter(Axis(0))).for_each(|(mut traj, init)| {
        let mut w = stepper.work();
        let mut u = init.to_vec();
        traj.row_mut(0).assign(&init);
        for f in 1..frames {
            stepper.advance(&mut u, save_every, &mut w);
            traj.row_mut(f).assign(&ndarray::ArrayView1::from(&u[..]));
        }
    });
    Ok(out)
}

/// Forward-mode sensitivity: the tangent of the state after `steps` steps for the tangent `du0` of the initial
/// state and `dnu` of ν. Returns `(u_T, du_T)`, each `(batch, len)`.
pub fn tangent<S: Stepper>(
    stepper: &S,
    u0: ArrayView2<f64>,
    du0: ArrayView2<f64>,
    dnu: f64,
    steps: usize,
) -> Result<(Array2<f64>, Array2<f64>), ConfigError> {
    check_rows(stepper.state_len(), u0.nrows(), u0.ncols(), "tangent: initial state")?;
    check_rows(stepper.state_len(), du0.nrows(), du0.ncols(), "tangent: initial tangent")?;
    let mut u = u0.to_owned();
    let mut du = du0.to_owned();
    u.axis_iter_mut(Axis(0)).into_par_iter().zip(du.axis_iter_mut(Axis(0))).for_each(|(mut ur, mut dr)| {
        let mut w = stepper.work();
        let ur = ur.as_slice_mut().expect("contiguous row");
        let dr = dr.as_slice_mut().expect("contiguous row");
        for _ in 0..steps {
            stepper.step_jvp(ur, dr, dnu, &mut w);
            stepper.step(ur, &mut w);
        }
    });
    Ok((u, du))
}

/// Gradient of a trajectory loss with respect to the initial state and ν by the discrete adjoint (reverse mode),
/// samples in parallel. Memory per sample is set by `adjoint` (see [`AdjointStrategy`]).
pub fn gradient<S: Stepper, L: TrajectoryLoss>(
    stepper: &S,
    u0: ArrayView2<f64>,
    steps: usize,
    loss: &L,
    adjoint: &dyn AdjointStrategy,
) -> Result<Gradient, ConfigError> {
    check_rows(stepper.state_len(), u0.nrows(), u0.ncols(), "gradient: initial state")?;
    let k = adjoint.interval(steps).max(1);
    let batch = u0.nrows();
    let n = u0.ncols();
    let mut du0 = Array2::zeros((batch, n));
    let results: Vec<(f64, f64, usize, usize)> = du0
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(sample, mut g_row)| {
            let g = g_row.as_slice_mut().expect("contiguous row");
            reverse_one(stepper, u0.row(sample).to_vec(), steps, k, sample, loss, g)
        })
        .collect();
    let loss_v = results.iter().map(|r| r.0).collect();
    let dnu = results.iter().map(|r| r.1).collect();
    let peak_states = results.iter().map(|r| r.2).max().unwrap_or(0);
    let forward_steps = results.iter().map(|r| r.3).max().unwrap_or(0);
    Ok(Gradient { loss: loss_v, du0, dnu, peak_states, forward_steps })
}

/// Reverse pass for one sample. Returns (loss, dν, peak stored states, steps taken).
fn reverse_one<S: Stepper, L: TrajectoryLoss>(
    stepper: &S,
    u0: Vec<f64>,
    steps: usize,
    k: usize,
    sample: usize,
    loss: &L,
    g: &mut [f64],
) -> (f64, f64, usize, usize) {
    let mut w = stepper.work();
    // Forward: checkpoints at 0, k, 2k, … < steps.
    let n_segments = steps.div_ceil(k).max(1);
    let mut checkpoints: Vec<Vec<f64>> = Vec::with_capacity(n_segments);
    let mut u = u0;
    let mut taken = 0;
    for t in 0..steps {
        if t % k == 0 {
            checkpoints.push(u.clone());
        }
        stepper.step(&mut u, &mut w);
        taken += 1;
    }
    if steps == 0 {
        checkpoints.push(u.clone());
    }
    g.fill(0.0);
    let mut total = loss.term(sample, steps, &u, g);
    drop(u);
    let mut dnu = 0.0;
    // Segment buffer holding the recomputed states after the checkpoint (at most k − 1).
    let seg_cap = k.saturating_sub(1).min(steps.saturating_sub(1));
    let mut segment: Vec<Vec<f64>> = Vec::with_capacity(seg_cap);
    let peak = checkpoints.len() + seg_cap;
    for s in (0..checkpoints.len()).rev() {
        let start = s * k;
        let end = (start + k).min(steps);
        // recompute the states start+1 .. end-1 into segment[0 ..]
        for j in 0..end - start - 1 {
            if segment.len() <= j {
                segment.push(vec![0.0; g.len()]);
            }
            if j == 0 {
                segment[0].copy_from_slice(&checkpoints[s]);
            } else {
                let (done, rest) = segment.split_at_mut(j);
                rest[0].copy_from_slice(&done[j - 1]);
            }
            stepper.step(&mut segment[j], &mut w);
            taken += 1;
        }
        for t in (start..end).rev() {
            let state: &[f64] = if t == start { &checkpoints[s] } else { &segment[t - start - 1] };
            dnu += stepper.step_vjp(state, g, &mut w);
            total += loss.term(sample, t, state, g);
        }
    }
    (total, dnu, peak, taken)
}
