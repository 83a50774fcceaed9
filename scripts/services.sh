#!/usr/bin/env bash
# The services of the Docker workflow, for trying it by hand (the tests start their own through
# test/setup/services.ts): the Docker engine, if it is not running, and a registry on loopback.
#
#   bash scripts/services.sh start [PORT]   # dockerd if needed, docker-registry on 127.0.0.1:PORT (5000)
#   bash scripts/services.sh stop           # stops what `start` started
#   bash scripts/services.sh status
#
# dockerd runs without a bridge network (no iptables changes): build with --network=none.
# State (pids, logs, registry storage) lives in ${DELTAIMG_SERVICES_DIR:-/tmp/deltaimg-services}.
set -euo pipefail
dir=${DELTAIMG_SERVICES_DIR:-/tmp/deltaimg-services}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
docker_cli=${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker )}
mkdir -p "$dir"

engine_up() { "$docker_cli" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

start_engine() {
  if engine_up; then echo "docker engine: already running"; return; fi
  setsid dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false >>"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.pid"
  for _ in $(seq 120); do engine_up && { echo "docker engine: started (pid $(cat "$dir/dockerd.pid"), log $dir/dockerd.log)"; return; }; sleep 0.5; done
  echo "docker engine: did not start; see $dir/dockerd.log" >&2; exit 1
}

start_registry() {
  local port=$1
  if alive registry; then echo "registry: already running (pid $(cat "$dir/registry.pid"))"; return; fi
  mkdir -p "$dir/registry-data"
  node "$here/registry.mjs" config "$dir/registry-data" "$port" >"$dir/registry.yml"
  setsid docker-registry serve "$dir/registry.yml" >>"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/registry.pid"
  for _ in $(seq 40); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { echo "registry: 127.0.0.1:$port (pid $(cat "$dir/registry.pid"))"; return; }
    sleep 0.25
  done
  echo "registry: did not answer on 127.0.0.1:$port; see $dir/registry.log" >&2; exit 1
}

stop_one() {
  if alive "$1"; then kill "$(cat "$dir/$1.pid")" && echo "$1: stopped"; else echo "$1: not started by this script"; fi
  rm -f "$dir/$1.pid"
}

case ${1:-status} in
  start) start_engine; start_registry "${2:-5000}" ;;
  stop) stop_one registry; stop_one dockerd ;;
  status)
    engine_up && echo "docker engine: up" || echo "docker engine: down"
    alive registry && echo "registry: up (pid $(cat "$dir/registry.pid"))" || echo "registry: down" ;;
  *) echo "usage: $0 start [PORT] | stop | status" >&2; exit 2 ;;
esac
