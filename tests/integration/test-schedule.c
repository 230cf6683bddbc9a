/* Scheduling (seed 004) against a real server and real workers: repeating
 * tasks under several workers, downtime, crashes between the writes of a
 * run's end, cron, unique keys, the completed-tasks archive and retention. */
#include "mt-test.h"
#include "mtask-private.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static int64_t
count_series (const bson_oid_t *series, const char *more_json)
{
   char hex[25], *json;
   int64_t n;

   bson_oid_to_string (series, hex);
   json = bson_strdup_printf ("{'series': {'$oid': '%s'}%s%s}", hex, more_json ? ", " : "", more_json ? more_json : "");
   n = mt_test_count (json);
   bson_free (json);
   return n;
}

/* The runs of a series, oldest first: their documents. */
typedef struct {
   bson_t *docs[256];
   int n;
} runs_t;

static void
runs_read (const bson_oid_t *series, runs_t *runs)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_t *filter = BCON_NEW ("series", BCON_OID (series));
   bson_t *opts = BCON_NEW ("sort", "{", "scheduled", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, filter, opts, NULL);
   const bson_t *doc;

   runs->n = 0;
   while (runs->n < 256 && mongoc_cursor_next (cursor, &doc)) {
      runs->docs[runs->n++] = bson_copy (doc);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (opts);
   bson_destroy (filter);
   mongoc_collection_destroy (tasks);
}

static void
runs_free (runs_t *runs)
{
   for (int i = 0; i < runs->n; i++) {
      bson_destroy (runs->docs[i]);
   }
   runs->n = 0;
}

static int64_t
executions_of (const bson_t *doc)
{
   bson_iter_t iter;
   char hex[25];

   ASSERT (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter));
   bson_oid_to_string (bson_iter_oid (&iter), hex);
   return mt_test_count_in ("executions", "{'task': '%s', 'ok': true}", hex);
}

static bool
is_true (const bson_t *doc, const char *dotted)
{
   bson_iter_t iter;

   return bson_iter_init (&iter, doc) && bson_iter_find_descendant (&iter, dotted, &iter) && BSON_ITER_HOLDS_BOOL (&iter) &&
          bson_iter_bool (&iter);
}

static bson_oid_t
enqueue_opts (const char *type, const char *params_json, bson_t *opts)
{
   bson_t *params = mt_test_bson (params_json);
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_enqueue (mt_test_client (), mt_test_db (), "q", type, params, opts, &id, &error);

   bson_destroy (params);
   bson_destroy (opts);
   ASSERT_OR_PRINT (ok, error);
   return id;
}

/* Checks what every series must show: one document per scheduled time,
 * each ended run executed once and pointing at the next run, times on the
 * grid of the first run. Returns how many runs ended. */
static int
check_series (const runs_t *runs, int64_t step_ms)
{
   int ended = 0;
   int64_t first = mt_test_date (runs->docs[0], "scheduled");

   for (int i = 0; i < runs->n; i++) {
      const bson_t *doc = runs->docs[i];
      const char *status = mt_test_str (doc, "status");
      int64_t at = mt_test_date (doc, "scheduled");

      ASSERT_CMPINT ((at - first) % step_ms, ==, 0); /* no drift */
      if (i > 0) {
         ASSERT_CMPINT (at, >, mt_test_date (runs->docs[i - 1], "scheduled")); /* one run per time */
      }
      if (!strcmp (status, "FINISHED")) {
         ended++;
         ASSERT_CMPINT (executions_of (doc), ==, 1);
         if (i + 1 < runs->n) {
            /* Its successor is the next document of the series. */
            bson_iter_t a, b;

            ASSERT (mt_test_has (doc, "next._id"));
            ASSERT (is_true (doc, "next.created"));
            ASSERT (bson_iter_init (&a, doc) && bson_iter_find_descendant (&a, "next._id", &a));
            ASSERT (bson_iter_init_find (&b, runs->docs[i + 1], "_id"));
            ASSERT (bson_oid_equal (bson_iter_oid (&a), bson_iter_oid (&b)));
            ASSERT_CMPINT (mt_test_date (doc, "next.at"), ==, mt_test_date (runs->docs[i + 1], "scheduled"));
         }
      } else {
         /* Only the newest run may still be waiting or running. */
         ASSERT_CMPINT (i, ==, runs->n - 1);
      }
   }
   return ended;
}

/* The first time on the grid of `first` (a multiple of `step_ms` after it)
 * that is later than `t`. */
static int64_t
grid_after (int64_t first, int64_t step_ms, int64_t t)
{
   return t < first ? first : first + ((t - first) / step_ms + 1) * step_ms;
}

/* How far the worker's estimate of the server's clock, when it plans a
 * successor, may be ahead of the server's own stamp of the run's end a
 * moment later: the two clocks are this machine's. */
#define CLOCK_SLACK_MS 250

/* The rule of core/src/schedule.c, read from what the runs left: a
 * successor is the first time on the grid after its run ended, so a
 * time is skipped only when the run before it ended after it; and a
 * series ends only when that first time is past repeat_until (0: none).
 * Load on the machine makes runs late, not wrong: this holds however
 * late they are. */
static void
check_successors (const runs_t *runs, int64_t step_ms, int64_t until)
{
   int64_t first = mt_test_date (runs->docs[0], "scheduled");

   for (int i = 0; i < runs->n; i++) {
      const bson_t *doc = runs->docs[i];
      int64_t at = mt_test_date (doc, "scheduled"), ended;

      if (strcmp (mt_test_str (doc, "status"), "FINISHED") != 0) {
         continue;
      }
      ended = mt_test_date (doc, "finished");
      if (i + 1 < runs->n) {
         int64_t next = mt_test_date (runs->docs[i + 1], "scheduled");

         if (next - step_ms > BSON_MAX (at, ended + CLOCK_SLACK_MS)) {
            mt_test_fail (__FILE__,
                          __LINE__,
                          "run %d (at +%" PRId64 " ms, ended +%" PRId64 " ms) is followed at +%" PRId64 " ms: +%" PRId64
                          " ms was skipped while still ahead",
                          i,
                          at - first,
                          ended - first,
                          next - first,
                          next - step_ms - first);
         }
         ASSERT_CMPINT (next, >=, ended - CLOCK_SLACK_MS); /* never planned in the past */
      } else if (until && mt_test_has (doc, "next") && mt_test_is_null (doc, "next")) {
         /* The series ended here: its next time was past repeat_until. */
         ASSERT_CMPINT (grid_after (first, step_ms, ended + CLOCK_SLACK_MS), >, until);
      }
   }
}

static void
test_repeat_under_three_workers (void)
{
   int64_t now = mt_now_ms ();
   bson_oid_t series;
   pid_t pids[3];
   runs_t runs;
   int ended;

   for (int i = 0; i < 3; i++) {
      pids[i] = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "2", "--lease", "3", "--poll-interval", "0.05"));
   }
   /* Every second for five seconds: runs at +0 s, +1 s, ... +5 s. */
   series = enqueue_opts ("record", "{}", BCON_NEW ("repeat", BCON_INT32 (1), "repeat_until", BCON_DATE_TIME (now + 5000)));
   WAIT_UNTIL (count_series (&series, "'status': 'FINISHED', 'next': null") == 1, 30000);
   for (int i = 0; i < 3; i++) {
      mt_test_worker_stop (pids[i]);
   }

   runs_read (&series, &runs);
   ended = check_series (&runs, 1000);
   ASSERT_CMPINT (runs.n, ==, ended); /* the series is over: nothing waits */
   ASSERT_CMPINT (ended, <=, 6);
   ASSERT_CMPINT (mt_test_date (runs.docs[runs.n - 1], "scheduled"), <=, now + 5000);
   /* No time lost: each run's successor is the next time after it ended,
    * and the last is the last before repeat_until. (How many that makes
    * depends on how late the runs were, not on the code.) */
   check_successors (&runs, 1000, now + 5000);
   runs_free (&runs);
}

static void
test_downtime_catches_up_once (void)
{
   bson_oid_t series = enqueue_opts ("record", "{}", BCON_NEW ("repeat", BCON_INT32 (1)));
   pid_t pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "3", "--poll-interval", "0.05"));
   int64_t stopped, restarted;
   runs_t runs;
   int late = 0, after = 0;

   WAIT_UNTIL (count_series (&series, "'status': 'FINISHED'") >= 3, 30000);
   mt_test_worker_stop (pid);
   stopped = mt_now_ms ();
   /* Ten intervals with no worker at all: the downtime itself. */
   mt_test_nap_ms (10000);
   restarted = mt_now_ms ();
   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "3", "--poll-interval", "0.05"));
   WAIT_UNTIL (count_series (&series, "'status': 'FINISHED'") >= 7, 30000);
   mt_test_worker_stop (pid);

   runs_read (&series, &runs);
   check_series (&runs, 1000);
   /* Back in rhythm after the restart: each successor the next time after
    * its run ended. */
   check_successors (&runs, 1000, 0);
   for (int i = 0; i < runs.n; i++) {
      int64_t at = mt_test_date (runs.docs[i], "scheduled");

      if (at < restarted && mt_test_has (runs.docs[i], "started") && mt_test_date (runs.docs[i], "started") >= restarted) {
         late++;
         ASSERT_CMPINT (at, <=, stopped + 1000 + CLOCK_SLACK_MS); /* planned before the stop */
      }
      if (at >= restarted) {
         after++;
      }
   }
   /* The run that fell due while nobody was there ran once, late; none of
    * the nine other missed times became a run (check_successors: the run
    * after it is the next time after it ended). */
   ASSERT_CMPINT (late, ==, 1);
   ASSERT_CMPINT (after, >=, 3);
   runs_free (&runs);
}

static void
crash_between_writes (const char *failpoint)
{
   bson_oid_t series = enqueue_opts ("record", "{}", BCON_NEW ("repeat", BCON_INT32 (1)));
   pid_t pid;
   runs_t runs;

   mt_test_require_failpoints ();
   setenv ("MTASK_FAILPOINT", failpoint, 1);
   pid = mt_test_worker (W ("--queues", "q", "--lease", "2", "--poll-interval", "0.05"));
   unsetenv ("MTASK_FAILPOINT");
   /* Killed at the failpoint, right after the first run's outcome. */
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 128 + SIGKILL);
   ASSERT (mt_test_output_contains (pid, failpoint));
   ASSERT_CMPINT (count_series (&series, "'status': 'FINISHED', 'next.created': false"), ==, 1);

   /* Another worker's upkeep finishes what the dead one began. */
   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "2", "--poll-interval", "0.05"));
   WAIT_UNTIL (count_series (&series, "'status': 'FINISHED'") >= 3, 30000);
   mt_test_worker_stop (pid);

   runs_read (&series, &runs);
   check_series (&runs, 1000);
   runs_free (&runs);
}

static void
test_crash_before_successor (void)
{
   crash_between_writes ("outcome-written");
}

static void
test_crash_after_successor (void)
{
   crash_between_writes ("successor-inserted");
}

static void
test_ended_elsewhere_gets_successor (void)
{
   /* Runs ended by another path than their worker's outcome (worker lost
    * on its last attempt, stopped, edited by hand) carry no `next`; the
    * upkeep tick plans it. A cancelled run ends its series. */
   int64_t now = mt_now_ms ();
   bson_oid_t failed, cancelled;
   bson_t *doc;
   pid_t pid;

   bson_oid_init (&failed, NULL);
   bson_oid_init (&cancelled, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&failed), "queue", "q", "type", "echo", "status", "FAILED", "repeat", BCON_DOUBLE (2),
                   "scheduled", BCON_DATE_TIME (now - 10000), "series", BCON_OID (&failed), "attempts", BCON_INT32 (3),
                   "finished", BCON_DATE_TIME (now - 5000), "params", "{", "}");
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   doc = BCON_NEW ("_id", BCON_OID (&cancelled), "queue", "q", "type", "echo", "status", "CANCELLED", "repeat", BCON_DOUBLE (2),
                   "scheduled", BCON_DATE_TIME (now - 10000), "series", BCON_OID (&cancelled), "attempts", BCON_INT32 (1),
                   "finished", BCON_DATE_TIME (now - 5000), "params", "{", "}");
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);

   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "1", "--poll-interval", "0.05"));
   WAIT_UNTIL (count_series (&failed, "'status': 'FINISHED'") == 1, 30000);
   mt_test_worker_stop (pid);

   doc = mt_test_task (&failed);
   ASSERT (is_true (doc, "next.created"));
   /* Next on the grid of the old run, after now: never in the past. */
   ASSERT_CMPINT ((mt_test_date (doc, "next.at") - (now - 10000)) % 2000, ==, 0);
   ASSERT_CMPINT (mt_test_date (doc, "next.at"), >=, now);
   bson_destroy (doc);
   doc = mt_test_task (&cancelled);
   ASSERT (mt_test_has (doc, "next") && mt_test_is_null (doc, "next"));
   bson_destroy (doc);
   ASSERT_CMPINT (count_series (&cancelled, NULL), ==, 1);
}

static void
test_cron_first_and_next (void)
{
   /* Every minute, first run now: the successor is at the next minute. */
   int64_t now = mt_now_ms ();
   bson_oid_t id = enqueue_opts ("echo", "{}", BCON_NEW ("cron", "* * * * *", "run_at", BCON_DATE_TIME (now)));
   bson_oid_t later = enqueue_opts ("echo", "{}", BCON_NEW ("cron", "0 3 * * *", "timezone", "Asia/Kolkata"));
   pid_t pid = mt_test_worker_ready (W ("--queues", "q", "--poll-interval", "0.05"));
   bson_t *doc;
   int64_t at;

   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 30000);
   WAIT_UNTIL (count_series (&id, NULL) == 2, 30000);
   mt_test_worker_stop (pid);
   doc = mt_test_task (&id);
   at = mt_test_date (doc, "next.at");
   ASSERT_CMPINT (at % 60000, ==, 0);
   ASSERT_CMPINT (at, >, now);
   ASSERT_CMPINT (at, <=, now + 60000 + 5000);
   ASSERT_CMPSTR (mt_test_str (doc, "cron"), "* * * * *");
   bson_destroy (doc);

   /* 03:00 in India is 21:30 UTC; not run yet. */
   doc = mt_test_task (&later);
   at = mt_test_date (doc, "delayed");
   ASSERT_CMPINT ((at / 60000) % (24 * 60), ==, 21 * 60 + 30);
   ASSERT_CMPINT (at, >, now);
   ASSERT_CMPINT (at, <=, now + 24 * 3600 * 1000);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPSTR (mt_test_str (doc, "timezone"), "Asia/Kolkata");
   bson_destroy (doc);
}

static void
test_enqueue_options (void)
{
   struct {
      bson_t *opts;
      const char *message;
   } bad[] = {
      {BCON_NEW ("repeat", BCON_INT32 (0)), "option 'repeat' must be a number of seconds from 1"},
      {BCON_NEW ("cron", "61 * * * *"), "option 'cron'"},
      {BCON_NEW ("cron", "* * * * *", "repeat", BCON_INT32 (5)), "give one"},
      {BCON_NEW ("timezone", "Europe/Berlin"), "applies to 'cron' only"},
      {BCON_NEW ("cron", "* * * * *", "timezone", "Mars/Olympus"), "Mars/Olympus"},
      {BCON_NEW ("delay", BCON_INT32 (5), "run_at", BCON_DATE_TIME (0)), "give one"},
      {BCON_NEW ("repeat_until", BCON_DATE_TIME (0)), "needs 'repeat' or 'cron'"},
      {BCON_NEW ("repeat", BCON_INT32 (5), "repeat_until", BCON_DATE_TIME (1000)), "before the first run"},
      {BCON_NEW ("unique_key", ""), "option 'unique_key' must be a non-empty string"},
      {BCON_NEW ("creator", BCON_INT32 (7)), "option 'creator'"},
      {BCON_NEW ("run_at", "tomorrow"), "option 'run_at' must be a date"},
   };
   int64_t now = mt_now_ms ();
   bson_oid_t id;
   bson_t *doc;

   for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      bson_error_t error;
      bool ok = mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, bad[i].opts, &id, &error);

      if (ok) {
         mt_test_fail (__FILE__, __LINE__, "bad option set %zu was accepted", i);
      }
      ASSERT_CONTAINS (error.message, bad[i].message);
      bson_destroy (bad[i].opts);
   }
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 0);

   id = enqueue_opts ("echo", "{}",
                      BCON_NEW ("run_at", BCON_DATE_TIME (now + 3600000), "priority", BCON_INT32 (4), "verbose_name",
                                "Send the reminders", "creator", "billing-app", "max_attempts", BCON_INT32 (2)));
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, now + 3600000);
   ASSERT_CMPINT (mt_test_int (doc, "priority"), ==, 4);
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (doc, "verbose_name"), "Send the reminders");
   ASSERT_CMPSTR (mt_test_str (doc, "creator"), "billing-app");
   ASSERT (!mt_test_has (doc, "series")); /* not repeating */
   bson_destroy (doc);
}

static void
test_malformed_schedule_fails (void)
{
   /* Written by another client with a schedule no worker can follow. */
   bson_oid_t id = mt_test_task_insert ("{'queue': 'q', 'type': 'echo', 'status': 'CREATED', 'cron': 'every day'}");
   bson_t *doc;
   pid_t pid;

   pid = mt_test_worker_ready (W ("--queues", "q", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 30000);
   mt_test_worker_stop (pid);
   doc = mt_test_task (&id);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "field 'cron'");
   bson_destroy (doc);
}

static bool
enqueue_unique (const char *key, bson_t *more, bson_oid_t *id)
{
   bson_t *opts = BCON_NEW ("unique_key", key);
   bson_error_t error;
   bool created = false, ok;

   if (more) {
      bson_concat (opts, more);
      bson_destroy (more);
   }
   ok = mt_enqueue_ex (mt_test_client (), mt_test_db (), "q", "echo", NULL, opts, id, &created, &error);
   bson_destroy (opts);
   ASSERT_OR_PRINT (ok, error);
   return created;
}

typedef struct {
   const char *db;
   int created;
} racer_t;

static void *
race_unique (void *data)
{
   racer_t *racer = data;
   mongoc_uri_t *uri = mongoc_uri_new (mt_test_uri ());
   mongoc_client_t *client = mongoc_client_new_from_uri (uri);
   bson_t *opts = BCON_NEW ("unique_key", "nightly-report");
   bson_error_t error;
   bson_oid_t id;
   bool created = false;

   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   if (mt_enqueue_ex (client, racer->db, "q", "echo", NULL, opts, &id, &created, &error)) {
      racer->created = created ? 1 : 0;
   } else {
      racer->created = -1;
      fprintf (stdout, "# racer: %s\n", error.message);
   }
   bson_destroy (opts);
   mongoc_client_destroy (client);
   mongoc_uri_destroy (uri);
   return NULL;
}

static void
test_unique_key (void)
{
   bson_oid_t first, again, stale, next;
   pthread_t threads[8];
   racer_t racers[8];
   bson_t *doc;
   int created = 0;

   ASSERT (enqueue_unique ("k1", NULL, &first));
   ASSERT (!enqueue_unique ("k1", NULL, &again));
   ASSERT (bson_oid_equal (&first, &again)); /* says which task holds it */
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'k1'}"), ==, 1);

   /* Once it has run, the key is free again. */
   mt_test_worker_once (W ("--queues", "q"), 30000);
   ASSERT (mt_test_status_is (&first, "FINISHED"));
   doc = mt_test_task (&first);
   ASSERT (!mt_test_has (doc, MT_UNIQUE_HELD_FIELD));
   ASSERT_CMPSTR (mt_test_str (doc, "unique_key"), "k1");
   bson_destroy (doc);
   ASSERT (enqueue_unique ("k1", NULL, &next));
   ASSERT (!bson_oid_equal (&first, &next));

   /* A key left on a task ended by hand is not held. */
   bson_oid_init (&stale, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&stale), "queue", "q", "type", "echo", "status", "CANCELLED", "unique_key", "k2",
                   MT_UNIQUE_HELD_FIELD, "k2");
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   ASSERT (enqueue_unique ("k2", NULL, &next));
   ASSERT (!bson_oid_equal (&stale, &next));

   /* Eight clients at once: one task. */
   for (int i = 0; i < 8; i++) {
      racers[i].db = mt_test_db ();
      racers[i].created = -2;
      ASSERT (pthread_create (&threads[i], NULL, race_unique, &racers[i]) == 0);
   }
   for (int i = 0; i < 8; i++) {
      pthread_join (threads[i], NULL);
      ASSERT_CMPINT (racers[i].created, >=, 0);
      created += racers[i].created;
   }
   ASSERT_CMPINT (created, ==, 1);
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'nightly-report'}"), ==, 1);
}

static void
test_unique_repeating (void)
{
   /* The complaint of seed 004's users: a repeating task created twice. A
    * unique key holds through the series, run after run. */
   bson_oid_t series, again;
   pid_t pid;

   ASSERT (enqueue_unique ("heartbeat", BCON_NEW ("repeat", BCON_INT32 (1)), &series));
   ASSERT (!enqueue_unique ("heartbeat", BCON_NEW ("repeat", BCON_INT32 (1)), &again));
   pid = mt_test_worker_ready (W ("--queues", "q", "--poll-interval", "0.05"));
   WAIT_UNTIL (count_series (&series, "'status': 'FINISHED'") >= 2, 30000);
   ASSERT (!enqueue_unique ("heartbeat", BCON_NEW ("repeat", BCON_INT32 (1)), &again));
   mt_test_worker_stop (pid);
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'heartbeat', 'series': {'$exists': false}}"), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'heartbeat', 'status': {'$in': ['CREATED', 'WORK_IN_PROGRESS']}}"), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'heartbeat'}"), ==, count_series (&series, NULL));
}

static void
test_archive_moves_ended (void)
{
   bson_oid_t ids[12], group;
   bson_error_t error;

   for (int i = 0; i < 10; i++) {
      ids[i] = mt_test_enqueue ("q", "echo", "{'n': 1}", NULL);
   }
   ids[10] = mt_test_enqueue ("q", "fail", "{'message': 'no'}", "{'max_attempts': 1}");
   ids[11] = mt_test_enqueue ("other", "echo", "{}", NULL);
   bson_t *keep = BCON_NEW ("keep_seconds", BCON_INT32 (600));
   bool ok = mt_group_create (mt_test_client (), mt_test_db (), "kept", keep, &group, &error);

   bson_destroy (keep);
   ASSERT_OR_PRINT (ok, error);
   ASSERT_OR_PRINT (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 1, "q", "echo", NULL, NULL, NULL, &error), error);
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   mt_test_worker_once (W ("--queues", "q", "--archive"), 30000);

   /* Gone from tasks, in completed_tasks with the same _id and fields;
    * the staged group's task stays with its group. */
   ASSERT_CMPINT (mt_test_count ("{'queue': 'q'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{'queue': 'q', 'group': {'$exists': true}, 'status': 'FINISHED'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{}"), ==, 11);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{'status': 'FINISHED', 'result.n': 1, 'finished': {'$exists': true}}"), ==, 10);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{'status': 'FAILED', 'error.message': 'no'}"), ==, 1);
   for (int i = 0; i < 11; i++) {
      char hex[25], *json;

      bson_oid_to_string (&ids[i], hex);
      json = bson_strdup_printf ("{'_id': {'$oid': '%s'}, 'attempts': 1}", hex);
      ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "%s", json), ==, 1);
      bson_free (json);
   }
   /* Another queue's task is not this worker's to move. */
   ASSERT (mt_test_status_is (&ids[11], "CREATED"));
}

static void
test_archive_killed_between_writes (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "record", "{}", NULL);
   char hex[25], *json;
   pid_t pid;

   mt_test_require_failpoints ();
   setenv ("MTASK_FAILPOINT", "archive-copied", 1);
   pid = mt_test_worker (W ("--queues", "q", "--archive", "--lease", "2", "--poll-interval", "0.05"));
   unsetenv ("MTASK_FAILPOINT");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 128 + SIGKILL);

   /* Copied, not yet deleted: in both, the same document. */
   bson_oid_to_string (&id, hex);
   json = bson_strdup_printf ("{'_id': {'$oid': '%s'}, 'status': 'FINISHED'}", hex);
   ASSERT_CMPINT (mt_test_count (json), ==, 1);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "%s", json), ==, 1);

   /* The next archiving worker finishes the move: once, nothing lost. */
   pid = mt_test_worker_ready (W ("--queues", "q", "--archive", "--lease", "1", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count (json) == 0, 30000);
   mt_test_worker_stop (pid);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "%s", json), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("executions", "{}"), ==, 1);
   bson_free (json);
}

static void
insert_ended (const char *collection, const char *status, int64_t finished, const char *extra_json)
{
   bson_t *doc = BCON_NEW ("queue", "q", "type", "echo", "status", status);

   if (finished) {
      BSON_APPEND_DATE_TIME (doc, "finished", finished);
   }
   if (extra_json) {
      bson_t *extra = mt_test_bson (extra_json);
      bson_concat (doc, extra);
      bson_destroy (extra);
   }
   mt_test_insert (collection, doc);
   bson_destroy (doc);
}

static void
test_purge (void)
{
   const int64_t day = 86400 * 1000;
   int64_t now = mt_now_ms ();
   const char *failed_only[] = {"FAILED", NULL};
   const char *live[] = {"CREATED", NULL};
   bson_error_t error;

   insert_ended ("tasks", "FINISHED", now - 40 * day, NULL);
   insert_ended ("tasks", "FAILED", now - 40 * day, NULL);
   insert_ended ("tasks", "CANCELLED", now - 40 * day, NULL);
   insert_ended ("tasks", "FINISHED", now - 1 * day, NULL);                           /* too young */
   insert_ended ("tasks", "CREATED", 0, NULL);                                        /* live */
   insert_ended ("tasks", "WORK_IN_PROGRESS", now - 40 * day, NULL);                  /* live, odd stamp */
   insert_ended ("tasks", "FINISHED", now - 40 * day, "{'group': {'$oid': '0123456789abcdef01234567'}}");
   insert_ended ("tasks", "FINISHED", now - 40 * day, "{'next': {'created': false}}"); /* successor pending */
   insert_ended (MT_COMPLETED_COLLECTION, "FINISHED", now - 40 * day, NULL);
   insert_ended (MT_COMPLETED_COLLECTION, "FAILED", now - 40 * day, NULL);
   insert_ended (MT_COMPLETED_COLLECTION, "FAILED", now - 2 * day, NULL);

   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), NULL, 30 * 86400, NULL, true, &error), ==, 5);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 8); /* a dry run deletes nothing */
   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), MT_COMPLETED_COLLECTION, 30 * 86400, failed_only, false, &error), ==, 1);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{}"), ==, 2);
   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), NULL, 30 * 86400, NULL, false, &error), ==, 4);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 5);
   ASSERT_CMPINT (mt_test_count ("{'status': {'$in': ['CREATED', 'WORK_IN_PROGRESS']}}"), ==, 2);
   ASSERT_CMPINT (mt_test_count ("{'group': {'$exists': true}}"), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{'next.created': false}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{}"), ==, 1);

   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), NULL, 0, live, false, &error), ==, -1);
   ASSERT_CONTAINS (error.message, "'CREATED' is not an ended one");
   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), "workers", 0, NULL, false, &error), ==, -1);
   ASSERT_CONTAINS (error.message, "not 'workers'");
}

static void
test_retention_ttl (void)
{
   bson_error_t error;

   insert_ended (MT_COMPLETED_COLLECTION, "FINISHED", mt_now_ms (), NULL);
   ASSERT_OR_PRINT (mt_retention_set (mt_test_client (), mt_test_db (), MT_COMPLETED_COLLECTION, 30 * 86400, &error), error);
   ASSERT_CMPINT (mt_test_ttl_seconds (MT_COMPLETED_COLLECTION), ==, 30 * 86400);
   ASSERT_OR_PRINT (mt_retention_set (mt_test_client (), mt_test_db (), MT_COMPLETED_COLLECTION, 3600, &error), error);
   ASSERT_CMPINT (mt_test_ttl_seconds (MT_COMPLETED_COLLECTION), ==, 3600);
   ASSERT_OR_PRINT (mt_retention_set (mt_test_client (), mt_test_db (), MT_COMPLETED_COLLECTION, -1, &error), error);
   ASSERT_CMPINT (mt_test_ttl_seconds (MT_COMPLETED_COLLECTION), ==, -1);
   /* Dropping what is not there is no error. */
   ASSERT_OR_PRINT (mt_retention_set (mt_test_client (), mt_test_db (), "tasks", -1, &error), error);
   ASSERT (!mt_retention_set (mt_test_client (), mt_test_db (), "locks", 60, &error));
   ASSERT_CONTAINS (error.message, "not 'locks'");
}

int
main (int argc, char **argv)
{
   mt_test_add ("/schedule/repeat_under_three_workers", test_repeat_under_three_workers);
   mt_test_add ("/schedule/downtime_catches_up_once", test_downtime_catches_up_once);
   mt_test_add ("/schedule/crash_before_successor", test_crash_before_successor);
   mt_test_add ("/schedule/crash_after_successor", test_crash_after_successor);
   mt_test_add ("/schedule/ended_elsewhere_gets_successor", test_ended_elsewhere_gets_successor);
   mt_test_add ("/schedule/cron_first_and_next", test_cron_first_and_next);
   mt_test_add ("/schedule/enqueue_options", test_enqueue_options);
   mt_test_add ("/schedule/malformed_schedule_fails", test_malformed_schedule_fails);
   mt_test_add ("/unique/key", test_unique_key);
   mt_test_add ("/unique/repeating", test_unique_repeating);
   mt_test_add ("/archive/moves_ended", test_archive_moves_ended);
   mt_test_add ("/archive/killed_between_writes", test_archive_killed_between_writes);
   mt_test_add ("/retention/purge", test_purge);
   mt_test_add ("/retention/ttl", test_retention_ttl);
   return mt_test_main (argc, argv);
}
