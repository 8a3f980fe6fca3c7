//! The two interfaces every discretisation implements: a semi-discrete right-hand side and a time step.

/// A semi-discrete right-hand side `du/dt = F(u; ν)` for one sample.
///
/// The state is a flat slice of [`len`](SemiDiscrete::len) values in the sample's array layout (see the crate
/// docs). `Work` is the per-sample scratch space; one is needed per thread and none of the methods allocate.
pub trait SemiDiscrete: Sync {
    /// Per-sample scratch space.
    type Work: Send;
    /// Number of values in one sample's state.
    fn state_len(&self) -> usize;
    /// The viscosity ν the scheme was built with.
    fn nu(&self) -> f64;
    /// Allocates scratch space for one sample.
    fn work(&self) -> Self::Work;
    /// `out = F(u; ν)`.
    fn rhs(&self, u: &[f64], out: &mut [f64], w: &mut Self::Work);
    /// Jacobian-vector product: `out = ∂F/∂u · du + ∂F/∂ν · dnu`.
    fn rhs_jvp(&self, u: &[f64], du: &[f64], dnu: f64, out: &mut [f64], w: &mut Self::Work);
    /// Vector-Jacobian product: `out = (∂F/∂u)ᵀ g`; returns `(∂F/∂ν)ᵀ g`.
    fn rhs_vjp(&self, u: &[f64], g: &[f64], out: &mut [f64], w: &mut Self::Work) -> f64;
}

/// One time step `u ← S(u; ν, dt)` for one sample.
pub trait Stepper: Sync {
    /// Per-sample scratch space.
    type Work: Send;
    /// Number of values in one sample's state.
    fn state_len(&self) -> usize;
    /// The time step.
    fn dt(&self) -> f64;
    /// The order of accuracy of the time integrator.
    fn order(&self) -> usize;
    /// Allocates scratch space for one sample.
    fn work(&self) -> Self::Work;
    /// Advances `u` by one step in place.
    fn step(&self, u: &mut [f64], w: &mut Self::Work);
    /// Advances `u` by `n` steps in place. Schemes may override this to skip work between steps
    /// (a spectral scheme stays in Fourier space); the result equals `n` calls of [`step`](Stepper::step)
    /// up to round-off.
    fn advance(&self, u: &mut [f64], n: usize, w: &mut Self::Work) {
        for _ in 0..n {
            self.step(u, w);
        }
    }
    /// Tangent of one step at the state `u` (the state at the start of the step, unchanged):
    /// `du ← ∂S/∂u · du + ∂S/∂ν · dnu`.
    fn step_jvp(&self, u: &[f64], du: &mut [f64], dnu: f64, w: &mut Self::Work);
    /// Cotangent of one step at the state `u` (the state at the start of the step, unchanged):
    /// `g ← (∂S/∂u)ᵀ g`; returns `(∂S/∂ν)ᵀ g`.
    fn step_vjp(&self, u: &[f64], g: &mut [f64], w: &mut Self::Work) -> f64;
}

#[inline]
pub(crate) fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}
