/* An entry that returns no descriptor. */
#include <mtask/plugin.h>

MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void);
MT_PLUGIN_EXPORT const mt_plugin_t *
mt_plugin_entry (void)
{
   return NULL;
}
