/* Private to libmtask: cron expressions and their next times, in a time
 * zone read from the system's zoneinfo. Self-contained: no global state, so
 * any thread may parse and ask at any time. */
#ifndef MTASK_CRON_H
#define MTASK_CRON_H

#include <bson/bson.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct _mt_cron_t mt_cron_t;

/* Parses a standard five-field cron expression (minute hour day-of-month
 * month day-of-week) in time zone `timezone` (an IANA name such as
 * "Europe/Berlin", read from the system zoneinfo; NULL or "" or "UTC" = UTC).
 * NULL with `error` set (domain MT_ERROR_CONFIG, code MT_CONFIG_ERROR_INVALID)
 * and a message naming the field and the cause. */
mt_cron_t *mt_cron_parse (const char *expr, const char *timezone, bson_error_t *error);

/* The first scheduled time strictly after `after_ms` (ms since the epoch,
 * UTC), in ms since the epoch; -1 when there is none within 8 years (e.g.
 * "0 0 30 2 *").
 *
 * Times are local wall-clock minutes of the zone. One the clocks skip (02:30
 * on a spring-forward day) runs as late as the jump (03:30); one that occurs
 * twice (fall back) runs the first time only. Calling it again on its result
 * never gives the same instant twice nor an earlier one. -1 too for
 * `after_ms` outside the years 1 to 9999. */
int64_t mt_cron_next (const mt_cron_t *cron, int64_t after_ms);

void mt_cron_destroy (mt_cron_t *cron);

#endif /* MTASK_CRON_H */
