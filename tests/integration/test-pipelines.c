/* Pipelines against a real server and real workers: seed 000's
 * synchronizers and seed 003's staged groups. */
#include "mt-test.h"
#include "mtask-private.h"


/* Min or max of a date field over the tasks matching `json`. */
static int64_t
task_time (const char *json, const char *field, bool max)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_t *filter = mt_test_bson (json);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, filter, NULL, NULL);
   const bson_t *doc;
   int64_t best = max ? INT64_MIN : INT64_MAX;

   while (mongoc_cursor_next (cursor, &doc)) {
      int64_t t = mt_test_date (doc, field);
      best = max ? BSON_MAX (best, t) : BSON_MIN (best, t);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   mongoc_collection_destroy (tasks);
   return best;
}

/* ---- synchronizers (seed 000) ------------------------------------------ */

static void
test_seed_000_example (void)
{
   /* As the seed writes it: 3 -> 2 -> 1, stage_3 and stage_2 both named
    * 'stage 2'; stages 1 and 2 close the tasks their callables open. */
   bson_oid_t stage_1, stage_2, stage_3;
   bson_error_t error;
   mongoc_client_t *client = mt_test_client ();
   const char *db = mt_test_db ();
   pid_t pid;
   bson_t *sync;

   ASSERT_OR_PRINT (mt_sync_stage_create (client, db, "stage 1", "a_callable", "other_queue", "a_task", NULL, NULL, &stage_1, &error), error);
   ASSERT_OR_PRINT (mt_sync_stage_create (client, db, "stage 2", "other_callable", "other_queue", "other_task", &stage_1, NULL, &stage_2, &error), error);
   ASSERT_OR_PRINT (mt_sync_stage_create (client, db, "stage 2", "another_callable", "another_queue", NULL, &stage_2, NULL, &stage_3, &error), error);
   ASSERT_OR_PRINT (mt_sync_create (client, db, "process", &stage_3, &error), error);

   pid = mt_test_worker_ready (W ("--queues", "other_queue", "another_queue", "--concurrency", "2", "--lease", "3", "--poll-interval", "0.05"));
   ASSERT_OR_PRINT (mt_sync_begin_stage (client, db, "process", NULL, &error), error); /* begin_stage() */
   ASSERT (!mt_sync_begin_stage (client, db, "process", NULL, &error));              /* not twice */
   ASSERT_CONTAINS (error.message, "running already");

   WAIT_UNTIL (mt_test_count_in ("synchronizers", "{'_id': 'process', 'status': 'stand_by', 'finished': {'$exists': true}}") == 1, 60000);
   sync = mt_test_find_one ("synchronizers", "{'_id': 'process'}");
   ASSERT (mt_test_is_null (sync, "actual_stage"));
   bson_destroy (sync);

   /* Each callable ran once, in order, each after the previous stage's
    * queue had drained. */
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'type': 'another_callable', 'status': 'FINISHED'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'type': 'other_callable', 'status': 'FINISHED'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'type': 'a_callable', 'status': 'FINISHED'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'type': 'sleep', 'status': 'FINISHED'}"), ==, 9);
   ASSERT_CMPINT (task_time ("{'type': 'other_callable'}", "started", false), >=,
                  task_time ("{'queue': 'another_queue'}", "finished", true));
   {
      /* Stage 1 shares its queue with stage 2: its callable starts after
       * the last of stage 2's work finished. */
      int64_t a_created = task_time ("{'type': 'a_callable'}", "created", false);
      char *json = bson_strdup_printf ("{'queue': 'other_queue', 'type': 'sleep', 'created': {'$lt': {'$date': {'$numberLong': '%" PRId64 "'}}}}", a_created);

      ASSERT_CMPINT (mt_test_count (json), ==, 3);
      ASSERT_CMPINT (task_time ("{'type': 'a_callable'}", "started", false), >=, task_time (json, "finished", true));
      bson_free (json);
   }
   /* The running tasks the stages close. */
   {
      bson_t *closed = mt_test_find_one ("tasks", "{'type': 'a_task'}");
      ASSERT_CMPSTR (mt_test_str (closed, "status"), "FINISHED");
      ASSERT_CMPSTR (mt_test_str (closed, "status_message"), "closed by its synchronizer stage");
      bson_destroy (closed);
      closed = mt_test_find_one ("tasks", "{'type': 'other_task'}");
      ASSERT_CMPSTR (mt_test_str (closed, "status"), "FINISHED");
      bson_destroy (closed);
   }
   mt_test_worker_stop (pid);
}

static void
test_start_requested_begins_at_tick (void)
{
   /* The seed's start_synchros, done by the workers: a start request is
    * begun at the next upkeep tick, by exactly one worker. */
   bson_oid_t only;
   bson_error_t error;
   mongoc_client_t *client = mt_test_client ();
   pid_t a, b;

   ASSERT_OR_PRINT (mt_sync_stage_create (client, mt_test_db (), "only", "another_callable", "q1", NULL, NULL, NULL, &only, &error), error);
   ASSERT_OR_PRINT (mt_sync_create (client, mt_test_db (), "nightly", &only, &error), error);
   ASSERT (!mt_sync_create (client, mt_test_db (), "nightly", &only, &error));
   ASSERT_CONTAINS (error.message, "exists already");
   a = mt_test_worker_ready (W ("--queues", "q1", "--lease", "3", "--poll-interval", "0.05"));
   b = mt_test_worker_ready (W ("--queues", "q1", "--lease", "3", "--poll-interval", "0.05"));
   ASSERT_OR_PRINT (mt_sync_request_start (client, mt_test_db (), "nightly", &error), error);
   ASSERT (!mt_sync_request_start (client, mt_test_db (), "weekly", &error));
   ASSERT_CMPINT (error.code, ==, MT_CONFIG_ERROR_NOT_FOUND);
   WAIT_UNTIL (mt_test_count_in ("synchronizers", "{'_id': 'nightly', 'status': 'stand_by', 'finished': {'$exists': true}}") == 1, 60000);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'type': 'another_callable'}"), ==, 1); /* begun once */
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'type': 'sleep', 'status': 'FINISHED'}"), ==, 3);
   mt_test_worker_stop (a);
   mt_test_worker_stop (b);
}

/* ---- staged groups (seed 003) ------------------------------------------ */

/* Params for a probe that waits at the test's gate `name`. */
static char *
gated (const char *name)
{
   return bson_strdup_printf ("{'gate': '%s'}", mt_test_gate (name));
}

static char *
group_json (const bson_oid_t *group, const char *rest)
{
   char hex[25];

   bson_oid_to_string (group, hex);
   return bson_strdup_printf ("{'group': {'$oid': '%s'}%s%s}", hex, rest[0] ? ", " : "", rest);
}

static void
test_waiting_not_claimed (void)
{
   bson_oid_t group = mt_test_group_new ("not started", 0);
   char *waiting = group_json (&group, "'status': 'WAITING'");
   pid_t pid;

   mt_test_group_add (&group, 1, "echo", "{}", NULL);
   mt_test_group_add (&group, 2, "echo", "{}", NULL);
   pid = mt_test_worker_ready (W ("--queues", "q", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT_CMPINT (mt_test_count (waiting), ==, 2);
   bson_free (waiting);
}

static void
test_three_stages_with_retries (void)
{
   /* 3 stages of 50 tasks, one in ten failing its first attempt, 3 workers
    * of 4 threads: no task of stage N+1 starts before the last task of
    * stage N ends, failed attempts and retries included. Kept, to look. */
   bson_oid_t group = mt_test_group_new ("three stages", 3600);
   pid_t pids[3];
   bson_error_t error;
   char hex[25], *json;

   for (int stage = 1; stage <= 3; stage++) {
      for (int i = 0; i < 50; i++) {
         char params[128];

         bson_snprintf (params, sizeof params, "{'ms': 20, 'tag': %d, 'fail_first': %s}", stage, i % 10 == 3 ? "true" : "false");
         mt_test_group_add (&group, stage, "record", params, "{'max_attempts': 3}");
      }
   }
   for (int i = 0; i < 3; i++) {
      pids[i] = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "4", "--lease", "3", "--retry-backoff", "0.2", "--poll-interval", "0.05"));
   }
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   bson_oid_to_string (&group, hex);
   json = bson_strdup_printf ("{'_id': {'$oid': '%s'}, 'status': 'complete'}", hex);
   WAIT_UNTIL (mt_test_count_in ("groups", "%s", json) == 1, 120000);
   bson_free (json);

   /* Every attempt, failed or not, of stage N ended before any of N+1. */
   for (int stage = 1; stage < 3; stage++) {
      mongoc_collection_t *executions = mt_test_collection ("executions");
      int64_t last_end = 0, first_start = INT64_MAX;
      mongoc_cursor_t *cursor;
      const bson_t *doc;
      bson_t *all = mt_test_bson ("{}");

      cursor = mongoc_collection_find_with_opts (executions, all, NULL, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         int64_t tag = mt_test_int (doc, "tag");
         if (tag == stage) {
            last_end = BSON_MAX (last_end, mt_test_date (doc, "ended"));
         } else if (tag == stage + 1) {
            first_start = BSON_MIN (first_start, mt_test_date (doc, "started"));
         }
      }
      mongoc_cursor_destroy (cursor);
      bson_destroy (all);
      mongoc_collection_destroy (executions);
      ASSERT_CMPINT (first_start, >=, last_end);
   }
   ASSERT_CMPINT (mt_test_count_in ("executions", "{}"), ==, 150 + 15);     /* 15 first attempts failed */
   ASSERT_CMPINT (mt_test_count_in ("executions", "{'ok': true}"), ==, 150); /* and each task succeeded once */
   json = group_json (&group, "'status': 'FINISHED'");
   ASSERT_CMPINT (mt_test_count (json), ==, 150);
   bson_free (json);
   json = group_json (&group, "'status': 'complete', 'total': 50, 'done': 50, 'started': {'$exists': true}");
   ASSERT_CMPINT (mt_test_count_in ("group_stages", "%s", json), ==, 3);
   bson_free (json);
   for (int i = 0; i < 3; i++) {
      mt_test_worker_stop (pids[i]);
   }
}

static void
test_cleaned_up_at_end (void)
{
   bson_oid_t group = mt_test_group_new ("cleaned", 0);
   char *json = group_json (&group, "");
   bson_error_t error;
   pid_t pid;

   for (int stage = 1; stage <= 2; stage++) {
      for (int i = 0; i < 5; i++) {
         mt_test_group_add (&group, stage, "echo", "{}", NULL);
      }
   }
   pid = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "2", "--poll-interval", "0.05"));
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   WAIT_UNTIL (mt_test_count_in ("groups", "{}") == 0, 60000);
   ASSERT_CMPINT (mt_test_count_in ("group_stages", "%s", json), ==, 0);
   ASSERT_CMPINT (mt_test_count (json), ==, 0);
   bson_free (json);
   mt_test_worker_stop (pid);
}

static void
test_kept_then_deleted (void)
{
   /* Kept for an hour once complete: still there, tasks and all, after
    * two more upkeep ticks; deleted by the first tick after its
    * keep_until, brought forward by hand to say "the hour is up". */
   bson_oid_t group = mt_test_group_new ("kept", 3600);
   bson_error_t error;
   int64_t ticks;
   pid_t pid;
   char hex[25], *json;
   bson_t *doc;

   mt_test_group_add (&group, 1, "echo", "{}", NULL);
   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "3", "--poll-interval", "0.05"));
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   bson_oid_to_string (&group, hex);
   json = bson_strdup_printf ("{'_id': {'$oid': '%s'}, 'status': 'complete', 'keep_until': {'$exists': true}}", hex);
   WAIT_UNTIL (mt_test_count_in ("groups", "%s", json) == 1, 30000);
   bson_free (json);
   doc = mt_test_find_one ("groups", "{'_id': {'$oid': '%s'}}", hex);
   ASSERT_CMPINT (mt_test_date (doc, "keep_until") - mt_test_date (doc, "completed"), >=, 3600 * 1000);
   ASSERT_CMPINT (mt_test_date (doc, "keep_until") - mt_test_date (doc, "completed"), <, 3600 * 1000 + 5000);
   bson_destroy (doc);
   ticks = mt_test_upkeep_ticks ();
   WAIT_UNTIL (mt_test_upkeep_ticks () >= ticks + 2, 30000);
   json = group_json (&group, "'status': 'FINISHED'");
   ASSERT_CMPINT (mt_test_count (json), ==, 1); /* still there to look at */
   bson_free (json);
   ASSERT_CMPINT (mt_test_count_in ("groups", "{}"), ==, 1);

   /* The hour is up. */
   {
      mongoc_collection_t *groups = mt_test_collection ("groups");
      bson_t *filter = BCON_NEW ("_id", BCON_OID (&group));
      bson_t *update = BCON_NEW ("$set", "{", "keep_until", BCON_DATE_TIME (mt_now_ms () - 1000), "}");
      bool ok = mongoc_collection_update_one (groups, filter, update, NULL, NULL, &error);

      bson_destroy (update);
      bson_destroy (filter);
      mongoc_collection_destroy (groups);
      ASSERT_OR_PRINT (ok, error);
   }
   WAIT_UNTIL (mt_test_count_in ("groups", "{}") == 0, 30000); /* then gone */
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 0);
   ASSERT_CMPINT (mt_test_count_in ("group_stages", "{}"), ==, 0);
   mt_test_worker_stop (pid);
}

static void
test_enqueue_rules (void)
{
   bson_oid_t group = mt_test_group_new ("rules", 3600), missing, first, added, later;
   bson_error_t error;
   char hex[25], *params;
   bson_t *stage, *doc;
   pid_t pid;

   bson_oid_init (&missing, NULL);
   ASSERT (!mt_group_enqueue (mt_test_client (), mt_test_db (), &missing, 1, "q", "echo", NULL, NULL, NULL, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND, "no group");
   ASSERT (!mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 0, "q", "echo", NULL, NULL, NULL, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "stage numbers start at 1");
   params = gated ("first");
   first = mt_test_group_add (&group, 1, "probe", params, NULL);
   bson_free (params);
   later = mt_test_group_add (&group, 2, "echo", "{}", NULL);
   /* Two threads: one for the task added below while the first waits at
    * its gate. A lease of 600 s puts the upkeep ticks, which also release
    * what waits in a running stage, 200 s apart: only its enqueue can
    * make the added task run now. */
   pid = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "2", "--lease", "600", "--poll-interval", "0.05"));
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   WAIT_UNTIL (mt_test_status_is (&first, "WORK_IN_PROGRESS"), 20000);

   /* Added to the running stage: it runs at once, beside the first... */
   params = gated ("added");
   added = mt_test_group_add (&group, 1, "probe", params, NULL);
   bson_free (params);
   WAIT_UNTIL (mt_test_status_is (&added, "WORK_IN_PROGRESS"), 20000);
   ASSERT (mt_test_status_is (&first, "WORK_IN_PROGRESS"));
   ASSERT (mt_test_status_is (&later, "WAITING"));

   /* ...and the stage waits for it: the first ended and was counted, and
    * stage 1 still runs, stage 2 still waits. */
   mt_test_gate_open ("first");
   bson_oid_to_string (&group, hex);
   WAIT_UNTIL (mt_test_count_in ("group_stages", "{'group': {'$oid': '%s'}, 'number': 1, 'done': 1}", hex) == 1, 20000);
   stage = mt_test_find_one ("group_stages", "{'group': {'$oid': '%s'}, 'number': 1}", hex);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "running");
   ASSERT_CMPINT (mt_test_int (stage, "total"), ==, 2);
   bson_destroy (stage);
   ASSERT (mt_test_status_is (&first, "FINISHED"));
   ASSERT (mt_test_status_is (&added, "WORK_IN_PROGRESS"));
   ASSERT (mt_test_status_is (&later, "WAITING"));
   mt_test_gate_open ("added");
   WAIT_UNTIL (mt_test_count_in ("groups", "{'status': 'complete'}") == 1, 30000);
   doc = mt_test_task (&later);
   stage = mt_test_task (&added);
   ASSERT_CMPINT (mt_test_date (doc, "started"), >=, mt_test_date (stage, "finished"));
   bson_destroy (stage);
   bson_destroy (doc);
   ASSERT (!mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 3, "q", "echo", NULL, NULL, NULL, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_STATE, "is complete");
   mt_test_worker_stop (pid);

   /* A stage before one that has started would run out of order. */
   group = mt_test_group_new ("order", 3600);
   mt_test_group_add (&group, 2, "probe", "{'sleep_ms': 5000}", NULL);
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   ASSERT (!mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 1, "q", "echo", NULL, NULL, NULL, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_STATE, "stage 1 would run out of order");
   mt_test_group_add (&group, 3, "echo", "{}", NULL); /* later stages are fine */
}

static void
test_orphans_repaired (void)
{
   bson_oid_t group = mt_test_group_new ("orphaned", 0);
   char *json = group_json (&group, "");
   bson_error_t error;
   pid_t pid;

   mt_test_group_add (&group, 1, "echo", "{}", NULL);
   mt_test_group_add (&group, 2, "echo", "{}", NULL);
   mt_test_group_add (&group, 2, "echo", "{}", NULL);
   /* Lose the group and stage documents. */
   {
      mongoc_collection_t *groups = mt_test_collection ("groups"), *stages = mt_test_collection ("group_stages");
      bson_t all = BSON_INITIALIZER;
      ASSERT_OR_PRINT (mongoc_collection_delete_many (groups, &all, NULL, NULL, &error), error);
      ASSERT_OR_PRINT (mongoc_collection_delete_many (stages, &all, NULL, NULL, &error), error);
      mongoc_collection_destroy (groups);
      mongoc_collection_destroy (stages);
   }
   ASSERT_CMPINT (mt_groups_clean (mt_test_client (), mt_test_db (), false, &error), ==, 2);
   ASSERT_CMPINT (mt_test_count_in ("groups", "{'description': '(recovered by the cleaner)'}"), ==, 1);
   pid = mt_test_worker_ready (W ("--queues", "q", "--poll-interval", "0.05"));
   /* Ran to the end and cleaned up: the tasks go first, then the stages,
    * then the group, so wait for the last of them. */
   WAIT_UNTIL (mt_test_count (json) == 0 && mt_test_count_in ("groups", "{}") == 0, 30000);
   ASSERT_CMPINT (mt_test_count_in ("group_stages", "{}"), ==, 0);
   mt_test_worker_stop (pid);

   /* And the purge. */
   group = mt_test_group_new ("purged", 0);
   mt_test_group_add (&group, 1, "echo", "{}", NULL);
   ASSERT_CMPINT (mt_groups_clean (mt_test_client (), mt_test_db (), true, &error), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("groups", "{}") + mt_test_count_in ("group_stages", "{}") + mt_test_count ("{}"), ==, 0);
   bson_free (json);
}

static void
test_worker_killed_mid_stage (void)
{
   /* A worker killed in the middle of a stage: the group goes on once the
    * lease (2 s) is over, not later. */
   bson_oid_t group = mt_test_group_new ("killed", 0);
   bson_error_t error;
   pid_t first, second;
   int64_t killed_at;
   char *running;

   for (int i = 0; i < 6; i++) {
      mt_test_group_add (&group, 1, "probe", "{'sleep_ms': 1500}", NULL);
   }
   mt_test_group_add (&group, 2, "echo", "{}", NULL);
   first = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "3", "--lease", "2", "--pid", "W-KILLED", "--poll-interval", "0.05"));
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   running = group_json (&group, "'status': 'WORK_IN_PROGRESS'");
   WAIT_UNTIL (mt_test_count (running) == 3, 20000);
   bson_free (running);
   mt_test_process_kill (first);
   killed_at = bson_get_monotonic_time ();
   second = mt_test_worker_ready (W ("--queues", "q", "--concurrency", "3", "--lease", "2", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count_in ("groups", "{}") == 0, 60000);
   /* Lease 2 s, then at most 6 tasks of 1.5 s on 3 threads, plus ticks. */
   ASSERT_CMPINT ((bson_get_monotonic_time () - killed_at) / 1000, <, 15000);
   mt_test_worker_stop (second);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/sync/seed_000_example", test_seed_000_example);
   mt_test_add ("/sync/start_requested_begins_at_tick", test_start_requested_begins_at_tick);
   mt_test_add ("/groups/waiting_not_claimed", test_waiting_not_claimed);
   mt_test_add ("/groups/three_stages_of_50_with_retries", test_three_stages_with_retries);
   mt_test_add ("/groups/cleaned_up_at_end", test_cleaned_up_at_end);
   mt_test_add ("/groups/kept_then_deleted", test_kept_then_deleted);
   mt_test_add ("/groups/enqueue_rules", test_enqueue_rules);
   mt_test_add ("/groups/orphans_repaired", test_orphans_repaired);
   mt_test_add ("/groups/worker_killed_mid_stage", test_worker_killed_mid_stage);
   return mt_test_main (argc, argv);
}
