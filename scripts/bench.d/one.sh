# scripts/bench.d/one.sh, sourced by scripts/bench: section 1, one direction.
# BENCH_MIB (256) MiB of random bytes from the server to the client, which
# writes them to `wc -c` (the count checked on every run); once, untimed,
# every pair delivers a 16 MiB file byte for byte (cmp).
# shellcheck shell=bash

one_tools=(chat chat-raw nc socat socat-128k ncat)

# one_way TOOL IN OUT: sends IN from the server to the client's OUT.
one_way() {
  local in=$2 out=$3
  case $1 in
  chat | chat-raw)
    local -a raw=()
    [ "$1" = chat-raw ] && raw=(--raw)
    run_pair "$1" "$in" /dev/null /dev/null "$out" -- \
      "$CHATD" -1 -q "${raw[@]}" -b 127.0.0.1 -p @P -- \
      "$CHAT" -q "${raw[@]}" --retry 5 127.0.0.1 @P ;;
  nc)
    # No -N on the client: with stdin at end of file it would half-close
    # at once, and nc 1.219 serving a file stops at its peer's end of file
    # (the check below catches the lost bytes).
    run_pair "$1" "$in" /dev/null /dev/null "$out" -- \
      "$NC" -N -l 127.0.0.1 @P -- "$NC" 127.0.0.1 @P ;;
  socat | socat-128k)
    local -a buf=()
    [ "$1" = socat-128k ] && buf=(-b 131072)
    run_pair "$1" "$in" /dev/null /dev/null "$out" -- \
      socat "${buf[@]}" -u - TCP-LISTEN:@P,bind=127.0.0.1,reuseaddr -- \
      socat "${buf[@]}" -u TCP:127.0.0.1:@P - ;;
  ncat)
    run_pair "$1" "$in" /dev/null /dev/null "$out" -- \
      ncat -l 127.0.0.1 @P --send-only -- ncat --recv-only 127.0.0.1 @P ;;
  esac
}

# one_run TOOL: one timed transfer of the whole file, counted.
one_run() {
  one_way "$1" "$tmp/one" "wc:$tmp/one.count"
  received "$tmp/one.count" "$((MIB * 1048576))" "one direction, ${label[$1]}"
}

section_one() {
  local tool
  random_file "$tmp/one" "$MIB"
  timeout "$LIMIT" head -c "$((CHECK_MIB < MIB ? CHECK_MIB : MIB))M" "$tmp/one" >"$tmp/check"
  # Once, untimed: every pair delivers a smaller file byte for byte.
  for tool in "${one_tools[@]}"; do
    one_way "$tool" "$tmp/check" "$tmp/check.out"
    same "$tmp/check" "$tmp/check.out" "one direction, ${label[$tool]}"
  done
  rm -f "$tmp/check" "$tmp/check.out"
  bench_rounds one_tools one_run
  table "1. one direction: $MIB MiB of random bytes, server -> client over 127.0.0.1 (receiver < /dev/null | wc -c, count checked on every run)" "MiB:$MIB" one_tools
  rm -f "$tmp/one" "$tmp/one.count"
}
