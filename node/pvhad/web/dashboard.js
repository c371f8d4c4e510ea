// pvha dashboard: reads /api/state twice a second and redraws (pvhad
// publishes every 250 ms: a change shows within about 0.75 s). Only
// textContent is set from the data, never HTML.
"use strict";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}

function drawNodes(s) {
  const box = document.getElementById("nodes");
  box.replaceChildren();
  for (const n of s.nodes) {
    const status = n.fenced ? "fenced" : n.fencing ? "being fenced" : !n.member ? "down" :
      !n.online ? "not ready" : n.mode;
    const cls = "card" + (n.fenced || n.fencing ? " fenced" : (!n.member || !n.online) ? " down" : "");
    const card = el("div", { class: cls, "data-node": n.name, "data-status": status });
    card.append(el("h3", {}, n.name + (n.leader ? " \u2605 leader" : "")));
    card.append(el("p", {}, status + (n.storage ? "" : ", no storage") + " \u00b7 " + n.address));
    const list = el("ul");
    for (const g of s.guests)
      if (g.owner === n.name || g.target === n.name)
        list.append(el("li", { "data-guest": g.name }, g.name + (g.target === n.name ? " (incoming)" : "")));
    card.append(list);
    box.append(card);
  }
}

function drawGuests(s) {
  const body = document.querySelector("#guests tbody");
  body.replaceChildren();
  for (const g of s.guests) {
    const tr = el("tr", { "data-guest": g.name, "data-state": g.state, "data-owner": g.owner });
    tr.append(el("td", { "data-label": "Guest" }, g.name));
    tr.append(el("td", { "data-label": "State", class: "state-" + g.state },
      g.state + (g.want_running || g.state === "stopped" ? "" : " (stop wanted)")));
    tr.append(el("td", { "data-label": "Node" }, g.owner + (g.target ? " \u2192 " + g.target : "") || "\u2014"));
    tr.append(el("td", { "data-label": "Restarts" }, String(g.restarts)));
    tr.append(el("td", { "data-label": "VMM" }, g.vmm_rss_bytes !== undefined ?
      bytes(g.vmm_rss_bytes) + ", " + g.vmm_cpu_seconds.toFixed(1) + " s CPU" : "\u2014"));
    body.append(tr);
  }
}

function drawEvents(s) {
  const list = document.getElementById("events");
  list.replaceChildren();
  for (const e of s.events.slice().reverse()) {
    const li = el("li");
    li.append(el("time", {}, new Date(e.at * 1000).toLocaleTimeString() + " "));
    li.append(el("span", { class: "what" }, (e.guest ? e.guest + " " : "") + e.what));
    li.append(document.createTextNode(": " + e.why));
    list.append(li);
  }
}

async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    const up = s.nodes.filter(n => n.online).length;
    document.getElementById("summary").textContent = "seen from " + s.node + " \u00b7 leader " +
      (s.leader || "none") + " \u00b7 " + (s.quorate ? "quorate" : "NO QUORUM") + " \u00b7 " + up + "/" +
      s.nodes.length + " nodes online \u00b7 " + s.guests.length + " guest(s)";
    drawNodes(s);
    drawGuests(s);
    drawEvents(s);
    updated.className = "";
    updated.textContent = "updated " + new Date().toLocaleTimeString();
    document.body.setAttribute("data-loaded", "1");
  } catch (err) {
    updated.className = "stale";
    updated.textContent = "cannot reach the agent (" + err.message + "): showing the last state";
  }
}

// One request at a time: the next one 500 ms after the last answer.
async function loop() {
  await refresh();
  setTimeout(loop, 500);
}
loop();
