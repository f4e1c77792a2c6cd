//! Starting the crate's named threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

static THREAD_SEQ: AtomicUsize = AtomicUsize::new(1);

/// Starts a thread named `rocketmq-<role>-<n>`.
pub(crate) fn spawn<F: FnOnce() + Send + 'static>(role: &str, f: F) -> Result<JoinHandle<()>> {
    let name = format!("rocketmq-{role}-{}", THREAD_SEQ.fetch_add(1, Ordering::Relaxed));
    std::thread::Builder::new().name(name.clone()).spawn(f).map_err(|source| Error::ThreadSpawn { name, source })
}
