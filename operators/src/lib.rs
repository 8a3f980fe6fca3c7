//! Ansatz operators: burn modules for neural surrogates (FNO, DyMixOp, Φ-ROM, INSR, mixture-of-experts
//! hard-constraint layers, deep-conjugate-direction networks) and the bridge that makes native solver operations
//! differentiable inside burn.
//!
//! Available now: the spectral convolution of Fourier neural operators ([`spectral::SpectralConv1d`]) as a
//! truncated DFT by matrix products (exact in f64, any grid size, every backend).

pub mod spectral;
