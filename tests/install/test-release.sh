#!/usr/bin/env bash
# The release build, as 'meson setup' makes it with no options and as
# 'meson install' would install it, holds no failpoint code: the tests'
# MTASK_FAILPOINT kills a process on purpose and must never ship. The test
# build beside it (meson option failpoints=true) must have them, or this
# test would prove nothing. Prints TAP.
set -uo pipefail
source=$1
testbuild=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "1..2"

lib() { ls "$1"/core/libmtask.so.*.*.* 2>/dev/null | head -1; }
has_failpoints() { # the library file
  # (no grep -q: with pipefail, its early exit would fail the pipe)
  strings "$1" | grep MTASK_FAILPOINT >/dev/null || nm "$1" 2>/dev/null | grep mt_failpoint >/dev/null
}

if [ -n "$(lib "$testbuild")" ] && has_failpoints "$(lib "$testbuild")"; then
  echo "ok 1 /release/test_build_has_failpoints"
else
  echo "not ok 1 /release/test_build_has_failpoints"
  echo "# $(lib "$testbuild"): no MTASK_FAILPOINT; is the test build set up with -Dfailpoints=true?"
fi

if ! out=$(meson setup "$work/build" "$source" --buildtype=release 2>&1 &&
           meson compile -C "$work/build" mtask 2>&1); then
  echo "not ok 2 /release/no_failpoints"
  printf '%s\n' "$out" | tail -20 | sed 's/^/# /'
  exit 1
fi
if has_failpoints "$(lib "$work/build")"; then
  echo "not ok 2 /release/no_failpoints"
  echo "# $(lib "$work/build") holds failpoint code:"
  { strings "$(lib "$work/build")" | grep MTASK_FAILPOINT; nm "$(lib "$work/build")" | grep mt_failpoint; } | sed 's/^/#   /'
else
  echo "ok 2 /release/no_failpoints"
fi
