/* record: sleeps params.ms, then writes one document per execution into
 * `executions` ({task, attempt, tag, started, ended, mono_started,
 * mono_ended, ok}) through the worker's connection, retrying for up to two
 * minutes while the database is away or refuses (each record has its own
 * _id, so a retried insert that had landed adds nothing). A task that
 * shows up twice with ok: true was executed twice.
 *
 * started and ended are dates (the wall clock); mono_started and
 * mono_ended are microseconds of CLOCK_MONOTONIC, one clock for every
 * process of the machine and the one bson_get_monotonic_time () reads, so
 * the runs of several workers compare with each other and with a test's
 * own readings, whatever the wall clock does.
 *
 * params.fail_first: the first attempt fails (after recording itself);
 * params.fail_until: N: attempts 1 to N fail so.
 * params.tag is copied into the record (e.g. the stage number).
 * params.look: true: the record also holds the task's document as this
 * attempt found it when it began: task_delayed and task_started (when the
 * task has them), what its retry backoff and its claim wrote. */
#include <mongoc/mongoc.h>
#include <mtask/plugin.h>

#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int64_t
now_ms (void)
{
   struct timeval tv;

   gettimeofday (&tv, NULL);
   return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t
mono_us (void)
{
   struct timespec ts;

   clock_gettime (CLOCK_MONOTONIC, &ts);
   return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Appends to `doc` the task's `delayed` and `started` as task_delayed and
 * task_started, when its document has them. */
static void
look (mongoc_collection_t *tasks, mt_task_t *task, bson_t *doc)
{
   bson_t filter = BSON_INITIALIZER;
   mongoc_cursor_t *cursor;
   const bson_t *found;
   bson_oid_t oid;

   if (bson_oid_is_valid (mt_task_id (task), strlen (mt_task_id (task)))) {
      bson_oid_init_from_string (&oid, mt_task_id (task));
      BSON_APPEND_OID (&filter, "_id", &oid);
   } else {
      BSON_APPEND_UTF8 (&filter, "_id", mt_task_id (task));
   }
   cursor = mongoc_collection_find_with_opts (tasks, &filter, NULL, NULL);
   if (mongoc_cursor_next (cursor, &found)) {
      static const char *const keys[][2] = {{"delayed", "task_delayed"}, {"started", "task_started"}};
      bson_iter_t iter;

      for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
         if (bson_iter_init_find (&iter, found, keys[i][0]) && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
            BSON_APPEND_DATE_TIME (doc, keys[i][1], bson_iter_date_time (&iter));
         }
      }
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
}

static bool
record_process (mt_task_t *task, void *state, bson_error_t *error)
{
   mongoc_client_t *client = mt_task_mongoc_client (task);
   mongoc_collection_t *executions = mongoc_client_get_collection (client, mt_task_db_name (task), "executions");
   const bson_t *params = mt_task_params (task);
   bson_iter_t iter;
   int64_t started = now_ms (), mono_started = mono_us ();
   int32_t tag = 0, fail_until = 0;
   bool fail = false, ok = false;
   bson_t *doc, seen = BSON_INITIALIZER;
   bson_oid_t record_id;

   (void) state;
   if (bson_iter_init_find (&iter, params, "look") && bson_iter_as_bool (&iter)) {
      mongoc_collection_t *tasks = mongoc_client_get_collection (client, mt_task_db_name (task), "tasks");

      look (tasks, task, &seen);
      mongoc_collection_destroy (tasks);
   }
   if (bson_iter_init_find (&iter, params, "ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      int64_t ms = bson_iter_as_int64 (&iter);
      struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
      nanosleep (&ts, NULL);
   }
   if (bson_iter_init_find (&iter, params, "tag") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      tag = (int32_t) bson_iter_as_int64 (&iter);
   }
   if (bson_iter_init_find (&iter, params, "fail_first") && bson_iter_as_bool (&iter)) {
      fail_until = 1;
   }
   if (bson_iter_init_find (&iter, params, "fail_until") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      fail_until = (int32_t) bson_iter_as_int64 (&iter);
   }
   fail = mt_task_attempt (task) <= fail_until;
   /* Its own _id, made once: an insert tried again after a reply that
    * said it failed but had been applied (a write concern error, a reply
    * lost) meets its own document, not a second one. */
   bson_oid_init (&record_id, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&record_id), "task", mt_task_id (task), "attempt", BCON_INT32 (mt_task_attempt (task)), "tag", BCON_INT32 (tag),
                   "started", BCON_DATE_TIME (started), "ended", BCON_DATE_TIME (now_ms ()), "mono_started",
                   BCON_INT64 (mono_started), "mono_ended", BCON_INT64 (mono_us ()), "ok", BCON_BOOL (!fail));
   bson_concat (doc, &seen);
   bson_destroy (&seen);
   for (int i = 0; i < 240 && !ok; i++) {
      ok = mongoc_collection_insert_one (executions, doc, NULL, NULL, error) || (i > 0 && error->code == 11000);
      if (!ok) {
         usleep (500 * 1000);
      }
   }
   bson_destroy (doc);
   mongoc_collection_destroy (executions);
   if (ok && fail) {
      bson_set_error (error,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_FAILED,
                      "record: failing attempt %d of the first %d, as asked",
                      (int) mt_task_attempt (task),
                      (int) fail_until);
      ok = false;
   }
   return ok;
}

MT_PLUGIN_DEFINE (.type = "record", .description = "records each execution", .process = record_process)
