/* fail: always fails, with params.message (default "failed on purpose"). */
#include <mtask/plugin.h>

static bool
fail_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const char *message = "failed on purpose";
   bson_iter_t iter;

   (void) state;
   if (bson_iter_init_find (&iter, mt_task_params (task), "message") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      message = bson_iter_utf8 (&iter, NULL);
   }
   bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "%s", message);
   return false;
}

MT_PLUGIN_DEFINE (.type = "fail", .description = "fails with params.message", .process = fail_process)
