/* The usage pages (templates/analytics/usage.html): draw the series of #usage-data with the vendored Chart.js. */
(function () {
  "use strict";
  var node = document.getElementById("usage-data");
  if (!node || typeof Chart === "undefined") { return; }
  var d = JSON.parse(node.textContent);
  var palette = { blue: "#0d6efd", red: "#dc3545", green: "#198754", orange: "#fd7e14", grey: "#6c757d" };
  var hourly = d.period.granularity === "hour";
  var labels = d.buckets.map(function (b) { return hourly ? b.slice(5, 16).replace("T", " ") : b.slice(0, 10); });
  var options = {
    responsive: true, maintainAspectRatio: false, animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    scales: { x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } }, y: { beginAtZero: true } }
  };
  // Counts (runs, users, errors) are whole numbers: no 0.4 user on the axis.
  var counts = JSON.parse(JSON.stringify(options));
  counts.scales.y.ticks = { precision: 0 };
  function line(label, data, color) {
    return { label: label, data: data, borderColor: color, backgroundColor: color, pointRadius: data.length > 60 ? 0 : 2,
      borderWidth: 2, tension: 0.2, spanGaps: true };
  }
  function draw(id, type, datasets, chartOptions) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, { type: type, data: { labels: labels, datasets: datasets }, options: chartOptions || options });
    }
  }
  var s = d.series;
  draw("chart-usage-runs", "bar", [
    { label: "runs", data: s.runs, backgroundColor: palette.blue, stack: "u" },
    { label: "downloads", data: s.downloads, backgroundColor: palette.green, stack: "u" }], counts);
  draw("chart-usage-users", "line", [line("users", s.users, palette.blue), line("errors", s.errors, palette.red)], counts);
  draw("chart-usage-latency", "line", [line("mean", s.latency_avg_ms, palette.blue),
    line("p95", s.latency_p95_ms, palette.orange)]);
})();
