/* Model Steward console: a tiny SVG chart helper and the chat panel. No dependencies. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function fmt(v) {
    if (v === null || v === undefined) { return "–"; }
    var a = Math.abs(v);
    if (a >= 1000) { return (v / 1000).toFixed(1) + "k"; }
    if (a >= 10 || v === Math.round(v)) { return String(Math.round(v)); }
    return v.toFixed(a < 0.01 ? 4 : 2);
  }

  function shortTime(t) {
    if (!t) { return ""; }
    var s = String(t).replace("T", " ");
    return s.slice(5, 16);
  }

  /* Draw rows[i][y] against rows[i].t as a line (default) or bars into `box`. */
  function chart(box, rows, y, opts) {
    opts = opts || {};
    var W = 360, H = 150, L = 38, R = 8, T = 10, B = 22;
    var pts = rows.filter(function (r) { return r[y] !== null && r[y] !== undefined; });
    box.textContent = "";
    if (!pts.length) {
      var p = document.createElement("p");
      p.className = "muted empty";
      p.textContent = "no data yet";
      box.appendChild(p);
      return;
    }
    var vals = pts.map(function (r) { return Number(r[y]); });
    var lo = opts.min !== undefined ? opts.min : Math.min(0, Math.min.apply(null, vals));
    var hi = opts.max !== undefined ? opts.max : Math.max.apply(null, vals);
    if (hi === lo) { hi = lo + 1; }
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "class": "svgchart",
      "aria-label": y + " over time, " + pts.length + " points" });
    var sx = function (i) { return L + (pts.length === 1 ? (W - L - R) / 2 : i * (W - L - R) / (pts.length - 1)); };
    var sy = function (v) { return T + (H - T - B) * (1 - (v - lo) / (hi - lo)); };
    [lo, (lo + hi) / 2, hi].forEach(function (g) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: sy(g), y2: sy(g), "class": "grid" }));
      svg.appendChild(el("text", { x: L - 4, y: sy(g) + 4, "text-anchor": "end", "class": "axis" }, fmt(g)));
    });
    if (opts.kind === "bar") {
      var bw = Math.max(2, (W - L - R) / pts.length - 2);
      pts.forEach(function (r, i) {
        var v = Number(r[y]);
        var x = pts.length === 1 ? sx(0) - bw / 2 : L + i * (W - L - R) / pts.length;
        var rect = el("rect", { x: x, y: sy(Math.max(v, 0)), width: bw, height: Math.abs(sy(0) - sy(v)), "class": "bar" });
        rect.appendChild(el("title", {}, shortTime(r.t) + ": " + fmt(v)));
        svg.appendChild(rect);
      });
    } else {
      var d = pts.map(function (r, i) { return (i ? "L" : "M") + sx(i).toFixed(1) + "," + sy(Number(r[y])).toFixed(1); }).join(" ");
      svg.appendChild(el("path", { d: d, "class": "line" }));
      pts.forEach(function (r, i) {
        var c = el("circle", { cx: sx(i), cy: sy(Number(r[y])), r: 2.5, "class": "dot" + (r.passed === false ? " fail" : "") });
        c.appendChild(el("title", {}, shortTime(r.t) + ": " + fmt(Number(r[y])) + (opts.label && r[opts.label] ? " " + r[opts.label] : "")));
        svg.appendChild(c);
      });
    }
    svg.appendChild(el("text", { x: L, y: H - 6, "class": "axis" }, shortTime(pts[0].t)));
    svg.appendChild(el("text", { x: W - R, y: H - 6, "text-anchor": "end", "class": "axis" }, shortTime(pts[pts.length - 1].t)));
    box.appendChild(svg);
  }

  function charts() {
    var src = document.getElementById("chart-data");
    if (!src) { return; }
    var data = JSON.parse(src.textContent);
    document.querySelectorAll(".chart").forEach(function (box) {
      var opts = { kind: box.dataset.kind, label: box.dataset.label };
      if (box.dataset.min !== undefined) { opts.min = Number(box.dataset.min); }
      if (box.dataset.max !== undefined) { opts.max = Number(box.dataset.max); }
      chart(box, data[box.dataset.series] || [], box.dataset.y, opts);
    });
  }

  function say(log, who, text) {
    var p = document.createElement("div");
    p.className = "msg " + who;
    p.textContent = text;
    log.appendChild(p);
    log.scrollTop = log.scrollHeight;
  }

  function chat() {
    var form = document.getElementById("chat-form");
    if (!form) { return; }
    var log = document.getElementById("chat-log");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var fd = new FormData(form);
      var text = String(fd.get("message") || "").trim();
      if (!text) { return; }
      say(log, "me", text);
      form.elements.message.value = "";
      form.querySelector("button").disabled = true;
      fetch("/chat", { method: "POST", body: new URLSearchParams(fd), credentials: "same-origin",
        headers: { "X-CSRF-Token": String(fd.get("csrf")) } })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          if (j.session_id) { form.elements.session_id.value = j.session_id; }
          var reply = j.answer || j.message || JSON.stringify(j);
          say(log, j.code ? "err" : "agent", reply);
          if (j.approval_id) { say(log, "note", "Approval #" + j.approval_id + " requested: see Approvals."); }
          if (j.run_id) { log.lastChild.dataset.run = j.run_id; }
        })
        .catch(function (e) { say(log, "err", "request failed: " + e); })
        .finally(function () { form.querySelector("button").disabled = false; form.elements.message.focus(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { charts(); chat(); });
  window.stewardChart = chart;
})();
