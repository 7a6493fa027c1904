// Raw HTTP and SSE helpers for the transport tests (node:http, so every header, including
// Host, is under the test's control).
import http from 'node:http';

export const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

export const ACCEPT_BOTH = 'application/json, text/event-stream';

// Parse SSE text into events [{event, id, data, retry, comment}] (WHATWG "event stream").
export function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (!block.trim()) continue;
    const ev = { data: undefined };
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) { ev.comment = line.slice(1).trim(); continue; }
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') ev.data = ev.data === undefined ? value : `${ev.data}\n${value}`;
      else if (field === 'event' || field === 'id' || field === 'retry') ev[field] = value;
    }
    events.push(ev);
  }
  return events;
}

// The JSON-RPC messages carried by SSE events (priming and keep-alive events skipped).
export function sseMessages(events) {
  return events.filter((e) => e.data).map((e) => JSON.parse(e.data));
}

// One complete request. body: string, or a value sent as JSON.
export function request(url, { method = 'POST', headers = {}, body, timeoutMs = 15000, useAgent = agent } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (payload !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) {
      h['Content-Type'] = 'application/json';
    }
    const req = http.request(url, { method, headers: h, agent: useAgent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        clearTimeout(timer);
        let json;
        const ct = res.headers['content-type'] || '';
        if (ct.startsWith('application/json') && text) {
          try { json = JSON.parse(text); } catch { /* left undefined */ }
        }
        const events = ct.startsWith('text/event-stream') ? parseSse(text) : undefined;
        resolve({ status: res.statusCode, headers: res.headers, text, json, events,
          messages: events ? sseMessages(events) : (json !== undefined ? [json].flat() : []) });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// Open a streaming response (SSE) and read events as they arrive.
//   const s = await openStream(url, {...}); s.status; await s.next(ms); s.close();
export function openStream(url, { method = 'GET', headers = {}, body, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (payload !== undefined) h['Content-Type'] = 'application/json';
    // A private agent: the socket is destroyed on close() and must not be reused.
    const req = http.request(url, { method, headers: h, agent: false }, (res) => {
      clearTimeout(timer);
      let buf = '';
      const queue = [];
      const waiters = [];
      let ended = false;
      let endError = null;
      const flush = () => {
        for (;;) {
          const m = /\r?\n\r?\n/.exec(buf);
          if (!m) break;
          const block = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          for (const ev of parseSse(`${block}\n\n`)) queue.push(ev);
        }
        while (waiters.length && (queue.length || ended)) {
          const w = waiters.shift();
          if (queue.length) w.resolve(queue.shift());
          else w.resolve(null);
        }
      };
      res.setEncoding('utf8');
      res.on('data', (c) => { buf += c; flush(); });
      res.on('end', () => { ended = true; flush(); });
      res.on('error', (e) => { ended = true; endError = e; flush(); });
      res.on('close', () => { ended = true; flush(); });
      const stream = {
        status: res.statusCode,
        headers: res.headers,
        get ended() { return ended && queue.length === 0; },
        get error() { return endError; },
        // Next event (comments included), or null at the end of the stream.
        next(ms = 10000) {
          if (queue.length) return Promise.resolve(queue.shift());
          if (ended) return Promise.resolve(null);
          return new Promise((res2, rej2) => {
            const w = { resolve: (v) => { clearTimeout(t); res2(v); } };
            const t = setTimeout(() => {
              const i = waiters.indexOf(w);
              if (i >= 0) waiters.splice(i, 1);
              rej2(new Error(`no SSE event within ${ms} ms`));
            }, ms);
            waiters.push(w);
          });
        },
        // Next event that carries a JSON-RPC message (skips priming events and comments).
        async nextMessage(ms = 10000) {
          const deadline = Date.now() + ms;
          for (;;) {
            const ev = await stream.next(Math.max(1, deadline - Date.now()));
            if (ev === null) return null;
            if (ev.data) return { event: ev, message: JSON.parse(ev.data) };
          }
        },
        // Read until the stream ends; returns all events.
        async rest(ms = 10000) {
          const out = [];
          const deadline = Date.now() + ms;
          for (;;) {
            const ev = await stream.next(Math.max(1, deadline - Date.now()));
            if (ev === null) return out;
            out.push(ev);
          }
        },
        close() { req.destroy(); res.destroy(); },
      };
      if (!(res.headers['content-type'] || '').startsWith('text/event-stream')) {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => { stream.text = text; resolve(stream); });
        return;
      }
      resolve(stream);
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url}: no response headers within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// ---- MCP over raw HTTP ----

export function initializeMessage(version = '2025-11-25', capabilities = {}) {
  return { jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: version, capabilities, clientInfo: { name: 'agentbox-test', version: '0' } } };
}

// initialize + notifications/initialized. Returns {sid, version, result}.
export async function openSession(url, { version = '2025-11-25', capabilities = {}, headers = {} } = {}) {
  const r = await request(url, { headers: { Accept: ACCEPT_BOTH, ...headers }, body: initializeMessage(version, capabilities) });
  if (r.status !== 200) throw new Error(`initialize: HTTP ${r.status}: ${r.text}`);
  const sid = r.headers['mcp-session-id'];
  if (!sid) throw new Error('initialize: no Mcp-Session-Id');
  const result = r.messages[0].result;
  const n = await request(url, { headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': sid, ...headers },
    body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
  if (n.status !== 202) throw new Error(`initialized: HTTP ${n.status}`);
  return { sid, version: result.protocolVersion, result };
}

// POST one message on a session; resolves the complete response.
export function post(url, sid, body, { headers = {}, ...rest } = {}) {
  return request(url, { headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': sid, ...headers }, body, ...rest });
}
