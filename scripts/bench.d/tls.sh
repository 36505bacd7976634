# scripts/bench.d/tls.sh, sourced by scripts/bench: section 13, --tls.
# Three tables, each beside socat OPENSSL and ncat --ssl in the same run:
#
# a. transfers: BENCH_TLS_MIB (1024) MiB of random bytes through pipes
#    (`cat FILE | sender`, `receiver < /dev/null | wc -c`, the count checked
#    on every run), client -> server and server -> client: time, CPU
#    seconds per GiB of both sides (user+sys, children included: chat's
#    TLS pump), peak RSS, as ratios to socat OPENSSL. Every tool uses the
#    same ECDSA P-256 certificate (the one chatd makes), TLS 1.3, and
#    verifies it (--pin, cafile=, ncat's peer is not verified: ncat
#    --ssl-verify wants a DNS name, and costs the same).
#    Goal: at least 1.2 x socat's MiB/s, at most 0.8 x its CPU.
# b. set-up: BENCH_TLS_CONNS (100) connections one after another, each a
#    client process that sends the line `bye` to a fork-per-connection
#    echo server that sends it back and closes (chatd --echo, whose echo
#    word bye closes; ncat -k --exec 'head -n1'; socat fork EXEC:'head
#    -n1'), reads it back and ends when the server closes (ncat
#    --no-shutdown, socat -t 5: ncat --ssl would close at once at the end
#    of its input); milliseconds per connection with and without TLS, and
#    the difference: what the TLS handshake costs each tool.
# c. the room: N = BENCH_TLS_ROOM (1000) TLS clients of
#    examples/tlsroom.rs join `chatd --broker --tls` (each shows a
#    certificate), then one line is said: chatd's RSS after the joins, its
#    peak, the time to join, and the time for the line to reach everyone;
#    the same room without TLS beside. Goal: under 128 MiB.
# shellcheck shell=bash


tls_tools=(t-chat t-raw t-socat t-socat128 t-ncat)
declare -A tls_failed=()   # TOOL@DIR -> runs that failed (ncat --ssl only)
label+=(
  [t-chat]="chatd/chat --tls"
  [t-raw]="chatd/chat --tls --raw"
  [t-socat]="socat OPENSSL"
  [t-socat128]="socat -b 131072 OPENSSL"
  [t-ncat]="ncat --ssl"
)

# tls_setup: the certificate every tool uses, made by chatd in a
# configuration directory of the benchmark's own (XDG_CONFIG_HOME).
tls_setup() {
  export XDG_CONFIG_HOME=$tmp/tlsconf
  timeout "$LIMIT" "$CHATD" --tls --print-cert >"$tmp/tls-cert.pem" || die "chatd --tls --print-cert failed"
  TLS_CERT=$tmp/tls-cert.pem
  TLS_KEY=$XDG_CONFIG_HOME/chat/chatd-key.pem
  TLS_FP=SHA256:$(openssl x509 -noout -fingerprint -sha256 -in "$TLS_CERT" | cut -d= -f2)
}

# tls_way TOOL DIR OUT: one transfer of FILES with TOOL, client -> server
# (DIR cs) or server -> client (sc).
tls_way() {
  local tool=$1 dir=$2 out=$3
  local listen="OPENSSL-LISTEN:@P,bind=127.0.0.1,reuseaddr,cert=$TLS_CERT,key=$TLS_KEY,verify=0"
  local connect="OPENSSL:127.0.0.1:@P,cafile=$TLS_CERT,commonname=chatd"
  local -a raw=() buf=()
  case $tool in
  t-chat | t-raw)
    [ "$tool" = t-raw ] && raw=(--raw)
    pipe_pair "$tool" "$dir" "$out" -- \
      "$CHATD" -1 -q --tls "${raw[@]}" -b 127.0.0.1 -p @P -- \
      "$CHAT" -q --tls --pin "$TLS_FP" "${raw[@]}" --retry 5 127.0.0.1 @P ;;
  t-socat | t-socat128)
    [ "$tool" = t-socat128 ] && buf=(-b 131072)
    if [ "$dir" = cs ]; then
      pipe_pair "$tool" "$dir" "$out" -- socat "${buf[@]}" -u "$listen" - -- socat "${buf[@]}" -u - "$connect"
    else
      pipe_pair "$tool" "$dir" "$out" -- socat "${buf[@]}" -u - "$listen" -- socat "${buf[@]}" -u "$connect" -
    fi ;;
  t-ncat)
    local -a ssl=(--ssl --ssl-cert "$TLS_CERT" --ssl-key "$TLS_KEY")
    if [ "$dir" = cs ]; then
      pipe_pair "$tool" "$dir" "$out" -- ncat -l 127.0.0.1 @P "${ssl[@]}" --recv-only -- \
        ncat --ssl --send-only 127.0.0.1 @P
    else
      pipe_pair "$tool" "$dir" "$out" -- ncat -l 127.0.0.1 @P "${ssl[@]}" --send-only -- \
        ncat --ssl --recv-only 127.0.0.1 @P
    fi ;;
  esac
}

# tls_transfers DIR: REPS rounds of every tool in direction DIR, counted.
tls_transfers() {
  local dir=$1 rep tool key
  for tool in "${tls_tools[@]}"; do
    key=$tool@$dir
    times[$key]="" cpus[$key]="" rss_send[$key]=0 rss_recv[$key]=0
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    for tool in "${tls_tools[@]}"; do
      key=$tool@$dir
      # ncat --ssl sometimes fails (SSL_read error) and loses bytes:
      # counted and shown, not a figure.
      if [ "$tool" = t-ncat ]; then TOLERATE_FAIL=1; else TOLERATE_FAIL=""; fi
      tls_way "$tool" "$dir" "wc:$tmp/tls.count"
      TOLERATE_FAIL=""
      if [ -n "$PAIR_FAILED" ] || [ "$(tr -d ' \n' <"$tmp/tls.count")" != "$((TLS_MIB * 1048576))" ]; then
        tls_failed[$key]=$((${tls_failed[$key]:-0} + 1))
        continue
      fi
      received "$tmp/tls.count" "$((TLS_MIB * 1048576))" "tls $dir, ${label[$tool]}, run $rep"
      times[$key]+=" $SECS"
      cpus[$key]+=" $CPU"
      if [ "$RSS_S" -gt "${rss_send[$key]}" ]; then rss_send[$key]=$RSS_S; fi
      if [ "$RSS_R" -gt "${rss_recv[$key]}" ]; then rss_recv[$key]=$RSS_R; fi
    done
  done
}

# tls_transfer_table: one row per direction and tool, ratios to socat.
tls_transfer_table() {
  local dir tool key m c sm sc
  echo
  echo "13a. --tls transfers: $TLS_MIB MiB of random bytes through pipes, each way (count checked on every run);"
  echo "     x socat = socat's time / this time (above 1: faster); CPU = both sides' user+sys"
  printf '  %-4s %-26s %9s %7s %8s %10s %8s %10s %10s\n' way tool "median s" "MiB/s" "x socat" \
    "CPU s/GiB" "/socat" "RSS send" "RSS recv"
  for dir in cs sc; do
    # shellcheck disable=SC2086 # space-separated numbers
    sm=$(median ${times[t-socat@$dir]})
    # shellcheck disable=SC2086
    sc=$(median ${cpus[t-socat@$dir]})
    for tool in "${tls_tools[@]}"; do
      key=$tool@$dir
      if [ -z "${times[$key]}" ]; then
        printf '  %-4s %-26s every run failed or lost bytes (%s of %s)\n' \
          "$([ "$dir" = cs ] && echo 'c>s' || echo 's>c')" "${label[$tool]}" "${tls_failed[$key]:-0}" "$REPS"
        continue
      fi
      # shellcheck disable=SC2086
      m=$(median ${times[$key]})
      # shellcheck disable=SC2086
      c=$(median ${cpus[$key]})
      [ -n "${tls_failed[$key]:-}" ] &&
        echo "  ($dir, ${label[$tool]}: ${tls_failed[$key]} of $REPS runs failed or lost bytes; the figures are the other runs')"
      awk -v way="$([ "$dir" = cs ] && echo 'c>s' || echo 's>c')" -v name="${label[$tool]}" \
        -v m="$m" -v c="$c" -v sm="$sm" -v sc="$sc" -v mib="$TLS_MIB" \
        -v rs="${rss_send[$key]}" -v rr="${rss_recv[$key]}" 'BEGIN {
          printf "  %-4s %-26s %9.3f %7.0f %8.2f %10.2f %8.2f %6d KiB %6d KiB\n",
            way, name, m, mib / m, sm / m, c * 1024 / mib, c / sc, rs, rr
        }'
    done
  done
  echo "  goal: chatd/chat --tls at least 1.2 x socat OPENSSL's MiB/s, at most 0.8 x its CPU"
}

# tls_server TOOL MODE: starts TOOL's fork-per-connection echo server,
# with TLS (MODE tls) or without (plain), on a free port; sets TLS_SPID.
tls_server() {
  local tool=$1 mode=$2
  pick_port
  case $tool:$mode in
  chat:tls) timeout "$LIMIT" "$CHATD" --echo --tls -q -b 127.0.0.1 -p "$PORT" </dev/null >/dev/null & ;;
  chat:plain) timeout "$LIMIT" "$CHATD" --echo -q -b 127.0.0.1 -p "$PORT" </dev/null >/dev/null & ;;
  ncat:tls)
    timeout "$LIMIT" ncat -l -k 127.0.0.1 "$PORT" --ssl --ssl-cert "$TLS_CERT" --ssl-key "$TLS_KEY" \
      --exec "/usr/bin/head -n1" </dev/null >/dev/null 2>&1 & ;;
  ncat:plain)
    timeout "$LIMIT" ncat -l -k 127.0.0.1 "$PORT" --exec "/usr/bin/head -n1" </dev/null >/dev/null 2>&1 & ;;
  socat:tls)
    timeout "$LIMIT" socat "OPENSSL-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,cert=$TLS_CERT,key=$TLS_KEY,verify=0" \
      "EXEC:/usr/bin/head -n1" </dev/null >/dev/null 2>&1 & ;;
  socat:plain)
    timeout "$LIMIT" socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" "EXEC:/usr/bin/head -n1" \
      </dev/null >/dev/null 2>&1 & ;;
  esac
  TLS_SPID=$!
  live=("$TLS_SPID")
  wait_listen "$PORT" "$TLS_SPID" || die "$tool $mode echo server: never listened on 127.0.0.1:$PORT"
}

# tls_client TOOL MODE: one client of the server on PORT: sends "bye",
# reads it back (checked), ends when the server closes.
tls_client() {
  local tool=$1 mode=$2
  case $tool:$mode in
  chat:tls) timeout "$LIMIT" "$CHAT" -q --tls --pin "$TLS_FP" 127.0.0.1 "$PORT" ;;
  chat:plain) timeout "$LIMIT" "$CHAT" -q 127.0.0.1 "$PORT" ;;
  ncat:tls) timeout "$LIMIT" ncat --no-shutdown --ssl 127.0.0.1 "$PORT" ;;
  ncat:plain) timeout "$LIMIT" ncat --no-shutdown 127.0.0.1 "$PORT" ;;
  socat:tls) timeout "$LIMIT" socat -t 5 - "OPENSSL:127.0.0.1:$PORT,cafile=$TLS_CERT,commonname=chatd" ;;
  socat:plain) timeout "$LIMIT" socat -t 5 - "TCP:127.0.0.1:$PORT" ;;
  esac <"$tmp/x.line" >"$tmp/x.out" 2>/dev/null || die "$tool $mode client failed"
  cmp -s "$tmp/x.line" "$tmp/x.out" || die "$tool $mode: the echo differs"
}

# tls_setup_rounds: REPS rounds of TLS_CONNS connections per tool and
# mode; ms per connection under times[TOOL:MODE].
tls_setup_rounds() {
  local rep tool mode i t0 t1
  printf 'bye\n' >"$tmp/x.line"
  for tool in chat ncat socat; do
    for mode in tls plain; do
      times[$tool:$mode]=""
    done
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    for tool in chat ncat socat; do
      for mode in tls plain; do
        tls_server "$tool" "$mode"
        t0=$EPOCHREALTIME
        for ((i = 0; i < TLS_CONNS; i++)); do
          tls_client "$tool" "$mode"
        done
        t1=$EPOCHREALTIME
        kill -TERM "$TLS_SPID" 2>/dev/null || true
        wait "$TLS_SPID" 2>/dev/null || true
        live=()
        times[$tool:$mode]+=" $(awk -v a="$t0" -v b="$t1" -v n="$TLS_CONNS" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }')"
      done
    done
  done
  echo
  echo "13b. connection set-up: $TLS_CONNS client processes one after another, each sending one line to a"
  echo "     fork-per-connection echo server and reading it back; ms per connection (process start included)"
  printf '  %-8s %12s %12s %14s\n' tool "TLS ms" "plain ms" "TLS costs ms"
  local t p
  for tool in chat ncat socat; do
    # shellcheck disable=SC2086
    t=$(median ${times[$tool:tls]})
    # shellcheck disable=SC2086
    p=$(median ${times[$tool:plain]})
    awk -v n="$tool" -v t="$t" -v p="$p" 'BEGIN { printf "  %-8s %12.2f %12.2f %14.2f\n", n, t, p, t - p }'
  done
}

# tls_room_run MODE: one examples/tlsroom run of TLS_ROOM clients against
# chatd --broker (MODE tls: with --tls); sets ROOM_OUT.
tls_room_run() {
  local mode=$1 spid
  local -a tls=() plain=()
  if [ "$mode" = tls ]; then tls=(--tls); else plain=(--plain); fi
  pick_port
  timeout "$LIMIT" "$CHATD" --broker "${tls[@]}" -q -b 127.0.0.1 -p "$PORT" \
    --max-clients $((TLS_ROOM + 10)) </dev/null >/dev/null &
  local tpid=$!
  live=("$tpid")
  wait_listen "$PORT" "$tpid" || die "chatd --broker ${tls[*]}: never listened on 127.0.0.1:$PORT"
  spid=$(pgrep -P "$tpid" | head -n1 || true)
  [ -n "$spid" ] || die "cannot find chatd's process"
  ROOM_OUT=$(timeout "$LIMIT" "$TLSROOM" "$PORT" "$TLS_ROOM" --pid "$spid" "${plain[@]}" \
    --limit $((LIMIT - 10)) 2>"$tmp/tlsroom.err") ||
    die "tlsroom, $mode: $(head -c 300 "$tmp/tlsroom.err")"
  kill -TERM "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  live=()
}

tls_room_table() {
  local mode rep rss peak join secs
  echo
  echo "13c. the room: $TLS_ROOM clients join chatd --broker (each a TLS client with a certificate, or"
  echo "     plain), then one line is said; RSS after the joins, peak RSS, time to join all, time for the"
  echo "     line to reach everyone (medians of $REPS)"
  printf '  %-22s %10s %10s %10s %12s\n' room "RSS MiB" "peak MiB" "join s" "one line s"
  for mode in tls plain; do
    rss="" peak="" join="" secs=""
    for ((rep = 1; rep <= REPS; rep++)); do
      tls_room_run "$mode"
      read -r _ r p j s <<<"$ROOM_OUT"
      rss+=" $r" peak+=" $p" join+=" $j" secs+=" $s"
    done
    # shellcheck disable=SC2086
    awk -v t="chatd --broker $([ "$mode" = tls ] && echo --tls)" -v r="$(median $rss)" \
      -v p="$(median $peak)" -v j="$(median $join)" -v s="$(median $secs)" \
      'BEGIN { printf "  %-22s %10.1f %10.1f %10.2f %12.3f\n", t, r / 1024, p / 1024, j, s }'
  done
  echo "  goal: under 128 MiB with $TLS_ROOM TLS clients"
}

section_tls() {
  tls_setup
  random_file "$tmp/tls.data" "$TLS_MIB"
  # Once, untimed: every tool delivers a smaller file byte for byte, both
  # ways (cmp); the timed runs count every byte.
  local tool dir
  timeout "$LIMIT" head -c "$((CHECK_MIB < TLS_MIB ? CHECK_MIB : TLS_MIB))M" "$tmp/tls.data" >"$tmp/tls.check"
  FILES=("$tmp/tls.check")
  for tool in "${tls_tools[@]}"; do
    for dir in cs sc; do
      if [ "$tool" = t-ncat ]; then TOLERATE_FAIL=1; else TOLERATE_FAIL=""; fi
      tls_way "$tool" "$dir" "$tmp/tls.out"
      TOLERATE_FAIL=""
      if [ "$tool" = t-ncat ] && { [ -n "$PAIR_FAILED" ] || ! cmp -s "$tmp/tls.check" "$tmp/tls.out"; }; then
        echo "  (check: ${label[$tool]}, $dir: failed or lost bytes: $PAIR_FAILED)"
        continue
      fi
      same "$tmp/tls.check" "$tmp/tls.out" "tls $dir, ${label[$tool]}"
    done
  done
  rm -f "$tmp/tls.out" "$tmp/tls.check"
  FILES=("$tmp/tls.data")
  tls_transfers cs
  tls_transfers sc
  tls_transfer_table
  rm -f "$tmp/tls.data"
  tls_setup_rounds
  tls_room_table
  unset XDG_CONFIG_HOME
}
