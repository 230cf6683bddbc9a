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

/* The task the calling thread runs, for the fields of its log lines. */
static _Thread_local struct {
   bool set;
   char task_id[64];
   char type[256];
   char queue[256];
   int32_t attempt;
} current_task;

void
mt_log_task_begin (const char *task_id, const char *type, const char *queue, int32_t attempt)
{
   bson_strncpy (current_task.task_id, task_id ? task_id : "", sizeof current_task.task_id);
   bson_strncpy (current_task.type, type ? type : "", sizeof current_task.type);
   bson_strncpy (current_task.queue, queue ? queue : "", sizeof current_task.queue);
   current_task.attempt = attempt;
   current_task.set = true;
}

void
mt_log_task_end (void)
{
   memset (&current_task, 0, sizeof current_task);
}

bool
mt_log_task (const char **task_id, const char **type, const char **queue, int32_t *attempt)
{
   if (!current_task.set) {
      return false;
   }
   *task_id = current_task.task_id;
   *type = current_task.type;
   *queue = current_task.queue;
   *attempt = current_task.attempt;
   return true;
}

size_t
mt_log_escape (const char *in, char *out, size_t size)
{
   static const char hex[] = "0123456789abcdef";
   size_t n = 0;

   if (size == 0) {
      return 0;
   }
   for (const unsigned char *p = (const unsigned char *) in; *p; p++) {
      char buf[4];
      size_t len = 1;

      buf[0] = (char) *p;
      if (*p == '\n' || *p == '\r' || *p == '\t') {
         buf[0] = '\\';
         buf[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
         len = 2;
      } else if (*p < 0x20 || *p == 0x7f) {
         buf[0] = '\\';
         buf[1] = 'x';
         buf[2] = hex[*p >> 4];
         buf[3] = hex[*p & 0xf];
         len = 4;
      }
      if (n + len >= size) {
         break;
      }
      memcpy (out + n, buf, len);
      n += len;
   }
   out[n] = '\0';
   return n;
}

void
mt_log (mt_context_t *ctx, mt_log_level_t level, const char *format, ...)
{
   char message[2048], escaped[2048];
   va_list args;

   if (!ctx->log_func || level > ctx->log_level) {
      return;
   }
   va_start (args, format);
   vsnprintf (message, sizeof message, format, args);
   va_end (args);
   /* One call, one line: a task's text (its error, a plugin's message)
    * cannot end the line and forge the next one. */
   mt_log_escape (message, escaped, sizeof escaped);
   ctx->log_func (level, escaped, ctx->log_data);
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
