/* Concurrency slots (seed 002) against a real server and real workers:
 * the limit across workers, keepalive timeouts and their callbacks, stop,
 * a killed holder, and resizing. */
#include "mt-test.h"


/* Whether the task holds a slot (it is WORK_IN_PROGRESS a moment before). */
static bool
holds_slot (const bson_oid_t *id)
{
   char hex[25], *json;
   int64_t n;

   bson_oid_to_string (id, hex);
   json = bson_strdup_printf ("{'_id': {'$oid': '%s'}, 'status': 'WORK_IN_PROGRESS', 'slot': {'$exists': true}}", hex);
   n = mt_test_count (json);
   bson_free (json);
   return n == 1;
}

static void
pool (const char *name, int32_t size, double timeout)
{
   bson_error_t error;

   ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), name, size, timeout, &error), error);
}

static bson_oid_t
in_pool (const char *pool_name, const char *type, const char *params_json)
{
   bson_t *params = mt_test_bson (params_json);
   bson_oid_t id;
   bson_t *doc;

   bson_oid_init (&id, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&id), "queue", "q", "type", type, "status", "CREATED", "priority", BCON_INT32 (0),
                   "attempts", BCON_INT32 (0), "created", BCON_DATE_TIME (mt_test_count ("{}")), "pool", pool_name,
                   "params", BCON_DOCUMENT (params));
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   bson_destroy (params);
   return id;
}

/* The most tasks of the matching set that were running at one moment,
 * from their started/finished intervals. */
static int
max_overlap (const char *json)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_t *filter = mt_test_bson (json);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, filter, NULL, NULL);
   const bson_t *doc;
   int64_t starts[256], ends[256];
   int n = 0, best = 0;

   while (n < 256 && mongoc_cursor_next (cursor, &doc)) {
      starts[n] = mt_test_date (doc, "started");
      ends[n] = mt_test_date (doc, "finished");
      n++;
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   mongoc_collection_destroy (tasks);
   for (int i = 0; i < n; i++) {
      int at = 0;
      for (int k = 0; k < n; k++) {
         at += starts[k] <= starts[i] && starts[i] < ends[k];
      }
      best = BSON_MAX (best, at);
   }
   return best;
}

/* One run of a task as the `record` plugin saw it from inside process(),
 * which a task of a pool only enters holding its slot: microseconds of
 * CLOCK_MONOTONIC, one clock for every process of the machine. */
typedef struct {
   int64_t start, end;
} span_t;

/* The runs `record` wrote, at most `max`; how many. */
static int
read_runs (span_t *spans, int max)
{
   mongoc_collection_t *executions = mt_test_collection ("executions");
   bson_t *all = mt_test_bson ("{}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (executions, all, NULL, NULL);
   const bson_t *doc;
   int n = 0;

   while (n < max && mongoc_cursor_next (cursor, &doc)) {
      spans[n].start = mt_test_int (doc, "mono_started");
      spans[n].end = mt_test_int (doc, "mono_ended");
      n++;
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (all);
   mongoc_collection_destroy (executions);
   return n;
}

/* The most runs going on at one moment, over the moments when a run began
 * before `before` (INT64_MAX: any). */
static int
most_at_once (const span_t *spans, int n, int64_t before)
{
   int best = 0;

   for (int i = 0; i < n; i++) {
      int at = 0;

      if (spans[i].start >= before) {
         continue;
      }
      for (int k = 0; k < n; k++) {
         at += spans[k].start <= spans[i].start && spans[i].start < spans[k].end;
      }
      best = BSON_MAX (best, at);
   }
   return best;
}

static void
test_limit_across_workers (void)
{
   /* Pool of 2; 20 tasks of 0.3 s; 3 workers of 4 threads. How many ran
    * at once is read from the runs' own records afterwards, not sampled
    * while they run. */
   span_t runs[32];
   pid_t pids[3];
   int n;

   pool ("two", 2, 0);
   for (int i = 0; i < 20; i++) {
      in_pool ("two", "record", "{'ms': 300}");
   }
   for (int i = 0; i < 3; i++) {
      pids[i] = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "4", "--lease", "3", "--poll-interval", "0.05"));
   }
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 20, 60000);
   for (int i = 0; i < 3; i++) {
      mt_test_worker_stop (pids[i]);
   }
   ASSERT_CMPINT (mt_test_count ("{'status': 'FINISHED', 'attempts': 1}"), ==, 20);
   n = read_runs (runs, 32);
   ASSERT_CMPINT (n, ==, 20);
   /* Never more than the pool's two at once, and the pool was used. */
   ASSERT_CMPINT (most_at_once (runs, n, INT64_MAX), <=, 2);
   ASSERT_CMPINT (most_at_once (runs, n, INT64_MAX), ==, 2);
   /* The same from the server's stamps of the slots' holding. */
   ASSERT_CMPINT (max_overlap ("{'pool': 'two'}"), <=, 2);
}

static void
test_timeout_callbacks_in_order (void)
{
   /* Keepalives, then silence past the pool's timeout: the slot is taken
    * back, the task fails with a timeout, on_keepalive, on_timeout and
    * on_stop run in that order, and the slot serves the next task. */
   bson_oid_t silent, next;
   pid_t pid;
   bson_t *doc;
   char *out;

   pool ("strict", 1, 1.0);
   /* Keepalives 0.3 s apart until the worker has seen one arrive
    * (on_keepalive), however late its heartbeat looks; then silence. */
   silent = in_pool ("strict", "slotprobe", "{'until_seen': true, 'hang_ms': 20000}");
   mt_test_task_set (&silent, "{'max_attempts': 1}");
   next = in_pool ("strict", "slotprobe", "{}");
   pid = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "2", "--lease", "1.5", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&silent, "FAILED"), 30000);
   doc = mt_test_task (&silent);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_TIMEOUT);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "no keepalive for 1 s");
   bson_destroy (doc);
   WAIT_UNTIL (mt_test_status_is (&next, "FINISHED"), 30000);
   WAIT_UNTIL (mt_test_output_contains (pid, "callback on_stop"), 30000);
   out = mt_test_output (pid);
   {
      const char *k = strstr (out, "callback on_keepalive");
      const char *t = strstr (out, "callback on_timeout");
      const char *s = strstr (out, "callback on_stop");

      ASSERT (k && t && s);
      ASSERT (k < t && t < s);
   }
   bson_free (out);
   mt_test_worker_stop (pid);
}

static void
test_external_stop (void)
{
   bson_oid_t held, next;
   bson_error_t error;
   pid_t pid;

   pool ("one", 1, 0);
   held = in_pool ("one", "slotprobe", "{'hang_ms': 30000}");
   pid = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "2", "--lease", "1.5", "--poll-interval", "0.05"));
   WAIT_UNTIL (holds_slot (&held), 20000);
   /* Only now: enqueued together, the second thread could take the one
    * slot first and run `next` before `held`. */
   next = in_pool ("one", "slotprobe", "{}");
   {
      /* The pool is full: once the worker has looked for a slot for
       * `next` (it claims it, finds none and gives it back to CREATED with
       * a short `delayed`, its attempt uncounted), `next` holds no slot and
       * has not run. A slot, or its end, would end the wait as well. */
      char hex[25];

      bson_oid_to_string (&next, hex);
      WAIT_UNTIL (mt_test_count_in ("tasks",
                                    "{'_id': {'$oid': '%s'}, '$or': [{'status': 'CREATED', 'attempts': 0, 'delayed': {'$ne': null}},"
                                    " {'slot': {'$exists': true}}, {'status': {'$in': ['FINISHED', 'FAILED', 'CANCELLED']}}]}",
                                    hex) == 1,
                  20000);
      ASSERT_CMPINT (mt_test_count_in ("slots", "{'task': {'$oid': '%s'}}", hex), ==, 0);
      ASSERT (!mt_test_status_is (&next, "FINISHED"));
   }
   ASSERT_OR_PRINT (mt_slot_keepalive (mt_test_client (), mt_test_db (), &held, &error), error);
   ASSERT_OR_PRINT (mt_slot_stop (mt_test_client (), mt_test_db (), &held, &error), error);
   ASSERT (mt_test_status_is (&held, "CANCELLED"));
   WAIT_UNTIL (mt_test_status_is (&next, "FINISHED"), 20000);
   WAIT_UNTIL (mt_test_output_contains (pid, "callback on_stop"), 20000);
   ASSERT (!mt_test_output_contains (pid, "callback on_timeout"));
   WAIT_UNTIL (mt_test_output_contains (pid, "process() saw should_stop"), 20000);
   ASSERT (mt_test_status_is (&held, "CANCELLED")); /* its own outcome was fenced out */
   ASSERT (!mt_slot_stop (mt_test_client (), mt_test_db (), &held, &error));
   {
      char hex[25], *message;

      bson_oid_to_string (&held, hex);
      message = bson_strdup_printf ("task %s holds no slot", hex);
      ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND, message);
      bson_free (message);
   }
   mt_test_worker_stop (pid);
}

static void
test_killed_holder_gives_back (void)
{
   bson_oid_t held, next;
   pid_t first, second;

   pool ("solo", 1, 0);
   held = in_pool ("solo", "slotprobe", "{'hang_ms': 60000}");
   /* Its last attempt: taken back FAILED, not run again. */
   mt_test_task_set (&held, "{'max_attempts': 1}");
   next = in_pool ("solo", "slotprobe", "{}");
   first = mt_test_worker_ready (W ("--queues", "q", "--lease", "2", "--pid", "W-HOLDER", "--poll-interval", "0.05"));
   WAIT_UNTIL (holds_slot (&held), 20000);
   mt_test_process_kill (first);
   second = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "2", "--lease", "2", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&next, "FINISHED"), 30000);
   ASSERT (mt_test_status_is (&held, "FAILED"));
   mt_test_worker_stop (second);
}

static void
test_resize_without_restart (void)
{
   /* Pool of 1, then of 3 while a worker of 4 threads runs its 12 tasks
    * of 0.4 s: one at a time before, up to three after. */
   span_t runs[16];
   int64_t resized;
   pid_t pid;
   int n;

   pool ("grow", 1, 0);
   for (int i = 0; i < 12; i++) {
      in_pool ("grow", "record", "{'ms': 400}");
   }
   pid = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "4", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") >= 2, 30000);
   ASSERT_CMPINT (max_overlap ("{'status': 'FINISHED'}"), ==, 1);
   resized = bson_get_monotonic_time ();
   pool ("grow", 3, 0);
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 12, 30000);
   mt_test_worker_stop (pid);
   n = read_runs (runs, 16);
   ASSERT_CMPINT (n, ==, 12);
   ASSERT_CMPINT (most_at_once (runs, n, resized), ==, 1); /* whenever one began before the resize */
   ASSERT_CMPINT (most_at_once (runs, n, INT64_MAX), <=, 3);
   ASSERT_CMPINT (most_at_once (runs, n, INT64_MAX), ==, 3);
}

static void
test_pool_rules (void)
{
   bson_error_t error;
   bson_oid_t orphan = in_pool ("undeclared", "sleep", "{'seconds': 0}");
   pid_t pid;

   ASSERT (!mt_pool_set (mt_test_client (), mt_test_db (), "bad#name", 1, 0, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "pool name 'bad#name' must be 1 to 200 bytes, without '#'");
   ASSERT (!mt_pool_set (mt_test_client (), mt_test_db (), "p", 0, 0, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "pool 'p': size must be 1 to 100000 and timeout at most 366 days");
   ASSERT_CMPINT (mt_test_count_in ("pools", "{}") + mt_test_count_in ("slots", "{}"), ==, 0); /* nothing written */
   /* A task of a pool nobody declared waits, uncounted, and says why. */
   pid = mt_test_worker_ready (W ("--queues", "q", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_output_contains (pid, "no pool 'undeclared'"), 20000);
   /* Given back (not failed), attempt uncounted. */
   WAIT_UNTIL (mt_test_count ("{'status': 'CREATED', 'attempts': 0, 'delayed': {'$ne': null}}") == 1, 20000);
   pool ("undeclared", 1, 0);
   WAIT_UNTIL (mt_test_status_is (&orphan, "FINISHED"), 30000);
   mt_test_worker_stop (pid);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/slots/limit_across_workers", test_limit_across_workers);
   mt_test_add ("/slots/timeout_callbacks_in_order", test_timeout_callbacks_in_order);
   mt_test_add ("/slots/external_stop", test_external_stop);
   mt_test_add ("/slots/killed_holder_gives_back", test_killed_holder_gives_back);
   mt_test_add ("/slots/resize_without_restart", test_resize_without_restart);
   mt_test_add ("/slots/pool_rules", test_pool_rules);
   return mt_test_main (argc, argv);
}
