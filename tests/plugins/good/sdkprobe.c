/* sdkprobe: the plugin SDK's conveniences from a real worker (issue 15).
 * init and fini log through the host table (mt_host_log), with quotes and
 * a backslash that a JSON log must escape; init also logs the database
 * name mt_host_db_name gives and whether mt_host_uri gave a URI.
 * process() reads its params with the mt_param helpers:
 *   width: integer (required)   ratio: number (default 1.5)
 *   name: string (default "anon")   flag: boolean (default false)
 *   opts: document (optional; its key count goes to the result)
 * and sets result = {width, ratio, name, flag, opts_keys}; a helper's
 * error fails the task with it. It also logs through task->host with
 * mt_host_log, as a helper function without the init pointer would. */
#include <mtask/plugin.h>

#include <string.h>

typedef struct {
   const mt_host_api_t *host;
} sdkprobe_state_t;

static bool
sdkprobe_init (const mt_host_api_t *host, void **state, bson_error_t *error)
{
   sdkprobe_state_t *s = (sdkprobe_state_t *) bson_malloc0 (sizeof *s);
   const char *uri = mt_host_uri (host);

   (void) error;
   s->host = host;
   *state = s;
   mt_host_log (host,
                MT_LOG_INFO,
                "sdkprobe init: \"hello\" from init \\o/, db %s, uri %s",
                mt_host_db_name (host) ? mt_host_db_name (host) : "(none)",
                uri && !strncmp (uri, "mongodb://", 10) ? "given" : "missing");
   return true;
}

static void
sdkprobe_fini (void *state)
{
   sdkprobe_state_t *s = (sdkprobe_state_t *) state;

   mt_host_log (s->host, MT_LOG_INFO, "sdkprobe fini: \"bye\"");
   bson_free (s);
}

static bool
sdkprobe_process (mt_task_t *task, void *state, bson_error_t *error)
{
   int64_t width;
   double ratio;
   const char *name;
   bool flag;
   bson_t opts;
   uint32_t opts_keys = 0;
   bson_t result = BSON_INITIALIZER;
   bool ok;

   (void) state;
   if (!mt_param_int64 (task, "width", &width, error) || !mt_param_double_or (task, "ratio", 1.5, &ratio, error) ||
       !mt_param_utf8_or (task, "name", "anon", &name, error) || !mt_param_bool_or (task, "flag", false, &flag, error)) {
      return false;
   }
   if (mt_param_has (task, "opts")) {
      if (!mt_param_doc (task, "opts", &opts, error)) {
         return false;
      }
      opts_keys = bson_count_keys (&opts);
   }
   mt_host_log (task->host, MT_LOG_INFO, "sdkprobe process: through task->host, width %" PRId64, width);
   BSON_APPEND_INT64 (&result, "width", width);
   BSON_APPEND_DOUBLE (&result, "ratio", ratio);
   BSON_APPEND_UTF8 (&result, "name", name);
   BSON_APPEND_BOOL (&result, "flag", flag);
   BSON_APPEND_INT32 (&result, "opts_keys", (int32_t) opts_keys);
   ok = mt_task_set_result (task, &result, error);
   bson_destroy (&result);
   return ok;
}

MT_PLUGIN_DEFINE (.type = "sdkprobe",
                  .description = "logs from init and fini, reads params with the helpers",
                  .init = sdkprobe_init,
                  .fini = sdkprobe_fini,
                  .process = sdkprobe_process)
