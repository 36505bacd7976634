# scripts/bench.d/pipeline.sh, sourced by scripts/bench: sections 4 and 5,
# pipelines. BENCH_PIPE_MIB (1024) MiB of text through `cat FILE | sender`
# and `receiver < /dev/null | wc -c`, client -> server, then server ->
# client; time, CPU and peak RSS as ratios to OpenBSD nc (lib.sh: pipe_*).
# shellcheck shell=bash

pipe_tools=(p-chat p-raw p-nc p-socat p-ncat)

section_pipeline() {
  local dir out
  text_files 16
  # Once, untimed: every tool delivers the text byte for byte, both ways.
  for dir in cs sc; do
    for tool in "${pipe_tools[@]}"; do
      pipe_way "$tool" "$dir" "$tmp/pipe.out"
      same "$tmp/text-16" "$tmp/pipe.out" "pipeline $dir, ${label[$tool]}"
    done
  done
  rm -f "$tmp/pipe.out"
  text_files "$PIPE_MIB"
  pipe_rounds pipe_tools cs "$PIPE_MIB"
  pipe_table "4. pipeline, client -> server: $PIPE_MIB MiB of text, cat FILE | client ... server < /dev/null | wc -c (count checked on every run; x nc: nc's time / time; CPU: user+sys of both sides; RSS: peak of each side)" "$PIPE_MIB" pipe_tools
  pipe_rounds pipe_tools sc "$PIPE_MIB"
  pipe_table "5. pipeline, server -> client: $PIPE_MIB MiB of text, cat FILE | server ... client < /dev/null | wc -c (nc -d as the receive-only client)" "$PIPE_MIB" pipe_tools
}
