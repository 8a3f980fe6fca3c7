//! Linear elasticity: static 2D plane strain and plane stress on a staggered grid ([`Elasticity2d`]), periodic
//! spectral statics ([`SpectralElasticity2d`]), and elastodynamics with Newmark's average-acceleration scheme
//! ([`Newmark`]).

mod dynamics;
mod spectral;
mod staggered;

pub use dynamics::Newmark;
pub use spectral::SpectralElasticity2d;
pub use staggered::{ElasticParameter, ElasticSide, Elasticity2d, ElasticityRoot, Model, Side};
