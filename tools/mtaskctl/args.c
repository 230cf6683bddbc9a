/* The command line: flags and their values, durations, times, and what
 * goes together. Everything here is checked before mtaskctl connects. */
#include "ctl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const ctl_flag_t ctl_flags[N_FLAGS] = {
   [F_DB] = {"--db", true, CMD_ALL},
   [F_HOST] = {"--host", true, CMD_ALL},
   [F_PORT] = {"--port", true, CMD_ALL},
   [F_URI] = {"--uri", true, CMD_ALL},
   [F_URI_FILE] = {"--uri-file", true, CMD_ALL},
   [F_JSON] = {"--json", false, CMD_ALL},
   [F_HELP] = {"--help", false, CMD_ALL},
   [F_VERSION] = {"--version", false, CMD_ALL},
   [F_QUEUE] = {"--queue", true, CMD_ENQUEUE | CMD_LS | CMD_ACTIONS | CMD_GROUP_ADD | CMD_SYNC_STAGE | CMD_SCHEDULES},
   [F_TYPE] = {"--type", true, CMD_ENQUEUE | CMD_LS | CMD_ACTIONS | CMD_GROUP_ADD},
   [F_PARAMS] = {"--params", true, CMD_ENQUEUE | CMD_GROUP_ADD | CMD_SYNC_STAGE},
   [F_DELAY] = {"--delay", true, CMD_ENQUEUE | CMD_GROUP_ADD},
   [F_PRIORITY] = {"--priority", true, CMD_ENQUEUE | CMD_GROUP_ADD},
   [F_MAX_ATTEMPTS] = {"--max-attempts", true, CMD_ENQUEUE | CMD_GROUP_ADD},
   [F_STATUS] = {"--status", true, CMD_LS | CMD_PURGE | CMD_ACTIONS},
   [F_LIMIT] = {"--limit", true, CMD_LS},
   [F_DESCRIPTION] = {"--description", true, CMD_GROUP_CREATE},
   [F_KEEP] = {"--keep", true, CMD_GROUP_CREATE},
   [F_STAGE] = {"--stage", true, CMD_GROUP_ADD},
   [F_PURGE] = {"--purge", false, CMD_GROUP_CLEAN},
   [F_YES] = {"--yes", false, CMD_GROUP_CLEAN},
   [F_NAME] = {"--name", true, CMD_SYNC_STAGE},
   [F_CALLABLE] = {"--callable", true, CMD_SYNC_STAGE},
   [F_TASK] = {"--task", true, CMD_SYNC_STAGE},
   [F_NEXT] = {"--next", true, CMD_SYNC_STAGE},
   [F_START_STAGE] = {"--start-stage", true, CMD_SYNC_CREATE},
   [F_NOW] = {"--now", false, CMD_SYNC_START},
   [F_SIZE] = {"--size", true, CMD_POOL_SET},
   [F_TIMEOUT] = {"--timeout", true, CMD_POOL_SET},
   [F_RUN_AT] = {"--run-at", true, CMD_ENQUEUE},
   [F_REPEAT] = {"--repeat", true, CMD_ENQUEUE},
   [F_REPEAT_UNTIL] = {"--repeat-until", true, CMD_ENQUEUE},
   [F_CRON] = {"--cron", true, CMD_ENQUEUE},
   [F_TIMEZONE] = {"--timezone", true, CMD_ENQUEUE},
   [F_UNIQUE_KEY] = {"--unique-key", true, CMD_ENQUEUE},
   [F_VERBOSE_NAME] = {"--verbose-name", true, CMD_ENQUEUE},
   [F_CREATOR] = {"--creator", true, CMD_ENQUEUE},
   [F_OLDER_THAN] = {"--older-than", true, CMD_PURGE},
   [F_FROM] = {"--from", true, CMD_PURGE},
   [F_DRY_RUN] = {"--dry-run", false, CMD_PURGE | CMD_ACTIONS},
   [F_COLLECTION] = {"--collection", true, CMD_RETENTION},
   [F_TTL] = {"--ttl", true, CMD_RETENTION},
   [F_OFF] = {"--off", false, CMD_RETENTION},
   [F_SINCE] = {"--since", true, CMD_ACTIONS},
   [F_FORCE] = {"--force", false, CMD_DELETE},
   [F_ARCHIVE] = {"--archive", false, CMD_LS | CMD_STATS},
   [F_GRACE] = {"--grace", true, CMD_WORKER_STOP},
};

/* The statuses mtask sets, for ls --status. */
static const char *const statuses[] = {MT_STATUS_WAITING,
                                       MT_STATUS_CREATED,
                                       MT_STATUS_WORK_IN_PROGRESS,
                                       MT_STATUS_FINISHED,
                                       MT_STATUS_FAILED,
                                       MT_STATUS_CANCELLED};
#define N_STATUSES (sizeof statuses / sizeof statuses[0])

/* The statuses of a task that has ended: all that purge may delete. */
static const char *const ended_statuses[] = {MT_STATUS_FINISHED, MT_STATUS_FAILED, MT_STATUS_CANCELLED};
#define N_ENDED (sizeof ended_statuses / sizeof ended_statuses[0])

char ctl_help_hint[64] = "mtaskctl --help";

bool
ctl_fail (const char *format, ...)
{
   va_list args;

   fflush (stdout);
   fprintf (stderr, "mtaskctl: ");
   va_start (args, format);
   vfprintf (stderr, format, args);
   va_end (args);
   fprintf (stderr, "\nTry '%s'.\n", ctl_help_hint);
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
      return ctl_fail ("%s: '%s' is not a whole number from %ld to %ld", ctl_flags[flag].name, value, min, max);
   }
   *out = (int) n;
   return true;
}

bool
ctl_parse_args (ctl_t *ctl, int argc, char **argv)
{
   for (int i = 1; i < argc; i++) {
      const char *arg = argv[i], *eq, *value = NULL;
      size_t len;
      int f;

      if (arg[0] != '-' || !arg[1]) {
         size_t n = 0;

         while (n < 3 && ctl->words[n]) {
            n++;
         }
         if (n < 3) {
            ctl->words[n] = arg;
         } else if (!ctl->extra) {
            ctl->extra = arg;
         }
         continue;
      }
      if (arg[1] != '-') {
         return ctl_fail ("unknown flag '%s'; flags are long, like --help", arg);
      }

      /* --flag value or --flag=value */
      eq = strchr (arg, '=');
      len = eq ? (size_t) (eq - arg) : strlen (arg);
      for (f = 0; f < N_FLAGS; f++) {
         if (strlen (ctl_flags[f].name) == len && !strncmp (arg, ctl_flags[f].name, len)) {
            break;
         }
      }
      if (f == N_FLAGS) {
         return ctl_fail ("unknown flag '%.*s'", (int) len, arg);
      }
      if (!ctl_flags[f].takes_value) {
         if (eq) {
            return ctl_fail ("%s takes no value, got '%s'", ctl_flags[f].name, eq + 1);
         }
      } else if (eq) {
         value = eq + 1;
      } else if (i + 1 < argc && !(argv[i + 1][0] == '-' && argv[i + 1][1] == '-' && argv[i + 1][2])) {
         value = argv[++i];
      } else {
         return ctl_fail ("%s needs a value", ctl_flags[f].name);
      }
      ctl->seen[f] = true;
      ctl->value[f] = value; /* the last one wins, as with the worker */
   }
   return true;
}

/* A stage id given to a flag: 24 hex digits. */
static bool
parse_stage_id (ctl_flag_id_t flag, const char *value, bson_oid_t *out)
{
   if (strlen (value) != 24 || !bson_oid_is_valid (value, 24)) {
      return ctl_fail ("%s: '%s' is not a stage id: give the 24 hex digits that 'sync stage' printed", ctl_flags[flag].name, value);
   }
   bson_oid_init_from_string (out, value);
   return true;
}

/* A number of seconds from 0 to `max`, which `max_text` names. */
static bool
parse_seconds_to (ctl_flag_id_t flag, const char *value, double max, const char *max_text, double *out)
{
   char *end;

   errno = 0;
   *out = strtod (value, &end);
   if (errno || end == value || *end || !isfinite (*out) || *out < 0 || *out > max) {
      return ctl_fail ("%s: '%s' is not a number of seconds from 0 to %.0f (%s)", ctl_flags[flag].name, value, max, max_text);
   }
   return true;
}

/* A number of seconds from 0 to ten years. */
static bool
parse_seconds (ctl_flag_id_t flag, const char *value, double *out)
{
   return parse_seconds_to (flag, value, CTL_MAX_DELAY, "ten years", out);
}

/* A duration: seconds ("90", "0.5") or numbers with units s, m, h, d
 * ("90s", "15m", "2h", "1d", "1h30m"), within [min, max]; `range` says
 * what that is. The one parser of --delay, --repeat, --older-than, --ttl. */
static bool
parse_duration (ctl_flag_id_t flag, const char *value, double min, double max, const char *range, double *out)
{
   const char *p = value;
   char *end;
   double total = 0;

   errno = 0;
   *out = strtod (value, &end);
   if (end != value && !*end && !errno) {
      p = NULL; /* plain seconds */
   }
   while (p && *p) {
      double n = 0, scale = 1;
      bool any = false;

      for (; *p >= '0' && *p <= '9'; p++, any = true) {
         n = n * 10 + (*p - '0');
      }
      if (*p == '.') {
         for (p++; *p >= '0' && *p <= '9'; p++, any = true) {
            scale /= 10;
            n += (*p - '0') * scale;
         }
      }
      if (!any) {
         break;
      }
      switch (*p++) {
      case 's':
         total += n;
         continue;
      case 'm':
         total += n * 60;
         continue;
      case 'h':
         total += n * 3600;
         continue;
      case 'd':
         total += n * 86400;
         continue;
      default:
         p = value; /* a number without a unit, or an unknown unit */
         break;
      }
      break;
   }
   if (p && (p == value || *p)) {
      return ctl_fail ("%s: '%s' is not a duration: give seconds (90) or a number with a unit s, m, h or d "
                   "(90s, 15m, 2h, 1d, 1h30m)",
                   ctl_flags[flag].name,
                   value);
   }
   if (p) {
      *out = total;
   }
   if (!isfinite (*out) || !(*out >= min && *out <= max)) {
      return ctl_fail ("%s: '%s' is out of range: give %s", ctl_flags[flag].name, value, range);
   }
   return true;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar. */
static int64_t
days_from_civil (int64_t y, int m, int d)
{
   int64_t era, yoe, doy, doe;

   y -= m <= 2;
   era = (y >= 0 ? y : y - 399) / 400;
   yoe = y - era * 400;
   doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
   doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
   return era * 146097 + doe - 719468;
}

/* `n` decimal digits at *p, into *out; advances *p. */
static bool
take_digits (const char **p, int n, int *out)
{
   *out = 0;
   for (int i = 0; i < n; i++, (*p)++) {
      if (**p < '0' || **p > '9') {
         return false;
      }
      *out = *out * 10 + (**p - '0');
   }
   return true;
}

/* An ISO 8601 time with a zone, into milliseconds since the epoch:
 * 2026-11-23T10:00:00Z, 2026-11-23T10:00:00.250Z, 2026-11-23T11:00:00+01:00
 * (also +0100, +01, seconds left out, a space or 't' for the 'T'). */
static bool
parse_time (ctl_flag_id_t flag, const char *value, int64_t *out)
{
   static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
   const char *p = value;
   int year, month, day, hour, minute, second = 0, ms = 0, off_h = 0, off_m = 0, sign = 0;
   bool leap;

   if (!take_digits (&p, 4, &year) || *p++ != '-' || !take_digits (&p, 2, &month) || *p++ != '-' ||
       !take_digits (&p, 2, &day)) {
      goto bad;
   }
   if (*p != 'T' && *p != 't' && *p != ' ') {
      goto bad;
   }
   p++;
   if (!take_digits (&p, 2, &hour) || *p++ != ':' || !take_digits (&p, 2, &minute)) {
      goto bad;
   }
   if (*p == ':') {
      p++;
      if (!take_digits (&p, 2, &second)) {
         goto bad;
      }
      if (*p == '.' || *p == ',') {
         int scale = 100;

         if (p[1] < '0' || p[1] > '9') {
            goto bad;
         }
         for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) {
            ms += (*p - '0') * scale; /* beyond milliseconds, scale is 0 */
         }
      }
   }
   if (*p == 'Z' || *p == 'z') {
      p++;
   } else if (*p == '+' || *p == '-') {
      sign = *p++ == '-' ? -1 : 1;
      if (!take_digits (&p, 2, &off_h)) {
         goto bad;
      }
      if (*p == ':') {
         p++;
         if (!take_digits (&p, 2, &off_m)) {
            goto bad;
         }
      } else if (*p >= '0' && *p <= '9' && !take_digits (&p, 2, &off_m)) {
         goto bad;
      }
      if (off_h > 23 || off_m > 59) {
         return ctl_fail ("%s: '%s' has an offset out of range: give -23:59 to +23:59", ctl_flags[flag].name, value);
      }
   } else if (!*p) {
      return ctl_fail ("%s: '%s' has no time zone: add Z for UTC or an offset such as +01:00, "
                   "e.g. %sZ",
                   ctl_flags[flag].name,
                   value,
                   value);
   }
   if (*p) {
      goto bad;
   }
   leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
   if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] + (month == 2 && leap)) {
      return ctl_fail ("%s: '%s' is not a date of the calendar", ctl_flags[flag].name, value);
   }
   if (hour > 23 || minute > 59 || second > 59) {
      return ctl_fail ("%s: '%s' is not a time of day: hours 00 to 23, minutes and seconds 00 to 59",
                   ctl_flags[flag].name,
                   value);
   }
   *out = ((days_from_civil (year, month, day) * 24 + hour) * 60 + minute) * 60000 + second * 1000 + ms -
          sign * (off_h * 60 + off_m) * 60000;
   return true;

bad:
   return ctl_fail ("%s: '%s' is not a time: give ISO 8601 with a zone, e.g. 2026-11-23T10:00:00Z or "
                "2026-11-23T11:00:00+01:00",
                ctl_flags[flag].name,
                value);
}

/* purge --status: a comma-separated list of ended statuses, into
 * ctl->ended (each once, NULL-terminated). */
static bool
parse_ended_statuses (ctl_t *ctl, const char *value)
{
   size_t n = 0;

   for (const char *p = value;; p++) {
      size_t len = strcspn (p, ",");
      size_t k;
      bool again = false;

      for (k = 0; k < N_ENDED && (strlen (ended_statuses[k]) != len || strncmp (p, ended_statuses[k], len)); k++) {
      }
      if (k == N_ENDED) {
         for (size_t live = 0; live < N_STATUSES; live++) {
            if (strlen (statuses[live]) == len && !strncmp (p, statuses[live], len)) {
               return ctl_fail ("--status: %s is a live status, and live tasks are never purged; give one or more of "
                            ENDED_LIST ", comma-separated",
                            statuses[live]);
            }
         }
         return ctl_fail ("--status: '%.*s' is not one of " ENDED_LIST "; e.g. --status FAILED,CANCELLED", (int) len, p);
      }
      for (size_t i = 0; i < n; i++) {
         again |= ctl->ended[i] == ended_statuses[k]; /* given twice: once is enough */
      }
      if (!again) {
         ctl->ended[n++] = ended_statuses[k];
      }
      p += len;
      if (!*p) {
         break;
      }
   }
   return true;
}

/* The flags of enqueue that go together, or do not. */
static bool
check_enqueue_flags (const ctl_t *ctl)
{
   if (ctl->seen[F_DELAY] && ctl->seen[F_RUN_AT]) {
      return ctl_fail ("give either --delay or --run-at, not both: --delay counts from now, --run-at is a time");
   }
   if (ctl->seen[F_REPEAT] && ctl->seen[F_CRON]) {
      return ctl_fail ("give either --repeat (every so long) or --cron (at the times of an expression), not both");
   }
   if (ctl->seen[F_TIMEZONE] && !ctl->seen[F_CRON]) {
      return ctl_fail ("--timezone is the time zone of --cron's times; it needs --cron, e.g. --cron '0 6 * * *' "
                   "--timezone Europe/Berlin");
   }
   if (ctl->seen[F_REPEAT_UNTIL] && !ctl->seen[F_REPEAT] && !ctl->seen[F_CRON]) {
      return ctl_fail ("--repeat-until ends a repeating task; it needs --repeat or --cron");
   }
   return true;
}

bool
ctl_check_values (ctl_t *ctl)
{
   static const struct {
      ctl_flag_id_t flag;
      const char *what;
   } named[] = {
      {F_DB, "a database name"},
      {F_HOST, "a host name"},
      {F_URI, "a MongoDB URI"},
      {F_URI_FILE, "a file name"},
      {F_QUEUE, "a queue name"},
      {F_TYPE, "a task type"},
      {F_NAME, "a stage name"},
      {F_CALLABLE, "a task type"},
      {F_TASK, "a task type"},
      {F_CRON, "a cron expression"},
      {F_TIMEZONE, "a time zone"},
      {F_UNIQUE_KEY, "a key"},
   };
   bson_json_reader_t *reader = NULL;
   bson_error_t error;
   bson_t extra = BSON_INITIALIZER;
   bool ok = false;

   for (int f = 0; f < N_FLAGS; f++) {
      if (ctl->seen[f] && !(ctl_flags[f].cmds & ctl->cmd)) {
         ctl_fail ("%s does not take %s", ctl->command_name, ctl_flags[f].name);
         goto cleanup;
      }
   }
   for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
      if (ctl->seen[named[k].flag] && !ctl->value[named[k].flag][0]) {
         ctl_fail ("%s needs %s, got ''", ctl_flags[named[k].flag].name, named[k].what);
         goto cleanup;
      }
   }
   if (ctl->seen[F_URI] && ctl->seen[F_URI_FILE]) {
      ctl_fail ("give either --uri or --uri-file, not both");
      goto cleanup;
   }
   if ((ctl->seen[F_URI] || ctl->seen[F_URI_FILE]) && (ctl->seen[F_HOST] || ctl->seen[F_PORT])) {
      ctl_fail ("give either %s or --host/--port, not both", ctl->seen[F_URI] ? "--uri" : "--uri-file");
      goto cleanup;
   }
   if (ctl->seen[F_QUEUE] && (ctl->cmd & (CMD_ENQUEUE | CMD_GROUP_ADD | CMD_SYNC_STAGE)) &&
       !mt_queue_name_check (ctl->value[F_QUEUE], &error)) {
      /* The library refuses it too; here it is a usage error, before connecting. */
      ctl_fail ("--queue: %s", error.message);
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
   if (ctl->seen[F_STAGE] && !parse_int (F_STAGE, ctl->value[F_STAGE], 1, INT32_MAX, &ctl->stage)) {
      goto cleanup;
   }
   if (ctl->seen[F_DELAY] &&
       !parse_duration (F_DELAY, ctl->value[F_DELAY], 0, CTL_MAX_DELAY, "0 to ten years (315576000 s)", &ctl->delay)) {
      goto cleanup;
   }
   if (ctl->seen[F_REPEAT] &&
       !parse_duration (F_REPEAT, ctl->value[F_REPEAT], 1, CTL_MAX_DELAY, "1 second to ten years (315576000 s)", &ctl->repeat)) {
      goto cleanup;
   }
   if (ctl->seen[F_OLDER_THAN] && !parse_duration (F_OLDER_THAN,
                                                   ctl->value[F_OLDER_THAN],
                                                   0,
                                                   CTL_MAX_AGE,
                                                   "0 to a hundred years (3155760000 s)",
                                                   &ctl->older_than)) {
      goto cleanup;
   }
   if (ctl->seen[F_SINCE]) {
      double since;

      if (!parse_duration (F_SINCE, ctl->value[F_SINCE], 0, CTL_MAX_AGE, "0 to a hundred years (3155760000 s)", &since)) {
         goto cleanup;
      }
      ctl->since = (int64_t) since;
   }
   if (ctl->seen[F_TTL]) {
      double ttl;

      if (!parse_duration (F_TTL, ctl->value[F_TTL], 0, INT32_MAX, "0 to 68 years (2147483647 s, MongoDB's limit)", &ttl)) {
         goto cleanup;
      }
      if (ttl != (double) (int64_t) ttl) {
         ctl_fail ("--ttl: '%s' is not a whole number of seconds", ctl->value[F_TTL]);
         goto cleanup;
      }
      ctl->ttl = (int64_t) ttl;
   }
   if (ctl->seen[F_RUN_AT] && !parse_time (F_RUN_AT, ctl->value[F_RUN_AT], &ctl->run_at)) {
      goto cleanup;
   }
   if (ctl->seen[F_REPEAT_UNTIL] && !parse_time (F_REPEAT_UNTIL, ctl->value[F_REPEAT_UNTIL], &ctl->repeat_until)) {
      goto cleanup;
   }
   if (ctl->seen[F_KEEP] && !parse_seconds (F_KEEP, ctl->value[F_KEEP], &ctl->keep)) {
      goto cleanup;
   }
   if (ctl->seen[F_SIZE] && !parse_int (F_SIZE, ctl->value[F_SIZE], 1, CTL_MAX_POOL_SIZE, &ctl->size)) {
      goto cleanup;
   }
   if (ctl->seen[F_TIMEOUT] &&
       !parse_seconds_to (F_TIMEOUT, ctl->value[F_TIMEOUT], CTL_MAX_TIMEOUT, "366 days", &ctl->timeout)) {
      goto cleanup;
   }
   if (ctl->seen[F_GRACE] && !parse_seconds_to (F_GRACE, ctl->value[F_GRACE], 86400, "a day", &ctl->grace)) {
      goto cleanup;
   }
   if (ctl->seen[F_NEXT] && !parse_stage_id (F_NEXT, ctl->value[F_NEXT], &ctl->next)) {
      goto cleanup;
   }
   if (ctl->seen[F_START_STAGE] && !parse_stage_id (F_START_STAGE, ctl->value[F_START_STAGE], &ctl->start_stage)) {
      goto cleanup;
   }
   if (ctl->seen[F_STATUS] && ctl->cmd == CMD_PURGE) {
      if (!parse_ended_statuses (ctl, ctl->value[F_STATUS])) {
         goto cleanup;
      }
   } else if (ctl->seen[F_STATUS]) {
      bool known = false;

      for (size_t k = 0; k < N_STATUSES; k++) {
         known |= !strcmp (ctl->value[F_STATUS], statuses[k]);
      }
      if (!known) {
         ctl_fail ("--status: '%s' is not one of " STATUS_LIST, ctl->value[F_STATUS]);
         goto cleanup;
      }
   }
   if (ctl->seen[F_PARAMS]) {
      const char *json = ctl->value[F_PARAMS];

      /* libbson also reads a top-level array, and only the first of several
       * documents; neither is a task's params. */
      json += strspn (json, " \t\r\n");
      if (*json != '{') {
         ctl_fail ("--params is not a JSON object: '%s' does not start with '{'; e.g. --params '{\"a\": 1}'",
               ctl->value[F_PARAMS]);
         goto cleanup;
      }
      reader = bson_json_data_reader_new (false, 0);
      bson_json_data_reader_ingest (reader, (const uint8_t *) json, strlen (json));
      ctl->params = bson_new ();
      if (bson_json_reader_read (reader, ctl->params, &error) != 1) {
         ctl_fail ("--params is not a JSON object: %s", error.message);
         goto cleanup;
      }
      switch (bson_json_reader_read (reader, &extra, &error)) {
      case 0:
         break;
      case -1:
         ctl_fail ("--params is not a JSON object: after the object: %s", error.message);
         goto cleanup;
      default:
         ctl_fail ("--params is not a JSON object: it holds more than one");
         goto cleanup;
      }
   }
   if (ctl->cmd == CMD_ENQUEUE && (!ctl->seen[F_QUEUE] || !ctl->seen[F_TYPE])) {
      ctl_fail ("enqueue needs --queue and --type, e.g. enqueue --queue general --type echo");
      goto cleanup;
   }
   if (ctl->cmd == CMD_ENQUEUE && !check_enqueue_flags (ctl)) {
      goto cleanup;
   }
   if (ctl->seen[F_FROM]) {
      if (!strcmp (ctl->value[F_FROM], MT_TASKS_COLLECTION) || !strcmp (ctl->value[F_FROM], MT_COMPLETED_COLLECTION)) {
         ctl->from = ctl->value[F_FROM];
      } else if (strcmp (ctl->value[F_FROM], "both")) {
         ctl_fail ("--from: '%s' is not tasks, completed_tasks or both", ctl->value[F_FROM]);
         goto cleanup;
      }
   }
   if (ctl->cmd == CMD_PURGE && !ctl->seen[F_OLDER_THAN]) {
      ctl_fail ("purge needs --older-than: how long ago an ended task must have finished, e.g. purge --older-than 30d");
      goto cleanup;
   }
   ctl->collection = MT_COMPLETED_COLLECTION;
   if (ctl->seen[F_COLLECTION]) {
      if (strcmp (ctl->value[F_COLLECTION], MT_TASKS_COLLECTION) && strcmp (ctl->value[F_COLLECTION], MT_COMPLETED_COLLECTION)) {
         ctl_fail ("--collection: '%s' is not tasks or completed_tasks", ctl->value[F_COLLECTION]);
         goto cleanup;
      }
      ctl->collection = ctl->value[F_COLLECTION];
   }
   if (ctl->cmd == CMD_RETENTION && ctl->seen[F_TTL] == ctl->seen[F_OFF]) {
      ctl_fail ("retention needs either --ttl DURATION (keep ended tasks that long) or --off (drop the TTL index)%s",
            ctl->seen[F_TTL] ? ", not both" : ", e.g. retention --ttl 30d");
      goto cleanup;
   }
   if (ctl->cmd == CMD_GROUP_ADD && (!ctl->seen[F_STAGE] || !ctl->seen[F_QUEUE] || !ctl->seen[F_TYPE])) {
      ctl_fail ("group add needs --stage, --queue and --type, e.g. group add %s --stage 1 --queue general --type echo", ctl->id);
      goto cleanup;
   }
   if (ctl->cmd == CMD_SYNC_STAGE && (!ctl->seen[F_NAME] || !ctl->seen[F_CALLABLE] || !ctl->seen[F_QUEUE])) {
      ctl_fail ("sync stage needs --name, --callable and --queue, e.g. sync stage --name import --callable fetch_files --queue imports");
      goto cleanup;
   }
   if (ctl->cmd == CMD_SYNC_CREATE && !ctl->seen[F_START_STAGE]) {
      ctl_fail ("sync create needs --start-stage: the id of its first stage, as 'sync stage' printed it");
      goto cleanup;
   }
   if (ctl->cmd == CMD_POOL_SET && !ctl->seen[F_SIZE]) {
      ctl_fail ("pool set needs --size: how many of its tasks may run at once, e.g. pool set %s --size 3", ctl->id);
      goto cleanup;
   }
   if (ctl->cmd == CMD_GROUP_CLEAN && ctl->seen[F_PURGE] && !ctl->seen[F_YES]) {
      ctl_fail ("group clean --purge deletes every group, every stage and every staged task in the database, "
            "running ones too; add --yes to do it");
      goto cleanup;
   }
   ok = true;

cleanup:
   bson_json_reader_destroy (reader);
   bson_destroy (&extra);
   return ok;
}
