/* mtaskctl: the common queries and writes of mtask, for people and
 * scripts. The task commands enqueue, list, show and count tasks; the group
 * and sync commands drive staged groups (seed 003) and synchronizers (seed
 * 000); the pool, slots and slot commands concurrency slots (seed 002);
 * enqueue's scheduling flags, schedules, purge and retention are seed 004's
 * repeating tasks, unique tasks and completed-tasks archive. Every command
 * calls the library: the admin API (mt_admin_*) for what it shows, the
 * public calls for what it changes. This file holds the command table, the
 * connection and the dispatch; each family has a file of its own.
 *
 *   mtaskctl [connection flags] COMMAND [command flags]
 *   mtaskctl [connection flags] group|sync|pool|slot COMMAND [command flags]
 *
 * Exit status: 0 done; 1 the database failed or what was named was not
 * found; 2 bad usage. */
#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CTL_SERVER_SELECTION_TIMEOUT_MS 5000

typedef int (*ctl_run_t) (const ctl_t *ctl, mongoc_client_t *client, const char *db);

/* `shows`: the command only displays, and may read where the URI's
 * readPreference says (a secondary's view may lag by a moment). Every
 * other command acts on what it reads, and reads from the primary. */
static const struct {
   const char *family; /* "group", "sync", "pool" or "slot" for two-word commands */
   const char *name;
   ctl_cmd_t cmd;
   ctl_arg_t arg;
   ctl_run_t run;
   bool shows;
} commands[] = {
   {NULL, "enqueue", CMD_ENQUEUE, ARG_NONE, ctl_cmd_enqueue, false},
   {NULL, "ls", CMD_LS, ARG_NONE, ctl_cmd_ls, true},
   {NULL, "show", CMD_SHOW, ARG_TASK_ID, ctl_cmd_show, true},
   {NULL, "stats", CMD_STATS, ARG_NONE, ctl_cmd_stats, true},
   {NULL, "retry", CMD_RETRY, ARG_TASK_ID_OR_FILTER, ctl_cmd_retry, false},
   {NULL, "cancel", CMD_CANCEL, ARG_TASK_ID_OR_FILTER, ctl_cmd_cancel, false},
   {NULL, "delete", CMD_DELETE, ARG_TASK_ID_OR_FILTER, ctl_cmd_delete, false},
   {NULL, "locks", CMD_LOCKS, ARG_NONE, ctl_cmd_locks, true},
   {"group", "create", CMD_GROUP_CREATE, ARG_NONE, ctl_cmd_group_create, false},
   {"group", "add", CMD_GROUP_ADD, ARG_GROUP_ID, ctl_cmd_group_add, false},
   {"group", "start", CMD_GROUP_START, ARG_GROUP_ID, ctl_cmd_group_start, false},
   {"group", "ls", CMD_GROUP_LS, ARG_NONE, ctl_cmd_group_ls, true},
   {"group", "show", CMD_GROUP_SHOW, ARG_GROUP_ID, ctl_cmd_group_show, true},
   {"group", "clean", CMD_GROUP_CLEAN, ARG_NONE, ctl_cmd_group_clean, false},
   {"sync", "stage", CMD_SYNC_STAGE, ARG_NONE, ctl_cmd_sync_stage, false},
   {"sync", "create", CMD_SYNC_CREATE, ARG_SYNC, ctl_cmd_sync_create, false},
   {"sync", "start", CMD_SYNC_START, ARG_SYNC, ctl_cmd_sync_start, false},
   {"sync", "check", CMD_SYNC_CHECK, ARG_SYNC, ctl_cmd_sync_check, false},
   {"sync", "ls", CMD_SYNC_LS, ARG_NONE, ctl_cmd_sync_ls, true},
   {"pool", "set", CMD_POOL_SET, ARG_POOL, ctl_cmd_pool_set, false},
   {NULL, "slots", CMD_SLOTS, ARG_NONE, ctl_cmd_slots, true},
   {"slot", "keepalive", CMD_SLOT_KEEPALIVE, ARG_TASK_ID, ctl_cmd_slot_keepalive, false},
   {"slot", "stop", CMD_SLOT_STOP, ARG_TASK_ID, ctl_cmd_slot_stop, false},
   {NULL, "schedules", CMD_SCHEDULES, ARG_NONE, ctl_cmd_schedules, true},
   {NULL, "purge", CMD_PURGE, ARG_NONE, ctl_cmd_purge, false},
   {NULL, "retention", CMD_RETENTION, ARG_NONE, ctl_cmd_retention, false},
   {NULL, "workers", CMD_WORKERS, ARG_NONE, ctl_cmd_workers, true},
   {"worker", "quiet", CMD_WORKER_QUIET, ARG_WORKER, ctl_cmd_worker_quiet, false},
   {"worker", "stop", CMD_WORKER_STOP, ARG_WORKER, ctl_cmd_worker_stop, false},
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
   {"worker", "quiet or stop", "quiet, stop"},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

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
         snprintf (ctl_help_hint, sizeof ctl_help_hint, "mtaskctl %s --help", ctl->command_name);
      }
   }
   if (!ctl->cmd && ctl->family) {
      snprintf (ctl_help_hint, sizeof ctl_help_hint, "mtaskctl %s --help", ctl->family);
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
      return ctl_fail ("give a command: enqueue, ls, show, stats, retry, cancel, delete, locks, schedules, purge, retention, "
                       "slots, workers, group COMMAND, sync COMMAND, pool set, slot COMMAND or worker COMMAND");
   }
   if (ctl->family && !ctl->words[1]) {
      return ctl_fail ("give a %s command: %s", ctl->family, families[k].with_or);
   }
   if (!ctl->cmd && ctl->family) {
      return ctl_fail ("unknown command '%s %s'; %s commands are %s",
                   ctl->family,
                   ctl->words[1],
                   ctl->family,
                   families[k].with_commas);
   }
   if (!ctl->cmd) {
      return ctl_fail ("unknown command '%s'; commands are enqueue, ls, show, stats, retry, cancel, delete, locks, schedules, "
                       "purge, retention, slots, workers, group COMMAND, sync COMMAND, pool set, slot COMMAND and worker COMMAND",
                   ctl->words[0]);
   }
   next = ctl->family ? 2 : 1;
   if (ctl->arg_kind != ARG_NONE && next < 3) {
      ctl->id = ctl->words[next++];
   }
   if ((next < 3 && ctl->words[next]) || ctl->extra) {
      return ctl_fail ("unexpected argument '%s'", next < 3 && ctl->words[next] ? ctl->words[next] : ctl->extra);
   }
   switch (ctl->arg_kind) {
   case ARG_TASK_ID_OR_FILTER:
      if (ctl->id && (ctl->seen[F_STATUS] || ctl->seen[F_QUEUE] || ctl->seen[F_TYPE] || ctl->seen[F_SINCE])) {
         return ctl_fail ("%s: give a task id or filter flags (--status, --queue, --type, --since), not both", ctl->command_name);
      }
      if (!ctl->id && !(ctl->seen[F_STATUS] || ctl->seen[F_QUEUE] || ctl->seen[F_TYPE] || ctl->seen[F_SINCE])) {
         return ctl_fail ("%s which tasks? give a task id (mtaskctl %s ID) or filter flags (--status, --queue, --type, --since)",
                          ctl->command_name, ctl->command_name);
      }
      if (ctl->id) {
         if (strlen (ctl->id) != 24 || !bson_oid_is_valid (ctl->id, 24)) {
            return ctl_fail ("'%s' is not a task id: give the 24 hex digits of its _id", ctl->id);
         }
         bson_oid_init_from_string (&ctl->oid, ctl->id);
         ctl->has_id = true;
      }
      break;
   case ARG_TASK_ID:
      if (!ctl->id) {
         return ctl_fail ("%s needs a task id: mtaskctl %s %s",
                      ctl->command_name,
                      ctl->command_name,
                      ctl->cmd == CMD_SHOW ? "ID" : "TASK_ID");
      }
      if (strlen (ctl->id) != 24 || !bson_oid_is_valid (ctl->id, 24)) {
         return ctl_fail ("'%s' is not a task id: give the 24 hex digits of its _id", ctl->id);
      }
      bson_oid_init_from_string (&ctl->oid, ctl->id);
      break;
   case ARG_GROUP_ID:
      if (!ctl->id) {
         return ctl_fail ("%s needs a group id: mtaskctl %s GROUP_ID", ctl->command_name, ctl->command_name);
      }
      if (strlen (ctl->id) != 24 || !bson_oid_is_valid (ctl->id, 24)) {
         return ctl_fail ("'%s' is not a group id: give the 24 hex digits that 'group create' printed", ctl->id);
      }
      bson_oid_init_from_string (&ctl->oid, ctl->id);
      break;
   case ARG_SYNC:
      if (!ctl->id) {
         return ctl_fail ("%s needs a synchronizer name: mtaskctl %s NAME", ctl->command_name, ctl->command_name);
      }
      if (!ctl->id[0]) {
         return ctl_fail ("%s needs a synchronizer name, got ''", ctl->command_name);
      }
      break;
   case ARG_POOL:
      if (!ctl->id) {
         return ctl_fail ("%s needs a pool name: mtaskctl %s NAME --size N", ctl->command_name, ctl->command_name);
      }
      if (!ctl->id[0] || strchr (ctl->id, '#')) {
         return ctl_fail ("'%s' is not a pool name: give a name that is not empty and has no '#'", ctl->id);
      }
      break;
   case ARG_WORKER:
      if (!ctl->id || !ctl->id[0]) {
         return ctl_fail ("%s needs a worker id: mtaskctl %s ID ('mtaskctl workers' lists them)",
                      ctl->command_name,
                      ctl->command_name);
      }
      break;
   case ARG_NONE:
   default:
      break;
   }
   return true;
}

/* The function that runs a command. */
static ctl_run_t
command_run (ctl_cmd_t cmd)
{
   for (size_t k = 0; k < N_COMMANDS; k++) {
      if (commands[k].cmd == cmd) {
         return commands[k].run;
      }
   }
   return ctl_cmd_stats;
}

/* Whether the command only displays (commands[].shows). */
static bool
command_shows (ctl_cmd_t cmd)
{
   for (size_t k = 0; k < N_COMMANDS; k++) {
      if (commands[k].cmd == cmd) {
         return commands[k].shows;
      }
   }
   return false;
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
   char *uri_text = NULL;
   const char *uri_source = "--host"; /* where the URI came from, for its message */
   mongoc_client_t *client = NULL;
   bson_error_t error;
   const char *db;
   bool initialized = false;
   int status = EXIT_USAGE;

   if (!ctl_parse_args (&ctl, argc, argv)) {
      return EXIT_USAGE;
   }
   lookup_command (&ctl);
   if (ctl.seen[F_HELP]) {
      ctl_usage (stdout, ctl.cmd, ctl.family);
      return 0;
   }
   if (ctl.seen[F_VERSION]) {
      printf ("mtaskctl %s\n", MT_VERSION_STRING);
      return 0;
   }
   if (!check_command (&ctl) || !ctl_check_values (&ctl)) {
      goto cleanup;
   }

   mongoc_log_set_handler (log_handler, NULL);
   mongoc_init ();
   initialized = true;
   /* A URI with a password comes from a file or the environment, which
    * other users cannot read, unlike a command line. */
   if (ctl.seen[F_URI_FILE]) {
      uri_text = mt_uri_read_file (ctl.value[F_URI_FILE], &error);
      if (!uri_text) {
         ctl_fail ("--uri-file: %s", error.message);
         goto cleanup;
      }
      uri_source = "--uri-file";
   } else if (ctl.seen[F_URI]) {
      uri_text = bson_strdup (ctl.value[F_URI]);
      uri_source = "--uri";
   } else if (!ctl.seen[F_HOST] && !ctl.seen[F_PORT] && getenv ("MTASK_URI") && getenv ("MTASK_URI")[0]) {
      uri_text = bson_strdup (getenv ("MTASK_URI"));
      uri_source = "MTASK_URI";
   }
   uri = mt_uri_new (uri_text, ctl.value[F_HOST], ctl.port, &error);
   if (!uri) {
      /* The message shows the URI without its user and password. */
      ctl_fail ("%s: %s", uri_source, error.message);
      goto cleanup;
   }
   db = ctl.seen[F_DB] ? ctl.value[F_DB] : mongoc_uri_get_database (uri);
   if (!db || !db[0]) {
      ctl_fail ("--db is required: the database holding the 'tasks' collection, e.g. --db tasks%s",
                uri_text ? " (the URI names none)" : "");
      goto cleanup;
   }
   if (!mongoc_uri_has_option (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
      mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, CTL_SERVER_SELECTION_TIMEOUT_MS);
   }
   /* Writes wait for a majority unless the URI says otherwise; a command
    * that acts on what it reads reads from the primary, one that only
    * shows reads where the URI says (docs/reliability.md). */
   mt_uri_apply_policy (uri, command_shows (ctl.cmd) ? MT_URI_MAJORITY_WRITES : MT_URI_MAJORITY_WRITES | MT_URI_PRIMARY_READS);
   client = mongoc_client_new_from_uri_with_error (uri, &error);
   if (!client) {
      fprintf (stderr, "mtaskctl: cannot connect to MongoDB: %s\n", error.message);
      status = EXIT_RUNTIME;
      goto cleanup;
   }
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   mongoc_client_set_appname (client, "mtaskctl");

   status = command_run (ctl.cmd) (&ctl, client, db);
   if (fflush (stdout) != 0 || ferror (stdout)) {
      fprintf (stderr, "mtaskctl: cannot write the output: %s\n", strerror (errno));
      status = EXIT_RUNTIME;
   }

cleanup:
   mongoc_client_destroy (client);
   mongoc_uri_destroy (uri);
   bson_free (uri_text);
   if (initialized) {
      mongoc_cleanup ();
   }
   bson_destroy (ctl.params);
   return status;
}
