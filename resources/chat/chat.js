// The customer chat page (docs/chat.md): live messages, the composer, and seen marks (S5).
"use strict";
(function () {
  var main = document.getElementById("chat");
  if (!main) return;
  var body = document.body;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var conversationId = Number(main.dataset.conversationId || 0);
  var me = Number(main.dataset.personId); // the customer's own messages are shown as theirs
  var position = main.dataset.position;
  var list = document.getElementById("messages");
  var status = document.getElementById("status");
  var template = null;

  function say(text) { if (status) status.textContent = text; }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    });
  }
  localTimes(document);

  function post(url, payload) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(payload)
    });
  }

  // --- seen (S5): visible, focused, 0.75 s on screen, input in the last 30 s --------------------
  var lastInput = 0;
  var watched = new Map(); // message element -> since (ms) or null
  var pending = [];
  var sending = false;
  var composer = document.getElementById("composer");
  // Not "scroll": the page scrolls itself to a new message, which is not the reader's input
  // (the reader's own scrolling comes with a wheel, touch, key or mouse event).
  ["keydown", "mousedown", "mousemove", "wheel", "touchstart"].forEach(function (n) {
    window.addEventListener(n, function () { lastInput = Date.now(); }, { passive: true, capture: true });
  });
  window.addEventListener("focus", function () { lastInput = 0; }); // nothing until the first input
  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (e.isIntersecting) { if (!watched.has(e.target)) watched.set(e.target, null); }
      else watched.delete(e.target);
    });
  }, { threshold: 0.5 }) : null;

  // The sticky composer covers the bottom of the screen: what is under it is not on screen.
  // The observer (threshold 0.5 of the viewport) says which messages to watch; this says
  // whether one is at least half in the part of the screen the composer leaves free.
  function halfOnScreen(li) {
    var r = li.getBoundingClientRect();
    var bottom = window.innerHeight;
    if (composer) bottom = Math.min(bottom, composer.getBoundingClientRect().top);
    return r.height > 0 && (Math.min(r.bottom, bottom) - Math.max(r.top, 0)) / r.height >= 0.5;
  }

  // Keep what the page scrolls into view (a new message, a focused control) above the
  // composer: the viewport's scroll padding is the composer's height.
  if (composer && "ResizeObserver" in window) {
    new ResizeObserver(function () {
      document.documentElement.style.setProperty("--composer-height", composer.offsetHeight + "px");
    }).observe(composer);
  }

  function watch(li) {
    if (observer && li.dataset.seen !== "true" && li.dataset.authorKind !== "customer"
      && !li.classList.contains("own")) observer.observe(li);
  }
  if (list) list.querySelectorAll("li.message").forEach(watch);

  function flush() {
    if (sending || !pending.length) return;
    sending = true;
    var ids = pending.splice(0, 500);
    post("/chat/seen", { message_ids: ids }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
    }).catch(function () { pending = ids.concat(pending); })
      .finally(function () { sending = false; });
  }

  setInterval(function () {
    var now = Date.now();
    var ok = document.visibilityState === "visible" && document.hasFocus() && now - lastInput < 30000;
    watched.forEach(function (since, li) {
      if (!ok || !halfOnScreen(li)) { watched.set(li, null); return; }
      if (since === null) { watched.set(li, now); return; }
      if (now - since >= 750) {
        watched.delete(li);
        observer.unobserve(li);
        li.dataset.seen = "true";
        pending.push(Number(li.dataset.messageId));
      }
    });
    flush();
  }, 250);

  // --- live messages ---------------------------------------------------------------------------
  function messageItem(m) {
    var li = document.createElement("li");
    var kind = m.author && m.author.kind === "customer" ? "customer" : "user";
    var own = !!m.author && m.author.id === me;
    li.className = "message " + kind + (own ? " own" : "");
    li.id = "m-" + m.id;
    li.dataset.messageId = String(m.id);
    li.dataset.authorKind = kind;
    li.dataset.seen = kind === "customer" || own ? "true" : "false";
    var meta = document.createElement("p");
    meta.className = "meta";
    var author = document.createElement("span");
    author.className = "author";
    author.textContent = m.author ? m.author.name : "Deskbell";
    var time = document.createElement("time");
    time.setAttribute("datetime", m.created_at);
    meta.append(author, " ", time);
    var text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text; // text, never HTML (C3)
    li.append(meta, text);
    localTimes(li);
    return li;
  }

  function apply(event) {
    if (event.position !== undefined) position = event.position;
    if (event.type === "ready") { body.dataset.ready = "true"; body.dataset.live = "online"; return; }
    if (event.type === "resync") { location.reload(); return; }
    if (event.type !== "message" || !list) return;
    if (event.action === "deleted") {
      var gone = document.getElementById("m-" + event.message_id);
      if (gone) gone.remove();
      return;
    }
    var m = event.message;
    if (!m || m.conversation_id !== conversationId || document.getElementById("m-" + m.id)) return;
    var li = messageItem(m);
    list.append(li);
    watch(li);
    li.scrollIntoView({ block: "nearest" });
  }

  var delay = 1000;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(scheme + "//" + location.host + main.dataset.liveUrl + "?after=" + position);
    ws.onmessage = function (e) {
      delay = 1000;
      try { apply(JSON.parse(e.data)); } catch (err) { /* a malformed event is skipped */ }
    };
    ws.onclose = function (e) {
      body.dataset.live = "offline";
      if (e.code === 4401) { location.reload(); return; } // the session ended
      var wait = delay * (0.5 + Math.random());
      delay = Math.min(delay * 2, 30000);
      setTimeout(connect, wait);
    };
  }
  connect();

  // --- the composer ----------------------------------------------------------------------------
  var form = composer;
  if (form) {
    var box = document.getElementById("composer-text");
    box.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = box.value;
      if (!text.trim()) return;
      var button = document.getElementById("composer-send");
      button.disabled = true;
      post(form.action, { text: text }).then(function (r) {
        if (r.ok) {
          box.value = "";
          say("Sent.");
          if (!conversationId) return r.json().then(function (j) { location.href = "/chat/c/" + j.conversation_id; });
          return;
        }
        if (r.status === 429) { say("You are writing quickly: wait " + (r.headers.get("Retry-After") || "a few") + " seconds and send again."); return; }
        return r.json().then(function (j) { say(j.error ? j.error.message : "Not sent."); });
      }).catch(function () { say("Not sent: the connection is down. Try again."); })
        .finally(function () { button.disabled = false; box.focus(); });
    });
  }
})();
