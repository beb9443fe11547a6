//! A thread that owns a blocking resource (a SQLite connection, the embedded
//! engine's database) and runs, one at a time and in arrival order, the
//! closures callers send it. The async runtime's workers only queue a job and
//! await its answer, so a slow disk or a long statement never holds a worker
//! (or a mutex a worker waits on) while other requests wait to be served.

use std::sync::mpsc::Sender;

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// The queue to the owning thread. Cheap to clone; the thread ends (and the
/// resource is dropped) when the last clone is dropped.
pub struct Owner<S> {
    jobs: Sender<Job<S>>,
    name: &'static str,
}

impl<S> Clone for Owner<S> {
    fn clone(&self) -> Self {
        Owner { jobs: self.jobs.clone(), name: self.name }
    }
}

/// The owning thread is gone (it panicked, or the process is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the {0} thread stopped")]
pub struct Stopped(&'static str);

impl<S: 'static> Owner<S> {
    /// Starts the thread `name` owning `state`.
    pub fn start(name: &'static str, mut state: S) -> std::io::Result<Owner<S>>
    where
        S: Send,
    {
        let (jobs, queue) = std::sync::mpsc::channel::<Job<S>>();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            for job in queue {
                job(&mut state);
            }
        })?;
        Ok(Owner { jobs, name })
    }

    /// Queues `f` now (callable outside async code); its answer arrives on
    /// the receiver.
    pub fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<R> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // A failed send drops `reply`, so the receiver reports the stop.
        let _ = self.jobs.send(Box::new(move |state: &mut S| {
            let _ = reply.send(f(state));
        }));
        answer
    }

    /// Runs `f` on the owning thread and waits for its answer.
    pub async fn run<R: Send + 'static>(&self, f: impl FnOnce(&mut S) -> R + Send + 'static) -> Result<R, Stopped> {
        let name = self.name;
        self.submit(f).await.map_err(|_| Stopped(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_on_the_owning_thread() {
        let owner = Owner::start("test-owner", Vec::new()).unwrap();
        let here = std::thread::current().id();
        for n in 0..10 {
            owner.submit(move |v: &mut Vec<i32>| v.push(n));
        }
        let (seen, there) = owner.run(|v| (v.clone(), std::thread::current().id())).await.unwrap();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_ne!(there, here);
    }

    #[tokio::test]
    async fn a_panicking_job_reports_the_stop_instead_of_hanging() {
        let owner: Owner<()> = Owner::start("test-owner", ()).unwrap();
        let r = owner.run(|_| -> () { panic!("boom") }).await;
        assert!(r.is_err());
        assert!(owner.run(|_| ()).await.is_err());
    }
}
