/* interp.show: four self-contained views (plain ES2017, no libraries, no network).
 *
 *   interpViews.attention(el, {tokens, patterns: [layer][head][query][key], layer_labels?})
 *   interpViews.tokens(el, {tokens, values: [pos], label?})
 *   interpViews.lens(el, {tokens, layer_labels, top_tokens: [layer][pos], probs: [layer][pos]})
 *   interpViews.heatmap(el, {title?, rows, cols, values: [row][col], row_name?, col_name?, value_name?,
 *                            scale?: "diverging" | "sequential"})
 *
 * Each renders into `el` (cleared first). Every cell (class `iv-cell`) carries `data-row`,
 * `data-col`, `data-value` (String(value); "null" for a missing value, drawn as a grey
 * striped cell) and a `title`; tokens (class `iv-token`) carry `data-value` and a `title`.
 * Hovering either shows the same text in a floating `.iv-tooltip`, values written with
 * 4 significant digits as Python's format(v, ".4g") writes them.
 *
 * Labels (row, column, token, lens cell text) make whitespace visible: a leading or
 * trailing space is drawn as "·", a newline as "↵", a tab as "⇥", other control characters
 * as their Unicode control pictures, the empty string as "∅". Tooltips quote tokens
 * instead ('·' is not used there): query 3 ' Paris'. All text is set with textContent.
 *
 * Attention draws the selected layer and head only; masked cells (key > query) are
 * present with the value given (0 for a causal model) and drawn light grey when that
 * value is 0. Attention and lens probabilities share one fixed scale, 0 (white) to 1.
 *
 * Loading this file twice is harmless: nothing is declared at the top level, and a
 * second copy of the same version leaves the first in place.
 */
(function () {
  "use strict";
  var VERSION = "1";
  if (window.interpViews && window.interpViews.version === VERSION) return;

  // ---------------------------------------------------------------- text

  function fmt(v) {
    // Python's format(v, ".4g"): 4 significant digits (exact ties to even), trailing zeros
    // dropped, exponent form outside [1e-4, 1e4).
    if (v === null || v === undefined) return "no value";
    if (typeof v !== "number") return String(v);
    if (isNaN(v)) return "nan";
    if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
    var sign = v < 0 || Object.is(v, -0) ? "-" : "";
    var a = Math.abs(v);
    if (a === 0) return sign + "0";
    var m = a.toExponential(3);  // rounds exact ties up; Python rounds them to even
    var tie = /^(\d)\.(\d{3})50*e(.*)$/.exec(a.toExponential(100));
    if (tie && +tie[2].charAt(2) % 2 === 0) m = tie[1] + "." + tie[2] + "e" + tie[3];
    var at = m.indexOf("e");
    var digits = m.slice(0, at).replace(".", "");
    var exp = parseInt(m.slice(at + 1), 10);
    if (exp >= -4 && exp < 4) {
      var whole = exp >= 0 ? digits.slice(0, exp + 1) : "0";
      var frac = (exp >= 0 ? digits.slice(exp + 1) : "0".repeat(-exp - 1) + digits).replace(/0+$/, "");
      return sign + whole + (frac ? "." + frac : "");
    }
    var rest = digits.slice(1).replace(/0+$/, "");
    var mag = Math.abs(exp);
    return sign + digits.charAt(0) + (rest ? "." + rest : "") + "e" + (exp < 0 ? "-" : "+") + (mag < 10 ? "0" : "") + mag;
  }

  function controlPicture(ch) {
    if (ch === "\n") return "\u21b5";
    if (ch === "\t") return "\u21e5";
    var c = ch.charCodeAt(0);
    return c === 0x7f ? "\u2421" : String.fromCharCode(0x2400 + c);
  }

  function visible(s) {
    s = String(s);
    if (s === "") return "\u2205";
    s = s.replace(/[\u0000-\u001f\u007f]/g, controlPicture);
    return s.replace(/^ +| +$/g, function (m) { return "\u00b7".repeat(m.length); });
  }

  function quote(s) {
    s = String(s).replace(/[\u0000-\u001f\u007f]/g, function (ch) {
      if (ch === "\n") return "\\n";
      if (ch === "\t") return "\\t";
      if (ch === "\r") return "\\r";
      return "\\x" + ("0" + ch.charCodeAt(0).toString(16)).slice(-2);
    });
    return "'" + s + "'";
  }

  // ---------------------------------------------------------------- colour

  var WHITE = [255, 255, 255];
  var RED = [178, 24, 43];
  var BLUE = [33, 102, 172];
  var PURPLE = [63, 0, 125];

  function mix(end, t) {
    t = Math.max(0, Math.min(1, t));
    return "rgb(" + [0, 1, 2].map(function (i) {
      return Math.round(WHITE[i] + (end[i] - WHITE[i]) * t);
    }).join(",") + ")";
  }

  function finiteValues(rows) {
    var out = [];
    rows.forEach(function (row) {
      row.forEach(function (v) { if (typeof v === "number" && isFinite(v)) out.push(v); });
    });
    return out;
  }

  // A scale maps a value to {bg, dark}; min and max are shown in the legend.
  function divergingScale(values) {
    var m = 0;
    values.forEach(function (v) { m = Math.max(m, Math.abs(v)); });
    return {
      min: m ? -m : 0, max: m,
      at: function (v) {
        var t = m ? v / m : 0;
        return {bg: mix(t >= 0 ? RED : BLUE, Math.abs(t)), dark: Math.abs(t) > 0.6};
      },
    };
  }

  function sequentialScale(lo, hi, reversed) {
    return {
      min: lo, max: hi,
      at: function (v) {
        var t = hi > lo ? (v - lo) / (hi - lo) : (v === 0 ? 0 : 1);
        if (reversed) t = 1 - t;
        return {bg: mix(PURPLE, t), dark: t > 0.55};
      },
    };
  }

  function autoScale(values) {
    if (!values.length) return sequentialScale(0, 1, false);
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (lo < 0 && hi > 0) return divergingScale(values);
    // one sign: darker means further from zero
    return sequentialScale(lo, hi, hi <= 0 && lo < 0);
  }

  function paint(node, scale, v) {
    if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) {
      node.classList.add("iv-null");
      return;
    }
    var c = scale.at(v);
    node.style.background = c.bg;
    if (c.dark) node.classList.add("iv-dark");
  }

  // ---------------------------------------------------------------- DOM

  function make(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function root(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    el.classList.add("iv-root");
    var tip = make("div", "iv-tooltip");
    el.ivTip = tip;
    if (!el.ivHover) {  // one set of listeners per element, however often it is re-rendered
      el.ivHover = true;
      el.addEventListener("mouseover", function (e) { hover(el, e); });
      el.addEventListener("mousemove", function (e) { hover(el, e); });
      el.addEventListener("mouseleave", function () { hide(el); });
    }
    return {el: el, tip: tip};
  }

  function hover(el, e) {
    var tip = el.ivTip;
    if (!tip) return;
    var target = e.target && e.target.closest ? e.target.closest(".iv-cell, .iv-token") : null;
    if (!target || !el.contains(target)) { tip.style.display = "none"; return; }
    if (tip.textContent !== target.title) tip.textContent = target.title;
    tip.style.display = "block";
    var box = el.getBoundingClientRect();
    var x = e.clientX - box.left + 14, y = e.clientY - box.top + 14;
    if (e.clientX + 14 + tip.offsetWidth > window.innerWidth) x = Math.max(0, x - tip.offsetWidth - 28);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  function hide(el) {
    if (el.ivTip) el.ivTip.style.display = "none";
  }

  function fail(view, message) {
    view.el.appendChild(make("div", "iv-error", "interpViews: " + message));
    view.el.appendChild(view.tip);
  }

  // The colour bar from the scale's min to its max; `values` (when given) adds the data's own
  // range if the scale is wider (a diverging scale is symmetric around 0).
  function legend(scale, name, values) {
    var box = make("div", "iv-legend");
    if (name) box.appendChild(make("span", "iv-legend-name", name));
    box.appendChild(make("span", "iv-legend-min", fmt(scale.min)));
    var bar = make("span", "iv-legend-bar");
    var stops = [];
    for (var i = 0; i <= 10; i++) stops.push(scale.at(scale.min + (scale.max - scale.min) * i / 10).bg);
    bar.style.background = "linear-gradient(to right," + stops.join(",") + ")";
    box.appendChild(bar);
    box.appendChild(make("span", "iv-legend-max", fmt(scale.max)));
    if (values && values.length) {
      var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
      if (lo !== scale.min || hi !== scale.max) {
        box.appendChild(make("span", "iv-legend-range", "(values " + fmt(lo) + " to " + fmt(hi) + ")"));
      }
    }
    return box;
  }

  /* A CSS grid: a corner, one label per column, then per row its label and its cells.
   * spec: {rows, cols (label texts), value(r, c), tip(r, c), text?(r, c), extra?(r, c) -> class,
   *        scale, cellClass, horizontalCols, axes?: [row name, col name]} */
  function grid(spec) {
    var box = make("div", "iv-grid " + (spec.cellClass || ""));
    box.style.gridTemplateColumns = "max-content repeat(" + spec.cols.length + ", var(--iv-cell-w))";
    var frag = document.createDocumentFragment();
    var corner = make("div", "iv-corner");  // the axis names: columns across, rows down
    if (spec.axes && spec.axes[1]) corner.appendChild(make("div", "iv-axis-col", spec.axes[1] + " \u2192"));
    if (spec.axes && spec.axes[0]) corner.appendChild(make("div", "iv-axis-row", spec.axes[0] + " \u2193"));
    frag.appendChild(corner);
    spec.cols.forEach(function (label, c) {
      var node = make("div", spec.horizontalCols ? "iv-collabel iv-collabel-h" : "iv-collabel");
      node.appendChild(make("span", "iv-collabel-text", visible(label)));
      node.title = c + " " + quote(label);
      frag.appendChild(node);
    });
    spec.rows.forEach(function (label, r) {
      var rowLabel = make("div", "iv-rowlabel");
      rowLabel.appendChild(make("span", "iv-rowlabel-text", visible(label)));
      rowLabel.title = r + " " + quote(label);
      frag.appendChild(rowLabel);
      for (var c = 0; c < spec.cols.length; c++) {
        var v = spec.value(r, c);
        var cell = make("div", "iv-cell");
        cell.setAttribute("data-row", r);
        cell.setAttribute("data-col", c);
        cell.setAttribute("data-value", String(v));
        cell.title = spec.tip(r, c, v);
        if (spec.text) cell.textContent = visible(spec.text(r, c));
        if (spec.extra) { var cls = spec.extra(r, c, v); if (cls) cell.classList.add(cls); }
        paint(cell, spec.scale, v);
        frag.appendChild(cell);
      }
    });
    box.appendChild(frag);
    var scroll = make("div", "iv-scroll");
    scroll.appendChild(box);
    return scroll;
  }

  function cellWidth(n, budget, lo, hi) {
    return Math.max(lo, Math.min(hi, Math.floor(budget / Math.max(1, n)))) + "px";
  }

  function isArray(x) { return Array.isArray(x); }

  // ---------------------------------------------------------------- views

  function attention(el, data) {
    var view = root(el);
    var tokens = data.tokens || [], patterns = data.patterns || [];
    if (!isArray(tokens) || !isArray(patterns) || !patterns.length || !isArray(patterns[0]) || !patterns[0].length) {
      return fail(view, "attention needs tokens and patterns [layer][head][query][key]");
    }
    var labels = data.layer_labels || patterns.map(function (_, i) { return String(i); });
    var controls = make("div", "iv-controls");
    var layerSelect = make("select", "iv-layer");
    labels.forEach(function (label, i) {
      var option = make("option", "", "layer " + label);
      option.value = String(i);
      layerSelect.appendChild(option);
    });
    var headSelect = make("select", "iv-head");
    var layerLabel = make("label", "", ""), headLabel = make("label", "", "");
    layerLabel.appendChild(layerSelect);
    headLabel.appendChild(headSelect);
    controls.appendChild(layerLabel);
    controls.appendChild(headLabel);
    var body = make("div", "iv-body");
    el.appendChild(controls);
    el.appendChild(body);
    el.appendChild(view.tip);
    var scale = sequentialScale(0, 1, false);

    function heads() {
      var n = patterns[+layerSelect.value].length, keep = Math.min(+headSelect.value || 0, n - 1);
      while (headSelect.firstChild) headSelect.removeChild(headSelect.firstChild);
      for (var h = 0; h < n; h++) {
        var option = make("option", "", "head " + h);
        option.value = String(h);
        headSelect.appendChild(option);
      }
      headSelect.value = String(Math.max(0, keep));
    }

    function draw() {
      var layer = +layerSelect.value, head = +headSelect.value;
      var p = patterns[layer][head];
      while (body.firstChild) body.removeChild(body.firstChild);
      if (!isArray(p) || p.length !== tokens.length) {
        body.appendChild(make("div", "iv-error", "interpViews: layer " + labels[layer] + " head " + head +
          " has " + (isArray(p) ? p.length : 0) + " query rows for " + tokens.length + " tokens"));
        return;
      }
      var prefix = "layer " + labels[layer] + ", head " + head + ", ";
      var g = grid({
        rows: tokens, cols: tokens, scale: scale, cellClass: "iv-attention", axes: ["query", "key"],
        value: function (q, k) { var v = p[q][k]; return v === undefined ? null : v; },
        tip: function (q, k, v) {
          return prefix + "query " + q + " " + quote(tokens[q]) + ", key " + k + " " + quote(tokens[k]) + ": " + fmt(v);
        },
        extra: function (q, k, v) { return k > q && v === 0 ? "iv-masked" : ""; },
      });
      g.style.setProperty("--iv-cell-w", cellWidth(tokens.length, 640, 10, 28));
      body.appendChild(g);
      body.appendChild(legend(scale, "attention"));
    }

    layerSelect.addEventListener("change", function () { heads(); draw(); });
    headSelect.addEventListener("change", draw);
    heads();
    draw();
  }

  function tokensView(el, data) {
    var view = root(el);
    var tokens = data.tokens || [], values = data.values || [];
    if (!isArray(tokens) || !isArray(values) || tokens.length !== values.length) {
      return fail(view, "tokens needs as many values as tokens");
    }
    var finite = finiteValues([values]);
    var scale = divergingScale(finite);
    if (data.label) el.appendChild(make("div", "iv-title", data.label));
    var line = make("div", "iv-tokens");
    var prefix = data.label ? data.label + ", " : "";
    tokens.forEach(function (token, i) {
      var v = values[i];
      var span = make("span", "iv-token", visible(token));
      span.setAttribute("data-value", String(v));
      span.setAttribute("data-col", i);
      span.title = prefix + "pos " + i + " " + quote(token) + ": " + fmt(v);
      paint(span, scale, v);
      line.appendChild(span);
    });
    el.appendChild(line);
    el.appendChild(legend(scale, "", finite));
    el.appendChild(view.tip);
  }

  function lens(el, data) {
    var view = root(el);
    var tokens = data.tokens || [], labels = data.layer_labels || [];
    var top = data.top_tokens || [], probs = data.probs || [];
    if (!isArray(tokens) || !isArray(top) || !isArray(probs) || top.length !== probs.length || labels.length !== probs.length) {
      return fail(view, "lens needs layer_labels, top_tokens and probs with one row per layer");
    }
    var scale = sequentialScale(0, 1, false);
    var topK = data.top_k_tokens, topKProbs = data.top_k_probs;  // optional: [layer][pos][k]
    var g = grid({
      rows: labels, cols: tokens, scale: scale, cellClass: "iv-lens", horizontalCols: true, axes: ["layer", "pos"],
      value: function (r, c) { var v = probs[r][c]; return v === undefined ? null : v; },
      text: function (r, c) { return top[r][c] === undefined ? "" : top[r][c]; },
      tip: function (r, c, v) {
        var text = "layer " + labels[r] + ", pos " + c + " " + quote(tokens[c]) + " \u2192 " + quote(top[r][c]) + ": " + fmt(v);
        if (topK && topKProbs && isArray(topK[r]) && isArray(topK[r][c])) {
          text += "; top " + topK[r][c].length + ": " + topK[r][c].map(function (t, i) {
            return quote(t) + " " + fmt(topKProbs[r][c][i]);
          }).join(", ");
        }
        return text;
      },
    });
    g.style.setProperty("--iv-cell-w", "5.5em");
    el.appendChild(g);
    el.appendChild(legend(scale, "top-token probability"));
    el.appendChild(view.tip);
  }

  function heatmap(el, data) {
    var view = root(el);
    var rows = data.rows || [], cols = data.cols || [], values = data.values || [];
    var shaped = isArray(rows) && isArray(cols) && isArray(values) && values.length === rows.length &&
      values.every(function (row) { return isArray(row) && row.length === cols.length; });
    if (!shaped) return fail(view, "heatmap needs values [row][col] with one row per row label and one column per col label");
    var finite = finiteValues(values);
    // scale: "diverging" (around 0), "sequential" (min to max, as ROME draws traces) or automatic
    var scale = data.scale === "sequential" && finite.length
      ? sequentialScale(Math.min.apply(null, finite), Math.max.apply(null, finite), false)
      : data.scale === "diverging" ? divergingScale(finite) : autoScale(finite);
    if (data.title) el.appendChild(make("div", "iv-title", data.title));
    var rowName = data.row_name ? data.row_name + " " : "";
    var colName = data.col_name ? data.col_name + " " : "";
    var valueName = data.value_name ? data.value_name + " " : "";
    var g = grid({
      rows: rows, cols: cols, scale: scale, cellClass: "iv-heatmap", axes: [data.row_name, data.col_name],
      value: function (r, c) { var v = values[r][c]; return v === undefined ? null : v; },
      tip: function (r, c, v) {
        return rowName + visible(rows[r]) + ", " + colName + visible(cols[c]) + ": " + valueName + fmt(v);
      },
    });
    g.style.setProperty("--iv-cell-w", cellWidth(cols.length, 720, 12, 36));
    el.appendChild(g);
    el.appendChild(legend(scale, data.value_name || "", finite));
    el.appendChild(view.tip);
  }

  window.interpViews = {
    version: VERSION,
    attention: attention,
    tokens: tokensView,
    lens: lens,
    heatmap: heatmap,
    format: fmt,
    visible: visible,
  };
})();
