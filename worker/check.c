/* mtask-worker --check: the configuration is parsed and the plugins are
 * loaded (mt_worker_new did both); this reaches the server through the
 * library and says what the worker would serve. */
#include "check.h"

#include <string.h>

static void
print_list (const char *label, const char *const *names)
{
   printf ("  %-13s", label);
   for (size_t i = 0; names && names[i]; i++) {
      printf ("%s%s", i ? ", " : "", names[i]);
   }
   printf ("\n");
}

int
mt_check_run (mt_worker_t *worker, const mt_cli_t *cli, const char *db, char *why, size_t why_size)
{
   bson_t reply;
   bson_error_t error;
   bson_iter_t iter;
   bool has_tasks;

   if (!mt_worker_check (worker, &reply, &error)) {
      bson_strncpy (why, error.message, why_size);
      bson_destroy (&reply);
      return 1;
   }
   has_tasks = bson_iter_init_find (&iter, &reply, "tasks_collection") && bson_iter_as_bool (&iter);
   bson_destroy (&reply);

   printf ("mtask-worker --check: ready to start\n");
   printf ("  %-13s%s\n", "worker id", mt_worker_id (worker));
   printf ("  %-13s%s (%s)\n",
           "database",
           db,
           has_tasks ? "'tasks' collection and its indexes in place"
                     : "no 'tasks' collection yet: the first start creates it and its indexes; if you expected "
                       "tasks there, check --db");
   print_list ("queues", (const char *const *) cli->queues);
   print_list ("task types", mt_worker_types (worker));
   printf ("  %-13s%d thread(s), isolate %s, lease %g s, grace %g s%s%s\n",
           "runs",
           cli->concurrency,
           cli->isolate == MT_ISOLATE_FORK ? "fork" : "none",
           cli->lease,
           cli->grace,
           cli->archive ? ", archive" : "",
           cli->once ? ", --once" : "");
   fflush (stdout);
   return 0;
}
