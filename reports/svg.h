// A small SVG line-plot builder for reports: labelled axes with units, linear or logarithmic x
// axis, series with optional error bands and markers, a legend, and highlighted points (the Pareto
// front). Output is standalone SVG 1.1 text that browsers render and print as is. Pure functions;
// thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ttc::reports {

struct PlotSeries {
  std::string label;
  std::string color = "#1f77b4";
  std::string dash;  // SVG stroke-dasharray ("" = solid)
  std::vector<double> x, y;
  std::vector<double> lo, hi;  // error band (same length as y) or empty
};

struct PlotSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  double log_base = 2;           // tick spacing on a log axis: 2 (k) or 10 (seconds)
  bool y_unit_interval = false;  // y axis fixed to [0, 1], shown as percent
  bool log_y = false;
  std::vector<PlotSeries> series;
  std::vector<double> front_x, front_y;  // highlighted path (Pareto front), drawn on top
  std::string front_label = "Pareto front";
  int width = 720;
  int height = 440;
};

std::string RenderLinePlot(const PlotSpec& spec);

// The tick values of an axis over [lo, hi]: round linear steps, or on a log axis the powers of
// `base` (with 2x and 5x, or round linear steps, where the range is too narrow for two or three).
std::vector<double> AxisTicks(double lo, double hi, bool log, double base);

// The label of tick value v (as a percentage of 1 where `percent`): short, with as many more
// digits as the value needs to be read exactly (a step of 2.5 puts ticks at 0.0375 and 0.0425,
// which two significant digits would label 0.038 and 0.043).
std::string TickLabel(double v, bool percent);

// Escapes &, <, >, " and ' for XML text and attributes.
std::string XmlEscape(std::string_view text);

// A qualitative palette (colour-blind safe); the same index gives the same colour in every plot.
std::string PaletteColor(int index);

}  // namespace ttc::reports
