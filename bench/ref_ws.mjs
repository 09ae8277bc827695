// Reference server: Node's `ws` package, one pre-serialized frame written to every socket.
//
// What refstream.py does for the Python references, in Node: one XREAD reader
// follows `{prefix}:stream`; each event's text frame is built once
// (`WebSocket.Sender.frame`) and the same bytes are written to every open
// socket, skipping none and awaiting none; a socket with more than 1 MiB
// unsent is terminated as too slow. A client without a cursor gets a
// `snapshot` (empty item list); with a cursor it is caught up by its own
// XRANGE calls first. A minimal RESP2 client keeps the reference free of
// any package but `ws` (installed by bench/fanout.py into bench/.node).
//
//   node bench/ref_ws.mjs --redis-url redis://127.0.0.1:6379 --prefix bench-x [--host H] [--port P]

import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, ".node", "package.json"));
const { WebSocketServer, WebSocket } = require("ws");

const READ_COUNT = 500;
const READ_BLOCK_MS = 1000;
const REPLAY_COUNT = 1000;
const BACKLOG = 2048;
const SLOW_BYTES = 1024 * 1024;

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

/** A RESP2 connection: commands are pipelined, replies come back in order. */
class Redis {
  constructor(url) {
    const { hostname, port } = new URL(url);
    this.socket = net.connect(Number(port || 6379), hostname);
    this.socket.setNoDelay(true);
    this.buffer = Buffer.alloc(0);
    this.waiting = [];
    this.socket.on("data", (chunk) => this.received(chunk));
    this.socket.on("error", (err) => {
      console.error(`redis: ${err.message}`);
      process.exit(1);
    });
  }

  command(...args) {
    const parts = [`*${args.length}\r\n`];
    for (const arg of args) {
      const text = String(arg);
      parts.push(`$${Buffer.byteLength(text)}\r\n${text}\r\n`);
    }
    this.socket.write(parts.join(""));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  received(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const parsed = parse(this.buffer, at);
      if (parsed === null) break;
      at = parsed[1];
      const { resolve, reject } = this.waiting.shift();
      if (parsed[0] instanceof Error) reject(parsed[0]);
      else resolve(parsed[0]);
    }
    this.buffer = this.buffer.subarray(at);
  }
}

/** One RESP2 value from `buf` at `at`: [value, next] or null when incomplete. */
function parse(buf, at) {
  const end = buf.indexOf("\r\n", at);
  if (end < 0) return null;
  const kind = String.fromCharCode(buf[at]);
  const line = buf.toString("utf8", at + 1, end);
  const next = end + 2;
  if (kind === "+") return [line, next];
  if (kind === "-") return [new Error(line), next];
  if (kind === ":") return [Number(line), next];
  if (kind === "$") {
    const size = Number(line);
    if (size < 0) return [null, next];
    if (buf.length < next + size + 2) return null;
    return [buf.toString("utf8", next, next + size), next + size + 2];
  }
  if (kind === "*") {
    const count = Number(line);
    if (count < 0) return [null, next];
    const items = [];
    let pos = next;
    for (let i = 0; i < count; i++) {
      const item = parse(buf, pos);
      if (item === null) return null;
      items.push(item[0]);
      pos = item[1];
    }
    return [items, pos];
  }
  throw new Error(`unexpected RESP type ${kind}`);
}

function key(cursor) {
  const [ms, seq] = cursor.split("-");
  return [Number(ms), Number(seq || 0)];
}

function before(a, b) {
  const [x, y] = [key(a), key(b)];
  return x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]);
}

function eventText(cursor, fields) {
  const f = {};
  for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  const ts = Number(f.ts || cursor.split("-")[0]);
  return `{"type":"event","cursor":${JSON.stringify(cursor)},"op":${JSON.stringify(f.op)},"ts":${ts},"item":${f.item}}`;
}

const redisUrl = option("--redis-url");
const prefix = option("--prefix");
const streamKey = `{${prefix}}:stream`;
const tailRedis = new Redis(redisUrl);
const replayRedis = new Redis(redisUrl);
const clients = new Set();
let position = "0-0";

function broadcast(text) {
  const frame = Buffer.concat(
    WebSocket.Sender.frame(Buffer.from(text), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true }),
  );
  for (const client of clients) {
    const socket = client._socket;
    if (socket.writableLength > SLOW_BYTES) {
      clients.delete(client);
      client.terminate();
    } else {
      socket.write(frame);
    }
  }
}

async function follow() {
  for (;;) {
    let reply;
    try {
      reply = await tailRedis.command("XREAD", "COUNT", READ_COUNT, "BLOCK", READ_BLOCK_MS, "STREAMS", streamKey, position);
    } catch (err) {
      console.error(`XREAD failed: ${err.message}; retrying from ${position}`);
      continue;
    }
    for (const [, entries] of reply || []) {
      for (const [cursor, fields] of entries) {
        position = cursor;
        broadcast(eventText(cursor, fields));
      }
    }
  }
}

async function admit(ws, cursor) {
  if (!cursor) {
    cursor = position;
    ws.send(JSON.stringify({ type: "snapshot", cursor, items: [], pinned: [] }));
  }
  let last = cursor;
  while (before(last, position)) {
    const rows = await replayRedis.command("XRANGE", streamKey, `(${last}`, position, "COUNT", REPLAY_COUNT);
    if (!rows.length) break;
    for (const [cursor, fields] of rows) {
      ws.send(eventText(cursor, fields));
      last = cursor;
    }
  }
  if (ws.readyState === WebSocket.OPEN) clients.add(ws);
}

const latest = await tailRedis.command("XREVRANGE", streamKey, "+", "-", "COUNT", 1);
position = latest.length ? latest[0][0] : "0-0";

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const http = await import("node:http");
const web = http.createServer();
web.on("upgrade", (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    const cursor = new URL(req.url, "http://x").searchParams.get("cursor") || "";
    ws.on("close", () => clients.delete(ws));
    ws.on("error", () => clients.delete(ws));
    admit(ws, cursor).catch((err) => {
      console.error(`catch-up failed: ${err.message}`);
      ws.terminate();
    });
  });
});
web.on("connection", (socket) => socket.setNoDelay(true));
web.listen({ host: option("--host", "127.0.0.1"), port: Number(option("--port", "0")), backlog: BACKLOG }, () => {
  const { address, port } = web.address();
  console.log(`Reference serving on http://${address}:${port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
follow();
