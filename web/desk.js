/*
 * The newsroom desk: post headlines (with a photo, urgency, key event, or
 * scheduled for later), edit (update / correction / fix) and retract them in
 * place, search and page back through the whole archive, read each item's
 * history, and manage the scheduled items. Uses the HTTP API with the staff token kept in
 * sessionStorage, and the live socket (window.Ticker.Live from ticker.js) to
 * follow everyone's changes. Live changes never move keyboard focus.
 */
(function () {
  "use strict";

  var T = window.Ticker;
  var TOKEN_KEY = "ticker.desk.token";
  var RECENT = 30;
  var READERS_MS = 5000;
  var SCHEDULED_MS = 15000;
  var body = document.body;
  var zone = body.getAttribute("data-timezone") || "UTC";
  var clock = new T.Clock(zone, body.getAttribute("data-locale") || "en-GB");
  var filter = { q: "", channel: "" }, next = null;
  /**
   * The desk's element with this id: a form, an input, a text area, a button or a list.
   * @param {string} id
   * @returns {any}
   */
  var $ = function (id) { return document.getElementById(id); };
  var STRINGS = JSON.parse($("desk-strings").textContent || "{}");
  /** The desk's word in the configured language (the English text is the key). */
  function t(text) { return STRINGS[text] || text; }
  var tokenInput = $("token"), form = $("compose"), headline = $("headline"), recent = $("recent");
  var items = new Map(), rows = new Map();
  var vocabulary = [];
  var sortKey = T.sortKey;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  tokenInput.value = storedToken();
  $("token-form").addEventListener("submit", function (event) { event.preventDefault(); headline.focus(); });
  var checkTimer = null, member = null;
  tokenInput.addEventListener("input", function () {
    try { sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim()); } catch (e) { /* private mode: kept in the field only */ }
    showError($("token-error"), tokenInput, "");
    clearTimeout(checkTimer);
    checkTimer = setTimeout(checkToken, 300);
  });

  /** Asks the server who the token is, as soon as it is entered. */
  function checkToken() {
    var token = tokenInput.value.trim();
    member = null;
    $("signed-in").textContent = "";
    if (!token) return;
    fetch("/api/me", { headers: { Authorization: "Bearer " + token, Accept: "application/json" } }).then(function (response) {
      return response.json().then(function (data) {
        if (token !== tokenInput.value.trim()) return;
        if (!response.ok) {
          showError($("token-error"), tokenInput, (data.error && data.error.message) || "The server answered " + response.status);
          return;
        }
        member = data;
        $("signed-in").textContent = t("Signed in as") + " " + data.name + " (" + data.scopes.join(", ") + ")";
        loadScheduled();
        loadReaders();
      });
    }, function () { /* offline: checked again on the next keystroke */ });
  }

  function say(text) {
    $("desk-announce").textContent = text;
  }

  function showError(box, field, message) {
    box.textContent = message;
    box.hidden = !message;
    if (field) {
      if (message) field.setAttribute("aria-invalid", "true");
      else field.removeAttribute("aria-invalid");
    }
  }

  /** Sends a staff request; resolves with the answer or rejects with the API's error. */
  function api(method, path, payload, headers) {
    var token = tokenInput.value.trim();
    if (!token) {
      showError($("token-error"), tokenInput, t("Enter your staff token first."));
      return Promise.reject({ handled: true });
    }
    var init = { method: method, headers: Object.assign({ Authorization: "Bearer " + token, Accept: "application/json" }, headers || {}) };
    if (payload) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return fetch(path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) return data;
        var error = data.error || { code: "error", message: "The server answered " + response.status, fields: [] };
        error.status = response.status;
        if (response.status === 401 || response.status === 403) {
          showError($("token-error"), tokenInput, error.message);
          error.handled = true;
        }
        throw error;
      });
    }, function () {
      throw { message: "The server cannot be reached; nothing was saved. Try again.", fields: [] };
    });
  }

  /** Puts each field error next to its field in `scope`; the rest into `general`. Clears
   *  every earlier message first, so a success (`handled`) leaves no stale error on screen. */
  function showErrors(error, scope, general) {
    scope.querySelectorAll(".field-error").forEach(function (box) { showError(box, null, ""); });
    scope.querySelectorAll("[aria-invalid]").forEach(function (f) { f.removeAttribute("aria-invalid"); });
    showError(general, null, "");
    if (error.handled) return;
    var rest = [], shown = new Map();
    (error.fields || []).forEach(function (f) {
      var name = String(f.field).split(".")[0];
      var box = scope.querySelector('[data-error-for="' + name + '"]');
      if (!box) { rest.push(f.field + ": " + f.message); return; }
      // Several errors in one field (a photo's URL and its alt) share its box.
      var said = (shown.get(box) || []).concat(f.message);
      shown.set(box, said);
      showError(box, scope.querySelector('[name="' + name + '"]'), said.join("; "));
    });
    var message = rest.length || !(error.fields || []).length ? error.message + (rest.length ? " (" + rest.join("; ") + ")" : "") : "";
    showError(general, null, message);
  }

  function labelChoices(container, chosen, prefix) {
    container.replaceChildren();
    vocabulary.forEach(function (label) {
      var id = prefix + "-" + label;
      var wrap = el("span", "choice");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.id = id;
      box.name = "labels";
      box.value = label;
      box.checked = chosen.indexOf(label) >= 0;
      var text = el("label", null, label.charAt(0).toUpperCase() + label.slice(1));
      text.htmlFor = id;
      wrap.append(box, text);
      container.append(wrap);
    });
  }

  function checkedLabels(scope) {
    return Array.prototype.map.call(scope.querySelectorAll('input[name="labels"]:checked'), function (b) { return b.value; });
  }

  function ctrlEnter(scope, action) {
    scope.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        action();
      }
    });
  }

  // --- posting -------------------------------------------------------------

  $("headline-error").setAttribute("data-error-for", "headline");
  $("labels-error").setAttribute("data-error-for", "labels");
  $("url-error").setAttribute("data-error-for", "url");
  $("channel-error").setAttribute("data-error-for", "channel");
  $("image-error").setAttribute("data-error-for", "image");
  $("urgency-error").setAttribute("data-error-for", "urgency");
  $("publish_at-error").setAttribute("data-error-for", "publish_at");

  // --- times in the display time zone ----------------------------------------

  /** Milliseconds the zone is ahead of UTC at the instant `ms`. */
  function zoneOffset(ms) {
    var p = {};
    new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(ms)).forEach(function (x) { p[x.type] = x.value; });
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
  }

  /** A datetime-local value, read as a wall time in the display zone, as UTC ISO 8601. */
  function zonedToIso(value) {
    var m = /^(\d+)-(\d+)-(\d+)T(\d+):(\d+)/.exec(value);
    if (!m) return null;
    var wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    var guess = wall - zoneOffset(wall);
    return new Date(wall - zoneOffset(guess)).toISOString();
  }

  /** An ISO time as a datetime-local value in the display zone. */
  function isoToZoned(iso) {
    var ms = Date.parse(iso);
    return new Date(ms + zoneOffset(ms)).toISOString().slice(0, 16);
  }

  function stamp(iso) {
    var when = new Date(iso);
    var time = el("time", "recent-time");
    time.append(el("span", "recent-date", clock.short.format(when)), document.createTextNode(clock.time.format(when)));
    time.setAttribute("datetime", iso);
    time.title = clock.dayLabel(when);
    return time;
  }

  // --- the photo preview -------------------------------------------------------

  /** Shows the photo `inputs` (url, alt, caption, credit) describe in `figure`, as readers will. */
  function preview(inputs, figure) {
    var img = figure.querySelector("img");
    var src = T.safeUrl(inputs.url.value.trim());
    // https, or this server's own photos (the demo's): other sources the page's CSP would refuse.
    var shown = !!src && (src.indexOf("https:") === 0 || src.indexOf(location.origin + "/") === 0);
    figure.hidden = !shown;
    if (!shown) { img.removeAttribute("src"); return; }
    if (img.getAttribute("src") !== src) img.src = src;
    img.alt = inputs.alt.value.trim();
    figure.querySelector("figcaption").textContent = [inputs.caption.value.trim(), inputs.credit.value.trim()].filter(Boolean).join(" \u00b7 ");
  }

  /** The image the photo `inputs` describe, null without a URL; `kept` is the item's current
   *  image, whose size stays while its URL does. Keys in one order, so two compare as JSON. */
  function imageOf(inputs, kept) {
    var url = inputs.url.value.trim();
    if (!url) return null;
    var image = { url: url, alt: inputs.alt.value };
    if (inputs.caption.value.trim()) image.caption = inputs.caption.value.trim();
    if (inputs.credit.value.trim()) image.credit = inputs.credit.value.trim();
    if (kept && kept.url === url) {
      if (kept.width) image.width = kept.width;
      if (kept.height) image.height = kept.height;
    }
    return image;
  }

  /** The item's image in imageOf's shape, to tell whether an editor changed it. */
  function sameImage(image, kept) {
    if (!kept) return image === null;
    var inputs = {};
    ["url", "alt", "caption", "credit"].forEach(function (k) { inputs[k] = { value: kept[k] || "" }; });
    return JSON.stringify(image) === JSON.stringify(imageOf(inputs, kept));
  }

  var photo = { url: $("image-url"), alt: $("image-alt"), caption: $("image-caption"), credit: $("image-credit") };
  function previewPost() { preview(photo, $("image-preview")); }
  Object.keys(photo).forEach(function (k) { photo[k].addEventListener("input", previewPost); });
  headline.addEventListener("input", function () { $("headline-count").textContent = String(headline.value.length); });

  var posting = false;
  function post() {
    if (posting) return;
    var payload = { headline: headline.value, labels: checkedLabels(form), channel: $("channel").value.trim() || "news", pinned: $("pinned").checked };
    if ($("url").value.trim()) payload.url = $("url").value.trim();
    var image = imageOf(photo, null);
    if (image) payload.image = image;
    if ($("urgency").value !== "5") payload.urgency = Number($("urgency").value);
    if ($("key-event").checked) payload.key_event = true;
    if ($("publish-at").value) payload.publish_at = zonedToIso($("publish-at").value) || $("publish-at").value;
    posting = true;
    $("post").disabled = true;
    api("POST", "/api/items", payload).then(function (answer) {
      showErrors({ fields: [], handled: true }, form, $("compose-error"));
      form.reset();
      $("channel").value = answer.item.channel;
      previewPost();
      $("headline-count").textContent = "0";
      headline.focus();
      if (answer.scheduled) {
        loadScheduled();
        say(t("Scheduled for") + " " + clock.full.format(new Date(answer.item.published_at)) + ": " + answer.item.headline);
        return;
      }
      upsert(answer.item);
      say(t("Posted:") + " " + answer.item.headline);
    }, function (error) {
      showErrors(error, form, $("compose-error"));
    }).then(function () {
      posting = false;
      $("post").disabled = false;
    });
  }
  form.addEventListener("submit", function (event) { event.preventDefault(); post(); });
  form.addEventListener("reset", function () { setTimeout(previewPost, 0); });
  ctrlEnter(form, post);

  // --- recent items --------------------------------------------------------

  /** Whether an item belongs in the list as filtered (the server's word rule, on the client). */
  function matches(item) {
    if (filter.channel && item.channel !== filter.channel) return false;
    var words = (item.headline.toLowerCase().match(/[\p{L}\p{N}_]+/gu) || []);
    return filter.q.toLowerCase().split(/\s+/).filter(Boolean).every(function (w) {
      return words.some(function (h) { return h.indexOf(w) === 0; });
    });
  }

  function upsert(item) {
    if (!matches(item) && !rows.has(item.id)) return;
    var known = items.get(item.id);
    if (known && known.version >= item.version) return;
    items.set(item.id, item);
    var row = rows.get(item.id);
    if (!row) {
      row = el("li", "recent-item");
      row.setAttribute("data-id", item.id);
      rows.set(item.id, row);
      var key = sortKey(item), before = null;
      for (var child = recent.firstElementChild; child; child = child.nextElementSibling) {
        if (sortKey(items.get(child.getAttribute("data-id"))) < key) { before = child; break; }
      }
      recent.insertBefore(row, before);
      draw(row, item);
    } else if (row.getAttribute("data-mode") === "edit") {
      // Never redraw under the editor: say what changed instead.
      var notice = row.querySelector(".edit-notice");
      notice.textContent = "Changed elsewhere while you edit (now version " + item.version + "); saving will be refused until you reopen it.";
      notice.hidden = false;
    } else if (row.getAttribute("data-mode") !== "confirm") {
      draw(row, item);
    }
    $("recent-empty").hidden = items.size > 0;
  }

  function drop(id) {
    var row = rows.get(id);
    items.delete(id);
    rows.delete(id);
    if (row) {
      var focusNext = row.contains(document.activeElement) && row.getAttribute("data-mode") !== "edit";
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      if (focusNext) (next ? next.querySelector("button") : $("recent-title")).focus();
    }
    $("recent-empty").hidden = items.size > 0;
  }

  function button(text, cls, action) {
    var b = el("button", cls, text);
    b.type = "button";
    b.addEventListener("click", action);
    return b;
  }

  function draw(row, item) {
    row.removeAttribute("data-mode");
    var time = stamp(item.published_at);
    var text = el("p", "recent-headline", item.headline);
    var meta = el("p", "recent-meta");
    meta.append(el("span", "recent-channel", item.channel));
    if (item.pinned) meta.append(el("span", "tk-tag tk-tag-pinned", t("Pinned")));
    if (item.key_event) meta.append(el("span", "tk-tag tk-tag-key", t("Key event")));
    if (item.urgency !== 5) meta.append(el("span", "recent-urgency", "urgency " + item.urgency));
    if (item.image) meta.append(el("span", "recent-photo", "photo"));
    item.labels.forEach(function (label) { meta.append(el("span", "tk-tag tk-tag-" + label, label)); });
    if (item.updated_at) meta.append(el("span", "tk-badge tk-badge-updated", t("Updated")));
    if (item.correction) meta.append(el("span", "tk-badge tk-badge-corrected", t("Corrected")));
    meta.append(el("span", "recent-version", "v" + item.version));
    var href = T.safeUrl(item.url);
    if (href) {
      var link = el("a", "recent-link", "link");
      link.href = href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      meta.append(link);
    }
    var main = el("div", "recent-body");
    main.append(text, meta);
    if (item.correction) main.append(el("p", "tk-note", "Correction: " + item.correction));
    var actions = el("div", "recent-actions");
    var edit = button(t("Edit"), "small", function () { openEditor(row, items.get(item.id)); });
    edit.setAttribute("aria-label", "Edit: " + item.headline);
    var retract = button(t("Retract"), "small danger", function () { confirmRetract(row, items.get(item.id)); });
    retract.setAttribute("aria-label", "Retract: " + item.headline);
    var history = button(t("History"), "small", function () { showHistory(main, item.id, history); });
    history.setAttribute("aria-label", "History: " + item.headline);
    history.setAttribute("aria-expanded", "false");
    actions.append(edit, retract, history);
    row.replaceChildren(time, main, actions);
  }

  // --- editors ---------------------------------------------------------------

  /** A labelled field for API field `name`, with the box its validation error goes to. */
  function field(id, name, labelText, input) {
    var wrap = el("div", "field");
    var label = el("label", null, labelText);
    label.htmlFor = id(name);
    input.id = id(name);
    input.name = name;
    var error = el("p", "field-error");
    error.id = id(name + "-error");
    error.hidden = true;
    error.setAttribute("data-error-for", name);
    input.setAttribute("aria-describedby", error.id);
    wrap.append(label, input, error);
    return wrap;
  }

  /** An editor's photo fields with the post form's preview and a way to remove the photo;
   *  `value()` is the image to send (null: none). */
  function photoFields(id, image) {
    var box = el("fieldset", "field photo");
    box.append(el("legend", null, t("Photo")));
    var inputs = {};
    [["url", t("Image URL")], ["alt", t("Alt text")], ["caption", t("Caption")], ["credit", t("Credit")]].forEach(function (f) {
      var input = document.createElement("input");
      input.id = id("image-" + f[0]);
      input.autocomplete = "off";
      input.value = (image && image[f[0]]) || "";
      var label = el("label", null, f[1]);
      label.htmlFor = input.id;
      box.append(label, input);
      inputs[f[0]] = input;
    });
    inputs.url.type = "url";
    inputs.url.name = "image";
    var error = el("p", "field-error");
    error.id = id("image-error");
    error.hidden = true;
    error.setAttribute("data-error-for", "image");
    inputs.url.setAttribute("aria-describedby", error.id);
    var figure = el("figure", "image-preview");
    var img = document.createElement("img");
    img.alt = "";
    figure.append(img, el("figcaption"));
    var remove = button(t("Remove photo"), "small", function () {
      Object.keys(inputs).forEach(function (k) { inputs[k].value = ""; });
      show();
      inputs.url.focus();
    });
    function show() {
      preview(inputs, figure);
      remove.hidden = !inputs.url.value.trim();
    }
    Object.keys(inputs).forEach(function (k) { inputs[k].addEventListener("input", show); });
    box.append(error, figure, remove);
    show();
    return { box: box, value: function () { return imageOf(inputs, image); } };
  }

  function checkbox(id, name, labelText, checked, wrap) {
    var box = document.createElement("input");
    box.type = "checkbox";
    box.id = id(name);
    box.name = name;
    box.checked = checked;
    var label = el("label", null, labelText);
    label.htmlFor = box.id;
    wrap.append(box, label);
    return box;
  }

  function urgencySelect(value) {
    var select = document.createElement("select");
    for (var u = 1; u <= 9; u++) {
      var option = el("option", null, String(u));
      option.value = String(u);
      option.selected = u === (value || 5);
      select.append(option);
    }
    return select;
  }

  function labelsField(id, chosen) {
    var box = el("fieldset", "field labels");
    box.append(el("legend", null, t("Labels")));
    var choices = el("div", "label-choices");
    labelChoices(choices, chosen, id("label"));
    var error = el("p", "field-error");
    error.hidden = true;
    error.setAttribute("data-error-for", "labels");
    box.append(choices, error);
    return box;
  }

  var editors = 0;
  function openEditor(row, item) {
    var n = ++editors, id = function (name) { return "edit" + n + "-" + name; };
    row.setAttribute("data-mode", "edit");
    var editor = el("form", "editor");
    editor.noValidate = true;
    editor.setAttribute("aria-label", "Edit item");

    var headlineBox = document.createElement("textarea");
    headlineBox.rows = 2;
    headlineBox.maxLength = 300;
    headlineBox.value = item.headline;
    var urlBox = document.createElement("input");
    urlBox.type = "url";
    urlBox.value = item.url || "";
    var kinds = el("fieldset", "field kinds");
    kinds.append(el("legend", null, t("Kind of edit")));
    [["update", t("Update"), t("new information; readers see \u201cUpdated\u201d")],
     ["correction", t("Correction"), t("a factual error; readers see the note")],
     ["fix", t("Fix"), t("a typo; no badge")]].forEach(function (k, i) {
      var radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "kind";
      radio.value = k[0];
      radio.id = id("kind-" + k[0]);
      radio.checked = i === 0;
      var label = el("label", null, k[1]);
      label.htmlFor = radio.id;
      label.append(el("span", "hint", " \u2014 " + k[2]));
      var wrap = el("span", "choice");
      wrap.append(radio, label);
      kinds.append(wrap);
    });
    var noteBox = document.createElement("textarea");
    noteBox.rows = 2;
    noteBox.maxLength = 500;
    var noteField = field(id, "correction", t("Correction note (what was wrong)"), noteBox);
    noteField.hidden = true;
    kinds.addEventListener("change", function () {
      noteField.hidden = editor.querySelector('input[name="kind"]:checked').value !== "correction";
    });
    var labelsBox = labelsField(id, item.labels);
    var pinWrap = el("div", "field check");
    var pin = checkbox(id, "pinned", t("Pinned"), item.pinned, pinWrap);
    var key = checkbox(id, "key_event", t("Key event"), !!item.key_event, pinWrap);
    var urgencyBox = urgencySelect(item.urgency);
    var photoBox = photoFields(id, item.image);
    var notice = el("p", "edit-notice");
    notice.hidden = true;
    var general = el("p", "form-error");
    general.setAttribute("role", "alert");
    general.hidden = true;
    var save = el("button", "primary small", t("Save"));
    save.type = "submit";
    var cancel = button(t("Cancel"), "small", function () { close(); });
    var actions = el("div", "actions");
    actions.append(save, cancel, general);
    editor.append(field(id, "headline", t("Headline"), headlineBox), kinds, noteField, field(id, "url", t("Link"), urlBox), labelsBox, photoBox.box, pinWrap, field(id, "urgency", t("Urgency (1 = flash)"), urgencyBox), notice, actions);

    function close() {
      row.removeAttribute("data-mode");
      var current = items.get(item.id);
      if (current) {
        draw(row, current);
        row.querySelector("button").focus();
      }
    }

    function submit() {
      var kind = editor.querySelector('input[name="kind"]:checked').value;
      var payload = { kind: kind };
      if (headlineBox.value !== item.headline) payload.headline = headlineBox.value;
      var url = urlBox.value.trim() || null;
      if (url !== (item.url || null)) payload.url = url;
      var labels = checkedLabels(labelsBox);
      if (labels.join(",") !== item.labels.join(",")) payload.labels = labels;
      var image = photoBox.value();
      if (!sameImage(image, item.image)) payload.image = image;
      if (pin.checked !== item.pinned) payload.pinned = pin.checked;
      if (key.checked !== !!item.key_event) payload.key_event = key.checked;
      if (Number(urgencyBox.value) !== (item.urgency || 5)) payload.urgency = Number(urgencyBox.value);
      if (kind === "correction") payload.correction = noteBox.value;
      save.disabled = true;
      api("PATCH", "/api/items/" + encodeURIComponent(item.id), payload, { "If-Match": '"' + item.version + '"' }).then(function (answer) {
        row.removeAttribute("data-mode");
        items.delete(item.id);
        upsert(answer.item);
        row.querySelector("button").focus();
        say(t("Saved:") + " " + answer.item.headline);
      }, function (error) {
        if (error.status === 412) error.message = "Someone changed this item since you opened it. Cancel and edit again.";
        showErrors(error, editor, general);
        save.disabled = false;
      });
    }

    editor.addEventListener("submit", function (event) { event.preventDefault(); submit(); });
    editor.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
    ctrlEnter(editor, submit);
    var stamp = row.querySelector("time");
    row.replaceChildren(stamp, editor);
    headlineBox.focus();
  }

  function confirmRetract(row, item) {
    row.setAttribute("data-mode", "confirm");
    var box = el("div", "confirm");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Confirm retraction");
    var question = el("p", null, "Retract \u201c" + item.headline + "\u201d? Readers will see it removed.");
    var error = el("p", "form-error");
    error.hidden = true;
    var yes = button(t("Yes, retract"), "small danger", function () {
      yes.disabled = true;
      api("DELETE", "/api/items/" + encodeURIComponent(item.id), null, { "If-Match": '"' + item.version + '"' }).then(function () {
        row.removeAttribute("data-mode");
        drop(item.id);
        say(t("Retracted:") + " " + item.headline);
      }, function (e) {
        showError(error, null, e.status === 412 ? "It changed since you looked; keep it and check again." : e.message);
        yes.disabled = false;
      });
    });
    var no = button(t("Keep it"), "small", function () {
      draw(row, items.get(item.id) || item);
      row.querySelectorAll("button")[1].focus();
    });
    box.append(question, yes, no, error);
    row.replaceChildren(row.querySelector("time"), box);
    no.focus();
  }

  // --- live ------------------------------------------------------------------

  var status = $("desk-status");
  function setState(name) {
    status.setAttribute("data-state", name);
    status.querySelector(".tk-status-text").textContent = t({ live: "Live", reconnecting: "Reconnecting\u2026", offline: "Offline" }[name]);
  }

  function receive(msg) {
    if (msg.type === "snapshot") {
      (msg.items || []).concat(msg.pinned || []).forEach(upsert);
    } else if (msg.type === "event" && msg.item) {
      if (msg.op === "retract") {
        var row = rows.get(msg.item.id);
        if (row && row.getAttribute("data-mode") === "edit") upsert(msg.item);
        else drop(msg.item.id);
      } else {
        upsert(msg.item);
        if (msg.op === "publish" && scheduledRows.has(msg.item.id)) loadScheduled();
      }
    }
  }

  function query(before) {
    var params = new URLSearchParams({ limit: String(RECENT) });
    if (filter.q) params.set("q", filter.q);
    if (filter.channel) params.set("channel", filter.channel);
    if (before) params.set("before", before);
    return "/api/items?" + params.toString();
  }

  function showPage(page, fresh) {
    if (fresh) {
      items.clear();
      rows.clear();
      recent.replaceChildren();
    }
    page.items.concat(fresh ? page.pinned || [] : []).forEach(upsert);
    next = page.next;
    $("older").hidden = !next;
    $("recent-empty").hidden = items.size > 0;
    $("recent-empty").textContent = filter.q || filter.channel ? "Nothing matches." : "Nothing posted yet.";
  }

  $("older").addEventListener("click", function () {
    var more = $("older");
    more.disabled = true;
    T.getJson(query(next)).then(function (page) { showPage(page, false); }, function () {
      more.textContent = "Older items (try again)";
    }).then(function () { more.disabled = false; });
  });

  $("archive-search").addEventListener("submit", function (event) {
    event.preventDefault();
    var channel = $("channel-filter").value.trim();
    filter = { q: $("search").value.trim(), channel: channel };
    T.getJson(query(null)).then(function (page) {
      showPage(page, true);
      say(items.size + " items" + (filter.q ? " match \u201c" + filter.q + "\u201d" : ""));
    }, function () { say("The search failed; try again."); });
  });

  // --- history ---------------------------------------------------------------

  function showHistory(main, id, toggle) {
    var open = main.querySelector(".history");
    if (open) {
      open.remove();
      toggle.setAttribute("aria-expanded", "false");
      return;
    }
    api("GET", "/api/items/" + encodeURIComponent(id) + "/history").then(function (answer) {
      var list = el("ol", "history");
      list.setAttribute("aria-label", t("History"));
      answer.versions.forEach(function (v) {
        var when = new Date(v.ts);
        var line = el("li", "history-" + v.kind);
        line.append(el("span", "history-kind", v.kind.replace("_", " ")), document.createTextNode(" \u00b7 " + (v.actor || "?") + " \u00b7 " + clock.short.format(when) + " " + clock.time.format(when)));
        if (v.item) line.append(el("span", "history-headline", "v" + v.item.version + ": " + v.item.headline + (v.kind === "correction" && v.item.correction ? " (" + v.item.correction + ")" : "")));
        list.append(line);
      });
      main.append(list);
      toggle.setAttribute("aria-expanded", "true");
    }, function (error) { if (!error.handled) say(error.message); });
  }

  // --- scheduled items -------------------------------------------------------

  var scheduledRows = new Map();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  var scheduledTimer;

  function loadScheduled() {
    if (!member) return;
    clearTimeout(scheduledTimer);
    scheduledTimer = setTimeout(loadScheduled, SCHEDULED_MS);
    api("GET", "/api/scheduled").then(function (answer) {
      var list = $("scheduled");
      scheduledRows.forEach(function (row, id) {
        if (row.getAttribute("data-mode")) return;
        row.remove();
        scheduledRows.delete(id);
      });
      answer.items.forEach(function (item) {
        if (scheduledRows.has(item.id)) return;
        var row = el("li", "recent-item");
        row.setAttribute("data-id", item.id);
        scheduledRows.set(item.id, row);
        drawScheduled(row, item);
        list.append(row);
      });
      $("scheduled-panel").hidden = scheduledRows.size === 0;
    }, function () { /* shown again on the next round */ });
  }

  function drawScheduled(row, item) {
    row.removeAttribute("data-mode");
    var main = el("div", "recent-body");
    main.append(el("p", "recent-headline", item.headline));
    var meta = el("p", "recent-meta");
    meta.append(el("span", "recent-channel", item.channel), el("span", null, t("publishes") + " " + clock.full.format(new Date(item.published_at))));
    main.append(meta);
    var actions = el("div", "recent-actions");
    var edit = button(t("Edit"), "small", function () { editScheduled(row, item); });
    edit.setAttribute("aria-label", "Edit scheduled: " + item.headline);
    var now = button(t("Publish now"), "small primary", function () {
      now.disabled = true;
      api("POST", "/api/scheduled/" + encodeURIComponent(item.id) + "/publish").then(function (answer) {
        dropScheduled(item.id);
        upsert(answer.item);
        say(t("Published:") + " " + answer.item.headline);
      }, function (error) { now.disabled = false; say(error.message); loadScheduled(); });
    });
    now.setAttribute("aria-label", "Publish now: " + item.headline);
    var cancel = button(t("Cancel"), "small danger", function () {
      row.setAttribute("data-mode", "confirm");
      var yes = button(t("Yes, cancel it"), "small danger", function () {
        api("DELETE", "/api/scheduled/" + encodeURIComponent(item.id)).then(function () {
          dropScheduled(item.id);
          say(t("Cancelled:") + " " + item.headline);
        }, function (error) { say(error.message); loadScheduled(); });
      });
      var keep = button(t("Keep it"), "small", function () { drawScheduled(row, item); });
      var box = el("div", "confirm");
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "Confirm cancelling");
      box.append(el("p", null, "Cancel \u201c" + item.headline + "\u201d? It was never published."), yes, keep);
      row.replaceChildren(stamp(item.published_at), box);
      keep.focus();
    });
    cancel.setAttribute("aria-label", "Cancel scheduled: " + item.headline);
    actions.append(edit, now, cancel);
    row.replaceChildren(stamp(item.published_at), main, actions);
  }

  function dropScheduled(id) {
    var row = scheduledRows.get(id);
    scheduledRows.delete(id);
    if (row) row.remove();
    $("scheduled-panel").hidden = scheduledRows.size === 0;
    if (!row || !document.activeElement || document.activeElement === document.body) headline.focus();
  }

  var scheduledEditors = 0;
  /** Edits a scheduled item: every field `PATCH /api/scheduled/{id}` takes, errors beside each. */
  function editScheduled(row, item) {
    var n = ++scheduledEditors, id = function (name) { return "sched" + n + "-" + name; };
    row.setAttribute("data-mode", "edit");
    var editor = el("form", "editor");
    editor.noValidate = true;
    editor.setAttribute("aria-label", "Edit scheduled item");
    var text = document.createElement("textarea");
    text.rows = 2;
    text.maxLength = 300;
    text.value = item.headline;
    var when = document.createElement("input");
    when.type = "datetime-local";
    when.value = isoToZoned(item.published_at);
    var urlBox = document.createElement("input");
    urlBox.type = "url";
    urlBox.value = item.url || "";
    var channelBox = document.createElement("input");
    channelBox.autocomplete = "off";
    channelBox.spellcheck = false;
    channelBox.value = item.channel;
    var labelsBox = labelsField(id, item.labels);
    var photoBox = photoFields(id, item.image);
    var urgencyBox = urgencySelect(item.urgency);
    var checks = el("div", "field check");
    var key = checkbox(id, "key_event", t("Key event"), !!item.key_event, checks);
    var pin = checkbox(id, "pinned", t("Pinned"), item.pinned, checks);
    var general = el("p", "form-error");
    general.setAttribute("role", "alert");
    general.hidden = true;
    var save = el("button", "primary small", t("Save"));
    save.type = "submit";
    var back = button(t("Back"), "small", function () { drawScheduled(row, item); row.querySelector("button").focus(); });
    var acts = el("div", "actions");
    acts.append(save, back, general);
    editor.append(field(id, "headline", t("Headline"), text), field(id, "publish_at", t("Publish at"), when),
      field(id, "url", t("Link"), urlBox), field(id, "channel", t("Channel"), channelBox), labelsBox, photoBox.box,
      field(id, "urgency", t("Urgency (1 = flash)"), urgencyBox), checks, acts);

    function submit() {
      var payload = {};
      if (text.value !== item.headline) payload.headline = text.value;
      if (when.value && when.value !== isoToZoned(item.published_at)) payload.publish_at = zonedToIso(when.value) || when.value;
      var url = urlBox.value.trim() || null;
      if (url !== (item.url || null)) payload.url = url;
      if (channelBox.value.trim() !== item.channel) payload.channel = channelBox.value.trim();
      var labels = checkedLabels(labelsBox);
      if (labels.join(",") !== item.labels.join(",")) payload.labels = labels;
      var image = photoBox.value();
      if (!sameImage(image, item.image)) payload.image = image;
      if (Number(urgencyBox.value) !== (item.urgency || 5)) payload.urgency = Number(urgencyBox.value);
      if (key.checked !== !!item.key_event) payload.key_event = key.checked;
      if (pin.checked !== item.pinned) payload.pinned = pin.checked;
      if (!Object.keys(payload).length) { drawScheduled(row, item); row.querySelector("button").focus(); return; }
      save.disabled = true;
      api("PATCH", "/api/scheduled/" + encodeURIComponent(item.id), payload).then(function (answer) {
        drawScheduled(row, answer.item);
        row.querySelector("button").focus();
        say(t("Saved:") + " " + answer.item.headline);
      }, function (error) {
        showErrors(error, editor, general);
        save.disabled = false;
      });
    }

    editor.addEventListener("submit", function (event) { event.preventDefault(); submit(); });
    editor.addEventListener("keydown", function (event) { if (event.key === "Escape") back.click(); });
    ctrlEnter(editor, submit);
    row.replaceChildren(stamp(item.published_at), editor);
    text.focus();
  }

  // --- readers now -------------------------------------------------------------

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  var readersTimer;

  function loadReaders() {
    if (!member) return;
    clearTimeout(readersTimer);
    readersTimer = setTimeout(loadReaders, READERS_MS);
    api("GET", "/api/readers").then(function (answer) {
      var parts = Object.keys(answer.channels).sort().map(function (c) {
        return (c === "*" ? t("all channels") : c) + " " + answer.channels[c];
      });
      $("readers").textContent = t("Readers now:") + " " + answer.total + (parts.length ? " (" + parts.join(" \u00b7 ") + ")" : "");
    }, function () { /* tried again on the next round */ });
  }

  function start() {
    Promise.all([T.getJson("/widget.json"), T.getJson(query(null))]).then(function (answers) {
      vocabulary = answers[0].labels;
      labelChoices($("label-choices"), [], "label");
      showPage(answers[1], true);
      checkToken();
      new T.Live(location.origin, {}, { message: receive, state: setState }).start(answers[1].cursor);
    }, function () {
      setState("reconnecting");
      setTimeout(start, 2000);
    });
  }
  start();
})();
