# scripts/bench.d/scan.sh, sourced by scripts/bench: section 9, the word
# scanner alone. examples/wordscan.rs scans each corpus's 16 MiB
# block (data.sh) in memory, 128 KiB at a time, BENCH_SCAN_MIB (256) MiB a
# round, with chatd's scanner and the other scans considered for it,
# interleaved, REPS rounds; every scan is first checked to find nothing in
# each corpus and to find planted words where they are.
# shellcheck shell=bash

section_scan() {
  local corpus
  local -a args=()
  progress "writing the three 16 MiB blocks, then $REPS rounds of $SCAN_MIB MiB a scan"
  for corpus in "${corpora[@]}"; do
    text_block "$corpus"
    args+=("$corpus=$tmp/$corpus-block")
  done
  echo
  echo "9. word scanner alone (examples/wordscan.rs): GB/s through chatd's scanner and the scans considered for it, $SCAN_MIB MiB a round in 128 KiB chunks, median (min-max) of $REPS interleaved rounds; goal: chatd >= 4 GB/s on every corpus, not slower with more near misses"
  timeout $((10 * LIMIT)) "$WORDSCAN" --mib "$SCAN_MIB" --rounds "$REPS" "${args[@]}" ||
    die "examples/wordscan failed"
}
