//! placeholder
pub mod keys;
pub mod line;
pub mod render;
pub mod shared;
