/* The worker's own paths when the database goes away, or refuses a write:
 * claims that back off, a --once run that gives up, a claim error that
 * forces the sweep, outcomes retried or given up, a start that waits for
 * the server and a stop that ends that wait. Each test that needs an
 * outage runs a dev database of its own on an H2 file, stops it and starts
 * it again on the same port (the shared one of the run is never stopped),
 * and asserts what is left in MongoDB, the exit status and the log. */
#include "mt-test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>


/* The test's own database (the harness's mt_test_own_db_t). The worker's
 * URI has a server selection timeout of 1 s (the worker keeps a URI's
 * own), so that each try while the server is away costs a second rather
 * than five. */
static mt_test_own_db_t db;

static void
db_open (void)
{
   mt_test_own_db_open (&db, "serverSelectionTimeoutMS=1000");
}

static void
db_start (void)
{
   mt_test_own_db_start (&db);
}

/* The outage: SIGTERM, which closes the H2 file cleanly. */
static void
db_stop (void)
{
   mt_test_own_db_stop (&db);
}

static void
db_close (void)
{
   mt_test_own_db_close (&db);
}

/* mtask-worker on the test's own database, with the shipped plugins. */
static pid_t
own_worker (const char *const *extra)
{
   const char *argv[32];
   size_t n = 0;

   argv[n++] = mt_test_env ("MTASK_WORKER");
   argv[n++] = "--uri";
   argv[n++] = db.uri;
   argv[n++] = "--db";
   argv[n++] = mt_test_db ();
   argv[n++] = "--plugins";
   argv[n++] = mt_test_env ("MTASK_PLUGIN_DIR");
   for (size_t i = 0; extra[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = extra[i];
   }
   argv[n] = NULL;
   return mt_test_spawn (argv);
}

static bson_oid_t
own_enqueue (const char *type, const char *params_json, const char *opts_json)
{
   bson_t *params = mt_test_bson (params_json);
   bson_t *opts = opts_json ? mt_test_bson (opts_json) : NULL;
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_enqueue (db.client, mt_test_db (), "q", type, params, opts, &id, &error);

   bson_destroy (params);
   if (opts) {
      bson_destroy (opts);
   }
   ASSERT_OR_PRINT (ok, error);
   return id;
}

/* The task's document in the test's own database, or NULL when it cannot
 * be read now. bson_destroy it. */
static bson_t *
own_task (const bson_oid_t *id)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   bson_t *copy = mt_test_task_find_at (db.client, filter);

   bson_destroy (filter);
   return copy;
}

static bool
own_status_is (const bson_oid_t *id, const char *status)
{
   bson_t *doc = own_task (id);
   bool same = doc && mt_test_str (doc, "status") && !strcmp (mt_test_str (doc, "status"), status);

   if (doc) {
      bson_destroy (doc);
   }
   return same;
}

/* The number of lines of the process's output that contain `a` and, when
 * not NULL, `b`. */
static int
count_lines (pid_t pid, const char *a, const char *b)
{
   char *out = mt_test_output (pid), *save = NULL;
   int n = 0;

   for (char *line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
      n += strstr (line, a) && (!b || strstr (line, b));
   }
   bson_free (out);
   return n;
}

/* Where `needle` first occurs in the process's output, or -1. */
static int64_t
output_index (pid_t pid, const char *needle)
{
   char *out = mt_test_output (pid), *at = strstr (out, needle);
   int64_t index = at ? at - out : -1;

   bson_free (out);
   return index;
}

static int64_t
ms_since (int64_t start_us)
{
   return (bson_get_monotonic_time () - start_us) / 1000;
}

/* The server goes away while the worker is idle: its claims fail, and it
 * says so once a try, waiting longer each time (100 ms, then doubled),
 * until the server is back. A task that became due meanwhile then runs
 * once, its attempt counted once. */
static void
test_claim_backs_off (void)
{
   pid_t worker;
   bson_oid_t id;
   bson_t *doc;

   db_open ();
   worker = own_worker (W ("--queues", "q", "--pid", "W-BACKOFF"));
   WAIT_UNTIL (mt_test_output_contains (worker, "' started: db '"), 30000);
   id = own_enqueue ("echo", "{'n': 1}", "{'delay': 3}");

   /* Frozen while the server stops, so that no claim overlaps the
    * shutdown, however long that takes. */
   kill (worker, SIGSTOP);
   db_stop ();
   kill (worker, SIGCONT);
   WAIT_UNTIL (count_lines (worker, "cannot reach the database: ", "; retrying in 400 ms") == 1, 30000);
   ASSERT_CMPINT (count_lines (worker, "cannot reach the database: ", "; retrying in 100 ms"), ==, 1);
   ASSERT_CMPINT (count_lines (worker, "cannot reach the database: ", "; retrying in 200 ms"), ==, 1);
   ASSERT_CMPINT (output_index (worker, "retrying in 100 ms"), <, output_index (worker, "retrying in 200 ms"));
   ASSERT_CMPINT (output_index (worker, "retrying in 200 ms"), <, output_index (worker, "retrying in 400 ms"));
   ASSERT_CMPINT (output_index (worker, "' started: db '"), <, output_index (worker, "cannot reach the database: "));
   ASSERT (!mt_test_output_contains (worker, "claim failed"));
   ASSERT (kill (worker, 0) == 0);

   db_start ();
   WAIT_UNTIL (own_status_is (&id, "FINISHED"), 60000);
   doc = own_task (&id);
   ASSERT (doc);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "result.n"), ==, 1);
   ASSERT (!mt_test_has (doc, "errors"));
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   bson_destroy (doc);
   mt_test_worker_stop (worker);
   db_close ();
}

/* A --once run (from cron, say) whose task ends while the server is away
 * retries the outcome for a minute, then gives up and exits 1; the task
 * stays WORK_IN_PROGRESS, and the next run with the same id takes it back
 * and runs it. */
static void
test_once_gives_up (void)
{
   pid_t worker, next;
   bson_oid_t id;
   bson_t *doc;
   int64_t start;
   int status;

   db_open ();
   id = own_enqueue ("sleep", "{'seconds': 3}", NULL);
   worker = own_worker (W ("--queues", "q", "--once", "--pid", "W-ONCE"));
   WAIT_UNTIL (own_status_is (&id, "WORK_IN_PROGRESS"), 30000);
   kill (worker, SIGSTOP);
   ASSERT (own_status_is (&id, "WORK_IN_PROGRESS")); /* still inside process() */
   db_stop ();
   start = bson_get_monotonic_time ();
   kill (worker, SIGCONT);

   WAIT_UNTIL (mt_test_output_contains (worker, "cannot write its outcome yet ("), 30000);
   status = mt_test_wait_exit (worker, 150000);
   ASSERT_CMPINT (mt_test_exit_code (status), ==, 1);
   ASSERT_CMPINT (ms_since (start), >=, 60000);
   ASSERT_CMPINT (count_lines (worker, "cannot write its outcome (", "it stays WORK_IN_PROGRESS until its lease ends"), ==, 1);
   ASSERT_CMPINT (count_lines (worker, "mtask-worker: gave up after a minute without the database: ", NULL), ==, 1);

   db_start ();
   doc = own_task (&id);
   ASSERT (doc);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
   ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), "W-ONCE");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (!mt_test_has (doc, "result"));
   bson_destroy (doc);

   next = own_worker (W ("--queues", "q", "--once", "--pid", "W-ONCE"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (next, 60000)), ==, 0);
   doc = own_task (&id);
   ASSERT (doc);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "result.slept"), ==, 3);
   ASSERT_CMPINT (mt_test_int (doc, "errors.0.code"), ==, MT_TASK_ERROR_WORKER_LOST);
   ASSERT_CONTAINS (mt_test_str (doc, "errors.0.message"), "worker 'W-ONCE' was restarted while running this task");
   bson_destroy (doc);
   db_close ();
}

/* A claim that fails for a reason of the server's, not the network's (a
 * task whose `attempts` no claim can count): the worker sweeps at once,
 * which marks that task FAILED with its field named, and claims again;
 * the good task the failed claim had taken on the way is given back and
 * runs once. */
static void
test_claim_error_sweeps (void)
{
   bson_oid_t first, good, bad;
   int64_t created;
   bson_t *doc;
   pid_t pid;

   first = mt_test_enqueue ("q", "sleep", "{'seconds': 3}", NULL);
   pid = mt_test_worker (W ("--queues", "q", "--poll-interval", "0.05", "--pid", "W-SWEEP"));
   /* It swept, then claimed `first`; its first upkeep tick (which sweeps
    * too) is over, and the next is due a third of its lease (10 s) after.
    * While `first` sleeps, a good task and a bad one arrive (in that
    * order: the claim's update meets the good one first). */
   WAIT_UNTIL (mt_test_status_is (&first, "WORK_IN_PROGRESS"), 20000);
   WAIT_UNTIL (mt_test_upkeep_tick_over (), 20000);
   good = mt_test_enqueue ("q", "echo", "{'n': 1}", "{'max_attempts': 1}");
   doc = mt_test_task (&good);
   created = mt_test_date (doc, "created");
   bson_destroy (doc);
   bson_oid_init (&bad, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&bad), "queue", "q", "type", "echo", "status", "CREATED", "priority", BCON_INT32 (0),
                   "attempts", "none", "created", BCON_DATE_TIME (created + 1), "params", "{", "}");
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   ASSERT (mt_test_status_is (&first, "WORK_IN_PROGRESS")); /* both came while it slept */

   WAIT_UNTIL (mt_test_status_is (&bad, "FAILED"), 20000);
   WAIT_UNTIL (mt_test_status_is (&good, "FINISHED"), 20000);
   doc = mt_test_task (&bad);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "field 'attempts'");
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   bson_destroy (doc);
   doc = mt_test_task (&good);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "result.n"), ==, 1);
   ASSERT (!mt_test_has (doc, "errors"));
   bson_destroy (doc);
   ASSERT (mt_test_status_is (&first, "FINISHED"));

   /* One failed claim was enough: the sweep ran right after it. */
   ASSERT_CMPINT (count_lines (pid, "claim failed: ", "'attempts'"), ==, 1);
   ASSERT_CMPINT (count_lines (pid, "claim failed: ", NULL), ==, 1);
   ASSERT_CMPINT (output_index (pid, "claim failed: "), <, output_index (pid, "marked 1 malformed task(s) FAILED"));
   ASSERT (!mt_test_output_contains (pid, "cannot reach the database"));
   mt_test_worker_stop (pid);
}

/* The server goes away while process() runs: the outcome is retried
 * (100 ms, then doubled) and lands once the server is back; the task
 * ends FINISHED once, on its first attempt, with its result. */
static void
test_outcome_retried (void)
{
   pid_t worker;
   bson_oid_t id;
   bson_t *doc;

   db_open ();
   id = own_enqueue ("sleep", "{'seconds': 3}", NULL);
   worker = own_worker (W ("--queues", "q", "--pid", "W-OUTCOME", "--poll-interval", "0.05"));
   WAIT_UNTIL (own_status_is (&id, "WORK_IN_PROGRESS"), 30000);
   kill (worker, SIGSTOP);
   ASSERT (own_status_is (&id, "WORK_IN_PROGRESS")); /* still inside process() */
   db_stop ();
   kill (worker, SIGCONT);

   WAIT_UNTIL (count_lines (worker, "cannot write its outcome yet (", "; retrying in 200 ms") == 1, 30000);
   ASSERT_CMPINT (count_lines (worker, "cannot write its outcome yet (", "; retrying in 100 ms"), ==, 1);
   db_start ();
   WAIT_UNTIL (own_status_is (&id, "FINISHED"), 60000);
   doc = own_task (&id);
   ASSERT (doc);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "result.slept"), ==, 3);
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT (!mt_test_has (doc, "error"));
   ASSERT (!mt_test_has (doc, "errors"));
   bson_destroy (doc);
   ASSERT (!mt_test_output_contains (worker, "cannot write its outcome ("));
   ASSERT (!mt_test_output_contains (worker, "outcome dropped"));
   mt_test_worker_stop (worker);
   db_close ();
}

/* An outcome the server refuses for good (here a duplicate key, from a
 * unique index an operator made on the result) is not retried: the worker
 * says so and the task ends FAILED without its result, the error saying
 * why, rather than staying WORK_IN_PROGRESS to run again (and be refused
 * again) when its lease ends. */
static void
test_outcome_refused (void)
{
   mongoc_database_t *database = mongoc_client_get_database (mt_test_client (), mt_test_db ());
   bson_t *command = mt_test_bson ("{'createIndexes': 'tasks', 'indexes': [{'key': {'result.slept': 1}, 'name': "
                                   "'one_per_result', 'unique': true, 'sparse': true}]}");
   bson_t *done = mt_test_bson ("{'queue': 'elsewhere', 'type': 'sleep', 'status': 'FINISHED', 'result': {'slept': 0.5}}");
   bson_error_t error;
   bson_oid_t id;
   bson_t *doc;
   pid_t pid;

   ASSERT_OR_PRINT (mongoc_database_write_command_with_opts (database, command, NULL, NULL, &error), error);
   mt_test_insert ("tasks", done);
   bson_destroy (command);
   bson_destroy (done);

   id = mt_test_enqueue ("q", "sleep", "{'seconds': 0.5}", NULL);
   pid = mt_test_worker (W ("--queues", "q", "--pid", "W-REFUSED", "--lease", "3", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 30000);
   ASSERT_CMPINT (count_lines (pid, "cannot write its outcome; it ends FAILED without its result (", "E11000"), ==, 1);
   doc = mt_test_task (&id);
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (!mt_test_has (doc, "result"));
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_STORE_ERROR_WRITE);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "its outcome (success, with a result) could not be stored: ");
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "E11000");
   bson_destroy (doc);
   ASSERT (!mt_test_output_contains (pid, "cannot write its outcome yet"));
   ASSERT (!mt_test_output_contains (pid, "stays WORK_IN_PROGRESS"));
   mt_test_worker_stop (pid);
   mongoc_database_destroy (database);
}

/* A worker started while the server is down waits for it (250 ms, then
 * doubled) before it says it started, then works. */
static void
test_start_waits (void)
{
   pid_t worker;
   bson_oid_t id;
   bson_t *doc;

   db_open ();
   db_stop ();
   worker = own_worker (W ("--queues", "q", "--pid", "W-EARLY"));
   WAIT_UNTIL (count_lines (worker, "cannot reach the database: ", "; retrying in 500 ms") == 1, 30000);
   ASSERT_CMPINT (count_lines (worker, "cannot reach the database: ", "; retrying in 250 ms"), ==, 1);
   ASSERT (!mt_test_output_contains (worker, "' started: db '"));

   db_start ();
   WAIT_UNTIL (mt_test_output_contains (worker, "' started: db '"), 60000);
   ASSERT_CMPINT (output_index (worker, "retrying in 500 ms"), <, output_index (worker, "' started: db '"));
   id = own_enqueue ("echo", "{'n': 1}", NULL);
   WAIT_UNTIL (own_status_is (&id, "FINISHED"), 30000);
   doc = own_task (&id);
   ASSERT (doc);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "result.n"), ==, 1);
   bson_destroy (doc);
   mt_test_worker_stop (worker);
   db_close ();
}

/* SIGTERM while it waits for the server at start: it exits 0 at once,
 * without trying the server again. */
static void
test_stop_while_waiting (void)
{
   pid_t worker;
   int tries, status;

   db_open ();
   db_stop ();
   worker = own_worker (W ("--queues", "q", "--pid", "W-QUIT"));
   /* Now it waits 2 s before it tries again: the signal lands in that wait. */
   WAIT_UNTIL (count_lines (worker, "cannot reach the database: ", "; retrying in 2000 ms") == 1, 60000);
   tries = count_lines (worker, "cannot reach the database: ", NULL);
   kill (worker, SIGTERM);
   status = mt_test_wait_exit (worker, 10000);
   ASSERT_CMPINT (mt_test_exit_code (status), ==, 0);
   ASSERT_CMPINT (count_lines (worker, "cannot reach the database: ", NULL), ==, tries);
   ASSERT (!mt_test_output_contains (worker, "' started: db '"));
   ASSERT (!mt_test_output_contains (worker, "mtask-worker: "));
   db_close ();
}

int
main (int argc, char **argv)
{
   mt_test_add ("/outage/claim/backs_off_while_away", test_claim_backs_off);
   mt_test_add ("/outage/claim/server_error_sweeps_at_once", test_claim_error_sweeps);
   mt_test_add ("/outage/outcome/retried_until_back", test_outcome_retried);
   mt_test_add ("/outage/outcome/refused_not_retried", test_outcome_refused);
   mt_test_add ("/outage/start/waits_for_the_server", test_start_waits);
   mt_test_add ("/outage/start/stop_while_waiting", test_stop_while_waiting);
   mt_test_add ("/outage/once/gives_up_after_a_minute", test_once_gives_up);
   return mt_test_main (argc, argv);
}
