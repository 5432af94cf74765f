// The studio's one script (no build step): live reload over server-sent events, the contact search,
// and checkboxes and choices that apply themselves. Pages work without it, only less live.
"use strict";
(function () {
  let latest = 0;

  // Render the page again in place: fetch it, swap <main> (the toolbar and what is typed there stay).
  function refresh() {
    const mine = ++latest;
    fetch(location.href, { credentials: "same-origin" })
      .then((response) => response.text())
      .then((html) => {
        if (mine !== latest) return; // a newer render is on its way
        const fresh = new DOMParser().parseFromString(html, "text/html");
        const main = fresh.querySelector("main");
        if (!main) return;
        document.querySelector("main").replaceWith(main);
        document.title = fresh.title;
        document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
      });
  }

  function live() {
    const label = document.getElementById("live");
    const events = new EventSource("/events");
    let lost = false;
    events.addEventListener("ready", () => {
      document.body.dataset.live = "on";
      if (label) label.textContent = "live";
      if (lost) refresh(); // the studio restarted: files may have changed meanwhile
      lost = false;
    });
    events.addEventListener("change", refresh);
    events.addEventListener("error", () => {
      lost = true;
      document.body.dataset.live = "off";
      if (label) label.textContent = "not live";
    });
  }

  function contactSearch() {
    const input = document.getElementById("contact");
    const list = document.getElementById("contacts");
    if (!input || !list) return;
    input.addEventListener("input", () => {
      const typed = input.value.trim();
      if (typed.length < 2) return;
      fetch("/contacts?q=" + encodeURIComponent(typed), { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : []))
        .then((found) => {
          list.replaceChildren(
            ...found.map((contact) => {
              const option = document.createElement("option");
              option.value = contact.email;
              option.label = contact.name || contact.email;
              return option;
            })
          );
        });
    });
  }

  // Listened for on the document, not on each input: a live re-render replaces <main> and its inputs.
  function autoApply() {
    document.addEventListener("change", (event) => {
      const input = event.target;
      if (input.matches("form.auto input[type=checkbox], form.auto select")) input.form.submit();
    });
  }

  live();
  contactSearch();
  autoApply();
})();
