// plantwatch dashboard: score charts per module, root cause of a chosen anomaly, live feed and chatbot.
// Every string from the API reaches the page as text (textContent, or escaped for Plotly), never as markup.
"use strict";

(() => {
  const MODULES = ["energy", "machine", "cyber"];
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

  function formatNumber(value) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    const number = Number(value);
    return Math.abs(number) >= 1000 || (Math.abs(number) < 0.01 && number !== 0)
      ? number.toExponential(2)
      : number.toFixed(Math.abs(number) >= 100 ? 1 : 3);
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

  async function api(path, options = {}) {
    const response = await fetch(path, {
      ...options,
      headers: { Accept: "application/json", ...(options.headers || {}) },
    });
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
      traces.push({
        type: "scatter",
        mode: "lines",
        name: bySource.size > 1 ? `score · ${plotlyText(source)}` : "score",
        x: points.map((p) => p.timestamp),
        y: points.map((p) => p.score),
        customdata: points.map((p) => anomalyAt.get(`${p.source}|${p.timestamp}`) || null),
        line: { width: 1.2, color: "#0969da" },
        hovertemplate: "%{x}<br>score %{y:.4g}<extra></extra>",
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

  function anomalyTrace(anomalies) {
    return {
      type: "scatter",
      mode: "markers",
      name: "anomaly",
      x: anomalies.map((a) => a.window_end),
      y: anomalies.map((a) => a.score),
      customdata: anomalies.map((a) => a.id),
      text: anomalies.map((a) => plotlyText(anomalyLabel(a))),
      marker: {
        size: 10,
        symbol: "diamond",
        color: anomalies.map((a) => SEVERITY_COLORS[a.severity] || SEVERITY_COLORS.high),
        line: { width: 1, color: "#ffffff" },
      },
      hovertemplate: "%{text}<br>score %{y:.4g}<br>click for the root cause<extra></extra>",
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
    const traces = [...scoreTraces(panel.scores, panel.anomalies), anomalyTrace(panel.anomalies)];
    const threshold = panel.scores.length ? panel.scores[panel.scores.length - 1].threshold : null;
    const highest = Math.max(...panel.scores.map((p) => p.score), ...panel.anomalies.map((a) => a.score));
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
    window.Plotly.react(panel.chart, traces, layout, PLOT_CONFIG);
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
      ["Detected (UTC)", formatTime(anomaly.detected_at)],
    ];
    facts.replaceChildren(...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    facts.hidden = false;

    const causes = anomaly.root_cause || [];
    const tbody = panel.querySelector("[data-testid=root-cause-table] tbody");
    tbody.replaceChildren(
      ...causes.map((c) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, c.feature),
          el("td", {}, `${formatNumber(c.contribution)}×`),
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
        causes.map((c) => `${c.feature} ${formatNumber(c.contribution)} times its usual error`).join(", "),
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
        name: "contribution (× usual error)",
        x: ordered.map((c) => c.contribution),
        y: features,
        marker: { color: SEVERITY_COLORS[anomaly.severity] || SEVERITY_COLORS.high },
        texttemplate: "%{x:.3g}×",
        textposition: "auto",
        hovertemplate: "%{y}: %{x:.3g}× its usual error<extra></extra>",
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
      xaxis: { domain: [0, 0.46], title: { text: "contribution" }, gridcolor: "#eaeef2", rangemode: "tozero" },
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
    window.Plotly.react(chart, traces, layout, { ...PLOT_CONFIG, displayModeBar: false });
  }

  function routeFromHash() {
    const match = /^#\/anomalies\/([^/]+)\/([^/]+)$/.exec(window.location.hash);
    if (match) openAnomaly(decodeURIComponent(match[1]), decodeURIComponent(match[2]));
  }

  // ---------- live feed ----------

  function connectLiveFeed() {
    const status = document.querySelector("[data-testid=live-status]");
    const statusText = document.querySelector("[data-testid=live-status-text]");
    const source = new EventSource("/anomalies/stream");
    source.addEventListener("open", () => {
      status.dataset.state = "live";
      statusText.textContent = "live";
    });
    // EventSource reconnects by itself; the page only says so
    source.addEventListener("error", () => {
      status.dataset.state = "reconnecting";
      statusText.textContent = "live feed lost, reconnecting…";
    });
    source.addEventListener("anomaly", (event) => {
      let anomaly;
      try {
        anomaly = JSON.parse(event.data);
      } catch {
        return;
      }
      receiveLiveAnomaly(anomaly);
    });
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
    panel.redraw = setTimeout(() => loadModule(anomaly.module), LIVE_REDRAW_DELAY_MS);
  }

  // ---------- models ----------

  async function loadModels() {
    const target = document.querySelector("[data-testid=models]");
    try {
      const served = await api("/models");
      const tags = served.models.map((card) =>
        el("span", { class: "model", "data-testid": "model" }, `${card.module}: ${card.model_name} ${card.version}`),
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

  // ---------- start ----------

  async function start() {
    buildPanels();
    connectChat();
    window.addEventListener("hashchange", routeFromHash);
    if (!window.Plotly) showError("The chart library did not load; charts are unavailable.");
    // the feed first: an anomaly stored while the panels load is then not missed
    connectLiveFeed();
    await loadModels();
    await Promise.all(MODULES.map(loadModule));
    document.body.dataset.loaded = "true";
    routeFromHash();
  }

  start();
})();
