/* The soak: a thousand tasks through a fleet that is treated badly the
 * whole time. Workers are killed and started again under the same id,
 * paused past their lease and let go again, the database is restarted, and
 * failCommand answers at random with the errors a failover brings
 * (NotWritablePrimary with the RetryableWriteError label, a write concern
 * error, a closed connection). Afterwards the promises must hold:
 *
 *   - nothing lost: every task ends FINISHED (none FAILED, none stuck);
 *   - never run twice at once: no two executions of a task share an
 *     attempt (the record plugin writes one document per execution);
 *   - the outcome that stands is the last claim's: a task's `attempts` is
 *     the attempt of its last execution, and that execution succeeded.
 *
 * It runs on a dev database of its own (an H2 file, so that it can be
 * restarted), so its failpoints touch no other test. The chaos is drawn
 * from a seed printed at the start; MTASK_SOAK_SEED=N replays one. */
#include "mt-test.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_TASKS 1000
#define N_WORKERS 4
#define LEASE "2"
#define LEASE_MS 2000
#define CHAOS_MS 90000 /* at most: it ends when 90 % of the tasks have finished */

static mt_test_own_db_t db;

typedef struct {
   char id[32];        /* its --pid, the same across restarts */
   pid_t pid;          /* 0 when killed and not started again */
   int64_t resume_us;  /* when paused (SIGSTOP): when to let it go on */
} soak_worker_t;

static soak_worker_t workers[N_WORKERS];

/* configureFailPoint on the soak's server; fails the test on an error
 * (the server must be up). */
static void
failpoint (const char *json)
{
   bson_t *cmd = mt_test_bson (json), reply;
   bson_error_t error;
   bool ok = mongoc_client_command_simple (db.client, "admin", cmd, NULL, &reply, &error);

   ASSERT_OR_PRINT (ok, error);
   bson_destroy (&reply);
   bson_destroy (cmd);
}

static void
worker_start (soak_worker_t *w)
{
   /* Started again under its id after a kill, as systemd would: the
    * registry still shows the dead process as fresh, and the worker sees
    * that it is gone (same machine, no such process) and takes over. */
   const char *argv[] = {mt_test_env ("MTASK_WORKER"),
                         "--uri", db.uri, "--db", mt_test_db (),
                         "--plugins", mt_test_env ("MTASK_TEST_PLUGIN_DIR"),
                         "--queues", "q",
                         "--pid", w->id,
                         "--concurrency", "3",
                         "--lease", LEASE,
                         "--poll-interval", "0.05",
                         NULL};

   w->pid = mt_test_spawn (argv);
   w->resume_us = 0;
}

/* The task matching `filter` in the soak's database, or NULL. */
static int64_t
count (const char *collection, const char *json)
{
   return mt_test_count_at (db.client, mt_test_db (), collection, json);
}

/* Whether the server answers now (it may be restarting). */
static bool
db_up (void)
{
   bson_t *ping = BCON_NEW ("ping", BCON_INT32 (1));
   bool ok = db.client && mongoc_client_command_simple (db.client, "admin", ping, NULL, NULL, NULL);

   bson_destroy (ping);
   return ok;
}

/* One step of chaos, drawn from `r`. Returns what it did, for the log. */
static const char *
chaos_step (unsigned r, bool *db_restarted)
{
   soak_worker_t *w = &workers[r % N_WORKERS];

   switch ((r / N_WORKERS) % 6) {
   case 0: /* a crash, and systemd starting it again under its id */
      if (w->resume_us) {
         return "skip";
      }
      mt_test_process_kill (w->pid);
      worker_start (w);
      return "kill and restart";
   case 1: /* a pause past the lease: a stalled VM, a long GC, SIGSTOP */
      if (w->resume_us) {
         return "skip";
      }
      kill (w->pid, SIGSTOP);
      w->resume_us = bson_get_monotonic_time () + (LEASE_MS + 1000) * 1000;
      return "pause past the lease";
   case 2:
      failpoint ("{'configureFailPoint': 'failCommand', 'mode': {'activationProbability': 0.2}, "
                 "'data': {'failCommands': ['update', 'findAndModify', 'find', 'insert', 'aggregate'], "
                 "'appName': 'mtask-worker', 'errorCode': 10107, 'errorLabels': ['RetryableWriteError']}}");
      return "stepdown errors";
   case 3:
      failpoint ("{'configureFailPoint': 'failCommand', 'mode': {'activationProbability': 0.2}, "
                 "'data': {'failCommands': ['update', 'findAndModify', 'insert'], 'appName': 'mtask-worker', "
                 "'writeConcernError': {'code': 64, 'codeName': 'WriteConcernFailed', "
                 "'errmsg': 'waiting for replication timed out', 'errInfo': {'wtimeout': true}}}}");
      return "write concern errors";
   case 4:
      failpoint ("{'configureFailPoint': 'failCommand', 'mode': {'activationProbability': 0.05}, "
                 "'data': {'failCommands': ['update', 'findAndModify', 'find'], 'appName': 'mtask-worker', "
                 "'closeConnection': true}}");
      return "closed connections";
   default:
      if (*db_restarted) {
         failpoint ("{'configureFailPoint': 'failCommand', 'mode': 'off'}");
         return "failpoint off";
      }
      *db_restarted = true;
      mt_test_own_db_stop (&db);
      mt_test_nap_ms (1000); /* the outage itself */
      mt_test_own_db_start (&db);
      return "database restarted";
   }
}

/* Prints the executions of `task` and its document, for a failure. */
static void
print_executions (const char *task)
{
   mongoc_collection_t *executions = mongoc_client_get_collection (db.client, mt_test_db (), "executions");
   bson_t *filter = BCON_NEW ("task", task);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (executions, filter, NULL, NULL);
   const bson_t *doc;
   bson_oid_t oid;

   while (mongoc_cursor_next (cursor, &doc)) {
      char *json = bson_as_relaxed_extended_json (doc, NULL);
      printf ("# execution: %s\n", json);
      bson_free (json);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   mongoc_collection_destroy (executions);
   if (task && bson_oid_is_valid (task, strlen (task))) {
      bson_t *doc2;
      char *json;

      bson_oid_init_from_string (&oid, task);
      filter = BCON_NEW ("_id", BCON_OID (&oid));
      doc2 = mt_test_task_find_at (db.client, filter);
      json = doc2 ? bson_as_relaxed_extended_json (doc2, NULL) : NULL;
      printf ("# task: %s\n", json ? json : "(not found)");
      bson_free (json);
      if (doc2) {
         bson_destroy (doc2);
      }
      bson_destroy (filter);
   }
}

/* The executions of `task`: their number, the highest attempt, and
 * whether that one succeeded. */
static void
executions_of (const char *task, int64_t *n, int32_t *last, bool *last_ok)
{
   mongoc_collection_t *executions = mongoc_client_get_collection (db.client, mt_test_db (), "executions");
   bson_t *filter = BCON_NEW ("task", task);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (executions, filter, NULL, NULL);
   const bson_t *doc;
   bson_error_t error;

   *n = 0;
   *last = 0;
   *last_ok = false;
   while (mongoc_cursor_next (cursor, &doc)) {
      int32_t attempt = (int32_t) mt_test_int (doc, "attempt");
      bson_iter_t iter;

      (*n)++;
      if (attempt > *last) {
         *last = attempt;
         *last_ok = bson_iter_init_find (&iter, doc, "ok") && bson_iter_as_bool (&iter);
      }
   }
   ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   mongoc_collection_destroy (executions);
}

static void
test_soak (void)
{
   const char *seed_env = getenv ("MTASK_SOAK_SEED");
   unsigned seed = seed_env ? (unsigned) strtoul (seed_env, NULL, 10) : (unsigned) time (NULL);
   mongoc_collection_t *tasks;
   bool db_restarted = false;
   int64_t chaos_end, steps = 0;
   bson_error_t error;

   printf ("# seed %u (MTASK_SOAK_SEED=%u replays this run)\n", seed, seed);
   srand (seed);
   mt_test_own_db_open (&db, "serverSelectionTimeoutMS=2000");

   for (int i = 0; i < N_TASKS; i++) {
      bson_t *params = BCON_NEW ("ms", BCON_INT32 (100 + rand () % 200));
      bson_t *opts = BCON_NEW ("max_attempts", BCON_INT32 (1000));

      ASSERT_OR_PRINT (mt_enqueue (db.client, mt_test_db (), "q", "record", params, opts, NULL, &error), error);
      bson_destroy (params);
      bson_destroy (opts);
   }
   for (int i = 0; i < N_WORKERS; i++) {
      snprintf (workers[i].id, sizeof workers[i].id, "soak-%d", i);
      worker_start (&workers[i]);
   }

   /* The chaos: a step every 0.6 to 1.5 s, and the paused let go on time,
    * until most tasks have run (or long enough on a slow machine). */
   chaos_end = bson_get_monotonic_time () + CHAOS_MS * 1000;
   while (bson_get_monotonic_time () < chaos_end && (!db_up () || count ("tasks", "{'status': 'FINISHED'}") < N_TASKS * 9 / 10)) {
      int64_t next = bson_get_monotonic_time () + (600 + rand () % 900) * 1000;
      unsigned r = (unsigned) rand ();
      const char *did = chaos_step (r, &db_restarted);

      printf ("# %5.1f s: worker %d: %s\n", (double) (CHAOS_MS * 1000 - (chaos_end - bson_get_monotonic_time ())) / 1e6, (int) (r % N_WORKERS), did);
      steps++;
      while (bson_get_monotonic_time () < next) {
         for (int i = 0; i < N_WORKERS; i++) {
            if (workers[i].resume_us && bson_get_monotonic_time () >= workers[i].resume_us) {
               kill (workers[i].pid, SIGCONT);
               workers[i].resume_us = 0;
            }
         }
         mt_test_nap_ms (50);
      }
   }

   /* The calm: no more faults, every worker running. */
   WAIT_UNTIL (db_up (), 30000);
   failpoint ("{'configureFailPoint': 'failCommand', 'mode': 'off'}");
   for (int i = 0; i < N_WORKERS; i++) {
      if (workers[i].resume_us) {
         kill (workers[i].pid, SIGCONT);
         workers[i].resume_us = 0;
      }
   }
   printf ("# %" PRId64 " steps of chaos; %" PRId64 " of %d tasks finished by its end\n", steps, count ("tasks", "{'status': 'FINISHED'}"), N_TASKS);

   /* Nothing lost, nothing stuck: a lease and a few polls after the calm
    * everything has run (the timeout is generous for a slow machine). */
   WAIT_UNTIL (count ("tasks", "{'status': 'FINISHED'}") == N_TASKS, 180000);
   ASSERT_CMPINT (count ("tasks", "{}"), ==, N_TASKS);
   for (int i = 0; i < N_WORKERS; i++) {
      mt_test_worker_stop (workers[i].pid);
   }

   /* Never two runs of one attempt, and the last claim's outcome stands. */
   {
      bson_t *pipeline = mt_test_bson ("[{'$group': {'_id': {'t': '$task', 'a': '$attempt'}, 'n': {'$sum': 1}}}, "
                                       "{'$match': {'n': {'$gt': 1}}}]");
      mongoc_collection_t *executions = mongoc_client_get_collection (db.client, mt_test_db (), "executions");
      mongoc_cursor_t *cursor = mongoc_collection_aggregate (executions, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
      const bson_t *dup;

      if (mongoc_cursor_next (cursor, &dup)) {
         char *json = bson_as_relaxed_extended_json (dup, NULL), what[256];

         bson_strncpy (what, json, sizeof what);
         bson_free (json);
         print_executions (mt_test_str (dup, "_id.t"));
         mongoc_cursor_destroy (cursor);
         mongoc_collection_destroy (executions);
         bson_destroy (pipeline);
         mt_test_fail (__FILE__, __LINE__, "an attempt ran twice: %s", what);
      }
      ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
      mongoc_cursor_destroy (cursor);
      mongoc_collection_destroy (executions);
      bson_destroy (pipeline);
   }
   tasks = mongoc_client_get_collection (db.client, mt_test_db (), "tasks");
   {
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, &(bson_t) BSON_INITIALIZER, NULL, NULL);
      const bson_t *doc;
      int64_t reruns = 0, total = 0;

      while (mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t iter;
         char id[25];
         int64_t n;
         int32_t last;
         bool last_ok;

         ASSERT (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter));
         bson_oid_to_string (bson_iter_oid (&iter), id);
         executions_of (id, &n, &last, &last_ok);
         if (last != (int32_t) mt_test_int (doc, "attempts") || !last_ok) {
            mt_test_fail (__FILE__,
                          __LINE__,
                          "task %s: FINISHED at attempt %d, but its last execution was attempt %d (%s)",
                          id,
                          (int) mt_test_int (doc, "attempts"),
                          (int) last,
                          last_ok ? "ok" : "failed");
         }
         reruns += n > 1;
         total += n;
      }
      ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
      mongoc_cursor_destroy (cursor);
      printf ("# %" PRId64 " executions; %" PRId64 " tasks ran more than once (each time under a new attempt)\n", total, reruns);
   }
   mongoc_collection_destroy (tasks);
   mt_test_own_db_close (&db);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/soak/fleet_under_faults", test_soak);
   return mt_test_main (argc, argv);
}
