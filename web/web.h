/* mtask-web: the dashboard server. main.c parses the flags and runs the
 * daemon; http.c answers requests (routing, authentication, CSRF, static
 * files); api.c maps /api/ onto the admin API of the library; metrics.c
 * writes /metrics. Nothing here queries MongoDB: every read and write is a
 * library call (tools/check-layers checks it). */
#ifndef MTASK_WEB_H
#define MTASK_WEB_H

#include <mtask/mtask.h>

#include <stdbool.h>
#include <stddef.h>

/* Exit status: 0 stopped by SIGINT/SIGTERM; 1 it could not run (no
 * database URI, the listener refused); 2 bad usage. */
#define WEB_EXIT_RUNTIME 1
#define WEB_EXIT_USAGE 2

/* The longest list an /api/tasks call returns, and the default. */
#define WEB_TASKS_LIMIT_MAX 1000
#define WEB_TASKS_LIMIT_DEFAULT 100
/* The largest request body (an action's JSON) read. */
#define WEB_BODY_MAX (64 * 1024)

/* A file of web/pages/, built in by embed.py. */
typedef struct {
   const char *name;
   const char *mime;
   const unsigned char *data;
   size_t size;
} web_file_t;

/* Ends with a NULL name. */
extern const web_file_t web_files[];

typedef struct {
   const char *db;
   mongoc_client_pool_t *pool;     /* display reads, where the URI says */
   mongoc_client_pool_t *act_pool; /* actions: primary reads; NULL when read-only */
   bool allow_actions;
   bool loopback;     /* the listener is a loopback address */
   char *token;       /* --token-file's token, or NULL */
   char session[65];  /* the session cookie's value after POST /login */
   char csrf[65];     /* what X-CSRF-Token must carry */
   const char *base;  /* --base-path without its trailing '/', or "" */
   web_file_t *shells; /* under a base path: the HTML files of web_files
                        * with it prefixed to their links, by
                        * web_http_start; NULL otherwise */
} web_t;

/* An answer: status, body (bson_free'd) and its type. */
typedef struct {
   unsigned int status;
   char *body;
   size_t len;
   const char *mime;
   bool is_static; /* body points into web_files: not freed */
} web_reply_t;

/* Sets `out` to {"error": message} with `status`. */
void web_error (web_reply_t *out, unsigned int status, const char *format, ...) BSON_GNUC_PRINTF (3, 4);

/* Sets `out` to `doc` as relaxed extended JSON with status 200. */
void web_json (web_reply_t *out, const bson_t *doc);

/* The HTTP status for an admin call's error: 400 bad option, 404 not
 * found, 409 wrong state, 503 the database is unreachable, else 500. */
unsigned int web_error_status (const bson_error_t *error);

/* A query string parameter. */
typedef struct {
   const char *key;
   const char *value;
} web_param_t;

/* GET /api/PATH (PATH after "/api/") with the query string's parameters. */
void web_api_get (web_t *web, const char *path, const web_param_t *params, size_t n_params, web_reply_t *out);

/* POST /api/action/NAME with its JSON body (checks done by the caller). */
void web_api_action (web_t *web, const char *name, const char *body, size_t len, web_reply_t *out);

/* GET /metrics. */
void web_metrics (web_t *web, web_reply_t *out);

/* Starts the daemon on `listen` ("HOST:PORT"); returns it or NULL with a
 * message in `error`; `*port` is the port bound (useful with port 0). */
struct MHD_Daemon;
struct MHD_Daemon *web_http_start (web_t *web, const char *listen, int threads, int *port, bson_error_t *error);

/* Frees what web_http_start made for `web` (after MHD_stop_daemon). */
void web_http_free (web_t *web);

#endif /* MTASK_WEB_H */
