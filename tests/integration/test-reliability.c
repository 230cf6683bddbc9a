/* Faults against a real server: workers killed, paused past their lease or
 * stopped; plugins that crash or hang; the database going away; retries;
 * hostile documents. Each asserts what is left in MongoDB. */
#include "mt-test.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void
insert_many (const char *type, const char *params_json, int n, const char *extra_json)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts (tasks, NULL);
   bson_t *params = mt_test_bson (params_json);
   bson_error_t error;
   bool ok;

   for (int i = 0; i < n; i++) {
      bson_t *doc = BCON_NEW ("queue", "q", "type", type, "status", "CREATED", "priority", BCON_INT32 (0), "attempts",
                              BCON_INT32 (0), "created", BCON_DATE_TIME (i), "params", BCON_DOCUMENT (params));
      if (extra_json) {
         bson_t *extra = mt_test_bson (extra_json);
         bson_concat (doc, extra);
         bson_destroy (extra);
      }
      mongoc_bulk_operation_insert (bulk, doc);
      bson_destroy (doc);
   }
   ok = mongoc_bulk_operation_execute (bulk, NULL, &error);
   mongoc_bulk_operation_destroy (bulk);
   mongoc_collection_destroy (tasks);
   bson_destroy (params);
   ASSERT_OR_PRINT (ok, error);
}

/* Params for a probe that waits at the test's gate `name`, then does
 * what `more` (JSON members, or "") says. bson_free them. */
static char *
gated (const char *name, const char *more)
{
   return bson_strdup_printf ("{'gate': '%s'%s%s}", mt_test_gate (name), more[0] ? ", " : "", more);
}

static void
test_idle_worker_does_not_spin (void)
{
   pid_t pid = mt_test_worker (W ("--queues", "q", "--poll-interval", "0.2"));
   int64_t cpu, polls, start, elapsed_ms;
   char *watch;

   WAIT_UNTIL (mt_test_output_contains (pid, "' started: db '"), 20000);
   /* Its claims counted by the server: a failpoint that only holds each
    * findAndModify of the workers on this test's tasks for 1 ms. */
   watch = bson_strdup_printf ("{'failCommands': ['findAndModify'], 'blockConnection': true, 'blockTimeMS': 1,"
                               " 'appName': 'mtask-worker', 'namespace': '%s.tasks'}",
                               mt_test_db ());
   polls = mt_test_failpoint_set ("'alwaysOn'", watch);
   bson_free (watch);
   cpu = mt_test_cpu_ms (pid);
   start = bson_get_monotonic_time ();
   /* Two idle seconds, or more on a busy machine (the scenario itself,
    * not a wait for a condition); each bound below is per time it took. */
   mt_test_nap_ms (2000);
   cpu = mt_test_cpu_ms (pid) - cpu;
   polls = mt_test_failpoint_off () - polls;
   elapsed_ms = (bson_get_monotonic_time () - start) / 1000;
   printf ("# idle for %" PRId64 " ms: %" PRId64 " claims, %" PRId64 " ms of CPU\n", elapsed_ms, polls, cpu);
   ASSERT_CMPINT (polls, >=, 2);                      /* it looks for work... */
   ASSERT_CMPINT (polls, <=, elapsed_ms / 200 + 10);  /* ...a poll interval apart (after a few quicker looks) */
   ASSERT_CMPINT (cpu * 5, <, elapsed_ms);            /* and costs under a fifth of a core */
   mt_test_worker_stop (pid);
}

static void
test_registry (void)
{
   char *params = gated ("running", "");
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t pid = mt_test_worker (W ("--queues", "q", "--pid", "W-REG", "--lease", "3", "--poll-interval", "0.05"));
   char hex[25];
   bson_t *doc;

   bson_free (params);
   bson_oid_to_string (&id, hex);
   WAIT_UNTIL (mt_test_count_in ("workers", "{'_id': 'W-REG', 'tasks': {'$oid': '%s'}}", hex) == 1, 20000);
   doc = mt_test_find_one ("workers", "{'_id': 'W-REG'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "running");
   ASSERT (mt_test_str (doc, "host"));
   ASSERT_CMPINT (mt_test_int (doc, "pid"), ==, pid);
   ASSERT_CMPSTR (mt_test_str (doc, "queues.0"), "q");
   ASSERT (mt_test_date (doc, "started") > 0 && mt_test_date (doc, "heartbeat") >= mt_test_date (doc, "started"));
   bson_destroy (doc);
   {
      bson_t *task = mt_test_task (&id);
      ASSERT (mt_test_date (task, "heartbeat") > 0); /* the lease */
      bson_destroy (task);
   }
   mt_test_gate_open ("running");
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   mt_test_worker_stop (pid);

   doc = mt_test_find_one ("workers", "{'_id': 'W-REG'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "stopped");
   ASSERT (!mt_test_has (doc, "tasks.0"));
   bson_destroy (doc);
}

static void
test_sigkill_mid_run (void)
{
   /* 200 tasks of 0.5 s; the first worker is killed half way; the second
    * takes back what it was running once the lease (3 s) ends and finishes
    * everything. */
   pid_t first, second;
   int64_t running;

   insert_many ("sleep", "{'seconds': 0.5}", 200, NULL);
   first = mt_test_worker (W ("--queues", "q", "--concurrency", "10", "--lease", "3", "--pid", "W-DOOMED", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") >= 40, 60000);
   mt_test_process_kill (first);
   running = mt_test_count ("{'status': 'WORK_IN_PROGRESS', 'worker_pid': 'W-DOOMED'}");
   ASSERT_CMPINT (running, >, 0);

   second = mt_test_worker (W ("--queues", "q", "--concurrency", "10", "--lease", "3", "--pid", "W-HEIR", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 200, 120000);
   ASSERT_CMPINT (mt_test_count ("{'status': 'WORK_IN_PROGRESS'}"), ==, 0);
   /* The ones taken back say why, and ran a second time. */
   ASSERT_CMPINT (mt_test_count ("{'errors.code': 6, 'attempts': 2}"), ==, running);
   ASSERT_CMPINT (mt_test_count ("{'attempts': 1}"), ==, 200 - running);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-DOOMED', 'status': 'lost'}"), ==, 1);
   mt_test_worker_stop (second);
}

static void
test_sigkill_last_attempt_fails (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'sleep_ms': 30000}", "{'max_attempts': 1}");
   pid_t first = mt_test_worker (W ("--queues", "q", "--lease", "2", "--pid", "W-ONE", "--poll-interval", "0.05"));
   pid_t second;
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   mt_test_process_kill (first);
   second = mt_test_worker (W ("--queues", "q", "--lease", "2", "--pid", "W-TWO"));
   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 30000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_WORKER_LOST);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "worker 'W-ONE' was lost");
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   bson_destroy (doc);
   mt_test_worker_stop (second);
}

static void
test_restart_same_id_takes_back (void)
{
   /* A worker killed and started again with the same --pid takes back what
    * its earlier run left at once, without waiting out the lease. */
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'sleep_ms': 30000}", NULL);
   pid_t first = mt_test_worker (W ("--queues", "q", "--pid", "W-SAME", "--lease", "600", "--poll-interval", "0.05"));
   pid_t again;
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   mt_test_process_kill (first);
   /* Let the second run finish quickly. */
   mt_test_task_set (&id, "{'params.sleep_ms': 10}");
   again = mt_test_worker (W ("--queues", "q", "--pid", "W-SAME", "--lease", "600", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT_CONTAINS (mt_test_str (doc, "errors.0.message"), "worker 'W-SAME' was restarted while running this task");
   bson_destroy (doc);
   mt_test_worker_stop (again);
}

static void
test_sigstop_cannot_overwrite (void)
{
   /* A worker paused past its lease loses the task; when it wakes, its
    * result is dropped by the fence: the new owner's stays. */
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'sleep_ms': 2500, 'echo_info': true}", NULL);
   pid_t paused = mt_test_worker (W ("--queues", "q", "--lease", "2", "--pid", "W-PAUSED", "--poll-interval", "0.05"));
   pid_t heir;
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   kill (paused, SIGSTOP);
   heir = mt_test_worker (W ("--queues", "q", "--lease", "2", "--pid", "W-HEIR", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED', 'result.attempt': 2}") == 1, 30000);
   kill (paused, SIGCONT);
   WAIT_UNTIL (mt_test_output_contains (paused, "lost it, outcome dropped"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   bson_destroy (doc);
   mt_test_worker_stop (paused);
   mt_test_worker_stop (heir);
}

static void
test_fork_crash (void)
{
   bson_oid_t crash = mt_test_enqueue ("q", "crash", NULL, "{'max_attempts': 1}");
   bson_oid_t after = mt_test_enqueue ("q", "echo", "{'still': 'here'}", "{'priority': -1}");
   pid_t pid;
   bson_t *doc;

   pid = mt_test_worker_crashing (W ("--queues", "q", "--isolate", "fork", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   doc = mt_test_task (&crash);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_CRASHED);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "killed by signal 11 (Segmentation fault)");
   bson_destroy (doc);
   doc = mt_test_task (&after);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPSTR (mt_test_str (doc, "result.still"), "here");
   bson_destroy (doc);
}

static void
test_fork_timeout (void)
{
   bson_oid_t id;
   bson_t *doc;

   insert_many ("sleep", "{'seconds': 60}", 1, "{'timeout': 1, 'max_attempts': 1}");
   {
      bson_t *found = mt_test_find_one ("tasks", "{}");
      bson_iter_t iter;

      ASSERT (bson_iter_init_find (&iter, found, "_id"));
      bson_oid_copy (bson_iter_oid (&iter), &id);
      bson_destroy (found);
   }
   mt_test_worker_once (W ("--queues", "q", "--isolate", "fork"), 30000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_TIMEOUT);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "timeout of 1 s");
   ASSERT_CMPINT (mt_test_date (doc, "finished") - mt_test_date (doc, "started"), <, 10000);
   bson_destroy (doc);
}

static void
test_fork_normal (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'lock': ['a'], 'echo_info': true, 'status_message': 'from the child'}", NULL);
   bson_t *doc;

   mt_test_worker_once (W ("--queues", "q", "--isolate", "fork"), 30000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPSTR (mt_test_str (doc, "status_message"), "from the child");
   ASSERT_CMPSTR (mt_test_str (doc, "result.held.0"), "a");
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 1);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
}

static void
test_sigterm_gives_back_after_grace (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "sleep", "{'seconds': 60}", NULL);
   pid_t pid = mt_test_worker (W ("--queues", "q", "--grace", "1", "--poll-interval", "0.05"));
   int64_t start;
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   start = bson_get_monotonic_time ();
   mt_test_process_stop (pid, 20000);
   ASSERT_CMPINT ((bson_get_monotonic_time () - start) / 1000, <, 10000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 0); /* not counted */
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT (!mt_test_has (doc, "started"));
   bson_destroy (doc);
   ASSERT (mt_test_output_contains (pid, "grace period over"));
}

static void
test_second_signal_gives_back_now (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "sleep", "{'seconds': 60}", NULL);
   pid_t pid = mt_test_worker (W ("--queues", "q", "--grace", "600", "--isolate", "fork", "--poll-interval", "0.05"));

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   kill (pid, SIGTERM);
   WAIT_UNTIL (mt_test_output_contains (pid, "running tasks have 600 s to finish"), 20000);
   kill (pid, SIGTERM);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 20000)), ==, 0);
   ASSERT (mt_test_status_is (&id, "CREATED"));
   ASSERT_CMPINT (mt_test_count ("{'attempts': 0, 'worker_pid': null}"), ==, 1);
}

static void
test_sigterm_grace_lets_finish (void)
{
   /* SIGTERM while the task runs (it waits at a gate): within the grace
    * period it finishes, and the worker exits 0. */
   char *params = gated ("running", "");
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t pid = mt_test_worker (W ("--queues", "q", "--grace", "20", "--poll-interval", "0.05"));

   bson_free (params);
   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 20000);
   kill (pid, SIGTERM);
   WAIT_UNTIL (mt_test_output_contains (pid, "running tasks have 20 s to finish"), 20000);
   ASSERT (mt_test_status_is (&id, "WORK_IN_PROGRESS"));
   mt_test_gate_open ("running");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT (mt_test_status_is (&id, "FINISHED"));
}

static void
test_claimed_ahead_given_back (void)
{
   /* A backlog: the worker claims several tasks per round trip, those a
    * horizon of 2 s says its one thread starts soon. Those it has not
    * started when it stops go back as they were. */
   pid_t pid;

   insert_many ("sleep", "{'seconds': 0.1}", 40, NULL);
   pid = mt_test_worker_ready (W ("--queues", "q", "--poll-interval", "0.05", "--prefetch-ms", "2000"));
   /* One thread, yet more than one task held: claimed ahead. */
   WAIT_UNTIL (mt_test_count ("{'status': 'WORK_IN_PROGRESS'}") >= 2, 20000);
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") >= 4, 20000);
   mt_test_worker_stop (pid);
   ASSERT_CMPINT (mt_test_count ("{'status': 'WORK_IN_PROGRESS'}"), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{'status': 'FINISHED'}") + mt_test_count ("{'status': 'CREATED'}"), ==, 40);
   ASSERT_CMPINT (mt_test_count ("{'status': 'CREATED', 'attempts': 0, 'worker_pid': null, 'started': {'$exists': false}}"),
                  ==,
                  mt_test_count ("{'status': 'CREATED'}"));
   ASSERT_CMPINT (mt_test_count ("{'status': 'CREATED'}"), >, 0);
}

static void
test_claimed_ahead_keeps_its_lease (void)
{
   /* Eight tasks of 0.5 s claimed at once (a horizon of 5 s) outlast a
    * 2 s lease: the heartbeat renews those waiting their turn, so no other
    * worker takes them back and nothing runs twice. */
   pid_t pids[2];

   insert_many ("record", "{'ms': 500}", 24, NULL);
   for (int i = 0; i < 2; i++) {
      pids[i] = mt_test_worker_ready (W ("--queues", "q", "--lease", "2", "--poll-interval", "0.05", "--prefetch-ms", "5000"));
   }
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 24, 60000);
   for (int i = 0; i < 2; i++) {
      mt_test_worker_stop (pids[i]);
   }
   ASSERT_CMPINT (mt_test_count_in ("executions", "{'ok': true}"), ==, 24);
   ASSERT_CMPINT (mt_test_count ("{'attempts': 1}"), ==, 24);
}

static void
test_retries_with_backoff (void)
{
   /* Three attempts that fail, with a backoff of 0.4 s then 0.8 s. Each
    * attempt records the task as it found it (record's `look`): the
    * `delayed` its predecessor's failure set and the `started` of its
    * claim, so nothing has to be caught between two attempts. */
   bson_oid_t id = mt_test_enqueue ("q", "record", "{'fail_until': 3, 'look': true}", "{'max_attempts': 3}");
   pid_t pid = mt_test_worker (W ("--queues", "q", "--retry-backoff", "0.4", "--poll-interval", "0.02"));
   int64_t delayed[4] = {0}, claimed[4] = {0}, backoff[4] = {0};
   char hex[25];
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 30000);
   mt_test_worker_stop (pid);
   bson_oid_to_string (&id, hex);
   ASSERT_CMPINT (mt_test_count_in ("executions", "{'task': '%s', 'ok': false}", hex), ==, 3);
   for (int attempt = 2; attempt <= 3; attempt++) {
      bson_t *run = mt_test_find_one ("executions", "{'task': '%s', 'attempt': %d}", hex, attempt);

      delayed[attempt] = mt_test_date (run, "task_delayed");
      claimed[attempt] = mt_test_date (run, "task_started");
      bson_destroy (run);
   }
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 3);
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 3);
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "record: failing attempt 3 of the first 3, as asked");
   ASSERT_CMPINT (mt_test_int (doc, "errors.0.attempt"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "errors.2.attempt"), ==, 3);
   ASSERT (!mt_test_has (doc, "errors.3"));
   /* Backoff 0.4 s then 0.8 s, each +-25 % (300-500 ms, then 600-1000 ms),
    * counted from the failure; bounds loose by the clock estimate's error
    * on a loaded machine, and the second always longer than the first. */
   backoff[2] = delayed[2] - mt_test_date (doc, "errors.0.at");
   backoff[3] = delayed[3] - mt_test_date (doc, "errors.1.at");
   ASSERT_CMPINT (backoff[2], >=, 150);
   ASSERT_CMPINT (backoff[2], <=, 700);
   ASSERT_CMPINT (backoff[3], >=, 450);
   ASSERT_CMPINT (backoff[3], <=, 1300);
   ASSERT_CMPINT (backoff[3], >, backoff[2]);
   /* And each retry waited for its time: claimed no earlier. */
   ASSERT_CMPINT (claimed[2], >=, delayed[2] - 100);
   ASSERT_CMPINT (claimed[3], >=, delayed[3] - 100);
   bson_destroy (doc);
}

/* The database goes away for 20 s in the middle of a run, on the H2 file
 * backend, and comes back on the same port: every task ends FINISHED and
 * none ran twice. */
static void
test_database_outage (void)
{
   char path[] = "/tmp/mtask-outage-XXXXXX";
   char *file, *uri = NULL, port[16];
   const char *devdb_args[8];
   pid_t devdb, worker;
   mongoc_client_t *client;
   mongoc_collection_t *tasks, *executions;
   bson_error_t error;
   int fd = mkstemp (path);
   int64_t cpu_before;

   ASSERT (fd >= 0);
   close (fd);
   unlink (path);
   file = bson_strdup_printf ("%s.mv", path);

   devdb_args[0] = "--port";
   devdb_args[1] = "0";
   devdb_args[2] = "--data";
   devdb_args[3] = file;
   devdb_args[4] = NULL;
   uri = mt_test_devdb_start (devdb_args, &devdb);
   bson_snprintf (port, sizeof port, "%s", strrchr (uri, ':') + 1);
   port[strlen (port) - 1] = '\0'; /* the trailing slash */

   client = mongoc_client_new (uri);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   tasks = mongoc_client_get_collection (client, "outage", "tasks");
   executions = mongoc_client_get_collection (client, "outage", "executions");
   for (int i = 0; i < 60; i++) {
      ASSERT_OR_PRINT (mt_enqueue (client, "outage", "q", "record", &(bson_t) BSON_INITIALIZER, NULL, NULL, &error), error);
   }
   {
      bson_t *params = BCON_NEW ("ms", BCON_INT32 (150));
      bson_t *filter = BCON_NEW ("type", "record");
      bson_t *update = BCON_NEW ("$set", "{", "params", BCON_DOCUMENT (params), "}");
      ASSERT_OR_PRINT (mongoc_collection_update_many (tasks, filter, update, NULL, NULL, &error), error);
      bson_destroy (params);
      bson_destroy (filter);
      bson_destroy (update);
   }

   {
      const char *argv[] = {mt_test_env ("MTASK_WORKER"), "--uri", uri, "--db", "outage", "--queues", "q", "--concurrency", "3",
                            "--plugins", mt_test_env ("MTASK_TEST_PLUGIN_DIR"), "--poll-interval", "0.05", NULL};
      worker = mt_test_spawn (argv);
   }
   WAIT_UNTIL (mt_test_count_at (client, "outage", "tasks", "{'status': 'FINISHED'}") >= 15, 60000);

   /* The outage: stop the server (SIGTERM closes the H2 file cleanly). */
   mt_test_process_stop (devdb, 30000);
   cpu_before = mt_test_cpu_ms (worker);
   mt_test_nap_ms (20000); /* the scenario: twenty seconds without a database */
   ASSERT (kill (worker, 0) == 0);                              /* still alive */
   ASSERT_CMPINT (mt_test_cpu_ms (worker) - cpu_before, <, 3000); /* and not spinning */

   devdb_args[1] = port;
   bson_free (mt_test_devdb_start (devdb_args, &devdb));

   WAIT_UNTIL (mt_test_count_at (client, "outage", "tasks", "{'status': 'FINISHED'}") == 60, 120000);
   ASSERT_CMPINT (mt_test_count_at (client, "outage", "tasks", "{'status': {'$ne': 'FINISHED'}}"), ==, 0);
   /* Each task executed exactly once: one execution document each. */
   ASSERT_CMPINT (mt_test_count_at (client, "outage", "executions", "{}"), ==, 60);
   {
      bson_t *pipeline = mt_test_bson ("[{'$group': {'_id': '$task', 'n': {'$sum': 1}}}, {'$match': {'n': {'$gt': 1}}}]");
      mongoc_cursor_t *cursor = mongoc_collection_aggregate (executions, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
      const bson_t *dup;

      ASSERT (!mongoc_cursor_next (cursor, &dup));
      ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
      mongoc_cursor_destroy (cursor);
      bson_destroy (pipeline);
   }
   mt_test_worker_stop (worker);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (executions);
   mongoc_client_destroy (client);
   kill (devdb, SIGTERM);
   mt_test_wait_exit (devdb, 30000);
   unlink (file);
   bson_free (file);
   bson_free (uri);
}

static void
test_hostile_documents (void)
{
   bson_t *huge, *deep;
   char *big = bson_malloc (4 * 1024 * 1024 + 1);
   bson_oid_t huge_id, deep_id, bad_max, bad_timeout;

   memset (big, 'x', 4 * 1024 * 1024);
   big[4 * 1024 * 1024] = '\0';
   bson_oid_init (&huge_id, NULL);
   huge = BCON_NEW ("_id", BCON_OID (&huge_id), "queue", "q", "type", "echo", "status", "CREATED", "params", "{", "blob", big, "}");
   mt_test_insert ("tasks", huge);
   bson_destroy (huge);
   bson_free (big);

   /* params nested 90 levels deep (MongoDB allows 100). */
   {
      bson_t levels[91];
      bson_oid_init (&deep_id, NULL);
      deep = BCON_NEW ("_id", BCON_OID (&deep_id), "queue", "q", "type", "echo", "status", "CREATED");
      BSON_APPEND_DOCUMENT_BEGIN (deep, "params", &levels[0]);
      for (int i = 1; i < 90; i++) {
         BSON_APPEND_DOCUMENT_BEGIN (&levels[i - 1], "d", &levels[i]);
      }
      BSON_APPEND_UTF8 (&levels[89], "bottom", "reached");
      for (int i = 89; i >= 1; i--) {
         bson_append_document_end (&levels[i - 1], &levels[i]);
      }
      bson_append_document_end (deep, &levels[0]);
      mt_test_insert ("tasks", deep);
      bson_destroy (deep);
   }
   bson_oid_init (&bad_max, NULL);
   huge = BCON_NEW ("_id", BCON_OID (&bad_max), "queue", "q", "type", "echo", "status", "CREATED", "max_attempts", "many");
   mt_test_insert ("tasks", huge);
   bson_destroy (huge);
   bson_oid_init (&bad_timeout, NULL);
   huge = BCON_NEW ("_id", BCON_OID (&bad_timeout), "queue", "q", "type", "echo", "status", "CREATED", "timeout", BCON_INT32 (-5));
   mt_test_insert ("tasks", huge);
   bson_destroy (huge);

   mt_test_worker_once (W ("--queues", "q"), 60000);
   ASSERT (mt_test_status_is (&huge_id, "FINISHED"));
   {
      bson_t *doc = mt_test_task (&deep_id);
      char path[400] = "result";
      for (int i = 1; i < 90; i++) {
         bson_strncpy (path + strlen (path), ".d", sizeof path - strlen (path));
      }
      bson_strncpy (path + strlen (path), ".bottom", sizeof path - strlen (path));
      ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
      ASSERT_CMPSTR (mt_test_str (doc, path), "reached");
      bson_destroy (doc);
   }
   {
      bson_t *doc = mt_test_task (&bad_max);
      ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
      ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "field 'max_attempts' must be a whole number, 1 or more, found string");
      bson_destroy (doc);
      doc = mt_test_task (&bad_timeout);
      ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "field 'timeout' must be a number of seconds");
      bson_destroy (doc);
   }
}

int
main (int argc, char **argv)
{
   mt_test_add ("/reliability/idle_worker_does_not_spin", test_idle_worker_does_not_spin);
   mt_test_add ("/reliability/registry", test_registry);
   mt_test_add ("/reliability/lease/sigkill_mid_run", test_sigkill_mid_run);
   mt_test_add ("/reliability/lease/sigkill_last_attempt_fails", test_sigkill_last_attempt_fails);
   mt_test_add ("/reliability/lease/restart_same_id_takes_back", test_restart_same_id_takes_back);
   mt_test_add ("/reliability/fencing/sigstop_cannot_overwrite", test_sigstop_cannot_overwrite);
   mt_test_add ("/reliability/isolate/fork_crash", test_fork_crash);
   mt_test_add ("/reliability/isolate/fork_timeout", test_fork_timeout);
   mt_test_add ("/reliability/isolate/fork_normal", test_fork_normal);
   mt_test_add ("/reliability/shutdown/grace_lets_finish", test_sigterm_grace_lets_finish);
   mt_test_add ("/reliability/shutdown/gives_back_after_grace", test_sigterm_gives_back_after_grace);
   mt_test_add ("/reliability/shutdown/second_signal", test_second_signal_gives_back_now);
   mt_test_add ("/reliability/batch/claimed_ahead_given_back", test_claimed_ahead_given_back);
   mt_test_add ("/reliability/batch/claimed_ahead_keeps_its_lease", test_claimed_ahead_keeps_its_lease);
   mt_test_add ("/reliability/retries/backoff", test_retries_with_backoff);
   mt_test_add ("/reliability/hostile/documents", test_hostile_documents);
   mt_test_add ("/reliability/outage/database_away_20s", test_database_outage);
   return mt_test_main (argc, argv);
}
