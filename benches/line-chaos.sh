#!/usr/bin/env bash
# The waiting line's target run with the release binary, as an operator would
# run it (the same scenario as tests/line_chaos.rs): a throwaway redis-server,
# three `serve --no-worker` replicas and two `worker` processes, 200 agents in
# two of 20 holding queues each (benches/line-routing.toml), and `simulate`
# playing 1,250 callers (625 a second, all of them in flight: over 1,000 wait at
# once) and Twilio's REST
# side. One replica is killed with SIGKILL 4 s in. simulate checks, from
# outside, that nobody is overtaken, no agent is on two calls, no agent idles
# beside a waiting caller beyond a sweep and nobody is left in line after
# hanging up; it exits 1 otherwise. Then the connect latency (agent given to a
# waiting caller -> REST redirect answered) from the surviving processes.
#
#   benches/line-chaos.sh            # seed 20261126
#   SEED=7 CALLS=2000 benches/line-chaos.sh
#
# Every process it starts is stopped by its PID on exit; it never touches
# port 6379.
set -euo pipefail
cd "$(dirname "$0")/.."

SEED=${SEED:-20261126}
CALLS=${CALLS:-1250}
SWEEP_MS=250
# shellcheck source=support/processes.sh
source benches/support/processes.sh
start_redis
free_port
rest_port=$port
export SWITCHBOARD_REDIS_URL=$redis_url
export SWITCHBOARD_ROUTING=$PWD/benches/line-routing.toml
export SWITCHBOARD_SWEEP_INTERVAL_MS=$SWEEP_MS
export TWILIO_AUTH_TOKEN=line-chaos-auth-token
export SWITCHBOARD_ADMIN_TOKEN=line-chaos-admin-token
export TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef
export SWITCHBOARD_TWILIO_API_URL=http://127.0.0.1:$rest_port
export RUST_LOG=warn


# Each process's public URL is its own address, which simulate signs for.
start() {
  free_port
  SWITCHBOARD_LISTEN=127.0.0.1:$port SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:$port \
    "$bin" "$@" >"$work/$port.log" 2>&1 &
  pids+=($!)
  started_pid=$!
  disown "$started_pid" # killed on purpose: no "Killed" notice from bash
  started_url=http://127.0.0.1:$port
  wait_ready "$started_url"
}

replicas=()
replica_pids=()
for _ in 1 2 3; do
  start serve --no-worker
  replicas+=("$started_url")
  replica_pids+=("$started_pid")
done
workers=()
for _ in 1 2; do
  start worker
  workers+=("$started_url")
done

queues=$(seq -s, -f 'q%g' 0 19)
numbers=$(for i in $(seq 0 19); do printf '+150055520%02d,' "$i"; done)
url_flags=()
for url in "${replicas[@]}"; do url_flags+=(--url "$url"); done

victim=${replica_pids[1]}
(sleep 4 && kill -9 "$victim" && echo "replica ${replicas[1]} killed (SIGKILL) at +4 s") &
killer=$!
pids+=("$killer")

status=0
"$bin" simulate "${url_flags[@]}" \
  --agents 200 --agent-queues "$queues" --agent-queues-each 2 \
  --calls "$CALLS" --concurrency "$CALLS" --rate 625 --to "${numbers%,}" \
  --answer 0.7 --no-answer 0.12 --busy 0.05 --hangup 0.08 --lost 0.02 --duplicate 0.05 \
  --ring-ms 20 --talk-ms 3000 --hold-ms 1000 --wait-hangup 0.03 --wait-key 0.03 \
  --rest-listen "127.0.0.1:$rest_port" --account-sid "$TWILIO_ACCOUNT_SID" \
  --watch-redis "$redis_url" --sweep-ms "$SWEEP_MS" --seed "$SEED" || status=$?
# Both are gone now, and their PIDs may be reused: never signal them again.
wait "$killer" 2>/dev/null || true
alive=()
for pid in "${pids[@]}"; do
  [[ $pid == "$victim" || $pid == "$killer" ]] || alive+=("$pid")
done
pids=("${alive[@]}")

echo
echo "switchboard_connect_seconds (agent given to a waiting caller -> REST redirect answered), all surviving processes:"
for url in "${replicas[0]}" "${replicas[2]}" "${workers[@]}"; do
  curl -sf "$url/metrics" | grep '^switchboard_connect_seconds_bucket' || true
done | awk '{ split($1, a, "le=\""); le = a[2]; sub(/".*/, "", le); n[le] += $2 }
  END { for (le in n) printf "  le=%s %d\n", le, n[le] }' | sort -t= -k2 -g
machine
exit "$status"
