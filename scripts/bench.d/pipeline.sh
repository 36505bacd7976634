# scripts/bench.d/pipeline.sh, sourced by scripts/bench: sections 4 and 5,
# pipelines. BENCH_PIPE_MIB (1024) MiB of each corpus of
# data.sh (random letters, chat prose full of near misses, very short
# lines) through `cat FILE | sender` and `receiver < /dev/null | wc -c`,
# client -> server, then server -> client; time, CPU and peak RSS as
# ratios to OpenBSD nc on the same corpus (lib.sh: pipe_*).
# shellcheck shell=bash

pipe_tools=(p-chat p-raw p-nc p-socat p-ncat)
# BENCH_BASELINE=DIR: also the default mode of the chatd and chat in DIR
# (another build, e.g. main's target/release), to measure a change.
[ -z "$BASELINE" ] || pipe_tools=(p-chat p-base p-raw p-nc p-socat p-ncat)

section_pipeline() {
  local dir tool corpus
  # Once, untimed: every tool delivers each corpus byte for byte, both ways.
  progress "checking that every tool delivers each corpus byte for byte (16 MiB, both ways)"
  for corpus in "${corpora[@]}"; do
    text_files "$corpus" 16
    for dir in cs sc; do
      for tool in "${pipe_tools[@]}"; do
        pipe_way "$tool" "$dir" "$tmp/pipe.out"
        same "${FILES[0]}" "$tmp/pipe.out" "pipeline $dir, $corpus, ${label[$tool]}"
      done
    done
  done
  rm -f "$tmp/pipe.out"
  local what="MiB of each corpus (letters: random letters; prose: chat text, half the lines hold a near miss of bye/arret; short: lines of 2 to 7 bytes)"
  local goal="goal, default mode: x nc >= 1.2 and CPU/nc <= 0.8 (short: >= 1.1, <= 0.9)"
  pipe_rounds pipe_tools cs "$PIPE_MIB" "${corpora[@]}"
  pipe_table "4. pipeline, client -> server: $PIPE_MIB $what, cat FILE | client ... server < /dev/null | wc -c (count checked on every run; x nc: nc's time / time; CPU: user+sys of both sides; RSS: peak of each side); $goal" \
    "$PIPE_MIB" pipe_tools "${corpora[@]}"
  pipe_rounds pipe_tools sc "$PIPE_MIB" "${corpora[@]}"
  pipe_table "5. pipeline, server -> client: the same, cat FILE | server ... client < /dev/null | wc -c (nc -d as the receive-only client); $goal" \
    "$PIPE_MIB" pipe_tools "${corpora[@]}"
}
