/* What a replica set does to a worker that a standalone never does: a
 * primary steps down in the middle of a claim, an outcome or the start; a
 * write is applied but its write concern is not met, or its reply is
 * lost; a URI asks to read from secondaries. The test server injects the
 * very replies a failover produces with MongoDB's own failCommand
 * failpoint (docs/devdb.md), scoped to the worker's connections
 * (appName mtask-worker) on this test's tasks. In each: nothing lost, no
 * attempt counted for a run that did not happen, every task run once, the
 * worker carries on. Also: claim tokens name one hold only, and results
 * MongoDB cannot store are refused when the plugin sets them. And, on a
 * devdb of the test's own acting as a replica set's primary
 * (--replset), what the worker and mtaskctl send, from the devdb's
 * command log: reads on the primary, writes with w: majority.
 *
 * Only the worker's connections carry appName mtask-worker: an isolated
 * task's own connection (--isolate fork) has none, so under --isolate fork
 * a failpoint on `update` meets the worker's claims and not the task's
 * outcome. The heartbeat thread also updates tasks (their leases): a
 * failpoint is left on until the worker shows it met it where the test
 * aims, or allows for one firing more, so that a heartbeat meeting it
 * first changes nothing. */
#include "mt-test.h"

#include "context-private.h"

#include <signal.h>
#include <unistd.h>

#define LONG_LEASE "60" /* heartbeats every 20 s: none between the failpoint and the write it aims at */

/* failCommand data for `command` from the workers' connections on this
 * test's tasks, with `more` (JSON members). bson_free it. */
static char *
fp_data (const char *command, const char *more)
{
   return bson_strdup_printf ("{'failCommands': ['%s'], 'appName': 'mtask-worker', 'namespace': '%s.tasks', %s}",
                              command,
                              mt_test_db (),
                              more);
}

/* Sets failCommand to `mode` for `command` (fp_data); returns its count. */
static int64_t
fp_set (const char *mode, const char *command, const char *more)
{
   char *data = fp_data (command, more);
   int64_t count = mt_test_failpoint_set (mode, data);

   bson_free (data);
   return count;
}

#define STEPDOWN "'errorCode': 10107, 'errorLabels': ['RetryableWriteError']"

/* Params for a probe that waits at the test's gate `name`, then does what
 * `more` (JSON members, or "") says. bson_free them. */
static char *
gated (const char *name, const char *more)
{
   return bson_strdup_printf ("{'gate': '%s'%s%s}", mt_test_gate (name), more[0] ? ", " : "", more);
}

static bson_oid_t
enqueue_gated (const char *gate, const char *more, const char *opts)
{
   char *params = gated (gate, more);
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, opts);

   bson_free (params);
   return id;
}

/* How many times the record plugin ran task `id`. */
static int64_t
executions (const bson_oid_t *id)
{
   char hex[25];

   bson_oid_to_string (id, hex);
   return mt_test_count_in ("executions", "{'task': '%s'}", hex);
}

/* How many runs the series of `id` has (itself included). */
static int64_t
series_runs (const bson_oid_t *id)
{
   char hex[25];

   bson_oid_to_string (id, hex);
   return mt_test_count_in ("tasks", "{'series': {'$oid': '%s'}}", hex);
}

static void
assert_task (const bson_oid_t *id, const char *status, int attempts)
{
   bson_t *doc = mt_test_task (id);

   ASSERT_CMPSTR (mt_test_str (doc, "status"), status);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, attempts);
   ASSERT (!mt_test_has (doc, "claim"));
   bson_destroy (doc);
}

/* The worker never said that it lost a task, nor that a task stays
 * WORK_IN_PROGRESS for its lease to end, nor a claim failed for good. */
static void
assert_nothing_dropped (pid_t pid)
{
   ASSERT (!mt_test_output_contains (pid, "no longer held"));
   ASSERT (!mt_test_output_contains (pid, "stays WORK_IN_PROGRESS"));
   ASSERT (!mt_test_output_contains (pid, "claim failed"));
   ASSERT (!mt_test_output_contains (pid, "cannot prepare"));
}

/* ---- a primary steps down ------------------------------------------------ */

/* Four tasks; the first waits at a gate in an isolated child, so that its
 * outcome (the child's) does not meet the failpoint and the worker's next
 * claim, a batch claim, does. The other three run once each, at attempt 1.
 * The heartbeat (its take-back and upkeep read tasks) or the sweep of
 * malformed tasks (every 5 s, before a claim) may meet the failpoint
 * first: then the batch claim fails at another step, and the test tries
 * again with four more tasks. */
static void
stepdown_in_batch_claim (const char *command, const char *mode, const char *step)
{
   bson_oid_t ids[3][4];
   int rounds = 0;
   pid_t pid;

   /* Ready: its indexes are built (mt_test_worker_ready says why). */
   /* A prefetch horizon far beyond a record's run: once the probe has
    * run, the claim after it is for several tasks, a batch claim (with the
    * default 50 ms it may take them one at a time, never meeting the
    * failpoint). */
   pid = mt_test_worker_ready (
      W ("--queues", "q", "--isolate", "fork", "--lease", LONG_LEASE, "--poll-interval", "0.05", "--prefetch-ms", "60000"));
   while (!mt_test_output_contains (pid, step)) {
      char gate[16];
      int64_t before;
      int elsewhere = mt_test_output_count (pid, "cannot claim now (Failing command");

      ASSERT_CMPINT (rounds, <, 3);
      bson_snprintf (gate, sizeof gate, "first%d", rounds);
      /* The others only once the probe runs: they are for the claim after
       * it, not for one that takes them with it. */
      ids[rounds][0] = enqueue_gated (gate, "", NULL);
      WAIT_UNTIL (mt_test_output_count (pid, "probe waits at gate") == rounds + 1, 30000);
      for (int i = 1; i < 4; i++) {
         ids[rounds][i] = mt_test_enqueue ("q", "record", "{}", NULL);
      }
      before = fp_set (mode, command, STEPDOWN);
      mt_test_gate_open (gate);
      WAIT_UNTIL (mt_test_output_contains (pid, step) || mt_test_output_count (pid, "cannot claim now (Failing command") > elsewhere,
                  30000);
      ASSERT_CMPINT (mt_test_failpoint_off (), >, before);
      rounds++;
      for (int i = 1; i < 4; i++) {
         WAIT_UNTIL (mt_test_status_is (&ids[rounds - 1][i], "FINISHED"), 30000);
      }
   }
   for (int r = 0; r < rounds; r++) {
      assert_task (&ids[r][0], "FINISHED", 1);
      for (int i = 1; i < 4; i++) {
         assert_task (&ids[r][i], "FINISHED", 1);
         ASSERT_CMPINT (executions (&ids[r][i]), ==, 1);
      }
   }
   ASSERT_CMPINT (mt_test_count ("{'status': {'$ne': 'FINISHED'}}"), ==, 0);
   assert_nothing_dropped (pid);
   mt_test_worker_stop (pid);
}

/* The batch claim's update (an updateMany: not a retryable write) meets a
 * stepdown, and every update of the worker's after it (the give-backs of
 * what it may have claimed too) until the test has seen it: nothing
 * claimed stays behind, and the worker treats it as the failover it is,
 * not as a claim that fails for good. */
static void
test_stepdown_batch_update (void)
{
   stepdown_in_batch_claim ("update", "'alwaysOn'", "cannot claim now (claiming the tasks found: ");
}

/* The batch claim's read back by token meets a stepdown after its update
 * claimed: what the token took goes back at once, its attempts not
 * counted, and runs once. (The first find, the claim's search for
 * candidates, goes through: {skip: 1}; later ones fail until the test has
 * seen the worker meet one.) */
static void
test_stepdown_batch_read_back (void)
{
   stepdown_in_batch_claim ("find", "{'skip': 1}", "cannot claim now (reading back what the claim took: ");
}

/* The outcome write meets a stepdown: it is written when the primary is
 * back, not dropped (which left the task WORK_IN_PROGRESS until its lease
 * ended, to run again). */
static void
test_stepdown_outcome (void)
{
   bson_oid_t id = enqueue_gated ("g", "", NULL);
   pid_t pid = mt_test_worker (W ("--queues", "q", "--lease", LONG_LEASE, "--poll-interval", "0.05"));
   int64_t before;

   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 30000);
   before = fp_set ("'alwaysOn'", "update", STEPDOWN);
   mt_test_gate_open ("g");
   WAIT_UNTIL (mt_test_output_contains (pid, "cannot write its outcome yet (Failing command"), 20000);
   ASSERT_CMPINT (mt_test_failpoint_off (), >, before);
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   assert_task (&id, "FINISHED", 1);
   ASSERT_CMPINT (mt_test_output_count (pid, "probe ran attempt"), ==, 1);
   assert_nothing_dropped (pid);
   mt_test_worker_stop (pid);
}

/* The worker's first command at start meets a stepdown: it waits and
 * starts, instead of exiting. */
static void
test_stepdown_start (void)
{
   bson_oid_t id;
   int64_t before;
   pid_t pid;

   before = fp_set ("{'times': 1}", "createIndexes", STEPDOWN);
   pid = mt_test_worker (W ("--queues", "q", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_output_contains (pid, "' started: db '"), 30000);
   ASSERT_CMPINT (mt_test_failpoint_off (), ==, before + 1);
   ASSERT (mt_test_output_contains (pid, "retrying in"));
   id = mt_test_enqueue ("q", "echo", "{'x': 1}", NULL);
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   assert_task (&id, "FINISHED", 1);
   assert_nothing_dropped (pid);
   mt_test_worker_stop (pid);
}

/* The give-back of a running task at stop (its grace over) meets a
 * stepdown: it is tried again, and the task goes back with its attempt
 * not counted, rather than waiting for its lease to end with it counted. */
static void
test_stepdown_give_back (void)
{
   bson_oid_t id = enqueue_gated ("g", "", NULL);
   pid_t pid = mt_test_worker (W ("--queues", "q", "--lease", LONG_LEASE, "--grace", "0", "--poll-interval", "0.05"));
   int64_t before;

   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 30000);
   /* Two: the give-back meets at least one (the heartbeat may meet the
    * other), and its third try would go through either way. */
   before = fp_set ("{'times': 2}", "update", STEPDOWN);
   mt_test_worker_stop (pid);
   ASSERT_CMPINT (mt_test_failpoint_off (), ==, before + 2);
   assert_task (&id, "CREATED", 0);
   ASSERT (mt_test_output_contains (pid, "given back: the worker is stopping"));
   ASSERT (!mt_test_output_contains (pid, "cannot give it back"));
}

/* ---- an outcome applied, its answer not what it should be ---------------- */

/* A repeating task whose outcome write meets failCommand `more` (applied
 * on the server, reported as failed) until the worker has said so
 * `failures` times: the outcome stands, once, and what follows an outcome
 * (here the successor) happens once; the worker knows its own outcome
 * when it finds the claim ended. */
static void
outcome_applied_but_failed (const char *uri_options, int failures, const char *more)
{
   bson_oid_t id = enqueue_gated ("g", "", "{'repeat': 3600}");
   char *uri = mt_test_uri_with (uri_options);
   pid_t pid = mt_test_worker_at (uri, W ("--queues", "q", "--lease", LONG_LEASE, "--poll-interval", "0.05"));
   int64_t before;

   bson_free (uri);
   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 30000);
   before = fp_set ("'alwaysOn'", "update", more);
   mt_test_gate_open ("g");
   WAIT_UNTIL (mt_test_output_count (pid, "cannot write its outcome yet (") >= failures, 30000);
   ASSERT_CMPINT (mt_test_failpoint_off (), >, before);
   WAIT_UNTIL (mt_test_output_contains (pid, "its outcome was written by an earlier try"), 30000);
   assert_task (&id, "FINISHED", 1);
   WAIT_UNTIL (series_runs (&id) == 2, 10000);
   ASSERT_CMPINT (mt_test_output_count (pid, "probe ran attempt"), ==, 1);
   ASSERT (!mt_test_output_contains (pid, "cannot write its outcome ("));
   assert_nothing_dropped (pid);
   mt_test_worker_stop (pid);
   ASSERT_CMPINT (series_runs (&id), ==, 2);
}

/* Applied on the primary, not replicated to a majority in time. */
static void
test_write_concern_failed (void)
{
   outcome_applied_but_failed ("connectTimeoutMS=10000",
                               1,
                               "'writeConcernError': {'code': 64, 'codeName': 'WriteConcernFailed', "
                               "'errmsg': 'waiting for replication timed out', 'errInfo': {'wtimeout': true}}");
}

/* Applied, with too few members up to acknowledge it. */
static void
test_write_concern_unsatisfiable (void)
{
   outcome_applied_but_failed ("connectTimeoutMS=10000",
                               1,
                               "'writeConcernError': {'code': 100, 'codeName': 'UnsatisfiableWriteConcern', "
                               "'errmsg': 'Not enough data-bearing nodes'}");
}

/* The reply is lost: the server holds the outcome's update for 1 s and
 * then applies it, the worker gave up after 0.5 s (socketTimeoutMS). Its
 * first retry is held too (the failpoint goes off after the worker says so
 * twice); the next finds the claim ended by the first try. The worker
 * recognises its own outcome and does not call it lost. */
static void
test_lost_reply (void)
{
   outcome_applied_but_failed ("socketTimeoutMS=500", 2, "'blockConnection': true, 'blockTimeMS': 1000");
}

/* ---- claim tokens -------------------------------------------------------- */

static bool
is_hex_oid (const char *s)
{
   return s && strlen (s) == 24 && bson_oid_is_valid (s, 24);
}

/* A batch claim's token holds an ObjectId after the worker's id (unique
 * across restarts under the same id); a single claim replaces a stale
 * token; every end of a hold (outcome, give-back at stop, take-back of a
 * lost worker's task) removes it. */
static void
test_tokens (void)
{
   bson_oid_t stale, ahead[2], lost;
   bson_t *doc;
   const char *token;
   char *claim;
   pid_t pid;

   /* A task a crashed worker left with a token; and one whose token is
    * left from an earlier hold. */
   lost = mt_test_task_insert ("{'queue': 'q', 'type': 'nobody', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'W-GONE', "
                               "'attempts': 1, 'priority': 0, 'created': {'$date': 0}, 'heartbeat': {'$date': 0}, "
                               "'started': {'$date': 0}, 'claim': 'W-GONE#1#7', 'params': {}}");
   {
      char *params = gated ("first", "");
      char *json = bson_strdup_printf ("{'queue': 'q', 'type': 'probe', 'status': 'CREATED', 'attempts': 0, "
                                       "'priority': 10, 'created': {'$date': 0}, 'claim': 'W-OLD#0#1', 'params': %s}",
                                       params);

      stale = mt_test_task_insert (json);
      bson_free (json);
      bson_free (params);
   }
   for (int i = 0; i < 2; i++) {
      ahead[i] = enqueue_gated ("ahead", "", NULL);
   }

   /* A horizon far beyond the probe's run time: once the first probe has
    * run, the next claim takes both others in one batch. */
   pid = mt_test_worker (
      W ("--queues", "q", "--pid", "W-TOKENS", "--lease", "3", "--grace", "30", "--poll-interval", "0.05", "--prefetch-ms", "60000"));
   /* The lost worker's task is taken back, its token with it. */
   WAIT_UNTIL (mt_test_status_is (&lost, "CREATED"), 30000);
   doc = mt_test_task (&lost);
   ASSERT (!mt_test_has (doc, "claim"));
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_WORKER_LOST);
   bson_destroy (doc);

   /* A single claim: the stale token is not the claim's. */
   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 30000);
   doc = mt_test_task (&stale);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
   ASSERT (!mt_test_str (doc, "claim") || strcmp (mt_test_str (doc, "claim"), "W-OLD#0#1"));
   bson_destroy (doc);
   mt_test_gate_open ("first");

   /* A batch claim takes both others: one runs, the other waits its turn,
    * both under one token "W-TOKENS#<ObjectId>". */
   WAIT_UNTIL (mt_test_count ("{'status': 'WORK_IN_PROGRESS', 'claim': {'$exists': true}}") == 2, 30000);
   doc = mt_test_task (&ahead[0]);
   token = mt_test_str (doc, "claim");
   ASSERT (token);
   ASSERT_CMPINT (strncmp (token, "W-TOKENS#", 9), ==, 0);
   ASSERT (is_hex_oid (strrchr (token, '#') + 1));
   claim = bson_strdup (token);
   bson_destroy (doc);
   doc = mt_test_task (&ahead[1]);
   ASSERT_CMPSTR (mt_test_str (doc, "claim"), claim);
   bson_destroy (doc);
   bson_free (claim);
   assert_task (&stale, "FINISHED", 1);

   /* Stopped while one runs: it finishes, the other is given back. */
   WAIT_UNTIL (mt_test_output_count (pid, "probe waits at gate") == 2, 30000);
   kill (pid, SIGTERM);
   WAIT_UNTIL (mt_test_output_contains (pid, "stopping: no new claims"), 30000);
   mt_test_gate_open ("ahead");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{'claim': {'$exists': true}}"), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{'status': 'FINISHED'}"), ==, 2);
   ASSERT_CMPINT (mt_test_count ("{'status': 'CREATED', 'type': 'probe', 'attempts': 0}"), ==, 1);
}

/* ---- results that cannot be stored --------------------------------------- */

/* The plugin's set_result is refused, with the key or the size named, and
 * the plugin goes on (it stores what it was told instead). */
static void
test_result_refused (void)
{
   static const struct {
      const char *params;
      const char *says;
   } cases[] = {
      {"{'key': '$bad'}", "key 'result.$bad' cannot be stored"},
      {"{'key': 'a.b', 'nested': true}", "key 'result.outer.a.b' cannot be stored"},
      {"{'bytes': 16750000}", "bytes cannot be stored: with the task's own "},
   };
   bson_oid_t ids[3];
   pid_t pid;

   for (size_t i = 0; i < 3; i++) {
      ids[i] = mt_test_enqueue ("q", "badresult", cases[i].params, "{'max_attempts': 1}");
   }
   pid = mt_test_worker (W ("--queues", "q", "--poll-interval", "0.05"));
   for (size_t i = 0; i < 3; i++) {
      bson_t *doc;

      WAIT_UNTIL (!mt_test_status_is (&ids[i], "CREATED") && !mt_test_status_is (&ids[i], "WORK_IN_PROGRESS"), 30000);
      doc = mt_test_task (&ids[i]);
      ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
      ASSERT_CMPINT (mt_test_int (doc, "result.refused.domain"), ==, MT_ERROR_PLUGIN);
      ASSERT_CMPINT (mt_test_int (doc, "result.refused.code"), ==, MT_PLUGIN_ERROR_API);
      ASSERT_CONTAINS (mt_test_str (doc, "result.refused.message"), cases[i].says);
      bson_destroy (doc);
   }
   mt_test_worker_stop (pid);
}

/* The server refuses an outcome for good (here a duplicate key, from a
 * unique index an operator made on the result): the task ends FAILED
 * without its result, the error saying why, instead of staying
 * WORK_IN_PROGRESS to run again (and be refused again) when its lease
 * ends. */
static void
test_outcome_refused_fails (void)
{
   mongoc_database_t *database = mongoc_client_get_database (mt_test_client (), mt_test_db ());
   bson_t *index = mt_test_bson ("{'createIndexes': 'tasks', 'indexes': [{'key': {'result.x': 1}, 'name': "
                                 "'one_per_result', 'unique': true, 'sparse': true}]}");
   bson_t *done = mt_test_bson ("{'queue': 'elsewhere', 'type': 'probe', 'status': 'FINISHED', 'result': {'x': 1}}");
   bson_error_t error;
   bson_oid_t id;
   bson_t *doc;
   pid_t pid;

   ASSERT_OR_PRINT (mongoc_database_write_command_with_opts (database, index, NULL, NULL, &error), error);
   mt_test_insert ("tasks", done);
   bson_destroy (index);
   bson_destroy (done);
   mongoc_database_destroy (database);

   id = mt_test_enqueue ("q", "probe", "{'result': {'x': 1}}", NULL);
   pid = mt_test_worker (W ("--queues", "q", "--lease", LONG_LEASE, "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (!mt_test_has (doc, "result"));
   ASSERT (!mt_test_has (doc, "claim"));
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT_CMPINT (mt_test_int (doc, "error.domain"), ==, MT_ERROR_STORE);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_STORE_ERROR_WRITE);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "its outcome (success, with a result) could not be stored: ");
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "E11000");
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_output_count (pid, "probe ran attempt"), ==, 1);
   ASSERT (mt_test_output_contains (pid, "it ends FAILED without its result"));
   ASSERT (!mt_test_output_contains (pid, "stays WORK_IN_PROGRESS"));
   mt_test_worker_stop (pid);
}

/* ---- transient or not ------------------------------------------------------ */

/* What a retry cures, by domain, code and the reply's labels and write
 * concern error; and what it does not. */
static void
test_transient (void)
{
   static const struct {
      uint32_t domain, code;
      const char *reply;
      bool transient;
   } cases[] = {
      {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET, NULL, true},
      {MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE, NULL, true},
      {MONGOC_ERROR_SERVER, 10107, NULL, true},  /* NotWritablePrimary */
      {MONGOC_ERROR_SERVER, 189, NULL, true},    /* PrimarySteppedDown */
      {MONGOC_ERROR_SERVER, 11602, NULL, true},  /* InterruptedDueToReplStateChange */
      {MONGOC_ERROR_SERVER, 91, NULL, true},     /* ShutdownInProgress */
      {MONGOC_ERROR_SERVER, 13435, NULL, true},  /* NotPrimaryNoSecondaryOk */
      {MONGOC_ERROR_QUERY, 13436, NULL, true},   /* error API 1: NotPrimaryOrSecondary */
      {MONGOC_ERROR_WRITE_CONCERN, 64, NULL, true},
      {MONGOC_ERROR_WRITE_CONCERN, 100, NULL, true},
      {MONGOC_ERROR_WRITE_CONCERN, 79, NULL, false}, /* UnknownReplWriteConcern: the URI's w is wrong */
      {MONGOC_ERROR_SERVER, 2, NULL, false},         /* BadValue */
      {MONGOC_ERROR_SERVER, 11000, NULL, false},     /* a duplicate key */
      {MONGOC_ERROR_SERVER, 2, "{'errorLabels': ['RetryableWriteError']}", true},
      {MONGOC_ERROR_SERVER, 2, "{'errorLabels': ['TransientTransactionError']}", false},
      {MONGOC_ERROR_SERVER, 2, "{'writeConcernError': {'code': 64, 'errmsg': 'x'}}", true},
      {MONGOC_ERROR_SERVER, 2, "{'writeConcernErrors': [{'code': 100, 'errmsg': 'x'}]}", true},
      {MONGOC_ERROR_SERVER, 2, "{'writeConcernErrors': [{'code': 79, 'errmsg': 'x'}]}", false},
      {MT_ERROR_STORE, 6, NULL, false}, /* ours: small codes mean other things */
      {MT_ERROR_STORE, MT_STORE_ERROR_LOST, NULL, false},
   };

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_error_t error;
      bson_t *reply = cases[i].reply ? mt_test_bson (cases[i].reply) : NULL;

      bson_set_error (&error, cases[i].domain, cases[i].code, "case %zu", i);
      if (mt_error_is_transient (&error, reply) != cases[i].transient) {
         mt_test_fail (__FILE__,
                       __LINE__,
                       "error %" PRIu32 ".%" PRIu32 " with reply %s: transient is not %s",
                       cases[i].domain,
                       cases[i].code,
                       cases[i].reply ? cases[i].reply : "(none)",
                       cases[i].transient ? "true" : "false");
      }
      if (reply) {
         bson_destroy (reply);
      }
   }
}

/* ---- the URI policy ------------------------------------------------------- */

/* Reads go to the primary whatever the URI asks; writes wait for a
 * majority with a timeout unless the URI names a write concern. */
static void
test_uri_policy (void)
{
   static const struct {
      const char *uri;
      const char *overridden;
      int32_t w;
      int32_t wtimeout;
   } cases[] = {
      {"mongodb://h/", NULL, MONGOC_WRITE_CONCERN_W_MAJORITY, MT_WRITE_TIMEOUT_MS},
      {"mongodb://h/?readPreference=secondaryPreferred&readPreferenceTags=dc:ny", "secondaryPreferred",
       MONGOC_WRITE_CONCERN_W_MAJORITY, MT_WRITE_TIMEOUT_MS},
      {"mongodb://h/?readPreference=nearest&maxStalenessSeconds=120&w=1", "nearest", 1, 0},
      {"mongodb://h/?journal=true", NULL, MONGOC_WRITE_CONCERN_W_DEFAULT, 0},
      {"mongodb://h/?w=majority&wtimeoutMS=500", NULL, MONGOC_WRITE_CONCERN_W_MAJORITY, 500},
   };

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_error_t error;
      mongoc_uri_t *uri = mt_uri_new (cases[i].uri, NULL, 0, &error);
      const char *overridden;
      const mongoc_write_concern_t *wc;

      ASSERT_OR_PRINT (uri, error);
      overridden = mt_uri_apply_policy (uri, MT_URI_PRIMARY_READS | MT_URI_MAJORITY_WRITES);
      if (cases[i].overridden) {
         ASSERT_CMPSTR (overridden, cases[i].overridden);
      } else {
         ASSERT (!overridden);
      }
      ASSERT_CMPINT (mongoc_read_prefs_get_mode (mongoc_uri_get_read_prefs_t (uri)), ==, MONGOC_READ_PRIMARY);
      wc = mongoc_uri_get_write_concern (uri);
      ASSERT_CMPINT (mongoc_write_concern_get_w (wc), ==, cases[i].w);
      ASSERT_CMPINT (mongoc_write_concern_get_wtimeout_int64 (wc), ==, cases[i].wtimeout);
      mongoc_uri_destroy (uri);
   }
}

/* A worker given a URI that reads from secondaries says it reads from the
 * primary instead, and works. */
static void
test_worker_says_primary (void)
{
   char *uri = mt_test_uri_with ("readPreference=secondaryPreferred");
   bson_oid_t id = mt_test_enqueue ("q", "echo", "{}", NULL);
   pid_t pid = mt_test_worker_at (uri, W ("--queues", "q", "--poll-interval", "0.05"));

   bson_free (uri);
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 30000);
   ASSERT (mt_test_output_contains (pid, "the URI's readPreference 'secondaryPreferred' is not used"));
   mt_test_worker_stop (pid);
}

/* ---- on a replica set: what the worker and mtaskctl send ----------------- */

/* What a test reads of the command log of its own devdb. */
typedef struct {
   int reads;       /* commands that read: find, aggregate, count, distinct */
   int writes;      /* commands that write */
   char bad_read[256];  /* the first read that broke the rule, and how */
   char bad_write[512]; /* the first write that broke it */
} sent_t;

static bool
is_write (const char *command)
{
   static const char *const writes[] = {"insert", "update", "delete", "findAndModify", "findandmodify", "createIndexes"};

   for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
      if (!strcmp (command, writes[i])) {
         return true;
      }
   }
   return false;
}

static bool
is_read (const char *command)
{
   return !strcmp (command, "find") || !strcmp (command, "aggregate") || !strcmp (command, "count") ||
          !strcmp (command, "distinct");
}

/* Goes through `log`: every read must carry no read preference but
 * `read_mode` (NULL: primary, i.e. none or mode primary); every write a
 * write concern with `w` (a string, or a number when `w_number` >= 0) and
 * `wtimeout` (absent when 0). The first of each that does not is in
 * `sent`. */
static void
check_sent (const bson_t *log, const char *read_mode, const char *w, int w_number, int64_t wtimeout, sent_t *sent)
{
   bson_iter_t iter;

   memset (sent, 0, sizeof *sent);
   ASSERT (bson_iter_init (&iter, log));
   while (bson_iter_next (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t entry;
      const char *command, *mode;

      ASSERT (BSON_ITER_HOLDS_DOCUMENT (&iter));
      bson_iter_document (&iter, &len, &data);
      ASSERT (bson_init_static (&entry, data, len));
      command = mt_test_str (&entry, "command");
      ASSERT (command);
      mode = mt_test_str (&entry, "readPreference.mode");
      if (is_read (command)) {
         sent->reads++;
         if (!sent->bad_read[0] && (read_mode ? !mode || strcmp (mode, read_mode) : mode && strcmp (mode, "primary"))) {
            bson_snprintf (sent->bad_read, sizeof sent->bad_read, "%s with readPreference %s", command, mode ? mode : "(none)");
         }
      }
      if (is_write (command)) {
         bool same_w = w_number >= 0 ? mt_test_has (&entry, "writeConcern.w") && !mt_test_str (&entry, "writeConcern.w") &&
                                          mt_test_int (&entry, "writeConcern.w") == w_number
                                     : mt_test_str (&entry, "writeConcern.w") && !strcmp (mt_test_str (&entry, "writeConcern.w"), w);
         bool same_timeout = wtimeout ? mt_test_has (&entry, "writeConcern.wtimeout") &&
                                           mt_test_int (&entry, "writeConcern.wtimeout") == wtimeout
                                      : !mt_test_has (&entry, "writeConcern.wtimeout");

         sent->writes++;
         if (!sent->bad_write[0] && (!same_w || !same_timeout)) {
            char *json = bson_as_canonical_extended_json (&entry, NULL);

            bson_snprintf (sent->bad_write, sizeof sent->bad_write, "a write with another write concern: %s", json);
            bson_free (json);
         }
      }
   }
}

/* A worker whose URI asks to read from secondaries of replica set rs0, on
 * the test's own devdb acting as its primary: it works; every read it
 * sends goes to the primary, every write waits for a majority with a
 * timeout of 10 s. Then another whose URI says w=1: its writes say w: 1. */
static void
test_replset_worker (void)
{
   static const struct {
      const char *options;
      const char *w;
      int w_number;
      int64_t wtimeout;
   } cases[] = {
      {"readPreference=secondaryPreferred", "majority", -1, MT_WRITE_TIMEOUT_MS},
      {"readPreference=secondaryPreferred&w=1", NULL, 1, 0},
   };
   pid_t devdb;
   char *base = mt_test_devdb_start_replset ("rs0", &devdb);
   mongoc_client_t *client = mongoc_client_new (base);

   ASSERT (client);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      char *uri = bson_strdup_printf ("%s&%s", base, cases[i].options);
      bson_t *log, *params = BCON_NEW ("x", BCON_INT32 (1)), *opts = BCON_NEW ("repeat", BCON_DOUBLE (3600));
      bson_error_t error;
      bson_oid_t ids[3];
      sent_t sent;
      pid_t pid;

      mt_test_command_log_clear_at (base);
      /* A backlog (single claims, then a batch claim and its read back),
       * and a repeating task (its successor). */
      for (int k = 0; k < 3; k++) {
         ASSERT_OR_PRINT (mt_enqueue (client, mt_test_db (), "q", "echo", params, k ? NULL : opts, &ids[k], &error), error);
      }
      pid = mt_test_worker_at (uri, W ("--queues", "q", "--poll-interval", "0.05"));
      WAIT_UNTIL (mt_test_count_at (client, mt_test_db (), "tasks", "{'status': 'FINISHED'}") == 3 * (int64_t) (i + 1), 30000);
      mt_test_worker_stop (pid);

      log = mt_test_command_log_at (base, "mtask-worker");
      check_sent (log, NULL, cases[i].w, cases[i].w_number, cases[i].wtimeout, &sent);
      bson_destroy (log);
      if (sent.bad_read[0] || sent.bad_write[0]) {
         mt_test_fail (__FILE__, __LINE__, "the worker sent %s; %s", sent.bad_read, sent.bad_write);
      }
      ASSERT_CMPINT (sent.reads, >, 0);
      ASSERT_CMPINT (sent.writes, >, 0);
      ASSERT (mt_test_output_contains (pid, "the URI's readPreference 'secondaryPreferred' is not used"));
      bson_destroy (params);
      bson_destroy (opts);
      bson_free (uri);
   }
   mongoc_client_destroy (client);
   bson_free (base);
   mt_test_process_stop (devdb, 30000);
}

/* An application's own client that reads from secondaries: what the
 * library reads to decide on its behalf (here, who holds a unique key, on
 * the second enqueue of it) still goes to the primary; a secondary may not
 * have the first task yet, and the second would be taken for new. */
static void
test_replset_library (void)
{
   pid_t devdb;
   char *base = mt_test_devdb_start_replset ("rs0", &devdb);
   char *uri = bson_strdup_printf ("%s&readPreference=secondaryPreferred&appName=app", base);
   mongoc_client_t *client = mongoc_client_new (uri);
   bson_t *opts = BCON_NEW ("unique_key", "nightly"), *log;
   bson_oid_t first, second;
   bson_error_t error;
   bool created;
   sent_t sent;

   ASSERT (client);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   mt_test_command_log_clear_at (base);
   ASSERT_OR_PRINT (mt_enqueue_ex (client, mt_test_db (), "q", "echo", NULL, opts, &first, &created, &error), error);
   ASSERT (created);
   ASSERT_OR_PRINT (mt_enqueue_ex (client, mt_test_db (), "q", "echo", NULL, opts, &second, &created, &error), error);
   ASSERT (!created);
   ASSERT (bson_oid_equal (&first, &second));

   log = mt_test_command_log_at (base, "app");
   check_sent (log, NULL, "majority", -1, 0, &sent);
   bson_destroy (log);
   ASSERT_CMPINT (sent.reads, >, 0);
   if (sent.bad_read[0]) {
      mt_test_fail (__FILE__, __LINE__, "the library sent %s", sent.bad_read);
   }
   bson_destroy (opts);
   mongoc_client_destroy (client);
   bson_free (uri);
   bson_free (base);
   mt_test_process_stop (devdb, 30000);
}

/* mtaskctl with a URI that reads from secondaries: a command that acts on
 * what it reads (purge, here its dry run) reads from the primary; one that
 * only shows (ls) reads where the URI says; writes (purge's delete) wait
 * for a majority. */
static void
test_replset_mtaskctl (void)
{
   static const struct {
      const char *words[6];
      const char *read_mode;
      bool reads, writes;
   } cases[] = {
      {{"purge", "--older-than", "1s", "--dry-run", NULL}, NULL, true, false},
      {{"ls", NULL}, "secondaryPreferred", true, false},
      {{"purge", "--older-than", "1s", NULL}, NULL, false, true},
   };
   pid_t devdb;
   char *base = mt_test_devdb_start_replset ("rs0", &devdb);
   char *uri = bson_strdup_printf ("%s&readPreference=secondaryPreferred", base);
   mongoc_client_t *client = mongoc_client_new (base);
   bson_t *ended = BCON_NEW ("queue", "q", "type", "echo", "status", "FINISHED", "finished", BCON_DATE_TIME (0));
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, mt_test_db (), "tasks");
   bson_error_t error;

   ASSERT_OR_PRINT (mongoc_collection_insert_one (tasks, ended, NULL, NULL, &error), error);
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const char *argv[16] = {mt_test_env ("MTASK_CTL"), "--uri", uri, "--db", mt_test_db ()};
      size_t n = 5;
      bson_t *log;
      sent_t sent;
      char *out;
      int code;

      for (size_t k = 0; cases[i].words[k]; k++) {
         argv[n++] = cases[i].words[k];
      }
      mt_test_command_log_clear_at (base);
      code = mt_test_run (argv, 30000, &out);
      if (code != 0) {
         printf ("# %s\n", out);
      }
      bson_free (out);
      ASSERT_CMPINT (code, ==, 0);
      log = mt_test_command_log_at (base, "mtaskctl");
      check_sent (log, cases[i].read_mode, "majority", -1, MT_WRITE_TIMEOUT_MS, &sent);
      bson_destroy (log);
      if (sent.bad_read[0] || sent.bad_write[0]) {
         mt_test_fail (__FILE__, __LINE__, "mtaskctl %s sent %s; %s", cases[i].words[0], sent.bad_read, sent.bad_write);
      }
      ASSERT_CMPINT (sent.reads > 0, ==, cases[i].reads);
      ASSERT_CMPINT (sent.writes > 0, ==, cases[i].writes);
   }
   ASSERT_CMPINT (mt_test_count_at (client, mt_test_db (), "tasks", "{}"), ==, 0); /* purged */
   mongoc_collection_destroy (tasks);
   mongoc_client_destroy (client);
   bson_destroy (ended);
   bson_free (uri);
   bson_free (base);
   mt_test_process_stop (devdb, 30000);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/replset/stepdown/batch_update", test_stepdown_batch_update);
   mt_test_add ("/replset/stepdown/batch_read_back", test_stepdown_batch_read_back);
   mt_test_add ("/replset/stepdown/outcome", test_stepdown_outcome);
   mt_test_add ("/replset/stepdown/start", test_stepdown_start);
   mt_test_add ("/replset/stepdown/give_back_at_stop", test_stepdown_give_back);
   mt_test_add ("/replset/write_concern/failed", test_write_concern_failed);
   mt_test_add ("/replset/write_concern/unsatisfiable", test_write_concern_unsatisfiable);
   mt_test_add ("/replset/lost_reply/outcome", test_lost_reply);
   mt_test_add ("/replset/tokens", test_tokens);
   mt_test_add ("/replset/result/refused", test_result_refused);
   mt_test_add ("/replset/result/outcome_refused_fails", test_outcome_refused_fails);
   mt_test_add ("/replset/transient", test_transient);
   mt_test_add ("/replset/uri/policy", test_uri_policy);
   mt_test_add ("/replset/uri/worker_reads_primary", test_worker_says_primary);
   mt_test_add ("/replset/sent/worker", test_replset_worker);
   mt_test_add ("/replset/sent/library", test_replset_library);
   mt_test_add ("/replset/sent/mtaskctl", test_replset_mtaskctl);
   return mt_test_main (argc, argv);
}
