#!/usr/bin/env bash
# meson install, then what a plugin author does with the result: build the
# README's ten-line plugin with 'pkg-config --cflags --libs mtask' and run it
# in the installed worker. Prints TAP.
set -uo pipefail
build=$1
dest=$(mktemp -d)
if [ -z "${MTASK_TEST_URI:-}" ]; then
  # Run alone, not from tools/test: a server of our own.
  MTASK_ROOT=$MTASK_SOURCE_ROOT
  . "$MTASK_SOURCE_ROOT/tools/devdb-start"
  devdb_start --port 0 --memory >/dev/null
  MTASK_TEST_URI=$DEVDB_URI
fi
trap 'rm -rf "$dest"; [ -n "${DEVDB_PID:-}" ] && devdb_stop' EXIT
n=0 failed=0
check() { # description, then the command
  local what=$1; shift
  n=$((n + 1))
  if out=$("$@" 2>&1); then
    echo "ok $n $what"
  else
    echo "not ok $n $what"
    printf '%s\n' "$out" | sed 's/^/# /'
    failed=$((failed + 1))
  fi
}
echo "1..7"

check "/install/meson_install" meson install -C "$build" --no-rebuild --destdir "$dest" --quiet
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"]); print(o["libdir"])')
libdir="$dest$(echo "$prefix" | head -1)/$(echo "$prefix" | tail -1)"
bindir="$dest$(echo "$prefix" | head -1)/bin"
incdir="$dest$(echo "$prefix" | head -1)/include"

check "/install/layout" test -x "$bindir/mtask-worker" -a -x "$bindir/mtaskctl" \
  -a -f "$incdir/mtask/plugin.h" -a -f "$incdir/mtask/mtask.h" \
  -a -f "$libdir/pkgconfig/mtask.pc" -a -f "$libdir/pkgconfig/mtask-embed.pc" \
  -a -f "$libdir/mtask/plugins/echo.so" -a -f "$libdir/mtask/plugins/sleep.so" \
  -a -f "$libdir/mtask/plugins/fail.so" -a -f "$libdir/mtask/plugins/crash.so"

# The tree sits under DESTDIR, so its prefix line names where it would be;
# a copy names where it is. (PKG_CONFIG_SYSROOT_DIR or --define-variable
# would move libbson's flags too.)
mkdir -p "$dest/pkgconfig"
sed "s|^prefix=.*|prefix=$dest$(echo "$prefix" | head -1)|" "$libdir/pkgconfig/mtask.pc" > "$dest/pkgconfig/mtask.pc"
export PKG_CONFIG_PATH="$dest/pkgconfig"
mkdir -p "$dest/plugins.d"
# The README's plugin, word for word.
python3 - "$MTASK_SOURCE_ROOT/README.md" > "$dest/hello.c" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(re.search(r"## A plugin in ten lines\n\n```c\n(.*?)```", text, re.S).group(1))
PY
check "/install/plugin_in_ten_lines" test "$(grep -c . "$dest/hello.c")" -le 10
check "/install/pkg_config_build" sh -c "cc -std=c11 -Wall -Werror -shared -fPIC '$dest/hello.c' \
  -o '$dest/plugins.d/hello.so' \$(pkg-config --cflags --libs mtask)"

export LD_LIBRARY_PATH="$libdir"
db="install_$$"
id=$("$bindir/mtaskctl" --uri "$MTASK_TEST_URI" --db "$db" enqueue --queue general --type hello --params '{"name": "world"}')
check "/install/enqueue" test -n "$id"
check "/install/worker_runs_plugin" "$bindir/mtask-worker" --uri "$MTASK_TEST_URI" --db "$db" --queues general \
  --plugins "$dest/plugins.d" --plugins "$libdir/mtask/plugins" --once
check "/install/result" sh -c "'$bindir/mtaskctl' --uri '$MTASK_TEST_URI' --db '$db' show '$id' \
  | grep -q '\"status\" : \"FINISHED\".*\"result\" : { \"name\" : \"world\" }'"
exit $((failed > 0))
