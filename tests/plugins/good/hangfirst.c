/* hangfirst: its first attempt hangs, sending no keepalive, until the host
 * says to stop (a slot taken back, a stop request), at most params.max_ms
 * (default 60000); any later attempt returns at once. The result says
 * which attempt finished: {attempt}. */
#include <mtask/plugin.h>

#include <time.h>

static bool
hangfirst_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const bson_t *params = mt_task_params (task);
   bson_iter_t iter;
   int64_t max_ms = 60000;
   bson_t result = BSON_INITIALIZER;
   bool ok;

   (void) state;
   if (bson_iter_init_find (&iter, params, "max_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      max_ms = bson_iter_as_int64 (&iter);
   }
   if (mt_task_attempt (task) == 1) {
      for (int64_t waited = 0; waited < max_ms && !mt_task_should_stop (task); waited += 50) {
         struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
         nanosleep (&ts, NULL);
      }
      mt_task_log (task, MT_LOG_INFO, "hangfirst: attempt 1 %s", mt_task_should_stop (task) ? "told to stop" : "gave up waiting");
   }
   BSON_APPEND_INT32 (&result, "attempt", mt_task_attempt (task));
   ok = mt_task_set_result (task, &result, error);
   bson_destroy (&result);
   return ok;
}

MT_PLUGIN_DEFINE (.type = "hangfirst", .description = "hangs on its first attempt until told to stop", .process = hangfirst_process)
