//! Typed message bodies, one module per family of the seed. Each struct
//! carries every field of the seed's table plus `extra` (unknown fields).

pub mod ai;
pub mod editing;
pub mod live;
pub mod media;
pub mod processing;
pub mod upload;
pub mod workflow;
