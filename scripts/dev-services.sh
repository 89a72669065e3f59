#!/usr/bin/env bash
# shellcheck disable=SC2317 # trap handlers are only called indirectly
# Runs a command with MariaDB and Redis available for local development:
#   scripts/dev-services.sh dotnet run --project src/Ams
# Unless ConnectionStrings__MariaDb / ConnectionStrings__Redis are already set, starts
# mariadbd on 127.0.0.1:3307 and redis-server on 127.0.0.1:6380 with data kept in .data/,
# exports both connection strings, runs the command and stops what it started when the
# command ends or on Ctrl-C. Servers already running on the same .data/ are reused (see reuse).
# Without a command it keeps the servers up until Ctrl-C.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$repo/.data"
maria_dir="$data/mariadb"
maria_port=3307
# The server's unix socket (root access) must fit in 108 bytes.
maria_socket="$data/mariadb.sock"
if [ ${#maria_socket} -gt 100 ]; then
  maria_socket="${TMPDIR:-/tmp}/ams-dev-$(id -u)-$(printf '%s' "$repo" | cksum | cut -d' ' -f1).sock"
fi
redis_dir="$data/redis"
redis_port=6380
export PATH="$PATH:/usr/sbin:/sbin" # mariadbd lives in /usr/sbin, often not on a user's PATH

log() { printf 'dev-services: %s\n' "$*" >&2; }

ensure_installed() {
  command -v mariadbd >/dev/null && command -v redis-server >/dev/null && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "mariadbd and redis-server are needed; install them with:"
    echo "sudo apt-get install mariadb-server redis-server" >&2
    exit 1
  fi
  log "installing mariadb-server and redis-server"
  local out updated=
  for _ in $(seq 60); do
    # Lock::Timeout makes apt itself wait while another apt/dpkg holds the lock.
    if out=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 \
               install -y mariadb-server redis-server 2>&1); then
      return 0
    fi
    if grep -qiE 'could not get lock|unable to acquire|dpkg frontend lock' <<<"$out"; then
      sleep 5
      continue
    fi
    if [ -z "$updated" ] && grep -qi 'unable to locate package' <<<"$out"; then
      updated=1 # empty package lists, as in a fresh container
      apt-get -o DPkg::Lock::Timeout=60 update >&2 || true
      continue
    fi
    printf '%s\n' "$out" >&2
    exit 1
  done
  log "gave up waiting for the dpkg lock"
  exit 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints the pid from pidfile $1 if that process is alive and works in directory $1's
# directory: both servers chdir to their data directory, so a recycled pid cannot pass.
our_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(dirname "$1")" ] || return 1
  echo "$pid"
}

alive() { [ -e "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# A server found running from an earlier run is shared while the run that started it is still
# going (it stops the server when it ends), and adopted if that run is gone (killed, say).
reuse() { # name pid
  local owner_file="$data/$1.owner" owner
  owner=$(cat "$owner_file" 2>/dev/null || true)
  if [ -n "$owner" ] && alive "$owner" && tr '\0' ' ' <"/proc/$owner/cmdline" | grep -q dev-services; then
    log "sharing $1 (pid $2) started by run $owner, which will stop it"
  else
    log "adopting $1 (pid $2) left running by an earlier run"
    own "$1" "$2"
  fi
}

own() { # name pid
  started_pids+=("$2")
  echo $$ >"$data/$1.owner"
}

started_pids=()

stop_started() {
  local pid
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do
    for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      log "pid $pid ignored SIGTERM for 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  started_pids=()
}

child=
stopped=
on_signal() { # INT|TERM
  # Before the command runs: leave through the EXIT trap, which stops the servers.
  [ -n "$child" ] || exit $((128 + $(kill -l "$1")))
  stopped=1
  # Ctrl-C reaches the command directly (same process group); a TERM sent to this script
  # alone does not, so pass it on. Either way the command decides when it is done.
  [ "$1" = INT ] || kill -TERM "$child" 2>/dev/null || true
}
trap stop_started EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

maria_root() { mariadb --no-defaults --socket="$maria_socket" -uroot --batch "$@"; }

start_mariadb() {
  local marker="$maria_dir/.ams-initialised" pid
  if pid=$(our_pid "$maria_dir/mariadbd.pid"); then
    reuse mariadbd "$pid"
  else
    if listening "$maria_port"; then
      log "127.0.0.1:$maria_port is taken by something else; stop it or set ConnectionStrings__MariaDb"
      exit 1
    fi
    if [ ! -e "$marker" ]; then
      # No marker: never initialised, or initialisation was interrupted. Nothing to keep.
      log "initialising MariaDB in $maria_dir"
      rm -rf "$maria_dir"
      mkdir -p "$maria_dir"
      mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$maria_dir" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        >"$data/mariadb-install.log" 2>&1 || { cat "$data/mariadb-install.log" >&2; exit 1; }
      touch "$marker"
    fi
    # setsid: Ctrl-C goes to the whole foreground process group; the servers should
    # instead be stopped by us, after the command has finished.
    setsid mariadbd --no-defaults --user="$(id -un)" --datadir="$maria_dir" \
      --socket="$maria_socket" --pid-file="$maria_dir/mariadbd.pid" \
      --port="$maria_port" --bind-address=127.0.0.1 --skip-name-resolve --skip-log-bin \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
      </dev/null >>"$data/mariadbd.log" 2>&1 &
    pid=$!
    own mariadbd "$pid"
    for _ in $(seq 300); do
      maria_root -e 'SELECT 1' >/dev/null 2>&1 && break
      if ! alive "$pid"; then
        tail -n 20 "$data/mariadbd.log" >&2
        log "mariadbd exited; full log in $data/mariadbd.log"
        exit 1
      fi
      sleep 0.1
    done
    maria_root -e 'SELECT 1' >/dev/null || { log "mariadbd did not come up in 30 s"; exit 1; }
    log "started mariadbd (pid $pid) on 127.0.0.1:$maria_port"
  fi

  local password_file="$data/mariadb.password"
  if [ ! -s "$password_file" ]; then
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$password_file")
  fi
  chmod 600 "$password_file"
  local password
  password=$(cat "$password_file")
  # Idempotent, so a lost or regenerated password file just resets the password.
  # On stdin rather than -e, to keep the password out of ps.
  maria_root <<SQL
CREATE DATABASE IF NOT EXISTS ams CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'ams'@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER 'ams'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON ams.* TO 'ams'@'127.0.0.1';
SQL
  export ConnectionStrings__MariaDb="Server=127.0.0.1;Port=$maria_port;User ID=ams;Password=$password;Database=ams;"
}

start_redis() {
  local pid
  mkdir -p "$redis_dir"
  if pid=$(our_pid "$redis_dir/redis.pid"); then
    reuse redis-server "$pid"
  else
    if listening "$redis_port"; then
      log "127.0.0.1:$redis_port is taken by something else; stop it or set ConnectionStrings__Redis"
      exit 1
    fi
    setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save 60 1 --appendonly yes \
      --dir "$redis_dir" --pidfile "$redis_dir/redis.pid" \
      </dev/null >>"$data/redis.log" 2>&1 &
    pid=$!
    own redis-server "$pid"
    for _ in $(seq 100); do
      [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
      if ! alive "$pid"; then
        tail -n 20 "$data/redis.log" >&2
        log "redis-server exited; full log in $data/redis.log"
        exit 1
      fi
      sleep 0.1
    done
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] || { log "redis-server did not come up in 10 s"; exit 1; }
    log "started redis-server (pid $pid) on 127.0.0.1:$redis_port"
  fi
  export ConnectionStrings__Redis="127.0.0.1:$redis_port"
}

if [ -z "${ConnectionStrings__MariaDb:-}" ] || [ -z "${ConnectionStrings__Redis:-}" ]; then
  ensure_installed
  mkdir -p "$data"
  [ -n "${ConnectionStrings__MariaDb:-}" ] || start_mariadb
  [ -n "${ConnectionStrings__Redis:-}" ] || start_redis
fi

# The development master key lives with the data it encrypts. The app's default, ./.data, is
# src/Ams/.data under `dotnet run --project src/Ams`, where earlier versions left it: moved once.
if [ -z "${Crypto__DevKeyFile:-}" ]; then
  mkdir -p "$data"
  old_key="$repo/src/Ams/.data/dev-master-keys"
  if [ -e "$old_key" ]; then
    # -n: never replace a key already there (two commands starting at once both try this).
    if [ ! -e "$data/dev-master-keys" ] && mv -n "$old_key" "$data/dev-master-keys" 2>/dev/null && [ ! -e "$old_key" ]; then
      log "moved the development master key from $old_key to $data/dev-master-keys"
    elif [ -e "$old_key" ] && ! cmp -s "$old_key" "$data/dev-master-keys"; then
      log "WARNING: two different development master keys: $data/dev-master-keys (used) and $old_key (not used)."
      log "WARNING: messages sealed under the other one do not decrypt; keep the one your data needs (README, Crypto__MasterKeys)."
    fi
  fi
  export Crypto__DevKeyFile="$data/dev-master-keys"
fi

if [ $# -eq 0 ]; then
  log "services up; Ctrl-C stops them"
  log "ConnectionStrings__MariaDb=$ConnectionStrings__MariaDb"
  log "ConnectionStrings__Redis=$ConnectionStrings__Redis"
  set -- sleep infinity
  DEV_SERVICES_STOP_IS_SUCCESS=1
fi

# In the background, not exec'd and not in the foreground: the EXIT trap has to run after the
# command, and bash runs traps only between commands, so a foreground command would hold off
# a TERM until it ended. A background command normally starts with SIGINT ignored and stdin
# from /dev/null; the subshell and <&0 undo both so it behaves like a foreground one.
( trap - INT QUIT; exec "$@" ) <&0 &
child=$!
status=0
while :; do
  wait "$child" && status=0 || status=$?
  # wait also returns when a trapped signal arrives (128 + its number): the command goes on, so
  # wait again for its own status. (When it ended in the same instant, bash has none to give.)
  alive "$child" || break
done
# `just run` (DEV_SERVICES_STOP_IS_SUCCESS=1) stopped by Ctrl-C or a TERM, as asked: a server that
# ended on that signal (130, 143) did what it was told, not a failed recipe. Other commands (admin,
# key rotation) cut short keep their status.
if [ -n "$stopped" ] && [ "${DEV_SERVICES_STOP_IS_SUCCESS:-}" = 1 ] && { [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; }; then
  status=0
fi
exit "$status"
