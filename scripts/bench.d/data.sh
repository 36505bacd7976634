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

# The three corpora of the pipeline and the scanner benchmarks,
# each a 16 MiB block of lines, repeated to size:
#   letters  lines of 10 to 80 bytes (newline included) of random letters
#            and spaces: where bye and arret almost never occur;
#   prose    chat lines in French and English where the words and their
#            near misses are frequent: `ok bye!`, `arret?`, `bye bye`,
#            `byebye`, `j'arrete`, `Bye`, `bye ` (about half the lines hold
#            one, a quarter are one alone);
#   short    very short lines, 2 to 7 bytes before the newline: `ok`, `oui`,
#            `non`, `bye!`, `lol`, `arret?`... (a third are near misses).
corpora=(letters prose short)

# text_block CORPUS: $tmp/CORPUS-block, the corpus's 16 MiB block, made
# once; fails if any line is a protocol word (bye or arret, `\r` or not).
text_block() {
  local corpus=$1 block=$tmp/$1-block
  [ -s "$block" ] && return 0
  case $corpus in
  letters)
    timeout "$LIMIT" awk -v size=16777216 'BEGIN {
      srand(9)
      for (i = 0; i < 4096; i++) pool = pool (rand() < 0.15 ? " " : sprintf("%c", 97 + int(rand() * 26)))
      while (total < size - 81) {
        n = 10 + int(rand() * 71)
        printf "%s\n", substr(pool, 1 + int(rand() * (4096 - n)), n - 1)
        total += n
      }
      printf "%s\n", substr(pool, 1, size - total - 1)
    }' >"$block" ;;
  prose)
    timeout "$LIMIT" awk -v size=16777216 'BEGIN {
      srand(15)
      nw = split("je tu on il elle nous vous le la les un une des de du et ou mais donc alors " \
        "oui non ok merci salut ca va bien super cool demain ce soir a plus tard on se voit " \
        "quand tu veux le cours de reseau tp sur sockets fork accept connect serveur client " \
        "port 8080 the meeting is at noon see you later thanks a lot sounds good lol mdr", w, " ")
      nn = split("bye bye! bye? bye. byebye arret arret? arret! arrete j'\''arrete arrets Bye " \
        "BYE Arret bye-bye goodbye", near, " ")
      nl = split("bye!|bye?|bye.|byebye|bye bye|ok bye|ok bye!|arret?|arret!|arrete|arrets|" \
        "Bye|BYE|bye |byee|by|arre|j'\''arrete|Arret|arret ?|bye bye!|byebye!| bye", alone, "|")
      while (total < size - 200) {
        if (rand() < 0.25) line = alone[1 + int(rand() * nl)]
        else {
          n = 2 + int(rand() * 13)
          line = ""
          for (i = 0; i < n; i++) {
            t = rand() < 0.08 ? near[1 + int(rand() * nn)] : w[1 + int(rand() * nw)]
            line = line (i ? " " : "") t
          }
        }
        printf "%s\n", line
        total += length(line) + 1
      }
      while (total < size - 1) { printf "x"; total++ }
      printf "\n"
    }' >"$block" ;;
  short)
    timeout "$LIMIT" awk -v size=16777216 'BEGIN {
      srand(16)
      n = split("ok oui non bye! lol ah mdr re +1 ok! bye? bye. byebye arret? arret! arrete " \
        "merci cool yes no np Bye BYE byee arre arrets by :) top", line, " ")
      line[++n] = "bye "; line[++n] = "ok bye"; line[++n] = "bye bye"; line[++n] = "ok ok"
      while (total < size - 8) {
        l = line[1 + int(rand() * n)]
        printf "%s\n", l
        total += length(l) + 1
      }
      while (total < size - 1) { printf "x"; total++ }
      printf "\n"
    }' >"$block" ;;
  *) die "unknown corpus '$corpus'" ;;
  esac
  [ "$(stat -c %s "$block")" -eq 16777216 ] || die "$corpus block: wrong size"
  ! timeout "$LIMIT" grep -aqxE '(bye|arret)'$'\r''?' "$block" ||
    die "$corpus block: a protocol-word line"
}

# need_room MIB: fails unless the temporary directory has MIB MiB free,
# plus 512 MiB to spare.
need_room() {
  local free
  free=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1024) }')
  [ "$free" -ge $(($1 + 512)) ] ||
    die "$tmp: $free MiB free, the pipeline files need $1 MiB (and 512 to spare)"
}

# text_files CORPUS MIB: sets FILES to files whose concatenation is MIB
# MiB of the corpus: $tmp/CORPUS-MIB (made once) up to 1024 MiB, the 1024
# MiB file repeated beyond. Whole blocks end with a newline, so a cut
# can make a word line only at the very end: checked.
text_files() {
  local corpus=$1 mib=$2 n i file=$tmp/$1-$2
  FILES=()
  if [ "$mib" -gt 1024 ]; then
    text_files "$corpus" 1024
    for ((i = 1; i < mib / 1024; i++)); do
      FILES+=("$tmp/$corpus-1024")
    done
    return 0
  fi
  if [ ! -s "$file" ]; then
    need_room "$mib"
    text_block "$corpus"
    n=$(((mib + 15) / 16))
    for ((i = 0; i < n; i++)); do
      cat "$tmp/$corpus-block"
    done | head -c "$((mib * 1048576))" >"$file"
    ! tail -c 8 "$file" | grep -aqxE '(bye|arret)'$'\r''?' ||
      die "$corpus, $mib MiB: cut on a protocol-word line"
  fi
  FILES=("$file")
}
