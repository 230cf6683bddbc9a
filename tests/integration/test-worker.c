/* mtask-worker against a real server: the lifecycle of seed 001, field by
 * field, and what a worker does with what it is given. */
#include "mt-test.h"
#include "mtask-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Params for a probe that waits at the test's gate `name`, then does
 * what `more` (JSON members, or "") says. bson_free them. */
static char *
gated (const char *name, const char *more)
{
   return bson_strdup_printf ("{'gate': '%s'%s%s}", mt_test_gate (name), more[0] ? ", " : "", more);
}

static void
test_lifecycle_fields (void)
{
   bson_oid_t id = mt_test_enqueue ("general", "echo", "{'greeting': 'privet', 'n': 3}", NULL);
   bson_t *doc;

   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 0);
   ASSERT_CMPINT (mt_test_int (doc, "priority"), ==, 0);
   bson_destroy (doc);

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);

   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (doc, "result.greeting"), "privet");
   ASSERT_CMPINT (mt_test_int (doc, "result.n"), ==, 3);
   ASSERT_CMPINT (mt_test_date (doc, "started"), >=, mt_test_date (doc, "created") - 1000);
   ASSERT_CMPINT (mt_test_date (doc, "finished"), >=, mt_test_date (doc, "started"));
   ASSERT (!mt_test_has (doc, "error"));
   bson_destroy (doc);
}

static void
test_lifecycle_while_running (void)
{
   /* While process() runs (it waits at a gate): WORK_IN_PROGRESS,
    * worker_pid, started already saved. Afterwards worker_pid is null, and
    * started is still from before the gate opened. */
   char *params = gated ("running", "'status_message': 'half way'");
   bson_oid_t id = mt_test_enqueue ("general", "probe", params, NULL);
   pid_t pid = mt_test_worker (W ("--queues", "general", "--pid", "WORKER-1", "--poll-interval", "0.05"));
   int64_t opened;
   bson_t *doc;

   bson_free (params);
   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
   ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), "WORKER-1");
   ASSERT (mt_test_has (doc, "started"));
   ASSERT_CMPINT (mt_test_date (doc, "started"), >, 0);
   ASSERT (!mt_test_has (doc, "finished"));
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   bson_destroy (doc);

   opened = mt_now_ms ();
   mt_test_gate_open ("running");
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT_CMPSTR (mt_test_str (doc, "status_message"), "half way");
   /* The server's clock and this process's are the machine's. */
   ASSERT_CMPINT (mt_test_date (doc, "started"), <=, opened);
   ASSERT_CMPINT (mt_test_date (doc, "finished"), >=, opened);
   bson_destroy (doc);

   mt_test_process_stop (pid, 20000);
}

static void
test_delayed_not_started_early (void)
{
   bson_oid_t id = mt_test_enqueue ("general", "echo", NULL, "{'delay': 2}");
   pid_t pid = mt_test_worker (W ("--queues", "general", "--poll-interval", "0.05"));
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_date (doc, "started"), >=, mt_test_date (doc, "delayed"));
   ASSERT_CMPINT (mt_test_date (doc, "started") - mt_test_date (doc, "created"), >=, 2000);
   bson_destroy (doc);
   mt_test_process_stop (pid, 20000);
}

static void
test_once_leaves_future_alone (void)
{
   bson_oid_t later = mt_test_enqueue ("general", "echo", NULL, "{'delay': 3600}");
   bson_oid_t now = mt_test_enqueue ("general", "echo", NULL, NULL);

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   ASSERT (mt_test_status_is (&now, "FINISHED"));
   ASSERT (mt_test_status_is (&later, "CREATED"));
}

static void
test_other_queues_left_alone (void)
{
   bson_oid_t mine = mt_test_enqueue ("general", "echo", NULL, NULL);
   bson_oid_t also = mt_test_enqueue ("glavstroy", "echo", NULL, NULL);
   bson_oid_t other = mt_test_enqueue ("reports", "echo", NULL, NULL);

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general", "glavstroy"), 60000);
   ASSERT (mt_test_status_is (&mine, "FINISHED"));
   ASSERT (mt_test_status_is (&also, "FINISHED"));
   ASSERT (mt_test_status_is (&other, "CREATED"));
}

static void
test_unserved_type_left_alone (void)
{
   bson_oid_t nobody = mt_test_enqueue ("general", "report_pdf", NULL, NULL);
   bson_oid_t echo = mt_test_enqueue ("general", "echo", NULL, NULL);
   bson_t *doc;

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   ASSERT (mt_test_status_is (&echo, "FINISHED"));
   doc = mt_test_task (&nobody);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 0);
   bson_destroy (doc);
}

static void
test_priority_then_fifo (void)
{
   /* One thread runs them in claim order; each sleeps 50 ms so `started`
    * orders them. */
   const char *p = "{'seconds': 0.05}";
   bson_oid_t low1 = mt_test_enqueue ("general", "sleep", p, NULL);
   bson_oid_t high = mt_test_enqueue ("general", "sleep", p, "{'priority': 10}");
   bson_oid_t low2 = mt_test_enqueue ("general", "sleep", p, NULL);
   bson_oid_t mid = mt_test_enqueue ("general", "sleep", p, "{'priority': 5}");
   bson_oid_t neg = mt_test_enqueue ("general", "sleep", p, "{'priority': -1}");
   const bson_oid_t *expected[] = {&high, &mid, &low1, &low2, &neg};
   int64_t last = 0;

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   for (size_t i = 0; i < 5; i++) {
      bson_t *doc = mt_test_task (expected[i]);
      int64_t started = mt_test_date (doc, "started");

      ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
      ASSERT_CMPINT (started, >, last);
      last = started;
      bson_destroy (doc);
   }
}

static void
test_raw_insert_minimal (void)
{
   /* Another client, another language: only queue, type and status. */
   bson_oid_t id = mt_test_task_insert ("{'queue': 'general', 'type': 'echo', 'status': 'CREATED'}");
   bson_t *doc;

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT (mt_test_has (doc, "started"));
   ASSERT (mt_test_has (doc, "finished"));
   bson_destroy (doc);
}

static void
expect_failed_naming (const bson_oid_t *id, const char *fragment)
{
   bson_t *doc = mt_test_task (id);

   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "error.domain"), ==, MT_ERROR_TASK);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_MALFORMED);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), fragment);
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   bson_destroy (doc);
}

static void
test_malformed_documents (void)
{
   bson_oid_t no_type = mt_test_task_insert ("{'queue': 'general', 'status': 'CREATED'}");
   bson_oid_t int_type = mt_test_task_insert ("{'queue': 'general', 'status': 'CREATED', 'type': 42}");
   bson_oid_t bad_params = mt_test_task_insert ("{'queue': 'general', 'status': 'CREATED', 'type': 'echo', 'params': 'x=1'}");
   bson_oid_t bad_delayed = mt_test_task_insert ("{'queue': 'general', 'status': 'CREATED', 'type': 'echo', 'delayed': 'tomorrow'}");
   bson_oid_t bad_attempts = mt_test_task_insert ("{'queue': 'general', 'status': 'CREATED', 'type': 'echo', 'attempts': 'two'}");
   bson_oid_t other_queue = mt_test_task_insert ("{'queue': 'elsewhere', 'status': 'CREATED'}");
   bson_oid_t good = mt_test_enqueue ("general", "echo", "{'ok': true}", NULL);

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   expect_failed_naming (&no_type, "field 'type' is required");
   expect_failed_naming (&int_type, "field 'type' must be a string naming a task type, found int32");
   expect_failed_naming (&bad_params, "field 'params' must be a document, found string");
   expect_failed_naming (&bad_delayed, "field 'delayed' must be a date or null, found string");
   expect_failed_naming (&bad_attempts, "field 'attempts' must be a number, found string");
   ASSERT (mt_test_status_is (&other_queue, "CREATED"));
   ASSERT (mt_test_status_is (&good, "FINISHED"));
}

static void
test_plugin_failure (void)
{
   bson_oid_t id = mt_test_enqueue ("general", "fail", "{'message': 'upstream said 503'}", "{'max_attempts': 1}");
   bson_t *doc;

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "error.domain"), ==, MT_ERROR_TASK);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_FAILED);
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "upstream said 503");
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT (mt_test_has (doc, "finished"));
   bson_destroy (doc);
}

static void
test_shipped_plugins_bad_params (void)
{
   bson_oid_t sleep_bad = mt_test_enqueue ("general", "sleep", "{'seconds': 'soon'}", "{'max_attempts': 1}");
   bson_oid_t fail_default = mt_test_enqueue ("general", "fail", NULL, "{'max_attempts': 1}");
   bson_t *doc;

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   doc = mt_test_task (&sleep_bad);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "sleep: params.seconds must be a number, 0 or more");
   bson_destroy (doc);
   doc = mt_test_task (&fail_default);
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "failed on purpose");
   bson_destroy (doc);
}

static void
test_crash_takes_worker_down (void)
{
   /* Without isolation a crashing plugin takes its worker with it
    * (docs/reliability.md says so); the task is left as the crash found it,
    * claimed and started, for an operator or recovery to see. */
   bson_oid_t id = mt_test_enqueue ("general", "crash", NULL, NULL);
   pid_t pid = mt_test_worker (W ("--queues", "general", "--once", "--pid", "DOOMED"));
   int status = mt_test_wait_exit (pid, 30000);
   bson_t *doc;

   ASSERT (mt_test_exit_code (status) != 0);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
   ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), "DOOMED");
   ASSERT (mt_test_has (doc, "started"));
   bson_destroy (doc);
}

static void
test_plugin_own_status (void)
{
   bson_oid_t cancelled = mt_test_enqueue ("general", "probe", "{'status': 'CANCELLED', 'result': {'why': 'obsolete'}}", NULL);
   bson_oid_t failed_ok = mt_test_enqueue ("general", "probe", "{'status': 'FAILED'}", NULL);
   bson_oid_t finished_err = mt_test_enqueue ("general", "probe", "{'status': 'FINISHED', 'fail': 'but done'}", NULL);
   bson_oid_t bogus = mt_test_enqueue ("general", "probe", "{'status': 'DONE'}", "{'max_attempts': 1}");
   bson_oid_t info = mt_test_enqueue ("general", "probe", "{'echo_info': true}", NULL);
   bson_t *doc;
   char id_hex[25];

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);

   doc = mt_test_task (&cancelled);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CANCELLED");
   ASSERT_CMPSTR (mt_test_str (doc, "result.why"), "obsolete");
   bson_destroy (doc);

   ASSERT (mt_test_status_is (&failed_ok, "FAILED"));

   doc = mt_test_task (&finished_err);
   /* FINISHED and a failure: the failure wins, to be retried (docs/plugins.md, "Outcomes"). */
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "but done");
   bson_destroy (doc);

   doc = mt_test_task (&bogus);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "'DONE' is not a status a plugin can set");
   bson_destroy (doc);

   doc = mt_test_task (&info);
   bson_oid_to_string (&info, id_hex);
   ASSERT_CMPSTR (mt_test_str (doc, "result.id"), id_hex);
   ASSERT_CMPSTR (mt_test_str (doc, "result.type"), "probe");
   ASSERT_CMPSTR (mt_test_str (doc, "result.queue"), "general");
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 1);
   bson_destroy (doc);
}

static void
test_plugin_delays_itself (void)
{
   bson_oid_t id = mt_test_enqueue ("general", "probe", "{'delay': 600}", NULL);
   bson_t *doc;
   int64_t before = (int64_t) time (NULL) * 1000;

   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT (!mt_test_has (doc, "error"));
   ASSERT (!mt_test_has (doc, "finished"));
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), >=, before + 590 * 1000);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   bson_destroy (doc);
}

static void
test_sigterm_lets_task_finish (void)
{
   /* SIGTERM while a task runs (it waits at a gate): the worker stops
    * claiming, and exits 0 once the task has finished. */
   char *params = gated ("running", "");
   bson_oid_t id = mt_test_enqueue ("general", "probe", params, NULL);
   bson_oid_t queued = mt_test_enqueue ("general", "echo", NULL, "{'priority': -1}");
   pid_t pid = mt_test_worker (W ("--queues", "general", "--poll-interval", "0.05"));

   bson_free (params);
   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 20000);
   kill (pid, SIGTERM);
   WAIT_UNTIL (mt_test_output_contains (pid, "stopping"), 20000);
   ASSERT (mt_test_status_is (&id, "WORK_IN_PROGRESS"));
   mt_test_gate_open ("running");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 20000)), ==, 0);
   ASSERT (mt_test_status_is (&id, "FINISHED"));
   ASSERT (mt_test_status_is (&queued, "CREATED")); /* no new claims after SIGTERM */
}

static void
test_sigint_idle (void)
{
   pid_t pid = mt_test_worker (W ("--queues", "general"));

   /* Its signal handlers are in place once it says it started. */
   WAIT_UNTIL (mt_test_output_contains (pid, "' started: db '"), 20000);
   kill (pid, SIGINT);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 20000)), ==, 0);
   ASSERT (mt_test_output_contains (pid, "stopped"));
}

static void
test_bad_plugin_dir_refuses_to_start (void)
{
   const char *argv[] = {mt_test_env ("MTASK_WORKER"), "--db", "x", "--queues", "q", "--uri", mt_test_uri (),
                         "--plugins", mt_test_env ("MTASK_BAD_PLUGIN_DIR"), NULL};
   char *out;

   ASSERT_CMPINT (mt_test_run (argv, 20000, &out), ==, 2);
   ASSERT_CONTAINS (out, "/bad_abi.so': ABI version 2, this worker speaks 1");
   bson_free (out);
}

static void
test_bad_flags (void)
{
   const char *no_db[] = {mt_test_env ("MTASK_WORKER"), "--queues", "q", NULL};
   const char *bad_port[] = {mt_test_env ("MTASK_WORKER"), "--db", "d", "--queues", "q", "--port", "http", NULL};
   const char *help[] = {mt_test_env ("MTASK_WORKER"), "--help", NULL};
   char *out;

   ASSERT_CMPINT (mt_test_run (no_db, 10000, &out), ==, 2);
   ASSERT_CONTAINS (out, "--db is required");
   ASSERT_CONTAINS (out, "Try 'mtask-worker --help'");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (bad_port, 10000, &out), ==, 2);
   ASSERT_CONTAINS (out, "--port: 'http'");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (help, 10000, &out), ==, 0);
   ASSERT_CONTAINS (out, "--queues Q [Q...]");
   ASSERT_CONTAINS (out, "--plugins DIR");
   bson_free (out);
}

static void
test_unreachable_database_once (void)
{
   /* Nothing listens on port 1. A --once run must end, saying where it
    * looked, instead of waiting forever. */
   const char *argv[] = {mt_test_env ("MTASK_WORKER"), "--db", "d", "--queues", "q", "--once", "--host", "127.0.0.1",
                         "--port", "1", "--plugins", mt_test_env ("MTASK_PLUGIN_DIR"), NULL};
   char *out;

   ASSERT_CMPINT (mt_test_run (argv, 30000, &out), ==, 1);
   ASSERT_CONTAINS (out, "cannot prepare 'd.tasks'");
   ASSERT_CONTAINS (out, "127.0.0.1:1");
   bson_free (out);
}

/* Whether something listens on 127.0.0.1:`port` already: binding it the
 * way a server does (SO_REUSEADDR, so a closed connection's TIME_WAIT does
 * not count) fails with EADDRINUSE. */
static bool
port_in_use (int port)
{
   struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
   int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
   int one = 1;
   bool in_use;

   ASSERT (fd >= 0);
   addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
   ASSERT (setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
   in_use = bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 && errno == EADDRINUSE;
   close (fd);
   return in_use;
}

static void
test_seed_line_one_verbatim (void)
{
   /* `mtask-worker --db tasks --queues general glavstroy`, word for word:
    * so localhost:27017. This test starts its own devdb there, and skips
    * when that port is taken (by a MongoDB, or this test in another run);
    * any other reason the devdb does not start fails it. Plugins come from
    * $MTASK_PLUGINS. */
   const char *devdb_argv[] = {mt_test_env ("MTASK_DEVDB"), "--port", "27017", "--memory", NULL};
   const char *argv[] = {mt_test_env ("MTASK_WORKER"), "--db", "tasks", "--queues", "general", "glavstroy", NULL};
   mongoc_client_t *client;
   bson_error_t error;
   pid_t devdb, pid;
   char *uri;

   if (port_in_use (27017)) {
      mt_test_skip ("port 27017 is in use here");
   }
   devdb = mt_test_spawn (devdb_argv);
   uri = mt_test_devdb_wait_ready (devdb);
   if (!uri) {
      /* Taken between the look above and the devdb's bind. */
      if (mt_test_output_contains (devdb, "Address already in use")) {
         mt_test_skip ("port 27017 is in use here");
      }
      printf ("# output of %s:\n", devdb_argv[0]);
      mt_test_print_output (devdb, 0);
      mt_test_fail (__FILE__,
                    __LINE__,
                    "%s --port 27017 exited %d before it was ready",
                    devdb_argv[0],
                    mt_test_exit_code (mt_test_wait_exit (devdb, 0)));
   }
   bson_free (uri);
   client = mongoc_client_new ("mongodb://127.0.0.1:27017/");
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   ASSERT_OR_PRINT (mt_enqueue (client, "tasks", "general", "echo", NULL, NULL, NULL, &error), error);
   ASSERT_OR_PRINT (mt_enqueue (client, "tasks", "glavstroy", "echo", NULL, NULL, NULL, &error), error);
   ASSERT_OR_PRINT (mt_enqueue (client, "tasks", "other", "echo", NULL, NULL, NULL, &error), error);

   setenv ("MTASK_PLUGINS", mt_test_env ("MTASK_PLUGIN_DIR"), 1);
   pid = mt_test_spawn (argv);
   unsetenv ("MTASK_PLUGINS");
   WAIT_UNTIL (mt_test_count_at (client, "tasks", "tasks", "{'status': 'FINISHED', 'attempts': 1}") == 2, 20000);
   mt_test_process_stop (pid, 20000);
   ASSERT_CMPINT (mt_test_count_at (client, "tasks", "tasks", "{'queue': 'other', 'status': 'CREATED'}"), ==, 1);
   mongoc_client_destroy (client);
   mt_test_process_stop (devdb, 20000);
}

static void
test_seed_line_two_verbatim (void)
{
   /* `--db tasks --queues general --host H --port P --pid WORKER-1`, with
    * the test server's address. */
   bson_oid_t id;
   const char *argv[] = {mt_test_env ("MTASK_WORKER"), "--db", mt_test_db (), "--queues", "general", "--host", "127.0.0.1",
                         "--port", mt_test_port (), "--pid", "WORKER-1", NULL};
   char *params, *plugins;
   pid_t pid;
   bson_t *doc;

   params = gated ("running", "");
   id = mt_test_enqueue ("general", "probe", params, NULL);
   bson_free (params);
   /* The shipped plugins and the probe, whose task waits at a gate while
    * it is read. */
   plugins = bson_strdup_printf ("%s:%s", mt_test_env ("MTASK_PLUGIN_DIR"), mt_test_env ("MTASK_TEST_PLUGIN_DIR"));
   setenv ("MTASK_PLUGINS", plugins, 1);
   bson_free (plugins);
   pid = mt_test_spawn (argv);
   unsetenv ("MTASK_PLUGINS");
   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), "WORKER-1");
   bson_destroy (doc);
   mt_test_gate_open ("running");
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   mt_test_process_stop (pid, 20000);
}

/* What is wrong with `s` as a UUID of version 1 in the form
 * uuid_unparse_lower writes (RFC 4122: 8-4-4-4-12 lower-case hex digits,
 * the version digit 1, the variant bits 10), or NULL when nothing is. */
static const char *
uuid1_flaw (const char *s)
{
   if (strlen (s) != 36) {
      return "not 36 characters";
   }
   for (int i = 0; i < 36; i++) {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;

      if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
         return dash ? "no '-' where 8-4-4-4-12 groups end" : "not all lower-case hex digits";
      }
   }
   if (s[14] != '1') {
      return "version digit (the 13th) is not 1";
   }
   if (!strchr ("89ab", s[19])) {
      return "variant bits (the 17th digit) are not 10";
   }
   return NULL;
}

static void
test_default_worker_id_is_uuid1 (void)
{
   char *params = gated ("running", "");
   bson_oid_t id = mt_test_enqueue ("general", "probe", params, NULL);
   pid_t pid = mt_test_worker (W ("--queues", "general", "--poll-interval", "0.05"));
   const char *worker_pid, *flaw;
   bson_t *doc;

   bson_free (params);
   /* The probe waits at its gate: the task stays running while it is read. */
   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   doc = mt_test_task (&id);
   worker_pid = mt_test_str (doc, "worker_pid");
   ASSERT (worker_pid);
   flaw = uuid1_flaw (worker_pid);
   if (flaw) {
      mt_test_fail (__FILE__, __LINE__, "worker_pid '%s' is no UUID v1: %s", worker_pid, flaw);
   }
   WAIT_UNTIL (mt_test_count_in ("workers", "{'_id': '%s'}", worker_pid) == 1, 20000); /* the worker's own id */
   bson_destroy (doc);
   mt_test_gate_open ("running");
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   mt_test_process_stop (pid, 20000);
}

static void
test_indexes_created (void)
{
   mongoc_collection_t *tasks;
   mongoc_cursor_t *cursor;
   const bson_t *index;
   bson_error_t error;
   int found = 0;

   mt_test_enqueue ("general", "echo", NULL, NULL);
   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000);
   mt_test_worker_once (W ("--pid", "W-ONCE", "--queues", "general"), 60000); /* idempotent */
   tasks = mt_test_tasks ();
   cursor = mongoc_collection_find_indexes_with_opts (tasks, NULL);
   while (mongoc_cursor_next (cursor, &index)) {
      const char *name = mt_test_str (index, "name");
      found += name && !strncmp (name, "mtask_", 6);
   }
   ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (tasks);
   /* docs/operations.md, "Indexes", lists them: mtask_unique, mtask_claim,
    * mtask_type, mtask_worker, mtask_finished, mtask_group, the three
    * partial ones of the schedule's upkeep, and mtask_series. */
   ASSERT_CMPINT (found, ==, 10);
}

static void
test_blocking_task_blocks_nothing_else (void)
{
   /* process() may block as long as it likes (seed 001's tornsync): with
    * two threads, twenty quick tasks finish while one task blocks (at a
    * gate, until they have). */
   char *params = gated ("blocked", "");
   bson_oid_t slow = mt_test_enqueue ("general", "probe", params, "{'priority': 1}");
   pid_t pid = mt_test_worker (W ("--queues", "general", "--concurrency", "2", "--poll-interval", "0.05"));

   bson_free (params);
   WAIT_UNTIL (mt_test_status_is (&slow, "WORK_IN_PROGRESS"), 20000);
   for (int i = 0; i < 20; i++) {
      mt_test_enqueue ("general", "echo", NULL, NULL);
   }
   WAIT_UNTIL (mt_test_count ("{'type': 'echo', 'status': 'FINISHED'}") == 20, 60000);
   ASSERT (mt_test_status_is (&slow, "WORK_IN_PROGRESS"));
   mt_test_gate_open ("blocked");
   WAIT_UNTIL (mt_test_status_is (&slow, "FINISHED"), 20000);
   mt_test_process_stop (pid, 20000);
}

static void
test_json_log (void)
{
   bson_oid_t id = mt_test_enqueue ("general", "fail", "{'message': 'say \\\"why\\\"'}", "{'max_attempts': 1}");
   pid_t pid = mt_test_worker_once (W ("--queues", "general", "--pid", "JSON-1", "--log-format", "json"), 30000);
   char *out, *line, *save = NULL;
   int lines = 0;

   ASSERT (mt_test_status_is (&id, "FAILED"));
   out = mt_test_output (pid);
   for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
      bson_error_t error;
      bson_t *doc = bson_new_from_json ((const uint8_t *) line, -1, &error);

      ASSERT_OR_PRINT (doc, error);
      ASSERT_CMPSTR (mt_test_str (doc, "worker"), "JSON-1");
      ASSERT (mt_test_str (doc, "ts") && mt_test_str (doc, "level") && mt_test_str (doc, "msg"));
      if (strstr (mt_test_str (doc, "msg"), "failed")) {
         ASSERT_CONTAINS (mt_test_str (doc, "msg"), "say \"why\"");
         ASSERT_CMPSTR (mt_test_str (doc, "level"), "warning");
      }
      bson_destroy (doc);
      lines++;
   }
   ASSERT_CMPINT (lines, >=, 3);
   bson_free (out);
}

static void
test_exactly_once_under_load (void)
{
   /* 3 processes x 4 threads over 3000 echo tasks: each task claimed once. */
   enum { N = 3000 };
   mongoc_collection_t *tasks = mt_test_tasks ();
   mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts (tasks, NULL);
   bson_error_t error;
   pid_t pids[3];

   for (int i = 0; i < N; i++) {
      bson_t doc = BSON_INITIALIZER, params;

      BSON_APPEND_UTF8 (&doc, "queue", "general");
      BSON_APPEND_UTF8 (&doc, "type", "echo");
      BSON_APPEND_UTF8 (&doc, "status", "CREATED");
      BSON_APPEND_DOCUMENT_BEGIN (&doc, "params", &params);
      BSON_APPEND_INT32 (&params, "i", i);
      bson_append_document_end (&doc, &params);
      BSON_APPEND_DATE_TIME (&doc, "created", (int64_t) time (NULL) * 1000);
      BSON_APPEND_INT32 (&doc, "priority", 0);
      BSON_APPEND_INT32 (&doc, "attempts", 0);
      mongoc_bulk_operation_insert (bulk, &doc);
      bson_destroy (&doc);
   }
   bool ok = mongoc_bulk_operation_execute (bulk, NULL, &error);
   mongoc_bulk_operation_destroy (bulk);
   mongoc_collection_destroy (tasks);
   ASSERT_OR_PRINT (ok, error);

   for (int i = 0; i < 3; i++) {
      pids[i] = mt_test_worker (W ("--queues", "general", "--concurrency", "4", "--once"));
   }
   for (int i = 0; i < 3; i++) {
      int status = mt_test_wait_exit (pids[i], 240000);
      ASSERT_CMPINT (mt_test_exit_code (status), ==, 0);
   }
   ASSERT_CMPINT (mt_test_count ("{'status': 'FINISHED', 'attempts': 1, 'worker_pid': null}"), ==, N);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, N);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/worker/lifecycle/fields", test_lifecycle_fields);
   mt_test_add ("/worker/lifecycle/while_running", test_lifecycle_while_running);
   mt_test_add ("/worker/claim/delayed_not_started_early", test_delayed_not_started_early);
   mt_test_add ("/worker/claim/once_leaves_future_alone", test_once_leaves_future_alone);
   mt_test_add ("/worker/claim/other_queues_left_alone", test_other_queues_left_alone);
   mt_test_add ("/worker/claim/unserved_type_left_alone", test_unserved_type_left_alone);
   mt_test_add ("/worker/claim/priority_then_fifo", test_priority_then_fifo);
   mt_test_add ("/worker/claim/raw_insert_minimal", test_raw_insert_minimal);
   mt_test_add ("/worker/malformed/each_field", test_malformed_documents);
   mt_test_add ("/worker/plugin/failure", test_plugin_failure);
   mt_test_add ("/worker/plugin/own_status", test_plugin_own_status);
   mt_test_add ("/worker/plugin/shipped_bad_params", test_shipped_plugins_bad_params);
   mt_test_add ("/worker/plugin/crash_takes_worker_down", test_crash_takes_worker_down);
   mt_test_add ("/worker/plugin/delays_itself", test_plugin_delays_itself);
   mt_test_add ("/worker/signal/sigterm_lets_task_finish", test_sigterm_lets_task_finish);
   mt_test_add ("/worker/signal/sigint_idle", test_sigint_idle);
   mt_test_add ("/worker/cli/bad_plugin_dir", test_bad_plugin_dir_refuses_to_start);
   mt_test_add ("/worker/cli/bad_flags", test_bad_flags);
   mt_test_add ("/worker/cli/unreachable_database_once", test_unreachable_database_once);
   mt_test_add ("/worker/cli/seed_line_one_verbatim", test_seed_line_one_verbatim);
   mt_test_add ("/worker/cli/seed_line_two_verbatim", test_seed_line_two_verbatim);
   mt_test_add ("/worker/cli/default_worker_id_is_uuid1", test_default_worker_id_is_uuid1);
   mt_test_add ("/worker/indexes", test_indexes_created);
   mt_test_add ("/worker/concurrency/blocking_task_blocks_nothing_else", test_blocking_task_blocks_nothing_else);
   mt_test_add ("/worker/log/json", test_json_log);
   mt_test_add ("/worker/load/exactly_once_3x4_3000", test_exactly_once_under_load);
   return mt_test_main (argc, argv);
}
