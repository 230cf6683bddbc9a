/* The retry policy: how many attempts a task gets, how long it waits
 * between them, and which errors are worth trying again. */
#include "context-private.h"

#include <stdlib.h>
#include <string.h>

void
mt_retry_set_budget (mt_context_t *ctx, const char *type, int32_t max_attempts)
{
   ctx->budget_types = bson_realloc (ctx->budget_types, (ctx->n_budgets + 1) * sizeof *ctx->budget_types);
   ctx->budget_max = bson_realloc (ctx->budget_max, (ctx->n_budgets + 1) * sizeof *ctx->budget_max);
   ctx->budget_types[ctx->n_budgets] = bson_strdup (type);
   ctx->budget_max[ctx->n_budgets] = max_attempts;
   ctx->n_budgets++;
}

int32_t
mt_retry_max_attempts (const mt_context_t *ctx, const char *type, int32_t task_max)
{
   if (task_max > 0) {
      return task_max;
   }
   for (size_t i = 0; type && i < ctx->n_budgets; i++) {
      if (!strcmp (ctx->budget_types[i], type)) {
         return ctx->budget_max[i];
      }
   }
   return ctx->max_attempts;
}

int64_t
mt_retry_backoff_ms (const mt_context_t *ctx, int32_t attempt)
{
   double ms = (double) ctx->retry_backoff_ms;

   for (int32_t i = 1; i < attempt && ms < 3600e3; i++) {
      ms *= 2;
   }
   ms = BSON_MIN (ms, 3600e3);
   /* +-25 %, so that tasks failing together do not retry together. */
   return (int64_t) (ms * (0.75 + (double) (rand () % 501) / 1000.0));
}

bool
mt_error_is_network (const bson_error_t *error)
{
   return error->domain == MONGOC_ERROR_STREAM || error->domain == MONGOC_ERROR_SERVER_SELECTION;
}

/* The server's codes for "not now, try again": a primary stepping down or
 * shutting down, an election, a host or socket that failed on the way, a
 * shard's routing table out of date. The retryable-writes and
 * retryable-reads lists of MongoDB's driver specifications, plus the
 * sharding ones mongos itself retries. */
static bool
transient_code (uint32_t code)
{
   static const uint32_t codes[] = {
      6,     /* HostUnreachable */
      7,     /* HostNotFound */
      63,    /* StaleShardVersion */
      89,    /* NetworkTimeout */
      91,    /* ShutdownInProgress */
      134,   /* ReadConcernMajorityNotAvailableYet */
      150,   /* StaleEpoch */
      189,   /* PrimarySteppedDown */
      234,   /* RetryChangeStream */
      262,   /* ExceededTimeLimit */
      9001,  /* SocketException */
      10058, /* LegacyNotPrimary */
      10107, /* NotWritablePrimary */
      11600, /* InterruptedAtShutdown */
      11602, /* InterruptedDueToReplStateChange */
      13388, /* StaleConfig */
      13435, /* NotPrimaryNoSecondaryOk */
      13436, /* NotPrimaryOrSecondary */
   };

   for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
      if (codes[i] == code) {
         return true;
      }
   }
   return false;
}

/* Write concern errors: the write was applied on the primary, which could
 * not (yet) have it acknowledged as asked: WriteConcernFailed (64, a
 * wtimeout), UnsatisfiableWriteConcern (100, not enough members up). */
static bool
write_concern_code (uint32_t code)
{
   return code == 64 || code == 100;
}

bool
mt_error_is_transient (const bson_error_t *error, const bson_t *reply)
{
   bson_iter_t iter;

   if (mt_error_is_network (error)) {
      return true;
   }
   if (error->domain == MONGOC_ERROR_WRITE_CONCERN) {
      /* A write concern the server could not satisfy in time, or one
       * interrupted by a stepdown: the same write again is the cure. */
      return write_concern_code (error->code) || transient_code (error->code) || error->code == 0;
   }
   /* The server's own error codes, in the domains the driver reports them
    * in (MONGOC_ERROR_SERVER with error API 2; QUERY and COMMAND with 1).
    * mtask's domains (1000 and up) reuse small numbers for other things. */
   if ((error->domain == MONGOC_ERROR_SERVER || error->domain == MONGOC_ERROR_QUERY ||
        error->domain == MONGOC_ERROR_COMMAND) &&
       transient_code (error->code)) {
      return true;
   }
   if (!reply || bson_empty (reply)) {
      return false;
   }
   /* The server's verdict, whatever the code: labels it puts on errors a
    * retry cures (4.4 and later), and a write concern error beside an
    * acknowledged write. */
   if (mongoc_error_has_label (reply, "RetryableWriteError") || mongoc_error_has_label (reply, "RetryableReadError")) {
      return true;
   }
   if (bson_iter_init_find (&iter, reply, "writeConcernError") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      bson_iter_t code;

      return !bson_iter_recurse (&iter, &code) || !bson_iter_find (&code, "code") || !BSON_ITER_HOLDS_NUMBER (&code) ||
             write_concern_code ((uint32_t) bson_iter_as_int64 (&code)) ||
             transient_code ((uint32_t) bson_iter_as_int64 (&code));
   }
   /* A bulk write's reply: {writeConcernErrors: [...]}. */
   if (bson_iter_init_find (&iter, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY (&iter)) {
      bson_iter_t item, code;

      if (bson_iter_recurse (&iter, &item)) {
         while (bson_iter_next (&item)) {
            if (BSON_ITER_HOLDS_DOCUMENT (&item) && bson_iter_recurse (&item, &code) && bson_iter_find (&code, "code") &&
                BSON_ITER_HOLDS_NUMBER (&code) &&
                (write_concern_code ((uint32_t) bson_iter_as_int64 (&code)) ||
                 transient_code ((uint32_t) bson_iter_as_int64 (&code)))) {
               return true;
            }
         }
      }
   }
   return false;
}
