// The status page: cluster members, SKUs with live stock, sales per minute, latest events.
//
// The event stream only says *that* something changed: events mark SKUs dirty and queue feed
// lines, and a timer applies them in batches (one read per dirty SKU, one DOM update per
// batch). A flash sale commits thousands of events a second; the page's work must follow the
// number of SKUs on screen, never the event rate.
'use strict';

(() => {
  const CLUSTER_EVERY_MS = 1500;
  const FLUSH_EVERY_MS = 400;
  // The sales figures are a read over the whole bucket range: at most this often.
  const SALES_MIN_GAP_MS = 2000;
  // Even without changes the time axis moves on.
  const SALES_STALE_MS = 30000;
  const SALES_WINDOW_MINUTES = 30;
  const BUCKET_MS = 60000;
  const FEED_SIZE = 50;
  const MAX_SKU_ROWS = 200;
  const MAX_SKU_READS_PER_FLUSH = 32;
  // Browsers allow six connections per origin over HTTP/1.1, and the stream holds one.
  const PARALLEL_READS = 4;
  const RESTART_PAUSE_MS = 2000;
  const RATE_WINDOW_MS = 5000;
  // Unless the user chose a SKU, the chart moves to the latest order's SKU, but not away from
  // one that sold within this long: with several SKUs selling it would jump back and forth.
  const FOLLOW_AFTER_QUIET_MS = 5000;
  // EventSource dispatches named events only to listeners of that name.
  const EVENT_TYPES = [
    'sku.created', 'sku.restocked', 'sku.updated',
    'order.reserved', 'order.paid', 'order.cancelled', 'order.expired', 'order.refunded',
  ];

  const $ = (id) => document.getElementById(id);
  const fmt = (n) => Number(n).toLocaleString('en-US');

  const state = {
    rows: new Map(), // sku name -> row view
    moreSkus: false, // some SKUs have no row (MAX_SKU_ROWS)
    dirty: new Set(), // SKUs whose row must be read again
    reading: false,
    feedQueue: [], // events not yet shown, oldest first, at most FEED_SIZE
    lastEventId: 0,
    eventSamples: [], // [time_ms, events] per flush, for the rate
    eventsSinceFlush: 0,
    selected: null, // the charted SKU
    pinned: false, // the user chose it; otherwise it follows the latest order
    latestOrderSku: null,
    selectedOrderAt: 0, // when an order last touched the selected SKU
    sales: { dirty: false, at: 0, inFlight: false, last: null },
    source: null,
    ready: { cluster: false, skus: false, feed: false, stream: false },
    problems: new Map(), // where -> message
  };

  // ------------------------------------------------------------------------------------------
  // Reads
  // ------------------------------------------------------------------------------------------

  async function getJSON(path) {
    const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      // An error without a JSON body (a proxy, a dead gateway): the status says enough.
    }
    if (!response.ok) {
      const code = body && body.error ? body.error.code : `HTTP ${response.status}`;
      const error = new Error(`${path}: ${code}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  const skuPath = (sku) => `/v1/skus/${encodeURIComponent(sku)}`;

  function reportProblem(where, error) {
    state.problems.set(where, error.message || String(error));
    showProblems();
  }

  function clearProblem(where) {
    if (state.problems.delete(where)) showProblems();
  }

  function showProblems() {
    const el = $('problem');
    el.textContent = [...state.problems.values()].join('; ');
    el.hidden = state.problems.size === 0;
  }

  function markReady(part) {
    state.ready[part] = true;
    if (Object.values(state.ready).every(Boolean) && document.body.dataset.state !== 'ready') {
      document.body.dataset.state = 'ready';
      const marker = document.createElement('div');
      marker.id = 'ready';
      marker.hidden = true;
      document.body.append(marker);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Cluster
  // ------------------------------------------------------------------------------------------

  async function refreshCluster() {
    try {
      renderCluster(await getJSON('/v1/cluster'));
      clearProblem('cluster');
      markReady('cluster');
    } catch (e) {
      reportProblem('cluster', e);
    } finally {
      setTimeout(refreshCluster, CLUSTER_EVERY_MS);
    }
  }

  function renderCluster(view) {
    const table = $('cluster');
    table.dataset.leader = view.leader == null ? '' : String(view.leader);
    table.dataset.term = String(view.term);
    $('leader').textContent = view.leader == null ? 'none' : `node ${view.leader}`;
    $('term').textContent = String(view.term);
    const leader = view.nodes.find((n) => n.id === view.leader && n.reachable);
    const rows = view.nodes.map((node) => {
      // Lag: entries the leader has that this member has not applied yet.
      const lag = leader && node.reachable ? Math.max(0, leader.last_log_index - node.last_applied) : null;
      const tr = document.createElement('tr');
      tr.dataset.nodeId = String(node.id);
      tr.dataset.role = node.role;
      tr.dataset.lag = lag == null ? '' : String(lag);
      tr.dataset.lastLogIndex = String(node.last_log_index);
      tr.dataset.lastApplied = String(node.last_applied);
      tr.className = `role-${node.role}`;
      const known = (n) => (node.reachable ? fmt(n) : '–');
      tr.append(
        cell(String(node.id)),
        cell(node.addr),
        cell(node.role, 'role'),
        cell(known(node.last_log_index), 'num'),
        cell(known(node.last_applied), 'num'),
        cell(lag == null ? '–' : fmt(lag), lag ? 'num lagging' : 'num'),
      );
      return tr;
    });
    $('nodes').replaceChildren(...rows);
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  // ------------------------------------------------------------------------------------------
  // SKUs
  // ------------------------------------------------------------------------------------------

  async function loadSkus() {
    let after = null;
    do {
      const query = new URLSearchParams({ limit: '1000' });
      if (after) query.set('after', after);
      const page = await getJSON(`/v1/skus?${query}`);
      page.skus.forEach(showSku);
      after = page.next;
    } while (after && state.rows.size < MAX_SKU_ROWS);
    if (after) noteMoreSkus();
  }

  function noteMoreSkus() {
    state.moreSkus = true;
    const el = $('sku-overflow');
    el.textContent = `(only the first ${MAX_SKU_ROWS} SKUs are shown)`;
    el.hidden = false;
  }

  function showSku(sku) {
    let row = state.rows.get(sku.sku);
    if (!row) {
      if (state.rows.size >= MAX_SKU_ROWS) {
        noteMoreSkus();
        return;
      }
      row = createSkuRow(sku.sku);
      if (!state.selected) select(sku.sku, false);
    }
    paintSku(row, sku);
  }

  function createSkuRow(name) {
    const tr = document.createElement('tr');
    tr.dataset.sku = name;
    tr.tabIndex = 0;
    tr.title = 'chart this SKU';
    const bar = document.createElement('div');
    bar.className = 'bar';
    const parts = {};
    for (const kind of ['available', 'reserved', 'sold']) {
      parts[kind] = document.createElement('span');
      parts[kind].className = kind;
      bar.append(parts[kind]);
    }
    const barCell = cell('', 'bar-cell');
    barCell.append(bar);
    const numbers = {
      available: cell('', 'num'),
      reserved: cell('', 'num'),
      sold: cell('', 'num'),
      total: cell('', 'num'),
    };
    tr.append(cell(name, 'name'), barCell, numbers.available, numbers.reserved, numbers.sold, numbers.total);
    tr.addEventListener('click', () => select(name, true));
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') select(name, true);
    });
    const row = { tr, parts, numbers, revision: -1 };
    // Rows stay in the API's order (byte order of the sku; the allowed characters are ASCII).
    const body = $('sku-rows');
    const before = [...state.rows.keys()].filter((other) => other > name).sort()[0];
    body.insertBefore(tr, before ? state.rows.get(before).tr : null);
    state.rows.set(name, row);
    $('no-skus').hidden = true;
    if (name === state.selected) tr.classList.add('selected');
    return row;
  }

  function paintSku(row, sku) {
    // Reads run in parallel and may answer out of order; a row never goes back in time.
    if (sku.revision < row.revision) return;
    row.revision = sku.revision;
    const { tr, parts, numbers } = row;
    for (const kind of ['available', 'reserved', 'sold', 'total']) {
      tr.dataset[kind] = String(sku[kind]);
      numbers[kind].textContent = fmt(sku[kind]);
    }
    for (const kind of ['available', 'reserved', 'sold']) {
      parts[kind].style.width = sku.total > 0 ? `${(100 * sku[kind]) / sku.total}%` : '0';
    }
    tr.classList.toggle('sold-out', sku.total > 0 && sku.available === 0);
  }

  async function readDirtySkus() {
    if (state.reading || state.dirty.size === 0) return;
    const queue = [];
    for (const name of state.dirty) {
      state.dirty.delete(name);
      // A SKU with no row and no room for one: nothing on screen would change.
      if (!state.rows.has(name) && state.rows.size >= MAX_SKU_ROWS) continue;
      queue.push(name);
      if (queue.length >= MAX_SKU_READS_PER_FLUSH) break;
    }
    if (queue.length === 0) return;
    state.reading = true;
    const worker = async () => {
      while (queue.length) {
        const name = queue.shift();
        try {
          showSku(await getJSON(skuPath(name)));
          clearProblem('skus');
        } catch (e) {
          if (e.status !== 404) {
            state.dirty.add(name);
            reportProblem('skus', e);
          }
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, queue.length) }, worker));
    } finally {
      state.reading = false;
    }
  }

  function select(name, byUser) {
    if (byUser) state.pinned = true;
    if (state.selected === name) return;
    const old = state.selected && state.rows.get(state.selected);
    if (old) old.tr.classList.remove('selected');
    const row = state.rows.get(name);
    if (row) row.tr.classList.add('selected');
    state.selected = name;
    $('sales-sku').textContent = name;
    state.sales.dirty = true;
    state.sales.at = 0;
  }

  // ------------------------------------------------------------------------------------------
  // Events
  // ------------------------------------------------------------------------------------------

  // Reads the head first, then the SKUs: any change after that read is in the stream from
  // `head`, so the rows miss nothing. Also what a stream the server refused starts over with.
  async function startFeed() {
    try {
      const { head } = await getJSON('/v1/events?limit=1');
      await loadSkus();
      markReady('skus');
      await loadBacklog(head);
      markReady('feed');
      state.lastEventId = Math.max(state.lastEventId, head);
      openStream(head);
      clearProblem('events');
    } catch (e) {
      reportProblem('events', e);
      setTimeout(startFeed, RESTART_PAUSE_MS);
    }
  }

  async function loadBacklog(head) {
    const after = Math.max(0, head - FEED_SIZE, state.lastEventId);
    if (after >= head) return;
    try {
      const page = await getJSON(`/v1/events?after=${after}&limit=${FEED_SIZE}`);
      page.events.forEach(queueForFeed);
    } catch (e) {
      // Compacted meanwhile: the feed starts empty, nothing else depends on the backlog.
      if (e.status !== 410) throw e;
    }
  }

  function openStream(after) {
    if (state.source) state.source.close();
    const source = new EventSource(`/v1/events/stream?after=${after}`);
    state.source = source;
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.onopen = () => {
      setConnection('live');
      markReady('stream');
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        // The browser reconnects by itself, sending Last-Event-ID: no gap, no duplicate.
        setConnection('reconnecting');
        return;
      }
      // Refused for good (410 after a long absence, or a gateway error): start over from
      // the head and re-read every row.
      source.close();
      state.source = null;
      setConnection('offline');
      setTimeout(startFeed, RESTART_PAUSE_MS);
    };
  }

  function setConnection(status) {
    const el = $('connection');
    el.dataset.connection = status;
    el.textContent = status;
  }

  function onEvent(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (_) {
      return;
    }
    if (event.id <= state.lastEventId) return;
    state.lastEventId = event.id;
    state.eventsSinceFlush += 1;
    if (event.order) {
      for (const item of event.order.items) {
        touch(item.sku);
        if (item.sku === state.selected) state.selectedOrderAt = Date.now();
      }
      state.latestOrderSku = event.order.items[0].sku;
    }
    if (event.sku) touch(event.sku.sku);
    queueForFeed(event);
  }

  function touch(sku) {
    state.dirty.add(sku);
    if (sku === state.selected) state.sales.dirty = true;
  }

  function queueForFeed(event) {
    state.feedQueue.push(event);
    if (state.feedQueue.length > FEED_SIZE) state.feedQueue.shift();
  }

  function renderFeed() {
    if (state.feedQueue.length === 0) return;
    const events = state.feedQueue.splice(0);
    const fragment = document.createDocumentFragment();
    for (let i = events.length - 1; i >= 0; i -= 1) fragment.append(feedItem(events[i]));
    const feed = $('feed');
    feed.prepend(fragment);
    while (feed.childElementCount > FEED_SIZE) feed.lastElementChild.remove();
  }

  function feedItem(event) {
    const li = document.createElement('li');
    li.dataset.eventId = String(event.id);
    li.dataset.eventType = event.type;
    li.className = event.type.replace('.', '-');
    const time = document.createElement('time');
    time.textContent = clock(event.time_ms, true);
    const type = document.createElement('span');
    type.className = 'type';
    type.textContent = event.type;
    const what = document.createElement('span');
    what.className = 'what';
    if (event.order) {
      const o = event.order;
      li.dataset.orderId = o.order_id;
      li.dataset.skus = o.items.map((i) => i.sku).join(' ');
      const items = o.items.slice(0, 3).map((i) => `${i.sku} ×${fmt(i.qty)}`);
      if (o.items.length > 3) items.push(`+${o.items.length - 3} more`);
      what.textContent = `${o.order_id} (${o.user_id}): ${items.join(', ')}`;
    } else if (event.sku) {
      const s = event.sku;
      li.dataset.skus = s.sku;
      what.textContent = `${s.sku}: total ${fmt(s.total)}, available ${fmt(s.available)}`;
    }
    li.append(time, ' ', type, ' ', what);
    li.title = `event ${event.id}, log index ${event.revision}`;
    return li;
  }

  function clock(ms, withMillis) {
    const d = new Date(ms);
    const two = (n) => String(n).padStart(2, '0');
    const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
    if (!withMillis) return hm;
    return `${hm}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }

  function showRate() {
    const now = Date.now();
    state.eventSamples.push([now, state.eventsSinceFlush]);
    state.eventsSinceFlush = 0;
    while (state.eventSamples.length && state.eventSamples[0][0] < now - RATE_WINDOW_MS) state.eventSamples.shift();
    const events = state.eventSamples.reduce((sum, [, n]) => sum + n, 0);
    const seconds = Math.max(FLUSH_EVERY_MS, now - state.eventSamples[0][0] + FLUSH_EVERY_MS) / 1000;
    $('rate').textContent = `${fmt(Math.round(events / seconds))} events/s`;
  }

  // ------------------------------------------------------------------------------------------
  // Sales chart
  // ------------------------------------------------------------------------------------------

  async function refreshSales() {
    const sales = state.sales;
    if (!state.selected || sales.inFlight) return;
    const now = Date.now();
    if (!sales.dirty && now - sales.at < SALES_STALE_MS) return;
    if (now - sales.at < SALES_MIN_GAP_MS) return;
    const sku = state.selected;
    sales.inFlight = true;
    sales.dirty = false;
    sales.at = now;
    // The window ends with the current minute; buckets follow the cluster's clock, which
    // may run a little ahead of this browser's, so no upper bound is sent.
    const to = (Math.floor(now / BUCKET_MS) + 1) * BUCKET_MS;
    const from = to - SALES_WINDOW_MINUTES * BUCKET_MS;
    try {
      const answer = await getJSON(`${skuPath(sku)}/sales?from_ms=${from}`);
      if (sku === state.selected) {
        sales.last = { answer, from };
        drawSales();
      }
      clearProblem('sales');
    } catch (e) {
      if (sku === state.selected) sales.dirty = true;
      reportProblem('sales', e);
    } finally {
      sales.inFlight = false;
    }
  }

  function drawSales() {
    const last = state.sales.last;
    if (!last) return;
    const { answer } = last;
    const bucketMs = answer.bucket_ms || BUCKET_MS;
    const newest = answer.buckets.reduce((m, b) => Math.max(m, b.start_ms), 0);
    const from = Math.max(last.from, newest - (SALES_WINDOW_MINUTES - 1) * bucketMs);
    const slots = Array.from({ length: SALES_WINDOW_MINUTES }, () => ({ reserved: 0, paid: 0, released: 0 }));
    const totals = { reserved: 0, paid: 0, cancelled: 0, expired: 0, refunded: 0 };
    for (const b of answer.buckets) {
      for (const k of Object.keys(totals)) totals[k] += b[k];
      const i = Math.floor((b.start_ms - from) / bucketMs);
      if (i < 0 || i >= slots.length) continue;
      slots[i].reserved += b.reserved;
      slots[i].paid += b.paid;
      slots[i].released += b.cancelled + b.expired + b.refunded;
    }

    const container = $('sales');
    container.dataset.selectedSku = answer.sku;
    for (const k of Object.keys(totals)) container.dataset[k] = String(totals[k]);
    container.dataset.buckets = String(answer.buckets.length);
    let canvas = $('sales-chart');
    if (!canvas) {
      canvas = document.createElement('canvas');
      canvas.id = 'sales-chart';
      canvas.setAttribute('role', 'img');
      container.append(canvas);
    }
    canvas.setAttribute(
      'aria-label',
      `${answer.sku}: ${totals.reserved} reserved, ${totals.paid} paid in the last ${SALES_WINDOW_MINUTES} minutes`,
    );
    const width = Math.max(200, container.clientWidth);
    const height = 200;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim() || '#888';
    const left = 48;
    const bottom = 22;
    const top = 8;
    const plotW = width - left - 8;
    const plotH = height - top - bottom;
    const peak = Math.max(1, ...slots.map((s) => s.reserved + s.paid + s.released));
    const scale = niceCeiling(peak);

    g.font = '11px system-ui, sans-serif';
    g.fillStyle = color('--muted');
    g.strokeStyle = color('--grid');
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const fraction of [0, 0.5, 1]) {
      // Units are whole: a half-way line at 2.5 would be labelled with a number it is not.
      if (!Number.isInteger(scale * fraction)) continue;
      const y = top + plotH - fraction * plotH;
      g.beginPath();
      g.moveTo(left, Math.round(y) + 0.5);
      g.lineTo(left + plotW, Math.round(y) + 0.5);
      g.stroke();
      g.fillText(fmt(scale * fraction), left - 6, y);
    }

    const slotW = plotW / slots.length;
    const barW = Math.max(1, slotW - 2);
    g.textAlign = 'center';
    g.textBaseline = 'top';
    slots.forEach((slot, i) => {
      const x = left + i * slotW + 1;
      let y = top + plotH;
      for (const [kind, cssVar] of [['paid', '--sold'], ['reserved', '--reserved'], ['released', '--released']]) {
        const h = (slot[kind] / scale) * plotH;
        if (h <= 0) continue;
        g.fillStyle = color(cssVar);
        g.fillRect(x, y - h, barW, h);
        y -= h;
      }
      const start = from + i * bucketMs;
      if (new Date(start).getMinutes() % 5 === 0) {
        g.fillStyle = color('--muted');
        g.fillText(clock(start, false), x + barW / 2, top + plotH + 6);
      }
    });
    if (answer.buckets.length === 0) {
      g.fillStyle = color('--muted');
      g.textBaseline = 'middle';
      g.fillText('no sales yet', left + plotW / 2, top + plotH / 2);
    }
  }

  // 1, 2, 5 × 10^n at or above `n`, so the axis labels are round numbers.
  function niceCeiling(n) {
    const magnitude = 10 ** Math.floor(Math.log10(n));
    for (const step of [1, 2, 5, 10]) {
      if (step * magnitude >= n) return step * magnitude;
    }
    return 10 * magnitude;
  }

  // ------------------------------------------------------------------------------------------
  // The batch timer
  // ------------------------------------------------------------------------------------------

  function flush() {
    renderFeed();
    showRate();
    const follow = state.latestOrderSku;
    if (!state.pinned && follow && follow !== state.selected
        && Date.now() - state.selectedOrderAt > FOLLOW_AFTER_QUIET_MS) {
      select(follow, false);
      state.selectedOrderAt = Date.now();
    }
    readDirtySkus();
    refreshSales();
  }

  function start() {
    refreshCluster();
    startFeed();
    setInterval(flush, FLUSH_EVERY_MS);
    window.addEventListener('resize', drawSales);
  }

  start();
})();
