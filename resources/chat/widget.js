// The chat widget (docs/chat.md): a help desk adds
//   <script src="https://desk.example.com/chat/widget.js" async></script>
// to its site; this adds a "Chat with us" link that opens the chat on the help desk's server
// in a new tab (a first-party page: its cookie is never a third-party one).
"use strict";
(function () {
  var me = document.currentScript;
  if (!me) return;
  var origin = new URL(me.src).origin;
  var a = document.createElement("a");
  a.href = origin + "/chat/start";
  a.target = "_blank";
  a.rel = "noopener";
  a.textContent = me.dataset.label || "Chat with us";
  a.setAttribute("data-deskbell-widget", "");
  var s = a.style;
  s.position = "fixed"; s.right = "1rem"; s.bottom = "1rem"; s.zIndex = "2147483000";
  s.padding = ".75rem 1.1rem"; s.borderRadius = "999px"; s.background = me.dataset.colour || "#1f5fbf";
  s.color = "#fff"; s.font = "600 16px/1.2 system-ui, sans-serif"; s.textDecoration = "none";
  s.boxShadow = "0 2px 8px rgba(0,0,0,.25)";
  document.body.append(a);
})();
