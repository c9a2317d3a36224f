#!/usr/bin/env bash
# The README's deployment recipes, run for real: nginx started by its SysV init script with
# the `export LD_PRELOAD=...` line in /etc/default/nginx, and postgres started by
# pg_ctlcluster with the `LD_PRELOAD = '...'` line in its cluster's environment file. Each
# server is first started without its recipe (the library must not be there: the check has
# teeth), then with it: the library must be mapped in the server's processes and
# `zeropool status` must say loaded, and the server must answer.
# /etc is changed only in a private mount namespace, over a copy of /etc (unshare -m); the
# machine's own /etc is never written. nginx listens on 127.0.0.1 on a free port with its pid
# file and logs in a scratch directory; postgres is a throw-away cluster in that directory.
# Every server started here is stopped on every exit. Root only; exit 77 (skip) otherwise or
# where the servers or unshare are missing.
# Usage: test_recipes.sh LIBRARY ZEROPOOL_COMMAND README.md
set -uo pipefail
lib=$(realpath "$1") cmd=$(realpath "$2") readme=$(realpath "$3")

skip() { echo "SKIP: $*"; exit 77; }
if [ -z "${ZP_RECIPES_NS:-}" ]; then
  [ "$(id -u)" = 0 ] || skip "needs root (init scripts, pg_ctlcluster, a mount namespace)"
  command -v unshare >/dev/null || skip "no unshare (util-linux)"
  unshare -m true 2>/dev/null || skip "the kernel refuses a private mount namespace (unshare -m)"
  [ ! -d /run/systemd/system ] ||
    skip "systemd is running: init scripts would be redirected to systemctl (test_systemd.sh checks the drop-in)"
  tmp=$(mktemp -d /tmp/zp-recipes.XXXXXX)
  chmod 755 "$tmp" # postgres, www-data: their files live here
  child=
  stop_all() { # whatever the inner run left behind, even if it was killed
    local f pid
    if [ -n "$child" ]; then # the inner run and the commands it had running
      kill -TERM -- "-$child" 2>/dev/null
      wait "$child" 2>/dev/null
    fi
    for f in "$tmp/nginx.pid" "$tmp/pgdata/postmaster.pid"; do
      pid=$(head -n 1 "$f" 2>/dev/null) || continue
      [[ $pid =~ ^[0-9]+$ ]] || continue
      kill -TERM "$pid" 2>/dev/null || continue
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
  }
  trap stop_all EXIT
  trap 'exit 1' INT TERM
  # In the background so that a signal interrupts the wait; setsid: a process group of its own.
  ZP_RECIPES_NS=$tmp setsid unshare -m --propagation private bash "$0" "$@" &
  child=$!
  wait "$child"
  rc=$?
  child=
  exit "$rc"
fi

#### inside the mount namespace ####
tmp=$ZP_RECIPES_NS
cp -a /etc "$tmp/etc"
mount --bind "$tmp/etc" /etc || skip "cannot bind-mount a copy over /etc"
passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}
# The recipe's line as the README gives it, with the packaged path replaced by the library
# under test; empty when the README no longer has it.
recipe() { # regex of the README's line
  grep -m 1 -x -- "$1" "$readme" | sed "s|/usr/lib/[^/]*/libzeropool\.so\.0|$lib|"
}
mapped() { grep -q "$lib" "/proc/$1/maps" 2>/dev/null; }
all_mapped() { # pid: it and every child of it map the library
  local p
  mapped "$1" || return 1
  for p in $(pgrep -P "$1"); do
    mapped "$p" && continue
    [ -e "/proc/$p/maps" ] || continue # ended between the listing and the read: nothing to check
    echo "     child $p ($(cat "/proc/$p/comm" 2>/dev/null)) has no zeropool"
    return 1
  done
}
status_loaded() { # zeropool status says "loaded" (and not "not loaded")
  local out
  out=$("$cmd" status "$1" 2>&1)
  grep -q 'loaded' <<<"$out" && ! grep -q 'not loaded' <<<"$out"
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_pidfile() { # file: waits up to 10 s for a live pid in it, prints it
  local pid
  for _ in $(seq 100); do
    pid=$(head -n 1 "$1" 2>/dev/null)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
    sleep 0.1
  done
  return 1
}
wait_gone() { for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

#### nginx: its SysV init script and /etc/default/nginx ####
nginx_recipe=$(recipe 'export LD_PRELOAD=/usr/lib/[^/]*/libzeropool\.so\.0')
check "the README has the /etc/default line" [ -n "$nginx_recipe" ]
if [ ! -x /etc/init.d/nginx ] || ! command -v nginx >/dev/null; then
  echo "skip nginx: not installed (scripts/setup installs nginx-light)"
elif [ -n "$nginx_recipe" ]; then
  port=$(free_port)
  mkdir -p "$tmp/www" "$tmp/nginx-log"
  echo "hello from nginx" >"$tmp/www/index.html"
  chown www-data "$tmp/nginx-log" 2>/dev/null || true
  sed -i "s|^pid .*|pid $tmp/nginx.pid;|; s|access_log .*|access_log $tmp/nginx-log/access.log;|;
    s|error_log .*|error_log $tmp/nginx-log/error.log;|" /etc/nginx/nginx.conf
  rm -f /etc/nginx/sites-enabled/*
  printf 'server {\n\tlisten 127.0.0.1:%s;\n\troot %s/www;\n}\n' "$port" "$tmp" >/etc/nginx/sites-enabled/zp-test
  get() { # GET / from our nginx
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET / HTTP/1.0\r\n\r\n' >&3
    grep -q "hello from nginx" <&3
    local rc=$?
    exec 3<&-
    return $rc
  }
  nginx_run() { # with|without: start through the init script, check, stop
    local pid
    /etc/init.d/nginx start >"$tmp/nginx-start.log" 2>&1
    if ! pid=$(wait_pidfile "$tmp/nginx.pid"); then
      check "nginx ($1 the recipe) started by /etc/init.d/nginx" false
      cat "$tmp/nginx-start.log" "$tmp/nginx-log/error.log" 2>/dev/null | sed 's/^/     | /'
      return
    fi
    sleep 0.3 # the workers
    check "nginx ($1 the recipe) answers" get
    if [ "$1" = with ]; then
      check "nginx master and workers map the library" all_mapped "$pid"
      check "zeropool status $pid: loaded" status_loaded "$pid"
    else
      check "nginx without the recipe: no zeropool (the check has teeth)" eval '! mapped "$pid" && ! status_loaded "$pid"'
    fi
    /etc/init.d/nginx stop >/dev/null 2>&1
    check "nginx ($1 the recipe) stopped by /etc/init.d/nginx" wait_gone "$pid"
  }
  nginx_run without
  echo "$nginx_recipe" >>/etc/default/nginx
  nginx_run with
fi

#### postgres: pg_ctlcluster and the cluster's environment file ####
pg_recipe=$(recipe "LD_PRELOAD = '/usr/lib/[^/]*/libzeropool\.so\.0'")
check "the README has the environment file's line" [ -n "$pg_recipe" ]
pgver=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pgver" ] || ! command -v pg_createcluster >/dev/null; then
  echo "skip postgres: not installed (scripts/setup installs postgresql)"
elif [ -n "$pg_recipe" ]; then
  port=$(free_port) cluster=zp_recipe_$$
  mkdir -p "$tmp/pgsock"
  chown postgres: "$tmp/pgsock"
  if ! pg_createcluster "$pgver" "$cluster" -d "$tmp/pgdata" -s "$tmp/pgsock" -l "$tmp/pg.log" \
    -p "$port" --start-conf manual >"$tmp/pgcreate.log" 2>&1; then
    check "pg_createcluster $pgver $cluster" false
    sed 's/^/     | /' "$tmp/pgcreate.log"
  else
    envfile=/etc/postgresql/$pgver/$cluster/environment
    # The pid file pg_createcluster puts in /run/postgresql goes to the scratch directory.
    sed -i "s|^external_pid_file.*|external_pid_file = '$tmp/pg-external.pid'|" \
      "/etc/postgresql/$pgver/$cluster/postgresql.conf"
    pg_run() { # with|without
      local pid out
      pg_ctlcluster "$pgver" "$cluster" start >"$tmp/pgstart.log" 2>&1
      if ! pid=$(wait_pidfile "$tmp/pgdata/postmaster.pid"); then
        check "postgres ($1 the recipe) started by pg_ctlcluster" false
        cat "$tmp/pgstart.log" "$tmp/pg.log" 2>/dev/null | tail -n 20 | sed 's/^/     | /'
        return
      fi
      out=$(runuser -u postgres -- psql -h "$tmp/pgsock" -p "$port" -Atc 'select 6 * 7' 2>&1)
      check "postgres ($1 the recipe) answers" [ "$out" = 42 ]
      if [ "$1" = with ]; then
        check "the postmaster and its children map the library" all_mapped "$pid"
        check "zeropool status $pid: loaded" status_loaded "$pid"
      else
        check "postgres without the recipe: no zeropool (the check has teeth)" eval '! mapped "$pid" && ! status_loaded "$pid"'
        # What the README warns about: an exported variable does not reach the server.
        pg_ctlcluster "$pgver" "$cluster" stop >/dev/null 2>&1
        wait_gone "$pid"
        LD_PRELOAD=$lib pg_ctlcluster "$pgver" "$cluster" start >/dev/null 2>&1
        pid=$(wait_pidfile "$tmp/pgdata/postmaster.pid") &&
          check "LD_PRELOAD in pg_ctlcluster's own environment does not reach postgres" eval '! mapped "$pid"'
      fi
      pg_ctlcluster "$pgver" "$cluster" stop >/dev/null 2>&1
      check "postgres ($1 the recipe) stopped by pg_ctlcluster" wait_gone "$pid"
    }
    pg_run without
    echo "$pg_recipe" >>"$envfile"
    pg_run with
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
