#!/usr/bin/env bash
# dynamodb-local.sh — fetch, start and stop AWS DynamoDB Local for tests.
#
# Purpose
#   Tests that talk to DynamoDB run against AWS's DynamoDB Local (a Java server
#   that speaks the DynamoDB JSON protocol). This machine can only reach package
#   registries, so the jar is taken from the npm package
#   `amplify-dynamodb-simulator`, which ships AWS's DynamoDB Local verbatim under
#   package/emulator/ (DynamoDBLocal.jar + DynamoDBLocal_lib/).
#
# Pinned version
#   npm amplify-dynamodb-simulator@2.9.30  ->  DynamoDB Local 1.25.1
#   (see SIMULATOR_VERSION / DDB_LOCAL_VERSION / DDB_LOCAL_JAR_SHA256 below;
#   the jar's checksum is verified after extraction).
#
# Licence
#   DynamoDB Local is under the "DynamoDB Local License Agreement"
#   (emulator/LICENSE.txt in the package), which does not allow redistribution.
#   So the jar is downloaded at run time into a per-user cache OUTSIDE the repo
#   (default: ${XDG_CACHE_HOME:-$HOME/.cache}/shop/dynamodb-local) and must never
#   be committed. This script refuses a cache directory inside the repo.
#
# Usage
#   infra/scripts/dynamodb-local.sh fetch              download + extract (idempotent)
#   infra/scripts/dynamodb-local.sh start [--port N]   start in background, wait until ready,
#                                                      print `export DYNAMODB_LOCAL_ENDPOINT=...`
#   infra/scripts/dynamodb-local.sh stop  [--port N]   stop the instance on that port
#   infra/scripts/dynamodb-local.sh status [--port N]  exit 0 if it answers on that port
#
#   Typical use:  eval "$(infra/scripts/dynamodb-local.sh start)"
#   Only the export line goes to stdout; all messages go to stderr.
#
# Notes
#   * Runs with -inMemory -disableTelemetry: data is lost on stop.
#   * DynamoDB Local 1.25 has NO host/bind option (-help lists only -port,
#     -inMemory, -dbPath, -sharedDb, -cors, -delayTransientStatuses,
#     -optimizeDbBeforeStartup, -disableTelemetry, -version, -help): it listens
#     on all interfaces (0.0.0.0 / ::). We always talk to it via 127.0.0.1.
#   * Without -sharedDb, DynamoDB Local keeps one database per
#     (access key id, region) pair: clients must use the same credentials/region
#     to see each other's tables. Pass extra flags with DYNAMODB_LOCAL_EXTRA_ARGS.
#
# Environment
#   DYNAMODB_LOCAL_CACHE_DIR       cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/shop/dynamodb-local)
#   DYNAMODB_LOCAL_PORT            default port (default 8000)
#   DYNAMODB_LOCAL_START_TIMEOUT   seconds to wait for readiness (default 60)
#   DYNAMODB_LOCAL_JAVA_OPTS       extra JVM options (default: -Xmx512m), word-split
#   DYNAMODB_LOCAL_EXTRA_ARGS      extra DynamoDB Local flags (e.g. -sharedDb), word-split
#   JAVA / JAVA_HOME               java binary to use (default: $JAVA_HOME/bin/java, else java)

set -euo pipefail

# ---- pinned versions ---------------------------------------------------------
readonly SIMULATOR_PACKAGE="amplify-dynamodb-simulator"
readonly SIMULATOR_VERSION="2.9.30"
readonly DDB_LOCAL_VERSION="1.25.1"
readonly DDB_LOCAL_JAR_SHA256="454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7"

# ---- configuration -----------------------------------------------------------
readonly DEFAULT_PORT="${DYNAMODB_LOCAL_PORT:-8000}"
readonly START_TIMEOUT="${DYNAMODB_LOCAL_START_TIMEOUT:-60}"
readonly STOP_TIMEOUT=15

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
readonly SCRIPT_DIR

CACHE_DIR="${DYNAMODB_LOCAL_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/shop/dynamodb-local}"
INSTALL_DIR="${CACHE_DIR}/${SIMULATOR_PACKAGE}-${SIMULATOR_VERSION}"
JAR="${INSTALL_DIR}/DynamoDBLocal.jar"
LIB_DIR="${INSTALL_DIR}/DynamoDBLocal_lib"
MARKER="${INSTALL_DIR}/.extracted-ok"

# ---- helpers -----------------------------------------------------------------
log() { printf 'dynamodb-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

usage() {
  cat >&2 <<EOF
usage: $(basename -- "$0") <command> [--port N]

commands:
  fetch              download + extract DynamoDB Local ${DDB_LOCAL_VERSION} (npm ${SIMULATOR_PACKAGE}@${SIMULATOR_VERSION})
  start [--port N]   start in the background (default port ${DEFAULT_PORT}) and print
                     'export DYNAMODB_LOCAL_ENDPOINT=http://127.0.0.1:N' on stdout
  stop  [--port N]   stop the instance started on that port
  status [--port N]  exit 0 if DynamoDB Local answers on that port

cache: ${CACHE_DIR}
EOF
}

# Absolute path without requiring it to exist.
abspath() {
  # GNU realpath -m; BSD/macOS realpath has no -m, so fall back to a plain join.
  realpath -m -- "$1" 2>/dev/null && return 0
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd -P)" "$1" ;;
  esac
}

# Refuse to put the (non-redistributable) jar anywhere inside this repo.
check_cache_dir_outside_repo() {
  local repo_root cache
  if have git && repo_root="$(git -C "$SCRIPT_DIR" rev-parse --show-toplevel 2>/dev/null)"; then
    :
  else
    repo_root="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"
  fi
  repo_root="$(abspath "$repo_root")"
  cache="$(abspath "$CACHE_DIR")"
  case "$cache/" in
    "$repo_root"/*)
      die "cache dir $cache is inside the repo ($repo_root); DynamoDB Local must not be stored in the repo (its licence forbids redistribution). Set DYNAMODB_LOCAL_CACHE_DIR elsewhere."
      ;;
  esac
}

sha256_of() {
  if have sha256sum; then
    sha256sum -- "$1" | awk '{print $1}'
  elif have shasum; then
    shasum -a 256 -- "$1" | awk '{print $1}'
  elif have openssl; then
    openssl dgst -sha256 -r -- "$1" | awk '{print $1}'
  else
    echo ""
  fi
}

java_bin() {
  if [[ -n "${JAVA:-}" ]]; then
    printf '%s\n' "$JAVA"
  elif [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
    printf '%s\n' "${JAVA_HOME}/bin/java"
  else
    printf '%s\n' java
  fi
}

# Take an exclusive lock on file $1 on fd 9 (no-op where flock(1) is missing).
# The lock is released when the script exits; fd 9 is closed for java.
lock() {
  mkdir -p -- "$CACHE_DIR"
  if have flock; then
    exec 9>"$1"
    flock -w 300 9 || die "timed out waiting for lock $1"
  fi
}

parse_port() {
  PORT="$DEFAULT_PORT"
  while (($# > 0)); do
    case "$1" in
      --port | -p)
        (($# >= 2)) || die "--port needs a value"
        PORT="$2"
        shift 2
        ;;
      --port=*)
        PORT="${1#--port=}"
        shift
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      *)
        usage
        die "unknown argument: $1"
        ;;
    esac
  done
  [[ "$PORT" =~ ^[0-9]{1,5}$ ]] || die "invalid port: $PORT"
  PORT=$((10#$PORT))
  ((PORT >= 1 && PORT <= 65535)) || die "invalid port: $PORT"
  PID_FILE="${CACHE_DIR}/dynamodb-local.${PORT}.pid"
  LOG_FILE="${CACHE_DIR}/dynamodb-local.${PORT}.log"
  ENDPOINT="http://127.0.0.1:${PORT}"
}

# ---- readiness probe ---------------------------------------------------------
# A ListTables POST; DynamoDB Local accepts any SigV4-shaped Authorization.
readonly PROBE_TARGET="DynamoDB_20120810.ListTables"
readonly PROBE_CTYPE="application/x-amz-json-1.0"
readonly PROBE_AUTH="AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"

probe_curl() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    -X POST "http://127.0.0.1:${1}/" \
    -H "X-Amz-Target: ${PROBE_TARGET}" \
    -H "Content-Type: ${PROBE_CTYPE}" \
    -H "Authorization: ${PROBE_AUTH}" \
    -d '{}' 2>/dev/null || true
}

# Plain bash: raw HTTP/1.1 over /dev/tcp (prints nothing if it cannot connect).
probe_devtcp() {
  (
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/${1}" || exit 0
    printf 'POST / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nX-Amz-Target: %s\r\nContent-Type: %s\r\nAuthorization: %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' \
      "$1" "$PROBE_TARGET" "$PROBE_CTYPE" "$PROBE_AUTH" >&3
    IFS=' ' read -r -t 5 _ status _ <&3 || true
    printf '%s' "${status:-}"
  ) || true
}

probe_python() {
  python3 - "$1" "$PROBE_TARGET" "$PROBE_CTYPE" "$PROBE_AUTH" <<'PY' 2>/dev/null || true
import sys, urllib.request, urllib.error
port, target, ctype, auth = sys.argv[1:5]
req = urllib.request.Request(
    "http://127.0.0.1:%s/" % port, data=b"{}", method="POST",
    headers={"X-Amz-Target": target, "Content-Type": ctype, "Authorization": auth})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

# Prints the HTTP status of a ListTables POST to 127.0.0.1:$1, or 000 if
# nothing answers. Uses curl; without curl, bash's /dev/tcp, then python3.
http_status() {
  local port="$1" code=""
  if have curl; then
    code="$(probe_curl "$port")"
  else
    code="$(probe_devtcp "$port")"
    if [[ ! "$code" =~ ^[0-9]{3}$ ]] && have python3; then
      code="$(probe_python "$port")"
    fi
  fi
  [[ "$code" =~ ^[0-9]{3}$ ]] || code="000"
  printf '%s\n' "$code"
}

# ---- process bookkeeping -----------------------------------------------------
cmdline_of() {
  local pid="$1"
  if [[ -r "/proc/${pid}/cmdline" ]]; then
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null || true
  elif have ps; then
    ps -p "$pid" -o command= 2>/dev/null || true
  fi
}

# True if $1 is alive and is a DynamoDB Local started for port $2.
pid_is_ours() {
  local pid="$1" port="$2" cmd
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(cmdline_of "$pid")"
  cmd="$cmd "
  [[ "$cmd" == *DynamoDBLocal.jar* && "$cmd" == *" -port ${port} "* ]]
}

read_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 1
  printf '%s\n' "$pid"
}

log_tail() {
  if [[ -s "$LOG_FILE" ]]; then
    log "last lines of $LOG_FILE:"
    tail -n 40 -- "$LOG_FILE" >&2 || true
  else
    log "($LOG_FILE is empty)"
  fi
}

print_export() { printf 'export DYNAMODB_LOCAL_ENDPOINT=%s\n' "$ENDPOINT"; }

# ---- commands ----------------------------------------------------------------
cmd_fetch() {
  check_cache_dir_outside_repo
  if [[ -f "$MARKER" && -f "$JAR" && -d "$LIB_DIR" ]]; then
    log "DynamoDB Local ${DDB_LOCAL_VERSION} already in ${INSTALL_DIR}"
    return 0
  fi
  lock "${CACHE_DIR}/fetch.lock"
  # Re-check: another process may have finished while we waited for the lock.
  if [[ -f "$MARKER" && -f "$JAR" && -d "$LIB_DIR" ]]; then
    log "DynamoDB Local ${DDB_LOCAL_VERSION} already in ${INSTALL_DIR}"
    return 0
  fi
  have npm || die "npm is required to download DynamoDB Local (npm pack ${SIMULATOR_PACKAGE}@${SIMULATOR_VERSION})"
  have tar || die "tar is required"

  local tmp tgz
  tmp="$(mktemp -d "${CACHE_DIR}/.fetch.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf -- '$tmp'" EXIT

  log "downloading ${SIMULATOR_PACKAGE}@${SIMULATOR_VERSION} from the npm registry (~57 MB) ..."
  # npm verifies the tarball against the registry's sha512 integrity.
  (cd -- "$tmp" && npm pack --silent "${SIMULATOR_PACKAGE}@${SIMULATOR_VERSION}" >&2) ||
    die "npm pack ${SIMULATOR_PACKAGE}@${SIMULATOR_VERSION} failed"
  tgz="${tmp}/${SIMULATOR_PACKAGE}-${SIMULATOR_VERSION}.tgz"
  [[ -f "$tgz" ]] || die "npm pack did not produce $tgz"

  log "extracting DynamoDB Local ..."
  mkdir -p -- "${tmp}/x"
  tar -xzf "$tgz" -C "${tmp}/x" package/emulator || die "extracting $tgz failed"
  rm -f -- "$tgz"
  local src="${tmp}/x/package/emulator"
  [[ -f "${src}/DynamoDBLocal.jar" && -d "${src}/DynamoDBLocal_lib" ]] ||
    die "DynamoDBLocal.jar / DynamoDBLocal_lib not found in ${SIMULATOR_PACKAGE}@${SIMULATOR_VERSION}"

  local sum
  sum="$(sha256_of "${src}/DynamoDBLocal.jar")"
  if [[ -z "$sum" ]]; then
    log "warning: no sha256 tool found; skipping jar checksum verification"
  elif [[ "$sum" != "$DDB_LOCAL_JAR_SHA256" ]]; then
    die "DynamoDBLocal.jar sha256 mismatch: got $sum, expected $DDB_LOCAL_JAR_SHA256"
  fi

  rm -rf -- "$INSTALL_DIR"
  mv -- "$src" "$INSTALL_DIR"
  printf '%s %s %s\n' "${SIMULATOR_PACKAGE}@${SIMULATOR_VERSION}" "${DDB_LOCAL_VERSION}" "$DDB_LOCAL_JAR_SHA256" >"$MARKER"
  rm -rf -- "$tmp"
  trap - EXIT
  log "DynamoDB Local ${DDB_LOCAL_VERSION} ready in ${INSTALL_DIR}"
}

cmd_status() {
  local code pid
  code="$(http_status "$PORT")"
  if [[ "$code" == 200 ]]; then
    if pid="$(read_pid)" && pid_is_ours "$pid" "$PORT"; then
      log "running on port ${PORT} (pid ${pid})"
    else
      log "something answering like DynamoDB Local is on port ${PORT} (not started by this script)"
    fi
    print_export
    return 0
  fi
  log "not running on port ${PORT} (probe: HTTP ${code})"
  return 1
}

cmd_start() {
  check_cache_dir_outside_repo
  local java
  java="$(java_bin)"
  have "$java" || die "java not found (install a JRE; tested with OpenJDK 17), or set JAVA / JAVA_HOME"

  cmd_fetch
  lock "${CACHE_DIR}/dynamodb-local.${PORT}.lock"

  local pid code
  if pid="$(read_pid)"; then
    if pid_is_ours "$pid" "$PORT"; then
      code="$(http_status "$PORT")"
      if [[ "$code" == 200 ]]; then
        log "already running on port ${PORT} (pid ${pid})"
        print_export
        return 0
      fi
      log "pid ${pid} exists but does not answer (HTTP ${code}); restarting it"
      stop_pid "$pid"
    fi
    rm -f -- "$PID_FILE"
  fi

  code="$(http_status "$PORT")"
  if [[ "$code" == 200 ]]; then
    log "DynamoDB Local (not started by this script) already answers on port ${PORT}; using it ('stop' will not touch it)"
    print_export
    return 0
  elif [[ "$code" != 000 ]]; then
    die "port ${PORT} is in use by something else (HTTP ${code} to a ListTables probe)"
  fi

  local -a java_opts extra_args
  read -r -a java_opts <<<"${DYNAMODB_LOCAL_JAVA_OPTS:--Xmx512m}"
  read -r -a extra_args <<<"${DYNAMODB_LOCAL_EXTRA_ARGS:-}"

  log "starting DynamoDB Local ${DDB_LOCAL_VERSION} on port ${PORT} (log: ${LOG_FILE})"
  local started_at=$SECONDS
  # Run from the install dir so nothing DynamoDB Local might write to its cwd
  # ever lands in the caller's directory (e.g. the repo); stdio detached so `eval "$(... start)"` does not wait on java; fd 9
  # (the lock) closed so the lock is not held for java's lifetime.
  (
    cd -- "$INSTALL_DIR"
    exec nohup "$java" ${java_opts[@]+"${java_opts[@]}"} \
      "-Djava.library.path=${LIB_DIR}" -jar "$JAR" \
      -inMemory -port "$PORT" -disableTelemetry ${extra_args[@]+"${extra_args[@]}"} \
      </dev/null >"$LOG_FILE" 2>&1 9>&-
  ) &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  # Interrupted while waiting: do not leave a half-started server behind.
  # shellcheck disable=SC2064 # expand $pid now
  trap "stop_pid '$pid'; rm -f -- '$PID_FILE'; exit 130" INT TERM

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f -- "$PID_FILE"
      log "DynamoDB Local exited during startup"
      log_tail
      exit 1
    fi
    code="$(http_status "$PORT")"
    if [[ "$code" == 200 ]]; then
      break
    fi
    if ((SECONDS >= deadline)); then
      log "DynamoDB Local did not answer on port ${PORT} within ${START_TIMEOUT}s (last probe: HTTP ${code})"
      log_tail
      stop_pid "$pid"
      rm -f -- "$PID_FILE"
      exit 1
    fi
    sleep 0.25
  done
  trap - INT TERM
  log "ready on port ${PORT} (pid ${pid}) after $((SECONDS - started_at))s"
  print_export
}

# Stop a process: TERM, wait, then KILL.
stop_pid() {
  local pid="$1" deadline
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "pid ${pid} ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
}

cmd_stop() {
  lock "${CACHE_DIR}/dynamodb-local.${PORT}.lock"
  local pid
  if ! pid="$(read_pid)"; then
    log "not running on port ${PORT} (no pid file ${PID_FILE})"
    return 0
  fi
  if pid_is_ours "$pid" "$PORT"; then
    log "stopping DynamoDB Local on port ${PORT} (pid ${pid})"
    stop_pid "$pid"
    if kill -0 "$pid" 2>/dev/null; then
      die "pid ${pid} is still alive"
    fi
    log "stopped"
  else
    log "stale pid file ${PID_FILE} (pid ${pid} is not DynamoDB Local on port ${PORT}); removing it"
  fi
  rm -f -- "$PID_FILE"
}

main() {
  (($# > 0)) || {
    usage
    exit 2
  }
  local cmd="$1"
  shift
  case "$cmd" in
    fetch)
      (($# == 0)) || die "fetch takes no arguments"
      cmd_fetch
      ;;
    start)
      parse_port "$@"
      cmd_start
      ;;
    stop)
      parse_port "$@"
      cmd_stop
      ;;
    status)
      parse_port "$@"
      cmd_status
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
