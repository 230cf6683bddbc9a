/* sleep: sleeps params.seconds (a number, default 1), then finishes with
 * result {slept: seconds}. */
#include <mtask/plugin.h>

#include <errno.h>
#include <math.h>
#include <time.h>

static bool
sleep_process (mt_task_t *task, void *state, bson_error_t *error)
{
   double seconds = 1.0;
   bson_iter_t iter;
   struct timespec ts;
   bson_t result = BSON_INITIALIZER;
   bool ok;

   (void) state;
   if (bson_iter_init_find (&iter, mt_task_params (task), "seconds")) {
      if (!BSON_ITER_HOLDS_NUMBER (&iter) || !isfinite (bson_iter_as_double (&iter)) ||
          bson_iter_as_double (&iter) < 0) {
         bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "sleep: params.seconds must be a number, 0 or more");
         return false;
      }
      seconds = bson_iter_as_double (&iter);
   }
   ts.tv_sec = (time_t) seconds;
   ts.tv_nsec = (long) ((seconds - (double) ts.tv_sec) * 1e9);
   while (nanosleep (&ts, &ts) != 0 && errno == EINTR) {
   }
   BSON_APPEND_DOUBLE (&result, "slept", seconds);
   ok = mt_task_set_result (task, &result, error);
   bson_destroy (&result);
   return ok;
}

MT_PLUGIN_DEFINE (.type = "sleep", .description = "sleeps params.seconds", .process = sleep_process)
