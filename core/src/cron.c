/* Cron expressions: five fields (or a macro) and the time zone they are read
 * in, and the next time they name.
 *
 * The schedule is a set of instants: every local wall-clock minute that
 * matches the fields, turned into UTC the way PEP 495's fold=0 does it. A
 * local time that occurs twice (the hour repeated when the clocks fall back)
 * stands for its first occurrence only; a local time that does not exist
 * (the hour skipped when they spring forward) is read with the offset in
 * effect before the jump, so 02:30 on the day Berlin skips from 02:00 to
 * 03:00 runs at 03:30 local. mt_cron_next is the successor in that set, so
 * calling it on its own results never repeats an instant nor goes back.
 *
 * Time zones come from the TZif files of the system's zoneinfo, read and
 * parsed here rather than through tzset/localtime, which share global
 * state; past the file's last transition its POSIX TZ footer says what the
 * clocks do. Nothing here is global: a parsed mt_cron_t is read-only. */
#include "mtask-private.h"
#include "cron.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CRON_MAX_LEN 256 /* bytes of an expression */
#define CRON_ZONEINFO_DIR "/usr/share/zoneinfo"
#define CRON_ZONE_NAME_MAX 128
#define CRON_TZIF_MAX_SIZE (1024 * 1024)
#define CRON_MAX_OFFSET_S (26 * 3600) /* RFC 8536: offsets stay within -25h..+26h */
#define CRON_SEARCH_DAYS (8 * 366)    /* "none within 8 years" */
/* mt_cron_next answers for instants of the years 1 to 9999. */
#define CRON_MIN_MS INT64_C (-62135596800000) /* 0001-01-01T00:00:00Z */
#define CRON_MAX_MS INT64_C (253402300799999) /* 9999-12-31T23:59:59.999Z */

/* ---- calendar ------------------------------------------------------------ */

static int64_t
floor_div (int64_t a, int64_t b)
{
   return a / b - (a % b < 0);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
 * Hinnant's algorithms). */
static int64_t
days_from_civil (int64_t y, int m, int d)
{
   int64_t era, yoe, doy, doe;

   y -= m <= 2;
   era = (y >= 0 ? y : y - 399) / 400;
   yoe = y - era * 400;
   doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
   doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
   return era * 146097 + doe - 719468;
}

static void
civil_from_days (int64_t z, int64_t *y, int *m, int *d)
{
   int64_t era, doe, yoe, doy, mp;

   z += 719468;
   era = (z >= 0 ? z : z - 146096) / 146097;
   doe = z - era * 146097;
   yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
   doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
   mp = (5 * doy + 2) / 153;
   *d = (int) (doy - (153 * mp + 2) / 5 + 1);
   *m = (int) (mp < 10 ? mp + 3 : mp - 9);
   *y = yoe + era * 400 + (*m <= 2);
}

static bool
is_leap (int64_t y)
{
   return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month (int64_t y, int m)
{
   static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

   return m == 2 && is_leap (y) ? 29 : days[m - 1];
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int
weekday (int64_t days)
{
   return (int) ((days % 7 + 7 + 4) % 7);
}

static bool
is_alnum (char c)
{
   return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* ---- time zones ------------------------------------------------------------ */

typedef enum {
   RULE_JULIAN,    /* Jn: day n of 1-365, February 29 never counted */
   RULE_ZERO,      /* n: day n of 0-365, February 29 counted */
   RULE_MONTH_WEEK /* Mm.w.d: day d of week w (5 = last) of month m */
} rule_kind_t;

typedef struct {
   rule_kind_t kind;
   int month, week, day;
   int32_t time; /* seconds after local midnight, -167h to 167h */
} rule_date_t;

/* A POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". */
typedef struct {
   bool present;
   bool has_dst;
   int32_t std_off; /* seconds east of UTC (POSIX counts west) */
   int32_t dst_off;
   rule_date_t start, end;
} posix_tz_t;

typedef struct {
   bool utc;
   size_t n_trans;
   int64_t *trans;     /* ascending, seconds since the epoch */
   int32_t *trans_off; /* the offset from trans[i] on */
   int32_t first_off;  /* before the first transition: time type 0 */
   posix_tz_t footer;  /* from the last transition on, when present */
   int32_t max_abs_off;
} tz_t;

/* An interval of instants [start, end) with one UTC offset. */
typedef struct {
   int64_t start, end;
   int32_t off;
} period_t;

static int64_t
rule_day (const rule_date_t *r, int64_t y)
{
   int64_t jan1 = days_from_civil (y, 1, 1);

   switch (r->kind) {
   case RULE_JULIAN:
      return jan1 + r->day - 1 + (is_leap (y) && r->day >= 60);
   case RULE_ZERO:
      return jan1 + r->day;
   case RULE_MONTH_WEEK:
   default: {
      int64_t first = days_from_civil (y, r->month, 1);
      int day = (r->day - weekday (first) + 7) % 7 + 7 * (r->week - 1);

      while (day >= days_in_month (y, r->month)) {
         day -= 7;
      }
      return first + day;
   }
   }
}

typedef struct {
   int64_t at;
   bool to_dst;
} posix_change_t;

/* The period of the POSIX rule that holds `t`: the rule's changes of the
 * years around t's, in order, and the last one at or before t. */
static period_t
posix_period (const posix_tz_t *f, int64_t t)
{
   posix_change_t changes[10], tmp;
   period_t p = {INT64_MIN, INT64_MAX, f->std_off};
   int64_t y;
   int m, d, n = 0;

   if (!f->has_dst) {
      return p;
   }
   civil_from_days (floor_div (t, 86400), &y, &m, &d);
   for (int64_t yy = y - 2; yy <= y + 2; yy++) {
      changes[n].at = rule_day (&f->start, yy) * 86400 + f->start.time - f->std_off;
      changes[n++].to_dst = true;
      changes[n].at = rule_day (&f->end, yy) * 86400 + f->end.time - f->dst_off;
      changes[n++].to_dst = false;
   }
   /* Insertion sort; at equal instants the change to standard time comes
    * first, so a rule that keeps DST all year ("0/0,J365/25") stays in DST. */
   for (int i = 1; i < n; i++) {
      for (int j = i; j > 0; j--) {
         posix_change_t *a = &changes[j - 1], *b = &changes[j];

         if (a->at < b->at || (a->at == b->at && !a->to_dst)) {
            break;
         }
         tmp = *a;
         *a = *b;
         *b = tmp;
      }
   }
   if (t < changes[0].at) {
      p.end = changes[0].at;
      p.off = changes[0].to_dst ? f->std_off : f->dst_off;
      return p;
   }
   for (int i = n - 1; i >= 0; i--) {
      if (changes[i].at <= t) {
         p.start = changes[i].at;
         p.end = i + 1 < n ? changes[i + 1].at : INT64_MAX;
         p.off = changes[i].to_dst ? f->dst_off : f->std_off;
         break;
      }
   }
   return p;
}

static period_t
period_at (const tz_t *tz, int64_t t)
{
   period_t p = {INT64_MIN, INT64_MAX, 0};
   size_t n = tz->n_trans, lo, hi;

   if (tz->utc) {
      return p;
   }
   if (n == 0) {
      if (tz->footer.present) {
         return posix_period (&tz->footer, t);
      }
      p.off = tz->first_off;
      return p;
   }
   if (t < tz->trans[0]) {
      p.end = tz->trans[0];
      p.off = tz->first_off;
      return p;
   }
   if (t >= tz->trans[n - 1]) {
      if (tz->footer.present) {
         p = posix_period (&tz->footer, t);
         if (p.start < tz->trans[n - 1]) {
            p.start = tz->trans[n - 1];
         }
         return p;
      }
      p.start = tz->trans[n - 1];
      p.off = tz->trans_off[n - 1];
      return p;
   }
   /* The last transition at or before t: trans[lo] <= t < trans[hi]. */
   lo = 0;
   hi = n - 1;
   while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;

      if (tz->trans[mid] <= t) {
         lo = mid;
      } else {
         hi = mid;
      }
   }
   p.start = tz->trans[lo];
   p.end = tz->trans[hi];
   p.off = tz->trans_off[lo];
   return p;
}

/* The instant a local wall-clock time stands for: its first occurrence, or,
 * in a gap, the local time read with the offset before the gap. `*gap` is
 * the gap's length in seconds (0 when the local time exists). */
static int64_t
local_to_utc (const tz_t *tz, int64_t local, int64_t *gap)
{
   /* Every instant that can show `local` lies within max_abs_off of it. */
   period_t p = period_at (tz, local - tz->max_abs_off - 1);

   *gap = 0;
   for (int i = 0; i < 64; i++) {
      int64_t t = local - p.off;
      period_t q;

      if (t >= p.start && t < p.end) {
         return t;
      }
      if (p.end == INT64_MAX) {
         break;
      }
      q = period_at (tz, p.end);
      if (t >= p.end && local - q.off < q.start) {
         *gap = q.off - p.off;
         return t;
      }
      p = q;
   }
   return local - p.off;
}

/* The local time to search after for instants after `t`: t's own wall
 * clock, except just after the clocks sprang forward, where the skipped
 * local times are read with the old offset and so still lie ahead of t. */
static int64_t
local_search_start (const tz_t *tz, int64_t t)
{
   period_t p = period_at (tz, t);

   if (p.start != INT64_MIN) {
      period_t before = period_at (tz, p.start - 1);

      if (p.off > before.off && t - p.start < p.off - before.off) {
         return t + before.off;
      }
   }
   return t + p.off;
}

/* ---- POSIX TZ strings -------------------------------------------------------- */

static bool
posix_name (const char **s)
{
   const char *p = *s;

   if (*p == '<') {
      const char *q = ++p;

      while (*q && *q != '>') {
         if (!(is_alnum (*q) || *q == '+' || *q == '-')) {
            return false;
         }
         q++;
      }
      if (*q != '>' || q - p < 3) {
         return false;
      }
      *s = q + 1;
      return true;
   }
   while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
      p++;
   }
   if (p - *s < 3) {
      return false;
   }
   *s = p;
   return true;
}

static bool
posix_number (const char **s, int max, int *out)
{
   const char *p = *s;
   int n = 0;

   if (*p < '0' || *p > '9') {
      return false;
   }
   while (*p >= '0' && *p <= '9') {
      n = n * 10 + (*p - '0');
      if (n > max) {
         return false;
      }
      p++;
   }
   *s = p;
   *out = n;
   return true;
}

/* [+-]hh[:mm[:ss]] in seconds. */
static bool
posix_time (const char **s, int max_hours, int32_t *out)
{
   int h, m = 0, sec = 0, sign = 1;

   if (**s == '+' || **s == '-') {
      sign = **s == '-' ? -1 : 1;
      (*s)++;
   }
   if (!posix_number (s, max_hours, &h)) {
      return false;
   }
   if (**s == ':') {
      (*s)++;
      if (!posix_number (s, 59, &m)) {
         return false;
      }
      if (**s == ':') {
         (*s)++;
         if (!posix_number (s, 59, &sec)) {
            return false;
         }
      }
   }
   *out = sign * (h * 3600 + m * 60 + sec);
   return true;
}

static bool
posix_date (const char **s, rule_date_t *r)
{
   r->time = 2 * 3600;
   if (**s == 'J') {
      (*s)++;
      r->kind = RULE_JULIAN;
      if (!posix_number (s, 365, &r->day) || r->day < 1) {
         return false;
      }
   } else if (**s == 'M') {
      (*s)++;
      r->kind = RULE_MONTH_WEEK;
      if (!posix_number (s, 12, &r->month) || r->month < 1 || *(*s)++ != '.' || !posix_number (s, 5, &r->week) ||
          r->week < 1 || *(*s)++ != '.' || !posix_number (s, 6, &r->day)) {
         return false;
      }
   } else {
      r->kind = RULE_ZERO;
      if (!posix_number (s, 365, &r->day)) {
         return false;
      }
   }
   if (**s == '/') {
      (*s)++;
      /* TZif v3 allows -167 to 167 hours. */
      if (!posix_time (s, 167, &r->time)) {
         return false;
      }
   }
   return true;
}

static bool
posix_parse (const char *s, posix_tz_t *f)
{
   int32_t off;

   memset (f, 0, sizeof *f);
   if (!posix_name (&s) || !posix_time (&s, 24, &off)) {
      return false;
   }
   f->std_off = -off;
   f->dst_off = f->std_off;
   f->present = true;
   if (!*s) {
      return true;
   }
   if (!posix_name (&s)) {
      return false;
   }
   f->has_dst = true;
   f->dst_off = f->std_off + 3600;
   if (*s && *s != ',') {
      if (!posix_time (&s, 24, &off)) {
         return false;
      }
      f->dst_off = -off;
   }
   if (!*s) {
      /* No rule: the one glibc assumes, the United States' since 2007. */
      f->start = (rule_date_t){RULE_MONTH_WEEK, 3, 2, 0, 2 * 3600};
      f->end = (rule_date_t){RULE_MONTH_WEEK, 11, 1, 0, 2 * 3600};
      return true;
   }
   if (*s++ != ',' || !posix_date (&s, &f->start) || *s++ != ',' || !posix_date (&s, &f->end)) {
      return false;
   }
   return *s == '\0';
}

/* ---- TZif files -------------------------------------------------------------- */

typedef struct {
   uint64_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_counts_t;

static uint32_t
be32 (const uint8_t *p)
{
   return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

static int64_t
be64 (const uint8_t *p)
{
   return (int64_t) ((uint64_t) be32 (p) << 32 | be32 (p + 4));
}

static bool
tzif_header (const uint8_t *p, size_t len, tzif_counts_t *c)
{
   if (len < 44 || memcmp (p, "TZif", 4) != 0) {
      return false;
   }
   c->isutcnt = be32 (p + 20);
   c->isstdcnt = be32 (p + 24);
   c->leapcnt = be32 (p + 28);
   c->timecnt = be32 (p + 32);
   c->typecnt = be32 (p + 36);
   c->charcnt = be32 (p + 40);
   return true;
}

static uint64_t
tzif_block_size (const tzif_counts_t *c, uint64_t time_size)
{
   /* Each count is at most 2^32, so this cannot overflow 64 bits. */
   return c->timecnt * time_size + c->timecnt + c->typecnt * 6 + c->charcnt + c->leapcnt * (time_size + 4) +
          c->isstdcnt + c->isutcnt;
}

/* Fills `tz` from a TZif file's bytes; on failure returns the reason. */
static const char *
tzif_parse (tz_t *tz, const uint8_t *data, size_t len)
{
   tzif_counts_t c;
   size_t off = 44, time_size = 4;
   const uint8_t *times, *indices, *types;
   int version;

   if (!tzif_header (data, len, &c)) {
      return "is not a TZif file";
   }
   version = data[4];
   if (version >= '2') {
      uint64_t v1 = tzif_block_size (&c, 4);

      if (v1 > len - 44 || !tzif_header (data + 44 + v1, len - 44 - v1, &c)) {
         return "is truncated (no version 2 header)";
      }
      off = 44 + (size_t) v1 + 44;
      time_size = 8;
   }
   if (tzif_block_size (&c, time_size) > len - off) {
      return "is truncated";
   }
   if (c.typecnt == 0 || c.typecnt > 256 || (c.isutcnt && c.isutcnt != c.typecnt) ||
       (c.isstdcnt && c.isstdcnt != c.typecnt)) {
      return "has inconsistent counts";
   }
   if (c.leapcnt) {
      return "counts leap seconds, which cron times do not (use the zone without 'right/')";
   }
   times = data + off;
   indices = times + c.timecnt * time_size;
   types = indices + c.timecnt;

   tz->first_off = (int32_t) be32 (types);
   tz->max_abs_off = 0;
   for (size_t i = 0; i < c.typecnt; i++) {
      int32_t utoff = (int32_t) be32 (types + 6 * i);

      if (utoff < -CRON_MAX_OFFSET_S || utoff > CRON_MAX_OFFSET_S) {
         return "has a UTC offset beyond 26 hours";
      }
      tz->max_abs_off = BSON_MAX (tz->max_abs_off, utoff < 0 ? -utoff : utoff);
   }
   tz->n_trans = (size_t) c.timecnt;
   tz->trans = bson_malloc0 (sizeof (int64_t) * (tz->n_trans + 1));
   tz->trans_off = bson_malloc0 (sizeof (int32_t) * (tz->n_trans + 1));
   for (size_t i = 0; i < tz->n_trans; i++) {
      uint8_t idx = indices[i];

      tz->trans[i] = time_size == 8 ? be64 (times + 8 * i) : (int64_t) (int32_t) be32 (times + 4 * i);
      if (i > 0 && tz->trans[i] <= tz->trans[i - 1]) {
         return "has transitions out of order";
      }
      if (idx >= c.typecnt) {
         return "has a transition to a time type that does not exist";
      }
      tz->trans_off[i] = (int32_t) be32 (types + 6 * idx);
   }

   if (version >= '2') {
      /* The footer: "\n" TZ string "\n" after the data block. */
      const char *footer = (const char *) data + off + tzif_block_size (&c, time_size);
      const char *last = (const char *) data + len;
      const char *nl;
      char rule[128];

      if (footer < last && *footer == '\n' && (nl = memchr (footer + 1, '\n', (size_t) (last - footer - 1)))) {
         size_t n = (size_t) (nl - footer - 1);

         if (n >= sizeof rule) {
            return "has a TZ rule too long to read";
         }
         memcpy (rule, footer + 1, n);
         rule[n] = '\0';
         if (n > 0 && !posix_parse (rule, &tz->footer)) {
            return "has a TZ rule that does not parse";
         }
         if (tz->footer.present) {
            int32_t a = tz->footer.std_off, b = tz->footer.dst_off;

            tz->max_abs_off = BSON_MAX (tz->max_abs_off, BSON_MAX (a < 0 ? -a : a, b < 0 ? -b : b));
         }
      }
   }
   return NULL;
}

static bool
zone_name_ok (const char *name)
{
   size_t len = strlen (name);

   if (len > CRON_ZONE_NAME_MAX || name[0] == '/' || strstr (name, "..")) {
      return false;
   }
   for (const char *p = name; *p; p++) {
      if (!(is_alnum (*p) || *p == '_' || *p == '+' || *p == '-' || *p == '/')) {
         return false;
      }
   }
   return true;
}

static bool
tz_load (tz_t *tz, const char *name, bson_error_t *error)
{
   char path[sizeof CRON_ZONEINFO_DIR + CRON_ZONE_NAME_MAX + 2];
   uint8_t *data = NULL;
   const char *why;
   struct stat st;
   size_t len = 0;
   bool ret = false;
   int fd = -1, err = 0;

   if (!name || !name[0] || !strcmp (name, "UTC")) {
      tz->utc = true;
      return true;
   }
   if (!zone_name_ok (name)) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "cron: time zone '%.*s' is not a zone name (letters, digits and '_+-/', no '..' and no leading "
                      "'/', at most %d characters), such as 'Europe/Berlin'",
                      CRON_ZONE_NAME_MAX + 1,
                      name,
                      CRON_ZONE_NAME_MAX);
      return false;
   }
   bson_snprintf (path, sizeof path, "%s/%s", CRON_ZONEINFO_DIR, name);
   fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
   if (fd < 0 || fstat (fd, &st) != 0) {
      err = errno;
   } else if (S_ISDIR (st.st_mode)) {
      err = EISDIR;
   } else if (!S_ISREG (st.st_mode)) {
      err = ENOENT;
   }
   if (err) {
      char buf[128];

      if (err == ENOENT || err == ENOTDIR || err == EISDIR) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "cron: unknown time zone '%s' (%s %s); use an IANA name such as 'Europe/Berlin'",
                         name,
                         err == EISDIR ? "a directory of zones:" : "no file",
                         path);
      } else {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "cron: time zone '%s': cannot read %s: %s",
                         name,
                         path,
                         bson_strerror_r (err, buf, sizeof buf));
      }
      goto cleanup;
   }
   if (st.st_size > CRON_TZIF_MAX_SIZE) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "cron: time zone '%s': %s is too large for a TZif file",
                      name,
                      path);
      goto cleanup;
   }
   data = bson_malloc ((size_t) st.st_size + 1);
   while (len < (size_t) st.st_size) {
      ssize_t n = read (fd, data + len, (size_t) st.st_size - len);

      if (n < 0 && errno == EINTR) {
         continue;
      }
      if (n <= 0) {
         char buf[128];

         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "cron: time zone '%s': cannot read %s: %s",
                         name,
                         path,
                         n < 0 ? bson_strerror_r (errno, buf, sizeof buf) : "it ended early");
         goto cleanup;
      }
      len += (size_t) n;
   }
   why = tzif_parse (tz, data, len);
   if (why) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cron: time zone '%s': %s %s", name, path, why);
      goto cleanup;
   }
   ret = true;

cleanup:
   if (fd >= 0) {
      close (fd);
   }
   bson_free (data);
   return ret;
}

/* ---- expressions ----------------------------------------------------------------- */

struct _mt_cron_t {
   uint64_t minutes; /* bits 0-59 */
   uint32_t hours;   /* bits 0-23 */
   uint32_t mdays;   /* bits 1-31 */
   uint32_t months;  /* bits 1-12 */
   uint32_t wdays;   /* bits 0-6, 0 = Sunday */
   bool dom_star;    /* the day-of-month field starts with '*' */
   bool dow_star;
   tz_t tz;
};

typedef struct {
   const char *name;
   int min, max;             /* what a number may be */
   int star_max;             /* what '*' and 'a/n' run up to */
   const char *const *names; /* three-letter names of min, min + 1..., or NULL */
   int n_names;
   const char *names_hint;   /* for the error that finds no name */
} field_t;

static const char *const month_names[] = {
   "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const field_t fields[5] = {
   {"minute", 0, 59, 59, NULL, 0, NULL},
   {"hour", 0, 23, 23, NULL, 0, NULL},
   {"day-of-month", 1, 31, 31, NULL, 0, NULL},
   {"month", 1, 12, 12, month_names, 12, "a month name (jan-dec)"},
   /* 0 and 7 are both Sunday; '*' and 'a/n' stop at 6. */
   {"day-of-week", 0, 7, 6, wday_names, 7, "a day name (sun-sat)"},
};

typedef struct {
   const char *name;
   const char *fields;
} macro_t;

static const macro_t macros[] = {
   {"@yearly", "0 0 1 1 *"},
   {"@annually", "0 0 1 1 *"},
   {"@monthly", "0 0 1 * *"},
   {"@weekly", "0 0 * * 0"},
   {"@daily", "0 0 * * *"},
   {"@midnight", "0 0 * * *"},
   {"@hourly", "0 * * * *"},
};

static bool
is_space (char c)
{
   return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool
field_error (bson_error_t *error, const char *expr, const field_t *f, const char *format, ...) BSON_GNUC_PRINTF (4, 5);

static bool
field_error (bson_error_t *error, const char *expr, const field_t *f, const char *format, ...)
{
   char cause[256];
   va_list args;

   va_start (args, format);
   bson_vsnprintf (cause, sizeof cause, format, args);
   va_end (args);
   bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cron '%s': %s %s", expr, f->name, cause);
   return false;
}

/* One value at *p, inside the element [elem, end): a number or, where the
 * field has them, a name. */
static bool
parse_value (const char *expr,
             const field_t *f,
             const char *elem,
             const char *end,
             const char **p,
             int *out,
             bson_error_t *error)
{
   const char *start = *p, *q = *p;
   int len, elem_len = (int) (end - elem);
   bool digits = true;

   while (q < end && is_alnum (*q)) {
      digits = digits && *q >= '0' && *q <= '9';
      q++;
   }
   len = (int) (q - start);
   if (len == 0) {
      if (q == end) {
         return field_error (error, expr, f, "'%.*s': a value is missing at the end", elem_len, elem);
      }
      return field_error (error, expr, f, "'%.*s': unexpected '%c' where a value should be", elem_len, elem, *q);
   }
   if (digits) {
      int n = 0;

      for (const char *d = start; d < q && n <= 1000; d++) {
         n = n * 10 + (*d - '0');
      }
      if (n < f->min || n > f->max) {
         return field_error (error, expr, f, "'%.*s' is out of range %d-%d", len, start, f->min, f->max);
      }
      *out = n;
   } else {
      int i = 0;

      if (!f->names) {
         return field_error (error, expr, f, "'%.*s' is not a number", len, start);
      }
      while (i < f->n_names && (len != 3 || strncasecmp (start, f->names[i], 3) != 0)) {
         i++;
      }
      if (i == f->n_names) {
         return field_error (error, expr, f, "'%.*s' is not a number or %s", len, start, f->names_hint);
      }
      *out = f->min + i;
   }
   *p = q;
   return true;
}

/* One comma-separated element: '*', a value or a range, then maybe '/n'. */
static bool
parse_element (const char *expr, const field_t *f, const char *elem, int elem_len, uint64_t *bits, bson_error_t *error)
{
   const char *p = elem, *end = elem + elem_len;
   int lo, hi, step = 1;

   if (*p == '*') {
      lo = f->min;
      hi = f->star_max;
      p++;
   } else {
      if (!parse_value (expr, f, elem, end, &p, &lo, error)) {
         return false;
      }
      hi = lo;
      if (p < end && *p == '-') {
         p++;
         if (!parse_value (expr, f, elem, end, &p, &hi, error)) {
            return false;
         }
         if (hi < lo) {
            return field_error (error,
                                expr,
                                f,
                                "'%.*s': the range is reversed (%d > %d)%s",
                                elem_len,
                                elem,
                                lo,
                                hi,
                                f == &fields[4] && hi == 0 ? "; Sunday is 7 too, as in 'fri-7'" : "");
         }
      } else if (p < end && *p == '/') {
         hi = BSON_MAX (lo, f->star_max); /* a/n: from a to the end, every n */
      }
   }
   if (p < end && *p == '/') {
      const char *s = ++p;
      int n = 0, span = f->star_max - f->min + 1;

      while (p < end && *p >= '0' && *p <= '9') {
         if (n <= 1000) {
            n = n * 10 + (*p - '0');
         }
         p++;
      }
      if (p == s) {
         if (p == end) {
            return field_error (error, expr, f, "'%.*s': the step after '/' is missing", elem_len, elem);
         }
         return field_error (
            error, expr, f, "'%.*s': the step '%.*s' is not a number", elem_len, elem, (int) (end - s), s);
      }
      if (n == 0) {
         return field_error (error, expr, f, "'%.*s': the step must be at least 1", elem_len, elem);
      }
      if (n > span) {
         return field_error (
            error, expr, f, "'%.*s': the step %.*s is out of range 1-%d", elem_len, elem, (int) (p - s), s, span);
      }
      step = n;
   }
   if (p < end) {
      return field_error (error, expr, f, "'%.*s': unexpected '%.*s'", elem_len, elem, (int) (end - p), p);
   }
   for (int v = lo; v <= hi; v += step) {
      *bits |= UINT64_C (1) << v;
   }
   return true;
}

static bool
parse_field (const char *expr, const field_t *f, const char *text, uint64_t *bits, bson_error_t *error)
{
   const char *p = text;

   *bits = 0;
   for (;;) {
      const char *comma = strchr (p, ',');
      int len = comma ? (int) (comma - p) : (int) strlen (p);

      if (len == 0) {
         return field_error (error, expr, f, "'%s' has an empty element in its list", text);
      }
      if (!parse_element (expr, f, p, len, bits, error)) {
         return false;
      }
      if (!comma) {
         return true;
      }
      p = comma + 1;
   }
}

mt_cron_t *
mt_cron_parse (const char *expr, const char *tz_name, bson_error_t *error)
{
   char buf[CRON_MAX_LEN + 1];
   char *tokens[5];
   int n_tokens = 0;
   uint64_t bits[5];
   size_t len;
   mt_cron_t *cron = NULL;
   const char *spec;

   if (!expr) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cron: no expression");
      return NULL;
   }
   len = strnlen (expr, CRON_MAX_LEN + 1);
   if (len > CRON_MAX_LEN) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "cron: the expression is longer than %d bytes: '%.40s...'",
                      CRON_MAX_LEN,
                      expr);
      return NULL;
   }
   spec = expr;
   while (is_space (*spec)) {
      spec++;
   }
   if (!*spec) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "cron: the expression is empty; give five fields (minute hour day-of-month month day-of-week) "
                      "or a macro such as '@daily'");
      return NULL;
   }
   if (*spec == '@') {
      const char *end = spec;
      size_t i, n = sizeof macros / sizeof macros[0], word;

      while (*end && !is_space (*end)) {
         end++;
      }
      word = (size_t) (end - spec);
      for (i = 0; i < n; i++) {
         if (strlen (macros[i].name) == word && !strncasecmp (spec, macros[i].name, word)) {
            break;
         }
      }
      if (i == n) {
         if (end - spec == 7 && !strncasecmp (spec, "@reboot", 7)) {
            bson_set_error (error,
                            MT_ERROR_CONFIG,
                            MT_CONFIG_ERROR_INVALID,
                            "cron '%s': @reboot means at start-up, not a time, so it cannot schedule a task; give "
                            "five fields or a macro such as '@daily'",
                            expr);
         } else {
            bson_set_error (error,
                            MT_ERROR_CONFIG,
                            MT_CONFIG_ERROR_INVALID,
                            "cron '%s': unknown macro '%.*s'; the macros are @yearly, @annually, @monthly, @weekly, "
                            "@daily, @midnight and @hourly",
                            expr,
                            (int) (end - spec),
                            spec);
         }
         return NULL;
      }
      while (is_space (*end)) {
         end++;
      }
      if (*end) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "cron '%s': unexpected '%s' after the macro %s, which stands alone",
                         expr,
                         end,
                         macros[i].name);
         return NULL;
      }
      spec = macros[i].fields;
   }

   /* Split a copy into fields at runs of white space. */
   bson_strncpy (buf, spec, sizeof buf);
   for (char *p = buf; *p;) {
      while (is_space (*p)) {
         *p++ = '\0';
      }
      if (!*p) {
         break;
      }
      if (n_tokens < 5) {
         tokens[n_tokens] = p;
      }
      n_tokens++;
      while (*p && !is_space (*p)) {
         p++;
      }
   }
   if (n_tokens != 5) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "cron '%s': needs 5 fields (minute hour day-of-month month day-of-week), found %d%s",
                      expr,
                      n_tokens,
                      n_tokens == 6 ? "; seconds and years are not cron fields here" : "");
      return NULL;
   }
   for (int i = 0; i < 5; i++) {
      if (!parse_field (expr, &fields[i], tokens[i], &bits[i], error)) {
         return NULL;
      }
   }

   cron = bson_malloc0 (sizeof *cron);
   cron->minutes = bits[0];
   cron->hours = (uint32_t) bits[1];
   cron->mdays = (uint32_t) bits[2];
   cron->months = (uint32_t) bits[3];
   /* 7 is Sunday as well as 0. */
   cron->wdays = (uint32_t) ((bits[4] | bits[4] >> 7) & 0x7f);
   cron->dom_star = tokens[2][0] == '*';
   cron->dow_star = tokens[4][0] == '*';
   if (!tz_load (&cron->tz, tz_name, error)) {
      mt_cron_destroy (cron);
      return NULL;
   }
   return cron;
}

void
mt_cron_destroy (mt_cron_t *cron)
{
   if (cron) {
      bson_free (cron->tz.trans);
      bson_free (cron->tz.trans_off);
      bson_free (cron);
   }
}

/* ---- next times --------------------------------------------------------------------- */

/* The lowest bit set in `bits` at `from` or above, or -1. */
static int
next_bit (uint64_t bits, int from)
{
   if (from > 63) {
      return -1;
   }
   bits >>= from;
   return bits ? from + __builtin_ctzll (bits) : -1;
}

static bool
day_matches (const mt_cron_t *cron, int64_t y, int m, int d)
{
   bool dom = cron->mdays >> d & 1;
   bool dow = cron->wdays >> weekday (days_from_civil (y, m, d)) & 1;

   /* Vixie cron: restrict both and either one will do. */
   if (cron->dom_star || cron->dow_star) {
      return dom && dow;
   }
   return dom || dow;
}

/* The first local wall-clock minute after `after` (local seconds, counted
 * as if the local clock were UTC) that matches the fields, or false when
 * there is none up to the day `last_day`. Skips whole months, days and
 * hours that cannot match. */
static bool
next_local (const mt_cron_t *cron, int64_t after, int64_t last_day, int64_t *out)
{
   int64_t t = floor_div (after, 60) * 60 + 60;
   int64_t day = floor_div (t, 86400), y, last_y;
   int sod = (int) (t - day * 86400), m, d, h = sod / 3600, mi = sod % 3600 / 60, last_m, last_d;

   civil_from_days (day, &y, &m, &d);
   civil_from_days (last_day, &last_y, &last_m, &last_d);
   for (;;) {
      int next;

      if (d > days_in_month (y, m)) {
         d = 1;
         if (++m > 12) {
            m = 1;
            y++;
         }
      }
      if (y > last_y || (y == last_y && (m > last_m || (m == last_m && d > last_d)))) {
         return false;
      }
      if (!(cron->months >> m & 1)) {
         next = next_bit (cron->months, m + 1);
         if (next < 0) {
            next = next_bit (cron->months, 1);
            y++;
         }
         m = next;
         d = 1;
         h = mi = 0;
         continue;
      }
      if (!day_matches (cron, y, m, d)) {
         /* When both must match, the next day of the month that can. */
         next = cron->dom_star || cron->dow_star ? next_bit (cron->mdays, d + 1) : d + 1;
         d = next < 0 ? 32 : next;
         h = mi = 0;
         continue;
      }
      next = next_bit (cron->hours, h);
      if (next < 0) {
         d++;
         h = mi = 0;
         continue;
      }
      if (next != h) {
         h = next;
         mi = 0;
      }
      next = next_bit (cron->minutes, mi);
      if (next < 0) {
         mi = 0;
         if (++h > 23) {
            h = 0;
            d++;
         }
         continue;
      }
      *out = days_from_civil (y, m, d) * 86400 + h * 3600 + next * 60;
      return true;
   }
}

int64_t
mt_cron_next (const mt_cron_t *cron, int64_t after_ms)
{
   int64_t after, local, last_day, best = 0, scan_until = 0;
   bool found = false;

   if (!cron || after_ms < CRON_MIN_MS || after_ms > CRON_MAX_MS) {
      return -1;
   }
   after = floor_div (after_ms, 1000);
   local = local_search_start (&cron->tz, after);
   last_day = floor_div (local, 86400) + CRON_SEARCH_DAYS;

   /* Local times in order. Those read before `after` (the second pass of a
    * repeated hour) are passed over. The first one ahead is the answer,
    * unless it lies in a gap: then a local time up to one gap later, past
    * the gap, may stand for an earlier instant. */
   while (next_local (cron, local, last_day, &local)) {
      int64_t gap, t;

      if (found && local >= scan_until) {
         break;
      }
      t = local_to_utc (&cron->tz, local, &gap);
      if (t * 1000 <= after_ms) {
         continue;
      }
      if (!found) {
         found = true;
         best = t;
         scan_until = local + gap;
         if (!gap) {
            break;
         }
      } else if (t < best) {
         best = t;
      }
   }
   return found ? best * 1000 : -1;
}
