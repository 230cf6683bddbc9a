/* The task commands: enqueue, ls, show, stats, and the actions retry,
 * cancel and delete. */
#include "ctl.h"

#include <string.h>

/* The task holding a unique key, when mt_enqueue_ex could not name it (its
 * _id is not an ObjectId: another client inserted it): {_id} into `id`
 * (initialized; left empty when it has ended meanwhile) and its _id as
 * text into buf. */
static void
unique_holder (mongoc_client_t *client, const char *db, const char *key, bson_t *id, char *buf, size_t size)
{
   bson_t reply, task;
   bson_error_t error;
   bson_iter_t iter;

   snprintf (buf, size, "(one that has ended since)");
   if (mt_admin_unique_holder (client, db, key, NULL, &reply, &error) && ctl_get_doc (&reply, "task", &task) &&
       bson_iter_init_find (&iter, &task, "_id")) {
      BSON_APPEND_VALUE (id, "_id", bson_iter_value (&iter));
      if (BSON_ITER_HOLDS_UTF8 (&iter)) {
         snprintf (buf, size, "%s", bson_iter_utf8 (&iter, NULL));
      } else {
         /* { "_id" : VALUE }: the value's JSON alone. */
         char *json = bson_as_relaxed_extended_json (id, NULL);
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
   bson_destroy (&reply);
}

int
ctl_cmd_enqueue (const ctl_t *ctl, mongoc_client_t *client, const char *db)
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
         ctl_fail ("cannot enqueue: %s", error.message);
         status = EXIT_USAGE;
      } else {
         fprintf (stderr, "mtaskctl: cannot enqueue into %s.%s: %s\n", db, MT_TASKS_COLLECTION, error.message);
      }
      goto cleanup;
   }
   bson_oid_to_string (&id, hex);
   if (created) {
      ctl_warn_unserved (client, db, ctl->value[F_QUEUE], ctl->value[F_TYPE]);
   }
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
      ctl_print_json (&out);
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

int
ctl_cmd_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   static const struct {
      ctl_flag_id_t flag;
      const char *option;
   } filters[] = {{F_QUEUE, "queue"}, {F_STATUS, "status"}, {F_TYPE, "type"}};
   bson_t opts = BSON_INITIALIZER, reply, task;
   bson_error_t error;
   bson_iter_t iter;
   int status = 0;

   for (size_t k = 0; k < sizeof filters / sizeof filters[0]; k++) {
      if (ctl->seen[filters[k].flag]) {
         BSON_APPEND_UTF8 (&opts, filters[k].option, ctl->value[filters[k].flag]);
      }
   }
   BSON_APPEND_INT64 (&opts, "limit", ctl->limit);
   if (ctl->seen[F_ARCHIVE]) {
      BSON_APPEND_BOOL (&opts, "archive", true);
   }
   if (!mt_admin_tasks (client, db, &opts, &reply, &error)) {
      fflush (stdout);
      fprintf (stderr, "mtaskctl: cannot list tasks in %s.%s: %s\n", db, ctl_failed_in (&reply, MT_TASKS_COLLECTION), error.message);
      status = EXIT_RUNTIME;
      goto cleanup;
   }
   if (!ctl->seen[F_JSON]) {
      ls_header (); /* an empty table still says what it would hold */
   }
   ctl_array (&reply, "tasks", &iter);
   while (ctl_array_next (&iter, &task)) {
      char id[32], queue[32], type[32], st[32], attempts[32], created[64], worker[32];

      if (ctl->seen[F_JSON]) {
         ctl_print_json (&task);
         continue;
      }
      printf ("%-24s  %-12s  %-12s  %-16s  %8s  %-20s  %s\n",
              ctl_format_field (&task, "_id", id, sizeof id),
              ctl_format_field (&task, "queue", queue, sizeof queue),
              ctl_format_field (&task, "type", type, sizeof type),
              ctl_format_field (&task, "status", st, sizeof st),
              ctl_format_field (&task, "attempts", attempts, sizeof attempts),
              ctl_format_date (&task, "created", created, sizeof created),
              ctl_format_field (&task, "worker_pid", worker, sizeof worker));
   }

cleanup:
   bson_destroy (&reply);
   bson_destroy (&opts);
   return status;
}

int
ctl_cmd_show (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply, task;
   bson_error_t error;
   int status = EXIT_RUNTIME;

   if (mt_admin_task (client, db, &ctl->oid, NULL, &reply, &error) && ctl_get_doc (&reply, "task", &task)) {
      ctl_print_json (&task);
      status = 0;
   } else if (!ctl_not_found (&error)) {
      fprintf (stderr, "mtaskctl: cannot read task %s from %s.%s: %s\n", ctl->id, db, MT_TASKS_COLLECTION, error.message);
   } else {
      fprintf (stderr, "mtaskctl: no task with id %s in %s.%s nor in %s.%s\n", ctl->id, db, MT_TASKS_COLLECTION, db, MT_COMPLETED_COLLECTION);
   }
   bson_destroy (&reply);
   return status;
}

/* One row of the stats reply: a queue (or a type) and a status, and n. */
typedef struct {
   const char *key;
   const char *status;
   int64_t n;
} count_t;

typedef struct {
   count_t *items;
   size_t len;
} counts_t;

/* The rows of `key` ("by_queue" or "by_type") of the stats reply; the
 * strings point into it. */
static void
counts_read (const bson_t *reply, const char *key, const char *name, counts_t *counts)
{
   bson_iter_t iter;
   bson_t row;

   counts->items = bson_malloc0 ((ctl_array_len (reply, key) + 1) * sizeof *counts->items);
   counts->len = 0;
   ctl_array (reply, key, &iter);
   while (ctl_array_next (&iter, &row)) {
      count_t *item = &counts->items[counts->len++];

      item->key = ctl_get_str (&row, name) ? ctl_get_str (&row, name) : "";
      item->status = ctl_get_str (&row, "status");
      item->n = ctl_get_int (&row, "n", 0);
   }
}

static void
stats_json (const bson_t *reply, const counts_t *by_queue, const counts_t *by_type)
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
   ctl_stats_backlog (reply, &out);
   ctl_print_json (&out);
   bson_destroy (&out);
}

static void
stats_table (const bson_t *reply, const counts_t *by_queue, const counts_t *by_type)
{
   /* Columns: every status that occurs, in lifecycle order. */
   const char **cols = bson_malloc0 ((ctl_array_len (reply, "statuses") + 1) * sizeof *cols);
   int64_t *col_totals = bson_malloc0 ((ctl_array_len (reply, "statuses") + 1) * sizeof *col_totals);
   size_t n_cols = 0, width = strlen ("QUEUE");
   int64_t grand_total = 0;
   bson_iter_t iter, list;

   if (bson_iter_init_find (&iter, reply, "statuses") && BSON_ITER_HOLDS_ARRAY (&iter) && bson_iter_recurse (&iter, &list)) {
      while (bson_iter_next (&list)) {
         if (BSON_ITER_HOLDS_UTF8 (&list)) {
            cols[n_cols++] = bson_iter_utf8 (&list, NULL);
         }
      }
   }
   for (size_t i = 0; i < by_queue->len; i++) {
      width = BSON_MAX (width, strlen (by_queue->items[i].key));
   }

   printf ("%-*s", (int) width, "QUEUE");
   for (size_t c = 0; c < n_cols; c++) {
      printf ("  %*s", (int) BSON_MAX (strlen (cols[c]), 8), cols[c]);
   }
   printf ("  %8s\n", "TOTAL");
   for (size_t i = 0, end; i < by_queue->len; i = end) {
      int64_t total = 0;

      /* Rows are sorted by queue: [i, end) is one queue's. */
      for (end = i; end < by_queue->len && !strcmp (by_queue->items[end].key, by_queue->items[i].key); end++) {
      }
      printf ("%-*s", (int) width, by_queue->items[i].key);
      for (size_t c = 0; c < n_cols; c++) {
         int64_t n = 0;

         for (size_t j = i; j < end; j++) {
            if (by_queue->items[j].status && !strcmp (by_queue->items[j].status, cols[c])) {
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

int
ctl_cmd_stats (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   counts_t by_queue = {0}, by_type = {0};
   bson_error_t error;
   bson_t reply, opts = BSON_INITIALIZER;
   int status = EXIT_RUNTIME;

   if (ctl->seen[F_ARCHIVE]) {
      BSON_APPEND_BOOL (&opts, "archive", true);
   }
   if (!mt_admin_stats (client, db, &opts, &reply, &error)) {
      fprintf (stderr, "mtaskctl: cannot count tasks in %s.%s: %s\n", db, ctl_failed_in (&reply, MT_TASKS_COLLECTION), error.message);
      goto cleanup;
   }
   counts_read (&reply, "by_queue", "queue", &by_queue);
   counts_read (&reply, "by_type", "type", &by_type);
   if (ctl->seen[F_JSON]) {
      stats_json (&reply, &by_queue, &by_type);
   } else {
      stats_table (&reply, &by_queue, &by_type);
      ctl_stats_backlog (&reply, NULL);
   }
   status = 0;

cleanup:
   bson_free (by_queue.items);
   bson_free (by_type.items);
   bson_destroy (&reply);
   bson_destroy (&opts);
   return status;
}

typedef bool (*ctl_action_t) (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* retry, cancel, delete: one task by id or the tasks a filter matches. One
 * line a task: its id, where it is, its status, and what was done or why
 * not; then the count on stderr. Exit 1 when a task named by id was
 * refused or is not there. */
static int
task_action (const ctl_t *ctl, mongoc_client_t *client, const char *db, ctl_action_t action, const char *verb)
{
   static const struct {
      ctl_flag_id_t flag;
      const char *option;
   } filters[] = {{F_QUEUE, "queue"}, {F_STATUS, "status"}, {F_TYPE, "type"}};
   bson_t opts = BSON_INITIALIZER, reply, task;
   bson_error_t error;
   bson_iter_t iter;
   bool dry_run = ctl->seen[F_DRY_RUN];
   int status = EXIT_RUNTIME;

   for (size_t k = 0; k < sizeof filters / sizeof filters[0]; k++) {
      if (ctl->seen[filters[k].flag]) {
         BSON_APPEND_UTF8 (&opts, filters[k].option, ctl->value[filters[k].flag]);
      }
   }
   if (ctl->seen[F_SINCE]) {
      BSON_APPEND_INT64 (&opts, "since", ctl->since);
   }
   if (dry_run) {
      BSON_APPEND_BOOL (&opts, "dry_run", true);
   }
   if (ctl->seen[F_FORCE]) {
      BSON_APPEND_BOOL (&opts, "force", true);
   }
   if (!action (client, db, ctl->has_id ? &ctl->oid : NULL, &opts, &reply, &error)) {
      if (ctl_not_found (&error)) {
         fprintf (stderr, "mtaskctl: cannot %s: %s\n", verb, error.message);
      } else if (error.domain == MT_ERROR_CONFIG) {
         ctl_fail ("cannot %s: %s", verb, error.message);
         status = EXIT_USAGE;
      } else {
         ctl_db_error (db, ctl_failed_in (&reply, MT_TASKS_COLLECTION), &error, "%s tasks", verb);
      }
      goto cleanup;
   }
   ctl_array (&reply, "tasks", &iter);
   while (ctl_array_next (&iter, &task)) {
      char id[32], st[32];
      const char *outcome = ctl_get_str (&task, "outcome");
      const char *reason = ctl_get_str (&task, "reason");
      bool refused = outcome && !strcmp (outcome, "refused");

      if (ctl->seen[F_JSON]) {
         ctl_print_json (&task);
      } else if (refused) {
         fflush (stdout);
         fprintf (stderr,
                  "mtaskctl: cannot %s task %s (in %s.%s): %s\n",
                  verb,
                  ctl_format_field (&task, "_id", id, sizeof id),
                  db,
                  ctl_get_str (&task, "collection") ? ctl_get_str (&task, "collection") : "?",
                  reason ? reason : "refused");
      } else {
         printf ("%-24s  %-16s  %-16s  %s%s\n",
                 ctl_format_field (&task, "_id", id, sizeof id),
                 ctl_get_str (&task, "collection") ? ctl_get_str (&task, "collection") : "?",
                 ctl_format_field (&task, "status", st, sizeof st),
                 dry_run ? "would be " : "",
                 outcome ? outcome : "?");
      }
   }
   fflush (stdout);
   if (!ctl->has_id) {
      fprintf (stderr,
               "mtaskctl: %s%s: %" PRId64 " task(s), %" PRId64 " refused\n",
               verb,
               dry_run ? " (dry run, nothing changed)" : "",
               ctl_get_int (&reply, "done", 0),
               ctl_get_int (&reply, "refused", 0));
   }
   status = ctl->has_id && ctl_get_int (&reply, "refused", 0) > 0 ? EXIT_RUNTIME : 0;

cleanup:
   bson_destroy (&reply);
   bson_destroy (&opts);
   return status;
}

int
ctl_cmd_retry (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   return task_action (ctl, client, db, mt_admin_retry, "retry");
}

int
ctl_cmd_cancel (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   return task_action (ctl, client, db, mt_admin_cancel, "cancel");
}

int
ctl_cmd_delete (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   return task_action (ctl, client, db, mt_admin_delete, "delete");
}
