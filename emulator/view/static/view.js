// netwall's live view: draws the cluster (drawing.json) and every frame the server streams
// (/events). The positions, loads and states all come from the server; this only paints.
// window.netwall holds what is drawn, for tests and for the curious (the browser console).
(function () {
  "use strict";
  const FAMILY = { copper: "#b8621b", optical: "#1f63c6", "wide-and-slow": "#2a9a55" };
  const DASH = { short: "solid", medium: "dashed", long: "dotted" };
  const LENGTH = { short: "short, <= 2 m (in a rack: copper reaches)",
                   medium: "medium, <= 50 m (a row: wide-and-slow reaches)",
                   long: "long, > 50 m (optics only)" };
  const DOWN = "#d32f2f";
  const state = { frames: 0, frame: null, drawing: null, cy: null };
  window.netwall = state;
  let drawingId = null;
  let loading = null;

  const $ = (id) => document.getElementById(id);
  const text = (id, value) => { $(id).textContent = value; };

  function clock(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m" +
      String(seconds % 60).padStart(2, "0") + "s";
    return Math.floor(seconds / 3600) + "h" + String(Math.floor(seconds % 3600 / 60))
      .padStart(2, "0") + "m";
  }

  function gbps(value) {
    return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  }

  function bytes(value) {
    return value >= 1e6 ? (value / 1e6).toFixed(1) + " MB" : value >= 1e3 ?
      (value / 1e3).toFixed(1) + " kB" : value + " B";
  }

  function steps(a) {
    // The calls the agents are in, from their own board; else the model's clock.
    if (a.by === "agents") {
      const shown = a.running_calls.slice(0, 4).map((c) => "call " + c.number + " of " +
        a.calls + " (" + c.call + "): step " + (c.step === c.step_max ? c.step :
        c.step + "-" + c.step_max) + " of " + c.steps);
      if (a.running_calls.length > 4) shown.push((a.running_calls.length - 4) + " more");
      return " · " + shown.join(", ") + " (the agents' own)";
    }
    if (a.step) return " · call " + a.call_number + " of " + a.calls + " · step " + a.step +
      " of " + a.steps + " (by the model's clock)";
    return "";
  }

  function edgeLabel(link) {
    if (link.state === "down") return "DOWN";
    const parts = [];
    if (link.load_gbps > 0) parts.push(gbps(link.load_gbps) + " Gb/s " +
                                       Math.round(100 * (link.share || 0)) + "%");
    if (link.queue > 0) parts.push("q " + link.queue);
    if (link.drops > 0) parts.push(link.drops + " drops");
    if (link.resent > 0) parts.push(bytes(link.resent) + " resent");
    if (link.state !== "up") parts.push(link.state);
    return parts.join(" · ");
  }

  async function draw() {
    const response = await fetch("drawing.json", { cache: "no-store" });
    const d = await response.json();
    const elements = [];
    for (const n of d.nodes) {
      elements.push({ group: "nodes", classes: n.kind,
                      data: { id: n.id, label: n.label, parent: n.parent || undefined },
                      position: { x: n.x, y: n.y } });
    }
    for (const l of d.links) {
      elements.push({ group: "edges", classes: "link",
                      data: { id: l.id, source: l.source, target: l.target, name: l.name,
                              family: l.family, profile: l.profile, length_m: l.length_m,
                              length_class: l.length_class, color: FAMILY[l.family] || "#777",
                              dash: DASH[l.length_class], width: 2, label: "",
                              state: "up", load_gbps: 0, share: 0 } });
    }
    if (state.cy) state.cy.destroy();
    state.cy = cytoscape({
      container: $("graph"), elements: elements, layout: { name: "preset" },
      autoungrabify: true, boxSelectionEnabled: false, wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: { label: "data(label)", "font-size": 10,
          "text-valign": "center", "text-halign": "center", "background-color": "#e8e8e8",
          "border-width": 1, "border-color": "#888", shape: "round-rectangle",
          width: 40, height: 22 } },
        { selector: "node.gpu", style: { "background-color": "#dff0d8",
          "border-color": "#5a8a50" } },
        { selector: "node.nic", style: { width: 18, height: 10, "font-size": 6,
          "background-color": "#fff" } },
        { selector: "node.scale-up", style: { shape: "hexagon", width: 52, height: 26,
          "background-color": "#f6e6d6", "border-color": "#a0704a" } },
        { selector: "node.leaf", style: { width: 48, "background-color": "#e6ecf6" } },
        { selector: "node.spine", style: { width: 64, height: 26,
          "background-color": "#dde4f2", "font-weight": "bold" } },
        { selector: "node.rack", style: { "background-color": "#f3f3f3",
          "background-opacity": 1, "border-color": "#bbb", "text-valign": "top",
          "text-halign": "center", "font-size": 11, padding: 14, shape: "rectangle" } },
        { selector: "edge", style: { width: "data(width)", "line-color": "data(color)",
          "line-style": "data(dash)", "curve-style": "bezier", label: "data(label)",
          "font-size": 9, "text-background-color": "#fff", "text-background-opacity": 0.6,
          "text-background-padding": 1, "text-rotation": "autorotate", color: "#222" } },
        { selector: "edge[state = 'down']", style: { "line-color": DOWN, color: DOWN,
          "font-weight": "bold" } },
        { selector: "edge[state = 'degraded'], edge[state = 'faulted']",
          style: { color: "#b26a00" } },
      ],
    });
    fit();
    state.drawing = d;
    drawingId = d.id;
    legend(d);
    text("cluster", d.topology + " · link " + d.link + " · GPU " + d.gpu +
         " · link delay " + d.delay);
  }

  function fit() {
    // Compound nodes (racks) take their size from their children once drawn: fit then.
    state.cy.resize();
    requestAnimationFrame(() => state.cy.fit(undefined, 24));
  }
  window.addEventListener("resize", () => { if (state.cy) fit(); });

  function legend(d) {
    const families = d.families.map((f) => '<span class="swatch" style="border-top: 4px solid ' +
      (FAMILY[f] || "#777") + '"></span>' + f).join("");
    const lengths = d.length_classes.map((c) => '<span class="swatch" style="border-top: 3px ' +
      DASH[c] + ' #555"></span>' + LENGTH[c]).join("<br>");
    $("legend").innerHTML = "<div>" + families + '<span class="swatch" style="border-top: 4px ' +
      'solid ' + DOWN + '"></span>down</div><div>' + lengths + "</div><div>line width: " +
      "share of the link's rate in use</div>";
  }

  function table(id, header, rows) {
    const head = "<tr>" + header.map((h) => "<th>" + h + "</th>").join("") + "</tr>";
    $(id).innerHTML = head + rows.join("");
  }

  function cell(value) {
    return "<td>" + String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;") + "</td>";
  }

  function apply(frame) {
    document.body.dataset.seq = frame.seq;
    document.body.dataset.status = frame.status;
    text("command", "netwall " + frame.command);
    document.title = "netwall " + frame.command + ": " + frame.status;
    const status = $("status");
    status.textContent = frame.status;
    status.className = "status " + frame.status;
    const a = frame.activity || {};
    let now = "";
    if (a.running) {
      now = a.phase + " at D=" + a.dilation + ": " + (a.call || "");
      now += steps(a);
      now += " · " + (a.elapsed_us || 0).toFixed(0) + " us of cluster time";
    } else if (a.phase === "console") {
      now = "after `" + a.call + "`: each load is its average over its " +
        a.averaged_s.toFixed(1) + " s";
    } else if (frame.status === "finished") {
      now = "finished: nothing runs, so every load is 0; bytes and drops are the last " +
        "program's";
    } else if (a.phase) {
      now = "between programs (last: " + a.phase + (a.call ? ", " + a.call : "") + ")";
    }
    if (!a.running && a.retransmitted_bytes != null) {
      now += " · the last program (" + a.phase + ") resent " + a.retransmitted_bytes + " B";
    }
    text("now", now);
    const p = frame.progress || {};
    if (p.total) {
      $("bar").style.width = Math.min(100, 100 * p.done / p.total) + "%";
      let eta = (p.items ? p.finished + " of " + p.items + " done · " : "") +
        clock(p.elapsed_s) + " elapsed";
      if (frame.status === "finished") eta += " · all done";
      else if (p.left_s != null) eta += " · about " + clock(p.left_s) + " left";
      else if (p.estimate_s != null) eta += p.estimate_s > 0 ? " · about " +
        clock(p.estimate_s) + " left by the estimate" : " · past the estimate";
      text("eta", eta);
    }
    if (state.cy && frame.drawing === drawingId) {
      state.cy.batch(() => {
        for (const l of frame.links) {
          const e = state.cy.getElementById("link" + l.index);
          e.data({ label: edgeLabel(l), state: l.state, load_gbps: l.load_gbps,
                   share: l.share, queue: l.queue, drops: l.drops, lost: l.lost,
                   resent: l.resent,
                   width: 2 + 10 * Math.min(1, l.share || 0) });
        }
      });
    }
    const links = frame.links.slice().sort((x, y) => y.load_gbps - x.load_gbps ||
      y.resent - x.resent ||
      (y.state !== "up") - (x.state !== "up") || x.index - y.index);
    const shown = links.slice(0, 40);
    table("links", ["link", "state", "Gb/s", "share", "queue", "drops", "lost", "resent (kB)",
                    "MB"], shown.map((l) =>
      '<tr class="' + l.state + '">' + cell(l.name) + cell(l.state) +
      cell(gbps(l.load_gbps)) + cell(l.share == null ? "-" : Math.round(100 * l.share) + "%") +
      cell(l.queue) + cell(l.drops) + cell(l.lost) + cell((l.resent / 1e3).toFixed(1)) +
      cell((l.directions.reduce((s, d) => s + d.bytes, 0) / 1e6).toFixed(2)) + "</tr>"));
    text("more", links.length > shown.length ? (links.length - shown.length) +
      " more, idle" : "");
    const faults = frame.links.filter((l) => l.state !== "up");
    $("faults").innerHTML = faults.length ? faults.map((l) => '<div class="' + l.state + '">' +
      l.name + ": " + l.note + "</div>").join("") : "none";
    const rows = frame.rows || [];
    if (rows.length) {
      const keys = Object.keys(rows[0]);
      table("rows", keys, rows.map((r) => "<tr>" + keys.map((k) => cell(r[k] ?? "")).join("") +
        "</tr>"));
    }
    $("norows").style.display = rows.length ? "none" : "";
  }

  function receive(frame) {
    state.frames += 1;
    state.frame = frame;
    if (frame.drawing && frame.drawing !== drawingId) {
      if (!loading) {
        loading = draw().then(() => { loading = null; apply(state.frame); });
      }
      return;
    }
    apply(frame);
  }

  const source = new EventSource("events");
  source.onmessage = (message) => receive(JSON.parse(message.data));
  source.onerror = () => {
    document.body.dataset.status = "disconnected";
    text("status", state.frame ? "disconnected (the command ended)" : "connecting");
  };
})();
