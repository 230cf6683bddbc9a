/* A descriptor that names no task type. */
#include <mtask/plugin.h>

static bool
process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task, (void) state, (void) error;
   return true;
}

MT_PLUGIN_DEFINE (.process = process)
