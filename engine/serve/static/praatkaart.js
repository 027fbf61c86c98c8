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
  // A target's claim with its zone under it, in one cell: in columns of their own a zone's
  // long words ("Metropoolregio") broke mid-word in the side panel's width.
  const targetHead = () => el("th", {class: "l"}, T.why_claim, el("div", {class: "zone"}, T.why_zone));
  const targetCell = (label, zone) => el("td", {class: "l"}, label, el("div", {class: "zone"}, zone));

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
    outlines.data = Object.assign(outlines.data || {}, {[which]: gj});
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
      const url = layer.url || "api/runs/" + state.run + "/layers/" + encodeURIComponent(layer.id) + ".png";
      const on = state.overlays[layer.id] ? map.hasLayer(state.overlays[layer.id]) : layer.id === "allocation";
      add(layer.id, layer.label, on, e => setLayer(layer.id, url, e.target.checked));
    }
    box.append(el("div", {class: "group"}, T.group_outlines));
    add("outlines:provinces", T.outlines_provinces, map.hasLayer(outlines.provinces), e => e.target.checked ? outlines.provinces.addTo(map) : map.removeLayer(outlines.provinces));
    add("outlines:municipalities", T.outlines_municipalities, map.hasLayer(outlines.municipalities), e => e.target.checked ? outlines.municipalities.addTo(map) : map.removeLayer(outlines.municipalities));
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
      c.prices.length ? el("table", {}, el("tr", {}, targetHead(), el("th", {}, T.why_price)),
        c.prices.map(p => el("tr", {}, targetCell(p.claim_label, p.zone), el("td", {}, fmt(p.price)))))
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
    // A province's own run opens on its own targets.
    const own = Object.keys(provinces).find(k => k === state.info.scope || k === state.info.name);
    if (own) select.value = own;
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
        status.replaceChildren(el("span", {class: "bad"}, `${v.name}: ${T["status_" + v.status] || v.status}. `, failure(v)));
        return;
      }
      status.replaceChildren(el("span", {class: "ok"}, `${v.name}: ${T.status_done} (${fill(T.seconds, {s: seconds})})`));
      showVariant(v);
      if (state.comparing) fillPicks();
      return;
    }
  }
  function failure(v) {  // the planner's words first; the engine's detail names claim and zone
    if (v.status === "timeout") return fill(T.timeout_message, {s: fmt(v.time_limit, 0)});
    if (v.status === "infeasible" && v.shortfall_ha !== null) return fill(T.infeasible_message, {ha: fmt(v.shortfall_ha, 0)}) + " " + v.error;
    return v.error;
  }
  function priceTable(ch) {
    const moved = ch.targets.filter(r => Math.abs(r.shadow_price_change || 0) >= 0.005)
      .sort((a, b) => Math.abs(b.shadow_price_change) - Math.abs(a.shadow_price_change));
    if (!moved.length) return el("p", {class: "note"}, T.no_price_changes);
    return el("table", {class: "prices", id: "price-table"},
      el("tr", {}, targetHead(), el("th", {}, T.price_base),
        el("th", {}, T.price_variant), el("th", {}, T.price_change)),
      moved.map(r => el("tr", {}, targetCell(claimLabel(r.claim), r.zone),
        el("td", {}, fmt(r.shadow_price_a)), el("td", {}, fmt(r.shadow_price_b)),
        el("td", {class: r.shadow_price_change > 0 ? "up" : "down"}, (r.shadow_price_change > 0 ? "+" : "") + fmt(r.shadow_price_change)))));
  }
  function variantLayers(v) {  // the change map and one price change map per claim that moved
    const layers = [{id: "variant:" + v.id, url: `api/variants/${v.id}/change.png`, group: `${T.variants}: ${v.name}`,
      label: `${T.layer_change}: ${v.name}`,
      legend: [{colour: UNCHANGED, label: T.unchanged}].concat(state.info.layers[0].legend.map(l => ({colour: l.colour, label: "→ " + l.label})))}];
    (v.price_layers || []).forEach(p => layers.push({id: `variant:${v.id}:${p.id}`, url: `api/variants/${v.id}/${p.id}.png`,
      group: `${T.variants}: ${v.name}`, label: fill(T.layer_price, {claim: claimLabel(p.claim)}), gradient: p.gradient,
      low: fill(T.price_cheaper, {x: fmt(p.limit)}), high: fill(T.price_scarcer, {x: fmt(p.limit)})}));
    return layers;
  }
  function showVariant(v) {
    tab("whatif");
    state.variant = v.id;
    const ch = v.changes;
    Object.keys(state.overlays).filter(k => k.startsWith("variant:")).forEach(k => map.removeLayer(state.overlays[k]));
    state.info.layers = state.info.layers.filter(l => !l.id.startsWith("variant:"));
    if (ch.same_grid) {
      const layers = variantLayers(v);
      state.info.layers.push(...layers);
      overlay(layers[0].id, layers[0].url).addTo(map);
      renderLayers();
      renderLegend();
    }
    // What a claim receives (in its own unit) and the land that delivers it apart: a density
    // variant delivers the same homes on other land, which a change in claim hectares hides.
    const rows = ch.targets.filter(r => (r.zoning === "province" || r.zoning === "national") && r.moved);
    // The unit under the number, as the zone under the claim: the panel has no room for a
    // column of "woningen".
    const quantity = (x, u) => el("td", {}, fmt(x, u === "TWh" ? 2 : 0), el("div", {class: "zone"}, unit(u || "ha")));
    const short = rows.some(r => (r.shortfall_ha_b || 0) >= 0.5);  // the variants table has the total
    document.getElementById("changes").replaceChildren(
      el("p", {}, ch.same_grid ? fill(T.changed, {ha: fmt(ch.hectares_changed, 0) + " ha", change: fmt(ch.objective_change)}) : T.other_resolution),
      el("h3", {}, T.changes_title),
      ...(rows.length ? [el("p", {class: "note"}, T.changes_note), el("table", {class: "changes"},
        el("tr", {}, targetHead(), el("th", {}, T.change_allocated), el("th", {}, T.change_land),
          el("th", {}, T.change_price), short ? el("th", {}, T.shortfall) : []),
        rows.map(r => el("tr", {}, targetCell(claimLabel(r.claim), r.zone),
          quantity(r.allocated_change, r.unit), el("td", {}, fmt(r.land_ha_change, 0)),
          el("td", {}, fmt(r.shadow_price_change)), short ? quantity(r.shortfall_b, r.unit) : [])))]
        : [el("p", {class: "note"}, T.no_changes)]),
      el("h3", {}, T.prices_title),
      el("p", {class: "note"}, T.prices_note),
      priceTable(ch));
  }
  function renderVariants() {
    const tbody = document.querySelector("#variants tbody");
    const head = el("tr", {}, el("th", {class: "l"}, T.variants), el("th", {}, T.objective), el("th", {}, "Δ ha"), el("th", {}, T.shortfall));
    // A solved variant's buttons get a row of their own under it: beside the figures they
    // ran past the panel's edge.
    const rows = Object.values(state.variants).flatMap(v => [el("tr", {},
      el("td", {class: "l", title: JSON.stringify(v.overrides)}, `${v.name} (${fmt(v.resolution, 0)} m)`),
      el("td", {}, v.status === "done" ? fmt(v.objective, 0) : T["status_" + v.status] || v.status),
      el("td", {}, v.changes ? fmt(v.changes.hectares_changed, 0) : ""),
      el("td", {}, v.status === "done" ? fmt(v.shortfall_ha, 0) : "")),
      ...(v.status === "done" ? [el("tr", {class: "actions"}, el("td", {class: "l", colspan: 4},
        el("button", {type: "button", onclick: () => showVariant(v)}, T.variant_show), " ",
        v.saved_as ? fill(T.variant_saved, {run: v.saved_as}) :
          el("button", {type: "button", class: "save", onclick: () => saveVariant(v)}, T.variant_save)))] : [])]);
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

  // --- side by side ---------------------------------------------------------------------
  // Two or more maps of the base and solved variants; panning or zooming one moves the others.
  const side = {panels: [], syncing: false};
  function choices() {
    const out = [{key: "run:" + state.run, label: `${T.base}: ${state.run}`,
      url: `api/runs/${state.run}/layers/allocation.png`, info: () => api("api/runs/" + state.run)}];
    Object.values(state.variants).filter(v => v.status === "done" && v.base === state.run).forEach(v => out.push({
      key: "variant:" + v.id, label: `${v.name} (${fmt(v.resolution, 0)} m)`,
      url: `api/variants/${v.id}/allocation.png`, info: () => api("api/variants/" + v.id)}));
    return out;
  }
  function syncFrom(source) {
    if (side.syncing) return;
    side.syncing = true;  // the others' own move events must not echo back
    side.panels.forEach(p => { if (p !== source) p.map.setView(source.map.getCenter(), source.map.getZoom(), {animate: false}); });
    side.syncing = false;
  }
  function fillPicks() {
    const all = choices();
    side.panels.forEach(p => {
      p.select.replaceChildren(...all.map(c => el("option", {value: c.key}, c.label)));
      p.select.value = p.key;
    });
  }
  function addPanel(key) {
    const select = el("select", {class: "compare-pick"});
    const holder = el("div", {class: "cmap"});
    const remove = el("button", {type: "button", class: "compare-remove"}, T.compare_remove);
    const box = el("div", {class: "compare-panel"}, el("div", {class: "row"}, el("label", {}, T.compare_pick + " ", select), remove), holder);
    document.getElementById("compare-maps").append(box);
    const m = L.map(holder, {crs: RD, minZoom: -3, maxZoom: 7, zoomSnap: 0.25, attributionControl: false});
    const panel = {box: box, select: select, map: m, image: null, key: key, targets: null, label: ""};
    L.geoJSON(outlines.data.provinces, {coordsToLatLng: toLatLng, style: {color: "#222", weight: 1.2, fill: false}, interactive: false}).addTo(m);
    m.setView(map.getCenter(), map.getZoom(), {animate: false});
    m.on("move", () => syncFrom(panel));
    select.addEventListener("change", () => pick(panel, select.value));
    remove.addEventListener("click", () => {
      if (side.panels.length <= 2) return;
      side.panels.splice(side.panels.indexOf(panel), 1);
      m.remove(); box.remove();
      side.panels.forEach(p => p.map.invalidateSize());
      renderTotals();
    });
    side.panels.push(panel);
    side.panels.forEach(p => p.map.invalidateSize());
    fillPicks();
    return pick(panel, key);
  }
  async function pick(panel, key) {
    const c = choices().find(x => x.key === key) || choices()[0];
    panel.key = c.key; panel.select.value = c.key; panel.label = c.label;
    if (panel.image) panel.map.removeLayer(panel.image);
    panel.image = L.imageOverlay(c.url, bounds(), {className: "cells", opacity: 0.95}).addTo(panel.map);
    panel.targets = (await c.info()).targets;
    renderTotals();
  }
  function claimTotals(targets) {  // land take: the provinces add up to the land; a claim with none, its national row
    const out = {};
    targets.forEach(r => { if (r.zoning === "province") out[r.claim] = (out[r.claim] || 0) + (r.land_ha ?? NaN); });
    targets.forEach(r => { if (r.zoning === "national" && !(r.claim in out)) out[r.claim] = r.land_ha ?? NaN; });
    return out;
  }
  function renderTotals() {
    const ready = side.panels.filter(p => p.targets);
    const box = document.getElementById("compare-totals");
    if (!ready.length) { box.replaceChildren(); return; }
    const sums = ready.map(p => claimTotals(p.targets));
    const claims = [...new Set(sums.flatMap(t => Object.keys(t)))];
    const first = ready[0];
    box.replaceChildren(el("h3", {}, T.compare_totals), el("table", {id: "compare-table"},
      el("tr", {}, el("th", {class: "l"}, T.why_claim), ready.map(p => el("th", {}, p.label)),
        ready.slice(1).map(p => el("th", {}, fill(T.compare_diff, {name: first.label})))),
      claims.map(c => el("tr", {}, el("td", {class: "l"}, claimLabel(c)),
        sums.map(t => el("td", {}, fmt(t[c], 0))),
        // A run from before land_ha has none: "–", not a difference against zero.
        sums.slice(1).map(t => el("td", {}, fmt((t[c] ?? NaN) - (sums[0][c] ?? NaN), 0)))))));
  }
  function openCompare() {
    document.getElementById("map").hidden = true;
    document.getElementById("compare").hidden = false;
    state.comparing = true;
    if (!side.panels.length) {
      const all = choices();
      return Promise.all([addPanel(all[0].key), addPanel(all[all.length - 1].key)]);
    }
    fillPicks();
    side.panels.forEach(p => p.map.invalidateSize());
    return Promise.all(side.panels.map(p => pick(p, p.key)));
  }
  function closeCompare() {
    document.getElementById("compare").hidden = true;
    document.getElementById("map").hidden = false;
    state.comparing = false;
    map.invalidateSize();
    if (side.panels.length) map.setView(side.panels[0].map.getCenter(), side.panels[0].map.getZoom(), {animate: false});
  }
  document.getElementById("compare-open").addEventListener("click", openCompare);
  document.getElementById("compare-close").addEventListener("click", closeCompare);
  document.getElementById("compare-add").addEventListener("click", () => {
    const all = choices();
    const unused = all.find(c => !side.panels.some(p => p.key === c.key)) || all[0];
    addPanel(unused.key);
  });
  state.side = side;

  // --- start -----------------------------------------------------------------------------
  Promise.all([
    loadOutlines("provinces", {color: "#222", weight: 1.4, fill: false}, "province-name", true),
    loadOutlines("municipalities", {color: "#555", weight: 0.5, fill: false, dashArray: "2 2"}, "municipality-name", false),
  ]).then(() => loadRuns()).then(() => { state.ready = true; })
    .catch(err => document.getElementById("run-info").textContent = err.message);
})();
