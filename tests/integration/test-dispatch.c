/* Dispatch (issue 18): one claimer per worker process, prefetch by run
 * time, change-stream wake-ups and the fallback to polling.
 *
 * The test server of the run has no oplog, so it answers a change stream
 * as a MongoDB standalone does (40573, docs/devdb.md); the tests that watch
 * start a devdb of their own with --oplog. On that server update events
 * carry the updated fields in `fullDocument` rather than in
 * `updateDescription` (core/src/watch.c reads both); these tests wake on
 * inserts, which look the same on both. */
#include "mt-test.h"

#include <signal.h>
#include <string.h>

/* A task on queue "q" through `client` (NULL: the test server's). */
static bson_oid_t
enqueue_at (mongoc_client_t *client, const char *type, const char *params_json, const char *opts_json)
{
   bson_t *params = mt_test_bson (params_json);
   bson_t *opts = opts_json ? mt_test_bson (opts_json) : NULL;
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_enqueue (client ? client : mt_test_client (), mt_test_db (), "q", type, params, opts, &id, &error);

   bson_destroy (params);
   if (opts) {
      bson_destroy (opts);
   }
   ASSERT_OR_PRINT (ok, error);
   return id;
}

/* The task's document through `client` (bson_destroy it). */
static bson_t *
task_at (mongoc_client_t *client, const bson_oid_t *id)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   bson_t *copy = mt_test_task_find_at (client, filter);

   bson_destroy (filter);
   ASSERT (copy);
   return copy;
}

static bool
finished_at (mongoc_client_t *client, const bson_oid_t *id)
{
   bson_t *doc = task_at (client, id);
   bool done = mt_test_str (doc, "status") && !strcmp (mt_test_str (doc, "status"), "FINISHED");

   bson_destroy (doc);
   return done;
}

/* A short task is never held behind a long one while a thread is free:
 * with two threads, every echo task enqueued around a 3 s sleep starts
 * while the sleep runs. (Claimed ahead in batches by one thread, some
 * waited for the sleep to end.) */
static void
test_short_not_behind_long (void)
{
   bson_oid_t shorts[40], long_id;
   int n = 0;
   bson_t *long_doc;
   int64_t long_finished;
   pid_t worker;

   /* Enough before it that claims come in batches by then. */
   for (int i = 0; i < 20; i++) {
      shorts[n++] = mt_test_enqueue ("q", "echo", "{'i': 1}", NULL);
   }
   long_id = mt_test_enqueue ("q", "sleep", "{'seconds': 3}", NULL);
   while (n < 40) {
      shorts[n++] = mt_test_enqueue ("q", "echo", "{'i': 2}", NULL);
   }
   worker = mt_test_worker (W ("--queues", "q", "--concurrency", "2", "--poll-interval", "0.2"));
   WAIT_UNTIL (mt_test_status_is (&long_id, "FINISHED"), 30000);
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 41, 10000);
   mt_test_worker_stop (worker);

   long_doc = mt_test_task (&long_id);
   long_finished = mt_test_date (long_doc, "finished");
   for (int i = 0; i < n; i++) {
      bson_t *doc = mt_test_task (&shorts[i]);

      /* Started (and so finished) before the sleep ended. */
      ASSERT_CMPINT (mt_test_date (doc, "finished"), <, long_finished);
      bson_destroy (doc);
   }
   bson_destroy (long_doc);
}

/* With a backlog of long tasks, a worker that starts late gets one at its
 * first claim: the first worker holds no more than its threads run. */
static void
test_late_worker_gets_backlog (void)
{
   pid_t a, b;

   for (int i = 0; i < 6; i++) {
      mt_test_enqueue ("q", "sleep", "{'seconds': 3}", NULL);
   }
   a = mt_test_worker (W ("--queues", "q", "--concurrency", "2", "--pid", "A", "--poll-interval", "0.2"));
   /* The first two ended, the next two run: run times are known now. */
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 2, 20000);
   WAIT_UNTIL (mt_test_count ("{'status': 'WORK_IN_PROGRESS', 'worker_pid': 'A'}") >= 2, 5000);
   ASSERT_CMPINT (mt_test_count ("{'status': 'WORK_IN_PROGRESS', 'worker_pid': 'A'}"), ==, 2);
   ASSERT_CMPINT (mt_test_count ("{'status': 'CREATED'}"), ==, 2);

   b = mt_test_worker_ready (W ("--queues", "q", "--pid", "B", "--poll-interval", "0.2"));
   /* Well before A's running tasks end. */
   WAIT_UNTIL (mt_test_count ("{'worker_pid': 'B'}") == 1, 1500);
   ASSERT_CMPINT (mt_test_count ("{'status': 'WORK_IN_PROGRESS', 'worker_pid': 'A'}"), <=, 2);

   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 6, 20000);
   mt_test_worker_stop (a);
   mt_test_worker_stop (b);
}

/* With a change stream an idle worker starts a new task at once, though
 * its poll interval is 30 s; and a delayed one when its time comes. */
static void
test_change_stream_wakeup (void)
{
   static mt_test_own_db_t db;
   bson_oid_t id;
   bson_t *doc;
   int64_t began, took_ms;
   pid_t worker;

   mt_test_own_db_open_oplog (&db, "serverSelectionTimeoutMS=2000");
   worker = mt_test_worker_at (db.uri, W ("--queues", "q", "--concurrency", "2", "--poll-interval", "30", "--wake", "change-stream"));
   WAIT_UNTIL (mt_test_output_contains (worker, "for new tasks (a change stream)"), 30000);
   /* The first claims (at the start, and when the stream opened) are over. */
   mt_test_nap_ms (300);

   began = bson_get_monotonic_time ();
   id = enqueue_at (db.client, "echo", "{'x': 1}", NULL);
   WAIT_UNTIL (finished_at (db.client, &id), 5000);
   took_ms = (bson_get_monotonic_time () - began) / 1000;
   printf ("# a task enqueued to an idle watching worker finished after %" PRId64 " ms\n", took_ms);
   ASSERT_CMPINT (took_ms, <, 3000);

   /* Delayed by 1 s: started about then, not at the next poll (30 s). */
   id = enqueue_at (db.client, "echo", "{'x': 2}", "{'delay': 1}");
   WAIT_UNTIL (finished_at (db.client, &id), 6000);
   doc = task_at (db.client, &id);
   ASSERT_CMPINT (mt_test_date (doc, "started"), >=, mt_test_date (doc, "delayed"));
   ASSERT_CMPINT (mt_test_date (doc, "started"), <, mt_test_date (doc, "delayed") + 3000);
   bson_destroy (doc);

   mt_test_worker_stop (worker);
   ASSERT_CMPINT (mt_test_output_count (worker, "polling for new tasks"), ==, 0);
   mt_test_own_db_close (&db);
}

/* No change streams (the test server, a standalone): the worker says so
 * once, polls, and runs everything. */
static void
test_no_stream_polls (void)
{
   pid_t worker = mt_test_worker (W ("--queues", "q", "--concurrency", "2", "--poll-interval", "0.2"));

   WAIT_UNTIL (mt_test_output_contains (worker, "no change streams on this server"), 20000);
   for (int i = 0; i < 5; i++) {
      mt_test_enqueue ("q", "echo", "{}", NULL);
   }
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == 5, 10000);
   /* It tried to watch again meanwhile (after 1 s, 2 s): said once. */
   mt_test_nap_ms (3500);
   mt_test_worker_stop (worker);
   ASSERT_CMPINT (mt_test_output_count (worker, "no change streams on this server"), ==, 1);
   ASSERT_CMPINT (mt_test_output_count (worker, "watching"), ==, 0);
}

/* The stream breaks mid-run (the server restarts): the worker falls back
 * to polling, says so once, loses nothing, and watches again. */
static void
test_stream_broken_falls_back (void)
{
   static mt_test_own_db_t db;
   bson_oid_t ids[6];
   pid_t worker;

   mt_test_own_db_open_oplog (&db, "serverSelectionTimeoutMS=1000");
   worker = mt_test_worker_at (db.uri, W ("--queues", "q", "--concurrency", "2", "--poll-interval", "0.5"));
   WAIT_UNTIL (mt_test_output_contains (worker, "for new tasks (a change stream)"), 30000);
   ids[0] = enqueue_at (db.client, "echo", "{}", NULL);
   WAIT_UNTIL (finished_at (db.client, &ids[0]), 5000);

   mt_test_own_db_stop (&db);
   WAIT_UNTIL (mt_test_output_contains (worker, "the change stream on '"), 20000);
   mt_test_own_db_start (&db);
   /* Enqueued while it may not watch yet: polling finds them. */
   for (int i = 1; i < 4; i++) {
      ids[i] = enqueue_at (db.client, "echo", "{}", NULL);
   }
   WAIT_UNTIL (mt_test_output_contains (worker, "for new tasks again (a change stream)"), 30000);
   for (int i = 4; i < 6; i++) {
      ids[i] = enqueue_at (db.client, "echo", "{}", NULL);
   }
   for (int i = 0; i < 6; i++) {
      WAIT_UNTIL (finished_at (db.client, &ids[i]), 10000);
   }
   mt_test_worker_stop (worker);
   ASSERT_CMPINT (mt_test_output_count (worker, "polling for new tasks every"), ==, 1);
   mt_test_own_db_close (&db);
}

/* SIGTERM: tasks claimed ahead of a free thread go back to CREATED at
 * once, their attempt not counted. */
static void
test_stop_gives_back_prefetched (void)
{
   bson_oid_t first, longer, ahead[4];
   pid_t worker;
   int status;

   /* One run of a 1 s sleep makes its estimate; then, while a longer one
    * runs, the 1 s ones that would start within the horizon are held. */
   first = mt_test_enqueue ("q", "sleep", "{'seconds': 1}", NULL);
   worker = mt_test_worker (
      W ("--queues", "q", "--concurrency", "1", "--poll-interval", "0.2", "--prefetch-ms", "5000", "--grace", "1"));
   WAIT_UNTIL (mt_test_status_is (&first, "FINISHED"), 20000);
   longer = mt_test_enqueue ("q", "sleep", "{'seconds': 30}", NULL);
   for (int i = 0; i < 4; i++) {
      ahead[i] = mt_test_enqueue ("q", "sleep", "{'seconds': 1}", NULL);
   }
   WAIT_UNTIL (mt_test_status_is (&longer, "WORK_IN_PROGRESS"), 5000);
   WAIT_UNTIL (mt_test_count ("{'status': 'WORK_IN_PROGRESS'}") >= 3, 3000);

   kill (worker, SIGTERM);
   status = mt_test_wait_exit (worker, 30000);
   ASSERT_CMPINT (mt_test_exit_code (status), ==, 0);
   for (int i = 0; i < 4; i++) {
      bson_t *doc = mt_test_task (&ahead[i]);

      ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
      ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 0);
      ASSERT (mt_test_is_null (doc, "worker_pid") || !mt_test_has (doc, "worker_pid"));
      bson_destroy (doc);
   }
   ASSERT (mt_test_status_is (&longer, "CREATED"));
}

/* How many claims (findAndModify, or a batch claim's find) on this test's
 * tasks are in `log`. */
static int
claims_in (const bson_t *log)
{
   bson_iter_t iter;
   int n = 0;

   ASSERT (bson_iter_init (&iter, log));
   while (bson_iter_next (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t entry;
      const char *db, *command, *collection;

      bson_iter_document (&iter, &len, &data);
      ASSERT (bson_init_static (&entry, data, len));
      db = mt_test_str (&entry, "db");
      command = mt_test_str (&entry, "command");
      collection = mt_test_has (&entry, "collection") ? mt_test_str (&entry, "collection") : NULL;
      if (db && !strcmp (db, mt_test_db ()) && collection && !strcmp (collection, "tasks") &&
          (!strcmp (command, "findAndModify") || !strcmp (command, "findandmodify"))) {
         n++;
      }
   }
   return n;
}

/* An idle worker of 8 threads sends about one claim per poll interval,
 * not one per thread. */
static void
test_one_poll_per_process (void)
{
   pid_t worker = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "8", "--poll-interval", "0.5", "--wake", "poll"));
   bson_t *log;
   int claims;

   /* Past the quick looks right after the start. */
   mt_test_nap_ms (1500);
   mt_test_command_log_clear ();
   mt_test_nap_ms (3000);
   log = mt_test_command_log ("mtask-worker");
   claims = claims_in (log);
   bson_destroy (log);
   mt_test_worker_stop (worker);
   printf ("# an idle worker of 8 threads sent %d claims in 3 s at a poll interval of 0.5 s\n", claims);
   ASSERT_CMPINT (claims, >=, 3);
   ASSERT_CMPINT (claims, <=, 8);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/dispatch/short_not_behind_long", test_short_not_behind_long);
   mt_test_add ("/dispatch/late_worker_gets_backlog", test_late_worker_gets_backlog);
   mt_test_add ("/dispatch/change_stream_wakeup", test_change_stream_wakeup);
   mt_test_add ("/dispatch/no_stream_polls", test_no_stream_polls);
   mt_test_add ("/dispatch/stream_broken_falls_back", test_stream_broken_falls_back);
   mt_test_add ("/dispatch/stop_gives_back_prefetched", test_stop_gives_back_prefetched);
   mt_test_add ("/dispatch/one_poll_per_process", test_one_poll_per_process);
   return mt_test_main (argc, argv);
}
