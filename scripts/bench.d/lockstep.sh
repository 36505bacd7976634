# scripts/bench.d/lockstep.sh, sourced by scripts/bench: section 3,
# lockstep. BENCH_ROUNDS (10000) rounds of one short line each way,
# `chatd -a`/`chat -a` against examples/pingpong.rs, the least code that
# does the same on the wire; both sides' lines checked with cmp.
# shellcheck shell=bash

lock_tools=(chat pingpong)

# lock_lines WORD: ROUNDS lines "WORD NNNNN", 11 bytes each, as pingpong
# sends them ("ping 00042\n" / "pong 00042\n").
lock_lines() {
  timeout "$LIMIT" awk -v n="$ROUNDS" -v w="$1" \
    'BEGIN { for (i = 0; i < n; i++) printf "%s %05d\n", w, i % 100000 }'
}

# lock_run TOOL: one timed run of ROUNDS rounds.
lock_run() {
  case $1 in
  chat)
    # chat -a speaks first (ping), chatd -a answers (pong).
    run_pair "$1" "$tmp/pong" "$tmp/got-ping" "$tmp/ping" "$tmp/got-pong" -- \
      "$CHATD" -a -1 -q -b 127.0.0.1 -p @P -- \
      "$CHAT" -a -q --retry 5 127.0.0.1 @P
    same "$tmp/ping" "$tmp/got-ping" "lockstep, chatd -a (lines from chat -a)"
    same "$tmp/pong" "$tmp/got-pong" "lockstep, chat -a (lines from chatd -a)" ;;
  pingpong)
    run_pair "$1" /dev/null /dev/null /dev/null /dev/null -- \
      "$PINGPONG" server @P "$ROUNDS" -- "$PINGPONG" client @P "$ROUNDS" ;;
  esac
}

section_lockstep() {
  lock_lines ping >"$tmp/ping"
  lock_lines pong >"$tmp/pong"
  # Its own label for the chat row, for this table only: the sections
  # that come after it (both, growth) name the default mode again.
  label[chat]="chatd -a / chat -a"
  bench_rounds lock_tools lock_run
  table "3. lockstep: $ROUNDS rounds, one 11-byte line each way per round, TCP_NODELAY" \
    "round:$ROUNDS" lock_tools
  label[chat]="chatd / chat"
  rm -f "$tmp"/ping "$tmp"/pong "$tmp"/got-p*
}
