//! The background tasks of a running stack (servers, loops), each told to
//! stop through its own channel and awaited.

/// The stack's background tasks, each told to stop through its own channel.
#[derive(Default)]
pub struct Tasks {
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    /// Spawns `task`; it must finish once the receiver it is given fires.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.stop.push(tx);
        self.handles.push(tokio::spawn(task(rx)));
    }

    /// Tells every task to stop and waits for them.
    pub async fn stop(self) {
        for s in self.stop {
            let _ = s.send(());
        }
        for t in self.handles {
            let _ = t.await;
        }
    }

    /// Serves `router` on `listener` until stopped, then lets running
    /// requests finish; only requests for this listener's loopback `Host`,
    /// within `limits`, reach it ([`crate::listen`]).
    pub fn serve(
        &mut self,
        name: &'static str,
        listener: tokio::net::TcpListener,
        router: axum::Router,
        limits: crate::listen::Limits,
    ) {
        tracing::debug!(server = name, ?limits, "serving");
        self.spawn(move |stop| async move {
            crate::listen::serve(listener, router, limits, async {
                let _ = stop.await;
            })
            .await;
        });
    }
}
