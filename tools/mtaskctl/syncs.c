/* The sync commands: synchronizers (seed 000). stage, create, start,
 * check, ls. */
#include "ctl.h"

#include <string.h>

/* The synchronizer `name` into `reply` (always initialized) and `sync` (a
 * view into it). Says on stderr why it cannot and returns EXIT_RUNTIME;
 * else 0. */
static int
read_sync (mongoc_client_t *client, const char *db, const char *name, bson_t *reply, bson_t *sync)
{
   bson_error_t error;
   char *label;
   int status = 0;

   if (!mt_admin_sync (client, db, name, NULL, reply, &error) || !ctl_get_doc (reply, "synchronizer", sync)) {
      label = bson_strdup_printf ("'%s'", name);
      status = ctl_read_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "synchronizer", label);
      bson_free (label);
   }
   return status;
}

/* The stage `id`, as read_sync. */
static int
read_sync_stage (mongoc_client_t *client, const char *db, const bson_oid_t *id, bson_t *reply, bson_t *stage)
{
   bson_error_t error;
   char hex[25];
   int status = 0;

   if (!mt_admin_sync_stage (client, db, id, NULL, reply, &error) || !ctl_get_doc (reply, "stage", stage)) {
      bson_oid_to_string (id, hex);
      status = ctl_read_error (db, MT_SYNC_STAGES_COLLECTION, &error, "stage", hex);
   }
   return status;
}

int
ctl_cmd_sync_stage (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t next_reply = BSON_INITIALIZER, next;
   bson_error_t error;
   bson_oid_t id;
   int status = 0;

   if (ctl->seen[F_NEXT]) {
      bson_destroy (&next_reply);
      if ((status = read_sync_stage (client, db, &ctl->next, &next_reply, &next))) {
         goto cleanup;
      }
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
      status = ctl_db_error (db, MT_SYNC_STAGES_COLLECTION, &error, "create stage '%s'", ctl->value[F_NAME]);
      goto cleanup;
   }
   ctl_print_id (ctl, &id);

cleanup:
   bson_destroy (&next_reply);
   return status;
}

int
ctl_cmd_sync_create (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t stage_reply, sync_reply = BSON_INITIALIZER, stage, sync;
   bson_error_t error;
   char buf[32];
   int status = read_sync_stage (client, db, &ctl->start_stage, &stage_reply, &stage);

   if (status) {
      goto cleanup;
   }
   if (!mt_sync_create (client, db, ctl->id, &ctl->start_stage, &error)) {
      status = ctl_db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "create synchronizer '%s'", ctl->id);
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      bson_destroy (&sync_reply);
      if (!(status = read_sync (client, db, ctl->id, &sync_reply, &sync))) {
         ctl_print_json (&sync);
      }
   } else {
      printf ("synchronizer '%s' created, on stand-by; it begins at stage '%s' (%s)\n",
              ctl->id,
              ctl_format_field (&stage, "name", buf, sizeof buf),
              ctl->value[F_START_STAGE]);
   }

cleanup:
   bson_destroy (&stage_reply);
   bson_destroy (&sync_reply);
   return status;
}

int
ctl_cmd_sync_start (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t before_reply, after_reply = BSON_INITIALIZER, stage_reply = BSON_INITIALIZER;
   bson_t before, after, stage = BSON_INITIALIZER;
   bson_error_t error;
   const char *was;
   char task[32], buf[32];
   int status = read_sync (client, db, ctl->id, &before_reply, &before);

   if (status) {
      goto cleanup;
   }
   was = ctl_get_str (&before, "status");
   if (ctl->seen[F_NOW] ? !mt_sync_begin_stage (client, db, ctl->id, NULL, &error)
                        : !mt_sync_request_start (client, db, ctl->id, &error)) {
      status = ctl_db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "start synchronizer '%s'", ctl->id);
      goto cleanup;
   }
   bson_destroy (&after_reply);
   if ((status = read_sync (client, db, ctl->id, &after_reply, &after))) {
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      ctl_print_json (&after);
   } else if (!ctl->seen[F_NOW]) {
      if (was && !strcmp (was, "running")) {
         printf ("synchronizer '%s' is running: asked to begin again; a running worker begins it at its first "
                 "upkeep tick after it is back on stand-by\n",
                 ctl->id);
      } else {
         printf ("synchronizer '%s': start requested; a running worker begins it at its next upkeep tick\n", ctl->id);
      }
   } else {
      const bson_oid_t *at = ctl_get_oid (&after, "actual_stage");

      if (at) {
         bson_destroy (&stage_reply);
         if ((status = read_sync_stage (client, db, at, &stage_reply, &stage))) {
            goto cleanup;
         }
      }
      printf ("synchronizer '%s' began stage '%s': task %s of type %s",
              ctl->id,
              ctl_format_field (&stage, "name", buf, sizeof buf),
              ctl_format_field (&after, "stage_task", task, sizeof task),
              ctl_get_str (&stage, "callable") ? ctl_get_str (&stage, "callable") : "?");
      printf (" on queue %s\n", ctl_get_str (&stage, "queue") ? ctl_get_str (&stage, "queue") : "?");
   }

cleanup:
   bson_destroy (&before_reply);
   bson_destroy (&after_reply);
   bson_destroy (&stage_reply);
   return status;
}

int
ctl_cmd_sync_check (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t before_reply, after_reply = BSON_INITIALIZER, stage_reply = BSON_INITIALIZER;
   bson_t before, after, stage = BSON_INITIALIZER;
   bson_error_t error;
   const char *was, *now;
   bool advanced = false;
   char buf[32];
   int status = read_sync (client, db, ctl->id, &before_reply, &before);

   if (status) {
      goto cleanup;
   }
   was = ctl_get_str (&before, "status");
   if (!was || strcmp (was, "running") != 0) {
      if (ctl->seen[F_JSON]) {
         bson_t out = BSON_INITIALIZER;

         bson_copy_to_excluding_noinit (&before, &out, "advanced", NULL);
         BSON_APPEND_BOOL (&out, "advanced", false);
         ctl_print_json (&out);
         bson_destroy (&out);
      } else {
         printf ("not running (%s): nothing to check; 'mtaskctl sync start %s' begins it\n", was ? was : "?", ctl->id);
      }
      goto cleanup;
   }
   if (!mt_sync_check_completion (client, db, ctl->id, &advanced, &error)) {
      status = ctl_db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "check synchronizer '%s'", ctl->id);
      goto cleanup;
   }
   bson_destroy (&after_reply);
   if ((status = read_sync (client, db, ctl->id, &after_reply, &after))) {
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      bson_concat (&out, &after);
      BSON_APPEND_BOOL (&out, "advanced", advanced);
      ctl_print_json (&out);
      bson_destroy (&out);
      goto cleanup;
   }
   now = ctl_get_str (&after, "status");
   if (now && !strcmp (now, "running") && ctl_get_oid (&after, "actual_stage")) {
      bson_destroy (&stage_reply);
      if ((status = read_sync_stage (client, db, ctl_get_oid (&after, "actual_stage"), &stage_reply, &stage))) {
         goto cleanup;
      }
   }
   if (!advanced) {
      printf ("not complete yet: stage '%s' waits for queue %s to drain\n",
              ctl_format_field (&stage, "name", buf, sizeof buf),
              ctl_get_str (&stage, "queue") ? ctl_get_str (&stage, "queue") : "?");
   } else if (now && !strcmp (now, "running")) {
      printf ("advanced: now at stage '%s'\n", ctl_format_field (&stage, "name", buf, sizeof buf));
   } else {
      printf ("advanced: its last stage is complete; back on stand-by\n");
   }

cleanup:
   bson_destroy (&before_reply);
   bson_destroy (&after_reply);
   bson_destroy (&stage_reply);
   return status;
}

/* One row of sync ls. */
typedef struct {
   const char *name, *status, *stage, *start;
   char name_buf[64], status_buf[64];
   char started[40], finished[40], start_at[40];
} sync_row_t;

/* The name of the stage at `key` of a synchronizer as the table shows it:
 * "(missing)" when it points at a stage that does not exist. */
static const char *
stage_cell (const bson_t *sync, const char *key, const char *name_key)
{
   const char *name = ctl_get_str (sync, name_key);

   return name ? name : ctl_get_oid (sync, key) ? "(missing)" : "-";
}

int
ctl_cmd_sync_ls (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply, sync;
   sync_row_t *rows = NULL;
   size_t n = 0;
   int widths[4] = {4, 6, 5, 11}; /* NAME STATUS STAGE START_STAGE */
   bson_error_t error;
   bson_iter_t iter;
   char buf[64];
   int status = 0;

   if (!mt_admin_syncs (client, db, NULL, &reply, &error)) {
      if (!strcmp (ctl_failed_in (&reply, MT_SYNCHRONIZERS_COLLECTION), MT_SYNC_STAGES_COLLECTION)) {
         status = ctl_db_error (db, MT_SYNC_STAGES_COLLECTION, &error, "read the stages of synchronizer '%s'",
                                ctl_format_field (&reply, "item", buf, sizeof buf));
      } else {
         status = ctl_db_error (db, MT_SYNCHRONIZERS_COLLECTION, &error, "list synchronizers");
      }
      goto cleanup;
   }
   rows = bson_malloc0 ((ctl_array_len (&reply, "synchronizers") + 1) * sizeof *rows);
   ctl_array (&reply, "synchronizers", &iter);
   while (ctl_array_next (&iter, &sync)) {
      sync_row_t *row = &rows[n++];

      if (ctl->seen[F_JSON]) {
         ctl_print_json (&sync);
         continue;
      }
      row->name = ctl_format_field (&sync, "_id", row->name_buf, sizeof row->name_buf);
      row->status = ctl_format_field (&sync, "status", row->status_buf, sizeof row->status_buf);
      row->stage = stage_cell (&sync, "actual_stage", "actual_stage_name");
      row->start = stage_cell (&sync, "start_stage", "start_stage_name");
      if (!strcmp (ctl_format_date (&sync, "started", row->started, sizeof row->started), "-")) {
         snprintf (row->started, sizeof row->started, "-");
      }
      if (!strcmp (ctl_format_date (&sync, "finished", row->finished, sizeof row->finished), "-")) {
         snprintf (row->finished, sizeof row->finished, "-");
      }
      if (!strcmp (ctl_format_date (&sync, "start_at", row->start_at, sizeof row->start_at), "-")) {
         row->start_at[0] = '\0';
      }
      widths[0] = BSON_MAX (widths[0], (int) strlen (row->name));
      widths[1] = BSON_MAX (widths[1], (int) strlen (row->status));
      widths[2] = BSON_MAX (widths[2], (int) strlen (row->stage));
      widths[3] = BSON_MAX (widths[3], (int) strlen (row->start));
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
   bson_free (rows);
   bson_destroy (&reply);
   return status;
}
