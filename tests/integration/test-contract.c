/* Promises of the product (SPEC.md) that no other test checked, each
 * against a real server and real workers, each asserting what a user sees:
 * the documents in MongoDB, the worker's exit code and its log.
 *
 *   /contract/claim       FIFO by `created` within a priority, not by _id
 *   /contract/plugins     a path-like `type` never loads a file
 *   /contract/groups      FAILED and CANCELLED tasks end their stage; a
 *                         crash before the stage count is repaired by upkeep
 *   /contract/schedule    cron in a time zone at claim time; repeat_until
 *   /contract/slots       a slot timeout with attempts left is retried
 *   /contract/locks       locks go after a child crash, a child timeout and
 *                         a lease take-back
 *   /contract/fields      mistyped fields fail with the field named */
#include "mt-test.h"
#include "mtask-private.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>


/* A CREATED task of queue 'q', due now, with the fields of `extra_json`. */
static bson_oid_t
insert_task (const char *type, const char *extra_json)
{
   bson_oid_t id;
   bson_t *doc;

   bson_oid_init (&id, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&id), "queue", "q", "type", type, "status", "CREATED", "priority", BCON_INT32 (0),
                   "attempts", BCON_INT32 (0), "created", BCON_DATE_TIME (mt_now_ms ()), "delayed", BCON_NULL);
   if (extra_json) {
      bson_t *extra = mt_test_bson (extra_json);

      bson_concat (doc, extra);
      bson_destroy (extra);
   }
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   return id;
}

static int64_t
array_length (const bson_t *doc, const char *key)
{
   bson_iter_t iter, item;
   int64_t n = 0;

   ASSERT (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_ARRAY (&iter) && bson_iter_recurse (&iter, &item));
   while (bson_iter_next (&item)) {
      n++;
   }
   return n;
}

/* ---- FIFO by `created` --------------------------------------------------- */

static void
test_fifo_by_created (void)
{
   /* Six tasks of one priority whose _ids ascend with their index, whose
    * `created` order is another (rank[i]), inserted in a third order; and
    * one of a higher priority, the newest and the largest _id, which goes
    * first. Each records its expected place as its tag. */
   static const int rank[] = {3, 0, 5, 1, 4, 2};
   static const int inserted[] = {4, 1, 5, 0, 2, 3};
   int64_t base = mt_now_ms () - 3600 * 1000;
   mongoc_collection_t *executions;
   mongoc_cursor_t *cursor;
   const bson_t *found;
   bson_t *all, *opts, *doc;
   int64_t expected = 0;
   pid_t pid;

   for (int k = 0; k < 7; k++) {
      int i = k < 6 ? inserted[k] : 6;
      int place = i < 6 ? rank[i] + 1 : 0;
      char hex[25];
      bson_oid_t id;

      bson_snprintf (hex, sizeof hex, "6500000000000000000000%02x", i);
      bson_oid_init_from_string (&id, hex);
      doc = BCON_NEW ("_id", BCON_OID (&id), "queue", "q", "type", "record", "status", "CREATED", "priority",
                      BCON_INT32 (i < 6 ? 0 : 1), "attempts", BCON_INT32 (0), "created",
                      BCON_DATE_TIME (base + (i < 6 ? rank[i] : 10) * 1000), "delayed", BCON_NULL, "params", "{", "ms",
                      BCON_INT32 (5), "tag", BCON_INT32 (place), "}");
      mt_test_insert ("tasks", doc);
      bson_destroy (doc);
   }
   pid = mt_test_worker (W ("--queues", "q", "--concurrency", "1", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{'status': 'FINISHED'}"), ==, 7);

   /* One thread: each run started at least 5 ms after the one before. */
   executions = mt_test_collection ("executions");
   all = mt_test_bson ("{}");
   opts = BCON_NEW ("sort", "{", "started", BCON_INT32 (1), "}");
   cursor = mongoc_collection_find_with_opts (executions, all, opts, NULL);
   while (mongoc_cursor_next (cursor, &found)) {
      ASSERT_CMPINT (mt_test_int (found, "tag"), ==, expected);
      expected++;
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (opts);
   bson_destroy (all);
   mongoc_collection_destroy (executions);
   ASSERT_CMPINT (expected, ==, 7);
}

/* ---- a path-like type loads nothing ------------------------------------- */

static void
copy_file (const char *from, const char *to)
{
   char buf[65536];
   int in = open (from, O_RDONLY | O_CLOEXEC), out;
   ssize_t n;

   ASSERT (in >= 0);
   out = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
   ASSERT (out >= 0);
   while ((n = read (in, buf, sizeof buf)) > 0) {
      ASSERT (write (out, buf, (size_t) n) == n);
   }
   close (in);
   close (out);
}

static bool
exists (const char *path)
{
   struct stat st;

   return stat (path, &st) == 0;
}

static void
test_path_type_never_loaded (void)
{
   /* A shared object whose constructor leaves a marker file is put at
    * every path these types could name: from the worker's directory, from
    * an extra plugin directory, absolute, on LD_LIBRARY_PATH. */
   char dir[] = "/tmp/mtask-contract-XXXXXX";
   char *marker, *marker_so, *cwd_dir, *plugin_dir, *control_dir, *absolute, *old_ld, *files[8];
   char cwd_before[4096];
   const char *types[4];
   bson_oid_t ids[4], sentinel;
   size_t n_files = 0;
   bool loaded;
   pid_t pid;
   int rc;

   ASSERT (mkdtemp (dir));
   marker_so = bson_strdup_printf ("%s/loadmark.marker", mt_test_env ("MTASK_TEST_PLUGIN_DIR"));
   marker = bson_strdup_printf ("%s/loaded", dir);
   cwd_dir = bson_strdup_printf ("%s/cwd", dir);
   plugin_dir = bson_strdup_printf ("%s/plugins", dir);
   control_dir = bson_strdup_printf ("%s/control", dir);
   absolute = bson_strdup_printf ("%s/x.so", dir);
   ASSERT (mkdir (cwd_dir, 0700) == 0 && mkdir (plugin_dir, 0700) == 0 && mkdir (control_dir, 0700) == 0);
   files[n_files++] = bson_strdup_printf ("%s/x", dir);       /* ../x from cwd/ or plugins/ */
   files[n_files++] = bson_strdup_printf ("%s/x.so", dir);    /* the absolute type; ../x + .so */
   files[n_files++] = bson_strdup_printf ("%s/x.so", cwd_dir); /* x.so from cwd/ and LD_LIBRARY_PATH */
   files[n_files++] = bson_strdup_printf ("%s/probe", cwd_dir);
   files[n_files++] = bson_strdup_printf ("%s/probe.so", cwd_dir);
   files[n_files++] = bson_strdup_printf ("%s/m.so", control_dir);
   for (size_t i = 0; i < n_files; i++) {
      copy_file (marker_so, files[i]);
   }
   setenv ("MTASK_LOADMARK", marker, 1);

   /* The marker works: a worker given it as a plugin loads it, leaves the
    * marker, and refuses to start (it is no plugin). */
   pid = mt_test_worker (W ("--queues", "q", "--plugins", control_dir, "--once"));
   rc = mt_test_exit_code (mt_test_wait_exit (pid, 30000));
   ASSERT_CMPINT (rc, ==, 2);
   ASSERT (mt_test_output_contains (pid, "/m.so'")); /* named by its full path */
   ASSERT (exists (marker));
   ASSERT (unlink (marker) == 0);

   types[0] = "../x";
   types[1] = absolute;
   types[2] = "x.so";
   types[3] = "./probe";
   for (int i = 0; i < 4; i++) {
      ids[i] = insert_task (types[i], "{'params': {}}");
   }
   sentinel = insert_task ("echo", "{'params': {'ran': true}}");

   /* In cwd/, with cwd/ on the library path and an extra plugin directory. */
   ASSERT (getcwd (cwd_before, sizeof cwd_before));
   old_ld = getenv ("LD_LIBRARY_PATH") ? bson_strdup (getenv ("LD_LIBRARY_PATH")) : NULL;
   {
      char *ld = bson_strdup_printf ("%s%s%s", cwd_dir, old_ld ? ":" : "", old_ld ? old_ld : "");

      setenv ("LD_LIBRARY_PATH", ld, 1);
      bson_free (ld);
   }
   ASSERT (chdir (cwd_dir) == 0);
   pid = mt_test_worker (W ("--queues", "q", "--plugins", plugin_dir, "--once"));
   rc = chdir (cwd_before);
   if (old_ld) {
      setenv ("LD_LIBRARY_PATH", old_ld, 1);
   } else {
      unsetenv ("LD_LIBRARY_PATH");
   }
   unsetenv ("MTASK_LOADMARK");
   ASSERT (rc == 0);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   loaded = exists (marker);
   unlink (marker);
   for (size_t i = 0; i < n_files; i++) {
      unlink (files[i]);
      bson_free (files[i]);
   }
   rmdir (cwd_dir);
   rmdir (plugin_dir);
   rmdir (control_dir);
   rmdir (dir);

   /* It loaded nothing a task named, and served the queue: no plugin
    * serves those types, so no worker claims them. */
   if (loaded) {
      mt_test_fail (__FILE__, __LINE__, "a file named by a task type was loaded (%s was written)", marker);
   }
   ASSERT (mt_test_status_is (&sentinel, "FINISHED"));
   for (int i = 0; i < 4; i++) {
      bson_t *doc = mt_test_task (&ids[i]);

      if (strcmp (mt_test_str (doc, "status"), "CREATED") != 0) {
         mt_test_fail (__FILE__, __LINE__, "task of type '%s' is %s", types[i], mt_test_str (doc, "status"));
      }
      ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 0);
      ASSERT (!mt_test_has (doc, "result"));
      bson_destroy (doc);
   }

   bson_free (old_ld);
   bson_free (absolute);
   bson_free (control_dir);
   bson_free (plugin_dir);
   bson_free (cwd_dir);
   bson_free (marker);
   bson_free (marker_so);
}

/* ---- staged groups ------------------------------------------------------- */

static void
initiate (const bson_oid_t *group)
{
   bson_error_t error;

   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), group, &error), error);
}

static bool
group_complete (const bson_oid_t *group)
{
   char hex[25];

   bson_oid_to_string (group, hex);
   return mt_test_count_in ("groups", "{'_id': {'$oid': '%s'}, 'status': 'complete'}", hex) == 1;
}

static bson_t *
stage_doc (const bson_oid_t *group, int32_t number)
{
   char hex[25];

   bson_oid_to_string (group, hex);
   return mt_test_find_one ("group_stages", "{'group': {'$oid': '%s'}, 'number': %d}", hex, (int) number);
}

/* The stage is complete, every one of its `total` tasks counted once
 * (each carries the marker of its count). */
static void
assert_stage_complete (const bson_oid_t *group, int32_t number, int64_t total)
{
   bson_t *stage = stage_doc (group, number);
   char hex[25];

   bson_oid_to_string (group, hex);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "complete");
   ASSERT_CMPINT (mt_test_int (stage, "total"), ==, total);
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, total);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'group': {'$oid': '%s'}, 'stage': %d, 'stage_counted': true}", hex, (int) number), ==, total);
   bson_destroy (stage);
}

/* Stage 2's one task ran once, after stage 1 ended. */
static void
assert_next_stage_ran (const bson_oid_t *group, const bson_oid_t *next)
{
   bson_t *first = stage_doc (group, 1), *second = stage_doc (group, 2), *doc = mt_test_task (next);

   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPINT (mt_test_date (second, "started"), >=, mt_test_date (first, "completed"));
   ASSERT_CMPINT (mt_test_count_in ("executions", "{'tag': 2}"), ==, 1);
   bson_destroy (doc);
   bson_destroy (second);
   bson_destroy (first);
}

static void
test_group_failed_completes_stage (void)
{
   /* Stage 1: a task failing both of its two attempts, and one that
    * finishes. The stage waits for the retry, then completes. */
   bson_oid_t group = mt_test_group_new ("a failure", 3600), failing, next;
   pid_t pid;
   bson_t *doc;

   failing = mt_test_group_add (&group, 1, "fail", "{'message': 'no luck'}", "{'max_attempts': 2}");
   mt_test_group_add (&group, 1, "echo", "{}", NULL);
   next = mt_test_group_add (&group, 2, "record", "{'tag': 2}", NULL);
   pid = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "2", "--retry-backoff", "0.2", "--lease", "3", "--poll-interval", "0.05"));
   initiate (&group);
   WAIT_UNTIL (group_complete (&group), 30000);
   mt_test_worker_stop (pid);

   doc = mt_test_task (&failing);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "no luck");
   ASSERT_CMPINT (array_length (doc, "errors"), ==, 2);
   {
      /* Its retry held the stage open: the next stage began after it. */
      bson_t *after = mt_test_task (&next);

      ASSERT_CMPINT (mt_test_date (after, "started"), >=, mt_test_date (doc, "finished"));
      bson_destroy (after);
   }
   bson_destroy (doc);
   assert_stage_complete (&group, 1, 2);
   assert_stage_complete (&group, 2, 1);
   assert_next_stage_ran (&group, &next);
}

static void
test_group_cancelled_completes_stage (void)
{
   /* A task its plugin ends CANCELLED. */
   bson_oid_t group = mt_test_group_new ("a cancel", 3600), cancelled, next;
   pid_t pid;
   bson_t *doc;

   cancelled = mt_test_group_add (&group, 1, "probe", "{'status': 'CANCELLED'}", NULL);
   next = mt_test_group_add (&group, 2, "record", "{'tag': 2}", NULL);
   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "3", "--poll-interval", "0.05"));
   initiate (&group);
   WAIT_UNTIL (group_complete (&group), 30000);
   mt_test_worker_stop (pid);

   doc = mt_test_task (&cancelled);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CANCELLED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   bson_destroy (doc);
   assert_stage_complete (&group, 1, 1);
   assert_next_stage_ran (&group, &next);
}

static void
test_group_stopped_completes_stage (void)
{
   /* A task stopped from outside (mt_slot_stop, `mtaskctl slot stop`):
    * CANCELLED by the stop, not by its worker, whose outcome is fenced
    * out; the upkeep tick counts it. */
   bson_oid_t group = mt_test_group_new ("a stop", 3600), stopped, next;
   bson_error_t error;
   pid_t pid;

   ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "gp", 1, 0, &error), error);
   stopped = mt_test_group_add (&group, 1, "slotprobe", "{'hang_ms': 60000}", NULL);
   mt_test_task_set (&stopped, "{'pool': 'gp'}");
   next = mt_test_group_add (&group, 2, "record", "{'tag': 2}", NULL);
   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   initiate (&group);
   {
      char hex[25], *json;

      bson_oid_to_string (&stopped, hex);
      json = bson_strdup_printf ("{'_id': {'$oid': '%s'}, 'status': 'WORK_IN_PROGRESS', 'slot': {'$exists': true}}", hex);
      WAIT_UNTIL (mt_test_count (json) == 1, 20000);
      bson_free (json);
   }
   ASSERT_OR_PRINT (mt_slot_stop (mt_test_client (), mt_test_db (), &stopped, &error), error);
   WAIT_UNTIL (group_complete (&group), 30000);
   WAIT_UNTIL (mt_test_output_contains (pid, "process() saw should_stop"), 20000);
   mt_test_worker_stop (pid);

   ASSERT (mt_test_status_is (&stopped, "CANCELLED"));
   assert_stage_complete (&group, 1, 1);
   assert_next_stage_ran (&group, &next);
}

static void
test_group_crash_before_count (void)
{
   /* The worker dies between the task's outcome and its stage count
    * (failpoint outcome-written): another worker's upkeep tick counts it,
    * once, and the next stage starts. */
   bson_oid_t group = mt_test_group_new ("a crash", 3600), first, next;
   bson_t *stage, *doc;
   pid_t pid;

   mt_test_require_failpoints ();
   first = mt_test_group_add (&group, 1, "record", "{'tag': 1}", NULL);
   next = mt_test_group_add (&group, 2, "record", "{'tag': 2}", NULL);
   initiate (&group);
   setenv ("MTASK_FAILPOINT", "outcome-written", 1);
   pid = mt_test_worker (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   unsetenv ("MTASK_FAILPOINT");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 128 + SIGKILL);
   ASSERT (mt_test_output_contains (pid, "failpoint 'outcome-written'"));

   /* Ended, not counted: the stage holds, the next waits. */
   doc = mt_test_task (&first);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   bson_destroy (doc);
   stage = stage_doc (&group, 1);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "running");
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 0);
   bson_destroy (stage);
   ASSERT (mt_test_status_is (&next, "WAITING"));

   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   WAIT_UNTIL (group_complete (&group), 30000);
   mt_test_worker_stop (pid);
   assert_stage_complete (&group, 1, 1);
   assert_stage_complete (&group, 2, 1);
   assert_next_stage_ran (&group, &next);
   ASSERT_CMPINT (mt_test_count_in ("executions", "{'tag': 1}"), ==, 1);
}

/* ---- schedules ------------------------------------------------------------ */

static bson_oid_t
enqueue_opts (const char *type, bson_t *opts)
{
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_enqueue (mt_test_client (), mt_test_db (), "q", type, NULL, opts, &id, &error);

   bson_destroy (opts);
   ASSERT_OR_PRINT (ok, error);
   return id;
}

static int64_t
count_series (const bson_oid_t *series)
{
   char hex[25];

   bson_oid_to_string (series, hex);
   return mt_test_count_in ("tasks", "{'series': {'$oid': '%s'}}", hex);
}

/* The run of the series other than `first`. */
static bson_t *
successor_of (const bson_oid_t *first)
{
   char hex[25];

   bson_oid_to_string (first, hex);
   return mt_test_find_one ("tasks", "{'series': {'$oid': '%s'}, '_id': {'$ne': {'$oid': '%s'}}}", hex, hex);
}

static void
test_cron_timezone_at_claim (void)
{
   /* Minute 30 of every hour in India (+05:30) is minute 0 of every hour
    * in UTC; read as UTC it would be minute 30. The first run is due now:
    * its successor is planned by the worker that ran it, from the claimed
    * document. */
   int64_t now = mt_now_ms (), at;
   bson_oid_t first = enqueue_opts ("echo", BCON_NEW ("cron", "30 */1 * * *", "timezone", "Asia/Kolkata", "run_at", BCON_DATE_TIME (now)));
   pid_t pid = mt_test_worker_ready (W ("--queues", "q", "--poll-interval", "0.05"));
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&first, "FINISHED") && count_series (&first) == 2, 30000);
   mt_test_worker_stop (pid);

   /* The next such minute after the run ended (its end is stamped a
    * moment after the successor is planned). */
   doc = mt_test_task (&first);
   at = mt_test_date (doc, "next.at");
   ASSERT_CMPINT (at % (3600 * 1000), ==, 0);
   ASSERT_CMPINT (at, >, now);
   ASSERT_CMPINT (at, <=, mt_test_date (doc, "finished") + 3600 * 1000);
   bson_destroy (doc);
   doc = successor_of (&first);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_date (doc, "scheduled"), ==, at);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, at);
   ASSERT_CMPSTR (mt_test_str (doc, "cron"), "30 */1 * * *");
   ASSERT_CMPSTR (mt_test_str (doc, "timezone"), "Asia/Kolkata");
   bson_destroy (doc);
}

static void
test_cron_repeat_until_ends_series (void)
{
   /* Every minute from S (a minute two ahead) until S + 90 s: runs at S
    * and S + 60 s, none at S + 120 s. A run's time comes early here by
    * clearing its `delayed` (its `scheduled`, which the series counts
    * from, stays). */
   int64_t s = (mt_now_ms () / 60000 + 2) * 60000, until = s + 90000, ticks;
   bson_oid_t first = enqueue_opts ("echo", BCON_NEW ("cron", "* * * * *", "run_at", BCON_DATE_TIME (s), "repeat_until", BCON_DATE_TIME (until)));
   bson_oid_t second;
   bson_iter_t iter;
   bson_t *doc;
   pid_t pid;

   mt_test_task_set (&first, "{'delayed': null}");
   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&first, "FINISHED") && count_series (&first) == 2, 30000);
   doc = mt_test_task (&first);
   ASSERT_CMPINT (mt_test_date (doc, "next.at"), ==, s + 60000);
   bson_destroy (doc);
   doc = successor_of (&first);
   ASSERT_CMPINT (mt_test_date (doc, "scheduled"), ==, s + 60000);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, s + 60000);
   ASSERT_CMPINT (mt_test_date (doc, "repeat_until"), ==, until);
   ASSERT (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter));
   bson_oid_copy (bson_iter_oid (&iter), &second);
   bson_destroy (doc);

   mt_test_task_set (&second, "{'delayed': null}");
   WAIT_UNTIL (mt_test_status_is (&second, "FINISHED"), 30000);
   /* Two upkeep ticks after its end: the tick plans nothing either. */
   ticks = mt_test_upkeep_ticks ();
   WAIT_UNTIL (mt_test_upkeep_ticks () >= ticks + 2, 20000);
   mt_test_worker_stop (pid);

   doc = mt_test_task (&second);
   ASSERT (mt_test_has (doc, "next") && mt_test_is_null (doc, "next"));
   bson_destroy (doc);
   ASSERT_CMPINT (count_series (&first), ==, 2);
   ASSERT_CMPINT (mt_test_count ("{'status': {'$in': ['CREATED', 'WAITING', 'WORK_IN_PROGRESS']}}"), ==, 0);
}

/* ---- slots --------------------------------------------------------------- */

static void
test_slot_timeout_retried (void)
{
   /* Attempt 1 of 3 sends no keepalive: its slot is taken back after the
    * pool's timeout, the task goes back to CREATED and attempt 2 runs. */
   bson_error_t error;
   bson_oid_t id;
   pid_t pid;
   bson_t *doc;

   /* Two seconds: attempt 2 needs no keepalive to finish in time. */
   ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "strict", 1, 2.0, &error), error);
   id = insert_task ("hangfirst", "{'pool': 'strict', 'max_attempts': 3, 'params': {}}");
   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED") || mt_test_status_is (&id, "FAILED"), 30000);
   ASSERT (mt_test_status_is (&id, "FINISHED"));
   WAIT_UNTIL (mt_test_count_in ("slots", "{'pool': 'strict', 'task': null}") == 1, 10000);
   mt_test_worker_stop (pid);

   ASSERT (mt_test_output_contains (pid, "its slot timed out and was taken back"));
   ASSERT (mt_test_output_contains (pid, "hangfirst: attempt 1 told to stop"));
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "result.attempt"), ==, 2);
   ASSERT_CMPINT (array_length (doc, "errors"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "errors.0.attempt"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "errors.0.code"), ==, MT_TASK_ERROR_TIMEOUT);
   ASSERT_CONTAINS (mt_test_str (doc, "errors.0.message"), "no keepalive for 2 s");
   bson_destroy (doc);
}

/* ---- locks --------------------------------------------------------------- */

static int64_t
locks_held (void)
{
   return mt_test_count_in ("locks", "{'_id': {'$in': ['acct-1', 'acct-2']}}");
}

/* None of the two accounts is locked, and a task of a worker that is
 * started next takes both. */
static void
assert_accounts_free (void)
{
   bson_oid_t id;
   pid_t pid;
   bson_t *doc;

   ASSERT_CMPINT (locks_held (), ==, 0);
   id = mt_test_enqueue ("q", "probe", "{'lock': ['acct-1', 'acct-2']}", NULL);
   pid = mt_test_worker (W ("--queues", "q", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT (!mt_test_has (doc, "result.lock_error"));
   ASSERT_CMPSTR (mt_test_str (doc, "result.held.0"), "acct-1");
   ASSERT_CMPSTR (mt_test_str (doc, "result.held.1"), "acct-2");
   bson_destroy (doc);
   ASSERT_CMPINT (locks_held (), ==, 0);
}

static void
test_locks_after_child_crash (void)
{
   bson_oid_t id = insert_task ("crash", "{'accounts': ['acct-1', 'acct-2'], 'max_attempts': 1, 'params': {}}");
   pid_t pid;
   bson_t *doc;

   pid = mt_test_worker_crashing (W ("--queues", "q", "--isolate", "fork", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_CRASHED);
   bson_destroy (doc);
   assert_accounts_free ();
}

static void
test_locks_after_child_timeout (void)
{
   bson_oid_t id = insert_task ("sleep", "{'accounts': ['acct-1', 'acct-2'], 'timeout': 5, 'max_attempts': 1, 'params': {'seconds': 60}}");
   pid_t pid = mt_test_worker (W ("--queues", "q", "--isolate", "fork", "--once"));
   bson_t *doc;

   /* Held while it runs (for the five seconds of its timeout)... */
   WAIT_UNTIL (locks_held () == 2, 20000);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_TIMEOUT);
   bson_destroy (doc);
   /* ...and not after it was killed. */
   assert_accounts_free ();
}

static void
test_locks_after_lease_take_back (void)
{
   bson_oid_t id = insert_task ("probe", "{'accounts': ['acct-1', 'acct-2'], 'max_attempts': 1, 'params': {'sleep_ms': 60000}}");
   pid_t lost, heir;
   bson_t *doc;

   lost = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-LOST", "--lease", "2", "--poll-interval", "0.05"));
   WAIT_UNTIL (locks_held () == 2 && mt_test_status_is (&id, "WORK_IN_PROGRESS"), 20000);
   kill (lost, SIGKILL);
   mt_test_wait_exit (lost, 10000);
   ASSERT_CMPINT (locks_held (), ==, 2);

   heir = mt_test_worker_ready (W ("--queues", "q", "--lease", "2", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 30000);
   /* The take-back writes the task, then drops its locks. */
   WAIT_UNTIL (locks_held () == 0, 10000);
   mt_test_worker_stop (heir);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_WORKER_LOST);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "worker 'W-LOST' was lost");
   bson_destroy (doc);
   assert_accounts_free ();
}

/* ---- mistyped fields ------------------------------------------------------ */

static void
test_mistyped_fields_fail_named (void)
{
   static const struct {
      const char *field;
      const char *extra;
   } bad[] = {
      {"pool", "{'pool': 7}"},
      {"repeat", "{'repeat': 'hourly'}"},
      {"cron", "{'cron': 5}"},
      {"cron", "{'cron': '61 * * * *'}"},
      {"timezone", "{'cron': '0 3 * * *', 'timezone': 330}"},
      {"timezone", "{'cron': '0 3 * * *', 'timezone': 'Mars/Olympus'}"},
      {"repeat_until", "{'repeat': 60, 'repeat_until': 'next year'}"},
      {"series", "{'repeat': 60, 'series': 'abc'}"},
      {"unique_key", "{'unique_key': 42}"},
   };
   const size_t n = sizeof bad / sizeof bad[0];
   bson_oid_t ids[sizeof bad / sizeof bad[0]], good;
   pid_t pid;

   for (size_t i = 0; i < n; i++) {
      ids[i] = insert_task ("echo", bad[i].extra);
   }
   good = insert_task ("echo", "{'params': {'fine': 1}}");
   pid = mt_test_worker (W ("--queues", "q", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);

   for (size_t i = 0; i < n; i++) {
      bson_t *doc = mt_test_task (&ids[i]);
      char *named = bson_strdup_printf ("field '%s'", bad[i].field);
      char hex[25], *logged;

      if (strcmp (mt_test_str (doc, "status"), "FAILED") != 0) {
         mt_test_fail (__FILE__, __LINE__, "task with %s is %s", bad[i].extra, mt_test_str (doc, "status"));
      }
      ASSERT_CMPINT (mt_test_int (doc, "error.domain"), ==, MT_ERROR_TASK);
      ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_MALFORMED);
      ASSERT_CONTAINS (mt_test_str (doc, "error.message"), named);
      ASSERT (!mt_test_has (doc, "result"));
      /* The log says it too, with the task's id. */
      bson_oid_to_string (&ids[i], hex);
      logged = bson_strdup_printf ("task %s: malformed task: %s", hex, named);
      ASSERT (mt_test_output_contains (pid, logged));
      bson_free (logged);
      bson_free (named);
      bson_destroy (doc);
   }
   ASSERT (mt_test_status_is (&good, "FINISHED"));
}

int
main (int argc, char **argv)
{
   mt_test_add ("/contract/claim/fifo_by_created_not_id", test_fifo_by_created);
   mt_test_add ("/contract/plugins/path_type_never_loaded", test_path_type_never_loaded);
   mt_test_add ("/contract/groups/failed_no_retry_left_completes_stage", test_group_failed_completes_stage);
   mt_test_add ("/contract/groups/cancelled_by_plugin_completes_stage", test_group_cancelled_completes_stage);
   mt_test_add ("/contract/groups/stopped_from_outside_completes_stage", test_group_stopped_completes_stage);
   mt_test_add ("/contract/groups/crash_before_count_repaired_by_upkeep", test_group_crash_before_count);
   mt_test_add ("/contract/schedule/cron_timezone_at_claim", test_cron_timezone_at_claim);
   mt_test_add ("/contract/schedule/cron_repeat_until_ends_series", test_cron_repeat_until_ends_series);
   mt_test_add ("/contract/slots/timeout_with_attempts_left_retried", test_slot_timeout_retried);
   mt_test_add ("/contract/locks/released_after_child_crash", test_locks_after_child_crash);
   mt_test_add ("/contract/locks/released_after_child_timeout", test_locks_after_child_timeout);
   mt_test_add ("/contract/locks/released_after_lease_take_back", test_locks_after_lease_take_back);
   mt_test_add ("/contract/fields/mistyped_fail_named", test_mistyped_fields_fail_named);
   return mt_test_main (argc, argv);
}
