/* The group commands: staged groups (seed 003). create, add, start, ls,
 * show, clean. */
#include "ctl.h"

#include <string.h>

/* The group named on the command line into `reply` (always initialized),
 * with its stages when `stages_what` says what reading them is for ("read
 * the stages of group %s"). Says on stderr why it cannot and returns
 * EXIT_RUNTIME; else 0. */
static int
read_group (const ctl_t *ctl, mongoc_client_t *client, const char *db, const char *stages_what, bson_t *reply)
{
   bson_t *opts = BCON_NEW ("stages", BCON_BOOL (stages_what != NULL));
   bson_error_t error;
   int status = 0;

   if (!mt_admin_group (client, db, &ctl->oid, opts, reply, &error)) {
      const char *where = ctl_failed_in (reply, MT_GROUPS_COLLECTION);

      if (ctl_not_found (&error) || !strcmp (where, MT_GROUPS_COLLECTION)) {
         status = ctl_read_error (db, MT_GROUPS_COLLECTION, &error, "group", ctl->id);
      } else {
         status = ctl_db_error (db, MT_GROUP_STAGES_COLLECTION, &error, stages_what, ctl->id);
      }
   }
   bson_destroy (opts);
   return status;
}

int
ctl_cmd_group_create (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t opts = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id;
   int status = 0;

   if (ctl->seen[F_KEEP]) {
      BSON_APPEND_DOUBLE (&opts, "keep_seconds", ctl->keep);
   }
   if (!mt_group_create (client, db, ctl->value[F_DESCRIPTION], &opts, &id, &error)) {
      status = ctl_db_error (db, MT_GROUPS_COLLECTION, &error, "create a group");
   } else {
      ctl_print_id (ctl, &id);
   }
   bson_destroy (&opts);
   return status;
}

int
ctl_cmd_group_add (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply, group, opts = BSON_INITIALIZER;
   bson_error_t error;
   bson_oid_t id;
   const char *group_status;
   int status = read_group (ctl, client, db, NULL, &reply);

   if (status) {
      goto cleanup;
   }
   group_status = ctl_get_doc (&reply, "group", &group) ? ctl_get_str (&group, "status") : NULL;
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
      status = ctl_db_error (db, MT_TASKS_COLLECTION, &error, "add a task to stage %d of group %s", ctl->stage, ctl->id);
      goto cleanup;
   }
   ctl_print_id (ctl, &id);

cleanup:
   bson_destroy (&reply);
   bson_destroy (&opts);
   return status;
}

/* The stages of a group reply that have a document, and the first of them
 * that is not complete (the current stage) into `current`. */
static int64_t
stage_documents (const bson_t *reply, bson_t *current, bool *have_current)
{
   bson_iter_t iter;
   bson_t stage;
   int64_t n = 0;

   *have_current = false;
   ctl_array (reply, "stages", &iter);
   while (ctl_array_next (&iter, &stage)) {
      const char *status = ctl_get_str (&stage, "status");

      if (bson_has_field (&stage, "missing")) {
         continue;
      }
      n++;
      if (!*have_current && !(status && !strcmp (status, "complete"))) {
         /* A view of its own: a bson_t cannot be copied by value. */
         *have_current = bson_init_static (current, bson_get_data (&stage), stage.len);
      }
   }
   return n;
}

int
ctl_cmd_group_start (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t before, after = BSON_INITIALIZER, group, stage;
   bson_error_t error;
   bool was_running, found, have_stage = false;
   const char *group_status;
   char until[40];
   int status = read_group (ctl, client, db, "count the stages of group %s", &before);

   if (status) {
      goto cleanup;
   }
   was_running = ctl_get_doc (&before, "group", &group) && ctl_get_str (&group, "status") &&
                 !strcmp (ctl_get_str (&group, "status"), "running");
   if (stage_documents (&before, &stage, &have_stage) == 0) {
      /* mt_group_initiate would complete it at once, and delete it. */
      fprintf (stderr,
               "mtaskctl: group %s has no tasks to start; add some first: mtaskctl group add %s --stage 1 --queue Q --type T\n",
               ctl->id,
               ctl->id);
      status = EXIT_RUNTIME;
      goto cleanup;
   }
   if (!mt_group_initiate (client, db, &ctl->oid, &error)) {
      status = ctl_db_error (db, MT_GROUPS_COLLECTION, &error, "start group %s", ctl->id);
      goto cleanup;
   }

   /* What it did: a stage runs, or the group is complete (kept or gone). */
   bson_destroy (&after);
   found = mt_admin_group (client, db, &ctl->oid, NULL, &after, &error);
   if (!found && !ctl_not_found (&error)) {
      status = ctl_db_error (db, MT_GROUPS_COLLECTION, &error, "read group %s after starting it", ctl->id);
      goto cleanup;
   }
   have_stage = false;
   if (found) {
      ctl_get_doc (&after, "group", &group);
      stage_documents (&after, &stage, &have_stage);
   }
   group_status = found ? ctl_get_str (&group, "status") : "complete";
   if (!group_status) {
      group_status = "?";
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_OID (&out, "_id", &ctl->oid);
      BSON_APPEND_UTF8 (&out, "status", group_status);
      BSON_APPEND_BOOL (&out, "deleted", !found);
      if (have_stage) {
         BSON_APPEND_INT64 (&out, "stage", ctl_get_int (&stage, "number", 0));
      } else {
         BSON_APPEND_NULL (&out, "stage");
      }
      ctl_print_json (&out);
      bson_destroy (&out);
   } else if (!found) {
      printf ("group %s: every stage is complete; the group is complete and deleted\n", ctl->id);
   } else if (!strcmp (group_status, "complete")) {
      printf ("group %s: every stage is complete; the group is complete, kept until %s\n",
              ctl->id,
              ctl_format_date (&group, "keep_until", until, sizeof until));
   } else if (have_stage) {
      printf ("group %s %s: stage %" PRId64 " %s, %" PRId64 " tasks, %" PRId64 " ended\n",
              ctl->id,
              was_running ? "was running already" : "started",
              ctl_get_int (&stage, "number", 0),
              ctl_get_str (&stage, "status") ? ctl_get_str (&stage, "status") : "?",
              ctl_get_int (&stage, "total", 0),
              ctl_get_int (&stage, "done", 0));
   } else {
      printf ("group %s: %s\n", ctl->id, group_status);
   }

cleanup:
   bson_destroy (&before);
   bson_destroy (&after);
   return status;
}

static void
group_ls_header (void)
{
   printf ("%-24s  %-8s  %-20s  %6s  %7s  %s\n", "ID", "STATUS", "CREATED", "STAGES", "CURRENT", "DESCRIPTION");
}

int
ctl_cmd_group_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply, group;
   bson_error_t error;
   bson_iter_t iter;
   bool header = false;
   int status = 0;

   if (!mt_admin_groups (client, db, NULL, &reply, &error)) {
      if (!strcmp (ctl_failed_in (&reply, MT_GROUP_STAGES_COLLECTION), MT_GROUP_STAGES_COLLECTION)) {
         status = ctl_db_error (db, MT_GROUP_STAGES_COLLECTION, &error, "count the stages of the groups");
      } else {
         status = ctl_db_error (db, MT_GROUPS_COLLECTION, &error, "list groups");
      }
      goto cleanup;
   }
   ctl_array (&reply, "groups", &iter);
   while (ctl_array_next (&iter, &group)) {
      char id[32], st[32], created[40], current[24];
      const char *description;

      if (ctl->seen[F_JSON]) {
         ctl_print_json (&group);
         continue;
      }
      if (!header) {
         group_ls_header ();
         header = true;
      }
      if (ctl_get_int (&group, "current_stage", -1) >= 0) {
         snprintf (current, sizeof current, "%" PRId64, ctl_get_int (&group, "current_stage", -1));
      } else {
         snprintf (current, sizeof current, "-");
      }
      description = ctl_get_str (&group, "description");
      printf ("%-24s  %-8s  %-20s  %6" PRId64 "  %7s  %s\n",
              ctl_format_field (&group, "_id", id, sizeof id),
              ctl_format_field (&group, "status", st, sizeof st),
              ctl_format_date (&group, "created", created, sizeof created),
              ctl_get_int (&group, "stage_count", 0),
              current,
              description && description[0] ? description : "-");
   }
   if (!header && !ctl->seen[F_JSON]) {
      printf ("no groups in %s.%s\n", db, MT_GROUPS_COLLECTION);
   }

cleanup:
   bson_destroy (&reply);
   return status;
}

static void
group_show_table (const bson_t *reply)
{
   const char **cols = bson_malloc0 ((ctl_array_len (reply, "statuses") + 1) * sizeof *cols);
   size_t n_cols = 0;
   char buf[64], date[40], keep[64];
   const char *description;
   bson_iter_t iter, list;
   bson_t group = BSON_INITIALIZER, row, tasks;
   bool missing = false;

   ctl_get_doc (reply, "group", &group);
   description = ctl_get_str (&group, "description");
   printf ("group        %s\n", ctl_format_field (&group, "_id", buf, sizeof buf));
   printf ("description  %s\n", description && description[0] ? description : "-");
   printf ("status       %s\n", ctl_format_field (&group, "status", buf, sizeof buf));
   printf ("created      %s\n", ctl_format_date (&group, "created", date, sizeof date));
   printf ("completed    %s\n", ctl_format_date (&group, "completed", date, sizeof date));
   if (bson_iter_init_find (&iter, &group, "keep_seconds") && BSON_ITER_HOLDS_NUMBER (&iter) && bson_iter_as_double (&iter) > 0) {
      snprintf (keep, sizeof keep, "%g s after completing", bson_iter_as_double (&iter));
      if (bson_iter_init_find (&iter, &group, "keep_until") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         printf ("kept         %s, until %s\n", keep, ctl_format_date (&group, "keep_until", date, sizeof date));
      } else {
         printf ("kept         %s\n", keep);
      }
   } else {
      printf ("kept         no: deleted when complete\n");
   }
   printf ("\n");
   if (!ctl_array_len (reply, "stages")) {
      printf ("no stages yet: add tasks with 'mtaskctl group add %s --stage 1 ...'\n",
              ctl_format_field (&group, "_id", buf, sizeof buf));
      goto cleanup;
   }

   /* Columns: every task status that occurs, in lifecycle order. */
   if (bson_iter_init_find (&iter, reply, "statuses") && BSON_ITER_HOLDS_ARRAY (&iter) && bson_iter_recurse (&iter, &list)) {
      while (bson_iter_next (&list)) {
         if (BSON_ITER_HOLDS_UTF8 (&list)) {
            cols[n_cols++] = bson_iter_utf8 (&list, NULL);
         }
      }
   }
   printf ("%5s  %-8s  %6s  %6s", "STAGE", "STATUS", "TOTAL", "DONE");
   for (size_t c = 0; c < n_cols; c++) {
      printf ("  %*s", (int) BSON_MAX (strlen (cols[c]), 7), cols[c]);
   }
   printf ("  %-20s  %s\n", "STARTED", "COMPLETED");
   ctl_array (reply, "stages", &iter);
   while (ctl_array_next (&iter, &row)) {
      bool has_doc = !bson_has_field (&row, "missing");
      char total[24], done[24], started[40], completed[40];

      if (has_doc) {
         snprintf (total, sizeof total, "%" PRId64, ctl_get_int (&row, "total", 0));
         snprintf (done, sizeof done, "%" PRId64, ctl_get_int (&row, "done", 0));
      } else {
         snprintf (total, sizeof total, "-");
         snprintf (done, sizeof done, "-");
         missing = true;
      }
      printf ("%5" PRId64 "  %-8s  %6s  %6s",
              ctl_get_int (&row, "number", 0),
              has_doc ? ctl_format_field (&row, "status", buf, sizeof buf) : "missing",
              total,
              done);
      if (!ctl_get_doc (&row, "tasks", &tasks)) {
         bson_init (&tasks);
      }
      for (size_t c = 0; c < n_cols; c++) {
         printf ("  %*" PRId64, (int) BSON_MAX (strlen (cols[c]), 7), ctl_get_int (&tasks, cols[c], 0));
      }
      printf ("  %-20s  %s\n",
              has_doc ? ctl_format_date (&row, "started", started, sizeof started) : "-",
              has_doc ? ctl_format_date (&row, "completed", completed, sizeof completed) : "-");
   }
   if (missing) {
      printf ("\na 'missing' stage has tasks but no document in group_stages: "
              "'mtaskctl group clean' repairs it\n");
   }

cleanup:
   bson_free ((void *) cols);
}

int
ctl_cmd_group_show (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply;
   int status = read_group (ctl, client, db, "read the stages of group %s", &reply);

   if (status) {
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      bson_copy_to_excluding_noinit (&reply, &out, "statuses", NULL);
      ctl_print_json (&out);
      bson_destroy (&out);
   } else {
      group_show_table (&reply);
   }

cleanup:
   bson_destroy (&reply);
   return status;
}

int
ctl_cmd_group_clean (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bool purge = ctl->seen[F_PURGE];
   bson_error_t error;
   int64_t n = mt_groups_clean (client, db, purge, &error);

   if (n < 0) {
      return ctl_db_error (db, MT_GROUPS_COLLECTION, &error, purge ? "purge the groups" : "repair the groups");
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_INT64 (&out, purge ? "purged_tasks" : "repaired", n);
      ctl_print_json (&out);
      bson_destroy (&out);
   } else if (purge) {
      printf ("purged: %" PRId64 " staged tasks deleted, and every group and stage\n", n);
   } else {
      printf ("repaired %" PRId64 " groups or stages from their orphaned tasks\n", n);
   }
   return 0;
}
