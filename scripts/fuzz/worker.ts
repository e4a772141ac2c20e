import { existsSync } from 'node:fs';
import { generateCase, loadCorpus } from './mutators';
import { runPipeline, type Outcome } from './pipeline';

/*
 * A fuzz worker process: generates the cases it is asked for and runs them. The parent
 * (scripts/fuzz.mjs) watches it for hangs and memory, so nothing here needs a timer.
 */

const MARKER = '/tmp/replens-pwned-marker';

type Request = { type: 'run'; index: number } | { type: 'generate'; index: number; keep?: boolean[] } | { type: 'minimise'; index: number };

type Reply =
  | { type: 'started'; index: number; fixture: string; ops: string[] }
  | { type: 'done'; index: number; fixture: string; ops: string[]; outcome: Outcome; ms: number; cpuMs: number; pwned: boolean }
  | { type: 'generated'; index: number; fixture: string; ops: string[]; bytes: Uint8Array }
  | { type: 'generatorError'; index: number; message: string };

const [fixtures, seedText] = process.argv.slice(2);
const seed = Number(seedText);
const corpus = loadCorpus(fixtures);

function send(reply: Reply): void {
  process.send!(reply);
}

/** Same class thrown from the same place: the identity of a crash. */
function signature(o: Outcome): string {
  return `${o.errorClass}@${o.where?.split(' | ')[0] ?? '?'}`;
}

/** Drops mutations one at a time while the crash stays the same. */
async function minimise(index: number): Promise<void> {
  const first = generateCase(corpus, seed, index);
  const want = signature(await runPipeline(first.bytes, first.seed.path));
  const keep = new Array<boolean>(first.planned).fill(true);
  for (let k = 0; k < keep.length; k++) {
    keep[k] = false;
    const c = generateCase(corpus, seed, index, keep);
    const o = await runPipeline(c.bytes, c.seed.path);
    if (o.kind !== 'crash' || signature(o) !== want) keep[k] = true;
  }
  const c = generateCase(corpus, seed, index, keep);
  send({ type: 'generated', index, fixture: c.seed.name, ops: c.ops, bytes: c.bytes });
}

async function handle(req: Request): Promise<void> {
  if (req.type === 'minimise') return minimise(req.index);
  let c;
  try {
    c = generateCase(corpus, seed, req.index, req.type === 'generate' ? req.keep : undefined);
  } catch (e) {
    send({ type: 'generatorError', index: req.index, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    return;
  }
  if (req.type === 'generate') {
    send({ type: 'generated', index: req.index, fixture: c.seed.name, ops: c.ops, bytes: c.bytes });
    return;
  }
  send({ type: 'started', index: req.index, fixture: c.seed.name, ops: c.ops });
  const started = performance.now();
  const cpu = process.cpuUsage();
  const outcome = await runPipeline(c.bytes, c.seed.path);
  const { user, system } = process.cpuUsage(cpu);
  const ms = performance.now() - started;
  send({ type: 'done', index: req.index, fixture: c.seed.name, ops: c.ops, outcome, ms, cpuMs: (user + system) / 1000, pwned: existsSync(MARKER) });
}

// One request at a time: the parent sends the next only after a reply.
let queue = Promise.resolve();
process.on('message', (req: Request) => {
  queue = queue.then(() => handle(req));
});
process.send!({ type: 'ready' });
