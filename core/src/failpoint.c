/* Failpoints: tests kill the worker at named points between two writes,
 * the way a power cut would (MTASK_FAILPOINT=archive-copied,...). Built
 * only with the meson option 'failpoints', which the test build turns on;
 * an installed worker has none of this. */
#include "context-private.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MT_FAILPOINTS
void
mt_failpoint (const char *name)
{
   const char *list = getenv ("MTASK_FAILPOINT");
   size_t len = strlen (name);

   for (const char *p = list; p && *p;) {
      const char *end = strchr (p, ',');
      size_t n = end ? (size_t) (end - p) : strlen (p);

      if (n == len && !strncmp (p, name, len)) {
         fprintf (stderr, "mtask: failpoint '%s': killing the worker\n", name);
#ifdef MT_COVERAGE
         /* A copy of the process writes the coverage counters: this one
          * dies at once, its other threads with it, as in a power cut.
          * (Writing them here let the heartbeat thread go on meanwhile,
          * and do the upkeep a test expects the dead worker to leave.) */
         if (fork () == 0) {
            mt_coverage_flush ();
            _exit (0);
         }
#endif
         raise (SIGKILL);
      }
      p = end ? end + 1 : NULL;
   }
}
#endif
