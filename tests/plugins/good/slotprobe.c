/* slotprobe: a task for concurrency slots. It sends params.keepalives
 * keepalives 300 ms apart, then runs params.hang_ms, returning early when
 * the host says to stop. Its callbacks log "callback on_keepalive",
 * "callback on_timeout", "callback on_stop", so a test can read their
 * order from the worker's log. */
#include <mtask/plugin.h>

#include <time.h>

static void
nap (int ms)
{
   struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};
   nanosleep (&ts, NULL);
}

static bool
slotprobe_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const bson_t *params = mt_task_params (task);
   bson_iter_t iter;
   int64_t keepalives = 0, hang_ms = 0;

   (void) state;
   if (bson_iter_init_find (&iter, params, "keepalives") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      keepalives = bson_iter_as_int64 (&iter);
   }
   if (bson_iter_init_find (&iter, params, "hang_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      hang_ms = bson_iter_as_int64 (&iter);
   }
   for (int64_t i = 0; i < keepalives; i++) {
      nap (300);
      if (!mt_task_keepalive (task, error)) {
         return false;
      }
   }
   for (int64_t waited = 0; waited < hang_ms && !mt_task_should_stop (task); waited += 50) {
      nap (50);
   }
   if (mt_task_should_stop (task)) {
      mt_task_log (task, MT_LOG_INFO, "process() saw should_stop and returns");
   }
   return true;
}

static void
on_keepalive (mt_task_t *task, void *state)
{
   (void) state;
   mt_task_log (task, MT_LOG_INFO, "callback on_keepalive");
}

static void
on_timeout (mt_task_t *task, void *state)
{
   (void) state;
   mt_task_log (task, MT_LOG_INFO, "callback on_timeout");
}

static void
on_stop (mt_task_t *task, void *state)
{
   (void) state;
   mt_task_log (task, MT_LOG_INFO, "callback on_stop");
}

MT_PLUGIN_DEFINE (.type = "slotprobe",
                  .description = "a task in a slot pool, with the seed 002 callbacks",
                  .process = slotprobe_process,
                  .on_keepalive = on_keepalive,
                  .on_timeout = on_timeout,
                  .on_stop = on_stop)
