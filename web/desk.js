/*
 * The newsroom desk: post headlines, edit (update / correction / fix) and
 * retract them in place. Uses the HTTP API with the staff token kept in
 * sessionStorage, and the live socket (window.Ticker.Live from ticker.js) to
 * follow everyone's changes. Live changes never move keyboard focus.
 */
(function () {
  "use strict";

  var T = window.Ticker;
  var TOKEN_KEY = "ticker.desk.token";
  var RECENT = 30;
  var body = document.body;
  var clock = new T.Clock(body.getAttribute("data-timezone") || "UTC", body.getAttribute("data-locale") || "en-GB");
  /**
   * The desk's element with this id; its form controls are inputs, text areas and buttons.
   * @param {string} id
   * @returns {HTMLInputElement}
   */
  var $ = function (id) { return /** @type {HTMLInputElement} */ (document.getElementById(id)); };
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
  tokenInput.addEventListener("input", function () {
    try { sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim()); } catch (e) { /* private mode: kept in the field only */ }
    showError($("token-error"), tokenInput, "");
  });

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
      showError($("token-error"), tokenInput, "Enter your staff token first.");
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

  /** Puts each field error next to its field in `scope`; the rest into `general`. */
  function showErrors(error, scope, general) {
    scope.querySelectorAll(".field-error").forEach(function (box) { showError(box, null, ""); });
    scope.querySelectorAll("[aria-invalid]").forEach(function (f) { f.removeAttribute("aria-invalid"); });
    if (error.handled) return;
    var rest = [];
    (error.fields || []).forEach(function (f) {
      var name = String(f.field).split(".")[0];
      var box = scope.querySelector('[data-error-for="' + name + '"]');
      if (box) showError(box, scope.querySelector('[name="' + name + '"]'), f.message);
      else rest.push(f.field + ": " + f.message);
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
  headline.addEventListener("input", function () { $("headline-count").textContent = String(headline.value.length); });

  var posting = false;
  function post() {
    if (posting) return;
    var payload = { headline: headline.value, labels: checkedLabels(form), channel: $("channel").value.trim() || "news", pinned: $("pinned").checked };
    if ($("url").value.trim()) payload.url = $("url").value.trim();
    posting = true;
    $("post").disabled = true;
    api("POST", "/api/items", payload).then(function (answer) {
      showErrors({ fields: [], handled: true }, form, $("compose-error"));
      headline.value = "";
      $("url").value = "";
      $("pinned").checked = false;
      form.querySelectorAll('input[name="labels"]').forEach(function (b) { /** @type {HTMLInputElement} */ (b).checked = false; });
      $("headline-count").textContent = "0";
      upsert(answer.item);
      say("Posted: " + answer.item.headline);
    }, function (error) {
      showErrors(error, form, $("compose-error"));
    }).then(function () {
      posting = false;
      $("post").disabled = false;
    });
  }
  form.addEventListener("submit", function (event) { event.preventDefault(); post(); });
  ctrlEnter(form, post);

  // --- recent items --------------------------------------------------------

  function upsert(item) {
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
    var when = new Date(item.published_at);
    var time = el("time", "recent-time", clock.time.format(when));
    time.setAttribute("datetime", item.published_at);
    time.title = clock.dayLabel(when);
    var text = el("p", "recent-headline", item.headline);
    var meta = el("p", "recent-meta");
    meta.append(el("span", "recent-channel", item.channel));
    if (item.pinned) meta.append(el("span", "tk-tag tk-tag-pinned", "Pinned"));
    item.labels.forEach(function (label) { meta.append(el("span", "tk-tag tk-tag-" + label, label)); });
    if (item.updated_at) meta.append(el("span", "tk-badge tk-badge-updated", "Updated"));
    if (item.correction) meta.append(el("span", "tk-badge tk-badge-corrected", "Corrected"));
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
    var edit = button("Edit", "small", function () { openEditor(row, items.get(item.id)); });
    edit.setAttribute("aria-label", "Edit: " + item.headline);
    var retract = button("Retract", "small danger", function () { confirmRetract(row, items.get(item.id)); });
    retract.setAttribute("aria-label", "Retract: " + item.headline);
    actions.append(edit, retract);
    row.replaceChildren(time, main, actions);
  }

  var editors = 0;
  function openEditor(row, item) {
    var n = ++editors, id = function (name) { return "edit" + n + "-" + name; };
    row.setAttribute("data-mode", "edit");
    var editor = el("form", "editor");
    editor.noValidate = true;
    editor.setAttribute("aria-label", "Edit item");

    function field(name, labelText, input) {
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

    var headlineBox = document.createElement("textarea");
    headlineBox.rows = 2;
    headlineBox.maxLength = 300;
    headlineBox.value = item.headline;
    var urlBox = document.createElement("input");
    urlBox.type = "url";
    urlBox.value = item.url || "";
    var kinds = el("fieldset", "field kinds");
    kinds.append(el("legend", null, "Kind of edit"));
    [["update", "Update", "new information; readers see \u201cUpdated\u201d"],
     ["correction", "Correction", "a factual error; readers see the note"],
     ["fix", "Fix", "a typo; no badge"]].forEach(function (k, i) {
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
    var noteField = field("correction", "Correction note (what was wrong)", noteBox);
    noteField.hidden = true;
    kinds.addEventListener("change", function () {
      noteField.hidden = editor.querySelector('input[name="kind"]:checked').value !== "correction";
    });
    var labelsBox = el("fieldset", "field labels");
    labelsBox.append(el("legend", null, "Labels"));
    var choices = el("div", "label-choices");
    labelChoices(choices, item.labels, id("label"));
    var labelsError = el("p", "field-error");
    labelsError.hidden = true;
    labelsError.setAttribute("data-error-for", "labels");
    labelsBox.append(choices, labelsError);
    var pin = document.createElement("input");
    pin.type = "checkbox";
    pin.id = id("pinned");
    pin.name = "pinned";
    pin.checked = item.pinned;
    var pinLabel = el("label", null, "Pinned");
    pinLabel.htmlFor = pin.id;
    var pinWrap = el("div", "field check");
    pinWrap.append(pin, pinLabel);
    var notice = el("p", "edit-notice");
    notice.hidden = true;
    var general = el("p", "form-error");
    general.setAttribute("role", "alert");
    general.hidden = true;
    var save = el("button", "primary small", "Save");
    save.type = "submit";
    var cancel = button("Cancel", "small", function () { close(); });
    var actions = el("div", "actions");
    actions.append(save, cancel, general);
    editor.append(field("headline", "Headline", headlineBox), kinds, noteField, field("url", "Link", urlBox), labelsBox, pinWrap, notice, actions);

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
      var labels = checkedLabels(choices);
      if (labels.join(",") !== item.labels.join(",")) payload.labels = labels;
      if (pin.checked !== item.pinned) payload.pinned = pin.checked;
      if (kind === "correction") payload.correction = noteBox.value;
      save.disabled = true;
      api("PATCH", "/api/items/" + encodeURIComponent(item.id), payload, { "If-Match": '"' + item.version + '"' }).then(function (answer) {
        row.removeAttribute("data-mode");
        items.delete(item.id);
        upsert(answer.item);
        row.querySelector("button").focus();
        say("Saved: " + answer.item.headline);
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
    var yes = button("Yes, retract", "small danger", function () {
      yes.disabled = true;
      api("DELETE", "/api/items/" + encodeURIComponent(item.id), null, { "If-Match": '"' + item.version + '"' }).then(function () {
        row.removeAttribute("data-mode");
        drop(item.id);
        say("Retracted: " + item.headline);
      }, function (e) {
        showError(error, null, e.status === 412 ? "It changed since you looked; keep it and check again." : e.message);
        yes.disabled = false;
      });
    });
    var no = button("Keep it", "small", function () {
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
    status.querySelector(".tk-status-text").textContent = { live: "Live", reconnecting: "Reconnecting\u2026", offline: "Offline" }[name];
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
      }
    }
  }

  function start() {
    Promise.all([T.getJson("/widget.json"), T.getJson("/api/items?limit=" + RECENT)]).then(function (answers) {
      vocabulary = answers[0].labels;
      labelChoices($("label-choices"), [], "label");
      answers[1].items.concat(answers[1].pinned || []).forEach(upsert);
      $("recent-empty").hidden = items.size > 0;
      new T.Live(location.origin, {}, { message: receive, state: setState }).start(answers[1].cursor);
    }, function () {
      setState("reconnecting");
      setTimeout(start, 2000);
    });
  }
  start();
})();
