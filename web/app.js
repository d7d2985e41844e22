// app.js — the web atlas's pages: vanilla JavaScript over the JSON API
// (README, "Web atlas"). One document (index.html) reads its location and
// draws the page it names.
//
// Safety: every piece of text from the API — token texts above all, which
// are arbitrary bytes such as "<script>" — reaches the page through
// textContent or createTextNode, never through innerHTML, so it shows as
// the characters it is and is never parsed as markup.
'use strict';

// ---------------------------------------------------------------------------
// Small helpers

// el('td', {class: 'num'}, 'text', child...) — children are nodes or text.
function el(tag, attrs, ...children) {
  const ns = ['svg', 'rect', 'text', 'line', 'g', 'title'].includes(tag) ? 'http://www.w3.org/2000/svg' : null;
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

// A token's text, exactly its characters, in a box. x is the text, or a
// token object of the API: a vocabulary piece whose bytes are not UTF-8
// comes with "token_bytes" (hex), and its bytes that form no character show
// as bytes, each in a small box ("E6"), never as an escape sequence.
function tok(x) { return el('span', { class: 'tok' }, ...(typeof x === 'string' ? [x] : tokenParts(x))); }

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
function tokenParts(x) {
  if (!x.token_bytes) return [x.token];
  const b = new Uint8Array(x.token_bytes.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(x.token_bytes.substr(2 * i, 2), 16);
  const parts = [];
  let text = '';
  for (let i = 0; i < b.length;) {
    const c = b[i], n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    let ch = null;
    if (n && c !== 0 && i + n <= b.length) { try { ch = strictUtf8.decode(b.subarray(i, i + n)); } catch (e) { ch = null; } }
    if (ch !== null) { text += ch; i += n; continue; }
    if (text) { parts.push(text); text = ''; }
    const h = c.toString(16).toUpperCase().padStart(2, '0');
    parts.push(el('span', { class: 'byte', title: `byte 0x${h}: not a UTF-8 character on its own` }, h));
    i++;
  }
  if (text) parts.push(text);
  return parts;
}
// The text to search for a token: its id where its bytes are not text.
function tokQuery(x) { return x.token_bytes ? '#' + x.token_id : x.token; }

function fmt(x, d = 4) { return typeof x === 'number' ? (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : x.toFixed(d)) : ''; }

async function api(path, opts) {
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({ error: 'not JSON: HTTP ' + r.status }));
  if (!r.ok) throw new Error(body.error || 'HTTP ' + r.status);
  return body;
}

const main = () => document.getElementById('main');
function show(...nodes) { main().replaceChildren(...nodes); }
function fail(where, err) { return el('p', { class: 'error' }, where + ': ' + err.message); }

function neuronHref(m, l, n) { return `/neuron/${m}/${l}/${n}`; }
function link(href, text) { return el('a', { href }, text); }

// A bar whose width is share (0..1) of its cell.
function bar(share, neg) {
  const b = el('div', { class: neg ? 'bar neg' : 'bar' });
  b.style.width = Math.max(0, Math.min(1, share)) * 100 + '%';
  return b;
}

// ---------------------------------------------------------------------------
// Charts (SVG)

// Vertical bars for counts; labels under the first and last.
function histogram(counts, width = 240, height = 70, label0 = '0', label1 = '1') {
  const max = Math.max(1, ...counts), w = width / counts.length;
  const svg = el('svg', { class: 'chart', width, height: height + 14, viewBox: `0 0 ${width} ${height + 14}` });
  counts.forEach((c, i) => {
    const h = (c / max) * height;
    svg.appendChild(el('rect', { class: 'b', x: i * w + 1, y: height - h, width: Math.max(1, w - 2), height: h }, el('title', {}, String(c))));
  });
  svg.appendChild(el('text', { x: 0, y: height + 12 }, label0));
  svg.appendChild(el('text', { x: width, y: height + 12, 'text-anchor': 'end' }, label1));
  return svg;
}

// One bar per layer, agreement in [0, 1].
function agreementChart(values, width = 520, height = 90) {
  const w = width / Math.max(1, values.length);
  const svg = el('svg', { class: 'chart', width, height: height + 14, viewBox: `0 0 ${width} ${height + 14}` });
  values.forEach((v, i) => {
    const h = v * height;
    svg.appendChild(el('rect', { class: 'b', x: i * w + 1, y: height - h, width: Math.max(1, w - 2), height: h },
      el('title', {}, `layer ${i}: ${(v * 100).toFixed(1)}% agree`)));
    if (values.length <= 40) svg.appendChild(el('text', { x: i * w + 2, y: height + 12 }, String(i)));
  });
  return svg;
}

// The top/bottom list of a show document, with probability bars.
function tokenTable(list, neg) {
  const max = Math.max(1e-30, ...list.map(t => t.prob));
  const t = el('table', {}, el('tr', {}, el('th', {}, 'rank'), el('th', {}, 'token'), el('th', {}, 'logit'), el('th', {}, 'prob'), el('th', {}, '')));
  for (const x of list)
    t.appendChild(el('tr', {}, el('td', { class: 'num' }, x.rank), el('td', {}, tok(x)), el('td', { class: 'num' }, fmt(x.logit, 3)),
      el('td', { class: 'num' }, fmt(x.prob)), el('td', { class: 'barcell' }, bar(x.prob / max, neg))));
  return t;
}

function showDoc(doc, title) {
  const card = el('div', { class: 'card' }, el('h2', {}, title));
  if (doc.nonfinite) { card.appendChild(el('p', { class: 'error' }, 'non-finite weights: no tokens')); return card; }
  card.appendChild(el('p', { class: 'muted' }, `norm ${doc.norm}, log-sum-exp ${fmt(doc.lse, 3)}`));
  card.appendChild(el('h2', {}, 'top'));
  card.appendChild(tokenTable(doc.top || [], false));
  if (doc.bottom && doc.bottom.length) {
    card.appendChild(el('h2', {}, 'bottom'));
    card.appendChild(tokenTable(doc.bottom, true));
  }
  return card;
}

let INFO = null;
async function info() { return INFO || (INFO = await api('/api/info')); }
function mappedMatrices(inf) {
  const m = inf.atlas.matrices;
  return m === 'all' ? ['up', 'gate', 'down'] : m.split(',');
}

// ---------------------------------------------------------------------------
// Pages

async function pageHome() {
  const inf = await info();
  const a = inf.atlas;
  document.title = 'neuromap — ' + a.path;
  const rows = [['atlas', a.path], ['model', a.model_path + ' (' + a.model_format + ')'], ['shape', `${a.n_layers} layers × ${a.ffn_dim} neurons, dim ${a.dim}, vocabulary ${a.vocab_size}`],
    ['mapped', `matrices ${a.matrices}, layers ${a.layers}, neurons ${a.neurons}`], ['lens', `norm ${a.norm}, top ${a.top_k}, bottom ${a.bottom_k}, kernel ${a.kernel}${a.prefilter ? ', prefilter' : ''}`],
    ['live model', inf.model ? inf.model.path : 'none (start serve with --model for steering)'], ['diff', inf.diff ? inf.diff.path : 'none']];
  const t = el('table', {});
  for (const [k, v] of rows) t.appendChild(el('tr', {}, el('th', {}, k), el('td', {}, v)));
  const jump = el('form', { id: 'jump' }, el('label', {}, 'neuron L:N '), el('input', { id: 'jump-ln', placeholder: '0:0', size: 8 }),
    el('select', { id: 'jump-m' }, ...mappedMatrices(inf).map(m => el('option', { value: m }, m))), el('button', { type: 'submit' }, 'open'));
  jump.addEventListener('submit', ev => {
    ev.preventDefault();
    const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(document.getElementById('jump-ln').value);
    if (m) location.href = neuronHref(document.getElementById('jump-m').value, m[1], m[2]);
  });
  const sel = el('select', { id: 'layers-m' }, ...mappedMatrices(inf).map(m => el('option', { value: m }, m)));
  const grid = el('div', { class: 'layers', id: 'layers' });
  show(el('h1', {}, 'Atlas'), t, jump, el('h2', {}, 'Layers: most frequent top tokens and top-1 probability histogram ', sel), grid);
  const draw = async () => {
    const m = sel.value;
    grid.replaceChildren();
    for (let l = 0; l < a.n_layers; l++) {
      const card = el('div', { class: 'card' }, el('h2', {}, `${m} layer ${l}`));
      grid.appendChild(card);
      try {
        const s = await api(`/api/layer/${m}/${l}`);
        card.appendChild(histogram(s.histogram.counts));
        const list = el('div', {});
        for (const x of s.top_tokens.slice(0, 8)) {
          const q = new URLSearchParams({ text: tokQuery(x), matrix: m });
          list.appendChild(el('span', {}, el('a', { href: '/find?' + q }, tok(x)), ' ×' + x.count + ' '));
        }
        card.appendChild(list);
      } catch (err) { card.appendChild(fail('layer', err)); }
    }
  };
  sel.addEventListener('change', draw);
  await draw();
}

async function pageNeuron(m, l, n, other) {
  const inf = await info();
  const a = other ? inf.diff : inf.atlas, suffix = other ? '?atlas=diff' : '';
  l = +l; n = +n;
  document.title = `neuromap — ${m} ${l}:${n}`;
  const pager = el('p', { class: 'pager' });
  if (n > 0) pager.appendChild(link(neuronHref(m, l, n - 1) + suffix, '← prev ' + (n - 1)));
  if (n + 1 < a.ffn_dim) pager.appendChild(link(neuronHref(m, l, n + 1) + suffix, 'next ' + (n + 1) + ' →'));
  for (const o of ['up', 'gate', 'down']) if (o !== m) pager.appendChild(link(neuronHref(o, l, n) + suffix, o + ' ' + l + ':' + n));
  if (inf.diff) pager.appendChild(link(neuronHref(m, l, n) + (other ? '' : '?atlas=diff'), other ? 'this neuron in ' + inf.atlas.path : 'this neuron in ' + inf.diff.path));
  const sides = el('div', { class: 'cols', id: 'sides' });
  show(el('h1', {}, `${m} ${l}:${n}`), el('p', { class: 'muted' }, 'atlas ' + a.path), pager, sides);

  // The neuron itself, then both sides of it: what it reads (up, gate rows)
  // and what it writes (down column), from the atlas where it holds them.
  const mapped = mappedMatrices({ atlas: a });
  const order = [m, ...['up', 'gate', 'down'].filter(x => x !== m)];
  for (const o of order) {
    const label = o === 'down' ? 'write side: down column' : `read side: ${o} row`;
    if (!mapped.includes(o)) { sides.appendChild(el('div', { class: 'card' }, el('h2', {}, label), el('p', { class: 'muted' }, 'not in this atlas'))); continue; }
    try {
      const doc = await api(`/api/neuron/${o}/${l}/${n}` + suffix);
      const card = showDoc(doc, label + (o === m ? ' (this page)' : ''));
      card.id = 'side-' + o;
      sides.appendChild(card);
    } catch (err) { if (o === m) { show(el('h1', {}, `${m} ${l}:${n}`), pager, fail('neuron', err)); return; } sides.appendChild(fail(o, err)); }
  }
  if (other) return; // the model behind the page is the main atlas's
  if (inf.activations) main().appendChild(await examplesCard(l, n));
  if (!inf.model) { main().appendChild(el('p', { class: 'muted' }, 'Start serve with --model for the write side decoded both ways, related neurons and steering.')); return; }

  // Every vocabulary logit of this neuron, as a histogram (the atlas keeps only the ends).
  try {
    const h = await api(`/api/logits/${m}/${l}/${n}`);
    main().appendChild(el('div', { class: 'card', id: 'logits' }, el('h2', {}, `all ${inf.model.vocab_size} logits of ${m} ${l}:${n} (norm ${h.norm})`),
      histogram(h.counts, 600, 80, fmt(h.min, 2), fmt(h.max, 2))));
  } catch (err) { main().appendChild(fail('logits', err)); }

  // What it writes when its activation is positive and when negative.
  const signs = el('div', { class: 'cols', id: 'signs' });
  main().appendChild(el('h2', {}, 'What it writes: activation positive (down column) and negative (its negation)'));
  main().appendChild(signs);
  try {
    const w = await api(`/api/write/${l}/${n}`);
    signs.append(showDoc(w.positive, 'activation > 0'), showDoc(w.negative, 'activation < 0'));
  } catch (err) { signs.appendChild(fail('write', err)); }

  // Related neurons.
  const rel = el('div', { class: 'cols', id: 'related' });
  main().appendChild(el('h2', {}, 'Related neurons'));
  main().appendChild(rel);
  try {
    const r = await api(`/api/related/${l}/${n}?limit=8`);
    const list = (xs, m2, col) => {
      const t = el('table', {}, el('tr', {}, el('th', {}, 'neuron'), el('th', {}, col), el('th', {}, 'cosine')));
      for (const x of xs) t.appendChild(el('tr', {}, el('td', {}, link(neuronHref(m2, x.layer, x.neuron), `${m2} ${x.layer}:${x.neuron}`)),
        el('td', { class: 'num' }, fmt(x.score, 3)), el('td', { class: 'num' }, fmt(x.cosine, 3))));
      return t;
    };
    rel.append(el('div', { class: 'card' }, el('h2', {}, 'later up rows reading what it writes (W_up[l′]·d)'), r.readers.length ? list(r.readers, 'up', 'dot') : el('p', { class: 'muted' }, 'last layer: none')),
      el('div', { class: 'card' }, el('h2', {}, 'most similar down columns'), list(r.similar, 'down', 'cosine')));
  } catch (err) { rel.appendChild(fail('related', err)); }

  main().appendChild(steerPanel(l, n));
}

// ---------------------------------------------------------------------------
// Activation evidence (neuromap activations): the statistics, what the
// neuron fires on with the token highlighted in its context, and whether
// that agrees with the weights.

function exampleTable(list, id) {
  const t = el('table', { id, class: 'examples' }, el('tr', {}, el('th', {}, 'act'), el('th', {}, 'doc:window:pos'), el('th', {}, 'context')));
  for (const x of list)
    t.appendChild(el('tr', {}, el('td', { class: 'num' }, fmt(x.act, 3)), el('td', { class: 'num' }, `${x.doc}:${x.window}:${x.pos}`),
      el('td', { class: 'ctx' }, x.left, el('mark', {}, ...tokenParts(x)), x.right)));
  return t;
}

function agreementLine(what, t) {
  const p = t.trials ? `${t.hits} of ${t.trials} top examples (chance ${fmt(t.chance, 3)}), lift ${t.lift === null ? '–' : fmt(t.lift, 3)}, p ${fmt(t.p, 3)}` : 'no trials';
  return el('li', {}, what + ' ', tok(t), ': ' + p);
}

async function examplesCard(l, n) {
  const card = el('div', { class: 'card', id: 'examples' }, el('h2', {}, `Activations on the corpus`));
  let d;
  try { d = await api(`/api/examples/${l}/${n}?around=8`); } catch (err) { card.appendChild(fail('examples', err)); return card; }
  const a = d.activations;
  card.appendChild(el('p', { class: 'muted' }, `${d.corpus.path} (${d.corpus.status}): ${a.count} tokens; mean ${fmt(a.mean)}, std ${fmt(a.std)}, min ${fmt(a.min)}, max ${fmt(a.max)}, density ${fmt(a.density, 3)}; sign cases (gate, up) ` +
    Object.entries(a.sign_cases).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(', ')));
  const h = a.histogram;
  card.appendChild(histogram(h.map(b => b.count), 600, 60, '−∞', '+∞'));
  card.appendChild(el('ul', {}, agreementLine('writes (down column):', d.agreement.writes), agreementLine(`reads (${d.agreement.row} row, ${d.agreement.through}):`, d.agreement.reads)));
  card.append(el('h2', {}, 'top examples'), exampleTable(a.top, 'examples-top'), el('h2', {}, 'bottom examples'), exampleTable(a.bottom, 'examples-bottom'));
  for (const q of a.quantiles)
    card.append(el('h2', {}, `quantile band ${q.from}–${q.to} (act ${fmt(q.act_from, 3)} to ${fmt(q.act_to, 3)})`), exampleTable(q.examples));
  return card;
}

// ---------------------------------------------------------------------------
// The steer panel: nothing runs until the user clicks.

function steerPanel(l, n) {
  const value = el('input', { id: 'steer-value', type: 'range', min: -40, max: 40, step: 0.5, value: 2 });
  const shown = el('span', { id: 'steer-shown' }, '2');
  value.addEventListener('input', () => { shown.textContent = value.value; });
  const prompt = el('textarea', { id: 'steer-prompt' });
  prompt.value = 'Once upon a time';
  const ntok = el('input', { id: 'steer-n', type: 'number', min: 1, max: 512, value: 48, size: 4 });
  const seed = el('input', { id: 'steer-seed', type: 'number', min: 0, value: 0, size: 4 });
  const temp = el('input', { id: 'steer-temp', type: 'number', min: 0, max: 2, step: 0.1, value: 0, size: 4 });
  const site = el('select', { id: 'steer-site' }, el('option', { value: 'act' }, 'act'), el('option', { value: 'up' }, 'up'));
  const go = el('button', { id: 'steer-go', type: 'button' }, 'steer');
  const status = el('span', { id: 'steer-status', class: 'muted' });
  const base = el('div', { class: 'gen', id: 'gen-baseline' }), clamped = el('div', { class: 'gen', id: 'gen-clamped' });
  const effect = el('div', { id: 'effect' });
  const panel = el('div', { class: 'card steer', id: 'steer' }, el('h2', {}, `Steer: clamp ${l}:${n}`), prompt,
    el('div', { class: 'row' }, el('label', {}, 'value '), value, shown, el('label', {}, 'site '), site, el('label', {}, 'tokens '), ntok,
      el('label', {}, 'seed '), seed, el('label', {}, 'temperature '), temp, go, status),
    el('div', { class: 'cols' }, el('div', {}, el('h2', {}, 'baseline'), base), el('div', {}, el('h2', {}, 'clamped'), clamped)), effect);

  go.addEventListener('click', async () => {
    go.disabled = true;
    status.textContent = 'streaming…';
    base.textContent = prompt.value;
    clamped.textContent = prompt.value;
    const v = +value.value;
    const body = { prompt: prompt.value, n: +ntok.value, seed: +seed.value, temperature: +temp.value, site: site.value,
      clamp: [{ layer: l, neuron: n, value: v }] };
    const q = new URLSearchParams({ value: String(v), prompt: prompt.value });
    try {
      await stream('/api/generate', body, (ev, data) => {
        if (ev === 'token') (data.run === 'baseline' ? base : clamped).appendChild(document.createTextNode(data.text));
        else if (ev === 'done') status.textContent = `done: ${data.baseline.ids.length} + ${data.clamped.ids.length} tokens`;
        else if (ev === 'error') status.textContent = 'error: ' + data.error;
      });
      effect.replaceChildren(effectTable(await api(`/api/effect/${l}/${n}?` + q)));
    } catch (err) { status.textContent = 'error: ' + err.message; }
    go.disabled = false;
  });
  return panel;
}

// POSTs body and calls on(event, data) for each server-sent event until the
// server ends the response.
async function stream(path, body, on) {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) { const e = await r.json().catch(() => ({})); throw new Error(e.error || 'HTTP ' + r.status); }
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let ev = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) ev = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      on(ev, JSON.parse(data));
    }
  }
}

// Predicted logit change (from the weights) beside the observed probabilities.
function effectTable(e) {
  const t = el('table', { id: 'effect-table' }, el('tr', {}, el('th', {}, 'token'), el('th', {}, 'predicted Δlogit'), el('th', {}, 'P baseline'), el('th', {}, 'P clamped'), el('th', {}, 'observed ΔP')));
  for (const [name, list] of [['increase', e.increase], ['decrease', e.decrease]]) {
    t.appendChild(el('tr', {}, el('th', { colspan: 5 }, `largest predicted ${name}s (value ${e.value} × down column through the final norm's gain and the LM head)`)));
    for (const x of list)
      t.appendChild(el('tr', {}, el('td', {}, tok(x)), el('td', { class: 'num' }, fmt(x.predicted_dlogit, 3)), el('td', { class: 'num' }, fmt(x.prob_baseline)),
        el('td', { class: 'num' }, fmt(x.prob_clamped)), el('td', { class: 'num' }, x.prob_baseline === undefined ? '' : fmt(x.prob_clamped - x.prob_baseline))));
  }
  return el('div', { class: 'card' }, el('h2', {}, 'Predicted from the weights vs observed at the next token (clamp at site act)'), t);
}

async function pageFind(params) {
  const text = params.get('text') || '', matrix = params.get('matrix') || 'up', limit = params.get('limit') || '20';
  document.getElementById('search-text').value = text;
  document.getElementById('search-matrix').value = matrix;
  document.title = 'neuromap — find ' + text;
  if (!text) { show(el('h1', {}, 'Find'), el('p', { class: 'muted' }, 'Type a token above (with its leading space: " named").')); return; }
  let doc;
  try { doc = await api('/api/find?' + new URLSearchParams({ text, matrix, limit })); } catch (err) { show(el('h1', {}, 'Find ', tok(text)), fail('find', err)); return; }
  const t = el('table', { id: 'find-results' }, el('tr', {}, el('th', {}, 'neuron'), el('th', {}, 'logit'), el('th', {}, 'rank'), el('th', {}, 'top token')));
  for (const h of doc.neurons)
    t.appendChild(el('tr', {}, el('td', {}, link(neuronHref(h.matrix, h.layer, h.neuron), `${h.matrix} ${h.layer}:${h.neuron}`)), el('td', { class: 'num' }, fmt(h.logit, 3)),
      el('td', { class: 'num' }, h.rank), el('td', {}, tok(h.top))));
  show(el('h1', {}, 'Neurons promoting ', tok(doc.token)), el('p', { class: 'muted' }, `token ${doc.token.token_id}; ${doc.neurons.length} found in the stored top-k lists (matrix ${doc.matrix})`), t);
}

async function pageDiff() {
  const inf = await info();
  if (!inf.diff) { show(el('h1', {}, 'Diff'), el('p', { class: 'muted' }, 'Start serve with --diff OTHER_ATLAS to compare two atlases.')); return; }
  const sel = el('select', { id: 'diff-m' }, ...mappedMatrices(inf).map(m => el('option', { value: m }, m)));
  const chart = el('div', { id: 'diff-chart' }), changed = el('div', { id: 'diff-changed' });
  show(el('h1', {}, 'Diff'), el('p', {}, inf.atlas.path + ' against ' + inf.diff.path), el('p', {}, 'matrix ', sel), el('h2', {}, 'top-1 agreement per layer'), chart, changed);
  const draw = async () => {
    const m = sel.value, values = [], layers = [];
    chart.replaceChildren(el('p', { class: 'muted' }, 'loading…'));
    for (let l = 0; l < inf.atlas.n_layers; l++) {
      try { const s = await api(`/api/layer/${m}/${l}`); layers.push(s); values.push(s.diff.compared ? s.diff.agree / s.diff.compared : 0); } catch (err) { chart.replaceChildren(fail('layer ' + l, err)); return; }
    }
    chart.replaceChildren(agreementChart(values));
    changed.replaceChildren(el('h2', {}, 'neurons that changed most (confident top-1 on both sides, different tokens)'));
    const t = el('table', {}, el('tr', {}, el('th', {}, 'neuron'), el('th', {}, 'this atlas'), el('th', {}, 'p'), el('th', {}, 'other atlas'), el('th', {}, 'p')));
    const all = [];
    for (const s of layers) for (const c of s.diff.changed) all.push({ ...c, layer: s.layer });
    all.sort((x, y) => (y.prob + y.other_prob) - (x.prob + x.other_prob));
    for (const c of all.slice(0, 40))
      t.appendChild(el('tr', {}, el('td', {}, link(neuronHref(m, c.layer, c.neuron), `${m} ${c.layer}:${c.neuron}`)), el('td', {}, tok(c.top)), el('td', { class: 'num' }, fmt(c.prob)),
        el('td', {}, link(neuronHref(m, c.layer, c.neuron) + '?atlas=diff', tok(c.other_top))), el('td', { class: 'num' }, fmt(c.other_prob))));
    changed.appendChild(t);
  };
  sel.addEventListener('change', draw);
  await draw();
}

// ---------------------------------------------------------------------------
// Routing

async function route() {
  const p = location.pathname.split('/').filter(Boolean);
  const q = new URLSearchParams(location.search);
  try {
    const inf = await info();
    if (inf.diff) document.getElementById('nav-diff').hidden = false;
    if (p.length === 0) await pageHome();
    else if (p[0] === 'neuron' && p.length === 4) await pageNeuron(p[1], p[2], p[3], q.get('atlas') === 'diff');
    else if (p[0] === 'find') await pageFind(q);
    else if (p[0] === 'diff') await pageDiff();
    else show(el('p', { class: 'error' }, 'no such page'));
  } catch (err) { show(fail('atlas', err)); }
  document.body.dataset.ready = '1'; // tests wait for this
}

document.addEventListener('DOMContentLoaded', route);
