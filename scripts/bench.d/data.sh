# scripts/bench.d/data.sh: the files scripts/bench sends, sourced by it.
# Each generator checks that its file holds no protocol-word line (bye,
# arret: they end a session unless --raw is given), so that every byte
# sent is a byte the receiver must count.
# shellcheck shell=bash

# random_file PATH MIB: random bytes, with no line that chat would take for
# a protocol word (bye, arret: they end a session unless --raw is given).
random_file() {
  local try
  for try in 1 2 3 4 5; do
    timeout "$LIMIT" head -c "$2M" /dev/urandom >"$1"
    if ! timeout "$LIMIT" grep -aqixE '[[:space:]]*(bye|arret)[[:space:]]*' "$1"; then
      return 0
    fi
  done
  die "could not draw random bytes free of protocol-word lines"
}

# text_block: $tmp/text-block, 16 MiB of lines of 10 to 80 bytes (newline
# included) of letters and spaces: no line can be bye or arret.
text_block() {
  [ -s "$tmp/text-block" ] && return 0
  timeout "$LIMIT" awk -v size=16777216 'BEGIN {
    srand(9)
    for (i = 0; i < 4096; i++) pool = pool (rand() < 0.15 ? " " : sprintf("%c", 97 + int(rand() * 26)))
    while (total < size - 81) {
      n = 10 + int(rand() * 71)
      printf "%s\n", substr(pool, 1 + int(rand() * (4096 - n)), n - 1)
      total += n
    }
    printf "%s\n", substr(pool, 1, size - total - 1)
  }' >"$tmp/text-block"
  [ "$(stat -c %s "$tmp/text-block")" -eq 16777216 ] || die "text block: wrong size"
  ! timeout "$LIMIT" grep -aqxE '(bye|arret)'$'\r''?' "$tmp/text-block" ||
    die "text block: a protocol-word line"
}

# need_room MIB: fails unless the temporary directory has MIB MiB free,
# plus 512 MiB to spare.
need_room() {
  local free
  free=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1024) }')
  [ "$free" -ge $(($1 + 512)) ] ||
    die "$tmp: $free MiB free, the pipeline files need $1 MiB (and 512 to spare)"
}

# text_files MIB: sets FILES to files whose concatenation is MIB MiB of
# text: $tmp/text-MIB (made once) up to 1024 MiB, the 1024 MiB file
# repeated beyond.
text_files() {
  local mib=$1 n i
  FILES=()
  if [ "$mib" -gt 1024 ]; then
    text_files 1024
    for ((i = 1; i < mib / 1024; i++)); do
      FILES+=("$tmp/text-1024")
    done
    return 0
  fi
  if [ ! -s "$tmp/text-$mib" ]; then
    need_room "$mib"
    text_block
    n=$(((mib + 15) / 16))
    for ((i = 0; i < n; i++)); do
      cat "$tmp/text-block"
    done | head -c "$((mib * 1048576))" >"$tmp/text-$mib"
  fi
  FILES=("$tmp/text-$mib")
}
