#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void
mt_cli_usage (FILE *out)
{
   fprintf (out,
            "Usage: mtask-worker --db NAME --queues QUEUE [QUEUE...] [options]\n"
            "\n"
            "Claims due tasks from the MongoDB collection NAME.tasks and runs each one\n"
            "through the task plugin named by its 'type' field.\n"
            "\n"
            "Required:\n"
            "  --db NAME              database holding the 'tasks' collection\n"
            "  --queues Q [Q...]      queues to serve: names separated by spaces or commas\n"
            "                         (--queues general glavstroy, --queues general,glavstroy);\n"
            "                         a name is 1 to 128 bytes of UTF-8, no control characters\n"
            "\n"
            "Connection:\n"
            "  --host HOST            MongoDB host (default: localhost)\n"
            "  --port PORT            MongoDB port (default: 27017)\n"
            "  --uri URI              a full MongoDB URI instead of --host/--port, for replica\n"
            "                         sets, authentication and TLS; its database is used when\n"
            "                         --db is not given. Other users see a command line: give a\n"
            "                         URI with a password by --uri-file or MTASK_URI instead\n"
            "  --uri-file FILE        read the URI from FILE (one line), which only its owner\n"
            "                         may read: a file others can read is refused (chmod 600)\n"
            "                         (default: $MTASK_URI when set and no --host/--port)\n"
            "\n"
            "Worker:\n"
            "  --pid ID               this worker's id, stored in each task's 'worker_pid';\n"
            "                         unique among live workers: a start under an id that a\n"
            "                         live worker of another host or pid holds is refused\n"
            "                         (default: a generated UUID version 1)\n"
            "  --replace              start even so, in place of that worker: its running\n"
            "                         tasks are taken back (run again), and if it is alive\n"
            "                         it stops claiming at its next heartbeat. For a worker\n"
            "                         known to be gone, e.g. under a service manager that\n"
            "                         runs one instance\n"
            "  --plugins DIR          load every *.so in DIR; repeat for more directories\n"
            "                         (default: $MTASK_PLUGINS, a colon-separated list of\n"
            "                         directories, or else %s)\n"
            "  --types T [T...]       run only these task types (names separated by spaces or\n"
            "                         commas); each needs a plugin (default: every plugin's)\n"
            "  --concurrency N        tasks run at once, one thread each (default: 1)\n"
            "  --poll-interval SECS   longest wait between claims when nothing is due and no\n"
            "                         change stream tells of new tasks; right after work the\n"
            "                         worker looks again sooner (default: 1). One claimer\n"
            "                         serves all the threads: an idle worker polls once per\n"
            "                         interval, whatever its --concurrency\n"
            "  --wake MODE            how an idle worker learns of new tasks: 'auto'\n"
            "                         (default) watches the tasks collection with a change\n"
            "                         stream (a replica set) and claims at once, and polls\n"
            "                         where the server has none; 'change-stream' the same,\n"
            "                         warning when it must poll; 'poll' only polls\n"
            "  --safety-poll SECS     while the change stream is healthy, claim anyway this\n"
            "                         often, for what no event tells (default: 30)\n"
            "  --prefetch-ms MS       claim a task before a thread is free for it only when\n"
            "                         the recent run times of its task types say it starts\n"
            "                         within MS milliseconds (default: 50; 0: never)\n"
            "  --once                 process every task that is due, then exit\n"
            "\n"
            "Reliability:\n"
            "  --lease SECS           a task whose worker is silent this long is taken back\n"
            "                         by another worker (default: 30)\n"
            "  --grace SECS           on SIGTERM/SIGINT, how long running tasks may finish\n"
            "                         before they are given back (default: 30)\n"
            "  --max-attempts N       retry budget of tasks that set none, nor their plugin\n"
            "                         (default: 3)\n"
            "  --retry-backoff SECS   wait before retry n: SECS * 2^(n-1), +-25%% (default: 2)\n"
            "  --isolate MODE         'none' (default): process() on the worker's threads;\n"
            "                         'fork': each task in a child process, so a crash or a\n"
            "                         task's `timeout` costs one attempt, not the worker\n"
            "\n"
            "Scheduling:\n"
            "  --archive              move each ended task (FINISHED, FAILED, CANCELLED) of\n"
            "                         these queues into DB.completed_tasks, same _id and\n"
            "                         fields; tasks of staged groups stay with their group.\n"
            "                         Delete old ones with 'mtaskctl purge' (or, on MongoDB,\n"
            "                         a TTL index: 'mtaskctl retention')\n"
            "\n"
            "Logging (to stderr):\n"
            "  --log-format FORMAT    'text' (default) or 'json', one object per line\n"
            "  --log-level LEVEL      error, warning, info (default) or debug\n"
            "\n"
            "  --check                parse everything, connect, load the plugins, check the\n"
            "                         indexes, print what this worker would serve, and exit:\n"
            "                         0 when it could start, else the reason and 1 (2 for\n"
            "                         bad arguments or plugins); for a service's\n"
            "                         ExecStartPre= and after an edit (docs/deploy.md)\n"
            "  --help                 show this help\n"
            "  --version              show the version\n"
            "\n"
            "SIGTERM or SIGINT stops claiming and lets running tasks finish within --grace;\n"
            "then, or at a second signal, gives the rest back (CREATED, attempt not\n"
            "counted) and exits 0.\n"
            "A worker whose id another starts with --replace stops claiming, lets what it\n"
            "runs end, and exits 0.\n"
            "Exit status: 0 stopped or done; 1 the worker could not start (its id in use,\n"
            "a sharded tasks collection, a unique index the database refused) or failed\n"
            "while running; 2 bad arguments, or a plugin that would not load.\n"
            "\n"
            "Example:\n"
            "  mtask-worker --db tasks --queues general --host db1.example --port 27017 --pid WORKER-1\n"
            "  (an id is one live worker's: the next worker gets its own, e.g. WORKER-2)\n",
            mt_default_plugin_dir ());
}

static bool fail (bson_error_t *error, const char *format, ...) BSON_GNUC_PRINTF (2, 3);

static bool
fail (bson_error_t *error, const char *format, ...)
{
   va_list args;

   error->domain = MT_ERROR_CONFIG;
   error->code = MT_CONFIG_ERROR_INVALID;
   va_start (args, format);
   bson_vsnprintf (error->message, sizeof error->message, format, args);
   va_end (args);
   return false;
}

static void
strv_push (char ***strv, const char *value)
{
   size_t n = 0;

   while (*strv && (*strv)[n]) {
      n++;
   }
   *strv = bson_realloc (*strv, (n + 2) * sizeof **strv);
   (*strv)[n] = bson_strdup (value);
   (*strv)[n + 1] = NULL;
}

static bool
strv_contains (char **strv, const char *value)
{
   for (size_t i = 0; strv && strv[i]; i++) {
      if (!strcmp (strv[i], value)) {
         return true;
      }
   }
   return false;
}

/* Adds the names in `value`, separated by commas or spaces, to the list of
 * --queues or --types (`flag`). */
static bool
add_names (const char *flag, char ***list, const char *value, bson_error_t *error)
{
   char *copy = bson_strdup (value), *save = NULL;
   bool any = false;

   for (char *name = strtok_r (copy, ", \t", &save); name; name = strtok_r (NULL, ", \t", &save)) {
      bson_error_t why;

      if (!strcmp (flag, "--queues") && !mt_queue_name_check (name, &why)) {
         bson_free (copy);
         return fail (error, "--queues: %s", why.message);
      }
      if (!strv_contains (*list, name)) {
         strv_push (list, name);
      }
      any = true;
   }
   bson_free (copy);
   if (!any) {
      return fail (error, "%s: '%s' names no %s", flag, value, !strcmp (flag, "--queues") ? "queue" : "task type");
   }
   return true;
}

static bool
parse_int (const char *flag, const char *value, long min, long max, int *out, bson_error_t *error)
{
   char *end;
   long n;

   errno = 0;
   n = strtol (value, &end, 10);
   if (errno || end == value || *end || n < min || n > max) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "%s: '%s' is not a whole number from %ld to %ld",
                      flag,
                      value,
                      min,
                      max);
      return false;
   }
   *out = (int) n;
   return true;
}

bool
mt_cli_parse (mt_cli_t *cli, int argc, char *const *argv, bson_error_t *error)
{
   bool has_host = false, has_port = false;

   memset (cli, 0, sizeof *cli);
   cli->host = "localhost";
   cli->port = 27017;
   cli->concurrency = 1;
   cli->poll_interval = 1.0;
   cli->wake = MT_WAKE_AUTO;
   cli->safety_poll = 30;
   cli->prefetch_ms = 50;
   cli->log_format = MT_LOG_FORMAT_TEXT;
   cli->log_level = MT_LOG_INFO;
   cli->lease = 30;
   cli->grace = 30;
   cli->max_attempts = 3;
   cli->retry_backoff = 2;
   cli->isolate = MT_ISOLATE_NONE;

   for (int i = 1; i < argc; i++) {
      const char *arg = argv[i];
      const char *value = NULL;
      char flag[64];
      const char *eq;

      if (strncmp (arg, "--", 2) != 0) {
         return fail (error, "unexpected argument '%s'; flags start with --", arg);
      }
      /* --flag=value or --flag value */
      eq = strchr (arg, '=');
      bson_strncpy (flag, arg, BSON_MIN (sizeof flag, eq ? (size_t) (eq - arg) + 1 : sizeof flag));
      if (eq) {
         value = eq + 1;
      }

      if (!strcmp (flag, "--help") || !strcmp (flag, "--version") || !strcmp (flag, "--once") || !strcmp (flag, "--archive") ||
          !strcmp (flag, "--replace") || !strcmp (flag, "--check")) {
         if (value) {
            return fail (error, "%s takes no value, got '%s'", flag, value);
         }
         if (!strcmp (flag, "--help")) {
            cli->help = true;
         } else if (!strcmp (flag, "--version")) {
            cli->version = true;
         } else if (!strcmp (flag, "--archive")) {
            cli->archive = true;
         } else if (!strcmp (flag, "--replace")) {
            cli->replace = true;
         } else if (!strcmp (flag, "--check")) {
            cli->check = true;
         } else {
            cli->once = true;
         }
         continue;
      }

      if (!strcmp (flag, "--queues") || !strcmp (flag, "--types")) {
         char ***list = !strcmp (flag, "--queues") ? &cli->queues : &cli->types;
         bool any = false;

         if (value) {
            if (!add_names (flag, list, value, error)) {
               return false;
            }
            any = true;
         }
         /* Space separated, as in seed 001: every following word up to the
          * next flag. */
         while (i + 1 < argc && strncmp (argv[i + 1], "--", 2) != 0) {
            if (!add_names (flag, list, argv[++i], error)) {
               return false;
            }
            any = true;
         }
         if (!any) {
            return fail (error, "%s needs at least one %s", flag, !strcmp (flag, "--queues") ? "queue name" : "task type");
         }
         continue;
      }

      if (!value) {
         if (i + 1 >= argc || (strncmp (argv[i + 1], "--", 2) == 0 && argv[i + 1][2] != '\0')) {
            static const char *const known[] = {"--db",
                                                "--host",
                                                "--port",
                                                "--uri",
                                                "--uri-file",
                                                "--pid",
                                                "--plugins",
                                                "--concurrency",
                                                "--poll-interval",
                                                "--wake",
                                                "--safety-poll",
                                                "--prefetch-ms",
                                                "--log-format",
                                                "--log-level",
                                                "--lease",
                                                "--grace",
                                                "--max-attempts",
                                                "--retry-backoff",
                                                "--isolate",
                                                NULL};
            for (size_t k = 0; known[k]; k++) {
               if (!strcmp (flag, known[k])) {
                  return fail (error, "%s needs a value", flag);
               }
            }
            return fail (error, "unknown flag '%s'", flag);
         }
         value = argv[++i];
      }

      if (!strcmp (flag, "--db")) {
         if (!value[0]) {
            return fail (error, "--db needs a database name");
         }
         cli->db = value;
      } else if (!strcmp (flag, "--host")) {
         if (!value[0]) {
            return fail (error, "--host needs a host name");
         }
         cli->host = value;
         has_host = true;
      } else if (!strcmp (flag, "--port")) {
         if (!parse_int ("--port", value, 1, 65535, &cli->port, error)) {
            return false;
         }
         has_port = true;
      } else if (!strcmp (flag, "--uri")) {
         if (cli->uri_file) {
            return fail (error, "give either --uri or --uri-file, not both");
         }
         cli->uri = value;
         cli->uri_source = "--uri";
      } else if (!strcmp (flag, "--uri-file")) {
         if (cli->uri_source) {
            return fail (error, "give either --uri or --uri-file, not both");
         }
         if (!value[0]) {
            return fail (error, "--uri-file needs a file name");
         }
         cli->uri_file = value;
         cli->uri_source = "--uri-file";
      } else if (!strcmp (flag, "--pid")) {
         if (!value[0]) {
            return fail (error, "--pid needs a worker id");
         }
         cli->worker_id = value;
      } else if (!strcmp (flag, "--plugins")) {
         strv_push (&cli->plugin_dirs, value);
      } else if (!strcmp (flag, "--concurrency")) {
         if (!parse_int ("--concurrency", value, 1, 1024, &cli->concurrency, error)) {
            return false;
         }
      } else if (!strcmp (flag, "--poll-interval")) {
         char *end;
         double secs = strtod (value, &end);

         if (end == value || *end || !isfinite (secs) || secs < 0.001 || secs > 3600) {
            return fail (error, "--poll-interval: '%s' is not a number of seconds from 0.001 to 3600", value);
         }
         cli->poll_interval = secs;
      } else if (!strcmp (flag, "--wake")) {
         if (!strcmp (value, "auto")) {
            cli->wake = MT_WAKE_AUTO;
         } else if (!strcmp (value, "change-stream")) {
            cli->wake = MT_WAKE_CHANGE_STREAM;
         } else if (!strcmp (value, "poll")) {
            cli->wake = MT_WAKE_POLL;
         } else {
            return fail (error, "--wake: '%s' is not 'auto', 'change-stream' or 'poll'", value);
         }
      } else if (!strcmp (flag, "--safety-poll")) {
         char *end;
         double secs = strtod (value, &end);

         if (end == value || *end || !isfinite (secs) || secs < 1 || secs > 86400) {
            return fail (error, "--safety-poll: '%s' is not a number of seconds from 1 to 86400", value);
         }
         cli->safety_poll = secs;
      } else if (!strcmp (flag, "--prefetch-ms")) {
         char *end;
         double ms = strtod (value, &end);

         if (end == value || *end || !isfinite (ms) || ms < 0 || ms > 60000) {
            return fail (error, "--prefetch-ms: '%s' is not a number of milliseconds from 0 (off) to 60000", value);
         }
         cli->prefetch_ms = ms;
      } else if (!strcmp (flag, "--lease") || !strcmp (flag, "--grace") || !strcmp (flag, "--retry-backoff")) {
         double min = !strcmp (flag, "--lease") ? 1 : 0, max = !strcmp (flag, "--retry-backoff") ? 3600 : 86400;
         char *end;
         double secs = strtod (value, &end);

         if (end == value || *end || !isfinite (secs) || secs < min || secs > max) {
            return fail (error, "%s: '%s' is not a number of seconds from %g to %g", flag, value, min, max);
         }
         if (!strcmp (flag, "--lease")) {
            cli->lease = secs;
         } else if (!strcmp (flag, "--grace")) {
            cli->grace = secs;
         } else {
            cli->retry_backoff = secs;
         }
      } else if (!strcmp (flag, "--max-attempts")) {
         if (!parse_int ("--max-attempts", value, 1, 1000000, &cli->max_attempts, error)) {
            return false;
         }
      } else if (!strcmp (flag, "--isolate")) {
         if (!strcmp (value, "none")) {
            cli->isolate = MT_ISOLATE_NONE;
         } else if (!strcmp (value, "fork")) {
            cli->isolate = MT_ISOLATE_FORK;
         } else {
            return fail (error, "--isolate: '%s' is not 'none' or 'fork'", value);
         }
      } else if (!strcmp (flag, "--log-format")) {
         if (!strcmp (value, "text")) {
            cli->log_format = MT_LOG_FORMAT_TEXT;
         } else if (!strcmp (value, "json")) {
            cli->log_format = MT_LOG_FORMAT_JSON;
         } else {
            return fail (error, "--log-format: '%s' is not 'text' or 'json'", value);
         }
      } else if (!strcmp (flag, "--log-level")) {
         static const mt_log_level_t levels[] = {MT_LOG_ERROR, MT_LOG_WARNING, MT_LOG_INFO, MT_LOG_DEBUG};
         bool found = false;

         for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++) {
            if (!strcmp (value, mt_log_level_name (levels[k]))) {
               cli->log_level = levels[k];
               found = true;
            }
         }
         if (!found) {
            return fail (error, "--log-level: '%s' is not error, warning, info or debug", value);
         }
      } else {
         return fail (error, "unknown flag '%s'", flag);
      }
   }

   if (!cli->plugin_dirs) {
      /* Like PATH: colon-separated directories, used when no --plugins. */
      const char *env = getenv ("MTASK_PLUGINS");
      char *copy = bson_strdup (env ? env : ""), *save = NULL;

      for (char *dir = strtok_r (copy, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
         strv_push (&cli->plugin_dirs, dir);
      }
      bson_free (copy);
   }
   if (cli->help || cli->version) {
      return true;
   }
   if (cli->uri_source && (has_host || has_port)) {
      return fail (error, "give either %s or --host/--port, not both", cli->uri_source);
   }
   if (cli->uri_file) {
      bson_error_t why;

      cli->uri_owned = mt_uri_read_file (cli->uri_file, &why);
      if (!cli->uri_owned) {
         return fail (error, "--uri-file: %s", why.message);
      }
      cli->uri = cli->uri_owned;
   } else if (!cli->uri_source && !has_host && !has_port && getenv ("MTASK_URI") && getenv ("MTASK_URI")[0]) {
      /* The environment, which other users cannot read, unlike argv. */
      cli->uri = getenv ("MTASK_URI");
      cli->uri_source = "MTASK_URI";
   }
   if (!cli->db && !cli->uri) {
      return fail (error, "--db is required: the database holding the 'tasks' collection");
   }
   if (!cli->queues) {
      return fail (error, "--queues is required: one or more queue names to serve");
   }
   return true;
}

void
mt_cli_destroy (mt_cli_t *cli)
{
   for (size_t i = 0; cli->queues && cli->queues[i]; i++) {
      bson_free (cli->queues[i]);
   }
   bson_free (cli->queues);
   for (size_t i = 0; cli->types && cli->types[i]; i++) {
      bson_free (cli->types[i]);
   }
   bson_free (cli->types);
   bson_free (cli->uri_owned);
   for (size_t i = 0; cli->plugin_dirs && cli->plugin_dirs[i]; i++) {
      bson_free (cli->plugin_dirs[i]);
   }
   bson_free (cli->plugin_dirs);
   memset (cli, 0, sizeof *cli);
}
