#!/usr/bin/env bash
# The callbacks' target run with the release binary (docs/callbacks.md): a
# throwaway redis-server, three `serve --no-worker` replicas and two `worker`
# processes with TWILIO_CPS, 100 agents in two of four queues that offer
# callbacks (benches/callback-routing.toml), and `simulate` playing 10,000
# callers (25 a second) of whom about 30 % ask to be called back (70 % of those
# who hear an offer: about half are connected before their first round is half
# over, and never hear one), Twilio's REST side
# (redirects, and the calls placed, answered within 2 s: 80 % press 1, 15 % do
# not answer, 5 % reach voicemail), 2 % of Twilio's callbacks lost and 5 % sent
# twice. One replica is killed with SIGKILL 30 s in, while calls are being
# placed. simulate checks from outside: nobody overtaken, no agent on two calls,
# no callback dialled while an earlier try of it was live, never more calls
# placed within a second than TWILIO_CPS, every callback ending exactly once,
# no agent still reserved after the run; it exits 1 otherwise, and prints how
# long from an agent's reservation for a callback to that agent answering.
#
#   benches/callback-chaos.sh            # seed 20261207
#   SEED=7 CALLS=2000 CPS=10 CALLBACK=0.3 benches/callback-chaos.sh
#
# Every process it starts is stopped by its PID on exit; it never touches
# port 6379.
set -euo pipefail
cd "$(dirname "$0")/.."

SEED=${SEED:-20261207}
CALLS=${CALLS:-10000}
CPS=${CPS:-20}
CALLBACK=${CALLBACK:-0.7}
SWEEP_MS=250
# shellcheck source=support/processes.sh
source benches/support/processes.sh
start_redis
free_port
rest_port=$port
export SWITCHBOARD_REDIS_URL=$redis_url
export SWITCHBOARD_ROUTING=$PWD/benches/callback-routing.toml
export TWILIO_CPS=$CPS
export SWITCHBOARD_SWEEP_INTERVAL_MS=$SWEEP_MS
export TWILIO_AUTH_TOKEN=callback-chaos-auth-token
export SWITCHBOARD_ADMIN_TOKEN=callback-chaos-admin-token
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

queues=c0,c1,c2,c3
numbers=+15005553000,+15005553001,+15005553002,+15005553003
url_flags=()
for url in "${replicas[@]}"; do url_flags+=(--url "$url"); done

victim=${replica_pids[1]}
(sleep 30 && kill -9 "$victim" && echo "replica ${replicas[1]} killed (SIGKILL) at +30 s") &
killer=$!
pids+=("$killer")

status=0
"$bin" simulate "${url_flags[@]}" \
  --agents 100 --agent-queues "$queues" --agent-queues-each 2 \
  --calls "$CALLS" --concurrency "$CALLS" --rate 25 --to "$numbers" \
  --answer 0.8 --no-answer 0.1 --busy 0.05 --hangup 0.05 --lost 0.02 --duplicate 0.05 \
  --ring-ms 20 --talk-ms 3000 --hold-ms 2000 --wait-hangup 0.005 \
  --callback "$CALLBACK" --callback-ring-ms 2000 --callback-wait-ms 900000 --cps "$CPS" \
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
