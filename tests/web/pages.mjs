// tests/web/pages.mjs — the web atlas in a real browser (tests/cli_serve.sh).
//
//   node tests/web/pages.mjs STORIES_URL HTML_URL [SCREENSHOT_DIR]
//
// STORIES_URL: serve on stories260K with --model (a token delay set, so a
// stream can be watched in progress); HTML_URL: serve on a synthetic model
// whose vocabulary holds HTML pieces. Prints "ok NAME" or "FAIL NAME: why"
// per check; the shell script counts them. Debian's chromium, driven by
// playwright-core; no browser is ever downloaded.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [STORIES, HTML, SHOTS] = process.argv.slice(2);
let failed = 0;
function check(name, cond, why = '') {
  if (cond) console.log('ok ' + name);
  else { failed++; console.log('FAIL ' + name + (why ? ': ' + why : '')); }
}

async function json(url, opts) { const r = await fetch(url, opts); return r.json(); }

const profile = mkdtempSync(join(tmpdir(), 'neuromap-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1200, height: 900 },
});
ctx.setDefaultTimeout(20000);

// A page that records console errors, page errors, dialogs, and requests
// still in flight.
async function open(url) {
  const page = await ctx.newPage();
  const t = { page, errors: [], dialogs: [], pending: new Set(), requests: 0 };
  page.on('console', m => { if (m.type() === 'error') t.errors.push(m.text()); });
  page.on('pageerror', e => t.errors.push(String(e)));
  page.on('dialog', d => { t.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('request', r => { t.pending.add(r); t.requests++; });
  page.on('requestfinished', r => t.pending.delete(r));
  page.on('requestfailed', r => {
    t.pending.delete(r);
    // Chromium reports a streamed fetch whose body the page read to its end
    // as net::ERR_ABORTED now and then (the renderer lets go of the body
    // before the network layer reports it finished). The steer checks below
    // compare the streamed text with the whole document, so only that case
    // is let through.
    const why = r.failure() && r.failure().errorText;
    if (!(r.url().endsWith('/api/generate') && why === 'net::ERR_ABORTED')) t.errors.push('request failed: ' + r.url() + ' ' + why);
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]');
  return t;
}

// After the page has loaded: nothing in flight, and nothing new for a while
// (no stream, no polling).
async function quiet(name, t) {
  await t.page.waitForTimeout(300);
  const before = t.requests;
  await t.page.waitForTimeout(1200);
  check(name + ': no request left open', t.pending.size === 0, [...t.pending].map(r => r.url()).join(' '));
  check(name + ': no polling after load', t.requests === before, `${t.requests - before} new requests`);
  check(name + ': no console or page errors', t.errors.length === 0, t.errors.join(' | '));
}

// Polls cond (in node: the pages' CSP forbids the eval behind waitForFunction).
async function until(page, cond, ms = 30000) {
  for (const end = Date.now() + ms; Date.now() < end; await page.waitForTimeout(25)) if (await cond()) return;
  throw new Error('timed out waiting for ' + cond);
}

const texts = async (page, sel) => page.$$eval(sel, es => es.map(e => e.textContent));

// What a token of the API should read as on a page: its text; for a piece
// whose bytes are not UTF-8 ("token_bytes"), each character its bytes form,
// and each byte that forms none as its two hex digits.
const fatal = new TextDecoder('utf-8', { fatal: true });
function shownAs(x) {
  if (!x.token_bytes) return x.token;
  const b = Buffer.from(x.token_bytes, 'hex');
  let out = '';
  for (let i = 0; i < b.length;) {
    let ch = null, n = 1;
    for (; n <= 4 && i + n <= b.length && ch === null; n++) {
      try { const s = fatal.decode(b.subarray(i, i + n)); if ([...s].length === 1 && s !== '\0') ch = s; } catch (e) { /* not yet a character */ }
    }
    if (ch !== null) { out += ch; i += n - 1; } else { out += b[i].toString(16).toUpperCase().padStart(2, '0'); i++; }
  }
  return out;
}

try {
  // The home page: summary, one card per layer with the layer's top tokens.
  {
    const info = await json(STORIES + 'api/info');
    const t = await open(STORIES);
    await until(t.page, async () => (await t.page.$$('#layers .card svg')).length === info.atlas.n_layers);
    const layer0 = await json(STORIES + 'api/layer/up/0');
    const shown = await texts(t.page, '#layers .card:first-child .tok');
    check('home: layer 0 card shows its most frequent top tokens', shown.length > 0 && shown[0] === shownAs(layer0.top_tokens[0]), JSON.stringify(shown.slice(0, 3)));
    await quiet('home', t);

    // The search box finds " named".
    await t.page.fill('#search-text', ' named');
    await t.page.selectOption('#search-matrix', 'all');
    await Promise.all([t.page.waitForURL(/\/find\?/), t.page.click('#search button')]);
    await t.page.waitForSelector('body[data-ready="1"]');
    const found = await json(STORIES + 'api/find?' + new URLSearchParams({ text: ' named', matrix: 'all' }));
    const rows = await texts(t.page, '#find-results a');
    const want = found.neurons.map(h => `${h.matrix} ${h.layer}:${h.neuron}`);
    check('search: " named" lists find\'s neurons in order', rows.length === want.length && rows.every((r, i) => r === want[i]), JSON.stringify(rows.slice(0, 3)));
    const heading = await t.page.textContent('h1 .tok');
    check('search: heading shows the token " named"', heading === ' named', JSON.stringify(heading));
    await t.page.close();
  }

  // A neuron page: its tokens, both sides, write side both ways, related.
  {
    const t = await open(STORIES + 'neuron/up/0/140');
    await t.page.waitForSelector('#steer');
    for (const m of ['up', 'gate', 'down']) {
      const doc = await json(STORIES + `api/neuron/${m}/0/140`);
      const shown = await texts(t.page, `#side-${m} .tok`);
      const want = [...doc.top, ...doc.bottom].map(shownAs);
      check(`neuron page: ${m} side shows show's tokens`, shown.length === want.length && shown.every((s, i) => s === want[i]), JSON.stringify(shown.slice(0, 4)));
    }
    const w = await json(STORIES + 'api/write/0/140');
    const signs = await texts(t.page, '#signs .tok');
    check('neuron page: write side positive and negative', signs.length > 0 && signs[0] === shownAs(w.positive.top[0]) && signs.includes(shownAs(w.negative.top[0])));
    const rel = await texts(t.page, '#related a');
    check('neuron page: related neurons linked', rel.length > 0 && rel.every(x => /^(up|down) \d+:\d+$/.test(x)), JSON.stringify(rel.slice(0, 3)));
    const hist = await t.page.$$eval('#logits rect', r => r.length);
    check('neuron page: a histogram of all the logits', hist === 60, String(hist));
    const links = await texts(t.page, '.pager a');
    check('neuron page: prev and next', links.includes('← prev 139') && links.includes('next 141 →'), JSON.stringify(links));
    // Activation evidence: each example's token highlighted in its context.
    const ex = await json(STORIES + 'api/examples/0/140?around=8');
    const marks = await texts(t.page, '#examples-top mark');
    check('neuron page: top examples with their tokens highlighted', marks.length === ex.activations.top.length && marks.every((m, i) => m === shownAs(ex.activations.top[i])), JSON.stringify(marks));
    const ctxs = await texts(t.page, '#examples-top td.ctx');
    check('neuron page: example context around the token', ctxs.length > 0 && ctxs.every((c, i) => c === ex.activations.top[i].left + shownAs(ex.activations.top[i]) + ex.activations.top[i].right), JSON.stringify(ctxs[0]));
    await quiet('neuron page', t);
    if (SHOTS) await t.page.screenshot({ path: join(SHOTS, 'web-neuron.png') });

    // The steer panel streams on a click, tokens before the end.
    await t.page.fill('#steer-prompt', 'Once upon a time');
    await t.page.fill('#steer-n', '40');
    const prompt = 'Once upon a time';
    await t.page.click('#steer-go');
    let partial = false;
    for (let i = 0; i < 400 && !partial; i++) {
      const s = await t.page.textContent('#steer-status');
      const b = await t.page.textContent('#gen-baseline');
      if (s.startsWith('streaming') && b.length > prompt.length) partial = true;
      else await t.page.waitForTimeout(25);
    }
    check('steer: tokens appear while the stream runs', partial);
    await until(t.page, async () => /^done/.test(await t.page.textContent('#steer-status')));
    await t.page.waitForSelector('#effect-table');
    const base = await t.page.textContent('#gen-baseline'), clamped = await t.page.textContent('#gen-clamped');
    const ref = await fetch(STORIES + 'api/generate', { method: 'POST', body: JSON.stringify({ prompt, n: 40, seed: 0, temperature: 0, site: 'act', clamp: [{ layer: 0, neuron: 140, value: 2 }] }) });
    const events = (await ref.text()).split('\n\n').filter(Boolean);
    const done = JSON.parse(events.find(e => e.startsWith('event: done')).split('data: ')[1]);
    check('steer: baseline text is the generation\'s', base === prompt + done.baseline.text, JSON.stringify(base));
    check('steer: clamped text is the generation\'s', clamped === prompt + done.clamped.text, JSON.stringify(clamped));
    const eff = await texts(t.page, '#effect-table .tok');
    check('steer: predicted effect beside observed', eff.length >= 10);
    await quiet('steer (after the stream ended)', t);
    if (SHOTS) { await (await t.page.$('#steer')).screenshot({ path: join(SHOTS, 'web-steer.png') }); }
    await t.page.close();
  }

  // The diff page.
  {
    const t = await open(STORIES + 'diff');
    await t.page.waitForSelector('#diff-chart svg');
    const n = await t.page.$$eval('#diff-chart rect', r => r.length);
    check('diff: one agreement bar per layer', n === 5, String(n));
    await t.page.waitForSelector('#diff-changed a');
    const other = await t.page.$$eval('#diff-changed a', as => as.map(a => a.getAttribute('href')).filter(h => h.endsWith('?atlas=diff')));
    check('diff: changed neurons linked to the other atlas', other.length > 0, String(other.length));
    await quiet('diff', t);
    const [, m, l, nn] = /^\/neuron\/(\w+)\/(\d+)\/(\d+)/.exec(other[0]);
    const d = await json(STORIES + `api/neuron/${m}/${l}/${nn}?atlas=diff`);
    await t.page.goto(STORIES + other[0].slice(1));
    await t.page.waitForSelector('body[data-ready="1"]');
    const shown = await texts(t.page, `#side-${m} .tok`);
    check('diff: the other atlas\'s neuron page shows its tokens', shown[0] === shownAs(d.top[0]), JSON.stringify([shown[0], d.top[0].token]));
    await t.page.close();
  }

  // A vocabulary of HTML pieces shows as text, never as markup.
  {
    const t = await open(HTML + 'neuron/up/0/0');
    const doc = await json(HTML + 'api/neuron/up/0/0');
    const shown = await texts(t.page, '#side-up .tok');
    check('html vocabulary: API top token is the planted piece', doc.top[0].token === '<script>alert(1)</script>', doc.top[0].token);
    check('html vocabulary: the piece shows as its characters', shown[0] === '<script>alert(1)</script>', JSON.stringify(shown[0]));
    check('html vocabulary: no script element injected', (await t.page.$$eval('script', s => s.length)) === 1);
    check('html vocabulary: no <b> element injected', (await t.page.$$eval('main b', s => s.length)) === 0);
    check('html vocabulary: no dialog', t.dialogs.length === 0, t.dialogs.join(' '));
    for (const [n, piece] of [[1, '"quote\'&amp;'], [2, ' <b>bold</b>']]) {
      await t.page.goto(HTML + `neuron/up/0/${n}`);
      await t.page.waitForSelector('body[data-ready="1"]');
      const s = await texts(t.page, '#side-up .tok');
      check(`html vocabulary: ${JSON.stringify(piece)} shows as text`, s[0] === piece, JSON.stringify(s[0]));
    }
    // Bytes that are no UTF-8 character show as bytes, never as an escape.
    await t.page.goto(HTML + 'neuron/up/0/3');
    await t.page.waitForSelector('body[data-ready="1"]');
    const cell = await t.page.$eval('#side-up .tok', e => ({ text: e.textContent, bytes: [...e.querySelectorAll('.byte')].map(b => b.textContent) }));
    check('html vocabulary: a piece that is not UTF-8 shows its bytes, not an escape', cell.text === ' E6' && cell.bytes.join() === 'E6' && !cell.text.includes('\\'), JSON.stringify(cell));
    const home = await open(HTML);
    await home.page.waitForSelector('#layers .card svg');
    check('html vocabulary: home page has no injected elements', (await home.page.$$eval('script', s => s.length)) === 1 && home.dialogs.length === 0);
    check('html vocabulary: no console errors', t.errors.length === 0 && home.errors.length === 0, [...t.errors, ...home.errors].join(' | '));
  }
} catch (err) {
  check('browser run', false, String(err && err.stack || err));
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
