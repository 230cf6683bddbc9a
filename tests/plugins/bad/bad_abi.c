/* A plugin built for a future ABI: the loader must refuse it by version. */
#include <mtask/plugin.h>

static bool
process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task, (void) state, (void) error;
   return true;
}

MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void);
MT_PLUGIN_EXPORT const mt_plugin_t *
mt_plugin_entry (void)
{
   static const mt_plugin_t descriptor = {
      .abi_version = 2, .struct_size = sizeof (mt_plugin_t), .type = "bad_abi", .process = process};
   return &descriptor;
}
