// ringmaster's dashboard: reads the same JSON API as the CLI, follows /api/v1/events,
// and builds every element with textContent (nothing from the server becomes markup).
'use strict';

const $ = (id) => document.getElementById(id);
const STATES = ['pending', 'preparing', 'running', 'done', 'failed', 'skipped', 'rolledBack'];
const PAGE = 50;

let me = null;          // { name, groups, operator, csrf }
let rolloutId = null;
/** The rollout the user chose among several running ones (kept in the URL's hash). */
let chosen = new URLSearchParams(location.hash.slice(1)).get('rollout');
/** Ids of the rollouts listed last, to tell a new rollout's events from a known one's. */
let known = [];
let summary = null;
let clusterPage = { ring: '', state: '', offset: 0, total: 0 };
let audit = { before: null, ring: '', cluster: '', actor: '', firstId: null };
let events = null;
let refreshing = null;

/** An element with attributes and children (strings become text). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

function say(text, isError) {
  const m = $('message');
  m.textContent = text || '';
  m.className = isError ? 'message error' : 'message';
}

function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

/** Calls the API; changes carry the session's CSRF token. Throws with the server's reason. */
async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (method !== 'GET') opts.headers['X-CSRF-Token'] = me ? me.csrf : '';
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = null;
  if (r.status !== 204) {
    try { data = await r.json(); } catch (_) { data = null; }
  }
  if (!r.ok) {
    const err = new Error(data && data.error ? data.error.message : `${r.status} ${r.statusText}`);
    err.status = r.status;
    if (r.status === 401) showSignIn('Your session ended: sign in again.');
    throw err;
  }
  return data;
}

// ---- sign-in ----

// Why an Entra ID sign-in failed, by the code the server puts after `#signin-error=`:
// the page's own words, so that a link cannot make it show someone else's text.
const SIGN_IN_ERRORS = {
  sign_in_off: 'This server has no Entra ID sign-in: sign in with a token.',
  state_mismatch: 'This sign-in was not started in this browser (or took too long and its cookie is gone). Start again.',
  sign_in_expired: 'The sign-in took more than 10 minutes. Start again.',
  entra_refused: 'Entra ID refused the sign-in. Its reason is in ringmaster\'s audit log; ask your platform team.',
  invalid_token: 'Entra ID\'s answer could not be verified. The reason is in ringmaster\'s audit log.',
  auth_unavailable: 'Entra ID cannot be reached now. Try again, or sign in with a token.',
  sessions_full: 'Too many dashboard sessions are open on this server. Try again later.',
};

let entraSignIn = false;

function showSignIn(why) {
  me = null;
  $('entra').hidden = !entraSignIn;
  approvalsKey = null;
  if (events) { events.close(); events = null; }
  $('app').hidden = true;
  $('nav').hidden = true;
  $('whoami').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = why || '';
}

async function signIn(token) {
  try {
    me = await api('POST', '/api/v1/session', { token });
    $('token').value = '';
    start();
  } catch (e) {
    showSignIn(e.message);
  }
}

async function signOut() {
  try { await api('DELETE', '/api/v1/session'); } catch (_) { /* signed out either way */ }
  showSignIn('Signed out.');
}

function start() {
  entraSignIn = !!me.entraSignIn;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('nav').hidden = false;
  $('whoami').hidden = false;
  $('me').textContent = `${me.name} (${me.groups.join(', ') || 'no groups'})${me.operator ? ', operator' : ''}`;
  follow();
  loadRollouts();
  loadAudit();
}

// ---- live updates ----

function follow() {
  if (events) events.close();
  events = new EventSource('/api/v1/events');
  const live = $('live');
  events.addEventListener('open', () => { live.textContent = 'live'; live.className = 'badge ok'; });
  events.addEventListener('error', () => {
    live.textContent = 'reconnecting'; live.className = 'badge warn';
    // The browser reconnects by itself after a stream's normal end (its lifetime), but
    // gives up on an error answer (503 `too_many_streams`): try again later ourselves.
    if (events && events.readyState === EventSource.CLOSED) {
      events = null;
      setTimeout(() => { if (me && !events) follow(); }, 20000 + Math.random() * 20000);
    }
  });
  events.addEventListener('hello', () => scheduleRefresh());
  events.addEventListener('transition', (e) => {
    const t = JSON.parse(e.data);
    for (const a of t.entries) addFeed(t.at, a);
    if (t.rolloutId === rolloutId) scheduleRefresh();
    else if (!known.includes(t.rolloutId)) loadRollouts();
  });
  events.addEventListener('dropped', () => {
    // Too far behind: start over from the current state.
    follow();
    loadRollouts();
  });
}

function addFeed(at, a) {
  const feed = $('feed');
  feed.prepend(el('li', {}, el('span', { class: 'muted' }, when(at)), ' ', el('b', {}, a.action), ' ', a.subject,
    a.reason ? ` (${a.reason})` : '', a.actor !== 'ringmaster' ? ` by ${a.actor}` : ''));
  while (feed.children.length > 15) feed.removeChild(feed.lastChild);
}

/** Refetches what a transition may have changed, at most a few times a second. */
function scheduleRefresh() {
  if (refreshing) return;
  refreshing = setTimeout(async () => {
    refreshing = null;
    if (!rolloutId) return loadRollouts();
    await Promise.all([loadSummary(), loadClusters()]);
    if (audit.before === null) loadAudit();
  }, 250);
}

// ---- the rollout ----

async function loadRollouts() {
  try {
    const list = await api('GET', '/api/v1/rollouts');
    const all = list.rollouts || [];
    known = all.map((r) => r.id);
    // Several policies run side by side: one rollout each. Show the one chosen, else
    // the first running, else the latest; the picker lists the running ones.
    const running = all.filter((r) => r.status === 'running' || r.status === 'paused');
    const current = all.find((r) => r.id === chosen) || running[0] || all[all.length - 1];
    rolloutId = current ? current.id : null;
    const pick = $('rollout-pick');
    pick.replaceChildren(...running.concat(running.includes(current) || !current ? [] : [current])
      .map((r) => el('option', { value: r.id }, `${r.policy}: ${r.id} (${r.status})`)));
    pick.value = rolloutId || '';
    $('rollout-pick-label').hidden = running.length < 2;
    $('no-rollout').hidden = !!rolloutId;
    $('rollout-body').hidden = !rolloutId;
    $('rollout-id').textContent = rolloutId || '';
    if (rolloutId) await Promise.all([loadSummary(), loadClusters()]);
  } catch (e) {
    say(e.message, true);
  }
}

async function loadSummary() {
  try {
    summary = await api('GET', `/api/v1/rollouts/${encodeURIComponent(rolloutId)}/summary`);
    renderSummary();
  } catch (e) {
    say(e.message, true);
  }
}

function countsText(c) {
  return STATES.filter((s) => c[s]).map((s) => `${c[s]} ${s}`).join(', ') || 'none';
}

function renderSummary() {
  const s = summary;
  const terminal = ['succeeded', 'halted', 'aborted'].includes(s.state);
  $('rollout-state').textContent = s.state;
  $('rollout-state').className = `state ${s.state}`;
  $('rollout-target').textContent = s.target;
  $('rollout-counts').textContent = `${s.counts.total}: ${countsText(s.counts)}` + (s.skipped ? `; ${s.skipped} not in the plan` : '');
  $('rollout-eta').textContent = s.eta && s.eta.finish ? when(s.eta.finish) : terminal ? '-' : 'not foreseeable (paused or waiting)';
  $('rollout-updated').textContent = `${when(s.updatedAt)} (seq ${s.seq})`;
  const st = s.status || {};
  $('rollout-reason').textContent = st.reason ? `${st.by ? st.by + ': ' : ''}${st.reason}` : '';
  const ops = $('operator-actions');
  ops.hidden = !(me.operator && !terminal);
  $('pause').hidden = s.state === 'paused';
  $('resume').hidden = s.state !== 'paused';
  renderApprovals(s);
  renderRings(s);
  const ringSel = $('cl-ring');
  if (ringSel.options.length !== s.rings.length + 1) {
    clear(ringSel).append(el('option', { value: '' }, 'all'), ...s.rings.map((r) => el('option', { value: r.name }, r.name)));
  }
}

let approvalsKey = null;

function renderApprovals(s) {
  // Rebuilt only when what waits changes: a button must not be replaced under a click.
  const key = JSON.stringify([me.name, s.target, s.pendingApprovals]);
  if (key === approvalsKey) {
    for (const a of s.pendingApprovals) {
      const w = $(`waited-${a.ring}`);
      if (w) w.textContent = duration(new Date(s.now) - new Date(a.since));
    }
    return;
  }
  approvalsKey = key;
  const box = clear($('approvals'));
  if (!s.pendingApprovals.length) {
    box.append(el('p', { class: 'muted' }, 'Nothing waits for an approval.'));
    return;
  }
  for (const a of s.pendingApprovals) {
    const waited = duration(new Date(s.now) - new Date(a.since));
    const expires = a.expiresAfterSeconds ? `; an approval lasts ${duration(a.expiresAfterSeconds * 1000)}` : '';
    const card = el('div', { class: 'approval', id: `approval-${a.ring}` },
      el('p', {}, el('b', {}, `Ring ${a.ring}`), ` waits for an approval by ${a.approvers.join(', ')} since ${when(a.since)} (`,
        el('span', { id: `waited-${a.ring}` }, waited), `)${expires}. Target: ${s.target}.`));
    const buttons = el('div', { class: 'actions' });
    if (a.mayApprove) {
      buttons.append(el('button', { id: `approve-${a.ring}`, type: 'button', class: 'primary', onclick: () => decide(a.ring, 'approve') }, `Approve ${a.ring}`));
    }
    if (a.mayReject) {
      buttons.append(el('button', { id: `reject-${a.ring}`, type: 'button', class: 'danger', onclick: () => decide(a.ring, 'reject') }, `Reject ${a.ring}`));
    }
    if (!a.mayApprove && !a.mayReject) {
      buttons.append(el('p', { class: 'muted', id: `no-decision-${a.ring}` }, `You (${me.name}) are not among its approvers.`));
    }
    card.append(buttons);
    box.append(card);
  }
}

function renderRings(s) {
  const body = clear($('rings').tBodies[0]);
  for (const r of s.rings) {
    let state = r.state;
    if (r.status && r.status.state === 'soaking') state += ` until ${when(r.status.until)} (${duration(new Date(r.status.until) - new Date(s.now))} left)`;
    if (r.status && r.status.reason) state += `: ${r.status.reason}`;
    if (r.paused) state += ' (paused)';
    const waves = r.waves.map((w) => `${w.name} ${w.counts.done + w.counts.failed + w.counts.skipped + w.counts.rolledBack}/${w.counts.total} (≤${w.maxParallel})`).join(' · ');
    const approval = r.approval ? `approved by ${r.approval.by} ${when(r.approval.at)}${r.approval.comment ? ': ' + r.approval.comment : ''}`
      : r.approvers.length ? `needs ${r.approvers.join(', ')}` : 'none needed';
    const act = el('td', {});
    if (me.operator && r.status && r.status.state === 'soaking') {
      act.append(el('button', { type: 'button', id: `end-soak-${r.name}`, onclick: () => operate(`End the soak of ring ${r.name} now?`, `rings/${encodeURIComponent(r.name)}/promote-now`, 'reason') }, 'End soak'));
    }
    body.append(el('tr', {}, el('td', {}, r.name), el('td', { class: `state ${r.state.replace(' ', '-')}` }, state),
      el('td', {}, `${r.counts.total}: ${countsText(r.counts)}`), el('td', {}, waves), el('td', {}, approval), act));
  }
}

// ---- the clusters, a page at a time ----

async function loadClusters() {
  if (!rolloutId) return;
  const q = new URLSearchParams({ offset: clusterPage.offset, limit: PAGE });
  if (clusterPage.ring) q.set('ring', clusterPage.ring);
  if (clusterPage.state) q.set('state', clusterPage.state);
  try {
    const page = await api('GET', `/api/v1/rollouts/${encodeURIComponent(rolloutId)}/clusters?${q}`);
    clusterPage.total = page.total;
    renderClusters(page);
  } catch (e) {
    say(e.message, true);
  }
}

function renderClusters(page) {
  const body = clear($('cluster-table').tBodies[0]);
  const terminal = summary && ['succeeded', 'halted', 'aborted'].includes(summary.state);
  for (const c of page.clusters) {
    const steps = el('ol', { class: 'steps' }, c.steps.map((s) => el('li', { class: `step ${s.state}` },
      `${s.what}: ${s.state}`, s.until ? ` until ${when(s.until)}` : '', s.detail ? ` (${s.detail})` : '',
      s.attempts > 1 ? ` [attempt ${s.attempts}]` : '')));
    const act = el('td', {});
    const finished = ['done', 'failed', 'skipped', 'rolledBack'].includes(c.state);
    if (me.operator && !finished && !terminal) {
      act.append(el('button', { type: 'button', id: `skip-${c.name}`, onclick: () => operate(`Skip cluster ${c.name}? Its running step finishes; nothing more starts on it.`, `clusters/${encodeURIComponent(c.name)}/skip`, 'reason') }, 'Skip'));
    }
    const pre = c.preflight ? (c.preflight.passed ? ' · preflight passed' : ` · preflight: ${c.preflight.findings} finding(s)`) : '';
    body.append(el('tr', { id: `cluster-${c.name}` },
      el('td', {}, c.name, el('div', { class: 'muted small' }, `${c.id.subscription.slice(0, 8)}…/${c.id.resourceGroup}`)),
      el('td', {}, `${c.ring} / ${c.wave}`),
      el('td', { class: `state ${c.state}` }, c.state, c.reason ? el('div', { class: 'small' }, c.reason) : null, pre),
      el('td', {}, steps),
      el('td', {}, c.forecastEnd ? when(c.forecastEnd) : ''),
      act));
  }
  const from = page.total ? page.offset + 1 : 0;
  $('cl-range').textContent = `${from}-${page.offset + page.clusters.length} of ${page.total}`;
  $('cl-prev').disabled = page.offset === 0;
  $('cl-next').disabled = page.offset + page.clusters.length >= page.total;
}

// ---- decisions and operator actions ----

/** The confirmation dialog: resolves to the comment (or '') when confirmed, null when not. */
function confirmDialog(text, wantComment) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    $('confirm-comment').value = '';
    $('confirm-comment').hidden = !wantComment;
    $('confirm-comment-label').hidden = !wantComment;
    const done = (v) => {
      $('confirm-ok').removeEventListener('click', ok);
      $('confirm-cancel').removeEventListener('click', cancel);
      d.close();
      resolve(v);
    };
    const ok = (e) => { e.preventDefault(); done($('confirm-comment').value.trim()); };
    const cancel = () => done(null);
    $('confirm-ok').addEventListener('click', ok);
    $('confirm-cancel').addEventListener('click', cancel);
    d.showModal();
  });
}

async function decide(ring, what) {
  const text = what === 'approve'
    ? `Approve promoting ${summary.target} into ring ${ring}? The comment is recorded in the audit log.`
    : `Reject ${summary.target} for ring ${ring}? The rollout halts. A comment is required.`;
  const comment = await confirmDialog(text, true);
  if (comment === null) return;
  try {
    await api('POST', `/api/v1/rollouts/${encodeURIComponent(rolloutId)}/rings/${encodeURIComponent(ring)}/${what}`, { comment });
    say(`${what === 'approve' ? 'Approved' : 'Rejected'} ring ${ring}.`);
    scheduleRefresh();
  } catch (e) {
    say(e.message, true);
  }
}

/** An operator action on the rollout (`path` under it) after a confirmation with a reason. */
async function operate(text, path, field) {
  const reason = await confirmDialog(text, true);
  if (reason === null) return;
  try {
    const body = {};
    if (reason || field === 'reason') body[field] = reason || 'from the dashboard';
    await api('POST', `/api/v1/rollouts/${encodeURIComponent(rolloutId)}/${path}`, body);
    say('Done.');
    scheduleRefresh();
  } catch (e) {
    say(e.message, true);
  }
}

// ---- the fleet ----

async function loadFleet() {
  const box = clear($('fleet-rings'));
  $('fleet-taken').textContent = 'Discovering…';
  try {
    const f = await api('GET', '/api/v1/fleet');
    $('fleet-taken').textContent = `As of ${when(f.takenAt)}; policy ${f.policy}, target ${f.target.version || '-'}.`;
    const groups = f.rings.concat(f.outsideRings.length ? [{ name: 'outside every ring', clusters: f.outsideRings }] : []);
    for (const r of groups) {
      const rows = r.clusters.map((c) => {
        const pools = c.pools.map((p) => `${p.name} ${p.kubernetesVersion}${p.nodeImageBehind ? ' (image behind)' : ''}`).join(', ');
        const support = `${c.support.status}${c.support.daysLeft !== null && c.support.daysLeft !== undefined ? `, ${c.support.daysLeft} days left` : ''}`;
        const offers = c.controlPlaneUpgrades.map((o) => o.version + (o.isPreview ? ' (preview)' : '')).join(', ') || 'none';
        const pre = c.preflight ? (c.preflight.passed ? 'passed' : c.preflight.findings.map((x) => x.message || x.check).join('; ')) : '';
        return el('tr', {}, el('td', {}, c.id.name), el('td', {}, c.kubernetesVersion), el('td', {}, pools), el('td', {}, support),
          el('td', {}, offers), el('td', {}, c.placement || ''), el('td', {}, pre));
      });
      box.append(el('h3', {}, `${r.name} (${r.clusters.length})`),
        el('table', { class: 'fleet' }, el('thead', {}, el('tr', {}, ['Cluster', 'Control plane', 'Pools', 'Support', 'Upgrades offered', 'In this rollout', 'Preflight'].map((h) => el('th', {}, h)))),
          el('tbody', {}, rows)));
    }
  } catch (e) {
    $('fleet-taken').textContent = e.message;
  }
}

// ---- history ----

async function loadAudit() {
  const q = new URLSearchParams({ limit: 50 });
  for (const k of ['ring', 'cluster', 'actor']) if (audit[k]) q.set(k, audit[k]);
  if (audit.before !== null) q.set('before', audit.before);
  try {
    const page = await api('GET', `/api/v1/audit?${q}`);
    const body = clear($('audit').tBodies[0]);
    for (const a of page.entries.slice().reverse()) {
      body.append(el('tr', { class: a.action.startsWith('auth.') ? 'denied' : '' }, el('td', {}, when(a.at)), el('td', {}, a.actor),
        el('td', {}, a.action), el('td', {}, a.subject), el('td', {}, a.reason)));
    }
    audit.firstId = page.firstId;
    $('au-older').disabled = !page.more;
  } catch (e) {
    say(e.message, true);
  }
}

// ---- wiring ----

function wire() {
  $('signin-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('token').value.trim()); });
  $('sign-out').addEventListener('click', signOut);
  $('pause').addEventListener('click', () => operate('Pause the whole rollout? Running steps finish; nothing new starts.', 'pause', 'reason'));
  $('resume').addEventListener('click', () => operate('Resume the rollout?', 'resume', 'reason'));
  $('abort').addEventListener('click', () => operate('Abort the rollout? Operations in flight are cancelled in AKS; this cannot be undone.', 'abort', 'reason'));
  const stateSel = $('cl-state');
  for (const s of STATES) stateSel.append(el('option', { value: s }, s));
  $('rollout-pick').addEventListener('change', (e) => {
    chosen = e.target.value;
    history.replaceState(null, '', `#rollout=${encodeURIComponent(chosen)}`);
    clusterPage.offset = 0;
    loadRollouts();
  });
  $('cl-ring').addEventListener('change', (e) => { clusterPage.ring = e.target.value; clusterPage.offset = 0; loadClusters(); });
  stateSel.addEventListener('change', (e) => { clusterPage.state = e.target.value; clusterPage.offset = 0; loadClusters(); });
  $('cl-prev').addEventListener('click', () => { clusterPage.offset = Math.max(0, clusterPage.offset - PAGE); loadClusters(); });
  $('cl-next').addEventListener('click', () => { clusterPage.offset += PAGE; loadClusters(); });
  $('fleet-load').addEventListener('click', loadFleet);
  $('audit-form').addEventListener('submit', (e) => {
    e.preventDefault();
    audit = { before: null, ring: $('au-ring').value.trim(), cluster: $('au-cluster').value.trim(), actor: $('au-actor').value.trim(), firstId: null };
    loadAudit();
  });
  $('au-newest').addEventListener('click', () => { audit.before = null; loadAudit(); });
  $('au-older').addEventListener('click', () => { if (audit.firstId !== null) { audit.before = audit.firstId; loadAudit(); } });
}

async function boot() {
  wire();
  // `ringmaster demo` prints a link with its one-off token after `#token=`: a fragment
  // never reaches the server or its logs; it is dropped from the address at once.
  const m = location.hash.match(/^#token=(.+)$/);
  if (m) {
    history.replaceState(null, '', location.pathname);
    return signIn(decodeURIComponent(m[1]));
  }
  // A refused Entra ID sign-in comes back with the code of its reason.
  const failed = location.hash.match(/^#signin-error=([a-z_]+)$/);
  if (location.hash.startsWith('#signin-error=')) history.replaceState(null, '', location.pathname);
  const s = await api('GET', '/api/v1/session');
  entraSignIn = !!s.entraSignIn;
  if (s.signedIn) { me = s; start(); } else {
    showSignIn(failed ? (SIGN_IN_ERRORS[failed[1]] || 'The sign-in failed.') : '');
  }
}

document.addEventListener('DOMContentLoaded', boot);
