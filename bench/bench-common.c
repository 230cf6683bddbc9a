/* The benchmark's shared helpers: see bench-common.h. */
#include "bench-common.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

mongoc_client_pool_t *
bench_pool_new (const char *uri_string, uint32_t max_size, bson_error_t *error)
{
   mongoc_uri_t *uri = mongoc_uri_new_with_error (uri_string, error);
   mongoc_client_pool_t *pool;

   if (!uri) {
      return NULL;
   }
   pool = mongoc_client_pool_new_with_error (uri, error);
   mongoc_uri_destroy (uri);
   if (pool) {
      mongoc_client_pool_set_error_api (pool, MONGOC_ERROR_API_VERSION_2);
      mongoc_client_pool_max_size (pool, max_size);
   }
   return pool;
}

bool
bench_tasks_insert (mongoc_client_t *client, const char *db, int64_t n, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
   mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts (tasks, NULL);
   struct timeval tv;
   int64_t now;
   bson_t reply;
   bool ok;

   bson_gettimeofday (&tv);
   now = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
   for (int64_t i = 0; i < n; i++) {
      bson_t doc = BSON_INITIALIZER, params;
      bson_oid_t id;

      /* The fields and their order of mt_task_build () for a task without
       * options (core/src/store.c). */
      bson_oid_init (&id, NULL);
      BSON_APPEND_OID (&doc, "_id", &id);
      BSON_APPEND_UTF8 (&doc, "queue", BENCH_QUEUE);
      BSON_APPEND_UTF8 (&doc, "type", BENCH_TYPE);
      BSON_APPEND_UTF8 (&doc, "status", "CREATED");
      BSON_APPEND_DOCUMENT_BEGIN (&doc, "params", &params);
      BSON_APPEND_INT64 (&params, "n", i);
      bson_append_document_end (&doc, &params);
      BSON_APPEND_DATE_TIME (&doc, "created", now);
      BSON_APPEND_NULL (&doc, "delayed");
      BSON_APPEND_INT32 (&doc, "priority", 0);
      BSON_APPEND_NULL (&doc, "worker_pid");
      BSON_APPEND_INT32 (&doc, "attempts", 0);
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

double
bench_now (void)
{
   struct timespec ts;

   clock_gettime (CLOCK_MONOTONIC, &ts);
   return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int64_t
arg_at_least (const char *what, const char *text, long long least)
{
   char *end;
   long long value = strtoll (text, &end, 10);

   if (!text[0] || *end || value < least) {
      fprintf (stderr, "%s must be an integer of %lld or more, got '%s'\n", what, least, text);
      exit (2);
   }
   return (int64_t) value;
}

int64_t
bench_arg_int (const char *what, const char *text)
{
   return arg_at_least (what, text, 1);
}

int64_t
bench_arg_count (const char *what, const char *text)
{
   return arg_at_least (what, text, 0);
}
