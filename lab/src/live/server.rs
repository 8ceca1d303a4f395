//! The live view's server: the view crate's router for one job, served by
//! axum on a thread of its own (the run itself is synchronous).

use anyhow::Result;
use std::net::SocketAddr;
use wordcount_view::Shared;

/// An axum server on a thread of its own, until dropped.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(addr: SocketAddr, model: Shared) -> Result<Server> {
        // Bound here, so that a bad or busy address fails the run at once.
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                // Pages keep their update streams open: the server ends by
                // dropping them (with the runtime), not by waiting for them.
                tokio::select! {
                    _ = axum::serve(listener, wordcount_view::router(model)) => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(Server {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
