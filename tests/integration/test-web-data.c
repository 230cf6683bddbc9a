/* What the dashboard reads beyond the plain listings (issue 17): the
 * overview's failures and throughput of the last hour, the task list's
 * worker, text, skip and "more", one group stage with its jobs, /metrics
 * with every family and its labels escaped, and the counters a worker
 * reports in its registry document. Each through mtask-web over HTTP, as a
 * page or a scraper reads it. */
#include "mt-test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MINUTE_MS 60000

/* The JSON body of a 200 answer to GET `path`, as BSON (bson_destroy it). */
static bson_t *
get_json (mt_test_web_t *w, const char *path)
{
   mt_test_answer_t ans = mt_test_http (w->port, "GET", path, "", NULL);
   bson_error_t error;
   bson_t *doc;

   if (ans.status != 200) {
      mt_test_fail (__FILE__, __LINE__, "GET %s: %d %s", path, ans.status, ans.body);
   }
   doc = bson_new_from_json ((const uint8_t *) ans.body, -1, &error);
   ASSERT_OR_PRINT (doc, error);
   mt_test_answer_free (&ans);
   return doc;
}

/* GET `path` must answer `status` with `fragment` in its body. */
static void
get_refused (mt_test_web_t *w, const char *path, int status, const char *fragment)
{
   mt_test_answer_t ans = mt_test_http (w->port, "GET", path, "", NULL);

   ASSERT_CMPINT (ans.status, ==, status);
   ASSERT_CONTAINS (ans.body, fragment);
   mt_test_answer_free (&ans);
}

static int64_t
now_ms (void)
{
   struct timespec ts;

   clock_gettime (CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Inserts into `collection` a task of `queue` that ended `status` at
 * `finished` (ms), with _id `id` (NULL: a new one). */
static bson_oid_t
ended (const char *collection, const bson_oid_t *id, const char *queue, const char *status, int64_t finished)
{
   bson_oid_t oid;
   bson_t *doc;

   if (id) {
      bson_oid_copy (id, &oid);
   } else {
      bson_oid_init (&oid, NULL);
   }
   doc = BCON_NEW ("_id", BCON_OID (&oid), "queue", BCON_UTF8 (queue), "type", "t", "status", BCON_UTF8 (status),
                   "created", BCON_DATE_TIME (finished - 1000), "finished", BCON_DATE_TIME (finished));
   mt_test_insert (collection, doc);
   bson_destroy (doc);
   return oid;
}

/* The row of array `key` of `doc` whose `field` is the string `value`
 * (static: valid while `doc` lives), or NULL. */
static bool
row_of (const bson_t *doc, const char *key, const char *field, const char *value, bson_t *row)
{
   bson_iter_t iter, list;

   if (!bson_iter_init_find (&iter, doc, key) || !bson_iter_recurse (&iter, &list)) {
      return false;
   }
   while (bson_iter_next (&list)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document (&list, &len, &data);
      ASSERT (bson_init_static (row, data, len));
      if (mt_test_str (row, field) && !strcmp (mt_test_str (row, field), value)) {
         return true;
      }
   }
   return false;
}

/* The throughput row of the minute holding `at` (ms): its finished and
 * failed counts. */
static void
minute_counts (const bson_t *overview, int64_t at, int64_t *finished, int64_t *failed)
{
   int64_t minute = at - at % MINUTE_MS;
   bson_iter_t iter, list;
   bool found = false;

   ASSERT (bson_iter_init_find (&iter, overview, "throughput") && bson_iter_recurse (&iter, &list));
   while (bson_iter_next (&list)) {
      const uint8_t *data;
      uint32_t len;
      bson_t row;

      bson_iter_document (&list, &len, &data);
      ASSERT (bson_init_static (&row, data, len));
      if (mt_test_date (&row, "minute") == minute) {
         *finished = mt_test_int (&row, "finished");
         *failed = mt_test_int (&row, "failed");
         found = true;
      }
   }
   ASSERT (found);
}

/* failed_last_hour per queue and the 60 minutes of throughput, counted
 * from `tasks` and the archive, each task once, on the server's clock. */
static void
test_overview_last_hour (void)
{
   mt_test_web_t *w = mt_test_web_start (NULL);
   int64_t now = now_ms (), three = now - 3 * MINUTE_MS, ten = now - 10 * MINUTE_MS, five = now - 5 * MINUTE_MS;
   int64_t finished, failed, first, prev = 0;
   bson_oid_t both;
   bson_t *overview, row;
   bson_iter_t iter, list;
   int n = 0;

   ended ("tasks", NULL, "od-q", "FAILED", three);
   ended ("tasks", NULL, "od-q", "FAILED", three);
   ended ("tasks", NULL, "od-q", "FINISHED", three);
   ended ("tasks", NULL, "od-q", "CANCELLED", three);              /* neither finished nor failed */
   ended ("tasks", NULL, "od-q", "FAILED", now - 2 * 3600 * 1000); /* over an hour ago */
   ended ("tasks", NULL, "od-q", "FINISHED", ten);
   /* Archived, and one caught in the middle of its move: in both. */
   ended ("completed_tasks", NULL, "od-q", "FINISHED", ten);
   both = ended ("tasks", NULL, "od-q", "FINISHED", ten);
   ended ("completed_tasks", &both, "od-q", "FINISHED", ten);
   ended ("completed_tasks", NULL, "od-gone", "FAILED", five); /* a queue with nothing waiting */
   mt_test_enqueue ("od-q", "t", NULL, NULL);

   overview = get_json (w, "/api/overview");
   ASSERT (row_of (overview, "backlog", "queue", "od-q", &row));
   ASSERT_CMPINT (mt_test_int (&row, "failed_last_hour"), ==, 2);
   ASSERT_CMPINT (mt_test_int (&row, "due"), ==, 1);
   ASSERT (row_of (overview, "backlog", "queue", "od-gone", &row));
   ASSERT_CMPINT (mt_test_int (&row, "failed_last_hour"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&row, "due"), ==, 0);

   /* 60 minutes, one apart, oldest first, the current one last. */
   ASSERT (bson_iter_init_find (&iter, overview, "throughput") && bson_iter_recurse (&iter, &list));
   first = mt_test_date (overview, "throughput.0.minute");
   while (bson_iter_next (&list)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document (&list, &len, &data);
      ASSERT (bson_init_static (&row, data, len));
      ASSERT (!prev || mt_test_date (&row, "minute") == prev + MINUTE_MS);
      prev = mt_test_date (&row, "minute");
      n++;
   }
   ASSERT_CMPINT (n, ==, 60);
   ASSERT_CMPINT (first % MINUTE_MS, ==, 0);
   ASSERT_CMPINT (prev, >=, now - now % MINUTE_MS);
   ASSERT_CMPINT (prev, <=, now_ms ());

   minute_counts (overview, three, &finished, &failed);
   ASSERT_CMPINT (finished, ==, 1);
   ASSERT_CMPINT (failed, ==, 2);
   /* One in tasks, one archived, one in both: three tasks. */
   minute_counts (overview, ten, &finished, &failed);
   ASSERT_CMPINT (finished, ==, 3);
   ASSERT_CMPINT (failed, ==, 0);
   minute_counts (overview, five, &finished, &failed);
   ASSERT_CMPINT (finished, ==, 0);
   ASSERT_CMPINT (failed, ==, 1);
   minute_counts (overview, now - 30 * MINUTE_MS, &finished, &failed);
   ASSERT_CMPINT (finished + failed, ==, 0);
   bson_destroy (overview);
}

/* The _id of element `i` of `doc`'s tasks, as hex. */
static const char *
task_id (const bson_t *doc, int i, char *hex)
{
   char path[64];
   bson_iter_t iter;

   bson_snprintf (path, sizeof path, "tasks.%d._id", i);
   ASSERT (bson_iter_init (&iter, doc) && bson_iter_find_descendant (&iter, path, &iter) && BSON_ITER_HOLDS_OID (&iter));
   bson_oid_to_string (bson_iter_oid (&iter), hex);
   return hex;
}

static int64_t
n_tasks (const bson_t *doc)
{
   bson_iter_t iter, list;
   int64_t n = 0;

   ASSERT (bson_iter_init_find (&iter, doc, "tasks") && bson_iter_recurse (&iter, &list));
   while (bson_iter_next (&list)) {
      n++;
   }
   return n;
}

static bool
more_of (const bson_t *doc)
{
   bson_iter_t iter;

   ASSERT (bson_iter_init_find (&iter, doc, "more") && BSON_ITER_HOLDS_BOOL (&iter));
   return bson_iter_bool (&iter);
}

/* worker, q (an id, a text as typed, a hostile regex), skip, limit and
 * "more", newest first. */
static void
test_tasks_filters (void)
{
   mt_test_web_t *w = mt_test_web_start (NULL);
   bson_oid_t ids[5], acme, odd;
   char hex[25], got[25], *path;
   bson_t *doc;

   mt_test_task_insert ("{'queue': 'tf-q', 'type': 't', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'W-A'}");
   mt_test_task_insert ("{'queue': 'tf-q', 'type': 't', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'W-A'}");
   mt_test_task_insert ("{'queue': 'tf-q', 'type': 't', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'W-B'}");
   acme = mt_test_task_insert ("{'queue': 'tf-q', 'type': 't', 'status': 'FAILED', 'status_message': 'Payment for ACME Corp refused'}");
   odd = mt_test_task_insert ("{'queue': 'tf-q', 'type': 't', 'status': 'FAILED', 'status_message': 'pattern .*( in the text'}");
   for (int i = 0; i < 5; i++) {
      ids[i] = mt_test_task_insert ("{'queue': 'tf-page', 'type': 't', 'status': 'CREATED'}");
   }

   doc = get_json (w, "/api/tasks?worker=W-A");
   ASSERT_CMPINT (n_tasks (doc), ==, 2);
   ASSERT_CMPSTR (mt_test_str (doc, "tasks.0.worker_pid"), "W-A");
   ASSERT_CMPSTR (mt_test_str (doc, "tasks.1.worker_pid"), "W-A");
   ASSERT (!more_of (doc));
   bson_destroy (doc);

   /* Text: a substring of status_message, whatever its case. */
   doc = get_json (w, "/api/tasks?q=acme%20corp");
   ASSERT_CMPINT (n_tasks (doc), ==, 1);
   bson_oid_to_string (&acme, hex);
   ASSERT_CMPSTR (task_id (doc, 0, got), hex);
   bson_destroy (doc);
   /* A regex's characters are text: '.*(' matches only the message that
    * holds those three characters, and is no error. */
   doc = get_json (w, "/api/tasks?q=.%2A%28");
   ASSERT_CMPINT (n_tasks (doc), ==, 1);
   bson_oid_to_string (&odd, hex);
   ASSERT_CMPSTR (task_id (doc, 0, got), hex);
   bson_destroy (doc);
   doc = get_json (w, "/api/tasks?q=%5E.%2B%24%7C%5B");
   ASSERT_CMPINT (n_tasks (doc), ==, 0);
   bson_destroy (doc);
   /* 24 hex digits: the task with that _id. */
   bson_oid_to_string (&ids[2], hex);
   path = bson_strdup_printf ("/api/tasks?q=%s", hex);
   doc = get_json (w, path);
   ASSERT_CMPINT (n_tasks (doc), ==, 1);
   ASSERT_CMPSTR (task_id (doc, 0, got), hex);
   bson_destroy (doc);
   bson_free (path);

   /* Pages, newest first: 5 tasks by 2. */
   doc = get_json (w, "/api/tasks?queue=tf-page&limit=2");
   ASSERT_CMPINT (n_tasks (doc), ==, 2);
   ASSERT_CMPSTR (task_id (doc, 0, got), (bson_oid_to_string (&ids[4], hex), hex));
   ASSERT_CMPSTR (task_id (doc, 1, got), (bson_oid_to_string (&ids[3], hex), hex));
   ASSERT (more_of (doc));
   bson_destroy (doc);
   doc = get_json (w, "/api/tasks?queue=tf-page&limit=2&skip=2");
   ASSERT_CMPINT (n_tasks (doc), ==, 2);
   ASSERT_CMPSTR (task_id (doc, 0, got), (bson_oid_to_string (&ids[2], hex), hex));
   ASSERT (more_of (doc));
   bson_destroy (doc);
   doc = get_json (w, "/api/tasks?queue=tf-page&limit=2&skip=4");
   ASSERT_CMPINT (n_tasks (doc), ==, 1);
   ASSERT_CMPSTR (task_id (doc, 0, got), (bson_oid_to_string (&ids[0], hex), hex));
   ASSERT (!more_of (doc));
   bson_destroy (doc);
   doc = get_json (w, "/api/tasks?queue=tf-page&limit=5");
   ASSERT_CMPINT (n_tasks (doc), ==, 5);
   ASSERT (!more_of (doc));
   bson_destroy (doc);

   get_refused (w, "/api/tasks?skip=100001", 400, "option 'skip' must be at most 100000");
   get_refused (w, "/api/tasks?skip=-1", 400, "skip");
   {
      char q[260];

      memset (q, 'x', 250);
      q[250] = '\0';
      path = bson_strdup_printf ("/api/tasks?q=%s", q);
      get_refused (w, path, 400, "option 'q' must be at most 200 bytes");
      bson_free (path);
   }
}

/* /api/stage/ID: a group's stage with its group and its jobs, cut at
 * limit with "more"; a synchronizer's stage by the same path; 404 for an
 * unknown id and 400 for a bad one. */
static void
test_stage (void)
{
   mt_test_web_t *w = mt_test_web_start (NULL);
   bson_oid_t group = mt_test_group_new ("quarterly \"report\"", 0), sync_stage, tasks[3];
   bson_t *stage_doc, *doc, *params = bson_new ();
   bson_error_t error;
   bson_iter_t iter;
   char hex[25], got[25], *path;

   for (int i = 0; i < 3; i++) {
      tasks[i] = mt_test_group_add (&group, 1, "echo", "{}", NULL);
   }
   mt_test_group_add (&group, 2, "echo", "{}", NULL);
   mt_test_task_set (&tasks[1], "{'status_message': 'half way', 'attempts': 2}");
   bson_oid_to_string (&group, hex);
   stage_doc = mt_test_find_one ("group_stages", "{'group': {'$oid': '%s'}, 'number': 1}", hex);
   ASSERT (stage_doc);
   ASSERT (bson_iter_init_find (&iter, stage_doc, "_id") && BSON_ITER_HOLDS_OID (&iter));
   bson_oid_to_string (bson_iter_oid (&iter), hex);

   path = bson_strdup_printf ("/api/stage/%s", hex);
   doc = get_json (w, path);
   bson_free (path);
   ASSERT_CMPINT (mt_test_int (doc, "stage.number"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "stage.total"), ==, 3);
   ASSERT_CMPINT (mt_test_int (doc, "stage.tasks.WAITING"), ==, 3);
   ASSERT (!mt_test_has (doc, "stage.done_ids"));
   ASSERT (mt_test_has (doc, "stage.group"));
   ASSERT_CMPSTR (mt_test_str (doc, "group.description"), "quarterly \"report\"");
   ASSERT_CMPINT (n_tasks (doc), ==, 3);
   ASSERT_CMPSTR (task_id (doc, 0, got), (bson_oid_to_string (&tasks[0], hex), hex));
   ASSERT_CMPSTR (mt_test_str (doc, "tasks.1.status"), "WAITING");
   ASSERT_CMPSTR (mt_test_str (doc, "tasks.1.status_message"), "half way");
   ASSERT_CMPINT (mt_test_int (doc, "tasks.1.attempts"), ==, 2);
   ASSERT (mt_test_has (doc, "tasks.1.created"));
   ASSERT (!more_of (doc));
   bson_destroy (doc);

   ASSERT (bson_iter_init_find (&iter, stage_doc, "_id"));
   bson_oid_to_string (bson_iter_oid (&iter), hex);
   path = bson_strdup_printf ("/api/stage/%s?limit=2", hex);
   doc = get_json (w, path);
   bson_free (path);
   ASSERT_CMPINT (n_tasks (doc), ==, 2);
   ASSERT (more_of (doc));
   bson_destroy (doc);
   path = bson_strdup_printf ("/api/stage/%s?limit=1001", hex);
   get_refused (w, path, 400, "option 'limit' must be at most 1000");
   bson_free (path);
   bson_destroy (stage_doc);

   /* A synchronizer's stage answers by the same path, without a group. */
   ASSERT_OR_PRINT (mt_sync_stage_create (mt_test_client (), mt_test_db (), "load", "echo", "sync-q", NULL, NULL, params, &sync_stage, &error),
                    error);
   bson_oid_to_string (&sync_stage, hex);
   path = bson_strdup_printf ("/api/stage/%s", hex);
   doc = get_json (w, path);
   bson_free (path);
   ASSERT_CMPSTR (mt_test_str (doc, "stage.name"), "load");
   ASSERT (!mt_test_has (doc, "stage.group"));
   bson_destroy (doc);
   bson_destroy (params);

   get_refused (w, "/api/stage/0123456789abcdef01234567", 404, "no stage 0123456789abcdef01234567");
   get_refused (w, "/api/stage/nope", 400, "is not a stage id");
}

/* A registry document as a worker writes it, with counters; `age_s` the
 * age of its heartbeat. */
static void
registry_doc (const char *id, int64_t age_s, int64_t run)
{
   bson_t *doc = BCON_NEW ("_id", BCON_UTF8 (id), "host", "h", "pid", BCON_INT32 (1), "status", "running",
                           "lease_seconds", BCON_DOUBLE (30), "heartbeat", BCON_DATE_TIME (now_ms () - age_s * 1000),
                           "queues", "[", "met-q", "]", "plugins", "[", "t", "]",
                           "counters", "{", "run", BCON_INT64 (run), "failed", BCON_INT64 (2), "retried", BCON_INT64 (3),
                           "given_back", BCON_INT64 (4), "claims", BCON_INT64 (50), "}");

   mt_test_insert ("workers", doc);
   bson_destroy (doc);
}

/* Every family with HELP and TYPE, the values of a crafted database, and
 * a label with a quote, a backslash and a newline escaped. */
static void
test_metrics (void)
{
   static const char *const families[][2] = {
      {"mtask_tasks", "gauge"},
      {"mtask_queue_due", "gauge"},
      {"mtask_queue_delayed", "gauge"},
      {"mtask_queue_retrying", "gauge"},
      {"mtask_queue_running", "gauge"},
      {"mtask_queue_failed_last_hour", "gauge"},
      {"mtask_queue_oldest_due_age_seconds", "gauge"},
      {"mtask_workers", "gauge"},
      {"mtask_worker_tasks_run_total", "counter"},
      {"mtask_worker_tasks_failed_total", "counter"},
      {"mtask_worker_tasks_retried_total", "counter"},
      {"mtask_worker_tasks_given_back_total", "counter"},
      {"mtask_worker_claims_total", "counter"},
      {"mtask_locks", "gauge"},
      {"mtask_pool_size", "gauge"},
      {"mtask_pool_slots_used", "gauge"},
      {"mtask_groups", "gauge"},
      {"mtask_synchronizers", "gauge"},
      {"mtask_scrape_duration_seconds", "gauge"},
   };
   mt_test_web_t *w;
   mt_test_answer_t ans;
   bson_error_t error;
   bson_t *doc;
   char want[256];

   doc = BCON_NEW ("queue", "m\"q\\x\ny", "type", "t", "status", "CREATED");
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   mt_test_enqueue ("met-q", "t", NULL, NULL);
   ended ("tasks", NULL, "met-q", "FAILED", now_ms () - 2 * MINUTE_MS);
   registry_doc ("W-LIVE", 1, 7);
   registry_doc ("W-GONE", 3600, 99); /* lost: its counters are not shown */
   /* A lock whose run is over: stale. */
   mt_test_insert ("locks", (doc = mt_test_bson ("{'_id': 'acct-1', 'task': {'$oid': '0123456789abcdef01234567'}, 'attempt': 1, "
                                                "'worker_pid': 'W-GONE'}")));
   bson_destroy (doc);
   ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "met-pool", 3, 0, &error), error);
   mt_test_group_new ("met group", 0);

   w = mt_test_web_start (NULL);
   ans = mt_test_http (w->port, "GET", "/metrics", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   for (size_t k = 0; k < sizeof families / sizeof families[0]; k++) {
      bson_snprintf (want, sizeof want, "# HELP %s ", families[k][0]);
      ASSERT_CONTAINS (ans.body, want);
      bson_snprintf (want, sizeof want, "\n# TYPE %s %s\n", families[k][0], families[k][1]);
      ASSERT_CONTAINS (ans.body, want);
   }
   ASSERT_CONTAINS (ans.body, "\nmtask_tasks{queue=\"m\\\"q\\\\x\\ny\",status=\"CREATED\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_queue_due{queue=\"m\\\"q\\\\x\\ny\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_tasks{queue=\"met-q\",status=\"FAILED\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_queue_failed_last_hour{queue=\"met-q\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_queue_due{queue=\"met-q\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_workers{state=\"running\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_workers{state=\"lost\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_run_total{worker=\"W-LIVE\"} 7\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_failed_total{worker=\"W-LIVE\"} 2\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_retried_total{worker=\"W-LIVE\"} 3\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_given_back_total{worker=\"W-LIVE\"} 4\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_claims_total{worker=\"W-LIVE\"} 50\n");
   ASSERT (!strstr (ans.body, "W-GONE"));
   ASSERT_CONTAINS (ans.body, "\nmtask_locks{state=\"held\"} 0\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_locks{state=\"stale\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_pool_size{pool=\"met-pool\"} 3\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_pool_slots_used{pool=\"met-pool\"} 0\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_groups{status=\"pending\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_groups{status=\"complete\"} 0\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_synchronizers{status=\"stand_by\"} 0\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_scrape_duration_seconds ");
   mt_test_answer_free (&ans);
}

/* The counter of worker `id`'s registry document, -1 when it has none. */
static int64_t
registry_counter (const char *id, const char *name)
{
   bson_t *doc = mt_test_count_in ("workers", "{'_id': '%s'}", id) ? mt_test_find_one ("workers", "{'_id': '%s'}", id) : NULL;
   char path[64];
   int64_t n = -1;

   bson_snprintf (path, sizeof path, "counters.%s", name);
   if (doc && mt_test_has (doc, path)) {
      n = mt_test_int (doc, path);
   }
   bson_destroy (doc);
   return n;
}

/* A worker runs two tasks that finish, one that fails for good and one
 * that fails, is retried and fails for good: its registry document counts
 * 5 runs, 2 failed, 1 retried, and /metrics shows them as its counters. */
static void
test_worker_counters (void)
{
   mt_test_web_t *w = mt_test_web_start (NULL);
   pid_t pid;
   mt_test_answer_t ans;

   mt_test_enqueue ("wc-q", "echo", NULL, NULL);
   mt_test_enqueue ("wc-q", "echo", NULL, NULL);
   mt_test_enqueue ("wc-q", "fail", "{'message': 'no'}", "{'max_attempts': 1}");
   mt_test_enqueue ("wc-q", "fail", "{'message': 'twice'}", "{'max_attempts': 2}");
   pid = mt_test_worker (W ("--queues", "wc-q", "--pid", "W-COUNT", "--lease", "3", "--poll-interval", "0.05",
                            "--retry-backoff", "0.1"));
   WAIT_UNTIL (mt_test_count ("{'queue': 'wc-q', 'status': {'$in': ['FINISHED', 'FAILED']}}") == 4, 30000);
   /* The heartbeat (every lease/3) carries them. */
   WAIT_UNTIL (registry_counter ("W-COUNT", "run") == 5, 10000);
   ASSERT_CMPINT (registry_counter ("W-COUNT", "failed"), ==, 2);
   ASSERT_CMPINT (registry_counter ("W-COUNT", "retried"), ==, 1);
   ASSERT_CMPINT (registry_counter ("W-COUNT", "given_back"), ==, 0);
   ASSERT_CMPINT (registry_counter ("W-COUNT", "claims"), >=, 4);

   ans = mt_test_http (w->port, "GET", "/metrics", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_run_total{worker=\"W-COUNT\"} 5\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_failed_total{worker=\"W-COUNT\"} 2\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_retried_total{worker=\"W-COUNT\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_tasks_given_back_total{worker=\"W-COUNT\"} 0\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_worker_claims_total{worker=\"W-COUNT\"} ");
   mt_test_answer_free (&ans);

   /* The worker filter finds what the worker ran, ended or not. */
   {
      bson_t *doc = get_json (w, "/api/tasks?worker=W-COUNT&status=FAILED");

      ASSERT_CMPINT (n_tasks (doc), ==, 2);
      ASSERT_CMPSTR (mt_test_str (doc, "tasks.0.last_worker"), "W-COUNT");
      bson_destroy (doc);
   }
   mt_test_worker_stop (pid);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/web-data/overview/last_hour", test_overview_last_hour);
   mt_test_add ("/web-data/tasks/filters", test_tasks_filters);
   mt_test_add ("/web-data/stage", test_stage);
   mt_test_add ("/web-data/metrics", test_metrics);
   mt_test_add ("/web-data/worker_counters", test_worker_counters);
   return mt_test_main (argc, argv);
}
