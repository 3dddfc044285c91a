// Axis ticks and plot text of the report's SVG builder (reports/svg.h).
#include "reports/svg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

namespace ttc::reports {
namespace {

void ExpectInside(const std::vector<double>& ticks, double lo, double hi) {
  for (size_t i = 0; i < ticks.size(); ++i) {
    EXPECT_GE(ticks[i], lo * (1 - 1e-9)) << i;
    EXPECT_LE(ticks[i], hi * (1 + 1e-9)) << i;
    if (i > 0) {
      EXPECT_GT(ticks[i], ticks[i - 1]) << i;
    }
  }
}

TEST(AxisTicks, LogDecadesWhereTheRangeSpansThem) {
  const auto t = AxisTicks(0.0009, 11, true, 10);
  EXPECT_EQ(t, (std::vector<double>{0.001, 0.01, 0.1, 1, 10}));
  EXPECT_EQ(AxisTicks(0.87, 37, true, 2), (std::vector<double>{1, 2, 4, 8, 16, 32}));
}

TEST(AxisTicks, LogWithinADecadeTakesTwoAndFiveTimes) {
  const auto t = AxisTicks(0.017, 0.16, true, 10);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_DOUBLE_EQ(t[0], 0.02);
  EXPECT_DOUBLE_EQ(t[1], 0.05);
  EXPECT_DOUBLE_EQ(t[2], 0.1);
}

// Generation times of models that differ by less than 2x (the default experiment's Llama and
// Llamba): 1-2-5 would label one tick (0.1) on the whole axis.
TEST(AxisTicks, NarrowLogRangeGetsRoundLinearSteps) {
  const auto t = AxisTicks(0.052, 0.13, true, 10);
  EXPECT_GE(t.size(), 4u);
  ExpectInside(t, 0.052, 0.13);
  const auto narrow = AxisTicks(0.0061, 0.0069, true, 10);
  EXPECT_GE(narrow.size(), 3u);
  ExpectInside(narrow, 0.0061, 0.0069);
}

// Samples per problem k are whole numbers: a base-2 axis never gets fractional ticks.
TEST(AxisTicks, KAxisKeepsPowersOfTwo) {
  EXPECT_EQ(AxisTicks(0.87, 2.3, true, 2), (std::vector<double>{1, 2}));
  EXPECT_EQ(AxisTicks(3.4, 4.6, true, 2), (std::vector<double>{4}));
}

TEST(AxisTicks, Linear) {
  const auto t = AxisTicks(0, 1, false, 10);
  ASSERT_EQ(t.size(), 6u);
  for (size_t i = 0; i < t.size(); ++i) EXPECT_NEAR(t[i], 0.2 * static_cast<double>(i), 1e-12);
}

TEST(RenderLinePlot, NarrowLogAxisLabelsSeveralTimes) {
  PlotSpec spec;
  spec.title = "t";
  spec.log_x = true;
  spec.log_base = 10;
  spec.y_unit_interval = true;
  PlotSeries s;
  s.x = {0.062, 0.07, 0.081};
  s.y = {0.5, 0.6, 0.7};
  spec.series = {s};
  const std::string svg = RenderLinePlot(spec);
  int labels = 0;
  for (const char* v : {">0.06<", ">0.07<", ">0.08<", ">0.09<"})
    labels += svg.find(v) != std::string::npos;
  EXPECT_GE(labels, 3) << svg;
}

// Each tick's label reads back as the tick's value: a 2.5 step (0.035 to 0.045: ticks at 0.0375
// and 0.0425) must not be labelled 0.038 and 0.043, as two significant digits did. Round values
// keep their short labels.
TEST(TickLabel, ReadsBackAsTheTickValue) {
  EXPECT_EQ(TickLabel(0.0375, false), "0.0375");
  EXPECT_EQ(TickLabel(0.04, false), "0.04");
  EXPECT_EQ(TickLabel(0.035, false), "0.035");
  EXPECT_EQ(TickLabel(1.25, false), "1.25");
  EXPECT_EQ(TickLabel(2.5, false), "2.5");
  EXPECT_EQ(TickLabel(20, false), "20");
  EXPECT_EQ(TickLabel(0.25, true), "25%");
  EXPECT_EQ(TickLabel(0.125, true), "12.5%");
  for (const auto& [lo, hi, log] : {std::tuple{0.034, 0.046, true},
                                    std::tuple{0.0123, 0.0191, true}, std::tuple{1.1, 2.3, false},
                                    std::tuple{0.0, 0.07, false}, std::tuple{0.0009, 11.0, true}}) {
    for (double t : AxisTicks(lo, hi, log, 10)) {
      const std::string label = TickLabel(t, false);
      EXPECT_NEAR(std::strtod(label.c_str(), nullptr), t, 1e-9 * std::max(t, 1e-12))
          << label << " for " << t;
      EXPECT_LE(label.size(), 7u) << label;
    }
  }
}

}  // namespace
}  // namespace ttc::reports
