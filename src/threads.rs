//! Starting the crate's named threads, and taking its locks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

static THREAD_SEQ: AtomicUsize = AtomicUsize::new(1);

/// Starts a thread named `rocketmq-<role>-<n>`.
pub(crate) fn spawn<F: FnOnce() + Send + 'static>(role: &str, f: F) -> Result<JoinHandle<()>> {
    let name = format!("rocketmq-{role}-{}", THREAD_SEQ.fetch_add(1, Ordering::Relaxed));
    std::thread::Builder::new().name(name.clone()).spawn(f).map_err(|source| Error::ThreadSpawn { name, source })
}

/// Locks `m`, also after another thread panicked while holding it: the data
/// guarded here stays consistent between statements, so poisoning is ignored.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Joins `handles` as they finish, until `deadline`; a thread still running
/// then (a listener call that does not return, a connect that has not timed
/// out yet) is left to end on its own: it has been told to stop and holds
/// nothing the caller waits for.
pub(crate) fn join_until(handles: Vec<JoinHandle<()>>, deadline: std::time::Instant) {
    let me = std::thread::current().id();
    let mut left: Vec<JoinHandle<()>> = handles.into_iter().filter(|h| h.thread().id() != me).collect();
    loop {
        let (done, running): (Vec<_>, Vec<_>) = left.into_iter().partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        left = running;
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
