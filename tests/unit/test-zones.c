/* Cron in every time zone of the system, and the names and expressions the
 * parser refuses.
 *
 * Each TZif file of the system's zoneinfo is loaded by the cron parser (its
 * transitions, and the POSIX rule of its footer that says what comes after
 * them) and asked for next times before its first transition, among its
 * transitions, and long after its last; each answer must lie ahead, and
 * within the bound an hourly or a daily schedule allows. test-cron.c
 * checks the exact times in chosen zones. */
#include "mt-test.h"
#include "mtask-private.h"
#include "cron.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#define ZONEINFO "/usr/share/zoneinfo"
#define HOUR_MS (3600 * INT64_C (1000))

/* 1800-01-01, 1960-06-01, 2021-03-28T00:30Z, 2021-10-31T00:30Z,
 * 2150-07-01, 2400-02-29T12:00Z: before the first transition of most
 * zones, around two of them, and after the last (the footer's rule). */
static const int64_t times[] = {
   INT64_C (-5364662400000), INT64_C (-301622400000), INT64_C (1616891400000),
   INT64_C (1635640200000),  INT64_C (5760979200000),  INT64_C (13574203200000),
};

static int zones_seen;

/* Whether `path` is a TZif file. */
static bool
is_tzif (const char *path)
{
   FILE *f = fopen (path, "rb");
   char magic[4] = "";
   bool yes;

   if (!f) {
      return false;
   }
   yes = fread (magic, 1, 4, f) == 4 && !memcmp (magic, "TZif", 4);
   fclose (f);
   return yes;
}

static void
check_zone (const char *name)
{
   static const struct {
      const char *expr;
      int64_t bound_ms; /* the next run is at most this far ahead */
   } schedules[] = {
      {"0 * * * *", 3 * HOUR_MS},
      {"30 12 * * *", 27 * HOUR_MS},
      {"*/15 0-23/2 * 2,6,11 mon-fri", 160 * 24 * HOUR_MS},
   };
   bson_error_t error;

   for (size_t s = 0; s < sizeof schedules / sizeof schedules[0]; s++) {
      mt_cron_t *cron = mt_cron_parse (schedules[s].expr, name, &error);

      if (!cron) {
         mt_test_fail (__FILE__, __LINE__, "zone '%s': %s", name, error.message);
      }
      for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
         int64_t next = mt_cron_next (cron, times[i]);

         if (next <= times[i] || next - times[i] > schedules[s].bound_ms) {
            mt_test_fail (__FILE__, __LINE__, "zone '%s', '%s' after %" PRId64 ": %" PRId64, name, schedules[s].expr, times[i],
                          next);
         }
      }
      mt_cron_destroy (cron);
   }
   zones_seen++;
}

/* The zones under `dir` (relative to ZONEINFO; "" for the top). */
static void
walk (const char *dir)
{
   char *path = bson_strdup_printf ("%s%s%s", ZONEINFO, dir[0] ? "/" : "", dir);
   DIR *d = opendir (path);
   struct dirent *ent;

   ASSERT (d);
   while ((ent = readdir (d))) {
      char *name, *full;
      struct stat st;

      if (ent->d_name[0] == '.' || (!dir[0] && (!strcmp (ent->d_name, "posix") || !strcmp (ent->d_name, "right")))) {
         continue;
      }
      name = bson_strdup_printf ("%s%s%s", dir, dir[0] ? "/" : "", ent->d_name);
      full = bson_strdup_printf ("%s/%s", ZONEINFO, name);
      if (stat (full, &st) == 0 && S_ISDIR (st.st_mode)) {
         walk (name);
      } else if (S_ISREG (st.st_mode) && is_tzif (full) && strlen (name) <= 128 && !strchr (name, '.')) {
         check_zone (name);
      }
      bson_free (full);
      bson_free (name);
   }
   closedir (d);
   bson_free (path);
}

static void
test_every_zone (void)
{
   if (access (ZONEINFO "/Europe/Berlin", R_OK) != 0) {
      mt_test_skip ("no system zoneinfo in " ZONEINFO);
   }
   zones_seen = 0;
   walk ("");
   printf ("# %d zones\n", zones_seen);
   ASSERT_CMPINT (zones_seen, >, 100);
}

static void
refused (const char *expr, const char *zone, const char *fragment)
{
   bson_error_t error;
   mt_cron_t *cron = mt_cron_parse (expr, zone, &error);

   if (cron) {
      mt_cron_destroy (cron);
      mt_test_fail (__FILE__, __LINE__, "'%s' in '%s' was accepted", expr, zone ? zone : "(none)");
   }
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_CONFIG);
   ASSERT_CONTAINS (error.message, fragment);
}

static void
test_zone_names_refused (void)
{
   char long_name[200];

   memset (long_name, 'a', sizeof long_name - 1);
   long_name[sizeof long_name - 1] = '\0';
   refused ("0 * * * *", "../../etc/passwd", "is not a zone name");
   refused ("0 * * * *", "/etc/localtime", "is not a zone name");
   refused ("0 * * * *", "Europe/Ber lin", "is not a zone name");
   refused ("0 * * * *", "Europe/Berlin;", "is not a zone name");
   refused ("0 * * * *", long_name, "is not a zone name");
   refused ("0 * * * *", "Europe", "a directory of zones");
   refused ("0 * * * *", "Nowhere/Atlantis", "unknown time zone 'Nowhere/Atlantis' (no file");
   refused ("0 * * * *", "Europe/Berlin/Mitte", "unknown time zone");
   /* A file of the zoneinfo that is no TZif file. */
   if (access (ZONEINFO "/zone.tab", R_OK) == 0) {
      refused ("0 * * * *", "zone1970-tab", "unknown time zone");
   }
}

static void
test_expressions (void)
{
   bson_error_t error;
   mt_cron_t *cron;

   /* Any white space between fields. */
   cron = mt_cron_parse ("\t0\n12\r*\v*\f1-5 ", "UTC", &error);
   ASSERT_OR_PRINT (cron, error);
   ASSERT_CMPINT (mt_cron_next (cron, INT64_C (-62135596800001)), ==, -1);
   ASSERT_CMPINT (mt_cron_next (cron, INT64_C (253402300800000)), ==, -1);
   ASSERT_CMPINT (mt_cron_next (NULL, 0), ==, -1);
   mt_cron_destroy (cron);
   mt_cron_destroy (NULL);

   refused ("@reboot", NULL, "@reboot means at start-up");
   refused ("@rebooted", NULL, "@rebooted");
   refused ("0 0 * * fri-0", NULL, "Sunday is 7 too");
   refused ("0 0 * * 5-1", NULL, "the range is reversed (5 > 1)");
   refused ("*/100000000000 * * * *", NULL, "is out of range 1-60");
   refused ("*/ * * * *", NULL, "the step after '/' is missing");
   refused ("*/x * * * *", NULL, "the step 'x' is not a number");
   refused ("*/0 * * * *", NULL, "the step must be at least 1");
   refused ("100000000000 * * * *", NULL, "is out of range 0-59");
   refused ("0 0 * JANUARY *", NULL, "is not a number or");
   refused ("0 0 * * Funday", NULL, "is not a number or");
   refused ("x 0 * * *", NULL, "is not a number");
   refused ("5- 0 * * *", NULL, "a value is missing at the end");
   refused ("-5 0 * * *", NULL, "unexpected '-'");
   refused ("5x5 0 * * *", NULL, "is not a number");
   refused ("5,,6 0 * * *", NULL, "an empty element");
   refused ("5#2 0 * * *", NULL, "unexpected");
   refused (NULL, NULL, "no expression");
   refused (" \t ", NULL, "the expression is empty");

   /* Names in any case; a/n runs from a to the end. */
   cron = mt_cron_parse ("0 0 1 jAn,DEC Sun", "Etc/GMT-14", &error);
   ASSERT_OR_PRINT (cron, error);
   mt_cron_destroy (cron);
   cron = mt_cron_parse ("50/5 23/1 31/1 12/1 6/1", "America/St_Johns", &error);
   ASSERT_OR_PRINT (cron, error);
   ASSERT_CMPINT (mt_cron_next (cron, 0), >, 0);
   mt_cron_destroy (cron);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/zones/every_zone", test_every_zone);
   mt_test_add ("/zones/names_refused", test_zone_names_refused);
   mt_test_add ("/zones/expressions", test_expressions);
   return mt_test_main (argc, argv);
}
