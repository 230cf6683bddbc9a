/* The upkeep tick: the periodic work of every feature, done by one worker
 * of all per interval (lease/3). Each worker's heartbeat thread calls
 * mt_upkeep_tick; the one that moves the `ticks` document forward does the
 * work. A new feature with periodic work adds its call here. */
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

bool
mt_upkeep_tick (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   bool won;

   if (!win_tick (ctx, client, BSON_MAX (200, ctx->lease_ms / 3), &won, error)) {
      return false;
   }
   if (!won) {
      return true;
   }
   return mt_groups_upkeep (client, ctx->db, mt_server_now (ctx), error) && mt_sync_upkeep (ctx, client, error) &&
          mt_slots_upkeep (ctx, client, error) && mt_schedule_upkeep (ctx, client, error);
}
