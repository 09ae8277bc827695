/*
 * Ticker: the live news ticker, on the reader page and embedded in any site.
 *
 *   <script src="https://ticker.example/static/ticker.js" defer></script>
 *   <div data-ticker="https://ticker.example" data-channel="news"></div>
 *
 * Optional attributes: data-timezone (IANA name), data-locale (BCP 47),
 * data-title ("off" leaves the tab title alone). No framework, no build step;
 * every piece of data becomes text (textContent), never HTML, so it runs under
 * a strict Content-Security-Policy with Trusted Types. The live protocol is
 * docs/protocol.md; docs/web.md describes the behaviour.
 */
(function () {
  "use strict";

  var SCRIPT = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  var PAGE_SIZE = 20;
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_CAP_MS = 30000;
  var BACKOFF_FLOOR_MS = 100;
  var FRESH_MS = 4000;
  /* Close codes after which reconnecting cannot help (docs/protocol.md). */
  var FINAL_CODES = [1000, 1003, 1008, 1009, 4400];

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  /** The URL if it is absolute http(s), else null: nothing else ever becomes a link. */
  function safeUrl(value) {
    if (typeof value !== "string") return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  /**
   * A stream cursor "ms-seq" as two exact integers (both may pass 2^53), or null if it is none.
   * @param {unknown} cursor
   * @returns {[bigint, bigint] | null}
   */
  function parseCursor(cursor) {
    var match = /^([0-9]+)-([0-9]+)$/.exec(String(cursor));
    return match ? [BigInt(match[1]), BigInt(match[2])] : null;
  }

  /**
   * True when cursor `a` comes after cursor `b` in the stream (any `a` is after no `b`).
   * @param {string} a
   * @param {string | null | undefined} b
   * @returns {boolean}
   */
  function cursorAfter(a, b) {
    if (!b) return true;
    var x = parseCursor(a), y = parseCursor(b);
    if (!x) return false;
    if (!y) return true;
    return x[0] !== y[0] ? x[0] > y[0] : x[1] > y[1];
  }

  /**
   * Whether to reconnect (with backoff, by cursor) after the server closed with `code`;
   * unknown codes reconnect (docs/protocol.md).
   * @param {number} code
   * @returns {boolean}
   */
  function shouldReconnect(code) {
    return FINAL_CODES.indexOf(code) < 0;
  }

  /**
   * Newest first by (published_at, id), as the server pages them: "<ms, 15 digits>:<id>".
   * @param {{published_at: string, id: string}} item
   * @returns {string}
   */
  function sortKey(item) {
    var ms = String(Date.parse(item.published_at));
    return "000000000000000".slice(ms.length) + ms + ":" + item.id;
  }

  function capital(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  /** Day headers and times in the display time zone (DST-correct per instant). */
  function Clock(timeZone, locale) {
    this.time = new Intl.DateTimeFormat(locale, { timeZone: timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    this.day = new Intl.DateTimeFormat(locale, { timeZone: timeZone, year: "numeric", month: "long", day: "numeric", weekday: "long" });
    this.key = new Intl.DateTimeFormat("en-CA", { timeZone: timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
    this.full = new Intl.DateTimeFormat(locale, { timeZone: timeZone, day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }
  Clock.prototype.dayKey = function (date) {
    return this.key.format(date);
  };
  Clock.prototype.dayLabel = function (date) {
    var p = {};
    this.day.formatToParts(date).forEach(function (part) { p[part.type] = part.value; });
    return p.year + ", " + p.weekday + " \u00b7 " + p.day + " " + p.month;
  };

  /**
   * One live connection: jittered exponential backoff, resume by cursor, no
   * message twice. `handlers.message(msg)` gets every snapshot, event and
   * reset; `handlers.state(name)` gets "live", "reconnecting" or "offline".
   */
  function Live(server, params, handlers) {
    this.base = server.replace(/^http/, "ws") + "/ws";
    this.params = params;
    this.handlers = handlers;
    this.cursor = null;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    var self = this;
    window.addEventListener("online", function () { if (self.timer) self.retryNow(); });
  }
  Live.prototype.start = function (cursor) {
    this.cursor = cursor;
    this.open();
  };
  Live.prototype.url = function () {
    var query = new URLSearchParams();
    Object.keys(this.params).forEach(function (k) { if (this.params[k]) query.set(k, this.params[k]); }, this);
    if (this.cursor) query.set("cursor", this.cursor);
    var text = query.toString();
    return this.base + (text ? "?" + text : "");
  };
  Live.prototype.open = function () {
    var self = this;
    var socket;
    this.timer = null;
    try {
      socket = new WebSocket(this.url());
    } catch (e) {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.onopen = function () {
      self.attempt = 0;
      self.handlers.state("live");
    };
    socket.onmessage = function (event) {
      String(event.data).split("\n").forEach(function (line) {
        if (!line.trim()) return;
        var msg;
        try { msg = JSON.parse(line); } catch (e) { return; }
        self.receive(msg);
      });
    };
    socket.onclose = function (event) {
      if (self.socket !== socket) return;
      self.socket = null;
      if (shouldReconnect(event.code)) self.retry();
      else self.handlers.state("offline");
    };
  };
  Live.prototype.receive = function (msg) {
    if (msg.type === "event") {
      if (this.cursor && !cursorAfter(msg.cursor, this.cursor)) return;
      this.cursor = msg.cursor;
    } else if (msg.type === "snapshot") {
      this.cursor = msg.cursor;
    }
    this.handlers.message(msg);
  };
  Live.prototype.retry = function () {
    var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, this.attempt));
    this.attempt += 1;
    this.handlers.state("reconnecting");
    var self = this;
    this.timer = setTimeout(function () { self.open(); }, Math.max(BACKOFF_FLOOR_MS, Math.random() * ceiling));
  };
  Live.prototype.retryNow = function () {
    clearTimeout(this.timer);
    this.open();
  };

  function getJson(url) {
    return fetch(url, { credentials: "omit", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(url + " answered " + r.status);
      return r.json();
    });
  }

  var STATE_TEXT = { connecting: "Connecting\u2026", live: "Live", reconnecting: "Reconnecting\u2026", offline: "Offline" };

  /** The server an element names, else the one this script came from. */
  function serverOf(root) {
    var named = root.getAttribute("data-ticker");
    return (named || (SCRIPT && SCRIPT.src ? new URL(SCRIPT.src).origin : location.origin)).replace(/\/+$/, "");
  }

  /** One ticker mounted on `root`. */
  function Ticker(root) {
    this.root = root;
    this.server = serverOf(root);
    this.channel = root.getAttribute("data-channel") || "";
    this.useTitle = root.getAttribute("data-title") !== "off";
    this.baseTitle = document.title;
    this.items = new Map();
    this.rows = new Map();
    this.pinned = new Map();
    this.pinRows = new Map();
    this.pending = new Map();
    this.paused = false;
    this.hasMore = false;
    /** @type {Clock | null} */
    this.clock = null;
    /** @type {Live | null} */
    this.live = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    this.build();
  }

  Ticker.prototype.build = function () {
    var root = this.root, self = this;
    root.classList.add("tk");
    if (!root.hasAttribute("aria-label") && !root.hasAttribute("aria-labelledby")) root.setAttribute("aria-label", "Latest news");
    var head = el("div", "tk-head");
    this.status = el("span", "tk-status");
    this.statusText = el("span", "tk-status-text");
    this.status.append(el("span", "tk-dot"), this.statusText);
    this.pauseButton = el("button", "tk-pause", "Pause");
    this.pauseButton.type = "button";
    this.pauseButton.setAttribute("aria-pressed", "false");
    this.pauseButton.addEventListener("click", function () { self.setPaused(!self.paused); });
    head.append(el("h2", "tk-heading", "Latest news"), this.status, this.pauseButton);

    this.newButton = el("button", "tk-new");
    this.newButton.type = "button";
    this.newButton.hidden = true;
    this.newButton.addEventListener("click", function () { self.flush(true); });
    this.announcer = el("div", "tk-sr");
    this.announcer.setAttribute("aria-live", "polite");
    this.announcer.setAttribute("aria-atomic", "true");
    this.pinList = el("ul", "tk-pinned");
    this.pinList.setAttribute("aria-label", "Pinned");
    this.pinList.hidden = true;
    this.feed = el("div", "tk-feed");
    this.empty = el("p", "tk-empty", "Loading the latest news\u2026");
    this.moreButton = el("button", "tk-more", "More news");
    this.moreButton.type = "button";
    this.moreButton.hidden = true;
    this.moreButton.addEventListener("click", function () { self.loadMore(); });
    root.replaceChildren(head, this.newButton, this.announcer, this.pinList, this.feed, this.empty, this.moreButton);
    this.setState("connecting");

    document.addEventListener("visibilitychange", function () { self.updateCounters(); });
  };

  Ticker.prototype.setState = function (name) {
    this.state = name;
    this.status.setAttribute("data-state", name);
    this.statusText.textContent = STATE_TEXT[name];
    this.root.setAttribute("data-state", name);
  };

  Ticker.prototype.start = function () {
    var self = this, root = this.root;
    var tz = root.getAttribute("data-timezone"), locale = root.getAttribute("data-locale");
    var settings = tz && locale ? Promise.resolve({ timezone: tz, locale: locale }) : getJson(this.server + "/widget.json");
    return settings.then(function (s) {
      self.clock = new Clock(tz || s.timezone, locale || s.locale);
      return self.loadFirst();
    });
  };

  Ticker.prototype.loadFirst = function () {
    var self = this;
    var query = "?limit=" + PAGE_SIZE + (this.channel ? "&channel=" + encodeURIComponent(this.channel) : "");
    return getJson(this.server + "/api/items" + query).then(function (page) {
      self.replaceAll(page.items, page.pinned || [], page.next != null);
      self.live = new Live(self.server, { channel: self.channel }, {
        message: function (msg) { self.receive(msg); },
        state: function (name) { self.setState(name); },
      });
      self.live.start(page.cursor);
    }, function () {
      self.setState("reconnecting");
      self.retryTimer = setTimeout(function () { self.loadFirst(); }, 1000 + Math.random() * 2000);
    });
  };

  Ticker.prototype.replaceAll = function (items, pinned, more) {
    var self = this;
    this.items.clear();
    this.rows.clear();
    this.pinned.clear();
    this.pinRows.clear();
    this.pending.clear();
    this.feed.replaceChildren();
    this.pinList.replaceChildren();
    items.forEach(function (item) { self.insert(item, false); });
    pinned.forEach(function (item) { self.pin(item); });
    this.hasMore = more;
    this.updateCounters();
  };

  Ticker.prototype.receive = function (msg) {
    if (msg.type === "snapshot") {
      this.replaceAll(msg.items || [], msg.pinned || [], msg.next != null || (msg.items || []).length >= PAGE_SIZE);
    } else if (msg.type === "event" && msg.item) {
      if (msg.op === "retract" || (this.channel && msg.item.channel !== this.channel)) this.remove(msg.item.id);
      else if (msg.op === "publish" && !this.items.has(msg.item.id)) this.arrive(msg.item);
      else this.change(msg.item);
    }
  };

  Ticker.prototype.canInsert = function () {
    return !this.paused && document.visibilityState === "visible" && this.atTop();
  };

  Ticker.prototype.atTop = function () {
    return this.root.scrollTop <= 2 && this.root.getBoundingClientRect().top >= -2;
  };

  Ticker.prototype.arrive = function (item) {
    if (this.pending.has(item.id) || !this.canInsert()) {
      this.pending.set(item.id, item);
      this.updateCounters();
      this.announce();
      return;
    }
    this.insert(item, true);
    if (item.pinned) this.pin(item);
    this.updateCounters();
    this.unannounced = (this.unannounced || 0) + 1;
    this.announce();
  };

  Ticker.prototype.change = function (item) {
    if (this.pending.has(item.id)) {
      this.pending.set(item.id, item);
      return;
    }
    var row = this.rows.get(item.id);
    if (row) {
      var old = this.items.get(item.id);
      if (old.published_at !== item.published_at) {
        this.removeRow(item.id);
        this.insert(item, false);
      } else {
        this.items.set(item.id, item);
        this.fill(row, item);
      }
    } else if (!this.hasMore || sortKey(item) > this.oldestKey()) {
      this.insert(item, false);
    }
    if (item.pinned) this.pin(item);
    else this.unpin(item.id);
    this.updateCounters();
  };

  Ticker.prototype.remove = function (id) {
    this.pending.delete(id);
    this.removeRow(id);
    this.unpin(id);
    this.updateCounters();
  };

  Ticker.prototype.oldestKey = function () {
    var oldest = null;
    this.items.forEach(function (item) {
      var key = sortKey(item);
      if (oldest === null || key < oldest) oldest = key;
    });
    return oldest;
  };

  /** Puts the item's row in its day group, in (published_at, id) order. */
  Ticker.prototype.insert = function (item, fresh) {
    if (this.rows.has(item.id)) return;
    var when = new Date(item.published_at);
    var dayKey = this.clock.dayKey(when);
    var group = this.feed.querySelector('[data-day="' + dayKey + '"]');
    if (!group) {
      group = el("section", "tk-day");
      group.setAttribute("data-day", dayKey);
      group.append(el("h3", "tk-dayhead", this.clock.dayLabel(when)), el("ul", "tk-list"));
      var next = null;
      this.feed.querySelectorAll(".tk-day").forEach(function (g) {
        if (!next && g.getAttribute("data-day") < dayKey) next = g;
      });
      this.feed.insertBefore(group, next);
    }
    var row = el("li", "tk-item");
    row.setAttribute("data-id", item.id);
    row.setAttribute("data-key", sortKey(item));
    this.fill(row, item);
    var list = group.querySelector(".tk-list");
    var key = sortKey(item);
    var before = null;
    for (var child = list.firstElementChild; child; child = child.nextElementSibling) {
      if (child.getAttribute("data-key") < key) { before = child; break; }
    }
    list.insertBefore(row, before);
    this.items.set(item.id, item);
    this.rows.set(item.id, row);
    if (fresh) this.highlight(row);
  };

  Ticker.prototype.highlight = function (row) {
    row.classList.add("tk-fresh");
    setTimeout(function () { row.classList.remove("tk-fresh"); }, FRESH_MS);
  };

  Ticker.prototype.removeRow = function (id) {
    var row = this.rows.get(id);
    this.items.delete(id);
    this.rows.delete(id);
    if (!row) return;
    var group = row.closest(".tk-day");
    if (row.contains(document.activeElement)) this.moreButton.focus();
    row.remove();
    if (group && !group.querySelector(".tk-item")) group.remove();
  };

  Ticker.prototype.pin = function (item) {
    var row = this.pinRows.get(item.id);
    this.pinned.set(item.id, item);
    if (!row) {
      row = el("li", "tk-item tk-item-pinned");
      row.setAttribute("data-id", item.id);
      this.pinRows.set(item.id, row);
      this.pinList.append(row);
    }
    this.fill(row, item);
  };

  Ticker.prototype.unpin = function (id) {
    var row = this.pinRows.get(id);
    this.pinned.delete(id);
    this.pinRows.delete(id);
    if (row) row.remove();
  };

  /** (Re)draws one row from the item, as text; keeps keyboard focus where it was. */
  Ticker.prototype.fill = function (row, item) {
    var focused = row.contains(document.activeElement) ? document.activeElement.className : null;
    var clock = this.clock;
    var published = new Date(item.published_at);
    var time = el("time", "tk-time", clock.time.format(published));
    time.setAttribute("datetime", item.published_at);
    var body = el("div", "tk-body");
    var headline = el("p", "tk-headline");
    var href = safeUrl(item.url);
    if (href) {
      var link = el("a", "tk-link", item.headline);
      link.href = href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      headline.append(link);
    } else {
      headline.textContent = item.headline;
    }
    if (item.lang) headline.lang = item.lang;
    body.append(headline);
    var meta = el("p", "tk-meta");
    if (row.classList.contains("tk-item-pinned")) meta.append(el("span", "tk-tag tk-tag-pinned", "Pinned"));
    (item.labels || []).forEach(function (label) {
      var tag = el("span", "tk-tag", capital(label));
      if (/^[a-z]+$/.test(label)) tag.classList.add("tk-tag-" + label);
      meta.append(tag);
    });
    if (item.updated_at) {
      var badge = el("span", "tk-badge tk-badge-updated", "Updated");
      badge.tabIndex = 0;
      badge.append(el("span", "tk-tip", " " + clock.full.format(new Date(item.updated_at))));
      meta.append(badge);
    }
    if (item.correction) meta.append(el("span", "tk-badge tk-badge-corrected", "Corrected"));
    if (meta.childNodes.length) body.append(meta);
    if (item.correction) {
      var note = el("p", "tk-note");
      note.append(el("strong", null, "Correction: "), document.createTextNode(item.correction));
      body.append(note);
    }
    row.setAttribute("data-version", String(item.version));
    row.replaceChildren(time, body);
    if (focused) {
      var again = row.getElementsByClassName(focused.split(" ")[0])[0];
      if (again) again.focus();
    }
  };

  Ticker.prototype.flush = function (byReader) {
    var self = this, count = this.pending.size;
    this.pending.forEach(function (item) {
      self.insert(item, true);
      if (item.pinned) self.pin(item);
    });
    this.pending.clear();
    this.updateCounters();
    if (byReader && count) {
      var first = this.feed.querySelector(".tk-fresh") || this.feed.querySelector(".tk-item");
      if (this.root.scrollTop) this.root.scrollTop = 0;
      if (this.root.getBoundingClientRect().top < 0) this.root.scrollIntoView({ block: "start" });
      if (first) {
        first.tabIndex = -1;
        first.focus({ preventScroll: true });
      }
    }
  };

  Ticker.prototype.setPaused = function (paused) {
    this.paused = paused;
    this.pauseButton.textContent = paused ? "Resume" : "Pause";
    this.pauseButton.setAttribute("aria-pressed", String(paused));
    this.root.classList.toggle("tk-paused", paused);
    if (!paused && this.atTop()) this.flush(false);
    this.updateCounters();
  };

  Ticker.prototype.updateCounters = function () {
    var n = this.pending.size;
    this.newButton.hidden = n === 0;
    this.newButton.textContent = n + " new";
    if (this.useTitle) document.title = n ? "(" + n + ") " + this.baseTitle : this.baseTitle;
    this.pinList.hidden = this.pinned.size === 0;
    var empty = this.items.size === 0 && this.pinned.size === 0;
    this.empty.hidden = !empty;
    if (empty) this.empty.textContent = "No news yet.";
    this.moreButton.hidden = !this.hasMore;
  };

  /** One polite announcement at most about once a second, "N new", never the headlines. */
  Ticker.prototype.announce = function () {
    var self = this;
    clearTimeout(this.announceTimer);
    this.announceTimer = setTimeout(function () {
      var n = self.pending.size || self.unannounced;
      self.unannounced = 0;
      if (n) self.announcer.textContent = n + " new";
    }, 800);
  };

  Ticker.prototype.loadMore = function () {
    var self = this, oldest = this.oldestKey();
    if (!oldest) return;
    this.moreButton.disabled = true;
    var query = "?limit=" + PAGE_SIZE + "&before=" + encodeURIComponent(oldest) +
      (this.channel ? "&channel=" + encodeURIComponent(this.channel) : "");
    getJson(this.server + "/api/items" + query).then(function (page) {
      page.items.forEach(function (item) { if (!self.pending.has(item.id)) self.insert(item, false); });
      self.hasMore = page.next != null;
      self.moreButton.textContent = "More news";
    }, function () {
      self.moreButton.textContent = "More news (try again)";
    }).then(function () {
      self.moreButton.disabled = false;
      var focused = document.activeElement === self.moreButton;
      self.updateCounters();
      if (focused && self.moreButton.hidden) {
        var last = self.feed.querySelector(".tk-day:last-child .tk-item:last-child");
        if (last) { last.tabIndex = -1; last.focus(); }
      }
    });
  };

  window.Ticker = {
    Clock: Clock, Live: Live, safeUrl: safeUrl, sortKey: sortKey, cursorAfter: cursorAfter,
    shouldReconnect: shouldReconnect, getJson: getJson, mounted: [],
  };

  function mount() {
    document.querySelectorAll("[data-ticker]").forEach(function (root) {
      if (root.classList.contains("tk")) return;
      if (!document.querySelector('link[href$="ticker.css"]')) {
        var css = document.createElement("link");
        css.rel = "stylesheet";
        css.href = serverOf(root) + "/static/ticker.css";
        document.head.append(css);
      }
      var ticker = new Ticker(root);
      window.Ticker.mounted.push(ticker);
      ticker.start();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
