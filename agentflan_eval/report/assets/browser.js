// Transcript browser: reads the episodes embedded as JSON and renders them with DOM calls only
// (textContent, never innerHTML), so transcript text cannot inject markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("episodes-data").textContent);
  var pool = data.pool, episodes = data.episodes;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function content(m) { return (m.prefix === null ? "" : pool[m.prefix]) + m.content; }
  function fmtScore(v) { return v === null ? "-" : v.toFixed(1); }
  function fillSelect(sel, values) {
    values.forEach(function (v) { var o = el("option", v); o.value = v; sel.appendChild(o); });
  }
  function unique(key) {
    var seen = [];
    episodes.forEach(function (e) { if (seen.indexOf(e[key]) < 0) seen.push(e[key]); });
    return seen;
  }

  function matches(e) {
    var run = $("f-run").value, task = $("f-task").value, status = $("f-status").value;
    var lo = parseFloat($("f-min").value), hi = parseFloat($("f-max").value);
    var outcome = $("f-outcome").value, q = $("f-text").value.toLowerCase();
    if (run && e.run !== run) return false;
    if (task && e.task !== task) return false;
    if (status && e.status !== status) return false;
    if (!isNaN(lo) && (e.score === null || e.score < lo)) return false;
    if (!isNaN(hi) && (e.score === null || e.score > hi)) return false;
    if (outcome === "success" && e.success !== true) return false;
    if (outcome === "failure" && e.success !== false) return false;
    if (q && (e.sample_id + " " + (e.subset || "") + " " + e.search).toLowerCase().indexOf(q) < 0) return false;
    return true;
  }

  function renderList() {
    var body = $("episode-rows");
    body.textContent = "";
    var shown = 0;
    episodes.forEach(function (e, i) {
      if (!matches(e)) return;
      shown += 1;
      var tr = el("tr", null, "ep");
      tr.dataset.index = i;
      [e.run, e.task, e.sample_id, fmtScore(e.score), e.status, e.steps.length].forEach(function (v) {
        tr.appendChild(el("td", v));
      });
      tr.addEventListener("click", function () { openEpisode(i); });
      body.appendChild(tr);
    });
    $("episode-count").textContent = shown + " of " + episodes.length + " episodes";
    return shown;
  }

  function block(parent, title, text) {
    parent.appendChild(el("div", title, "muted"));
    parent.appendChild(el("pre", text));
  }

  function openEpisode(i) {
    var e = episodes[i], view = $("episode-view");
    view.textContent = "";
    Array.prototype.forEach.call(document.querySelectorAll("#episode-rows tr"), function (tr) {
      tr.classList.toggle("selected", Number(tr.dataset.index) === i);
    });
    view.appendChild(el("h3", e.run + " / " + e.task + " / " + e.sample_id + (e.subset ? " (" + e.subset + ")" : "")));
    var head = el("p");
    head.appendChild(el("span", "score " + fmtScore(e.score), "badge " + (e.success ? "ok" : "bad")));
    head.appendChild(document.createTextNode(" status " + e.status + ", " + e.steps.length + " turns"));
    view.appendChild(head);
    if (e.error) block(view, "error", e.error);
    var prompt = el("details", null, "msg");
    prompt.appendChild(el("summary", "Prompt (" + e.prompt.length + " messages)"));
    e.prompt.forEach(function (m) { block(prompt, m.role, content(m)); });
    view.appendChild(prompt);
    e.steps.forEach(function (s, n) {
      var t = el("div", null, "turn episode-turn");
      t.appendChild(el("strong", "Turn " + (n + 1)));
      block(t, "model reply", s.reply);
      var action = el("p");
      action.appendChild(el("span", s.valid ? "valid" : "invalid", "badge " + (s.valid ? "ok" : "bad")));
      action.appendChild(document.createTextNode(" action: " + s.action + (s.argument ? "[" + s.argument + "]" : "")));
      t.appendChild(action);
      if (s.observation !== null) block(t, "observation", s.observation);
      view.appendChild(t);
    });
    block(view, "score details", JSON.stringify(e.details, null, 2));
    block(view, "environment's final report", JSON.stringify(e.env_info, null, 2));
    history.replaceState(null, "", "#episode-" + i);
  }

  fillSelect($("f-run"), unique("run"));
  fillSelect($("f-task"), unique("task"));
  fillSelect($("f-status"), unique("status"));
  ["f-run", "f-task", "f-status", "f-min", "f-max", "f-outcome", "f-text"].forEach(function (id) {
    $(id).addEventListener("input", renderList);
  });
  if (renderList() > 0) {
    var m = /^#episode-(\d+)$/.exec(location.hash);
    openEpisode(m && episodes[Number(m[1])] ? Number(m[1]) : Number($("episode-rows").firstChild.dataset.index));
  }
})();
