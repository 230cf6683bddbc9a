/* mtaskctl: the common queries and writes on the tasks collection, for
 * people and scripts. Every task command is one plain MongoDB operation on
 * DB.tasks; the README shows the same queries for the mongo shell. The
 * group and sync commands drive staged groups (seed 003) and synchronizers
 * (seed 000), and the pool, slots and slot commands concurrency slots
 * (seed 002), through the library's calls, and read their collections.
 * enqueue's scheduling flags, schedules, purge and retention are seed 004's
 * repeating tasks, unique tasks and completed-tasks archive.
 *
 *   mtaskctl [connection flags] COMMAND [command flags]
 *   mtaskctl [connection flags] group|sync|pool|slot COMMAND [command flags]
 *
 * Exit status: 0 done; 1 the database failed or what was named was not
 * found; 2 bad usage. */
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
#define CTL_MAX_AGE 3155760000.0 /* a hundred years, in seconds */
#define CTL_MAX_POOL_SIZE 100000
#define CTL_MAX_TIMEOUT 31622400.0 /* 366 days, in seconds: mt_pool_set's bound */

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

typedef enum {
   CMD_ENQUEUE = 1 << 0,
   CMD_LS = 1 << 1,
   CMD_SHOW = 1 << 2,
   CMD_STATS = 1 << 3,
   CMD_LOCKS = 1 << 4,
   CMD_GROUP_CREATE = 1 << 5,
   CMD_GROUP_ADD = 1 << 6,
   CMD_GROUP_START = 1 << 7,
   CMD_GROUP_LS = 1 << 8,
   CMD_GROUP_SHOW = 1 << 9,
   CMD_GROUP_CLEAN = 1 << 10,
   CMD_SYNC_STAGE = 1 << 11,
   CMD_SYNC_CREATE = 1 << 12,
   CMD_SYNC_START = 1 << 13,
   CMD_SYNC_CHECK = 1 << 14,
   CMD_SYNC_LS = 1 << 15,
   CMD_POOL_SET = 1 << 16,
   CMD_SLOTS = 1 << 17,
   CMD_SLOT_KEEPALIVE = 1 << 18,
   CMD_SLOT_STOP = 1 << 19,
   CMD_SCHEDULES = 1 << 20,
   CMD_PURGE = 1 << 21,
   CMD_RETENTION = 1 << 22,
} ctl_cmd_t;

#define CMD_GROUP (CMD_GROUP_CREATE | CMD_GROUP_ADD | CMD_GROUP_START | CMD_GROUP_LS | CMD_GROUP_SHOW | CMD_GROUP_CLEAN)
#define CMD_SYNC (CMD_SYNC_STAGE | CMD_SYNC_CREATE | CMD_SYNC_START | CMD_SYNC_CHECK | CMD_SYNC_LS)
#define CMD_SLOT (CMD_POOL_SET | CMD_SLOTS | CMD_SLOT_KEEPALIVE | CMD_SLOT_STOP)
#define CMD_SCHEDULING (CMD_SCHEDULES | CMD_PURGE | CMD_RETENTION)
#define CMD_ALL (CMD_ENQUEUE | CMD_LS | CMD_SHOW | CMD_STATS | CMD_LOCKS | CMD_GROUP | CMD_SYNC | CMD_SLOT | CMD_SCHEDULING)

/* The argument a command takes after its name, if any. */
typedef enum {
   ARG_NONE,
   ARG_TASK_ID,  /* 24 hex digits */
   ARG_GROUP_ID, /* 24 hex digits */
   ARG_SYNC,     /* a synchronizer's name */
   ARG_POOL,     /* a pool's name: not empty, no '#' */
} ctl_arg_t;

static const struct {
   const char *family; /* "group", "sync", "pool" or "slot" for two-word commands */
   const char *name;
   ctl_cmd_t cmd;
   ctl_arg_t arg;
} commands[] = {
   {NULL, "enqueue", CMD_ENQUEUE, ARG_NONE},
   {NULL, "ls", CMD_LS, ARG_NONE},
   {NULL, "show", CMD_SHOW, ARG_TASK_ID},
   {NULL, "stats", CMD_STATS, ARG_NONE},
   {NULL, "locks", CMD_LOCKS, ARG_NONE},
   {"group", "create", CMD_GROUP_CREATE, ARG_NONE},
   {"group", "add", CMD_GROUP_ADD, ARG_GROUP_ID},
   {"group", "start", CMD_GROUP_START, ARG_GROUP_ID},
   {"group", "ls", CMD_GROUP_LS, ARG_NONE},
   {"group", "show", CMD_GROUP_SHOW, ARG_GROUP_ID},
   {"group", "clean", CMD_GROUP_CLEAN, ARG_NONE},
   {"sync", "stage", CMD_SYNC_STAGE, ARG_NONE},
   {"sync", "create", CMD_SYNC_CREATE, ARG_SYNC},
   {"sync", "start", CMD_SYNC_START, ARG_SYNC},
   {"sync", "check", CMD_SYNC_CHECK, ARG_SYNC},
   {"sync", "ls", CMD_SYNC_LS, ARG_NONE},
   {"pool", "set", CMD_POOL_SET, ARG_POOL},
   {NULL, "slots", CMD_SLOTS, ARG_NONE},
   {"slot", "keepalive", CMD_SLOT_KEEPALIVE, ARG_TASK_ID},
   {"slot", "stop", CMD_SLOT_STOP, ARG_TASK_ID},
   {NULL, "schedules", CMD_SCHEDULES, ARG_NONE},
   {NULL, "purge", CMD_PURGE, ARG_NONE},
   {NULL, "retention", CMD_RETENTION, ARG_NONE},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The two-word families and their commands, as the usage errors list them. */
static const struct {
   const char *family;
   const char *with_or;   /* "create, add, ... or clean" */
   const char *with_commas;
} families[] = {
   {"group", "create, add, start, ls, show or clean", "create, add, start, ls, show, clean"},
   {"sync", "stage, create, start, check or ls", "stage, create, start, check, ls"},
   {"pool", "set", "set"},
   {"slot", "keepalive or stop", "keepalive, stop"},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

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
   F_DESCRIPTION,
   F_KEEP,
   F_STAGE,
   F_PURGE,
   F_YES,
   F_NAME,
   F_CALLABLE,
   F_TASK,
   F_NEXT,
   F_START_STAGE,
   F_NOW,
   F_SIZE,
   F_TIMEOUT,
   F_RUN_AT,
   F_REPEAT,
   F_REPEAT_UNTIL,
   F_CRON,
   F_TIMEZONE,
   F_UNIQUE_KEY,
   F_VERBOSE_NAME,
   F_CREATOR,
   F_OLDER_THAN,
   F_FROM,
   F_DRY_RUN,
   F_COLLECTION,
   F_TTL,
   F_OFF,
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
   [F_QUEUE] = {"--queue", true, CMD_ENQUEUE | CMD_LS | CMD_GROUP_ADD | CMD_SYNC_STAGE | CMD_SCHEDULES},
   [F_TYPE] = {"--type", true, CMD_ENQUEUE | CMD_LS | CMD_GROUP_ADD},
   [F_PARAMS] = {"--params", true, CMD_ENQUEUE | CMD_GROUP_ADD | CMD_SYNC_STAGE},
   [F_DELAY] = {"--delay", true, CMD_ENQUEUE | CMD_GROUP_ADD},
   [F_PRIORITY] = {"--priority", true, CMD_ENQUEUE | CMD_GROUP_ADD},
   [F_MAX_ATTEMPTS] = {"--max-attempts", true, CMD_ENQUEUE | CMD_GROUP_ADD},
   [F_STATUS] = {"--status", true, CMD_LS | CMD_PURGE},
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
   [F_DRY_RUN] = {"--dry-run", false, CMD_PURGE},
   [F_COLLECTION] = {"--collection", true, CMD_RETENTION},
   [F_TTL] = {"--ttl", true, CMD_RETENTION},
   [F_OFF] = {"--off", false, CMD_RETENTION},
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

/* The statuses of a task that has ended: all that purge may delete. */
static const char *const ended_statuses[] = {MT_STATUS_FINISHED, MT_STATUS_FAILED, MT_STATUS_CANCELLED};
#define N_ENDED (sizeof ended_statuses / sizeof ended_statuses[0])
#define ENDED_LIST "FINISHED, FAILED, CANCELLED"

typedef struct {
   const char *words[3];     /* the words that are not flags, in order */
   const char *extra;        /* a fourth one: never expected */
   const char *family;       /* "group", "sync", "pool" or "slot" when words[0] is one */
   const char *command_name; /* as typed: "ls", "group add" */
   char command_buf[32];
   ctl_cmd_t cmd;            /* 0 until known */
   ctl_arg_t arg_kind;
   const char *id;           /* the command's argument: an id or a name */
   bool seen[N_FLAGS];
   const char *value[N_FLAGS];

   /* Checked and converted by check_values(). */
   int port;
   double delay, keep;
   int priority, max_attempts, limit, stage;
   int size;                      /* --size */
   double timeout;                /* --timeout */
   bson_t *params;
   bson_oid_t oid;                /* the id argument */
   bson_oid_t next, start_stage; /* --next, --start-stage */
   int64_t run_at, repeat_until;  /* ms since the epoch */
   double repeat;                 /* --repeat, seconds */
   double older_than;             /* --older-than, seconds */
   int64_t ttl;                   /* --ttl, whole seconds */
   const char *ended[4];          /* purge --status: NULL-terminated, or all NULL for every ended status */
   const char *from;              /* purge --from: a collection, or NULL for both */
   const char *collection;        /* retention --collection */
} ctl_t;

#define SCHEDULING_COMMANDS                                                                   \
   "Scheduling and retention (enqueue takes --repeat, --cron, --run-at, --unique-key):\n"      \
   "  schedules             repeating tasks that are live, soonest next run first\n"          \
   "  purge                 delete ended tasks older than a duration: --older-than 30d\n"    \
   "  retention             a TTL index that makes MongoDB delete ended tasks: --ttl 30d\n"

#define GROUP_COMMANDS                                                                      \
   "Staged groups (DB.groups, DB.group_stages): stage N+1 starts when stage N has ended\n" \
   "  group create          a new group; prints its id\n"                                 \
   "  group add GROUP_ID    add a task to stage N of the group; prints the task's id\n"  \
   "  group start GROUP_ID  start its first stage that is not complete\n"                \
   "  group ls              groups, newest first, with their current stage\n"             \
   "  group show GROUP_ID   a group and its stages, with their tasks by status\n"         \
   "  group clean           repair orphaned staged tasks; --purge --yes deletes all\n"

#define SYNC_COMMANDS                                                                       \
   "Synchronizers (DB.synchronizers, DB.stages): a chain of stages, each a task type run\n" \
   "on a queue and complete when that queue has drained\n"                                  \
   "  sync stage            create a stage; prints its id\n"                                \
   "  sync create NAME      a synchronizer, on stand-by, beginning at a stage\n"            \
   "  sync start NAME       begin it at the workers' next upkeep tick, or --now\n"          \
   "  sync check NAME       advance it if its stage is complete\n"                          \
   "  sync ls               synchronizers: status, stage, start stage, times\n"

#define SLOT_COMMANDS                                                                       \
   "Concurrency slots (DB.pools, DB.slots): a pool of N slots runs at most N of its\n"     \
   "tasks at once, across all workers\n"                                                    \
   "  pool set NAME         declare or resize a pool: --size N [--timeout SECS]\n"         \
   "  slots                 pools and their slots in use: task, worker, keepalive\n"       \
   "  slot keepalive TASK_ID\n"                                                             \
   "                        keep the running task's slot from timing out\n"                \
   "  slot stop TASK_ID     end the running task (CANCELLED) and free its slot\n"

static void
usage (FILE *out, ctl_cmd_t cmd, const char *family)
{
   switch (cmd) {
   case CMD_ENQUEUE:
      fprintf (out,
               "Usage: mtaskctl [connection] enqueue --queue Q --type T [--params JSON]\n"
               "                [--delay DURATION | --run-at TIME] [--priority N] [--max-attempts N]\n"
               "                [--repeat DURATION | --cron EXPR [--timezone TZ]]\n"
               "                [--repeat-until TIME] [--unique-key KEY] [--verbose-name TEXT]\n"
               "                [--creator TEXT] [--json]\n"
               "\n"
               "Inserts a CREATED task into DB.tasks and prints its id (24 hex digits).\n"
               "A DURATION is seconds (90, 0.5) or a number with a unit: s, m, h, d\n"
               "(90s, 15m, 2h, 1d, 1h30m). A TIME is ISO 8601 with a zone:\n"
               "2026-11-23T10:00:00Z, 2026-11-23T10:00:00.250Z, 2026-11-23T11:00:00+01:00.\n"
               "\n"
               "  --queue Q            the queue a worker serves (required)\n"
               "                         --queue general\n"
               "  --type T             the task type: the plugin that runs it (required)\n"
               "                         --type echo\n"
               "  --params JSON        the task's input, a JSON object (default: {})\n"
               "                         --params '{\"to\": \"ana@example.com\", \"n\": 3}'\n"
               "  --delay DURATION     not to be started before that long from now\n"
               "                         --delay 90   --delay 0.5   --delay 2h\n"
               "  --run-at TIME        not to be started before TIME (instead of --delay)\n"
               "                         --run-at 2026-11-23T10:00:00Z\n"
               "  --priority N         higher runs first; may be negative (default: 0)\n"
               "                         --priority 10\n"
               "  --max-attempts N     the retry budget: claims before it stays FAILED\n"
               "                         --max-attempts 3\n"
               "\n"
               "Repeating (each run, when it ends, creates the next one; 'schedules' lists them):\n"
               "  --repeat DURATION    run every DURATION, at least 1 s: first now (or at\n"
               "                       --delay/--run-at), then on that grid   --repeat 15m\n"
               "  --cron EXPR          run at the times of a five-field cron expression\n"
               "                       (minute hour day-of-month month day-of-week), or\n"
               "                       @hourly, @daily, @weekly, @monthly, @yearly; not\n"
               "                       with --repeat      --cron '*/5 * * * *'   --cron @daily\n"
               "  --timezone TZ        the IANA time zone of --cron's times (default: UTC)\n"
               "                         --timezone Europe/Berlin\n"
               "  --repeat-until TIME  no run after TIME     --repeat-until 2026-12-31T23:59:59Z\n"
               "\n"
               "Unique and descriptive:\n"
               "  --unique-key KEY     enqueue nothing while a task with this key is WAITING,\n"
               "                       CREATED or WORK_IN_PROGRESS: then print that task's id,\n"
               "                       say so on stderr, and exit 0   --unique-key report-2026-11\n"
               "  --verbose-name TEXT  a name for people, stored as is\n"
               "                         --verbose-name 'Monthly report'\n"
               "  --creator TEXT       who enqueued it, stored as is   --creator billing-cron\n"
               "\n"
               "  --json               print {\"_id\": {\"$oid\": ID}, \"created\": true}; created is\n"
               "                       false when --unique-key was taken and ID is the holder's\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks enqueue --queue general --type echo --params '{\"a\": 1}'\n"
               "  id=$(mtaskctl --db tasks enqueue --queue reports --type pdf --delay 1h)\n"
               "  mtaskctl --db tasks enqueue --queue reports --type pdf --cron '0 6 * * 1-5' \\\n"
               "          --timezone Europe/Berlin --unique-key weekday-report\n");
      break;
   case CMD_SCHEDULES:
      fprintf (out,
               "Usage: mtaskctl [connection] schedules [--queue Q] [--json]\n"
               "\n"
               "Lists the repeating tasks in DB.tasks that are live (WAITING, CREATED or\n"
               "WORK_IN_PROGRESS, with 'repeat' or 'cron'), soonest next run first: the\n"
               "series (the id of its first run), type, queue, rule, next run (UTC), until,\n"
               "status and the id of the task that stands for the next run.\n"
               "\n"
               "  --queue Q   only tasks of queue Q             --queue reports\n"
               "  --json      one task document per line, with \"rule\" (as the table shows\n"
               "              it) and \"next_run\" (a date, or null when due now) added\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks schedules\n"
               "  mtaskctl --db tasks schedules --queue reports --json\n");
      break;
   case CMD_PURGE:
      fprintf (out,
               "Usage: mtaskctl [connection] purge --older-than DURATION [--status LIST]\n"
               "                [--from tasks|completed_tasks|both] [--dry-run] [--json]\n"
               "\n"
               "Deletes ended tasks (FINISHED, FAILED, CANCELLED) whose 'finished' is more than\n"
               "DURATION ago. Live tasks (WAITING, CREATED, WORK_IN_PROGRESS) are never\n"
               "purged, nor, in DB.tasks, tasks of staged groups (their group deletes them)\n"
               "or an ended run of a repeating task whose next run is not created yet.\n"
               "Prints 'purged N ended task(s) older than DURATION from WHERE'.\n"
               "\n"
               "  --older-than DURATION  seconds, or a number with a unit s, m, h, d (required)\n"
               "                           --older-than 30d   --older-than 12h\n"
               "  --status LIST          only these, comma-separated: " ENDED_LIST "\n"
               "                         (default: all three)   --status FAILED,CANCELLED\n"
               "  --from WHERE           tasks, completed_tasks (the archive) or both\n"
               "                         (default: both)         --from completed_tasks\n"
               "  --dry-run              count them, delete nothing: 'would purge N ...'\n"
               "  --json                 print {\"purged\": N, \"dry_run\": true or false}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks purge --older-than 30d --dry-run\n"
               "  mtaskctl --db tasks purge --older-than 7d --status FINISHED --from tasks\n");
      break;
   case CMD_RETENTION:
      fprintf (out,
               "Usage: mtaskctl [connection] retention [--collection tasks|completed_tasks]\n"
               "                --ttl DURATION | --off [--json]\n"
               "\n"
               "Sets how long MongoDB keeps ended tasks: a TTL index 'mtask_ttl' on 'finished'\n"
               "makes the server delete each task DURATION after it ended (tasks that have not\n"
               "ended have no 'finished' and stay). --ttl replaces an earlier index; --off\n"
               "drops it. On mongo-java-server (the dev database) the index is kept but never\n"
               "deletes anything: use 'mtaskctl purge' there. Unlike purge, a TTL index on\n"
               "DB.tasks also deletes ended tasks of staged groups and an ended run of a\n"
               "repeating task whose next run is not created yet: prefer completed_tasks.\n"
               "\n"
               "  --collection C    tasks or completed_tasks (the archive; the default)\n"
               "                      --collection tasks\n"
               "  --ttl DURATION    whole seconds, or a number with a unit s, m, h, d\n"
               "                      --ttl 30d   --ttl 86400\n"
               "  --off             drop the TTL index: ended tasks stay until purged\n"
               "  --json            print {\"collection\": C, \"ttl_seconds\": N or null,\n"
               "                    \"previous_ttl_seconds\": N or null}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks retention --ttl 90d\n"
               "  mtaskctl --db tasks retention --collection tasks --off\n");
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
   case CMD_GROUP_CREATE:
      fprintf (out,
               "Usage: mtaskctl [connection] group create [--description TEXT] [--keep SECS] [--json]\n"
               "\n"
               "Creates a staged group in DB.groups, pending, and prints its id (24 hex\n"
               "digits). Add tasks to its stages with 'group add', then 'group start' it:\n"
               "stage N+1 starts when every task of stage N has ended. When the last stage\n"
               "is complete the group, its stages and its tasks are deleted, or kept for\n"
               "--keep seconds.\n"
               "\n"
               "  --description TEXT  what the group is for (default: empty)\n"
               "                        --description 'nightly import'\n"
               "  --keep SECS         keep the complete group this long before deleting it\n"
               "                      (default: 0, deleted at once)   --keep 86400\n"
               "  --json              print {\"_id\": {\"$oid\": ID}} instead of the bare id\n"
               "\n"
               "Example:\n"
               "  group=$(mtaskctl --db tasks group create --description 'nightly import' --keep 3600)\n");
      break;
   case CMD_GROUP_ADD:
      fprintf (out,
               "Usage: mtaskctl [connection] group add GROUP_ID --stage N --queue Q --type T\n"
               "                [--params JSON] [--priority N] [--max-attempts N] [--delay SECS]\n"
               "                [--json]\n"
               "\n"
               "Adds a task to stage N of the group (the stage is created when it is new)\n"
               "and prints the task's id. The task is WAITING until its stage starts, or\n"
               "CREATED at once when that stage is running already. A complete stage or\n"
               "group takes no more tasks.\n"
               "\n"
               "  --stage N          the stage: 1, 2, ... (required)          --stage 2\n"
               "  --queue Q          the queue a worker serves (required)     --queue general\n"
               "  --type T           the task type (required)                 --type echo\n"
               "  --params JSON      the task's input, a JSON object (default: {})\n"
               "                       --params '{\"file\": \"a.csv\"}'\n"
               "  --priority N       higher runs first (default: 0)           --priority 10\n"
               "  --max-attempts N   the retry budget                         --max-attempts 3\n"
               "  --delay SECS       not started before SECS seconds from now --delay 90\n"
               "  --json             print {\"_id\": {\"$oid\": ID}} instead of the bare id\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group add \"$group\" --stage 1 --queue general --type import\n"
               "  mtaskctl --db tasks group add \"$group\" --stage 2 --queue general --type report\n");
      break;
   case CMD_GROUP_START:
      fprintf (out,
               "Usage: mtaskctl [connection] group start GROUP_ID [--json]\n"
               "\n"
               "Starts the group's first stage that is not complete: its WAITING tasks\n"
               "become CREATED, for the workers to claim. The stages after it start by\n"
               "themselves, each when the one before has ended. A group with no tasks is\n"
               "not started (it would complete, and go, at once). Starting a running group\n"
               "again is harmless.\n"
               "\n"
               "  --json   print {\"_id\": ..., \"status\": S, \"deleted\": B, \"stage\": N or null}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group start 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_GROUP_LS:
      fprintf (out,
               "Usage: mtaskctl [connection] group ls [--json]\n"
               "\n"
               "Lists the groups in DB.groups, newest first: id, status (pending, running,\n"
               "complete), created (UTC), how many stages, the current stage (the first not\n"
               "complete) and the description.\n"
               "\n"
               "  --json   one group document per line, with \"stage_count\" and\n"
               "           \"current_stage\" (a number, or null) added\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group ls\n");
      break;
   case CMD_GROUP_SHOW:
      fprintf (out,
               "Usage: mtaskctl [connection] group show GROUP_ID [--json]\n"
               "\n"
               "Prints the group, then its stages: number, status, total and done (the\n"
               "stage's own count of its tasks and of those ended), its tasks counted by\n"
               "status, and when it started and completed. A stage whose tasks exist but\n"
               "whose document does not shows as 'missing': 'group clean' repairs it.\n"
               "\n"
               "  --json   one document: {\"group\": {...}, \"stages\": [{..., \"tasks\": {STATUS: n}}]}\n"
               "           (the stages without their done_ids list)\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group show 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_GROUP_CLEAN:
      fprintf (out,
               "Usage: mtaskctl [connection] group clean [--purge --yes] [--json]\n"
               "\n"
               "Without --purge: repairs orphans, the staged tasks whose group or stage\n"
               "document is gone (recreated from their tasks), and lets their groups go on.\n"
               "Prints how many groups and stages it repaired.\n"
               "\n"
               "  --purge   instead, delete every group, every stage and every staged task\n"
               "            in the database, running ones too; prints how many tasks went\n"
               "  --yes     confirms --purge, which does nothing without it\n"
               "  --json    print {\"repaired\": n} or {\"purged_tasks\": n}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group clean\n"
               "  mtaskctl --db tasks group clean --purge --yes\n");
      break;
   case CMD_SYNC_STAGE:
      fprintf (out,
               "Usage: mtaskctl [connection] sync stage --name NAME --callable TYPE --queue Q\n"
               "                [--task TYPE] [--next STAGE_ID] [--params JSON] [--json]\n"
               "\n"
               "Creates a synchronizer stage in DB.stages and prints its id (24 hex digits).\n"
               "When a synchronizer begins the stage it enqueues a task of type --callable on\n"
               "--queue; the stage is complete when that queue has no CREATED, WAITING or\n"
               "running task left. It then closes the newest running task of type --task,\n"
               "if given, and the synchronizer goes on to --next, or back to stand-by.\n"
               "Create the last stage first: --next names one that exists.\n"
               "\n"
               "  --name NAME      what the stage is called (required)     --name import\n"
               "  --callable TYPE  the task type it enqueues (required)    --callable fetch_files\n"
               "  --queue Q        the queue it enqueues on and waits to drain (required)\n"
               "                     --queue imports\n"
               "  --task TYPE      the running task type it closes when complete\n"
               "                     --task import_window\n"
               "  --next STAGE_ID  the stage after it (default: none, the last)\n"
               "                     --next 6553f1c2a4e0b1d2c3f40a17\n"
               "  --params JSON    given to the callable, a JSON object  --params '{\"day\": 1}'\n"
               "  --json           print {\"_id\": {\"$oid\": ID}} instead of the bare id\n"
               "\n"
               "Example:\n"
               "  last=$(mtaskctl --db tasks sync stage --name report --callable build_report --queue reports)\n"
               "  first=$(mtaskctl --db tasks sync stage --name import --callable fetch_files \\\n"
               "          --queue imports --next \"$last\")\n");
      break;
   case CMD_SYNC_CREATE:
      fprintf (out,
               "Usage: mtaskctl [connection] sync create NAME --start-stage STAGE_ID [--json]\n"
               "\n"
               "Creates the synchronizer NAME in DB.synchronizers, on stand-by, to begin at\n"
               "the stage STAGE_ID ('sync stage' printed it). Names are unique.\n"
               "\n"
               "  --start-stage STAGE_ID  its first stage (required)\n"
               "                            --start-stage 6553f1c2a4e0b1d2c3f40a17\n"
               "  --json                  print the synchronizer's document\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync create nightly --start-stage \"$first\"\n");
      break;
   case CMD_SYNC_START:
      fprintf (out,
               "Usage: mtaskctl [connection] sync start NAME [--now] [--json]\n"
               "\n"
               "Asks the workers to begin the synchronizer: a running worker begins it at\n"
               "its next upkeep tick (the seed's start_synchros), once it is on stand-by.\n"
               "\n"
               "  --now    begin it here and now instead: its start stage's callable is\n"
               "           enqueued at once; fails if it is running already\n"
               "  --json   print the synchronizer's document afterwards\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync start nightly\n"
               "  mtaskctl --db tasks sync start nightly --now\n");
      break;
   case CMD_SYNC_CHECK:
      fprintf (out,
               "Usage: mtaskctl [connection] sync check NAME [--json]\n"
               "\n"
               "Checks whether the running synchronizer's stage is complete (its queue has\n"
               "drained) and if so advances it, as a worker's upkeep does: prints\n"
               "'advanced' or 'not complete yet'.\n"
               "\n"
               "  --json   print the synchronizer's document, with \"advanced\": true or false\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync check nightly\n");
      break;
   case CMD_SYNC_LS:
      fprintf (out,
               "Usage: mtaskctl [connection] sync ls [--json]\n"
               "\n"
               "Lists the synchronizers in DB.synchronizers by name: status (stand_by,\n"
               "running), the stage it is at, its start stage (names from DB.stages) and\n"
               "when it last started and finished (UTC).\n"
               "\n"
               "  --json   one synchronizer document per line, with \"actual_stage_name\" and\n"
               "           \"start_stage_name\" added (null when there is no such stage)\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync ls\n");
      break;
   case CMD_POOL_SET:
      fprintf (out,
               "Usage: mtaskctl [connection] pool set NAME --size N [--timeout SECS] [--json]\n"
               "\n"
               "Declares the pool NAME in DB.pools, or resizes it, and creates its slots in\n"
               "DB.slots. At most N tasks of the pool run at once, across all workers; a task\n"
               "is in the pool by its own 'pool' field or its plugin's. The workers see the\n"
               "new size at their next claims. Shrinking stops no running task: a slot at or\n"
               "above the new size stays held until its task ends, then is no longer used.\n"
               "Prints 'pool NAME: N slots, timeout S s' (or 'timeout unchanged').\n"
               "\n"
               "  --size N        how many of its tasks may run at once, 1 to 100000 (required)\n"
               "                    --size 3\n"
               "  --timeout SECS  a slot not kept alive for SECS seconds is taken back and its\n"
               "                  task fails with a timeout (or is retried); 0 = no timeout\n"
               "                  (default: 0 for a new pool; a resize without --timeout\n"
               "                  keeps the pool's; at most 366 days)   --timeout 300\n"
               "  --json          print the pool's document: {\"_id\": NAME, \"size\": N,\n"
               "                  \"timeout_seconds\": S}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks pool set reports --size 3 --timeout 300\n"
               "  mtaskctl --db tasks pool set reports --size 1\n");
      break;
   case CMD_SLOTS:
      fprintf (out,
               "Usage: mtaskctl [connection] slots [--json]\n"
               "\n"
               "Lists the pools in DB.pools by name: size, timeout and how many of their\n"
               "slots are in use; then each held slot in DB.slots: pool, index, the task\n"
               "holding it, its worker, since when (acquired) and its last keepalive (UTC).\n"
               "A slot at or above its pool's size that is still held (the pool shrank while\n"
               "its task ran) is listed too, marked '(beyond size)', and not counted in\n"
               "IN_USE.\n"
               "\n"
               "  --json   one document: {\"pools\": [{\"_id\": NAME, \"size\": N,\n"
               "           \"timeout_seconds\": S, \"in_use\": n, \"slots\": [SLOT, ...]}]}, each\n"
               "           SLOT a held slot's document with \"beyond_size\": true or false\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks slots\n"
               "  mtaskctl --db tasks slots --json\n");
      break;
   case CMD_SLOT_KEEPALIVE:
      fprintf (out,
               "Usage: mtaskctl [connection] slot keepalive TASK_ID [--json]\n"
               "\n"
               "Keeps the slot that task TASK_ID holds alive, as the task itself does with\n"
               "mt_task_keepalive: its pool's timeout counts again from now, and its worker\n"
               "calls the plugin's on_keepalive. Fails (exit 1) when the task holds no slot.\n"
               "\n"
               "  --json   print the slot's document afterwards\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks slot keepalive 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_SLOT_STOP:
      fprintf (out,
               "Usage: mtaskctl [connection] slot stop TASK_ID [--json]\n"
               "\n"
               "Stops task TASK_ID, which holds a slot: a running task ends CANCELLED, its\n"
               "worker calls the plugin's on_stop, and its slot is freed for the next task of\n"
               "the pool. A task that is no longer running just gives its slot back. Fails\n"
               "(exit 1) when the task holds no slot.\n"
               "\n"
               "  --json   print {\"_id\": TASK_ID, \"slots\": [SLOT_ID, ...], \"was\": STATUS,\n"
               "           \"status\": STATUS}: the slots freed, the task's status before and after\n"
               "           (null when there is no such task)\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks slot stop 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   default:
      if (family && (!strcmp (family, "pool") || !strcmp (family, "slot"))) {
         fprintf (out,
                  "Usage: mtaskctl [connection] pool set NAME --size N [--timeout SECS]\n"
                  "       mtaskctl [connection] slots\n"
                  "       mtaskctl [connection] slot keepalive|stop TASK_ID\n"
                  "\n"
                  SLOT_COMMANDS
                  "\n"
                  "'mtaskctl %s COMMAND --help' for each one's flags; 'mtaskctl --help' for\n"
                  "the connection flags.\n"
                  "\n"
                  "Example:\n"
                  "  mtaskctl --db tasks pool set reports --size 3 --timeout 300\n",
                  family);
         break;
      }
      if (family && !strcmp (family, "group")) {
         fprintf (out,
                  "Usage: mtaskctl [connection] group COMMAND [flags]\n"
                  "\n"
                  GROUP_COMMANDS
                  "\n"
                  "'mtaskctl group COMMAND --help' for each one's flags; 'mtaskctl --help' for\n"
                  "the connection flags.\n");
         break;
      }
      if (family && !strcmp (family, "sync")) {
         fprintf (out,
                  "Usage: mtaskctl [connection] sync COMMAND [flags]\n"
                  "\n"
                  SYNC_COMMANDS
                  "\n"
                  "'mtaskctl sync COMMAND --help' for each one's flags; 'mtaskctl --help' for\n"
                  "the connection flags.\n");
         break;
      }
      fprintf (out,
               "Usage: mtaskctl [connection] COMMAND [flags]\n"
               "       mtaskctl [connection] group|sync|pool|slot COMMAND [flags]\n"
               "\n"
               "Queries and enqueues tasks in the MongoDB collection DB.tasks, schedules\n"
               "repeating ones, runs staged groups and synchronizers, manages concurrency\n"
               "slots, and purges ended tasks.\n"
               "\n"
               "Commands ('mtaskctl COMMAND --help' for each one's flags):\n"
               "  enqueue   insert a task and print its id\n"
               "  ls        list tasks, newest first\n"
               "  show ID   one task as JSON\n"
               "  stats     counts by queue and status, and waiting tasks by type\n"
               "  locks     account locks: who holds what, since when\n"
               "\n"
               SCHEDULING_COMMANDS
               "\n"
               GROUP_COMMANDS
               "\n"
               SYNC_COMMANDS
               "\n"
               SLOT_COMMANDS
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
               "  --help       this help, or a command's: mtaskctl enqueue --help,\n"
               "               mtaskctl group add --help\n"
               "  --version    print the version\n"
               "\n"
               "Exit status: 0 done; 1 the database failed, or the task, group, stage,\n"
               "synchronizer or slot named was not found or cannot do that now; 2 bad usage.\n"
               "\n"
               "Examples:\n"
               "  mtaskctl --db tasks enqueue --queue general --type echo --params '{\"a\": 1}'\n"
               "  mtaskctl --db tasks ls --status FAILED\n"
               "  mtaskctl --host db1.example --db tasks stats --json\n"
               "  mtaskctl --db tasks enqueue --queue reports --type pdf --cron '0 6 * * *'\n"
               "  mtaskctl --db tasks purge --older-than 30d\n"
               "  mtaskctl --db tasks group show 6553f1c2a4e0b1d2c3f40a17\n"
               "  mtaskctl --db tasks sync start nightly\n"
               "  mtaskctl --db tasks pool set reports --size 3 --timeout 300\n");
      break;
   }
}

static bool fail (const char *format, ...) BSON_GNUC_PRINTF (1, 2);

/* The help the hint of a usage error points to: the command's, once known. */
static char help_hint[64] = "mtaskctl --help";

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
   fprintf (stderr, "\nTry '%s'.\n", help_hint);
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

/* Splits argv into the words that are not flags (the command and its
 * argument) and the flags with their values. Both are checked later, once
 * the command is known. */
static bool
parse_args (ctl_t *ctl, int argc, char **argv)
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

/* Finds the command the words name, if any; says nothing when none. */
static void
lookup_command (ctl_t *ctl)
{
   const char *first = ctl->words[0];

   for (size_t k = 0; first && k < N_FAMILIES; k++) {
      if (!strcmp (first, families[k].family)) {
         ctl->family = first;
      }
   }
   for (size_t k = 0; first && k < N_COMMANDS; k++) {
      const char *name = ctl->family ? ctl->words[1] : first;

      if (name && !strcmp (commands[k].name, name) &&
          (ctl->family ? commands[k].family && !strcmp (commands[k].family, ctl->family) : !commands[k].family)) {
         ctl->cmd = commands[k].cmd;
         ctl->arg_kind = commands[k].arg;
         snprintf (ctl->command_buf, sizeof ctl->command_buf, "%s%s%s", ctl->family ? ctl->family : "", ctl->family ? " " : "", name);
         ctl->command_name = ctl->command_buf;
         snprintf (help_hint, sizeof help_hint, "mtaskctl %s --help", ctl->command_name);
      }
   }
   if (!ctl->cmd && ctl->family) {
      snprintf (help_hint, sizeof help_hint, "mtaskctl %s --help", ctl->family);
   }
}

/* The command is known, or the error says what is wrong; its argument is
 * in ctl->id. */
static bool
check_command (ctl_t *ctl)
{
   size_t next, k = 0;

   while (ctl->family && k < N_FAMILIES && strcmp (families[k].family, ctl->family)) {
      k++;
   }
   if (!ctl->words[0]) {
      return fail ("give a command: enqueue, ls, show, stats, locks, schedules, purge, retention, slots, "
                   "group COMMAND, sync COMMAND, pool set or slot COMMAND");
   }
   if (ctl->family && !ctl->words[1]) {
      return fail ("give a %s command: %s", ctl->family, families[k].with_or);
   }
   if (!ctl->cmd && ctl->family) {
      return fail ("unknown command '%s %s'; %s commands are %s",
                   ctl->family,
                   ctl->words[1],
                   ctl->family,
                   families[k].with_commas);
   }
   if (!ctl->cmd) {
      return fail ("unknown command '%s'; commands are enqueue, ls, show, stats, locks, schedules, purge, "
                   "retention, slots, group COMMAND, sync COMMAND, pool set and slot COMMAND",
                   ctl->words[0]);
   }
   next = ctl->family ? 2 : 1;
   if (ctl->arg_kind != ARG_NONE && next < 3) {
      ctl->id = ctl->words[next++];
   }
   if ((next < 3 && ctl->words[next]) || ctl->extra) {
      return fail ("unexpected argument '%s'", next < 3 && ctl->words[next] ? ctl->words[next] : ctl->extra);
   }
   switch (ctl->arg_kind) {
   case ARG_TASK_ID:
      if (!ctl->id) {
         return fail ("%s needs a task id: mtaskctl %s %s",
                      ctl->command_name,
                      ctl->command_name,
                      ctl->cmd == CMD_SHOW ? "ID" : "TASK_ID");
      }
      if (strlen (ctl->id) != 24 || !bson_oid_is_valid (ctl->id, 24)) {
         return fail ("'%s' is not a task id: give the 24 hex digits of its _id", ctl->id);
      }
      bson_oid_init_from_string (&ctl->oid, ctl->id);
      break;
   case ARG_GROUP_ID:
      if (!ctl->id) {
         return fail ("%s needs a group id: mtaskctl %s GROUP_ID", ctl->command_name, ctl->command_name);
      }
      if (strlen (ctl->id) != 24 || !bson_oid_is_valid (ctl->id, 24)) {
         return fail ("'%s' is not a group id: give the 24 hex digits that 'group create' printed", ctl->id);
      }
      bson_oid_init_from_string (&ctl->oid, ctl->id);
      break;
   case ARG_SYNC:
      if (!ctl->id) {
         return fail ("%s needs a synchronizer name: mtaskctl %s NAME", ctl->command_name, ctl->command_name);
      }
      if (!ctl->id[0]) {
         return fail ("%s needs a synchronizer name, got ''", ctl->command_name);
      }
      break;
   case ARG_POOL:
      if (!ctl->id) {
         return fail ("%s needs a pool name: mtaskctl %s NAME --size N", ctl->command_name, ctl->command_name);
      }
      if (!ctl->id[0] || strchr (ctl->id, '#')) {
         return fail ("'%s' is not a pool name: give a name that is not empty and has no '#'", ctl->id);
      }
      break;
   case ARG_NONE:
   default:
      break;
   }
   return true;
}

/* A stage id given to a flag: 24 hex digits. */
static bool
parse_stage_id (ctl_flag_id_t flag, const char *value, bson_oid_t *out)
{
   if (strlen (value) != 24 || !bson_oid_is_valid (value, 24)) {
      return fail ("%s: '%s' is not a stage id: give the 24 hex digits that 'sync stage' printed", flags[flag].name, value);
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
      return fail ("%s: '%s' is not a number of seconds from 0 to %.0f (%s)", flags[flag].name, value, max, max_text);
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
      return fail ("%s: '%s' is not a duration: give seconds (90) or a number with a unit s, m, h or d "
                   "(90s, 15m, 2h, 1d, 1h30m)",
                   flags[flag].name,
                   value);
   }
   if (p) {
      *out = total;
   }
   if (!isfinite (*out) || !(*out >= min && *out <= max)) {
      return fail ("%s: '%s' is out of range: give %s", flags[flag].name, value, range);
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
         return fail ("%s: '%s' has an offset out of range: give -23:59 to +23:59", flags[flag].name, value);
      }
   } else if (!*p) {
      return fail ("%s: '%s' has no time zone: add Z for UTC or an offset such as +01:00, "
                   "e.g. %sZ",
                   flags[flag].name,
                   value,
                   value);
   }
   if (*p) {
      goto bad;
   }
   leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
   if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] + (month == 2 && leap)) {
      return fail ("%s: '%s' is not a date of the calendar", flags[flag].name, value);
   }
   if (hour > 23 || minute > 59 || second > 59) {
      return fail ("%s: '%s' is not a time of day: hours 00 to 23, minutes and seconds 00 to 59",
                   flags[flag].name,
                   value);
   }
   *out = ((days_from_civil (year, month, day) * 24 + hour) * 60 + minute) * 60000 + second * 1000 + ms -
          sign * (off_h * 60 + off_m) * 60000;
   return true;

bad:
   return fail ("%s: '%s' is not a time: give ISO 8601 with a zone, e.g. 2026-11-23T10:00:00Z or "
                "2026-11-23T11:00:00+01:00",
                flags[flag].name,
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
               return fail ("--status: %s is a live status, and live tasks are never purged; give one or more of "
                            ENDED_LIST ", comma-separated",
                            statuses[live]);
            }
         }
         return fail ("--status: '%.*s' is not one of " ENDED_LIST "; e.g. --status FAILED,CANCELLED", (int) len, p);
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
      return fail ("give either --delay or --run-at, not both: --delay counts from now, --run-at is a time");
   }
   if (ctl->seen[F_REPEAT] && ctl->seen[F_CRON]) {
      return fail ("give either --repeat (every so long) or --cron (at the times of an expression), not both");
   }
   if (ctl->seen[F_TIMEZONE] && !ctl->seen[F_CRON]) {
      return fail ("--timezone is the time zone of --cron's times; it needs --cron, e.g. --cron '0 6 * * *' "
                   "--timezone Europe/Berlin");
   }
   if (ctl->seen[F_REPEAT_UNTIL] && !ctl->seen[F_REPEAT] && !ctl->seen[F_CRON]) {
      return fail ("--repeat-until ends a repeating task; it needs --repeat or --cron");
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
   if (ctl->seen[F_TTL]) {
      double ttl;

      if (!parse_duration (F_TTL, ctl->value[F_TTL], 0, INT32_MAX, "0 to 68 years (2147483647 s, MongoDB's limit)", &ttl)) {
         goto cleanup;
      }
      if (ttl != (double) (int64_t) ttl) {
         fail ("--ttl: '%s' is not a whole number of seconds", ctl->value[F_TTL]);
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
   if (ctl->cmd == CMD_ENQUEUE && !check_enqueue_flags (ctl)) {
      goto cleanup;
   }
   if (ctl->seen[F_FROM]) {
      if (!strcmp (ctl->value[F_FROM], MT_TASKS_COLLECTION) || !strcmp (ctl->value[F_FROM], MT_COMPLETED_COLLECTION)) {
         ctl->from = ctl->value[F_FROM];
      } else if (strcmp (ctl->value[F_FROM], "both")) {
         fail ("--from: '%s' is not tasks, completed_tasks or both", ctl->value[F_FROM]);
         goto cleanup;
      }
   }
   if (ctl->cmd == CMD_PURGE && !ctl->seen[F_OLDER_THAN]) {
      fail ("purge needs --older-than: how long ago an ended task must have finished, e.g. purge --older-than 30d");
      goto cleanup;
   }
   ctl->collection = MT_COMPLETED_COLLECTION;
   if (ctl->seen[F_COLLECTION]) {
      if (strcmp (ctl->value[F_COLLECTION], MT_TASKS_COLLECTION) && strcmp (ctl->value[F_COLLECTION], MT_COMPLETED_COLLECTION)) {
         fail ("--collection: '%s' is not tasks or completed_tasks", ctl->value[F_COLLECTION]);
         goto cleanup;
      }
      ctl->collection = ctl->value[F_COLLECTION];
   }
   if (ctl->cmd == CMD_RETENTION && ctl->seen[F_TTL] == ctl->seen[F_OFF]) {
      fail ("retention needs either --ttl DURATION (keep ended tasks that long) or --off (drop the TTL index)%s",
            ctl->seen[F_TTL] ? ", not both" : ", e.g. retention --ttl 30d");
      goto cleanup;
   }
   if (ctl->cmd == CMD_GROUP_ADD && (!ctl->seen[F_STAGE] || !ctl->seen[F_QUEUE] || !ctl->seen[F_TYPE])) {
      fail ("group add needs --stage, --queue and --type, e.g. group add %s --stage 1 --queue general --type echo", ctl->id);
      goto cleanup;
   }
   if (ctl->cmd == CMD_SYNC_STAGE && (!ctl->seen[F_NAME] || !ctl->seen[F_CALLABLE] || !ctl->seen[F_QUEUE])) {
      fail ("sync stage needs --name, --callable and --queue, e.g. sync stage --name import --callable fetch_files --queue imports");
      goto cleanup;
   }
   if (ctl->cmd == CMD_SYNC_CREATE && !ctl->seen[F_START_STAGE]) {
      fail ("sync create needs --start-stage: the id of its first stage, as 'sync stage' printed it");
      goto cleanup;
   }
   if (ctl->cmd == CMD_POOL_SET && !ctl->seen[F_SIZE]) {
      fail ("pool set needs --size: how many of its tasks may run at once, e.g. pool set %s --size 3", ctl->id);
      goto cleanup;
   }
   if (ctl->cmd == CMD_GROUP_CLEAN && ctl->seen[F_PURGE] && !ctl->seen[F_YES]) {
      fail ("group clean --purge deletes every group, every stage and every staged task in the database, "
            "running ones too; add --yes to do it");
      goto cleanup;
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

/* Milliseconds since the epoch as ISO-8601 UTC to the second. */
static const char *
format_ms (int64_t ms, char *out, size_t size)
{
   struct tm tm;
   time_t secs = (time_t) (ms / 1000 - (ms % 1000 < 0)); /* floor, for dates before 1970 */

   if (!gmtime_r (&secs, &tm) || !strftime (out, size, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
      snprintf (out, size, "%" PRId64 "ms", ms);
   }
   return out;
}

/* A date field as ISO-8601 UTC to the second, or "-". */
static const char *
format_date (const bson_t *doc, const char *key, char *out, size_t size)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, doc, key) || !BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      return "-";
   }
   return format_ms (bson_iter_date_time (&iter), out, size);
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

static bool find_one (mongoc_client_t *client,
                      const char *db,
                      const char *collection,
                      const bson_t *filter,
                      const bson_t *opts,
                      bson_t *out,
                      bool *found,
                      bson_error_t *error);

/* The task holding a unique key, when mt_enqueue_ex could not name it (its
 * _id is not an ObjectId: another client inserted it): {_id} into `doc`
 * (initialized; left empty when it has ended meanwhile) and its _id as
 * text into buf. */
static void
unique_holder (mongoc_client_t *client, const char *db, const char *key, bson_t *doc, char *buf, size_t size)
{
   bson_t *filter = BCON_NEW ("unique_key",
                              BCON_UTF8 (key),
                              "status",
                              "{",
                              "$in",
                              "[",
                              BCON_UTF8 (MT_STATUS_WAITING),
                              BCON_UTF8 (MT_STATUS_CREATED),
                              BCON_UTF8 (MT_STATUS_WORK_IN_PROGRESS),
                              "]",
                              "}");
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}");
   bson_error_t error;
   bson_iter_t iter;
   bool found;

   snprintf (buf, size, "(one that has ended since)");
   if (find_one (client, db, MT_TASKS_COLLECTION, filter, opts, doc, &found, &error) && found &&
       bson_iter_init_find (&iter, doc, "_id")) {
      if (BSON_ITER_HOLDS_UTF8 (&iter)) {
         snprintf (buf, size, "%s", bson_iter_utf8 (&iter, NULL));
      } else {
         /* { "_id" : VALUE }: the value's JSON alone. */
         char *json = bson_as_relaxed_extended_json (doc, NULL);
         const char *value = strchr (json, ':');
         size_t len = value ? strlen (value) : 0;

         if (value && len > 4 && !strcmp (value + len - 2, " }")) {
            snprintf (buf, size, "%.*s", (int) (len - 4), value + 2);
         } else {
            snprintf (buf, size, "%s", json);
         }
         bson_free (json);
      }
   }
   bson_destroy (filter);
   bson_destroy (opts);
}

static int
cmd_enqueue (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   static const struct {
      ctl_flag_id_t flag;
      const char *option;
   } strings[] = {
      {F_CRON, "cron"},
      {F_TIMEZONE, "timezone"},
      {F_UNIQUE_KEY, "unique_key"},
      {F_VERBOSE_NAME, "verbose_name"},
      {F_CREATOR, "creator"},
   };
   bson_t opts = BSON_INITIALIZER, out = BSON_INITIALIZER, other = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id, zero = {{0}};
   bson_iter_t iter;
   bool created = true, unnamed;
   char hex[25], holder[256];
   int status = EXIT_RUNTIME;

   if (ctl->seen[F_DELAY]) {
      BSON_APPEND_DOUBLE (&opts, "delay", ctl->delay);
   }
   if (ctl->seen[F_RUN_AT]) {
      BSON_APPEND_DATE_TIME (&opts, "run_at", ctl->run_at);
   }
   if (ctl->seen[F_PRIORITY]) {
      BSON_APPEND_INT32 (&opts, "priority", ctl->priority);
   }
   if (ctl->seen[F_MAX_ATTEMPTS]) {
      BSON_APPEND_INT32 (&opts, "max_attempts", ctl->max_attempts);
   }
   if (ctl->seen[F_REPEAT]) {
      BSON_APPEND_DOUBLE (&opts, "repeat", ctl->repeat);
   }
   if (ctl->seen[F_REPEAT_UNTIL]) {
      BSON_APPEND_DATE_TIME (&opts, "repeat_until", ctl->repeat_until);
   }
   for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++) {
      if (ctl->seen[strings[k].flag]) {
         BSON_APPEND_UTF8 (&opts, strings[k].option, ctl->value[strings[k].flag]);
      }
   }
   if (!mt_enqueue_ex (client, db, ctl->value[F_QUEUE], ctl->value[F_TYPE], ctl->params, &opts, &id, &created, &error)) {
      if (error.domain == MT_ERROR_CONFIG) {
         fail ("cannot enqueue: %s", error.message);
         status = EXIT_USAGE;
      } else {
         fprintf (stderr, "mtaskctl: cannot enqueue into %s.%s: %s\n", db, MT_TASKS_COLLECTION, error.message);
      }
      goto cleanup;
   }
   bson_oid_to_string (&id, hex);
   unnamed = !created && !bson_oid_compare (&id, &zero);
   if (unnamed) {
      unique_holder (client, db, ctl->value[F_UNIQUE_KEY], &other, holder, sizeof holder);
   } else {
      snprintf (holder, sizeof holder, "%s", hex);
   }
   if (ctl->seen[F_JSON]) {
      if (!unnamed) {
         BSON_APPEND_OID (&out, "_id", &id);
      } else if (bson_iter_init_find (&iter, &other, "_id")) {
         BSON_APPEND_VALUE (&out, "_id", bson_iter_value (&iter));
      } else {
         BSON_APPEND_NULL (&out, "_id");
      }
      BSON_APPEND_BOOL (&out, "created", created);
      print_json (&out);
   } else {
      printf ("%s\n", holder);
   }
   if (!created) {
      fflush (stdout);
      fprintf (stderr,
               "mtaskctl: nothing enqueued: task %s holds unique_key '%s'\n",
               holder,
               ctl->value[F_UNIQUE_KEY] ? ctl->value[F_UNIQUE_KEY] : "");
   }
   status = 0;

cleanup:
   bson_destroy (&opts);
   bson_destroy (&out);
   bson_destroy (&other);
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
   if (ok && counts->len) {
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

/* ---- shared by the group and sync commands ------------------------------ */

static int db_error (const char *db, const char *collection, const bson_error_t *error, const char *format, ...)
   BSON_GNUC_PRINTF (4, 5);

/* "mtaskctl: cannot WHAT in DB.COLLECTION: MESSAGE"; returns EXIT_RUNTIME. */
static int
db_error (const char *db, const char *collection, const bson_error_t *error, const char *format, ...)
{
   va_list args;

   fflush (stdout);
   fprintf (stderr, "mtaskctl: cannot ");
   va_start (args, format);
   vfprintf (stderr, format, args);
   va_end (args);
   fprintf (stderr, " in %s.%s: %s\n", db, collection, error->message);
   return EXIT_RUNTIME;
}

/* The first document `filter` matches, into `out`: an initialized bson_t,
 * left as it was when there is none. *found says whether there was one. */
static bool
find_one (mongoc_client_t *client,
          const char *db,
          const char *collection,
          const bson_t *filter,
          const bson_t *opts,
          bson_t *out,
          bool *found,
          bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (coll, filter, opts, NULL);
   const bson_t *doc;
   bool ok;

   *found = mongoc_cursor_next (cursor, &doc);
   if (*found) {
      bson_reinit (out);
      bson_concat (out, doc);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return ok;
}

/* The document `filter` matches in `collection`, into `out` (initialized,
 * as for find_one), without its done_ids. When there is none, or the read
 * fails, says so on stderr and returns EXIT_RUNTIME; else 0. `what` and
 * `label` name it: "group" and its id. */
static int
read_doc (mongoc_client_t *client,
          const char *db,
          const char *collection,
          const bson_t *filter,
          const char *what,
          const char *label,
          bson_t *out)
{
   bson_t *opts = BCON_NEW ("projection", "{", "done_ids", BCON_INT32 (0), "}");
   bson_error_t error;
   bool found;
   int status = 0;

   if (!find_one (client, db, collection, filter, opts, out, &found, &error)) {
      status = db_error (db, collection, &error, "read %s %s", what, label);
   } else if (!found) {
      fflush (stdout);
      fprintf (stderr, "mtaskctl: no %s %s in %s.%s\n", what, label, db, collection);
      status = EXIT_RUNTIME;
   }
   bson_destroy (opts);
   return status;
}

static int
read_group (mongoc_client_t *client, const char *db, const ctl_t *ctl, bson_t *out)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (&ctl->oid));
   int status = read_doc (client, db, MT_GROUPS_COLLECTION, filter, "group", ctl->id, out);

   bson_destroy (filter);
   return status;
}

static int
read_sync (mongoc_client_t *client, const char *db, const char *name, bson_t *out)
{
   bson_t *filter = BCON_NEW ("_id", BCON_UTF8 (name));
   char *label = bson_strdup_printf ("'%s'", name);
   int status = read_doc (client, db, MT_SYNCHRONIZERS_COLLECTION, filter, "synchronizer", label, out);

   bson_free (label);
   bson_destroy (filter);
   return status;
}

static int
read_sync_stage (mongoc_client_t *client, const char *db, const bson_oid_t *id, bson_t *out)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   char hex[25];
   int status;

   bson_oid_to_string (id, hex);
   status = read_doc (client, db, MT_SYNC_STAGES_COLLECTION, filter, "stage", hex, out);
   bson_destroy (filter);
   return status;
}

/* {"_id": {"$oid": ID}} with --json, else the 24 hex digits. */
static void
print_id (const ctl_t *ctl, const bson_oid_t *id)
{
   char hex[25];

   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_OID (&out, "_id", id);
      print_json (&out);
      bson_destroy (&out);
   } else {
      bson_oid_to_string (id, hex);
      printf ("%s\n", hex);
   }
}

static const char *
get_str (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : NULL;
}

static const bson_oid_t *
get_oid (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_OID (&iter) ? bson_iter_oid (&iter) : NULL;
}

static int64_t
get_int (const bson_t *doc, const char *key, int64_t otherwise)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_NUMBER (&iter) ? bson_iter_as_int64 (&iter) : otherwise;
}

/* ---- staged groups (seed 003) ------------------------------------------- */

static int
cmd_group_create (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t opts = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id;
   int status = 0;

   if (ctl->seen[F_KEEP]) {
      BSON_APPEND_DOUBLE (&opts, "keep_seconds", ctl->keep);
   }
   if (!mt_group_create (client, db, ctl->value[F_DESCRIPTION], &opts, &id, &error)) {
      status = db_error (db, MT_GROUPS_COLLECTION, &error, "create a group");
   } else {
      print_id (ctl, &id);
   }
   bson_destroy (&opts);
   return status;
}

static int
cmd_group_add (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t group = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id;
   const char *group_status;
   int status = read_group (client, db, ctl, &group);

   if (status) {
      goto cleanup;
   }
   group_status = get_str (&group, "status");
   if (group_status && !strcmp (group_status, "complete")) {
      fprintf (stderr, "mtaskctl: group %s is complete and takes no more tasks; create a new one\n", ctl->id);
      status = EXIT_RUNTIME;
      goto cleanup;
   }
   if (ctl->seen[F_DELAY]) {
      BSON_APPEND_DOUBLE (&opts, "delay", ctl->delay);
   }
   if (ctl->seen[F_PRIORITY]) {
      BSON_APPEND_INT32 (&opts, "priority", ctl->priority);
   }
   if (ctl->seen[F_MAX_ATTEMPTS]) {
      BSON_APPEND_INT32 (&opts, "max_attempts", ctl->max_attempts);
   }
   if (!mt_group_enqueue (client,
                          db,
                          &ctl->oid,
                          ctl->stage,
                          ctl->value[F_QUEUE],
                          ctl->value[F_TYPE],
                          ctl->params,
                          &opts,
                          &id,
                          &error)) {
      status = db_error (db, MT_TASKS_COLLECTION, &error, "add a task to stage %d of group %s", ctl->stage, ctl->id);
      goto cleanup;
   }
   print_id (ctl, &id);

cleanup:
   bson_destroy (&group);
   bson_destroy (&opts);
   return status;
}

/* The group's first stage that is not complete, into `out` (as for
 * find_one); *found says whether there is one. */
static bool
current_stage (mongoc_client_t *client, const char *db, const bson_oid_t *group, bson_t *out, bool *found, bson_error_t *error)
{
   bson_t *filter = BCON_NEW ("group", BCON_OID (group), "status", "{", "$ne", "complete", "}");
   bson_t *opts = BCON_NEW ("sort", "{", "number", BCON_INT32 (1), "}", "projection", "{", "done_ids", BCON_INT32 (0), "}");
   bool ok = find_one (client, db, MT_GROUP_STAGES_COLLECTION, filter, opts, out, found, error);

   bson_destroy (filter);
   bson_destroy (opts);
   return ok;
}

static int
cmd_group_start (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   mongoc_collection_t *stages = mongoc_client_get_collection (client, db, MT_GROUP_STAGES_COLLECTION);
   bson_t *by_group = BCON_NEW ("group", BCON_OID (&ctl->oid));
   bson_t group = BSON_INITIALIZER, after = BSON_INITIALIZER, stage = BSON_INITIALIZER;
   bson_error_t error;
   bool was_running, found, have_stage = false;
   const char *group_status;
   char until[40];
   int64_t n_stages;
   int status = read_group (client, db, ctl, &group);

   if (status) {
      goto cleanup;
   }
   was_running = get_str (&group, "status") && !strcmp (get_str (&group, "status"), "running");
   n_stages = mongoc_collection_count_documents (stages, by_group, NULL, NULL, NULL, &error);
   if (n_stages < 0) {
      status = db_error (db, MT_GROUP_STAGES_COLLECTION, &error, "count the stages of group %s", ctl->id);
      goto cleanup;
   }
   if (n_stages == 0) {
      /* mt_group_initiate would complete it at once, and delete it. */
      fprintf (stderr,
               "mtaskctl: group %s has no tasks to start; add some first: mtaskctl group add %s --stage 1 --queue Q --type T\n",
               ctl->id,
               ctl->id);
      status = EXIT_RUNTIME;
      goto cleanup;
   }
   if (!mt_group_initiate (client, db, &ctl->oid, &error)) {
      status = db_error (db, MT_GROUPS_COLLECTION, &error, "start group %s", ctl->id);
      goto cleanup;
   }

   /* What it did: a stage runs, or the group is complete (kept or gone). */
   {
      bson_t *filter = BCON_NEW ("_id", BCON_OID (&ctl->oid));
      bool ok = find_one (client, db, MT_GROUPS_COLLECTION, filter, NULL, &after, &found, &error) &&
                current_stage (client, db, &ctl->oid, &stage, &have_stage, &error);

      bson_destroy (filter);
      if (!ok) {
         status = db_error (db, MT_GROUPS_COLLECTION, &error, "read group %s after starting it", ctl->id);
         goto cleanup;
      }
   }
   group_status = found ? get_str (&after, "status") : "complete";
   if (!group_status) {
      group_status = "?";
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_OID (&out, "_id", &ctl->oid);
      BSON_APPEND_UTF8 (&out, "status", group_status);
      BSON_APPEND_BOOL (&out, "deleted", !found);
      if (have_stage) {
         BSON_APPEND_INT64 (&out, "stage", get_int (&stage, "number", 0));
      } else {
         BSON_APPEND_NULL (&out, "stage");
      }
      print_json (&out);
      bson_destroy (&out);
   } else if (!found) {
      printf ("group %s: every stage is complete; the group is complete and deleted\n", ctl->id);
   } else if (!strcmp (group_status, "complete")) {
      printf ("group %s: every stage is complete; the group is complete, kept until %s\n",
              ctl->id,
              format_date (&after, "keep_until", until, sizeof until));
   } else if (have_stage) {
      printf ("group %s %s: stage %" PRId64 " %s, %" PRId64 " tasks, %" PRId64 " ended\n",
              ctl->id,
              was_running ? "was running already" : "started",
              get_int (&stage, "number", 0),
              get_str (&stage, "status") ? get_str (&stage, "status") : "?",
              get_int (&stage, "total", 0),
              get_int (&stage, "done", 0));
   } else {
      printf ("group %s: %s\n", ctl->id, group_status);
   }

cleanup:
   bson_destroy (&group);
   bson_destroy (&after);
   bson_destroy (&stage);
   bson_destroy (by_group);
   mongoc_collection_destroy (stages);
   return status;
}

/* Per group: how many stages, and the number of the first not complete
 * (-1 when none). */
typedef struct {
   bson_oid_t group;
   int64_t n_stages;
   int64_t current;
} group_stages_t;

static int
compare_group_stages (const void *pa, const void *pb)
{
   return bson_oid_compare (&((const group_stages_t *) pa)->group, &((const group_stages_t *) pb)->group);
}

static bool
stages_by_group (mongoc_client_t *client, const char *db, group_stages_t **out, size_t *n_out, bson_error_t *error)
{
   mongoc_collection_t *stages = mongoc_client_get_collection (client, db, MT_GROUP_STAGES_COLLECTION);
   bson_t *pipeline = BCON_NEW ("pipeline", "[",
                                "{", "$group", "{",
                                "_id", "$group",
                                "n", "{", "$sum", BCON_INT32 (1), "}",
                                "current", "{", "$min", "{", "$cond", "[",
                                "{", "$eq", "[", "$status", "complete", "]", "}", BCON_NULL, "$number",
                                "]", "}", "}",
                                "}", "}",
                                "]");
   mongoc_cursor_t *cursor = mongoc_collection_aggregate (stages, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   group_stages_t *items = NULL;
   size_t n = 0, cap = 0;
   const bson_t *doc;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      const bson_oid_t *group = get_oid (doc, "_id");

      if (!group) {
         continue;
      }
      if (n == cap) {
         cap = cap ? 2 * cap : 16;
         items = bson_realloc (items, cap * sizeof *items);
      }
      bson_oid_copy (group, &items[n].group);
      items[n].n_stages = get_int (doc, "n", 0);
      items[n].current = get_int (doc, "current", -1);
      n++;
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (pipeline);
   mongoc_collection_destroy (stages);
   if (ok) {
      if (n) {
         qsort (items, n, sizeof *items, compare_group_stages);
      }
      *out = items;
      *n_out = n;
   } else {
      bson_free (items);
   }
   return ok;
}

static void
group_ls_header (void)
{
   printf ("%-24s  %-8s  %-20s  %6s  %7s  %s\n", "ID", "STATUS", "CREATED", "STAGES", "CURRENT", "DESCRIPTION");
}

static int
cmd_group_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   mongoc_collection_t *groups = mongoc_client_get_collection (client, db, MT_GROUPS_COLLECTION);
   bson_t filter = BSON_INITIALIZER;
   bson_t *opts = BCON_NEW ("sort", "{", "created", BCON_INT32 (-1), "_id", BCON_INT32 (-1), "}");
   mongoc_cursor_t *cursor = NULL;
   group_stages_t *counts = NULL;
   size_t n_counts = 0;
   const bson_t *doc;
   bson_error_t error;
   bool header = false;
   int status = 0;

   if (!stages_by_group (client, db, &counts, &n_counts, &error)) {
      status = db_error (db, MT_GROUP_STAGES_COLLECTION, &error, "count the stages of the groups");
      goto cleanup;
   }
   cursor = mongoc_collection_find_with_opts (groups, &filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      group_stages_t key = {.n_stages = 0, .current = -1}, *found = NULL;
      char id[32], st[32], created[40], current[24];
      const char *description;

      if (get_oid (doc, "_id")) {
         bson_oid_copy (get_oid (doc, "_id"), &key.group);
         found = n_counts ? bsearch (&key, counts, n_counts, sizeof *counts, compare_group_stages) : NULL;
      }
      if (!found) {
         found = &key;
      }
      if (ctl->seen[F_JSON]) {
         bson_t out;

         bson_copy_to (doc, &out);
         BSON_APPEND_INT64 (&out, "stage_count", found->n_stages);
         if (found->current >= 0) {
            BSON_APPEND_INT64 (&out, "current_stage", found->current);
         } else {
            BSON_APPEND_NULL (&out, "current_stage");
         }
         print_json (&out);
         bson_destroy (&out);
         continue;
      }
      if (!header) {
         group_ls_header ();
         header = true;
      }
      if (found->current >= 0) {
         snprintf (current, sizeof current, "%" PRId64, found->current);
      } else {
         snprintf (current, sizeof current, "-");
      }
      description = get_str (doc, "description");
      printf ("%-24s  %-8s  %-20s  %6" PRId64 "  %7s  %s\n",
              format_field (doc, "_id", id, sizeof id),
              format_field (doc, "status", st, sizeof st),
              format_date (doc, "created", created, sizeof created),
              found->n_stages,
              current,
              description && description[0] ? description : "-");
   }
   if (mongoc_cursor_error (cursor, &error)) {
      status = db_error (db, MT_GROUPS_COLLECTION, &error, "list groups");
   } else if (!header && !ctl->seen[F_JSON]) {
      printf ("no groups in %s.%s\n", db, MT_GROUPS_COLLECTION);
   }

cleanup:
   mongoc_cursor_destroy (cursor);
   bson_free (counts);
   bson_destroy (&filter);
   bson_destroy (opts);
   mongoc_collection_destroy (groups);
   return status;
}

/* One row of group show: a stage document (NULL when its tasks exist but
 * it does not) and its tasks counted by status. */
typedef struct {
   int64_t number;
   bson_t *doc;
   bson_t tasks; /* {STATUS: n} */
} stage_row_t;

typedef struct {
   stage_row_t *items;
   size_t len, cap;
} stage_rows_t;

static stage_row_t *
stage_row (stage_rows_t *rows, int64_t number, bool add)
{
   for (size_t i = 0; i < rows->len; i++) {
      if (rows->items[i].number == number) {
         return &rows->items[i];
      }
   }
   if (!add) {
      return NULL;
   }
   if (rows->len == rows->cap) {
      rows->cap = rows->cap ? 2 * rows->cap : 8;
      rows->items = bson_realloc (rows->items, rows->cap * sizeof *rows->items);
   }
   rows->items[rows->len].number = number;
   rows->items[rows->len].doc = NULL;
   bson_init (&rows->items[rows->len].tasks);
   return &rows->items[rows->len++];
}

static int
compare_stage_rows (const void *pa, const void *pb)
{
   const stage_row_t *a = pa, *b = pb;

   return a->number != b->number ? (a->number < b->number ? -1 : 1) : 0;
}

static void
stage_rows_destroy (stage_rows_t *rows)
{
   for (size_t i = 0; i < rows->len; i++) {
      bson_destroy (rows->items[i].doc);
      bson_destroy (&rows->items[i].tasks);
   }
   bson_free (rows->items);
}

/* The group's stages, then its tasks counted by stage and status. */
static bool
read_stage_rows (mongoc_client_t *client, const char *db, const bson_oid_t *group, stage_rows_t *rows, bson_error_t *error)
{
   mongoc_collection_t *stages = mongoc_client_get_collection (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   bson_t *filter = BCON_NEW ("group", BCON_OID (group));
   bson_t *opts = BCON_NEW ("sort", "{", "number", BCON_INT32 (1), "}", "projection", "{", "done_ids", BCON_INT32 (0), "}");
   bson_t *pipeline = BCON_NEW ("pipeline", "[",
                                "{", "$match", "{", "group", BCON_OID (group), "}", "}",
                                "{", "$group", "{",
                                "_id", "{", "stage", "$stage", "status", "$status", "}",
                                "n", "{", "$sum", BCON_INT32 (1), "}",
                                "}", "}",
                                "]");
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool ok;

   cursor = mongoc_collection_find_with_opts (stages, filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      stage_row_t *row = stage_row (rows, get_int (doc, "number", 0), true);

      if (!row->doc) {
         row->doc = bson_copy (doc);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);

   if (ok) {
      cursor = mongoc_collection_aggregate (tasks, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t iter;
         const uint8_t *data;
         uint32_t len;
         bson_t key;
         const char *task_status;
         stage_row_t *row;

         if (!bson_iter_init_find (&iter, doc, "_id") || !BSON_ITER_HOLDS_DOCUMENT (&iter)) {
            continue;
         }
         bson_iter_document (&iter, &len, &data);
         if (!bson_init_static (&key, data, len)) {
            continue;
         }
         task_status = get_str (&key, "status");
         row = stage_row (rows, get_int (&key, "stage", 0), true);
         BSON_APPEND_INT64 (&row->tasks, task_status ? task_status : "(none)", get_int (doc, "n", 0));
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
   }
   if (rows->len) {
      qsort (rows->items, rows->len, sizeof *rows->items, compare_stage_rows);
   }
   bson_destroy (filter);
   bson_destroy (opts);
   bson_destroy (pipeline);
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   return ok;
}

static void
group_show_json (const bson_t *group, const stage_rows_t *rows)
{
   bson_t out = BSON_INITIALIZER, list, item;

   BSON_APPEND_DOCUMENT (&out, "group", group);
   BSON_APPEND_ARRAY_BEGIN (&out, "stages", &list);
   for (size_t i = 0; i < rows->len; i++) {
      char key[16];
      const char *k;

      bson_uint32_to_string ((uint32_t) i, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT_BEGIN (&list, k, &item);
      if (rows->items[i].doc) {
         bson_concat (&item, rows->items[i].doc);
      } else {
         BSON_APPEND_INT64 (&item, "number", rows->items[i].number);
         BSON_APPEND_BOOL (&item, "missing", true);
      }
      BSON_APPEND_DOCUMENT (&item, "tasks", &rows->items[i].tasks);
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (&out, &list);
   print_json (&out);
   bson_destroy (&out);
}

static void
group_show_table (const bson_t *group, const stage_rows_t *rows)
{
   const char **cols = NULL;
   size_t n_cols = 0, cap = 0;
   char buf[64], date[40], keep[64];
   const char *description = get_str (group, "description");
   bson_iter_t iter;

   printf ("group        %s\n", format_field (group, "_id", buf, sizeof buf));
   printf ("description  %s\n", description && description[0] ? description : "-");
   printf ("status       %s\n", format_field (group, "status", buf, sizeof buf));
   printf ("created      %s\n", format_date (group, "created", date, sizeof date));
   printf ("completed    %s\n", format_date (group, "completed", date, sizeof date));
   if (bson_iter_init_find (&iter, group, "keep_seconds") && BSON_ITER_HOLDS_NUMBER (&iter) && bson_iter_as_double (&iter) > 0) {
      snprintf (keep, sizeof keep, "%g s after completing", bson_iter_as_double (&iter));
      if (bson_iter_init_find (&iter, group, "keep_until") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         printf ("kept         %s, until %s\n", keep, format_date (group, "keep_until", date, sizeof date));
      } else {
         printf ("kept         %s\n", keep);
      }
   } else {
      printf ("kept         no: deleted when complete\n");
   }
   printf ("\n");
   if (!rows->len) {
      printf ("no stages yet: add tasks with 'mtaskctl group add %s --stage 1 ...'\n",
              format_field (group, "_id", buf, sizeof buf));
      return;
   }

   /* Columns: every task status that occurs, in lifecycle order. */
   for (size_t i = 0; i < rows->len; i++) {
      bson_iter_init (&iter, &rows->items[i].tasks);
      while (bson_iter_next (&iter)) {
         bool known = false;

         for (size_t c = 0; c < n_cols; c++) {
            known |= !strcmp (cols[c], bson_iter_key (&iter));
         }
         if (!known) {
            if (n_cols == cap) {
               cap = cap ? 2 * cap : 8;
               cols = bson_realloc ((void *) cols, cap * sizeof *cols);
            }
            cols[n_cols++] = bson_iter_key (&iter); /* lives as long as rows */
         }
      }
   }
   if (n_cols) {
      qsort ((void *) cols, n_cols, sizeof *cols, compare_status_ptrs);
   }

   printf ("%5s  %-8s  %6s  %6s", "STAGE", "STATUS", "TOTAL", "DONE");
   for (size_t c = 0; c < n_cols; c++) {
      printf ("  %*s", (int) BSON_MAX (strlen (cols[c]), 7), cols[c]);
   }
   printf ("  %-20s  %s\n", "STARTED", "COMPLETED");
   for (size_t i = 0; i < rows->len; i++) {
      const stage_row_t *row = &rows->items[i];
      char total[24], done[24], started[40], completed[40];

      if (row->doc) {
         snprintf (total, sizeof total, "%" PRId64, get_int (row->doc, "total", 0));
         snprintf (done, sizeof done, "%" PRId64, get_int (row->doc, "done", 0));
      } else {
         snprintf (total, sizeof total, "-");
         snprintf (done, sizeof done, "-");
      }
      printf ("%5" PRId64 "  %-8s  %6s  %6s",
              row->number,
              row->doc ? format_field (row->doc, "status", buf, sizeof buf) : "missing",
              total,
              done);
      for (size_t c = 0; c < n_cols; c++) {
         printf ("  %*" PRId64, (int) BSON_MAX (strlen (cols[c]), 7), get_int (&row->tasks, cols[c], 0));
      }
      printf ("  %-20s  %s\n",
              row->doc ? format_date (row->doc, "started", started, sizeof started) : "-",
              row->doc ? format_date (row->doc, "completed", completed, sizeof completed) : "-");
   }
   for (size_t i = 0; i < rows->len; i++) {
      if (!rows->items[i].doc) {
         printf ("\na 'missing' stage has tasks but no document in group_stages: "
                 "'mtaskctl group clean' repairs it\n");
         break;
      }
   }
   bson_free ((void *) cols);
}

static int
cmd_group_show (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   stage_rows_t rows = {0};
   bson_t group = BSON_INITIALIZER;
   bson_error_t error;
   int status = read_group (client, db, ctl, &group);

   if (status) {
      goto cleanup;
   }
   if (!read_stage_rows (client, db, &ctl->oid, &rows, &error)) {
      status = db_error (db, MT_GROUP_STAGES_COLLECTION, &error, "read the stages of group %s", ctl->id);
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      group_show_json (&group, &rows);
   } else {
      group_show_table (&group, &rows);
   }

cleanup:
   stage_rows_destroy (&rows);
   bson_destroy (&group);
   return status;
}

static int
cmd_group_clean (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bool purge = ctl->seen[F_PURGE];
   bson_error_t error;
   int64_t n = mt_groups_clean (client, db, purge, &error);

   if (n < 0) {
      return db_error (db, MT_GROUPS_COLLECTION, &error, purge ? "purge the groups" : "repair the groups");
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_INT64 (&out, purge ? "purged_tasks" : "repaired", n);
      print_json (&out);
      bson_destroy (&out);
   } else if (purge) {
      printf ("purged: %" PRId64 " staged tasks deleted, and every group and stage\n", n);
   } else {
      printf ("repaired %" PRId64 " groups or stages from their orphaned tasks\n", n);
   }
   return 0;
}

/* ---- synchronizers (seed 000) ------------------------------------------- */

/* The name of the stage that `key` of `doc` points at, bson_strdup'ed, into
 * *name; NULL when it points nowhere or at no stage (*dangling then says
 * which). */
static bool
stage_name (mongoc_client_t *client, const char *db, const bson_t *doc, const char *key, char **name, bool *dangling, bson_error_t *error)
{
   const bson_oid_t *id = get_oid (doc, key);
   bson_t *filter, *opts, stage = BSON_INITIALIZER;
   char buf[32];
   bool ok, found;

   *name = NULL;
   *dangling = false;
   if (!id) {
      bson_destroy (&stage);
      return true;
   }
   filter = BCON_NEW ("_id", BCON_OID (id));
   opts = BCON_NEW ("projection", "{", "name", BCON_INT32 (1), "}");
   ok = find_one (client, db, MT_SYNC_STAGES_COLLECTION, filter, opts, &stage, &found, error);
   if (ok && found) {
      *name = bson_strdup (format_field (&stage, "name", buf, sizeof buf));
   }
   *dangling = ok && !found;
   bson_destroy (filter);
   bson_destroy (opts);
   bson_destroy (&stage);
   return ok;
}

static int
cmd_sync_stage (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t next = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id;
   int status = 0;

   if (ctl->seen[F_NEXT] && (status = read_sync_stage (client, db, &ctl->next, &next))) {
      goto cleanup;
   }
   if (!mt_sync_stage_create (client,
                              db,
                              ctl->value[F_NAME],
                              ctl->value[F_CALLABLE],
                              ctl->value[F_QUEUE],
                              ctl->value[F_TASK],
                              ctl->seen[F_NEXT] ? &ctl->next : NULL,
                              ctl->params,
                              &id,
                              &error)) {
      status = db_error (db, MT_SYNC_STAGES_COLLECTION, &error, "create stage '%s'", ctl->value[F_NAME]);
      goto cleanup;
   }
   print_id (ctl, &id);

cleanup:
   bson_destroy (&next);
   return status;
}

static int
cmd_sync_create (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t stage = BSON_INITIALIZER, sync = BSON_INITIALIZER;
   bson_error_t error;
   char buf[32];
   int status = read_sync_stage (client, db, &ctl->start_stage, &stage);

   if (status) {
      goto cleanup;
   }
   if (!mt_sync_create (client, db, ctl->id, &ctl->start_stage, &error)) {
      status = db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "create synchronizer '%s'", ctl->id);
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      if (!(status = read_sync (client, db, ctl->id, &sync))) {
         print_json (&sync);
      }
   } else {
      printf ("synchronizer '%s' created, on stand-by; it begins at stage '%s' (%s)\n",
              ctl->id,
              format_field (&stage, "name", buf, sizeof buf),
              ctl->value[F_START_STAGE]);
   }

cleanup:
   bson_destroy (&stage);
   bson_destroy (&sync);
   return status;
}

static int
cmd_sync_start (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t before = BSON_INITIALIZER, after = BSON_INITIALIZER, stage = BSON_INITIALIZER;
   bson_error_t error;
   const char *was;
   char task[32], buf[32];
   int status = read_sync (client, db, ctl->id, &before);

   if (status) {
      goto cleanup;
   }
   was = get_str (&before, "status");
   if (ctl->seen[F_NOW] ? !mt_sync_begin_stage (client, db, ctl->id, NULL, &error)
                        : !mt_sync_request_start (client, db, ctl->id, &error)) {
      status = db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "start synchronizer '%s'", ctl->id);
      goto cleanup;
   }
   if ((status = read_sync (client, db, ctl->id, &after))) {
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      print_json (&after);
   } else if (!ctl->seen[F_NOW]) {
      if (was && !strcmp (was, "running")) {
         printf ("synchronizer '%s' is running: asked to begin again; a running worker begins it at its first "
                 "upkeep tick after it is back on stand-by\n",
                 ctl->id);
      } else {
         printf ("synchronizer '%s': start requested; a running worker begins it at its next upkeep tick\n", ctl->id);
      }
   } else {
      const bson_oid_t *at = get_oid (&after, "actual_stage");

      if (at && (status = read_sync_stage (client, db, at, &stage))) {
         goto cleanup;
      }
      printf ("synchronizer '%s' began stage '%s': task %s of type %s",
              ctl->id,
              format_field (&stage, "name", buf, sizeof buf),
              format_field (&after, "stage_task", task, sizeof task),
              get_str (&stage, "callable") ? get_str (&stage, "callable") : "?");
      printf (" on queue %s\n", get_str (&stage, "queue") ? get_str (&stage, "queue") : "?");
   }

cleanup:
   bson_destroy (&before);
   bson_destroy (&after);
   bson_destroy (&stage);
   return status;
}

static int
cmd_sync_check (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t before = BSON_INITIALIZER, after = BSON_INITIALIZER, stage = BSON_INITIALIZER;
   bson_error_t error;
   const char *was, *now;
   bool advanced = false;
   char buf[32];
   int status = read_sync (client, db, ctl->id, &before);

   if (status) {
      goto cleanup;
   }
   was = get_str (&before, "status");
   if (!was || strcmp (was, "running") != 0) {
      if (ctl->seen[F_JSON]) {
         bson_copy_to_excluding_noinit (&before, &after, "advanced", NULL);
         BSON_APPEND_BOOL (&after, "advanced", false);
         print_json (&after);
      } else {
         printf ("not running (%s): nothing to check; 'mtaskctl sync start %s' begins it\n", was ? was : "?", ctl->id);
      }
      goto cleanup;
   }
   if (!mt_sync_check_completion (client, db, ctl->id, &advanced, &error)) {
      status = db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "check synchronizer '%s'", ctl->id);
      goto cleanup;
   }
   if ((status = read_sync (client, db, ctl->id, &after))) {
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      BSON_APPEND_BOOL (&after, "advanced", advanced);
      print_json (&after);
      goto cleanup;
   }
   now = get_str (&after, "status");
   if (now && !strcmp (now, "running") && get_oid (&after, "actual_stage") &&
       (status = read_sync_stage (client, db, get_oid (&after, "actual_stage"), &stage))) {
      goto cleanup;
   }
   if (!advanced) {
      printf ("not complete yet: stage '%s' waits for queue %s to drain\n",
              format_field (&stage, "name", buf, sizeof buf),
              get_str (&stage, "queue") ? get_str (&stage, "queue") : "?");
   } else if (now && !strcmp (now, "running")) {
      printf ("advanced: now at stage '%s'\n", format_field (&stage, "name", buf, sizeof buf));
   } else {
      printf ("advanced: its last stage is complete; back on stand-by\n");
   }

cleanup:
   bson_destroy (&before);
   bson_destroy (&after);
   bson_destroy (&stage);
   return status;
}

/* One row of sync ls. */
typedef struct {
   char *name, *status, *stage, *start;
   char started[40], finished[40], start_at[40];
} sync_row_t;

static int
cmd_sync_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   mongoc_collection_t *syncs = mongoc_client_get_collection (client, db, MT_SYNCHRONIZERS_COLLECTION);
   bson_t filter = BSON_INITIALIZER;
   bson_t *opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (syncs, &filter, opts, NULL);
   sync_row_t *rows = NULL;
   size_t n = 0, cap = 0;
   int widths[4] = {4, 6, 5, 11}; /* NAME STATUS STAGE START_STAGE */
   const bson_t *doc;
   bson_error_t error;
   int status = 0;

   while (mongoc_cursor_next (cursor, &doc)) {
      char *at = NULL, *start = NULL, buf[64];
      bool at_dangling, start_dangling;

      if (!stage_name (client, db, doc, "actual_stage", &at, &at_dangling, &error) ||
          !stage_name (client, db, doc, "start_stage", &start, &start_dangling, &error)) {
         bson_free (at);
         status = db_error (db, MT_SYNC_STAGES_COLLECTION, &error, "read the stages of synchronizer '%s'",
                            format_field (doc, "_id", buf, sizeof buf));
         goto cleanup;
      }
      if (ctl->seen[F_JSON]) {
         bson_t out;

         bson_copy_to (doc, &out);
         if (at) {
            BSON_APPEND_UTF8 (&out, "actual_stage_name", at);
         } else {
            BSON_APPEND_NULL (&out, "actual_stage_name");
         }
         if (start) {
            BSON_APPEND_UTF8 (&out, "start_stage_name", start);
         } else {
            BSON_APPEND_NULL (&out, "start_stage_name");
         }
         print_json (&out);
         bson_destroy (&out);
         bson_free (at);
         bson_free (start);
         continue;
      }
      if (n == cap) {
         cap = cap ? 2 * cap : 16;
         rows = bson_realloc (rows, cap * sizeof *rows);
      }
      rows[n].name = bson_strdup (format_field (doc, "_id", buf, sizeof buf));
      rows[n].status = bson_strdup (format_field (doc, "status", buf, sizeof buf));
      rows[n].stage = at ? at : bson_strdup (at_dangling ? "(missing)" : "-");
      rows[n].start = start ? start : bson_strdup (start_dangling ? "(missing)" : "-");
      if (!strcmp (format_date (doc, "started", rows[n].started, sizeof rows[n].started), "-")) {
         snprintf (rows[n].started, sizeof rows[n].started, "-");
      }
      if (!strcmp (format_date (doc, "finished", rows[n].finished, sizeof rows[n].finished), "-")) {
         snprintf (rows[n].finished, sizeof rows[n].finished, "-");
      }
      if (!strcmp (format_date (doc, "start_at", rows[n].start_at, sizeof rows[n].start_at), "-")) {
         rows[n].start_at[0] = '\0';
      }
      widths[0] = BSON_MAX (widths[0], (int) strlen (rows[n].name));
      widths[1] = BSON_MAX (widths[1], (int) strlen (rows[n].status));
      widths[2] = BSON_MAX (widths[2], (int) strlen (rows[n].stage));
      widths[3] = BSON_MAX (widths[3], (int) strlen (rows[n].start));
      n++;
   }
   if (mongoc_cursor_error (cursor, &error)) {
      status = db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "list synchronizers");
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      goto cleanup;
   }
   if (!n) {
      printf ("no synchronizers in %s.%s\n", db, MT_SYNCHRONIZERS_COLLECTION);
      goto cleanup;
   }
   printf ("%-*s  %-*s  %-*s  %-*s  %-20s  %s\n",
           widths[0], "NAME", widths[1], "STATUS", widths[2], "STAGE", widths[3], "START_STAGE", "STARTED", "FINISHED");
   for (size_t i = 0; i < n; i++) {
      printf ("%-*s  %-*s  %-*s  %-*s  %-20s  %s\n",
              widths[0], rows[i].name,
              widths[1], rows[i].status,
              widths[2], rows[i].stage,
              widths[3], rows[i].start,
              rows[i].started,
              rows[i].finished);
   }
   for (size_t i = 0; i < n; i++) {
      if (rows[i].start_at[0]) {
         printf ("%s: start requested at %s; a running worker begins it at its next upkeep tick once it is on stand-by\n",
                 rows[i].name,
                 rows[i].start_at);
      }
   }

cleanup:
   for (size_t i = 0; i < n; i++) {
      bson_free (rows[i].name);
      bson_free (rows[i].status);
      bson_free (rows[i].stage);
      bson_free (rows[i].start);
   }
   bson_free (rows);
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   bson_destroy (opts);
   mongoc_collection_destroy (syncs);
   return status;
}

/* ---- concurrency slots (seed 002) --------------------------------------- */

/* A timeout as the pool's lines print it: "300 s", or "none" for 0. */
static const char *
format_timeout (const bson_t *pool, char *buf, size_t size)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, pool, "timeout_seconds") || !BSON_ITER_HOLDS_NUMBER (&iter)) {
      return "-";
   }
   if (bson_iter_as_double (&iter) <= 0) {
      return "none";
   }
   snprintf (buf, size, "%.15g s", bson_iter_as_double (&iter));
   return buf;
}

static int
cmd_pool_set (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   mongoc_collection_t *slots = NULL;
   bson_t pool = BSON_INITIALIZER;
   bson_t *filter = NULL;
   bson_error_t error;
   bool found;
   int64_t beyond;
   int status = 0;

   /* Without --timeout, a resize keeps the pool's timeout. */
   if (!mt_pool_set (client, db, ctl->id, ctl->size, ctl->seen[F_TIMEOUT] ? ctl->timeout : -1, &error)) {
      if (error.domain == MT_ERROR_CONFIG && error.code == MT_CONFIG_ERROR_INVALID) {
         fail ("cannot set pool '%s': %s", ctl->id, error.message);
         status = EXIT_USAGE;
      } else {
         status = db_error (db, MT_POOLS_COLLECTION, &error, "set pool '%s'", ctl->id);
      }
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      filter = BCON_NEW ("_id", BCON_UTF8 (ctl->id));
      if (!find_one (client, db, MT_POOLS_COLLECTION, filter, NULL, &pool, &found, &error)) {
         status = db_error (db, MT_POOLS_COLLECTION, &error, "read pool '%s'", ctl->id);
      } else if (!found) {
         fprintf (stderr, "mtaskctl: no pool '%s' in %s.%s after setting it\n", ctl->id, db, MT_POOLS_COLLECTION);
         status = EXIT_RUNTIME;
      } else {
         print_json (&pool);
      }
      goto cleanup;
   }
   if (ctl->seen[F_TIMEOUT]) {
      printf ("pool %s: %d slots, timeout %.15g s\n", ctl->id, ctl->size, ctl->timeout);
   } else {
      printf ("pool %s: %d slots, timeout unchanged\n", ctl->id, ctl->size);
   }

   /* A shrunk pool: its slots at or above the size run on until they end. */
   slots = mongoc_client_get_collection (client, db, MT_SLOTS_COLLECTION);
   filter = BCON_NEW ("pool", BCON_UTF8 (ctl->id),
                      "index", "{", "$gte", BCON_INT32 (ctl->size), "}",
                      "task", "{", "$ne", BCON_NULL, "}");
   beyond = mongoc_collection_count_documents (slots, filter, NULL, NULL, NULL, &error);
   if (beyond < 0) {
      status = db_error (db, MT_SLOTS_COLLECTION, &error, "count the held slots of pool '%s'", ctl->id);
   } else if (beyond > 0) {
      printf ("%" PRId64 " of its slots at index %d or above are still held: each is freed, and no longer used, "
              "when its task ends\n",
              beyond,
              ctl->size);
   }

cleanup:
   bson_destroy (filter);
   bson_destroy (&pool);
   mongoc_collection_destroy (slots);
   return status;
}

/* Documents read into memory, in the order read. */
typedef struct {
   bson_t **items;
   size_t len, cap;
} doc_list_t;

static bool
read_docs (mongoc_client_t *client,
           const char *db,
           const char *collection,
           const bson_t *filter,
           const bson_t *opts,
           doc_list_t *list,
           bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (coll, filter, opts, NULL);
   const bson_t *doc;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      if (list->len == list->cap) {
         list->cap = list->cap ? 2 * list->cap : 16;
         list->items = bson_realloc (list->items, list->cap * sizeof *list->items);
      }
      list->items[list->len++] = bson_copy (doc);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return ok;
}

static void
doc_list_destroy (doc_list_t *list)
{
   for (size_t i = 0; i < list->len; i++) {
      bson_destroy (list->items[i]);
   }
   bson_free (list->items);
}

/* Whether a held slot belongs to the pool named `name` (NULL: none). */
static bool
slot_of (const bson_t *slot, const char *name)
{
   const char *pool = get_str (slot, "pool");

   return name && pool && !strcmp (pool, name);
}

/* The pool a held slot belongs to among `pools`, or NULL. */
static const bson_t *
pool_of (const doc_list_t *pools, const bson_t *slot)
{
   for (size_t p = 0; p < pools->len; p++) {
      if (slot_of (slot, get_str (pools->items[p], "_id"))) {
         return pools->items[p];
      }
   }
   return NULL;
}

/* Whether a held slot is at or above its pool's size (NULL pool: no). */
static bool
beyond_size (const bson_t *pool, const bson_t *slot)
{
   return pool && get_int (slot, "index", -1) >= get_int (pool, "size", 0);
}

static void
append_value_or_null (bson_t *out, const char *key, const bson_t *doc)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, doc, key)) {
      BSON_APPEND_VALUE (out, key, bson_iter_value (&iter));
   } else {
      BSON_APPEND_NULL (out, key);
   }
}

static void
slots_json (const doc_list_t *pools, const doc_list_t *held)
{
   bson_t out = BSON_INITIALIZER, list, item, slots, copy, undeclared;
   char key[16];
   const char *k;
   uint32_t n_undeclared = 0;

   BSON_APPEND_ARRAY_BEGIN (&out, "pools", &list);
   for (size_t p = 0; p < pools->len; p++) {
      const bson_t *pool = pools->items[p];
      const char *name = get_str (pool, "_id");
      int64_t in_use = 0;
      uint32_t n = 0;

      bson_uint32_to_string ((uint32_t) p, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT_BEGIN (&list, k, &item);
      append_value_or_null (&item, "_id", pool);
      append_value_or_null (&item, "size", pool);
      append_value_or_null (&item, "timeout_seconds", pool);
      for (size_t s = 0; s < held->len; s++) {
         in_use += slot_of (held->items[s], name) && !beyond_size (pool, held->items[s]);
      }
      BSON_APPEND_INT64 (&item, "in_use", in_use);
      BSON_APPEND_ARRAY_BEGIN (&item, "slots", &slots);
      for (size_t s = 0; s < held->len; s++) {
         if (!slot_of (held->items[s], name)) {
            continue;
         }
         bson_uint32_to_string (n++, &k, key, sizeof key);
         bson_init (&copy);
         bson_copy_to_excluding_noinit (held->items[s], &copy, "beyond_size", NULL);
         BSON_APPEND_BOOL (&copy, "beyond_size", beyond_size (pool, held->items[s]));
         BSON_APPEND_DOCUMENT (&slots, k, &copy);
         bson_destroy (&copy);
      }
      bson_append_array_end (&item, &slots);
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (&out, &list);

   /* Held slots of a pool DB.pools no longer has: only when there are. */
   for (size_t s = 0; s < held->len; s++) {
      if (pool_of (pools, held->items[s])) {
         continue;
      }
      if (!n_undeclared) {
         BSON_APPEND_ARRAY_BEGIN (&out, "undeclared", &undeclared);
      }
      bson_uint32_to_string (n_undeclared++, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT (&undeclared, k, held->items[s]);
   }
   if (n_undeclared) {
      bson_append_array_end (&out, &undeclared);
   }
   print_json (&out);
   bson_destroy (&out);
}

/* The columns of one held slot's row. */
typedef struct {
   char pool[64], index[24], task[64], worker[128], since[40], keepalive[40];
   const char *mark;
} slot_cells_t;

static void
slot_cells (const doc_list_t *pools, const bson_t *slot, slot_cells_t *c)
{
   const bson_t *pool = pool_of (pools, slot);
   char buf[64];

   snprintf (c->pool, sizeof c->pool, "%s", format_field (slot, "pool", buf, sizeof buf));
   snprintf (c->index, sizeof c->index, "%s", format_field (slot, "index", buf, sizeof buf));
   snprintf (c->task, sizeof c->task, "%s", format_field (slot, "task", buf, sizeof buf));
   snprintf (c->worker, sizeof c->worker, "%s", format_field (slot, "worker_pid", buf, sizeof buf));
   if (!strcmp (format_date (slot, "acquired", c->since, sizeof c->since), "-")) {
      snprintf (c->since, sizeof c->since, "-");
   }
   if (!strcmp (format_date (slot, "keepalive", c->keepalive, sizeof c->keepalive), "-")) {
      snprintf (c->keepalive, sizeof c->keepalive, "-");
   }
   c->mark = !pool ? "(pool not declared)" : beyond_size (pool, slot) ? "(beyond size)" : "";
}

static void
slots_table (const char *db, const doc_list_t *pools, const doc_list_t *held)
{
   int pw[4] = {4, 4, 7, 6};             /* POOL SIZE TIMEOUT IN_USE */
   int sw[4] = {4, 5, 4, 6};             /* POOL INDEX TASK WORKER */
   char size[24], timeout[40];
   slot_cells_t c;
   const bson_t *pool;

   if (!pools->len) {
      printf ("no pools in %s.%s; declare one with 'mtaskctl pool set NAME --size N'\n", db, MT_POOLS_COLLECTION);
   } else {
      for (size_t p = 0; p < pools->len; p++) {
         pool = pools->items[p];
         pw[0] = BSON_MAX (pw[0], (int) strlen (format_field (pool, "_id", size, sizeof size)));
         pw[1] = BSON_MAX (pw[1], (int) strlen (format_field (pool, "size", size, sizeof size)));
         pw[2] = BSON_MAX (pw[2], (int) strlen (format_timeout (pool, timeout, sizeof timeout)));
      }
      printf ("%-*s  %*s  %*s  %*s\n", pw[0], "POOL", pw[1], "SIZE", pw[2], "TIMEOUT", pw[3], "IN_USE");
      for (size_t p = 0; p < pools->len; p++) {
         const char *name;
         char id[64];
         int64_t in_use = 0, beyond = 0;

         pool = pools->items[p];
         name = get_str (pool, "_id");
         for (size_t s = 0; s < held->len; s++) {
            if (slot_of (held->items[s], name)) {
               *(beyond_size (pool, held->items[s]) ? &beyond : &in_use) += 1;
            }
         }
         printf ("%-*s  %*s  %*s  %*" PRId64,
                 pw[0], format_field (pool, "_id", id, sizeof id),
                 pw[1], format_field (pool, "size", size, sizeof size),
                 pw[2], format_timeout (pool, timeout, sizeof timeout),
                 pw[3], in_use);
         if (beyond) {
            printf ("  +%" PRId64 " beyond size", beyond);
         }
         printf ("\n");
      }
   }
   if (!held->len) {
      if (pools->len) {
         printf ("\nno slot is held\n");
      }
      return;
   }
   for (size_t s = 0; s < held->len; s++) {
      slot_cells (pools, held->items[s], &c);
      sw[0] = BSON_MAX (sw[0], (int) strlen (c.pool));
      sw[1] = BSON_MAX (sw[1], (int) strlen (c.index));
      sw[2] = BSON_MAX (sw[2], (int) strlen (c.task));
      sw[3] = BSON_MAX (sw[3], (int) strlen (c.worker));
   }
   printf ("\n%-*s  %*s  %-*s  %-*s  %-20s  %s\n",
           sw[0], "POOL", sw[1], "INDEX", sw[2], "TASK", sw[3], "WORKER", "SINCE", "KEEPALIVE");
   for (size_t s = 0; s < held->len; s++) {
      slot_cells (pools, held->items[s], &c);
      printf ("%-*s  %*s  %-*s  %-*s  %-20s  ", sw[0], c.pool, sw[1], c.index, sw[2], c.task, sw[3], c.worker, c.since);
      if (c.mark[0]) {
         printf ("%-20s  %s\n", c.keepalive, c.mark);
      } else {
         printf ("%s\n", c.keepalive);
      }
   }
}

static int
cmd_slots (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t all = BSON_INITIALIZER;
   bson_t *by_name = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   bson_t *held_filter = BCON_NEW ("task", "{", "$ne", BCON_NULL, "}");
   bson_t *by_slot = BCON_NEW ("sort", "{", "pool", BCON_INT32 (1), "index", BCON_INT32 (1), "}");
   doc_list_t pools = {0}, held = {0};
   bson_error_t error;
   int status = 0;

   if (!read_docs (client, db, MT_POOLS_COLLECTION, &all, by_name, &pools, &error)) {
      status = db_error (db, MT_POOLS_COLLECTION, &error, "list pools");
      goto cleanup;
   }
   if (!read_docs (client, db, MT_SLOTS_COLLECTION, held_filter, by_slot, &held, &error)) {
      status = db_error (db, MT_SLOTS_COLLECTION, &error, "list the held slots");
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      slots_json (&pools, &held);
   } else {
      slots_table (db, &pools, &held);
   }

cleanup:
   doc_list_destroy (&pools);
   doc_list_destroy (&held);
   bson_destroy (&all);
   bson_destroy (by_name);
   bson_destroy (held_filter);
   bson_destroy (by_slot);
   return status;
}

static int
cmd_slot_keepalive (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t *filter = BCON_NEW ("task", BCON_OID (&ctl->oid));
   bson_t slot = BSON_INITIALIZER;
   bson_error_t error;
   char id[64], at[40];
   bool found;
   int status = 0;

   if (!mt_slot_keepalive (client, db, &ctl->oid, &error)) {
      status = db_error (db, MT_SLOTS_COLLECTION, &error, "keep the slot of task %s alive", ctl->id);
      goto cleanup;
   }
   if (!find_one (client, db, MT_SLOTS_COLLECTION, filter, NULL, &slot, &found, &error)) {
      status = db_error (db, MT_SLOTS_COLLECTION, &error, "read the slot of task %s", ctl->id);
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      print_json (&slot); /* {} when it was freed meanwhile */
   } else if (!found) {
      printf ("task %s: slot kept alive; it has been freed since\n", ctl->id);
   } else {
      printf ("task %s: slot %s kept alive at %s\n",
              ctl->id,
              format_field (&slot, "_id", id, sizeof id),
              format_date (&slot, "keepalive", at, sizeof at));
   }

cleanup:
   bson_destroy (filter);
   bson_destroy (&slot);
   return status;
}

/* The task's status into *out (bson_strdup'ed), NULL when there is no such
 * task. */
static bool
task_status (mongoc_client_t *client, const char *db, const bson_oid_t *id, char **out, bson_error_t *error)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   bson_t *opts = BCON_NEW ("projection", "{", "status", BCON_INT32 (1), "}");
   bson_t task = BSON_INITIALIZER;
   bool found, ok = find_one (client, db, MT_TASKS_COLLECTION, filter, opts, &task, &found, error);

   *out = ok && found ? bson_strdup (get_str (&task, "status") ? get_str (&task, "status") : "?") : NULL;
   bson_destroy (filter);
   bson_destroy (opts);
   bson_destroy (&task);
   return ok;
}

static int
cmd_slot_stop (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t *filter = BCON_NEW ("task", BCON_OID (&ctl->oid));
   bson_t *opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   doc_list_t slots = {0};
   char *was = NULL, *now = NULL, *names = NULL;
   bson_error_t error;
   int status = 0;

   if (!read_docs (client, db, MT_SLOTS_COLLECTION, filter, opts, &slots, &error)) {
      status = db_error (db, MT_SLOTS_COLLECTION, &error, "read the slots of task %s", ctl->id);
      goto cleanup;
   }
   if (!task_status (client, db, &ctl->oid, &was, &error)) {
      status = db_error (db, MT_TASKS_COLLECTION, &error, "read task %s", ctl->id);
      goto cleanup;
   }
   if (!mt_slot_stop (client, db, &ctl->oid, &error)) {
      status = db_error (db, MT_SLOTS_COLLECTION, &error, "stop task %s", ctl->id);
      goto cleanup;
   }
   if (!task_status (client, db, &ctl->oid, &now, &error)) {
      status = db_error (db, MT_TASKS_COLLECTION, &error, "read task %s after stopping it", ctl->id);
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER, list;
      char key[16];
      const char *k;

      BSON_APPEND_OID (&out, "_id", &ctl->oid);
      BSON_APPEND_ARRAY_BEGIN (&out, "slots", &list);
      for (size_t i = 0; i < slots.len; i++) {
         bson_iter_t iter;

         bson_uint32_to_string ((uint32_t) i, &k, key, sizeof key);
         if (bson_iter_init_find (&iter, slots.items[i], "_id")) {
            BSON_APPEND_VALUE (&list, k, bson_iter_value (&iter));
         }
      }
      bson_append_array_end (&out, &list);
      if (was) {
         BSON_APPEND_UTF8 (&out, "was", was);
      } else {
         BSON_APPEND_NULL (&out, "was");
      }
      if (now) {
         BSON_APPEND_UTF8 (&out, "status", now);
      } else {
         BSON_APPEND_NULL (&out, "status");
      }
      print_json (&out);
      bson_destroy (&out);
      goto cleanup;
   }
   for (size_t i = 0; i < slots.len; i++) {
      char id[64], *joined;

      joined = bson_strdup_printf ("%s%s%s", names ? names : "", names ? ", " : "", format_field (slots.items[i], "_id", id, sizeof id));
      bson_free (names);
      names = joined;
   }
   if (!names) {
      names = bson_strdup ("its slot");
   }
   if (was && !strcmp (was, MT_STATUS_WORK_IN_PROGRESS) && now && !strcmp (now, MT_STATUS_CANCELLED)) {
      printf ("task %s stopped: CANCELLED, %s freed; its worker calls the plugin's on_stop\n", ctl->id, names);
   } else if (!now) {
      printf ("task %s: no such task in %s.%s; %s freed\n", ctl->id, db, MT_TASKS_COLLECTION, names);
   } else {
      printf ("task %s was not running (%s): %s freed\n", ctl->id, now, names);
   }

cleanup:
   doc_list_destroy (&slots);
   bson_free (was);
   bson_free (now);
   bson_free (names);
   bson_destroy (filter);
   bson_destroy (opts);
   return status;
}

/* ---- scheduling and retention (seed 004) ------------------------------- */

/* Seconds in the largest unit that holds them whole: "30d", "12h", "90m",
 * "45s", "1.5s". */
static const char *
format_duration (double seconds, char *buf, size_t size)
{
   static const struct {
      int64_t unit;
      const char *suffix;
   } units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}};
   /* Whole seconds only, and none too large for an int64_t. */
   bool whole = seconds >= 60 && seconds < 1e15 && seconds == (double) (int64_t) seconds;

   for (size_t k = 0; whole && k < sizeof units / sizeof units[0]; k++) {
      if ((int64_t) seconds % units[k].unit == 0) {
         snprintf (buf, size, "%" PRId64 "%s", (int64_t) seconds / units[k].unit, units[k].suffix);
         return buf;
      }
   }
   snprintf (buf, size, "%.15gs", seconds);
   return buf;
}

/* How a repeating task repeats: "every 60 s (1m)", "cron '0 6 * * *' (Europe/Berlin)". */
static void
format_rule (const bson_t *task, char *buf, size_t size)
{
   const char *cron = get_str (task, "cron"), *zone = get_str (task, "timezone");
   bson_iter_t iter;
   char unit[64];

   if (cron) {
      snprintf (buf, size, "cron '%s' (%s)", cron, zone ? zone : "UTC");
   } else if (bson_iter_init_find (&iter, task, "repeat") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      double every = bson_iter_as_double (&iter);

      format_duration (every, unit, sizeof unit);
      if (unit[strlen (unit) - 1] == 's') {
         snprintf (buf, size, "every %.15g s", every);
      } else {
         snprintf (buf, size, "every %.15g s (%s)", every, unit);
      }
   } else {
      snprintf (buf, size, "(malformed: see 'mtaskctl show')");
   }
}

/* When a live run of a repeating task is next due: its `delayed`, else the
 * time it stands for (`scheduled`); false when neither is a date (due now). */
static bool
next_run (const bson_t *task, int64_t *ms)
{
   bson_iter_t iter;

   if ((bson_iter_init_find (&iter, task, "delayed") && BSON_ITER_HOLDS_DATE_TIME (&iter)) ||
       (bson_iter_init_find (&iter, task, "scheduled") && BSON_ITER_HOLDS_DATE_TIME (&iter))) {
      *ms = bson_iter_date_time (&iter);
      return true;
   }
   return false;
}

typedef struct {
   const bson_t *task;
   int64_t next; /* INT64_MIN when due now */
   size_t order; /* as read: by _id */
} schedule_row_t;

static int
compare_schedule_rows (const void *pa, const void *pb)
{
   const schedule_row_t *a = pa, *b = pb;

   if (a->next != b->next) {
      return a->next < b->next ? -1 : 1;
   }
   return a->order < b->order ? -1 : a->order > b->order;
}

/* The columns of one schedule's row. */
typedef struct {
   char series[64], type[64], queue[64], rule[160], next[40], until[40], status[32], task[64];
} schedule_cells_t;

static void
schedule_cells (const schedule_row_t *row, schedule_cells_t *c)
{
   char buf[64];

   /* Every run carries its series; a first run written before may not. */
   snprintf (c->series,
             sizeof c->series,
             "%s",
             format_field (row->task, bson_has_field (row->task, "series") ? "series" : "_id", buf, sizeof buf));
   snprintf (c->type, sizeof c->type, "%s", format_field (row->task, "type", buf, sizeof buf));
   snprintf (c->queue, sizeof c->queue, "%s", format_field (row->task, "queue", buf, sizeof buf));
   format_rule (row->task, c->rule, sizeof c->rule);
   if (row->next == INT64_MIN) {
      snprintf (c->next, sizeof c->next, "now");
   } else {
      format_ms (row->next, c->next, sizeof c->next);
   }
   if (!strcmp (format_date (row->task, "repeat_until", c->until, sizeof c->until), "-")) {
      snprintf (c->until, sizeof c->until, "-");
   }
   snprintf (c->status, sizeof c->status, "%s", format_field (row->task, "status", buf, sizeof buf));
   snprintf (c->task, sizeof c->task, "%s", format_field (row->task, "_id", buf, sizeof buf));
}

static void
schedules_table (const char *db, const ctl_t *ctl, const schedule_row_t *rows, size_t n)
{
   int w[5] = {4, 5, 4, 8, 6}; /* TYPE QUEUE RULE NEXT_RUN STATUS */
   schedule_cells_t c;

   if (!n) {
      if (ctl->seen[F_QUEUE]) {
         printf ("no repeating tasks of queue %s in %s.%s\n", ctl->value[F_QUEUE], db, MT_TASKS_COLLECTION);
      } else {
         printf ("no repeating tasks in %s.%s\n", db, MT_TASKS_COLLECTION);
      }
      return;
   }
   for (size_t i = 0; i < n; i++) {
      schedule_cells (&rows[i], &c);
      w[0] = BSON_MAX (w[0], (int) strlen (c.type));
      w[1] = BSON_MAX (w[1], (int) strlen (c.queue));
      w[2] = BSON_MAX (w[2], (int) strlen (c.rule));
      w[3] = BSON_MAX (w[3], (int) strlen (c.next));
      w[4] = BSON_MAX (w[4], (int) strlen (c.status));
   }
   printf ("%-24s  %-*s  %-*s  %-*s  %-*s  %-20s  %-*s  %s\n",
           "SERIES", w[0], "TYPE", w[1], "QUEUE", w[2], "RULE", w[3], "NEXT_RUN", "UNTIL", w[4], "STATUS", "TASK");
   for (size_t i = 0; i < n; i++) {
      schedule_cells (&rows[i], &c);
      printf ("%-24s  %-*s  %-*s  %-*s  %-*s  %-20s  %-*s  %s\n",
              c.series, w[0], c.type, w[1], c.queue, w[2], c.rule, w[3], c.next, c.until, w[4], c.status, c.task);
   }
}

static int
cmd_schedules (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t *filter = BCON_NEW ("status",
                              "{",
                              "$in",
                              "[",
                              BCON_UTF8 (MT_STATUS_WAITING),
                              BCON_UTF8 (MT_STATUS_CREATED),
                              BCON_UTF8 (MT_STATUS_WORK_IN_PROGRESS),
                              "]",
                              "}",
                              "$or",
                              "[",
                              "{",
                              "repeat",
                              "{",
                              "$ne",
                              BCON_NULL,
                              "}",
                              "}",
                              "{",
                              "cron",
                              "{",
                              "$ne",
                              BCON_NULL,
                              "}",
                              "}",
                              "]");
   bson_t *opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   schedule_row_t *rows = NULL;
   doc_list_t tasks = {0};
   bson_error_t error;
   int status = 0;

   if (ctl->seen[F_QUEUE]) {
      BSON_APPEND_UTF8 (filter, "queue", ctl->value[F_QUEUE]);
   }
   if (!read_docs (client, db, MT_TASKS_COLLECTION, filter, opts, &tasks, &error)) {
      status = db_error (db, MT_TASKS_COLLECTION, &error, "list the repeating tasks");
      goto cleanup;
   }
   rows = bson_malloc0 ((tasks.len + 1) * sizeof *rows);
   for (size_t i = 0; i < tasks.len; i++) {
      rows[i].task = tasks.items[i];
      rows[i].order = i;
      if (!next_run (tasks.items[i], &rows[i].next)) {
         rows[i].next = INT64_MIN;
      }
   }
   qsort (rows, tasks.len, sizeof *rows, compare_schedule_rows);
   if (!ctl->seen[F_JSON]) {
      schedules_table (db, ctl, rows, tasks.len);
      goto cleanup;
   }
   for (size_t i = 0; i < tasks.len; i++) {
      bson_t out = BSON_INITIALIZER;
      char rule[160];

      bson_copy_to_excluding_noinit (rows[i].task, &out, "rule", "next_run", NULL);
      format_rule (rows[i].task, rule, sizeof rule);
      BSON_APPEND_UTF8 (&out, "rule", rule);
      if (rows[i].next == INT64_MIN) {
         BSON_APPEND_NULL (&out, "next_run");
      } else {
         BSON_APPEND_DATE_TIME (&out, "next_run", rows[i].next);
      }
      print_json (&out);
      bson_destroy (&out);
   }

cleanup:
   bson_free (rows);
   doc_list_destroy (&tasks);
   bson_destroy (filter);
   bson_destroy (opts);
   return status;
}

/* "DB.tasks", "DB.completed_tasks", or both. */
static char *
purge_where (const ctl_t *ctl, const char *db)
{
   if (ctl->from) {
      return bson_strdup_printf ("%s.%s", db, ctl->from);
   }
   return bson_strdup_printf ("%s.%s and %s.%s", db, MT_TASKS_COLLECTION, db, MT_COMPLETED_COLLECTION);
}

static int
cmd_purge (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bool dry_run = ctl->seen[F_DRY_RUN];
   char *where = purge_where (ctl, db), age[64], which[64] = "";
   bson_error_t error;
   int64_t n;
   int status = 0;

   n = mt_purge (client, db, ctl->from, ctl->older_than, ctl->ended[0] ? ctl->ended : NULL, dry_run, &error);
   if (n < 0) {
      if (error.domain == MT_ERROR_CONFIG) {
         fail ("cannot purge: %s", error.message);
         status = EXIT_USAGE;
      } else {
         fflush (stdout);
         fprintf (stderr, "mtaskctl: cannot purge ended tasks in %s: %s\n", where, error.message);
         status = EXIT_RUNTIME;
      }
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_INT64 (&out, "purged", n);
      BSON_APPEND_BOOL (&out, "dry_run", dry_run);
      print_json (&out);
      bson_destroy (&out);
      goto cleanup;
   }
   for (size_t k = 0; ctl->ended[k]; k++) {
      size_t len = strlen (which);

      snprintf (which + len,
                sizeof which - len,
                "%s%s",
                !k ? " (" : ctl->ended[k + 1] ? ", " : " or ",
                ctl->ended[k]);
   }
   if (which[0]) {
      strncat (which, ")", sizeof which - strlen (which) - 1);
   }
   printf ("%s %" PRId64 " ended task(s)%s older than %s from %s%s\n",
           dry_run ? "would purge" : "purged",
           n,
           which,
           format_duration (ctl->older_than, age, sizeof age),
           where,
           dry_run ? "; nothing deleted (--dry-run)" : "");

cleanup:
   bson_free (where);
   return status;
}

/* The TTL of the index mtask_ttl on `collection`, in *seconds; -1 when
 * there is none. */
static bool
ttl_index (mongoc_client_t *client, const char *db, const char *collection, int64_t *seconds, bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
   const bson_t *index;
   bool ok;

   *seconds = -1;
   while (mongoc_cursor_next (cursor, &index)) {
      const char *name = get_str (index, "name");

      if (name && !strcmp (name, "mtask_ttl")) {
         *seconds = get_int (index, "expireAfterSeconds", -1);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return ok;
}

static int
cmd_retention (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   int64_t seconds = ctl->seen[F_OFF] ? -1 : ctl->ttl, was;
   char ttl[64] = "", before[64] = "";
   bson_error_t error;
   int status = 0;

   if (!ttl_index (client, db, ctl->collection, &was, &error)) {
      status = db_error (db, ctl->collection, &error, "read the indexes");
      goto cleanup;
   }
   if (!mt_retention_set (client, db, ctl->collection, seconds, &error)) {
      if (error.domain == MT_ERROR_CONFIG) {
         fail ("cannot set the retention of %s.%s: %s", db, ctl->collection, error.message);
         status = EXIT_USAGE;
      } else {
         status = db_error (db, ctl->collection, &error, "%s the TTL index mtask_ttl", seconds < 0 ? "drop" : "create");
      }
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_UTF8 (&out, "collection", ctl->collection);
      if (seconds < 0) {
         BSON_APPEND_NULL (&out, "ttl_seconds");
      } else {
         BSON_APPEND_INT64 (&out, "ttl_seconds", seconds);
      }
      if (was < 0) {
         BSON_APPEND_NULL (&out, "previous_ttl_seconds");
      } else {
         BSON_APPEND_INT64 (&out, "previous_ttl_seconds", was);
      }
      print_json (&out);
      bson_destroy (&out);
      goto cleanup;
   }
   if (was >= 0) {
      snprintf (before, sizeof before, "it was %s", format_duration ((double) was, ttl, sizeof ttl));
   }
   if (seconds < 0) {
      if (was < 0) {
         printf ("%s.%s: there was no TTL index; ended tasks stay until purged\n", db, ctl->collection);
      } else {
         printf ("%s.%s: TTL index mtask_ttl dropped (%s); ended tasks stay until purged\n", db, ctl->collection, before);
      }
      goto cleanup;
   }
   printf ("%s.%s: the server deletes each ended task %s after it finished (TTL index mtask_ttl on 'finished', "
           "expireAfterSeconds %" PRId64 "; %s)\n",
           db,
           ctl->collection,
           format_duration ((double) seconds, ttl, sizeof ttl),
           seconds,
           was < 0 ? "new" : before);
   printf ("note: mongo-java-server (the dev database) keeps the index but never expires documents; "
           "use 'mtaskctl purge --older-than %s' there\n",
           ttl);

cleanup:
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
   lookup_command (&ctl);
   if (ctl.seen[F_HELP]) {
      usage (stdout, ctl.cmd, ctl.family);
      return 0;
   }
   if (ctl.seen[F_VERSION]) {
      printf ("mtaskctl %s\n", MT_VERSION_STRING);
      return 0;
   }
   if (!check_command (&ctl) || !check_values (&ctl)) {
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
   case CMD_GROUP_CREATE:
      status = cmd_group_create (&ctl, client, db);
      break;
   case CMD_GROUP_ADD:
      status = cmd_group_add (&ctl, client, db);
      break;
   case CMD_GROUP_START:
      status = cmd_group_start (&ctl, client, db);
      break;
   case CMD_GROUP_LS:
      status = cmd_group_ls (&ctl, client, db);
      break;
   case CMD_GROUP_SHOW:
      status = cmd_group_show (&ctl, client, db);
      break;
   case CMD_GROUP_CLEAN:
      status = cmd_group_clean (&ctl, client, db);
      break;
   case CMD_SYNC_STAGE:
      status = cmd_sync_stage (&ctl, client, db);
      break;
   case CMD_SYNC_CREATE:
      status = cmd_sync_create (&ctl, client, db);
      break;
   case CMD_SYNC_START:
      status = cmd_sync_start (&ctl, client, db);
      break;
   case CMD_SYNC_CHECK:
      status = cmd_sync_check (&ctl, client, db);
      break;
   case CMD_SYNC_LS:
      status = cmd_sync_ls (&ctl, client, db);
      break;
   case CMD_POOL_SET:
      status = cmd_pool_set (&ctl, client, db);
      break;
   case CMD_SLOTS:
      status = cmd_slots (&ctl, client, db);
      break;
   case CMD_SLOT_KEEPALIVE:
      status = cmd_slot_keepalive (&ctl, client, db);
      break;
   case CMD_SLOT_STOP:
      status = cmd_slot_stop (&ctl, client, db);
      break;
   case CMD_SCHEDULES:
      status = cmd_schedules (&ctl, client, db);
      break;
   case CMD_PURGE:
      status = cmd_purge (&ctl, client, db);
      break;
   case CMD_RETENTION:
      status = cmd_retention (&ctl, client, db);
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
