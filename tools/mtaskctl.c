/* mtaskctl: the common queries and writes on the tasks collection, for
 * people and scripts. Every command is a plain MongoDB operation; the README
 * shows the same queries for the mongo shell. */
#include <mtask/mtask.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
   const char *command;
   const char *id; /* show */
   const char *db, *host, *uri;
   int port;
   bool json, help, version;
   /* enqueue and ls */
   const char *queue, *type, *params, *status;
   double delay;
   bool has_delay, has_priority, has_max_attempts;
   int priority, max_attempts, limit;
   char given[16][24]; /* flags seen, to check them against the command */
   int n_given;
} ctl_t;

static const char *const statuses[] = {MT_STATUS_CREATED,
                                       MT_STATUS_WAITING,
                                       MT_STATUS_WORK_IN_PROGRESS,
                                       MT_STATUS_FINISHED,
                                       MT_STATUS_FAILED,
                                       MT_STATUS_CANCELLED};
#define N_STATUSES (sizeof statuses / sizeof statuses[0])

static void
usage (FILE *out, const char *command)
{
   if (command && !strcmp (command, "enqueue")) {
      fprintf (out,
               "Usage: mtaskctl --db NAME enqueue --queue Q --type T [--params JSON] [--delay SECS]\n"
               "                [--priority N] [--max-attempts N]\n"
               "\n"
               "Inserts a CREATED task and prints its id.\n"
               "  --queue Q          the queue (required)\n"
               "  --type T           the task type, i.e. the plugin that runs it (required)\n"
               "  --params JSON      the task's input, a JSON object (default {})\n"
               "  --delay SECS       not to be started before SECS seconds from now\n"
               "  --priority N       higher runs first (default 0)\n"
               "  --max-attempts N   the retry budget\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks enqueue --queue general --type echo --params '{\"a\": 1}'\n");
   } else if (command && !strcmp (command, "ls")) {
      fprintf (out,
               "Usage: mtaskctl --db NAME ls [--queue Q] [--status S] [--type T] [--limit N]\n"
               "\n"
               "Lists tasks, newest first.\n"
               "  --status S   one of CREATED, WAITING, WORK_IN_PROGRESS, FINISHED, FAILED, CANCELLED\n"
               "  --limit N    at most N tasks (default 20; 0 = all)\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks ls --status FAILED --limit 5\n");
   } else if (command && !strcmp (command, "show")) {
      fprintf (out,
               "Usage: mtaskctl --db NAME show ID\n"
               "\n"
               "Prints the whole task document as JSON. ID is the 24 hex digits of its _id.\n");
   } else if (command && !strcmp (command, "stats")) {
      fprintf (out,
               "Usage: mtaskctl --db NAME stats\n"
               "\n"
               "Counts tasks by queue and status, and the CREATED tasks by type: a type that\n"
               "keeps waiting may be one no running worker has a plugin for.\n");
   } else {
      fprintf (out,
               "Usage: mtaskctl [connection] COMMAND [flags]\n"
               "\n"
               "Commands:\n"
               "  enqueue   insert a task                     (mtaskctl enqueue --help)\n"
               "  ls        list tasks, newest first\n"
               "  show ID   one task as JSON\n"
               "  stats     counts by queue and status, and waiting tasks by type\n"
               "\n"
               "Connection (as mtask-worker's; before or after the command):\n"
               "  --db NAME      database holding the 'tasks' collection (required unless --uri names one)\n"
               "  --host HOST    default localhost\n"
               "  --port PORT    default 27017\n"
               "  --uri URI      a full MongoDB URI instead of --host/--port\n"
               "\n"
               "  --json         machine-readable output: relaxed extended JSON\n"
               "  --help         this help, or a command's with 'mtaskctl COMMAND --help'\n"
               "  --version      the version\n"
               "\n"
               "Exit status: 0 done; 1 the database failed or the task was not found; 2 bad usage.\n");
   }
}

static bool fail (const char *format, ...) BSON_GNUC_PRINTF (1, 2);

/* A usage error: message, hint, and the caller exits 2. */
static bool
fail (const char *format, ...)
{
   va_list args;

   fprintf (stderr, "mtaskctl: ");
   va_start (args, format);
   vfprintf (stderr, format, args);
   va_end (args);
   fprintf (stderr, "\nTry 'mtaskctl --help'.\n");
   return false;
}

static bool
parse_long (const char *flag, const char *value, long min, long max, int *out)
{
   char *end;
   long n;

   errno = 0;
   n = strtol (value, &end, 10);
   if (errno || end == value || *end || n < min || n > max) {
      return fail ("%s: '%s' is not a whole number from %ld to %ld", flag, value, min, max);
   }
   *out = (int) n;
   return true;
}

static bool
parse_args (ctl_t *ctl, int argc, char **argv)
{
   static const char *const valued[] = {
      "--db", "--host", "--port", "--uri", "--queue", "--type", "--params", "--status", "--delay", "--priority", "--max-attempts", "--limit", NULL};

   memset (ctl, 0, sizeof *ctl);
   ctl->host = "localhost";
   ctl->port = 27017;
   ctl->limit = 20;

   for (int i = 1; i < argc; i++) {
      const char *arg = argv[i], *value = NULL;
      char flag[24];
      bool needs_value = false;

      if (strncmp (arg, "--", 2) != 0) {
         if (!ctl->command) {
            ctl->command = arg;
         } else if (!strcmp (ctl->command, "show") && !ctl->id) {
            ctl->id = arg;
         } else {
            return fail ("unexpected argument '%s'", arg);
         }
         continue;
      }
      bson_strncpy (flag, arg, sizeof flag);
      if (strchr (flag, '=')) {
         *strchr (flag, '=') = '\0';
         value = strchr (arg, '=') + 1;
      }
      for (size_t k = 0; valued[k]; k++) {
         needs_value |= !strcmp (flag, valued[k]);
      }
      if (needs_value && !value) {
         if (i + 1 >= argc) {
            return fail ("%s needs a value", flag);
         }
         value = argv[++i];
      } else if (!needs_value && value) {
         return fail ("%s takes no value", flag);
      }
      if (ctl->n_given < 16) {
         bson_strncpy (ctl->given[ctl->n_given++], flag, sizeof ctl->given[0]);
      }

      if (!strcmp (flag, "--help")) {
         ctl->help = true;
      } else if (!strcmp (flag, "--version")) {
         ctl->version = true;
      } else if (!strcmp (flag, "--json")) {
         ctl->json = true;
      } else if (!strcmp (flag, "--db")) {
         ctl->db = value;
      } else if (!strcmp (flag, "--host")) {
         ctl->host = value;
      } else if (!strcmp (flag, "--port")) {
         if (!parse_long (flag, value, 1, 65535, &ctl->port)) {
            return false;
         }
      } else if (!strcmp (flag, "--uri")) {
         ctl->uri = value;
      } else if (!strcmp (flag, "--queue")) {
         ctl->queue = value;
      } else if (!strcmp (flag, "--type")) {
         ctl->type = value;
      } else if (!strcmp (flag, "--params")) {
         ctl->params = value;
      } else if (!strcmp (flag, "--status")) {
         bool known = false;

         for (size_t k = 0; k < N_STATUSES; k++) {
            known |= !strcmp (value, statuses[k]);
         }
         if (!known) {
            return fail ("--status: '%s' is not one of CREATED, WAITING, WORK_IN_PROGRESS, FINISHED, FAILED, CANCELLED", value);
         }
         ctl->status = value;
      } else if (!strcmp (flag, "--delay")) {
         char *end;

         ctl->delay = strtod (value, &end);
         if (end == value || *end || !(ctl->delay >= 0 && ctl->delay <= 366.0 * 86400)) {
            return fail ("--delay: '%s' is not a number of seconds from 0 to a year", value);
         }
         ctl->has_delay = true;
      } else if (!strcmp (flag, "--priority")) {
         if (!parse_long (flag, value, INT32_MIN, INT32_MAX, &ctl->priority)) {
            return false;
         }
         ctl->has_priority = true;
      } else if (!strcmp (flag, "--max-attempts")) {
         if (!parse_long (flag, value, 1, INT32_MAX, &ctl->max_attempts)) {
            return false;
         }
         ctl->has_max_attempts = true;
      } else if (!strcmp (flag, "--limit")) {
         if (!parse_long (flag, value, 0, INT32_MAX, &ctl->limit)) {
            return false;
         }
      } else {
         return fail ("unknown flag '%s'", flag);
      }
   }
   return true;
}

static bool
was_given (const ctl_t *ctl, const char *flag)
{
   for (int i = 0; i < ctl->n_given; i++) {
      if (!strcmp (ctl->given[i], flag)) {
         return true;
      }
   }
   return false;
}

/* Refuses flags the command does not take, so a typo is not ignored. */
static bool
check_flags (const ctl_t *ctl, const char *const *allowed)
{
   static const char *const common[] = {"--db", "--host", "--port", "--uri", "--json", "--help", "--version", NULL};

   for (int i = 0; i < ctl->n_given; i++) {
      bool ok = false;

      for (size_t k = 0; common[k]; k++) {
         ok |= !strcmp (ctl->given[i], common[k]);
      }
      for (size_t k = 0; allowed[k]; k++) {
         ok |= !strcmp (ctl->given[i], allowed[k]);
      }
      if (!ok) {
         return fail ("%s does not take %s", ctl->command, ctl->given[i]);
      }
   }
   return true;
}

static void
print_json (const bson_t *doc)
{
   char *json = bson_as_relaxed_extended_json (doc, NULL);

   printf ("%s\n", json);
   bson_free (json);
}

static void
format_date (const bson_t *doc, const char *key, char *out, size_t size)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      int64_t ms = bson_iter_date_time (&iter);
      time_t secs = (time_t) (ms / 1000);
      struct tm tm;

      gmtime_r (&secs, &tm);
      strftime (out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
   } else {
      bson_strncpy (out, "-", size);
   }
}

static const char *
field_str (const bson_t *doc, const char *key, char *buf, size_t size)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, doc, key)) {
      return "-";
   }
   switch (bson_iter_type (&iter)) {
   case BSON_TYPE_UTF8:
      return bson_iter_utf8 (&iter, NULL);
   case BSON_TYPE_OID:
      bson_oid_to_string (bson_iter_oid (&iter), buf);
      return buf;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
      snprintf (buf, size, "%" PRId64, bson_iter_as_int64 (&iter));
      return buf;
   case BSON_TYPE_NULL:
      return "-";
   default:
      snprintf (buf, size, "(%s)", "?");
      return buf;
   }
}

static int
cmd_enqueue (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t *params = NULL, opts = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id;
   char hex[25];
   int status = 1;

   if (!check_flags (ctl, (const char *const[]){"--queue", "--type", "--params", "--delay", "--priority", "--max-attempts", NULL})) {
      return 2;
   }
   if (!ctl->queue || !ctl->type) {
      fail ("enqueue needs --queue and --type");
      return 2;
   }
   if (ctl->params) {
      params = bson_new_from_json ((const uint8_t *) ctl->params, -1, &error);
      if (!params) {
         fail ("--params is not a JSON object: %s", error.message);
         return 2;
      }
   }
   if (ctl->has_delay) {
      BSON_APPEND_DOUBLE (&opts, "delay", ctl->delay);
   }
   if (ctl->has_priority) {
      BSON_APPEND_INT32 (&opts, "priority", ctl->priority);
   }
   if (ctl->has_max_attempts) {
      BSON_APPEND_INT32 (&opts, "max_attempts", ctl->max_attempts);
   }
   if (!mt_enqueue (client, db, ctl->queue, ctl->type, params, &opts, &id, &error)) {
      fprintf (stderr, "mtaskctl: cannot enqueue into %s.tasks: %s\n", db, error.message);
      goto cleanup;
   }
   bson_oid_to_string (&id, hex);
   if (ctl->json) {
      printf ("{ \"_id\" : { \"$oid\" : \"%s\" } }\n", hex);
   } else {
      printf ("%s\n", hex);
   }
   status = 0;

cleanup:
   if (params) {
      bson_destroy (params);
   }
   bson_destroy (&opts);
   return status;
}

static int
cmd_ls (const ctl_t *ctl, mongoc_collection_t *tasks, const char *db)
{
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_error_t error;
   int status = 0;

   if (!check_flags (ctl, (const char *const[]){"--queue", "--status", "--type", "--limit", NULL})) {
      return 2;
   }
   if (ctl->queue) {
      BSON_APPEND_UTF8 (&filter, "queue", ctl->queue);
   }
   if (ctl->status) {
      BSON_APPEND_UTF8 (&filter, "status", ctl->status);
   }
   if (ctl->type) {
      BSON_APPEND_UTF8 (&filter, "type", ctl->type);
   }
   BSON_APPEND_DOCUMENT_BEGIN (&opts, "sort", &sort);
   BSON_APPEND_INT32 (&sort, "created", -1);
   BSON_APPEND_INT32 (&sort, "_id", -1);
   bson_append_document_end (&opts, &sort);
   if (ctl->limit > 0) {
      BSON_APPEND_INT64 (&opts, "limit", ctl->limit);
   }

   cursor = mongoc_collection_find_with_opts (tasks, &filter, &opts, NULL);
   if (!ctl->json) {
      printf ("%-24s  %-12s  %-12s  %-16s  %8s  %-20s  %s\n", "ID", "QUEUE", "TYPE", "STATUS", "ATTEMPTS", "CREATED", "WORKER");
   }
   while (mongoc_cursor_next (cursor, &doc)) {
      char id[64], attempts[32], created[32];

      if (ctl->json) {
         print_json (doc);
         continue;
      }
      format_date (doc, "created", created, sizeof created);
      {
         char b1[64], b2[64], b3[64], b4[64];
         printf ("%-24s  %-12s  %-12s  %-16s  %8s  %-20s  %s\n",
                 field_str (doc, "_id", id, sizeof id),
                 field_str (doc, "queue", b1, sizeof b1),
                 field_str (doc, "type", b2, sizeof b2),
                 field_str (doc, "status", b3, sizeof b3),
                 field_str (doc, "attempts", attempts, sizeof attempts),
                 created,
                 field_str (doc, "worker_pid", b4, sizeof b4));
      }
   }
   if (mongoc_cursor_error (cursor, &error)) {
      fprintf (stderr, "mtaskctl: cannot list tasks in %s.tasks: %s\n", db, error.message);
      status = 1;
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   bson_destroy (&opts);
   return status;
}

static int
cmd_show (const ctl_t *ctl, mongoc_collection_t *tasks, const char *db)
{
   bson_t filter = BSON_INITIALIZER;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_error_t error;
   bson_oid_t oid;
   int status = 1;

   if (!check_flags (ctl, (const char *const[]){NULL})) {
      return 2;
   }
   if (!ctl->id) {
      fail ("show needs a task id");
      return 2;
   }
   if (!bson_oid_is_valid (ctl->id, strlen (ctl->id)) || strlen (ctl->id) != 24) {
      fail ("'%s' is not a task id: give the 24 hex digits of its _id", ctl->id);
      return 2;
   }
   bson_oid_init_from_string (&oid, ctl->id);
   BSON_APPEND_OID (&filter, "_id", &oid);
   cursor = mongoc_collection_find_with_opts (tasks, &filter, NULL, NULL);
   if (mongoc_cursor_next (cursor, &doc)) {
      print_json (doc);
      status = 0;
   } else if (mongoc_cursor_error (cursor, &error)) {
      fprintf (stderr, "mtaskctl: cannot read task %s from %s.tasks: %s\n", ctl->id, db, error.message);
   } else {
      fprintf (stderr, "mtaskctl: no task with id %s in %s.tasks\n", ctl->id, db);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   return status;
}

/* Runs an aggregation and hands each result to `each`. */
static bool
aggregate (mongoc_collection_t *tasks, const char *pipeline_json, void (*each) (const bson_t *, void *), void *data, bson_error_t *error)
{
   bson_t *pipeline = bson_new_from_json ((const uint8_t *) pipeline_json, -1, error);
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool ok;

   if (!pipeline) {
      return false;
   }
   cursor = mongoc_collection_aggregate (tasks, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      each (doc, data);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (pipeline);
   return ok;
}

typedef struct {
   char queue[128];
   int64_t counts[N_STATUSES + 1]; /* the last: any other status */
} queue_row_t;

typedef struct {
   queue_row_t rows[256];
   size_t n_rows;
   bson_t waiting; /* type -> count, in order */
} stats_t;

static void
on_queue_status (const bson_t *doc, void *data)
{
   stats_t *stats = data;
   char qbuf[128], sbuf[64];
   bson_iter_t iter;
   const char *queue = "-", *status = "-";
   int64_t n = 0;
   queue_row_t *row = NULL;
   size_t col = N_STATUSES;

   if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      bson_t sub;
      const uint8_t *buf;
      uint32_t len;

      bson_iter_document (&iter, &len, &buf);
      if (bson_init_static (&sub, buf, len)) {
         queue = field_str (&sub, "queue", qbuf, sizeof qbuf);
         status = field_str (&sub, "status", sbuf, sizeof sbuf);
      }
   }
   if (bson_iter_init_find (&iter, doc, "n")) {
      n = bson_iter_as_int64 (&iter);
   }
   for (size_t i = 0; i < stats->n_rows; i++) {
      if (!strcmp (stats->rows[i].queue, queue)) {
         row = &stats->rows[i];
      }
   }
   if (!row) {
      if (stats->n_rows == sizeof stats->rows / sizeof stats->rows[0]) {
         return;
      }
      row = &stats->rows[stats->n_rows++];
      memset (row, 0, sizeof *row);
      bson_strncpy (row->queue, queue, sizeof row->queue);
   }
   for (size_t k = 0; k < N_STATUSES; k++) {
      if (!strcmp (status, statuses[k])) {
         col = k;
      }
   }
   row->counts[col] += n;
}

static void
on_waiting_type (const bson_t *doc, void *data)
{
   stats_t *stats = data;
   char tbuf[128];
   bson_iter_t iter;
   int64_t n = 0;

   if (bson_iter_init_find (&iter, doc, "n")) {
      n = bson_iter_as_int64 (&iter);
   }
   BSON_APPEND_INT64 (&stats->waiting, field_str (doc, "_id", tbuf, sizeof tbuf), n);
}

static int
cmd_stats (const ctl_t *ctl, mongoc_collection_t *tasks, const char *db)
{
   stats_t *stats = bson_malloc0 (sizeof *stats);
   bson_error_t error;
   bson_iter_t iter;
   bool used[N_STATUSES + 1] = {false};
   int status = 1;

   bson_init (&stats->waiting);
   if (!check_flags (ctl, (const char *const[]){NULL})) {
      status = 2;
      goto cleanup;
   }
   if (!aggregate (tasks,
                   "[{\"$group\": {\"_id\": {\"queue\": \"$queue\", \"status\": \"$status\"}, \"n\": {\"$sum\": 1}}},"
                   " {\"$sort\": {\"_id.queue\": 1, \"_id.status\": 1}}]",
                   on_queue_status,
                   stats,
                   &error) ||
       !aggregate (tasks,
                   "[{\"$match\": {\"status\": \"CREATED\"}},"
                   " {\"$group\": {\"_id\": \"$type\", \"n\": {\"$sum\": 1}}}, {\"$sort\": {\"_id\": 1}}]",
                   on_waiting_type,
                   stats,
                   &error)) {
      fprintf (stderr, "mtaskctl: cannot count tasks in %s.tasks: %s\n", db, error.message);
      goto cleanup;
   }

   if (ctl->json) {
      bson_t out = BSON_INITIALIZER, queues, q;

      BSON_APPEND_DOCUMENT_BEGIN (&out, "queues", &queues);
      for (size_t i = 0; i < stats->n_rows; i++) {
         BSON_APPEND_DOCUMENT_BEGIN (&queues, stats->rows[i].queue, &q);
         for (size_t k = 0; k <= N_STATUSES; k++) {
            if (stats->rows[i].counts[k]) {
               BSON_APPEND_INT64 (&q, k < N_STATUSES ? statuses[k] : "OTHER", stats->rows[i].counts[k]);
            }
         }
         bson_append_document_end (&queues, &q);
      }
      bson_append_document_end (&out, &queues);
      BSON_APPEND_DOCUMENT (&out, "waiting_by_type", &stats->waiting);
      print_json (&out);
      bson_destroy (&out);
      status = 0;
      goto cleanup;
   }

   for (size_t i = 0; i < stats->n_rows; i++) {
      for (size_t k = 0; k <= N_STATUSES; k++) {
         used[k] |= stats->rows[i].counts[k] != 0;
      }
   }
   printf ("%-16s", "QUEUE");
   for (size_t k = 0; k <= N_STATUSES; k++) {
      if (used[k]) {
         printf ("  %16s", k < N_STATUSES ? statuses[k] : "OTHER");
      }
   }
   printf ("  %8s\n", "TOTAL");
   for (size_t i = 0; i < stats->n_rows; i++) {
      int64_t total = 0;

      printf ("%-16s", stats->rows[i].queue);
      for (size_t k = 0; k <= N_STATUSES; k++) {
         total += stats->rows[i].counts[k];
         if (used[k]) {
            printf ("  %16" PRId64, stats->rows[i].counts[k]);
         }
      }
      printf ("  %8" PRId64 "\n", total);
   }
   printf ("\nWAITING (CREATED) BY TYPE\n");
   if (bson_iter_init (&iter, &stats->waiting)) {
      bool any = false;

      while (bson_iter_next (&iter)) {
         printf ("%-24s  %8" PRId64 "\n", bson_iter_key (&iter), bson_iter_as_int64 (&iter));
         any = true;
      }
      if (!any) {
         printf ("(none)\n");
      }
   }
   status = 0;

cleanup:
   bson_destroy (&stats->waiting);
   bson_free (stats);
   return status;
}

static void
quiet_mongoc_log (mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
   (void) data;
   if (level <= MONGOC_LOG_LEVEL_WARNING) {
      fprintf (stderr, "mtaskctl: %s: %s\n", domain, message);
   }
}

int
main (int argc, char **argv)
{
   ctl_t ctl;
   mongoc_uri_t *uri = NULL;
   mongoc_client_t *client = NULL;
   mongoc_collection_t *tasks = NULL;
   bson_error_t error;
   const char *db;
   int status = 2;

   if (!parse_args (&ctl, argc, argv)) {
      return 2;
   }
   if (ctl.help) {
      usage (stdout, ctl.command);
      return 0;
   }
   if (ctl.version) {
      printf ("mtaskctl %s\n", MT_VERSION_STRING);
      return 0;
   }
   if (!ctl.command) {
      usage (stderr, NULL);
      return 2;
   }
   if (strcmp (ctl.command, "enqueue") && strcmp (ctl.command, "ls") && strcmp (ctl.command, "show") &&
       strcmp (ctl.command, "stats")) {
      fail ("unknown command '%s'; commands are enqueue, ls, show, stats", ctl.command);
      return 2;
   }
   if (ctl.uri && (was_given (&ctl, "--host") || was_given (&ctl, "--port"))) {
      fail ("give either --uri or --host/--port, not both");
      return 2;
   }

   mongoc_log_set_handler (quiet_mongoc_log, NULL);
   mongoc_init ();
   uri = mt_uri_new (ctl.uri, ctl.host, ctl.port, &error);
   if (!uri) {
      fail ("%s", error.message);
      goto cleanup;
   }
   db = ctl.db ? ctl.db : mongoc_uri_get_database (uri);
   if (!db) {
      fail ("--db is required: the database holding the 'tasks' collection");
      goto cleanup;
   }
   if (!mongoc_uri_has_option (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
      mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
   }
   client = mongoc_client_new_from_uri_with_error (uri, &error);
   if (!client) {
      fprintf (stderr, "mtaskctl: %s\n", error.message);
      status = 1;
      goto cleanup;
   }
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   mongoc_client_set_appname (client, "mtaskctl");
   tasks = mongoc_client_get_collection (client, db, "tasks");

   if (!strcmp (ctl.command, "enqueue")) {
      status = cmd_enqueue (&ctl, client, db);
   } else if (!strcmp (ctl.command, "ls")) {
      status = cmd_ls (&ctl, tasks, db);
   } else if (!strcmp (ctl.command, "show")) {
      status = cmd_show (&ctl, tasks, db);
   } else {
      status = cmd_stats (&ctl, tasks, db);
   }

cleanup:
   mongoc_collection_destroy (tasks);
   mongoc_client_destroy (client);
   mongoc_uri_destroy (uri);
   mongoc_cleanup ();
   return status;
}
