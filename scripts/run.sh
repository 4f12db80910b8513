#!/usr/bin/env bash
# make run / make stop: a local berthd with its data under DATA (default
# ./.run), plus Debian's docker-registry on 127.0.0.1 holding the offline
# fixture images (busybox from the host's busybox-static, and the others
# berth-fixtures generates), so nothing ever comes from Docker Hub.
set -euo pipefail
cmd=${1:?start|stop}
DATA=${2:-$PWD/.run}
BIN=${BIN:-$PWD/bin}
REGISTRY_PORT=${REGISTRY_PORT:-5000}
mkdir -p "$DATA"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() {
  local f=$1
  if alive "$f"; then
    local pid; pid=$(cat "$f")
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$f"
}

case $cmd in
stop)
  stop_pid "$DATA/berthd.pid"
  stop_pid "$DATA/registry.pid"
  echo "stopped"
  ;;
start)
  if ! alive "$DATA/registry.pid"; then
    mkdir -p "$DATA/registry"
    cat > "$DATA/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $DATA/registry}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$REGISTRY_PORT}
YML
    /usr/bin/docker-registry serve "$DATA/registry.yml" >"$DATA/registry.log" 2>&1 &
    echo $! > "$DATA/registry.pid"
    for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  "$BIN/berth-fixtures" push --registry "127.0.0.1:$REGISTRY_PORT" library/busybox:latest busybox:latest small:latest multi:latest
  if ! alive "$DATA/berthd.pid"; then
    [ -f "$DATA/daemon.json" ] || echo '{}' > "$DATA/daemon.json"
    "$BIN/berthd" --data-root "$DATA/data" --exec-root "$DATA/exec" \
      -H "unix://$DATA/berth.sock" --pidfile "$DATA/berthd.pid" \
      --config-file "$DATA/daemon.json" --registry-mirror "http://127.0.0.1:$REGISTRY_PORT" >>"$DATA/berthd.log" 2>&1 &
    for _ in $(seq 100); do [ -S "$DATA/berth.sock" ] && break; sleep 0.1; done
  fi
  [ -S "$DATA/berth.sock" ] || { echo "berthd did not start; see $DATA/berthd.log" >&2; exit 1; }
  cat <<MSG
berthd is running (pid $(cat "$DATA/berthd.pid"), log $DATA/berthd.log)
registry with fixture images: 127.0.0.1:$REGISTRY_PORT (busybox, small, multi)

  export DOCKER_HOST=unix://$DATA/berth.sock
  docker version
  docker pull 127.0.0.1:$REGISTRY_PORT/busybox

make stop stops both.
MSG
  ;;
*) echo "usage: $0 start|stop [DATA]" >&2; exit 2 ;;
esac
