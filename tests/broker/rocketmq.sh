#!/usr/bin/env bash
# Real Apache RocketMQ for the tests: a NameServer and two master brokers
# (broker-a, broker-b, cluster DefaultCluster) on 127.0.0.1.
#
#   tests/broker/rocketmq.sh start            # idempotent; prints `export ROCKETMQ_NAMESRV_ADDR=...`
#   tests/broker/rocketmq.sh stop             # stops what this script started (by PID)
#   tests/broker/rocketmq.sh status           # exit 0 when all three run
#   tests/broker/rocketmq.sh stop-broker NAME # kill -9, to simulate a crash
#   tests/broker/rocketmq.sh start-broker NAME
#   tests/broker/rocketmq.sh restart-broker NAME
#   (name server outage, slaves, the 5.x proxy: see "Name server outage,
#   replicas (slaves) and the 5.x proxy" below)
#   tests/broker/rocketmq.sh mqadmin ARGS...  # the release's mqadmin, -n set to this name server
#
# Usage: eval "$(tests/broker/rocketmq.sh start)"
#
# The jars of the pinned release (ROCKETMQ_VERSION, default below) come from
# Maven Central through `mvn` into ${XDG_CACHE_HOME:-~/.cache}/rocketmq-blocking/<version>.
# Runtime files (configs, stores, logs, PIDs) live in target/rocketmq-<version>/;
# the brokers' own logs are under .../home-<name>/logs/rocketmqlogs.
# broker-a answers in JSON, broker-b in the ROCKETMQ binary header.
# Ports: name server 19876; broker-a 20911 (also 20909 VIP, 20912 HA);
# broker-b 21911 (21909, 21912). ROCKETMQ_PORT_OFFSET (default 0) is added to
# each, so that two versions can run side by side, e.g.
#   ROCKETMQ_VERSION=4.9.7 ROCKETMQ_PORT_OFFSET=100 tests/run.sh --test foundation
#
# ROCKETMQ_ACL=1 starts the brokers with access control (see "ACL mode"
# below): ACL 2.0 on 5.x, ACL 1.0 (plain_acl.yml) on 4.x, an admin and a
# normal user; `start` / `env` then also print the ROCKETMQ_ACL_* variables
# that tests/acl.rs reads. Its runtime files live in target/rocketmq-<version>-acl/.
#   ROCKETMQ_ACL=1 ROCKETMQ_PORT_OFFSET=200 tests/run.sh --test acl
#
# ROCKETMQ_CONTROLLER=1 (5.x) starts controller mode instead (see "Controller
# mode" below): the controller inside the name server, and a master and a
# slave per broker name whose roles the controller decides. Its runtime files
# live in target/rocketmq-<version>-controller/.
set -euo pipefail

VERSION=${ROCKETMQ_VERSION:-5.5.0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/rocketmq-blocking/$VERSION
ACL=${ROCKETMQ_ACL:-0}
CONTROLLER=${ROCKETMQ_CONTROLLER:-0}
RUN=$ROOT/target/rocketmq-$VERSION$([ "$ACL" = 1 ] && echo -acl || true)$([ "$CONTROLLER" = 1 ] && echo -controller || true)
mkdir -p "$RUN"
RUN_AS_GIVEN=$RUN
RUN=$(cd -P "$RUN" && pwd)
OFFSET=${ROCKETMQ_PORT_OFFSET:-0}
NS_PORT=$((19876 + OFFSET))
NS_ADDR=127.0.0.1:$NS_PORT
BROKERS=(broker-a broker-b)
START_TIMEOUT=${ROCKETMQ_START_TIMEOUT:-180}

log() { printf '[rocketmq.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

port_of() {
  case "$1" in
    broker-a) echo $((20911 + OFFSET)) ;;
    broker-b) echo $((21911 + OFFSET)) ;;
    broker-a-s) echo $((20921 + OFFSET)) ;; # slaves (ROCKETMQ_SLAVES=1)
    broker-b-s) echo $((21921 + OFFSET)) ;;
    *) die "unknown broker '$1' (known: ${BROKERS[*]} broker-a-s broker-b-s)" ;;
  esac
}

fetch_jars() { maven_fetch "$CACHE/lib" rocketmq-namesrv rocketmq-broker rocketmq-tools; }

# maven_fetch DIR ARTIFACT...: the runtime jars of org.apache.rocketmq:ARTIFACT:$VERSION
# (and their dependencies) into DIR, once.
maven_fetch() {
  local dir=$1 a deps=""
  shift
  [ -f "$dir/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
  local pom=$CACHE/pom-$(basename "$dir")
  mkdir -p "$pom"
  log "fetching Apache RocketMQ $VERSION jars ($*) with Maven into $dir"
  for a in "$@"; do
    deps+="    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>$a</artifactId><version>$VERSION</version></dependency>
"
  done
  cat >"$pom/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>rocketmq-blocking.tests</groupId>
  <artifactId>rocketmq-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$deps  </dependencies>
</project>
POM
  rm -rf "$dir"
  (cd "$pom" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$dir" -DincludeScope=runtime >&2) \
    || die "mvn could not fetch $* $VERSION"
  touch "$dir/.complete"
}

# JVM flags (into the array OPTS): small heaps, and the JDK internals the
# store touches on Java 9+.
java_opts() {
  local name=$1
  OPTS=(-server -Xms256m -Xmx512m -XX:MaxDirectMemorySize=512m -XX:+UseG1GC \
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED \
    --add-exports java.base/jdk.internal.ref=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED \
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
    -Duser.home="$RUN/home-$name" -Drocketmq.home.dir="$RUN/home-$name" \
    -Drocketmq.broker.diskSpaceWarningLevelRatio=0.99 -Drocketmq.broker.diskSpaceCleanForciblyRatio=0.98 \
    -cp "$CACHE/lib/*")
  # broker-b answers with the ROCKETMQ binary header, broker-a with JSON,
  # so the tests meet both encodings from real brokers.
  if [ "$name" = broker-b ]; then OPTS+=(-Drocketmq.serialize.type=ROCKETMQ); fi
}

# A PID counts as ours only while its command line names our config file,
# so a stale PID file never makes this script signal someone else's process.
pid_alive() {
  [ -f "$RUN/$1.pid" ] || return 1
  local args
  args=$(ps -ww -o args= -p "$(cat "$RUN/$1.pid")" 2>/dev/null) || return 1
  [[ $args == *" -c $RUN/$1.conf"* || $args == *" -c $RUN_AS_GIVEN/$1.conf"* ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 4.x brokers and name servers exit unless $ROCKETMQ_HOME/conf has their
# logback configuration (5.x ships it inside the jars): one file appender.
write_logback() { # file log-file
  cat >"$1" <<XML
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$2</file>
    <encoder><pattern>%d{yyy-MM-dd HH:mm:ss,SSS} %p %t - %m%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
XML
}

write_configs() {
  mkdir -p "$RUN"
  # bindAddress keeps 5.x on loopback (4.x ignores the key and binds 0.0.0.0).
  printf 'listenPort=%s\nbindAddress=127.0.0.1\n' "$NS_PORT" >"$RUN/namesrv.conf"
  mkdir -p "$RUN/home-namesrv/conf"
  write_logback "$RUN/home-namesrv/conf/logback_namesrv.xml" "$RUN/home-namesrv/logs/rocketmqlogs/namesrv.log"
  local b port
  for b in "${BROKERS[@]}"; do
    port=$(port_of "$b")
    mkdir -p "$RUN/store-$b" "$RUN/home-$b/conf"
    write_logback "$RUN/home-$b/conf/logback_broker.xml" "$RUN/home-$b/logs/rocketmqlogs/broker.log"
    cat >"$RUN/$b.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=$b
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=$NS_ADDR
brokerIP1=127.0.0.1
brokerIP2=127.0.0.1
listenPort=$port
bindAddress=127.0.0.1
storePathRootDir=$RUN/store-$b
storePathCommitLog=$RUN/store-$b/commitlog
mappedFileSizeCommitLog=67108864
mappedFileSizeConsumeQueue=600000
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
enablePropertyFilter=true
filterSupportRetry=true
# A short transaction check-back cycle for the tests. 5.x writes the "done"
# marks of committed / rolled-back half messages in batches (every
# transactionOpBatchInterval, default 3 s); a check interval shorter than
# that would ask the producer again about messages it already resolved.
transactionCheckInterval=2000
transactionTimeOut=1000
transactionOpBatchInterval=200
diskMaxUsedSpaceRatio=95
diskSpaceWarningLevelRatio=99
diskSpaceCleanForciblyRatio=98
# (5.x caps the warning level at 90 %: a disk fuller than that refuses writes.)
waitTimeMillsInSendQueue=3000
osPageCacheBusyTimeOutMills=5000
CONF
  done
  if [ "$ACL" = 1 ]; then acl_write_configs; fi
}

# The release's own admin tool against this cluster (in ACL mode it signs
# with the admin's credentials from home-tools/conf/tools.yml).
run_mqadmin() {
  fetch_jars
  # 4.x reads its logback configuration from rocketmq.home.dir/conf.
  mkdir -p "$RUN/home-tools/conf"
  [ -f "$RUN/home-tools/conf/logback_tools.xml" ] ||
    write_logback "$RUN/home-tools/conf/logback_tools.xml" "$RUN/home-tools/logs/tools.log"
  ROCKETMQ_HOME="$RUN/home-tools" java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Drocketmq.home.dir="$RUN/home-tools" -cp "$CACHE/lib/*" \
    org.apache.rocketmq.tools.command.MQAdminStartup "$@" -n "$NS_ADDR"
}

# ---- ACL mode (ROCKETMQ_ACL=1) ---------------------------------------------
# Users: an admin (5.x: the initial super user, also the brokers' inner
# client; 4.x: admin: true) and a normal user who may publish to and
# subscribe from ACL_TOPIC only, and subscribe with ACL_GROUP only. No IP
# whitelist anywhere (4.x lists 10.10.103.* and 192.168.0.* by default;
# this file lists none), so every request from 127.0.0.1 is checked.
ACL_ADMIN=acl-admin
ACL_ADMIN_SECRET=acl-admin-secret-1
ACL_USER=acl-user
ACL_USER_SECRET=acl-user-secret-1
ACL_TOPIC=acl-topic
ACL_GROUP=acl-group

acl_major() { echo "${VERSION%%.*}"; }

# Appends the access-control keys to each broker's config (called by write_configs).
acl_write_configs() {
  local b
  for b in "${BROKERS[@]}"; do
    if [ "$(acl_major)" -ge 5 ]; then
      cat >>"$RUN/$b.conf" <<CONF
# ACL 2.0: users and policies in RocksDB under the store's config/ directory.
authenticationEnabled=true
authenticationProvider=org.apache.rocketmq.auth.authentication.provider.DefaultAuthenticationProvider
authenticationMetadataProvider=org.apache.rocketmq.auth.authentication.provider.LocalAuthenticationMetadataProvider
authorizationEnabled=true
authorizationProvider=org.apache.rocketmq.auth.authorization.provider.DefaultAuthorizationProvider
authorizationMetadataProvider=org.apache.rocketmq.auth.authorization.provider.LocalAuthorizationMetadataProvider
initAuthenticationUser={"username":"$ACL_ADMIN","password":"$ACL_ADMIN_SECRET"}
innerClientAuthenticationCredentials={"accessKey":"$ACL_ADMIN","secretKey":"$ACL_ADMIN_SECRET"}
CONF
    else
      printf 'aclEnable=true\n' >>"$RUN/$b.conf"
      cat >"$RUN/home-$b/conf/plain_acl.yml" <<YML
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: $ACL_ADMIN
    secretKey: $ACL_ADMIN_SECRET
    whiteRemoteAddress:
    admin: true
  - accessKey: $ACL_USER
    secretKey: $ACL_USER_SECRET
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - $ACL_TOPIC=PUB|SUB
    groupPerms:
      - $ACL_GROUP=SUB
YML
    fi
  done
}

# Writes the admin's credentials for mqadmin (home-tools/conf/tools.yml);
# 5.x: creates the normal user and its policies with the release's mqadmin.
acl_create_users() {
  mkdir -p "$RUN/home-tools/conf"
  printf 'accessKey: %s\nsecretKey: %s\n' "$ACL_ADMIN" "$ACL_ADMIN_SECRET" >"$RUN/home-tools/conf/tools.yml"
  [ "$(acl_major)" -ge 5 ] || return 0
  local out
  mqadmin() {
    out=$(run_mqadmin "$@" -c DefaultCluster 2>&1) && [[ $out == *success* ]] || { log "mqadmin $1 failed: $out"; return 1; }
  }
  mqadmin createUser -u "$ACL_USER" -p "$ACL_USER_SECRET" -t Normal || die "cannot create the ACL user"
  mqadmin createAcl -s "User:$ACL_USER" -r "Topic:$ACL_TOPIC" -a Pub,Sub,Get -d Allow || die "cannot create the topic ACL"
  mqadmin createAcl -s "User:$ACL_USER" -r "Group:$ACL_GROUP" -a Sub,Get -d Allow || die "cannot create the group ACL"
}

# The variables tests/acl.rs reads.
acl_env() {
  [ "$ACL" = 1 ] || return 0
  echo "export ROCKETMQ_ACL=1"
  echo "export ROCKETMQ_ACL_ADMIN=$ACL_ADMIN ROCKETMQ_ACL_ADMIN_SECRET=$ACL_ADMIN_SECRET"
  echo "export ROCKETMQ_ACL_USER=$ACL_USER ROCKETMQ_ACL_USER_SECRET=$ACL_USER_SECRET"
  echo "export ROCKETMQ_ACL_TOPIC=$ACL_TOPIC ROCKETMQ_ACL_GROUP=$ACL_GROUP"
}
# ---- end of ACL mode ------------------------------------------------------

wait_until() { # seconds description command...
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  local rc
  while true; do
    rc=0
    "$@" || rc=$?
    [ $rc -eq 0 ] && return 0
    [ $rc -eq 2 ] && return 1
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
}

show_failure() {
  local name=$1
  log "---- tail of $RUN/$name.out"
  tail -n 40 "$RUN/$name.out" >&2 2>/dev/null || true
  local f="$RUN/home-$name/logs/rocketmqlogs/$( [ "$name" = namesrv ] && echo namesrv || echo broker).log"
  [ -f "$f" ] && { log "---- tail of $f"; tail -n 40 "$f" >&2; }
  log "---- disk usage"
  df -h "$RUN" >&2 || true
}

# Right after `nohup java ... &` the PID is still the forked shell, whose
# command line pid_alive does not recognise; wait (bounded) until it runs
# java, so a busy machine does not make a fresh start look like a crash.
await_exec() { # name
  local pid deadline=$((SECONDS + 10))
  pid=$(cat "$RUN/$1.pid")
  while kill -0 "$pid" 2>/dev/null && [[ $(ps -ww -o args= -p "$pid" 2>/dev/null) != java* ]]; do
    [ $SECONDS -lt $deadline ] || return 0
    sleep 0.05
  done
}

start_namesrv() {
  if pid_alive namesrv; then return 0; fi
  port_open "$NS_PORT" && die "port $NS_PORT is taken by a process this script did not start"
  mkdir -p "$RUN/home-namesrv"
  java_opts namesrv
  ROCKETMQ_HOME="$RUN/home-namesrv" nohup java "${OPTS[@]}" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$RUN/namesrv.conf" >"$RUN/namesrv.out" 2>&1 &
  echo $! >"$RUN/namesrv.pid"
  await_exec namesrv
  wait_until "$START_TIMEOUT" "name server port" alive_and namesrv port_open "$NS_PORT" || { show_failure namesrv; die "name server did not start"; }
}

# The name server's cluster info, asked with one raw GET_BROKER_CLUSTER_INFO
# (code 106) frame over bash's /dev/tcp: no JVM start per poll.
cluster_info() {
  local hdr='{"code":106,"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":0}'
  timeout 5 bash -c '
    be32() { printf "\\x%02x\\x%02x\\x%02x\\x%02x" $(($1>>24&255)) $(($1>>16&255)) $(($1>>8&255)) $(($1&255)); }
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "%b%b%s" "$(be32 $((${#2}+4)))" "$(be32 ${#2})" "$2" >&3
    len=$(head -c 4 <&3 | od -An -tu1 | awk "{print \$1*16777216+\$2*65536+\$3*256+\$4}")
    head -c "$len" <&3 | tr -d "\000"' _ "$NS_PORT" "$hdr" 2>/dev/null || true
}

registered() { # broker names... : all listed by the name server with their address
  local info b
  info=$(cluster_info)
  for b in "$@"; do
    [[ $info == *"\"127.0.0.1:$(port_of "$b")\""* ]] || return 1
  done
}

booted() { grep -q "boot success" "$RUN/$1.out" 2>/dev/null; }

# alive_and NAME command...: fails at once (exit 2 ends wait_until) when NAME died.
alive_and() {
  local name=$1
  shift
  pid_alive "$name" || return 2
  "$@"
}

launch_broker() {
  local name=$1
  if pid_alive "$name"; then return 0; fi
  local port
  port=$(port_of "$name")
  port_open "$port" && die "port $port is taken by a process this script did not start"
  : >"$RUN/$name.out"
  java_opts "$name"
  ROCKETMQ_HOME="$RUN/home-$name" nohup java "${OPTS[@]}" \
    org.apache.rocketmq.broker.BrokerStartup -c "$RUN/$name.conf" >"$RUN/$name.out" 2>&1 &
  echo $! >"$RUN/$name.pid"
  await_exec "$name"
}

await_broker() {
  local name=$1
  wait_until "$START_TIMEOUT" "$name boot" alive_and "$name" booted "$name" || { show_failure "$name"; die "$name did not boot"; }
}

stop_pid() { # name signal
  local name=$1 sig=$2 pid
  [ -f "$RUN/$name.pid" ] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 0.1
    done
  fi
  rm -f "$RUN/$name.pid"
}

cmd_start() {
  fetch_jars
  if any_alive namesrv "${BROKERS[@]}" broker-a-s broker-b-s; then
    # Something runs (e.g. the name server after stop-namesrv): start only
    # what is missing, keeping the stores.
    replicas_match || die "ROCKETMQ_SLAVES=${ROCKETMQ_SLAVES:-0} but the running cluster was started otherwise: use stop, then start"
    resume_members
  else
    fresh_start
  fi
  proxy_start_if_asked
  start_exports
}

# ---- Controller mode (ROCKETMQ_CONTROLLER=1, 5.x) ---------------------------
# The name server also runs the controller (enableControllerInNamesrv, a
# one-node DLedger group on 127.0.0.1:30000+offset, its store under
# store-controller so a fresh start wipes it). Every broker runs with
# enableControllerMode=true: broker-a (20911) and broker-a-s (20921) form
# broker-a, likewise broker-b / broker-b-s. Both start as SLAVE with
# brokerId -1; the controller assigns ids (1, 2, ...) and elects a master,
# which registers with the name server as id 0 (the slave under its
# assigned id). broker-a and broker-b start first and are elected; their
# partners start once that shows in the name server. allAckInSyncStateSet:
# a send is acknowledged only when every replica in the sync state set has
# it, so the replica the controller promotes has every acknowledged message.
# When a master stops, the controller notices when its heartbeats stop
# (controllerHeartBeatTimeoutMills, 10 s) and elects the slave; the old
# master, restarted (start-broker NAME), rejoins as a slave. The names stay
# the processes' names, not their roles.
CONTROLLER_PORT=$((30000 + OFFSET))

controller_write_configs() {
  [[ $VERSION == 4.* ]] && die "controller mode exists from RocketMQ 5.0 on (ROCKETMQ_VERSION=$VERSION)"
  [ "$ACL" = 1 ] && die "ROCKETMQ_CONTROLLER=1 and ROCKETMQ_ACL=1 are not combined"
  cat >>"$RUN/namesrv.conf" <<CONF
enableControllerInNamesrv=true
controllerType=DLedger
controllerDLegerGroup=harness
controllerDLegerPeers=n0-127.0.0.1:$CONTROLLER_PORT
controllerDLegerSelfId=n0
controllerStorePath=$RUN/store-controller
mappedFileSize=67108864
controllerThreadPoolNums=4
enableElectUncleanMaster=false
notifyBrokerRoleChanged=true
CONF
  local b
  rm -f "$RUN"/broker-?-s.conf
  for b in "${BROKERS[@]}"; do
    cat >>"$RUN/$b.conf" <<CONF
# controller mode
enableControllerMode=true
controllerAddr=127.0.0.1:$CONTROLLER_PORT
brokerId=-1
brokerRole=SLAVE
allAckInSyncStateSet=true
slaveReadEnable=true
CONF
    write_second_replica "$b" "# second replica of $b"
  done
  touch "$RUN/slaves.on" "$RUN/controller.on"
}

# The name server lists broker-a and broker-b (each registers once elected).
controller_await_masters() {
  wait_until 90 "election" registered "${BROKERS[@]}" || { show_failure namesrv; die "the controller elected no master"; }
}
# ---- end of controller mode -----------------------------------------------

fresh_start() {
  local t0=$SECONDS
  # A fresh start begins with empty stores, so every run starts alike.
  rm -rf "$RUN"/store-*
  write_configs
  write_ops_configs
  if [ "$CONTROLLER" = 1 ]; then controller_write_configs; fi
  start_namesrv
  local b
  # Masters first, then their slaves: four JVMs booting at once on two
  # cores take longer than one after the other.
  for b in "${BROKERS[@]}"; do launch_broker "$b"; done
  for b in "${BROKERS[@]}"; do await_broker "$b"; done
  # (controller mode: the first of a broker name to register is elected master)
  if [ "$CONTROLLER" = 1 ]; then controller_await_masters; fi
  for b in $(broker_members); do launch_broker "$b"; done
  for b in $(broker_members); do await_broker "$b"; done
  wait_until 60 "registration" registered $(broker_members) || { show_failure broker-a; die "brokers did not register"; }
  if [ "$ACL" = 1 ]; then acl_create_users; fi
  log "RocketMQ $VERSION up in $((SECONDS - t0)) s: name server $NS_ADDR, $(for b in $(broker_members); do printf '%s 127.0.0.1:%s, ' "$b" "$(port_of "$b")"; done)$([ "$ACL" = 1 ] && echo "ACL on")"
}

cmd_stop() {
  proxy_stop
  local b
  for b in "${BROKERS[@]}" broker-a-s broker-b-s; do stop_pid "$b" TERM; done
  stop_pid namesrv TERM
  log "stopped"
}

cmd_status() {
  local ok=0 n
  for n in namesrv $(broker_members); do
    if pid_alive "$n"; then log "$n running (pid $(cat "$RUN/$n.pid"))"; else log "$n not running"; ok=1; fi
  done
  if proxy_alive; then log "proxy running (pid $(cat "$RUN/proxy.pid"))"; fi
  return $ok
}

cmd_stop_broker() {
  port_of "$1" >/dev/null
  stop_pid "$1" 9
  log "$1 killed"
}

cmd_start_broker() {
  port_of "$1" >/dev/null
  pid_alive namesrv || die "name server is not running: use start"
  fetch_jars
  if pid_alive "$1"; then return 0; fi
  launch_broker "$1"
  await_broker "$1"
  wait_until 60 "registration" registered "$1" || { show_failure "$1"; die "$1 did not register"; }
  log "$1 started"
}

# ---------------------------------------------------------------------------
# Name server outage, replicas (slaves) and the 5.x proxy.
#
#   tests/broker/rocketmq.sh stop-namesrv     # kill -9 the name server (brokers keep running)
#   tests/broker/rocketmq.sh start-namesrv    # start it again, wait until the running brokers re-registered
#   ROCKETMQ_SLAVES=1 [ROCKETMQ_BROKER_ROLE=SYNC_MASTER] tests/broker/rocketmq.sh start
#       # also a slave per broker: broker-a-s (brokerId 1 of broker-a, port
#       # 20921, replicating from the master's HA port 20912) and broker-b-s
#       # (21921); masters ASYNC_MASTER unless ROCKETMQ_BROKER_ROLE says so;
#       # slaveReadEnable=true so consumers may read from the slaves. Stop or
#       # kill any one with stop-broker / start-broker NAME.
#   ROCKETMQ_PROXY=1 tests/broker/rocketmq.sh start   # (5.x) also the proxy, cluster mode
#   tests/broker/rocketmq.sh start-proxy | stop-proxy
#       # rocketmq-proxy (jars from Maven Central into .../<version>/proxy-lib),
#       # remoting port 18080, gRPC 18081 (plus the offset); `start` then also
#       # prints `export ROCKETMQ_PROXY_ADDR=127.0.0.1:18080`.
# ---------------------------------------------------------------------------
PROXY_PORT=$((18080 + OFFSET))
PROXY_GRPC_PORT=$((18081 + OFFSET))

any_alive() { local n; for n in "$@"; do pid_alive "$n" && return 0; done; return 1; }

slaves_on() { [ -f "$RUN/slaves.on" ]; }

# The brokers of this cluster: the masters, then the slaves if started with them.
broker_members() {
  local b
  for b in "${BROKERS[@]}"; do echo "$b"; done
  if slaves_on; then for b in "${BROKERS[@]}"; do echo "$b-s"; done; fi
}

# A running cluster started without slaves does not grow them on `start`.
replicas_match() { [ "${ROCKETMQ_SLAVES:-0}" != 1 ] || slaves_on; }

# write_second_replica NAME LINES: NAME-s.conf, NAME's config with LINES and
# its own port (port_of NAME-s) and store appended.
write_second_replica() {
  local b=$1 port
  port=$(port_of "$b-s")
  mkdir -p "$RUN/store-$b-s" "$RUN/home-$b-s/conf"
  write_logback "$RUN/home-$b-s/conf/logback_broker.xml" "$RUN/home-$b-s/logs/rocketmqlogs/broker.log"
  { cat "$RUN/$b.conf"; printf '%s\n' "$2"; cat <<CONF
listenPort=$port
storePathRootDir=$RUN/store-$b-s
storePathCommitLog=$RUN/store-$b-s/commitlog
CONF
  } >"$RUN/$b-s.conf"
}

# Options appended to the broker configs (the last value of a key wins):
# brokers re-register every 10 s (the least the broker allows) so a
# restarted name server knows them again quickly; the masters' role; the
# slaves' configs (a master's config with its own id, ports and store).
write_ops_configs() {
  local role=${ROCKETMQ_BROKER_ROLE:-ASYNC_MASTER} b
  case "$role" in ASYNC_MASTER | SYNC_MASTER) ;; *) die "ROCKETMQ_BROKER_ROLE must be ASYNC_MASTER or SYNC_MASTER, not $role" ;; esac
  rm -f "$RUN/slaves.on" "$RUN"/broker-?-s.conf
  for b in "${BROKERS[@]}"; do
    printf '# harness options\nregisterNameServerPeriod=10000\nbrokerRole=%s\n' "$role" >>"$RUN/$b.conf"
    # 5.x acknowledges a SYNC_MASTER send at once unless inSyncReplicas
    # counts the slave too (the default 1 is the master alone); 4.x has no
    # such key and always waits for the slave.
    if [ "$role" = SYNC_MASTER ]; then printf 'inSyncReplicas=2\n' >>"$RUN/$b.conf"; fi
    [ "${ROCKETMQ_SLAVES:-0}" = 1 ] || continue
    printf 'slaveReadEnable=true\n' >>"$RUN/$b.conf"
    # The slave learns its master's HA address (brokerIP2 and the master's
    # listen port + 1) from the name server when it registers (on 5.5.0,
    # with haMasterAddress set instead, its HA client tried "null").
    write_second_replica "$b" "# slave of $b
brokerId=1
brokerRole=SLAVE"
  done
  if [ "${ROCKETMQ_SLAVES:-0}" = 1 ]; then touch "$RUN/slaves.on"; fi
}

# Starts whatever is missing of a partly running cluster (stores kept).
resume_members() {
  local b missing=()
  pid_alive namesrv || start_namesrv
  for b in $(broker_members); do
    pid_alive "$b" && continue
    launch_broker "$b"
    missing+=("$b")
  done
  for b in "${missing[@]}"; do await_broker "$b"; done
  wait_until 60 "registration" registered $(broker_members) || { show_failure namesrv; die "brokers did not register"; }
}

start_exports() {
  echo "export ROCKETMQ_NAMESRV_ADDR=$NS_ADDR"
  acl_env
  if proxy_alive; then echo "export ROCKETMQ_PROXY_ADDR=127.0.0.1:$PROXY_PORT"; fi
  if slaves_on; then echo "export ROCKETMQ_SLAVES=1"; fi
  if [ -f "$RUN/controller.on" ]; then echo "export ROCKETMQ_CONTROLLER=1"; fi
}

cmd_stop_namesrv() {
  stop_pid namesrv 9
  log "name server killed"
}

cmd_start_namesrv() {
  fetch_jars
  if ! pid_alive namesrv; then
    [ -f "$RUN/namesrv.conf" ] || die "no name server config: use start"
    start_namesrv
  fi
  local b running=()
  for b in $(broker_members); do pid_alive "$b" && running+=("$b"); done
  if [ ${#running[@]} -gt 0 ]; then
    wait_until 60 "registration" registered "${running[@]}" || { show_failure namesrv; die "brokers did not register again"; }
  fi
  log "name server up, brokers registered: ${running[*]:-none}"
}

proxy_alive() {
  [ -f "$RUN/proxy.pid" ] || return 1
  local args
  args=$(ps -ww -o args= -p "$(cat "$RUN/proxy.pid")" 2>/dev/null) || return 1
  [[ $args == *" -pc $RUN/proxy.json"* || $args == *" -pc $RUN_AS_GIVEN/proxy.json"* ]]
}

fetch_proxy_jars() { maven_fetch "$CACHE/proxy-lib" rocketmq-proxy; }

proxy_started() { grep -q "rocketmq-proxy startup successfully" "$RUN/proxy.out" 2>/dev/null && port_open "$PROXY_PORT"; }
proxy_alive_and_started() { proxy_alive || return 2; proxy_started; }

cmd_start_proxy() {
  [[ $VERSION == 4.* ]] && die "the proxy exists from RocketMQ 5.0 on (ROCKETMQ_VERSION=$VERSION)"
  proxy_alive && return 0
  pid_alive namesrv || die "name server is not running: use start"
  port_open "$PROXY_PORT" && die "port $PROXY_PORT is taken by a process this script did not start"
  fetch_proxy_jars
  mkdir -p "$RUN/home-proxy"
  # Cluster mode: the proxy finds the brokers through the name server and
  # gives clients routes that name itself (remotingAccessAddr) as every broker.
  cat >"$RUN/proxy.json" <<JSON
{
  "rocketMQClusterName": "DefaultCluster",
  "proxyMode": "cluster",
  "proxyName": "proxy-$PROXY_PORT",
  "namesrvAddr": "$NS_ADDR",
  "localServeAddr": "127.0.0.1",
  "remotingAccessAddr": "127.0.0.1",
  "remotingListenPort": $PROXY_PORT,
  "grpcServerPort": $PROXY_GRPC_PORT,
  "enablePrintJstack": false
}
JSON
  local t0=$SECONDS
  : >"$RUN/proxy.out"
  RMQ_PROXY_HOME="$RUN/home-proxy" ROCKETMQ_HOME="$RUN/home-proxy" nohup java -server -Xms256m -Xmx512m \
    -XX:MaxDirectMemorySize=256m -XX:+UseG1GC \
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED \
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED --add-exports java.base/sun.nio.ch=ALL-UNNAMED \
    -Duser.home="$RUN/home-proxy" -Drocketmq.home.dir="$RUN/home-proxy" \
    -cp "$CACHE/proxy-lib/*" org.apache.rocketmq.proxy.ProxyStartup -pc "$RUN/proxy.json" -pm cluster \
    >"$RUN/proxy.out" 2>&1 &
  echo $! >"$RUN/proxy.pid"
  await_exec proxy
  wait_until "$START_TIMEOUT" "proxy start" proxy_alive_and_started || {
    log "---- tail of $RUN/proxy.out"
    tail -n 40 "$RUN/proxy.out" >&2 || true
    die "proxy did not start"
  }
  log "proxy up in $((SECONDS - t0)) s: remoting 127.0.0.1:$PROXY_PORT, gRPC $PROXY_GRPC_PORT"
}

proxy_start_if_asked() { if [ "${ROCKETMQ_PROXY:-0}" = 1 ]; then cmd_start_proxy; fi; }

proxy_stop() {
  # stop_pid signals only our PID file's process; the check keeps a stale
  # file from signalling someone else's process.
  if proxy_alive; then stop_pid proxy TERM; else rm -f "$RUN/proxy.pid"; fi
}
# ---------------------------------------------------------------------------

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  stop-broker) cmd_stop_broker "${2:?broker name}" ;;
  start-broker) cmd_start_broker "${2:?broker name}" ;;
  restart-broker) cmd_stop_broker "${2:?broker name}"; cmd_start_broker "$2" ;;
  stop-namesrv) cmd_stop_namesrv ;;
  start-namesrv) cmd_start_namesrv ;;
  start-proxy) cmd_start_proxy; start_exports ;;
  stop-proxy) proxy_stop; log "proxy stopped" ;;
  env) start_exports ;;
  # The release's own admin tool against this cluster, e.g.
  #   tests/broker/rocketmq.sh mqadmin consumerStatus -g my_group
  mqadmin) shift; run_mqadmin "$@" ;;
  *) die "usage: $0 start|stop|status|stop-broker NAME|start-broker NAME|restart-broker NAME|stop-namesrv|start-namesrv|start-proxy|stop-proxy|env|mqadmin ARGS..." ;;
esac
