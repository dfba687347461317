# Shared by the bench scripts that run the release binary against a throwaway
# redis-server (benches/line-chaos.sh, callback-chaos.sh, day.sh): sourced,
# after `set -euo pipefail` and `cd` to the repository. It checks the tools,
# builds the release binary ($bin), makes a work directory ($work), and stops
# every process it or the script started (each PID appended to `pids`) on
# exit; it never touches port 6379.

for tool in redis-server redis-cli curl; do
  command -v "$tool" >/dev/null ||
    { echo "needs $tool: apt-get install redis-server redis-tools curl" >&2; exit 1; }
done
cargo build --release --quiet
bin=$PWD/target/release/switchboard
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Sets $port to a port nobody listens on (and no earlier call gave), from a
# random start above 20000. Not a $(…) subshell: `next` must move on.
next=$((20000 + RANDOM % 20000))
free_port() {
  while (exec 3<>"/dev/tcp/127.0.0.1/$next") 2>/dev/null; do next=$((next + 1)); done
  port=$next
  next=$((next + 1))
}

# Starts a throwaway redis-server: sets $redis_port and $redis_url.
start_redis() {
  free_port
  redis_port=$port
  redis-server --port "$redis_port" --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  pids+=($!)
  redis_url="redis://127.0.0.1:$redis_port"
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$redis_port" ping >/dev/null ||
    { echo "redis-server did not start: $(cat "$work/redis.log")" >&2; exit 1; }
}

wait_ready() {
  for _ in $(seq 100); do
    curl -sf "$1/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}

machine() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(redis-server --version | awk '{ print $3 }')"
}
