//! The Java peer (`tests/interop/java`, the official Apache RocketMQ Java
//! client): built with Maven, run with a bounded `java -cp`. Used by
//! `tests/interop_java.rs` and `tests/acl.rs`. Maven and a JDK are required:
//! without them the tests fail, they do not skip.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocketmq_blocking::broker::BrokerClient;
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};

/// First build with a cold Maven repository downloads plugins and jars.
pub const BUILD_LIMIT: Duration = Duration::from_secs(600);
/// One run of the Java peer (it gives up after 60 s itself).
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion within `limit`; kills it and panics past the
/// limit, panics on a non-zero exit, with its output either way.
pub fn run_bounded(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = Output { stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    match status {
        None => panic!(
            "{what} did not finish within {limit:?}; killed.\nstdout:\n{}\nstderr:\n{}",
            output.stdout, output.stderr
        ),
        Some(s) if !s.success() => {
            panic!("{what} failed ({s}).\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr)
        }
        Some(_) => output,
    }
}

/// Fails loudly when a tool the test needs is missing.
fn require_tool(tool: &str, arg: &str) {
    match Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`{tool} {arg}` failed ({s}): the Java peer needs Maven and a JDK 17"),
        Err(e) => panic!("`{tool}` not found ({e}): the Java peer needs Maven and a JDK 17 on PATH"),
    }
}

/// The version a broker reports (`V5_3_3` becomes `5.3.3`).
pub fn broker_version(c: &BrokerClient) -> String {
    // A 4.x broker answers SYSTEM_ERROR until its statistics have a first sample.
    let resp = super::wait_for(Duration::from_secs(60), "the broker's runtime info", || {
        let resp = c
            .invoke(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO), Duration::from_secs(10))
            .expect("broker runtime info");
        (resp.response_code() == ResponseCode::Success).then_some(resp)
    });
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("runtime info JSON");
    let desc = v["table"]["brokerVersionDesc"].as_str().expect("brokerVersionDesc in the runtime info");
    desc.trim_start_matches('V').replace('_', ".")
}

/// Builds the Java peer against rocketmq-client `version` into
/// `CARGO_TARGET_TMPDIR/<dir>` (extra Maven arguments in `extra`) and
/// returns its class path.
pub fn build_peer(dir: &str, version: &str, extra: &[&str]) -> String {
    require_tool("java", "-version");
    require_tool("mvn", "-v");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let build = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let mut mvn = Command::new("mvn");
    mvn.args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(root.join("tests/interop/java/pom.xml"))
        .arg(format!("-Dinterop.buildDir={}", build.display()))
        .arg(format!("-Drocketmq.version={version}"))
        .args(extra)
        .arg("compile");
    let started = Instant::now();
    run_bounded(mvn, BUILD_LIMIT, "mvn compile of tests/interop/java");
    eprintln!("java peer (rocketmq-client {version}) built in {:?}", started.elapsed());
    let deps = std::fs::read_to_string(build.join("dependencies.txt")).expect("dependencies.txt from the build");
    format!("{}:{}", build.join("classes").display(), deps.trim())
}

/// `java -cp CP CLASS ARGS` with the harness's name server, the client's
/// log under the target dir, and `env`.
pub fn java_command(cp: &str, class: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-java-logs");
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(cp)
        .arg(format!("-Drocketmq.log.root={}", logs.display()))
        .arg(class)
        .args(args)
        .env("ROCKETMQ_NAMESRV_ADDR", super::namesrv_addr())
        .envs(env.iter().copied());
    java
}

/// Runs `interop.Interop ARGS` on class path `cp` with the harness's name
/// server and `env`, and returns its stdout lines starting with `tag|`.
pub fn run_interop(cp: &str, args: &[&str], env: &[(&str, &str)], tag: &str) -> Vec<String> {
    run_class(cp, "interop.Interop", args, env, tag)
}

/// Runs `CLASS ARGS` (a class of the peer) to completion within
/// [`RUN_LIMIT`] and returns its stdout lines starting with `tag|`.
pub fn run_class(cp: &str, class: &str, args: &[&str], env: &[(&str, &str)], tag: &str) -> Vec<String> {
    let java = java_command(cp, class, args, env);
    let out = run_bounded(java, RUN_LIMIT, &format!("java {class} {}", args.join(" ")));
    let prefix = format!("{tag}|");
    let lines: Vec<String> = out.stdout.lines().filter(|l| l.starts_with(&prefix)).map(str::to_string).collect();
    assert!(!lines.is_empty(), "no {tag} lines from the Java peer.\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    lines
}

/// Bytes of the peer's hex fields.
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// The Java peer's properties: hex of sorted `name=value` lines.
pub fn java_props(hex: &str) -> std::collections::BTreeMap<String, String> {
    let text = String::from_utf8(unhex(hex)).expect("properties are UTF-8");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("name=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}
