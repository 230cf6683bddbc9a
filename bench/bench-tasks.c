/* bench-tasks: the benchmark's hands on the tasks collection.
 *
 *    bench-tasks insert URI DB N         N CREATED echo tasks, one bulk write
 *    bench-tasks insert-ended URI DB N   N FINISHED echo tasks, ended over the last hour
 *    bench-tasks insert-sleep URI DB N MS
 *                                        N CREATED sleep tasks of MS milliseconds, created
 *                                        1 ms apart in _id order, one bulk write
 *    bench-tasks pace URI DB RATE SECS   mt_enqueue RATE tasks a second for SECS
 *    bench-tasks every URI DB MS N       mt_enqueue one task every MS milliseconds, N in all
 *    bench-tasks dump URI DB             one JSON line per task: its times in ms
 *    bench-tasks wait URI DB N SECS      until N tasks are FINISHED (exit 1 after SECS)
 *    bench-tasks stats URI DB            one JSON object: counts, span, latency
 *    bench-tasks drop URI DB             drops the database
 *
 * Times in `stats`: a task's `created` is the enqueuer's clock, `started`
 * and `finished` the server's ($currentDate); both run on this machine. */
#include "bench-common.h"

#include <mtask/mtask.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
usage (void)
{
   fprintf (stderr,
            "usage: bench-tasks insert URI DB N\n"
            "       bench-tasks insert-ended URI DB N\n"
            "       bench-tasks insert-sleep URI DB N MILLISECONDS\n"
            "       bench-tasks pace URI DB RATE SECONDS\n"
            "       bench-tasks every URI DB MILLISECONDS N\n"
            "       bench-tasks dump URI DB\n"
            "       bench-tasks wait URI DB N TIMEOUT_SECONDS\n"
            "       bench-tasks stats URI DB\n"
            "       bench-tasks drop URI DB\n");
   exit (2);
}

static bool
tasks_pace (mongoc_client_t *client, const char *db, int64_t rate, int64_t seconds, bson_error_t *error)
{
   int64_t n = rate * seconds;
   double behind_max = 0.0, t0, elapsed;
   struct timespec start;

   clock_gettime (CLOCK_MONOTONIC, &start);
   t0 = bench_now ();
   for (int64_t i = 0; i < n; i++) {
      /* Task i is due at start + i / rate: a steady rate however long each
       * enqueue takes, as long as it takes less than 1 / rate. */
      int64_t due_ns = (int64_t) start.tv_nsec + i * 1000000000LL / rate;
      struct timespec due = {.tv_sec = start.tv_sec + (time_t) (due_ns / 1000000000LL), .tv_nsec = (long) (due_ns % 1000000000LL)};
      bson_t params = BSON_INITIALIZER;
      double late;
      bool ok;

      while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR) {
      }
      late = bench_now () - (t0 + (double) i / (double) rate);
      behind_max = late > behind_max ? late : behind_max;
      BSON_APPEND_INT64 (&params, "n", i);
      ok = mt_enqueue (client, db, BENCH_QUEUE, BENCH_TYPE, &params, NULL, NULL, error);
      bson_destroy (&params);
      if (!ok) {
         return false;
      }
   }
   elapsed = bench_now () - t0;
   printf ("{\"enqueued\": %" PRId64 ", \"seconds\": %.3f, \"behind_max_ms\": %.1f}\n", n, elapsed, behind_max * 1000.0);
   return true;
}

static int64_t
count_status (mongoc_collection_t *tasks, const char *status, bson_error_t *error)
{
   bson_t *filter = BCON_NEW ("status", BCON_UTF8 (status));
   int64_t n = mongoc_collection_count_documents (tasks, filter, NULL, NULL, NULL, error);

   bson_destroy (filter);
   return n;
}

static bool
tasks_wait (mongoc_client_t *client, const char *db, int64_t n, int64_t timeout_s, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
   double deadline = bench_now () + (double) timeout_s;
   int64_t finished = 0;
   bool ok = false;

   for (;;) {
      finished = count_status (tasks, "FINISHED", error);
      if (finished < 0) {
         goto cleanup;
      }
      if (finished >= n) {
         ok = true;
         goto cleanup;
      }
      if (bench_now () > deadline) {
         bson_set_error (error, 0, 0, "only %" PRId64 " of %" PRId64 " tasks FINISHED after %" PRId64 " s", finished, n, timeout_s);
         goto cleanup;
      }
      usleep (100 * 1000);
   }

cleanup:
   mongoc_collection_destroy (tasks);
   return ok;
}

static int
compare_int64 (const void *a, const void *b)
{
   int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

   return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted `values`. */
static int64_t
percentile (const int64_t *values, size_t n, double p)
{
   size_t rank = (size_t) ceil (p / 100.0 * (double) n);

   return n ? values[rank ? rank - 1 : 0] : 0;
}

static int64_t
date_field (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      return bson_iter_date_time (&iter);
   }
   return -1;
}

static int64_t
now_ms (void)
{
   struct timeval tv;

   bson_gettimeofday (&tv);
   return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* N tasks in one bulk write, shaped as mt_task_build () writes them
 * (core/src/store.c): with `sleep_ms` > 0, CREATED sleep tasks of that
 * length created 1 ms apart, so that FIFO order is their _id order; else
 * echo tasks that ended (FINISHED by a worker long gone) spread over the
 * last hour, the history an idle worker's collection holds. */
static bool
tasks_insert_shaped (mongoc_client_t *client, const char *db, int64_t n, int64_t sleep_ms, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
   mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts (tasks, NULL);
   int64_t now = now_ms ();
   bson_t reply;
   bool ok;

   for (int64_t i = 0; i < n; i++) {
      bson_t doc = BSON_INITIALIZER, child;
      bson_oid_t id;
      int64_t created = sleep_ms > 0 ? now - n + i : now - 3600 * 1000 + i * 3600 * 1000 / n;

      bson_oid_init (&id, NULL);
      BSON_APPEND_OID (&doc, "_id", &id);
      BSON_APPEND_UTF8 (&doc, "queue", BENCH_QUEUE);
      BSON_APPEND_UTF8 (&doc, "type", sleep_ms > 0 ? "sleep" : BENCH_TYPE);
      BSON_APPEND_UTF8 (&doc, "status", sleep_ms > 0 ? "CREATED" : "FINISHED");
      BSON_APPEND_DOCUMENT_BEGIN (&doc, "params", &child);
      if (sleep_ms > 0) {
         BSON_APPEND_DOUBLE (&child, "seconds", (double) sleep_ms / 1000.0);
      } else {
         BSON_APPEND_INT64 (&child, "n", i);
      }
      bson_append_document_end (&doc, &child);
      BSON_APPEND_DATE_TIME (&doc, "created", created);
      BSON_APPEND_NULL (&doc, "delayed");
      BSON_APPEND_INT32 (&doc, "priority", 0);
      BSON_APPEND_NULL (&doc, "worker_pid");
      BSON_APPEND_INT32 (&doc, "attempts", sleep_ms > 0 ? 0 : 1);
      if (sleep_ms <= 0) {
         BSON_APPEND_DATE_TIME (&doc, "started", created + 5);
         BSON_APPEND_DATE_TIME (&doc, "finished", created + 25);
         BSON_APPEND_DOCUMENT_BEGIN (&doc, "result", &child);
         BSON_APPEND_INT64 (&child, "n", i);
         bson_append_document_end (&doc, &child);
      }
      mongoc_bulk_operation_insert (bulk, &doc);
      bson_destroy (&doc);
   }
   ok = mongoc_bulk_operation_execute (bulk, &reply, error) != 0;
   bson_destroy (&reply);
   mongoc_bulk_operation_destroy (bulk);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* One mt_enqueue every `interval_ms`, `n` in all, on a fixed schedule. */
static bool
tasks_every (mongoc_client_t *client, const char *db, int64_t interval_ms, int64_t n, bson_error_t *error)
{
   double behind_max = 0.0, t0 = bench_now ();
   struct timespec start;

   clock_gettime (CLOCK_MONOTONIC, &start);
   for (int64_t i = 0; i < n; i++) {
      int64_t due_ns = (int64_t) start.tv_nsec + i * interval_ms * 1000000LL;
      struct timespec due = {.tv_sec = start.tv_sec + (time_t) (due_ns / 1000000000LL), .tv_nsec = (long) (due_ns % 1000000000LL)};
      bson_t params = BSON_INITIALIZER;
      double late;
      bool ok;

      while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR) {
      }
      late = bench_now () - (t0 + (double) (i * interval_ms) / 1000.0);
      behind_max = late > behind_max ? late : behind_max;
      BSON_APPEND_INT64 (&params, "n", i);
      ok = mt_enqueue (client, db, BENCH_QUEUE, BENCH_TYPE, &params, NULL, NULL, error);
      bson_destroy (&params);
      if (!ok) {
         return false;
      }
   }
   printf ("{\"enqueued\": %" PRId64 ", \"seconds\": %.3f, \"behind_max_ms\": %.1f}\n", n, bench_now () - t0, behind_max * 1000.0);
   return true;
}

static void
print_date_or_null (const char *key, int64_t ms)
{
   if (ms >= 0) {
      printf (", \"%s\": %" PRId64, key, ms);
   } else {
      printf (", \"%s\": null", key);
   }
}

/* One JSON object a line per task: _id, status, priority, worker_pid and
 * created, started, finished in ms since the epoch (null when unset). */
static bool
tasks_dump (mongoc_client_t *client, const char *db, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
   bson_t filter = BSON_INITIALIZER;
   bson_t *opts = BCON_NEW ("projection", "{", "status", BCON_INT32 (1), "priority", BCON_INT32 (1), "worker_pid", BCON_INT32 (1),
                            "created", BCON_INT32 (1), "started", BCON_INT32 (1), "finished", BCON_INT32 (1), "}",
                            "sort", "{", "_id", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, &filter, opts, NULL);
   const bson_t *doc;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;
      char oid[25] = "";

      if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter)) {
         bson_oid_to_string (bson_iter_oid (&iter), oid);
      }
      printf ("{\"id\": \"%s\"", oid);
      printf (", \"status\": \"%s\"",
              bson_iter_init_find (&iter, doc, "status") && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : "");
      printf (", \"priority\": %d",
              bson_iter_init_find (&iter, doc, "priority") && BSON_ITER_HOLDS_INT32 (&iter) ? bson_iter_int32 (&iter) : 0);
      printf (", \"worker\": \"%s\"",
              bson_iter_init_find (&iter, doc, "worker_pid") && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : "");
      print_date_or_null ("created", date_field (doc, "created"));
      print_date_or_null ("started", date_field (doc, "started"));
      print_date_or_null ("finished", date_field (doc, "finished"));
      printf ("}\n");
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (opts);
   bson_destroy (&filter);
   mongoc_collection_destroy (tasks);
   return ok;
}

static bool
tasks_stats (mongoc_client_t *client, const char *db, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
   bson_t filter = BSON_INITIALIZER;
   bson_t *opts = BCON_NEW ("projection", "{", "status", BCON_INT32 (1), "created", BCON_INT32 (1), "started", BCON_INT32 (1),
                            "finished", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, &filter, opts, NULL);
   int64_t total = 0, finished = 0, first_started = INT64_MAX, last_finished = 0;
   int64_t *latency = NULL;
   size_t n_latency = 0, cap = 0;
   double sum = 0.0, span;
   const bson_t *doc;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;
      int64_t created = date_field (doc, "created"), started = date_field (doc, "started");
      int64_t ended = date_field (doc, "finished");

      total++;
      if (!bson_iter_init_find (&iter, doc, "status") || !BSON_ITER_HOLDS_UTF8 (&iter) ||
          strcmp (bson_iter_utf8 (&iter, NULL), "FINISHED") || started < 0 || ended < 0) {
         continue;
      }
      finished++;
      first_started = started < first_started ? started : first_started;
      last_finished = ended > last_finished ? ended : last_finished;
      if (created >= 0) {
         if (n_latency == cap) {
            cap = cap ? cap * 2 : 1024;
            latency = bson_realloc (latency, cap * sizeof *latency);
         }
         latency[n_latency++] = started - created;
         sum += (double) (started - created);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   if (ok) {
      qsort (latency, n_latency, sizeof *latency, compare_int64);
      span = finished ? (double) (last_finished - first_started) / 1000.0 : 0.0;
      printf ("{\"tasks\": %" PRId64 ", \"finished\": %" PRId64 ", \"span_s\": %.3f, \"per_second\": %.1f, "
              "\"latency_ms\": {\"p50\": %" PRId64 ", \"p95\": %" PRId64 ", \"p99\": %" PRId64 ", \"max\": %" PRId64
              ", \"mean\": %.1f}}\n",
              total,
              finished,
              span,
              span > 0 ? (double) finished / span : 0.0,
              percentile (latency, n_latency, 50),
              percentile (latency, n_latency, 95),
              percentile (latency, n_latency, 99),
              n_latency ? latency[n_latency - 1] : 0,
              n_latency ? sum / (double) n_latency : 0.0);
   }
   bson_free (latency);
   mongoc_cursor_destroy (cursor);
   bson_destroy (opts);
   bson_destroy (&filter);
   mongoc_collection_destroy (tasks);
   return ok;
}

int
main (int argc, char **argv)
{
   mongoc_client_pool_t *pool;
   mongoc_client_t *client;
   bson_error_t error;
   const char *cmd;
   bool ok = false;

   if (argc < 4) {
      usage ();
   }
   cmd = argv[1];
   mongoc_init ();
   pool = bench_pool_new (argv[2], 1, &error);
   if (!pool) {
      fprintf (stderr, "bench-tasks: %s\n", error.message);
      return 1;
   }
   client = mongoc_client_pool_pop (pool);
   if (!strcmp (cmd, "insert") && argc == 5) {
      ok = bench_tasks_insert (client, argv[3], bench_arg_int ("N", argv[4]), &error);
   } else if (!strcmp (cmd, "insert-ended") && argc == 5) {
      ok = tasks_insert_shaped (client, argv[3], bench_arg_int ("N", argv[4]), 0, &error);
   } else if (!strcmp (cmd, "insert-sleep") && argc == 6) {
      ok = tasks_insert_shaped (client, argv[3], bench_arg_int ("N", argv[4]), bench_arg_int ("MILLISECONDS", argv[5]), &error);
   } else if (!strcmp (cmd, "every") && argc == 6) {
      ok = tasks_every (client, argv[3], bench_arg_int ("MILLISECONDS", argv[4]), bench_arg_int ("N", argv[5]), &error);
   } else if (!strcmp (cmd, "dump") && argc == 4) {
      ok = tasks_dump (client, argv[3], &error);
   } else if (!strcmp (cmd, "pace") && argc == 6) {
      ok = tasks_pace (client, argv[3], bench_arg_int ("RATE", argv[4]), bench_arg_int ("SECONDS", argv[5]), &error);
   } else if (!strcmp (cmd, "wait") && argc == 6) {
      ok = tasks_wait (client, argv[3], bench_arg_int ("N", argv[4]), bench_arg_int ("TIMEOUT_SECONDS", argv[5]), &error);
   } else if (!strcmp (cmd, "stats") && argc == 4) {
      ok = tasks_stats (client, argv[3], &error);
   } else if (!strcmp (cmd, "drop") && argc == 4) {
      mongoc_database_t *database = mongoc_client_get_database (client, argv[3]);

      ok = mongoc_database_drop_with_opts (database, NULL, &error);
      mongoc_database_destroy (database);
   } else {
      usage ();
   }
   if (!ok) {
      fprintf (stderr, "bench-tasks %s: %s\n", cmd, error.message);
   }
   mongoc_client_pool_push (pool, client);
   mongoc_client_pool_destroy (pool);
   mongoc_cleanup ();
   return ok ? 0 : 1;
}
