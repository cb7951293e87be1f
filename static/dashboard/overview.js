/* Execution Health Overview: one tile per symbol, filtered and sorted in the browser.
 * Each refresh makes the same five API calls whatever the number of symbols; tiles are built once
 * with DOM APIs and updated in place, so focus and scroll survive a refresh. */
(function () {
  "use strict";
  const { fmt, el, setText, setAttr, direction, DIRECTION_TEXT, DIRECTION_ARROW, regimeWord } = window.Dash;

  const main = document.querySelector('main[data-page="overview"]');
  if (!main) return;
  const config = window.Dash.readConfig(main);
  const grid = main.querySelector("[data-tiles]");
  const emptyNote = main.querySelector("[data-empty]");
  const shownCount = main.querySelector("[data-shown-count]");
  const OVERRIDES_PAGE = 500; // active overrides come first in the API's order
  const DEFAULTS = { view: "all", mode: "any", sort: "symbol", q: "" };
  const VIEWS = ["all", "reduced", "increased", "stale"];
  const MODES = ["any", "live", "shadow", "off", "override"];
  const SORTS = ["symbol", "final-desc", "final-asc", "intel-desc", "intel-asc", "score-desc", "score-asc", "age-desc"];

  const state = {
    data: null, // {health, run, globalMode, symbolModes, overrides, arrivedAt}
    tiles: new Map(), // symbol -> {root, refs}
    order: [],
    previous: new Map(), // symbol -> "intel|final" shown at the last render
    lastRunId: undefined,
    filters: readFilters(),
  };

  // Filters, kept in the URL so a view ("only stale, by age") can be bookmarked --------------------
  function readFilters() {
    const params = new URLSearchParams(window.location.search);
    const pick = (name, allowed) => (allowed.includes(params.get(name)) ? params.get(name) : DEFAULTS[name]);
    return {
      view: pick("view", VIEWS), mode: pick("mode", MODES), sort: pick("sort", SORTS),
      q: (params.get("q") || "").toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 32),
    };
  }

  function writeFilters() {
    const params = new URLSearchParams(window.location.search);
    for (const [name, value] of Object.entries(state.filters)) {
      if (value === DEFAULTS[name]) params.delete(name);
      else params.set(name, value);
    }
    const query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
  }

  function bindControls() {
    for (const radio of main.querySelectorAll('input[name="view"]')) {
      radio.checked = radio.value === state.filters.view;
      radio.addEventListener("change", () => {
        if (radio.checked) changeFilter("view", radio.value);
      });
    }
    const mode = main.querySelector('[data-control="mode"]');
    mode.value = state.filters.mode;
    mode.addEventListener("change", () => changeFilter("mode", mode.value));
    const sort = main.querySelector('[data-control="sort"]');
    sort.value = state.filters.sort;
    sort.addEventListener("change", () => changeFilter("sort", sort.value));
    const search = main.querySelector('[data-control="q"]');
    search.value = state.filters.q;
    search.addEventListener("input", () => changeFilter("q", search.value.toUpperCase().replace(/[^A-Z0-9]/g, "")));
  }

  function changeFilter(name, value) {
    state.filters[name] = value;
    writeFilters();
    if (state.data) render(performance.now(), { announceFilter: true });
  }

  // Data ------------------------------------------------------------------------------------------
  async function refresh() {
    const [health, latest, runs, policy, overrides] = await Promise.all([
      window.Dash.api(config.apiHealth),
      window.Dash.api(config.apiLatest), // every symbol's latest components, for the "why" line
      window.Dash.api(config.apiRuns + "?page_size=1"),
      window.Dash.api(config.apiPolicy),
      window.Dash.api(config.apiOverrides + "?limit=" + OVERRIDES_PAGE),
    ]);
    const arrivedAt = performance.now();
    window.Dash.clock.sync(Date.parse(health.generated_at));
    const activeOverrides = new Map();
    for (const override of overrides.results) {
      if (override.active && !activeOverrides.has(override.symbol)) activeOverrides.set(override.symbol, override);
    }
    state.data = {
      health,
      run: runs.results[0] || health.latest_run || null,
      globalMode: policy.global_mode,
      symbolModes: new Map(policy.symbols.map((entry) => [entry.symbol, entry.mode])),
      overrides: activeOverrides,
      components: new Map(latest.map((entry) => [entry.symbol, entry.components])),
      receivedAt: Date.now(),
    };
    render(arrivedAt, { announceData: true });
  }

  /** One plain record per symbol, with its age as of now (the data may be a few seconds old). */
  function records() {
    const { health, symbolModes, overrides, components, receivedAt } = state.data;
    const elapsed = (Date.now() - receivedAt) / 1000;
    const rows = [];
    for (const [symbol, entry] of Object.entries(health.symbols)) {
      const sizing = entry.sizing;
      const age = entry.age_seconds === null ? null : entry.age_seconds + elapsed;
      const override = sizing.override_id === null ? null : overrides.get(symbol) || { id: sizing.override_id };
      rows.push({
        symbol,
        intel: sizing.intel_size_factor,
        final: sizing.final_size_factor,
        direction: direction(sizing.final_size_factor),
        score: sizing.score,
        sharpe: sizing.sharpe_7d,
        regimeRatio: entry.market.atr_regime_ratio,
        regimeMultiplier: sizing.regime_multiplier,
        mode: sizing.mode,
        modeSource: override && override.mode ? "override" : symbolModes.get(symbol) ? "symbol setting" : "global mode",
        override,
        hasSnapshot: entry.status !== "no_snapshot",
        status: entry.status,
        asOf: entry.as_of,
        age,
        // The API judged staleness when it answered; the page keeps judging while it waits.
        stale: entry.stale || (age !== null && age > config.maxAgeSeconds),
        fallback: sizing.fallback_reason,
        drivers: entry.status === "no_snapshot" ? [] : drivers(components.get(symbol)),
      });
    }
    return rows;
  }

  /** The two components that move the score most, e.g. [["Sharpe 7d", 0.98], ["Slippage", -0.41]]. */
  function drivers(parts) {
    if (!parts) return [];
    return Object.entries(parts)
      .map(([name, part]) => [name, Number(part.contribution) || 0])
      .filter(([, contribution]) => Math.abs(contribution) >= 0.005)
      .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
      .slice(0, 2)
      .map(([name, contribution]) => [window.Dash.COMPONENT_LABELS[name] || name.replace(/_/g, " "), contribution]);
  }

  function passesModeAndSearch(row) {
    const { mode, q } = state.filters;
    if (q && !row.symbol.includes(q)) return false;
    if (mode === "override") return row.override !== null;
    return mode === "any" || row.mode === mode;
  }

  function passesView(row) {
    switch (state.filters.view) {
      case "reduced": return row.direction === "down";
      case "increased": return row.direction === "up";
      case "stale": return row.stale;
      default: return true;
    }
  }

  const byNumber = (key, sign) => (a, b) => {
    const x = a[key], y = b[key];
    const xMissing = x === null || x === undefined, yMissing = y === null || y === undefined;
    if (xMissing || yMissing) return xMissing === yMissing ? 0 : xMissing ? 1 : -1; // missing last
    return sign * (x - y);
  };
  const COMPARATORS = {
    symbol: () => 0,
    "final-desc": byNumber("final", -1), "final-asc": byNumber("final", 1),
    "intel-desc": byNumber("intel", -1), "intel-asc": byNumber("intel", 1),
    "score-desc": byNumber("score", -1), "score-asc": byNumber("score", 1),
    "age-desc": byNumber("age", -1),
  };

  // Tiles -----------------------------------------------------------------------------------------
  function detailUrl(symbol) {
    return config.detailUrlTemplate.replace("SYMBOL", encodeURIComponent(symbol));
  }

  /** The tile's markup, built once with DOM APIs; each tile is a deep clone (much faster than 25 createElement calls). */
  const tilePrototype = (() => {
    const ref = (name) => ({ ref: name });
    const stat = (label, name) => el("div", {}, el("dt", { text: label }),
      el("dd", { dataset: { field: name, ref: name } }, name === "age" ? el("time", { dataset: ref("ageTime") }) : null));
    return el("li", { className: "tile" },
      el("article", { className: "tile__card", dataset: ref("article") },
        el("div", { className: "tile__head" },
          el("h3", { className: "tile__symbol" }, el("a", { dataset: ref("link") })),
          el("div", { className: "badges" },
            el("span", { className: "badge badge--mode", dataset: ref("mode") }),
            el("span", { className: "badge badge--override", hidden: true, dataset: ref("override") }),
            el("span", { className: "badge badge--stale", hidden: true, dataset: ref("stale") },
              el("span", { text: "\u26A0", attrs: { "aria-hidden": "true" } }), " STALE"),
            el("span", { className: "badge badge--nodata", text: "NO SNAPSHOT", hidden: true, dataset: ref("noData") }))),
        el("div", { className: "factors" },
          el("div", { className: "factor" }, el("span", { className: "factor__label", text: "Intel" }),
            el("span", { className: "factor__value", dataset: { field: "intel", ref: "intel" } })),
          el("div", { className: "factor factor--final" }, el("span", { className: "factor__label", text: "Final" }),
            el("span", { className: "factor__value", dataset: { field: "final", ref: "final" } }))),
        el("p", { className: "direction", dataset: { field: "direction", ref: "direction" } },
          el("span", { className: "direction__arrow", attrs: { "aria-hidden": "true" }, dataset: ref("arrow") }),
          el("span", { className: "direction__text", dataset: ref("directionText") })),
        el("dl", { className: "stats" },
          stat("Score", "score"), stat("Sharpe 7d", "sharpe"), stat("Regime", "regime"), stat("Snapshot", "age")),
        el("p", { className: "tile__why", hidden: true, dataset: { field: "why", ref: "why" } }),
        el("p", { className: "tile__note", hidden: true, dataset: ref("note") })));
  })();

  function createTile(symbol) {
    const root = tilePrototype.cloneNode(true);
    const refs = {};
    for (const node of root.querySelectorAll("[data-ref]")) refs[node.dataset.ref] = node;
    const titleId = "tile-" + symbol;
    root.dataset.symbol = symbol;
    refs.article.setAttribute("aria-labelledby", titleId);
    refs.link.id = titleId;
    refs.link.href = detailUrl(symbol);
    refs.link.textContent = symbol;
    return { root, refs };
  }


  function updateTile(tile, row) {
    const { root, refs } = tile;
    setAttr(root, "data-direction", row.direction);
    setAttr(root, "data-stale", String(row.stale));
    setAttr(root, "data-mode", row.mode);
    setText(refs.mode, row.mode.toUpperCase());
    setAttr(refs.mode, "class", "badge badge--mode badge--" + row.mode);
    setAttr(refs.mode, "title", "Mode " + row.mode + " (from the " + row.modeSource + ")");
    if (row.override) {
      const pinned = row.override.pinned_factor;
      const pinnedMode = row.override.mode;
      const what = pinned !== null && pinned !== undefined ? fmt.factor(pinned) : pinnedMode ? pinnedMode.toUpperCase() : "";
      setText(refs.override, ("OVERRIDE " + what).trim());
      const details = [row.override.reason ? "Reason: " + row.override.reason : "", row.override.author ? "by " + row.override.author : "",
        row.override.expires_at ? "expires " + fmt.time(row.override.expires_at) : "no expiry"];
      setAttr(refs.override, "title", details.filter(Boolean).join(", "));
    }
    setHidden(refs.override, !row.override);
    setHidden(refs.stale, !row.stale);
    setAttr(refs.stale, "title", "Older than the " + fmt.age(config.maxAgeSeconds).replace(" ago", "") + " max age: sizing uses 1.00x");
    setHidden(refs.noData, row.hasSnapshot);
    setText(refs.intel, fmt.factor(row.intel));
    setText(refs.final, fmt.factor(row.final));
    setText(refs.arrow, DIRECTION_ARROW[row.direction]);
    setText(refs.directionText, DIRECTION_TEXT[row.direction]);
    setText(refs.score, fmt.signed(row.score));
    setText(refs.sharpe, fmt.number(row.sharpe));
    setAttr(refs.sharpe, "title", row.sharpe === null ? "undefined: fewer than two daily returns" : null);
    const word = regimeWord(row.regimeRatio);
    setText(refs.regime, row.regimeRatio === null ? fmt.DASH : fmt.number(row.regimeRatio) + (word ? " " + word : ""));
    setAttr(refs.regime, "title", "ATR% short/long ratio; regime multiplier " + fmt.factor(row.regimeMultiplier));
    setText(refs.ageTime, row.hasSnapshot ? fmt.age(row.age) : "none");
    setAttr(refs.ageTime, "datetime", row.asOf);
    setAttr(refs.ageTime, "title", row.asOf ? "Bucket " + fmt.time(row.asOf) : null);
    const why = row.drivers.map(([label, contribution]) => label + " " + fmt.signed(contribution)).join(" \u00B7 ");
    if (refs.why.dataset.text !== why) {
      refs.why.dataset.text = why;
      const parts = [el("span", { className: "tile__why-label", text: "Why" })];
      row.drivers.forEach(([label, contribution], index) => {
        parts.push(el("span", { className: "driver" },
          el("span", { className: contribution > 0 ? "up" : "down", text: contribution > 0 ? "\u25B2" : "\u25BC", attrs: { "aria-hidden": "true" } }),
          " " + label + " " + fmt.signed(contribution),
          index < row.drivers.length - 1 ? el("span", { className: "visually-hidden", text: ";" }) : null));
      });
      refs.why.replaceChildren(...parts);
    }
    setHidden(refs.why, why === "");
    const notes = [];
    if (row.fallback) notes.push("Fallback: " + row.fallback.replace(/_/g, " "));
    if (row.status === "partial") notes.push("partial data");
    if (row.status === "no_data") notes.push("no data: neutral factor");
    setText(refs.note, notes.join(" \u00B7 "));
    setHidden(refs.note, notes.length === 0);
  }

  // Writing an unchanged value still dirties style in Chromium: 500 tiles would relayout every refresh.
  function setHidden(node, hidden) {
    if (node.hidden !== hidden) node.hidden = hidden;
  }

  // Render ----------------------------------------------------------------------------------------
  function render(startedAt, { announceData = false, announceFilter = false } = {}) {
    const rows = records();
    const scoped = rows.filter(passesModeAndSearch);
    const counts = { all: scoped.length, reduced: 0, increased: 0, stale: 0 };
    for (const row of scoped) {
      if (row.direction === "down") counts.reduced += 1;
      if (row.direction === "up") counts.increased += 1;
      if (row.stale) counts.stale += 1;
    }
    const visible = scoped.filter(passesView);
    const comparator = COMPARATORS[state.filters.sort];
    visible.sort((a, b) => comparator(a, b) || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));

    // Build every tile into one fragment; reorder the list only when the order changed.
    const keys = visible.map((row) => row.symbol);
    const sameOrder = keys.length === state.order.length && keys.every((key, index) => key === state.order[index]);
    const fragment = sameOrder ? null : document.createDocumentFragment();
    let changed = 0;
    for (const row of visible) {
      let tile = state.tiles.get(row.symbol);
      if (!tile) {
        tile = createTile(row.symbol);
        state.tiles.set(row.symbol, tile);
      }
      updateTile(tile, row);
      const shown = tile.refs.intel.textContent + "|" + tile.refs.final.textContent;
      const before = state.previous.get(row.symbol);
      if (before !== undefined && before !== shown) {
        changed += 1;
        tile.root.classList.remove("tile--changed");
        void tile.root.offsetWidth; // restart the highlight
        tile.root.classList.add("tile--changed");
      }
      state.previous.set(row.symbol, shown);
      if (fragment) fragment.append(tile.root);
    }
    if (fragment) {
      const focused = document.activeElement;
      grid.replaceChildren(fragment);
      if (focused && focused !== document.body && grid.contains(focused)) focused.focus({ preventScroll: true });
      state.order = keys;
    }
    for (const symbol of state.tiles.keys()) {
      if (!(symbol in state.data.health.symbols)) {
        state.tiles.delete(symbol);
        state.previous.delete(symbol);
      }
    }
    grid.setAttribute("aria-busy", "false");
    emptyNote.hidden = visible.length > 0;
    for (const [name, count] of Object.entries(counts)) {
      setText(main.querySelector('[data-count="' + name + '"]'), "(" + count + ")");
    }
    setText(shownCount, "Showing " + visible.length + " of " + rows.length + " symbols");
    window.Dash.renderRunBar(state.data.run, state.data.globalMode);
    window.__dashboardBuildMs = performance.now() - startedAt;
    void grid.offsetHeight; // include style and layout in the measure, not only DOM building
    window.__dashboardRenderMs = performance.now() - startedAt;
    window.__dashboardRenderedSymbols = visible.length;

    if (announceData) announceRefresh(rows, counts, changed);
    if (announceFilter) window.Dash.announce("Showing " + visible.length + " of " + rows.length + " symbols.");
  }

  function announceRefresh(rows, counts, changed) {
    const run = state.data.run;
    const runId = run ? run.id : null;
    const summary = counts.reduced + " reduced, " + counts.increased + " sized up, " + counts.stale + " stale.";
    if (state.lastRunId === undefined) {
      window.Dash.announce("Loaded " + rows.length + " symbols: " + summary);
    } else if (runId !== state.lastRunId || changed > 0) {
      const what = runId !== state.lastRunId && runId !== null ? "New recompute run #" + runId + ". " : "";
      window.Dash.announce("Updated at " + fmt.clock(Date.now()) + ". " + what + changed + " factor" + (changed === 1 ? "" : "s") + " changed; " + summary);
    }
    state.lastRunId = runId;
  }

  bindControls();
  const poller = new window.Dash.Poller({
    intervalSeconds: config.refreshSeconds,
    refresh,
    // The API is unreachable: keep the last data, but let the ages (and stale badges) move on.
    onStale: () => {
      if (state.data) render(performance.now());
    },
  });
  poller.start();
})();
