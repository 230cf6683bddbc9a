/* Workers an operator can trust and drain (issue 16): the state the admin
 * API judges from the heartbeat's age, quiet and stop through the registry
 * and by signal, the backlog stats counts, and enqueue's warning when no
 * worker serves a queue. */
#include "mt-test.h"

#include <signal.h>
#include <string.h>
#include <time.h>


/* Params for a probe that waits at the test's gate `name`. */
static char *
gated (const char *name)
{
   return bson_strdup_printf ("{'gate': '%s'}", mt_test_gate (name));
}

/* Worker `id` as mt_admin_workers gives it (bson_destroy it), or NULL. */
static bson_t *
admin_worker (const char *id)
{
   bson_t reply, *found = NULL;
   bson_error_t error;
   bson_iter_t iter, list;
   bool ok = mt_admin_workers (mt_test_client (), mt_test_db (), NULL, &reply, &error);

   ASSERT_OR_PRINT (ok, error);
   ASSERT (bson_iter_init_find (&iter, &reply, "workers") && bson_iter_recurse (&iter, &list));
   while (!found && bson_iter_next (&list)) {
      const uint8_t *data;
      uint32_t len;
      bson_t doc;

      bson_iter_document (&list, &len, &data);
      ASSERT (bson_init_static (&doc, data, len));
      if (mt_test_str (&doc, "_id") && !strcmp (mt_test_str (&doc, "_id"), id)) {
         found = bson_copy (&doc);
      }
   }
   bson_destroy (&reply);
   return found;
}

/* Whether worker `id`'s judged state is `state`. */
static bool
state_is (const char *id, const char *state)
{
   bson_t *doc = admin_worker (id);
   bool is = doc && mt_test_str (doc, "state") && !strcmp (mt_test_str (doc, "state"), state);

   bson_destroy (doc);
   return is;
}

/* The line of `text` that holds `needle`, or "" (bson_free it). */
static char *
line_of (const char *text, const char *needle)
{
   const char *at = strstr (text, needle), *start, *end;

   if (!at) {
      return bson_strdup ("");
   }
   for (start = at; start > text && start[-1] != '\n'; start--) {
   }
   end = strchr (at, '\n');
   return bson_strndup (start, end ? (size_t) (end - start) : strlen (start));
}

/* A worker SIGKILLed mid-task writes nothing more, yet is shown lost
 * within one lease of its last heartbeat, with the task it ran. */
static void
test_lost_after_sigkill (void)
{
   char *params = gated ("kill");
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t pid = mt_test_worker (W ("--queues", "q", "--pid", "W-KILL", "--lease", "3", "--poll-interval", "0.05"));
   char hex[25], *out, *line;
   bson_t *doc;
   int64_t killed;

   bson_free (params);
   bson_oid_to_string (&id, hex);
   WAIT_UNTIL (mt_test_status_is (&id, "WORK_IN_PROGRESS") && state_is ("W-KILL", "running"), 20000);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "workers"), ==, 0);
   line = line_of (out, "W-KILL");
   ASSERT_CONTAINS (line, "running");
   ASSERT_CONTAINS (line, hex);
   ASSERT_CONTAINS (line, "probe");
   bson_free (line);
   bson_free (out);

   mt_test_process_kill (pid);
   killed = bson_get_monotonic_time ();
   /* Its last word was "running": only the heartbeat's age tells. */
   doc = mt_test_find_one ("workers", "{'_id': 'W-KILL'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "running");
   bson_destroy (doc);
   WAIT_UNTIL (state_is ("W-KILL", "lost"), 10000);
   /* A lease (3 s) after its last heartbeat, which was before the kill. */
   ASSERT_CMPINT ((bson_get_monotonic_time () - killed) / 1000, <=, 3000 + 1000);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "workers"), ==, 0);
   line = line_of (out, "W-KILL");
   ASSERT_CONTAINS (line, "lost");
   ASSERT_CONTAINS (line, hex); /* still its, until taken back */
   bson_free (line);
   bson_free (out);

   /* Lost: there is no process to ask. */
   ASSERT_CMPINT (MT_TEST_CTL (&out, "worker", "stop", "W-KILL"), ==, 1);
   ASSERT_CONTAINS (out, "worker 'W-KILL' is lost");
   bson_free (out);
   mt_test_gate_open ("kill");
}

/* Quiet through the registry: the worker finishes what runs, claims
 * nothing, says "quiet"; enqueue warns that no worker serves the queue;
 * stop through the registry ends it with exit 0, stopped, its task list
 * cleared and an expiry set. */
static void
test_quiet_then_stop_through_registry (void)
{
   char *params = gated ("quiet");
   bson_oid_t a = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t pid = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-Q", "--lease", "3", "--poll-interval", "0.05", "--concurrency", "2"));
   char *out, *line;
   bson_t *doc;
   int64_t hb;

   bson_free (params);
   WAIT_UNTIL (mt_test_status_is (&a, "WORK_IN_PROGRESS"), 20000);

   /* Served: enqueue says nothing. */
   ASSERT_CMPINT (MT_TEST_CTL (&out, "enqueue", "--queue", "q", "--type", "probe"), ==, 0);
   ASSERT (!strstr (out, "warning"));
   bson_free (out);
   /* A running worker of the queue without the plugin. */
   ASSERT_CMPINT (MT_TEST_CTL (&out, "enqueue", "--queue", "q", "--type", "no-such-type"), ==, 0);
   ASSERT_CONTAINS (out, "mtaskctl: warning: no running worker of queue 'q' has a plugin for type 'no-such-type'");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count ("{'type': 'no-such-type'}"), ==, 1);
   {
      mongoc_collection_t *tasks = mt_test_tasks ();
      bson_t *filter = mt_test_bson ("{'type': 'no-such-type'}");
      bson_error_t error;
      bool ok = mongoc_collection_delete_many (tasks, filter, NULL, NULL, &error);

      ASSERT_OR_PRINT (ok, error);
      bson_destroy (filter);
      mongoc_collection_destroy (tasks);
   }
   /* The plain probe enqueued above runs and finishes. */
   WAIT_UNTIL (mt_test_count ("{'type': 'probe', 'status': 'FINISHED'}") == 1, 20000);

   ASSERT_CMPINT (MT_TEST_CTL (&out, "worker", "quiet", "W-Q"), ==, 0);
   ASSERT_CONTAINS (out, "worker 'W-Q' (running) asked to quiet");
   bson_free (out);
   WAIT_UNTIL (state_is ("W-Q", "quiet"), 10000);
   ASSERT (mt_test_output_contains (pid, "the registry asks this worker to be quiet"));

   /* Quiet: nothing serves q now; the task is enqueued all the same. */
   ASSERT_CMPINT (MT_TEST_CTL (&out, "enqueue", "--queue", "q", "--type", "probe"), ==, 0);
   ASSERT_CONTAINS (out, "mtaskctl: warning: no running worker takes queue 'q'");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count ("{'status': 'CREATED'}"), ==, 1);

   /* What runs finishes; what waits is not claimed (over three heartbeats). */
   mt_test_gate_open ("quiet");
   WAIT_UNTIL (mt_test_status_is (&a, "FINISHED"), 20000);
   doc = mt_test_find_one ("workers", "{'_id': 'W-Q'}");
   hb = mt_test_date (doc, "heartbeat");
   bson_destroy (doc);
   WAIT_UNTIL (({
                  bson_t *d = mt_test_find_one ("workers", "{'_id': 'W-Q'}");
                  bool later = mt_test_date (d, "heartbeat") >= hb + 3000;
                  bson_destroy (d);
                  later;
               }),
               20000);
   ASSERT_CMPINT (mt_test_count ("{'status': 'CREATED'}"), ==, 1);
   ASSERT (state_is ("W-Q", "quiet"));
   ASSERT_CMPINT (MT_TEST_CTL (&out, "workers"), ==, 0);
   line = line_of (out, "W-Q");
   ASSERT_CONTAINS (line, "quiet");
   bson_free (line);
   bson_free (out);

   /* Stop through the registry: the process exits 0. */
   ASSERT_CMPINT (MT_TEST_CTL (&out, "worker", "stop", "W-Q", "--grace", "5"), ==, 0);
   ASSERT_CONTAINS (out, "worker 'W-Q' (quiet) asked to stop");
   bson_free (out);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 20000)), ==, 0);
   ASSERT (mt_test_output_contains (pid, "the registry asks this worker to stop (grace 5 s)"));
   doc = mt_test_find_one ("workers", "{'_id': 'W-Q'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "stopped");
   ASSERT (!mt_test_has (doc, "tasks.0"));
   ASSERT (mt_test_date (doc, "expires") > mt_test_date (doc, "heartbeat"));
   bson_destroy (doc);
   ASSERT (state_is ("W-Q", "stopped"));
   ASSERT_CMPINT (mt_test_count ("{'status': 'CREATED'}"), ==, 1);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "worker", "quiet", "W-Q"), ==, 1);
   ASSERT_CONTAINS (out, "worker 'W-Q' is stopped");
   bson_free (out);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "worker", "stop", "W-NOBODY"), ==, 1);
   ASSERT_CONTAINS (out, "no worker 'W-NOBODY' in ");
   bson_free (out);
}

/* A worker draining its running task within the grace says "stopping";
 * SIGTSTP makes one quiet. */
static void
test_stopping_and_sigtstp (void)
{
   char *params = gated ("drain");
   bson_oid_t a = mt_test_enqueue ("q", "probe", params, NULL);
   pid_t pid = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-S", "--lease", "3", "--poll-interval", "0.05"));
   pid_t other = mt_test_worker_ready (W ("--queues", "other", "--pid", "W-T", "--lease", "3", "--poll-interval", "0.05"));
   char *out, *line;

   bson_free (params);
   WAIT_UNTIL (mt_test_status_is (&a, "WORK_IN_PROGRESS"), 20000);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "worker", "stop", "W-S", "--grace", "60"), ==, 0);
   bson_free (out);
   WAIT_UNTIL (state_is ("W-S", "stopping"), 10000);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "workers"), ==, 0);
   line = line_of (out, "W-S");
   ASSERT_CONTAINS (line, "stopping");
   bson_free (line);
   bson_free (out);
   mt_test_gate_open ("drain");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT (mt_test_status_is (&a, "FINISHED"));
   ASSERT (state_is ("W-S", "stopped"));

   /* SIGTSTP: quiet, and the process stays up (not suspended). */
   kill (other, SIGTSTP);
   WAIT_UNTIL (state_is ("W-T", "quiet"), 10000);
   ASSERT (mt_test_output_contains (other, "quiet: no new claims"));
   mt_test_worker_stop (other);
   ASSERT (state_is ("W-T", "stopped"));
}

/* Upserts a registry document for a worker that is not there: `fields`
 * JSON, heartbeat stamped now by the server. */
static void
fake_worker (const char *id, const char *fields)
{
   mongoc_collection_t *workers = mt_test_collection ("workers");
   bson_t *set = mt_test_bson (fields);
   bson_t *update = BCON_NEW ("$set", BCON_DOCUMENT (set), "$currentDate", "{", "heartbeat", BCON_BOOL (true), "}");
   bson_t *filter = BCON_NEW ("_id", BCON_UTF8 (id));
   bson_t *opts = BCON_NEW ("upsert", BCON_BOOL (true));
   bson_error_t error;
   bool ok = mongoc_collection_update_one (workers, filter, update, opts, NULL, &error);

   ASSERT_OR_PRINT (ok, error);
   bson_destroy (set);
   bson_destroy (update);
   bson_destroy (filter);
   bson_destroy (opts);
   mongoc_collection_destroy (workers);
}

static void
insert_task (const char *queue, const char *type, const char *status, int64_t created, int64_t delayed, int32_t attempts)
{
   bson_t doc = BSON_INITIALIZER;

   BSON_APPEND_UTF8 (&doc, "queue", queue);
   BSON_APPEND_UTF8 (&doc, "type", type);
   BSON_APPEND_UTF8 (&doc, "status", status);
   BSON_APPEND_DATE_TIME (&doc, "created", created);
   if (delayed) {
      BSON_APPEND_DATE_TIME (&doc, "delayed", delayed);
   }
   BSON_APPEND_INT32 (&doc, "attempts", attempts);
   BSON_APPEND_INT32 (&doc, "max_attempts", 3);
   mt_test_insert ("tasks", &doc);
   bson_destroy (&doc);
}

/* Find `key` = `value` among the documents of array `array` of `reply`. */
static bool
find_in (const bson_t *reply, const char *array, const char *key, const char *value, bson_t *out)
{
   bson_iter_t iter, list;

   if (!bson_iter_init_find (&iter, reply, array) || !bson_iter_recurse (&iter, &list)) {
      return false;
   }
   while (bson_iter_next (&list)) {
      const uint8_t *data;
      uint32_t len;

      if (BSON_ITER_HOLDS_DOCUMENT (&list)) {
         bson_iter_document (&list, &len, &data);
         ASSERT (bson_init_static (out, data, len));
         if (mt_test_str (out, key) && !strcmp (mt_test_str (out, key), value)) {
            return true;
         }
      } else if (BSON_ITER_HOLDS_UTF8 (&list) && !strcmp (bson_iter_utf8 (&list, NULL), value)) {
         return true;
      }
   }
   return false;
}

/* stats on a crafted collection: due, delayed, retrying and running apart,
 * the oldest due task's age, and what no running worker serves. */
static void
test_stats_backlog (void)
{
   int64_t now = (int64_t) time (NULL) * 1000;
   bson_t reply, row;
   bson_error_t error;
   char *out, *line;
   bool ok;

   insert_task ("bq", "t1", "CREATED", now - 60000, 0, 0);           /* due for 60 s */
   insert_task ("bq", "t1", "CREATED", now - 600000, now - 30000, 0); /* due for 30 s */
   insert_task ("bq", "t1", "CREATED", now, now + 3600000, 0);        /* delayed */
   insert_task ("bq", "t1", "CREATED", now - 5000, now + 3600000, 2); /* retrying */
   insert_task ("bq", "t1", "WORK_IN_PROGRESS", now - 5000, 0, 1);    /* running */
   insert_task ("bq", "t1", "FINISHED", now - 900000, 0, 1);
   insert_task ("cq", "t2", "CREATED", now - 1000, 0, 0);
   insert_task ("dq", "t3", "CREATED", now - 1000, 0, 0);
   /* Running: serves cq (not its type t2) and dq with t3. A quiet one and
    * a stale one serve nothing. */
   fake_worker ("W-LIVE", "{'status': 'running', 'queues': ['cq', 'dq'], 'plugins': ['t3'], 'lease_seconds': 600}");
   fake_worker ("W-QUIET", "{'status': 'quiet', 'queues': ['bq'], 'plugins': ['t1', 't2'], 'lease_seconds': 600}");
   fake_worker ("W-STALE", "{'status': 'running', 'queues': ['bq', 'cq'], 'plugins': ['t1', 't2'], 'lease_seconds': 0.001}");
   WAIT_UNTIL (state_is ("W-STALE", "lost"), 5000);

   ok = mt_admin_stats (mt_test_client (), mt_test_db (), NULL, &reply, &error);
   ASSERT_OR_PRINT (ok, error);
   ASSERT (find_in (&reply, "backlog", "queue", "bq", &row));
   ASSERT_CMPINT (mt_test_int (&row, "due"), ==, 2);
   ASSERT_CMPINT (mt_test_int (&row, "delayed"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&row, "retrying"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&row, "running"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&row, "oldest_due_age_ms"), >=, 59000);
   ASSERT_CMPINT (mt_test_int (&row, "oldest_due_age_ms"), <, 120000);
   ASSERT (find_in (&reply, "backlog", "queue", "cq", &row));
   ASSERT_CMPINT (mt_test_int (&row, "due"), ==, 1);
   ASSERT (find_in (&reply, "unserved_queues", NULL, "bq", &row));
   ASSERT (!find_in (&reply, "unserved_queues", NULL, "cq", &row));
   ASSERT (!find_in (&reply, "unserved_queues", NULL, "dq", &row));
   ASSERT (find_in (&reply, "unserved_types", "queue", "cq", &row));
   ASSERT_CMPSTR (mt_test_str (&row, "type"), "t2");
   ASSERT (!find_in (&reply, "unserved_types", "queue", "dq", &row));
   ASSERT (!find_in (&reply, "unserved_types", "queue", "bq", &row)); /* the queue is, as a whole */
   bson_destroy (&reply);

   ASSERT_CMPINT (MT_TEST_CTL (&out, "stats"), ==, 0);
   ASSERT_CONTAINS (out, "BACKLOG");
   line = line_of (out, "bq  ");
   ASSERT_CONTAINS (out, "queue bq: no running worker takes it");
   ASSERT_CONTAINS (out, "type t2 in queue cq: no running worker of the queue has its plugin");
   bson_free (line);
   bson_free (out);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "stats", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"backlog\"");
   ASSERT_CONTAINS (out, "\"retrying\" : 1");
   ASSERT_CONTAINS (out, "\"unserved_queues\" : [ \"bq\" ]");
   bson_free (out);
}

/* Stopped and lost workers' documents expire: a TTL index, and on the
 * development server (no TTL) the live workers delete them. */
static void
test_registry_expires (void)
{
   mongoc_collection_t *workers = mt_test_collection ("workers");
   bson_t *old = mt_test_bson ("{'_id': 'W-OLD', 'status': 'stopped', 'expires': {'$date': '2001-01-01T00:00:00Z'}}");
   mongoc_cursor_t *cursor;
   const bson_t *index;
   bool ttl = false;
   pid_t pid;

   mt_test_insert ("workers", old);
   pid = mt_test_worker_ready (W ("--queues", "q", "--pid", "W-NEW", "--lease", "3", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count_in ("workers", "{'_id': 'W-OLD'}") == 0, 10000);
   /* Marked lost while it was paused, then back: it must not expire. */
   {
      bson_t *filter = mt_test_bson ("{'_id': 'W-NEW'}");
      bson_t *mark = mt_test_bson ("{'$set': {'status': 'lost', 'expires': {'$date': '2100-01-01T00:00:00Z'}}}");
      bson_error_t error;
      bool ok = mongoc_collection_update_one (workers, filter, mark, NULL, NULL, &error);

      ASSERT_OR_PRINT (ok, error);
      bson_destroy (filter);
      bson_destroy (mark);
   }
   WAIT_UNTIL (mt_test_count_in ("workers", "{'_id': 'W-NEW', 'status': 'running', 'expires': {'$exists': false}}") == 1, 10000);
   cursor = mongoc_collection_find_indexes_with_opts (workers, NULL);
   while (mongoc_cursor_next (cursor, &index)) {
      if (mt_test_str (index, "name") && !strcmp (mt_test_str (index, "name"), "mtask_workers_ttl")) {
         ttl = mt_test_int (index, "expireAfterSeconds") == 0 && mt_test_int (index, "key.expires") == 1;
      }
   }
   ASSERT (!mongoc_cursor_error (cursor, NULL));
   mongoc_cursor_destroy (cursor);
   ASSERT (ttl);
   mt_test_worker_stop (pid);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-NEW', 'expires': {'$exists': true}}"), ==, 1);
   bson_destroy (old);
   mongoc_collection_destroy (workers);
}

/* The counter `name` of worker `id` as mt_admin_workers gives it, -1 when
 * the worker or the counter is not there. */
static int64_t
admin_counter (const char *id, const char *name)
{
   bson_t *doc = admin_worker (id);
   char path[64];
   int64_t n = -1;

   bson_snprintf (path, sizeof path, "counters.%s", name);
   if (doc && mt_test_has (doc, path)) {
      n = mt_test_int (doc, path);
   }
   bson_destroy (doc);
   return n;
}

/* What a worker did, as mt_admin_workers returns it from its registry
 * document: a task run, one given back while its account is busy (again
 * and again), claims; and the counts stay in the document of the stopped
 * worker. */
static void
test_counters (void)
{
   bson_oid_t holder = mt_test_task_insert ("{'queue': 'elsewhere', 'type': 'echo', 'status': 'WORK_IN_PROGRESS', "
                                            "'worker_pid': 'W-OTHER', 'attempts': 1, 'heartbeat': {'$date': '2999-01-01T00:00:00Z'}}");
   char hex[25];
   bson_t *lock;
   pid_t pid;

   bson_oid_to_string (&holder, hex);
   lock = mt_test_bson ("{'_id': 'acct-busy', 'worker_pid': 'W-OTHER', 'attempt': 1}");
   BSON_APPEND_OID (lock, "task", &holder);
   mt_test_insert ("locks", lock);
   bson_destroy (lock);
   mt_test_enqueue ("cnt-q", "echo", NULL, NULL);
   mt_test_task_insert ("{'queue': 'cnt-q', 'type': 'echo', 'status': 'CREATED', 'attempts': 0, 'accounts': ['acct-busy']}");
   pid = mt_test_worker (W ("--queues", "cnt-q", "--pid", "W-CNT", "--lease", "3", "--poll-interval", "0.05"));
   WAIT_UNTIL (admin_counter ("W-CNT", "run") == 1 && admin_counter ("W-CNT", "given_back") >= 1, 20000);
   ASSERT_CMPINT (admin_counter ("W-CNT", "failed"), ==, 0);
   ASSERT_CMPINT (admin_counter ("W-CNT", "retried"), ==, 0);
   ASSERT_CMPINT (admin_counter ("W-CNT", "claims"), >=, 2);
   ASSERT_CMPINT (mt_test_count ("{'queue': 'cnt-q', 'status': 'FINISHED'}"), ==, 1);
   mt_test_worker_stop (pid);
   ASSERT (state_is ("W-CNT", "stopped"));
   ASSERT_CMPINT (admin_counter ("W-CNT", "run"), ==, 1);
   ASSERT_CMPINT (admin_counter ("W-CNT", "given_back"), >=, 1);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/workers/lost_after_sigkill", test_lost_after_sigkill);
   mt_test_add ("/workers/quiet_then_stop_through_registry", test_quiet_then_stop_through_registry);
   mt_test_add ("/workers/stopping_and_sigtstp", test_stopping_and_sigtstp);
   mt_test_add ("/workers/stats_backlog", test_stats_backlog);
   mt_test_add ("/workers/registry_expires", test_registry_expires);
   mt_test_add ("/workers/counters", test_counters);
   return mt_test_main (argc, argv);
}
