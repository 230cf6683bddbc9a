/* probe: does what its params say, to test the host API from a plugin.
 *   sleep_ms: N            sleep first
 *   status_message: "..."  set it (written at once)
 *   status: "..."          set_status; an unknown one fails the task with
 *                          the host's error
 *   delay: SECONDS         delay itself
 *   result: {...}          set_result
 *   fail: "..."            return failure with this message
 *   echo_info: true        result = {id, type, queue, attempt}
 * It keeps a state from init to check that init, process and fini see the
 * same pointer. */
#include <mtask/plugin.h>

#include <string.h>
#include <time.h>

typedef struct {
   uint32_t magic;
   const mt_host_api_t *host;
} probe_state_t;

static bool
probe_init (const mt_host_api_t *host, void **state, bson_error_t *error)
{
   probe_state_t *s = bson_malloc0 (sizeof *s);

   (void) error;
   s->magic = 0x9e0be;
   s->host = host;
   *state = s;
   return true;
}

static void
probe_fini (void *state)
{
   bson_free (state);
}

static bool
probe_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const probe_state_t *s = state;
   const bson_t *params = mt_task_params (task);
   bson_iter_t iter;

   if (s->magic != 0x9e0be || s->host != task->host) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "probe: state lost between init and process");
      return false;
   }
   if (bson_iter_init_find (&iter, params, "sleep_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      int64_t ms = bson_iter_as_int64 (&iter);
      struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
      nanosleep (&ts, NULL);
   }
   if (bson_iter_init_find (&iter, params, "status_message") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      if (!mt_task_set_status_message (task, bson_iter_utf8 (&iter, NULL), error)) {
         return false;
      }
   }
   if (bson_iter_init_find (&iter, params, "result") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t result;

      bson_iter_document (&iter, &len, &data);
      if (!bson_init_static (&result, data, len) || !mt_task_set_result (task, &result, error)) {
         return false;
      }
   }
   if (bson_iter_init_find (&iter, params, "echo_info")) {
      bson_t result = BSON_INITIALIZER;
      bool ok;

      BSON_APPEND_UTF8 (&result, "id", mt_task_id (task));
      BSON_APPEND_UTF8 (&result, "type", mt_task_type (task));
      BSON_APPEND_UTF8 (&result, "queue", mt_task_queue (task));
      BSON_APPEND_INT32 (&result, "attempt", mt_task_attempt (task));
      ok = mt_task_set_result (task, &result, error);
      bson_destroy (&result);
      if (!ok) {
         return false;
      }
   }
   if (bson_iter_init_find (&iter, params, "status") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      if (!mt_task_set_status (task, bson_iter_utf8 (&iter, NULL), error)) {
         return false;
      }
   }
   if (bson_iter_init_find (&iter, params, "delay") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      if (!mt_task_delay (task, bson_iter_as_double (&iter), error)) {
         return false;
      }
   }
   mt_task_log (task, MT_LOG_INFO, "probe ran attempt %d", (int) mt_task_attempt (task));
   if (bson_iter_init_find (&iter, params, "fail") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "%s", bson_iter_utf8 (&iter, NULL));
      return false;
   }
   return true;
}

MT_PLUGIN_DEFINE (.type = "probe",
                  .description = "does what its params say",
                  .init = probe_init,
                  .fini = probe_fini,
                  .process = probe_process)
