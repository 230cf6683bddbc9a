/* claim-limit: the server's own limit on claims, with nothing of the
 * worker around them.
 *
 *    claim-limit [--outcome] [--batch K] URI DB TASKS [THREADS]
 *
 * Creates the worker's indexes on DB.tasks, inserts TASKS CREATED tasks in
 * one bulk write, then claims them with THREADS (default 1) threads, each
 * with its own connection, each a bare loop of the worker's own claim
 * (mt_store_claim in core/src/store.c, called as it is) until nothing is
 * left to claim.
 *
 * --outcome: each claim is followed by the outcome write the worker sends
 * for an echo task, through the worker's fenced write
 * (mt_store_update_claimed: fenced on _id, status, worker_pid and
 * attempts; sets FINISHED, result, finished): the worker's two round trips
 * per task with no worker around them.
 *
 * --batch K: the worker's batch claim (mt_store_claim_batch, which the
 * worker uses for up to 8 when it finds a backlog) for up to K tasks: three
 * round trips for up to K tasks.
 *
 * Prints one JSON object: {"tasks", "threads", "outcome", "batch",
 * "claims", "seconds", "per_second", "claim_ms", "outcome_ms", "ping_ms"}:
 * the mean time of one claim (of a batch with --batch), of one outcome
 * write, and of a ping command (the round trip with no work in it). */
#include "bench-common.h"

#include "mtask-private.h"

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
   const bson_t *queues, *types; /* [BENCH_QUEUE], [BENCH_TYPE] */
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

/* The outcome of a claimed echo task, through the worker's fenced write. */
static bool
outcome_write (claimer_t *c, mongoc_collection_t *tasks, const bson_t *task, bson_error_t *error)
{
   bson_t update = BSON_INITIALIZER, set, date;
   double t0 = bench_now ();
   mt_task_doc_t parsed;
   bool ok;

   if (!mt_task_doc_parse (task, &parsed, error)) {
      return false;
   }
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_NULL (&set, "worker_pid");
   BSON_APPEND_DOCUMENT (&set, "result", &parsed.params);
   BSON_APPEND_UTF8 (&set, "status", MT_STATUS_FINISHED);
   bson_append_document_end (&update, &set);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
   BSON_APPEND_BOOL (&date, "finished", true);
   bson_append_document_end (&update, &date);
   ok = mt_store_update_claimed (tasks, &parsed, c->worker_id, &update, error);
   c->outcome_s += bench_now () - t0;
   bson_destroy (&update);
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
   double t0 = bench_now ();
   bson_t doc;
   bool ok = mt_store_claim (tasks, c->worker_id, c->queues, c->types, now_ms (), &doc, more, error);

   c->claim_s += bench_now () - t0;
   c->rounds++;
   if (ok && *more) {
      ok = claimed_task (c, tasks, &doc, error);
   }
   bson_destroy (&doc);
   return ok;
}

/* Up to c->batch claims in three round trips, as the worker's batch claim
 * (--batch). */
static bool
claim_batch (claimer_t *c, mongoc_collection_t *tasks, bool *more, bson_error_t *error)
{
   bson_t *docs = bson_malloc ((size_t) c->batch * sizeof *docs);
   double t0 = bench_now ();
   char token[96];
   size_t n = 0;
   bool ok;

   bson_snprintf (token, sizeof token, "%s-%" PRId64, c->worker_id, ++c->tokens);
   ok = mt_store_claim_batch (tasks, c->worker_id, token, c->queues, c->types, now_ms (), (size_t) c->batch, docs, &n, error);
   c->claim_s += bench_now () - t0;
   c->rounds++;
   *more = n > 0;
   for (size_t k = 0; k < n; k++) {
      if (ok) {
         ok = claimed_task (c, tasks, &docs[k], error);
      }
      bson_destroy (&docs[k]);
   }
   bson_free (docs);
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
   bson_t *queues, *types;
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

   queues = BCON_NEW ("0", BENCH_QUEUE);
   types = BCON_NEW ("0", BENCH_TYPE);
   ids = bson_malloc0 ((size_t) threads * sizeof *ids);
   claimers = bson_malloc0 ((size_t) threads * sizeof *claimers);
   pthread_barrier_init (&start, NULL, (unsigned) threads + 1);
   for (int64_t k = 0; k < threads; k++) {
      claimers[k].pool = pool;
      claimers[k].db = db;
      claimers[k].start = &start;
      claimers[k].outcome = outcome;
      claimers[k].batch = batch;
      claimers[k].queues = queues;
      claimers[k].types = types;
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
   bson_destroy (queues);
   bson_destroy (types);
   mongoc_client_pool_destroy (pool);
   mongoc_cleanup ();
   return status;
}
