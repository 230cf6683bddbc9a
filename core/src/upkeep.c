/* The upkeep tick: the periodic work of every feature, done by one worker
 * of all per interval (lease/3). Each worker's upkeep thread calls
 * mt_upkeep_tick; the one that moves the `ticks` document forward does the
 * work. A new feature with periodic work adds its part here.
 *
 * The work of one tick is bounded by time: once past its deadline no new
 * part begins (and the long parts stop between two items). Each tick
 * begins with another part, in turn, so a part that always runs long
 * delays the others by a tick at most, never for good. */
#include "worker-private.h"

/* Whether this worker has the upkeep tick: one worker of all wins each
 * interval, by moving the `ticks` document's time forward conditionally
 * (an upsert whose insert loses to the unique _id when another won). */
static bool
win_tick (mt_context_t *ctx, mongoc_client_t *client, int64_t interval_ms, bool *won, bson_error_t *error)
{
   mongoc_collection_t *ticks = mongoc_client_get_collection (client, ctx->db, "ticks");
   int64_t now = mt_server_now (ctx);
   bson_t *filter = BCON_NEW ("_id", "upkeep", "at", "{", "$lt", BCON_DATE_TIME (now - interval_ms + 50), "}");
   bson_t *update = BCON_NEW ("$set", "{", "at", BCON_DATE_TIME (now), "by", ctx->worker_id, "}", "$inc", "{", "tick", BCON_INT64 (1), "}");
   bson_t *opts = BCON_NEW ("upsert", BCON_BOOL (true));
   bson_t reply;
   bson_iter_t iter;
   bool ok;

   ok = mongoc_collection_update_one (ticks, filter, update, opts, &reply, error);
   *won = ok && ((bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1) ||
                 (bson_iter_init_find (&iter, &reply, "upsertedCount") && bson_iter_as_int64 (&iter) == 1));
   if (!ok && error->code == 11000) {
      ok = true; /* another worker has this tick */
   }
   bson_destroy (&reply);
   bson_destroy (filter);
   bson_destroy (update);
   bson_destroy (opts);
   mongoc_collection_destroy (ticks);
   return ok;
}

/* Records on the `ticks` document when the tick this worker won ended
 * ({_id: "upkeep", at, by, tick, ended}), for whoever watches the upkeep
 * (how long a tick takes, whether the last one finished). */
static bool
end_tick (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   mongoc_collection_t *ticks = mongoc_client_get_collection (client, ctx->db, "ticks");
   bson_t *mine = BCON_NEW ("_id", "upkeep", "by", ctx->worker_id);
   bson_t *ended = BCON_NEW ("$set", "{", "ended", BCON_DATE_TIME (mt_server_now (ctx)), "}");
   bool ok = mongoc_collection_update_one (ticks, mine, ended, NULL, NULL, error);

   bson_destroy (mine);
   bson_destroy (ended);
   mongoc_collection_destroy (ticks);
   return ok;
}

/* The queues live workers serve, from their registry documents: what the
 * malformed-document sweep looks at (a queue nobody serves is left as its
 * writer left it). Initializes `queues`. */
static bool
served_queues (mt_context_t *ctx, mongoc_client_t *client, bson_t *queues, bson_error_t *error)
{
   mongoc_collection_t *workers = mongoc_client_get_collection (client, ctx->db, MT_WORKERS_COLLECTION);
   bson_t *running = BCON_NEW ("status", "running");
   bson_t *opts = BCON_NEW ("projection", "{", "queues", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (workers, running, opts, NULL);
   const bson_t *doc;
   char **names = NULL;
   size_t n = 0;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter, item;

      if (!bson_iter_init_find (&iter, doc, "queues") || !BSON_ITER_HOLDS_ARRAY (&iter) || !bson_iter_recurse (&iter, &item)) {
         continue;
      }
      while (bson_iter_next (&item)) {
         if (BSON_ITER_HOLDS_UTF8 (&item) && !(names && mt_strv_contains (names, bson_iter_utf8 (&item, NULL)))) {
            names = bson_realloc (names, (n + 2) * sizeof *names);
            names[n++] = bson_strdup (bson_iter_utf8 (&item, NULL));
            names[n] = NULL;
         }
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mt_strv_to_array (names, queues);
   mt_strv_free (names);
   bson_destroy (running);
   bson_destroy (opts);
   mongoc_collection_destroy (workers);
   return ok;
}

/* The malformed-document sweep of the queues live workers serve: its query
 * is served by no index, so one worker of all runs it, once a tick. */
static bool
sweep_malformed (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   mongoc_collection_t *tasks;
   bson_t queues;
   int64_t marked = 0;

   if (!served_queues (ctx, client, &queues, error)) {
      bson_destroy (&queues);
      return false;
   }
   if (!bson_empty (&queues)) {
      tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
      marked = mt_store_sweep (tasks, &queues, error);
      if (marked > 0) {
         mt_log (ctx, MT_LOG_WARNING, "marked %" PRId64 " malformed task(s) FAILED", marked);
      }
      mongoc_collection_destroy (tasks);
   }
   bson_destroy (&queues);
   return marked >= 0;
}

/* The parts of a tick after the synchronizers, in the order of the first
 * tick. The synchronizers come first each time: they are few, and each
 * check says itself what it could not do (the tick goes on). */
#define MT_UPKEEP_PARTS 4

static bool
run_part (mt_context_t *ctx, mongoc_client_t *client, int part, int64_t deadline_us, bson_error_t *error)
{
   switch (part) {
   case 0:
      return mt_groups_upkeep_until (client, ctx->db, mt_server_now (ctx), deadline_us, error);
   case 1:
      return mt_slots_upkeep_until (ctx, client, deadline_us, error);
   case 2:
      return mt_schedule_upkeep_until (ctx, client, deadline_us, error);
   default:
      return sweep_malformed (ctx, client, error);
   }
}

bool
mt_upkeep_tick (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   return mt_upkeep_tick_until (ctx, client, 0, error);
}

bool
mt_upkeep_tick_until (mt_context_t *ctx, mongoc_client_t *client, int64_t deadline_us, bson_error_t *error)
{
   int64_t interval_ms = BSON_MAX (200, ctx->lease_ms / 3);
   bson_error_t why;
   bool won, ok;
   int first;

   if (!win_tick (ctx, client, interval_ms, &won, error)) {
      return false;
   }
   if (!won) {
      return true;
   }
   mt_failpoint_pause ("upkeep-tick");
   ok = mt_sync_upkeep (ctx, client, error);
   /* The part that begins: the next one each interval, whoever wins it. */
   first = (int) ((mt_server_now (ctx) / interval_ms) % MT_UPKEEP_PARTS);
   for (int i = 0; i < MT_UPKEEP_PARTS; i++) {
      if (i > 0 && mt_deadline_passed (deadline_us)) {
         break;
      }
      /* One part failing does not keep the others from their work; the
       * first failure is what the tick reports. */
      if (!run_part (ctx, client, (first + i) % MT_UPKEEP_PARTS, deadline_us, &why)) {
         if (ok) {
            *error = why;
         }
         ok = false;
         if (mt_error_is_transient (&why, NULL)) {
            break; /* the database is away or failing over: the next tick tries again */
         }
      }
   }
   if (!end_tick (ctx, client, &why) && ok) {
      *error = why;
      ok = false;
   }
   return ok;
}
