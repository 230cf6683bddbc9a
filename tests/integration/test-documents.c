/* Documents mtask did not write itself, or not all of: left by an older
 * version, edited by hand, written by another client. Each feature reads
 * what it can of them, refuses what it must with a message, and goes on
 * with the rest: no crash, no stall, nothing taken for what it is not.
 * And the arguments each call refuses, with the message it gives. */
#include "mt-test.h"
#include "mtask-private.h"

#define OLD "{'$date': {'$numberLong': '86400000'}}" /* long ago: 1970-01-02 */
#define WORKER "docs-worker"

static mongoc_collection_t *
collection (const char *name)
{
   return mongoc_client_get_collection (mt_test_client (), mt_test_db (), name);
}

static void
insert (const char *name, const char *json)
{
   mongoc_collection_t *coll = collection (name);
   bson_t *doc = mt_test_bson (json);
   bson_error_t error;
   bool ok = mongoc_collection_insert_one (coll, doc, NULL, NULL, &error);

   bson_destroy (doc);
   mongoc_collection_destroy (coll);
   ASSERT_OR_PRINT (ok, error);
}

static int64_t
count_in (const char *name, const char *json)
{
   mongoc_collection_t *coll = collection (name);
   bson_t *filter = mt_test_bson (json);
   bson_error_t error;
   int64_t n = mongoc_collection_count_documents (coll, filter, NULL, NULL, NULL, &error);

   bson_destroy (filter);
   mongoc_collection_destroy (coll);
   ASSERT_OR_PRINT (n >= 0, error);
   return n;
}

/* The one document of `name` matching `json`, or fails. */
static bson_t *
one (const char *name, const char *json)
{
   mongoc_collection_t *coll = collection (name);
   bson_t *filter = mt_test_bson (json);
   bson_t doc, *copy;
   bson_error_t error;
   bool found;
   bool ok = mt_find_one (coll, filter, NULL, &doc, &found, &error);

   bson_destroy (filter);
   mongoc_collection_destroy (coll);
   copy = bson_copy (&doc);
   bson_destroy (&doc);
   ASSERT_OR_PRINT (ok, error);
   if (!found) {
      bson_destroy (copy);
      mt_test_fail (__FILE__, __LINE__, "no document in %s matches %s", name, json);
   }
   return copy;
}

static void
context (mt_context_t *ctx)
{
   mt_context_init (ctx);
   ctx->db = bson_strdup (mt_test_db ());
   ctx->worker_id = bson_strdup (WORKER);
}

/* Fails with `domain` and a message containing `fragment`. */
#define REFUSED(call, err, dom, fragment)         \
   do {                                           \
      ASSERT (!(call));                           \
      ASSERT_CMPINT ((err).domain, ==, (dom));    \
      ASSERT_CONTAINS ((err).message, fragment);  \
   } while (0)

/* ---- leases ------------------------------------------------------------- */

/* Lost tasks with fields missing or of other types are taken back all the
 * same: a string _id; no worker_pid, attempts or heartbeat (only an old
 * `started`); max_attempts as a double; no type. */
static void
test_lease_odd_tasks (void)
{
   mt_context_t ctx;
   bson_error_t error;
   bson_t *doc;

   insert ("tasks", "{'_id': 'by-hand', 'queue': 'q', 'type': 'echo', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'gone',"
                    " 'attempts': {'$numberLong': '1'}, 'max_attempts': 5.0, 'heartbeat': " OLD "}");
   insert ("tasks", "{'queue': 'q', 'status': 'WORK_IN_PROGRESS', 'started': " OLD "}");
   insert ("tasks", "{'queue': 'q', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'gone', 'attempts': 1.0,"
                    " 'max_attempts': {'$numberLong': '4'}, 'heartbeat': " OLD "}");
   context (&ctx);
   ASSERT_CMPINT (mt_lease_reclaim (&ctx, mt_test_client (), false, &error), ==, 3);
   doc = one ("tasks", "{'_id': 'by-hand'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 5);
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_WORKER_LOST);
   bson_destroy (doc);
   ASSERT_CMPINT (count_in ("tasks", "{'status': 'CREATED', 'worker_pid': null, 'error.code': 6}"), ==, 3);
   mt_context_cleanup (&ctx);
}

/* ---- account locks ---------------------------------------------------------------- */

static void
test_locks_odd_holders (void)
{
   const char *x[] = {"x"}, *y[] = {"y"};
   bson_value_t task = {.value_type = BSON_TYPE_INT32, .value.v_int32 = 7};
   mt_lock_owner_t owner = {.task_id = &task, .worker_id = WORKER, .attempt = 1};
   bson_error_t error;

   /* Held by a run of a task whose _id is a string, on no named worker,
    * since an unknown time: the message says what it knows. */
   insert ("tasks", "{'_id': 'abc', 'status': 'WORK_IN_PROGRESS', 'attempts': 1, 'worker_pid': null}");
   insert ("locks", "{'_id': 'x', 'task': 'abc', 'attempt': 1}");
   REFUSED (mt_locks_acquire (mt_test_client (), mt_test_db (), &owner, x, 1, NULL, &error), error, MT_ERROR_LOCK,
            "account 'x' is locked by task abc on worker '?' since ?");
   /* A lock that names no run is no lock. */
   insert ("locks", "{'_id': 'y'}");
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &owner, y, 1, NULL, &error), error);
   ASSERT_CMPINT (count_in ("locks", "{'_id': 'y', 'task': 7}"), ==, 1);
}

static void
test_locks_refused (void)
{
   bson_value_t task = {.value_type = BSON_TYPE_INT32, .value.v_int32 = 7};
   mt_lock_owner_t owner = {.task_id = &task, .worker_id = WORKER, .attempt = 1};
   const char *many[1001], *empty[] = {""}, *bad_utf8[] = {"\xff\xfe"}, *null_name[] = {NULL};
   bson_error_t error;
   bson_t held;

   for (size_t i = 0; i < 1001; i++) {
      many[i] = "a";
   }
   REFUSED (mt_locks_acquire (mt_test_client (), mt_test_db (), &owner, many, 1001, NULL, &error), error, MT_ERROR_LOCK,
            "cannot lock 1001 accounts at once");
   REFUSED (mt_locks_acquire (mt_test_client (), mt_test_db (), &owner, empty, 1, NULL, &error), error, MT_ERROR_LOCK,
            "account 1 of 1 is not a lockable name");
   REFUSED (mt_locks_acquire (mt_test_client (), mt_test_db (), &owner, bad_utf8, 1, NULL, &error), error, MT_ERROR_LOCK,
            "not a lockable name");
   REFUSED (mt_locks_acquire (mt_test_client (), mt_test_db (), &owner, null_name, 1, NULL, &error), error, MT_ERROR_LOCK,
            "not a lockable name");
   REFUSED (mt_locks_release (mt_test_client (), mt_test_db (), &owner, empty, 1, &error), error, MT_ERROR_LOCK,
            "not a lockable name");
   /* None at all: nothing to do, and nothing held. */
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &owner, NULL, 0, &held, &error), error);
   ASSERT_CMPINT (bson_count_keys (&held), ==, 0);
   bson_destroy (&held);
   ASSERT_OR_PRINT (mt_locks_release (mt_test_client (), mt_test_db (), &owner, NULL, 0, &error), error);
}

/* ---- concurrency slots -------------------------------------------------------------- */

static void
test_slots_odd (void)
{
   bson_value_t task = {.value_type = BSON_TYPE_INT32, .value.v_int32 = 7};
   mt_lock_owner_t owner = {.task_id = &task, .worker_id = WORKER, .attempt = 1};
   char slot_id[64] = "";
   mt_context_t ctx;
   bson_error_t error;
   bool got = true;
   bson_t *doc;

   context (&ctx);
   /* A pool written without its size: no slot to take. */
   insert ("pools", "{'_id': 'bare'}");
   ASSERT_OR_PRINT (mt_slot_acquire (&ctx, mt_test_client (), "bare", &owner, &got, slot_id, sizeof slot_id, &error), error);
   ASSERT (!got);
   REFUSED (mt_slot_acquire (&ctx, mt_test_client (), "none", &owner, &got, slot_id, sizeof slot_id, &error), error, MT_ERROR_CONFIG,
            "no pool 'none'");

   /* Held slots the upkeep passes over: of no pool, of a pool that is not
    * declared; and one taken back from a run whose task carries its
    * budget as a double and no type. */
   insert ("slots", "{'_id': 'stray', 'task': 'x', 'attempt': 1}");
   insert ("slots", "{'_id': 'ghost#0', 'pool': 'ghost', 'index': 0, 'task': 'x', 'attempt': 1}");
   ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "p", 1, 1, &error), error);
   insert ("tasks", "{'_id': 'odd', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'w', 'attempts': 1, 'max_attempts': 2.0}");
   {
      mongoc_collection_t *slots = collection ("slots");
      bson_t *filter = mt_test_bson ("{'_id': 'p#0'}");
      bson_t *hold = mt_test_bson ("{'$set': {'task': 'odd', 'worker_pid': 'w', 'attempt': 1, 'keepalive': " OLD "}}");

      ASSERT_OR_PRINT (mongoc_collection_update_one (slots, filter, hold, NULL, NULL, &error), error);
      bson_destroy (filter);
      bson_destroy (hold);
      mongoc_collection_destroy (slots);
   }
   ASSERT_OR_PRINT (mt_slots_upkeep (&ctx, mt_test_client (), &error), error);
   doc = one ("tasks", "{'_id': 'odd'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 2);
   bson_destroy (doc);
   ASSERT_CMPINT (count_in ("slots", "{'_id': 'p#0', 'task': null}"), ==, 1);
   ASSERT_CMPINT (count_in ("slots", "{'task': 'x'}"), ==, 2);
   mt_context_cleanup (&ctx);
}

static void
test_slots_refused (void)
{
   char long_name[210];
   bson_oid_t id;
   bson_error_t error;

   memset (long_name, 'p', sizeof long_name - 1);
   long_name[sizeof long_name - 1] = '\0';
   bson_oid_init (&id, NULL);
   REFUSED (mt_pool_set (mt_test_client (), mt_test_db (), "a#b", 1, 0, &error), error, MT_ERROR_CONFIG, "without '#'");
   REFUSED (mt_pool_set (mt_test_client (), mt_test_db (), "", 1, 0, &error), error, MT_ERROR_CONFIG, "1 to 200 bytes");
   REFUSED (mt_pool_set (mt_test_client (), mt_test_db (), NULL, 1, 0, &error), error, MT_ERROR_CONFIG, "1 to 200 bytes");
   REFUSED (mt_pool_set (mt_test_client (), mt_test_db (), long_name, 1, 0, &error), error, MT_ERROR_CONFIG, "1 to 200 bytes");
   REFUSED (mt_pool_set (mt_test_client (), mt_test_db (), "p", 0, 0, &error), error, MT_ERROR_CONFIG, "size must be 1 to 100000");
   REFUSED (mt_pool_set (mt_test_client (), mt_test_db (), "p", 100001, 0, &error), error, MT_ERROR_CONFIG, "size must be");
   REFUSED (mt_pool_set (mt_test_client (), mt_test_db (), "p", 1, 400 * 86400.0, &error), error, MT_ERROR_CONFIG, "at most 366 days");
   REFUSED (mt_slot_keepalive (mt_test_client (), mt_test_db (), &id, &error), error, MT_ERROR_CONFIG, "holds no slot");
   REFUSED (mt_slot_stop (mt_test_client (), mt_test_db (), &id, &error), error, MT_ERROR_CONFIG, "holds no slot");
}

/* ---- staged groups ------------------------------------------------------------------ */

static void
test_groups_refused (void)
{
   bson_t *text = mt_test_bson ("{'keep_seconds': 'long'}");
   bson_t *negative = mt_test_bson ("{'keep_seconds': -1}");
   bson_t *unknown = mt_test_bson ("{'keep': 1}");
   bson_t *repeat = mt_test_bson ("{'repeat': 60}");
   bson_t *bad = mt_test_bson ("{'priority': 'high'}");
   bson_oid_t group, missing, task;
   bson_error_t error;

   REFUSED (mt_group_create (mt_test_client (), mt_test_db (), "d", text, &group, &error), error, MT_ERROR_CONFIG,
            "option 'keep_seconds' must be a number of seconds, 0 or more");
   REFUSED (mt_group_create (mt_test_client (), mt_test_db (), "d", negative, &group, &error), error, MT_ERROR_CONFIG,
            "must be a number of seconds");
   REFUSED (mt_group_create (mt_test_client (), mt_test_db (), "d", unknown, &group, &error), error, MT_ERROR_CONFIG,
            "Invalid option 'keep'");
   ASSERT_OR_PRINT (mt_group_create (mt_test_client (), mt_test_db (), NULL, NULL, &group, &error), error);
   bson_oid_init (&missing, NULL);
   REFUSED (mt_group_enqueue (mt_test_client (), mt_test_db (), &missing, 1, "q", "echo", NULL, NULL, &task, &error), error,
            MT_ERROR_CONFIG, "no group");
   REFUSED (mt_group_initiate (mt_test_client (), mt_test_db (), &missing, &error), error, MT_ERROR_CONFIG, "no group");
   REFUSED (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 1, "q", "echo", NULL, repeat, &task, &error), error,
            MT_ERROR_CONFIG, "option 'repeat' is not for a task of a staged group");
   REFUSED (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 1, "q", "echo", NULL, bad, &task, &error), error,
            MT_ERROR_CONFIG, "option 'priority'");
   REFUSED (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 0, "q", "echo", NULL, NULL, &task, &error), error,
            MT_ERROR_CONFIG, "stage numbers start at 1");

   /* Stage 2 runs (stage 1 is done): neither a new stage 1 nor the
    * complete one takes tasks. */
   ASSERT_OR_PRINT (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 1, "q", "echo", NULL, NULL, &task, &error), error);
   ASSERT_OR_PRINT (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 3, "q", "echo", NULL, NULL, NULL, &error), error);
   {
      bson_value_t value = {.value_type = BSON_TYPE_OID};

      bson_oid_copy (&task, &value.value.v_oid);
      ASSERT_OR_PRINT (mt_group_initiate (mt_test_client (), mt_test_db (), &group, &error), error);
      mt_test_task_set (&task, "{'status': 'FINISHED'}"); /* only an ended task counts */
      ASSERT_OR_PRINT (mt_group_task_ended (mt_test_client (), mt_test_db (), &group, 1, &value, &error), error);
   }
   REFUSED (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 1, "q", "echo", NULL, NULL, NULL, &error), error,
            MT_ERROR_CONFIG, "stage 1 is complete; add the task to a later stage");
   REFUSED (mt_group_enqueue (mt_test_client (), mt_test_db (), &group, 2, "q", "echo", NULL, NULL, NULL, &error), error,
            MT_ERROR_CONFIG, "stage 2 would run out of order");
   bson_destroy (text);
   bson_destroy (negative);
   bson_destroy (unknown);
   bson_destroy (repeat);
   bson_destroy (bad);
}

static void
test_groups_odd (void)
{
   bson_t *not_staged = mt_test_bson ("{'_id': 1, 'group': {'$oid': '000000000000000000000001'}, 'stage': 'one'}");
   bson_error_t error;
   int64_t repaired;

   ASSERT_OR_PRINT (mt_group_task_ended_doc (mt_test_client (), mt_test_db (), not_staged, &error), error);
   bson_destroy (not_staged);
   /* A stage number stored as a double or an int64 is a stage number. */
   not_staged = mt_test_bson ("{'_id': 2, 'group': {'$oid': '000000000000000000000001'}, 'stage': 1.0}");
   ASSERT_OR_PRINT (mt_group_task_ended_doc (mt_test_client (), mt_test_db (), not_staged, &error), error);
   bson_destroy (not_staged);
   not_staged = mt_test_bson ("{'_id': 3, 'group': {'$oid': '000000000000000000000001'}, 'stage': {'$numberLong': '1'}}");
   ASSERT_OR_PRINT (mt_group_task_ended_doc (mt_test_client (), mt_test_db (), not_staged, &error), error);
   ASSERT_OR_PRINT (mt_group_create (mt_test_client (), mt_test_db (), "no id wanted", NULL, NULL, &error), error);
   {
      mongoc_collection_t *groups = collection ("groups");
      bson_t all = BSON_INITIALIZER;

      ASSERT_OR_PRINT (mongoc_collection_delete_many (groups, &all, NULL, NULL, &error), error);
      mongoc_collection_destroy (groups);
   }
   /* The upkeep passes over a running stage of no group; counts one that
    * lacks its done_ids; deletes a complete group whose keep_seconds is not
    * a number and which has no keep_until. */
   insert ("group_stages", "{'number': 1, 'status': 'running', 'total': 1, 'done': 0}");
   insert ("groups", "{'_id': {'$oid': '000000000000000000000002'}, 'status': 'running'}");
   insert ("group_stages", "{'group': {'$oid': '000000000000000000000002'}, 'number': 1, 'status': 'running', 'total': 1.0,"
                           " 'done': {'$numberLong': '0'}}");
   insert ("tasks", "{'group': {'$oid': '000000000000000000000002'}, 'stage': 1, 'status': 'FINISHED'}");
   insert ("groups", "{'_id': {'$oid': '000000000000000000000003'}, 'status': 'complete', 'keep_seconds': 'long'}");
   ASSERT_OR_PRINT (mt_groups_upkeep (mt_test_client (), mt_test_db (), mt_now_ms (), &error), error);
   ASSERT_CMPINT (count_in ("groups", "{}"), ==, 0);
   ASSERT_CMPINT (count_in ("group_stages", "{}"), ==, 1);

   /* The cleaner passes over tasks whose group is not an ObjectId, and
    * puts a task without a stage in stage 1. */
   insert ("tasks", "{'group': 'by-hand', 'stage': 1, 'status': 'WAITING'}");
   insert ("tasks", "{'group': {'$oid': '000000000000000000000004'}, 'status': 'WAITING'}");
   repaired = mt_groups_clean (mt_test_client (), mt_test_db (), false, &error);
   ASSERT_OR_PRINT (repaired >= 0, error);
   ASSERT_CMPINT (count_in ("group_stages", "{'group': {'$oid': '000000000000000000000004'}, 'number': 1}"), ==, 1);
   bson_destroy (not_staged);
}

/* ---- repeating tasks ------------------------------------------------------------------ */

static void
test_successor_odd (void)
{
   bson_oid_t holder;
   mt_context_t ctx;
   bson_error_t error;
   bson_t *ended;

   context (&ctx);
   /* Nothing planned; planned and created already. */
   ended = mt_test_bson ("{'_id': 1, 'status': 'FINISHED', 'next': 5}");
   ASSERT_OR_PRINT (mt_schedule_create_successor (&ctx, mt_test_client (), ended, false, &error), error);
   bson_destroy (ended);
   ended = mt_test_bson ("{'_id': 1, 'status': 'FINISHED', 'next': {'created': true}}");
   ASSERT_OR_PRINT (mt_schedule_create_successor (&ctx, mt_test_client (), ended, false, &error), error);
   bson_destroy (ended);

   /* A plan without its time, and a run that no longer parses: the series
    * ends, and the run says why. */
   insert ("tasks", "{'_id': 2, 'status': 'FINISHED', 'next': {'_id': {'$oid': '000000000000000000000005'}, 'created': false}}");
   ended = one ("tasks", "{'_id': 2}");
   ASSERT_OR_PRINT (mt_schedule_create_successor (&ctx, mt_test_client (), ended, true, &error), error);
   bson_destroy (ended);
   ended = one ("tasks", "{'_id': 2, 'next.created': true}");
   ASSERT_CMPSTR (mt_test_str (ended, "next.skipped"), "its 'next' lacks _id or at");
   bson_destroy (ended);
   insert ("tasks", "{'_id': 3, 'status': 'FINISHED', 'queue': 'q', 'repeat': 'often',"
                    " 'next': {'_id': {'$oid': '000000000000000000000006'}, 'at': " OLD ", 'created': false}}");
   ended = one ("tasks", "{'_id': 3}");
   ASSERT_OR_PRINT (mt_schedule_create_successor (&ctx, mt_test_client (), ended, false, &error), error);
   bson_destroy (ended);
   ASSERT_CMPINT (count_in ("tasks", "{'_id': 3, 'next.created': true, 'next.skipped': {'$exists': true}}"), ==, 1);

   /* Its unique_key taken meanwhile by a task enqueued by hand. */
   {
      bson_t *opts = mt_test_bson ("{'unique_key': 'daily'}");

      ASSERT_OR_PRINT (mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, opts, &holder, &error), error);
      bson_destroy (opts);
   }
   insert ("tasks", "{'_id': 4, 'status': 'FINISHED', 'queue': 'q', 'type': 'echo', 'repeat': 60, 'unique_key': 'daily',"
                    " 'next': {'_id': {'$oid': '000000000000000000000007'}, 'at': " OLD ", 'created': false}}");
   ended = one ("tasks", "{'_id': 4}");
   ASSERT_OR_PRINT (mt_schedule_create_successor (&ctx, mt_test_client (), ended, false, &error), error);
   bson_destroy (ended);
   ended = one ("tasks", "{'_id': 4}");
   ASSERT_CONTAINS (mt_test_str (ended, "next.skipped"), "unique_key 'daily' is held by task");
   bson_destroy (ended);

   /* The upkeep plans no successor for a stopped run, nor for one that
    * does not parse. */
   insert ("tasks", "{'_id': 5, 'status': 'CANCELLED', 'queue': 'q', 'type': 'echo', 'repeat': 60}");
   insert ("tasks", "{'_id': 6, 'status': 'FINISHED', 'queue': 'q', 'cron': 5}");
   ASSERT_OR_PRINT (mt_schedule_upkeep (&ctx, mt_test_client (), &error), error);
   ASSERT_CMPINT (count_in ("tasks", "{'_id': {'$in': [5, 6]}, 'next': null}"), ==, 2);
   mt_context_cleanup (&ctx);
}

/* A cron series whose repeat_until has passed plans no more runs. */
static void
test_schedule_until (void)
{
   mt_task_doc_t task;
   bson_error_t error;
   bson_t *doc = mt_test_bson ("{'_id': 1, 'queue': 'q', 'type': 'echo', 'status': 'WORK_IN_PROGRESS', 'attempts': 1,"
                               " 'cron': '0 6 * * *', 'repeat_until': " OLD "}");

   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   ASSERT_CMPINT (mt_schedule_next (&task, mt_now_ms ()), ==, -1);
   bson_destroy (doc);
}

/* ---- synchronizers ------------------------------------------------------------------------ */

static void
test_syncs_refused (void)
{
   bson_oid_t stage, missing;
   bson_error_t error;
   bool advanced;

   bson_oid_init (&missing, NULL);
   {
      /* Each of name, callable and queue, missing or empty. */
      const char *args[][3] = {{NULL, "c", "q"}, {"", "c", "q"}, {"s", NULL, "q"}, {"s", "", "q"}, {"s", "c", NULL}, {"s", "c", ""}};

      for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
         REFUSED (mt_sync_stage_create (mt_test_client (), mt_test_db (), args[i][0], args[i][1], args[i][2], NULL, NULL, NULL, &stage,
                                        &error),
                  error,
                  MT_ERROR_CONFIG,
                  "a stage needs a name, a callable");
      }
   }
   ASSERT_OR_PRINT (mt_sync_stage_create (mt_test_client (), mt_test_db (), "no id wanted", "c", "q", NULL, NULL, NULL, NULL, &error),
                    error);
   REFUSED (mt_sync_create (mt_test_client (), mt_test_db (), NULL, &missing, &error), error, MT_ERROR_CONFIG, "needs a name");
   REFUSED (mt_sync_create (mt_test_client (), mt_test_db (), "n", NULL, &error), error, MT_ERROR_CONFIG, "needs a name and a start stage");
   REFUSED (mt_sync_stage_create (mt_test_client (), mt_test_db (), "s", "c", "q", NULL, &missing, NULL, &stage, &error), error,
            MT_ERROR_CONFIG, "its next stage does not exist");
   ASSERT_OR_PRINT (mt_sync_stage_create (mt_test_client (), mt_test_db (), "s", "c", "q", "", NULL, NULL, &stage, &error), error);
   REFUSED (mt_sync_create (mt_test_client (), mt_test_db (), "", &stage, &error), error, MT_ERROR_CONFIG, "needs a name and a start stage");
   REFUSED (mt_sync_create (mt_test_client (), mt_test_db (), "n", &missing, &error), error, MT_ERROR_CONFIG,
            "its start stage does not exist");
   ASSERT_OR_PRINT (mt_sync_create (mt_test_client (), mt_test_db (), "n", &stage, &error), error);
   REFUSED (mt_sync_create (mt_test_client (), mt_test_db (), "n", &stage, &error), error, MT_ERROR_CONFIG, "exists already");
   REFUSED (mt_sync_request_start (mt_test_client (), mt_test_db (), "none", &error), error, MT_ERROR_CONFIG, "no synchronizer named");
   REFUSED (mt_sync_begin_stage (mt_test_client (), mt_test_db (), "none", NULL, &error), error, MT_ERROR_CONFIG, "no synchronizer named");
   REFUSED (mt_sync_check_completion (mt_test_client (), mt_test_db (), "none", &advanced, &error), error, MT_ERROR_CONFIG,
            "no synchronizer named");
   ASSERT_OR_PRINT (mt_sync_begin_stage (mt_test_client (), mt_test_db (), "n", &stage, &error), error);
   REFUSED (mt_sync_begin_stage (mt_test_client (), mt_test_db (), "n", NULL, &error), error, MT_ERROR_CONFIG, "is running already");
   REFUSED (mt_sync_request_start (mt_test_client (), mt_test_db (), "n", &error), error, MT_ERROR_CONFIG, "is running; ask again");
}

/* Synchronizers edited by hand: their stages are not where they say. */
static void
test_syncs_odd (void)
{
   mt_context_t ctx;
   bson_error_t error;
   bool advanced;

   insert ("synchronizers", "{'_id': 'a', 'name': 'a', 'status': 'stand_by', 'start_stage': 'first'}");
   REFUSED (mt_sync_begin_stage (mt_test_client (), mt_test_db (), "a", NULL, &error), error, MT_ERROR_CONFIG,
            "its start_stage is not an ObjectId");
   insert ("synchronizers", "{'_id': 'b', 'name': 'b', 'status': 'stand_by', 'start_stage': {'$oid': '000000000000000000000009'}}");
   REFUSED (mt_sync_begin_stage (mt_test_client (), mt_test_db (), "b", NULL, &error), error, MT_ERROR_CONFIG,
            "its stage is missing from 'stages'");
   insert ("synchronizers", "{'_id': 'c', 'name': 'c', 'status': 'running', 'actual_stage': 'first'}");
   REFUSED (mt_sync_check_completion (mt_test_client (), mt_test_db (), "c", &advanced, &error), error, MT_ERROR_CONFIG,
            "its actual_stage is not an ObjectId");
   insert ("synchronizers", "{'_id': 'd', 'name': 'd', 'status': 'running', 'actual_stage': {'$oid': '000000000000000000000009'}}");
   REFUSED (mt_sync_check_completion (mt_test_client (), mt_test_db (), "d", &advanced, &error), error, MT_ERROR_CONFIG,
            "its stage is missing from 'stages'");
   /* Its next stage is gone: it moves there, and says it cannot begin it. */
   insert ("stages", "{'_id': {'$oid': '00000000000000000000000a'}, 'name': 'e', 'callable': 'c', 'queue': 'qe',"
                     " 'next_stage': {'$oid': '00000000000000000000000b'}}");
   insert ("synchronizers", "{'_id': 'e', 'name': 'e', 'status': 'running', 'actual_stage': {'$oid': '00000000000000000000000a'},"
                            " 'stage_task': {'$oid': '00000000000000000000000c'}}");
   REFUSED (mt_sync_check_completion (mt_test_client (), mt_test_db (), "e", &advanced, &error), error, MT_ERROR_CONFIG,
            "its next stage is missing from 'stages'");
   ASSERT (advanced);
   /* The upkeep passes over a synchronizer without a name, and logs the
    * ones it cannot check. */
   insert ("synchronizers", "{'_id': 'f', 'status': 'running'}");
   insert ("synchronizers", "{'_id': 'g', 'name': 'g'}");
   /* On stand-by with a close still to do, not asked to start. */
   insert ("synchronizers", "{'_id': 'h', 'name': 'h', 'status': 'stand_by', 'closing': {'$oid': '00000000000000000000000f'}}");
   context (&ctx);
   ASSERT_OR_PRINT (mt_sync_upkeep (&ctx, mt_test_client (), &error), error);
   ASSERT_CMPINT (count_in ("synchronizers", "{'_id': 'h', 'status': 'stand_by', 'closing': {'$exists': false}}"), ==, 1);
   mt_context_cleanup (&ctx);
}

/* ---- the archive and retention ---------------------------------------------------------- */

static void
test_archive_refused (void)
{
   const char *running[] = {"WORK_IN_PROGRESS", NULL}, *none[] = {NULL};
   bson_error_t error;

   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), "workers", 60, NULL, false, &error), ==, -1);
   ASSERT_CONTAINS (error.message, "retention applies to 'tasks' or 'completed_tasks', not 'workers'");
   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), NULL, -1, NULL, false, &error), ==, -1);
   ASSERT_CONTAINS (error.message, "the age must be 0 to 100 years");
   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), NULL, 60, running, false, &error), ==, -1);
   ASSERT_CONTAINS (error.message, "is not an ended one");
   ASSERT_CMPINT (mt_purge (mt_test_client (), mt_test_db (), "tasks", 60, none, false, &error), ==, 0);
   REFUSED (mt_retention_set (mt_test_client (), mt_test_db (), NULL, 60, &error), error, MT_ERROR_CONFIG, "not '(none)'");
   REFUSED (mt_retention_set (mt_test_client (), mt_test_db (), "tasks", INT64_C (1) << 40, &error), error, MT_ERROR_CONFIG,
            "more than MongoDB's TTL allows");
   /* Dropping one that is not there is done. */
   ASSERT_OR_PRINT (mt_retention_set (mt_test_client (), mt_test_db (), "completed_tasks", -1, &error), error);
}

/* A task that ended by a path that left no status to go by is not moved. */
static void
test_archive_odd (void)
{
   bson_value_t id = {.value_type = BSON_TYPE_INT32, .value.v_int32 = 1};
   bson_error_t error;
   bool moved = true;

   ASSERT_OR_PRINT (mt_archive_move (mt_test_client (), mt_test_db (), &id, &moved, &error), error);
   ASSERT (!moved);
}

/* ---- enqueue and the task document ------------------------------------------------------- */

static void
test_enqueue_refused (void)
{
   static const struct {
      const char *opts;
      const char *fragment;
   } cases[] = {
      {"{'delay': 'soon'}", "option 'delay' must be a number of seconds"},
      {"{'priority': {'$numberLong': '10000000000'}}", "option 'priority' must be a 32-bit integer"},
      {"{'max_attempts': 0}", "option 'max_attempts' must be an integer, 1 or more"},
      {"{'max_attempts': 2.5}", "option 'max_attempts' must be an integer"},
      {"{'repeat': 0.5}", "option 'repeat' must be a number of seconds from 1"},
      {"{'repeat': 'hourly'}", "option 'repeat' must be a number"},
      {"{'run_at': 'tomorrow'}", "option 'run_at' must be a date"},
      {"{'repeat': 60, 'repeat_until': 'never'}", "option 'repeat_until' must be a date"},
      {"{'cron': '0 0 30 2 *'}", "option 'cron': '0 0 30 2 *' never matches a date"},
      {"{'cron': '0 0 * * *', 'timezone': 'Nowhere/Atlantis'}", "option 'timezone': unknown time zone"},
      {"{'cron': ''}", "option 'cron' must be a non-empty string"},
      {"{'cron': '0 0 * * *', 'repeat': 60}", "option 'cron' and 'repeat' both say when to repeat"},
      {"{'delay': 5, 'run_at': {'$date': {'$numberLong': '0'}}}", "option 'run_at' and 'delay' both say when to start"},
      {"{'timezone': 'UTC'}", "option 'timezone' applies to 'cron' only"},
      {"{'repeat_until': {'$date': {'$numberLong': '0'}}}", "option 'repeat_until' needs 'repeat' or 'cron'"},
      {"{'repeat': 60, 'repeat_until': {'$date': {'$numberLong': '0'}}}", "option 'repeat_until' is before the first run"},
   };
   bson_error_t error;

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *opts = mt_test_bson (cases[i].opts);

      REFUSED (mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, opts, NULL, &error), error, MT_ERROR_CONFIG,
               cases[i].fragment);
      bson_destroy (opts);
   }
   REFUSED (mt_enqueue (mt_test_client (), mt_test_db (), "q", NULL, NULL, NULL, NULL, &error), error, MT_ERROR_CONFIG,
            "enqueue needs a queue and a task type");
   REFUSED (mt_enqueue (mt_test_client (), mt_test_db (), NULL, "echo", NULL, NULL, NULL, &error), error, MT_ERROR_CONFIG,
            "enqueue needs a queue and a task type");
   ASSERT_CMPINT (count_in ("tasks", "{}"), ==, 0);
}

static void
test_task_parse_odd (void)
{
   static const struct {
      const char *doc;
      const char *fragment; /* NULL: it parses */
   } cases[] = {
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'attempts': 2.0}", NULL},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'attempts': null}", NULL},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'attempts': 'two'}", "attempts"},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'accounts': [1]}", "accounts"},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'accounts': 'a'}", "accounts"},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'max_attempts': 0}", "max_attempts"},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'max_attempts': 'x'}", "max_attempts"},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'timeout': 'x'}", "timeout"},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'repeat': 'x'}", "repeat"},
      {"{'_id': 1, 'queue': 'q', 'type': 't', 'repeat': 60, 'scheduled': 'x'}", "scheduled"},
      {"{'_id': {'$numberDecimal': '1'}, 'queue': 'q', 'type': 't'}", NULL},
      {"{'_id': [1], 'queue': 'q', 'type': 't'}", NULL},
   };

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *doc = mt_test_bson (cases[i].doc);
      mt_task_doc_t task;
      bson_error_t error;
      bool ok = mt_task_doc_parse (doc, &task, &error);

      if (!cases[i].fragment) {
         ASSERT_OR_PRINT (ok, error);
      } else {
         if (ok) {
            mt_test_fail (__FILE__, __LINE__, "%s parsed", cases[i].doc);
         }
         ASSERT_CMPINT (error.code, ==, MT_TASK_ERROR_MALFORMED);
         ASSERT_CONTAINS (error.message, cases[i].fragment);
      }
      bson_destroy (doc);
   }
}

/* ---- the admin API ------------------------------------------------------------------------ */

static bool
array_has (const bson_t *reply, const char *array, const char *key, const char *value)
{
   bson_iter_t iter, item, field;

   if (!bson_iter_init_find (&iter, reply, array) || !bson_iter_recurse (&iter, &item)) {
      return false;
   }
   while (bson_iter_next (&item)) {
      if (BSON_ITER_HOLDS_DOCUMENT (&item) && bson_iter_recurse (&item, &field) && bson_iter_find (&field, key) &&
          BSON_ITER_HOLDS_UTF8 (&field) && !strcmp (bson_iter_utf8 (&field, NULL), value)) {
         return true;
      }
   }
   return false;
}

/* Fields of other types, as the admin views label them. */
static void
test_admin_odd_fields (void)
{
   bson_t reply;
   bson_error_t error;
   bson_t *bad = mt_test_bson ("{'queue': 5}");

   insert ("tasks", "{'queue': 5, 'status': 'CREATED', 'type': 7}");
   insert ("tasks", "{'queue': 2.5, 'status': 'CREATED', 'type': 'echo'}");
   insert ("tasks", "{'queue': null, 'status': 'DONE'}");
   insert ("tasks", "{'queue': [1], 'type': ['x']}");
   insert ("tasks", "{'queue': {'$oid': '00000000000000000000000d'}, 'status': 'CREATED'}");
   ASSERT_OR_PRINT (mt_admin_stats (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);
   ASSERT (array_has (&reply, "by_queue", "queue", "5"));
   ASSERT (array_has (&reply, "by_queue", "queue", "2.5"));
   ASSERT (array_has (&reply, "by_queue", "queue", "(none)"));
   ASSERT (array_has (&reply, "by_queue", "queue", "(not a string)"));
   ASSERT (array_has (&reply, "by_queue", "queue", "00000000000000000000000d"));
   ASSERT (array_has (&reply, "by_queue", "status", "(none)"));
   ASSERT (array_has (&reply, "by_type", "type", "7"));
   bson_destroy (&reply);
   REFUSED (mt_admin_tasks (mt_test_client (), mt_test_db (), bad, &reply, &error), error, MT_ERROR_CONFIG,
            "option 'queue' must be a non-empty string");
   bson_destroy (&reply);

   /* A group whose stage 2 has tasks but no document, and tasks without a
    * status; a group without stages. */
   insert ("groups", "{'_id': {'$oid': '00000000000000000000000e'}, 'status': 'running', 'created': " OLD "}");
   insert ("groups", "{'_id': 'by-hand', 'status': 'pending'}");
   insert ("group_stages", "{'group': {'$oid': '00000000000000000000000e'}, 'number': 1, 'status': 'complete', 'total': 1,"
                           " 'done': 1, 'done_ids': [1]}");
   insert ("group_stages", "{'group': 'by-hand', 'number': 1, 'status': 'pending'}");
   insert ("tasks", "{'group': {'$oid': '00000000000000000000000e'}, 'stage': 1, 'status': 'FINISHED'}");
   insert ("tasks", "{'group': {'$oid': '00000000000000000000000e'}, 'stage': 2}");
   insert ("tasks", "{'group': {'$oid': '00000000000000000000000e'}, 'stage': 3, 'status': 'WAITING'}");
   ASSERT_OR_PRINT (mt_admin_groups (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);
   bson_destroy (&reply);
   {
      bson_oid_t group;

      bson_oid_init_from_string (&group, "00000000000000000000000e");
      ASSERT_OR_PRINT (mt_admin_group (mt_test_client (), mt_test_db (), &group, NULL, &reply, &error), error);
      ASSERT (mt_test_has (&reply, "stages.1.missing"));
      ASSERT (mt_test_has (&reply, "stages.2.missing"));
      ASSERT_CMPINT (mt_test_int (&reply, "stages.1.tasks.(none)"), ==, 1);
      bson_destroy (&reply);
   }

   /* Repeating tasks written by hand: a repeat in whole minutes and one
    * in a fraction of seconds, a cron without a zone, one due now. */
   insert ("tasks", "{'queue': 's', 'status': 'CREATED', 'repeat': 5400, 'delayed': " OLD "}");
   insert ("tasks", "{'queue': 's', 'status': 'CREATED', 'repeat': 1.5, 'scheduled': " OLD "}");
   insert ("tasks", "{'queue': 's', 'status': 'WAITING', 'cron': '0 6 * * *'}");
   insert ("tasks", "{'queue': 's', 'status': 'CREATED', 'repeat': 'often'}");
   {
      bson_t *queue = mt_test_bson ("{'queue': 's'}");

      ASSERT_OR_PRINT (mt_admin_schedules (mt_test_client (), mt_test_db (), queue, &reply, &error), error);
      ASSERT (array_has (&reply, "schedules", "rule", "every 5400 s (90m)"));
      ASSERT (array_has (&reply, "schedules", "rule", "every 1.5 s"));
      ASSERT (array_has (&reply, "schedules", "rule", "(malformed: see 'mtaskctl show')"));
      ASSERT (array_has (&reply, "schedules", "rule", "cron '0 6 * * *' (UTC)"));
      bson_destroy (&reply);
      bson_destroy (queue);
   }
   bson_destroy (bad);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/documents/lease/odd_tasks", test_lease_odd_tasks);
   mt_test_add ("/documents/locks/odd_holders", test_locks_odd_holders);
   mt_test_add ("/documents/locks/refused", test_locks_refused);
   mt_test_add ("/documents/slots/odd", test_slots_odd);
   mt_test_add ("/documents/slots/refused", test_slots_refused);
   mt_test_add ("/documents/groups/refused", test_groups_refused);
   mt_test_add ("/documents/groups/odd", test_groups_odd);
   mt_test_add ("/documents/schedule/successor_odd", test_successor_odd);
   mt_test_add ("/documents/schedule/until", test_schedule_until);
   mt_test_add ("/documents/syncs/refused", test_syncs_refused);
   mt_test_add ("/documents/syncs/odd", test_syncs_odd);
   mt_test_add ("/documents/archive/refused", test_archive_refused);
   mt_test_add ("/documents/archive/odd", test_archive_odd);
   mt_test_add ("/documents/enqueue/refused", test_enqueue_refused);
   mt_test_add ("/documents/task/parse_odd", test_task_parse_odd);
   mt_test_add ("/documents/admin/odd_fields", test_admin_odd_fields);
   return mt_test_main (argc, argv);
}
