//! What `shop` does besides running the stack: the demo catalog
//! ([`seed`]), the benchmark ([`bench`]) and operations on the saga
//! ([`ops`]: DLQs, replay, republish, timeline).

pub mod bench;
pub mod ops;
pub mod seed;
