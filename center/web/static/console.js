// The queue updates itself: every few seconds it fetches the same URL (filters and page
// kept) as a fragment and swaps the live part in. Nothing else on the console needs
// script; every page works without it.
"use strict";
(function () {
  const live = document.getElementById("queue-live");
  if (!live) return;
  const every = Math.max(1000, parseInt(live.dataset.live, 10) || 3000);
  const status = document.getElementById("live-status");
  let busy = false;
  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(window.location.href, {
        headers: { "X-Console-Fragment": "queue" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401) {
        status.textContent = "Your session has expired: reload the page to log in again.";
        status.classList.add("error");
        clearInterval(timer);
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      // Keep folded children that were unfolded open across the update.
      const open = new Set(
        Array.from(live.querySelectorAll("details[open]"), (d) => d.dataset.parent)
      );
      live.innerHTML = await response.text();
      live.querySelectorAll("details[data-parent]").forEach((d) => {
        if (open.has(d.dataset.parent)) d.open = true;
      });
      status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      status.classList.remove("error");
    } catch (err) {
      status.textContent = "Could not update (" + err.message + "); retrying.";
      status.classList.add("error");
    } finally {
      busy = false;
    }
  }
  const timer = setInterval(refresh, every);
})();
