//! Linear elasticity: 2D plane strain and plane stress on a staggered grid.

mod staggered;

pub use staggered::{ElasticSide, Elasticity2d, Model, Side};
