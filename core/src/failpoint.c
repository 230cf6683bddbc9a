/* Failpoints: tests kill the worker at named points between two writes,
 * the way a power cut would (MTASK_FAILPOINT=archive-copied,...), or hold
 * it at a named point until the test lets it go on, to make a race happen
 * in the order the test wants (MTASK_FAILPOINT_PAUSE=name:DIR,...). Built
 * only with the meson option 'failpoints', which the test build turns on;
 * an installed worker has none of this. */
#include "context-private.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef MT_FAILPOINTS

/* How long a paused point waits for its go file before it goes on anyway:
 * a test that failed before releasing it must not hang the worker. */
#define MT_FAILPOINT_PAUSE_MAX_US (60 * 1000 * 1000)

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

/* Creates the file `path` (empty), for the test to see. */
static void
touch (const char *path)
{
   int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

   if (fd >= 0) {
      close (fd);
   } else {
      fprintf (stderr, "mtask: failpoint: cannot create %s\n", path);
   }
}

void
mt_failpoint_pause (const char *name)
{
   const char *list = getenv ("MTASK_FAILPOINT_PAUSE");
   size_t len = strlen (name);

   /* Entries are name:DIR, separated by commas. */
   for (const char *p = list; p && *p;) {
      const char *end = strchr (p, ',');
      const char *colon = strchr (p, ':');
      size_t n = end ? (size_t) (end - p) : strlen (p);

      if (colon && (!end || colon < end) && (size_t) (colon - p) == len && !strncmp (p, name, len)) {
         char dir[1024], reached[1100], go[1100], passed[1100];
         size_t dir_len = n - len - 1;
         int64_t deadline;
         bool released;

         if (dir_len >= sizeof dir) {
            fprintf (stderr, "mtask: failpoint '%s': its directory name is too long\n", name);
            return;
         }
         memcpy (dir, colon + 1, dir_len);
         dir[dir_len] = '\0';
         bson_snprintf (reached, sizeof reached, "%s/%s.reached", dir, name);
         bson_snprintf (go, sizeof go, "%s/%s.go", dir, name);
         bson_snprintf (passed, sizeof passed, "%s/%s.passed", dir, name);
         if (access (go, F_OK) == 0) {
            return; /* released already: it passes from then on */
         }
         fprintf (stderr, "mtask: failpoint '%s': paused until %s exists (at most 60 s)\n", name, go);
         touch (reached);
         deadline = bson_get_monotonic_time () + MT_FAILPOINT_PAUSE_MAX_US;
         while (!(released = access (go, F_OK) == 0) && bson_get_monotonic_time () < deadline) {
            struct timespec nap = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};

            nanosleep (&nap, NULL);
         }
         fprintf (stderr, "mtask: failpoint '%s': going on (%s)\n", name, released ? "released" : "not released within 60 s");
         touch (passed);
         return;
      }
      p = end ? end + 1 : NULL;
   }
}
#endif
