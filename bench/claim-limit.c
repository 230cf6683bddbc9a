/* claim-limit: the server's own limit on claims, with nothing of mtask
 * around them.
 *
 *    claim-limit [--outcome] [--batch K] URI DB TASKS [THREADS]
 *
 * Creates the worker's indexes on DB.tasks, inserts TASKS CREATED tasks in
 * one bulk write, then claims them with THREADS (default 1) threads, each
 * with its own connection, each a bare loop of the findAndModify that
 * mtask-worker sends (mt_store_claim in core/src/store.c: the same filter,
 * sort and update) until nothing is left to claim.
 *
 * --outcome: each claim is followed by the outcome write the worker sends
 * for an echo task (mt_store_update_claimed in core/src/store.c: fenced on
 * _id, status, worker_pid and attempts; sets FINISHED, result, finished):
 * the worker's two round trips per task with no worker around them.
 *
 * --batch K: what claiming up to K tasks per claim would reach, which
 * mtask does not do (yet): a find with the claim's filter and sort and a
 * limit of K, an updateMany of the claim's update on those _ids that are
 * still claimable, tagged with a token, and a find by _id that keeps those
 * carrying this claim's token. Three round trips for up to K tasks.
 *
 * Prints one JSON object: {"tasks", "threads", "outcome", "batch",
 * "claims", "seconds", "per_second", "claim_ms", "outcome_ms", "ping_ms"}:
 * the mean time of one claim (of a batch with --batch), of one outcome
 * write, and of a ping command (the round trip with no work in it). */
#include "bench-common.h"

#include <mtask/mtask.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
   mongoc_client_pool_t *pool;
   const char *db;
   pthread_barrier_t *start;
   bool outcome;
   int64_t batch;
   char worker_id[64];
   int64_t claims, rounds, tokens;
   double claim_s, outcome_s; /* time spent waiting for each kind of reply */
   bool failed;
   bson_error_t error;
} claimer_t;

static int64_t
now_ms (void)
{
   struct timeval tv;

   bson_gettimeofday (&tv);
   return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The mean round trip of a ping, over `n` of them. */
static double
ping_ms (mongoc_client_t *client, int n, bson_error_t *error)
{
   bson_t *ping = BCON_NEW ("ping", BCON_INT32 (1));
   double t0 = bench_now ();
   bool ok = true;

   for (int i = 0; i < n && ok; i++) {
      ok = mongoc_client_command_simple (client, "admin", ping, NULL, NULL, error);
   }
   bson_destroy (ping);
   return ok ? (bench_now () - t0) * 1000.0 / n : -1.0;
}

/* The claim's filter, sort and update, as mt_store_claim builds them for a
 * worker serving queue BENCH_QUEUE with the one plugin BENCH_TYPE. With a
 * `token`, the update also sets claim_token (for --batch). */
static void
claim_build (const char *worker_id, const char *token, bson_t *filter, bson_t *sort, bson_t *update)
{
   bson_t child, array, or, clause, cmp;

   bson_init (filter);
   BSON_APPEND_UTF8 (filter, "status", "CREATED");
   BSON_APPEND_DOCUMENT_BEGIN (filter, "queue", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, "$in", &array);
   BSON_APPEND_UTF8 (&array, "0", BENCH_QUEUE);
   bson_append_array_end (&child, &array);
   bson_append_document_end (filter, &child);
   BSON_APPEND_DOCUMENT_BEGIN (filter, "type", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, "$in", &array);
   BSON_APPEND_UTF8 (&array, "0", BENCH_TYPE);
   bson_append_array_end (&child, &array);
   bson_append_document_end (filter, &child);
   BSON_APPEND_ARRAY_BEGIN (filter, "$or", &or);
   BSON_APPEND_DOCUMENT_BEGIN (&or, "0", &clause);
   BSON_APPEND_NULL (&clause, "delayed");
   bson_append_document_end (&or, &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&or, "1", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "delayed", &cmp);
   BSON_APPEND_DATE_TIME (&cmp, "$lte", now_ms ());
   bson_append_document_end (&clause, &cmp);
   bson_append_document_end (&or, &clause);
   bson_append_array_end (filter, &or);

   bson_init (sort);
   BSON_APPEND_INT32 (sort, "priority", -1);
   BSON_APPEND_INT32 (sort, "created", 1);

   bson_init (update);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$set", &child);
   BSON_APPEND_UTF8 (&child, "status", "WORK_IN_PROGRESS");
   BSON_APPEND_UTF8 (&child, "worker_pid", worker_id);
   if (token) {
      BSON_APPEND_UTF8 (&child, "claim_token", token);
   }
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$currentDate", &child);
   BSON_APPEND_BOOL (&child, "started", true);
   BSON_APPEND_BOOL (&child, "heartbeat", true);
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$inc", &child);
   BSON_APPEND_INT32 (&child, "attempts", 1);
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$unset", &child);
   BSON_APPEND_UTF8 (&child, "slot", "");
   bson_append_document_end (update, &child);
}

/* The outcome of a claimed echo task, fenced on the claim. */
static bool
outcome_write (claimer_t *c, mongoc_collection_t *tasks, const bson_t *task, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, date, reply;
   double t0 = bench_now ();
   bson_iter_t iter;
   bool ok;

   if (!bson_iter_init_find (&iter, task, "_id")) {
      bson_set_error (error, 0, 0, "a claimed task has no _id");
      return false;
   }
   BSON_APPEND_VALUE (&filter, "_id", bson_iter_value (&iter));
   BSON_APPEND_UTF8 (&filter, "status", "WORK_IN_PROGRESS");
   BSON_APPEND_UTF8 (&filter, "worker_pid", c->worker_id);
   BSON_APPEND_INT32 (&filter, "attempts", 1);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_NULL (&set, "worker_pid");
   if (bson_iter_init_find (&iter, task, "params") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      BSON_APPEND_VALUE (&set, "result", bson_iter_value (&iter));
   }
   BSON_APPEND_UTF8 (&set, "status", "FINISHED");
   bson_append_document_end (&update, &set);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
   BSON_APPEND_BOOL (&date, "finished", true);
   bson_append_document_end (&update, &date);
   ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, &reply, error);
   if (ok && (!bson_iter_init_find (&iter, &reply, "matchedCount") || bson_iter_as_int64 (&iter) != 1)) {
      bson_set_error (error, 0, 0, "the outcome write matched no task");
      ok = false;
   }
   c->outcome_s += bench_now () - t0;
   bson_destroy (&reply);
   bson_destroy (&update);
   bson_destroy (&filter);
   return ok;
}

/* A claimed task: the worker keeps a copy of it, and so do we; then its
 * outcome, with --outcome. */
static bool
claimed_task (claimer_t *c, mongoc_collection_t *tasks, const bson_t *doc, bson_error_t *error)
{
   bson_t copy;
   bool ok = true;

   bson_copy_to (doc, &copy);
   c->claims++;
   if (c->outcome) {
      ok = outcome_write (c, tasks, &copy, error);
   }
   bson_destroy (&copy);
   return ok;
}

/* One claim as the worker makes it. Sets *more to whether it found one. */
static bool
claim_one (claimer_t *c, mongoc_collection_t *tasks, bool *more, bson_error_t *error)
{
   mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new ();
   bson_t filter, sort, update, reply;
   bson_iter_t iter;
   double t0;
   bool ok;

   *more = false;
   claim_build (c->worker_id, NULL, &filter, &sort, &update);
   mongoc_find_and_modify_opts_set_sort (opts, &sort);
   mongoc_find_and_modify_opts_set_update (opts, &update);
   mongoc_find_and_modify_opts_set_flags (opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
   t0 = bench_now ();
   ok = mongoc_collection_find_and_modify_with_opts (tasks, &filter, opts, &reply, error);
   c->claim_s += bench_now () - t0;
   c->rounds++;
   if (ok && bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t value;

      bson_iter_document (&iter, &len, &data);
      if (bson_init_static (&value, data, len)) {
         *more = true;
         ok = claimed_task (c, tasks, &value, error);
      }
   }
   bson_destroy (&reply);
   mongoc_find_and_modify_opts_destroy (opts);
   bson_destroy (&filter);
   bson_destroy (&sort);
   bson_destroy (&update);
   return ok;
}

/* Up to c->batch claims in three round trips (--batch). */
static bool
claim_batch (claimer_t *c, mongoc_collection_t *tasks, bool *more, bson_error_t *error)
{
   bson_t filter, sort, update, ids = BSON_INITIALIZER, by_id = BSON_INITIALIZER, child, reply;
   bson_t *opts;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   char token[96], key[16];
   uint32_t n = 0;
   double t0 = bench_now (), outcome_before = c->outcome_s;
   bool ok;

   *more = false;
   bson_snprintf (token, sizeof token, "%s-%" PRId64, c->worker_id, ++c->tokens);
   claim_build (c->worker_id, token, &filter, &sort, &update);

   /* 1. Which tasks, in the claim's order. */
   opts = BCON_NEW ("limit", BCON_INT64 (c->batch), "projection", "{", "_id", BCON_INT32 (1), "}");
   BSON_APPEND_DOCUMENT (opts, "sort", &sort);
   cursor = mongoc_collection_find_with_opts (tasks, &filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;
      const char *k;

      if (bson_iter_init_find (&iter, doc, "_id")) {
         bson_uint32_to_string (n++, &k, key, sizeof key);
         bson_append_value (&ids, k, -1, bson_iter_value (&iter));
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (opts);

   /* 2. Those still claimable are ours, tagged with this claim's token. */
   if (ok && n > 0) {
      BSON_APPEND_DOCUMENT_BEGIN (&filter, "_id", &child);
      BSON_APPEND_ARRAY (&child, "$in", &ids);
      bson_append_document_end (&filter, &child);
      ok = mongoc_collection_update_many (tasks, &filter, &update, NULL, &reply, error);
      bson_destroy (&reply);
   }

   /* 3. The claimed tasks: those that carry the token. */
   if (ok && n > 0) {
      BSON_APPEND_DOCUMENT_BEGIN (&by_id, "_id", &child);
      BSON_APPEND_ARRAY (&child, "$in", &ids);
      bson_append_document_end (&by_id, &child);
      cursor = mongoc_collection_find_with_opts (tasks, &by_id, NULL, NULL);
      while (ok && mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t iter;

         if (bson_iter_init_find (&iter, doc, "claim_token") && BSON_ITER_HOLDS_UTF8 (&iter) &&
             !strcmp (bson_iter_utf8 (&iter, NULL), token)) {
            ok = claimed_task (c, tasks, doc, error);
         }
      }
      ok = ok && !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
   }
   c->claim_s += bench_now () - t0 - (c->outcome_s - outcome_before);
   c->rounds++;
   *more = n > 0;
   bson_destroy (&by_id);
   bson_destroy (&ids);
   bson_destroy (&filter);
   bson_destroy (&sort);
   bson_destroy (&update);
   return ok;
}

static void *
claimer_main (void *data)
{
   claimer_t *c = data;
   mongoc_client_t *client = mongoc_client_pool_pop (c->pool);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, c->db, "tasks");
   bson_t *ping = BCON_NEW ("ping", BCON_INT32 (1));
   bool more = true;

   /* Connect before the clock starts. */
   if (!mongoc_client_command_simple (client, "admin", ping, NULL, NULL, &c->error)) {
      c->failed = true;
   }
   bson_destroy (ping);
   pthread_barrier_wait (c->start);
   while (!c->failed && more) {
      bool ok = c->batch > 1 ? claim_batch (c, tasks, &more, &c->error) : claim_one (c, tasks, &more, &c->error);

      c->failed = !ok;
   }
   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (c->pool, client);
   return NULL;
}

static void
usage (void)
{
   fprintf (stderr, "usage: claim-limit [--outcome] [--batch K] URI DB TASKS [THREADS]\n");
   exit (2);
}

int
main (int argc, char **argv)
{
   const char *uri, *db;
   int64_t n, threads = 1, batch = 1, claims = 0, rounds = 0;
   mongoc_client_pool_t *pool;
   mongoc_client_t *client;
   pthread_barrier_t start;
   pthread_t *ids;
   claimer_t *claimers;
   bson_error_t error;
   double t0, seconds, claim_s = 0.0, outcome_s = 0.0, ping = -1.0;
   bool outcome = false;
   int status = 0, i = 1;

   for (; i < argc && !strncmp (argv[i], "--", 2); i++) {
      if (!strcmp (argv[i], "--outcome")) {
         outcome = true;
      } else if (!strcmp (argv[i], "--batch") && i + 1 < argc) {
         batch = bench_arg_int ("--batch", argv[++i]);
      } else {
         usage ();
      }
   }
   if (argc - i < 3 || argc - i > 4) {
      usage ();
   }
   uri = argv[i];
   db = argv[i + 1];
   n = bench_arg_int ("TASKS", argv[i + 2]);
   if (argc - i == 4) {
      threads = bench_arg_int ("THREADS", argv[i + 3]);
   }
   if (threads > 64) {
      fprintf (stderr, "THREADS must be 64 or fewer\n");
      return 2;
   }

   mongoc_init ();
   pool = bench_pool_new (uri, (uint32_t) threads + 1, &error);
   if (!pool) {
      fprintf (stderr, "claim-limit: %s\n", error.message);
      return 1;
   }
   client = mongoc_client_pool_pop (pool);
   if (!mt_indexes_ensure (client, db, &error) || !bench_tasks_insert (client, db, n, &error) ||
       (ping = ping_ms (client, 200, &error)) < 0) {
      fprintf (stderr, "claim-limit: cannot prepare %s.tasks: %s\n", db, error.message);
      mongoc_client_pool_push (pool, client);
      mongoc_client_pool_destroy (pool);
      return 1;
   }
   mongoc_client_pool_push (pool, client);

   ids = bson_malloc0 ((size_t) threads * sizeof *ids);
   claimers = bson_malloc0 ((size_t) threads * sizeof *claimers);
   pthread_barrier_init (&start, NULL, (unsigned) threads + 1);
   for (int64_t k = 0; k < threads; k++) {
      claimers[k].pool = pool;
      claimers[k].db = db;
      claimers[k].start = &start;
      claimers[k].outcome = outcome;
      claimers[k].batch = batch;
      bson_snprintf (claimers[k].worker_id, sizeof claimers[k].worker_id, "claim-limit-%" PRId64, k);
      pthread_create (&ids[k], NULL, claimer_main, &claimers[k]);
   }
   pthread_barrier_wait (&start);
   t0 = bench_now ();
   for (int64_t k = 0; k < threads; k++) {
      pthread_join (ids[k], NULL);
   }
   seconds = bench_now () - t0;
   for (int64_t k = 0; k < threads; k++) {
      claims += claimers[k].claims;
      rounds += claimers[k].rounds;
      claim_s += claimers[k].claim_s;
      outcome_s += claimers[k].outcome_s;
      if (claimers[k].failed) {
         fprintf (stderr, "claim-limit: a claim failed: %s\n", claimers[k].error.message);
         status = 1;
      }
   }
   if (claims != n) {
      fprintf (stderr, "claim-limit: claimed %" PRId64 " of %" PRId64 " tasks\n", claims, n);
      status = 1;
   }
   printf ("{\"tasks\": %" PRId64 ", \"threads\": %" PRId64 ", \"outcome\": %s, \"batch\": %" PRId64
           ", \"claims\": %" PRId64 ", \"seconds\": %.4f, \"per_second\": %.1f, \"claim_ms\": %.3f, \"outcome_ms\": %.3f"
           ", \"ping_ms\": %.3f}\n",
           n,
           threads,
           outcome ? "true" : "false",
           batch,
           claims,
           seconds,
           seconds > 0 ? (double) claims / seconds : 0.0,
           rounds ? claim_s * 1000.0 / (double) rounds : 0.0,
           claims && outcome ? outcome_s * 1000.0 / (double) claims : 0.0,
           ping);

   pthread_barrier_destroy (&start);
   bson_free (claimers);
   bson_free (ids);
   mongoc_client_pool_destroy (pool);
   mongoc_cleanup ();
   return status;
}
