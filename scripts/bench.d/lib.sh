# scripts/bench.d/lib.sh: the plumbing of scripts/bench, sourced by it
# (never run alone): temporary files and cleanup, free ports, launching a
# server/client pair under `timeout` and timing it, byte checks, medians,
# and the two table layouts. The sections (one.sh, both.sh, ...) only say
# what they run and what they print.
#
# Globals it expects from scripts/bench: LIMIT (seconds, for every
# process), REPS (rounds per measurement), NC, CHATD, CHAT.
# shellcheck shell=bash

die() {
  echo "scripts/bench: $*" >&2
  exit 1
}

# require_tools: fails, naming the Debian packages to install, unless
# every tool the benchmark drives is on PATH. It never installs anything:
# a benchmark that changes the machine it measures would be a surprise.
require_tools() {
  # command -> Debian package providing it
  local -A need=([socat]=socat [ncat]=ncat [ss]=iproute2 [nc.openbsd]=netcat-openbsd
    [iperf3]=iperf3 [/usr/bin/time]=time [tmux]=tmux [openssl]=openssl)
  local -a missing=()
  local cmd
  for cmd in "${!need[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "missing tools; install the Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
}

# --- progress ----------------------------------------------------------------

section_name=""   # the section running, for progress lines
section_t0=0      # when it started (whole seconds of EPOCHREALTIME)

# section_begin NAME EXPECTED: a progress line saying that section NAME
# starts and how long it takes with the default settings.
section_begin() {
  section_name=$1
  section_t0=${EPOCHREALTIME%.*}
  progress "started; expect about $2 with the default settings on 2 CPUs"
}

# progress WHAT...: one line on standard error, `scripts/bench: SECTION
# [M:SS]: WHAT`, the time since the section began; the tables on standard
# output stay as they are.
progress() {
  local e=$((${EPOCHREALTIME%.*} - section_t0))
  printf 'scripts/bench: %s [%d:%02d]: %s\n' "$section_name" $((e / 60)) $((e % 60)) "$*" >&2
}

# --- temporary files and cleanup ------------------------------------------

live=()   # pids of the `timeout` processes of a running measurement

# bench_start: makes the temporary directory (tmp) and arranges that on
# exit, or on SIGINT/SIGTERM, every running measurement is stopped and the
# directory removed.
bench_start() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/chat-bench.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

cleanup() {
  local pid
  for pid in "${live[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}

# --- ports and launching ----------------------------------------------------

# Sets PORT to a TCP port from BENCH_PORT (31000) up that no socket uses in
# any state (listening, connected, TIME_WAIT), below the kernel's ephemeral
# range. Two benchmarks run at once on one machine need different bases.
next_port=${BENCH_PORT:-31000}
pick_port() {
  while [ "$next_port" -lt 32768 ]; do
    PORT=$next_port
    next_port=$((next_port + 1))
    if [ -z "$(timeout "$LIMIT" ss -Htan "( sport = :$PORT or dport = :$PORT )")" ]; then
      return 0
    fi
  done
  die "no free port left between ${BENCH_PORT:-31000} and 32767"
}

# Waits (at most 5 s) until something listens on port $1; fails early if
# the process $2 is gone.
wait_listen() {
  local i
  for ((i = 0; i < 500; i++)); do
    [ -n "$(timeout "$LIMIT" ss -Htln "sport = :$1")" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

# launch IN OUT COMMAND...: starts COMMAND in the background under
# `timeout`, stdin from IN, stdout to OUT; OUT = wc:FILE pipes stdout into
# `wc -c` and writes the byte count to FILE instead (the pipeline's status
# is COMMAND's). Sets LAUNCHED to its pid.
launch() {
  local in=$1 out=$2
  shift 2
  if [[ $out == wc:* ]]; then
    (
      set -o pipefail
      timeout "$LIMIT" "$@" <"$in" | wc -c >"${out#wc:}"
    ) &
  else
    timeout "$LIMIT" "$@" <"$in" >"$out" &
  fi
  LAUNCHED=$!
}

# received COUNT_FILE BYTES WHAT: fails unless COUNT_FILE (from wc:) holds BYTES.
received() {
  local got
  got=$(tr -d ' \n' <"$1")
  [ "$got" = "$2" ] || die "$3: received $got bytes of $2: not a figure"
}

# timed_pair NAME SERVER_LAUNCH CLIENT_LAUNCH -- SERVER... -- CLIENT...:
# runs one server/client pair on a free port (@P in the arguments), each
# started by the launcher command held in the array named SERVER_LAUNCH or
# CLIENT_LAUNCH (launch or pipe_launch and their first arguments), the
# client once the server listens. Sets SECS to the time from the client's
# start to both exiting. Fails unless both exit with status 0 (with
# TOLERATE_FAIL set, sets PAIR_FAILED to what failed instead).
timed_pair() {
  local name=$1
  local -n slaunch=$2 claunch=$3
  shift 4
  local -a srv=() cli=()
  while [ "$1" != -- ]; do
    srv+=("$1")
    shift
  done
  shift
  cli=("$@")
  pick_port
  srv=("${srv[@]//@P/$PORT}")
  cli=("${cli[@]//@P/$PORT}")
  "${slaunch[@]}" "${srv[@]}"
  local spid=$LAUNCHED
  live=("$spid")
  wait_listen "$PORT" "$spid" || die "$name: the server never listened on 127.0.0.1:$PORT"
  local t0=$EPOCHREALTIME
  "${claunch[@]}" "${cli[@]}"
  local cpid=$LAUNCHED
  live+=("$cpid")
  local src=0 crc=0
  wait "$cpid" || crc=$?
  wait "$spid" || src=$?
  local t1=$EPOCHREALTIME
  live=()
  PAIR_FAILED=""
  if [ "$src" -ne 0 ] || [ "$crc" -ne 0 ]; then
    # A section that reports a tool's failures instead of stopping
    # (ncat --ssl's lost bytes, in tls.sh) sets TOLERATE_FAIL.
    [ -n "${TOLERATE_FAIL:-}" ] ||
      die "$name: exit status server $src, client $crc (124: timed out after ${LIMIT}s)"
    PAIR_FAILED="exit status server $src, client $crc"
  fi
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
}

# run_pair NAME SERVER_IN SERVER_OUT CLIENT_IN CLIENT_OUT -- SERVER... -- CLIENT...
# timed_pair with each side's standard input and output; an OUT may be
# wc:FILE (see launch). Sets SECS.
run_pair() {
  local name=$1
  local -a sl=(launch "$2" "$3") cl=(launch "$4" "$5")
  shift 5
  timed_pair "$name" sl cl "$@"
}

# same FILE1 FILE2 WHAT: fails unless the two files are byte-identical.
same() {
  timeout "$LIMIT" cmp -s "$1" "$2" ||
    die "$3: the received bytes differ from the bytes sent ($(stat -c %s "$2") of $(stat -c %s "$1") bytes received)"
}

# --- medians and tables ------------------------------------------------------

# median NUMBER...: the median (the mean of the two middle ones for an
# even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A times=()   # tool -> space-separated seconds
# tool -> its name in the tables (a section may add its own)
declare -A label=(
  [chat]="chatd / chat"
  [chat-raw]="chatd / chat --raw"
  [nc]="nc -N (OpenBSD)"
  [socat]="socat (8 KiB buffer)"
  [socat-128k]="socat -b 131072"
  [ncat]="ncat"
  [pingpong]="examples/pingpong"
)

# bench_rounds TOOLS_ARRAY_NAME RUNNER: REPS rounds of RUNNER TOOL REP over
# the tools, round-robin; RUNNER sets SECS. Starts the tools' times afresh.
bench_rounds() {
  local -n tools_ref=$1
  local rep tool
  for tool in "${tools_ref[@]}"; do
    times[$tool]=""
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    progress "round $rep of $REPS (${tools_ref[*]})"
    for tool in "${tools_ref[@]}"; do
      "$2" "$tool" "$rep"
      times[$tool]+=" $SECS"
    done
  done
}

# table TITLE UNIT TOOLS_ARRAY_NAME: one row per tool, from times[].
# UNIT "MiB:N" shows N MiB / time; "round:N" shows microseconds per round.
table() {
  local -n rows=$3
  local base tool m
  base=$(median ${times[${rows[0]}]})
  echo
  echo "$1"
  case $2 in
  MiB:*) printf '  %-24s %10s %10s %17s %7s\n' tool "median s" "MiB/s" "min-max s" ratio ;;
  round:*) printf '  %-24s %10s %10s %17s %7s\n' tool "median s" "us/round" "min-max s" ratio ;;
  esac
  for tool in "${rows[@]}"; do
    # shellcheck disable=SC2086 # times are space-separated numbers
    m=$(median ${times[$tool]})
    printf '%s\n' ${times[$tool]} | sort -g | awk -v name="${label[$tool]}" -v m="$m" \
      -v base="$base" -v unit="$2" '
      { v[NR] = $1 }
      END {
        split(unit, u, ":")
        rate = u[1] == "MiB" ? sprintf("%.0f", u[2] / m) : sprintf("%.1f", m / u[2] * 1e6)
        range = sprintf("%.3f-%.3f", v[1], v[NR])
        printf "  %-24s %10.3f %10s %17s %7.2f\n", name, m, rate, range, m / base
      }'
  done
}

# --- pipelines: cat FILES | sender, receiver < /dev/null | wc -c ------------
# Each side under /usr/bin/time (user+sys of the side with its children,
# peak RSS of its largest process). Ratios are to OpenBSD nc in the same run.

declare -A cpus=()    # tool -> space-separated CPU seconds (both sides)
declare -A rss_send=() rss_recv=()   # tool -> largest peak RSS seen, KiB
label+=(
  [p-chat]="chatd / chat"
  [p-raw]="chatd / chat --raw"
  [p-nc]="nc (OpenBSD)"
  [p-socat]="socat -b 131072"
  [p-ncat]="ncat"
  [p-base]="baseline chatd/chat"
)

# pipe_launch ROLE OUT TIMEFILE COMMAND...: starts, under `timeout`,
# a sender (`cat FILES | COMMAND > /dev/null`) or a receiver (`COMMAND <
# /dev/null > OUT`, OUT = wc:FILE for `| wc -c > FILE`), COMMAND under
# /usr/bin/time writing "user sys maxrss" to TIMEFILE. Sets LAUNCHED.
pipe_launch() {
  local role=$1 out=$2 tf=$3
  shift 3
  local -a timed=(timeout "$LIMIT" /usr/bin/time -o "$tf" -f '%U %S %M' "$@")
  if [ "$role" = send ]; then
    (
      set -o pipefail
      timeout "$LIMIT" cat "${FILES[@]}" | "${timed[@]}" >/dev/null
    ) &
  elif [[ $out == wc:* ]]; then
    (
      set -o pipefail
      "${timed[@]}" </dev/null | wc -c >"${out#wc:}"
    ) &
  else
    "${timed[@]}" </dev/null >"$out" &
  fi
  LAUNCHED=$!
}

# pipe_pair NAME DIR OUT -- SERVER... -- CLIENT...: one transfer of FILES,
# client -> server (DIR cs: the server receives) or server -> client (sc),
# on a free port (@P). The receiver writes to OUT (see pipe_launch). Sets
# SECS (client start to both exited), CPU (user+sys, both sides), RSS_S
# and RSS_R (KiB). Fails unless both exit 0.
pipe_pair() {
  local name=$1 dir=$2 out=$3
  local srole=recv crole=send
  [ "$dir" = sc ] && srole=send crole=recv
  local -a sl=(pipe_launch "$srole" "$out" "$tmp/time.srv") cl=(pipe_launch "$crole" "$out" "$tmp/time.cli")
  shift 3
  timed_pair "$name" sl cl "$@"
  local su ss sm cu cs cm
  read -r su ss sm <"$tmp/time.srv"
  read -r cu cs cm <"$tmp/time.cli"
  CPU=$(awk -v a="$su" -v b="$ss" -v c="$cu" -v d="$cs" 'BEGIN { printf "%.2f", a + b + c + d }')
  if [ "$dir" = cs ]; then
    RSS_S=$cm RSS_R=$sm
  else
    RSS_S=$sm RSS_R=$cm
  fi
}

# pipe_way TOOL DIR OUT: one transfer of FILES with TOOL in direction DIR.
pipe_way() {
  local tool=$1 dir=$2 out=$3
  local -a raw=()
  case $tool in
  p-chat | p-raw)
    [ "$tool" = p-raw ] && raw=(--raw)
    pipe_pair "$tool" "$dir" "$out" -- \
      "$CHATD" -1 -q "${raw[@]}" -b 127.0.0.1 -p @P -- \
      "$CHAT" -q "${raw[@]}" --retry 5 127.0.0.1 @P ;;
  p-base)
    pipe_pair "$tool" "$dir" "$out" -- \
      "$BASELINE/chatd" -1 -q -b 127.0.0.1 -p @P -- \
      "$BASELINE/chat" -q --retry 5 127.0.0.1 @P ;;
  p-nc)
    if [ "$dir" = cs ]; then
      pipe_pair "$tool" "$dir" "$out" -- "$NC" -l 127.0.0.1 @P -- "$NC" -N 127.0.0.1 @P
    else
      pipe_pair "$tool" "$dir" "$out" -- "$NC" -N -l 127.0.0.1 @P -- "$NC" -d 127.0.0.1 @P
    fi ;;
  p-socat)
    local listen=TCP-LISTEN:@P,bind=127.0.0.1,reuseaddr connect=TCP:127.0.0.1:@P
    if [ "$dir" = cs ]; then
      pipe_pair "$tool" "$dir" "$out" -- socat -b 131072 -u "$listen" - -- socat -b 131072 -u - "$connect"
    else
      pipe_pair "$tool" "$dir" "$out" -- socat -b 131072 -u - "$listen" -- socat -b 131072 -u "$connect" -
    fi ;;
  p-ncat)
    if [ "$dir" = cs ]; then
      pipe_pair "$tool" "$dir" "$out" -- ncat -l 127.0.0.1 @P --recv-only -- ncat --send-only 127.0.0.1 @P
    else
      pipe_pair "$tool" "$dir" "$out" -- ncat -l 127.0.0.1 @P --send-only -- ncat --recv-only 127.0.0.1 @P
    fi ;;
  esac
}

# pipe_rounds TOOLS_ARRAY_NAME DIR MIB CORPUS...: REPS rounds, each
# corpus's MIB MiB (text_files) sent by each tool in turn, corpora and
# tools interleaved so that a change of load hits them alike; every
# transfer counted at the receiver. Figures under the key TOOL@CORPUS.
pipe_rounds() {
  local -n ptools=$1
  local dir=$2 mib=$3 rep tool corpus key
  shift 3
  for corpus in "$@"; do
    for tool in "${ptools[@]}"; do
      key=$tool@$corpus
      times[$key]="" cpus[$key]="" rss_send[$key]=0 rss_recv[$key]=0
    done
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    for corpus in "$@"; do
      progress "$dir, round $rep of $REPS, $corpus ($mib MiB through each of ${ptools[*]})"
      text_files "$corpus" "$mib"
      for tool in "${ptools[@]}"; do
        key=$tool@$corpus
        pipe_way "$tool" "$dir" "wc:$tmp/pipe.count"
        received "$tmp/pipe.count" "$((mib * 1048576))" "pipeline $dir, $corpus, ${label[$tool]}, run $rep"
        times[$key]+=" $SECS"
        cpus[$key]+=" $CPU"
        if [ "$RSS_S" -gt "${rss_send[$key]}" ]; then rss_send[$key]=$RSS_S; fi
        if [ "$RSS_R" -gt "${rss_recv[$key]}" ]; then rss_recv[$key]=$RSS_R; fi
      done
    done
  done
}

# pipe_table TITLE MIB TOOLS_ARRAY_NAME CORPUS...: one row per corpus and
# tool, from pipe_rounds; ratios to p-nc on the same corpus.
pipe_table() {
  local -n prow=$3
  local mib=$2 title=$1 tool corpus key m c nm nc
  shift 3
  echo
  echo "$title"
  printf '  %-8s %-20s %9s %7s %6s %10s %6s %10s %10s %9s\n' corpus tool "median s" "MiB/s" "x nc" \
    "CPU s/GiB" "/nc" "RSS send" "RSS recv" "RSS-nc"
  for corpus in "$@"; do
    # shellcheck disable=SC2086 # space-separated numbers
    nm=$(median ${times[p-nc@$corpus]})
    # shellcheck disable=SC2086
    nc=$(median ${cpus[p-nc@$corpus]})
    for tool in "${prow[@]}"; do
      key=$tool@$corpus
      # shellcheck disable=SC2086
      m=$(median ${times[$key]})
      # shellcheck disable=SC2086
      c=$(median ${cpus[$key]})
      awk -v corpus="$corpus" -v name="${label[$tool]}" -v m="$m" -v c="$c" -v nm="$nm" -v nc="$nc" \
        -v mib="$mib" -v rs="${rss_send[$key]}" -v rr="${rss_recv[$key]}" \
        -v ns="${rss_send[p-nc@$corpus]}" -v nr="${rss_recv[p-nc@$corpus]}" 'BEGIN {
          d = rs - ns > rr - nr ? rs - ns : rr - nr
          printf "  %-8s %-20s %9.3f %7.0f %6.2f %10.2f %6.2f %7d KiB %6d KiB %5d KiB\n",
            corpus, name, m, mib / m, nm / m, c * 1024 / mib, c / nc, rs, rr, d
        }'
    done
  done
}

# --- the machine ---------------------------------------------------------

# machine_lines: what the figures were measured on (CPUs, kernel, load,
# tool versions) and how to read them.
machine_lines() {
  echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "versions: $("$CHAT" --version | head -n1);" \
    "nc $(dpkg-query -W -f='${Version}' netcat-openbsd 2>/dev/null || echo '?') (OpenBSD);" \
    "$(socat -V | sed -n 's/^socat version \([^ ]*\).*/socat \1/p');" \
    "$(ncat --version 2>&1 | sed -n 's/^Ncat: Version \([^ ]*\).*/ncat \1/p')"
  echo "each figure: median of $REPS runs, interleaved; ratio = time / chatd-chat's time (above 1: slower than ours)"
}

# The memory-to-memory ceiling: iperf3, one TCP stream over 127.0.0.1.
iperf_ceiling() {
  local out pid
  pick_port
  timeout "$LIMIT" iperf3 -s -1 -B 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
  pid=$!
  wait_listen "$PORT" "$pid" || die "iperf3 -s never listened on 127.0.0.1:$PORT"
  out=$(timeout "$LIMIT" iperf3 -c 127.0.0.1 -p "$PORT" -t 3 -f M 2>&1) ||
    die "iperf3 -c failed: $out"
  wait "$pid" || true
  echo "loopback ceiling (iperf3 -c 127.0.0.1 -t 3, memory to memory):" \
    "$(awk '/receiver/ { print $7 " " $8 }' <<<"$out")"
}
