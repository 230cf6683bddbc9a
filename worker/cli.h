/* mtask-worker's command line, apart from main() so unit tests can drive it. */
#ifndef MTASK_WORKER_CLI_H
#define MTASK_WORKER_CLI_H

#include <mtask/mtask.h>
#include <stdio.h>

typedef enum {
   MT_LOG_FORMAT_TEXT,
   MT_LOG_FORMAT_JSON,
} mt_log_format_t;

typedef struct {
   const char *db;
   const char *host;
   int port;
   const char *uri;        /* from --uri, --uri-file or MTASK_URI; NULL: --host/--port */
   const char *uri_source; /* "--uri", "--uri-file" or "MTASK_URI", for messages */
   char *uri_owned;        /* what --uri-file read */
   const char *uri_file;
   const char *worker_id;
   bool replace; /* --replace: start in place of a live worker with this id */
   char **queues;      /* NULL-terminated; names split on spaces/commas */
   char **types;       /* --types: NULL-terminated allow-list; NULL: every plugin's type */
   char **plugin_dirs; /* NULL-terminated; NULL when none was given */
   int concurrency;
   double poll_interval; /* seconds */
   mt_wake_t wake;
   double safety_poll;   /* seconds */
   double prefetch_ms;
   bool once;
   bool archive;
   double lease;         /* seconds */
   double grace;         /* seconds */
   int max_attempts;
   double retry_backoff; /* seconds */
   mt_isolate_t isolate;
   mt_log_format_t log_format;
   mt_log_level_t log_level;
   bool help;
   bool version;
   bool check; /* --check: start up to the first claim, report, exit */
} mt_cli_t;

/* Parses argv (argv[0] is skipped), and reads MTASK_URI and MTASK_PLUGINS
 * from the environment and the --uri-file. On failure `error` says which flag and
 * why; the caller prints it with a hint to --help and exits 2. */
bool mt_cli_parse (mt_cli_t *cli, int argc, char *const *argv, bson_error_t *error);
void mt_cli_destroy (mt_cli_t *cli);
void mt_cli_usage (FILE *out);

#endif
