/* The admin API against a real server: every call's reply on a seeded
 * database, its options, and what it says when something is not there or
 * the server cannot be reached. */
#include "mt-test.h"

/* Inserts each document of a JSON array (single quotes allowed) into
 * `collection` of the test's database. */
static void
seed (const char *collection, const char *json_array)
{
   bson_t *docs = mt_test_bson (json_array);
   bson_iter_t iter;

   ASSERT (bson_iter_init (&iter, docs));
   while (bson_iter_next (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t doc;

      ASSERT (BSON_ITER_HOLDS_DOCUMENT (&iter));
      bson_iter_document (&iter, &len, &data);
      ASSERT (bson_init_static (&doc, data, len));
      mt_test_insert (collection, &doc);
   }
   bson_destroy (docs);
}

/* How many elements the array at `dotted` has; fails when it is none. */
static int64_t
array_len (const bson_t *doc, const char *dotted)
{
   bson_iter_t top, iter, child;
   int64_t n = 0;

   if (!bson_iter_init (&top, doc) || !bson_iter_find_descendant (&top, dotted, &iter) || !BSON_ITER_HOLDS_ARRAY (&iter) ||
       !bson_iter_recurse (&iter, &child)) {
      mt_test_fail (__FILE__, __LINE__, "field '%s' is not an array", dotted);
   }
   while (bson_iter_next (&child)) {
      n++;
   }
   return n;
}

static bson_oid_t
oid (const char *hex)
{
   bson_oid_t id;

   bson_oid_init_from_string (&id, hex);
   return id;
}

#define T(n) "00000000000000000000000" #n

static const char *const tasks_json =
   "[{'_id': {'$oid': '" T (1) "'}, 'queue': 'general', 'type': 'echo', 'status': 'CREATED', 'created': {'$date': '2020-01-01T00:00:01Z'}},"
   " {'_id': {'$oid': '" T (2) "'}, 'queue': 'general', 'type': 'echo', 'status': 'FINISHED', 'created': {'$date': '2020-01-01T00:00:02Z'}},"
   " {'_id': {'$oid': '" T (3) "'}, 'queue': 'general', 'type': 'pdf', 'status': 'CREATED', 'created': {'$date': '2020-01-01T00:00:03Z'}},"
   " {'_id': {'$oid': '" T (4) "'}, 'queue': 'billing', 'type': 'transfer', 'status': 'WORK_IN_PROGRESS', 'worker_pid': 'W-1',"
   "  'attempts': 1, 'created': {'$date': '2020-01-01T00:00:04Z'}},"
   " {'_id': {'$oid': '" T (5) "'}, 'queue': 'billing', 'type': 'echo', 'status': 'PAUSED', 'created': {'$date': '2020-01-01T00:00:05Z'}},"
   " {'_id': {'$oid': '" T (6) "'}, 'type': 'echo', 'status': 'CREATED', 'created': {'$date': '2020-01-01T00:00:06Z'}},"
   " {'_id': {'$oid': '" T (7) "'}, 'queue': 'general', 'type': 'echo', 'status': 'WAITING', 'created': {'$date': '2020-01-01T00:00:07Z'}}]";

static void
test_options_unknown (void)
{
   mongoc_client_t *client = mt_test_client ();
   const char *db = mt_test_db ();
   bson_t *opts = mt_test_bson ("{'x': 1}");
   bson_oid_t id = oid (T (1));
   bson_error_t error;
   bson_t reply;

#define REFUSES(call)                                                                 \
   do {                                                                               \
      memset (&error, 0, sizeof error);                                               \
      ASSERT (!(call));                                                               \
      ASSERT_CMPINT (error.domain, ==, MT_ERROR_CONFIG);                              \
      ASSERT_CMPINT (error.code, ==, MT_CONFIG_ERROR_OPTION);                         \
      ASSERT_CMPSTR (error.message, "Invalid option 'x'");                            \
      ASSERT_CMPINT (bson_count_keys (&reply), ==, 0); /* initialized, and empty */   \
      bson_destroy (&reply);                                                          \
   } while (0)

   REFUSES (mt_admin_stats (client, db, opts, &reply, &error));
   REFUSES (mt_admin_tasks (client, db, opts, &reply, &error));
   REFUSES (mt_admin_task (client, db, &id, opts, &reply, &error));
   REFUSES (mt_admin_unique_holder (client, db, "k", opts, &reply, &error));
   REFUSES (mt_admin_locks (client, db, opts, &reply, &error));
   REFUSES (mt_admin_groups (client, db, opts, &reply, &error));
   REFUSES (mt_admin_group (client, db, &id, opts, &reply, &error));
   REFUSES (mt_admin_syncs (client, db, opts, &reply, &error));
   REFUSES (mt_admin_sync (client, db, "s", opts, &reply, &error));
   REFUSES (mt_admin_sync_stage (client, db, &id, opts, &reply, &error));
   REFUSES (mt_admin_slots (client, db, opts, &reply, &error));
   REFUSES (mt_admin_pool (client, db, "p", opts, &reply, &error));
   REFUSES (mt_admin_task_slots (client, db, &id, opts, &reply, &error));
   REFUSES (mt_admin_schedules (client, db, opts, &reply, &error));
   REFUSES (mt_admin_retention (client, db, opts, &reply, &error));
#undef REFUSES
   bson_destroy (opts);
}

/* `call` with `json` as opts fails with MT_CONFIG_ERROR_INVALID and a
 * message containing `message`. */
#define REFUSES_VALUE(json, want, call)                     \
   do {                                                        \
      bson_t *opts = mt_test_bson (json);                      \
      bson_error_t error;                                      \
      bson_t reply;                                            \
      ASSERT (!(call));                                        \
      ASSERT_CMPINT (error.domain, ==, MT_ERROR_CONFIG);       \
      ASSERT_CMPINT (error.code, ==, MT_CONFIG_ERROR_INVALID); \
      ASSERT_CMPSTR (error.message, want);                     \
      bson_destroy (&reply);                                   \
      bson_destroy (opts);                                     \
   } while (0)

static void
test_options_wrong_type (void)
{
   mongoc_client_t *client = mt_test_client ();
   const char *db = mt_test_db ();
   bson_oid_t id = oid (T (1));

   REFUSES_VALUE ("{'limit': 'ten'}", "option 'limit' must be an integer, 0 or more",
                  mt_admin_tasks (client, db, opts, &reply, &error));
   REFUSES_VALUE ("{'limit': -1}", "option 'limit' must be an integer, 0 or more",
                  mt_admin_tasks (client, db, opts, &reply, &error));
   REFUSES_VALUE ("{'limit': 2.5}", "option 'limit' must be an integer, 0 or more",
                  mt_admin_tasks (client, db, opts, &reply, &error));
   REFUSES_VALUE ("{'queue': 5}", "option 'queue' must be a non-empty string",
                  mt_admin_tasks (client, db, opts, &reply, &error));
   REFUSES_VALUE ("{'status': ''}", "option 'status' must be a non-empty string",
                  mt_admin_tasks (client, db, opts, &reply, &error));
   REFUSES_VALUE ("{'queue': null}", "option 'queue' must be a non-empty string",
                  mt_admin_schedules (client, db, opts, &reply, &error));
   REFUSES_VALUE ("{'stages': 1}", "option 'stages' must be true or false",
                  mt_admin_group (client, db, &id, opts, &reply, &error));
   REFUSES_VALUE ("{'collection': 'locks'}", "option 'collection' must be 'tasks' or 'completed_tasks', not 'locks'",
                  mt_admin_retention (client, db, opts, &reply, &error));
}

static void
test_stats_by_queue (void)
{
   bson_error_t error;
   bson_t reply;

   seed ("tasks", tasks_json);
   seed ("tasks", "[{'_id': 1, 'queue': 7, 'type': 'echo', 'status': 'CREATED'}]");
   ASSERT_OR_PRINT (mt_admin_stats (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);

   /* By queue name, then status in lifecycle order, unknown ones last. */
   ASSERT_CMPINT (array_len (&reply, "by_queue"), ==, 7);
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.0.queue"), "(none)");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.0.status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (&reply, "by_queue.0.n"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.1.queue"), "7");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.2.queue"), "billing");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.2.status"), "WORK_IN_PROGRESS");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.3.queue"), "billing");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.3.status"), "PAUSED");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.4.queue"), "general");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.4.status"), "WAITING");
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.5.status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (&reply, "by_queue.5.n"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "by_queue.6.status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (&reply, "by_queue.6.n"), ==, 1);

   /* The CREATED ones by type. */
   ASSERT_CMPINT (array_len (&reply, "by_type"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "by_type.0.type"), "echo");
   ASSERT_CMPINT (mt_test_int (&reply, "by_type.0.n"), ==, 3);
   ASSERT_CMPSTR (mt_test_str (&reply, "by_type.1.type"), "pdf");
   ASSERT_CMPINT (mt_test_int (&reply, "by_type.1.n"), ==, 1);

   ASSERT_CMPINT (array_len (&reply, "statuses"), ==, 5);
   ASSERT_CMPSTR (mt_test_str (&reply, "statuses.0"), "WAITING");
   ASSERT_CMPSTR (mt_test_str (&reply, "statuses.1"), "CREATED");
   ASSERT_CMPSTR (mt_test_str (&reply, "statuses.2"), "WORK_IN_PROGRESS");
   ASSERT_CMPSTR (mt_test_str (&reply, "statuses.3"), "FINISHED");
   ASSERT_CMPSTR (mt_test_str (&reply, "statuses.4"), "PAUSED");
   bson_destroy (&reply);
}

static void
test_stats_empty (void)
{
   bson_error_t error;
   bson_t reply;

   ASSERT_OR_PRINT (mt_admin_stats (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "by_queue"), ==, 0);
   ASSERT_CMPINT (array_len (&reply, "by_type"), ==, 0);
   ASSERT_CMPINT (array_len (&reply, "statuses"), ==, 0);
   bson_destroy (&reply);
}

static void
test_tasks_filters (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_error_t error;
   bson_t reply, *opts;

   seed ("tasks", tasks_json);
   ASSERT_OR_PRINT (mt_admin_tasks (client, mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "tasks"), ==, 7);
   ASSERT_CMPSTR (mt_test_str (&reply, "tasks.0.status"), "WAITING"); /* newest first */
   ASSERT_CMPSTR (mt_test_str (&reply, "tasks.6.type"), "echo");
   ASSERT_CMPINT (mt_test_date (&reply, "tasks.6.created"), ==, 1577836801000);
   bson_destroy (&reply);

   opts = mt_test_bson ("{'queue': 'general', 'type': 'echo', 'status': 'CREATED'}");
   ASSERT_OR_PRINT (mt_admin_tasks (client, mt_test_db (), opts, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "tasks"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "tasks.0.queue"), "general");
   bson_destroy (&reply);
   bson_destroy (opts);

   opts = mt_test_bson ("{'queue': 'billing', 'limit': 1}");
   ASSERT_OR_PRINT (mt_admin_tasks (client, mt_test_db (), opts, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "tasks"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "tasks.0.status"), "PAUSED");
   bson_destroy (&reply);
   bson_destroy (opts);

   opts = mt_test_bson ("{'limit': 0, 'queue': 'nowhere'}");
   ASSERT_OR_PRINT (mt_admin_tasks (client, mt_test_db (), opts, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "tasks"), ==, 0);
   bson_destroy (&reply);
   bson_destroy (opts);
}

static void
test_task_found (void)
{
   bson_oid_t id = oid (T (4));
   bson_error_t error;
   bson_t reply;

   seed ("tasks", tasks_json);
   ASSERT_OR_PRINT (mt_admin_task (mt_test_client (), mt_test_db (), &id, NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "task.type"), "transfer");
   ASSERT_CMPSTR (mt_test_str (&reply, "task.worker_pid"), "W-1");
   ASSERT_CMPINT (mt_test_int (&reply, "task.attempts"), ==, 1);
   bson_destroy (&reply);
}

/* A run of a series names the run before it (by `scheduled`), found in
 * the live tasks or in the archive; the series' first run has none
 * (null), a task of no series no `previous` at all. */
static void
test_task_previous_run (void)
{
   const char *series = "65b000000000000000000001";
   bson_oid_t first = oid (series), second = oid ("65b000000000000000000002"), third = oid ("65b000000000000000000003");
   bson_oid_t other = oid ("65b000000000000000000009");
   bson_error_t error;
   bson_t reply;

   seed ("completed_tasks",
         "[{'_id': {'$oid': '65b000000000000000000001'}, 'queue': 'q', 'type': 'echo', 'status': 'FINISHED', "
         "  'series': {'$oid': '65b000000000000000000001'}, 'scheduled': {'$date': 1000000}}]");
   seed ("tasks",
         "[{'_id': {'$oid': '65b000000000000000000002'}, 'queue': 'q', 'type': 'echo', 'status': 'FAILED', "
         "  'series': {'$oid': '65b000000000000000000001'}, 'scheduled': {'$date': 2000000}},"
         " {'_id': {'$oid': '65b000000000000000000003'}, 'queue': 'q', 'type': 'echo', 'status': 'CREATED', "
         "  'series': {'$oid': '65b000000000000000000001'}, 'scheduled': {'$date': 3000000}},"
         " {'_id': {'$oid': '65b000000000000000000009'}, 'queue': 'q', 'type': 'echo', 'status': 'CREATED'}]");

   ASSERT_OR_PRINT (mt_admin_task (mt_test_client (), mt_test_db (), &third, NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "previous.status"), "FAILED");
   ASSERT (mt_test_has (&reply, "previous.scheduled"));
   bson_destroy (&reply);
   /* The one before is archived. */
   ASSERT_OR_PRINT (mt_admin_task (mt_test_client (), mt_test_db (), &second, NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "previous.status"), "FINISHED");
   bson_destroy (&reply);
   ASSERT_OR_PRINT (mt_admin_task (mt_test_client (), mt_test_db (), &first, NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "collection"), "completed_tasks");
   ASSERT (mt_test_has (&reply, "previous"));
   ASSERT (!mt_test_has (&reply, "previous.status"));
   bson_destroy (&reply);
   ASSERT_OR_PRINT (mt_admin_task (mt_test_client (), mt_test_db (), &other, NULL, &reply, &error), error);
   ASSERT (!mt_test_has (&reply, "previous"));
   bson_destroy (&reply);
}

static void
test_task_not_found (void)
{
   bson_oid_t id = oid ("0123456789abcdef01234567");
   bson_error_t error;
   char *message;
   bson_t reply;

   ASSERT (!mt_admin_task (mt_test_client (), mt_test_db (), &id, NULL, &reply, &error));
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_STORE);
   ASSERT_CMPINT (error.code, ==, MT_STORE_ERROR_NOT_FOUND);
   message = bson_strdup_printf ("no task with id 0123456789abcdef01234567 in %s.tasks nor in %s.completed_tasks", mt_test_db (), mt_test_db ());
   ASSERT_CMPSTR (error.message, message);
   bson_free (message);
   ASSERT_CMPSTR (mt_test_str (&reply, "collection"), "tasks");
   ASSERT (!mt_test_has (&reply, "task"));
   bson_destroy (&reply);
}

static void
test_unique_holder (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_error_t error;
   bson_t reply;

   seed ("tasks",
         "[{'_id': 'legacy', 'queue': 'q', 'type': 't', 'status': 'CREATED', 'unique_key': 'k1'},"
         " {'_id': 2, 'queue': 'q', 'type': 't', 'status': 'FINISHED', 'unique_key': 'k2'}]");
   ASSERT_OR_PRINT (mt_admin_unique_holder (client, mt_test_db (), "k1", NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "task._id"), "legacy");
   bson_destroy (&reply);

   /* An ended task holds no key. */
   ASSERT_OR_PRINT (mt_admin_unique_holder (client, mt_test_db (), "k2", NULL, &reply, &error), error);
   ASSERT (mt_test_is_null (&reply, "task"));
   bson_destroy (&reply);

   ASSERT (!mt_admin_unique_holder (client, mt_test_db (), "", NULL, &reply, &error));
   ASSERT_CMPINT (error.code, ==, MT_CONFIG_ERROR_INVALID);
   bson_destroy (&reply);
}

static void
test_locks_state (void)
{
   bson_error_t error;
   bson_t reply;

   seed ("tasks", tasks_json);
   seed ("locks",
         "[{'_id': 'acct-b', 'task': {'$oid': '" T (2) "'}, 'worker_pid': 'W-1', 'attempt': 1},"
         " {'_id': 'acct-a', 'task': {'$oid': '" T (4) "'}, 'worker_pid': 'W-1', 'attempt': 1},"
         " {'_id': 'acct-c', 'task': {'$oid': '" T (4) "'}, 'worker_pid': 'W-1', 'attempt': 2}]");
   ASSERT_OR_PRINT (mt_admin_locks (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "locks"), ==, 3);
   ASSERT_CMPSTR (mt_test_str (&reply, "locks.0._id"), "acct-a");
   ASSERT_CMPSTR (mt_test_str (&reply, "locks.0.state"), "held");
   ASSERT_CMPSTR (mt_test_str (&reply, "locks.0.worker_pid"), "W-1");
   ASSERT_CMPSTR (mt_test_str (&reply, "locks.1._id"), "acct-b");
   ASSERT_CMPSTR (mt_test_str (&reply, "locks.1.state"), "stale"); /* its task is FINISHED */
   ASSERT_CMPSTR (mt_test_str (&reply, "locks.2.state"), "stale"); /* an earlier attempt's */
   bson_destroy (&reply);
}

/* A group with tasks in stages 1 and 2, its stage 3 task's stage document
 * deleted ("missing"). */
static bson_oid_t
make_group (void)
{
   mongoc_client_t *client = mt_test_client ();
   mongoc_collection_t *stages;
   bson_t *opts = mt_test_bson ("{'keep_seconds': 60}"), *filter;
   bson_error_t error;
   bson_oid_t group, task;

   ASSERT_OR_PRINT (mt_group_create (client, mt_test_db (), "nightly", opts, &group, &error), error);
   ASSERT_OR_PRINT (mt_group_enqueue (client, mt_test_db (), &group, 1, "general", "echo", NULL, NULL, &task, &error), error);
   ASSERT_OR_PRINT (mt_group_enqueue (client, mt_test_db (), &group, 1, "general", "echo", NULL, NULL, &task, &error), error);
   ASSERT_OR_PRINT (mt_group_enqueue (client, mt_test_db (), &group, 2, "reports", "pdf", NULL, NULL, &task, &error), error);
   ASSERT_OR_PRINT (mt_group_enqueue (client, mt_test_db (), &group, 3, "reports", "pdf", NULL, NULL, &task, &error), error);
   ASSERT_OR_PRINT (mt_group_initiate (client, mt_test_db (), &group, &error), error);
   stages = mongoc_client_get_collection (client, mt_test_db (), "group_stages");
   filter = BCON_NEW ("group", BCON_OID (&group), "number", BCON_INT32 (3));
   ASSERT_OR_PRINT (mongoc_collection_delete_one (stages, filter, NULL, NULL, &error), error);
   bson_destroy (filter);
   bson_destroy (opts);
   mongoc_collection_destroy (stages);
   return group;
}

static void
test_groups_current_stage (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_oid_t empty;
   bson_error_t error;
   bson_t reply;

   make_group ();
   ASSERT_OR_PRINT (mt_group_create (client, mt_test_db (), "empty", NULL, &empty, &error), error);
   ASSERT_OR_PRINT (mt_admin_groups (client, mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "groups"), ==, 2);
   /* Newest first. */
   ASSERT_CMPSTR (mt_test_str (&reply, "groups.0.description"), "empty");
   ASSERT_CMPINT (mt_test_int (&reply, "groups.0.stage_count"), ==, 0);
   ASSERT (mt_test_is_null (&reply, "groups.0.current_stage"));
   ASSERT_CMPSTR (mt_test_str (&reply, "groups.1.description"), "nightly");
   ASSERT_CMPSTR (mt_test_str (&reply, "groups.1.status"), "running");
   ASSERT_CMPINT (mt_test_int (&reply, "groups.1.stage_count"), ==, 2);
   ASSERT_CMPINT (mt_test_int (&reply, "groups.1.current_stage"), ==, 1);
   bson_destroy (&reply);
}

static void
test_group_stages (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_oid_t group = make_group ();
   bson_t reply, *opts;
   bson_error_t error;

   ASSERT_OR_PRINT (mt_admin_group (client, mt_test_db (), &group, NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "group.description"), "nightly");
   ASSERT_CMPINT (array_len (&reply, "stages"), ==, 3);
   ASSERT_CMPINT (mt_test_int (&reply, "stages.0.number"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "stages.0.status"), "running");
   ASSERT_CMPINT (mt_test_int (&reply, "stages.0.total"), ==, 2);
   ASSERT_CMPINT (mt_test_int (&reply, "stages.0.tasks.CREATED"), ==, 2);
   ASSERT (!mt_test_has (&reply, "stages.0.done_ids"));
   ASSERT_CMPSTR (mt_test_str (&reply, "stages.1.status"), "pending");
   ASSERT_CMPINT (mt_test_int (&reply, "stages.1.tasks.WAITING"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&reply, "stages.2.number"), ==, 3);
   ASSERT (mt_test_has (&reply, "stages.2.missing"));
   ASSERT (!mt_test_has (&reply, "stages.2.status"));
   ASSERT_CMPINT (mt_test_int (&reply, "stages.2.tasks.WAITING"), ==, 1);
   ASSERT_CMPINT (array_len (&reply, "statuses"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "statuses.0"), "WAITING");
   ASSERT_CMPSTR (mt_test_str (&reply, "statuses.1"), "CREATED");
   bson_destroy (&reply);

   opts = mt_test_bson ("{'stages': false}");
   ASSERT_OR_PRINT (mt_admin_group (client, mt_test_db (), &group, opts, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "group.status"), "running");
   ASSERT (!mt_test_has (&reply, "stages"));
   ASSERT (!mt_test_has (&reply, "statuses"));
   bson_destroy (&reply);
   bson_destroy (opts);
}

/* `call` fails with MT_CONFIG_ERROR_NOT_FOUND, `message` and a reply that
 * names `collection`. */
#define NOT_FOUND(call, collection, want)                      \
   do {                                                        \
      bson_error_t error;                                      \
      bson_t reply;                                            \
      char *_m = bson_strdup_printf (want, mt_test_db ());     \
      ASSERT (!(call));                                        \
      ASSERT_CMPINT (error.domain, ==, MT_ERROR_CONFIG);       \
      ASSERT_CMPINT (error.code, ==, MT_CONFIG_ERROR_NOT_FOUND); \
      ASSERT_CMPSTR (error.message, _m);                       \
      ASSERT_CMPSTR (mt_test_str (&reply, "collection"), collection); \
      bson_free (_m);                                          \
      bson_destroy (&reply);                                   \
   } while (0)

static void
test_not_found (void)
{
   mongoc_client_t *client = mt_test_client ();
   const char *db = mt_test_db ();
   bson_oid_t id = oid ("0123456789abcdef01234567");

   NOT_FOUND (mt_admin_group (client, db, &id, NULL, &reply, &error), "groups",
              "no group 0123456789abcdef01234567 in %s.groups");
   NOT_FOUND (mt_admin_sync (client, db, "nightly", NULL, &reply, &error), "synchronizers",
              "no synchronizer 'nightly' in %s.synchronizers");
   NOT_FOUND (mt_admin_sync_stage (client, db, &id, NULL, &reply, &error), "stages",
              "no stage 0123456789abcdef01234567 in %s.stages");
   NOT_FOUND (mt_admin_pool (client, db, "reports", NULL, &reply, &error), "pools", "no pool 'reports' in %s.pools");
}

static void
test_syncs_stage_names (void)
{
   mongoc_client_t *client = mt_test_client ();
   mongoc_collection_t *stages;
   bson_oid_t report, import;
   bson_error_t error;
   bson_t reply, *filter;

   ASSERT_OR_PRINT (mt_sync_stage_create (client, mt_test_db (), "report", "build_report", "reports", NULL, NULL, NULL, &report, &error), error);
   ASSERT_OR_PRINT (mt_sync_stage_create (client, mt_test_db (), "import", "fetch_files", "imports", "window", &report, NULL, &import, &error), error);
   ASSERT_OR_PRINT (mt_sync_create (client, mt_test_db (), "nightly", &import, &error), error);
   ASSERT_OR_PRINT (mt_sync_create (client, mt_test_db (), "broken", &report, &error), error);
   ASSERT_OR_PRINT (mt_sync_begin_stage (client, mt_test_db (), "nightly", NULL, &error), error);
   stages = mongoc_client_get_collection (client, mt_test_db (), "stages");
   filter = BCON_NEW ("_id", BCON_OID (&report));
   ASSERT_OR_PRINT (mongoc_collection_delete_one (stages, filter, NULL, NULL, &error), error);
   bson_destroy (filter);
   mongoc_collection_destroy (stages);

   ASSERT_OR_PRINT (mt_admin_syncs (client, mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "synchronizers"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "synchronizers.0._id"), "broken"); /* by name */
   ASSERT (mt_test_is_null (&reply, "synchronizers.0.actual_stage_name"));
   ASSERT (mt_test_is_null (&reply, "synchronizers.0.start_stage_name")); /* its stage is gone */
   ASSERT_CMPSTR (mt_test_str (&reply, "synchronizers.1._id"), "nightly");
   ASSERT_CMPSTR (mt_test_str (&reply, "synchronizers.1.status"), "running");
   ASSERT_CMPSTR (mt_test_str (&reply, "synchronizers.1.actual_stage_name"), "import");
   ASSERT_CMPSTR (mt_test_str (&reply, "synchronizers.1.start_stage_name"), "import");
   bson_destroy (&reply);

   ASSERT_OR_PRINT (mt_admin_sync (client, mt_test_db (), "nightly", NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "synchronizer.status"), "running");
   ASSERT (mt_test_has (&reply, "synchronizer.stage_task"));
   bson_destroy (&reply);

   ASSERT_OR_PRINT (mt_admin_sync_stage (client, mt_test_db (), &import, NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "stage.name"), "import");
   ASSERT_CMPSTR (mt_test_str (&reply, "stage.callable"), "fetch_files");
   ASSERT_CMPSTR (mt_test_str (&reply, "stage.queue"), "imports");
   ASSERT_CMPSTR (mt_test_str (&reply, "stage.task"), "window");
   bson_destroy (&reply);
}

static const char *const slots_json =
   "[{'_id': 'a#0', 'pool': 'a', 'index': 0, 'task': {'$oid': '" T (4) "'}, 'worker_pid': 'W-1', 'attempt': 1},"
   " {'_id': 'a#1', 'pool': 'a', 'index': 1, 'task': null},"
   " {'_id': 'a#2', 'pool': 'a', 'index': 2, 'task': {'$oid': '" T (2) "'}, 'worker_pid': 'W-0', 'attempt': 1},"
   " {'_id': 'b#0', 'pool': 'b', 'index': 0, 'task': {'$oid': '" T (5) "'}},"
   " {'_id': 'c#0', 'pool': 'c', 'index': 0, 'task': null}]";

static void
test_slots_pools (void)
{
   bson_error_t error;
   bson_t reply;

   seed ("pools", "[{'_id': 'c', 'size': 1, 'timeout_seconds': 0.0}, {'_id': 'a', 'size': 2, 'timeout_seconds': 300.0}]");
   seed ("slots", slots_json);
   ASSERT_OR_PRINT (mt_admin_slots (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "pools"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "pools.0._id"), "a");
   ASSERT_CMPINT (mt_test_int (&reply, "pools.0.size"), ==, 2);
   ASSERT_CMPINT (mt_test_int (&reply, "pools.0.timeout_seconds"), ==, 300);
   ASSERT_CMPINT (mt_test_int (&reply, "pools.0.in_use"), ==, 1);
   ASSERT_CMPINT (array_len (&reply, "pools.0.slots"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "pools.0.slots.0._id"), "a#0");
   ASSERT_CMPSTR (mt_test_str (&reply, "pools.0.slots.0.worker_pid"), "W-1");
   ASSERT_CMPSTR (mt_test_str (&reply, "pools.0.slots.1._id"), "a#2");
   {
      bson_iter_t top, iter;

      ASSERT (bson_iter_init (&top, &reply) && bson_iter_find_descendant (&top, "pools.0.slots.0.beyond_size", &iter));
      ASSERT (BSON_ITER_HOLDS_BOOL (&iter) && !bson_iter_bool (&iter));
      ASSERT (bson_iter_init (&top, &reply) && bson_iter_find_descendant (&top, "pools.0.slots.1.beyond_size", &iter));
      ASSERT (BSON_ITER_HOLDS_BOOL (&iter) && bson_iter_bool (&iter));
   }
   ASSERT_CMPSTR (mt_test_str (&reply, "pools.1._id"), "c");
   ASSERT_CMPINT (mt_test_int (&reply, "pools.1.in_use"), ==, 0);
   ASSERT_CMPINT (array_len (&reply, "pools.1.slots"), ==, 0);
   ASSERT_CMPINT (array_len (&reply, "undeclared"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "undeclared.0._id"), "b#0");
   bson_destroy (&reply);
}

static void
test_pool_and_task_slots (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_oid_t held = oid (T (4)), free_task = oid (T (1));
   bson_error_t error;
   bson_t reply;

   ASSERT_OR_PRINT (mt_pool_set (client, mt_test_db (), "a", 1, 60, &error), error);
   seed ("slots", "[{'_id': 'a#5', 'pool': 'a', 'index': 5, 'task': {'$oid': '" T (4) "'}, 'worker_pid': 'W-1', 'attempt': 1}]");
   ASSERT_OR_PRINT (mt_admin_pool (client, mt_test_db (), "a", NULL, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "pool._id"), "a");
   ASSERT_CMPINT (mt_test_int (&reply, "pool.size"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&reply, "pool.timeout_seconds"), ==, 60);
   ASSERT_CMPINT (mt_test_int (&reply, "in_use"), ==, 0);
   ASSERT_CMPINT (array_len (&reply, "slots"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "slots.0._id"), "a#5");
   bson_destroy (&reply);

   ASSERT_OR_PRINT (mt_admin_task_slots (client, mt_test_db (), &held, NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "slots"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "slots.0._id"), "a#5");
   ASSERT_CMPINT (mt_test_int (&reply, "slots.0.attempt"), ==, 1);
   bson_destroy (&reply);

   ASSERT_OR_PRINT (mt_admin_task_slots (client, mt_test_db (), &free_task, NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "slots"), ==, 0);
   bson_destroy (&reply);
}

static void
test_schedules_order (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_error_t error;
   bson_t reply, *opts;

   seed ("tasks",
         "[{'_id': 1, 'queue': 'reports', 'type': 'pdf', 'status': 'CREATED', 'repeat': 3600, 'delayed': {'$date': '2030-01-01T06:00:00Z'}},"
         " {'_id': 2, 'queue': 'reports', 'type': 'pdf', 'status': 'CREATED', 'cron': '0 6 * * 1-5', 'timezone': 'Europe/Berlin',"
         "  'scheduled': {'$date': '2029-01-01T05:00:00Z'}},"
         " {'_id': 3, 'queue': 'general', 'type': 'tick', 'status': 'WORK_IN_PROGRESS', 'repeat': 90},"
         " {'_id': 4, 'queue': 'general', 'type': 'old', 'status': 'FINISHED', 'repeat': 60},"
         " {'_id': 5, 'queue': 'general', 'type': 'once', 'status': 'CREATED'}]");
   ASSERT_OR_PRINT (mt_admin_schedules (client, mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "schedules"), ==, 3);
   ASSERT_CMPINT (mt_test_int (&reply, "schedules.0._id"), ==, 3); /* due now */
   ASSERT_CMPSTR (mt_test_str (&reply, "schedules.0.rule"), "every 90 s");
   ASSERT (mt_test_is_null (&reply, "schedules.0.next_run"));
   ASSERT_CMPINT (mt_test_int (&reply, "schedules.1._id"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "schedules.1.rule"), "cron '0 6 * * 1-5' (Europe/Berlin)");
   ASSERT_CMPINT (mt_test_date (&reply, "schedules.1.next_run"), ==, 1861938000000);
   ASSERT_CMPINT (mt_test_int (&reply, "schedules.2._id"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "schedules.2.rule"), "every 3600 s (1h)");
   bson_destroy (&reply);

   opts = mt_test_bson ("{'queue': 'general'}");
   ASSERT_OR_PRINT (mt_admin_schedules (client, mt_test_db (), opts, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "schedules"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "schedules.0.type"), "tick");
   bson_destroy (&reply);
   bson_destroy (opts);
}

static void
test_retention_ttl (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_error_t error;
   bson_t reply, *opts;

   seed ("completed_tasks", "[{'_id': 1, 'status': 'FINISHED'}]");
   ASSERT_OR_PRINT (mt_admin_retention (client, mt_test_db (), NULL, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "retention"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (&reply, "retention.0.collection"), "tasks");
   ASSERT (mt_test_is_null (&reply, "retention.0.ttl_seconds"));
   ASSERT_CMPSTR (mt_test_str (&reply, "retention.1.collection"), "completed_tasks");
   ASSERT (mt_test_is_null (&reply, "retention.1.ttl_seconds"));
   bson_destroy (&reply);

   ASSERT_OR_PRINT (mt_retention_set (client, mt_test_db (), "completed_tasks", 2592000, &error), error);
   opts = mt_test_bson ("{'collection': 'completed_tasks'}");
   ASSERT_OR_PRINT (mt_admin_retention (client, mt_test_db (), opts, &reply, &error), error);
   ASSERT_CMPINT (array_len (&reply, "retention"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "retention.0.collection"), "completed_tasks");
   ASSERT_CMPINT (mt_test_int (&reply, "retention.0.ttl_seconds"), ==, 2592000);
   bson_destroy (&reply);
   bson_destroy (opts);
}

static void
test_duration_format (void)
{
   char buf[64];

   ASSERT_CMPSTR (mt_duration_format (2592000, buf, sizeof buf), "30d");
   ASSERT_CMPSTR (mt_duration_format (43200, buf, sizeof buf), "12h");
   ASSERT_CMPSTR (mt_duration_format (5400, buf, sizeof buf), "90m");
   ASSERT_CMPSTR (mt_duration_format (45, buf, sizeof buf), "45s");
   ASSERT_CMPSTR (mt_duration_format (90.5, buf, sizeof buf), "90.5s");
   ASSERT_CMPSTR (mt_duration_format (0, buf, sizeof buf), "0s");
}

/* With the server gone, a call says which collection it could not read. */
/* The boolean `key` of `doc`; fails when it is not one. */
static bool
flag (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   ASSERT (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_BOOL (&iter));
   return bson_iter_bool (&iter);
}

/* Every list call takes `limit` and says "more" when it cut the list
 * there; a limit over the bound is refused. */
static void
test_list_limits (void)
{
   mongoc_client_t *client = mt_test_client ();
   const char *db = mt_test_db ();
   bson_t *two = mt_test_bson ("{'limit': 2}"), *three = mt_test_bson ("{'limit': 3}");
   bson_error_t error;
   bson_t reply;

   seed ("groups", "[{'_id': 1, 'status': 'pending'}, {'_id': 2, 'status': 'pending'}, {'_id': 3, 'status': 'pending'}]");
   seed ("synchronizers", "[{'_id': 'a', 'status': 'stand_by'}, {'_id': 'b', 'status': 'stand_by'}, {'_id': 'c', 'status': 'stand_by'}]");
   seed ("locks", "[{'_id': 'a', 'task': 1, 'attempt': 1}, {'_id': 'b', 'task': 2, 'attempt': 1}, {'_id': 'c', 'task': 3, 'attempt': 1}]");
   seed ("workers", "[{'_id': 'w1'}, {'_id': 'w2'}, {'_id': 'w3'}]");
   seed ("pools", "[{'_id': 'p1', 'size': 1}, {'_id': 'p2', 'size': 1}, {'_id': 'p3', 'size': 1}]");
   seed ("tasks",
         "[{'_id': 1, 'queue': 'q', 'type': 't', 'status': 'CREATED', 'repeat': 60},"
         " {'_id': 2, 'queue': 'q', 'type': 't', 'status': 'CREATED', 'repeat': 60},"
         " {'_id': 3, 'queue': 'q', 'type': 't', 'status': 'CREATED', 'repeat': 60}]");

#define LIMITED(call, array)                                     \
   do {                                                          \
      bson_t *opts = two;                                        \
      ASSERT_OR_PRINT (call, error);                             \
      ASSERT_CMPINT (array_len (&reply, array), ==, 2);          \
      ASSERT (flag (&reply, "more"));                            \
      bson_destroy (&reply);                                     \
      opts = three;                                              \
      ASSERT_OR_PRINT (call, error);                             \
      ASSERT_CMPINT (array_len (&reply, array), ==, 3);          \
      ASSERT (!flag (&reply, "more"));                           \
      bson_destroy (&reply);                                     \
      (void) opts;                                               \
   } while (0)

   LIMITED (mt_admin_groups (client, db, opts, &reply, &error), "groups");
   LIMITED (mt_admin_syncs (client, db, opts, &reply, &error), "synchronizers");
   LIMITED (mt_admin_locks (client, db, opts, &reply, &error), "locks");
   LIMITED (mt_admin_workers (client, db, opts, &reply, &error), "workers");
   LIMITED (mt_admin_slots (client, db, opts, &reply, &error), "pools");
   LIMITED (mt_admin_schedules (client, db, opts, &reply, &error), "schedules");
#undef LIMITED
   bson_destroy (two);
   bson_destroy (three);
}

static void
test_list_bounds (void)
{
   mongoc_client_t *client = mt_test_client ();
   const char *db = mt_test_db ();

   REFUSES_VALUE ("{'limit': 10001}", "option 'limit' must be at most 10000: narrow what is listed instead",
                  mt_admin_groups (client, db, opts, &reply, &error));
   REFUSES_VALUE ("{'skip': 100001}", "option 'skip' must be at most 100000: narrow the list (queue, status, type, worker, q) instead",
                  mt_admin_tasks (client, db, opts, &reply, &error));
}

/* One group stage with its tasks; a stage that is not there. */
static void
test_stage (void)
{
   mongoc_client_t *client = mt_test_client ();
   bson_oid_t stage = oid ("0000000000000000000000a1"), nowhere = oid ("0000000000000000000000a2");
   bson_error_t error;
   bson_t reply;

   seed ("groups", "[{'_id': {'$oid': '0000000000000000000000b1'}, 'description': 'monthly', 'status': 'running'}]");
   seed ("group_stages",
         "[{'_id': {'$oid': '0000000000000000000000a1'}, 'group': {'$oid': '0000000000000000000000b1'}, 'number': 2,"
         "  'status': 'running', 'total': 2, 'done': 1, 'done_ids': [5]}]");
   seed ("tasks",
         "[{'_id': 5, 'group': {'$oid': '0000000000000000000000b1'}, 'stage': 2, 'status': 'FINISHED', 'params': {'big': 1}},"
         " {'_id': 6, 'group': {'$oid': '0000000000000000000000b1'}, 'stage': 2, 'status': 'FAILED', 'attempts': 3,"
         "  'error': {'message': 'no'}},"
         " {'_id': 7, 'group': {'$oid': '0000000000000000000000b1'}, 'stage': 1, 'status': 'FINISHED'}]");
   ASSERT_OR_PRINT (mt_admin_stage (client, mt_test_db (), &stage, NULL, &reply, &error), error);
   ASSERT_CMPINT (mt_test_int (&reply, "stage.number"), ==, 2);
   ASSERT (!mt_test_has (&reply, "stage.done_ids"));
   ASSERT_CMPINT (mt_test_int (&reply, "stage.tasks.FINISHED"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&reply, "stage.tasks.FAILED"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (&reply, "group.description"), "monthly");
   ASSERT_CMPINT (array_len (&reply, "tasks"), ==, 2);
   ASSERT_CMPINT (mt_test_int (&reply, "tasks.0._id"), ==, 5);
   ASSERT (!mt_test_has (&reply, "tasks.0.params"));
   ASSERT_CMPSTR (mt_test_str (&reply, "tasks.1.error.message"), "no");
   ASSERT_CMPINT (mt_test_int (&reply, "tasks.1.attempts"), ==, 3);
   bson_destroy (&reply);

   ASSERT (!mt_admin_stage (client, mt_test_db (), &nowhere, NULL, &reply, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND, "no stage 0000000000000000000000a2");
   ASSERT_CMPSTR (mt_test_str (&reply, "collection"), "group_stages");
   bson_destroy (&reply);
}

static void
test_unreachable (void)
{
   mongoc_client_t *client = mongoc_client_new ("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100");
   bson_error_t error;
   bson_t reply;

   ASSERT (client);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   ASSERT (!mt_admin_groups (client, "d", NULL, &reply, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER_SELECTION);
   ASSERT_CMPSTR (mt_test_str (&reply, "collection"), "groups"); /* the page of groups first, then their stages */
   bson_destroy (&reply);
   ASSERT (!mt_admin_slots (client, "d", NULL, &reply, &error));
   ASSERT_CMPSTR (mt_test_str (&reply, "collection"), "pools");
   bson_destroy (&reply);
   ASSERT (!mt_admin_retention (client, "d", NULL, &reply, &error));
   ASSERT_CMPSTR (mt_test_str (&reply, "collection"), "tasks");
   bson_destroy (&reply);
   mongoc_client_destroy (client);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/admin/options/unknown", test_options_unknown);
   mt_test_add ("/admin/options/wrong_type", test_options_wrong_type);
   mt_test_add ("/admin/stats/by_queue", test_stats_by_queue);
   mt_test_add ("/admin/stats/empty", test_stats_empty);
   mt_test_add ("/admin/tasks/filters", test_tasks_filters);
   mt_test_add ("/admin/task/found", test_task_found);
   mt_test_add ("/admin/task/not_found", test_task_not_found);
   mt_test_add ("/admin/task/previous_run", test_task_previous_run);
   mt_test_add ("/admin/unique_holder/live_only", test_unique_holder);
   mt_test_add ("/admin/locks/state", test_locks_state);
   mt_test_add ("/admin/groups/current_stage", test_groups_current_stage);
   mt_test_add ("/admin/group/stages", test_group_stages);
   mt_test_add ("/admin/not_found", test_not_found);
   mt_test_add ("/admin/syncs/stage_names", test_syncs_stage_names);
   mt_test_add ("/admin/slots/pools", test_slots_pools);
   mt_test_add ("/admin/slots/pool_and_task", test_pool_and_task_slots);
   mt_test_add ("/admin/schedules/order", test_schedules_order);
   mt_test_add ("/admin/lists/limit", test_list_limits);
   mt_test_add ("/admin/lists/bounds", test_list_bounds);
   mt_test_add ("/admin/stage", test_stage);
   mt_test_add ("/admin/retention/ttl", test_retention_ttl);
   mt_test_add ("/admin/duration_format", test_duration_format);
   mt_test_add ("/admin/unreachable", test_unreachable);
   return mt_test_main (argc, argv);
}
