/* mtaskctl: the common queries and writes on the tasks collection, for
 * people and scripts. Every command is one plain MongoDB operation on
 * DB.tasks; the README shows the same queries for the mongo shell.
 *
 *   mtaskctl [connection flags] COMMAND [command flags]
 *
 * Exit status: 0 done; 1 the database failed or the task was not found;
 * 2 bad usage. */
#include <mtask/mtask.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTL_SERVER_SELECTION_TIMEOUT_MS 5000
#define CTL_MAX_DELAY 315576000.0 /* ten years, in seconds */

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

typedef enum {
   CMD_ENQUEUE = 1 << 0,
   CMD_LS = 1 << 1,
   CMD_SHOW = 1 << 2,
   CMD_STATS = 1 << 3,
   CMD_LOCKS = 1 << 4,
} ctl_cmd_t;

#define CMD_ALL (CMD_ENQUEUE | CMD_LS | CMD_SHOW | CMD_STATS | CMD_LOCKS)

static const struct {
   const char *name;
   ctl_cmd_t cmd;
} commands[] = {
   {"enqueue", CMD_ENQUEUE},
   {"ls", CMD_LS},
   {"show", CMD_SHOW},
   {"stats", CMD_STATS},
   {"locks", CMD_LOCKS},
};

typedef enum {
   F_DB,
   F_HOST,
   F_PORT,
   F_URI,
   F_JSON,
   F_HELP,
   F_VERSION,
   F_QUEUE,
   F_TYPE,
   F_PARAMS,
   F_DELAY,
   F_PRIORITY,
   F_MAX_ATTEMPTS,
   F_STATUS,
   F_LIMIT,
   N_FLAGS
} ctl_flag_id_t;

/* Every flag, whether it takes a value, and the commands that take it. */
static const struct {
   const char *name;
   bool takes_value;
   unsigned cmds;
} flags[N_FLAGS] = {
   [F_DB] = {"--db", true, CMD_ALL},
   [F_HOST] = {"--host", true, CMD_ALL},
   [F_PORT] = {"--port", true, CMD_ALL},
   [F_URI] = {"--uri", true, CMD_ALL},
   [F_JSON] = {"--json", false, CMD_ALL},
   [F_HELP] = {"--help", false, CMD_ALL},
   [F_VERSION] = {"--version", false, CMD_ALL},
   [F_QUEUE] = {"--queue", true, CMD_ENQUEUE | CMD_LS},
   [F_TYPE] = {"--type", true, CMD_ENQUEUE | CMD_LS},
   [F_PARAMS] = {"--params", true, CMD_ENQUEUE},
   [F_DELAY] = {"--delay", true, CMD_ENQUEUE},
   [F_PRIORITY] = {"--priority", true, CMD_ENQUEUE},
   [F_MAX_ATTEMPTS] = {"--max-attempts", true, CMD_ENQUEUE},
   [F_STATUS] = {"--status", true, CMD_LS},
   [F_LIMIT] = {"--limit", true, CMD_LS},
};

/* Statuses in lifecycle order: the order of the stats columns. */
static const char *const statuses[] = {MT_STATUS_WAITING,
                                       MT_STATUS_CREATED,
                                       MT_STATUS_WORK_IN_PROGRESS,
                                       MT_STATUS_FINISHED,
                                       MT_STATUS_FAILED,
                                       MT_STATUS_CANCELLED};
#define N_STATUSES (sizeof statuses / sizeof statuses[0])
#define STATUS_LIST "CREATED, WORK_IN_PROGRESS, FINISHED, FAILED, CANCELLED, WAITING"

typedef struct {
   const char *command_name; /* as typed */
   ctl_cmd_t cmd;            /* 0 until known */
   const char *id;           /* show's argument */
   bool seen[N_FLAGS];
   const char *value[N_FLAGS];

   /* Checked and converted by check_values(). */
   int port;
   double delay;
   int priority, max_attempts, limit;
   bson_t *params;
} ctl_t;

static void
usage (FILE *out, ctl_cmd_t cmd)
{
   switch (cmd) {
   case CMD_ENQUEUE:
      fprintf (out,
               "Usage: mtaskctl [connection] enqueue --queue Q --type T [--params JSON]\n"
               "                [--delay SECS] [--priority N] [--max-attempts N] [--json]\n"
               "\n"
               "Inserts a CREATED task into DB.tasks and prints its id (24 hex digits).\n"
               "\n"
               "  --queue Q          the queue a worker serves (required)\n"
               "                       --queue general\n"
               "  --type T           the task type: the plugin that runs it (required)\n"
               "                       --type echo\n"
               "  --params JSON      the task's input, a JSON object (default: {})\n"
               "                       --params '{\"to\": \"ana@example.com\", \"n\": 3}'\n"
               "  --delay SECS       not to be started before SECS seconds from now\n"
               "                       --delay 90   --delay 0.5\n"
               "  --priority N       higher runs first; may be negative (default: 0)\n"
               "                       --priority 10\n"
               "  --max-attempts N   the retry budget: claims before it stays FAILED\n"
               "                       --max-attempts 3\n"
               "  --json             print {\"_id\": {\"$oid\": ID}} instead of the bare id\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks enqueue --queue general --type echo --params '{\"a\": 1}'\n"
               "  id=$(mtaskctl --db tasks enqueue --queue reports --type pdf --delay 3600)\n");
      break;
   case CMD_LS:
      fprintf (out,
               "Usage: mtaskctl [connection] ls [--queue Q] [--status S] [--type T] [--limit N]\n"
               "                [--json]\n"
               "\n"
               "Lists tasks in DB.tasks, newest 'created' first: id, queue, type, status,\n"
               "attempts, created (UTC) and the worker_pid of the worker holding it.\n"
               "\n"
               "  --queue Q    only tasks of queue Q             --queue general\n"
               "  --status S   only tasks in status S, one of    --status FAILED\n"
               "               " STATUS_LIST "\n"
               "  --type T     only tasks of type T              --type echo\n"
               "  --limit N    at most N tasks; 0 = all (default: 20)   --limit 100\n"
               "  --json       one task document per line, relaxed extended JSON\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks ls --status FAILED --limit 5\n"
               "  mtaskctl --db tasks ls --queue general --json\n");
      break;
   case CMD_SHOW:
      fprintf (out,
               "Usage: mtaskctl [connection] show ID\n"
               "\n"
               "Prints the whole task document as relaxed extended JSON, on one line:\n"
               "params, result, error, status_message and every other field.\n"
               "ID is the 24 hex digits of its _id, as enqueue and ls print it.\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks show 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_LOCKS:
      fprintf (out,
               "Usage: mtaskctl [connection] locks [--json]\n"
               "\n"
               "Lists the account locks in DB.locks, by account: the task holding each one,\n"
               "its worker and attempt, since when, and whether that run is still going on.\n"
               "A 'stale' lock belongs to a run that is over: the next task to lock the\n"
               "account takes it over.\n"
               "\n"
               "  --json   one lock document per line, with \"state\": \"held\" or \"stale\"\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks locks\n");
      break;
   case CMD_STATS:
      fprintf (out,
               "Usage: mtaskctl [connection] stats [--json]\n"
               "\n"
               "Counts the tasks in DB.tasks by queue and status, then counts the CREATED\n"
               "tasks by type: a type that keeps waiting may be one that no running worker\n"
               "has a plugin for.\n"
               "\n"
               "  --json   one document: {\"queues\": {Q: {STATUS: n}}, \"waiting_by_type\": {T: n}}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks stats\n");
      break;
   default:
      fprintf (out,
               "Usage: mtaskctl [connection] COMMAND [flags]\n"
               "\n"
               "Queries and enqueues tasks in the MongoDB collection DB.tasks.\n"
               "\n"
               "Commands ('mtaskctl COMMAND --help' for each one's flags):\n"
               "  enqueue   insert a task and print its id\n"
               "  ls        list tasks, newest first\n"
               "  show ID   one task as JSON\n"
               "  stats     counts by queue and status, and waiting tasks by type\n"
               "  locks     account locks: who holds what, since when\n"
               "\n"
               "Connection (as mtask-worker's; before or after the command):\n"
               "  --db NAME    database holding the 'tasks' collection; required unless\n"
               "               --uri names one                  --db tasks\n"
               "  --host HOST  MongoDB host (default: localhost)  --host db1.example\n"
               "  --port PORT  MongoDB port (default: 27017)      --port 27018\n"
               "  --uri URI    a full MongoDB URI instead of --host/--port, for replica sets,\n"
               "               authentication and TLS   --uri 'mongodb://db1,db2/tasks?replicaSet=rs0'\n"
               "\n"
               "Output:\n"
               "  --json       machine-readable: relaxed extended JSON, one document a line\n"
               "  --help       this help, or a command's: mtaskctl enqueue --help\n"
               "  --version    print the version\n"
               "\n"
               "Exit status: 0 done; 1 the database failed or the task was not found;\n"
               "2 bad usage.\n"
               "\n"
               "Examples:\n"
               "  mtaskctl --db tasks enqueue --queue general --type echo --params '{\"a\": 1}'\n"
               "  mtaskctl --db tasks ls --status FAILED\n"
               "  mtaskctl --host db1.example --db tasks stats --json\n");
      break;
   }
}

static bool fail (const char *format, ...) BSON_GNUC_PRINTF (1, 2);

/* A usage error: the message and the hint. The caller exits 2. */
static bool
fail (const char *format, ...)
{
   va_list args;

   fflush (stdout);
   fprintf (stderr, "mtaskctl: ");
   va_start (args, format);
   vfprintf (stderr, format, args);
   va_end (args);
   fprintf (stderr, "\nTry 'mtaskctl --help'.\n");
   return false;
}

static bool
parse_int (ctl_flag_id_t flag, const char *value, long min, long max, int *out)
{
   char *end;
   long n;

   errno = 0;
   n = strtol (value, &end, 10);
   if (errno || end == value || *end || n < min || n > max) {
      return fail ("%s: '%s' is not a whole number from %ld to %ld", flags[flag].name, value, min, max);
   }
   *out = (int) n;
   return true;
}

/* Splits argv into the command, show's id and the flags with their values.
 * Values are checked later, once the command is known. */
static bool
parse_args (ctl_t *ctl, int argc, char **argv)
{
   for (int i = 1; i < argc; i++) {
      const char *arg = argv[i], *eq, *value = NULL;
      size_t len;
      int f;

      if (arg[0] != '-' || !arg[1]) {
         if (!ctl->command_name) {
            ctl->command_name = arg;
         } else if (!strcmp (ctl->command_name, "show") && !ctl->id) {
            ctl->id = arg;
         } else {
            return fail ("unexpected argument '%s'", arg);
         }
         continue;
      }
      if (arg[1] != '-') {
         return fail ("unknown flag '%s'; flags are long, like --help", arg);
      }

      /* --flag value or --flag=value */
      eq = strchr (arg, '=');
      len = eq ? (size_t) (eq - arg) : strlen (arg);
      for (f = 0; f < N_FLAGS; f++) {
         if (strlen (flags[f].name) == len && !strncmp (arg, flags[f].name, len)) {
            break;
         }
      }
      if (f == N_FLAGS) {
         return fail ("unknown flag '%.*s'", (int) len, arg);
      }
      if (!flags[f].takes_value) {
         if (eq) {
            return fail ("%s takes no value, got '%s'", flags[f].name, eq + 1);
         }
      } else if (eq) {
         value = eq + 1;
      } else if (i + 1 < argc && !(argv[i + 1][0] == '-' && argv[i + 1][1] == '-' && argv[i + 1][2])) {
         value = argv[++i];
      } else {
         return fail ("%s needs a value", flags[f].name);
      }
      ctl->seen[f] = true;
      ctl->value[f] = value; /* the last one wins, as with the worker */
   }
   return true;
}

/* The command is known and takes every flag given; converts the values. */
static bool
check_values (ctl_t *ctl)
{
   static const struct {
      ctl_flag_id_t flag;
      const char *what;
   } named[] = {
      {F_DB, "a database name"},
      {F_HOST, "a host name"},
      {F_URI, "a MongoDB URI"},
      {F_QUEUE, "a queue name"},
      {F_TYPE, "a task type"},
   };
   bson_json_reader_t *reader = NULL;
   bson_error_t error;
   bson_t extra = BSON_INITIALIZER;
   bool ok = false;

   for (int f = 0; f < N_FLAGS; f++) {
      if (ctl->seen[f] && !(flags[f].cmds & ctl->cmd)) {
         fail ("%s does not take %s", ctl->command_name, flags[f].name);
         goto cleanup;
      }
   }
   for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
      if (ctl->seen[named[k].flag] && !ctl->value[named[k].flag][0]) {
         fail ("%s needs %s, got ''", flags[named[k].flag].name, named[k].what);
         goto cleanup;
      }
   }
   if (ctl->seen[F_URI] && (ctl->seen[F_HOST] || ctl->seen[F_PORT])) {
      fail ("give either --uri or --host/--port, not both");
      goto cleanup;
   }
   if (ctl->seen[F_PORT] && !parse_int (F_PORT, ctl->value[F_PORT], 1, 65535, &ctl->port)) {
      goto cleanup;
   }
   if (ctl->seen[F_LIMIT] && !parse_int (F_LIMIT, ctl->value[F_LIMIT], 0, INT32_MAX, &ctl->limit)) {
      goto cleanup;
   }
   if (ctl->seen[F_PRIORITY] && !parse_int (F_PRIORITY, ctl->value[F_PRIORITY], INT32_MIN, INT32_MAX, &ctl->priority)) {
      goto cleanup;
   }
   if (ctl->seen[F_MAX_ATTEMPTS] &&
       !parse_int (F_MAX_ATTEMPTS, ctl->value[F_MAX_ATTEMPTS], 1, INT32_MAX, &ctl->max_attempts)) {
      goto cleanup;
   }
   if (ctl->seen[F_DELAY]) {
      const char *value = ctl->value[F_DELAY];
      char *end;

      errno = 0;
      ctl->delay = strtod (value, &end);
      if (errno || end == value || *end || !isfinite (ctl->delay) || ctl->delay < 0 || ctl->delay > CTL_MAX_DELAY) {
         fail ("--delay: '%s' is not a number of seconds from 0 to %.0f (ten years)", value, CTL_MAX_DELAY);
         goto cleanup;
      }
   }
   if (ctl->seen[F_STATUS]) {
      bool known = false;

      for (size_t k = 0; k < N_STATUSES; k++) {
         known |= !strcmp (ctl->value[F_STATUS], statuses[k]);
      }
      if (!known) {
         fail ("--status: '%s' is not one of " STATUS_LIST, ctl->value[F_STATUS]);
         goto cleanup;
      }
   }
   if (ctl->seen[F_PARAMS]) {
      const char *json = ctl->value[F_PARAMS];

      /* libbson also reads a top-level array, and only the first of several
       * documents; neither is a task's params. */
      json += strspn (json, " \t\r\n");
      if (*json != '{') {
         fail ("--params is not a JSON object: '%s' does not start with '{'; e.g. --params '{\"a\": 1}'",
               ctl->value[F_PARAMS]);
         goto cleanup;
      }
      reader = bson_json_data_reader_new (false, 0);
      bson_json_data_reader_ingest (reader, (const uint8_t *) json, strlen (json));
      ctl->params = bson_new ();
      if (bson_json_reader_read (reader, ctl->params, &error) != 1) {
         fail ("--params is not a JSON object: %s", error.message);
         goto cleanup;
      }
      switch (bson_json_reader_read (reader, &extra, &error)) {
      case 0:
         break;
      case -1:
         fail ("--params is not a JSON object: after the object: %s", error.message);
         goto cleanup;
      default:
         fail ("--params is not a JSON object: it holds more than one");
         goto cleanup;
      }
   }
   if (ctl->cmd == CMD_ENQUEUE && (!ctl->seen[F_QUEUE] || !ctl->seen[F_TYPE])) {
      fail ("enqueue needs --queue and --type, e.g. enqueue --queue general --type echo");
      goto cleanup;
   }
   if (ctl->cmd == CMD_SHOW) {
      if (!ctl->id) {
         fail ("show needs a task id: mtaskctl show ID");
         goto cleanup;
      }
      if (strlen (ctl->id) != 24 || !bson_oid_is_valid (ctl->id, 24)) {
         fail ("'%s' is not a task id: give the 24 hex digits of its _id", ctl->id);
         goto cleanup;
      }
   }
   ok = true;

cleanup:
   bson_json_reader_destroy (reader);
   bson_destroy (&extra);
   return ok;
}

static void
print_json (const bson_t *doc)
{
   char *json = bson_as_relaxed_extended_json (doc, NULL);

   printf ("%s\n", json);
   bson_free (json);
}

/* A date field as ISO-8601 UTC to the second, or "-". */
static const char *
format_date (const bson_t *doc, const char *key, char *out, size_t size)
{
   bson_iter_t iter;
   struct tm tm;
   int64_t ms;
   time_t secs;

   if (!bson_iter_init_find (&iter, doc, key) || !BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      return "-";
   }
   ms = bson_iter_date_time (&iter);
   secs = (time_t) (ms / 1000 - (ms % 1000 < 0)); /* floor, for dates before 1970 */
   if (!gmtime_r (&secs, &tm) || !strftime (out, size, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
      snprintf (out, size, "%" PRId64 "ms", ms);
   }
   return out;
}

/* A scalar field as text; "-" when missing or null. */
static const char *
format_field (const bson_t *doc, const char *key, char *buf, size_t size)
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
      snprintf (buf, size, "%" PRId64, bson_iter_as_int64 (&iter));
      return buf;
   case BSON_TYPE_DOUBLE:
      snprintf (buf, size, "%g", bson_iter_double (&iter));
      return buf;
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
      return "-";
   default:
      return "?";
   }
}

/* Whether the run a lock names is still going on: its task is
 * WORK_IN_PROGRESS with that worker and attempt. */
static bool
lock_held (mongoc_collection_t *tasks, const bson_t *lock, bool *held, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bson_iter_t iter;
   int64_t n;

   if (!bson_iter_init_find (&iter, lock, "task")) {
      *held = false;
      bson_destroy (&filter);
      return true;
   }
   BSON_APPEND_VALUE (&filter, "_id", bson_iter_value (&iter));
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   if (bson_iter_init_find (&iter, lock, "worker_pid")) {
      BSON_APPEND_VALUE (&filter, "worker_pid", bson_iter_value (&iter));
   }
   if (bson_iter_init_find (&iter, lock, "attempt")) {
      BSON_APPEND_VALUE (&filter, "attempts", bson_iter_value (&iter));
   }
   n = mongoc_collection_count_documents (tasks, &filter, NULL, NULL, NULL, error);
   bson_destroy (&filter);
   *held = n > 0;
   return n >= 0;
}

static int
cmd_locks (const ctl_t *ctl, mongoc_client_t *client, mongoc_collection_t *tasks, const char *db)
{
   mongoc_collection_t *locks = mongoc_client_get_collection (client, db, MT_LOCKS_COLLECTION);
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
   mongoc_cursor_t *cursor;
   const bson_t *lock;
   bson_error_t error;
   bool header = false;
   int status = 0;

   BSON_APPEND_DOCUMENT_BEGIN (&opts, "sort", &sort);
   BSON_APPEND_INT32 (&sort, "_id", 1);
   bson_append_document_end (&opts, &sort);
   cursor = mongoc_collection_find_with_opts (locks, &filter, &opts, NULL);
   while (mongoc_cursor_next (cursor, &lock)) {
      char account[64], task[64], worker[128], attempt[32], since[40];
      bool held;

      if (!lock_held (tasks, lock, &held, &error)) {
         fprintf (stderr, "mtaskctl: cannot check the tasks holding locks in %s.tasks: %s\n", db, error.message);
         status = EXIT_RUNTIME;
         goto cleanup;
      }
      if (ctl->seen[F_JSON]) {
         bson_t out;

         bson_copy_to (lock, &out);
         BSON_APPEND_UTF8 (&out, "state", held ? "held" : "stale");
         print_json (&out);
         bson_destroy (&out);
         continue;
      }
      if (!header) {
         printf ("%-20s  %-24s  %-24s  %7s  %-20s  %s\n", "ACCOUNT", "TASK", "WORKER", "ATTEMPT", "SINCE", "STATE");
         header = true;
      }
      printf ("%-20s  %-24s  %-24s  %7s  %-20s  %s\n",
              format_field (lock, "_id", account, sizeof account),
              format_field (lock, "task", task, sizeof task),
              format_field (lock, "worker_pid", worker, sizeof worker),
              format_field (lock, "attempt", attempt, sizeof attempt),
              format_date (lock, "acquired", since, sizeof since),
              held ? "held" : "stale");
   }
   if (mongoc_cursor_error (cursor, &error)) {
      fprintf (stderr, "mtaskctl: cannot list locks in %s.locks: %s\n", db, error.message);
      status = EXIT_RUNTIME;
   } else if (!header && !ctl->seen[F_JSON]) {
      printf ("no account locks in %s.locks\n", db);
   }

cleanup:
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (locks);
   bson_destroy (&filter);
   bson_destroy (&opts);
   return status;
}

static int
cmd_enqueue (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t opts = BSON_INITIALIZER, out = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id;
   char hex[25];
   int status = EXIT_RUNTIME;

   if (ctl->seen[F_DELAY]) {
      BSON_APPEND_DOUBLE (&opts, "delay", ctl->delay);
   }
   if (ctl->seen[F_PRIORITY]) {
      BSON_APPEND_INT32 (&opts, "priority", ctl->priority);
   }
   if (ctl->seen[F_MAX_ATTEMPTS]) {
      BSON_APPEND_INT32 (&opts, "max_attempts", ctl->max_attempts);
   }
   if (!mt_enqueue (client, db, ctl->value[F_QUEUE], ctl->value[F_TYPE], ctl->params, &opts, &id, &error)) {
      if (error.domain == MT_ERROR_CONFIG) {
         fail ("cannot enqueue: %s", error.message);
         status = EXIT_USAGE;
      } else {
         fprintf (stderr, "mtaskctl: cannot enqueue into %s.%s: %s\n", db, MT_TASKS_COLLECTION, error.message);
      }
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      BSON_APPEND_OID (&out, "_id", &id);
      print_json (&out);
   } else {
      bson_oid_to_string (&id, hex);
      printf ("%s\n", hex);
   }
   status = 0;

cleanup:
   bson_destroy (&opts);
   bson_destroy (&out);
   return status;
}

static void
ls_header (void)
{
   printf ("%-24s  %-12s  %-12s  %-16s  %8s  %-20s  %s\n",
           "ID",
           "QUEUE",
           "TYPE",
           "STATUS",
           "ATTEMPTS",
           "CREATED",
           "WORKER_PID");
}

static int
cmd_ls (const ctl_t *ctl, mongoc_collection_t *tasks, const char *db)
{
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_error_t error;
   bool header = false;
   int status = 0;

   if (ctl->seen[F_QUEUE]) {
      BSON_APPEND_UTF8 (&filter, "queue", ctl->value[F_QUEUE]);
   }
   if (ctl->seen[F_STATUS]) {
      BSON_APPEND_UTF8 (&filter, "status", ctl->value[F_STATUS]);
   }
   if (ctl->seen[F_TYPE]) {
      BSON_APPEND_UTF8 (&filter, "type", ctl->value[F_TYPE]);
   }
   BSON_APPEND_DOCUMENT_BEGIN (&opts, "sort", &sort);
   BSON_APPEND_INT32 (&sort, "created", -1);
   BSON_APPEND_INT32 (&sort, "_id", -1);
   bson_append_document_end (&opts, &sort);
   if (ctl->limit > 0) {
      BSON_APPEND_INT64 (&opts, "limit", ctl->limit);
   }

   cursor = mongoc_collection_find_with_opts (tasks, &filter, &opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      char id[32], queue[32], type[32], st[32], attempts[32], created[64], worker[32];

      if (ctl->seen[F_JSON]) {
         print_json (doc);
         continue;
      }
      if (!header) {
         ls_header ();
         header = true;
      }
      printf ("%-24s  %-12s  %-12s  %-16s  %8s  %-20s  %s\n",
              format_field (doc, "_id", id, sizeof id),
              format_field (doc, "queue", queue, sizeof queue),
              format_field (doc, "type", type, sizeof type),
              format_field (doc, "status", st, sizeof st),
              format_field (doc, "attempts", attempts, sizeof attempts),
              format_date (doc, "created", created, sizeof created),
              format_field (doc, "worker_pid", worker, sizeof worker));
   }
   if (mongoc_cursor_error (cursor, &error)) {
      fflush (stdout);
      fprintf (stderr, "mtaskctl: cannot list tasks in %s.%s: %s\n", db, MT_TASKS_COLLECTION, error.message);
      status = EXIT_RUNTIME;
   } else if (!header && !ctl->seen[F_JSON]) {
      ls_header (); /* an empty table still says what it would hold */
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   bson_destroy (&opts);
   return status;
}

static int
cmd_show (const ctl_t *ctl, mongoc_collection_t *tasks, const char *db)
{
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_error_t error;
   bson_oid_t oid;
   int status = EXIT_RUNTIME;

   bson_oid_init_from_string (&oid, ctl->id);
   BSON_APPEND_OID (&filter, "_id", &oid);
   BSON_APPEND_INT64 (&opts, "limit", 1);
   cursor = mongoc_collection_find_with_opts (tasks, &filter, &opts, NULL);
   if (mongoc_cursor_next (cursor, &doc)) {
      print_json (doc);
      status = 0;
   } else if (mongoc_cursor_error (cursor, &error)) {
      fprintf (stderr, "mtaskctl: cannot read task %s from %s.%s: %s\n", ctl->id, db, MT_TASKS_COLLECTION, error.message);
   } else {
      fprintf (stderr, "mtaskctl: no task with id %s in %s.%s\n", ctl->id, db, MT_TASKS_COLLECTION);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   bson_destroy (&opts);
   return status;
}

/* One $group result: a queue and a status (or, for waiting_by_type, a type
 * and no status) and its count. */
typedef struct {
   char *key;
   char *status;
   int64_t n;
} count_t;

typedef struct {
   count_t *items;
   size_t len, cap;
} counts_t;

/* A grouped-by value as a label: a string as is; a missing field "(none)". */
static char *
group_label (const bson_t *doc, const char *key)
{
   bson_iter_t iter;
   char buf[64];
   const char *text;

   if (!doc || !bson_iter_init_find (&iter, doc, key)) {
      return bson_strdup ("(none)");
   }
   text = format_field (doc, key, buf, sizeof buf);
   if (!strcmp (text, "-")) {
      text = "(none)";
   } else if (!strcmp (text, "?")) {
      text = "(not a string)";
   }
   return bson_strdup (text);
}

/* The index of a status in lifecycle order; unknown statuses after. */
static size_t
status_rank (const char *status)
{
   for (size_t k = 0; k < N_STATUSES; k++) {
      if (!strcmp (status, statuses[k])) {
         return k;
      }
   }
   return N_STATUSES;
}

static int
compare_statuses (const char *a, const char *b)
{
   size_t ra = status_rank (a), rb = status_rank (b);

   return ra != rb ? (ra < rb ? -1 : 1) : strcmp (a, b);
}

static int
compare_counts (const void *pa, const void *pb)
{
   const count_t *a = pa, *b = pb;
   int c = strcmp (a->key, b->key);

   if (c || !a->status || !b->status) {
      return c;
   }
   return compare_statuses (a->status, b->status);
}

static int
compare_status_ptrs (const void *pa, const void *pb)
{
   return compare_statuses (*(char *const *) pa, *(char *const *) pb);
}

/* Runs `pipeline_json` on the tasks collection and appends each result to
 * `counts`; with `by_status`, _id is {queue, status}, else the type. */
static bool
count_by (mongoc_collection_t *tasks, const char *pipeline_json, bool by_status, counts_t *counts, bson_error_t *error)
{
   bson_t *pipeline = bson_new_from_json ((const uint8_t *) pipeline_json, -1, error);
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_iter_t iter;
   bool ok;

   BSON_ASSERT (pipeline);
   cursor = mongoc_collection_aggregate (tasks, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      count_t *item;

      if (counts->len == counts->cap) {
         counts->cap = counts->cap ? 2 * counts->cap : 16;
         counts->items = bson_realloc (counts->items, counts->cap * sizeof *counts->items);
      }
      item = &counts->items[counts->len++];
      memset (item, 0, sizeof *item);
      if (by_status) {
         bson_t id;
         bool have_id = false;

         if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
            const uint8_t *data;
            uint32_t len;

            bson_iter_document (&iter, &len, &data);
            have_id = bson_init_static (&id, data, len);
         }
         item->key = group_label (have_id ? &id : NULL, "queue");
         item->status = group_label (have_id ? &id : NULL, "status");
      } else {
         item->key = group_label (doc, "_id");
      }
      if (bson_iter_init_find (&iter, doc, "n") && BSON_ITER_HOLDS_NUMBER (&iter)) {
         item->n = bson_iter_as_int64 (&iter);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (pipeline);
   if (ok) {
      qsort (counts->items, counts->len, sizeof *counts->items, compare_counts);
   }
   return ok;
}

static void
counts_destroy (counts_t *counts)
{
   for (size_t i = 0; i < counts->len; i++) {
      bson_free (counts->items[i].key);
      bson_free (counts->items[i].status);
   }
   bson_free (counts->items);
}

static void
stats_json (const counts_t *by_queue, const counts_t *by_type)
{
   bson_t out = BSON_INITIALIZER, queues, queue, types;

   BSON_APPEND_DOCUMENT_BEGIN (&out, "queues", &queues);
   for (size_t i = 0, j; i < by_queue->len; i = j) {
      BSON_APPEND_DOCUMENT_BEGIN (&queues, by_queue->items[i].key, &queue);
      for (j = i; j < by_queue->len && !strcmp (by_queue->items[j].key, by_queue->items[i].key); j++) {
         BSON_APPEND_INT64 (&queue, by_queue->items[j].status, by_queue->items[j].n);
      }
      bson_append_document_end (&queues, &queue);
   }
   bson_append_document_end (&out, &queues);
   BSON_APPEND_DOCUMENT_BEGIN (&out, "waiting_by_type", &types);
   for (size_t i = 0; i < by_type->len; i++) {
      BSON_APPEND_INT64 (&types, by_type->items[i].key, by_type->items[i].n);
   }
   bson_append_document_end (&out, &types);
   print_json (&out);
   bson_destroy (&out);
}

static void
stats_table (const counts_t *by_queue, const counts_t *by_type)
{
   /* Columns: every status that occurs, in lifecycle order. */
   const char **cols = bson_malloc0 ((by_queue->len + 1) * sizeof *cols);
   int64_t *col_totals = bson_malloc0 ((by_queue->len + 1) * sizeof *col_totals);
   size_t n_cols = 0, width = strlen ("QUEUE");
   int64_t grand_total = 0;

   for (size_t i = 0; i < by_queue->len; i++) {
      bool found = false;

      for (size_t c = 0; c < n_cols; c++) {
         found |= !strcmp (cols[c], by_queue->items[i].status);
      }
      if (!found) {
         cols[n_cols++] = by_queue->items[i].status;
      }
      width = BSON_MAX (width, strlen (by_queue->items[i].key));
   }
   qsort ((void *) cols, n_cols, sizeof *cols, compare_status_ptrs);

   printf ("%-*s", (int) width, "QUEUE");
   for (size_t c = 0; c < n_cols; c++) {
      printf ("  %*s", (int) BSON_MAX (strlen (cols[c]), 8), cols[c]);
   }
   printf ("  %8s\n", "TOTAL");
   for (size_t i = 0, end; i < by_queue->len; i = end) {
      int64_t total = 0;

      /* Items are sorted by queue: [i, end) is one queue's row. */
      for (end = i; end < by_queue->len && !strcmp (by_queue->items[end].key, by_queue->items[i].key); end++) {
      }
      printf ("%-*s", (int) width, by_queue->items[i].key);
      for (size_t c = 0; c < n_cols; c++) {
         int64_t n = 0;

         for (size_t j = i; j < end; j++) {
            if (!strcmp (by_queue->items[j].status, cols[c])) {
               n += by_queue->items[j].n;
            }
         }
         col_totals[c] += n;
         total += n;
         printf ("  %*" PRId64, (int) BSON_MAX (strlen (cols[c]), 8), n);
      }
      grand_total += total;
      printf ("  %8" PRId64 "\n", total);
   }
   if (by_queue->len) {
      printf ("%-*s", (int) width, "TOTAL");
      for (size_t c = 0; c < n_cols; c++) {
         printf ("  %*" PRId64, (int) BSON_MAX (strlen (cols[c]), 8), col_totals[c]);
      }
      printf ("  %8" PRId64 "\n", grand_total);
   } else {
      printf ("(no tasks)\n");
   }

   width = strlen ("TYPE");
   for (size_t i = 0; i < by_type->len; i++) {
      width = BSON_MAX (width, strlen (by_type->items[i].key));
   }
   printf ("\nWAITING (CREATED) BY TYPE\n");
   printf ("%-*s  %8s\n", (int) width, "TYPE", "CREATED");
   for (size_t i = 0; i < by_type->len; i++) {
      printf ("%-*s  %8" PRId64 "\n", (int) width, by_type->items[i].key, by_type->items[i].n);
   }
   if (!by_type->len) {
      printf ("(none)\n");
   }
   bson_free ((void *) cols);
   bson_free (col_totals);
}

static int
cmd_stats (const ctl_t *ctl, mongoc_collection_t *tasks, const char *db)
{
   counts_t by_queue = {0}, by_type = {0};
   bson_error_t error;
   int status = EXIT_RUNTIME;

   if (!count_by (tasks,
                  "[{\"$group\": {\"_id\": {\"queue\": \"$queue\", \"status\": \"$status\"}, \"n\": {\"$sum\": 1}}}]",
                  true,
                  &by_queue,
                  &error) ||
       !count_by (tasks,
                  "[{\"$match\": {\"status\": \"" MT_STATUS_CREATED "\"}},"
                  " {\"$group\": {\"_id\": \"$type\", \"n\": {\"$sum\": 1}}}]",
                  false,
                  &by_type,
                  &error)) {
      fprintf (stderr, "mtaskctl: cannot count tasks in %s.%s: %s\n", db, MT_TASKS_COLLECTION, error.message);
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      stats_json (&by_queue, &by_type);
   } else {
      stats_table (&by_queue, &by_type);
   }
   status = 0;

cleanup:
   counts_destroy (&by_queue);
   counts_destroy (&by_type);
   return status;
}

/* The driver's own warnings and errors, prefixed; nothing else. */
static void
log_handler (mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
   (void) data;
   if (level <= MONGOC_LOG_LEVEL_WARNING) {
      fprintf (stderr, "mtaskctl: %s: %s\n", domain, message);
   }
}

int
main (int argc, char **argv)
{
   ctl_t ctl = {.limit = 20};
   mongoc_uri_t *uri = NULL;
   mongoc_client_t *client = NULL;
   mongoc_collection_t *tasks = NULL;
   bson_error_t error;
   const char *db;
   bool initialized = false;
   int status = EXIT_USAGE;

   if (!parse_args (&ctl, argc, argv)) {
      return EXIT_USAGE;
   }
   for (size_t k = 0; ctl.command_name && k < sizeof commands / sizeof commands[0]; k++) {
      if (!strcmp (ctl.command_name, commands[k].name)) {
         ctl.cmd = commands[k].cmd;
      }
   }
   if (ctl.seen[F_HELP]) {
      usage (stdout, ctl.cmd);
      return 0;
   }
   if (ctl.seen[F_VERSION]) {
      printf ("mtaskctl %s\n", MT_VERSION_STRING);
      return 0;
   }
   if (!ctl.command_name) {
      fail ("give a command: enqueue, ls, show or stats");
      return EXIT_USAGE;
   }
   if (!ctl.cmd) {
      fail ("unknown command '%s'; commands are enqueue, ls, show, stats", ctl.command_name);
      return EXIT_USAGE;
   }
   if (!check_values (&ctl)) {
      goto cleanup;
   }

   mongoc_log_set_handler (log_handler, NULL);
   mongoc_init ();
   initialized = true;
   uri = mt_uri_new (ctl.value[F_URI], ctl.value[F_HOST], ctl.port, &error);
   if (!uri) {
      fail ("%s", error.message);
      goto cleanup;
   }
   db = ctl.seen[F_DB] ? ctl.value[F_DB] : mongoc_uri_get_database (uri);
   if (!db || !db[0]) {
      fail ("--db is required: the database holding the 'tasks' collection, e.g. --db tasks");
      goto cleanup;
   }
   if (!mongoc_uri_has_option (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
      mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, CTL_SERVER_SELECTION_TIMEOUT_MS);
   }
   client = mongoc_client_new_from_uri_with_error (uri, &error);
   if (!client) {
      fprintf (stderr, "mtaskctl: cannot connect to MongoDB: %s\n", error.message);
      status = EXIT_RUNTIME;
      goto cleanup;
   }
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   mongoc_client_set_appname (client, "mtaskctl");
   tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);

   switch (ctl.cmd) {
   case CMD_ENQUEUE:
      status = cmd_enqueue (&ctl, client, db);
      break;
   case CMD_LS:
      status = cmd_ls (&ctl, tasks, db);
      break;
   case CMD_SHOW:
      status = cmd_show (&ctl, tasks, db);
      break;
   case CMD_LOCKS:
      status = cmd_locks (&ctl, client, tasks, db);
      break;
   case CMD_STATS:
   default:
      status = cmd_stats (&ctl, tasks, db);
      break;
   }
   if (fflush (stdout) != 0 || ferror (stdout)) {
      fprintf (stderr, "mtaskctl: cannot write the output: %s\n", strerror (errno));
      status = EXIT_RUNTIME;
   }

cleanup:
   mongoc_collection_destroy (tasks);
   mongoc_client_destroy (client);
   mongoc_uri_destroy (uri);
   if (initialized) {
      mongoc_cleanup ();
   }
   bson_destroy (ctl.params);
   return status;
}
