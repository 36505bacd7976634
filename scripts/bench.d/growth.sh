# scripts/bench.d/growth.sh, sourced by scripts/bench: section 6, growth.
# Ours and nc at BENCH_GROWTH_MIB ("16 256 2048") MiB, client -> server:
# MiB/s and CPU s/GiB must not get worse as the size grows (random letters).
# shellcheck shell=bash

section_growth() {
  local size tool rep key
  local -a gtools=(p-chat p-raw p-nc) sizes
  read -r -a sizes <<<"$GROWTH_MIB"
  progress "writing the files (${sizes[*]} MiB)"
  for size in "${sizes[@]}"; do
    text_files letters "$size" # made before the clock runs
    for tool in "${gtools[@]}"; do
      times[$tool@$size]="" cpus[$tool@$size]=""
    done
  done
  # Sizes interleaved too, so that a change of load hits them alike.
  for ((rep = 1; rep <= REPS; rep++)); do
    progress "round $rep of $REPS (${sizes[*]} MiB through each of ${gtools[*]})"
    for size in "${sizes[@]}"; do
      text_files letters "$size"
      for tool in "${gtools[@]}"; do
        pipe_way "$tool" cs "wc:$tmp/pipe.count"
        received "$tmp/pipe.count" "$((size * 1048576))" "growth $size MiB, ${label[$tool]}, run $rep"
        times[$tool@$size]+=" $SECS"
        cpus[$tool@$size]+=" $CPU"
      done
    done
  done
  echo
  echo "6. growth, client -> server: MiB/s and CPU s/GiB (both sides; /usr/bin/time counts in 10 ms steps) by size, medians of $REPS runs, tools and sizes interleaved"
  printf '  %-20s' tool
  for size in "${sizes[@]}"; do
    printf ' %17s' "$size MiB"
  done
  echo
  for tool in "${gtools[@]}"; do
    printf '  %-20s' "${label[$tool]}"
    for size in "${sizes[@]}"; do
      key=$tool@$size
      # shellcheck disable=SC2086 # space-separated numbers
      awk -v m="$(median ${times[$key]})" -v c="$(median ${cpus[$key]})" -v mib="$size" \
        'BEGIN { printf " %7.0f MiB/s %4.2f", mib / m, c * 1024 / mib }'
    done
    echo
  done
}
