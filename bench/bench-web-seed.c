/* bench-web-seed: the data of a busy deployment for bench/web.py.
 *
 *    bench-web-seed URI DB TASKS GROUPS WORKERS
 *
 * Writes into DB: GROUPS staged groups made through the library's group API
 * (mt_group_create, mt_group_enqueue, mt_group_initiate: 3 stages of 2 sleep
 * tasks each, the first stage running), the rest of TASKS tasks in one bulk
 * write, shaped as mt_task_build () writes them, in a mix of statuses,
 * 10 queues and 4 types, ended ones finished over the last hour; and
 * WORKERS registry documents shaped as lease.c writes them, three in four
 * with a fresh heartbeat, the others silent for ten minutes (lost). Prints
 * one JSON object: what it wrote. */
#include "bench-common.h"

#include <mtask/mtask.h>

#include <stdio.h>
#include <string.h>

#define STAGES 3
#define TASKS_PER_STAGE 2

static int64_t
now_ms (void)
{
   struct timeval tv;

   bson_gettimeofday (&tv);
   return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static bool
seed_groups (mongoc_client_t *client, const char *db, int64_t n, bson_error_t *error)
{
   for (int64_t g = 0; g < n; g++) {
      char description[64];
      bson_oid_t group;

      snprintf (description, sizeof description, "bench group %" PRId64, g);
      if (!mt_group_create (client, db, description, NULL, &group, error)) {
         return false;
      }
      for (int32_t stage = 1; stage <= STAGES; stage++) {
         for (int t = 0; t < TASKS_PER_STAGE; t++) {
            bson_t *params = BCON_NEW ("seconds", BCON_DOUBLE (1.0));
            char queue[16];
            bool ok;

            snprintf (queue, sizeof queue, "q%" PRId64, g % 10);
            ok = mt_group_enqueue (client, db, &group, stage, queue, "sleep", params, NULL, NULL, error);
            bson_destroy (params);
            if (!ok) {
               return false;
            }
         }
      }
      if (!mt_group_initiate (client, db, &group, error)) {
         return false;
      }
   }
   return true;
}

static bool
seed_tasks (mongoc_client_t *client, const char *db, int64_t n, bson_error_t *error)
{
   static const char *types[] = {"echo", "sleep", "report", "fail"};
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
   mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts (tasks, NULL);
   int64_t now = now_ms ();
   bson_t reply;
   bool ok;

   for (int64_t i = 0; i < n; i++) {
      /* Of every 100: 70 FINISHED, 6 FAILED, 2 CANCELLED, 18 CREATED (3 of
       * them delayed), 4 WORK_IN_PROGRESS. */
      int64_t k = i % 100;
      const char *status = k < 70 ? "FINISHED" : k < 76 ? "FAILED" : k < 78 ? "CANCELLED" : k < 96 ? "CREATED" : "WORK_IN_PROGRESS";
      bool ended = k < 78;
      int64_t created = now - 3600 * 1000 + i * 3600 * 1000 / n;
      char queue[16], worker[32];
      bson_t doc = BSON_INITIALIZER, child;
      bson_oid_t id;

      snprintf (queue, sizeof queue, "q%" PRId64, i % 10);
      snprintf (worker, sizeof worker, "bench-web-%" PRId64, i % 20);
      bson_oid_init (&id, NULL);
      BSON_APPEND_OID (&doc, "_id", &id);
      BSON_APPEND_UTF8 (&doc, "queue", queue);
      BSON_APPEND_UTF8 (&doc, "type", types[i % 4]);
      BSON_APPEND_UTF8 (&doc, "status", status);
      BSON_APPEND_DOCUMENT_BEGIN (&doc, "params", &child);
      BSON_APPEND_INT64 (&child, "n", i);
      BSON_APPEND_UTF8 (&child, "customer", k % 7 ? "acme" : "globex");
      bson_append_document_end (&doc, &child);
      BSON_APPEND_DATE_TIME (&doc, "created", created);
      if (k >= 93 && k < 96) {
         BSON_APPEND_DATE_TIME (&doc, "delayed", now + 3600 * 1000);
      } else {
         BSON_APPEND_NULL (&doc, "delayed");
      }
      BSON_APPEND_INT32 (&doc, "priority", (int32_t) (i % 3));
      if (!strcmp (status, "WORK_IN_PROGRESS")) {
         BSON_APPEND_UTF8 (&doc, "worker_pid", worker);
      } else {
         BSON_APPEND_NULL (&doc, "worker_pid");
      }
      BSON_APPEND_INT32 (&doc, "attempts", ended || k >= 96 ? 1 : 0);
      if (ended || k >= 96) {
         BSON_APPEND_DATE_TIME (&doc, "started", created + 40);
         BSON_APPEND_DATE_TIME (&doc, "heartbeat", created + 40);
      }
      if (ended) {
         BSON_APPEND_DATE_TIME (&doc, "finished", created + 40 + (i % 50) * 20);
      }
      if (!strcmp (status, "FINISHED")) {
         BSON_APPEND_DOCUMENT_BEGIN (&doc, "result", &child);
         BSON_APPEND_INT64 (&child, "n", i);
         bson_append_document_end (&doc, &child);
      } else if (!strcmp (status, "FAILED")) {
         BSON_APPEND_DOCUMENT_BEGIN (&doc, "error", &child);
         BSON_APPEND_INT32 (&child, "domain", 1000);
         BSON_APPEND_INT32 (&child, "code", 1);
         BSON_APPEND_UTF8 (&child, "message", "report: the upstream answered 503; retry later");
         bson_append_document_end (&doc, &child);
      }
      mongoc_bulk_operation_insert (bulk, &doc);
      bson_destroy (&doc);
   }
   ok = n == 0 || mongoc_bulk_operation_execute (bulk, &reply, error) != 0;
   if (n > 0) {
      bson_destroy (&reply);
   }
   mongoc_bulk_operation_destroy (bulk);
   mongoc_collection_destroy (tasks);
   return ok;
}

static bool
seed_workers (mongoc_client_t *client, const char *db, int64_t n, bson_error_t *error)
{
   mongoc_collection_t *workers = mongoc_client_get_collection (client, db, MT_WORKERS_COLLECTION);
   mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts (workers, NULL);
   int64_t now = now_ms ();
   bson_t reply;
   bool ok;

   for (int64_t i = 0; i < n; i++) {
      char id[32], host[32];
      bool lost = i % 4 == 3;
      bson_t doc = BSON_INITIALIZER;

      snprintf (id, sizeof id, "bench-web-%" PRId64, i);
      snprintf (host, sizeof host, "app%" PRId64 ".example", i % 5);
      BSON_APPEND_UTF8 (&doc, "_id", id);
      BSON_APPEND_UTF8 (&doc, "host", host);
      BSON_APPEND_INT32 (&doc, "pid", (int32_t) (1000 + i));
      BSON_APPEND_UTF8 (&doc, "status", "running");
      BSON_APPEND_DOUBLE (&doc, "lease_seconds", 30.0);
      BSON_APPEND_DATE_TIME (&doc, "heartbeat", lost ? now - 600 * 1000 : now);
      BSON_APPEND_DATE_TIME (&doc, "started", now - 3600 * 1000);
      mongoc_bulk_operation_insert (bulk, &doc);
      bson_destroy (&doc);
   }
   ok = n == 0 || mongoc_bulk_operation_execute (bulk, &reply, error) != 0;
   if (n > 0) {
      bson_destroy (&reply);
   }
   mongoc_bulk_operation_destroy (bulk);
   mongoc_collection_destroy (workers);
   return ok;
}

int
main (int argc, char **argv)
{
   mongoc_client_pool_t *pool;
   mongoc_client_t *client;
   bson_error_t error;
   int64_t tasks, groups, workers, group_tasks;
   bool ok;

   if (argc != 6) {
      fprintf (stderr, "usage: bench-web-seed URI DB TASKS GROUPS WORKERS\n");
      return 2;
   }
   tasks = bench_arg_int ("TASKS", argv[3]);
   groups = bench_arg_count ("GROUPS", argv[4]);
   workers = bench_arg_count ("WORKERS", argv[5]);
   group_tasks = groups * STAGES * TASKS_PER_STAGE;
   if (group_tasks > tasks) {
      fprintf (stderr, "bench-web-seed: %" PRId64 " groups make %" PRId64 " tasks, more than TASKS (%" PRId64 ")\n", groups,
               group_tasks, tasks);
      return 2;
   }
   mongoc_init ();
   pool = bench_pool_new (argv[1], 1, &error);
   if (!pool) {
      fprintf (stderr, "bench-web-seed: %s\n", error.message);
      mongoc_cleanup ();
      return 1;
   }
   client = mongoc_client_pool_pop (pool);
   ok = seed_groups (client, argv[2], groups, &error) && seed_tasks (client, argv[2], tasks - group_tasks, &error) &&
        seed_workers (client, argv[2], workers, &error);
   if (ok) {
      printf ("{\"tasks\": %" PRId64 ", \"group_tasks\": %" PRId64 ", \"groups\": %" PRId64 ", \"workers\": %" PRId64 "}\n", tasks,
              group_tasks, groups, workers);
   } else {
      fprintf (stderr, "bench-web-seed: seeding %s failed: %s\n", argv[2], error.message);
   }
   mongoc_client_pool_push (pool, client);
   mongoc_client_pool_destroy (pool);
   mongoc_cleanup ();
   return ok ? 0 : 1;
}
