//! The solver bridge: native f64 solver operations as burn ops whose backward step calls the solver's own
//! adjoint.
//!
//! Every op takes a batch `[batch, n]` of float32 or float64 values, converts it to f64 at the boundary, runs
//! the native solver on each sample in parallel (rayon; one scratch `Work` value per task, so the inner loops
//! allocate nothing beyond the op's buffers) and returns `[batch, m]` in the dtype of the input. Under autodiff
//! the op registers one backward step that receives the cotangent `g` of the output (`[batch, m]`) and returns
//! the cotangent of the input (`[batch, n]`), computed natively as well:
//!
//! | op | forward, per sample | backward, per sample | state kept for the backward step |
//! |---|---|---|---|
//! | [`rhs`] | `F(u; ν)` ([`SemiDiscrete::rhs`]) | `(∂F/∂u)ᵀ g` ([`SemiDiscrete::rhs_vjp`]) | `u` |
//! | [`rhs_each`] | `F_s(u)`, the scheme of each sample (its own parameter) | `(∂F_s/∂u)ᵀ g` | `u` |
//! | [`lstsq`] | `x = argmin ‖J x − f‖`, `[J f]` per row, Householder QR ([`dense_lstsq`]) | `J̄ = r zᵀ − f̄ xᵀ`, `f̄ = J z`, `z = (JᵀJ)⁻¹ x̄` ([`lstsq_vjp`]) | `J`, `f`, `x` |
//! | [`steps`] | `Sᵏ(u₀)`, k steps of a [`Stepper`] | `(∂Sᵏ/∂u₀)ᵀ g`, discrete adjoint through the k steps with checkpointing ([`gradient`]) | `u₀` |
//! | [`steps_each`] | `S_sᵏ(u₀)`, k steps of each sample's own stepper | as for [`steps`], per sample | `u₀` |
//! | [`spmv`] | `A x` | `Aᵀ g` (transpose stored once in [`SparseOperator`]) | nothing |
//! | [`linear_solve`] | `x = A⁻¹ b` (CG, GMRES or dense LU, [`LinearSystem`]) | `A⁻ᵀ g`, implicit adjoint of `A x − b = 0` ([`implicit_vjp`]) | nothing |
//! | [`least_squares`] | `x*(θ) = argmin ½‖r(x, θ)‖²` ([`levenberg_marquardt`]) | Gauss–Newton implicit adjoint ([`least_squares_vjp`]) | `θ`, `x*` |
//! | [`residuals`] | `r_p = ψ_p(F_p ω)` per row of each expert ([`Closure`]), from `[F ω]` | `F̄_p = (r̄_p a_p) ωᵀ`, `ω̄ = Σ_p F_pᵀ r̄_p a_p` | `F`, `ω` |
//! | [`experts`] | `ω* = argmin ½ Σ ψ_p(F_p ω)² + ½ρ²‖ω‖²` per expert ([`solve_expert`]) | exact implicit adjoint with the full Hessian ([`expert_vjp`]) | `F`, `ω*` |
//!
//! Conventions and limits:
//! - **Constants.** Everything except the tensor argument is a constant of the op: the viscosity ν of a scheme,
//!   the time step, the matrix, the tolerances. The ν-cotangents the solvers return are dropped.
//! - **Forward failures** (a linear solve or Levenberg–Marquardt that does not converge, a wrong shape, an
//!   unsupported dtype or backend) are returned as [`BridgeError`], naming the op and the first failing sample.
//!   Non-finite values are not an error in the explicit ops ([`rhs`], [`steps`], [`spmv`]): they propagate.
//! - **Backward failures** cannot be returned through burn's backward pass. A sample whose backward solve fails
//!   gets NaN in its whole input cotangent (the training engine's non-finite guard then skips the update) and
//!   the failure is recorded in the [`BridgeReport`] passed to the op, which the caller reads after
//!   `backward()`. Other samples of the batch keep their exact cotangents.
//! - **Backends.** The ops run on the CPU backend: `Device::flex()` computes the forward pass only,
//!   `Device::flex().autodiff()` (with or without gradient checkpointing) also registers the backward step.
//!   Tensors on any other backend are refused with [`BridgeError::Backend`]. The backward step is generic over
//!   the inner backend (a private `HostBackend` trait converts its float primitive to and from host f64 values),
//!   so another backend needs that conversion and one more `try_into_primitive` branch in the dispatcher.
//! - **First order only**: the returned gradients are not themselves differentiable (burn has first-order
//!   autodiff only).

use std::fmt;
use std::sync::{Arc, Mutex};

use ansatz_solvers::constrained::{Closure, ExpertOptions, ExpertReport, expert_vjp, solve_expert};
use ansatz_solvers::implicit::{self, LinearSolver, RootProblem, implicit_vjp};
use ansatz_solvers::integrate::{AdjointStrategy, TrajectoryLoss, gradient};
use ansatz_solvers::krylov::Tolerance;
use ansatz_solvers::linalg::{CsrMatrix, LstsqWork, lstsq as dense_lstsq, lstsq_vjp};
use ansatz_solvers::lm::{LeastSquares, LmOptions, least_squares_vjp, levenberg_marquardt};
use ansatz_solvers::scheme::{SemiDiscrete, Stepper};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Backend, BackendTypes, Flex};
use burn::prelude::*;
use burn::tensor::DType;
use ndarray::ArrayView2;
use rayon::prelude::*;

// --- errors and the backward report --------------------------------------------------------------------------------

/// Why a bridged op could not compute its forward pass.
#[derive(Clone, Debug, PartialEq)]
pub enum BridgeError {
    /// The tensor lives on a backend other than the CPU backend (flex, with or without autodiff).
    Backend {
        /// The op.
        op: &'static str,
    },
    /// The tensor's dtype is neither float32 nor float64.
    DType {
        /// The op.
        op: &'static str,
        /// The dtype found.
        dtype: DType,
    },
    /// An input has the wrong shape.
    Shape {
        /// The op.
        op: &'static str,
        /// Which input.
        what: &'static str,
        /// The shape the op needs.
        expected: Vec<usize>,
        /// The shape it got.
        got: Vec<usize>,
    },
    /// The op was configured with impossible arguments (a non-square system, an empty state, …).
    Config {
        /// The op.
        op: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Converting a tensor to or from host f64 values failed.
    Conversion {
        /// The op.
        op: &'static str,
        /// The conversion error.
        message: String,
    },
    /// The native solver failed on at least one sample of the batch.
    Solve {
        /// The op.
        op: &'static str,
        /// The first failing sample (row of the batch).
        sample: usize,
        /// How many samples failed.
        failed: usize,
        /// The solver's error for `sample`.
        message: String,
    },
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend { op } => write!(
                f,
                "{op}: bridged solver ops run on the CPU backend (flex, with or without autodiff); \
                 move the tensor to Device::flex() or Device::flex().autodiff() first"
            ),
            Self::DType { op, dtype } => write!(f, "{op}: dtype {dtype:?} is not supported (float32 or float64)"),
            Self::Shape { op, what, expected, got } => {
                write!(f, "{op}: {what}: expected shape {expected:?}, got {got:?}")
            }
            Self::Config { op, message } => write!(f, "{op}: {message}"),
            Self::Conversion { op, message } => write!(f, "{op}: tensor conversion failed: {message}"),
            Self::Solve { op, sample, failed, message } => {
                write!(f, "{op}: sample {sample} failed ({failed} failing sample(s) in the batch): {message}")
            }
        }
    }
}

impl std::error::Error for BridgeError {}

/// One failed backward computation of a bridged op. The cotangent of the affected sample (or of the whole batch
/// when `sample` is `None`) was set to NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct BackwardFailure {
    /// The op.
    pub op: &'static str,
    /// The failing sample (row of the batch); `None` when the whole batch failed (e.g. an unreadable cotangent).
    pub sample: Option<usize>,
    /// The solver's error.
    pub message: String,
}

impl fmt::Display for BackwardFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sample {
            Some(s) => write!(f, "{} backward, sample {s}: {}", self.op, self.message),
            None => write!(f, "{} backward, whole batch: {}", self.op, self.message),
        }
    }
}

/// A shared, thread-safe log of backward failures, filled by the backward steps of the ops it was passed to.
///
/// Clones share the same log. burn's backward pass cannot return errors, so a failed backward solve writes NaN
/// into its sample's cotangent and records a [`BackwardFailure`] here; read it with [`failures`](Self::failures)
/// or [`take`](Self::take) after `backward()`.
#[derive(Clone, Debug, Default)]
pub struct BridgeReport {
    failures: Arc<Mutex<Vec<BackwardFailure>>>,
}

impl BridgeReport {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// The failures recorded so far (oldest first).
    pub fn failures(&self) -> Vec<BackwardFailure> {
        self.lock().clone()
    }

    /// Removes and returns the failures recorded so far (oldest first).
    pub fn take(&self) -> Vec<BackwardFailure> {
        std::mem::take(&mut *self.lock())
    }

    /// Whether no failure has been recorded (since the last [`take`](Self::take)).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn record(&self, failure: BackwardFailure) {
        self.lock().push(failure);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BackwardFailure>> {
        // a panic while holding the lock cannot leave the vector half-written
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// --- the public ops ------------------------------------------------------------------------------------------------

/// The semi-discrete right-hand side `F(u; ν)` of every sample: `[batch, n] → [batch, n]`, `n =
/// scheme.state_len()`.
///
/// Backward: `ū = (∂F/∂u)ᵀ g` per sample ([`SemiDiscrete::rhs_vjp`]). ν is a constant of the op; its cotangent
/// is dropped. Errors: wrong `n`, dtype or backend.
pub fn rhs<S>(scheme: Arc<S>, u: Tensor<2>, report: &BridgeReport) -> Result<Tensor<2>, BridgeError>
where
    S: SemiDiscrete + Send + Sync + 'static,
{
    apply(Arc::new(RhsOp { scheme }), u, report)
}

/// [`rhs`] with one scheme per sample (row `s` uses `schemes[s]`, e.g. each with its own parameter): `[batch, n]
/// → [batch, n]`. Errors: `schemes.len() ≠ batch`, schemes of different sizes, wrong `n`, dtype or backend.
pub fn rhs_each<S>(schemes: Vec<Arc<S>>, u: Tensor<2>, report: &BridgeReport) -> Result<Tensor<2>, BridgeError>
where
    S: SemiDiscrete + Send + Sync + 'static,
{
    let [batch, _] = u.dims();
    if schemes.len() != batch {
        return Err(BridgeError::Shape {
            op: "rhs_each",
            what: "schemes (one per sample)",
            expected: vec![batch],
            got: vec![schemes.len()],
        });
    }
    let n = schemes.first().map_or(0, |s| s.state_len());
    if schemes.iter().any(|s| s.state_len() != n) {
        return Err(BridgeError::Config { op: "rhs_each", message: "the schemes have different state sizes".into() });
    }
    apply(Arc::new(RhsEachOp { schemes }), u, report)
}

/// Small dense least squares per sample: row `s` holds `J_s` (row-major `m × k`, `m ≥ k`) followed by `f_s`
/// (`m` values), and the output row is `x_s = argmin ‖J_s x − f_s‖₂`: `[batch, m·k + m] → [batch, k]`, by
/// Householder QR in f64 ([`dense_lstsq`], rank tolerance 1e-12 on the diagonal of R).
///
/// A rank-deficient or non-finite sample is not an error: its output row is NaN, for the caller to count and
/// leave out of its loss. Backward ([`lstsq_vjp`]): exact; a row whose output cotangent is zero gets a zero
/// cotangent (so left-out samples stay harmless); a failing backward row gets NaN and a [`BackwardFailure`].
pub fn lstsq(jf: Tensor<2>, m: usize, k: usize, report: &BridgeReport) -> Result<Tensor<2>, BridgeError> {
    if m < k || k == 0 {
        return Err(BridgeError::Config {
            op: "lstsq",
            message: format!("{m} × {k}: need at least as many rows as columns, and a column"),
        });
    }
    apply(Arc::new(LstsqOp { m, k }), jf, report)
}

/// The reports of the experts solved by one [`experts`] call, in batch order (read them after the forward pass).
#[derive(Clone, Default)]
pub struct ExpertLog(Arc<Mutex<Vec<ExpertReport>>>);

impl ExpertLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// The reports of the last forward pass (and clears them).
    pub fn take(&self) -> Vec<ExpertReport> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl fmt::Debug for ExpertLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExpertLog({} reports)", self.0.lock().map(|v| v.len()).unwrap_or(0))
    }
}

/// The expert layer of hard-constrained learning ([`ansatz_solvers::constrained`]): row `e` of `features` holds
/// expert `e`'s features `F` (`rows × K × n`, row-major, the same `rows · K` for every expert; pad with rows of
/// zero weight), and the output row is its basis weights `ω*_e` (`n` values), found by Levenberg–Marquardt in f64
/// from `omega0` (`n` values shared, or `batch · n`) with `opts`. The experts are solved in parallel.
///
/// Every expert's [`ExpertReport`] goes to `log` in batch order; an expert that did not converge is not an error
/// (its last iterate is returned, for the caller to count and report), a non-finite residual is. Backward: the
/// exact implicit adjoint ([`expert_vjp`], one dense `n × n` solve per expert); a zero cotangent gives a zero
/// cotangent; a singular Hessian gives NaN and a [`BackwardFailure`].
pub fn experts(
    closures: Vec<Arc<dyn Closure + Send + Sync>>,
    n: usize,
    features: Tensor<2>,
    omega0: &[f64],
    opts: ExpertOptions,
    log: &ExpertLog,
    report: &BridgeReport,
) -> Result<Tensor<2>, BridgeError> {
    let [batch, _] = features.dims();
    let config = |message: String| Err(BridgeError::Config { op: "experts", message });
    if closures.len() != batch {
        return config(format!("{} closures for {batch} experts", closures.len()));
    }
    if n == 0 {
        return config("no basis functions".into());
    }
    let width = closures.first().map(|c| c.rows() * c.features() * n).unwrap_or(0);
    if closures.iter().any(|c| c.rows() * c.features() * n != width) {
        return config("the experts' closures have different numbers of rows or features".into());
    }
    if omega0.len() != n && omega0.len() != batch * n {
        return Err(BridgeError::Shape {
            op: "experts",
            what: "initial guess (one of length n, or batch · n values)",
            expected: vec![batch, n],
            got: vec![omega0.len()],
        });
    }
    log.take();
    apply(Arc::new(ExpertOp { closures, n, width, omega0: omega0.to_vec(), opts, log: log.clone() }), features, report)
}

/// The residual rows of each expert's closure at given basis weights: row `e` of `input` holds `F` (`rows × K × n`,
/// as for [`experts`]) followed by `ω` (`n`), and the output row holds `r_p = ψ_p(F_p ω)`, `p < rows`. It is
/// the physics loss of hard-constrained training (with `ω` from [`experts`]) and of the soft-constrained baseline
/// (`n = 1`, `ω = 1`). Backward: exact, from the closures' gradients.
pub fn residuals(
    closures: Vec<Arc<dyn Closure + Send + Sync>>,
    n: usize,
    input: Tensor<2>,
    report: &BridgeReport,
) -> Result<Tensor<2>, BridgeError> {
    let [batch, _] = input.dims();
    let config = |message: String| Err(BridgeError::Config { op: "residuals", message });
    if closures.len() != batch {
        return config(format!("{} closures for {batch} experts", closures.len()));
    }
    let (rows, k) = closures.first().map(|c| (c.rows(), c.features())).unwrap_or((0, 0));
    if n == 0 || closures.iter().any(|c| c.rows() != rows || c.features() != k) {
        return config("no basis functions, or closures with different numbers of rows or features".into());
    }
    apply(Arc::new(ResidualOp { closures, n, rows, k }), input, report)
}

/// `n` time steps of every sample, `u₀ ↦ Sⁿ(u₀)`: `[batch, len] → [batch, len]`, `len = stepper.state_len()`.
///
/// The forward pass uses [`Stepper::advance`]. Backward: `ū₀ = (∂Sⁿ/∂u₀)ᵀ g`, the exact discrete adjoint of the
/// `n` steps, by [`gradient`] with the loss `Σ g · uₙ`: it re-runs the forward pass from `u₀` (the only state
/// kept), keeping the checkpoints `adjoint` asks for ([`Checkpointed`](ansatz_solvers::Checkpointed) or
/// [`StoreAll`](ansatz_solvers::StoreAll)), and reverses through the steps, samples in parallel. ν and `dt` are
/// constants of the op. `n = 0` is the identity. Errors: wrong `len`, dtype or backend.
pub fn steps<S>(
    stepper: Arc<S>,
    u0: Tensor<2>,
    n: usize,
    adjoint: Arc<dyn AdjointStrategy + Send + Sync>,
    report: &BridgeReport,
) -> Result<Tensor<2>, BridgeError>
where
    S: Stepper + Send + Sync + 'static,
{
    apply(Arc::new(StepsOp { stepper, n, adjoint }), u0, report)
}

/// [`steps`] with a stepper per sample: row `s` of `u0` advances `n` steps with `steppers[s]` (the samples of a
/// batch may differ in ν or forcing). Every stepper must have the same state length, and the batch must have one
/// row per stepper. Backward: the exact discrete adjoint of each sample's `n` steps, as for [`steps`].
pub fn steps_each<S>(
    steppers: Vec<Arc<S>>,
    u0: Tensor<2>,
    n: usize,
    adjoint: Arc<dyn AdjointStrategy + Send + Sync>,
    report: &BridgeReport,
) -> Result<Tensor<2>, BridgeError>
where
    S: Stepper + Send + Sync + 'static,
{
    let [batch, _] = u0.dims();
    let config = |message: String| Err(BridgeError::Config { op: "steps_each", message });
    if steppers.len() != batch {
        return config(format!("{} steppers for a batch of {batch} samples", steppers.len()));
    }
    let len = steppers.first().map_or(0, |s| s.state_len());
    if let Some(s) = steppers.iter().position(|s| s.state_len() != len) {
        return config(format!("stepper {s} has {} state values, stepper 0 has {len}", steppers[s].state_len()));
    }
    apply(Arc::new(StepsEachOp { steppers, len, n, adjoint }), u0, report)
}

/// A sparse matrix with its transpose, for [`spmv`]: the transpose is built once, so the backward product `Aᵀ g`
/// is a row-wise SpMV as well.
#[derive(Clone, Debug)]
pub struct SparseOperator {
    a: CsrMatrix,
    at: CsrMatrix,
}

impl SparseOperator {
    /// Stores `a` (`rows × cols`, any shape) and builds `aᵀ`.
    pub fn new(a: CsrMatrix) -> Self {
        let at = a.transpose();
        Self { a, at }
    }

    /// The matrix `A`.
    pub fn matrix(&self) -> &CsrMatrix {
        &self.a
    }

    /// Its transpose `Aᵀ`.
    pub fn transpose(&self) -> &CsrMatrix {
        &self.at
    }
}

/// The sparse matrix-vector product of every sample, `y = A x`: `[batch, cols] → [batch, rows]`.
///
/// Backward: `x̄ = Aᵀ g` per sample. Nothing is kept for the backward step beyond the operator. Errors: wrong
/// `cols`, an empty matrix, dtype or backend.
pub fn spmv(op: Arc<SparseOperator>, x: Tensor<2>, report: &BridgeReport) -> Result<Tensor<2>, BridgeError> {
    apply(Arc::new(SpmvOp { op }), x, report)
}

/// A square sparse system `A x = b` for [`linear_solve`]: the matrix (and its transpose, for the adjoint), the
/// Krylov method or dense LU, and the stopping rule of both the forward and the backward solves.
#[derive(Clone, Debug)]
pub struct LinearSystem {
    a: CsrMatrix,
    at: CsrMatrix,
    solver: LinearSolver,
    tol: Tolerance,
}

impl LinearSystem {
    /// The system with matrix `a` (square, non-empty), solved by `solver` ([`LinearSolver::Cg`] for symmetric
    /// positive definite `a`, [`LinearSolver::Gmres`] otherwise, [`LinearSolver::DenseLu`] for small systems) to
    /// `tol` (no default: it is required). Fails if `a` is not square or empty, or if CG is asked for and `a` is
    /// not symmetric (to `1e-12` relative to its largest entry).
    pub fn new(a: CsrMatrix, solver: LinearSolver, tol: Tolerance) -> Result<Self, BridgeError> {
        let op = "linear_solve";
        if a.nrows() != a.ncols() || a.nrows() == 0 {
            return Err(BridgeError::Config {
                op,
                message: format!("the matrix must be square and non-empty, got {} × {}", a.nrows(), a.ncols()),
            });
        }
        if solver == LinearSolver::Cg {
            let largest = a.parts().2.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let asymmetry = a.asymmetry();
            if asymmetry > 1e-12 * largest {
                return Err(BridgeError::Config {
                    op,
                    message: format!("CG needs a symmetric matrix (largest |A − Aᵀ| entry {asymmetry:.3e}); use GMRES"),
                });
            }
        }
        let at = a.transpose();
        Ok(Self { a, at, solver, tol })
    }

    /// The matrix `A`.
    pub fn matrix(&self) -> &CsrMatrix {
        &self.a
    }

    /// The method of the forward and backward solves.
    pub fn solver(&self) -> LinearSolver {
        self.solver
    }

    /// The stopping rule of the forward and backward solves.
    pub fn tolerance(&self) -> Tolerance {
        self.tol
    }

    /// Solves `A x = b` from `x = 0`.
    fn solve(&self, b: &[f64], x: &mut [f64]) -> Result<(), String> {
        let (value, _) = implicit::solve(&self.a, b, self.solver, self.tol).map_err(|e| e.to_string())?;
        x.copy_from_slice(&value);
        Ok(())
    }
}

/// The solution of a sparse linear system for every sample, `x = A⁻¹ b`: `[batch, n] → [batch, n]`.
///
/// Each row is solved from `x = 0` with the system's method and tolerance; a row that does not converge is an
/// error naming the sample. Backward: the implicit adjoint of the root problem `F(x, b) = A x − b = 0`
/// (`∂F/∂x = A`, `∂F/∂b = −I`) by [`implicit_vjp`]: `b̄ = −(−I)ᵀ A⁻ᵀ g = A⁻ᵀ g`, one transposed solve per sample
/// with the same method and tolerance (no forward state is needed: the map is linear). A backward solve that
/// fails gives NaN for its sample and a [`BackwardFailure`] in `report`.
pub fn linear_solve(system: Arc<LinearSystem>, b: Tensor<2>, report: &BridgeReport) -> Result<Tensor<2>, BridgeError> {
    apply(Arc::new(SolveOp { system }), b, report)
}

/// The least-squares solution of every sample, `θ ↦ x*(θ) = argmin_x ½‖r(x, θ)‖²`: `[batch, p] → [batch, n]`
/// (`p = problem.p()`, `n = problem.n()`).
///
/// One problem object serves all rows: [`LeastSquares`] receives θ with every call. Each row starts from `x0`,
/// either one guess of length `n` shared by all rows or `batch · n` values (row-major, one guess per row), and
/// runs [`levenberg_marquardt`] with `opts`; a row that fails is an error naming the sample. Backward: the
/// Gauss–Newton implicit adjoint ([`least_squares_vjp`]) at `(x*, θ)`, `θ̄ = −(∂r/∂θ)ᵀ J (JᵀJ)⁻¹ g` with `J =
/// ∂r/∂x`, CG to `tol`. It is exact when the residual vanishes at the solution and an approximation otherwise
/// (the terms it drops carry a factor r). θ and x* are kept for the backward step. A backward solve that fails
/// gives NaN for its sample and a [`BackwardFailure`] in `report`.
pub fn least_squares<P>(
    problem: Arc<P>,
    theta: Tensor<2>,
    x0: &[f64],
    opts: LmOptions,
    tol: Tolerance,
    report: &BridgeReport,
) -> Result<Tensor<2>, BridgeError>
where
    P: LeastSquares + Send + Sync + 'static,
{
    let [batch, _] = theta.dims();
    let n = problem.n();
    if x0.len() != n && x0.len() != batch * n {
        return Err(BridgeError::Shape {
            op: "least_squares",
            what: "initial guess (one of length n, or batch · n values)",
            expected: vec![batch, n],
            got: vec![x0.len()],
        });
    }
    apply(Arc::new(LeastSquaresOp { problem, x0: x0.to_vec(), opts, tol }), theta, report)
}

// --- the ops as host computations ----------------------------------------------------------------------------------

/// A failure of one sample: (row of the batch, message).
type SampleFailure = (usize, String);

/// A batched native computation: rows of `in_width` f64 values to rows of `out_width`, with its pullback.
trait BridgeOp: Send + Sync + 'static {
    /// The op's name in errors and reports.
    fn name(&self) -> &'static str;
    /// Values per input row.
    fn in_width(&self) -> usize;
    /// Values per output row.
    fn out_width(&self) -> usize;
    /// Whether the backward step needs the forward output (otherwise it receives an empty slice).
    fn keeps_output(&self) -> bool {
        false
    }
    /// `y = f(x)` row by row (`x`: `batch · in_width`, `y`: `batch · out_width`); returns the failing rows.
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure>;
    /// `gx = (∂f/∂x)ᵀ g` row by row (`g`: `batch · out_width`, `gx`: `batch · in_width`, `y` the forward output
    /// or empty); returns the failing rows, whose `gx` the caller overwrites with NaN.
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure>;
}

/// Runs `f(sample, out_row, work)` on every row of `out` (`width > 0` values each) in parallel, one scratch value
/// from `init` per rayon task; returns the failing rows in order.
fn for_each_sample<W, I, F>(out: &mut [f64], width: usize, init: I, f: F) -> Vec<SampleFailure>
where
    I: Fn() -> W + Sync + Send,
    F: Fn(usize, &mut [f64], &mut W) -> Result<(), String> + Sync + Send,
{
    out.par_chunks_mut(width)
        .enumerate()
        .map_init(init, |w, (s, out)| f(s, out, w).err().map(|e| (s, e)))
        .flatten_iter()
        .collect()
}

/// Row `s` of a row-major batch of rows of `width` values.
#[inline]
fn row(data: &[f64], s: usize, width: usize) -> &[f64] {
    &data[s * width..(s + 1) * width]
}

struct RhsOp<S> {
    scheme: Arc<S>,
}

impl<S: SemiDiscrete + Send + Sync + 'static> BridgeOp for RhsOp<S> {
    fn name(&self) -> &'static str {
        "rhs"
    }
    fn in_width(&self) -> usize {
        self.scheme.state_len()
    }
    fn out_width(&self) -> usize {
        self.scheme.state_len()
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let n = self.in_width();
        let scheme = &*self.scheme;
        for_each_sample(
            y,
            n,
            || scheme.work(),
            |s, out, w| {
                scheme.rhs(row(x, s, n), out, w);
                Ok(())
            },
        )
    }
    fn backward(&self, x: &[f64], _y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let n = self.in_width();
        let scheme = &*self.scheme;
        for_each_sample(
            gx,
            n,
            || scheme.work(),
            |s, out, w| {
                // the ν-cotangent is dropped: ν is a constant of the op
                let _dnu = scheme.rhs_vjp(row(x, s, n), row(g, s, n), out, w);
                Ok(())
            },
        )
    }
}

struct RhsEachOp<S> {
    schemes: Vec<Arc<S>>,
}

impl<S: SemiDiscrete + Send + Sync + 'static> BridgeOp for RhsEachOp<S> {
    fn name(&self) -> &'static str {
        "rhs_each"
    }
    fn in_width(&self) -> usize {
        self.schemes.first().map_or(0, |s| s.state_len())
    }
    fn out_width(&self) -> usize {
        self.in_width()
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let n = self.in_width();
        for_each_sample(
            y,
            n,
            || None,
            |s, out, w: &mut Option<S::Work>| {
                let scheme = &*self.schemes[s];
                scheme.rhs(row(x, s, n), out, w.get_or_insert_with(|| scheme.work()));
                Ok(())
            },
        )
    }
    fn backward(&self, x: &[f64], _y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let n = self.in_width();
        for_each_sample(
            gx,
            n,
            || None,
            |s, out, w: &mut Option<S::Work>| {
                let scheme = &*self.schemes[s];
                // the parameter cotangent is dropped: each scheme's parameter is a constant of the op
                let _ = scheme.rhs_vjp(row(x, s, n), row(g, s, n), out, w.get_or_insert_with(|| scheme.work()));
                Ok(())
            },
        )
    }
}

struct LstsqOp {
    m: usize,
    k: usize,
}

impl BridgeOp for LstsqOp {
    fn name(&self) -> &'static str {
        "lstsq"
    }
    fn in_width(&self) -> usize {
        self.m * self.k + self.m
    }
    fn out_width(&self) -> usize {
        self.k
    }
    fn keeps_output(&self) -> bool {
        true
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let (m, k, width) = (self.m, self.k, self.in_width());
        for_each_sample(
            y,
            k,
            || LstsqWork::new(m, k),
            |s, out, w| {
                let r = row(x, s, width);
                if dense_lstsq(&r[..m * k], &r[m * k..], out, 1e-12, w).is_err() {
                    out.fill(f64::NAN);
                }
                Ok(())
            },
        )
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let (m, k, width) = (self.m, self.k, self.in_width());
        for_each_sample(
            gx,
            width,
            || LstsqWork::new(m, k),
            |s, out, w| {
                let gs = row(g, s, k);
                if gs.iter().all(|v| *v == 0.0) {
                    out.fill(0.0);
                    return Ok(());
                }
                let r = row(x, s, width);
                let (jb, fb) = out.split_at_mut(m * k);
                lstsq_vjp(&r[..m * k], &r[m * k..], row(y, s, k), gs, jb, fb, 1e-12, w).map_err(|e| e.to_string())
            },
        )
    }
}

struct ExpertOp {
    closures: Vec<Arc<dyn Closure + Send + Sync>>,
    n: usize,
    width: usize,
    omega0: Vec<f64>,
    opts: ExpertOptions,
    log: ExpertLog,
}

impl BridgeOp for ExpertOp {
    fn name(&self) -> &'static str {
        "experts"
    }
    fn in_width(&self) -> usize {
        self.width
    }
    fn out_width(&self) -> usize {
        self.n
    }
    fn keeps_output(&self) -> bool {
        true
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let n = self.n;
        let reports = Mutex::new(vec![None; self.closures.len()]);
        let failures = for_each_sample(
            y,
            n,
            || (),
            |e, out, _| {
                let start = if self.omega0.len() == n { &self.omega0[..] } else { row(&self.omega0, e, n) };
                out.copy_from_slice(start);
                let r = solve_expert(self.closures[e].as_ref(), row(x, e, self.width), n, out, self.opts)
                    .map_err(|err| err.to_string())?;
                reports.lock().unwrap_or_else(|p| p.into_inner())[e] = Some(r);
                Ok(())
            },
        );
        let reports = reports.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.log.0.lock().unwrap_or_else(|p| p.into_inner()) = reports.into_iter().flatten().collect();
        failures
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let n = self.n;
        for_each_sample(
            gx,
            self.width,
            || (),
            |e, out, _| {
                let ge = row(g, e, n);
                if ge.iter().all(|v| *v == 0.0) {
                    out.fill(0.0);
                    return Ok(());
                }
                expert_vjp(self.closures[e].as_ref(), row(x, e, self.width), n, row(y, e, n), self.opts.ridge, ge, out)
                    .map_err(|err| err.to_string())
            },
        )
    }
}

struct ResidualOp {
    closures: Vec<Arc<dyn Closure + Send + Sync>>,
    n: usize,
    rows: usize,
    k: usize,
}

impl BridgeOp for ResidualOp {
    fn name(&self) -> &'static str {
        "residuals"
    }
    fn in_width(&self) -> usize {
        self.rows * self.k * self.n + self.n
    }
    fn out_width(&self) -> usize {
        self.rows
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let (n, k, width) = (self.n, self.k, self.in_width());
        for_each_sample(
            y,
            self.rows,
            || (vec![0.0; k], vec![0.0; k]),
            |e, out, (z, a)| {
                let (f, omega) = row(x, e, width).split_at(width - n);
                for (p, r) in out.iter_mut().enumerate() {
                    for (kk, zk) in z.iter_mut().enumerate() {
                        *zk = f[(p * k + kk) * n..(p * k + kk + 1) * n].iter().zip(omega).map(|(u, v)| u * v).sum();
                    }
                    *r = self.closures[e].residual(p, z, a, None);
                }
                Ok(())
            },
        )
    }
    fn backward(&self, x: &[f64], _: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let (n, k, width) = (self.n, self.k, self.in_width());
        for_each_sample(
            gx,
            width,
            || (vec![0.0; k], vec![0.0; k]),
            |e, out, (z, a)| {
                let (f, omega) = row(x, e, width).split_at(width - n);
                let ge = row(g, e, self.rows);
                let (fbar, wbar) = out.split_at_mut(width - n);
                wbar.fill(0.0);
                for p in 0..self.rows {
                    for (kk, zk) in z.iter_mut().enumerate() {
                        *zk = f[(p * k + kk) * n..(p * k + kk + 1) * n].iter().zip(omega).map(|(u, v)| u * v).sum();
                    }
                    self.closures[e].residual(p, z, a, None);
                    for kk in 0..k {
                        let zbar = ge[p] * a[kk];
                        let fk = &f[(p * k + kk) * n..(p * k + kk + 1) * n];
                        for (i, fb) in fbar[(p * k + kk) * n..(p * k + kk + 1) * n].iter_mut().enumerate() {
                            *fb = zbar * omega[i];
                            wbar[i] += zbar * fk[i];
                        }
                    }
                }
                Ok(())
            },
        )
    }
}

struct StepsOp<S> {
    stepper: Arc<S>,
    n: usize,
    adjoint: Arc<dyn AdjointStrategy + Send + Sync>,
}

/// The trajectory loss `Σ_s g_s · u_s(T)` at the last step `T` only: its gradient with respect to `u₀` is the
/// cotangent `(∂S^T/∂u₀)ᵀ g` of the op.
struct InjectCotangent<'a> {
    g: &'a [f64],
    width: usize,
    last: usize,
}

impl TrajectoryLoss for InjectCotangent<'_> {
    fn term(&self, sample: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64 {
        if step != self.last {
            return 0.0;
        }
        let g = row(self.g, sample, self.width);
        let mut value = 0.0;
        for ((acc, gi), ui) in grad.iter_mut().zip(g).zip(u) {
            *acc += gi;
            value += gi * ui;
        }
        value
    }
}

impl<S: Stepper + Send + Sync + 'static> BridgeOp for StepsOp<S> {
    fn name(&self) -> &'static str {
        "steps"
    }
    fn in_width(&self) -> usize {
        self.stepper.state_len()
    }
    fn out_width(&self) -> usize {
        self.stepper.state_len()
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let width = self.in_width();
        let stepper = &*self.stepper;
        let n = self.n;
        for_each_sample(
            y,
            width,
            || stepper.work(),
            |s, out, w| {
                out.copy_from_slice(row(x, s, width));
                stepper.advance(out, n, w);
                Ok(())
            },
        )
    }
    fn backward(&self, x: &[f64], _y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let width = self.in_width();
        let batch = gx.len() / width;
        if self.n == 0 {
            gx.copy_from_slice(g);
            return Vec::new();
        }
        let whole_batch =
            |message: String| -> Vec<SampleFailure> { (0..batch).map(|s| (s, message.clone())).collect() };
        let u0 = match ArrayView2::from_shape((batch, width), x) {
            Ok(v) => v,
            Err(e) => return whole_batch(e.to_string()),
        };
        let loss = InjectCotangent { g, width, last: self.n };
        match gradient(&*self.stepper, u0, self.n, &loss, &*self.adjoint) {
            Ok(result) => {
                for (o, v) in gx.iter_mut().zip(result.du0.iter()) {
                    *o = *v;
                }
                Vec::new()
            }
            Err(e) => whole_batch(e.to_string()),
        }
    }
}

struct StepsEachOp<S> {
    steppers: Vec<Arc<S>>,
    len: usize,
    n: usize,
    adjoint: Arc<dyn AdjointStrategy + Send + Sync>,
}

impl<S: Stepper + Send + Sync + 'static> BridgeOp for StepsEachOp<S> {
    fn name(&self) -> &'static str {
        "steps_each"
    }
    fn in_width(&self) -> usize {
        self.len
    }
    fn out_width(&self) -> usize {
        self.len
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let width = self.len;
        let n = self.n;
        for_each_sample(
            y,
            width,
            || (),
            |s, out, _| {
                let stepper = &*self.steppers[s];
                out.copy_from_slice(row(x, s, width));
                stepper.advance(out, n, &mut stepper.work());
                Ok(())
            },
        )
    }
    fn backward(&self, x: &[f64], _y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let width = self.len;
        if self.n == 0 {
            gx.copy_from_slice(g);
            return Vec::new();
        }
        for_each_sample(
            gx,
            width,
            || (),
            |s, out, _| {
                let u0 = ArrayView2::from_shape((1, width), row(x, s, width)).map_err(|e| e.to_string())?;
                let loss = InjectCotangent { g: row(g, s, width), width, last: self.n };
                let result =
                    gradient(&*self.steppers[s], u0, self.n, &loss, &*self.adjoint).map_err(|e| e.to_string())?;
                out.copy_from_slice(result.du0.as_slice().ok_or("non-contiguous cotangent")?);
                Ok(())
            },
        )
    }
}

struct SpmvOp {
    op: Arc<SparseOperator>,
}

impl BridgeOp for SpmvOp {
    fn name(&self) -> &'static str {
        "spmv"
    }
    fn in_width(&self) -> usize {
        self.op.a.ncols()
    }
    fn out_width(&self) -> usize {
        self.op.a.nrows()
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let (a, cols) = (&self.op.a, self.in_width());
        for_each_sample(
            y,
            self.out_width(),
            || (),
            |s, out, _| {
                a.matvec(row(x, s, cols), out);
                Ok(())
            },
        )
    }
    fn backward(&self, _x: &[f64], _y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let (at, rows) = (&self.op.at, self.out_width());
        for_each_sample(
            gx,
            self.in_width(),
            || (),
            |s, out, _| {
                at.matvec(row(g, s, rows), out);
                Ok(())
            },
        )
    }
}

struct SolveOp {
    system: Arc<LinearSystem>,
}

/// `F(x, b) = A x − b`: `∂F/∂x = A`, `∂F/∂b = −I`.
struct LinearRoot<'a> {
    a: &'a CsrMatrix,
    at: &'a CsrMatrix,
}

impl RootProblem for LinearRoot<'_> {
    fn n(&self) -> usize {
        self.a.nrows()
    }
    fn p(&self) -> usize {
        self.a.nrows()
    }
    fn jac_x(&self, v: &[f64], out: &mut [f64]) {
        self.a.matvec(v, out);
    }
    fn jac_x_t(&self, v: &[f64], out: &mut [f64]) {
        self.at.matvec(v, out);
    }
    fn jac_theta(&self, t: &[f64], out: &mut [f64]) {
        for (o, ti) in out.iter_mut().zip(t) {
            *o = -ti;
        }
    }
    fn jac_theta_t(&self, u: &[f64], out: &mut [f64]) {
        for (o, ui) in out.iter_mut().zip(u) {
            *o = -ui;
        }
    }
}

impl BridgeOp for SolveOp {
    fn name(&self) -> &'static str {
        "linear_solve"
    }
    fn in_width(&self) -> usize {
        self.system.a.nrows()
    }
    fn out_width(&self) -> usize {
        self.system.a.nrows()
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let (system, n) = (&*self.system, self.in_width());
        for_each_sample(y, n, || (), |s, out, _| system.solve(row(x, s, n), out))
    }
    fn backward(&self, _x: &[f64], _y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let (system, n) = (&*self.system, self.in_width());
        let root = LinearRoot { a: &system.a, at: &system.at };
        for_each_sample(
            gx,
            n,
            || (),
            |s, out, _| {
                let v = implicit_vjp(&root, row(g, s, n), system.solver, system.tol).map_err(|e| e.to_string())?;
                out.copy_from_slice(&v.value);
                Ok(())
            },
        )
    }
}

struct LeastSquaresOp<P> {
    problem: Arc<P>,
    /// One shared guess of length n, or one per row.
    x0: Vec<f64>,
    opts: LmOptions,
    tol: Tolerance,
}

impl<P: LeastSquares + Send + Sync + 'static> BridgeOp for LeastSquaresOp<P> {
    fn name(&self) -> &'static str {
        "least_squares"
    }
    fn in_width(&self) -> usize {
        self.problem.p()
    }
    fn out_width(&self) -> usize {
        self.problem.n()
    }
    fn keeps_output(&self) -> bool {
        true
    }
    fn forward(&self, x: &[f64], y: &mut [f64]) -> Vec<SampleFailure> {
        let (problem, p, n) = (&*self.problem, self.in_width(), self.out_width());
        let shared = self.x0.len() == n;
        for_each_sample(
            y,
            n,
            || (),
            |s, out, _| {
                out.copy_from_slice(if shared { &self.x0[..] } else { row(&self.x0, s, n) });
                levenberg_marquardt(problem, out, row(x, s, p), self.opts).map(|_| ()).map_err(|e| e.to_string())
            },
        )
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], gx: &mut [f64]) -> Vec<SampleFailure> {
        let (problem, p, n) = (&*self.problem, self.in_width(), self.out_width());
        for_each_sample(
            gx,
            p,
            || (),
            |s, out, _| {
                let v = least_squares_vjp(problem, row(y, s, n), row(x, s, p), row(g, s, n), self.tol)
                    .map_err(|e| e.to_string())?;
                out.copy_from_slice(&v.value);
                Ok(())
            },
        )
    }
}

// --- burn plumbing -------------------------------------------------------------------------------------------------

/// A backend whose float primitives can be read into and built from host f64 values; the backward step of the
/// bridge is generic over it.
trait HostBackend: Backend {
    /// The values of a float tensor, row-major, as f64.
    fn to_host(tensor: Self::FloatTensorPrimitive) -> Result<Vec<f64>, String>;
    /// A `[rows, cols]` float tensor of `dtype` (float32 or float64) from row-major f64 values.
    fn from_host(values: Vec<f64>, shape: [usize; 2], dtype: DType) -> Self::FloatTensorPrimitive;
}

impl HostBackend for Flex {
    fn to_host(tensor: FlexTensor) -> Result<Vec<f64>, String> {
        // `into_data` copies a strided or shared tensor into a contiguous buffer first
        tensor.into_data().try_into_vec_as::<f64>().map_err(|e| e.to_string())
    }

    fn from_host(values: Vec<f64>, shape: [usize; 2], dtype: DType) -> FlexTensor {
        let data = TensorData::new(values, shape);
        FlexTensor::from_data(if dtype == DType::F64 { data } else { data.convert_dtype(dtype) })
    }
}

/// What the backward step keeps: the op, its f64 input (and output when the op needs it) and where to report.
#[derive(Clone)]
struct Saved {
    op: Arc<dyn BridgeOp>,
    input: Arc<Vec<f64>>,
    /// Empty unless [`BridgeOp::keeps_output`].
    output: Arc<Vec<f64>>,
    batch: usize,
    dtype: DType,
    report: BridgeReport,
}

impl fmt::Debug for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saved")
            .field("op", &self.op.name())
            .field("batch", &self.batch)
            .field("in_width", &self.op.in_width())
            .field("out_width", &self.op.out_width())
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl Saved {
    /// The cotangent of the input for the cotangent `grad` of the output; failed samples get NaN and a report.
    fn pull<B: HostBackend>(&self, grad: B::FloatTensorPrimitive) -> B::FloatTensorPrimitive {
        let (name, win, wout) = (self.op.name(), self.op.in_width(), self.op.out_width());
        let mut gx = vec![0.0; self.batch * win];
        let whole_batch = |gx: &mut Vec<f64>, message: String| {
            gx.fill(f64::NAN);
            self.report.record(BackwardFailure { op: name, sample: None, message });
        };
        match B::to_host(grad) {
            Ok(g) if g.len() == self.batch * wout => {
                for (sample, message) in self.op.backward(&self.input, &self.output, &g, &mut gx) {
                    gx[sample * win..(sample + 1) * win].fill(f64::NAN);
                    self.report.record(BackwardFailure { op: name, sample: Some(sample), message });
                }
            }
            Ok(g) => whole_batch(
                &mut gx,
                format!("the output cotangent has {} values, expected {} × {wout}", g.len(), self.batch),
            ),
            Err(e) => whole_batch(&mut gx, format!("cannot read the output cotangent: {e}")),
        }
        B::from_host(gx, [self.batch, win], self.dtype)
    }
}

/// The backward step of every bridged op; all it needs is in its [`Saved`] state.
#[derive(Debug)]
struct BridgeBackward;

impl<B: HostBackend> Backward<B, 1> for BridgeBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let saved = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| saved.pull::<B>(g));
    }
}

type AutodiffPrimitive<B> = <Autodiff<B> as BackendTypes>::FloatTensorPrimitive;

/// Checks the input, then runs the op on the backend the tensor lives on.
fn apply(op: Arc<dyn BridgeOp>, x: Tensor<2>, report: &BridgeReport) -> Result<Tensor<2>, BridgeError> {
    let name = op.name();
    let [batch, width] = x.dims();
    if op.in_width() == 0 || op.out_width() == 0 {
        return Err(BridgeError::Config {
            op: name,
            message: format!("empty rows ({} inputs, {} outputs per sample)", op.in_width(), op.out_width()),
        });
    }
    if width != op.in_width() {
        return Err(BridgeError::Shape {
            op: name,
            what: "input",
            expected: vec![batch, op.in_width()],
            got: vec![batch, width],
        });
    }
    let dtype = x.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) {
        return Err(BridgeError::DType { op: name, dtype });
    }
    if let Ok(t) = x.clone().try_into_primitive::<Autodiff<Flex>>() {
        let out = apply_autodiff::<Flex>(op, t, batch, dtype, report)?;
        return Ok(Tensor::from_primitive::<Autodiff<Flex>>(out));
    }
    // the same primitive under an autodiff device with gradient checkpointing (the op is compute-bound: its
    // state is kept, never recomputed)
    if let Ok(t) = x.clone().try_into_primitive::<Autodiff<Flex, BalancedCheckpointing>>() {
        let out = apply_autodiff::<Flex>(op, t, batch, dtype, report)?;
        return Ok(Tensor::from_primitive::<Autodiff<Flex, BalancedCheckpointing>>(out));
    }
    if let Ok(t) = x.try_into_primitive::<Flex>() {
        let input = host_input::<Flex>(name, t)?;
        let output = run_forward(op.as_ref(), &input, batch)?;
        return Ok(Tensor::from_primitive::<Flex>(Flex::from_host(output, [batch, op.out_width()], dtype)));
    }
    Err(BridgeError::Backend { op: name })
}

/// The forward pass under autodiff: registers [`BridgeBackward`] when the input is tracked.
fn apply_autodiff<B: HostBackend>(
    op: Arc<dyn BridgeOp>,
    t: AutodiffPrimitive<B>,
    batch: usize,
    dtype: DType,
    report: &BridgeReport,
) -> Result<AutodiffPrimitive<B>, BridgeError> {
    let out_shape = [batch, op.out_width()];
    // the guard keeps the input node alive until the output step is registered
    let (primitive, node) = t.into_parts();
    let prep = <BridgeBackward as Backward<B, 1>>::prepare::<NoCheckpointing>(BridgeBackward, [node]);
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let input = host_input::<B>(op.name(), primitive)?;
            let output = run_forward(op.as_ref(), &input, batch)?;
            let kept = if op.keeps_output() { output.clone() } else { Vec::new() };
            let out = B::from_host(output, out_shape, dtype);
            let state =
                Saved { op, input: Arc::new(input), output: Arc::new(kept), batch, dtype, report: report.clone() };
            Ok(prep.finish(state, out))
        }
        OpsKind::UnTracked(prep) => {
            let input = host_input::<B>(op.name(), primitive)?;
            let output = run_forward(op.as_ref(), &input, batch)?;
            Ok(prep.finish(B::from_host(output, out_shape, dtype)))
        }
    }
}

fn host_input<B: HostBackend>(op: &'static str, t: B::FloatTensorPrimitive) -> Result<Vec<f64>, BridgeError> {
    B::to_host(t).map_err(|message| BridgeError::Conversion { op, message })
}

/// Runs the forward pass; the first failing sample becomes the error.
fn run_forward(op: &dyn BridgeOp, input: &[f64], batch: usize) -> Result<Vec<f64>, BridgeError> {
    let mut output = vec![0.0; batch * op.out_width()];
    let failures = op.forward(input, &mut output);
    match failures.first() {
        None => Ok(output),
        Some((sample, message)) => {
            Err(BridgeError::Solve { op: op.name(), sample: *sample, failed: failures.len(), message: message.clone() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ansatz_solvers::integrate::{Checkpointed, StoreAll};
    use ansatz_solvers::rk::ExplicitRk;
    use ansatz_solvers::spectral::{SpectralBurgers1d, SpectralRhs};
    use burn::module::{Module, Param};
    use burn::optim::{AdamConfig, GradientsParams};
    use std::f64::consts::TAU;

    /// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded generator for test data.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn tensor(values: Vec<f64>, shape: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::<2>::from_data(TensorData::new(values, shape), (device, DType::F64))
    }

    fn values(t: Tensor<2>) -> Vec<f64> {
        t.into_data().try_into_vec_as::<f64>().expect("float values")
    }

    /// Smooth periodic rows `c₀ + c₁ sin x + c₂ cos 2x + c₃ sin 3x`, coefficients uniform in ±`amplitude`.
    fn smooth_rows(rng: &mut SplitMix64, batch: usize, n: usize, amplitude: f64) -> Vec<f64> {
        let mut out = Vec::with_capacity(batch * n);
        for _ in 0..batch {
            let c: Vec<f64> = (0..4).map(|_| rng.uniform(-amplitude, amplitude)).collect();
            for i in 0..n {
                let x = TAU * i as f64 / n as f64;
                out.push(c[0] + c[1] * x.sin() + c[2] * (2.0 * x).cos() + c[3] * (3.0 * x).sin());
            }
        }
        out
    }

    type Op<'a> = &'a dyn Fn(Tensor<2>) -> Result<Tensor<2>, BridgeError>;

    /// Checks the autodiff gradient of `L(x) = Σ w ⊙ tanh(op(2x))` (random `w`) against central differences
    /// (h = 1e-6, computed with the forward-only path on `Device::flex()`) at `entries` random entries of `x`.
    fn check_gradient(name: &str, op: Op<'_>, x: &[f64], shape: [usize; 2], out_width: usize, seed: u64) {
        let entries = 6;
        let mut rng = SplitMix64(seed);
        let w: Vec<f64> = (0..shape[0] * out_width).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let loss = |x: Tensor<2>, device: &Device| -> Tensor<1> {
            let y = op(x.mul_scalar(2.0)).expect("forward pass");
            (y.tanh() * tensor(w.clone(), [shape[0], out_width], device)).sum()
        };
        let ad = Device::flex().autodiff();
        let xt = tensor(x.to_vec(), shape, &ad).require_grad();
        let grads = loss(xt.clone(), &ad).backward();
        let g = values(xt.grad(&grads).expect("a gradient for the input"));
        assert_eq!(g.len(), x.len());
        assert!(g.iter().all(|v| v.is_finite()), "{name}: non-finite gradient");
        let scale = g.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "{name}: gradient too small to test ({scale:e})");
        let plain = Device::flex();
        let h = 1e-6;
        for _ in 0..entries {
            let i = (rng.next_u64() % x.len() as u64) as usize;
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[i] += h;
            xm[i] -= h;
            let lp = loss(tensor(xp, shape, &plain), &plain).into_scalar::<f64>();
            let lm = loss(tensor(xm, shape, &plain), &plain).into_scalar::<f64>();
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (g[i] - fd).abs() <= 1e-6 * scale,
                "{name}: entry {i}: autodiff {} vs central difference {fd} (scale {scale:e})",
                g[i]
            );
        }
    }

    fn burgers_rhs(n: usize) -> SpectralRhs<SpectralBurgers1d> {
        SpectralRhs::new(SpectralBurgers1d::new(n, TAU).expect("grid"), 0.1).expect("viscosity")
    }

    /// `tridiag(lower, diag, upper)` of size n.
    fn tridiagonal(n: usize, lower: f64, diag: f64, upper: f64) -> CsrMatrix {
        let mut t = Vec::new();
        for i in 0..n {
            t.push((i, i, diag));
            if i > 0 {
                t.push((i, i - 1, lower));
            }
            if i + 1 < n {
                t.push((i, i + 1, upper));
            }
        }
        CsrMatrix::from_triplets(n, n, &t).expect("valid triplets")
    }

    #[test]
    fn rhs_gradient_matches_finite_differences() {
        let n = 16;
        let scheme = Arc::new(burgers_rhs(n));
        let x = smooth_rows(&mut SplitMix64(1), 2, n, 0.3);
        let report = BridgeReport::new();
        check_gradient("rhs", &|u| rhs(scheme.clone(), u, &report), &x, [2, n], n, 11);
        assert!(report.is_empty(), "{:?}", report.failures());
    }

    #[test]
    fn rhs_each_uses_each_samples_scheme_and_its_gradient_matches_finite_differences() {
        use ansatz_solvers::rom::BurgersSource1d;
        let n = 12;
        let schemes: Vec<Arc<BurgersSource1d>> =
            [0.015, 0.03].iter().map(|&mu| Arc::new(BurgersSource1d::new(n, 100.0, 0.02, mu).unwrap())).collect();
        let x: Vec<f64> = smooth_rows(&mut SplitMix64(5), 2, n, 0.3).iter().map(|v| v + 1.5).collect();
        let report = BridgeReport::new();
        // each row equals the scheme's own right-hand side
        let y = values(rhs_each(schemes.clone(), tensor(x.clone(), [2, n], &Device::flex()), &report).unwrap());
        for (s, scheme) in schemes.iter().enumerate() {
            let mut f = vec![0.0; n];
            scheme.rhs(&x[s * n..(s + 1) * n], &mut f, &mut ());
            assert_eq!(&y[s * n..(s + 1) * n], &f[..]);
        }
        check_gradient("rhs_each", &|u| rhs_each(schemes.clone(), u.add_scalar(-1.5), &report), &x, [2, n], n, 15);
        assert!(report.is_empty());
        assert!(matches!(
            rhs_each(schemes[..1].to_vec(), tensor(x, [2, n], &Device::flex()), &report),
            Err(BridgeError::Shape { .. })
        ));
    }

    #[test]
    fn lstsq_solves_each_row_and_its_gradient_matches_finite_differences() {
        let (m, k, batch) = (7, 3, 3);
        let mut rng = SplitMix64(6);
        let x: Vec<f64> = (0..batch * (m * k + m)).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let report = BridgeReport::new();
        check_gradient("lstsq", &|jf| lstsq(jf, m, k, &report), &x, [batch, m * k + m], k, 16);
        assert!(report.is_empty());
        // a rank-deficient row gives NaN and leaves the others alone; a zero cotangent passes through it as zero
        let mut bad = x.clone();
        for r in 0..m {
            bad[r * k + 1] = 2.0 * bad[r * k];
        }
        let ad = Device::flex().autodiff();
        let jf = tensor(bad, [batch, m * k + m], &ad).require_grad();
        let out = lstsq(jf.clone(), m, k, &report).unwrap();
        let v = values(out.clone().inner());
        assert!(v[..k].iter().all(|x| x.is_nan()) && v[k..].iter().all(|x| x.is_finite()), "{v:?}");
        let rows = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 2], [2]), &ad);
        let grads = out.select(0, rows).sum().backward();
        let g = values(jf.grad(&grads).unwrap());
        let width = m * k + m;
        assert!(g[..width].iter().all(|v| *v == 0.0) && g[width..].iter().all(|v| v.is_finite()));
        assert!(report.is_empty());
    }

    /// A diffusion–sorption expert of `rows` rows (every kind) with a per-expert initial value.
    fn sorption_closure(rows: usize, initial: f64) -> Arc<dyn Closure + Send + Sync> {
        use ansatz_solvers::constrained::{SorptionClosure, SorptionRow};
        let kinds: Vec<SorptionRow> = (0..rows)
            .map(|p| match p % 4 {
                0 => SorptionRow::Initial,
                1 => SorptionRow::Inflow,
                2 => SorptionRow::Outflow,
                _ => SorptionRow::Pde,
            })
            .collect();
        let targets = kinds.iter().map(|k| if *k == SorptionRow::Inflow { 1.0 } else { initial }).collect();
        Arc::new(SorptionClosure {
            constants: ansatz_solvers::sorption::SorptionConstants::pdebench(),
            time_scale: 500.0,
            kinds,
            weights: vec![1.0; rows],
            targets,
        })
    }

    #[test]
    fn experts_solve_each_row_report_and_their_gradient_matches_finite_differences() {
        let (rows, n, batch) = (16, 3, 2);
        let closures = vec![sorption_closure(rows, 0.1), sorption_closure(rows, 0.15)];
        let mut rng = SplitMix64(21);
        // features (u, u_τ or u_x, u_xx): positive basis values
        let x: Vec<f64> = (0..batch * rows * 3 * n)
            .map(|i| if (i / n) % 3 == 0 { rng.uniform(0.3, 0.6) } else { rng.uniform(-1.0, 1.0) })
            .collect();
        let opts = ExpertOptions { gtol: 1e-13, ftol: 0.0, max_iter: 200, ridge: 1e-4 };
        let (log, report) = (ExpertLog::new(), BridgeReport::new());
        let op = |f: Tensor<2>| experts(closures.clone(), n, f, &[0.5; 3], opts, &log, &report);
        // each row is the solver's own solution, and every expert reports
        let y = values(op(tensor(x.clone(), [batch, rows * 3 * n], &Device::flex())).unwrap());
        let reports = log.take();
        assert_eq!(reports.len(), batch);
        for (e, c) in closures.iter().enumerate() {
            let mut omega = vec![0.5; n];
            let r =
                solve_expert(c.as_ref(), &x[e * rows * 3 * n..(e + 1) * rows * 3 * n], n, &mut omega, opts).unwrap();
            assert_eq!(&y[e * n..(e + 1) * n], &omega[..]);
            assert_eq!(reports[e], r);
        }
        check_gradient("experts", &op, &x, [batch, rows * 3 * n], n, 22);
        assert!(report.is_empty(), "{:?}", report.failures());
        // the residual rows at the solution, through their own op: the values equal the closures', and the
        // gradient with respect to features and weights matches central differences
        let with_omega: Vec<f64> = (0..batch)
            .flat_map(|e| x[e * rows * 3 * n..(e + 1) * rows * 3 * n].iter().chain(&y[e * n..(e + 1) * n]).copied())
            .collect();
        let width = rows * 3 * n + n;
        let res = |fw: Tensor<2>| residuals(closures.clone(), n, fw, &report);
        let r = values(res(tensor(with_omega.clone(), [batch, width], &Device::flex())).unwrap());
        let mut grad = vec![0.0; 3];
        let z: Vec<f64> = (0..3).map(|k| (0..n).map(|i| x[k * n + i] * y[i]).sum()).collect();
        assert_eq!(r[0], closures[0].residual(0, &z, &mut grad, None));
        check_gradient("residuals", &res, &with_omega, [batch, width], rows, 23);
        // wrong counts are refused
        let bad = experts(
            closures[..1].to_vec(),
            n,
            tensor(x, [batch, rows * 3 * n], &Device::flex()),
            &[0.5],
            opts,
            &log,
            &report,
        );
        assert!(matches!(bad, Err(BridgeError::Config { .. })));
    }

    #[test]
    fn steps_gradient_matches_finite_differences_with_and_without_checkpoints() {
        let n = 16;
        let stepper = Arc::new(ExplicitRk::rk4(burgers_rhs(n), 0.01).expect("time step"));
        let x = smooth_rows(&mut SplitMix64(2), 2, n, 0.3);
        let report = BridgeReport::new();
        let strategies: [Arc<dyn AdjointStrategy + Send + Sync>; 2] =
            [Arc::new(StoreAll), Arc::new(Checkpointed::every(3))];
        for adjoint in strategies {
            let op = |u: Tensor<2>| steps(stepper.clone(), u, 10, adjoint.clone(), &report);
            check_gradient("steps", &op, &x, [2, n], n, 12);
        }
        // zero steps is the identity, forward and backward
        check_gradient("steps (0)", &|u| steps(stepper.clone(), u, 0, Arc::new(StoreAll), &report), &x, [2, n], n, 13);
        assert!(report.is_empty(), "{:?}", report.failures());
    }

    #[test]
    fn spmv_gradient_matches_finite_differences() {
        let (rows, cols) = (5, 8);
        let mut rng = SplitMix64(3);
        let mut t = Vec::new();
        for r in 0..rows {
            t.push((r, r, 1.0 + rng.uniform(0.0, 1.0)));
            for c in 0..cols {
                if rng.uniform(0.0, 1.0) < 0.3 {
                    t.push((r, c, rng.uniform(-1.0, 1.0)));
                }
            }
        }
        let op = Arc::new(SparseOperator::new(CsrMatrix::from_triplets(rows, cols, &t).expect("triplets")));
        let x: Vec<f64> = (0..3 * cols).map(|_| rng.uniform(-0.5, 0.5)).collect();
        let report = BridgeReport::new();
        check_gradient("spmv", &|v| spmv(op.clone(), v, &report), &x, [3, cols], rows, 14);
        assert!(report.is_empty());
    }

    #[test]
    fn linear_solve_gradient_matches_finite_differences() {
        let n = 8;
        let tol = Tolerance { rtol: 1e-13, atol: 0.0, max_iter: 200 };
        let gmres_tol = Tolerance { rtol: 1e-12, atol: 0.0, max_iter: 200 };
        let systems = [
            // a shifted 1D Poisson matrix: symmetric positive definite
            LinearSystem::new(tridiagonal(n, -1.0, 3.0, -1.0), LinearSolver::Cg, tol),
            // with an upwind convection term: nonsymmetric
            LinearSystem::new(tridiagonal(n, -1.3, 3.0, -0.7), LinearSolver::Gmres { restart: 20 }, gmres_tol),
            LinearSystem::new(tridiagonal(n, -1.3, 3.0, -0.7), LinearSolver::DenseLu, tol),
        ];
        let mut rng = SplitMix64(4);
        let x: Vec<f64> = (0..2 * n).map(|_| rng.uniform(-0.5, 0.5)).collect();
        let report = BridgeReport::new();
        for system in systems {
            let system = Arc::new(system.expect("a valid system"));
            let name = format!("linear_solve ({:?})", system.solver());
            check_gradient(&name, &|b| linear_solve(system.clone(), b, &report), &x, [2, n], n, 15);
        }
        assert!(report.is_empty(), "{:?}", report.failures());
    }

    /// `r_i(x, θ) = x_i² + x_i + 0.1 x_{i+1} − θ_i − 0.2 θ_n` (periodic index, `p = n + 1`): a coupled nonlinear
    /// system with zero residual at its solution, so the Gauss–Newton adjoint is exact.
    struct Coupled {
        n: usize,
    }

    impl LeastSquares for Coupled {
        fn m(&self) -> usize {
            self.n
        }
        fn n(&self) -> usize {
            self.n
        }
        fn p(&self) -> usize {
            self.n + 1
        }
        fn residual(&self, x: &[f64], theta: &[f64], r: &mut [f64]) {
            let n = self.n;
            for i in 0..n {
                r[i] = x[i] * x[i] + x[i] + 0.1 * x[(i + 1) % n] - theta[i] - 0.2 * theta[n];
            }
        }
        fn jx(&self, x: &[f64], _theta: &[f64], v: &[f64], out: &mut [f64]) {
            let n = self.n;
            for i in 0..n {
                out[i] = (2.0 * x[i] + 1.0) * v[i] + 0.1 * v[(i + 1) % n];
            }
        }
        fn jx_t(&self, x: &[f64], _theta: &[f64], w: &[f64], out: &mut [f64]) {
            let n = self.n;
            for j in 0..n {
                out[j] = (2.0 * x[j] + 1.0) * w[j] + 0.1 * w[(j + n - 1) % n];
            }
        }
        fn jtheta(&self, _x: &[f64], _theta: &[f64], t: &[f64], out: &mut [f64]) {
            let n = self.n;
            for i in 0..n {
                out[i] = -t[i] - 0.2 * t[n];
            }
        }
        fn jtheta_t(&self, _x: &[f64], _theta: &[f64], w: &[f64], out: &mut [f64]) {
            let n = self.n;
            out[..n].iter_mut().zip(w).for_each(|(o, wi)| *o = -wi);
            out[n] = -0.2 * w.iter().sum::<f64>();
        }
    }

    const LM: LmOptions = LmOptions { gtol: 1e-13, ftol: 0.0, max_iter: 100, lambda0: 1e-3 };

    #[test]
    fn least_squares_gradient_matches_finite_differences() {
        let n = 4;
        let problem = Arc::new(Coupled { n });
        let mut rng = SplitMix64(5);
        // θ = 2x in [0.5, 2]: the solution lies near [0.4, 1.1], where the Jacobian is well conditioned
        let x: Vec<f64> = (0..2 * (n + 1)).map(|_| rng.uniform(0.25, 1.0)).collect();
        let tol = Tolerance { rtol: 1e-13, atol: 0.0, max_iter: 200 };
        let report = BridgeReport::new();
        let guess = vec![1.0; n];
        let op = |theta: Tensor<2>| least_squares(problem.clone(), theta, &guess, LM, tol, &report);
        check_gradient("least_squares", &op, &x, [2, n + 1], n, 16);
        // the forward pass solves the system
        let theta: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        let sol = values(op(tensor(theta.clone(), [2, n + 1], &Device::flex())).expect("forward"));
        let mut r = vec![0.0; n];
        for s in 0..2 {
            problem.residual(&sol[s * n..(s + 1) * n], &theta[s * (n + 1)..(s + 1) * (n + 1)], &mut r);
            assert!(r.iter().all(|v| v.abs() < 1e-12), "sample {s}: residual {r:?}");
        }
        assert!(report.is_empty(), "{:?}", report.failures());
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        let device = Device::flex().autodiff();
        let report = BridgeReport::new();
        let scheme = Arc::new(burgers_rhs(16));
        let err = rhs(scheme, tensor(vec![0.0; 2 * 15], [2, 15], &device), &report).expect_err("a shape error");
        assert!(matches!(err, BridgeError::Shape { op: "rhs", .. }), "{err}");
        let stepper = Arc::new(ExplicitRk::rk4(burgers_rhs(16), 0.01).expect("time step"));
        let err = steps(stepper, tensor(vec![0.0; 17], [1, 17], &device), 3, Arc::new(StoreAll), &report);
        assert!(matches!(err, Err(BridgeError::Shape { op: "steps", .. })));
        let a = Arc::new(SparseOperator::new(tridiagonal(4, 1.0, 2.0, 1.0)));
        let err = spmv(a, tensor(vec![0.0; 5], [1, 5], &device), &report);
        assert!(matches!(err, Err(BridgeError::Shape { op: "spmv", .. })));
        let tol = Tolerance::relative(1e-10, 100);
        let rect = CsrMatrix::from_triplets(2, 3, &[(0, 0, 1.0), (1, 2, 1.0)]).expect("triplets");
        assert!(matches!(LinearSystem::new(rect, LinearSolver::Cg, tol), Err(BridgeError::Config { .. })));
        let nonsymmetric = tridiagonal(4, -1.3, 3.0, -0.7);
        assert!(matches!(LinearSystem::new(nonsymmetric, LinearSolver::Cg, tol), Err(BridgeError::Config { .. })));
        let problem = Arc::new(Coupled { n: 4 });
        let theta = tensor(vec![1.0; 2 * 5], [2, 5], &device);
        let err = least_squares(problem.clone(), theta.clone(), &[1.0; 3], LM, tol, &report);
        assert!(matches!(err, Err(BridgeError::Shape { op: "least_squares", .. })));
        let err = least_squares(problem, tensor(vec![1.0; 8], [2, 4], &device), &[1.0; 4], LM, tol, &report);
        assert!(matches!(err, Err(BridgeError::Shape { op: "least_squares", .. })));
        assert!(report.is_empty());
    }

    #[test]
    fn forward_failures_name_the_sample() {
        let device = Device::flex();
        let report = BridgeReport::new();
        // one CG iteration cannot solve an 8 × 8 Poisson system, but a zero right-hand side needs none
        let system = Arc::new(
            LinearSystem::new(tridiagonal(8, -1.0, 2.0, -1.0), LinearSolver::Cg, Tolerance::relative(1e-10, 1))
                .expect("a valid system"),
        );
        let mut b = vec![0.0; 3 * 8];
        b[2 * 8 + 3] = 1.0;
        let err = linear_solve(system, tensor(b, [3, 8], &device), &report).expect_err("a solve error");
        match err {
            BridgeError::Solve { op, sample, failed, .. } => assert_eq!((op, sample, failed), ("linear_solve", 2, 1)),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn failed_backward_solves_give_nan_for_their_sample_and_a_report() {
        let device = Device::flex().autodiff();
        let n = 8;
        // zero right-hand sides converge at once; the backward solves with a non-zero cotangent do not
        let system = Arc::new(
            LinearSystem::new(tridiagonal(n, -1.0, 2.0, -1.0), LinearSolver::Cg, Tolerance::relative(1e-10, 1))
                .expect("a valid system"),
        );
        let report = BridgeReport::new();
        let b = tensor(vec![0.0; 2 * n], [2, n], &device).require_grad();
        let x = linear_solve(system, b.clone(), &report).expect("forward pass");
        let mut rng = SplitMix64(6);
        // sample 0 gets a zero cotangent (its backward solve succeeds trivially), sample 1 a random one
        let w: Vec<f64> = (0..2 * n).map(|i| if i < n { 0.0 } else { rng.uniform(-1.0, 1.0) }).collect();
        let grads = (x * tensor(w, [2, n], &device)).sum().backward();
        let g = values(b.grad(&grads).expect("gradient"));
        assert!(g[..n].iter().all(|v| *v == 0.0), "{g:?}");
        assert!(g[n..].iter().all(|v| v.is_nan()), "{g:?}");
        let failures = report.take();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!((failures[0].op, failures[0].sample), ("linear_solve", Some(1)));
        assert!(report.is_empty());
    }

    #[test]
    fn float32_tensors_are_converted_at_the_boundary() {
        let n = 16;
        let scheme = Arc::new(burgers_rhs(n));
        let x = smooth_rows(&mut SplitMix64(7), 2, n, 0.5);
        let report = BridgeReport::new();
        let device = Device::flex().autodiff();
        let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let u = Tensor::<2>::from_data(TensorData::new(x32, [2, n]), (&device, DType::F32)).require_grad();
        let y = rhs(scheme.clone(), u.clone(), &report).expect("forward pass");
        assert_eq!(y.dtype(), DType::F32);
        let grads = y.clone().sum().backward();
        let g = u.grad(&grads).expect("gradient");
        assert_eq!(g.dtype(), DType::F32);
        let exact = values(rhs(scheme, tensor(x, [2, n], &Device::flex()), &report).expect("forward pass"));
        let got = values(y);
        let scale = exact.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let diff = exact.iter().zip(&got).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-5 * scale.max(1.0), "float32 result differs by {diff:e}");
    }

    /// The unknown of the worked example: an initial state `[1, n]` as a trainable parameter.
    #[derive(Module, Debug)]
    struct InitialState {
        u0: Param<Tensor<2>>,
    }

    /// Recovers an initial condition of viscous Burgers from the state 50 steps later by gradient descent through
    /// [`steps`] (Adam, checkpointed discrete adjoint).
    #[test]
    fn recovers_a_burgers_initial_condition_from_a_later_state() {
        let (n, nu, dt, horizon) = (64, 0.05, 0.01, 50);
        let pde = SpectralBurgers1d::new(n, TAU).expect("grid");
        let points = pde.points();
        let stepper = Arc::new(ExplicitRk::rk4(SpectralRhs::new(pde, nu).expect("viscosity"), dt).expect("time step"));
        let truth: Vec<f64> = points.iter().map(|x| x.sin()).collect();
        let observe = |u0: &[f64]| -> Vec<f64> {
            let mut u = u0.to_vec();
            stepper.advance(&mut u, horizon, &mut stepper.work());
            u
        };
        let observed = observe(&truth);
        let norm2: f64 = observed.iter().map(|v| v * v).sum();
        let device = Device::flex().autodiff();
        let target = tensor(observed.clone(), [1, n], &device);
        let guess = vec![0.0; n];
        let mut model = InitialState { u0: Param::from_tensor(tensor(guess.clone(), [1, n], &device)) };
        let mut optim = AdamConfig::new().init();
        let adjoint: Arc<dyn AdjointStrategy + Send + Sync> = Arc::new(Checkpointed::sqrt());
        let report = BridgeReport::new();
        for _ in 0..800 {
            let predicted = steps(stepper.clone(), model.u0.val(), horizon, adjoint.clone(), &report).expect("steps");
            // relative squared misfit ‖u₅₀ − observed‖² / ‖observed‖²
            let loss = (predicted - target.clone()).powf_scalar(2.0).sum().mul_scalar(1.0 / norm2);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.05, model, grads);
        }
        assert!(report.is_empty(), "{:?}", report.failures());
        let recovered = values(model.u0.val());
        let predicted = observe(&recovered);
        let misfit = (predicted.iter().zip(&observed).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / norm2).sqrt();
        let distance = |u: &[f64]| u.iter().zip(&truth).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let (before, after) = (distance(&guess), distance(&recovered));
        eprintln!("relative misfit after 50 steps {misfit:.2e}; ‖u0 − truth‖ {before:.3} -> {after:.3}");
        assert!(misfit < 1e-3, "relative L2 misfit of the recovered state after 50 steps: {misfit:e}");
        assert!(after < 0.1 * before, "recovered initial state is not closer to the truth: {before} -> {after}");
    }
}
