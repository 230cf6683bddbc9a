/* loadmark: not a plugin, a shared object whose ELF constructor appends a
 * line to the file named by $MTASK_LOADMARK the moment anything loads it,
 * before any entry function could be looked up. Built as loadmark.marker,
 * not *.so, so that no --plugins directory picks it up; a test copies it
 * to where a path-like task type points, to show that a worker never
 * loads a file a task names. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__ ((constructor)) static void
loadmark_loaded (void)
{
   const char *path = getenv ("MTASK_LOADMARK");
   char line[64];
   int fd, n;

   if (!path || !path[0]) {
      return;
   }
   fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
   if (fd < 0) {
      return;
   }
   n = snprintf (line, sizeof line, "loaded by pid %d\n", (int) getpid ());
   if (n > 0 && write (fd, line, (size_t) n) != n) {
      /* Nothing to do: the file exists, which is what a test looks for. */
   }
   close (fd);
}
