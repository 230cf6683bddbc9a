/* --help: of every command, of each family, and of mtaskctl as a whole. */
#include "ctl.h"

#include <string.h>

#define SCHEDULING_COMMANDS                                                                   \
   "Scheduling and retention (enqueue takes --repeat, --cron, --run-at, --unique-key):\n"      \
   "  schedules             repeating tasks that are live, soonest next run first\n"          \
   "  purge                 delete ended tasks older than a duration: --older-than 30d\n"    \
   "  retention             a TTL index that makes MongoDB delete ended tasks: --ttl 30d\n"

#define GROUP_COMMANDS                                                                      \
   "Staged groups (DB.groups, DB.group_stages): stage N+1 starts when stage N has ended\n" \
   "  group create          a new group; prints its id\n"                                 \
   "  group add GROUP_ID    add a task to stage N of the group; prints the task's id\n"  \
   "  group start GROUP_ID  start its first stage that is not complete\n"                \
   "  group ls              groups, newest first, with their current stage\n"             \
   "  group show GROUP_ID   a group and its stages, with their tasks by status\n"         \
   "  group clean           repair orphaned staged tasks; --purge --yes deletes all\n"

#define SYNC_COMMANDS                                                                       \
   "Synchronizers (DB.synchronizers, DB.stages): a chain of stages, each a task type run\n" \
   "on a queue and complete when that queue has drained\n"                                  \
   "  sync stage            create a stage; prints its id\n"                                \
   "  sync create NAME      a synchronizer, on stand-by, beginning at a stage\n"            \
   "  sync start NAME       begin it at the workers' next upkeep tick, or --now\n"          \
   "  sync check NAME       advance it if its stage is complete\n"                          \
   "  sync ls               synchronizers: status, stage, start stage, times\n"

#define SLOT_COMMANDS                                                                       \
   "Concurrency slots (DB.pools, DB.slots): a pool of N slots runs at most N of its\n"     \
   "tasks at once, across all workers\n"                                                    \
   "  pool set NAME         declare or resize a pool: --size N [--timeout SECS]\n"         \
   "  slots                 pools and their slots in use: task, worker, keepalive\n"       \
   "  slot keepalive TASK_ID\n"                                                             \
   "                        keep the running task's slot from timing out\n"                \
   "  slot stop TASK_ID     end the running task (CANCELLED) and free its slot\n"

void
ctl_usage (FILE *out, ctl_cmd_t cmd, const char *family)
{
   switch (cmd) {
   case CMD_ENQUEUE:
      fprintf (out,
               "Usage: mtaskctl [connection] enqueue --queue Q --type T [--params JSON]\n"
               "                [--delay DURATION | --run-at TIME] [--priority N] [--max-attempts N]\n"
               "                [--repeat DURATION | --cron EXPR [--timezone TZ]]\n"
               "                [--repeat-until TIME] [--unique-key KEY] [--verbose-name TEXT]\n"
               "                [--creator TEXT] [--json]\n"
               "\n"
               "Inserts a CREATED task into DB.tasks and prints its id (24 hex digits).\n"
               "A DURATION is seconds (90, 0.5) or a number with a unit: s, m, h, d\n"
               "(90s, 15m, 2h, 1d, 1h30m). A TIME is ISO 8601 with a zone:\n"
               "2026-11-23T10:00:00Z, 2026-11-23T10:00:00.250Z, 2026-11-23T11:00:00+01:00.\n"
               "\n"
               "  --queue Q            the queue a worker serves (required)\n"
               "                         --queue general\n"
               "  --type T             the task type: the plugin that runs it (required)\n"
               "                         --type echo\n"
               "  --params JSON        the task's input, a JSON object (default: {})\n"
               "                         --params '{\"to\": \"ana@example.com\", \"n\": 3}'\n"
               "  --delay DURATION     not to be started before that long from now\n"
               "                         --delay 90   --delay 0.5   --delay 2h\n"
               "  --run-at TIME        not to be started before TIME (instead of --delay)\n"
               "                         --run-at 2026-11-23T10:00:00Z\n"
               "  --priority N         higher runs first; may be negative (default: 0)\n"
               "                         --priority 10\n"
               "  --max-attempts N     the retry budget: failures before it stays FAILED\n"
               "                         --max-attempts 3\n"
               "\n"
               "Repeating (each run, when it ends, creates the next one; 'schedules' lists them):\n"
               "  --repeat DURATION    run every DURATION, at least 1 s: first now (or at\n"
               "                       --delay/--run-at), then on that grid   --repeat 15m\n"
               "  --cron EXPR          run at the times of a five-field cron expression\n"
               "                       (minute hour day-of-month month day-of-week), or\n"
               "                       @hourly, @daily, @weekly, @monthly, @yearly; not\n"
               "                       with --repeat      --cron '*/5 * * * *'   --cron @daily\n"
               "  --timezone TZ        the IANA time zone of --cron's times (default: UTC)\n"
               "                         --timezone Europe/Berlin\n"
               "  --repeat-until TIME  no run after TIME     --repeat-until 2026-12-31T23:59:59Z\n"
               "\n"
               "Unique and descriptive:\n"
               "  --unique-key KEY     enqueue nothing while a task with this key is WAITING,\n"
               "                       CREATED or WORK_IN_PROGRESS: then print that task's id,\n"
               "                       say so on stderr, and exit 0   --unique-key report-2026-11\n"
               "  --verbose-name TEXT  a name for people, stored as is\n"
               "                         --verbose-name 'Monthly report'\n"
               "  --creator TEXT       who enqueued it, stored as is   --creator billing-cron\n"
               "\n"
               "  --json               print {\"_id\": {\"$oid\": ID}, \"created\": true}; created is\n"
               "                       false when --unique-key was taken and ID is the holder's\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks enqueue --queue general --type echo --params '{\"a\": 1}'\n"
               "  id=$(mtaskctl --db tasks enqueue --queue reports --type pdf --delay 1h)\n"
               "  mtaskctl --db tasks enqueue --queue reports --type pdf --cron '0 6 * * 1-5' \\\n"
               "          --timezone Europe/Berlin --unique-key weekday-report\n");
      break;
   case CMD_SCHEDULES:
      fprintf (out,
               "Usage: mtaskctl [connection] schedules [--queue Q] [--json]\n"
               "\n"
               "Lists the repeating tasks in DB.tasks that are live (WAITING, CREATED or\n"
               "WORK_IN_PROGRESS, with 'repeat' or 'cron'), soonest next run first: the\n"
               "series (the id of its first run), type, queue, rule, next run (UTC), until,\n"
               "status and the id of the task that stands for the next run.\n"
               "\n"
               "  --queue Q   only tasks of queue Q             --queue reports\n"
               "  --json      one task document per line, with \"rule\" (as the table shows\n"
               "              it) and \"next_run\" (a date, or null when due now) added\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks schedules\n"
               "  mtaskctl --db tasks schedules --queue reports --json\n");
      break;
   case CMD_PURGE:
      fprintf (out,
               "Usage: mtaskctl [connection] purge --older-than DURATION [--status LIST]\n"
               "                [--from tasks|completed_tasks|both] [--dry-run] [--json]\n"
               "\n"
               "Deletes ended tasks (FINISHED, FAILED, CANCELLED) whose 'finished' is more than\n"
               "DURATION ago. Live tasks (WAITING, CREATED, WORK_IN_PROGRESS) are never\n"
               "purged, nor, in DB.tasks, tasks of staged groups (their group deletes them)\n"
               "or an ended run of a repeating task whose next run is not created yet.\n"
               "Prints 'purged N ended task(s) older than DURATION from WHERE'.\n"
               "\n"
               "  --older-than DURATION  seconds, or a number with a unit s, m, h, d (required)\n"
               "                           --older-than 30d   --older-than 12h\n"
               "  --status LIST          only these, comma-separated: " ENDED_LIST "\n"
               "                         (default: all three)   --status FAILED,CANCELLED\n"
               "  --from WHERE           tasks, completed_tasks (the archive) or both\n"
               "                         (default: both)         --from completed_tasks\n"
               "  --dry-run              count them, delete nothing: 'would purge N ...'\n"
               "  --json                 print {\"purged\": N, \"dry_run\": true or false}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks purge --older-than 30d --dry-run\n"
               "  mtaskctl --db tasks purge --older-than 7d --status FINISHED --from tasks\n");
      break;
   case CMD_RETENTION:
      fprintf (out,
               "Usage: mtaskctl [connection] retention [--collection tasks|completed_tasks]\n"
               "                --ttl DURATION | --off [--json]\n"
               "\n"
               "Sets how long MongoDB keeps ended tasks: a TTL index 'mtask_ttl' on 'finished'\n"
               "makes the server delete each task DURATION after it ended (tasks that have not\n"
               "ended have no 'finished' and stay). --ttl replaces an earlier index; --off\n"
               "drops it. On mongo-java-server (the dev database) the index is kept but never\n"
               "deletes anything: use 'mtaskctl purge' there. Unlike purge, a TTL index on\n"
               "DB.tasks also deletes ended tasks of staged groups and an ended run of a\n"
               "repeating task whose next run is not created yet: prefer completed_tasks.\n"
               "\n"
               "  --collection C    tasks or completed_tasks (the archive; the default)\n"
               "                      --collection tasks\n"
               "  --ttl DURATION    whole seconds, or a number with a unit s, m, h, d\n"
               "                      --ttl 30d   --ttl 86400\n"
               "  --off             drop the TTL index: ended tasks stay until purged\n"
               "  --json            print {\"collection\": C, \"ttl_seconds\": N or null,\n"
               "                    \"previous_ttl_seconds\": N or null}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks retention --ttl 90d\n"
               "  mtaskctl --db tasks retention --collection tasks --off\n");
      break;
   case CMD_LS:
      fprintf (out,
               "Usage: mtaskctl [connection] ls [--queue Q] [--status S] [--type T] [--limit N]\n"
               "                [--archive] [--json]\n"
               "\n"
               "Lists tasks in DB.tasks, newest 'created' first: id, queue, type, status,\n"
               "attempts, created (UTC) and the worker_pid of the worker holding it.\n"
               "\n"
               "  --archive    list the archive, DB.completed_tasks, instead\n"
               "  --queue Q    only tasks of queue Q             --queue general\n"
               "  --status S   only tasks in status S, one of    --status FAILED\n"
               "               " STATUS_LIST "\n"
               "  --type T     only tasks of type T              --type echo\n"
               "  --limit N    at most N tasks; 0 = all (default: 20)   --limit 100\n"
               "  --json       one task document per line, relaxed extended JSON\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks ls --status FAILED --limit 5\n"
               "  mtaskctl --db tasks ls --queue general --json\n");
      break;
   case CMD_SHOW:
      fprintf (out,
               "Usage: mtaskctl [connection] show ID\n"
               "\n"
               "Prints the whole task document as relaxed extended JSON, on one line:\n"
               "params, result, error, status_message and every other field. A task not\n"
               "in DB.tasks is looked for in the archive, DB.completed_tasks.\n"
               "ID is the 24 hex digits of its _id, as enqueue and ls print it.\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks show 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_RETRY:
   case CMD_CANCEL:
   case CMD_DELETE:
      fprintf (out,
               "Usage: mtaskctl [connection] %s ID [--dry-run] [--json]%s\n"
               "       mtaskctl [connection] %s [--status S] [--queue Q] [--type T] [--since DURATION]\n"
               "                [--dry-run] [--json]%s\n"
               "\n",
               cmd == CMD_RETRY ? "retry" : cmd == CMD_CANCEL ? "cancel" : "delete",
               cmd == CMD_DELETE ? " [--force]" : "",
               cmd == CMD_RETRY ? "retry" : cmd == CMD_CANCEL ? "cancel" : "delete",
               cmd == CMD_DELETE ? " [--force]" : "");
      if (cmd == CMD_RETRY) {
         fprintf (out,
                  "Runs a FAILED or CANCELLED task again: back to CREATED, due now, with a\n"
                  "fresh retry budget; its last error stays in 'errors'. An archived task\n"
                  "moves back into DB.tasks. Refused for any other status, and when another\n"
                  "live task holds its unique_key.\n");
      } else if (cmd == CMD_CANCEL) {
         fprintf (out,
                  "A CREATED or WAITING task becomes CANCELLED, 'finished' set and its\n"
                  "unique_key let go (a repeating series ends). A WORK_IN_PROGRESS task is\n"
                  "asked to stop: its worker sees it within a third of the lease, the plugin's\n"
                  "mt_task_should_stop() turns true, an isolated child (--isolate fork) is\n"
                  "killed after the worker's grace; it ends CANCELLED. Ended tasks are refused.\n");
      } else {
         fprintf (out,
                  "Deletes ended tasks (FINISHED, FAILED, CANCELLED), in DB.tasks and in the\n"
                  "archive, DB.completed_tasks. A live task is refused unless --force.\n");
      }
      fprintf (out,
               "Both DB.tasks and DB.completed_tasks are searched. Each task is acted on\n"
               "only in the status it was read in. One line a task acted on: id,\n"
               "collection, status, outcome; each refusal on stderr with its reason. Exit 1\n"
               "when the task given by ID is refused or not found.\n"
               "\n"
               "  --status S         only tasks in status S, one of " STATUS_LIST "\n"
               "  --queue Q          only tasks of queue Q\n"
               "  --type T           only tasks of type T\n"
               "  --since DURATION   only tasks ended (or, not ended, created) within it:\n"
               "                     whole seconds or a number with a unit s, m, h, d   --since 1h\n"
               "  --dry-run          say what would be done; change nothing\n");
      if (cmd == CMD_DELETE) {
         fprintf (out, "  --force            delete live tasks too (a running one's outcome is then lost)\n");
      }
      fprintf (out,
               "  --json             one document a task: {_id, collection, status, outcome, reason}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks %s --status FAILED --since 1h --dry-run\n"
               "  mtaskctl --db tasks %s 6553f1c2a4e0b1d2c3f40a17\n",
               cmd == CMD_RETRY ? "retry" : cmd == CMD_CANCEL ? "cancel" : "delete",
               cmd == CMD_RETRY ? "retry" : cmd == CMD_CANCEL ? "cancel" : "delete");
      break;
   case CMD_LOCKS:
      fprintf (out,
               "Usage: mtaskctl [connection] locks [--json]\n"
               "\n"
               "Lists the account locks in DB.locks, by account: the task holding each one,\n"
               "its worker and attempt, since when, and whether that run is still going on.\n"
               "A 'stale' lock belongs to a run that is over: the next task to lock the\n"
               "account takes it over.\n"
               "\n"
               "  --json   one lock document per line, with \"state\": \"held\" or \"stale\"\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks locks\n");
      break;
   case CMD_STATS:
      fprintf (out,
               "Usage: mtaskctl [connection] stats [--archive] [--json]\n"
               "\n"
               "Counts the tasks in DB.tasks by queue and status, then counts the CREATED\n"
               "tasks by type: a type that keeps waiting may be one that no running worker\n"
               "has a plugin for.\n"
               "\n"
               "Then the backlog by queue: DUE (CREATED, due now), DELAYED (a first run not\n"
               "due yet), RETRYING (a retry not due yet), RUNNING, and OLDEST DUE, how long\n"
               "the oldest due task has waited (the queue's latency); and the queues and\n"
               "task types with waiting tasks that no running worker serves.\n"
               "\n"
               "  --archive  count the archive, DB.completed_tasks, instead (no backlog then)\n"
               "  --json   one document: {\"queues\": {Q: {STATUS: n}}, \"waiting_by_type\": {T: n},\n"
               "           \"backlog\": [{\"queue\": Q, \"due\": n, \"delayed\": n, \"retrying\": n,\n"
               "           \"running\": n, \"oldest_due_age_ms\": MS}], \"unserved_queues\": [Q],\n"
               "           \"unserved_types\": [{\"queue\": Q, \"type\": T}]}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks stats\n");
      break;
   case CMD_GROUP_CREATE:
      fprintf (out,
               "Usage: mtaskctl [connection] group create [--description TEXT] [--keep SECS] [--json]\n"
               "\n"
               "Creates a staged group in DB.groups, pending, and prints its id (24 hex\n"
               "digits). Add tasks to its stages with 'group add', then 'group start' it:\n"
               "stage N+1 starts when every task of stage N has ended. When the last stage\n"
               "is complete the group, its stages and its tasks are deleted, or kept for\n"
               "--keep seconds.\n"
               "\n"
               "  --description TEXT  what the group is for (default: empty)\n"
               "                        --description 'nightly import'\n"
               "  --keep SECS         keep the complete group this long before deleting it\n"
               "                      (default: 0, deleted at once)   --keep 86400\n"
               "  --json              print {\"_id\": {\"$oid\": ID}} instead of the bare id\n"
               "\n"
               "Example:\n"
               "  group=$(mtaskctl --db tasks group create --description 'nightly import' --keep 3600)\n");
      break;
   case CMD_GROUP_ADD:
      fprintf (out,
               "Usage: mtaskctl [connection] group add GROUP_ID --stage N --queue Q --type T\n"
               "                [--params JSON] [--priority N] [--max-attempts N] [--delay SECS]\n"
               "                [--json]\n"
               "\n"
               "Adds a task to stage N of the group (the stage is created when it is new)\n"
               "and prints the task's id. The task is WAITING until its stage starts, or\n"
               "CREATED at once when that stage is running already. A complete stage or\n"
               "group takes no more tasks.\n"
               "\n"
               "  --stage N          the stage: 1, 2, ... (required)          --stage 2\n"
               "  --queue Q          the queue a worker serves (required)     --queue general\n"
               "  --type T           the task type (required)                 --type echo\n"
               "  --params JSON      the task's input, a JSON object (default: {})\n"
               "                       --params '{\"file\": \"a.csv\"}'\n"
               "  --priority N       higher runs first (default: 0)           --priority 10\n"
               "  --max-attempts N   the retry budget                         --max-attempts 3\n"
               "  --delay SECS       not started before SECS seconds from now --delay 90\n"
               "  --json             print {\"_id\": {\"$oid\": ID}} instead of the bare id\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group add \"$group\" --stage 1 --queue general --type import\n"
               "  mtaskctl --db tasks group add \"$group\" --stage 2 --queue general --type report\n");
      break;
   case CMD_GROUP_START:
      fprintf (out,
               "Usage: mtaskctl [connection] group start GROUP_ID [--json]\n"
               "\n"
               "Starts the group's first stage that is not complete: its WAITING tasks\n"
               "become CREATED, for the workers to claim. The stages after it start by\n"
               "themselves, each when the one before has ended. A group with no tasks is\n"
               "not started (it would complete, and go, at once). Starting a running group\n"
               "again is harmless.\n"
               "\n"
               "  --json   print {\"_id\": ..., \"status\": S, \"deleted\": B, \"stage\": N or null}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group start 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_GROUP_LS:
      fprintf (out,
               "Usage: mtaskctl [connection] group ls [--json]\n"
               "\n"
               "Lists the groups in DB.groups, newest first: id, status (pending, running,\n"
               "complete), created (UTC), how many stages, the current stage (the first not\n"
               "complete) and the description.\n"
               "\n"
               "  --json   one group document per line, with \"stage_count\" and\n"
               "           \"current_stage\" (a number, or null) added\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group ls\n");
      break;
   case CMD_GROUP_SHOW:
      fprintf (out,
               "Usage: mtaskctl [connection] group show GROUP_ID [--json]\n"
               "\n"
               "Prints the group, then its stages: number, status, total and done (the\n"
               "stage's own count of its tasks and of those ended), its tasks counted by\n"
               "status, and when it started and completed. A stage whose tasks exist but\n"
               "whose document does not shows as 'missing': 'group clean' repairs it.\n"
               "\n"
               "  --json   one document: {\"group\": {...}, \"stages\": [{..., \"tasks\": {STATUS: n}}]}\n"
               "           (the stages without their done_ids list)\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group show 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_GROUP_CLEAN:
      fprintf (out,
               "Usage: mtaskctl [connection] group clean [--purge --yes] [--json]\n"
               "\n"
               "Without --purge: repairs orphans, the staged tasks whose group or stage\n"
               "document is gone (recreated from their tasks), and lets their groups go on.\n"
               "Prints how many groups and stages it repaired.\n"
               "\n"
               "  --purge   instead, delete every group, every stage and every staged task\n"
               "            in the database, running ones too; prints how many tasks went\n"
               "  --yes     confirms --purge, which does nothing without it\n"
               "  --json    print {\"repaired\": n} or {\"purged_tasks\": n}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks group clean\n"
               "  mtaskctl --db tasks group clean --purge --yes\n");
      break;
   case CMD_SYNC_STAGE:
      fprintf (out,
               "Usage: mtaskctl [connection] sync stage --name NAME --callable TYPE --queue Q\n"
               "                [--task TYPE] [--next STAGE_ID] [--params JSON] [--json]\n"
               "\n"
               "Creates a synchronizer stage in DB.stages and prints its id (24 hex digits).\n"
               "When a synchronizer begins the stage it enqueues a task of type --callable on\n"
               "--queue; the stage is complete when that queue has no CREATED, WAITING or\n"
               "running task left. It then closes the newest running task of type --task,\n"
               "if given, and the synchronizer goes on to --next, or back to stand-by.\n"
               "Create the last stage first: --next names one that exists.\n"
               "\n"
               "  --name NAME      what the stage is called (required)     --name import\n"
               "  --callable TYPE  the task type it enqueues (required)    --callable fetch_files\n"
               "  --queue Q        the queue it enqueues on and waits to drain (required)\n"
               "                     --queue imports\n"
               "  --task TYPE      the running task type it closes when complete\n"
               "                     --task import_window\n"
               "  --next STAGE_ID  the stage after it (default: none, the last)\n"
               "                     --next 6553f1c2a4e0b1d2c3f40a17\n"
               "  --params JSON    given to the callable, a JSON object  --params '{\"day\": 1}'\n"
               "  --json           print {\"_id\": {\"$oid\": ID}} instead of the bare id\n"
               "\n"
               "Example:\n"
               "  last=$(mtaskctl --db tasks sync stage --name report --callable build_report --queue reports)\n"
               "  first=$(mtaskctl --db tasks sync stage --name import --callable fetch_files \\\n"
               "          --queue imports --next \"$last\")\n");
      break;
   case CMD_SYNC_CREATE:
      fprintf (out,
               "Usage: mtaskctl [connection] sync create NAME --start-stage STAGE_ID [--json]\n"
               "\n"
               "Creates the synchronizer NAME in DB.synchronizers, on stand-by, to begin at\n"
               "the stage STAGE_ID ('sync stage' printed it). Names are unique.\n"
               "\n"
               "  --start-stage STAGE_ID  its first stage (required)\n"
               "                            --start-stage 6553f1c2a4e0b1d2c3f40a17\n"
               "  --json                  print the synchronizer's document\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync create nightly --start-stage \"$first\"\n");
      break;
   case CMD_SYNC_START:
      fprintf (out,
               "Usage: mtaskctl [connection] sync start NAME [--now] [--json]\n"
               "\n"
               "Asks the workers to begin the synchronizer: a running worker begins it at\n"
               "its next upkeep tick (the seed's start_synchros), once it is on stand-by.\n"
               "\n"
               "  --now    begin it here and now instead: its start stage's callable is\n"
               "           enqueued at once; fails if it is running already\n"
               "  --json   print the synchronizer's document afterwards\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync start nightly\n"
               "  mtaskctl --db tasks sync start nightly --now\n");
      break;
   case CMD_SYNC_CHECK:
      fprintf (out,
               "Usage: mtaskctl [connection] sync check NAME [--json]\n"
               "\n"
               "Checks whether the running synchronizer's stage is complete (its queue has\n"
               "drained) and if so advances it, as a worker's upkeep does: prints\n"
               "'advanced' or 'not complete yet'.\n"
               "\n"
               "  --json   print the synchronizer's document, with \"advanced\": true or false\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync check nightly\n");
      break;
   case CMD_SYNC_LS:
      fprintf (out,
               "Usage: mtaskctl [connection] sync ls [--json]\n"
               "\n"
               "Lists the synchronizers in DB.synchronizers by name: status (stand_by,\n"
               "running), the stage it is at, its start stage (names from DB.stages) and\n"
               "when it last started and finished (UTC).\n"
               "\n"
               "  --json   one synchronizer document per line, with \"actual_stage_name\" and\n"
               "           \"start_stage_name\" added (null when there is no such stage)\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks sync ls\n");
      break;
   case CMD_POOL_SET:
      fprintf (out,
               "Usage: mtaskctl [connection] pool set NAME --size N [--timeout SECS] [--json]\n"
               "\n"
               "Declares the pool NAME in DB.pools, or resizes it, and creates its slots in\n"
               "DB.slots. At most N tasks of the pool run at once, across all workers; a task\n"
               "is in the pool by its own 'pool' field or its plugin's. The workers see the\n"
               "new size at their next claims. Shrinking stops no running task: a slot at or\n"
               "above the new size stays held until its task ends, then is no longer used.\n"
               "Prints 'pool NAME: N slots, timeout S s' (or 'timeout unchanged').\n"
               "\n"
               "  --size N        how many of its tasks may run at once, 1 to 100000 (required)\n"
               "                    --size 3\n"
               "  --timeout SECS  a slot not kept alive for SECS seconds is taken back and its\n"
               "                  task fails with a timeout (or is retried); 0 = no timeout\n"
               "                  (default: 0 for a new pool; a resize without --timeout\n"
               "                  keeps the pool's; at most 366 days)   --timeout 300\n"
               "  --json          print the pool's document: {\"_id\": NAME, \"size\": N,\n"
               "                  \"timeout_seconds\": S}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks pool set reports --size 3 --timeout 300\n"
               "  mtaskctl --db tasks pool set reports --size 1\n");
      break;
   case CMD_SLOTS:
      fprintf (out,
               "Usage: mtaskctl [connection] slots [--json]\n"
               "\n"
               "Lists the pools in DB.pools by name: size, timeout and how many of their\n"
               "slots are in use; then each held slot in DB.slots: pool, index, the task\n"
               "holding it, its worker, since when (acquired) and its last keepalive (UTC).\n"
               "A slot at or above its pool's size that is still held (the pool shrank while\n"
               "its task ran) is listed too, marked '(beyond size)', and not counted in\n"
               "IN_USE.\n"
               "\n"
               "  --json   one document: {\"pools\": [{\"_id\": NAME, \"size\": N,\n"
               "           \"timeout_seconds\": S, \"in_use\": n, \"slots\": [SLOT, ...]}]}, each\n"
               "           SLOT a held slot's document with \"beyond_size\": true or false\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks slots\n"
               "  mtaskctl --db tasks slots --json\n");
      break;
   case CMD_SLOT_KEEPALIVE:
      fprintf (out,
               "Usage: mtaskctl [connection] slot keepalive TASK_ID [--json]\n"
               "\n"
               "Keeps the slot that task TASK_ID holds alive, as the task itself does with\n"
               "mt_task_keepalive: its pool's timeout counts again from now, and its worker\n"
               "calls the plugin's on_keepalive. Fails (exit 1) when the task holds no slot.\n"
               "\n"
               "  --json   print the slot's document afterwards\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks slot keepalive 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_SLOT_STOP:
      fprintf (out,
               "Usage: mtaskctl [connection] slot stop TASK_ID [--json]\n"
               "\n"
               "Stops task TASK_ID, which holds a slot: a running task ends CANCELLED, its\n"
               "worker calls the plugin's on_stop, and its slot is freed for the next task of\n"
               "the pool. A task that is no longer running just gives its slot back. Fails\n"
               "(exit 1) when the task holds no slot.\n"
               "\n"
               "  --json   print {\"_id\": TASK_ID, \"slots\": [SLOT_ID, ...], \"was\": STATUS,\n"
               "           \"status\": STATUS}: the slots freed, the task's status before and after\n"
               "           (null when there is no such task)\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks slot stop 6553f1c2a4e0b1d2c3f40a17\n");
      break;
   case CMD_WORKERS:
      fprintf (out,
               "Usage: mtaskctl [connection] workers [--json]\n"
               "\n"
               "Lists the workers in DB.workers: id, host, pid, queues, concurrency, state,\n"
               "the age of the last heartbeat, and the tasks each runs now (read from\n"
               "DB.tasks). The state is judged from the heartbeat's age against the\n"
               "worker's lease, not from what it last wrote:\n"
               "  running    claims and runs tasks\n"
               "  quiet      claims nothing new, finishes what runs, stays up\n"
               "  stopping   claims nothing new; running tasks get the grace, then go back\n"
               "  stopped    stopped cleanly\n"
               "  lost       no heartbeat for longer than its lease: killed, hung or cut off;\n"
               "             its tasks are taken back\n"
               "Stopped and lost workers are forgotten a day later.\n"
               "\n"
               "  --json   one worker document per line, with \"state\", \"heartbeat_age_ms\"\n"
               "           and \"running\": [{\"_id\", \"type\", \"queue\", \"started\"}]\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks workers\n");
      break;
   case CMD_WORKER_QUIET:
      fprintf (out,
               "Usage: mtaskctl [connection] worker quiet ID [--json]\n"
               "\n"
               "Asks worker ID to be quiet, as SIGTSTP does: it claims nothing new, finishes\n"
               "what runs and stays up, until stopped. The request goes through its registry\n"
               "document: the worker follows at its next heartbeat (a third of its lease),\n"
               "wherever it runs. Fails (exit 1) when the worker is stopped, lost or unknown.\n"
               "\n"
               "  --json   print {\"worker\": ID, \"command\": \"quiet\", \"state\": STATE}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks worker quiet worker-1\n");
      break;
   case CMD_WORKER_STOP:
      fprintf (out,
               "Usage: mtaskctl [connection] worker stop ID [--grace SECS] [--json]\n"
               "\n"
               "Asks worker ID to stop, as SIGTERM does: it claims nothing new, running tasks\n"
               "get the grace period to finish, then go back to CREATED, and the process\n"
               "exits 0. The request goes through its registry document: the worker follows\n"
               "at its next heartbeat (a third of its lease), wherever it runs. Fails (exit\n"
               "1) when the worker is stopped, lost or unknown.\n"
               "\n"
               "  --grace SECS   the grace for this stop, 0 to 86400 (default: the worker's\n"
               "                 --grace)                           --grace 120\n"
               "  --json         print {\"worker\": ID, \"command\": \"stop\", \"state\": STATE}\n"
               "\n"
               "Example:\n"
               "  mtaskctl --db tasks worker stop worker-1 --grace 60\n");
      break;
   default:
      if (family && !strcmp (family, "worker")) {
         fprintf (out,
                  "Usage: mtaskctl [connection] workers\n"
                  "       mtaskctl [connection] worker quiet|stop ID\n"
                  "\n"
                  "  workers             the workers, their state and what they run\n"
                  "  worker quiet ID     claim nothing new, finish what runs, stay up\n"
                  "  worker stop ID      stop as on SIGTERM (--grace SECS)\n"
                  "\n"
                  "'mtaskctl worker COMMAND --help' for each one's flags; 'mtaskctl --help' for\n"
                  "the connection flags.\n");
         break;
      }
      if (family && (!strcmp (family, "pool") || !strcmp (family, "slot"))) {
         fprintf (out,
                  "Usage: mtaskctl [connection] pool set NAME --size N [--timeout SECS]\n"
                  "       mtaskctl [connection] slots\n"
                  "       mtaskctl [connection] slot keepalive|stop TASK_ID\n"
                  "\n"
                  SLOT_COMMANDS
                  "\n"
                  "'mtaskctl %s COMMAND --help' for each one's flags; 'mtaskctl --help' for\n"
                  "the connection flags.\n"
                  "\n"
                  "Example:\n"
                  "  mtaskctl --db tasks pool set reports --size 3 --timeout 300\n",
                  family);
         break;
      }
      if (family && !strcmp (family, "group")) {
         fprintf (out,
                  "Usage: mtaskctl [connection] group COMMAND [flags]\n"
                  "\n"
                  GROUP_COMMANDS
                  "\n"
                  "'mtaskctl group COMMAND --help' for each one's flags; 'mtaskctl --help' for\n"
                  "the connection flags.\n");
         break;
      }
      if (family && !strcmp (family, "sync")) {
         fprintf (out,
                  "Usage: mtaskctl [connection] sync COMMAND [flags]\n"
                  "\n"
                  SYNC_COMMANDS
                  "\n"
                  "'mtaskctl sync COMMAND --help' for each one's flags; 'mtaskctl --help' for\n"
                  "the connection flags.\n");
         break;
      }
      fprintf (out,
               "Usage: mtaskctl [connection] COMMAND [flags]\n"
               "       mtaskctl [connection] group|sync|pool|slot COMMAND [flags]\n"
               "\n"
               "Queries and enqueues tasks in the MongoDB collection DB.tasks, schedules\n"
               "repeating ones, runs staged groups and synchronizers, manages concurrency\n"
               "slots, and purges ended tasks.\n"
               "\n"
               "Commands ('mtaskctl COMMAND --help' for each one's flags):\n"
               "  enqueue   insert a task and print its id\n"
               "  ls        list tasks, newest first\n"
               "  show ID   one task as JSON\n"
               "  stats     counts by queue and status, and waiting tasks by type\n"
               "  retry     a FAILED or CANCELLED task again: retry ID, or --status FAILED\n"
               "  cancel    a waiting task, or ask a running one to stop: cancel ID, or a filter\n"
               "  delete    an ended task (or any with --force): delete ID, or a filter\n"
               "  locks     account locks: who holds what, since when\n"
               "  workers   the workers, their state and what they run\n"
               "  worker quiet|stop ID   stop claiming, or stop, through the registry\n"
               "\n"
               SCHEDULING_COMMANDS
               "\n"
               GROUP_COMMANDS
               "\n"
               SYNC_COMMANDS
               "\n"
               SLOT_COMMANDS
               "\n"
               "Connection (as mtask-worker's; before or after the command):\n"
               "  --db NAME    database holding the 'tasks' collection; required unless\n"
               "               --uri names one                  --db tasks\n"
               "  --host HOST  MongoDB host (default: localhost)  --host db1.example\n"
               "  --port PORT  MongoDB port (default: 27017)      --port 27018\n"
               "  --uri URI    a full MongoDB URI instead of --host/--port, for replica sets,\n"
               "               authentication and TLS   --uri 'mongodb://db1,db2/tasks?replicaSet=rs0'\n"
               "               (others see a command line: a password goes in --uri-file or MTASK_URI)\n"
               "  --uri-file FILE  read the URI from FILE, one line; refused if its group or\n"
               "               others may read it (chmod 600)   --uri-file /etc/mtask/uri\n"
               "  (default: the URI in $MTASK_URI, when set and no --host/--port is given)\n"
               "\n"
               "Output:\n"
               "  --json       machine-readable: relaxed extended JSON, one document a line\n"
               "  --help       this help, or a command's: mtaskctl enqueue --help,\n"
               "               mtaskctl group add --help\n"
               "  --version    print the version\n"
               "\n"
               "Exit status: 0 done; 1 the database failed, or the task, group, stage,\n"
               "synchronizer or slot named was not found or cannot do that now; 2 bad usage.\n"
               "\n"
               "Examples:\n"
               "  mtaskctl --db tasks enqueue --queue general --type echo --params '{\"a\": 1}'\n"
               "  mtaskctl --db tasks ls --status FAILED\n"
               "  mtaskctl --host db1.example --db tasks stats --json\n"
               "  mtaskctl --db tasks enqueue --queue reports --type pdf --cron '0 6 * * *'\n"
               "  mtaskctl --db tasks purge --older-than 30d\n"
               "  mtaskctl --db tasks group show 6553f1c2a4e0b1d2c3f40a17\n"
               "  mtaskctl --db tasks sync start nightly\n"
               "  mtaskctl --db tasks pool set reports --size 3 --timeout 300\n");
      break;
   }
}
