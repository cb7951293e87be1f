/* One symbol: factor and score history (Chart.js, served from our own static files), the score's
 * components, the sizing stack in force, recent ledger decisions and recent recompute runs.
 * A refresh makes six API calls; the history is fetched again only when a new snapshot arrives
 * or the window changes, following cursor pages up to a bound. */
(function () {
  "use strict";
  const { fmt, el, setText, setAttr, direction, DIRECTION_TEXT, DIRECTION_ARROW, regimeWord } = window.Dash;

  const main = document.querySelector('main[data-page="detail"]');
  if (!main) return;
  const config = window.Dash.readConfig(main);
  const symbol = config.symbol;
  const WINDOWS = { "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3, "30d": 30 * 24 * 3600e3 };
  // Axis ticks on whole UTC hours and days: every 3 h, every day, every 5 days.
  const TICK_STEP = { "24h": 3 * 3600e3, "7d": 24 * 3600e3, "30d": 5 * 24 * 3600e3 };
  const HISTORY_PAGE_SIZE = 1000;
  const HISTORY_MAX_PAGES = 10; // 30 days of 5-minute buckets is 8640 snapshots
  const DECISIONS_SHOWN = 20;
  const RUNS_SHOWN = 10;
  const COMPONENT_NAMES = {
    sharpe_7d: ["Sharpe 7d", (v) => fmt.number(v)],
    max_drawdown: ["Max drawdown", (v) => fmt.percent(v, 2)],
    atr_regime: ["ATR regime (log\u2082 ratio)", (v) => fmt.signed(v)],
    slippage_bps: ["Arrival slippage", (v) => fmt.number(v) + " bps"],
    fill_rate: ["Fill rate", (v) => fmt.percent(v)],
    maker_ratio: ["Maker ratio", (v) => fmt.percent(v)],
  };

  const state = { window: WINDOWS[config.window] ? config.window : "7d", latestAsOf: undefined, historyFor: null, charts: {} };
  const field = (name) => main.querySelector('[data-field="' + name + '"]');
  const tbody = (name) => main.querySelector('[data-table="' + name + '"] tbody');

  // Summary ---------------------------------------------------------------------------------------
  function renderSummary(health, latest, override) {
    const sizing = health.sizing;
    const dir = direction(sizing.final_size_factor);
    const summary = main.querySelector(".summary");
    summary.dataset.direction = dir;
    setText(field("intel"), fmt.factor(sizing.intel_size_factor));
    setText(field("final"), fmt.factor(sizing.final_size_factor));
    field("direction").dataset.direction = dir;
    field("direction").replaceChildren(
      el("span", { className: "direction__arrow", text: DIRECTION_ARROW[dir], attrs: { "aria-hidden": "true" } }),
      el("span", { text: DIRECTION_TEXT[dir] }));
    setText(field("score"), fmt.signed(sizing.score));
    setText(field("sharpe"), fmt.number(sizing.sharpe_7d));
    const ratio = health.market.atr_regime_ratio;
    setText(field("regime"), ratio === null ? fmt.DASH : fmt.number(ratio) + " " + regimeWord(ratio) + " (" + fmt.factor(sizing.regime_multiplier) + ")");
    const ageSeconds = health.age_seconds;
    field("age").replaceChildren(...(health.as_of
      ? [fmt.age(ageSeconds), el("span", { className: "sub", text: "bucket " + fmt.time(health.as_of) })]
      : ["none yet"]));
    const execution = health.execution;
    setText(field("slippage"), execution.slippage_bps === null ? fmt.DASH : fmt.number(execution.slippage_bps) + " bps");
    setText(field("fill-rate"), fmt.percent(execution.fill_rate));
    setText(field("maker-ratio"), fmt.percent(execution.maker_ratio));
    setText(field("counts"), execution.fill_count + " / " + execution.order_count);

    const stale = health.stale || (ageSeconds !== null && ageSeconds > config.maxAgeSeconds);
    const badges = [el("span", { className: "badge badge--mode badge--" + sizing.mode, text: sizing.mode.toUpperCase() })];
    if (override) {
      const what = override.pinned_factor !== null ? fmt.factor(override.pinned_factor) : override.mode ? override.mode.toUpperCase() : "";
      badges.push(el("span", { className: "badge badge--override", text: ("OVERRIDE " + what).trim() }));
    }
    if (stale) {
      badges.push(el("span", { className: "badge badge--stale" },
        el("span", { text: "\u26A0", attrs: { "aria-hidden": "true" } }), " STALE"));
    }
    if (health.status === "no_snapshot") badges.push(el("span", { className: "badge badge--nodata", text: "NO SNAPSHOT" }));
    field("badges").replaceChildren(...badges);

    const notes = [];
    if (sizing.fallback_reason === "stale_input") {
      notes.push("The candle feed stopped (last candle " + fmt.time(health.inputs.last_candle_at) +
        "): sizing uses a neutral stack and 1.00x until fresh candles arrive.");
    } else if (stale) {
      notes.push("The latest snapshot is older than the max age: sizing uses 1.00x until a recompute succeeds.");
    }
    if (sizing.fallback_reason) notes.push("Fallback: " + sizing.fallback_reason.replace(/_/g, " ") + ".");
    if (override) {
      notes.push("Override #" + override.id + (override.reason ? ": \u201C" + override.reason + "\u201D" : "") +
        (override.author ? " by " + override.author : "") +
        (override.expires_at ? ", expires " + fmt.time(override.expires_at) : ", no expiry") + ".");
    }
    if (latest && latest.status !== "ok") notes.push("Snapshot status: " + latest.status.replace(/_/g, " ") + ".");
    setText(field("note"), notes.join(" "));
    field("note").hidden = notes.length === 0;
  }

  /** A signed amount in the quote currency: "+1,234.50", "−0.0004". */
  function money(value) {
    const text = fmt.size(value);
    return window.Dash.finite(value) && value > 0 ? "+" + text : text;
  }

  function renderPosition(health) {
    const p = health.position;
    const inputs = health.inputs;
    setText(field("quote"), p.quote_asset ? "(in " + p.quote_asset + ")" : "");
    const qty = p.qty;
    setText(field("position-qty"), qty === null ? fmt.DASH : qty === 0 ? "flat" : (qty > 0 ? "long " : "short ") + fmt.size(Math.abs(qty)));
    setText(field("avg-cost"), qty ? fmt.size(p.avg_cost) : fmt.DASH);
    setText(field("realized"), money(p.realized_pnl));
    setText(field("unrealized"), money(p.unrealized_pnl));
    setText(field("fees"), fmt.size(p.fees));
    setText(field("equity"), fmt.size(p.equity) + " / " + fmt.size(p.capital));
    setText(field("last-candle"), fmt.time(inputs.last_candle_at));
    setText(field("last-fill"), fmt.time(inputs.last_fill_at));
    const notes = [];
    if (p.unconverted_fee_count > 0) {
      notes.push(p.unconverted_fee_count + " fee(s) in an asset with no price in " + (p.quote_asset || "the quote currency") +
        " are not in the fees above: import that asset's candles to count them.");
    }
    if (p.source_realized_pnl !== null && window.Dash.finite(p.realized_pnl)) {
      notes.push("The sources reported a realized PnL of " + money(p.source_realized_pnl) + " (computed " + money(p.realized_pnl) + ").");
    }
    if (inputs.computed_live === false) notes.push("This snapshot was backfilled, not computed live.");
    setText(field("position-note"), notes.join(" "));
    field("position-note").hidden = notes.length === 0;
  }

  // Tables ----------------------------------------------------------------------------------------
  function cell(text, className) {
    return el("td", { text, className });
  }

  /** Each cell carries its column's heading: on a phone the tables become labelled cards. */
  function labelCells(name) {
    const table = main.querySelector('[data-table="' + name + '"]');
    const headings = Array.from(table.querySelectorAll("thead th"), (th) => th.textContent);
    for (const row of table.querySelectorAll("tbody tr")) {
      Array.from(row.children).forEach((cellNode, index) => {
        if (cellNode.tagName === "TD" && headings[index]) cellNode.dataset.label = headings[index];
      });
    }
  }

  function emptyRow(body, columns, text) {
    body.replaceChildren(el("tr", { className: "empty-row" }, el("td", { text, attrs: { colspan: String(columns) } })));
  }

  function renderComponents(latest) {
    const body = tbody("components");
    const components = latest ? Object.entries(latest.components || {}) : [];
    if (!components.length) {
      emptyRow(body, 6, "No snapshot yet.");
      return;
    }
    const rows = components.map(([name, part]) => {
      const [label, format] = COMPONENT_NAMES[name] || [name.replace(/_/g, " "), (v) => fmt.number(v)];
      const value = part.value === null || part.value === undefined ? fmt.DASH : format(part.value);
      const contribution = Number(part.contribution) || 0;
      const width = Math.min(Math.abs(contribution), 1) * 50 + "%";
      const fill = el("span", { className: contribution >= 0 ? "pos" : "neg" });
      fill.style.width = width; // CSSOM, not a style attribute: fine under a strict Content-Security-Policy
      const bar = el("span", { className: "contribution__bar", attrs: { "aria-hidden": "true" } }, fill);
      return el("tr", {},
        el("th", { text: label, attrs: { scope: "row" } }),
        cell(value, "num"),
        cell(part.sample === undefined ? fmt.DASH : String(part.sample), "num"),
        cell(fmt.percent(part.confidence, 0), "num"),
        cell(fmt.number(part.weight), "num"),
        el("td", { className: "num" }, el("span", { className: "contribution" }, bar, fmt.signed(contribution))));
    });
    body.replaceChildren(...rows);
    const table = main.querySelector('[data-table="components"]');
    const foot = el("tfoot", {}, el("tr", {},
      el("th", { text: "Score", attrs: { scope: "row", colspan: "5" } }), cell(fmt.signed(latest.score), "num")));
    const existing = table.querySelector("tfoot");
    if (existing) existing.replaceWith(foot);
    else table.append(foot);
    labelCells("components");
  }

  function renderStack(health) {
    const s = health.sizing;
    const rows = [
      ["Inverse-volatility multiplier", s.inverse_vol_multiplier],
      ["Volatility regime multiplier", s.regime_multiplier],
      ["Sharpe multiplier (size_multiplier)", s.size_multiplier],
      ["Intel factor persisted", s.raw_intel_size_factor],
      ["Intel factor after policy", s.intel_size_factor],
      ["Intel factor applied (mode " + s.mode + ")", s.applied_intel_size_factor],
    ].map(([label, value]) => el("tr", {}, el("th", { text: label, attrs: { scope: "row" } }), cell(fmt.factor(value), "num")));
    rows.push(el("tr", {}, el("th", { text: "Final factor = Sharpe \u00D7 intel applied", attrs: { scope: "row" } }),
      el("td", { className: "num" }, el("strong", { text: fmt.factor(s.final_size_factor) }))));
    tbody("stack").replaceChildren(...rows);
    labelCells("stack");
  }

  function renderDecisions(page) {
    const body = tbody("decisions");
    if (!page.results.length) {
      emptyRow(body, 9, "No sizing decision recorded for " + symbol + " yet.");
      return;
    }
    body.replaceChildren(...page.results.slice(0, DECISIONS_SHOWN).map((d) => {
      const inverseVol = d.gross_target > 0 ? d.inverse_vol_size / d.gross_target : null;
      const flags = [el("span", { className: "badge badge--mode badge--" + d.mode + " flag", text: d.mode.toUpperCase() })];
      if (d.stale) flags.push(el("span", { className: "badge badge--stale flag" }, el("span", { text: "\u26A0", attrs: { "aria-hidden": "true" } }), " STALE"));
      if (d.override_id !== null) flags.push(el("span", { className: "badge badge--override flag", text: "OVERRIDE #" + d.override_id }));
      if (d.fallback_reason) flags.push(el("span", { className: "flag", text: d.fallback_reason.replace(/_/g, " ") }));
      const applied = fmt.factor(d.applied_factor) + (d.applied_factor !== d.intel_factor ? " (proposed " + fmt.factor(d.intel_factor) + ")" : "");
      return el("tr", {},
        cell(fmt.time(d.created_at, true).replace(" UTC", ""), "nowrap"),
        cell(d.order_ref || fmt.DASH, "mono"),
        cell(fmt.size(d.gross_target), "num"),
        cell(fmt.factor(inverseVol), "num"),
        cell(fmt.factor(d.regime_multiplier), "num"),
        cell(fmt.factor(d.sharpe_multiplier), "num"),
        cell(applied, "num"),
        el("td", { className: "num" }, el("strong", { text: fmt.size(d.final_size) })),
        el("td", {}, el("span", { className: "flag-list" }, ...flags)));
    }));
    labelCells("decisions");
  }

  function renderRuns(page) {
    const body = tbody("runs");
    if (!page.results.length) {
      emptyRow(body, 7, "No recompute run yet.");
      return;
    }
    body.replaceChildren(...page.results.slice(0, RUNS_SHOWN).map((run) => {
      const reason = (run.errors || {})[symbol];
      return el("tr", {},
        cell("#" + run.id),
        cell(fmt.time(run.as_of).replace(" UTC", ""), "nowrap"),
        cell(run.trigger),
        el("td", {}, el("span", { className: "badge badge--run badge--run-" + run.status, text: run.status.toUpperCase() })),
        cell(run.duration_seconds === null ? "running" : fmt.duration(run.duration_seconds), "num"),
        cell(run.symbols_ok + " / " + run.symbols_failed + (run.symbols_existing ? " (" + run.symbols_existing + " kept)" : ""), "num"),
        cell(reason ? "failed: " + reason : fmt.DASH));
    }));
    labelCells("runs");
  }

  // History charts --------------------------------------------------------------------------------
  function cssColor(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function tickLabel(ms) {
    const iso = new Date(ms).toISOString();
    return state.window === "24h" ? iso.slice(11, 16) : iso.slice(5, 10);
  }

  function makeChart(canvas, { format, suggestedMin, suggestedMax }) {
    const Chart = window.Chart;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = cssColor("--muted");
    return new Chart(canvas, {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: {
          decimation: { enabled: true, algorithm: "lttb", samples: 500 },
          legend: { position: "bottom", labels: { boxWidth: 28, boxHeight: 2 } },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? fmt.time(items[0].parsed.x) : ""),
              label: (item) => item.dataset.label + ": " + format(item.parsed.y),
            },
          },
        },
        scales: {
          x: {
            type: "linear",
            grid: { color: cssColor("--chart-grid") },
            ticks: { includeBounds: false, maxRotation: 0, autoSkip: true, callback: (value) => tickLabel(value) },
          },
          y: {
            suggestedMin, suggestedMax,
            grid: { color: cssColor("--chart-grid") },
            ticks: { callback: (value) => format(value) },
          },
        },
      },
    });
  }

  function series(points, key) {
    return points.map((snapshot) => ({ x: Date.parse(snapshot.as_of), y: snapshot[key] }));
  }

  function flat(value, from, to) {
    return [{ x: from, y: value }, { x: to, y: value }];
  }

  function summarize(points, key, format) {
    if (!points.length) return "No snapshot in this window.";
    const values = points.map((p) => p[key]);
    return "Latest " + format(values[values.length - 1]) + " \u00B7 min " + format(Math.min(...values)) + " \u00B7 max " +
      format(Math.max(...values)) + " \u00B7 " + points.length + " snapshots";
  }

  async function loadHistory() {
    const windowName = state.window;
    const until = window.Dash.clock.now();
    const since = until - WINDOWS[windowName];
    const url = config.apiHistory + "?" + new URLSearchParams({
      symbol, since: new Date(since).toISOString(), page_size: String(HISTORY_PAGE_SIZE),
    });
    setText(field("history-note"), "Loading " + windowName + " of history\u2026");
    const { results, truncated } = await window.Dash.apiPages(url, HISTORY_MAX_PAGES);
    if (windowName !== state.window) return; // the user picked another window meanwhile
    const points = results.slice().reverse(); // oldest first
    drawCharts(points, since, until);
    state.historyFor = windowName + "|" + state.latestAsOf;
    setText(field("history-note"), truncated
      ? "Showing the newest " + results.length + " snapshots of the last " + windowName + "."
      : points.length + " snapshots in the last " + windowName + ".");
  }

  function drawCharts(points, since, until) {
    if (!window.Chart) {
      setText(field("history-note"), "The chart library did not load.");
      return;
    }
    if (!state.charts.factor) {
      state.charts.factor = makeChart(main.querySelector('[data-chart="factor"]'), { format: fmt.factor, suggestedMin: 0.75, suggestedMax: 1.25 });
      state.charts.score = makeChart(main.querySelector('[data-chart="score"]'), { format: (v) => fmt.signed(v), suggestedMin: -0.5, suggestedMax: 0.5 });
    }
    const factorColor = cssColor("--chart-factor");
    const neutral = cssColor("--chart-raw");
    const line = (label, data, color, extra = {}) => ({
      label, data, borderColor: color, backgroundColor: color, borderWidth: 2, pointRadius: data.length < 60 ? 2 : 0,
      pointHoverRadius: 4, tension: 0, spanGaps: true, ...extra,
    });
    const factor = state.charts.factor;
    factor.data.datasets = [
      line("Size factor", series(points, "size_factor"), factorColor),
      line("Before step limit", series(points, "raw_size_factor"), neutral, { borderDash: [6, 4], borderWidth: 1.5 }),
      line("Neutral 1.00x", flat(1, since, until), neutral, { borderDash: [2, 3], borderWidth: 1, pointRadius: 0 }),
    ];
    for (const chart of [state.charts.factor, state.charts.score]) {
      chart.options.scales.x.min = since;
      chart.options.scales.x.max = until;
      chart.options.scales.x.ticks.stepSize = TICK_STEP[state.window];
    }
    factor.update("none");
    const score = state.charts.score;
    score.data.datasets = [
      line("Score", series(points, "score"), cssColor("--chart-score")),
      line("Neutral 0", flat(0, since, until), neutral, { borderDash: [2, 3], borderWidth: 1, pointRadius: 0 }),
    ];
    score.update("none");

    const factorText = summarize(points, "size_factor", fmt.factor);
    const scoreText = summarize(points, "score", (v) => fmt.signed(v));
    setText(main.querySelector('[data-chart-summary="factor"]'), factorText);
    setText(main.querySelector('[data-chart-summary="score"]'), scoreText);
    setAttr(main.querySelector('[data-chart="factor"]'), "aria-label", "Size factor of " + symbol + " over the last " + state.window + ". " + factorText);
    setAttr(main.querySelector('[data-chart="score"]'), "aria-label", "Score of " + symbol + " over the last " + state.window + ". " + scoreText);
  }

  function bindWindows() {
    for (const button of main.querySelectorAll("[data-window-option]")) {
      button.addEventListener("click", () => {
        const chosen = button.dataset.windowOption;
        if (chosen === state.window) return;
        state.window = chosen;
        for (const other of main.querySelectorAll("[data-window-option]")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        const params = new URLSearchParams(window.location.search);
        params.set("window", chosen);
        window.history.replaceState(null, "", window.location.pathname + "?" + params);
        loadHistory().catch((error) => setText(field("history-note"), "Could not load the history (" + error.message + ")."));
      });
    }
  }

  // Refresh ---------------------------------------------------------------------------------------
  async function refresh() {
    const api = window.Dash.api;
    const [health, latest, decisions, runs, policy, overrides] = await Promise.all([
      api(config.apiHealth),
      api(config.apiLatest, { allow404: true }),
      api(config.apiDecisions + "?" + new URLSearchParams({ symbol, page_size: String(DECISIONS_SHOWN) })),
      api(config.apiRuns + "?page_size=" + RUNS_SHOWN),
      api(config.apiPolicy),
      api(config.apiOverrides + "?limit=500"),
    ]);
    if (health.as_of) window.Dash.clock.sync(Date.parse(health.as_of) + health.age_seconds * 1000);
    const override = overrides.results.find((o) => o.active && o.symbol === symbol) ||
      (health.sizing.override_id !== null ? { id: health.sizing.override_id, pinned_factor: null, mode: "" } : null);
    renderSummary(health, latest, override);
    renderPosition(health);
    renderComponents(latest);
    renderStack(health);
    renderDecisions(decisions);
    renderRuns(runs);
    window.Dash.renderRunBar(runs.results[0] || null, policy.global_mode);
    const asOf = health.as_of;
    const changed = state.latestAsOf !== undefined && asOf !== state.latestAsOf;
    state.latestAsOf = asOf;
    if (state.historyFor !== state.window + "|" + asOf) await loadHistory();
    if (changed) window.Dash.announce("New snapshot for " + symbol + ": final factor " + fmt.factor(health.sizing.final_size_factor) + ".");
    window.__dashboardDetailReady = true;
  }

  bindWindows();
  new window.Dash.Poller({ intervalSeconds: config.refreshSeconds, refresh }).start();
})();
