//! Consumer-group member processes (examples/group_member.rs) for the churn
//! and soak tests: build the example once, spawn members, `kill -9` or
//! SIGTERM them, read their delivery files, sample /proc.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The built example, once per test process (a no-op when cargo already
/// built it with the same features, e.g. under `cargo test --all-targets`).
pub fn member_binary() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/group_member
        let exe = std::env::current_exe().expect("test executable");
        let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>").to_path_buf();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--all-features", "--example", "group_member"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let mut child = cargo.spawn().expect("cargo build");
        let status = wait_child(&mut child, Duration::from_secs(900)).expect("cargo build --example group_member hung");
        assert!(status.success(), "cargo build --example group_member failed");
        let path = profile_dir.join("examples").join(format!("group_member{}", std::env::consts::EXE_SUFFIX));
        assert!(path.is_file(), "{} not built", path.display());
        path
    })
}

/// Waits up to `limit` for a child to exit.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One running member process; killed (-9) on drop if still running.
pub struct Member {
    /// Member id (also its client id and the name of its file).
    pub id: String,
    /// Its delivery file.
    pub out: PathBuf,
    /// Its heap file (`live_bytes peak_bytes`, rewritten every second).
    heap: PathBuf,
    child: Child,
}

impl Member {
    /// Starts `group_member` with the contract's arguments plus `env`
    /// (`ROCKETMQ_CONSUMER_*` settings); output goes to `<dir>/<id>.log`.
    pub fn spawn(
        dir: &Path,
        namesrv: &str,
        group: &str,
        topic: &str,
        mode: &str,
        id: &str,
        env: &[(&str, String)],
    ) -> Member {
        let out = dir.join(format!("{id}.jsonl"));
        let heap = dir.join(format!("{id}.heap"));
        let log = std::fs::File::create(dir.join(format!("{id}.log"))).expect("member log");
        let mut cmd = Command::new(member_binary());
        cmd.args(["--namesrv", namesrv, "--group", group, "--topic", topic, "--mode", mode, "--member", id])
            .arg("--out")
            .arg(&out)
            .arg("--heap-file")
            .arg(&heap)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn group_member");
        Member { id: id.to_string(), out, heap, child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: the crash case.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = wait_child(&mut self.child, Duration::from_secs(10));
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns the exit code.
    pub fn terminate(mut self, limit: Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = wait_child(&mut self.child, limit);
        status.and_then(|s| s.code())
    }

    /// RSS (KiB), threads and open fds from /proc, and the live heap from
    /// its heap file (None once it is gone).
    pub fn sample(&self) -> Option<ProcSample> {
        let mut s = ProcSample::of(self.child.id())?;
        let heap = std::fs::read_to_string(&self.heap).unwrap_or_default();
        let mut fields = heap.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0) / 1024);
        (s.heap_kib, s.heap_peak_kib) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
        Some(s)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resources of one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// Resident set, KiB.
    pub rss_kib: u64,
    /// Its anonymous part (heap arenas, stacks; the rest is mapped files), KiB.
    pub anon_kib: u64,
    /// Live heap, KiB (members only: what the allocator handed out and was
    /// not freed, from the member's heap file; 0 when unknown).
    pub heap_kib: u64,
    /// Peak of the live heap's one-second samples so far, KiB.
    pub heap_peak_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
}

impl ProcSample {
    /// Reads /proc/PID (Linux only).
    pub fn of(pid: u32) -> Option<ProcSample> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(ProcSample {
            rss_kib: field("VmRSS:"),
            anon_kib: field("RssAnon:"),
            threads: field("Threads:"),
            fds,
            ..ProcSample::default()
        })
    }
}

/// One line of a delivery file (the contract in examples/group_member.rs):
/// a delivery, or a lifecycle event when `event` is set.
#[derive(Debug, Clone, Deserialize)]
pub struct Line {
    /// Member id.
    pub member: String,
    /// `started`, `stopping`, `stopped`; None for a delivery.
    #[serde(default)]
    pub event: Option<String>,
    /// Broker name.
    #[serde(default)]
    pub broker: String,
    /// Queue id.
    #[serde(default)]
    pub queue: i32,
    /// Queue offset.
    #[serde(default)]
    pub offset: i64,
    /// KEYS.
    #[serde(default)]
    pub key: String,
    /// User property "seq".
    #[serde(default)]
    pub seq: Option<i64>,
    /// Reconsume times.
    #[serde(default)]
    pub reconsume: i32,
    /// Wall-clock time, ms.
    pub t_ms: i64,
}

/// Every complete line of a delivery file, in file order (a line torn by a
/// `kill -9` is skipped: it was not a completed delivery record).
pub fn read_lines(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Wall-clock now, ms (the members' `t_ms` clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
