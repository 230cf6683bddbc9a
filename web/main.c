/* mtask-web: the dashboard and its JSON API and /metrics, over the
 * library's admin API (docs/web.md).
 *
 *   mtask-web --db NAME [--uri URI | --host HOST --port PORT] [--uri-file F]
 *             [--listen 127.0.0.1:8080] [--token-file FILE] [--allow-actions]
 *             [--base-path /mtask]
 *
 * Exit status: 0 stopped by SIGINT or SIGTERM; 1 it could not start; 2 bad
 * usage. */
#include "web.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEB_THREADS 4
/* How long a page's read waits for a server before it answers 503: short,
 * so that an outage shows at once (docs/web.md). A URI's own
 * serverSelectionTimeoutMS wins. */
#define WEB_SERVER_SELECTION_TIMEOUT_MS 2500

static void
usage (FILE *out)
{
   fputs ("Usage: mtask-web --db NAME [options]\n"
          "\n"
          "The mtask dashboard: its pages, a JSON API under /api/ and /metrics in the\n"
          "Prometheus text format, read through the library's admin API. Read-only\n"
          "unless --allow-actions.\n"
          "\n"
          "Connection:\n"
          "  --db NAME            the database holding the 'tasks' collection (default:\n"
          "                       the URI's database)\n"
          "  --uri URI            MongoDB URI (default: MTASK_URI, else --host/--port);\n"
          "                       prefer MTASK_URI or --uri-file for a URI with a password\n"
          "  --uri-file FILE      read the URI from FILE (chmod 600), not from argv\n"
          "  --host HOST          MongoDB host (default localhost)\n"
          "  --port PORT          MongoDB port (default 27017)\n"
          "                       A read waits at most 2.5 s for the server\n"
          "                       (serverSelectionTimeoutMS, unless the URI sets it);\n"
          "                       then the API answers 503 and the pages say so.\n"
          "\n"
          "Server:\n"
          "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080; port 0\n"
          "                       picks a free one, printed at start)\n"
          "  --token-file FILE    every request needs 'Authorization: Bearer TOKEN' or\n"
          "                       the session cookie of the login form (POST /login);\n"
          "                       FILE (chmod 600) holds the token, 16 characters or\n"
          "                       more, e.g. from: head -c 24 /dev/urandom | base64\n"
          "  --allow-actions      allow retry, cancel, delete, worker quiet and stop,\n"
          "                       slot stop, group and synchronizer start; each a POST\n"
          "                       with the X-CSRF-Token of GET /api/csrf (default:\n"
          "                       read-only; without --token-file only on loopback)\n"
          "  --base-path PATH     serve under PATH (e.g. /mtask) behind a reverse proxy\n"
          "  --help               print this help\n"
          "  --version            print the version\n"
          "\n"
          "Example:\n"
          "  MTASK_URI=mongodb://db1.example/ mtask-web --db tasks --listen 127.0.0.1:8080\n"
          "  then open http://127.0.0.1:8080/ (the start line on stderr gives the port).\n"
          "\n"
          "Exit status: 0 stopped by SIGINT or SIGTERM; 1 could not start (the token or\n"
          "URI file refused, the address in use); 2 bad usage (a flag, a value, no --db,\n"
          "a URI that does not parse).\n"
          "\n"
          "Docs: docs/web.md (the server, its API and security), docs/web-screens.md\n"
          "(the screens), docs/deploy.md (mtask-web.service); installed under\n"
          "share/doc/mtask/.\n",
          out);
}

static int
fail_usage (const char *format, const char *arg)
{
   fprintf (stderr, "mtask-web: ");
   fprintf (stderr, format, arg);
   fprintf (stderr, "\nTry 'mtask-web --help'.\n");
   return WEB_EXIT_USAGE;
}

/* The token of --token-file: one line, 16 characters or more, in a file
 * only its owner may read. */
static char *
read_token (const char *path)
{
   char buf[1024];
   struct stat st;
   ssize_t n;
   int fd = open (path, O_RDONLY | O_CLOEXEC);
   char *end;

   if (fd < 0) {
      fprintf (stderr, "mtask-web: --token-file %s: %s\n", path, strerror (errno));
      return NULL;
   }
   if (fstat (fd, &st) || !S_ISREG (st.st_mode) || (st.st_mode & 077)) {
      fprintf (stderr, "mtask-web: --token-file %s: must be a regular file only its owner may read (chmod 600)\n", path);
      close (fd);
      return NULL;
   }
   n = read (fd, buf, sizeof buf - 1);
   close (fd);
   if (n < 0) {
      fprintf (stderr, "mtask-web: --token-file %s: %s\n", path, strerror (errno));
      return NULL;
   }
   buf[n] = '\0';
   end = buf + strcspn (buf, "\r\n");
   if (*end && end[strspn (end, "\r\n")]) {
      fprintf (stderr, "mtask-web: --token-file %s: holds more than one line; give the token alone\n", path);
      return NULL;
   }
   *end = '\0';
   if (strlen (buf) < 16 || strpbrk (buf, " \t;,\"")) {
      fprintf (stderr, "mtask-web: --token-file %s: the token must be 16 characters or more, with no space, quote, "
               "comma or semicolon (e.g. from: head -c 24 /dev/urandom | base64)\n", path);
      return NULL;
   }
   return bson_strdup (buf);
}

/* 32 random bytes as hex. */
static bool
random_hex (char out[65])
{
   unsigned char bytes[32];

   if (getrandom (bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes) {
      return false;
   }
   for (size_t i = 0; i < sizeof bytes; i++) {
      snprintf (out + 2 * i, 3, "%02x", bytes[i]);
   }
   return true;
}

static bool
base_path_ok (const char *p)
{
   if (p[0] != '/') {
      return false;
   }
   for (; *p; p++) {
      if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/", *p)) {
         return false;
      }
   }
   return true;
}

static void
log_handler (mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
   (void) data;
   if (level <= MONGOC_LOG_LEVEL_WARNING) {
      fprintf (stderr, "mtask-web: %s: %s\n", domain, message);
   }
}

/* A client pool on `uri` with `policy`. */
static mongoc_client_pool_t *
make_pool (const mongoc_uri_t *base, int policy, const char *appname, bson_error_t *error)
{
   mongoc_uri_t *uri = mongoc_uri_copy (base);
   mongoc_client_pool_t *pool;

   mt_uri_apply_policy (uri, policy);
   pool = mongoc_client_pool_new_with_error (uri, error);
   mongoc_uri_destroy (uri);
   if (pool) {
      mongoc_client_pool_set_error_api (pool, MONGOC_ERROR_API_VERSION_2);
      mongoc_client_pool_set_appname (pool, appname);
      mongoc_client_pool_max_size (pool, WEB_THREADS * 2);
   }
   return pool;
}

int
main (int argc, char **argv)
{
   enum { O_DB = 1, O_URI, O_URI_FILE, O_HOST, O_PORT, O_LISTEN, O_TOKEN_FILE, O_ALLOW, O_BASE, O_HELP, O_VERSION };
   static const struct option longopts[] = {
      {"db", required_argument, NULL, O_DB},
      {"uri", required_argument, NULL, O_URI},
      {"uri-file", required_argument, NULL, O_URI_FILE},
      {"host", required_argument, NULL, O_HOST},
      {"port", required_argument, NULL, O_PORT},
      {"listen", required_argument, NULL, O_LISTEN},
      {"token-file", required_argument, NULL, O_TOKEN_FILE},
      {"allow-actions", no_argument, NULL, O_ALLOW},
      {"base-path", required_argument, NULL, O_BASE},
      {"help", no_argument, NULL, O_HELP},
      {"version", no_argument, NULL, O_VERSION},
      {NULL, 0, NULL, 0},
   };
   const char *db = NULL, *uri_arg = NULL, *uri_file = NULL, *host = NULL, *listen = "127.0.0.1:8080";
   const char *token_file = NULL, *base = "";
   const char *uri_source = "--host";
   char *uri_text = NULL, *base_copy = NULL;
   long port = 0;
   web_t web = {0};
   mongoc_uri_t *uri = NULL;
   struct MHD_Daemon *daemon = NULL;
   bson_error_t error;
   sigset_t stop_signals;
   int opt, sig, bound = 0, status = WEB_EXIT_RUNTIME;
   bool initialized = false;

   opterr = 0;
   while ((opt = getopt_long (argc, argv, ":", longopts, NULL)) != -1) {
      char *end;

      switch (opt) {
      case O_DB: db = optarg; break;
      case O_URI: uri_arg = optarg; break;
      case O_URI_FILE: uri_file = optarg; break;
      case O_HOST: host = optarg; break;
      case O_PORT:
         errno = 0;
         port = strtol (optarg, &end, 10);
         if (errno || *end || end == optarg || port < 1 || port > 65535) {
            return fail_usage ("--port '%s' is not a port: give 1 to 65535", optarg);
         }
         break;
      case O_LISTEN: listen = optarg; break;
      case O_TOKEN_FILE: token_file = optarg; break;
      case O_ALLOW: web.allow_actions = true; break;
      case O_BASE: base = optarg; break;
      case O_HELP: usage (stdout); return 0;
      case O_VERSION: printf ("mtask-web %s\n", MT_VERSION_STRING); return 0;
      case ':': return fail_usage ("%s needs a value", argv[optind - 1]);
      default: return fail_usage ("unknown flag '%s'", argv[optind - 1]);
      }
   }
   if (optind < argc) {
      return fail_usage ("unexpected argument '%s'", argv[optind]);
   }
   if (uri_arg && uri_file) {
      return fail_usage ("%s: give --uri or --uri-file, not both", "--uri-file");
   }
   if ((uri_arg || uri_file) && (host || port)) {
      return fail_usage ("%s: give a URI or --host/--port, not both", uri_arg ? "--uri" : "--uri-file");
   }
   if (!base_path_ok (base[0] ? base : "/")) {
      return fail_usage ("--base-path '%s' must start with '/' and hold only letters, digits and - . _ ~ /", base);
   }
   base_copy = bson_strdup (base);
   while (base_copy[0] && base_copy[strlen (base_copy) - 1] == '/') {
      base_copy[strlen (base_copy) - 1] = '\0';
   }
   web.base = base_copy;

   mongoc_log_set_handler (log_handler, NULL);
   mongoc_init ();
   initialized = true;
   if (uri_file) {
      uri_text = mt_uri_read_file (uri_file, &error);
      if (!uri_text) {
         fprintf (stderr, "mtask-web: --uri-file: %s\n", error.message);
         goto cleanup;
      }
      uri_source = "--uri-file";
   } else if (uri_arg) {
      uri_text = bson_strdup (uri_arg);
      uri_source = "--uri";
   } else if (!host && !port && getenv ("MTASK_URI") && getenv ("MTASK_URI")[0]) {
      uri_text = bson_strdup (getenv ("MTASK_URI"));
      uri_source = "MTASK_URI";
   }
   uri = mt_uri_new (uri_text, host, (int) port, &error);
   if (!uri) {
      fprintf (stderr, "mtask-web: %s: %s\n", uri_source, error.message);
      status = WEB_EXIT_USAGE;
      goto cleanup;
   }
   web.db = db ? db : mongoc_uri_get_database (uri);
   if (!web.db || !web.db[0]) {
      fprintf (stderr, "mtask-web: --db is required: the database holding the 'tasks' collection, e.g. --db tasks\n");
      status = WEB_EXIT_USAGE;
      goto cleanup;
   }
   if (token_file && !(web.token = read_token (token_file))) {
      goto cleanup;
   }
   if (!random_hex (web.session) || !random_hex (web.csrf)) {
      fprintf (stderr, "mtask-web: cannot read random bytes for the session and CSRF tokens: %s\n", strerror (errno));
      goto cleanup;
   }
   if (!mongoc_uri_has_option (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
      mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, WEB_SERVER_SELECTION_TIMEOUT_MS);
   }
   /* Pages only show: they read where the URI says. Actions act on what
    * they read: from the primary (docs/reliability.md). */
   web.pool = make_pool (uri, MT_URI_MAJORITY_WRITES, "mtask-web", &error);
   if (web.pool && web.allow_actions) {
      web.act_pool = make_pool (uri, MT_URI_MAJORITY_WRITES | MT_URI_PRIMARY_READS, "mtask-web-actions", &error);
   }
   if (!web.pool || (web.allow_actions && !web.act_pool)) {
      fprintf (stderr, "mtask-web: cannot connect to MongoDB: %s\n", error.message);
      goto cleanup;
   }

   /* The daemon's threads inherit the mask: the signals come here only. */
   sigemptyset (&stop_signals);
   sigaddset (&stop_signals, SIGINT);
   sigaddset (&stop_signals, SIGTERM);
   pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);
   signal (SIGPIPE, SIG_IGN);
   daemon = web_http_start (&web, listen, WEB_THREADS, &bound, &error);
   if (!daemon) {
      fprintf (stderr, "mtask-web: %s\n", error.message);
      goto cleanup;
   }
   {
      char *redacted = mt_uri_redact (mongoc_uri_get_string (uri));

      fprintf (stderr, "mtask-web: listening on port %d (%s), base path '%s/', database %s at %s, %s%s\n",
               bound, listen, web.base, web.db, redacted,
               web.allow_actions ? (web.token || web.loopback ? "actions allowed" : "actions refused: not loopback and no --token-file")
                                 : "read-only",
               web.token ? ", token required" : "");
      fflush (stderr);
      bson_free (redacted);
   }
   while (sigwait (&stop_signals, &sig) == 0) {
      if (sig == SIGINT || sig == SIGTERM) {
         break;
      }
   }
   fprintf (stderr, "mtask-web: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
   status = 0;

cleanup:
   if (daemon) {
      MHD_stop_daemon (daemon);
   }
   web_http_free (&web);
   if (web.pool) {
      mongoc_client_pool_destroy (web.pool);
   }
   if (web.act_pool) {
      mongoc_client_pool_destroy (web.act_pool);
   }
   mongoc_uri_destroy (uri);
   bson_free (uri_text);
   bson_free (web.token);
   bson_free (base_copy);
   if (initialized) {
      mongoc_cleanup ();
   }
   return status;
}
