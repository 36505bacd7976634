# scripts/bench.d/display.sh, sourced by scripts/bench: section 10, what a
# person's screen costs. BENCH_TTY_MIB (100) MiB of the prose
# corpus shown in a tmux pane of 80x24, the receiving side's standard input
# and output that terminal: chat (cleaning on, as a person runs it), chat
# --raw, `nc -d`, and `cat FILE` alone (the terminal's own ceiling). Each
# run gets a tmux server of its own; the figures are the receiver's CPU
# (user+sys, /usr/bin/time) and the tmux server's (from /proc), beside the
# pipe figures of tables 4 and 5. No byte count: a terminal shows, it does
# not keep (what chat shows is tested in tests/, not here).
# shellcheck shell=bash

tty_tools=(t-chat t-raw t-nc t-cat)
label+=(
  [t-chat]="chatd / chat"
  [t-raw]="chatd / chat --raw"
  [t-nc]="nc -d (OpenBSD)"
  [t-cat]="cat FILE (no network)"
)

# tty_run TOOL FILE: shows FILE in a new tmux server's pane through TOOL.
# Sets SECS (pane start to the receiver's end), CPU (the receiver's user +
# sys seconds) and TMUX_CPU (the tmux server's).
tty_run() {
  local tool=$1 file=$2 sock=chat-bench-$$ spid=
  local -a recv
  rm -f "$tmp/tty.time" "$tmp/tty.stat" "$tmp/tty.rc"
  case $tool in
  t-chat | t-raw)
    local -a raw=()
    [ "$tool" = t-raw ] && raw=(--raw)
    pick_port
    timeout "$LIMIT" "$CHATD" -1 -q "${raw[@]}" -b 127.0.0.1 -p "$PORT" <"$file" >/dev/null &
    spid=$!
    recv=("$CHAT" -q "${raw[@]}" 127.0.0.1 "$PORT") ;;
  t-nc)
    pick_port
    timeout "$LIMIT" "$NC" -N -l 127.0.0.1 "$PORT" <"$file" >/dev/null &
    spid=$!
    recv=("$NC" -d 127.0.0.1 "$PORT") ;;
  t-cat)
    recv=(cat "$file") ;;
  esac
  if [ -n "$spid" ]; then
    live=("$spid")
    wait_listen "$PORT" "$spid" || die "${label[$tool]}: the server never listened on 127.0.0.1:$PORT"
  fi
  # The pane: the receiver under /usr/bin/time, then the tmux server's
  # CPU (the pane's parent), then the signal that it is over. `timeout
  # --foreground`: chat sets the terminal's modes, which a background
  # process group may not do (SIGTTOU would stop it).
  local pane
  pane="timeout --foreground $LIMIT /usr/bin/time -o $tmp/tty.time -f '%U %S' ${recv[*]}; echo \$? > $tmp/tty.rc;"
  pane+=" cut -d' ' -f14,15 /proc/\$PPID/stat > $tmp/tty.stat; tmux -L $sock wait-for -S shown"
  local t0=$EPOCHREALTIME
  timeout "$LIMIT" tmux -L "$sock" -f /dev/null new-session -d -x 80 -y 24 "$pane" ||
    die "${label[$tool]}: tmux new-session failed"
  timeout "$LIMIT" tmux -L "$sock" wait-for shown || die "${label[$tool]}: no end within ${LIMIT}s"
  local t1=$EPOCHREALTIME
  timeout 10 tmux -L "$sock" kill-server 2>/dev/null || true
  if [ -n "$spid" ]; then
    wait "$spid" || die "${label[$tool]}: the server failed"
    live=()
  fi
  [ "$(cat "$tmp/tty.rc")" = 0 ] || die "${label[$tool]}: the receiver's status was $(cat "$tmp/tty.rc")"
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
  CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$tmp/tty.time")
  TMUX_CPU=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($1 + $2) / hz }' "$tmp/tty.stat")
}

section_display() {
  local rep tool file=$tmp/prose-tty m c t
  text_block prose
  timeout "$LIMIT" head -c "$((TTY_MIB * 1048576))" "$tmp/prose-block" >"$file"
  while [ "$(stat -c %s "$file")" -lt $((TTY_MIB * 1048576)) ]; do
    cat "$tmp/prose-block" >>"$file"
  done
  truncate -s "$((TTY_MIB * 1048576))" "$file"
  local -A tty_cpu=() tty_tmux=()
  for tool in "${tty_tools[@]}"; do
    times[$tool]="" tty_cpu[$tool]="" tty_tmux[$tool]=""
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    progress "round $rep of $REPS (${tty_tools[*]})"
    for tool in "${tty_tools[@]}"; do
      tty_run "$tool" "$file"
      times[$tool]+=" $SECS"
      tty_cpu[$tool]+=" $CPU"
      tty_tmux[$tool]+=" $TMUX_CPU"
    done
  done
  echo
  echo "10. a terminal: $TTY_MIB MiB of the prose corpus shown in a tmux pane (80x24), the receiver's stdin and stdout that terminal (chat cleans what it shows); medians of $REPS runs, interleaved; CPU: the receiver's and the tmux server's, s/GiB; no target yet"
  printf '  %-22s %9s %7s %13s %13s\n' tool "median s" "MiB/s" "receiver CPU" "tmux CPU"
  for tool in "${tty_tools[@]}"; do
    # shellcheck disable=SC2086 # space-separated numbers
    m=$(median ${times[$tool]})
    # shellcheck disable=SC2086
    c=$(median ${tty_cpu[$tool]})
    # shellcheck disable=SC2086
    t=$(median ${tty_tmux[$tool]})
    awk -v name="${label[$tool]}" -v m="$m" -v c="$c" -v t="$t" -v mib="$TTY_MIB" 'BEGIN {
      printf "  %-22s %9.3f %7.1f %13.2f %13.2f\n", name, m, mib / m, c * 1024 / mib, t * 1024 / mib
    }'
  done
  rm -f "$file"
}
