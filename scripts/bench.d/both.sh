# scripts/bench.d/both.sh, sourced by scripts/bench: section 2, both
# directions at once. BENCH_DUPLEX_MIB (64) MiB of random bytes each way,
# both received files checked with cmp on every run, after the clock stops.
# shellcheck shell=bash

duplex_tools=(chat chat-raw nc socat socat-128k ncat)

# duplex_run TOOL REP: one timed exchange, $tmp/a server -> client and
# $tmp/b client -> server, then both checked.
duplex_run() {
  local tool=$1 rep=$2 sout=$tmp/a.out cout=$tmp/b.out
  case $tool in
  chat | chat-raw)
    local -a raw=()
    [ "$tool" = chat-raw ] && raw=(--raw)
    run_pair "$tool" "$tmp/a" "$sout" "$tmp/b" "$cout" -- \
      "$CHATD" -1 -q "${raw[@]}" -b 127.0.0.1 -p @P -- \
      "$CHAT" -q "${raw[@]}" --retry 5 127.0.0.1 @P ;;
  nc)
    run_pair "$tool" "$tmp/a" "$sout" "$tmp/b" "$cout" -- \
      "$NC" -N -l 127.0.0.1 @P -- "$NC" -N 127.0.0.1 @P ;;
  socat | socat-128k)
    local -a buf=()
    [ "$tool" = socat-128k ] && buf=(-b 131072)
    run_pair "$tool" "$tmp/a" "$sout" "$tmp/b" "$cout" -- \
      socat "${buf[@]}" -t 5 TCP-LISTEN:@P,bind=127.0.0.1,reuseaddr - -- \
      socat "${buf[@]}" -t 5 - TCP:127.0.0.1:@P ;;
  ncat)
    run_pair "$tool" "$tmp/a" "$sout" "$tmp/b" "$cout" -- \
      ncat -l 127.0.0.1 @P -- ncat 127.0.0.1 @P ;;
  esac
  same "$tmp/b" "$sout" "both directions, ${label[$tool]}, client -> server (run $rep)"
  same "$tmp/a" "$cout" "both directions, ${label[$tool]}, server -> client (run $rep)"
}

section_both() {
  random_file "$tmp/a" "$DUPLEX_MIB" # server -> client
  random_file "$tmp/b" "$DUPLEX_MIB" # client -> server
  bench_rounds duplex_tools duplex_run
  rm -f "$tmp/a" "$tmp/b" "$tmp/a.out" "$tmp/b.out"
  table "2. both directions at once: $DUPLEX_MIB MiB each way (rate: both ways together)" \
    "MiB:$((2 * DUPLEX_MIB))" duplex_tools
}
