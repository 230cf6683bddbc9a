/* A plugin whose init refuses to start. */
#include <mtask/plugin.h>

static bool
init (const mt_host_api_t *host, void **state, bson_error_t *error)
{
   (void) host, (void) state;
   bson_set_error (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_INIT, "missing API key in REPORT_KEY");
   return false;
}

static bool
process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task, (void) state, (void) error;
   return true;
}

MT_PLUGIN_DEFINE (.type = "init_fail", .init = init, .process = process)
