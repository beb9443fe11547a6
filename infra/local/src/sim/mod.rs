//! The outside world, simulated: the Toss-compatible PG and the data
//! platform, each an HTTP server with its state in memory and, with a data
//! dir, in a journal beside the store ([`journal`]).

pub mod journal;
pub mod pg;
pub mod sink;
