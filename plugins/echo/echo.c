/* echo: copies the task's params to its result. */
#include <mtask/plugin.h>

static bool
echo_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) state;
   return mt_task_set_result (task, mt_task_params (task), error);
}

MT_PLUGIN_DEFINE (.type = "echo", .description = "copies params to result", .process = echo_process)
