/* locks: the account locks, who holds what since when, and whether that
 * run is still going on. */
#include "ctl.h"

#include <string.h>

int
ctl_cmd_locks (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply, lock;
   bson_error_t error;
   bson_iter_t iter;
   bool header = false;
   int status = 0;

   if (!mt_admin_locks (client, db, NULL, &reply, &error)) {
      if (!strcmp (ctl_failed_in (&reply, MT_LOCKS_COLLECTION), MT_TASKS_COLLECTION)) {
         fprintf (stderr, "mtaskctl: cannot check the tasks holding locks in %s.tasks: %s\n", db, error.message);
      } else {
         fprintf (stderr, "mtaskctl: cannot list locks in %s.locks: %s\n", db, error.message);
      }
      status = EXIT_RUNTIME;
      goto cleanup;
   }
   ctl_array (&reply, "locks", &iter);
   while (ctl_array_next (&iter, &lock)) {
      char account[64], task[64], worker[128], attempt[32], since[40];

      if (ctl->seen[F_JSON]) {
         ctl_print_json (&lock);
         continue;
      }
      if (!header) {
         printf ("%-20s  %-24s  %-24s  %7s  %-20s  %s\n", "ACCOUNT", "TASK", "WORKER", "ATTEMPT", "SINCE", "STATE");
         header = true;
      }
      printf ("%-20s  %-24s  %-24s  %7s  %-20s  %s\n",
              ctl_format_field (&lock, "_id", account, sizeof account),
              ctl_format_field (&lock, "task", task, sizeof task),
              ctl_format_field (&lock, "worker_pid", worker, sizeof worker),
              ctl_format_field (&lock, "attempt", attempt, sizeof attempt),
              ctl_format_date (&lock, "acquired", since, sizeof since),
              ctl_get_str (&lock, "state") ? ctl_get_str (&lock, "state") : "?");
   }
   if (!header && !ctl->seen[F_JSON]) {
      printf ("no account locks in %s.locks\n", db);
   }

cleanup:
   bson_destroy (&reply);
   return status;
}
