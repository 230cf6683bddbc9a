/* The workers: the registry as the admin API judges it (workers), the
 * commands it carries to them (worker quiet, worker stop), and what stats
 * and enqueue say about the backlog and the queues no worker serves. */
#include "ctl.h"

#include <string.h>

/* A duration in milliseconds as "45s", "3m05s", "2h10m", "3d04h". */
static const char *
format_age (int64_t ms, char *out, size_t size)
{
   int64_t s = ms / 1000;

   if (s < 60) {
      snprintf (out, size, "%" PRId64 "s", s);
   } else if (s < 3600) {
      snprintf (out, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
   } else if (s < 86400) {
      snprintf (out, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
   } else {
      snprintf (out, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
   }
   return out;
}

/* The strings of the array at `key`, comma-separated, into `out`. */
static const char *
join_array (const bson_t *doc, const char *key, char *out, size_t size)
{
   bson_iter_t iter, child;

   out[0] = '\0';
   if (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_ARRAY (&iter) && bson_iter_recurse (&iter, &child)) {
      while (bson_iter_next (&child)) {
         if (BSON_ITER_HOLDS_UTF8 (&child)) {
            size_t len = strlen (out);

            snprintf (out + len, size - len, "%s%s", len ? "," : "", bson_iter_utf8 (&child, NULL));
         }
      }
   }
   return out[0] ? out : "-";
}

int
ctl_cmd_workers (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_error_t error;
   bson_t reply, worker, task;
   bson_iter_t iter, tasks;
   int status = EXIT_RUNTIME;
   bool any = false;

   if (!mt_admin_workers (client, db, NULL, &reply, &error)) {
      ctl_db_error (db, ctl_failed_in (&reply, MT_WORKERS_COLLECTION), &error, "list the workers");
      goto cleanup;
   }
   if (!ctl->seen[F_JSON]) {
      printf ("%-24s  %-16s  %7s  %-16s  %4s  %-8s  %9s  %s\n", "ID", "HOST", "PID", "QUEUES", "CONC", "STATE", "HEARTBEAT", "RUNNING");
   }
   ctl_array (&reply, "workers", &iter);
   while (ctl_array_next (&iter, &worker)) {
      char id[64], pid[32], conc[32], queues[256], age[32], running[512] = "";
      int64_t age_ms = ctl_get_int (&worker, "heartbeat_age_ms", -1);

      any = true;
      if (ctl->seen[F_JSON]) {
         ctl_print_json (&worker);
         continue;
      }
      ctl_array (&worker, "running", &tasks);
      while (ctl_array_next (&tasks, &task)) {
         char tid[32], type[128];
         size_t len = strlen (running);

         snprintf (running + len,
                   sizeof running - len,
                   "%s%s (%s)",
                   len ? ", " : "",
                   ctl_format_field (&task, "_id", tid, sizeof tid),
                   ctl_format_field (&task, "type", type, sizeof type));
      }
      printf ("%-24s  %-16s  %7s  %-16s  %4s  %-8s  %9s  %s\n",
              ctl_format_field (&worker, "_id", id, sizeof id),
              ctl_get_str (&worker, "host") ? ctl_get_str (&worker, "host") : "-",
              ctl_format_field (&worker, "pid", pid, sizeof pid),
              join_array (&worker, "queues", queues, sizeof queues),
              ctl_format_field (&worker, "concurrency", conc, sizeof conc),
              ctl_get_str (&worker, "state") ? ctl_get_str (&worker, "state") : "?",
              age_ms >= 0 ? format_age (age_ms, age, sizeof age) : "-",
              running[0] ? running : "-");
   }
   if (!any && !ctl->seen[F_JSON]) {
      printf ("(no workers in %s.%s)\n", db, MT_WORKERS_COLLECTION);
   }
   status = 0;

cleanup:
   bson_destroy (&reply);
   return status;
}

static int
worker_command (const ctl_t *ctl, mongoc_client_t *client, const char *db, const char *command)
{
   bson_t opts = BSON_INITIALIZER, reply;
   bson_error_t error;
   int status = EXIT_RUNTIME;

   if (ctl->seen[F_GRACE]) {
      int64_t grace = (int64_t) ctl->grace;

      BSON_APPEND_INT64 (&opts, "grace", grace < ctl->grace ? grace + 1 : grace); /* whole seconds, up */
   }
   if (!mt_admin_worker_command (client, db, ctl->id, command, &opts, &reply, &error)) {
      if (error.domain == MT_ERROR_CONFIG) {
         fprintf (stderr, "mtaskctl: cannot %s worker '%s': %s\n", command, ctl->id, error.message);
      } else {
         ctl_db_error (db, ctl_failed_in (&reply, MT_WORKERS_COLLECTION), &error, "%s worker '%s'", command, ctl->id);
      }
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      ctl_print_json (&reply);
   } else {
      printf ("worker '%s' (%s) asked to %s; it follows at its next heartbeat%s\n",
              ctl->id,
              ctl_get_str (&reply, "state") ? ctl_get_str (&reply, "state") : "?",
              command,
              strcmp (command, "stop") ? ": it claims nothing new, finishes what runs and stays up"
                                       : ": it claims nothing new, and running tasks get the grace, then go back");
   }
   status = 0;

cleanup:
   bson_destroy (&opts);
   bson_destroy (&reply);
   return status;
}

int
ctl_cmd_worker_quiet (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   return worker_command (ctl, client, db, "quiet");
}

int
ctl_cmd_worker_stop (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   return worker_command (ctl, client, db, "stop");
}

void
ctl_stats_backlog (const bson_t *reply, bson_t *json)
{
   bson_iter_t iter;
   bson_t row;
   size_t width = strlen ("QUEUE");

   if (json) {
      /* As the admin API gives them. */
      const char *keys[] = {"backlog", "unserved_queues", "unserved_types"};

      for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
         if (bson_iter_init_find (&iter, reply, keys[k])) {
            BSON_APPEND_VALUE (json, keys[k], bson_iter_value (&iter));
         }
      }
      return;
   }
   ctl_array (reply, "backlog", &iter);
   while (ctl_array_next (&iter, &row)) {
      width = BSON_MAX (width, strlen (ctl_get_str (&row, "queue") ? ctl_get_str (&row, "queue") : "-"));
   }
   printf ("\nBACKLOG (due now, delayed, waiting to retry, running; OLDEST DUE: the queue's latency)\n");
   printf ("%-*s  %8s  %8s  %8s  %8s  %10s\n", (int) width, "QUEUE", "DUE", "DELAYED", "RETRYING", "RUNNING", "OLDEST DUE");
   ctl_array (reply, "backlog", &iter);
   if (!ctl_array_len (reply, "backlog")) {
      printf ("(none)\n");
   }
   while (ctl_array_next (&iter, &row)) {
      char age[32];
      int64_t age_ms = ctl_get_int (&row, "oldest_due_age_ms", -1);

      printf ("%-*s  %8" PRId64 "  %8" PRId64 "  %8" PRId64 "  %8" PRId64 "  %10s\n",
              (int) width,
              ctl_get_str (&row, "queue") ? ctl_get_str (&row, "queue") : "-",
              ctl_get_int (&row, "due", 0),
              ctl_get_int (&row, "delayed", 0),
              ctl_get_int (&row, "retrying", 0),
              ctl_get_int (&row, "running", 0),
              age_ms >= 0 ? format_age (age_ms, age, sizeof age) : "-");
   }
   if (ctl_array_len (reply, "unserved_queues") || ctl_array_len (reply, "unserved_types")) {
      bson_iter_t list;

      printf ("\nNOT SERVED by any running worker ('mtaskctl workers' lists them):\n");
      if (bson_iter_init_find (&iter, reply, "unserved_queues") && BSON_ITER_HOLDS_ARRAY (&iter) && bson_iter_recurse (&iter, &list)) {
         while (bson_iter_next (&list)) {
            if (BSON_ITER_HOLDS_UTF8 (&list)) {
               printf ("  queue %s: no running worker takes it\n", bson_iter_utf8 (&list, NULL));
            }
         }
      }
      ctl_array (reply, "unserved_types", &iter);
      while (ctl_array_next (&iter, &row)) {
         printf ("  type %s in queue %s: no running worker of the queue has its plugin\n",
                 ctl_get_str (&row, "type") ? ctl_get_str (&row, "type") : "-",
                 ctl_get_str (&row, "queue") ? ctl_get_str (&row, "queue") : "-");
      }
   }
}

void
ctl_warn_unserved (mongoc_client_t *client, const char *db, const char *queue, const char *type)
{
   bson_t reply;
   bson_error_t error;
   bson_iter_t iter;

   if (!mt_admin_served (client, db, queue, type, NULL, &reply, &error)) {
      fprintf (stderr, "mtaskctl: warning: cannot tell whether a worker serves queue '%s': %s\n", queue, error.message);
   } else if (bson_iter_init_find (&iter, &reply, "served") && BSON_ITER_HOLDS_BOOL (&iter) && !bson_iter_bool (&iter)) {
      if (ctl_get_int (&reply, "queue_workers", 0) > 0) {
         fprintf (stderr,
                  "mtaskctl: warning: no running worker of queue '%s' has a plugin for type '%s'; the task waits "
                  "until one does ('mtaskctl workers' lists them)\n",
                  queue,
                  type);
      } else {
         fprintf (stderr,
                  "mtaskctl: warning: no running worker takes queue '%s'; the task waits until one does "
                  "('mtaskctl workers' lists them)\n",
                  queue);
      }
   }
   bson_destroy (&reply);
}
