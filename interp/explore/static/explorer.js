// The explorer page: calls the JSON API and draws with window.interpViews (interp/show/views.js).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { models: [], prompt: null, selected: null };

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function status(text) { $("status").textContent = text; }

  async function api(path, body) {
    const options = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    const started = performance.now();
    status("working…");
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      status("");
      showError("the explorer server does not answer (" + err.message + "): is `interp explore` still running?");
      return null;
    }
    const data = await response.json().catch(() => ({ error: "the server sent something that is not JSON" }));
    status(response.ok ? (path + ": " + Math.round(performance.now() - started) + " ms") : "");
    if (!response.ok) { showError(data.error || ("HTTP " + response.status)); return null; }
    showError("");
    return data;
  }

  function model() { return $("model").value; }

  function shown(token) { return token.replace(/ /g, "·").replace(/\n/g, "⏎"); }

  function fillModels(models) {
    state.models = models;
    const select = $("model");
    select.textContent = "";
    for (const m of models) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.name + (m.causal ? "" : " (encoder)") + (m.loaded || m.ready !== false ? "" : " (not built)");
      select.appendChild(option);
    }
    describe();
  }

  function describe() {
    const m = state.models.find((x) => x.name === model());
    if (!m) return;
    $("model-info").textContent = m.description || "";
    if (m.example) {
      for (const [id, value] of Object.entries(m.example)) { if ($(id)) $(id).value = value; }
    }
  }

  function drawTokens(data) {
    const row = $("tokens");
    row.textContent = "";
    const positions = $("neuron-pos");
    positions.textContent = "";
    data.tokens.forEach((token, pos) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = shown(token);
      button.dataset.pos = String(pos);
      button.title = "position " + pos;
      button.addEventListener("click", () => selectToken(pos));
      row.appendChild(button);
      const option = document.createElement("option");
      option.value = String(pos);
      option.textContent = pos + ": " + shown(token);
      positions.appendChild(option);
    });
    selectToken(data.tokens.length - 1);
  }

  function selectToken(pos) {
    state.selected = pos;
    for (const b of $("tokens").children) b.classList.toggle("selected", Number(b.dataset.pos) === pos);
    $("neuron-pos").value = String(pos);
    const table = $("topk");
    table.textContent = "";
    const data = state.prompt;
    if (!data || !data.top_k) {
      if (data && data.unavailable) table.insertRow().insertCell().textContent = data.unavailable.top_k;
      return;
    }
    const head = table.insertRow();
    for (const name of ["after " + shown(data.tokens[pos]), "next token", "probability"]) {
      const th = document.createElement("th"); th.textContent = name; head.appendChild(th);
    }
    data.top_k[pos].forEach((entry, rank) => {
      const tr = table.insertRow();
      tr.insertCell().textContent = String(rank + 1);
      const code = document.createElement("code"); code.textContent = shown(entry.token);
      tr.insertCell().appendChild(code);
      const p = tr.insertCell(); p.className = "num"; p.textContent = entry.prob.toFixed(4);
    });
  }

  async function runPrompt(event) {
    if (event) event.preventDefault();
    const data = await api("/api/prompt", { model: model(), prompt: $("prompt").value, k: Number($("k").value) });
    if (!data) return;
    state.prompt = data;
    drawTokens(data);
    window.interpViews.attention($("attention"), { tokens: data.tokens, patterns: data.attention.patterns,
                                                   layer_labels: data.attention.layer_labels });
    if (data.lens) {
      window.interpViews.lens($("lens"), data.lens);
    } else {
      $("lens").textContent = (data.unavailable && data.unavailable.lens) || "";
    }
  }

  async function runNeurons(event) {
    event.preventDefault();
    const body = { model: model(), prompt: $("prompt").value, position: Number($("neuron-pos").value || -1),
                   k: Number($("k").value) * 2, rank_by: $("rank-by").value };
    if ($("target").value) body.target = $("target").value;
    const data = await api("/api/neurons", body);
    if (!data) return;
    const table = $("neurons");
    table.textContent = "";
    const caption = table.createCaption();
    caption.textContent = "at position " + data.position + " (" + shown(data.tokens[data.position]) + ")" +
      (data.target ? ", attribution to " + shown(data.target.token) + " (logit " + data.target.logit.toFixed(3) + ")" : "");
    const head = table.insertRow();
    for (const name of ["layer", "neuron", "activation", "direct logit attribution", "writes towards"]) {
      const th = document.createElement("th"); th.textContent = name; head.appendChild(th);
    }
    for (const n of data.neurons) {
      const tr = table.insertRow();
      tr.insertCell().textContent = String(n.layer);
      tr.insertCell().textContent = String(n.neuron);
      const a = tr.insertCell(); a.className = "num"; a.textContent = n.activation.toPrecision(4);
      const d = tr.insertCell(); d.className = "num"; d.textContent = n.dla === undefined ? "" : n.dla.toPrecision(4);
      tr.insertCell().textContent = (n.promotes || []).map(shown).join("  ");
    }
  }

  async function runPatch(event) {
    event.preventDefault();
    const body = { model: model(), clean: $("clean").value, corrupted: $("corrupted").value,
                   activation: $("activation").value };
    if ($("answer").value) body.answer = $("answer").value;
    if ($("wrong").value) body.wrong = $("wrong").value;
    const data = await api("/api/patch", body);
    if (!data) return;
    $("patch-note").textContent = "metric: " + data.metric + "; clean " + data.clean_value.toFixed(3) +
      ", corrupted " + data.corrupted_value.toFixed(3) + ". Each cell: the metric when that " + data.activation +
      " comes from the clean run.";
    window.interpViews.heatmap($("patch"), {
      title: "patching " + data.activation, rows: data.layer_labels,
      cols: data.tokens.map((t, i) => i + " " + shown(t)), values: data.values,
      row_name: "layer", col_name: "position", value_name: "logit difference",
    });
  }

  async function runTrace(event) {
    event.preventDefault();
    const body = { model: model(), prompt: $("prompt").value, subject: $("trace-subject").value,
                   kind: $("trace-kind").value, samples: Number($("trace-samples").value) };
    const data = await api("/api/trace", body);
    if (!data) return;
    $("trace-note").textContent = "noise on tokens " + data.subject[0] + "–" + (data.subject[1] - 1) +
      " (std " + data.noise_std.toPrecision(3) + ", " + data.samples + " samples); p(" + shown(data.answer.token) +
      ") clean " + data.clean_score.toFixed(3) + ", corrupted " + data.corrupted_score.toFixed(3) +
      ". Each cell: " + data.metric + ".";
    window.interpViews.heatmap($("trace"), {
      title: "restoring " + data.kind, rows: data.layer_labels,
      cols: data.tokens.map((t, i) => i + " " + shown(t)), values: data.values,
      row_name: "layer", col_name: "position", value_name: "indirect effect", scale: "sequential",
    });
  }

  async function start() {
    $("prompt-form").addEventListener("submit", runPrompt);
    $("neuron-form").addEventListener("submit", runNeurons);
    $("patch-form").addEventListener("submit", runPatch);
    $("trace-form").addEventListener("submit", runTrace);
    $("model").addEventListener("change", describe);
    const data = await api("/api/models");
    if (data) fillModels(data.models);
  }

  start();
})();
