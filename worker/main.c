/* mtask-worker: the command-line face of mt_worker_t. It parses flags, owns
 * the log output and the signals, and leaves the work to libmtask. */
#include "check.h"
#include "cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef MT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

static mt_worker_t *the_worker;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static char log_worker_id[256];

#ifdef MT_HAVE_SYSTEMD
/* Under systemd (Type=notify): a stop signal also wakes this thread, which
 * tells the service manager STOPPING=1 (sd_notify is not for a signal
 * handler). Without NOTIFY_SOCKET sd_notify does nothing. */
static int notify_pipe[2] = {-1, -1};

static void *
notify_stopping (void *data)
{
   char c;

   (void) data;
   if (read (notify_pipe[0], &c, 1) == 1) {
      sd_notify (0, "STOPPING=1\nSTATUS=stopping: running tasks finish within --grace");
   }
   return NULL;
}
#endif

/* A child forked for --isolate fork must not inherit the log lock held by
 * another thread: take it around fork(). */
static void
before_fork (void)
{
   pthread_mutex_lock (&log_mutex);
}

static void
after_fork (void)
{
   pthread_mutex_unlock (&log_mutex);
}

static void
on_signal (int signo)
{
   (void) signo;
   mt_worker_stop (the_worker); /* a write(2) to the worker's pipe */
#ifdef MT_HAVE_SYSTEMD
   if (notify_pipe[1] >= 0) {
      ssize_t r = write (notify_pipe[1], "s", 1);
      (void) r;
   }
#endif
}

/* SIGTSTP: quiet, as Sidekiq's: claim nothing new, finish what runs, stay
 * up (the process is not suspended). */
static void
on_quiet_signal (int signo)
{
   (void) signo;
   mt_worker_quiet (the_worker); /* a write(2) to the worker's pipe */
}

#ifdef MT_COVERAGE
/* A coverage build (tools/test --coverage) writes its counters before a
 * crash ends the process (a plugin's SIGSEGV, in an isolated child too),
 * then dies of the same signal. Not async-signal-safe; test builds only. */
void __gcov_dump (void);

static void
on_fatal_signal (int signo)
{
   __gcov_dump ();
   raise (signo); /* SA_RESETHAND: the default action now */
}

static void
coverage_on_crash (void)
{
   struct sigaction sa;
   const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

   memset (&sa, 0, sizeof sa);
   sa.sa_handler = on_fatal_signal;
   sa.sa_flags = SA_RESETHAND;
   sigemptyset (&sa.sa_mask);
   for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
      sigaction (fatal[i], &sa, NULL);
   }
}
#endif

static void
timestamp (char *out, size_t size)
{
   struct timespec ts;
   struct tm tm;
   char base[24];

   clock_gettime (CLOCK_REALTIME, &ts);
   gmtime_r (&ts.tv_sec, &tm);
   strftime (base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
   snprintf (out, size, "%s.%03dZ", base, (int) (ts.tv_nsec / 1000000L) % 1000);
}

static void
log_text (mt_log_level_t level, const char *message, void *data)
{
   char ts[40], escaped[4096];

   (void) data;
   timestamp (ts, sizeof ts);
   /* The worker's own lines come escaped; the driver's may not: one call,
    * one line, whatever the message holds. */
   mt_log_escape (message, escaped, sizeof escaped);
   pthread_mutex_lock (&log_mutex);
   fprintf (stderr, "%s %-7s %s\n", ts, mt_log_level_name (level), escaped);
   fflush (stderr);
   pthread_mutex_unlock (&log_mutex);
}

static void
log_json (mt_log_level_t level, const char *message, void *data)
{
   const char *worker_id = data; /* log_worker_id */
   char ts[40];
   bson_t doc = BSON_INITIALIZER;
   char *json;
   const char *task_id, *type, *queue;
   int32_t attempt;

   timestamp (ts, sizeof ts);
   BSON_APPEND_UTF8 (&doc, "ts", ts);
   BSON_APPEND_UTF8 (&doc, "level", mt_log_level_name (level));

   BSON_APPEND_UTF8 (&doc, "worker", worker_id);
   if (mt_log_task (&task_id, &type, &queue, &attempt)) {
      /* A line of a task's run: its fields, for a log search by task. */
      BSON_APPEND_UTF8 (&doc, "task_id", task_id);
      BSON_APPEND_UTF8 (&doc, "type", type);
      BSON_APPEND_UTF8 (&doc, "queue", queue);
      BSON_APPEND_INT32 (&doc, "attempt", attempt);
   }
   BSON_APPEND_UTF8 (&doc, "msg", message);
   json = bson_as_relaxed_extended_json (&doc, NULL);
   pthread_mutex_lock (&log_mutex);
   fprintf (stderr, "%s\n", json);
   fflush (stderr);
   pthread_mutex_unlock (&log_mutex);
   bson_free (json);
   bson_destroy (&doc);
}

/* libmongoc's own messages join ours, at our level; its debug and trace
 * chatter only with --log-level debug. */
static void
on_mongoc_log (mongoc_log_level_t mongoc_level, const char *domain, const char *message, void *data)
{
   const mt_cli_t *cli = data;
   mt_log_level_t level;
   char line[2048];

   switch (mongoc_level) {
   case MONGOC_LOG_LEVEL_ERROR:
   case MONGOC_LOG_LEVEL_CRITICAL:
      level = MT_LOG_ERROR;
      break;
   case MONGOC_LOG_LEVEL_WARNING:
      level = MT_LOG_WARNING;
      break;
   case MONGOC_LOG_LEVEL_MESSAGE:
   case MONGOC_LOG_LEVEL_INFO:
      level = MT_LOG_INFO;
      break;
   default:
      level = MT_LOG_DEBUG;
      break;
   }
   if (level > cli->log_level || (level == MT_LOG_DEBUG && mongoc_level == MONGOC_LOG_LEVEL_TRACE)) {
      return;
   }
   snprintf (line, sizeof line, "%s: %s", domain, message);
   if (cli->log_format == MT_LOG_FORMAT_JSON) {
      log_json (level, line, log_worker_id);
   } else {
      log_text (level, line, NULL);
   }
}

/* Whether argv asks for JSON lines: read before the parse, so that even
 * its refusal comes as JSON. */
static bool
wants_json (int argc, char **argv)
{
   bool json = false;

   for (int i = 1; i < argc; i++) {
      if (!strcmp (argv[i], "--log-format=json") || (!strcmp (argv[i], "--log-format") && i + 1 < argc && !strcmp (argv[i + 1], "json"))) {
         json = true;
      } else if (!strncmp (argv[i], "--log-format", 12)) {
         json = false;
      }
   }
   return json;
}

/* A line that ends the program: in the log's format, with a hint (what
 * to do) when there is one. */
static void fatal (bool json, const char *hint, const char *format, ...) BSON_GNUC_PRINTF (3, 4);

static void
fatal (bool json, const char *hint, const char *format, ...)
{
   char message[2048];
   va_list args;

   va_start (args, format);
   bson_vsnprintf (message, sizeof message, format, args);
   va_end (args);
   if (json) {
      char ts[40];
      bson_t doc = BSON_INITIALIZER;
      char *line;

      timestamp (ts, sizeof ts);
      BSON_APPEND_UTF8 (&doc, "ts", ts);
      BSON_APPEND_UTF8 (&doc, "level", "error");
      BSON_APPEND_UTF8 (&doc, "worker", log_worker_id);
      BSON_APPEND_UTF8 (&doc, "msg", message);
      if (hint) {
         BSON_APPEND_UTF8 (&doc, "hint", hint);
      }
      line = bson_as_relaxed_extended_json (&doc, NULL);
      pthread_mutex_lock (&log_mutex);
      fprintf (stderr, "%s\n", line);
      fflush (stderr);
      pthread_mutex_unlock (&log_mutex);
      bson_free (line);
      bson_destroy (&doc);
   } else {
      char escaped[4096];

      mt_log_escape (message, escaped, sizeof escaped);
      fprintf (stderr, "mtask-worker: %s\n%s%s", escaped, hint ? hint : "", hint ? "\n" : "");
   }
}

int
main (int argc, char **argv)
{
   mt_cli_t cli;
   mt_worker_config_t config;
   bson_error_t error;
   struct sigaction sa;
   mongoc_uri_t *uri = NULL;
   int status = 0;
   bool json = wants_json (argc, argv);

   if (!mt_cli_parse (&cli, argc, argv, &error)) {
      fatal (json, "Try 'mtask-worker --help'.", "%s", error.message);
      mt_cli_destroy (&cli);
      return 2;
   }
   if (cli.help) {
      mt_cli_usage (stdout);
      mt_cli_destroy (&cli);
      return 0;
   }
   if (cli.version) {
      printf ("mtask-worker %s (plugin ABI %u)\n", MT_VERSION_STRING, MT_PLUGIN_ABI_VERSION);
      mt_cli_destroy (&cli);
      return 0;
   }

   pthread_atfork (before_fork, after_fork, after_fork);
   mongoc_log_set_handler (on_mongoc_log, &cli);
   mongoc_init ();
   mt_worker_config_init (&config);
   config.uri = cli.uri;
   config.host = cli.host;
   config.port = cli.port;
   config.db = cli.db;
   if (!config.db) {
      /* --uri mongodb://host/tasks names the database itself. */
      uri = mt_uri_new (cli.uri, NULL, 0, &error);
      if (!uri) {
         /* The message shows the URI without its user and password. */
         fatal (json, "Try 'mtask-worker --help'.", "%s: %s", cli.uri_source, error.message);
         status = 2;
         goto cleanup;
      }
      config.db = mongoc_uri_get_database (uri);
      if (!config.db) {
         fatal (json,
                "Try 'mtask-worker --help'.",
                "--db is required: the database holding the 'tasks' collection (the URI of %s names none)",
                cli.uri_source);
         status = 2;
         goto cleanup;
      }
   }
   config.queue_names = (const char *const *) cli.queues;
   config.types = (const char *const *) cli.types;
   config.worker_id = cli.worker_id;
   config.replace = cli.replace;
   config.plugin_dirs = (const char *const *) cli.plugin_dirs;
   config.concurrency = cli.concurrency;
   config.poll_interval_ms = (int64_t) (cli.poll_interval * 1000.0 + 0.5);
   if (config.poll_interval_ms < 1) {
      config.poll_interval_ms = 1;
   }
   config.once = cli.once;
   config.lease_ms = (int64_t) (cli.lease * 1000.0);
   config.grace_ms = (int64_t) (cli.grace * 1000.0);
   config.max_attempts = cli.max_attempts;
   config.retry_backoff_ms = (int64_t) (cli.retry_backoff * 1000.0);
   config.isolate = cli.isolate;
   config.wake = cli.wake;
   config.safety_poll_ms = (int64_t) (cli.safety_poll * 1000.0 + 0.5);
   config.prefetch_ms = (int64_t) (cli.prefetch_ms + 0.5);
   config.archive = cli.archive;
   config.log_level = cli.log_level;
   config.log_func = cli.log_format == MT_LOG_FORMAT_JSON ? log_json : log_text;
   config.log_data = log_worker_id;

   if (cli.worker_id) {
      /* Plugins may log from init, inside mt_worker_new: under this id. */
      bson_strncpy (log_worker_id, cli.worker_id, sizeof log_worker_id);
   }
   the_worker = mt_worker_new (&config, &error);
   if (!the_worker) {
      fatal (json, NULL, "%s", error.message);
      status = 2;
      goto cleanup;
   }
   /* The id is known only now: it may have been generated. */
   bson_strncpy (log_worker_id, mt_worker_id (the_worker), sizeof log_worker_id);
   if (cli.check) {
      char why[2048];

      status = mt_check_run (the_worker, &cli, config.db, why, sizeof why);
      if (status != 0) {
         fatal (json, NULL, "--check: %s", why);
      }
      goto cleanup;
   }

   memset (&sa, 0, sizeof sa);
   sa.sa_handler = on_signal;
   sigemptyset (&sa.sa_mask);
   sigaction (SIGTERM, &sa, NULL);
   sigaction (SIGINT, &sa, NULL);
   sa.sa_handler = on_quiet_signal;
   sigaction (SIGTSTP, &sa, NULL);
   signal (SIGPIPE, SIG_IGN);
#ifdef MT_COVERAGE
   coverage_on_crash ();
#endif
   if (cli.isolate == MT_ISOLATE_NONE) {
      /* A plugin's crash takes the process: say which task did it. */
      mt_worker_catch_crashes (the_worker, cli.log_format == MT_LOG_FORMAT_JSON);
   }

#ifdef MT_HAVE_SYSTEMD
   /* Ready once the configuration holds and the plugins are loaded; the
    * worker then connects, waiting for the database while it is down,
    * rather than failing the start of the unit. */
   if (pipe (notify_pipe) == 0) {
      pthread_t notifier;

      if (pthread_create (&notifier, NULL, notify_stopping, NULL) == 0) {
         pthread_detach (notifier);
      }
   }
   sd_notifyf (0, "READY=1\nSTATUS=serving as worker '%s'", log_worker_id);
#endif
   if (!mt_worker_run (the_worker, &error)) {
      fatal (json, NULL, "%s", error.message);
      status = 1;
   }
#ifdef MT_HAVE_SYSTEMD
   sd_notify (0, "STOPPING=1");
#endif
   if (mt_worker_abandoned (the_worker)) {
      /* Tasks given back are still inside process() on other threads,
       * which nothing can stop: end here, without running them down. */
      fflush (stdout);
      fflush (stderr);
#ifdef MT_COVERAGE
      __gcov_dump ();
#endif
      _exit (status);
   }

cleanup:
   mt_worker_destroy (the_worker);
   the_worker = NULL;
   mongoc_uri_destroy (uri);
   mt_cli_destroy (&cli);
   mongoc_cleanup ();
   return status;
}
