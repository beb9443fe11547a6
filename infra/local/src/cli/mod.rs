//! What `shop` does besides running the stack: the demo catalog
//! ([`seed`]), the benchmarks ([`bench`]: order placement; [`saga`]: the
//! whole saga, settled and checked) and operations on the saga
//! ([`ops`]: DLQs, replay, republish, timeline).

pub mod bench;
pub mod ops;
pub mod saga;
pub mod seed;
