/* Task document parsing: what a claimed document must hold. */
#include "mt-test.h"
#include "mtask-private.h"

static void
expect_malformed (const char *json, const char *fragment)
{
   bson_t *doc = mt_test_bson (json);
   mt_task_doc_t task;
   bson_error_t error;

   ASSERT (!mt_task_doc_parse (doc, &task, &error));
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_TASK);
   ASSERT_CMPINT (error.code, ==, MT_TASK_ERROR_MALFORMED);
   ASSERT_CONTAINS (error.message, fragment);
   bson_destroy (doc);
}

static void
test_valid_full (void)
{
   bson_t *doc = mt_test_bson ("{'_id': {'$oid': '0123456789abcdef01234567'}, 'queue': 'general', 'type': 'echo',"
                               " 'params': {'a': 1}, 'delayed': null, 'attempts': 2, 'worker_pid': 'W-1'}");
   mt_task_doc_t task;
   bson_error_t error;

   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   ASSERT_CMPSTR (task.id_str, "0123456789abcdef01234567");
   ASSERT_CMPSTR (task.queue, "general");
   ASSERT_CMPSTR (task.type, "echo");
   ASSERT_CMPINT (task.attempts, ==, 2);
   ASSERT_CMPSTR (task.worker_pid, "W-1");
   ASSERT_CMPINT (mt_test_int (&task.params, "a"), ==, 1);
   bson_destroy (doc);
}

static void
test_valid_minimal (void)
{
   /* What another client may insert: no params, attempts or delayed. */
   bson_t *doc = mt_test_bson ("{'_id': 'job-7', 'queue': 'q', 'type': 'echo'}");
   mt_task_doc_t task;
   bson_error_t error;

   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   ASSERT_CMPSTR (task.id_str, "job-7");
   ASSERT_CMPINT (bson_count_keys (&task.params), ==, 0);
   ASSERT_CMPINT (task.attempts, ==, 0);
   ASSERT (task.worker_pid == NULL);
   bson_destroy (doc);
}

static void
test_delayed_date (void)
{
   bson_t *doc = mt_test_bson ("{'_id': 1, 'queue': 'q', 'type': 't', 'delayed': {'$date': 0}, 'params': null}");
   mt_task_doc_t task;
   bson_error_t error;

   ASSERT_OR_PRINT (mt_task_doc_parse (doc, &task, &error), error);
   ASSERT_CMPSTR (task.id_str, "1");
   bson_destroy (doc);
}

static void
test_malformed_each_field (void)
{
   expect_malformed ("{'queue': 'q', 'type': 't'}", "'_id' is required");
   expect_malformed ("{'_id': 1, 'type': 't'}", "field 'queue' is required");
   expect_malformed ("{'_id': 1, 'queue': 'q'}", "field 'type' is required");
   expect_malformed ("{'_id': 1, 'queue': 'q', 'type': 5}", "field 'type' must be a string naming a task type, found int32");
   expect_malformed ("{'_id': 1, 'queue': 'q', 'type': ''}", "field 'type' must not be empty");
   expect_malformed ("{'_id': 1, 'queue': 'q', 'type': 't', 'params': 'x'}", "field 'params' must be a document, found string");
   expect_malformed ("{'_id': 1, 'queue': 'q', 'type': 't', 'params': [1]}", "field 'params' must be a document, found array");
   expect_malformed ("{'_id': 1, 'queue': 'q', 'type': 't', 'delayed': 'tomorrow'}", "field 'delayed' must be a date or null, found string");
   expect_malformed ("{'_id': 1, 'queue': 'q', 'type': 't', 'attempts': 'x'}", "field 'attempts' must be a number, found string");
}

static void
test_malformed_keeps_id (void)
{
   bson_t *doc = mt_test_bson ("{'_id': {'$oid': '0123456789abcdef01234567'}, 'queue': 'q', 'type': 7}");
   mt_task_doc_t task;
   bson_error_t error;

   ASSERT (!mt_task_doc_parse (doc, &task, &error));
   ASSERT_CMPINT (task.id.value_type, ==, BSON_TYPE_OID);
   ASSERT_CMPSTR (task.id_str, "0123456789abcdef01234567");
   bson_destroy (doc);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/task/parse/valid_full", test_valid_full);
   mt_test_add ("/task/parse/valid_minimal", test_valid_minimal);
   mt_test_add ("/task/parse/delayed_date", test_delayed_date);
   mt_test_add ("/task/parse/malformed_each_field", test_malformed_each_field);
   mt_test_add ("/task/parse/malformed_keeps_id", test_malformed_keeps_id);
   return mt_test_main (argc, argv);
}
