//! The outside world, simulated: the Toss-compatible PG and the data
//! platform, each an HTTP server with its state in a SQLite database of its
//! own ([`db`]): in the data dir beside the store, or in memory without one.

pub mod db;
pub mod pg;
pub mod sink;
