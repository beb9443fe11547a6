//! How far a long benchmark got, said while it runs. The library never
//! prints: it tells a [`Progress`] (phase, steps done, a short line) and the
//! command line draws it — a bar on a terminal, nothing with `--json` or
//! when stderr is not one.

use std::sync::Arc;

/// What a benchmark reports while it runs.
pub trait Progress: Send + Sync {
    /// A new phase: its name and how many steps it has (0: not known).
    fn phase(&self, name: &str, total: u64);
    /// Steps of the phase done so far, and a short line (rate, backlog).
    fn update(&self, done: u64, line: String);
    /// The run is over: whatever was drawn goes away.
    fn finish(&self);
}

/// A benchmark's progress reporter: nothing at all unless one was given.
#[derive(Clone, Default)]
pub struct Reporter(Option<Arc<dyn Progress>>);

impl Reporter {
    pub fn to(progress: Arc<dyn Progress>) -> Reporter {
        Reporter(Some(progress))
    }

    pub fn phase(&self, name: &str, total: u64) {
        if let Some(p) = &self.0 {
            p.phase(name, total);
        }
    }

    /// `line` is only built when someone listens.
    pub fn update(&self, done: u64, line: impl FnOnce() -> String) {
        if let Some(p) = &self.0 {
            p.update(done, line());
        }
    }

    pub fn finish(&self) {
        if let Some(p) = &self.0 {
            p.finish();
        }
    }
}
