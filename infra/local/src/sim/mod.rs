//! The outside world, simulated: the Toss-compatible PG and the data
//! platform, each an HTTP server with its state in memory and, with a data
//! dir, in a JSON file beside the store.

pub mod persisted;
pub mod pg;
pub mod sink;
