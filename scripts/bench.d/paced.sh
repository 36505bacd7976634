# scripts/bench.d/paced.sh, sourced by scripts/bench: section 11, readers
# slower than the talkers. N = 10 clients of examples/fanout.rs
# each paste M = BENCH_PACED_LINES (10000) lines of 32 bytes at once
# (`--burst`: no window) while every client reads at most R bytes per
# second (`--rate`, 10 ms steps): R = 1, 2 and 4 MiB/s. Each client
# receives 9 * M lines, about 4.3 MiB with chatd's prefixes: more than 4
# times chatd's --max-queue (1 MiB). Every delivery is checked, as in
# table 7; a client dropped by the relay fails the row. The figure beside
# the rate: how much of the readers' R the relay used (bytes each client
# received / R / seconds; 100 % = the readers never waited for the relay).
# shellcheck shell=bash

# fan_run and its tables.
# shellcheck source=scripts/bench.d/fanout.sh
source "$bench_d/fanout.sh"

PACED_LINES=${BENCH_PACED_LINES:-10000}

section_paced() {
  local n=10 m=$PACED_LINES rate tool rep base
  local -A use=()
  echo
  echo "11. readers slower than the talkers: N=$n clients each paste M lines of 32 bytes at once, every"
  echo "    client reads at most R; chatd slows the talkers (nobody is dropped), ncat blocks in send()"
  echo "    use: bytes each client received / R / time (100 % = the relay kept every reader busy);"
  echo "    ncat adds no [NAME] prefix (32-byte lines, chatd's are 50): at the same R it delivers more"
  echo "    lines per second, so compare the use column"
  printf '  %6s %-16s %6s %10s %9s %12s %15s %7s %6s %6s\n' \
    R tool M deliveries "median s" deliveries/s "min-max s" "CPU s" ratio use
  for rate in 1 2 4; do
    FAN_EXTRA=(--rate $((rate * 1048576)))
    for tool in "${fan_tools[@]}"; do
      fan_secs[$tool]=""
      fan_cpu[$tool]=""
      use[$tool]=""
    done
    for ((rep = 1; rep <= REPS; rep++)); do
      progress "R=$rate MiB/s, round $rep of $REPS (${fan_tools[*]})"
      for tool in "${fan_tools[@]}"; do
        fan_run "$tool" "$n" "$m" 0 "$LIMIT"
        fan_check "$tool" "$n" "$m"
        fan_secs[$tool]+=" $(echo "$FAN_OUT" | awk '{ print $4 }')"
        fan_cpu[$tool]+=" $FAN_CPU"
        use[$tool]+=" $(echo "$FAN_OUT" | awk -v n="$n" -v r="$rate" '{ printf "%.1f", 100 * $9 / n / (r * 1048576) / $4 }')"
      done
    done
    # shellcheck disable=SC2086
    base=$(median ${fan_secs[chatd-broker]})
    for tool in "${fan_tools[@]}"; do
      # shellcheck disable=SC2086
      printf '  %2d MiB/s%s %5.1f %%\n' "$rate" "$(fan_row "$n" "$m" "$tool" "$base" | cut -c8-)" \
        "$(median ${use[$tool]})"
    done
  done
  FAN_EXTRA=()
}
