// Thin wrapper over Chart.js bar charts (the library is loaded as a classic
// script and exposes the global Chart).

/* global Chart */

const charts = new WeakMap();

/**
 * Draw (or redraw) a bar chart on a <canvas>.
 * labels: string[]; values: number[]; options: {label, color}
 */
export function barChart(canvas, labels, values, { label = "", color = "#2563eb" } = {}) {
  let chart = charts.get(canvas);
  if (chart) {
    chart.data.labels = labels;
    chart.data.datasets[0].data = values;
    chart.data.datasets[0].label = label;
    chart.update("none");
    return chart;
  }
  chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: [{ label, data: values, backgroundColor: color, borderRadius: 3, maxBarThickness: 28 }],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { title: (items) => items[0]?.label ?? "" } },
      },
      scales: {
        y: { beginAtZero: true, ticks: { precision: 0 }, grid: { color: "#e5e7eb" } },
        x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true } },
      },
    },
  });
  charts.set(canvas, chart);
  return chart;
}

export function destroyChart(canvas) {
  const chart = charts.get(canvas);
  if (chart) {
    chart.destroy();
    charts.delete(canvas);
  }
}

/** "2026-11-28" -> "28 Nov" (labels for per-day charts). */
export function shortDay(isoDay) {
  const d = new Date(`${isoDay}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return isoDay;
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
}
