#!/usr/bin/env bash
# sharedline vs Kamailio's sca module vs the bare responder, on this machine,
# in one run. Installs Kamailio from Debian's packages if it is missing,
# builds sharedline in release, pins every server to CPU 0 and the load
# client to CPU 1, runs
#   publish-fanout  (udp, tcp) against sharedline and (udp) the bare responder,
#                   then (udp) against sharedline and the responder at half
#                   sharedline's peak rate (p99)
#   seize-fanout    (udp, tcp) against sharedline and Kamailio
#   subscribe-churn (udp, tcp) against sharedline and Kamailio
#   hold            (udp) against sharedline: memory per subscription, restart
# each against a freshly started server, stops everything it started, and
# prints one table. sharedline runs twice: with its SQLite store (every
# SUBSCRIBE/PUBLISH durable before it is answered) and with the memory store
# (closer to Kamailio's sca, which writes subscribers to its database only
# every db_update_interval seconds).
#
# Environment: DURATION (seconds per run, default 10), HOLD (subscriptions
# held, default 100000; 0 skips hold), RESULTS (JSON lines file, default
# bench/results/compare-DATE.jsonl), CARGO_TARGET_DIR, BASE_PORT (default 25060),
# KAM_SHM (Kamailio's shared memory in MiB, default 6144).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
HOLD=${HOLD:-100000}
BASE_PORT=${BASE_PORT:-25060}
# Kamailio's shared memory in MiB: with 2048 its sca ran out during
# seize-fanout on the session 4 host and dropped NOTIFYs.
KAM_SHM=${KAM_SHM:-6144}
SL_PORT=$BASE_PORT
KAM_PORT=$((BASE_PORT + 10))
RESP_PORT=$((BASE_PORT + 20))
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$ROOT/bench/results"
RESULTS=${RESULTS:-$ROOT/bench/results/compare-$STAMP.jsonl}
WORK=$(mktemp -d /tmp/sharedline-bench.XXXXXX)
KAM_MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules
SERVER_CPU=0
CLIENT_CPU=1

log() { echo "compare: $*" >&2; }

# --- Install what is missing -------------------------------------------------
need_install=()
command -v kamailio >/dev/null 2>&1 || need_install+=(kamailio)
command -v taskset >/dev/null 2>&1 || need_install+=(util-linux)
if ((${#need_install[@]})); then
    log "installing ${need_install[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
if [ ! -f "$KAM_MODULES/sca.so" ]; then
    KAM_MODULES=$(dirname "$(find /usr/lib -name sca.so -path '*kamailio*' | head -1)")
fi
[ -f "$KAM_MODULES/sca.so" ] || { log "kamailio's sca.so not found"; exit 1; }
DBTEXT_TEMPLATE=/usr/share/kamailio/dbtext/kamailio
[ -f "$DBTEXT_TEMPLATE/sca_subscriptions" ] || { log "no db_text template for sca_subscriptions"; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
    log "needs 2 CPUs (server on CPU 0, client on CPU 1)"
    exit 1
fi

# --- Build --------------------------------------------------------------------
log "building sharedline (release)"
(cd "$ROOT" && cargo build --release -p sharedline --quiet)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/sharedline

# --- Start / stop ---------------------------------------------------------------
STARTED=()   # pids (negative: process groups) to stop on exit

stop() {
    local target=$1
    kill -TERM -- "$target" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 -- "$target" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "$target" 2>/dev/null || true
}

cleanup() {
    local t
    for t in "${STARTED[@]}"; do stop "$t"; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Wait until something listens on UDP port $1 (and TCP if $2 = tcp).
wait_port() {
    local port=$1 want_tcp=${2:-}
    for _ in $(seq 1 100); do
        if ss -Hlnu "sport = :$port" | grep -q . &&
            { [ -z "$want_tcp" ] || ss -Hlnt "sport = :$port" | grep -q .; }; then
            return 0
        fi
        sleep 0.1
    done
    log "nothing listens on port $port"
    return 1
}

# Wait until nothing listens on port $1 any more (a stopped server's).
wait_free() {
    for _ in $(seq 1 100); do
        ss -Hlnu "sport = :$1" | grep -q . || ss -Hlnt "sport = :$1" | grep -q . || return 0
        sleep 0.1
    done
}

cat >"$WORK/sharedline.toml" <<EOF
# The load client's phones all share 127.0.0.1: lift the per-source and
# per-line quotas that protect a real deployment.
[limits]
max_subscriptions = 2000000
max_subscriptions_per_line = 200000
max_subscriptions_per_source = 2000000
EOF

SERVER_PID=
SERVER_FLAG=

# start_server NAME: sharedline | sharedline-memory | kamailio | responder
start_server() {
    local name=$1
    case $name in
    sharedline | sharedline-memory)
        local store="sqlite:$WORK/sharedline.db"
        [ "$name" = sharedline-memory ] && store=memory
        rm -f "$WORK"/sharedline.db*
        SL_CMD="taskset -c $SERVER_CPU $BIN --config $WORK/sharedline.toml --sip udp:127.0.0.1:$SL_PORT --sip tcp:127.0.0.1:$SL_PORT --store $store --log warn"
        $SL_CMD >"$WORK/$name.out" 2>>"$WORK/$name.err" &
        SERVER_PID=$!
        SERVER_FLAG="--server-pid $SERVER_PID"
        STARTED+=("$SERVER_PID")
        wait_port "$SL_PORT" tcp
        ;;
    kamailio)
        # A fresh, empty subscription table each time: sca flushes its
        # subscribers to the database on exit and reloads them at start.
        rm -rf "$WORK/kamailio-db" "$WORK/kamailio-run"
        mkdir -p "$WORK/kamailio-db" "$WORK/kamailio-run"
        cp "$DBTEXT_TEMPLATE/version" "$DBTEXT_TEMPLATE/sca_subscriptions" "$WORK/kamailio-db/"
        setsid taskset -c $SERVER_CPU kamailio -f "$ROOT/bench/kamailio/kamailio.cfg" \
            -DD -E -m "$KAM_SHM" -M 32 -L "$KAM_MODULES" -Y "$WORK/kamailio-run" \
            -l "udp:127.0.0.1:$KAM_PORT" -l "tcp:127.0.0.1:$KAM_PORT" \
            -A "DBURL=\"text://$WORK/kamailio-db\"" \
            >"$WORK/kamailio.out" 2>>"$WORK/kamailio.err" &
        SERVER_PID=$!
        # Kamailio forks its workers: count the whole process group.
        SERVER_FLAG="--server-pgid $SERVER_PID"
        STARTED+=("-$SERVER_PID")
        wait_port "$KAM_PORT" tcp
        ;;
    responder)
        taskset -c $SERVER_CPU "$BIN" bench responder --listen "udp:127.0.0.1:$RESP_PORT" \
            >"$WORK/responder.out" 2>>"$WORK/responder.err" &
        SERVER_PID=$!
        SERVER_FLAG="--server-pid $SERVER_PID"
        STARTED+=("$SERVER_PID")
        wait_port "$RESP_PORT"
        ;;
    esac
    sleep 0.5
}

stop_server() {
    local name=$1
    if [ "$name" = kamailio ]; then stop "-$SERVER_PID"; else stop "$SERVER_PID"; fi
    wait "$SERVER_PID" 2>/dev/null || true
    case $name in
    kamailio) wait_free "$KAM_PORT" ;;
    responder) wait_free "$RESP_PORT" ;;
    *) wait_free "$SL_PORT" ;;
    esac
}

port_of() {
    case $1 in
    kamailio) echo "$KAM_PORT" ;;
    responder) echo "$RESP_PORT" ;;
    *) echo "$SL_PORT" ;;
    esac
}

FAILED=0
# bench NAME WORKLOAD TRANSPORT FLAGS...
bench() {
    local name=$1 workload=$2 transport=$3
    shift 3
    start_server "$name"
    log "$workload over $transport against $name"
    # shellcheck disable=SC2086 # SERVER_FLAG is two words on purpose
    if ! taskset -c $CLIENT_CPU "$BIN" bench "$workload" \
        --target "$transport:127.0.0.1:$(port_of "$name")" --label "$name" \
        $SERVER_FLAG --results "$RESULTS" "$@" >"$WORK/$name-$workload-$transport.txt"; then
        FAILED=1
        log "FAILED: $workload over $transport against $name (see $WORK/$name-$workload-$transport.txt)"
    fi
    stop_server "$name"
}

FANOUT=(--lines 100 --watchers 20 --outstanding 5 --sockets 16 --duration "$DURATION")
# The issue's shape for publish-fanout: 1000 lines x 10 watchers.
PUBLISH=(--lines 1000 --watchers 10 --outstanding 40 --sockets 16 --duration "$DURATION")
CHURN=(--lines 200 --outstanding 50 --sockets 16 --duration "$DURATION")

for t in udp tcp; do
    bench sharedline publish-fanout $t "${PUBLISH[@]}"
    bench sharedline-memory publish-fanout $t "${PUBLISH[@]}"
done
bench responder publish-fanout udp "${PUBLISH[@]}"
# Latency at half the peak: the same shape, open loop, at half the
# requests/s the closed-loop UDP run above reached.
PEAK=$(grep '"workload":"publish-fanout","transport":"udp","server":"sharedline"' "$RESULTS" |
    grep '"rate":null' | tail -1 | sed 's/.*"requests_per_s":\([0-9.]*\).*/\1/')
if [ -n "$PEAK" ]; then
    HALF=$(awk -v p="$PEAK" 'BEGIN { printf "%d", p / 2 }')
    bench sharedline publish-fanout udp --lines 1000 --watchers 10 --outstanding 1000 \
        --sockets 16 --duration "$DURATION" --rate "$HALF"
    # The bare responder at the same rate: the latency this machine and this
    # client show for a server that does almost nothing.
    bench responder publish-fanout udp --lines 1000 --watchers 10 --outstanding 1000 \
        --sockets 16 --duration "$DURATION" --rate "$HALF"
fi
for w in seize-fanout; do
    for t in udp tcp; do
        bench sharedline $w $t "${FANOUT[@]}"
        bench sharedline-memory $w $t "${FANOUT[@]}"
        bench kamailio $w $t "${FANOUT[@]}"
    done
done
bench responder seize-fanout udp "${FANOUT[@]}"
for t in udp tcp; do
    bench sharedline subscribe-churn $t "${CHURN[@]}"
    bench sharedline-memory subscribe-churn $t "${CHURN[@]}"
    bench kamailio subscribe-churn $t "${CHURN[@]}"
done
bench responder subscribe-churn udp "${CHURN[@]}"

if [ "$HOLD" -gt 0 ]; then
    start_server sharedline
    log "hold $HOLD subscriptions against sharedline, then restart it"
    # The bench stops this server, starts it again with the same command
    # (same ports, same SQLite file), and stops the new one when done.
    # shellcheck disable=SC2086
    if ! taskset -c $CLIENT_CPU "$BIN" bench hold --target "udp:127.0.0.1:$SL_PORT" \
        --label sharedline $SERVER_FLAG --results "$RESULTS" \
        --subscriptions "$HOLD" --lines 200 --outstanding 200 --settle 40 \
        --restart-cmd "$SL_CMD" >"$WORK/sharedline-hold-udp.txt"; then
        FAILED=1
        log "FAILED: hold (see $WORK/sharedline-hold-udp.txt)"
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    wait_free "$SL_PORT"
fi

echo
echo "sharedline vs Kamailio sca vs bare responder — $(date -u +%Y-%m-%d), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "servers on CPU $SERVER_CPU, load client on CPU $CLIENT_CPU, ${DURATION}s per run; last column: sharedline's requests/s divided by the row's"
echo
"$BIN" bench table "$RESULTS"
if [ "$HOLD" -gt 0 ]; then
    echo
    grep '"workload":"hold"' "$RESULTS" | tail -1
fi
echo
echo "results: $RESULTS"
echo "logs and per-run tables: $WORK"
exit $FAILED
