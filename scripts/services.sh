# Shared by scripts/test and bench/run: make sure PostgreSQL and Redis are running on this
# machine, installing them with apt-get when absent. Fails loudly; never skips.

PGHOST=127.0.0.1
PGPORT=5432
REDIS_PORT=6379

say() { printf '== %s\n' "$*"; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 0.5; done
  return 1
}

apt_install() {
  command -v apt-get >/dev/null || die "$* missing and apt-get is not available"
  [ "$(id -u)" = 0 ] || die "$* missing; run as root so apt-get can install it"
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

ensure_postgres() {
  if port_open "$PGHOST" "$PGPORT"; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_createcluster "$version" main >/dev/null || die "could not create a PostgreSQL cluster"
  fi
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # The tests connect as postgres over TCP without a password: allow that on loopback only.
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  # A cluster the package already started only needs to re-read pg_hba.conf.
  pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    || pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  wait_port "$PGHOST" "$PGPORT" || die "PostgreSQL did not come up on $PGHOST:$PGPORT"
}

ensure_redis() {
  if port_open "$PGHOST" "$REDIS_PORT"; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/tokenauth-test.log \
    || die "redis-server failed to start"
  wait_port "$PGHOST" "$REDIS_PORT" || die "Redis did not come up on $PGHOST:$REDIS_PORT"
}

