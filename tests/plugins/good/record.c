/* record: sleeps params.ms, then writes one document per execution into
 * `executions` ({task, attempt, tag, started, ended, ok}) through the
 * worker's connection, retrying for up to two minutes while the database is
 * away. A task that shows up twice with ok: true was executed twice.
 * params.fail_first: the first attempt fails (after recording itself).
 * params.tag is copied into the record (e.g. the stage number). */
#include <mongoc/mongoc.h>
#include <mtask/plugin.h>

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

static bool
record_process (mt_task_t *task, void *state, bson_error_t *error)
{
   mongoc_client_t *client = mt_task_mongoc_client (task);
   mongoc_collection_t *executions = mongoc_client_get_collection (client, mt_task_db_name (task), "executions");
   const bson_t *params = mt_task_params (task);
   bson_iter_t iter;
   int64_t started = now_ms ();
   int32_t tag = 0;
   bool fail = false, ok = false;
   bson_t *doc;

   (void) state;
   if (bson_iter_init_find (&iter, params, "ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      int64_t ms = bson_iter_as_int64 (&iter);
      struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
      nanosleep (&ts, NULL);
   }
   if (bson_iter_init_find (&iter, params, "tag") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      tag = (int32_t) bson_iter_as_int64 (&iter);
   }
   fail = bson_iter_init_find (&iter, params, "fail_first") && bson_iter_as_bool (&iter) && mt_task_attempt (task) == 1;
   doc = BCON_NEW ("task", mt_task_id (task), "attempt", BCON_INT32 (mt_task_attempt (task)), "tag", BCON_INT32 (tag),
                   "started", BCON_DATE_TIME (started), "ended", BCON_DATE_TIME (now_ms ()), "ok", BCON_BOOL (!fail));
   for (int i = 0; i < 240 && !ok; i++) {
      ok = mongoc_collection_insert_one (executions, doc, NULL, NULL, error);
      if (!ok) {
         usleep (500 * 1000);
      }
   }
   bson_destroy (doc);
   mongoc_collection_destroy (executions);
   if (ok && fail) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "record: failing the first attempt, as asked");
      ok = false;
   }
   return ok;
}

MT_PLUGIN_DEFINE (.type = "record", .description = "records each execution", .process = record_process)
