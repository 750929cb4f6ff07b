#!/usr/bin/env bash
# Instructions the server spends per request, counted by callgrind (which
# machine load does not change): the server runs under valgrind, a load
# client drives it, counting starts once setup is over and stops at the end.
# Requests are counted from the calls of the engine's on_publish (for
# publish-fanout) or on_subscribe (otherwise) in the profile itself.
#
#   bench/callgrind.sh STORE WORKLOAD SETUP_SECS MEASURE_SECS [bench flags...]
#   bench/callgrind.sh sqlite publish-fanout 25 15 --lines 1000 --watchers 10 --outstanding 40 --sockets 16
#
# STORE is sqlite or memory. SETUP_SECS must cover the client's setup phase
# under valgrind (tens of seconds for 10 000 watchers). Prints the total,
# the requests and the top functions by their own instructions per request;
# the profile stays in the work directory it names.
set -euo pipefail

[ $# -ge 4 ] || { sed -n 2,13p "$0"; exit 2; }
STORE=$1 WORKLOAD=$2 SETUP=$3 MEASURE=$4
shift 4
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is needed" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p sharedline --quiet)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/sharedline
WORK=$(mktemp -d /tmp/sharedline-callgrind.XXXXXX)
PORT=${PORT:-26400}
cat >"$WORK/sharedline.toml" <<T
[limits]
max_subscriptions = 2000000
max_subscriptions_per_line = 200000
max_subscriptions_per_source = 2000000
T
store=$STORE
[ "$STORE" = sqlite ] && store="sqlite:$WORK/sharedline.db"
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" --dump-instr=no \
    "$BIN" --config "$WORK/sharedline.toml" --sip "udp:127.0.0.1:$PORT" --store "$store" --log warn \
    >"$WORK/server.out" 2>"$WORK/server.err" &
SP=$!
trap 'kill -INT $SP 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do grep -q listening "$WORK/server.out" && break; sleep 0.3; done
(sleep "$SETUP"; callgrind_control -z "$SP" >/dev/null) &
"$BIN" bench "$WORKLOAD" --target "udp:127.0.0.1:$PORT" --duration "$((SETUP + MEASURE))" \
    --setup-timeout "$((SETUP * 4))" "$@" >"$WORK/bench.txt"
callgrind_control -d "$SP" >/dev/null
kill -INT "$SP"; wait "$SP" || true
trap - EXIT
grep -E "^(requests/s|NOTIFYs expected)" "$WORK/bench.txt"
want=on_subscribe
[ "$WORKLOAD" = publish-fanout ] && want=on_publish
python3 - "$WORK/callgrind.out.1" "$want" <<'PY'
import collections, re, sys
path, want = sys.argv[1], sys.argv[2]
names, own, calls = {}, collections.Counter(), collections.Counter()
fn = callee = None
skip = False
for line in open(path):
    line = line.rstrip("\n")
    m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line)
    if m:
        if m.group(3):
            names[m.group(2)] = m.group(3)
        if m.group(1) == "fn":
            fn = m.group(2)
        else:
            callee = m.group(2)
        continue
    m = re.match(r"calls=(\d+)", line)
    if m:
        calls[callee] += int(m.group(1))
        skip = True
        continue
    m = re.match(r"^[+-]?\d+ (\d+)$", line)
    if m and fn:
        if skip:
            skip = False
            continue
        own[names.get(fn, fn)] += int(m.group(1))
pattern = re.compile(r"Engine>::%s$" % want)
requests = sum(n for k, n in calls.items() if pattern.search(names.get(k, "")))
total = sum(own.values())
if not requests:
    sys.exit("no %s calls in the profile: was SETUP_SECS too long?" % want)
print(f"instructions {total:,} over {requests:,} requests ({want}): {total / requests:,.0f} per request")
for name, n in own.most_common(15):
    print(f"{n / requests:10,.0f}  {name[:110]}")
PY
echo "profile: $WORK/callgrind.out.1"
