/* Scheduling and retention (seed 004): schedules, purge, retention. */
#include "ctl.h"

#include <string.h>

/* The columns of one schedule's row. */
typedef struct {
   char series[64], type[64], queue[64], rule[160], next[40], until[40], status[32], task[64];
} schedule_cells_t;

static void
schedule_cells (const bson_t *task, schedule_cells_t *c)
{
   char buf[64];

   /* Every run carries its series; a first run written before may not. */
   snprintf (c->series,
             sizeof c->series,
             "%s",
             ctl_format_field (task, bson_has_field (task, "series") ? "series" : "_id", buf, sizeof buf));
   snprintf (c->type, sizeof c->type, "%s", ctl_format_field (task, "type", buf, sizeof buf));
   snprintf (c->queue, sizeof c->queue, "%s", ctl_format_field (task, "queue", buf, sizeof buf));
   snprintf (c->rule, sizeof c->rule, "%s", ctl_get_str (task, "rule") ? ctl_get_str (task, "rule") : "?");
   if (!strcmp (ctl_format_date (task, "next_run", c->next, sizeof c->next), "-")) {
      snprintf (c->next, sizeof c->next, "now");
   }
   if (!strcmp (ctl_format_date (task, "repeat_until", c->until, sizeof c->until), "-")) {
      snprintf (c->until, sizeof c->until, "-");
   }
   snprintf (c->status, sizeof c->status, "%s", ctl_format_field (task, "status", buf, sizeof buf));
   snprintf (c->task, sizeof c->task, "%s", ctl_format_field (task, "_id", buf, sizeof buf));
}

static void
schedules_table (const char *db, const ctl_t *ctl, const bson_t *reply)
{
   int w[5] = {4, 5, 4, 8, 6}; /* TYPE QUEUE RULE NEXT_RUN STATUS */
   schedule_cells_t c;
   bson_iter_t iter;
   bson_t task;

   if (!ctl_array_len (reply, "schedules")) {
      if (ctl->seen[F_QUEUE]) {
         printf ("no repeating tasks of queue %s in %s.%s\n", ctl->value[F_QUEUE], db, MT_TASKS_COLLECTION);
      } else {
         printf ("no repeating tasks in %s.%s\n", db, MT_TASKS_COLLECTION);
      }
      return;
   }
   ctl_array (reply, "schedules", &iter);
   while (ctl_array_next (&iter, &task)) {
      schedule_cells (&task, &c);
      w[0] = BSON_MAX (w[0], (int) strlen (c.type));
      w[1] = BSON_MAX (w[1], (int) strlen (c.queue));
      w[2] = BSON_MAX (w[2], (int) strlen (c.rule));
      w[3] = BSON_MAX (w[3], (int) strlen (c.next));
      w[4] = BSON_MAX (w[4], (int) strlen (c.status));
   }
   printf ("%-24s  %-*s  %-*s  %-*s  %-*s  %-20s  %-*s  %s\n",
           "SERIES", w[0], "TYPE", w[1], "QUEUE", w[2], "RULE", w[3], "NEXT_RUN", "UNTIL", w[4], "STATUS", "TASK");
   ctl_array (reply, "schedules", &iter);
   while (ctl_array_next (&iter, &task)) {
      schedule_cells (&task, &c);
      printf ("%-24s  %-*s  %-*s  %-*s  %-*s  %-20s  %-*s  %s\n",
              c.series, w[0], c.type, w[1], c.queue, w[2], c.rule, w[3], c.next, c.until, w[4], c.status, c.task);
   }
}

int
ctl_cmd_schedules (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t opts = BSON_INITIALIZER, reply, task;
   bson_error_t error;
   bson_iter_t iter;
   int status = 0;

   if (ctl->seen[F_QUEUE]) {
      BSON_APPEND_UTF8 (&opts, "queue", ctl->value[F_QUEUE]);
   }
   if (!mt_admin_schedules (client, db, &opts, &reply, &error)) {
      status = ctl_db_error (db, MT_TASKS_COLLECTION, &error, "list the repeating tasks");
      goto cleanup;
   }
   if (!ctl->seen[F_JSON]) {
      schedules_table (db, ctl, &reply);
      goto cleanup;
   }
   ctl_array (&reply, "schedules", &iter);
   while (ctl_array_next (&iter, &task)) {
      ctl_print_json (&task);
   }

cleanup:
   bson_destroy (&reply);
   bson_destroy (&opts);
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

int
ctl_cmd_purge (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bool dry_run = ctl->seen[F_DRY_RUN];
   char *where = purge_where (ctl, db), age[64], which[64] = "";
   bson_error_t error;
   int64_t n;
   int status = 0;

   n = mt_purge (client, db, ctl->from, ctl->older_than, ctl->ended[0] ? ctl->ended : NULL, dry_run, &error);
   if (n < 0) {
      if (error.domain == MT_ERROR_CONFIG) {
         ctl_fail ("cannot purge: %s", error.message);
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
      ctl_print_json (&out);
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
           mt_duration_format (ctl->older_than, age, sizeof age),
           where,
           dry_run ? "; nothing deleted (--dry-run)" : "");

cleanup:
   bson_free (where);
   return status;
}

/* The TTL of ended tasks in `collection`, from the admin API: in
 * *seconds, -1 when there is no TTL index. */
static bool
ttl_read (mongoc_client_t *client, const char *db, const char *collection, int64_t *seconds, bson_error_t *error)
{
   bson_t *opts = BCON_NEW ("collection", BCON_UTF8 (collection));
   bson_t reply, entry;
   bson_iter_t iter;
   bool ok = mt_admin_retention (client, db, opts, &reply, error);

   *seconds = -1;
   ctl_array (&reply, "retention", &iter);
   if (ok && ctl_array_next (&iter, &entry)) {
      *seconds = ctl_get_int (&entry, "ttl_seconds", -1);
   }
   bson_destroy (&reply);
   bson_destroy (opts);
   return ok;
}

int
ctl_cmd_retention (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   int64_t seconds = ctl->seen[F_OFF] ? -1 : ctl->ttl, was;
   char ttl[64] = "", before[64] = "";
   bson_error_t error;
   int status = 0;

   if (!ttl_read (client, db, ctl->collection, &was, &error)) {
      status = ctl_db_error (db, ctl->collection, &error, "read the indexes");
      goto cleanup;
   }
   if (!mt_retention_set (client, db, ctl->collection, seconds, &error)) {
      if (error.domain == MT_ERROR_CONFIG) {
         ctl_fail ("cannot set the retention of %s.%s: %s", db, ctl->collection, error.message);
         status = EXIT_USAGE;
      } else {
         status = ctl_db_error (db, ctl->collection, &error, "%s the TTL index mtask_ttl", seconds < 0 ? "drop" : "create");
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
      ctl_print_json (&out);
      bson_destroy (&out);
      goto cleanup;
   }
   if (was >= 0) {
      snprintf (before, sizeof before, "it was %s", mt_duration_format ((double) was, ttl, sizeof ttl));
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
           mt_duration_format ((double) seconds, ttl, sizeof ttl),
           seconds,
           was < 0 ? "new" : before);
   printf ("note: mongo-java-server (the dev database) keeps the index but never expires documents; "
           "use 'mtaskctl purge --older-than %s' there\n",
           ttl);

cleanup:
   return status;
}
