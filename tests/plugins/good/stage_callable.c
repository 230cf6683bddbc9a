/* A synchronizer stage's callable for the seed 000 example: built three
 * times, as the task types a_callable, other_callable and another_callable.
 * It enqueues params.work (default 3) `sleep` tasks of 0.2 s on its own
 * queue, the stage's work, and when its stage closes a task
 * (params._stage.task) it opens one: a WORK_IN_PROGRESS record of that type,
 * the seed's running task that the stage closes once its queue drains. */
#include <mongoc/mongoc.h>
#include <mtask/plugin.h>

#ifndef CALLABLE_TYPE
#error "build with -DCALLABLE_TYPE=\"name\""
#endif

static bool
callable_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const bson_t *params = mt_task_params (task);
   bson_iter_t iter, stage;
   int64_t work = 3;
   bson_t *sleep_params = BCON_NEW ("seconds", BCON_DOUBLE (0.2));
   bool ok = true;

   (void) state;
   if (bson_iter_init_find (&iter, params, "work") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      work = bson_iter_as_int64 (&iter);
   }
   if (bson_iter_init_find (&iter, params, "_stage") && bson_iter_recurse (&iter, &stage) && bson_iter_find (&stage, "task") &&
       BSON_ITER_HOLDS_UTF8 (&stage)) {
      mongoc_client_t *client = mt_task_mongoc_client (task);
      mongoc_collection_t *tasks = mongoc_client_get_collection (client, mt_task_db_name (task), "tasks");
      bson_t *open = BCON_NEW ("queue", "records", "type", bson_iter_utf8 (&stage, NULL), "status", "WORK_IN_PROGRESS",
                               "worker_pid", BCON_NULL, "created", BCON_DATE_TIME ((int64_t) time (NULL) * 1000),
                               "params", "{", "opened_by", CALLABLE_TYPE, "}");

      ok = mongoc_collection_insert_one (tasks, open, NULL, NULL, error);
      bson_destroy (open);
      mongoc_collection_destroy (tasks);
   }
   for (int64_t i = 0; ok && i < work; i++) {
      ok = mt_task_enqueue (task, mt_task_queue (task), "sleep", sleep_params, NULL, NULL, error);
   }
   bson_destroy (sleep_params);
   return ok;
}

MT_PLUGIN_DEFINE (.type = CALLABLE_TYPE, .description = "a synchronizer stage's callable", .process = callable_process)
