#!/usr/bin/env bash
# Starts and stops the development freshet-server beside the development cluster, for make up and
# make stop: its log, pid and development JWT secret live in $PGDATA.
set -euo pipefail
cd "$(dirname "$0")/.."
PGDATA=${PGDATA:-.pgdata}
pidfile="$PGDATA/freshet-server.pid"
log="$PGDATA/freshet-server.log"
secret="$PGDATA/jwt-secret"
listen=${FRESHET_LISTEN:-127.0.0.1:8080}

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
start)
  url=${2:?usage: scripts/server.sh start DATABASE_URL}
  if running; then
    echo "freshet-server already runs (pid $(cat "$pidfile"), log $log)."
  else
    [[ -s $secret ]] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret")
    server="$(swift build --show-bin-path)/freshet-server"
    nohup "$server" serve --url "$url" --listen "$listen" --jwt-secret-file "$secret" >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 300); do
      grep -q "listening on" "$log" 2>/dev/null && break
      running || { echo "freshet-server did not start; its log ($log) ends:" >&2; tail -n 20 "$log" >&2; rm -f "$pidfile"; exit 1; }
      sleep 0.1
    done
    echo "freshet-server runs (pid $(cat "$pidfile"), log $log)."
  fi
  address=$(grep -o 'listening on [^ ]*' "$log" | tail -n 1 | cut -d' ' -f3)
  echo "  health:  curl $address/health"
  echo "  metrics: curl $address/metrics"
  echo "  gateway: ${address/http:/ws:}/ws/db_subscriptions?access_token=TOKEN"
  echo "  a development token: $(swift build --show-bin-path)/freshet-server token --user 0001 --jwt-secret-file $secret"
  ;;
stop)
  if running; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "freshet-server (pid $pid) did not stop within 10 s; killing it" >&2; kill -KILL "$pid"; fi
    echo "freshet-server stopped."
  fi
  rm -f "$pidfile"
  ;;
*)
  echo "usage: scripts/server.sh start DATABASE_URL | stop" >&2
  exit 2
  ;;
esac
