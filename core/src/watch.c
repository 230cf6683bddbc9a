/* The watch on `tasks`: a change stream of the events that may
 * make a task of the worker's queues due, so that an idle worker claims at
 * once instead of at its next poll; and the earliest `delayed` ahead, for
 * the timer that claims a delayed task when its time comes.
 *
 * What the stream matches, on MongoDB 4.2 and later (no post-image lookup,
 * so an event costs the server nothing beyond the oplog read):
 * - inserts and replacements of a CREATED task of the worker's queues and
 *   types (their `fullDocument` is the document);
 * - updates that set `status` to CREATED (a retry, a give-back, a stage
 *   that starts), or that set or remove `delayed`: their queue is not in
 *   the event (only the fields the update changed are), so a worker may
 *   claim for an update of another queue's task and find nothing, which
 *   costs one claim.
 * Events are majority committed: the claim that follows an event sees the
 * task. A resumable error (a failover, a lost connection) is resumed by
 * the driver itself from the last event's resume token; what it cannot
 * resume ends the stream with an error, and the caller polls (events may
 * have been missed) and watches again later.
 *
 * The development database (docs/devdb.md) differs: it leaves
 * `updateDescription` out of update events and puts the fields the update
 * set or unset in `fullDocument` instead. One more clause of the $match,
 * for update events without `updateDescription`, reads those; on MongoDB
 * every update event has `updateDescription` and none has a `fullDocument`
 * without a lookup, so the clause never matches there. Nothing depends on
 * it: the safety-net claim finds what no event announced. */
#include "mtask-private.h"

#include <string.h>

static void
append_in (bson_t *doc, const char *field, const bson_t *values)
{
   bson_t child;

   BSON_APPEND_DOCUMENT_BEGIN (doc, field, &child);
   BSON_APPEND_ARRAY (&child, "$in", values);
   bson_append_document_end (doc, &child);
}

static void
append_exists (bson_t *doc, const char *field)
{
   bson_t child;

   BSON_APPEND_DOCUMENT_BEGIN (doc, field, &child);
   BSON_APPEND_BOOL (&child, "$exists", true);
   bson_append_document_end (doc, &child);
}

void
mt_watch_pipeline (const bson_t *queues, const bson_t *types, bson_t *pipeline)
{
   bson_t stage, match, or, clause, ops, project;
   const char *updated[] = {"updateDescription.updatedFields.status", "updateDescription.updatedFields.delayed", NULL};

   bson_init (pipeline);
   BSON_APPEND_DOCUMENT_BEGIN (pipeline, "0", &stage);
   BSON_APPEND_DOCUMENT_BEGIN (&stage, "$match", &match);
   BSON_APPEND_ARRAY_BEGIN (&match, "$or", &or);

   /* A new task, or one replaced whole. */
   BSON_APPEND_DOCUMENT_BEGIN (&or, "0", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "operationType", &ops);
   BSON_APPEND_ARRAY_BEGIN (&ops, "$in", &project);
   BSON_APPEND_UTF8 (&project, "0", "insert");
   BSON_APPEND_UTF8 (&project, "1", "replace");
   bson_append_array_end (&ops, &project);
   bson_append_document_end (&clause, &ops);
   BSON_APPEND_UTF8 (&clause, "fullDocument.status", MT_STATUS_CREATED);
   append_in (&clause, "fullDocument.queue", queues);
   append_in (&clause, "fullDocument.type", types);
   bson_append_document_end (&or, &clause);

   /* An update that sets it CREATED, or moves its `delayed`. */
   BSON_APPEND_DOCUMENT_BEGIN (&or, "1", &clause);
   BSON_APPEND_UTF8 (&clause, "operationType", "update");
   BSON_APPEND_UTF8 (&clause, updated[0], MT_STATUS_CREATED);
   bson_append_document_end (&or, &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&or, "2", &clause);
   BSON_APPEND_UTF8 (&clause, "operationType", "update");
   append_exists (&clause, updated[1]);
   bson_append_document_end (&or, &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&or, "3", &clause);
   BSON_APPEND_UTF8 (&clause, "operationType", "update");
   BSON_APPEND_UTF8 (&clause, "updateDescription.removedFields", "delayed");
   bson_append_document_end (&or, &clause);

   /* The development database's update events (see above). */
   BSON_APPEND_DOCUMENT_BEGIN (&or, "4", &clause);
   BSON_APPEND_UTF8 (&clause, "operationType", "update");
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "updateDescription", &ops);
   BSON_APPEND_BOOL (&ops, "$exists", false);
   bson_append_document_end (&clause, &ops);
   BSON_APPEND_ARRAY_BEGIN (&clause, "$or", &ops);
   BSON_APPEND_DOCUMENT_BEGIN (&ops, "0", &project);
   BSON_APPEND_UTF8 (&project, "fullDocument.status", MT_STATUS_CREATED);
   bson_append_document_end (&ops, &project);
   BSON_APPEND_DOCUMENT_BEGIN (&ops, "1", &project);
   append_exists (&project, "fullDocument.delayed");
   bson_append_document_end (&ops, &project);
   bson_append_array_end (&clause, &ops);
   bson_append_document_end (&or, &clause);

   bson_append_array_end (&match, &or);
   bson_append_document_end (&stage, &match);
   bson_append_document_end (pipeline, &stage);

   /* Only what the worker reads of an event (and its _id, the resume
    * token, which a change stream must keep). */
   BSON_APPEND_DOCUMENT_BEGIN (pipeline, "1", &stage);
   BSON_APPEND_DOCUMENT_BEGIN (&stage, "$project", &project);
   BSON_APPEND_INT32 (&project, "operationType", 1);
   BSON_APPEND_INT32 (&project, "fullDocument.delayed", 1);
   BSON_APPEND_INT32 (&project, "updateDescription.updatedFields.delayed", 1);
   bson_append_document_end (&stage, &project);
   bson_append_document_end (pipeline, &stage);
}

mongoc_change_stream_t *
mt_watch_open (mongoc_collection_t *tasks, const bson_t *queues, const bson_t *types, int64_t await_ms, bson_error_t *error)
{
   bson_t pipeline;
   bson_t *opts = BCON_NEW ("maxAwaitTimeMS", BCON_INT64 (await_ms));
   mongoc_change_stream_t *stream;
   const bson_t *reply = NULL;

   mt_watch_pipeline (queues, types, &pipeline);
   stream = mongoc_collection_watch (tasks, &pipeline, opts);
   bson_destroy (&pipeline);
   bson_destroy (opts);
   if (mongoc_change_stream_error_document (stream, error, &reply)) {
      mongoc_change_stream_destroy (stream);
      return NULL;
   }
   return stream;
}

/* The `delayed` an event carries, as a date: *ms gets it, 0 when the
 * event has none (a task due now). */
static void
event_delayed (const bson_t *event, int64_t *ms)
{
   const char *paths[] = {"fullDocument.delayed", "updateDescription.updatedFields.delayed", NULL};
   bson_iter_t iter;

   *ms = 0;
   for (size_t i = 0; paths[i]; i++) {
      if (bson_iter_init (&iter, event) && bson_iter_find_descendant (&iter, paths[i], &iter) &&
          BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         *ms = bson_iter_date_time (&iter);
         return;
      }
   }
}

int
mt_watch_next (mongoc_change_stream_t *stream, int64_t *delayed_ms, bson_error_t *error)
{
   const bson_t *event = NULL;
   const bson_t *reply = NULL;

   *delayed_ms = 0;
   if (mongoc_change_stream_next (stream, &event)) {
      event_delayed (event, delayed_ms);
      return 1;
   }
   if (mongoc_change_stream_error_document (stream, error, &reply)) {
      return -1;
   }
   return 0;
}

bool
mt_watch_unsupported (const bson_error_t *error)
{
   /* 40573: "The $changeStream stage is only supported on replica sets";
    * 40324 and 9: a server too old to know the stage at all. */
   return error->code == 40573 || error->code == 40324;
}

bool
mt_watch_next_delayed (mongoc_collection_t *tasks,
                       const bson_t *queues,
                       const bson_t *types,
                       int64_t now_ms,
                       int64_t *when_ms,
                       bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, cmp, doc;
   bson_t *opts = BCON_NEW ("sort", "{", "delayed", BCON_INT32 (1), "}", "projection", "{", "delayed", BCON_INT32 (1), "}");
   bson_iter_t iter;
   bool found = false, ok;

   *when_ms = 0;
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_CREATED);
   append_in (&filter, "queue", queues);
   append_in (&filter, "type", types);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "delayed", &cmp);
   BSON_APPEND_DATE_TIME (&cmp, "$gt", now_ms);
   bson_append_document_end (&filter, &cmp);
   ok = mt_find_one (tasks, &filter, opts, &doc, &found, error);
   if (ok && found && bson_iter_init_find (&iter, &doc, "delayed") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      *when_ms = bson_iter_date_time (&iter);
   }
   bson_destroy (&doc);
   bson_destroy (opts);
   bson_destroy (&filter);
   return ok;
}
