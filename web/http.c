/* The HTTP side of mtask-web: one handler on libmicrohttpd's thread pool.
 * It strips --base-path, checks the bearer token or session cookie (with
 * --token-file), routes to the API, /metrics, the embedded files and the
 * login form, and adds the security headers to every answer. Actions pass
 * four checks first: --allow-actions, a token or a loopback listener, the
 * CSRF token, a JSON body. */
#include "web.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"
#define SESSION_COOKIE "mtask_session"
#define MAX_PARAMS 32

/* What a connection carries between the handler's calls: its body. */
typedef struct {
   char *body;
   size_t len;
   bool too_big;
} conn_t;

/* Equal strings, in a time that does not depend on where they differ. */
static bool
secret_equal (const char *given, const char *secret)
{
   size_t a = strlen (given), b = strlen (secret);
   unsigned char diff = a != b;

   for (size_t i = 0; i < b; i++) {
      diff |= (unsigned char) (given[i < a ? i : 0] ^ secret[i]);
   }
   return !diff;
}

static bool
authorized (web_t *web, struct MHD_Connection *c)
{
   const char *auth, *cookie;

   if (!web->token) {
      return true;
   }
   auth = MHD_lookup_connection_value (c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
   if (auth && !strncmp (auth, "Bearer ", 7) && secret_equal (auth + 7, web->token)) {
      return true;
   }
   cookie = MHD_lookup_connection_value (c, MHD_COOKIE_KIND, SESSION_COOKIE);
   return cookie && secret_equal (cookie, web->session);
}

/* The file `name` of web/pages/, from the copies with the base path in
 * their links when there is one. */
static const web_file_t *
find_file (const web_t *web, const char *name)
{
   for (const web_file_t *f = web->shells ? web->shells : web_files; f->name; f++) {
      if (!strcmp (f->name, name)) {
         return f;
      }
   }
   return NULL;
}

static void
serve_file (const web_file_t *f, web_reply_t *out)
{
   out->status = 200;
   out->body = (char *) f->data;
   out->len = f->size;
   out->mime = f->mime;
   out->is_static = true;
}

/* The page shell for a screen: NAME.html when web/pages/ has one, else
 * index.html (one shell whose script reads the URL). */
static bool
serve_page (const web_t *web, const char *path, web_reply_t *out)
{
   static const char *const lists[] = {"tasks", "groups", "syncs", "workers", "locks", "pools", "schedules", NULL};
   static const char *const items[] = {"task", "group", "stage", "sync", NULL};
   char name[64];
   const char *slash = strchr (path + 1, '/');
   size_t len = slash ? (size_t) (slash - path - 1) : strlen (path + 1);
   const web_file_t *f;
   bool known = false;

   if (!strcmp (path, "/")) {
      known = true;
      len = 0;
   }
   for (const char *const *l = slash ? items : lists; !known && *l; l++) {
      known = strlen (*l) == len && !strncmp (path + 1, *l, len) && (!slash || (slash[1] && !strchr (slash + 1, '/')));
   }
   if (!known) {
      return false;
   }
   snprintf (name, sizeof name, "%.*s.html", (int) len, path + 1);
   f = len ? find_file (web, name) : NULL;
   f = f ? f : find_file (web, "index.html");
   if (!f) {
      return false;
   }
   serve_file (f, out);
   return true;
}

static void
login_form (web_t *web, unsigned int status, const char *note, web_reply_t *out)
{
   out->status = status;
   out->body = bson_strdup_printf ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mtask: log in</title></head>"
                                   "<body><h1>mtask</h1><p>%s</p><form method=\"post\" action=\"%s/login\">"
                                   "<label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\"></label> "
                                   "<button type=\"submit\">Log in</button></form></body></html>\n",
                                   note, web->base);
   out->len = strlen (out->body);
   out->mime = "text/html; charset=utf-8";
   out->is_static = false;
}

/* POST /login, body token=TOKEN (a form): sets the session cookie. */
static bool
login (web_t *web, conn_t *st, web_reply_t *out)
{
   char *copy = bson_strndup (st->body ? st->body : "", st->len);
   bool ok = false;

   for (char *save = NULL, *pair = strtok_r (copy, "&", &save); pair; pair = strtok_r (NULL, "&", &save)) {
      if (!strncmp (pair, "token=", 6)) {
         for (char *p = pair + 6; *p; p++) {
            *p = *p == '+' ? ' ' : *p;
         }
         MHD_http_unescape (pair + 6);
         ok = secret_equal (pair + 6, web->token);
      }
   }
   bson_free (copy);
   if (!ok) {
      login_form (web, 401, "That token is not the one in the server's --token-file.", out);
   }
   return ok;
}

typedef struct {
   web_param_t params[MAX_PARAMS];
   size_t n;
   bool too_many;
} params_t;

static enum MHD_Result
collect_param (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
   params_t *p = cls;

   (void) kind;
   if (p->n == MAX_PARAMS) {
      p->too_many = true;
      return MHD_NO;
   }
   p->params[p->n].key = key;
   p->params[p->n].value = value;
   p->n++;
   return MHD_YES;
}

/* The checks an action passes before it runs; false with the refusal. */
static bool
action_allowed (web_t *web, struct MHD_Connection *c, web_reply_t *out)
{
   const char *csrf = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-CSRF-Token");
   const char *type = MHD_lookup_connection_value (c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

   if (!web->allow_actions) {
      web_error (out, 403, "this dashboard is read-only: start mtask-web with --allow-actions to allow actions");
      return false;
   }
   if (!web->token && !web->loopback) {
      web_error (out, 403, "actions need --token-file when mtask-web listens on an address other than loopback");
      return false;
   }
   if (!csrf || !secret_equal (csrf, web->csrf)) {
      web_error (out, 403, "the X-CSRF-Token header is missing or wrong: read the token from GET %s/api/csrf", web->base);
      return false;
   }
   if (!type || strncmp (type, "application/json", 16)) {
      web_error (out, 415, "an action's body must be JSON (Content-Type: application/json)");
      return false;
   }
   return true;
}

/* Answers one request into `out`; `cookie` gets a Set-Cookie value. */
static void
route (web_t *web, struct MHD_Connection *c, const char *url, const char *method, conn_t *st, web_reply_t *out, char **cookie)
{
   size_t blen = strlen (web->base);
   const char *path = url;
   bool get = !strcmp (method, MHD_HTTP_METHOD_GET) || !strcmp (method, MHD_HTTP_METHOD_HEAD);
   bool post = !strcmp (method, MHD_HTTP_METHOD_POST);

   if (blen) {
      if (strncmp (url, web->base, blen) || (url[blen] && url[blen] != '/')) {
         web_error (out, 404, "nothing at %s: the dashboard is under %s/", url, web->base);
         return;
      }
      path = url[blen] ? url + blen : "/";
   }
   if (st->too_big) {
      web_error (out, 413, "the request body is larger than %d bytes", WEB_BODY_MAX);
      return;
   }
   if (!strcmp (path, "/login") && web->token) {
      if (post && login (web, st, out)) {
         *cookie = bson_strdup_printf ("%s=%s; Path=%s/; HttpOnly; SameSite=Strict", SESSION_COOKIE, web->session, web->base);
         out->status = 303;
         out->body = bson_strdup ("");
         out->mime = "text/plain";
      } else if (get) {
         login_form (web, 200, "This dashboard needs the token of its --token-file.", out);
      } else if (!post) {
         web_error (out, 405, "%s /login: use GET or POST", method);
      }
      return;
   }
   if (!authorized (web, c)) {
      if (get && strncmp (path, "/api/", 5) && strcmp (path, "/metrics")) {
         login_form (web, 401, "This dashboard needs the token of its --token-file.", out);
      } else {
         web_error (out, 401, "give the token: 'Authorization: Bearer TOKEN' or the session cookie from POST %s/login",
                    web->base);
      }
      return;
   }
   if (!strncmp (path, "/api/action/", 12)) {
      if (!post) {
         web_error (out, 405, "%s %s: actions are POST", method, path);
      } else if (action_allowed (web, c, out)) {
         web_api_action (web, path + 12, st->body ? st->body : "", st->len, out);
      }
      return;
   }
   if (!get) {
      web_error (out, 405, "%s %s: only GET and HEAD are served here; actions are POST %s/api/action/NAME", method, path,
                 web->base);
      return;
   }
   if (!strcmp (path, "/api/csrf")) {
      bson_t doc = BSON_INITIALIZER;

      BSON_APPEND_UTF8 (&doc, "csrf", web->csrf);
      BSON_APPEND_BOOL (&doc, "actions", web->allow_actions && (web->token || web->loopback));
      web_json (out, &doc);
      bson_destroy (&doc);
   } else if (!strncmp (path, "/api/", 5)) {
      params_t p = {0};

      MHD_get_connection_values (c, MHD_GET_ARGUMENT_KIND, collect_param, &p);
      if (p.too_many) {
         web_error (out, 400, "more than %d query parameters", MAX_PARAMS);
      } else {
         web_api_get (web, path + 5, p.params, p.n, out);
      }
   } else if (!strcmp (path, "/metrics")) {
      web_metrics (web, out);
   } else if (!strncmp (path, "/static/", 8)) {
      const web_file_t *f = strchr (path + 8, '/') ? NULL : find_file (web, path + 8);

      if (f) {
         serve_file (f, out);
      } else {
         web_error (out, 404, "no file %s", path);
      }
   } else if (!serve_page (web, path, out)) {
      web_error (out, 404, "no page %s", path);
   }
}

static enum MHD_Result
handler (void *cls,
         struct MHD_Connection *c,
         const char *url,
         const char *method,
         const char *version,
         const char *upload,
         size_t *upload_size,
         void **con_cls)
{
   web_t *web = cls;
   conn_t *st = *con_cls;
   web_reply_t out = {0};
   char *cookie = NULL;
   struct MHD_Response *response;
   enum MHD_Result ret;

   (void) version;
   if (!st) {
      *con_cls = bson_malloc0 (sizeof (conn_t));
      return MHD_YES;
   }
   if (*upload_size) {
      if (st->too_big || st->len + *upload_size > WEB_BODY_MAX) {
         st->too_big = true;
      } else {
         st->body = bson_realloc (st->body, st->len + *upload_size + 1);
         memcpy (st->body + st->len, upload, *upload_size);
         st->len += *upload_size;
         st->body[st->len] = '\0';
      }
      *upload_size = 0;
      return MHD_YES;
   }
   route (web, c, url, method, st, &out, &cookie);
   response = MHD_create_response_from_buffer (out.len, out.body,
                                               out.is_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
   if (!out.is_static) {
      bson_free (out.body);
   }
   if (!response) {
      bson_free (cookie);
      return MHD_NO;
   }
   MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, out.mime ? out.mime : "text/plain");
   MHD_add_response_header (response, "Content-Security-Policy", CSP);
   MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
   MHD_add_response_header (response, "X-Frame-Options", "DENY");
   MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
   MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
   if (out.status == 401 && web->token) {
      MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
   }
   if (cookie) {
      char *location = bson_strdup_printf ("%s/", web->base);

      MHD_add_response_header (response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
      MHD_add_response_header (response, MHD_HTTP_HEADER_LOCATION, location);
      bson_free (location);
      bson_free (cookie);
   }
   ret = MHD_queue_response (c, out.status, response);
   MHD_destroy_response (response);
   return ret;
}

static void
completed (void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode code)
{
   conn_t *st = *con_cls;

   (void) cls;
   (void) c;
   (void) code;
   if (st) {
      bson_free (st->body);
      bson_free (st);
      *con_cls = NULL;
   }
}

/* `html` with `base` put before each root-relative link: href="/...",
 * src="/..." and action="/..." become href="BASE/...". The shell loads
 * app.js and app.css by such links before any script runs, so that is
 * where the base path has to be written in. */
static char *
prefix_links (const char *html, size_t len, const char *base, size_t *out_len)
{
   static const char *const attrs[] = {"href=\"/", "src=\"/", "action=\"/", NULL};
   bson_string_t *out = bson_string_new (NULL);
   size_t i = 0;

   while (i < len) {
      size_t skip = 0;

      for (const char *const *a = attrs; *a && !skip; a++) {
         size_t n = strlen (*a);

         if (len - i >= n && !memcmp (html + i, *a, n)) {
            bson_string_append_printf (out, "%.*s%s/", (int) (n - 1), *a, base);
            skip = n;
         }
      }
      if (!skip) {
         bson_string_append_c (out, html[i]);
         skip = 1;
      }
      i += skip;
   }
   *out_len = out->len;
   return bson_string_free (out, false);
}

/* Under a base path: a copy of the file table whose HTML files have it in
 * their links. */
static void
make_shells (web_t *web)
{
   size_t n = 0;

   for (const web_file_t *f = web_files; f->name; f++) {
      n++;
   }
   web->shells = bson_malloc0 ((n + 1) * sizeof (web_file_t));
   for (size_t i = 0; i < n; i++) {
      web->shells[i] = web_files[i];
      if (!strncmp (web_files[i].mime, "text/html", 9)) {
         web->shells[i].data = (const unsigned char *) prefix_links ((const char *) web_files[i].data, web_files[i].size,
                                                                     web->base, &web->shells[i].size);
      }
   }
}

void
web_http_free (web_t *web)
{
   if (!web->shells) {
      return;
   }
   for (size_t i = 0; web->shells[i].name; i++) {
      if (web->shells[i].data != web_files[i].data) {
         bson_free ((void *) web->shells[i].data);
      }
   }
   bson_free (web->shells);
   web->shells = NULL;
}

struct MHD_Daemon *
web_http_start (web_t *web, const char *listen, int threads, int *port, bson_error_t *error)
{
   const char *colon = strrchr (listen, ':');
   char *host;
   struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
   struct MHD_Daemon *daemon;
   const union MHD_DaemonInfo *info;
   int rc;

   if (!colon || colon == listen || !colon[1]) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID,
                      "--listen '%s' is not HOST:PORT, e.g. 127.0.0.1:8080", listen);
      return NULL;
   }
   host = bson_strndup (listen, (size_t) (colon - listen));
   if (host[0] == '[' && host[strlen (host) - 1] == ']') {
      memmove (host, host + 1, strlen (host) - 2);
      host[strlen (host) - 2] = '\0';
   }
   rc = getaddrinfo (host, colon + 1, &hints, &ai);
   if (rc) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "--listen '%s': %s", listen, gai_strerror (rc));
      bson_free (host);
      return NULL;
   }
   bson_free (host);
   if (web->base[0] && !web->shells) {
      make_shells (web);
   }
   if (ai->ai_family == AF_INET) {
      const struct sockaddr_in *in = (const struct sockaddr_in *) ai->ai_addr;

      web->loopback = (ntohl (in->sin_addr.s_addr) >> 24) == 127;
   } else {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) ai->ai_addr;

      web->loopback = IN6_IS_ADDR_LOOPBACK (&in6->sin6_addr);
   }
   daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                                 (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                              0,
                              NULL,
                              NULL,
                              handler,
                              web,
                              MHD_OPTION_SOCK_ADDR,
                              ai->ai_addr,
                              MHD_OPTION_THREAD_POOL_SIZE,
                              (unsigned int) threads,
                              MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned int) 256,
                              MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned int) 30,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t) 128 * 1024,
                              MHD_OPTION_NOTIFY_COMPLETED,
                              completed,
                              NULL,
                              MHD_OPTION_END);
   freeaddrinfo (ai);
   if (!daemon) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID,
                      "cannot listen on %s: the address is in use or not this machine's (see the message above)", listen);
      return NULL;
   }
   info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
   *port = info ? info->port : 0;
   return daemon;
}
