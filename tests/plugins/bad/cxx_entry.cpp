// A C++ plugin whose entry is written by hand without extern "C": it is
// exported mangled (_Z15mt_plugin_entryv), and the loader says so.
#include <mtask/plugin.h>

static bool
cxx_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task, (void) state, (void) error;
   return true;
}

MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void);
MT_PLUGIN_EXPORT const mt_plugin_t *
mt_plugin_entry (void)
{
   static mt_plugin_t descriptor = mt_plugin_t ();

   descriptor.abi_version = MT_PLUGIN_ABI_VERSION;
   descriptor.struct_size = (uint32_t) sizeof (mt_plugin_t);
   descriptor.type = "cxx_entry";
   descriptor.process = cxx_process;
   return &descriptor;
}
