//! What `shop` does besides running the stack: the demo catalog
//! ([`seed`]), the benchmarks ([`bench`]: order placement; [`saga`]: the
//! whole saga, settled and checked; [`simbench`]: the simulators alone),
//! operations on the saga ([`ops`]: DLQs, replay, republish, timeline; the
//! same against a deployed stack: [`stack`]) and
//! the business state as one canonical document ([`dump`]).

pub mod bench;
pub mod dump;
pub mod ops;
pub mod saga;
pub mod seed;
pub mod simbench;
pub mod stack;

/// The process's resident memory (Linux), in MB.
pub fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}
