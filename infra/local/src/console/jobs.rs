//! Bulk actions run in the background of the console ([`crate::bulk`]):
//! the page that started one shows its progress and then its result. The
//! newest [`KEPT`] are kept in memory; the audit trail keeps every run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use shop_domain::Timestamp;

use crate::bulk::{Action, Progress, Report};

/// Runs the console remembers.
pub const KEPT: usize = 50;

/// One run of a bulk action.
pub struct Job {
    pub id: String,
    pub action: Action,
    pub operator: String,
    pub started_at: Timestamp,
    /// The finder's query it acted on.
    pub query: String,
    /// Targets the confirmation page showed (the run acts on what the
    /// filter finds when it starts).
    pub confirmed: usize,
    pub progress: Progress,
    /// Set once it ends: the report, or why it could not run.
    pub result: Mutex<Option<Result<Report, String>>>,
}

impl Job {
    pub fn result(&self) -> Option<Result<Report, String>> {
        self.result.lock().map(|r| r.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn finish(&self, r: Result<Report, String>) {
        match self.result.lock() {
            Ok(mut slot) => *slot = Some(r),
            Err(poisoned) => *poisoned.into_inner() = Some(r),
        }
    }
}

/// The console's runs, newest last.
#[derive(Default)]
pub struct Jobs(Mutex<VecDeque<Arc<Job>>>);

impl Jobs {
    pub fn add(&self, job: Arc<Job>) {
        let mut jobs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        jobs.push_back(job);
        while jobs.len() > KEPT {
            jobs.pop_front();
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|j| j.id == id).cloned()
    }
}
