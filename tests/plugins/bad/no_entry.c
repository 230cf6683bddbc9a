/* A shared object that is no plugin: no mt_plugin_entry. */
#include <mtask/plugin.h>

MT_PLUGIN_EXPORT int not_a_plugin (void);
MT_PLUGIN_EXPORT int
not_a_plugin (void)
{
   return 42;
}
