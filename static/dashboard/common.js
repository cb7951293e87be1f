/* Execution Health dashboard: formatting, same-origin API calls, the refresh loop and the run bar.
 * Shared by overview.js and detail.js. API data only ever reaches the page through textContent
 * and setAttribute: symbols, order refs and failure reasons are user input. */
(function () {
  "use strict";

  // Formatting ------------------------------------------------------------------------------------
  const MINUS = "\u2212";
  const DASH = "\u2013";

  function finite(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  // toFixed, without a negative zero ("-0.00" reads as a signal that is not there).
  function fixed(value, places) {
    const text = value.toFixed(places);
    return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
  }

  const fmt = {
    DASH,
    /** Factors and multipliers: two decimals and an x, e.g. "1.25x". */
    factor(value) {
      return finite(value) ? fixed(value, 2) + "x" : DASH;
    },
    /** Signed two decimals: "+0.43", "−0.43", "0.00". */
    signed(value, places = 2) {
      if (!finite(value)) return DASH;
      const text = fixed(value, places);
      if (Number(text) === 0) return text;
      return value > 0 ? "+" + text : MINUS + text.slice(1);
    },
    number(value, places = 2) {
      if (!finite(value)) return DASH;
      const text = fixed(value, places);
      return text.startsWith("-") ? MINUS + text.slice(1) : text;
    },
    percent(value, places = 1) {
      return finite(value) ? fmt.number(value * 100, places) + "%" : DASH;
    },
    /** Sizes and targets: thousands grouped, 2 decimals (4 significant digits below 1). */
    size(value) {
      if (!finite(value)) return DASH;
      const options = Math.abs(value) >= 1 || value === 0
        ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
        : { maximumSignificantDigits: 4 };
      const text = value.toLocaleString("en-US", options);
      return text.startsWith("-") ? MINUS + text.slice(1) : text;
    },
    /** "45 s ago", "4 min ago", "3 h 05 min ago", "2 d 4 h ago". */
    age(seconds) {
      if (!finite(seconds)) return DASH;
      const s = Math.max(0, Math.round(seconds));
      if (s < 60) return s + " s ago";
      const minutes = Math.floor(s / 60);
      if (minutes < 60) return minutes + " min ago";
      const hours = Math.floor(minutes / 60);
      if (hours < 48) return hours + " h " + String(minutes % 60).padStart(2, "0") + " min ago";
      return Math.floor(hours / 24) + " d " + (hours % 24) + " h ago";
    },
    duration(seconds) {
      if (!finite(seconds)) return DASH;
      if (seconds < 10) return fixed(seconds, 2) + " s";
      if (seconds < 120) return fixed(seconds, 1) + " s";
      return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
    },
    /** "2026-01-31 23:50 UTC" (seconds too when asked). */
    time(iso, withSeconds = false) {
      const date = typeof iso === "number" ? new Date(iso) : new Date(iso || NaN);
      if (Number.isNaN(date.getTime())) return DASH;
      const text = date.toISOString().replace("T", " ");
      return text.slice(0, withSeconds ? 19 : 16) + " UTC";
    },
    clock(ms) {
      const date = new Date(ms);
      return Number.isNaN(date.getTime()) ? DASH : date.toISOString().slice(11, 19) + " UTC";
    },
  };

  /** up / down / neutral, judged on the factor as displayed (two decimals). */
  function direction(value) {
    if (!finite(value)) return "neutral";
    const shown = Number(fixed(value, 2));
    return shown > 1 ? "up" : shown < 1 ? "down" : "neutral";
  }
  const DIRECTION_TEXT = { up: "sized up", down: "reduced", neutral: "neutral" };
  const DIRECTION_ARROW = { up: "\u25B2", down: "\u25BC", neutral: "\u25C6" };

  /** Short names of the score components (sizing_app.scoring.COMPONENTS). */
  const COMPONENT_LABELS = {
    sharpe_7d: "Sharpe 7d", max_drawdown: "Drawdown", atr_regime: "ATR regime", slippage_bps: "Slippage",
    fill_rate: "Fill rate", maker_ratio: "Maker ratio",
  };

  function regimeWord(ratio) {
    if (!finite(ratio)) return "";
    if (ratio < 0.95) return "calm";
    if (ratio > 1.05) return "volatile";
    return "normal";
  }

  // DOM -------------------------------------------------------------------------------------------
  /** el("span", {className, text, attrs: {...}, dataset: {...}, hidden}, ...children) */
  function el(tag, options = {}, ...children) {
    const node = document.createElement(tag);
    if (options.className) node.className = options.className;
    if (options.text !== undefined) node.textContent = options.text;
    if (options.hidden) node.hidden = true;
    if (options.attrs) for (const [name, value] of Object.entries(options.attrs)) node.setAttribute(name, value);
    if (options.dataset) Object.assign(node.dataset, options.dataset);
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setAttr(node, name, value) {
    if (value === null || value === undefined) node.removeAttribute(name);
    else if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }

  // API -------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  const counter = { calls: 0 };

  /** GET a same-origin API URL with the session cookie; {allow404: true} answers null for a 404. */
  async function api(url, { allow404 = false } = {}) {
    const target = new URL(url, window.location.origin);
    if (target.origin !== window.location.origin) throw new ApiError(0, "refused a cross-origin API URL");
    counter.calls += 1;
    let response;
    try {
      response = await fetch(target, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (error) {
      throw new ApiError(0, "the server could not be reached");
    }
    if (allow404 && response.status === 404) return null;
    if (!response.ok) {
      let message = response.statusText || "error";
      try {
        const body = await response.json();
        if (body && body.error && body.error.message) message = body.error.message;
      } catch (ignored) { /* not JSON: keep the status text */ }
      throw new ApiError(response.status, "HTTP " + response.status + ": " + message);
    }
    return response.json();
  }

  /** Follow cursor pages (newest first) until `maxPages`; returns {results, truncated}. */
  async function apiPages(url, maxPages) {
    const results = [];
    let next = url;
    let pages = 0;
    while (next && pages < maxPages) {
      const page = await api(next);
      results.push(...page.results);
      next = page.next;
      pages += 1;
    }
    return { results, truncated: Boolean(next) };
  }

  // Server clock: ages are measured against the server's time, not a possibly skewed desktop clock.
  const clock = {
    offsetMs: 0,
    sync(serverMs) {
      if (finite(serverMs)) clock.offsetMs = serverMs - Date.now();
    },
    now() {
      return Date.now() + clock.offsetMs;
    },
  };

  // Announcements, banner, run bar -----------------------------------------------------------------
  const announcer = document.querySelector("[data-announcer]");
  function announce(message) {
    if (!announcer || !message || announcer.textContent === message) return;
    announcer.textContent = message;
  }

  const banner = document.querySelector("[data-error-banner]");
  function showError(message) {
    if (!banner) return;
    setText(banner.querySelector("[data-error-text]"), message);
    banner.hidden = false;
  }
  function hideError() {
    if (banner) banner.hidden = true;
  }

  const RUN_STATUS = {
    ok: ["\u2713", "OK"], partial: ["\u25D0", "PARTIAL"], failed: ["\u2715", "FAILED"],
    running: ["\u2026", "RUNNING"], skipped: ["\u2013", "SKIPPED"],
  };
  const MAX_FAILURES_LISTED = 50;

  function runBarPart(name) {
    return document.querySelector('[data-run="' + name + '"]');
  }

  // "N ok · M failed", with the symbols whose snapshot for the bucket already existed (an
  // earlier run's, kept) named too: a run that wrote nothing must not read as N ok.
  function runCounts(run) {
    const kept = run.symbols_existing ? " \u00B7 " + run.symbols_existing + " already computed (kept)" : "";
    return run.symbols_ok + " ok \u00B7 " + run.symbols_failed + " failed" + kept;
  }

  /** Fill the header: the latest run (with its failure reasons) and the global mode. */
  function renderRunBar(run, globalMode) {
    const mode = runBarPart("global-mode");
    if (mode) {
      setText(mode, globalMode ? globalMode.toUpperCase() : DASH);
      mode.className = "badge badge--mode badge--" + (globalMode || "unknown");
    }
    const summary = runBarPart("summary");
    const status = runBarPart("status");
    const failures = runBarPart("failures");
    if (!summary) return;
    if (!run) {
      setText(summary, "no recompute run yet");
      status.replaceChildren();
      failures.hidden = true;
      return;
    }
    const started = Date.parse(run.started_at);
    const parts = [
      "#" + run.id,
      "bucket " + fmt.time(run.as_of),
      "started " + fmt.age((clock.now() - started) / 1000),
      run.duration_seconds === null ? "still running" : "took " + fmt.duration(run.duration_seconds),
    ];
    setText(summary, parts.join(" \u00B7 "));
    setAttr(summary, "title", "Started " + fmt.time(run.started_at, true) + ", trigger " + run.trigger);
    const [icon, label] = RUN_STATUS[run.status] || ["?", String(run.status).toUpperCase()];
    status.replaceChildren(
      el("span", { className: "badge badge--run badge--run-" + run.status },
        el("span", { text: icon, attrs: { "aria-hidden": "true" } }), " " + label),
      el("span", { className: "run-bar__counts", text: runCounts(run) }),
    );
    const errors = Object.entries(run.errors || {});
    failures.hidden = errors.length === 0;
    if (errors.length) {
      setText(runBarPart("failures-summary"), errors.length === 1 ? "1 failure reason" : errors.length + " failure reasons");
      const items = errors.slice(0, MAX_FAILURES_LISTED).map(([symbol, reason]) =>
        el("li", {}, el("strong", { text: symbol }), ": " + reason));
      if (errors.length > MAX_FAILURES_LISTED) items.push(el("li", { text: "and " + (errors.length - MAX_FAILURES_LISTED) + " more" }));
      runBarPart("failures-list").replaceChildren(...items);
    }
  }

  // The refresh loop ------------------------------------------------------------------------------
  /**
   * Calls `refresh()` every `intervalSeconds` while the tab is visible and not paused, one at a
   * time (the next waits for the previous). A failure keeps the last data on screen and says so.
   */
  class Poller {
    constructor({ intervalSeconds, refresh, onStale }) {
      this.intervalMs = Math.max(1, intervalSeconds) * 1000;
      this.refresh = refresh;
      this.onStale = onStale || (() => {});
      this.timer = null;
      this.running = false;
      this.paused = false;
      this.lastOkAt = null;
      this.updatedNode = runBarPart("updated");
      this.pauseButton = document.querySelector('[data-action="pause"]');
      window.__dashboardRefreshes = 0;
      window.__dashboardApiCalls = null;
      if (this.pauseButton) this.pauseButton.addEventListener("click", () => this.togglePause());
      document.addEventListener("visibilitychange", () => {
        if (document.hidden) this.clear();
        else this.tick();
      });
    }

    start() {
      this.tick();
    }

    clear() {
      if (this.timer !== null) window.clearTimeout(this.timer);
      this.timer = null;
    }

    schedule() {
      this.clear();
      if (!this.paused && !document.hidden) this.timer = window.setTimeout(() => this.tick(), this.intervalMs);
    }

    togglePause() {
      this.paused = !this.paused;
      this.pauseButton.setAttribute("aria-pressed", String(this.paused));
      this.pauseButton.textContent = this.paused ? "Resume updates" : "Pause updates";
      announce(this.paused ? "Automatic updates paused." : "Automatic updates resumed.");
      if (this.paused) this.clear();
      else this.tick();
    }

    async tick() {
      if (this.running || this.paused || document.hidden) return;
      this.running = true;
      this.clear();
      counter.calls = 0;
      try {
        await this.refresh();
        this.lastOkAt = Date.now();
        hideError();
        this.setUpdated();
      } catch (error) {
        console.error("dashboard refresh failed", error);
        const since = this.lastOkAt === null
          ? "No data could be loaded yet."
          : "Showing the data from " + fmt.clock(this.lastOkAt) + " (" + fmt.age((Date.now() - this.lastOkAt) / 1000) + ").";
        const login = error.status === 401 || error.status === 403 ? " Your session may have expired: reload the page to log in again." : "";
        showError("Could not refresh (" + error.message + "). " + since + login + " Retrying every " + this.intervalMs / 1000 + " s.");
        this.onStale();
      } finally {
        window.__dashboardApiCalls = counter.calls;
        window.__dashboardRefreshes += 1;
        this.running = false;
        this.schedule();
      }
    }

    setUpdated() {
      if (!this.updatedNode) return;
      setText(this.updatedNode, "updated " + fmt.clock(this.lastOkAt));
    }
  }

  function readConfig(main) {
    const data = main.dataset;
    return { ...data, refreshSeconds: Number(data.refreshSeconds) || 10, maxAgeSeconds: Number(data.maxAgeSeconds) || 900 };
  }

  window.Dash = {
    fmt, finite, direction, DIRECTION_TEXT, DIRECTION_ARROW, COMPONENT_LABELS, regimeWord, el, setText, setAttr,
    api, apiPages, ApiError, clock, announce, renderRunBar, Poller, readConfig,
  };
})();
