#!/usr/bin/env bash
# A simulated working day with the release binary (docs/simulate.md, "A
# simulated day"): a throwaway redis-server, one `serve` with Twilio's REST side
# played by `simulate`, one queue whose callers hear their estimated wait
# (benches/day-routing.toml), 30 agents signing in and out one by one, callers
# arriving at random up to 0.8 a second at the lunch peak, talk times
# log-normal around 40 s, and 1.2 % of callers a round (5 s) hanging up while
# they wait. It prints how right the first estimated waits were for callers
# who waited 60 s or more, against Asterisk's method on the same calls.
#
#   benches/day.sh                    # 900 s, seed 1
#   DAY=300 SEED=7 benches/day.sh
#
# Every process it starts is stopped by its PID on exit; it never touches
# port 6379.
set -euo pipefail
cd "$(dirname "$0")/.."

DAY=${DAY:-900}
SEED=${SEED:-1}
for tool in redis-server redis-cli curl; do
  command -v "$tool" >/dev/null ||
    { echo "needs $tool: apt-get install redis-server redis-tools curl" >&2; exit 1; }
done
cargo build --release --quiet
bin=$PWD/target/release/switchboard
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

next=$((20000 + RANDOM % 20000))
free_port() {
  while (exec 3<>"/dev/tcp/127.0.0.1/$next") 2>/dev/null; do next=$((next + 1)); done
  port=$next
  next=$((next + 1))
}

free_port
redis_port=$port
redis-server --port "$redis_port" --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
free_port
rest_port=$port
free_port
export SWITCHBOARD_REDIS_URL=redis://127.0.0.1:$redis_port
export SWITCHBOARD_ROUTING=$PWD/benches/day-routing.toml
export TWILIO_AUTH_TOKEN=day-auth-token
export SWITCHBOARD_ADMIN_TOKEN=day-admin-token
export TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef
export SWITCHBOARD_TWILIO_API_URL=http://127.0.0.1:$rest_port
export RUST_LOG=warn
SWITCHBOARD_LISTEN=127.0.0.1:$port SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:$port \
  "$bin" serve >"$work/serve.log" 2>&1 &
pids+=($!)
url=http://127.0.0.1:$port
for _ in $(seq 100); do
  curl -sf "$url/readyz" >/dev/null && break
  sleep 0.1
done

"$bin" simulate --url "$url" --day "$DAY" --rate 0.8 --agents 30 --agent-queues sales \
  --talk-ms 40000 --talk-sigma 0.5 --ring-ms 1000 --hold-ms 5000 --wait-hangup 0.012 \
  --answer 1 --no-answer 0 --busy 0 --hangup 0 --concurrency 2000 \
  --rest-listen "127.0.0.1:$rest_port" --account-sid "$TWILIO_ACCOUNT_SID" --seed "$SEED"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(redis-server --version | awk '{ print $3 }')"
