/* A descriptor without its one required callback. */
#include <mtask/plugin.h>

MT_PLUGIN_DEFINE (.type = "no_process")
