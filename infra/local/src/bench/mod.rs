//! The benchmarks `shop bench` runs, each a library call that returns a
//! report (its numbers, as JSON or text): order placement alone
//! ([`placement`]), the whole saga settled and checked, on one engine or
//! side by side with DynamoDB Local, and the chaos soak ([`saga`]), the
//! simulators alone ([`sim`]), an idle stack's cost ([`idle`]), and a flash
//! sale behind the waiting room ([`flash`]).

pub mod flash;
pub mod idle;
pub mod placement;
pub mod progress;
pub mod saga;
pub mod sim;

/// The process's resident memory (Linux), in MB.
pub fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

/// A run's data dir: `keep` (which must not exist yet; it is kept), or a
/// temporary one, deleted when the returned guard drops.
pub(crate) fn data_dir(
    keep: Option<&std::path::Path>,
) -> anyhow::Result<(std::path::PathBuf, Option<tempfile::TempDir>)> {
    match keep {
        Some(keep) => {
            anyhow::ensure!(!keep.exists(), "{} exists: --keep-data-dir wants a new directory", keep.display());
            std::fs::create_dir_all(keep)?;
            Ok((keep.to_owned(), None))
        }
        None => {
            let t = tempfile::tempdir()?;
            Ok((t.path().to_owned(), Some(t)))
        }
    }
}
