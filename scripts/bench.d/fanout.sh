# scripts/bench.d/fanout.sh, sourced by scripts/bench: sections 7 and 8,
# the room: `chatd --broker` against `ncat --broker` with N
# clients of examples/fanout.rs, then one client that never reads.
# shellcheck shell=bash

label[chatd-broker]="chatd --broker"
label[ncat-broker]="ncat --broker"
label[chatd-stalled]="chatd, +1 stalled"
fan_tools=(chatd-broker ncat-broker)
FAN_EXTRA=()

# fan_run TOOL N M STALLED SECS: starts the relay TOOL on a free port, runs
# examples/fanout with N clients of M lines (plus one that never reads if
# STALLED is 1; plus the generator options in the array FAN_EXTRA, if set)
# for at most SECS seconds, then stops the relay. Sets FAN_OUT (the
# generator's line: N M DELIVERIES SECONDS RATE STALLED CPU DROPPED BYTES,
# CPU being the relay's user + system seconds during the timed part,
# DROPPED the seconds to the first `left (too slow)`, BYTES received),
# FAN_RC (its exit status: 0 complete, 3 time limit), FAN_CPU (that CPU
# time) and FAN_HWM (the relay's peak RSS in KiB). Any other failure of the
# generator ends the benchmark.
fan_run() {
  local tool=$1 n=$2 m=$3 stalled=$4 secs=$5
  local max=$((n + 1))
  pick_port
  case $tool in
  chatd-broker)
    timeout "$LIMIT" "$CHATD" --broker -q -b 127.0.0.1 -p "$PORT" --max-clients "$max" \
      </dev/null >/dev/null &
    ;;
  ncat-broker)
    timeout "$LIMIT" ncat -l 127.0.0.1 "$PORT" --broker --max-conns "$max" \
      </dev/null >/dev/null 2>&1 &
    ;;
  esac
  local tpid=$!
  live=("$tpid")
  wait_listen "$PORT" "$tpid" || die "${label[$tool]}: never listened on 127.0.0.1:$PORT"
  local spid
  spid=$(pgrep -P "$tpid" | head -n1 || true)
  [ -n "$spid" ] || die "${label[$tool]}: cannot find the server process"
  local -a extra=(--limit "$secs" --pid "$spid" "${FAN_EXTRA[@]}")
  [ "$stalled" -eq 1 ] && extra+=(--stalled)
  FAN_RC=0
  FAN_OUT=$(timeout "$LIMIT" "$FANOUT" "$PORT" "$n" "$m" "${extra[@]}" 2>"$tmp/fanout.err") ||
    FAN_RC=$?
  if [ "$FAN_RC" -ne 0 ] && [ "$FAN_RC" -ne 3 ]; then
    die "${label[$tool]}, N=$n: the load generator failed (status $FAN_RC): $(head -c 300 "$tmp/fanout.err")"
  fi
  FAN_CPU=$(echo "$FAN_OUT" | awk '{ print $7 }')
  FAN_HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$spid/status")
  kill -TERM "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  live=()
}

# fan_check TOOL N M: fails unless the last run delivered all N*(N-1)*M lines.
fan_check() {
  local want=$(($2 * ($2 - 1) * $3)) got
  got=$(echo "$FAN_OUT" | awk '{ print $3 }')
  [ "$FAN_RC" -eq 0 ] && [ "$got" = "$want" ] ||
    die "${label[$1]}, N=$2: $got of $want deliveries (generator status $FAN_RC)"
}

# Seconds and CPU seconds of each run, by tool (space-separated).
declare -A fan_secs=() fan_cpu=()

# fan_row N M TOOL BASE_SECS: one line of the table, from fan_secs[] and
# fan_cpu[]; the ratio is TOOL's median time / BASE_SECS.
fan_row() {
  local n=$1 m=$2 tool=$3 base=$4 med cpu
  # shellcheck disable=SC2086 # space-separated numbers
  med=$(median ${fan_secs[$tool]})
  # shellcheck disable=SC2086
  cpu=$(median ${fan_cpu[$tool]})
  printf '%s\n' ${fan_secs[$tool]} | sort -g | awk -v n="$n" -v m="$m" -v name="${label[$tool]}" \
    -v med="$med" -v cpu="$cpu" -v base="$base" '
    { v[NR] = $1 }
    END {
      d = n * (n - 1) * m
      printf "  %5d %-16s %6d %10d %9.3f %12.0f %15s %7.2f %6.2f\n",
        n, name, m, d, med, d / med, sprintf("%.3f-%.3f", v[1], v[NR]), cpu, med / base
    }'
}


section_fanout() {
  local n m tool rep base peak_hwm stall_tools
  echo
  echo "7. fan-out: N clients each send M lines of 32 bytes (one write per line, at most about"
  echo "   16384 lines in flight per client), until every client has the (N-1)*M lines of the others"
  echo "   rate: deliveries per second; CPU s: the relay's user+system seconds while timed (median);"
  echo "   ratio = time / chatd's time (above 1: slower than ours)"
  printf '  %5s %-16s %6s %10s %9s %12s %15s %7s %6s\n' \
    N tool M deliveries "median s" deliveries/s "min-max s" "CPU s" ratio
  peak_hwm=0
  for n in 50 200 1000; do
    m=$(((FANOUT_DELIVERIES + n * (n - 1) / 2) / (n * (n - 1))))
    [ "$m" -ge 1 ] || m=1
    for tool in "${fan_tools[@]}"; do
      fan_secs[$tool]=""
      fan_cpu[$tool]=""
    done
    for ((rep = 1; rep <= REPS; rep++)); do
      progress "7. N=$n, round $rep of $REPS (${fan_tools[*]})"
      for tool in "${fan_tools[@]}"; do
        fan_run "$tool" "$n" "$m" 0 "$LIMIT"
        fan_check "$tool" "$n" "$m"
        fan_secs[$tool]+=" $(echo "$FAN_OUT" | awk '{ print $4 }')"
        fan_cpu[$tool]+=" $FAN_CPU"
        if [ "$tool" = chatd-broker ] && [ "$n" -eq 1000 ] && [ "$FAN_HWM" -gt "$peak_hwm" ]; then
          peak_hwm=$FAN_HWM
        fi
      done
    done
    # shellcheck disable=SC2086
    base=$(median ${fan_secs[chatd-broker]})
    for tool in "${fan_tools[@]}"; do
      fan_row "$n" "$m" "$tool" "$base"
    done
  done
  # N = 10,000: chatd alone. ncat --broker waits in select(2), whose sets
  # hold descriptors below FD_SETSIZE (1024): it cannot take that many.
  n=10000
  m=1
  fan_secs[chatd-broker]=""
  fan_cpu[chatd-broker]=""
  for ((rep = 1; rep <= REPS; rep++)); do
    progress "7. N=$n, round $rep of $REPS (chatd-broker)"
    fan_run chatd-broker "$n" "$m" 0 "$LIMIT"
    fan_check chatd-broker "$n" "$m"
    fan_secs[chatd-broker]+=" $(echo "$FAN_OUT" | awk '{ print $4 }')"
    fan_cpu[chatd-broker]+=" $FAN_CPU"
  done
  # shellcheck disable=SC2086
  fan_row "$n" "$m" chatd-broker "$(median ${fan_secs[chatd-broker]})"
  echo "  $n ncat --broker: cannot (select(2) takes descriptors below FD_SETSIZE, 1024)"
  awk -v k="$peak_hwm" 'BEGIN { printf "  peak RSS of chatd --broker with 1000 clients connected and talking: %.1f MiB (target: under 64 MiB)\n", k / 1024 }'

    # 8. one stalled client

  n=200
  m=$STALL_LINES
  stall_tools=(chatd-broker chatd-stalled ncat-broker)
  for tool in "${stall_tools[@]}"; do
    fan_secs[$tool]=""
    fan_cpu[$tool]=""
  done
  local drops=""
  for ((rep = 1; rep <= REPS; rep++)); do
    progress "8. N=$n and one stalled client, round $rep of $REPS (${stall_tools[*]})"
    for tool in "${stall_tools[@]}"; do
      case $tool in
      chatd-stalled)
        fan_run chatd-broker "$n" "$m" 1 "$LIMIT"
        fan_check chatd-broker "$n" "$m"
        [ "$(echo "$FAN_OUT" | awk '{ print $6 }')" = disconnected ] ||
          die "chatd, +1 stalled: the stalled client was never disconnected (raise BENCH_STALL_LINES)"
        drops+=" $(echo "$FAN_OUT" | awk '{ print $8 }')"
        ;;
      *)
        fan_run "$tool" "$n" "$m" 0 "$LIMIT"
        fan_check "$tool" "$n" "$m"
        ;;
      esac
      fan_secs[$tool]+=" $(echo "$FAN_OUT" | awk '{ print $4 }')"
      fan_cpu[$tool]+=" $FAN_CPU"
    done
  done
  echo
  echo "8. one client that never reads: N=$n readers each send M lines, plus 1 client that only connects;"
  echo "   each reader receives $(( (n - 1) * m * 50 / 1048576 )) MiB, more than 4 times chatd's --max-queue (1 MiB);"
  echo "   chatd disconnects the client that never reads (checked on every run) and never waits for it"
  printf '  %5s %-16s %6s %10s %9s %12s %15s %7s %6s\n' \
    N tool M deliveries "median s" deliveries/s "min-max s" "CPU s" ratio
  # shellcheck disable=SC2086
  base=$(median ${fan_secs[chatd-broker]})
  for tool in "${stall_tools[@]}"; do
    fan_row "$n" "$m" "$tool" "$base"
  done
  # shellcheck disable=SC2086
  awk -v a="$(median ${fan_secs[chatd-broker]})" -v b="$(median ${fan_secs[chatd-stalled]})" \
    'BEGIN { printf "  chatd with the stalled client: %.0f %% of its rate without it (target: at least 90 %%)\n", 100 * a / b }'
  # shellcheck disable=SC2086
  printf '%s\n' $drops | sort -g | awk '{ v[NR] = $1 } END {
    printf "  the stalled client was dropped %.2f s after the start (median; %.2f-%.2f), target: within the stall timeout (10 s) + 1 s\n",
      (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'
  # ncat with the stalled client, once: it waits for the client that never
  # reads, so the run ends at the time limit (or completes, if it does not).
  progress "8. ncat --broker with the stalled client, once (up to $STALL_LIMIT s)"
  fan_run ncat-broker "$n" "$m" 1 "$STALL_LIMIT"
  echo "$FAN_OUT" | awk -v rc="$FAN_RC" -v n="$n" -v m="$m" '{
    d = n * (n - 1) * m
    if (rc == 0) printf "  ncat, +1 stalled: completed, %.0f deliveries/s\n", $3 / $4
    else printf "  ncat, +1 stalled: stalled, %d of %d deliveries (%.0f %%) after %.0f s\n", $3, d, 100 * $3 / d, $4
  }'
}
