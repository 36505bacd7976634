# scripts/bench.d/bigroom.sh, sourced by scripts/bench: section 12, one line
# to a large room. N = 1,000, 5,000 and 10,000 clients of
# examples/fanout.rs --one-line join `chatd --broker` one after another,
# either each reading all along ("while") or none reading until the end
# ("before", as a class joins before anyone looks at the screen). Then the
# relay's resident size is taken, one client says one line, and every
# client reads until it has it (through whatever was queued for it). The
# table: chatd's RSS after the joins, its peak RSS, and the seconds from
# the line's sending to its arrival at the last client. ncat --broker
# beside at N = 1,000 (its select(2) stops below 1,024 descriptors).
# shellcheck shell=bash

bigroom_tools=(chatd-broker ncat-broker)

# bigroom_run TOOL N MODE: one --one-line run; sets BIG_OUT (N MODE RSS
# PEAK SECONDS).
bigroom_run() {
  local tool=$1 n=$2 mode=$3
  pick_port
  case $tool in
  chatd-broker)
    timeout "$LIMIT" "$CHATD" --broker -q -b 127.0.0.1 -p "$PORT" --max-clients $((n + 10)) \
      </dev/null >/dev/null &
    ;;
  ncat-broker)
    timeout "$LIMIT" ncat -l 127.0.0.1 "$PORT" --broker --max-conns $((n + 10)) \
      </dev/null >/dev/null 2>&1 &
    ;;
  esac
  local tpid=$!
  live=("$tpid")
  wait_listen "$PORT" "$tpid" || die "$tool: never listened on 127.0.0.1:$PORT"
  local spid
  spid=$(pgrep -P "$tpid" | head -n1 || true)
  [ -n "$spid" ] || die "$tool: cannot find the server process"
  BIG_OUT=$(timeout "$LIMIT" "$FANOUT" "$PORT" "$n" 1 --one-line "$mode" --pid "$spid" \
    --limit $((LIMIT - 10)) 2>"$tmp/bigroom.err") ||
    die "$tool, N=$n, $mode: the load generator failed: $(head -c 300 "$tmp/bigroom.err")"
  kill -TERM "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  live=()
}

section_bigroom() {
  local n mode tool rep rss peak secs
  echo
  echo "12. one line to a large room: N clients join one after another, reading all along (while) or"
  echo "    not until the end (before); RSS after the joins, peak RSS, and the time for one line to"
  echo "    reach the last client (medians of $REPS)"
  printf '  %6s %-15s %-7s %12s %12s %12s\n' N tool joined "RSS MiB" "peak MiB" "one line s"
  for n in 1000 5000 10000; do
    for mode in before while; do
      for tool in "${bigroom_tools[@]}"; do
        [ "$tool" = ncat-broker ] && [ "$n" -gt 1000 ] && continue
        rss="" peak="" secs=""
        progress "N=$n, joined $mode, ${label[$tool]}: $REPS runs"
        for ((rep = 1; rep <= REPS; rep++)); do
          bigroom_run "$tool" "$n" "$mode"
          read -r _ _ r p s <<<"$BIG_OUT"
          rss+=" $r" peak+=" $p" secs+=" $s"
        done
        # shellcheck disable=SC2086
        awk -v n="$n" -v t="${label[$tool]}" -v m="$mode" -v r="$(median $rss)" \
          -v p="$(median $peak)" -v s="$(median $secs)" \
          'BEGIN { printf "  %6d %-15s %-7s %12.1f %12.1f %12.3f\n", n, t, m, r / 1024, p / 1024, s }'
      done
    done
    [ "$n" -gt 1000 ] && echo "  $n ncat --broker: cannot (select(2) takes descriptors below FD_SETSIZE, 1024)"
  done
  echo "  target: under 64 MiB with 10,000 clients that joined without reading"
}
