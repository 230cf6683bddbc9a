/* Account locks (seed 001) against a real server: each rule of the seed,
 * the declarative `accounts` field, and the money test. */
#include "mt-test.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#define ACCOUNTS(...) ((const char *const[]){__VA_ARGS__}), (sizeof ((const char *const[]){__VA_ARGS__}) / sizeof (char *))

/* A task run that is going on: a WORK_IN_PROGRESS document, and the owner
 * that names it. */
typedef struct {
   bson_oid_t oid;
   bson_value_t id;
   char worker[32];
   mt_lock_owner_t owner;
} run_t;

static void
start_run (run_t *run, const char *worker)
{
   bson_t *doc;

   bson_oid_init (&run->oid, NULL);
   run->id.value_type = BSON_TYPE_OID;
   bson_oid_copy (&run->oid, &run->id.value.v_oid);
   bson_strncpy (run->worker, worker, sizeof run->worker);
   run->owner.task_id = &run->id;
   run->owner.worker_id = run->worker;
   run->owner.attempt = 1;
   doc = BCON_NEW ("_id", BCON_OID (&run->oid), "queue", "q", "type", "probe", "status", "WORK_IN_PROGRESS", "worker_pid", worker, "attempts", BCON_INT32 (1));
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
}

static int64_t
locks_of (const run_t *run)
{
   char hex[25];

   bson_oid_to_string (&run->oid, hex);
   return mt_test_count_in ("locks", "{'task': {'$oid': '%s'}}", hex);
}

/* The held array as "a,b,c". */
static char *
join (const bson_t *array)
{
   bson_string_t *s = bson_string_new (NULL);
   bson_iter_t iter;

   if (bson_iter_init (&iter, array)) {
      while (bson_iter_next (&iter)) {
         if (s->len) {
            bson_string_append (s, ",");
         }
         bson_string_append (s, bson_iter_utf8 (&iter, NULL));
      }
   }
   return bson_string_free (s, false);
}

static void
expect_held (const run_t *run, const char *const *accounts, size_t n, const char *expected)
{
   bson_t held;
   bson_error_t error;
   char *got;

   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &run->owner, accounts, n, &held, &error), error);
   got = join (&held);
   bson_destroy (&held);
   ASSERT_CMPSTR (got, expected);
   bson_free (got);
}

static void
test_free (void)
{
   run_t a;
   bson_t *doc;

   start_run (&a, "W-A");
   expect_held (&a, ACCOUNTS ("y", "x", "x"), "x,y");
   ASSERT_CMPINT (locks_of (&a), ==, 2);

   doc = mt_test_find_one ("locks", "{'_id': 'x'}");
   ASSERT_CMPSTR (mt_test_str (doc, "worker_pid"), "W-A");
   ASSERT_CMPINT (mt_test_int (doc, "attempt"), ==, 1);
   ASSERT (mt_test_date (doc, "acquired") > 0);
   bson_destroy (doc);
}

static void
test_partly_own (void)
{
   run_t a;

   start_run (&a, "W-A");
   expect_held (&a, ACCOUNTS ("x"), "x");
   /* Some held by this same task, the rest free: all of the task's locks. */
   expect_held (&a, ACCOUNTS ("x", "y"), "x,y");
   expect_held (&a, ACCOUNTS ("z"), "x,y,z");
   ASSERT_CMPINT (locks_of (&a), ==, 3);
}

static void
test_held_by_other (void)
{
   run_t a, b;
   bson_error_t error;
   char hex[25];

   start_run (&a, "W-A");
   start_run (&b, "W-B");
   expect_held (&a, ACCOUNTS ("y"), "y");
   ASSERT (!mt_locks_acquire (mt_test_client (), mt_test_db (), &b.owner, ACCOUNTS ("x", "y", "z"), NULL, &error));
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_LOCK);
   ASSERT_CMPINT (error.code, ==, MT_LOCK_ERROR_BUSY);
   bson_oid_to_string (&a.oid, hex);
   ASSERT_CONTAINS (error.message, "account 'y' is locked by task ");
   ASSERT_CONTAINS (error.message, hex);
   ASSERT_CONTAINS (error.message, "worker 'W-A'");
   /* Nothing newly taken is left behind: x was taken before y failed. */
   ASSERT_CMPINT (locks_of (&b), ==, 0);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 1);
   ASSERT_CMPINT (locks_of (&a), ==, 1);
}

static void
test_release_and_reacquire (void)
{
   run_t a, b;
   bson_error_t error;

   start_run (&a, "W-A");
   start_run (&b, "W-B");
   expect_held (&a, ACCOUNTS ("x", "y"), "x,y");
   ASSERT_OR_PRINT (mt_locks_release (mt_test_client (), mt_test_db (), &a.owner, ACCOUNTS ("x"), &error), error);
   /* Releasing what another holds does nothing. */
   ASSERT_OR_PRINT (mt_locks_release (mt_test_client (), mt_test_db (), &b.owner, ACCOUNTS ("y"), &error), error);
   ASSERT_CMPINT (locks_of (&a), ==, 1);
   expect_held (&b, ACCOUNTS ("x"), "x");
   ASSERT (!mt_locks_acquire (mt_test_client (), mt_test_db (), &a.owner, ACCOUNTS ("x"), NULL, &error));
   ASSERT_CMPINT (error.code, ==, MT_LOCK_ERROR_BUSY);
   ASSERT_CMPINT (mt_locks_release_all (mt_test_client (), mt_test_db (), &b.owner, &error), ==, 1);
   expect_held (&a, ACCOUNTS ("x"), "x,y");
   ASSERT_CMPINT (mt_locks_release_all (mt_test_client (), mt_test_db (), &a.owner, &error), ==, 2);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
}

static void
test_stale_takeover (void)
{
   /* A lock whose run is over is not a lock: finished, failed, given back
    * (CREATED), or claimed again (another attempt). */
   static const char *const ends[] = {"FINISHED", "FAILED", "CREATED", "CANCELLED"};

   for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
      run_t a, b;
      bson_error_t error;
      char account[16];
      const char *list[1] = {account};

      bson_snprintf (account, sizeof account, "acct-%zu", i);
      start_run (&a, "W-A");
      start_run (&b, "W-B");
      ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &a.owner, list, 1, NULL, &error), error);
      ASSERT (!mt_locks_acquire (mt_test_client (), mt_test_db (), &b.owner, list, 1, NULL, &error));
      mt_test_task_set (&a.oid, "{'status': '%s'}", ends[i]);
      ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &b.owner, list, 1, NULL, &error), error);
      ASSERT_CMPINT (locks_of (&a), ==, 0);
      ASSERT_CMPINT (locks_of (&b), ==, 1);
   }
   {
      /* The same task, claimed again: its earlier attempt's lock is stale. */
      run_t a;
      mt_lock_owner_t again;
      bson_error_t error;

      start_run (&a, "W-A");
      ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &a.owner, ACCOUNTS ("z"), NULL, &error), error);
      again = a.owner;
      again.attempt = 2;
      ASSERT (!mt_locks_acquire (mt_test_client (), mt_test_db (), &again, ACCOUNTS ("z"), NULL, &error));
      mt_test_task_set (&a.oid, "{'status': 'CREATED'}");
      ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &again, ACCOUNTS ("z"), NULL, &error), error);
      ASSERT_CMPINT (mt_test_count_in ("locks", "{'_id': 'z', 'attempt': 2}"), ==, 1);
   }
}

typedef struct {
   run_t run;
   mongoc_client_pool_t *pool;
   const char *db;
   bool won;
   bson_error_t error;
} racer_t;

static void *
race (void *data)
{
   racer_t *r = data;
   mongoc_client_t *client = mongoc_client_pool_pop (r->pool);
   const char *account[] = {"contested"};

   r->won = mt_locks_acquire (client, r->db, &r->run.owner, account, 1, NULL, &r->error);
   mongoc_client_pool_push (r->pool, client);
   return NULL;
}

static void
test_stale_takeover_once (void)
{
   /* Eight runs see the same stale lock at once; exactly one takes it. */
   enum { N = 8 };
   racer_t racers[N];
   pthread_t threads[N];
   run_t dead;
   bson_error_t error;
   mongoc_uri_t *uri = mongoc_uri_new (mt_test_uri ());
   mongoc_client_pool_t *pool = mongoc_client_pool_new (uri);
   int winners = 0, winner = 0;
   char hex[25], *busy;

   mongoc_client_pool_set_error_api (pool, MONGOC_ERROR_API_VERSION_2);
   start_run (&dead, "W-DEAD");
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &dead.owner, ACCOUNTS ("contested"), NULL, &error), error);
   mt_test_task_set (&dead.oid, "{'status': 'FAILED'}");
   for (int i = 0; i < N; i++) {
      char name[16];

      bson_snprintf (name, sizeof name, "W-%d", i);
      memset (&racers[i], 0, sizeof racers[i]);
      start_run (&racers[i].run, name);
      racers[i].run.owner.task_id = &racers[i].run.id; /* the struct moved */
      racers[i].run.owner.worker_id = racers[i].run.worker;
      racers[i].pool = pool;
      racers[i].db = mt_test_db ();
   }
   for (int i = 0; i < N; i++) {
      pthread_create (&threads[i], NULL, race, &racers[i]);
   }
   for (int i = 0; i < N; i++) {
      pthread_join (threads[i], NULL);
   }
   mongoc_client_pool_destroy (pool);
   mongoc_uri_destroy (uri);
   for (int i = 0; i < N; i++) {
      winners += racers[i].won;
      if (racers[i].won) {
         winner = i;
      }
   }
   ASSERT_CMPINT (winners, ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{'_id': 'contested', 'worker_pid': '%s'}", racers[winner].run.worker), ==, 1);
   /* Every other one was told the account is busy, and by whom: no other
    * error. */
   bson_oid_to_string (&racers[winner].run.oid, hex);
   busy = bson_strdup_printf ("account 'contested' is locked by task %s on worker '%s'", hex, racers[winner].run.worker);
   for (int i = 0; i < N; i++) {
      if (i != winner) {
         ASSERT_ERROR (racers[i].error, MT_ERROR_LOCK, MT_LOCK_ERROR_BUSY, busy);
      }
   }
   bson_free (busy);
}

static void
test_invalid_names (void)
{
   run_t a;
   bson_error_t error;

   start_run (&a, "W-A");
   ASSERT (!mt_locks_acquire (mt_test_client (), mt_test_db (), &a.owner, ACCOUNTS ("ok", ""), NULL, &error));
   ASSERT_CMPINT (error.code, ==, MT_LOCK_ERROR_INVALID);
   ASSERT_CONTAINS (error.message, "account 2 of 2 is not a lockable name");
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
}

/* ---- through the worker --------------------------------------------- */

static void
test_plugin_scoped_nesting_refused (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'scoped': ['b', 'a'], 'nest': ['c']}", NULL);
   bson_t *doc;

   mt_test_worker_once (W ("--queues", "q", "--pid", "W-PROBE"), 60000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPSTR (mt_test_str (doc, "result.held_in_scope.0"), "a");
   ASSERT_CMPSTR (mt_test_str (doc, "result.held_in_scope.1"), "b");
   ASSERT_CMPINT (mt_test_int (doc, "result.nest_error.domain"), ==, MT_ERROR_LOCK);
   ASSERT_CMPINT (mt_test_int (doc, "result.nest_error.code"), ==, MT_LOCK_ERROR_NESTED);
   ASSERT_CONTAINS (mt_test_str (doc, "result.nest_error.message"), "already inside a scoped lock");
   ASSERT (!mt_test_has (doc, "result.held_after_scope.0")); /* the scope released a and b */
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
}

static void
test_plugin_forgotten_released (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'lock': ['a', 'b'], 'unlock': ['a']}", NULL);
   bson_t *doc;
   char *out;

   out = mt_test_output (mt_test_worker_once (W ("--queues", "q", "--pid", "W-PROBE"), 60000));
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPSTR (mt_test_str (doc, "result.held.1"), "b");
   ASSERT_CMPSTR (mt_test_str (doc, "result.held_after_unlock.0"), "b");
   ASSERT (!mt_test_has (doc, "result.held_after_unlock.1"));
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
   ASSERT_CONTAINS (out, "still held account lock(s) 'b' when process() returned; released them");
   bson_free (out);
}

static void
test_plugin_busy (void)
{
   run_t holder;
   bson_error_t error;
   bson_oid_t id;
   bson_t *doc;

   start_run (&holder, "W-OTHER");
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &holder.owner, ACCOUNTS ("x"), NULL, &error), error);
   id = mt_test_enqueue ("q", "probe", "{'lock': ['w', 'x']}", NULL);
   mt_test_worker_once (W ("--queues", "q", "--pid", "W-PROBE"), 60000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "result.lock_error.code"), ==, MT_LOCK_ERROR_BUSY);
   ASSERT_CONTAINS (mt_test_str (doc, "result.lock_error.message"), "account 'x' is locked by task");
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{'_id': 'w'}"), ==, 0);
   ASSERT_CMPINT (locks_of (&holder), ==, 1);
}

static void
test_declarative_busy_delays (void)
{
   /* A busy account: the task is not run now, stays CREATED, counts no
    * attempt, gets a short `delayed`; the worker goes on with other tasks;
    * the task runs once the account is free. */
   run_t holder;
   bson_error_t error;
   bson_t *doc;
   bson_oid_t id, other;
   pid_t pid;

   start_run (&holder, "W-OTHER");
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &holder.owner, ACCOUNTS ("y"), NULL, &error), error);
   id = mt_test_task_insert ("{'queue': 'q', 'type': 'probe', 'status': 'CREATED', 'accounts': ['x', 'y'], 'params': {}}");

   pid = mt_test_worker (W ("--queues", "q", "--poll-interval", "0.05", "--log-level", "debug"));
   WAIT_UNTIL (mt_test_count ("{'status': 'CREATED', 'delayed': {'$ne': null}}") == 1, 20000);
   other = mt_test_enqueue ("q", "echo", NULL, NULL);
   WAIT_UNTIL (mt_test_status_is (&other, "FINISHED"), 20000);

   /* Read it between two tries: it is claimed again about every second,
    * and given back at once while y is busy. */
   for (int tries = 0;; tries++) {
      doc = mt_test_task (&id);
      if (!strcmp (mt_test_str (doc, "status"), "CREATED")) {
         break;
      }
      bson_destroy (doc);
      if (tries == 2000) {
         mt_test_fail (__FILE__, __LINE__, "timed out after 2000 looks (20 s) waiting for the task to be CREATED between two tries");
      }
      mt_test_nap_ms (10);
   }
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 0);
   ASSERT (mt_test_is_null (doc, "worker_pid"));
   ASSERT (!mt_test_has (doc, "error"));
   ASSERT (!mt_test_has (doc, "started"));
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{'_id': 'x'}"), ==, 0); /* all or nothing */

   mt_test_task_set (&holder.oid, "{'status': 'FINISHED'}"); /* its lock on y is now stale */
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 20000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0); /* its own, released when it ended */
   mt_test_process_stop (pid, 20000);
}

static void
test_declarative_held_while_running (void)
{
   /* The task waits at a gate while its locks are looked at. */
   char *json = bson_strdup_printf ("{'queue': 'q', 'type': 'probe', 'status': 'CREATED', 'accounts': ['p', 'q'], 'params': {'gate': '%s'}}",
                                    mt_test_gate ("running"));
   bson_oid_t id = mt_test_task_insert (json);
   pid_t pid;
   char *out;

   bson_free (json);
   pid = mt_test_worker (W ("--queues", "q", "--once", "--pid", "W-DECL"));
   WAIT_UNTIL (mt_test_count_in ("locks", "{'worker_pid': 'W-DECL', 'attempt': 1}") == 2, 20000);
   ASSERT (mt_test_status_is (&id, "WORK_IN_PROGRESS"));
   mt_test_gate_open ("running");
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 20000)), ==, 0);
   ASSERT (mt_test_status_is (&id, "FINISHED"));
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
   out = mt_test_output (pid);
   ASSERT (!strstr (out, "still held")); /* its own declared locks: no warning */
   bson_free (out);
}

static void
test_declarative_malformed (void)
{
   const char *docs[] = {"{'queue': 'q', 'type': 'echo', 'status': 'CREATED', 'accounts': 'x'}",
                         "{'queue': 'q', 'type': 'echo', 'status': 'CREATED', 'accounts': ['x', 7]}",
                         "{'queue': 'q', 'type': 'echo', 'status': 'CREATED', 'accounts': ['']}"};
   const char *expected[] = {"field 'accounts' must be an array of account names, found string",
                             "field 'accounts' must hold non-empty strings, found int32 at index 1",
                             "field 'accounts' must hold non-empty strings, found an empty string at index 0"};
   bson_oid_t ids[3];

   for (int i = 0; i < 3; i++) {
      ids[i] = mt_test_task_insert (docs[i]);
   }
   mt_test_worker_once (W ("--queues", "q", "--pid", "W-PROBE"), 60000);
   for (int i = 0; i < 3; i++) {
      bson_t *doc = mt_test_task (&ids[i]);

      ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
      ASSERT_CONTAINS (mt_test_str (doc, "error.message"), expected[i]);
      bson_destroy (doc);
   }
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
}

/* ---- the money test ---------------------------------------------------- */

enum { N_ACCOUNTS = 20, N_TRANSFERS = 600, START_BALANCE = 1000 };

/* Runs 600 random transfers between 20 accounts of 1000 with 3 workers of 4
 * threads; returns how many accounts end with a balance other than the one
 * the transfers add up to, and the total in *total. */
static int
money_run (bool use_locks, int64_t *total)
{
   mongoc_collection_t *accounts = mt_test_collection ("accounts");
   mongoc_collection_t *tasks = mt_test_tasks ();
   mongoc_bulk_operation_t *bulk;
   int64_t expected[N_ACCOUNTS];
   bson_error_t error;
   pid_t pids[3];
   int wrong = 0;
   unsigned seed = 20261123;
   bool ok;

   bulk = mongoc_collection_create_bulk_operation_with_opts (accounts, NULL);
   for (int i = 0; i < N_ACCOUNTS; i++) {
      char name[16];
      bson_t *doc;

      bson_snprintf (name, sizeof name, "acct-%02d", i);
      doc = BCON_NEW ("_id", name, "balance", BCON_INT64 (START_BALANCE));
      mongoc_bulk_operation_insert (bulk, doc);
      bson_destroy (doc);
      expected[i] = START_BALANCE;
   }
   ok = mongoc_bulk_operation_execute (bulk, NULL, &error);
   mongoc_bulk_operation_destroy (bulk);
   ASSERT_OR_PRINT (ok, error);

   bulk = mongoc_collection_create_bulk_operation_with_opts (tasks, NULL);
   for (int i = 0; i < N_TRANSFERS; i++) {
      int from = (int) (rand_r (&seed) % N_ACCOUNTS), to = (int) (rand_r (&seed) % (N_ACCOUNTS - 1));
      int amount = 1 + (int) (rand_r (&seed) % 100);
      char f[16], t[16];
      bson_t *doc;

      to = to >= from ? to + 1 : to;
      bson_snprintf (f, sizeof f, "acct-%02d", from);
      bson_snprintf (t, sizeof t, "acct-%02d", to);
      doc = BCON_NEW ("queue", "bank", "type", "transfer", "status", "CREATED", "priority", BCON_INT32 (0),
                      "attempts", BCON_INT32 (0), "created", BCON_DATE_TIME (i),
                      "params", "{", "from", f, "to", t, "amount", BCON_INT32 (amount), "pause_ms", BCON_INT32 (5),
                      "use_locks", BCON_BOOL (use_locks), "}");
      mongoc_bulk_operation_insert (bulk, doc);
      bson_destroy (doc);
      expected[from] -= amount;
      expected[to] += amount;
   }
   ok = mongoc_bulk_operation_execute (bulk, NULL, &error);
   mongoc_bulk_operation_destroy (bulk);
   mongoc_collection_destroy (tasks);
   ASSERT_OR_PRINT (ok, error);

   for (int i = 0; i < 3; i++) {
      pids[i] = mt_test_worker (W ("--queues", "bank", "--concurrency", "4", "--poll-interval", "0.02"));
   }
   WAIT_UNTIL (mt_test_count ("{'status': 'FINISHED'}") == N_TRANSFERS || mt_test_count ("{'status': 'FAILED'}") > 0, 240000);
   for (int i = 0; i < 3; i++) {
      kill (pids[i], SIGTERM);
   }
   for (int i = 0; i < 3; i++) {
      ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pids[i], 30000)), ==, 0);
   }
   ASSERT_CMPINT (mt_test_count ("{'status': 'FINISHED'}"), ==, N_TRANSFERS);

   *total = 0;
   for (int i = 0; i < N_ACCOUNTS; i++) {
      bson_t *doc = mt_test_find_one ("accounts", "{'_id': 'acct-%02d'}", i);
      int64_t balance = mt_test_int (doc, "balance");

      bson_destroy (doc);
      *total += balance;
      if (balance != expected[i]) {
         wrong++;
      }
   }
   mongoc_collection_destroy (accounts);
   return wrong;
}

static void
test_money (void)
{
   int64_t total;
   int wrong = money_run (true, &total);

   ASSERT_CMPINT (wrong, ==, 0);
   ASSERT_CMPINT (total, ==, N_ACCOUNTS * START_BALANCE);
   ASSERT_CMPINT (mt_test_count_in ("locks", "{}"), ==, 0);
}

static void
test_money_without_locks_loses (void)
{
   /* The same run with the plugin's locks off: concurrent read-modify-write
    * loses updates, so the money test above can fail. */
   int64_t total;
   int wrong = money_run (false, &total);

   printf ("# without locks: %d of %d accounts wrong, total %" PRId64 " instead of %d\n", wrong, N_ACCOUNTS, total,
           N_ACCOUNTS * START_BALANCE);
   ASSERT_CMPINT (wrong, >, 0);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/lock/acquire/free", test_free);
   mt_test_add ("/lock/acquire/partly_own", test_partly_own);
   mt_test_add ("/lock/acquire/held_by_other", test_held_by_other);
   mt_test_add ("/lock/release/and_reacquire", test_release_and_reacquire);
   mt_test_add ("/lock/stale/takeover", test_stale_takeover);
   mt_test_add ("/lock/stale/takeover_once", test_stale_takeover_once);
   mt_test_add ("/lock/acquire/invalid_names", test_invalid_names);
   mt_test_add ("/lock/plugin/scoped_nesting_refused", test_plugin_scoped_nesting_refused);
   mt_test_add ("/lock/plugin/forgotten_released", test_plugin_forgotten_released);
   mt_test_add ("/lock/plugin/busy", test_plugin_busy);
   mt_test_add ("/lock/declarative/busy_delays", test_declarative_busy_delays);
   mt_test_add ("/lock/declarative/held_while_running", test_declarative_held_while_running);
   mt_test_add ("/lock/declarative/malformed", test_declarative_malformed);
   mt_test_add ("/lock/money/20x1000_600_transfers", test_money);
   mt_test_add ("/lock/money/without_locks_loses", test_money_without_locks_loses);
   return mt_test_main (argc, argv);
}
