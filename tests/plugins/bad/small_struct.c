/* A descriptor that claims to be smaller than ABI 1's. */
#include <mtask/plugin.h>

MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void);
MT_PLUGIN_EXPORT const mt_plugin_t *
mt_plugin_entry (void)
{
   static const mt_plugin_t descriptor = {.abi_version = MT_PLUGIN_ABI_VERSION, .struct_size = 8};
   return &descriptor;
}
