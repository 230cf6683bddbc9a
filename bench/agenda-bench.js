// Agenda's side of bench/run: the same no-op work on the same server.
// Agenda itself is installed by bench/run into a temporary directory and
// found through NODE_PATH; nothing of it is kept in the repository.
//
//   node agenda-bench.js throughput --uri URI --db DB --jobs N --settings defaults|fastest
//   node agenda-bench.js worker     --uri URI --db DB --expect N --settings defaults|fastest [--timeout S]
//   node agenda-bench.js produce    --uri URI --db DB --rate R --seconds S
//   node agenda-bench.js produce    --uri URI --db DB --every MS --count N
//
// throughput: inserts N jobs of a no-op job type in one insertMany, shaped
// as Agenda's own save() writes them, then runs them in this process and
// prints one JSON object once all are done.
// worker: prints READY once connected, runs jobs as they come, and after N
// prints one JSON object with the latency from enqueue to start.
// produce: enqueues R jobs a second for S seconds with agenda.now() from a
// process that runs no jobs, as an application would; or one job every MS
// milliseconds, N in all (the wake-up from idle).
'use strict';

const { Agenda } = require('agenda');

// Agenda's defaults, and its fastest settings for this work, found by trying
// (docs/benchmarks.md): poll every 100 ms (default 5 s), enough
// concurrency that running is never the limit (defaults 5 per job type, 20
// in all), and no lock limit (the default: one poll locks every due job).
// Polling more often than that is slower: every tick of processEvery starts
// another chain of lock queries while the last one still runs (5000 jobs at
// processEvery 10 ms: about 95 jobs/s against 165).
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

function parseArgs(argv) {
  const args = { mode: argv[0] };
  for (let i = 1; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument '${argv[i]}'`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const key of ['uri', 'db']) {
    if (!args[key]) {
      throw new Error(`--${key} is required`);
    }
  }
  return args;
}

function address(args) {
  return args.uri.replace(/\/?$/, '/') + args.db;
}

async function connect(args, settings) {
  const agenda = new Agenda({
    db: { address: address(args), collection: 'agendaJobs' },
    ...settings,
  });
  await new Promise((resolve, reject) => {
    agenda.once('ready', resolve);
    agenda.once('error', reject);
  });
  return agenda;
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

function settingsOf(args) {
  if (args.settings && args.settings.startsWith('{')) {
    return JSON.parse(args.settings); // for trying other settings by hand
  }
  const settings = SETTINGS[args.settings || 'defaults'];
  if (!settings) {
    throw new Error(`--settings must be one of ${Object.keys(SETTINGS).join(', ')}`);
  }
  return settings;
}

// Resolves once `n` jobs have completed in `agenda`.
function completions(agenda, n, timeoutS) {
  return new Promise((resolve, reject) => {
    let done = 0;
    const timer = setTimeout(
      () => reject(new Error(`only ${done} of ${n} jobs completed after ${timeoutS} s`)),
      timeoutS * 1000,
    );
    agenda.on('complete', () => {
      done += 1;
      if (done === n) {
        clearTimeout(timer);
        resolve(done);
      }
    });
    agenda.on('fail', (error, job) => {
      clearTimeout(timer);
      reject(new Error(`job ${job.attrs._id} failed: ${error.message}`));
    });
  });
}

async function throughput(args) {
  const n = Number(args.jobs);
  const agenda = await connect(args, settingsOf(args));
  agenda.define('noop', async () => {});

  // The documents save() would write for agenda.now('noop', {n: i}).
  const docs = [];
  for (let i = 0; i < n; i++) {
    const job = agenda.create('noop', { n: i });
    const props = job.toJSON();
    delete props._id;
    props.lastModifiedBy = agenda._name;
    docs.push(props);
  }
  await agenda._collection.insertMany(docs);

  const done = completions(agenda, n, Number(args.timeout || 600));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await agenda.start();
  await done;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await agenda.stop();

  const jobs = await agenda._collection
    .find({}, { projection: { lastFinishedAt: 1, failedAt: 1 } })
    .toArray();
  const finished = jobs.filter((j) => j.lastFinishedAt && !j.failedAt);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  // From start() to the last completion: Agenda locks every due job before
  // it runs the first (lockLimit 0), so the span of lastRunAt..lastFinishedAt
  // would leave the locking out.
  const result = {
    settings: args.settings || 'defaults',
    jobs: jobs.length,
    finished: finished.length,
    seconds: Math.round(wall * 1000) / 1000,
    per_second: Math.round((finished.length / wall) * 10) / 10,
    cpu_s: Math.round(cpuS * 1000) / 1000,
    cpu_per_10k_s: Math.round((cpuS / n) * 10000 * 1000) / 1000,
    max_rss_kb: process.resourceUsage().maxRSS,
  };
  await agenda.close({ force: true });
  return result;
}

async function worker(args) {
  const n = Number(args.expect);
  const agenda = await connect(args, settingsOf(args));
  agenda.define('noop', async () => {});
  const done = completions(agenda, n, Number(args.timeout || 600));
  await agenda.start();
  process.stdout.write('READY\n');
  await done;
  await agenda.stop();

  const jobs = await agenda._collection
    .find({}, { projection: { lastRunAt: 1, lastFinishedAt: 1, data: 1 } })
    .toArray();
  const latency = jobs
    .filter((j) => j.lastRunAt && j.data && j.data.t)
    .map((j) => j.lastRunAt.getTime() - new Date(j.data.t).getTime());
  const result = {
    settings: args.settings || 'defaults',
    jobs: jobs.length,
    started: latency.length,
    latency_ms: latencySummary(latency),
  };
  await agenda.close({ force: true });
  return result;
}

async function produce(args) {
  const every = args.every ? Number(args.every) : 1000 / Number(args.rate);
  const n = args.every ? Number(args.count) : Number(args.rate) * Number(args.seconds);
  // Not started: this instance only enqueues, like an application would.
  const agenda = await connect(args, {});
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
  const result = {
    enqueued: n,
    seconds: Math.round(performance.now() - t0) / 1000,
    behind_max_ms: Math.round(behind * 10) / 10,
  };
  await agenda.close({ force: true });
  return result;
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
    process.stderr.write(`agenda-bench: ${error.message}\n`);
    process.exit(1);
  },
);
