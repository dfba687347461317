#!/usr/bin/env bash
# A simulated working day with the release binary (docs/simulate.md, "A
# simulated day"): a throwaway redis-server, one `serve` with Twilio's REST side
# played by `simulate`, one queue whose callers hear their estimated wait
# (benches/day-routing.toml), 30 agents signing in and out one by one, callers
# arriving at random up to 1 a second at the lunch peak, talk times
# log-normal around 40 s, and 0.6 % of callers a round (5 s) hanging up while
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
# shellcheck source=support/processes.sh
source benches/support/processes.sh
start_redis
free_port
rest_port=$port
free_port
export SWITCHBOARD_REDIS_URL=$redis_url
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
wait_ready "$url"

"$bin" simulate --url "$url" --day "$DAY" --rate 1.0 --agents 30 --agent-queues sales \
  --talk-ms 40000 --talk-sigma 0.5 --ring-ms 1000 --hold-ms 5000 --wait-hangup 0.006 \
  --answer 1 --no-answer 0 --busy 0 --hangup 0 --concurrency 2000 \
  --rest-listen "127.0.0.1:$rest_port" --account-sid "$TWILIO_ACCOUNT_SID" --seed "$SEED"
machine
