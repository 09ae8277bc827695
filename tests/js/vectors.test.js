// The rules web/ticker.js shares with the server, from tests/vectors/protocol.json
// (tests/test_vectors.py runs the same vectors in Python). Run: node --test tests/js/
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const test = require("node:test");
const vm = require("node:vm");

const root = path.join(__dirname, "..", "..");
const vectors = JSON.parse(fs.readFileSync(path.join(root, "tests", "vectors", "protocol.json"), "utf8"));

/** web/ticker.js in a bare page (no element to mount on): what it puts on window.Ticker. */
function loadTicker() {
  const document = { currentScript: null, readyState: "complete", querySelectorAll: () => [] };
  const window = { addEventListener() {} };
  const context = vm.createContext({ window, document, URL, Intl, location: { origin: "http://127.0.0.1" } });
  vm.runInContext(fs.readFileSync(path.join(root, "web", "ticker.js"), "utf8"), context, { filename: "ticker.js" });
  return window.Ticker;
}

const Ticker = loadTicker();

test("cursor order", () => {
  for (const c of vectors.cursor_order.cases) {
    assert.equal(Ticker.cursorAfter(c.a, c.b), c.after, `${c.a} after ${c.b}`);
  }
});

test("sort keys", () => {
  for (const c of vectors.sort_keys.cases) {
    assert.equal(Ticker.sortKey(c), c.key, c.published_at);
  }
});

test("newest first", () => {
  const expected = vectors.sort_keys.newest_first;
  const sorted = [...expected].reverse().sort((x, y) => {
    const a = Ticker.sortKey(x), b = Ticker.sortKey(y);
    return a < b ? 1 : a > b ? -1 : 0;
  });
  assert.deepEqual(sorted, expected);
});

test("close codes and their reconnect meaning", () => {
  for (const c of vectors.close_codes.cases) {
    assert.equal(Ticker.shouldReconnect(c.code), c.reconnect, String(c.code));
  }
});
