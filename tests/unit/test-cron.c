/* Cron expressions: parsing, the errors that explain a bad one, and next
 * times in zones with and without daylight saving time.
 *
 * The expected times of the tables were worked out independently of
 * cron.c: by hand for the simple rows, and for every row by a brute-force
 * Python script over zoneinfo, converting each matching local time with
 * PEP 495's fold=0 (first occurrence of a repeated time; a skipped time read
 * with the offset before the jump). The property test checks results
 * against glibc's localtime_r. */
#include "mt-test.h"
#include "mtask-private.h"
#include "cron.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

/* "2026-03-29T01:30:00Z", optionally with ".mmm", in ms since the epoch. */
static int64_t
iso_ms (const char *iso)
{
   struct tm tm = {0};
   int ms = 0, n = 0, fields;

   fields = sscanf (
      iso, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n);
   if (fields < 6) {
      mt_test_fail (__FILE__, __LINE__, "bad ISO time in the test: '%s'", iso);
   }
   if (iso[n] == '.') {
      ms = atoi (iso + n + 1);
   }
   tm.tm_year -= 1900;
   tm.tm_mon -= 1;
   return (int64_t) timegm (&tm) * 1000 + ms;
}

static const char *
ms_iso (int64_t ms, char *buf, size_t size)
{
   time_t t = (time_t) (ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
   struct tm tm;

   if (ms == -1) {
      bson_strncpy (buf, "-1 (none)", size);
   } else {
      gmtime_r (&t, &tm);
      strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
   }
   return buf;
}

static mt_cron_t *
parse_or_fail (const char *expr, const char *tz)
{
   bson_error_t error;
   mt_cron_t *cron = mt_cron_parse (expr, tz, &error);

   if (!cron) {
      mt_test_fail (
         __FILE__, __LINE__, "cron '%s' in '%s' does not parse: %s", expr, tz ? tz : "(null)", error.message);
   }
   return cron;
}

/* ---- zones as glibc sees them --------------------------------------------- */

static void
set_tz (const char *tz)
{
   char buf[128];

   bson_snprintf (buf, sizeof buf, ":%s", tz);
   setenv ("TZ", buf, 1);
   tzset ();
}

static long
gmtoff (int64_t s)
{
   time_t t = (time_t) s;
   struct tm tm;

   localtime_r (&t, &tm);
   return tm.tm_gmtoff;
}

/* Sets TZ to `tz` ("UTC" for NULL or ""); returns what it was, for
 * restore_tz. */
static char *
use_tz (const char *tz)
{
   char *old = getenv ("TZ") ? bson_strdup (getenv ("TZ")) : NULL;

   set_tz (tz && tz[0] ? tz : "UTC");
   return old;
}

static void
restore_tz (char *old)
{
   if (old) {
      setenv ("TZ", old, 1);
      bson_free (old);
   } else {
      unsetenv ("TZ");
   }
   tzset ();
}

/* ---- next times ---------------------------------------------------------- */

typedef struct {
   const char *expr;
   const char *tz;
   const char *after;
   const char *expected; /* NULL: none within 8 years */
} next_row_t;

static const next_row_t next_rows[] = {
   /* Every minute, steps, ranges, lists. */
   {"* * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"},
   {"* * * * *", "", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"},
   {"* * * * *", "UTC", "2026-01-01T00:00:59.999Z", "2026-01-01T00:01:00Z"},
   {"*/15 * * * *", NULL, "2026-03-10T10:07:00Z", "2026-03-10T10:15:00Z"},
   {"*/15 * * * *", NULL, "2026-03-10T10:45:00Z", "2026-03-10T11:00:00Z"},
   {"0 9-17 * * *", NULL, "2026-03-10T17:30:00Z", "2026-03-11T09:00:00Z"},
   {"5,10,50 * * * *", NULL, "2026-03-10T10:10:00Z", "2026-03-10T10:50:00Z"},
   {"10-50/20 * * * *", NULL, "2026-03-10T10:31:00Z", "2026-03-10T10:50:00Z"},
   {"7/20 * * * *", NULL, "2026-03-10T10:48:00Z", "2026-03-10T11:07:00Z"},
   {"  0\t0 * * */3 ", NULL, "2026-03-12T00:00:00Z", "2026-03-14T00:00:00Z"},

   /* Names, any case; 0 and 7 are both Sunday (2026-03-15). */
   {"0 0 * * mon-fri", NULL, "2026-03-14T12:00:00Z", "2026-03-16T00:00:00Z"},
   {"30 4 * JAN,jul *", NULL, "2026-02-01T00:00:00Z", "2026-07-01T04:30:00Z"},
   {"0 12 * * 7", NULL, "2026-03-11T00:00:00Z", "2026-03-15T12:00:00Z"},
   {"0 12 * * 0", NULL, "2026-03-11T00:00:00Z", "2026-03-15T12:00:00Z"},
   {"0 12 * * SUN", NULL, "2026-03-11T00:00:00Z", "2026-03-15T12:00:00Z"},
   {"0 8 * * 5-7", NULL, "2026-03-14T09:00:00Z", "2026-03-15T08:00:00Z"},

   /* Day of month and day of week both restricted: either one will do. */
   {"0 0 13 * 1", NULL, "2026-03-10T00:00:00Z", "2026-03-13T00:00:00Z"},
   {"0 0 13 * 1", NULL, "2026-03-13T00:00:00Z", "2026-03-16T00:00:00Z"},
   {"0 0 1-7 * fri", NULL, "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
   {"0 0 29 2 1", NULL, "2026-03-01T00:00:00Z", "2027-02-01T00:00:00Z"},
   /* One of them starts with '*': both must match (an odd Monday). */
   {"0 0 */2 * 1", NULL, "2026-03-01T00:00:00Z", "2026-03-09T00:00:00Z"},

   /* Month ends and leap days. */
   {"0 0 31 * *", NULL, "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z"},
   {"0 0 31 * *", NULL, "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"},
   {"0 0 29 2 *", NULL, "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
   {"0 0 29 2 *", NULL, "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
   /* 2100 is no leap year: eight years apart, just within the search. */
   {"0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
   {"0 0 29 2 *", "Europe/Berlin", "2096-03-01T00:00:00Z", "2104-02-28T23:00:00Z"},
   {"0 0 30 2 *", NULL, "2026-01-01T00:00:00Z", NULL},
   {"0 0 30 2 *", "Europe/Berlin", "2026-01-01T00:00:00Z", NULL},
   {"0 0 31 4,6,9,11 *", NULL, "2026-01-01T00:00:00Z", NULL},

   /* Year rollover. */
   {"59 23 31 12 *", NULL, "2026-12-31T23:58:00Z", "2026-12-31T23:59:00Z"},
   {"* * * * *", NULL, "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z"},
   {"0 0 1 1 *", NULL, "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},

   /* Macros (2026-06-15 is a Monday). */
   {"@yearly", NULL, "2026-06-15T10:00:00Z", "2027-01-01T00:00:00Z"},
   {"@annually", NULL, "2026-06-15T10:00:00Z", "2027-01-01T00:00:00Z"},
   {"@monthly", NULL, "2026-06-15T10:00:00Z", "2026-07-01T00:00:00Z"},
   {"@weekly", NULL, "2026-06-15T10:00:00Z", "2026-06-21T00:00:00Z"},
   {"@daily", NULL, "2026-06-15T10:00:00Z", "2026-06-16T00:00:00Z"},
   {" @Midnight ", NULL, "2026-06-15T10:00:00Z", "2026-06-16T00:00:00Z"},
   {"@hourly", NULL, "2026-06-15T10:00:00Z", "2026-06-15T11:00:00Z"},

   /* Europe/Berlin springs forward on 2026-03-29 at 01:00Z (02:00 CET ->
    * 03:00 CEST): 02:30 does not exist and runs at 03:30 CEST = 01:30Z;
    * 02:00 runs at 03:00 CEST = 01:00Z. */
   {"30 2 * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", "2026-03-29T01:30:00Z"},
   {"30 2 * * *", "Europe/Berlin", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"},
   {"*/30 * * * *", "Europe/Berlin", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z"},
   {"*/30 * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"},
   {"*/30 * * * *", "Europe/Berlin", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z"},
   /* It falls back on 2026-10-25 at 01:00Z (03:00 CEST -> 02:00 CET):
    * 02:00-02:59 happen twice and run the first time only. */
   {"30 2 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", "2026-10-25T00:30:00Z"},
   {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
   {"*/30 * * * *", "Europe/Berlin", "2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z"},
   {"*/30 * * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", "2026-10-25T02:00:00Z"},
   {"0 3 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-25T02:00:00Z"},
   {"0 9 * * 1-5", "Europe/Berlin", "2026-10-23T08:00:00Z", "2026-10-26T08:00:00Z"},
   /* Past 2037: the zone file's TZ rule "CET-1CEST,M3.5.0,M10.5.0/3". */
   {"30 2 * 3 sun", "Europe/Berlin", "2040-03-20T00:00:00Z", "2040-03-25T01:30:00Z"},
   {"30 2 * 10 sun", "Europe/Berlin", "2040-10-27T00:00:00Z", "2040-10-28T00:30:00Z"},
   {"0 12 1 7 *", "Europe/Berlin", "2040-01-01T00:00:00Z", "2040-07-01T10:00:00Z"},

   /* America/New_York springs forward on 2026-03-08 at 07:00Z (02:00 EST ->
    * 03:00 EDT) and falls back on 2026-11-01 at 06:00Z (02:00 EDT -> 01:00
    * EST). */
   {"30 2 * * *", "America/New_York", "2026-03-08T06:00:00Z", "2026-03-08T07:30:00Z"},
   {"0 * * * *", "America/New_York", "2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z"},
   {"0 * * * *", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"},
   {"30 1 * * *", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z"},
   {"30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
   {"*/20 * * * *", "America/New_York", "2026-11-01T05:50:00Z", "2026-11-01T07:00:00Z"},
   /* Past 2037: "EST5EDT,M3.2.0,M11.1.0". */
   {"0 12 4 7 *", "America/New_York", "2045-01-01T00:00:00Z", "2045-07-04T16:00:00Z"},
   {"0 0 * * *", "America/New_York", "2045-11-04T12:00:00Z", "2045-11-05T04:00:00Z"},
   {"0 9 * * 1-5", "America/Los_Angeles", "2026-11-01T12:00:00Z", "2026-11-02T17:00:00Z"},

   /* Other offsets: +05:30, -03:00, -10:00, -03:30/-02:30, +03:30 (its rule
    * "<+0330>-3:30" past 2037), and Lord Howe's half-hour DST. */
   {"30 9 * * *", "Asia/Kolkata", "2026-05-01T00:00:00Z", "2026-05-01T04:00:00Z"},
   {"0 0 * * *", "Asia/Kolkata", "2026-05-01T00:00:00Z", "2026-05-01T18:30:00Z"},
   {"0 0 1 * *", "America/Sao_Paulo", "2026-05-15T00:00:00Z", "2026-06-01T03:00:00Z"},
   {"0 22 31 12 *", "Pacific/Honolulu", "2026-12-31T00:00:00Z", "2027-01-01T08:00:00Z"},
   {"30 2 * * *", "America/St_Johns", "2026-03-08T00:00:00Z", "2026-03-08T06:00:00Z"},
   {"0 12 * * *", "Asia/Tehran", "2040-06-01T00:00:00Z", "2040-06-01T08:30:00Z"},
   {"15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00Z", "2026-10-03T15:45:00Z"},
   {"45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00Z", "2026-04-04T14:45:00Z"},
   {"30 2 * * *", "Australia/Sydney", "2026-04-04T12:00:00Z", "2026-04-04T15:30:00Z"},
   {"0 0 * * *", "Etc/UTC", "2026-06-15T10:00:00Z", "2026-06-16T00:00:00Z"},
};

/* The kinds of answer the table is there for, beyond the plain ones. */
enum { NONE, IN_GAP, BEFORE_FOLD, PAST_2037, KINDS };
static const char *const kind_names[] = {"no next time", "a time the clocks sprang over", "the first of a repeated time",
                                         "a time past 2037 in a zone with daylight saving time"};

static void
test_next_table (void)
{
   size_t n = sizeof next_rows / sizeof next_rows[0];
   int kinds[KINDS] = {0};

   for (size_t i = 0; i < n; i++) {
      const next_row_t *row = &next_rows[i];
      mt_cron_t *cron = parse_or_fail (row->expr, row->tz);
      int64_t expected = row->expected ? iso_ms (row->expected) : -1;
      int64_t got = mt_cron_next (cron, iso_ms (row->after));
      char a[64], b[64];

      mt_cron_destroy (cron);
      if (got == -1) {
         kinds[NONE]++;
      } else {
         /* What glibc says of the zone around the answer: it sprang
          * forward in the hour before (the answer is a skipped wall time,
          * moved on), or falls back in the hour after (the answer is the
          * first of two equal wall times), or it is past 2037 and has
          * daylight saving time (its TZ rule, not its table). */
         char *old = use_tz (row->tz);
         int64_t s = got / 1000;

         kinds[IN_GAP] += gmtoff (s) > gmtoff (s - 3600);
         kinds[BEFORE_FOLD] += gmtoff (s) > gmtoff (s + 3600);
         if (s >= iso_ms ("2038-01-01T00:00:00Z") / 1000) {
            time_t t = (time_t) s;
            struct tm tm;
            char january[32], july[32];

            gmtime_r (&t, &tm);
            bson_snprintf (january, sizeof january, "%04d-01-15T00:00:00Z", tm.tm_year + 1900);
            bson_snprintf (july, sizeof july, "%04d-07-15T00:00:00Z", tm.tm_year + 1900);
            kinds[PAST_2037] += gmtoff (iso_ms (january) / 1000) != gmtoff (iso_ms (july) / 1000);
         }
         restore_tz (old);
      }
      if (got != expected) {
         mt_test_fail (__FILE__,
                       __LINE__,
                       "row %zu: cron '%s' in %s after %s: expected %s, got %s",
                       i,
                       row->expr,
                       row->tz ? row->tz : "UTC",
                       row->after,
                       ms_iso (expected, a, sizeof a),
                       ms_iso (got, b, sizeof b));
      }
   }
   /* Each hard kind of answer came up: the table checks next() where it
    * is hard, not only where it is easy. */
   for (int k = 0; k < KINDS; k++) {
      if (kinds[k] == 0) {
         mt_test_fail (__FILE__, __LINE__, "no row of the table has an answer that is %s", kind_names[k]);
      }
   }
}

/* Repeated calls walk the schedule: through the Berlin spring gap, where
 * 02:00 and 02:30 are read as 03:00 and 03:30 and so coincide with the real
 * 03:00 and 03:30, each instant comes once. */
static void
test_next_chain (void)
{
   static const char *const expected[] = {
      "2026-03-29T00:30:00Z", /* 01:30 CET */
      "2026-03-29T01:00:00Z", /* 02:00 (skipped) = 03:00 CEST */
      "2026-03-29T01:30:00Z", /* 02:30 (skipped) = 03:30 CEST */
      "2026-03-29T02:00:00Z", /* 04:00 CEST */
   };
   mt_cron_t *cron = parse_or_fail ("0,30 * * * *", "Europe/Berlin");
   int64_t t = iso_ms ("2026-03-29T00:00:00Z");

   for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
      char a[64];

      t = mt_cron_next (cron, t);
      ASSERT_CMPSTR (ms_iso (t, a, sizeof a), expected[i]);
   }
   mt_cron_destroy (cron);
}

/* ---- errors ------------------------------------------------------------------ */

typedef struct {
   const char *expr;
   const char *tz;
   const char *fragment;
} error_row_t;

static const error_row_t error_rows[] = {
   {"61 * * * *", NULL, "cron '61 * * * *': minute '61' is out of range 0-59"},
   {"* * *", NULL, "cron '* * *': needs 5 fields (minute hour day-of-month month day-of-week), found 3"},
   {"* * * * * *", NULL, "needs 5 fields (minute hour day-of-month month day-of-week), found 6"},
   {"* * * * * 2026", NULL, "found 6"},
   {"", NULL, "cron: the expression is empty"},
   {" \t ", NULL, "cron: the expression is empty"},
   {"*/0 * * * *", NULL, "minute '*/0': the step must be at least 1"},
   {"*/61 * * * *", NULL, "minute '*/61': the step 61 is out of range 1-60"},
   {"*/ * * * *", NULL, "minute '*/': the step after '/' is missing"},
   {"*/x * * * *", NULL, "minute '*/x': the step 'x' is not a number"},
   {"5-2 * * * *", NULL, "minute '5-2': the range is reversed (5 > 2)"},
   {"* * * * sat-sun", NULL, "day-of-week 'sat-sun': the range is reversed (6 > 0)"},
   {"* 24 * * *", NULL, "hour '24' is out of range 0-23"},
   {"* * 0 * *", NULL, "day-of-month '0' is out of range 1-31"},
   {"* * 32 * *", NULL, "day-of-month '32' is out of range 1-31"},
   {"* * * 13 *", NULL, "month '13' is out of range 1-12"},
   {"* * * * 8", NULL, "day-of-week '8' is out of range 0-7"},
   {"99999999999 * * * *", NULL, "minute '99999999999' is out of range 0-59"},
   {"* * * foo *", NULL, "month 'foo' is not a number or a month name (jan-dec)"},
   {"* * * * funday", NULL, "day-of-week 'funday' is not a number or a day name (sun-sat)"},
   {"* * * * xyz", NULL, "day-of-week 'xyz' is not a number or a day name (sun-sat)"},
   {"* * * sun *", NULL, "month 'sun' is not a number or a month name (jan-dec)"},
   {"* * * * jan", NULL, "day-of-week 'jan' is not a number or a day name (sun-sat)"},
   {"L * * * *", NULL, "minute 'L' is not a number"},
   {"* * ? * *", NULL, "day-of-month '?': unexpected '?' where a value should be"},
   {"1,,2 * * * *", NULL, "minute '1,,2' has an empty element in its list"},
   {"1, * * * *", NULL, "minute '1,' has an empty element in its list"},
   {"5- * * * *", NULL, "minute '5-': a value is missing at the end"},
   {"1-2-3 * * * *", NULL, "minute '1-2-3': unexpected '-3'"},
   {"5x * * * *", NULL, "minute '5x' is not a number"},
   {"** * * * *", NULL, "minute '**': unexpected '*'"},
   {"@reboot", NULL, "cron '@reboot': @reboot means at start-up"},
   {"@every 5m", NULL, "unknown macro '@every'"},
   {"@daily x", NULL, "unexpected 'x' after the macro @daily"},
   {"* * * * *", "Mars/Olympus", "cron: unknown time zone 'Mars/Olympus'"},
   {"* * * * *", "Europe", "cron: unknown time zone 'Europe'"},
   {"* * * * *", "../../etc/passwd", "is not a zone name"},
   {"* * * * *", "/etc/localtime", "is not a zone name"},
   {"* * * * *", "Europe/Berlin ", "is not a zone name"},
   {"* * * * *", "Europe/Berlin;rm", "is not a zone name"},
};

static void
expect_error_message (const char *expr, const char *tz, const char *fragment, bson_error_t *error)
{
   mt_cron_t *cron = mt_cron_parse (expr, tz, error);

   if (cron) {
      mt_cron_destroy (cron);
      mt_test_fail (__FILE__, __LINE__, "cron '%s' in '%s' parsed; expected an error with '%s'", expr, tz, fragment);
   }
   ASSERT_ERROR (*error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, fragment);
}

static void
expect_error (const char *expr, const char *tz, const char *fragment)
{
   bson_error_t error;

   expect_error_message (expr, tz, fragment, &error);
}

/* Fails the test unless /usr/share/zoneinfo/`name` can be read. */
static void
require_zoneinfo (const char *name)
{
   char path[256];

   bson_snprintf (path, sizeof path, "/usr/share/zoneinfo/%s", name);
   if (access (path, R_OK) != 0) {
      mt_test_fail (__FILE__, __LINE__, "cannot read %s (%s); install the package tzdata (tools/setup does)", path, strerror (errno));
   }
}

static void
test_errors (void)
{
   char long_expr[300];

   /* What the refusals name: each field, the macros, the time zone. */
   static const char *const named[] = {"': minute '", "': hour '", "': day-of-month '", "': month '", "': day-of-week '", " macro ",
                                       "time zone '"};
   int naming[sizeof named / sizeof named[0]] = {0};

   for (size_t i = 0; i < sizeof error_rows / sizeof error_rows[0]; i++) {
      bson_error_t error;

      expect_error_message (error_rows[i].expr, error_rows[i].tz, error_rows[i].fragment, &error);
      for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
         naming[k] += strstr (error.message, named[k]) != NULL;
      }
   }
   /* The table refuses something in each part of an expression, and the
    * refusal names that part. */
   for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
      if (naming[k] == 0) {
         mt_test_fail (__FILE__, __LINE__, "no refusal of the table names \"%s\"", named[k]);
      }
   }
   expect_error (NULL, NULL, "cron: no expression");

   /* 256 bytes are allowed, 257 are not. */
   memset (long_expr, ' ', sizeof long_expr);
   memcpy (long_expr + 247, "* * * * *", 9);
   long_expr[256] = '\0';
   mt_cron_destroy (parse_or_fail (long_expr, NULL));
   long_expr[256] = ' ';
   long_expr[257] = '\0';
   expect_error (long_expr, NULL, "cron: the expression is longer than 256 bytes");

   /* A file in the zoneinfo directory that is not a zone, and a zone
    * counting leap seconds. Without those files these cases would test
    * nothing: fail instead (tools/setup installs tzdata). */
   require_zoneinfo ("leapseconds");
   expect_error ("* * * * *", "leapseconds", "is not a TZif file");
   require_zoneinfo ("right/UTC");
   expect_error ("* * * * *", "right/UTC", "counts leap seconds");
}

/* ---- properties ------------------------------------------------------------------ */

/* Wall-clock fields as glibc sees them. */
typedef bool (*match_fn) (const struct tm *tm);

static bool
m_quarter (const struct tm *tm)
{
   return tm->tm_min % 15 == 0;
}

static bool
m_0230 (const struct tm *tm)
{
   return tm->tm_hour == 2 && tm->tm_min == 30;
}

static bool
m_0030 (const struct tm *tm)
{
   return tm->tm_hour == 0 && tm->tm_min == 30;
}

static bool
m_leap_day (const struct tm *tm)
{
   return tm->tm_mon == 1 && tm->tm_mday == 29 && tm->tm_hour == 0 && tm->tm_min == 0;
}

static bool
m_sunday_0405 (const struct tm *tm)
{
   return tm->tm_wday == 0 && tm->tm_hour == 4 && tm->tm_min == 5;
}

static bool
m_office_hours (const struct tm *tm)
{
   return tm->tm_wday >= 1 && tm->tm_wday <= 5 && tm->tm_hour >= 9 && tm->tm_hour <= 17 && tm->tm_min == 0;
}

static bool
m_1st_15th_or_friday (const struct tm *tm)
{
   return (tm->tm_mday == 1 || tm->tm_mday == 15 || tm->tm_wday == 5) && tm->tm_hour == 0 && tm->tm_min == 0;
}

static bool
m_every_7_early (const struct tm *tm)
{
   return tm->tm_hour >= 1 && tm->tm_hour <= 3 && tm->tm_min % 7 == 0;
}

static bool
m_half_hours (const struct tm *tm)
{
   return tm->tm_min == 0 || tm->tm_min == 30;
}

typedef struct {
   const char *expr;
   const char *tz;
   match_fn match;
} property_t;

static const property_t properties[] = {
   {"*/15 * * * *", "Europe/Berlin", m_quarter},
   {"30 2 * * *", "Europe/Berlin", m_0230},
   {"0 0 29 2 *", "UTC", m_leap_day},
   {"5 4 * * sun", "America/New_York", m_sunday_0405},
   {"0 9-17 * * mon-fri", "America/New_York", m_office_hours},
   {"0 0 1,15 * 5", "Asia/Kolkata", m_1st_15th_or_friday},
   {"*/7 1-3 * * *", "Australia/Lord_Howe", m_every_7_early},
   {"0,30 * * * *", "America/St_Johns", m_half_hours},
   /* Chile changes its clocks at 24:00: 00:xx is skipped or repeated. */
   {"30 0 * * *", "America/Santiago", m_0030},
};

/* The wall clock at instant s read with offset `off`. */
static void
wall (int64_t s, long off, struct tm *tm)
{
   time_t t = (time_t) (s + off);

   gmtime_r (&t, tm);
}

/* Whether instant s (whole minutes) is on the schedule, by the rules in
 * cron.c's comment: its wall clock matches and is not the second
 * occurrence of a repeated time, or it lies just after the clocks sprang
 * forward and its wall clock read with the old offset matches. Assumes
 * zone transitions at least three hours apart. */
static bool
scheduled (const property_t *p, int64_t s, bool *shifted)
{
   long now = gmtoff (s), before = gmtoff (s - 3 * 3600);
   struct tm tm;

   *shifted = false;
   wall (s, now, &tm);
   if (p->match (&tm)) {
      /* Not when the clocks fell back less than `before - now` ago: then
       * the same wall time was shown that much earlier. */
      return !(before > now && gmtoff (s - (before - now)) == before);
   }
   if (now > before && gmtoff (s - (now - before)) == before) {
      wall (s, before, &tm);
      *shifted = p->match (&tm);
      return *shifted;
   }
   return false;
}

/* Instants where the zone's offset changes between 2000 and 2045, found
 * day by day and then to the minute. */
static size_t
find_transitions (int64_t *out, size_t max)
{
   int64_t from = iso_ms ("2000-01-01T00:00:00Z") / 1000, to = iso_ms ("2045-01-01T00:00:00Z") / 1000;
   size_t n = 0;

   for (int64_t s = from; s < to && n < max; s += 86400) {
      if (gmtoff (s) != gmtoff (s + 86400)) {
         int64_t lo = s, hi = s + 86400;

         while (hi - lo > 60) {
            int64_t mid = lo + (hi - lo) / 2;

            if (gmtoff (mid) == gmtoff (lo)) {
               lo = mid;
            } else {
               hi = mid;
            }
         }
         out[n++] = hi;
      }
   }
   return n;
}

static uint64_t
lcg (uint64_t *state)
{
   *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
   return *state >> 33;
}

#define FAIL_AT(p, format, ...) \
   mt_test_fail (__FILE__, __LINE__, "%s in %s: " format, (p)->expr, (p)->tz, __VA_ARGS__)

static void
check_property (const property_t *p, uint64_t *seed)
{
   static int64_t transitions[200];
   int64_t from = iso_ms ("2000-01-01T00:00:00Z"), span = iso_ms ("2045-01-01T00:00:00Z") - from;
   mt_cron_t *cron = parse_or_fail (p->expr, p->tz);
   size_t n_trans;
   int shifted_seen = 0;

   set_tz (p->tz);
   n_trans = find_transitions (transitions, sizeof transitions / sizeof transitions[0]);
   for (int i = 0; i < 1000; i++) {
      int64_t t, r, r2;
      bool shifted, shifted2;
      char a[64], b[64], c[64];

      /* Half of the instants within four hours of a change of offset, in
       * whole minutes or not. */
      if (n_trans && i % 2 == 0) {
         t = transitions[lcg (seed) % n_trans] * 1000 + (int64_t) (lcg (seed) % (8 * 3600 * 1000)) - 4 * 3600 * 1000;
      } else {
         t = from + (int64_t) (lcg (seed) % (uint64_t) span);
      }
      if (i % 3 == 0) {
         t -= t % 60000;
      }
      r = mt_cron_next (cron, t);
      if (r <= t || r % 60000 != 0) {
         FAIL_AT (p, "next(%s) = %s", ms_iso (t, a, sizeof a), ms_iso (r, b, sizeof b));
      }
      r2 = mt_cron_next (cron, r);
      if (r2 <= r) {
         FAIL_AT (p, "next(%s) = %s, not later", ms_iso (r, a, sizeof a), ms_iso (r2, b, sizeof b));
      }
      if (!scheduled (p, r / 1000, &shifted) || !scheduled (p, r2 / 1000, &shifted2)) {
         FAIL_AT (p,
                  "next(%s) = %s, then %s; not on the schedule",
                  ms_iso (t, a, sizeof a),
                  ms_iso (r, b, sizeof b),
                  ms_iso (r2, c, sizeof c));
      }
      shifted_seen += shifted;
      /* Nothing on the schedule in between: minute by minute, up to two days. */
      if (i < 300 && r - t <= 2 * 86400 * 1000) {
         for (int64_t s = (t / 60000 + 1) * 60; s * 1000 < r; s += 60) {
            if (scheduled (p, s, &shifted)) {
               FAIL_AT (p,
                        "next(%s) = %s skips %s",
                        ms_iso (t, a, sizeof a),
                        ms_iso (r, b, sizeof b),
                        ms_iso (s * 1000, c, sizeof c));
            }
         }
      }
   }
   printf ("# %s in %s: %zu transitions, %d gap-shifted results\n", p->expr, p->tz, n_trans, shifted_seen);
   mt_cron_destroy (cron);
}

static void
test_properties (void)
{
   uint64_t seed = 20260329;
   char *old_tz = getenv ("TZ") ? bson_strdup (getenv ("TZ")) : NULL;

   for (size_t i = 0; i < sizeof properties / sizeof properties[0]; i++) {
      check_property (&properties[i], &seed);
   }
   if (old_tz) {
      setenv ("TZ", old_tz, 1);
      bson_free (old_tz);
   } else {
      unsetenv ("TZ");
   }
   tzset ();
}

/* The slowest cases: months searched for a day that never comes. */
static void
test_worst_case_time (void)
{
   static const struct {
      const char *expr, *tz, *after;
   } cases[] = {
      {"0 0 30 2 *", NULL, "2026-01-01T00:00:00Z"},
      {"0 0 30 2 *", "Europe/Berlin", "2026-01-01T00:00:00Z"},
      {"0 0 29 2 *", "America/New_York", "2096-03-01T00:00:00Z"},
      {"59 23 31 4,6,9,11 *", "Australia/Lord_Howe", "2026-01-01T00:00:00Z"},
   };

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      mt_cron_t *cron = parse_or_fail (cases[i].expr, cases[i].tz);
      int64_t after = iso_ms (cases[i].after), start = bson_get_monotonic_time (), us;
      const int rounds = 200;

      for (int k = 0; k < rounds; k++) {
         int64_t r = mt_cron_next (cron, after + k * 60000);

         ASSERT (r == -1 || r > after);
      }
      us = (bson_get_monotonic_time () - start) / rounds;
      printf ("# '%s' in %s: %" PRId64 " us a call\n", cases[i].expr, cases[i].tz ? cases[i].tz : "UTC", us);
      ASSERT_CMPINT (us, <, 1000);
      mt_cron_destroy (cron);
   }
}

/* Out of the supported years (1 to 9999): no time rather than garbage. */
static void
test_out_of_range (void)
{
   mt_cron_t *cron = parse_or_fail ("* * * * *", "Europe/Berlin");

   ASSERT_CMPINT (mt_cron_next (cron, INT64_MAX), ==, -1);
   ASSERT_CMPINT (mt_cron_next (cron, INT64_MIN), ==, -1);
   ASSERT_CMPINT (mt_cron_next (cron, -1), ==, 0);
   ASSERT_CMPINT (mt_cron_next (cron, iso_ms ("1900-01-01T00:00:30Z")), >, iso_ms ("1900-01-01T00:00:30Z"));
   mt_cron_destroy (cron);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/cron/next/table", test_next_table);
   mt_test_add ("/cron/next/chain_through_gap", test_next_chain);
   mt_test_add ("/cron/next/out_of_range", test_out_of_range);
   mt_test_add ("/cron/parse/errors", test_errors);
   mt_test_add ("/cron/next/properties", test_properties);
   mt_test_add ("/cron/next/worst_case_time", test_worst_case_time);
   return mt_test_main (argc, argv);
}
