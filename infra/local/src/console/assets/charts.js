// The console's charts: every `.chart[data-chart]` drawn with uPlot
// (vendored, served from the binary) — a time axis in UTC, a value axis in
// the chart's unit, the values under the cursor in the legend. Without
// script the server's sparkline stays. A chart is redrawn when htmx swaps
// new ones in; a refresh waits while the cursor is on a chart, so a value
// being read does not vanish under it.
(function () {
  "use strict";
  var COLORS = ["#0b5cad", "#1f7a3d", "#b3261e", "#9a6700", "#6f42c1", "#0a7c86", "#c2410c", "#4b5563", "#be185d"];

  function fmt(unit, v) {
    if (v == null) return "—";
    if (unit === "ms") {
      if (v >= 60000) return (v / 60000).toFixed(1) + " min";
      if (v >= 1000) return (v / 1000).toFixed(1) + " s";
      return Math.round(v) + " ms";
    }
    return Math.abs(v) >= 10000 ? (v / 1000).toFixed(1) + "k" : String(Math.round(v * 100) / 100);
  }

  function draw(el) {
    if (el.getAttribute("data-drawn") === "1") return;
    var spec;
    try { spec = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
    var box = el.querySelector(".plot");
    if (!box || typeof uPlot === "undefined") return;
    var width = Math.max(260, box.clientWidth || el.clientWidth);
    var series = [{
      value: function (u, ts) { return ts == null ? "—" : new Date(ts * 1000).toISOString().slice(11, 16) + " UTC"; }
    }];
    spec.series.forEach(function (s, i) {
      series.push({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        points: { show: false },
        value: function (u, v) { return fmt(spec.unit, v); }
      });
    });
    var opts = {
      width: width,
      height: 170,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [Math.min(0, min), Math.max(1, max * 1.1)]; } } },
      axes: [
        { stroke: "#66707a", grid: { stroke: "#eef0f2" },
          values: function (u, splits) { return splits.map(function (ts) { return new Date(ts * 1000).toISOString().slice(11, 16); }); } },
        { stroke: "#66707a", grid: { stroke: "#eef0f2" }, size: 64, values: function (u, vals) { return vals.map(function (v) { return fmt(spec.unit, v); }); } }
      ],
      legend: { live: true },
      series: series
    };
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    box.textContent = "";
    el.uplot = new uPlot(opts, data, box);
    el.setAttribute("data-drawn", "1");
  }

  function drawAll(root) {
    var charts = (root || document).querySelectorAll(".chart[data-chart]");
    for (var i = 0; i < charts.length; i++) draw(charts[i]);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
  // A refresh of the charts waits while one is being read.
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (e.target && e.target.id === "charts" && document.querySelector(".chart:hover")) e.preventDefault();
  });
  var resizing;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      var charts = document.querySelectorAll(".chart[data-drawn='1']");
      for (var i = 0; i < charts.length; i++) {
        var box = charts[i].querySelector(".plot");
        if (charts[i].uplot && box) charts[i].uplot.setSize({ width: Math.max(260, box.clientWidth), height: 170 });
      }
    }, 150);
  });
})();
