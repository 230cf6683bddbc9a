/* A second plugin for the task type 'echo'. */
#include <mtask/plugin.h>

static bool
process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task, (void) state, (void) error;
   return true;
}

MT_PLUGIN_DEFINE (.type = "echo", .process = process)
