#include "reports/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace ttc::reports {
namespace {

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double base = 10;
  double Map(double v, double pix_lo, double pix_hi) const {
    double a = log ? std::log(lo) : lo, b = log ? std::log(hi) : hi;
    double x = log ? std::log(std::max(v, 1e-300)) : v;
    if (b == a) return (pix_lo + pix_hi) / 2;
    return pix_lo + (x - a) / (b - a) * (pix_hi - pix_lo);
  }
};

// A data value for a tooltip: two or three significant digits are what a reader compares.
std::string FormatValue(double v, bool percent) {
  if (percent) return fmt::format("{:.0f}%", v * 100);
  if (v == 0) return "0";
  double a = std::fabs(v);
  if (a >= 1e4 || a < 1e-3) return fmt::format("{:.0e}", v);
  if (a >= 100 || std::fabs(v - std::round(v)) < 1e-9) return fmt::format("{:.0f}", v);
  if (a >= 1) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2g}", v);
}

std::vector<double> LinearTicks(double lo, double hi) {
  double span = hi - lo;
  if (span <= 0) return {lo};
  double raw = span / 5;
  double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

std::vector<double> LogTicks(double lo, double hi, double base) {
  std::vector<double> ticks;
  double e0 = std::floor(std::log(lo) / std::log(base) + 1e-9);
  double e1 = std::ceil(std::log(hi) / std::log(base) - 1e-9);
  for (double e = e0; e <= e1; ++e) {
    double t = std::pow(base, e);
    if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push_back(t);
  }
  if (ticks.size() < 2 && base == 10) {  // a narrow decade: add 2x and 5x ticks
    ticks.clear();
    for (double e = e0; e <= e1; ++e) {
      for (double m : {1.0, 2.0, 5.0}) {
        double t = m * std::pow(10, e);
        if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push_back(t);
      }
    }
  }
  // Less than a factor of ~2.5 (generation times of models that differ little): 1-2-5 leaves one
  // labelled tick or none, so the reader cannot tell a single value. Round linear steps then,
  // placed on the log axis.
  if (ticks.size() < 3 && base == 10 && lo > 0) {
    std::vector<double> linear = LinearTicks(lo, hi);
    if (linear.size() > ticks.size()) ticks = std::move(linear);
  }
  return ticks;
}

}  // namespace

std::vector<double> AxisTicks(double lo, double hi, bool log, double base) {
  return log ? LogTicks(lo, hi, base) : LinearTicks(lo, hi);
}

std::string TickLabel(double v, bool percent) {
  const double x = percent ? v * 100 : v;
  const double tolerance = 1e-9 * std::max(std::fabs(x), 1e-300);
  std::string s = FormatValue(v, percent);
  for (int extra = 1; extra <= 4; ++extra) {
    const std::string digits = percent ? s.substr(0, s.size() - 1) : s;
    if (std::fabs(std::strtod(digits.c_str(), nullptr) - x) <= tolerance) break;
    if (percent) {
      s = fmt::format("{:.{}f}%", x, extra);
    } else if (std::fabs(x) >= 1e4 || std::fabs(x) < 1e-3) {
      s = fmt::format("{:.{}e}", x, extra);
    } else if (std::fabs(x) >= 1) {
      s = fmt::format("{:.{}f}", x, 1 + extra);
    } else {
      s = fmt::format("{:.{}g}", x, 2 + extra);
    }
  }
  return s;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string PaletteColor(int index) {
  // Okabe-Ito, then Tableau extras.
  static const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                  "#56B4E9", "#7F7F7F", "#8C564B", "#BCBD22", "#17BECF"};
  return kColors[static_cast<size_t>(index) % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::string RenderLinePlot(const PlotSpec& spec) {
  const double w = spec.width, h = spec.height;
  const double left = 70, right = 200, top = 40, bottom = 60;
  const double px0 = left, px1 = w - right, py0 = h - bottom, py1 = top;

  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = xmin, ymax = -xmin;
  auto take = [&](double x, double y) {
    if (!std::isfinite(x) || !std::isfinite(y)) return;
    if (spec.log_x && x <= 0) return;
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
    ymin = std::min(ymin, y);
    ymax = std::max(ymax, y);
  };
  for (const auto& s : spec.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      take(s.x[i], s.y[i]);
      if (i < s.lo.size()) take(s.x[i], s.lo[i]);
      if (i < s.hi.size()) take(s.x[i], s.hi[i]);
    }
  }
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "<text x=\"{2}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{3}</text>\n",
      w, h, left, XmlEscape(spec.title));
  if (!std::isfinite(xmin)) {
    out += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#666\">no data to plot yet</text>\n</svg>\n",
                       left, h / 2);
    return out;
  }
  Axis ax{xmin, xmax, spec.log_x, spec.log_base};
  if (spec.log_x) {
    ax.lo = xmin / 1.15;
    ax.hi = xmax * 1.15;
  } else if (xmax == xmin) {
    ax.lo = xmin - 1;
    ax.hi = xmax + 1;
  }
  Axis ay{ymin, ymax, spec.log_y, 10};
  if (spec.y_unit_interval) {
    ay.lo = 0;
    ay.hi = 1;
  } else if (spec.log_y) {
    ay.lo = ymin / 1.2;
    ay.hi = ymax * 1.2;
  } else {
    double pad = (ymax - ymin) * 0.05 + 1e-12;
    ay.lo = std::min(0.0, ymin - pad);
    ay.hi = ymax + pad;
  }
  auto X = [&](double v) { return ax.Map(v, px0, px1); };
  auto Y = [&](double v) { return ay.Map(v, py0, py1); };

  // Grid, ticks and labels.
  auto xt = AxisTicks(ax.lo, ax.hi, spec.log_x, spec.log_base);
  auto yt = AxisTicks(ay.lo, ay.hi, spec.log_y, 10);
  out += "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
  for (double t : xt)
    out += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\"/>\n", X(t), py0,
                       py1);
  for (double t : yt)
    out += fmt::format("<line x1=\"{1}\" y1=\"{0:.1f}\" x2=\"{2}\" y2=\"{0:.1f}\"/>\n", Y(t), px0,
                       px1);
  out += "</g>\n";
  out += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", px0,
      py1, px1 - px0, py0 - py1);
  for (double t : xt) {
    out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", X(t),
                       py0 + 16, XmlEscape(TickLabel(t, false)));
  }
  for (double t : yt) {
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", px0 - 6,
                       Y(t) + 4, XmlEscape(TickLabel(t, spec.y_unit_interval)));
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (px0 + px1) / 2,
                     h - 18, XmlEscape(spec.x_label));
  out += fmt::format(
      "<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
      "{0})\">{1}</text>\n",
      (py0 + py1) / 2, XmlEscape(spec.y_label));

  // Series: band first, then line and markers.
  for (const auto& s : spec.series) {
    if (s.lo.size() == s.y.size() && s.hi.size() == s.y.size() && !s.y.empty()) {
      std::string pts;
      for (size_t i = 0; i < s.x.size(); ++i)
        pts += fmt::format("{:.1f},{:.1f} ", X(s.x[i]), Y(s.hi[i]));
      for (size_t i = s.x.size(); i-- > 0;)
        pts += fmt::format("{:.1f},{:.1f} ", X(s.x[i]), Y(s.lo[i]));
      out += fmt::format(
          "<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"0.15\" stroke=\"none\"/>\n", pts,
          s.color);
    }
    std::string pts;
    for (size_t i = 0; i < s.x.size(); ++i)
      pts += fmt::format("{:.1f},{:.1f} ", X(s.x[i]), Y(s.y[i]));
    out += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", pts,
        s.color, s.dash.empty() ? "" : fmt::format(" stroke-dasharray=\"{}\"", s.dash));
    for (size_t i = 0; i < s.x.size(); ++i) {
      out += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: ({}, "
          "{})</title></circle>\n",
          X(s.x[i]), Y(s.y[i]), s.color, XmlEscape(s.label), FormatValue(s.x[i], false),
          FormatValue(s.y[i], spec.y_unit_interval));
    }
  }
  if (!spec.front_x.empty()) {
    std::string pts;
    for (size_t i = 0; i < spec.front_x.size(); ++i) {
      pts += fmt::format("{:.1f},{:.1f} ", X(spec.front_x[i]), Y(spec.front_y[i]));
    }
    out += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#111\" stroke-width=\"1.5\" "
        "stroke-dasharray=\"2 3\"/>\n",
        pts);
    for (size_t i = 0; i < spec.front_x.size(); ++i) {
      out += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"6\" fill=\"none\" stroke=\"#111\" "
          "stroke-width=\"1.5\"/>\n",
          X(spec.front_x[i]), Y(spec.front_y[i]));
    }
  }

  // Legend.
  double ly = top + 8;
  const double lx = px1 + 14;
  for (const auto& s : spec.series) {
    out += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2.5\"{}/>\n",
        lx, ly, lx + 24, ly, s.color,
        s.dash.empty() ? "" : fmt::format(" stroke-dasharray=\"{}\"", s.dash));
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", lx + 30, ly + 4, XmlEscape(s.label));
    ly += 18;
  }
  if (!spec.front_x.empty()) {
    out += fmt::format(
        "<circle cx=\"{}\" cy=\"{}\" r=\"6\" fill=\"none\" stroke=\"#111\" stroke-width=\"1.5\"/>\n"
        "<text x=\"{}\" y=\"{}\">{}</text>\n",
        lx + 12, ly, lx + 30, ly + 4, XmlEscape(spec.front_label));
  }
  out += "</svg>\n";
  return out;
}

}  // namespace ttc::reports
