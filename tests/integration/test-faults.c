/* The fault sweep: every library operation that talks to the database, made
 * to fail at each of its database commands in turn.
 *
 * For an operation and k = 0, 1, 2...: the preconditions are set up in a
 * database of their own with no failpoint; then the dev database's
 * failCommand failpoint lets this program's first k commands through and
 * fails every later one ({skip: k}, failAllCommands); the operation runs;
 * the failpoint goes off, and its count says whether it fired. The sweep
 * ends at the first k the operation runs through untouched. At each k that
 * fired:
 *
 * - an operation that fails says why: its bson_error_t has a domain and a
 *   message (with closeConnection, the driver's network error, which the
 *   worker retries, passes through untouched);
 * - an operation that succeeds although a command of it failed must be one
 *   whose failed step is best effort by design (op_t.best_effort says why),
 *   never a write lost unnoticed;
 * - then, with no failpoint, the operation run again (or its repair: the
 *   upkeep tick, a later check) succeeds and ends in the state the
 *   operation promises: nothing a failure left half done blocks it.
 *
 * The failpoint is scoped to this program's own client (appName APP), so
 * it never touches another test's. Leaks and crashes are the sanitizers'
 * to find (the suite runs under ASan and LSan).
 *
 * Then targeted tests for what the sweep cannot reach: a worker in this
 * process whose claims and outcome writes meet a dropped connection, and a
 * plugin's own retry budget. */
#include "mt-test.h"

#include "worker-private.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define APP "mtask-test-faults"
#define FP_ERROR "{'failAllCommands': true, 'errorCode': 2, 'appName': '" APP "'}"
#define FP_CLOSE "{'failAllCommands': true, 'closeConnection': true, 'appName': '" APP "'}"
#define WORKER_ID "faults-worker"
#define HOUR_MS (3600 * 1000)

/* ---- one case's database --------------------------------------------------- */

/* What an operation works on: the faulty client, a database of its own, a
 * context as a worker's, and what the setup made. */
typedef struct {
   mongoc_client_t *client;
   char db[64];
   mt_context_t ctx;
   int warnings; /* lines the context logged at warning level or worse */
   bson_oid_t ids[8];
   bson_t doc; /* a document the setup kept */
   char token[64]; /* the claim token an operation used */
   mt_task_doc_t parsed;
   int64_t n;
} fx_t;

static mongoc_client_t *faulty;
static int db_counter;

static void
count_warnings (mt_log_level_t level, const char *message, void *data)
{
   fx_t *fx = data;

   (void) message;
   if (level <= MT_LOG_WARNING) {
      fx->warnings++;
   }
}

static void
fx_init (fx_t *fx)
{
   memset (fx, 0, sizeof *fx);
   fx->client = faulty;
   bson_snprintf (fx->db, sizeof fx->db, "faults_%d_%d", (int) getpid (), ++db_counter);
   mt_context_init (&fx->ctx);
   fx->ctx.db = bson_strdup (fx->db);
   fx->ctx.worker_id = bson_strdup (WORKER_ID);
   fx->ctx.log_func = count_warnings;
   fx->ctx.log_data = fx;
   fx->ctx.log_level = MT_LOG_DEBUG;
   bson_init (&fx->doc);
}

static void
fx_cleanup (fx_t *fx)
{
   mongoc_database_t *db = mongoc_client_get_database (mt_test_client (), fx->db);
   bson_error_t error;

   ASSERT_OR_PRINT (mongoc_database_drop_with_opts (db, NULL, &error), error);
   mongoc_database_destroy (db);
   bson_destroy (&fx->doc);
   mt_context_cleanup (&fx->ctx);
}

static mongoc_collection_t *
coll (fx_t *fx, const char *name)
{
   return mongoc_client_get_collection (fx->client, fx->db, name);
}

static bson_value_t
oid_value (const bson_oid_t *oid)
{
   bson_value_t value = {.value_type = BSON_TYPE_OID};

   bson_oid_copy (oid, &value.value.v_oid);
   return value;
}

static void
insert_b (fx_t *fx, const char *collection, const bson_t *doc)
{
   mongoc_collection_t *c = coll (fx, collection);
   bson_error_t error;
   bool ok = mongoc_collection_insert_one (c, doc, NULL, NULL, &error);

   mongoc_collection_destroy (c);
   ASSERT_OR_PRINT (ok, error);
}

static void
insert (fx_t *fx, const char *collection, const char *json)
{
   bson_t *doc = mt_test_bson (json);

   insert_b (fx, collection, doc);
   bson_destroy (doc);
}

static void
update_b (fx_t *fx, const char *collection, const bson_t *filter, const bson_t *update)
{
   mongoc_collection_t *c = coll (fx, collection);
   bson_error_t error;
   bool ok = mongoc_collection_update_many (c, filter, update, NULL, NULL, &error);

   mongoc_collection_destroy (c);
   ASSERT_OR_PRINT (ok, error);
}

static void
update (fx_t *fx, const char *collection, const char *filter_json, const char *update_json)
{
   bson_t *filter = mt_test_bson (filter_json);
   bson_t *change = mt_test_bson (update_json);

   update_b (fx, collection, filter, change);
   bson_destroy (filter);
   bson_destroy (change);
}

static int64_t
count_b (fx_t *fx, const char *collection, const bson_t *filter)
{
   mongoc_collection_t *c = coll (fx, collection);
   bson_error_t error;
   int64_t n = mongoc_collection_count_documents (c, filter, NULL, NULL, NULL, &error);

   mongoc_collection_destroy (c);
   ASSERT_OR_PRINT (n >= 0, error);
   return n;
}

static int64_t
count (fx_t *fx, const char *collection, const char *json)
{
   bson_t *filter = mt_test_bson (json);
   int64_t n = count_b (fx, collection, filter);

   bson_destroy (filter);
   return n;
}

/* The document of `collection` with _id `id`, or NULL. */
static bson_t *
find_id (fx_t *fx, const char *collection, const bson_oid_t *id)
{
   mongoc_collection_t *c = coll (fx, collection);
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   bson_t doc, *copy;
   bson_error_t error;
   bool found, ok = mt_find_one (c, filter, NULL, &doc, &found, &error);

   bson_destroy (filter);
   mongoc_collection_destroy (c);
   ASSERT_OR_PRINT (ok, error);
   copy = found ? bson_copy (&doc) : NULL;
   bson_destroy (&doc);
   return copy;
}

static const char *
status_of (fx_t *fx, const bson_oid_t *id, char *buf, size_t size)
{
   bson_t *doc = find_id (fx, MT_TASKS_COLLECTION, id);

   bson_strncpy (buf, doc && mt_test_str (doc, "status") ? mt_test_str (doc, "status") : "(none)", size);
   if (doc) {
      bson_destroy (doc);
   }
   return buf;
}

#define ASSERT_STATUS(fx, id, status)                                     \
   do {                                                                   \
      char _buf[64];                                                      \
      ASSERT_CMPSTR (status_of ((fx), (id), _buf, sizeof _buf), (status)); \
   } while (0)

static bson_oid_t
enqueue (fx_t *fx, const char *queue, const char *type, const char *opts_json)
{
   bson_t *opts = opts_json ? mt_test_bson (opts_json) : NULL;
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_enqueue (fx->client, fx->db, queue, type, NULL, opts, &id, &error);

   if (opts) {
      bson_destroy (opts);
   }
   ASSERT_OR_PRINT (ok, error);
   return id;
}

static void
set_by_id (fx_t *fx, const char *collection, const bson_oid_t *id, bson_t *change)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));

   update_b (fx, collection, filter, change);
   bson_destroy (filter);
   bson_destroy (change);
}

/* Ends a task as its worker would (no group count, no successor). */
static void
end_task (fx_t *fx, const bson_oid_t *id, const char *status)
{
   set_by_id (fx,
              MT_TASKS_COLLECTION,
              id,
              BCON_NEW ("$set", "{", "status", status, "worker_pid", BCON_NULL, "}", "$currentDate", "{", "finished",
                        BCON_BOOL (true), "}"));
}

/* Claims a task for `worker` as a claim would. */
static void
claim_for (fx_t *fx, const bson_oid_t *id, const char *worker)
{
   set_by_id (fx,
              MT_TASKS_COLLECTION,
              id,
              BCON_NEW ("$set", "{", "status", MT_STATUS_WORK_IN_PROGRESS, "worker_pid", worker, "}", "$inc", "{",
                        "attempts", BCON_INT32 (1), "}", "$currentDate", "{", "started", BCON_BOOL (true), "heartbeat",
                        BCON_BOOL (true), "}"));
}

/* ---- the sweep ---------------------------------------------------------------- */

typedef struct {
   const char *name;
   /* Preconditions, with no failpoint. */
   void (*setup) (fx_t *fx);
   /* The operation. */
   bool (*run) (fx_t *fx, bson_error_t *error);
   /* After a failure point fired, with no failpoint: what makes the
    * operation whole (run it again, the upkeep tick...), asserting that it
    * works. NULL: run it again. */
   void (*after) (fx_t *fx, bool ok);
   /* The state the operation promises, after it ran through or was made
    * whole; may be NULL. */
   void (*check) (fx_t *fx);
   /* Why a success while a command of it failed is no lost write; NULL
    * when that must never happen. */
   const char *best_effort;
   /* Such a success says so in the worker's log. */
   bool logs;
} op_t;

typedef struct {
   int points;      /* failure points: commands the failpoint failed first */
   int best_effort; /* ... at which the operation succeeded all the same */
} sweep_t;

/* Sweeps `op` with the failpoint's `data` (FP_ERROR or FP_CLOSE). */
static sweep_t
sweep (const op_t *op, const char *data)
{
   sweep_t result = {0, 0};
   bool network = strstr (data, "closeConnection") != NULL;

   mt_test_failpoint_off ();
   for (int k = 0;; k++) {
      char mode[32];
      bson_error_t error;
      int64_t before, fired;
      fx_t fx;
      bool ok;

      ASSERT (k < 200);
      fx_init (&fx);
      if (op->setup) {
         op->setup (&fx);
      }
      fx.warnings = 0;
      bson_snprintf (mode, sizeof mode, "{'skip': %d}", k);
      before = mt_test_failpoint_set (mode, data);
      memset (&error, 0, sizeof error);
      ok = op->run (&fx, &error);
      fired = mt_test_failpoint_off () - before;
      if (network) {
         /* A new client: the old one would wait before it looks for the
          * server again (minHeartbeatFrequencyMS). */
         mongoc_client_destroy (faulty);
         fx.client = faulty = mt_test_failpoint_client (APP);
      }

      if (fired == 0) {
         ASSERT_OR_PRINT (ok, error);
         if (op->check) {
            op->check (&fx);
         }
         fx_cleanup (&fx);
         break;
      }
      result.points++;
      if (getenv ("MTASK_FAULTS_VERBOSE")) {
         printf ("# %s: command %d failed: %s\n", op->name, k + 1, ok ? "(success)" : error.message);
         fflush (stdout);
      }
      if (!ok) {
         if (!error.domain || !error.message[0]) {
            mt_test_fail (__FILE__, __LINE__, "%s: failed at command %d without saying why (domain %u, message '%s')", op->name, k + 1,
                          error.domain, error.message);
         }
         if (network && !mt_error_is_network (&error)) {
            mt_test_fail (__FILE__, __LINE__, "%s: a dropped connection at command %d is no network error: %u.%u %s", op->name,
                          k + 1, error.domain, error.code, error.message);
         }
      } else if (!op->best_effort) {
         mt_test_fail (__FILE__, __LINE__, "%s: command %d failed (%" PRId64 " failed in all), yet it returned success", op->name,
                       k + 1, fired);
      } else {
         result.best_effort++;
         if (op->logs && fx.warnings == 0) {
            mt_test_fail (__FILE__, __LINE__, "%s: command %d failed, and it went on without a word in the log", op->name, k + 1);
         }
      }
      if (op->after) {
         op->after (&fx, ok);
      } else {
         memset (&error, 0, sizeof error);
         ASSERT_OR_PRINT (op->run (&fx, &error), error);
      }
      if (op->check) {
         op->check (&fx);
      }
      fx_cleanup (&fx);
   }
   printf ("# %s: %d failure point(s)%s%s\n", op->name, result.points, network ? " (dropped connection)" : "",
           result.best_effort ? ", some best effort" : "");
   fflush (stdout);
   return result;
}

#define MUST(call)                             \
   do {                                        \
      bson_error_t _error;                     \
      memset (&_error, 0, sizeof _error);      \
      ASSERT_OR_PRINT ((call), _error);        \
   } while (0)

/* Runs `run` again with no failpoint: it must work. */
#define AGAIN(run, fx) MUST (run ((fx), &_error))

/* ---- the store ------------------------------------------------------------- */

static bool
run_enqueue (fx_t *fx, bson_error_t *error)
{
   return mt_enqueue (fx->client, fx->db, "q", "echo", NULL, NULL, &fx->ids[0], error);
}

static void
check_enqueue (fx_t *fx)
{
   /* A failed enqueue inserted nothing: one task, whatever happened. */
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{}"), ==, 1);
   ASSERT_STATUS (fx, &fx->ids[0], MT_STATUS_CREATED);
}

static void
setup_unique (fx_t *fx)
{
   /* An ended task that still holds the key (ended by hand): the next
    * enqueue lets go of it for it. */
   fx->ids[0] = enqueue (fx, "q", "echo", "{'unique_key': 'u'}");
   end_task (fx, &fx->ids[0], MT_STATUS_FINISHED);
}

static bool
run_enqueue_unique (fx_t *fx, bson_error_t *error)
{
   bson_t *opts = mt_test_bson ("{'unique_key': 'u'}");
   bool created = false;
   bool ok = mt_enqueue_ex (fx->client, fx->db, "q", "echo", NULL, opts, &fx->ids[1], &created, error);

   bson_destroy (opts);
   ASSERT (!ok || created);
   return ok;
}

static void
check_unique (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'" MT_UNIQUE_HELD_FIELD "': 'u'}"), ==, 1);
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'unique_key': 'u', 'status': 'CREATED'}"), ==, 1);
   ASSERT_STATUS (fx, &fx->ids[1], MT_STATUS_CREATED);
}

static bool
run_indexes (fx_t *fx, bson_error_t *error)
{
   return mt_indexes_ensure (fx->client, fx->db, error);
}

/* The claim's arrays: queue "q", type "echo". */
static bson_t *
queues_q (void)
{
   return BCON_NEW ("0", "q");
}

static bson_t *
types_echo (void)
{
   return BCON_NEW ("0", "echo");
}

static void
setup_one_task (fx_t *fx)
{
   fx->ids[0] = enqueue (fx, "q", "echo", NULL);
}

static bool
run_claim (fx_t *fx, bson_error_t *error)
{
   mongoc_collection_t *tasks = coll (fx, MT_TASKS_COLLECTION);
   bson_t *queues = queues_q (), *types = types_echo ();
   bson_t doc;
   bool claimed = false;
   bool ok = mt_store_claim (tasks, WORKER_ID, queues, types, mt_now_ms (), &doc, &claimed, error);

   ASSERT (!ok || claimed);
   bson_destroy (&doc);
   bson_destroy (queues);
   bson_destroy (types);
   mongoc_collection_destroy (tasks);
   return ok;
}

static void
check_claimed (fx_t *fx)
{
   bson_t *doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[0]);

   ASSERT_CMPSTR (mt_test_str (doc, "status"), MT_STATUS_WORK_IN_PROGRESS);
   ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), WORKER_ID);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   bson_destroy (doc);
}

static void
setup_three_tasks (fx_t *fx)
{
   for (int i = 0; i < 3; i++) {
      fx->ids[i] = enqueue (fx, "q", "echo", NULL);
   }
}

static int claim_batch_round;

static bool
run_claim_batch (fx_t *fx, bson_error_t *error)
{
   mongoc_collection_t *tasks = coll (fx, MT_TASKS_COLLECTION);
   bson_t *queues = queues_q (), *types = types_echo ();
   bson_t docs[3];
   size_t n = 0;
   bool ok;

   bson_snprintf (fx->token, sizeof fx->token, WORKER_ID "#0#%d", ++claim_batch_round);
   ok = mt_store_claim_batch (tasks, WORKER_ID, fx->token, queues, types, mt_now_ms (), 3, docs, &n, error);
   ASSERT (!ok || n == 3);
   for (size_t i = 0; i < n; i++) {
      bson_destroy (&docs[i]);
   }
   bson_destroy (queues);
   bson_destroy (types);
   mongoc_collection_destroy (tasks);
   return ok;
}

static void
after_claim_batch (fx_t *fx, bool ok)
{
   mongoc_collection_t *tasks = coll (fx, MT_TASKS_COLLECTION);
   bson_error_t error;

   (void) ok;
   /* What a failed batch claim took (its update went through, its read
    * back did not) was never the worker's to run: the worker gives it
    * back, its attempt not counted, before it claims again. */
   ASSERT_OR_PRINT (mt_store_unclaim (tasks, WORKER_ID, fx->token, &error) >= 0, error);
   mongoc_collection_destroy (tasks);
   AGAIN (run_claim_batch, fx);
}

static void
check_batch (fx_t *fx)
{
   for (int i = 0; i < 3; i++) {
      bson_t *doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[i]);

      ASSERT_CMPSTR (mt_test_str (doc, "status"), MT_STATUS_WORK_IN_PROGRESS);
      ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
      bson_destroy (doc);
   }
}

static void
setup_claimed (fx_t *fx)
{
   bson_t *doc;
   bson_error_t error;

   fx->ids[0] = enqueue (fx, "q", "echo", NULL);
   claim_for (fx, &fx->ids[0], WORKER_ID);
   doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[0]);
   bson_destroy (&fx->doc);
   bson_copy_to (doc, &fx->doc);
   bson_destroy (doc);
   ASSERT_OR_PRINT (mt_task_doc_parse (&fx->doc, &fx->parsed, &error), error);
}

static bool
run_update_claimed (fx_t *fx, bson_error_t *error)
{
   mongoc_collection_t *tasks = coll (fx, MT_TASKS_COLLECTION);
   bson_t *update = BCON_NEW ("$set", "{", "status_message", "half way", "}");
   bool ok = mt_store_update_claimed (tasks, &fx->parsed, WORKER_ID, update, error);

   bson_destroy (update);
   mongoc_collection_destroy (tasks);
   return ok;
}

static void
check_update_claimed (fx_t *fx)
{
   bson_t *doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[0]);

   ASSERT_CMPSTR (mt_test_str (doc, "status_message"), "half way");
   bson_destroy (doc);
}

static void
setup_malformed (fx_t *fx)
{
   insert (fx, MT_TASKS_COLLECTION, "{'queue': 'q', 'status': 'CREATED', 'params': {}}");
   insert (fx, MT_TASKS_COLLECTION, "{'queue': 'q', 'type': 'echo', 'status': 'CREATED', 'delayed': 'soon'}");
   /* Inserted by another client without the defaults. */
   insert (fx, MT_TASKS_COLLECTION, "{'queue': 'q', 'type': 'echo', 'status': 'CREATED', 'params': {}}");
}

static bool
run_store_sweep (fx_t *fx, bson_error_t *error)
{
   mongoc_collection_t *tasks = coll (fx, MT_TASKS_COLLECTION);
   bson_t *queues = queues_q ();

   fx->n = mt_store_sweep (tasks, queues, error);
   bson_destroy (queues);
   mongoc_collection_destroy (tasks);
   return fx->n >= 0;
}

static void
check_store_sweep (fx_t *fx)
{
   bson_t *filled = BCON_NEW ("status", MT_STATUS_CREATED, "priority", BCON_INT32 (0), "attempts", BCON_INT32 (0), "created", "{",
                              "$type", "date", "}");

   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'status': 'FAILED', 'error.message': {'$exists': true}}"), ==, 2);
   ASSERT_CMPINT (count_b (fx, MT_TASKS_COLLECTION, filled), ==, 1);
   bson_destroy (filled);
}

/* ---- account locks ------------------------------------------------------------ */

/* The owner: task ids[0], running on this worker, attempt 1. */
static mt_lock_owner_t
owner_of (fx_t *fx, bson_value_t *value)
{
   mt_lock_owner_t owner;

   *value = oid_value (&fx->ids[0]);
   owner.task_id = value;
   owner.worker_id = WORKER_ID;
   owner.attempt = 1;
   return owner;
}

static void
setup_lock_owner (fx_t *fx)
{
   bson_oid_t gone;
   bson_t *lock;

   fx->ids[0] = enqueue (fx, "q", "echo", NULL);
   claim_for (fx, &fx->ids[0], WORKER_ID);
   /* 'b' is locked by a run that is over: taken over. */
   bson_oid_init (&gone, NULL);
   lock = BCON_NEW ("_id", "b", "task", BCON_OID (&gone), "attempt", BCON_INT32 (1), "worker_pid", "gone", "acquired",
                    BCON_DATE_TIME (mt_now_ms ()));
   insert_b (fx, MT_LOCKS_COLLECTION, lock);
   bson_destroy (lock);
}

static bool
run_locks_acquire (fx_t *fx, bson_error_t *error)
{
   const char *accounts[] = {"c", "a", "b"};
   bson_value_t value;
   mt_lock_owner_t owner = owner_of (fx, &value);
   bson_t held;
   bool ok = mt_locks_acquire (fx->client, fx->db, &owner, accounts, 3, &held, error);

   if (ok) {
      ASSERT_CMPINT (bson_count_keys (&held), ==, 3);
      bson_destroy (&held);
   }
   return ok;
}

static void
check_locks_held (fx_t *fx)
{
   bson_t *filter = BCON_NEW ("task", BCON_OID (&fx->ids[0]), "attempt", BCON_INT32 (1));

   ASSERT_CMPINT (count_b (fx, MT_LOCKS_COLLECTION, filter), ==, 3);
   bson_destroy (filter);
}

static void
setup_locks_held (fx_t *fx)
{
   setup_lock_owner (fx);
   MUST (run_locks_acquire (fx, &_error));
}

static bool
run_locks_release (fx_t *fx, bson_error_t *error)
{
   const char *accounts[] = {"a", "b", "c"};
   bson_value_t value;
   mt_lock_owner_t owner = owner_of (fx, &value);

   return mt_locks_release (fx->client, fx->db, &owner, accounts, 3, error);
}

static bool
run_locks_release_all (fx_t *fx, bson_error_t *error)
{
   bson_value_t value;
   mt_lock_owner_t owner = owner_of (fx, &value);

   fx->n = mt_locks_release_all (fx->client, fx->db, &owner, error);
   return fx->n >= 0;
}

static void
check_no_locks (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_LOCKS_COLLECTION, "{}"), ==, 0);
}

static bool
run_is_live (fx_t *fx, bson_error_t *error)
{
   bson_t *holder = BCON_NEW ("task", BCON_OID (&fx->ids[0]), "worker_pid", WORKER_ID, "attempt", BCON_INT32 (1));
   bool live = false;
   bool ok = mt_run_is_live (fx->client, fx->db, holder, &live, error);

   ASSERT (!ok || live);
   bson_destroy (holder);
   return ok;
}

/* ---- staged groups --------------------------------------------------------------- */

static bson_oid_t
group_new (fx_t *fx, double keep_seconds)
{
   bson_t *opts = BCON_NEW ("keep_seconds", BCON_DOUBLE (keep_seconds));
   bson_oid_t id;

   MUST (mt_group_create (fx->client, fx->db, "faults", opts, &id, &_error));
   bson_destroy (opts);
   return id;
}

static bson_oid_t
group_add (fx_t *fx, const bson_oid_t *group, int32_t stage)
{
   bson_oid_t id;

   MUST (mt_group_enqueue (fx->client, fx->db, group, stage, "q", "echo", NULL, NULL, &id, &_error));
   return id;
}

/* Ends a task of a stage as its worker does: the outcome, then the count. */
static void
group_end (fx_t *fx, const bson_oid_t *group, int32_t stage, const bson_oid_t *task)
{
   bson_value_t value = oid_value (task);

   end_task (fx, task, MT_STATUS_FINISHED);
   MUST (mt_group_task_ended (fx->client, fx->db, group, stage, &value, &_error));
}

static void
group_upkeep (fx_t *fx, int64_t ahead_ms)
{
   MUST (mt_groups_upkeep (fx->client, fx->db, mt_now_ms () + ahead_ms, &_error));
}

static void
assert_stage (fx_t *fx, const bson_oid_t *group, int32_t number, const char *status)
{
   bson_t *filter = BCON_NEW ("group", BCON_OID (group), "number", BCON_INT32 (number), "status", status);

   if (count_b (fx, MT_GROUP_STAGES_COLLECTION, filter) != 1) {
      mt_test_fail (__FILE__, __LINE__, "stage %d of the group is not %s", number, status);
   }
   bson_destroy (filter);
}

static void
assert_group_gone (fx_t *fx, const bson_oid_t *group)
{
   bson_t *by_id = BCON_NEW ("_id", BCON_OID (group));
   bson_t *by_group = BCON_NEW ("group", BCON_OID (group));

   ASSERT_CMPINT (count_b (fx, MT_GROUPS_COLLECTION, by_id), ==, 0);
   ASSERT_CMPINT (count_b (fx, MT_GROUP_STAGES_COLLECTION, by_group), ==, 0);
   ASSERT_CMPINT (count_b (fx, MT_TASKS_COLLECTION, by_group), ==, 0);
   bson_destroy (by_id);
   bson_destroy (by_group);
}

/* Runs the group to its end as workers would: starts it, ends each task
 * that becomes CREATED, with the upkeep tick an hour later in between;
 * then the group must be gone. */
static void
group_run_to_end (fx_t *fx, const bson_oid_t *group)
{
   MUST (mt_group_initiate (fx->client, fx->db, group, &_error));
   for (int round = 0; round < 10; round++) {
      bson_t *filter = BCON_NEW ("group", BCON_OID (group), "status", MT_STATUS_CREATED);
      mongoc_collection_t *tasks = coll (fx, MT_TASKS_COLLECTION);
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, filter, NULL, NULL);
      const bson_t *doc;
      bson_oid_t ids[16];
      int32_t stages[16];
      int n = 0;

      while (n < 16 && mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t iter;

         ASSERT (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter));
         bson_oid_copy (bson_iter_oid (&iter), &ids[n]);
         stages[n++] = (int32_t) mt_test_int (doc, "stage");
      }
      mongoc_cursor_destroy (cursor);
      mongoc_collection_destroy (tasks);
      bson_destroy (filter);
      for (int i = 0; i < n; i++) {
         group_end (fx, group, stages[i], &ids[i]);
      }
      group_upkeep (fx, HOUR_MS);
   }
   assert_group_gone (fx, group);
}

static bool
run_group_create (fx_t *fx, bson_error_t *error)
{
   return mt_group_create (fx->client, fx->db, "faults", NULL, &fx->ids[0], error);
}

static void
check_group_create (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_GROUPS_COLLECTION, "{}"), ==, 1);
   ASSERT_CMPINT (count (fx, MT_GROUPS_COLLECTION, "{'status': 'pending'}"), ==, 1);
}

/* ids[0] the group; ids[1] a task of stage 1. */
static void
setup_group_pending (fx_t *fx)
{
   fx->ids[0] = group_new (fx, 0);
   fx->ids[1] = group_add (fx, &fx->ids[0], 1);
}

static void
setup_group_running (fx_t *fx)
{
   setup_group_pending (fx);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[0], &_error));
}

static bool
run_group_enqueue (fx_t *fx, bson_error_t *error)
{
   return mt_group_enqueue (fx->client, fx->db, &fx->ids[0], 1, "q", "echo", NULL, NULL, &fx->ids[2], error);
}

static void
check_group_ends (fx_t *fx)
{
   group_run_to_end (fx, &fx->ids[0]);
}

/* ids[0] the group; stage 1: ids[1], counted ended already; stage 2:
 * ids[2]. */
static void
setup_group_initiate (fx_t *fx)
{
   fx->ids[0] = group_new (fx, 0);
   fx->ids[1] = group_add (fx, &fx->ids[0], 1);
   fx->ids[2] = group_add (fx, &fx->ids[0], 2);
   group_end (fx, &fx->ids[0], 1, &fx->ids[1]);
}

static bool
run_group_initiate (fx_t *fx, bson_error_t *error)
{
   return mt_group_initiate (fx->client, fx->db, &fx->ids[0], error);
}

/* Stage 1 complete, stage 2 running with its task released. */
static void
check_second_stage (fx_t *fx)
{
   assert_stage (fx, &fx->ids[0], 1, "complete");
   assert_stage (fx, &fx->ids[0], 2, "running");
   ASSERT_STATUS (fx, &fx->ids[2], MT_STATUS_CREATED);
   group_run_to_end (fx, &fx->ids[0]);
}

/* Stage 1 (ids[1]) running, its task ended but not counted yet; stage 2:
 * ids[2]. */
static void
setup_group_two_stages (fx_t *fx)
{
   fx->ids[0] = group_new (fx, 0);
   fx->ids[1] = group_add (fx, &fx->ids[0], 1);
   fx->ids[2] = group_add (fx, &fx->ids[0], 2);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[0], &_error));
   end_task (fx, &fx->ids[1], MT_STATUS_FINISHED);
}

static bool
run_group_task_ended (fx_t *fx, bson_error_t *error)
{
   bson_value_t value = oid_value (&fx->ids[1]);

   return mt_group_task_ended (fx->client, fx->db, &fx->ids[0], 1, &value, error);
}

/* The worker logs a failed count and goes on; the upkeep tick counts
 * what is left uncounted and finishes what is half done. */
static void
after_group_task_ended (fx_t *fx, bool ok)
{
   (void) ok;
   AGAIN (run_group_task_ended, fx);
   group_upkeep (fx, 0);
}

/* A one-stage group: ids[1] running, ended, not counted. */
static void
setup_group_last_stage (fx_t *fx)
{
   fx->ids[0] = group_new (fx, 0);
   fx->ids[1] = group_add (fx, &fx->ids[0], 1);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[0], &_error));
   end_task (fx, &fx->ids[1], MT_STATUS_FINISHED);
}

static void
check_group_gone (fx_t *fx)
{
   assert_group_gone (fx, &fx->ids[0]);
}

static void
setup_group_kept (fx_t *fx)
{
   fx->ids[0] = group_new (fx, 60);
   fx->ids[1] = group_add (fx, &fx->ids[0], 1);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[0], &_error));
   end_task (fx, &fx->ids[1], MT_STATUS_FINISHED);
}

/* Complete and kept; deleted by the upkeep tick once its time is up. */
static void
check_group_kept (fx_t *fx)
{
   bson_t *group = find_id (fx, MT_GROUPS_COLLECTION, &fx->ids[0]);

   ASSERT (group);
   ASSERT_CMPSTR (mt_test_str (group, "status"), "complete");
   bson_destroy (group);
   group_upkeep (fx, 0);
   ASSERT_CMPINT (count (fx, MT_GROUPS_COLLECTION, "{}"), ==, 1);
   group_upkeep (fx, 61 * 1000);
   assert_group_gone (fx, &fx->ids[0]);
}

static void
setup_group_two_pending (fx_t *fx)
{
   fx->ids[0] = group_new (fx, 0);
   fx->ids[1] = group_add (fx, &fx->ids[0], 1);
   fx->ids[2] = group_add (fx, &fx->ids[0], 2);
}

static bool
run_group_delete (fx_t *fx, bson_error_t *error)
{
   return mt_group_delete (fx->client, fx->db, &fx->ids[0], error);
}

/* Group 1 (ids[0]): stage 1 running with ids[1] ended but not counted
 * (its worker died) and ids[2] ended and counted; stage 2: ids[3]. Group 2
 * (ids[4]): its running stage 1 still has ids[5] WAITING (its release
 * failed). Group 3 (ids[6]): complete, kept 1 s. */
static void
setup_groups_upkeep (fx_t *fx)
{
   fx->ids[0] = group_new (fx, 0);
   fx->ids[1] = group_add (fx, &fx->ids[0], 1);
   fx->ids[2] = group_add (fx, &fx->ids[0], 1);
   fx->ids[3] = group_add (fx, &fx->ids[0], 2);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[0], &_error));
   end_task (fx, &fx->ids[1], MT_STATUS_FINISHED);
   group_end (fx, &fx->ids[0], 1, &fx->ids[2]);

   fx->ids[4] = group_new (fx, 0);
   fx->ids[5] = group_add (fx, &fx->ids[4], 1);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[4], &_error));
   set_by_id (fx, MT_TASKS_COLLECTION, &fx->ids[5], BCON_NEW ("$set", "{", "status", MT_STATUS_WAITING, "}"));

   fx->ids[6] = group_new (fx, 1);
   fx->ids[7] = group_add (fx, &fx->ids[6], 1);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[6], &_error));
   group_end (fx, &fx->ids[6], 1, &fx->ids[7]);
}

static bool
run_groups_upkeep (fx_t *fx, bson_error_t *error)
{
   return mt_groups_upkeep (fx->client, fx->db, mt_now_ms () + HOUR_MS, error);
}

static void
check_groups_upkeep (fx_t *fx)
{
   assert_stage (fx, &fx->ids[0], 1, "complete");
   assert_stage (fx, &fx->ids[0], 2, "running");
   ASSERT_STATUS (fx, &fx->ids[3], MT_STATUS_CREATED);
   ASSERT_STATUS (fx, &fx->ids[5], MT_STATUS_CREATED);
   assert_group_gone (fx, &fx->ids[6]);
   group_run_to_end (fx, &fx->ids[0]);
   group_run_to_end (fx, &fx->ids[4]);
}

/* Staged tasks whose group and stage documents are gone. */
static void
setup_group_orphans (fx_t *fx)
{
   setup_group_two_pending (fx);
   {
      mongoc_collection_t *groups = coll (fx, MT_GROUPS_COLLECTION);
      mongoc_collection_t *stages = coll (fx, MT_GROUP_STAGES_COLLECTION);
      bson_t all = BSON_INITIALIZER;

      MUST (mongoc_collection_delete_many (groups, &all, NULL, NULL, &_error));
      MUST (mongoc_collection_delete_many (stages, &all, NULL, NULL, &_error));
      mongoc_collection_destroy (groups);
      mongoc_collection_destroy (stages);
   }
}

static bool
run_groups_clean (fx_t *fx, bson_error_t *error)
{
   fx->n = mt_groups_clean (fx->client, fx->db, false, error);
   return fx->n >= 0;
}

static void
check_groups_clean (fx_t *fx)
{
   bson_t *group = find_id (fx, MT_GROUPS_COLLECTION, &fx->ids[0]);

   ASSERT (group);
   bson_destroy (group);
   ASSERT_CMPINT (count (fx, MT_GROUP_STAGES_COLLECTION, "{}"), ==, 2);
   group_run_to_end (fx, &fx->ids[0]);
}

static bool
run_groups_purge (fx_t *fx, bson_error_t *error)
{
   fx->n = mt_groups_clean (fx->client, fx->db, true, error);
   return fx->n >= 0;
}

/* ---- synchronizers ------------------------------------------------------------------ */

/* ids[1] stage 'report' (callable c2 on q2, the last); ids[0] stage
 * 'import' (callable c1 on q1, closing the running task of type 'big',
 * then 'report'); synchronizer 's' starting at 'import'. */
static void
setup_sync (fx_t *fx)
{
   bson_t *params = BCON_NEW ("x", BCON_INT32 (1));

   MUST (mt_sync_stage_create (fx->client, fx->db, "report", "c2", "q2", NULL, NULL, NULL, &fx->ids[1], &_error));
   MUST (mt_sync_stage_create (fx->client, fx->db, "import", "c1", "q1", "big", &fx->ids[1], params, &fx->ids[0], &_error));
   MUST (mt_sync_create (fx->client, fx->db, "s", &fx->ids[0], &_error));
   bson_destroy (params);
}

static void
setup_sync_stage (fx_t *fx)
{
   MUST (mt_sync_stage_create (fx->client, fx->db, "report", "c2", "q2", NULL, NULL, NULL, &fx->ids[1], &_error));
}

static bool
run_sync_stage_create (fx_t *fx, bson_error_t *error)
{
   bson_t *params = BCON_NEW ("x", BCON_INT32 (1));
   bool ok = mt_sync_stage_create (fx->client, fx->db, "import", "c1", "q1", "big", &fx->ids[1], params, &fx->ids[0], error);

   bson_destroy (params);
   return ok;
}

static void
check_sync_stages (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_SYNC_STAGES_COLLECTION, "{}"), ==, 2);
}

static void
setup_sync_start_stage (fx_t *fx)
{
   MUST (mt_sync_stage_create (fx->client, fx->db, "import", "c1", "q1", NULL, NULL, NULL, &fx->ids[0], &_error));
}

static bool
run_sync_create (fx_t *fx, bson_error_t *error)
{
   return mt_sync_create (fx->client, fx->db, "s", &fx->ids[0], error);
}

static void
check_sync_create (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_SYNCHRONIZERS_COLLECTION, "{'_id': 's', 'status': 'stand_by'}"), ==, 1);
}

static bool
run_sync_request_start (fx_t *fx, bson_error_t *error)
{
   return mt_sync_request_start (fx->client, fx->db, "s", error);
}

static void
check_sync_requested (fx_t *fx)
{
   bson_t *requested = BCON_NEW ("_id", "s", "start_at", "{", "$type", "date", "}");

   ASSERT_CMPINT (count_b (fx, MT_SYNCHRONIZERS_COLLECTION, requested), ==, 1);
   bson_destroy (requested);
}

static bool
run_sync_begin (fx_t *fx, bson_error_t *error)
{
   return mt_sync_begin_stage (fx->client, fx->db, "s", NULL, error);
}

static bool
sync_check (fx_t *fx, const char *name, bool *advanced, bson_error_t *error)
{
   return mt_sync_check_completion (fx->client, fx->db, name, advanced, error);
}

/* Begun, or still on stand-by: a later check finishes what a failed begin
 * left half done; one on stand-by begins again. */
static void
after_sync_begin (fx_t *fx, bool ok)
{
   bool advanced;

   (void) ok;
   if (count (fx, MT_SYNCHRONIZERS_COLLECTION, "{'_id': 's', 'status': 'stand_by'}")) {
      AGAIN (run_sync_begin, fx);
   } else {
      /* The checks of the next two ticks. */
      for (int tick = 0; tick < 2; tick++) {
         MUST (sync_check (fx, "s", &advanced, &_error));
         ASSERT (!advanced);
      }
   }
}

/* The synchronizer runs `stage` with its one callable released and
 * recorded; nothing else waits on its queue. */
static void
assert_sync_at (fx_t *fx, const char *name, const bson_oid_t *stage, const char *callable)
{
   bson_t *sync;
   mongoc_collection_t *syncs = coll (fx, MT_SYNCHRONIZERS_COLLECTION);
   bson_t *filter = BCON_NEW ("_id", name);
   bson_t doc;
   bool found;
   bson_iter_t iter;

   MUST (mt_find_one (syncs, filter, NULL, &doc, &found, &_error));
   ASSERT (found);
   sync = &doc;
   ASSERT_CMPSTR (mt_test_str (sync, "status"), "running");
   ASSERT (bson_iter_init_find (&iter, sync, "actual_stage") && BSON_ITER_HOLDS_OID (&iter));
   ASSERT (bson_oid_equal (bson_iter_oid (&iter), stage));
   ASSERT (bson_iter_init_find (&iter, sync, "stage_task") && BSON_ITER_HOLDS_OID (&iter));
   {
      bson_t *only = BCON_NEW ("type", callable);
      bson_t *waiting = BCON_NEW ("type", callable, "status", MT_STATUS_WAITING);

      ASSERT_CMPINT (count_b (fx, MT_TASKS_COLLECTION, only), ==, 1);
      ASSERT_CMPINT (count_b (fx, MT_TASKS_COLLECTION, waiting), ==, 0);
      ASSERT_STATUS (fx, bson_iter_oid (&iter), MT_STATUS_CREATED);
      bson_destroy (only);
      bson_destroy (waiting);
   }
   bson_destroy (&doc);
   bson_destroy (filter);
   mongoc_collection_destroy (syncs);
}

static void
check_sync_begun (fx_t *fx)
{
   assert_sync_at (fx, "s", &fx->ids[0], "c1");
}

/* 's' runs 'import'; its callable has ended; a task of type 'big' runs,
 * which the stage closes when it completes (ids[2]). */
static void
setup_sync_drained (fx_t *fx)
{
   setup_sync (fx);
   MUST (run_sync_begin (fx, &_error));
   update (fx, MT_TASKS_COLLECTION, "{'type': 'c1'}", "{'$set': {'status': 'FINISHED'}}");
   fx->ids[2] = enqueue (fx, "qb", "big", NULL);
   claim_for (fx, &fx->ids[2], "another");
}

static bool
run_sync_check (fx_t *fx, bson_error_t *error)
{
   bool advanced;

   return sync_check (fx, "s", &advanced, error);
}

/* The checks of the next ticks: one finishes the move, the next tidies
 * what the failure left among the callables. */
static void
after_sync_check (fx_t *fx, bool ok)
{
   (void) ok;
   AGAIN (run_sync_check, fx);
   AGAIN (run_sync_check, fx);
}

static void
check_sync_advanced (fx_t *fx)
{
   assert_sync_at (fx, "s", &fx->ids[1], "c2");
   ASSERT_STATUS (fx, &fx->ids[2], MT_STATUS_FINISHED);
}

/* 's' runs its last stage, whose callable has ended. */
static void
setup_sync_last (fx_t *fx)
{
   bool advanced;

   setup_sync_drained (fx);
   MUST (sync_check (fx, "s", &advanced, &_error));
   ASSERT (advanced);
   update (fx, MT_TASKS_COLLECTION, "{'type': 'c2'}", "{'$set': {'status': 'FINISHED'}}");
}

static void
check_sync_stand_by (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_SYNCHRONIZERS_COLLECTION, "{'_id': 's', 'status': 'stand_by', 'actual_stage': null}"), ==, 1);
}

/* 's' runs its one stage, which closes the running task of type 'big'
 * (ids[2]); its callable has ended. */
static void
setup_sync_close_last (fx_t *fx)
{
   MUST (mt_sync_stage_create (fx->client, fx->db, "only", "c3", "q3", "big", NULL, NULL, &fx->ids[0], &_error));
   MUST (mt_sync_create (fx->client, fx->db, "s", &fx->ids[0], &_error));
   MUST (run_sync_begin (fx, &_error));
   update (fx, MT_TASKS_COLLECTION, "{'type': 'c3'}", "{'$set': {'status': 'FINISHED'}}");
   fx->ids[2] = enqueue (fx, "qb", "big", NULL);
   claim_for (fx, &fx->ids[2], "another");
}

/* On stand-by, its close still to do: the upkeep tick finishes it. */
static void
after_sync_close_last (fx_t *fx, bool ok)
{
   (void) ok;
   MUST (mt_sync_upkeep (&fx->ctx, fx->client, &_error));
   MUST (mt_sync_upkeep (&fx->ctx, fx->client, &_error));
}

static void
check_sync_closed (fx_t *fx)
{
   check_sync_stand_by (fx);
   ASSERT_CMPINT (count (fx, MT_SYNCHRONIZERS_COLLECTION, "{'closing': {'$exists': true}}"), ==, 0);
   ASSERT_STATUS (fx, &fx->ids[2], MT_STATUS_FINISHED);
}

/* 's' asked to start; 't' running its one stage, drained. */
static void
setup_sync_upkeep (fx_t *fx)
{
   bool advanced;

   setup_sync (fx);
   MUST (mt_sync_request_start (fx->client, fx->db, "s", &_error));
   MUST (mt_sync_stage_create (fx->client, fx->db, "only", "c3", "q3", NULL, NULL, NULL, &fx->ids[3], &_error));
   MUST (mt_sync_create (fx->client, fx->db, "t", &fx->ids[3], &_error));
   MUST (mt_sync_begin_stage (fx->client, fx->db, "t", NULL, &_error));
   MUST (sync_check (fx, "t", &advanced, &_error));
   ASSERT (!advanced);
   update (fx, MT_TASKS_COLLECTION, "{'type': 'c3'}", "{'$set': {'status': 'FINISHED'}}");
}

static bool
run_sync_upkeep (fx_t *fx, bson_error_t *error)
{
   return mt_sync_upkeep (&fx->ctx, fx->client, error);
}

static void
after_sync_upkeep (fx_t *fx, bool ok)
{
   (void) ok;
   /* The next ticks. */
   AGAIN (run_sync_upkeep, fx);
   AGAIN (run_sync_upkeep, fx);
}

static void
check_sync_upkeep (fx_t *fx)
{
   assert_sync_at (fx, "s", &fx->ids[0], "c1");
   ASSERT_CMPINT (count (fx, MT_SYNCHRONIZERS_COLLECTION, "{'_id': 't', 'status': 'stand_by'}"), ==, 1);
}

/* ---- concurrency slots -------------------------------------------------------------- */

static bool
run_pool_set (fx_t *fx, bson_error_t *error)
{
   return mt_pool_set (fx->client, fx->db, "p", 3, 10, error);
}

static void
check_pool_set (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_POOLS_COLLECTION, "{'_id': 'p', 'size': 3, 'timeout_seconds': 10}"), ==, 1);
   ASSERT_CMPINT (count (fx, MT_SLOTS_COLLECTION, "{'pool': 'p', 'task': null}"), ==, 3);
}

/* Holds slot `index` of pool p for a run of `task` by `worker`; the
 * keepalive `age_ms` ago. */
static void
hold_slot (fx_t *fx, int index, const bson_oid_t *task, const char *worker, int64_t age_ms)
{
   char id[16];
   bson_t *filter, *change;

   bson_snprintf (id, sizeof id, "p#%d", index);
   filter = BCON_NEW ("_id", id);
   change = BCON_NEW ("$set", "{", "task", BCON_OID (task), "worker_pid", worker, "attempt", BCON_INT32 (1), "acquired",
                      BCON_DATE_TIME (mt_now_ms () - age_ms), "keepalive", BCON_DATE_TIME (mt_now_ms () - age_ms), "}");
   update_b (fx, MT_SLOTS_COLLECTION, filter, change);
   bson_destroy (filter);
   bson_destroy (change);
}

/* Pool p of `size` (timeout 1 s when `timeout`); ids[0] runs on this
 * worker, attempt 1: the owner that wants a slot. */
static void
setup_pool (fx_t *fx, int32_t size, bool timeout)
{
   MUST (mt_pool_set (fx->client, fx->db, "p", size, timeout ? 1 : 0, &_error));
   fx->ids[0] = enqueue (fx, "q", "echo", NULL);
   claim_for (fx, &fx->ids[0], WORKER_ID);
}

static void
setup_slot_free (fx_t *fx)
{
   setup_pool (fx, 2, false);
}

/* The only slot is held by a run that is over (ids[1] ended). */
static void
setup_slot_stale (fx_t *fx)
{
   setup_pool (fx, 1, false);
   fx->ids[1] = enqueue (fx, "q", "echo", NULL);
   claim_for (fx, &fx->ids[1], "another");
   hold_slot (fx, 0, &fx->ids[1], "another", 0);
   end_task (fx, &fx->ids[1], MT_STATUS_FINISHED);
}

/* The only slot is held by a live run (ids[1], its last attempt, in stage 1
 * of group ids[2], whose stage 2 is ids[3]) whose keepalive is an hour
 * old, past the pool's timeout. */
static void
setup_slot_timed_out (fx_t *fx)
{
   setup_pool (fx, 1, true);
   fx->ids[2] = group_new (fx, 0);
   {
      bson_t *opts = BCON_NEW ("max_attempts", BCON_INT32 (1));

      MUST (mt_group_enqueue (fx->client, fx->db, &fx->ids[2], 1, "q", "echo", NULL, opts, &fx->ids[1], &_error));
      bson_destroy (opts);
   }
   fx->ids[3] = group_add (fx, &fx->ids[2], 2);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[2], &_error));
   claim_for (fx, &fx->ids[1], "another");
   hold_slot (fx, 0, &fx->ids[1], "another", HOUR_MS);
}

static bool
run_slot_acquire (fx_t *fx, bson_error_t *error)
{
   bson_value_t value;
   mt_lock_owner_t owner = owner_of (fx, &value);
   char slot_id[64] = "";
   bool got = false;
   bool ok = mt_slot_acquire (&fx->ctx, fx->client, "p", &owner, &got, slot_id, sizeof slot_id, error);

   ASSERT (!ok || (got && !strncmp (slot_id, "p#", 2)));
   return ok;
}

static void
check_slot_held (fx_t *fx)
{
   bson_t *filter = BCON_NEW ("task", BCON_OID (&fx->ids[0]), "attempt", BCON_INT32 (1), "worker_pid", WORKER_ID);

   ASSERT_CMPINT (count_b (fx, MT_SLOTS_COLLECTION, filter), ==, 1);
   bson_destroy (filter);
}

/* The timed-out run failed (its last attempt) and counted in its stage:
 * stage 2 runs. */
static void
after_slot_timed_out (fx_t *fx, bool ok)
{
   if (!ok) {
      AGAIN (run_slot_acquire, fx);
   }
   /* Taken, its run not failed yet: the slot's timed_out record has the
    * upkeep tick do it. */
   MUST (mt_slots_upkeep (&fx->ctx, fx->client, &_error));
   group_upkeep (fx, 0);
}

static void
check_slot_timed_out (fx_t *fx)
{
   bson_t *doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[1]);

   check_slot_held (fx);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), MT_STATUS_FAILED);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_TIMEOUT);
   bson_destroy (doc);
   assert_stage (fx, &fx->ids[2], 2, "running");
   ASSERT_STATUS (fx, &fx->ids[3], MT_STATUS_CREATED);
}

static void
setup_slot_taken (fx_t *fx)
{
   setup_pool (fx, 2, false);
   MUST (run_slot_acquire (fx, &_error));
}

static bool
run_slot_release (fx_t *fx, bson_error_t *error)
{
   bson_value_t value = oid_value (&fx->ids[0]);

   return mt_slot_release (fx->client, fx->db, &value, 1, error);
}

static void
check_slots_free (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_SLOTS_COLLECTION, "{'task': {'$ne': null}}"), ==, 0);
}

static bool
run_slot_keepalive (fx_t *fx, bson_error_t *error)
{
   return mt_slot_keepalive (fx->client, fx->db, &fx->ids[0], error);
}

static bool
run_slot_touch (fx_t *fx, bson_error_t *error)
{
   bson_value_t value = oid_value (&fx->ids[0]);
   bool held = false;
   bool ok = mt_slot_touch (fx->client, fx->db, &value, 1, &held, error);

   ASSERT (!ok || held);
   return ok;
}

static bool
run_slot_stop (fx_t *fx, bson_error_t *error)
{
   return mt_slot_stop (fx->client, fx->db, &fx->ids[0], error);
}

static void
check_slot_stopped (fx_t *fx)
{
   ASSERT_STATUS (fx, &fx->ids[0], MT_STATUS_CANCELLED);
   check_slots_free (fx);
}

/* Pool p of 3, timeout 1 s: slot 0 held by a run that is over (ids[1]),
 * slot 1 by a live run whose keepalive is an hour old (ids[2], attempt 1
 * of 3), slot 2 by a live run kept alive (ids[3]). */
static void
setup_slots_upkeep (fx_t *fx)
{
   setup_pool (fx, 3, true);
   for (int i = 1; i <= 3; i++) {
      fx->ids[i] = enqueue (fx, "q", "echo", NULL);
      claim_for (fx, &fx->ids[i], "another");
      hold_slot (fx, i - 1, &fx->ids[i], "another", i == 2 ? HOUR_MS : 0);
   }
   end_task (fx, &fx->ids[1], MT_STATUS_FINISHED);
}

static bool
run_slots_upkeep (fx_t *fx, bson_error_t *error)
{
   return mt_slots_upkeep (&fx->ctx, fx->client, error);
}

static void
check_slots_upkeep (fx_t *fx)
{
   bson_t *doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[2]);

   ASSERT_CMPINT (count (fx, MT_SLOTS_COLLECTION, "{'task': {'$ne': null}}"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), MT_STATUS_CREATED);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_TIMEOUT);
   bson_destroy (doc);
   ASSERT_STATUS (fx, &fx->ids[3], MT_STATUS_WORK_IN_PROGRESS);
}

static bool
run_slot_state (fx_t *fx, bson_error_t *error)
{
   bson_value_t value = oid_value (&fx->ids[0]);
   mt_slot_state_t state;

   (void) error;
   mt_slot_state (fx->client, fx->db, &value, 1, &state);
   fx->n = (state.holds ? 1 : 0) | (state.cancelled ? 2 : 0);
   return true;
}

static void
check_slot_state_holds (fx_t *fx)
{
   ASSERT_CMPINT (fx->n, ==, 1);
}

static void
setup_slot_state_stopped (fx_t *fx)
{
   setup_slot_taken (fx);
   MUST (run_slot_stop (fx, &_error));
}

static void
check_slot_state_stopped (fx_t *fx)
{
   ASSERT_CMPINT (fx->n, ==, 2);
}

static void
after_slot_state (fx_t *fx, bool ok)
{
   (void) ok;
   /* What it could not read, it says it does not know: the run still
    * holds its slot, and nothing is called. Never "timed out" for a stop. */
   ASSERT_CMPINT (fx->n & 1, ==, 1);
   AGAIN (run_slot_state, fx);
}

/* ---- repeating tasks ------------------------------------------------------------------ */

/* A run of a series (every minute) that ended and planned its successor,
 * not created yet: fx->doc, ids[0]; ids[1] the successor's _id. */
static void
setup_ended_run (fx_t *fx)
{
   bson_t *doc, set, change = BSON_INITIALIZER;
   mt_task_doc_t task;
   bson_error_t error;
   bson_iter_t iter;

   fx->ids[0] = enqueue (fx, "q", "echo", "{'repeat': 60}");
   claim_for (fx, &fx->ids[0], WORKER_ID);
   doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[0]);
   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   BSON_APPEND_DOCUMENT_BEGIN (&change, "$set", &set);
   BSON_APPEND_UTF8 (&set, "status", MT_STATUS_FINISHED);
   BSON_APPEND_NULL (&set, "worker_pid");
   mt_schedule_append_next (&set, &task, false, mt_now_ms ());
   bson_append_document_end (&change, &set);
   bson_destroy (doc);
   set_by_id (fx, MT_TASKS_COLLECTION, &fx->ids[0], bson_copy (&change));
   bson_destroy (&change);
   doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[0]);
   bson_destroy (&fx->doc);
   bson_copy_to (doc, &fx->doc);
   bson_destroy (doc);
   ASSERT (bson_iter_init (&iter, &fx->doc) && bson_iter_find_descendant (&iter, "next._id", &iter) && BSON_ITER_HOLDS_OID (&iter));
   bson_oid_copy (bson_iter_oid (&iter), &fx->ids[1]);
}

static bool
run_create_successor (fx_t *fx, bson_error_t *error)
{
   return mt_schedule_create_successor (&fx->ctx, fx->client, &fx->doc, false, error);
}

static bool
run_repair_successor (fx_t *fx, bson_error_t *error)
{
   return mt_schedule_create_successor (&fx->ctx, fx->client, &fx->doc, true, error);
}

static bool
run_schedule_upkeep (fx_t *fx, bson_error_t *error)
{
   return mt_schedule_upkeep (&fx->ctx, fx->client, error);
}

/* The worker logs a failed creation; the upkeep tick creates it. */
static void
after_successor (fx_t *fx, bool ok)
{
   (void) ok;
   AGAIN (run_schedule_upkeep, fx);
}

static void
check_successor (fx_t *fx)
{
   bson_t *ended = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[0]);

   ASSERT_STATUS (fx, &fx->ids[1], MT_STATUS_CREATED);
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'status': 'CREATED'}"), ==, 1);
   ASSERT (ended);
   ASSERT (mt_test_has (ended, "next.created"));
   ASSERT_CMPSTR (mt_test_str (ended, "status"), MT_STATUS_FINISHED);
   bson_destroy (ended);
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'next.created': true}"), ==, 1);
}

/* Two ended runs of two series: one planned its successor and did not
 * create it; the other was ended without planning one (ids[2]). */
static void
setup_schedule_upkeep (fx_t *fx)
{
   setup_ended_run (fx);
   fx->ids[2] = enqueue (fx, "q", "echo", "{'repeat': 60}");
   end_task (fx, &fx->ids[2], MT_STATUS_FINISHED);
}

static void
check_schedule_upkeep (fx_t *fx)
{
   ASSERT_STATUS (fx, &fx->ids[1], MT_STATUS_CREATED);
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'status': 'CREATED'}"), ==, 2);
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'next.created': true}"), ==, 2);
}

/* ---- the archive and retention -------------------------------------------------------- */

static void
setup_ended (fx_t *fx)
{
   for (int i = 0; i < 3; i++) {
      fx->ids[i] = enqueue (fx, "q", "echo", NULL);
      end_task (fx, &fx->ids[i], MT_STATUS_FINISHED);
   }
}

static bool
run_archive_move (fx_t *fx, bson_error_t *error)
{
   bson_value_t value = oid_value (&fx->ids[0]);
   bool moved = false;
   bool ok = mt_archive_move (fx->client, fx->db, &value, &moved, error);

   if (ok && !moved) {
      /* Moved by an earlier try, whose failure came after the move. */
      bson_t *doc = find_id (fx, MT_TASKS_COLLECTION, &fx->ids[0]);

      ASSERT (!doc);
   }
   return ok;
}

static void
check_archive_move (fx_t *fx)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (&fx->ids[0]));

   ASSERT_CMPINT (count_b (fx, MT_TASKS_COLLECTION, filter), ==, 0);
   ASSERT_CMPINT (count_b (fx, MT_COMPLETED_COLLECTION, filter), ==, 1);
   ASSERT_CMPINT (count (fx, MT_COMPLETED_COLLECTION, "{'status': 'FINISHED'}"), ==, 1);
   bson_destroy (filter);
}

static bool
run_archive_sweep (fx_t *fx, bson_error_t *error)
{
   bson_t *queues = queues_q ();

   fx->n = mt_archive_sweep (&fx->ctx, fx->client, queues, error);
   bson_destroy (queues);
   return fx->n >= 0;
}

static void
check_archive_sweep (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{}"), ==, 0);
   ASSERT_CMPINT (count (fx, MT_COMPLETED_COLLECTION, "{}"), ==, 3);
}

/* Three ended an hour ago, two in tasks, one in the archive. */
static void
setup_purge (fx_t *fx)
{
   bson_t *old = BCON_NEW ("$set", "{", "finished", BCON_DATE_TIME (mt_now_ms () - HOUR_MS), "}");
   bool moved;

   setup_ended (fx);
   update_b (fx, MT_TASKS_COLLECTION, &(bson_t) BSON_INITIALIZER, old);
   {
      bson_value_t value = oid_value (&fx->ids[2]);

      MUST (mt_archive_move (fx->client, fx->db, &value, &moved, &_error));
   }
   bson_destroy (old);
}

static bool
run_purge (fx_t *fx, bson_error_t *error)
{
   fx->n = mt_purge (fx->client, fx->db, NULL, 60, NULL, false, error);
   return fx->n >= 0;
}

static void
check_purge (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{}"), ==, 0);
   ASSERT_CMPINT (count (fx, MT_COMPLETED_COLLECTION, "{}"), ==, 0);
}

static bool
run_purge_dry (fx_t *fx, bson_error_t *error)
{
   const char *statuses[] = {MT_STATUS_FINISHED, MT_STATUS_FAILED, NULL};

   fx->n = mt_purge (fx->client, fx->db, NULL, 60, statuses, true, error);
   return fx->n >= 0;
}

static void
check_purge_dry (fx_t *fx)
{
   ASSERT_CMPINT (fx->n, ==, 3);
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{}"), ==, 2);
}

static bool
run_retention_set (fx_t *fx, bson_error_t *error)
{
   return mt_retention_set (fx->client, fx->db, MT_COMPLETED_COLLECTION, 3600, error);
}

static void
setup_retention (fx_t *fx)
{
   insert (fx, MT_COMPLETED_COLLECTION, "{'status': 'FINISHED'}");
   MUST (run_retention_set (fx, &_error));
}

static bool
run_retention_drop (fx_t *fx, bson_error_t *error)
{
   return mt_retention_set (fx->client, fx->db, MT_COMPLETED_COLLECTION, -1, error);
}

/* ---- leases ------------------------------------------------------------------------------ */

static bool
run_heartbeat (fx_t *fx, bson_error_t *error)
{
   bson_t *fields = BCON_NEW ("status", "running", "host", "faults");
   bson_t *held = BCON_NEW ("0", BCON_OID (&fx->ids[0]));
   bool ok = mt_lease_heartbeat (&fx->ctx, fx->client, fields, held, NULL, error);

   bson_destroy (fields);
   bson_destroy (held);
   return ok;
}

static void
setup_heartbeat (fx_t *fx)
{
   setup_one_task (fx);
   claim_for (fx, &fx->ids[0], WORKER_ID);
}

static void
check_heartbeat (fx_t *fx)
{
   ASSERT_CMPINT (count (fx, MT_WORKERS_COLLECTION, "{'_id': '" WORKER_ID "', 'status': 'running'}"), ==, 1);
}

/* Worker 'gone' went silent an hour ago, running ids[0] (attempt 1 of 3,
 * holding account 'a' and slot p#0) and ids[1] (its last attempt, stage 1
 * of group ids[2], whose stage 2 is ids[3]). */
static void
setup_lost_worker (fx_t *fx)
{
   bson_t *silent = BCON_NEW ("$set", "{", "heartbeat", BCON_DATE_TIME (mt_now_ms () - HOUR_MS), "}");
   bson_t *worker = BCON_NEW ("_id", "gone", "status", "running", "heartbeat", BCON_DATE_TIME (mt_now_ms () - HOUR_MS));
   bson_t *max_one = BCON_NEW ("max_attempts", BCON_INT32 (1));
   const char *accounts[] = {"a"};
   mt_lock_owner_t owner;
   bson_value_t value;

   MUST (mt_pool_set (fx->client, fx->db, "p", 1, 0, &_error));
   fx->ids[0] = enqueue (fx, "q", "echo", NULL);
   claim_for (fx, &fx->ids[0], "gone");
   hold_slot (fx, 0, &fx->ids[0], "gone", 0);
   value = oid_value (&fx->ids[0]);
   owner.task_id = &value;
   owner.worker_id = "gone";
   owner.attempt = 1;
   MUST (mt_locks_acquire (fx->client, fx->db, &owner, accounts, 1, NULL, &_error));

   fx->ids[2] = group_new (fx, 0);
   MUST (mt_group_enqueue (fx->client, fx->db, &fx->ids[2], 1, "q", "echo", NULL, max_one, &fx->ids[1], &_error));
   fx->ids[3] = group_add (fx, &fx->ids[2], 2);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[2], &_error));
   claim_for (fx, &fx->ids[1], "gone");

   update_b (fx, MT_TASKS_COLLECTION, &(bson_t) BSON_INITIALIZER, silent);
   insert_b (fx, MT_WORKERS_COLLECTION, worker);
   bson_destroy (silent);
   bson_destroy (worker);
   bson_destroy (max_one);
}

static bool
run_reclaim (fx_t *fx, bson_error_t *error)
{
   fx->n = mt_lease_reclaim (&fx->ctx, fx->client, false, error);
   return fx->n >= 0;
}

/* The next heartbeat takes back what this one could not; what it could not
 * release lapses: the slot upkeep frees the slot, the group upkeep counts
 * the task. */
static void
after_reclaim (fx_t *fx, bool ok)
{
   (void) ok;
   AGAIN (run_reclaim, fx);
   MUST (mt_slots_upkeep (&fx->ctx, fx->client, &_error));
   group_upkeep (fx, 0);
}

static void
check_reclaim (fx_t *fx)
{
   const char *accounts[] = {"a"};
   bson_oid_t other;
   bson_value_t value;
   mt_lock_owner_t owner;

   ASSERT_STATUS (fx, &fx->ids[0], MT_STATUS_CREATED);
   ASSERT_STATUS (fx, &fx->ids[1], MT_STATUS_FAILED);
   check_slots_free (fx);
   assert_stage (fx, &fx->ids[2], 2, "running");
   ASSERT_STATUS (fx, &fx->ids[3], MT_STATUS_CREATED);
   ASSERT_CMPINT (count (fx, MT_WORKERS_COLLECTION, "{'_id': 'gone', 'status': 'lost'}"), ==, 1);
   /* The account is free for another run. */
   bson_oid_init (&other, NULL);
   value = oid_value (&other);
   owner.task_id = &value;
   owner.worker_id = WORKER_ID;
   owner.attempt = 1;
   MUST (mt_locks_acquire (fx->client, fx->db, &owner, accounts, 1, NULL, &_error));
}

static void
setup_own_left (fx_t *fx)
{
   setup_one_task (fx);
   claim_for (fx, &fx->ids[0], WORKER_ID);
}

static bool
run_reclaim_own (fx_t *fx, bson_error_t *error)
{
   fx->n = mt_lease_reclaim (&fx->ctx, fx->client, true, error);
   return fx->n >= 0;
}

static void
check_reclaim_own (fx_t *fx)
{
   ASSERT_STATUS (fx, &fx->ids[0], MT_STATUS_CREATED);
}

/* ---- the upkeep tick --------------------------------------------------------------------------- */

/* Work for each part of the tick: a stage to count and complete (the
 * groups), a synchronizer to begin, a slot to take back, a successor to
 * create. */
static void
setup_upkeep_tick (fx_t *fx)
{
   setup_slots_upkeep (fx);
   setup_group_two_stages (fx);
   MUST (mt_sync_stage_create (fx->client, fx->db, "only", "c3", "q3", NULL, NULL, NULL, &fx->ids[3], &_error));
   MUST (mt_sync_create (fx->client, fx->db, "s", &fx->ids[3], &_error));
   MUST (mt_sync_request_start (fx->client, fx->db, "s", &_error));
   fx->ids[4] = enqueue (fx, "q", "echo", "{'repeat': 60}");
   end_task (fx, &fx->ids[4], MT_STATUS_FINISHED);
}

static bool
run_upkeep_tick (fx_t *fx, bson_error_t *error)
{
   return mt_upkeep_tick (&fx->ctx, fx->client, error);
}

/* The next tick, a tick later. */
static void
after_upkeep_tick (fx_t *fx, bool ok)
{
   (void) ok;
   mt_server_clock_set (&fx->ctx, HOUR_MS);
   AGAIN (run_upkeep_tick, fx);
}

static void
check_upkeep_tick (fx_t *fx)
{
   assert_stage (fx, &fx->ids[0], 2, "running");
   ASSERT_STATUS (fx, &fx->ids[2], MT_STATUS_CREATED);
   ASSERT_CMPINT (count (fx, MT_SYNCHRONIZERS_COLLECTION, "{'_id': 's', 'status': 'running'}"), ==, 1);
   ASSERT_CMPINT (count (fx, MT_SLOTS_COLLECTION, "{'_id': {'$in': ['p#0', 'p#1']}, 'task': null}"), ==, 2);
   ASSERT_CMPINT (count (fx, MT_TASKS_COLLECTION, "{'next.created': true}"), ==, 1);
   /* Another tick at once is not this worker's: another has it. */
   AGAIN (run_upkeep_tick, fx);
}

/* ---- the admin API ---------------------------------------------------------------------- */

/* A little of everything: synchronizer 's' begun (stages ids[5], ids[6]);
 * task ids[0] running on this worker with unique key 'u', account 'a' and
 * slot p#0, beside a stale lock and a slot of an undeclared pool; a
 * repeating task and a cron task; an ended task, in the archive too; group
 * ids[2] started, its stages ids[3] and ids[4]; a TTL index. */
static void
setup_admin (fx_t *fx)
{
   const char *accounts[] = {"a"};
   bson_value_t value;
   mt_lock_owner_t owner;
   bool moved;

   setup_sync (fx);
   MUST (run_sync_begin (fx, &_error));
   fx->ids[5] = fx->ids[0];
   fx->ids[6] = fx->ids[1];

   setup_pool (fx, 2, true);
   set_by_id (fx, MT_TASKS_COLLECTION, &fx->ids[0], BCON_NEW ("$set", "{", "unique_key", "u", MT_UNIQUE_HELD_FIELD, "u", "}"));
   hold_slot (fx, 0, &fx->ids[0], WORKER_ID, 0);
   owner = owner_of (fx, &value);
   MUST (mt_locks_acquire (fx->client, fx->db, &owner, accounts, 1, NULL, &_error));
   insert (fx, MT_LOCKS_COLLECTION, "{'_id': 'b', 'task': 'gone', 'attempt': 1, 'worker_pid': 'gone'}");
   insert (fx, MT_SLOTS_COLLECTION, "{'_id': 'ghost#0', 'pool': 'ghost', 'index': 0, 'task': 'gone', 'attempt': 1}");

   fx->ids[1] = enqueue (fx, "q", "echo", "{'repeat': 60}");
   enqueue (fx, "q", "echo", "{'cron': '0 6 * * 1-5', 'timezone': 'Europe/Berlin'}");
   fx->ids[7] = enqueue (fx, "q", "echo", NULL);
   end_task (fx, &fx->ids[7], MT_STATUS_FINISHED);
   value = oid_value (&fx->ids[7]);
   MUST (mt_archive_move (fx->client, fx->db, &value, &moved, &_error));
   fx->ids[7] = enqueue (fx, "q", "echo", NULL);
   end_task (fx, &fx->ids[7], MT_STATUS_FAILED);

   fx->ids[2] = group_new (fx, 0);
   fx->ids[3] = group_add (fx, &fx->ids[2], 1);
   fx->ids[4] = group_add (fx, &fx->ids[2], 2);
   MUST (mt_group_initiate (fx->client, fx->db, &fx->ids[2], &_error));
   MUST (mt_retention_set (fx->client, fx->db, MT_TASKS_COLLECTION, 86400, &_error));
}

/* An admin call: on failure its reply names the collection it could not
 * read. */
#define ADMIN_OP(fn, call)                                                 \
   static bool fn (fx_t *fx, bson_error_t *error)                          \
   {                                                                       \
      bson_t reply;                                                        \
      bool ok = (call);                                                    \
                                                                           \
      if (!ok) {                                                           \
         ASSERT (mt_test_has (&reply, "collection"));                      \
      }                                                                    \
      fx->n = ok ? bson_count_keys (&reply) : 0;                           \
      bson_destroy (&reply);                                               \
      return ok;                                                           \
   }

ADMIN_OP (run_admin_stats, mt_admin_stats (fx->client, fx->db, NULL, &reply, error))
ADMIN_OP (run_admin_tasks, mt_admin_tasks (fx->client, fx->db, NULL, &reply, error))
ADMIN_OP (run_admin_task, mt_admin_task (fx->client, fx->db, &fx->ids[0], NULL, &reply, error))
ADMIN_OP (run_admin_unique_holder, mt_admin_unique_holder (fx->client, fx->db, "u", NULL, &reply, error))
ADMIN_OP (run_admin_locks, mt_admin_locks (fx->client, fx->db, NULL, &reply, error))
ADMIN_OP (run_admin_groups, mt_admin_groups (fx->client, fx->db, NULL, &reply, error))
ADMIN_OP (run_admin_group, mt_admin_group (fx->client, fx->db, &fx->ids[2], NULL, &reply, error))
ADMIN_OP (run_admin_syncs, mt_admin_syncs (fx->client, fx->db, NULL, &reply, error))
ADMIN_OP (run_admin_sync, mt_admin_sync (fx->client, fx->db, "s", NULL, &reply, error))
ADMIN_OP (run_admin_sync_stage, mt_admin_sync_stage (fx->client, fx->db, &fx->ids[5], NULL, &reply, error))
ADMIN_OP (run_admin_slots, mt_admin_slots (fx->client, fx->db, NULL, &reply, error))
ADMIN_OP (run_admin_pool, mt_admin_pool (fx->client, fx->db, "p", NULL, &reply, error))
ADMIN_OP (run_admin_task_slots, mt_admin_task_slots (fx->client, fx->db, &fx->ids[0], NULL, &reply, error))
ADMIN_OP (run_admin_schedules, mt_admin_schedules (fx->client, fx->db, NULL, &reply, error))
ADMIN_OP (run_admin_retention, mt_admin_retention (fx->client, fx->db, NULL, &reply, error))

/* ---- the operations ------------------------------------------------------------------------ */

static const op_t ops[] = {
   /* The store. */
   {"store/enqueue", NULL, run_enqueue, NULL, check_enqueue, NULL},
   {"store/enqueue_unique", setup_unique, run_enqueue_unique, NULL, check_unique, NULL},
   {"store/indexes_ensure", NULL, run_indexes, NULL, NULL, NULL},
   {"store/claim", setup_one_task, run_claim, NULL, check_claimed, NULL},
   {"store/claim_batch", setup_three_tasks, run_claim_batch, after_claim_batch, check_batch, NULL},
   {"store/update_claimed", setup_claimed, run_update_claimed, NULL, check_update_claimed, NULL},
   {"store/sweep", setup_malformed, run_store_sweep, NULL, check_store_sweep, NULL},
   /* Account locks. */
   {"locks/acquire", setup_lock_owner, run_locks_acquire, NULL, check_locks_held, NULL},
   {"locks/release", setup_locks_held, run_locks_release, NULL, check_no_locks, NULL},
   {"locks/release_all", setup_locks_held, run_locks_release_all, NULL, check_no_locks, NULL},
   {"locks/run_is_live", setup_heartbeat, run_is_live, NULL, NULL, NULL},
   /* Staged groups. */
   {"groups/create", NULL, run_group_create, NULL, check_group_create, NULL},
   {"groups/enqueue", setup_group_pending, run_group_enqueue, NULL, check_group_ends,
    /* After the insert, whether the stage started meanwhile (the new task
     * is then released at once) is looked at once; when that look fails,
     * the upkeep tick releases the WAITING tasks of running stages. */
    "the late release of a task whose stage started meanwhile"},
   {"groups/enqueue_running", setup_group_running, run_group_enqueue, NULL, check_group_ends, NULL},
   {"groups/initiate", setup_group_initiate, run_group_initiate, NULL, check_second_stage, NULL},
   {"groups/task_ended", setup_group_two_stages, run_group_task_ended, after_group_task_ended, check_second_stage, NULL},
   {"groups/task_ended_last", setup_group_last_stage, run_group_task_ended, after_group_task_ended, check_group_gone, NULL},
   {"groups/task_ended_kept", setup_group_kept, run_group_task_ended, after_group_task_ended, check_group_kept, NULL},
   {"groups/delete", setup_group_two_pending, run_group_delete, NULL, check_group_gone, NULL},
   {"groups/upkeep", setup_groups_upkeep, run_groups_upkeep, NULL, check_groups_upkeep, NULL},
   {"groups/clean", setup_group_orphans, run_groups_clean, NULL, check_groups_clean, NULL},
   {"groups/purge", setup_group_two_pending, run_groups_purge, NULL, check_group_gone, NULL},
   /* Synchronizers. */
   {"syncs/stage_create", setup_sync_stage, run_sync_stage_create, NULL, check_sync_stages, NULL},
   {"syncs/create", setup_sync_start_stage, run_sync_create, NULL, check_sync_create, NULL},
   {"syncs/request_start", setup_sync, run_sync_request_start, NULL, check_sync_requested, NULL},
   {"syncs/begin_stage", setup_sync, run_sync_begin, after_sync_begin, check_sync_begun, NULL},
   {"syncs/check_completion", setup_sync_drained, run_sync_check, after_sync_check, check_sync_advanced, NULL},
   {"syncs/check_completion_last", setup_sync_last, run_sync_check, after_sync_check, check_sync_stand_by, NULL},
   {"syncs/check_completion_close_last", setup_sync_close_last, run_sync_check, after_sync_close_last, check_sync_closed, NULL},
   {"syncs/upkeep", setup_sync_upkeep, run_sync_upkeep, after_sync_upkeep, check_sync_upkeep,
    /* Each synchronizer that cannot begin or advance now is logged and
     * left to the next tick. */
    "a synchronizer that cannot begin or advance waits for the next tick", true},
   /* Concurrency slots. */
   {"slots/pool_set", NULL, run_pool_set, NULL, check_pool_set, NULL},
   {"slots/acquire", setup_slot_free, run_slot_acquire, NULL, check_slot_held, NULL},
   {"slots/acquire_stale", setup_slot_stale, run_slot_acquire, NULL, check_slot_held, NULL},
   {"slots/acquire_timed_out", setup_slot_timed_out, run_slot_acquire, after_slot_timed_out, check_slot_timed_out,
    "failing the run whose slot it took: the slot records it (timed_out) and the upkeep tick fails it", true},
   {"slots/release", setup_slot_taken, run_slot_release, NULL, check_slots_free, NULL},
   {"slots/keepalive", setup_slot_taken, run_slot_keepalive, NULL, check_slot_held, NULL},
   {"slots/touch", setup_slot_taken, run_slot_touch, NULL, check_slot_held, NULL},
   {"slots/stop", setup_slot_taken, run_slot_stop, NULL, check_slot_stopped, NULL},
   {"slots/upkeep", setup_slots_upkeep, run_slots_upkeep, NULL, check_slots_upkeep, NULL},
   {"slots/state", setup_slot_taken, run_slot_state, after_slot_state, check_slot_state_holds,
    /* mt_slot_state has no error: what it cannot read it reports as "the
     * run still holds its slot", and the watcher does nothing. */
    "the slot watcher's read"},
   {"slots/state_stopped", setup_slot_state_stopped, run_slot_state, after_slot_state, check_slot_state_stopped,
    "the slot watcher's read"},
   /* Repeating tasks. */
   {"schedule/create_successor", setup_ended_run, run_create_successor, after_successor, check_successor, NULL},
   {"schedule/repair_successor", setup_ended_run, run_repair_successor, after_successor, check_successor, NULL},
   {"schedule/upkeep", setup_schedule_upkeep, run_schedule_upkeep, NULL, check_schedule_upkeep, NULL},
   /* The archive and retention. */
   {"archive/move", setup_ended, run_archive_move, NULL, check_archive_move, NULL},
   {"archive/sweep", setup_ended, run_archive_sweep, NULL, check_archive_sweep, NULL},
   {"archive/purge", setup_purge, run_purge, NULL, check_purge, NULL},
   {"archive/purge_dry_run", setup_purge, run_purge_dry, NULL, check_purge_dry, NULL},
   {"archive/retention_set", NULL, run_retention_set, NULL, NULL, NULL},
   {"archive/retention_drop", setup_retention, run_retention_drop, NULL, NULL, NULL},
   /* Leases. */
   {"leases/heartbeat", setup_heartbeat, run_heartbeat, NULL, check_heartbeat, NULL},
   {"leases/reclaim", setup_lost_worker, run_reclaim, after_reclaim, check_reclaim,
    /* A task that cannot be taken back now is logged and taken back by the
     * next heartbeat; what a taken-back run held lapses with it (its lock
     * is taken over by the next taker, the slot upkeep frees its slot, the
     * group upkeep counts it), each logged; marking its worker "lost" is
     * for the registry's readers and is done again at the next heartbeat. */
    "taking back one task, and what its run held"},
   {"leases/reclaim_own", setup_own_left, run_reclaim_own, NULL, check_reclaim_own, "taking back one task"},
   /* The upkeep tick. */
   {"upkeep/tick", setup_upkeep_tick, run_upkeep_tick, after_upkeep_tick, check_upkeep_tick, NULL},
   /* The admin API. */
   {"admin/stats", setup_admin, run_admin_stats, NULL, NULL, NULL},
   {"admin/tasks", setup_admin, run_admin_tasks, NULL, NULL, NULL},
   {"admin/task", setup_admin, run_admin_task, NULL, NULL, NULL},
   {"admin/unique_holder", setup_admin, run_admin_unique_holder, NULL, NULL, NULL},
   {"admin/locks", setup_admin, run_admin_locks, NULL, NULL, NULL},
   {"admin/groups", setup_admin, run_admin_groups, NULL, NULL, NULL},
   {"admin/group", setup_admin, run_admin_group, NULL, NULL, NULL},
   {"admin/syncs", setup_admin, run_admin_syncs, NULL, NULL, NULL},
   {"admin/sync", setup_admin, run_admin_sync, NULL, NULL, NULL},
   {"admin/sync_stage", setup_admin, run_admin_sync_stage, NULL, NULL, NULL},
   {"admin/slots", setup_admin, run_admin_slots, NULL, NULL, NULL},
   {"admin/pool", setup_admin, run_admin_pool, NULL, NULL, NULL},
   {"admin/task_slots", setup_admin, run_admin_task_slots, NULL, NULL, NULL},
   {"admin/schedules", setup_admin, run_admin_schedules, NULL, NULL, NULL},
   {"admin/retention", setup_admin, run_admin_retention, NULL, NULL, NULL},
};

#define N_OPS (sizeof ops / sizeof ops[0])

/* Sweeps every operation whose name starts with `prefix`. */
static void
sweep_all (const char *prefix, const char *data)
{
   int n = 0, points = 0, best_effort = 0;

   faulty = mt_test_failpoint_client (APP);
   for (size_t i = 0; i < N_OPS; i++) {
      if (!strncmp (ops[i].name, prefix, strlen (prefix))) {
         sweep_t s = sweep (&ops[i], data);

         ASSERT_CMPINT (s.points, >, 0);
         n++;
         points += s.points;
         best_effort += s.best_effort;
      }
   }
   ASSERT_CMPINT (n, >, 0);
   printf ("# %s: %d operation(s), %d failure points, %d of them best effort\n", prefix, n, points, best_effort);
   mongoc_client_destroy (faulty);
   faulty = NULL;
}

#define SWEEP_TEST(name)                     \
   static void test_sweep_##name (void)      \
   {                                         \
      sweep_all (#name "/", FP_ERROR);       \
   }

SWEEP_TEST (store)
SWEEP_TEST (locks)
SWEEP_TEST (groups)
SWEEP_TEST (syncs)
SWEEP_TEST (slots)
SWEEP_TEST (schedule)
SWEEP_TEST (archive)
SWEEP_TEST (leases)
SWEEP_TEST (upkeep)
SWEEP_TEST (admin)

/* A few operations with the connection dropped instead: the driver's
 * network error, which the worker retries, comes out untouched. */
static void
test_sweep_close (void)
{
   static const char *const names[] = {"store/enqueue", "store/claim", "store/update_claimed", "locks/acquire",
                                       "groups/task_ended", "slots/acquire_stale", "leases/heartbeat", "archive/move",
                                       "schedule/create_successor"};

   for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      sweep_all (names[i], FP_CLOSE);
   }
}

/* ---- a worker in this process ---------------------------------------------------------------------- */

/* What the worker logged, for the test to look for. */
static struct {
   pthread_mutex_t mutex;
   char text[1 << 16];
   size_t len;
} wlog = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static void
wlog_line (mt_log_level_t level, const char *message, void *data)
{
   (void) data;
   pthread_mutex_lock (&wlog.mutex);
   if (wlog.len + strlen (message) + 16 < sizeof wlog.text) {
      wlog.len += (size_t) bson_snprintf (wlog.text + wlog.len, sizeof wlog.text - wlog.len, "%s: %s\n", mt_log_level_name (level), message);
   }
   pthread_mutex_unlock (&wlog.mutex);
}

static bool
wlog_has (const char *needle)
{
   bool has;

   pthread_mutex_lock (&wlog.mutex);
   has = strstr (wlog.text, needle) != NULL;
   pthread_mutex_unlock (&wlog.mutex);
   return has;
}

/* A task of type faults_gate waits in process() until the test opens the
 * gate: the test sets a failpoint while the task runs. */
static struct {
   pthread_mutex_t mutex;
   pthread_cond_t cond;
   int arrived, opened;
} gate = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int
gate_arrived (void)
{
   int n;

   pthread_mutex_lock (&gate.mutex);
   n = gate.arrived;
   pthread_mutex_unlock (&gate.mutex);
   return n;
}

static void
gate_open (void)
{
   pthread_mutex_lock (&gate.mutex);
   gate.opened++;
   pthread_cond_broadcast (&gate.cond);
   pthread_mutex_unlock (&gate.mutex);
}

static bool
gate_process (mt_task_t *task, void *state, bson_error_t *error)
{
   int64_t deadline = bson_get_monotonic_time () + 20 * 1000 * 1000;
   int mine;

   (void) task;
   (void) state;
   (void) error;
   pthread_mutex_lock (&gate.mutex);
   mine = gate.arrived++;
   while (gate.opened <= mine && bson_get_monotonic_time () < deadline) {
      struct timespec ts;

      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000) {
         ts.tv_sec++;
         ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait (&gate.cond, &gate.mutex, &ts);
   }
   pthread_mutex_unlock (&gate.mutex);
   return true;
}

static bool
ok_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task;
   (void) state;
   (void) error;
   return true;
}

static bool
fail_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) state;
   bson_set_error (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_PROCESS, "attempt %d fails", (int) mt_task_attempt (task));
   return false;
}

/* Calls of the host API a plugin gets wrong, each refused with a message;
 * the result records each answer. */
static bool
host_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const char *empty[] = {""}, *a[] = {"a"};
   bson_t result = BSON_INITIALIZER;
   bson_t *bad_opts = BCON_NEW ("priority", "high");
   bson_error_t e;
   bool ok;

   (void) state;
   BSON_APPEND_BOOL (&result, "set_result_null", mt_task_set_result (task, NULL, &e));
   BSON_APPEND_BOOL (&result, "set_status_null", mt_task_set_status (task, NULL, &e));
   BSON_APPEND_BOOL (&result, "status_message_null", mt_task_set_status_message (task, NULL, &e));
   BSON_APPEND_BOOL (&result, "delay_negative", mt_task_delay (task, -1, &e));
   BSON_APPEND_BOOL (&result, "lock_empty", mt_task_lock_accounts (task, empty, 1, &e));
   BSON_APPEND_BOOL (&result, "unlock_empty", mt_task_unlock_accounts (task, empty, 1, &e));
   BSON_APPEND_BOOL (&result, "unlock_not_held", mt_task_unlock_accounts (task, a, 1, &e));
   BSON_APPEND_INT32 (&result, "held", mt_task_held_accounts (task)[0] ? 1 : 0);
   BSON_APPEND_BOOL (&result, "with_no_fn", mt_task_with_accounts (task, a, 1, NULL, NULL, &e));
   BSON_APPEND_BOOL (&result, "with_empty", mt_task_with_accounts (task, empty, 1, NULL, NULL, &e) || e.code != MT_PLUGIN_ERROR_API);
   BSON_APPEND_BOOL (&result, "enqueue_bad", mt_task_enqueue (task, "q", "faults_ok", NULL, bad_opts, NULL, &e));
   BSON_APPEND_BOOL (&result, "enqueue_no_id", mt_task_enqueue (task, "q2", "faults_ok", NULL, NULL, NULL, &e));
   BSON_APPEND_BOOL (&result, "keepalive_no_pool", mt_task_keepalive (task, &e));
   ok = mt_task_set_result (task, &result, error);
   bson_destroy (&result);
   bson_destroy (bad_opts);
   return ok;
}

/* Fails without saying why. */
static bool
silent_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task;
   (void) state;
   (void) error;
   return false;
}

static const mt_plugin_t host_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .type = "faults_host",
   .process = host_process,
};

static const mt_plugin_t silent_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .type = "faults_silent",
   .process = silent_process,
   .max_attempts = 1,
};

static const mt_plugin_t gate_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .type = "faults_gate",
   .process = gate_process,
};

static const mt_plugin_t ok_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .type = "faults_ok",
   .process = ok_process,
};

/* Its own retry budget: two attempts, not the worker's three. */
static const mt_plugin_t fail_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .type = "faults_fail",
   .process = fail_process,
   .max_attempts = 2,
};

typedef struct {
   fx_t fx; /* its database, and a client to look at it */
   mt_worker_t *worker;
   pthread_t thread;
   bool ok;
   bson_error_t error;
} bg_t;

static void *
bg_main (void *data)
{
   bg_t *bg = data;

   bg->ok = mt_worker_run (bg->worker, &bg->error);
   return NULL;
}

/* A worker of this process on queue q of its own database, its log in
 * wlog; `lease_ms` 0 for the default. Not started. */
static void
bg_new (bg_t *bg, int64_t lease_ms)
{
   static const char *const queues[] = {"q", NULL};
   static const mt_plugin_t *const builtins[] = {&gate_plugin, &ok_plugin, &fail_plugin, &host_plugin, &silent_plugin, NULL};
   static const char *const no_dirs[] = {NULL};
   mt_worker_config_t config;
   bson_error_t error;

   memset (bg, 0, sizeof *bg);
   faulty = mt_test_client ();
   fx_init (&bg->fx);
   pthread_mutex_lock (&wlog.mutex);
   wlog.len = 0;
   wlog.text[0] = '\0';
   pthread_mutex_unlock (&wlog.mutex);
   pthread_mutex_lock (&gate.mutex);
   gate.arrived = gate.opened = 0;
   pthread_mutex_unlock (&gate.mutex);

   mt_worker_config_init (&config);
   config.uri = mt_test_uri ();
   config.db = bg->fx.db;
   config.queue_names = queues;
   config.builtin_plugins = builtins;
   config.plugin_dirs = no_dirs;
   config.worker_id = "faults-inproc";
   config.poll_interval_ms = 20;
   config.retry_backoff_ms = 0;
   config.log_func = wlog_line;
   config.log_level = MT_LOG_DEBUG;
   if (lease_ms) {
      config.lease_ms = lease_ms;
   }
   bg->worker = mt_worker_new (&config, &error);
   ASSERT_OR_PRINT (bg->worker, error);
}

static void
bg_start (bg_t *bg)
{
   ASSERT (pthread_create (&bg->thread, NULL, bg_main, bg) == 0);
}

/* Stops it; it must have run well. */
static void
bg_stop (bg_t *bg)
{
   mt_worker_stop (bg->worker);
   pthread_join (bg->thread, NULL);
   ASSERT_OR_PRINT (bg->ok, bg->error);
   mt_worker_destroy (bg->worker);
   fx_cleanup (&bg->fx);
   faulty = NULL;
}

/* failCommand for the worker's clients, in this database only. */
static void
bg_failpoint (bg_t *bg, const char *mode, const char *collection, const char *commands, const char *what)
{
   char *data = bson_strdup_printf ("{'failCommands': %s, %s, 'appName': 'mtask-worker', 'namespace': '%s.%s'}", commands, what,
                                    bg->fx.db, collection);

   mt_test_failpoint_set (mode, data);
   bson_free (data);
}

#define CLOSE "'closeConnection': true"
#define REFUSE "'errorCode': 2"

static bool
bg_status_is (bg_t *bg, const bson_oid_t *id, const char *status)
{
   char buf[64];

   return !strcmp (status_of (&bg->fx, id, buf, sizeof buf), status);
}

/* Claims that meet a dropped connection, then a refusal, then a batch
 * claim whose read back fails after its update: the worker retries, and
 * gives back what the failed batch took, its attempts not counted. */
static void
test_worker_claims (void)
{
   bg_t bg;
   bson_oid_t ids[4];

   mt_test_failpoint_off ();
   bg_new (&bg, 0);
   bg_failpoint (&bg, "{'times': 1}", "tasks", "['findAndModify']", CLOSE);
   ids[0] = enqueue (&bg.fx, "q", "faults_ok", NULL);
   bg_start (&bg);
   WAIT_UNTIL (bg_status_is (&bg, &ids[0], MT_STATUS_FINISHED), 20000);
   ASSERT (wlog_has ("cannot reach the database"));

   bg_failpoint (&bg, "{'times': 1}", "tasks", "['findAndModify']", REFUSE);
   WAIT_UNTIL (wlog_has ("claim failed"), 20000);
   mt_test_failpoint_off ();

   /* A backlog: the first claim takes one, the next a batch of two, whose
    * read back fails. */
   ids[1] = enqueue (&bg.fx, "q", "faults_gate", NULL);
   ids[2] = enqueue (&bg.fx, "q", "faults_ok", NULL);
   ids[3] = enqueue (&bg.fx, "q", "faults_ok", NULL);
   WAIT_UNTIL (gate_arrived () == 1, 20000);
   bg_failpoint (&bg, "{'skip': 1}", "tasks", "['find']", REFUSE);
   gate_open ();
   WAIT_UNTIL (wlog_has ("claim failed: Failing command") && wlog_has ("sweep of malformed tasks failed"), 20000);
   mt_test_failpoint_off ();
   for (int i = 1; i < 4; i++) {
      bson_t *doc;

      WAIT_UNTIL (bg_status_is (&bg, &ids[i], MT_STATUS_FINISHED), 20000);
      doc = find_id (&bg.fx, MT_TASKS_COLLECTION, &ids[i]);
      ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
      bson_destroy (doc);
   }
   bg_stop (&bg);
}

/* An outcome whose write meets a dropped connection is written again; one
 * the server refuses for good is not retried: the task ends FAILED
 * without its result, saying why. */
static void
test_worker_outcome (void)
{
   bg_t bg;
   bson_oid_t ids[2];

   mt_test_failpoint_off ();
   bg_new (&bg, 0);
   bg_start (&bg);
   ids[0] = enqueue (&bg.fx, "q", "faults_gate", NULL);
   WAIT_UNTIL (gate_arrived () == 1, 20000);
   bg_failpoint (&bg, "{'times': 1}", "tasks", "['update']", CLOSE);
   gate_open ();
   WAIT_UNTIL (bg_status_is (&bg, &ids[0], MT_STATUS_FINISHED), 20000);
   ASSERT (wlog_has ("cannot write its outcome yet"));

   ids[1] = enqueue (&bg.fx, "q", "faults_gate", NULL);
   WAIT_UNTIL (gate_arrived () == 2, 20000);
   bg_failpoint (&bg, "{'times': 1}", "tasks", "['update']", REFUSE);
   gate_open ();
   WAIT_UNTIL (wlog_has ("it ends FAILED without its result"), 20000);
   WAIT_UNTIL (bg_status_is (&bg, &ids[1], MT_STATUS_FAILED), 20000);
   mt_test_failpoint_off ();
   bg_stop (&bg);
}

/* The start: indexes that meet a dropped connection are built again; a
 * refusal ends the run, saying what it could not prepare. */
static void
test_worker_prepare (void)
{
   bg_t bg;
   bson_oid_t id;

   mt_test_failpoint_off ();
   bg_new (&bg, 0);
   bg_failpoint (&bg, "{'times': 1}", "tasks", "['createIndexes']", CLOSE);
   id = enqueue (&bg.fx, "q", "faults_ok", NULL);
   bg_start (&bg);
   WAIT_UNTIL (bg_status_is (&bg, &id, MT_STATUS_FINISHED), 20000);
   ASSERT (wlog_has ("cannot reach the database"));
   bg_stop (&bg);

   bg_new (&bg, 0);
   bg_failpoint (&bg, "{'times': 1}", "tasks", "['createIndexes']", REFUSE);
   ASSERT (!mt_worker_run (bg.worker, &bg.error));
   ASSERT_CMPINT (bg.error.domain, ==, MT_ERROR_STORE);
   ASSERT_CONTAINS (bg.error.message, "cannot prepare");
   ASSERT_CONTAINS (bg.error.message, "Failing command via 'failCommand' failpoint");
   mt_test_failpoint_off ();
   mt_worker_destroy (bg.worker);
   fx_cleanup (&bg.fx);
   faulty = NULL;
}

/* The heartbeat fails, says so once, and says when it works again; the
 * last one, at the stop, says it could not be written. */
static void
test_worker_heartbeat (void)
{
   bg_t bg;

   mt_test_failpoint_off ();
   bg_new (&bg, 1500);
   /* The first heartbeat is the start's; the thread's fail. */
   bg_failpoint (&bg, "{'skip': 1}", "workers", "['findAndModify']", REFUSE);
   bg_start (&bg);
   WAIT_UNTIL (wlog_has ("heartbeat failed"), 20000);
   mt_test_failpoint_off ();
   WAIT_UNTIL (wlog_has ("heartbeat works again"), 20000);
   bg_failpoint (&bg, "'alwaysOn'", "workers", "['findAndModify']", REFUSE);
   mt_worker_stop (bg.worker);
   pthread_join (bg.thread, NULL);
   mt_test_failpoint_off ();
   ASSERT_OR_PRINT (bg.ok, bg.error);
   ASSERT (wlog_has ("cannot record that the worker stopped"));
   mt_worker_destroy (bg.worker);
   fx_cleanup (&bg.fx);
   faulty = NULL;
}

/* A plugin's own retry budget (its descriptor's max_attempts) wins over
 * the worker's. */
static void
test_worker_plugin_budget (void)
{
   bg_t bg;
   bson_oid_t id;
   bson_t *doc;

   mt_test_failpoint_off ();
   bg_new (&bg, 0);
   id = enqueue (&bg.fx, "q", "faults_fail", NULL);
   bg_start (&bg);
   WAIT_UNTIL (bg_status_is (&bg, &id, MT_STATUS_FAILED), 20000);
   doc = find_id (&bg.fx, MT_TASKS_COLLECTION, &id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 2);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "attempt 2 fails");
   bson_destroy (doc);
   bg_stop (&bg);
}

/* A plugin's mistakes are refused one by one, and the task goes on; one
 * that fails without a word gets a message for it. */
static void
test_worker_plugin_mistakes (void)
{
   static const char *const refused[] = {"set_result_null", "set_status_null", "delay_negative", "lock_empty", "unlock_empty",
                                         "with_no_fn", "with_empty", "enqueue_bad", "keepalive_no_pool"};
   bg_t bg;
   bson_oid_t host, silent;
   bson_t *doc;

   mt_test_failpoint_off ();
   bg_new (&bg, 0);
   host = enqueue (&bg.fx, "q", "faults_host", NULL);
   silent = enqueue (&bg.fx, "q", "faults_silent", NULL);
   bg_start (&bg);
   WAIT_UNTIL (bg_status_is (&bg, &host, MT_STATUS_FINISHED), 20000);
   WAIT_UNTIL (bg_status_is (&bg, &silent, MT_STATUS_FAILED), 20000);
   doc = find_id (&bg.fx, MT_TASKS_COLLECTION, &host);
   for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
      char key[64];
      bson_iter_t iter;

      bson_snprintf (key, sizeof key, "result.%s", refused[i]);
      ASSERT (bson_iter_init (&iter, doc) && bson_iter_find_descendant (&iter, key, &iter));
      if (bson_iter_as_bool (&iter)) {
         mt_test_fail (__FILE__, __LINE__, "%s was not refused", refused[i]);
      }
   }
   ASSERT (mt_test_has (doc, "result.status_message_null"));
   ASSERT_CMPINT (mt_test_int (doc, "result.held"), ==, 0);
   bson_destroy (doc);
   ASSERT_CMPINT (count (&bg.fx, MT_TASKS_COLLECTION, "{'queue': 'q2'}"), ==, 1);
   doc = find_id (&bg.fx, MT_TASKS_COLLECTION, &silent);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "plugin 'faults_silent' returned failure without an error message");
   bson_destroy (doc);
   bg_stop (&bg);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/faults/sweep/store", test_sweep_store);
   mt_test_add ("/faults/sweep/locks", test_sweep_locks);
   mt_test_add ("/faults/sweep/groups", test_sweep_groups);
   mt_test_add ("/faults/sweep/syncs", test_sweep_syncs);
   mt_test_add ("/faults/sweep/slots", test_sweep_slots);
   mt_test_add ("/faults/sweep/schedule", test_sweep_schedule);
   mt_test_add ("/faults/sweep/archive", test_sweep_archive);
   mt_test_add ("/faults/sweep/leases", test_sweep_leases);
   mt_test_add ("/faults/sweep/upkeep", test_sweep_upkeep);
   mt_test_add ("/faults/sweep/admin", test_sweep_admin);
   mt_test_add ("/faults/sweep/close_connection", test_sweep_close);
   mt_test_add ("/faults/worker/claims", test_worker_claims);
   mt_test_add ("/faults/worker/outcome", test_worker_outcome);
   mt_test_add ("/faults/worker/prepare", test_worker_prepare);
   mt_test_add ("/faults/worker/heartbeat", test_worker_heartbeat);
   mt_test_add ("/faults/worker/plugin_budget", test_worker_plugin_budget);
   mt_test_add ("/faults/worker/plugin_mistakes", test_worker_plugin_mistakes);
   return mt_test_main (argc, argv);
}
