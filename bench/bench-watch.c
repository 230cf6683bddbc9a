/* bench-watch: a bare libmongoc change-stream loop on DB.tasks, and nothing
 * else: what the server pays for an idle change-stream cursor, beside what
 * it pays for an idle worker that waits on one.
 *
 *    bench-watch URI DB N [MAX_AWAIT_MS [PAUSE_MS]]
 *
 * Opens N change streams on DB.tasks, each on its own client and thread,
 * prints READY once all are open, and reads them until SIGTERM or SIGINT;
 * then prints one JSON object: the events seen and the getMore round trips.
 * MAX_AWAIT_MS is the change stream's maxAwaitTimeMS (0 or absent: the
 * driver's default, which leaves it to the server). PAUSE_MS: sleep that
 * long after a getMore that brought nothing, what a server that honours
 * maxAwaitTimeMS would do for the client (this one answers at once). */
#include "bench-common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_bool stop_requested;

typedef struct {
   mongoc_client_pool_t *pool;
   const char *db;
   int64_t max_await_ms, pause_ms;
   pthread_mutex_t *mutex;
   pthread_cond_t *cond;
   int *opened;
   int64_t events, polls;
   bool failed;
   bson_error_t error;
} watcher_t;

static void
on_signal (int signum)
{
   (void) signum;
   atomic_store (&stop_requested, true);
}

static void *
watch_loop (void *arg)
{
   watcher_t *w = arg;
   mongoc_client_t *client = mongoc_client_pool_pop (w->pool);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, w->db, "tasks");
   bson_t pipeline = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   mongoc_change_stream_t *stream;
   const bson_t *event, *reply;

   if (w->max_await_ms > 0) {
      BSON_APPEND_INT64 (&opts, "maxAwaitTimeMS", w->max_await_ms);
   }
   stream = mongoc_collection_watch (tasks, &pipeline, &opts);
   if (mongoc_change_stream_error_document (stream, &w->error, &reply)) {
      w->failed = true;
   }
   pthread_mutex_lock (w->mutex);
   (*w->opened)++;
   pthread_cond_signal (w->cond);
   pthread_mutex_unlock (w->mutex);
   while (!w->failed && !atomic_load (&stop_requested)) {
      w->polls++;
      if (mongoc_change_stream_next (stream, &event)) {
         w->events++;
      } else if (mongoc_change_stream_error_document (stream, &w->error, &reply)) {
         w->failed = true;
      } else if (w->pause_ms > 0) {
         usleep ((useconds_t) (w->pause_ms * 1000));
      }
   }
   mongoc_change_stream_destroy (stream);
   bson_destroy (&opts);
   bson_destroy (&pipeline);
   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (w->pool, client);
   return NULL;
}

int
main (int argc, char **argv)
{
   pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
   pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
   struct sigaction sa;
   mongoc_client_pool_t *pool;
   watcher_t *watchers;
   pthread_t *threads;
   bson_error_t error;
   int64_t n, events = 0, polls = 0;
   int opened = 0, status = 0;

   if (argc < 4 || argc > 6) {
      fprintf (stderr, "usage: bench-watch URI DB N [MAX_AWAIT_MS [PAUSE_MS]]\n");
      return 2;
   }
   n = bench_arg_int ("N", argv[3]);
   memset (&sa, 0, sizeof sa);
   sa.sa_handler = on_signal;
   sigaction (SIGTERM, &sa, NULL);
   sigaction (SIGINT, &sa, NULL);
   mongoc_init ();
   pool = bench_pool_new (argv[1], (uint32_t) n, &error);
   if (!pool) {
      fprintf (stderr, "bench-watch: %s\n", error.message);
      mongoc_cleanup ();
      return 1;
   }
   watchers = calloc ((size_t) n, sizeof *watchers);
   threads = calloc ((size_t) n, sizeof *threads);
   for (int64_t i = 0; i < n; i++) {
      watchers[i] = (watcher_t) {.pool = pool,
                                 .db = argv[2],
                                 .max_await_ms = argc >= 5 ? bench_arg_count ("MAX_AWAIT_MS", argv[4]) : 0,
                                 .pause_ms = argc == 6 ? bench_arg_count ("PAUSE_MS", argv[5]) : 0,
                                 .mutex = &mutex,
                                 .cond = &cond,
                                 .opened = &opened};
      pthread_create (&threads[i], NULL, watch_loop, &watchers[i]);
   }
   pthread_mutex_lock (&mutex);
   while (opened < n) {
      pthread_cond_wait (&cond, &mutex);
   }
   pthread_mutex_unlock (&mutex);
   printf ("READY\n");
   fflush (stdout);
   for (int64_t i = 0; i < n; i++) {
      pthread_join (threads[i], NULL);
      events += watchers[i].events;
      polls += watchers[i].polls;
      if (watchers[i].failed && !status) {
         fprintf (stderr, "bench-watch: the change stream on %s.tasks failed: %s (the server needs tools/devdb --oplog)\n",
                  argv[2], watchers[i].error.message);
         status = 1;
      }
   }
   printf ("{\"streams\": %" PRId64 ", \"events\": %" PRId64 ", \"next_calls\": %" PRId64 "}\n", n, events, polls);
   free (threads);
   free (watchers);
   mongoc_client_pool_destroy (pool);
   mongoc_cleanup ();
   return status;
}
