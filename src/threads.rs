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
