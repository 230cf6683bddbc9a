/* Seeds a database with what the live browser test (test-live.py) loads
 * in mtask-web: a staged group of three stages of which two are done, its
 * second stage's jobs FINISHED, FAILED (with an error) and CANCELLED, a
 * FAILED task of its own, a running task holding an account lock, a worker
 * in the registry, a pool and a synchronizer. Every text a page shows
 * (description, queue, type, status_message, params, error, worker id,
 * host, lock and pool names, synchronizer and stage names) carries hostile
 * markup. Groups go through mt_group_*, tasks through mt_enqueue; what
 * only a worker writes (a task's end, the registry) is written here as a
 * worker would.
 *
 * Usage: seed URI DB. Prints the ids the test needs as one JSON object:
 * {"group", "stage", "failed", "finished", "single", "running", "worker",
 *  "sync"}. Exit status 0, or 1 with the failure on stderr. */
#include <mtask/mtask.h>

#include "mtask-private.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Markup that would run were it ever parsed as HTML: a script, and an
 * attribute breaking out into an img with onerror. No '#' (pool names
 * refuse it), under 200 bytes. */
#define HOSTILE                                                                                                   \
   "\"><img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"                                \
   "<script>document.body.setAttribute('data-pwned','script')</script>"

/* The same for names that refuse white space and commas (queues, types). */
#define HOSTILE_NAME "\"><img/src=x/onerror=document.body.dataset.pwned=1><script>document.body.dataset.pwned=2</script>"

#define QUEUE "imports" HOSTILE_NAME
#define TYPE "echo" HOSTILE_NAME

static bson_error_t error;

#define CHECK(call)                                                                         \
   do {                                                                                     \
      if (!(call)) {                                                                        \
         fprintf (stderr, "seed: %s failed: %s\n", #call, error.message);                   \
         return 1;                                                                          \
      }                                                                                     \
   } while (0)

static int64_t
now_ms (void)
{
   return (int64_t) time (NULL) * 1000;
}

/* Ends task `id` as a worker would: `status`, started and
 * finished now, `extra` ($set fields, may be NULL); then tells its group. */
static bool
end_task (mongoc_client_t *client, const char *db, const bson_oid_t *id, const char *status, const bson_t *extra)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   bson_t update = BSON_INITIALIZER, set;
   const bson_t *doc;
   mongoc_cursor_t *cursor;
   bool ok;

   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_UTF8 (&set, "status", status);
   BSON_APPEND_DATE_TIME (&set, "started", now_ms ());
   BSON_APPEND_DATE_TIME (&set, "finished", now_ms ());
   BSON_APPEND_INT32 (&set, "attempts", 1);
   BSON_APPEND_NULL (&set, "worker_pid");
   if (extra) {
      bson_concat (&set, extra);
   }
   bson_append_document_end (&update, &set);
   ok = mongoc_collection_update_one (tasks, filter, &update, NULL, NULL, &error);
   bson_destroy (&update);
   if (ok) {
      cursor = mongoc_collection_find_with_opts (tasks, filter, NULL, NULL);
      ok = mongoc_cursor_next (cursor, &doc) && mt_group_task_ended_doc (client, db, doc, &error);
      if (!ok && !error.code) {
         bson_set_error (&error, 0, 1, "task not found after its update");
      }
      mongoc_cursor_destroy (cursor);
   }
   bson_destroy (filter);
   mongoc_collection_destroy (tasks);
   return ok;
}

static bool
insert (mongoc_client_t *client, const char *db, const char *collection, const bson_t *doc)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   bool ok = mongoc_collection_insert_one (coll, doc, NULL, NULL, &error);

   mongoc_collection_destroy (coll);
   return ok;
}

static int
seed (mongoc_client_t *client, const char *db)
{
   bson_oid_t group, s1[2], s2[3], s3, single, running, stage, sync_stage;
   bson_t *params, *extra, *worker, reply;
   bson_iter_t iter;
   char group_s[25], stage_s[25], failed_s[25], finished_s[25], single_s[25], running_s[25];
   const char *worker_id = "W-1" HOSTILE;
   bson_value_t running_v;
   mt_lock_owner_t owner;
   const char *accounts[] = {"partner-a" HOSTILE};
   char *json;

   CHECK (mt_indexes_ensure (client, db, &error));
   /* The group: stage 1 two jobs, stage 2 three, stage 3 one. */
   CHECK (mt_group_create (client, db, "Nightly import of partner files" HOSTILE, NULL, &group, &error));
   params = BCON_NEW ("file", BCON_UTF8 ("partner-a.csv" HOSTILE));
   for (int i = 0; i < 2; i++) {
      CHECK (mt_group_enqueue (client, db, &group, 1, QUEUE, TYPE, params, NULL, &s1[i], &error));
   }
   for (int i = 0; i < 3; i++) {
      CHECK (mt_group_enqueue (client, db, &group, 2, QUEUE, TYPE, params, NULL, &s2[i], &error));
   }
   CHECK (mt_group_enqueue (client, db, &group, 3, QUEUE, TYPE, params, NULL, &s3, &error));
   bson_destroy (params);
   CHECK (mt_group_initiate (client, db, &group, &error));
   /* Stage 1 done; stage 2: one FINISHED, one FAILED, one CANCELLED. */
   for (int i = 0; i < 2; i++) {
      CHECK (end_task (client, db, &s1[i], "FINISHED", NULL));
   }
   extra = BCON_NEW ("status_message", BCON_UTF8 ("imported 240 rows" HOSTILE), "result", "{", "rows", BCON_INT32 (240), "}");
   CHECK (end_task (client, db, &s2[0], "FINISHED", extra));
   bson_destroy (extra);
   extra = BCON_NEW ("error", "{", "domain", BCON_INT32 (1002), "code", BCON_INT32 (2), "message",
                     BCON_UTF8 ("partner-a.csv: line 17 has 4 columns, expected 6" HOSTILE), "}",
                     "status_message", BCON_UTF8 ("read 16 of 240 lines" HOSTILE), "max_attempts", BCON_INT32 (1),
                     "failures", BCON_INT32 (1));
   CHECK (end_task (client, db, &s2[1], "FAILED", extra));
   bson_destroy (extra);
   CHECK (end_task (client, db, &s2[2], "CANCELLED", NULL));

   CHECK (mt_admin_group (client, db, &group, NULL, &reply, &error));
   if (!bson_iter_init (&iter, &reply) || !bson_iter_find_descendant (&iter, "stages.1._id", &iter) ||
       !BSON_ITER_HOLDS_OID (&iter)) {
      fprintf (stderr, "seed: the group has no second stage\n");
      bson_destroy (&reply);
      return 1;
   }
   bson_oid_copy (bson_iter_oid (&iter), &stage);
   bson_destroy (&reply);

   /* A FAILED task of its own, with hostile params' keys and values. */
   params = BCON_NEW (HOSTILE, BCON_UTF8 (HOSTILE), "to", BCON_UTF8 ("ops@example.com"));
   CHECK (mt_enqueue (client, db, "mail" HOSTILE_NAME, "send_mail" HOSTILE_NAME, params, NULL, &single, &error));
   bson_destroy (params);
   extra = BCON_NEW ("error", "{", "domain", BCON_INT32 (1002), "code", BCON_INT32 (7), "message",
                     BCON_UTF8 ("SMTP refused the message" HOSTILE), "}");
   CHECK (end_task (client, db, &single, "FAILED", extra));
   bson_destroy (extra);

   /* A worker in the registry, running a task that holds an account lock. */
   worker = BCON_NEW ("_id", BCON_UTF8 (worker_id), "status", BCON_UTF8 ("running"), "host", BCON_UTF8 ("app1" HOSTILE),
                      "pid", BCON_INT32 (4242), "queues", "[", BCON_UTF8 (QUEUE), "]", "concurrency", BCON_INT32 (2),
                      "lease_seconds", BCON_INT32 (3600), "heartbeat", BCON_DATE_TIME (now_ms ()));
   CHECK (insert (client, db, "workers", worker));
   bson_destroy (worker);
   params = BCON_NEW ("report", BCON_UTF8 ("monthly" HOSTILE));
   CHECK (mt_enqueue (client, db, "reports" HOSTILE_NAME, "build_report" HOSTILE_NAME, params, NULL, &running, &error));
   bson_destroy (params);
   {
      mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, "tasks");
      bson_t *filter = BCON_NEW ("_id", BCON_OID (&running));
      bson_t *update = BCON_NEW ("$set", "{", "status", BCON_UTF8 ("WORK_IN_PROGRESS"), "worker_pid", BCON_UTF8 (worker_id),
                                 "attempts", BCON_INT32 (1), "started", BCON_DATE_TIME (now_ms () - 5000),
                                 "status_message", BCON_UTF8 ("page 3 of 9" HOSTILE), "}");
      bool ok = mongoc_collection_update_one (tasks, filter, update, NULL, NULL, &error);

      bson_destroy (filter);
      bson_destroy (update);
      mongoc_collection_destroy (tasks);
      CHECK (ok);
   }
   running_v.value_type = BSON_TYPE_OID;
   bson_oid_copy (&running, &running_v.value.v_oid);
   owner.task_id = &running_v;
   owner.worker_id = worker_id;
   owner.attempt = 1;
   CHECK (mt_locks_acquire (client, db, &owner, accounts, 1, NULL, &error));

   CHECK (mt_pool_set (client, db, "pdf" HOSTILE, 2, 300, &error));
   CHECK (mt_sync_stage_create (client, db, "fetch_files" HOSTILE, "fetch" HOSTILE_NAME, QUEUE, NULL, NULL, NULL, &sync_stage,
                                &error));
   CHECK (mt_sync_create (client, db, "nightly" HOSTILE, &sync_stage, &error));

   bson_oid_to_string (&group, group_s);
   bson_oid_to_string (&stage, stage_s);
   bson_oid_to_string (&s2[1], failed_s);
   bson_oid_to_string (&s2[0], finished_s);
   bson_oid_to_string (&single, single_s);
   bson_oid_to_string (&running, running_s);
   {
      bson_t *out = BCON_NEW ("group", BCON_UTF8 (group_s), "stage", BCON_UTF8 (stage_s), "failed", BCON_UTF8 (failed_s),
                              "finished", BCON_UTF8 (finished_s), "single", BCON_UTF8 (single_s), "running",
                              BCON_UTF8 (running_s), "worker", BCON_UTF8 (worker_id), "sync",
                              BCON_UTF8 ("nightly" HOSTILE));

      json = bson_as_relaxed_extended_json (out, NULL);
      printf ("%s\n", json);
      bson_free (json);
      bson_destroy (out);
   }
   return 0;
}

int
main (int argc, char **argv)
{
   mongoc_uri_t *uri;
   mongoc_client_t *client;
   int rc;

   if (argc != 3) {
      fprintf (stderr, "usage: seed URI DB\n");
      return 2;
   }
   mongoc_init ();
   uri = mongoc_uri_new_with_error (argv[1], &error);
   if (!uri) {
      fprintf (stderr, "seed: %s: %s\n", argv[1], error.message);
      mongoc_cleanup ();
      return 1;
   }
   client = mongoc_client_new_from_uri (uri);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   rc = seed (client, argv[2]);
   mongoc_client_destroy (client);
   mongoc_uri_destroy (uri);
   mongoc_cleanup ();
   return rc;
}
