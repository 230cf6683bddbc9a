/* record: sleeps params.ms, then writes one document per execution into
 * `executions` ({task, attempt, at}) through the worker's connection,
 * retrying for up to two minutes while the database is away. A task that
 * shows up twice there was executed twice. */
#include <mongoc/mongoc.h>
#include <mtask/plugin.h>

#include <time.h>
#include <unistd.h>

static bool
record_process (mt_task_t *task, void *state, bson_error_t *error)
{
   mongoc_client_t *client = mt_task_mongoc_client (task);
   mongoc_collection_t *executions = mongoc_client_get_collection (client, mt_task_db_name (task), "executions");
   bson_iter_t iter;
   bson_t *doc;
   bool ok = false;

   (void) state;
   if (bson_iter_init_find (&iter, mt_task_params (task), "ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      int64_t ms = bson_iter_as_int64 (&iter);
      struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
      nanosleep (&ts, NULL);
   }
   doc = BCON_NEW ("task", mt_task_id (task), "attempt", BCON_INT32 (mt_task_attempt (task)));
   for (int i = 0; i < 240 && !ok; i++) {
      ok = mongoc_collection_insert_one (executions, doc, NULL, NULL, error);
      if (!ok) {
         usleep (500 * 1000);
      }
   }
   bson_destroy (doc);
   mongoc_collection_destroy (executions);
   return ok;
}

MT_PLUGIN_DEFINE (.type = "record", .description = "records each execution", .process = record_process)
