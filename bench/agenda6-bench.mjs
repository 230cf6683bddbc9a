// The newest Agenda's side of bench/run: Agenda 6 with its MongoDB backend
// (@agendajs/mongo-backend), polling alone or woken by that backend's
// change-stream notification channel. Agenda 6 is an ES module, so this is
// a file of its own beside agenda-bench.js (Agenda 5). Both packages are
// installed by bench/run into a temporary directory, given as --modules.
//
//   node agenda6-bench.mjs throughput --modules DIR --uri URI --db DB --jobs N --channel none|change-stream
//                                     [--settings fastest|defaults]
//   node agenda6-bench.mjs worker     --modules DIR --uri URI --db DB --expect N --channel none|change-stream
//                                     [--settings fastest|defaults]
//   node agenda6-bench.mjs produce    --modules DIR --uri URI --db DB --every MS --count N
//
// throughput: enqueues N no-op jobs with now() before start() (not timed),
// then runs them in this process and prints one JSON object once all are done.
// worker: prints READY once started, runs jobs as they come, and after N
// prints one JSON object with the latency from enqueue to start.
// produce: enqueues one job every MS milliseconds, N in all, with now()
// from a process that runs no jobs, as an application would.
//
// Settings: fastest (the default here) is processEvery 100 ms,
// concurrency 100, no lock limit: the fastest of Agenda 5 (agenda-bench.js).
// defaults is Agenda's own (processEvery 5 s). With the channel, a job saved
// by any process is announced to every worker at once, so processEvery only
// matters for jobs the channel misses: the wake-up row uses the defaults, so
// that what wakes the worker is the channel and not a poll.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const args = { mode: argv[0] };
  for (let i = 1; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument '${argv[i]}'`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const key of ['uri', 'db', 'modules']) {
    if (!args[key]) {
      throw new Error(`--${key} is required`);
    }
  }
  return args;
}

// Imports a package from the temporary node_modules (NODE_PATH does not
// apply to ES modules).
async function load(args, name) {
  const require = createRequire(path.join(args.modules, 'node_modules', 'x.js'));
  return import(pathToFileURL(require.resolve(name)).href);
}

const SETTINGS = {
  defaults: {},
  fastest: {
    processEvery: 100,
    defaultConcurrency: 100,
    maxConcurrency: 100,
    lockLimit: 0,
    defaultLockLimit: 0,
  },
};

function settingsOf(args) {
  const settings = SETTINGS[args.settings || 'fastest'];
  if (!settings) {
    throw new Error(`--settings must be one of ${Object.keys(SETTINGS).join(', ')}`);
  }
  return settings;
}

async function connect(args, settings, channel) {
  const { Agenda } = await load(args, 'agenda');
  const backendModule = await load(args, '@agendajs/mongo-backend');
  const { MongoClient } = await load(args, 'mongodb');
  const client = await MongoClient.connect(args.uri);
  const db = client.db(args.db);
  const config = { backend: new backendModule.MongoBackend({ mongo: db }), ...settings };
  if (channel === 'change-stream') {
    config.notificationChannel = new backendModule.MongoChangeStreamNotificationChannel({ db });
  } else if (channel && channel !== 'none') {
    throw new Error('--channel must be none or change-stream');
  }
  const agenda = new Agenda(config);
  await agenda.ready;
  return { agenda, client, db };
}

function percentile(sorted, p) {
  if (sorted.length === 0) {
    return 0;
  }
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.max(rank, 1) - 1];
}

function latencySummary(values) {
  const sorted = values.slice().sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : 0,
    mean: sorted.length ? Math.round((sum / sorted.length) * 10) / 10 : 0,
  };
}

function completions(agenda, n, timeoutS) {
  return new Promise((resolve, reject) => {
    let done = 0;
    const timer = setTimeout(
      () => reject(new Error(`only ${done} of ${n} jobs completed after ${timeoutS} s`)),
      timeoutS * 1000,
    );
    agenda.on('complete', (job, remote) => {
      if (remote) {
        return; // another process's job, announced by the channel
      }
      done += 1;
      if (done === n) {
        clearTimeout(timer);
        resolve(done);
      }
    });
    agenda.on('fail', (error, job, remote) => {
      if (remote) {
        return;
      }
      clearTimeout(timer);
      reject(new Error(`job ${job.attrs._id} failed: ${error.message || error}`));
    });
  });
}

async function throughput(args) {
  const n = Number(args.jobs);
  const { agenda, client, db } = await connect(args, settingsOf(args), args.channel);
  agenda.define('noop', async () => {});
  for (let i = 0; i < n; i++) {
    await agenda.now('noop', { n: i });
  }
  const done = completions(agenda, n, Number(args.timeout || 600));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await agenda.start();
  await done;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await agenda.stop();
  const jobs = await db.collection('agendaJobs')
    .find({}, { projection: { lastFinishedAt: 1, failedAt: 1 } })
    .toArray();
  const finished = jobs.filter((j) => j.lastFinishedAt && !j.failedAt);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  await client.close(true);
  return {
    channel: args.channel || 'none',
    settings: args.settings || 'fastest',
    jobs: jobs.length,
    finished: finished.length,
    seconds: Math.round(wall * 1000) / 1000,
    per_second: Math.round((finished.length / wall) * 10) / 10,
    cpu_s: Math.round(cpuS * 1000) / 1000,
    cpu_per_10k_s: Math.round((cpuS / n) * 10000 * 1000) / 1000,
    max_rss_kb: process.resourceUsage().maxRSS,
  };
}

async function worker(args) {
  const n = Number(args.expect);
  const { agenda, client, db } = await connect(args, settingsOf(args), args.channel);
  agenda.define('noop', async () => {});
  const done = completions(agenda, n, Number(args.timeout || 600));
  await agenda.start();
  process.stdout.write('READY\n');
  await done;
  await agenda.stop();
  const jobs = await db.collection('agendaJobs')
    .find({}, { projection: { lastRunAt: 1, data: 1 } })
    .toArray();
  const latency = jobs
    .filter((j) => j.lastRunAt && j.data && j.data.t)
    .map((j) => j.lastRunAt.getTime() - new Date(j.data.t).getTime());
  await client.close(true);
  return {
    channel: args.channel || 'none',
    settings: args.settings || 'fastest',
    jobs: jobs.length,
    started: latency.length,
    latency_ms: latencySummary(latency),
  };
}

async function produce(args) {
  const every = Number(args.every);
  const n = Number(args.count);
  // Not started: this instance only enqueues, like an application would.
  // It has the channel too when the workers have it: an application's save
  // is what the channel announces, and a change stream sees every writer.
  const { agenda, client } = await connect(args, {}, args.channel);
  const t0 = performance.now();
  let behind = 0;
  for (let i = 0; i < n; i++) {
    const due = t0 + i * every;
    const wait = due - performance.now();
    if (wait > 0) {
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    behind = Math.max(behind, performance.now() - due);
    await agenda.now('noop', { n: i, t: new Date() });
  }
  await client.close(true);
  return {
    enqueued: n,
    seconds: Math.round(performance.now() - t0) / 1000,
    behind_max_ms: Math.round(behind * 10) / 10,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const modes = { throughput, worker, produce };
  if (!modes[args.mode]) {
    throw new Error(`mode must be one of ${Object.keys(modes).join(', ')}`);
  }
  const result = await modes[args.mode](args);
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`agenda6-bench: ${error.stack || error.message}\n`);
    process.exit(1);
  },
);
