//! Optimisers on a flat parameter vector in host memory (AdamW, Adam, SGD with momentum) and global-norm
//! gradient clipping. Working on one flat vector makes the state trivially checkpointable (three arrays and a
//! step counter), lets data-parallel training all-reduce one buffer, and makes updates identical on every
//! backend.

use crate::config::{OptimiserConfig, OptimiserKind};

/// Optimiser state: step count and first and second moments (the second unused by SGD).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimiserState {
    /// Updates applied so far.
    pub updates: u64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

impl OptimiserState {
    /// Zero moments for `n` parameters.
    pub fn new(n: usize) -> Self {
        Self { updates: 0, m: vec![0.0; n], v: vec![0.0; n] }
    }
}

/// The Euclidean norm of `g` (accumulated in f64).
pub fn norm(g: &[f32]) -> f64 {
    g.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt()
}

/// Scales `g` so that its norm is at most `max_norm` (0: no clipping); returns the norm before clipping.
pub fn clip(g: &mut [f32], max_norm: f64) -> f64 {
    let n = norm(g);
    if max_norm > 0.0 && n > max_norm {
        let s = (max_norm / n) as f32;
        g.iter_mut().for_each(|v| *v *= s);
    }
    n
}

/// Applies one update with learning rate `lr` to `params` given the gradient `g`.
pub fn update(config: &OptimiserConfig, lr: f64, params: &mut [f32], g: &[f32], state: &mut OptimiserState) {
    update_scaled(config, lr, None, params, g, state)
}

/// [`update`] with the learning rate of parameter `i` multiplied by `scales[i]` (also in AdamW's decay): the
/// update separate optimisers with the same settings and proportional schedules would make.
pub fn update_scaled(
    config: &OptimiserConfig,
    lr: f64,
    scales: Option<&[f32]>,
    params: &mut [f32],
    g: &[f32],
    state: &mut OptimiserState,
) {
    assert_eq!(params.len(), g.len(), "gradient length");
    assert_eq!(params.len(), state.m.len(), "optimiser state length");
    if let Some(s) = scales {
        assert_eq!(s.len(), params.len(), "learning-rate scales length");
    }
    let scale = |i: usize| scales.map_or(1.0, |s| s[i]);
    state.updates += 1;
    let t = state.updates as i32;
    match config.kind {
        OptimiserKind::Sgd => {
            let (mu, lr) = (config.momentum as f32, lr as f32);
            for (i, ((p, gi), m)) in params.iter_mut().zip(g).zip(&mut state.m).enumerate() {
                *m = mu * *m + gi;
                *p -= lr * scale(i) * *m;
            }
        }
        OptimiserKind::Adam | OptimiserKind::Adamw => {
            let (b1, b2) = (config.beta1, config.beta2);
            let c1 = 1.0 - b1.powi(t);
            let c2 = 1.0 - b2.powi(t);
            let step = (lr / c1) as f32;
            let (b1, b2) = (b1 as f32, b2 as f32);
            let inv_sqrt_c2 = (1.0 / c2.sqrt()) as f32;
            let eps = config.epsilon as f32;
            let wd = if config.kind == OptimiserKind::Adamw { (lr * config.weight_decay) as f32 } else { 0.0 };
            for (i, (((p, gi), m), v)) in params.iter_mut().zip(g).zip(&mut state.m).zip(&mut state.v).enumerate() {
                let s = scale(i);
                *m = b1 * *m + (1.0 - b1) * gi;
                *v = b2 * *v + (1.0 - b2) * gi * gi;
                *p = *p * (1.0 - wd * s) - step * s * *m / (v.sqrt() * inv_sqrt_c2 + eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_updates_equal_separate_optimisers() {
        let config = OptimiserConfig::default();
        let g = [0.3f32, -0.7, 1.1];
        let (mut joint, mut state) = ([1.0f32, 2.0, 3.0], OptimiserState::new(3));
        let mut parts = [[1.0f32], [2.0], [3.0]];
        let mut states = [OptimiserState::new(1), OptimiserState::new(1), OptimiserState::new(1)];
        for _ in 0..3 {
            update_scaled(&config, 1e-3, Some(&[10.0, 1.0, 1.0]), &mut joint, &g, &mut state);
            for (i, lr) in [1e-2, 1e-3, 1e-3].into_iter().enumerate() {
                update(&config, lr, &mut parts[i], &g[i..i + 1], &mut states[i]);
            }
        }
        for i in 0..3 {
            assert!((joint[i] - parts[i][0]).abs() < 1e-7, "{i}: {} vs {}", joint[i], parts[i][0]);
        }
    }

    #[test]
    fn adam_first_step_moves_each_parameter_by_the_learning_rate() {
        // with bias correction, m̂ = g and v̂ = g², so the first step is lr · sign(g) (up to ε)
        let config = OptimiserConfig { kind: OptimiserKind::Adam, ..Default::default() };
        let mut p = vec![1.0f32, -2.0, 0.5];
        let mut s = OptimiserState::new(3);
        update(&config, 0.01, &mut p, &[3.0, -0.2, 1e-3], &mut s);
        for (a, b) in p.iter().zip([0.99f32, -1.99, 0.49]) {
            assert!((a - b).abs() < 1e-5, "{p:?}");
        }
    }

    #[test]
    fn adamw_decays_weights_without_gradient() {
        let config = OptimiserConfig { kind: OptimiserKind::Adamw, weight_decay: 0.1, ..Default::default() };
        let mut p = vec![2.0f32];
        let mut s = OptimiserState::new(1);
        update(&config, 0.5, &mut p, &[0.0], &mut s);
        assert!((p[0] - 2.0 * (1.0 - 0.05)).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn sgd_with_momentum_accumulates() {
        let config = OptimiserConfig { kind: OptimiserKind::Sgd, momentum: 0.5, ..Default::default() };
        let mut p = vec![0.0f32];
        let mut s = OptimiserState::new(1);
        update(&config, 1.0, &mut p, &[1.0], &mut s);
        update(&config, 1.0, &mut p, &[1.0], &mut s);
        assert_eq!(p[0], -(1.0 + 1.5));
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let mut g = vec![3.0f32, 4.0];
        assert_eq!(clip(&mut g, 1.0), 5.0);
        assert!((norm(&g) - 1.0).abs() < 1e-6);
        let mut h = vec![0.3f32, 0.4];
        clip(&mut h, 1.0);
        assert_eq!(h, vec![0.3, 0.4]);
    }
}
