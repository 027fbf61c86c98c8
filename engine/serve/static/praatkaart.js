/* The praatkaart page: a Leaflet map in RD New metres over the JSON API of `ruimtepuzzel serve`.
   Every word comes from window.LABELS (engine/i18n); nothing is loaded from outside the server. */
(function () {
  "use strict";
  const T = window.LABELS.app;
  const LANG = document.documentElement.lang || "nl";
  const fmt = (x, d) => {  // Dutch numbers (1.234,5), never "-0"
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    const digits = d === undefined ? (Math.abs(x) >= 100 ? 0 : 2) : d;
    const rounded = Number(x.toFixed(digits));
    return new Intl.NumberFormat(LANG, {maximumFractionDigits: digits}).format(rounded === 0 ? 0 : rounded);
  };
  const fill = (s, v) => s.replace(/\{(\w+)\}/g, (_, k) => v[k]);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    });
    kids.flat().forEach(k => e.append(k instanceof Node ? k : document.createTextNode(String(k))));
    return e;
  };
  const api = async (path, options) => {
    const r = await fetch(path, options);
    const body = await r.json();
    if (!r.ok) throw new Error(body.detail || r.statusText);
    return body;
  };
  const UNCHANGED = "#d9d9d9";  // engine.serve.app.UNCHANGED
  const claimLabel = c => window.LABELS.claims[c] || c.replace(/_/g, " ");

  // RD New metres: lng = x, lat = y; 1 px = 1024 m at zoom 0.
  const RD = L.extend({}, L.CRS.Simple, {transformation: new L.Transformation(1 / 1024, 0, -1 / 1024, 0)});
  const map = L.map("map", {crs: RD, minZoom: -3, maxZoom: 7, zoomSnap: 0.25, attributionControl: true});
  map.attributionControl.setPrefix("Leaflet");
  map.attributionControl.addAttribution("CBS 2022 (CC BY 4.0)");
  const toLatLng = c => L.latLng(c[1], c[0]);

  const state = {run: null, info: null, overlays: {}, variant: null, variants: {}, marker: null};
  state.map = map;
  window.praatkaart = state;  // for the browser test and the curious
  const unit = u => ((window.LABELS.units || {})[u] || u).replace(/^\((.*)\)$/, "$1");

  // --- outlines --------------------------------------------------------------------------
  const outlines = {};
  async function loadOutlines(which, style, labelClass, show) {
    const gj = await api("api/outlines/" + which);
    const lines = L.geoJSON(gj, {coordsToLatLng: toLatLng, style: style, interactive: false});
    const names = L.layerGroup(gj.features.map(f => L.marker([f.properties.label_y, f.properties.label_x], {
      interactive: false, keyboard: false,
      icon: L.divIcon({className: labelClass, html: el("span", {}, f.properties.name), iconSize: null}),
    })));
    outlines[which] = L.layerGroup([lines, names]);
    if (show) outlines[which].addTo(map);
  }

  // --- layers and legend -----------------------------------------------------------------
  function bounds() {
    const b = state.info.bounds;  // west, south, east, north
    return [[b[1], b[0]], [b[3], b[2]]];
  }
  function overlay(id, url) {
    if (!state.overlays[id]) {
      state.overlays[id] = L.imageOverlay(url, bounds(), {className: "cells", opacity: id.startsWith("mask:") ? 0.75 : 0.95});
    }
    return state.overlays[id];
  }
  function setLayer(id, url, on) {
    const layer = overlay(id, url);
    if (on) layer.addTo(map); else map.removeLayer(layer);
    renderLegend();
  }
  function legendFor(layer) {
    const box = el("div", {}, el("div", {class: "legend-title"}, layer.label));
    (layer.legend || []).forEach(item => box.append(
      el("div", {class: "legend-item"}, el("span", {class: "swatch", style: "background:" + item.colour}), item.label)));
    if (layer.gradient) {
      box.append(el("div", {class: "gradient", style: "background:linear-gradient(to right," + layer.gradient.join(",") + ")"}),
                 el("div", {class: "scale"}, el("span", {}, layer.low), el("span", {}, layer.high)));
    }
    return box;
  }
  function renderLegend() {
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    const shown = state.info.layers.filter(l => state.overlays[l.id] && map.hasLayer(state.overlays[l.id]));
    shown.forEach(l => legend.append(legendFor(l)));
  }
  function renderLayers() {
    const box = document.getElementById("layers");
    box.replaceChildren();
    let group = null;
    const add = (id, label, checked, onchange) => box.append(el("label", {class: "layer"},
      el("input", Object.assign({type: "checkbox", "data-layer": id, onchange: onchange}, checked ? {checked: ""} : {})), " ", label));
    for (const layer of state.info.layers) {
      if (layer.group !== group) { group = layer.group; box.append(el("div", {class: "group"}, group)); }
      const url = "api/runs/" + state.run + "/layers/" + encodeURIComponent(layer.id) + ".png";
      add(layer.id, layer.label, layer.id === "allocation", e => setLayer(layer.id, url, e.target.checked));
    }
    box.append(el("div", {class: "group"}, T.group_outlines));
    add("outlines:provinces", T.outlines_provinces, true, e => e.target.checked ? outlines.provinces.addTo(map) : map.removeLayer(outlines.provinces));
    add("outlines:municipalities", T.outlines_municipalities, false, e => e.target.checked ? outlines.municipalities.addTo(map) : map.removeLayer(outlines.municipalities));
  }

  // --- runs ------------------------------------------------------------------------------
  async function showRun(id) {
    Object.values(state.overlays).forEach(l => map.removeLayer(l));
    state.overlays = {};
    state.run = id;
    state.info = await api("api/runs/" + id);
    const i = state.info;
    document.getElementById("run-info").textContent =
      `${i.name} · ${fmt(i.resolution, 0)} m · ${window.LABELS.status[i.status] || i.status} · ${T.objective} ${fmt(i.objective, 0)}`;
    document.getElementById("resolution").value = String(i.resolution === 250 ? 250 : 1000);
    renderLayers();
    setLayer("allocation", "api/runs/" + id + "/layers/allocation.png", true);
    if (!state.fitted) { map.fitBounds(bounds()); state.fitted = true; }
    renderWhatIf();
  }
  async function loadRuns(select) {
    const runs = await api("api/runs");
    const box = document.getElementById("run");
    box.replaceChildren(...runs.map(r => el("option", {value: r.id}, `${r.id} (${r.name}, ${fmt(r.resolution, 0)} m)`)));
    box.value = select || runs[0].id;
    await showRun(box.value);
  }
  document.getElementById("run").addEventListener("change", e => showRun(e.target.value));

  // --- the two panels --------------------------------------------------------------------
  function tab(name) {
    document.querySelectorAll(".tabs button").forEach(b => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
    document.getElementById("why").hidden = name !== "why";
    document.getElementById("whatif").hidden = name !== "whatif";
  }
  document.querySelectorAll(".tabs button").forEach(b => b.addEventListener("click", () => tab(b.dataset.tab)));

  // --- waarom hier? ----------------------------------------------------------------------
  map.on("click", async e => {
    tab("why");
    const body = document.getElementById("why-body");
    try {
      const c = await api(`api/runs/${state.run}/cell?x=${e.latlng.lng.toFixed(0)}&y=${e.latlng.lat.toFixed(0)}&lang=${LANG}`);
      showCell(c);
    } catch (err) {
      body.replaceChildren(el("p", {class: "note"}, err.message));
    }
  });
  function showCell(c) {
    const size = state.info.resolution;
    const west = state.info.bounds[0] + c.col * size, north = state.info.bounds[3] - c.row * size;
    if (state.marker) map.removeLayer(state.marker);
    state.marker = L.rectangle([[north - size, west], [north, west + size]], {color: "#000", weight: 2, fill: false, interactive: false}).addTo(map);
    const rows = c.options.slice().sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity)).map(o =>
      el("tr", {class: o.option === c.option ? "chosen" : (o.allowed ? "" : "excluded")},
        el("td", {class: "l"}, el("span", {class: "swatch", style: `display:inline-block;background:${o.colour}`}), " ", o.label),
        el("td", {}, fmt(o.value)), el("td", {}, fmt(o.price_bonus)),
        el("td", {}, o.allowed ? fmt(o.score) : T.why_excluded)));
    const excluded = [];
    c.options.forEach(o => o.excluded_by.forEach(r => excluded.push([o, r])));
    const rules = {};
    excluded.forEach(([o, r]) => { (rules[r.rule] = rules[r.rule] || {r: r, options: []}).options.push(o.label); });
    const ruleItem = (r, extra) => el("div", {class: "rule"}, el("b", {}, r.label), r.source ? ` (${r.source}) ` : " ", extra,
      r.quote ? el("div", {class: "quote"}, "“" + r.quote + "”") : "");
    const body = document.getElementById("why-body");
    body.replaceChildren(
      el("p", {}, el("b", {}, fill(T.why_became, {option: c.option_label}))),
      el("p", {class: "note"}, fill(T.why_where, {province: c.province, municipality: c.municipality, x: fmt(c.x, 0), y: fmt(c.y, 0)})),
      el("p", {}, c.runner_up ? fill(T.why_margin, {option: c.runner_up_label, margin: fmt(c.margin)}) : T.why_single),
      el("table", {}, el("tr", {}, el("th", {class: "l"}, T.why_option), el("th", {}, T.why_value), el("th", {}, T.why_bonus), el("th", {}, T.why_score)), rows),
      el("h3", {}, T.why_prices),
      c.prices.length ? el("table", {}, el("tr", {}, el("th", {class: "l"}, T.why_claim), el("th", {class: "l"}, T.why_zone), el("th", {}, T.why_price)),
        c.prices.map(p => el("tr", {}, el("td", {class: "l"}, p.claim_label), el("td", {class: "l"}, p.zone), el("td", {}, fmt(p.price)))))
        : el("p", {class: "note"}, T.why_no_prices),
      excluded.length ? el("h3", {}, T.why_rules) : "",
      Object.values(rules).map(x => ruleItem(x.r, "→ " + x.options.join(", "))),
      c.adjustments.length ? el("h3", {}, T.why_adjust) : "",
      c.adjustments.map(a => ruleItem(a, `${a.amount > 0 ? "+" : ""}${fmt(a.amount)} ${a.step ? "(" + a.step + ")" : ""}`)),
    );
  }

  // --- wat als? --------------------------------------------------------------------------
  function numberInput(key, value, label, unit) {
    const input = el("input", {type: "number", step: "any", "data-key": key, "data-base": value, value: value});
    input.addEventListener("input", () => input.classList.toggle("changed", Number(input.value) !== Number(value)));
    return el("label", {}, el("span", {}, label + (unit ? ` (${unit})` : "")), input);
  }
  function renderWhatIf() {
    const labels = state.info.assumption_labels;
    document.getElementById("assumptions").replaceChildren(...state.info.assumptions
      .filter(a => typeof a.value === "number")
      .map(a => numberInput("assumptions." + a.name, a.value, labels[a.name] || a.name, unit(a.unit))));
    const select = document.getElementById("province");
    const provinces = state.info.provinces;
    select.replaceChildren(...Object.entries(provinces).map(([slug, p]) => el("option", {value: slug}, p.province.name)));
    const show = () => {
      const p = provinces[select.value] || {};
      const inputs = [];
      Object.entries(p.targets || {}).forEach(([claim, t]) => {
        if (typeof t.lower === "number") inputs.push(numberInput(`provinces.${select.value}.targets.${claim}.lower`, t.lower, claimLabel(claim), unit(t.unit)));
      });
      Object.entries(p.shares || {}).forEach(([claim, share]) => {
        if (typeof share === "number") inputs.push(numberInput(`provinces.${select.value}.shares.${claim}`, share, claimLabel(claim), unit("fraction")));
      });
      document.getElementById("province-targets").replaceChildren(...inputs);
    };
    select.onchange = show;
    show();
  }
  function overrides() {
    const out = {};
    document.querySelectorAll("#whatif-form input[data-key]").forEach(i => {
      if (i.value !== "" && Number(i.value) !== Number(i.dataset.base)) out[i.dataset.key] = Number(i.value);
    });
    return out;
  }
  document.getElementById("reset").addEventListener("click", () => renderWhatIf());
  document.getElementById("whatif-form").addEventListener("submit", async e => {
    e.preventDefault();
    const status = document.getElementById("variant-status");
    const body = {base: state.run, overrides: overrides(), resolution: Number(document.getElementById("resolution").value)};
    const name = document.getElementById("variant-name").value.trim();
    if (name) body.name = name;
    const started = performance.now();
    try {
      const v = await api("api/variants", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
      status.textContent = T.status_queued;
      await follow(v.id, started);
    } catch (err) {
      status.replaceChildren(el("span", {class: "bad"}, err.message));
    }
  });
  async function follow(id, started) {
    const status = document.getElementById("variant-status");
    for (;;) {
      const v = await api("api/variants/" + id);
      state.variants[id] = v;
      renderVariants();
      if (v.status === "queued" || v.status === "running") {
        status.textContent = `${v.name}: ${T["status_" + v.status]} …`;
        await new Promise(r => setTimeout(r, 300));
        continue;
      }
      const seconds = fmt((performance.now() - started) / 1000, 1);
      if (v.status !== "done") {
        status.replaceChildren(el("span", {class: "bad"}, `${v.name}: ${T.status_failed}: ${v.error}`));
        return;
      }
      status.replaceChildren(el("span", {class: "ok"}, `${v.name}: ${T.status_done} (${fill(T.seconds, {s: seconds})})`));
      showVariant(v);
      return;
    }
  }
  function showVariant(v) {
    tab("whatif");
    state.variant = v.id;
    const id = "variant:" + v.id;
    Object.keys(state.overlays).filter(k => k.startsWith("variant:")).forEach(k => map.removeLayer(state.overlays[k]));
    const ch = v.changes;
    if (ch.same_grid) {
      const layer = overlay(id, `api/variants/${v.id}/change.png`);
      layer.addTo(map);
      if (!state.info.layers.some(l => l.id === id)) {
        state.info.layers.push({id: id, group: T.variants, label: `${T.layer_change}: ${v.name}`,
          legend: [{colour: UNCHANGED, label: T.unchanged}].concat(state.info.layers[0].legend.map(
            l => ({colour: l.colour, label: "→ " + l.label})))});
      }
      renderLegend();
    }
    const rows = ch.targets.filter(r => (r.zoning === "province" || r.zoning === "national") &&
      (Math.abs(r.allocated_ha_change || 0) >= 0.5 || Math.abs(r.shadow_price_change || 0) >= 0.005));
    document.getElementById("changes").replaceChildren(
      el("p", {}, ch.same_grid ? fill(T.changed, {ha: fmt(ch.hectares_changed, 0) + " ha", change: fmt(ch.objective_change)}) : T.other_resolution),
      el("h3", {}, T.changes_title),
      rows.length ? el("table", {class: "changes"},
        el("tr", {}, el("th", {class: "l"}, T.why_zone), el("th", {class: "l"}, T.why_claim), el("th", {}, "Δ ha"), el("th", {}, "Δ " + T.price), el("th", {}, T.shortfall)),
        rows.map(r => el("tr", {}, el("td", {class: "l"}, r.zone), el("td", {class: "l"}, claimLabel(r.claim)),
          el("td", {}, fmt(r.allocated_ha_change, 0)), el("td", {}, fmt(r.shadow_price_change)), el("td", {}, fmt(r.shortfall_ha_b, 0)))))
        : el("p", {class: "note"}, T.no_changes));
  }
  function renderVariants() {
    const tbody = document.querySelector("#variants tbody");
    const head = el("tr", {}, el("th", {class: "l"}, T.variants), el("th", {}, T.objective), el("th", {}, "Δ ha"), el("th", {}, T.shortfall), el("th", {}, ""));
    const rows = Object.values(state.variants).map(v => el("tr", {},
      el("td", {class: "l", title: JSON.stringify(v.overrides)}, `${v.name} (${fmt(v.resolution, 0)} m)`),
      el("td", {}, v.status === "done" ? fmt(v.objective, 0) : T["status_" + v.status] || v.status),
      el("td", {}, v.changes ? fmt(v.changes.hectares_changed, 0) : ""),
      el("td", {}, v.status === "done" ? fmt(v.shortfall_ha, 0) : ""),
      el("td", {}, v.status === "done" ? [
        el("button", {type: "button", onclick: () => showVariant(v)}, T.variant_show), " ",
        v.saved_as ? fill(T.variant_saved, {run: v.saved_as}) :
          el("button", {type: "button", class: "save", onclick: () => saveVariant(v)}, T.variant_save)] : "")));
    tbody.replaceChildren(head, ...rows);
  }
  async function saveVariant(v) {
    const status = document.getElementById("variant-status");
    try {
      const r = await api(`api/variants/${v.id}/save`, {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
      state.variants[v.id] = await api("api/variants/" + v.id);
      renderVariants();
      status.textContent = fill(T.variant_saved, {run: r.run});
      await loadRuns(state.run);
    } catch (err) {
      status.replaceChildren(el("span", {class: "bad"}, err.message));
    }
  }

  // --- start -----------------------------------------------------------------------------
  Promise.all([
    loadOutlines("provinces", {color: "#222", weight: 1.4, fill: false}, "province-name", true),
    loadOutlines("municipalities", {color: "#555", weight: 0.5, fill: false, dashArray: "2 2"}, "municipality-name", false),
  ]).then(() => loadRuns()).then(() => { state.ready = true; })
    .catch(err => document.getElementById("run-info").textContent = err.message);
})();
