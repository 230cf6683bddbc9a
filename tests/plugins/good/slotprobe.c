/* slotprobe: a task for concurrency slots. It sends params.keepalives
 * keepalives 300 ms apart, then runs params.hang_ms, returning early when
 * the host says to stop. With params.until_seen it goes on sending them
 * (at most a hundred) until the worker has called on_keepalive, so that
 * whatever the timing the worker saw one arrive before the silence. Its
 * callbacks log "callback on_keepalive", "callback on_timeout",
 * "callback on_stop", so a test can read their order from the worker's
 * log. */
#include <mtask/plugin.h>

#include <time.h>

/* How many times on_keepalive has run in this process. */
static int keepalives_seen;

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
   int seen_before = __atomic_load_n (&keepalives_seen, __ATOMIC_SEQ_CST);
   bool until_seen = false;

   (void) state;
   if (bson_iter_init_find (&iter, params, "until_seen")) {
      until_seen = bson_iter_as_bool (&iter);
   }
   if (bson_iter_init_find (&iter, params, "keepalives") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      keepalives = bson_iter_as_int64 (&iter);
   }
   if (bson_iter_init_find (&iter, params, "hang_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      hang_ms = bson_iter_as_int64 (&iter);
   }
   for (int64_t i = 0; i < keepalives || (until_seen && i < 100 && __atomic_load_n (&keepalives_seen, __ATOMIC_SEQ_CST) == seen_before); i++) {
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
   __atomic_add_fetch (&keepalives_seen, 1, __ATOMIC_SEQ_CST);
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
