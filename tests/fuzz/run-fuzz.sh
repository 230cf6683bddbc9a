#!/usr/bin/env bash
# Fuzzes the task document parser with libFuzzer for a bounded time
# (MTASK_FUZZ_SECONDS, default 20) under ASan and UBSan. Prints TAP. Needs
# clang with libFuzzer (Debian: clang, libclang-rt-14-dev); skips without.
set -uo pipefail
root=$1
seconds=${MTASK_FUZZ_SECONDS:-20}
echo "1..1"
if ! command -v clang >/dev/null 2>&1; then
  echo "ok 1 /fuzz/task_parser/libfuzzer # SKIP clang is not installed"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! out=$(clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
      -I"$root/core/include" -I"$root/core/src" $(pkg-config --cflags libmongoc-1.0) \
      "$root/tests/fuzz/fuzz-task.c" "$root/core/src/task.c" "$root/core/src/cron.c" "$root/core/src/context.c" \
      $(pkg-config --libs libmongoc-1.0) -o "$work/fuzz-task" 2>&1); then
  echo "not ok 1 /fuzz/task_parser/libfuzzer"
  printf '%s\n' "$out" | sed 's/^/# /'
  exit 1
fi
mkdir -p "$work/corpus"
if out=$("$work/fuzz-task" -max_total_time="$seconds" -max_len=4096 -timeout=5 "$work/corpus" 2>&1); then
  runs=$(printf '%s\n' "$out" | grep -o 'Done [0-9]* runs' | tail -1)
  echo "ok 1 /fuzz/task_parser/libfuzzer # ${runs:-done} in ${seconds}s"
else
  echo "not ok 1 /fuzz/task_parser/libfuzzer"
  printf '%s\n' "$out" | tail -40 | sed 's/^/# /'
  exit 1
fi
