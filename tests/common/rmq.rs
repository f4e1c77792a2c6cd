//! Runs the `rmq` example (examples/rmq.rs) for the tests: built once per
//! test process, every run bounded.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::namesrv_addr;

/// What a run of `rmq` gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The example binary, built once per test process.
pub fn rmq_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| super::example_binary("rmq"))
}

/// Runs a command, killing it after `limit`.
pub fn output_within(mut cmd: Command, stdin: Option<&str>, limit: Duration) -> Run {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    // Read both pipes on threads so a full pipe cannot stall the child.
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// `rmq <args>` with the name server from the environment, bounded by 120 s.
pub fn rmq(args: &[&str]) -> Run {
    rmq_with(args, None, &[("ROCKETMQ_NAMESRV_ADDR", Some(&namesrv_addr()))])
}

pub fn rmq_with(args: &[&str], stdin: Option<&str>, env: &[(&str, Option<&str>)]) -> Run {
    let mut cmd = Command::new(rmq_path());
    cmd.args(args);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    output_within(cmd, stdin, Duration::from_secs(120))
}

/// A run that must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let run = rmq(args);
    assert_eq!(run.code, 0, "rmq {args:?} exited {}: {}", run.code, run.stderr);
    run.stdout
}
