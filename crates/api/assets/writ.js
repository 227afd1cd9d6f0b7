// writ's web UI works without this file; with it, pages become a little livelier:
// countdowns tick, the request form previews the decision as you type, secrets copy.
"use strict";

function formatLeft(seconds) {
  if (seconds <= 0) return "ended";
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
  if (d > 0) return `${d}d ${h}h left`;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m ${String(s).padStart(2, "0")}s left`;
  if (m > 0) return `${m}m ${String(s).padStart(2, "0")}s left`;
  return `${s}s left`;
}

function tickCountdowns() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-countdown]")) {
    const end = Date.parse(el.getAttribute("datetime"));
    if (!Number.isNaN(end)) el.textContent = formatLeft((end - now) / 1000);
  }
}

function watchPreview() {
  const form = document.querySelector("form[data-preview]");
  const out = document.getElementById("preview");
  if (!form || !out) return;
  let timer = null;
  let asked = 0;
  const refresh = async () => {
    const mine = ++asked;
    try {
      const answer = await fetch(form.getAttribute("data-preview"), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-writ-fragment": "1" },
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      });
      if (mine === asked && answer.ok) out.innerHTML = await answer.text();
    } catch (_) { /* the Preview button still works */ }
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300); });
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(refresh, 50); });
}

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.getAttribute("data-copy"));
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (_) {
        window.getSelection().selectAllChildren(source);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
  watchPreview();
  copyButtons();
});
