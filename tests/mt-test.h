/* A small test harness: path-named tests, TAP output, assertions that print
 * the bson_error_t, and helpers for integration tests against a real server
 * (tools/devdb) and real worker processes. */
#ifndef MT_TEST_H
#define MT_TEST_H

#include <mtask/mtask.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef void (*mt_test_fn) (void);

void mt_test_add (const char *path, mt_test_fn fn);
/* Runs every test (or those whose path starts with argv[1]) and prints TAP.
 * Exit status 0 when all passed. */
int mt_test_main (int argc, char **argv);

/* Failing an assertion ends the current test. */
void mt_test_fail (const char *file, int line, const char *format, ...) BSON_GNUC_PRINTF (3, 4);

#define ASSERT(cond)                                                  \
   do {                                                               \
      if (!(cond)) {                                                  \
         mt_test_fail (__FILE__, __LINE__, "assertion failed: %s", #cond); \
      }                                                               \
   } while (0)

#define ASSERT_OR_PRINT(cond, err)                                                            \
   do {                                                                                       \
      if (!(cond)) {                                                                          \
         mt_test_fail (__FILE__,                                                              \
                       __LINE__,                                                              \
                       "assertion failed: %s: error %" PRIu32 ".%" PRIu32 ": %s",            \
                       #cond,                                                                 \
                       (err).domain,                                                          \
                       (err).code,                                                            \
                       (err).message);                                                        \
      }                                                                                       \
   } while (0)

#define ASSERT_CMPINT(a, op, b)                                                                    \
   do {                                                                                            \
      int64_t _a = (int64_t) (a), _b = (int64_t) (b);                                              \
      if (!(_a op _b)) {                                                                           \
         mt_test_fail (__FILE__, __LINE__, "%s %s %s: %" PRId64 " %s %" PRId64, #a, #op, #b, _a, #op, _b); \
      }                                                                                            \
   } while (0)

#define ASSERT_CMPSTR(a, b)                                                                          \
   do {                                                                                              \
      const char *_a = (a), *_b = (b);                                                               \
      if (!_a || !_b || strcmp (_a, _b) != 0) {                                                      \
         mt_test_fail (__FILE__, __LINE__, "%s == %s: '%s' != '%s'", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
      }                                                                                              \
   } while (0)

#define ASSERT_CONTAINS(haystack, needle)                                                                 \
   do {                                                                                                   \
      const char *_h = (haystack), *_n = (needle);                                                        \
      if (!_h || !strstr (_h, _n)) {                                                                      \
         mt_test_fail (__FILE__, __LINE__, "%s does not contain '%s': '%s'", #haystack, _n, _h ? _h : "(null)"); \
      }                                                                                                   \
   } while (0)

/* A refusal: `err` is in domain `dom` with code `cod`, and its message
 * contains `fragment`; else fails the test with all three. */
#define ASSERT_ERROR(err, dom, cod, fragment)                                                                 \
   do {                                                                                                     \
      const bson_error_t *_e = &(err);                                                                      \
      const char *_f = (fragment);                                                                          \
      if (_e->domain != (uint32_t) (dom) || _e->code != (uint32_t) (cod) || !strstr (_e->message, _f)) {    \
         mt_test_fail (__FILE__,                                                                            \
                       __LINE__,                                                                            \
                       "expected error %s (%" PRIu32 ").%s (%" PRIu32 ") saying '%s', got %" PRIu32 ".%" PRIu32 ": %s", \
                       #dom,                                                                                \
                       (uint32_t) (dom),                                                                    \
                       #cod,                                                                                \
                       (uint32_t) (cod),                                                                    \
                       _f,                                                                                  \
                       _e->domain,                                                                          \
                       _e->code,                                                                            \
                       _e->message);                                                                        \
      }                                                                                                     \
   } while (0)

/* Both `first` and `second` occur in `haystack`, `first` before. */
#define ASSERT_IN_ORDER(haystack, first, second)                                                           \
   do {                                                                                                    \
      const char *_h = (haystack), *_1 = (first), *_2 = (second);                                          \
      const char *_p1 = _h ? strstr (_h, _1) : NULL, *_p2 = _h ? strstr (_h, _2) : NULL;                   \
      if (!_p1 || !_p2 || _p1 >= _p2) {                                                                    \
         mt_test_fail (__FILE__,                                                                           \
                       __LINE__,                                                                           \
                       "'%s' %s '%s' in %s: '%s'",                                                         \
                       _1,                                                                                 \
                       !_p1 ? "(missing) before" : !_p2 ? "before (missing)" : "not before",               \
                       _2,                                                                                 \
                       #haystack,                                                                          \
                       _h ? _h : "(null)");                                                                \
      }                                                                                                    \
   } while (0)

/* How many lines `text` has: "" none, "a" and "a\n" one. */
int mt_test_lines (const char *text);

/* Polls `cond` every 20 ms until it holds or `timeout_ms` passes; then fails
 * the test naming the condition. Never a bare sleep. */
#define WAIT_UNTIL(cond, timeout_ms)                                                             \
   do {                                                                                          \
      int64_t _deadline = bson_get_monotonic_time () + (int64_t) (timeout_ms) * 1000;            \
      while (!(cond)) {                                                                          \
         if (bson_get_monotonic_time () > _deadline) {                                           \
            mt_test_fail (__FILE__, __LINE__, "timed out after %d ms waiting for %s", (int) (timeout_ms), #cond); \
         }                                                                                       \
         mt_test_nap_ms (20);                                                                    \
      }                                                                                          \
   } while (0)

/* For a wait loop that does more than WAIT_UNTIL (samples as it waits,
 * keeps what it read): fails the test naming `what` it waited for once
 * the monotonic clock (bson_get_monotonic_time) has passed `deadline`. */
#define ASSERT_BEFORE(deadline, what)                                                        \
   do {                                                                                      \
      if (bson_get_monotonic_time () > (deadline)) {                                         \
         mt_test_fail (__FILE__, __LINE__, "timed out waiting for %s", (what));              \
      }                                                                                      \
   } while (0)

void mt_test_nap_ms (int ms);

/* A NULL-ended list of strings, for argv and flag lists:
 * mt_test_worker (W ("--queues", "q", "--once")). */
#define W(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Ends the current test as skipped, saying why (TAP "# SKIP"). */
void mt_test_skip (const char *reason);

/* Runs `fn (data)` when the current test ends, whether it passed, failed
 * (a failed assertion longjmps back into the harness) or was skipped; the
 * last one deferred runs first. For what a test must undo in any case: a
 * failpoint it set, a file it made. An assertion failing inside `fn`
 * fails the test. */
typedef void (*mt_test_cleanup_fn) (void *data);
void mt_test_defer (mt_test_cleanup_fn fn, void *data);

/* Skips the current test, saying why, in a build without failpoints (the
 * worker kills itself at a named point only in a test build, meson option
 * failpoints=true; docs/devdb.md). */
void mt_test_require_failpoints (void);

/* Environment set by tests/meson.build. */
const char *mt_test_env (const char *name);

/* ---- integration ------------------------------------------------------- */

/* The server's URI: $MTASK_TEST_URI (one server for the whole run, started
 * by tests/run), or a devdb this process starts once and stops at exit. */
const char *mt_test_uri (void);
/* Host and port of mt_test_uri (), for --host/--port command lines. */
const char *mt_test_port (void);
mongoc_client_t *mt_test_client (void);
/* A database name unique to this test. */
const char *mt_test_db (void);
/* The collection `name` of the test's database; mt_test_tasks () is
 * "tasks". Destroy with mongoc_collection_destroy. */
mongoc_collection_t *mt_test_collection (const char *name);
mongoc_collection_t *mt_test_tasks (void);

/* Parses `json` (single quotes allowed, turned into double quotes). */
bson_t *mt_test_bson (const char *json);
/* How many tasks match the JSON filter; fails the test on an error. */
int64_t mt_test_count (const char *json_filter);
/* How many documents of `collection` match the JSON filter, given as a
 * printf format; fails the test on an error. */
int64_t mt_test_count_in (const char *collection, const char *format, ...) BSON_GNUC_PRINTF (2, 3);
/* The same on another server than the test's (one the test started), in
 * database `db` through `client`. */
int64_t mt_test_count_at (mongoc_client_t *client, const char *db, const char *collection, const char *json_filter);
/* The first document of `collection` that the JSON filter (a printf
 * format) matches; fails the test when there is none. Free with
 * bson_destroy. */
bson_t *mt_test_find_one (const char *collection, const char *format, ...) BSON_GNUC_PRINTF (2, 3);
/* The task's document, or fails the test. Free with bson_destroy. */
bson_t *mt_test_task (const bson_oid_t *id);
/* The first task `filter` matches in the test's database through `client`
 * (another server's, say), or NULL; bson_destroy it. */
bson_t *mt_test_task_find_at (mongoc_client_t *client, const bson_t *filter);
/* Inserts `doc` into `collection` as any client would; fails the test on
 * an error. */
void mt_test_insert (const char *collection, const bson_t *doc);
/* Inserts the task `json` as another client would, without mt_enqueue and
 * its defaults, under a new ObjectId; returns the id. */
bson_oid_t mt_test_task_insert (const char *json);
/* Sets fields of the task: `format` is a printf format giving the JSON of
 * the $set document, e.g. "{'status': '%s'}". Fails the test on an error. */
void mt_test_task_set (const bson_oid_t *id, const char *format, ...) BSON_GNUC_PRINTF (2, 3);
/* The expireAfterSeconds of the TTL index mtask_ttl of `collection`, -1
 * when there is none; fails the test unless its key is {finished: 1}. */
int64_t mt_test_ttl_seconds (const char *collection);
const char *mt_test_str (const bson_t *doc, const char *dotted);
int64_t mt_test_int (const bson_t *doc, const char *dotted);
int64_t mt_test_date (const bson_t *doc, const char *dotted);
bool mt_test_has (const bson_t *doc, const char *dotted);
bool mt_test_is_null (const bson_t *doc, const char *dotted);
bson_oid_t mt_test_enqueue (const char *queue, const char *type, const char *params_json, const char *opts_json);
char *mt_test_status (const bson_oid_t *id); /* bson_free it */
bool mt_test_status_is (const bson_oid_t *id, const char *status);

/* Starts a process with stdout and stderr captured to a file; NULL-ended
 * argv. A process still running when its test ends fails that test: stop
 * it (mt_test_process_stop, mt_test_worker_stop) or wait for it
 * (mt_test_wait_exit) in the test. */
pid_t mt_test_spawn (const char *const *argv);
/* Waits for it to exit; fails the test after `timeout_ms`. Returns the
 * wait status. */
int mt_test_wait_exit (pid_t pid, int timeout_ms);
/* Its captured output so far (bson_free it). */
char *mt_test_output (pid_t pid);
/* Prints its captured output so far as TAP comments; only the last
 * `last_lines` lines when that is not 0. */
void mt_test_print_output (pid_t pid, int last_lines);
/* Whether its captured output contains `needle`. */
bool mt_test_output_contains (pid_t pid, const char *needle);
/* A wait status as a shell would say it: the exit code, or 128 + signal. */
int mt_test_exit_code (int status);
/* Runs to completion and returns the exit code; output in *out. */
int mt_test_run (const char *const *argv, int timeout_ms, char **out);
/* SIGTERM, and the process must exit 0 within `timeout_ms`; else fails
 * the test with its output. */
void mt_test_process_stop (pid_t pid, int timeout_ms);
/* SIGKILL, as a crash or the OOM killer would, and waits for it (10 s). */
void mt_test_process_kill (pid_t pid);

/* Starts tools/devdb with `args` (NULL-ended, e.g. W ("--port", "0",
 * "--memory")) and waits for its READY line; returns the address it
 * printed (bson_free it) and its pid in *pid. Fails the test, with the
 * devdb's output, when it exits first or is not ready within 120 s. */
char *mt_test_devdb_start (const char *const *args, pid_t *pid);
/* Waits up to 120 s for the READY line of a devdb started with
 * mt_test_spawn and returns its address (bson_free it), or NULL when the
 * devdb exited first (its output says why: mt_test_output). */
char *mt_test_devdb_wait_ready (pid_t pid);

/* ---- a dev database of the test's own ---------------------------------- */

/* A devdb the test starts on an H2 file of its own, so that it can stop it
 * (an outage, a restart) and start it again on the same port, with what
 * it held; and whose failpoints touch no other test. */
typedef struct {
   char *file;              /* the H2 data file, kept across restarts */
   char port[16];           /* chosen by the first start, kept after */
   char *uri;               /* for the test and its workers */
   char options[256];       /* the URI's options, from mt_test_own_db_open */
   pid_t pid;               /* the server, 0 while it is stopped */
   mongoc_client_t *client; /* the test's, NULL while it is stopped */
   bool oplog;              /* started with --oplog (change streams) */
} mt_test_own_db_t;

/* A new data file and a server on a free port; `uri_options` (e.g.
 * "serverSelectionTimeoutMS=1000") go into db->uri. What is left when the
 * test ends (a server, the file) goes then, passed or failed. */
void mt_test_own_db_open (mt_test_own_db_t *db, const char *uri_options);
/* SIGTERM, which closes the H2 file cleanly; the server must exit 0. */
void mt_test_own_db_stop (mt_test_own_db_t *db);
/* Starts it again on its port, with its file. */
void mt_test_own_db_start (mt_test_own_db_t *db);
/* Stops it when it runs, and removes its file. */
void mt_test_own_db_close (mt_test_own_db_t *db);

/* ---- the failCommand failpoint of the test server (docs/devdb.md) ----- */

/* Runs the configureFailPoint command `json` on admin with the harness's
 * client; its reply in *reply (bson_destroy it). */
bool mt_test_failpoint_command (const char *json, bson_t *reply, bson_error_t *error);
/* Sets failCommand to `mode` and `data` (JSON: "'alwaysOn'", "{'times': 2}";
 * data scoped to the test's client by appName or its database by
 * namespace: the server is shared) and returns the reply's count, how
 * often it has fired since the server started. It is turned off when the
 * test ends, passed or failed. */
int64_t mt_test_failpoint_set (const char *mode, const char *data);
/* Turns failCommand off; returns the count. */
int64_t mt_test_failpoint_off (void);
/* A client of the test server named `appname` (none when NULL) that tries
 * each operation once (no retryable reads or writes), so that a
 * failpoint's times and skip count exactly what the test sends.
 * mongoc_client_destroy it. */
mongoc_client_t *mt_test_failpoint_client (const char *appname);

/* ---- gates: a task that waits until the test says ------------------- */

/* The path of this test's gate `name`: a probe task given {'gate': PATH}
 * waits in process() until the gate is open (tests/plugins/good/probe.c),
 * so a test can look at a running task for as long as it needs. Closed
 * when first asked for; removed when the test ends. */
const char *mt_test_gate (const char *name);
/* Opens the gate: the tasks waiting at it go on. */
void mt_test_gate_open (const char *name);

/* How many upkeep ticks have begun in the test's database, over all its
 * workers (the `ticks` document, core/src/upkeep.c); 0 before the first. */
int64_t mt_test_upkeep_ticks (void);

/* A staged group kept `keep_seconds` after it completes (to be looked at),
 * and a task of its stage `stage` on queue "q"; fail the test on error. */
bson_oid_t mt_test_group_new (const char *description, double keep_seconds);
bson_oid_t mt_test_group_add (const bson_oid_t *group, int32_t stage, const char *type, const char *params_json, const char *opts_json);

/* CPU time (user + system) a process has used so far, in ms. */
int64_t mt_test_cpu_ms (pid_t pid);

/* mtaskctl with --uri to the test server, --db mt_test_db () and `args`
 * (NULL-ended); returns its exit code, and its output (stdout and stderr)
 * in *out: bson_free it. */
int mt_test_ctl (char **out, const char *const *args);
#define MT_TEST_CTL(out, ...) mt_test_ctl (out, (const char *const[]){__VA_ARGS__, NULL})

/* mtask-worker with --uri to the test server, --db mt_test_db(), the
 * shipped and test plugin directories, and `extra` flags (NULL-ended). */
pid_t mt_test_worker (const char *const *extra);
/* The same, for a worker whose plugins crash on purpose (the crash plugin
 * under --isolate fork): AddressSanitizer does not catch the SIGSEGV, so
 * it kills the child as it would in production. */
pid_t mt_test_worker_crashing (const char *const *extra);
/* mt_test_worker, once it has said it started (its indexes are built).
 * Starting workers create indexes; on mongo-java-server an update racing
 * with that has been seen to fail with "Unknown error: null", a server-side
 * exception. Real MongoDB has no such race; tests wait instead of depending
 * on either. */
pid_t mt_test_worker_ready (const char *const *extra);
/* SIGTERM, and the worker must exit 0 within 30 s. */
void mt_test_worker_stop (pid_t pid);
/* mtask-worker --once with `extra` flags, as mt_test_worker; it must exit
 * 0 within `timeout_ms`, else the test fails with its output. Returns its
 * pid, for mt_test_output. */
pid_t mt_test_worker_once (const char *const *extra, int timeout_ms);


/* ---- devdb: replica set and command log ---- */

/* Starts tools/devdb --port 0 --memory --replset NAME, the primary of a
 * one-member replica set NAME (docs/devdb.md), as mt_test_devdb_start does;
 * returns its URI with ?replicaSet=NAME (bson_free it) and its pid in *pid. */
char *mt_test_devdb_start_replset (const char *name, pid_t *pid);

/* The command log of the test server (the devdb's devdbCommandLog,
 * docs/devdb.md): the commands it received from the clients named
 * `app_name` (from every client when NULL) since this process last called
 * mt_test_command_log_clear (since the server started, before the first),
 * oldest first, as the `commands` array of the reply (a document with keys
 * "0", "1", ...). bson_destroy it. Fails the test on an error.
 * The server is shared with the other test programs: clearing marks where
 * this process's view of the log begins and removes nothing from it, so
 * that a program cannot empty the log another one is reading. */
void mt_test_command_log_clear (void);
bson_t *mt_test_command_log (const char *app_name);
/* The same on a devdb the test started (mt_test_devdb_start, or _replset):
 * `uri` is the one it returned. Clearing empties that server's log. */
void mt_test_command_log_clear_at (const char *uri);
bson_t *mt_test_command_log_at (const char *uri, const char *app_name);
/* How many commands of `log` (from mt_test_command_log) are named
 * `command` (every one when NULL). */
int mt_test_command_log_count (const bson_t *log, const char *command);

/* ---- races ---------------------------------------------------------------- */

/* Pause failpoints (test builds only, core/src/failpoint.c): a process
 * whose environment has MTASK_FAILPOINT_PAUSE=NAME:DIR stops at the named
 * point of the code until the test lets it go on, so that the test can
 * make another write land between a read and the write that acts on it.
 * The directory is this test's and goes when the test ends; a point left
 * paused lets its process go on after 60 s at most. */

/* The value of MTASK_FAILPOINT_PAUSE that pauses at `name` (for several
 * points, join values with commas); set it in the environment of what the
 * test starts, only for that: the test's own library calls pass the same
 * points. Skips the test in a build without failpoints. */
const char *mt_test_pause_env (const char *name);
/* mt_test_worker_ready with MTASK_FAILPOINT_PAUSE=`env` in its environment
 * alone. */
pid_t mt_test_worker_pausing (const char *env, const char *const *extra);
/* Whether a process has reached `name` (and waits there until released). */
bool mt_test_pause_reached (const char *name);
/* Waits until a process reaches `name`; fails the test after `timeout_ms`. */
void mt_test_pause_wait (const char *name, int timeout_ms);
/* Lets the processes paused at `name` go on; later ones pass it. */
void mt_test_pause_release (const char *name);
/* Waits until a process released at `name` has gone on from it (the
 * write after the point may still be on its way). */
void mt_test_pause_wait_passed (const char *name, int timeout_ms);

/* Whether the last upkeep tick begun in the test's database has ended
 * (the `ticks` document's `ended` is not before its `at`); false before
 * the first. */
bool mt_test_upkeep_tick_over (void);

/* ---- wire ---------------------------------------------------------------- */

/* The test server's URI with `options` ("socketTimeoutMS=500&w=1") added.
 * bson_free it. */
char *mt_test_uri_with (const char *options);
/* mt_test_worker, connecting with `uri` instead of the test server's plain
 * URI (say, one of mt_test_uri_with). */
pid_t mt_test_worker_at (const char *uri, const char *const *extra);
/* How many times `needle` occurs in the process's captured output. */
int mt_test_output_count (pid_t pid, const char *needle);

/* ---- mtask-web over HTTP (moved from test-web.c) ---- */

/* One HTTP answer. */
typedef struct {
   int status;
   char *head; /* the status line and headers */
   char *body;
} mt_test_answer_t;

void mt_test_answer_free (mt_test_answer_t *a);
/* A request to 127.0.0.1:port; `headers` are extra lines, each ending in
 * \r\n, or "". Reads to the end (Connection: close). */
mt_test_answer_t mt_test_http (int port, const char *method, const char *path, const char *headers, const char *body);

/* mtask-web on a free port with `extra` flags; stopped (and its exit
 * status checked: 0, no leak) when the test ends. */
typedef struct {
   pid_t pid;
   int port;
} mt_test_web_t;
mt_test_web_t *mt_test_web_start (const char *const *extra);
mt_test_web_t *mt_test_web_start_at (const char *uri, const char *const *extra);

/* ---- a dev database of the test's own, with change streams ------------- */

/* mt_test_own_db_open, and the server runs with --oplog (so after each
 * mt_test_own_db_start too), so that change streams work on it. */
void mt_test_own_db_open_oplog (mt_test_own_db_t *db, const char *uri_options);

#endif
