// EdgeGuard dashboard: live updates (server-sent events) and confirmations. No inline script anywhere.
"use strict";

// A new event arrives as its row, rendered by the server (templates/event_row.html) for this page and this
// user, exactly as a reload would show it: the page only puts it on top.
function liveEvents(page, address) {
  const table = document.querySelector("#events tbody");
  const state = document.getElementById("live-state");
  if (!table || !window.EventSource) return;
  const source = new EventSource(address || "/events/stream?page=" + encodeURIComponent(page));
  source.addEventListener("row", (message) => {
    const template = document.createElement("template");
    template.innerHTML = message.data.trim();
    const row = template.content.firstElementChild;
    const key = row && row.dataset.id ? 'tr[data-id="' + row.dataset.id + '"]' : 'tr[data-seq="' + (row && row.dataset.seq) + '"]';
    if (!row || table.querySelector(key)) return;
    row.classList.add("fresh");
    table.insertBefore(row, table.firstChild);
    while (table.rows.length > 50) table.deleteRow(table.rows.length - 1);
  });
  source.onopen = () => { if (state) state.textContent = "live"; };
  source.onerror = () => { if (state) state.textContent = "reconnecting…"; };  // EventSource retries by itself
}

// Forms that ask first (data-confirm), also in rows that arrived live.
function confirmations() {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

function refreshSnapshots() {
  const images = document.querySelectorAll("img.snapshot");
  if (!images.length) return;
  setInterval(() => images.forEach((img) => { img.src = img.src.split("?")[0] + "?t=" + Date.now(); }), 5000);
}

// The cameras' fps and people follow /cameras.json; a camera whose state changed (a stalled camera streaming
// again, or one that stopped) reloads the page, which then shows its picture or its state.
function followCameras() {
  const cards = document.querySelectorAll("article.camera");
  if (!cards.length) return;
  setInterval(async () => {
    let cameras;
    try {
      const answer = await fetch("/cameras.json", {credentials: "same-origin", cache: "no-store"});
      if (!answer.ok) return;
      cameras = await answer.json();
    } catch (err) {
      return;  // the daemon is restarting: the next round tries again
    }
    for (const cam of cameras) {
      const card = Array.from(cards).find((c) => c.dataset.camera === cam.name);
      if (!card || card.dataset.state !== cam.state) { window.location.reload(); return; }
      card.querySelector(".fps").textContent = cam.fps.toFixed(1);
      card.querySelector(".people").textContent = cam.people;
    }
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "overview" || page === "logs") liveEvents(page);
  // The hub's event log: its stream with the page's filters (the device, type and person of the address).
  if (page === "hub-events") liveEvents(page, "/events/live" + window.location.search);
  if (page === "overview") refreshSnapshots();
  if (page === "overview" || page === "live") followCameras();
  confirmations();
});
