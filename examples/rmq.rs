//! `rmq`: a command line for RocketMQ built on this crate (std only).
//!
//! ```text
//! cargo build --example rmq && target/debug/examples/rmq --help
//! rmq --namesrv 127.0.0.1:9876 create-topic --topic Orders --queues 4
//! rmq send --topic Orders --count 10 --body 'order {n}'
//! rmq offsets --topic Orders --group billing
//! rmq consume --topic Orders --from-offset 0 --count 10 --format body
//! ```
//!
//! Run `rmq --help` for the commands, `rmq <command> --help` for their
//! options; the exit codes are listed there.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_blocking::broker::{BrokerClient, ClientConfig};
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumerConfig, LitePullConsumer,
    PopConsumer, PopOptions, PushConsumer,
};
use rocketmq_blocking::producer::{Producer, ProducerConfig};
use rocketmq_blocking::protocol::TopicRouteData;
use rocketmq_blocking::{Error, Message, MessageExt, MessageQueue, NameServerClient, TopicConfig};

/// Success.
const EXIT_OK: i32 = 0;
/// The command ran and failed: broker, network, timeout, some sends failed.
const EXIT_RUNTIME: i32 = 1;
/// The command line is wrong: unknown command or option, missing or bad value.
const EXIT_USAGE: i32 = 2;

const MAIN_HELP: &str = "\
rmq: a command line for Apache RocketMQ (the rocketmq-blocking crate's example)

Usage: rmq [--namesrv ADDR] <command> [options]

Commands:
  send          send messages; prints msg id, broker, queue, offset per message
  request       send a request and wait for its reply (request-reply); prints the reply
  consume       consume messages (pull or push), from an offset, a time, the start or the end
  route         a topic's route: brokers, addresses, queue counts, permissions
  cluster       the cluster's brokers and their addresses
  offsets       per queue: min, max, consumer offset and lag of a group
  create-topic  create or update a topic on every broker of a cluster (or one broker)
  bench         send messages from several threads; prints rate and latency percentiles
  help          this text, or `rmq help <command>`

Options of every command:
  --namesrv ADDR   name server list host:port[;host:port...]; default from the
                   environment: ROCKETMQ_NAMESRV_ADDR, else NAMESRV_ADDR
  --progress       show the progress line on stderr even when it is not a terminal
  --no-progress    never show it (default: shown on long runs when stderr is a terminal)
  -h, --help       help of the command

Output: tables are tab-separated with a header line first and a fixed column
order; `send` and `consume` print one tab-separated line per message and no
header. Errors go to stderr, prefixed with `rmq:`.

Exit codes:
  0  success
  1  runtime error: broker or name server refused, network, timeout, some sends
     failed, `consume --count` not reached in time
  2  usage error: unknown command or option, missing or invalid value, no name server
";

const SEND_HELP: &str = "\
Usage: rmq send --topic TOPIC [options]

Sends messages with the producer (routing, retries) and prints one line per
message: msg_id <TAB> broker <TAB> queue_id <TAB> queue_offset <TAB> status
(status as Java names it: SEND_OK, FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT,
SLAVE_NOT_AVAILABLE).

Options:
  --topic TOPIC        topic (required)
  --body TEXT          message body; `{n}` becomes the message number (0, 1, ...); default `message {n}`
  --size BYTES         a body of BYTES times `x` instead of --body
  --stdin              one message per line of standard input (instead of --body/--count)
  --count N            messages to send (default 1)
  --tag TAG            tag of every message
  --keys K1,K2         keys of every message (`{n}` substituted)
  --property K=V       a user property (repeatable)
  --delay-level N      delay level 1..=18 (1s 5s 10s 30s 1m ... 2h)
  --queue BROKER:ID    send to this queue only (no routing, no retries)
  --group GROUP        producer group (default rmq_producer)

A failed message is reported on stderr and the others are still sent; the exit
code is then 1.
";

const REQUEST_HELP: &str = "\
Usage: rmq request --topic TOPIC [options]

Sends one request (request-reply, as Java's DefaultMQProducer.request) and
waits for the reply a consumer of the topic sends back; prints one line:
  reply_msg_id <TAB> correlation_id <TAB> elapsed_ms <TAB> body
(body as UTF-8 with \\\\, \\t, \\n and \\r escaped), or with --format body only
the raw reply body and a newline.

Options:
  --topic TOPIC        topic (required)
  --body TEXT          request body (default `request`)
  --stdin              the request body is all of standard input (instead of --body)
  --timeout SECS       how long to wait for the reply, the send included (default 3, as Java)
  --tag TAG            tag of the request
  --property K=V       a user property (repeatable)
  --queue BROKER:ID    send to this queue only
  --group GROUP        producer group (default rmq_requester)
  --format tsv|body    output format (default tsv)

Exit code 1 when no reply came within --timeout, or the send failed.
";

const CONSUME_HELP: &str = "\
Usage: rmq consume --topic TOPIC [options]

Prints one line per message:
  broker <TAB> queue_id <TAB> queue_offset <TAB> msg_id <TAB> tags <TAB> body
(body as UTF-8 with \\\\, \\t, \\n and \\r escaped; `-` for no tags), or with
--format body only the raw body and a newline.

Options:
  --topic TOPIC        topic (required)
  --mode pull|push     pull (default): a lite pull consumer reads the queues from the
                       start position without committing offsets; push: a push consumer
                       of --group, which commits what it consumed
  --group GROUP        consumer group (default rmq_consume_<pid>)
  --from-begin         start at each queue's min offset (pull default)
  --from-end           only messages sent from now on (push default for a new group)
  --from-offset N      pull: start every queue at offset N (clamped to the queue's min..max)
  --from-time MS       start at the first message stored at or after MS (ms since the epoch);
                       push: only for a group with no stored offset
  --queue BROKER:ID    pull: this queue only
  --tag EXPR           tag expression, e.g. `TagA || TagB` (default `*`)
  --count N            stop after N messages (push: later deliveries are handed back
                       for redelivery to the group)
  --timeout SECS       stop after SECS in all
  --idle SECS          stop after SECS without a message
  --format tsv|body    output format (default tsv)
  --pop                push through pop consumption (RocketMQ 5.x): the brokers hand out
                       messages instead of queues, so a group may have more consumers
                       than queues; switch the group first with `mqadmin setConsumeMode
                       -c CLUSTER -g GROUP -t TOPIC -m POP -q N` (else exit code 1)
  --invisible-time SECS  --pop: messages not acked come back after SECS (5 to 300, default 60)

Without --count, --timeout or --idle it runs until killed. Exit code 1 when
--count was given and fewer messages came before --timeout or --idle.
";

const ROUTE_HELP: &str = "\
Usage: rmq route --topic TOPIC

Prints the topic's route, one line per broker, sorted by broker:
  broker <TAB> addr <TAB> read_queues <TAB> write_queues <TAB> perm
(addr is the master's address, `-` without a master; perm: read 4 | write 2).
Exit code 1 when the topic does not exist.
";

const CLUSTER_HELP: &str = "\
Usage: rmq cluster

Prints every broker known to the name server, sorted:
  cluster <TAB> broker <TAB> broker_id <TAB> addr
(broker_id 0 is the master).
";

const OFFSETS_HELP: &str = "\
Usage: rmq offsets --topic TOPIC [--group GROUP]

Prints one line per readable queue, sorted by broker and queue:
  broker <TAB> queue_id <TAB> min <TAB> max <TAB> consumer <TAB> lag
consumer is the group's committed offset and lag is max - consumer; both are
`-` without --group or when the group has no offset on the queue.
";

const CREATE_TOPIC_HELP: &str = "\
Usage: rmq create-topic --topic TOPIC [options]

Creates (or updates) a topic and prints the brokers it was created on, one per
line.

Options:
  --topic TOPIC        topic (required)
  --queues N           read and write queues per broker (default 8)
  --perm N             permission bits: 6 read+write (default), 4 read only, 2 write only
  --order              an ordered topic
  --cluster NAME       create on every master of this cluster (default DefaultCluster)
  --broker ADDR        create on this broker address only (instead of --cluster)
  --wait SECS          wait until the name server's route lists the topic on every
                       broker it was created on (default 30; 0: do not wait)
";

const BENCH_HELP: &str = "\
Usage: rmq bench --topic TOPIC [options]

Sends --count messages from --threads threads with one producer and prints one
line of key=value pairs:
  sent=N errors=E seconds=S rate=R p50_us=.. p99_us=.. p999_us=.. max_us=..
(rate in messages per second; latencies of the successful sends). Exit code 1
when a send failed.

Options:
  --topic TOPIC        topic (required)
  --count N            messages in all (default 10000)
  --threads N          sending threads (default 4)
  --size BYTES         body size (default 128)
  --group GROUP        producer group (default rmq_bench)
";

/// Why the command failed.
enum Fail {
    Usage(String),
    Runtime(String),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Runtime(e.to_string())
    }
}

type Out<T> = Result<T, Fail>;

fn usage<T>(msg: impl Into<String>) -> Out<T> {
    Err(Fail::Usage(msg.into()))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(()) => EXIT_OK,
        Err(Fail::Usage(msg)) => {
            eprintln!("rmq: usage error: {msg}");
            let cmd = args.iter().find(|a| COMMANDS.iter().any(|(name, _, _)| name == a));
            match cmd {
                Some(c) => eprintln!("Try `rmq {c} --help`."),
                None => eprintln!("Try `rmq --help`."),
            }
            EXIT_USAGE
        }
        Err(Fail::Runtime(msg)) => {
            eprintln!("rmq: error: {msg}");
            EXIT_RUNTIME
        }
    };
    std::process::exit(code);
}

type Command = fn(&Opts) -> Out<()>;

/// Name, help, options (name, takes a value) and the function of each command.
const COMMANDS: &[(&str, &str, Command)] = &[
    ("send", SEND_HELP, cmd_send),
    ("request", REQUEST_HELP, cmd_request),
    ("consume", CONSUME_HELP, cmd_consume),
    ("route", ROUTE_HELP, cmd_route),
    ("cluster", CLUSTER_HELP, cmd_cluster),
    ("offsets", OFFSETS_HELP, cmd_offsets),
    ("create-topic", CREATE_TOPIC_HELP, cmd_create_topic),
    ("bench", BENCH_HELP, cmd_bench),
];

const GLOBAL_OPTIONS: &[(&str, bool)] = &[("namesrv", true), ("progress", false), ("no-progress", false)];

fn options_of(cmd: &str) -> &'static [(&'static str, bool)] {
    match cmd {
        "send" => &[
            ("topic", true),
            ("body", true),
            ("size", true),
            ("stdin", false),
            ("count", true),
            ("tag", true),
            ("keys", true),
            ("property", true),
            ("delay-level", true),
            ("queue", true),
            ("group", true),
        ],
        "consume" => &[
            ("topic", true),
            ("mode", true),
            ("group", true),
            ("from-begin", false),
            ("from-end", false),
            ("from-offset", true),
            ("from-time", true),
            ("queue", true),
            ("tag", true),
            ("count", true),
            ("timeout", true),
            ("idle", true),
            ("format", true),
            ("pop", false),
            ("invisible-time", true),
        ],
        "request" => &[
            ("topic", true),
            ("body", true),
            ("stdin", false),
            ("timeout", true),
            ("tag", true),
            ("property", true),
            ("queue", true),
            ("group", true),
            ("format", true),
        ],
        "route" => &[("topic", true)],
        "offsets" => &[("topic", true), ("group", true)],
        "create-topic" => &[
            ("topic", true),
            ("queues", true),
            ("perm", true),
            ("order", false),
            ("cluster", true),
            ("broker", true),
            ("wait", true),
        ],
        "bench" => &[("topic", true), ("count", true), ("threads", true), ("size", true), ("group", true)],
        _ => &[],
    }
}

fn run(args: &[String]) -> Out<()> {
    // The command is the first argument that is not an option or an option's value.
    let mut i = 0;
    let mut cmd = None;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "-h" || a == "--help" {
            if cmd.is_none() {
                return print(MAIN_HELP);
            }
        } else if let Some(name) = a.strip_prefix("--") {
            let takes_value = GLOBAL_OPTIONS.iter().any(|(n, v)| *n == name && *v);
            if takes_value {
                i += 1;
            }
        } else if cmd.is_none() {
            cmd = Some(i);
            break;
        }
        i += 1;
    }
    let Some(at) = cmd else { return usage("no command given") };
    let name = args[at].as_str();
    if name == "help" {
        return match args.get(at + 1) {
            None => print(MAIN_HELP),
            Some(c) => match COMMANDS.iter().find(|(n, _, _)| n == c) {
                Some((_, help, _)) => print(help),
                None => usage(format!("unknown command {c:?}")),
            },
        };
    }
    let Some((_, help, func)) = COMMANDS.iter().find(|(n, _, _)| *n == name) else {
        return usage(format!("unknown command {name:?}"));
    };
    let rest: Vec<String> = args[..at].iter().chain(&args[at + 1..]).cloned().collect();
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        return print(help);
    }
    let opts = Opts::parse(&rest, options_of(name))?;
    func(&opts)
}

fn print(text: &str) -> Out<()> {
    emit(text.trim_end())
}

/// Writes one line to stdout (flushed, so a pipe sees it at once).
fn emit(line: &str) -> Out<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`rmq ... | head`): stop quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(EXIT_OK),
        Err(e) => Err(Fail::Runtime(format!("cannot write to stdout: {e}"))),
    }
}

/// Parsed options: every value of every option, in order.
struct Opts {
    values: HashMap<&'static str, Vec<String>>,
}

impl Opts {
    fn parse(args: &[String], spec: &[(&'static str, bool)]) -> Out<Opts> {
        let mut values: HashMap<&'static str, Vec<String>> = HashMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(body) = a.strip_prefix("--") else {
                return usage(format!("unexpected argument {a:?} (options start with --)"));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some((key, takes_value)) = spec.iter().chain(GLOBAL_OPTIONS).find(|(n, _)| *n == name) else {
                return usage(format!("unknown option --{name}"));
            };
            let value = match (takes_value, inline) {
                (true, Some(v)) => v,
                (true, None) => match it.next() {
                    Some(v) => v.clone(),
                    None => return usage(format!("--{name} needs a value")),
                },
                (false, Some(_)) => return usage(format!("--{name} takes no value")),
                (false, None) => String::new(),
            };
            values.entry(*key).or_default().push(value);
        }
        Ok(Opts { values })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    fn flag(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    fn required(&self, name: &str) -> Out<&str> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => usage(format!("--{name} is required")),
        }
    }

    fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(&self, name: &str, min: T) -> Out<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<T>() {
                Ok(n) if n >= min => Ok(Some(n)),
                Ok(_) => usage(format!("--{name} must be at least {min}, not {v}")),
                Err(_) => usage(format!("--{name} needs a number, not {v:?}")),
            },
        }
    }

    fn seconds(&self, name: &str) -> Out<Option<Duration>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<f64>() {
                Ok(s) if (0.0..1e9).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
                _ => usage(format!("--{name} needs a number of seconds, not {v:?}")),
            },
        }
    }

    /// The name server list: --namesrv, else ROCKETMQ_NAMESRV_ADDR, else NAMESRV_ADDR.
    fn namesrv(&self) -> Out<String> {
        if let Some(addr) = self.get("namesrv") {
            return Ok(addr.to_string());
        }
        for var in ["ROCKETMQ_NAMESRV_ADDR", "NAMESRV_ADDR"] {
            if let Ok(v) = std::env::var(var) {
                if !v.trim().is_empty() {
                    return Ok(v.trim().to_string());
                }
            }
        }
        usage("no name server: use --namesrv host:port or set ROCKETMQ_NAMESRV_ADDR")
    }

    fn name_server(&self) -> Out<NameServerClient> {
        let addr = self.namesrv()?;
        NameServerClient::new(&addr).or_else(|e| usage(format!("--namesrv {addr:?}: {e}")))
    }

    /// `BROKER:ID`.
    fn queue(&self, topic: &str) -> Out<Option<MessageQueue>> {
        let Some(v) = self.get("queue") else { return Ok(None) };
        match v.rsplit_once(':').map(|(b, id)| (b, id.parse::<i32>())) {
            Some((broker, Ok(id))) if !broker.is_empty() && id >= 0 => Ok(Some(MessageQueue::new(topic, broker, id))),
            _ => usage(format!("--queue needs BROKER:ID, e.g. broker-a:0, not {v:?}")),
        }
    }

    fn progress(&self) -> bool {
        self.flag("progress") || (!self.flag("no-progress") && std::io::stderr().is_terminal())
    }
}

/// The single progress line on stderr: count, rate, errors.
struct Progress {
    enabled: bool,
    what: &'static str,
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
    width: usize,
}

impl Progress {
    fn new(opts: &Opts, what: &'static str, total: Option<u64>) -> Progress {
        Progress { enabled: opts.progress(), what, total, start: Instant::now(), last: None, width: 0 }
    }

    /// Redraws at most five times a second.
    fn tick(&mut self, count: u64, errors: u64) {
        if self.enabled && self.last.map_or(true, |t| t.elapsed() >= Duration::from_millis(200)) {
            self.draw(count, errors);
        }
    }

    fn draw(&mut self, count: u64, errors: u64) {
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { count as f64 / secs } else { 0.0 };
        let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
        let line = format!("{}: {count}{of} messages, {rate:.0} msg/s, {errors} errors, {secs:.1} s", self.what);
        let pad = self.width.saturating_sub(line.len());
        self.width = line.len();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{}", " ".repeat(pad));
        let _ = err.flush();
        self.last = Some(Instant::now());
    }

    /// The last state, then a newline so later output starts on its own line.
    fn finish(&mut self, count: u64, errors: u64) {
        if self.enabled {
            self.draw(count, errors);
            eprintln!();
        }
    }
}

fn producer(opts: &Opts, default_group: &str) -> Out<Producer> {
    let config = ProducerConfig::builder()
        .group(opts.get("group").unwrap_or(default_group))
        .namesrv_addr(opts.namesrv()?)
        .build()
        .or_else(|e| usage(e.to_string()))?;
    let producer = Producer::new(config)?;
    producer.start()?;
    Ok(producer)
}

/// The `--property K=V` options.
fn user_properties(opts: &Opts) -> Out<Vec<(String, String)>> {
    let mut properties = Vec::new();
    for p in opts.all("property") {
        match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => properties.push((k.to_string(), v.to_string())),
            _ => return usage(format!("--property needs KEY=VALUE, not {p:?}")),
        }
    }
    Ok(properties)
}

fn cmd_send(opts: &Opts) -> Out<()> {
    let topic = opts.required("topic")?;
    let count = opts.number::<u64>("count", 1)?.unwrap_or(1);
    let size = opts.number::<usize>("size", 0)?;
    let delay = opts.number::<i32>("delay-level", 1)?;
    if delay.is_some_and(|d| d > 18) {
        return usage("--delay-level must be between 1 and 18");
    }
    let template = opts.get("body").unwrap_or("message {n}");
    if size.is_some() && opts.flag("body") {
        return usage("--size and --body exclude each other");
    }
    if opts.flag("stdin") && (opts.flag("body") || opts.flag("size") || opts.flag("count")) {
        return usage("--stdin excludes --body, --size and --count");
    }
    let properties = user_properties(opts)?;
    let queue = opts.queue(topic)?;
    let make = |n: u64, body: Vec<u8>| {
        let mut m = Message::new(topic, body);
        if let Some(tag) = opts.get("tag") {
            m = m.with_tags(tag);
        }
        if let Some(keys) = opts.get("keys") {
            let keys = keys.replace("{n}", &n.to_string());
            m = m.with_keys(keys.split(',').filter(|k| !k.is_empty()));
        }
        for (k, v) in &properties {
            m = m.with_property(k.clone(), v.clone());
        }
        if let Some(level) = delay {
            m = m.with_delay_level(level);
        }
        m
    };
    let producer = producer(opts, "rmq_producer")?;
    let mut progress = Progress::new(opts, "send", (!opts.flag("stdin")).then_some(count));
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut send_one = |n: u64, body: Vec<u8>| -> Out<()> {
        let msg = make(n, body);
        let result = match &queue {
            Some(q) => producer.send_to_queue(&msg, q),
            None => producer.send(&msg),
        };
        match result {
            Ok(r) => {
                sent += 1;
                emit(&format!(
                    "{}\t{}\t{}\t{}\t{}",
                    r.msg_id,
                    r.queue.broker_name,
                    r.queue.queue_id,
                    r.queue_offset,
                    screaming(&format!("{:?}", r.status))
                ))?;
            }
            Err(e) => {
                errors += 1;
                eprintln!("rmq: message {n}: {e}");
            }
        }
        progress.tick(sent, errors);
        Ok(())
    };
    if opts.flag("stdin") {
        for (n, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.map_err(|e| Fail::Runtime(format!("cannot read stdin: {e}")))?;
            send_one(n as u64, line.into_bytes())?;
        }
    } else {
        for n in 0..count {
            let body = match size {
                Some(s) => vec![b'x'; s],
                None => template.replace("{n}", &n.to_string()).into_bytes(),
            };
            send_one(n, body)?;
        }
    }
    progress.finish(sent, errors);
    producer.shutdown();
    if errors > 0 {
        return Err(Fail::Runtime(format!("{errors} of {} messages were not sent", sent + errors)));
    }
    Ok(())
}

/// `SendOk` -> `SEND_OK`, as the Java client names the statuses.
fn cmd_request(opts: &Opts) -> Out<()> {
    let topic = opts.required("topic")?;
    if opts.flag("stdin") && opts.flag("body") {
        return usage("--stdin and --body exclude each other");
    }
    let body_only = match opts.get("format").unwrap_or("tsv") {
        "tsv" => false,
        "body" => true,
        other => return usage(format!("--format is tsv or body, not {other:?}")),
    };
    let timeout = opts.seconds("timeout")?.unwrap_or(Duration::from_secs(3));
    if timeout.is_zero() {
        return usage("--timeout must be greater than 0");
    }
    let body = if opts.flag("stdin") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
            .map_err(|e| Fail::Runtime(format!("cannot read stdin: {e}")))?;
        buf
    } else {
        opts.get("body").unwrap_or("request").as_bytes().to_vec()
    };
    let mut msg = Message::new(topic, body);
    if let Some(tag) = opts.get("tag") {
        msg = msg.with_tags(tag);
    }
    for (k, v) in user_properties(opts)? {
        msg = msg.with_property(k, v);
    }
    let queue = opts.queue(topic)?;
    let producer = producer(opts, "rmq_requester")?;
    let started = Instant::now();
    let result = match &queue {
        Some(q) => producer.request_to_queue(&msg, q, timeout),
        None => producer.request(&msg, timeout),
    };
    let elapsed = started.elapsed();
    producer.shutdown();
    let reply = result?;
    if body_only {
        return emit(&String::from_utf8_lossy(&reply.body));
    }
    emit(&format!(
        "{}\t{}\t{}\t{}",
        reply.msg_id,
        reply.property(rocketmq_blocking::protocol::message::property::CORRELATION_ID).unwrap_or("-"),
        elapsed.as_millis(),
        escape(&String::from_utf8_lossy(&reply.body))
    ))
}

fn screaming(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Where consumption starts.
#[derive(Clone, Copy)]
enum Start {
    Begin,
    End,
    Offset(i64),
    Time(i64),
}

/// How long a consume runs.
struct Limits {
    count: Option<u64>,
    deadline: Option<Instant>,
    idle: Option<Duration>,
}

fn cmd_consume(opts: &Opts) -> Out<()> {
    let topic = opts.required("topic")?;
    let push = match opts.get("mode").unwrap_or("pull") {
        "pull" => false,
        "push" => true,
        other => return usage(format!("--mode is pull or push, not {other:?}")),
    };
    let body_only = match opts.get("format").unwrap_or("tsv") {
        "tsv" => false,
        "body" => true,
        other => return usage(format!("--format is tsv or body, not {other:?}")),
    };
    let starts: Vec<Start> = [
        opts.flag("from-begin").then_some(Start::Begin),
        opts.flag("from-end").then_some(Start::End),
        opts.number::<i64>("from-offset", 0)?.map(Start::Offset),
        opts.number::<i64>("from-time", 0)?.map(Start::Time),
    ]
    .into_iter()
    .flatten()
    .collect();
    if starts.len() > 1 {
        return usage("give one of --from-begin, --from-end, --from-offset, --from-time");
    }
    let start = starts.first().copied();
    if push && matches!(start, Some(Start::Offset(_))) {
        return usage("--from-offset needs --mode pull (a push consumer starts from its group's offsets)");
    }
    if push && opts.flag("queue") {
        return usage("--queue needs --mode pull");
    }
    let limits = Limits {
        count: opts.number::<u64>("count", 1)?,
        deadline: opts.seconds("timeout")?.map(|d| Instant::now() + d),
        idle: opts.seconds("idle")?,
    };
    let group = opts.get("group").map_or_else(|| format!("rmq_consume_{}", std::process::id()), str::to_string);
    let tag = opts.get("tag").unwrap_or("*").to_string();
    let ns = opts.name_server()?;
    let route = ns.topic_route(topic)?;
    // Pulled messages do not name their broker: find it by store address.
    let brokers: HashMap<String, String> = route
        .broker_datas
        .iter()
        .filter_map(|b| b.master_addr().map(|a| (a.to_string(), b.broker_name.clone())))
        .collect();
    let namesrv = opts.namesrv()?;
    let mut progress = Progress::new(opts, "consume", limits.count);
    let received = if opts.flag("pop") {
        consume_pop(
            topic,
            &group,
            &namesrv,
            &tag,
            start,
            opts.seconds("invisible-time")?,
            &limits,
            &mut progress,
            body_only,
        )?
    } else if push {
        consume_push(topic, &group, &namesrv, &tag, start, &limits, &mut progress, body_only)?
    } else {
        let queue = opts.queue(topic)?;
        consume_pull(topic, &group, &namesrv, &route, queue, &tag, start, &limits, &mut progress, &|m| {
            let broker = brokers.get(&m.store_host.to_string()).map_or("-", String::as_str);
            format_message(body_only, broker, m)
        })?
    };
    progress.finish(received, 0);
    match limits.count {
        Some(n) if received < n => Err(Fail::Runtime(format!("received {received} of {n} messages"))),
        _ => Ok(()),
    }
}

/// One output line of `consume`.
fn format_message(body_only: bool, broker: &str, m: &MessageExt) -> String {
    if body_only {
        return String::from_utf8_lossy(&m.body).into_owned();
    }
    format!(
        "{broker}\t{}\t{}\t{}\t{}\t{}",
        m.queue_id,
        m.queue_offset,
        m.msg_id,
        m.tags().unwrap_or("-"),
        escape(&String::from_utf8_lossy(&m.body))
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn tag_matches(expr: &str, tags: Option<&str>) -> bool {
    let expr = expr.trim();
    expr.is_empty() || expr == "*" || tags.is_some_and(|t| expr.split("||").any(|e| e.trim() == t))
}

impl Limits {
    /// How long to wait for the next message; `None` when the run is over.
    fn wait(&self, received: u64, last: Instant) -> Option<Duration> {
        if self.count.is_some_and(|n| received >= n) {
            return None;
        }
        let now = Instant::now();
        let mut until = now + Duration::from_millis(200);
        for end in [self.deadline, self.idle.map(|d| last + d)].into_iter().flatten() {
            if now >= end {
                return None;
            }
            until = until.min(end);
        }
        Some(until - now)
    }
}

#[allow(clippy::too_many_arguments)]
fn consume_pull(
    topic: &str,
    group: &str,
    namesrv: &str,
    route: &TopicRouteData,
    only: Option<MessageQueue>,
    tag: &str,
    start: Option<Start>,
    limits: &Limits,
    progress: &mut Progress,
    line: &dyn Fn(&MessageExt) -> String,
) -> Out<u64> {
    let config = ConsumerConfig::builder()
        .group(group)
        .namesrv_addr(namesrv)
        .auto_commit(false)
        .build()
        .or_else(|e| usage(e.to_string()))?;
    let consumer = LitePullConsumer::new(config)?;
    let mut queues = consumer.fetch_message_queues(topic)?;
    if let Some(q) = &only {
        if !queues.contains(q) {
            return Err(Fail::Runtime(format!("{}:{} is not a readable queue of {topic}", q.broker_name, q.queue_id)));
        }
        queues = vec![q.clone()];
    }
    consumer.assign(&queues)?;
    let config = ClientConfig::default();
    let mut clients: HashMap<String, BrokerClient> = HashMap::new();
    for q in &queues {
        match start.unwrap_or(Start::Begin) {
            Start::Begin => consumer.seek_to_begin(q)?,
            Start::End => consumer.seek_to_end(q)?,
            Start::Offset(n) | Start::Time(n) => {
                if !clients.contains_key(&q.broker_name) {
                    let addr = route
                        .broker(&q.broker_name)
                        .and_then(|b| b.master_addr())
                        .ok_or_else(|| Fail::Runtime(format!("broker {} of {topic} has no master", q.broker_name)))?;
                    clients.insert(q.broker_name.clone(), BrokerClient::connect(addr, &config)?);
                }
                let client = &clients[&q.broker_name];
                let offset = match start {
                    Some(Start::Time(ms)) => client.search_offset(q, ms)?,
                    _ => n.clamp(client.min_offset(q)?, client.max_offset(q)?),
                };
                consumer.seek(q, offset)?;
            }
        }
    }
    drop(clients);
    consumer.start()?;
    let (mut received, mut last) = (0u64, Instant::now());
    'run: while let Some(wait) = limits.wait(received, last) {
        for m in consumer.poll(wait)? {
            last = Instant::now();
            if !tag_matches(tag, m.tags()) {
                continue;
            }
            emit(&line(&m))?;
            received += 1;
            progress.tick(received, 0);
            if limits.count.is_some_and(|n| received >= n) {
                break 'run;
            }
        }
        progress.tick(received, 0);
    }
    consumer.shutdown();
    Ok(received)
}

#[allow(clippy::too_many_arguments)]
fn consume_push(
    topic: &str,
    group: &str,
    namesrv: &str,
    tag: &str,
    start: Option<Start>,
    limits: &Limits,
    progress: &mut Progress,
    body_only: bool,
) -> Out<u64> {
    let mut builder = ConsumerConfig::builder().group(group).namesrv_addr(namesrv);
    builder = match start {
        Some(Start::Begin) => builder.consume_from_where(ConsumeFromWhere::FirstOffset),
        Some(Start::Time(ms)) => builder.consume_from_where(ConsumeFromWhere::Timestamp).consume_timestamp_ms(ms),
        _ => builder.consume_from_where(ConsumeFromWhere::LastOffset),
    };
    let config = builder.build().or_else(|e| usage(e.to_string()))?;
    let consumer = PushConsumer::new(config)?;
    consumer.subscribe(topic, tag)?;
    let consumed = print_consumed(limits, progress, body_only, |listener| {
        consumer.register_concurrently(listener)?;
        consumer.start()
    });
    consumer.shutdown();
    consumed
}

/// A concurrent listener, for either push consumer.
type Listener = Box<dyn Fn(&[MessageExt], &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus + Send + Sync>;

/// `consume --pop`: a [`PopConsumer`] of `group`; the listener and the loop are `consume --mode push`'s.
#[allow(clippy::too_many_arguments)]
fn consume_pop(
    topic: &str,
    group: &str,
    namesrv: &str,
    tag: &str,
    start: Option<Start>,
    invisible: Option<Duration>,
    limits: &Limits,
    progress: &mut Progress,
    body_only: bool,
) -> Out<u64> {
    let from =
        if matches!(start, Some(Start::Begin)) { ConsumeFromWhere::FirstOffset } else { ConsumeFromWhere::LastOffset };
    let config = ConsumerConfig::builder().group(group).namesrv_addr(namesrv).consume_from_where(from);
    let config = config.build().or_else(|e| usage(e.to_string()))?;
    let options = PopOptions::default()
        .invisible_time(invisible.unwrap_or(rocketmq_blocking::broker::DEFAULT_POP_INVISIBLE_TIME));
    let consumer = PopConsumer::with_options(config, options).or_else(|e| usage(e.to_string()))?;
    consumer.subscribe(topic, tag)?;
    let consumed = print_consumed(limits, progress, body_only, |listener| {
        consumer.register_concurrently(listener)?;
        consumer.start()
    });
    consumer.shutdown();
    consumed
}

/// Starts a consumer with `start` and a listener that hands each message's
/// line to this thread, which prints them until the limits end the run.
fn print_consumed(
    limits: &Limits,
    progress: &mut Progress,
    body_only: bool,
    start: impl FnOnce(Listener) -> Result<(), Error>,
) -> Out<u64> {
    // The listener formats on the consume threads and hands the lines to
    // this thread, which prints them. Messages beyond --count are handed
    // back (ReconsumeLater) so the group does not lose them.
    let (tx, rx) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let taken = AtomicU64::new(0);
    let limit = limits.count.unwrap_or(u64::MAX);
    start(Box::new(move |msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext| {
        let n = msgs.len() as u64;
        if taken.fetch_add(n, Ordering::SeqCst) + n > limit {
            taken.fetch_sub(n, Ordering::SeqCst);
            return ConsumeConcurrentlyStatus::ReconsumeLater;
        }
        let tx = tx.lock().unwrap_or_else(|p| p.into_inner());
        for m in msgs {
            let _ = tx.send(format_message(body_only, &ctx.queue().broker_name, m));
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }))?;
    let (mut received, mut last) = (0u64, Instant::now());
    while let Some(wait) = limits.wait(received, last) {
        if let Ok(line) = rx.recv_timeout(wait) {
            last = Instant::now();
            emit(&line)?;
            received += 1;
        }
        progress.tick(received, 0);
    }
    Ok(received)
}

fn cmd_route(opts: &Opts) -> Out<()> {
    let topic = opts.required("topic")?;
    let route = opts.name_server()?.topic_route(topic)?;
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    for q in &route.queue_datas {
        let addr = route.broker(&q.broker_name).and_then(|b| b.master_addr()).unwrap_or("-");
        rows.insert(
            q.broker_name.clone(),
            format!("{}\t{addr}\t{}\t{}\t{}", q.broker_name, q.read_queue_nums, q.write_queue_nums, q.perm),
        );
    }
    emit("broker\taddr\tread_queues\twrite_queues\tperm")?;
    rows.values().try_for_each(|r| emit(r))
}

fn cmd_cluster(opts: &Opts) -> Out<()> {
    let info = opts.name_server()?.cluster_info()?;
    emit("cluster\tbroker\tbroker_id\taddr")?;
    for (cluster, names) in &info.cluster_addr_table {
        let mut names = names.clone();
        names.sort();
        for name in names {
            let Some(b) = info.broker_addr_table.get(&name) else { continue };
            for (id, addr) in &b.broker_addrs {
                emit(&format!("{cluster}\t{name}\t{id}\t{addr}"))?;
            }
        }
    }
    Ok(())
}

/// A connection to every master of the route, by broker name.
fn route_clients(topic: &str, route: &TopicRouteData) -> Out<BTreeMap<String, BrokerClient>> {
    let config = ClientConfig::default();
    let mut clients = BTreeMap::new();
    for b in &route.broker_datas {
        let addr = b
            .master_addr()
            .ok_or_else(|| Fail::Runtime(format!("broker {} of {topic} has no master", b.broker_name)))?;
        clients.insert(b.broker_name.clone(), BrokerClient::connect(addr, &config)?);
    }
    Ok(clients)
}

fn cmd_offsets(opts: &Opts) -> Out<()> {
    let topic = opts.required("topic")?;
    let group = opts.get("group");
    let route = opts.name_server()?.topic_route(topic)?;
    let clients = route_clients(topic, &route)?;
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| q.perm & 4 != 0)
        .flat_map(|q| (0..q.read_queue_nums.max(0)).map(move |id| MessageQueue::new(topic, q.broker_name.clone(), id)))
        .collect();
    queues.sort_by(|a, b| (&a.broker_name, a.queue_id).cmp(&(&b.broker_name, b.queue_id)));
    emit("broker\tqueue_id\tmin\tmax\tconsumer\tlag")?;
    for q in &queues {
        let Some(client) = clients.get(&q.broker_name) else { continue };
        let (min, max) = (client.min_offset(q)?, client.max_offset(q)?);
        let consumer = match group {
            Some(g) => client.query_consumer_offset(g, q)?,
            None => None,
        };
        let (consumer, lag) = match consumer {
            Some(c) => (c.to_string(), (max - c).max(0).to_string()),
            None => ("-".to_string(), "-".to_string()),
        };
        emit(&format!("{}\t{}\t{min}\t{max}\t{consumer}\t{lag}", q.broker_name, q.queue_id))?;
    }
    Ok(())
}

fn cmd_create_topic(opts: &Opts) -> Out<()> {
    let topic = opts.required("topic")?;
    let mut config = TopicConfig::new(topic);
    if let Some(n) = opts.number::<i32>("queues", 1)? {
        if n > 1024 {
            return usage("--queues must be at most 1024");
        }
        config = config.queues(n);
    }
    if let Some(p) = opts.number::<i32>("perm", 0)? {
        if p & !6 != 0 || p == 0 {
            return usage("--perm is 6 (read and write), 4 (read) or 2 (write)");
        }
        config = config.perm(p);
    }
    config.order = opts.flag("order");
    if opts.flag("broker") && opts.flag("cluster") {
        return usage("--broker and --cluster exclude each other");
    }
    let wait = opts.seconds("wait")?.unwrap_or(Duration::from_secs(30));
    let ns = opts.name_server()?;
    let mut created: Vec<String> = match opts.get("broker") {
        Some(addr) => {
            ns.create_topic_on_broker(addr, &config)?;
            let info = ns.cluster_info()?;
            let name = info
                .broker_addr_table
                .values()
                .find(|b| b.broker_addrs.values().any(|a| a == addr))
                .map_or_else(|| addr.to_string(), |b| b.broker_name.clone());
            vec![name]
        }
        None => ns.create_topic(opts.get("cluster").unwrap_or("DefaultCluster"), &config)?,
    };
    created.sort();
    // Brokers register new topics with the name server on their next
    // heartbeat; wait (bounded) until the route lists all of them.
    let deadline = Instant::now() + wait;
    while !wait.is_zero() {
        let listed = ns.topic_route(topic).ok().is_some_and(|r| {
            created.iter().all(|b| r.queue_datas.iter().any(|q| &q.broker_name == b) || b.contains(':'))
        });
        if listed {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Fail::Runtime(format!(
                "topic {topic} created on {created:?}, but the name server did not list it within {wait:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    created.iter().try_for_each(|b| emit(b))
}

fn cmd_bench(opts: &Opts) -> Out<()> {
    let topic = opts.required("topic")?.to_string();
    let count = opts.number::<u64>("count", 1)?.unwrap_or(10_000);
    let threads = opts.number::<u64>("threads", 1)?.unwrap_or(4);
    if threads > 1024 {
        return usage("--threads must be at most 1024");
    }
    let size = opts.number::<usize>("size", 0)?.unwrap_or(128);
    let producer = Arc::new(producer(opts, "rmq_bench")?);
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut progress = Progress::new(opts, "bench", Some(count));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..threads {
        let n = count / threads + u64::from(t < count % threads);
        let (producer, sent, errors, topic) =
            (Arc::clone(&producer), Arc::clone(&sent), Arc::clone(&errors), topic.clone());
        let handle = std::thread::Builder::new()
            .name(format!("rmq-bench-{t}"))
            .spawn(move || {
                let mut latencies = Vec::with_capacity(n as usize);
                let msg = Message::new(topic, vec![b'x'; size]);
                for _ in 0..n {
                    let t0 = Instant::now();
                    match producer.send(&msg) {
                        Ok(_) => {
                            latencies.push(t0.elapsed());
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 10 {
                                eprintln!("\rrmq: send failed: {e}");
                            }
                        }
                    }
                }
                latencies
            })
            .map_err(|e| Fail::Runtime(format!("cannot start a thread: {e}")))?;
        handles.push(handle);
    }
    while handles.iter().any(|h| !h.is_finished()) {
        progress.tick(sent.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(count as usize);
    for h in handles {
        latencies.extend(h.join().map_err(|_| Fail::Runtime("a bench thread panicked".into()))?);
    }
    let seconds = start.elapsed().as_secs_f64();
    let (ok, failed) = (sent.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    progress.finish(ok, failed);
    producer.shutdown();
    latencies.sort();
    let pct = |p: f64| -> u128 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_micros()
    };
    emit(&format!(
        "sent={ok} errors={failed} seconds={seconds:.3} rate={:.0} p50_us={} p99_us={} p999_us={} max_us={}",
        ok as f64 / seconds.max(1e-9),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    ))?;
    if failed > 0 {
        return Err(Fail::Runtime(format!("{failed} of {count} sends failed")));
    }
    Ok(())
}
