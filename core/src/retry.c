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
