#!/usr/bin/env bash
# meson install, then what a plugin author does with the result. First the
# test build's tree under a DESTDIR (its layout); then mtask as an operator
# installs it under a prefix of their own (meson setup --prefix), whose
# programs must run without LD_LIBRARY_PATH, and plugins built against it
# the way docs/plugins.md says (PKG_CONFIG_PATH, then pkg-config): the
# README's ten-line plugin as strict C99, a C++ plugin with g++ and clang++
# at C++17 and C++20, and two bad plugins the worker must both name.
# Prints TAP.
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
skip() { # description, reason
  n=$((n + 1))
  echo "ok $n $1 # SKIP $2"
}
echo "1..24"

# ---- the test build's install, under a DESTDIR: what it installs where ----
check "/install/meson_install" meson install -C "$build" --no-rebuild --destdir "$dest/destdir" --quiet
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"]); print(o["libdir"])')
libdir="$dest/destdir$(echo "$prefix" | head -1)/$(echo "$prefix" | tail -1)"
bindir="$dest/destdir$(echo "$prefix" | head -1)/bin"
incdir="$dest/destdir$(echo "$prefix" | head -1)/include"
check "/install/layout" test -x "$bindir/mtask-worker" -a -x "$bindir/mtaskctl" -a -x "$bindir/mtask-web" \
  -a -f "$incdir/mtask/plugin.h" -a -f "$incdir/mtask/mtask.h" \
  -a -f "$libdir/pkgconfig/mtask.pc" -a -f "$libdir/pkgconfig/mtask-embed.pc" \
  -a -f "$libdir/mtask/plugins/echo.so" -a -f "$libdir/mtask/examples/sleep.so" \
  -a -f "$libdir/mtask/examples/fail.so" -a -f "$libdir/mtask/examples/crash.so" \
  -a -f "$libdir/mtask/examples/transfer.so" -a ! -e "$libdir/mtask/plugins/crash.so"
# The dashboard and its unit, beside the worker's (docs/deploy.md).
root="$dest/destdir$(echo "$prefix" | head -1)"
check "/install/web_and_units" test -x "$bindir/mtask-web" \
  -a -f "$root/lib/systemd/system/mtask-worker@.service" -a -f "$root/lib/systemd/system/mtask-web.service" \
  -a -f "$root/share/doc/mtask/systemd/web.env.example" -a -f "$root/share/doc/mtask/web.md"

# ---- a private prefix, as docs/operations.md says: its own build ----
opt="$dest/opt/mtask"
private_install() {
  meson setup "$dest/build" "$MTASK_SOURCE_ROOT" --prefix "$opt" --buildtype=plain >/dev/null &&
    meson compile -C "$dest/build" mtask mtask-worker mtaskctl mtask-web echo sleep fail crash transfer >/dev/null &&
    meson install -C "$dest/build" --no-rebuild --quiet
}
check "/install/private_prefix" private_install
# Nothing of the environment points at the prefix: the programs find
# libmtask.so.0 through their RUNPATH alone.
unset LD_LIBRARY_PATH
check "/install/worker_version_without_LD_LIBRARY_PATH" sh -c \
  "'$opt/bin/mtask-worker' --version | grep -q '^mtask-worker [0-9.]* (plugin ABI [0-9]*)\$'"
check "/install/mtaskctl_version_without_LD_LIBRARY_PATH" sh -c "'$opt/bin/mtaskctl' --version | grep -q '^mtaskctl '"

# The PKG_CONFIG_PATH line of docs/plugins.md, word for word (but the prefix).
export PKG_CONFIG_PATH=$opt/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkgconfig
check "/install/pkg_config_finds_mtask" pkg-config --exists mtask
check "/install/pkg_config_names_the_prefix" sh -c "pkg-config --cflags mtask | grep -q -- '-I$opt/include'"

plugins="$dest/plugins.d"
mkdir -p "$plugins"
# The README's plugin, word for word, at the strictest C flags.
python3 - "$MTASK_SOURCE_ROOT/README.md" > "$dest/hello.c" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(re.search(r"## A plugin in ten lines\n\n```c\n(.*?)```", text, re.S).group(1))
PY
check "/install/plugin_in_ten_lines" test "$(grep -c . "$dest/hello.c")" -le 10
check "/install/readme_plugin_c99_pedantic" sh -c "cc -std=c99 -Wall -Wextra -pedantic -Werror -shared -fPIC \
  '$dest/hello.c' -o '$plugins/hello.so' \$(pkg-config --cflags --libs mtask)"

# A C++ plugin: MT_PLUGIN_DEFINE with the same '.member = value' arguments as
# in C, in an order C++20's designated initializers would refuse, with state
# that init makes and fini frees. One type per compiler and standard.
cat > "$dest/greet.cpp" <<'CPP'
#include <mtask/plugin.h>

#include <new>
#include <string>

namespace {

struct greeter {
   std::string greeting;
};

bool
greet_init (const mt_host_api_t *host, void **state, bson_error_t *error)
{
   greeter *g = new (std::nothrow) greeter ();

   (void) host;
   if (!g) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "out of memory");
      return false;
   }
   g->greeting = "hello from " PLUGIN_TYPE;
   *state = g;
   return true;
}

void
greet_fini (void *state)
{
   delete static_cast<greeter *> (state);
}

bool
greet_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const greeter *g = static_cast<const greeter *> (state);
   bson_t result = BSON_INITIALIZER;
   bool ok;

   mt_task_log (task, MT_LOG_INFO, "%s", g->greeting.c_str ());
   BSON_APPEND_UTF8 (&result, "greeting", g->greeting.c_str ());
   ok = mt_task_set_result (task, &result, error);
   bson_destroy (&result);
   return ok;
}

} // namespace

MT_PLUGIN_DEFINE (.process = greet_process,
                  .type = PLUGIN_TYPE,
                  .fini = greet_fini,
                  .init = greet_init,
                  .description = "a C++ plugin, built as authors do")
CPP
cxx_types=()
for cxx in g++ clang++; do
  for std in c++17 c++20; do
    type="greet_${cxx//+/x}_${std//+/x}"
    if ! command -v "$cxx" >/dev/null; then
      skip "/install/cxx_plugin/$cxx/$std" "no $cxx (tools/setup installs it)"
      continue
    fi
    cxx_types+=("$type")
    check "/install/cxx_plugin/$cxx/$std" sh -c "$cxx -std=$std -Wall -Wextra -Werror -shared -fPIC \
      -DPLUGIN_TYPE='\"$type\"' '$dest/greet.cpp' -o '$plugins/$type.so' \$(pkg-config --cflags --libs mtask)"
  done
done

# The C++ example of docs/plugins.md, word for word, at each standard.
python3 - "$MTASK_SOURCE_ROOT/docs/plugins.md" > "$dest/docs-greet.cpp" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(re.search(r"\*\*C\+\+\.\*\*.*?```text\n(.*?)```", text, re.S).group(1))
PY
docs_cxx() {
  for cxx in g++ clang++; do
    command -v "$cxx" >/dev/null || continue
    for std in c++17 c++20; do
      $cxx -std=$std -Wall -Wextra -pedantic -Werror -shared -fPIC "$dest/docs-greet.cpp" -o "$dest/docs-greet.so" \
        $(pkg-config --cflags --libs mtask) || return 1
      nm -D --defined-only "$dest/docs-greet.so" | grep -q ' T mt_plugin_entry$' || { echo "$cxx $std: no C entry"; return 1; }
    done
  done
}
check "/install/docs_cxx_example" docs_cxx

db="install_$$"
ctl() { "$opt/bin/mtaskctl" --uri "$MTASK_TEST_URI" --db "$db" "$@"; }
hello_id=$(ctl enqueue --queue general --type hello --params '{"name": "world"}')
cxx_ids=()
for type in "${cxx_types[@]}"; do
  cxx_ids+=("$(ctl enqueue --queue general --type "$type")")
done
check "/install/enqueue" test -n "$hello_id" -a "${#cxx_ids[@]}" -eq "${#cxx_types[@]}"
check "/install/worker_once_without_LD_LIBRARY_PATH" "$opt/bin/mtask-worker" --uri "$MTASK_TEST_URI" --db "$db" \
  --queues general --plugins "$plugins" --plugins "$opt/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/mtask/plugins" --once
check "/install/readme_plugin_result" sh -c "'$opt/bin/mtaskctl' --uri '$MTASK_TEST_URI' --db '$db' show '$hello_id' \
  | grep -q '\"status\" : \"FINISHED\".*\"result\" : { \"name\" : \"world\" }'"
cxx_results() {
  local i=0
  for type in "${cxx_types[@]}"; do
    ctl show "${cxx_ids[$i]}" | grep -q "\"status\" : \"FINISHED\".*\"result\" : { \"greeting\" : \"hello from $type\" }" ||
      { echo "task ${cxx_ids[$i]} of $type:"; ctl show "${cxx_ids[$i]}"; return 1; }
    i=$((i + 1))
  done
}
check "/install/cxx_plugin_results" cxx_results

# Two plugins that would not load, in one directory, built as authors would
# get them wrong: an entry with C++ linkage, and a descriptor of a future
# ABI. The worker names both, by full path, and each reason, then exits 2.
bad="$dest/bad.d"
mkdir -p "$bad"
check "/install/bad_plugins_build" sh -c "c++ -std=c++17 -Wall -Wextra -Werror -shared -fPIC \
    '$MTASK_SOURCE_ROOT/tests/plugins/bad/cxx_entry.cpp' -o '$bad/cxx_entry.so' \$(pkg-config --cflags --libs mtask) &&
  cc -std=c99 -Wall -Wextra -Werror -shared -fPIC \
    '$MTASK_SOURCE_ROOT/tests/plugins/bad/bad_abi.c' -o '$bad/bad_abi.so' \$(pkg-config --cflags --libs mtask)"
worker_out=$("$opt/bin/mtask-worker" --uri "$MTASK_TEST_URI" --db "$db" --queues general --plugins "$bad" --once 2>&1)
status=$?
check "/install/bad_plugins_exit_2" test "$status" -eq 2
check "/install/bad_plugins_cxx_hint" grep -qF \
  "plugin '$bad/cxx_entry.so': its mt_plugin_entry() has C++ linkage (exported as _Z15mt_plugin_entryv), so the worker cannot find it; define the plugin with MT_PLUGIN_DEFINE from <mtask/plugin.h> (which declares it extern \"C\"), or declare it extern \"C\"" \
  <<<"$worker_out"
version=$("$opt/bin/mtask-worker" --version | sed -n 's/^mtask-worker \([^ ]*\) .*/\1/p')
check "/install/bad_plugins_abi_names_version" grep -qF \
  "plugin '$bad/bad_abi.so': ABI version 2, this worker speaks 1 (mtask $version); rebuild the plugin against the <mtask/plugin.h> of mtask $version" \
  <<<"$worker_out"
check "/install/bad_plugins_both_named" grep -qF "2 plugins would not load (the log above gives each reason): $bad/bad_abi.so, $bad/cxx_entry.so" <<<"$worker_out"
[ "$failed" -gt 0 ] && printf '%s\n' "$worker_out" | sed 's/^/# worker: /'
exit $((failed > 0))
