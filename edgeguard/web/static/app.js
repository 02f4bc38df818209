// EdgeGuard dashboard: live updates (server-sent events) and confirmations. No inline script anywhere.
"use strict";

function escapeText(text) {
  const span = document.createElement("span");
  span.textContent = text == null ? "" : String(text);
  return span.innerHTML;
}

function eventRow(e) {
  const row = document.createElement("tr");
  row.className = "event fresh " + e.type;
  row.dataset.seq = e.seq;
  const time = (e.time_iso || "").slice(11, 19), day = (e.time_iso || "").slice(0, 10);
  const match = e.extra && e.extra.match ? "<br><small>" + escapeText(e.extra.match) + " match</small>" : "";
  let face = "";
  if (e.capture_name) {
    const name = encodeURIComponent(e.capture_name);
    face = '<a href="/captures/' + name.replace("-face.jpg", "-frame.jpg") + '"><img class="thumb" alt="face" src="/captures/' + name + '"></a>';
  }
  row.innerHTML = "<td>" + escapeText(time) + '<br><small class="muted">' + escapeText(day) + "</small></td>" +
    "<td>" + escapeText(e.type) + match + "</td><td>" + escapeText(e.summary) + "</td>" +
    "<td>" + escapeText(e.camera) + '<br><small class="muted">' + escapeText(e.location) + "</small></td><td>" + face + "</td>" +
    (document.body.dataset.page === "logs" ? "<td></td>" : "");
  return row;
}

function liveEvents() {
  const table = document.querySelector("#events tbody");
  const state = document.getElementById("live-state");
  if (!table || !window.EventSource) return;
  const source = new EventSource("/events/stream");
  source.addEventListener("edgeguard", (message) => {
    const e = JSON.parse(message.data);
    if (table.querySelector('tr[data-seq="' + e.seq + '"]')) return;
    table.insertBefore(eventRow(e), table.firstChild);
    while (table.rows.length > 50) table.deleteRow(table.rows.length - 1);
  });
  source.onopen = () => { if (state) state.textContent = "live"; };
  source.onerror = () => { if (state) state.textContent = "reconnecting…"; };  // EventSource retries by itself
}

function confirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
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
  if (page === "overview" || page === "logs") liveEvents();
  if (page === "overview") refreshSnapshots();
  if (page === "overview" || page === "live") followCameras();
  confirmations();
});
