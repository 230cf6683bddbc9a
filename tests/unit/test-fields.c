/* The task fields beyond the core ones (pool, repeat, cron, timezone,
 * repeat_until, series, unique_key): what mt_task_doc_parse takes from a
 * well-formed document, and that a mistyped or bad value fails it as
 * malformed with the field named, whoever inserted the document. */
#include "mt-test.h"
#include "mtask-private.h"

#define BASE "'_id': 1, 'queue': 'q', 'type': 't'"

static void
expect_malformed (const char *json, const char *fragment)
{
   bson_t *doc = mt_test_bson (json);
   mt_task_doc_t task;
   bson_error_t error;

   if (mt_task_doc_parse (doc, &task, &error)) {
      mt_test_fail (__FILE__, __LINE__, "accepted: %s", json);
   }
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_TASK);
   ASSERT_CMPINT (error.code, ==, MT_TASK_ERROR_MALFORMED);
   ASSERT_CONTAINS (error.message, fragment);
   /* The worker marks that very document FAILED: it still knows which. */
   ASSERT_CMPSTR (task.id_str, "1");
   bson_destroy (doc);
}

static void
test_valid (void)
{
   bson_t *doc = mt_test_bson ("{" BASE ", 'pool': 'reports', 'cron': '30 */1 * * *', 'timezone': 'Asia/Kolkata',"
                               " 'repeat_until': {'$date': 4102444800000}, 'scheduled': {'$date': 1700000000000},"
                               " 'series': {'$oid': '0123456789abcdef01234567'}, 'unique_key': 'nightly'}");
   mt_task_doc_t task;
   bson_error_t error;
   char hex[25];

   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   ASSERT_CMPSTR (task.pool, "reports");
   ASSERT_CMPSTR (task.cron, "30 */1 * * *");
   ASSERT_CMPSTR (task.timezone, "Asia/Kolkata");
   ASSERT_CMPINT (task.repeat_until, ==, 4102444800000);
   ASSERT_CMPINT (task.scheduled, ==, 1700000000000);
   ASSERT (task.has_series);
   bson_oid_to_string (&task.series, hex);
   ASSERT_CMPSTR (hex, "0123456789abcdef01234567");
   ASSERT_CMPSTR (task.unique_key, "nightly");
   ASSERT (task.repeat == 0);
   bson_destroy (doc);

   doc = mt_test_bson ("{" BASE ", 'repeat': 2.5}");
   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   ASSERT (task.repeat == 2.5);
   ASSERT (!task.cron && !task.timezone && !task.pool && !task.unique_key && !task.has_series);
   bson_destroy (doc);
}

static void
test_null_is_absent (void)
{
   /* Another client may write null for "none"; that is not a mistake. */
   bson_t *doc = mt_test_bson ("{" BASE ", 'pool': null, 'repeat': null, 'cron': null, 'timezone': null,"
                               " 'repeat_until': null, 'series': null, 'unique_key': null}");
   mt_task_doc_t task;
   bson_error_t error;

   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   ASSERT (!task.pool && !task.cron && !task.timezone && !task.unique_key && !task.has_series);
   ASSERT (task.repeat == 0 && task.repeat_until == 0);
   bson_destroy (doc);
}

static void
test_pool (void)
{
   expect_malformed ("{" BASE ", 'pool': 7}", "field 'pool' must be the name of a slot pool, found int32");
   expect_malformed ("{" BASE ", 'pool': ['a']}", "field 'pool' must be the name of a slot pool, found array");
   expect_malformed ("{" BASE ", 'pool': ''}", "field 'pool' must be the name of a slot pool, found string");
}

static void
test_repeat (void)
{
   expect_malformed ("{" BASE ", 'repeat': '60'}", "field 'repeat' must be a number of seconds, 1 or more, found string");
   expect_malformed ("{" BASE ", 'repeat': 0}", "field 'repeat' must be a number of seconds, 1 or more, found int32");
   expect_malformed ("{" BASE ", 'repeat': -5.0}", "field 'repeat' must be a number of seconds, 1 or more, found double");
   expect_malformed ("{" BASE ", 'repeat': true}", "field 'repeat' must be a number of seconds, 1 or more, found bool");
   expect_malformed ("{" BASE ", 'repeat': 60, 'cron': '* * * * *'}", "it repeats by 'repeat' or by 'cron', not both");
}

static void
test_cron (void)
{
   expect_malformed ("{" BASE ", 'cron': 5}", "field 'cron' must be a cron expression (a string), found int32");
   expect_malformed ("{" BASE ", 'cron': {'minute': 5}}", "field 'cron' must be a cron expression (a string), found document");
   expect_malformed ("{" BASE ", 'cron': 'every day'}", "field 'cron'");
   expect_malformed ("{" BASE ", 'cron': '61 * * * *'}", "field 'cron': cron '61 * * * *': minute '61' is out of range 0-59");
}

static void
test_timezone (void)
{
   expect_malformed ("{" BASE ", 'cron': '0 3 * * *', 'timezone': 330}", "field 'timezone' must be the name of a time zone, found int32");
   expect_malformed ("{" BASE ", 'timezone': true}", "field 'timezone' must be the name of a time zone, found bool");
   /* A string that names no zone is the zone's fault, not the cron's. */
   expect_malformed ("{" BASE ", 'cron': '0 3 * * *', 'timezone': 'Mars/Olympus'}", "field 'timezone': unknown time zone 'Mars/Olympus'");
   expect_malformed ("{" BASE ", 'cron': '0 3 * * *', 'timezone': '../../etc/passwd'}", "field 'timezone': time zone '../../etc/passwd' is not a zone name");
}

static void
test_repeat_until (void)
{
   expect_malformed ("{" BASE ", 'repeat': 60, 'repeat_until': '2030-01-01'}", "field 'repeat_until' must be a date, found string");
   expect_malformed ("{" BASE ", 'repeat': 60, 'repeat_until': 1893456000000}", "field 'repeat_until' must be a date, found int64");
}

static void
test_series (void)
{
   expect_malformed ("{" BASE ", 'repeat': 60, 'series': '0123456789abcdef01234567'}", "field 'series' must be an ObjectId, found string");
   expect_malformed ("{" BASE ", 'series': 12}", "field 'series' must be an ObjectId, found int32");
}

static void
test_unique_key (void)
{
   expect_malformed ("{" BASE ", 'unique_key': 12}", "field 'unique_key' must be a non-empty string, found int32");
   expect_malformed ("{" BASE ", 'unique_key': ''}", "field 'unique_key' must be a non-empty string, found string");
   expect_malformed ("{" BASE ", 'unique_key': {'k': 1}}", "field 'unique_key' must be a non-empty string, found document");
}

int
main (int argc, char **argv)
{
   mt_test_add ("/fields/parse/valid", test_valid);
   mt_test_add ("/fields/parse/null_is_absent", test_null_is_absent);
   mt_test_add ("/fields/malformed/pool", test_pool);
   mt_test_add ("/fields/malformed/repeat", test_repeat);
   mt_test_add ("/fields/malformed/cron", test_cron);
   mt_test_add ("/fields/malformed/timezone", test_timezone);
   mt_test_add ("/fields/malformed/repeat_until", test_repeat_until);
   mt_test_add ("/fields/malformed/series", test_series);
   mt_test_add ("/fields/malformed/unique_key", test_unique_key);
   return mt_test_main (argc, argv);
}
