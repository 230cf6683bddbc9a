/* The context every part of the core shares: who the worker is, its log,
 * its estimate of the server's clock, and the flags its threads wait on.
 * The bottom layer: it calls nothing else of the core. */
#include "context-private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void
mt_context_init (mt_context_t *ctx)
{
   pthread_condattr_t attr;

   memset (ctx, 0, sizeof *ctx);
   ctx->lease_ms = 30 * 1000;
   ctx->log_level = MT_LOG_INFO;
   ctx->max_attempts = 3;
   ctx->retry_backoff_ms = 2000;
   pthread_mutex_init (&ctx->mutex, NULL);
   /* Deadlines are on the monotonic clock, so the cond must be too. */
   pthread_condattr_init (&attr);
   pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
   pthread_cond_init (&ctx->cond, &attr);
   pthread_condattr_destroy (&attr);
}

void
mt_context_cleanup (mt_context_t *ctx)
{
   for (size_t i = 0; i < ctx->n_budgets; i++) {
      bson_free (ctx->budget_types[i]);
   }
   bson_free (ctx->budget_types);
   bson_free (ctx->budget_max);
   bson_free (ctx->db);
   bson_free (ctx->worker_id);
   pthread_cond_destroy (&ctx->cond);
   pthread_mutex_destroy (&ctx->mutex);
}

void
mt_log (mt_context_t *ctx, mt_log_level_t level, const char *format, ...)
{
   char message[2048];
   va_list args;

   if (!ctx->log_func || level > ctx->log_level) {
      return;
   }
   va_start (args, format);
   vsnprintf (message, sizeof message, format, args);
   va_end (args);
   ctx->log_func (level, message, ctx->log_data);
}

const char *
mt_log_level_name (mt_log_level_t level)
{
   switch (level) {
   case MT_LOG_ERROR:
      return "error";
   case MT_LOG_WARNING:
      return "warning";
   case MT_LOG_INFO:
      return "info";
   case MT_LOG_DEBUG:
   default:
      return "debug";
   }
}

int64_t
mt_now_ms (void)
{
   struct timeval tv;

   bson_gettimeofday (&tv);
   return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t
mt_server_now (mt_context_t *ctx)
{
   int64_t offset;

   pthread_mutex_lock (&ctx->mutex);
   offset = ctx->clock_offset_ms;
   pthread_mutex_unlock (&ctx->mutex);
   return mt_now_ms () + offset;
}

void
mt_server_clock_set (mt_context_t *ctx, int64_t offset_ms)
{
   pthread_mutex_lock (&ctx->mutex);
   ctx->clock_offset_ms = offset_ms;
   pthread_mutex_unlock (&ctx->mutex);
}

bool
mt_context_wait (mt_context_t *ctx, int64_t ms, const bool *flag)
{
   struct timespec deadline;
   bool set;

   clock_gettime (CLOCK_MONOTONIC, &deadline);
   deadline.tv_sec += ms / 1000;
   deadline.tv_nsec += (ms % 1000) * 1000000L;
   if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
   }
   pthread_mutex_lock (&ctx->mutex);
   while (!*flag && pthread_cond_timedwait (&ctx->cond, &ctx->mutex, &deadline) != ETIMEDOUT) {
   }
   set = *flag;
   pthread_mutex_unlock (&ctx->mutex);
   return set;
}

void
mt_context_raise (mt_context_t *ctx, bool *flag)
{
   pthread_mutex_lock (&ctx->mutex);
   *flag = true;
   pthread_cond_broadcast (&ctx->cond);
   pthread_mutex_unlock (&ctx->mutex);
}

bool
mt_context_get (mt_context_t *ctx, const bool *flag)
{
   bool set;

   pthread_mutex_lock (&ctx->mutex);
   set = *flag;
   pthread_mutex_unlock (&ctx->mutex);
   return set;
}
