//! Ansatz operators: burn modules for neural surrogates and the tools to train them from host memory.
//!
//! Fields are `[batch, channels, ny, nx]`; a 1D field has `ny = 1`. Available now:
//! - [`fno::Fno`]: the Fourier neural operator in 1D and 2D, on [`spectral::SpectralConv`] (truncated DFTs as
//!   matrix products: exact in f64, any grid size, every backend);
//! - [`dymixop::DyMixOp`]: the local–global-mixing operator with its gated DyIA stack;
//! - [`dcdm::DcdmNet`]: the residual CNN of the deep conjugate direction method, 2D and 3D, any grid size;
//! - [`precond_file`]: the exported learned-preconditioner file (versioned, checksummed, data only);
//! - [`layers`]: pointwise maps and periodic stencils;
//! - [`bridge`]: native f64 solver operations (right-hand sides, time steps, SpMV, linear solves,
//!   Levenberg–Marquardt, small dense least squares) as burn ops whose backward step calls the solver's adjoint;
//! - [`phirom`]: the auto-decoders of latent reduced-order models (MLP and multiplicative-filter decoders with
//!   their exact latent Jacobian) and the latent dynamics network;
//! - [`siren::Siren`]: SIREN coordinate networks with exact spatial derivatives (INSR's discretisation);
//! - [`jet`]: forward-mode derivatives as tensor operations (gradients, Laplacians, Jacobian–vector products of
//!   coordinate networks and of the FNO), differentiable by burn's reverse mode;
//! - [`kernels::gelu`]: the exact GELU as a vectorised, multi-threaded CPU kernel with its own backward step;
//! - [`memory::retain_freed_memory`]: keeps freed activation buffers in the process (glibc) between steps;
//! - [`init::Init`]: deterministic initialisation, so a network is a pure function of its config and seed;
//! - [`flat`]: parameters and gradients as one flat vector (optimisers, checkpoints, all-reduce).

pub mod bridge;
pub mod dcdm;
pub mod dcdm_native;
pub mod dymixop;
pub mod flat;
pub mod fno;
pub mod init;
pub mod jet;
pub mod kernels;
pub mod layers;
pub mod memory;
pub mod phirom;
pub mod precond_file;
pub mod siren;
pub mod spectral;
