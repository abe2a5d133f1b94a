/* The status page, live: server-sent events from /events carry a map element -> text; every
   element marked data-live="name" shows that text (never as HTML), data-state its colour. */
"use strict";
(function () {
  var badge = document.getElementById("live-state");
  function show(text, state) {
    if (badge) {
      badge.textContent = text;
      badge.setAttribute("data-state", state);
    }
  }
  function apply(view) {
    var nodes = document.querySelectorAll("[data-live]");
    for (var i = 0; i < nodes.length; i++) {
      var name = nodes[i].getAttribute("data-live");
      if (Object.prototype.hasOwnProperty.call(view, name)) nodes[i].textContent = view[name];
      if (Object.prototype.hasOwnProperty.call(view, name + "@state")) {
        nodes[i].setAttribute("data-state", view[name + "@state"]);
      }
    }
  }
  if (!window.EventSource) {
    show("reload for news", "off");
    return;
  }
  var source = new EventSource("/events");
  source.addEventListener("status", function (event) {
    apply(JSON.parse(event.data));
    show("live", "ok");
  });
  source.addEventListener("error", function () {
    show("reconnecting…", "fault");
  });
})();
