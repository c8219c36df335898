/* The live dashboards (templates/analytics/): after each htmx refresh of #live, read the JSON the fragment carries
   (#dashboard-data) and update the charts in place, with the vendored Chart.js. */
(function () {
  "use strict";
  var charts = {};
  var palette = { blue: "#0d6efd", red: "#dc3545", green: "#198754", grey: "#adb5bd", orange: "#fd7e14" };

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") { return null; }
    if (!charts[id]) {
      config.options = Object.assign({
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: { x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 6 } }, y: { beginAtZero: true } }
      }, config.options || {});
      charts[id] = new Chart(canvas, config);
    }
    return charts[id];
  }

  function update(id, type, labels, datasets) {
    var c = chart(id, { type: type, data: { labels: [], datasets: [] } });
    if (!c) { return; }
    c.data.labels = labels;
    c.data.datasets = datasets;
    c.update("none");
  }

  function line(label, data, color, extra) {
    return Object.assign({ label: label, data: data, borderColor: color, backgroundColor: color, pointRadius: 2,
      borderWidth: 2, tension: 0.2, spanGaps: true }, extra || {});
  }

  var draw = {
    operations: function (d) {
      var s = d.series;
      update("chart-throughput", "line", s.t, [line("requests/s", s.requests, palette.blue),
        line("5xx/s", s.errors, palette.red)]);
      update("chart-latency", "line", s.t, [line("requests p95", s.request_p95, palette.blue),
        line("predictions p95", s.inference_p95, palette.orange)]);
      update("chart-queues", "bar", d.queues.labels, [{ label: "waiting", data: d.queues.messages,
        backgroundColor: palette.blue }]);
      var hasGpus = d.gpus.labels.length > 0;
      var empty = document.getElementById("no-gpus");
      if (empty) { empty.classList.toggle("d-none", hasGpus); }
      update("chart-gpus", "bar", d.gpus.labels, [{ label: "used", data: d.gpus.used, backgroundColor: palette.orange },
        { label: "installed", data: d.gpus.total, backgroundColor: palette.grey }]);
    },
    organization: function (d) {
      var s = d.series;
      update("chart-predictions", "bar", s.t, [
        { label: "succeeded", data: s.succeeded, backgroundColor: palette.green, stack: "p" },
        { label: "failed", data: s.failed, backgroundColor: palette.red, stack: "p" }]);
      update("chart-org-latency", "line", s.t, [line("p95", s.p95, palette.orange)]);
    }
  };

  function refresh() {
    var node = document.getElementById("dashboard-data");
    if (!node) { return; }
    var data = JSON.parse(node.textContent);
    if (draw[data.kind]) { draw[data.kind](data); }
    document.body.setAttribute("data-dashboard-drawn", String(Date.now()));
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "live") { refresh(); }
  });
})();
