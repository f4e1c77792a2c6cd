//! Consumer offsets: kept in memory, persisted every interval and at
//! shutdown — to the broker for clustering, to a local file for
//! broadcasting ([`LocalOffsetStore`]).
//!
//! An offset is "the next message to consume": the smallest offset not yet
//! processed, so a restart never skips a message (at-least-once).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::instance::{lock, Instance};
use crate::error::{Error, OperationKind, Result};
use crate::net::fanout::invoke_all;
use crate::protocol::MessageQueue;

/// File name of a group's offsets inside its directory.
pub const OFFSET_FILE_NAME: &str = "offsets.json";

/// The offsets of one broadcasting group in one file,
/// `<dir>/<group>/offsets.json`, replaced atomically (written to a
/// temporary file, flushed, renamed over the old one), so a crash leaves
/// either the old or the new table, never a torn one.
///
/// ```
/// use std::collections::BTreeMap;
/// use rocketmq_blocking::consumer::LocalOffsetStore;
/// use rocketmq_blocking::MessageQueue;
///
/// let dir = std::env::temp_dir().join(format!("doc_offsets_{}", std::process::id()));
/// let store = LocalOffsetStore::new(&dir, "my_group");
/// let mut table = BTreeMap::new();
/// table.insert(MessageQueue::new("T", "broker-a", 0), 42);
/// store.save(&table)?;
/// assert_eq!(store.load()?, table);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOffsetStore {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetEntry {
    topic: String,
    broker_name: String,
    queue_id: i32,
    offset: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFileBody {
    offset_table: Vec<OffsetEntry>,
}

static TEMP_SEQ: AtomicUsize = AtomicUsize::new(0);

impl LocalOffsetStore {
    /// The store of `group` under `dir`.
    pub fn new(dir: &Path, group: &str) -> Self {
        LocalOffsetStore { path: dir.join(group).join(OFFSET_FILE_NAME) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: io::Error) -> Error {
        Error::OffsetFile { path: self.path.clone(), source }
    }

    /// Reads the table; a missing file is an empty table, a malformed one an error.
    pub fn load(&self) -> Result<BTreeMap<MessageQueue, i64>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.error(e)),
        };
        let body: OffsetFileBody = serde_json::from_slice(&bytes)
            .map_err(|e| self.error(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
        Ok(body
            .offset_table
            .into_iter()
            .map(|e| (MessageQueue::new(e.topic, e.broker_name, e.queue_id), e.offset))
            .collect())
    }

    /// Replaces the file with `table` (temporary file + fsync + rename).
    pub fn save(&self, table: &BTreeMap<MessageQueue, i64>) -> Result<()> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        let body = OffsetFileBody {
            offset_table: table
                .iter()
                .map(|(q, o)| OffsetEntry {
                    topic: q.topic.clone(),
                    broker_name: q.broker_name.clone(),
                    queue_id: q.queue_id,
                    offset: *o,
                })
                .collect(),
        };
        // Serializing plain structs cannot fail.
        let json = serde_json::to_vec_pretty(&body).unwrap_or_default();
        let tmp = dir.join(format!(
            "{OFFSET_FILE_NAME}.{}.{}.tmp",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(self.error(e));
        }
        Ok(())
    }
}

enum Backend {
    /// Clustering: the broker keeps the group's offsets.
    Remote,
    /// Broadcasting: a file per group.
    Local(LocalOffsetStore),
}

/// The in-memory offset table of one consumer and where it is persisted.
pub(crate) struct OffsetStore {
    backend: Backend,
    table: Mutex<HashMap<MessageQueue, i64>>,
    /// Held by a persist from reading the table to the last answer: one that
    /// read older offsets never lands after a newer one (a broker applies
    /// offset updates on several threads, in any order).
    persisting: Mutex<()>,
}

impl OffsetStore {
    /// A remote store (clustering) or a local one loaded from its file (broadcasting).
    pub fn new(inst: &Instance) -> Result<OffsetStore> {
        if inst.clustering() {
            return Ok(OffsetStore::with(Backend::Remote, HashMap::new()));
        }
        let local = LocalOffsetStore::new(inst.config.offset_store_dir(), &inst.group);
        let loaded = local.load()?;
        Ok(OffsetStore::with(Backend::Local(local), loaded.into_iter().collect()))
    }

    fn with(backend: Backend, table: HashMap<MessageQueue, i64>) -> OffsetStore {
        OffsetStore { backend, table: Mutex::new(table), persisting: Mutex::new(()) }
    }

    /// Sets the in-memory offset; with `increase_only` a smaller one is ignored.
    pub fn update(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        if offset < 0 {
            return;
        }
        let mut t = lock(&self.table);
        let slot = t.entry(mq.clone()).or_insert(offset);
        if !increase_only || offset > *slot {
            *slot = offset;
        }
    }

    /// The in-memory offset.
    pub fn read_memory(&self, mq: &MessageQueue) -> Option<i64> {
        lock(&self.table).get(mq).copied()
    }

    /// The persisted offset (`None` when there is none): asks the broker
    /// (clustering) or reads the loaded file table (broadcasting).
    pub fn read_store(&self, inst: &Instance, mq: &MessageQueue) -> Result<Option<i64>> {
        match &self.backend {
            Backend::Remote => {
                let found = inst.broker_of(mq)?.query_consumer_offset(&inst.group, mq)?;
                if let Some(o) = found {
                    self.update(mq, o, false);
                }
                Ok(found)
            }
            Backend::Local(_) => Ok(self.read_memory(mq)),
        }
    }

    /// Persists the offsets of `queues` (remote) or the whole table (local),
    /// waiting up to one request timeout.
    pub fn persist(&self, inst: &Instance, queues: &[MessageQueue]) -> Result<()> {
        self.persist_until(inst, queues, Instant::now() + inst.config.request_timeout())
    }

    /// Persists like [`persist`](Self::persist); remote offsets go to every
    /// broker at once and their answers are awaited until `deadline` at most.
    /// Persists run one at a time, so the last one to start (shutdown's)
    /// lands last; waiting for one in progress is bounded by its own deadline.
    pub fn persist_until(&self, inst: &Instance, queues: &[MessageQueue], deadline: Instant) -> Result<()> {
        let _one_at_a_time = lock(&self.persisting);
        match &self.backend {
            Backend::Remote => {
                let offsets: Vec<(MessageQueue, i64)> = {
                    let t = lock(&self.table);
                    queues.iter().filter_map(|q| t.get(q).map(|o| (q.clone(), *o))).collect()
                };
                let mut first_err = None;
                let mut sent = Vec::new();
                for (q, o) in offsets {
                    let call = inst.broker_of(&q).and_then(|c| {
                        let cmd = c.update_offset_command(&inst.group, &q, o)?;
                        Ok((c, cmd))
                    });
                    match call {
                        Ok((c, cmd)) => sent.push((c, cmd, q)),
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                let calls = sent.iter().map(|(c, cmd, _)| (c.connection(), cmd.clone())).collect();
                let results = invoke_all(calls, deadline.saturating_duration_since(Instant::now()));
                for ((c, _, q), r) in sent.iter().zip(results) {
                    let checked = r.and_then(|resp| {
                        c.expect_success(&resp, "update consumer offset", OperationKind::Offset, &q.topic, q.queue_id)
                    });
                    if let Err(e) = checked {
                        first_err.get_or_insert(e);
                    }
                }
                first_err.map_or(Ok(()), Err)
            }
            Backend::Local(file) => {
                let snapshot: BTreeMap<MessageQueue, i64> =
                    lock(&self.table).iter().map(|(q, o)| (q.clone(), *o)).collect();
                file.save(&snapshot)
            }
        }
    }

    /// Forgets a queue (after it was persisted and given up). A local store
    /// keeps it: the file holds every queue the group has read.
    pub fn remove(&self, mq: &MessageQueue) {
        if matches!(self.backend, Backend::Remote) {
            lock(&self.table).remove(mq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rmq_offsets_{name}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn local_store_round_trips_and_replaces_atomically() {
        let dir = temp_dir("round");
        let s = LocalOffsetStore::new(&dir, "g%1");
        assert!(s.load().unwrap().is_empty(), "missing file is an empty table");
        let mut t = BTreeMap::new();
        t.insert(MessageQueue::new("T", "broker-a", 0), 5);
        t.insert(MessageQueue::new("T", "broker-b", 3), 7);
        s.save(&t).unwrap();
        assert_eq!(s.load().unwrap(), t);
        t.insert(MessageQueue::new("T", "broker-a", 0), 9);
        s.save(&t).unwrap();
        assert_eq!(s.load().unwrap(), t);
        assert_eq!(s.path(), dir.join("g%1").join("offsets.json"));
        let leftovers: Vec<_> = fs::read_dir(dir.join("g%1")).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_file_is_a_typed_error() {
        let dir = temp_dir("bad");
        let s = LocalOffsetStore::new(&dir, "g");
        fs::create_dir_all(s.path().parent().unwrap()).unwrap();
        fs::write(s.path(), b"{not json").unwrap();
        match s.load() {
            Err(Error::OffsetFile { path, source }) => {
                assert_eq!(path, s.path());
                assert_eq!(source.kind(), io::ErrorKind::InvalidData);
            }
            other => panic!("expected OffsetFile, got {other:?}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn update_increase_only() {
        let store = OffsetStore::with(Backend::Remote, HashMap::new());
        let q = MessageQueue::new("T", "b", 0);
        store.update(&q, 10, true);
        store.update(&q, 5, true);
        assert_eq!(store.read_memory(&q), Some(10));
        store.update(&q, 5, false);
        assert_eq!(store.read_memory(&q), Some(5));
        store.update(&q, -1, false);
        assert_eq!(store.read_memory(&q), Some(5));
        store.remove(&q);
        assert_eq!(store.read_memory(&q), None);
    }
}
