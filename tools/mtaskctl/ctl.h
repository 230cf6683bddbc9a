/* mtaskctl's own header: the parsed command line, the flags, and what the
 * command families share. mtaskctl parses, calls the library (the admin
 * API for what it shows, the public calls for what it changes) and prints;
 * it holds no query of its own. */
#ifndef MTASKCTL_CTL_H
#define MTASKCTL_CTL_H

#include <mtask/mtask.h>

#include <stdio.h>

#define CTL_MAX_DELAY 315576000.0    /* ten years, in seconds */
#define CTL_MAX_AGE 3155760000.0     /* a hundred years, in seconds */
#define CTL_MAX_POOL_SIZE 100000
#define CTL_MAX_TIMEOUT 31622400.0   /* 366 days, in seconds: mt_pool_set's bound */

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
   CMD_RETRY = 1 << 23,
   CMD_CANCEL = 1 << 24,
   CMD_DELETE = 1 << 25,
   CMD_WORKERS = 1 << 26,
   CMD_WORKER_QUIET = 1 << 27,
   CMD_WORKER_STOP = 1 << 28,
} ctl_cmd_t;

#define CMD_GROUP (CMD_GROUP_CREATE | CMD_GROUP_ADD | CMD_GROUP_START | CMD_GROUP_LS | CMD_GROUP_SHOW | CMD_GROUP_CLEAN)
#define CMD_SYNC (CMD_SYNC_STAGE | CMD_SYNC_CREATE | CMD_SYNC_START | CMD_SYNC_CHECK | CMD_SYNC_LS)
#define CMD_SLOT (CMD_POOL_SET | CMD_SLOTS | CMD_SLOT_KEEPALIVE | CMD_SLOT_STOP)
#define CMD_SCHEDULING (CMD_SCHEDULES | CMD_PURGE | CMD_RETENTION)
#define CMD_ACTIONS (CMD_RETRY | CMD_CANCEL | CMD_DELETE)
#define CMD_WORKER (CMD_WORKERS | CMD_WORKER_QUIET | CMD_WORKER_STOP)
#define CMD_ALL                                                                                                     \
   (CMD_ENQUEUE | CMD_LS | CMD_SHOW | CMD_STATS | CMD_LOCKS | CMD_GROUP | CMD_SYNC | CMD_SLOT | CMD_SCHEDULING | CMD_ACTIONS | \
    CMD_WORKER)

/* The argument a command takes after its name, if any. */
typedef enum {
   ARG_NONE,
   ARG_TASK_ID,  /* 24 hex digits */
   ARG_TASK_ID_OR_FILTER, /* 24 hex digits, or none and filter flags */
   ARG_GROUP_ID, /* 24 hex digits */
   ARG_SYNC,     /* a synchronizer's name */
   ARG_POOL,     /* a pool's name: not empty, no '#' */
   ARG_WORKER,   /* a worker id, as 'workers' lists them */
} ctl_arg_t;

typedef enum {
   F_DB,
   F_HOST,
   F_PORT,
   F_URI,
   F_URI_FILE,
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
   F_SINCE,
   F_FORCE,
   F_ARCHIVE,
   F_GRACE,
   N_FLAGS
} ctl_flag_id_t;

/* Every flag, whether it takes a value, and the commands that take it. */
typedef struct {
   const char *name;
   bool takes_value;
   unsigned cmds;
} ctl_flag_t;

extern const ctl_flag_t ctl_flags[N_FLAGS];

#define STATUS_LIST "CREATED, WORK_IN_PROGRESS, FINISHED, FAILED, CANCELLED, WAITING"
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

   /* Checked and converted by ctl_check_values(). */
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
   int64_t since;                 /* --since, whole seconds */
   bool has_id;                   /* the id argument was given */
   const char *ended[4];          /* purge --status: NULL-terminated, or all NULL for every ended status */
   const char *from;              /* purge --from: a collection, or NULL for both */
   const char *collection;        /* retention --collection */
   double grace;                  /* worker stop --grace, seconds */
} ctl_t;

/* ---- args.c: the command line ------------------------------------------- */

/* The help the hint of a usage error points to: the command's, once known. */
extern char ctl_help_hint[64];

/* A usage error: the message and the hint on stderr. Returns false; the
 * caller exits 2. */
bool ctl_fail (const char *format, ...) BSON_GNUC_PRINTF (1, 2);

/* Splits argv into the words that are not flags and the flags with their
 * values; both are checked once the command is known. */
bool ctl_parse_args (ctl_t *ctl, int argc, char **argv);

/* The command is known and takes every flag given: converts the values. */
bool ctl_check_values (ctl_t *ctl);

/* ---- help.c -------------------------------------------------------------- */

/* The help of a command, of a family ("group"...), or the whole of it. */
void ctl_usage (FILE *out, ctl_cmd_t cmd, const char *family);

/* ---- output.c: printing --------------------------------------------------- */

/* One document as relaxed extended JSON, on one line. */
void ctl_print_json (const bson_t *doc);

/* {"_id": {"$oid": ID}} with --json, else the 24 hex digits. */
void ctl_print_id (const ctl_t *ctl, const bson_oid_t *id);

/* Milliseconds since the epoch as ISO-8601 UTC to the second. */
const char *ctl_format_ms (int64_t ms, char *out, size_t size);

/* A date field as ISO-8601 UTC to the second, or "-". */
const char *ctl_format_date (const bson_t *doc, const char *key, char *out, size_t size);

/* A scalar field as text; "-" when missing or null, "?" for other types. */
const char *ctl_format_field (const bson_t *doc, const char *key, char *buf, size_t size);

const char *ctl_get_str (const bson_t *doc, const char *key);
const bson_oid_t *ctl_get_oid (const bson_t *doc, const char *key);
int64_t ctl_get_int (const bson_t *doc, const char *key, int64_t otherwise);

/* The document at `key` of `doc`, as a static view into it, or false. */
bool ctl_get_doc (const bson_t *doc, const char *key, bson_t *out);

/* The documents of the array at `key` of `doc` (none when it has none):
 *   ctl_array (reply, "tasks", &iter);
 *   while (ctl_array_next (&iter, &task)) ...
 * Each `task` is a static view into `doc`. */
void ctl_array (const bson_t *doc, const char *key, bson_iter_t *iter);
bool ctl_array_next (bson_iter_t *iter, bson_t *item);
uint32_t ctl_array_len (const bson_t *doc, const char *key);

/* "mtaskctl: cannot WHAT in DB.COLLECTION: MESSAGE" on stderr; returns
 * EXIT_RUNTIME. */
int ctl_db_error (const char *db, const char *collection, const bson_error_t *error, const char *format, ...)
   BSON_GNUC_PRINTF (4, 5);

/* Whether an admin call failed because what it was asked about is not
 * there. */
bool ctl_not_found (const bson_error_t *error);

/* The collection a failed admin call names in its reply, or `otherwise`. */
const char *ctl_failed_in (const bson_t *reply, const char *otherwise);

/* After an admin read of one document failed: "no WHAT LABEL in DB.C" when
 * it is not there, else "cannot read WHAT LABEL in DB.C: ...". Returns
 * EXIT_RUNTIME. */
int ctl_read_error (const char *db, const char *collection, const bson_error_t *error, const char *what, const char *label);

/* ---- the command families ------------------------------------------------ */

/* tasks.c */
int ctl_cmd_enqueue (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_show (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_stats (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_retry (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_cancel (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_delete (const ctl_t *ctl, mongoc_client_t *client, const char *db);

/* locks.c */
int ctl_cmd_locks (const ctl_t *ctl, mongoc_client_t *client, const char *db);

/* groups.c */
int ctl_cmd_group_create (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_group_add (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_group_start (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_group_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_group_show (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_group_clean (const ctl_t *ctl, mongoc_client_t *client, const char *db);

/* syncs.c */
int ctl_cmd_sync_stage (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_sync_create (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_sync_start (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_sync_check (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_sync_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db);

/* slots.c */
int ctl_cmd_pool_set (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_slots (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_slot_keepalive (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_slot_stop (const ctl_t *ctl, mongoc_client_t *client, const char *db);

/* schedule.c */
int ctl_cmd_schedules (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_purge (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_retention (const ctl_t *ctl, mongoc_client_t *client, const char *db);

/* workers.c */
int ctl_cmd_workers (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_worker_quiet (const ctl_t *ctl, mongoc_client_t *client, const char *db);
int ctl_cmd_worker_stop (const ctl_t *ctl, mongoc_client_t *client, const char *db);
/* stats: the backlog of mt_admin_stats's reply, as a table or into `json`. */
void ctl_stats_backlog (const bson_t *reply, bson_t *json);
/* enqueue: a warning on stderr when no running worker serves the queue and
 * type (the task is enqueued all the same). */
void ctl_warn_unserved (mongoc_client_t *client, const char *db, const char *queue, const char *type);

#endif /* MTASKCTL_CTL_H */
