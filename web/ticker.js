/*
 * Ticker: the live news ticker, on the reader page and embedded in any site.
 *
 *   <script src="https://ticker.example/static/ticker.js" defer></script>
 *   <div data-ticker="https://ticker.example" data-channel="news"></div>
 *
 * Optional attributes: data-timezone (IANA name), data-locale (BCP 47),
 * data-title ("off" leaves the tab title alone), data-photos ("off": no lead photo),
 * data-relative ("on": "5 min ago" beside each time). The locale picks the
 * language of the ticker's own words (English, Ukrainian, Arabic; English
 * otherwise) and right-to-left layout for Arabic, Hebrew, Persian and Urdu. No framework, no build step;
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
  var BANNER_MS = 5 * 60 * 1000;
  var KEY_EVENTS = 50;
  /* Close codes after which reconnecting cannot help (docs/protocol.md). */
  var FINAL_CODES = [1000, 1003, 1008, 1009, 4400];
  /* A 1008 whose reason starts "origin:" refuses this page's site: only the server's
     configuration can change that, so the widget asks again only this rarely (jittered up to twice as long). */
  var REFUSED_RETRY_MS = 10 * 60 * 1000;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  /** The URL if it is absolute http(s) with no user or password, else null: nothing else ever becomes a link. */
  function safeUrl(value) {
    if (typeof value !== "string") return null;
    try {
      var url = new URL(value);
      var web = url.protocol === "http:" || url.protocol === "https:";
      return web && !url.username && !url.password ? url.href : null;
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
    this.short = new Intl.DateTimeFormat(locale, { timeZone: timeZone, day: "numeric", month: "short" });
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
      if (event.code === 1008 && /^origin:/.test(event.reason)) self.refused(event.reason);
      else if (shouldReconnect(event.code)) self.retry();
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
  /** The server does not allow this site: say why (once in the console), and ask again only after minutes. */
  Live.prototype.refused = function (reason) {
    if (!this.warned) {
      this.warned = true;
      console.warn("Ticker: " + this.base + " refuses the live ticker on " + location.origin + " (\"" + reason +
        "\"); the server's TICKER_ALLOWED_ORIGINS must list " + location.origin + ".");
    }
    this.handlers.state("refused");
    var self = this;
    this.timer = setTimeout(function () { self.open(); }, REFUSED_RETRY_MS * (1 + Math.random()));
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

  var STATE_TEXT = {
    connecting: "Connecting\u2026", live: "Live", reconnecting: "Reconnecting\u2026", offline: "Offline",
    refused: "This site is not allowed to show the live ticker: the server\u2019s TICKER_ALLOWED_ORIGINS must list it",
  };
  var RTL = ["ar", "he", "fa", "ur"];
  var AGO_MS = 12 * 3600 * 1000;

  /** The ticker's own words by language; English is the key, so a missing word stays English. */
  var STRINGS = {
    uk: {
      "Latest news": "\u041e\u0441\u0442\u0430\u043d\u043d\u0456 \u043d\u043e\u0432\u0438\u043d\u0438",
      "Pause": "\u041f\u0430\u0443\u0437\u0430",
      "Resume": "\u041f\u0440\u043e\u0434\u043e\u0432\u0436\u0438\u0442\u0438",
      "{n} new": "\u041d\u043e\u0432\u0438\u0445: {n}",
      "More news": "\u0411\u0456\u043b\u044c\u0448\u0435 \u043d\u043e\u0432\u0438\u043d",
      "More news (try again)": "\u0411\u0456\u043b\u044c\u0448\u0435 \u043d\u043e\u0432\u0438\u043d (\u0441\u043f\u0440\u043e\u0431\u0443\u0439\u0442\u0435 \u0449\u0435)",
      "Loading the latest news\u2026": "\u0417\u0430\u0432\u0430\u043d\u0442\u0430\u0436\u0435\u043d\u043d\u044f \u043d\u043e\u0432\u0438\u043d\u2026",
      "No news yet.": "\u041d\u043e\u0432\u0438\u043d \u0449\u0435 \u043d\u0435\u043c\u0430\u0454.",
      "Connecting\u2026": "\u0417\u2019\u0454\u0434\u043d\u0430\u043d\u043d\u044f\u2026",
      "Live": "\u041d\u0430\u0436\u0438\u0432\u043e",
      "Reconnecting\u2026": "\u041f\u0435\u0440\u0435\u043f\u0456\u0434\u2019\u0454\u0434\u043d\u0430\u043d\u043d\u044f\u2026",
      "Offline": "\u041e\u0444\u043b\u0430\u0439\u043d",
      "Updated": "\u041e\u043d\u043e\u0432\u043b\u0435\u043d\u043e",
      "Corrected": "\u0412\u0438\u043f\u0440\u0430\u0432\u043b\u0435\u043d\u043e",
      "Correction: ": "\u0412\u0438\u043f\u0440\u0430\u0432\u043b\u0435\u043d\u043d\u044f: ",
      "Pinned": "\u0417\u0430\u043a\u0440\u0456\u043f\u043b\u0435\u043d\u043e",
      "Key event": "\u041a\u043b\u044e\u0447\u043e\u0432\u0430 \u043f\u043e\u0434\u0456\u044f",
      "Key events": "\u041a\u043b\u044e\u0447\u043e\u0432\u0456 \u043f\u043e\u0434\u0456\u0457",
      "Key events only": "\u041b\u0438\u0448\u0435 \u043a\u043b\u044e\u0447\u043e\u0432\u0456",
      "Flash": "\u0422\u0435\u0440\u043c\u0456\u043d\u043e\u0432\u043e",
      "Breaking": "\u0429\u043e\u0439\u043d\u043e",
      "Dismiss": "\u0417\u0430\u043a\u0440\u0438\u0442\u0438",
      "Exclusive": "\u0415\u043a\u0441\u043a\u043b\u044e\u0437\u0438\u0432",
      "Opinion": "\u0414\u0443\u043c\u043a\u0430",
      "Interview": "\u0406\u043d\u0442\u0435\u0440\u0432\u2019\u044e",
      "Review": "\u041e\u0433\u043b\u044f\u0434",
      "Analysis": "\u0410\u043d\u0430\u043b\u0456\u0442\u0438\u043a\u0430",
      "Photo": "\u0424\u043e\u0442\u043e",
      "Video": "\u0412\u0456\u0434\u0435\u043e"
    },
    ar: {
      "Latest news": "\u0622\u062e\u0631 \u0627\u0644\u0623\u062e\u0628\u0627\u0631",
      "Pause": "\u0625\u064a\u0642\u0627\u0641 \u0645\u0624\u0642\u062a",
      "Resume": "\u0627\u0633\u062a\u0626\u0646\u0627\u0641",
      "{n} new": "{n} \u062c\u062f\u064a\u062f",
      "More news": "\u0627\u0644\u0645\u0632\u064a\u062f \u0645\u0646 \u0627\u0644\u0623\u062e\u0628\u0627\u0631",
      "Loading the latest news\u2026": "\u062c\u0627\u0631\u064d \u0627\u0644\u062a\u062d\u0645\u064a\u0644\u2026",
      "No news yet.": "\u0644\u0627 \u0623\u062e\u0628\u0627\u0631 \u0628\u0639\u062f.",
      "Connecting\u2026": "\u062c\u0627\u0631\u064d \u0627\u0644\u0627\u062a\u0635\u0627\u0644\u2026",
      "Live": "\u0645\u0628\u0627\u0634\u0631",
      "Reconnecting\u2026": "\u062c\u0627\u0631\u064d \u0625\u0639\u0627\u062f\u0629 \u0627\u0644\u0627\u062a\u0635\u0627\u0644\u2026",
      "Offline": "\u063a\u064a\u0631 \u0645\u062a\u0635\u0644",
      "Updated": "\u0645\u062d\u062f\u0651\u064e\u062b",
      "Corrected": "\u0645\u0635\u062d\u0651\u064e\u062d",
      "Correction: ": "\u062a\u0635\u062d\u064a\u062d: ",
      "Pinned": "\u0645\u062b\u0628\u0651\u064e\u062a",
      "Key event": "\u062d\u062f\u062b \u0631\u0626\u064a\u0633\u064a",
      "Key events": "\u0623\u062d\u062f\u0627\u062b \u0631\u0626\u064a\u0633\u064a\u0629",
      "Key events only": "\u0627\u0644\u0631\u0626\u064a\u0633\u064a\u0629 \u0641\u0642\u0637",
      "Flash": "\u0639\u0627\u062c\u0644 \u062c\u062f\u064b\u0627",
      "Breaking": "\u0639\u0627\u062c\u0644",
      "Dismiss": "\u0625\u063a\u0644\u0627\u0642"
    }
  };

  function language(locale) {
    return String(locale || "en").split("-")[0].toLowerCase();
  }

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
    this.usePhotos = root.getAttribute("data-photos") !== "off";
    this.keyEvents = new Map();
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
    /** @type {string | undefined} */
    this.locale = undefined;
    this.strings = {};
  }

  /** The ticker's word in the reader's language ("{n}" filled in when given). */
  Ticker.prototype.t = function (text, n) {
    var out = this.strings[text] || text;
    return n == null ? out : out.replace("{n}", String(n));
  };

  Ticker.prototype.build = function () {
    var root = this.root, self = this;
    root.classList.add("tk");
    if (!root.hasAttribute("aria-label") && !root.hasAttribute("aria-labelledby")) root.setAttribute("aria-label", this.t("Latest news"));
    var head = el("div", "tk-head");
    this.status = el("span", "tk-status");
    this.statusText = el("span", "tk-status-text");
    this.status.append(el("span", "tk-dot"), this.statusText);
    this.pauseButton = el("button", "tk-pause", this.t("Pause"));
    this.pauseButton.type = "button";
    this.pauseButton.setAttribute("aria-pressed", "false");
    this.pauseButton.addEventListener("click", function () { self.setPaused(!self.paused); });
    head.append(el("h2", "tk-heading", this.t("Latest news")), this.status, this.pauseButton);

    this.newButton = el("button", "tk-new");
    this.newButton.type = "button";
    this.newButton.hidden = true;
    this.newButton.addEventListener("click", function () { self.flush(true); });
    this.announcer = el("div", "tk-sr");
    this.announcer.setAttribute("aria-live", "polite");
    this.announcer.setAttribute("aria-atomic", "true");
    this.banner = el("div", "tk-banner");
    this.banner.setAttribute("role", "alert");
    this.banner.setAttribute("aria-live", "assertive");
    this.lead = el("figure", "tk-lead");
    this.lead.hidden = true;
    this.keyBox = el("nav", "tk-keys");
    this.keyBox.setAttribute("aria-label", this.t("Key events"));
    this.keyBox.hidden = true;
    this.keyList = el("ol", "tk-keylist");
    this.keyFilter = el("button", "tk-keyfilter", this.t("Key events only"));
    this.keyFilter.type = "button";
    this.keyFilter.setAttribute("aria-pressed", "false");
    this.keyFilter.addEventListener("click", function () {
      var on = !root.classList.contains("tk-only-keys");
      root.classList.toggle("tk-only-keys", on);
      self.keyFilter.setAttribute("aria-pressed", String(on));
    });
    var keyHead = el("div", "tk-keyhead");
    keyHead.append(el("h3", "tk-keytitle", this.t("Key events")), this.keyFilter);
    this.keyBox.append(keyHead, this.keyList);
    this.pinList = el("ul", "tk-pinned");
    this.pinList.setAttribute("aria-label", this.t("Pinned"));
    this.pinList.hidden = true;
    this.feed = el("div", "tk-feed");
    this.empty = el("p", "tk-empty", this.t("Loading the latest news\u2026"));
    this.moreButton = el("button", "tk-more", this.t("More news"));
    this.moreButton.type = "button";
    this.moreButton.hidden = true;
    this.moreButton.addEventListener("click", function () { self.loadMore(); });
    root.replaceChildren(head, this.banner, this.newButton, this.announcer, this.lead, this.keyBox, this.pinList, this.feed, this.empty, this.moreButton);
    this.setState("connecting");

    document.addEventListener("visibilitychange", function () { self.updateCounters(); });
  };

  Ticker.prototype.setState = function (name) {
    this.state = name;
    this.status.setAttribute("data-state", name);
    this.statusText.textContent = this.t(STATE_TEXT[name]);
    this.root.setAttribute("data-state", name);
  };

  Ticker.prototype.start = function () {
    var self = this, root = this.root;
    var tz = root.getAttribute("data-timezone"), locale = root.getAttribute("data-locale");
    var settings = tz && locale ? Promise.resolve({ timezone: tz, locale: locale }) : getJson(this.server + "/widget.json");
    return settings.then(function (s) {
      var lang = language(locale || s.locale);
      self.locale = locale || s.locale;
      self.strings = STRINGS[lang] || {};
      if (RTL.indexOf(lang) >= 0 && !root.hasAttribute("dir")) root.dir = "rtl";
      self.clock = new Clock(tz || s.timezone, self.locale);
      self.build();
      if (root.getAttribute("data-relative") === "on") self.startAgo();
      return self.loadFirst();
    });
  };

  Ticker.prototype.loadFirst = function () {
    var self = this;
    var query = "?limit=" + PAGE_SIZE + (this.channel ? "&channel=" + encodeURIComponent(this.channel) : "");
    // The key events come with the first page, so the whole ticker appears in one frame (no layout shift).
    var keys = getJson(this.server + "/api/items" + this.keyQuery()).catch(function () { return { items: [] }; });
    return Promise.all([getJson(this.server + "/api/items" + query), keys]).then(function (answers) {
      var page = answers[0];
      self.replaceAll(page.items, page.pinned || [], page.next != null);
      self.setKeyEvents(answers[1].items);
      var urgent = page.items.filter(function (item) { return item.urgency <= 2; })[0];
      if (urgent && Date.now() - Date.parse(urgent.published_at) < BANNER_MS) self.showBanner(urgent);
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
    this.drawLead();
  };

  Ticker.prototype.receive = function (msg) {
    if (msg.type === "snapshot") {
      this.replaceAll(msg.items || [], msg.pinned || [], msg.next != null || (msg.items || []).length >= PAGE_SIZE);
      this.loadKeyEvents();
    } else if (msg.type === "event" && msg.item) {
      var gone = msg.op === "retract" || (this.channel && msg.item.channel !== this.channel);
      if (gone) this.remove(msg.item.id);
      else if (msg.op === "publish" && !this.items.has(msg.item.id)) this.arrive(msg.item);
      else this.change(msg.item);
      if (!gone && msg.item.key_event) this.keyEvents.set(msg.item.id, msg.item);
      else this.keyEvents.delete(msg.item.id);
      this.drawKeyEvents();
      if (gone && this.bannerId === msg.item.id) this.hideBanner();
      else if (msg.op === "publish" && msg.item.urgency <= 2) this.showBanner(msg.item);
    }
    this.drawLead();
  };

  /** Key events come from the server (older ones may not be loaded yet), then follow the live events. */
  Ticker.prototype.keyQuery = function () {
    return "?key_event=1&limit=" + KEY_EVENTS + (this.channel ? "&channel=" + encodeURIComponent(this.channel) : "");
  };

  Ticker.prototype.loadKeyEvents = function () {
    var self = this;
    getJson(this.server + "/api/items" + this.keyQuery()).then(function (page) {
      self.setKeyEvents(page.items);
    }, function () { /* the list stays as it was; live events keep it current */ });
  };

  Ticker.prototype.setKeyEvents = function (items) {
    var self = this;
    this.keyEvents.clear();
    items.forEach(function (item) { if (item.key_event) self.keyEvents.set(item.id, item); });
    this.drawKeyEvents();
  };

  Ticker.prototype.drawKeyEvents = function () {
    var self = this;
    var items = Array.from(this.keyEvents.values()).sort(function (a, b) { return sortKey(a) < sortKey(b) ? 1 : -1; });
    this.keyList.replaceChildren.apply(this.keyList, items.map(function (item) {
      var li = el("li", "tk-key");
      var when = el("time", "tk-keytime", self.clock.time.format(new Date(item.published_at)));
      when.setAttribute("datetime", item.published_at);
      var jump = el("a", "tk-jump", item.headline);
      jump.href = "#tk-item-" + item.id;
      jump.addEventListener("click", function (event) {
        event.preventDefault();
        self.jumpTo(item);
      });
      li.append(when, document.createTextNode(" "), jump);
      return li;
    }));
    this.keyBox.hidden = items.length === 0;
  };

  /** Scrolls to an item's row, loading older pages until it is there. */
  Ticker.prototype.jumpTo = function (item) {
    var self = this, row = this.rows.get(item.id);
    if (row) {
      row.tabIndex = -1;
      row.scrollIntoView({ block: "center" });
      row.focus({ preventScroll: true });
      return;
    }
    if (this.pending.has(item.id)) {
      this.flush(false);
      this.jumpTo(item);
    } else if (this.hasMore) {
      var oldest = this.oldestKey();
      this.loadMore().then(function () { if (self.oldestKey() !== oldest) self.jumpTo(item); });
    }
  };

  Ticker.prototype.showBanner = function (item) {
    var self = this;
    clearTimeout(this.bannerTimer);
    this.bannerId = item.id;
    var text = el("p", "tk-banner-text");
    text.append(el("strong", "tk-banner-label", this.t(item.urgency === 1 ? "Flash" : "Breaking")), document.createTextNode(" " + item.headline));
    var close = el("button", "tk-banner-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", this.t("Dismiss"));
    close.addEventListener("click", function () { self.hideBanner(); });
    this.banner.replaceChildren(text, close);
    this.root.classList.add("tk-has-banner");
    this.bannerTimer = setTimeout(function () { self.hideBanner(); }, BANNER_MS);
  };

  Ticker.prototype.hideBanner = function () {
    clearTimeout(this.bannerTimer);
    this.bannerId = null;
    this.banner.replaceChildren();
    this.root.classList.remove("tk-has-banner");
  };

  /** The lead photo: a pinned item's, else the newest shown item's that has one. */
  Ticker.prototype.drawLead = function () {
    if (!this.usePhotos) return;
    var self = this;
    /** @type {any} */
    var lead = null;
    this.pinned.forEach(function (item) { if (!lead && item.image) lead = item; });
    if (!lead) {
      this.items.forEach(function (item) {
        if (item.image && (!lead || sortKey(item) > sortKey(lead))) lead = item;
      });
    }
    var image = lead && lead.image, src = image && safeUrl(image.url);
    if (!src) {
      this.lead.hidden = true;
      this.lead.replaceChildren();
      this.leadKey = null;
      return;
    }
    var key = lead.id + " " + lead.version;
    if (this.leadKey === key) return;
    this.leadKey = key;
    var img = el("img", "tk-lead-img");
    img.alt = image.alt;
    /* Often the largest thing on the first screen (what Lighthouse times as LCP): lazy only
       when the ticker starts below the first screen, as an embed far down a page may. */
    img.loading = this.root.getBoundingClientRect().top > window.innerHeight ? "lazy" : "eager";
    img.decoding = "async";
    if (image.width && image.height) {
      img.width = image.width;
      img.height = image.height;
    } else {
      img.classList.add("tk-lead-box");
    }
    img.src = src;
    var caption = el("figcaption", "tk-lead-caption");
    var headline = el("a", "tk-lead-headline", lead.headline);
    headline.href = "#tk-item-" + lead.id;
    headline.addEventListener("click", function (event) { event.preventDefault(); self.jumpTo(lead); });
    caption.append(headline);
    if (image.caption) caption.append(el("span", "tk-lead-text", image.caption));
    if (image.credit) caption.append(el("span", "tk-credit", image.credit));
    this.lead.replaceChildren(img, caption);
    this.lead.hidden = false;
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
    row.id = "tk-item-" + item.id;
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
    var self = this;
    var focused = row.contains(document.activeElement) ? document.activeElement.className : null;
    var clock = this.clock;
    var published = new Date(item.published_at);
    var time = el("time", "tk-time", clock.time.format(published));
    time.setAttribute("datetime", item.published_at);
    if (row.classList.contains("tk-item-pinned")) time.prepend(el("span", "tk-date", clock.short.format(published)));
    var when = el("div", "tk-when");
    when.append(time);
    if (this.ago) {
      var ago = el("span", "tk-ago", this.agoText(published));
      ago.setAttribute("data-at", item.published_at);
      when.append(ago);
    }
    var body = el("div", "tk-body");
    var headline = el("p", "tk-headline");
    var href = safeUrl(item.url);
    var link = el("a", "tk-link", item.headline);
    if (href) {
      link.href = href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
    } else {
      link.href = this.server + "/items/" + encodeURIComponent(item.id);
    }
    headline.append(link);
    if (item.lang) headline.lang = item.lang;
    body.append(headline);
    var meta = el("p", "tk-meta");
    if (row.classList.contains("tk-item-pinned")) meta.append(el("span", "tk-tag tk-tag-pinned", this.t("Pinned")));
    if (item.key_event) meta.append(el("span", "tk-tag tk-tag-key", this.t("Key event")));
    row.classList.toggle("tk-is-key", !!item.key_event);
    (item.labels || []).forEach(function (label) {
      var tag = el("span", "tk-tag", self.t(capital(label)));
      if (/^[a-z]+$/.test(label)) tag.classList.add("tk-tag-" + label);
      meta.append(tag);
    });
    if (item.updated_at) {
      var badge = el("span", "tk-badge tk-badge-updated", this.t("Updated"));
      badge.tabIndex = 0;
      badge.append(el("span", "tk-tip", " " + clock.full.format(new Date(item.updated_at))));
      meta.append(badge);
    }
    if (item.correction) meta.append(el("span", "tk-badge tk-badge-corrected", this.t("Corrected")));
    if (meta.childNodes.length) body.append(meta);
    if (item.correction) {
      var note = el("p", "tk-note");
      note.append(el("strong", null, this.t("Correction: ")), document.createTextNode(item.correction));
      body.append(note);
    }
    row.setAttribute("data-version", String(item.version));
    row.replaceChildren(when, body);
    if (focused) {
      var again = row.getElementsByClassName(focused.split(" ")[0])[0];
      if (again) again.focus();
    }
  };

  /** "5 min ago" beside each time, refreshed every half minute. */
  Ticker.prototype.startAgo = function () {
    var self = this;
    this.ago = new Intl.RelativeTimeFormat(this.locale, { numeric: "auto", style: "short" });
    setInterval(function () {
      self.root.querySelectorAll(".tk-ago").forEach(function (ago) {
        ago.textContent = self.agoText(new Date(ago.getAttribute("data-at")));
      });
    }, 30000);
  };

  Ticker.prototype.agoText = function (when) {
    var ms = Date.now() - when.getTime();
    if (ms > AGO_MS || ms < -60000) return "";
    var minutes = Math.round(ms / 60000);
    return minutes < 60 ? this.ago.format(-minutes, "minute") : this.ago.format(-Math.round(minutes / 60), "hour");
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
    this.pauseButton.textContent = this.t(paused ? "Resume" : "Pause");
    this.pauseButton.setAttribute("aria-pressed", String(paused));
    this.root.classList.toggle("tk-paused", paused);
    if (!paused && this.atTop()) this.flush(false);
    this.updateCounters();
  };

  Ticker.prototype.updateCounters = function () {
    var n = this.pending.size;
    this.newButton.hidden = n === 0;
    this.newButton.textContent = this.t("{n} new", n);
    if (this.useTitle) document.title = n ? "(" + n + ") " + this.baseTitle : this.baseTitle;
    this.pinList.hidden = this.pinned.size === 0;
    var empty = this.items.size === 0 && this.pinned.size === 0;
    this.empty.hidden = !empty;
    if (empty) this.empty.textContent = this.t("No news yet.");
    this.moreButton.hidden = !this.hasMore;
  };

  /** One polite announcement at most about once a second, "N new", never the headlines. */
  Ticker.prototype.announce = function () {
    var self = this;
    clearTimeout(this.announceTimer);
    this.announceTimer = setTimeout(function () {
      var n = self.pending.size || self.unannounced;
      self.unannounced = 0;
      if (n) self.announcer.textContent = self.t("{n} new", n);
    }, 800);
  };

  Ticker.prototype.loadMore = function () {
    var self = this, oldest = this.oldestKey();
    if (!oldest) return Promise.resolve();
    this.moreButton.disabled = true;
    var query = "?limit=" + PAGE_SIZE + "&before=" + encodeURIComponent(oldest) +
      (this.channel ? "&channel=" + encodeURIComponent(this.channel) : "");
    return getJson(this.server + "/api/items" + query).then(function (page) {
      page.items.forEach(function (item) { if (!self.pending.has(item.id)) self.insert(item, false); });
      self.hasMore = page.next != null;
      self.moreButton.textContent = self.t("More news");
    }, function () {
      self.moreButton.textContent = self.t("More news (try again)");
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
