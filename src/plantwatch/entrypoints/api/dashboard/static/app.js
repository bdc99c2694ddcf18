// plantwatch dashboard: incidents an operator works from (acknowledge, shelve, resolve, filters, KPIs),
// score charts per module, root cause of a chosen anomaly, live feed and chatbot.
// Every string from the API reaches the page as text (textContent, or escaped for Plotly), never as markup.
"use strict";

(() => {
  // The served modules come from GET /modules (they are configuration); these are the seed's, shown when
  // that call fails.
  let MODULES = ["energy", "machine", "cyber"];
  const MODULE_TITLES = { energy: "Energy", machine: "Machines", cyber: "Cyber security" };
  const SCORE_PAGE = 5000;
  // readings drawn per module: the newest ones
  const SCORE_WINDOW = 5000;
  const ANOMALY_PAGE = 1000;
  // anomalies drawn per module, newest first: past this many the markers would hide the score line anyway
  const ANOMALY_CAP = 3000;
  // scores this many times the threshold squash the rest of the series against the axis: switch to log scale
  const LOG_SCALE_RATIO = 20;
  const LIST_LENGTH = 8;
  // A burst of live anomalies redraws a chart once, not once per anomaly.
  const LIVE_REDRAW_DELAY_MS = 1000;
  // drift changes over hundreds of readings: a refresh every half minute is plenty
  const DRIFT_REFRESH_MS = 30000;
  const SEVERITY_COLORS = { low: "#d4a72c", medium: "#e07b24", high: "#d1242f", critical: "#82071e" };
  const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  const FONT = { family: "system-ui, -apple-system, 'Segoe UI', sans-serif", size: 12, color: "#1f2328" };

  const state = {
    panels: {},
    // every anomaly the page has seen, by id: charts, lists and chatbot citations all open from here
    anomalies: new Map(),
    selectedId: null,
    conversationId: null,
    // module -> why it has no model, from /models: shown where its chart would be
    missingModels: {},
    // the plant's IANA time zone, from /dashboard/config.json: wall-clock times are shown in it
    timeZone: "UTC",
  };

  // ---------- small helpers ----------

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  // Plotly reads a few HTML-like tags in labels; escaping shows API text as text.
  function plotlyText(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // Timestamps are naive plant local time: shown as sent, never shifted to the browser's time zone.
  function formatTime(iso) {
    return String(iso).replace("T", " ").slice(0, 19);
  }

  // Wall-clock times (detected, acknowledged) are naive UTC: shown in the plant's time zone, as readings are.
  function wallClock(iso) {
    if (!iso) return "–";
    const instant = new Date(`${String(iso).slice(0, 23)}Z`);
    if (Number.isNaN(instant.getTime())) return formatTime(iso);
    try {
      // the Swedish locale writes ISO-like "2024-03-01 12:00:00"
      return new Intl.DateTimeFormat("sv-SE", {
        timeZone: state.timeZone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
      }).format(instant);
    } catch {
      return formatTime(iso);
    }
  }

  function formatNumber(value) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    const number = Number(value);
    return Math.abs(number) >= 1000 || (Math.abs(number) < 0.01 && number !== 0)
      ? number.toExponential(2)
      : number.toFixed(Math.abs(number) >= 100 ? 1 : 3);
  }

  // The box gets the chart's height: a responsive Plotly chart resizes to its box, and a box whose height came
  // from the chart it holds would shrink it to the box's minimum on the next resize, leaving the drawing to
  // spill over the lists below.
  function drawChart(chart, traces, layout, config) {
    chart.style.height = `${layout.height}px`;
    window.Plotly.react(chart, traces, layout, config);
  }

  function anomalyHref(anomaly) {
    return `#/anomalies/${encodeURIComponent(anomaly.module)}/${encodeURIComponent(anomaly.id)}`;
  }

  function anomalyLabel(anomaly) {
    const cause = anomaly.root_cause && anomaly.root_cause.length ? anomaly.root_cause[0].feature : "no root cause";
    return `${anomaly.module} · ${anomaly.source} · ${formatTime(anomaly.window_end)} · ${anomaly.severity} · ${cause}`;
  }

  function showError(message) {
    const banner = document.querySelector("[data-testid=error-banner]");
    banner.textContent = message;
    banner.hidden = false;
  }

  // With API keys configured the server answers 401 until the page sends a viewer key; the key is asked for
  // once and kept for this browser tab only.
  const KEY_STORAGE = "plantwatch-api-key";

  function keyHeaders() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    return key ? { "X-API-Key": key } : {};
  }

  async function api(path, options = {}, askedForKey = false) {
    const response = await fetch(path, {
      ...options,
      headers: { Accept: "application/json", ...keyHeaders(), ...(options.headers || {}) },
    });
    if (response.status === 401 && !askedForKey) {
      const key = window.prompt("This plantwatch server needs an API key (viewer role or higher):");
      if (key) {
        sessionStorage.setItem(KEY_STORAGE, key.trim());
        return api(path, options, true);
      }
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = !body || !body.detail ? response.statusText : typeof body.detail === "string"
        ? body.detail : JSON.stringify(body.detail);
      const error = new Error(`${options.method || "GET"} ${path} failed: ${response.status} ${detail}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function remember(anomaly) {
    state.anomalies.set(anomaly.id, anomaly);
  }

  // A panel keeps its anomalies by id (a live one may also come in a later page) and a newest-first list.
  function addToPanel(panel, anomalies) {
    for (const anomaly of anomalies) {
      remember(anomaly);
      panel.byId.set(anomaly.id, anomaly);
    }
    panel.anomalies = [...panel.byId.values()].sort((a, b) =>
      a.window_end === b.window_end ? (a.id < b.id ? 1 : -1) : a.window_end < b.window_end ? 1 : -1,
    );
  }

  // ---------- module panels ----------

  function buildPanels() {
    const container = document.querySelector(".modules");
    const template = document.getElementById("module-panel");
    for (const module of MODULES) {
      const section = template.content.firstElementChild.cloneNode(true);
      const titleId = `panel-title-${module}`;
      section.dataset.testid = `panel-${module}`;
      section.dataset.module = module;
      section.setAttribute("aria-labelledby", titleId);
      const title = section.querySelector("h2");
      title.id = titleId;
      title.textContent = MODULE_TITLES[module];
      const chart = section.querySelector(".score-chart");
      chart.dataset.testid = `chart-${module}`;
      chart.setAttribute("aria-label", `Anomaly score over time for ${MODULE_TITLES[module]}, with threshold`);
      const summary = section.querySelector(".panel-summary");
      summary.dataset.testid = `summary-${module}`;
      summary.textContent = "loading…";
      const list = section.querySelector(".anomaly-list");
      list.dataset.testid = `anomalies-${module}`;
      list.setAttribute("aria-label", `Latest anomalies in ${MODULE_TITLES[module]}`);
      container.append(section);
      state.panels[module] = {
        section, chart, summary, list, scores: [], byId: new Map(), anomalies: [], redraw: null, loading: null,
      };
    }
  }

  // The score series comes oldest first, so the page reads forward from the last point it holds: the first
  // load walks to the newest readings, a refresh fetches only what is new.
  async function fetchNewScores(panel, module) {
    for (;;) {
      const last = panel.scores.length ? panel.scores[panel.scores.length - 1].timestamp : null;
      const since = last ? `&since=${encodeURIComponent(last)}` : "";
      const series = await api(`/scores/${module}?limit=${SCORE_PAGE}${since}`);
      // `since` is inclusive: the points at the last timestamp come again
      const known = new Set(
        panel.scores.filter((p) => p.timestamp === last).map((p) => `${p.source}|${p.model_version}`),
      );
      const fresh = series.points.filter((p) => !(p.timestamp === last && known.has(`${p.source}|${p.model_version}`)));
      panel.scores.push(...fresh);
      if (panel.scores.length > SCORE_WINDOW) panel.scores.splice(0, panel.scores.length - SCORE_WINDOW);
      if (series.points.length < SCORE_PAGE || fresh.length === 0) return;
    }
  }

  // Anomalies flagged at or after `from` (all when null), newest first, page after page.
  async function fetchAnomalies(panel, module, from) {
    const since = from ? `&since=${encodeURIComponent(from)}` : "";
    let cursor = "";
    for (let fetched = 0; fetched < ANOMALY_CAP; ) {
      const page = await api(`/anomalies/${module}?limit=${ANOMALY_PAGE}${since}${cursor}`);
      addToPanel(panel, page.items);
      fetched += page.items.length;
      if (!page.next_cursor) return;
      cursor = `&cursor=${encodeURIComponent(page.next_cursor)}`;
    }
  }

  // Loads of one panel run one after the other: two at once would both append the same new scores.
  function loadModule(module) {
    const panel = state.panels[module];
    panel.loading = (panel.loading || Promise.resolve()).then(() => refreshModule(module));
    return panel.loading;
  }

  async function refreshModule(module) {
    const panel = state.panels[module];
    try {
      // a refresh asks only for anomalies from the newest reading it already drew
      const drawnUntil = panel.scores.length ? panel.scores[panel.scores.length - 1].timestamp : null;
      await fetchNewScores(panel, module);
      const oldest = panel.scores.length ? panel.scores[0].timestamp : null;
      await fetchAnomalies(panel, module, drawnUntil || oldest);
      if (oldest) {
        for (const [id, anomaly] of panel.byId) if (anomaly.window_end < oldest) panel.byId.delete(id);
        addToPanel(panel, []);
      }
      panel.section.classList.remove("failed");
      renderModule(module);
    } catch (error) {
      panel.summary.textContent = `could not load: ${error.message}`;
      panel.section.classList.add("failed");
    }
  }

  function renderModule(module) {
    renderSummary(module);
    renderScoreChart(module);
    renderAnomalyList(module);
  }

  function renderSummary(module) {
    const panel = state.panels[module];
    const count = panel.anomalies.length;
    if (!panel.scores.length && !count) {
      panel.summary.textContent = "no scores yet";
      return;
    }
    const critical = panel.anomalies.filter((a) => a.severity === "critical").length;
    panel.summary.textContent =
      `latest ${panel.scores.length} readings · ${count} anomal${count === 1 ? "y" : "ies"}` +
      (critical ? ` · ${critical} critical` : "");
  }

  // Each score point carries the id of the anomaly flagged at it (or null): a click on the line or on a marker
  // at an anomalous reading opens the same root cause, whichever trace Plotly finds closest.
  function scoreTraces(scores, anomalies) {
    const anomalyAt = new Map(anomalies.map((a) => [`${a.source}|${a.window_end}`, a.id]));
    const bySource = new Map();
    for (const point of scores) {
      if (!bySource.has(point.source)) bySource.set(point.source, []);
      bySource.get(point.source).push(point);
    }
    const traces = [];
    for (const [source, points] of bySource) {
      // under an alarm rule (EWMA, CUSUM) the threshold applies to the rule's statistic, not the raw score:
      // draw what the threshold is compared with
      const ruled = points.some((p) => p.statistic != null && p.statistic !== p.score);
      const what = ruled ? "alarm statistic" : "score";
      traces.push({
        type: "scatter",
        mode: "lines",
        name: bySource.size > 1 ? `${what} · ${plotlyText(source)}` : what,
        x: points.map((p) => p.timestamp),
        y: points.map((p) => (ruled ? p.statistic ?? p.score : p.score)),
        customdata: points.map((p) => anomalyAt.get(`${p.source}|${p.timestamp}`) || null),
        text: points.map((p) => `score ${Number(p.score).toPrecision(4)}`),
        line: { width: 1.2, color: "#0969da" },
        hovertemplate: `%{x}<br>${what} %{y:.4g}${ruled ? "<br>%{text}" : ""}<extra></extra>`,
      });
    }
    const first = scores.length ? scores[0].source : null;
    const thresholdPoints = scores.filter((p) => p.source === first);
    traces.push({
      type: "scatter",
      mode: "lines",
      name: "threshold",
      x: thresholdPoints.map((p) => p.timestamp),
      y: thresholdPoints.map((p) => p.threshold),
      line: { width: 1.5, dash: "dash", color: "#6e7781", shape: "hv" },
      hoverinfo: "skip",
    });
    return traces;
  }

  function anomalyTrace(anomalies, scores) {
    // a marker sits on the line drawn: the rule's statistic where the chart shows it, else the score
    const statisticAt = new Map(
      scores
        .filter((p) => p.statistic != null && p.statistic !== p.score)
        .map((p) => [`${p.source}|${p.timestamp}`, p.statistic]),
    );
    return {
      type: "scatter",
      mode: "markers",
      name: "anomaly",
      x: anomalies.map((a) => a.window_end),
      y: anomalies.map((a) => statisticAt.get(`${a.source}|${a.window_end}`) ?? a.score),
      customdata: anomalies.map((a) => a.id),
      text: anomalies.map((a) => plotlyText(anomalyLabel(a))),
      marker: {
        size: 10,
        symbol: "diamond",
        color: anomalies.map((a) => SEVERITY_COLORS[a.severity] || SEVERITY_COLORS.high),
        line: { width: 1, color: "#ffffff" },
      },
      hovertemplate: "%{text}<br>%{y:.4g}<br>click for the root cause<extra></extra>",
    };
  }

  function renderScoreChart(module) {
    const panel = state.panels[module];
    if (!panel.scores.length && !panel.anomalies.length) {
      const reason = state.missingModels[module];
      panel.chart.replaceChildren(
        el("p", { class: "empty" }, reason || "No readings have been scored for this module yet."),
      );
      return;
    }
    if (panel.chart.querySelector("p.empty")) panel.chart.replaceChildren();
    const traces = [
      ...scoreTraces(panel.scores, panel.anomalies),
      anomalyTrace(panel.anomalies, panel.scores),
    ];
    const threshold = panel.scores.length ? panel.scores[panel.scores.length - 1].threshold : null;
    const highest = Math.max(...traces.flatMap((trace) => trace.y).filter((y) => typeof y === "number"));
    const logScale = threshold > 0 && highest > LOG_SCALE_RATIO * threshold;
    const layout = {
      height: 250,
      margin: { l: 48, r: 12, t: 8, b: 36 },
      font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      hovermode: "closest",
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.12 },
      xaxis: { type: "date", gridcolor: "#eaeef2" },
      yaxis: logScale
        ? { title: { text: "score (log)" }, type: "log", dtick: 1, gridcolor: "#eaeef2" }
        : { title: { text: "score" }, gridcolor: "#eaeef2", rangemode: "tozero" },
      uirevision: module,
    };
    const firstDraw = !panel.chart.classList.contains("js-plotly-plot");
    drawChart(panel.chart, traces, layout, PLOT_CONFIG);
    if (firstDraw) {
      panel.chart.on("plotly_click", (event) => {
        const point = event.points.find((p) => p.customdata && state.anomalies.has(p.customdata));
        if (point) window.location.hash = anomalyHref(state.anomalies.get(point.customdata));
      });
    }
  }

  function renderAnomalyList(module) {
    const panel = state.panels[module];
    const items = panel.anomalies.slice(0, LIST_LENGTH).map((anomaly) => {
      const cause = anomaly.root_cause && anomaly.root_cause.length ? anomaly.root_cause[0].feature : "–";
      const link = el(
        "a",
        {
          href: anomalyHref(anomaly),
          "data-testid": "anomaly-item",
          "data-anomaly-id": anomaly.id,
          "aria-current": anomaly.id === state.selectedId ? "true" : null,
          "aria-label": `${anomaly.severity} anomaly at ${formatTime(anomaly.window_end)}, top cause ${cause}`,
        },
        el("span", { class: `badge severity-${anomaly.severity}` }, anomaly.severity),
        el("span", { class: "when" }, formatTime(anomaly.window_end)),
        el("span", { class: "cause" }, cause),
        el("span", { class: "score" }, formatNumber(anomaly.score)),
      );
      return el("li", {}, link);
    });
    if (!items.length) items.push(el("li", { class: "empty" }, "No anomalies."));
    panel.list.replaceChildren(...items);
  }

  // ---------- root cause ----------

  async function openAnomaly(module, id) {
    let anomaly = state.anomalies.get(id);
    if (!anomaly) {
      try {
        anomaly = await api(`/anomalies/${encodeURIComponent(module)}/${encodeURIComponent(id)}`);
        remember(anomaly);
      } catch (error) {
        showError(error.message);
        return;
      }
    }
    state.selectedId = id;
    renderRootCause(anomaly);
    for (const link of document.querySelectorAll("[data-testid=anomaly-item]")) {
      if (link.dataset.anomalyId === id) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  function renderRootCause(anomaly) {
    const panel = document.querySelector("[data-testid=root-cause-panel]");
    panel.querySelector("[data-testid=root-cause-hint]").hidden = true;
    panel.dataset.anomalyId = anomaly.id;

    const facts = panel.querySelector("[data-testid=root-cause-facts]");
    const rows = [
      ["Module", anomaly.module],
      ["Source", anomaly.source],
      ["Window", `${formatTime(anomaly.window_start)} → ${formatTime(anomaly.window_end)}`],
      ["Score", `${formatNumber(anomaly.score)} (threshold ${formatNumber(anomaly.threshold)})`],
      ["Severity", anomaly.severity],
      ["Model", `${anomaly.model.name} ${anomaly.model.version}`],
      ["Detected (plant time)", wallClock(anomaly.detected_at)],
    ];
    facts.replaceChildren(...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    facts.hidden = false;

    const causes = anomaly.root_cause || [];
    const total = causes.reduce((sum, c) => sum + Math.max(Number(c.contribution), 0), 0) || 1;
    const tbody = panel.querySelector("[data-testid=root-cause-table] tbody");
    tbody.replaceChildren(
      ...causes.map((c) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, c.feature),
          el("td", {}, deviationText(c)),
          el("td", {}, `${Math.round((100 * Math.max(c.contribution, 0)) / total)} %`),
          el("td", {}, formatNumber(c.observed)),
          el("td", {}, formatNumber(c.expected)),
        ),
      ),
    );
    panel.querySelector("[data-testid=root-cause-table]").hidden = causes.length === 0;

    const chart = panel.querySelector("[data-testid=root-cause-chart]");
    chart.hidden = causes.length === 0;
    panel.querySelector(".chart-note").hidden = causes.length === 0;
    if (!causes.length) return;
    chart.setAttribute(
      "aria-label",
      `Root cause of the ${anomaly.severity} anomaly at ${formatTime(anomaly.window_end)}: ` +
        causes.map((c) => `${c.feature} ${deviationText(c)}`).join(", "),
    );
    // largest contribution on top: Plotly draws the first category at the bottom
    const ordered = [...causes].reverse();
    const features = ordered.map((c) => plotlyText(c.feature));
    // Features read in their own units (tonnes of CO2 beside a power factor), so each pair of bars
    // is drawn relative to the larger of the two; the bars are labelled with the real values.
    const scales = ordered.map((c) => Math.max(Math.abs(c.observed), Math.abs(c.expected)) || 1);
    const relative = (key) => ({
      x: ordered.map((c, i) => c[key] / scales[i]),
      text: ordered.map((c) => formatNumber(c[key])),
      customdata: ordered.map((c) => c[key]),
    });
    const lowest = Math.min(0, ...ordered.flatMap((c, i) => [c.observed / scales[i], c.expected / scales[i]]));
    const traces = [
      {
        type: "bar",
        orientation: "h",
        name: "deviation (σ of its usual error)",
        x: ordered.map((c) => Math.sqrt(Math.max(c.contribution, 0))),
        y: features,
        text: ordered.map((c) => deviationText(c)),
        marker: { color: SEVERITY_COLORS[anomaly.severity] || SEVERITY_COLORS.high },
        texttemplate: "%{x:.1f} σ",
        textposition: "auto",
        hovertemplate: "%{y}: %{text}<extra></extra>",
      },
      {
        type: "bar",
        orientation: "h",
        name: "observed",
        ...relative("observed"),
        y: features,
        xaxis: "x2",
        yaxis: "y2",
        marker: { color: "#0969da" },
        textposition: "outside",
        cliponaxis: false,
        hovertemplate: "%{y} observed %{customdata:.4g}<extra></extra>",
      },
      {
        type: "bar",
        orientation: "h",
        name: "expected",
        ...relative("expected"),
        y: features,
        xaxis: "x2",
        yaxis: "y2",
        marker: { color: "#8c959f" },
        textposition: "outside",
        cliponaxis: false,
        hovertemplate: "%{y} expected %{customdata:.4g}<extra></extra>",
      },
    ];
    const layout = {
      height: 90 + 44 * causes.length,
      margin: { l: 110, r: 12, t: 36, b: 40 },
      font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      barmode: "group",
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" },
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { domain: [0, 0.46], title: { text: "deviation (σ)" }, gridcolor: "#eaeef2", rangemode: "tozero" },
      xaxis2: {
        domain: [0.54, 1],
        title: { text: "observed vs expected" },
        // room beside the longest bars for their value labels
        range: [lowest < 0 ? lowest - 0.45 : -0.05, 1.45],
        showticklabels: false,
        zeroline: true,
        gridcolor: "#eaeef2",
      },
      yaxis: { automargin: true },
      yaxis2: { anchor: "x2", showticklabels: false },
    };
    drawChart(chart, traces, layout, { ...PLOT_CONFIG, displayModeBar: false });
  }

  function routeFromHash() {
    const match = /^#\/anomalies\/([^/]+)\/([^/]+)$/.exec(window.location.hash);
    if (match) openAnomaly(decodeURIComponent(match[1]), decodeURIComponent(match[2]));
  }

  // ---------- live feed ----------

  // The feed is read with fetch() rather than EventSource, which cannot send the X-API-Key header: with
  // role keys set, EventSource would get a 401 for ever. A key in the URL instead would land in logs.
  const LIVE_RETRY_MS = 2000;

  // Server-sent events (text/event-stream): blocks separated by a blank line, each of `field: value` lines.
  function parseEventBlock(block) {
    const event = { type: "message", data: [] };
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(":")) continue; // a comment: the server's keep-alive ping
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.type = value;
      else if (field === "data") event.data.push(value);
    }
    return { type: event.type, data: event.data.join("\n") };
  }

  async function readLiveFeed(onOpen, onEvent) {
    const response = await fetch("/anomalies/stream", {
      headers: { Accept: "text/event-stream", ...keyHeaders() },
      cache: "no-store",
    });
    if (!response.ok || !response.body) throw new Error(`live feed: ${response.status}`);
    onOpen();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("live feed: the server closed the stream");
      buffer += value;
      const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = blocks.pop();
      for (const block of blocks) onEvent(parseEventBlock(block));
    }
  }

  function connectLiveFeed() {
    const status = document.querySelector("[data-testid=live-status]");
    const statusText = document.querySelector("[data-testid=live-status-text]");
    const onOpen = () => {
      status.dataset.state = "live";
      statusText.textContent = "live";
    };
    const onEvent = (event) => {
      if (event.type !== "anomaly") return;
      let anomaly;
      try {
        anomaly = JSON.parse(event.data);
      } catch {
        return;
      }
      receiveLiveAnomaly(anomaly);
    };
    // reconnects after a lost connection or a refused key (the page asks for one on its other requests)
    const run = () =>
      readLiveFeed(onOpen, onEvent).catch(() => {
        status.dataset.state = "reconnecting";
        statusText.textContent = "live feed lost, reconnecting…";
        setTimeout(run, LIVE_RETRY_MS);
      });
    run();
  }

  function receiveLiveAnomaly(anomaly) {
    const panel = state.panels[anomaly.module];
    if (!panel) return;
    addToPanel(panel, [anomaly]);
    renderSummary(anomaly.module);
    renderAnomalyList(anomaly.module);
    const statusText = document.querySelector("[data-testid=live-status-text]");
    statusText.textContent = `live · new ${anomaly.severity} anomaly in ${anomaly.module} at ${formatTime(anomaly.window_end)}`;
    clearTimeout(panel.redraw);
    panel.redraw = setTimeout(() => {
      loadModule(anomaly.module);
      loadIncidents();
    }, LIVE_REDRAW_DELAY_MS);
  }

  // ---------- models ----------

  async function loadModels() {
    const target = document.querySelector("[data-testid=models]");
    try {
      const served = await api("/models");
      const tags = served.models.map((card) =>
        el(
          "span",
          { class: "model", "data-testid": "model", title: `training data ${String(card.data_hash).slice(0, 12)}` },
          `${card.module}: ${card.model_name} ${card.version}${card.stage ? ` (${card.stage})` : ""}`,
        ),
      );
      for (const [module, reason] of Object.entries(served.missing || {})) {
        tags.push(el("span", { class: "model missing", title: reason }, `${module}: no model`));
        state.missingModels[module] = reason;
      }
      target.replaceChildren(...tags);
    } catch (error) {
      target.textContent = `models unavailable (${error.message})`;
    }
  }

  // ---------- drift ----------

  function percent(share) {
    return `${(100 * Number(share)).toFixed(1)}%`;
  }

  function driftEntry(module, drift) {
    const warning = drift.status === "warning";
    const worst = drift.features.reduce(
      (top, f) => ({ psi: Math.max(top.psi, f.psi), out: Math.max(top.out, f.out_of_range_share) }),
      { psi: 0, out: 0 },
    );
    const text = {
      ok: `no drift over ${drift.readings} readings (max PSI ${formatNumber(worst.psi)}, ${percent(worst.out)} out of range)`,
      warning: `drift: ${drift.drifted_features.slice(0, 3).join(", ")} (max PSI ${formatNumber(worst.psi)}, ` +
        `${percent(worst.out)} out of range over ${drift.readings} readings)`,
      too_few_readings: `${drift.readings} readings so far; drift is judged from ${drift.levels.min_readings}`,
      no_readings: "no readings scored by this server yet",
      no_profile: "model saved without training statistics: retrain it to watch drift",
    }[drift.status];
    const entry = el(
      "li",
      { class: `drift-item${warning ? " drift-warning" : ""}`, "data-testid": `drift-${module}`, "data-status": drift.status },
      el("strong", {}, `${MODULE_TITLES[module]} · ${drift.model_name} ${drift.model_version}`),
      el("span", { class: "drift-text" }, ` ${text}`),
    );
    if (drift.events.length) {
      const last = drift.events[0];
      entry.append(
        el(
          "p",
          { class: "drift-events", "data-testid": `drift-events-${module}` },
          `${drift.events.length} stored drift warning(s); latest at ${formatTime(last.raised_at)} on ` +
            `${last.features.slice(0, 3).join(", ")}`,
        ),
      );
    }
    return entry;
  }

  async function loadDrift() {
    const list = document.querySelector("[data-testid=drift-list]");
    const entries = await Promise.all(
      MODULES.map(async (module) => {
        if (state.missingModels[module]) return el("li", { class: "drift-item" }, `${MODULE_TITLES[module]}: no model`);
        try {
          return driftEntry(module, await api(`/models/${module}/drift`));
        } catch (error) {
          return el("li", { class: "drift-item" }, `${MODULE_TITLES[module]}: drift unavailable (${error.message})`);
        }
      }),
    );
    list.replaceChildren(...entries);
  }

  // ---------- chatbot ----------

  function appendChat(entry) {
    const log = document.querySelector("[data-testid=chat-log]");
    log.append(entry);
    entry.scrollIntoView({ block: "nearest" });
  }

  // The answer links the anomalies it shows; the others it counted are only numbered, not listed.
  function answerEntry(reply) {
    const shown = reply.anomalies || [];
    shown.forEach(remember);
    const entry = el(
      "li",
      { class: "chat-answer", "data-testid": "chat-answer" },
      el("p", { class: "chat-text" }, reply.answer),
      reply.intent ? el("span", { class: "intent", "data-testid": "chat-intent" }, reply.intent) : null,
    );
    if (shown.length) {
      const links = shown.map((anomaly) =>
        el("li", {}, el("a", { href: anomalyHref(anomaly), "data-testid": "citation" }, anomalyLabel(anomaly))),
      );
      entry.append(el("p", { class: "cited-title" }, "Cited anomalies"), el("ul", { class: "citations" }, ...links));
    }
    const shownIds = new Set(shown.map((anomaly) => anomaly.id));
    const unlisted = (reply.cited_anomaly_ids || []).filter((id) => !shownIds.has(id)).length;
    if (unlisted) {
      entry.append(
        el("p", { class: "cited-more" }, `…and ${unlisted} more anomal${unlisted === 1 ? "y" : "ies"} counted.`),
      );
    }
    return entry;
  }

  function connectChat() {
    const form = document.querySelector("[data-testid=chat-form]");
    const input = form.querySelector("[data-testid=chat-input]");
    const button = form.querySelector("[data-testid=chat-submit]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const question = input.value.trim();
      if (!question) return;
      appendChat(el("li", { class: "chat-question", "data-testid": "chat-question" }, question));
      input.value = "";
      button.disabled = true;
      form.setAttribute("aria-busy", "true");
      try {
        const reply = await api("/chatbot/query", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ question, conversation_id: state.conversationId }),
        });
        state.conversationId = reply.conversation_id;
        appendChat(answerEntry(reply));
      } catch (error) {
        appendChat(el("li", { class: "chat-error", "data-testid": "chat-error", role: "alert" }, error.message));
      } finally {
        button.disabled = false;
        form.removeAttribute("aria-busy");
        input.focus();
      }
    });
  }

  // ---------- incidents ----------

  const INCIDENT_PAGE = 50;
  const SIGNAL_CAUSES = 3;
  const STATE_LABELS = {
    active_unacknowledged: "active, unacknowledged",
    active_acknowledged: "active, acknowledged",
    cleared_unacknowledged: "cleared, unacknowledged",
    closed: "closed",
    pending: "pending (on-delay)",
    suppressed: "suppressed (cleared in its on-delay)",
  };
  // which operator actions each state allows: the buttons mirror the server's rules (it answers 409 otherwise)
  const ALLOWED = {
    acknowledge: ["active_unacknowledged", "cleared_unacknowledged"],
    shelve: ["active_unacknowledged", "active_acknowledged", "cleared_unacknowledged"],
    resolve: ["active_acknowledged", "cleared_unacknowledged"],
  };
  const incidents = { items: [], selectedId: null, newestEnd: null, loading: null };

  // A readable contribution: contributions are squared errors in units of the feature's usual squared error,
  // so their square root is the deviation in usual deviations (σ); the sign says above or below expected.
  function deviationText(cause) {
    const sigma = Math.sqrt(Math.max(Number(cause.contribution), 0));
    const direction = Number(cause.observed) >= Number(cause.expected) ? "above" : "below";
    return `${sigma.toFixed(1)} σ ${direction} expected`;
  }

  function shareText(share) {
    return `${Math.round(100 * share)} % of the root cause`;
  }

  function operatorName() {
    const input = document.querySelector("[data-testid=operator-name]");
    return input.value.trim();
  }

  function filterForm() {
    return document.querySelector("[data-testid=incident-filters]");
  }

  // datetime-local values are plant local time, as the API's naive timestamps are
  function rangeQuery() {
    const form = filterForm();
    const params = new URLSearchParams();
    for (const name of ["module", "min_severity", "state"]) {
      if (form.elements[name].value) params.set(name, form.elements[name].value);
    }
    const since = form.elements.since.value;
    const until = form.elements.until.value;
    if (since) params.set("since", since.length === 16 ? `${since}:00` : since);
    if (until) params.set("until", until.length === 16 ? `${until}:00` : until);
    return params;
  }

  function applyPreset() {
    const form = filterForm();
    const preset = form.elements.preset.value;
    if (preset === "custom") return;
    if (preset === "all" || !incidents.newestEnd) {
      form.elements.since.value = "";
      form.elements.until.value = "";
      return;
    }
    // replayed plant data can be years old: the presets count back from the newest incident, not the clock
    const end = new Date(`${incidents.newestEnd}Z`);
    const start = new Date(end.getTime() - Number(preset) * 3600 * 1000);
    form.elements.since.value = start.toISOString().slice(0, 19);
    form.elements.until.value = "";
  }

  async function fetchNewestEnd() {
    const page = await api("/incidents?limit=1");
    incidents.newestEnd = page.items.length ? page.items[0].end : null;
  }

  function loadIncidents() {
    incidents.loading = (incidents.loading || Promise.resolve()).then(refreshIncidents);
    return incidents.loading;
  }

  async function refreshIncidents() {
    const panel = document.querySelector("[data-testid=incidents-panel]");
    const summary = document.querySelector("[data-testid=incidents-summary]");
    try {
      const params = rangeQuery();
      params.set("limit", String(INCIDENT_PAGE));
      const [page, kpis] = await Promise.all([
        api(`/incidents?${params}`),
        api(`/alarm-kpis?${kpiQuery(params)}`),
      ]);
      incidents.items = page.items;
      renderIncidentTable();
      renderKpis(kpis);
      const open = page.items.filter((i) => i.state !== "closed").length;
      summary.textContent =
        `${page.items.length}${page.next_cursor ? "+" : ""} incident${page.items.length === 1 ? "" : "s"}` +
        ` · ${open} open`;
      panel.dataset.loaded = "true";
    } catch (error) {
      summary.textContent = `could not load: ${error.message}`;
    }
  }

  function kpiQuery(params) {
    const kpi = new URLSearchParams();
    for (const name of ["module", "since", "until"]) if (params.get(name)) kpi.set(name, params.get(name));
    return kpi;
  }

  function renderKpis(kpis) {
    const tiles = kpis.map((k) =>
      el(
        "div",
        {
          class: `kpi-tile${k.manageable ? "" : " alarming"}`,
          "data-testid": `kpi-${k.module}`,
          role: "group",
          "aria-label": `${k.module} alarm KPIs`,
        },
        el("span", { class: "kpi-module" }, k.module),
        el("span", { class: "kpi-value" }, `${k.alarms_per_hour.toFixed(2)} / h`),
        el(
          "span",
          { class: "kpi-detail" },
          `${k.alarms} alarms in ${k.hours.toFixed(0)} h · ${k.flood_intervals} floods · ` +
            `${k.chattering_sources.length} chattering · ${k.stale_alarms} stale`,
        ),
      ),
    );
    if (!tiles.length) tiles.push(el("p", { class: "empty" }, "No alarms in this range."));
    document.querySelector("[data-testid=alarm-kpis]").replaceChildren(...tiles);
  }

  function actionButton(incident, action, label) {
    const allowed = ALLOWED[action].includes(incident.state);
    const button = el(
      "button",
      {
        type: "button",
        class: `action action-${action}`,
        "data-testid": `${action}-button`,
        "aria-label": `${label} incident ${incident.source} ${formatTime(incident.start)}`,
      },
      label,
    );
    button.disabled = !allowed;
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      act(incident.id, action);
    });
    return button;
  }

  function renderIncidentTable() {
    const rows = incidents.items.map((incident) => {
      const top = incident.top_causes[0];
      const cause = top ? `${top.feature} · ${Math.round(100 * top.mean_share)} % · peak ${top.peak_sigma.toFixed(1)} σ` : "–";
      const when = `${formatTime(incident.start)} → ${incident.ongoing ? "ongoing" : formatTime(incident.end)}`;
      const row = el(
        "tr",
        {
          "data-testid": "incident-row",
          "data-incident-id": incident.id,
          "data-state": incident.state,
          "aria-selected": incident.id === incidents.selectedId ? "true" : "false",
          tabindex: "0",
        },
        el("td", {}, el("span", { class: `badge severity-${incident.severity}` }, incident.severity)),
        el(
          "td",
          { class: "state", "data-testid": "incident-state" },
          STATE_LABELS[incident.state] + (incident.shelved ? " · shelved" : ""),
        ),
        el(
          "td",
          { class: "actions" },
          actionButton(incident, "acknowledge", "Acknowledge"),
          actionButton(incident, "shelve", "Shelve"),
          actionButton(incident, "resolve", "Resolve"),
        ),
        el("td", { class: "where" }, `${incident.module} · ${incident.source}`),
        el("td", { class: "when" }, when, el("span", { class: "windows" }, ` · ${incident.window_count} windows`)),
        el("td", { class: "cause" }, cause),
      );
      row.addEventListener("click", () => openIncident(incident.id));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter") openIncident(incident.id);
      });
      return row;
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "6", class: "empty" }, "No incidents match.")));
    document.querySelector("[data-testid=incident-table] tbody").replaceChildren(...rows);
  }

  // With a key, the server records the key's own name and refuses any other, so the page names nobody.
  function actorField() {
    if (sessionStorage.getItem(KEY_STORAGE)) return {};
    const actor = operatorName();
    return actor ? { actor } : null;
  }

  async function act(id, action) {
    const body = actorField();
    if (!body) {
      showError("Type your name in Operator first: every action is recorded with who did it.");
      document.querySelector("[data-testid=operator-name]").focus();
      return;
    }
    if (action === "shelve") body.minutes = Number(filterForm().elements.shelve_minutes.value);
    try {
      const detail = await api(`/incidents/${encodeURIComponent(id)}/${action}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      incidents.selectedId = id;
      renderIncidentDetail(detail);
      await loadIncidents();
    } catch (error) {
      showError(error.message);
    }
  }

  async function openIncident(id) {
    try {
      incidents.selectedId = id;
      renderIncidentDetail(await api(`/incidents/${encodeURIComponent(id)}`));
      for (const row of document.querySelectorAll("[data-testid=incident-row]")) {
        row.setAttribute("aria-selected", row.dataset.incidentId === id ? "true" : "false");
      }
    } catch (error) {
      showError(error.message);
    }
  }

  function renderIncidentDetail(detail) {
    const section = document.querySelector("[data-testid=incident-detail]");
    section.hidden = false;
    section.dataset.incidentId = detail.id;
    section.dataset.state = detail.state;
    section.querySelector("h3").textContent = `Incident · ${detail.module} · ${detail.source}`;
    const top = detail.top_causes[0];
    const facts = [
      ["State", STATE_LABELS[detail.state] + (detail.shelved ? ` · shelved until ${wallClock(detail.shelved_until)}` : "")],
      ["Severity", detail.severity],
      ["From", formatTime(detail.start)],
      ["To", detail.ongoing ? `ongoing (last ${formatTime(detail.end)})` : formatTime(detail.end)],
      ["Windows", String(detail.window_count)],
      ["Peak score", `${formatNumber(detail.peak_score)} (threshold ${formatNumber(detail.threshold)})`],
      ["Top cause", top ? `${top.feature}: ${shareText(top.mean_share)}, peak ${top.peak_sigma.toFixed(1)} σ` : "–"],
      ["Opened", wallClock(detail.opened_at)],
    ];
    section
      .querySelector("[data-testid=incident-facts]")
      .replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    section.querySelector("[data-testid=audit-log]").replaceChildren(
      ...detail.history.map((entry) =>
        el(
          "li",
          { "data-testid": "audit-entry", "data-action": entry.action },
          el("span", { class: "when" }, wallClock(entry.at)),
          el("span", { class: "actor" }, entry.actor),
          el("span", { class: "action" }, entry.action),
          el("span", { class: "detail" }, entry.detail ? `${entry.detail}` : `→ ${STATE_LABELS[entry.to_state]}`),
        ),
      ),
    );
    renderSignalChart(section.querySelector("[data-testid=signal-chart]"), detail);
  }

  // The raw signal of the top causes where the incident flagged them, against the detector's expectation.
  // A feature's usual deviation in its own units is |observed - expected| / sqrt(contribution): the median of
  // it over the windows is the band's σ.
  function renderSignalChart(chart, detail) {
    if (!window.Plotly) return;
    const features = detail.top_causes.slice(0, SIGNAL_CAUSES).map((c) => c.feature);
    const traces = [];
    const layout = {
      height: 120 + 150 * Math.max(features.length, 1),
      margin: { l: 60, r: 12, t: 24, b: 36 },
      font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.08 },
      grid: { rows: Math.max(features.length, 1), columns: 1, pattern: "independent", roworder: "top to bottom" },
      hovermode: "x unified",
    };
    features.forEach((feature, index) => {
      const points = [];
      for (const anomaly of detail.anomalies) {
        const cause = anomaly.root_cause.find((c) => c.feature === feature);
        if (cause) points.push({ at: anomaly.window_end, cause });
      }
      const deviations = points
        .filter((p) => p.cause.contribution > 0)
        .map((p) => Math.abs(p.cause.observed - p.cause.expected) / Math.sqrt(p.cause.contribution))
        .sort((a, b) => a - b);
      const sigma = deviations.length ? deviations[Math.floor(deviations.length / 2)] : 0;
      const axis = index === 0 ? "" : String(index + 1);
      const x = points.map((p) => p.at);
      const expected = points.map((p) => p.cause.expected);
      const first = index === 0;
      traces.push(
        {
          type: "scatter", mode: "lines", x, y: expected.map((v) => v - 2 * sigma), xaxis: `x${axis}`,
          yaxis: `y${axis}`, line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: "band",
        },
        {
          type: "scatter", mode: "lines", x, y: expected.map((v) => v + 2 * sigma), xaxis: `x${axis}`,
          yaxis: `y${axis}`, fill: "tonexty", fillcolor: "rgba(140,149,159,0.25)", line: { width: 0 },
          name: "expected ± 2σ", showlegend: first, legendgroup: "band", hoverinfo: "skip",
        },
        {
          type: "scatter", mode: "lines", x, y: expected, xaxis: `x${axis}`, yaxis: `y${axis}`,
          name: "expected", showlegend: first, legendgroup: "expected",
          line: { color: "#6e7781", dash: "dash", width: 1.5 },
          hovertemplate: `${plotlyText(feature)} expected %{y:.4g}<extra></extra>`,
        },
        {
          type: "scatter", mode: "lines+markers", x, y: points.map((p) => p.cause.observed), xaxis: `x${axis}`,
          yaxis: `y${axis}`, name: "observed", showlegend: first, legendgroup: "observed",
          line: { color: "#0969da", width: 1.5 }, marker: { size: 5 },
          text: points.map((p) => deviationText(p.cause)),
          hovertemplate: `${plotlyText(feature)} %{y:.4g} (%{text})<extra></extra>`,
        },
      );
      layout[`yaxis${axis}`] = { title: { text: plotlyText(feature) }, gridcolor: "#eaeef2", automargin: true };
      layout[`xaxis${axis}`] = { type: "date", gridcolor: "#eaeef2" };
    });
    chart.setAttribute(
      "aria-label",
      `Observed and expected values of ${features.join(", ") || "no feature"} during the incident`,
    );
    chart.dataset.features = features.join(",");
    drawChart(chart, traces, layout, { ...PLOT_CONFIG, displayModeBar: false });
  }

  function connectIncidents() {
    const form = filterForm();
    const actor = form.elements.actor;
    actor.value = window.localStorage.getItem("plantwatch-operator") || "";
    actor.addEventListener("change", () => window.localStorage.setItem("plantwatch-operator", actor.value.trim()));
    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("change", (event) => {
      const name = event.target.name;
      if (name === "actor" || name === "shelve_minutes") return;
      if (name === "since" || name === "until") form.elements.preset.value = "custom";
      if (name === "preset") applyPreset();
      loadIncidents();
    });
    document.querySelector("[data-testid=comment-form]").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = event.target.elements.text;
      const id = document.querySelector("[data-testid=incident-detail]").dataset.incidentId;
      const actor = actorField();
      if (!actor || !id || !input.value.trim()) {
        if (!actor) showError("Type your name in Operator first: every comment is recorded with who wrote it.");
        return;
      }
      try {
        renderIncidentDetail(
          await api(`/incidents/${encodeURIComponent(id)}/comment`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ ...actor, text: input.value.trim() }),
          }),
        );
        input.value = "";
      } catch (error) {
        showError(error.message);
      }
    });
  }

  async function startIncidents() {
    connectIncidents();
    try {
      await fetchNewestEnd();
    } catch (error) {
      showError(error.message);
    }
    await loadIncidents();
  }

  // ---------- start ----------

  async function loadConfig() {
    try {
      const config = await api("/dashboard/config.json");
      state.timeZone = config.plant_timezone || "UTC";
    } catch (error) {
      showError(`plant time zone unknown, times shown in UTC: ${error.message}`);
    }
  }

  // Plotly's own resize follows the window only; a chart whose box changes (the layout switching to one
  // column, a panel opening) is resized when its box does, so it never spills over the lists beside it.
  function keepChartsSized() {
    if (!window.ResizeObserver || !window.Plotly) return;
    const observer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        if (entry.target.classList.contains("js-plotly-plot")) window.Plotly.Plots.resize(entry.target);
      }
    });
    for (const chart of document.querySelectorAll(".chart")) observer.observe(chart);
  }

  async function loadModuleList() {
    try {
      const body = await api("/modules");
      // the seed modules always; another configured module once it has a model in service
      const seed = ["energy", "machine", "cyber"];
      MODULES = body.modules.filter((m) => m.model || seed.includes(m.name)).map((m) => m.name);
      for (const m of body.modules) MODULE_TITLES[m.name] = m.title;
    } catch (error) {
      showError(`Could not list the modules: ${error.message}`);
    }
  }

  async function start() {
    await loadModuleList();
    buildPanels();
    connectChat();
    window.addEventListener("hashchange", routeFromHash);
    if (!window.Plotly) showError("The chart library did not load; charts are unavailable.");
    // the feed first: an anomaly stored while the panels load is then not missed
    connectLiveFeed();
    await Promise.all([loadModels(), loadConfig()]);
    await Promise.all([...MODULES.map(loadModule), startIncidents(), loadDrift()]);
    setInterval(loadDrift, DRIFT_REFRESH_MS);
    keepChartsSized();
    document.body.dataset.loaded = "true";
    routeFromHash();
  }

  start();
})();
