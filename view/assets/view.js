// The live view: applies each update from /updates (the job as it stands,
// and the files and events that are new) and redraws.
"use strict";

const state = { job: null, files: [], events: [], samples: [], lanes: [], laneOf: new Map() };
const $ = (id) => document.getElementById(id);
const lanesChart = echarts.init($("lanes"));
const latencyChart = echarts.init($("latency"));
const queueChart = echarts.init($("queue"));
const color = { own: "#1c7ed6", stolen: "#f08c00", fault: "#e03131", redis: "#7048e8", scale: "#2b8a3e" };

// Seconds since the run started.
const sec = (ms) => (ms - state.job.started_ms) / 1000;
const isCrash = (e) => (e.what === "fault-fired" && e.detail.includes("crash=")) || e.what === "worker-killed";

const isThrottle = (e) => e.what.startsWith("throttle");

function eventColor(e) {
  if (isThrottle(e)) return color.stolen;
  if (isCrash(e) || ["worker-replaced", "fault-fired", "partition"].includes(e.what)) return color.fault;
  if (e.what.startsWith("redis") || e.what.startsWith("replica") || e.what === "snapshot") return color.redis;
  return color.scale;
}

function apply(update) {
  state.job = update.job;
  for (const f of update.files) {
    if (!state.laneOf.has(f.worker)) {
      state.laneOf.set(f.worker, state.lanes.length);
      state.lanes.push(f.worker);
    }
    state.files.push(f);
  }
  state.events.push(...update.events);
  state.samples.push(...update.samples);
  state.events.sort((a, b) => a.at_ms - b.at_ms);
}

function figures() {
  const j = state.job;
  const done = j.files_done + j.files_failed;
  $("phase").textContent = j.phase;
  $("phase").className = "phase" + (j.phase === "done" ? " done" : "");
  $("bar").style.width = (j.files ? (100 * done) / j.files : 0) + "%";
  $("files").textContent = `${done} / ${j.files}`;
  $("words").textContent = j.words.toLocaleString("en");
  const last = state.files.length ? state.files[state.files.length - 1].committed_ms : j.started_ms;
  const elapsed = (j.ended ? last : Math.max(Date.now(), last)) - j.started_ms;
  $("elapsed").textContent = (elapsed / 1000).toFixed(1) + " s";
  $("rate").textContent = elapsed > 0 ? ((1000 * j.files_done) / elapsed).toFixed(1) : "–";
  $("stolen").textContent = state.files.filter((f) => f.stolen).length;
  $("crashes").textContent = state.events.filter(isCrash).length;
  $("ignored").textContent = j.commits_ignored;
  const count = (what) => state.events.filter((e) => e.what === what).length;
  $("redis").textContent = `${count("snapshot")} / ${count("redis-restarted") + count("replica-restarted")}`;
  const s = j.stream;
  document.querySelector(".figures").classList.toggle("streaming", s.rate !== undefined);
  if (s.rate !== undefined) {
    $("rate-asked").textContent = `${(+s.rate).toFixed(0)} files/s`;
    $("p99").textContent = `${s.p50_ms ?? "–"} / ${s.p99_ms ?? "–"} ms`;
  }
  const v = $("verified");
  v.textContent = j.verified === true ? "✓ verified" : j.verified === false ? "✗ counts differ" : "";
  v.className = j.verified === true ? "ok" : j.verified === false ? "bad" : "";
}

function eventList() {
  const ol = $("events");
  ol.replaceChildren(
    ...state.events.map((e) => {
      const li = document.createElement("li");
      li.dataset.what = e.what;
      li.innerHTML = `<span class="at"></span><span class="what"></span> <span class="detail"></span>`;
      li.querySelector(".at").textContent = sec(e.at_ms).toFixed(2) + " s";
      li.querySelector(".what").textContent = e.what;
      li.querySelector(".what").className = "what" + (eventColor(e) === color.fault ? " fault" : "");
      li.querySelector(".detail").textContent = e.detail;
      return li;
    }),
  );
}

function topWords() {
  $("top").tBodies[0].replaceChildren(
    ...state.job.top.map(([word, count]) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td class="word"></td><td class="count"></td>`;
      tr.cells[0].textContent = word;
      tr.cells[1].textContent = count.toLocaleString("en");
      return tr;
    }),
  );
}

// A few words for an event's line: "crash w0", "killed w1", "redis-killed".
// A worker is named by its index (locally), or by its pod (an Indexed
// Job's, on Kubernetes: NAME-workers-INDEX-xxxxx).
function shortName(e) {
  const w = /worker[ =](\d+)|-workers-(\d+)-/.exec(e.detail);
  const who = w ? ` w${w[1] ?? w[2]}` : "";
  if (e.what === "fault-fired") {
    const point = /crash=([a-z-]+)/.exec(e.detail);
    return point ? `crash${who} ${point[1]}` : `fault${who}`;
  }
  // A restart follows its kill closely: one label for the two lines.
  if (e.what === "redis-restarted" || e.what === "replica-restarted") return "";
  const r = /^replica (\d+)/.exec(e.detail);
  if (r) return `${e.what.replace("replica-", "")} r${r[1]}`;
  return e.what.replace("worker-", "") + who;
}

// Faults and Redis's events as vertical lines on a time axis.
function markLines() {
  return {
    symbol: "none",
    silent: true,
    animation: false,
    label: { formatter: "{b}", fontSize: 10, color: "#495057", position: "insideEndTop" },
    data: state.events
      .filter((e) => e.what !== "snapshot" && !isThrottle(e))
      .map((e) => ({
        name: shortName(e),
        xAxis: sec(e.at_ms),
        lineStyle: { color: eventColor(e), type: "dashed" },
      })),
  };
}

// The lanes' bars: a worker's files one after the other with no visible
// gap between them merge into one bar (10,000 files are mostly narrower
// than a pixel); its tooltip says how many.
function bars() {
  let span = 0;
  for (const f of state.files) span = Math.max(span, sec(f.committed_ms));
  const gap = span / 2000;
  const open = new Map();
  const out = [];
  for (const f of state.files) {
    const [from, to, lane, stolen] = [sec(f.taken_ms), sec(f.committed_ms), state.laneOf.get(f.worker), f.stolen ? 1 : 0];
    const bar = open.get(lane);
    if (bar && bar[3] === stolen && from - bar[1] <= gap && from >= bar[0]) {
      bar[1] = Math.max(bar[1], to);
      bar[5] += 1;
    } else {
      const fresh = [from, to, lane, stolen, f.path, 1];
      open.set(lane, fresh);
      out.push(fresh);
    }
  }
  return out;
}

// Throttled periods, from each throttle-on to the next throttle-off.
function throttleAreas() {
  const areas = [];
  let on = null;
  for (const e of state.events) {
    if (e.what === "throttle-on" && on === null) on = sec(e.at_ms);
    if (e.what === "throttle-off" && on !== null) {
      areas.push([{ xAxis: on }, { xAxis: sec(e.at_ms) }]);
      on = null;
    }
  }
  if (on !== null) areas.push([{ xAxis: on }, { xAxis: "max" }]);
  return { silent: true, itemStyle: { color: "rgba(240, 140, 0, 0.12)" }, data: areas };
}

function charts() {
  const axis = { type: "value", name: "s", min: 0, nameLocation: "end" };
  lanesChart.setOption(
    {
      animation: false,
      grid: { left: 150, right: 30, top: 20, bottom: 30 },
      tooltip: {
        formatter: (p) =>
          p.value
            ? `${p.value[5] > 1 ? `${p.value[5]} files from ${p.value[4]}` : p.value[4]}<br>` +
              `${p.value[0].toFixed(2)} s → ${p.value[1].toFixed(2)} s${p.value[3] ? " (stolen)" : ""}`
            : "",
      },
      xAxis: axis,
      yAxis: { type: "category", data: state.lanes, inverse: true },
      series: [
        {
          type: "custom",
          // All at once: drawn in chunks, a redraw would show part of them.
          progressive: 0,
          encode: { x: [0, 1], y: 2 },
          renderItem: (params, api) => {
            const from = api.coord([api.value(0), api.value(2)]);
            const to = api.coord([api.value(1), api.value(2)]);
            const h = api.size([0, 1])[1] * 0.6;
            const box = params.coordSys;
            const shape = echarts.graphic.clipRectByRect(
              { x: from[0], y: from[1] - h / 2, width: Math.max(to[0] - from[0], 1), height: h },
              { x: box.x, y: box.y, width: box.width, height: box.height },
            );
            return shape && { type: "rect", shape, style: { fill: api.value(3) ? color.stolen : color.own } };
          },
          data: bars(),
          markLine: markLines(),
        },
      ],
    },
    { replaceMerge: ["series"] },
  );
  const points = (stolen) =>
    state.files.filter((f) => f.stolen === stolen).map((f) => [sec(f.committed_ms), f.latency_ms, f.path]);
  latencyChart.setOption(
    {
      animation: false,
      grid: { left: 60, right: 30, top: 30, bottom: 30 },
      legend: { data: ["taken first", "stolen"], top: 0, right: 30 },
      tooltip: { formatter: (p) => `${p.value[2]}<br>${p.value[1]} ms at ${p.value[0].toFixed(2)} s` },
      xAxis: axis,
      yAxis: { type: "value", name: "ms" },
      series: [
        {
          name: "taken first",
          type: "scatter",
          symbolSize: 4,
          large: true,
          data: points(false),
          color: color.own,
          markLine: markLines(),
          markArea: throttleAreas(),
        },
        { name: "stolen", type: "scatter", symbolSize: 7, data: points(true), color: color.stolen },
      ],
    },
    { replaceMerge: ["series"] },
  );
  const line = (name, key, c) => ({
    name,
    type: "line",
    showSymbol: false,
    step: "end",
    color: c,
    data: state.samples.map((s) => [sec(s.at_ms), s[key]]),
  });
  queueChart.setOption(
    {
      animation: false,
      grid: { left: 60, right: 30, top: 30, bottom: 30 },
      legend: { data: ["lag", "pending"], top: 0, right: 30 },
      tooltip: { trigger: "axis" },
      xAxis: axis,
      yAxis: { type: "value", name: "files", minInterval: 1 },
      series: [
        { ...line("lag", "lag", color.own), markArea: throttleAreas(), markLine: markLines() },
        line("pending", "pending", color.redis),
      ],
    },
    { replaceMerge: ["series"] },
  );
}

// The figures every time; the lists and charts when something was added.
function draw(added) {
  const started = performance.now();
  figures();
  topWords();
  if (added) {
    eventList();
    charts();
  }
  // How long a redraw takes, for whoever measures the page.
  document.body.dataset.drawMs = (performance.now() - started).toFixed(1);
}

const updates = new EventSource("updates");
updates.onmessage = (m) => {
  const update = JSON.parse(m.data);
  apply(update);
  draw(update.files.length + update.events.length + update.samples.length > 0);
  // The run is over: its last state stays on the page.
  if (state.job.ended) updates.close();
};
updates.onerror = () => {
  if (!state.job || !state.job.ended) $("phase").textContent = "disconnected";
};
window.addEventListener("resize", () => {
  lanesChart.resize();
  latencyChart.resize();
  queueChart.resize();
});
