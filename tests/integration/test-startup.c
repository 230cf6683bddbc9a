/* A worker's start on a database as it finds it (issue 14, items 6, 9, 12):
 * another live worker under the same id, indexes an operator or an older
 * mtask made, sharded collections. */
#include "mt-test.h"

#include <signal.h>
#include <unistd.h>

#define STARTUP_APP "mtask-test-startup"

/* Params for a probe that waits at the test's gate `name`, then does what
 * `more` (JSON members, or "") says. bson_free them. */
static char *
gated (const char *name, const char *more)
{
   return bson_strdup_printf ("{'gate': '%s'%s%s}", mt_test_gate (name), more[0] ? ", " : "", more);
}

static const char *
hostname (void)
{
   static char name[256];

   if (!name[0] && gethostname (name, sizeof name - 1) != 0) {
      bson_strncpy (name, "unknown", sizeof name);
   }
   return name;
}

/* The worker's exit code, waiting up to `timeout_ms` for it. */
static int
exit_code (pid_t pid, int timeout_ms)
{
   return mt_test_exit_code (mt_test_wait_exit (pid, timeout_ms));
}

/* Writes the registry entry of `id` as a worker of `host` and `pid` would
 * have, its heartbeat `age_s` seconds before the server's now, its lease
 * `lease_s`. */
static void
registry_entry (const char *id, const char *host, int pid, const char *status, double age_s, double lease_s)
{
   mongoc_collection_t *workers = mt_test_collection ("workers");
   bson_t *filter = BCON_NEW ("_id", BCON_UTF8 (id));
   bson_t *set = BCON_NEW ("$set",
                           "{",
                           "host",
                           BCON_UTF8 (host),
                           "pid",
                           BCON_INT32 (pid),
                           "status",
                           BCON_UTF8 (status),
                           "lease_seconds",
                           BCON_DOUBLE (lease_s),
                           "}",
                           "$currentDate",
                           "{",
                           "heartbeat",
                           BCON_BOOL (true),
                           "}");
   bson_t *opts = BCON_NEW ("upsert", BCON_BOOL (true));
   bson_error_t error;
   bool ok = mongoc_collection_update_one (workers, filter, set, opts, NULL, &error);

   ASSERT_OR_PRINT (ok, error);
   if (age_s > 0) {
      /* Back from the server's own stamp. */
      bson_t *doc = mt_test_find_one ("workers", "{'_id': '%s'}", id);
      bson_t *back = BCON_NEW ("$set", "{", "heartbeat", BCON_DATE_TIME (mt_test_date (doc, "heartbeat") - (int64_t) (age_s * 1000)), "}");

      ok = mongoc_collection_update_one (workers, filter, back, NULL, NULL, &error);
      bson_destroy (back);
      bson_destroy (doc);
      ASSERT_OR_PRINT (ok, error);
   }
   bson_destroy (opts);
   bson_destroy (set);
   bson_destroy (filter);
   mongoc_collection_destroy (workers);
}

/* ---- item 6: one live worker per id --------------------------------------- */

/* A second worker under the id of a live one refuses to start, saying who
 * holds it and what to do; the first's running task is left alone. (Before:
 * the second took it back as "restarted" and ran it again.) */
static void
test_live_id_refused (void)
{
   char *params = gated ("first", "'echo_info': true");
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t first = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-DUP", "--poll-interval", "0.05"));
   pid_t second;
   char expect[512], *out;
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   second = mt_test_worker (W ("--queues", "q", "--pid", "W-DUP", "--poll-interval", "0.05"));
   ASSERT_CMPINT (exit_code (second, 30000), ==, 1);
   out = mt_test_output (second);
   ASSERT_CONTAINS (out, "worker id 'W-DUP' is in use by a live worker");
   bson_snprintf (expect, sizeof expect, "host '%s' pid %d (its last heartbeat", hostname (), (int) first);
   ASSERT_CONTAINS (out, expect);
   bson_snprintf (expect, sizeof expect, "this one is host '%s' pid %d", hostname (), (int) second);
   ASSERT_CONTAINS (out, expect);
   ASSERT_CONTAINS (out, "Give each worker its own --pid");
   ASSERT_CONTAINS (out, "--replace");
   ASSERT (!strstr (out, "' started: db '"));
   bson_free (out);

   /* Untouched: still the first's, first attempt, no error; and the
    * registry still names the first. */
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
   ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), "W-DUP");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (!mt_test_has (doc, "errors"));
   ASSERT (!mt_test_has (doc, "error"));
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-DUP', 'pid': %d, 'status': 'running'}", (int) first), ==, 1);

   mt_test_gate_open ("first");
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 1);
   bson_destroy (doc);
   mt_test_worker_stop (first);
   bson_free (params);
}

/* The id of a worker that stopped is free at once. */
static void
test_stopped_id_starts (void)
{
   pid_t first = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-NEXT"));
   pid_t second;

   mt_test_worker_stop (first);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-NEXT', 'status': 'stopped'}"), ==, 1);
   second = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-NEXT"));
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-NEXT', 'pid': %d, 'status': 'running'}", (int) second), ==, 1);
   mt_test_worker_stop (second);
}

/* Another host's entry: fresh within its own lease, refused; older than
 * its lease (a worker that died there), free. The lease is the entry's
 * own, not the starting worker's. */
static void
test_other_host_by_its_lease (void)
{
   pid_t pid;
   char *out;

   registry_entry ("W-FAR", "far.example", 4242, "running", 60, 600);
   pid = mt_test_worker (W ("--queues", "q", "--pid", "W-FAR", "--lease", "30"));
   ASSERT_CMPINT (exit_code (pid, 30000), ==, 1);
   out = mt_test_output (pid);
   ASSERT_CONTAINS (out, "worker id 'W-FAR' is in use by a live worker: host 'far.example' pid 4242 (its last heartbeat 6");
   ASSERT_CONTAINS (out, "lease 600 s");
   bson_free (out);

   registry_entry ("W-FAR", "far.example", 4242, "running", 700, 600);
   pid = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-FAR"));
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-FAR', 'host': '%s', 'pid': %d}", hostname (), (int) pid), ==, 1);
   mt_test_worker_stop (pid);
}

/* A worker killed on this machine: its process is gone, so the same id
 * starts again at once, without waiting out the lease, and takes back what
 * the dead one left. */
static void
test_killed_restarts_at_once (void)
{
   char *params = gated ("killed", "'echo_info': true");
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t first = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-KILLED", "--lease", "600", "--poll-interval", "0.05"));
   pid_t again;
   char expect[128];
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   mt_test_process_kill (first);
   mt_test_gate_open ("killed");
   again = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-KILLED", "--lease", "600", "--poll-interval", "0.05"));
   bson_snprintf (expect, sizeof expect, "its earlier process (pid %d of this host) is gone", (int) first);
   ASSERT (mt_test_output_contains (again, expect));
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 2);
   bson_destroy (doc);
   mt_test_worker_stop (again);
   bson_free (params);
}

/* A worker paused past its lease: the id is free for another process. The
 * paused one, woken, learns at its heartbeat that it was taken over, stops
 * claiming, and exits 0; what it finishes is dropped by the fence. */
static void
test_paused_taken_over (void)
{
   char *params = gated ("paused", "'echo_info': true");
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t paused = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-PAUSED", "--lease", "2", "--poll-interval", "0.05"));
   pid_t heir;
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   kill (paused, SIGSTOP);
   /* Its heartbeat ages past its lease, on the server's clock. */
   WAIT_UNTIL (mt_test_count_in ("workers", "{'_id': 'W-PAUSED', '$expr': {'$lt': ['$heartbeat', {'$subtract': ['$$NOW', 2500]}]}}") == 1,
               20000);
   heir = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-PAUSED", "--lease", "2", "--poll-interval", "0.05"));
   /* The heir took it back at its start and runs it again (attempt 2). */
   WAIT_UNTIL (mt_test_count ("{'status': 'WORK_IN_PROGRESS', 'attempts': 2}") == 1, 20000);
   kill (paused, SIGCONT);
   WAIT_UNTIL (mt_test_output_contains (paused, "worker id 'W-PAUSED' was taken over by host"), 20000);
   mt_test_gate_open ("paused");
   ASSERT_CMPINT (exit_code (paused, 30000), ==, 0);
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-PAUSED', 'pid': %d, 'status': 'running'}", (int) heir), ==, 1);
   mt_test_worker_stop (heir);
   bson_free (params);
}

/* --replace starts in place of a live worker: its running task is taken
 * back and run again by the new one; the old one stops claiming at its
 * next heartbeat, its outcome dropped, and exits 0. */
static void
test_replace (void)
{
   char *params = gated ("replaced", "'echo_info': true");
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t old = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-REP", "--lease", "3", "--poll-interval", "0.05"));
   pid_t fresh;
   char expect[256];
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   fresh = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-REP", "--lease", "3", "--poll-interval", "0.05", "--replace"));
   bson_snprintf (expect, sizeof expect, "worker id 'W-REP': replacing the worker on host '%s' pid %d", hostname (), (int) old);
   ASSERT (mt_test_output_contains (fresh, expect));
   WAIT_UNTIL (mt_test_count ("{'status': 'WORK_IN_PROGRESS', 'attempts': 2}") == 1, 20000);
   doc = mt_test_task (&id);
   ASSERT_CONTAINS (mt_test_str (doc, "errors.0.message"), "worker 'W-REP' was restarted while running this task");
   bson_destroy (doc);

   WAIT_UNTIL (mt_test_output_contains (old, "worker id 'W-REP' was taken over by host"), 20000);
   mt_test_gate_open ("replaced");
   WAIT_UNTIL (mt_test_output_contains (old, "lost it, outcome dropped"), 20000);
   ASSERT_CMPINT (exit_code (old, 30000), ==, 0);
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 2);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-REP', 'pid': %d, 'status': 'running'}", (int) fresh), ==, 1);
   mt_test_worker_stop (fresh);
   bson_free (params);
}

/* Two workers starting at once under one new id: one runs, the other is
 * refused; never both. */
static void
test_simultaneous_start (void)
{
   pid_t a = mt_test_worker (W ("--queues", "q", "--pid", "W-TWIN"));
   pid_t b = mt_test_worker (W ("--queues", "q", "--pid", "W-TWIN"));
   pid_t winner = 0, loser = 0;

   WAIT_UNTIL (mt_test_output_contains (a, "is in use by a live worker") ||
                  mt_test_output_contains (b, "is in use by a live worker"),
               30000);
   loser = mt_test_output_contains (a, "is in use by a live worker") ? a : b;
   winner = loser == a ? b : a;
   ASSERT_CMPINT (exit_code (loser, 30000), ==, 1);
   WAIT_UNTIL (mt_test_output_contains (winner, "' started: db '"), 30000);
   ASSERT (!mt_test_output_contains (winner, "is in use"));
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-TWIN', 'pid': %d}", (int) winner), ==, 1);
   mt_test_worker_stop (winner);
}

/* ---- item 9: indexes that already exist -------------------------------- */

/* Creates, as an operator would, the index `name` on `collection` with
 * `spec_json` (its key and options, JSON). */
static void
index_create (const char *collection, const char *name, const char *spec_json)
{
   mongoc_database_t *db = mongoc_client_get_database (mt_test_client (), mt_test_db ());
   bson_t *spec = mt_test_bson (spec_json);
   bson_t *cmd;
   bson_error_t error;
   bool ok;

   BSON_APPEND_UTF8 (spec, "name", name);
   cmd = BCON_NEW ("createIndexes", BCON_UTF8 (collection), "indexes", "[", BCON_DOCUMENT (spec), "]");
   ok = mongoc_database_write_command_with_opts (db, cmd, NULL, NULL, &error);
   bson_destroy (cmd);
   bson_destroy (spec);
   mongoc_database_destroy (db);
   ASSERT_OR_PRINT (ok, error);
}

/* The index `name` of `collection` as listIndexes gives it, or NULL.
 * bson_destroy it. */
static bson_t *
index_find (const char *collection, const char *name)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
   const bson_t *doc;
   bson_t *found = NULL;
   bson_error_t error;

   while (!found && mongoc_cursor_next (cursor, &doc)) {
      if (!strcmp (mt_test_str (doc, "name"), name)) {
         found = bson_copy (doc);
      }
   }
   ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return found;
}

/* An operator's mtask_claim with other keys: the worker starts, says which
 * index is in the way and what to do, and runs tasks. (Before: the
 * server's 86 ended the start.) */
static void
test_claim_index_other_keys (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "echo", "{'x': 1}", NULL);
   char expect[256];
   pid_t pid;
   bson_t *index;

   index_create ("tasks", "mtask_claim", "{'key': {'queue': 1}}");
   pid = mt_test_worker_once (W ("--queues", "q"), 60000);
   bson_snprintf (expect, sizeof expect, "index 'mtask_claim' on %s.tasks not made: the index of that name there is", mt_test_db ());
   ASSERT (mt_test_output_contains (pid, expect));
   ASSERT (mt_test_output_contains (pid,
                                    "mtask works without it, only claiming is slower: "
                                    "drop it (db.tasks.dropIndex(\"mtask_claim\")) and start a worker again"));
   ASSERT (mt_test_status_is (&id, "FINISHED"));
   /* The others were made all the same. */
   index = index_find ("tasks", "mtask_worker");
   ASSERT (index);
   bson_destroy (index);
   index = index_find ("locks", "mtask_lock_owner");
   ASSERT (index);
   bson_destroy (index);
}

/* The claim's keys under an operator's name: it serves; the worker starts
 * and says so, and makes no second one. */
static void
test_claim_index_other_name (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "echo", "{'x': 1}", NULL);
   char expect[256];
   bson_t *index;
   pid_t pid;

   index_create ("tasks", "status_1_queue_1_priority_-1_created_1", "{'key': {'status': 1, 'queue': 1, 'priority': -1, 'created': 1}}");
   pid = mt_test_worker_once (W ("--queues", "q"), 60000);
   bson_snprintf (expect,
                  sizeof expect,
                  "index 'mtask_claim' on %s.tasks: the equivalent index 'status_1_queue_1_priority_-1_created_1' "
                  "is there and serves in its place",
                  mt_test_db ());
   ASSERT (mt_test_output_contains (pid, expect));
   ASSERT (mt_test_status_is (&id, "FINISHED"));
   index = index_find ("tasks", "mtask_claim");
   ASSERT (!index);
}

/* mtask_unique in the way (not unique): no start, for nothing would keep
 * a unique_key unique; the message names the index and the fix. */
static void
test_unique_index_in_the_way (void)
{
   char expect[256], *out;
   pid_t pid;

   index_create ("tasks", "mtask_unique", "{'key': {'unique_held': 1}}");
   pid = mt_test_worker (W ("--queues", "q"));
   ASSERT_CMPINT (exit_code (pid, 30000), ==, 1);
   out = mt_test_output (pid);
   bson_snprintf (expect,
                  sizeof expect,
                  "cannot prepare '%s.tasks' (create its indexes): index 'mtask_unique' on %s.tasks not made: "
                  "the index of that name there is",
                  mt_test_db (),
                  mt_test_db ());
   ASSERT_CONTAINS (out, expect);
   ASSERT_CONTAINS (out,
                    "it is needed, for without it nothing keeps one live task per unique_key: "
                    "drop it (db.tasks.dropIndex(\"mtask_unique\"))");
   bson_free (out);
}

/* A sparse mtask_unique from an earlier mtask: accepted, with a word on
 * how to have the partial one; unique keys stay unique. */
static void
test_unique_index_sparse_accepted (void)
{
   bson_t *opts = mt_test_bson ("{'unique_key': 'k'}");
   bson_oid_t first, second;
   bson_error_t error;
   bool created;
   pid_t pid;

   index_create ("tasks", "mtask_unique", "{'key': {'unique_held': 1}, 'unique': true, 'sparse': true}");
   pid = mt_test_worker_once (W ("--queues", "none"), 60000);
   ASSERT (mt_test_output_contains (pid, "index 'mtask_unique' on"));
   ASSERT (mt_test_output_contains (pid,
                                    "is sparse (made by an earlier mtask), not partial on strings; "
                                    "it keeps one live task per unique_key all the same"));
   ASSERT_OR_PRINT (mt_enqueue_ex (mt_test_client (), mt_test_db (), "q", "echo", NULL, opts, &first, &created, &error), error);
   ASSERT (created);
   ASSERT_OR_PRINT (mt_enqueue_ex (mt_test_client (), mt_test_db (), "q", "echo", NULL, opts, &second, &created, &error), error);
   ASSERT (!created);
   ASSERT (bson_oid_equal (&first, &second));
   bson_destroy (opts);
}

/* The index a worker makes is partial on strings, not sparse. */
static void
test_unique_index_partial (void)
{
   bson_t *index;

   mt_test_worker_once (W ("--queues", "q"), 60000);
   index = index_find ("tasks", "mtask_unique");
   ASSERT (index);
   {
      bson_iter_t iter;

      ASSERT (bson_iter_init_find (&iter, index, "unique") && bson_iter_as_bool (&iter));
   }
   ASSERT (!mt_test_has (index, "sparse"));
   ASSERT_CMPSTR (mt_test_str (index, "partialFilterExpression.unique_held.$type"), "string");
   bson_destroy (index);
}

/* An application enqueuing with unique keys: createIndexes once per
 * process and database, not before every insert (the server's command
 * log counts them). */
static void
test_unique_enqueue_creates_index_once (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (STARTUP_APP);
   bson_error_t error;
   bson_t *log;

   mt_test_command_log_clear ();
   for (int i = 0; i < 4; i++) {
      char opts_json[64];
      bson_t *opts;
      bson_oid_t id;
      bool created;

      bson_snprintf (opts_json, sizeof opts_json, "{'unique_key': 'key-%d'}", i % 3);
      opts = mt_test_bson (opts_json);
      ASSERT_OR_PRINT (mt_enqueue_ex (client, mt_test_db (), "q", "echo", NULL, opts, &id, &created, &error), error);
      ASSERT (created == (i < 3));
      bson_destroy (opts);
   }
   log = mt_test_command_log (STARTUP_APP);
   ASSERT_CMPINT (mt_test_command_log_count (log, "createIndexes"), ==, 1);
   ASSERT_CMPINT (mt_test_command_log_count (log, "insert"), ==, 4);
   ASSERT_CMPINT (mt_test_count ("{'unique_held': {'$exists': true}}"), ==, 3);
   bson_destroy (log);
   mongoc_client_destroy (client);
}

/* ---- item 12: sharded collections ------------------------------------------ */

static void
config_entry_drop (void *data)
{
   char *ns = data;
   mongoc_collection_t *collections = mongoc_client_get_collection (mt_test_client (), "config", "collections");
   bson_t *filter = BCON_NEW ("_id", BCON_UTF8 (ns));
   bson_error_t error;
   bool ok = mongoc_collection_delete_one (collections, filter, NULL, NULL, &error);

   bson_destroy (filter);
   mongoc_collection_destroy (collections);
   bson_free (ns);
   ASSERT_OR_PRINT (ok, error);
}

/* An entry of config.collections, as a sharded cluster keeps for DB.`name`
 * sharded on `key_json`; removed when the test ends. */
static void
config_entry (const char *name, const char *key_json, bool dropped)
{
   char *ns = bson_strdup_printf ("%s.%s", mt_test_db (), name);
   mongoc_collection_t *collections = mongoc_client_get_collection (mt_test_client (), "config", "collections");
   bson_t *key = mt_test_bson (key_json);
   bson_t *doc = BCON_NEW ("_id", BCON_UTF8 (ns), "key", BCON_DOCUMENT (key), "unique", BCON_BOOL (false), "dropped", BCON_BOOL (dropped));
   bson_error_t error;
   bool ok = mongoc_collection_insert_one (collections, doc, NULL, NULL, &error);

   bson_destroy (doc);
   bson_destroy (key);
   mongoc_collection_destroy (collections);
   ASSERT_OR_PRINT (ok, error);
   mt_test_defer (config_entry_drop, ns);
}

static void
test_sharded_tasks_refused (void)
{
   char expect[256], *out;
   pid_t pid;

   config_entry ("tasks", "{'queue': 1}", false);
   pid = mt_test_worker (W ("--queues", "q"));
   ASSERT_CMPINT (exit_code (pid, 30000), ==, 1);
   out = mt_test_output (pid);
   bson_snprintf (expect, sizeof expect, "'%s.tasks' is sharded (shard key { \"queue\" : 1 }): mtask needs", mt_test_db ());
   ASSERT_CONTAINS (out, expect);
   ASSERT_CONTAINS (out, "unsharded");
   ASSERT (!strstr (out, "' started: db '"));
   bson_free (out);
   /* Refused before it wrote anything. */
   ASSERT_CMPINT (mt_test_count_in ("workers", "{}"), ==, 0);
}

static void
test_sharded_slots_refused (void)
{
   char expect[256];
   pid_t pid;

   config_entry ("slots", "{'_id': 'hashed'}", false);
   pid = mt_test_worker (W ("--queues", "q"));
   ASSERT_CMPINT (exit_code (pid, 30000), ==, 1);
   bson_snprintf (expect, sizeof expect, "'%s.slots' is sharded", mt_test_db ());
   ASSERT (mt_test_output_contains (pid, expect));
}

/* locks sharded on other than _id, group_stages on other than group: a
 * warning each, and the worker runs; a dropped tasks entry is no refusal,
 * nor are locks on _id. */
static void
test_sharded_others_warned (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "echo", "{'x': 1}", NULL);
   char expect[256];
   pid_t pid;

   config_entry ("tasks", "{'queue': 1}", true);
   config_entry ("locks", "{'account': 1}", false);
   config_entry ("group_stages", "{'number': 1}", false);
   pid = mt_test_worker_once (W ("--queues", "q"), 60000);
   bson_snprintf (expect, sizeof expect, "'%s.locks' is sharded on { \"account\" : 1 }: account locks are found by _id", mt_test_db ());
   ASSERT (mt_test_output_contains (pid, expect));
   bson_snprintf (expect, sizeof expect, "'%s.group_stages' is sharded on { \"number\" : 1 }", mt_test_db ());
   ASSERT (mt_test_output_contains (pid, expect));
   ASSERT (mt_test_status_is (&id, "FINISHED"));
}

static void
test_sharded_locks_on_id_quiet (void)
{
   pid_t pid;

   config_entry ("locks", "{'_id': 1}", false);
   config_entry ("group_stages", "{'group': 1}", false);
   pid = mt_test_worker_once (W ("--queues", "q"), 60000);
   ASSERT (!mt_test_output_contains (pid, "is sharded"));
}

/* A user who may not read config (13, Unauthorized): the worker says at
 * debug level that it could not check, and runs. */
static void
test_config_unreadable (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "echo", "{'x': 1}", NULL);
   char expect[256];
   pid_t pid;

   mt_test_failpoint_set ("{'times': 1}",
                          "{'failCommands': ['find'], 'errorCode': 13, 'namespace': 'config.collections', "
                          "'appName': 'mtask-worker'}");
   pid = mt_test_worker_once (W ("--queues", "q", "--log-level", "debug"), 60000);
   mt_test_failpoint_off ();
   bson_snprintf (expect,
                  sizeof expect,
                  "debug   not checking whether '%s.tasks' or '%s.slots' is sharded (they must not be): "
                  "cannot read config.collections",
                  mt_test_db (),
                  mt_test_db ());
   ASSERT (mt_test_output_contains (pid, expect));
   ASSERT (mt_test_status_is (&id, "FINISHED"));
}

int
main (int argc, char **argv)
{
   mt_test_add ("/startup/id/live_refused", test_live_id_refused);
   mt_test_add ("/startup/id/stopped_starts", test_stopped_id_starts);
   mt_test_add ("/startup/id/other_host_by_its_lease", test_other_host_by_its_lease);
   mt_test_add ("/startup/id/killed_restarts_at_once", test_killed_restarts_at_once);
   mt_test_add ("/startup/id/paused_taken_over", test_paused_taken_over);
   mt_test_add ("/startup/id/replace", test_replace);
   mt_test_add ("/startup/id/simultaneous_start", test_simultaneous_start);
   mt_test_add ("/startup/indexes/claim_other_keys", test_claim_index_other_keys);
   mt_test_add ("/startup/indexes/claim_other_name", test_claim_index_other_name);
   mt_test_add ("/startup/indexes/unique_in_the_way", test_unique_index_in_the_way);
   mt_test_add ("/startup/indexes/unique_sparse_accepted", test_unique_index_sparse_accepted);
   mt_test_add ("/startup/indexes/unique_partial", test_unique_index_partial);
   mt_test_add ("/startup/indexes/unique_enqueue_once", test_unique_enqueue_creates_index_once);
   mt_test_add ("/startup/sharding/tasks_refused", test_sharded_tasks_refused);
   mt_test_add ("/startup/sharding/slots_refused", test_sharded_slots_refused);
   mt_test_add ("/startup/sharding/others_warned", test_sharded_others_warned);
   mt_test_add ("/startup/sharding/locks_on_id_quiet", test_sharded_locks_on_id_quiet);
   mt_test_add ("/startup/sharding/config_unreadable", test_config_unreadable);
   return mt_test_main (argc, argv);
}
