/* crash: dies with SIGSEGV, to show what a crashing plugin costs. Run it
 * only on workers meant to be crashed. */
#include <mtask/plugin.h>

#include <signal.h>

static bool
crash_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task;
   (void) state;
   (void) error;
   raise (SIGSEGV);
   return false;
}

MT_PLUGIN_DEFINE (.type = "crash", .description = "dies with SIGSEGV", .process = crash_process)
