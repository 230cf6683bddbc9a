/* Races that a server applying one write at a time never shows, made to
 * happen: a worker paused at a named point between a read and the write
 * that acts on it (MTASK_FAILPOINT_PAUSE, core/src/failpoint.c) while the
 * test lands another write in between. Then what a slow upkeep must not
 * delay (lease renewals), the archive past a document it cannot move, and
 * the stage count that a marker on each task keeps to one per task. */
#include "mt-test.h"
#include "mtask-private.h"

#include <signal.h>

static char *
oid_hex (const bson_oid_t *id)
{
   char hex[25];

   bson_oid_to_string (id, hex);
   return bson_strdup (hex);
}

static bson_t *
stage_doc (const bson_oid_t *group, int32_t number)
{
   char *hex = oid_hex (group);
   bson_t *doc = mt_test_find_one ("group_stages", "{'group': {'$oid': '%s'}, 'number': %d}", hex, (int) number);

   bson_free (hex);
   return doc;
}

static char *
stage_status (const bson_oid_t *group, int32_t number)
{
   bson_t *doc = stage_doc (group, number);
   char *status = bson_strdup (mt_test_str (doc, "status"));

   bson_destroy (doc);
   return status;
}

static bool
stage_is (const bson_oid_t *group, int32_t number, const char *status)
{
   char *hex = oid_hex (group);
   int64_t n = mt_test_count_in ("group_stages", "{'group': {'$oid': '%s'}, 'number': %d, 'status': '%s'}", hex, (int) number, status);

   bson_free (hex);
   return n == 1;
}

/* A probe task that waits at the test's gate `gate` (params), on queue q. */
static bson_oid_t
gated_task (const char *gate, const char *extra_json)
{
   char *json = bson_strdup_printf ("{'queue': 'q', 'type': 'probe', 'status': 'CREATED', 'priority': 0, 'attempts': 0, "
                                    "'params': {'gate': '%s'}%s%s}",
                                    mt_test_gate (gate),
                                    extra_json ? ", " : "",
                                    extra_json ? extra_json : "");
   bson_oid_t id = mt_test_task_insert (json);

   bson_free (json);
   return id;
}

static bool
running_by (const bson_oid_t *id, const char *worker)
{
   char *hex = oid_hex (id);
   int64_t n = mt_test_count_in ("tasks", "{'_id': {'$oid': '%s'}, 'status': 'WORK_IN_PROGRESS', 'worker_pid': '%s'}", hex, worker);

   bson_free (hex);
   return n == 1;
}

/* How often `needle` occurs in the process's output. */
static int
occurrences (pid_t pid, const char *needle)
{
   char *out = mt_test_output (pid);
   int n = 0;

   for (const char *p = out; p && (p = strstr (p, needle)); p += strlen (needle)) {
      n++;
   }
   bson_free (out);
   return n;
}

/* ---- 7a: a keepalive between the slot timeout's read and its write ----- */

static void
test_slot_keepalive_between_read_and_write (void)
{
   const char *env = mt_test_pause_env ("slot-timeout-read");
   bson_error_t error;
   bson_oid_t task;
   bson_t *doc;
   int64_t ticks;
   pid_t pid;

   /* One slot, 4 s without a keepalive and its holder times out. */
   ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "p", 1, 4.0, &error), error);
   task = gated_task ("run", "'pool': 'p'");
   pid = mt_test_worker_pausing (env, W ("--queues", "q", "--pid", "w1", "--lease", "3", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_count_in ("slots", "{'_id': 'p#0', 'worker_pid': 'w1'}") == 1, 20000);

   /* The upkeep read the slot as timed out, and waits before its write. */
   mt_test_pause_wait ("slot-timeout-read", 30000);
   ASSERT (running_by (&task, "w1"));
   /* The keepalive the task's plugin sends: it lands between the two. */
   ASSERT_OR_PRINT (mt_slot_keepalive (mt_test_client (), mt_test_db (), &task, &error), error);
   ticks = mt_test_upkeep_ticks ();
   mt_test_pause_release ("slot-timeout-read");
   mt_test_pause_wait_passed ("slot-timeout-read", 20000);
   /* The tick that read it has ended (the next one began). */
   WAIT_UNTIL (mt_test_upkeep_ticks () > ticks, 20000);

   /* The live task was not failed and keeps its slot. */
   doc = mt_test_task (&task);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (!mt_test_has (doc, "error"));
   bson_destroy (doc);
   {
      char *hex = oid_hex (&task);

      ASSERT_CMPINT (mt_test_count_in ("slots", "{'_id': 'p#0', 'task': {'$oid': '%s'}, 'attempt': 1}", hex), ==, 1);
      bson_free (hex);
   }
   ASSERT_CMPINT (mt_test_count_in ("slots", "{'timed_out': {'$exists': true}}"), ==, 0);

   /* It ends as its plugin says, its one attempt. */
   mt_test_gate_open ("run");
   WAIT_UNTIL (mt_test_status_is (&task, "FINISHED"), 20000);
   mt_test_worker_stop (pid);
   doc = mt_test_task (&task);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (!mt_test_has (doc, "error"));
   bson_destroy (doc);
   ASSERT (!mt_test_output_contains (pid, "timed out"));
}

/* A worker that took a timed-out slot and died before it failed the run
 * leaves the slot's `timed_out`: the upkeep tick fails that run. */
static void
test_slot_timed_out_record_finished (void)
{
   bson_t *doc;
   bson_oid_t task;
   bson_error_t error;
   mt_context_t ctx;
   char *hex;

   ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "p", 1, 1.0, &error), error);
   task = mt_test_task_insert ("{'queue': 'q', 'type': 'echo', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'gone', 'attempts': 1,"
                               " 'max_attempts': 3, 'pool': 'p'}");
   hex = oid_hex (&task);
   /* The slot was taken from that run (now free), which was not failed. */
   {
      mongoc_collection_t *slots = mt_test_collection ("slots");
      bson_t *filter = mt_test_bson ("{'_id': 'p#0'}");
      char *json = bson_strdup_printf ("{'$set': {'timed_out': {'task': {'$oid': '%s'}, 'worker_pid': 'gone', 'attempt': 1,"
                                       " 'timeout': 1.0}}}",
                                       hex);
      bson_t *update = mt_test_bson (json);

      ASSERT_OR_PRINT (mongoc_collection_update_one (slots, filter, update, NULL, NULL, &error), error);
      bson_destroy (update);
      bson_free (json);
      bson_destroy (filter);
      mongoc_collection_destroy (slots);
   }
   mt_context_init (&ctx);
   ctx.db = bson_strdup (mt_test_db ());
   ctx.worker_id = bson_strdup ("upkeeper");
   ASSERT_OR_PRINT (mt_slots_upkeep (&ctx, mt_test_client (), &error), error);
   mt_context_cleanup (&ctx);

   doc = mt_test_task (&task);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_TIMEOUT);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("slots", "{'timed_out': {'$exists': true}}"), ==, 0);
   bson_free (hex);
}

/* ---- 7b: an enqueue between the stage count and its completion --------- */

static void
test_group_enqueue_races_completion (void)
{
   const char *env = mt_test_pause_env ("stage-counted");
   bson_oid_t group = mt_test_group_new ("a race", 3600), first, late, next;
   bson_error_t error;
   bson_t *stage, *doc;
   char *json;
   pid_t pid;

   first = mt_test_group_add (&group, 1, "probe", "{}", NULL);
   next = mt_test_group_add (&group, 2, "probe", "{}", NULL);
   /* A long lease: the upkeep tick, which could complete the stage on its
    * own, has its first turn before the group starts and its next long
    * after the test. */
   pid = mt_test_worker_pausing (env, W ("--queues", "q", "--lease", "60", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_upkeep_tick_over (), 20000);
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);

   /* `first` ended and was counted: 1 of 1. The worker waits before the
    * completion's write; an enqueue lands in between. */
   mt_test_pause_wait ("stage-counted", 30000);
   ASSERT (mt_test_status_is (&first, "FINISHED"));
   json = bson_strdup_printf ("{'gate': '%s'}", mt_test_gate ("late"));
   late = mt_test_group_add (&group, 1, "probe", json, NULL);
   bson_free (json);
   mt_test_pause_release ("stage-counted");
   mt_test_pause_wait_passed ("stage-counted", 20000);

   /* The stage does not complete while it has a live task. */
   WAIT_UNTIL (mt_test_status_is (&late, "WORK_IN_PROGRESS"), 20000);
   {
      char *status = stage_status (&group, 1);

      ASSERT_CMPSTR (status, "running");
      bson_free (status);
   }
   ASSERT (mt_test_status_is (&next, "WAITING"));

   /* It completes after that task ends, and the next stage runs. */
   mt_test_gate_open ("late");
   WAIT_UNTIL (mt_test_status_is (&next, "FINISHED"), 30000);
   mt_test_worker_stop (pid);
   stage = stage_doc (&group, 1);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "complete");
   ASSERT_CMPINT (mt_test_int (stage, "total"), ==, 2);
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 2);
   doc = mt_test_task (&late);
   ASSERT_CMPINT (mt_test_date (stage, "completed"), >=, mt_test_date (doc, "finished"));
   bson_destroy (doc);
   doc = mt_test_task (&next);
   ASSERT_CMPINT (mt_test_date (doc, "started"), >=, mt_test_date (stage, "completed"));
   bson_destroy (doc);
   bson_destroy (stage);
}

/* ---- 7b: synchronizers: a check that read the queue before the stage began again */

static void
test_sync_check_races_restart (void)
{
   const char *env = mt_test_pause_env ("sync-drained");
   bson_error_t error;
   bson_oid_t stage, first_task, second_task;
   bson_t *sync;
   bool advanced = false;
   int64_t ticks;
   pid_t pid;

   ASSERT_OR_PRINT (mt_sync_stage_create (mt_test_client (), mt_test_db (), "only", "echo", "syncq", NULL, NULL, NULL, &stage, &error),
                    error);
   ASSERT_OR_PRINT (mt_sync_create (mt_test_client (), mt_test_db (), "s1", &stage, &error), error);
   ASSERT_OR_PRINT (mt_sync_begin_stage (mt_test_client (), mt_test_db (), "s1", NULL, &error), error);
   sync = mt_test_find_one ("synchronizers", "{'_id': 's1'}");
   ASSERT (mt_test_has (sync, "stage_task"));
   {
      bson_iter_t iter;

      ASSERT (bson_iter_init_find (&iter, sync, "stage_task") && BSON_ITER_HOLDS_OID (&iter));
      bson_oid_copy (bson_iter_oid (&iter), &first_task);
   }
   bson_destroy (sync);
   /* Its callable ran (on a queue no worker here serves: by hand). */
   mt_test_task_set (&first_task, "{'status': 'FINISHED'}");

   /* A worker's upkeep finds the queue drained, and waits before it moves
    * the synchronizer on. */
   pid = mt_test_worker_pausing (env, W ("--queues", "other", "--lease", "3", "--poll-interval", "0.05"));
   mt_test_pause_wait ("sync-drained", 30000);

   /* Meanwhile another check moves it on (stand-by: its only stage is
    * done), and it begins again: a new callable waits on the queue. */
   ASSERT_OR_PRINT (mt_sync_check_completion (mt_test_client (), mt_test_db (), "s1", &advanced, &error), error);
   ASSERT (advanced);
   ASSERT_OR_PRINT (mt_sync_begin_stage (mt_test_client (), mt_test_db (), "s1", NULL, &error), error);
   sync = mt_test_find_one ("synchronizers", "{'_id': 's1'}");
   {
      bson_iter_t iter;

      ASSERT (bson_iter_init_find (&iter, sync, "stage_task") && BSON_ITER_HOLDS_OID (&iter));
      bson_oid_copy (bson_iter_oid (&iter), &second_task);
   }
   bson_destroy (sync);
   ASSERT (mt_test_status_is (&second_task, "CREATED"));

   ticks = mt_test_upkeep_ticks ();
   mt_test_pause_release ("sync-drained");
   mt_test_pause_wait_passed ("sync-drained", 20000);
   WAIT_UNTIL (mt_test_upkeep_ticks () > ticks, 20000);
   mt_test_worker_stop (pid);

   /* The stale check moved nothing: the stage runs, its callable waits. */
   sync = mt_test_find_one ("synchronizers", "{'_id': 's1'}");
   ASSERT_CMPSTR (mt_test_str (sync, "status"), "running");
   {
      bson_iter_t iter;

      ASSERT (bson_iter_init_find (&iter, sync, "stage_task") && BSON_ITER_HOLDS_OID (&iter));
      ASSERT (bson_oid_equal (bson_iter_oid (&iter), &second_task));
   }
   bson_destroy (sync);
   ASSERT (mt_test_status_is (&second_task, "CREATED"));
}

/* ---- 8: leases that a slow upkeep cannot delay -------------------------- */

static void
test_leases_renewed_while_upkeep_is_slow (void)
{
   const char *env = mt_test_pause_env ("archive-sweep");
   bson_oid_t task = gated_task ("run", NULL);
   bson_t *doc;
   int64_t first;
   pid_t w1, w2;

   /* w1 runs the task; its upkeep thread stops in its first archive sweep
    * and stays there for more than three leases. */
   w1 = mt_test_worker_pausing (env, W ("--queues", "q", "--pid", "w1", "--lease", "2", "--archive", "--poll-interval", "0.05"));
   WAIT_UNTIL (running_by (&task, "w1"), 20000);
   mt_test_pause_wait ("archive-sweep", 20000);
   /* w2 would take the task back if its lease ran out. */
   w2 = mt_test_worker_ready (W ("--queues", "q", "--pid", "w2", "--lease", "2", "--poll-interval", "0.05"));
   doc = mt_test_task (&task);
   first = mt_test_date (doc, "heartbeat");
   bson_destroy (doc);
   {
      /* The lease keeps moving: renewed every lease/3, over three leases. */
      int64_t deadline = bson_get_monotonic_time () + 30 * 1000 * 1000;

      for (;;) {
         doc = mt_test_task (&task);
         ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
         ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), "w1");
         ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
         if (mt_test_date (doc, "heartbeat") >= first + 6000) {
            bson_destroy (doc);
            break;
         }
         bson_destroy (doc);
         ASSERT_BEFORE (deadline, "the task's heartbeat to move 6 s on while w1's upkeep is held");
         mt_test_nap_ms (100);
      }
   }
   ASSERT (mt_test_pause_reached ("archive-sweep"));

   mt_test_pause_release ("archive-sweep");
   mt_test_gate_open ("run");
   WAIT_UNTIL (mt_test_count_in ("completed_tasks", "{'status': 'FINISHED'}") == 1, 20000);
   mt_test_worker_stop (w2);
   mt_test_worker_stop (w1);
   /* Ran once, by w1, and nobody took it back. */
   doc = mt_test_find_one ("completed_tasks", "{}");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT (!mt_test_has (doc, "error"));
   bson_destroy (doc);
   ASSERT (!mt_test_output_contains (w2, "was lost"));
   ASSERT (!mt_test_output_contains (w1, "was lost"));
}

/* ---- 10b: the archive goes past a document it cannot move -------------- */

static void
test_archive_skips_what_it_cannot_move (void)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_t *opts = BCON_NEW ("validate", BCON_BOOL (false));
   bson_oid_t ids[5];
   bson_error_t error;
   bson_t *doc;
   int64_t ticks;
   pid_t pid;

   /* First in the collection, two tasks other clients wrote with field
    * names the driver refuses to send in a replacement, so that neither
    * can ever be copied into the archive as it is: an empty name (which
    * can be marked), and a top-level name starting with '$' (which this
    * server also refuses to update: passed over). After them, three
    * ordinary ones. */
   for (int i = 0; i < 5; i++) {
      bson_oid_init (&ids[i], NULL);
      doc = BCON_NEW ("_id", BCON_OID (&ids[i]), "queue", "q", "type", "echo", "status", "FINISHED", "attempts", BCON_INT32 (1),
                      "finished", BCON_DATE_TIME (mt_now_ms ()));
      if (i == 0) {
         BSON_APPEND_UTF8 (doc, "", "an empty field name");
      } else if (i == 1) {
         BSON_APPEND_UTF8 (doc, "$note", "written by another client");
      }
      ASSERT_OR_PRINT (mongoc_collection_insert_one (tasks, doc, opts, NULL, &error), error);
      bson_destroy (doc);
   }
   mongoc_collection_destroy (tasks);
   bson_destroy (opts);

   pid = mt_test_worker_ready (W ("--queues", "q", "--archive", "--lease", "1.5", "--poll-interval", "0.05"));
   /* The three after them are moved. */
   WAIT_UNTIL (mt_test_count_in ("completed_tasks", "{}") == 3, 20000);
   /* The two it cannot move stay; each is said once, however many sweeps
    * pass. */
   ticks = mt_test_upkeep_ticks ();
   WAIT_UNTIL (mt_test_upkeep_ticks () >= ticks + 3, 20000);
   mt_test_worker_stop (pid);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 2);
   doc = mt_test_task (&ids[0]);
   ASSERT_CONTAINS (mt_test_str (doc, "archive_error.message"), "empty key");
   bson_destroy (doc);
   doc = mt_test_task (&ids[1]);
   ASSERT (!mt_test_has (doc, "archive_error"));
   bson_destroy (doc);
   for (int i = 2; i < 5; i++) {
      char *hex = oid_hex (&ids[i]);

      ASSERT_CMPINT (mt_test_count_in ("completed_tasks", "{'_id': {'$oid': '%s'}}", hex), ==, 1);
      bson_free (hex);
   }
   ASSERT_CMPINT (occurrences (pid, "cannot be archived"), ==, 2);
   ASSERT (mt_test_output_contains (pid, "marked with why in 'archive_error'"));
   ASSERT (mt_test_output_contains (pid, "this worker passes over it until it restarts"));
}

/* ---- 11: the stage count, one per task ---------------------------------- */

/* A task whose end is reported twice (its outcome retried, or counted by a
 * worker and by the upkeep tick) counts once: the stage does not complete
 * while its other task runs. */
static void
test_stage_counts_each_task_once (void)
{
   bson_oid_t group = mt_test_group_new ("twice", 3600), a, b;
   bson_value_t value = {.value_type = BSON_TYPE_OID};
   bson_error_t error;
   bson_t *stage;
   char *hex;

   a = mt_test_group_add (&group, 1, "echo", "{}", NULL);
   b = mt_test_group_add (&group, 1, "echo", "{}", NULL);
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   mt_test_task_set (&a, "{'status': 'FINISHED', 'worker_pid': null}");
   bson_oid_copy (&a, &value.value.v_oid);
   for (int i = 0; i < 3; i++) {
      ASSERT_OR_PRINT (mt_group_task_ended (mt_test_client (), mt_test_db (), &group, 1, &value, &error), error);
   }
   ASSERT_OR_PRINT (mt_groups_upkeep (mt_test_client (), mt_test_db (), mt_now_ms (), &error), error);

   stage = stage_doc (&group, 1);
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "running");
   ASSERT (!mt_test_has (stage, "done_ids"));
   bson_destroy (stage);
   hex = oid_hex (&a);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'_id': {'$oid': '%s'}, 'stage_counted': true}", hex), ==, 1);
   bson_free (hex);

   /* A task not ended is not counted, whoever says it ended. */
   bson_oid_copy (&b, &value.value.v_oid);
   ASSERT_OR_PRINT (mt_group_task_ended (mt_test_client (), mt_test_db (), &group, 1, &value, &error), error);
   ASSERT (stage_is (&group, 1, "running"));

   mt_test_task_set (&b, "{'status': 'FAILED', 'worker_pid': null}");
   ASSERT_OR_PRINT (mt_group_task_ended (mt_test_client (), mt_test_db (), &group, 1, &value, &error), error);
   stage = stage_doc (&group, 1);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "complete");
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 2);
   bson_destroy (stage);
}

/* A stage written before the marker (its done_ids list) keeps counting
 * right: a task it listed is not counted again. */
static void
test_stage_from_before_the_marker (void)
{
   bson_oid_t group = mt_test_group_new ("old", 3600), a, b;
   bson_value_t value = {.value_type = BSON_TYPE_OID};
   bson_error_t error;
   bson_t *stage;
   char *ghex = oid_hex (&group), *ahex;

   a = mt_test_group_add (&group, 1, "echo", "{}", NULL);
   b = mt_test_group_add (&group, 1, "echo", "{}", NULL);
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   ahex = oid_hex (&a);
   /* `a` ended and was counted the old way. */
   mt_test_task_set (&a, "{'status': 'FINISHED', 'worker_pid': null}");
   {
      mongoc_collection_t *stages = mt_test_collection ("group_stages");
      char *f = bson_strdup_printf ("{'group': {'$oid': '%s'}, 'number': 1}", ghex);
      char *u = bson_strdup_printf ("{'$set': {'done': 1, 'done_ids': [{'$oid': '%s'}]}}", ahex);
      bson_t *filter = mt_test_bson (f), *update = mt_test_bson (u);

      ASSERT_OR_PRINT (mongoc_collection_update_one (stages, filter, update, NULL, NULL, &error), error);
      bson_destroy (filter);
      bson_destroy (update);
      bson_free (f);
      bson_free (u);
      mongoc_collection_destroy (stages);
   }
   bson_oid_copy (&a, &value.value.v_oid);
   ASSERT_OR_PRINT (mt_group_task_ended (mt_test_client (), mt_test_db (), &group, 1, &value, &error), error);
   ASSERT_OR_PRINT (mt_groups_upkeep (mt_test_client (), mt_test_db (), mt_now_ms (), &error), error);
   stage = stage_doc (&group, 1);
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "running");
   bson_destroy (stage);

   mt_test_task_set (&b, "{'status': 'FINISHED', 'worker_pid': null}");
   bson_oid_copy (&b, &value.value.v_oid);
   ASSERT_OR_PRINT (mt_group_task_ended (mt_test_client (), mt_test_db (), &group, 1, &value, &error), error);
   stage = stage_doc (&group, 1);
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "complete");
   bson_destroy (stage);
   bson_free (ghex);
   bson_free (ahex);
}

/* The worker dies between a task's marker and its stage's count (failpoint
 * stage-marked): the count is lost, never doubled, and the upkeep tick
 * completes the stage from its tasks. */
static void
test_stage_count_lost_in_a_crash (void)
{
   bson_oid_t group = mt_test_group_new ("a crash", 3600), first, next;
   bson_error_t error;
   bson_t *stage, *doc;
   pid_t pid;

   mt_test_require_failpoints ();
   first = mt_test_group_add (&group, 1, "probe", "{}", NULL);
   next = mt_test_group_add (&group, 2, "probe", "{}", NULL);
   ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
   setenv ("MTASK_FAILPOINT", "stage-marked", 1);
   pid = mt_test_worker (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   unsetenv ("MTASK_FAILPOINT");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 128 + SIGKILL);
   ASSERT (mt_test_output_contains (pid, "failpoint 'stage-marked'"));

   /* Marked, not counted: the stage holds. */
   doc = mt_test_task (&first);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT (mt_test_has (doc, "stage_counted"));
   bson_destroy (doc);
   stage = stage_doc (&group, 1);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "running");
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 0);
   bson_destroy (stage);

   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   WAIT_UNTIL (mt_test_status_is (&next, "FINISHED"), 30000);
   mt_test_worker_stop (pid);
   stage = stage_doc (&group, 1);
   ASSERT_CMPSTR (mt_test_str (stage, "status"), "complete");
   ASSERT_CMPINT (mt_test_int (stage, "done"), ==, 1);
   ASSERT_CMPINT (mt_test_int (stage, "total"), ==, 1);
   bson_destroy (stage);
   doc = mt_test_task (&first);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   bson_destroy (doc);
}

/* ---- 11: scale: the malformed-document sweep is the upkeep winner's ----- */

/* A document no claim can take, written after the worker's own first
 * sweep: the upkeep tick marks it (one worker sweeps for all, the queues
 * live workers serve); a queue nobody serves is left alone. */
static void
test_malformed_swept_by_upkeep (void)
{
   bson_oid_t bad, elsewhere;
   bson_t *doc;
   pid_t pid;

   pid = mt_test_worker_ready (W ("--queues", "q", "--lease", "1.5", "--poll-interval", "0.05"));
   bad = mt_test_task_insert ("{'queue': 'q', 'status': 'CREATED', 'type': 7}");
   elsewhere = mt_test_task_insert ("{'queue': 'nobody', 'status': 'CREATED', 'type': 7}");
   WAIT_UNTIL (mt_test_status_is (&bad, "FAILED"), 20000);
   mt_test_worker_stop (pid);
   doc = mt_test_task (&bad);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "field 'type'");
   bson_destroy (doc);
   ASSERT (mt_test_status_is (&elsewhere, "CREATED"));
   ASSERT (mt_test_output_contains (pid, "marked 1 malformed task(s) FAILED"));
}

int
main (int argc, char **argv)
{
   mt_test_add ("/races/slots/keepalive_between_read_and_write", test_slot_keepalive_between_read_and_write);
   mt_test_add ("/races/slots/timed_out_record_finished", test_slot_timed_out_record_finished);
   mt_test_add ("/races/groups/enqueue_races_completion", test_group_enqueue_races_completion);
   mt_test_add ("/races/sync/check_races_restart", test_sync_check_races_restart);
   mt_test_add ("/races/leases/renewed_while_upkeep_is_slow", test_leases_renewed_while_upkeep_is_slow);
   mt_test_add ("/races/archive/skips_what_it_cannot_move", test_archive_skips_what_it_cannot_move);
   mt_test_add ("/races/groups/counts_each_task_once", test_stage_counts_each_task_once);
   mt_test_add ("/races/groups/stage_from_before_the_marker", test_stage_from_before_the_marker);
   mt_test_add ("/races/groups/count_lost_in_a_crash", test_stage_count_lost_in_a_crash);
   mt_test_add ("/races/store/malformed_swept_by_upkeep", test_malformed_swept_by_upkeep);
   return mt_test_main (argc, argv);
}
